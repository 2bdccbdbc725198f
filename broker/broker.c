/* quarry-broker's loop; see broker.h for the design notes and invariants. */
#include "broker.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "err.h"
#include "gemm.h"
#include "hmap.h"
#include "httpd.h"
#include "groth16.h"
#include "jobstate.h"
#include "keys.h"
#include "model.h"
#include "ring.h"
#include "safetensors.h"
#include "scheduler.h"
#include "store.h"
#include "util.h"
#include "verify.h"
#include "wire.h"
#include "wtns.h"
#include "zkey.h"

#define S_NAME_MAX 127
#define S_IDENT_MAX 255
#define S_MINT "system:mint"
#define S_FEES "system:fees"

/* ---- in-memory records ---- */

typedef struct {
    uint64_t id;        /* accounts.id */
    char name[128];     /* unique */
    int kind;           /* qr_acct_kind_t */
    int64_t available;  /* base units */
    int64_t reserved;   /* base units */
    uint64_t live;      /* its jobs not yet in a final state (queue quota) */
    double tokens;      /* submit rate limit: token bucket */
    int64_t refill_ms;  /* monotonic ms of the last refill */
    bool has_key;       /* a CURVE key is bound to it */
} s_account_t;

/* Key roles (curve_keys.role). */
enum { S_ROLE_CLIENT = 0, S_ROLE_OPERATOR, S_ROLE_ADMIN };
static const char *const s_roles[] = {"client", "operator", "admin"};

/* A CURVE public key bound to an account. */
typedef struct {
    char key[QR_KEY_Z85_LEN + 1]; /* Z85 */
    s_account_t *acct;            /* the account it acts as */
    int role;                     /* S_ROLE_* */
} s_key_t;

typedef struct {
    uint8_t ident[S_IDENT_MAX]; /* ROUTER identity of the watching client */
    uint8_t idlen;
    uint64_t req_id; /* the WATCH request's id, echoed in every EVENT */
    bool final_only; /* tell only the final state */
} s_watch_t;

typedef struct s_worker s_worker_t;

/* Inputs and results, stored once however many jobs carry the same bytes. */
typedef struct {
    uint64_t id;    /* blobs.id */
    uint64_t hash;  /* content hash (s_hash), with len the dedupe key */
    uint8_t *data;  /* owned */
    size_t len;
    uint32_t refs;  /* jobs holding it as input, cached results holding it */
    bool indexed;   /* findable by content (false after a hash collision) */
    qr_gemm_probe_t *probe; /* as ai.gemm input: Freivalds vectors shared by its results */
    uint32_t probe_uses;    /* checks made with it */
    int64_t probe_ms;       /* monotonic ms it was drawn */
} s_blob_t;

typedef struct {
    qr_db_job_t row;        /* what PostgreSQL holds; row.input borrows input->data */
    s_blob_t *input;        /* input blob, held until the job is final */
    qr_sjob_t sj;           /* scheduler node */
    s_worker_t *worker;     /* holder while assigned or running */
    int64_t deadline_mono;  /* monotonic ms; 0 = none */
    uint32_t progress;      /* per mille, from PROGRESS */
    s_watch_t *watches;     /* clients to tell of each change */
    size_t nwatch, capwatch;
    s_blob_t *result;       /* verified C until the turn's end, then the cache holds it */
    bool dirty;             /* changed this turn: tell watchers after commit */
    int64_t queued_us;      /* monotonic us when it last entered the queue */
    bool retired;           /* final and queued for removal from memory */
} s_job_t;

struct s_worker {
    qr_sworker_t sw;            /* scheduler node */
    uint64_t id;                /* workers.id */
    char name[128];             /* unique */
    s_account_t *op;            /* operator paid for its work */
    uint8_t ident[S_IDENT_MAX]; /* current ROUTER identity */
    size_t idlen;
    bool online;
    int64_t expiry;             /* monotonic ms when it counts as lost */
    int64_t hb_at;              /* monotonic ms of the next heartbeat we send */
    s_job_t **jobs;             /* jobs it holds */
    size_t njobs, capjobs;
    uint32_t slots;
    uint32_t cpu_cores;
    uint32_t gpus;
    uint64_t jobs_done;
    int64_t earned; /* paid to its operator for its work (net of fees) */
    char key[QR_KEY_Z85_LEN + 1]; /* CURVE key it registered with ("" insecure) */
    /* Mirror of the worker's input cache (same FIFO, budget and byte counts
     * as worker/worker.c), so ASSIGN can name an input instead of sending it. */
    char (*holds)[QR_SHA_HEX + 1]; /* artifacts in its disk cache (HOLDINGS) */
    size_t nholds, capholds;
    qr_hmap_t *has;          /* blob id -> its size + 1, while the worker holds it */
    qr_ring_t has_order;     /* those ids (as pointers), oldest first */
    size_t has_bytes, has_budget; /* budget 0: the worker keeps nothing */
    bool dirty; /* reputation or jobs_done changed: write at commit */
};

typedef struct {
    uint8_t ident[S_IDENT_MAX];
    size_t idlen;
    s_account_t *acct; /* bound by HELLO */
    int64_t seen;      /* monotonic ms of its last request */
    bool admin;        /* may run admin commands (always in --insecure mode) */
} s_client_t;

/* How long an idle client session lasts before it must say HELLO again. */
#define S_SESSION_IDLE_MS (15 * 60 * 1000)

/* A reply or notice held back until the turn's commit succeeds. */
typedef struct {
    void *sock;
    const char *proto;
    uint8_t ident[S_IDENT_MAX];
    size_t idlen;
    uint8_t cmd;
    uint8_t *body; /* packed protobuf, owned */
    size_t blen;
    qr_payload_t pay[2]; /* borrowed from jobs, or `owned` */
    int npay;
    uint8_t *owned; /* freed after sending */
    s_blob_t *hold; /* blob the payload borrows from, referenced until sent */
    uint64_t req_id; /* client request it answers; 0 = none */
} s_out_t;

typedef struct {
    int64_t at;  /* monotonic ms */
    uint64_t id; /* job */
} s_deadline_t;

/* A Prometheus histogram in seconds with fixed buckets. */
#define S_NBUCKETS 14
static const double s_buckets[S_NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};
typedef struct {
    uint64_t count[S_NBUCKETS]; /* observations <= bucket (not cumulative here) */
    uint64_t n;                 /* all observations */
    double sum;                 /* their total, seconds */
} s_hist_t;

static void s_observe(s_hist_t *h, double seconds)
{
    for (int i = 0; i < S_NBUCKETS; i++)
        if (seconds <= s_buckets[i]) {
            h->count[i]++;
            break;
        }
    h->n++;
    h->sum += seconds;
}

/* Counters since start, exported on /metrics. */
typedef struct {
    uint64_t ended[QR_JOB_STATE_COUNT_]; /* jobs that reached each final state */
    uint64_t submitted;                  /* jobs accepted */
    uint64_t refused[QR_ERR_COUNT_];     /* client requests answered with an error, by code */
    uint64_t verify_failures;            /* results that failed verification */
    uint64_t paid, fees;                 /* base units settled: gross price, fee part */
    uint64_t requeued;                   /* jobs sent back to the queue */
    uint64_t auth_refused[2];            /* handshakes refused: clients, workers */
    uint64_t foreign_reports;            /* worker reports about jobs it does not hold */
    uint64_t uploads;                    /* artifacts completed by UPLOAD */
    uint64_t upload_bytes;               /* bytes received by UPLOAD */
    uint64_t fetch_bytes;                /* artifact bytes served to workers */
    uint64_t model_loads;                /* models loaded into the broker's cache */
    s_hist_t dispatch;                   /* queued -> assigned */
    s_hist_t commit;                     /* batch handed over -> durable */
} s_stats_t;

struct qr_broker {
    qr_broker_cfg_t cfg;
    void *zctx;
    void *clients;  /* ROUTER */
    void *workers;  /* ROUTER */
    qr_db_t *db;    /* connection the current batch goes to; also serves reads */
    qr_db_t *spare; /* the other connection: idle, or committing the batch in flight */
    qr_db_t *fly_db; /* batch the committer thread is writing; NULL = none */
    s_out_t *fly_out; /* its outbox, sent when it is durable */
    size_t fly_nout, fly_capout;
    s_job_t **fly_dirty; /* its changed jobs */
    size_t fly_ndirty, fly_capdirty;
    int64_t fly_t0;   /* when it was handed over, us */
    void *pipe;       /* PAIR to the committer thread */
    pthread_t committer;
    bool committer_up;
    bool degraded;  /* database lost: answering QR_EDB until reload */
    qr_httpd_t *httpd; /* /metrics and /healthz; NULL when off */
    void *zap;         /* ZAP handler (REP) authenticating CURVE peers; NULL insecure */
    qr_db_t *lock;     /* holds the leader lock for as long as this broker is active */
    uint64_t epoch;    /* leader epoch, fencing every commit */
    bool standby;      /* waiting for the leader lock */
    bool deposed;      /* another broker became active: stop */
    char holder[64];   /* how broker_leader names this broker */
    qr_hmap_t *keys;   /* Z85 public key -> s_key_t, from curve_keys */
    char (*boot_admins)[QR_KEY_Z85_LEN + 1]; /* --admin-keys */
    size_t nboot_admins;
    int64_t insecure_warn_at; /* next reminder that the broker runs in plain text */
    s_stats_t stats;
    int64_t started_ms; /* wall clock at start */
    char degraded_why[256];
    int64_t retry_at;

    qr_sched_t *sched;
    qr_hmap_t *jobs;          /* id -> s_job_t */
    qr_hmap_t *accounts;      /* id -> s_account_t */
    qr_hmap_t *acct_by_name;  /* name -> s_account_t */
    qr_hmap_t *workers_by_id; /* id -> s_worker_t */
    qr_hmap_t *workers_by_name;
    qr_hmap_t *workers_by_ident;
    qr_hmap_t *sessions; /* client identity -> s_client_t */
    qr_hmap_t *idem;     /* "client_id:key" -> s_job_t */
    qr_hmap_t *blobs;    /* id -> s_blob_t */
    qr_hmap_t *blob_by_content; /* (hash, len) -> s_blob_t */
    qr_hmap_t *inrefs;          /* artifact SHA-256 -> s_inref_t: inputs named by JobSpec.input */
    size_t inref_bytes;         /* their blobs' size */
    s_account_t *mint, *fees;
    qr_store_t *store;  /* artifacts (models) */
    qr_hmap_t *models;  /* "WEIGHTS:GRAPH" -> s_model_t, loaded models */
    size_t model_bytes; /* their weights' size */
    int check_threads;  /* threads an ai.infer result check may use (the CPUs, at most 4) */
    qr_hmap_t *zkeys;   /* zkey SHA-256 -> s_zkey_t: verification keys of zk.groth16 jobs */

    uint64_t next_job, next_acct, next_worker, next_txn, next_blob, seq;
    uint64_t running[QR_SCHED_KINDS]; /* assigned or running, per kind */

    s_out_t *out; /* outbox */
    size_t nout, capout;
    s_job_t **dirty; /* jobs changed this turn */
    size_t ndirty, capdirty;
    s_deadline_t *dl; /* min-heap of deadlines */
    size_t ndl, capdl;
    qr_ring_t cache;  /* blobs the cache holds a reference to, oldest first */
    size_t cache_bytes;
    int64_t hb_check_at;
    int64_t sweep_at;   /* next idle-session sweep */
    qr_ring_t final;    /* final jobs still in memory, oldest first */
};

/* ---- small helpers ---- */

static int s_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *n = realloc(*arr, ncap * elem);
    if (!n)
        return -1;
    *arr = n;
    *cap = ncap;
    return 0;
}

static bool s_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > S_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* Queues msg for sending after the commit.  Payload pointers must stay valid
 * until the flush at the end of the turn. */
static s_out_t *s_queue(qr_broker_t *self, void *sock, const char *proto, const void *ident,
                        size_t idlen, uint8_t cmd, const ProtobufCMessage *msg, uint64_t req_id,
                        const qr_payload_t *pay, int npay, uint8_t *owned)
{
    if (s_grow((void **)&self->out, &self->capout, self->nout + 1, sizeof(s_out_t)) < 0) {
        free(owned);
        return NULL;
    }
    s_out_t *o = &self->out[self->nout];
    memset(o, 0, sizeof *o);
    o->sock = sock;
    o->proto = proto;
    o->idlen = idlen > S_IDENT_MAX ? S_IDENT_MAX : idlen;
    memcpy(o->ident, ident, o->idlen);
    o->cmd = cmd;
    o->blen = msg ? protobuf_c_message_get_packed_size(msg) : 0;
    o->body = malloc(o->blen ? o->blen : 1);
    if (!o->body) {
        free(owned);
        return NULL;
    }
    if (msg)
        protobuf_c_message_pack(msg, o->body);
    for (int i = 0; i < npay && i < 2; i++)
        o->pay[i] = pay[i];
    o->npay = npay;
    o->owned = owned;
    o->req_id = req_id;
    self->nout++;
    return o;
}

static s_out_t *s_client_reply(qr_broker_t *self, const s_client_t *c, uint8_t cmd,
                               const ProtobufCMessage *msg, uint64_t req_id,
                               const qr_payload_t *pay, int npay, uint8_t *owned)
{
    return s_queue(self, self->clients, QR_PROTO_CLIENT, c->ident, c->idlen, cmd, msg, req_id, pay, npay,
            owned);
}

static void s_client_error(qr_broker_t *self, const void *ident, size_t idlen, uint64_t req_id,
                           uint64_t job_id, int code, const char *message)
{
    if (code > 0 && code < QR_ERR_COUNT_)
        self->stats.refused[code]++;
    Quarry__Error e = QUARRY__ERROR__INIT;
    e.req_id = req_id;
    e.job_id = job_id;
    e.code = code;
    e.message = (char *)(message ? message : qr_strerror(code));
    s_queue(self, self->clients, QR_PROTO_CLIENT, ident, idlen, QR_CMD_ERROR, &e.base, 0, NULL, 0,
            NULL);
}

static s_out_t *s_worker_send(qr_broker_t *self, s_worker_t *w, uint8_t cmd,
                              const ProtobufCMessage *msg, const qr_payload_t *pay, int npay)
{
    w->hb_at = qr_clock_ms() + self->cfg.heartbeat_ms;
    return s_queue(self, self->workers, QR_PROTO_WORKER, w->ident, w->idlen, cmd, msg, 0, pay,
                   npay, NULL);
}

static void s_mark_dirty(qr_broker_t *self, s_job_t *j)
{
    if (j->dirty)
        return;
    if (s_grow((void **)&self->dirty, &self->capdirty, self->ndirty + 1, sizeof(s_job_t *)) < 0)
        return;
    j->dirty = true;
    self->dirty[self->ndirty++] = j;
}

/* ---- blobs ---- */

/* Where to look for an equal blob: the length and 32 words sampled evenly
 * across the bytes.  Equality is always confirmed with memcmp, so this only
 * picks the bucket; it costs O(1) instead of a pass over a large input, and a
 * crafted collision merely skips deduplication (see s_blob_index). */
static uint64_t s_hash(const void *p, size_t n, uint64_t h)
{
    const uint8_t *b = p;
    h ^= 0x9e3779b97f4a7c15ull * (n + 1);
    size_t words = n / 8, step = words > 32 ? words / 32 : 1;
    for (size_t i = 0; i < words; i += step) {
        uint64_t w;
        memcpy(&w, b + i * 8, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    memcpy(&w, b + words * 8, n - words * 8);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

typedef struct {
    uint64_t hash;
    uint64_t len;
} s_blob_key_t;

/* Registers a blob in the indexes; takes data. NULL on OOM (data freed). */
static s_blob_t *s_blob_index(qr_broker_t *self, uint64_t id, uint8_t *data, size_t len,
                              uint64_t hash)
{
    s_blob_t *b = calloc(1, sizeof *b);
    if (!b || qr_hmap_put_u64(self->blobs, id, b) < 0) {
        free(b);
        free(data);
        return NULL;
    }
    b->id = id;
    b->hash = hash;
    b->data = data;
    b->len = len;
    s_blob_key_t key = {hash, len};
    if (!qr_hmap_get(self->blob_by_content, &key, sizeof key) &&
        qr_hmap_put(self->blob_by_content, &key, sizeof key, b) == 0)
        b->indexed = true;
    return b;
}

/* The blob holding the bytes a (la) followed by b (lb): an existing one with
 * the same content, or a new one queued for the next commit.  Takes a
 * reference.  NULL on OOM. */
/* The hash of a blob stored as a followed by b (b may be a + la with lb 0). */
static uint64_t s_content_hash(const void *a, size_t la, const void *b, size_t lb)
{
    return s_hash(b, lb, s_hash(a, la, 0));
}

/* The blob already holding a then b, or NULL. */
static s_blob_t *s_blob_find(qr_broker_t *self, const void *a, size_t la, const void *b,
                             size_t lb)
{
    s_blob_key_t key = {s_content_hash(a, la, b, lb), la + lb};
    s_blob_t *bl = qr_hmap_get(self->blob_by_content, &key, sizeof key);
    if (bl && memcmp(bl->data, a, la) == 0 && memcmp(bl->data + la, b, lb) == 0)
        return bl;
    return NULL;
}

static s_blob_t *s_blob_get(qr_broker_t *self, const void *a, size_t la, const void *b, size_t lb)
{
    s_blob_t *bl = s_blob_find(self, a, la, b, lb);
    if (bl) {
        bl->refs++;
        return bl;
    }
    uint64_t hash = s_content_hash(a, la, b, lb);
    uint8_t *data = malloc(la + lb ? la + lb : 1);
    if (!data)
        return NULL;
    memcpy(data, a, la);
    memcpy(data + la, b, lb);
    bl = s_blob_index(self, ++self->next_blob, data, la + lb, hash);
    if (!bl)
        return NULL;
    qr_db_add_blob(self->db, bl->id, bl->data, bl->len);
    bl->refs = 1;
    return bl;
}

/* Drops a reference; the last one frees the blob (it stays in PostgreSQL). */
static void s_blob_put(qr_broker_t *self, s_blob_t **bp)
{
    s_blob_t *b = *bp;
    *bp = NULL;
    if (!b || --b->refs > 0)
        return;
    if (b->indexed) {
        s_blob_key_t key = {b->hash, b->len};
        qr_hmap_del(self->blob_by_content, &key, sizeof key);
    }
    qr_hmap_del_u64(self->blobs, b->id);
    qr_gemm_probe_destroy(&b->probe);
    free(b->data);
    free(b);
}

/* ---- inputs named by artifact (JobSpec.input) ---------------------------
 * A client that sends the same input to many jobs uploads it once and names
 * it by SHA-256.  The first job naming it reads the artifact from the store
 * into a blob (deduplicated against blobs already held, stored in
 * PostgreSQL with that job's commit); later ones take a reference to the
 * same blob without touching the bytes.  The cache holds one reference per
 * entry and drops the least recently used past S_INREFS_MAX entries or
 * S_INREF_BYTES bytes; a blob still named by jobs lives on with them. */
#define S_INREFS_MAX 256
#define S_INREF_BYTES ((size_t)256 << 20)

typedef struct {
    char sha[QR_SHA_HEX + 1];
    s_blob_t *blob; /* holds a reference */
    bool finite;    /* every 4-byte word is a finite float (ai.gemm, ai.infer inputs) */
    int64_t used_ms;
} s_inref_t;

/* Least recently used entry of a map of caches (each holding an int64_t
 * used_ms at byte offset off), other than keep; NULL when none. */
typedef struct {
    void *oldest;
    const void *keep;
    size_t off;
} s_lru_t;

static int64_t s_used_ms(const void *v, size_t off)
{
    int64_t ms;
    memcpy(&ms, (const char *)v + off, sizeof ms);
    return ms;
}

static void s_lru_each(void *arg, void *v)
{
    s_lru_t *l = arg;
    if (v != l->keep && (!l->oldest || s_used_ms(v, l->off) < s_used_ms(l->oldest, l->off)))
        l->oldest = v;
}

static void *s_lru_oldest(const qr_hmap_t *map, const void *keep, size_t off)
{
    s_lru_t l = {NULL, keep, off};
    qr_hmap_each(map, s_lru_each, &l);
    return l.oldest;
}

static void s_inref_trim(qr_broker_t *self, const s_inref_t *keep)
{
    while (qr_hmap_size(self->inrefs) > S_INREFS_MAX || self->inref_bytes > S_INREF_BYTES) {
        s_inref_t *old = s_lru_oldest(self->inrefs, keep, offsetof(s_inref_t, used_ms));
        if (!old)
            break;
        qr_hmap_del(self->inrefs, old->sha, QR_SHA_HEX);
        self->inref_bytes -= old->blob->len;
        s_blob_put(self, &old->blob);
        free(old);
    }
}

static bool s_inputs_finite(const void *pa, size_t la, const void *pb, size_t lb);

/* The input artifact sha, which must be len bytes (0: any size up to the
 * input limit).  NULL with *code (QR_EINVAL: not a SHA-256 name, or the
 * wrong size; QR_ENOTFOUND: not uploaded; QR_ETOOBIG; QR_EIO; QR_ENOMEM)
 * and a reason in why. */
static s_inref_t *s_inref_get(qr_broker_t *self, const char *sha, size_t len, int *code, char *why,
                              size_t whylen)
{
    *code = QR_EINVAL;
    if (!qr_sha_valid(sha)) {
        snprintf(why, whylen,
                 "input must name an artifact by SHA-256 (64 lowercase hex digits), "
                 "as `quarry upload` prints it");
        return NULL;
    }
    s_inref_t *r = qr_hmap_get(self->inrefs, sha, QR_SHA_HEX);
    int64_t size = r ? (int64_t)r->blob->len : qr_store_size(self->store, sha);
    if (size < 0) {
        *code = QR_ENOTFOUND;
        snprintf(why, whylen,
                 "the input artifact %.12s... is not in the broker's store; upload "
                 "it first (quarry upload FILE)",
                 sha);
        return NULL;
    }
    if (len ? (uint64_t)size != len : size > self->cfg.max_input_bytes) {
        *code = len ? QR_EINVAL : QR_ETOOBIG;
        if (len)
            snprintf(why, whylen,
                     "the input artifact %.12s... holds %" PRId64 " bytes; this "
                     "job needs %zu",
                     sha, size, len);
        else
            snprintf(why, whylen,
                     "the input artifact %.12s... holds %" PRId64 " bytes, over "
                     "the limit of %" PRId64,
                     sha, size, self->cfg.max_input_bytes);
        return NULL;
    }
    if (r) {
        r->used_ms = qr_clock_ms();
        return r;
    }
    uint8_t *data = malloc(size ? (size_t)size : 1);
    if (!data || !(r = calloc(1, sizeof *r))) {
        free(data);
        *code = QR_ENOMEM;
        snprintf(why, whylen, "out of memory reading an input artifact");
        return NULL;
    }
    int64_t got = 0, n = 1;
    while (got < size && (n = qr_store_read(self->store, sha, (uint64_t)got, data + got,
                                            (size_t)(size - got))) > 0)
        got += n;
    if (got != size) {
        free(data);
        free(r);
        *code = QR_EIO;
        snprintf(why, whylen, "cannot read the input artifact %.12s... from the store", sha);
        return NULL;
    }
    memcpy(r->sha, sha, QR_SHA_HEX + 1);
    r->finite = size % sizeof(float) == 0 && s_inputs_finite(data, (size_t)size, data, 0);
    r->blob = s_blob_get(self, data, (size_t)size, data + size, 0);
    free(data);
    r->used_ms = qr_clock_ms();
    if (!r->blob || qr_hmap_put(self->inrefs, r->sha, QR_SHA_HEX, r) < 0) {
        s_blob_put(self, &r->blob);
        free(r);
        *code = QR_ENOMEM;
        snprintf(why, whylen, "out of memory reading an input artifact");
        return NULL;
    }
    self->inref_bytes += r->blob->len;
    s_inref_trim(self, r);
    return r;
}

/* ---- accounts and ledger ---- */

static s_account_t *s_account_add(qr_broker_t *self, uint64_t id, const char *name, int kind,
                                  int64_t avail, int64_t reserved)
{
    s_account_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->id = id;
    snprintf(a->name, sizeof a->name, "%s", name);
    a->kind = kind;
    a->available = avail;
    a->reserved = reserved;
    if (qr_hmap_put_u64(self->accounts, id, a) < 0 ||
        qr_hmap_put(self->acct_by_name, a->name, strlen(a->name), a) < 0) {
        qr_hmap_del_u64(self->accounts, id);
        free(a);
        return NULL;
    }
    return a;
}

/* Finds the account called name, creating it (and queueing its row) when
 * absent.  NULL on OOM. */
static s_account_t *s_account_get(qr_broker_t *self, const char *name, int kind)
{
    s_account_t *a = qr_hmap_get(self->acct_by_name, name, strlen(name));
    if (a)
        return a;
    a = s_account_add(self, ++self->next_acct, name, kind, 0, 0);
    if (a)
        qr_db_add_account(self->db, a->id, a->name, kind);
    return a;
}

/* One leg of ledger transaction txn: amount into (a, bucket); zero legs are
 * left out.  The caller makes the legs of a transaction sum to zero. */
static void s_leg(qr_broker_t *self, uint64_t txn, uint64_t job_id, const char *kind,
                  s_account_t *a, int bucket, int64_t amount)
{
    if (amount == 0)
        return;
    qr_db_add_ledger(self->db, txn, a->id, bucket, job_id, kind, amount, qr_wall_ms());
    *(bucket == QR_BUCKET_AVAILABLE ? &a->available : &a->reserved) += amount;
}

/* A two-leg transaction: amount from (from, from_b) to (to, to_b). */
static void s_move(qr_broker_t *self, uint64_t txn, uint64_t job_id, const char *kind,
                   s_account_t *from, int from_b, s_account_t *to, int to_b, int64_t amount)
{
    s_leg(self, txn, job_id, kind, from, from_b, -amount);
    s_leg(self, txn, job_id, kind, to, to_b, amount);
}

/* ---- jobs ---- */

/* Frees a job record; its blobs are released by the caller (s_job_drop) or
 * all at once with the indexes (s_state_clear). */
static void s_job_free(s_job_t *j)
{
    if (!j)
        return;
    free(j->watches);
    free(j);
}

static void s_job_event(qr_broker_t *self, s_job_t *j, int state, const char *detail)
{
    j->row.state = state;
    j->row.updated_ms = qr_wall_ms();
    if (detail)
        snprintf(j->row.detail, sizeof j->row.detail, "%s", detail);
    qr_db_add_event(self->db, j->row.id, state, j->row.worker_id, detail, j->row.updated_ms);
    s_mark_dirty(self, j);
}

static void s_job_commit_row(qr_broker_t *self, s_job_t *j)
{
    qr_db_job_update(self->db, &j->row);
}

static void s_fill_info(const s_job_t *j, Quarry__JobInfo *info)
{
    const qr_db_job_t *r = &j->row;
    info->job_id = r->id;
    info->kind = (char *)r->kind;
    info->state = (char *)qr_job_state_name(r->state);
    info->attempts = r->attempts;
    info->worker_id = r->worker_id;
    info->max_price = r->max_price;
    info->price = r->price;
    info->fee = r->fee;
    info->units = r->units;
    info->created_ms = r->created_ms;
    info->updated_ms = r->updated_ms;
    info->progress = qr_job_state_final(r->state) ? 1000 : j->progress;
    info->detail = (char *)r->detail;
    info->m = r->m;
    info->n = r->n;
    info->k = r->k;
}

static void s_fill_info_row(const qr_db_job_t *r, Quarry__JobInfo *info)
{
    s_job_t tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.row = *r;
    s_fill_info(&tmp, info);
    info->kind = (char *)r->kind;
    info->detail = (char *)r->detail;
}

static void s_worker_drop_job(qr_broker_t *self, s_job_t *j)
{
    s_worker_t *w = j->worker;
    if (!w)
        return;
    for (size_t i = 0; i < w->njobs; i++)
        if (w->jobs[i] == j) {
            w->jobs[i] = w->jobs[--w->njobs];
            break;
        }
    j->worker = NULL;
    if (w->sw.busy)
        w->sw.busy--;
    w->sw.units = w->sw.units > j->sj.units ? w->sw.units - j->sj.units : 0;
    if (w->sw.registered)
        qr_sched_update_worker(self->sched, &w->sw);
    if (j->sj.kind >= 0 && j->sj.kind < QR_SCHED_KINDS && self->running[j->sj.kind])
        self->running[j->sj.kind]--;
}

/* Returns the reservation of a job that ends without payment. */
static void s_release(qr_broker_t *self, s_job_t *j)
{
    s_account_t *c = qr_hmap_get_u64(self->accounts, j->row.client_id);
    if (c)
        s_move(self, ++self->next_txn, j->row.id, "release", c, QR_BUCKET_RESERVED, c,
               QR_BUCKET_AVAILABLE, (int64_t)j->row.max_price);
}

/* Ends a job in a final state without payment (failed, expired, cancelled). */
static void s_finish_unpaid(qr_broker_t *self, s_job_t *j, int state, const char *detail)
{
    if (j->worker) {
        Quarry__Cancel c = QUARRY__CANCEL__INIT;
        c.job_id = j->row.id;
        s_worker_send(self, j->worker, QR_WCMD_CANCEL, &c.base, NULL, 0);
        s_worker_drop_job(self, j);
    }
    qr_sched_dequeue(self->sched, &j->sj);
    s_release(self, j);
    s_account_t *owner = qr_hmap_get_u64(self->accounts, j->row.client_id);
    if (owner && owner->live)
        owner->live--;
    self->stats.ended[state]++;
    s_job_event(self, j, state, detail);
    s_job_commit_row(self, j);
    qr_log(QR_LOG_INFO, "job ended unpaid", "job=%" PRIu64 " state=%s detail=\"%s\"", j->row.id,
           qr_job_state_name(state), detail);
}

/* Sends a job back to the queue (lost worker, FAIL, wrong result) or ends it
 * as failed when it has used its attempts.  count: the attempt counts against
 * the job (false when the broker or a draining worker gave it back). */
static void s_requeue(qr_broker_t *self, s_job_t *j, bool count, const char *detail)
{
    s_worker_drop_job(self, j);
    if (!count && j->row.attempts > 0)
        j->row.attempts--;
    if (count && j->row.attempts >= j->row.max_attempts) {
        char why[256];
        snprintf(why, sizeof why, "failed after %u attempts; last: %.200s", j->row.attempts, detail);
        s_finish_unpaid(self, j, QR_JOB_FAILED, why);
        return;
    }
    s_job_event(self, j, QR_JOB_QUEUED, detail);
    s_job_commit_row(self, j);
    j->progress = 0;
    j->queued_us = qr_clock_us();
    self->stats.requeued++;
    qr_sched_enqueue(self->sched, &j->sj);
}

static void s_dl_push(qr_broker_t *self, int64_t at, uint64_t id)
{
    if (s_grow((void **)&self->dl, &self->capdl, self->ndl + 1, sizeof(s_deadline_t)) < 0)
        return;
    size_t i = self->ndl++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (self->dl[p].at <= at)
            break;
        self->dl[i] = self->dl[p];
        i = p;
    }
    self->dl[i] = (s_deadline_t){at, id};
}

static s_deadline_t s_dl_pop(qr_broker_t *self)
{
    s_deadline_t top = self->dl[0], last = self->dl[--self->ndl];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        int64_t mat = last.at;
        if (l < self->ndl && self->dl[l].at < mat) {
            m = l;
            mat = self->dl[l].at;
        }
        if (r < self->ndl && self->dl[r].at < mat)
            m = r;
        if (m == i)
            break;
        self->dl[i] = self->dl[m];
        i = m;
    }
    if (self->ndl)
        self->dl[i] = last;
    return top;
}

/* Registers a job in memory (indexes, scheduler, deadline).  Takes j. */
/* ---- ai.infer models ----
 * The broker loads a model (weights + graph from the artifact store) the
 * first time a job names it: to refuse a bad model at submit, to know the
 * job's widths and work, and to check results.  Loaded models stay in an LRU
 * under model-cache-mb; each keeps secret Freivalds probes, drawn again after
 * S_PROBE_USES checks or S_PROBE_MS, so a worker never learns them by
 * probing. */
#define S_PROBE_USES 4096
#define S_PROBE_MS 60000
#define S_GRAPH_MAX (1u << 20)

typedef struct {
    char key[2 * QR_SHA_HEX + 2];   /* "WEIGHTS:GRAPH" */
    qr_st_file_t *st;               /* the weights */
    qr_model_t *model;              /* built on st */
    qr_model_probes_t *probes;      /* secret check vectors; NULL until first check */
    int64_t probes_ms;              /* monotonic ms they were drawn */
    uint64_t probe_uses;            /* checks since */
    size_t bytes;                   /* weights file size */
    int64_t used_ms;                /* LRU */
} s_model_t;

static void s_model_free(s_model_t *m)
{
    if (!m)
        return;
    qr_model_probes_destroy(&m->probes);
    qr_model_destroy(&m->model);
    qr_st_destroy(&m->st);
    free(m);
}

static void s_model_free_each(void *arg, void *v)
{
    (void)arg;
    s_model_free(v);
}


/* The loaded model for weights:graph, loading it from the store if needed.
 * NULL with *code (QR_ENOTFOUND: not uploaded; QR_EINVAL: not a valid model;
 * QR_ENOMEM) and a reason in why. */
static s_model_t *s_model_get(qr_broker_t *self, const char *weights, const char *graph, int *code,
                              char *why, size_t whylen)
{
    char key[2 * QR_SHA_HEX + 2];
    *code = QR_EINVAL;
    if (!qr_sha_valid(weights) || !qr_sha_valid(graph)) {
        snprintf(why, whylen, "ai.infer needs weights and graph as SHA-256 names (64 lowercase hex "
                              "digits), as `quarry upload` prints them");
        return NULL;
    }
    snprintf(key, sizeof key, "%s:%s", weights, graph);
    s_model_t *m = qr_hmap_get(self->models, key, strlen(key));
    if (m) {
        m->used_ms = qr_clock_ms();
        return m;
    }
    char wpath[4200];
    int64_t glen = qr_store_size(self->store, graph);
    if (qr_store_path(self->store, weights, wpath, sizeof wpath) < 0 || glen < 0) {
        *code = QR_ENOTFOUND;
        snprintf(why, whylen, "the %s artifact %.12s... is not in the broker's store; upload it "
                              "first (quarry upload FILE)",
                 glen < 0 && qr_store_size(self->store, weights) >= 0 ? "graph" : "weights",
                 glen < 0 && qr_store_size(self->store, weights) >= 0 ? graph : weights);
        return NULL;
    }
    if (glen > (int64_t)S_GRAPH_MAX) {
        snprintf(why, whylen, "the graph artifact is %" PRId64 " bytes; a graph is at most %u",
                 glen, S_GRAPH_MAX);
        return NULL;
    }
    char *g = malloc((size_t)glen + 1);
    if (!(m = calloc(1, sizeof *m)) || !g) {
        free(g);
        free(m);
        *code = QR_ENOMEM;
        snprintf(why, whylen, "out of memory loading a model");
        return NULL;
    }
    char err[384];
    if (qr_store_read(self->store, graph, 0, g, (size_t)glen) != glen) {
        snprintf(why, whylen, "cannot read the graph artifact from the store");
        *code = QR_EIO;
        goto fail;
    }
    if (!(m->st = qr_st_load(wpath, err, sizeof err))) {
        snprintf(why, whylen, "weights are not a valid safetensors file: %.180s", err);
        goto fail;
    }
    if (!(m->model = qr_model_new(g, (size_t)glen, m->st, err, sizeof err))) {
        snprintf(why, whylen, "model graph does not fit its weights: %.180s", err);
        goto fail;
    }
    free(g);
    snprintf(m->key, sizeof m->key, "%s", key);
    m->bytes = (size_t)qr_store_size(self->store, weights);
    m->used_ms = qr_clock_ms();
    if (qr_hmap_put(self->models, m->key, strlen(m->key), m) < 0) {
        s_model_free(m);
        *code = QR_ENOMEM;
        snprintf(why, whylen, "out of memory loading a model");
        return NULL;
    }
    self->model_bytes += m->bytes;
    self->stats.model_loads++;
    /* evict least recently used models past the budget (never the new one) */
    size_t budget = (size_t)self->cfg.model_cache_mb << 20;
    while (self->model_bytes > budget) {
        s_model_t *old = s_lru_oldest(self->models, m, offsetof(s_model_t, used_ms));
        if (!old)
            break;
        qr_hmap_del(self->models, old->key, strlen(old->key));
        self->model_bytes -= old->bytes;
        s_model_free(old);
    }
    return m;
fail:
    free(g);
    s_model_free(m);
    return NULL;
}

/* The model of a job row ("WEIGHTS:GRAPH"). */
static s_model_t *s_job_model(qr_broker_t *self, const qr_db_job_t *r, int *code, char *why,
                              size_t whylen)
{
    char w[QR_SHA_HEX + 1] = "", g[QR_SHA_HEX + 1] = "";
    if (strlen(r->model) == 2 * QR_SHA_HEX + 1) {
        memcpy(w, r->model, QR_SHA_HEX);
        memcpy(g, r->model + QR_SHA_HEX + 1, QR_SHA_HEX);
    }
    return s_model_get(self, w, g, code, why, whylen);
}

/* Work units of rows through a model: one per started 2^20 multiply-adds of
 * its dense layers (as ai.gemm), at least 1. */
static uint64_t s_model_units(const qr_model_t *m, uint32_t rows)
{
    unsigned __int128 madds = 0;
    for (uint32_t i = 0; i < qr_model_layers(m); i++)
        if (qr_model_op(m, i) == QR_MODEL_DENSE)
            madds += (unsigned __int128)rows * qr_model_layer_in_width(m, i) *
                     qr_model_layer_width(m, i);
    unsigned __int128 u = (madds + (1u << 20) - 1) >> 20;
    return u == 0 ? 1 : u > (unsigned __int128)UINT32_MAX ? UINT32_MAX : (uint64_t)u;
}

static bool s_is_infer(const qr_db_job_t *r)
{
    return strcmp(r->kind, "ai.infer") == 0;
}

/* Scheduler affinity key of a model: its weights' first 64 bits. */
static uint64_t s_affinity(const char *sha)
{
    uint64_t k = 0;
    for (int i = 0; i < 16 && sha[i]; i++)
        k = k << 4 | (uint64_t)(sha[i] <= '9' ? sha[i] - '0' : sha[i] - 'a' + 10);
    return k ? k : 1;
}

/* ---- zk.groth16 proving keys ----
 * The broker needs only a key's verification key and sizes: it reads the
 * .zkey's header and IC sections from the store once (qr_zkey_load_vk: a
 * few pages of a key that can be gigabytes; the workers hold the rest) and
 * keeps those.  Verification keys are a few
 * hundred bytes each, so they are never evicted. */
typedef struct {
    char sha[QR_SHA_HEX + 1];
    qr_g16_vk_t *vk;
    uint32_t n_vars, n_public, domain;
} s_zkey_t;

static void s_zkey_free_each(void *arg, void *v)
{
    (void)arg;
    s_zkey_t *z = v;
    qr_g16_vk_destroy(&z->vk);
    free(z);
}

static s_zkey_t *s_zkey_get(qr_broker_t *self, const char *sha, int *code, char *why,
                            size_t whylen)
{
    *code = QR_EINVAL;
    if (!qr_sha_valid(sha)) {
        snprintf(why, whylen, "zk.groth16 needs the proving key as a SHA-256 name (64 lowercase "
                              "hex digits), as `quarry upload` prints it");
        return NULL;
    }
    s_zkey_t *z = qr_hmap_get(self->zkeys, sha, QR_SHA_HEX);
    if (z)
        return z;
    char path[4200], err[320];
    if (qr_store_path(self->store, sha, path, sizeof path) < 0) {
        *code = QR_ENOTFOUND;
        snprintf(why, whylen, "the proving key %.12s... is not in the broker's store; upload it "
                              "first (quarry upload FILE.zkey)", sha);
        return NULL;
    }
    qr_g16_pk_t hdr;
    qr_g16_vk_t *vk = qr_zkey_load_vk(path, &hdr, err, sizeof err);
    if (!vk) {
        snprintf(why, whylen, "not a Groth16 proving key: %.200s", err);
        return NULL;
    }
    z = calloc(1, sizeof *z);
    if (!z || qr_hmap_put(self->zkeys, sha, QR_SHA_HEX, z) < 0) {
        qr_g16_vk_destroy(&vk);
        free(z);
        *code = QR_ENOMEM;
        snprintf(why, whylen, "out of memory loading a proving key");
        return NULL;
    }
    memcpy(z->sha, sha, QR_SHA_HEX + 1);
    z->vk = vk;
    z->n_vars = hdr.n_vars;
    z->n_public = hdr.n_public;
    z->domain = hdr.domain_size;
    return z;
}

static bool s_is_zk(const qr_db_job_t *r)
{
    return strcmp(r->kind, "zk.groth16") == 0;
}

/* Work units of a proof: one per started 1024 of (4 x witness length +
 * domain size), the points the prover's MSMs and NTTs go through (three G1
 * MSMs and one G2 MSM over the witness, one over the H query). */
static uint64_t s_zk_units(const s_zkey_t *z)
{
    uint64_t pts = 4 * (uint64_t)z->n_vars + z->domain;
    return pts / 1024 + 1;
}

/* The witness of a zk.groth16 job (its input, the .wtns bytes). */
static qr_wtns_t *s_job_wtns(const s_job_t *j, char *err, size_t errlen)
{
    return qr_wtns_load_mem("witness", j->row.input, j->row.input_len, err, errlen);
}

static int s_job_track(qr_broker_t *self, s_job_t *j)
{
    j->sj.id = j->row.id;
    j->sj.priority = j->row.priority;
    j->sj.seq = ++self->seq;
    if (s_is_zk(&j->row)) {
        int code;
        char why[256];
        s_zkey_t *z = s_zkey_get(self, j->row.model, &code, why, sizeof why);
        j->sj.units = z ? s_zk_units(z) : 1;
        j->sj.affinity = s_affinity(j->row.model);
    } else if (s_is_infer(&j->row)) {
        int code;
        char why[256];
        s_model_t *m = s_job_model(self, &j->row, &code, why, sizeof why);
        /* a model lost from the store: the job still runs its course (and
         * fails on the workers), billed at the minimum */
        j->sj.units = m ? s_model_units(m->model, j->row.m) : 1;
        j->sj.affinity = s_affinity(j->row.model);
    } else
        j->sj.units = qr_gemm_units(j->row.m, j->row.n, j->row.k);
    j->sj.max_price = j->row.max_price;
    j->sj.min_mem_mb = j->row.min_mem_mb;
    j->sj.kind = qr_sched_kind(j->row.kind);
    j->sj.need_gpu = j->row.need_gpu;
    j->sj.heap_idx = -1;
    j->sj.owner = j;
    if (qr_hmap_put_u64(self->jobs, j->row.id, j) < 0)
        return -1;
    if (j->row.deadline_ms) {
        j->deadline_mono = qr_clock_ms() + (j->row.deadline_ms - qr_wall_ms());
        s_dl_push(self, j->deadline_mono, j->row.id);
    }
    if (j->row.idem_key[0]) {
        char key[160];
        int n = snprintf(key, sizeof key, "%" PRIu64 ":%s", j->row.client_id, j->row.idem_key);
        qr_hmap_put(self->idem, key, (size_t)n, j);
    }
    return 0;
}

/* ---- blob cache ----
 * Blobs of finished jobs stay a while: results for RESULT requests, inputs so
 * that a client sending the same matrices again is deduplicated even when the
 * last job that used them has ended.  The cache owns one reference per
 * entry and drops the oldest past blob-cache-mb.  Entries are added only at
 * the end of a turn, after the flush, so no queued reply still borrows the
 * bytes of a blob it evicts. */

static void s_cache_hold(qr_broker_t *self, s_blob_t **bp)
{
    s_blob_t *b = *bp;
    *bp = NULL;
    if (!b)
        return;
    size_t cap = (size_t)self->cfg.blob_cache_mb << 20;
    while (self->cache.n && self->cache_bytes + b->len > cap) {
        s_blob_t *old = qr_ring_pop(&self->cache);
        self->cache_bytes -= old->len;
        s_blob_put(self, &old);
    }
    if (b->len > cap || qr_ring_push(&self->cache, b) < 0) {
        s_blob_put(self, &b);
        return;
    }
    self->cache_bytes += b->len;
}

/* ---- state load and reset ---- */

static void s_free_each(void *arg, void *v)
{
    (void)arg;
    free(v);
}

static void s_free_job_each(void *arg, void *v)
{
    (void)arg;
    s_job_free(v);
}

static void s_free_blob_each(void *arg, void *v)
{
    (void)arg;
    s_blob_t *b = v;
    qr_gemm_probe_destroy(&b->probe);
    free(b->data);
    free(b);
}

static void s_free_worker_each(void *arg, void *v)
{
    (void)arg;
    s_worker_t *w = v;
    qr_hmap_destroy(&w->has);
    qr_ring_free(&w->has_order);
    free(w->jobs);
    free(w->holds);
    free(w);
}

static void s_state_clear(qr_broker_t *self)
{
    if (self->jobs)
        qr_hmap_each(self->jobs, s_free_job_each, NULL);
    if (self->accounts)
        qr_hmap_each(self->accounts, s_free_each, NULL);
    if (self->workers_by_id)
        qr_hmap_each(self->workers_by_id, s_free_worker_each, NULL);
    if (self->sessions)
        qr_hmap_each(self->sessions, s_free_each, NULL);
    if (self->blobs)
        qr_hmap_each(self->blobs, s_free_blob_each, NULL);
    if (self->keys)
        qr_hmap_each(self->keys, s_free_each, NULL);
    if (self->inrefs)
        qr_hmap_each(self->inrefs, s_free_each, NULL); /* their blobs go with the others */
    qr_hmap_destroy(&self->inrefs);
    self->inref_bytes = 0;
    qr_hmap_destroy(&self->keys);
    qr_hmap_destroy(&self->blobs);
    qr_hmap_destroy(&self->blob_by_content);
    qr_hmap_destroy(&self->jobs);
    qr_hmap_destroy(&self->accounts);
    qr_hmap_destroy(&self->acct_by_name);
    qr_hmap_destroy(&self->workers_by_id);
    qr_hmap_destroy(&self->workers_by_name);
    qr_hmap_destroy(&self->workers_by_ident);
    qr_hmap_destroy(&self->sessions);
    qr_hmap_destroy(&self->idem);
    qr_sched_destroy(&self->sched);
    for (size_t i = 0; i < self->nout; i++) {
        free(self->out[i].body);
        free(self->out[i].owned);
    }
    self->nout = 0;
    self->ndirty = 0;
    self->ndl = 0;
    self->cache.n = self->cache.head = self->cache_bytes = 0;
    self->final.n = self->final.head = 0;
    memset(self->running, 0, sizeof self->running);
    self->mint = self->fees = NULL;
}

static void s_load_account(void *arg, const qr_db_account_t *a)
{
    s_account_add(arg, a->id, a->name, a->kind, a->available, a->reserved);
}

/* Binds key to acct in memory; NULL on OOM. */
static s_key_t *s_key_bind(qr_broker_t *self, const char *key, s_account_t *acct, int role)
{
    s_key_t *k = qr_hmap_get(self->keys, key, strlen(key));
    if (!k) {
        k = calloc(1, sizeof *k);
        if (!k)
            return NULL;
        snprintf(k->key, sizeof k->key, "%s", key);
        if (qr_hmap_put(self->keys, k->key, strlen(k->key), k) < 0) {
            free(k);
            return NULL;
        }
    }
    k->acct = acct;
    k->role = role;
    acct->has_key = true;
    return k;
}

static void s_load_key(void *arg, const char *key, uint64_t account_id, const char *role)
{
    qr_broker_t *self = arg;
    s_account_t *a = qr_hmap_get_u64(self->accounts, account_id);
    int r = strcmp(role, "admin") == 0 ? S_ROLE_ADMIN : strcmp(role, "operator") == 0 ? S_ROLE_OPERATOR : S_ROLE_CLIENT;
    if (a)
        s_key_bind(self, key, a, r);
}

static void s_load_worker(void *arg, const qr_db_worker_t *dw)
{
    qr_broker_t *self = arg;
    s_worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return;
    w->id = dw->id;
    snprintf(w->name, sizeof w->name, "%s", dw->name);
    w->op = qr_hmap_get_u64(self->accounts, dw->operator_id);
    w->sw.id = dw->id;
    w->sw.reputation = dw->reputation;
    w->sw.owner = w;
    w->jobs_done = dw->jobs_done;
    w->earned = dw->earned;
    qr_hmap_put_u64(self->workers_by_id, w->id, w);
    qr_hmap_put(self->workers_by_name, w->name, strlen(w->name), w);
}

static void s_load_job(void *arg, qr_db_job_t *row)
{
    qr_broker_t *self = arg;
    s_job_t *j = calloc(1, sizeof *j);
    if (!j) {
        free(row->input);
        return;
    }
    j->row = *row;
    j->input = qr_hmap_get_u64(self->blobs, row->input_blob);
    if (j->input)
        free(row->input); /* another live job has the same input */
    else {
        /* hashed as SUBMIT hashes it: A, then B */
        size_t ab = 0, bb, cb;
        qr_gemm_sizes(row->m, row->n, row->k, &ab, &bb, &cb);
        if (ab > row->input_len)
            ab = row->input_len;
        j->input = s_blob_index(self, row->input_blob, row->input, row->input_len,
                                s_content_hash(row->input, ab, row->input + ab,
                                               row->input_len - ab));
    }
    if (!j->input) {
        free(j);
        return;
    }
    j->input->refs++;
    j->row.input = j->input->data;
    if (qr_sched_kind(j->row.kind) < 0 || s_job_track(self, j) < 0) {
        s_blob_put(self, &j->input);
        s_job_free(j);
        return;
    }
    if (j->row.state != QR_JOB_QUEUED) {
        /* its worker may be gone; the attempt was not the job's fault */
        if (j->row.attempts > 0)
            j->row.attempts--;
        s_job_event(self, j, QR_JOB_QUEUED, "re-queued after broker restart");
        s_job_commit_row(self, j);
    }
    j->queued_us = qr_clock_us();
    s_account_t *owner = qr_hmap_get_u64(self->accounts, j->row.client_id);
    if (owner)
        owner->live++;
    qr_sched_enqueue(self->sched, &j->sj);
}

/* Rebuilds memory from the database (start-up and recovery). */
static int s_state_load(qr_broker_t *self, char *err, size_t errlen)
{
    s_state_clear(self);
    self->jobs = qr_hmap_new();
    self->accounts = qr_hmap_new();
    self->acct_by_name = qr_hmap_new();
    self->workers_by_id = qr_hmap_new();
    self->workers_by_name = qr_hmap_new();
    self->workers_by_ident = qr_hmap_new();
    self->sessions = qr_hmap_new();
    self->idem = qr_hmap_new();
    self->blobs = qr_hmap_new();
    self->blob_by_content = qr_hmap_new();
    self->inrefs = qr_hmap_new();
    self->keys = qr_hmap_new();
    self->sched = qr_sched_new();
    if (self->sched) {
        qr_sched_set_affinity(self->sched, !self->cfg.no_affinity);
        qr_sched_set_affinity_wait(self->sched, self->cfg.affinity_wait_ms);
        qr_sched_set_now(self->sched, qr_clock_ms());
    }
    if (!self->jobs || !self->accounts || !self->acct_by_name || !self->workers_by_id ||
        !self->workers_by_name || !self->workers_by_ident || !self->sessions || !self->idem ||
        !self->blobs || !self->blob_by_content || !self->inrefs || !self->keys || !self->sched) {
        snprintf(err, errlen, "out of memory");
        return QR_ENOMEM;
    }
    int rc = qr_db_max_ids(self->db, &self->next_job, &self->next_acct, &self->next_worker,
                           &self->next_txn, &self->next_blob, err, errlen);
    if (rc == QR_OK)
        rc = qr_db_load_accounts(self->db, s_load_account, self, err, errlen);
    if (rc == QR_OK)
        rc = qr_db_load_keys(self->db, s_load_key, self, err, errlen);
    if (rc == QR_OK)
        rc = qr_db_load_workers(self->db, s_load_worker, self, err, errlen);
    if (rc != QR_OK)
        return rc;
    self->mint = s_account_get(self, S_MINT, QR_ACCT_SYSTEM);
    self->fees = s_account_get(self, S_FEES, QR_ACCT_SYSTEM);
    if (!self->mint || !self->fees) {
        snprintf(err, errlen, "out of memory");
        return QR_ENOMEM;
    }
    rc = qr_db_load_jobs(self->db, s_load_job, self, err, errlen);
    if (rc == QR_OK)
        rc = qr_db_commit(self->db, err, errlen);
    for (size_t i = 0; i < self->ndirty; i++)
        self->dirty[i]->dirty = false; /* nobody watches yet */
    self->ndirty = 0;
    if (rc == QR_OK)
        qr_log(QR_LOG_INFO, "state loaded", "jobs=%zu accounts=%zu workers=%zu",
               qr_hmap_size(self->jobs), qr_hmap_size(self->accounts),
               qr_hmap_size(self->workers_by_id));
    return rc;
}

/* The CURVE public key the peer authenticated with (the ZAP handler's user
 * id), or NULL in --insecure mode. */
static const char *s_user_id(qr_msg_t *msg)
{
    const char *uid = zmq_msg_gets(&msg->frames[msg->first], "User-Id");
    return uid && qr_keys_valid_z85(uid) ? uid : NULL;
}

/* ---- workers ---- */

static void s_has_reset(s_worker_t *w, uint64_t budget_mb)
{
    qr_hmap_destroy(&w->has);
    w->has_order.n = w->has_order.head = 0;
    w->has_bytes = 0;
    w->has_budget = budget_mb > (SIZE_MAX >> 21) ? SIZE_MAX >> 1 : (size_t)budget_mb << 20;
    if (w->has_budget)
        w->has = qr_hmap_new();
}

static bool s_has(const s_worker_t *w, uint64_t id)
{
    return w->has && qr_hmap_get_u64(w->has, id);
}

/* Forgets that the worker holds id (evicted, or it said it does not). */
static void s_has_forget(s_worker_t *w, uint64_t id)
{
    uintptr_t v = w->has ? (uintptr_t)qr_hmap_del_u64(w->has, id) : 0;
    if (v)
        w->has_bytes -= v - 1;
}

/* Records that the worker now keeps input id, evicting as it does. */
static void s_has_put(s_worker_t *w, uint64_t id, size_t bytes)
{
    if (!w->has || bytes > w->has_budget || qr_hmap_get_u64(w->has, id))
        return;
    while (w->has_order.n && w->has_bytes + bytes > w->has_budget)
        s_has_forget(w, (uint64_t)(uintptr_t)qr_ring_pop(&w->has_order));
    if (qr_ring_push(&w->has_order, (void *)(uintptr_t)id) < 0)
        return;
    if (qr_hmap_put_u64(w->has, id, (void *)(uintptr_t)(bytes + 1)) == 0)
        w->has_bytes += bytes;
}

/* ---- artifact holdings ---- */

static void s_hold(qr_broker_t *self, s_worker_t *w, const char *sha)
{
    if (!qr_sha_valid(sha))
        return;
    for (size_t i = 0; i < w->nholds; i++)
        if (strcmp(w->holds[i], sha) == 0)
            return;
    if (w->nholds >= 4096 || s_grow((void **)&w->holds, &w->capholds, w->nholds + 1,
                                     sizeof *w->holds) < 0)
        return; /* just not preferred for it */
    memcpy(w->holds[w->nholds++], sha, QR_SHA_HEX + 1);
    qr_sched_hold(self->sched, &w->sw, s_affinity(sha));
}

static void s_unhold(qr_broker_t *self, s_worker_t *w, const char *sha)
{
    for (size_t i = 0; i < w->nholds; i++)
        if (strcmp(w->holds[i], sha) == 0) {
            qr_sched_unhold(self->sched, &w->sw, s_affinity(sha));
            memcpy(w->holds[i], w->holds[--w->nholds], QR_SHA_HEX + 1);
            return;
        }
}

static void s_unhold_all(qr_broker_t *self, s_worker_t *w)
{
    qr_sched_unhold_all(self->sched, &w->sw);
    w->nholds = 0;
}

static void s_worker_lost(qr_broker_t *self, s_worker_t *w, const char *why, bool count)
{
    qr_log(QR_LOG_WARN, "worker lost", "worker=%" PRIu64 " name=%s reason=\"%s\" jobs=%zu",
           w->id, w->name, why, w->njobs);
    while (w->njobs) {
        s_job_t *j = w->jobs[w->njobs - 1];
        char detail[256];
        snprintf(detail, sizeof detail, "worker %" PRIu64 " %s", w->id, why);
        s_requeue(self, j, count, detail);
    }
    qr_sched_remove_worker(self->sched, &w->sw);
    s_unhold_all(self, w);
    qr_hmap_del(self->workers_by_ident, w->ident, w->idlen);
    w->online = false;
    w->sw.busy = 0;
    w->sw.units = 0;
    qr_db_worker_state(self->db, w->id, "offline", w->sw.reputation, w->jobs_done);
}

static void s_disconnect_peer(qr_broker_t *self, const void *ident, size_t idlen,
                              const char *reason)
{
    Quarry__Disconnect d = QUARRY__DISCONNECT__INIT;
    d.reason = (char *)reason;
    s_queue(self, self->workers, QR_PROTO_WORKER, ident, idlen, QR_WCMD_DISCONNECT, &d.base, 0,
            NULL, 0, NULL);
}

/* Capacity follows reputation: a worker under min-reputation gets no work
 * until an operator deals with it (its reputation is kept in PostgreSQL, so
 * reconnecting does not clear it). */
static uint32_t s_capacity(const qr_broker_t *self, const s_worker_t *w)
{
    return w->sw.reputation < self->cfg.min_reputation ? 0
                                                      : w->slots + (uint32_t)self->cfg.prefetch;
}

static void s_reputation(qr_broker_t *self, s_worker_t *w, int32_t delta)
{
    int32_t r = w->sw.reputation + delta;
    r = r < 0 ? 0 : r > 100 ? 100 : r;
    if (r == w->sw.reputation)
        return;
    bool was_ok = w->sw.reputation >= self->cfg.min_reputation;
    w->sw.reputation = r;
    w->dirty = true;
    w->sw.capacity = s_capacity(self, w);
    if (was_ok && r < self->cfg.min_reputation)
        qr_log(QR_LOG_WARN, "worker gets no more work: reputation too low",
               "worker=%" PRIu64 " name=%s reputation=%d", w->id, w->name, r);
    if (w->sw.registered)
        qr_sched_update_worker(self->sched, &w->sw);
}

static void s_on_ready(qr_broker_t *self, const void *ident, size_t idlen, const qr_msg_t *msg,
                       const char *uid)
{
    char err[256];
    Quarry__Ready *r =
        (Quarry__Ready *)qr_msg_decode(msg, &quarry__ready__descriptor, err, sizeof err);
    if (!r) {
        s_disconnect_peer(self, ident, idlen, err);
        return;
    }
    const char *bad = NULL;
    uint32_t kinds = 0;
    for (size_t i = 0; i < r->n_runtimes; i++) {
        int k = qr_sched_kind(r->runtimes[i]);
        if (k >= 0)
            kinds |= 1u << k;
    }
    if (!s_name_ok(r->name))
        bad = "READY: worker name must be 1-127 printable characters";
    else if (!s_name_ok(r->operator_) || strncmp(r->operator_, "system:", 7) == 0)
        bad = "READY: operator must be 1-127 printable characters, not system:*";
    else if (r->slots < 1 || r->slots > 4096)
        bad = "READY: slots must be 1-4096";
    else if (!kinds)
        bad = "READY: no runtime this broker knows (ai.gemm, ai.infer, zk.groth16)";
    char kwhy[192] = "";
    if (!bad && !self->cfg.insecure) {
        /* the key decides whom the work pays, and who may use the name */
        s_key_t *k = uid ? qr_hmap_get(self->keys, uid, strlen(uid)) : NULL;
        s_worker_t *named = qr_hmap_get(self->workers_by_name, r->name, strlen(r->name));
        if (k && k->role == S_ROLE_CLIENT)
            bad = "READY: this key is a client's, not an operator's";
        else if (k && strcmp(k->acct->name, r->operator_) != 0) {
            snprintf(kwhy, sizeof kwhy, "READY: this key belongs to operator %.64s",
                     k->acct->name);
            bad = kwhy;
        } else if (!k && !self->cfg.open_registration)
            bad = "READY: this key is not registered";
        else if (named && named->key[0] && uid && strcmp(named->key, uid) != 0)
            bad = "READY: this worker name is registered with another key";
    }
    if (bad) {
        qr_log(QR_LOG_WARN, "worker refused", "reason=\"%s\"", bad);
        s_disconnect_peer(self, ident, idlen, bad);
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return;
    }
    s_account_t *op = s_account_get(self, r->operator_, QR_ACCT_OPERATOR);
    s_worker_t *w = qr_hmap_get(self->workers_by_name, r->name, strlen(r->name));
    if (!op) {
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return;
    }
    if (!self->cfg.insecure && uid && !qr_hmap_get(self->keys, uid, strlen(uid)) &&
        s_key_bind(self, uid, op, S_ROLE_OPERATOR))
        qr_db_set_key(self->db, uid, op->id, "operator"); /* open registration */
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w) {
            protobuf_c_message_free_unpacked(&r->base, NULL);
            return;
        }
        w->id = ++self->next_worker;
        snprintf(w->name, sizeof w->name, "%s", r->name);
        w->sw.id = w->id;
        w->sw.reputation = 100;
        w->sw.owner = w;
        qr_hmap_put_u64(self->workers_by_id, w->id, w);
        qr_hmap_put(self->workers_by_name, w->name, strlen(w->name), w);
    }
    if (w->online) {
        /* a reconnect under a new identity: keep the jobs it says it holds */
        qr_hmap_del(self->workers_by_ident, w->ident, w->idlen);
        for (size_t i = w->njobs; i-- > 0;) {
            s_job_t *j = w->jobs[i];
            bool held = false;
            for (size_t k = 0; k < r->n_running; k++)
                held |= r->running[k] == j->row.id;
            if (!held)
                s_requeue(self, j, true, "worker reconnected without the job");
        }
    }
    w->op = op;
    snprintf(w->key, sizeof w->key, "%s", uid ? uid : "");
    s_has_reset(w, r->input_cache_mb); /* it starts from an empty cache too */
    s_unhold_all(self, w);
    w->idlen = idlen > S_IDENT_MAX ? S_IDENT_MAX : idlen;
    memcpy(w->ident, ident, w->idlen);
    qr_hmap_put(self->workers_by_ident, w->ident, w->idlen, w);
    w->online = true;
    w->slots = r->slots;
    w->sw.ask = r->ask_price;
    w->sw.kinds = kinds;
    w->sw.slots = r->slots;
    w->sw.max_units = (uint64_t)self->cfg.prefetch_units;
    w->sw.capacity = s_capacity(self, w);
    w->sw.busy = (uint32_t)w->njobs;
    w->sw.units = 0;
    for (size_t i = 0; i < w->njobs; i++)
        w->sw.units += w->jobs[i]->sj.units;
    w->sw.has_gpu = false;
    w->sw.gpu_mem_mb = w->sw.mem_mb = 0;
    w->cpu_cores = w->gpus = 0;
    char devjson[1024];
    size_t dj = (size_t)snprintf(devjson, sizeof devjson, "[");
    for (size_t i = 0; i < r->n_devices; i++) {
        Quarry__Device *d = r->devices[i];
        bool gpu = d->type && strcmp(d->type, "gpu") == 0;
        if (gpu) {
            w->sw.has_gpu = true;
            w->gpus++;
            if (d->mem_mb > w->sw.gpu_mem_mb)
                w->sw.gpu_mem_mb = d->mem_mb;
        } else {
            w->cpu_cores += d->cores;
            w->sw.mem_mb += d->mem_mb;
        }
        if (dj < sizeof devjson - 200) {
            char model[64];
            size_t m = 0;
            for (const char *p = d->model ? d->model : ""; *p && m < sizeof model - 1; p++)
                if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
                    model[m++] = *p;
            model[m] = '\0';
            dj += (size_t)snprintf(devjson + dj, sizeof devjson - dj,
                                   "%s{\"type\":\"%s\",\"model\":\"%s\",\"mem_mb\":%" PRIu64
                                   ",\"cores\":%u}",
                                   i ? "," : "", gpu ? "gpu" : "cpu", model, d->mem_mb, d->cores);
        }
    }
    snprintf(devjson + dj, sizeof devjson - dj, "]");
    char runtimes[256] = "";
    for (int k = 0; k < QR_SCHED_KINDS; k++)
        if (kinds & (1u << k)) {
            size_t l = strlen(runtimes);
            snprintf(runtimes + l, sizeof runtimes - l, "%s%s", l ? "," : "", qr_sched_kind_name(k));
        }
    int64_t now = qr_clock_ms();
    w->expiry = now + self->cfg.heartbeat_ms * self->cfg.liveness;
    if (w->sw.registered)
        qr_sched_update_worker(self->sched, &w->sw);
    else
        qr_sched_add_worker(self->sched, &w->sw);
    qr_sched_unpark(self->sched);
    for (size_t i = 0; i < r->n_artifacts && i < 4096; i++)
        s_hold(self, w, r->artifacts[i]);
    qr_db_add_worker(self->db, w->id, w->name, op->id, devjson, runtimes, w->sw.ask, w->slots);
    qr_db_worker_state(self->db, w->id, "online", w->sw.reputation, w->jobs_done);
    Quarry__ReadyAck ack = QUARRY__READY_ACK__INIT;
    ack.worker_id = w->id;
    ack.heartbeat_ms = (uint32_t)self->cfg.heartbeat_ms;
    ack.liveness = (uint32_t)self->cfg.liveness;
    s_worker_send(self, w, QR_WCMD_READY | QR_CMD_REPLY, &ack.base, NULL, 0);
    qr_log(QR_LOG_INFO, "worker ready",
           "worker=%" PRIu64 " name=%s operator=%s slots=%u ask=%" PRIu64 " gpus=%u", w->id,
           w->name, op->name, w->slots, w->sw.ask, w->gpus);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* The job a worker reports on, if it holds it; otherwise answers an error. */
static s_job_t *s_held_job(qr_broker_t *self, s_worker_t *w, uint64_t job_id)
{
    s_job_t *j = qr_hmap_get_u64(self->jobs, job_id);
    if (j && j->worker == w &&
        (j->row.state == QR_JOB_ASSIGNED || j->row.state == QR_JOB_RUNNING))
        return j;
    char msg[160];
    /* a job that ended meanwhile (cancelled, expired, taken back) raced the
     * report; anything else is a report about someone else's job */
    bool raced = j && j->row.worker_id == w->id;
    snprintf(msg, sizeof msg, "job %" PRIu64 " is %s", job_id,
             raced ? "no longer assigned to this worker" : "not assigned to this worker");
    Quarry__Error e = QUARRY__ERROR__INIT;
    e.job_id = job_id;
    e.code = raced ? QR_ESTATE : QR_EPERM;
    e.message = msg;
    s_worker_send(self, w, QR_CMD_ERROR, &e.base, NULL, 0);
    qr_log(raced ? QR_LOG_DEBUG : QR_LOG_WARN, "report for a job the worker does not hold",
           "worker=%" PRIu64 " job=%" PRIu64, w->id, job_id);
    if (!raced) {
        /* reports about other workers' jobs count against the reporter: a
         * flood of them takes it below min-reputation and out of matching */
        self->stats.foreign_reports++;
        s_reputation(self, w, -5);
    }
    return NULL;
}

static void s_settle(qr_broker_t *self, s_job_t *j, s_worker_t *w, const void *c, size_t clen)
{
    s_account_t *client = qr_hmap_get_u64(self->accounts, j->row.client_id);
    uint64_t units = j->sj.units;
    uint64_t gross = w->sw.ask && units > j->row.max_price / w->sw.ask ? j->row.max_price
                                                                       : w->sw.ask * units;
    if (gross > j->row.max_price)
        gross = j->row.max_price;
    uint64_t fee = (uint64_t)((unsigned __int128)gross * (uint64_t)self->cfg.fee_bps / 10000);
    uint64_t txn = ++self->next_txn;
    /* one transaction of up to four legs: the whole reservation leaves
     * reserved; gross splits into payment and fee; the rest goes back */
    s_leg(self, txn, j->row.id, "settle", client, QR_BUCKET_RESERVED, -(int64_t)j->row.max_price);
    s_leg(self, txn, j->row.id, "payment", w->op, QR_BUCKET_AVAILABLE, (int64_t)(gross - fee));
    s_leg(self, txn, j->row.id, "fee", self->fees, QR_BUCKET_AVAILABLE, (int64_t)fee);
    s_leg(self, txn, j->row.id, "release", client, QR_BUCKET_AVAILABLE,
          (int64_t)(j->row.max_price - gross));
    j->row.units = units;
    j->row.price = gross;
    j->row.fee = fee;
    self->stats.ended[QR_JOB_SETTLED]++;
    if (client->live)
        client->live--;
    self->stats.paid += gross;
    self->stats.fees += fee;
    if (j->row.state == QR_JOB_ASSIGNED)
        s_job_event(self, j, QR_JOB_RUNNING, NULL);
    s_job_event(self, j, QR_JOB_DONE, NULL);
    s_job_event(self, j, QR_JOB_VERIFIED, NULL);
    s_job_event(self, j, QR_JOB_SETTLED, "");
    j->result = s_blob_get(self, c, clen, (const uint8_t *)c + clen, 0);
    if (j->result)
        j->row.result_blob = j->result->id; /* written with the settled row */
    s_job_commit_row(self, j);
    qr_db_add_settlement(self->db, j->row.id, w->id, w->op->id, client->id, units, gross, fee,
                         qr_wall_ms());
    w->jobs_done++;
    w->earned += (int64_t)(gross - fee);
    w->dirty = true;
    s_reputation(self, w, +1);
    s_worker_drop_job(self, j);
}

/* Checks an ai.infer result: frame 0 the output (rows x output width),
 * frame 1 every earlier layer's output, in layer order.  Dense layers pass
 * Freivalds' test with the model's secret probes, every other layer is
 * re-applied here (qr_model_check).  Returns 0 when it passes, 1 (reason in
 * bad) when not. */
static int s_check_infer(qr_broker_t *self, s_job_t *j, const qr_msg_t *msg, char *bad,
                         size_t badlen)
{
    int code;
    char why[256];
    s_model_t *m = s_job_model(self, &j->row, &code, why, sizeof why);
    if (!m) {
        snprintf(bad, badlen, "model unavailable to check it (%s)", why);
        return 1;
    }
    const qr_model_t *md = m->model;
    uint32_t L = qr_model_layers(md), rows = j->row.m;
    size_t olen = 0, ilen = 0, want_i = 0;
    const uint8_t *out = qr_msg_payload(msg, 0, &olen);
    const uint8_t *inter = qr_msg_payload(msg, 1, &ilen);
    for (uint32_t i = 0; i + 1 < L; i++)
        want_i += (size_t)rows * qr_model_layer_width(md, i) * sizeof(float);
    size_t want_o = (size_t)rows * qr_model_output_width(md) * sizeof(float);
    if (qr_msg_npayload(msg) != 2 || olen != want_o || ilen != want_i) {
        snprintf(bad, badlen, "expected 2 frames of %zu and %zu bytes (output, layers), got %d "
                 "(%zu, %zu)", want_o, want_i, qr_msg_npayload(msg), olen, ilen);
        return 1;
    }
    /* frames are normally float-aligned; copy the rare one that is not */
    float *copy = NULL;
    const float **layers = calloc(L, sizeof *layers);
    if (!layers)
        goto oom;
    if ((uintptr_t)out % sizeof(float) || (uintptr_t)inter % sizeof(float)) {
        if (!(copy = malloc(want_o + want_i + 1)))
            goto oom;
        memcpy(copy, inter, want_i);
        memcpy((uint8_t *)copy + want_i, out, want_o);
        inter = (const uint8_t *)copy;
        out = (const uint8_t *)copy + want_i;
    }
    size_t off = 0;
    for (uint32_t i = 0; i + 1 < L; i++) {
        layers[i] = (const float *)(inter + off);
        off += (size_t)rows * qr_model_layer_width(md, i) * sizeof(float);
    }
    layers[L - 1] = (const float *)out;
    int64_t now = qr_clock_ms();
    if (!m->probes || m->probe_uses >= S_PROBE_USES || now - m->probes_ms > S_PROBE_MS) {
        uint64_t seed;
        qr_model_probes_destroy(&m->probes);
        if (qr_random_bytes(&seed, sizeof seed) != 0 ||
            !(m->probes = qr_model_probes_new(md, (int)self->cfg.verify_rounds, seed)))
            goto oom;
        m->probes_ms = now;
        m->probe_uses = 0;
    }
    m->probe_uses++;
    int badl = -1;
    char err[320] = "";
    /* over the CPUs: a large result checks in a fraction of the time the
     * loop would otherwise stand still */
    int rc = qr_model_check_mt(md, (const float *)j->row.input, layers, rows, m->probes,
                               self->check_threads, &badl, err, sizeof err);
    if (rc != 0) {
        /* the numbers stay in the broker's log: a deviation and its bound
         * say something about the secret probes, so the worker and the
         * client hear only which layer and row failed */
        qr_log(QR_LOG_WARN, "ai.infer check failed", "job=%" PRIu64 " layer=%d reason=\"%s\"",
               j->row.id, badl, rc < 0 ? "the check could not run" : err);
        char *cut = strstr(err, ": row ");
        if (cut && (cut = strchr(cut + 6, ':')))
            *cut = '\0';
        snprintf(bad, badlen, "%s",
                 rc < 0 ? "the check could not run on this result" : err);
        /* and a failed check draws new probes: whatever the attempt taught
         * its author about these is worth nothing next time */
        m->probe_uses = S_PROBE_USES;
    }
    free(layers);
    free(copy);
    return rc == 0 ? 0 : 1;
oom:
    free(layers);
    free(copy);
    snprintf(bad, badlen, "out of memory checking it");
    return 1;
}

/* Checks a zk.groth16 result: the proof (pi_a 64 bytes, pi_b 128, pi_c 64,
 * big-endian as Ethereum's precompiles take them) then the public signals
 * (32 bytes each, big-endian), which must be the witness's own; the proof
 * must pass the pairing check against the key's verification key.  Returns
 * 0 when it passes, 1 (reason in bad) when not. */
static int s_check_zk(qr_broker_t *self, s_job_t *j, const uint8_t *c, size_t clen, char *bad,
                      size_t badlen)
{
    int code;
    char why[320];
    s_zkey_t *z = s_zkey_get(self, j->row.model, &code, why, sizeof why);
    if (!z) {
        snprintf(bad, badlen, "proving key unavailable to check it (%.200s)", why);
        return 1;
    }
    size_t want = 256 + (size_t)z->n_public * 32;
    if (!c || clen != want) {
        snprintf(bad, badlen, "a proof and %u public signals are %zu bytes, got %zu", z->n_public,
                 want, clen);
        return 1;
    }
    qr_g16_proof_t p;
    if (qr_g1_from_be64(&p.a, c) != QR_ZK_OK || qr_g2_from_be128(&p.b, c + 64) != QR_ZK_OK ||
        qr_g1_from_be64(&p.c, c + 192) != QR_ZK_OK) {
        snprintf(bad, badlen, "the proof holds a point that is not on its curve");
        return 1;
    }
    qr_wtns_t *wt = s_job_wtns(j, why, sizeof why);
    qr_fr_t *pub = calloc(z->n_public ? z->n_public : 1, sizeof *pub);
    int rc = 1;
    if (!wt || !pub) {
        snprintf(bad, badlen, "the check could not run on this result");
        goto done;
    }
    for (uint32_t i = 0; i < z->n_public; i++) {
        uint8_t be[32];
        qr_fr_to_be32(be, &wt->values[1 + i]);
        if (memcmp(be, c + 256 + (size_t)i * 32, 32) != 0) {
            snprintf(bad, badlen, "public signal %u is not the witness's", i);
            goto done;
        }
        pub[i] = wt->values[1 + i];
    }
    if (!qr_g16_verify(z->vk, pub, z->n_public, &p)) {
        snprintf(bad, badlen, "the proof fails the pairing check");
        goto done;
    }
    rc = 0;
done:
    free(pub);
    qr_wtns_destroy(&wt);
    return rc;
}

/* Freivalds' check of an ai.gemm result C (aligned floats; the input's B
 * starts at byte ab).  Results of jobs sharing an input blob share its
 * probe: secret vectors drawn once and replaced after S_PROBE_USES checks
 * or S_PROBE_MS, as a model's are, so a check costs C r alone.  Falls back
 * to a full check with fresh vectors when no probe applies.  0 pass, 1 fail,
 * -1 out of memory or no randomness. */
static int s_check_gemm(qr_broker_t *self, s_job_t *j, const float *C, size_t ab, double *worst)
{
    const float *A = (const float *)j->row.input, *B = (const float *)(j->row.input + ab);
    int rounds = (int)self->cfg.verify_rounds;
    s_blob_t *in = j->input;
    int64_t now = qr_clock_ms();
    uint64_t seed;
    if (in && (!qr_gemm_probe_fits(in->probe, j->row.m, j->row.n, j->row.k, rounds) ||
               in->probe_uses >= S_PROBE_USES || now - in->probe_ms > S_PROBE_MS)) {
        qr_gemm_probe_destroy(&in->probe);
        if (qr_random_bytes(&seed, sizeof seed) == 0)
            in->probe = qr_gemm_probe_new(A, B, j->row.m, j->row.n, j->row.k, rounds, seed);
        in->probe_uses = 0;
        in->probe_ms = now;
    }
    if (in && in->probe) {
        in->probe_uses++;
        int v = qr_gemm_probe_check(in->probe, C, worst);
        if (v >= 0)
            return v;
    }
    if (qr_random_bytes(&seed, sizeof seed) != 0)
        return -1;
    return qr_gemm_verify(A, B, C, j->row.m, j->row.n, j->row.k, rounds, seed, worst);
}

static void s_on_result(qr_broker_t *self, s_worker_t *w, const qr_msg_t *msg)
{
    char err[256];
    Quarry__Result *r =
        (Quarry__Result *)qr_msg_decode(msg, &quarry__result__descriptor, err, sizeof err);
    if (!r) {
        qr_log(QR_LOG_WARN, "bad RESULT", "worker=%" PRIu64 " reason=\"%s\"", w->id, err);
        return;
    }
    s_job_t *j = s_held_job(self, w, r->job_id);
    if (!j) {
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return;
    }
    size_t ab, bb, cb, clen = 0;
    const void *c = qr_msg_payload(msg, 0, &clen);
    double worst = 0;
    int verdict = 1;
    char ibad[320] = "";
    if (s_is_zk(&j->row)) {
        verdict = s_check_zk(self, j, c, clen, ibad, sizeof ibad);
        cb = clen;
    } else if (s_is_infer(&j->row)) {
        verdict = s_check_infer(self, j, msg, ibad, sizeof ibad);
        cb = (size_t)j->row.m * j->row.n * sizeof(float);
    } else if (qr_gemm_sizes(j->row.m, j->row.n, j->row.k, &ab, &bb, &cb) < 0)
        verdict = 1;
    else if (c && clen == cb && ((uintptr_t)c % sizeof(float)) == 0)
        verdict = s_check_gemm(self, j, c, ab, &worst);
    else if (c && clen == cb) {
        /* ZeroMQ frames are normally aligned; copy when one is not */
        float *tmp = malloc(clen);
        if (tmp) {
            memcpy(tmp, c, clen);
            verdict = s_check_gemm(self, j, tmp, ab, &worst);
        }
        free(tmp);
    }
    if (verdict == 0) {
        s_settle(self, j, w, c, clen);
        qr_log(QR_LOG_DEBUG, "job settled",
               "job=%" PRIu64 " worker=%" PRIu64 " price=%" PRIu64 " fee=%" PRIu64, j->row.id,
               w->id, j->row.price, j->row.fee);
    } else {
        char detail[256];
        if (ibad[0])
            snprintf(detail, sizeof detail,
                     "result from worker %" PRIu64 " failed verification: %.190s", w->id, ibad);
        else if (clen != cb)
            snprintf(detail, sizeof detail,
                     "result from worker %" PRIu64 " has %zu bytes, expected %zu", w->id, clen, cb);
        else
            snprintf(detail, sizeof detail,
                     "result from worker %" PRIu64 " failed verification (deviation %.3g x bound)",
                     w->id, worst);
        qr_log(QR_LOG_WARN, "result rejected", "job=%" PRIu64 " worker=%" PRIu64 " reason=\"%s\"",
               j->row.id, w->id, detail);
        Quarry__Error e = QUARRY__ERROR__INIT;
        e.job_id = j->row.id;
        e.code = QR_EVERIFY;
        e.message = detail;
        s_worker_send(self, w, QR_CMD_ERROR, &e.base, NULL, 0);
        s_reputation(self, w, -10);
        qr_sched_avoid(&j->sj, w->id);
        self->stats.verify_failures++;
        if (j->row.state == QR_JOB_ASSIGNED)
            s_job_event(self, j, QR_JOB_RUNNING, NULL);
        s_job_event(self, j, QR_JOB_DONE, detail);
        s_requeue(self, j, true, detail);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void s_on_fail(qr_broker_t *self, s_worker_t *w, const qr_msg_t *msg)
{
    char err[256];
    Quarry__Fail *f = (Quarry__Fail *)qr_msg_decode(msg, &quarry__fail__descriptor, err, sizeof err);
    if (!f)
        return;
    s_job_t *j = s_held_job(self, w, f->job_id);
    if (j) {
        char detail[256];
        snprintf(detail, sizeof detail, "worker %" PRIu64 " failed: %s", w->id,
                 f->message && *f->message ? f->message : qr_strerror(f->code));
        /* a draining worker's give-back, or an input it no longer holds, is
         * not the job's fault; bad input is caught at submit, so any other
         * failure counts as an attempt */
        bool missing = f->code == QR_ENOTFOUND && j->input;
        if (missing)
            s_has_forget(w, j->input->id);
        s_requeue(self, j, f->code != QR_ECANCELLED && !missing, detail);
    }
    protobuf_c_message_free_unpacked(&f->base, NULL);
}

static void s_on_progress(qr_broker_t *self, s_worker_t *w, const qr_msg_t *msg)
{
    char err[256];
    Quarry__Progress *p =
        (Quarry__Progress *)qr_msg_decode(msg, &quarry__progress__descriptor, err, sizeof err);
    if (!p)
        return;
    s_job_t *j = s_held_job(self, w, p->job_id);
    if (j) {
        j->progress = p->per_mille > 1000 ? 1000 : p->per_mille;
        if (j->row.state == QR_JOB_ASSIGNED) {
            s_job_event(self, j, QR_JOB_RUNNING, NULL);
            s_job_commit_row(self, j);
        }
        s_mark_dirty(self, j);
    }
    protobuf_c_message_free_unpacked(&p->base, NULL);
}

/* Largest chunk one FETCH gets: a worker asks for less and keeps several
 * in flight. */
#define S_CHUNK_MAX (4u << 20)

static void s_on_fetch(qr_broker_t *self, s_worker_t *w, const qr_msg_t *msg)
{
    char err[256];
    Quarry__Fetch *f = (Quarry__Fetch *)qr_msg_decode(msg, &quarry__fetch__descriptor, err, sizeof err);
    if (!f) {
        qr_log(QR_LOG_WARN, "bad FETCH", "worker=%" PRIu64 " reason=\"%s\"", w->id, err);
        return;
    }
    Quarry__Chunk c = QUARRY__CHUNK__INIT;
    c.sha256 = f->sha256;
    c.offset = f->offset;
    int64_t size = qr_store_size(self->store, f->sha256);
    uint8_t *buf = NULL;
    int64_t got = 0;
    if (size < 0)
        c.code = QR_ENOTFOUND;
    else if (f->offset > (uint64_t)size || f->length == 0)
        c.code = QR_EINVAL;
    else {
        size_t len = f->length > S_CHUNK_MAX ? S_CHUNK_MAX : f->length;
        if ((uint64_t)len > (uint64_t)size - f->offset)
            len = (size_t)((uint64_t)size - f->offset);
        buf = malloc(len ? len : 1);
        got = buf ? qr_store_read(self->store, f->sha256, f->offset, buf, len) : -1;
        if (got != (int64_t)len)
            c.code = buf ? QR_EIO : QR_ENOMEM;
    }
    c.size = size < 0 ? 0 : (uint64_t)size;
    if (c.code) {
        free(buf);
        s_worker_send(self, w, QR_WCMD_CHUNK, &c.base, NULL, 0);
    } else {
        qr_payload_t p = {buf, (size_t)got};
        w->hb_at = qr_clock_ms() + self->cfg.heartbeat_ms;
        s_queue(self, self->workers, QR_PROTO_WORKER, w->ident, w->idlen, QR_WCMD_CHUNK, &c.base,
                0, &p, 1, buf);
        self->stats.fetch_bytes += (uint64_t)got;
    }
    protobuf_c_message_free_unpacked(&f->base, NULL);
}

static void s_on_holdings(qr_broker_t *self, s_worker_t *w, const qr_msg_t *msg)
{
    char err[256];
    Quarry__Holdings *h =
        (Quarry__Holdings *)qr_msg_decode(msg, &quarry__holdings__descriptor, err, sizeof err);
    if (!h) {
        qr_log(QR_LOG_WARN, "bad HOLDINGS", "worker=%" PRIu64 " reason=\"%s\"", w->id, err);
        return;
    }
    for (size_t i = 0; i < h->n_dropped; i++)
        s_unhold(self, w, h->dropped[i]);
    for (size_t i = 0; i < h->n_added; i++)
        s_hold(self, w, h->added[i]);
    protobuf_c_message_free_unpacked(&h->base, NULL);
}

static void s_worker_message(qr_broker_t *self)
{
    qr_msg_t msg;
    char err[256];
    int rc = qr_wire_recv(self->workers, true, QR_PROTO_WORKER, ZMQ_DONTWAIT, &msg, err, sizeof err);
    size_t idlen = 0;
    const void *ident = qr_msg_identity(&msg, &idlen);
    if (rc == QR_EPROTO) {
        qr_log(QR_LOG_WARN, "bad worker frame", "reason=\"%s\"", err);
        if (ident)
            s_disconnect_peer(self, ident, idlen, err);
    }
    if (rc != QR_OK) {
        qr_msg_close(&msg);
        return;
    }
    s_worker_t *w = qr_hmap_get(self->workers_by_ident, ident, idlen);
    if (msg.cmd == QR_WCMD_READY) {
        s_on_ready(self, ident, idlen, &msg, s_user_id(&msg));
        qr_msg_close(&msg);
        return;
    }
    if (!w) {
        /* unknown peer, e.g. after a broker restart: make it say READY */
        if (msg.cmd != QR_WCMD_DISCONNECT)
            s_disconnect_peer(self, ident, idlen, "unknown worker; send READY");
        qr_msg_close(&msg);
        return;
    }
    w->expiry = qr_clock_ms() + self->cfg.heartbeat_ms * self->cfg.liveness;
    switch (msg.cmd) {
    case QR_WCMD_HEARTBEAT:
        break;
    case QR_WCMD_RESULT:
        s_on_result(self, w, &msg);
        break;
    case QR_WCMD_FAIL:
        s_on_fail(self, w, &msg);
        break;
    case QR_WCMD_PROGRESS:
        s_on_progress(self, w, &msg);
        break;
    case QR_WCMD_FETCH:
        s_on_fetch(self, w, &msg);
        break;
    case QR_WCMD_HOLDINGS:
        s_on_holdings(self, w, &msg);
        break;
    case QR_WCMD_DISCONNECT:
        s_worker_lost(self, w, "disconnected", false);
        break;
    case QR_CMD_ERROR: {
        /* the worker could not read something we sent (it answers what it can with FAIL) */
        char why[128];
        Quarry__Error *e =
            (Quarry__Error *)qr_msg_decode(&msg, &quarry__error__descriptor, why, sizeof why);
        qr_log(QR_LOG_WARN, "worker reported an error",
               "worker=%" PRIu64 " code=%d message=\"%.200s\"", w->id, e ? e->code : -1,
               e && e->message ? e->message : why);
        if (e)
            protobuf_c_message_free_unpacked(&e->base, NULL);
        break;
    }
    default: {
        char why[64];
        snprintf(why, sizeof why, "unknown worker command 0x%02x", msg.cmd);
        Quarry__Error e = QUARRY__ERROR__INIT;
        e.code = QR_EPROTO;
        e.message = why;
        s_worker_send(self, w, QR_CMD_ERROR, &e.base, NULL, 0);
    }
    }
    qr_msg_close(&msg);
}

/* ---- clients ---- */

static s_job_t *s_client_job(qr_broker_t *self, const s_client_t *c, uint64_t id)
{
    s_job_t *j = qr_hmap_get_u64(self->jobs, id);
    return j && j->row.client_id == c->acct->id ? j : NULL;
}

/* True when the two fp32 input frames hold no inf or NaN. */
static bool s_inputs_finite(const void *pa, size_t la, const void *pb, size_t lb)
{
    float probe;
    if (((uintptr_t)pa % sizeof probe) == 0 && ((uintptr_t)pb % sizeof probe) == 0)
        return qr_floats_finite(pa, la / sizeof probe) && qr_floats_finite(pb, lb / sizeof probe);
    for (size_t i = 0; i < la + lb; i += sizeof probe) {
        memcpy(&probe, i < la ? (const uint8_t *)pa + i : (const uint8_t *)pb + (i - la),
               sizeof probe);
        if (!isfinite(probe))
            return false;
    }
    return true;
}

/* A submitted job's input bytes: a then b (b may be a + la with lb 0). */
typedef struct {
    const uint8_t *a, *b;
    size_t la, lb;
    s_inref_t *ref; /* the artifact JobSpec.input named; NULL: payload frames */
} s_input_t;

/* The job's input: its payload frames, or the artifact JobSpec.input names,
 * which must be need bytes (0: any size up to the limit). */
static int s_submit_input(qr_broker_t *self, const Quarry__JobSpec *sp, const qr_msg_t *msg,
                          size_t need, s_input_t *in, char *why, size_t whylen)
{
    memset(in, 0, sizeof *in);
    if (!sp->input || !*sp->input) {
        in->a = qr_msg_payload(msg, 0, &in->la);
        if (qr_msg_npayload(msg) > 1)
            in->b = qr_msg_payload(msg, 1, &in->lb);
        else
            in->b = in->a ? in->a + in->la : NULL;
        return QR_OK;
    }
    if (qr_msg_npayload(msg) != 0) {
        snprintf(why, whylen,
                 "a SUBMIT that names its input artifact carries no input frames, "
                 "got %d",
                 qr_msg_npayload(msg));
        return QR_EINVAL;
    }
    int code;
    if (!(in->ref = s_inref_get(self, sp->input, need, &code, why, whylen)))
        return code;
    in->a = in->ref->blob->data;
    in->la = in->ref->blob->len;
    in->b = in->a + in->la;
    return QR_OK;
}

static int s_validate_submit(qr_broker_t *self, const Quarry__Submit *s, const qr_msg_t *msg,
                             s_input_t *in, char *why, size_t whylen)
{
    const Quarry__JobSpec *sp = s->spec;
    if (!sp) {
        snprintf(why, whylen, "SUBMIT has no job spec");
        return QR_EINVAL;
    }
    if (qr_sched_kind(sp->kind) < 0) {
        snprintf(why, whylen,
                 "unknown job kind '%.64s' (this broker runs: ai.gemm, ai.infer, zk.groth16)",
                 sp->kind ? sp->kind : "");
        return QR_EKIND;
    }
    if (sp->max_price > INT64_MAX / 4) {
        snprintf(why, whylen, "max_price must be at most %" PRId64, INT64_MAX / 4);
        return QR_EINVAL;
    }
    if (sp->timeout_ms < 0) {
        snprintf(why, whylen, "timeout_ms must not be negative");
        return QR_EINVAL;
    }
    if (s->watch > 2) {
        snprintf(why, whylen, "watch must be 0 (no), 1 (every change) or 2 (the end), got %u",
                 s->watch);
        return QR_EINVAL;
    }
    if (s->idem_key && strlen(s->idem_key) > 127) {
        snprintf(why, whylen, "idempotency key longer than 127 bytes");
        return QR_EINVAL;
    }
    if (strcmp(sp->kind, "zk.groth16") == 0) {
        int code;
        s_zkey_t *z = s_zkey_get(self, sp->zkey, &code, why, whylen);
        if (!z)
            return code;
        int rc = s_submit_input(self, sp, msg, 0, in, why, whylen);
        if (rc != QR_OK)
            return rc;
        size_t la = in->la;
        const void *w = in->a;
        if (!in->ref && (qr_msg_npayload(msg) != 1 || !la)) {
            snprintf(why, whylen, "zk.groth16 needs 1 input frame: the witness (.wtns), got %d",
                     qr_msg_npayload(msg));
            return QR_EINVAL;
        }
        if (la > (size_t)self->cfg.max_input_bytes) {
            snprintf(why, whylen, "witness of %zu bytes is over the limit of %" PRId64 " bytes",
                     la, self->cfg.max_input_bytes);
            return QR_ETOOBIG;
        }
        char err[256];
        qr_wtns_t *wt = qr_wtns_load_mem("witness", w, la, err, sizeof err);
        if (!wt) {
            snprintf(why, whylen, "bad witness: %.200s", err);
            return QR_EINVAL;
        }
        uint32_t n = wt->n;
        qr_wtns_destroy(&wt);
        if (n != z->n_vars) {
            snprintf(why, whylen, "the witness has %u values, the proving key %.12s... needs %u",
                     n, z->sha, z->n_vars);
            return QR_EINVAL;
        }
        return QR_OK;
    }
    if (strcmp(sp->kind, "ai.infer") == 0) {
        int code;
        s_model_t *m = s_model_get(self, sp->weights, sp->graph, &code, why, whylen);
        if (!m)
            return code;
        uint32_t width = qr_model_input_width(m->model);
        if (sp->m < 1 || sp->m > QR_MODEL_MAX_ROWS) {
            snprintf(why, whylen, "ai.infer rows (m) must be 1..%u, got %u", QR_MODEL_MAX_ROWS,
                     sp->m);
            return QR_EINVAL;
        }
        size_t ib = (size_t)sp->m * width * sizeof(float), acts = 0;
        for (uint32_t i = 0; i < qr_model_layers(m->model); i++)
            acts += (size_t)sp->m * qr_model_layer_width(m->model, i) * sizeof(float);
        if (ib > (size_t)self->cfg.max_input_bytes || acts > (size_t)self->cfg.max_input_bytes) {
            snprintf(why, whylen, "ai.infer input of %zu bytes (activations %zu) is over the limit "
                     "of %" PRId64 " bytes; send fewer rows", ib, acts, self->cfg.max_input_bytes);
            return QR_ETOOBIG;
        }
        int rc = s_submit_input(self, sp, msg, ib, in, why, whylen);
        if (rc != QR_OK)
            return rc;
        if (!in->ref && (qr_msg_npayload(msg) != 1 || in->la != ib)) {
            snprintf(why, whylen,
                     "ai.infer needs 1 input frame of %u rows x %u floats (%zu bytes), got %d "
                     "frames (%zu bytes)",
                     sp->m, width, ib, qr_msg_npayload(msg), in->la);
            return QR_EINVAL;
        }
        qr_model_layer_t l0;
        const uint8_t *px = in->a;
        if (qr_model_layer(m->model, 0, &l0) == 0 && l0.op == QR_MODEL_EMBEDDING) {
            /* token ids: integral floats in [0, vocab), or the worker would
             * fail the job after it was paid for in attempts */
            for (size_t r = 0; r < sp->m; r++) {
                float id;
                memcpy(&id, px + r * sizeof id, sizeof id);
                if (!(id >= 0.0f && id < (float)l0.vocab) || id != floorf(id)) {
                    snprintf(why, whylen, "ai.infer row %zu: token id %g is not an integer in "
                             "[0, %u)", r, (double)id, l0.vocab);
                    return QR_EINVAL;
                }
            }
        }
        return QR_OK;
    }
    size_t ab, bb, cb;
    if (qr_gemm_sizes(sp->m, sp->n, sp->k, &ab, &bb, &cb) < 0) {
        snprintf(why, whylen, "ai.gemm dimensions m=%u n=%u k=%u must be 1..%u", sp->m, sp->n,
                 sp->k, QR_GEMM_MAX_DIM);
        return QR_EINVAL;
    }
    if (ab + bb > (size_t)self->cfg.max_input_bytes || cb > (size_t)self->cfg.max_input_bytes) {
        snprintf(why, whylen, "ai.gemm input of %zu bytes (result %zu) is over the limit of %" PRId64
                 " bytes", ab + bb, cb, self->cfg.max_input_bytes);
        return QR_ETOOBIG;
    }
    int rc = s_submit_input(self, sp, msg, ab + bb, in, why, whylen);
    if (rc != QR_OK)
        return rc;
    if (in->ref) {
        /* one artifact: A then B */
        in->la = ab;
        in->lb = bb;
        in->b = in->a + ab;
        return QR_OK;
    }
    if (qr_msg_npayload(msg) != 2 || in->la != ab || in->lb != bb) {
        snprintf(why, whylen,
                 "ai.gemm needs 2 input frames of %zu and %zu bytes, got %d frames (%zu, %zu)", ab,
                 bb, qr_msg_npayload(msg), in->la, in->lb);
        return QR_EINVAL;
    }
    return QR_OK;
}

static void s_on_upload(qr_broker_t *self, s_client_t *c, const qr_msg_t *msg)
{
    char why[512];
    Quarry__Upload *u =
        (Quarry__Upload *)qr_msg_decode(msg, &quarry__upload__descriptor, why, sizeof why);
    if (!u) {
        s_client_error(self, c->ident, c->idlen, 0, 0, QR_EPROTO, why);
        return;
    }
    size_t len = 0;
    const void *data = NULL;
    if (qr_msg_npayload(msg) > 1) {
        s_client_error(self, c->ident, c->idlen, u->req_id, 0, QR_EINVAL,
                       "UPLOAD carries at most one chunk frame");
        protobuf_c_message_free_unpacked(&u->base, NULL);
        return;
    }
    if (qr_msg_npayload(msg) == 1)
        data = qr_msg_payload(msg, 0, &len);
    uint64_t have = 0;
    int rc = qr_store_put(self->store, u->sha256, u->size, u->offset, data, len, &have, why,
                          sizeof why);
    if (rc == QR_ESTATE) {
        /* out of step (a lost chunk, a broker restart): the ack says where
         * to go on from */
        rc = QR_OK;
    }
    if (rc != QR_OK) {
        qr_log(QR_LOG_WARN, "upload refused", "account=%s reason=\"%s\"", c->acct->name, why);
        s_client_error(self, c->ident, c->idlen, u->req_id, 0, rc, why);
        protobuf_c_message_free_unpacked(&u->base, NULL);
        return;
    }
    self->stats.upload_bytes += len;
    bool done = u->size && have == u->size;
    if (done && len) {
        self->stats.uploads++;
        qr_log(QR_LOG_INFO, "artifact stored", "sha256=%s bytes=%" PRIu64 " account=%s",
               u->sha256, have, c->acct->name);
    }
    Quarry__UploadAck ack = QUARRY__UPLOAD_ACK__INIT;
    ack.req_id = u->req_id;
    ack.sha256 = u->sha256;
    ack.have = have;
    ack.done = done;
    s_client_reply(self, c, QR_CMD_UPLOAD | QR_CMD_REPLY, &ack.base, u->req_id, NULL, 0, NULL);
    protobuf_c_message_free_unpacked(&u->base, NULL);
}

/* Registers client c as a watcher of j (at most 64 per job; final jobs have
 * nothing more to tell). */
static void s_watch_add(s_job_t *j, const s_client_t *c, uint64_t req_id, bool final_only)
{
    if (!qr_job_state_final(j->row.state) && j->nwatch < 64 &&
        s_grow((void **)&j->watches, &j->capwatch, j->nwatch + 1, sizeof(s_watch_t)) == 0) {
        s_watch_t *wt = &j->watches[j->nwatch++];
        wt->idlen = (uint8_t)c->idlen;
        memcpy(wt->ident, c->ident, c->idlen);
        wt->req_id = req_id;
        wt->final_only = final_only;
    }
}

static bool s_status_from_db(qr_broker_t *self, s_client_t *c, uint64_t req_id, uint64_t job_id,
                             uint8_t cmd);

static void s_on_submit(qr_broker_t *self, s_client_t *c, const qr_msg_t *msg)
{
    char why[256];
    Quarry__Submit *s =
        (Quarry__Submit *)qr_msg_decode(msg, &quarry__submit__descriptor, why, sizeof why);
    if (!s) {
        s_client_error(self, c->ident, c->idlen, 0, 0, QR_EPROTO, why);
        return;
    }
    s_input_t in;
    int rc = s_validate_submit(self, s, msg, &in, why, sizeof why);
    if (rc != QR_OK) {
        s_client_error(self, c->ident, c->idlen, s->req_id, 0, rc, why);
        protobuf_c_message_free_unpacked(&s->base, NULL);
        return;
    }
    Quarry__JobSpec *sp = s->spec;
    bool infer = strcmp(sp->kind, "ai.infer") == 0, zk = strcmp(sp->kind, "zk.groth16") == 0;
    s_zkey_t *zkey = NULL;
    if (zk) {
        int code;
        zkey = s_zkey_get(self, sp->zkey, &code, why, sizeof why); /* validated just now */
        sp->m = zkey ? zkey->n_vars : 0;
        sp->n = zkey ? zkey->n_public : 0;
        sp->k = zkey ? zkey->domain : 0;
    }
    if (infer) {
        int code;
        s_model_t *mdl = s_model_get(self, sp->weights, sp->graph, &code, why, sizeof why);
        sp->k = mdl ? qr_model_input_width(mdl->model) : 0; /* validated just now */
        sp->n = mdl ? qr_model_output_width(mdl->model) : 0;
    }
    if (sp->max_price == 0) {
        /* the client left the cap to the broker */
        int code;
        s_model_t *mdl = infer ? s_model_get(self, sp->weights, sp->graph, &code, why, sizeof why)
                               : NULL;
        uint64_t units = mdl     ? s_model_units(mdl->model, sp->m)
                         : zkey ? s_zk_units(zkey)
                                : qr_gemm_units(sp->m, sp->n, sp->k);
        uint64_t cap = (uint64_t)self->cfg.default_unit_cap;
        sp->max_price = units > (uint64_t)(INT64_MAX / 4) / cap ? (uint64_t)(INT64_MAX / 4) : units * cap;
    }
    if (s->idem_key && *s->idem_key) {
        char key[160];
        int n = snprintf(key, sizeof key, "%" PRIu64 ":%s", c->acct->id, s->idem_key);
        s_job_t *dup = qr_hmap_get(self->idem, key, (size_t)n);
        uint64_t dup_id = dup ? dup->row.id : 0;
        if (!dup) {
            /* jobs finished before a restart are only in the database */
            int rc2 = qr_db_find_idem(self->db, c->acct->id, s->idem_key, &dup_id, why, sizeof why);
            if (rc2 == QR_EDB) {
                s_client_error(self, c->ident, c->idlen, s->req_id, 0, QR_EDB, why);
                protobuf_c_message_free_unpacked(&s->base, NULL);
                return;
            }
        }
        if (dup_id) {
            Quarry__SubmitAck ack = QUARRY__SUBMIT_ACK__INIT;
            ack.req_id = s->req_id;
            ack.job_id = dup_id;
            ack.reserved = 0; /* nothing new was reserved */
            ack.duplicate = true;
            s_client_reply(self, c, QR_CMD_SUBMIT | QR_CMD_REPLY, &ack.base, s->req_id, NULL, 0,
                           NULL);
            if (s->watch && dup) {
                /* the earlier job's current state at once, then its changes */
                Quarry__JobInfo info = QUARRY__JOB_INFO__INIT;
                s_fill_info(dup, &info);
                Quarry__Event ev = QUARRY__EVENT__INIT;
                ev.req_id = s->req_id;
                ev.job = &info;
                s_client_reply(self, c, QR_CMD_EVENT, &ev.base, s->req_id, NULL, 0, NULL);
                s_watch_add(dup, c, s->req_id, s->watch == 2);
            } else if (s->watch) {
                s_status_from_db(self, c, s->req_id, dup_id, QR_CMD_WATCH); /* it has ended */
            }
            protobuf_c_message_free_unpacked(&s->base, NULL);
            return;
        }
    }
    if (self->cfg.client_quota && c->acct->live >= (uint64_t)self->cfg.client_quota) {
        snprintf(why, sizeof why,
                 "account %.64s already has %" PRIu64 " jobs queued or running, its quota; "
                 "wait for some to finish",
                 c->acct->name, c->acct->live);
        s_client_error(self, c->ident, c->idlen, s->req_id, 0, QR_ELIMIT, why);
        protobuf_c_message_free_unpacked(&s->base, NULL);
        return;
    }
    if (self->cfg.client_rate) {
        /* token bucket: client_rate submits a second, bursts of as many */
        int64_t now = qr_clock_ms();
        double rate = (double)self->cfg.client_rate;
        if (!c->acct->refill_ms)
            c->acct->tokens = rate;
        else
            c->acct->tokens += rate * (double)(now - c->acct->refill_ms) / 1000.0;
        if (c->acct->tokens > rate)
            c->acct->tokens = rate;
        c->acct->refill_ms = now;
        if (c->acct->tokens < 1.0) {
            snprintf(why, sizeof why,
                     "account %.64s is over its rate limit of %" PRId64 " submits a second",
                     c->acct->name, self->cfg.client_rate);
            s_client_error(self, c->ident, c->idlen, s->req_id, 0, QR_ELIMIT, why);
            protobuf_c_message_free_unpacked(&s->base, NULL);
            return;
        }
        c->acct->tokens -= 1.0;
    }
    if (c->acct->available < (int64_t)sp->max_price) {
        snprintf(why, sizeof why,
                 "balance %" PRId64 " is short of the job's max_price %" PRIu64
                 "; deposit first",
                 c->acct->available, sp->max_price);
        s_client_error(self, c->ident, c->idlen, s->req_id, 0, QR_EFUNDS, why);
        protobuf_c_message_free_unpacked(&s->base, NULL);
        return;
    }
    bool finite = zk || (in.ref ? in.ref->finite
                                : s_blob_find(self, in.a, in.la, in.b, in.lb) ||
                                      s_inputs_finite(in.a, in.la, in.b, in.lb));
    if (!finite) {
        /* checked once per distinct input: a stored blob passed already */
        s_client_error(self, c->ident, c->idlen, s->req_id, 0, QR_EINVAL,
                       infer ? "ai.infer input must be finite: it holds inf or NaN"
                             : "ai.gemm inputs must be finite: A or B holds inf or NaN");
        protobuf_c_message_free_unpacked(&s->base, NULL);
        return;
    }
    s_job_t *j = calloc(1, sizeof *j);
    if (j && in.ref) {
        j->input = in.ref->blob;
        j->input->refs++;
    } else if (j) {
        j->input = s_blob_get(self, in.a, in.la, in.b, in.lb);
    }
    if (!j || !j->input) {
        s_job_free(j);
        s_client_error(self, c->ident, c->idlen, s->req_id, 0, QR_ENOMEM, NULL);
        protobuf_c_message_free_unpacked(&s->base, NULL);
        return;
    }
    qr_db_job_t *r = &j->row;
    r->input = j->input->data;
    r->input_len = j->input->len;
    r->input_blob = j->input->id;
    r->id = ++self->next_job;
    r->client_id = c->acct->id;
    snprintf(r->kind, sizeof r->kind, "%s", sp->kind);
    r->m = sp->m;
    r->n = sp->n;
    r->k = sp->k;
    r->max_price = sp->max_price;
    r->need_gpu = sp->need_gpu;
    r->min_mem_mb = sp->min_mem_mb;
    r->priority = sp->priority;
    r->max_attempts = sp->max_attempts ? sp->max_attempts : (uint32_t)self->cfg.max_attempts;
    if (infer)
        snprintf(r->model, sizeof r->model, "%s:%s", sp->weights, sp->graph);
    else if (zk)
        snprintf(r->model, sizeof r->model, "%s", sp->zkey);
    r->created_ms = r->updated_ms = qr_wall_ms();
    r->deadline_ms = sp->timeout_ms ? r->created_ms + sp->timeout_ms : 0;
    r->state = QR_JOB_QUEUED;
    if (s->idem_key)
        snprintf(r->idem_key, sizeof r->idem_key, "%s", s->idem_key);
    if (s_job_track(self, j) < 0) {
        s_blob_put(self, &j->input);
        s_job_free(j);
        s_client_error(self, c->ident, c->idlen, s->req_id, 0, QR_ENOMEM, NULL);
        protobuf_c_message_free_unpacked(&s->base, NULL);
        return;
    }
    qr_db_add_job(self->db, r);
    qr_db_add_event(self->db, r->id, QR_JOB_QUEUED, 0, NULL, r->created_ms);
    s_move(self, ++self->next_txn, r->id, "reserve", c->acct, QR_BUCKET_AVAILABLE, c->acct,
           QR_BUCKET_RESERVED, (int64_t)r->max_price);
    j->queued_us = qr_clock_us();
    self->stats.submitted++;
    c->acct->live++;
    qr_sched_enqueue(self->sched, &j->sj);
    Quarry__SubmitAck ack = QUARRY__SUBMIT_ACK__INIT;
    ack.req_id = s->req_id;
    ack.job_id = r->id;
    ack.reserved = r->max_price;
    s_client_reply(self, c, QR_CMD_SUBMIT | QR_CMD_REPLY, &ack.base, s->req_id, NULL, 0, NULL);
    if (s->watch == 1 || s->watch == 2)
        s_watch_add(j, c, s->req_id, s->watch == 2); /* its first EVENT goes with this batch */
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

/* Answers a JobRef request about a job the broker no longer holds in memory
 * from the database.  Returns true when it answered. */
static bool s_status_from_db(qr_broker_t *self, s_client_t *c, uint64_t req_id, uint64_t job_id,
                             uint8_t cmd)
{
    qr_db_job_t row;
    char err[256];
    int rc = qr_db_get_job(self->db, job_id, &row, err, sizeof err);
    if (rc != QR_OK || row.client_id != c->acct->id) {
        snprintf(err, sizeof err, "no job %" PRIu64 " for this account", job_id);
        s_client_error(self, c->ident, c->idlen, req_id, job_id,
                       rc == QR_EDB ? QR_EDB : QR_ENOTFOUND, err);
        return true;
    }
    Quarry__JobInfo info = QUARRY__JOB_INFO__INIT;
    s_fill_info_row(&row, &info);
    if (cmd == QR_CMD_RESULT) {
        uint8_t *data = NULL;
        size_t len = 0;
        if (row.state != QR_JOB_SETTLED && row.state != QR_JOB_MIRRORED) {
            s_client_error(self, c->ident, c->idlen, req_id, job_id, QR_ENOTREADY, NULL);
            return true;
        }
        rc = qr_db_get_result(self->db, job_id, &data, &len, err, sizeof err);
        if (rc != QR_OK) {
            s_client_error(self, c->ident, c->idlen, req_id, job_id, rc, err);
            return true;
        }
        Quarry__ResultReply rr = QUARRY__RESULT_REPLY__INIT;
        rr.req_id = req_id;
        rr.job = &info;
        qr_payload_t p = {data, len};
        s_client_reply(self, c, QR_CMD_RESULT | QR_CMD_REPLY, &rr.base, req_id, &p, 1, data);
        return true;
    }
    if (cmd == QR_CMD_WATCH) {
        /* only final jobs leave memory, so there is nothing to watch for */
        Quarry__Event ev = QUARRY__EVENT__INIT;
        ev.req_id = req_id;
        ev.job = &info;
        s_client_reply(self, c, QR_CMD_WATCH | QR_CMD_REPLY, &ev.base, req_id, NULL, 0, NULL);
        return true;
    }
    Quarry__StatusReply sr = QUARRY__STATUS_REPLY__INIT;
    sr.req_id = req_id;
    sr.job = &info;
    s_client_reply(self, c, (uint8_t)(cmd | QR_CMD_REPLY), &sr.base, req_id, NULL, 0, NULL);
    return true;
}

static void s_on_jobref(qr_broker_t *self, s_client_t *c, const qr_msg_t *msg, uint8_t cmd)
{
    char why[256];
    Quarry__JobRef *ref =
        (Quarry__JobRef *)qr_msg_decode(msg, &quarry__job_ref__descriptor, why, sizeof why);
    if (!ref) {
        s_client_error(self, c->ident, c->idlen, 0, 0, QR_EPROTO, why);
        return;
    }
    uint64_t req = ref->req_id, id = ref->job_id;
    bool final_only = ref->final_only;
    protobuf_c_message_free_unpacked(&ref->base, NULL);
    s_job_t *j = s_client_job(self, c, id);
    if (!j) {
        if (cmd != QR_CMD_CANCEL) {
            s_status_from_db(self, c, req, id, cmd);
            return;
        }
        /* only final jobs leave memory: nothing left to cancel */
        qr_db_job_t row;
        int rc = qr_db_get_job(self->db, id, &row, why, sizeof why);
        if (rc == QR_OK && row.client_id == c->acct->id) {
            snprintf(why, sizeof why, "job %" PRIu64 " is already %s", id,
                     qr_job_state_name(row.state));
            s_client_error(self, c->ident, c->idlen, req, id, QR_ESTATE, why);
        } else {
            if (rc != QR_EDB)
                snprintf(why, sizeof why, "no job %" PRIu64 " for this account", id);
            s_client_error(self, c->ident, c->idlen, req, id, rc == QR_EDB ? QR_EDB : QR_ENOTFOUND,
                           why);
        }
        return;
    }
    Quarry__JobInfo info = QUARRY__JOB_INFO__INIT;
    switch (cmd) {
    case QR_CMD_CANCEL:
        if (qr_job_state_final(j->row.state)) {
            snprintf(why, sizeof why, "job %" PRIu64 " is already %s", id,
                     qr_job_state_name(j->row.state));
            s_client_error(self, c->ident, c->idlen, req, id, QR_ESTATE, why);
            return;
        }
        s_finish_unpaid(self, j, QR_JOB_CANCELLED, "cancelled by the client");
        /* fall through - answer with the new state */
    case QR_CMD_STATUS: {
        s_fill_info(j, &info);
        Quarry__StatusReply sr = QUARRY__STATUS_REPLY__INIT;
        sr.req_id = req;
        sr.job = &info;
        s_client_reply(self, c, (uint8_t)(cmd | QR_CMD_REPLY), &sr.base, req, NULL, 0, NULL);
        return;
    }
    case QR_CMD_WATCH: {
        s_fill_info(j, &info);
        Quarry__Event ev = QUARRY__EVENT__INIT;
        ev.req_id = req;
        ev.job = &info;
        s_client_reply(self, c, QR_CMD_WATCH | QR_CMD_REPLY, &ev.base, req, NULL, 0, NULL);
        s_watch_add(j, c, req, final_only);
        return;
    }
    case QR_CMD_RESULT: {
        int st = j->row.state;
        if (st == QR_JOB_SETTLED || st == QR_JOB_MIRRORED) {
            s_blob_t *res =
                j->result ? j->result : qr_hmap_get_u64(self->blobs, j->row.result_blob);
            if (!res) {
                s_status_from_db(self, c, req, id, cmd);
                return;
            }
            s_fill_info(j, &info);
            Quarry__ResultReply rr = QUARRY__RESULT_REPLY__INIT;
            rr.req_id = req;
            rr.job = &info;
            qr_payload_t p = {res->data, res->len};
            s_out_t *o = s_client_reply(self, c, QR_CMD_RESULT | QR_CMD_REPLY, &rr.base, req, &p, 1,
                                        NULL);
            if (o) {
                o->hold = res;
                res->refs++;
            }
            return;
        }
        int code = st == QR_JOB_FAILED      ? QR_EFAILED
                   : st == QR_JOB_EXPIRED   ? QR_EEXPIRED
                   : st == QR_JOB_CANCELLED ? QR_ECANCELLED
                   : st == QR_JOB_REJECTED  ? QR_EINVAL
                                            : QR_ENOTREADY;
        snprintf(why, sizeof why, "job %" PRIu64 " is %s%s%.200s", id, qr_job_state_name(st),
                 j->row.detail[0] ? ": " : "", j->row.detail);
        s_client_error(self, c->ident, c->idlen, req, id, code, why);
        return;
    }
    }
}

typedef struct {
    Quarry__JobInfo *infos;
    Quarry__JobInfo **ptrs;
    char (*strs)[2][256];
    size_t n, cap;
} s_list_t;

static void s_list_row(void *arg, const qr_db_job_t *row)
{
    s_list_t *l = arg;
    if (l->n >= l->cap)
        return;
    Quarry__JobInfo *info = &l->infos[l->n];
    quarry__job_info__init(info);
    s_fill_info_row(row, info);
    snprintf(l->strs[l->n][0], 256, "%s", row->kind);
    snprintf(l->strs[l->n][1], 256, "%s", row->detail);
    info->kind = l->strs[l->n][0];
    info->detail = l->strs[l->n][1];
    l->ptrs[l->n] = info;
    l->n++;
}

static void s_on_list(qr_broker_t *self, s_client_t *c, const qr_msg_t *msg)
{
    char why[256];
    Quarry__ListReq *q =
        (Quarry__ListReq *)qr_msg_decode(msg, &quarry__list_req__descriptor, why, sizeof why);
    if (!q) {
        s_client_error(self, c->ident, c->idlen, 0, 0, QR_EPROTO, why);
        return;
    }
    if (q->all_accounts && !c->admin) {
        s_client_error(self, c->ident, c->idlen, q->req_id, 0, QR_EPERM,
                       "listing every account's jobs needs an admin key");
        protobuf_c_message_free_unpacked(&q->base, NULL);
        return;
    }
    if (q->state && *q->state && qr_job_state_parse(q->state) < 0) {
        snprintf(why, sizeof why, "unknown state '%.32s'", q->state);
        s_client_error(self, c->ident, c->idlen, q->req_id, 0, QR_EINVAL, why);
        protobuf_c_message_free_unpacked(&q->base, NULL);
        return;
    }
    s_list_t l = {0};
    l.cap = q->limit ? (q->limit > 1000 ? 1000 : q->limit) : 50;
    l.infos = calloc(l.cap, sizeof *l.infos);
    l.ptrs = calloc(l.cap, sizeof *l.ptrs);
    l.strs = calloc(l.cap, sizeof *l.strs);
    int rc = QR_ENOMEM;
    if (l.infos && l.ptrs && l.strs)
        rc = qr_db_list_jobs(self->db, q->all_accounts ? 0 : c->acct->id, q->state,
                             (uint32_t)l.cap, s_list_row, &l, why, sizeof why);
    if (rc == QR_OK) {
        Quarry__ListReply lr = QUARRY__LIST_REPLY__INIT;
        lr.req_id = q->req_id;
        lr.n_jobs = l.n;
        lr.jobs = l.ptrs;
        s_client_reply(self, c, QR_CMD_LIST | QR_CMD_REPLY, &lr.base, q->req_id, NULL, 0, NULL);
    } else
        s_client_error(self, c->ident, c->idlen, q->req_id, 0, rc, why);
    free(l.infos);
    free(l.ptrs);
    free(l.strs);
    protobuf_c_message_free_unpacked(&q->base, NULL);
}

typedef struct {
    Quarry__WorkerInfo *infos;
    Quarry__WorkerInfo **ptrs;
    size_t n, cap;
} s_wlist_t;

static void s_wlist_row(void *arg, void *v)
{
    s_wlist_t *l = arg;
    s_worker_t *w = v;
    if (l->n >= l->cap)
        return;
    Quarry__WorkerInfo *i = &l->infos[l->n];
    quarry__worker_info__init(i);
    i->worker_id = w->id;
    i->name = w->name;
    i->operator_ = w->op ? w->op->name : (char *)"";
    i->state = (char *)(w->online ? "online" : "offline");
    i->slots = w->slots;
    i->busy = (uint32_t)w->njobs;
    i->ask_price = w->sw.ask;
    i->reputation = w->sw.reputation;
    i->cpu_cores = w->cpu_cores;
    i->mem_mb = w->sw.mem_mb;
    i->gpus = w->gpus;
    i->jobs_done = w->jobs_done;
    i->earned = w->earned > 0 ? (uint64_t)w->earned : 0;
    l->ptrs[l->n++] = i;
}

static void s_on_workers(qr_broker_t *self, s_client_t *c, uint64_t req)
{
    s_wlist_t l = {0};
    l.cap = qr_hmap_size(self->workers_by_id);
    l.infos = calloc(l.cap + 1, sizeof *l.infos);
    l.ptrs = calloc(l.cap + 1, sizeof *l.ptrs);
    if (!l.infos || !l.ptrs) {
        s_client_error(self, c->ident, c->idlen, req, 0, QR_ENOMEM, NULL);
    } else {
        qr_hmap_each(self->workers_by_id, s_wlist_row, &l);
        Quarry__WorkersReply wr = QUARRY__WORKERS_REPLY__INIT;
        wr.req_id = req;
        wr.n_workers = l.n;
        wr.workers = l.ptrs;
        s_client_reply(self, c, QR_CMD_WORKERS | QR_CMD_REPLY, &wr.base, req, NULL, 0, NULL);
    }
    free(l.infos);
    free(l.ptrs);
}

static void s_balance_reply(qr_broker_t *self, s_client_t *c, uint64_t req, uint8_t cmd,
                            const s_account_t *a)
{
    Quarry__BalanceReply br = QUARRY__BALANCE_REPLY__INIT;
    br.req_id = req;
    br.account = (char *)a->name;
    br.available = a->available;
    br.reserved = a->reserved;
    /* operators cannot spend yet, so what they hold is what they earned */
    br.earned = a->kind == QR_ACCT_OPERATOR ? a->available : 0;
    s_client_reply(self, c, (uint8_t)(cmd | QR_CMD_REPLY), &br.base, req, NULL, 0, NULL);
}

static void s_on_balance(qr_broker_t *self, s_client_t *c, const qr_msg_t *msg, bool deposit)
{
    char why[256];
    const ProtobufCMessageDescriptor *d =
        deposit ? &quarry__deposit_req__descriptor : &quarry__balance_req__descriptor;
    ProtobufCMessage *m = qr_msg_decode(msg, d, why, sizeof why);
    if (!m) {
        s_client_error(self, c->ident, c->idlen, 0, 0, QR_EPROTO, why);
        return;
    }
    uint64_t req;
    const char *name;
    uint64_t amount = 0;
    if (deposit) {
        Quarry__DepositReq *q = (Quarry__DepositReq *)m;
        req = q->req_id;
        name = q->account;
        amount = q->amount;
    } else {
        Quarry__BalanceReq *q = (Quarry__BalanceReq *)m;
        req = q->req_id;
        name = q->account;
    }
    if (!name || !*name)
        name = c->acct->name;
    if (!deposit && !c->admin && strcmp(name, c->acct->name) != 0) {
        s_client_error(self, c->ident, c->idlen, req, 0, QR_EPERM,
                       "another account's balance needs an admin key");
        protobuf_c_message_free_unpacked(m, NULL);
        return;
    }
    s_account_t *a = qr_hmap_get(self->acct_by_name, name, strlen(name));
    if (deposit) {
        if (amount == 0 || amount > (uint64_t)INT64_MAX / 4) {
            s_client_error(self, c->ident, c->idlen, req, 0, QR_EINVAL,
                           "deposit amount must be between 1 and 2^61");
        } else if (!s_name_ok(name) || strncmp(name, "system:", 7) == 0) {
            s_client_error(self, c->ident, c->idlen, req, 0, QR_EINVAL,
                           "account name must be 1-127 printable characters, not system:*");
        } else if (a && a->available > INT64_MAX / 2) {
            s_client_error(self, c->ident, c->idlen, req, 0, QR_EINVAL, "balance too large");
        } else {
            a = a ? a : s_account_get(self, name, QR_ACCT_CLIENT);
            if (a) {
                s_move(self, ++self->next_txn, 0, "deposit", self->mint, QR_BUCKET_AVAILABLE, a,
                       QR_BUCKET_AVAILABLE, (int64_t)amount);
                qr_log(QR_LOG_INFO, "deposit", "account=%s amount=%" PRIu64, a->name, amount);
                s_balance_reply(self, c, req, QR_CMD_DEPOSIT, a);
            }
        }
    } else if (!a) {
        snprintf(why, sizeof why, "no account '%.64s'", name);
        s_client_error(self, c->ident, c->idlen, req, 0, QR_ENOTFOUND, why);
    } else
        s_balance_reply(self, c, req, QR_CMD_BALANCE, a);
    protobuf_c_message_free_unpacked(m, NULL);
}

typedef struct {
    Quarry__OperatorStat *ops;
    Quarry__OperatorStat **ptrs;
    char (*names)[128];
    size_t n, cap;
} s_ops_t;

static void s_dash_op(void *arg, const char *op, uint64_t jobs, int64_t earned)
{
    s_ops_t *o = arg;
    if (o->n >= o->cap)
        return;
    Quarry__OperatorStat *s = &o->ops[o->n];
    quarry__operator_stat__init(s);
    snprintf(o->names[o->n], 128, "%s", op);
    s->operator_ = o->names[o->n];
    s->jobs = jobs;
    s->earned = earned;
    o->ptrs[o->n++] = s;
}

typedef struct {
    uint32_t online, slots, busy;
} s_util_t;

static void s_util_each(void *arg, void *v)
{
    s_util_t *u = arg;
    s_worker_t *w = v;
    if (!w->online)
        return;
    u->online++;
    u->slots += w->slots;
    u->busy += (uint32_t)(w->njobs < w->slots ? w->njobs : w->slots);
}

static void s_on_dash(qr_broker_t *self, s_client_t *c, uint64_t req)
{
    char why[256];
    qr_db_dash_t d;
    s_ops_t o = {0};
    o.cap = 256;
    o.ops = calloc(o.cap, sizeof *o.ops);
    o.ptrs = calloc(o.cap, sizeof *o.ptrs);
    o.names = calloc(o.cap, sizeof *o.names);
    int rc = QR_ENOMEM;
    if (o.ops && o.ptrs && o.names)
        rc = qr_db_dash(self->db, &d, s_dash_op, &o, why, sizeof why);
    if (rc != QR_OK) {
        s_client_error(self, c->ident, c->idlen, req, 0, rc, rc == QR_ENOMEM ? NULL : why);
    } else {
        Quarry__KindStat ks[QR_SCHED_KINDS], *kp[QR_SCHED_KINDS];
        size_t nk = 0;
        for (int k = 0; qr_sched_kind_name(k); k++) {
            quarry__kind_stat__init(&ks[nk]);
            ks[nk].kind = (char *)qr_sched_kind_name(k);
            ks[nk].queued = qr_sched_queued(self->sched, k);
            ks[nk].running = self->running[k];
            kp[nk] = &ks[nk];
            nk++;
        }
        s_util_t u = {0};
        qr_hmap_each(self->workers_by_id, s_util_each, &u);
        Quarry__DashReply dr = QUARRY__DASH_REPLY__INIT;
        dr.req_id = req;
        dr.n_kinds = nk;
        dr.kinds = kp;
        dr.workers = u.online;
        dr.utilisation = u.slots ? (double)u.busy / u.slots : 0.0;
        dr.jobs_per_s = d.jobs_per_s;
        dr.p50_ms = d.p50_ms;
        dr.p99_ms = d.p99_ms;
        dr.n_operators = o.n;
        dr.operators = o.ptrs;
        dr.settled_total = d.settled_total;
        dr.ledger_sum = d.ledger_sum;
        s_client_reply(self, c, QR_CMD_DASH | QR_CMD_REPLY, &dr.base, req, NULL, 0, NULL);
    }
    free(o.ops);
    free(o.ptrs);
    free(o.names);
}

static bool s_boot_admin(const qr_broker_t *self, const char *key)
{
    for (size_t i = 0; key && i < self->nboot_admins; i++)
        if (strcmp(self->boot_admins[i], key) == 0)
            return true;
    return false;
}

/* Which account a HELLO may act as.  In secure mode the key decides: a bound
 * key acts as its account; a bootstrap admin key as the account it names; an
 * unknown key (open registration only) claims the named account if no other
 * key holds it.  Returns the account or NULL with an error code in *code and
 * a reason in why. */
static s_account_t *s_hello_account(qr_broker_t *self, const char *uid, const char *name,
                                    bool *admin, int *code, char *why, size_t whylen)
{
    *admin = self->cfg.insecure;
    if (self->cfg.insecure)
        return s_account_get(self, name, QR_ACCT_CLIENT);
    s_key_t *k = uid ? qr_hmap_get(self->keys, uid, strlen(uid)) : NULL;
    if (k) {
        if (strcmp(name, k->acct->name) != 0) {
            snprintf(why, whylen, "this key belongs to account %.64s, not %.64s", k->acct->name,
                     name);
            *code = QR_EPERM;
            return NULL;
        }
        *admin = k->role == S_ROLE_ADMIN || s_boot_admin(self, uid);
        return k->acct;
    }
    if (s_boot_admin(self, uid)) {
        *admin = true;
        return s_account_get(self, name, QR_ACCT_CLIENT);
    }
    if (uid && self->cfg.open_registration) {
        s_account_t *a = qr_hmap_get(self->acct_by_name, name, strlen(name));
        if (a && a->has_key) {
            snprintf(why, whylen, "account %.64s is bound to another key", name);
            *code = QR_EPERM;
            return NULL;
        }
        a = a ? a : s_account_get(self, name, QR_ACCT_CLIENT);
        if (a && s_key_bind(self, uid, a, S_ROLE_CLIENT))
            qr_db_set_key(self->db, uid, a->id, "client");
        return a;
    }
    snprintf(why, whylen, "this key is not registered");
    *code = QR_EPERM;
    return NULL;
}

/* ADMIN_KEY: bind or remove a CURVE key (the caller is an admin). */
static void s_on_admin_key(qr_broker_t *self, s_client_t *c, const qr_msg_t *msg)
{
    char why[256];
    Quarry__AdminKey *q =
        (Quarry__AdminKey *)qr_msg_decode(msg, &quarry__admin_key__descriptor, why, sizeof why);
    if (!q) {
        s_client_error(self, c->ident, c->idlen, 0, 0, QR_EPROTO, why);
        return;
    }
    int role = -1;
    const char *op = q->op ? q->op : "";
    if (strcmp(op, "add-client") == 0)
        role = S_ROLE_CLIENT;
    else if (strcmp(op, "add-operator") == 0)
        role = S_ROLE_OPERATOR;
    else if (strcmp(op, "add-admin") == 0)
        role = S_ROLE_ADMIN;
    int code = QR_OK;
    if (!qr_keys_valid_z85(q->key)) {
        code = QR_EINVAL;
        snprintf(why, sizeof why, "the key must be 40 characters of Z85 (a .pub file's content)");
    } else if (strcmp(op, "remove") == 0) {
        s_key_t *k = qr_hmap_del(self->keys, q->key, strlen(q->key));
        if (!k) {
            code = QR_ENOTFOUND;
            snprintf(why, sizeof why, "no such key");
        } else {
            qr_db_set_key(self->db, q->key, k->acct->id, NULL);
            qr_log(QR_LOG_INFO, "key removed", "account=%s role=%s", k->acct->name,
                   s_roles[k->role]);
            free(k);
        }
    } else if (role < 0) {
        code = QR_EINVAL;
        snprintf(why, sizeof why, "op must be add-client, add-operator, add-admin or remove");
    } else if (!s_name_ok(q->account) || strncmp(q->account, "system:", 7) == 0) {
        code = QR_EINVAL;
        snprintf(why, sizeof why, "account name must be 1-127 printable characters, not system:*");
    } else {
        s_key_t *k = qr_hmap_get(self->keys, q->key, strlen(q->key));
        s_account_t *a = s_account_get(self, q->account,
                                       role == S_ROLE_OPERATOR ? QR_ACCT_OPERATOR : QR_ACCT_CLIENT);
        if (k && k->acct != a) {
            code = QR_ESTATE;
            snprintf(why, sizeof why, "the key is bound to account %.64s; remove it first",
                     k->acct->name);
        } else if (!a || !s_key_bind(self, q->key, a, role)) {
            code = QR_ENOMEM;
            snprintf(why, sizeof why, "%s", qr_strerror(QR_ENOMEM));
        } else {
            qr_db_set_key(self->db, q->key, a->id, s_roles[role]);
            qr_log(QR_LOG_INFO, "key bound", "account=%s role=%s", a->name, s_roles[role]);
        }
    }
    if (code != QR_OK)
        s_client_error(self, c->ident, c->idlen, q->req_id, 0, code, why);
    else {
        Quarry__Empty e = QUARRY__EMPTY__INIT;
        e.req_id = q->req_id;
        s_client_reply(self, c, QR_CMD_ADMIN_KEY | QR_CMD_REPLY, &e.base, q->req_id, NULL, 0,
                       NULL);
    }
    protobuf_c_message_free_unpacked(&q->base, NULL);
}

static void s_on_hello(qr_broker_t *self, const void *ident, size_t idlen, qr_msg_t *msg)
{
    char why[256];
    Quarry__Hello *h =
        (Quarry__Hello *)qr_msg_decode(msg, &quarry__hello__descriptor, why, sizeof why);
    if (!h) {
        s_client_error(self, ident, idlen, 0, 0, QR_EPROTO, why);
        return;
    }
    if (!s_name_ok(h->account) || strncmp(h->account, "system:", 7) == 0) {
        s_client_error(self, ident, idlen, h->req_id, 0, QR_EINVAL,
                       "account name must be 1-127 printable characters, not system:*");
        protobuf_c_message_free_unpacked(&h->base, NULL);
        return;
    }
    s_client_t *c = qr_hmap_get(self->sessions, ident, idlen);
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c || qr_hmap_put(self->sessions, ident, idlen, c) < 0) {
            free(c);
            s_client_error(self, ident, idlen, h->req_id, 0, QR_ENOMEM, NULL);
            protobuf_c_message_free_unpacked(&h->base, NULL);
            return;
        }
        c->idlen = idlen;
        memcpy(c->ident, ident, idlen);
    }
    c->seen = qr_clock_ms();
    int code = QR_ENOMEM;
    why[0] = '\0';
    c->acct = s_hello_account(self, s_user_id(msg), h->account, &c->admin, &code, why, sizeof why);
    if (!c->acct) {
        s_client_error(self, ident, idlen, h->req_id, 0, code, why[0] ? why : NULL);
    } else {
        Quarry__HelloAck ack = QUARRY__HELLO_ACK__INIT;
        ack.req_id = h->req_id;
        ack.account_id = c->acct->id;
        s_client_reply(self, c, QR_CMD_HELLO | QR_CMD_REPLY, &ack.base, h->req_id, NULL, 0, NULL);
    }
    protobuf_c_message_free_unpacked(&h->base, NULL);
}

/* Reads the req_id of any request body (field 1 in every message) for error
 * replies, without knowing its type. */
static uint64_t s_req_id(const qr_msg_t *msg)
{
    size_t len;
    const void *body = qr_msg_body(msg, &len);
    Quarry__Empty *e = quarry__empty__unpack(NULL, len, body);
    uint64_t id = e ? e->req_id : 0;
    if (e)
        quarry__empty__free_unpacked(e, NULL);
    return id;
}

static void s_client_message(qr_broker_t *self)
{
    qr_msg_t msg;
    char err[256];
    int rc = qr_wire_recv(self->clients, true, QR_PROTO_CLIENT, ZMQ_DONTWAIT, &msg, err, sizeof err);
    size_t idlen = 0;
    const void *ident = qr_msg_identity(&msg, &idlen);
    if (rc == QR_EPROTO && ident && idlen <= S_IDENT_MAX) {
        qr_log(QR_LOG_WARN, "bad client frame", "reason=\"%s\"", err);
        s_client_error(self, ident, idlen, 0, 0, QR_EPROTO, err);
    }
    if (rc != QR_OK || idlen > S_IDENT_MAX) {
        qr_msg_close(&msg);
        return;
    }
    if (self->degraded) {
        snprintf(err, sizeof err, "database unavailable (%.200s); retrying", self->degraded_why);
        s_client_error(self, ident, idlen, s_req_id(&msg), 0, QR_EDB, err);
        qr_msg_close(&msg);
        return;
    }
    if (msg.cmd == QR_CMD_HELLO) {
        s_on_hello(self, ident, idlen, &msg);
        qr_msg_close(&msg);
        return;
    }
    s_client_t *c = qr_hmap_get(self->sessions, ident, idlen);
    if (!c || !c->acct) {
        s_client_error(self, ident, idlen, s_req_id(&msg), 0, QR_EPERM,
                       "send HELLO with an account first");
        qr_msg_close(&msg);
        return;
    }
    c->seen = qr_clock_ms();
    switch (msg.cmd) {
    case QR_CMD_SUBMIT:
        s_on_submit(self, c, &msg);
        break;
    case QR_CMD_UPLOAD:
        s_on_upload(self, c, &msg);
        break;
    case QR_CMD_STATUS:
    case QR_CMD_WATCH:
    case QR_CMD_CANCEL:
    case QR_CMD_RESULT:
        s_on_jobref(self, c, &msg, msg.cmd);
        break;
    case QR_CMD_LIST:
        s_on_list(self, c, &msg);
        break;
    case QR_CMD_WORKERS:
        s_on_workers(self, c, s_req_id(&msg));
        break;
    case QR_CMD_BALANCE:
        s_on_balance(self, c, &msg, false);
        break;
    case QR_CMD_DEPOSIT:
    case QR_CMD_DASH:
    case QR_CMD_ADMIN_KEY:
        if (!c->admin) {
            snprintf(err, sizeof err, "%s needs an admin key",
                     msg.cmd == QR_CMD_DEPOSIT ? "deposit"
                     : msg.cmd == QR_CMD_DASH  ? "the dashboard"
                                               : "key administration");
            s_client_error(self, ident, idlen, s_req_id(&msg), 0, QR_EPERM, err);
        } else if (msg.cmd == QR_CMD_DEPOSIT)
            s_on_balance(self, c, &msg, true);
        else if (msg.cmd == QR_CMD_DASH)
            s_on_dash(self, c, s_req_id(&msg));
        else
            s_on_admin_key(self, c, &msg);
        break;
    default:
        snprintf(err, sizeof err, "unknown command 0x%02x", msg.cmd);
        s_client_error(self, ident, idlen, s_req_id(&msg), 0, QR_EPROTO, err);
    }
    qr_msg_close(&msg);
}

/* ---- scheduling, timers, commit ---- */

static void s_dispatch(qr_broker_t *self)
{
    qr_sjob_t *sj;
    qr_sworker_t *sw;
    while (qr_sched_next(self->sched, &sj, &sw)) {
        s_job_t *j = sj->owner;
        s_worker_t *w = sw->owner;
        if (s_grow((void **)&w->jobs, &w->capjobs, w->njobs + 1, sizeof(s_job_t *)) < 0) {
            sw->busy--;
            sw->units -= sj->units;
            qr_sched_update_worker(self->sched, sw);
            qr_sched_enqueue(self->sched, sj);
            return;
        }
        w->jobs[w->njobs++] = j;
        j->worker = w;
        s_observe(&self->stats.dispatch, (double)(qr_clock_us() - j->queued_us) / 1e6);
        j->row.worker_id = w->id;
        j->row.attempts++;
        self->running[sj->kind]++;
        s_job_event(self, j, QR_JOB_ASSIGNED, NULL);
        s_job_commit_row(self, j);
        Quarry__JobSpec spec = QUARRY__JOB_SPEC__INIT;
        spec.kind = j->row.kind;
        spec.m = j->row.m;
        spec.n = j->row.n;
        spec.k = j->row.k;
        spec.max_price = j->row.max_price;
        spec.need_gpu = j->row.need_gpu;
        spec.min_mem_mb = j->row.min_mem_mb;
        spec.priority = j->row.priority;
        char wsha[QR_SHA_HEX + 1] = "", gsha[QR_SHA_HEX + 1] = "";
        bool infer = s_is_infer(&j->row), zk = s_is_zk(&j->row);
        if (zk) {
            memcpy(wsha, j->row.model, QR_SHA_HEX);
            spec.zkey = wsha;
            s_hold(self, w, wsha); /* as for models: its next proofs follow it */
        }
        if (infer && strlen(j->row.model) == 2 * QR_SHA_HEX + 1) {
            memcpy(wsha, j->row.model, QR_SHA_HEX);
            memcpy(gsha, j->row.model + QR_SHA_HEX + 1, QR_SHA_HEX);
            spec.weights = wsha;
            spec.graph = gsha;
            /* it holds the model from now on, or soon will (it fetches what
             * it lacks): the model's next jobs follow it instead of making a
             * second worker fetch it too.  Its HOLDINGS corrects this when
             * it evicts the model or the fetch fails. */
            s_hold(self, w, wsha);
        }
        Quarry__Assign as = QUARRY__ASSIGN__INIT;
        as.job_id = j->row.id;
        as.spec = &spec;
        as.attempt = j->row.attempts;
        as.input_blob = j->input->id;
        if (s_has(w, j->input->id)) {
            /* it kept these matrices from an earlier job: name them */
            s_worker_send(self, w, QR_WCMD_ASSIGN, &as.base, NULL, 0);
            continue;
        }
        size_t ab = j->row.input_len, bb = 0, cb;
        if (!infer && !zk)
            qr_gemm_sizes(j->row.m, j->row.n, j->row.k, &ab, &bb, &cb);
        qr_payload_t p[2] = {{j->row.input, ab}, {j->row.input + ab, bb}};
        s_out_t *o = s_worker_send(self, w, QR_WCMD_ASSIGN, &as.base, p, infer || zk ? 1 : 2);
        if (o) {
            o->hold = j->input;
            j->input->refs++;
        }
        s_has_put(w, j->input->id, ab + bb);
    }
}

typedef struct {
    qr_broker_t *self;
    int64_t now;
    s_worker_t **lost;
    size_t nlost, cap;
} s_hb_t;

static void s_hb_each(void *arg, void *v)
{
    s_hb_t *h = arg;
    s_worker_t *w = v;
    if (!w->online)
        return;
    if (h->now >= w->expiry) {
        if (s_grow((void **)&h->lost, &h->cap, h->nlost + 1, sizeof(s_worker_t *)) == 0)
            h->lost[h->nlost++] = w;
    } else if (h->now >= w->hb_at) {
        /* a heartbeat states nothing, so it need not wait for a commit: a
         * slow database must not make workers think the broker is gone */
        qr_wire_send(h->self->workers, w->ident, w->idlen, QR_PROTO_WORKER, QR_WCMD_HEARTBEAT, NULL,
                     NULL, 0);
        w->hb_at = h->now + h->self->cfg.heartbeat_ms;
    }
}

typedef struct {
    int64_t before;
    s_client_t **idle;
    size_t n, cap;
} s_sweep_t;

static void s_sweep_each(void *arg, void *v)
{
    s_sweep_t *sw = arg;
    s_client_t *c = v;
    if (c->seen < sw->before &&
        s_grow((void **)&sw->idle, &sw->cap, sw->n + 1, sizeof(s_client_t *)) == 0)
        sw->idle[sw->n++] = c;
}

/* Forgets client sessions idle for S_SESSION_IDLE_MS: every CLI call is a new
 * connection, and a client that comes back is asked for HELLO again (the SDK
 * does that by itself). */
static void s_sweep_sessions(qr_broker_t *self, int64_t now)
{
    s_sweep_t sw = {now - S_SESSION_IDLE_MS, NULL, 0, 0};
    qr_hmap_each(self->sessions, s_sweep_each, &sw);
    for (size_t i = 0; i < sw.n; i++) {
        qr_hmap_del(self->sessions, sw.idle[i]->ident, sw.idle[i]->idlen);
        free(sw.idle[i]);
    }
    free(sw.idle);
}

static void s_timers(qr_broker_t *self)
{
    int64_t now = qr_clock_ms();
    if (now >= self->sweep_at) {
        s_sweep_sessions(self, now);
        qr_store_sweep(self->store, now, 10 * 60 * 1000); /* abandoned uploads */
        self->sweep_at = now + 60000;
    }
    if (now >= self->hb_check_at) {
        s_hb_t h = {self, now, NULL, 0, 0};
        qr_hmap_each(self->workers_by_id, s_hb_each, &h);
        for (size_t i = 0; i < h.nlost; i++)
            s_worker_lost(self, h.lost[i], "missed heartbeats", true);
        free(h.lost);
        self->hb_check_at = now + self->cfg.heartbeat_ms / 4;
    }
    while (self->ndl && self->dl[0].at <= now) {
        s_deadline_t d = s_dl_pop(self);
        s_job_t *j = qr_hmap_get_u64(self->jobs, d.id);
        if (j && !qr_job_state_final(j->row.state) && j->deadline_mono == d.at)
            s_finish_unpaid(self, j, QR_JOB_EXPIRED, "deadline passed");
    }
}

static void s_worker_rows(void *arg, void *v)
{
    qr_broker_t *self = arg;
    s_worker_t *w = v;
    if (w->dirty) {
        qr_db_worker_state(self->db, w->id, w->online ? "online" : "offline", w->sw.reputation,
                           w->jobs_done);
        w->dirty = false;
    }
}

static void s_flush_list(qr_broker_t *self, s_out_t *outs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s_out_t *o = &outs[i];
        int flags = ZMQ_DONTWAIT;
        int rc = zmq_send(o->sock, o->ident, o->idlen, flags | ZMQ_SNDMORE) < 0 ||
                 zmq_send(o->sock, o->proto, strlen(o->proto), flags | ZMQ_SNDMORE) < 0 ||
                 zmq_send(o->sock, &o->cmd, 1, flags | ZMQ_SNDMORE) < 0 ||
                 zmq_send(o->sock, o->body, o->blen, flags | (o->npay ? ZMQ_SNDMORE : 0)) < 0;
        for (int p = 0; !rc && p < o->npay; p++)
            rc = zmq_send(o->sock, o->pay[p].data, o->pay[p].len,
                          flags | (p + 1 < o->npay ? ZMQ_SNDMORE : 0)) < 0;
        (void)rc; /* a peer that is gone or too slow loses the message, as in Majordomo */
        free(o->body);
        free(o->owned);
        s_blob_put(self, &o->hold);
    }
}

/* Sends the current outbox (only when nothing it answers is waiting on a
 * commit: degraded mode, or a batch with no rows). */
static void s_flush(qr_broker_t *self)
{
    s_flush_list(self, self->out, self->nout);
    self->nout = 0;
}

/* Drops an outbox; with tell, clients whose requests it answered hear QR_EDB. */
static void s_drop_outbox(qr_broker_t *self, s_out_t *outs, size_t n, bool tell)
{
    for (size_t i = 0; i < n; i++) {
        s_out_t *o = &outs[i];
        if (tell && o->sock == self->clients && o->req_id) {
            qr_wire_send_error(self->clients, o->ident, o->idlen, QR_PROTO_CLIENT, o->req_id, 0,
                               QR_EDB, "database unavailable; request not applied, try again");
            self->stats.refused[QR_EDB]++;
        }
        free(o->body);
        free(o->owned);
        s_blob_put(self, &o->hold);
    }
}

/* After a failed commit: tell the clients whose requests were in the failed
 * batch or the one built on it, drop both, and go degraded until the
 * database is back (then memory is rebuilt from it). */
static void s_fail_turn(qr_broker_t *self, const char *why)
{
    qr_log(QR_LOG_ERROR, "commit failed; reloading from the database when it is back",
           "reason=\"%s\"", why);
    snprintf(self->degraded_why, sizeof self->degraded_why, "%.200s", why);
    s_drop_outbox(self, self->fly_out, self->fly_nout, true);
    s_drop_outbox(self, self->out, self->nout, true);
    self->fly_nout = self->nout = 0;
    self->fly_ndirty = self->ndirty = 0;
    qr_db_discard(self->db);
    self->degraded = true;
    self->retry_at = 0;
}

/* Queues an EVENT for each watcher of every job changed in the current
 * batch, as the job stands at the batch's end: exactly what its commit makes
 * durable, whatever later batches change before it returns. */
static void s_batch_events(qr_broker_t *self)
{
    for (size_t i = 0; i < self->ndirty; i++) {
        s_job_t *j = self->dirty[i];
        j->dirty = false;
        if (!j->nwatch)
            continue;
        Quarry__JobInfo info = QUARRY__JOB_INFO__INIT;
        s_fill_info(j, &info);
        bool final = qr_job_state_final(j->row.state);
        for (size_t k = 0; k < j->nwatch; k++) {
            if (j->watches[k].final_only && !final)
                continue;
            Quarry__Event ev = QUARRY__EVENT__INIT;
            ev.req_id = j->watches[k].req_id;
            ev.job = &info;
            s_queue(self, self->clients, QR_PROTO_CLIENT, j->watches[k].ident,
                    j->watches[k].idlen, QR_CMD_EVENT, &ev.base, 0, NULL, 0, NULL);
        }
        if (final) {
            free(j->watches);
            j->watches = NULL;
            j->nwatch = j->capwatch = 0;
        }
    }
}

/* After a batch is durable and sent: finished jobs hand their input and
 * result to the blob cache. */
/* Forgets the oldest final job: later requests about it read PostgreSQL. */
static void s_retire_oldest(qr_broker_t *self)
{
    s_job_t *j = qr_ring_pop(&self->final);
    qr_hmap_del_u64(self->jobs, j->row.id);
    if (j->row.idem_key[0]) {
        char key[160];
        int n = snprintf(key, sizeof key, "%" PRIu64 ":%s", j->row.client_id, j->row.idem_key);
        if (qr_hmap_get(self->idem, key, (size_t)n) == j)
            qr_hmap_del(self->idem, key, (size_t)n);
    }
    s_job_free(j);
}

static void s_gc(qr_broker_t *self, s_job_t **dirty, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s_job_t *j = dirty[i];
        if (!qr_job_state_final(j->row.state) || j->retired)
            continue;
        s_cache_hold(self, &j->input);
        j->row.input = NULL;
        s_cache_hold(self, &j->result);
        if (qr_ring_push(&self->final, j) < 0)
            continue; /* out of memory: it simply stays in memory */
        j->retired = true;
        while (self->final.n > (size_t)self->cfg.keep_final)
            s_retire_oldest(self);
    }
}

/* Ends a turn.  With no commit in flight, the current batch goes to the
 * committer thread (or, holding no rows, is sent at once); with one in
 * flight, the batch keeps growing until it returns, which is what makes
 * batches large exactly when the database is the bottleneck. */
static void s_end_turn(qr_broker_t *self)
{
    qr_hmap_each(self->workers_by_id, s_worker_rows, self);
    if (self->fly_db || self->degraded)
        return;
    s_batch_events(self);
    if (!qr_db_pending(self->db)) {
        s_flush(self);
        s_gc(self, self->dirty, self->ndirty);
        self->ndirty = 0;
        return;
    }
    s_out_t *o = self->fly_out;
    self->fly_out = self->out;
    self->fly_nout = self->nout;
    self->out = o;
    self->nout = 0;
    size_t oc = self->fly_capout;
    self->fly_capout = self->capout;
    self->capout = oc;
    s_job_t **d = self->fly_dirty;
    self->fly_dirty = self->dirty;
    self->fly_ndirty = self->ndirty;
    self->dirty = d;
    self->ndirty = 0;
    size_t dc = self->fly_capdirty;
    self->fly_capdirty = self->capdirty;
    self->capdirty = dc;
    self->fly_db = self->db;
    self->db = self->spare;
    self->spare = self->fly_db;
    self->fly_t0 = qr_clock_us();
    zmq_send(self->pipe, &self->fly_db, sizeof self->fly_db, 0);
}

/* The committer thread's answer for the batch in flight. */
static void s_commit_done(qr_broker_t *self)
{
    struct {
        int32_t rc;
        char err[512];
    } r;
    memset(&r, 0, sizeof r);
    if (zmq_recv(self->pipe, &r, sizeof r, 0) < (int)sizeof r.rc)
        return;
    r.err[sizeof r.err - 1] = '\0';
    int64_t took = qr_clock_us() - self->fly_t0;
    qr_log(QR_LOG_DEBUG, "commit", "messages=%zu us=%lld", self->fly_nout, (long long)took);
    s_observe(&self->stats.commit, (double)took / 1e6);
    self->fly_db = NULL;
    if (r.rc != QR_OK) {
        s_fail_turn(self, r.err);
        return;
    }
    s_flush_list(self, self->fly_out, self->fly_nout);
    self->fly_nout = 0;
    s_gc(self, self->fly_dirty, self->fly_ndirty);
    self->fly_ndirty = 0;
}

/* The committer: writes each batch it is handed and says how it went.  Its
 * only state is the connection of the batch, which the loop does not touch
 * until the answer is back. */
static void *s_committer(void *arg)
{
    void *pipe = arg;
    for (;;) {
        qr_db_t *db = NULL;
        if (zmq_recv(pipe, &db, sizeof db, 0) != (int)sizeof db || !db)
            break;
        struct {
            int32_t rc;
            char err[512];
        } r;
        memset(&r, 0, sizeof r);
        r.rc = qr_db_commit(db, r.err, sizeof r.err);
        zmq_send(pipe, &r, sizeof r, 0);
    }
    zmq_close(pipe);
    return NULL;
}

static void s_try_recover(qr_broker_t *self)
{
    int64_t now = qr_clock_ms();
    if (now < self->retry_at)
        return;
    self->retry_at = now + 1000;
    char err[512];
    if (qr_db_reconnect(self->db, err, sizeof err) != QR_OK ||
        qr_db_reconnect(self->spare, err, sizeof err) != QR_OK ||
        (!qr_db_ok(self->lock) && qr_db_reconnect(self->lock, err, sizeof err) != QR_OK)) {
        snprintf(self->degraded_why, sizeof self->degraded_why, "%.200s", err);
        return;
    }
    /* still the active broker?  A standby may have taken over meanwhile */
    bool got = false;
    uint64_t epoch = 0;
    if (qr_db_lead(self->lock, self->holder, &got, &epoch, err, sizeof err) != QR_OK) {
        snprintf(self->degraded_why, sizeof self->degraded_why, "%.200s", err);
        return;
    }
    if (!got) {
        /* pg_try_advisory_lock is re-entrant: false means someone else holds it */
        qr_log(QR_LOG_ERROR, "another broker is active; this one stops", NULL);
        self->deposed = true;
        return;
    }
    self->epoch = epoch;
    qr_db_fence(self->db, epoch);
    qr_db_fence(self->spare, epoch);
    if (s_state_load(self, err, sizeof err) != QR_OK) {
        snprintf(self->degraded_why, sizeof self->degraded_why, "%.200s", err);
        return;
    }
    self->degraded = false;
    qr_log(QR_LOG_INFO, "database is back; state reloaded", NULL);
}

/* ---- ZAP: who may complete a CURVE handshake ---- */

/* Answers one ZAP request (RFC 27) from libzmq: a client key is admitted when
 * it is bound to any account (or is a bootstrap admin key), a worker key when
 * bound as an operator's or admin's; with open registration any key is.  The
 * user id handed back is the key itself, which messages then carry as
 * "User-Id" (s_user_id). */
static void s_zap(qr_broker_t *self)
{
    zmq_msg_t f[8];
    int n = 0, more = 1;
    while (more && n < 8) {
        zmq_msg_init(&f[n]);
        if (zmq_msg_recv(&f[n], self->zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f[n]);
            break;
        }
        more = zmq_msg_more(&f[n]);
        n++;
    }
    while (more) { /* more frames than any ZAP request has: drain them */
        zmq_msg_t x;
        zmq_msg_init(&x);
        if (zmq_msg_recv(&x, self->zap, 0) < 0)
            more = 0;
        else
            more = zmq_msg_more(&x);
        zmq_msg_close(&x);
    }
    if (n == 0)
        return;
    const char *status = "400", *text = "malformed ZAP request";
    char uid[QR_KEY_Z85_LEN + 1] = "";
    if (n >= 7 && zmq_msg_size(&f[5]) == 5 && memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
        zmq_msg_size(&f[6]) == 32) {
        zmq_z85_encode(uid, zmq_msg_data(&f[6]), 32);
        bool workers = zmq_msg_size(&f[2]) == 7 && memcmp(zmq_msg_data(&f[2]), "workers", 7) == 0;
        s_key_t *k = self->keys ? qr_hmap_get(self->keys, uid, strlen(uid)) : NULL;
        bool ok = self->cfg.open_registration ||
                  (workers ? k && k->role != S_ROLE_CLIENT : k || s_boot_admin(self, uid));
        if (ok) {
            status = "200";
            text = "OK";
        } else {
            text = "key not registered";
            self->stats.auth_refused[workers]++;
            /* the public key is no secret: log it so an admin can register it */
            qr_log(QR_LOG_WARN, "handshake refused: key not registered", "domain=%s key=%s",
                   workers ? "workers" : "clients", uid);
        }
    }
    const void *parts[6] = {"1.0", n > 1 ? zmq_msg_data(&f[1]) : "", status, text,
                            status[0] == '2' ? uid : "", ""};
    size_t lens[6] = {3, n > 1 ? zmq_msg_size(&f[1]) : 0, 3, strlen(text),
                      status[0] == '2' ? strlen(uid) : 0, 0};
    for (int i = 0; i < 6; i++)
        zmq_send(self->zap, parts[i], lens[i], i < 5 ? ZMQ_SNDMORE : 0);
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
}

/* ---- /metrics and /healthz ---- */

static void s_hist_render(qr_text_t *t, const char *name, const char *help, const s_hist_t *h)
{
    qr_text_printf(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < S_NBUCKETS; i++) {
        cum += h->count[i];
        qr_text_printf(t, "%s_bucket{le=\"%g\"} %llu\n", name, s_buckets[i], (unsigned long long)cum);
    }
    qr_text_printf(t, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                   (unsigned long long)h->n, name, h->sum, name, (unsigned long long)h->n);
}

static void s_metric(qr_text_t *t, const char *name, const char *type, const char *help)
{
    qr_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int s_render(void *arg, const char *path, qr_text_t *t)
{
    qr_broker_t *self = arg;
    if (strcmp(path, "/livez") == 0) {
        qr_text_printf(t, "alive\n");
        return 200;
    }
    if (strcmp(path, "/healthz") == 0) {
        if (self->standby) {
            qr_text_printf(t, "standby: another broker is active\n");
            return 503;
        }
        if (self->degraded) {
            qr_text_printf(t, "database unavailable: %s\n", self->degraded_why);
            return 503;
        }
        qr_text_printf(t, "ok\n");
        return 200;
    }
    if (strcmp(path, "/metrics") != 0) {
        qr_text_printf(t, "not found; try /metrics or /healthz\n");
        return 404;
    }
    const s_stats_t *st = &self->stats;
    s_metric(t, "quarry_up", "gauge", "1 while the broker serves, 0 while its database is down");
    qr_text_printf(t, "quarry_up %d\n", self->degraded ? 0 : 1);
    s_metric(t, "quarry_start_time_seconds", "gauge", "wall-clock start time of the broker");
    qr_text_printf(t, "quarry_start_time_seconds %.3f\n", (double)self->started_ms / 1000);
    if (!self->degraded && self->sched) {
        s_metric(t, "quarry_queue_depth", "gauge", "jobs waiting for a worker, per kind");
        for (int k = 0; qr_sched_kind_name(k); k++)
            qr_text_printf(t, "quarry_queue_depth{kind=\"%s\"} %zu\n", qr_sched_kind_name(k),
                           qr_sched_queued(self->sched, k));
        s_metric(t, "quarry_jobs_running", "gauge", "jobs assigned to or running on a worker, per kind");
        for (int k = 0; qr_sched_kind_name(k); k++)
            qr_text_printf(t, "quarry_jobs_running{kind=\"%s\"} %llu\n", qr_sched_kind_name(k),
                           (unsigned long long)self->running[k]);
        s_metric(t, "quarry_jobs_parked", "gauge", "jobs no connected worker can take (price, memory)");
        qr_text_printf(t, "quarry_jobs_parked %zu\n", qr_sched_parked(self->sched));
        s_util_t u = {0};
        qr_hmap_each(self->workers_by_id, s_util_each, &u);
        s_metric(t, "quarry_workers_connected", "gauge", "workers online");
        qr_text_printf(t, "quarry_workers_connected %u\n", u.online);
        s_metric(t, "quarry_worker_slots", "gauge", "job slots of the workers online, and how many are busy");
        qr_text_printf(t, "quarry_worker_slots{use=\"total\"} %u\nquarry_worker_slots{use=\"busy\"} %u\n",
                       u.slots, u.busy);
    }
    s_metric(t, "quarry_artifact_uploads_total", "counter", "artifacts stored by UPLOAD");
    qr_text_printf(t, "quarry_artifact_uploads_total %llu\n", (unsigned long long)st->uploads);
    s_metric(t, "quarry_artifact_upload_bytes_total", "counter", "bytes received by UPLOAD");
    qr_text_printf(t, "quarry_artifact_upload_bytes_total %llu\n",
                   (unsigned long long)st->upload_bytes);
    s_metric(t, "quarry_artifact_fetch_bytes_total", "counter",
             "artifact bytes served to workers (FETCH)");
    qr_text_printf(t, "quarry_artifact_fetch_bytes_total %llu\n",
                   (unsigned long long)st->fetch_bytes);
    s_metric(t, "quarry_model_loads_total", "counter", "models loaded into the broker's cache");
    qr_text_printf(t, "quarry_model_loads_total %llu\n", (unsigned long long)st->model_loads);
    s_metric(t, "quarry_affinity_hits_total", "counter",
             "ai.infer jobs matched to a worker that already held the model");
    qr_text_printf(t, "quarry_affinity_hits_total %llu\n",
                   (unsigned long long)qr_sched_affinity_hits(self->sched));
    s_metric(t, "quarry_jobs_submitted_total", "counter", "jobs accepted since start");
    qr_text_printf(t, "quarry_jobs_submitted_total %llu\n", (unsigned long long)st->submitted);
    s_metric(t, "quarry_jobs_ended_total", "counter", "jobs that reached a final state since start");
    for (int s2 = QR_JOB_SETTLED; s2 < QR_JOB_STATE_COUNT_; s2++)
        if (s2 != QR_JOB_MIRRORED && s2 != QR_JOB_REJECTED)
            qr_text_printf(t, "quarry_jobs_ended_total{state=\"%s\"} %llu\n", qr_job_state_name(s2),
                           (unsigned long long)st->ended[s2]);
    s_metric(t, "quarry_jobs_requeued_total", "counter", "jobs sent back to the queue (lost worker, failure, wrong result)");
    qr_text_printf(t, "quarry_jobs_requeued_total %llu\n", (unsigned long long)st->requeued);
    s_metric(t, "quarry_verification_failures_total", "counter", "results that failed verification (not paid)");
    qr_text_printf(t, "quarry_verification_failures_total %llu\n", (unsigned long long)st->verify_failures);
    s_metric(t, "quarry_settled_base_units_total", "counter", "settlement volume: price paid by clients, and the fee part");
    qr_text_printf(t, "quarry_settled_base_units_total{part=\"price\"} %llu\n"
                      "quarry_settled_base_units_total{part=\"fee\"} %llu\n",
                   (unsigned long long)st->paid, (unsigned long long)st->fees);
    s_metric(t, "quarry_requests_refused_total", "counter", "client requests answered with an error, by code");
    for (int c = 1; c < QR_ERR_COUNT_; c++)
        if (st->refused[c])
            qr_text_printf(t, "quarry_requests_refused_total{code=\"%s\"} %llu\n", qr_errname(c),
                           (unsigned long long)st->refused[c]);
    s_metric(t, "quarry_foreign_reports_total", "counter", "worker reports about jobs the worker does not hold");
    qr_text_printf(t, "quarry_foreign_reports_total %llu\n", (unsigned long long)st->foreign_reports);
    s_metric(t, "quarry_handshakes_refused_total", "counter", "CURVE handshakes refused (key not registered)");
    qr_text_printf(t, "quarry_handshakes_refused_total{domain=\"clients\"} %llu\n"
                      "quarry_handshakes_refused_total{domain=\"workers\"} %llu\n",
                   (unsigned long long)st->auth_refused[0], (unsigned long long)st->auth_refused[1]);
    s_hist_render(t, "quarry_dispatch_latency_seconds", "time from entering the queue to assignment",
                  &st->dispatch);
    s_hist_render(t, "quarry_db_commit_seconds", "time to make one batch durable (group commit)",
                  &st->commit);
    return 200;
}

/* Rows the current batch may hold while a commit is in flight before the
 * loop stops reading sockets and waits for it (back-pressure). */
#define S_BACKLOG_ROWS 500000

int qr_broker_run(qr_broker_t *self, volatile sig_atomic_t *stop)
{
    zmq_pollitem_t items[] = {{self->pipe, 0, ZMQ_POLLIN, 0},
                              {self->clients, 0, ZMQ_POLLIN, 0},
                              {self->workers, 0, ZMQ_POLLIN, 0},
                              {NULL, self->httpd ? qr_httpd_fd(self->httpd) : -1, ZMQ_POLLIN, 0},
                              {self->zap, -1, self->zap ? ZMQ_POLLIN : 0, 0}};
    /* the ZAP socket is polled even when it has nothing to do (no events):
     * keeping the array fixed keeps the indexes fixed */
    int nitems = 5;
    if (!self->httpd)
        items[3].events = 0;
    while (!*stop) {
        long timeout = self->degraded ? 200 : (long)(self->cfg.heartbeat_ms / 4);
        if (!self->degraded && self->ndl) {
            int64_t until = self->dl[0].at - qr_clock_ms();
            if (until < timeout)
                timeout = until < 0 ? 0 : (long)until;
        }
        int64_t aw = self->degraded ? -1 : qr_sched_wait_ms(self->sched);
        if (aw >= 0 && aw < timeout) /* a job waiting for a model's holder */
            timeout = (long)aw;
        qr_sched_set_now(self->sched, qr_clock_ms());
        bool full = self->fly_db && qr_db_pending(self->db) >= S_BACKLOG_ROWS;
        if (self->cfg.insecure && qr_clock_ms() >= self->insecure_warn_at) {
            qr_log(QR_LOG_WARN, "INSECURE MODE: no encryption, no authentication; anyone who "
                                "can reach the endpoints can deposit, submit and report results",
                   NULL);
            self->insecure_warn_at = qr_clock_ms() + 60000;
        }
        if (full) /* only the committer and handshakes until the backlog drains */
            items[1].events = items[2].events = items[3].events = 0;
        else {
            items[1].events = items[2].events = ZMQ_POLLIN;
            items[3].events = self->httpd ? ZMQ_POLLIN : 0;
        }
        if (zmq_poll(items, nitems, timeout) < 0) {
            if (errno == EINTR)
                continue;
            qr_log(QR_LOG_ERROR, "poll failed", "reason=\"%s\"", zmq_strerror(errno));
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            s_commit_done(self);
            /* what piled up while that commit ran goes to the committer
             * now, not after this turn's messages: the committer would sit
             * idle meanwhile (about 40% of its time at full load) */
            if (!self->degraded)
                s_end_turn(self);
        }
        if (self->zap && (items[4].revents & ZMQ_POLLIN))
            for (int i = 0; i < 64; i++) {
                int ev = 0;
                size_t sz = sizeof ev;
                if (zmq_getsockopt(self->zap, ZMQ_EVENTS, &ev, &sz) < 0 || !(ev & ZMQ_POLLIN))
                    break;
                s_zap(self);
            }
        if (!full && self->httpd && (items[3].revents & ZMQ_POLLIN))
            qr_httpd_serve(self->httpd, s_render, self);
        if (full)
            items[1].revents = items[2].revents = 0;
        if (self->degraded) {
            /* answer clients at once; workers wait and re-register later */
            for (int i = 0; i < (int)self->cfg.batch_max && (items[1].revents & ZMQ_POLLIN); i++) {
                s_client_message(self);
                s_flush(self);
                int ev = 0;
                size_t sz = sizeof ev;
                zmq_getsockopt(self->clients, ZMQ_EVENTS, &ev, &sz);
                if (!(ev & ZMQ_POLLIN))
                    break;
            }
            while (items[2].revents & ZMQ_POLLIN) {
                qr_msg_t m;
                char e[64];
                int rc = qr_wire_recv(self->workers, true, QR_PROTO_WORKER, ZMQ_DONTWAIT, &m, e,
                                      sizeof e);
                qr_msg_close(&m);
                if (rc == QR_EIO)
                    break;
            }
            s_try_recover(self);
            if (self->deposed)
                break;
            continue;
        }
        /* read both sockets in turn until both are empty or the budget is spent */
        int64_t budget = full ? 0 : self->cfg.batch_max;
        bool more = true;
        while (more && budget > 0) {
            more = false;
            int ev = 0;
            size_t sz = sizeof ev;
            if (zmq_getsockopt(self->workers, ZMQ_EVENTS, &ev, &sz) == 0 && (ev & ZMQ_POLLIN)) {
                s_worker_message(self);
                budget--;
                more = true;
            }
            if (zmq_getsockopt(self->clients, ZMQ_EVENTS, &ev, &sz) == 0 && (ev & ZMQ_POLLIN)) {
                s_client_message(self);
                budget--;
                more = true;
            }
        }
        s_timers(self);
        qr_sched_set_now(self->sched, qr_clock_ms());
        s_dispatch(self);
        s_end_turn(self);
    }
    if (self->deposed)
        return 1;
    /* stopping: let the batch in flight and the one after it finish */
    for (int i = 0; i < 2 && !self->degraded; i++) {
        if (self->fly_db) {
            zmq_pollitem_t p = {self->pipe, 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&p, 1, 30000) <= 0)
                break;
            s_commit_done(self);
        }
        s_end_turn(self);
    }
    return 0;
}

/* ---- construction ---- */

/* A ROUTER bound to endpoint; a CURVE server with secret key sec and ZAP
 * domain when sec is given. */
static void *s_bind(void *zctx, const char *endpoint, int64_t maxmsg, const char *sec,
                    const char *domain, char *err, size_t errlen)
{
    void *s = zmq_socket(zctx, ZMQ_ROUTER);
    if (!s) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    if (sec) {
        int one = 1;
        if (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one) < 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, QR_KEY_Z85_LEN + 1) < 0 ||
            zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, domain, strlen(domain)) < 0) {
            snprintf(err, errlen, "cannot enable CURVE: %s", zmq_strerror(errno));
            zmq_close(s);
            return NULL;
        }
    }
    int linger = 0, hwm = 100000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    /* a comma-separated list binds each, e.g. tcp for remote peers plus
     * ipc for the ones on this host */
    char eps[1024];
    snprintf(eps, sizeof eps, "%s", endpoint);
    char *save = NULL;
    for (char *ep = strtok_r(eps, ",", &save); ep; ep = strtok_r(NULL, ",", &save)) {
        while (*ep == ' ')
            ep++;
        if (zmq_bind(s, ep) < 0) {
            snprintf(err, errlen, "cannot bind %.200s: %s", ep, zmq_strerror(errno));
            zmq_close(s);
            return NULL;
        }
    }
    return s;
}

/* Waits, as a standby, until this broker holds the leader lock, then fences
 * both commit connections with the new epoch.  /healthz answers 503 and
 * /livez 200 meanwhile, so an orchestrator routes to the active broker only. */
static int s_become_active(qr_broker_t *self, char *err, size_t errlen)
{
    self->lock = qr_db_new(self->cfg.db, err, errlen);
    if (!self->lock)
        return QR_EDB;
    if (self->cfg.metrics_addr && *self->cfg.metrics_addr) {
        self->httpd = qr_httpd_new(self->cfg.metrics_addr, err, errlen);
        if (!self->httpd)
            return QR_EINVAL;
    }
    char host[48] = "";
    gethostname(host, sizeof host - 1);
    snprintf(self->holder, sizeof self->holder, "%.40s pid %d", host, (int)getpid());
    for (;;) {
        bool got = false;
        if (qr_db_lead(self->lock, self->holder, &got, &self->epoch, err, errlen) != QR_OK)
            return QR_EDB;
        if (got)
            break;
        if (!self->standby)
            qr_log(QR_LOG_INFO, "standby: another broker is active; waiting for its lock", NULL);
        self->standby = true;
        if (self->cfg.stop && *self->cfg.stop) {
            snprintf(err, errlen, "stopped while standing by");
            return QR_ECANCELLED;
        }
        /* wait a second, answering health checks */
        if (self->httpd) {
            zmq_pollitem_t it = {NULL, qr_httpd_fd(self->httpd), ZMQ_POLLIN, 0};
            if (zmq_poll(&it, 1, 1000) > 0)
                qr_httpd_serve(self->httpd, s_render, self);
        } else
            sleep(1);
    }
    if (self->standby)
        qr_log(QR_LOG_INFO, "taking over as the active broker", "epoch=%" PRIu64, self->epoch);
    self->standby = false;
    qr_db_fence(self->db, self->epoch);
    qr_db_fence(self->spare, self->epoch);
    return QR_OK;
}

/* Loads the server key pair PREFIX.key/.pub, creating it on first start. */
static int s_server_key(const char *prefix, char *pub, char *sec, char *err, size_t errlen)
{
    if (!prefix || !*prefix) {
        snprintf(err, errlen, "no --curve-key: give the broker a key pair prefix (created on "
                              "first start), or run it with --insecure for local development");
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s.key", prefix);
    if (access(path, F_OK) != 0) {
        if (qr_keys_generate(pub, sec) < 0) {
            snprintf(err, errlen, "this libzmq has no CURVE support");
            return -1;
        }
        if (qr_keys_write(prefix, pub, sec, err, errlen) < 0)
            return -1;
        qr_log(QR_LOG_INFO, "server key pair created", "secret=%s public_key=%s", path, pub);
        return 0;
    }
    return qr_keys_load_secret(path, pub, sec, err, errlen);
}

/* --admin-keys: comma-separated public keys (Z85 text or .pub files). */
static int s_boot_admins_load(qr_broker_t *self, const char *list, char *err, size_t errlen)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", list ? list : "");
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (!*t)
            continue;
        char (*na)[QR_KEY_Z85_LEN + 1] =
            realloc(self->boot_admins, (self->nboot_admins + 1) * sizeof *na);
        if (!na) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        self->boot_admins = na;
        if (qr_keys_load_public(t, self->boot_admins[self->nboot_admins], err, errlen) < 0)
            return -1;
        self->nboot_admins++;
    }
    return 0;
}

qr_broker_t *qr_broker_new(const qr_broker_cfg_t *cfg, char *err, size_t errlen)
{
    qr_broker_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = *cfg;
    if (self->cfg.heartbeat_ms < 10 || self->cfg.liveness < 1 || self->cfg.max_attempts < 1 ||
        self->cfg.max_input_bytes < 1024 || self->cfg.fee_bps < 0 || self->cfg.fee_bps > 10000 ||
        self->cfg.prefetch < 0 || self->cfg.prefetch_units < 0 || self->cfg.batch_max < 1 || self->cfg.verify_rounds < 1 ||
        self->cfg.blob_cache_mb < 0 || self->cfg.default_unit_cap < 1 ||
        self->cfg.min_reputation < 0 || self->cfg.min_reputation > 100 ||
        self->cfg.keep_final < 0 || self->cfg.client_rate < 0 || self->cfg.client_quota < 0) {
        snprintf(err, errlen,
                 "bad settings: need heartbeat-ms >= 10, liveness >= 1, max-attempts >= 1, "
                 "max-input-bytes >= 1024, fee-bps 0..10000, prefetch and prefetch-units >= 0, batch-max >= 1, "
                 "verify-rounds >= 1, blob-cache-mb >= 0, default-unit-cap >= 1, "
                 "min-reputation 0..100, keep-final-jobs, client-rate and client-quota >= 0");
        free(self);
        return NULL;
    }
    if (self->cfg.max_artifact_mb < 1 || self->cfg.model_cache_mb < 0 ||
        self->cfg.affinity_wait_ms < 0 || self->cfg.affinity_wait_ms > 60000) {
        snprintf(err, errlen, "bad settings: need max-artifact-mb >= 1, model-cache-mb >= 0, "
                              "affinity-wait-ms 0..60000");
        free(self);
        return NULL;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    self->check_threads = ncpu > 1 ? (int)(ncpu < 4 ? ncpu : 4) : 1;
    /* before the state load: restored ai.infer jobs look up their models */
    self->store = qr_store_new(cfg->store_dir && *cfg->store_dir ? cfg->store_dir : "quarry-store",
                               (uint64_t)self->cfg.max_artifact_mb << 20, 64, err, errlen);
    if (!self->store || !(self->models = qr_hmap_new()) || !(self->zkeys = qr_hmap_new())) {
        if (self->store)
            snprintf(err, errlen, "out of memory");
        goto fail;
    }
    int applied = 0;
    self->db = qr_db_new(cfg->db, err, errlen);
    if (!self->db)
        goto fail;
    self->spare = qr_db_new(cfg->db, err, errlen);
    if (!self->spare)
        goto fail;
    if (qr_db_migrate(self->db, &applied, err, errlen) != QR_OK)
        goto fail;
    if (applied)
        qr_log(QR_LOG_INFO, "migrations applied", "count=%d", applied);
    if (s_become_active(self, err, errlen) != QR_OK)
        goto fail;
    if (s_state_load(self, err, errlen) != QR_OK)
        goto fail;
    self->zctx = zmq_ctx_new();
    if (!self->zctx) {
        snprintf(err, errlen, "zmq_ctx_new failed");
        goto fail;
    }
    /* frames may exceed the input limit a little so oversize inputs get a
     * clear QR_ETOOBIG instead of a silent disconnect; far bigger ones are
     * cut off by ZeroMQ before they cost memory */
    int64_t maxmsg = cfg->max_input_bytes * 2 + 65536;
    char sec[QR_KEY_Z85_LEN + 1] = "", pub[QR_KEY_Z85_LEN + 1] = "";
    if (cfg->insecure) {
        qr_log(QR_LOG_WARN, "INSECURE MODE (--insecure): no encryption and no authentication on "
                            "any endpoint; never expose this broker to a network",
               NULL);
    } else {
        if (s_server_key(cfg->curve_key, pub, sec, err, errlen) < 0 ||
            s_boot_admins_load(self, cfg->admin_keys, err, errlen) < 0)
            goto fail;
        /* the handler must exist before the first handshake */
        self->zap = zmq_socket(self->zctx, ZMQ_REP);
        if (!self->zap || zmq_bind(self->zap, "inproc://zeromq.zap.01") < 0) {
            snprintf(err, errlen, "cannot start the ZAP handler: %s", zmq_strerror(errno));
            goto fail;
        }
        int zl = 0;
        zmq_setsockopt(self->zap, ZMQ_LINGER, &zl, sizeof zl);
        qr_log(QR_LOG_INFO, "CURVE on every endpoint", "server_key=%s admins=%zu open_registration=%d",
               pub, self->nboot_admins, cfg->open_registration);
    }
    self->clients = s_bind(self->zctx, cfg->client_endpoint, maxmsg, cfg->insecure ? NULL : sec,
                           "clients", err, errlen);
    if (!self->clients)
        goto fail;
    self->workers = s_bind(self->zctx, cfg->worker_endpoint, maxmsg, cfg->insecure ? NULL : sec,
                           "workers", err, errlen);
    memset(sec, 0, sizeof sec);
    if (!self->workers)
        goto fail;
    /* the committer thread writes batches while the loop builds the next */
    self->pipe = zmq_socket(self->zctx, ZMQ_PAIR);
    void *theirs = zmq_socket(self->zctx, ZMQ_PAIR);
    int linger = 0;
    if (self->pipe)
        zmq_setsockopt(self->pipe, ZMQ_LINGER, &linger, sizeof linger);
    if (!self->pipe || !theirs || zmq_bind(self->pipe, "inproc://quarry-committer") < 0 ||
        zmq_connect(theirs, "inproc://quarry-committer") < 0 ||
        pthread_create(&self->committer, NULL, s_committer, theirs) != 0) {
        snprintf(err, errlen, "cannot start the committer thread");
        if (theirs)
            zmq_close(theirs);
        goto fail;
    }
    self->committer_up = true;
    if (!self->httpd && cfg->metrics_addr && *cfg->metrics_addr) {
        self->httpd = qr_httpd_new(cfg->metrics_addr, err, errlen);
        if (!self->httpd)
            goto fail;
        qr_log(QR_LOG_INFO, "metrics listening", "addr=%s port=%d", cfg->metrics_addr,
               qr_httpd_port(self->httpd));
    }
    self->started_ms = qr_wall_ms();
    qr_log(QR_LOG_INFO, "broker listening", "clients=%s workers=%s", cfg->client_endpoint,
           cfg->worker_endpoint);
    return self;
fail:
    qr_broker_destroy(&self);
    return NULL;
}

void qr_broker_destroy(qr_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_broker_t *self = *self_p;
    if (self->committer_up) {
        qr_db_t *none = NULL;
        zmq_send(self->pipe, &none, sizeof none, 0);
        pthread_join(self->committer, NULL);
    }
    if (self->pipe)
        zmq_close(self->pipe);
    qr_httpd_destroy(&self->httpd);
    if (self->zap)
        zmq_close(self->zap);
    free(self->boot_admins);
    /* outboxes first: their entries hold blobs the state owns */
    s_drop_outbox(self, self->fly_out, self->fly_nout, false);
    s_drop_outbox(self, self->out, self->nout, false);
    self->fly_nout = self->nout = 0;
    s_state_clear(self);
    free(self->fly_out);
    free(self->fly_dirty);
    free(self->out);
    free(self->dirty);
    free(self->dl);
    qr_ring_free(&self->cache);
    qr_ring_free(&self->final);
    if (self->models)
        qr_hmap_each(self->models, s_model_free_each, NULL);
    qr_hmap_destroy(&self->models);
    if (self->zkeys)
        qr_hmap_each(self->zkeys, s_zkey_free_each, NULL);
    qr_hmap_destroy(&self->zkeys);
    qr_store_destroy(&self->store);
    if (self->clients)
        zmq_close(self->clients);
    if (self->workers)
        zmq_close(self->workers);
    if (self->zctx)
        zmq_ctx_term(self->zctx);
    qr_db_destroy(&self->db);
    qr_db_destroy(&self->spare);
    qr_db_destroy(&self->lock); /* releases the leader lock */
    free(self);
    *self_p = NULL;
}
