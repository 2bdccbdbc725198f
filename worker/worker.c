/* Worker main loop; see worker.h and docs/worker.md.
 *
 * Design notes.  One thread, one zmq_poll over the broker DEALER, the
 * executor pool's event socket and the stop descriptor; every deadline is an
 * absolute monotonic time (Majordomo style) and the poll sleeps until the
 * nearest one.  Small ai.gemm jobs run on this thread inside the pool's calls
 * (executor.c); their DONE events wait in the pool, not on its socket, so
 * the poll does not sleep while qr_executor_ready and the loop reads them.
 *
 * Link states and the functions that move between them:
 *
 *   down --s_connect--> connected --ReadyAck (s_on_ready_ack)--> registered
 *     ^                     |  READY every second (s_send_ready)      |
 *     |                     |                                         |
 *     +-- s_drop(backoff) --+----- silence for liveness * heartbeat --+
 *     +-- s_drop(at once) ------- DISCONNECT from the broker ---------+
 *
 * Invariants:
 *   1. The DEALER is opened with ZMQ_IMMEDIATE and a zero send timeout, so a
 *      send never blocks the loop and never queues behind a dead connection;
 *      a send that cannot go out fails with EAGAIN at once.
 *   2. RESULT and FAIL are sent only while registered.  A job that finishes
 *      while the link is down, or whose send fails, waits in the outbox and
 *      is flushed right after the next ReadyAck; READY lists it in `running`
 *      together with the pool's jobs, so the broker keeps it assigned to us.
 *   3. A job id is held at most once: in the pool, or in the outbox.  A
 *      duplicate ASSIGN (a broker replaying after a reconnect) is ignored.
 *   4. The broker's CANCEL is silent both ways: the job is dropped if queued,
 *      stopped if running, forgotten if finished but unsent.
 *   5. Draining never refuses registration: the worker keeps heartbeating so
 *      that the broker accepts the results of the jobs it lets finish. */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact.h"
#include "cache.h"
#include "devices.h"
#include "err.h"
#include "executor.h"
#include "gemm.h"
#include "gpu.h"
#include "hmap.h"
#include "httpd.h"
#include "keys.h"
#include "model.h"
#include "ring.h"
#include "safetensors.h"
#include "zkey.h"
#include "util.h"
#include "wire.h"

#define S_READY_RETRY_MS 1000 /* READY again while no ack came */
#define S_CONNECT_RETRY_MS 100 /* READY again when the TCP link was not up yet */
#define S_POLL_MAX_MS 1000
#define S_BATCH 256           /* messages handled per socket per loop turn */
#define S_FINAL_LINGER_MS 2000 /* time the last FAILs and DISCONNECT get to leave */
#define S_RUNTIME "ai.gemm"
#define S_RUNTIME_INFER "ai.infer"
#define S_RUNTIME_ZK "zk.groth16"
#define S_FETCH_CHUNK (1u << 20)   /* bytes per FETCH */
#define S_FETCH_WINDOW 4           /* FETCHes in flight per artifact (credit) */
#define S_FETCH_STALL_MS 30000     /* a fetch that hears nothing this long fails */
#define S_MODELS_LOADED 8          /* models kept loaded beyond those in use */
#define S_GRAPH_MAX (1u << 20)

/* Why the worker itself stopped a running job (echoed by the pool). */
enum { S_CANCEL_BROKER = 1, S_CANCEL_SHUTDOWN = 2 };

/* A finished job waiting for the link (invariant 2). */
typedef struct s_out {
    struct s_out *next;  /* outbox order */
    uint64_t job_id;     /* the job */
    qr_exec_job_t *job;  /* RESULT: the finished job; NULL for a FAIL */
    int code;            /* FAIL: qr_err_t */
    char message[128];   /* FAIL: why */
} s_out_t;

/* An ai.infer job waiting for its model's artifacts to arrive. */
typedef struct s_pending {
    struct s_pending *next;
    uint64_t id;                     /* the job */
    uint32_t rows;                   /* input rows */
    char weights[QR_SHA_HEX + 1];    /* artifacts it needs */
    char graph[QR_SHA_HEX + 1];      /* "" for zk.groth16 (weights: the .zkey) */
    bool zk;                         /* zk.groth16 rather than ai.infer */
    zmq_msg_t in;                    /* its input frame */
} s_pending_t;

/* An artifact being fetched from the broker in chunks (credit-based flow
 * control: at most S_FETCH_WINDOW FETCHes in flight).  Chunks arrive in
 * order (one DEALER-ROUTER pipe), so the hash runs as they come. */
typedef struct s_fetch {
    struct s_fetch *next;
    char sha[QR_SHA_HEX + 1];
    uint64_t size;      /* total, known from the first CHUNK (0 before) */
    uint64_t requested; /* bytes asked for so far */
    uint64_t received;  /* bytes written */
    int inflight;       /* FETCHes without a CHUNK yet */
    int fd;             /* the .part file */
    qr_sha_t hash;      /* over the bytes written */
    int64_t touched_ms; /* last CHUNK (or start) */
} s_fetch_t;

/* A model loaded from the cache, shared by the jobs that run on it. */
typedef struct {
    char key[2 * QR_SHA_HEX + 2];    /* "WEIGHTS:GRAPH" */
    char weights[QR_SHA_HEX + 1];
    char graph[QR_SHA_HEX + 1];
    qr_st_file_t *st;
    qr_model_t *model;
    qr_g16_pk_t *pk;                 /* zk.groth16: the proving key (st, model NULL) */
    uint32_t users;                  /* jobs in the pool on it */
    int64_t used_ms;                 /* LRU among unused ones */
} s_wmodel_t;

/* An input the broker may refer to by id instead of sending it again.  The
 * frames are ZeroMQ references: a job gets copies that share the bytes. */
typedef struct {
    uint64_t id;  /* the broker's blob id */
    zmq_msg_t a;  /* A */
    zmq_msg_t b;  /* B */
    size_t bytes; /* both sizes, as the broker counts them */
} s_input_t;

struct qr_worker_t {
    void *ctx;                  /* caller's ZeroMQ context */
    qr_worker_cfg_t cfg;        /* copy; strings below */
    char *broker;               /* owned copy of cfg.broker */
    char *name;                 /* owned worker name */
    char *operator_name;        /* owned copy of cfg.operator_name */
    qr_devices_t *devices;      /* reported in READY */
    qr_executor_t *pool;        /* computes the jobs */
    void *dealer;               /* link to the broker; NULL while down */
    bool registered;            /* ReadyAck received on this link */
    uint64_t worker_id;         /* from the last ReadyAck */
    int64_t heartbeat_ms;       /* interval in force */
    int64_t liveness;           /* missed heartbeats tolerated */
    int64_t backoff_ms;         /* next reconnect delay after silence */
    int64_t reconnect_at;       /* when to open the link again (while down) */
    int64_t ready_at;           /* when to send READY next (connected, unregistered) */
    int64_t last_recv;          /* last message from the broker */
    int64_t last_send;          /* last message to the broker */
    s_out_t *outbox;            /* finished jobs waiting to be sent */
    s_out_t *outbox_tail;       /* last of them */
    bool draining;              /* a stop was requested */
    bool hurried;               /* drain deadline passed: running jobs cancelled */
    int64_t drain_deadline;     /* when running jobs get cancelled */
    bool stop_closed;           /* stop_fd reached end of file: stop polling it */
    uint64_t results;           /* RESULTs produced, for the corruption fault */
    /* Input cache, FIFO by arrival: the broker mirrors it exactly (same
     * budget, same order, same byte counts) to know what it may omit. */
    qr_hmap_t *inputs;          /* blob id -> s_input_t */
    qr_ring_t in_order;         /* the same inputs, oldest first */
    size_t in_bytes;            /* bytes held */
    qr_httpd_t *httpd;          /* /metrics and /healthz; NULL when off */
    uint64_t failed;            /* jobs that failed here (not cancelled by the broker) */
    uint64_t compute_us;        /* time spent computing jobs, all executors */
    uint64_t input_hits;        /* ASSIGNs served from the input cache */
    uint64_t input_misses;      /* ASSIGNs naming an input it did not hold */
    qr_gpu_t *gpu;              /* the CUDA path when a GPU was found; NULL = CPU */
    qr_cache_t *cache;          /* models on disk */
    s_pending_t *pending;       /* ai.infer jobs waiting for artifacts */
    s_fetch_t *fetches;         /* artifacts on their way */
    qr_hmap_t *models;          /* "WEIGHTS:GRAPH" -> s_wmodel_t */
    qr_hmap_t *job_models;      /* job id -> s_wmodel_t, while the pool holds the job */
    uint64_t fetch_bytes;       /* artifact bytes received */
    uint64_t fetches_done;      /* artifacts fetched and checked */
    uint64_t fetches_failed;
    uint64_t model_loads;       /* models loaded into memory */
    bool curve;                 /* CurveZMQ: the keys below go on every DEALER */
    char server_pub[QR_KEY_Z85_LEN + 1]; /* broker public key */
    char pub[QR_KEY_Z85_LEN + 1];        /* own public key */
    char sec[QR_KEY_Z85_LEN + 1];        /* own secret key: never logged */
};

/* Prometheus text for /metrics; /healthz is 200 while registered. */
static int s_render(void *arg, const char *path, qr_text_t *t)
{
    qr_worker_t *self = arg;
    if (strcmp(path, "/healthz") == 0) {
        qr_text_printf(t, self->registered ? "ok\n" : "not registered with the broker\n");
        return self->registered ? 200 : 503;
    }
    if (strcmp(path, "/metrics") != 0) {
        qr_text_printf(t, "not found; try /metrics or /healthz\n");
        return 404;
    }
    uint64_t passes = 0, pjobs = 0;
    qr_executor_batch_stats(self->pool, &passes, &pjobs);
    qr_text_printf(t,
                   "# HELP quarry_worker_registered 1 while registered with the broker\n"
                   "# TYPE quarry_worker_registered gauge\n"
                   "quarry_worker_registered %d\n"
                   "# HELP quarry_worker_jobs_total jobs this worker finished, by outcome\n"
                   "# TYPE quarry_worker_jobs_total counter\n"
                   "quarry_worker_jobs_total{outcome=\"done\"} %llu\n"
                   "quarry_worker_jobs_total{outcome=\"failed\"} %llu\n"
                   "# HELP quarry_worker_busy_seconds_total time spent computing, per device\n"
                   "# TYPE quarry_worker_busy_seconds_total counter\n"
                   "quarry_worker_busy_seconds_total{device=\"cpu0\"} %.6f\n"
                   "# HELP quarry_worker_slots job slots (executor threads)\n"
                   "# TYPE quarry_worker_slots gauge\n"
                   "quarry_worker_slots %d\n"
                   "# HELP quarry_worker_input_cache inputs kept for the broker to name\n"
                   "# TYPE quarry_worker_input_cache gauge\n"
                   "quarry_worker_input_cache{unit=\"entries\"} %zu\n"
                   "quarry_worker_input_cache{unit=\"bytes\"} %zu\n"
                   "# HELP quarry_worker_input_lookups_total ASSIGNs that named an input\n"
                   "# TYPE quarry_worker_input_lookups_total counter\n"
                   "quarry_worker_input_lookups_total{result=\"hit\"} %llu\n"
                   "quarry_worker_input_lookups_total{result=\"miss\"} %llu\n"
                   "# HELP quarry_worker_model_cache models on disk\n"
                   "# TYPE quarry_worker_model_cache gauge\n"
                   "quarry_worker_model_cache{unit=\"entries\"} %zu\n"
                   "quarry_worker_model_cache{unit=\"bytes\"} %llu\n"
                   "# HELP quarry_worker_fetches_total artifacts fetched from the broker\n"
                   "# TYPE quarry_worker_fetches_total counter\n"
                   "quarry_worker_fetches_total{result=\"ok\"} %llu\n"
                   "quarry_worker_fetches_total{result=\"failed\"} %llu\n"
                   "# HELP quarry_worker_fetch_bytes_total artifact bytes received\n"
                   "# TYPE quarry_worker_fetch_bytes_total counter\n"
                   "quarry_worker_fetch_bytes_total %llu\n"
                   "# HELP quarry_worker_infer_passes_total ai.infer forward passes (batches)\n"
                   "# TYPE quarry_worker_infer_passes_total counter\n"
                   "quarry_worker_infer_passes_total %llu\n"
                   "# HELP quarry_worker_infer_jobs_total ai.infer jobs those passes carried\n"
                   "# TYPE quarry_worker_infer_jobs_total counter\n"
                   "quarry_worker_infer_jobs_total %llu\n"
                   "# HELP quarry_worker_model_loads_total models loaded into memory\n"
                   "# TYPE quarry_worker_model_loads_total counter\n"
                   "quarry_worker_model_loads_total %llu\n",
                   self->registered ? 1 : 0, (unsigned long long)self->results,
                   (unsigned long long)self->failed, (double)self->compute_us / 1e6,
                   self->cfg.slots, self->in_order.n, self->in_bytes,
                   (unsigned long long)self->input_hits, (unsigned long long)self->input_misses,
                   qr_cache_count(self->cache), (unsigned long long)qr_cache_bytes(self->cache),
                   (unsigned long long)self->fetches_done, (unsigned long long)self->fetches_failed,
                   (unsigned long long)self->fetch_bytes, (unsigned long long)passes,
                   (unsigned long long)pjobs, (unsigned long long)self->model_loads);
    return 200;
}

/* ---- small helpers ---------------------------------------------------------- */


static int64_t s_min(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

void qr_worker_cfg_defaults(qr_worker_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->broker = "tcp://127.0.0.1:5556";
    cfg->name = NULL;
    cfg->operator_name = "operator";
    cfg->ask_price = 10;
    cfg->slots = 0;
    cfg->drain_ms = 30000;
    cfg->gpu = true;
    cfg->heartbeat_ms = 2500;
    cfg->liveness = 3;
    cfg->backoff_min_ms = 250;
    cfg->backoff_max_ms = 10000;
    cfg->input_cache_mb = 256;
    cfg->cache_dir = "quarry-cache";
    cfg->cache_mb = 8192;
    cfg->batch_rows = 256;
    cfg->batch_delay_ms = 0;
    cfg->fault_tamper_layer = -1;
}

/* ---- input cache ------------------------------------------------------------ */

static void s_input_free(s_input_t *in)
{
    zmq_msg_close(&in->a);
    zmq_msg_close(&in->b);
    free(in);
}

/* Keeps references to frames a and b under id, evicting the oldest entries
 * past the budget.  An input larger than the budget is not kept. */
static void s_input_put(qr_worker_t *self, uint64_t id, zmq_msg_t *a, zmq_msg_t *b)
{
    size_t cap = (size_t)self->cfg.input_cache_mb << 20;
    size_t bytes = zmq_msg_size(a) + zmq_msg_size(b);
    if (!self->inputs || bytes > cap || qr_hmap_get_u64(self->inputs, id))
        return;
#ifdef QR_TEST_FAULTS
    if (self->cfg.fault_forget_inputs)
        return; /* claims a cache in READY, keeps nothing: every named input misses */
#endif
    while (self->in_order.n && self->in_bytes + bytes > cap) {
        s_input_t *old = qr_ring_pop(&self->in_order);
        self->in_bytes -= old->bytes;
        qr_hmap_del_u64(self->inputs, old->id);
        s_input_free(old);
    }
    s_input_t *in = calloc(1, sizeof *in);
    if (!in)
        return;
    zmq_msg_init(&in->a);
    zmq_msg_init(&in->b);
    if (zmq_msg_copy(&in->a, a) < 0 || zmq_msg_copy(&in->b, b) < 0 ||
        qr_ring_push(&self->in_order, in) < 0) {
        s_input_free(in);
        return;
    }
    if (qr_hmap_put_u64(self->inputs, id, in) < 0) {
        self->in_order.n--; /* undo the push: it was the newest */
        s_input_free(in);
        return;
    }
    in->id = id;
    in->bytes = bytes;
    self->in_bytes += bytes;
}

static void s_input_clear(qr_worker_t *self)
{
    for (s_input_t *in; (in = qr_ring_pop(&self->in_order));)
        s_input_free(in);
    self->in_bytes = 0;
    qr_hmap_destroy(&self->inputs);
    self->inputs = qr_hmap_new();
}

/* Loads cfg's keys into the three buffers; *curve says whether any are in
 * use.  0, or -1 with the reason in err. */
static int s_load_keys(const qr_worker_cfg_t *cfg, bool *curve, char *server_pub, char *pub,
                       char *sec, char *err, size_t errlen)
{
    bool have_server = cfg->server_key && *cfg->server_key;
    bool have_key = cfg->key_file && *cfg->key_file;
    *curve = false;
    if (!have_server) {
        if (have_key) {
            snprintf(err, errlen, "--key needs --server-key (the broker's public key) too");
            return -1;
        }
        return 0;
    }
    if (!zmq_has("curve")) {
        snprintf(err, errlen, "this libzmq has no CURVE security");
        return -1;
    }
    char why[384];
    if (qr_keys_load_public(cfg->server_key, server_pub, why, sizeof why) < 0) {
        snprintf(err, errlen, "--server-key: %s", why);
        return -1;
    }
    if (have_key) {
        if (qr_keys_load_secret(cfg->key_file, pub, sec, why, sizeof why) < 0) {
            snprintf(err, errlen, "--key: %s", why);
            return -1;
        }
    } else if (qr_keys_generate(pub, sec) < 0) {
        snprintf(err, errlen, "cannot generate a CURVE key pair");
        return -1;
    }
    *curve = true;
    return 0;
}

int qr_worker_check_keys(const qr_worker_cfg_t *cfg, char *err, size_t errlen)
{
    bool curve;
    char server_pub[QR_KEY_Z85_LEN + 1], pub[QR_KEY_Z85_LEN + 1], sec[QR_KEY_Z85_LEN + 1];
    int rc = s_load_keys(cfg, &curve, server_pub, pub, sec, err, errlen);
    volatile char *v = sec;
    for (size_t i = 0; i < sizeof sec; i++)
        v[i] = 0;
    return rc;
}

qr_worker_t *qr_worker_new(void *ctx, const qr_worker_cfg_t *cfg)
{
    qr_worker_t *self = calloc(1, sizeof *self);
    if (!self)
        goto fail;
    self->ctx = ctx;
    self->cfg = *cfg;
    self->inputs = qr_hmap_new();
    if (!self->inputs)
        goto fail;
    char kerr[512];
    if (s_load_keys(cfg, &self->curve, self->server_pub, self->pub, self->sec, kerr,
                    sizeof kerr) < 0) {
        qr_log(QR_LOG_ERROR, "bad CURVE keys", "err=\"%s\"", kerr);
        goto fail;
    }
    /* the copies in cfg need not outlive this call */
    self->cfg.server_key = NULL;
    self->cfg.key_file = NULL;
    if (self->curve && !(cfg->key_file && *cfg->key_file))
        qr_log(QR_LOG_WARN, "no --key: using a throwaway key pair",
               "pub=%s", self->pub);
    if (cfg->metrics_addr && *cfg->metrics_addr) {
        char err[256];
        self->httpd = qr_httpd_new(cfg->metrics_addr, err, sizeof err);
        if (!self->httpd) {
            qr_log(QR_LOG_ERROR, "cannot serve metrics", "err=\"%s\"", err);
            goto fail;
        }
    }
    if (self->cfg.slots <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        self->cfg.slots = n > 0 ? (int)n : 1;
    }
    if (self->cfg.heartbeat_ms <= 0)
        self->cfg.heartbeat_ms = 2500;
    if (self->cfg.liveness <= 0)
        self->cfg.liveness = 3;
    if (self->cfg.backoff_min_ms <= 0)
        self->cfg.backoff_min_ms = 250;
    if (self->cfg.backoff_max_ms < self->cfg.backoff_min_ms)
        self->cfg.backoff_max_ms = self->cfg.backoff_min_ms;
    if (self->cfg.drain_ms < 0)
        self->cfg.drain_ms = 0;
    char name[300];
    if (cfg->name && *cfg->name)
        snprintf(name, sizeof name, "%s", cfg->name);
    else {
        char host[256] = "worker";
        if (gethostname(host, sizeof host) < 0)
            snprintf(host, sizeof host, "worker");
        host[sizeof host - 1] = '\0';
        snprintf(name, sizeof name, "%s-%ld", host, (long)getpid());
    }
    self->broker = strdup(cfg->broker ? cfg->broker : "tcp://127.0.0.1:5556");
    self->name = strdup(name);
    self->operator_name = strdup(cfg->operator_name ? cfg->operator_name : "operator");
    if (!self->broker || !self->name || !self->operator_name)
        goto fail;
    self->cfg.broker = self->broker;
    self->cfg.name = self->name;
    self->cfg.operator_name = self->operator_name;
    qr_devices_opts_t dopts = {.gpu = cfg->gpu};
    self->devices = qr_devices_detect(&dopts);
    if (!self->devices)
        goto fail;
    self->pool = qr_executor_new(ctx, self->cfg.slots, self->cfg.fault_delay_ms);
    if (!self->pool)
        goto fail;
    for (size_t i = 0; self->cfg.gpu && i < qr_devices_count(self->devices); i++) {
        const qr_device_info_t *di = qr_devices_get(self->devices, i);
        if (strcmp(di->type, "gpu") != 0)
            continue;
        char gerr[256];
        self->gpu = qr_gpu_open(0, gerr, sizeof gerr);
        if (self->gpu) {
            qr_executor_set_gpu(self->pool, self->gpu);
            qr_log(QR_LOG_INFO, "GPU path on", "device=\"%s\" module=%s",
                   qr_gpu_name(self->gpu), qr_gpu_module_path(self->gpu));
        } else
            qr_log(QR_LOG_WARN, "GPU found but not usable; computing on the CPU",
                   "reason=\"%s\"", gerr);
        break;
    }
    qr_executor_set_batching(self->pool,
                             (uint32_t)(self->cfg.batch_rows > 0 ? self->cfg.batch_rows : 1),
                             self->cfg.batch_delay_ms);
    {
        char cerr[512];
        self->cache = qr_cache_new(cfg->cache_dir && *cfg->cache_dir ? cfg->cache_dir
                                                                     : "quarry-cache",
                                   (uint64_t)(self->cfg.cache_mb > 0 ? self->cfg.cache_mb : 1)
                                       << 20,
                                   cerr, sizeof cerr);
        if (!self->cache) {
            qr_log(QR_LOG_ERROR, "cannot open the model cache", "err=\"%s\"", cerr);
            goto fail;
        }
        self->cfg.cache_dir = NULL; /* the copy need not outlive this call */
    }
    if (!(self->models = qr_hmap_new()) || !(self->job_models = qr_hmap_new()))
        goto fail;
    self->heartbeat_ms = self->cfg.heartbeat_ms;
    self->liveness = self->cfg.liveness;
    self->backoff_ms = self->cfg.backoff_min_ms;
    return self;
fail:
    qr_log(QR_LOG_ERROR, "worker could not start", NULL);
    qr_worker_destroy(&self);
    return NULL;
}

/* ---- models and artifacts ------------------------------------------------- */

static void s_wmodel_free(s_wmodel_t *m, qr_gpu_t *gpu)
{
    if (!m)
        return;
    qr_gpu_model_forget(gpu, m->model); /* its device copy first */
    qr_model_destroy(&m->model);
    qr_g16_pk_destroy(&m->pk);
    qr_st_destroy(&m->st);
    free(m);
}

static void s_wmodel_free_each(void *arg, void *v)
{
    s_wmodel_free(v, arg);
}

static void s_pending_free(s_pending_t *p)
{
    zmq_msg_close(&p->in);
    free(p);
}

static void s_fetch_free(const qr_worker_t *self, s_fetch_t *f)
{
    char part[4200];
    if (f->fd >= 0)
        close(f->fd);
    if (self->cache && qr_cache_path(self->cache, f->sha, true, part, sizeof part) == 0)
        unlink(part);
    free(f);
}

/* Drops every fetch and every job waiting for one (the link went down: the
 * broker re-queues jobs that READY does not list). */
static void s_artifacts_abort(qr_worker_t *self)
{
    while (self->fetches) {
        s_fetch_t *f = self->fetches;
        self->fetches = f->next;
        s_fetch_free(self, f);
    }
    while (self->pending) {
        s_pending_t *p = self->pending;
        self->pending = p->next;
        s_pending_free(p);
    }
}

static void s_outbox_free(s_out_t *o)
{
    if (o) {
        qr_exec_job_destroy(&o->job);
        free(o);
    }
}

void qr_worker_destroy(qr_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_worker_t *self = *self_p;
    if (self->dealer)
        zmq_close(self->dealer);
    qr_executor_destroy(&self->pool);
    s_artifacts_abort(self);
    if (self->models)
        qr_hmap_each(self->models, s_wmodel_free_each, self->gpu);
    qr_hmap_destroy(&self->models);
    qr_hmap_destroy(&self->job_models);
    qr_cache_destroy(&self->cache);
    qr_gpu_close(&self->gpu);
    while (self->outbox) {
        s_out_t *o = self->outbox;
        self->outbox = o->next;
        s_outbox_free(o);
    }
    for (s_input_t *in; (in = qr_ring_pop(&self->in_order));)
        s_input_free(in);
    qr_ring_free(&self->in_order);
    qr_hmap_destroy(&self->inputs);
    qr_httpd_destroy(&self->httpd);
    qr_devices_destroy(&self->devices);
    free(self->broker);
    free(self->name);
    free(self->operator_name);
    volatile char *v = self->sec; /* no secret left in freed memory */
    for (size_t i = 0; i < sizeof self->sec; i++)
        v[i] = 0;
    free(self);
    *self_p = NULL;
}

uint64_t qr_worker_id(const qr_worker_t *self)
{
    return self->worker_id;
}

/* ---- link ---------------------------------------------------------------------- */

static void s_sent(qr_worker_t *self, int rc)
{
    if (rc == QR_OK)
        self->last_send = qr_clock_ms();
}

static int s_connect(qr_worker_t *self)
{
    void *d = zmq_socket(self->ctx, ZMQ_DEALER);
    if (!d)
        return -1;
    int zero = 0, one = 1;
    zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(d, ZMQ_IMMEDIATE, &one, sizeof one);  /* invariant 1 */
    zmq_setsockopt(d, ZMQ_SNDTIMEO, &zero, sizeof zero); /* invariant 1 */
    /* every DEALER, the first and each one after a reconnect, gets the keys */
    if (self->curve &&
        (zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, self->server_pub, QR_KEY_Z85_LEN) < 0 ||
         zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, self->pub, QR_KEY_Z85_LEN) < 0 ||
         zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, self->sec, QR_KEY_Z85_LEN) < 0)) {
        int e = errno;
        zmq_close(d);
        errno = e;
        return -1;
    }
    if (zmq_connect(d, self->broker) < 0) {
        int e = errno;
        zmq_close(d);
        errno = e;
        return -1;
    }
    int64_t now = qr_clock_ms();
    self->dealer = d;
    self->registered = false;
    self->ready_at = now;
    self->last_recv = now;
    qr_log(QR_LOG_DEBUG, "connecting", "broker=%s", self->broker);
    return 0;
}

/* Closes the link; it reopens after the backoff delay, or at once. */
static void s_drop(qr_worker_t *self, bool backoff)
{
    if (self->dealer)
        zmq_close(self->dealer);
    self->dealer = NULL;
    self->registered = false;
    s_artifacts_abort(self);
    int64_t now = qr_clock_ms();
    if (backoff) {
        self->reconnect_at = now + self->backoff_ms;
        self->backoff_ms = s_min(self->backoff_ms * 2, self->cfg.backoff_max_ms);
    } else
        self->reconnect_at = now;
}

static void s_send_ready(qr_worker_t *self)
{
    size_t ndev = qr_devices_count(self->devices);
    size_t nheld = qr_executor_jobs(self->pool, NULL, 0, false);
    for (s_out_t *o = self->outbox; o; o = o->next)
        nheld++;
    Quarry__Device *devs = calloc(ndev, sizeof *devs);
    Quarry__Device **devp = calloc(ndev, sizeof *devp);
    uint64_t *running = calloc(nheld ? nheld : 1, sizeof *running);
    if (!devs || !devp || !running) {
        self->ready_at = qr_clock_ms() + S_CONNECT_RETRY_MS;
        goto done;
    }
    for (size_t i = 0; i < ndev; i++) {
        const qr_device_info_t *di = qr_devices_get(self->devices, i);
        quarry__device__init(&devs[i]);
        devs[i].type = (char *)di->type;
        devs[i].model = (char *)di->model;
        devs[i].mem_mb = di->mem_mb;
        devs[i].cores = di->cores;
        devs[i].compute_cap = (char *)di->compute_cap;
        devp[i] = &devs[i];
    }
    size_t n = qr_executor_jobs(self->pool, running, nheld, false);
    for (s_out_t *o = self->outbox; o && n < nheld; o = o->next)
        running[n++] = o->job_id;
    char *runtimes[] = {S_RUNTIME, S_RUNTIME_INFER, S_RUNTIME_ZK};
    size_t nart = qr_cache_count(self->cache);
    char **arts = calloc(nart ? nart : 1, sizeof *arts);
    if (!arts) {
        self->ready_at = qr_clock_ms() + S_CONNECT_RETRY_MS;
        goto done;
    }
    for (size_t i = 0; i < nart; i++)
        arts[i] = (char *)qr_cache_name(self->cache, i);
    Quarry__Ready r = QUARRY__READY__INIT;
    r.name = self->name;
    r.operator_ = self->operator_name;
    r.n_devices = ndev;
    r.devices = devp;
    r.n_runtimes = 3;
    r.runtimes = runtimes;
    r.n_artifacts = nart;
    r.artifacts = arts;
    r.ask_price = self->cfg.ask_price;
    r.slots = (uint32_t)self->cfg.slots;
    r.n_running = n;
    r.running = running;
    /* a new registration starts from an empty cache on both sides */
    s_input_clear(self);
    r.input_cache_mb = self->inputs ? (uint64_t)self->cfg.input_cache_mb : 0;
    int rc = qr_wire_send(self->dealer, NULL, 0, QR_PROTO_WORKER, QR_WCMD_READY, &r.base, NULL, 0);
    s_sent(self, rc);
    /* EAGAIN: the TCP link is not up yet (invariant 1); try again soon. */
    self->ready_at = qr_clock_ms() + (rc == QR_OK ? S_READY_RETRY_MS : S_CONNECT_RETRY_MS);
    if (rc == QR_OK)
        qr_log(QR_LOG_DEBUG, "ready sent", "running=%zu artifacts=%zu", n, nart);
    free(arts);
done:
    free(devs);
    free(devp);
    free(running);
}

/* ---- outbound job messages -------------------------------------------------------- */

static void s_free_frame(void *data, void *hint)
{
    (void)hint;
    free(data);
}

/* Sends RESULT with C as a zero-copy frame.  Returns QR_OK (the job's C now
 * belongs to ZeroMQ) or QR_EIO (nothing left the socket, the job is intact). */
static int s_send_result(qr_worker_t *self, qr_exec_job_t *job)
{
    uint32_t m, n, k;
    qr_exec_job_shape(job, &m, &n, &k);
    Quarry__Result r = QUARRY__RESULT__INIT;
    r.job_id = qr_exec_job_id(job);
    r.units = qr_exec_job_is_infer(job) ? 0 : qr_gemm_units(m, n, k); /* the broker bills */
    r.compute_us = qr_exec_job_compute_us(job);
    uint8_t body[64];
    size_t blen = protobuf_c_message_pack(&r.base, body);
    uint8_t cmd = QR_WCMD_RESULT;
    /* Multipart sends are all-or-nothing at the first frame under a high-water
     * mark, so only the first one can fail with EAGAIN. */
    if (zmq_send(self->dealer, QR_PROTO_WORKER, strlen(QR_PROTO_WORKER), ZMQ_SNDMORE) < 0)
        return QR_EIO;
    zmq_send(self->dealer, &cmd, 1, ZMQ_SNDMORE);
    zmq_send(self->dealer, body, blen, ZMQ_SNDMORE);
    size_t clen;
    float *c = qr_exec_job_take_result(job, &clen);
    bool infer = qr_exec_job_is_infer(job);
    zmq_msg_t frame;
    if (zmq_msg_init_data(&frame, c, clen, s_free_frame, NULL) < 0) {
        free(c);
        zmq_send(self->dealer, NULL, 0, 0); /* ends the message; the broker rejects it */
        qr_log(QR_LOG_ERROR, "result frame lost", "job=%llu", (unsigned long long)r.job_id);
        return QR_OK;
    }
    if (infer) {
        /* the output, then every earlier layer: what the broker checks */
        if (zmq_msg_send(&frame, self->dealer, ZMQ_SNDMORE) < 0)
            zmq_msg_close(&frame);
        size_t llen;
        float *l = qr_exec_job_take_layers(job, &llen);
        if (!l || zmq_msg_init_data(&frame, l, llen, s_free_frame, NULL) < 0) {
            free(l);
            zmq_send(self->dealer, NULL, 0, 0); /* an empty frame: the broker rejects it */
            return QR_OK;
        }
    }
    if (zmq_msg_send(&frame, self->dealer, 0) < 0) {
        zmq_msg_close(&frame);
        qr_log(QR_LOG_ERROR, "result frame lost", "job=%llu err=\"%s\"",
               (unsigned long long)r.job_id, zmq_strerror(errno));
    }
    return QR_OK;
}

static int s_send_fail(qr_worker_t *self, uint64_t job_id, int code, const char *message)
{
    Quarry__Fail f = QUARRY__FAIL__INIT;
    f.job_id = job_id;
    f.code = code;
    f.message = (char *)message;
    return qr_wire_send(self->dealer, NULL, 0, QR_PROTO_WORKER, QR_WCMD_FAIL, &f.base, NULL, 0);
}

/* Sends one outbox entry now if the link allows.  Returns QR_OK when sent. */
static int s_try_send(qr_worker_t *self, s_out_t *o)
{
    if (!self->dealer || !self->registered)
        return QR_EIO;
    int rc = o->job ? s_send_result(self, o->job) : s_send_fail(self, o->job_id, o->code, o->message);
    s_sent(self, rc);
    return rc;
}

/* Sends a finished job, or keeps it in the outbox (invariant 2).
 * Takes *job_p when given. */
static void s_emit(qr_worker_t *self, uint64_t job_id, qr_exec_job_t **job_p, int code,
                   const char *message)
{
    s_out_t *o = calloc(1, sizeof *o);
    if (!o) {
        if (job_p)
            qr_exec_job_destroy(job_p);
        qr_log(QR_LOG_ERROR, "out of memory, job answer lost", "job=%llu",
               (unsigned long long)job_id);
        return;
    }
    o->job_id = job_id;
    if (job_p) {
        o->job = *job_p;
        *job_p = NULL;
    }
    o->code = code;
    snprintf(o->message, sizeof o->message, "%s", message ? message : "");
    if (!self->outbox && s_try_send(self, o) == QR_OK) {
        s_outbox_free(o);
        return;
    }
    if (self->outbox_tail)
        self->outbox_tail->next = o;
    else
        self->outbox = o;
    self->outbox_tail = o;
}

static void s_flush(qr_worker_t *self)
{
    while (self->outbox && s_try_send(self, self->outbox) == QR_OK) {
        s_out_t *o = self->outbox;
        self->outbox = o->next;
        if (!self->outbox)
            self->outbox_tail = NULL;
        s_outbox_free(o);
    }
}

static bool s_outbox_forget(qr_worker_t *self, uint64_t job_id)
{
    s_out_t *prev = NULL;
    for (s_out_t *o = self->outbox; o; prev = o, o = o->next) {
        if (o->job_id != job_id)
            continue;
        if (prev)
            prev->next = o->next;
        else
            self->outbox = o->next;
        if (self->outbox_tail == o)
            self->outbox_tail = prev;
        s_outbox_free(o);
        return true;
    }
    return false;
}

/* ---- executor events ------------------------------------------------------------- */

#ifdef QR_TEST_FAULTS
/* Fault injection: a wrong C that Freivalds' check must catch.  One element
 * moves by far more than any rounding could explain. */
static void s_fault_corrupt(qr_worker_t *self, qr_exec_job_t *job)
{
    if (self->cfg.fault_corrupt_every <= 0 ||
        self->results % (uint64_t)self->cfg.fault_corrupt_every != 0)
        return;
    size_t len;
    float *c = qr_exec_job_result(job, &len);
    size_t count = len / sizeof(float);
    if (!c || !count)
        return;
    size_t i = count / 2;
    c[i] = c[i] * 1.5f + 1.0f;
    qr_log(QR_LOG_WARN, "fault injected: result corrupted", "job=%llu index=%zu",
           (unsigned long long)qr_exec_job_id(job), i);
}
#endif

/* A job left the pool (DONE, or dropped from its queue): its model may be
 * unloaded once no job uses it. */
static void s_job_released(qr_worker_t *self, uint64_t job_id)
{
    s_wmodel_t *m = qr_hmap_del_u64(self->job_models, job_id);
    if (m && m->users) {
        m->users--;
        m->used_ms = qr_clock_ms();
        if (!m->users) { /* idle: its files may be evicted again */
            qr_cache_unpin(self->cache, m->weights);
            qr_cache_unpin(self->cache, m->graph);
        }
    }
}

#ifdef QR_TEST_FAULTS
/* Fault injection: one value of ai.infer layer fault_tamper_layer moves, by
 * far more than rounding: the broker's per-layer check must catch it. */
static void s_fault_tamper(qr_worker_t *self, qr_exec_job_t *job, const qr_model_t *m)
{
    int64_t t = self->cfg.fault_tamper_layer;
    uint32_t L = qr_model_layers(m);
    if (t < 0 || !m || (uint64_t)t >= L)
        return;
    uint32_t rows, n, k;
    qr_exec_job_shape(job, &rows, &n, &k);
    size_t len;
    float *x;
    size_t count = (size_t)rows * qr_model_layer_width(m, (uint32_t)t);
    if ((uint32_t)t == L - 1)
        x = qr_exec_job_result(job, &len);
    else {
        size_t off = 0;
        for (uint32_t i = 0; i < (uint32_t)t; i++)
            off += (size_t)rows * qr_model_layer_width(m, i);
        x = qr_exec_job_layers(job, &len);
        x = x ? x + off : NULL;
    }
    if (!x || !count)
        return;
    x[count / 2] = x[count / 2] * 1.5f + 0.5f;
    qr_log(QR_LOG_WARN, "fault injected: layer tampered", "job=%llu layer=%lld",
           (unsigned long long)qr_exec_job_id(job), (long long)t);
}
#endif

static void s_on_done(qr_worker_t *self, qr_exec_event_t *ev)
{
    qr_exec_job_t *job = ev->job;
    int status = qr_exec_job_status(job);
    s_wmodel_t *wm = qr_hmap_get_u64(self->job_models, ev->job_id);
#ifdef QR_TEST_FAULTS
    if (status == QR_OK && wm && ev->cancel_reason != S_CANCEL_BROKER)
        s_fault_tamper(self, job, wm->model);
#else
    (void)wm;
#endif
    s_job_released(self, ev->job_id);
    if (ev->cancel_reason == S_CANCEL_BROKER) {
        /* invariant 4: the broker already forgot this job */
        qr_log(QR_LOG_DEBUG, "job cancelled", "job=%llu", (unsigned long long)ev->job_id);
        qr_exec_job_destroy(&job);
        return;
    }
    self->compute_us += qr_exec_job_compute_us(job);
    if (status == QR_OK) {
        self->results++;
#ifdef QR_TEST_FAULTS
        s_fault_corrupt(self, job);
#endif
        qr_log(QR_LOG_DEBUG, "job done", "job=%llu compute_us=%llu",
               (unsigned long long)ev->job_id,
               (unsigned long long)qr_exec_job_compute_us(job));
        s_emit(self, ev->job_id, &job, QR_OK, NULL);
        return;
    }
    const char *why = status == QR_ECANCELLED ? "worker shutting down"
                      : status == QR_ENOMEM   ? "out of memory for the result"
                      : qr_exec_job_error(job)[0] ? qr_exec_job_error(job)
                                                  : "compute failed";
    char whybuf[160];
    snprintf(whybuf, sizeof whybuf, "%s", why);
    why = whybuf;
    self->failed++;
    qr_log(QR_LOG_WARN, "job failed", "job=%llu code=%d reason=\"%s\"",
           (unsigned long long)ev->job_id, status, why);
    qr_exec_job_destroy(&job);
    s_emit(self, ev->job_id, NULL, status, why);
}

static void s_on_event(qr_worker_t *self, qr_exec_event_t *ev)
{
    if (ev->type == QR_EXEC_DONE) {
        s_on_done(self, ev);
        return;
    }
    /* Progress is advice: it is dropped while the link is down. */
    if (!self->registered)
        return;
    Quarry__Progress p = QUARRY__PROGRESS__INIT;
    p.job_id = ev->job_id;
    p.per_mille = ev->per_mille;
    s_sent(self, qr_wire_send(self->dealer, NULL, 0, QR_PROTO_WORKER, QR_WCMD_PROGRESS, &p.base,
                              NULL, 0));
}

/* ---- broker messages ------------------------------------------------------------- */

static void s_reject(qr_worker_t *self, uint64_t job_id, int code, const char *message)
{
    qr_log(QR_LOG_WARN, "assign rejected", "job=%llu code=%d reason=\"%s\"",
           (unsigned long long)job_id, code, message);
    s_emit(self, job_id, NULL, code, message);
}

static void s_holdings_dropped(void *arg, const char *sha)
{
    /* collected into the HOLDINGS the caller sends */
    Quarry__Holdings *h = arg;
    if (h->n_dropped < 64)
        h->dropped[h->n_dropped++] = strdup(sha);
}

/* Loaded model for weights:graph (both in the cache), loading it.  NULL with
 * a reason in err. */
static s_wmodel_t *s_wmodel_get(qr_worker_t *self, const char *weights, const char *graph,
                                char *err, size_t errlen)
{
    char key[2 * QR_SHA_HEX + 2];
    snprintf(key, sizeof key, "%s:%s", weights, graph);
    s_wmodel_t *m = qr_hmap_get(self->models, key, strlen(key));
    if (m) {
        qr_cache_touch(self->cache, weights);
        qr_cache_touch(self->cache, graph);
        return m;
    }
    char wpath[4200], gpath[4200];
    qr_cache_path(self->cache, weights, false, wpath, sizeof wpath);
    qr_cache_path(self->cache, graph, false, gpath, sizeof gpath);
    char *g = NULL;
    size_t glen = 0;
    FILE *f = fopen(gpath, "rb");
    if (f) {
        g = malloc(S_GRAPH_MAX + 1);
        glen = g ? fread(g, 1, S_GRAPH_MAX + 1, f) : 0;
        fclose(f);
    }
    if (!g || glen == 0 || glen > S_GRAPH_MAX) {
        snprintf(err, errlen, "cannot read the graph %.12s... from the cache", graph);
        free(g);
        return NULL;
    }
    m = calloc(1, sizeof *m);
    char e[256];
    if (!m || !(m->st = qr_st_load(wpath, e, sizeof e))) {
        snprintf(err, errlen, "weights %.12s...: %s", weights, m ? e : "out of memory");
        free(g);
        s_wmodel_free(m, self->gpu);
        return NULL;
    }
    m->model = qr_model_new(g, glen, m->st, e, sizeof e);
    free(g);
    if (!m->model) {
        snprintf(err, errlen, "model: %s", e);
        s_wmodel_free(m, self->gpu);
        return NULL;
    }
    snprintf(m->key, sizeof m->key, "%s", key);
    memcpy(m->weights, weights, QR_SHA_HEX + 1);
    memcpy(m->graph, graph, QR_SHA_HEX + 1);
    if (qr_hmap_put(self->models, m->key, strlen(m->key), m) < 0) {
        s_wmodel_free(m, self->gpu);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->model_loads++;
    qr_log(QR_LOG_INFO, "model loaded", "weights=%.12s graph=%.12s layers=%u", weights, graph,
           qr_model_layers(m->model));
    return m;
}

typedef struct {
    s_wmodel_t *victim;
} s_unload_t;

static void s_unload_scan(void *arg, void *v)
{
    s_unload_t *u = arg;
    s_wmodel_t *m = v;
    if (!m->users && (!u->victim || m->used_ms < u->victim->used_ms))
        u->victim = m;
}

typedef struct {
    const char *sha;
    s_wmodel_t *hit;
} s_uses_t;

static void s_uses_scan(void *arg, void *v)
{
    s_uses_t *u = arg;
    s_wmodel_t *m = v;
    if (!u->hit && !m->users && (!strcmp(m->weights, u->sha) || !strcmp(m->graph, u->sha)))
        u->hit = m;
}

/* Unloads the idle models that use artifact sha (it left the cache). */
static void s_models_unload(qr_worker_t *self, const char *sha)
{
    for (;;) {
        s_uses_t u = {sha, NULL};
        qr_hmap_each(self->models, s_uses_scan, &u);
        if (!u.hit)
            return;
        qr_hmap_del(self->models, u.hit->key, strlen(u.hit->key));
        s_wmodel_free(u.hit, self->gpu);
    }
}

/* Unloads idle models past S_MODELS_LOADED, least recently used first. */
static void s_models_trim(qr_worker_t *self)
{
    while (qr_hmap_size(self->models) > S_MODELS_LOADED) {
        s_unload_t u = {NULL};
        qr_hmap_each(self->models, s_unload_scan, &u);
        if (!u.victim)
            return;
        qr_hmap_del(self->models, u.victim->key, strlen(u.victim->key));
        s_wmodel_free(u.victim, self->gpu);
    }
}

/* The loaded proving key of a zk.groth16 job (the .zkey in the cache),
 * loading it.  NULL with a reason in err. */
static s_wmodel_t *s_wzk_get(qr_worker_t *self, const char *sha, char *err, size_t errlen)
{
    s_wmodel_t *m = qr_hmap_get(self->models, sha, QR_SHA_HEX);
    if (m) {
        qr_cache_touch(self->cache, sha);
        return m;
    }
    char path[4200], e[320];
    qr_cache_path(self->cache, sha, false, path, sizeof path);
    if (!(m = calloc(1, sizeof *m)) || !(m->pk = qr_zkey_load(path, 0, e, sizeof e))) {
        snprintf(err, errlen, "proving key %.12s...: %.200s", sha, m ? e : "out of memory");
        free(m);
        return NULL;
    }
    snprintf(m->key, sizeof m->key, "%s", sha);
    memcpy(m->weights, sha, QR_SHA_HEX + 1);
    if (qr_hmap_put(self->models, m->key, strlen(m->key), m) < 0) {
        s_wmodel_free(m, self->gpu);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->model_loads++;
    qr_log(QR_LOG_INFO, "proving key loaded", "zkey=%.12s vars=%u domain=%u", sha, m->pk->n_vars,
           m->pk->domain_size);
    return m;
}

/* Starts pending job p if its artifacts are here.  Returns true when p left
 * the pending state (started or failed; p is freed). */
static bool s_pending_try(qr_worker_t *self, s_pending_t *p)
{
    if (!qr_cache_has(self->cache, p->weights) ||
        (!p->zk && !qr_cache_has(self->cache, p->graph)))
        return false;
    char err[320];
    s_wmodel_t *m = p->zk ? s_wzk_get(self, p->weights, err, sizeof err)
                          : s_wmodel_get(self, p->weights, p->graph, err, sizeof err);
    if (!m) {
        /* the broker validated this model: a broken cache entry or a bug */
        s_reject(self, p->id, QR_ECOMPUTE, err);
        s_pending_free(p);
        return true;
    }
    size_t want = p->zk ? zmq_msg_size(&p->in)
                        : (size_t)p->rows * qr_model_input_width(m->model) * sizeof(float);
    if (zmq_msg_size(&p->in) != want) {
        snprintf(err, sizeof err, "input of %zu bytes, the model needs %u rows x %u floats",
                 zmq_msg_size(&p->in), p->rows, qr_model_input_width(m->model));
        s_reject(self, p->id, QR_EINVAL, err);
        s_pending_free(p);
        return true;
    }
    qr_exec_job_t *job = p->zk ? qr_exec_job_new_zk(p->id, m->pk, &p->in)
                               : qr_exec_job_new_infer(p->id, m->model, p->rows, &p->in);
    if (!job) {
        s_reject(self, p->id, QR_ENOMEM, "out of memory for the input");
        s_pending_free(p);
        return true;
    }
    uint64_t id = p->id;
    s_pending_free(p);
    if (qr_hmap_put_u64(self->job_models, id, m) < 0) {
        qr_exec_job_destroy(&job);
        s_reject(self, id, QR_ENOMEM, "out of memory");
        return true;
    }
    if (m->users++ == 0) { /* in use: its files stay in the cache */
        qr_cache_pin(self->cache, m->weights);
        qr_cache_pin(self->cache, m->graph);
    }
    if (qr_executor_submit(self->pool, &job) != QR_OK) {
        s_job_released(self, id);
        s_reject(self, id, QR_ECOMPUTE, "executor pool failed");
    }
    s_models_trim(self);
    return true;
}

/* Starts every pending job whose artifacts have all arrived. */
static void s_pending_kick(qr_worker_t *self)
{
    for (s_pending_t **pp = &self->pending; *pp;) {
        s_pending_t *p = *pp;
        s_pending_t *next = p->next;
        if (s_pending_try(self, p))
            *pp = next;
        else
            pp = &p->next;
    }
}

static bool s_pending_forget(qr_worker_t *self, uint64_t id)
{
    for (s_pending_t **pp = &self->pending; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            s_pending_t *p = *pp;
            *pp = p->next;
            s_pending_free(p);
            return true;
        }
    return false;
}

static void s_fetch_request(qr_worker_t *self, s_fetch_t *f, uint64_t offset, uint32_t len)
{
    Quarry__Fetch q = QUARRY__FETCH__INIT;
    q.sha256 = f->sha;
    q.offset = offset;
    q.length = len;
    s_sent(self, qr_wire_send(self->dealer, NULL, 0, QR_PROTO_WORKER, QR_WCMD_FETCH, &q.base,
                              NULL, 0));
    f->inflight++;
}

/* Asks for sha unless it is on its way already. */
static void s_fetch_start(qr_worker_t *self, const char *sha)
{
    for (s_fetch_t *f = self->fetches; f; f = f->next)
        if (strcmp(f->sha, sha) == 0)
            return;
    char part[4200];
    s_fetch_t *f = calloc(1, sizeof *f);
    if (!f || qr_cache_path(self->cache, sha, true, part, sizeof part) < 0) {
        free(f);
        return; /* its jobs fail at the stall timeout */
    }
    f->fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    memcpy(f->sha, sha, QR_SHA_HEX + 1);
    qr_sha_init(&f->hash);
    f->touched_ms = qr_clock_ms();
    f->next = self->fetches;
    self->fetches = f;
    if (f->fd < 0) {
        qr_log(QR_LOG_ERROR, "cannot write to the model cache", "sha256=%.12s err=\"%s\"", sha,
               strerror(errno));
        return;
    }
    /* one chunk first: its answer says how large the artifact is */
    s_fetch_request(self, f, 0, S_FETCH_CHUNK);
    f->requested = S_FETCH_CHUNK;
    qr_log(QR_LOG_INFO, "fetching artifact", "sha256=%.12s", sha);
}

/* Fails every pending job that needs sha. */
static void s_fetch_fail_jobs(qr_worker_t *self, const char *sha, const char *why)
{
    for (s_pending_t **pp = &self->pending; *pp;) {
        s_pending_t *p = *pp;
        if (strcmp(p->weights, sha) == 0 || strcmp(p->graph, sha) == 0) {
            *pp = p->next;
            s_reject(self, p->id, QR_EIO, why);
            s_pending_free(p);
        } else
            pp = &p->next;
    }
}

static void s_fetch_end(qr_worker_t *self, s_fetch_t *f, const char *failure)
{
    for (s_fetch_t **pp = &self->fetches; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    if (failure) {
        self->fetches_failed++;
        char why[256];
        snprintf(why, sizeof why, "fetching model artifact %.12s... failed: %s", f->sha, failure);
        qr_log(QR_LOG_WARN, "artifact fetch failed", "sha256=%.12s reason=\"%s\"", f->sha,
               failure);
        s_fetch_fail_jobs(self, f->sha, why);
        s_fetch_free(self, f);
        return;
    }
    close(f->fd);
    f->fd = -1;
    Quarry__Holdings h = QUARRY__HOLDINGS__INIT;
    char *dropped[64];
    h.dropped = dropped;
    char err[256];
    if (qr_cache_insert(self->cache, f->sha, f->size, s_holdings_dropped, &h, err,
                        sizeof err) < 0) {
        s_fetch_end(self, f, err); /* not in the list any more: only fails its jobs */
        return;
    }
    self->fetches_done++;
    qr_log(QR_LOG_INFO, "artifact fetched", "sha256=%.12s bytes=%llu", f->sha,
           (unsigned long long)f->size);
    char *added[1] = {f->sha};
    h.n_added = 1;
    h.added = added;
    if (self->registered)
        s_sent(self, qr_wire_send(self->dealer, NULL, 0, QR_PROTO_WORKER, QR_WCMD_HOLDINGS,
                                  &h.base, NULL, 0));
    for (size_t i = 0; i < h.n_dropped; i++) {
        s_models_unload(self, dropped[i]); /* idle models on an evicted file */
        free(dropped[i]);
    }
    free(f);
    s_pending_kick(self);
}

static void s_on_chunk(qr_worker_t *self, qr_msg_t *msg)
{
    char err[256];
    Quarry__Chunk *c = (Quarry__Chunk *)qr_msg_decode(msg, &quarry__chunk__descriptor, err, sizeof err);
    if (!c) {
        qr_log(QR_LOG_WARN, "bad chunk", "reason=\"%s\"", err);
        return;
    }
    s_fetch_t *f = self->fetches;
    while (f && (!c->sha256 || strcmp(f->sha, c->sha256) != 0))
        f = f->next;
    size_t len = 0;
    const void *data = qr_msg_npayload(msg) == 1 ? qr_msg_payload(msg, 0, &len) : NULL;
    if (!f)
        goto done; /* a fetch we gave up on */
    f->inflight--;
    f->touched_ms = qr_clock_ms();
    if (c->code) {
        s_fetch_end(self, f, qr_strerror(c->code));
        goto done;
    }
    if (f->size == 0) {
        f->size = c->size;
        if (f->size == 0) {
            s_fetch_end(self, f, "the broker reports an empty artifact");
            goto done;
        }
    }
    if (c->size != f->size || c->offset != f->received || len > f->size - f->received ||
        (len == 0 && f->received < f->size) || f->fd < 0) {
        s_fetch_end(self, f, f->fd < 0 ? "cannot write to the cache" : "chunks out of step");
        goto done;
    }
    const uint8_t *p = data;
    for (size_t left = len; left;) {
        ssize_t n = write(f->fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            s_fetch_end(self, f, strerror(errno));
            goto done;
        }
        p += n;
        left -= (size_t)n;
    }
    qr_sha_update(&f->hash, data, len);
    f->received += len;
    self->fetch_bytes += len;
    if (f->received == f->size) {
        char got[QR_SHA_HEX + 1];
        qr_sha_final(&f->hash, got);
        if (strcmp(got, f->sha) != 0) {
            s_fetch_end(self, f, "content does not match its SHA-256");
            goto done;
        }
        if (fsync(f->fd) < 0) {
            s_fetch_end(self, f, strerror(errno));
            goto done;
        }
        s_fetch_end(self, f, NULL);
        goto done;
    }
    /* keep the window full */
    if (f->requested > f->size)
        f->requested = f->size;
    while (f->inflight < S_FETCH_WINDOW && f->requested < f->size) {
        uint64_t n = f->size - f->requested;
        uint32_t ask = n > S_FETCH_CHUNK ? S_FETCH_CHUNK : (uint32_t)n;
        s_fetch_request(self, f, f->requested, ask);
        f->requested += ask;
    }
done:
    protobuf_c_message_free_unpacked(&c->base, NULL);
}

/* ai.infer ASSIGN: the input now, the model from the cache or fetched. */
static void s_assign_infer(qr_worker_t *self, qr_msg_t *msg, const Quarry__Assign *a)
{
    const Quarry__JobSpec *spec = a->spec;
    char err[256];
    bool zk = strcmp(spec->kind, S_RUNTIME_ZK) == 0;
    if (zk && !qr_sha_valid(spec->zkey)) {
        s_reject(self, a->job_id, QR_EINVAL, "zk.groth16 needs the proving key's SHA-256 name");
        return;
    }
    if (!zk && (!qr_sha_valid(spec->weights) || !qr_sha_valid(spec->graph))) {
        s_reject(self, a->job_id, QR_EINVAL, "ai.infer needs weights and graph SHA-256 names");
        return;
    }
    if (!zk && (spec->m < 1 || spec->m > QR_MODEL_MAX_ROWS)) {
        snprintf(err, sizeof err, "ai.infer rows %u out of 1..%u", spec->m, QR_MODEL_MAX_ROWS);
        s_reject(self, a->job_id, QR_EINVAL, err);
        return;
    }
    s_pending_t *p = calloc(1, sizeof *p);
    if (!p) {
        s_reject(self, a->job_id, QR_ENOMEM, "out of memory");
        return;
    }
    zmq_msg_init(&p->in);
    p->id = a->job_id;
    p->rows = spec->m;
    p->zk = zk;
    memcpy(p->weights, zk ? spec->zkey : spec->weights, QR_SHA_HEX + 1);
    if (!zk)
        memcpy(p->graph, spec->graph, QR_SHA_HEX + 1);
    if (qr_msg_npayload(msg) == 0 && a->input_blob) {
        s_input_t *in = self->inputs ? qr_hmap_get_u64(self->inputs, a->input_blob) : NULL;
        if (in)
            self->input_hits++;
        else
            self->input_misses++;
        if (!in || zmq_msg_copy(&p->in, &in->a) < 0) {
            snprintf(err, sizeof err, "input %llu is not in this worker's cache",
                     (unsigned long long)a->input_blob);
            s_reject(self, a->job_id, in ? QR_ENOMEM : QR_ENOTFOUND, err);
            s_pending_free(p);
            return;
        }
    } else if (qr_msg_npayload(msg) != 1) {
        snprintf(err, sizeof err, "expected 1 input frame, got %d", qr_msg_npayload(msg));
        s_reject(self, a->job_id, QR_EINVAL, err);
        s_pending_free(p);
        return;
    } else {
        zmq_msg_t *f = &msg->frames[msg->first + 3];
        if (a->input_blob) {
            zmq_msg_t none;
            zmq_msg_init(&none);
            s_input_put(self, a->input_blob, f, &none);
            zmq_msg_close(&none);
        }
        zmq_msg_copy(&p->in, f);
    }
    if (s_pending_try(self, p))
        return;
    p->next = self->pending;
    self->pending = p;
    if (!qr_cache_has(self->cache, p->weights))
        s_fetch_start(self, p->weights);
    if (!zk && !qr_cache_has(self->cache, p->graph))
        s_fetch_start(self, p->graph);
}

static void s_on_assign(qr_worker_t *self, qr_msg_t *msg)
{
    char err[256];
    zmq_msg_t ca, cb; /* references to a cached input, for this job */
    zmq_msg_init(&ca);
    zmq_msg_init(&cb);
    Quarry__Assign *a =
        (Quarry__Assign *)qr_msg_decode(msg, &quarry__assign__descriptor, err, sizeof err);
    if (!a) {
        /* No job id to answer with: tell the broker through an Error. */
        qr_log(QR_LOG_WARN, "bad assign", "reason=\"%s\"", err);
        s_sent(self, qr_wire_send_error(self->dealer, NULL, 0, QR_PROTO_WORKER, 0, 0, QR_EPROTO,
                                        err));
        zmq_msg_close(&ca);
        zmq_msg_close(&cb);
        return;
    }
    uint64_t id = a->job_id;
    const Quarry__JobSpec *spec = a->spec;
    size_t a_bytes = 0, b_bytes = 0, c_bytes = 0, alen = 0, blen = 0;
    if (id == 0) {
        s_reject(self, 0, QR_EINVAL, "job_id missing");
        goto done;
    }
    if (qr_executor_holds(self->pool, id)) {
        qr_log(QR_LOG_DEBUG, "duplicate assign ignored", "job=%llu", (unsigned long long)id);
        goto done;
    }
    for (s_out_t *o = self->outbox; o; o = o->next)
        if (o->job_id == id)
            goto done; /* finished already, answer pending (invariant 3) */
    for (s_pending_t *p = self->pending; p; p = p->next)
        if (p->id == id)
            goto done; /* waiting for its model */
    if (self->draining) {
        s_reject(self, id, QR_ECANCELLED, "worker shutting down");
        goto done;
    }
    if (!spec) {
        s_reject(self, id, QR_EINVAL, "spec missing");
        goto done;
    }
    if (spec->kind &&
        (strcmp(spec->kind, S_RUNTIME_INFER) == 0 || strcmp(spec->kind, S_RUNTIME_ZK) == 0)) {
        s_assign_infer(self, msg, a);
        goto done;
    }
    if (!spec->kind || strcmp(spec->kind, S_RUNTIME) != 0) {
        snprintf(err, sizeof err, "unknown job kind '%.64s'", spec->kind ? spec->kind : "");
        s_reject(self, id, QR_EKIND, err);
        goto done;
    }
    if (spec->m > QR_GEMM_MAX_DIM || spec->n > QR_GEMM_MAX_DIM || spec->k > QR_GEMM_MAX_DIM) {
        snprintf(err, sizeof err, "shape %ux%ux%u over the limit %u", spec->m, spec->n, spec->k,
                 QR_GEMM_MAX_DIM);
        s_reject(self, id, QR_ETOOBIG, err);
        goto done;
    }
    if (qr_gemm_sizes(spec->m, spec->n, spec->k, &a_bytes, &b_bytes, &c_bytes) < 0) {
        snprintf(err, sizeof err, "bad shape m=%u n=%u k=%u", spec->m, spec->n, spec->k);
        s_reject(self, id, QR_EINVAL, err);
        goto done;
    }
    zmq_msg_t *fa, *fb;
    if (qr_msg_npayload(msg) == 0 && a->input_blob) {
        /* the broker knows we hold this input */
        s_input_t *in = self->inputs ? qr_hmap_get_u64(self->inputs, a->input_blob) : NULL;
        if (in)
            self->input_hits++;
        else
            self->input_misses++;
        if (!in) {
            snprintf(err, sizeof err, "input %llu is not in this worker's cache",
                     (unsigned long long)a->input_blob);
            s_reject(self, id, QR_ENOTFOUND, err);
            goto done;
        }
        if (zmq_msg_copy(&ca, &in->a) < 0 || zmq_msg_copy(&cb, &in->b) < 0) {
            s_reject(self, id, QR_ENOMEM, "out of memory for the inputs");
            goto done;
        }
        fa = &ca;
        fb = &cb;
    } else {
        if (qr_msg_npayload(msg) != 2) {
            snprintf(err, sizeof err, "expected 2 input frames (A, B), got %d",
                     qr_msg_npayload(msg));
            s_reject(self, id, QR_EINVAL, err);
            goto done;
        }
        int first = msg->first + 3;
        fa = &msg->frames[first];
        fb = &msg->frames[first + 1];
        if (a->input_blob)
            s_input_put(self, a->input_blob, fa, fb);
    }
    alen = zmq_msg_size(fa);
    blen = zmq_msg_size(fb);
    if (alen != a_bytes || blen != b_bytes) {
        snprintf(err, sizeof err, "input sizes A=%zu B=%zu, shape needs A=%zu B=%zu", alen, blen,
                 a_bytes, b_bytes);
        s_reject(self, id, QR_EINVAL, err);
        goto done;
    }
    qr_exec_job_t *job = qr_exec_job_new(id, spec->m, spec->n, spec->k, fa, fb);
    if (!job) {
        s_reject(self, id, QR_ENOMEM, "out of memory for the inputs");
        goto done;
    }
    if (qr_executor_submit(self->pool, &job) != QR_OK) {
        s_reject(self, id, QR_ECOMPUTE, "executor pool failed");
        goto done;
    }
    qr_log(QR_LOG_DEBUG, "job assigned", "job=%llu m=%u n=%u k=%u attempt=%u",
           (unsigned long long)id, spec->m, spec->n, spec->k, a->attempt);
done:
    zmq_msg_close(&ca);
    zmq_msg_close(&cb);
    protobuf_c_message_free_unpacked(&a->base, NULL);
}

static void s_on_cancel(qr_worker_t *self, qr_msg_t *msg)
{
    char err[256];
    Quarry__Cancel *c =
        (Quarry__Cancel *)qr_msg_decode(msg, &quarry__cancel__descriptor, err, sizeof err);
    if (!c) {
        qr_log(QR_LOG_WARN, "bad cancel", "reason=\"%s\"", err);
        return;
    }
    uint64_t id = c->job_id;
    protobuf_c_message_free_unpacked(&c->base, NULL);
    int r = qr_executor_cancel(self->pool, id, S_CANCEL_BROKER);
    if (r == QR_EXEC_DROPPED)
        s_job_released(self, id);
    if (r == QR_EXEC_NOT_HELD && s_pending_forget(self, id)) {
        qr_log(QR_LOG_INFO, "job cancelled by broker", "job=%llu state=fetching",
               (unsigned long long)id);
        return;
    }
    if (r == QR_EXEC_NOT_HELD && !s_outbox_forget(self, id)) {
        qr_log(QR_LOG_DEBUG, "cancel for a job not held", "job=%llu", (unsigned long long)id);
        return;
    }
    qr_log(QR_LOG_INFO, "job cancelled by broker", "job=%llu state=%s", (unsigned long long)id,
           r == QR_EXEC_STOPPING ? "running" : r == QR_EXEC_DROPPED ? "queued" : "finished");
}

static void s_on_ready_ack(qr_worker_t *self, qr_msg_t *msg)
{
    char err[256];
    Quarry__ReadyAck *ack =
        (Quarry__ReadyAck *)qr_msg_decode(msg, &quarry__ready_ack__descriptor, err, sizeof err);
    if (!ack) {
        qr_log(QR_LOG_WARN, "bad ready ack", "reason=\"%s\"", err);
        return;
    }
    bool first = !self->registered;
    self->worker_id = ack->worker_id;
    if (ack->heartbeat_ms > 0)
        self->heartbeat_ms = ack->heartbeat_ms;
    if (ack->liveness > 0)
        self->liveness = ack->liveness;
    protobuf_c_message_free_unpacked(&ack->base, NULL);
    self->registered = true;
    self->backoff_ms = self->cfg.backoff_min_ms;
    if (first)
        qr_log(QR_LOG_INFO, "registered", "worker=%llu heartbeat_ms=%lld liveness=%lld",
               (unsigned long long)self->worker_id, (long long)self->heartbeat_ms,
               (long long)self->liveness);
    s_flush(self);
}

static void s_on_broker_error(qr_worker_t *self, qr_msg_t *msg)
{
    char err[256];
    Quarry__Error *e = (Quarry__Error *)qr_msg_decode(msg, &quarry__error__descriptor, err,
                                                      sizeof err);
    if (!e) {
        qr_log(QR_LOG_WARN, "bad error message", "reason=\"%s\"", err);
        return;
    }
    qr_log(QR_LOG_WARN, "broker error", "job=%llu code=%d err=\"%s\" message=\"%s\"",
           (unsigned long long)e->job_id, e->code, qr_strerror(e->code),
           e->message ? e->message : "");
    protobuf_c_message_free_unpacked(&e->base, NULL);
}

/* Handles one broker message.  Returns false when the link was dropped. */
static bool s_on_broker(qr_worker_t *self, qr_msg_t *msg)
{
    switch (msg->cmd) {
    case QR_WCMD_READY | QR_CMD_REPLY:
        s_on_ready_ack(self, msg);
        break;
    case QR_WCMD_HEARTBEAT:
        break;
    case QR_WCMD_ASSIGN:
        s_on_assign(self, msg);
        break;
    case QR_WCMD_CANCEL:
        s_on_cancel(self, msg);
        break;
    case QR_WCMD_CHUNK:
        s_on_chunk(self, msg);
        break;
    case QR_WCMD_DISCONNECT:
        /* The broker does not know us (it restarted, or expired us): register again. */
        qr_log(QR_LOG_INFO, "broker asked to reconnect", NULL);
        s_drop(self, false);
        return false;
    case QR_CMD_ERROR:
        s_on_broker_error(self, msg);
        break;
    default:
        qr_log(QR_LOG_WARN, "unknown command from broker", "cmd=0x%02x", msg->cmd);
        break;
    }
    return true;
}

static void s_read_broker(qr_worker_t *self)
{
    for (int i = 0; i < S_BATCH && self->dealer; i++) {
        qr_msg_t msg;
        char err[256];
        int rc = qr_wire_recv(self->dealer, false, QR_PROTO_WORKER, ZMQ_DONTWAIT, &msg, err,
                              sizeof err);
        if (rc == QR_EIO) {
            qr_msg_close(&msg);
            break;
        }
        self->last_recv = qr_clock_ms(); /* any message is a sign of life */
        bool alive = true;
        if (rc == QR_OK)
            alive = s_on_broker(self, &msg);
        else
            qr_log(QR_LOG_WARN, "bad message from broker", "reason=\"%s\"", err);
        qr_msg_close(&msg);
        if (!alive)
            break;
    }
}

/* ---- stop and drain ----------------------------------------------------------------- */

static void s_on_stop(qr_worker_t *self)
{
    int64_t now = qr_clock_ms();
    if (self->draining) {
        qr_log(QR_LOG_INFO, "second stop request: cutting the drain short", NULL);
        self->drain_deadline = now;
        return;
    }
    self->draining = true;
    self->drain_deadline = now + self->cfg.drain_ms;
    uint64_t ids[256];
    size_t total = qr_executor_jobs(self->pool, NULL, 0, true);
    qr_log(QR_LOG_INFO, "draining", "running=%zu queued=%zu drain_ms=%lld",
           qr_executor_running(self->pool), total, (long long)self->cfg.drain_ms);
    /* Queued jobs never started: hand them back at once. */
    while ((total = qr_executor_jobs(self->pool, ids, 256, true)) > 0) {
        size_t n = total < 256 ? total : 256;
        for (size_t i = 0; i < n; i++) {
            qr_executor_cancel(self->pool, ids[i], S_CANCEL_SHUTDOWN);
            s_job_released(self, ids[i]);
            s_emit(self, ids[i], NULL, QR_ECANCELLED, "worker shutting down");
        }
    }
    /* jobs still waiting for their model never started either */
    while (self->pending) {
        s_pending_t *p = self->pending;
        self->pending = p->next;
        s_emit(self, p->id, NULL, QR_ECANCELLED, "worker shutting down");
        s_pending_free(p);
    }
}

static void s_hurry(qr_worker_t *self)
{
    self->hurried = true;
    uint64_t ids[1024];
    size_t n = qr_executor_jobs(self->pool, ids, 1024, false);
    if (n > 1024)
        n = 1024; /* more slots than this do not exist in practice */
    if (n)
        qr_log(QR_LOG_WARN, "drain deadline passed: stopping running jobs", "running=%zu", n);
    for (size_t i = 0; i < n; i++)
        qr_executor_cancel(self->pool, ids[i], S_CANCEL_SHUTDOWN);
}

/* Each byte is one stop request; end of file is one too. */
static void s_read_stop(qr_worker_t *self, int fd)
{
    char buf[16];
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (r <= 0) {
        self->stop_closed = true;
        r = 1;
    }
    for (ssize_t i = 0; i < r && i < 2; i++)
        s_on_stop(self);
}

/* ---- main loop -------------------------------------------------------------------- */

static int64_t s_next_wake(const qr_worker_t *self, int64_t now)
{
    int64_t t = now + S_POLL_MAX_MS;
    if (!self->dealer)
        t = s_min(t, self->reconnect_at);
    else if (!self->registered)
        t = s_min(t, self->ready_at);
    else {
        t = s_min(t, self->last_recv + self->liveness * self->heartbeat_ms);
        t = s_min(t, self->last_send + self->heartbeat_ms);
    }
    if (self->draining && !self->hurried)
        t = s_min(t, self->drain_deadline);
    int64_t w = qr_executor_wait_ms(self->pool, now);
    if (w >= 0)
        t = s_min(t, now + w);
    return t > now ? t - now : 0;
}

/* Runs whatever timer is due. */
static void s_timers(qr_worker_t *self, int64_t now)
{
    if (!self->dealer && now >= self->reconnect_at) {
        if (s_connect(self) < 0) {
            qr_log(QR_LOG_ERROR, "connect failed", "broker=%s err=\"%s\"", self->broker,
                   zmq_strerror(errno));
            self->reconnect_at = now + self->backoff_ms;
        }
    }
    if (self->dealer && !self->registered && now >= self->ready_at)
        s_send_ready(self);
    if (self->dealer && self->registered &&
        now - self->last_recv >= self->liveness * self->heartbeat_ms) {
        qr_log(QR_LOG_WARN, "broker silent: reconnecting", "silent_ms=%lld backoff_ms=%lld",
               (long long)(now - self->last_recv), (long long)self->backoff_ms);
        s_drop(self, true);
    }
    if (self->dealer && self->registered && now - self->last_send >= self->heartbeat_ms)
        s_sent(self, qr_wire_send(self->dealer, NULL, 0, QR_PROTO_WORKER, QR_WCMD_HEARTBEAT, NULL,
                                  NULL, 0));
    if (self->registered && self->outbox)
        s_flush(self);
    qr_executor_tick(self->pool);
    for (s_fetch_t *f = self->fetches, *next; f; f = next) {
        next = f->next;
        if (now - f->touched_ms > S_FETCH_STALL_MS)
            s_fetch_end(self, f, "no answer from the broker");
    }
    if (self->draining && !self->hurried && now >= self->drain_deadline)
        s_hurry(self);
}

static bool s_drained(const qr_worker_t *self)
{
    if (!self->draining || qr_executor_jobs(self->pool, NULL, 0, false) > 0)
        return false;
    /* Answers that still wait for the link may wait until the deadline. */
    return !self->outbox || self->hurried;
}

static void s_goodbye(qr_worker_t *self)
{
    if (!self->dealer)
        return;
    if (self->registered) {
        Quarry__Disconnect d = QUARRY__DISCONNECT__INIT;
        d.reason = "shutdown";
        qr_wire_send(self->dealer, NULL, 0, QR_PROTO_WORKER, QR_WCMD_DISCONNECT, &d.base, NULL, 0);
    }
    /* Give the last FAILs and the DISCONNECT time to leave when the context ends. */
    int linger = S_FINAL_LINGER_MS;
    zmq_setsockopt(self->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(self->dealer);
    self->dealer = NULL;
    self->registered = false;
}

int qr_worker_run(qr_worker_t *self, int stop_fd)
{
    if (s_connect(self) < 0) {
        qr_log(QR_LOG_ERROR, "cannot use broker endpoint", "broker=%s err=\"%s\"", self->broker,
               zmq_strerror(errno));
        return QR_EINVAL;
    }
    qr_log(QR_LOG_INFO, "worker started", "name=%s operator=%s broker=%s slots=%d gpus=%zu",
           self->name, self->operator_name, self->broker, self->cfg.slots,
           qr_devices_gpus(self->devices));
    for (;;) {
        int64_t now = qr_clock_ms();
        s_timers(self, now);
        if (s_drained(self))
            break;
        zmq_pollitem_t items[4];
        int n = 0, i_exec = -1, i_dealer = -1, i_stop = -1, i_http = -1;
        items[n] = (zmq_pollitem_t){.socket = qr_executor_socket(self->pool), .events = ZMQ_POLLIN};
        i_exec = n++;
        if (self->dealer) {
            items[n] = (zmq_pollitem_t){.socket = self->dealer, .events = ZMQ_POLLIN};
            i_dealer = n++;
        }
        if (stop_fd >= 0 && !self->stop_closed) {
            items[n] = (zmq_pollitem_t){.fd = stop_fd, .events = ZMQ_POLLIN};
            i_stop = n++;
        }
        if (self->httpd) {
            items[n] = (zmq_pollitem_t){.fd = qr_httpd_fd(self->httpd), .events = ZMQ_POLLIN};
            i_http = n++;
        }
        int rc = zmq_poll(items, n, (long)s_next_wake(self, qr_clock_ms()));
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            qr_log(QR_LOG_ERROR, "poll failed", "err=\"%s\"", zmq_strerror(errno));
            break;
        }
        if (i_stop >= 0 && (items[i_stop].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
            s_read_stop(self, stop_fd);
        /* inline jobs' DONE events do not wake the poll (whose timeout was
         * 0 for them, s_next_wake): read them as well */
        if ((items[i_exec].revents & ZMQ_POLLIN) || qr_executor_ready(self->pool)) {
            qr_exec_event_t ev;
            for (int i = 0; i < S_BATCH &&
                            qr_executor_recv(self->pool, &ev, ZMQ_DONTWAIT) == QR_OK;
                 i++)
                s_on_event(self, &ev);
        }
        if (i_dealer >= 0 && (items[i_dealer].revents & ZMQ_POLLIN))
            s_read_broker(self);
        if (i_http >= 0 && (items[i_http].revents & ZMQ_POLLIN))
            qr_httpd_serve(self->httpd, s_render, self);
    }
    s_goodbye(self);
    qr_log(QR_LOG_INFO, "worker stopped", "results=%llu", (unsigned long long)self->results);
    return QR_OK;
}
