/* libFuzzer target: Freivalds verification (qr_gemm_verify) on hostile
 * shapes and values.
 *
 * Input layout: m, n, k (one byte each, 1 + b % 32), rounds (1 + b % 4), a
 * mode byte, an 8-byte seed, then the float bit patterns of A (m x k), B
 * (k x n) and, in mode 1, C (m x n), taken in order and padded with a
 * repeating pattern when the input runs short (so NaN, inf, denormals and
 * huge values all appear).
 *   mode % 4 == 0: C is the honest product from qr_gemm_rows;
 *   mode % 4 == 1: C comes from the input;
 *   mode % 4 == 2: honest C with one element changed by a fuzzer-chosen bit
 *                  flip;
 *   mode % 4 == 3: honest C computed in row blocks (qr_gemm_rows with a
 *                  fuzzer-chosen split), as a worker's executor does.
 *
 * Invariants: never a crash or sanitizer report; the result is 0 or 1 (no
 * out-of-memory at these sizes); with finite A, B and C, *worst <= 1
 * whenever it passes and an honest C always passes; and when no honest
 * product can overflow, a C holding inf or NaN is always rejected (a worker
 * must not get paid for one).  FUZZ_GEMM_DEBUG=1 prints each verdict. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

#define S_CHECK(cond)                                                                         \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_gemm: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, \
                    #cond);                                                                   \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

#define S_MAXD 32u

static const uint32_t s_pad[] = {0x7fc00000u, 0x7f800000u, 0xff800000u, 0x00000001u,
                                 0x3f800000u, 0x7f7fffffu, 0x80000000u, 0x00800000u};

static int s_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* Largest (|A||B|)_ij, in double: a bound on every partial sum of an fp32
 * product in any order, so below FLT_MAX / 4 an honest C is finite. */
static double s_absprod_max(const float *A, const float *B, uint32_t m, uint32_t n, uint32_t k)
{
    double mx = 0.0;
    for (uint32_t i = 0; i < m; i++)
        for (uint32_t j = 0; j < n; j++) {
            double s = 0.0;
            for (uint32_t l = 0; l < k; l++)
                s += fabs((double)A[(size_t)i * k + l]) * fabs((double)B[(size_t)l * n + j]);
            if (s > mx)
                mx = s;
        }
    return mx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 13)
        return 0;
    uint32_t m = 1 + data[0] % S_MAXD, n = 1 + data[1] % S_MAXD, k = 1 + data[2] % S_MAXD;
    int rounds = 1 + data[3] % 4;
    uint8_t mode = data[4] % 4;
    uint64_t seed;
    memcpy(&seed, data + 5, 8);
    const uint8_t *p = data + 13, *end = data + size;

    size_t am = (size_t)m * k, bm = (size_t)k * n, cm = (size_t)m * n;
    size_t a_bytes, b_bytes, c_bytes;
    S_CHECK(qr_gemm_sizes(m, n, k, &a_bytes, &b_bytes, &c_bytes) == 0);
    S_CHECK(a_bytes == am * 4 && b_bytes == bm * 4 && c_bytes == cm * 4);
    S_CHECK(qr_gemm_units(m, n, k) == 1);

    /* exact-size allocations so ASan catches any read past a matrix */
    float *A = malloc(a_bytes), *B = malloc(b_bytes), *C = malloc(c_bytes);
    S_CHECK(A && B && C);
    float *mats[3] = {A, B, C};
    size_t cnt[3] = {am, bm, cm};
    size_t padi = 0;
    for (int w = 0; w < (mode == 1 ? 3 : 2); w++)
        for (size_t i = 0; i < cnt[w]; i++) {
            uint32_t bits;
            if (end - p >= 4) {
                memcpy(&bits, p, 4);
                p += 4;
            } else {
                bits = s_pad[padi++ % (sizeof s_pad / sizeof s_pad[0])];
            }
            memcpy(&mats[w][i], &bits, 4);
        }

    uint32_t flip_at = 0, flip_bit = 0;
    if (mode == 0 || mode == 2) {
        qr_gemm_rows(A, B, C, m, n, k, 0, m);
    } else if (mode == 3) {
        uint32_t step = 1 + (end > p ? *p : 0) % m;
        for (uint32_t r = 0; r < m; r += step)
            qr_gemm_rows(A, B, C, m, n, k, r, step); /* the last block is clipped */
    }
    if (mode == 2) {
        uint16_t x = 0;
        if (end - p >= 2)
            memcpy(&x, p, 2);
        flip_at = x % cm;
        flip_bit = (x >> 8) % 32;
        uint32_t bits;
        memcpy(&bits, &C[flip_at], 4);
        bits ^= 1u << flip_bit;
        memcpy(&C[flip_at], &bits, 4);
    }

    double worst = -1.0;
    int v = qr_gemm_verify(A, B, C, m, n, k, rounds, seed, &worst);
    if (getenv("FUZZ_GEMM_DEBUG"))
        fprintf(stderr, "fuzz_gemm: m=%u n=%u k=%u rounds=%d mode=%d v=%d worst=%g\n", m, n, k,
                rounds, mode, v, worst);
    S_CHECK(v == 0 || v == 1);
    int abfin = s_finite(A, am) && s_finite(B, bm), cfin = s_finite(C, cm);
    if (v == 0 && abfin && cfin)
        S_CHECK(worst >= 0.0 && worst <= 1.0);
    if ((mode == 0 || mode == 3) && abfin && cfin && v != 0) {
        fprintf(stderr, "fuzz_gemm: honest C rejected: m=%u n=%u k=%u rounds=%d worst=%g\n", m, n,
                k, rounds, worst);
        abort();
    }
    /* Soundness: when no honest product can overflow (every |A||B| sum is
     * far below FLT_MAX), a C holding inf or NaN is wrong and must fail. */
    if (abfin && !cfin && s_absprod_max(A, B, m, n, k) < FLT_MAX / 4 && v != 1) {
        fprintf(stderr,
                "fuzz_gemm: C with inf/NaN accepted though A*B is finite: m=%u n=%u k=%u "
                "rounds=%d mode=%d worst=%g\n",
                m, n, k, rounds, mode, worst);
        abort();
    }
    free(A);
    free(B);
    free(C);
    return 0;
}
