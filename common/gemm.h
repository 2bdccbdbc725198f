/* fp32 matrix product for the ai.gemm job kind, and its verification.
 *
 * Matrices are row-major fp32: A is m x k, B is k x n, C is m x n.  The worker
 * computes C with OpenBLAS (qr_gemm_rows); the broker checks a returned C with
 * Freivalds' test (qr_gemm_verify) in O(mk + kn + mn) instead of O(mnk).
 * All functions are thread-safe (no shared state). */
#ifndef QR_GEMM_H
#define QR_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest dimension the broker accepts for one side of a matrix. */
#define QR_GEMM_MAX_DIM 65536u

/* Work units billed for an m x n x k product: one unit per started 2^20
 * multiply-adds, at least 1. */
uint64_t qr_gemm_units(uint32_t m, uint32_t n, uint32_t k);

/* Checks the shape and returns the byte sizes of A, B and C through the OUT
 * parameters.  Returns 0, or -1 when a dimension is 0, over QR_GEMM_MAX_DIM, or
 * a size overflows. */
int qr_gemm_sizes(uint32_t m, uint32_t n, uint32_t k, size_t *a_bytes, size_t *b_bytes,
                  size_t *c_bytes);

/* Computes rows [row0, row0 + rows) of C = A * B with cblas_sgemm. */
void qr_gemm_rows(const float *A, const float *B, float *C, uint32_t m, uint32_t n, uint32_t k,
                  uint32_t row0, uint32_t rows);

/* Freivalds' check of C against A * B with `rounds` random vectors drawn from
 * seed.  A row passes when |(Cr)_i - (A(Br))_i| is within
 * tol * ((|A|(|B||r|))_i + (|C||r|)_i), where tol covers the worst-case
 * rounding of an honest fp32 product and of the check itself: with OpenBLAS
 * fp32 matrix-vector products (the fast path, for inputs up to 2^24
 * elements) tol = 3 (k + n + 2) 2^-24; with fp64 sums (larger inputs, or when
 * an fp32 intermediate is not finite) tol = 2 k 2^-24.  An honest result never
 * fails; a change larger than the bound escapes one round only when the
 * random weight at that column is smaller than bound / change.  *worst (may
 * be NULL) receives the largest ratio of deviation to bound seen (<= 1
 * passes).  A C holding inf or NaN never passes, nor does a row whose bound
 * is not finite (the broker refuses non-finite inputs at submit).  Returns 0
 * when C passes, 1 when it does not, -1 when out of memory. */

/* For checking many results against one B (a model's weights): |B| made
 * once, or NULL when B holds values so tiny that the fp32 path would not be
 * safe (or out of memory).  Caller frees. */
float *qr_gemm_prepare_b(const float *B, uint32_t k, uint32_t n);
/* qr_gemm_verify with absB from qr_gemm_prepare_b for this B (or NULL). */
int qr_gemm_verify_b(const float *A, const float *B, const float *absB, const float *C, uint32_t m,
                     uint32_t n, uint32_t k, int rounds, uint64_t seed, double *worst);

/* The tolerance of qr_gemm_verify's fp32 path for C = A B with A m x k and
 * B k x n: a row passes when its deviation is within tol * ((|A|(|B||r|))_i
 * + (|C||r|)_i) (+ 1e-30).  For other checks of an fp32 product built on
 * the same argument (qr_model_check). */
double qr_gemm_tol_fp32(uint32_t n, uint32_t k);

/* Freivalds' check of many results against the same A and B (jobs that
 * share their inputs): each round's secret vector r, A(Br) and |A|(|B||r|)
 * made once from seed, so a check costs Cr and |C||r|, a third of
 * qr_gemm_verify's fp32 path, with the same bound and the same verdicts for
 * the same vectors.  The caller keeps the probe secret and replaces it after
 * a bounded number of checks, as the broker does with a model's probes, so
 * no worker learns r from what is accepted.  NULL (use qr_gemm_verify) when
 * the fp32 path does not apply: inputs over its size, B values so tiny that
 * fp32 would not be safe, a non-finite intermediate, or out of memory. */
typedef struct qr_gemm_probe qr_gemm_probe_t;
qr_gemm_probe_t *qr_gemm_probe_new(const float *A, const float *B, uint32_t m, uint32_t n,
                                   uint32_t k, int rounds, uint64_t seed);
/* NULL-safe; nulls *self_p. */
void qr_gemm_probe_destroy(qr_gemm_probe_t **self_p);
/* True when self (may be NULL) was made for this shape and round count. */
bool qr_gemm_probe_fits(const qr_gemm_probe_t *self, uint32_t m, uint32_t n, uint32_t k,
                        int rounds);
/* Checks C (m x n, the probe's shape): 0 passes, 1 fails (*worst as
 * qr_gemm_verify gives it), -1 cannot decide (a non-finite intermediate, or
 * out of memory): then call qr_gemm_verify. */
int qr_gemm_probe_check(const qr_gemm_probe_t *self, const float *C, double *worst);

/* True when all n floats are finite (no inf, no NaN). */
bool qr_floats_finite(const float *x, size_t n);
int qr_gemm_verify(const float *A, const float *B, const float *C, uint32_t m, uint32_t n,
                   uint32_t k, int rounds, uint64_t seed, double *worst);

#endif
