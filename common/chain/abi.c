/* Contract ABI encoder and bounds-checked decoder; see abi.h. */
#include "abi.h"
#include "keccak.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qr_abi_selector(const char *signature, uint8_t out[4])
{
    uint8_t h[32];
    qr_keccak256(signature, strlen(signature), h);
    memcpy(out, h, 4);
}

static int s_grow(qr_abi_enc_t *e, uint8_t **buf, size_t *cap, size_t need)
{
    if (e->failed)
        return -1;
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 256;
    while (ncap < need)
        ncap *= 2;
    uint8_t *nb = realloc(*buf, ncap);
    if (!nb) {
        e->failed = 1;
        return -1;
    }
    *buf = nb;
    *cap = ncap;
    return 0;
}

/* Appends one zeroed slot to the head and returns it, NULL after a
 * failure. */
static uint8_t *s_head_slot(qr_abi_enc_t *e)
{
    if (s_grow(e, &e->head, &e->head_cap, e->head_len + QR_ABI_WORD) < 0)
        return NULL;
    uint8_t *slot = e->head + e->head_len;
    memset(slot, 0, QR_ABI_WORD);
    e->head_len += QR_ABI_WORD;
    return slot;
}

static uint8_t *s_tail_words(qr_abi_enc_t *e, size_t nwords)
{
    if (s_grow(e, &e->tail, &e->tail_cap, e->tail_len + nwords * QR_ABI_WORD) < 0)
        return NULL;
    uint8_t *p = e->tail + e->tail_len;
    memset(p, 0, nwords * QR_ABI_WORD);
    e->tail_len += nwords * QR_ABI_WORD;
    return p;
}

static void s_put_u64(uint8_t *slot, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        slot[31 - i] = (uint8_t)(v >> (8 * i));
}

/* Starts a dynamic argument: its head slot holds the tail offset, which
 * becomes absolute (head size added) only at finish, when the number of
 * arguments is known. */
static int s_dynamic_head(qr_abi_enc_t *e)
{
    if (e->npatch == e->patch_cap) {
        size_t ncap = e->patch_cap ? e->patch_cap * 2 : 8;
        size_t *np = e->failed ? NULL : realloc(e->patch, ncap * sizeof *np);
        if (!np) {
            e->failed = 1;
            return -1;
        }
        e->patch = np;
        e->patch_cap = ncap;
    }
    uint8_t *slot = s_head_slot(e);
    if (!slot)
        return -1;
    s_put_u64(slot, e->tail_len);
    e->patch[e->npatch++] = e->head_len - QR_ABI_WORD;
    return 0;
}

void qr_abi_enc_init(qr_abi_enc_t *e, const char *signature)
{
    memset(e, 0, sizeof *e);
    if (signature) {
        qr_abi_selector(signature, e->selector);
        e->has_selector = 1;
    }
}

void qr_abi_put_uint256(qr_abi_enc_t *e, const qr_u256_t *v)
{
    uint8_t *slot = s_head_slot(e);
    if (slot)
        memcpy(slot, v->b, 32);
}

void qr_abi_put_uint(qr_abi_enc_t *e, uint64_t v)
{
    uint8_t *slot = s_head_slot(e);
    if (slot)
        s_put_u64(slot, v);
}

void qr_abi_put_address(qr_abi_enc_t *e, const uint8_t addr[QR_ADDR_LEN])
{
    uint8_t *slot = s_head_slot(e);
    if (slot)
        memcpy(slot + 12, addr, QR_ADDR_LEN);
}

void qr_abi_put_bool(qr_abi_enc_t *e, int v)
{
    qr_abi_put_uint(e, v ? 1 : 0);
}

void qr_abi_put_bytes32(qr_abi_enc_t *e, const uint8_t b[32])
{
    qr_abi_put_fixed_bytes(e, b, 32);
}

void qr_abi_put_fixed_bytes(qr_abi_enc_t *e, const void *b, size_t n)
{
    if (n > QR_ABI_WORD) {
        e->failed = 1;
        return;
    }
    uint8_t *slot = s_head_slot(e);
    if (slot && n)
        memcpy(slot, b, n);
}

void qr_abi_put_bytes(qr_abi_enc_t *e, const void *b, size_t n)
{
    if (s_dynamic_head(e) < 0)
        return;
    uint8_t *t = s_tail_words(e, 1 + (n + QR_ABI_WORD - 1) / QR_ABI_WORD);
    if (!t)
        return;
    s_put_u64(t, n);
    if (n)
        memcpy(t + QR_ABI_WORD, b, n);
}

static void s_put_words(qr_abi_enc_t *e, const void *words, size_t n)
{
    if (s_dynamic_head(e) < 0)
        return;
    uint8_t *t = s_tail_words(e, 1 + n);
    if (!t)
        return;
    s_put_u64(t, n);
    if (n)
        memcpy(t + QR_ABI_WORD, words, n * QR_ABI_WORD);
}

void qr_abi_put_bytes32_array(qr_abi_enc_t *e, const uint8_t (*items)[32], size_t n)
{
    s_put_words(e, items, n);
}

void qr_abi_put_uint256_array(qr_abi_enc_t *e, const qr_u256_t *items, size_t n)
{
    /* qr_u256_t is exactly its 32 bytes, so an array of them is contiguous
     * words */
    _Static_assert(sizeof(qr_u256_t) == 32, "qr_u256_t must be a bare word");
    s_put_words(e, items, n);
}

int qr_abi_enc_finish(qr_abi_enc_t *e, uint8_t **out, size_t *len)
{
    if (e->failed)
        return -1;
    size_t sel = e->has_selector ? 4 : 0;
    size_t total = sel + e->head_len + e->tail_len;
    uint8_t *buf = malloc(total ? total : 1);
    if (!buf)
        return -1;
    memcpy(buf, e->selector, sel);
    if (e->head_len)
        memcpy(buf + sel, e->head, e->head_len);
    if (e->tail_len)
        memcpy(buf + sel + e->head_len, e->tail, e->tail_len);
    /* tail offsets were relative to the tail; the ABI counts from the first
     * head slot */
    for (size_t i = 0; i < e->npatch; i++) {
        uint8_t *slot = buf + sel + e->patch[i];
        uint64_t off = 0;
        for (int k = 24; k < 32; k++)
            off = (off << 8) | slot[k];
        s_put_u64(slot, off + e->head_len);
    }
    *out = buf;
    *len = total;
    return 0;
}

void qr_abi_enc_free(qr_abi_enc_t *e)
{
    free(e->head);
    free(e->tail);
    free(e->patch);
    memset(e, 0, sizeof *e);
}

void qr_abi_dec_init(qr_abi_dec_t *d, const uint8_t *p, size_t len)
{
    memset(d, 0, sizeof *d);
    d->p = p;
    d->len = len;
}

static int s_fail(qr_abi_dec_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int s_fail(qr_abi_dec_t *d, const char *fmt, ...)
{
    if (!d->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err, sizeof d->err, fmt, ap);
        va_end(ap);
        d->failed = 1;
    }
    return -1;
}

/* The word at byte offset off, or NULL when it does not fit the data. */
static const uint8_t *s_word_at(const qr_abi_dec_t *d, size_t off)
{
    if (off > d->len || d->len - off < QR_ABI_WORD)
        return NULL;
    return d->p + off;
}

/* The next head slot, or NULL (failed) when the data ends first. */
static const uint8_t *s_next(qr_abi_dec_t *d, const char *what)
{
    if (d->failed)
        return NULL;
    size_t off = d->slot * QR_ABI_WORD;
    const uint8_t *w = s_word_at(d, off);
    if (!w) {
        s_fail(d, "abi: data of %zu bytes ends before %s in slot %zu", d->len, what, d->slot);
        return NULL;
    }
    d->slot++;
    return w;
}

static int s_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* A word holding a length or offset, which must fit size_t comfortably. */
static int s_word_size(const uint8_t *w, size_t *out)
{
    if (!s_zero(w, 24))
        return -1;
    uint64_t v = 0;
    for (int i = 24; i < 32; i++)
        v = (v << 8) | w[i];
    if (v > SIZE_MAX / 2)
        return -1;
    *out = (size_t)v;
    return 0;
}

int qr_abi_get_uint256(qr_abi_dec_t *d, qr_u256_t *out)
{
    const uint8_t *w = s_next(d, "a uint256");
    if (!w)
        return -1;
    memcpy(out->b, w, 32);
    return 0;
}

int qr_abi_get_uint64(qr_abi_dec_t *d, uint64_t *out)
{
    const uint8_t *w = s_next(d, "a uint64");
    if (!w)
        return -1;
    if (!s_zero(w, 24))
        return s_fail(d, "abi: slot %zu does not fit a uint64", d->slot - 1);
    uint64_t v = 0;
    for (int i = 24; i < 32; i++)
        v = (v << 8) | w[i];
    *out = v;
    return 0;
}

int qr_abi_get_address(qr_abi_dec_t *d, uint8_t out[QR_ADDR_LEN])
{
    const uint8_t *w = s_next(d, "an address");
    if (!w)
        return -1;
    if (!s_zero(w, 12))
        return s_fail(d, "abi: slot %zu is not an address (high bytes set)", d->slot - 1);
    memcpy(out, w + 12, QR_ADDR_LEN);
    return 0;
}

int qr_abi_get_bool(qr_abi_dec_t *d, int *out)
{
    const uint8_t *w = s_next(d, "a bool");
    if (!w)
        return -1;
    if (!s_zero(w, 31) || w[31] > 1)
        return s_fail(d, "abi: slot %zu is not a bool (0 or 1)", d->slot - 1);
    *out = w[31];
    return 0;
}

int qr_abi_get_bytes32(qr_abi_dec_t *d, uint8_t out[32])
{
    const uint8_t *w = s_next(d, "a bytes32");
    if (!w)
        return -1;
    memcpy(out, w, 32);
    return 0;
}

/* Follows a dynamic slot: checks the offset and the length word and that
 * count units of unit bytes (rounded up to words) fit after it. */
static int s_dynamic(qr_abi_dec_t *d, const char *what, size_t unit, const uint8_t **data,
                     size_t *count)
{
    const uint8_t *w = s_next(d, what);
    if (!w)
        return -1;
    size_t slot = d->slot - 1;
    size_t off, n;
    if (s_word_size(w, &off) < 0 || off % QR_ABI_WORD)
        return s_fail(d, "abi: slot %zu: bad offset for %s", slot, what);
    const uint8_t *lw = s_word_at(d, off);
    if (!lw)
        return s_fail(d, "abi: slot %zu: offset %zu of %s is past the %zu-byte data", slot, off,
                      what, d->len);
    if (s_word_size(lw, &n) < 0)
        return s_fail(d, "abi: slot %zu: length of %s too large", slot, what);
    size_t avail = d->len - off - QR_ABI_WORD;
    if (n > avail / unit)
        return s_fail(d, "abi: slot %zu: %s of %zu x %zu bytes overruns the data (%zu left)", slot,
                      what, n, unit, avail);
    *data = lw + QR_ABI_WORD;
    *count = n;
    return 0;
}

int qr_abi_get_bytes(qr_abi_dec_t *d, const uint8_t **p, size_t *n)
{
    return s_dynamic(d, "bytes", 1, p, n);
}

int qr_abi_get_word_array(qr_abi_dec_t *d, const uint8_t **items, size_t *n)
{
    return s_dynamic(d, "an array", QR_ABI_WORD, items, n);
}

void qr_abi_revert_reason(const uint8_t *data, size_t len, char *out, size_t outlen)
{
    static const uint8_t error_sel[4] = {0x08, 0xc3, 0x79, 0xa0}; /* Error(string) */
    static const uint8_t panic_sel[4] = {0x4e, 0x48, 0x7b, 0x71}; /* Panic(uint256) */
    if (len == 0) {
        snprintf(out, outlen, "reverted without data");
        return;
    }
    if (len < 4) {
        snprintf(out, outlen, "reverted with %zu bytes of malformed data", len);
        return;
    }
    qr_abi_dec_t d;
    qr_abi_dec_init(&d, data + 4, len - 4);
    if (!memcmp(data, error_sel, 4)) {
        const uint8_t *msg;
        size_t n;
        if (qr_abi_get_bytes(&d, &msg, &n) == 0) {
            snprintf(out, outlen, "%.*s", (int)(n > 512 ? 512 : n), (const char *)msg);
            return;
        }
    } else if (!memcmp(data, panic_sel, 4)) {
        uint64_t code;
        if (qr_abi_get_uint64(&d, &code) == 0) {
            snprintf(out, outlen, "panic 0x%02llx", (unsigned long long)code);
            return;
        }
    }
    char sel[11];
    qr_hex_encode(data, 4, sel);
    snprintf(out, outlen, "custom error %s", sel);
}
