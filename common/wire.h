/* Quarry wire framing over ZeroMQ multipart messages.
 *
 * A message is [identity (ROUTER side only)] [protocol] [command] [body] [payload...].
 * The protocol frame names the peer class and version (QR_PROTO_CLIENT,
 * QR_PROTO_WORKER), the command frame is one byte, the body is a protobuf-c
 * message from schemas/quarry.proto, and large payloads (matrices, results)
 * ride as separate frames so they are never copied into protobuf.
 *
 * qr_wire_recv validates the frame layout before anyone looks at the body; a
 * bad message is consumed whole and reported as QR_EPROTO with a reason, so
 * the caller can answer with an error and go on.  Not thread-safe per socket,
 * like ZeroMQ sockets themselves. */
#ifndef QR_WIRE_H
#define QR_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "quarry.pb-c.h"

#define QR_PROTO_CLIENT "QRC01"
#define QR_PROTO_WORKER "QRW01"
#define QR_WIRE_MAX_FRAMES 16 /* identity + protocol + command + body + 12 payloads */

/* Client <-> broker commands.  A reply carries the request's command | 0x80. */
enum {
    QR_CMD_HELLO = 0x01,   /* Hello -> HelloAck */
    QR_CMD_SUBMIT = 0x02,  /* Submit + input frames -> SubmitAck */
    QR_CMD_STATUS = 0x03,  /* JobRef -> StatusReply */
    QR_CMD_WATCH = 0x04,   /* JobRef -> Event now, then QR_CMD_EVENT on each change */
    QR_CMD_CANCEL = 0x05,  /* JobRef -> StatusReply */
    QR_CMD_RESULT = 0x06,  /* JobRef -> ResultReply + result frames */
    QR_CMD_LIST = 0x07,    /* ListReq -> ListReply */
    QR_CMD_WORKERS = 0x08, /* Empty -> WorkersReply */
    QR_CMD_BALANCE = 0x09, /* BalanceReq -> BalanceReply */
    QR_CMD_DEPOSIT = 0x0A, /* DepositReq -> BalanceReply (admin credit) */
    QR_CMD_DASH = 0x0B,    /* Empty -> DashReply */
    QR_CMD_ADMIN_KEY = 0x0C, /* AdminKey -> Empty (admin key only) */
    QR_CMD_UPLOAD = 0x0D,  /* Upload [+ chunk frame] -> UploadAck */
    QR_CMD_EVENT = 0x40,   /* broker -> client: Event */
    QR_CMD_ERROR = 0x7F,   /* either way: Error */
    QR_CMD_REPLY = 0x80,   /* OR-ed into a request's command for its reply */
};

/* Worker <-> broker commands (Majordomo-like). */
enum {
    QR_WCMD_READY = 0x01,      /* worker -> broker: Ready;  broker -> worker: ReadyAck (0x81) */
    QR_WCMD_HEARTBEAT = 0x02,  /* both ways, empty body */
    QR_WCMD_ASSIGN = 0x03,     /* broker -> worker: Assign + input frames */
    QR_WCMD_PROGRESS = 0x04,   /* worker -> broker: Progress */
    QR_WCMD_RESULT = 0x05,     /* worker -> broker: Result + result frames */
    QR_WCMD_FAIL = 0x06,       /* worker -> broker: Fail */
    QR_WCMD_CANCEL = 0x07,     /* broker -> worker: Cancel */
    QR_WCMD_DISCONNECT = 0x08, /* both ways: Disconnect */
    QR_WCMD_FETCH = 0x09,      /* worker -> broker: Fetch */
    QR_WCMD_CHUNK = 0x0A,      /* broker -> worker: Chunk + bytes */
    QR_WCMD_HOLDINGS = 0x0B,   /* worker -> broker: Holdings */
};

/* One received message.  Frames stay owned by the struct until qr_msg_close. */
typedef struct {
    zmq_msg_t frames[QR_WIRE_MAX_FRAMES]; /* raw frames as received */
    int nframes;                          /* frames held */
    int first;                            /* index of the protocol frame */
    uint8_t cmd;                          /* command byte, valid after QR_OK */
} qr_msg_t;

/* A payload frame to send: data is copied by ZeroMQ. */
typedef struct {
    const void *data; /* may be NULL when len == 0 */
    size_t len;
} qr_payload_t;

/* Receives one whole message from sock.  router: the socket is a ROUTER and
 * frame 0 is the peer identity.  proto: expected protocol frame.
 * Returns QR_OK; QR_EPROTO with a reason in err (the message was read whole,
 * identity available through qr_msg_identity when router); QR_EIO on a socket
 * error or with nothing to read under flags = ZMQ_DONTWAIT (errno kept).
 * Always call qr_msg_close afterwards, whatever the result. */
int qr_wire_recv(void *sock, bool router, const char *proto, int flags, qr_msg_t *msg,
                 char *err, size_t errlen);

/* Releases the frames of msg; safe on a zeroed or closed msg. */
void qr_msg_close(qr_msg_t *msg);

/* Identity frame of a ROUTER message (NULL when there is none). */
const void *qr_msg_identity(const qr_msg_t *msg, size_t *len);
/* Body frame, or NULL with *len = 0 when absent. */
const void *qr_msg_body(const qr_msg_t *msg, size_t *len);
/* Number of payload frames after the body. */
int qr_msg_npayload(const qr_msg_t *msg);
/* Payload frame i (0-based), NULL when out of range. */
const void *qr_msg_payload(const qr_msg_t *msg, int i, size_t *len);

/* Decodes the body as message type desc.  Returns the unpacked message, which
 * the caller frees with protobuf_c_message_free_unpacked(m, NULL), or NULL when
 * the body is not a valid encoding (reason in err). */
ProtobufCMessage *qr_msg_decode(const qr_msg_t *msg, const ProtobufCMessageDescriptor *desc,
                                char *err, size_t errlen);

/* Sends [identity] proto cmd body payloads... as one multipart message.
 * identity NULL for a DEALER.  body NULL sends an empty body frame.
 * Returns QR_OK or QR_EIO (errno kept; EHOSTUNREACH for a gone ROUTER peer). */
int qr_wire_send(void *sock, const void *identity, size_t idlen, const char *proto, uint8_t cmd,
                 const ProtobufCMessage *body, const qr_payload_t *payloads, int npayloads);

/* Sends an Error reply (cmd QR_CMD_ERROR) with code and message. */
int qr_wire_send_error(void *sock, const void *identity, size_t idlen, const char *proto,
                       uint64_t req_id, uint64_t job_id, int code, const char *message);

#endif
