/* Job/worker matching; see scheduler.h for the design and its invariants. */
#include "scheduler.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

static const char *const s_kinds[] = {"ai.gemm", "ai.infer", "zk.groth16"};
#define S_NKINDS (sizeof s_kinds / sizeof s_kinds[0])

typedef struct {
    void **items; /* qr_sjob_t* or qr_sworker_t* */
    size_t n, cap;
} s_heap_t;

struct qr_sched {
    s_heap_t jobs[QR_SCHED_CLASSES];    /* queued jobs per class */
    s_heap_t workers[QR_SCHED_CLASSES]; /* workers with spare capacity per class */
    qr_sworker_t **all;                 /* every registered worker */
    size_t nall, capall;
    qr_sjob_t **parked; /* jobs no registered worker can take */
    size_t nparked, capparked;
    qr_hmap_t *holders; /* affinity key -> s_holders_t */
    bool no_affinity;   /* benchmarks: ignore holdings */
    uint64_t affinity_hits;
    int64_t affinity_wait; /* ms a job may wait for a busy holder */
    int64_t now;           /* caller's clock, ms */
    int64_t wake;          /* earliest end of a wait seen by the last next(); -1 none */
};

/* Workers that hold one key (few per key: a linear array). */
typedef struct {
    qr_sworker_t **w;
    size_t n, cap;
} s_holders_t;

int qr_sched_kind(const char *name)
{
    for (size_t i = 0; name && i < S_NKINDS; i++)
        if (strcmp(name, s_kinds[i]) == 0)
            return (int)i;
    return -1;
}

const char *qr_sched_kind_name(int i)
{
    return i >= 0 && (size_t)i < S_NKINDS ? s_kinds[i] : NULL;
}

static int s_class(int kind, bool gpu)
{
    return kind * 2 + (gpu ? 1 : 0);
}

/* ---- ordering ---- */

static bool s_job_before(const qr_sjob_t *a, const qr_sjob_t *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->seq < b->seq;
}

static bool s_worker_before(const qr_sworker_t *a, const qr_sworker_t *b)
{
    if (a->ask != b->ask)
        return a->ask < b->ask;
    if (a->reputation != b->reputation)
        return a->reputation > b->reputation;
    /* lower load first: busy/capacity compared without division */
    uint64_t la = (uint64_t)a->busy * b->capacity, lb = (uint64_t)b->busy * a->capacity;
    if (la != lb)
        return la < lb;
    return a->id < b->id;
}

/* ---- a binary heap that tells each item its position ---- */

typedef struct {
    bool (*before)(const void *, const void *);
    void (*setpos)(void *, int cls, int32_t pos);
} s_ops_t;

static bool s_jb(const void *a, const void *b) { return s_job_before(a, b); }
static bool s_wb(const void *a, const void *b) { return s_worker_before(a, b); }
static void s_jpos(void *x, int cls, int32_t pos)
{
    (void)cls;
    ((qr_sjob_t *)x)->heap_idx = pos;
}
static void s_wpos(void *x, int cls, int32_t pos) { ((qr_sworker_t *)x)->heap_idx[cls] = pos; }

static const s_ops_t s_jobops = {s_jb, s_jpos};
static const s_ops_t s_wops = {s_wb, s_wpos};

static void s_place(s_heap_t *h, const s_ops_t *ops, int cls, size_t i, void *x)
{
    h->items[i] = x;
    ops->setpos(x, cls, (int32_t)i);
}

static void s_up(s_heap_t *h, const s_ops_t *ops, int cls, size_t i)
{
    void *x = h->items[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ops->before(x, h->items[p]))
            break;
        s_place(h, ops, cls, i, h->items[p]);
        i = p;
    }
    s_place(h, ops, cls, i, x);
}

static void s_down(s_heap_t *h, const s_ops_t *ops, int cls, size_t i)
{
    void *x = h->items[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        void *bx = x;
        if (l < h->n && ops->before(h->items[l], bx)) {
            best = l;
            bx = h->items[l];
        }
        if (r < h->n && ops->before(h->items[r], bx))
            best = r;
        if (best == i)
            break;
        s_place(h, ops, cls, i, h->items[best]);
        i = best;
    }
    s_place(h, ops, cls, i, x);
}

static int s_push(s_heap_t *h, const s_ops_t *ops, int cls, void *x)
{
    if (h->n == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 16;
        void **ni = realloc(h->items, ncap * sizeof *ni);
        if (!ni)
            return -1;
        h->items = ni;
        h->cap = ncap;
    }
    h->items[h->n++] = x;
    s_up(h, ops, cls, h->n - 1);
    return 0;
}

/* Restores heap order for the item at i after its key changed either way. */
static void s_fix(s_heap_t *h, const s_ops_t *ops, int cls, size_t i)
{
    void *x = h->items[i];
    s_up(h, ops, cls, i);
    if (h->items[i] == x) /* it did not move up, so it may need to go down */
        s_down(h, ops, cls, i);
}

static void s_remove_at(s_heap_t *h, const s_ops_t *ops, int cls, size_t i)
{
    void *gone = h->items[i];
    h->n--;
    if (i != h->n) {
        h->items[i] = h->items[h->n];
        ops->setpos(h->items[i], cls, (int32_t)i);
        s_fix(h, ops, cls, i);
    }
    ops->setpos(gone, cls, -1);
}

/* ---- workers ---- */

static bool s_serves(const qr_sworker_t *w, int cls)
{
    int kind = cls / 2;
    bool gpu = cls & 1;
    return (w->kinds & (1u << kind)) && (!gpu || w->has_gpu);
}

static void s_worker_sync(qr_sched_t *self, qr_sworker_t *w)
{
    for (int c = 0; c < QR_SCHED_CLASSES; c++) {
        bool room = w->busy < w->capacity && (w->busy < w->slots || w->units < w->max_units);
        bool want = w->registered && s_serves(w, c) && room;
        int32_t pos = w->heap_idx[c];
        if (want && pos < 0)
            s_push(&self->workers[c], &s_wops, c, w); /* OOM leaves it out: it just gets no work */
        else if (!want && pos >= 0)
            s_remove_at(&self->workers[c], &s_wops, c, (size_t)pos);
        else if (want)
            s_fix(&self->workers[c], &s_wops, c, (size_t)pos);
    }
}

qr_sched_t *qr_sched_new(void)
{
    qr_sched_t *self = calloc(1, sizeof(qr_sched_t));
    if (self && !(self->holders = qr_hmap_new())) {
        free(self);
        return NULL;
    }
    if (self)
        self->wake = -1;
    return self;
}

static void s_holders_free(void *arg, void *v)
{
    (void)arg;
    s_holders_t *h = v;
    free(h->w);
    free(h);
}

void qr_sched_destroy(qr_sched_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_sched_t *self = *self_p;
    for (int c = 0; c < QR_SCHED_CLASSES; c++) {
        free(self->jobs[c].items);
        free(self->workers[c].items);
    }
    free(self->all);
    free(self->parked);
    qr_hmap_each(self->holders, s_holders_free, NULL);
    qr_hmap_destroy(&self->holders);
    free(self);
    *self_p = NULL;
}

int qr_sched_add_worker(qr_sched_t *self, qr_sworker_t *w)
{
    assert(!w->registered);
    if (self->nall == self->capall) {
        size_t ncap = self->capall ? self->capall * 2 : 16;
        qr_sworker_t **na = realloc(self->all, ncap * sizeof *na);
        if (!na)
            return -1;
        self->all = na;
        self->capall = ncap;
    }
    self->all[self->nall++] = w;
    for (int c = 0; c < QR_SCHED_CLASSES; c++)
        w->heap_idx[c] = -1;
    w->registered = true;
    s_worker_sync(self, w);
    return 0;
}

void qr_sched_remove_worker(qr_sched_t *self, qr_sworker_t *w)
{
    if (!w->registered)
        return;
    w->registered = false;
    s_worker_sync(self, w);
    for (size_t i = 0; i < self->nall; i++)
        if (self->all[i] == w) {
            self->all[i] = self->all[--self->nall];
            break;
        }
}

void qr_sched_update_worker(qr_sched_t *self, qr_sworker_t *w)
{
    s_worker_sync(self, w);
}

/* ---- jobs ---- */

int qr_sched_enqueue(qr_sched_t *self, qr_sjob_t *j)
{
    assert(j->kind >= 0 && j->kind < QR_SCHED_KINDS);
    j->parked = false;
    j->heap_idx = -1;
    j->affinity_until = j->affinity ? self->now + self->affinity_wait : 0;
    int c = s_class(j->kind, j->need_gpu);
    return s_push(&self->jobs[c], &s_jobops, c, j);
}

void qr_sched_dequeue(qr_sched_t *self, qr_sjob_t *j)
{
    if (j->heap_idx >= 0) {
        int c = s_class(j->kind, j->need_gpu);
        s_remove_at(&self->jobs[c], &s_jobops, c, (size_t)j->heap_idx);
    } else if (j->parked) {
        for (size_t i = 0; i < self->nparked; i++)
            if (self->parked[i] == j) {
                self->parked[i] = self->parked[--self->nparked];
                break;
            }
        j->parked = false;
    }
}

void qr_sched_unpark(qr_sched_t *self)
{
    size_t n = self->nparked;
    self->nparked = 0;
    for (size_t i = 0; i < n; i++)
        qr_sched_enqueue(self, self->parked[i]);
}

void qr_sched_avoid(qr_sjob_t *j, uint64_t worker_id)
{
    j->avoid[j->navoid % QR_SCHED_AVOID] = worker_id;
    j->navoid++;
}

static bool s_fits(const qr_sworker_t *w, const qr_sjob_t *j)
{
    uint32_t n = j->navoid < QR_SCHED_AVOID ? j->navoid : QR_SCHED_AVOID;
    for (uint32_t i = 0; i < n; i++)
        if (j->avoid[i] == w->id)
            return false;
    if (j->units && w->ask > j->max_price / j->units)
        return false; /* ask * units > max_price, without overflow */
    uint64_t mem = j->need_gpu ? w->gpu_mem_mb : w->mem_mb;
    return mem >= j->min_mem_mb;
}

/* True when some registered worker, busy or not, could ever run j. */
static bool s_anyone_fits(const qr_sched_t *self, const qr_sjob_t *j, int cls)
{
    for (size_t i = 0; i < self->nall; i++)
        if (self->all[i]->capacity && s_serves(self->all[i], cls) && s_fits(self->all[i], j))
            return true;
    return false;
}

int qr_sched_hold(qr_sched_t *self, qr_sworker_t *w, uint64_t key)
{
    if (!key)
        return 0;
    s_holders_t *h = qr_hmap_get_u64(self->holders, key);
    if (!h) {
        if (!(h = calloc(1, sizeof *h)) || qr_hmap_put_u64(self->holders, key, h) < 0) {
            free(h);
            return -1;
        }
    }
    for (size_t i = 0; i < h->n; i++)
        if (h->w[i] == w)
            return 0;
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 4;
        qr_sworker_t **nw = realloc(h->w, nc * sizeof *nw);
        if (!nw)
            return -1;
        h->w = nw;
        h->cap = nc;
    }
    h->w[h->n++] = w;
    return 0;
}

void qr_sched_unhold(qr_sched_t *self, qr_sworker_t *w, uint64_t key)
{
    s_holders_t *h = key ? qr_hmap_get_u64(self->holders, key) : NULL;
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        if (h->w[i] == w) {
            h->w[i] = h->w[--h->n];
            break;
        }
    if (!h->n) {
        qr_hmap_del_u64(self->holders, key);
        s_holders_free(NULL, h);
    }
}

static void s_unhold_one(void *arg, void *v)
{
    s_holders_t *h = v;
    for (size_t i = 0; i < h->n; i++)
        if (h->w[i] == arg) {
            h->w[i] = h->w[--h->n];
            break;
        }
}

void qr_sched_unhold_all(qr_sched_t *self, qr_sworker_t *w)
{
    /* qr_hmap_each must not change the map: strike the worker from every
     * list in place; an empty list stays until its key is held again */
    qr_hmap_each(self->holders, s_unhold_one, w);
}

void qr_sched_set_affinity(qr_sched_t *self, bool on)
{
    self->no_affinity = !on;
}

void qr_sched_set_affinity_wait(qr_sched_t *self, int64_t ms)
{
    self->affinity_wait = ms > 0 ? ms : 0;
}

void qr_sched_set_now(qr_sched_t *self, int64_t now_ms)
{
    self->now = now_ms;
}

int64_t qr_sched_wait_ms(const qr_sched_t *self)
{
    if (self->wake < 0)
        return -1;
    return self->wake > self->now ? self->wake - self->now : 0;
}

/* True when some registered holder of j's key could take j once it has
 * room (a reason for j to wait). */
static bool s_holder_busy(qr_sched_t *self, const qr_sjob_t *j, int cls)
{
    s_holders_t *h = qr_hmap_get_u64(self->holders, j->affinity);
    for (size_t i = 0; h && i < h->n; i++)
        if (h->w[i]->registered && h->w[i]->capacity && s_serves(h->w[i], cls) &&
            s_fits(h->w[i], j))
            return true;
    return false;
}

uint64_t qr_sched_affinity_hits(const qr_sched_t *self)
{
    return self->affinity_hits;
}

/* The best holder of j's key that has room in class cls and fits j. */
static qr_sworker_t *s_holder(qr_sched_t *self, const qr_sjob_t *j, int cls)
{
    if (!j->affinity || self->no_affinity)
        return NULL;
    s_holders_t *h = qr_hmap_get_u64(self->holders, j->affinity);
    qr_sworker_t *best = NULL;
    for (size_t i = 0; h && i < h->n; i++) {
        qr_sworker_t *c = h->w[i];
        if (c->registered && c->heap_idx[cls] >= 0 && s_fits(c, j) &&
            (!best || s_worker_before(c, best)))
            best = c;
    }
    return best;
}

static int s_park(qr_sched_t *self, qr_sjob_t *j)
{
    if (self->nparked == self->capparked) {
        size_t ncap = self->capparked ? self->capparked * 2 : 16;
        qr_sjob_t **np = realloc(self->parked, ncap * sizeof *np);
        if (!np)
            return -1;
        self->parked = np;
        self->capparked = ncap;
    }
    self->parked[self->nparked++] = j;
    j->parked = true;
    return 0;
}

bool qr_sched_next(qr_sched_t *self, qr_sjob_t **job, qr_sworker_t **worker)
{
    uint32_t blocked = 0; /* classes whose head job waits for a busy worker */
    self->wake = -1;
    for (;;) {
        /* the most urgent head job among classes that have a free worker */
        int best = -1;
        for (int c = 0; c < QR_SCHED_CLASSES; c++) {
            if (!self->jobs[c].n || !self->workers[c].n || (blocked & (1u << c)))
                continue;
            if (best < 0 || s_job_before(self->jobs[c].items[0], self->jobs[best].items[0]))
                best = c;
        }
        if (best < 0)
            return false;
        s_heap_t *jh = &self->jobs[best], *wh = &self->workers[best];
        qr_sjob_t *j = jh->items[0];
        qr_sworker_t *w = s_holder(self, j, best);
        if (w)
            self->affinity_hits++;
        else if (j->affinity && !self->no_affinity && j->affinity_until > self->now &&
                 s_holder_busy(self, j, best)) {
            /* a holder will have room soon: worth more than a fetch now */
            blocked |= 1u << best;
            if (self->wake < 0 || j->affinity_until < self->wake)
                self->wake = j->affinity_until;
            continue;
        } else
            w = wh->items[0];
        if (!s_fits(w, j)) {
            /* rare path: look past the cheapest worker for one that fits */
            w = NULL;
            for (size_t i = 0; i < wh->n; i++) {
                qr_sworker_t *c = wh->items[i];
                if (s_fits(c, j) && (!w || s_worker_before(c, w)))
                    w = c;
            }
        }
        if (!w) {
            if (s_anyone_fits(self, j, best)) {
                blocked |= 1u << best; /* a busy worker will take it when it frees up */
                continue;
            }
            s_remove_at(jh, &s_jobops, best, 0);
            if (s_park(self, j) < 0) {
                qr_sched_enqueue(self, j); /* cannot park (OOM): keep it queued */
                blocked |= 1u << best;
            }
            continue;
        }
        s_remove_at(jh, &s_jobops, best, 0);
        w->busy++;
        w->units += j->units;
        s_worker_sync(self, w);
        *job = j;
        *worker = w;
        return true;
    }
}

size_t qr_sched_queued(const qr_sched_t *self, int kind)
{
    if (kind < 0 || kind >= QR_SCHED_KINDS)
        return 0;
    return self->jobs[s_class(kind, false)].n + self->jobs[s_class(kind, true)].n;
}

size_t qr_sched_parked(const qr_sched_t *self)
{
    return self->nparked;
}
