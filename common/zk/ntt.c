/* Radix-2 NTT over Fr; see ntt.h. */
#include "ntt.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* below this many elements threads cost more than they save */
#define S_PAR_MIN (1u << 14)

struct qr_ntt {
    unsigned log_n;
    size_t n;
    unsigned threads;
    qr_fr_t *tw; /* tw[j] = w^j, j < n/2 */
};

/* ---- a small parallel-for: [0, total) cut into one slice per thread ---- */

typedef void(s_range_fn)(void *ctx, size_t begin, size_t end);

typedef struct {
    s_range_fn *fn;
    void *ctx;
    size_t begin, end;
} s_slice_t;

static void *s_slice_run(void *arg)
{
    s_slice_t *s = arg;
    s->fn(s->ctx, s->begin, s->end);
    return NULL;
}

#define S_MAX_THREADS 64

static void s_par(unsigned threads, size_t total, s_range_fn *fn, void *ctx)
{
    if (threads > S_MAX_THREADS)
        threads = S_MAX_THREADS;
    if (threads <= 1 || total < 2) {
        fn(ctx, 0, total);
        return;
    }
    s_slice_t sl[S_MAX_THREADS];
    pthread_t tid[S_MAX_THREADS];
    bool started[S_MAX_THREADS] = {false};
    size_t per = (total + threads - 1) / threads;
    for (unsigned i = 0; i < threads; i++) {
        sl[i].fn = fn;
        sl[i].ctx = ctx;
        sl[i].begin = (size_t)i * per < total ? (size_t)i * per : total;
        sl[i].end = sl[i].begin + per < total ? sl[i].begin + per : total;
    }
    /* slice 0 runs here; a thread that fails to start runs its slice here
     * too, so the result never depends on thread creation succeeding */
    for (unsigned i = 1; i < threads; i++)
        started[i] = pthread_create(&tid[i], NULL, s_slice_run, &sl[i]) == 0;
    fn(ctx, sl[0].begin, sl[0].end);
    for (unsigned i = 1; i < threads; i++) {
        if (started[i])
            pthread_join(tid[i], NULL);
        else
            fn(ctx, sl[i].begin, sl[i].end);
    }
}

/* ---- roots ---- */

void qr_fr_root_of_unity(qr_fr_t *r, unsigned log_n)
{
    const qr_fr_t w28 = {QR_FR_ROOT28};
    *r = w28;
    for (unsigned k = QR_FR_TWO_ADICITY; k > log_n; k--)
        qr_fr_sqr(r, r);
}

void qr_fr_generator(qr_fr_t *r)
{
    const qr_fr_t g = {QR_FR_GEN};
    *r = g;
}

/* ---- twiddles, computed in parallel: each slice starts from w^begin ---- */

typedef struct {
    qr_fr_t *tw;
    qr_fr_t w;
} s_tw_ctx_t;

static void s_tw_range(void *arg, size_t begin, size_t end)
{
    s_tw_ctx_t *c = arg;
    if (begin >= end)
        return;
    const uint64_t e[4] = {begin, 0, 0, 0};
    qr_fr_t x;
    qr_fr_pow(&x, &c->w, e);
    for (size_t j = begin; j < end; j++) {
        c->tw[j] = x;
        qr_fr_mul(&x, &x, &c->w);
    }
}

qr_ntt_t *qr_ntt_new(unsigned log_n, unsigned threads)
{
    if (log_n > QR_NTT_MAX_LOG)
        return NULL;
    qr_ntt_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->log_n = log_n;
    self->n = (size_t)1 << log_n;
    self->threads = threads ? threads : 1;
    size_t half = self->n / 2 ? self->n / 2 : 1;
    self->tw = malloc(half * sizeof *self->tw);
    if (!self->tw) {
        free(self);
        return NULL;
    }
    s_tw_ctx_t c = {self->tw, {{0}}};
    qr_fr_root_of_unity(&c.w, log_n);
    s_par(half >= S_PAR_MIN ? self->threads : 1, half, s_tw_range, &c);
    return self;
}

void qr_ntt_destroy(qr_ntt_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->tw);
    free(*self_p);
    *self_p = NULL;
}

size_t qr_ntt_size(const qr_ntt_t *self)
{
    return self->n;
}

/* ---- the transform ---- */

static size_t s_bitrev(size_t i, unsigned bits)
{
    uint64_t x = i;
    x = ((x >> 1) & 0x5555555555555555ull) | ((x & 0x5555555555555555ull) << 1);
    x = ((x >> 2) & 0x3333333333333333ull) | ((x & 0x3333333333333333ull) << 2);
    x = ((x >> 4) & 0x0f0f0f0f0f0f0f0full) | ((x & 0x0f0f0f0f0f0f0f0full) << 4);
    x = ((x >> 8) & 0x00ff00ff00ff00ffull) | ((x & 0x00ff00ff00ff00ffull) << 8);
    x = ((x >> 16) & 0x0000ffff0000ffffull) | ((x & 0x0000ffff0000ffffull) << 16);
    x = (x >> 32) | (x << 32);
    return bits ? (size_t)(x >> (64 - bits)) : 0;
}

void qr_ntt_bitreverse(qr_fr_t *a, unsigned log_n)
{
    size_t n = (size_t)1 << log_n;
    for (size_t i = 0; i < n; i++) {
        size_t j = s_bitrev(i, log_n);
        if (i < j) {
            qr_fr_t t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
}

/* ---- the butterflies, cache-blocked ----
 * Decimation in time after the bit reversal: stage m (m = 1, 2, 4, ...,
 * n/2) pairs k and k + m for k mod 2m = j < m, with the twiddle w^(j n/2m).
 * Stages run in two passes over the array instead of log2 n:
 *   pass 1: stages m < B act within aligned blocks of B = S_BLOCK elements
 *     (32 KiB, in L1), so each block goes through all of them at once;
 *   pass 2: stages m >= B pair rows r and r + m/B of the n/B x B matrix
 *     a[r B + c], column by column, so a tile of S_TILE adjacent columns
 *     (n/B rows of 512 bytes: 512 KiB at n = 2^20, in L2) goes through all
 *     of them at once.
 * Same butterflies, same order within each pair's history, so the same
 * result as stage by stage; at 2^20 the array is read and written twice
 * instead of 20 times.  The inverse uses w^-1 twiddles directly:
 * w^-e = -w^(n/2 - e) for 0 < e < n/2, so the table serves both and there
 * is no reversal pass. */
#define S_BLOCK ((size_t)1 << 10)
#define S_TILE ((size_t)16)
/* pass 2 prefetches the twiddles this many rows ahead */
#define S_TW_AHEAD 2

/* forced inline: the NTT loops inline many of them (see msm.c) */
static inline __attribute__((always_inline)) void s_mul(qr_fr_t *r, const qr_fr_t *a,
                                                        const qr_fr_t *b)
{
#if defined(QR_ZK_ADX_ASM)
    if (__builtin_expect(qr_zk_adx, 1)) {
        qr_zk_mont_mul_adx(r->l, a->l, b->l, &qr_zk_adx_fr_q);
        return;
    }
#endif
    qr_fr_mul(r, a, b);
}

static inline __attribute__((always_inline)) void s_addsub(qr_fr_t *x, qr_fr_t *y, const qr_fr_t *u,
                                                           const qr_fr_t *t)
{
#if defined(QR_ZK_ADX_ASM)
    qr_zk_add_x86(x->l, u->l, t->l, &qr_zk_adx_fr_q);
    qr_zk_sub_x86(y->l, u->l, t->l, &qr_zk_adx_fr_q);
#else
    qr_fr_add(x, u, t);
    qr_fr_sub(y, u, t);
#endif
}

/* a[k], a[k + m] <- u + t, u - t with t = a[k + m] w^(+-e), e the twiddle
 * exponent (0 < e < n/2), inv choosing w^-1 */
static inline __attribute__((always_inline)) void
s_bfly(qr_fr_t *a, size_t k, size_t m, const qr_fr_t *tw, size_t half, size_t e, bool inv)
{
    qr_fr_t u = a[k], t;
    if (inv) { /* t' = a w^(n/2 - e) = -t */
        s_mul(&t, &a[k + m], &tw[half - e]);
        s_addsub(&a[k + m], &a[k], &u, &t);
    } else {
        s_mul(&t, &a[k + m], &tw[e]);
        s_addsub(&a[k], &a[k + m], &u, &t);
    }
}

/* the j = 0 butterfly: twiddle 1 */
static inline __attribute__((always_inline)) void s_bfly0(qr_fr_t *a, size_t k, size_t m)
{
    qr_fr_t u = a[k], t = a[k + m];
    s_addsub(&a[k], &a[k + m], &u, &t);
}

typedef struct {
    const qr_ntt_t *self;
    qr_fr_t *a;
    size_t blk; /* pass 1 block size: min(n, S_BLOCK) */
    bool inv;
} s_pass_ctx_t;

/* pass 1 over blocks [begin, end) */
static void s_pass1(void *arg, size_t begin, size_t end)
{
    s_pass_ctx_t *c = arg;
    size_t n = c->self->n, half = n / 2, blk = c->blk;
    const qr_fr_t *tw = c->self->tw;
    bool inv = c->inv;
    for (size_t bi = begin; bi < end; bi++) {
        qr_fr_t *a = c->a + bi * blk;
        for (size_t m = 1; m < blk; m <<= 1) {
            size_t step = n / (2 * m);
            for (size_t k0 = 0; k0 < blk; k0 += 2 * m) {
                s_bfly0(a, k0, m);
                if (inv)
                    for (size_t j = 1; j < m; j++)
                        s_bfly(a, k0 + j, m, tw, half, j * step, true);
                else
                    for (size_t j = 1; j < m; j++)
                        s_bfly(a, k0 + j, m, tw, half, j * step, false);
            }
        }
    }
}

/* pass 2 over column tiles [begin, end) of the (n / blk) x blk matrix.  A
 * tile's rows are blk 32 bytes apart, a power of two: in place they would
 * fall into a few cache sets and evict each other, so each tile is copied
 * into a contiguous buffer (rows x S_TILE), transformed there and copied
 * back. */
static void s_pass2(void *arg, size_t begin, size_t end)
{
    s_pass_ctx_t *c = arg;
    size_t n = c->self->n, half = n / 2, blk = c->blk, rows = n / blk;
    const qr_fr_t *tw = c->self->tw;
    qr_fr_t *a = c->a;
    bool inv = c->inv;
    qr_fr_t *buf = malloc(rows * S_TILE * sizeof *buf);
    for (size_t ti = begin; ti < end; ti++) {
        size_t c0 = ti * S_TILE;
        qr_fr_t *x = buf ? buf : a + c0; /* without memory: in place, slower */
        size_t ld = buf ? S_TILE : blk;  /* row pitch of x */
        if (buf)
            for (size_t r = 0; r < rows; r++)
                memcpy(&x[r * S_TILE], &a[r * blk + c0], S_TILE * sizeof *x);
        for (size_t mr = 1; mr < rows; mr <<= 1) { /* stage m = mr blk */
            size_t step = n / (2 * mr * blk), mx = mr * ld;
            for (size_t r0 = 0; r0 < rows; r0 += 2 * mr)
                for (size_t rr = 0; rr < mr; rr++) {
                    size_t k = (r0 + rr) * ld, e = (rr * blk + c0) * step;
                    size_t cc = 0;
                    if (rr + S_TW_AHEAD < mr) {                 /* the twiddles of a later row: */
                        size_t f = e + S_TW_AHEAD * blk * step; /* scattered over the table */
                        for (size_t q = 0; q < S_TILE; q++, f += step)
                            __builtin_prefetch(&tw[inv ? half - f : f], 0);
                    }
                    if (e == 0) { /* rr = 0, c0 = 0: column 0 has twiddle 1 */
                        s_bfly0(x, k, mx);
                        cc = 1;
                        e = step;
                    }
                    if (inv)
                        for (; cc < S_TILE; cc++, e += step)
                            s_bfly(x, k + cc, mx, tw, half, e, true);
                    else
                        for (; cc < S_TILE; cc++, e += step)
                            s_bfly(x, k + cc, mx, tw, half, e, false);
                }
        }
        if (buf)
            for (size_t r = 0; r < rows; r++)
                memcpy(&a[r * blk + c0], &x[r * S_TILE], S_TILE * sizeof *x);
    }
    free(buf);
}

typedef struct {
    qr_fr_t *a;
    unsigned log_n;
} s_bitrev_ctx_t;

static void s_bitrev_range(void *arg, size_t begin, size_t end)
{
    s_bitrev_ctx_t *c = arg;
    for (size_t i = begin; i < end; i++) {
        size_t j = s_bitrev(i, c->log_n);
        if (i < j) { /* each pair once, by its smaller index: slices never meet */
            qr_fr_t t = c->a[i];
            c->a[i] = c->a[j];
            c->a[j] = t;
        }
    }
}

/* the transform with w (inv false) or w^-1 (inv true), no scaling */
static void s_transform(const qr_ntt_t *self, qr_fr_t *a, bool inv)
{
    size_t n = self->n;
    if (n < 2)
        return;
    unsigned th = n >= S_PAR_MIN ? self->threads : 1;
    s_bitrev_ctx_t br = {a, self->log_n};
    s_par(th, n, s_bitrev_range, &br);
    s_pass_ctx_t c = {self, a, n < S_BLOCK ? n : S_BLOCK, inv};
    s_par(th, n / c.blk, s_pass1, &c);
    if (n > c.blk)
        s_par(th, c.blk / S_TILE, s_pass2, &c);
}

void qr_ntt_forward(const qr_ntt_t *self, qr_fr_t *a)
{
    s_transform(self, a, false);
}

typedef struct {
    qr_fr_t *a;
    qr_fr_t f;    /* constant factor */
    qr_fr_t step; /* per-index factor (powers), or one */
    bool powers;
} s_scale_ctx_t;

/* a[i] *= f * step^i */
static void s_scale_range(void *arg, size_t begin, size_t end)
{
    s_scale_ctx_t *c = arg;
    if (begin >= end)
        return;
    qr_fr_t x = c->f;
    if (c->powers) {
        const uint64_t e[4] = {begin, 0, 0, 0};
        qr_fr_t s;
        qr_fr_pow(&s, &c->step, e);
        qr_fr_mul(&x, &x, &s);
    }
    for (size_t i = begin; i < end; i++) {
        qr_fr_mul(&c->a[i], &c->a[i], &x);
        if (c->powers)
            qr_fr_mul(&x, &x, &c->step);
    }
}

static void s_scale(const qr_ntt_t *self, qr_fr_t *a, const qr_fr_t *f, const qr_fr_t *step)
{
    s_scale_ctx_t c = {a, *f, {{0}}, step != NULL};
    if (step)
        c.step = *step;
    s_par(self->n >= S_PAR_MIN ? self->threads : 1, self->n, s_scale_range, &c);
}

void qr_ntt_inverse(const qr_ntt_t *self, qr_fr_t *a)
{
    if (self->n < 2)
        return;
    s_transform(self, a, true);
    qr_fr_t ninv;
    qr_fr_from_u64(&ninv, (uint64_t)self->n);
    qr_fr_inv(&ninv, &ninv);
    s_scale(self, a, &ninv, NULL);
}

void qr_ntt_coset_forward(const qr_ntt_t *self, qr_fr_t *a, const qr_fr_t *shift)
{
    qr_fr_t one;
    qr_fr_one(&one);
    s_scale(self, a, &one, shift);
    qr_ntt_forward(self, a);
}

void qr_ntt_coset_inverse(const qr_ntt_t *self, qr_fr_t *a, const qr_fr_t *shift)
{
    qr_fr_t one, sinv;
    qr_ntt_inverse(self, a);
    qr_fr_one(&one);
    qr_fr_inv(&sinv, shift);
    s_scale(self, a, &one, &sinv);
}
