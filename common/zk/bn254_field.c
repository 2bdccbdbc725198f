/* Fp and Fr: conversions, exponentiation, inversion, sqrt; see bn254_field.h. */
#include "bn254_field.h"

#include <string.h>

/* One description per field so every routine below is written once. */
typedef struct {
    uint64_t mod[4];
    uint64_t inv;
    uint64_t one[4];
    uint64_t r2[4];
    uint64_t mod_m2[4];
} s_field_t;

static const s_field_t s_fp = {QR_FP_MOD, QR_FP_INV, QR_FP_ONE, QR_FP_R2, QR_FP_MOD_M2};
static const s_field_t s_fr = {QR_FR_MOD, QR_FR_INV, QR_FR_ONE, QR_FR_R2, QR_FR_MOD_M2};

/* limbs < mod, as an integer compare */
static bool s_lt(const uint64_t a[4], const uint64_t m[4])
{
    uint64_t b = 0;
    for (int i = 0; i < 4; i++)
        (void)qr_zk_sbb(a[i], m[i], &b);
    return b != 0;
}

static void s_load_be(uint64_t v[4], const uint8_t in[32])
{
    for (int i = 0; i < 4; i++) {
        uint64_t w = 0;
        for (int j = 0; j < 8; j++)
            w = (w << 8) | in[(3 - i) * 8 + j];
        v[i] = w;
    }
}

static void s_store_be(uint8_t out[32], const uint64_t v[4])
{
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++)
            out[(3 - i) * 8 + j] = (uint8_t)(v[i] >> (56 - 8 * j));
}

static void s_load_le(uint64_t v[4], const uint8_t in[32])
{
    for (int i = 0; i < 4; i++) {
        uint64_t w = 0;
        for (int j = 7; j >= 0; j--)
            w = (w << 8) | in[i * 8 + j];
        v[i] = w;
    }
}

static void s_store_le(uint8_t out[32], const uint64_t v[4])
{
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++)
            out[i * 8 + j] = (uint8_t)(v[i] >> (8 * j));
}

static int s_from_canonical(const s_field_t *f, uint64_t r[4], const uint64_t v[4])
{
    if (!s_lt(v, f->mod))
        return -1;
    qr_zk_mont_mul(r, v, f->r2, f->mod, f->inv);
    return 0;
}

static void s_to_canonical(const s_field_t *f, uint64_t v[4], const uint64_t a[4])
{
    const uint64_t one[4] = {1, 0, 0, 0};
    qr_zk_mont_mul(v, a, one, f->mod, f->inv);
}

static int s_from_be(const s_field_t *f, uint64_t r[4], const uint8_t in[32])
{
    uint64_t v[4];
    s_load_be(v, in);
    return s_from_canonical(f, r, v);
}

static void s_to_be(const s_field_t *f, uint8_t out[32], const uint64_t a[4])
{
    uint64_t v[4];
    s_to_canonical(f, v, a);
    s_store_be(out, v);
}

static int s_from_le(const s_field_t *f, uint64_t r[4], const uint8_t in[32])
{
    uint64_t v[4];
    s_load_le(v, in);
    return s_from_canonical(f, r, v);
}

static void s_to_le(const s_field_t *f, uint8_t out[32], const uint64_t a[4])
{
    uint64_t v[4];
    s_to_canonical(f, v, a);
    s_store_le(out, v);
}

static int s_from_mont_le(const s_field_t *f, uint64_t r[4], const uint8_t in[32])
{
    uint64_t v[4];
    s_load_le(v, in);
    if (!s_lt(v, f->mod))
        return -1;
    memcpy(r, v, sizeof v);
    return 0;
}

/* Decimal in: v = v * 10 + d on plain integers with an overflow check at
 * every step, so an over-long string cannot wrap around into range. */
static int s_from_dec(const s_field_t *f, uint64_t r[4], const char *s)
{
    if (!s || !*s)
        return -1;
    uint64_t v[4] = {0, 0, 0, 0};
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        uint64_t c = (uint64_t)(*s - '0');
        for (int i = 0; i < 4; i++)
            v[i] = qr_zk_mac(v[i], 10, c, 0, &c);
        if (c || !s_lt(v, f->mod))
            return -1;
    }
    qr_zk_mont_mul(r, v, f->r2, f->mod, f->inv);
    return 0;
}

/* Decimal out: repeated division by 10^19, the largest power of ten in a
 * limb, each giving 19 digits from the bottom. */
static char *s_to_dec(const s_field_t *f, char out[QR_ZK_DEC_MAX], const uint64_t a[4])
{
    const uint64_t base = 10000000000000000000ull;
    uint64_t v[4];
    char buf[4 * 19 + 4];
    size_t n = 0;
    s_to_canonical(f, v, a);
    do {
        uint64_t rem = 0;
        for (int i = 3; i >= 0; i--) {
            qr_zk_u128 cur = ((qr_zk_u128)rem << 64) | v[i];
            v[i] = (uint64_t)(cur / base);
            rem = (uint64_t)(cur % base);
        }
        bool last = qr_zk_is_zero(v);
        for (int k = 0; k < 19 && (!last || rem || k == 0); k++) {
            buf[n++] = (char)('0' + rem % 10);
            rem /= 10;
        }
    } while (!qr_zk_is_zero(v));
    for (size_t i = 0; i < n; i++)
        out[i] = buf[n - 1 - i];
    out[n] = '\0';
    return out;
}

static void s_pow(const s_field_t *f, uint64_t r[4], const uint64_t a[4], const uint64_t e[4])
{
    uint64_t acc[4], base[4], t[4];
    memcpy(acc, f->one, sizeof acc);
    memcpy(base, a, sizeof base);
    for (int i = 255; i >= 0; i--) {
        qr_zk_mont_sqr(acc, acc, f->mod, f->inv);
        qr_zk_mont_mul(t, acc, base, f->mod, f->inv);
        uint64_t bit = (e[i / 64] >> (i % 64)) & 1, mask = 0 - bit;
        for (int j = 0; j < 4; j++)
            acc[j] = (t[j] & mask) | (acc[j] & ~mask);
    }
    memcpy(r, acc, sizeof acc);
}

static void s_batch_inv(const s_field_t *f, uint64_t (*out)[4], const uint64_t (*in)[4], size_t n,
                        uint64_t (*pre)[4])
{
    if (n == 0)
        return;
    /* pre[i] = product of the non-zero in[0..i]; zeros are skipped so one
     * zero does not poison the whole batch */
    uint64_t acc[4];
    memcpy(acc, f->one, sizeof acc);
    for (size_t i = 0; i < n; i++) {
        memcpy(pre[i], acc, sizeof acc);
        if (!qr_zk_is_zero(in[i]))
            qr_zk_mont_mul(acc, acc, in[i], f->mod, f->inv);
    }
    uint64_t inv[4];
    s_pow(f, inv, acc, f->mod_m2);
    for (size_t i = n; i-- > 0;) {
        if (qr_zk_is_zero(in[i])) {
            memset(out[i], 0, sizeof out[i]);
            continue;
        }
        uint64_t x[4], t[4];
        memcpy(x, in[i], sizeof x); /* out may alias in */
        qr_zk_mont_mul(t, inv, pre[i], f->mod, f->inv);
        qr_zk_mont_mul(inv, inv, x, f->mod, f->inv);
        memcpy(out[i], t, sizeof t);
    }
}

#define QR_ZK_FIELD_IO(T, F, DESC)                                                                 \
    int F##_from_be32(T *r, const uint8_t in[32])                                                  \
    {                                                                                              \
        return s_from_be(&DESC, r->l, in);                                                         \
    }                                                                                              \
    void F##_to_be32(uint8_t out[32], const T *a)                                                  \
    {                                                                                              \
        s_to_be(&DESC, out, a->l);                                                                 \
    }                                                                                              \
    int F##_from_le32(T *r, const uint8_t in[32])                                                  \
    {                                                                                              \
        return s_from_le(&DESC, r->l, in);                                                         \
    }                                                                                              \
    void F##_to_le32(uint8_t out[32], const T *a)                                                  \
    {                                                                                              \
        s_to_le(&DESC, out, a->l);                                                                 \
    }                                                                                              \
    int F##_from_mont_le32(T *r, const uint8_t in[32])                                             \
    {                                                                                              \
        return s_from_mont_le(&DESC, r->l, in);                                                    \
    }                                                                                              \
    void F##_to_mont_le32(uint8_t out[32], const T *a)                                             \
    {                                                                                              \
        s_store_le(out, a->l);                                                                     \
    }                                                                                              \
    int F##_from_dec(T *r, const char *s)                                                          \
    {                                                                                              \
        return s_from_dec(&DESC, r->l, s);                                                         \
    }                                                                                              \
    char *F##_to_dec(char out[QR_ZK_DEC_MAX], const T *a)                                          \
    {                                                                                              \
        return s_to_dec(&DESC, out, a->l);                                                         \
    }                                                                                              \
    void F##_pow(T *r, const T *a, const uint64_t e[4])                                            \
    {                                                                                              \
        s_pow(&DESC, r->l, a->l, e);                                                               \
    }                                                                                              \
    void F##_inv(T *r, const T *a)                                                                 \
    {                                                                                              \
        s_pow(&DESC, r->l, a->l, DESC.mod_m2);                                                     \
    }                                                                                              \
    void F##_batch_inv(T *out, const T *in, size_t n, T *scratch)                                  \
    {                                                                                              \
        s_batch_inv(&DESC, (uint64_t(*)[4])out, (const uint64_t(*)[4])in, n,                       \
                    (uint64_t(*)[4])scratch);                                                      \
    }

QR_ZK_FIELD_IO(qr_fp_t, qr_fp, s_fp)
QR_ZK_FIELD_IO(qr_fr_t, qr_fr, s_fr)

int qr_fp_legendre(const qr_fp_t *a)
{
    static const uint64_t euler[4] = QR_FP_EULER_EXP;
    if (qr_fp_is_zero(a))
        return 0;
    qr_fp_t t;
    qr_fp_pow(&t, a, euler);
    return qr_fp_is_one(&t) ? 1 : -1;
}

bool qr_fp_sqrt(qr_fp_t *r, const qr_fp_t *a)
{
    static const uint64_t e[4] = QR_FP_SQRT_EXP;
    qr_fp_t s, chk;
    qr_fp_pow(&s, a, e);
    /* a^((p+1)/4) squares back to a exactly when a is a square */
    qr_fp_sqr(&chk, &s);
    if (!qr_fp_eq(&chk, a))
        return false;
    *r = s;
    return true;
}
