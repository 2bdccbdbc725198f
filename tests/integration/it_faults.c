/* Failures through real processes: a worker killed mid-job, the broker
 * killed with -9 under load, a worker returning wrong results, malformed and
 * oversize input, an unknown kind, and the database stopped and restarted. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "err.h"
#include "harness.h"
#include "wire.h"

static int s_each(void **state)
{
    (void)state;
    h_kill_all();
    return 0;
}

static quarry_job_opts_t s_opts(uint64_t max_price)
{
    quarry_job_opts_t o;
    quarry_job_opts_init(&o);
    o.max_price = max_price;
    return o;
}

/* A worker dies with -9 while it computes; the broker notices the missed
 * heartbeats and another worker finishes the job. */
static void test_worker_killed_mid_job(void **state)
{
    (void)state;
    if (!QR_TEST_FAULTS_BUILD)
        skip();
    char db[512];
    h_db_create("qr_it_wkill", db, sizeof db);
    pid_t b = h_broker("wkill-broker", db, 27110, 27111, NULL);
    pid_t slow = h_worker("wkill-slow", 27111, "slow", "op-a", 1, 10, "--fault-delay-ms=60000", NULL);
    quarry_client_t *c = h_client(27110, "carol");
    assert_int_equal(quarry_deposit(c, "carol", 100000, NULL), QUARRY_OK);
    h_wait_online(c, 1);
    float a[64 * 64], bm[64 * 64];
    unsigned seed = 5;
    h_random(a, 64 * 64, &seed);
    h_random(bm, 64 * 64, &seed);
    quarry_job_opts_t o = s_opts(1000);
    uint64_t id;
    assert_int_equal(quarry_gemm_submit(c, 64, 64, 64, a, bm, &o, &id, NULL, NULL), QUARRY_OK);
    quarry_job_info_t info;
    assert_true(h_wait_state(c, id, QUARRY_JOB_RUNNING, 10000, &info));
    uint64_t first = info.worker_id;
    h_stop(slow, SIGKILL, 1000);
    pid_t fast = h_worker("wkill-fast", 27111, "fast", "op-b", 1, 10, NULL);
    assert_int_equal(quarry_job_wait(c, id, 30000, NULL, NULL, &info), QUARRY_OK);
    assert_int_equal(info.state, QUARRY_JOB_SETTLED);
    assert_true(info.worker_id != first);
    assert_int_equal(info.attempts, 2);
    assert_int_equal(h_sql(db, "SELECT count(*) FROM job_events WHERE job_id=%llu AND state='queued' "
                               "AND detail LIKE '%%missed heartbeats%%'", (unsigned long long)id), 1);
    h_check_books(db);
    quarry_client_destroy(&c);
    h_stop(fast, SIGTERM, 10000);
    assert_int_equal(h_stop(b, SIGTERM, 10000), 0);
    h_db_drop("qr_it_wkill");
}

/* kill -9 the broker while jobs stream in; restart it: every acknowledged job
 * is settled exactly once and the books balance. */
static void test_broker_killed_under_load(void **state)
{
    (void)state;
    char db[512];
    h_db_create("qr_it_bkill", db, sizeof db);
    pid_t b = h_broker("bkill-broker", db, 27120, 27121, NULL);
    pid_t w1 = h_worker("bkill-w1", 27121, "w1", "op-a", 1, 10, NULL);
    pid_t w2 = h_worker("bkill-w2", 27121, "w2", "op-b", 1, 10, NULL);
    quarry_client_t *c = h_client(27120, "dave");
    assert_int_equal(quarry_deposit(c, "dave", 100000000, NULL), QUARRY_OK);
    h_wait_online(c, 2);
    enum { N = 600 };
    static uint64_t acked[N];
    int nacked = 0;
    float a[32 * 32], bm[32 * 32];
    unsigned seed = 9;
    h_random(a, 32 * 32, &seed);
    h_random(bm, 32 * 32, &seed);
    quarry_job_opts_t o = s_opts(1000);
    /* a job under an idempotency key, finished before the crash */
    quarry_job_opts_t keyed = s_opts(1000);
    keyed.idem_key = "nightly-batch-1";
    uint64_t keyed_id;
    quarry_job_info_t kinfo;
    assert_int_equal(quarry_gemm_submit(c, 32, 32, 32, a, bm, &keyed, &keyed_id, NULL, NULL), QUARRY_OK);
    assert_int_equal(quarry_job_wait(c, keyed_id, 30000, NULL, NULL, &kinfo), QUARRY_OK);
    quarry_client_set_timeout(c, 2000);
    for (int i = 0; i < N; i++) {
        if (i == N / 2)
            h_stop(b, SIGKILL, 1000); /* mid-stream, with work queued and running */
        uint64_t id;
        if (quarry_gemm_submit(c, 32, 32, 32, a, bm, &o, &id, NULL, NULL) == QUARRY_OK)
            acked[nacked++] = id;
        if (i == N / 2 + 5)
            break;
    }
    assert_true(nacked >= N / 2);
    quarry_client_destroy(&c);
    b = h_broker("bkill-broker", db, 27120, 27121, NULL);
    c = h_client(27120, "dave");
    quarry_client_set_timeout(c, 20000);
    /* the key still finds its job, which now lives only in the database */
    uint64_t again;
    bool dup = false;
    assert_int_equal(quarry_gemm_submit(c, 32, 32, 32, a, bm, &keyed, &again, NULL, &dup), QUARRY_OK);
    assert_true(dup);
    assert_int_equal(again, keyed_id);
    for (int i = 0; i < N - N / 2; i++) {
        uint64_t id;
        assert_int_equal(quarry_gemm_submit(c, 32, 32, 32, a, bm, &o, &id, NULL, NULL), QUARRY_OK);
        acked[nacked++] = id;
        if (nacked == N)
            break;
    }
    for (int i = 0; i < nacked; i++) {
        quarry_job_info_t info;
        assert_int_equal(quarry_job_wait(c, acked[i], 60000, NULL, NULL, &info), QUARRY_OK);
        assert_int_equal(info.state, QUARRY_JOB_SETTLED);
    }
    assert_int_equal(h_sql(db, "SELECT count(*) FROM settlements"),
                     h_sql(db, "SELECT count(*) FROM jobs WHERE state='settled'"));
    assert_true(h_sql(db, "SELECT count(*) FROM settlements") >= nacked);
    assert_int_equal(h_sql(db, "SELECT count(*) FROM jobs WHERE state NOT IN ('settled')"), 0);
    h_check_books(db);
    quarry_balance_t bal;
    assert_int_equal(quarry_balance(c, NULL, &bal), QUARRY_OK);
    assert_int_equal(bal.reserved, 0);
    assert_int_equal(bal.available, 100000000 - h_sql(db, "SELECT sum(price) FROM settlements"));
    quarry_client_destroy(&c);
    h_stop(w1, SIGTERM, 10000);
    h_stop(w2, SIGTERM, 10000);
    assert_int_equal(h_stop(b, SIGTERM, 10000), 0);
    h_db_drop("qr_it_bkill");
}

/* A cheap worker that corrupts every result is never paid; an honest one
 * does the work; the cheat loses reputation. */
static void test_wrong_result_not_paid(void **state)
{
    (void)state;
    if (!QR_TEST_FAULTS_BUILD)
        skip();
    char db[512];
    h_db_create("qr_it_cheat", db, sizeof db);
    pid_t b = h_broker("cheat-broker", db, 27130, 27131, "--max-attempts=10", NULL);
    pid_t bad = h_worker("cheat-bad", 27131, "cheat", "op-cheat", 1, 1, "--fault-corrupt-every=1", NULL);
    pid_t good = h_worker("cheat-good", 27131, "honest", "op-honest", 1, 50, NULL);
    quarry_client_t *c = h_client(27130, "erin");
    assert_int_equal(quarry_deposit(c, "erin", 1000000, NULL), QUARRY_OK);
    h_wait_online(c, 2);
    float a[16 * 16], bm[16 * 16];
    unsigned seed = 11;
    h_random(a, 256, &seed);
    h_random(bm, 256, &seed);
    quarry_job_opts_t o = s_opts(1000);
    uint64_t ids[20];
    for (int i = 0; i < 20; i++)
        assert_int_equal(quarry_gemm_submit(c, 16, 16, 16, a, bm, &o, &ids[i], NULL, NULL), QUARRY_OK);
    for (int i = 0; i < 20; i++) {
        quarry_job_info_t info;
        assert_int_equal(quarry_job_wait(c, ids[i], 60000, NULL, NULL, &info), QUARRY_OK);
        assert_int_equal(info.price, 50); /* paid at the honest worker's ask */
    }
    assert_int_equal(h_sql(db, "SELECT count(*) FROM settlements s JOIN workers w ON w.id = s.worker_id "
                               "WHERE w.name = 'cheat'"), 0);
    assert_int_equal(h_sql(db, "SELECT count(*) FROM settlements"), 20);
    assert_true(h_sql(db, "SELECT count(*) FROM job_events WHERE detail LIKE '%%failed verification%%'") >= 1);
    assert_true(h_sql(db, "SELECT reputation FROM workers WHERE name = 'cheat'") < 100);
    quarry_balance_t op;
    assert_int_equal(quarry_balance(c, "op-cheat", &op), QUARRY_OK);
    assert_int_equal(op.available, 0);
    h_check_books(db);
    quarry_client_destroy(&c);
    h_stop(bad, SIGTERM, 10000);
    h_stop(good, SIGTERM, 10000);
    assert_int_equal(h_stop(b, SIGTERM, 10000), 0);
    h_db_drop("qr_it_cheat");
}

/* A worker that claims an input cache but lost what it held: each ASSIGN that
 * only names its input comes back QR_ENOTFOUND, and the broker sends the job
 * again with the matrices, without counting an attempt. */
static void test_input_cache_miss(void **state)
{
    (void)state;
    if (!QR_TEST_FAULTS_BUILD)
        skip();
    char db[512];
    h_db_create("qr_it_miss", db, sizeof db);
    pid_t b = h_broker("miss-broker", db, 27160, 27161, NULL);
    pid_t w = h_worker("miss-w", 27161, "forgetful", "op", 1, 10, "--fault-forget-inputs", NULL);
    quarry_client_t *c = h_client(27160, "hana");
    assert_int_equal(quarry_deposit(c, "hana", 100000, NULL), QUARRY_OK);
    h_wait_online(c, 1);
    float a[16 * 16], bm[16 * 16];
    unsigned seed = 21;
    h_random(a, 256, &seed);
    h_random(bm, 256, &seed);
    quarry_job_opts_t o = s_opts(1000);
    for (int i = 0; i < 5; i++) {
        uint64_t id;
        quarry_job_info_t info;
        assert_int_equal(quarry_gemm_submit(c, 16, 16, 16, a, bm, &o, &id, NULL, NULL), QUARRY_OK);
        assert_int_equal(quarry_job_wait(c, id, 30000, NULL, NULL, &info), QUARRY_OK);
        assert_int_equal(info.attempts, 1);
    }
    /* the same matrices: every job after the first was first sent by name */
    assert_true(h_sql(db, "SELECT count(*) FROM job_events WHERE detail LIKE '%%not in this worker%%'") >= 4);
    h_check_books(db);
    quarry_client_destroy(&c);
    h_stop(w, SIGTERM, 10000);
    assert_int_equal(h_stop(b, SIGTERM, 10000), 0);
    h_db_drop("qr_it_miss");
}

/* Per-account limits: a queue quota and a submit rate, each refused with
 * QUARRY_ELIMIT and a message, per account, counted in the metrics. */
static void test_limits(void **state)
{
    (void)state;
    char db[512];
    h_db_create("qr_it_limits", db, sizeof db);
    /* no worker: jobs stay queued */
    pid_t b = h_broker("limits-broker", db, 27170, 27171, "--client-quota=2", "--client-rate=3",
                       "--metrics-addr=127.0.0.1:27172", NULL);
    quarry_client_t *ann = h_client(27170, "ann"), *bob = h_client(27170, "bob");
    assert_int_equal(quarry_deposit(ann, "ann", 100000, NULL), QUARRY_OK);
    assert_int_equal(quarry_deposit(ann, "bob", 100000, NULL), QUARRY_OK);
    float a[1] = {1}, e[1] = {2};
    quarry_job_opts_t o = s_opts(100);
    uint64_t ids[3];
    assert_int_equal(quarry_gemm_submit(ann, 1, 1, 1, a, e, &o, &ids[0], NULL, NULL), QUARRY_OK);
    assert_int_equal(quarry_gemm_submit(ann, 1, 1, 1, a, e, &o, &ids[1], NULL, NULL), QUARRY_OK);
    assert_int_equal(quarry_gemm_submit(ann, 1, 1, 1, a, e, &o, &ids[2], NULL, NULL), QUARRY_ELIMIT);
    assert_non_null(strstr(quarry_client_last_error(ann), "quota"));
    /* another account is not held back by ann's quota */
    assert_int_equal(quarry_gemm_submit(bob, 1, 1, 1, a, e, &o, &ids[2], NULL, NULL), QUARRY_OK);
    /* a finished job frees its place */
    quarry_job_info_t info;
    assert_int_equal(quarry_job_cancel(ann, ids[0], &info), QUARRY_OK);
    assert_int_equal(quarry_gemm_submit(ann, 1, 1, 1, a, e, &o, &ids[0], NULL, NULL), QUARRY_OK);
    /* the rate: bob has used 1 of his 3; under the quota thanks to cancels,
     * two more pass and the next is refused until the bucket refills */
    assert_int_equal(quarry_job_cancel(bob, ids[2], &info), QUARRY_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(quarry_gemm_submit(bob, 1, 1, 1, a, e, &o, &ids[2], NULL, NULL), QUARRY_OK);
        assert_int_equal(quarry_job_cancel(bob, ids[2], &info), QUARRY_OK);
    }
    assert_int_equal(quarry_gemm_submit(bob, 1, 1, 1, a, e, &o, &ids[2], NULL, NULL), QUARRY_ELIMIT);
    assert_non_null(strstr(quarry_client_last_error(bob), "rate limit"));
    h_sleep_ms(1100); /* 3 tokens a second */
    assert_int_equal(quarry_gemm_submit(bob, 1, 1, 1, a, e, &o, &ids[2], NULL, NULL), QUARRY_OK);
    static char m[1 << 16];
    assert_int_equal(h_http_get(27172, "/metrics", m, sizeof m), 200);
    assert_int_equal((int64_t)h_metric(m, "quarry_requests_refused_total{code=\"ELIMIT\"}"), 2);
    h_check_books(db);
    quarry_client_destroy(&ann);
    quarry_client_destroy(&bob);
    assert_int_equal(h_stop(b, SIGTERM, 10000), 0);
    h_db_drop("qr_it_limits");
}

/* Waits up to timeout_ms for GET path on port to answer want. */
static bool s_http_becomes(int port, const char *path, int want, int timeout_ms)
{
    static char body[4096];
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        if (h_http_get(port, path, body, sizeof body) == want)
            return true;
        h_sleep_ms(100);
    }
    return false;
}

/* Two brokers on one database: the second stands by (503 on /healthz) until
 * the first dies, then takes over with every queued job; a third takes over
 * when the active one loses its lock connection, and the old one, fenced,
 * cannot commit and stops by itself. */
static void test_standby_takeover(void **state)
{
    (void)state;
    char db[512];
    h_db_create("qr_it_standby", db, sizeof db);
    pid_t a = h_broker("standby-a", db, 27200, 27201, "--metrics-addr=127.0.0.1:27202", NULL);
    quarry_client_t *c = h_client(27200, "ivy");
    pid_t b = h_broker("standby-b", db, 27203, 27204, "--metrics-addr=127.0.0.1:27205", NULL);
    assert_true(s_http_becomes(27205, "/healthz", 503, 10000));
    assert_true(s_http_becomes(27205, "/livez", 200, 1000));
    assert_true(s_http_becomes(27202, "/healthz", 200, 1000));
    assert_int_equal(quarry_deposit(c, "ivy", 100000, NULL), QUARRY_OK);
    float x[4] = {1, 2, 3, 4}, e[4] = {1, 0, 0, 1};
    quarry_job_opts_t o = s_opts(1000);
    uint64_t ids[3];
    for (int i = 0; i < 3; i++) /* no worker yet: they wait in the queue */
        assert_int_equal(quarry_gemm_submit(c, 2, 2, 2, x, e, &o, &ids[i], NULL, NULL), QUARRY_OK);
    quarry_client_destroy(&c);
    h_stop(a, SIGKILL, 1000);
    assert_true(s_http_becomes(27205, "/healthz", 200, 20000));
    assert_int_equal(h_sql(db, "SELECT epoch FROM broker_leader"), 2);
    pid_t w = h_worker("standby-w", 27204, "w", "op", 1, 10, NULL);
    c = h_client(27203, "ivy");
    for (int i = 0; i < 3; i++) {
        quarry_job_info_t info;
        assert_int_equal(quarry_job_wait(c, ids[i], 30000, NULL, NULL, &info), QUARRY_OK);
    }
    /* fencing: C stands by; B's lock connection dies; C takes over */
    pid_t cb = h_broker("standby-c", db, 27206, 27207, "--metrics-addr=127.0.0.1:27208", NULL);
    assert_true(s_http_becomes(27208, "/healthz", 503, 10000));
    assert_int_equal(h_sql(db, "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_locks "
                               "WHERE locktype = 'advisory' AND granted) t"), 1);
    assert_true(s_http_becomes(27208, "/healthz", 200, 20000));
    assert_int_equal(h_sql(db, "SELECT epoch FROM broker_leader"), 3);
    /* B can no longer write: its next commit is refused and it stops */
    uint64_t late;
    assert_int_equal(quarry_gemm_submit(c, 2, 2, 2, x, e, &o, &late, NULL, NULL), QUARRY_EDB);
    int st = -1;
    for (int i = 0; i < 100 && h_alive(b); i++)
        h_sleep_ms(100);
    assert_false(h_alive(b));
    (void)st;
    quarry_client_destroy(&c);
    h_check_books(db);
    assert_int_equal(h_sql(db, "SELECT count(*) FROM settlements"), 3);
    h_stop(w, SIGTERM, 10000);
    assert_int_equal(h_stop(cb, SIGTERM, 10000), 0);
    h_db_drop("qr_it_standby");
}

/* Sends raw frames and returns the command of the reply (the Error's code
 * in *code when it is an Error); -1 when nothing came back. */
static int s_raw(void *sock, int nframes, const void *const *f, const size_t *l, int *code, char *msg, size_t msglen)
{
    for (int i = 0; i < nframes; i++)
        zmq_send(sock, f[i], l[i], i + 1 < nframes ? ZMQ_SNDMORE : 0);
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 5000) <= 0)
        return -1;
    qr_msg_t m;
    char err[256];
    int rc = qr_wire_recv(sock, false, QR_PROTO_CLIENT, 0, &m, err, sizeof err);
    assert_int_equal(rc, QR_OK);
    int cmd = m.cmd;
    if (cmd == QR_CMD_ERROR) {
        Quarry__Error *e = (Quarry__Error *)qr_msg_decode(&m, &quarry__error__descriptor, err, sizeof err);
        assert_non_null(e);
        *code = e->code;
        snprintf(msg, msglen, "%s", e->message);
        protobuf_c_message_free_unpacked(&e->base, NULL);
    }
    qr_msg_close(&m);
    return cmd;
}

static void test_bad_input(void **state)
{
    (void)state;
    char db[512];
    h_db_create("qr_it_bad", db, sizeof db);
    pid_t b = h_broker("bad-broker", db, 27140, 27141, "--max-input-bytes=65536", NULL);
    pid_t w = h_worker("bad-w", 27141, "w", "op", 1, 10, NULL);
    quarry_client_t *c = h_client(27140, "frank");
    assert_int_equal(quarry_deposit(c, "frank", 1000000, NULL), QUARRY_OK);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(s, "tcp://127.0.0.1:27140"), 0);
    int code = 0;
    char msg[256] = "";
    /* wrong protocol */
    const void *f1[] = {"HTTP/", "\x01", ""};
    size_t l1[] = {5, 1, 0};
    assert_int_equal(s_raw(s, 3, f1, l1, &code, msg, sizeof msg), QR_CMD_ERROR);
    assert_int_equal(code, QR_EPROTO);
    assert_non_null(strstr(msg, "protocol"));
    /* too few frames */
    const void *f2[] = {QR_PROTO_CLIENT};
    size_t l2[] = {5};
    assert_int_equal(s_raw(s, 1, f2, l2, &code, msg, sizeof msg), QR_CMD_ERROR);
    assert_int_equal(code, QR_EPROTO);
    /* a body that is not protobuf, before HELLO and after */
    const void *f3[] = {QR_PROTO_CLIENT, "\x01", "\xff\xff\xff\xff"};
    size_t l3[] = {5, 1, 4};
    assert_int_equal(s_raw(s, 3, f3, l3, &code, msg, sizeof msg), QR_CMD_ERROR);
    assert_int_equal(code, QR_EPROTO);
    /* anything but HELLO first is refused */
    const void *f4[] = {QR_PROTO_CLIENT, "\x03", ""};
    size_t l4[] = {5, 1, 0};
    assert_int_equal(s_raw(s, 3, f4, l4, &code, msg, sizeof msg), QR_CMD_ERROR);
    assert_int_equal(code, QR_EPERM);
    /* HELLO, then an unknown command */
    Quarry__Hello h = QUARRY__HELLO__INIT;
    h.req_id = 1;
    h.account = "frank";
    uint8_t hb[64];
    size_t hl = quarry__hello__pack(&h, hb);
    const void *f5[] = {QR_PROTO_CLIENT, "\x01", hb};
    size_t l5[] = {5, 1, hl};
    assert_int_equal(s_raw(s, 3, f5, l5, &code, msg, sizeof msg), QR_CMD_HELLO | QR_CMD_REPLY);
    const void *f6[] = {QR_PROTO_CLIENT, "\x33", ""};
    size_t l6[] = {5, 1, 0};
    assert_int_equal(s_raw(s, 3, f6, l6, &code, msg, sizeof msg), QR_CMD_ERROR);
    assert_int_equal(code, QR_EPROTO);
    assert_non_null(strstr(msg, "unknown command"));
    /* unknown kind */
    Quarry__JobSpec spec = QUARRY__JOB_SPEC__INIT;
    spec.kind = "ai.teleport";
    spec.m = spec.n = spec.k = 1;
    spec.max_price = 100;
    Quarry__Submit sub = QUARRY__SUBMIT__INIT;
    sub.req_id = 2;
    sub.spec = &spec;
    uint8_t sb[128];
    size_t sl = quarry__submit__pack(&sub, sb);
    float one = 1;
    const void *f7[] = {QR_PROTO_CLIENT, "\x02", sb, &one, &one};
    size_t l7[] = {5, 1, sl, 4, 4};
    assert_int_equal(s_raw(s, 5, f7, l7, &code, msg, sizeof msg), QR_CMD_ERROR);
    assert_int_equal(code, QR_EKIND);
    assert_non_null(strstr(msg, "ai.teleport"));
    /* inputs that do not match the shape */
    spec.kind = "ai.gemm";
    spec.m = 2;
    sl = quarry__submit__pack(&sub, sb);
    assert_int_equal(s_raw(s, 5, f7, l7, &code, msg, sizeof msg), QR_CMD_ERROR);
    assert_int_equal(code, QR_EINVAL);
    assert_non_null(strstr(msg, "input frames"));
    /* inputs holding NaN are refused at submit (they would prove nothing) */
    float nan_in[4] = {1, NAN, 3, 4}, ones[4] = {1, 1, 1, 1};
    quarry_job_opts_t on = s_opts(1000);
    uint64_t nid;
    assert_int_equal(quarry_gemm_submit(c, 2, 2, 2, nan_in, ones, &on, &nid, NULL, NULL), QUARRY_EINVAL);
    assert_non_null(strstr(quarry_client_last_error(c), "finite"));
    /* oversize input, through the SDK: 128x128x128 is 128 KiB over a 64 KiB limit */
    float *big = calloc(128 * 128, sizeof *big);
    quarry_job_opts_t o = s_opts(1000);
    uint64_t id;
    assert_int_equal(quarry_gemm_submit(c, 128, 128, 128, big, big, &o, &id, NULL, NULL), QUARRY_ETOOBIG);
    assert_non_null(strstr(quarry_client_last_error(c), "limit"));
    free(big);
    /* garbage on the worker port too */
    void *ws = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(ws, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(ws, "tcp://127.0.0.1:27141");
    zmq_send(ws, "junk", 4, 0);
    zmq_send(ws, QR_PROTO_WORKER, 5, ZMQ_SNDMORE);
    zmq_send(ws, "\x05", 1, ZMQ_SNDMORE);
    zmq_send(ws, "\xff\xff", 2, 0); /* RESULT from a stranger */
    zmq_close(ws);
    /* still serving: a real job goes through */
    float a[4] = {1, 2, 3, 4}, id2[4] = {1, 0, 0, 1};
    assert_int_equal(quarry_gemm_submit(c, 2, 2, 2, a, id2, &o, &id, NULL, NULL), QUARRY_OK);
    quarry_job_info_t info;
    assert_int_equal(quarry_job_wait(c, id, 30000, NULL, NULL, &info), QUARRY_OK);
    assert_true(h_alive(b));
    zmq_close(s);
    zmq_ctx_term(ctx);
    quarry_client_destroy(&c);
    h_stop(w, SIGTERM, 10000);
    assert_int_equal(h_stop(b, SIGTERM, 10000), 0);
    h_db_drop("qr_it_bad");
}

static void s_pg(const char *cmd, const char *dir, int port)
{
    char line[1024];
    snprintf(line, sizeof line, "%s %s %s %d >/dev/null", QR_PGSH, cmd, dir, port);
    assert_int_equal(system(line), 0);
}

/* The database stops under a running broker: clients get a clear QR_EDB,
 * the broker stays up, and when the database returns it carries on with
 * nothing lost. */
static void test_database_stopped(void **state)
{
    (void)state;
    char dir[256], db[512];
    char cwd[200];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(dir, sizeof dir, "%s/pgdown", cwd);
    s_pg("stop", dir, 27159); /* a cluster left by an earlier failed run */
    s_pg("start", dir, 27159);
    snprintf(db, sizeof db, "host=%s port=27159 dbname=postgres user=postgres", dir);
    pid_t b = h_broker("dbdown-broker", db, 27150, 27151, "--metrics-addr=127.0.0.1:27152", NULL);
    pid_t w = h_worker("dbdown-w", 27151, "w", "op", 1, 10, NULL);
    quarry_client_t *c = h_client(27150, "gina");
    assert_int_equal(quarry_deposit(c, "gina", 1000000, NULL), QUARRY_OK);
    float a[4] = {1, 2, 3, 4}, e[4] = {1, 0, 0, 1};
    quarry_job_opts_t o = s_opts(1000);
    uint64_t before;
    assert_int_equal(quarry_gemm_submit(c, 2, 2, 2, a, e, &o, &before, NULL, NULL), QUARRY_OK);
    quarry_job_info_t info;
    assert_int_equal(quarry_job_wait(c, before, 30000, NULL, NULL, &info), QUARRY_OK);
    s_pg("halt", dir, 27159);
    uint64_t id;
    int rc = quarry_gemm_submit(c, 2, 2, 2, a, e, &o, &id, NULL, NULL);
    assert_int_equal(rc, QUARRY_EDB);
    assert_non_null(strstr(quarry_client_last_error(c), "database"));
    assert_int_equal(quarry_gemm_submit(c, 2, 2, 2, a, e, &o, &id, NULL, NULL), QUARRY_EDB);
    assert_true(h_alive(b));
    /* health and metrics say so */
    static char m[1 << 16];
    assert_int_equal(h_http_get(27152, "/healthz", m, sizeof m), 503);
    assert_non_null(strstr(m, "database unavailable"));
    assert_int_equal(h_http_get(27152, "/metrics", m, sizeof m), 200);
    assert_int_equal((int64_t)h_metric(m, "quarry_up"), 0);
    assert_true(h_metric(m, "quarry_requests_refused_total{code=\"EDB\"}") >= 2);
    s_pg("start", dir, 27159);
    rc = QUARRY_EDB;
    for (int i = 0; i < 100 && rc == QUARRY_EDB; i++) {
        rc = quarry_gemm_submit(c, 2, 2, 2, a, e, &o, &id, NULL, NULL);
        if (rc == QUARRY_EDB)
            h_sleep_ms(200);
    }
    assert_int_equal(rc, QUARRY_OK);
    assert_int_equal(quarry_job_wait(c, id, 30000, NULL, NULL, &info), QUARRY_OK);
    assert_int_equal(h_http_get(27152, "/healthz", m, sizeof m), 200);
    assert_int_equal(quarry_job_status(c, before, &info), QUARRY_OK);
    assert_int_equal(info.state, QUARRY_JOB_SETTLED);
    h_check_books(db);
    assert_int_equal(h_sql(db, "SELECT count(*) FROM settlements"), 2);
    quarry_client_destroy(&c);
    h_stop(w, SIGTERM, 10000);
    assert_int_equal(h_stop(b, SIGTERM, 10000), 0);
    s_pg("stop", dir, 27159);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_worker_killed_mid_job, s_each),
        cmocka_unit_test_setup(test_broker_killed_under_load, s_each),
        cmocka_unit_test_setup(test_wrong_result_not_paid, s_each),
        cmocka_unit_test_setup(test_input_cache_miss, s_each),
        cmocka_unit_test_setup(test_limits, s_each),
        cmocka_unit_test_setup(test_standby_takeover, s_each),
        cmocka_unit_test_setup(test_bad_input, s_each),
        cmocka_unit_test_setup(test_database_stopped, s_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
