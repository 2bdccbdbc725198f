/* The broker's PostgreSQL layer: migrations, state reload, group commit.
 *
 * The broker is the only writer.  It allocates ids itself (jobs, accounts,
 * workers, ledger transactions) from the maxima loaded at start, so a whole
 * poll-loop's worth of state changes is written by one qr_db_commit: one
 * transaction, inserts by COPY (binary), updates by one statement over arrays.
 * Nothing the broker tells a client or worker goes out before the commit that
 * records it returns QR_OK.
 *
 * Only this module includes libpq.  Not thread-safe: one broker thread owns it.
 *
 * Tables (schemas/sql/): schema_migrations, accounts, workers, blobs (inputs
 * and results, deduplicated by the broker), jobs (with their result blob), job_events,
 * ledger_entries, settlements; views
 * for admins (v_queue_depth, v_worker_utilisation, v_throughput,
 * v_latency, v_operator_earnings, v_balances, v_ledger_check). */
#ifndef QR_DB_H
#define QR_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct qr_db qr_db_t;

/* Account kinds (accounts.kind). */
typedef enum { QR_ACCT_CLIENT = 0, QR_ACCT_OPERATOR = 1, QR_ACCT_SYSTEM = 2 } qr_acct_kind_t;

/* Ledger buckets: every account has an available and a reserved balance. */
typedef enum { QR_BUCKET_AVAILABLE = 0, QR_BUCKET_RESERVED = 1 } qr_bucket_t;

/* One account with its balances (sums of its ledger entries per bucket). */
typedef struct {
    uint64_t id;        /* accounts.id */
    char name[128];     /* unique name */
    int kind;           /* qr_acct_kind_t */
    int64_t available;  /* base units */
    int64_t reserved;   /* base units */
} qr_db_account_t;

/* One worker row. */
typedef struct {
    uint64_t id;          /* workers.id */
    char name[128];       /* unique worker name */
    uint64_t operator_id; /* account paid for its work */
    int32_t reputation;   /* starts at 100; wrong results lower it */
    uint64_t jobs_done;   /* settled jobs */
    int64_t earned;       /* what its operator kept from its settlements */
} qr_db_worker_t;

/* One job row.  Strings and input are owned by whoever filled the struct:
 * qr_db_load_jobs and qr_db_get_job hand the callback/caller malloc'd input
 * that the receiver frees (or keeps). */
typedef struct {
    uint64_t id;
    uint64_t client_id;
    char kind[32];
    int state;               /* qr_job_state_t */
    uint32_t m, n, k;        /* ai.gemm shape */
    uint64_t max_price;
    bool need_gpu;
    uint64_t min_mem_mb;
    int32_t priority;
    uint32_t max_attempts;
    uint32_t attempts;
    int64_t deadline_ms;     /* wall clock ms since epoch; 0 = none */
    uint64_t worker_id;      /* last worker assigned; 0 = none */
    uint64_t units, price, fee;
    int64_t created_ms, updated_ms; /* wall clock */
    char detail[256];        /* reason for rejected/failed/expired */
    char idem_key[128];      /* client's idempotency key, "" = none */
    uint64_t input_blob;     /* blobs.id of the input */
    uint64_t result_blob;    /* blobs.id of the verified result; 0 = none (not loaded) */
    char model[132];         /* ai.infer: "WEIGHTS:GRAPH" SHA-256s; "" = none */
    uint8_t *input;          /* A then B for ai.gemm; NULL when not loaded */
    size_t input_len;
} qr_db_job_t;

/* Connects with a libpq conninfo string ("host=... dbname=..." or a URI).
 * Returns the handle (caller owns; qr_db_destroy) or NULL with a message in
 * err saying what failed. */
qr_db_t *qr_db_new(const char *conninfo, char *err, size_t errlen);
/* Closes the connection and frees a pending batch; NULL-safe, nulls *self_p. */
void qr_db_destroy(qr_db_t **self_p);
/* True when the connection is up (CONNECTION_OK). */
bool qr_db_ok(qr_db_t *self);
/* Drops and reopens the connection.  Returns QR_OK or QR_EDB. */
int qr_db_reconnect(qr_db_t *self, char *err, size_t errlen);

/* Applies the migrations compiled into the binary (schemas/sql/NNN_*.sql, in
 * order) that schema_migrations does not list, each in its own transaction,
 * under an advisory lock so two brokers never race.  *applied (may be NULL)
 * gets how many ran.  Returns QR_OK or QR_EDB. */
int qr_db_migrate(qr_db_t *self, int *applied, char *err, size_t errlen);

/* Highest ids in use (0 for empty tables).  Returns QR_OK or QR_EDB. */
int qr_db_max_ids(qr_db_t *self, uint64_t *job_id, uint64_t *account_id, uint64_t *worker_id,
                  uint64_t *txn_id, uint64_t *blob_id, char *err, size_t errlen);
/* Finds the job a client submitted under an idempotency key.  Returns QR_OK
 * with *job_id set, QR_ENOTFOUND, or QR_EDB. */
int qr_db_find_idem(qr_db_t *self, uint64_t client_id, const char *key, uint64_t *job_id,
                    char *err, size_t errlen);

/* Calls fn once per account with its balances.  Returns QR_OK or QR_EDB. */
int qr_db_load_accounts(qr_db_t *self, void (*fn)(void *arg, const qr_db_account_t *a), void *arg,
                        char *err, size_t errlen);
/* Calls fn once per worker.  Returns QR_OK or QR_EDB. */
int qr_db_load_workers(qr_db_t *self, void (*fn)(void *arg, const qr_db_worker_t *w), void *arg,
                       char *err, size_t errlen);
/* Calls fn once per job that is not in a final state (queued, assigned,
 * running, done, verified), oldest first, with its input loaded; fn takes
 * ownership of job->input (the input blob's bytes).  Returns QR_OK or QR_EDB. */
int qr_db_load_jobs(qr_db_t *self, void (*fn)(void *arg, qr_db_job_t *job), void *arg, char *err,
                    size_t errlen);

/* Reads one job without its input.  Returns QR_OK, QR_ENOTFOUND or QR_EDB. */
int qr_db_get_job(qr_db_t *self, uint64_t job_id, qr_db_job_t *out, char *err, size_t errlen);
/* Reads a job's result.  *data is malloc'd (caller frees).  Returns QR_OK,
 * QR_ENOTFOUND (no result stored) or QR_EDB. */
int qr_db_get_result(qr_db_t *self, uint64_t job_id, uint8_t **data, size_t *len, char *err,
                     size_t errlen);
/* Calls fn for up to limit jobs (newest first) of client_id (0 = every
 * client), in state (NULL or "" = any).  Inputs not loaded.  QR_OK or QR_EDB. */
int qr_db_list_jobs(qr_db_t *self, uint64_t client_id, const char *state, uint32_t limit,
                    void (*fn)(void *arg, const qr_db_job_t *job), void *arg, char *err,
                    size_t errlen);

/* Admin dashboard figures, read from the SQL views. */
typedef struct {
    double jobs_per_s;       /* settled in the last 60 s / 60 */
    double p50_ms, p99_ms;   /* submit-to-settle latency of the last 1000 settled jobs */
    uint64_t settled_total;
    int64_t ledger_sum;      /* sum of every ledger entry: always 0 */
} qr_db_dash_t;
/* Fills out; fn is called per operator with (name, settled jobs, earned).
 * Returns QR_OK or QR_EDB. */
int qr_db_dash(qr_db_t *self, qr_db_dash_t *out,
               void (*fn)(void *arg, const char *op, uint64_t jobs, int64_t earned), void *arg,
               char *err, size_t errlen);

/* ---- group commit -------------------------------------------------------
 * The qr_db_add_* calls queue rows in memory; nothing touches the server
 * until qr_db_commit.  Pointers passed in (input, result) must stay valid
 * until qr_db_commit returns; strings are copied. */

void qr_db_add_account(qr_db_t *self, uint64_t id, const char *name, int kind);
/* Inserts or updates (by id) a worker and its description. */
void qr_db_add_worker(qr_db_t *self, uint64_t id, const char *name, uint64_t operator_id,
                      const char *devices_json, const char *runtimes, uint64_t ask_price,
                      uint32_t slots);
/* Records a worker's state ("online", "offline"), reputation and jobs_done. */
void qr_db_worker_state(qr_db_t *self, uint64_t id, const char *state, int32_t reputation,
                        uint64_t jobs_done);
/* Stores a blob (an input or a result) under id. */
void qr_db_add_blob(qr_db_t *self, uint64_t id, const void *data, size_t len);
/* Inserts a new job row; job->input_blob must name a stored or queued blob. */
void qr_db_add_job(qr_db_t *self, const qr_db_job_t *job);
/* Updates a job's state, worker, attempts, units, price, fee and detail;
 * updated_ms is the wall time of the change. */
void qr_db_job_update(qr_db_t *self, const qr_db_job_t *job);
/* Appends a job_events row. */
void qr_db_add_event(qr_db_t *self, uint64_t job_id, int state, uint64_t worker_id,
                     const char *detail, int64_t wall_ms);
/* Appends one ledger entry.  Entries of one txn_id must sum to zero; the
 * commit checks this and refuses an unbalanced batch (QR_EINVAL). kind names
 * the movement: "deposit", "reserve", "settle" (the reservation leaving at
 * settlement), "payment", "fee", "release". */
void qr_db_add_ledger(qr_db_t *self, uint64_t txn_id, uint64_t account_id, int bucket,
                      uint64_t job_id, const char *kind, int64_t amount, int64_t wall_ms);
/* Records a job's settlement; settlements.job_id is unique, so a second
 * settlement of the same job fails the whole commit. */
void qr_db_add_settlement(qr_db_t *self, uint64_t job_id, uint64_t worker_id, uint64_t operator_id,
                          uint64_t client_id, uint64_t units, uint64_t price, uint64_t fee,
                          int64_t wall_ms);

/* Drops every queued row without writing anything. */
void qr_db_discard(qr_db_t *self);
/* Binds a CURVE public key (Z85) to an account with a role ("client",
 * "operator", "admin"), replacing an earlier binding of the same key; with
 * role NULL, removes the key. */
void qr_db_set_key(qr_db_t *self, const char *key, uint64_t account_id, const char *role);
/* Calls fn once per bound key.  Returns QR_OK or QR_EDB. */
int qr_db_load_keys(qr_db_t *self,
                    void (*fn)(void *arg, const char *key, uint64_t account_id, const char *role),
                    void *arg, char *err, size_t errlen);

/* Leadership.  Tries to become the active broker: takes the advisory lock
 * on this connection (keep it open for as long as the broker is active) and
 * bumps broker_leader.epoch.  *got says whether it did; *epoch receives the
 * new epoch.  holder names this broker for admins.  Returns QR_OK or QR_EDB. */
int qr_db_lead(qr_db_t *self, const char *holder, bool *got, uint64_t *epoch, char *err,
               size_t errlen);
/* Fences every later commit on this connection with epoch: a commit fails
 * (QR_EPERM, nothing written) once another broker has taken over. */
void qr_db_fence(qr_db_t *self, uint64_t epoch);

/* Rows queued and not yet committed. */
size_t qr_db_pending(const qr_db_t *self);
/* Writes every queued row in one transaction and clears the queue, whether it
 * succeeded or not.  Returns QR_OK, QR_EINVAL (unbalanced ledger transaction:
 * nothing written), or QR_EDB (nothing written; the message says why). */
int qr_db_commit(qr_db_t *self, char *err, size_t errlen);

#endif
