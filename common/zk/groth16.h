/* Groth16 over BN254, compatible with snarkjs: the proving key as read from
 * a .zkey, the verification key, proofs, the prover and the verifier.
 *
 * Data flow: qr_zkey_load (zkey.c) fills a qr_g16_pk_t; qr_wtns_load
 * (wtns.c) gives the witness; qr_g16_prove (prover.c) makes a proof with
 * random r and s from the OS; qr_g16_verify (verify.c) checks it with one
 * multi-pairing.  JSON in and out (proof.json, public.json,
 * verification_key.json) is byte-for-byte what snarkjs writes (g16_json.c).
 *
 * Field elements are qr_fr_t in our Montgomery form (bn254_field.h), points
 * affine with (0, 0) as infinity (bn254_curve.h), whatever the file formats
 * store; the readers convert and check (on the curve, in the subgroup for
 * G2, canonical field elements).
 *
 * Ownership: everything a *_load or *_read returns is the caller's, freed
 * with its *_destroy (NULL-safe, nulls the pointer).  Thread-safety: the
 * structures are immutable once loaded; qr_g16_prove and qr_g16_verify may
 * run concurrently on one key. */
#ifndef QR_ZK_GROTH16_H
#define QR_ZK_GROTH16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn254_curve.h"
#include "bn254_field.h"

/* One non-zero entry of the A or B matrix of the R1CS as the .zkey keeps it
 * (snarkjs section 4, "coefs"): matrix 0 = A, 1 = B. */
typedef struct {
    uint32_t matrix;     /* 0: A, 1: B */
    uint32_t constraint; /* row, < domain_size */
    uint32_t signal;     /* column (witness index), < n_vars */
    qr_fr_t value;       /* our Montgomery form */
} qr_g16_coef_t;

/* The proving key (a .zkey's Groth16 sections). */
typedef struct {
    uint32_t n_vars;      /* witness length, including the leading 1 */
    uint32_t n_public;    /* public signals (outputs then public inputs) */
    uint32_t domain_size; /* power of two >= constraints + public + 1 */
    uint32_t log_domain;  /* log2(domain_size) */
    qr_g1_affine_t alpha1, beta1, delta1;
    qr_g2_affine_t beta2, gamma2, delta2;
    qr_g1_affine_t *ic;   /* n_public + 1: the verification key's IC */
    qr_g16_coef_t *coefs; /* n_coefs entries of A and B */
    size_t n_coefs;
    qr_g1_affine_t *a;    /* n_vars */
    qr_g1_affine_t *b1;   /* n_vars */
    qr_g2_affine_t *b2;   /* n_vars */
    qr_g1_affine_t *c;    /* n_vars; the first n_public + 1 are unused (infinity) */
    qr_g1_affine_t *h;    /* domain_size: the H query, for snarkjs's odd-coset H */
    void *mem;            /* the allocation behind the arrays (reader's business) */
} qr_g16_pk_t;

/* The verification key. */
typedef struct {
    uint32_t n_public;
    qr_g1_affine_t alpha1;
    qr_g2_affine_t beta2, gamma2, delta2;
    qr_g1_affine_t *ic; /* n_public + 1 */
} qr_g16_vk_t;

/* A proof: pi_a, pi_b, pi_c. */
typedef struct {
    qr_g1_affine_t a;
    qr_g2_affine_t b;
    qr_g1_affine_t c;
} qr_g16_proof_t;

#endif
