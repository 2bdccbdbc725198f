/* Binary Merkle trees over keccak-256 leaves, as QuarrySettlement checks
 * them.
 *
 * Pairs hash sorted: parent = keccak256(min(a,b) || max(a,b)), comparing the
 * 32-byte nodes as big-endian numbers, like OpenZeppelin's MerkleProof.  A
 * proof is then just the list of sibling nodes, with no left/right flags,
 * and the contract's check is a short loop.  Levels are built left to right;
 * a node left without a partner at the end of a level moves up unchanged (its
 * proof has no element for that level), so any leaf count works.
 *
 * Settlement leaves are hashed twice:
 *   leaf = keccak256(keccak256(abi.encode(uint64 jobId, address client,
 *                                         address operator, uint256 amount)))
 * A leaf is a hash of 32 bytes and an inner node a hash of 64, so no inner
 * node can pass as a leaf (the second-preimage trick against single-hashed
 * 64-byte leaves).  The contract computes the same expression. */
#ifndef QR_CHAIN_MERKLE_H
#define QR_CHAIN_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "ethutil.h"

/* Deepest proof: 2^64 leaves are more than anyone will batch. */
#define QR_MERKLE_MAX_DEPTH 64

typedef struct qr_merkle qr_merkle_t;

/* One settled job as the contract sees it. */
typedef struct {
    uint64_t job_id;
    uint8_t client[QR_ADDR_LEN];    /* whose deposit pays */
    uint8_t operator_[QR_ADDR_LEN]; /* who may claim */
    qr_u256_t amount;               /* wei */
} qr_settlement_t;

/* The leaf hash of a settlement record (see above). */
void qr_settlement_leaf(const qr_settlement_t *rec, uint8_t out[32]);
/* keccak256 of the sorted pair a, b. */
void qr_merkle_hash_pair(const uint8_t a[32], const uint8_t b[32], uint8_t out[32]);

/* Builds the tree over n >= 1 leaves (copied).  Returns the tree (caller
 * owns) or NULL for n == 0 or no memory. */
qr_merkle_t *qr_merkle_new(const uint8_t (*leaves)[32], size_t n);
/* NULL-safe, nulls *self_p. */
void qr_merkle_destroy(qr_merkle_t **self_p);
/* The root (a single leaf is its own root). */
void qr_merkle_root(const qr_merkle_t *self, uint8_t out[32]);
size_t qr_merkle_leaf_count(const qr_merkle_t *self);
/* Writes the proof of leaf index into proof (room for QR_MERKLE_MAX_DEPTH
 * nodes) and returns its length; returns -1 for an index out of range. */
int qr_merkle_proof(const qr_merkle_t *self, size_t index, uint8_t (*proof)[32]);
/* True when leaf with proof hashes up to root. */
int qr_merkle_verify(const uint8_t leaf[32], const uint8_t (*proof)[32], size_t n,
                     const uint8_t root[32]);

#endif
