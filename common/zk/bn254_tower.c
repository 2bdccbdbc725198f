/* Fp2 (the slow parts), Fp6 and Fp12; see bn254_tower.h.  Formulas: Devegili,
 * O hEigeartaigh, Scott, Dahab, "Multiplication and squaring on
 * pairing-friendly fields" (2006) for Karatsuba Fp6 multiplication and the
 * CH-SQR2 squaring; Granger and Scott (2010) for cyclotomic squaring. */
#include "bn254_tower.h"

#include <string.h>

/* ---- Fp2 ---- */

void qr_fp2_inv(qr_fp2_t *r, const qr_fp2_t *a)
{
    qr_fp_t t0, t1;
    qr_fp_sqr(&t0, &a->c0);
    qr_fp_sqr(&t1, &a->c1);
    qr_fp_add(&t0, &t0, &t1); /* the norm a0^2 + a1^2, since u^2 = -1 */
    qr_fp_inv(&t0, &t0);
    qr_fp_mul(&r->c0, &a->c0, &t0);
    qr_fp_mul(&t1, &a->c1, &t0);
    qr_fp_neg(&r->c1, &t1);
}

void qr_fp2_pow(qr_fp2_t *r, const qr_fp2_t *a, const uint64_t *e, size_t nlimbs)
{
    qr_fp2_t acc;
    qr_fp2_one(&acc);
    for (size_t i = nlimbs * 64; i-- > 0;) {
        qr_fp2_sqr(&acc, &acc);
        if ((e[i / 64] >> (i % 64)) & 1)
            qr_fp2_mul(&acc, &acc, a);
    }
    *r = acc;
}

bool qr_fp2_sqrt(qr_fp2_t *r, const qr_fp2_t *a)
{
    qr_fp2_t x;
    if (qr_fp_is_zero(&a->c1)) {
        /* a in Fp: either a is a square there, or -a is and the root is
         * sqrt(-a) u (-1 is a non-square since p = 3 mod 4) */
        qr_fp_t n;
        if (qr_fp_sqrt(&x.c0, &a->c0)) {
            qr_fp_zero(&x.c1);
        } else {
            qr_fp_neg(&n, &a->c0);
            if (!qr_fp_sqrt(&x.c1, &n))
                return false;
            qr_fp_zero(&x.c0);
        }
        *r = x;
        return true;
    }
    /* (x0 + x1 u)^2 = a gives x0^2 - x1^2 = a0, 2 x0 x1 = a1, and with the
     * norm s = sqrt(a0^2 + a1^2) = x0^2 + x1^2: x0^2 = (a0 +- s) / 2 */
    qr_fp_t n, t, s, half;
    qr_fp_sqr(&n, &a->c0);
    qr_fp_sqr(&t, &a->c1);
    qr_fp_add(&n, &n, &t);
    if (!qr_fp_sqrt(&s, &n))
        return false;
    qr_fp_from_u64(&half, 2);
    qr_fp_inv(&half, &half);
    qr_fp_add(&t, &a->c0, &s);
    qr_fp_mul(&t, &t, &half);
    if (!qr_fp_sqrt(&x.c0, &t)) {
        qr_fp_sub(&t, &a->c0, &s);
        qr_fp_mul(&t, &t, &half);
        if (!qr_fp_sqrt(&x.c0, &t))
            return false;
    }
    /* x0 != 0 here: x0 = 0 would force a1 = 0, handled above */
    qr_fp_dbl(&t, &x.c0);
    qr_fp_inv(&t, &t);
    qr_fp_mul(&x.c1, &a->c1, &t);
    qr_fp2_t chk;
    qr_fp2_sqr(&chk, &x);
    if (!qr_fp2_eq(&chk, a))
        return false;
    *r = x;
    return true;
}

/* ---- Fp6 ---- */

void qr_fp6_zero(qr_fp6_t *r)
{
    memset(r, 0, sizeof *r);
}

void qr_fp6_one(qr_fp6_t *r)
{
    memset(r, 0, sizeof *r);
    qr_fp2_one(&r->c0);
}

bool qr_fp6_eq(const qr_fp6_t *a, const qr_fp6_t *b)
{
    return qr_fp2_eq(&a->c0, &b->c0) && qr_fp2_eq(&a->c1, &b->c1) && qr_fp2_eq(&a->c2, &b->c2);
}

void qr_fp6_add(qr_fp6_t *r, const qr_fp6_t *a, const qr_fp6_t *b)
{
    qr_fp2_add(&r->c0, &a->c0, &b->c0);
    qr_fp2_add(&r->c1, &a->c1, &b->c1);
    qr_fp2_add(&r->c2, &a->c2, &b->c2);
}

void qr_fp6_sub(qr_fp6_t *r, const qr_fp6_t *a, const qr_fp6_t *b)
{
    qr_fp2_sub(&r->c0, &a->c0, &b->c0);
    qr_fp2_sub(&r->c1, &a->c1, &b->c1);
    qr_fp2_sub(&r->c2, &a->c2, &b->c2);
}

void qr_fp6_neg(qr_fp6_t *r, const qr_fp6_t *a)
{
    qr_fp2_neg(&r->c0, &a->c0);
    qr_fp2_neg(&r->c1, &a->c1);
    qr_fp2_neg(&r->c2, &a->c2);
}

void qr_fp6_mul_v(qr_fp6_t *r, const qr_fp6_t *a)
{
    qr_fp2_t t;
    qr_fp2_mul_xi(&t, &a->c2);
    r->c2 = a->c1;
    r->c1 = a->c0;
    r->c0 = t;
}

/* Karatsuba over three coefficients: 6 Fp2 multiplications */
void qr_fp6_mul(qr_fp6_t *r, const qr_fp6_t *a, const qr_fp6_t *b)
{
    qr_fp2_t t0, t1, t2, s, u, c0, c1, c2;
    qr_fp2_mul(&t0, &a->c0, &b->c0);
    qr_fp2_mul(&t1, &a->c1, &b->c1);
    qr_fp2_mul(&t2, &a->c2, &b->c2);
    /* c0 = t0 + xi ((a1 + a2)(b1 + b2) - t1 - t2) */
    qr_fp2_add(&s, &a->c1, &a->c2);
    qr_fp2_add(&u, &b->c1, &b->c2);
    qr_fp2_mul(&s, &s, &u);
    qr_fp2_sub(&s, &s, &t1);
    qr_fp2_sub(&s, &s, &t2);
    qr_fp2_mul_xi(&s, &s);
    qr_fp2_add(&c0, &s, &t0);
    /* c1 = (a0 + a1)(b0 + b1) - t0 - t1 + xi t2 */
    qr_fp2_add(&s, &a->c0, &a->c1);
    qr_fp2_add(&u, &b->c0, &b->c1);
    qr_fp2_mul(&s, &s, &u);
    qr_fp2_sub(&s, &s, &t0);
    qr_fp2_sub(&s, &s, &t1);
    qr_fp2_mul_xi(&u, &t2);
    qr_fp2_add(&c1, &s, &u);
    /* c2 = (a0 + a2)(b0 + b2) - t0 - t2 + t1 */
    qr_fp2_add(&s, &a->c0, &a->c2);
    qr_fp2_add(&u, &b->c0, &b->c2);
    qr_fp2_mul(&s, &s, &u);
    qr_fp2_sub(&s, &s, &t0);
    qr_fp2_sub(&s, &s, &t2);
    qr_fp2_add(&c2, &s, &t1);
    r->c0 = c0;
    r->c1 = c1;
    r->c2 = c2;
}

/* CH-SQR2: 2 Fp2 multiplications and 3 squarings */
void qr_fp6_sqr(qr_fp6_t *r, const qr_fp6_t *a)
{
    qr_fp2_t s0, s1, s2, s3, s4, t;
    qr_fp2_sqr(&s0, &a->c0);
    qr_fp2_mul(&s1, &a->c0, &a->c1);
    qr_fp2_dbl(&s1, &s1);
    qr_fp2_sub(&t, &a->c0, &a->c1);
    qr_fp2_add(&t, &t, &a->c2);
    qr_fp2_sqr(&s2, &t);
    qr_fp2_mul(&s3, &a->c1, &a->c2);
    qr_fp2_dbl(&s3, &s3);
    qr_fp2_sqr(&s4, &a->c2);
    /* c2 = s1 + s2 + s3 - s0 - s4 (before c0, c1 overwrite anything) */
    qr_fp2_add(&t, &s1, &s2);
    qr_fp2_add(&t, &t, &s3);
    qr_fp2_sub(&t, &t, &s0);
    qr_fp2_sub(&r->c2, &t, &s4);
    qr_fp2_mul_xi(&t, &s3);
    qr_fp2_add(&r->c0, &t, &s0);
    qr_fp2_mul_xi(&t, &s4);
    qr_fp2_add(&r->c1, &t, &s1);
}

/* Adjugate over the norm: A = a0^2 - xi a1 a2, B = xi a2^2 - a0 a1,
 * C = a1^2 - a0 a2, 1/a = (A + B v + C v^2) / (a0 A + xi (a2 B + a1 C)) */
void qr_fp6_inv(qr_fp6_t *r, const qr_fp6_t *a)
{
    qr_fp2_t A, B, C, t, f;
    qr_fp2_sqr(&A, &a->c0);
    qr_fp2_mul(&t, &a->c1, &a->c2);
    qr_fp2_mul_xi(&t, &t);
    qr_fp2_sub(&A, &A, &t);
    qr_fp2_sqr(&B, &a->c2);
    qr_fp2_mul_xi(&B, &B);
    qr_fp2_mul(&t, &a->c0, &a->c1);
    qr_fp2_sub(&B, &B, &t);
    qr_fp2_sqr(&C, &a->c1);
    qr_fp2_mul(&t, &a->c0, &a->c2);
    qr_fp2_sub(&C, &C, &t);
    qr_fp2_mul(&f, &a->c2, &B);
    qr_fp2_mul(&t, &a->c1, &C);
    qr_fp2_add(&f, &f, &t);
    qr_fp2_mul_xi(&f, &f);
    qr_fp2_mul(&t, &a->c0, &A);
    qr_fp2_add(&f, &f, &t);
    qr_fp2_inv(&f, &f);
    qr_fp2_mul(&r->c0, &A, &f);
    qr_fp2_mul(&r->c1, &B, &f);
    qr_fp2_mul(&r->c2, &C, &f);
}

/* a * (b0 + b1 v): 5 Fp2 multiplications */
static void s_fp6_mul_01(qr_fp6_t *r, const qr_fp6_t *a, const qr_fp2_t *b0, const qr_fp2_t *b1)
{
    qr_fp2_t t0, t1, s, u, c0, c1, c2;
    qr_fp2_mul(&t0, &a->c0, b0);
    qr_fp2_mul(&t1, &a->c1, b1);
    /* c0 = t0 + xi a2 b1 */
    qr_fp2_mul(&s, &a->c2, b1);
    qr_fp2_mul_xi(&s, &s);
    qr_fp2_add(&c0, &s, &t0);
    /* c1 = (a0 + a1)(b0 + b1) - t0 - t1 */
    qr_fp2_add(&s, &a->c0, &a->c1);
    qr_fp2_add(&u, b0, b1);
    qr_fp2_mul(&s, &s, &u);
    qr_fp2_sub(&s, &s, &t0);
    qr_fp2_sub(&c1, &s, &t1);
    /* c2 = a2 b0 + t1 */
    qr_fp2_mul(&s, &a->c2, b0);
    qr_fp2_add(&c2, &s, &t1);
    r->c0 = c0;
    r->c1 = c1;
    r->c2 = c2;
}

/* ---- Fp12 ---- */

void qr_fp12_one(qr_fp12_t *r)
{
    qr_fp6_one(&r->c0);
    qr_fp6_zero(&r->c1);
}

bool qr_fp12_eq(const qr_fp12_t *a, const qr_fp12_t *b)
{
    return qr_fp6_eq(&a->c0, &b->c0) && qr_fp6_eq(&a->c1, &b->c1);
}

bool qr_fp12_is_one(const qr_fp12_t *a)
{
    qr_fp12_t one;
    qr_fp12_one(&one);
    return qr_fp12_eq(a, &one);
}

void qr_fp12_mul(qr_fp12_t *r, const qr_fp12_t *a, const qr_fp12_t *b)
{
    qr_fp6_t t0, t1, s, u;
    qr_fp6_mul(&t0, &a->c0, &b->c0);
    qr_fp6_mul(&t1, &a->c1, &b->c1);
    qr_fp6_add(&s, &a->c0, &a->c1);
    qr_fp6_add(&u, &b->c0, &b->c1);
    qr_fp6_mul(&s, &s, &u);
    qr_fp6_sub(&s, &s, &t0);
    qr_fp6_sub(&r->c1, &s, &t1);
    qr_fp6_mul_v(&t1, &t1);
    qr_fp6_add(&r->c0, &t0, &t1);
}

/* complex squaring: (a0 + a1 w)^2 = (a0 + a1)(a0 + v a1) - (1 + v) a0 a1
 * + 2 a0 a1 w; 2 Fp6 multiplications */
void qr_fp12_sqr(qr_fp12_t *r, const qr_fp12_t *a)
{
    qr_fp6_t ab, s, u, t;
    qr_fp6_mul(&ab, &a->c0, &a->c1);
    qr_fp6_add(&s, &a->c0, &a->c1);
    qr_fp6_mul_v(&u, &a->c1);
    qr_fp6_add(&u, &u, &a->c0);
    qr_fp6_mul(&s, &s, &u);
    qr_fp6_sub(&s, &s, &ab);
    qr_fp6_mul_v(&t, &ab);
    qr_fp6_sub(&r->c0, &s, &t);
    qr_fp6_add(&r->c1, &ab, &ab);
}

/* 1/(a0 + a1 w) = (a0 - a1 w) / (a0^2 - v a1^2) */
void qr_fp12_inv(qr_fp12_t *r, const qr_fp12_t *a)
{
    qr_fp6_t t0, t1;
    qr_fp6_sqr(&t0, &a->c0);
    qr_fp6_sqr(&t1, &a->c1);
    qr_fp6_mul_v(&t1, &t1);
    qr_fp6_sub(&t0, &t0, &t1);
    qr_fp6_inv(&t0, &t0);
    qr_fp6_mul(&r->c0, &a->c0, &t0);
    qr_fp6_mul(&t1, &a->c1, &t0);
    qr_fp6_neg(&r->c1, &t1);
}

void qr_fp12_conj(qr_fp12_t *r, const qr_fp12_t *a)
{
    r->c0 = a->c0;
    qr_fp6_neg(&r->c1, &a->c1);
}

static const qr_fp2_t s_frob[3][5] = {
    {QR_FROB1_W1, QR_FROB1_W2, QR_FROB1_W3, QR_FROB1_W4, QR_FROB1_W5},
    {QR_FROB2_W1, QR_FROB2_W2, QR_FROB2_W3, QR_FROB2_W4, QR_FROB2_W5},
    {QR_FROB3_W1, QR_FROB3_W2, QR_FROB3_W3, QR_FROB3_W4, QR_FROB3_W5},
};

/* (sum g_i w^i)^(p^k) = sum g_i^(p^k) gamma_{k,i} w^i, and g^(p^k) for g in
 * Fp2 is g or its conjugate as k is even or odd.  The coefficients of w^i
 * sit at c0.c0 (0), c1.c0 (1), c0.c1 (2), c1.c1 (3), c0.c2 (4), c1.c2 (5). */
void qr_fp12_frob(qr_fp12_t *r, const qr_fp12_t *a, int k)
{
    if (k < 1 || k > 3) {
        qr_fp12_t t = *a;
        int left = ((k % 12) + 12) % 12;
        while (left > 0) {
            int step = left > 3 ? 3 : left;
            qr_fp12_frob(&t, &t, step);
            left -= step;
        }
        *r = t;
        return;
    }
    const qr_fp2_t *in[6] = {&a->c0.c0, &a->c1.c0, &a->c0.c1, &a->c1.c1, &a->c0.c2, &a->c1.c2};
    qr_fp2_t g[6];
    for (int i = 0; i < 6; i++) {
        if (k & 1)
            qr_fp2_conj(&g[i], in[i]);
        else
            g[i] = *in[i];
        if (i > 0) {
            if (k == 2) /* gamma_2 lies in Fp */
                qr_fp2_mul_fp(&g[i], &g[i], &s_frob[1][i - 1].c0);
            else
                qr_fp2_mul(&g[i], &g[i], &s_frob[k - 1][i - 1]);
        }
    }
    r->c0.c0 = g[0];
    r->c1.c0 = g[1];
    r->c0.c1 = g[2];
    r->c1.c1 = g[3];
    r->c0.c2 = g[4];
    r->c1.c2 = g[5];
}

void qr_fp12_pow(qr_fp12_t *r, const qr_fp12_t *a, const uint64_t *e, size_t nlimbs)
{
    qr_fp12_t acc, base = *a;
    qr_fp12_one(&acc);
    for (size_t i = nlimbs * 64; i-- > 0;) {
        qr_fp12_sqr(&acc, &acc);
        if ((e[i / 64] >> (i % 64)) & 1)
            qr_fp12_mul(&acc, &acc, &base);
    }
    *r = acc;
}

/* Fp12 seen as Fp4[t]/(t^3 - s) with Fp4 = Fp2[s]/(s^2 - xi), s = w^3,
 * t = w: a = A + B t + C t^2 with A = (g0, g3), B = (g1, g4), C = (g2, g5).
 * For a in the cyclotomic subgroup (Granger, Scott 2010):
 *   A' = 3 A^2 - 2 conj(A),  B' = 3 s C^2 + 2 conj(B),  C' = 3 B^2 - 2 conj(C)
 * where conj(x + y s) = x - y s, and (x + y s)^2 = (x^2 + xi y^2) + 2xy s. */
static void s_fp4_sqr(qr_fp2_t *r0, qr_fp2_t *r1, const qr_fp2_t *x, const qr_fp2_t *y)
{
    qr_fp2_t x2, y2, t;
    qr_fp2_sqr(&x2, x);
    qr_fp2_sqr(&y2, y);
    qr_fp2_add(&t, x, y);
    qr_fp2_sqr(&t, &t);
    qr_fp2_sub(&t, &t, &x2);
    qr_fp2_sub(r1, &t, &y2); /* 2xy */
    qr_fp2_mul_xi(&y2, &y2);
    qr_fp2_add(r0, &x2, &y2);
}

/* r = 3 t - 2 g, r = 3 t + 2 g */
static void s_three_minus_two(qr_fp2_t *r, const qr_fp2_t *t, const qr_fp2_t *g)
{
    qr_fp2_t d;
    qr_fp2_sub(&d, t, g);
    qr_fp2_dbl(&d, &d);
    qr_fp2_add(r, &d, t);
}

static void s_three_plus_two(qr_fp2_t *r, const qr_fp2_t *t, const qr_fp2_t *g)
{
    qr_fp2_t d;
    qr_fp2_add(&d, t, g);
    qr_fp2_dbl(&d, &d);
    qr_fp2_add(r, &d, t);
}

void qr_fp12_cyclo_sqr(qr_fp12_t *r, const qr_fp12_t *a)
{
    const qr_fp2_t g0 = a->c0.c0, g1 = a->c1.c0, g2 = a->c0.c1;
    const qr_fp2_t g3 = a->c1.c1, g4 = a->c0.c2, g5 = a->c1.c2;
    qr_fp2_t a0, a1, b0, b1, c0, c1, t;
    s_fp4_sqr(&a0, &a1, &g0, &g3); /* A^2 */
    s_fp4_sqr(&b0, &b1, &g1, &g4); /* B^2 */
    s_fp4_sqr(&c0, &c1, &g2, &g5); /* C^2 */
    /* A' = 3 A^2 - 2 conj(A) */
    s_three_minus_two(&r->c0.c0, &a0, &g0);
    s_three_plus_two(&r->c1.c1, &a1, &g3);
    /* B' = 3 s C^2 + 2 conj(B); s (x + y s) = xi y + x s */
    qr_fp2_mul_xi(&t, &c1);
    s_three_plus_two(&r->c1.c0, &t, &g1);
    s_three_minus_two(&r->c0.c2, &c0, &g4);
    /* C' = 3 B^2 - 2 conj(C) */
    s_three_minus_two(&r->c0.c1, &b0, &g2);
    s_three_plus_two(&r->c1.c2, &b1, &g5);
}

/* f * (l0 + l1 w + l3 w^3): as Fp6 pairs the line is L0 + L1 w with
 * L0 = (l0, 0, 0) and L1 = (l1, l3, 0), so
 *   f * L = f0 L0 + v f1 L1 + ((f0 + f1)(L0 + L1) - f0 L0 - f1 L1) w
 * with 3 + 5 + 5 = 13 Fp2 multiplications instead of 18. */
void qr_fp12_mul_line(qr_fp12_t *f, const qr_fp2_t *l0, const qr_fp2_t *l1, const qr_fp2_t *l3)
{
    qr_fp6_t t0, t1, s;
    qr_fp2_t m;
    qr_fp2_mul(&t0.c0, &f->c0.c0, l0);
    qr_fp2_mul(&t0.c1, &f->c0.c1, l0);
    qr_fp2_mul(&t0.c2, &f->c0.c2, l0);
    s_fp6_mul_01(&t1, &f->c1, l1, l3);
    qr_fp6_add(&s, &f->c0, &f->c1);
    qr_fp2_add(&m, l0, l1);
    s_fp6_mul_01(&s, &s, &m, l3);
    qr_fp6_sub(&s, &s, &t0);
    qr_fp6_sub(&f->c1, &s, &t1);
    qr_fp6_mul_v(&t1, &t1);
    qr_fp6_add(&f->c0, &t0, &t1);
}
