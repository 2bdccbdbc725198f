/* Optimal ate pairing; see bn254_pairing.h.
 *
 * Miller loop: Vercauteren's optimal ate with loop count 6u + 2 in
 * non-adjacent form, then the lines through pi(Q) and -pi^2(Q).  T is kept
 * in homogeneous projective coordinates on the twist, with the doubling and
 * mixed-addition steps of Costello, Lange and Naehrig (2010) as refined by
 * Aranha et al., "Faster explicit formulas for computing pairings over
 * ordinary curves" (2011).  Untwisting (x, y) -> (x w^2, y w^3), the line
 * through T evaluated at P = (xP, yP) is
 *
 *   yP - lambda xP w + (lambda xT - yT) w^3
 *
 * and every factor in Fp2 that the projective form multiplies it by dies in
 * the final exponentiation (p^2 - 1 divides (p^12 - 1)/r), so only the
 * coefficients of w^0, w^1 and w^3 are computed (qr_fp12_mul_line).
 *
 * Final exponentiation: easy part f^((p^6 - 1)(p^2 + 1)) with one inversion
 * and two Frobenius maps; hard part by the chain of Fuentes-Castaneda, Knapp
 * and Rodriguez-Henriquez, "Faster hashing to G2" (2011): three
 * exponentiations by u with cyclotomic squarings, three Frobenius maps.  It
 * raises to s (p^4 - p^2 + 1)/r with s = 2u(6u^2 + 3u + 1) rather than to the
 * hard exponent itself; s is prime to r, so this is still a non-degenerate
 * bilinear pairing, cheaper than the exact one, and it is the one snarkjs
 * (ffjavascript), libsnark and gnark compute: GT values such as snarkjs's
 * vk_alphabeta_12 match coefficient by coefficient.  gen_consts.py checks
 * the chain's exponent. */
#include "bn254_pairing.h"

#include <string.h>

/* pairs per batch of side-by-side loops (no allocation: T lives on the stack) */
#define S_BATCH 16

typedef struct {
    qr_fp2_t x, y, z;
} s_proj_t;

/* T = 2T; line coefficients out.  A = XY/2, B = Y^2, C = Z^2, E = 3b'C,
 * F = 3E, G = (B + F)/2, H = 2YZ, I = E - B, J = X^2;
 * X3 = A (B - F), Y3 = G^2 - 3E^2, Z3 = B H; line -H yP + 3J xP w + I w^3 */
static void s_dbl_step(s_proj_t *t, qr_fp2_t *l0, qr_fp2_t *l1, qr_fp2_t *l3,
                       const qr_g1_affine_t *p)
{
    static const qr_fp2_t b3 = QR_FP2_BTWIST3;
    static const qr_fp_t half = {QR_FP_HALF};
    qr_fp2_t A, B, C, E, F, G, H, I, J, s;
    qr_fp2_mul(&A, &t->x, &t->y);
    qr_fp2_mul_fp(&A, &A, &half);
    qr_fp2_sqr(&B, &t->y);
    qr_fp2_sqr(&C, &t->z);
    qr_fp2_mul(&E, &C, &b3);
    qr_fp2_dbl(&F, &E);
    qr_fp2_add(&F, &F, &E);
    qr_fp2_add(&G, &B, &F);
    qr_fp2_mul_fp(&G, &G, &half);
    qr_fp2_add(&H, &t->y, &t->z);
    qr_fp2_sqr(&H, &H);
    qr_fp2_sub(&H, &H, &B);
    qr_fp2_sub(&H, &H, &C);
    qr_fp2_sub(&I, &E, &B);
    qr_fp2_sqr(&J, &t->x);
    /* the point */
    qr_fp2_sub(&s, &B, &F);
    qr_fp2_mul(&t->x, &A, &s);
    qr_fp2_sqr(&E, &E);
    qr_fp2_dbl(&s, &E);
    qr_fp2_add(&s, &s, &E);
    qr_fp2_sqr(&G, &G);
    qr_fp2_sub(&t->y, &G, &s);
    qr_fp2_mul(&t->z, &B, &H);
    /* the line */
    qr_fp2_neg(&H, &H);
    qr_fp2_mul_fp(l0, &H, &p->y);
    qr_fp2_dbl(&s, &J);
    qr_fp2_add(&s, &s, &J);
    qr_fp2_mul_fp(l1, &s, &p->x);
    *l3 = I;
}

/* T = T + Q, Q affine.  theta = Y - yQ Z, lambda = X - xQ Z, C = theta^2,
 * D = lambda^2, E = lambda D, F = Z C, G = X D, H = E + F - 2G;
 * X3 = lambda H, Y3 = theta (G - H) - Y E, Z3 = Z E;
 * line lambda yP - theta xP w + (theta xQ - lambda yQ) w^3 */
static void s_add_step(s_proj_t *t, qr_fp2_t *l0, qr_fp2_t *l1, qr_fp2_t *l3,
                       const qr_g2_affine_t *q, const qr_g1_affine_t *p)
{
    qr_fp2_t theta, lambda, C, D, E, F, G, H, s;
    qr_fp2_mul(&s, &q->y, &t->z);
    qr_fp2_sub(&theta, &t->y, &s);
    qr_fp2_mul(&s, &q->x, &t->z);
    qr_fp2_sub(&lambda, &t->x, &s);
    qr_fp2_sqr(&C, &theta);
    qr_fp2_sqr(&D, &lambda);
    qr_fp2_mul(&E, &lambda, &D);
    qr_fp2_mul(&F, &t->z, &C);
    qr_fp2_mul(&G, &t->x, &D);
    qr_fp2_add(&H, &E, &F);
    qr_fp2_sub(&H, &H, &G);
    qr_fp2_sub(&H, &H, &G);
    qr_fp2_mul(&t->x, &lambda, &H);
    qr_fp2_sub(&s, &G, &H);
    qr_fp2_mul(&s, &theta, &s);
    qr_fp2_mul(&t->y, &t->y, &E);
    qr_fp2_sub(&t->y, &s, &t->y);
    qr_fp2_mul(&t->z, &t->z, &E);
    /* the line */
    qr_fp2_mul_fp(l0, &lambda, &p->y);
    qr_fp2_mul_fp(l1, &theta, &p->x);
    qr_fp2_neg(l1, l1);
    qr_fp2_mul(&s, &theta, &q->x);
    qr_fp2_mul(l3, &lambda, &q->y);
    qr_fp2_sub(l3, &s, l3);
}

static void s_miller_batch(qr_fp12_t *f, const qr_g1_affine_t *P, const qr_g2_affine_t *Q, size_t n)
{
    static const signed char naf[QR_BN254_ATE_NAF_LEN] = QR_BN254_ATE_NAF;
    s_proj_t T[S_BATCH];
    qr_g2_affine_t negQ[S_BATCH];
    qr_fp2_t l0, l1, l3;

    for (size_t i = 0; i < n; i++) {
        T[i].x = Q[i].x;
        T[i].y = Q[i].y;
        qr_fp2_one(&T[i].z);
        negQ[i].x = Q[i].x;
        qr_fp2_neg(&negQ[i].y, &Q[i].y);
    }
    qr_fp12_one(f);
    /* the leading digit is 1: T = Q already */
    for (int j = 1; j < QR_BN254_ATE_NAF_LEN; j++) {
        if (j > 1)
            qr_fp12_sqr(f, f);
        for (size_t i = 0; i < n; i++) {
            s_dbl_step(&T[i], &l0, &l1, &l3, &P[i]);
            qr_fp12_mul_line(f, &l0, &l1, &l3);
        }
        if (naf[j] == 0)
            continue;
        for (size_t i = 0; i < n; i++) {
            s_add_step(&T[i], &l0, &l1, &l3, naf[j] > 0 ? &Q[i] : &negQ[i], &P[i]);
            qr_fp12_mul_line(f, &l0, &l1, &l3);
        }
    }
    /* T = [6u+2] Q; add pi(Q) and -pi^2(Q) */
    for (size_t i = 0; i < n; i++) {
        qr_g2_t q, q1, q2;
        qr_g2_affine_t a1, a2;
        qr_g2_from_affine(&q, &Q[i]);
        qr_g2_psi(&q1, &q);
        qr_g2_psi(&q2, &q1);
        /* psi keeps Z = 1 (conj(1) = 1), so these are affine already */
        a1.x = q1.x;
        a1.y = q1.y;
        a2.x = q2.x;
        qr_fp2_neg(&a2.y, &q2.y);
        s_add_step(&T[i], &l0, &l1, &l3, &a1, &P[i]);
        qr_fp12_mul_line(f, &l0, &l1, &l3);
        s_add_step(&T[i], &l0, &l1, &l3, &a2, &P[i]);
        qr_fp12_mul_line(f, &l0, &l1, &l3);
    }
}

void qr_bn254_miller_loop(qr_fp12_t *f, const qr_g1_affine_t *P, const qr_g2_affine_t *Q, size_t n)
{
    qr_g1_affine_t bp[S_BATCH];
    qr_g2_affine_t bq[S_BATCH];
    size_t k = 0;
    qr_fp12_one(f);
    for (size_t i = 0; i <= n; i++) {
        if (i < n && !qr_g1_affine_is_inf(&P[i]) && !qr_g2_affine_is_inf(&Q[i])) {
            bp[k] = P[i];
            bq[k] = Q[i];
            k++;
        }
        if (k == S_BATCH || (i == n && k > 0)) {
            qr_fp12_t g;
            s_miller_batch(&g, bp, bq, k);
            qr_fp12_mul(f, f, &g);
            k = 0;
        }
    }
}

/* r = a^u, u = 4965661367192848881 (63 bits), a in the cyclotomic subgroup */
static void s_exp_by_u(qr_fp12_t *r, const qr_fp12_t *a)
{
    const uint64_t u = QR_BN254_U;
    qr_fp12_t acc = *a;
    for (int i = 61; i >= 0; i--) {
        qr_fp12_cyclo_sqr(&acc, &acc);
        if ((u >> i) & 1)
            qr_fp12_mul(&acc, &acc, a);
    }
    *r = acc;
}

void qr_bn254_final_exp(qr_fp12_t *r, const qr_fp12_t *f)
{
    qr_fp12_t t, m;
    /* easy part: m = f^((p^6 - 1)(p^2 + 1)), now in the cyclotomic subgroup */
    qr_fp12_inv(&t, f);
    qr_fp12_conj(&m, f);
    qr_fp12_mul(&m, &m, &t);
    qr_fp12_frob(&t, &m, 2);
    qr_fp12_mul(&m, &m, &t);

    /* hard part: m^(s (p^4 - p^2 + 1) / r), s = 2u(6u^2 + 3u + 1), as
     * lambda_0 + lambda_1 p + lambda_2 p^2 + lambda_3 p^3 with
     *   lambda_0 = 12u^3 + 12u^2 + 6u + 1   lambda_1 = 12u^3 + 6u^2 + 4u
     *   lambda_2 = 12u^3 + 6u^2 + 6u        lambda_3 = 12u^3 + 6u^2 + 4u - 1
     * (Fuentes-Castaneda, Knapp, Rodriguez-Henriquez 2011); the exponents
     * of each step are in the comments. */
    qr_fp12_t a, b, c, d, e, g, k, l, n, t1;
    s_exp_by_u(&a, &m);
    qr_fp12_conj(&a, &a);      /* -u */
    qr_fp12_cyclo_sqr(&b, &a); /* -2u */
    qr_fp12_cyclo_sqr(&c, &b); /* -4u */
    qr_fp12_mul(&d, &c, &b);   /* -6u */
    s_exp_by_u(&e, &d);
    qr_fp12_conj(&e, &e);      /* 6u^2 */
    qr_fp12_cyclo_sqr(&g, &e); /* 12u^2 */
    s_exp_by_u(&g, &g);        /* 12u^3 */
    qr_fp12_conj(&d, &d);      /* 6u */
    qr_fp12_mul(&k, &g, &e);   /* 12u^3 + 6u^2 */
    qr_fp12_mul(&k, &k, &d);   /* 12u^3 + 6u^2 + 6u = lambda_2 */
    qr_fp12_mul(&l, &k, &b);   /* 12u^3 + 6u^2 + 4u = lambda_1 */
    qr_fp12_mul(&n, &k, &e);   /* 12u^3 + 12u^2 + 6u */
    qr_fp12_mul(&n, &n, &m);   /* lambda_0 */
    qr_fp12_frob(&t1, &l, 1);
    qr_fp12_mul(&n, &n, &t1); /* + lambda_1 p */
    qr_fp12_frob(&t1, &k, 2);
    qr_fp12_mul(&n, &n, &t1); /* + lambda_2 p^2 */
    qr_fp12_conj(&t1, &m);
    qr_fp12_mul(&t1, &t1, &l); /* lambda_3 */
    qr_fp12_frob(&t1, &t1, 3);
    qr_fp12_mul(r, &n, &t1); /* + lambda_3 p^3 */
}

void qr_bn254_pairing(qr_fp12_t *r, const qr_g1_affine_t *P, const qr_g2_affine_t *Q)
{
    qr_fp12_t f;
    qr_bn254_miller_loop(&f, P, Q, 1);
    qr_bn254_final_exp(r, &f);
}

bool qr_bn254_pairing_check(const qr_g1_affine_t *P, const qr_g2_affine_t *Q, size_t n)
{
    qr_fp12_t f, r;
    qr_bn254_miller_loop(&f, P, Q, n);
    qr_bn254_final_exp(&r, &f);
    return qr_fp12_is_one(&r);
}
