/* libquarry client: requests to the broker's client ROUTER over a DEALER.
 *
 * Data flow: a public call builds a protobuf body with a fresh req_id, sends
 * [QRC01][cmd][body][payloads...] and waits (zmq_poll, absolute deadline) for
 * the reply carrying the same req_id: cmd | QR_CMD_REPLY, or QR_CMD_ERROR.
 *
 * Invariants:
 *  1. A reply whose req_id is not the one awaited is dropped (a late answer to
 *     a request that timed out, or an EVENT of a finished watch).
 *  2. After a request times out the socket is closed and a fresh one made on
 *     the next call, followed by a fresh HELLO: requests queued for a broker
 *     that never answered are discarded rather than delivered later, and a
 *     restarted broker learns the account again.
 *  3. A request refused with EPERM on a session that said HELLO earlier is
 *     retried once after a new HELLO (a broker restarted fast forgets us).
 *  4. ZMQ_IMMEDIATE is set, so a send with no live connection waits at most
 *     until the request's deadline and then fails as QUARRY_EUNAVAIL instead
 *     of queueing forever.
 *  5. Nothing here prints, exits or aborts; every failure is a code plus a
 *     message in c->err.
 *
 * Watches: WATCH is answered once (cmd 0x84, Event with the current state);
 * the broker then pushes QR_CMD_EVENT with the WATCH's req_id.  When no event
 * arrives for S_WATCH_RENEW_MS the watch is renewed (a new WATCH, whose reply
 * is the current state), so a lost event or a broker restart cannot hide a
 * final state. */
#include "quarry.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "artifact.h"
#include "err.h"
#include "jobstate.h"
#include "keys.h"
#include "wire.h"

#define S_WATCH_RENEW_MS 5000
/* s_await's answer when the deadline passed in silence: the caller decides
 * whether that means a dead broker or just a quiet job.  Not a public code. */
#define S_SILENT ((quarry_err_t)-1)

struct quarry_client {
    void *ctx;            /* own ZeroMQ context: no global state */
    void *sock;           /* DEALER, NULL after a timeout until the next call */
    char *endpoint;       /* broker client endpoint */
    char *account;        /* account named in HELLO */
    int64_t timeout_ms;   /* per request */
    uint64_t next_req;    /* req_id counter */
    uint64_t account_id;  /* from HelloAck */
    bool hello_done;      /* HELLO answered on the current socket */
    bool curve;           /* CurveZMQ: the keys below go on every new socket */
    char server_pub[QR_KEY_Z85_LEN + 1]; /* broker public key (Z85) */
    char pub[QR_KEY_Z85_LEN + 1];        /* own public key */
    char sec[QR_KEY_Z85_LEN + 1];        /* own secret key: never in a message */
    char err[512];        /* last error text, "" after success */
};

/* ---- helpers ------------------------------------------------------------ */

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static quarry_err_t s_fail(quarry_client_t *c, quarry_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static quarry_err_t s_fail(quarry_client_t *c, quarry_err_t code, const char *fmt, ...)
{
    if (c) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, sizeof c->err, fmt, ap);
        va_end(ap);
    }
    return code;
}

static void s_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* Reads the req_id (field 1, uint64) of any client message generically. */
static uint64_t s_req_id(const ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(m->descriptor, 1);
    if (!f || f->type != PROTOBUF_C_TYPE_UINT64)
        return 0;
    return *(const uint64_t *)((const char *)m + f->offset);
}

static void s_info_from(quarry_job_info_t *out, const Quarry__JobInfo *j)
{
    memset(out, 0, sizeof *out);
    out->state = QUARRY_JOB_UNKNOWN;
    if (!j)
        return;
    out->job_id = j->job_id;
    s_copy(out->state_name, sizeof out->state_name, j->state);
    out->state = quarry_job_state_parse(j->state);
    s_copy(out->kind, sizeof out->kind, j->kind);
    out->attempts = j->attempts;
    out->worker_id = j->worker_id;
    out->max_price = j->max_price;
    out->price = j->price;
    out->fee = j->fee;
    out->units = j->units;
    out->created_ms = j->created_ms;
    out->updated_ms = j->updated_ms;
    out->progress = j->progress;
    out->m = j->m;
    out->n = j->n;
    out->k = j->k;
    s_copy(out->detail, sizeof out->detail, j->detail);
}

static void s_sock_close(quarry_client_t *c)
{
    if (c->sock) {
        zmq_close(c->sock);
        c->sock = NULL;
    }
    c->hello_done = false;
}

static quarry_err_t s_sock_open(quarry_client_t *c)
{
    if (c->sock)
        return QUARRY_OK;
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    if (!c->sock)
        return s_fail(c, QUARRY_EIO, "cannot create socket: %s", zmq_strerror(errno));
    int zero = 0, one = 1;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(c->sock, ZMQ_IMMEDIATE, &one, sizeof one);
    /* every socket made after a timeout gets the same keys (invariant 2) */
    if (c->curve && (zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, c->server_pub, QR_KEY_Z85_LEN) != 0 ||
                     zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, c->pub, QR_KEY_Z85_LEN) != 0 ||
                     zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, c->sec, QR_KEY_Z85_LEN) != 0)) {
        int e = errno;
        s_sock_close(c);
        return s_fail(c, QUARRY_EINVAL, "cannot set the CURVE keys: %s", zmq_strerror(e));
    }
    if (zmq_connect(c->sock, c->endpoint) != 0) {
        int e = errno;
        s_sock_close(c);
        return s_fail(c, QUARRY_EINVAL, "cannot connect to '%s': %s", c->endpoint,
                      zmq_strerror(e));
    }
    return QUARRY_OK;
}

static quarry_err_t s_timed_out(quarry_client_t *c, const char *what)
{
    s_sock_close(c); /* invariant 2 */
    return s_fail(c, QUARRY_EUNAVAIL, "broker at %s did not answer %s within %lld ms",
                  c->endpoint, what, (long long)c->timeout_ms);
}

/* Waits until deadline for a message with command want (or QR_CMD_ERROR)
 * whose body (decoded as desc) carries req_id.  On QUARRY_OK *out holds the
 * decoded body (caller frees) and msg the frames (caller closes).  An Error
 * with the right req_id returns its code with its message in c->err.
 * S_SILENT when the deadline passes first. */
static quarry_err_t s_await(quarry_client_t *c, uint8_t want, uint64_t req_id,
                            const ProtobufCMessageDescriptor *desc, int64_t deadline,
                            qr_msg_t *msg, ProtobufCMessage **out)
{
    *out = NULL;
    memset(msg, 0, sizeof *msg);
    for (;;) {
        int64_t left = deadline - s_now_ms();
        if (left < 0)
            left = 0;
        zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, (long)left);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            return s_fail(c, QUARRY_EIO, "poll failed: %s", zmq_strerror(errno));
        }
        if (rc == 0)
            return S_SILENT;
        char why[160];
        int wrc = qr_wire_recv(c->sock, false, QR_PROTO_CLIENT, ZMQ_DONTWAIT, msg, why, sizeof why);
        if (wrc == QR_EIO && errno == EAGAIN) {
            qr_msg_close(msg);
            continue;
        }
        if (wrc == QR_EIO) {
            qr_msg_close(msg);
            return s_fail(c, QUARRY_EIO, "%s", why);
        }
        if (wrc != QR_OK) { /* malformed message from the peer: drop it */
            qr_msg_close(msg);
            continue;
        }
        if (msg->cmd == QR_CMD_ERROR) {
            Quarry__Error *e =
                (Quarry__Error *)qr_msg_decode(msg, &quarry__error__descriptor, why, sizeof why);
            if (!e || e->req_id != req_id) {
                if (e)
                    protobuf_c_message_free_unpacked(&e->base, NULL);
                qr_msg_close(msg);
                continue;
            }
            /* a code this library does not know (a newer broker, a broken
             * one) is reported as a protocol error, with the number kept in
             * the message: callers switch on the codes the header defines */
            int code = e->code > 0 && e->code < QR_ERR_COUNT_ ? e->code : QUARRY_EPROTO;
            if (code != e->code)
                s_fail(c, (quarry_err_t)code, "broker error %d: %s", e->code,
                       e->message && *e->message ? e->message : "(no message)");
            else
                s_fail(c, (quarry_err_t)code, "%s",
                       e->message && *e->message ? e->message : quarry_strerror(code));
            protobuf_c_message_free_unpacked(&e->base, NULL);
            qr_msg_close(msg);
            return (quarry_err_t)code;
        }
        if (msg->cmd != want) {
            qr_msg_close(msg);
            continue;
        }
        ProtobufCMessage *m = qr_msg_decode(msg, desc, why, sizeof why);
        if (!m) {
            qr_msg_close(msg);
            continue;
        }
        if (s_req_id(m) != req_id) { /* invariant 1 */
            protobuf_c_message_free_unpacked(m, NULL);
            qr_msg_close(msg);
            continue;
        }
        *out = m;
        return QUARRY_OK;
    }
}

/* Sends one message, giving up at deadline when no connection takes it. */
static quarry_err_t s_send(quarry_client_t *c, uint8_t cmd, const ProtobufCMessage *body,
                           const qr_payload_t *payloads, int np, int64_t deadline,
                           const char *what)
{
    int64_t left = deadline - s_now_ms();
    int tmo = left > 0 ? (int)(left > 0x7fffffff ? 0x7fffffff : left) : 0;
    zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &tmo, sizeof tmo);
    if (qr_wire_send(c->sock, NULL, 0, QR_PROTO_CLIENT, cmd, body, payloads, np) != QR_OK) {
        if (errno == EAGAIN)
            return s_timed_out(c, what);
        int e = errno;
        s_sock_close(c);
        return s_fail(c, e == ENOMEM ? QUARRY_ENOMEM : QUARRY_EIO, "send failed: %s",
                      zmq_strerror(e));
    }
    return QUARRY_OK;
}

static quarry_err_t s_hello(quarry_client_t *c)
{
    quarry_err_t rc = s_sock_open(c);
    if (rc)
        return rc;
    Quarry__Hello h = QUARRY__HELLO__INIT;
    h.req_id = ++c->next_req;
    h.account = c->account;
    h.version = 1;
    int64_t deadline = s_now_ms() + c->timeout_ms;
    rc = s_send(c, QR_CMD_HELLO, &h.base, NULL, 0, deadline, "HELLO");
    if (rc)
        return rc;
    qr_msg_t msg;
    ProtobufCMessage *m;
    rc = s_await(c, QR_CMD_HELLO | QR_CMD_REPLY, h.req_id, &quarry__hello_ack__descriptor,
                 deadline, &msg, &m);
    if (rc == S_SILENT)
        rc = s_timed_out(c, "HELLO");
    if (rc == QUARRY_OK) {
        c->account_id = ((Quarry__HelloAck *)m)->account_id;
        c->hello_done = true;
        protobuf_c_message_free_unpacked(m, NULL);
    }
    qr_msg_close(&msg);
    return rc;
}

/* One request and its reply.  body's req_id is set here.  On QUARRY_OK the
 * caller frees *out and closes msg. */
static quarry_err_t s_request(quarry_client_t *c, uint8_t cmd, ProtobufCMessage *body,
                              uint64_t *req_field, const qr_payload_t *payloads, int np,
                              const ProtobufCMessageDescriptor *desc, qr_msg_t *msg,
                              ProtobufCMessage **out, const char *what)
{
    *out = NULL;
    memset(msg, 0, sizeof *msg);
    quarry_err_t rc = QUARRY_OK;
    for (int attempt = 0;; attempt++) {
        bool fresh = !c->hello_done;
        if (fresh && (rc = s_hello(c)) != QUARRY_OK)
            return rc;
        *req_field = ++c->next_req;
        int64_t deadline = s_now_ms() + c->timeout_ms;
        rc = s_send(c, cmd, body, payloads, np, deadline, what);
        if (rc)
            return rc;
        rc = s_await(c, cmd | QR_CMD_REPLY, *req_field, desc, deadline, msg, out);
        if (rc == S_SILENT)
            rc = s_timed_out(c, what);
        /* A broker that restarted quickly (the DEALER reconnected without a
         * timeout) no longer knows our HELLO and refuses with EPERM; a
         * refused request had no effect, so say HELLO again and retry once. */
        if (rc == QUARRY_EPERM && !fresh && attempt == 0) {
            qr_msg_close(msg);
            c->hello_done = false;
            continue;
        }
        break;
    }
    if (rc == QUARRY_OK)
        c->err[0] = '\0';
    return rc;
}

/* ---- plain functions ------------------------------------------------------ */

const char *quarry_strerror(int code)
{
    return qr_strerror(code);
}

const char *quarry_version(void)
{
#define S_STR2(x) #x
#define S_STR(x) S_STR2(x)
    return S_STR(QUARRY_VERSION_MAJOR) "." S_STR(QUARRY_VERSION_MINOR) "." S_STR(
        QUARRY_VERSION_PATCH);
}

const char *quarry_job_state_name(quarry_job_state_t s)
{
    return qr_job_state_name((int)s);
}

quarry_job_state_t quarry_job_state_parse(const char *name)
{
    int s = qr_job_state_parse(name);
    return s < 0 ? QUARRY_JOB_UNKNOWN : (quarry_job_state_t)s;
}

bool quarry_job_state_final(quarry_job_state_t s)
{
    return s >= 0 && s < (quarry_job_state_t)QR_JOB_STATE_COUNT_ && qr_job_state_final((int)s);
}

quarry_err_t quarry_job_state_code(quarry_job_state_t s)
{
    switch (s) {
    case QUARRY_JOB_SETTLED:
    case QUARRY_JOB_MIRRORED:
        return QUARRY_OK;
    case QUARRY_JOB_FAILED:
        return QUARRY_EFAILED;
    case QUARRY_JOB_EXPIRED:
        return QUARRY_EEXPIRED;
    case QUARRY_JOB_CANCELLED:
        return QUARRY_ECANCELLED;
    case QUARRY_JOB_REJECTED:
        return QUARRY_EINVAL;
    default:
        return QUARRY_ETIMEOUT;
    }
}

void quarry_job_opts_init(quarry_job_opts_t *opts)
{
    if (opts)
        memset(opts, 0, sizeof *opts);
}

void quarry_free(void *p)
{
    free(p);
}

/* ---- client --------------------------------------------------------------- */

void quarry_client_opts_init(quarry_client_opts_t *opts)
{
    if (opts)
        memset(opts, 0, sizeof *opts);
}

/* Loads the keys of o into c (c->curve set when server_key is given).
 * QUARRY_EINVAL with the reason in c->err; never names a secret key. */
static quarry_err_t s_load_keys(quarry_client_t *c, const quarry_client_opts_t *o)
{
    bool have_server = o->server_key && *o->server_key;
    bool have_key = o->key_file && *o->key_file;
    if (!have_server) {
        if (have_key)
            return s_fail(c, QUARRY_EINVAL,
                          "a client key file needs the broker's public key (server_key) too");
        return QUARRY_OK;
    }
    if (!zmq_has("curve"))
        return s_fail(c, QUARRY_EINVAL, "this libzmq has no CURVE security");
    char why[384];
    if (qr_keys_load_public(o->server_key, c->server_pub, why, sizeof why) != 0)
        return s_fail(c, QUARRY_EINVAL, "broker public key: %s", why);
    if (have_key) {
        if (qr_keys_load_secret(o->key_file, c->pub, c->sec, why, sizeof why) != 0)
            return s_fail(c, QUARRY_EINVAL, "client key: %s", why);
    } else if (qr_keys_generate(c->pub, c->sec) != 0) {
        return s_fail(c, QUARRY_EINVAL, "cannot generate a CURVE key pair");
    }
    c->curve = true;
    return QUARRY_OK;
}

quarry_err_t quarry_client_new_opts(const quarry_client_opts_t *opts, quarry_client_t **client_p)
{
    quarry_client_opts_t def;
    quarry_client_opts_init(&def);
    const quarry_client_opts_t *o = opts ? opts : &def;
    if (o->err_buf && o->err_len)
        o->err_buf[0] = '\0';
    if (!client_p) {
        if (o->err_buf && o->err_len)
            snprintf(o->err_buf, o->err_len, "client_p must not be NULL");
        return QUARRY_EINVAL;
    }
    *client_p = NULL;
    const char *endpoint = o->endpoint && *o->endpoint ? o->endpoint : QUARRY_DEFAULT_ENDPOINT;
    const char *account = o->account && *o->account ? o->account : "default";
    quarry_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        if (o->err_buf && o->err_len)
            snprintf(o->err_buf, o->err_len, "out of memory");
        return QUARRY_ENOMEM;
    }
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : QUARRY_DEFAULT_TIMEOUT_MS;
    quarry_err_t rc = s_load_keys(c, o); /* before any socket exists */
    if (rc != QUARRY_OK)
        goto fail;
    c->endpoint = strdup(endpoint);
    c->account = strdup(account);
    c->ctx = zmq_ctx_new();
    rc = QUARRY_ENOMEM;
    if (!c->endpoint || !c->account || !c->ctx) {
        s_fail(c, rc, "out of memory");
        goto fail;
    }
    rc = s_hello(c);
    if (rc != QUARRY_OK)
        goto fail;
    c->err[0] = '\0';
    *client_p = c;
    return QUARRY_OK;
fail:
    if (o->err_buf && o->err_len)
        snprintf(o->err_buf, o->err_len, "%s", c->err[0] ? c->err : quarry_strerror(rc));
    quarry_client_destroy(&c);
    return rc;
}

quarry_err_t quarry_client_new(const char *endpoint, const char *account, int64_t timeout_ms,
                               quarry_client_t **client_p)
{
    quarry_client_opts_t o;
    quarry_client_opts_init(&o);
    o.endpoint = endpoint;
    o.account = account;
    o.timeout_ms = timeout_ms;
    o.server_key = getenv("QUARRY_SERVER_KEY");
    o.key_file = getenv("QUARRY_KEY");
    return quarry_client_new_opts(&o, client_p);
}

void quarry_client_destroy(quarry_client_t **client_p)
{
    if (!client_p || !*client_p)
        return;
    quarry_client_t *c = *client_p;
    if (c->sock)
        zmq_close(c->sock);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    free(c->endpoint);
    free(c->account);
    /* the secret key must not linger in freed memory */
    volatile char *v = c->sec;
    for (size_t i = 0; i < sizeof c->sec; i++)
        v[i] = 0;
    free(c);
    *client_p = NULL;
}

quarry_err_t quarry_client_set_timeout(quarry_client_t *c, int64_t timeout_ms)
{
    if (!c)
        return QUARRY_EINVAL;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : QUARRY_DEFAULT_TIMEOUT_MS;
    return QUARRY_OK;
}

const char *quarry_client_last_error(const quarry_client_t *c)
{
    return c ? c->err : "";
}

uint64_t quarry_client_account_id(const quarry_client_t *c)
{
    return c ? c->account_id : 0;
}

/* ---- jobs ------------------------------------------------------------------ */

/* SUBMIT of spec (kind and shape already set; the options filled here) with
 * the input frames, and its SubmitAck into the OUT parameters: the part
 * every job kind shares. */
static quarry_err_t s_submit(quarry_client_t *c, Quarry__JobSpec *spec,
                             const quarry_job_opts_t *opts, const qr_payload_t *pl, int np,
                             uint64_t *job_id, uint64_t *reserved, bool *duplicate)
{
    quarry_job_opts_t def;
    quarry_job_opts_init(&def);
    if (!opts)
        opts = &def;
    spec->max_price = opts->max_price;
    spec->timeout_ms = opts->timeout_ms;
    spec->need_gpu = opts->need_gpu;
    spec->min_mem_mb = opts->min_mem_mb;
    spec->priority = opts->priority;
    spec->max_attempts = opts->max_attempts;
    Quarry__Submit s = QUARRY__SUBMIT__INIT;
    s.spec = spec;
    s.idem_key = (char *)(opts->idem_key ? opts->idem_key : "");
    qr_msg_t msg;
    ProtobufCMessage *r;
    quarry_err_t rc = s_request(c, QR_CMD_SUBMIT, &s.base, &s.req_id, pl, np,
                                &quarry__submit_ack__descriptor, &msg, &r, "SUBMIT");
    if (rc == QUARRY_OK) {
        Quarry__SubmitAck *a = (Quarry__SubmitAck *)r;
        *job_id = a->job_id;
        if (reserved)
            *reserved = a->reserved;
        if (duplicate)
            *duplicate = a->duplicate;
        protobuf_c_message_free_unpacked(r, NULL);
    }
    qr_msg_close(&msg);
    return rc;
}

quarry_err_t quarry_gemm_submit(quarry_client_t *c, uint32_t m, uint32_t n, uint32_t k,
                                const float *A, const float *B, const quarry_job_opts_t *opts,
                                uint64_t *job_id, uint64_t *reserved, bool *duplicate)
{
    if (!c)
        return QUARRY_EINVAL;
    if (!A || !B || !job_id)
        return s_fail(c, QUARRY_EINVAL, "A, B and job_id must not be NULL");
    if (!m || !n || !k)
        return s_fail(c, QUARRY_EINVAL, "dimensions must be positive (m=%u n=%u k=%u)", m, n, k);
    if (m > QUARRY_GEMM_MAX_DIM || n > QUARRY_GEMM_MAX_DIM || k > QUARRY_GEMM_MAX_DIM)
        return s_fail(c, QUARRY_ETOOBIG, "a dimension exceeds %u", QUARRY_GEMM_MAX_DIM);
    if ((size_t)m > SIZE_MAX / sizeof(float) / k || (size_t)k > SIZE_MAX / sizeof(float) / n)
        return s_fail(c, QUARRY_ETOOBIG, "matrix size overflows");
    Quarry__JobSpec spec = QUARRY__JOB_SPEC__INIT;
    spec.kind = (char *)"ai.gemm";
    spec.m = m;
    spec.n = n;
    spec.k = k;
    qr_payload_t pl[2] = {
        {A, (size_t)m * k * sizeof(float)},
        {B, (size_t)k * n * sizeof(float)},
    };
    return s_submit(c, &spec, opts, pl, 2, job_id, reserved, duplicate);
}

quarry_err_t quarry_gemm_submit_ref(quarry_client_t *c, uint32_t m, uint32_t n, uint32_t k,
                                    const char *input_sha256, const quarry_job_opts_t *opts,
                                    uint64_t *job_id, uint64_t *reserved, bool *duplicate)
{
    if (!c)
        return QUARRY_EINVAL;
    if (!input_sha256 || !job_id)
        return s_fail(c, QUARRY_EINVAL, "input_sha256 and job_id must not be NULL");
    if (!qr_sha_valid(input_sha256))
        return s_fail(c, QUARRY_EINVAL, "input_sha256 must be 64 lowercase hex digits");
    if (!m || !n || !k)
        return s_fail(c, QUARRY_EINVAL, "dimensions must be positive (m=%u n=%u k=%u)", m, n, k);
    if (m > QUARRY_GEMM_MAX_DIM || n > QUARRY_GEMM_MAX_DIM || k > QUARRY_GEMM_MAX_DIM)
        return s_fail(c, QUARRY_ETOOBIG, "a dimension exceeds %u", QUARRY_GEMM_MAX_DIM);
    Quarry__JobSpec spec = QUARRY__JOB_SPEC__INIT;
    spec.kind = (char *)"ai.gemm";
    spec.m = m;
    spec.n = n;
    spec.k = k;
    spec.input = (char *)input_sha256;
    return s_submit(c, &spec, opts, NULL, 0, job_id, reserved, duplicate);
}

/* ---- ai.infer ------------------------------------------------------------ */

#define S_UPLOAD_CHUNK (1u << 20)
#define S_UPLOAD_WINDOW 8 /* chunks in flight: credit-based flow control */

/* Reads up to len bytes of fd at off; -1 on error. */
static ssize_t s_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, (uint8_t *)buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* One UPLOAD round trip without payload: how much the broker has. */
static quarry_err_t s_upload_ask(quarry_client_t *c, const char *sha, uint64_t size,
                                 uint64_t *have)
{
    Quarry__Upload u = QUARRY__UPLOAD__INIT;
    u.sha256 = (char *)sha;
    u.size = size;
    qr_msg_t msg;
    ProtobufCMessage *r;
    quarry_err_t rc = s_request(c, QR_CMD_UPLOAD, &u.base, &u.req_id, NULL, 0,
                                &quarry__upload_ack__descriptor, &msg, &r, "UPLOAD");
    if (rc == QUARRY_OK) {
        *have = ((Quarry__UploadAck *)r)->have;
        protobuf_c_message_free_unpacked(r, NULL);
    }
    qr_msg_close(&msg);
    return rc;
}

/* Where an upload's bytes come from: a file (fd) or memory (mem). */
typedef struct {
    const char *name; /* for messages */
    int fd;
    const uint8_t *mem;
} s_source_t;

/* Uploads total bytes of src named sha (its SHA-256, already computed). */
static quarry_err_t s_upload(quarry_client_t *c, const s_source_t *src, const char *sha,
                             uint64_t total)
{
    const char *path = src->name;
    uint8_t *buf = src->mem ? NULL : malloc(S_UPLOAD_CHUNK);
    if (!src->mem && !buf)
        return s_fail(c, QUARRY_ENOMEM, "out of memory");
    uint64_t have = 0;
    quarry_err_t rc = s_upload_ask(c, sha, total, &have);
    for (int rounds = 0; rc == QUARRY_OK && have < total; rounds++) {
        if (rounds > 64) {
            rc = s_fail(c, QUARRY_EIO, "upload of %s makes no progress", path);
            break;
        }
        /* a window of chunks in flight, acknowledged in order; an ack that
         * disagrees (a lost chunk, a restarted broker) restarts from what
         * the broker has */
        uint64_t ids[S_UPLOAD_WINDOW], ends[S_UPLOAD_WINDOW], sent = have;
        int head = 0, n = 0;
        bool resync = false;
        while (rc == QUARRY_OK && !resync && (n > 0 || sent < total)) {
            while (n < S_UPLOAD_WINDOW && sent < total) {
                size_t len = total - sent > S_UPLOAD_CHUNK ? S_UPLOAD_CHUNK : (size_t)(total - sent);
                if (!src->mem && s_pread_all(src->fd, buf, len, sent) != (ssize_t)len) {
                    rc = s_fail(c, QUARRY_EIO, "cannot read %s (did it change?)", path);
                    break;
                }
                Quarry__Upload u = QUARRY__UPLOAD__INIT;
                u.req_id = ++c->next_req;
                u.sha256 = (char *)sha;
                u.size = total;
                u.offset = sent;
                qr_payload_t pl = {src->mem ? src->mem + sent : buf, len};
                rc = s_send(c, QR_CMD_UPLOAD, &u.base, &pl, 1, s_now_ms() + c->timeout_ms,
                            "UPLOAD");
                if (rc)
                    break;
                sent += len;
                ids[(head + n) % S_UPLOAD_WINDOW] = u.req_id;
                ends[(head + n) % S_UPLOAD_WINDOW] = sent;
                n++;
            }
            if (rc || n == 0)
                break;
            qr_msg_t msg;
            ProtobufCMessage *r;
            rc = s_await(c, QR_CMD_UPLOAD | QR_CMD_REPLY, ids[head], &quarry__upload_ack__descriptor,
                         s_now_ms() + c->timeout_ms, &msg, &r);
            if (rc == S_SILENT)
                rc = s_timed_out(c, "UPLOAD");
            if (rc == QUARRY_OK) {
                have = ((Quarry__UploadAck *)r)->have;
                protobuf_c_message_free_unpacked(r, NULL);
                if (have != ends[head] && have < total)
                    resync = true; /* the later acks answer chunks the broker refused */
            }
            qr_msg_close(&msg);
            head = (head + 1) % S_UPLOAD_WINDOW;
            n--;
            if (have >= total)
                break;
        }
        if (rc == QUARRY_OK && resync) {
            /* drain the window's other acks, then ask where to go on */
            while (n-- > 0) {
                qr_msg_t msg;
                ProtobufCMessage *r;
                quarry_err_t d = s_await(c, QR_CMD_UPLOAD | QR_CMD_REPLY, ids[head],
                                         &quarry__upload_ack__descriptor,
                                         s_now_ms() + c->timeout_ms, &msg, &r);
                if (d == QUARRY_OK)
                    protobuf_c_message_free_unpacked(r, NULL);
                qr_msg_close(&msg);
                head = (head + 1) % S_UPLOAD_WINDOW;
            }
            rc = s_upload_ask(c, sha, total, &have);
        }
    }
    free(buf);
    if (rc == QUARRY_OK)
        c->err[0] = '\0';
    return rc;
}

quarry_err_t quarry_upload(quarry_client_t *c, const char *path, char *sha256, uint64_t *size)
{
    if (!c)
        return QUARRY_EINVAL;
    if (!path || !sha256)
        return s_fail(c, QUARRY_EINVAL, "path and sha256 must not be NULL");
    char sha[QR_SHA_HEX + 1], why[512];
    uint64_t total = 0;
    if (qr_sha_file(path, sha, &total, why, sizeof why) < 0)
        return s_fail(c, QUARRY_EIO, "%s", why);
    if (total == 0)
        return s_fail(c, QUARRY_EINVAL, "%s is empty", path);
    s_source_t src = {path, open(path, O_RDONLY | O_CLOEXEC), NULL};
    if (src.fd < 0)
        return s_fail(c, QUARRY_EIO, "cannot open %s: %s", path, strerror(errno));
    quarry_err_t rc = s_upload(c, &src, sha, total);
    close(src.fd);
    if (rc == QUARRY_OK) {
        memcpy(sha256, sha, QR_SHA_HEX + 1);
        if (size)
            *size = total;
    }
    return rc;
}

quarry_err_t quarry_upload_mem(quarry_client_t *c, const void *data, size_t len, char *sha256)
{
    if (!c)
        return QUARRY_EINVAL;
    if (!data || !sha256)
        return s_fail(c, QUARRY_EINVAL, "data and sha256 must not be NULL");
    if (len == 0)
        return s_fail(c, QUARRY_EINVAL, "nothing to upload (len 0)");
    char sha[QR_SHA_HEX + 1];
    qr_sha_t h;
    qr_sha_init(&h);
    qr_sha_update(&h, data, len);
    qr_sha_final(&h, sha);
    s_source_t src = {"the buffer", -1, data};
    quarry_err_t rc = s_upload(c, &src, sha, len);
    if (rc == QUARRY_OK)
        memcpy(sha256, sha, QR_SHA_HEX + 1);
    return rc;
}

quarry_err_t quarry_infer_submit(quarry_client_t *c, const char *weights, const char *graph,
                                 uint32_t rows, const float *input, size_t count,
                                 const quarry_job_opts_t *opts, uint64_t *job_id,
                                 uint64_t *reserved, bool *duplicate)
{
    if (!c)
        return QUARRY_EINVAL;
    if (!input || !job_id || !count)
        return s_fail(c, QUARRY_EINVAL, "input, count and job_id must be given");
    if (!qr_sha_valid(weights) || !qr_sha_valid(graph))
        return s_fail(c, QUARRY_EINVAL,
                      "weights and graph must be SHA-256 names (64 lowercase hex digits)");
    if (!rows || count % rows != 0)
        return s_fail(c, QUARRY_EINVAL, "%zu input floats do not make %u equal rows", count,
                      rows);
    if (count > SIZE_MAX / sizeof(float))
        return s_fail(c, QUARRY_ETOOBIG, "input size overflows");
    Quarry__JobSpec spec = QUARRY__JOB_SPEC__INIT;
    spec.kind = (char *)"ai.infer";
    spec.m = rows;
    spec.weights = (char *)weights;
    spec.graph = (char *)graph;
    qr_payload_t pl = {input, count * sizeof(float)};
    return s_submit(c, &spec, opts, &pl, 1, job_id, reserved, duplicate);
}

quarry_err_t quarry_zk_submit(quarry_client_t *c, const char *zkey, const void *wtns,
                              size_t wtns_len, const quarry_job_opts_t *opts, uint64_t *job_id,
                              uint64_t *reserved, bool *duplicate)
{
    if (!c)
        return QUARRY_EINVAL;
    if (!wtns || !wtns_len || !job_id)
        return s_fail(c, QUARRY_EINVAL, "wtns, wtns_len and job_id must be given");
    if (!qr_sha_valid(zkey))
        return s_fail(c, QUARRY_EINVAL,
                      "the proving key must be a SHA-256 name (64 lowercase hex digits)");
    Quarry__JobSpec spec = QUARRY__JOB_SPEC__INIT;
    spec.kind = (char *)"zk.groth16";
    spec.zkey = (char *)zkey;
    qr_payload_t pl = {wtns, wtns_len};
    return s_submit(c, &spec, opts, &pl, 1, job_id, reserved, duplicate);
}

/* JobRef request whose reply carries a JobInfo in field "job". */
static quarry_err_t s_jobref(quarry_client_t *c, uint8_t cmd, uint64_t id,
                             const ProtobufCMessageDescriptor *desc, quarry_job_info_t *out,
                             qr_msg_t *msg, ProtobufCMessage **r, const char *what)
{
    Quarry__JobRef ref = QUARRY__JOB_REF__INIT;
    ref.job_id = id;
    quarry_err_t rc = s_request(c, cmd, &ref.base, &ref.req_id, NULL, 0, desc, msg, r, what);
    if (rc == QUARRY_OK && out) {
        /* StatusReply, Event and ResultReply all have "job" as field 2 */
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(desc, 2);
        const Quarry__JobInfo *j = *(Quarry__JobInfo *const *)((const char *)*r + f->offset);
        s_info_from(out, j);
    }
    return rc;
}

quarry_err_t quarry_job_status(quarry_client_t *c, uint64_t id, quarry_job_info_t *out)
{
    if (!c)
        return QUARRY_EINVAL;
    if (!out)
        return s_fail(c, QUARRY_EINVAL, "out must not be NULL");
    qr_msg_t msg;
    ProtobufCMessage *r;
    quarry_err_t rc = s_jobref(c, QR_CMD_STATUS, id, &quarry__status_reply__descriptor, out, &msg,
                               &r, "STATUS");
    if (r)
        protobuf_c_message_free_unpacked(r, NULL);
    qr_msg_close(&msg);
    return rc;
}

quarry_err_t quarry_job_cancel(quarry_client_t *c, uint64_t id, quarry_job_info_t *info)
{
    if (!c)
        return QUARRY_EINVAL;
    quarry_job_info_t tmp;
    qr_msg_t msg;
    ProtobufCMessage *r;
    quarry_err_t rc = s_jobref(c, QR_CMD_CANCEL, id, &quarry__status_reply__descriptor,
                               info ? info : &tmp, &msg, &r, "CANCEL");
    if (r)
        protobuf_c_message_free_unpacked(r, NULL);
    qr_msg_close(&msg);
    return rc;
}

/* Delivers one event; returns non-zero when watching should stop. */
static int s_deliver(const Quarry__Event *ev, quarry_event_fn cb, void *ud,
                     quarry_job_info_t *last, bool *have)
{
    s_info_from(last, ev->job);
    *have = true;
    if (cb && cb(last, ud) != 0)
        return 1;
    return quarry_job_state_final(last->state);
}

/* quarry_job_watch; final_only asks the broker for the end alone (the
 * WATCH replies still carry the current state). */
static quarry_err_t s_watch(quarry_client_t *c, uint64_t id, int64_t timeout_ms, quarry_event_fn cb,
                            void *userdata, quarry_job_info_t *last, bool final_only)
{
    quarry_job_info_t tmp;
    if (!last)
        last = &tmp;
    bool have = false;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : s_now_ms() + timeout_ms;
    for (;;) {
        /* (Re)start the watch: its reply is the current state. */
        qr_msg_t msg;
        ProtobufCMessage *r;
        Quarry__JobRef ref = QUARRY__JOB_REF__INIT;
        ref.job_id = id;
        ref.final_only = final_only;
        quarry_err_t rc = s_request(c, QR_CMD_WATCH, &ref.base, &ref.req_id, NULL, 0,
                                    &quarry__event__descriptor, &msg, &r, "WATCH");
        if (rc != QUARRY_OK) {
            qr_msg_close(&msg);
            /* once watching, a broker that went away may come back (it
             * restarts without losing jobs): retry until the deadline */
            if (rc == QUARRY_EUNAVAIL && have && s_now_ms() < deadline)
                continue;
            return rc;
        }
        uint64_t watch_req = ref.req_id;
        int stop = s_deliver((Quarry__Event *)r, cb, userdata, last, &have);
        protobuf_c_message_free_unpacked(r, NULL);
        qr_msg_close(&msg);
        if (stop)
            return QUARRY_OK;
        /* Pushed events until final, the deadline, or a silence long
         * enough to renew. */
        for (;;) {
            int64_t now = s_now_ms();
            if (now >= deadline)
                return s_fail(c, QUARRY_ETIMEOUT, "job %llu still %s after %lld ms",
                              (unsigned long long)id, have ? last->state_name : "unknown",
                              (long long)timeout_ms);
            int64_t until = deadline - now > S_WATCH_RENEW_MS ? now + S_WATCH_RENEW_MS : deadline;
            rc = s_await(c, QR_CMD_EVENT, watch_req, &quarry__event__descriptor, until, &msg, &r);
            if (rc == S_SILENT) {
                qr_msg_close(&msg);
                if (s_now_ms() >= deadline)
                    continue; /* report the timeout above */
                break;        /* renew */
            }
            if (rc != QUARRY_OK) {
                qr_msg_close(&msg);
                return rc;
            }
            stop = s_deliver((Quarry__Event *)r, cb, userdata, last, &have);
            protobuf_c_message_free_unpacked(r, NULL);
            qr_msg_close(&msg);
            if (stop)
                return QUARRY_OK;
        }
    }
}

quarry_err_t quarry_job_watch(quarry_client_t *c, uint64_t id, int64_t timeout_ms,
                              quarry_event_fn cb, void *userdata, quarry_job_info_t *last)
{
    if (!c)
        return QUARRY_EINVAL;
    return s_watch(c, id, timeout_ms, cb, userdata, last, false);
}

quarry_err_t quarry_job_wait(quarry_client_t *c, uint64_t id, int64_t timeout_ms,
                             quarry_event_fn cb, void *userdata, quarry_job_info_t *info)
{
    if (!c)
        return QUARRY_EINVAL;
    quarry_job_info_t tmp;
    if (!info)
        info = &tmp;
    memset(info, 0, sizeof *info);
    info->state = QUARRY_JOB_UNKNOWN;
    /* without a callback only the end matters: the broker sends nothing else */
    quarry_err_t rc = s_watch(c, id, timeout_ms, cb, userdata, info, cb == NULL);
    if (rc != QUARRY_OK)
        return rc;
    if (!quarry_job_state_final(info->state))
        return QUARRY_OK; /* the callback stopped the wait */
    rc = quarry_job_state_code(info->state);
    if (rc != QUARRY_OK)
        s_fail(c, rc, "job %llu %s%s%s", (unsigned long long)id, info->state_name,
               info->detail[0] ? ": " : "", info->detail);
    return rc;
}

static quarry_err_t s_result(quarry_client_t *c, uint64_t id, float *C, size_t cap,
                             float **C_p, size_t *count, quarry_job_info_t *info)
{
    quarry_job_info_t tmp;
    if (!info)
        info = &tmp;
    qr_msg_t msg;
    ProtobufCMessage *r;
    quarry_err_t rc = s_jobref(c, QR_CMD_RESULT, id, &quarry__result_reply__descriptor, info, &msg,
                               &r, "RESULT");
    if (rc != QUARRY_OK)
        goto done;
    size_t len = 0;
    const void *data = qr_msg_payload(&msg, 0, &len);
    size_t need = (size_t)info->m * info->n;
    if (!data || len % sizeof(float) != 0 || (need && len != need * sizeof(float))) {
        rc = s_fail(c, QUARRY_EPROTO, "result frame has %zu bytes, %zu floats expected for %ux%u",
                    len, need, info->m, info->n);
        goto done;
    }
    need = len / sizeof(float);
    if (count)
        *count = need;
    if (C_p) {
        *C_p = malloc(len ? len : 1);
        if (!*C_p) {
            rc = s_fail(c, QUARRY_ENOMEM, "cannot allocate %zu bytes for the result", len);
            goto done;
        }
        memcpy(*C_p, data, len);
    } else if (cap < need) {
        rc = s_fail(c, QUARRY_ETOOBIG, "result has %zu floats, buffer holds %zu", need, cap);
    } else {
        memcpy(C, data, len);
    }
done:
    if (r)
        protobuf_c_message_free_unpacked(r, NULL);
    qr_msg_close(&msg);
    return rc;
}

quarry_err_t quarry_job_result(quarry_client_t *c, uint64_t id, float *C, size_t cap,
                               size_t *count, quarry_job_info_t *info)
{
    if (!c)
        return QUARRY_EINVAL;
    if (!C && cap)
        return s_fail(c, QUARRY_EINVAL, "C is NULL but cap is %zu", cap);
    return s_result(c, id, C, cap, NULL, count, info);
}

quarry_err_t quarry_job_result_bytes(quarry_client_t *c, uint64_t id, void **data, size_t *len,
                                     quarry_job_info_t *info)
{
    if (data)
        *data = NULL;
    if (!c)
        return QUARRY_EINVAL;
    if (!data || !len)
        return s_fail(c, QUARRY_EINVAL, "data and len must not be NULL");
    quarry_job_info_t tmp;
    if (!info)
        info = &tmp;
    qr_msg_t msg;
    ProtobufCMessage *r;
    quarry_err_t rc = s_jobref(c, QR_CMD_RESULT, id, &quarry__result_reply__descriptor, info, &msg,
                               &r, "RESULT");
    if (rc == QUARRY_OK) {
        size_t n = 0;
        const void *p = qr_msg_payload(&msg, 0, &n);
        if (!p)
            rc = s_fail(c, QUARRY_EPROTO, "the result reply carries no result frame");
        else if (!(*data = malloc(n ? n : 1)))
            rc = s_fail(c, QUARRY_ENOMEM, "cannot allocate %zu bytes for the result", n);
        else {
            memcpy(*data, p, n);
            *len = n;
        }
    }
    if (r)
        protobuf_c_message_free_unpacked(r, NULL);
    qr_msg_close(&msg);
    return rc;
}

quarry_err_t quarry_job_result_alloc(quarry_client_t *c, uint64_t id, float **C_p, size_t *count,
                                     quarry_job_info_t *info)
{
    if (C_p)
        *C_p = NULL;
    if (!c)
        return QUARRY_EINVAL;
    if (!C_p || !count)
        return s_fail(c, QUARRY_EINVAL, "C_p and count must not be NULL");
    return s_result(c, id, NULL, 0, C_p, count, info);
}

quarry_err_t quarry_job_list(quarry_client_t *c, const char *state, uint32_t limit,
                             bool all_accounts, quarry_job_info_t **jobs_p, size_t *count)
{
    if (jobs_p)
        *jobs_p = NULL;
    if (!c)
        return QUARRY_EINVAL;
    if (!jobs_p || !count)
        return s_fail(c, QUARRY_EINVAL, "jobs_p and count must not be NULL");
    if (state && *state && quarry_job_state_parse(state) == QUARRY_JOB_UNKNOWN)
        return s_fail(c, QUARRY_EINVAL, "unknown job state '%s'", state);
    Quarry__ListReq q = QUARRY__LIST_REQ__INIT;
    q.state = (char *)(state ? state : "");
    q.limit = limit;
    q.all_accounts = all_accounts;
    qr_msg_t msg;
    ProtobufCMessage *r;
    quarry_err_t rc = s_request(c, QR_CMD_LIST, &q.base, &q.req_id, NULL, 0,
                                &quarry__list_reply__descriptor, &msg, &r, "LIST");
    if (rc == QUARRY_OK) {
        Quarry__ListReply *l = (Quarry__ListReply *)r;
        *count = l->n_jobs;
        if (l->n_jobs) {
            *jobs_p = calloc(l->n_jobs, sizeof **jobs_p);
            if (!*jobs_p)
                rc = s_fail(c, QUARRY_ENOMEM, "out of memory for %zu jobs", l->n_jobs);
            for (size_t i = 0; *jobs_p && i < l->n_jobs; i++)
                s_info_from(&(*jobs_p)[i], l->jobs[i]);
        }
        protobuf_c_message_free_unpacked(r, NULL);
    }
    qr_msg_close(&msg);
    return rc;
}

void quarry_job_list_free(quarry_job_info_t **jobs_p)
{
    if (jobs_p) {
        free(*jobs_p);
        *jobs_p = NULL;
    }
}

quarry_err_t quarry_workers(quarry_client_t *c, quarry_worker_info_t **workers_p, size_t *count)
{
    if (workers_p)
        *workers_p = NULL;
    if (!c)
        return QUARRY_EINVAL;
    if (!workers_p || !count)
        return s_fail(c, QUARRY_EINVAL, "workers_p and count must not be NULL");
    Quarry__Empty q = QUARRY__EMPTY__INIT;
    qr_msg_t msg;
    ProtobufCMessage *r;
    quarry_err_t rc = s_request(c, QR_CMD_WORKERS, &q.base, &q.req_id, NULL, 0,
                                &quarry__workers_reply__descriptor, &msg, &r, "WORKERS");
    if (rc == QUARRY_OK) {
        Quarry__WorkersReply *w = (Quarry__WorkersReply *)r;
        *count = w->n_workers;
        if (w->n_workers) {
            *workers_p = calloc(w->n_workers, sizeof **workers_p);
            if (!*workers_p)
                rc = s_fail(c, QUARRY_ENOMEM, "out of memory for %zu workers", w->n_workers);
        }
        for (size_t i = 0; *workers_p && i < w->n_workers; i++) {
            const Quarry__WorkerInfo *s = w->workers[i];
            quarry_worker_info_t *d = &(*workers_p)[i];
            d->worker_id = s->worker_id;
            s_copy(d->name, sizeof d->name, s->name);
            s_copy(d->operator_, sizeof d->operator_, s->operator_);
            s_copy(d->state, sizeof d->state, s->state);
            d->slots = s->slots;
            d->busy = s->busy;
            d->ask_price = s->ask_price;
            d->reputation = s->reputation;
            d->cpu_cores = s->cpu_cores;
            d->mem_mb = s->mem_mb;
            d->gpus = s->gpus;
            d->jobs_done = s->jobs_done;
            d->earned = s->earned;
        }
        protobuf_c_message_free_unpacked(r, NULL);
    }
    qr_msg_close(&msg);
    return rc;
}

void quarry_workers_free(quarry_worker_info_t **workers_p)
{
    if (workers_p) {
        free(*workers_p);
        *workers_p = NULL;
    }
}

static void s_balance_from(quarry_balance_t *out, const Quarry__BalanceReply *b)
{
    memset(out, 0, sizeof *out);
    s_copy(out->account, sizeof out->account, b->account);
    out->available = b->available;
    out->reserved = b->reserved;
    out->earned = b->earned;
}

quarry_err_t quarry_balance(quarry_client_t *c, const char *account, quarry_balance_t *out)
{
    if (!c)
        return QUARRY_EINVAL;
    if (!out)
        return s_fail(c, QUARRY_EINVAL, "out must not be NULL");
    Quarry__BalanceReq q = QUARRY__BALANCE_REQ__INIT;
    q.account = (char *)(account ? account : "");
    qr_msg_t msg;
    ProtobufCMessage *r;
    quarry_err_t rc = s_request(c, QR_CMD_BALANCE, &q.base, &q.req_id, NULL, 0,
                                &quarry__balance_reply__descriptor, &msg, &r, "BALANCE");
    if (rc == QUARRY_OK) {
        s_balance_from(out, (Quarry__BalanceReply *)r);
        protobuf_c_message_free_unpacked(r, NULL);
    }
    qr_msg_close(&msg);
    return rc;
}

quarry_err_t quarry_deposit(quarry_client_t *c, const char *account, uint64_t amount,
                            quarry_balance_t *out)
{
    if (!c)
        return QUARRY_EINVAL;
    if (!account || !*account || !amount)
        return s_fail(c, QUARRY_EINVAL, "deposit needs an account and a positive amount");
    Quarry__DepositReq q = QUARRY__DEPOSIT_REQ__INIT;
    q.account = (char *)account;
    q.amount = amount;
    qr_msg_t msg;
    ProtobufCMessage *r;
    quarry_err_t rc = s_request(c, QR_CMD_DEPOSIT, &q.base, &q.req_id, NULL, 0,
                                &quarry__balance_reply__descriptor, &msg, &r, "DEPOSIT");
    if (rc == QUARRY_OK) {
        if (out)
            s_balance_from(out, (Quarry__BalanceReply *)r);
        protobuf_c_message_free_unpacked(r, NULL);
    }
    qr_msg_close(&msg);
    return rc;
}

quarry_err_t quarry_admin_key(quarry_client_t *c, const char *op, const char *key,
                              const char *account)
{
    if (!c)
        return QUARRY_EINVAL;
    static const char *const ops[] = {"add-client", "add-operator", "add-admin", "remove"};
    bool known = false;
    for (size_t i = 0; op && i < sizeof ops / sizeof ops[0]; i++)
        known = known || !strcmp(op, ops[i]);
    if (!known)
        return s_fail(c, QUARRY_EINVAL,
                      "unknown key operation '%s' (add-client, add-operator, add-admin, remove)",
                      op ? op : "(null)");
    bool is_remove = !strcmp(op, "remove");
    if (!is_remove && (!account || !*account))
        return s_fail(c, QUARRY_EINVAL, "%s needs an account", op);
    char pub[QR_KEY_Z85_LEN + 1], why[384];
    if (!key || !*key)
        return s_fail(c, QUARRY_EINVAL, "%s needs a public key", op);
    if (qr_keys_load_public(key, pub, why, sizeof why) != 0)
        return s_fail(c, QUARRY_EINVAL, "%s", why);
    Quarry__AdminKey q = QUARRY__ADMIN_KEY__INIT;
    q.op = (char *)op;
    q.key = pub;
    q.account = (char *)(account ? account : "");
    qr_msg_t msg;
    ProtobufCMessage *r;
    quarry_err_t rc = s_request(c, QR_CMD_ADMIN_KEY, &q.base, &q.req_id, NULL, 0,
                                &quarry__empty__descriptor, &msg, &r, "ADMIN_KEY");
    if (rc == QUARRY_OK)
        protobuf_c_message_free_unpacked(r, NULL);
    qr_msg_close(&msg);
    return rc;
}

quarry_err_t quarry_keygen(const char *prefix, char pub[41])
{
    if (!prefix || !*prefix)
        return QUARRY_EINVAL;
    char p[QR_KEY_Z85_LEN + 1], sec[QR_KEY_Z85_LEN + 1], why[256];
    if (!zmq_has("curve") || qr_keys_generate(p, sec) != 0)
        return QUARRY_EINVAL;
    int rc = qr_keys_write(prefix, p, sec, why, sizeof why);
    volatile char *v = sec;
    for (size_t i = 0; i < sizeof sec; i++)
        v[i] = 0;
    if (rc != 0)
        return QUARRY_EIO;
    if (pub)
        memcpy(pub, p, sizeof p);
    return QUARRY_OK;
}

quarry_err_t quarry_dash(quarry_client_t *c, quarry_dash_t **dash_p)
{
    if (dash_p)
        *dash_p = NULL;
    if (!c)
        return QUARRY_EINVAL;
    if (!dash_p)
        return s_fail(c, QUARRY_EINVAL, "dash_p must not be NULL");
    Quarry__Empty q = QUARRY__EMPTY__INIT;
    qr_msg_t msg;
    ProtobufCMessage *r;
    quarry_err_t rc = s_request(c, QR_CMD_DASH, &q.base, &q.req_id, NULL, 0,
                                &quarry__dash_reply__descriptor, &msg, &r, "DASH");
    if (rc != QUARRY_OK) {
        qr_msg_close(&msg);
        return rc;
    }
    Quarry__DashReply *d = (Quarry__DashReply *)r;
    /* one block: the struct, then the kinds, then the operators */
    size_t sz = sizeof(quarry_dash_t) + d->n_kinds * sizeof(quarry_kind_stat_t) +
                d->n_operators * sizeof(quarry_operator_stat_t);
    quarry_dash_t *out = calloc(1, sz);
    if (!out) {
        rc = s_fail(c, QUARRY_ENOMEM, "out of memory for the dashboard");
        goto done;
    }
    out->kinds = d->n_kinds ? (quarry_kind_stat_t *)(out + 1) : NULL;
    out->nkinds = d->n_kinds;
    for (size_t i = 0; i < d->n_kinds; i++) {
        s_copy(out->kinds[i].kind, sizeof out->kinds[i].kind, d->kinds[i]->kind);
        out->kinds[i].queued = d->kinds[i]->queued;
        out->kinds[i].running = d->kinds[i]->running;
    }
    out->operators = d->n_operators
                         ? (quarry_operator_stat_t *)((char *)(out + 1) +
                                                      d->n_kinds * sizeof(quarry_kind_stat_t))
                         : NULL;
    out->noperators = d->n_operators;
    for (size_t i = 0; i < d->n_operators; i++) {
        s_copy(out->operators[i].operator_, sizeof out->operators[i].operator_,
               d->operators[i]->operator_);
        out->operators[i].jobs = d->operators[i]->jobs;
        out->operators[i].earned = d->operators[i]->earned;
    }
    out->workers = d->workers;
    out->utilisation = d->utilisation;
    out->jobs_per_s = d->jobs_per_s;
    out->p50_ms = d->p50_ms;
    out->p99_ms = d->p99_ms;
    out->settled_total = d->settled_total;
    out->ledger_sum = d->ledger_sum;
    *dash_p = out;
done:
    protobuf_c_message_free_unpacked(r, NULL);
    qr_msg_close(&msg);
    return rc;
}

void quarry_dash_free(quarry_dash_t **dash_p)
{
    if (dash_p) {
        free(*dash_p);
        *dash_p = NULL;
    }
}
