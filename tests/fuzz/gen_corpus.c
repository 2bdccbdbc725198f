/* Writes the seed corpus of the fuzz targets: tests/fuzz/run.sh --regen-corpus
 * builds this and runs it with the corpus folder as argument.  Each seed is a
 * small, meaningful input (valid messages of every type, broken framings,
 * config files good and bad, matrices with special values) from which
 * libFuzzer mutates.  File names say what a seed is. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "quarry.pb-c.h"
#include "wire.h"

static const char *s_dir;

static void s_write(const char *target, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", s_dir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", s_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* ---- wire: [mode] then frames as [len][bytes] (255 = 2-byte length) ---- */
typedef struct {
    uint8_t b[8192];
    size_t n;
} buf_t;

static void s_frame(buf_t *b, const void *data, size_t len)
{
    if (len < 255) {
        b->b[b->n++] = (uint8_t)len;
    } else {
        b->b[b->n++] = 255;
        b->b[b->n++] = (uint8_t)(len & 0xff);
        b->b[b->n++] = (uint8_t)(len >> 8);
    }
    memcpy(b->b + b->n, data, len);
    b->n += len;
}

static void s_wire(const char *name, uint8_t mode, uint8_t cmd, const ProtobufCMessage *body,
                   int npayload)
{
    buf_t b = {.n = 0};
    b.b[b.n++] = mode;
    const char *proto = (mode & 2) ? QR_PROTO_WORKER : QR_PROTO_CLIENT;
    s_frame(&b, proto, strlen(proto));
    s_frame(&b, &cmd, 1);
    uint8_t body_buf[2048];
    size_t blen = body ? protobuf_c_message_pack(body, body_buf) : 0;
    s_frame(&b, body_buf, blen);
    for (int i = 0; i < npayload; i++) {
        float f[4] = {1.0f, -2.5f, (float)i, 0.0f};
        s_frame(&b, f, sizeof f);
    }
    s_write("wire", name, b.b, b.n);
}

static void s_wire_seeds(void)
{
    Quarry__JobSpec spec = QUARRY__JOB_SPEC__INIT;
    spec.kind = "ai.gemm";
    spec.m = 2;
    spec.n = 2;
    spec.k = 2;
    spec.max_price = 5000;
    spec.timeout_ms = 60000;
    spec.priority = -3;
    Quarry__JobInfo info = QUARRY__JOB_INFO__INIT;
    info.job_id = 42;
    info.kind = "ai.gemm";
    info.state = "settled";
    info.detail = "ok";
    info.m = info.n = info.k = 2;
    info.created_ms = 1700000000000;

    Quarry__Hello hello = QUARRY__HELLO__INIT;
    hello.req_id = 1;
    hello.account = "alice";
    hello.version = 1;
    s_wire("client-hello", 1, QR_CMD_HELLO, &hello.base, 0);
    s_wire("client-hello-dealer", 0, QR_CMD_HELLO, &hello.base, 0);
    Quarry__Submit sub = QUARRY__SUBMIT__INIT;
    sub.req_id = 2;
    sub.spec = &spec;
    sub.idem_key = "key-1";
    s_wire("client-submit", 1, QR_CMD_SUBMIT, &sub.base, 2);
    Quarry__JobRef ref = QUARRY__JOB_REF__INIT;
    ref.req_id = 3;
    ref.job_id = 42;
    s_wire("client-status", 1, QR_CMD_STATUS, &ref.base, 0);
    Quarry__StatusReply st = QUARRY__STATUS_REPLY__INIT;
    st.req_id = 3;
    st.job = &info;
    s_wire("client-status-reply", 0, QR_CMD_STATUS | QR_CMD_REPLY, &st.base, 0);
    Quarry__ResultReply rr = QUARRY__RESULT_REPLY__INIT;
    rr.req_id = 4;
    rr.job = &info;
    s_wire("client-result-reply", 0, QR_CMD_RESULT | QR_CMD_REPLY, &rr.base, 1);
    Quarry__JobInfo *jobs[2] = {&info, &info};
    Quarry__ListReply lr = QUARRY__LIST_REPLY__INIT;
    lr.req_id = 5;
    lr.n_jobs = 2;
    lr.jobs = jobs;
    s_wire("client-list-reply", 0, QR_CMD_LIST | QR_CMD_REPLY, &lr.base, 0);
    Quarry__KindStat ks = QUARRY__KIND_STAT__INIT;
    ks.kind = "ai.gemm";
    ks.queued = 3;
    Quarry__KindStat *kinds[1] = {&ks};
    Quarry__DashReply dash = QUARRY__DASH_REPLY__INIT;
    dash.req_id = 6;
    dash.n_kinds = 1;
    dash.kinds = kinds;
    dash.utilisation = 0.5;
    dash.p99_ms = 12.25;
    s_wire("client-dash-reply", 0, QR_CMD_DASH | QR_CMD_REPLY, &dash.base, 0);
    Quarry__Error e = QUARRY__ERROR__INIT;
    e.req_id = 7;
    e.code = 5;
    e.message = "balance short";
    s_wire("client-error", 0, QR_CMD_ERROR, &e.base, 0);

    Quarry__Device dev = QUARRY__DEVICE__INIT;
    dev.type = "cpu";
    dev.model = "x86";
    dev.mem_mb = 1024;
    dev.cores = 4;
    Quarry__Device *devs[1] = {&dev};
    char *runtimes[1] = {"ai.gemm"};
    uint64_t running[2] = {7, 8};
    Quarry__Ready ready = QUARRY__READY__INIT;
    ready.name = "w1";
    ready.operator_ = "op";
    ready.n_devices = 1;
    ready.devices = devs;
    ready.n_runtimes = 1;
    ready.runtimes = runtimes;
    ready.n_running = 2;
    ready.running = running;
    ready.slots = 2;
    s_wire("worker-ready", 3, QR_WCMD_READY, &ready.base, 0);
    s_wire("worker-heartbeat", 3, QR_WCMD_HEARTBEAT, NULL, 0);
    Quarry__Assign as = QUARRY__ASSIGN__INIT;
    as.job_id = 42;
    as.spec = &spec;
    as.attempt = 1;
    as.input_blob = 9;
    s_wire("worker-assign", 2, QR_WCMD_ASSIGN, &as.base, 2);
    Quarry__Result res = QUARRY__RESULT__INIT;
    res.job_id = 42;
    res.units = 1;
    res.compute_us = 100;
    s_wire("worker-result", 3, QR_WCMD_RESULT, &res.base, 1);
    Quarry__Fail fail = QUARRY__FAIL__INIT;
    fail.job_id = 42;
    fail.code = 19;
    fail.message = "compute failed";
    s_wire("worker-fail", 3, QR_WCMD_FAIL, &fail.base, 0);
    Quarry__Disconnect dis = QUARRY__DISCONNECT__INIT;
    dis.reason = "draining";
    s_wire("worker-disconnect", 2, QR_WCMD_DISCONNECT, &dis.base, 0);

    /* broken framings */
    {
        buf_t b = {.n = 0};
        b.b[b.n++] = 1;
        s_frame(&b, "QRW01", 5); /* worker protocol on a client socket */
        s_frame(&b, "\x01", 1);
        s_frame(&b, "", 0);
        s_write("wire", "bad-proto-mismatch", b.b, b.n);
    }
    {
        buf_t b = {.n = 0};
        b.b[b.n++] = 0;
        s_frame(&b, "QRC01", 5);
        s_frame(&b, "\x01\x02", 2); /* two-byte command */
        s_frame(&b, "", 0);
        s_write("wire", "bad-command-size", b.b, b.n);
    }
    {
        buf_t b = {.n = 0};
        b.b[b.n++] = 1;
        s_frame(&b, "QRC01", 5);
        s_frame(&b, "\x02", 1);
        s_write("wire", "bad-too-few-frames", b.b, b.n);
    }
    {
        buf_t b = {.n = 0};
        b.b[b.n++] = 0;
        s_frame(&b, "QRC01", 5);
        s_frame(&b, "\x02", 1);
        for (int i = 0; i < 20; i++)
            s_frame(&b, "x", 1); /* over QR_WIRE_MAX_FRAMES */
        s_write("wire", "bad-too-many-frames", b.b, b.n);
    }
    {
        buf_t b = {.n = 0};
        b.b[b.n++] = 0;
        s_frame(&b, "QRC01", 5);
        s_frame(&b, "\x03", 1);
        s_frame(&b, "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x12\x80", 14); /* bad varint, cut string */
        s_write("wire", "bad-body", b.b, b.n);
    }
    s_write("wire", "empty", "", 0);
}

/* ---- config: [mode] then the file --------------------------------------- */
static void s_cfg(const char *name, uint8_t mode, const char *text)
{
    uint8_t b[4096];
    size_t n = strlen(text);
    b[0] = mode;
    memcpy(b + 1, text, n);
    s_write("config", name, b, n + 1);
}

static void s_config_seeds(void)
{
    s_cfg("all-options", 0,
          "# every option\nname = worker-7\nendpoint = tcp://127.0.0.1:5555\n"
          "log-level=debug\nheartbeat-ms = 2500\nslots = -4\nneed-gpu = yes\nverbose = off\n");
    s_cfg("eq-flag-and-overrides", 1 | 4 | 8 | 16,
          "  name =   spaced value   # trailing comment\n\n\t\nslots = 9223372036854775807\n");
    s_cfg("env-config", 2, "need-gpu = TRUE\nverbose = 0\nendpoint =\n");
    s_cfg("bad-int", 0, "heartbeat-ms = 12abc\n");
    s_cfg("bad-int-overflow", 0, "slots = 99999999999999999999\n");
    s_cfg("bad-bool", 0, "need-gpu = maybe\n");
    s_cfg("bad-no-equals", 0, "name worker\n");
    s_cfg("bad-unknown", 0, "colour = blue\n");
    s_cfg("empty-key", 0, " = value\n");
    char longline[1300];
    memset(longline, 'a', sizeof longline);
    memcpy(longline, "name = ", 7);
    longline[sizeof longline - 2] = '\n';
    longline[sizeof longline - 1] = '\0';
    s_cfg("long-line", 0, longline);
    s_cfg("no-newline", 0, "slots = 3");
    s_cfg("empty", 0, "");
}

/* ---- gemm: m n k rounds mode seed[8] then floats ------------------------- */
static void s_gemm(const char *name, uint8_t m, uint8_t n, uint8_t k, uint8_t rounds, uint8_t mode,
                   const float *vals, size_t nvals)
{
    uint8_t b[8192];
    size_t len = 0;
    b[len++] = (uint8_t)(m - 1);
    b[len++] = (uint8_t)(n - 1);
    b[len++] = (uint8_t)(k - 1);
    b[len++] = (uint8_t)(rounds - 1);
    b[len++] = mode;
    uint64_t seed = 0x123456789abcdefull;
    memcpy(b + len, &seed, 8);
    len += 8;
    memcpy(b + len, vals, nvals * sizeof(float));
    len += nvals * sizeof(float);
    s_write("gemm", name, b, len);
}

static void s_gemm_seeds(void)
{
    float v[3 * 32 * 32];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        v[i] = (float)((int)(i * 7 % 13) - 6) / 4.0f;
    s_gemm("honest-4x3x5", 4, 3, 5, 2, 0, v, 4 * 5 + 5 * 3);
    s_gemm("honest-blocks-16", 16, 16, 16, 2, 3, v, 2 * 256 + 1);
    s_gemm("given-c-wrong", 3, 3, 3, 2, 1, v, 27);
    s_gemm("honest-bitflip", 8, 8, 8, 2, 2, v, 128 + 2);
    float sp[12] = {NAN, INFINITY, -INFINITY, 1e-45f, -0.0f, 3.4e38f,
                    1.17549435e-38f, 1e-40f, 1.0f, -1.0f, 65504.0f, 2.0f};
    s_gemm("special-values", 2, 2, 3, 1, 0, sp, 12);
    s_gemm("special-values-given-c", 2, 2, 2, 4, 1, sp, 12);
    float big[6] = {3e38f, -3e38f, 1e38f, 2.0f, 2.0f, 1.0f};
    s_gemm("overflowing-product", 2, 1, 2, 1, 0, big, 6);
    float onebyone[3] = {1.0f, 1.0f, INFINITY}; /* A = B = 1, C = inf: must fail */
    s_gemm("inf-c-finite-product", 1, 1, 1, 1, 1, onebyone, 3);
    float rowinf[2 * 2 + 2 * 2 + 2 * 2] = {1, 1, 1, 1, 1, 1, 1, 1, INFINITY, 5, INFINITY, 5};
    s_gemm("inf-per-row-c", 2, 2, 2, 2, 1, rowinf, 12);
    float denorm[3] = {-2.1e38f, 6e-33f, 6.6e-43f}; /* huge A times a denormal B */
    s_gemm("denormal-b-huge-a", 2, 1, 1, 2, 0, denorm, 3);
    s_gemm("short", 1, 1, 1, 1, 0, v, 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
        return 2;
    }
    s_dir = argv[1];
    mkdir(s_dir, 0755);
    s_wire_seeds();
    s_config_seeds();
    s_gemm_seeds();
    return 0;
}
