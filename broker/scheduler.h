/* Matching queued jobs to capable workers.
 *
 * Jobs wait in one priority queue per class (kind x needs-GPU), ordered by
 * priority, then by arrival.  Workers with spare capacity sit in one heap per
 * class they can serve, ordered by ask price, then reputation, then load.  A
 * decision looks at the head job of each class (a constant number of classes)
 * and the head worker of that class's heap: O(log n) to take both out and put
 * the worker back with its new load.
 *
 * Invariants (checked by s_check in debug builds):
 *  1. a job is in at most one place: its class queue (heap_idx >= 0), the
 *     parked list (parked), or neither (assigned or finished);
 *  2. a worker is in class heap c iff it serves c and has room: busy <
 *     capacity, and either a free slot (busy < slots) or prefetched work
 *     under max_units.  Prefetch hides the round trip for small jobs without
 *     letting one worker hoard large ones;
 *  3. heaps satisfy their order.
 * Affinity: a job may name a key (its model) and workers announce the keys
 * they hold (qr_sched_hold); for such a job the scheduler first looks at the
 * holders of its key that have room and fit, O(holders), and takes the best
 * of them before any other worker, because fetching a model costs far more
 * than any difference in ask.  When every holder is full the job waits for
 * one, up to the affinity wait after it was queued (delay scheduling, as in
 * Zaharia et al., EuroSys 2010); after that, or when nobody holds its key,
 * it goes to the ordinary head worker, which fetches the model and becomes
 * a holder.  While a job waits, its class waits behind it (the head job of a
 * class decides), for at most the affinity wait.
 *
 * A job that no registered worker can ever take (price cap below every ask,
 * more memory than any device) is parked instead of blocking its class, and
 * goes back to its queue when a worker registers (qr_sched_unpark).  The
 * feasibility fallback scans workers (O(n)); it runs only when the best
 * worker of a class cannot take the head job.
 *
 * Not thread-safe; the broker's loop owns it. */
#ifndef QR_SCHEDULER_H
#define QR_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QR_SCHED_KINDS 8
#define QR_SCHED_CLASSES (QR_SCHED_KINDS * 2)
#define QR_SCHED_AVOID 4 /* workers a job remembers not to go back to */

typedef struct {
    uint64_t id;         /* job id */
    int32_t priority;    /* higher first */
    uint64_t seq;        /* arrival order within a priority */
    uint64_t units;      /* work units the job will be billed */
    uint64_t max_price;  /* client's cap */
    uint64_t min_mem_mb; /* device memory needed */
    int kind;            /* qr_sched_kind() index */
    bool need_gpu;       /* needs a GPU */
    int32_t heap_idx;    /* position in its class queue; -1 when not queued */
    bool parked;         /* waiting for a worker that can take it */
    uint64_t avoid[QR_SCHED_AVOID]; /* workers whose result for it was wrong */
    uint32_t navoid;     /* entries used in avoid (a ring once full) */
    uint64_t affinity;   /* key of what it needs cached (its model); 0 = none */
    int64_t affinity_until; /* ms (the scheduler's clock): may wait for a holder until then */
    void *owner;         /* the broker's job record */
} qr_sjob_t;

typedef struct {
    uint64_t id;                          /* worker id */
    uint64_t ask;                         /* base units per work unit */
    int32_t reputation;                   /* higher is better */
    uint32_t slots;                       /* jobs it runs at once */
    uint32_t capacity;                    /* most jobs it may hold (slots + prefetch) */
    uint32_t busy;                        /* jobs it holds */
    uint64_t units;                       /* work units of the jobs it holds */
    uint64_t max_units;                   /* beyond its slots, hold at most this much work */
    uint32_t kinds;                       /* bit i: serves kind i */
    bool has_gpu;                         /* at least one GPU */
    uint64_t gpu_mem_mb;                  /* largest GPU's memory */
    uint64_t mem_mb;                      /* host memory */
    int32_t heap_idx[QR_SCHED_CLASSES];   /* position per class heap; -1 when absent */
    bool registered;                      /* added and not removed */
    void *owner;                          /* the broker's worker record */
} qr_sworker_t;

typedef struct qr_sched qr_sched_t;

/* Index of a job kind the marketplace runs ("ai.gemm"), or -1 if unknown. */
int qr_sched_kind(const char *name);
/* Name of kind index i, or NULL. */
const char *qr_sched_kind_name(int i);

/* New empty scheduler (caller owns), NULL on OOM. */
qr_sched_t *qr_sched_new(void);
/* NULL-safe, nulls *self_p.  Jobs and workers are borrowed, not freed. */
void qr_sched_destroy(qr_sched_t **self_p);

/* Registers a worker (fields filled, busy counted).  Returns 0 or -1 (OOM). */
int qr_sched_add_worker(qr_sched_t *self, qr_sworker_t *w);
/* Unregisters a worker; its jobs are the caller's to re-queue. */
void qr_sched_remove_worker(qr_sched_t *self, qr_sworker_t *w);
/* Re-positions a worker after its busy, capacity, ask or reputation changed. */
void qr_sched_update_worker(qr_sched_t *self, qr_sworker_t *w);

/* Queues a job.  Returns 0 or -1 (OOM). */
int qr_sched_enqueue(qr_sched_t *self, qr_sjob_t *j);
/* Takes a job out of its queue or the parked list (cancel, expiry); no-op if
 * it is in neither. */
void qr_sched_dequeue(qr_sched_t *self, qr_sjob_t *j);
/* Remembers that worker_id must not get job j again (its result was wrong). */
void qr_sched_avoid(qr_sjob_t *j, uint64_t worker_id);

/* Worker w holds / no longer holds what key names (a model).  hold returns 0
 * or -1 (OOM: the worker is just not preferred).  Unregistering a worker does
 * not drop its holdings; the caller unholds them (qr_sched_unhold_all). */
int qr_sched_hold(qr_sched_t *self, qr_sworker_t *w, uint64_t key);
void qr_sched_unhold(qr_sched_t *self, qr_sworker_t *w, uint64_t key);
void qr_sched_unhold_all(qr_sched_t *self, qr_sworker_t *w);
/* Turns affinity matching on (the default) or off (benchmarks). */
void qr_sched_set_affinity(qr_sched_t *self, bool on);
/* How long a job may wait for a busy holder of its key (ms, default 0:
 * never waits). */
void qr_sched_set_affinity_wait(qr_sched_t *self, int64_t ms);
/* The scheduler's clock (monotonic ms), set by the caller before enqueue and
 * next: it dates the waits. */
void qr_sched_set_now(qr_sched_t *self, int64_t now_ms);
/* Milliseconds until a job waiting for a holder may go elsewhere (after the
 * last qr_sched_next returned false), or -1 when none waits. */
int64_t qr_sched_wait_ms(const qr_sched_t *self);
/* Decisions that went to a holder of the job's key (an affinity hit). */
uint64_t qr_sched_affinity_hits(const qr_sched_t *self);

/* Moves every parked job back to its queue (after a worker registers). */
void qr_sched_unpark(qr_sched_t *self);

/* Makes one matching decision.  On a match returns true with the job taken
 * out of its queue and the worker's busy count and units raised (and
 * re-positioned; the caller lowers both when the job leaves the worker);
 * returns false when no queued job can be placed now. */
bool qr_sched_next(qr_sched_t *self, qr_sjob_t **job, qr_sworker_t **worker);

/* Jobs queued (not parked) of kind. */
size_t qr_sched_queued(const qr_sched_t *self, int kind);
/* Jobs parked. */
size_t qr_sched_parked(const qr_sched_t *self);

#endif
