/* The BN254 groups:
 *
 *   G1: y^2 = x^3 + 3 over Fp, generator (1, 2), cofactor 1;
 *   G2: the order-r subgroup of the sextic twist y^2 = x^3 + 3/(9 + u) over
 *       Fp2 (a D-type twist), generator the one of EIP-197 and snarkjs;
 *       the twist has order r (2p - r), so a point on it need not be in G2.
 *
 * Points are Jacobian (X, Y, Z) for x = X/Z^2, y = Y/Z^3, the point at
 * infinity having Z = 0; affine points are (x, y) with (0, 0) standing for
 * infinity, as in EIP-196/197 and snarkjs files ((0, 0) is on neither
 * curve, so the encoding is unambiguous).
 *
 * The group law is inline (QR_ZK_HD) for the MSM and its CUDA port; it
 * branches on the special cases (infinity, P = Q, P = -Q), so it is not
 * constant-time: fine for a prover whose only secrets are blinding factors
 * on a machine it owns, wrong for signing keys.  Formulas (Explicit-Formulas
 * Database, a = 0): dbl-2009-l, add-2007-bl, madd-2007-bl. */
#ifndef QR_ZK_BN254_CURVE_H
#define QR_ZK_BN254_CURVE_H

#include "bn254_tower.h"

typedef struct {
    qr_fp_t x, y;
} qr_g1_affine_t;

typedef struct {
    qr_fp_t x, y, z;
} qr_g1_t;

typedef struct {
    qr_fp2_t x, y;
} qr_g2_affine_t;

typedef struct {
    qr_fp2_t x, y, z;
} qr_g2_t;

/* Why a point was refused */
typedef enum {
    QR_ZK_OK = 0,
    QR_ZK_ENONCANON = -1,   /* a coordinate >= p */
    QR_ZK_ENOTONCURVE = -2, /* not on the curve (or twist) */
    QR_ZK_ENOTINGROUP = -3  /* on the twist but not in the order-r subgroup */
} qr_zk_err_t;

/* One macro writes the group law for both groups, over field prefix F
 * (qr_fp or qr_fp2), so the two cannot drift apart. */
#define QR_ZK_CURVE_OPS(P, A, FT, G, F)                                                            \
    QR_ZK_HD void G##_set_inf(P *r)                                                                \
    {                                                                                              \
        F##_one(&r->x);                                                                            \
        F##_one(&r->y);                                                                            \
        F##_zero(&r->z);                                                                           \
    }                                                                                              \
    QR_ZK_HD bool G##_is_inf(const P *a)                                                           \
    {                                                                                              \
        return F##_is_zero(&a->z);                                                                 \
    }                                                                                              \
    QR_ZK_HD bool G##_affine_is_inf(const A *a)                                                    \
    {                                                                                              \
        return F##_is_zero(&a->x) && F##_is_zero(&a->y);                                           \
    }                                                                                              \
    QR_ZK_HD void G##_from_affine(P *r, const A *a)                                                \
    {                                                                                              \
        if (G##_affine_is_inf(a)) {                                                                \
            G##_set_inf(r);                                                                        \
            return;                                                                                \
        }                                                                                          \
        r->x = a->x;                                                                               \
        r->y = a->y;                                                                               \
        F##_one(&r->z);                                                                            \
    }                                                                                              \
    QR_ZK_HD void G##_neg(P *r, const P *a)                                                        \
    {                                                                                              \
        r->x = a->x;                                                                               \
        F##_neg(&r->y, &a->y);                                                                     \
        r->z = a->z;                                                                               \
    }                                                                                              \
    /* dbl-2009-l: 2M + 5S */                                                                      \
    QR_ZK_HD void G##_dbl(P *r, const P *a)                                                        \
    {                                                                                              \
        FT A_, B, C, D, E, F_, t;                                                                  \
        F##_sqr(&A_, &a->x);                                                                       \
        F##_sqr(&B, &a->y);                                                                        \
        F##_sqr(&C, &B);                                                                           \
        F##_add(&D, &a->x, &B);                                                                    \
        F##_sqr(&D, &D);                                                                           \
        F##_sub(&D, &D, &A_);                                                                      \
        F##_sub(&D, &D, &C);                                                                       \
        F##_dbl(&D, &D);                                                                           \
        F##_dbl(&E, &A_);                                                                          \
        F##_add(&E, &E, &A_);                                                                      \
        F##_sqr(&F_, &E);                                                                          \
        F##_mul(&r->z, &a->y, &a->z);                                                              \
        F##_dbl(&r->z, &r->z);                                                                     \
        F##_dbl(&t, &D);                                                                           \
        F##_sub(&r->x, &F_, &t);                                                                   \
        F##_sub(&t, &D, &r->x);                                                                    \
        F##_mul(&t, &E, &t);                                                                       \
        F##_dbl(&C, &C);                                                                           \
        F##_dbl(&C, &C);                                                                           \
        F##_dbl(&C, &C);                                                                           \
        F##_sub(&r->y, &t, &C);                                                                    \
    }                                                                                              \
    /* add-2007-bl: 11M + 5S; r may alias a or b */                                                \
    QR_ZK_HD void G##_add(P *r, const P *a, const P *b)                                            \
    {                                                                                              \
        if (G##_is_inf(a)) {                                                                       \
            *r = *b;                                                                               \
            return;                                                                                \
        }                                                                                          \
        if (G##_is_inf(b)) {                                                                       \
            *r = *a;                                                                               \
            return;                                                                                \
        }                                                                                          \
        FT z1z1, z2z2, u1, u2, s1, s2, h, i, j, rr, v, t;                                          \
        F##_sqr(&z1z1, &a->z);                                                                     \
        F##_sqr(&z2z2, &b->z);                                                                     \
        F##_mul(&u1, &a->x, &z2z2);                                                                \
        F##_mul(&u2, &b->x, &z1z1);                                                                \
        F##_mul(&s1, &a->y, &b->z);                                                                \
        F##_mul(&s1, &s1, &z2z2);                                                                  \
        F##_mul(&s2, &b->y, &a->z);                                                                \
        F##_mul(&s2, &s2, &z1z1);                                                                  \
        F##_sub(&h, &u2, &u1);                                                                     \
        F##_sub(&rr, &s2, &s1);                                                                    \
        if (F##_is_zero(&h)) {                                                                     \
            if (F##_is_zero(&rr))                                                                  \
                G##_dbl(r, a);                                                                     \
            else                                                                                   \
                G##_set_inf(r);                                                                    \
            return;                                                                                \
        }                                                                                          \
        F##_dbl(&rr, &rr);                                                                         \
        F##_dbl(&i, &h);                                                                           \
        F##_sqr(&i, &i);                                                                           \
        F##_mul(&j, &h, &i);                                                                       \
        F##_mul(&v, &u1, &i);                                                                      \
        F##_add(&t, &a->z, &b->z);                                                                 \
        F##_sqr(&t, &t);                                                                           \
        F##_sub(&t, &t, &z1z1);                                                                    \
        F##_sub(&t, &t, &z2z2);                                                                    \
        F##_mul(&r->z, &t, &h);                                                                    \
        F##_sqr(&t, &rr);                                                                          \
        F##_sub(&t, &t, &j);                                                                       \
        F##_sub(&t, &t, &v);                                                                       \
        F##_sub(&r->x, &t, &v);                                                                    \
        F##_sub(&t, &v, &r->x);                                                                    \
        F##_mul(&t, &rr, &t);                                                                      \
        F##_mul(&s1, &s1, &j);                                                                     \
        F##_dbl(&s1, &s1);                                                                         \
        F##_sub(&r->y, &t, &s1);                                                                   \
    }                                                                                              \
    /* madd-2007-bl, b affine: 7M + 4S; r may alias a */                                           \
    QR_ZK_HD void G##_add_mixed(P *r, const P *a, const A *b)                                      \
    {                                                                                              \
        if (G##_affine_is_inf(b)) {                                                                \
            *r = *a;                                                                               \
            return;                                                                                \
        }                                                                                          \
        if (G##_is_inf(a)) {                                                                       \
            G##_from_affine(r, b);                                                                 \
            return;                                                                                \
        }                                                                                          \
        FT z1z1, u2, s2, h, hh, i, j, rr, v, t, y1 = a->y;                                         \
        F##_sqr(&z1z1, &a->z);                                                                     \
        F##_mul(&u2, &b->x, &z1z1);                                                                \
        F##_mul(&s2, &b->y, &a->z);                                                                \
        F##_mul(&s2, &s2, &z1z1);                                                                  \
        F##_sub(&h, &u2, &a->x);                                                                   \
        F##_sub(&rr, &s2, &a->y);                                                                  \
        if (F##_is_zero(&h)) {                                                                     \
            if (F##_is_zero(&rr))                                                                  \
                G##_dbl(r, a);                                                                     \
            else                                                                                   \
                G##_set_inf(r);                                                                    \
            return;                                                                                \
        }                                                                                          \
        F##_dbl(&rr, &rr);                                                                         \
        F##_sqr(&hh, &h);                                                                          \
        F##_dbl(&i, &hh);                                                                          \
        F##_dbl(&i, &i);                                                                           \
        F##_mul(&j, &h, &i);                                                                       \
        F##_mul(&v, &a->x, &i);                                                                    \
        F##_add(&t, &a->z, &h);                                                                    \
        F##_sqr(&t, &t);                                                                           \
        F##_sub(&t, &t, &z1z1);                                                                    \
        F##_sub(&r->z, &t, &hh);                                                                   \
        F##_sqr(&t, &rr);                                                                          \
        F##_sub(&t, &t, &j);                                                                       \
        F##_sub(&t, &t, &v);                                                                       \
        F##_sub(&r->x, &t, &v);                                                                    \
        F##_sub(&t, &v, &r->x);                                                                    \
        F##_mul(&t, &rr, &t);                                                                      \
        F##_mul(&y1, &y1, &j);                                                                     \
        F##_dbl(&y1, &y1);                                                                         \
        F##_sub(&r->y, &t, &y1);                                                                   \
    }

QR_ZK_CURVE_OPS(qr_g1_t, qr_g1_affine_t, qr_fp_t, qr_g1, qr_fp)
QR_ZK_CURVE_OPS(qr_g2_t, qr_g2_affine_t, qr_fp2_t, qr_g2, qr_fp2)

#ifdef __cplusplus
extern "C" {
#endif

/* ---- bn254_curve.c ---- */

void qr_g1_generator(qr_g1_affine_t *r);
void qr_g2_generator(qr_g2_affine_t *r);

/* Jacobian to affine (one inversion); infinity gives (0, 0) */
void qr_g1_to_affine(qr_g1_affine_t *r, const qr_g1_t *a);
void qr_g2_to_affine(qr_g2_affine_t *r, const qr_g2_t *a);
/* Same point?  Compares projectively, no inversion. */
bool qr_g1_eq(const qr_g1_t *a, const qr_g1_t *b);
bool qr_g2_eq(const qr_g2_t *a, const qr_g2_t *b);
bool qr_g1_affine_eq(const qr_g1_affine_t *a, const qr_g1_affine_t *b);
bool qr_g2_affine_eq(const qr_g2_affine_t *a, const qr_g2_affine_t *b);

/* On the curve (infinity counts as on it)? */
bool qr_g1_affine_on_curve(const qr_g1_affine_t *a);
bool qr_g2_affine_on_curve(const qr_g2_affine_t *a);
/* In the order-r subgroup?  For a point already on the twist; uses
 * psi(Q) = [6u^2] Q (p = 6u^2 mod r is psi's eigenvalue on G2; Scott 2021,
 * "A note on group membership tests for G1, G2 and GT"), a 127-bit scalar
 * multiplication instead of a 254-bit one.  The tests check it against
 * [r] Q = 0 on points inside and outside G2. */
bool qr_g2_in_subgroup(const qr_g2_affine_t *a);
/* psi = untwist-Frobenius-twist on the twist: (conj(x) xi^((p-1)/3),
 * conj(y) xi^((p-1)/2)).  Needed by the Miller loop and the check above. */
void qr_g2_psi(qr_g2_t *r, const qr_g2_t *a);

/* k * a for a 256-bit integer k (little-endian limbs, not reduced: the
 * EIP-196 precompile takes any 256-bit scalar).  Fixed 4-bit window. */
void qr_g1_mul(qr_g1_t *r, const qr_g1_t *a, const uint64_t k[4]);
void qr_g2_mul(qr_g2_t *r, const qr_g2_t *a, const uint64_t k[4]);
/* k * a for k in Fr (Montgomery form, converted here) */
void qr_g1_mul_fr(qr_g1_t *r, const qr_g1_t *a, const qr_fr_t *k);
void qr_g2_mul_fr(qr_g2_t *r, const qr_g2_t *a, const qr_fr_t *k);

/* EIP-196/197 encodings, big-endian: G1 is x || y (64 bytes), G2 is
 * x_im || x_re || y_im || y_re (128 bytes; the imaginary part first).  All
 * zeros is infinity.  The readers check canonical coordinates, the curve
 * equation and, for G2, subgroup membership. */
qr_zk_err_t qr_g1_from_be64(qr_g1_affine_t *r, const uint8_t in[64]);
void qr_g1_to_be64(uint8_t out[64], const qr_g1_affine_t *a);
qr_zk_err_t qr_g2_from_be128(qr_g2_affine_t *r, const uint8_t in[128]);
void qr_g2_to_be128(uint8_t out[128], const qr_g2_affine_t *a);
/* snarkjs .zkey layout: coordinates in Montgomery form, little-endian, G2 as
 * x.c0 || x.c1 || y.c0 || y.c1; same checks as above. */
qr_zk_err_t qr_g1_from_zkey(qr_g1_affine_t *r, const uint8_t in[64]);
void qr_g1_to_zkey(uint8_t out[64], const qr_g1_affine_t *a);
qr_zk_err_t qr_g2_from_zkey(qr_g2_affine_t *r, const uint8_t in[128]);
void qr_g2_to_zkey(uint8_t out[128], const qr_g2_affine_t *a);

#ifdef __cplusplus
}
#endif

#endif
