/* quarry-broker's event loop: client and worker ROUTERs, matching,
 * verification, settlement and the group-committed ledger.
 *
 * Design notes
 * ------------
 * One thread runs one loop (as in the zguide's Majordomo broker).  Each turn:
 *   1. poll both ROUTER sockets (timeout: next heartbeat or deadline);
 *   2. read up to batch-max messages, apply them to in-memory state and queue
 *      the rows they imply in the database layer (qr_db_add_*) and the replies
 *      they imply in an outbox;
 *   3. run timers (heartbeats, lost workers, deadlines) and the scheduler;
 *   4. commit every queued row in one transaction (group commit);
 *   5. only then send the outbox: nobody hears of a change before it is
 *      durable.
 * If a commit fails the outbox is dropped (clients get QR_EDB for their
 * requests), memory is thrown away, and the broker answers QR_EDB until the
 * database is back, when it reloads everything from it exactly as at start.
 *
 * Invariants:
 *  1. a job in state assigned or running has worker != NULL and is in that
 *     worker's job list; in any other state it is in no worker's list;
 *  2. a queued job is in the scheduler (queue or parked), no other job is;
 *  3. an account's available + reserved in memory equals the sum of its
 *     ledger entries once the turn's commit succeeds;
 *  4. a job is settled at most once: the settled transition, its ledger
 *     transaction and its settlements row go into the same commit, and
 *     settlements.job_id is unique.
 *
 * Job states and the function behind each transition:
 *   queued   <- s_on_submit, s_requeue (lost worker, FAIL, bad result), load
 *   assigned <- s_dispatch
 *   running  <- s_on_progress (or implied by RESULT)
 *   done/verified/settled <- s_on_result (in one commit)
 *   failed   <- s_requeue past max attempts
 *   expired  <- s_timers (deadline)
 *   cancelled<- s_on_cancel */
#ifndef QR_BROKER_H
#define QR_BROKER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *client_endpoint; /* ROUTER bind for clients, e.g. tcp port 5555 */
    const char *worker_endpoint; /* ROUTER bind for workers, e.g. tcp port 5556 */
    const char *db;              /* libpq conninfo */
    const char *metrics_addr;    /* HOST:PORT for /metrics and /healthz; NULL or "" = off */
    bool insecure;               /* plain text, no authentication (development only) */
    const char *curve_key;       /* PREFIX of the server key pair (PREFIX.key, PREFIX.pub) */
    const char *admin_keys;      /* comma-separated admin public keys (Z85 or files) */
    bool open_registration;      /* admit any key and bind it on first use (test networks) */
    volatile sig_atomic_t *stop; /* set by a signal: also ends a standby's wait */
    int64_t heartbeat_ms;        /* heartbeat interval sent to workers */
    int64_t liveness;            /* missed heartbeats before a worker is lost */
    int64_t max_attempts;        /* default attempts per job */
    int64_t max_input_bytes;     /* largest input a job may carry */
    int64_t fee_bps;             /* protocol fee, basis points of the payment */
    int64_t prefetch;            /* jobs sent to a worker beyond its slots, at most */
    int64_t prefetch_units;      /* ... and only while their work is under this */
    int64_t batch_max;           /* messages applied per commit */
    int64_t verify_rounds;       /* Freivalds vectors per result */
    int64_t blob_cache_mb;       /* finished jobs' inputs and results kept in memory */
    int64_t default_unit_cap;    /* cap per work unit for a job that names no max_price */
    int64_t min_reputation;      /* a worker below it gets no work */
    int64_t client_rate;         /* submits a second per account (burst as many); 0 = no limit */
    int64_t client_quota;        /* jobs queued or running per account; 0 = no limit */
    int64_t keep_final;          /* finished jobs kept in memory; older ones are read from PostgreSQL */
    const char *store_dir;       /* content-addressed artifact store (models) */
    int64_t max_artifact_mb;     /* largest artifact accepted by UPLOAD */
    int64_t model_cache_mb;      /* artifacts of ai.infer models kept loaded for checks */
    bool no_affinity;            /* ignore which worker holds a model (benchmarks) */
    int64_t affinity_wait_ms;    /* how long an ai.infer job waits for a busy holder */
} qr_broker_cfg_t;

typedef struct qr_broker qr_broker_t;

/* Connects to the database, applies migrations, becomes the active broker
 * (waiting as a standby while another holds the leader lock, answering
 * /healthz with 503 meanwhile), loads state and binds both endpoints.
 * Returns the broker (caller owns) or NULL with a message in err. */
qr_broker_t *qr_broker_new(const qr_broker_cfg_t *cfg, char *err, size_t errlen);
/* Closes sockets and the database; NULL-safe, nulls *self_p. */
void qr_broker_destroy(qr_broker_t **self_p);
/* Runs the loop until *stop becomes non-zero.  Returns 0, or 1 when another
 * broker became active (this one must exit; it may start again as a standby). */
int qr_broker_run(qr_broker_t *self, volatile sig_atomic_t *stop);

#endif
