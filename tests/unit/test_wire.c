/* common/wire: framing over real ZeroMQ sockets, and every malformed shape
 * reported as QR_EPROTO with the socket still usable afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <zmq.h>

#include "err.h"
#include "wire.h"

typedef struct {
    void *ctx, *router, *dealer;
} s_pair_t;

static int s_setup(void **state)
{
    static s_pair_t p;
    p.ctx = zmq_ctx_new();
    p.router = zmq_socket(p.ctx, ZMQ_ROUTER);
    p.dealer = zmq_socket(p.ctx, ZMQ_DEALER);
    assert_int_equal(zmq_bind(p.router, "inproc://wire"), 0);
    assert_int_equal(zmq_connect(p.dealer, "inproc://wire"), 0);
    *state = &p;
    return 0;
}

static int s_teardown(void **state)
{
    s_pair_t *p = *state;
    int linger = 0;
    zmq_setsockopt(p->router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(p->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(p->router);
    zmq_close(p->dealer);
    zmq_ctx_term(p->ctx);
    return 0;
}

static void s_raw(void *sock, int n, const char *const *frames, const size_t *lens)
{
    for (int i = 0; i < n; i++)
        zmq_send(sock, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0);
}

static void test_roundtrip(void **state)
{
    s_pair_t *p = *state;
    Quarry__JobRef ref = QUARRY__JOB_REF__INIT;
    ref.req_id = 42;
    ref.job_id = 7;
    float a[3] = {1, 2, 3};
    qr_payload_t pay[2] = {{a, sizeof a}, {NULL, 0}};
    assert_int_equal(qr_wire_send(p->dealer, NULL, 0, QR_PROTO_CLIENT, QR_CMD_STATUS, &ref.base, pay, 2),
                     QR_OK);
    qr_msg_t m;
    char err[128];
    assert_int_equal(qr_wire_recv(p->router, true, QR_PROTO_CLIENT, 0, &m, err, sizeof err), QR_OK);
    assert_int_equal(m.cmd, QR_CMD_STATUS);
    size_t idlen, len;
    const void *id = qr_msg_identity(&m, &idlen);
    assert_non_null(id);
    assert_int_equal(qr_msg_npayload(&m), 2);
    const void *pl = qr_msg_payload(&m, 0, &len);
    assert_int_equal(len, sizeof a);
    assert_memory_equal(pl, a, sizeof a);
    qr_msg_payload(&m, 1, &len);
    assert_int_equal(len, 0);
    assert_null(qr_msg_payload(&m, 2, &len));
    Quarry__JobRef *got = (Quarry__JobRef *)qr_msg_decode(&m, &quarry__job_ref__descriptor, err, sizeof err);
    assert_non_null(got);
    assert_int_equal(got->req_id, 42);
    assert_int_equal(got->job_id, 7);
    protobuf_c_message_free_unpacked(&got->base, NULL);
    /* reply through the identity, including an error */
    assert_int_equal(qr_wire_send_error(p->router, id, idlen, QR_PROTO_CLIENT, 42, 7, QR_EFUNDS, NULL), QR_OK);
    qr_msg_close(&m);
    assert_int_equal(qr_wire_recv(p->dealer, false, QR_PROTO_CLIENT, 0, &m, err, sizeof err), QR_OK);
    assert_int_equal(m.cmd, QR_CMD_ERROR);
    Quarry__Error *e = (Quarry__Error *)qr_msg_decode(&m, &quarry__error__descriptor, err, sizeof err);
    assert_non_null(e);
    assert_int_equal(e->code, QR_EFUNDS);
    assert_string_equal(e->message, qr_strerror(QR_EFUNDS));
    protobuf_c_message_free_unpacked(&e->base, NULL);
    qr_msg_close(&m);
}

static void s_expect_proto(s_pair_t *p, const char *needle)
{
    qr_msg_t m;
    char err[128];
    assert_int_equal(qr_wire_recv(p->router, true, QR_PROTO_CLIENT, 0, &m, err, sizeof err), QR_EPROTO);
    assert_non_null(strstr(err, needle));
    size_t idlen;
    assert_non_null(qr_msg_identity(&m, &idlen)); /* the caller can still answer */
    qr_msg_close(&m);
}

static void test_malformed(void **state)
{
    s_pair_t *p = *state;
    const char *f1[] = {"QRX99", "\x03", ""};
    size_t l1[] = {5, 1, 0};
    s_raw(p->dealer, 3, f1, l1);
    s_expect_proto(p, "protocol frame");
    const char *f2[] = {QR_PROTO_CLIENT, "\x03"};
    size_t l2[] = {5, 1};
    s_raw(p->dealer, 2, f2, l2);
    s_expect_proto(p, "frames");
    const char *f3[] = {QR_PROTO_CLIENT, "\x03\x04", ""};
    size_t l3[] = {5, 2, 0};
    s_raw(p->dealer, 3, f3, l3);
    s_expect_proto(p, "command frame");
    const char *f4[20];
    size_t l4[20];
    for (int i = 0; i < 20; i++) {
        f4[i] = i == 0 ? QR_PROTO_CLIENT : "x";
        l4[i] = i == 0 ? 5 : 1;
    }
    s_raw(p->dealer, 20, f4, l4);
    s_expect_proto(p, "more than");
    /* the socket is still in step: a good message comes through whole */
    Quarry__Empty e = QUARRY__EMPTY__INIT;
    e.req_id = 9;
    assert_int_equal(qr_wire_send(p->dealer, NULL, 0, QR_PROTO_CLIENT, QR_CMD_DASH, &e.base, NULL, 0), QR_OK);
    qr_msg_t m;
    char err[128];
    assert_int_equal(qr_wire_recv(p->router, true, QR_PROTO_CLIENT, 0, &m, err, sizeof err), QR_OK);
    assert_int_equal(m.cmd, QR_CMD_DASH);
    qr_msg_close(&m);
    /* a body that is not protobuf */
    const char *f5[] = {QR_PROTO_CLIENT, "\x03", "\xff\xff\xff"};
    size_t l5[] = {5, 1, 3};
    s_raw(p->dealer, 3, f5, l5);
    assert_int_equal(qr_wire_recv(p->router, true, QR_PROTO_CLIENT, 0, &m, err, sizeof err), QR_OK);
    assert_null(qr_msg_decode(&m, &quarry__job_ref__descriptor, err, sizeof err));
    assert_non_null(strstr(err, "JobRef"));
    qr_msg_close(&m);
    /* nothing to read */
    assert_int_equal(qr_wire_recv(p->router, true, QR_PROTO_CLIENT, ZMQ_DONTWAIT, &m, err, sizeof err), QR_EIO);
    qr_msg_close(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
