/* quarry-mirror: settled jobs from PostgreSQL to the QuarrySettlement
 * contract, as Merkle roots of batches.
 *
 * One thread, one loop.  Each step does the next thing that can be done
 * and says whether it made progress (step again at once), found nothing to
 * do (wait poll-ms) or failed (back off, doubling up to backoff-max-ms):
 *
 *   1. connect PostgreSQL, check 006_mirror is applied, take the mirror's
 *      advisory lock (a second mirror stands by);
 *   2. once per connection to the node: chain id, the contract's broker()
 *      is this key, the database's batches belong to this contract;
 *   3. every open batch, oldest first: look for a receipt of any of its
 *      signed transactions; send the newest one while none was accepted;
 *      re-price it (same nonce, fees +fee-bump-pct) when it has waited
 *      stuck-ms; re-sign it with a fresh nonce when another transaction
 *      took its nonce; count confirmations of a mined one, and notice when
 *      a reorganisation took its receipt away;
 *   4. when no batch is waiting to be mined: if batch-size records are
 *      eligible, or the oldest has waited batch-age-ms, build the next
 *      batch (records in job order, the tree, postBatch signed with the
 *      next nonce), COMMIT it with its records and raw transaction, and only
 *      then send it.
 *
 * Crash safety follows from step 4's order and the contract: a batch that
 * was committed is never rebuilt (its settlements carry its batch_id), a
 * restart finds it in step 3 and sends the same bytes again, and the
 * contract's in-order batch ids refuse any second post of one batch.  While
 * PostgreSQL or the node is away nothing is lost: the step fails, the loop
 * backs off and tries again.
 *
 * /metrics, /healthz, /proof/JOB and /records/{address/0xADDR|account/NAME}
 * [/after/JOB] are served from the same loop (common/httpd.h). */
#ifndef QR_MIRROR_H
#define QR_MIRROR_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *db;           /* libpq conninfo */
    const char *rpc_url;      /* JSON-RPC endpoint of the node */
    const char *contract;     /* 0x address of QuarrySettlement */
    const char *key_file;     /* the broker's key (64 hex digits, mode 0600) */
    uint64_t chain_id;        /* 0: whatever the node says */
    int64_t batch_size;       /* records per batch at most */
    int64_t batch_age_ms;     /* a record waits at most this long for a full batch */
    int64_t confirmations;    /* blocks (the mining one included) before confirmed */
    int64_t poll_ms;          /* idle step interval */
    int64_t stuck_ms;         /* no receipt this long: re-price */
    int64_t fee_bump_pct;     /* rise per re-price, >= 10 */
    int64_t max_fee_gwei;     /* cap of max fee per gas; 0 = none */
    uint64_t wei_per_unit;    /* ledger base unit -> wei */
    int64_t gas_limit;        /* 0: estimate + 25% */
    int64_t rpc_timeout_ms;   /* per JSON-RPC call */
    int64_t backoff_max_ms;   /* longest wait after failures */
    int64_t max_unconfirmed;  /* mined batches awaiting confirmation before building waits */
    const char *metrics_addr; /* HOST:PORT, "" = no HTTP */
    const char *fault;        /* test builds: "exit-after-persist", "exit-after-send" */
    int64_t fault_batch;      /* the batch id the fault fires on (-1: the first) */
} qr_mirror_cfg_t;

typedef struct qr_mirror qr_mirror_t;

/* Loads the key and opens the HTTP listener; connects nothing else yet (a
 * daemon started before its database or node waits for them).  NULL with
 * err on a bad setting. */
qr_mirror_t *qr_mirror_new(const qr_mirror_cfg_t *cfg, char *err, size_t errlen);
void qr_mirror_destroy(qr_mirror_t **self_p);
/* Runs until *stop; returns the exit status: 0 stopped, 2 a setting that
 * cannot work (contract of another broker, another chain), 1 a state it will
 * not repair alone (the contract knows batches the database does not). */
int qr_mirror_run(qr_mirror_t *self, volatile sig_atomic_t *stop);

#endif
