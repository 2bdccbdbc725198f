/* Groth16 verification; see verify.h */
#include "verify.h"

#include <stdlib.h>
#include <string.h>

#include "bn254_pairing.h"

qr_g16_vk_t *qr_g16_vk_new(uint32_t n_public)
{
    qr_g16_vk_t *vk = calloc(1, sizeof *vk);
    if (!vk)
        return NULL;
    vk->n_public = n_public;
    vk->ic = calloc((size_t)n_public + 1, sizeof *vk->ic);
    if (!vk->ic) {
        free(vk);
        return NULL;
    }
    return vk;
}

void qr_g16_vk_destroy(qr_g16_vk_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->ic);
    free(*self_p);
    *self_p = NULL;
}

qr_g16_vk_t *qr_g16_vk_from_pk(const qr_g16_pk_t *pk)
{
    qr_g16_vk_t *vk = qr_g16_vk_new(pk->n_public);
    if (!vk)
        return NULL;
    vk->alpha1 = pk->alpha1;
    vk->beta2 = pk->beta2;
    vk->gamma2 = pk->gamma2;
    vk->delta2 = pk->delta2;
    memcpy(vk->ic, pk->ic, ((size_t)pk->n_public + 1) * sizeof *vk->ic);
    return vk;
}

bool qr_g16_verify(const qr_g16_vk_t *vk, const qr_fr_t *pub, uint32_t n_pub,
                   const qr_g16_proof_t *p)
{
    if (!vk || !p || n_pub != vk->n_public || (n_pub && !pub))
        return false;
    /* an off-curve point would make the pairing meaningless, and a point
     * of the twist outside G2 would let small-subgroup tricks through */
    if (!qr_g1_affine_on_curve(&p->a) || !qr_g1_affine_on_curve(&p->c) ||
        !qr_g2_affine_on_curve(&p->b) || !qr_g2_in_subgroup(&p->b))
        return false;

    qr_g1_t acc, t;
    qr_g1_from_affine(&acc, &vk->ic[0]);
    for (uint32_t i = 0; i < n_pub; i++) {
        if (qr_fr_is_zero(&pub[i]))
            continue;
        qr_g1_from_affine(&t, &vk->ic[i + 1]);
        qr_g1_mul_fr(&t, &t, &pub[i]);
        qr_g1_add(&acc, &acc, &t);
    }
    qr_g1_affine_t P[4];
    qr_g2_affine_t Q[4];
    /* -A: negate y (infinity stays (0, 0)) */
    P[0] = p->a;
    if (!qr_g1_affine_is_inf(&p->a))
        qr_fp_neg(&P[0].y, &p->a.y);
    Q[0] = p->b;
    P[1] = vk->alpha1;
    Q[1] = vk->beta2;
    qr_g1_to_affine(&P[2], &acc);
    Q[2] = vk->gamma2;
    P[3] = p->c;
    Q[3] = vk->delta2;
    return qr_bn254_pairing_check(P, Q, 4);
}
