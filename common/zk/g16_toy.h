/* A Groth16 trusted setup from known secrets, and a synthetic circuit, for
 * tests and benchmarks of the prover without snarkjs.
 *
 * NOT A SETUP TO USE: whoever knows tau, alpha, beta, gamma, delta can
 * forge proofs.  It exists because a key computed directly from the
 * definitions is an independent check of the prover (a proof of a
 * satisfying witness must pass the pairing equation, a wrong one must not),
 * and because it makes keys of any size in seconds where a snarkjs
 * ceremony takes hours.
 *
 * The key has exactly the layout snarkjs's zkey_new.js gives (so the prover
 * cannot tell it from a .zkey): per signal i,
 *   a_i = A_i(tau), b_i = B_i(tau) in G1 (and b_i in G2),
 *   c_i = (beta A_i(tau) + alpha B_i(tau) + C_i(tau)) / delta  (private i),
 *   ic_i = the same over gamma  (i <= n_public),
 * where X_i(tau) = sum over constraints j of X[j][i] L_j(tau) in the
 * Lagrange basis of the domain, with snarkjs's extra rows
 * n_constraints + i (A: signal i, coefficient 1) for i <= n_public; and
 *   h_j = L'_{2j+1}(tau) / delta,  L' the Lagrange basis of the domain of
 *   size 2 n (the odd points, where snarkjs evaluates H). */
#ifndef QR_ZK_G16_TOY_H
#define QR_ZK_G16_TOY_H

#include "groth16.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One non-zero entry of an R1CS: (A w)_j (B w)_j = (C w)_j for every j */
typedef struct {
    uint32_t matrix; /* 0 A, 1 B, 2 C */
    uint32_t constraint;
    uint32_t signal;
    qr_fr_t value;
} qr_g16_toy_term_t;

typedef struct {
    uint32_t n_vars;        /* including the constant 1 at index 0 */
    uint32_t n_public;      /* signals 1..n_public are public */
    uint32_t n_constraints;
    const qr_g16_toy_term_t *terms;
    size_t n_terms;
} qr_g16_toy_r1cs_t;

/* The secrets; non-zero, and tau off the domains (the setup checks) */
typedef struct {
    qr_fr_t tau, alpha, beta, gamma, delta;
} qr_g16_toy_secrets_t;

typedef struct {
    qr_g16_pk_t pk;
    qr_g16_vk_t vk;
} qr_g16_toy_t;

/* The key pair for cs; NULL on a malformed cs, a degenerate secret, a
 * domain over 2^27 or OOM (err says which).  threads as in msm.h. */
qr_g16_toy_t *qr_g16_toy_setup(const qr_g16_toy_r1cs_t *cs, const qr_g16_toy_secrets_t *sec,
                               unsigned threads, char *err, size_t errlen);
/* NULL-safe; nulls *self_p */
void qr_g16_toy_destroy(qr_g16_toy_t **self_p);

/* Secrets derived from a seed (small distinct integers mixed by a hash;
 * deterministic, for reproducible tests) */
void qr_g16_toy_secrets(qr_g16_toy_secrets_t *sec, uint64_t seed);

/* A synthetic circuit of n_constraints constraints (>= 2) with one public
 * output, shaped like circom output: row i is
 *   (x_i + k_i) (x_{i-1} + 1) = x_{i+1}      (x_{-1} = the constant 1)
 * and the last row binds the output, out * 1 = x_last.  The witness is
 * computed from a seed, so its values are full-size field elements (the
 * hard case for an MSM).  *terms and *witness are malloc'd (the caller
 * frees them); -1 on OOM. */
int qr_g16_toy_circuit(uint32_t n_constraints, uint64_t seed, qr_g16_toy_r1cs_t *cs,
                       qr_g16_toy_term_t **terms, qr_fr_t **witness);

/* out[j] = x_j (tau^m - 1) / (m (tau - x_j)), x_j = x0 step^j, j < cnt:
 * the Lagrange basis of the size-m domain at tau, for cnt of its points
 * (x0 = 1, step = the m-th root of unity: all of them, in natural order).
 * 0, or -1 when tau is one of the points or on OOM.  Thread-safe. */
int qr_g16_toy_lagrange(qr_fr_t *out, size_t cnt, size_t m, const qr_fr_t *tau, const qr_fr_t *x0,
                        const qr_fr_t *step);

/* Whether w satisfies cs (every row, exactly) */
bool qr_g16_toy_satisfied(const qr_g16_toy_r1cs_t *cs, const qr_fr_t *w);

#ifdef __cplusplus
}
#endif

#endif
