/* quarry-mirror's pure pieces: no database, no network, no clock.
 *
 * What a settlement becomes on chain, when a batch is due, how fees rise
 * for a stuck transaction, how long to back off, the contract calls, and
 * the JSON of a proof.  Kept apart from mirror.c so the unit tests reach
 * every rule without PostgreSQL or a node.
 *
 * The record (docs/mirror.md): leaf = (jobId, client address, operator
 * address, amount), amount = (price - fee) * wei_per_unit, the operator's net
 * payment as the ledger booked it, in wei.  That is what `claim` moves from
 * the client's deposit to the operator; the protocol fee stays off chain. */
#ifndef QR_MIRROR_CORE_H
#define QR_MIRROR_CORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ethutil.h"
#include "merkle.h"

/* The amount of a settlement in wei: (price - fee) * wei_per_unit.  Returns
 * 0, or -1 when fee > price (a broken row: never mirrored). */
int qr_mirror_amount(uint64_t price, uint64_t fee, uint64_t wei_per_unit, qr_u256_t *out);

/* Decimal text ("0", "123...", at most 78 digits) into a u256.  Returns 0 or
 * -1 (empty, a non-digit, above 2^256-1). */
int qr_u256_from_dec(const char *s, qr_u256_t *out);

/* The fee of a replacement transaction: old raised by pct percent (rounded
 * up, at least +1 wei so a node sees a rise), or suggested when that is
 * higher, and never above cap (when cap is non-zero).  Nodes replace a
 * pending transaction only for a rise of >= 10% in both fee fields, so pct
 * must be at least 10 (the mirror's default is 25). */
void qr_mirror_bump(const qr_u256_t *old, unsigned pct, const qr_u256_t *suggested,
                    const qr_u256_t *cap, qr_u256_t *out);

/* The next back-off delay after a failure: double cur, within [min, max]
 * (cur 0 gives min). */
int64_t qr_mirror_backoff(int64_t cur, int64_t min, int64_t max);

/* A batch is due when n eligible records fill it (n >= size) or the oldest
 * has waited max_age_ms; never for n == 0. */
bool qr_mirror_due(size_t n, size_t size, int64_t oldest_age_ms, int64_t max_age_ms);

/* One record as the mirror stores and hashes it. */
typedef struct {
    uint64_t job_id;
    uint8_t client[QR_ADDR_LEN];
    uint8_t operator_[QR_ADDR_LEN];
    qr_u256_t amount; /* wei */
} qr_mirror_rec_t;

/* The tree over recs in order (leaf i = recs[i]).  Returns the tree (caller
 * owns) or NULL for n == 0 or no memory. */
qr_merkle_t *qr_mirror_tree(const qr_mirror_rec_t *recs, size_t n);

/* Calldata (malloc'd into *out) for the contract's functions.  Return 0 or
 * -1 (no memory). */
int qr_mirror_post_calldata(uint64_t batch_id, const uint8_t root[32], uint32_t count,
                            uint8_t **out, size_t *len);
int qr_mirror_verify_calldata(uint64_t batch_id, const qr_mirror_rec_t *rec,
                              const uint8_t (*proof)[32], size_t nproof, uint8_t **out,
                              size_t *len);
int qr_mirror_claim_calldata(uint64_t batch_id, const qr_mirror_rec_t *rec,
                             const uint8_t (*proof)[32], size_t nproof, uint8_t **out,
                             size_t *len);
/* A call without arguments or with one uint64 (nextBatchId(), broker(),
 * batchRoots(uint64), isClaimed(uint64)...); has_arg 0 for none. */
int qr_mirror_simple_calldata(const char *signature, int has_arg, uint64_t arg, uint8_t **out,
                              size_t *len);

/* What /proof/JOB serves besides the record: where the batch is. */
typedef struct {
    uint64_t batch_id;
    uint32_t leaf_index;
    uint32_t count;       /* records in the batch */
    const char *state;    /* signed, sent, mined, confirmed */
    uint64_t chain_id;
    uint8_t contract[QR_ADDR_LEN];
    uint8_t root[32];
    uint8_t tx_hash[32];
    uint64_t block;       /* 0 while not mined */
    uint64_t gas_used;    /* 0 while not mined */
    /* from the settlements row, for people */
    uint64_t units, price, fee;
    const char *client_account, *operator_account;
} qr_mirror_where_t;

/* The JSON document of a record and its proof (docs/mirror.md):
 * {"job_id", "batch_id", "leaf_index", "count", "state", "client", "operator",
 *  "amount" (decimal wei, a string), "leaf", "proof": [...], "root", "tx_hash",
 *  "block", "gas_used", "chain_id", "contract", "units", "price", "fee",
 *  "client_account", "operator_account"}.  Returns a new reference or NULL. */
json_t *qr_mirror_proof_json(const qr_mirror_rec_t *rec, const qr_mirror_where_t *w,
                             const uint8_t (*proof)[32], size_t nproof);

/* Parses such a document back: the record, batch id, root and proof (room
 * for QR_MERKLE_MAX_DEPTH).  Returns 0, or -1 with the field at fault in
 * err.  The CLI uses it for `quarry proof` and `quarry claim`. */
int qr_mirror_proof_parse(const json_t *doc, qr_mirror_rec_t *rec, uint64_t *batch_id,
                          uint8_t root[32], uint8_t (*proof)[32], size_t *nproof, char *err,
                          size_t errlen);

#endif
