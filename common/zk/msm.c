/* Pippenger MSM for BN254 G1 and G2; see msm.h.
 *
 * Design notes.
 *
 * Cost.  With window width c there are ceil(255/c) windows (255, not 254:
 * signed digits can carry one bit past the top of r < 2^254); each window
 * costs one bucket addition per point with a non-zero digit, and a
 * reduction over its 2^(c-1) buckets.  s_plan picks the c that minimises
 * rounds-per-thread x (n t_add + 2^(c-1) t_red), with t_add a batched
 * affine addition plus its share of the batch's inversion (c >=
 * S_BATCH_MIN_C) or a mixed Jacobian one (smaller c, where the buckets are
 * too few to fill a batch), and t_red the batched reduction's cost a
 * bucket (msm_impl.h), per group: fitted on one thread, 2026-11-23.
 *
 * Signed digits: window values >= 2^(c-1) become value - 2^c with a carry
 * into the next window, so a digit d selects bucket |d| - 1 and adds P or
 * -P; the top window is never recoded (nwin c >= 255 leaves it room), so the
 * digits fit an int16 for c <= 16.  They are computed into a
 * [window][point] array (2 n nwin bytes: 32 MiB at n = 2^20, c = 16),
 * split over the threads, which keeps each window's pass a straight scan of
 * bases and digits.  The array is an object of its own (qr_msm_digits_t)
 * so that MSMs over the same scalars share it: a Groth16 prover's A, B1, C
 * and B2 all take the witness.
 *
 * Threads: the work is nwin x nchunks tasks (a window over a slice of the
 * points), nchunks = 1 unless there are more threads than windows; each
 * thread owns one bucket set (2^(c-1) affine points, their Jacobian twins,
 * the batch, the retry list and a small accumulator for the batched
 * reduction) and takes tasks from an atomic counter.
 *
 * Memory: the loop prefetches the bucket and the base S_PREFETCH points
 * ahead, and the flush the buckets of the entries four ahead; buckets are
 * 64-byte aligned (a G1 bucket is one cache line).  At c = 16 the G1
 * buckets are 2 MiB a thread, the size of this machine's L2; without the
 * prefetches a 2^20 MSM spent a fifth of its time waiting on them.
 *
 * Why not GLV: splitting each scalar in two 128-bit halves doubles the
 * points and halves the windows, so the bucket additions stay the same;
 * only the reduction and the recoding shrink, and the batched reduction
 * already made those a few per cent. */
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
/* the MSM loop prefetches the bucket of the point this many ahead */
#define S_PREFETCH 8
/* from this window width on, buckets are affine and additions batched */
#define S_BATCH_MIN_C 11
/* costs for s_plan, ns on the reference machine (2026-11-23, fitted to
 * one-thread MSMs at c = 12..16): a batched affine addition without its
 * share of the batch's inversion, the inversion, a mixed Jacobian addition
 * (c < S_BATCH_MIN_C), and a bucket's share of the reduction, batched
 * (nb >= 256 with batched buckets) or by Jacobian running sum */
static const double s_t_batch[2] = {120.0, 290.0}; /* G1, G2 */
static const double s_t_inv[2] = {6000.0, 6000.0};
static const double s_t_jac[2] = {220.0, 650.0};
static const double s_t_red_batch[2] = {140.0, 435.0};
static const double s_t_red_jac[2] = {480.0, 1500.0};

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

/* [0, n) cut into slices taken from an atomic counter by s_run's threads
 * (the caller's included), for the element-wise passes (conversion,
 * recoding) */
typedef struct {
    size_t n, per;
    atomic_size_t next;
    void (*fn)(void *ctx, size_t lo, size_t hi);
    void *ctx;
} s_split_t;

static void *s_split_worker(void *arg)
{
    s_split_t *sp = arg;
    for (;;) {
        size_t lo = atomic_fetch_add(&sp->next, sp->per);
        if (lo >= sp->n)
            break;
        sp->fn(sp->ctx, lo, lo + sp->per < sp->n ? lo + sp->per : sp->n);
    }
    return NULL;
}

/* fn(ctx, lo, hi) over slices of [0, n); on one thread below min_n */
static void s_split(size_t n, size_t min_n, unsigned threads, void (*fn)(void *, size_t, size_t),
                    void *ctx)
{
    threads = qr_msm_threads(threads);
    if (n < min_n || threads == 1) {
        if (n)
            fn(ctx, 0, n);
        return;
    }
    s_split_t sp = {n, 0, 0, fn, ctx};
    size_t per = (n + (size_t)threads * 4 - 1) / ((size_t)threads * 4); /* 4 slices a thread */
    sp.per = per < 1024 ? 1024 : per;
    atomic_init(&sp.next, 0);
    size_t nt = (n + sp.per - 1) / sp.per;
    s_run(threads < nt ? threads : (unsigned)nt, s_split_worker, &sp);
}

typedef struct {
    qr_msm_scalar_t *out;
    const qr_fr_t *in;
} s_conv_t;

static void s_conv_range(void *ctx, size_t lo, size_t hi)
{
    s_conv_t *cv = ctx;
    for (size_t i = lo; i < hi; i++)
        qr_fr_to_canonical(cv->out[i].l, &cv->in[i]);
}

void qr_msm_scalars_from_fr(qr_msm_scalar_t *out, const qr_fr_t *in, size_t n, unsigned threads)
{
    s_conv_t cv = {out, in};
    s_split(n, 1u << 14, threads, s_conv_range, &cv); /* ~20 ns an element */
}

/* digits[j n + i] = signed digit j of k[i] for i in [lo, hi) (see the
 * notes above).  Window j is bits [j c, j c + c) of k read through a
 * 64-bit funnel over five limbs (the fifth zero), branch-free. */
static void s_recode(int16_t *digits, const qr_msm_scalar_t *k, size_t n, size_t lo, size_t hi,
                     unsigned c, unsigned nwin)
{
    const uint32_t half = 1u << (c - 1), mask = (1u << c) - 1;
    for (size_t i = lo; i < hi; i++) {
        const uint64_t l[5] = {k[i].l[0], k[i].l[1], k[i].l[2], k[i].l[3], 0};
        uint32_t carry = 0;
        for (unsigned j = 0; j < nwin; j++) {
            unsigned pos = j * c, w = pos / 64, o = pos % 64;
            /* (l[w+1] << 1) << (63 - o) is l[w+1] << (64 - o), and 0 at o = 0 */
            uint64_t v64 = (l[w] >> o) | ((l[w + 1] << 1) << (63 - o));
            uint32_t v = ((uint32_t)v64 & mask) + carry;
            /* the top window is never recoded: it has room (nwin c >= 255) */
            carry = (v >= half) & (j + 1 < nwin);
            digits[(size_t)j * n + i] = (int16_t)((int32_t)v - (int32_t)(carry << c));
        }
    }
}

struct qr_msm_digits {
    int16_t *d;    /* [window][n] */
    size_t n;      /* scalars */
    unsigned c;    /* window width */
    unsigned nwin; /* windows: ceil(255 / c) */
};

typedef struct {
    const struct qr_msm_digits *dg;
    const qr_msm_scalar_t *k;
} s_recode_job_t;

static void s_recode_range(void *ctx, size_t lo, size_t hi)
{
    s_recode_job_t *j = ctx;
    s_recode(j->dg->d, j->k, j->dg->n, lo, hi, j->dg->c, j->dg->nwin);
}

/* d->d filled for k with d->n, c, nwin set; threads split the scalars */
static void s_digits_fill(struct qr_msm_digits *d, const qr_msm_scalar_t *k, unsigned threads)
{
    s_recode_job_t j = {d, k};
    s_split(d->n, 1u << 14, threads, s_recode_range, &j);
}

typedef struct {
    unsigned c, nwin, nchunks;
    size_t cap; /* batch capacity, 0 for Jacobian buckets */
} s_plan_t;

static s_plan_t s_plan(size_t n, int g2, unsigned threads, unsigned force_c)
{
    g2 = g2 != 0;
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
        /* a batch of nb/4 (see below) */
        size_t cap = batch ? (nb / 4 > 4096 ? 4096 : nb / 4) : 0;
        double t_add = batch ? s_t_batch[g2] + s_t_inv[g2] / (double)cap : s_t_jac[g2];
        double t_red = batch && nb >= 256 ? s_t_red_batch[g2] : s_t_red_jac[g2];
        double per = (double)n / nchunks * t_add + (double)nb * t_red;
        double cost = rounds * per;
        if (cost < best_cost) {
            best_cost = cost;
            best.c = c;
            best.nwin = nwin;
            best.nchunks = nchunks;
            /* a batch of nb/4: about 1 addition in 8 collides (and
             * waits for the next batch) while the shared inversion (~6 us)
             * costs ~3 ns an addition at c = 14; nb/8, nb/2 and a larger
             * ceiling measured the same or slower (2026-11-23) */
            best.cap = cap;
        }
    }
    return best;
}

unsigned qr_msm_window(size_t n, int g2, unsigned threads)
{
    return s_plan(n ? n : 1, g2, qr_msm_threads(threads), 0).c;
}

qr_msm_digits_t *qr_msm_digits_new(const qr_msm_scalar_t *k, size_t n, unsigned c, unsigned threads)
{
    if (c == 0)
        c = qr_msm_window(n, 0, threads);
    if (c < 2 || c > S_MAX_C || (n && !k))
        return NULL;
    qr_msm_digits_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->n = n;
    d->c = c;
    d->nwin = (255 + c - 1) / c;
    size_t len = (size_t)d->nwin * n;
    d->d = malloc((len ? len : 1) * sizeof *d->d);
    if (!d->d) {
        free(d);
        return NULL;
    }
    s_digits_fill(d, k, threads);
    return d;
}

void qr_msm_digits_destroy(qr_msm_digits_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->d);
    free(*self_p);
    *self_p = NULL;
}

unsigned qr_msm_digits_window(const qr_msm_digits_t *self)
{
    return self->c;
}

size_t qr_msm_digits_size(const qr_msm_digits_t *self)
{
    return self->n;
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

static inline __attribute__((always_inline)) void s_fp_mul(qr_fp_t *r, const qr_fp_t *a,
                                                           const qr_fp_t *b)
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
static inline __attribute__((always_inline)) void s_fp_sqr(qr_fp_t *r, const qr_fp_t *a)
{
#if defined(QR_ZK_ADX_ASM)
    if (__builtin_expect(qr_zk_adx, 1)) {
        qr_zk_mont_sqr_adx(r->l, a->l, &qr_zk_adx_fp_q);
        return;
    }
#endif
    s_fp_mul_c(r, a, a);
}

/* addition, subtraction, doubling forced inline: with the multiplication
 * inlined into the batched additions GCC ran out of inlining budget and
 * called qr_fp_sub out of line (measured 14 % of a 2^20 MSM in the call) */
static inline __attribute__((always_inline)) void s_fp_add(qr_fp_t *r, const qr_fp_t *a,
                                                           const qr_fp_t *b)
{
#if defined(QR_ZK_ADX_ASM)
    qr_zk_add_x86(r->l, a->l, b->l, &qr_zk_adx_fp_q);
#else
    qr_fp_add(r, a, b);
#endif
}

static inline __attribute__((always_inline)) void s_fp_sub(qr_fp_t *r, const qr_fp_t *a,
                                                           const qr_fp_t *b)
{
#if defined(QR_ZK_ADX_ASM)
    qr_zk_sub_x86(r->l, a->l, b->l, &qr_zk_adx_fp_q);
#else
    qr_fp_sub(r, a, b);
#endif
}

static inline __attribute__((always_inline)) void s_fp_dbl(qr_fp_t *r, const qr_fp_t *a)
{
    s_fp_add(r, a, a);
}

#define MSM_G qr_g1
#define MSM_F qr_fp
#define MSM_MUL s_fp_mul
#define MSM_SQR s_fp_sqr
#define MSM_ADD s_fp_add
#define MSM_SUB s_fp_sub
#define MSM_DBL s_fp_dbl
#define MSM_NORM(n, d) (*(n) = *(d))
#define MSM_LAMBDA(l, num, den, ninv) s_fp_mul(l, num, ninv)
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
#undef MSM_ADD
#undef MSM_SUB
#undef MSM_DBL
#undef MSM_NORM
#undef MSM_LAMBDA

/* qr_fp2_mul / qr_fp2_sqr over s_fp_mul (same Karatsuba and complex
 * squaring), for the G2 batched additions */
static inline void s_fp2_mul(qr_fp2_t *r, const qr_fp2_t *a, const qr_fp2_t *b)
{
#if defined(QR_ZK_ADX_ASM)
    if (__builtin_expect(qr_zk_adx, 1)) { /* lazy reduction: 4-5 % off a G2 MSM */
        qr_zk_fp2_mul_adx(r->c0.l, r->c1.l, a->c0.l, a->c1.l, b->c0.l, b->c1.l, &qr_zk_adx_fp_q);
        return;
    }
#endif
    qr_fp_t t0, t1, s0, s1;
    s_fp_mul(&t0, &a->c0, &b->c0);
    s_fp_mul(&t1, &a->c1, &b->c1);
    s_fp_add(&s0, &a->c0, &a->c1);
    s_fp_add(&s1, &b->c0, &b->c1);
    s_fp_mul(&s0, &s0, &s1);
    s_fp_sub(&r->c0, &t0, &t1);
    s_fp_sub(&s0, &s0, &t0);
    s_fp_sub(&r->c1, &s0, &t1);
}

static inline void s_fp2_sqr(qr_fp2_t *r, const qr_fp2_t *a)
{
    qr_fp_t s, d, m;
    s_fp_add(&s, &a->c0, &a->c1);
    s_fp_sub(&d, &a->c0, &a->c1);
    s_fp_mul(&m, &a->c0, &a->c1);
    s_fp_mul(&r->c0, &s, &d);
    s_fp_dbl(&r->c1, &m);
}

static inline __attribute__((always_inline)) void s_fp2_add(qr_fp2_t *r, const qr_fp2_t *a,
                                                            const qr_fp2_t *b)
{
    s_fp_add(&r->c0, &a->c0, &b->c0);
    s_fp_add(&r->c1, &a->c1, &b->c1);
}

static inline __attribute__((always_inline)) void s_fp2_sub(qr_fp2_t *r, const qr_fp2_t *a,
                                                            const qr_fp2_t *b)
{
    s_fp_sub(&r->c0, &a->c0, &b->c0);
    s_fp_sub(&r->c1, &a->c1, &b->c1);
}

static inline __attribute__((always_inline)) void s_fp2_dbl(qr_fp2_t *r, const qr_fp2_t *a)
{
    s_fp2_add(r, a, a);
}

/* The G2 batch inverts norms in Fp rather than denominators in Fp2:
 * 1 / d = conj(d) / (d0^2 + d1^2) (u^2 = -1), so Montgomery's trick runs
 * on Fp elements (3 Fp multiplications an entry instead of 3 Fp2 ones,
 * 9 Fp) for 2 squarings and 2 multiplications more: 15 Fp operations a
 * batched G2 addition instead of 17.  The norm of a non-zero d is non-zero
 * (-1 is not a square mod p). */
static inline void s_fp2_norm(qr_fp_t *n, const qr_fp2_t *d)
{
    qr_fp_t t;
    s_fp_sqr(n, &d->c0);
    s_fp_sqr(&t, &d->c1);
    s_fp_add(n, n, &t);
}

/* l = num / den = num conj(den) ninv, ninv = 1 / norm(den) */
static inline void s_fp2_div_norm(qr_fp2_t *l, const qr_fp2_t *num, const qr_fp2_t *den,
                                  const qr_fp_t *ninv)
{
    qr_fp2_t cj;
    cj.c0 = den->c0;
    qr_fp_neg(&cj.c1, &den->c1);
    s_fp2_mul(l, num, &cj);
    s_fp_mul(&l->c0, &l->c0, ninv);
    s_fp_mul(&l->c1, &l->c1, ninv);
}

#define MSM_G qr_g2
#define MSM_F qr_fp2
#define MSM_MUL s_fp2_mul
#define MSM_SQR s_fp2_sqr
#define MSM_ADD s_fp2_add
#define MSM_SUB s_fp2_sub
#define MSM_DBL s_fp2_dbl
#define MSM_NORM s_fp2_norm
#define MSM_LAMBDA s_fp2_div_norm
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
#undef MSM_ADD
#undef MSM_SUB
#undef MSM_DBL
#undef MSM_NORM
#undef MSM_LAMBDA
