/* G1 and G2 beyond the inline group law; see bn254_curve.h. */
#include "bn254_curve.h"

#include <string.h>

void qr_g1_generator(qr_g1_affine_t *r)
{
    qr_fp_from_u64(&r->x, 1);
    qr_fp_from_u64(&r->y, 2);
}

void qr_g2_generator(qr_g2_affine_t *r)
{
    static const qr_g2_affine_t gen = {QR_G2_GEN_X, QR_G2_GEN_Y};
    *r = gen;
}

void qr_g1_to_affine(qr_g1_affine_t *r, const qr_g1_t *a)
{
    if (qr_g1_is_inf(a)) {
        memset(r, 0, sizeof *r);
        return;
    }
    qr_fp_t zi, zi2, zi3;
    qr_fp_inv(&zi, &a->z);
    qr_fp_sqr(&zi2, &zi);
    qr_fp_mul(&zi3, &zi2, &zi);
    qr_fp_mul(&r->x, &a->x, &zi2);
    qr_fp_mul(&r->y, &a->y, &zi3);
}

void qr_g2_to_affine(qr_g2_affine_t *r, const qr_g2_t *a)
{
    if (qr_g2_is_inf(a)) {
        memset(r, 0, sizeof *r);
        return;
    }
    qr_fp2_t zi, zi2, zi3;
    qr_fp2_inv(&zi, &a->z);
    qr_fp2_sqr(&zi2, &zi);
    qr_fp2_mul(&zi3, &zi2, &zi);
    qr_fp2_mul(&r->x, &a->x, &zi2);
    qr_fp2_mul(&r->y, &a->y, &zi3);
}

/* X1 Z2^2 = X2 Z1^2 and Y1 Z2^3 = Y2 Z1^3 */
#define QR_ZK_CURVE_EQ(P, G, FT, F)                                                                \
    bool G##_eq(const P *a, const P *b)                                                            \
    {                                                                                              \
        bool ia = G##_is_inf(a), ib = G##_is_inf(b);                                               \
        if (ia || ib)                                                                              \
            return ia && ib;                                                                       \
        FT z1z1, z2z2, l, r;                                                                       \
        F##_sqr(&z1z1, &a->z);                                                                     \
        F##_sqr(&z2z2, &b->z);                                                                     \
        F##_mul(&l, &a->x, &z2z2);                                                                 \
        F##_mul(&r, &b->x, &z1z1);                                                                 \
        if (!F##_eq(&l, &r))                                                                       \
            return false;                                                                          \
        F##_mul(&z1z1, &z1z1, &a->z);                                                              \
        F##_mul(&z2z2, &z2z2, &b->z);                                                              \
        F##_mul(&l, &a->y, &z2z2);                                                                 \
        F##_mul(&r, &b->y, &z1z1);                                                                 \
        return F##_eq(&l, &r);                                                                     \
    }

QR_ZK_CURVE_EQ(qr_g1_t, qr_g1, qr_fp_t, qr_fp)
QR_ZK_CURVE_EQ(qr_g2_t, qr_g2, qr_fp2_t, qr_fp2)

bool qr_g1_affine_eq(const qr_g1_affine_t *a, const qr_g1_affine_t *b)
{
    return qr_fp_eq(&a->x, &b->x) && qr_fp_eq(&a->y, &b->y);
}

bool qr_g2_affine_eq(const qr_g2_affine_t *a, const qr_g2_affine_t *b)
{
    return qr_fp2_eq(&a->x, &b->x) && qr_fp2_eq(&a->y, &b->y);
}

bool qr_g1_affine_on_curve(const qr_g1_affine_t *a)
{
    if (qr_g1_affine_is_inf(a))
        return true;
    static const qr_fp_t b = {QR_FP_B3};
    qr_fp_t l, r;
    qr_fp_sqr(&l, &a->y);
    qr_fp_sqr(&r, &a->x);
    qr_fp_mul(&r, &r, &a->x);
    qr_fp_add(&r, &r, &b);
    return qr_fp_eq(&l, &r);
}

bool qr_g2_affine_on_curve(const qr_g2_affine_t *a)
{
    if (qr_g2_affine_is_inf(a))
        return true;
    static const qr_fp2_t b = QR_FP2_BTWIST;
    qr_fp2_t l, r;
    qr_fp2_sqr(&l, &a->y);
    qr_fp2_sqr(&r, &a->x);
    qr_fp2_mul(&r, &r, &a->x);
    qr_fp2_add(&r, &r, &b);
    return qr_fp2_eq(&l, &r);
}

void qr_g2_psi(qr_g2_t *r, const qr_g2_t *a)
{
    /* on Jacobian coordinates: x = X/Z^2 maps to conj(X)/conj(Z)^2 times
     * the constant, so conjugate all three and scale X and Y */
    static const qr_fp2_t cx = QR_FROB1_W2, cy = QR_FROB1_W3;
    qr_fp2_conj(&r->x, &a->x);
    qr_fp2_conj(&r->y, &a->y);
    qr_fp2_conj(&r->z, &a->z);
    qr_fp2_mul(&r->x, &r->x, &cx);
    qr_fp2_mul(&r->y, &r->y, &cy);
}

/* Fixed 4-bit window from the top: 15 table points, then per nibble four
 * doublings and at most one addition. */
#define QR_ZK_CURVE_MUL(P, G)                                                                      \
    void G##_mul(P *r, const P *a, const uint64_t k[4])                                            \
    {                                                                                              \
        P tab[16], acc;                                                                            \
        G##_set_inf(&tab[0]);                                                                      \
        tab[1] = *a;                                                                               \
        for (int i = 2; i < 16; i++) {                                                             \
            if (i & 1)                                                                             \
                G##_add(&tab[i], &tab[i - 1], a);                                                  \
            else                                                                                   \
                G##_dbl(&tab[i], &tab[i / 2]);                                                     \
        }                                                                                          \
        G##_set_inf(&acc);                                                                         \
        for (int n = 63; n >= 0; n--) {                                                            \
            if (!G##_is_inf(&acc))                                                                 \
                for (int d = 0; d < 4; d++)                                                        \
                    G##_dbl(&acc, &acc);                                                           \
            unsigned nib = (unsigned)(k[n / 16] >> ((n % 16) * 4)) & 15;                           \
            if (nib)                                                                               \
                G##_add(&acc, &acc, &tab[nib]);                                                    \
        }                                                                                          \
        *r = acc;                                                                                  \
    }

QR_ZK_CURVE_MUL(qr_g1_t, qr_g1)
QR_ZK_CURVE_MUL(qr_g2_t, qr_g2)

void qr_g1_mul_fr(qr_g1_t *r, const qr_g1_t *a, const qr_fr_t *k)
{
    uint64_t v[4];
    qr_fr_to_canonical(v, k);
    qr_g1_mul(r, a, v);
}

void qr_g2_mul_fr(qr_g2_t *r, const qr_g2_t *a, const qr_fr_t *k)
{
    uint64_t v[4];
    qr_fr_to_canonical(v, k);
    qr_g2_mul(r, a, v);
}

bool qr_g2_in_subgroup(const qr_g2_affine_t *a)
{
    if (qr_g2_affine_is_inf(a))
        return true;
    static const uint64_t e[4] = QR_BN254_6U2;
    qr_g2_t q, l, r;
    qr_g2_from_affine(&q, a);
    qr_g2_psi(&l, &q);
    qr_g2_mul(&r, &q, e);
    return qr_g2_eq(&l, &r);
}

/* ---- encodings ---- */

/* All-zero input decodes to (0, 0), which the curve checks accept as
 * infinity, in either layout (0 is 0 in Montgomery form too). */
static qr_zk_err_t s_g1_check(qr_g1_affine_t *r, const qr_g1_affine_t *t)
{
    if (!qr_g1_affine_on_curve(t))
        return QR_ZK_ENOTONCURVE;
    *r = *t; /* cofactor 1: on the curve is in G1 */
    return QR_ZK_OK;
}

static qr_zk_err_t s_g2_check(qr_g2_affine_t *r, const qr_g2_affine_t *t)
{
    if (!qr_g2_affine_on_curve(t))
        return QR_ZK_ENOTONCURVE;
    if (!qr_g2_in_subgroup(t))
        return QR_ZK_ENOTINGROUP;
    *r = *t;
    return QR_ZK_OK;
}

qr_zk_err_t qr_g1_from_be64(qr_g1_affine_t *r, const uint8_t in[64])
{
    qr_g1_affine_t t;
    if (qr_fp_from_be32(&t.x, in) || qr_fp_from_be32(&t.y, in + 32))
        return QR_ZK_ENONCANON;
    return s_g1_check(r, &t);
}

void qr_g1_to_be64(uint8_t out[64], const qr_g1_affine_t *a)
{
    qr_fp_to_be32(out, &a->x);
    qr_fp_to_be32(out + 32, &a->y);
}

qr_zk_err_t qr_g2_from_be128(qr_g2_affine_t *r, const uint8_t in[128])
{
    qr_g2_affine_t t;
    if (qr_fp_from_be32(&t.x.c1, in) || qr_fp_from_be32(&t.x.c0, in + 32) ||
        qr_fp_from_be32(&t.y.c1, in + 64) || qr_fp_from_be32(&t.y.c0, in + 96))
        return QR_ZK_ENONCANON;
    return s_g2_check(r, &t);
}

void qr_g2_to_be128(uint8_t out[128], const qr_g2_affine_t *a)
{
    qr_fp_to_be32(out, &a->x.c1);
    qr_fp_to_be32(out + 32, &a->x.c0);
    qr_fp_to_be32(out + 64, &a->y.c1);
    qr_fp_to_be32(out + 96, &a->y.c0);
}

qr_zk_err_t qr_g1_from_zkey(qr_g1_affine_t *r, const uint8_t in[64])
{
    qr_g1_affine_t t;
    if (qr_fp_from_mont_le32(&t.x, in) || qr_fp_from_mont_le32(&t.y, in + 32))
        return QR_ZK_ENONCANON;
    return s_g1_check(r, &t);
}

void qr_g1_to_zkey(uint8_t out[64], const qr_g1_affine_t *a)
{
    qr_fp_to_mont_le32(out, &a->x);
    qr_fp_to_mont_le32(out + 32, &a->y);
}

qr_zk_err_t qr_g2_from_zkey(qr_g2_affine_t *r, const uint8_t in[128])
{
    qr_g2_affine_t t;
    if (qr_fp_from_mont_le32(&t.x.c0, in) || qr_fp_from_mont_le32(&t.x.c1, in + 32) ||
        qr_fp_from_mont_le32(&t.y.c0, in + 64) || qr_fp_from_mont_le32(&t.y.c1, in + 96))
        return QR_ZK_ENONCANON;
    return s_g2_check(r, &t);
}

void qr_g2_to_zkey(uint8_t out[128], const qr_g2_affine_t *a)
{
    qr_fp_to_mont_le32(out, &a->x.c0);
    qr_fp_to_mont_le32(out + 32, &a->x.c1);
    qr_fp_to_mont_le32(out + 64, &a->y.c0);
    qr_fp_to_mont_le32(out + 96, &a->y.c1);
}
