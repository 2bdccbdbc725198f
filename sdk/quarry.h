/* libquarry: the client SDK of the Quarry compute marketplace.
 *
 * One header, opaque handles, one append-only error enum (curl-like).  A
 * program connects a client to the broker's client endpoint, submits jobs
 * (ai.gemm: C = A * B in fp32), follows them to a final state, fetches
 * results, and reads balances, workers and the admin dashboard.
 *
 *     quarry_client_t *c = NULL;
 *     if (quarry_client_new(NULL, "alice", 0, &c) != QUARRY_OK) ...
 *     uint64_t id;
 *     quarry_gemm_submit(c, m, n, k, A, B, NULL, &id);
 *     quarry_job_info_t info;
 *     quarry_job_wait(c, id, 60000, NULL, NULL, &info);
 *     quarry_job_result(c, id, C, (size_t)m * n, NULL, &info);
 *     quarry_client_destroy(&c);
 *
 * Rules for every function:
 *  - Return values are quarry_err_t codes: QUARRY_OK (0) or a positive
 *    QUARRY_E* code, the same numbers the broker sends on the wire.  After a
 *    failure quarry_client_last_error() describes it (the broker's message
 *    when the broker refused the request).
 *  - OUT parameters are written only on QUARRY_OK unless a function says
 *    otherwise; pointers returned through them are set to NULL on error.
 *  - Argument errors (NULL pointers, zero dimensions) return QUARRY_EINVAL
 *    without touching the network.
 *  - Thread-safety: a client handle is used by one thread at a time.
 *    Different handles may be used by different threads at once; the library
 *    has no global state.  Callbacks run on the calling thread, inside the
 *    call that was given them.
 *  - The library never prints, never exits and never aborts the process.
 *
 * Only standard headers are included here. */
#ifndef QUARRY_H
#define QUARRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QUARRY_VERSION_MAJOR 0
#define QUARRY_VERSION_MINOR 1
#define QUARRY_VERSION_PATCH 0

/* Broker client endpoint used when quarry_client_new gets NULL. */
#define QUARRY_DEFAULT_ENDPOINT "tcp://127.0.0.1:5555"
/* Per-request timeout used when none is given (milliseconds). */
#define QUARRY_DEFAULT_TIMEOUT_MS 5000
/* Largest ai.gemm dimension the broker accepts (m, n and k each). */
#define QUARRY_GEMM_MAX_DIM 65536u

/* Error codes.  Append-only: a value is never renumbered or reused.  The
 * numbers are those of the broker's wire protocol. */
typedef enum {
    QUARRY_OK = 0,
    QUARRY_EINVAL = 1,      /* malformed request or argument */
    QUARRY_EPROTO = 2,      /* bad frame, wrong protocol or version */
    QUARRY_EKIND = 3,       /* unknown job kind */
    QUARRY_ETOOBIG = 4,     /* input over the size limit, or buffer too small */
    QUARRY_EFUNDS = 5,      /* balance short of the job's maximum price */
    QUARRY_ENOTFOUND = 6,   /* no such job, account or worker */
    QUARRY_EDB = 7,         /* broker database unavailable or failed */
    QUARRY_ESTATE = 8,      /* operation not allowed in the job's state */
    QUARRY_ETIMEOUT = 9,    /* timed out waiting (job not final in time) */
    QUARRY_ENOMEM = 10,     /* out of memory */
    QUARRY_EIO = 11,        /* socket or file I/O error */
    QUARRY_EVERIFY = 12,    /* result failed verification */
    QUARRY_ECANCELLED = 13, /* job was cancelled */
    QUARRY_EEXPIRED = 14,   /* job passed its deadline */
    QUARRY_EFAILED = 15,    /* job failed after its maximum attempts */
    QUARRY_EPRICE = 16,     /* no worker can run the job under its price cap */
    QUARRY_ENOTREADY = 17,  /* result not available yet */
    QUARRY_EPERM = 18,      /* not allowed for this caller */
    QUARRY_ECOMPUTE = 19,   /* compute failed on the worker */
    QUARRY_EUNAVAIL = 20,   /* broker not reachable or did not answer */
    QUARRY_ELIMIT = 21,     /* refused: the account's rate limit or job quota */
} quarry_err_t;

/* Returns a static, human-readable description of code (negative codes are
 * read as their absolute value); never NULL.  Thread-safe. */
const char *quarry_strerror(int code);

/* Returns the library version as "MAJOR.MINOR.PATCH" (static).  Thread-safe. */
const char *quarry_version(void);

/* Job states, in lifecycle order, then the side exits.  The numbers match the
 * broker's; the names (quarry_job_state_name) are what the broker sends. */
typedef enum {
    QUARRY_JOB_UNKNOWN = -1, /* a state name this library does not know */
    QUARRY_JOB_SUBMITTED = 0,
    QUARRY_JOB_QUEUED,
    QUARRY_JOB_ASSIGNED,
    QUARRY_JOB_RUNNING,
    QUARRY_JOB_DONE,
    QUARRY_JOB_VERIFIED,
    QUARRY_JOB_SETTLED, /* paid; the result can be fetched */
    QUARRY_JOB_MIRRORED, /* settled and posted on chain */
    QUARRY_JOB_REJECTED, /* bad input at submit */
    QUARRY_JOB_FAILED,   /* failed after its maximum attempts */
    QUARRY_JOB_EXPIRED,  /* deadline passed */
    QUARRY_JOB_CANCELLED,
} quarry_job_state_t;

/* Name of state s ("queued"), or "unknown".  Static string.  Thread-safe. */
const char *quarry_job_state_name(quarry_job_state_t s);
/* State for a name, or QUARRY_JOB_UNKNOWN (also for NULL).  Thread-safe. */
quarry_job_state_t quarry_job_state_parse(const char *name);
/* True for states a job never leaves: settled, mirrored and the side exits. */
bool quarry_job_state_final(quarry_job_state_t s);
/* Code that a job ending in state s stands for: QUARRY_OK for settled and
 * mirrored, QUARRY_EFAILED, QUARRY_EEXPIRED, QUARRY_ECANCELLED, QUARRY_EINVAL
 * for rejected, and QUARRY_ETIMEOUT for a state that is not final. */
quarry_err_t quarry_job_state_code(quarry_job_state_t s);

/* What the broker knows about a job.  Plain data: copy it freely. */
typedef struct {
    uint64_t job_id;          /* broker-assigned id */
    quarry_job_state_t state; /* parsed state_name */
    char state_name[16];      /* state as the broker named it */
    char kind[32];            /* "ai.gemm" */
    uint32_t attempts;        /* runs started so far */
    uint64_t worker_id;       /* worker holding or last holding it, 0 = none */
    uint64_t max_price;       /* cap reserved at submit, base units */
    uint64_t price;           /* paid by the client once settled (<= max_price) */
    uint64_t fee;             /* the broker's share of price; the operator got price - fee */
    uint64_t units;           /* work units billed */
    int64_t created_ms;       /* wall clock, ms since the Unix epoch */
    int64_t updated_ms;       /* wall clock of the last change */
    uint32_t progress;        /* per mille, 0..1000 */
    uint32_t m, n, k;         /* ai.gemm shape */
    char detail[256];         /* why it failed / expired / was rejected (truncated) */
} quarry_job_info_t;

/* Options of a submitted job.  Initialise with quarry_job_opts_init, then set
 * the fields you need; passing NULL to quarry_gemm_submit means the defaults. */
typedef struct {
    uint64_t max_price;    /* cap on what the job may cost, reserved at submit; 0 = broker decides */
    int64_t timeout_ms;    /* deadline relative to acceptance; 0 = none */
    bool need_gpu;         /* run only on a GPU worker */
    uint64_t min_mem_mb;   /* device memory the job needs; 0 = any */
    int32_t priority;      /* higher runs first; default 0 */
    uint32_t max_attempts; /* 0 = broker default */
    const char *idem_key;  /* idempotency key: a resubmit with the same key
                              returns the first job (NULL or "" = none);
                              copied, not kept */
} quarry_job_opts_t;

/* Sets *opts to the defaults (all zero, no key).  opts NULL is ignored. */
void quarry_job_opts_init(quarry_job_opts_t *opts);

/* One worker as the broker sees it. */
typedef struct {
    uint64_t worker_id;
    char name[64];      /* unique per operator (truncated) */
    char operator_[64]; /* operator account that is paid */
    char state[16];     /* "idle", "busy", "lost", ... as the broker names it */
    uint32_t slots;     /* jobs it runs at once */
    uint32_t busy;      /* slots in use */
    uint64_t ask_price; /* base units per unit of work */
    int32_t reputation;
    uint32_t cpu_cores;
    uint64_t mem_mb;
    uint32_t gpus;
    uint64_t jobs_done;
    uint64_t earned; /* base units */
} quarry_worker_info_t;

/* An account's balances, base units. */
typedef struct {
    char account[64];  /* account name */
    int64_t available; /* spendable */
    int64_t reserved;  /* held for running jobs */
    int64_t earned;    /* paid to it as an operator */
} quarry_balance_t;

typedef struct {
    char kind[32];
    uint64_t queued;  /* jobs waiting */
    uint64_t running; /* jobs assigned or running */
} quarry_kind_stat_t;

typedef struct {
    char operator_[64];
    uint64_t jobs;  /* settled jobs */
    int64_t earned; /* base units */
} quarry_operator_stat_t;

/* Admin dashboard.  Allocated by quarry_dash, freed by quarry_dash_free. */
typedef struct {
    quarry_kind_stat_t *kinds;         /* queue depth per job kind */
    size_t nkinds;
    uint32_t workers;                  /* connected workers */
    double utilisation;                /* busy slots / slots, 0..1 */
    double jobs_per_s;                 /* settled in the last minute / 60 */
    double p50_ms, p99_ms;             /* submit-to-settle latency */
    quarry_operator_stat_t *operators; /* earnings per operator */
    size_t noperators;
    uint64_t settled_total;
    int64_t ledger_sum; /* sum of all ledger entries; 0 when the books balance */
} quarry_dash_t;

/* Opaque client: one connection to a broker bound to one account. */
typedef struct quarry_client quarry_client_t;

/* Creates a client, connects it to endpoint (NULL = QUARRY_DEFAULT_ENDPOINT,
 * any ZeroMQ endpoint such as "tcp://host:5555" or "ipc:///path") and
 * introduces it as account (NULL or "" = "default") with a HELLO that must be
 * answered within timeout_ms (<= 0 = QUARRY_DEFAULT_TIMEOUT_MS), which also
 * becomes the per-request timeout.
 * Returns QUARRY_OK with *client_p set (caller owns it; free with
 * quarry_client_destroy); QUARRY_EUNAVAIL when the broker does not answer in
 * time; QUARRY_EINVAL for a NULL client_p or a malformed endpoint; or the
 * broker's code when it refuses the account.  On error *client_p is NULL. */
quarry_err_t quarry_client_new(const char *endpoint, const char *account, int64_t timeout_ms,
                               quarry_client_t **client_p);
/* (quarry_client_new reads the environment for security: QUARRY_SERVER_KEY
 * and QUARRY_KEY, when set and not empty, act as quarry_client_opts_t's
 * server_key and key_file; unset = plain text.  Bad key settings give
 * QUARRY_EINVAL.  Use quarry_client_new_opts to see the reason.) */

/* Connection options for quarry_client_new_opts.  Initialise with
 * quarry_client_opts_init, then set what you need.  Strings are copied (key
 * material is read at once), not kept.
 *
 * Security: a broker not run with --insecure speaks CurveZMQ only.  Set
 * server_key to the broker's public key and key_file to this client's secret
 * key (see quarry_keygen); the broker admits only keys registered for an
 * account (quarry_admin_key), or any key in its --open-registration mode.
 * With a key the broker does not admit (or a wrong server_key) the handshake
 * fails silently: calls end in QUARRY_EUNAVAIL after the timeout, which
 * therefore means "broker unreachable, or your key is not admitted". */
typedef struct {
    const char *endpoint; /* NULL = QUARRY_DEFAULT_ENDPOINT */
    const char *account;  /* NULL or "" = "default" */
    int64_t timeout_ms;   /* <= 0 = QUARRY_DEFAULT_TIMEOUT_MS */
    const char *server_key; /* broker public key: 40-character Z85 text, or the
                               path of a file holding it (BROKER.pub); NULL or
                               "" = plain text (a broker in --insecure mode) */
    const char *key_file;   /* this client's secret key file (PREFIX.key, mode
                               0600; its public key is derived from it); NULL
                               or "" with server_key set = a throwaway key pair
                               made for this client (admitted only by a broker
                               in --open-registration mode) */
    char *err_buf;          /* optional: receives why quarry_client_new_opts
                               failed (there is no handle then); NULL = none */
    size_t err_len;         /* size of err_buf */
} quarry_client_opts_t;

/* Sets *opts to the defaults: all NULL / 0, i.e. the default endpoint and
 * account, the default timeout, no security.  opts NULL is ignored. */
void quarry_client_opts_init(quarry_client_opts_t *opts);

/* Creates a client as quarry_client_new does, with the options in *opts
 * (NULL = defaults; the environment is NOT read).  Key problems (server_key
 * neither valid Z85 text nor a readable file holding it; key_file missing,
 * unreadable, malformed or readable by group/others; key_file without
 * server_key; a libzmq without CURVE) return QUARRY_EINVAL without touching
 * the network, with the reason in opts->err_buf when given.  Other failures
 * as quarry_client_new; the reason goes to err_buf as well.  Secret keys are
 * never written into a message.  On error *client_p is NULL. */
quarry_err_t quarry_client_new_opts(const quarry_client_opts_t *opts, quarry_client_t **client_p);

/* Closes the connection and frees the client, then sets *client_p to NULL.
 * Accepts NULL and a pointer to NULL; idempotent.  Never blocks (linger 0):
 * requests still unsent are dropped. */
void quarry_client_destroy(quarry_client_t **client_p);

/* Sets how long each request waits for the broker's answer (ms; <= 0 =
 * QUARRY_DEFAULT_TIMEOUT_MS).  Returns QUARRY_OK or QUARRY_EINVAL (NULL). */
quarry_err_t quarry_client_set_timeout(quarry_client_t *client, int64_t timeout_ms);

/* Text of the last error on this client (the broker's message when it refused
 * a request), or "" when the last call succeeded.  The string belongs to the
 * client and stays valid until its next call.  NULL client gives "". */
const char *quarry_client_last_error(const quarry_client_t *client);

/* Account id the broker gave in its HELLO answer (0 for NULL). */
uint64_t quarry_client_account_id(const quarry_client_t *client);

/* Submits an ai.gemm job C = A * B: A is m x k, B is k x n, fp32 row-major,
 * host byte order (little-endian on the wire).  The inputs are sent at once
 * and not kept.  opts NULL = defaults.
 * Returns QUARRY_OK with *job_id set; QUARRY_EINVAL for NULL pointers or a
 * zero dimension; QUARRY_ETOOBIG for a dimension over QUARRY_GEMM_MAX_DIM;
 * QUARRY_EUNAVAIL when the broker does not answer; or the broker's refusal
 * (QUARRY_EFUNDS, QUARRY_EPRICE, ...).  reserved (may be NULL) receives the
 * amount held from the balance, duplicate (may be NULL) whether an earlier
 * job with the same idem_key was returned instead of a new one. */
quarry_err_t quarry_gemm_submit(quarry_client_t *client, uint32_t m, uint32_t n, uint32_t k,
                                const float *A, const float *B, const quarry_job_opts_t *opts,
                                uint64_t *job_id, uint64_t *reserved, bool *duplicate);

/* Submits an ai.gemm job whose inputs were uploaded first as one artifact
 * (quarry_upload_mem or quarry_upload of A then B: m*k then k*n fp32,
 * row-major, little-endian) named by its SHA-256 (QUARRY_SHA_HEX digits), so
 * a client sending the same matrices to many jobs sends them once.  The
 * broker refuses an artifact it does not hold (QUARRY_ENOTFOUND) or one
 * that is not exactly (m*k + k*n) * 4 bytes (QUARRY_EINVAL).  Other
 * arguments and results as for quarry_gemm_submit. */
quarry_err_t quarry_gemm_submit_ref(quarry_client_t *client, uint32_t m, uint32_t n, uint32_t k,
                                    const char *input_sha256, const quarry_job_opts_t *opts,
                                    uint64_t *job_id, uint64_t *reserved, bool *duplicate);

/* ---- ai.infer ----
 * A model is two artifacts in the broker's content-addressed store: its
 * weights (a safetensors file) and its graph (JSON, docs/model.md).  Upload
 * each once; jobs then name them by SHA-256. */

/* Length of an artifact name (SHA-256 in lowercase hex), without the NUL. */
#define QUARRY_SHA_HEX 64

/* Uploads the file at path to the broker's artifact store, in 1 MiB chunks
 * with a bounded window in flight, and writes its SHA-256 (the name jobs use)
 * into sha256 (QUARRY_SHA_HEX + 1 bytes) and its size into *size (may be
 * NULL).  A file the broker already holds is not sent again (an interrupted
 * upload goes on from where the broker stands).  The broker checks the
 * SHA-256 before storing it.  Returns QUARRY_OK; QUARRY_EIO when the file
 * cannot be read; QUARRY_ETOOBIG over the broker's artifact limit; QUARRY_EINVAL
 * for an empty file; QUARRY_EUNAVAIL; ... */
quarry_err_t quarry_upload(quarry_client_t *client, const char *path, char *sha256,
                           uint64_t *size);

/* Uploads len bytes at data as quarry_upload does a file (nothing is sent
 * when the broker already holds them) and writes their SHA-256 into sha256
 * (QUARRY_SHA_HEX + 1 bytes).  QUARRY_EINVAL for NULL pointers or len 0. */
quarry_err_t quarry_upload_mem(quarry_client_t *client, const void *data, size_t len, char *sha256);

/* Submits an ai.infer job: rows input rows (input: rows x the model's input
 * width floats, row-major; count is their number; for a model starting with
 * an embedding, one token id per row) through the model named by the
 * SHA-256s of its weights and graph.  The broker validates the model and the
 * input size at submit (QUARRY_ENOTFOUND: an artifact was not uploaded;
 * QUARRY_EINVAL: the graph does not fit the weights, or the input has the
 * wrong size).  The result (quarry_job_result*) is the output, rows x the
 * model's output width, fetched like any job's.  Other arguments as for
 * quarry_gemm_submit. */
quarry_err_t quarry_infer_submit(quarry_client_t *client, const char *weights_sha256,
                                 const char *graph_sha256, uint32_t rows, const float *input,
                                 size_t count, const quarry_job_opts_t *opts, uint64_t *job_id,
                                 uint64_t *reserved, bool *duplicate);

/* ---- zk.groth16 ----
 * A Groth16 proof over BN254 of a circom/snarkjs witness: the proving key
 * (a snarkjs .zkey) is uploaded once with quarry_upload and named by its
 * SHA-256; the witness (the bytes of a .wtns file, as `snarkjs wtns
 * calculate` or circom's generator writes it) rides with the job.  The
 * broker checks the witness against the key at submit and verifies every
 * proof (a pairing check) before paying. */

/* Submits a zk.groth16 job.  Returns as quarry_gemm_submit; QUARRY_ENOTFOUND
 * when the key was not uploaded, QUARRY_EINVAL for a file that is not a
 * Groth16 key, a bad witness or one of the wrong length. */
quarry_err_t quarry_zk_submit(quarry_client_t *client, const char *zkey_sha256, const void *wtns,
                              size_t wtns_len, const quarry_job_opts_t *opts, uint64_t *job_id,
                              uint64_t *reserved, bool *duplicate);

/* Fetches a settled job's result as raw bytes into *data (caller frees with
 * quarry_free) and its length into *len, for any kind.  For zk.groth16:
 * pi_a (64 bytes: x, y), pi_b (128 bytes: x.c1, x.c0, y.c1, y.c0, as
 * Ethereum's pairing precompile takes them), pi_c (64 bytes), all
 * big-endian, then the public signals, 32 bytes each, big-endian (the
 * `quarry result` command writes snarkjs's proof.json and public.json from
 * it). */
quarry_err_t quarry_job_result_bytes(quarry_client_t *client, uint64_t id, void **data,
                                     size_t *len, quarry_job_info_t *info);

/* Fetches the current state of job id into *out.
 * Returns QUARRY_OK, QUARRY_ENOTFOUND, QUARRY_EUNAVAIL, ... */
quarry_err_t quarry_job_status(quarry_client_t *client, uint64_t id, quarry_job_info_t *out);

/* Called for each state change or progress report of a watched job.
 * Return 0 to go on watching, anything else to stop. */
typedef int (*quarry_event_fn)(const quarry_job_info_t *info, void *userdata);

/* Watches job id: calls cb (may be NULL) with the current state and then on
 * every change, until the job reaches a final state, cb returns non-zero, or
 * timeout_ms passes (< 0 = no limit).  Missed events cannot hide a final
 * state: the watch is renewed when the broker is silent for a while.
 * Returns QUARRY_OK when the job is final or cb stopped it (last state in
 * *last, may be NULL); QUARRY_ETIMEOUT when time ran out (last known state in
 * *last); QUARRY_EUNAVAIL, QUARRY_ENOTFOUND, ... otherwise. */
quarry_err_t quarry_job_watch(quarry_client_t *client, uint64_t id, int64_t timeout_ms,
                              quarry_event_fn cb, void *userdata, quarry_job_info_t *last);

/* Waits until job id is final, calling cb (may be NULL) on each event as
 * quarry_job_watch does.  Returns QUARRY_OK when the job settled (or is
 * mirrored); QUARRY_EFAILED, QUARRY_EEXPIRED, QUARRY_ECANCELLED or
 * QUARRY_EINVAL (rejected) when it ended badly; QUARRY_ETIMEOUT when it is
 * not final after timeout_ms (< 0 = no limit); or a request error.  *info
 * (may be NULL) receives the last known state in every case where one was
 * received, and quarry_client_last_error gives the job's detail.  With cb
 * NULL the broker is asked for the end alone, so no intermediate event
 * crosses the network. */
quarry_err_t quarry_job_wait(quarry_client_t *client, uint64_t id, int64_t timeout_ms,
                             quarry_event_fn cb, void *userdata, quarry_job_info_t *info);

/* Fetches the result of a settled ai.gemm job into the caller's buffer C of
 * cap floats (m * n needed).  count (may be NULL) receives the number of
 * floats; info (may be NULL) the job.  Returns QUARRY_OK;
 * QUARRY_ENOTREADY when the job has not settled; QUARRY_ETOOBIG when cap is
 * short (then *count says what is needed and C is untouched); QUARRY_EPROTO
 * when the result frame does not match the shape; ... */
quarry_err_t quarry_job_result(quarry_client_t *client, uint64_t id, float *C, size_t cap,
                               size_t *count, quarry_job_info_t *info);

/* Like quarry_job_result, but allocates the buffer: *C_p (caller owns it,
 * free with quarry_free) holds *count floats.  *C_p is NULL on error. */
quarry_err_t quarry_job_result_alloc(quarry_client_t *client, uint64_t id, float **C_p,
                                     size_t *count, quarry_job_info_t *info);

/* Cancels job id.  Returns QUARRY_OK with the resulting state in *info (may
 * be NULL); QUARRY_ESTATE when the job is already final; QUARRY_ENOTFOUND;
 * QUARRY_EPERM for another account's job; ... */
quarry_err_t quarry_job_cancel(quarry_client_t *client, uint64_t id, quarry_job_info_t *info);

/* Lists jobs, newest first: only those in state (NULL or "" = any), at most
 * limit (0 = broker default), of every account when all_accounts (admin).
 * Returns QUARRY_OK with *jobs_p (caller owns; free with quarry_job_list_free;
 * NULL when *count is 0) and *count set. */
quarry_err_t quarry_job_list(quarry_client_t *client, const char *state, uint32_t limit,
                             bool all_accounts, quarry_job_info_t **jobs_p, size_t *count);
/* Frees a list from quarry_job_list and sets *jobs_p to NULL; NULL-safe. */
void quarry_job_list_free(quarry_job_info_t **jobs_p);

/* Lists the workers connected to the broker.  *workers_p (caller owns; free
 * with quarry_workers_free; NULL when *count is 0). */
quarry_err_t quarry_workers(quarry_client_t *client, quarry_worker_info_t **workers_p,
                            size_t *count);
/* Frees a list from quarry_workers and sets *workers_p to NULL; NULL-safe. */
void quarry_workers_free(quarry_worker_info_t **workers_p);

/* Reads the balances of account (NULL or "" = this client's own) into *out. */
quarry_err_t quarry_balance(quarry_client_t *client, const char *account, quarry_balance_t *out);

/* Credits amount base units to account (admin operation).  out (may be NULL)
 * receives the balances after the deposit.  QUARRY_EINVAL for a NULL or
 * empty account or amount 0; QUARRY_EPERM when this client is no admin. */
quarry_err_t quarry_deposit(quarry_client_t *client, const char *account, uint64_t amount,
                            quarry_balance_t *out);

/* Registers or removes a client key at the broker (admin operation; the
 * broker answers only to an admin key).  op is "add-client", "add-operator",
 * "add-admin" (bind key to account with that role) or "remove" (account may
 * be NULL).  key is a public key: 40-character Z85 text or the path of a
 * file holding it (PREFIX.pub).  Returns QUARRY_OK; QUARRY_EINVAL for an
 * unknown op, a bad key or a missing account (without touching the network);
 * QUARRY_EPERM when this client is no admin; ... */
quarry_err_t quarry_admin_key(quarry_client_t *client, const char *op, const char *key,
                              const char *account);

/* Generates a CurveZMQ key pair and writes PREFIX.key (the secret key, mode
 * 0600) and PREFIX.pub (the public key), each one line of Z85 text.  Refuses
 * to overwrite an existing PREFIX.key.  pub (may be NULL) receives the public
 * key, NUL-terminated.  Returns QUARRY_OK; QUARRY_EINVAL for a NULL or empty
 * prefix or a libzmq without CURVE; QUARRY_EIO when a file cannot be created
 * (PREFIX.key exists, no such folder, ...).  Thread-safe. */
quarry_err_t quarry_keygen(const char *prefix, char pub[41]);

/* Reads the admin dashboard.  *dash_p: caller owns, free with
 * quarry_dash_free; NULL on error. */
quarry_err_t quarry_dash(quarry_client_t *client, quarry_dash_t **dash_p);
/* Frees a dashboard and sets *dash_p to NULL; NULL-safe. */
void quarry_dash_free(quarry_dash_t **dash_p);

/* Frees memory the library allocated for the caller (quarry_job_result_alloc). */
void quarry_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
