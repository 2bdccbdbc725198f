/* Executor pool: the threads that compute a worker's jobs.
 *
 * The worker's main thread owns the broker socket and this pool; it hands
 * each job in with qr_executor_submit and reads progress and finished jobs
 * back with qr_executor_recv when qr_executor_socket polls readable or
 * qr_executor_ready says so.  Jobs travel as pointers over inproc ZeroMQ
 * sockets, so exactly one thread owns a job at a time: main -> executor
 * thread -> main.  Small ai.gemm jobs (QR_EXEC_INLINE_MADDS) skip the trip:
 * they run on the main thread inside the call that starts them, and their
 * DONE waits in the pool for qr_executor_recv.  The pool keeps the queue
 * itself and starts a job only on an idle slot, so a small job never waits
 * behind a large one while another slot sits idle, and a queued job can be
 * dropped without asking any thread.
 *
 * Every function is for the owning (main) thread only; none is thread-safe.
 * The one thing shared across threads is each slot's cancel flag, an atomic
 * that the running computation reads between row blocks. */
#ifndef QR_EXECUTOR_H
#define QR_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "groth16.h"

/* ---- jobs ---------------------------------------------------------------- */

/* One ai.gemm computation: C = A * B, fp32 row-major. */
typedef struct qr_exec_job_t qr_exec_job_t;
typedef struct qr_model qr_model_t;

/* Creates a job that computes the m x n product of A (m x k) and B (k x n),
 * given as ZeroMQ frames that the job takes over with zmq_msg_move (the
 * caller's a and b are left empty and must still be closed).  The frames must
 * hold exactly the sizes qr_gemm_sizes gives; the caller validated them.
 * Frames whose data is not float-aligned are copied once.  Returns the job,
 * owned by the caller, or NULL when out of memory (a and b untouched). */
qr_exec_job_t *qr_exec_job_new(uint64_t id, uint32_t m, uint32_t n, uint32_t k, zmq_msg_t *a,
                               zmq_msg_t *b);

/* Creates an ai.infer job: rows input rows for model (rows x input width
 * floats in frame in, taken over as for qr_exec_job_new; the caller
 * validated its size).  The model must stay alive until the job is
 * destroyed; jobs on the same model pointer may be merged into one forward
 * pass (qr_executor_set_batching).  Its result is the output (rows x output
 * width, qr_exec_job_take_result) and every earlier layer's rows
 * (qr_exec_job_take_layers), which the broker needs to check it.  NULL when
 * out of memory. */
qr_exec_job_t *qr_exec_job_new_infer(uint64_t id, const qr_model_t *model, uint32_t rows,
                                     zmq_msg_t *in);
/* Creates a zk.groth16 job: a proof of the witness in frame wtns (a .wtns
 * file, taken over) under pk, which must stay alive until the job is
 * destroyed.  Its result (qr_exec_job_take_result, bytes despite the float
 * type) is pi_a (64 bytes), pi_b (128), pi_c (64) big-endian, then the
 * public signals (32 bytes each).  NULL when out of memory. */
qr_exec_job_t *qr_exec_job_new_zk(uint64_t id, const qr_g16_pk_t *pk, zmq_msg_t *wtns);
bool qr_exec_job_is_zk(const qr_exec_job_t *self);

/* Layers 0..L-2 of an ai.infer job's rows, concatenated in layer order (NULL
 * for ai.gemm or before it finished); take_ hands them over (free()). */
float *qr_exec_job_layers(qr_exec_job_t *self, size_t *len);
float *qr_exec_job_take_layers(qr_exec_job_t *self, size_t *len);
bool qr_exec_job_is_infer(const qr_exec_job_t *self);
/* Why an ai.infer forward pass failed ("" otherwise). */
const char *qr_exec_job_error(const qr_exec_job_t *self);

/* Frees the job, its inputs and any result; accepts NULL; nulls *self_p. */
void qr_exec_job_destroy(qr_exec_job_t **self_p);

uint64_t qr_exec_job_id(const qr_exec_job_t *self);
void qr_exec_job_shape(const qr_exec_job_t *self, uint32_t *m, uint32_t *n, uint32_t *k);
/* QR_OK when C was computed, QR_ECANCELLED, QR_ENOMEM or QR_ECOMPUTE otherwise. */
int qr_exec_job_status(const qr_exec_job_t *self);
/* Microseconds spent computing the job (on its thread, or inline). */
uint64_t qr_exec_job_compute_us(const qr_exec_job_t *self);
/* The result C (m * n floats) of a finished job, NULL before or on failure.
 * The job keeps ownership; *len receives the byte size. */
float *qr_exec_job_result(qr_exec_job_t *self, size_t *len);
/* Same, but hands C over: the caller frees it with free(), the job forgets it. */
float *qr_exec_job_take_result(qr_exec_job_t *self, size_t *len);

/* ---- pool ---------------------------------------------------------------- */

typedef struct qr_executor_t qr_executor_t;

typedef enum {
    QR_EXEC_PROGRESS = 1, /* a running job's progress; the pool keeps the job */
    QR_EXEC_DONE = 2,     /* a job left the pool; the caller owns ev.job */
} qr_exec_event_type_t;

/* What qr_executor_recv reports. */
typedef struct {
    qr_exec_event_type_t type; /* PROGRESS or DONE */
    uint64_t job_id;           /* the job it is about */
    uint32_t per_mille;        /* PROGRESS: share of the work done, 0..1000 */
    int cancel_reason;         /* DONE: reason given to qr_executor_cancel, 0 if none */
    qr_exec_job_t *job;        /* DONE: the job, now owned by the caller */
} qr_exec_event_t;

/* Results of qr_executor_cancel. */
enum {
    QR_EXEC_NOT_HELD = 0, /* no such job in the pool */
    QR_EXEC_DROPPED = 1,  /* it was queued: destroyed, no event will follow */
    QR_EXEC_STOPPING = 2, /* it is running: a DONE event will follow */
};

/* Starts `slots` executor threads (>= 1) on the ZeroMQ context ctx, which must
 * outlive the pool.  delay_ms adds a sleep to every job and is honoured only
 * in QR_TEST_FAULTS builds (0 elsewhere).  When slots > 1 OpenBLAS is told to
 * use one thread per call, since the pool already keeps the cores busy; with
 * one slot, inline jobs alone run it on one thread.  OpenBLAS's thread count
 * is process-wide: a pool assumes that no other pool computes meanwhile.
 * Returns the pool, owned by the caller, or NULL on failure. */
qr_executor_t *qr_executor_new(void *ctx, int slots, int64_t delay_ms);

/* ai.gemm jobs of at most this many multiply-adds (m * n * k) run inline by
 * default: on the calling thread, inside the qr_executor_submit,
 * qr_executor_recv or qr_executor_tick that finds them a free slot.  Handing
 * a job to a slot's thread and its DONE back costs two inproc messages and
 * two thread wake-ups, several times the product itself for a tiny job;
 * 2^21 multiply-adds take well under a millisecond on one core, so an
 * inline job never holds the caller's loop up for long, and a cancel could
 * not stop it much sooner on a thread either (one row block). */
#define QR_EXEC_INLINE_MADDS (UINT64_C(1) << 21)

/* Sets the inline limit in multiply-adds (QR_EXEC_INLINE_MADDS until then);
 * 0 sends every job to a thread.  Jobs never run inline on a pool with a GPU
 * (qr_executor_set_gpu) or with a fault-injection delay, nor do ai.infer and
 * zk.groth16 jobs. */
void qr_executor_set_inline(qr_executor_t *self, uint64_t madds);

/* Dynamic batching of ai.infer jobs: a job starting on a thread takes along
 * the queued jobs on the same model up to rows rows in all (default 256), and
 * with delay_ms > 0 a lone ai.infer job at the head of the queue waits up to
 * delay_ms for others (even with a thread idle) unless its batch is full.
 * The pool then needs qr_executor_tick within qr_executor_wait_ms. */
void qr_executor_set_batching(qr_executor_t *self, uint32_t rows, int64_t delay_ms);
/* Runs ai.gemm, ai.infer and the MSMs and NTTs of zk.groth16 on gpu
 * (common/gpu.h; NULL = the CPU) from now on, falling back to the CPU for a
 * job the GPU fails (a warning in the log).  The caller keeps gpu
 * open until the pool is destroyed. */
typedef struct qr_gpu qr_gpu_t;
void qr_executor_set_gpu(qr_executor_t *self, qr_gpu_t *gpu);

/* ai.infer forward passes started and the jobs they carried (jobs / passes
 * is the mean batch). */
void qr_executor_batch_stats(const qr_executor_t *self, uint64_t *passes, uint64_t *jobs);
/* Milliseconds until a waiting batch must start or an inline job's DONE
 * waits for qr_executor_recv (0: now), or -1 when neither. */
int64_t qr_executor_wait_ms(const qr_executor_t *self, int64_t now);
/* Starts whatever may start now (the batch delay passed). */
void qr_executor_tick(qr_executor_t *self);

/* Cancels running jobs, stops and joins the threads, frees every job still
 * held (queued, running or finished but unread).  Accepts NULL; nulls *self_p. */
void qr_executor_destroy(qr_executor_t **self_p);

/* Takes over *job_p (set to NULL) and runs it as soon as a slot is idle:
 * at once, before returning, when it runs inline.  Returns QR_OK. */
int qr_executor_submit(qr_executor_t *self, qr_exec_job_t **job_p);

/* Socket to poll for ZMQ_POLLIN: readable when the threads sent events.
 * Inline jobs' DONE events do not make it readable: see qr_executor_ready. */
void *qr_executor_socket(qr_executor_t *self);

/* True when qr_executor_recv has an event without the socket (an inline
 * job's DONE): the caller must not block in a poll then, but read. */
bool qr_executor_ready(const qr_executor_t *self);

/* Reads one event, the threads' first, then inline jobs' DONE; flags 0
 * waits, ZMQ_DONTWAIT does not (neither waits while qr_executor_ready).  A
 * DONE event frees the job's slot, which starts the next queued job (inline
 * ones before this returns).  Returns QR_OK, or QR_EIO with errno EAGAIN
 * when nothing is waiting under ZMQ_DONTWAIT. */
int qr_executor_recv(qr_executor_t *self, qr_exec_event_t *ev, int flags);

/* Cancels job_id with reason (non-zero, chosen by the caller and echoed in the
 * DONE event).  Returns QR_EXEC_NOT_HELD, QR_EXEC_DROPPED or QR_EXEC_STOPPING. */
int qr_executor_cancel(qr_executor_t *self, uint64_t job_id, int reason);

/* Whether job_id is queued or running. */
bool qr_executor_holds(const qr_executor_t *self, uint64_t job_id);

/* Stores up to max ids of held jobs (queued ones only when queued_only) in ids
 * (may be NULL when max is 0); returns how many there are in all. */
size_t qr_executor_jobs(const qr_executor_t *self, uint64_t *ids, size_t max, bool queued_only);

/* Number of running jobs. */
size_t qr_executor_running(const qr_executor_t *self);

#endif
