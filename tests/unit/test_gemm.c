/* common/gemm: OpenBLAS product against a naive loop, Freivalds accepts
 * honest results and catches altered ones, sizes and units. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

static float *s_rand(size_t n, unsigned *seed)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)rand_r(seed) / (float)RAND_MAX * 2.0f - 1.0f;
    return p;
}

static void s_naive(const float *A, const float *B, double *C, uint32_t m, uint32_t n, uint32_t k)
{
    for (uint32_t i = 0; i < m; i++)
        for (uint32_t j = 0; j < n; j++) {
            double s = 0;
            for (uint32_t l = 0; l < k; l++)
                s += (double)A[i * k + l] * B[l * n + j];
            C[i * n + j] = s;
        }
}

static const uint32_t s_shapes[][3] = {{1, 1, 1}, {64, 64, 64}, {3, 7, 5}, {129, 31, 257}, {200, 1, 300}};

static void test_product(void **state)
{
    (void)state;
    unsigned seed = 7;
    for (size_t t = 0; t < sizeof s_shapes / sizeof s_shapes[0]; t++) {
        uint32_t m = s_shapes[t][0], n = s_shapes[t][1], k = s_shapes[t][2];
        float *A = s_rand((size_t)m * k, &seed), *B = s_rand((size_t)k * n, &seed);
        float *C = calloc((size_t)m * n, sizeof *C);
        double *R = malloc((size_t)m * n * sizeof *R);
        /* in two row blocks, as the worker computes it */
        qr_gemm_rows(A, B, C, m, n, k, 0, m / 2);
        qr_gemm_rows(A, B, C, m, n, k, m / 2, m - m / 2);
        s_naive(A, B, R, m, n, k);
        for (size_t i = 0; i < (size_t)m * n; i++)
            assert_true(fabs(C[i] - R[i]) <= 1e-4 * k);
        double worst = -1;
        assert_int_equal(qr_gemm_verify(A, B, C, m, n, k, 3, 12345 + t, &worst), 0);
        assert_true(worst >= 0 && worst <= 1.0);
        free(A);
        free(B);
        free(C);
        free(R);
    }
}

/* A single altered element is caught wherever it is.  The seeds are fixed, so
 * the run is deterministic; a change of d escapes one round only when
 * |r_j| < bound / d, here under 1%. */
static void test_catches_fault(void **state)
{
    (void)state;
    unsigned seed = 99;
    uint32_t m = 64, n = 64, k = 64;
    float *A = s_rand(m * k, &seed), *B = s_rand(k * n, &seed), *C = calloc(m * n, sizeof *C);
    qr_gemm_rows(A, B, C, m, n, k, 0, m);
    for (int trial = 0; trial < 200; trial++) {
        size_t i = (size_t)rand_r(&seed) % (m * n);
        float saved = C[i];
        C[i] += trial % 2 ? 0.5f : -1.0f; /* well past the rounding bound */
        assert_int_equal(qr_gemm_verify(A, B, C, m, n, k, 2, (uint64_t)trial, NULL), 1);
        C[i] = saved;
    }
    C[5] = NAN;
    assert_int_equal(qr_gemm_verify(A, B, C, m, n, k, 1, 1, NULL), 1);
    /* a result of zeros (a lazy worker) fails */
    memset(C, 0, m * n * sizeof *C);
    assert_int_equal(qr_gemm_verify(A, B, C, m, n, k, 1, 1, NULL), 1);
    free(A);
    free(B);
    free(C);
}

/* Found by tests/fuzz: one inf per row made the bound infinite and let a
 * garbage result pass.  A non-finite C never passes now. */
static void test_infinite_result_rejected(void **state)
{
    (void)state;
    uint32_t m = 64, n = 64, k = 64;
    float *A = malloc(m * k * sizeof *A), *B = malloc(k * n * sizeof *B), *C = malloc(m * n * sizeof *C);
    for (size_t i = 0; i < m * k; i++)
        A[i] = B[i] = 1.0f;
    for (size_t i = 0; i < m * n; i++)
        C[i] = 12345.0f;
    assert_int_equal(qr_gemm_verify(A, B, C, m, n, k, 2, 5, NULL), 1);
    for (uint32_t i = 0; i < m; i++)
        C[(size_t)i * n] = INFINITY;
    double worst = 0;
    assert_int_equal(qr_gemm_verify(A, B, C, m, n, k, 2, 5, &worst), 1);
    assert_true(worst > 1.0);
    assert_true(qr_floats_finite(A, m * k));
    assert_false(qr_floats_finite(C, m * n));
    free(A);
    free(B);
    free(C);
}

/* Also from the fuzzer: tiny (denormal) B times huge A lost precision in the
 * fp32 path and failed an honest result; such inputs now take the fp64 path. */
static void test_denormal_inputs_honest_pass(void **state)
{
    (void)state;
    float A[2] = {-2.1e38f, 6e-33f}, B[1] = {6.6e-43f}, C[2];
    qr_gemm_rows(A, B, C, 2, 1, 1, 0, 2);
    double worst = -1;
    assert_int_equal(qr_gemm_verify(A, B, C, 2, 1, 1, 2, 9, &worst), 0);
    assert_true(worst <= 1.0);
}

/* Inputs over 2^24 elements take the fp64 path: honest passes, a fault fails. */
static void test_fp64_path(void **state)
{
    (void)state;
    unsigned seed = 3;
    uint32_t m = 4096, n = 1, k = 4096;
    float *A = s_rand((size_t)m * k, &seed), *B = s_rand((size_t)k * n, &seed);
    float *C = calloc((size_t)m * n, sizeof *C);
    qr_gemm_rows(A, B, C, m, n, k, 0, m);
    double worst = -1;
    assert_int_equal(qr_gemm_verify(A, B, C, m, n, k, 2, 77, &worst), 0);
    assert_true(worst >= 0 && worst <= 1.0);
    C[100] += 1.0f;
    assert_int_equal(qr_gemm_verify(A, B, C, m, n, k, 2, 78, &worst), 1);
    assert_true(worst > 1.0);
    free(A);
    free(B);
    free(C);
}

static void test_sizes_units(void **state)
{
    (void)state;
    size_t a, b, c;
    assert_int_equal(qr_gemm_sizes(2, 3, 4, &a, &b, &c), 0);
    assert_int_equal(a, 2 * 4 * 4);
    assert_int_equal(b, 4 * 3 * 4);
    assert_int_equal(c, 2 * 3 * 4);
    assert_int_equal(qr_gemm_sizes(0, 3, 4, &a, &b, &c), -1);
    assert_int_equal(qr_gemm_sizes(1, QR_GEMM_MAX_DIM + 1, 4, &a, &b, &c), -1);
    assert_int_equal(qr_gemm_units(1, 1, 1), 1);
    assert_int_equal(qr_gemm_units(64, 64, 64), 1);
    assert_int_equal(qr_gemm_units(128, 128, 128), 2);
    assert_int_equal(qr_gemm_units(1024, 1024, 1024), 1024);
}

/* A probe gives the verdicts and worst ratios of qr_gemm_verify with the
 * same seed (the same vectors), for honest, altered and non-finite results,
 * and checks many results against one input. */
static void test_probe_matches_verify(void **state)
{
    (void)state;
    unsigned seed = 41;
    for (size_t t = 0; t < sizeof s_shapes / sizeof s_shapes[0]; t++) {
        uint32_t m = s_shapes[t][0], n = s_shapes[t][1], k = s_shapes[t][2];
        float *A = s_rand((size_t)m * k, &seed), *B = s_rand((size_t)k * n, &seed);
        float *C = calloc((size_t)m * n, sizeof *C);
        qr_gemm_rows(A, B, C, m, n, k, 0, m);
        qr_gemm_probe_t *p = qr_gemm_probe_new(A, B, m, n, k, 3, 777 + t);
        assert_non_null(p);
        assert_true(qr_gemm_probe_fits(p, m, n, k, 3));
        assert_false(qr_gemm_probe_fits(p, m, n, k + 1, 3));
        assert_false(qr_gemm_probe_fits(p, m, n, k, 2));
        assert_false(qr_gemm_probe_fits(NULL, m, n, k, 3));
        for (int trial = 0; trial < 20; trial++) {
            size_t i = (size_t)rand_r(&seed) % ((size_t)m * n);
            float saved = C[i];
            if (trial % 2)
                C[i] += trial % 4 == 1 ? 0.75f : -2.0f; /* well past the bound */
            double wp = -1, wv = -2;
            int vp = qr_gemm_probe_check(p, C, &wp);
            int vv = qr_gemm_verify(A, B, C, m, n, k, 3, 777 + t, &wv);
            assert_int_equal(vp, vv);
            assert_true(wp == wv);
            assert_int_equal(vp, trial % 2 ? 1 : 0);
            C[i] = saved;
        }
        C[0] = NAN;
        double w = 0;
        assert_int_equal(qr_gemm_probe_check(p, C, &w), 1);
        assert_true(isinf(w));
        qr_gemm_probe_destroy(&p);
        assert_null(p);
        qr_gemm_probe_destroy(&p); /* NULL-safe */
        free(A);
        free(B);
        free(C);
    }
}

/* Where the fp32 path does not apply there is no probe: the caller uses
 * qr_gemm_verify. */
static void test_probe_declines(void **state)
{
    (void)state;
    float A[2] = {-2.1e38f, 6e-33f}, B[1] = {6.6e-43f};
    assert_null(qr_gemm_probe_new(A, B, 2, 1, 1, 2, 9));          /* denormal B */
    assert_null(qr_gemm_probe_new(A, B, 4096, 4096, 4096, 2, 9)); /* over 2^24 elements */
    assert_null(qr_gemm_probe_new(A, B, 2, 1, 1, 0, 9));          /* no rounds */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_product),
        cmocka_unit_test(test_catches_fault),
        cmocka_unit_test(test_fp64_path),
        cmocka_unit_test(test_infinite_result_rejected),
        cmocka_unit_test(test_denormal_inputs_honest_pass),
        cmocka_unit_test(test_sizes_units),
        cmocka_unit_test(test_probe_matches_verify),
        cmocka_unit_test(test_probe_declines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
