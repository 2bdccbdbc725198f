/* ai.gemm compute and Freivalds verification; see gemm.h. */
#include "gemm.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

bool qr_floats_finite(const float *x, size_t n)
{
    int bad = 0; /* branch-free so it vectorises: NaN fails the compare too */
    for (size_t i = 0; i < n; i++)
        bad |= !(fabsf(x[i]) <= FLT_MAX);
    return !bad;
}

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

/* Dot products of x with v and of |x| with va, in double.  Four independent
 * accumulators: without -ffast-math the compiler may not reorder a float
 * reduction, so this is what lets the loop use the CPU's parallelism. */
static void s_dot2(const float *x, const double *v, const double *va, uint32_t n, double *dot,
                   double *adot)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    uint32_t j = 0;
    for (; j + 4 <= n; j += 4) {
        double x0 = x[j], x1 = x[j + 1], x2 = x[j + 2], x3 = x[j + 3];
        s0 += x0 * v[j];
        s1 += x1 * v[j + 1];
        s2 += x2 * v[j + 2];
        s3 += x3 * v[j + 3];
        a0 += fabs(x0) * va[j];
        a1 += fabs(x1) * va[j + 1];
        a2 += fabs(x2) * va[j + 2];
        a3 += fabs(x3) * va[j + 3];
    }
    for (; j < n; j++) {
        double xj = x[j];
        s0 += xj * v[j];
        a0 += fabs(xj) * va[j];
    }
    *dot = (s0 + s1) + (s2 + s3);
    *adot = (a0 + a1) + (a2 + a3);
}

/* One fp32 round given x = A(Br) and xa = |A|(|B||r|): computes y = Cr and
 * ya = |C||r| (aC = |C|) and compares row by row, raising *w to the worst
 * ratio.  0 pass, 1 fail, -1 a non-finite intermediate. */
static int s_round_fp32(const float *C, const float *aC, const float *r, const float *ra,
                        const float *x, const float *xa, float *y, float *ya, uint32_t m,
                        uint32_t n, double tol, double *w)
{
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)n, 1.0f, C, (int)n, r, 1, 0.0f, y, 1);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)n, 1.0f, aC, (int)n, ra, 1, 0.0f, ya, 1);
    int verdict = 0;
    for (uint32_t i = 0; i < m; i++) {
        if (!isfinite(x[i]) || !isfinite(xa[i]) || !isfinite(y[i]) || !isfinite(ya[i]))
            return -1;
        double dev = fabs((double)y[i] - (double)x[i]);
        double lim = tol * ((double)xa[i] + (double)ya[i]) + 1e-30;
        double ratio = dev / lim;
        if (ratio > *w)
            *w = ratio;
        if (!(dev <= lim))
            verdict = 1;
    }
    return verdict;
}

/* The same check with OpenBLAS matrix-vector products in fp32.  Its own
 * rounding is part of the bound: for honest C (|C - AB| <= g_k |A||B|),
 *   |fl(Cr) - fl(A fl(Br))| <= (2 g_k + g_n) |A||B||r| + g_n |C||r|
 * with g_j ~ j 2^-24 whatever the summation order, and the bound's own sums of
 * non-negative terms are off by at most a factor (1 + g); tol below covers
 * both with room.  Returns 0 pass, 1 fail, -1 when it cannot decide (out of
 * memory, or a non-finite intermediate): the caller then uses the fp64 path. */
static int s_verify_fp32(const float *A, const float *B, const float *absB, const float *C,
                         uint32_t m, uint32_t n, uint32_t k, int rounds, s_rng_t *rng,
                         double *worst)
{
    size_t am = (size_t)m * k, bm = (size_t)k * n, cm = (size_t)m * n;
    size_t bcopy = absB ? 0 : bm; /* no |B| copy when the caller made one */
    float *buf =
        malloc(sizeof(float) * (am + bcopy + cm + 2 * (size_t)n + 2 * (size_t)k + 4 * (size_t)m));
    if (!buf)
        return -1;
    float *aA = buf, *aB = aA + am, *aC = aB + bcopy, *r = aC + cm, *ra = r + n, *br = ra + n,
          *bra = br + k, *x = bra + k, *xa = x + m, *y = xa + m, *ya = y + m;
    for (size_t i = 0; i < am; i++)
        aA[i] = fabsf(A[i]);
    /* The checks ride along the copies (branch-free, so they vectorise):
     * B r must not underflow, or A would magnify the lost bits past the
     * bound; and a C holding inf or NaN is never right (it would also make
     * the bound infinite and let any row pass). */
    int tiny = 0, nonfinite = 0;
    if (absB) /* given by a caller that checked B once (qr_gemm_prepare_b) */
        aB = (float *)absB;
    else
        for (size_t i = 0; i < bm; i++) {
            aB[i] = fabsf(B[i]);
            tiny |= (aB[i] < 0x1p-101f) & (aB[i] != 0.0f);
        }
    for (size_t i = 0; i < cm; i++) {
        aC[i] = fabsf(C[i]);
        nonfinite |= !(aC[i] <= FLT_MAX);
    }
    if (nonfinite || tiny) {
        free(buf);
        if (nonfinite && worst)
            *worst = INFINITY;
        return nonfinite ? 1 : -1;
    }
    const double tol = qr_gemm_tol_fp32(n, k);
    double w = 0.0;
    int verdict = 0;
    for (int round = 0; round < rounds && verdict == 0; round++) {
        for (uint32_t j = 0; j < n; j++) {
            float v = (float)((double)(s_next(rng) >> 40) * ldexp(1.0, -23) - 1.0);
            r[j] = v == 0.0f ? 0.5f : v;
            ra[j] = fabsf(r[j]);
        }
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)k, (int)n, 1.0f, B, (int)n, r, 1, 0.0f, br, 1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)k, (int)n, 1.0f, aB, (int)n, ra, 1, 0.0f, bra, 1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)k, 1.0f, A, (int)k, br, 1, 0.0f, x, 1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)k, 1.0f, aA, (int)k, bra, 1, 0.0f, xa, 1);
        verdict = s_round_fp32(C, aC, r, ra, x, xa, y, ya, m, n, tol, &w);
    }
    free(buf);
    if (verdict != -1 && worst)
        *worst = w;
    return verdict;
}

double qr_gemm_tol_fp32(uint32_t n, uint32_t k)
{
    return 3.0 * ((double)k + (double)n + 2.0) * ldexp(1.0, -24) * 1.01;
}

/* fp32 path while the copies it makes stay modest. */
#define S_FP32_MAX_ELEMS (1u << 24)

float *qr_gemm_prepare_b(const float *B, uint32_t k, uint32_t n)
{
    size_t bm = (size_t)k * n;
    float *a = malloc(bm * sizeof *a);
    if (!a)
        return NULL;
    int tiny = 0;
    for (size_t i = 0; i < bm; i++) {
        a[i] = fabsf(B[i]);
        tiny |= (a[i] < 0x1p-101f) & (a[i] != 0.0f);
    }
    if (tiny) { /* such a B takes the fp64 path anyway */
        free(a);
        return NULL;
    }
    return a;
}

int qr_gemm_verify(const float *A, const float *B, const float *C, uint32_t m, uint32_t n,
                   uint32_t k, int rounds, uint64_t seed, double *worst)
{
    return qr_gemm_verify_b(A, B, NULL, C, m, n, k, rounds, seed, worst);
}

int qr_gemm_verify_b(const float *A, const float *B, const float *absB, const float *C, uint32_t m,
                     uint32_t n, uint32_t k, int rounds, uint64_t seed, double *worst)
{
    double *r = malloc(sizeof(double) * ((size_t)n * 2 + (size_t)k * 2));
    if (!r)
        return -1;
    double *rabs = r + n, *br = rabs + n, *babs = br + k;
    s_rng_t rng;
    for (int i = 0; i < 4; i++)
        rng.s[i] = s_splitmix(&seed);
    if ((uint64_t)m * k + (uint64_t)k * n + (uint64_t)m * n <= S_FP32_MAX_ELEMS) {
        int v = s_verify_fp32(A, B, absB, C, m, n, k, rounds, &rng, worst);
        if (v >= 0) {
            free(r);
            return v;
        }
    }
    /* fp64 path: inf or NaN in a result is never right (see s_verify_fp32) */
    if (!qr_floats_finite(C, (size_t)m * n)) {
        free(r);
        if (worst)
            *worst = INFINITY;
        return 1;
    }
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
        for (uint32_t l = 0; l < k; l++)
            s_dot2(B + (size_t)l * n, r, rabs, n, &br[l], &babs[l]);
        for (uint32_t i = 0; i < m && !bad; i++) {
            double x, bound, y, cb;
            s_dot2(A + (size_t)i * k, br, babs, k, &x, &bound);
            s_dot2(C + (size_t)i * n, r, rabs, n, &y, &cb);
            double dev = fabs(y - x), lim = tol * (bound + cb) + 1e-30;
            if (!(dev <= lim) || !isfinite(lim)) /* NaN, and an infinite bound proves nothing */
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

struct qr_gemm_probe {
    uint32_t m, n, k;
    int rounds;
    double tol;
    float *r, *ra; /* rounds x n: the secret vectors and their magnitudes */
    float *x, *xa; /* rounds x m: A(Br) and |A|(|B||r|) */
};

void qr_gemm_probe_destroy(qr_gemm_probe_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->r);
    free(*self_p);
    *self_p = NULL;
}

qr_gemm_probe_t *qr_gemm_probe_new(const float *A, const float *B, uint32_t m, uint32_t n,
                                   uint32_t k, int rounds, uint64_t seed)
{
    if (rounds < 1 || !m || !n || !k ||
        (uint64_t)m * k + (uint64_t)k * n + (uint64_t)m * n > S_FP32_MAX_ELEMS)
        return NULL;
    size_t am = (size_t)m * k, bm = (size_t)k * n, rn = (size_t)rounds * n, rm = (size_t)rounds * m;
    qr_gemm_probe_t *self = calloc(1, sizeof *self);
    float *scratch = malloc(sizeof(float) * (am + bm + 2 * (size_t)k));
    if (self)
        self->r = malloc(sizeof(float) * (2 * rn + 2 * rm));
    if (!self || !self->r || !scratch) {
        free(scratch);
        qr_gemm_probe_destroy(&self);
        return NULL;
    }
    self->m = m, self->n = n, self->k = k, self->rounds = rounds;
    self->tol = qr_gemm_tol_fp32(n, k);
    self->ra = self->r + rn;
    self->x = self->ra + rn;
    self->xa = self->x + rm;
    float *aA = scratch, *aB = aA + am, *br = aB + bm, *bra = br + k;
    int tiny = 0, bad = 0;
    for (size_t i = 0; i < am; i++)
        aA[i] = fabsf(A[i]);
    for (size_t i = 0; i < bm; i++) {
        aB[i] = fabsf(B[i]);
        tiny |= (aB[i] < 0x1p-101f) & (aB[i] != 0.0f);
    }
    s_rng_t rng;
    for (int i = 0; i < 4; i++)
        rng.s[i] = s_splitmix(&seed);
    for (int round = 0; round < rounds && !tiny && !bad; round++) {
        float *r = self->r + (size_t)round * n, *ra = self->ra + (size_t)round * n;
        float *x = self->x + (size_t)round * m, *xa = self->xa + (size_t)round * m;
        for (uint32_t j = 0; j < n; j++) { /* as s_verify_fp32 draws them */
            float v = (float)((double)(s_next(&rng) >> 40) * ldexp(1.0, -23) - 1.0);
            r[j] = v == 0.0f ? 0.5f : v;
            ra[j] = fabsf(r[j]);
        }
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)k, (int)n, 1.0f, B, (int)n, r, 1, 0.0f, br,
                    1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)k, (int)n, 1.0f, aB, (int)n, ra, 1, 0.0f, bra,
                    1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)k, 1.0f, A, (int)k, br, 1, 0.0f, x,
                    1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)k, 1.0f, aA, (int)k, bra, 1, 0.0f, xa,
                    1);
        for (uint32_t i = 0; i < m; i++)
            bad |= !isfinite(x[i]) || !isfinite(xa[i]);
    }
    free(scratch);
    if (tiny || bad)
        qr_gemm_probe_destroy(&self); /* the fp64 path decides these */
    return self;
}

bool qr_gemm_probe_fits(const qr_gemm_probe_t *self, uint32_t m, uint32_t n, uint32_t k, int rounds)
{
    return self && self->m == m && self->n == n && self->k == k && self->rounds == rounds;
}

int qr_gemm_probe_check(const qr_gemm_probe_t *self, const float *C, double *worst)
{
    uint32_t m = self->m, n = self->n;
    size_t cm = (size_t)m * n;
    float *buf = malloc(sizeof(float) * (cm + 2 * (size_t)m));
    if (!buf)
        return -1;
    float *aC = buf, *y = aC + cm, *ya = y + m;
    int nonfinite = 0;
    for (size_t i = 0; i < cm; i++) {
        aC[i] = fabsf(C[i]);
        nonfinite |= !(aC[i] <= FLT_MAX);
    }
    double w = 0.0;
    int verdict = nonfinite ? 1 : 0;
    for (int round = 0; round < self->rounds && verdict == 0; round++)
        verdict = s_round_fp32(C, aC, self->r + (size_t)round * n, self->ra + (size_t)round * n,
                               self->x + (size_t)round * m, self->xa + (size_t)round * m, y, ya, m,
                               n, self->tol, &w);
    free(buf);
    if (worst)
        *worst = nonfinite ? INFINITY : w;
    return verdict;
}
