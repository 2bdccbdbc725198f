/* RLP encoder and strict decoder; see rlp.h. */
#include "rlp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_reserve(qr_rlp_t *r, size_t extra)
{
    if (r->failed)
        return -1;
    if (r->len + extra <= r->cap)
        return 0;
    size_t ncap = r->cap ? r->cap : 64;
    while (ncap < r->len + extra)
        ncap *= 2;
    uint8_t *np = realloc(r->p, ncap);
    if (!np) {
        r->failed = 1;
        return -1;
    }
    r->p = np;
    r->cap = ncap;
    return 0;
}

/* Writes the header for a payload of n bytes (base 0x80 strings, 0xc0
 * lists) into hdr; returns its length (1-9). */
static size_t s_header(uint8_t base, size_t n, uint8_t hdr[9])
{
    if (n <= 55) {
        hdr[0] = (uint8_t)(base + n);
        return 1;
    }
    uint8_t be[8];
    size_t nb = 0;
    for (size_t v = n; v; v >>= 8)
        be[nb++] = (uint8_t)v;
    hdr[0] = (uint8_t)(base + 55 + nb);
    for (size_t i = 0; i < nb; i++)
        hdr[1 + i] = be[nb - 1 - i];
    return 1 + nb;
}

void qr_rlp_raw(qr_rlp_t *r, const void *b, size_t n)
{
    if (s_reserve(r, n) < 0)
        return;
    if (n)
        memcpy(r->p + r->len, b, n);
    r->len += n;
}

void qr_rlp_bytes(qr_rlp_t *r, const void *b, size_t n)
{
    const uint8_t *bytes = b;
    if (n == 1 && bytes[0] < 0x80) {
        qr_rlp_raw(r, bytes, 1);
        return;
    }
    uint8_t hdr[9];
    size_t h = s_header(0x80, n, hdr);
    qr_rlp_raw(r, hdr, h);
    qr_rlp_raw(r, b, n);
}

void qr_rlp_uint(qr_rlp_t *r, uint64_t v)
{
    qr_u256_t w = qr_u256_from_u64(v);
    qr_rlp_u256(r, &w);
}

void qr_rlp_u256(qr_rlp_t *r, const qr_u256_t *v)
{
    size_t i = 0;
    while (i < 32 && !v->b[i])
        i++;
    qr_rlp_bytes(r, v->b + i, 32 - i);
}

void qr_rlp_list_begin(qr_rlp_t *r)
{
    if (r->depth == QR_RLP_MAX_DEPTH) {
        r->failed = 1;
        return;
    }
    r->open[r->depth++] = r->len;
}

void qr_rlp_list_end(qr_rlp_t *r)
{
    if (r->depth == 0) {
        r->failed = 1;
        return;
    }
    size_t start = r->open[--r->depth];
    if (r->failed)
        return;
    uint8_t hdr[9];
    size_t payload = r->len - start;
    size_t h = s_header(0xc0, payload, hdr);
    if (s_reserve(r, h) < 0)
        return;
    /* the payload is already written; slide it up to make room */
    memmove(r->p + start + h, r->p + start, payload);
    memcpy(r->p + start, hdr, h);
    r->len += h;
}

int qr_rlp_finish(const qr_rlp_t *r)
{
    return (r->failed || r->depth) ? -1 : 0;
}

void qr_rlp_free(qr_rlp_t *r)
{
    free(r->p);
    memset(r, 0, sizeof *r);
}

int qr_rlp_decode(const uint8_t *buf, size_t len, qr_rlp_item_t *item, char *err, size_t errlen)
{
    if (len == 0) {
        snprintf(err, errlen, "rlp: empty input");
        return -1;
    }
    uint8_t b0 = buf[0];
    size_t hdr, n;
    int is_list = b0 >= 0xc0;
    if (b0 < 0x80) {
        item->is_list = 0;
        item->p = buf;
        item->len = 1;
        item->enc_len = 1;
        return 0;
    }
    uint8_t base = is_list ? 0xc0 : 0x80;
    if (b0 - base <= 55) {
        hdr = 1;
        n = (size_t)(b0 - base);
    } else {
        size_t nb = (size_t)(b0 - base - 55);
        if (len < 1 + nb) {
            snprintf(err, errlen, "rlp: truncated length (%zu length bytes, %zu left)", nb,
                     len - 1);
            return -1;
        }
        if (buf[1] == 0) {
            snprintf(err, errlen, "rlp: non-canonical length with a leading zero byte");
            return -1;
        }
        if (nb > sizeof(size_t)) {
            snprintf(err, errlen, "rlp: length of %zu bytes overflows", nb);
            return -1;
        }
        n = 0;
        for (size_t i = 0; i < nb; i++)
            n = (n << 8) | buf[1 + i];
        if (n <= 55) {
            snprintf(err, errlen, "rlp: non-canonical long form for a %zu-byte payload", n);
            return -1;
        }
        hdr = 1 + nb;
    }
    if (n > len - hdr) {
        snprintf(err, errlen, "rlp: %s of %zu bytes truncated (%zu left)",
                 is_list ? "list" : "string", n, len - hdr);
        return -1;
    }
    if (!is_list && n == 1 && buf[hdr] < 0x80) {
        snprintf(err, errlen, "rlp: non-canonical single byte 0x%02x wrapped as a string",
                 buf[hdr]);
        return -1;
    }
    item->is_list = is_list;
    item->p = buf + hdr;
    item->len = n;
    item->enc_len = hdr + n;
    return 0;
}

int qr_rlp_decode_all(const uint8_t *buf, size_t len, qr_rlp_item_t *item, char *err, size_t errlen)
{
    if (qr_rlp_decode(buf, len, item, err, errlen) < 0)
        return -1;
    if (item->enc_len != len) {
        snprintf(err, errlen, "rlp: %zu trailing bytes after the item", len - item->enc_len);
        return -1;
    }
    return 0;
}

int qr_rlp_iter_init(qr_rlp_iter_t *it, const qr_rlp_item_t *list, char *err, size_t errlen)
{
    if (!list->is_list) {
        snprintf(err, errlen, "rlp: expected a list, found a string");
        return -1;
    }
    it->p = list->p;
    it->len = list->len;
    it->pos = 0;
    return 0;
}

int qr_rlp_iter_next(qr_rlp_iter_t *it, qr_rlp_item_t *item, char *err, size_t errlen)
{
    if (it->pos == it->len)
        return 0;
    if (qr_rlp_decode(it->p + it->pos, it->len - it->pos, item, err, errlen) < 0)
        return -1;
    it->pos += item->enc_len;
    return 1;
}

static int s_int_bytes(const qr_rlp_item_t *item, size_t max, char *err, size_t errlen)
{
    if (item->is_list) {
        snprintf(err, errlen, "rlp: expected an integer, found a list");
        return -1;
    }
    if (item->len > max) {
        snprintf(err, errlen, "rlp: integer of %zu bytes exceeds %zu", item->len, max);
        return -1;
    }
    if (item->len && item->p[0] == 0) {
        snprintf(err, errlen, "rlp: integer with a leading zero byte");
        return -1;
    }
    return 0;
}

int qr_rlp_item_u64(const qr_rlp_item_t *item, uint64_t *out, char *err, size_t errlen)
{
    if (s_int_bytes(item, 8, err, errlen) < 0)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < item->len; i++)
        v = (v << 8) | item->p[i];
    *out = v;
    return 0;
}

int qr_rlp_item_u256(const qr_rlp_item_t *item, qr_u256_t *out, char *err, size_t errlen)
{
    if (s_int_bytes(item, 32, err, errlen) < 0)
        return -1;
    memset(out->b, 0, 32);
    if (item->len)
        memcpy(out->b + 32 - item->len, item->p, item->len);
    return 0;
}
