/* Small value types and text forms shared by the chain modules.
 *
 * Ethereum numbers above 64 bits (wei amounts, fees) are kept as 32-byte
 * big-endian words, which is how both the ABI and RLP lay them out, so no
 * module needs bignum arithmetic.  Hex text is what JSON-RPC speaks: data is
 * "0x" + two digits per byte, quantities are "0x" + digits without leading
 * zeros ("0x0" for zero). */
#ifndef QR_CHAIN_ETHUTIL_H
#define QR_CHAIN_ETHUTIL_H

#include <stddef.h>
#include <stdint.h>

#define QR_ADDR_LEN 20
#define QR_HASH_LEN 32

/* A 256-bit unsigned integer, big-endian (b[31] is the least significant). */
typedef struct {
    uint8_t b[32];
} qr_u256_t;

/* v as a u256. */
qr_u256_t qr_u256_from_u64(uint64_t v);
/* Stores the value in *out and returns 0, or -1 when it exceeds 2^64-1. */
int qr_u256_to_u64(const qr_u256_t *v, uint64_t *out);
/* True when v is zero. */
int qr_u256_is_zero(const qr_u256_t *v);
/* -1, 0 or 1 as a is below, equal to or above b. */
int qr_u256_cmp(const qr_u256_t *a, const qr_u256_t *b);
/* *out = a + b; returns -1 (and leaves *out wrapped) on overflow. */
int qr_u256_add(const qr_u256_t *a, const qr_u256_t *b, qr_u256_t *out);
/* *out = a - b; returns -1 (and leaves *out wrapped) when b > a. */
int qr_u256_sub(const qr_u256_t *a, const qr_u256_t *b, qr_u256_t *out);
/* *out = a * m for a small multiplier; returns -1 on overflow. */
int qr_u256_mul_small(const qr_u256_t *a, uint32_t m, qr_u256_t *out);
/* Writes v in decimal into out (at least 79 bytes for any value). */
void qr_u256_to_dec(const qr_u256_t *v, char *out, size_t outlen);

/* Writes "0x" and two lower-case digits per byte of p, NUL-terminated, into
 * out (2 * n + 3 bytes). */
void qr_hex_encode(const void *p, size_t n, char *out);
/* Hex text with or without "0x", an even number of digits, into out (n bytes
 * at most).  Returns the number of bytes, or -1 for bad text or too long. */
long qr_hex_decode(const char *s, uint8_t *out, size_t n);
/* Like qr_hex_decode but exactly n bytes; returns 0 or -1. */
int qr_hex_decode_exact(const char *s, uint8_t *out, size_t n);
/* Hex text into a fresh malloc'd buffer; returns 0, or -1 for bad text or no
 * memory.  "0x" gives a NULL buffer of length 0. */
int qr_hex_decode_alloc(const char *s, uint8_t **out, size_t *len);

/* A JSON-RPC quantity ("0x1a") into *out.  Accepts upper or lower case and
 * tolerates leading zeros, refuses an empty or non-hex body and anything over
 * 64 (u64) or 256 (u256) bits.  Return 0 or -1. */
int qr_quantity_to_u64(const char *s, uint64_t *out);
int qr_quantity_to_u256(const char *s, qr_u256_t *out);
/* v as a quantity into out (19 bytes for u64, 67 for u256). */
void qr_quantity_from_u64(uint64_t v, char *out);
void qr_quantity_from_u256(const qr_u256_t *v, char *out);

/* An address as EIP-55 mixed-case checksummed text, "0x" + 40 digits, into
 * out (43 bytes). */
void qr_address_to_text(const uint8_t addr[QR_ADDR_LEN], char *out);
/* Parses "0x" + 40 hex digits.  All-lower and all-upper text is accepted as
 * is; mixed case must carry a valid EIP-55 checksum, so a mistyped address
 * is caught.  Returns 0 or -1. */
int qr_address_from_text(const char *s, uint8_t addr[QR_ADDR_LEN]);

/* Overwrites n bytes of secret material in a way the compiler may not drop. */
void qr_wipe(void *p, size_t n);

#endif
