/* The optimal ate pairing on BN254, e: G1 x G2 -> GT (the order-r subgroup
 * of Fp12^*), and the product check a Groth16 verifier needs:
 *
 *   e(-A, B) e(alpha, beta) e(L, gamma) e(C, delta) == 1
 *
 * The value of e is the one snarkjs, libsnark and gnark compute (same
 * curve, tower and generators, final exponent s (p^12 - 1)/r with
 * s = 2u(6u^2 + 3u + 1); see bn254_pairing.c), so a GT value such as
 * snarkjs's vk_alphabeta_12 can be compared with theirs.  EIP-197 only
 * answers whether a product is 1, which any such power preserves.  Inputs are taken as given: check
 * points read from outside with the readers in bn254_curve.h (on curve, G2 subgroup) first. */
#ifndef QR_ZK_BN254_PAIRING_H
#define QR_ZK_BN254_PAIRING_H

#include "bn254_curve.h"

#ifdef __cplusplus
extern "C" {
#endif

/* f = product over i < n of the Miller loops f_{6u+2,Q_i}(P_i) with the two
 * Frobenius lines; pairs with a point at infinity contribute 1.  Loops run
 * side by side so they share the squarings of f. */
void qr_bn254_miller_loop(qr_fp12_t *f, const qr_g1_affine_t *P, const qr_g2_affine_t *Q, size_t n);
/* r = f^(s (p^12 - 1) / r), s = 2u(6u^2 + 3u + 1) (QR_BN254_FE_MULTIPLE) */
void qr_bn254_final_exp(qr_fp12_t *r, const qr_fp12_t *f);
/* r = e(P, Q) */
void qr_bn254_pairing(qr_fp12_t *r, const qr_g1_affine_t *P, const qr_g2_affine_t *Q);
/* Whether prod_i e(P_i, Q_i) == 1 (true for n = 0, as EIP-197) */
bool qr_bn254_pairing_check(const qr_g1_affine_t *P, const qr_g2_affine_t *Q, size_t n);

#ifdef __cplusplus
}
#endif

#endif
