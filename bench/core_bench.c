/* End-to-end throughput and latency of small ai.gemm jobs.
 *
 * An asynchronous client over the wire protocol keeps a window of jobs in
 * flight: SUBMIT with watch = 2 (one EVENT when the job ends); a job counts
 * as done when that EVENT says settled (verified, paid, durable).  Prints jobs/s and the
 * submit-to-settled latency percentiles as key=value on the last line.
 *
 *   core_bench ENDPOINT ACCOUNT JOBS WINDOW DIM [unique|ref]
 *
 * With "unique" every job's A differs (its first element is the job's index),
 * so nothing can be deduplicated: each job's 2 x DIM^2 floats are stored and
 * sent.  Without it every job sends the same matrices, as a client running one
 * model over one batch does.  With "ref" the client uploads those matrices
 * once as an artifact and every job names it (JobSpec.input) instead of
 * sending them.
 *
 * With QUARRY_SERVER_KEY set (the broker's public key, text or file) the
 * client speaks CurveZMQ with a throwaway key pair (a broker in
 * --open-registration mode admits it). */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "artifact.h"
#include "err.h"
#include "keys.h"
#include "util.h"
#include "wire.h"

static int s_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int s_send(void *s, uint8_t cmd, const ProtobufCMessage *m, const qr_payload_t *p, int np)
{
    return qr_wire_send(s, NULL, 0, QR_PROTO_CLIENT, cmd, m, p, np);
}

int main(int argc, char **argv)
{
    if (argc != 6 &&
        !(argc == 7 && (strcmp(argv[6], "unique") == 0 || strcmp(argv[6], "ref") == 0))) {
        fprintf(stderr, "usage: core_bench ENDPOINT ACCOUNT JOBS WINDOW DIM [unique|ref]\n");
        return 2;
    }
    bool unique = argc == 7 && strcmp(argv[6], "unique") == 0;
    bool byref = argc == 7 && !unique;
    const char *ep = argv[1], *acct = argv[2];
    long njobs = atol(argv[3]), window = atol(argv[4]);
    uint32_t dim = (uint32_t)atol(argv[5]);
    if (njobs < 1 || window < 1 || dim < 1 || dim > 4096) {
        fprintf(stderr, "core_bench: bad numbers\n");
        return 2;
    }
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int hwm = 0, linger = 0;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    const char *skey = getenv("QUARRY_SERVER_KEY");
    if (skey && *skey) {
        char spub[41], pub[41], sec[41], err[256] = "no CURVE in this libzmq";
        if (qr_keys_load_public(skey, spub, err, sizeof err) < 0 || qr_keys_generate(pub, sec) < 0) {
            fprintf(stderr, "core_bench: %s\n", err);
            return 2;
        }
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, spub, 41);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 41);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 41);
    }
    if (zmq_connect(s, ep) < 0) {
        fprintf(stderr, "core_bench: connect %s: %s\n", ep, zmq_strerror(errno));
        return 1;
    }
    size_t n = (size_t)dim * dim;
    float *ab = malloc(2 * n * sizeof *ab), *a = ab, *b = ab + n; /* A then B */
    unsigned seed = 1;
    for (size_t i = 0; i < n; i++) {
        a[i] = (float)rand_r(&seed) / RAND_MAX - 0.5f;
        b[i] = (float)rand_r(&seed) / RAND_MAX - 0.5f;
    }
    char sha[QR_SHA_HEX + 1] = "";
    if (byref) {
        qr_sha_t h;
        qr_sha_init(&h);
        qr_sha_update(&h, ab, 2 * n * sizeof *ab);
        qr_sha_final(&h, sha);
    }
    int64_t *sent_us = calloc((size_t)njobs, sizeof *sent_us), *lat = calloc((size_t)njobs, sizeof *lat);
    uint64_t *job_of = calloc((size_t)njobs, sizeof *job_of);

    Quarry__Hello h = QUARRY__HELLO__INIT;
    h.req_id = (uint64_t)njobs + 1;
    h.account = (char *)acct;
    s_send(s, QR_CMD_HELLO, &h.base, NULL, 0);
    Quarry__JobSpec spec = QUARRY__JOB_SPEC__INIT;
    spec.kind = "ai.gemm";
    spec.m = spec.n = spec.k = dim;
    spec.max_price = 1000000;
    Quarry__Submit sub = QUARRY__SUBMIT__INIT;
    sub.spec = &spec;
    sub.watch = 2; /* one EVENT when the job ends, echoing the SUBMIT's request id */
    qr_payload_t pay[2] = {{a, n * sizeof(float)}, {b, n * sizeof(float)}};
    if (byref)
        spec.input = sha;

    long submitted = 0, done = 0, inflight = 0, errors = 0;
    bool hello = false;
    int64_t t0 = 0;
    while (done < njobs) {
        while (hello && inflight < window && submitted < njobs) {
            sub.req_id = (uint64_t)submitted + 1; /* request ids 1..N name the job's slot */
            if (unique)
                a[0] = (float)submitted;
            sent_us[submitted] = qr_clock_us();
            s_send(s, QR_CMD_SUBMIT, &sub.base, pay, byref ? 0 : 2);
            submitted++;
            inflight++;
        }
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 30000) <= 0) {
            fprintf(stderr, "core_bench: no answer for 30 s (done=%ld)\n", done);
            return 1;
        }
        qr_msg_t m;
        char err[256];
        if (qr_wire_recv(s, false, QR_PROTO_CLIENT, 0, &m, err, sizeof err) != QR_OK) {
            qr_msg_close(&m);
            continue;
        }
        if (m.cmd == (QR_CMD_HELLO | QR_CMD_REPLY) && byref) {
            /* the inputs go once, in one chunk, before the clock starts */
            Quarry__Upload up = QUARRY__UPLOAD__INIT;
            up.req_id = (uint64_t)njobs + 2;
            up.sha256 = sha;
            up.size = 2 * n * sizeof *ab;
            qr_payload_t chunk = {ab, 2 * n * sizeof *ab};
            s_send(s, QR_CMD_UPLOAD, &up.base, &chunk, 1);
        } else if (m.cmd == (QR_CMD_HELLO | QR_CMD_REPLY) ||
                   m.cmd == (QR_CMD_UPLOAD | QR_CMD_REPLY)) {
            hello = true;
            t0 = qr_clock_us();
        } else if (m.cmd == (QR_CMD_SUBMIT | QR_CMD_REPLY)) {
            Quarry__SubmitAck *ack = (Quarry__SubmitAck *)qr_msg_decode(&m, &quarry__submit_ack__descriptor, err, sizeof err);
            if (ack && ack->req_id >= 1 && ack->req_id <= (uint64_t)njobs)
                job_of[ack->req_id - 1] = ack->job_id;
            if (ack)
                protobuf_c_message_free_unpacked(&ack->base, NULL);
        } else if (m.cmd == QR_CMD_EVENT || m.cmd == (QR_CMD_WATCH | QR_CMD_REPLY)) {
            Quarry__Event *ev = (Quarry__Event *)qr_msg_decode(&m, &quarry__event__descriptor, err, sizeof err);
            if (ev && ev->job && ev->req_id >= 1 && ev->req_id <= (uint64_t)njobs &&
                strcmp(ev->job->state, "settled") == 0 && !lat[ev->req_id - 1]) {
                lat[ev->req_id - 1] = qr_clock_us() - sent_us[ev->req_id - 1];
                done++;
                inflight--;
            }
            if (ev)
                protobuf_c_message_free_unpacked(&ev->base, NULL);
        } else if (m.cmd == QR_CMD_ERROR) {
            Quarry__Error *e = (Quarry__Error *)qr_msg_decode(&m, &quarry__error__descriptor, err, sizeof err);
            fprintf(stderr, "core_bench: error %d: %s\n", e ? e->code : -1, e ? e->message : "?");
            if (e)
                protobuf_c_message_free_unpacked(&e->base, NULL);
            if (++errors > 10)
                return 1;
            done++;
            inflight--;
        }
        qr_msg_close(&m);
    }
    double secs = (double)(qr_clock_us() - t0) / 1e6;
    qsort(lat, (size_t)njobs, sizeof *lat, s_cmp);
    double p50 = (double)lat[njobs / 2] / 1000.0, p99 = (double)lat[(njobs * 99) / 100] / 1000.0;
    printf("jobs=%ld dim=%u window=%ld inputs=%s seconds=%.3f errors=%ld\n", njobs, dim, window,
           unique  ? "unique"
           : byref ? "shared-by-reference"
                   : "shared",
           secs, errors);
    printf("jobs_per_s=%.0f p50_ms=%.2f p99_ms=%.2f\n", (double)njobs / secs, p50, p99);
    zmq_close(s);
    zmq_ctx_term(ctx);
    free(ab);
    free(sent_us);
    free(lat);
    free(job_of);
    return errors ? 1 : 0;
}
