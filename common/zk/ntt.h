/* Radix-2 number-theoretic transform over Fr, for the polynomial arithmetic
 * of a Groth16 prover (the H polynomial: A, B, C from evaluations to
 * coefficients, then to evaluations on a coset).
 *
 * r - 1 = 2^28 t with t odd, so sizes n = 2^k run up to 2^28.  The roots
 * are the ones snarkjs/ffjavascript use: 5 is the least quadratic
 * non-residue mod r, w_28 = 5^t is a primitive 2^28-th root of unity, and
 * w_k = w_28^(2^(28-k)).  The same 5 generates Fr^*, which makes it the
 * usual coset shift; snarkjs's prover instead evaluates on the coset
 * w_{k+1} <w_k> (the odd powers of w_{k+1}), so the shift is a parameter.
 *
 * Forward: a_i <- sum_j a_j w^(ij), natural order in and out (bit reversal,
 * then Cooley-Tukey butterflies, cache-blocked: the stages within blocks of
 * 2^10 elements in one pass, the rest by column tiles in a second, see
 * ntt.c).  Inverse: the same butterflies with w^-1 (w^-e = -w^(n/2 - e)),
 * and a multiplication by 1/n, so one twiddle table (n/2 powers of w, 16 n
 * bytes) serves both.  Large sizes split the bit reversal, the blocks and
 * the tiles across threads (pthreads); the result does not depend on the
 * thread count. */
#ifndef QR_ZK_NTT_H
#define QR_ZK_NTT_H

#include "bn254_field.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qr_ntt qr_ntt_t;

#define QR_NTT_MAX_LOG 28

/* A domain of n = 2^log_n points (0 <= log_n <= 28) using up to threads
 * threads (0 or 1: the caller's thread only).  Returns NULL on a bad
 * log_n or OOM; the table is 16 n bytes (4 GiB at 2^28). */
qr_ntt_t *qr_ntt_new(unsigned log_n, unsigned threads);
/* NULL-safe; nulls *self_p */
void qr_ntt_destroy(qr_ntt_t **self_p);
size_t qr_ntt_size(const qr_ntt_t *self);

/* In place on n elements */
void qr_ntt_forward(const qr_ntt_t *self, qr_fr_t *a);
void qr_ntt_inverse(const qr_ntt_t *self, qr_fr_t *a);
/* Evaluations at shift w^i of the polynomial with coefficients a, and back */
void qr_ntt_coset_forward(const qr_ntt_t *self, qr_fr_t *a, const qr_fr_t *shift);
void qr_ntt_coset_inverse(const qr_ntt_t *self, qr_fr_t *a, const qr_fr_t *shift);

/* w_k, a primitive 2^log_n-th root of unity (log_n <= 28) */
void qr_fr_root_of_unity(qr_fr_t *r, unsigned log_n);
/* 5, the multiplicative generator (and ffjavascript's non-residue) */
void qr_fr_generator(qr_fr_t *r);
/* a[i] <-> a[bitrev(i)] over n = 2^log_n elements */
void qr_ntt_bitreverse(qr_fr_t *a, unsigned log_n);

#ifdef __cplusplus
}
#endif

#endif
