/* The per-group half of msm.c, included once for G1 and once for G2 with
 * these defined (a template by hand: one text, so the two groups cannot
 * drift apart, and compiler errors point at real lines, which a macro body
 * would not give):
 *
 *   MSM_G   group prefix (qr_g1)      MSM_F   field prefix (qr_fp)
 *   MSM_P   Jacobian point type       MSM_FT  field type
 *   MSM_A   affine point type         MSM_S   static name prefix (s_g1)
 *   MSM_MUL, MSM_SQR, MSM_ADD, MSM_SUB, MSM_DBL  field operations for
 *           the batched additions (forced inline)
 *   MSM_NORM(n, d)   n = the Fp norm of d (d itself in G1, d conj(d) in
 *           G2), which the batch inverts instead of d
 *   MSM_LAMBDA(l, num, den, ninv)   l = num / den given ninv = 1 / norm(den)
 *           (G1: num ninv; G2: num conj(den) ninv; den unused in G1)
 *
 * Private to msm.c. */
#define MSM_CAT_(a, b) a##b
#define MSM_CAT(a, b) MSM_CAT_(a, b)
#define GF(name) MSM_CAT(MSM_G, name)
#define FF(name) MSM_CAT(MSM_F, name)
#define SF(name) MSM_CAT(MSM_S, name)

/* ---- bucket accumulator ----
 * Buckets are affine while they can be: adding Q to bucket b is queued with
 * its denominator (x_Q - x_b, or 2 y_b for a doubling), and a flush inverts
 * all queued denominators at once.  A bucket already queued in the current
 * batch cannot take a second point until the flush, so that point waits in
 * a retry list (up to cap/2 of them) and is queued again right after the
 * flush; only when the list is full, and in the last round of a window,
 * does it go into jac[b], a Jacobian twin, by a mixed addition.  This keeps
 * the batch full however the digits collide (circuit witnesses are full of
 * 0s and 1s, which all land in bucket 0 of window 0) while random digits
 * (1 addition in 8 collides at cap = nb/4) stay on the affine path, which
 * costs less than half a mixed addition and leaves no twin to add in the
 * reduction.  cap 0 turns batching off: everything goes to jac. */
typedef struct {
    MSM_A *aff;       /* nb affine buckets (valid where st & S_AFF) */
    MSM_P *jac;       /* nb Jacobian twins (valid where st & S_JAC) */
    uint8_t *st;      /* per bucket: S_AFF | S_JAC */
    uint32_t *stamp;  /* per bucket: the batch it is queued in */
    uint32_t batch;   /* current batch id, never 0 */
    size_t nb, cap, len;
    uint32_t *qb;     /* queued: bucket */
    MSM_FT *qx;       /* queued: x of the point to add */
    MSM_FT *num;      /* queued: y2 - y1, or 3 x^2 for a doubling */
    MSM_FT *den;      /* queued: x2 - x1, or 2 y for a doubling (G2 only) */
    qr_fp_t *nrm;     /* queued: den (G1), its norm den conj(den) (G2) */
    qr_fp_t *pre;     /* nrm[0] ... nrm[i], built as entries are queued */
    size_t rcap, rlen;  /* retry list: capacity (< cap), length */
    uint32_t *rb, *rb2; /* retry list: bucket; rb2 the list being drained */
    MSM_A *rp, *rp2;    /* retry list: point; rp2 the list being drained */
} SF(_acc_t);

static void SF(_acc_free)(SF(_acc_t) * a)
{
    free(a->aff);
    free(a->jac);
    free(a->st);
    free(a->stamp);
    free(a->qb);
    free(a->qx);
    free(a->num);
    free(a->den);
    free(a->nrm);
    free(a->pre);
    free(a->rb);
    free(a->rb2);
    free(a->rp);
    free(a->rp2);
    memset(a, 0, sizeof *a);
}

static int SF(_acc_init)(SF(_acc_t) * a, size_t nb, size_t cap)
{
    memset(a, 0, sizeof *a);
    a->nb = nb;
    a->cap = cap;
    a->batch = 1;
    a->jac = malloc(nb * sizeof *a->jac);
    a->st = calloc(nb, 1);
    bool ok = a->jac && a->st;
    if (cap) {
        /* one G1 bucket per cache line (two for G2), so one prefetch
         * brings it whole */
        a->aff = aligned_alloc(64, (nb * sizeof *a->aff + 63) / 64 * 64);
        a->stamp = calloc(nb, sizeof *a->stamp);
        a->qb = malloc(cap * sizeof *a->qb);
        a->qx = malloc(cap * sizeof *a->qx);
        a->num = malloc(cap * sizeof *a->num);
        a->den = MSM_IS_G2 ? malloc(cap * sizeof *a->den) : NULL;
        a->nrm = malloc(cap * sizeof *a->nrm);
        a->pre = malloc(cap * sizeof *a->pre);
        ok = ok && a->aff && a->stamp && a->qb && a->qx && a->num && (a->den || !MSM_IS_G2) &&
             a->nrm && a->pre;
        a->rcap = cap / 2; /* < cap: a drained list can never fill the batch */
        if (a->rcap) {
            a->rb = malloc(a->rcap * sizeof *a->rb);
            a->rb2 = malloc(a->rcap * sizeof *a->rb2);
            a->rp = malloc(a->rcap * sizeof *a->rp);
            a->rp2 = malloc(a->rcap * sizeof *a->rp2);
            ok = ok && a->rb && a->rb2 && a->rp && a->rp2;
        }
    }
    if (!ok) {
        SF(_acc_free)(a);
        return -1;
    }
    return 0;
}

/* jac[b] += q */
static inline void SF(_acc_add_jac)(SF(_acc_t) * a, size_t b, const MSM_A *q)
{
    if (a->st[b] & S_JAC) {
        GF(_add_mixed)(&a->jac[b], &a->jac[b], q);
    } else {
        GF(_from_affine)(&a->jac[b], q);
        a->st[b] |= S_JAC;
    }
}

/* Entry i of the batch with d = 1 / nrm[i]: lambda = num / den,
 * x3 = lambda^2 - x1 - x2, y3 = lambda (x1 - x3) - y1 into the bucket (a
 * doubling has x2 = x1, so the same lines) */
#define SF_APPLY_BEGIN(i, d, lam, x3)                                                              \
    MSM_LAMBDA(&lam, &a->num[i], MSM_IS_G2 ? &a->den[i] : NULL, &d);                               \
    MSM_SQR(&x3, &lam)
#define SF_APPLY_END(i, lam, x3, t)                                                                \
    do {                                                                                           \
        MSM_A *p_ = &a->aff[a->qb[i]];                                                             \
        MSM_SUB(&x3, &x3, &p_->x);                                                                 \
        MSM_SUB(&x3, &x3, &a->qx[i]);                                                              \
        MSM_SUB(&t, &p_->x, &x3);                                                                  \
        MSM_MUL(&t, &lam, &t);                                                                     \
        MSM_SUB(&p_->y, &t, &p_->y);                                                               \
        p_->x = x3;                                                                                \
    } while (0)

/* Runs the queued additions: one inversion of pre[n - 1] for the batch
 * (Montgomery's trick; the prefix products were made as entries were
 * queued, where their serial chain overlaps the queueing work), then the
 * entries from the last, two at a time: entries of one batch are different
 * buckets, so the two dependency chains (four multiplications each) are
 * independent and interleaving them in program order lets the core
 * overlap them. */
static void SF(_acc_flush)(SF(_acc_t) * a)
{
    size_t n = a->len;
    if (n == 0)
        return;
    qr_fp_t inv, d0, d1;
    MSM_FT l0, l1, x0, x1, t0, t1;
    qr_fp_inv(&inv, &a->pre[n - 1]);
    size_t i = n;
    for (; i >= 2; i -= 2) {
        size_t i0 = i - 1, i1 = i - 2;
        if (i1 >= 4) {
            __builtin_prefetch(&a->aff[a->qb[i1 - 4]], 1);
            __builtin_prefetch(&a->aff[a->qb[i1 - 3]], 1);
            if (sizeof(MSM_A) > 64) {
                __builtin_prefetch((const char *)&a->aff[a->qb[i1 - 4]] + 64, 1);
                __builtin_prefetch((const char *)&a->aff[a->qb[i1 - 3]] + 64, 1);
            }
        }
        s_fp_mul(&d0, &inv, &a->pre[i1]);  /* 1 / nrm[i0] */
        s_fp_mul(&inv, &inv, &a->nrm[i0]); /* 1 / pre[i1] */
        if (i1 > 0) {
            s_fp_mul(&d1, &inv, &a->pre[i1 - 1]);
            s_fp_mul(&inv, &inv, &a->nrm[i1]);
        } else {
            d1 = inv;
        }
        SF_APPLY_BEGIN(i0, d0, l0, x0);
        SF_APPLY_BEGIN(i1, d1, l1, x1);
        SF_APPLY_END(i0, l0, x0, t0);
        SF_APPLY_END(i1, l1, x1, t1);
    }
    if (i == 1) {
        SF_APPLY_BEGIN(0, inv, l0, x0);
        SF_APPLY_END(0, l0, x0, t0);
    }
    a->len = 0;
    if (++a->batch == 0) { /* wrapped after 2^32 flushes: old stamps could match */
        memset(a->stamp, 0, a->nb * sizeof *a->stamp);
        a->batch = 1;
    }
}
#undef SF_APPLY_BEGIN
#undef SF_APPLY_END

static void SF(_acc_drain)(SF(_acc_t) * a, bool retry);

/* bucket b += q, or -q with neg (q finite: the MSM passes its base as it
 * is and the digit's sign apart, so a negative digit costs no copy); a
 * collision waits in the retry list if retry and the list has room, else
 * goes to the Jacobian twin */
static inline void SF(_acc_add_s)(SF(_acc_t) * a, size_t b, const MSM_A *q, bool neg, bool retry)
{
    MSM_A nq;
    if (a->cap == 0 || !(a->st[b] & S_AFF) || a->stamp[b] == a->batch) {
        if (neg) { /* the rare paths take the point itself */
            nq.x = q->x;
            FF(_neg)(&nq.y, &q->y);
            q = &nq;
        }
        if (a->cap == 0) {
            SF(_acc_add_jac)(a, b, q);
        } else if (!(a->st[b] & S_AFF)) {
            a->aff[b] = *q;
            a->st[b] |= S_AFF;
        } else if (retry && a->rlen < a->rcap) {
            a->rb[a->rlen] = (uint32_t)b;
            a->rp[a->rlen++] = *q;
        } else {
            SF(_acc_add_jac)(a, b, q);
        }
        return;
    }
    const MSM_A *p = &a->aff[b];
    size_t i = a->len;
    MSM_FT den;
    if (FF(_eq)(&p->x, &q->x)) {
        /* y_p = +-y_q: the point added is -q with neg, so p + that is a
         * doubling when y_p equals its y, else the bucket empties */
        if (FF(_eq)(&p->y, &q->y) == neg) {
            a->st[b] &= (uint8_t)~S_AFF;
            return;
        }
        MSM_FT t; /* lambda = 3 x^2 / 2 y; y != 0: no point of order 2 */
        MSM_SQR(&t, &p->x);
        MSM_DBL(&a->num[i], &t);
        MSM_ADD(&a->num[i], &a->num[i], &t);
        MSM_DBL(&den, &p->y);
    } else if (neg) { /* (-y_q - y_p) / (x_q - x_p) = (y_q + y_p) / (x_p - x_q) */
        MSM_ADD(&a->num[i], &q->y, &p->y);
        MSM_SUB(&den, &p->x, &q->x);
    } else {
        MSM_SUB(&a->num[i], &q->y, &p->y);
        MSM_SUB(&den, &q->x, &p->x);
    }
    MSM_NORM(&a->nrm[i], &den);
    if (MSM_IS_G2)
        a->den[i] = den;
    if (i == 0)
        a->pre[0] = a->nrm[0];
    else
        s_fp_mul(&a->pre[i], &a->pre[i - 1], &a->nrm[i]);
    a->qb[i] = (uint32_t)b;
    a->qx[i] = q->x;
    a->stamp[b] = a->batch;
    if (++a->len == a->cap)
        SF(_acc_drain)(a, true);
}

static inline void SF(_acc_add_r)(SF(_acc_t) * a, size_t b, const MSM_A *q, bool retry)
{
    SF(_acc_add_s)(a, b, q, false, retry);
}

static inline void SF(_acc_add)(SF(_acc_t) * a, size_t b, const MSM_A *q)
{
    SF(_acc_add_r)(a, b, q, true);
}

/* Flushes the batch, then queues the retry list again (into the new
 * batch: fewer than cap entries, so no flush from inside).  With retry
 * false the entries that collide again go to the Jacobian twins, so the
 * list ends empty: the end of a window, where a hot bucket would otherwise
 * cost one flush per waiting point. */
static void SF(_acc_drain)(SF(_acc_t) * a, bool retry)
{
    SF(_acc_flush)(a);
    size_t n = a->rlen;
    if (n == 0)
        return;
    uint32_t *tb = a->rb;
    MSM_A *tp = a->rp;
    a->rb = a->rb2;
    a->rp = a->rp2;
    a->rb2 = tb;
    a->rp2 = tp;
    a->rlen = 0;
    for (size_t i = 0; i < n; i++)
        SF(_acc_add_r)(a, tb[i], &tp[i], retry);
}

/* Everything added so far is in the buckets (affine or twin), nothing
 * queued or waiting */
static void SF(_acc_finish)(SF(_acc_t) * a)
{
    SF(_acc_drain)(a, false);
    SF(_acc_flush)(a);
}

/* out = sum_b (b + 1) bucket_b by the running sum, and the buckets emptied */
static void SF(_acc_reduce)(SF(_acc_t) * a, MSM_P *out)
{
    MSM_P run, tot;
    GF(_set_inf)(&run);
    GF(_set_inf)(&tot);
    for (size_t b = a->nb; b-- > 0;) {
        uint8_t st = a->st[b];
        if (st & S_AFF)
            GF(_add_mixed)(&run, &run, &a->aff[b]);
        if (st & S_JAC)
            GF(_add)(&run, &run, &a->jac[b]);
        GF(_add)(&tot, &tot, &run);
    }
    memset(a->st, 0, a->nb);
    *out = tot;
}

static void SF(_batch_to_affine)(MSM_A *out, const MSM_P *in, size_t n, MSM_FT *scratch);

/* Moves every Jacobian twin into its affine bucket (one batched conversion,
 * then batched additions: a bucket appears once, so nothing collides).
 * -1 when the scratch cannot be had (the buckets are left as they were). */
static int SF(_acc_fold_twins)(SF(_acc_t) * a)
{
    size_t nt = 0;
    for (size_t b = 0; b < a->nb; b++)
        nt += (a->st[b] & S_JAC) != 0;
    if (nt == 0)
        return 0;
    uint32_t *tb = malloc(nt * sizeof *tb);
    MSM_P *tj = malloc(nt * sizeof *tj);
    MSM_A *ta = malloc(nt * sizeof *ta);
    MSM_FT *scratch = malloc(nt * sizeof *scratch);
    int rc = -1;
    if (tb && tj && ta && scratch) {
        size_t k = 0;
        for (size_t b = 0; b < a->nb; b++)
            if (a->st[b] & S_JAC) {
                tb[k] = (uint32_t)b;
                tj[k++] = a->jac[b];
                a->st[b] &= (uint8_t)~S_JAC;
            }
        SF(_batch_to_affine)(ta, tj, nt, scratch);
        for (size_t i = 0; i < nt; i++)
            if (!GF(_affine_is_inf)(&ta[i]))
                SF(_acc_add_r)(a, tb[i], &ta[i], false);
        SF(_acc_finish)(a);
        rc = 0;
    }
    free(tb);
    free(tj);
    free(ta);
    free(scratch);
    return rc;
}

/* Number of segments for the batched reduction of nb buckets: the cost is
 * about 2 (nb / S) inversions (~6 us) plus 3 S Jacobian additions (~0.25
 * us, G1), least near S = 4 sqrt(nb); the first power of two at or above
 * sqrt(8 nb) (512 at nb = 2^15, 256 at 2^12), or 0 (s_acc_reduce) when
 * the buckets are too few to be worth it */
static size_t SF(_red_segments)(size_t nb)
{
    if (nb < 256)
        return 0;
    size_t s = 16;
    while (s * s < 8 * nb)
        s *= 2;
    return s;
}

/* The same sum with the buckets' running sums batched: the nb buckets
 * (all affine after folding the twins) are cut into S segments of L;
 * segment s keeps run_s and tot_s, the buckets of r (r has 2 S buckets and
 * a batch of S), and step t = 0..L-1 adds bucket s L + L - 1 - t into every
 * run_s as one batch, then every run_s into its tot_s as another, so that
 * each step's S affine additions share one inversion.  At the end run_s is
 * the segment's sum and tot_s = sum_{b in s} (b - s L + 1) bucket_b, and
 *     out = sum_s tot_s + L sum_s s run_s,
 * the last sum by a Jacobian running sum over the S segments and log2 L
 * doublings.  Falls back to s_acc_reduce when the twins cannot be folded. */
static void SF(_acc_reduce_batched)(SF(_acc_t) * a, SF(_acc_t) * r, MSM_P *out)
{
    size_t S = r->nb / 2, L = a->nb / S;
    if (SF(_acc_fold_twins)(a) != 0) {
        SF(_acc_reduce)(a, out);
        return;
    }
    for (size_t t = 0; t < L; t++) {
        size_t off = L - 1 - t;
        for (size_t s = 0; s < S; s++) {
            size_t b = s * L + off;
            if (a->st[b] & S_AFF)
                SF(_acc_add_r)(r, s, &a->aff[b], false);
        }
        SF(_acc_flush)(r);
        for (size_t s = 0; s < S; s++)
            if (r->st[s] & S_AFF)
                SF(_acc_add_r)(r, S + s, &r->aff[s], false);
        SF(_acc_flush)(r);
    }
    MSM_P run, tot, w;
    GF(_set_inf)(&run);
    GF(_set_inf)(&tot);
    for (size_t s = S; s-- > 1;) {
        if (r->st[s] & S_AFF)
            GF(_add_mixed)(&run, &run, &r->aff[s]);
        GF(_add)(&tot, &tot, &run);
    }
    for (size_t l = L; l > 1 && !GF(_is_inf)(&tot); l /= 2)
        GF(_dbl)(&tot, &tot);
    w = tot;
    for (size_t s = 0; s < S; s++)
        if (r->st[S + s] & S_AFF)
            GF(_add_mixed)(&w, &w, &r->aff[S + s]);
    memset(a->st, 0, a->nb);
    memset(r->st, 0, r->nb);
    *out = w;
}

/* ---- MSM ---- */

typedef struct {
    const MSM_A *bases;
    const int16_t *digits; /* [window][stride] */
    size_t stride;         /* scalars in the digit array */
    size_t lo, hi;         /* the points summed: [lo, hi) */
    unsigned c, nwin, nchunks;
    size_t nb, cap;
    MSM_P *part; /* [window * nchunks + chunk] */
    atomic_uint next, done;
} SF(_msm_job_t);

static void *SF(_msm_worker)(void *arg)
{
    SF(_msm_job_t) *job = arg;
    SF(_acc_t) acc, red;
    size_t nseg = job->cap ? SF(_red_segments)(job->nb) : 0;
    if (SF(_acc_init)(&acc, job->nb, job->cap) != 0)
        return NULL; /* the others (or the caller's check) pick up the work */
    if (nseg && SF(_acc_init)(&red, 2 * nseg, nseg) != 0) {
        SF(_acc_free)(&acc);
        return NULL;
    }
    unsigned ntask = job->nwin * job->nchunks;
    size_t n = job->hi - job->lo, per = (n + job->nchunks - 1) / job->nchunks;
    for (;;) {
        unsigned t = atomic_fetch_add(&job->next, 1);
        if (t >= ntask)
            break;
        unsigned j = t / job->nchunks, k = t % job->nchunks;
        size_t lo = job->lo + (size_t)k * per, hi = lo + per < job->hi ? lo + per : job->hi;
        const int16_t *dg = job->digits + (size_t)j * job->stride;
        for (size_t i = lo; i < hi; i++) {
            if (i + S_PREFETCH < hi && acc.cap) { /* the bucket a later point goes to */
                int e = dg[i + S_PREFETCH];
                size_t be = (size_t)(e < 0 ? -e : e) - 1;
                if (e) {
                    __builtin_prefetch(&acc.aff[be], 1);
                    if (sizeof(MSM_A) > 64)
                        __builtin_prefetch((const char *)&acc.aff[be] + 64, 1);
                    __builtin_prefetch(&acc.stamp[be], 1);
                    __builtin_prefetch(&job->bases[i + S_PREFETCH], 0);
                    if (sizeof(MSM_A) > 64)
                        __builtin_prefetch((const char *)&job->bases[i + S_PREFETCH] + 64, 0);
                }
            }
            int d = dg[i];
            if (d == 0)
                continue;
            const MSM_A *p = &job->bases[i];
            if (GF(_affine_is_inf)(p))
                continue;
            SF(_acc_add_s)(&acc, (size_t)(d < 0 ? -d : d) - 1, p, d < 0, true);
        }
        SF(_acc_finish)(&acc);
        if (nseg)
            SF(_acc_reduce_batched)(&acc, &red, &job->part[t]);
        else
            SF(_acc_reduce)(&acc, &job->part[t]);
        atomic_fetch_add(&job->done, 1);
    }
    SF(_acc_free)(&acc);
    if (nseg)
        SF(_acc_free)(&red);
    return NULL;
}

/* out = sum_{lo <= i < hi} k_i bases[i] over the digits of d */
static int SF(_msm_run)(MSM_P *out, const MSM_A *bases, const struct qr_msm_digits *d, size_t lo,
                        size_t hi, unsigned threads)
{
    if (hi <= lo) {
        GF(_set_inf)(out);
        return 0;
    }
    threads = qr_msm_threads(threads);
    s_plan_t pl = s_plan(hi - lo, MSM_IS_G2, threads, d->c);
    SF(_msm_job_t) job;
    memset(&job, 0, sizeof job);
    job.bases = bases;
    job.digits = d->d;
    job.stride = d->n;
    job.lo = lo;
    job.hi = hi;
    job.c = pl.c;
    job.nwin = pl.nwin;
    job.nchunks = pl.nchunks;
    job.nb = (size_t)1 << (pl.c - 1);
    job.cap = pl.cap;
    job.part = malloc((size_t)pl.nwin * pl.nchunks * sizeof *job.part);
    if (!job.part)
        return -1;
    atomic_init(&job.next, 0);
    atomic_init(&job.done, 0);
    unsigned ntask = pl.nwin * pl.nchunks;
    s_run(threads < ntask ? threads : ntask, SF(_msm_worker), &job);
    int rc = 0;
    if (atomic_load(&job.done) != ntask) {
        rc = -1;
    } else {
        MSM_P acc;
        GF(_set_inf)(&acc);
        for (unsigned j = pl.nwin; j-- > 0;) {
            for (unsigned b = 0; b < pl.c && !GF(_is_inf)(&acc); b++)
                GF(_dbl)(&acc, &acc);
            for (unsigned kk = 0; kk < pl.nchunks; kk++)
                GF(_add)(&acc, &acc, &job.part[j * pl.nchunks + kk]);
        }
        *out = acc;
    }
    free(job.part);
    return rc;
}

int GF(_msm_digits)(MSM_P *out, const MSM_A *bases, const qr_msm_digits_t *d, size_t lo, size_t hi,
                    unsigned threads)
{
    if (!d || lo > hi || hi > d->n)
        return -1;
    return SF(_msm_run)(out, bases, d, lo, hi, threads);
}

int GF(_msm_c)(MSM_P *out, const MSM_A *bases, const qr_msm_scalar_t *k, size_t n, unsigned threads,
               unsigned c)
{
    if (c == 1 || c > S_MAX_C)
        return -1;
    if (n == 0) {
        GF(_set_inf)(out);
        return 0;
    }
    qr_msm_digits_t *d = qr_msm_digits_new(k, n, c, threads);
    if (!d)
        return -1;
    int rc = SF(_msm_run)(out, bases, d, 0, n, threads);
    qr_msm_digits_destroy(&d);
    return rc;
}

int GF(_msm)(MSM_P *out, const MSM_A *bases, const qr_msm_scalar_t *k, size_t n,
             unsigned threads)
{
    return GF(_msm_c)(out, bases, k, n, threads, 0);
}

int GF(_msm_fr)(MSM_P *out, const MSM_A *bases, const qr_fr_t *k, size_t n, unsigned threads)
{
    qr_msm_scalar_t *s = malloc((n ? n : 1) * sizeof *s);
    if (!s)
        return -1;
    qr_msm_scalars_from_fr(s, k, n, threads);
    int rc = GF(_msm)(out, bases, s, n, threads);
    free(s);
    return rc;
}

/* ---- batch fixed-base multiplication ---- */

/* out[i] = affine(in[i]) with one inversion (Montgomery's trick); scratch
 * holds n field elements */
static void SF(_batch_to_affine)(MSM_A *out, const MSM_P *in, size_t n, MSM_FT *scratch)
{
    MSM_FT acc, inv, zi, zi2;
    FF(_one)(&acc);
    for (size_t i = 0; i < n; i++) {
        scratch[i] = acc;
        if (!GF(_is_inf)(&in[i]))
            FF(_mul)(&acc, &acc, &in[i].z);
    }
    FF(_inv)(&inv, &acc);
    for (size_t i = n; i-- > 0;) {
        if (GF(_is_inf)(&in[i])) {
            FF(_zero)(&out[i].x);
            FF(_zero)(&out[i].y);
            continue;
        }
        FF(_mul)(&zi, &inv, &scratch[i]);
        FF(_mul)(&inv, &inv, &in[i].z);
        FF(_sqr)(&zi2, &zi);
        MSM_FT x, y;
        FF(_mul)(&x, &in[i].x, &zi2);
        FF(_mul)(&zi2, &zi2, &zi);
        FF(_mul)(&y, &in[i].y, &zi2);
        out[i].x = x;
        out[i].y = y;
    }
}

typedef struct {
    const MSM_A *table; /* [window][2^(c-1)]: m 2^(c j) base, m = 1..2^(c-1) */
    const qr_fr_t *k;
    MSM_A *out;
    size_t n, chunk;
    unsigned c, nwin;
    atomic_uint next, done;
} SF(_fixed_job_t);

static void *SF(_fixed_worker)(void *arg)
{
    SF(_fixed_job_t) *job = arg;
    size_t chunk = job->chunk, nt = (job->n + chunk - 1) / chunk;
    SF(_acc_t) acc;
    qr_msm_scalar_t *ks = malloc(chunk * sizeof *ks);
    int16_t *dg = malloc(chunk * job->nwin * sizeof *dg);
    if (!ks || !dg || SF(_acc_init)(&acc, chunk, chunk) != 0) {
        free(ks);
        free(dg);
        return NULL;
    }
    size_t half = (size_t)1 << (job->c - 1);
    for (;;) {
        size_t t = atomic_fetch_add(&job->next, 1);
        if (t >= nt)
            break;
        size_t lo = t * chunk, m = lo + chunk < job->n ? chunk : job->n - lo;
        qr_msm_scalars_from_fr(ks, job->k + lo, m, 1);
        s_recode(dg, ks, m, 0, m, job->c, job->nwin);
        /* window by window with a flush between: each output is queued at
         * most once per batch, so nothing spills into the Jacobian twins */
        for (unsigned j = 0; j < job->nwin; j++) {
            const MSM_A *tab = job->table + (size_t)j * half;
            for (size_t i = 0; i < m; i++) {
                int d = dg[(size_t)j * m + i];
                if (d > 0) {
                    SF(_acc_add)(&acc, i, &tab[d - 1]);
                } else if (d < 0) {
                    MSM_A q;
                    q.x = tab[-d - 1].x;
                    FF(_neg)(&q.y, &tab[-d - 1].y);
                    SF(_acc_add)(&acc, i, &q);
                }
            }
            SF(_acc_finish)(&acc);
        }
        for (size_t i = 0; i < m; i++) {
            MSM_A *o = &job->out[lo + i];
            if (acc.st[i] & S_JAC) { /* not reached (see above); kept correct anyway */
                if (acc.st[i] & S_AFF)
                    GF(_add_mixed)(&acc.jac[i], &acc.jac[i], &acc.aff[i]);
                GF(_to_affine)(o, &acc.jac[i]);
            } else if (acc.st[i] & S_AFF) {
                *o = acc.aff[i];
            } else {
                FF(_zero)(&o->x);
                FF(_zero)(&o->y);
            }
        }
        memset(acc.st, 0, chunk);
        atomic_fetch_add(&job->done, 1);
    }
    SF(_acc_free)(&acc);
    free(ks);
    free(dg);
    return NULL;
}

int GF(_mul_fixed_batch)(MSM_A *out, const MSM_A *base, const qr_fr_t *k, size_t n,
                         unsigned threads)
{
    if (n == 0)
        return 0;
    threads = qr_msm_threads(threads);
    unsigned c = n >= 4096 ? 12 : 8, nwin = (255 + c - 1) / c;
    size_t half = (size_t)1 << (c - 1), nt = (size_t)nwin * half;
    MSM_P *jt = malloc(nt * sizeof *jt);
    MSM_A *table = malloc(nt * sizeof *table);
    MSM_FT *scratch = malloc(nt * sizeof *scratch);
    if (!jt || !table || !scratch) {
        free(jt);
        free(table);
        free(scratch);
        return -1;
    }
    MSM_P w; /* 2^(c j) base */
    GF(_from_affine)(&w, base);
    for (unsigned j = 0; j < nwin; j++) {
        MSM_P *row = jt + (size_t)j * half;
        row[0] = w;
        for (size_t m = 1; m < half; m++)
            GF(_add)(&row[m], &row[m - 1], &w);
        /* w <- 2^c w: row[half-1] = 2^(c-1) w, doubled */
        GF(_dbl)(&w, &row[half - 1]);
    }
    SF(_batch_to_affine)(table, jt, nt, scratch);
    free(jt);
    free(scratch);
    SF(_fixed_job_t) job;
    memset(&job, 0, sizeof job);
    job.table = table;
    job.k = k;
    job.out = out;
    job.n = n;
    job.c = c;
    job.nwin = nwin;
    job.chunk = n < 4096 ? n : 4096;
    atomic_init(&job.next, 0);
    atomic_init(&job.done, 0);
    size_t ntask = (n + job.chunk - 1) / job.chunk;
    s_run(threads < ntask ? threads : (unsigned)ntask, SF(_fixed_worker), &job);
    free(table);
    return atomic_load(&job.done) == ntask ? 0 : -1;
}

#undef GF
#undef FF
#undef SF
#undef MSM_CAT
#undef MSM_CAT_
