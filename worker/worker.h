/* The worker's main loop: one DEALER to the broker, one executor pool.
 *
 * qr_worker_run owns the broker socket for its whole life and is the only
 * thread that touches it.  It registers with READY, keeps the link alive with
 * Majordomo-style heartbeats, reconnects with exponential backoff when the
 * broker falls silent, validates each ASSIGN and hands good jobs to the
 * executor pool, and turns the pool's events into PROGRESS, RESULT and FAIL.
 * A stop request (a byte on the stop pipe: written by quarry-worker's signal
 * handler, or by a test) drains the worker: no new work, running
 * jobs get until drain_ms to finish, then DISCONNECT and return.  See
 * docs/worker.md for the protocol as the broker sees it. */
#ifndef QR_WORKER_H
#define QR_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Settings; qr_worker_cfg_defaults fills every field. */
typedef struct {
    const char *broker;          /* endpoint of the broker's worker ROUTER */
    const char *name;            /* worker name; NULL or "" for hostname-pid */
    const char *operator_name;   /* operator account that is paid */
    uint64_t ask_price;          /* base units per work unit */
    int slots;                   /* jobs at once; 0 for one per online CPU core */
    int64_t drain_ms;            /* how long running jobs may finish after a stop */
    bool gpu;                    /* look for GPUs to report */
    int64_t heartbeat_ms;        /* until the broker's ReadyAck says otherwise */
    int liveness;                /* heartbeats missed before reconnecting, same */
    int64_t backoff_min_ms;      /* first reconnect delay after silence */
    int64_t backoff_max_ms;      /* cap of the doubling delay */
    int64_t input_cache_mb;      /* inputs kept by id so the broker can omit them */
    const char *metrics_addr;    /* HOST:PORT for /metrics and /healthz; NULL or "" = off */
    const char *server_key;      /* broker public key, Z85 text or a file holding it;
                                    NULL or "" = plain text (broker in --insecure mode) */
    const char *key_file;        /* own secret key file (PREFIX.key, mode 0600); NULL or ""
                                    with server_key set = a throwaway key pair (admitted
                                    only by a broker in --open-registration mode) */
    const char *cache_dir;       /* artifact (model) cache folder */
    int64_t cache_mb;            /* its size cap */
    int64_t batch_rows;          /* ai.infer rows merged into one forward pass, at most */
    int64_t batch_delay_ms;      /* a lone ai.infer job waits this long for company */
    int64_t fault_corrupt_every; /* QR_TEST_FAULTS builds only: corrupt every Nth C */
    int64_t fault_tamper_layer;  /* QR_TEST_FAULTS builds only: alter this ai.infer layer
                                    of every result (-1 = never) */
    int64_t fault_delay_ms;      /* QR_TEST_FAULTS builds only: sleep in every job */
    bool fault_forget_inputs;    /* QR_TEST_FAULTS builds only: keep no input it reports */
} qr_worker_cfg_t;

typedef struct qr_worker_t qr_worker_t;

/* Defaults: tcp://127.0.0.1:5556, name from the host, operator "operator",
 * ask price 10, slots 0 (one per core), drain 30 s, GPUs on, heartbeat
 * 2500 ms, liveness 3, backoff 250 ms to 10 s, input cache 256 MiB, artifact
 * cache "quarry-cache" capped at 8 GiB, batches of up to 256 rows with no
 * added delay, no faults. */
void qr_worker_cfg_defaults(qr_worker_cfg_t *cfg);

/* Checks cfg's CurveZMQ settings (server_key, key_file) without keeping
 * them: returns 0, or -1 with the reason in err (never a secret key). */
int qr_worker_check_keys(const qr_worker_cfg_t *cfg, char *err, size_t errlen);

/* Creates a worker on the ZeroMQ context ctx, which must outlive it; copies
 * what it needs from cfg, detects devices and starts the executor pool.
 * Returns the worker, owned by the caller, or NULL on failure (logged). */
qr_worker_t *qr_worker_new(void *ctx, const qr_worker_cfg_t *cfg);

/* Stops the pool (cancelling any job still running) and frees the worker.
 * Accepts NULL; nulls *self_p. */
void qr_worker_destroy(qr_worker_t **self_p);

/* Runs until a stop request on stop_fd (the read end of a pipe, or -1 for
 * none) has been fully drained.  Each byte read is one request: the first
 * starts draining, the second cuts the drain short; end of file counts as one.  Returns QR_OK after a clean
 * shutdown, QR_EINVAL when the broker endpoint is unusable.  Call it once,
 * from the thread that will own the worker. */
int qr_worker_run(qr_worker_t *self, int stop_fd);

/* Id the broker gave in its last ReadyAck, 0 before any.  Owner thread only. */
uint64_t qr_worker_id(const qr_worker_t *self);

#endif
