/* End to end through real processes: 1,000 ai.gemm jobs submitted, computed
 * by two workers, verified, settled exactly once, with books that balance;
 * plus funds, deadlines, cancel, idempotency, listings and the dashboard. */
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

#include <zmq.h>

#include "err.h"
#include "gemm.h"
#include "harness.h"
#include "wire.h"

#define CPORT 27100
#define WPORT 27101
#define NJOBS 1000
#define DEPOSIT 10000000

static char s_db[512];
static pid_t s_broker, s_w1, s_w2;
static quarry_client_t *s_alice;

static int s_setup(void **state)
{
    (void)state;
    h_db_create("qr_it_e2e", s_db, sizeof s_db);
    /* keep few finished jobs in memory, so most requests below about
     * finished jobs are answered from PostgreSQL */
    s_broker = h_broker("e2e-broker", s_db, CPORT, WPORT, "--keep-final-jobs=50",
                        "--metrics-addr=127.0.0.1:27102", NULL);
    s_w1 = h_worker("e2e-w1", WPORT, "w1", "op-a", 1, 100, "--metrics-addr=127.0.0.1:27103", NULL);
    s_w2 = h_worker("e2e-w2", WPORT, "w2", "op-b", 1, 120, NULL);
    s_alice = h_client(CPORT, "alice");
    quarry_balance_t b;
    assert_int_equal(quarry_deposit(s_alice, "alice", DEPOSIT, &b), QUARRY_OK);
    assert_int_equal(b.available, DEPOSIT);
    h_wait_online(s_alice, 2);
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    quarry_client_destroy(&s_alice);
    h_stop(s_w1, SIGTERM, 10000);
    h_stop(s_w2, SIGTERM, 10000);
    assert_int_equal(h_stop(s_broker, SIGTERM, 10000), 0); /* clean exit */
    h_db_drop("qr_it_e2e");
    return 0;
}

static void test_thousand_jobs(void **state)
{
    (void)state;
    static uint64_t ids[NJOBS];
    static uint32_t dims[NJOBS][3];
    static float *as[NJOBS], *bs[NJOBS];
    static const uint32_t sizes[] = {8, 16, 33, 64};
    unsigned seed = 2026;
    quarry_job_opts_t o;
    quarry_job_opts_init(&o);
    o.max_price = 1000;
    for (int i = 0; i < NJOBS; i++) {
        uint32_t m = sizes[rand_r(&seed) % 4], n = sizes[rand_r(&seed) % 4], k = sizes[rand_r(&seed) % 4];
        dims[i][0] = m;
        dims[i][1] = n;
        dims[i][2] = k;
        as[i] = malloc(sizeof(float) * m * k);
        bs[i] = malloc(sizeof(float) * k * n);
        h_random(as[i], (size_t)m * k, &seed);
        h_random(bs[i], (size_t)k * n, &seed);
        uint64_t reserved = 0;
        bool dup = true;
        assert_int_equal(quarry_gemm_submit(s_alice, m, n, k, as[i], bs[i], &o, &ids[i], &reserved, &dup),
                         QUARRY_OK);
        assert_int_equal(reserved, 1000);
        assert_false(dup);
    }
    for (int i = 0; i < NJOBS; i++) {
        quarry_job_info_t info;
        assert_int_equal(quarry_job_wait(s_alice, ids[i], 120000, NULL, NULL, &info), QUARRY_OK);
        assert_int_equal(info.state, QUARRY_JOB_SETTLED);
        uint32_t m = dims[i][0], n = dims[i][1], k = dims[i][2];
        float *got = NULL;
        size_t count = 0;
        assert_int_equal(quarry_job_result_alloc(s_alice, ids[i], &got, &count, NULL), QUARRY_OK);
        assert_int_equal(count, (size_t)m * n);
        float *want = malloc(sizeof(float) * m * n);
        qr_gemm_rows(as[i], bs[i], want, m, n, k, 0, m);
        for (size_t e = 0; e < count; e++)
            assert_true(fabsf(got[e] - want[e]) <= 1e-4f * (float)k);
        quarry_free(got);
        free(want);
        free(as[i]);
        free(bs[i]);
    }
    /* exactly once, and the books balance */
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM settlements"), NJOBS);
    assert_int_equal(h_sql(s_db, "SELECT count(DISTINCT job_id) FROM settlements"), NJOBS);
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM jobs WHERE state='settled'"), NJOBS);
    assert_int_equal(h_sql(s_db, "SELECT coalesce(sum(amount),0) FROM ledger_entries"), 0);
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM (SELECT txn_id FROM ledger_entries "
                                 "GROUP BY txn_id HAVING sum(amount) <> 0) t"), 0);
    h_check_books(s_db);
    int64_t paid = h_sql(s_db, "SELECT sum(price) FROM settlements");
    int64_t fees = h_sql(s_db, "SELECT sum(fee) FROM settlements");
    assert_true(paid >= NJOBS * 100 && paid <= NJOBS * 120);
    assert_int_equal(fees, h_sql(s_db, "SELECT sum(price * 500 / 10000) FROM settlements"));
    quarry_balance_t b;
    assert_int_equal(quarry_balance(s_alice, NULL, &b), QUARRY_OK);
    assert_int_equal(b.available, DEPOSIT - paid);
    assert_int_equal(b.reserved, 0);
    quarry_balance_t opa, opb;
    assert_int_equal(quarry_balance(s_alice, "op-a", &opa), QUARRY_OK);
    assert_int_equal(quarry_balance(s_alice, "op-b", &opb), QUARRY_OK);
    assert_int_equal(opa.available + opb.available, paid - fees);
    assert_int_equal(opa.available, h_sql(s_db, "SELECT coalesce(sum(s.price - s.fee),0) FROM settlements s "
                                                "JOIN accounts a ON a.id = s.operator_id WHERE a.name='op-a'"));
    /* every job walked the whole state machine, in order */
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM (SELECT job_id, string_agg(state, ',' ORDER BY id) s "
                                 "FROM job_events GROUP BY job_id) t "
                                 "WHERE s <> 'queued,assigned,running,done,verified,settled'"), 0);
    /* the dashboard agrees */
    quarry_dash_t *d = NULL;
    assert_int_equal(quarry_dash(s_alice, &d), QUARRY_OK);
    assert_int_equal(d->ledger_sum, 0);
    assert_true(d->settled_total >= NJOBS);
    assert_int_equal(d->workers, 2);
    assert_true(d->p50_ms > 0 && d->p99_ms >= d->p50_ms);
    /* submits were sequential, so the cheaper worker may have done them all */
    assert_int_equal(d->noperators, h_sql(s_db, "SELECT count(DISTINCT operator_id) FROM settlements"));
    for (size_t i = 0; i < d->noperators; i++)
        assert_int_equal(d->operators[i].earned,
                         strcmp(d->operators[i].operator_, "op-a") == 0 ? opa.available : opb.available);
    quarry_dash_free(&d);
    static char m[1 << 16];
    /* per worker: jobs done and earnings add up to the settlements */
    quarry_worker_info_t *ws = NULL;
    size_t nw = 0;
    assert_int_equal(quarry_workers(s_alice, &ws, &nw), QUARRY_OK);
    uint64_t done = 0, earned = 0, w1_done = 0;
    for (size_t i = 0; i < nw; i++) {
        done += ws[i].jobs_done;
        earned += ws[i].earned;
        if (strcmp(ws[i].name, "w1") == 0)
            w1_done = ws[i].jobs_done;
    }
    /* and w1's own metrics agree with the broker */
    assert_int_equal(h_http_get(27103, "/metrics", m, sizeof m), 200);
    assert_int_equal((uint64_t)h_metric(m, "quarry_worker_jobs_total{outcome=\"done\"}"), w1_done);
    assert_int_equal((int64_t)h_metric(m, "quarry_worker_registered"), 1);
    assert_true(w1_done == 0 || h_metric(m, "quarry_worker_busy_seconds_total{device=\"cpu0\"}") > 0);
    assert_int_equal(h_http_get(27103, "/healthz", m, sizeof m), 200);
    quarry_workers_free(&ws);
    assert_int_equal(done, NJOBS);
    assert_int_equal((int64_t)earned, paid - fees);
    /* Prometheus metrics agree with the books */
    assert_int_equal(h_http_get(27102, "/metrics", m, sizeof m), 200);
    assert_int_equal((int64_t)h_metric(m, "quarry_jobs_ended_total{state=\"settled\"}"), NJOBS);
    assert_int_equal((int64_t)h_metric(m, "quarry_jobs_submitted_total"), NJOBS);
    assert_int_equal((int64_t)h_metric(m, "quarry_settled_base_units_total{part=\"price\"}"), paid);
    assert_int_equal((int64_t)h_metric(m, "quarry_settled_base_units_total{part=\"fee\"}"), fees);
    assert_int_equal((int64_t)h_metric(m, "quarry_verification_failures_total"), 0);
    assert_int_equal((int64_t)h_metric(m, "quarry_workers_connected"), 2);
    assert_int_equal((int64_t)h_metric(m, "quarry_queue_depth{kind=\"ai.gemm\"}"), 0);
    assert_int_equal((int64_t)h_metric(m, "quarry_dispatch_latency_seconds_count"), NJOBS);
    assert_true(h_metric(m, "quarry_db_commit_seconds_count") >= 1);
    assert_int_equal((int64_t)h_metric(m, "quarry_up"), 1);
    assert_int_equal(h_http_get(27102, "/healthz", m, sizeof m), 200);
    assert_int_equal(h_http_get(27102, "/nope", m, sizeof m), 404);
    /* the first job left the broker's memory long ago: the database answers */
    quarry_job_info_t first;
    assert_int_equal(quarry_job_status(s_alice, ids[0], &first), QUARRY_OK);
    assert_int_equal(first.state, QUARRY_JOB_SETTLED);
    assert_int_equal(quarry_job_wait(s_alice, ids[0], 5000, NULL, NULL, &first), QUARRY_OK);
    assert_int_equal(quarry_job_cancel(s_alice, ids[0], &first), QUARRY_ESTATE);
    assert_non_null(strstr(quarry_client_last_error(s_alice), "already settled"));
    quarry_job_info_t *list = NULL;
    size_t n = 0;
    assert_int_equal(quarry_job_list(s_alice, "settled", 10, false, &list, &n), QUARRY_OK);
    assert_int_equal(n, 10);
    assert_int_equal(list[0].state, QUARRY_JOB_SETTLED);
    quarry_job_list_free(&list);
}

static void test_funds_and_idempotency(void **state)
{
    (void)state;
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1};
    quarry_job_opts_t o;
    quarry_job_opts_init(&o);
    o.max_price = 1000;
    quarry_client_t *bob = h_client(CPORT, "bob");
    uint64_t id;
    assert_int_equal(quarry_gemm_submit(bob, 2, 2, 2, a, b, &o, &id, NULL, NULL), QUARRY_EFUNDS);
    assert_non_null(strstr(quarry_client_last_error(bob), "balance"));
    quarry_client_destroy(&bob);
    o.idem_key = "order-17";
    uint64_t id1, id2;
    bool dup;
    assert_int_equal(quarry_gemm_submit(s_alice, 2, 2, 2, a, b, &o, &id1, NULL, &dup), QUARRY_OK);
    assert_false(dup);
    assert_int_equal(quarry_gemm_submit(s_alice, 2, 2, 2, a, b, &o, &id2, NULL, &dup), QUARRY_OK);
    assert_true(dup);
    assert_int_equal(id1, id2);
    quarry_job_info_t info;
    assert_int_equal(quarry_job_wait(s_alice, id1, 30000, NULL, NULL, &info), QUARRY_OK);
    float c[4];
    size_t cnt;
    assert_int_equal(quarry_job_result(s_alice, id1, c, 4, &cnt, NULL), QUARRY_OK);
    assert_true(c[0] == 1 && c[1] == 2 && c[2] == 3 && c[3] == 4);
    /* the same matrices again, one after another: stored once */
    int64_t blobs0 = h_sql(s_db, "SELECT count(*) FROM blobs");
    quarry_job_opts_t plain;
    quarry_job_opts_init(&plain);
    plain.max_price = 1000;
    for (int i = 0; i < 5; i++) {
        uint64_t again;
        assert_int_equal(quarry_gemm_submit(s_alice, 2, 2, 2, a, b, &plain, &again, NULL, &dup), QUARRY_OK);
        assert_false(dup);
        assert_true(again != id1);
        assert_int_equal(quarry_job_wait(s_alice, again, 30000, NULL, NULL, &info), QUARRY_OK);
        assert_int_equal(quarry_job_result(s_alice, again, c, 4, &cnt, NULL), QUARRY_OK);
        assert_true(c[0] == 1 && c[3] == 4);
    }
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM blobs"), blobs0);
    /* nobody else sees alice's job */
    quarry_client_t *eve = h_client(CPORT, "eve");
    assert_int_equal(quarry_job_status(eve, id1, &info), QUARRY_ENOTFOUND);
    assert_int_equal(quarry_job_cancel(eve, id1, &info), QUARRY_ENOTFOUND);
    quarry_client_destroy(&eve);
    /* a settled job cannot be cancelled */
    assert_int_equal(quarry_job_cancel(s_alice, id1, &info), QUARRY_ESTATE);
}

/* A cap below every ask parks the job; its deadline expires it, or the
 * client cancels it, and either way the reservation comes back. */
static void test_deadline_and_cancel(void **state)
{
    (void)state;
    float a[1] = {2}, b[1] = {3};
    quarry_balance_t before, after;
    assert_int_equal(quarry_balance(s_alice, NULL, &before), QUARRY_OK);
    quarry_job_opts_t o;
    quarry_job_opts_init(&o);
    o.max_price = 50; /* asks are 100 and 120 per unit */
    o.timeout_ms = 600;
    uint64_t exp_id, can_id;
    assert_int_equal(quarry_gemm_submit(s_alice, 1, 1, 1, a, b, &o, &exp_id, NULL, NULL), QUARRY_OK);
    o.timeout_ms = 0;
    assert_int_equal(quarry_gemm_submit(s_alice, 1, 1, 1, a, b, &o, &can_id, NULL, NULL), QUARRY_OK);
    quarry_job_info_t info;
    assert_int_equal(quarry_job_wait(s_alice, exp_id, 10000, NULL, NULL, &info), QUARRY_EEXPIRED);
    assert_int_equal(info.state, QUARRY_JOB_EXPIRED);
    assert_int_equal(quarry_job_status(s_alice, can_id, &info), QUARRY_OK);
    assert_int_equal(info.state, QUARRY_JOB_QUEUED);
    assert_int_equal(quarry_job_cancel(s_alice, can_id, &info), QUARRY_OK);
    assert_int_equal(info.state, QUARRY_JOB_CANCELLED);
    float cbuf[1];
    assert_int_equal(quarry_job_result(s_alice, can_id, cbuf, 1, NULL, NULL), QUARRY_ECANCELLED);
    assert_int_equal(quarry_balance(s_alice, NULL, &after), QUARRY_OK);
    assert_int_equal(after.available, before.available);
    assert_int_equal(after.reserved, 0);
    h_check_books(s_db);
}

/* Inputs uploaded once and named by SHA-256: computed like inline ones,
 * stored once, and a wrong name, size or frame count is refused. */
static void test_input_by_reference(void **state)
{
    (void)state;
    enum { M = 5, K = 7, N = 3 };
    float ab[M * K + K * N], c[M * N];
    unsigned seed = 11;
    h_random(ab, M * K + K * N, &seed);
    char sha[QUARRY_SHA_HEX + 1];
    assert_int_equal(quarry_upload_mem(s_alice, ab, sizeof ab, sha), QUARRY_OK);
    quarry_job_opts_t o;
    quarry_job_opts_init(&o);
    o.max_price = 1000;
    uint64_t ids[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(quarry_gemm_submit_ref(s_alice, M, N, K, sha, &o, &ids[i], NULL, NULL),
                         QUARRY_OK);
    for (int i = 0; i < 3; i++) {
        quarry_job_info_t info;
        assert_int_equal(quarry_job_wait(s_alice, ids[i], 30000, NULL, NULL, &info), QUARRY_OK);
        size_t cnt = 0;
        assert_int_equal(quarry_job_result(s_alice, ids[i], c, M * N, &cnt, NULL), QUARRY_OK);
        assert_int_equal(cnt, M * N);
        for (int r = 0; r < M; r++)
            for (int q = 0; q < N; q++) {
                double want = 0;
                for (int x = 0; x < K; x++)
                    want += (double)ab[r * K + x] * ab[M * K + x * N + q];
                assert_true(fabs(c[r * N + q] - want) < 1e-4);
            }
    }
    /* one input blob for the three jobs */
    assert_int_equal(h_sql(s_db,
                           "SELECT count(DISTINCT input_blob) FROM jobs WHERE id IN "
                           "(%llu, %llu, %llu)",
                           (unsigned long long)ids[0], (unsigned long long)ids[1],
                           (unsigned long long)ids[2]),
                     1);
    uint64_t id;
    /* the artifact is A and B of 5x7 and 7x3: not of 5x7 and 7x4 */
    assert_int_equal(quarry_gemm_submit_ref(s_alice, M, 4, K, sha, &o, &id, NULL, NULL),
                     QUARRY_EINVAL);
    assert_non_null(strstr(quarry_client_last_error(s_alice), "needs"));
    char missing[QUARRY_SHA_HEX + 1];
    memset(missing, 'e', QUARRY_SHA_HEX);
    missing[QUARRY_SHA_HEX] = '\0';
    assert_int_equal(quarry_gemm_submit_ref(s_alice, M, N, K, missing, &o, &id, NULL, NULL),
                     QUARRY_ENOTFOUND);
    assert_non_null(strstr(quarry_client_last_error(s_alice), "upload"));
    /* an artifact that is not finite floats is refused like inline input */
    float bad[M * K + K * N];
    memcpy(bad, ab, sizeof bad);
    bad[3] = NAN;
    char bsha[QUARRY_SHA_HEX + 1];
    assert_int_equal(quarry_upload_mem(s_alice, bad, sizeof bad, bsha), QUARRY_OK);
    assert_int_equal(quarry_gemm_submit_ref(s_alice, M, N, K, bsha, &o, &id, NULL, NULL),
                     QUARRY_EINVAL);
    assert_non_null(strstr(quarry_client_last_error(s_alice), "finite"));
    h_check_books(s_db);
}

/* Raw SUBMIT on socket s; returns the reply's command and fills its error
 * code or job id. */
static int s_raw_submit(void *s, uint64_t req, uint32_t watch, const char *input, const float *ab,
                        int nframes, uint64_t *job_id, int *code)
{
    Quarry__JobSpec sp = QUARRY__JOB_SPEC__INIT;
    sp.kind = "ai.gemm";
    sp.m = sp.n = sp.k = 2;
    sp.max_price = 1000;
    sp.input = (char *)(input ? input : "");
    Quarry__Submit sub = QUARRY__SUBMIT__INIT;
    sub.req_id = req;
    sub.spec = &sp;
    sub.watch = watch;
    qr_payload_t pl[2] = {{ab, 4 * sizeof(float)}, {ab + 4, 4 * sizeof(float)}};
    assert_int_equal(
        qr_wire_send(s, NULL, 0, QR_PROTO_CLIENT, QR_CMD_SUBMIT, &sub.base, pl, nframes), 0);
    qr_msg_t m;
    char why[256];
    assert_int_equal(qr_wire_recv(s, false, QR_PROTO_CLIENT, 0, &m, why, sizeof why), QR_OK);
    int cmd = m.cmd;
    if (cmd == QR_CMD_ERROR) {
        Quarry__Error *e =
            (Quarry__Error *)qr_msg_decode(&m, &quarry__error__descriptor, why, sizeof why);
        assert_non_null(e);
        *code = e->code;
        protobuf_c_message_free_unpacked(&e->base, NULL);
    } else if (cmd == (QR_CMD_SUBMIT | QR_CMD_REPLY)) {
        Quarry__SubmitAck *a = (Quarry__SubmitAck *)qr_msg_decode(
            &m, &quarry__submit_ack__descriptor, why, sizeof why);
        assert_non_null(a);
        assert_int_equal(a->req_id, req);
        *job_id = a->job_id;
        protobuf_c_message_free_unpacked(&a->base, NULL);
    }
    qr_msg_close(&m);
    return cmd;
}

/* Next EVENT on s: its request id and state name (into st). */
static uint64_t s_next_event(void *s, char *st, size_t stlen)
{
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&it, 1, 30000), 1);
    qr_msg_t m;
    char why[256];
    assert_int_equal(qr_wire_recv(s, false, QR_PROTO_CLIENT, 0, &m, why, sizeof why), QR_OK);
    assert_int_equal(m.cmd, QR_CMD_EVENT);
    Quarry__Event *ev =
        (Quarry__Event *)qr_msg_decode(&m, &quarry__event__descriptor, why, sizeof why);
    assert_non_null(ev);
    assert_non_null(ev->job);
    snprintf(st, stlen, "%s", ev->job->state);
    uint64_t req = ev->req_id;
    protobuf_c_message_free_unpacked(&ev->base, NULL);
    qr_msg_close(&m);
    return req;
}

/* SUBMIT with watch: every change or only the end, on the SUBMIT's request
 * id; a bad watch value or input frames next to a named input are refused. */
static void test_watch_on_submit(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", CPORT);
    assert_int_equal(zmq_connect(s, ep), 0);
    Quarry__Hello h = QUARRY__HELLO__INIT;
    h.req_id = 1;
    h.account = "alice";
    assert_int_equal(qr_wire_send(s, NULL, 0, QR_PROTO_CLIENT, QR_CMD_HELLO, &h.base, NULL, 0), 0);
    qr_msg_t m;
    char why[256], st[32];
    assert_int_equal(qr_wire_recv(s, false, QR_PROTO_CLIENT, 0, &m, why, sizeof why), QR_OK);
    assert_int_equal(m.cmd, QR_CMD_HELLO | QR_CMD_REPLY);
    qr_msg_close(&m);
    float ab[8] = {1, 2, 3, 4, 1, 0, 0, 1};
    uint64_t id = 0;
    int code = 0;
    /* watch = 2: the ack, then one EVENT, the end */
    assert_int_equal(s_raw_submit(s, 7, 2, NULL, ab, 2, &id, &code), QR_CMD_SUBMIT | QR_CMD_REPLY);
    assert_int_equal(s_next_event(s, st, sizeof st), 7);
    assert_string_equal(st, "settled");
    /* watch = 1: the state after each batch that changed it; the ASSIGN
     * leaves only after the batch holding it is durable, so the first EVENT
     * cannot be the end yet */
    assert_int_equal(s_raw_submit(s, 8, 1, NULL, ab, 2, &id, &code), QR_CMD_SUBMIT | QR_CMD_REPLY);
    assert_int_equal(s_next_event(s, st, sizeof st), 8);
    assert_true(strcmp(st, "queued") == 0 || strcmp(st, "assigned") == 0);
    for (int n = 0; strcmp(st, "settled") != 0; n++) {
        assert_true(n < 10);
        assert_int_equal(s_next_event(s, st, sizeof st), 8);
    }
    quarry_job_info_t info;
    assert_int_equal(quarry_job_status(s_alice, id, &info), QUARRY_OK);
    assert_int_equal(info.state, QUARRY_JOB_SETTLED);
    /* refused: watch 3; a named input with frames besides */
    assert_int_equal(s_raw_submit(s, 9, 3, NULL, ab, 2, &id, &code), QR_CMD_ERROR);
    assert_int_equal(code, QR_EINVAL);
    char sha[QUARRY_SHA_HEX + 1];
    assert_int_equal(quarry_upload_mem(s_alice, ab, sizeof ab, sha), QUARRY_OK);
    assert_int_equal(s_raw_submit(s, 10, 0, sha, ab, 2, &id, &code), QR_CMD_ERROR);
    assert_int_equal(code, QR_EINVAL);
    /* the same by name, without frames, watched to its end */
    assert_int_equal(s_raw_submit(s, 11, 2, sha, ab, 0, &id, &code), QR_CMD_SUBMIT | QR_CMD_REPLY);
    assert_int_equal(s_next_event(s, st, sizeof st), 11);
    assert_string_equal(st, "settled");
    zmq_close(s);
    zmq_ctx_term(ctx);
    h_check_books(s_db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thousand_jobs),       cmocka_unit_test(test_funds_and_idempotency),
        cmocka_unit_test(test_deadline_and_cancel), cmocka_unit_test(test_input_by_reference),
        cmocka_unit_test(test_watch_on_submit),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
