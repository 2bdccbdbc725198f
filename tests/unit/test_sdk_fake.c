/* A scripted broker peer for the SDK tests: a real ZeroMQ ROUTER bound to an
 * ephemeral TCP port, driven by a script function on its own thread.
 *
 * #included by test_sdk_proto.c and test_sdk_cli.c (not a test by itself).
 * cmocka's asserts must stay on the test's thread, so a script records its
 * first failed check in fake->fail and the test asserts fake_join() == "". */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "err.h"
#include "wire.h"

typedef struct fake fake_t;
typedef void (*fake_script_fn)(fake_t *f);

struct fake {
    void *ctx;
    void *router;
    char endpoint[256];   /* what the client connects to */
    pthread_t thread;
    fake_script_fn script;
    char fail[512];       /* first failed check, "" when all passed */
    int hellos;           /* HELLOs answered */
    int requests;         /* requests seen after HELLO (excluding HELLOs) */
    void *user;           /* test data */
};

#define FAKE_CHECK(f, cond)                                                                       \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            if (!(f)->fail[0])                                                                    \
                snprintf((f)->fail, sizeof (f)->fail, "%s:%d: %s", __FILE__, __LINE__, #cond);    \
            return;                                                                               \
        }                                                                                         \
    } while (0)

static void *fake_main(void *arg)
{
    fake_t *f = arg;
    f->script(f);
    return NULL;
}

/* Binds the ROUTER (a CURVE server with secret key curve_secret, Z85, when
 * not NULL) and starts script on a thread. */
__attribute__((unused)) static int fake_start_curve(fake_t *f, fake_script_fn script, void *user,
                                                    const char *curve_secret)
{
    memset(f, 0, sizeof *f);
    f->ctx = zmq_ctx_new();
    f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
    int zero = 0, one = 1;
    zmq_setsockopt(f->router, ZMQ_LINGER, &zero, sizeof zero);
    if (curve_secret && (zmq_setsockopt(f->router, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
                         zmq_setsockopt(f->router, ZMQ_CURVE_SECRETKEY, curve_secret, 40) != 0))
        return -1;
    if (zmq_bind(f->router, "tcp://127.0.0.1:*") != 0)
        return -1;
    size_t len = sizeof f->endpoint;
    zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, f->endpoint, &len);
    f->script = script;
    f->user = user;
    return pthread_create(&f->thread, NULL, fake_main, f);
}

/* Binds a plain-text ROUTER and starts script on a thread. */
__attribute__((unused)) static int fake_start(fake_t *f, fake_script_fn script, void *user)
{
    return fake_start_curve(f, script, user, NULL);
}

/* Waits for the script to end, closes the peer, returns the failure text. */
static const char *fake_join(fake_t *f)
{
    pthread_join(f->thread, NULL);
    zmq_close(f->router);
    zmq_ctx_term(f->ctx);
    return f->fail;
}

/* Receives one message within ms; 0, or -1 on timeout or a bad frame. */
__attribute__((unused)) static int fake_recv(fake_t *f, qr_msg_t *msg, int ms)
{
    memset(msg, 0, sizeof *msg);
    zmq_pollitem_t it = {f->router, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, ms) <= 0)
        return -1;
    char err[128];
    return qr_wire_recv(f->router, true, QR_PROTO_CLIENT, 0, msg, err, sizeof err) == QR_OK ? 0
                                                                                              : -1;
}

/* Sends cmd with body to the peer that sent req. */
__attribute__((unused)) static void fake_send(fake_t *f, const qr_msg_t *req, uint8_t cmd, const ProtobufCMessage *body,
                      const qr_payload_t *pl, int np)
{
    size_t idlen;
    const void *id = qr_msg_identity(req, &idlen);
    qr_wire_send(f->router, id, idlen, QR_PROTO_CLIENT, cmd, body, pl, np);
}

/* Expects a HELLO within 2 s and answers it with account_id 7. */
__attribute__((unused)) static int fake_hello(fake_t *f, qr_msg_t *msg)
{
    if (fake_recv(f, msg, 2000) < 0 || msg->cmd != QR_CMD_HELLO) {
        snprintf(f->fail, sizeof f->fail, "expected HELLO");
        return -1;
    }
    char err[128];
    Quarry__Hello *h = (Quarry__Hello *)qr_msg_decode(msg, &quarry__hello__descriptor, err, sizeof err);
    if (!h) {
        snprintf(f->fail, sizeof f->fail, "bad HELLO body");
        return -1;
    }
    Quarry__HelloAck a = QUARRY__HELLO_ACK__INIT;
    a.req_id = h->req_id;
    a.account_id = 7;
    protobuf_c_message_free_unpacked(&h->base, NULL);
    fake_send(f, msg, QR_CMD_HELLO | QR_CMD_REPLY, &a.base, NULL, 0);
    f->hellos++;
    return 0;
}

/* Receives a request with command cmd (after a HELLO from a new peer, which is
 * answered); decodes its body as desc.  NULL on failure (recorded). */
static ProtobufCMessage *fake_expect(fake_t *f, qr_msg_t *msg, uint8_t cmd,
                                     const ProtobufCMessageDescriptor *desc)
{
    for (;;) {
        if (fake_recv(f, msg, 3000) < 0) {
            snprintf(f->fail, sizeof f->fail, "expected command 0x%02x, got nothing", cmd);
            return NULL;
        }
        if (msg->cmd == QR_CMD_HELLO && cmd != QR_CMD_HELLO) {
            char err[128];
            Quarry__Hello *h = (Quarry__Hello *)qr_msg_decode(msg, &quarry__hello__descriptor, err,
                                                              sizeof err);
            Quarry__HelloAck a = QUARRY__HELLO_ACK__INIT;
            a.req_id = h ? h->req_id : 0;
            a.account_id = 7;
            if (h)
                protobuf_c_message_free_unpacked(&h->base, NULL);
            fake_send(f, msg, QR_CMD_HELLO | QR_CMD_REPLY, &a.base, NULL, 0);
            f->hellos++;
            qr_msg_close(msg);
            continue;
        }
        break;
    }
    f->requests++;
    if (msg->cmd != cmd) {
        snprintf(f->fail, sizeof f->fail, "expected command 0x%02x, got 0x%02x", cmd, msg->cmd);
        return NULL;
    }
    char err[128];
    ProtobufCMessage *m = qr_msg_decode(msg, desc, err, sizeof err);
    if (!m)
        snprintf(f->fail, sizeof f->fail, "%s", err);
    return m;
}

__attribute__((unused)) static Quarry__JobInfo fake_job(uint64_t id, const char *state, uint32_t progress)
{
    Quarry__JobInfo j = QUARRY__JOB_INFO__INIT;
    j.job_id = id;
    j.kind = (char *)"ai.gemm";
    j.state = (char *)state;
    j.progress = progress;
    j.m = 2;
    j.n = 3;
    j.k = 4;
    j.max_price = 100;
    return j;
}
