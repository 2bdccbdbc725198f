/* libFuzzer target: libquarry's decoding of broker replies (sdk/client.c).
 *
 * A scripted broker (a ROUTER on an ipc:// socket, in a thread) answers the
 * client's HELLO properly and every other request with the fuzzer's frames:
 * a command byte, a body that starts with the request's own req_id (so the
 * client does not just drop it) followed by fuzzer bytes, and up to two
 * payload frames.  The first input byte picks the library call: status, wait,
 * result, list, workers, balance, dash, cancel.
 *
 * Invariants besides "no crash / no sanitizer report / no leak": every call
 * returns a code the header defines, and on success its output is sane
 * (lists and their counts agree, strings are NUL-terminated). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "quarry.h"
#include "err.h"
#include "wire.h"

#define S_CHECK(cond)                                                                           \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "fuzz_sdk: invariant failed at %s:%d: %s\n", __FILE__, __LINE__,    \
                    #cond);                                                                     \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

static char s_ep[256];
static pthread_mutex_t s_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t s_reply[4096]; /* the current input, for the broker thread */
static size_t s_reply_len;
static quarry_client_t *s_client;

/* protobuf varint of field 1 (req_id) */
static size_t s_req_field(uint64_t v, uint8_t *out)
{
    size_t n = 0;
    out[n++] = 0x08;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        out[n++] = b | (v ? 0x80 : 0);
    } while (v);
    return n;
}

static void *s_broker(void *arg)
{
    (void)arg;
    void *ctx = zmq_ctx_new(), *r = zmq_socket(ctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(r, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(r, s_ep) != 0)
        abort();
    for (;;) {
        qr_msg_t m;
        char err[128];
        if (qr_wire_recv(r, true, QR_PROTO_CLIENT, 0, &m, err, sizeof err) != QR_OK) {
            qr_msg_close(&m);
            continue;
        }
        size_t idlen;
        const void *id = qr_msg_identity(&m, &idlen);
        size_t blen;
        const void *body = qr_msg_body(&m, &blen);
        Quarry__Empty *e = quarry__empty__unpack(NULL, blen, body);
        uint64_t req = e ? e->req_id : 0;
        if (e)
            quarry__empty__free_unpacked(e, NULL);
        if (m.cmd == QR_CMD_HELLO) {
            Quarry__HelloAck ack = QUARRY__HELLO_ACK__INIT;
            ack.req_id = req;
            ack.account_id = 1;
            qr_wire_send(r, id, idlen, QR_PROTO_CLIENT, QR_CMD_HELLO | QR_CMD_REPLY, &ack.base, NULL, 0);
            qr_msg_close(&m);
            continue;
        }
        pthread_mutex_lock(&s_mu);
        uint8_t cmdsel = s_reply_len > 0 ? s_reply[0] : 0;
        size_t n = s_reply_len > 1 ? s_reply_len - 1 : 0;
        const uint8_t *rest = s_reply + 1;
        /* the reply command: usually the right one, sometimes an error or event */
        uint8_t cmd = cmdsel < 200 ? (uint8_t)(m.cmd | QR_CMD_REPLY)
                      : cmdsel < 230 ? QR_CMD_ERROR
                      : cmdsel < 245 ? QR_CMD_EVENT
                                     : cmdsel;
        /* body = req_id field + fuzz bytes up to the first 0xFE; payload frames after */
        size_t cut = n;
        for (size_t i = 0; i < n; i++)
            if (rest[i] == 0xFE) {
                cut = i;
                break;
            }
        uint8_t out[4200];
        size_t olen = s_req_field(req, out);
        memcpy(out + olen, rest, cut);
        olen += cut;
        zmq_send(r, id, idlen, ZMQ_SNDMORE);
        zmq_send(r, QR_PROTO_CLIENT, 5, ZMQ_SNDMORE);
        zmq_send(r, &cmd, 1, ZMQ_SNDMORE);
        bool pay = cut < n;
        zmq_send(r, out, olen, pay ? ZMQ_SNDMORE : 0);
        if (pay)
            zmq_send(r, rest + cut + 1, n - cut - 1, 0);
        pthread_mutex_unlock(&s_mu);
        qr_msg_close(&m);
    }
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("TMPDIR");
    snprintf(s_ep, sizeof s_ep, "ipc://%s/quarry-fuzz-sdk-%d", dir && *dir ? dir : "/tmp", (int)getpid());
    pthread_t t;
    pthread_create(&t, NULL, s_broker, NULL);
    pthread_detach(t);
    quarry_client_opts_t o;
    quarry_client_opts_init(&o);
    o.endpoint = s_ep;
    o.account = "fuzz";
    o.timeout_ms = 30;
    for (int i = 0; i < 100 && quarry_client_new_opts(&o, &s_client) != QUARRY_OK; i++)
        usleep(10000);
    if (!s_client)
        abort();
    return 0;
}

static void s_str_ok(const char *s, size_t cap)
{
    S_CHECK(memchr(s, '\0', cap) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > sizeof s_reply + 1)
        return 0;
    pthread_mutex_lock(&s_mu);
    memcpy(s_reply, data + 1, size - 1);
    s_reply_len = size - 1;
    pthread_mutex_unlock(&s_mu);
    quarry_job_info_t info;
    quarry_err_t rc = QUARRY_OK;
    switch (data[0] % 8) {
    case 0:
        rc = quarry_job_status(s_client, 7, &info);
        if (rc == QUARRY_OK)
            s_str_ok(info.detail, sizeof info.detail);
        break;
    case 1:
        rc = quarry_job_wait(s_client, 7, 30, NULL, NULL, &info);
        break;
    case 2: {
        float *c = NULL;
        size_t count = 0;
        rc = quarry_job_result_alloc(s_client, 7, &c, &count, &info);
        S_CHECK(rc != QUARRY_OK || (c != NULL || count == 0));
        quarry_free(c);
        break;
    }
    case 3: {
        quarry_job_info_t *jobs = NULL;
        size_t n = 0;
        rc = quarry_job_list(s_client, NULL, 10, false, &jobs, &n);
        S_CHECK(rc != QUARRY_OK || n == 0 || jobs != NULL);
        for (size_t i = 0; rc == QUARRY_OK && i < n; i++)
            s_str_ok(jobs[i].kind, sizeof jobs[i].kind);
        quarry_job_list_free(&jobs);
        break;
    }
    case 4: {
        quarry_worker_info_t *ws = NULL;
        size_t n = 0;
        rc = quarry_workers(s_client, &ws, &n);
        for (size_t i = 0; rc == QUARRY_OK && i < n; i++)
            s_str_ok(ws[i].name, sizeof ws[i].name);
        quarry_workers_free(&ws);
        break;
    }
    case 5: {
        quarry_balance_t b;
        rc = quarry_balance(s_client, NULL, &b);
        if (rc == QUARRY_OK)
            s_str_ok(b.account, sizeof b.account);
        break;
    }
    case 6: {
        quarry_dash_t *d = NULL;
        rc = quarry_dash(s_client, &d);
        if (rc == QUARRY_OK) {
            S_CHECK(d != NULL);
            for (size_t i = 0; i < d->nkinds; i++)
                s_str_ok(d->kinds[i].kind, sizeof d->kinds[i].kind);
        }
        quarry_dash_free(&d);
        break;
    }
    default:
        rc = quarry_job_cancel(s_client, 7, &info);
        break;
    }
    S_CHECK((int)rc >= 0 && (int)rc <= QUARRY_ELIMIT);
    S_CHECK(quarry_strerror(rc) != NULL);
    return 0;
}
