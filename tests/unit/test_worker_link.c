/* The whole worker loop (worker/worker.c) against a fake broker: a ROUTER
 * socket in this test speaking the worker protocol over real TCP.  The worker
 * runs on a thread through qr_worker_run and stops through a pipe, as
 * quarry-worker does through its signalfd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "gemm.h"
#include "keys.h"
#include "util.h"
#include "wire.h"
#include "worker.h"

typedef struct {
    void *ctx;              /* shared by both sides */
    void *router;           /* the fake broker */
    char ep[128];           /* where it listens */
    qr_worker_cfg_t cfg;    /* worker settings, tests adjust before s_start */
    qr_worker_t *worker;    /* the worker under test */
    pthread_t thread;       /* runs qr_worker_run */
    bool running;           /* thread started and not joined */
    int run_rc;             /* what qr_worker_run returned */
    int stop[2];            /* pipe: write end stops the worker */
    uint8_t id[256];        /* identity of the worker's last message */
    size_t idlen;
    /* CURVE fixtures only: the fake broker is a CURVE server */
    char srv_pub[QR_KEY_Z85_LEN + 1]; /* its public key */
    char dir[64];           /* temporary folder holding the worker's key pair */
    char key_path[160];     /* DIR/w.key */
} fx_t;

static int s_setup_mode(void **state, bool curve)
{
    fx_t *f = calloc(1, sizeof *f);
    f->ctx = zmq_ctx_new();
    f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(f->router, ZMQ_LINGER, &zero, sizeof zero);
    if (curve) {
        char sec[QR_KEY_Z85_LEN + 1], wpub[QR_KEY_Z85_LEN + 1], wsec[QR_KEY_Z85_LEN + 1];
        char prefix[128], err[256];
        int one = 1;
        snprintf(f->dir, sizeof f->dir, "/tmp/qr-wkeys-XXXXXX");
        if (qr_keys_generate(f->srv_pub, sec) < 0 || qr_keys_generate(wpub, wsec) < 0 ||
            !mkdtemp(f->dir))
            return -1;
        snprintf(prefix, sizeof prefix, "%s/w", f->dir);
        snprintf(f->key_path, sizeof f->key_path, "%s.key", prefix);
        if (qr_keys_write(prefix, wpub, wsec, err, sizeof err) < 0)
            return -1;
        /* set before bind: the listener takes the socket's security then */
        zmq_setsockopt(f->router, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt(f->router, ZMQ_CURVE_SECRETKEY, sec, QR_KEY_Z85_LEN);
    }
    if (zmq_bind(f->router, "tcp://127.0.0.1:*") < 0)
        return -1;
    size_t len = sizeof f->ep;
    zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, f->ep, &len);
    qr_worker_cfg_defaults(&f->cfg);
    f->cfg.broker = f->ep;
    f->cfg.name = "test-w";
    f->cfg.operator_name = "op1";
    f->cfg.ask_price = 42;
    f->cfg.slots = 2;
    f->cfg.gpu = false;
    f->cfg.drain_ms = 1000;
    f->cfg.backoff_min_ms = 100;
    if (pipe(f->stop) < 0)
        return -1;
    if (curve) {
        f->cfg.server_key = f->srv_pub;
        f->cfg.key_file = f->key_path;
    }
    *state = f;
    return 0;
}

static int s_setup(void **state)
{
    return s_setup_mode(state, false);
}

static int s_setup_curve(void **state)
{
    return s_setup_mode(state, true);
}

static void *s_run(void *arg)
{
    fx_t *f = arg;
    f->run_rc = qr_worker_run(f->worker, f->stop[0]);
    return NULL;
}

static void s_start(fx_t *f)
{
    f->worker = qr_worker_new(f->ctx, &f->cfg);
    assert_non_null(f->worker);
    assert_int_equal(pthread_create(&f->thread, NULL, s_run, f), 0);
    f->running = true;
}

static void s_signal(fx_t *f)
{
    char c = 's';
    assert_int_equal(write(f->stop[1], &c, 1), 1);
}

static void s_join(fx_t *f)
{
    if (f->running)
        pthread_join(f->thread, NULL);
    f->running = false;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    if (f->running) {
        s_signal(f);
        s_signal(f); /* cut the drain short */
        s_join(f);
    }
    qr_worker_destroy(&f->worker);
    zmq_close(f->router);
    zmq_ctx_term(f->ctx);
    close(f->stop[0]);
    close(f->stop[1]);
    if (f->dir[0]) {
        char p[160];
        snprintf(p, sizeof p, "%s/w.key", f->dir);
        unlink(p);
        snprintf(p, sizeof p, "%s/w.pub", f->dir);
        unlink(p);
        rmdir(f->dir);
    }
    free(f);
    return 0;
}

/* Receives the worker's next message, skipping heartbeats unless wanted.
 * Returns its command, or -1 after timeout_ms. */
static int s_recv(fx_t *f, qr_msg_t *msg, int timeout_ms, bool want_heartbeats)
{
    int64_t until = qr_clock_ms() + timeout_ms;
    for (;;) {
        int64_t left = until - qr_clock_ms();
        zmq_pollitem_t it = {.socket = f->router, .events = ZMQ_POLLIN};
        if (left <= 0 || zmq_poll(&it, 1, (long)left) <= 0) {
            memset(msg, 0, sizeof *msg);
            return -1;
        }
        char err[256];
        int rc = qr_wire_recv(f->router, true, QR_PROTO_WORKER, 0, msg, err, sizeof err);
        if (rc != QR_OK)
            fail_msg("worker sent a bad message: %s", err);
        size_t len;
        const void *id = qr_msg_identity(msg, &len);
        assert_true(len <= sizeof f->id);
        memcpy(f->id, id, len);
        f->idlen = len;
        if (msg->cmd == QR_WCMD_HEARTBEAT && !want_heartbeats) {
            qr_msg_close(msg);
            continue;
        }
        return msg->cmd;
    }
}

/* Receives and expects cmd; skips PROGRESS too unless that is what is expected. */
static void s_expect(fx_t *f, qr_msg_t *msg, int cmd, int timeout_ms)
{
    int got;
    do {
        got = s_recv(f, msg, timeout_ms, cmd == QR_WCMD_HEARTBEAT);
        if (got == QR_WCMD_PROGRESS && cmd != QR_WCMD_PROGRESS)
            qr_msg_close(msg);
        else
            break;
    } while (1);
    if (got != cmd)
        fail_msg("expected command 0x%02x, got %d", cmd, got);
}

static void s_send(fx_t *f, uint8_t cmd, const ProtobufCMessage *body, const qr_payload_t *p,
                   int np)
{
    assert_int_equal(qr_wire_send(f->router, f->id, f->idlen, QR_PROTO_WORKER, cmd, body, p, np),
                     QR_OK);
}

static void s_ack(fx_t *f, uint32_t hb, uint32_t liveness)
{
    Quarry__ReadyAck ack = QUARRY__READY_ACK__INIT;
    ack.worker_id = 77;
    ack.heartbeat_ms = hb;
    ack.liveness = liveness;
    s_send(f, QR_WCMD_READY | QR_CMD_REPLY, &ack.base, NULL, 0);
}

/* Start, take the READY, acknowledge it. */
static void s_handshake(fx_t *f, uint32_t hb, uint32_t liveness)
{
    qr_msg_t m;
    s_expect(f, &m, QR_WCMD_READY, 5000);
    qr_msg_close(&m);
    s_ack(f, hb, liveness);
}

#ifdef QR_TEST_FAULTS
static void s_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}
#endif

static void s_fill(float *x, size_t count, unsigned seed)
{
    for (size_t i = 0; i < count; i++)
        x[i] = (float)((int)((i * 5 + seed * 11) % 19) - 9) * 0.5f;
}

typedef struct {
    uint32_t m, n, k;
    float *A, *B;
} s_mats_t;

static s_mats_t s_mats(uint32_t m, uint32_t n, uint32_t k, unsigned seed)
{
    s_mats_t x = {m, n, k, malloc((size_t)m * k * 4), malloc((size_t)k * n * 4)};
    s_fill(x.A, (size_t)m * k, seed);
    s_fill(x.B, (size_t)k * n, seed + 3);
    return x;
}

static void s_mats_free(s_mats_t *x)
{
    free(x->A);
    free(x->B);
}

/* Sends ASSIGN; npay and sizes can be broken on purpose. */
static void s_assign(fx_t *f, uint64_t job, const char *kind, const s_mats_t *x, int npay)
{
    Quarry__JobSpec spec = QUARRY__JOB_SPEC__INIT;
    spec.kind = (char *)kind;
    spec.m = x->m;
    spec.n = x->n;
    spec.k = x->k;
    Quarry__Assign a = QUARRY__ASSIGN__INIT;
    a.job_id = job;
    a.spec = &spec;
    a.attempt = 1;
    qr_payload_t p[2] = {{x->A, (size_t)x->m * x->k * 4}, {x->B, (size_t)x->k * x->n * 4}};
    s_send(f, QR_WCMD_ASSIGN, &a.base, p, npay);
}

/* Sends ASSIGN naming input blob; with npay 0 the worker must use its copy. */
static void s_assign_blob(fx_t *f, uint64_t job, const s_mats_t *x, uint64_t blob, int npay)
{
    Quarry__JobSpec spec = QUARRY__JOB_SPEC__INIT;
    spec.kind = "ai.gemm";
    spec.m = x->m;
    spec.n = x->n;
    spec.k = x->k;
    Quarry__Assign a = QUARRY__ASSIGN__INIT;
    a.job_id = job;
    a.spec = &spec;
    a.attempt = 1;
    a.input_blob = blob;
    qr_payload_t p[2] = {{x->A, (size_t)x->m * x->k * 4}, {x->B, (size_t)x->k * x->n * 4}};
    s_send(f, QR_WCMD_ASSIGN, &a.base, p, npay);
}

static void s_cancel(fx_t *f, uint64_t job)
{
    Quarry__Cancel c = QUARRY__CANCEL__INIT;
    c.job_id = job;
    s_send(f, QR_WCMD_CANCEL, &c.base, NULL, 0);
}

static void s_check_result(qr_msg_t *msg, const s_mats_t *x, uint64_t job)
{
    char err[128];
    Quarry__Result *r =
        (Quarry__Result *)qr_msg_decode(msg, &quarry__result__descriptor, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(r->job_id, job);
    assert_int_equal(r->units, qr_gemm_units(x->m, x->n, x->k));
    protobuf_c_message_free_unpacked(&r->base, NULL);
    assert_int_equal(qr_msg_npayload(msg), 1);
    size_t len;
    const float *C = qr_msg_payload(msg, 0, &len);
    assert_int_equal(len, (size_t)x->m * x->n * 4);
    float *Cal = malloc(len); /* the frame need not be float-aligned */
    memcpy(Cal, C, len);
    for (uint32_t i = 0; i < x->m; i++)
        for (uint32_t j = 0; j < x->n; j++) {
            double s = 0;
            for (uint32_t l = 0; l < x->k; l++)
                s += (double)x->A[(size_t)i * x->k + l] * x->B[(size_t)l * x->n + j];
            if (fabs(s - Cal[(size_t)i * x->n + j]) > 1e-3 * (1 + fabs(s)))
                fail_msg("job %llu C[%u][%u] = %g, expected %g", (unsigned long long)job, i, j,
                         Cal[(size_t)i * x->n + j], s);
        }
    free(Cal);
}

static uint64_t s_fail_job(qr_msg_t *msg, int *code, char *text, size_t tlen)
{
    char err[128];
    Quarry__Fail *fl =
        (Quarry__Fail *)qr_msg_decode(msg, &quarry__fail__descriptor, err, sizeof err);
    assert_non_null(fl);
    uint64_t id = fl->job_id;
    *code = fl->code;
    if (text)
        snprintf(text, tlen, "%s", fl->message ? fl->message : "");
    protobuf_c_message_free_unpacked(&fl->base, NULL);
    return id;
}

static void s_expect_fail(fx_t *f, uint64_t job, int code)
{
    qr_msg_t m;
    s_expect(f, &m, QR_WCMD_FAIL, 3000);
    int got;
    char text[128];
    assert_int_equal(s_fail_job(&m, &got, text, sizeof text), job);
    if (got != code)
        fail_msg("job %llu: code %d (%s), expected %d", (unsigned long long)job, got, text, code);
    assert_true(text[0] != '\0');
    qr_msg_close(&m);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_ready_fields_and_retry(void **state)
{
    fx_t *f = *state;
    s_start(f);
    qr_msg_t m;
    s_expect(f, &m, QR_WCMD_READY, 5000);
    char err[128];
    Quarry__Ready *r = (Quarry__Ready *)qr_msg_decode(&m, &quarry__ready__descriptor, err,
                                                      sizeof err);
    assert_non_null(r);
    assert_string_equal(r->name, "test-w");
    assert_string_equal(r->operator_, "op1");
    assert_int_equal(r->ask_price, 42);
    assert_int_equal(r->slots, 2);
    assert_int_equal(r->n_runtimes, 3);
    assert_string_equal(r->runtimes[0], "ai.gemm");
    assert_string_equal(r->runtimes[1], "ai.infer");
    assert_string_equal(r->runtimes[2], "zk.groth16");
    assert_int_equal(r->n_artifacts, 0); /* an empty model cache */
    assert_int_equal(r->n_devices, 1); /* gpu off */
    assert_string_equal(r->devices[0]->type, "cpu");
    assert_true(r->devices[0]->cores >= 1);
    assert_true(r->devices[0]->mem_mb > 0);
    assert_int_equal(r->n_running, 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    qr_msg_close(&m);
    /* no ack: READY again about a second later */
    int64_t t0 = qr_clock_ms();
    s_expect(f, &m, QR_WCMD_READY, 3000);
    qr_msg_close(&m);
    assert_true(qr_clock_ms() - t0 >= 700);
    s_ack(f, 2500, 3);
    /* registered: no more READY */
    assert_int_equal(s_recv(f, &m, 1300, false), -1);
}

static void test_assign_result(void **state)
{
    fx_t *f = *state;
    s_start(f);
    s_handshake(f, 2500, 3);
    static const uint32_t shapes[][3] = {{1, 1, 1}, {7, 3, 5}, {64, 48, 33}, {200, 100, 150}};
    enum { N = 4 };
    s_mats_t x[N];
    for (int i = 0; i < N; i++) {
        x[i] = s_mats(shapes[i][0], shapes[i][1], shapes[i][2], (unsigned)i);
        s_assign(f, 100 + (uint64_t)i, "ai.gemm", &x[i], 2);
    }
    bool seen[N] = {false};
    for (int i = 0; i < N; i++) {
        qr_msg_t m;
        /* quick jobs never report progress */
        assert_int_equal(s_recv(f, &m, 5000, false), QR_WCMD_RESULT);
        char err[64];
        Quarry__Result *r =
            (Quarry__Result *)qr_msg_decode(&m, &quarry__result__descriptor, err, sizeof err);
        int idx = (int)r->job_id - 100;
        protobuf_c_message_free_unpacked(&r->base, NULL);
        assert_true(idx >= 0 && idx < N && !seen[idx]);
        seen[idx] = true;
        s_check_result(&m, &x[idx], 100 + (uint64_t)idx);
        /* and Freivalds agrees, as the broker will check */
        size_t len;
        const void *C = qr_msg_payload(&m, 0, &len);
        float *Cal = malloc(len);
        memcpy(Cal, C, len);
        assert_int_equal(qr_gemm_verify(x[idx].A, x[idx].B, Cal, x[idx].m, x[idx].n, x[idx].k, 2,
                                         12345, NULL),
                         0);
        free(Cal);
        qr_msg_close(&m);
    }
    for (int i = 0; i < N; i++)
        s_mats_free(&x[i]);
}

/* An input sent once under a blob id is reused when a later ASSIGN names it
 * without frames; an id the worker does not hold is answered QR_ENOTFOUND;
 * READY reports the cache budget. */
static void test_input_cache(void **state)
{
    fx_t *f = *state;
    s_start(f);
    qr_msg_t m;
    s_expect(f, &m, QR_WCMD_READY, 5000);
    char err[128];
    Quarry__Ready *r =
        (Quarry__Ready *)qr_msg_decode(&m, &quarry__ready__descriptor, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(r->input_cache_mb, 256);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    qr_msg_close(&m);
    s_ack(f, 2500, 3);
    s_mats_t x = s_mats(24, 16, 8, 9);
    s_assign_blob(f, 500, &x, 42, 2);
    s_expect(f, &m, QR_WCMD_RESULT, 5000);
    s_check_result(&m, &x, 500);
    qr_msg_close(&m);
    for (uint64_t job = 501; job < 504; job++) {
        s_assign_blob(f, job, &x, 42, 0);
        s_expect(f, &m, QR_WCMD_RESULT, 5000);
        s_check_result(&m, &x, job);
        qr_msg_close(&m);
    }
    s_assign_blob(f, 504, &x, 43, 0);
    s_expect_fail(f, 504, QR_ENOTFOUND);
    s_mats_free(&x);
}

static void test_malformed_assign(void **state)
{
    fx_t *f = *state;
    s_start(f);
    s_handshake(f, 2500, 3);
    s_mats_t x = s_mats(4, 5, 6, 1);
    s_assign(f, 11, "ai.gemm", &x, 1); /* B missing */
    s_expect_fail(f, 11, QR_EINVAL);
    s_assign(f, 12, "ai.gemm", &x, 0); /* both missing */
    s_expect_fail(f, 12, QR_EINVAL);
    s_assign(f, 13, "ai.conv", &x, 2); /* unknown kind */
    s_expect_fail(f, 13, QR_EKIND);
    s_mats_t wrong = x;
    wrong.k = 7; /* spec says k = 7, frames hold k = 6 */
    Quarry__JobSpec spec = QUARRY__JOB_SPEC__INIT;
    spec.kind = "ai.gemm";
    spec.m = 4;
    spec.n = 5;
    spec.k = 7;
    Quarry__Assign a = QUARRY__ASSIGN__INIT;
    a.job_id = 14;
    a.spec = &spec;
    qr_payload_t p[2] = {{x.A, 4 * 6 * 4}, {x.B, 6 * 5 * 4}};
    s_send(f, QR_WCMD_ASSIGN, &a.base, p, 2);
    s_expect_fail(f, 14, QR_EINVAL);
    spec.k = 0; /* zero dimension */
    a.job_id = 15;
    s_send(f, QR_WCMD_ASSIGN, &a.base, p, 2);
    s_expect_fail(f, 15, QR_EINVAL);
    spec.k = QR_GEMM_MAX_DIM + 1;
    a.job_id = 16;
    s_send(f, QR_WCMD_ASSIGN, &a.base, p, 2);
    s_expect_fail(f, 16, QR_ETOOBIG);
    a.job_id = 17;
    a.spec = NULL;
    s_send(f, QR_WCMD_ASSIGN, &a.base, p, 2);
    s_expect_fail(f, 17, QR_EINVAL);
    qr_payload_t three[3] = {p[0], p[1], p[1]};
    s_assign(f, 18, "ai.gemm", &x, 2);
    qr_msg_t m;
    s_expect(f, &m, QR_WCMD_RESULT, 3000);
    qr_msg_close(&m);
    a.job_id = 19;
    a.spec = &spec;
    spec.k = 6;
    s_send(f, QR_WCMD_ASSIGN, &a.base, three, 3); /* extra frame */
    s_expect_fail(f, 19, QR_EINVAL);
    /* undecodable body: no job id to FAIL, so an Error */
    uint8_t junk[] = {0xff, 0xff, 0xff};
    zmq_send(f->router, f->id, f->idlen, ZMQ_SNDMORE);
    zmq_send(f->router, QR_PROTO_WORKER, 5, ZMQ_SNDMORE);
    uint8_t cmd = QR_WCMD_ASSIGN;
    zmq_send(f->router, &cmd, 1, ZMQ_SNDMORE);
    zmq_send(f->router, junk, sizeof junk, 0);
    s_expect(f, &m, QR_CMD_ERROR, 3000);
    char err[64];
    Quarry__Error *e = (Quarry__Error *)qr_msg_decode(&m, &quarry__error__descriptor, err,
                                                      sizeof err);
    assert_int_equal(e->code, QR_EPROTO);
    protobuf_c_message_free_unpacked(&e->base, NULL);
    qr_msg_close(&m);
    /* wrong protocol frame and unknown command: ignored */
    zmq_send(f->router, f->id, f->idlen, ZMQ_SNDMORE);
    zmq_send(f->router, "XXX99", 5, ZMQ_SNDMORE);
    zmq_send(f->router, &cmd, 1, ZMQ_SNDMORE);
    zmq_send(f->router, "", 0, 0);
    s_send(f, 0x55, NULL, NULL, 0);
    /* a broker Error is logged and the worker goes on */
    qr_wire_send_error(f->router, f->id, f->idlen, QR_PROTO_WORKER, 0, 18, QR_EVERIFY,
                       "result rejected");
    /* still alive and computing */
    s_mats_t y = s_mats(9, 8, 7, 2);
    s_assign(f, 20, "ai.gemm", &y, 2);
    s_expect(f, &m, QR_WCMD_RESULT, 3000);
    s_check_result(&m, &y, 20);
    qr_msg_close(&m);
    s_mats_free(&x);
    s_mats_free(&y);
    (void)wrong;
}

static void test_cancel(void **state)
{
    fx_t *f = *state;
    f->cfg.slots = 1;
#ifdef QR_TEST_FAULTS
    f->cfg.fault_delay_ms = 400;
    s_mats_t big = s_mats(8, 8, 8, 1);
#else
    s_mats_t big = s_mats(2048, 2048, 2048, 1);
#endif
    s_start(f);
    s_handshake(f, 2500, 3);
    s_mats_t x = s_mats(5, 5, 5, 2);
    s_assign(f, 1, "ai.gemm", &big, 2); /* runs */
    s_assign(f, 2, "ai.gemm", &x, 2);   /* queued */
    s_cancel(f, 1);
    s_cancel(f, 2);
    s_cancel(f, 999); /* unknown: ignored */
    s_assign(f, 3, "ai.gemm", &x, 2);
    qr_msg_t m;
    int cmd;
    while ((cmd = s_recv(f, &m, 5000, false)) == QR_WCMD_PROGRESS)
        qr_msg_close(&m);
    assert_int_equal(cmd, QR_WCMD_RESULT);
    s_check_result(&m, &x, 3); /* nothing came for 1 and 2 */
    qr_msg_close(&m);
    assert_int_equal(s_recv(f, &m, 300, false), -1);
    s_mats_free(&big);
    s_mats_free(&x);
}

static void test_heartbeat(void **state)
{
    fx_t *f = *state;
    s_start(f);
    s_handshake(f, 100, 50);
    qr_msg_t m;
    int64_t t0 = qr_clock_ms();
    s_expect(f, &m, QR_WCMD_HEARTBEAT, 1000);
    qr_msg_close(&m);
    s_expect(f, &m, QR_WCMD_HEARTBEAT, 1000);
    qr_msg_close(&m);
    int64_t dt = qr_clock_ms() - t0;
    assert_true(dt >= 50 && dt < 1000); /* spaced, not a burst */
    /* our heartbeats keep it registered: no READY */
    for (int i = 0; i < 5; i++) {
        s_send(f, QR_WCMD_HEARTBEAT, NULL, NULL, 0);
        assert_int_equal(s_recv(f, &m, 400, true), QR_WCMD_HEARTBEAT);
        qr_msg_close(&m);
    }
}

static void test_disconnect_reregisters(void **state)
{
    fx_t *f = *state;
    s_start(f);
    s_handshake(f, 2500, 3);
    Quarry__Disconnect d = QUARRY__DISCONNECT__INIT;
    d.reason = "unknown worker";
    s_send(f, QR_WCMD_DISCONNECT, &d.base, NULL, 0);
    qr_msg_t m;
    int64_t t0 = qr_clock_ms();
    s_expect(f, &m, QR_WCMD_READY, 2000);
    qr_msg_close(&m);
    assert_true(qr_clock_ms() - t0 < 1000); /* at once, no backoff */
    s_ack(f, 2500, 3);
    s_mats_t x = s_mats(3, 3, 3, 4);
    s_assign(f, 5, "ai.gemm", &x, 2);
    s_expect(f, &m, QR_WCMD_RESULT, 3000);
    s_check_result(&m, &x, 5);
    qr_msg_close(&m);
    s_mats_free(&x);
}

static void test_silence_reconnects(void **state)
{
    fx_t *f = *state;
    s_start(f);
    s_handshake(f, 100, 3);
    uint8_t first[256];
    size_t firstlen = f->idlen;
    memcpy(first, f->id, firstlen);
    qr_msg_t m;
    /* say nothing: after 3 x 100 ms it gives up on us, backs off, comes back */
    int64_t t0 = qr_clock_ms();
    s_expect(f, &m, QR_WCMD_READY, 3000);
    qr_msg_close(&m);
    int64_t dt = qr_clock_ms() - t0;
    assert_true(dt >= 300);
    assert_false(f->idlen == firstlen && memcmp(f->id, first, firstlen) == 0); /* new socket */
    s_ack(f, 100, 3);
    s_expect(f, &m, QR_WCMD_HEARTBEAT, 1000);
    qr_msg_close(&m);
}

static void test_job_survives_reconnect(void **state)
{
#ifdef QR_TEST_FAULTS
    fx_t *f = *state;
    f->cfg.fault_delay_ms = 500;
    s_start(f);
    s_handshake(f, 2500, 3);
    s_mats_t x = s_mats(6, 4, 5, 5);
    s_assign(f, 42, "ai.gemm", &x, 2);
    s_sleep_ms(100);
    Quarry__Disconnect d = QUARRY__DISCONNECT__INIT;
    s_send(f, QR_WCMD_DISCONNECT, &d.base, NULL, 0);
    qr_msg_t m;
    s_expect(f, &m, QR_WCMD_READY, 2000);
    char err[64];
    Quarry__Ready *r = (Quarry__Ready *)qr_msg_decode(&m, &quarry__ready__descriptor, err,
                                                      sizeof err);
    assert_int_equal(r->n_running, 1);
    assert_int_equal(r->running[0], 42);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    qr_msg_close(&m);
    /* let it finish while unregistered: the result must wait for the ack */
    assert_int_equal(s_recv(f, &m, 1500, false), QR_WCMD_READY);
    r = (Quarry__Ready *)qr_msg_decode(&m, &quarry__ready__descriptor, err, sizeof err);
    assert_int_equal(r->n_running, 1); /* now held in the outbox */
    assert_int_equal(r->running[0], 42);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    qr_msg_close(&m);
    s_ack(f, 2500, 3);
    s_expect(f, &m, QR_WCMD_RESULT, 2000);
    s_check_result(&m, &x, 42);
    qr_msg_close(&m);
    s_mats_free(&x);
#else
    (void)state;
    skip();
#endif
}

static void test_drain(void **state)
{
#ifdef QR_TEST_FAULTS
    fx_t *f = *state;
    f->cfg.slots = 1;
    f->cfg.fault_delay_ms = 500;
    f->cfg.drain_ms = 10000;
    s_start(f);
    s_handshake(f, 2500, 3);
    s_mats_t x = s_mats(6, 4, 5, 6);
    s_assign(f, 1, "ai.gemm", &x, 2); /* runs */
    s_assign(f, 2, "ai.gemm", &x, 2); /* queued */
    s_sleep_ms(100);
    s_signal(f);
    s_expect_fail(f, 2, QR_ECANCELLED); /* at once */
    s_assign(f, 3, "ai.gemm", &x, 2);    /* no new work while draining */
    s_expect_fail(f, 3, QR_ECANCELLED);
    qr_msg_t m;
    s_expect(f, &m, QR_WCMD_RESULT, 3000); /* the running one finishes */
    s_check_result(&m, &x, 1);
    qr_msg_close(&m);
    s_expect(f, &m, QR_WCMD_DISCONNECT, 3000);
    char err[64];
    Quarry__Disconnect *d = (Quarry__Disconnect *)qr_msg_decode(
        &m, &quarry__disconnect__descriptor, err, sizeof err);
    assert_string_equal(d->reason, "shutdown");
    protobuf_c_message_free_unpacked(&d->base, NULL);
    qr_msg_close(&m);
    s_join(f);
    assert_int_equal(f->run_rc, QR_OK);
    s_mats_free(&x);
#else
    (void)state;
    skip();
#endif
}

static void test_drain_deadline(void **state)
{
#ifdef QR_TEST_FAULTS
    fx_t *f = *state;
    f->cfg.slots = 1;
    f->cfg.fault_delay_ms = 10000;
    f->cfg.drain_ms = 300;
    s_start(f);
    s_handshake(f, 2500, 3);
    s_mats_t x = s_mats(6, 4, 5, 6);
    s_assign(f, 1, "ai.gemm", &x, 2);
    s_sleep_ms(100);
    int64_t t0 = qr_clock_ms();
    s_signal(f);
    char text[128];
    qr_msg_t m;
    s_expect(f, &m, QR_WCMD_FAIL, 3000);
    int code;
    assert_int_equal(s_fail_job(&m, &code, text, sizeof text), 1);
    assert_int_equal(code, QR_ECANCELLED);
    assert_string_equal(text, "worker shutting down");
    qr_msg_close(&m);
    int64_t dt = qr_clock_ms() - t0;
    assert_true(dt >= 250 && dt < 2000);
    s_expect(f, &m, QR_WCMD_DISCONNECT, 3000);
    qr_msg_close(&m);
    s_join(f);
    assert_int_equal(f->run_rc, QR_OK);
    s_mats_free(&x);
#else
    (void)state;
    skip();
#endif
}

static void test_faults(void **state)
{
#ifdef QR_TEST_FAULTS
    fx_t *f = *state;
    f->cfg.fault_corrupt_every = 2;
    f->cfg.fault_delay_ms = 600; /* long enough to report progress */
    f->cfg.slots = 1;
    s_start(f);
    s_handshake(f, 2500, 3);
    s_mats_t x = s_mats(16, 16, 16, 7);
    for (uint64_t job = 1; job <= 2; job++) {
        s_assign(f, job, "ai.gemm", &x, 2);
        qr_msg_t m;
        int progress = 0, cmd;
        while ((cmd = s_recv(f, &m, 3000, false)) == QR_WCMD_PROGRESS) {
            progress++;
            qr_msg_close(&m);
        }
        assert_int_equal(cmd, QR_WCMD_RESULT);
        assert_true(progress >= 1);
        size_t len;
        const void *C = qr_msg_payload(&m, 0, &len);
        float *Cal = malloc(len);
        memcpy(Cal, C, len);
        int bad = qr_gemm_verify(x.A, x.B, Cal, 16, 16, 16, 2, 99, NULL);
        assert_int_equal(bad, job == 2 ? 1 : 0); /* every 2nd result is wrong */
        free(Cal);
        qr_msg_close(&m);
    }
    s_mats_free(&x);
#else
    (void)state;
    skip();
#endif
}

static void test_bad_endpoint_and_null(void **state)
{
    fx_t *f = *state;
    f->cfg.broker = "nonsense://x";
    f->worker = qr_worker_new(f->ctx, &f->cfg);
    assert_non_null(f->worker);
    assert_int_equal(qr_worker_run(f->worker, f->stop[0]), QR_EINVAL);
    qr_worker_destroy(&f->worker);
    assert_null(f->worker);
    qr_worker_destroy(&f->worker);
    qr_worker_destroy(NULL);
}

/* ---- CurveZMQ ------------------------------------------------------------------ */

/* The fake broker is a CURVE server (a plain-text peer cannot reach it): READY
 * arriving proves the handshake; after silence the worker's new DEALER gets
 * the keys again and registers anew. */
static void test_curve_ready_and_reconnect(void **state)
{
    fx_t *f = *state;
    s_start(f);
    s_handshake(f, 100, 3);
    uint8_t first[256];
    size_t firstlen = f->idlen;
    memcpy(first, f->id, firstlen);
    qr_msg_t m;
    s_expect(f, &m, QR_WCMD_READY, 3000);
    qr_msg_close(&m);
    assert_false(f->idlen == firstlen && memcmp(f->id, first, firstlen) == 0); /* new socket */
    s_ack(f, 100, 3);
    s_expect(f, &m, QR_WCMD_HEARTBEAT, 1000);
    qr_msg_close(&m);
}

/* Without keys, or with the wrong broker key, nothing reaches the broker. */
static void test_curve_wrong_keys_silent(void **state)
{
    fx_t *f = *state;
    char other[QR_KEY_Z85_LEN + 1], sec[QR_KEY_Z85_LEN + 1];
    assert_int_equal(qr_keys_generate(other, sec), 0);
    f->cfg.server_key = other;
    s_start(f);
    qr_msg_t m;
    assert_int_equal(s_recv(f, &m, 1500, true), -1);
    s_signal(f);
    s_signal(f);
    s_join(f);
    qr_worker_destroy(&f->worker);
    /* plain text against a CURVE server */
    f->cfg.server_key = NULL;
    f->cfg.key_file = NULL;
    s_start(f);
    assert_int_equal(s_recv(f, &m, 1000, true), -1);
}

/* Bad key settings are refused up front, with no secret in the message. */
static void test_curve_bad_keys(void **state)
{
    fx_t *f = *state;
    char err[512];
    assert_int_equal(qr_worker_check_keys(&f->cfg, err, sizeof err), 0);
    qr_worker_cfg_t c = f->cfg;
    c.server_key = "not-a-key";
    assert_int_equal(qr_worker_check_keys(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "--server-key"));
    assert_null(qr_worker_new(f->ctx, &c));
    c = f->cfg;
    c.key_file = "/nonexistent/w.key";
    assert_int_equal(qr_worker_check_keys(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "--key"));
    c = f->cfg;
    c.server_key = NULL; /* a key without the broker's key */
    assert_int_equal(qr_worker_check_keys(&c, err, sizeof err), -1);
    /* a secret file others can read */
    assert_int_equal(chmod(f->key_path, 0644), 0);
    assert_int_equal(qr_worker_check_keys(&f->cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "readable by others"));
    assert_int_equal(chmod(f->key_path, 0600), 0);
    /* no key file with a broker key: a throwaway pair */
    c = f->cfg;
    c.key_file = NULL;
    assert_int_equal(qr_worker_check_keys(&c, err, sizeof err), 0);
}

int main(void)
{
    qr_log_init("worker-test", getenv("QR_TEST_LOG") ? QR_LOG_DEBUG : QR_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ready_fields_and_retry, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_assign_result, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_input_cache, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_assign, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_cancel, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_reregisters, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_silence_reconnects, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_job_survives_reconnect, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_drain, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_drain_deadline, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_faults, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_endpoint_and_null, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_curve_ready_and_reconnect, s_setup_curve, s_teardown),
        cmocka_unit_test_setup_teardown(test_curve_wrong_keys_silent, s_setup_curve, s_teardown),
        cmocka_unit_test_setup_teardown(test_curve_bad_keys, s_setup_curve, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
