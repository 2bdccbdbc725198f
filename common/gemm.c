/* ai.gemm compute and Freivalds verification; see gemm.h. */
#include "gemm.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

uint64_t qr_gemm_units(uint32_t m, uint32_t n, uint32_t k)
{
    uint64_t madds = (uint64_t)m * n * k;
    uint64_t u = (madds + (1u << 20) - 1) >> 20;
    return u ? u : 1;
}

int qr_gemm_sizes(uint32_t m, uint32_t n, uint32_t k, size_t *a_bytes, size_t *b_bytes,
                  size_t *c_bytes)
{
    if (!m || !n || !k || m > QR_GEMM_MAX_DIM || n > QR_GEMM_MAX_DIM || k > QR_GEMM_MAX_DIM)
        return -1;
    /* Each product fits in 64 bits since every factor is at most 2^16. */
    *a_bytes = (size_t)m * k * sizeof(float);
    *b_bytes = (size_t)k * n * sizeof(float);
    *c_bytes = (size_t)m * n * sizeof(float);
    return 0;
}

void qr_gemm_rows(const float *A, const float *B, float *C, uint32_t m, uint32_t n, uint32_t k,
                  uint32_t row0, uint32_t rows)
{
    if (row0 >= m || rows == 0)
        return;
    if (row0 + rows > m)
        rows = m - row0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)n, (int)k, 1.0f,
                A + (size_t)row0 * k, (int)k, B, (int)n, 0.0f, C + (size_t)row0 * n, (int)n);
}

/* xoshiro256** seeded through splitmix64: fast, and the seed is drawn from
 * the OS by the caller so a worker cannot predict the vectors. */
typedef struct {
    uint64_t s[4];
} s_rng_t;

static uint64_t s_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t s_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t s_next(s_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = s_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s_rotl(s[3], 45);
    return out;
}

int qr_gemm_verify(const float *A, const float *B, const float *C, uint32_t m, uint32_t n,
                   uint32_t k, int rounds, uint64_t seed, double *worst)
{
    double *r = malloc(sizeof(double) * ((size_t)n * 2 + (size_t)k * 2));
    if (!r)
        return -1;
    double *rabs = r + n, *br = rabs + n, *babs = br + k;
    s_rng_t rng;
    for (int i = 0; i < 4; i++)
        rng.s[i] = s_splitmix(&seed);
    const double tol = 2.0 * (double)k * ldexp(1.0, -24);
    double w = 0.0;
    int bad = 0;
    for (int round = 0; round < rounds && !bad; round++) {
        for (uint32_t j = 0; j < n; j++) {
            /* uniform in [-1, 1), never exactly 0 so every column counts */
            double v = (double)(s_next(&rng) >> 11) * ldexp(1.0, -52) - 1.0;
            r[j] = v == 0.0 ? 0.5 : v;
            rabs[j] = fabs(r[j]);
        }
        for (uint32_t l = 0; l < k; l++) {
            const float *row = B + (size_t)l * n;
            double s = 0.0, sa = 0.0;
            for (uint32_t j = 0; j < n; j++) {
                s += (double)row[j] * r[j];
                sa += fabs((double)row[j]) * rabs[j];
            }
            br[l] = s;
            babs[l] = sa;
        }
        for (uint32_t i = 0; i < m && !bad; i++) {
            const float *arow = A + (size_t)i * k, *crow = C + (size_t)i * n;
            double x = 0.0, bound = 0.0, y = 0.0, cb = 0.0;
            for (uint32_t l = 0; l < k; l++) {
                x += (double)arow[l] * br[l];
                bound += fabs((double)arow[l]) * babs[l];
            }
            for (uint32_t j = 0; j < n; j++) {
                y += (double)crow[j] * r[j];
                cb += fabs((double)crow[j]) * rabs[j];
            }
            double dev = fabs(y - x), lim = tol * (bound + cb) + 1e-30;
            if (!(dev <= lim)) /* also catches NaN */
                bad = 1;
            double ratio = dev / lim;
            if (ratio > w || ratio != ratio)
                w = ratio;
        }
    }
    free(r);
    if (worst)
        *worst = w;
    return bad;
}
