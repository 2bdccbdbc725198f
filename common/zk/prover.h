/* The Groth16 prover over BN254, computing what snarkjs's
 * groth16_prove.js computes (same key layout, same H, same blinding), so
 * its proofs verify against snarkjs verification keys and contracts.
 *
 * Steps (k = log2(domain), n = 2^k):
 *   1. a_j = (A w)_j, b_j = (B w)_j from the key's coefficients (snarkjs's
 *      extra rows binding the public signals included), c_j = a_j b_j;
 *   2. each of a, b, c: inverse NTT, then evaluation on the coset
 *      w_{k+1} <w_k> (the odd powers of the 2n-th root of unity, where
 *      x^n - 1 = -2), and p_j = a_j b_j - c_j there: the values of
 *      (A B - C)(x) that the key's H points (L'_{2j+1}(tau) / delta) expect;
 *   3. MSMs: A = sum w_i a_i, B1 = sum w_i b1_i (G1), B2 = sum w_i b2_i
 *      (G2), C = sum over private i of w_i c_i, H = sum p_j h_j;
 *   4. with r, s uniform in Fr:
 *        pi_a = alpha1 + A + r delta1
 *        pi_b = beta2 + B2 + s delta2,     b1 = beta1 + B1 + s delta1
 *        pi_c = C + H + s pi_a + r b1 - r s delta1.
 *
 * The witness is checked for its length (n_vars) and w[0] = 1; the key's
 * coefficients for their indices.  Whether w satisfies the constraints
 * cannot be seen from a .zkey (it keeps A and B but not C), and the prover
 * computes C as A o B, so a wrong witness gives a proof that fails to
 * verify: callers that need to know run qr_g16_verify on the result (one
 * ~1 ms pairing check).
 *
 * Backends: qr_g16_prove_backend runs the MSMs and NTTs through a table
 * of function pointers (qr_g16_backend_t) instead of msm.c and ntt.c: the
 * worker's GPU (common/gpu.h, qr_gpu_g16_backend) plugs in there, so this
 * library does not depend on the GPU loader.  An entry left NULL runs on
 * the CPU.  A backend call that fails fails the proof (-1, the message
 * naming the step and the backend); the caller proves again on the CPU.
 *
 * Thread-safety: reads pk and w only; concurrent calls are fine (a backend
 * must be thread-safe itself to be shared by concurrent proofs).
 * `threads` <= 0 means the online CPUs. */
#ifndef QR_ZK_PROVER_H
#define QR_ZK_PROVER_H

#include "groth16.h"
#include "msm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Seconds spent in each step of one proof (for the benchmark) */
typedef struct {
    double abc;  /* A w, B w, A o B */
    double ntt;  /* 3 inverse, 3 coset NTTs and the join */
    double msm_g1; /* A, B1, C, H */
    double msm_g2; /* B2 */
    double total;
} qr_g16_timing_t;

/* The NTT steps a backend's ntt() runs, in this order (a bit set):
 * qr_ntt_inverse, then qr_ntt_coset_forward with shift; 0 alone is
 * qr_ntt_forward.  The prover asks for INVERSE | COSET_FORWARD. */
#define QR_G16_NTT_INVERSE 1u
#define QR_G16_NTT_COSET_FORWARD 2u

/* Where the heavy steps run.  Each function returns 0, or -1 with a
 * message in err; each must give exactly what the CPU function it replaces
 * gives (qr_g1_msm, qr_g2_msm: the same point; the NTT: the same limbs).
 * NULL entries run on the CPU. */
typedef struct {
    const char *name; /* for messages: "GPU" */
    void *ctx;        /* passed back to every call */
    /* out = sum_{i < n} k_i bases_i */
    int (*g1_msm)(void *ctx, qr_g1_t *out, const qr_g1_affine_t *bases, const qr_msm_scalar_t *k,
                  size_t n, char *err, size_t errlen);
    int (*g2_msm)(void *ctx, qr_g2_t *out, const qr_g2_affine_t *bases, const qr_msm_scalar_t *k,
                  size_t n, char *err, size_t errlen);
    /* in place on the 2^log_n elements of a; shift read with COSET_FORWARD */
    int (*ntt)(void *ctx, qr_fr_t *a, unsigned log_n, unsigned ops, const qr_fr_t *shift, char *err,
               size_t errlen);
} qr_g16_backend_t;

/* A proof of w under pk with r, s drawn from the OS (getrandom, rejection
 * sampling: uniform in [0, r)).  0, or -1 with err set. */
int qr_g16_prove(const qr_g16_pk_t *pk, const qr_fr_t *w, uint32_t n_w, int threads,
                 qr_g16_proof_t *out, char *err, size_t errlen);
/* The same with given r and s (deterministic; tests and cross-checks
 * against snarkjs with its random values patched) */
int qr_g16_prove_rs(const qr_g16_pk_t *pk, const qr_fr_t *w, uint32_t n_w, const qr_fr_t *r,
                    const qr_fr_t *s, int threads, qr_g16_proof_t *out, char *err,
                    size_t errlen);
/* Either of the above (r, s NULL: from the OS), filling *timing if given */
int qr_g16_prove_timed(const qr_g16_pk_t *pk, const qr_fr_t *w, uint32_t n_w, const qr_fr_t *r,
                       const qr_fr_t *s, int threads, qr_g16_timing_t *timing,
                       qr_g16_proof_t *out, char *err, size_t errlen);

/* qr_g16_prove_timed with the MSMs and NTTs through backend (NULL: all on
 * the CPU, exactly qr_g16_prove_timed).  With the same r and s the proof
 * equals the CPU's.  -1 with err set when a backend call fails (err names
 * the backend and the step) or for the reasons above. */
int qr_g16_prove_backend(const qr_g16_pk_t *pk, const qr_fr_t *w, uint32_t n_w, const qr_fr_t *r,
                         const qr_fr_t *s, int threads, const qr_g16_backend_t *backend,
                         qr_g16_timing_t *timing, qr_g16_proof_t *out, char *err, size_t errlen);

/* A uniform element of Fr from getrandom; -1 when the OS gives none */
int qr_fr_random(qr_fr_t *out);

#ifdef __cplusplus
}
#endif

#endif
