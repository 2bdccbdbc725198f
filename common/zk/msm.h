/* Multi-scalar multiplication in G1 and G2 of BN254: sum_i k_i P_i over
 * affine bases, the bulk of a Groth16 prover's time, and batch fixed-base
 * multiplication k_i G (for making keys, not for proving).
 *
 * Pippenger's bucket method (see msm.c for the design notes):
 *   - window width c picked per call from n, the group and the thread count
 *     by a cost model (c <= 16);
 *   - signed digits in [-2^(c-1), 2^(c-1)], so 2^(c-1) buckets per window
 *     instead of 2^c - 1 (negating an affine point is free);
 *   - for c >= 11 the buckets are affine and additions are batched so that
 *     one field inversion serves a whole batch (Montgomery's trick): about
 *     6 multiplications per addition against 11 for a mixed Jacobian one
 *     (G2 inverts Fp norms, not Fp2 denominators); a point whose bucket is
 *     already waiting in the batch waits for the next batch, or when too
 *     many wait, goes into a Jacobian twin of that bucket;
 *   - the buckets' running sums are batched too (segments of buckets
 *     summed side by side, one inversion a step);
 *   - the signed digits can be made once and shared by several MSMs over
 *     the same scalars (qr_msm_digits_new);
 *   - windows (and, with more threads than windows, slices of the points)
 *     are shared out to pthreads through an atomic counter; the caller's
 *     thread works too, so the result never depends on thread creation.
 *
 * Scalars are canonical integers below r (qr_msm_scalar_t, what
 * qr_fr_to_canonical gives): the Montgomery form is converted out once by
 * the caller (the prover reuses one conversion of the witness for four
 * MSMs); the _fr variants convert for you.  Bases with (0, 0) (infinity)
 * and zero scalars are allowed and contribute nothing.  Nothing here is
 * constant-time.
 *
 * Threads: `threads` 0 means the online CPUs (sysconf), 1 the caller only.
 * Every function returns 0, or -1 when memory ran out (out untouched). */
#ifndef QR_ZK_MSM_H
#define QR_ZK_MSM_H

#include "bn254_curve.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A scalar as a canonical little-endian integer, < r */
typedef struct {
    uint64_t l[4];
} qr_msm_scalar_t;

/* out[i] = canonical(in[i]); with threads for large n */
void qr_msm_scalars_from_fr(qr_msm_scalar_t *out, const qr_fr_t *in, size_t n, unsigned threads);

/* out = sum_{i < n} k[i] bases[i] */
int qr_g1_msm(qr_g1_t *out, const qr_g1_affine_t *bases, const qr_msm_scalar_t *k, size_t n,
              unsigned threads);
int qr_g2_msm(qr_g2_t *out, const qr_g2_affine_t *bases, const qr_msm_scalar_t *k, size_t n,
              unsigned threads);
/* Same with the window width forced to c (2..16; 0 picks as above), for
 * tests of the batched path on small n and for tuning; -1 on a bad c */
int qr_g1_msm_c(qr_g1_t *out, const qr_g1_affine_t *bases, const qr_msm_scalar_t *k, size_t n,
                unsigned threads, unsigned c);
int qr_g2_msm_c(qr_g2_t *out, const qr_g2_affine_t *bases, const qr_msm_scalar_t *k, size_t n,
                unsigned threads, unsigned c);
/* Several MSMs over the same scalars (a Groth16 prover's A, B1, C in G1
 * and B2 in G2 all take the witness) can share one signed-digit
 * decomposition: qr_msm_digits_new makes it once for window width c
 * (2..16; 0 picks qr_msm_window(n, 0, threads)), 2 n ceil(255/c) bytes
 * (32 MiB at n = 2^20, c = 16), split over `threads`.  NULL on a bad c, k
 * NULL with n > 0, or out of memory; caller owns it.  It does not keep k.
 * Read-only once made: any number of MSMs, G1 and G2, may use it at once. */
typedef struct qr_msm_digits qr_msm_digits_t;
qr_msm_digits_t *qr_msm_digits_new(const qr_msm_scalar_t *k, size_t n, unsigned c,
                                   unsigned threads);
/* NULL-safe; nulls *self_p */
void qr_msm_digits_destroy(qr_msm_digits_t **self_p);
/* its window width c, its scalar count n */
unsigned qr_msm_digits_window(const qr_msm_digits_t *self);
size_t qr_msm_digits_size(const qr_msm_digits_t *self);
/* out = sum_{lo <= i < hi} k_i bases[i] with the k of d (bases indexed as
 * the scalars; bases[i] for i outside [lo, hi) are not read): the same
 * result as qr_g1_msm over that range.  -1 on lo > hi, hi > n, d NULL, or
 * out of memory. */
int qr_g1_msm_digits(qr_g1_t *out, const qr_g1_affine_t *bases, const qr_msm_digits_t *d, size_t lo,
                     size_t hi, unsigned threads);
int qr_g2_msm_digits(qr_g2_t *out, const qr_g2_affine_t *bases, const qr_msm_digits_t *d, size_t lo,
                     size_t hi, unsigned threads);
/* Same with Fr scalars (Montgomery form); allocates 32 n bytes */
int qr_g1_msm_fr(qr_g1_t *out, const qr_g1_affine_t *bases, const qr_fr_t *k, size_t n,
                 unsigned threads);
int qr_g2_msm_fr(qr_g2_t *out, const qr_g2_affine_t *bases, const qr_fr_t *k, size_t n,
                 unsigned threads);

/* out[i] = k[i] base, affine, for many scalars and one base: a table of
 * shifted multiples of base, then about 255/c batched affine additions per
 * output.  Used to make proving keys from known secrets (tests, benches). */
int qr_g1_mul_fixed_batch(qr_g1_affine_t *out, const qr_g1_affine_t *base, const qr_fr_t *k,
                          size_t n, unsigned threads);
int qr_g2_mul_fixed_batch(qr_g2_affine_t *out, const qr_g2_affine_t *base, const qr_fr_t *k,
                          size_t n, unsigned threads);

/* The window width qr_g1_msm / qr_g2_msm would use (for the bench output) */
unsigned qr_msm_window(size_t n, int g2, unsigned threads);
/* threads as the functions above resolve it (0: online CPUs) */
unsigned qr_msm_threads(unsigned threads);

#ifdef __cplusplus
}
#endif

#endif
