/* Frame validation and multipart send/receive for the Quarry protocol. */
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

static void s_drain(void *sock)
{
    int more = 1;
    size_t sz = sizeof more;
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
        zmq_msg_t f;
        zmq_msg_init(&f);
        int rc = zmq_msg_recv(&f, sock, 0);
        zmq_msg_close(&f);
        if (rc < 0)
            break;
    }
}

int qr_wire_recv(void *sock, bool router, const char *proto, int flags, qr_msg_t *msg,
                 char *err, size_t errlen)
{
    memset(msg, 0, sizeof *msg);
    msg->first = router ? 1 : 0;
    if (err && errlen)
        err[0] = '\0';
    for (;;) {
        if (msg->nframes == QR_WIRE_MAX_FRAMES) {
            s_drain(sock);
            snprintf(err, errlen, "message has more than %d frames", QR_WIRE_MAX_FRAMES);
            return QR_EPROTO;
        }
        zmq_msg_t *f = &msg->frames[msg->nframes];
        zmq_msg_init(f);
        if (zmq_msg_recv(f, sock, msg->nframes ? 0 : flags) < 0) {
            int e = errno;
            zmq_msg_close(f);
            snprintf(err, errlen, "receive failed: %s", zmq_strerror(e));
            errno = e;
            return QR_EIO;
        }
        msg->nframes++;
        if (!zmq_msg_more(f))
            break;
    }
    int need = msg->first + 3;
    if (msg->nframes < need) {
        snprintf(err, errlen, "message has %d frames, at least %d needed", msg->nframes, need);
        return QR_EPROTO;
    }
    zmq_msg_t *p = &msg->frames[msg->first];
    size_t plen = strlen(proto);
    if (zmq_msg_size(p) != plen || memcmp(zmq_msg_data(p), proto, plen) != 0) {
        snprintf(err, errlen, "protocol frame is not %s", proto);
        return QR_EPROTO;
    }
    zmq_msg_t *c = &msg->frames[msg->first + 1];
    if (zmq_msg_size(c) != 1) {
        snprintf(err, errlen, "command frame must be 1 byte, got %zu", zmq_msg_size(c));
        return QR_EPROTO;
    }
    msg->cmd = *(const uint8_t *)zmq_msg_data(c);
    return QR_OK;
}

void qr_msg_close(qr_msg_t *msg)
{
    for (int i = 0; i < msg->nframes; i++)
        zmq_msg_close(&msg->frames[i]);
    msg->nframes = 0;
}

const void *qr_msg_identity(const qr_msg_t *msg, size_t *len)
{
    if (msg->first < 1 || msg->nframes < 1) {
        *len = 0;
        return NULL;
    }
    *len = zmq_msg_size((zmq_msg_t *)&msg->frames[0]);
    return zmq_msg_data((zmq_msg_t *)&msg->frames[0]);
}

const void *qr_msg_body(const qr_msg_t *msg, size_t *len)
{
    int i = msg->first + 2;
    if (i >= msg->nframes) {
        *len = 0;
        return NULL;
    }
    *len = zmq_msg_size((zmq_msg_t *)&msg->frames[i]);
    return zmq_msg_data((zmq_msg_t *)&msg->frames[i]);
}

int qr_msg_npayload(const qr_msg_t *msg)
{
    int n = msg->nframes - (msg->first + 3);
    return n > 0 ? n : 0;
}

const void *qr_msg_payload(const qr_msg_t *msg, int i, size_t *len)
{
    if (i < 0 || i >= qr_msg_npayload(msg)) {
        *len = 0;
        return NULL;
    }
    zmq_msg_t *f = (zmq_msg_t *)&msg->frames[msg->first + 3 + i];
    *len = zmq_msg_size(f);
    return zmq_msg_data(f);
}

ProtobufCMessage *qr_msg_decode(const qr_msg_t *msg, const ProtobufCMessageDescriptor *desc,
                                char *err, size_t errlen)
{
    size_t len;
    const void *body = qr_msg_body(msg, &len);
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, body);
    if (!m)
        snprintf(err, errlen, "body is not a valid %s message", desc->short_name);
    return m;
}

int qr_wire_send(void *sock, const void *identity, size_t idlen, const char *proto, uint8_t cmd,
                 const ProtobufCMessage *body, const qr_payload_t *payloads, int npayloads)
{
    uint8_t stackbuf[512];
    uint8_t *buf = stackbuf;
    size_t blen = body ? protobuf_c_message_get_packed_size(body) : 0;
    if (blen > sizeof stackbuf) {
        buf = malloc(blen);
        if (!buf) {
            errno = ENOMEM;
            return QR_EIO;
        }
    }
    if (body)
        protobuf_c_message_pack(body, buf);
    int rc = 0;
    if (identity && zmq_send(sock, identity, idlen, ZMQ_SNDMORE) < 0)
        rc = -1;
    if (rc == 0 && zmq_send(sock, proto, strlen(proto), ZMQ_SNDMORE) < 0)
        rc = -1;
    if (rc == 0 && zmq_send(sock, &cmd, 1, ZMQ_SNDMORE) < 0)
        rc = -1;
    if (rc == 0 && zmq_send(sock, buf, blen, npayloads > 0 ? ZMQ_SNDMORE : 0) < 0)
        rc = -1;
    for (int i = 0; rc == 0 && i < npayloads; i++)
        if (zmq_send(sock, payloads[i].data, payloads[i].len, i + 1 < npayloads ? ZMQ_SNDMORE : 0) <
            0)
            rc = -1;
    int e = errno;
    if (buf != stackbuf)
        free(buf);
    errno = e;
    return rc == 0 ? QR_OK : QR_EIO;
}

int qr_wire_send_error(void *sock, const void *identity, size_t idlen, const char *proto,
                       uint64_t req_id, uint64_t job_id, int code, const char *message)
{
    Quarry__Error e = QUARRY__ERROR__INIT;
    e.req_id = req_id;
    e.job_id = job_id;
    e.code = code;
    e.message = (char *)(message ? message : qr_strerror(code));
    return qr_wire_send(sock, identity, idlen, proto, QR_CMD_ERROR, &e.base, NULL, 0);
}
