/* Pippenger MSM for BN254 G1 and G2; see msm.h.
 *
 * Design notes.
 *
 * Cost.  With window width c there are ceil(255/c) windows (255, not 254:
 * signed digits can carry one bit past the top of r < 2^254); each window
 * costs one bucket addition per point with a non-zero digit, and a running
 * sum over its 2^(c-1) buckets (two additions per bucket).  s_plan picks
 * the c that minimises rounds-per-thread x (n t_add + 2^(c-1) t_red) with
 * t_add the measured cost of a batched affine addition (c >= S_BATCH_MIN_C)
 * or of a mixed Jacobian one (smaller c, where the buckets are too few to
 * fill a batch without collisions and the inversion is shared by too few).
 *
 * Signed digits: window values >= 2^(c-1) become value - 2^c with a carry
 * into the next window, so a digit d selects bucket |d| - 1 and adds P or
 * -P; the top window is never recoded (nwin c >= 255 leaves it room), so the
 * digits fit an int16 for c <= 16.  They are computed once per call into a
 * [window][point] array (2 n nwin bytes: 32 MiB at n = 2^20), which keeps
 * each window's pass a straight scan of bases and digits.
 *
 * Threads: the work is nwin x nchunks tasks (a window over a slice of the
 * points), nchunks = 1 unless there are more threads than windows; each
 * thread owns one bucket set (2^(c-1) affine points plus their Jacobian
 * twins: 5 MiB for G1 at c = 16) and takes tasks from an atomic counter.
 *
 * Why not GLV: splitting each scalar in two 128-bit halves doubles the
 * points and halves the windows, so the bucket additions stay the same;
 * only the reduction shrinks, which is small at the sizes that matter. */
#include "msm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_AFF 1u
#define S_JAC 2u
#define S_MAX_THREADS 256
#define S_MAX_C 16
/* from this window width on, buckets are affine and additions batched */
#define S_BATCH_MIN_C 11
/* relative costs for s_plan (G1 ns on the reference machine; G2 scales
 * them all by about the same factor, so one set serves both) */
#define S_T_BATCH 150.0
#define S_T_JAC 250.0
#define S_T_RED 600.0

unsigned qr_msm_threads(unsigned threads)
{
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    return threads > S_MAX_THREADS ? S_MAX_THREADS : threads;
}

/* Runs fn(ctx) on `threads` threads, the caller's included, and joins. */
static void s_run(unsigned threads, void *(*fn)(void *), void *ctx)
{
    pthread_t tid[S_MAX_THREADS];
    bool started[S_MAX_THREADS] = {false};
    if (threads > S_MAX_THREADS)
        threads = S_MAX_THREADS;
    for (unsigned i = 1; i < threads; i++)
        started[i] = pthread_create(&tid[i], NULL, fn, ctx) == 0;
    fn(ctx);
    for (unsigned i = 1; i < threads; i++)
        if (started[i])
            pthread_join(tid[i], NULL);
}

void qr_msm_scalars_from_fr(qr_msm_scalar_t *out, const qr_fr_t *in, size_t n, unsigned threads)
{
    (void)threads; /* 22 ns an element: not worth a thread below 2^24 */
    for (size_t i = 0; i < n; i++)
        qr_fr_to_canonical(out[i].l, &in[i]);
}

/* bits [pos, pos + c) of k, c <= 16 */
static inline uint32_t s_bits(const uint64_t k[4], unsigned pos, unsigned c)
{
    unsigned w = pos / 64, o = pos % 64;
    if (w >= 4)
        return 0;
    uint64_t v = k[w] >> o;
    if (o + c > 64 && w + 1 < 4)
        v |= k[w + 1] << (64 - o);
    return (uint32_t)(v & ((1u << c) - 1));
}

/* digits[j n + i] = signed digit j of k[i] (see the notes above) */
static void s_recode(int16_t *digits, const qr_msm_scalar_t *k, size_t n, unsigned c,
                     unsigned nwin, unsigned threads)
{
    (void)threads;
    const uint32_t half = 1u << (c - 1), full = 1u << c;
    for (size_t i = 0; i < n; i++) {
        uint32_t carry = 0;
        for (unsigned j = 0; j < nwin; j++) {
            uint32_t v = s_bits(k[i].l, j * c, c) + carry;
            int32_t d = (int32_t)v;
            carry = 0;
            if (v >= half && j + 1 < nwin) {
                d -= (int32_t)full;
                carry = 1;
            }
            digits[(size_t)j * n + i] = (int16_t)d;
        }
    }
}

typedef struct {
    unsigned c, nwin, nchunks;
    size_t cap; /* batch capacity, 0 for Jacobian buckets */
} s_plan_t;

static s_plan_t s_plan(size_t n, int g2, unsigned threads, unsigned force_c)
{
    (void)g2;
    s_plan_t best = {2, 128, 1, 0};
    double best_cost = 1e300;
    unsigned c_lo = force_c ? force_c : 2, c_hi = force_c ? force_c : S_MAX_C;
    for (unsigned c = c_lo; c <= c_hi; c++) {
        unsigned nwin = (255 + c - 1) / c;
        unsigned nchunks = threads > nwin ? (threads + nwin - 1) / nwin : 1;
        if ((size_t)nchunks > n)
            nchunks = (unsigned)n;
        unsigned ntask = nwin * nchunks, rounds = (ntask + threads - 1) / threads;
        size_t nb = (size_t)1 << (c - 1);
        bool batch = c >= S_BATCH_MIN_C;
        double per = (double)n / nchunks * (batch ? S_T_BATCH : S_T_JAC) + (double)nb * S_T_RED;
        double cost = rounds * per;
        if (cost < best_cost) {
            best_cost = cost;
            best.c = c;
            best.nwin = nwin;
            best.nchunks = nchunks;
            /* a batch of nb/4: about 1 addition in 8 collides (and takes
             * the 250 ns Jacobian path) while the shared inversion (~13 us)
             * costs ~25 ns an addition at c = 12; nb/8 and nb/2 measured
             * slower */
            best.cap = batch ? (nb / 4 > 4096 ? 4096 : nb / 4) : 0;
        }
    }
    return best;
}

unsigned qr_msm_window(size_t n, int g2, unsigned threads)
{
    return s_plan(n ? n : 1, g2, qr_msm_threads(threads), 0).c;
}

/* Fp multiplication for the batched additions (six per addition, most of
 * the MSM's time).  The same CIOS rounds as qr_zk_mont_mul, but each round
 * forms all four 128-bit products first and adds their low and high halves
 * in two separate carry chains: GCC then keeps everything in registers,
 * where the three-operand 128-bit sums of qr_zk_mac spill; 18 ns against
 * 20-22 ns on the reference machine.  Checked against qr_fp_mul by the MSM
 * tests (every batched addition goes through it). */
#if defined(QR_ZK_X86)
#define S_MUL128(a, b, hi)                                                                         \
    __extension__({                                                                                \
        qr_zk_u128 p_ = (qr_zk_u128)(a) * (b);                                                     \
        (hi) = (uint64_t)(p_ >> 64);                                                               \
        (uint64_t)p_;                                                                              \
    })
#define S_ADC(c, a, b, out)                                                                        \
    do {                                                                                           \
        unsigned long long x_;                                                                     \
        c = _addcarry_u64(c, a, b, &x_);                                                           \
        out = x_;                                                                                  \
    } while (0)
/* out of line where the assembly is the usual path (see QR_ZK_MONT) */
#if defined(QR_ZK_ADX_ASM)
#define S_FP_MUL_C_ATTR __attribute__((noinline))
#else
#define S_FP_MUL_C_ATTR inline
#endif
static S_FP_MUL_C_ATTR void s_fp_mul_c(qr_fp_t *r, const qr_fp_t *pa, const qr_fp_t *pb)
{
    const uint64_t m[4] = QR_FP_MOD, inv = QR_FP_INV;
    const uint64_t a0 = pa->l[0], a1 = pa->l[1], a2 = pa->l[2], a3 = pa->l[3];
    const uint64_t b[4] = {pb->l[0], pb->l[1], pb->l[2], pb->l[3]};
    uint64_t t0 = 0, t1 = 0, t2 = 0, t3 = 0, t4, h0, h1, h2, h3, l0, l1, l2, l3, k;
    unsigned char c;
    for (int i = 0; i < 4; i++) {
        l0 = S_MUL128(a0, b[i], h0);
        l1 = S_MUL128(a1, b[i], h1);
        l2 = S_MUL128(a2, b[i], h2);
        l3 = S_MUL128(a3, b[i], h3);
        c = 0;
        S_ADC(c, t0, l0, t0);
        S_ADC(c, t1, l1, t1);
        S_ADC(c, t2, l2, t2);
        S_ADC(c, t3, l3, t3);
        t4 = c;
        c = 0;
        S_ADC(c, t1, h0, t1);
        S_ADC(c, t2, h1, t2);
        S_ADC(c, t3, h2, t3);
        S_ADC(c, t4, h3, t4);
        k = t0 * inv;
        l0 = S_MUL128(k, m[0], h0);
        l1 = S_MUL128(k, m[1], h1);
        l2 = S_MUL128(k, m[2], h2);
        l3 = S_MUL128(k, m[3], h3);
        c = 0;
        S_ADC(c, t0, l0, t0); /* zero by the choice of k; only the carry counts */
        S_ADC(c, t1, l1, t1);
        S_ADC(c, t2, l2, t2);
        S_ADC(c, t3, l3, t3);
        S_ADC(c, t4, 0, t4);
        c = 0; /* add the high halves and shift down a limb */
        S_ADC(c, t1, h0, t0);
        S_ADC(c, t2, h1, t1);
        S_ADC(c, t3, h2, t2);
        S_ADC(c, t4, h3, t3); /* no carry out: the modulus leaves headroom */
    }
    qr_zk_reduce_once(r->l, t0, t1, t2, t3, m);
}
#undef S_MUL128
#undef S_ADC
#else
#define s_fp_mul_c qr_fp_mul
#endif

static inline void s_fp_mul(qr_fp_t *r, const qr_fp_t *a, const qr_fp_t *b)
{
#if defined(QR_ZK_ADX_ASM)
    if (__builtin_expect(qr_zk_adx, 1)) {
        qr_zk_mont_mul_adx(r->l, a->l, b->l, &qr_zk_adx_fp_q);
        return;
    }
#endif
    s_fp_mul_c(r, a, b);
}

/* squaring: the assembly's own, else the multiplication (bn254_field.h) */
static inline void s_fp_sqr(qr_fp_t *r, const qr_fp_t *a)
{
#if defined(QR_ZK_ADX_ASM)
    if (__builtin_expect(qr_zk_adx, 1)) {
        qr_zk_mont_sqr_adx(r->l, a->l, &qr_zk_adx_fp_q);
        return;
    }
#endif
    s_fp_mul_c(r, a, a);
}

#define MSM_G qr_g1
#define MSM_F qr_fp
#define MSM_MUL s_fp_mul
#define MSM_SQR s_fp_sqr
#define MSM_P qr_g1_t
#define MSM_A qr_g1_affine_t
#define MSM_FT qr_fp_t
#define MSM_S s_g1
#define MSM_IS_G2 0
#include "msm_impl.h"
#undef MSM_G
#undef MSM_F
#undef MSM_P
#undef MSM_A
#undef MSM_FT
#undef MSM_S
#undef MSM_IS_G2
#undef MSM_MUL
#undef MSM_SQR

/* qr_fp2_mul / qr_fp2_sqr over s_fp_mul (same Karatsuba and complex
 * squaring), for the G2 batched additions */
static inline void s_fp2_mul(qr_fp2_t *r, const qr_fp2_t *a, const qr_fp2_t *b)
{
    qr_fp_t t0, t1, s0, s1;
    s_fp_mul(&t0, &a->c0, &b->c0);
    s_fp_mul(&t1, &a->c1, &b->c1);
    qr_fp_add(&s0, &a->c0, &a->c1);
    qr_fp_add(&s1, &b->c0, &b->c1);
    s_fp_mul(&s0, &s0, &s1);
    qr_fp_sub(&r->c0, &t0, &t1);
    qr_fp_sub(&s0, &s0, &t0);
    qr_fp_sub(&r->c1, &s0, &t1);
}

static inline void s_fp2_sqr(qr_fp2_t *r, const qr_fp2_t *a)
{
    qr_fp_t s, d, m;
    qr_fp_add(&s, &a->c0, &a->c1);
    qr_fp_sub(&d, &a->c0, &a->c1);
    s_fp_mul(&m, &a->c0, &a->c1);
    s_fp_mul(&r->c0, &s, &d);
    qr_fp_dbl(&r->c1, &m);
}

#define MSM_G qr_g2
#define MSM_F qr_fp2
#define MSM_MUL s_fp2_mul
#define MSM_SQR s_fp2_sqr
#define MSM_P qr_g2_t
#define MSM_A qr_g2_affine_t
#define MSM_FT qr_fp2_t
#define MSM_S s_g2
#define MSM_IS_G2 1
#include "msm_impl.h"
#undef MSM_G
#undef MSM_F
#undef MSM_P
#undef MSM_A
#undef MSM_FT
#undef MSM_S
#undef MSM_IS_G2
#undef MSM_MUL
#undef MSM_SQR
