/* quarry-mirror's PostgreSQL layer: the only mirror file that includes libpq.
 *
 * Reads settlements (the broker's table, never written here except
 * settlements.batch_id) and the mirror's own tables of 006_mirror.sql:
 * account_addresses, mirror_batches, mirror_txs, mirror_records.  Every
 * write that must survive a crash together is one transaction: a batch, its
 * records, its first signed transaction and the batch_id of its settlements
 * go in at once (qr_mirror_db_insert_batch), before anything is sent.
 *
 * Bytes travel as hex text (encode/decode in SQL) and amounts as decimal
 * text, so no binary format is involved.  Functions return QR_OK, QR_EDB
 * (with the server's message in err; qr_mirror_db_ok() tells a dead
 * connection), QR_ENOTFOUND or QR_ENOMEM.  Not thread-safe: one owner. */
#ifndef QR_MIRROR_DB_H
#define QR_MIRROR_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mirror_core.h"

typedef struct qr_mirror_db qr_mirror_db_t;

/* Connects; NULL with err on failure. */
qr_mirror_db_t *qr_mirror_db_new(const char *conninfo, char *err, size_t errlen);
void qr_mirror_db_destroy(qr_mirror_db_t **self_p);
/* False once the connection is gone (reconnect with a new handle). */
bool qr_mirror_db_ok(const qr_mirror_db_t *self);

/* QR_OK when migration 6 (006_mirror.sql) is applied, QR_ENOTFOUND when
 * not. */
int qr_mirror_db_schema_ok(qr_mirror_db_t *self, char *err, size_t errlen);
/* Tries the mirror's session advisory lock (one active mirror per
 * database); *got says whether this session holds it now. */
int qr_mirror_db_lock(qr_mirror_db_t *self, bool *got, char *err, size_t errlen);

/* Sets the address of account (its name; or its id when no account has
 * that name and it is all digits); the id in *account_id.  QR_ENOTFOUND
 * when there is no such account. */
int qr_mirror_db_set_address(qr_mirror_db_t *self, const char *account,
                             const uint8_t addr[QR_ADDR_LEN], uint64_t *account_id, char *err,
                             size_t errlen);
/* The address of an account by name; QR_ENOTFOUND without one. */
int qr_mirror_db_address_of(qr_mirror_db_t *self, const char *account,
                            uint8_t addr[QR_ADDR_LEN], char *err, size_t errlen);

typedef struct {
    uint64_t account_id;
    char name[128];
    uint8_t address[QR_ADDR_LEN];
} qr_mirror_addr_t;
/* Every address, by account id; *out malloc'd (free()). */
int qr_mirror_db_addresses(qr_mirror_db_t *self, qr_mirror_addr_t **out, size_t *n, char *err,
                           size_t errlen);

/* Up to max settlements not yet in a batch whose client and operator both
 * have an address, in job order, as records with amount =
 * (price - fee) * wei_per_unit; *oldest_age_ms is how long the first of
 * them has been settled (0 when none). */
int qr_mirror_db_eligible(qr_mirror_db_t *self, size_t max, uint64_t wei_per_unit,
                          qr_mirror_rec_t *out, size_t *n, int64_t *oldest_age_ms, char *err,
                          size_t errlen);

/* An account that holds settlements back for want of an address. */
typedef struct {
    uint64_t account_id;
    char name[128];
    uint64_t jobs; /* settlements waiting on it */
} qr_mirror_waiting_t;
/* Up to max such accounts, most jobs first. */
int qr_mirror_db_waiting(qr_mirror_db_t *self, qr_mirror_waiting_t *out, size_t max, size_t *n,
                         char *err, size_t errlen);

/* A batch row (mirror_batches). */
typedef struct {
    uint64_t id;
    uint64_t chain_id;
    uint8_t contract[QR_ADDR_LEN];
    uint8_t root[32];
    uint32_t count;
    uint64_t nonce;
    char state[12]; /* signed, sent, mined, confirmed */
    uint8_t tx_hash[32];
    uint64_t block;    /* 0 while not mined */
    uint64_t gas_used; /* 0 while not mined */
    int64_t age_ms;    /* since created */
} qr_mirror_batch_t;

/* A signed transaction of a batch (mirror_txs). */
typedef struct {
    uint8_t hash[32];
    uint64_t nonce;
    qr_u256_t max_fee, tip;
    uint64_t gas;
    uint8_t *raw; /* malloc'd by the reads below */
    size_t raw_len;
    int64_t age_ms; /* since signed */
} qr_mirror_tx_t;

/* Commits, in one transaction: the batch (state 'signed'), its records (leaf
 * i = recs[i]), tx as its first transaction, and settlements.batch_id of its
 * jobs, which must all still be NULL (else QR_EDB and nothing written). */
int qr_mirror_db_insert_batch(qr_mirror_db_t *self, const qr_mirror_batch_t *b,
                              const qr_mirror_rec_t *recs, size_t n, const qr_mirror_tx_t *tx,
                              char *err, size_t errlen);
/* Batches not yet confirmed, by id; *out malloc'd. */
int qr_mirror_db_open_batches(qr_mirror_db_t *self, qr_mirror_batch_t **out, size_t *n,
                              char *err, size_t errlen);
/* The batch with the highest id; *found false when there is none. */
int qr_mirror_db_last_batch(qr_mirror_db_t *self, qr_mirror_batch_t *out, bool *found,
                            char *err, size_t errlen);
/* One batch by id; QR_ENOTFOUND when absent. */
int qr_mirror_db_batch(qr_mirror_db_t *self, uint64_t id, qr_mirror_batch_t *out, char *err,
                       size_t errlen);
/* The transactions of a batch, oldest first; free with
 * qr_mirror_txs_free. */
int qr_mirror_db_batch_txs(qr_mirror_db_t *self, uint64_t batch_id, qr_mirror_tx_t **out,
                           size_t *n, char *err, size_t errlen);
void qr_mirror_txs_free(qr_mirror_tx_t **txs, size_t n);
/* Adds a replacement transaction (fee bump or re-sign) and makes it the
 * batch's current one (tx_hash, nonce), state back to 'signed'. */
int qr_mirror_db_add_tx(qr_mirror_db_t *self, uint64_t batch_id, const qr_mirror_tx_t *tx,
                        char *err, size_t errlen);
/* signed -> sent (a node accepted tx hash). */
int qr_mirror_db_mark_sent(qr_mirror_db_t *self, uint64_t batch_id, char *err, size_t errlen);
/* -> mined with the receipt's facts. */
int qr_mirror_db_mark_mined(qr_mirror_db_t *self, uint64_t batch_id, const uint8_t hash[32],
                            uint64_t block, uint64_t gas_used, const qr_u256_t *gas_price,
                            char *err, size_t errlen);
/* mined -> sent: the receipt went away (a reorganisation). */
int qr_mirror_db_mark_unmined(qr_mirror_db_t *self, uint64_t batch_id, char *err,
                              size_t errlen);
/* mined -> confirmed. */
int qr_mirror_db_mark_confirmed(qr_mirror_db_t *self, uint64_t batch_id, char *err,
                                size_t errlen);

/* A record for /proof/JOB: QR_ENOTFOUND when the job is in no batch.  The
 * where's string fields point into names (256 bytes) and state (12). */
typedef struct {
    char client_account[128];
    char operator_account[128];
    char state[12];
} qr_mirror_names_t;
int qr_mirror_db_record(qr_mirror_db_t *self, uint64_t job_id, qr_mirror_rec_t *rec,
                        qr_mirror_where_t *w, qr_mirror_names_t *names, char *err,
                        size_t errlen);
/* The records of a batch in leaf order; *out malloc'd. */
int qr_mirror_db_batch_records(qr_mirror_db_t *self, uint64_t batch_id, qr_mirror_rec_t **out,
                               size_t *n, char *err, size_t errlen);
/* Up to max job ids above after whose record names operator addr and whose
 * batch is confirmed (claimable), ascending. */
int qr_mirror_db_operator_jobs(qr_mirror_db_t *self, const uint8_t addr[QR_ADDR_LEN],
                               uint64_t after, size_t max, uint64_t *jobs, size_t *n, char *err,
                               size_t errlen);

/* Counters for /metrics. */
typedef struct {
    int64_t unbatched;       /* settlements in no batch */
    int64_t eligible;        /* of those, with both addresses */
    int64_t batches[4];      /* by state: signed, sent, mined, confirmed */
    int64_t records_confirmed;
    int64_t gas_used_total;  /* of mined and confirmed batches */
    int64_t last_batch;      /* -1 when none */
} qr_mirror_stats_t;
int qr_mirror_db_stats(qr_mirror_db_t *self, qr_mirror_stats_t *out, char *err, size_t errlen);

#endif
