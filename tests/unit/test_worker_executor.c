/* Executor pool (worker/executor.c): correct C for many shapes checked against
 * a naive triple loop, on the threads and inline (small ai.gemm jobs on the
 * calling thread), misaligned input, queue order, the inline threshold, cancel
 * of queued, running and inline jobs, progress only for long jobs, OpenBLAS on
 * one thread for inline jobs, and teardown with work in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "err.h"
#include "executor.h"
#include "util.h"

/* From libopenblas (the pool's invariant 5 is checked through them). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

typedef struct {
    void *ctx;         /* context for the pool */
    qr_executor_t *x;  /* pool under test, destroyed by teardown even after a failure */
} fx_t;

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    f->ctx = zmq_ctx_new();
    *state = f;
    return f->ctx ? 0 : -1;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    qr_executor_destroy(&f->x); /* else zmq_ctx_term would wait forever */
    zmq_ctx_term(f->ctx);
    free(f);
    return 0;
}

/* Small integers times 1/4: exact in fp32, so sums of a few hundred stay exact. */
static void s_fill(float *x, size_t count, unsigned seed)
{
    for (size_t i = 0; i < count; i++)
        x[i] = (float)((int)((i * 7 + seed * 13) % 17) - 8) * 0.25f;
}

static void s_free_hint(void *data, void *hint)
{
    (void)data;
    free(hint);
}

/* Builds a job; misalign puts the frames' data one byte off float alignment. */
static qr_exec_job_t *s_job(uint64_t id, uint32_t m, uint32_t n, uint32_t k, bool misalign,
                            float **A_out, float **B_out)
{
    size_t ab = (size_t)m * k * 4, bb = (size_t)k * n * 4;
    float *A = malloc(ab), *B = malloc(bb);
    s_fill(A, (size_t)m * k, (unsigned)id);
    s_fill(B, (size_t)k * n, (unsigned)id + 1);
    zmq_msg_t a, b;
    if (misalign) {
        char *ra = malloc(ab + 1), *rb = malloc(bb + 1);
        memcpy(ra + 1, A, ab);
        memcpy(rb + 1, B, bb);
        /* the data starts one byte in; the free function gets the real block */
        zmq_msg_init_data(&a, ra + 1, ab, s_free_hint, ra);
        zmq_msg_init_data(&b, rb + 1, bb, s_free_hint, rb);
    } else {
        zmq_msg_init_size(&a, ab);
        zmq_msg_init_size(&b, bb);
        memcpy(zmq_msg_data(&a), A, ab);
        memcpy(zmq_msg_data(&b), B, bb);
    }
    qr_exec_job_t *j = qr_exec_job_new(id, m, n, k, &a, &b);
    assert_non_null(j);
    zmq_msg_close(&a);
    zmq_msg_close(&b);
    if (A_out)
        *A_out = A;
    else
        free(A);
    if (B_out)
        *B_out = B;
    else
        free(B);
    return j;
}

static void s_check(const float *A, const float *B, const float *C, uint32_t m, uint32_t n,
                    uint32_t k)
{
    for (uint32_t i = 0; i < m; i++)
        for (uint32_t j = 0; j < n; j++) {
            double s = 0;
            for (uint32_t l = 0; l < k; l++)
                s += (double)A[(size_t)i * k + l] * B[(size_t)l * n + j];
            if (fabs(s - C[(size_t)i * n + j]) > 1e-3 * (1 + fabs(s)))
                fail_msg("C[%u][%u] = %g, expected %g", i, j, C[(size_t)i * n + j], s);
        }
}

/* Waits up to ms for an event, as the worker's loop does: an inline job's
 * DONE is read without polling.  Returns false on timeout. */
static bool s_wait(qr_executor_t *x, qr_exec_event_t *ev, int ms)
{
    if (!qr_executor_ready(x)) {
        zmq_pollitem_t it = {.socket = qr_executor_socket(x), .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, ms) <= 0)
            return false;
    }
    return qr_executor_recv(x, ev, ZMQ_DONTWAIT) == QR_OK;
}

/* Reads events until job id's DONE; checks its C against A * B, frees all. */
static void s_expect_done(qr_executor_t *x, uint64_t id, uint32_t m, uint32_t n, uint32_t k,
                          float *A, float *B)
{
    qr_exec_event_t ev;
    do
        assert_true(s_wait(x, &ev, 10000));
    while (ev.type != QR_EXEC_DONE);
    assert_int_equal(ev.job_id, id);
    assert_int_equal(ev.per_mille, 1000);
    assert_int_equal(ev.cancel_reason, 0);
    assert_int_equal(qr_exec_job_id(ev.job), id);
    assert_int_equal(qr_exec_job_status(ev.job), QR_OK);
    size_t len;
    float *C = qr_exec_job_result(ev.job, &len);
    assert_non_null(C);
    assert_int_equal(len, (size_t)m * n * 4);
    s_check(A, B, C, m, n, k);
    qr_exec_job_destroy(&ev.job);
    free(A);
    free(B);
}

/* Every shape on a pool whose inline limit is `limit`: the threads alone
 * (0), the default (the small ones inline), everything inline. */
static void s_shapes(fx_t *f, uint64_t limit)
{
    static const uint32_t shapes[][3] = {{1, 1, 1},     {3, 5, 7},      {64, 33, 17},
                                         {257, 129, 65}, {700, 300, 200}, {1, 513, 2},
                                         {300, 1, 300}};
    enum { N = sizeof shapes / sizeof shapes[0] };
    qr_executor_t *x = f->x = qr_executor_new(f->ctx, 3, 0);
    assert_non_null(x);
    qr_executor_set_inline(x, limit);
    float *A[2 * N], *B[2 * N];
    for (int i = 0; i < 2 * N; i++) {
        const uint32_t *s = shapes[i % N];
        qr_exec_job_t *j = s_job((uint64_t)i + 1, s[0], s[1], s[2], i >= N, &A[i], &B[i]);
        assert_int_equal(qr_executor_submit(x, &j), QR_OK);
        assert_null(j);
    }
    int done = 0;
    while (done < 2 * N) {
        qr_exec_event_t ev;
        assert_true(s_wait(x, &ev, 10000));
        if (ev.type != QR_EXEC_DONE)
            continue;
        int i = (int)ev.job_id - 1;
        const uint32_t *s = shapes[i % N];
        assert_int_equal(qr_exec_job_status(ev.job), QR_OK);
        assert_int_equal(ev.cancel_reason, 0);
        size_t len;
        float *C = qr_exec_job_result(ev.job, &len);
        assert_non_null(C);
        assert_int_equal(len, (size_t)s[0] * s[1] * 4);
        s_check(A[i], B[i], C, s[0], s[1], s[2]);
        /* take_result hands C over */
        float *taken = qr_exec_job_take_result(ev.job, &len);
        assert_ptr_equal(taken, C);
        assert_null(qr_exec_job_result(ev.job, &len));
        free(taken);
        qr_exec_job_destroy(&ev.job);
        free(A[i]);
        free(B[i]);
        done++;
    }
    assert_int_equal(qr_executor_jobs(x, NULL, 0, false), 0);
    assert_false(qr_executor_ready(x));
    qr_executor_destroy(&x);
    assert_null(x);
    f->x = NULL;
}

static void test_shapes(void **state)
{
    s_shapes(*state, QR_EXEC_INLINE_MADDS);
}

static void test_shapes_threaded(void **state)
{
    s_shapes(*state, 0);
}

static void test_shapes_inline(void **state)
{
    s_shapes(*state, UINT64_MAX); /* 700x300x200 inline spans row blocks */
}

/* An inline job is done when submit returns; its DONE comes back through
 * qr_executor_recv like a threaded one's, and holds its slot until read. */
static void test_inline_done(void **state)
{
    fx_t *f = *state;
    qr_executor_t *x = f->x = qr_executor_new(f->ctx, 1, 0);
    assert_non_null(x);
    float *A, *B;
    qr_exec_job_t *j = s_job(1, 64, 64, 64, false, &A, &B);
    assert_false(qr_executor_ready(x));
    assert_int_equal(qr_executor_wait_ms(x, qr_clock_ms()), -1);
    assert_int_equal(qr_executor_submit(x, &j), QR_OK);
    assert_null(j);
    /* computed already, waiting for recv: the caller must not sleep */
    assert_true(qr_executor_ready(x));
    assert_int_equal(qr_executor_wait_ms(x, qr_clock_ms()), 0);
    assert_int_equal(qr_executor_running(x), 1);
    assert_true(qr_executor_holds(x, 1));
    uint64_t ids[4];
    assert_int_equal(qr_executor_jobs(x, ids, 4, false), 1);
    assert_int_equal(ids[0], 1);
    assert_int_equal(qr_executor_jobs(x, ids, 4, true), 0);
    /* the slot is taken: the next small job queues behind it */
    float *A2, *B2;
    qr_exec_job_t *j2 = s_job(2, 8, 8, 8, true, &A2, &B2);
    assert_int_equal(qr_executor_submit(x, &j2), QR_OK);
    assert_int_equal(qr_executor_jobs(x, ids, 4, true), 1);
    assert_int_equal(ids[0], 2);
    /* a blocking recv returns it at once */
    qr_exec_event_t ev;
    assert_int_equal(qr_executor_recv(x, &ev, 0), QR_OK);
    assert_int_equal(ev.type, QR_EXEC_DONE);
    assert_int_equal(ev.job_id, 1);
    assert_int_equal(ev.cancel_reason, 0);
    assert_int_equal(qr_exec_job_status(ev.job), QR_OK);
    size_t len;
    float *C = qr_exec_job_take_result(ev.job, &len);
    assert_int_equal(len, 64 * 64 * 4);
    s_check(A, B, C, 64, 64, 64);
    free(C);
    qr_exec_job_destroy(&ev.job);
    free(A);
    free(B);
    /* reading it freed the slot, which ran job 2 (misaligned input) inline */
    assert_false(qr_executor_holds(x, 1));
    assert_true(qr_executor_holds(x, 2));
    assert_true(qr_executor_ready(x));
    assert_int_equal(qr_executor_jobs(x, NULL, 0, true), 0);
    s_expect_done(x, 2, 8, 8, 8, A2, B2);
    assert_false(qr_executor_ready(x));
    assert_int_equal(qr_executor_running(x), 0);
    assert_int_equal(qr_executor_recv(x, &ev, ZMQ_DONTWAIT), QR_EIO);
    qr_executor_destroy(&f->x);
}

/* Jobs of up to the limit's multiply-adds run inline, larger ones on the
 * thread; both give the right C. */
static void test_inline_threshold(void **state)
{
    fx_t *f = *state;
    qr_executor_t *x = f->x = qr_executor_new(f->ctx, 1, 0);
    assert_non_null(x);
    static const struct {
        uint64_t limit;
        uint32_t m, n, k;
        bool inl;
    } cases[] = {
        {QR_EXEC_INLINE_MADDS, 128, 128, 128, true}, /* 2^21 */
        {QR_EXEC_INLINE_MADDS, 128, 128, 129, false},
        {QR_EXEC_INLINE_MADDS, 1, 2048, 1024, true},
        {QR_EXEC_INLINE_MADDS, 2049, 1, 1024, false},
        {4096, 16, 16, 16, true},
        {4096, 16, 17, 16, false},
        {4096, 1, 1, 1, true},
        {1, 1, 1, 1, true},
        {1, 1, 1, 2, false},
        {0, 1, 1, 1, false}, /* 0: no inline at all */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        qr_executor_set_inline(x, cases[c].limit);
        float *A, *B;
        uint64_t id = 100 + c;
        qr_exec_job_t *j = s_job(id, cases[c].m, cases[c].n, cases[c].k, false, &A, &B);
        assert_int_equal(qr_executor_submit(x, &j), QR_OK);
        if (qr_executor_ready(x) != cases[c].inl)
            fail_msg("case %zu: %ux%ux%u with limit %llu ran %s", c, cases[c].m, cases[c].n,
                     cases[c].k, (unsigned long long)cases[c].limit,
                     cases[c].inl ? "on the thread" : "inline");
        assert_int_equal(qr_executor_running(x), 1);
        s_expect_done(x, id, cases[c].m, cases[c].n, cases[c].k, A, B);
        assert_int_equal(qr_executor_running(x), 0);
    }
    qr_executor_destroy(&f->x);
}

/* Small jobs behind a threaded one: with one slot they wait for it and run
 * inline in the recv that frees it; with two, they run inline beside it, and
 * once its DONE is on the socket the next recv returns that before the
 * inline jobs' (which would otherwise keep its slot busy for as long as
 * small jobs keep coming). */
static void test_inline_behind_threaded(void **state)
{
    fx_t *f = *state;
    enum { SMALL = 6 };
    for (int slots = 1; slots <= 2; slots++) {
        qr_executor_t *x = f->x = qr_executor_new(f->ctx, slots, 0);
        assert_non_null(x);
        /* just over the limit: threaded, one row block, so no progress */
        float *A[SMALL + 1], *B[SMALL + 1];
        qr_exec_job_t *big = s_job(1, 130, 130, 130, false, &A[0], &B[0]);
        assert_int_equal(qr_executor_submit(x, &big), QR_OK);
        assert_false(qr_executor_ready(x));
        for (int i = 1; i <= SMALL; i++) {
            qr_exec_job_t *j = s_job((uint64_t)i + 1, 32, 32, 32, false, &A[i], &B[i]);
            assert_int_equal(qr_executor_submit(x, &j), QR_OK);
        }
        assert_int_equal(qr_executor_running(x), (size_t)slots);
        assert_int_equal(qr_executor_ready(x), slots == 2);
        assert_int_equal(qr_executor_jobs(x, NULL, 0, true), SMALL - (slots - 1));
        zmq_pollitem_t it = {.socket = qr_executor_socket(x), .events = ZMQ_POLLIN};
        assert_int_equal(zmq_poll(&it, 1, 10000), 1); /* the big one's DONE */
        s_expect_done(x, 1, 130, 130, 130, A[0], B[0]);
        /* the rest, inline, in order */
        for (int i = 1; i <= SMALL; i++) {
            assert_true(qr_executor_ready(x));
            s_expect_done(x, (uint64_t)i + 1, 32, 32, 32, A[i], B[i]);
        }
        assert_false(qr_executor_ready(x));
        assert_int_equal(qr_executor_running(x), 0);
        qr_executor_destroy(&f->x);
    }
}

/* A cancel of an inline job finds it done: like a threaded job that won the
 * race, its DONE carries QR_OK, the result and the reason.  A queued job
 * behind it is dropped. */
static void test_inline_cancel(void **state)
{
    fx_t *f = *state;
    qr_executor_t *x = f->x = qr_executor_new(f->ctx, 1, 0);
    assert_non_null(x);
    float *A, *B;
    qr_exec_job_t *j = s_job(1, 20, 30, 40, false, &A, &B);
    qr_exec_job_t *q = s_job(2, 4, 4, 4, false, NULL, NULL);
    assert_int_equal(qr_executor_submit(x, &j), QR_OK);
    assert_int_equal(qr_executor_submit(x, &q), QR_OK);
    assert_int_equal(qr_executor_cancel(x, 2, 5), QR_EXEC_DROPPED);
    assert_int_equal(qr_executor_cancel(x, 1, 7), QR_EXEC_STOPPING);
    assert_true(qr_executor_holds(x, 1));
    qr_exec_event_t ev;
    assert_true(s_wait(x, &ev, 0));
    assert_int_equal(ev.type, QR_EXEC_DONE);
    assert_int_equal(ev.job_id, 1);
    assert_int_equal(ev.cancel_reason, 7);
    assert_int_equal(qr_exec_job_status(ev.job), QR_OK);
    size_t len;
    float *C = qr_exec_job_result(ev.job, &len);
    assert_non_null(C);
    s_check(A, B, C, 20, 30, 40);
    qr_exec_job_destroy(&ev.job);
    free(A);
    free(B);
    assert_false(qr_executor_holds(x, 1));
    assert_false(qr_executor_holds(x, 2));
    assert_false(qr_executor_ready(x));
    /* the cancel flag died with the job: the next one computes */
    float *A3, *B3;
    qr_exec_job_t *k = s_job(3, 5, 6, 7, false, &A3, &B3);
    assert_int_equal(qr_executor_submit(x, &k), QR_OK);
    s_expect_done(x, 3, 5, 6, 7, A3, B3);
    qr_executor_destroy(&f->x);
}

/* Teardown with inline DONE events unread and jobs queued behind them frees
 * them all (the sanitizer build checks for leaks). */
static void test_inline_destroy(void **state)
{
    fx_t *f = *state;
    qr_executor_t *x = f->x = qr_executor_new(f->ctx, 2, 0);
    assert_non_null(x);
    for (uint64_t i = 1; i <= 5; i++) {
        qr_exec_job_t *j = s_job(i, 16, 16, 16, false, NULL, NULL);
        assert_int_equal(qr_executor_submit(x, &j), QR_OK);
    }
    assert_true(qr_executor_ready(x));
    assert_int_equal(qr_executor_running(x), 2);
    assert_int_equal(qr_executor_jobs(x, NULL, 0, true), 3);
    qr_executor_destroy(&f->x);
    assert_null(f->x);
}

/* Inline jobs run OpenBLAS on one thread (invariant 5); the one slot's
 * thread gets the process's count back before its next job, as does the
 * process when the pool goes. */
static void test_inline_blas_threads(void **state)
{
    fx_t *f = *state;
    openblas_set_num_threads(2);
    if (openblas_get_num_threads() != 2)
        skip();
    qr_executor_t *x = f->x = qr_executor_new(f->ctx, 1, 0);
    assert_non_null(x);
    assert_int_equal(openblas_get_num_threads(), 2);
    float *A, *B;
    qr_exec_job_t *j = s_job(1, 100, 100, 100, false, &A, &B);
    assert_int_equal(qr_executor_submit(x, &j), QR_OK);
    assert_true(qr_executor_ready(x));
    assert_int_equal(openblas_get_num_threads(), 1);
    s_expect_done(x, 1, 100, 100, 100, A, B);
    j = s_job(2, 200, 200, 200, false, &A, &B);
    assert_int_equal(qr_executor_submit(x, &j), QR_OK);
    assert_false(qr_executor_ready(x));
    assert_int_equal(openblas_get_num_threads(), 2);
    s_expect_done(x, 2, 200, 200, 200, A, B);
    j = s_job(3, 10, 10, 10, false, NULL, NULL);
    assert_int_equal(qr_executor_submit(x, &j), QR_OK);
    assert_int_equal(openblas_get_num_threads(), 1);
    qr_executor_destroy(&f->x); /* job 3's DONE unread */
    assert_int_equal(openblas_get_num_threads(), 2);
    /* several slots: one thread for good, nothing to switch */
    x = f->x = qr_executor_new(f->ctx, 2, 0);
    assert_int_equal(openblas_get_num_threads(), 1);
    j = s_job(4, 10, 10, 10, false, &A, &B);
    assert_int_equal(qr_executor_submit(x, &j), QR_OK);
    s_expect_done(x, 4, 10, 10, 10, A, B);
    assert_int_equal(openblas_get_num_threads(), 1);
    qr_executor_destroy(&f->x);
}

/* A job that runs long enough to be cancelled mid-way: in fault builds every
 * job of a pool made with delay sleeps; elsewhere a large product. */
static void test_cancel(void **state)
{
    fx_t *f = *state;
    qr_executor_t *x = f->x = qr_executor_new(f->ctx, 1, 5000);
#ifdef QR_TEST_FAULTS
    qr_exec_job_t *big = s_job(1, 8, 8, 8, false, NULL, NULL);
#else
    qr_exec_job_t *big = s_job(1, 2048, 2048, 2048, false, NULL, NULL);
#endif
    qr_exec_job_t *small = s_job(2, 4, 4, 4, false, NULL, NULL);
    qr_exec_job_t *small2 = s_job(3, 4, 4, 4, false, NULL, NULL);
    assert_int_equal(qr_executor_submit(x, &big), QR_OK);
    assert_int_equal(qr_executor_submit(x, &small), QR_OK);
    assert_int_equal(qr_executor_submit(x, &small2), QR_OK);
    assert_int_equal(qr_executor_running(x), 1);
    uint64_t ids[8];
    assert_int_equal(qr_executor_jobs(x, ids, 8, false), 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(qr_executor_jobs(x, ids, 8, true), 2);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 3);
    assert_true(qr_executor_holds(x, 2));
    assert_int_equal(qr_executor_cancel(x, 2, 9), QR_EXEC_DROPPED);
    assert_false(qr_executor_holds(x, 2));
    assert_int_equal(qr_executor_cancel(x, 2, 9), QR_EXEC_NOT_HELD);
    assert_int_equal(qr_executor_cancel(x, 99, 9), QR_EXEC_NOT_HELD);
    qr_exec_event_t ev;
#ifdef QR_TEST_FAULTS
    /* let it start, so the cancel lands mid-job */
    assert_false(s_wait(x, &ev, 100));
#endif
    int64_t t0 = qr_clock_ms();
    assert_int_equal(qr_executor_cancel(x, 1, 7), QR_EXEC_STOPPING);
    do
        assert_true(s_wait(x, &ev, 5000));
    while (ev.type != QR_EXEC_DONE);
    assert_true(qr_clock_ms() - t0 < 1000);
    assert_int_equal(ev.job_id, 1);
    assert_int_equal(ev.cancel_reason, 7);
    assert_int_equal(qr_exec_job_status(ev.job), QR_ECANCELLED);
    size_t len;
    assert_null(qr_exec_job_result(ev.job, &len));
    assert_int_equal(len, 0);
    qr_exec_job_destroy(&ev.job);
    /* the queue moves on: job 3 starts on the freed slot */
    assert_true(qr_executor_holds(x, 3));
    assert_int_equal(qr_executor_running(x), 1);
    qr_executor_destroy(&f->x); /* job 3 still running: cancelled and freed */
}

static void test_progress(void **state)
{
#ifdef QR_TEST_FAULTS
    fx_t *f = *state;
    /* A quick job sends DONE and nothing else. */
    qr_executor_t *x = f->x = qr_executor_new(f->ctx, 2, 0);
    qr_exec_job_t *j = s_job(1, 32, 32, 32, false, NULL, NULL);
    qr_executor_submit(x, &j);
    qr_exec_event_t ev;
    assert_true(s_wait(x, &ev, 5000));
    assert_int_equal(ev.type, QR_EXEC_DONE);
    qr_exec_job_destroy(&ev.job);
    qr_executor_destroy(&f->x);
    /* A job of ~700 ms reports progress at most every 250 ms, the first not
     * before 250 ms.  Receive times jitter on a loaded box, so only the first
     * report and the count are checked against the clock. */
    x = f->x = qr_executor_new(f->ctx, 2, 700);
    j = s_job(2, 32, 32, 32, false, NULL, NULL);
    int64_t t0 = qr_clock_ms();
    qr_executor_submit(x, &j);
    int progress = 0;
    for (;;) {
        assert_true(s_wait(x, &ev, 5000));
        if (ev.type == QR_EXEC_DONE)
            break;
        assert_int_equal(ev.type, QR_EXEC_PROGRESS);
        assert_int_equal(ev.job_id, 2);
        assert_true(ev.per_mille <= 1000);
        if (progress++ == 0)
            assert_true(qr_clock_ms() - t0 >= 250);
    }
    assert_true(progress >= 1 && progress <= 3);
    assert_int_equal(qr_exec_job_status(ev.job), QR_OK);
    assert_true(qr_exec_job_compute_us(ev.job) >= 690000 /* ms clock granularity */);
    qr_exec_job_destroy(&ev.job);
    qr_executor_destroy(&f->x);
#else
    (void)state;
    skip();
#endif
}

static void test_destroy_busy_and_null(void **state)
{
    fx_t *f = *state;
    qr_executor_t *x = f->x = qr_executor_new(f->ctx, 2, 5000);
    for (uint64_t i = 1; i <= 5; i++) {
        qr_exec_job_t *j = s_job(i, 64, 64, 64, false, NULL, NULL);
        qr_executor_submit(x, &j);
    }
    qr_executor_destroy(&f->x);
    assert_null(f->x);
    qr_executor_destroy(&f->x);
    qr_executor_destroy(NULL);
    qr_exec_job_t *j = NULL;
    qr_exec_job_destroy(&j);
    qr_exec_job_destroy(NULL);
    assert_null(qr_executor_new(f->ctx, 0, 0));
    assert_null(qr_executor_new(NULL, 1, 0));
}

int main(void)
{
    qr_log_init("test", QR_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shapes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shapes_threaded, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shapes_inline, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_inline_done, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_inline_threshold, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_inline_behind_threaded, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_inline_cancel, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_inline_destroy, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_inline_blas_threads, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_cancel, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_progress, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_destroy_busy_and_null, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
