/* EIP-1559 (type 2) transactions and the secp256k1 keys that sign them.
 *
 * A type-2 transaction is 0x02 || rlp([chain_id, nonce,
 * max_priority_fee_per_gas, max_fee_per_gas, gas_limit, to, value, data,
 * access_list, y_parity, r, s]).  The signature covers keccak256 of the same
 * with the last three fields left out; the transaction hash is keccak256 of
 * the whole raw bytes.  The access list is always empty here: Quarry's
 * contract calls touch few slots and a list would cost more than it saves.
 *
 * Signatures are deterministic (RFC 6979 nonces, libsecp256k1's default) and
 * low-s, so the same transaction signs to the same bytes every time; retrying
 * a send after a timeout therefore cannot put two different transactions with
 * one nonce in flight.
 *
 * An Ethereum key is a 32-byte secp256k1 secret; its address is the last 20
 * bytes of keccak256 of the uncompressed public key without its 0x04 prefix.
 * qr_ethkey_t owns a copy of the secret, wipes it on destroy and never prints
 * it: error messages name the file, not its contents. */
#ifndef QR_CHAIN_TX_H
#define QR_CHAIN_TX_H

#include <stddef.h>
#include <stdint.h>

#include "ethutil.h"

typedef struct qr_ethkey qr_ethkey_t;

/* A key from 32 secret bytes.  Returns the key (caller owns) or NULL with a
 * message in err (not a valid secp256k1 secret, no memory). */
qr_ethkey_t *qr_ethkey_new(const uint8_t secret[32], char *err, size_t errlen);
/* A key from a file holding the secret as 64 hex digits (an optional "0x",
 * surrounding whitespace and one trailing newline allowed).  The file must
 * not be readable by group or others.  Returns the key or NULL with err. */
qr_ethkey_t *qr_ethkey_load(const char *path, char *err, size_t errlen);
/* Wipes the secret and frees; NULL-safe, nulls *self_p. */
void qr_ethkey_destroy(qr_ethkey_t **self_p);
/* The key's 20-byte address. */
const uint8_t *qr_ethkey_address(const qr_ethkey_t *self);
/* Signs a 32-byte digest: r and s (32 bytes each) and the recovery id
 * (y parity, 0 or 1).  Returns 0 or -1. */
int qr_ethkey_sign(const qr_ethkey_t *self, const uint8_t digest[32], uint8_t r[32], uint8_t s[32],
                   int *y_parity);

/* The unsigned fields of a type-2 transaction.  data is borrowed. */
typedef struct {
    uint64_t chain_id;
    uint64_t nonce;
    qr_u256_t max_priority_fee; /* wei per gas offered to the block builder */
    qr_u256_t max_fee;          /* wei per gas at most, base fee included */
    uint64_t gas;               /* gas limit */
    int has_to;                 /* 0: contract creation (to is empty) */
    uint8_t to[QR_ADDR_LEN];
    qr_u256_t value; /* wei sent */
    const uint8_t *data;
    size_t data_len;
} qr_tx_t;

/* A signed transaction, ready for eth_sendRawTransaction. */
typedef struct {
    uint8_t *raw; /* 0x02 || rlp(...), malloc'd */
    size_t raw_len;
    uint8_t hash[32]; /* keccak256(raw): the hash nodes and explorers show */
    uint8_t r[32];
    uint8_t s[32];
    int y_parity;
} qr_signed_tx_t;

/* keccak256(0x02 || rlp(unsigned fields)), what the key signs.  Returns 0
 * or -1 (no memory). */
int qr_tx_signing_hash(const qr_tx_t *tx, uint8_t hash[32]);
/* Signs tx with key into out.  Returns 0, or -1 with a message in err. */
int qr_tx_sign(const qr_tx_t *tx, const qr_ethkey_t *key, qr_signed_tx_t *out, char *err,
               size_t errlen);
/* Frees out->raw and clears out. */
void qr_signed_tx_free(qr_signed_tx_t *out);

/* Parses raw type-2 bytes (strict RLP) and recovers the sender from the
 * signature.  tx->data points into raw.  Returns 0, or -1 with a message in
 * err (not type 2, malformed, a non-empty access list, a bad signature). */
int qr_tx_decode(const uint8_t *raw, size_t len, qr_tx_t *tx, uint8_t sender[QR_ADDR_LEN],
                 char *err, size_t errlen);

/* The address a contract created by sender with nonce will have:
 * keccak256(rlp([sender, nonce]))[12:]. */
void qr_contract_address(const uint8_t sender[QR_ADDR_LEN], uint64_t nonce,
                         uint8_t out[QR_ADDR_LEN]);

#endif
