/* Radix-2 NTT over Fr; see ntt.h. */
#include "ntt.h"

#include <pthread.h>
#include <stdlib.h>

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
    if (threads <= 1 || total < S_PAR_MIN) {
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
    s_par(self->threads, half, s_tw_range, &c);
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

typedef struct {
    const qr_ntt_t *self;
    qr_fr_t *a;
    size_t m; /* half the block size of this stage */
} s_stage_ctx_t;

/* butterflies [begin, end) of one stage; butterfly b is pair (k, k + m) in
 * block b / m at offset j = b % m, twiddle w^(j n / 2m) */
static void s_stage_range(void *arg, size_t begin, size_t end)
{
    s_stage_ctx_t *c = arg;
    size_t m = c->m, step = c->self->n / (2 * m);
    qr_fr_t *a = c->a;
    const qr_fr_t *tw = c->self->tw;
    for (size_t b = begin; b < end; b++) {
        size_t j = b & (m - 1), k = (b - j) * 2 + j;
        qr_fr_t t, u = a[k];
        if (j == 0)
            t = a[k + m];
        else
            qr_fr_mul(&t, &a[k + m], &tw[j * step]);
        qr_fr_add(&a[k], &u, &t);
        qr_fr_sub(&a[k + m], &u, &t);
    }
}

void qr_ntt_forward(const qr_ntt_t *self, qr_fr_t *a)
{
    if (self->n < 2)
        return;
    qr_ntt_bitreverse(a, self->log_n);
    for (size_t m = 1; m < self->n; m <<= 1) {
        s_stage_ctx_t c = {self, a, m};
        s_par(self->threads, self->n / 2, s_stage_range, &c);
    }
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
    s_par(self->threads, self->n, s_scale_range, &c);
}

void qr_ntt_inverse(const qr_ntt_t *self, qr_fr_t *a)
{
    if (self->n < 2)
        return;
    qr_ntt_forward(self, a);
    for (size_t i = 1, j = self->n - 1; i < j; i++, j--) {
        qr_fr_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
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
