/* Executor pool; see executor.h.
 *
 * Design notes.  Each slot is one thread with two inproc sockets: a PULL on
 * which the main thread's PUSH hands it a job pointer (NULL means stop), and a
 * PUSH into the pool's single event PULL, which the main thread polls.
 *
 * Small ai.gemm jobs (up to inline_madds multiply-adds) do not go to the
 * thread: the main thread claims the idle slot, runs the same s_compute on
 * itself and parks the DONE event in the pool's ready ring, which
 * qr_executor_recv reads whenever the socket has nothing (the socket first,
 * so a thread's DONE never waits behind a stream of inline jobs).  A
 * 64x64x64 product takes a few microseconds; the two hand-offs, with the
 * wake-ups and context switches of the slot's thread and ZeroMQ's I/O
 * thread, cost several times that.  The slot stays busy until the DONE is
 * read, exactly as for a threaded job, so accounting, cancel and teardown
 * see no difference, and a call runs at most as many inline jobs as there
 * are idle slots: the main loop never computes more than nslots jobs before
 * it looks at its sockets again.
 *
 * Invariants:
 *   1. A job is owned by exactly one thread.  The main thread gives it up when
 *      it sends the pointer and gets it back with the DONE event; in between
 *      it reads nothing of the job, only its own copy of the id in the slot.
 *      An inline job never leaves the main thread.
 *   2. A slot holds at most one job: the main thread sends a job only to an
 *      idle slot, so the per-slot pipe never queues more than job + stop.  An
 *      inline job holds its slot like a threaded one, so the ready ring never
 *      holds more than nslots events.
 *   3. The cancel flag of a slot is written only by the main thread: cleared
 *      before a job is sent, set by a cancel.  A cancel that races the job's
 *      end only sets the flag of an idle slot, which the next send clears.
 *      An inline job is done before any cancel can reach it: like a threaded
 *      job that won that race, its DONE carries QR_OK and the cancel reason.
 *   4. Jobs that run long report progress at most every S_PROGRESS_MS, and
 *      never before S_PROGRESS_MS has passed, so small threaded jobs cost
 *      exactly two inproc messages (job in, DONE out) and inline jobs none.
 *      Inline jobs never report progress (the slot's PUSH belongs to its
 *      thread, and their DONE follows at once).
 *   5. Inline jobs run OpenBLAS on one thread and never wake its pool.  With
 *      more than one slot that is set for good at start; with one, the main
 *      thread sets it to 1 before an inline job and back before the next job
 *      goes to the thread, both only while that one slot is idle, so no
 *      computation ever sees the count change under it.
 *   6. A job runs inline only on a CPU pool without fault delay: the GPU path
 *      may wait on other slots' device work, and a delayed job must stay
 *      cancellable while it sleeps.
 *
 * Slot states: idle --submit/recv/tick dispatch--> busy --DONE event read by
 * qr_executor_recv--> idle; an inline job goes idle -> busy with its DONE
 * already in the ready ring. */
#include "executor.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "gemm.h"
#include "gpu.h"
#include "model.h"
#include "prover.h"
#include "wtns.h"
#include "util.h"

/* From libopenblas; declared here so that only common/gemm.c includes cblas.h. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

#define S_PROGRESS_MS 250
/* Multiply-adds per row block: a few milliseconds on one core, so a cancel
 * takes effect quickly while small jobs still run as a single BLAS call. */
#define S_BLOCK_MADDS (1u << 24)
#define S_ALIGN 64

enum { S_GEMM = 0, S_INFER = 1, S_ZK = 2 };
#define S_BATCH_JOBS 256 /* jobs merged into one forward pass, at most */

struct qr_exec_job_t {
    int kind;             /* S_GEMM, S_INFER */
    uint64_t id;          /* broker's job id */
    const qr_model_t *model; /* S_INFER: the model (the caller keeps it alive) */
    const qr_g16_pk_t *pk;   /* S_ZK: the proving key (the caller keeps it alive) */
    size_t in_bytes;         /* S_ZK: the witness file's size (frame a) */
    uint32_t rows;        /* S_INFER: input rows */
    float *acts;          /* S_INFER: layers 0..L-2 of its rows, concatenated */
    size_t acts_bytes;
    char why[160];        /* S_INFER: why the forward pass failed */
    int64_t queued_ms;    /* when it was submitted (batch delay) */
    qr_exec_job_t *batch; /* next job of the batch it runs in (thread-owned) */
    uint32_t m, n, k;     /* shape: A m x k, B k x n, C m x n */
    zmq_msg_t a, b;       /* input frames, emptied once no longer needed */
    float *a_copy;        /* aligned copy of A when the frame was misaligned */
    float *b_copy;        /* same for B */
    const float *A, *B;   /* what the computation reads */
    float *C;             /* result, NULL until computed */
    size_t c_bytes;       /* size of C */
    int status;           /* QR_OK, QR_ECANCELLED, QR_ENOMEM */
    uint64_t compute_us;  /* time spent on the executor thread */
    qr_exec_job_t *next;  /* queue link, main thread only */
};

typedef struct {
    int type;           /* qr_exec_event_type_t */
    int slot;           /* which slot sent it */
    uint64_t job_id;    /* the job */
    uint32_t per_mille; /* PROGRESS */
    qr_exec_job_t *job; /* DONE: ownership returns to the main thread */
    bool more;          /* DONE: more jobs of the same batch follow */
} s_event_t;

typedef struct {
    /* shared with the thread */
    atomic_bool cancel;   /* invariant 3 */
    int index;            /* slot number, echoed in events */
    void *in;             /* thread's PULL for job pointers */
    void *out;            /* thread's PUSH into the event socket */
    int64_t delay_ms;     /* fault injection: sleep per job */
    qr_gpu_t *gpu;        /* the GPU path, shared by all slots; NULL = CPU only */
    int nbatch;           /* main: jobs on the thread (ids below) */
    uint64_t batch_ids[S_BATCH_JOBS];
    uint64_t cancelled[S_BATCH_JOBS]; /* main: batch members cancelled alone */
    int ncancelled;
    int cancelled_reason;
    /* main thread only */
    void *push;           /* main's PUSH feeding `in` */
    pthread_t thread;     /* the executor thread */
    bool started;         /* thread was created */
    bool busy;            /* a job is on the thread */
    uint64_t job_id;      /* id of that job */
    int cancel_reason;    /* reason of the cancel that set the flag */
} s_slot_t;

struct qr_executor_t {
    void *ctx;            /* caller's ZeroMQ context */
    void *events;         /* PULL for s_event_t from all slots */
    s_slot_t *slots;      /* the threads */
    int nslots;           /* count of slots */
    qr_exec_job_t *head;  /* queue of jobs waiting for a slot */
    qr_exec_job_t *tail;  /* last queued job */
    size_t queued;        /* jobs in the queue */
    uint32_t batch_rows;  /* rows merged into one ai.infer pass, at most */
    uint64_t passes;      /* ai.infer forward passes started */
    uint64_t pass_jobs;   /* ai.infer jobs they carried */
    int64_t batch_delay_ms; /* an ai.infer job waits this long for company */
    uint64_t inline_madds;  /* gemm jobs up to this size run inline; 0 = none */
    s_event_t *ready;       /* ring of nslots: inline jobs' DONE events */
    int ready_head;         /* oldest event in the ring */
    int nready;             /* events in the ring */
    int blas_threads;       /* OpenBLAS threads to restore before the next
                               threaded job; 0 = unchanged (invariant 5) */
};

/* ---- jobs ---------------------------------------------------------------- */

static float *s_aligned(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, S_ALIGN, bytes ? bytes : 1) != 0)
        return NULL;
    return p;
}

/* Frames from the network may start at any byte of ZeroMQ's receive buffer;
 * BLAS and the C standard want floats aligned, so misaligned input is copied
 * once.  Aligned input is used in place, its frame moved into the job. */
static bool s_misaligned(zmq_msg_t *f)
{
    return (uintptr_t)zmq_msg_data(f) % _Alignof(float) != 0;
}

static float *s_copy_frame(zmq_msg_t *f)
{
    float *c = s_aligned(zmq_msg_size(f));
    if (c)
        memcpy(c, zmq_msg_data(f), zmq_msg_size(f));
    return c;
}

qr_exec_job_t *qr_exec_job_new(uint64_t id, uint32_t m, uint32_t n, uint32_t k, zmq_msg_t *a,
                               zmq_msg_t *b)
{
    qr_exec_job_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->id = id;
    self->m = m;
    self->n = n;
    self->k = k;
    self->c_bytes = (size_t)m * n * sizeof(float);
    self->status = QR_ECOMPUTE;
    zmq_msg_init(&self->a);
    zmq_msg_init(&self->b);
    /* Copies first, moves after: a failure leaves the caller's frames alone. */
    if (s_misaligned(a) && !(self->a_copy = s_copy_frame(a)))
        goto fail;
    if (s_misaligned(b) && !(self->b_copy = s_copy_frame(b)))
        goto fail;
    if (self->a_copy)
        self->A = self->a_copy;
    else {
        zmq_msg_move(&self->a, a);
        self->A = zmq_msg_data(&self->a);
    }
    if (self->b_copy)
        self->B = self->b_copy;
    else {
        zmq_msg_move(&self->b, b);
        self->B = zmq_msg_data(&self->b);
    }
    return self;
fail:
    qr_exec_job_destroy(&self);
    return NULL;
}

qr_exec_job_t *qr_exec_job_new_infer(uint64_t id, const qr_model_t *model, uint32_t rows,
                                     zmq_msg_t *in)
{
    zmq_msg_t none;
    zmq_msg_init(&none);
    uint32_t w = qr_model_output_width(model);
    qr_exec_job_t *self = qr_exec_job_new(id, rows, w ? w : 1, 1, in, &none);
    zmq_msg_close(&none);
    if (!self)
        return NULL;
    self->kind = S_INFER;
    self->model = model;
    self->rows = rows;
    return self;
}

qr_exec_job_t *qr_exec_job_new_zk(uint64_t id, const qr_g16_pk_t *pk, zmq_msg_t *wtns)
{
    qr_exec_job_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->kind = S_ZK;
    self->id = id;
    self->pk = pk;
    self->status = QR_ECOMPUTE;
    zmq_msg_init(&self->a);
    zmq_msg_init(&self->b);
    /* the witness is parsed byte by byte: no alignment needed */
    zmq_msg_move(&self->a, wtns);
    self->in_bytes = zmq_msg_size(&self->a);
    self->A = zmq_msg_data(&self->a);
    self->m = pk->n_vars;
    self->n = pk->n_public;
    self->k = pk->domain_size;
    return self;
}

static void s_job_release_inputs(qr_exec_job_t *self)
{
    zmq_msg_close(&self->a);
    zmq_msg_close(&self->b);
    zmq_msg_init(&self->a);
    zmq_msg_init(&self->b);
    free(self->a_copy);
    free(self->b_copy);
    self->a_copy = self->b_copy = NULL;
    self->A = self->B = NULL;
}

void qr_exec_job_destroy(qr_exec_job_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_exec_job_t *self = *self_p;
    s_job_release_inputs(self);
    zmq_msg_close(&self->a);
    zmq_msg_close(&self->b);
    free(self->C);
    free(self->acts);
    free(self);
    *self_p = NULL;
}

float *qr_exec_job_take_layers(qr_exec_job_t *self, size_t *len)
{
    float *a = self->acts;
    *len = a ? self->acts_bytes : 0;
    self->acts = NULL;
    return a;
}

float *qr_exec_job_layers(qr_exec_job_t *self, size_t *len)
{
    *len = self->acts ? self->acts_bytes : 0;
    return self->acts;
}

bool qr_exec_job_is_infer(const qr_exec_job_t *self)
{
    return self->kind == S_INFER;
}

bool qr_exec_job_is_zk(const qr_exec_job_t *self)
{
    return self->kind == S_ZK;
}

const char *qr_exec_job_error(const qr_exec_job_t *self)
{
    return self->why;
}

uint64_t qr_exec_job_id(const qr_exec_job_t *self)
{
    return self->id;
}

void qr_exec_job_shape(const qr_exec_job_t *self, uint32_t *m, uint32_t *n, uint32_t *k)
{
    *m = self->m;
    *n = self->n;
    *k = self->k;
}

int qr_exec_job_status(const qr_exec_job_t *self)
{
    return self->status;
}

uint64_t qr_exec_job_compute_us(const qr_exec_job_t *self)
{
    return self->compute_us;
}

float *qr_exec_job_result(qr_exec_job_t *self, size_t *len)
{
    *len = self->C ? self->c_bytes : 0;
    return self->C;
}

float *qr_exec_job_take_result(qr_exec_job_t *self, size_t *len)
{
    float *c = qr_exec_job_result(self, len);
    self->C = NULL;
    return c;
}

/* ---- executor threads ------------------------------------------------------ */

static void s_post(s_slot_t *slot, int type, uint64_t job_id, uint32_t per_mille,
                   qr_exec_job_t *job)
{
    s_event_t ev = {.type = type, .slot = slot->index, .job_id = job_id,
                    .per_mille = per_mille, .job = job};
    /* Only fails when the context is terminated, which the pool prevents by
     * joining its threads first. */
    if (zmq_send(slot->out, &ev, sizeof ev, 0) < 0)
        qr_log(QR_LOG_ERROR, "executor event lost", "job=%llu err=\"%s\"",
               (unsigned long long)job_id, zmq_strerror(errno));
}

static void s_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Reports progress when the job has run S_PROGRESS_MS since the last report
 * (or its start): invariant 4. */
static void s_maybe_progress(s_slot_t *slot, qr_exec_job_t *job, int64_t *last_ms,
                             uint32_t per_mille)
{
    int64_t now = qr_clock_ms();
    if (now - *last_ms < S_PROGRESS_MS)
        return;
    *last_ms = now;
    s_post(slot, QR_EXEC_PROGRESS, job->id, per_mille, NULL);
}

/* Computes an ai.gemm job for slot: on its thread, or inline on the main
 * thread (on_thread false: no progress, invariant 4). */
static void s_compute(s_slot_t *slot, qr_exec_job_t *job, bool on_thread)
{
    int64_t t0 = qr_clock_us(), last_ms = qr_clock_ms();
    job->status = QR_ECANCELLED;
#ifdef QR_TEST_FAULTS
    /* Fault injection: a slow job, sleeping in small steps so that cancel and
     * tests that kill the worker mid-job see it promptly. */
    int64_t until = qr_clock_ms() + slot->delay_ms;
    for (int64_t now = qr_clock_ms(); now < until; now = qr_clock_ms()) {
        if (atomic_load(&slot->cancel))
            goto done;
        s_sleep_ms(until - now < 10 ? until - now : 10);
        if (on_thread)
            s_maybe_progress(slot, job, &last_ms, 0);
    }
#else
    (void)s_sleep_ms;
#endif
    job->C = s_aligned(job->c_bytes);
    if (!job->C) {
        job->status = QR_ENOMEM;
        goto done;
    }
    if (slot->gpu && !atomic_load(&slot->cancel)) {
        char err[160];
        if (qr_gpu_sgemm(slot->gpu, job->A, job->B, job->C, job->m, job->n, job->k, err,
                         sizeof err) == 0) {
            job->status = QR_OK;
            goto done;
        }
        qr_log(QR_LOG_WARN, "GPU sgemm failed, using the CPU", "job=%llu reason=\"%s\"",
               (unsigned long long)job->id, err);
    }
    uint64_t per_row = (uint64_t)job->n * job->k;
    uint64_t rows = per_row >= S_BLOCK_MADDS ? 1 : S_BLOCK_MADDS / per_row;
    if (rows > job->m)
        rows = job->m;
    for (uint32_t row0 = 0; row0 < job->m; row0 += (uint32_t)rows) {
        if (atomic_load(&slot->cancel))
            goto done;
        qr_gemm_rows(job->A, job->B, job->C, job->m, job->n, job->k, row0, (uint32_t)rows);
        uint64_t end = row0 + rows < job->m ? row0 + rows : job->m;
        if (end < job->m && on_thread)
            s_maybe_progress(slot, job, &last_ms, (uint32_t)(end * 1000 / job->m));
    }
    job->status = QR_OK;
done:
    if (job->status != QR_OK) {
        free(job->C);
        job->C = NULL;
    }
    /* The inputs are dead weight from here on; free them on this thread so
     * the main thread's loop stays short. */
    s_job_release_inputs(job);
    job->compute_us = (uint64_t)(qr_clock_us() - t0);
}

/* Runs a batch of ai.infer jobs on one model as one forward pass over all
 * their rows, then splits every layer's rows back to the jobs. */
static void s_infer(s_slot_t *slot, qr_exec_job_t *head)
{
    int64_t t0 = qr_clock_us();
    const qr_model_t *m = head->model;
    uint32_t in = qr_model_input_width(m), L = qr_model_layers(m), total = 0;
    for (qr_exec_job_t *j = head; j; j = j->batch) {
        total += j->rows;
        j->status = QR_ECOMPUTE;
    }
    const float *x = head->A;
    float *merged = NULL;
    if (head->batch) {
        if (!(merged = s_aligned((size_t)total * in * sizeof(float)))) {
            for (qr_exec_job_t *j = head; j; j = j->batch)
                j->status = QR_ENOMEM;
            goto done;
        }
        size_t off = 0;
        for (qr_exec_job_t *j = head; j; j = j->batch) {
            memcpy(merged + off, j->A, (size_t)j->rows * in * sizeof(float));
            off += (size_t)j->rows * in;
        }
        x = merged;
    }
    char err[160];
    qr_model_acts_t *acts = NULL;
    if (!atomic_load(&slot->cancel) && slot->gpu) {
        acts = qr_gpu_model_forward(slot->gpu, m, x, total, err, sizeof err);
        if (!acts) /* a bad input fails the same way on the CPU; a GPU fault does not */
            qr_log(QR_LOG_WARN, "GPU forward failed, using the CPU", "job=%llu reason=\"%s\"",
                   (unsigned long long)head->id, err);
    }
    if (!acts && !atomic_load(&slot->cancel))
        acts = qr_model_forward(m, x, total, err, sizeof err);
    if (!acts) {
        int st = atomic_load(&slot->cancel) ? QR_ECANCELLED : QR_ECOMPUTE;
        for (qr_exec_job_t *j = head; j; j = j->batch) {
            j->status = st;
            snprintf(j->why, sizeof j->why, "%s", st == QR_ECOMPUTE ? err : "cancelled");
        }
        goto done;
    }
    size_t per_row = 0; /* floats of layers 0..L-2 per row */
    for (uint32_t i = 0; i + 1 < L; i++)
        per_row += qr_model_layer_width(m, i);
    uint32_t r0 = 0, ow = qr_model_output_width(m);
    for (qr_exec_job_t *j = head; j; r0 += j->rows, j = j->batch) {
        j->C = s_aligned(j->c_bytes);
        j->acts_bytes = (size_t)j->rows * per_row * sizeof(float);
        j->acts = j->acts_bytes ? s_aligned(j->acts_bytes) : NULL;
        if (!j->C || (j->acts_bytes && !j->acts)) {
            j->status = QR_ENOMEM;
            continue;
        }
        memcpy(j->C, qr_model_acts_output(acts) + (size_t)r0 * ow, j->c_bytes);
        size_t off = 0;
        for (uint32_t i = 0; i + 1 < L; i++) {
            size_t w = qr_model_layer_width(m, i);
            memcpy(j->acts + off, qr_model_acts_layer(acts, (int)i) + (size_t)r0 * w,
                   (size_t)j->rows * w * sizeof(float));
            off += (size_t)j->rows * w;
        }
        j->status = QR_OK;
    }
    qr_model_acts_destroy(&acts);
done:
    free(merged);
    uint64_t us = (uint64_t)(qr_clock_us() - t0);
    for (qr_exec_job_t *j = head; j; j = j->batch) {
        if (j->status != QR_OK) {
            free(j->C);
            free(j->acts);
            j->C = NULL;
            j->acts = NULL;
        }
        s_job_release_inputs(j);
        /* the batch's time, shared by rows */
        j->compute_us = total ? us * j->rows / total : us;
    }
}

/* One Groth16 proof: the witness checked against the key, the proof made
 * with r and s from the OS (its MSMs and NTTs on the GPU when the pool has
 * one, the CPU when that fails), and the result laid out as the broker reads it:
 * pi_a (64 bytes), pi_b (128), pi_c (64), big-endian as Ethereum's
 * precompiles take them, then the public signals (32 bytes each). */
static void s_zk(s_slot_t *slot, qr_exec_job_t *job)
{
    int64_t t0 = qr_clock_us();
    const qr_g16_pk_t *pk = job->pk;
    qr_wtns_t *wt = NULL;
    job->status = QR_ECOMPUTE;
    if (atomic_load(&slot->cancel)) {
        job->status = QR_ECANCELLED;
        goto done;
    }
    wt = qr_wtns_load_mem("witness", job->A, job->in_bytes, job->why, sizeof job->why);
    if (!wt)
        goto done;
    if (wt->n != pk->n_vars) {
        snprintf(job->why, sizeof job->why, "the witness has %u values, the key needs %u", wt->n,
                 pk->n_vars);
        goto done;
    }
    qr_g16_proof_t p;
    int rc = -1;
    if (slot->gpu) {
        /* the MSMs and NTTs on the GPU; on any failure (out of GPU memory,
         * a broken context, a size over its limit) the whole proof again on
         * the CPU, which gives an equally valid proof */
        qr_g16_backend_t be;
        qr_gpu_g16_backend(slot->gpu, &be);
        rc = qr_g16_prove_backend(pk, wt->values, wt->n, NULL, NULL, 0, &be, NULL, &p, job->why,
                                  sizeof job->why);
        if (rc != 0)
            qr_log(QR_LOG_WARN, "GPU proof failed, proving on the CPU", "job=%llu reason=\"%s\"",
                   (unsigned long long)job->id, job->why);
    }
    if (rc != 0 && atomic_load(&slot->cancel)) {
        job->status = QR_ECANCELLED;
        goto done;
    }
    if (rc != 0 && qr_g16_prove(pk, wt->values, wt->n, 0, &p, job->why, sizeof job->why) != 0)
        goto done;
    job->why[0] = '\0'; /* a GPU failure that the CPU made good is no error */
    job->c_bytes = 256 + (size_t)pk->n_public * 32;
    uint8_t *out = malloc(job->c_bytes);
    if (!out) {
        job->status = QR_ENOMEM;
        goto done;
    }
    qr_g1_to_be64(out, &p.a);
    qr_g2_to_be128(out + 64, &p.b);
    qr_g1_to_be64(out + 192, &p.c);
    for (uint32_t i = 0; i < pk->n_public; i++)
        qr_fr_to_be32(out + 256 + (size_t)i * 32, &wt->values[1 + i]);
    job->C = (float *)(void *)out; /* bytes: the result frame, sent as is */
    job->status = QR_OK;
done:
    qr_wtns_destroy(&wt);
    s_job_release_inputs(job);
    job->compute_us = (uint64_t)(qr_clock_us() - t0);
}

static void *s_thread(void *arg)
{
    s_slot_t *slot = arg;
    for (;;) {
        qr_exec_job_t *job = NULL;
        int rc = zmq_recv(slot->in, &job, sizeof job, 0);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc != (int)sizeof job || !job)
            break;
        if (job->kind == S_ZK) {
            s_zk(slot, job);
            s_post(slot, QR_EXEC_DONE, job->id, 1000, job);
            continue;
        }
        if (job->kind == S_INFER) {
            s_infer(slot, job);
            /* read the link before posting: the main thread owns a job again
             * as soon as its DONE is out */
            for (qr_exec_job_t *j = job, *next; j; j = next) {
                next = j->batch;
                j->batch = NULL;
                s_event_t ev = {.type = QR_EXEC_DONE, .slot = slot->index, .job_id = j->id,
                                .per_mille = 1000, .job = j, .more = next != NULL};
                if (zmq_send(slot->out, &ev, sizeof ev, 0) < 0)
                    qr_log(QR_LOG_ERROR, "executor event lost", "job=%llu err=\"%s\"",
                           (unsigned long long)j->id, zmq_strerror(errno));
            }
            continue;
        }
        s_compute(slot, job, true);
        s_post(slot, QR_EXEC_DONE, job->id, 1000, job);
    }
    zmq_close(slot->in);
    zmq_close(slot->out);
    return NULL;
}

/* ---- pool (main thread) ---------------------------------------------------- */

/* Unlinks queued job j (prev its predecessor or NULL). */
static void s_unqueue(qr_executor_t *self, qr_exec_job_t *prev, qr_exec_job_t *j)
{
    if (prev)
        prev->next = j->next;
    else
        self->head = j->next;
    if (self->tail == j)
        self->tail = prev;
    self->queued--;
    j->next = NULL;
}

/* Marks idle slot busy with job alone (invariant 3: its cancel flag clear). */
static void s_claim(s_slot_t *slot, qr_exec_job_t *job)
{
    atomic_store(&slot->cancel, false);
    slot->cancel_reason = 0;
    slot->ncancelled = 0;
    slot->busy = true;
    slot->job_id = job->id;
    slot->nbatch = 1;
    slot->batch_ids[0] = job->id;
    job->batch = NULL;
}

/* OpenBLAS back to its own thread count before a job goes to the one slot's
 * thread (invariant 5). */
static void s_blas_threaded(qr_executor_t *self)
{
    if (self->blas_threads > 1)
        openblas_set_num_threads(self->blas_threads);
    self->blas_threads = 0;
}

/* OpenBLAS on one thread for an inline job (invariant 5); a pool of several
 * slots set that at start. */
static void s_blas_inline(qr_executor_t *self)
{
    if (self->nslots > 1 || self->blas_threads)
        return;
    self->blas_threads = openblas_get_num_threads();
    if (self->blas_threads > 1)
        openblas_set_num_threads(1);
    else
        self->blas_threads = 1; /* nothing to restore, nothing to set again */
}

/* Whether job runs inline on slot (invariant 6). */
static bool s_inline(const qr_executor_t *self, const s_slot_t *slot, const qr_exec_job_t *job)
{
    return job->kind == S_GEMM && !slot->gpu && !slot->delay_ms &&
           (uint64_t)job->m * job->n * job->k <= self->inline_madds;
}

/* Runs job on the calling (main) thread for idle slot and parks its DONE in
 * the ready ring. */
static void s_run_inline(qr_executor_t *self, s_slot_t *slot, qr_exec_job_t *job)
{
    s_claim(slot, job);
    s_blas_inline(self);
    s_compute(slot, job, false);
    self->ready[(self->ready_head + self->nready) % self->nslots] =
        (s_event_t){.type = QR_EXEC_DONE,
                    .slot = slot->index,
                    .job_id = job->id,
                    .per_mille = 1000,
                    .job = job};
    self->nready++;
}

static int s_dispatch(qr_executor_t *self, s_slot_t *slot, qr_exec_job_t *job)
{
    s_claim(slot, job);
    if (job->kind == S_INFER) {
        /* dynamic batching: queued jobs on the same model ride along, up to
         * batch_rows rows */
        uint32_t rows = job->rows;
        qr_exec_job_t *last = job;
        for (qr_exec_job_t *prev = NULL, *j = self->head, *next; j; j = next) {
            next = j->next;
            if (slot->nbatch >= S_BATCH_JOBS || rows >= self->batch_rows)
                break;
            if (j->kind != S_INFER || j->model != job->model ||
                rows + j->rows > self->batch_rows) {
                prev = j;
                continue;
            }
            s_unqueue(self, prev, j);
            rows += j->rows;
            last->batch = j;
            last = j;
            slot->batch_ids[slot->nbatch++] = j->id;
        }
        self->passes++;
        self->pass_jobs += (uint64_t)slot->nbatch;
    }
    s_blas_threaded(self);
    if (zmq_send(slot->push, &job, sizeof job, 0) != (int)sizeof job) {
        /* nothing left: put the riders back at the front */
        for (qr_exec_job_t *j = job->batch, *next; j; j = next) {
            next = j->batch;
            j->batch = NULL;
            j->next = self->head;
            self->head = j;
            if (!self->tail)
                self->tail = j;
            self->queued++;
        }
        job->batch = NULL;
        slot->busy = false;
        slot->nbatch = 0;
        return -1;
    }
    return 0;
}

/* Rows of queued ai.infer jobs on model m. */
static uint32_t s_rows_queued(const qr_executor_t *self, const qr_model_t *m)
{
    uint32_t rows = 0;
    for (const qr_exec_job_t *j = self->head; j; j = j->next)
        if (j->kind == S_INFER && j->model == m)
            rows += j->rows;
    return rows;
}

/* True when the queue's head may start now: an ai.infer job waits up to
 * batch_delay_ms for others on its model unless its batch is full. */
static bool s_head_ready(const qr_executor_t *self, int64_t now)
{
    const qr_exec_job_t *h = self->head;
    return h && (h->kind != S_INFER || self->batch_delay_ms <= 0 ||
                 now - h->queued_ms >= self->batch_delay_ms ||
                 s_rows_queued(self, h->model) >= self->batch_rows);
}

/* Starts queued jobs on idle slots while the head may start. */
static void s_kick(qr_executor_t *self)
{
    int64_t now = qr_clock_ms();
    for (int i = 0; i < self->nslots && s_head_ready(self, now); i++) {
        if (self->slots[i].busy)
            continue;
        qr_exec_job_t *next = self->head;
        s_unqueue(self, NULL, next);
        if (self->inline_madds && s_inline(self, &self->slots[i], next)) {
            s_run_inline(self, &self->slots[i], next);
            continue;
        }
        if (s_dispatch(self, &self->slots[i], next) < 0) {
            next->next = self->head;
            self->head = next;
            if (!self->tail)
                self->tail = next;
            self->queued++;
            qr_log(QR_LOG_ERROR, "executor dispatch failed", "job=%llu err=\"%s\"",
                   (unsigned long long)next->id, zmq_strerror(errno));
            return;
        }
    }
}

void qr_executor_set_gpu(qr_executor_t *self, qr_gpu_t *gpu)
{
    /* before any job: the threads read it without a lock (the job hand-over
     * through the inproc socket orders the write before their reads) */
    for (int i = 0; i < self->nslots; i++)
        self->slots[i].gpu = gpu;
}

void qr_executor_batch_stats(const qr_executor_t *self, uint64_t *passes, uint64_t *jobs)
{
    *passes = self->passes;
    *jobs = self->pass_jobs;
}

void qr_executor_set_batching(qr_executor_t *self, uint32_t rows, int64_t delay_ms)
{
    self->batch_rows = rows ? rows : 1;
    self->batch_delay_ms = delay_ms > 0 ? delay_ms : 0;
}

void qr_executor_set_inline(qr_executor_t *self, uint64_t madds)
{
    self->inline_madds = madds;
}

int64_t qr_executor_wait_ms(const qr_executor_t *self, int64_t now)
{
    if (self->nready)
        return 0; /* an inline job's DONE: read it before sleeping */
    if (!self->head || self->head->kind != S_INFER || self->batch_delay_ms <= 0)
        return -1;
    for (int i = 0; i < self->nslots; i++)
        if (!self->slots[i].busy) {
            int64_t t = self->head->queued_ms + self->batch_delay_ms - now;
            return t > 0 ? t : 0;
        }
    return -1; /* every slot busy: a DONE comes first */
}

void qr_executor_tick(qr_executor_t *self)
{
    s_kick(self);
}

qr_executor_t *qr_executor_new(void *ctx, int slots, int64_t delay_ms)
{
    if (!ctx || slots < 1)
        return NULL;
    qr_executor_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ctx = ctx;
    self->slots = calloc((size_t)slots, sizeof *self->slots);
    if (!self->slots)
        goto fail;
    self->nslots = slots;
    self->batch_rows = 256;
    self->inline_madds = QR_EXEC_INLINE_MADDS;
    self->ready = calloc((size_t)slots, sizeof *self->ready);
    if (!self->ready)
        goto fail;
    /* Endpoint names must be unique per context, and a closed socket's name
     * is released only later by ZeroMQ's reaper, so a new pool at the address
     * of a just-destroyed one cannot reuse its names: draw random ones. */
    uint64_t tag = 0;
    if (qr_random_bytes(&tag, sizeof tag) < 0)
        tag = (uint64_t)(uintptr_t)self ^ (uint64_t)qr_clock_us();
    char ep[96];
    snprintf(ep, sizeof ep, "inproc://qr-exec-%016llx-events", (unsigned long long)tag);
    self->events = zmq_socket(ctx, ZMQ_PULL);
    if (!self->events || zmq_bind(self->events, ep) < 0)
        goto fail;
    int zero = 0;
    zmq_setsockopt(self->events, ZMQ_LINGER, &zero, sizeof zero);
    if (slots > 1)
        openblas_set_num_threads(1);
    for (int i = 0; i < slots; i++) {
        s_slot_t *s = &self->slots[i];
        atomic_init(&s->cancel, false);
        s->index = i;
#ifdef QR_TEST_FAULTS
        s->delay_ms = delay_ms > 0 ? delay_ms : 0;
#endif
        char jep[96];
        snprintf(jep, sizeof jep, "inproc://qr-exec-%016llx-%d", (unsigned long long)tag, i);
        /* The thread's sockets are made and connected here and handed over by
         * pthread_create (a full barrier, as ZeroMQ requires for migration),
         * so the first job can never meet an unconnected pipe. */
        s->push = zmq_socket(ctx, ZMQ_PUSH);
        s->in = zmq_socket(ctx, ZMQ_PULL);
        s->out = zmq_socket(ctx, ZMQ_PUSH);
        if (!s->push || !s->in || !s->out)
            goto fail;
        zmq_setsockopt(s->push, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(s->in, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(s->out, ZMQ_LINGER, &zero, sizeof zero);
        if (zmq_bind(s->push, jep) < 0 || zmq_connect(s->in, jep) < 0 ||
            zmq_connect(s->out, ep) < 0)
            goto fail;
        if (pthread_create(&s->thread, NULL, s_thread, s) != 0)
            goto fail;
        s->started = true;
    }
    return self;
fail:
    qr_log(QR_LOG_ERROR, "executor pool failed to start", "err=\"%s\"", zmq_strerror(errno));
    qr_executor_destroy(&self);
    return NULL;
}

void qr_executor_destroy(qr_executor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_executor_t *self = *self_p;
    for (int i = 0; i < self->nslots; i++)
        atomic_store(&self->slots[i].cancel, true);
    for (int i = 0; i < self->nslots; i++) {
        s_slot_t *s = &self->slots[i];
        if (s->started) {
            qr_exec_job_t *stop = NULL;
            zmq_send(s->push, &stop, sizeof stop, 0);
            pthread_join(s->thread, NULL);
        } else {
            /* never handed to a thread: the sockets are still ours */
            if (s->in)
                zmq_close(s->in);
            if (s->out)
                zmq_close(s->out);
        }
        if (s->push)
            zmq_close(s->push);
    }
    /* Jobs finished inline or by the threads that nobody read. */
    for (; self->nready; self->nready--, self->ready_head = (self->ready_head + 1) % self->nslots)
        qr_exec_job_destroy(&self->ready[self->ready_head].job);
    s_blas_threaded(self); /* the thread count is the process's */
    if (self->events) {
        s_event_t ev;
        while (zmq_recv(self->events, &ev, sizeof ev, ZMQ_DONTWAIT) == (int)sizeof ev)
            if (ev.type == QR_EXEC_DONE)
                qr_exec_job_destroy(&ev.job);
        zmq_close(self->events);
    }
    while (self->head) {
        qr_exec_job_t *j = self->head;
        self->head = j->next;
        qr_exec_job_destroy(&j);
    }
    free(self->ready);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

int qr_executor_submit(qr_executor_t *self, qr_exec_job_t **job_p)
{
    qr_exec_job_t *job = *job_p;
    *job_p = NULL;
    job->next = NULL;
    job->queued_ms = qr_clock_ms();
    if (self->tail)
        self->tail->next = job;
    else
        self->head = job;
    self->tail = job;
    self->queued++;
    s_kick(self);
    return QR_OK;
}

void *qr_executor_socket(qr_executor_t *self)
{
    return self->events;
}

bool qr_executor_ready(const qr_executor_t *self)
{
    return self->nready > 0;
}

int qr_executor_recv(qr_executor_t *self, qr_exec_event_t *ev, int flags)
{
    s_event_t w;
    memset(ev, 0, sizeof *ev);
    /* The threads' events first: every DONE read here may start the next
     * inline job, so the ring first would starve a thread's DONE (and keep
     * its slot busy) for as long as small jobs keep coming. */
    int rc;
    do
        rc = zmq_recv(self->events, &w, sizeof w, self->nready ? ZMQ_DONTWAIT : flags);
    while (rc < 0 && errno == EINTR);
    if (rc < 0 && errno == EAGAIN && self->nready) {
        w = self->ready[self->ready_head];
        self->ready_head = (self->ready_head + 1) % self->nslots;
        self->nready--;
    } else if (rc != (int)sizeof w)
        return QR_EIO;
    ev->type = w.type;
    ev->job_id = w.job_id;
    ev->per_mille = w.per_mille;
    if (w.type != QR_EXEC_DONE)
        return QR_OK;
    s_slot_t *slot = &self->slots[w.slot];
    ev->job = w.job;
    ev->cancel_reason = slot->cancel_reason;
    for (int i = 0; i < slot->ncancelled; i++)
        if (slot->cancelled[i] == w.job_id)
            ev->cancel_reason = slot->cancelled_reason;
    /* forget the id: holds() and jobs() must not list a job that left */
    for (int i = 0; i < slot->nbatch; i++)
        if (slot->batch_ids[i] == w.job_id) {
            slot->batch_ids[i] = slot->batch_ids[--slot->nbatch];
            break;
        }
    if (w.more && slot->nbatch > 0)
        return QR_OK; /* the slot is busy until its batch's last job */
    slot->busy = false;
    slot->nbatch = 0;
    slot->cancel_reason = 0;
    slot->ncancelled = 0;
    s_kick(self);
    return QR_OK;
}

int qr_executor_cancel(qr_executor_t *self, uint64_t job_id, int reason)
{
    for (int i = 0; i < self->nslots; i++) {
        s_slot_t *s = &self->slots[i];
        if (!s->busy)
            continue;
        for (int b = 0; b < s->nbatch; b++) {
            if (s->batch_ids[b] != job_id)
                continue;
            if (s->nbatch == 1) {
                if (!s->cancel_reason)
                    s->cancel_reason = reason;
                atomic_store(&s->cancel, true);
            } else if (s->ncancelled < S_BATCH_JOBS) {
                /* one rider of a batch: the pass goes on for the others, its
                 * DONE carries the reason */
                s->cancelled[s->ncancelled++] = job_id;
                s->cancelled_reason = reason;
            }
            return QR_EXEC_STOPPING;
        }
    }
    qr_exec_job_t *prev = NULL;
    for (qr_exec_job_t *j = self->head; j; prev = j, j = j->next) {
        if (j->id != job_id)
            continue;
        s_unqueue(self, prev, j);
        qr_exec_job_destroy(&j);
        return QR_EXEC_DROPPED;
    }
    return QR_EXEC_NOT_HELD;
}

bool qr_executor_holds(const qr_executor_t *self, uint64_t job_id)
{
    for (int i = 0; i < self->nslots; i++)
        for (int b = 0; self->slots[i].busy && b < self->slots[i].nbatch; b++)
            if (self->slots[i].batch_ids[b] == job_id)
                return true;
    for (const qr_exec_job_t *j = self->head; j; j = j->next)
        if (j->id == job_id)
            return true;
    return false;
}

size_t qr_executor_jobs(const qr_executor_t *self, uint64_t *ids, size_t max, bool queued_only)
{
    size_t n = 0;
    if (!queued_only)
        for (int i = 0; i < self->nslots; i++)
            for (int b = 0; self->slots[i].busy && b < self->slots[i].nbatch; b++) {
                if (n < max)
                    ids[n] = self->slots[i].batch_ids[b];
                n++;
            }
    for (const qr_exec_job_t *j = self->head; j; j = j->next) {
        if (n < max)
            ids[n] = j->id;
        n++;
    }
    return n;
}

size_t qr_executor_running(const qr_executor_t *self)
{
    size_t n = 0;
    for (int i = 0; i < self->nslots; i++)
        n += self->slots[i].busy ? (size_t)self->slots[i].nbatch : 0;
    return n;
}
