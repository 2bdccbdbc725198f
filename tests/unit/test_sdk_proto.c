/* libquarry against a scripted broker peer (test_sdk_fake.c): the frames the
 * SDK sends, replies with a foreign req_id ignored, Error replies surfacing
 * code and message, WATCH events, results, lists, timeouts and reconnects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "quarry.h"
#include "test_sdk_fake.c"

static int64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- HELLO and SUBMIT ------------------------------------------------------- */

static void script_submit(fake_t *f)
{
    qr_msg_t msg;
    /* HELLO carries the account and protocol version */
    FAKE_CHECK(f, fake_recv(f, &msg, 2000) == 0);
    FAKE_CHECK(f, msg.cmd == QR_CMD_HELLO);
    char err[128];
    Quarry__Hello *h = (Quarry__Hello *)qr_msg_decode(&msg, &quarry__hello__descriptor, err, sizeof err);
    FAKE_CHECK(f, h && !strcmp(h->account, "alice") && h->version == 1 && h->req_id != 0);
    Quarry__HelloAck a = QUARRY__HELLO_ACK__INIT;
    a.req_id = h->req_id;
    a.account_id = 7;
    protobuf_c_message_free_unpacked(&h->base, NULL);
    fake_send(f, &msg, QR_CMD_HELLO | QR_CMD_REPLY, &a.base, NULL, 0);
    qr_msg_close(&msg);

    Quarry__Submit *s = (Quarry__Submit *)fake_expect(f, &msg, QR_CMD_SUBMIT, &quarry__submit__descriptor);
    FAKE_CHECK(f, s && s->spec);
    FAKE_CHECK(f, !strcmp(s->spec->kind, "ai.gemm"));
    FAKE_CHECK(f, s->spec->m == 2 && s->spec->n == 3 && s->spec->k == 4);
    FAKE_CHECK(f, s->spec->max_price == 500 && s->spec->timeout_ms == 9000);
    FAKE_CHECK(f, s->spec->need_gpu && s->spec->priority == 3 && s->spec->max_attempts == 2);
    FAKE_CHECK(f, s->spec->min_mem_mb == 64);
    FAKE_CHECK(f, !strcmp(s->idem_key, "key-1"));
    FAKE_CHECK(f, qr_msg_npayload(&msg) == 2);
    size_t la, lb;
    const float *A = qr_msg_payload(&msg, 0, &la);
    const float *B = qr_msg_payload(&msg, 1, &lb);
    FAKE_CHECK(f, la == 2 * 4 * sizeof(float) && lb == 4 * 3 * sizeof(float));
    FAKE_CHECK(f, A[0] == 1.0f && A[7] == 8.0f && B[0] == -1.0f && B[11] == -12.0f);
    uint64_t rid = s->req_id;
    protobuf_c_message_free_unpacked(&s->base, NULL);

    /* noise first: a reply with another req_id, an EVENT, an Error for
     * another request; the SDK must skip all three */
    Quarry__SubmitAck ack = QUARRY__SUBMIT_ACK__INIT;
    ack.req_id = rid + 1000;
    ack.job_id = 999;
    fake_send(f, &msg, QR_CMD_SUBMIT | QR_CMD_REPLY, &ack.base, NULL, 0);
    Quarry__JobInfo j = fake_job(5, "running", 10);
    Quarry__Event ev = QUARRY__EVENT__INIT;
    ev.req_id = rid;
    ev.job = &j;
    fake_send(f, &msg, QR_CMD_EVENT, &ev.base, NULL, 0);
    size_t idlen;
    const void *id = qr_msg_identity(&msg, &idlen);
    qr_wire_send_error(f->router, id, idlen, QR_PROTO_CLIENT, rid + 5, 0, QR_EFUNDS, "not yours");
    ack.req_id = rid;
    ack.job_id = 42;
    ack.reserved = 500;
    fake_send(f, &msg, QR_CMD_SUBMIT | QR_CMD_REPLY, &ack.base, NULL, 0);
    qr_msg_close(&msg);

    /* the same client with bad arguments sends nothing: the next request
     * must be this STATUS */
    Quarry__JobRef *r = (Quarry__JobRef *)fake_expect(f, &msg, QR_CMD_STATUS, &quarry__job_ref__descriptor);
    FAKE_CHECK(f, r && r->job_id == 42);
    Quarry__StatusReply sr = QUARRY__STATUS_REPLY__INIT;
    sr.req_id = r->req_id;
    Quarry__JobInfo q = fake_job(42, "queued", 0);
    q.detail = (char *)"waiting";
    sr.job = &q;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    fake_send(f, &msg, QR_CMD_STATUS | QR_CMD_REPLY, &sr.base, NULL, 0);
    qr_msg_close(&msg);
}

static void test_submit(void **state)
{
    (void)state;
    fake_t f;
    assert_int_equal(fake_start(&f, script_submit, NULL), 0);
    quarry_client_t *c = NULL;
    assert_int_equal(quarry_client_new(f.endpoint, "alice", 2000, &c), QUARRY_OK);
    assert_non_null(c);
    assert_int_equal(quarry_client_account_id(c), 7);

    float A[8], B[12];
    for (int i = 0; i < 8; i++)
        A[i] = (float)(i + 1);
    for (int i = 0; i < 12; i++)
        B[i] = (float)-(i + 1);
    quarry_job_opts_t o;
    quarry_job_opts_init(&o);
    o.max_price = 500;
    o.timeout_ms = 9000;
    o.need_gpu = true;
    o.priority = 3;
    o.max_attempts = 2;
    o.min_mem_mb = 64;
    o.idem_key = "key-1";
    uint64_t id = 0, reserved = 0;
    bool dup = true;
    assert_int_equal(quarry_gemm_submit(c, 2, 3, 4, A, B, &o, &id, &reserved, &dup), QUARRY_OK);
    assert_int_equal(id, 42);
    assert_int_equal(reserved, 500);
    assert_false(dup);
    assert_string_equal(quarry_client_last_error(c), "");

    /* argument errors: no network traffic (the script expects STATUS next) */
    assert_int_equal(quarry_gemm_submit(c, 0, 3, 4, A, B, NULL, &id, NULL, NULL), QUARRY_EINVAL);
    assert_true(strlen(quarry_client_last_error(c)) > 0);
    assert_int_equal(quarry_gemm_submit(c, 2, 0, 4, A, B, NULL, &id, NULL, NULL), QUARRY_EINVAL);
    assert_int_equal(quarry_gemm_submit(c, 2, 3, 0, A, B, NULL, &id, NULL, NULL), QUARRY_EINVAL);
    assert_int_equal(quarry_gemm_submit(c, 2, 3, 4, NULL, B, NULL, &id, NULL, NULL), QUARRY_EINVAL);
    assert_int_equal(quarry_gemm_submit(c, 2, 3, 4, A, NULL, NULL, &id, NULL, NULL), QUARRY_EINVAL);
    assert_int_equal(quarry_gemm_submit(c, 2, 3, 4, A, B, NULL, NULL, NULL, NULL), QUARRY_EINVAL);
    assert_int_equal(quarry_gemm_submit(c, QUARRY_GEMM_MAX_DIM + 1, 3, 4, A, B, NULL, &id, NULL, NULL),
                     QUARRY_ETOOBIG);
    assert_int_equal(quarry_job_status(c, 42, NULL), QUARRY_EINVAL);
    assert_int_equal(quarry_balance(c, NULL, NULL), QUARRY_EINVAL);
    assert_int_equal(quarry_deposit(c, NULL, 5, NULL), QUARRY_EINVAL);
    assert_int_equal(quarry_deposit(c, "bob", 0, NULL), QUARRY_EINVAL);
    assert_int_equal(quarry_job_list(c, "nonsense", 0, false, NULL, NULL), QUARRY_EINVAL);
    quarry_job_info_t *jobs = (quarry_job_info_t *)1;
    size_t n;
    assert_int_equal(quarry_job_list(c, "nonsense", 0, false, &jobs, &n), QUARRY_EINVAL);
    assert_null(jobs);
    assert_int_equal(quarry_job_result(c, 42, NULL, 5, NULL, NULL), QUARRY_EINVAL);
    assert_int_equal(quarry_job_result_alloc(c, 42, NULL, NULL, NULL), QUARRY_EINVAL);
    assert_int_equal(quarry_workers(c, NULL, NULL), QUARRY_EINVAL);
    assert_int_equal(quarry_dash(c, NULL), QUARRY_EINVAL);

    quarry_job_info_t info;
    assert_int_equal(quarry_job_status(c, 42, &info), QUARRY_OK);
    assert_int_equal(info.job_id, 42);
    assert_int_equal(info.state, QUARRY_JOB_QUEUED);
    assert_string_equal(info.state_name, "queued");
    assert_string_equal(info.kind, "ai.gemm");
    assert_string_equal(info.detail, "waiting");
    assert_int_equal(info.m, 2);
    assert_int_equal(info.max_price, 100);

    quarry_client_destroy(&c);
    assert_null(c);
    assert_string_equal(fake_join(&f), "");
}

/* ---- Error replies ------------------------------------------------------------ */

static void script_errors(fake_t *f)
{
    qr_msg_t msg;
    FAKE_CHECK(f, fake_hello(f, &msg) == 0);
    qr_msg_close(&msg);
    size_t idlen;
    const void *id;

    Quarry__Submit *s = (Quarry__Submit *)fake_expect(f, &msg, QR_CMD_SUBMIT, &quarry__submit__descriptor);
    FAKE_CHECK(f, s);
    id = qr_msg_identity(&msg, &idlen);
    /* an Error for another request first, then ours */
    qr_wire_send_error(f->router, id, idlen, QR_PROTO_CLIENT, s->req_id + 7, 0, QR_EPERM, "other");
    qr_wire_send_error(f->router, id, idlen, QR_PROTO_CLIENT, s->req_id, 0, QR_EFUNDS,
                       "balance 5 is short of max price 100");
    protobuf_c_message_free_unpacked(&s->base, NULL);
    qr_msg_close(&msg);

    Quarry__JobRef *r = (Quarry__JobRef *)fake_expect(f, &msg, QR_CMD_RESULT, &quarry__job_ref__descriptor);
    FAKE_CHECK(f, r);
    id = qr_msg_identity(&msg, &idlen);
    qr_wire_send_error(f->router, id, idlen, QR_PROTO_CLIENT, r->req_id, r->job_id, QR_ENOTREADY, NULL);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    qr_msg_close(&msg);

    Quarry__BalanceReq *b = (Quarry__BalanceReq *)fake_expect(f, &msg, QR_CMD_BALANCE, &quarry__balance_req__descriptor);
    FAKE_CHECK(f, b && !strcmp(b->account, "nobody"));
    id = qr_msg_identity(&msg, &idlen);
    qr_wire_send_error(f->router, id, idlen, QR_PROTO_CLIENT, b->req_id, 0, QR_ENOTFOUND, "no account 'nobody'");
    protobuf_c_message_free_unpacked(&b->base, NULL);
    qr_msg_close(&msg);
}

static void test_errors(void **state)
{
    (void)state;
    fake_t f;
    assert_int_equal(fake_start(&f, script_errors, NULL), 0);
    quarry_client_t *c = NULL;
    assert_int_equal(quarry_client_new(f.endpoint, "bob", 2000, &c), QUARRY_OK);
    float A[1] = {1}, B[1] = {2};
    uint64_t id = 123;
    assert_int_equal(quarry_gemm_submit(c, 1, 1, 1, A, B, NULL, &id, NULL, NULL), QUARRY_EFUNDS);
    assert_string_equal(quarry_client_last_error(c), "balance 5 is short of max price 100");
    assert_int_equal(id, 123); /* OUT untouched on error */

    float C[4];
    size_t n = 0;
    assert_int_equal(quarry_job_result(c, 9, C, 4, &n, NULL), QUARRY_ENOTREADY);
    assert_string_equal(quarry_client_last_error(c), quarry_strerror(QUARRY_ENOTREADY));

    quarry_balance_t b;
    assert_int_equal(quarry_balance(c, "nobody", &b), QUARRY_ENOTFOUND);
    assert_string_equal(quarry_client_last_error(c), "no account 'nobody'");
    quarry_client_destroy(&c);
    assert_string_equal(fake_join(&f), "");
}

/* ---- WATCH ---------------------------------------------------------------------- */

typedef struct {
    const char *final;   /* state the job ends in */
    const char *detail;
} watch_plan_t;

static void script_watch(fake_t *f)
{
    const watch_plan_t *p = f->user;
    qr_msg_t msg;
    FAKE_CHECK(f, fake_hello(f, &msg) == 0);
    qr_msg_close(&msg);
    Quarry__JobRef *r = (Quarry__JobRef *)fake_expect(f, &msg, QR_CMD_WATCH, &quarry__job_ref__descriptor);
    FAKE_CHECK(f, r && r->job_id == 42);
    uint64_t rid = r->req_id;
    protobuf_c_message_free_unpacked(&r->base, NULL);

    Quarry__Event ev = QUARRY__EVENT__INIT;
    Quarry__JobInfo j = fake_job(42, "queued", 0);
    ev.req_id = rid;
    ev.job = &j;
    fake_send(f, &msg, QR_CMD_WATCH | QR_CMD_REPLY, &ev.base, NULL, 0);
    j = fake_job(42, "running", 500);
    fake_send(f, &msg, QR_CMD_EVENT, &ev.base, NULL, 0);
    /* an event of another watch: a final state that must not end this one */
    ev.req_id = rid + 100;
    j = fake_job(42, "cancelled", 0);
    fake_send(f, &msg, QR_CMD_EVENT, &ev.base, NULL, 0);
    ev.req_id = rid;
    j = fake_job(42, p->final, 1000);
    j.detail = (char *)p->detail;
    j.price = 80;
    j.fee = 4;
    fake_send(f, &msg, QR_CMD_EVENT, &ev.base, NULL, 0);
    qr_msg_close(&msg);
}

typedef struct {
    char states[8][16];
    int n;
} seen_t;

static int s_collect(const quarry_job_info_t *info, void *ud)
{
    seen_t *s = ud;
    if (s->n < 8)
        snprintf(s->states[s->n++], 16, "%s", info->state_name);
    return 0;
}

static void test_wait_settled(void **state)
{
    (void)state;
    watch_plan_t plan = {"settled", ""};
    fake_t f;
    assert_int_equal(fake_start(&f, script_watch, &plan), 0);
    quarry_client_t *c = NULL;
    assert_int_equal(quarry_client_new(f.endpoint, "alice", 2000, &c), QUARRY_OK);
    seen_t seen = {0};
    quarry_job_info_t info;
    assert_int_equal(quarry_job_wait(c, 42, 5000, s_collect, &seen, &info), QUARRY_OK);
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.states[0], "queued");
    assert_string_equal(seen.states[1], "running");
    assert_string_equal(seen.states[2], "settled");
    assert_int_equal(info.state, QUARRY_JOB_SETTLED);
    assert_int_equal(info.price, 80);
    assert_int_equal(info.fee, 4);
    quarry_client_destroy(&c);
    assert_string_equal(fake_join(&f), "");
}

static void test_wait_failed(void **state)
{
    (void)state;
    watch_plan_t plan = {"failed", "worker ran out of memory"};
    fake_t f;
    assert_int_equal(fake_start(&f, script_watch, &plan), 0);
    quarry_client_t *c = NULL;
    assert_int_equal(quarry_client_new(f.endpoint, "alice", 2000, &c), QUARRY_OK);
    quarry_job_info_t info;
    assert_int_equal(quarry_job_wait(c, 42, 5000, NULL, NULL, &info), QUARRY_EFAILED);
    assert_int_equal(info.state, QUARRY_JOB_FAILED);
    assert_string_equal(info.detail, "worker ran out of memory");
    assert_non_null(strstr(quarry_client_last_error(c), "worker ran out of memory"));
    quarry_client_destroy(&c);
    assert_string_equal(fake_join(&f), "");
}

static int s_stop_at_running(const quarry_job_info_t *info, void *ud)
{
    (void)ud;
    return info->state == QUARRY_JOB_RUNNING;
}

static void test_watch_stop(void **state)
{
    (void)state;
    watch_plan_t plan = {"settled", ""};
    fake_t f;
    assert_int_equal(fake_start(&f, script_watch, &plan), 0);
    quarry_client_t *c = NULL;
    assert_int_equal(quarry_client_new(f.endpoint, "alice", 2000, &c), QUARRY_OK);
    quarry_job_info_t info;
    assert_int_equal(quarry_job_watch(c, 42, 5000, s_stop_at_running, NULL, &info), QUARRY_OK);
    assert_int_equal(info.state, QUARRY_JOB_RUNNING);
    assert_int_equal(info.progress, 500);
    quarry_client_destroy(&c);
    assert_string_equal(fake_join(&f), "");
}

/* WATCH answered, then silence: the wait times out with the last state. */
static void script_watch_quiet(fake_t *f)
{
    qr_msg_t msg;
    FAKE_CHECK(f, fake_hello(f, &msg) == 0);
    qr_msg_close(&msg);
    Quarry__JobRef *r = (Quarry__JobRef *)fake_expect(f, &msg, QR_CMD_WATCH, &quarry__job_ref__descriptor);
    FAKE_CHECK(f, r);
    Quarry__Event ev = QUARRY__EVENT__INIT;
    Quarry__JobInfo j = fake_job(42, "running", 250);
    ev.req_id = r->req_id;
    ev.job = &j;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    fake_send(f, &msg, QR_CMD_WATCH | QR_CMD_REPLY, &ev.base, NULL, 0);
    qr_msg_close(&msg);
    /* stay until the client goes away */
    fake_recv(f, &msg, 1500);
    qr_msg_close(&msg);
}

static void test_wait_timeout(void **state)
{
    (void)state;
    fake_t f;
    assert_int_equal(fake_start(&f, script_watch_quiet, NULL), 0);
    quarry_client_t *c = NULL;
    assert_int_equal(quarry_client_new(f.endpoint, "alice", 2000, &c), QUARRY_OK);
    quarry_job_info_t info;
    int64_t t0 = s_ms();
    assert_int_equal(quarry_job_wait(c, 42, 300, NULL, NULL, &info), QUARRY_ETIMEOUT);
    int64_t dt = s_ms() - t0;
    assert_true(dt >= 250 && dt < 2000);
    assert_int_equal(info.state, QUARRY_JOB_RUNNING);
    assert_int_equal(info.progress, 250);
    quarry_client_destroy(&c);
    assert_string_equal(fake_join(&f), "");
}

/* ---- RESULT ------------------------------------------------------------------------ */

static void script_result(fake_t *f)
{
    qr_msg_t msg;
    FAKE_CHECK(f, fake_hello(f, &msg) == 0);
    qr_msg_close(&msg);
    const float C[6] = {1, 2, 3, 4, 5, 6};
    for (int round = 0; round < 3; round++) {
        Quarry__JobRef *r = (Quarry__JobRef *)fake_expect(f, &msg, QR_CMD_RESULT, &quarry__job_ref__descriptor);
        FAKE_CHECK(f, r && r->job_id == 42);
        Quarry__ResultReply rr = QUARRY__RESULT_REPLY__INIT;
        Quarry__JobInfo j = fake_job(42, "settled", 1000);
        rr.req_id = r->req_id;
        rr.job = &j;
        protobuf_c_message_free_unpacked(&r->base, NULL);
        /* round 2 sends a frame too short for 2 x 3 */
        qr_payload_t pl = {C, round == 2 ? 5 * sizeof(float) : sizeof C};
        fake_send(f, &msg, QR_CMD_RESULT | QR_CMD_REPLY, &rr.base, &pl, 1);
        qr_msg_close(&msg);
    }
}

static void test_result(void **state)
{
    (void)state;
    fake_t f;
    assert_int_equal(fake_start(&f, script_result, NULL), 0);
    quarry_client_t *c = NULL;
    assert_int_equal(quarry_client_new(f.endpoint, "alice", 2000, &c), QUARRY_OK);

    float C[6] = {0}, small[2] = {-1, -1};
    size_t n = 0;
    quarry_job_info_t info;
    assert_int_equal(quarry_job_result(c, 42, C, 6, &n, &info), QUARRY_OK);
    assert_int_equal(n, 6);
    assert_true(C[0] == 1.0f && C[5] == 6.0f);
    assert_int_equal(info.m, 2);
    assert_int_equal(info.n, 3);

    n = 0;
    assert_int_equal(quarry_job_result(c, 42, small, 2, &n, NULL), QUARRY_ETOOBIG);
    assert_int_equal(n, 6);
    assert_true(small[0] == -1.0f);

    float *p = (float *)1;
    assert_int_equal(quarry_job_result_alloc(c, 42, &p, &n, NULL), QUARRY_EPROTO);
    assert_null(p);
    quarry_client_destroy(&c);
    assert_string_equal(fake_join(&f), "");
}

static void script_result_alloc(fake_t *f)
{
    qr_msg_t msg;
    FAKE_CHECK(f, fake_hello(f, &msg) == 0);
    qr_msg_close(&msg);
    Quarry__JobRef *r = (Quarry__JobRef *)fake_expect(f, &msg, QR_CMD_RESULT, &quarry__job_ref__descriptor);
    FAKE_CHECK(f, r);
    Quarry__ResultReply rr = QUARRY__RESULT_REPLY__INIT;
    Quarry__JobInfo j = fake_job(42, "mirrored", 1000);
    rr.req_id = r->req_id;
    rr.job = &j;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    const float C[6] = {6, 5, 4, 3, 2, 1};
    qr_payload_t pl = {C, sizeof C};
    fake_send(f, &msg, QR_CMD_RESULT | QR_CMD_REPLY, &rr.base, &pl, 1);
    qr_msg_close(&msg);
}

static void test_result_alloc(void **state)
{
    (void)state;
    fake_t f;
    assert_int_equal(fake_start(&f, script_result_alloc, NULL), 0);
    quarry_client_t *c = NULL;
    assert_int_equal(quarry_client_new(f.endpoint, "alice", 2000, &c), QUARRY_OK);
    float *C = NULL;
    size_t n = 0;
    assert_int_equal(quarry_job_result_alloc(c, 42, &C, &n, NULL), QUARRY_OK);
    assert_non_null(C);
    assert_int_equal(n, 6);
    assert_true(C[0] == 6.0f && C[5] == 1.0f);
    quarry_free(C);
    quarry_client_destroy(&c);
    assert_string_equal(fake_join(&f), "");
}

/* ---- lists, balances, dashboard ------------------------------------------------------ */

static void script_lists(fake_t *f)
{
    qr_msg_t msg;
    FAKE_CHECK(f, fake_hello(f, &msg) == 0);
    qr_msg_close(&msg);

    Quarry__ListReq *l = (Quarry__ListReq *)fake_expect(f, &msg, QR_CMD_LIST, &quarry__list_req__descriptor);
    FAKE_CHECK(f, l && !strcmp(l->state, "running") && l->limit == 10 && l->all_accounts);
    Quarry__ListReply lr = QUARRY__LIST_REPLY__INIT;
    Quarry__JobInfo j1 = fake_job(1, "running", 100), j2 = fake_job(2, "running", 900);
    Quarry__JobInfo *js[2] = {&j1, &j2};
    lr.req_id = l->req_id;
    lr.n_jobs = 2;
    lr.jobs = js;
    protobuf_c_message_free_unpacked(&l->base, NULL);
    fake_send(f, &msg, QR_CMD_LIST | QR_CMD_REPLY, &lr.base, NULL, 0);
    qr_msg_close(&msg);

    Quarry__Empty *e = (Quarry__Empty *)fake_expect(f, &msg, QR_CMD_WORKERS, &quarry__empty__descriptor);
    FAKE_CHECK(f, e);
    Quarry__WorkersReply wr = QUARRY__WORKERS_REPLY__INIT;
    Quarry__WorkerInfo w = QUARRY__WORKER_INFO__INIT;
    w.worker_id = 3;
    w.name = (char *)"gpu-box-1";
    w.operator_ = (char *)"op1";
    w.state = (char *)"busy";
    w.slots = 4;
    w.busy = 2;
    w.gpus = 1;
    Quarry__WorkerInfo *ws[1] = {&w};
    wr.req_id = e->req_id;
    wr.n_workers = 1;
    wr.workers = ws;
    protobuf_c_message_free_unpacked(&e->base, NULL);
    fake_send(f, &msg, QR_CMD_WORKERS | QR_CMD_REPLY, &wr.base, NULL, 0);
    qr_msg_close(&msg);

    Quarry__BalanceReq *b = (Quarry__BalanceReq *)fake_expect(f, &msg, QR_CMD_BALANCE, &quarry__balance_req__descriptor);
    FAKE_CHECK(f, b && !strcmp(b->account, ""));
    Quarry__BalanceReply br = QUARRY__BALANCE_REPLY__INIT;
    br.req_id = b->req_id;
    br.account = (char *)"alice";
    br.available = 900;
    br.reserved = 100;
    protobuf_c_message_free_unpacked(&b->base, NULL);
    fake_send(f, &msg, QR_CMD_BALANCE | QR_CMD_REPLY, &br.base, NULL, 0);
    qr_msg_close(&msg);

    Quarry__DepositReq *d = (Quarry__DepositReq *)fake_expect(f, &msg, QR_CMD_DEPOSIT, &quarry__deposit_req__descriptor);
    FAKE_CHECK(f, d && !strcmp(d->account, "bob") && d->amount == 250);
    br.req_id = d->req_id;
    br.account = (char *)"bob";
    br.available = 250;
    br.reserved = 0;
    protobuf_c_message_free_unpacked(&d->base, NULL);
    fake_send(f, &msg, QR_CMD_DEPOSIT | QR_CMD_REPLY, &br.base, NULL, 0);
    qr_msg_close(&msg);

    e = (Quarry__Empty *)fake_expect(f, &msg, QR_CMD_DASH, &quarry__empty__descriptor);
    FAKE_CHECK(f, e);
    Quarry__DashReply dr = QUARRY__DASH_REPLY__INIT;
    Quarry__KindStat ks = QUARRY__KIND_STAT__INIT;
    ks.kind = (char *)"ai.gemm";
    ks.queued = 5;
    ks.running = 2;
    Quarry__KindStat *kss[1] = {&ks};
    Quarry__OperatorStat os1 = QUARRY__OPERATOR_STAT__INIT, os2 = QUARRY__OPERATOR_STAT__INIT;
    os1.operator_ = (char *)"op1";
    os1.jobs = 10;
    os1.earned = 1000;
    os2.operator_ = (char *)"op2";
    os2.earned = 7;
    Quarry__OperatorStat *oss[2] = {&os1, &os2};
    dr.req_id = e->req_id;
    dr.n_kinds = 1;
    dr.kinds = kss;
    dr.n_operators = 2;
    dr.operators = oss;
    dr.workers = 3;
    dr.utilisation = 0.5;
    dr.p99_ms = 120.5;
    dr.ledger_sum = 0;
    dr.settled_total = 11;
    protobuf_c_message_free_unpacked(&e->base, NULL);
    fake_send(f, &msg, QR_CMD_DASH | QR_CMD_REPLY, &dr.base, NULL, 0);
    qr_msg_close(&msg);
}

static void test_lists(void **state)
{
    (void)state;
    fake_t f;
    assert_int_equal(fake_start(&f, script_lists, NULL), 0);
    quarry_client_t *c = NULL;
    assert_int_equal(quarry_client_new(f.endpoint, "alice", 2000, &c), QUARRY_OK);

    quarry_job_info_t *jobs = NULL;
    size_t n = 0;
    assert_int_equal(quarry_job_list(c, "running", 10, true, &jobs, &n), QUARRY_OK);
    assert_int_equal(n, 2);
    assert_int_equal(jobs[1].job_id, 2);
    assert_int_equal(jobs[1].progress, 900);
    quarry_job_list_free(&jobs);
    assert_null(jobs);

    quarry_worker_info_t *w = NULL;
    assert_int_equal(quarry_workers(c, &w, &n), QUARRY_OK);
    assert_int_equal(n, 1);
    assert_string_equal(w[0].name, "gpu-box-1");
    assert_string_equal(w[0].operator_, "op1");
    assert_int_equal(w[0].busy, 2);
    quarry_workers_free(&w);

    quarry_balance_t b;
    assert_int_equal(quarry_balance(c, NULL, &b), QUARRY_OK);
    assert_string_equal(b.account, "alice");
    assert_int_equal(b.available, 900);
    assert_int_equal(b.reserved, 100);
    assert_int_equal(quarry_deposit(c, "bob", 250, &b), QUARRY_OK);
    assert_string_equal(b.account, "bob");
    assert_int_equal(b.available, 250);

    quarry_dash_t *d = NULL;
    assert_int_equal(quarry_dash(c, &d), QUARRY_OK);
    assert_int_equal(d->nkinds, 1);
    assert_string_equal(d->kinds[0].kind, "ai.gemm");
    assert_int_equal(d->kinds[0].queued, 5);
    assert_int_equal(d->noperators, 2);
    assert_string_equal(d->operators[1].operator_, "op2");
    assert_int_equal(d->operators[1].earned, 7);
    assert_int_equal(d->workers, 3);
    assert_true(d->utilisation == 0.5 && d->p99_ms == 120.5);
    assert_int_equal(d->settled_total, 11);
    quarry_dash_free(&d);
    assert_null(d);

    quarry_client_destroy(&c);
    assert_string_equal(fake_join(&f), "");
}

/* ---- timeouts and reconnects ---------------------------------------------------------- */

/* HELLO answered, STATUS ignored, then a second connection says HELLO again
 * and its STATUS is answered. */
static void script_silent_then_back(fake_t *f)
{
    qr_msg_t msg;
    FAKE_CHECK(f, fake_hello(f, &msg) == 0);
    qr_msg_close(&msg);
    Quarry__JobRef *r = (Quarry__JobRef *)fake_expect(f, &msg, QR_CMD_STATUS, &quarry__job_ref__descriptor);
    FAKE_CHECK(f, r);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    qr_msg_close(&msg); /* no answer */

    r = (Quarry__JobRef *)fake_expect(f, &msg, QR_CMD_STATUS, &quarry__job_ref__descriptor);
    FAKE_CHECK(f, r);
    FAKE_CHECK(f, f->hellos == 2); /* the client reconnected and said HELLO again */
    Quarry__StatusReply sr = QUARRY__STATUS_REPLY__INIT;
    Quarry__JobInfo j = fake_job(r->job_id, "done", 1000);
    sr.req_id = r->req_id;
    sr.job = &j;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    fake_send(f, &msg, QR_CMD_STATUS | QR_CMD_REPLY, &sr.base, NULL, 0);
    qr_msg_close(&msg);
}

static void test_timeout_reconnect(void **state)
{
    (void)state;
    fake_t f;
    assert_int_equal(fake_start(&f, script_silent_then_back, NULL), 0);
    quarry_client_t *c = NULL;
    assert_int_equal(quarry_client_new(f.endpoint, "alice", 2000, &c), QUARRY_OK);
    assert_int_equal(quarry_client_set_timeout(c, 300), QUARRY_OK);
    quarry_job_info_t info;
    int64_t t0 = s_ms();
    assert_int_equal(quarry_job_status(c, 5, &info), QUARRY_EUNAVAIL);
    int64_t dt = s_ms() - t0;
    assert_true(dt >= 250 && dt < 2000);
    assert_non_null(strstr(quarry_client_last_error(c), "did not answer"));
    assert_int_equal(quarry_client_set_timeout(c, 2000), QUARRY_OK);
    assert_int_equal(quarry_job_status(c, 5, &info), QUARRY_OK);
    assert_int_equal(info.state, QUARRY_JOB_DONE);
    quarry_client_destroy(&c);
    assert_string_equal(fake_join(&f), "");
}

/* A broker restarted behind our back: the request is refused with EPERM;
 * the SDK says HELLO again and repeats the request once.  A second EPERM is
 * a real refusal and comes back to the caller. */
static void script_forgot(fake_t *f)
{
    qr_msg_t msg;
    FAKE_CHECK(f, fake_hello(f, &msg) == 0);
    qr_msg_close(&msg);
    size_t idlen;
    const void *id;
    for (int i = 0; i < 2; i++) {
        Quarry__DepositReq *d = (Quarry__DepositReq *)fake_expect(f, &msg, QR_CMD_DEPOSIT, &quarry__deposit_req__descriptor);
        FAKE_CHECK(f, d && d->amount == 5);
        id = qr_msg_identity(&msg, &idlen);
        qr_wire_send_error(f->router, id, idlen, QR_PROTO_CLIENT, d->req_id, 0, QR_EPERM,
                           i == 0 ? "send HELLO with an account first" : "admin only");
        protobuf_c_message_free_unpacked(&d->base, NULL);
        qr_msg_close(&msg);
        if (i == 0) {
            FAKE_CHECK(f, fake_hello(f, &msg) == 0);
            qr_msg_close(&msg);
        }
    }
    FAKE_CHECK(f, f->hellos == 2);
}

static void test_rehello(void **state)
{
    (void)state;
    fake_t f;
    assert_int_equal(fake_start(&f, script_forgot, NULL), 0);
    quarry_client_t *c = NULL;
    assert_int_equal(quarry_client_new(f.endpoint, "alice", 2000, &c), QUARRY_OK);
    assert_int_equal(quarry_deposit(c, "bob", 5, NULL), QUARRY_EPERM);
    assert_string_equal(quarry_client_last_error(c), "admin only");
    quarry_client_destroy(&c);
    assert_string_equal(fake_join(&f), "");
}

/* A peer that accepts the connection but never answers HELLO. */
static void script_mute(fake_t *f)
{
    qr_msg_t msg;
    FAKE_CHECK(f, fake_recv(f, &msg, 2000) == 0 && msg.cmd == QR_CMD_HELLO);
    qr_msg_close(&msg);
}

static void test_hello_unanswered(void **state)
{
    (void)state;
    fake_t f;
    assert_int_equal(fake_start(&f, script_mute, NULL), 0);
    quarry_client_t *c = NULL;
    int64_t t0 = s_ms();
    assert_int_equal(quarry_client_new(f.endpoint, "alice", 300, &c), QUARRY_EUNAVAIL);
    int64_t dt = s_ms() - t0;
    assert_true(dt >= 250 && dt < 2000);
    assert_null(c);
    assert_string_equal(fake_join(&f), "");
}

/* A broker that refuses the account in HELLO: its code comes back. */
static void script_refuse(fake_t *f)
{
    qr_msg_t msg;
    FAKE_CHECK(f, fake_recv(f, &msg, 2000) == 0 && msg.cmd == QR_CMD_HELLO);
    char err[64];
    Quarry__Hello *h = (Quarry__Hello *)qr_msg_decode(&msg, &quarry__hello__descriptor, err, sizeof err);
    FAKE_CHECK(f, h);
    size_t idlen;
    const void *id = qr_msg_identity(&msg, &idlen);
    qr_wire_send_error(f->router, id, idlen, QR_PROTO_CLIENT, h->req_id, 0, QR_EPERM, "no such account");
    protobuf_c_message_free_unpacked(&h->base, NULL);
    qr_msg_close(&msg);
}

static void test_hello_refused(void **state)
{
    (void)state;
    fake_t f;
    assert_int_equal(fake_start(&f, script_refuse, NULL), 0);
    quarry_client_t *c = NULL;
    assert_int_equal(quarry_client_new(f.endpoint, "mallory", 2000, &c), QUARRY_EPERM);
    assert_null(c);
    assert_string_equal(fake_join(&f), "");
}

/* ---- CurveZMQ ------------------------------------------------------------------ */

/* The peer is a CURVE server: a plain-text DEALER cannot reach it at all, so
 * every message it gets came over an encrypted, authenticated link.  Script:
 * HELLO, ADMIN_KEY answered, one request left unanswered (the client times
 * out and drops its socket), then HELLO again on the new socket (the keys
 * were applied again) and a second ADMIN_KEY. */
static void script_curve(fake_t *f)
{
    qr_msg_t msg;
    char err[128];
    const char *key = f->user;
    if (fake_hello(f, &msg) < 0)
        return;
    qr_msg_close(&msg);
    Quarry__AdminKey *a =
        (Quarry__AdminKey *)fake_expect(f, &msg, QR_CMD_ADMIN_KEY, &quarry__admin_key__descriptor);
    FAKE_CHECK(f, a);
    FAKE_CHECK(f, !strcmp(a->op, "add-client") && !strcmp(a->key, key) &&
                      !strcmp(a->account, "bob"));
    Quarry__Empty e = QUARRY__EMPTY__INIT;
    e.req_id = a->req_id;
    protobuf_c_message_free_unpacked(&a->base, NULL);
    fake_send(f, &msg, QR_CMD_ADMIN_KEY | QR_CMD_REPLY, &e.base, NULL, 0);
    qr_msg_close(&msg);
    /* ignore the next one */
    FAKE_CHECK(f, fake_recv(f, &msg, 3000) == 0 && msg.cmd == QR_CMD_ADMIN_KEY);
    qr_msg_close(&msg);
    /* the client reconnects: HELLO over CURVE again, then the request */
    FAKE_CHECK(f, fake_recv(f, &msg, 3000) == 0 && msg.cmd == QR_CMD_HELLO);
    Quarry__Hello *h =
        (Quarry__Hello *)qr_msg_decode(&msg, &quarry__hello__descriptor, err, sizeof err);
    FAKE_CHECK(f, h);
    Quarry__HelloAck ack = QUARRY__HELLO_ACK__INIT;
    ack.req_id = h->req_id;
    ack.account_id = 7;
    protobuf_c_message_free_unpacked(&h->base, NULL);
    fake_send(f, &msg, QR_CMD_HELLO | QR_CMD_REPLY, &ack.base, NULL, 0);
    f->hellos++;
    qr_msg_close(&msg);
    a = (Quarry__AdminKey *)fake_expect(f, &msg, QR_CMD_ADMIN_KEY, &quarry__admin_key__descriptor);
    FAKE_CHECK(f, a);
    FAKE_CHECK(f, !strcmp(a->op, "remove") && !strcmp(a->key, key));
    e.req_id = a->req_id;
    protobuf_c_message_free_unpacked(&a->base, NULL);
    fake_send(f, &msg, QR_CMD_ADMIN_KEY | QR_CMD_REPLY, &e.base, NULL, 0);
    qr_msg_close(&msg);
}

static void script_nothing(fake_t *f)
{
    qr_msg_t msg;
    /* nothing may arrive: a peer with the wrong keys never gets through */
    FAKE_CHECK(f, fake_recv(f, &msg, 1200) < 0);
}

static void test_curve_round_trip(void **state)
{
    (void)state;
    char srv_pub[41], srv_sec[41], cli_pub[41], cli_sec[41], other_pub[41], other_sec[41];
    assert_int_equal(zmq_curve_keypair(srv_pub, srv_sec), 0);
    assert_int_equal(zmq_curve_keypair(cli_pub, cli_sec), 0);
    assert_int_equal(zmq_curve_keypair(other_pub, other_sec), 0);
    char dir[] = "/tmp/qr-sdkkeys-XXXXXX", prefix[64], keyfile[80], pubfile[80];
    assert_non_null(mkdtemp(dir));
    snprintf(prefix, sizeof prefix, "%s/c", dir);
    snprintf(keyfile, sizeof keyfile, "%s.key", prefix);
    snprintf(pubfile, sizeof pubfile, "%s.pub", prefix);
    char mypub[41];
    assert_int_equal(quarry_keygen(prefix, mypub), QUARRY_OK);

    fake_t f;
    const char *admitted = other_pub; /* the key the admin registers */
    assert_int_equal(fake_start_curve(&f, script_curve, (void *)admitted, srv_sec), 0);
    quarry_client_opts_t o;
    quarry_client_opts_init(&o);
    o.endpoint = f.endpoint;
    o.account = "alice";
    o.timeout_ms = 400;
    o.server_key = srv_pub; /* as text */
    o.key_file = keyfile;
    quarry_client_t *c = NULL;
    assert_int_equal(quarry_client_new_opts(&o, &c), QUARRY_OK);
    assert_int_equal(quarry_client_account_id(c), 7);
    assert_int_equal(quarry_admin_key(c, "add-client", admitted, "bob"), QUARRY_OK);
    assert_int_equal(quarry_admin_key(c, "add-client", admitted, "bob"), QUARRY_EUNAVAIL);
    assert_int_equal(quarry_client_set_timeout(c, 2000), QUARRY_OK);
    assert_int_equal(quarry_admin_key(c, "remove", admitted, NULL), QUARRY_OK);
    quarry_client_destroy(&c);
    assert_string_equal(fake_join(&f), "");
    assert_int_equal(f.hellos, 2);

    /* the wrong broker key (as a file), and no keys at all: never through */
    char wrongpub[80];
    snprintf(wrongpub, sizeof wrongpub, "%s/wrong.pub", dir);
    FILE *w = fopen(wrongpub, "w");
    assert_non_null(w);
    fprintf(w, "%s\n", other_pub);
    fclose(w);
    assert_int_equal(fake_start_curve(&f, script_nothing, NULL, srv_sec), 0);
    o.endpoint = f.endpoint;
    o.server_key = wrongpub;
    o.timeout_ms = 300;
    char why[256];
    o.err_buf = why;
    o.err_len = sizeof why;
    assert_int_equal(quarry_client_new_opts(&o, &c), QUARRY_EUNAVAIL);
    assert_null(c);
    assert_non_null(strstr(why, "did not answer"));
    o.server_key = NULL;
    o.key_file = NULL;
    assert_int_equal(quarry_client_new_opts(&o, &c), QUARRY_EUNAVAIL);
    assert_string_equal(fake_join(&f), "");

    unlink(keyfile);
    unlink(pubfile);
    unlink(wrongpub);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit),           cmocka_unit_test(test_errors),
        cmocka_unit_test(test_wait_settled),     cmocka_unit_test(test_wait_failed),
        cmocka_unit_test(test_watch_stop),       cmocka_unit_test(test_wait_timeout),
        cmocka_unit_test(test_result),           cmocka_unit_test(test_result_alloc),
        cmocka_unit_test(test_lists),            cmocka_unit_test(test_timeout_reconnect),
        cmocka_unit_test(test_curve_round_trip),
        cmocka_unit_test(test_hello_unanswered), cmocka_unit_test(test_hello_refused),
        cmocka_unit_test(test_rehello),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
