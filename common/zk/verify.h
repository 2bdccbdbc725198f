/* The Groth16 verifier (one multi-pairing) and the verification key taken
 * from a proving key.
 *
 * Checks, for public signals x_1..x_n and L = IC_0 + sum x_i IC_i:
 *
 *   e(-A, B) e(alpha1, beta2) e(L, gamma2) e(C, delta2) == 1
 *
 * the equation of snarkjs's groth16_verify.js, as one qr_bn254_pairing_check
 * (four Miller loops sharing one final exponentiation, ~1.1 ms). */
#ifndef QR_ZK_VERIFY_H
#define QR_ZK_VERIFY_H

#include "groth16.h"

#ifdef __cplusplus
extern "C" {
#endif

/* True only for a valid proof of these public signals under vk.  The
 * proof's points are checked first (A and C on G1, B on the twist and in
 * G2), since a proof is untrusted input whatever its origin; the key is
 * trusted (its loaders check it).  n_pub must equal vk->n_public.  Values
 * in pub are field elements, so already below r (the JSON reader refuses
 * anything else, as snarkjs does). */
bool qr_g16_verify(const qr_g16_vk_t *vk, const qr_fr_t *pub, uint32_t n_pub,
                   const qr_g16_proof_t *p);

/* The verification key inside a proving key (copies; the pk may go).
 * NULL only when out of memory.  Free with qr_g16_vk_destroy. */
qr_g16_vk_t *qr_g16_vk_from_pk(const qr_g16_pk_t *pk);
/* A key with room for n_public + 1 IC points, the rest zero */
qr_g16_vk_t *qr_g16_vk_new(uint32_t n_public);
void qr_g16_vk_destroy(qr_g16_vk_t **self_p);

#ifdef __cplusplus
}
#endif

#endif
