/* The extension tower of BN254 the pairing lives in:
 *
 *   Fp2  = Fp[u]  / (u^2 + 1)
 *   Fp6  = Fp2[v] / (v^3 - xi),  xi = 9 + u
 *   Fp12 = Fp6[w] / (w^2 - v)
 *
 * the tower of EIP-197, go-ethereum, gnark and ffjavascript, so a GT value
 * can be compared coefficient by coefficient with theirs.  Read as powers of
 * w, an Fp12 element c0 + c1 w, c_i = c_i0 + c_i1 v + c_i2 v^2, holds
 * c00 + c10 w + c01 w^2 + c11 w^3 + c02 w^4 + c12 w^5 (w^6 = xi).
 *
 * Fp2 operations are inline (QR_ZK_HD): the G2 group law in the MSM and its
 * CUDA port run on them.  Fp6 and Fp12 are only needed by the pairing and
 * live in bn254_tower.c. */
#ifndef QR_ZK_BN254_TOWER_H
#define QR_ZK_BN254_TOWER_H

#include "bn254_field.h"

typedef struct {
    qr_fp_t c0, c1; /* c0 + c1 u */
} qr_fp2_t;

typedef struct {
    qr_fp2_t c0, c1, c2; /* c0 + c1 v + c2 v^2 */
} qr_fp6_t;

typedef struct {
    qr_fp6_t c0, c1; /* c0 + c1 w */
} qr_fp12_t;

QR_ZK_HD void qr_fp2_zero(qr_fp2_t *r)
{
    qr_fp_zero(&r->c0);
    qr_fp_zero(&r->c1);
}

QR_ZK_HD void qr_fp2_one(qr_fp2_t *r)
{
    qr_fp_one(&r->c0);
    qr_fp_zero(&r->c1);
}

QR_ZK_HD bool qr_fp2_is_zero(const qr_fp2_t *a)
{
    return qr_fp_is_zero(&a->c0) && qr_fp_is_zero(&a->c1);
}

QR_ZK_HD bool qr_fp2_eq(const qr_fp2_t *a, const qr_fp2_t *b)
{
    return qr_fp_eq(&a->c0, &b->c0) && qr_fp_eq(&a->c1, &b->c1);
}

QR_ZK_HD void qr_fp2_add(qr_fp2_t *r, const qr_fp2_t *a, const qr_fp2_t *b)
{
    qr_fp_add(&r->c0, &a->c0, &b->c0);
    qr_fp_add(&r->c1, &a->c1, &b->c1);
}

QR_ZK_HD void qr_fp2_sub(qr_fp2_t *r, const qr_fp2_t *a, const qr_fp2_t *b)
{
    qr_fp_sub(&r->c0, &a->c0, &b->c0);
    qr_fp_sub(&r->c1, &a->c1, &b->c1);
}

QR_ZK_HD void qr_fp2_dbl(qr_fp2_t *r, const qr_fp2_t *a)
{
    qr_fp_dbl(&r->c0, &a->c0);
    qr_fp_dbl(&r->c1, &a->c1);
}

QR_ZK_HD void qr_fp2_neg(qr_fp2_t *r, const qr_fp2_t *a)
{
    qr_fp_neg(&r->c0, &a->c0);
    qr_fp_neg(&r->c1, &a->c1);
}

/* a^p: the Frobenius of Fp2 is conjugation since u^p = -u (p = 3 mod 4) */
QR_ZK_HD void qr_fp2_conj(qr_fp2_t *r, const qr_fp2_t *a)
{
    r->c0 = a->c0;
    qr_fp_neg(&r->c1, &a->c1);
}

/* Karatsuba: 3 Fp multiplications instead of 4 */
QR_ZK_HD void qr_fp2_mul(qr_fp2_t *r, const qr_fp2_t *a, const qr_fp2_t *b)
{
    qr_fp_t t0, t1, s0, s1;
    qr_fp_mul(&t0, &a->c0, &b->c0);
    qr_fp_mul(&t1, &a->c1, &b->c1);
    qr_fp_add(&s0, &a->c0, &a->c1);
    qr_fp_add(&s1, &b->c0, &b->c1);
    qr_fp_mul(&s0, &s0, &s1);
    qr_fp_sub(&r->c0, &t0, &t1);
    qr_fp_sub(&s0, &s0, &t0);
    qr_fp_sub(&r->c1, &s0, &t1);
}

/* (a0 + a1 u)^2 = (a0 + a1)(a0 - a1) + 2 a0 a1 u: 2 multiplications */
QR_ZK_HD void qr_fp2_sqr(qr_fp2_t *r, const qr_fp2_t *a)
{
    qr_fp_t s, d, m;
    qr_fp_add(&s, &a->c0, &a->c1);
    qr_fp_sub(&d, &a->c0, &a->c1);
    qr_fp_mul(&m, &a->c0, &a->c1);
    qr_fp_mul(&r->c0, &s, &d);
    qr_fp_dbl(&r->c1, &m);
}

QR_ZK_HD void qr_fp2_mul_fp(qr_fp2_t *r, const qr_fp2_t *a, const qr_fp_t *b)
{
    qr_fp_mul(&r->c0, &a->c0, b);
    qr_fp_mul(&r->c1, &a->c1, b);
}

/* a * xi = (9 a0 - a1) + (9 a1 + a0) u, by additions only */
QR_ZK_HD void qr_fp2_mul_xi(qr_fp2_t *r, const qr_fp2_t *a)
{
    qr_fp_t t0, t1;
    qr_fp_dbl(&t0, &a->c0); /* 2 */
    qr_fp_dbl(&t0, &t0);    /* 4 */
    qr_fp_dbl(&t0, &t0);    /* 8 */
    qr_fp_add(&t0, &t0, &a->c0);
    qr_fp_dbl(&t1, &a->c1);
    qr_fp_dbl(&t1, &t1);
    qr_fp_dbl(&t1, &t1);
    qr_fp_add(&t1, &t1, &a->c1);
    qr_fp_sub(&t0, &t0, &a->c1);
    qr_fp_add(&r->c1, &t1, &a->c0);
    r->c0 = t0;
}

#ifdef __cplusplus
extern "C" {
#endif

/* bn254_tower.c */

/* 1/a (0 maps to 0): (a0 - a1 u) / (a0^2 + a1^2) */
void qr_fp2_inv(qr_fp2_t *r, const qr_fp2_t *a);
/* a^e, e a little-endian integer of nlimbs 64-bit words */
void qr_fp2_pow(qr_fp2_t *r, const qr_fp2_t *a, const uint64_t *e, size_t nlimbs);
/* Square root in Fp2 by the norm ("complex") method: one Fp square root of
 * a0^2 + a1^2, then one of (a0 +- sqrt(norm)) / 2.  Returns false, r
 * untouched, when a is not a square. */
bool qr_fp2_sqrt(qr_fp2_t *r, const qr_fp2_t *a);

void qr_fp6_zero(qr_fp6_t *r);
void qr_fp6_one(qr_fp6_t *r);
bool qr_fp6_eq(const qr_fp6_t *a, const qr_fp6_t *b);
void qr_fp6_add(qr_fp6_t *r, const qr_fp6_t *a, const qr_fp6_t *b);
void qr_fp6_sub(qr_fp6_t *r, const qr_fp6_t *a, const qr_fp6_t *b);
void qr_fp6_neg(qr_fp6_t *r, const qr_fp6_t *a);
void qr_fp6_mul(qr_fp6_t *r, const qr_fp6_t *a, const qr_fp6_t *b);
void qr_fp6_sqr(qr_fp6_t *r, const qr_fp6_t *a);
void qr_fp6_inv(qr_fp6_t *r, const qr_fp6_t *a);
/* a * v = (xi a2, a0, a1) */
void qr_fp6_mul_v(qr_fp6_t *r, const qr_fp6_t *a);

void qr_fp12_one(qr_fp12_t *r);
bool qr_fp12_is_one(const qr_fp12_t *a);
bool qr_fp12_eq(const qr_fp12_t *a, const qr_fp12_t *b);
void qr_fp12_mul(qr_fp12_t *r, const qr_fp12_t *a, const qr_fp12_t *b);
void qr_fp12_sqr(qr_fp12_t *r, const qr_fp12_t *a);
void qr_fp12_inv(qr_fp12_t *r, const qr_fp12_t *a);
/* a^(p^6): c0 - c1 w; the inverse for elements of the cyclotomic subgroup
 * (everything after the easy part of the final exponentiation) */
void qr_fp12_conj(qr_fp12_t *r, const qr_fp12_t *a);
/* a^(p^k), k = 1, 2, 3 (other k: compose) */
void qr_fp12_frob(qr_fp12_t *r, const qr_fp12_t *a, int k);
/* a^e, e a little-endian integer of nlimbs 64-bit words (plain
 * square-and-multiply; for tests and the odd exponent outside the pairing) */
void qr_fp12_pow(qr_fp12_t *r, const qr_fp12_t *a, const uint64_t *e, size_t nlimbs);
/* Granger-Scott squaring, valid only in the cyclotomic subgroup (norm 1 down
 * to Fp6 and Fp4): 6 Fp2 squarings against 12 multiplications' worth */
void qr_fp12_cyclo_sqr(qr_fp12_t *r, const qr_fp12_t *a);
/* f * line for a sparse line l0 + l1 w + l3 w^3 (coefficients of w^0, w^1,
 * w^3; the form of every Miller-loop line on the D-type twist) */
void qr_fp12_mul_line(qr_fp12_t *f, const qr_fp2_t *l0, const qr_fp2_t *l1, const qr_fp2_t *l3);

#ifdef __cplusplus
}
#endif

#endif
