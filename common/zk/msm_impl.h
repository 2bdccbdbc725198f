/* The per-group half of msm.c, included once for G1 and once for G2 with
 * these defined (a template by hand: one text, so the two groups cannot
 * drift apart, and compiler errors point at real lines, which a macro body
 * would not give):
 *
 *   MSM_G   group prefix (qr_g1)      MSM_F   field prefix (qr_fp)
 *   MSM_P   Jacobian point type       MSM_FT  field type
 *   MSM_A   affine point type         MSM_S   static name prefix (s_g1)
 *   MSM_MUL, MSM_SQR  field multiplication, squaring for the batched
 *           additions
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
 * batch cannot take a second point until the flush, so that point goes
 * into jac[b], a Jacobian twin, by a mixed addition: this keeps the batch
 * full however the digits collide (circuit witnesses are full of 0s and 1s,
 * which all land in bucket 0 of window 0) at the price of a slower add for
 * the colliding few.  cap 0 turns batching off: everything goes to jac. */
typedef struct {
    MSM_A *aff;       /* nb affine buckets (valid where st & S_AFF) */
    MSM_P *jac;       /* nb Jacobian twins (valid where st & S_JAC) */
    uint8_t *st;      /* per bucket: S_AFF | S_JAC */
    uint32_t *stamp;  /* per bucket: the batch it is queued in */
    uint32_t batch;   /* current batch id, never 0 */
    size_t nb, cap, len;
    uint32_t *qb;     /* queued: bucket */
    MSM_A *qp;        /* queued: point to add (sign applied) */
    uint8_t *qdbl;    /* queued: doubling? */
    MSM_FT *den, *pre;
} SF(_acc_t);

static void SF(_acc_free)(SF(_acc_t) * a)
{
    free(a->aff);
    free(a->jac);
    free(a->st);
    free(a->stamp);
    free(a->qb);
    free(a->qp);
    free(a->qdbl);
    free(a->den);
    free(a->pre);
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
        a->aff = malloc(nb * sizeof *a->aff);
        a->stamp = calloc(nb, sizeof *a->stamp);
        a->qb = malloc(cap * sizeof *a->qb);
        a->qp = malloc(cap * sizeof *a->qp);
        a->qdbl = malloc(cap);
        a->den = malloc(cap * sizeof *a->den);
        a->pre = malloc(cap * sizeof *a->pre);
        ok = ok && a->aff && a->stamp && a->qb && a->qp && a->qdbl && a->den && a->pre;
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

/* Runs the queued additions: one inversion for the batch (Montgomery's
 * trick), then per entry lambda, x3 = lambda^2 - x1 - x2,
 * y3 = lambda (x1 - x3) - y1; a doubling has x1 = x2, so the same lines. */
static void SF(_acc_flush)(SF(_acc_t) * a)
{
    size_t n = a->len;
    if (n == 0)
        return;
    a->pre[0] = a->den[0];
    for (size_t i = 1; i < n; i++)
        MSM_MUL(&a->pre[i], &a->pre[i - 1], &a->den[i]);
    MSM_FT inv, dinv, lam, t, x3;
    FF(_inv)(&inv, &a->pre[n - 1]);
    for (size_t i = n; i-- > 0;) {
        if (i > 0) {
            MSM_MUL(&dinv, &inv, &a->pre[i - 1]);
            MSM_MUL(&inv, &inv, &a->den[i]);
        } else {
            dinv = inv;
        }
        MSM_A *p = &a->aff[a->qb[i]];
        const MSM_A *q = &a->qp[i];
        if (a->qdbl[i]) { /* lambda = 3 x^2 / 2 y */
            MSM_SQR(&t, &p->x);
            FF(_dbl)(&lam, &t);
            FF(_add)(&t, &lam, &t);
        } else { /* lambda = (y2 - y1) / (x2 - x1) */
            FF(_sub)(&t, &q->y, &p->y);
        }
        MSM_MUL(&lam, &t, &dinv);
        MSM_SQR(&x3, &lam);
        FF(_sub)(&x3, &x3, &p->x);
        FF(_sub)(&x3, &x3, &q->x);
        FF(_sub)(&t, &p->x, &x3);
        MSM_MUL(&t, &lam, &t);
        FF(_sub)(&p->y, &t, &p->y);
        p->x = x3;
    }
    a->len = 0;
    if (++a->batch == 0) { /* wrapped after 2^32 flushes: old stamps could match */
        memset(a->stamp, 0, a->nb * sizeof *a->stamp);
        a->batch = 1;
    }
}

/* bucket b += q (q finite) */
static inline void SF(_acc_add)(SF(_acc_t) * a, size_t b, const MSM_A *q)
{
    if (a->cap == 0) {
        SF(_acc_add_jac)(a, b, q);
        return;
    }
    if (!(a->st[b] & S_AFF)) {
        a->aff[b] = *q;
        a->st[b] |= S_AFF;
        return;
    }
    if (a->stamp[b] == a->batch) {
        SF(_acc_add_jac)(a, b, q);
        return;
    }
    const MSM_A *p = &a->aff[b];
    size_t i = a->len;
    if (FF(_eq)(&p->x, &q->x)) {
        if (!FF(_eq)(&p->y, &q->y)) { /* p + (-p): the bucket empties */
            a->st[b] &= (uint8_t)~S_AFF;
            return;
        }
        FF(_dbl)(&a->den[i], &p->y); /* y != 0: no point of order 2 */
        a->qdbl[i] = 1;
    } else {
        FF(_sub)(&a->den[i], &q->x, &p->x);
        a->qdbl[i] = 0;
    }
    a->qb[i] = (uint32_t)b;
    a->qp[i] = *q;
    a->stamp[b] = a->batch;
    if (++a->len == a->cap)
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

/* ---- MSM ---- */

typedef struct {
    const MSM_A *bases;
    const int16_t *digits; /* [window][n] */
    size_t n;
    unsigned c, nwin, nchunks;
    size_t nb, cap;
    MSM_P *part; /* [window * nchunks + chunk] */
    atomic_uint next, done;
} SF(_msm_job_t);

static void *SF(_msm_worker)(void *arg)
{
    SF(_msm_job_t) *job = arg;
    SF(_acc_t) acc;
    if (SF(_acc_init)(&acc, job->nb, job->cap) != 0)
        return NULL; /* the others (or the caller's check) pick up the work */
    unsigned ntask = job->nwin * job->nchunks;
    size_t per = (job->n + job->nchunks - 1) / job->nchunks;
    for (;;) {
        unsigned t = atomic_fetch_add(&job->next, 1);
        if (t >= ntask)
            break;
        unsigned j = t / job->nchunks, k = t % job->nchunks;
        size_t lo = (size_t)k * per, hi = lo + per < job->n ? lo + per : job->n;
        const int16_t *dg = job->digits + (size_t)j * job->n;
        for (size_t i = lo; i < hi; i++) {
            int d = dg[i];
            if (d == 0)
                continue;
            const MSM_A *p = &job->bases[i];
            if (GF(_affine_is_inf)(p))
                continue;
            if (d > 0) {
                SF(_acc_add)(&acc, (size_t)d - 1, p);
            } else {
                MSM_A q;
                q.x = p->x;
                FF(_neg)(&q.y, &p->y);
                SF(_acc_add)(&acc, (size_t)(-d) - 1, &q);
            }
        }
        SF(_acc_flush)(&acc);
        SF(_acc_reduce)(&acc, &job->part[t]);
        atomic_fetch_add(&job->done, 1);
    }
    SF(_acc_free)(&acc);
    return NULL;
}

int GF(_msm_c)(MSM_P *out, const MSM_A *bases, const qr_msm_scalar_t *k, size_t n,
               unsigned threads, unsigned c)
{
    if (c == 1 || c > S_MAX_C)
        return -1;
    if (n == 0) {
        GF(_set_inf)(out);
        return 0;
    }
    threads = qr_msm_threads(threads);
    s_plan_t pl = s_plan(n, MSM_IS_G2, threads, c);
    SF(_msm_job_t) job;
    memset(&job, 0, sizeof job);
    job.bases = bases;
    job.n = n;
    job.c = pl.c;
    job.nwin = pl.nwin;
    job.nchunks = pl.nchunks;
    job.nb = (size_t)1 << (pl.c - 1);
    job.cap = pl.cap;
    int16_t *digits = malloc((size_t)pl.nwin * n * sizeof *digits);
    job.part = malloc((size_t)pl.nwin * pl.nchunks * sizeof *job.part);
    if (!digits || !job.part) {
        free(digits);
        free(job.part);
        return -1;
    }
    s_recode(digits, k, n, pl.c, pl.nwin, threads);
    job.digits = digits;
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
    free(digits);
    free(job.part);
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
        s_recode(dg, ks, m, job->c, job->nwin, 1);
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
            SF(_acc_flush)(&acc);
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
