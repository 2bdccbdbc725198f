/* Solidity contract ABI: calldata encoding and return-data decoding for the
 * types the Quarry contracts use.
 *
 * Arguments are a head of 32-byte slots, one per argument, then a tail.
 * Static types (uintN, address, bool, bytesN) sit in their slot: numbers and
 * addresses right-aligned, bytesN left-aligned, zero-padded.  A dynamic type
 * (bytes, string, T[]) puts in its slot the byte offset of its data from the
 * start of the arguments, and the data goes in the tail: a length word, then
 * the bytes padded to 32 (bytes/string) or one slot per element (arrays of
 * static elements).  Calldata is the 4-byte selector, the first bytes of
 * keccak256 of the canonical signature ("transfer(address,uint256)"), then
 * the arguments.
 *
 * Supported: uint256/uintN, address, bool, bytes32 and shorter bytesN,
 * bytes, string, and one-dimensional arrays of 32-byte elements (bytes32[],
 * uint256[]); no tuples or nested dynamic arrays, which the contract avoids.
 *
 * The encoder is embedded by value and zero-initialised; its allocation
 * failures are sticky and reported by qr_abi_enc_finish().  The decoder reads
 * the head slots in order and checks every offset and length against the
 * data it was given, so a short or hostile reply gives an error, never a read
 * out of bounds; the first failure sticks with its message. */
#ifndef QR_CHAIN_ABI_H
#define QR_CHAIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "ethutil.h"

#define QR_ABI_WORD 32

/* The 4-byte selector of a canonical signature such as "baz(uint32,bool)". */
void qr_abi_selector(const char *signature, uint8_t out[4]);

typedef struct {
    uint8_t selector[4];
    int has_selector;
    uint8_t *head; /* one 32-byte slot per argument */
    size_t head_len, head_cap;
    uint8_t *tail; /* dynamic data, offsets relative to the tail start */
    size_t tail_len, tail_cap;
    size_t *patch; /* head offsets of slots holding a tail offset to rebase */
    size_t npatch, patch_cap;
    int failed;
} qr_abi_enc_t;

/* Starts calldata for signature, or bare arguments (constructor arguments,
 * return values) when signature is NULL. */
void qr_abi_enc_init(qr_abi_enc_t *e, const char *signature);
void qr_abi_put_uint256(qr_abi_enc_t *e, const qr_u256_t *v);
/* Any uintN up to 64 bits (uint64, uint32...) encodes the same way. */
void qr_abi_put_uint(qr_abi_enc_t *e, uint64_t v);
void qr_abi_put_address(qr_abi_enc_t *e, const uint8_t addr[QR_ADDR_LEN]);
void qr_abi_put_bool(qr_abi_enc_t *e, int v);
void qr_abi_put_bytes32(qr_abi_enc_t *e, const uint8_t b[32]);
/* bytesN for n <= 32, left-aligned. */
void qr_abi_put_fixed_bytes(qr_abi_enc_t *e, const void *b, size_t n);
/* bytes or string (same encoding; a string is its UTF-8 bytes). */
void qr_abi_put_bytes(qr_abi_enc_t *e, const void *b, size_t n);
/* bytes32[] with n elements of 32 bytes each, contiguous at items. */
void qr_abi_put_bytes32_array(qr_abi_enc_t *e, const uint8_t (*items)[32], size_t n);
/* uint256[] (also uintN[] with values widened to u256). */
void qr_abi_put_uint256_array(qr_abi_enc_t *e, const qr_u256_t *items, size_t n);
/* Concatenates selector, head and tail into a fresh malloc'd buffer.
 * Returns 0, or -1 after an allocation failure (nothing in *out).  The
 * encoder is left intact; free it with qr_abi_enc_free(). */
int qr_abi_enc_finish(qr_abi_enc_t *e, uint8_t **out, size_t *len);
void qr_abi_enc_free(qr_abi_enc_t *e);

typedef struct {
    const uint8_t *p; /* the data (not owned) */
    size_t len;
    size_t slot;   /* next head slot to read */
    int failed;    /* a read failed; later reads fail too */
    char err[160]; /* the first failure */
} qr_abi_dec_t;

/* Starts reading the head of p (return data or arguments without a
 * selector). */
void qr_abi_dec_init(qr_abi_dec_t *d, const uint8_t *p, size_t len);
/* Each reads the next slot.  Return 0, or -1 with the reason in d->err. */
int qr_abi_get_uint256(qr_abi_dec_t *d, qr_u256_t *out);
/* A uintN slot that must fit 64 bits (uint64 and narrower). */
int qr_abi_get_uint64(qr_abi_dec_t *d, uint64_t *out);
/* An address slot: the 12 high bytes must be zero. */
int qr_abi_get_address(qr_abi_dec_t *d, uint8_t out[QR_ADDR_LEN]);
/* A bool slot: exactly 0 or 1. */
int qr_abi_get_bool(qr_abi_dec_t *d, int *out);
int qr_abi_get_bytes32(qr_abi_dec_t *d, uint8_t out[32]);
/* bytes or string: *p points into the data (not NUL-terminated). */
int qr_abi_get_bytes(qr_abi_dec_t *d, const uint8_t **p, size_t *n);
/* bytes32[] or uint256[]: *items points at n contiguous 32-byte words in the
 * data. */
int qr_abi_get_word_array(qr_abi_dec_t *d, const uint8_t **items, size_t *n);

/* Describes revert data from eth_call or a receipt into out: the message of
 * Error(string), the code of Panic(uint256), or the 4-byte selector of a
 * custom error ("custom error 0x1234abcd"). */
void qr_abi_revert_reason(const uint8_t *data, size_t len, char *out, size_t outlen);

#endif
