/* Recursive Length Prefix, Ethereum's serialisation (yellow paper, app. B).
 *
 * An item is a byte string or a list of items.  Encoding: one byte below
 * 0x80 is itself; a string of 0-55 bytes is 0x80+len then the bytes, longer
 * is 0xb7+len(len) then the big-endian length then the bytes; lists use 0xc0
 * and 0xf7 the same way over the concatenated encodings of their items.  An
 * integer is its big-endian bytes without leading zeros (0 is the empty
 * string, 0x80).
 *
 * The encoder appends into a growable buffer embedded by value (zero-
 * initialised is empty); lists nest with begin/end and the header is put in
 * front of the payload when the list ends.  An allocation failure is sticky
 * and reported by qr_rlp_finish(), so a builder needs no check per call.
 *
 * The decoder reads in place, without allocating, and accepts only the one
 * canonical encoding of each item: a single byte below 0x80 wrapped as a
 * string, a short length written in long form, a length with leading zero
 * bytes, or an integer with leading zeros is an error, because signatures
 * and hashes cover the bytes and two encodings of one transaction would have
 * two hashes. */
#ifndef QR_CHAIN_RLP_H
#define QR_CHAIN_RLP_H

#include <stddef.h>
#include <stdint.h>

#include "ethutil.h"

#define QR_RLP_MAX_DEPTH 16

typedef struct {
    uint8_t *p;                    /* encoded bytes */
    size_t len;                    /* used */
    size_t cap;                    /* allocated */
    size_t open[QR_RLP_MAX_DEPTH]; /* payload start of each open list */
    int depth;                     /* lists open */
    int failed;                    /* out of memory or unbalanced lists */
} qr_rlp_t;

/* Appends a byte string (n may be 0). */
void qr_rlp_bytes(qr_rlp_t *r, const void *b, size_t n);
/* Appends an unsigned integer. */
void qr_rlp_uint(qr_rlp_t *r, uint64_t v);
/* Appends a 256-bit unsigned integer. */
void qr_rlp_u256(qr_rlp_t *r, const qr_u256_t *v);
/* Opens a list; items appended until the matching end are its elements. */
void qr_rlp_list_begin(qr_rlp_t *r);
void qr_rlp_list_end(qr_rlp_t *r);
/* Appends bytes that already are an RLP encoding (a nested item built
 * elsewhere). */
void qr_rlp_raw(qr_rlp_t *r, const void *b, size_t n);
/* Returns 0 when the encoding is complete (r->p, r->len), or -1 after an
 * allocation failure or with lists left open. */
int qr_rlp_finish(const qr_rlp_t *r);
/* Frees the buffer and empties r. */
void qr_rlp_free(qr_rlp_t *r);

/* A decoded item: points into the input. */
typedef struct {
    int is_list;      /* 1 list, 0 byte string */
    const uint8_t *p; /* payload: the string's bytes or the list's items */
    size_t len;       /* payload length */
    size_t enc_len;   /* header + payload, bytes the item occupies */
} qr_rlp_item_t;

/* Decodes the item at the start of buf (len bytes).  Returns 0, or -1 with a
 * message in err (truncated, non-canonical, length overflow). */
int qr_rlp_decode(const uint8_t *buf, size_t len, qr_rlp_item_t *item, char *err, size_t errlen);
/* As qr_rlp_decode, and the item must fill buf exactly (no trailing bytes). */
int qr_rlp_decode_all(const uint8_t *buf, size_t len, qr_rlp_item_t *item, char *err,
                      size_t errlen);

/* Walks the elements of a list item. */
typedef struct {
    const uint8_t *p; /* the list's payload */
    size_t len;
    size_t pos; /* offset of the next element */
} qr_rlp_iter_t;

/* Starts at the first element of list; returns -1 (with err) when list is a
 * string. */
int qr_rlp_iter_init(qr_rlp_iter_t *it, const qr_rlp_item_t *list, char *err, size_t errlen);
/* Returns 1 with the next element in item, 0 at the end, -1 with err on a
 * malformed element. */
int qr_rlp_iter_next(qr_rlp_iter_t *it, qr_rlp_item_t *item, char *err, size_t errlen);

/* An item read as an integer: a string of at most 8 (u64) or 32 (u256)
 * bytes without leading zeros.  Return 0 or -1 with err. */
int qr_rlp_item_u64(const qr_rlp_item_t *item, uint64_t *out, char *err, size_t errlen);
int qr_rlp_item_u256(const qr_rlp_item_t *item, qr_u256_t *out, char *err, size_t errlen);

#endif
