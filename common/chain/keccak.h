/* Keccak-256 as Ethereum uses it.
 *
 * Ethereum fixed its hash before NIST finished SHA-3, so it pads with the
 * original Keccak domain byte 0x01, not FIPS 202's 0x06: keccak256("") is
 * c5d24601..., not SHA3-256's a7ffc6f8....  Everything on chain (addresses,
 * selectors, transaction hashes, Merkle nodes) uses this variant.
 *
 * The state is embedded by value; streaming: init, update any number of
 * times, final.  Not thread-safe per state; separate states are independent. */
#ifndef QR_CHAIN_KECCAK_H
#define QR_CHAIN_KECCAK_H

#include <stddef.h>
#include <stdint.h>

#define QR_KECCAK256_LEN 32
#define QR_KECCAK256_RATE 136 /* bytes absorbed per permutation (1600 - 2*256 bits) */

typedef struct {
    uint64_t st[25]; /* the 5x5 lanes */
    size_t pos;      /* bytes absorbed into the current block */
} qr_keccak_t;

void qr_keccak_init(qr_keccak_t *k);
void qr_keccak_update(qr_keccak_t *k, const void *data, size_t len);
/* Pads, writes the 32-byte digest to out and wipes the state. */
void qr_keccak_final(qr_keccak_t *k, uint8_t out[QR_KECCAK256_LEN]);
/* One-shot digest of len bytes at data. */
void qr_keccak256(const void *data, size_t len, uint8_t out[QR_KECCAK256_LEN]);

#endif
