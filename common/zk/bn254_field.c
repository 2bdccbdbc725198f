/* Fp and Fr: conversions, exponentiation, inversion, sqrt; see bn254_field.h. */
#include "bn254_field.h"

#include <stdlib.h>
#include <string.h>

#if defined(QR_ZK_ADX_ASM)
#include <cpuid.h>

bool qr_zk_adx = false;

/* CPUID leaf 7, subleaf 0: EBX bit 8 BMI2 (mulx), bit 19 ADX (adcx, adox) */
static bool s_cpu_has_adx(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7)
        return false;
    __cpuid_count(7, 0, a, b, c, d);
    (void)a;
    (void)c;
    (void)d;
    return ((b >> 8) & 1) && ((b >> 19) & 1);
}

/* before main(), so before any thread: the flag is written once here and
 * read by every multiplication afterwards */
__attribute__((constructor)) static void s_fmul_init(void)
{
    const char *e = getenv("QUARRY_ZK_FMUL");
    qr_zk_adx = s_cpu_has_adx() && !(e && strcmp(e, "portable") == 0);
}

bool qr_zk_fmul_adx_available(void)
{
    return s_cpu_has_adx();
}

int qr_zk_fmul_select(bool adx)
{
    if (adx && !s_cpu_has_adx())
        return -1;
    qr_zk_adx = adx;
    return 0;
}

const char *qr_zk_fmul_name(void)
{
    return qr_zk_adx ? "mulx-adx" : "portable";
}
#else
bool qr_zk_fmul_adx_available(void)
{
    return false;
}

int qr_zk_fmul_select(bool adx)
{
    return adx ? -1 : 0;
}

const char *qr_zk_fmul_name(void)
{
    return "portable";
}
#endif

/* One description per field so every routine below is written once. */
typedef struct {
    uint64_t mod[4];
    uint64_t inv;
    uint64_t one[4];
    uint64_t r2[4];
    uint64_t mod_m2[4];
#if defined(QR_ZK_ADX_ASM)
    const qr_zk_adx_q_t *q; /* the same m and inv for fp_x86.h */
#endif
} s_field_t;

#if defined(QR_ZK_ADX_ASM)
#define S_ADXQ(q) , &q
#else
#define S_ADXQ(q)
#endif
static const s_field_t s_fp = {QR_FP_MOD, QR_FP_INV, QR_FP_ONE, QR_FP_R2,
                               QR_FP_MOD_M2 S_ADXQ(qr_zk_adx_fp_q)};
static const s_field_t s_fr = {QR_FR_MOD, QR_FR_INV, QR_FR_ONE, QR_FR_R2,
                               QR_FR_MOD_M2 S_ADXQ(qr_zk_adx_fr_q)};
#undef S_ADXQ

/* r = a b 2^-256 mod m, by whichever multiplication runs (bn254_field.h) */
static inline void s_mont(const s_field_t *f, uint64_t r[4], const uint64_t a[4],
                          const uint64_t b[4])
{
#if defined(QR_ZK_ADX_ASM)
    if (__builtin_expect(qr_zk_adx, 1)) {
        qr_zk_mont_mul_adx(r, a, b, f->q);
        return;
    }
#endif
    qr_zk_mont_mul(r, a, b, f->mod, f->inv);
}

static inline void s_mont_sqr(const s_field_t *f, uint64_t r[4], const uint64_t a[4])
{
#if defined(QR_ZK_ADX_ASM)
    if (__builtin_expect(qr_zk_adx, 1)) {
        qr_zk_mont_sqr_adx(r, a, f->q);
        return;
    }
#endif
    qr_zk_mont_mul(r, a, a, f->mod, f->inv);
}

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
    s_mont(f, r, v, f->r2);
    return 0;
}

static void s_to_canonical(const s_field_t *f, uint64_t v[4], const uint64_t a[4])
{
    const uint64_t one[4] = {1, 0, 0, 0};
    s_mont(f, v, a, one);
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
    s_mont(f, r, v, f->r2);
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

/* Fixed 4-bit window: a^0..a^15 once (14 multiplications), then per
 * nibble of e from the top four squarings and one multiplication by the
 * table entry (a^0 = 1 for a zero nibble): 334 operations for every e and
 * a, against 512 for bit-by-bit with masked multiplications; the table
 * index comes from e alone. */
static void s_pow(const s_field_t *f, uint64_t r[4], const uint64_t a[4], const uint64_t e[4])
{
    uint64_t tab[16][4], acc[4];
    memcpy(tab[0], f->one, sizeof tab[0]);
    memcpy(tab[1], a, sizeof tab[1]);
    for (int k = 2; k < 16; k++)
        s_mont(f, tab[k], tab[k - 1], tab[1]);
    memcpy(acc, f->one, sizeof acc);
    for (int i = 63; i >= 0; i--) {
        for (int k = 0; k < 4; k++)
            s_mont_sqr(f, acc, acc);
        unsigned d = (unsigned)(e[i / 16] >> (4 * (i % 16))) & 15;
        s_mont(f, acc, acc, tab[d]);
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
            s_mont(f, acc, acc, in[i]);
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
        s_mont(f, t, inv, pre[i]);
        s_mont(f, inv, inv, x);
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
