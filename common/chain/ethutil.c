/* u256 words, hex text and EIP-55 addresses; see ethutil.h. */
#include "ethutil.h"
#include "keccak.h"

#include <stdlib.h>
#include <string.h>

qr_u256_t qr_u256_from_u64(uint64_t v)
{
    qr_u256_t r = {{0}};
    for (int i = 0; i < 8; i++)
        r.b[31 - i] = (uint8_t)(v >> (8 * i));
    return r;
}

int qr_u256_to_u64(const qr_u256_t *v, uint64_t *out)
{
    for (int i = 0; i < 24; i++)
        if (v->b[i])
            return -1;
    uint64_t x = 0;
    for (int i = 24; i < 32; i++)
        x = (x << 8) | v->b[i];
    *out = x;
    return 0;
}

int qr_u256_is_zero(const qr_u256_t *v)
{
    for (int i = 0; i < 32; i++)
        if (v->b[i])
            return 0;
    return 1;
}

int qr_u256_cmp(const qr_u256_t *a, const qr_u256_t *b)
{
    int c = memcmp(a->b, b->b, 32);
    return (c > 0) - (c < 0);
}

int qr_u256_add(const qr_u256_t *a, const qr_u256_t *b, qr_u256_t *out)
{
    unsigned carry = 0;
    for (int i = 31; i >= 0; i--) {
        unsigned s = (unsigned)a->b[i] + b->b[i] + carry;
        out->b[i] = (uint8_t)s;
        carry = s >> 8;
    }
    return carry ? -1 : 0;
}

int qr_u256_sub(const qr_u256_t *a, const qr_u256_t *b, qr_u256_t *out)
{
    int borrow = 0;
    for (int i = 31; i >= 0; i--) {
        int d = (int)a->b[i] - b->b[i] - borrow;
        borrow = d < 0;
        out->b[i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
    return borrow ? -1 : 0;
}

int qr_u256_mul_small(const qr_u256_t *a, uint32_t m, qr_u256_t *out)
{
    uint64_t carry = 0;
    for (int i = 31; i >= 0; i--) {
        uint64_t p = (uint64_t)a->b[i] * m + carry;
        out->b[i] = (uint8_t)p;
        carry = p >> 8;
    }
    return carry ? -1 : 0;
}

void qr_u256_to_dec(const qr_u256_t *v, char *out, size_t outlen)
{
    /* repeated division by ten of a copy; 78 digits at most */
    uint8_t n[32];
    char digits[80];
    size_t nd = 0;
    memcpy(n, v->b, 32);
    do {
        unsigned rem = 0;
        int nonzero = 0;
        for (int i = 0; i < 32; i++) {
            unsigned cur = (rem << 8) | n[i];
            n[i] = (uint8_t)(cur / 10);
            rem = cur % 10;
            nonzero |= n[i];
        }
        digits[nd++] = (char)('0' + rem);
        if (!nonzero)
            break;
    } while (nd < sizeof digits);
    size_t k = 0;
    if (!outlen)
        return;
    while (nd && k + 1 < outlen)
        out[k++] = digits[--nd];
    out[k] = '\0';
}

static const char s_hexdig[] = "0123456789abcdef";

static int s_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static const char *s_skip0x(const char *s)
{
    return (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? s + 2 : s;
}

void qr_hex_encode(const void *p, size_t n, char *out)
{
    const uint8_t *b = p;
    *out++ = '0';
    *out++ = 'x';
    for (size_t i = 0; i < n; i++) {
        *out++ = s_hexdig[b[i] >> 4];
        *out++ = s_hexdig[b[i] & 15];
    }
    *out = '\0';
}

long qr_hex_decode(const char *s, uint8_t *out, size_t n)
{
    s = s_skip0x(s);
    size_t len = strlen(s);
    if (len % 2 || len / 2 > n)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = s_nibble(s[2 * i]), lo = s_nibble(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(len / 2);
}

int qr_hex_decode_exact(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s_skip0x(s)) != 2 * n)
        return -1;
    return qr_hex_decode(s, out, n) == (long)n ? 0 : -1;
}

int qr_hex_decode_alloc(const char *s, uint8_t **out, size_t *len)
{
    size_t n = strlen(s_skip0x(s)) / 2;
    uint8_t *buf = NULL;
    if (n && !(buf = malloc(n)))
        return -1;
    if (qr_hex_decode(s, buf, n) != (long)n) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

int qr_quantity_to_u256(const char *s, qr_u256_t *out)
{
    if (!(s[0] == '0' && (s[1] == 'x' || s[1] == 'X')))
        return -1;
    s += 2;
    while (s[0] == '0' && s[1])
        s++;
    size_t len = strlen(s);
    if (!len || len > 64)
        return -1;
    qr_u256_t r = {{0}};
    for (size_t i = 0; i < len; i++) {
        int d = s_nibble(s[len - 1 - i]);
        if (d < 0)
            return -1;
        r.b[31 - i / 2] |= (uint8_t)(i % 2 ? d << 4 : d);
    }
    *out = r;
    return 0;
}

int qr_quantity_to_u64(const char *s, uint64_t *out)
{
    qr_u256_t v;
    if (qr_quantity_to_u256(s, &v) < 0)
        return -1;
    return qr_u256_to_u64(&v, out);
}

void qr_quantity_from_u256(const qr_u256_t *v, char *out)
{
    char full[67];
    qr_hex_encode(v->b, 32, full);
    const char *d = full + 2;
    while (d[0] == '0' && d[1])
        d++;
    out[0] = '0';
    out[1] = 'x';
    strcpy(out + 2, d);
}

void qr_quantity_from_u64(uint64_t v, char *out)
{
    qr_u256_t w = qr_u256_from_u64(v);
    char full[67];
    qr_quantity_from_u256(&w, full);
    memcpy(out, full, strlen(full) + 1); /* "0x", at most 16 digits, NUL */
}

/* EIP-55: a letter digit is upper case when the matching nibble of the
 * keccak of the lower-case hex (without 0x) is 8 or more. */
static void s_checksum_case(char *hex40)
{
    uint8_t h[32];
    qr_keccak256(hex40, 40, h);
    for (int i = 0; i < 40; i++) {
        int nib = (i % 2) ? h[i / 2] & 15 : h[i / 2] >> 4;
        if (hex40[i] >= 'a' && hex40[i] <= 'f' && nib >= 8)
            hex40[i] = (char)(hex40[i] - 'a' + 'A');
    }
}

void qr_address_to_text(const uint8_t addr[QR_ADDR_LEN], char *out)
{
    qr_hex_encode(addr, QR_ADDR_LEN, out);
    s_checksum_case(out + 2);
}

int qr_address_from_text(const char *s, uint8_t addr[QR_ADDR_LEN])
{
    if (!(s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) || strlen(s) != 42)
        return -1;
    uint8_t a[QR_ADDR_LEN];
    if (qr_hex_decode_exact(s, a, QR_ADDR_LEN) < 0)
        return -1;
    int lower = 0, upper = 0;
    for (int i = 2; i < 42; i++) {
        lower |= (s[i] >= 'a' && s[i] <= 'f');
        upper |= (s[i] >= 'A' && s[i] <= 'F');
    }
    if (lower && upper) {
        char want[43];
        qr_address_to_text(a, want);
        if (strcmp(want + 2, s + 2) != 0)
            return -1;
    }
    memcpy(addr, a, QR_ADDR_LEN);
    return 0;
}

void qr_wipe(void *p, size_t n)
{
    /* a volatile pointer keeps the stores from being proven dead */
    volatile uint8_t *v = p;
    while (n--)
        *v++ = 0;
}
