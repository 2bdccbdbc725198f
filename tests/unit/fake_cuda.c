/* A stand-in for libquarry_cuda.so that computes on the CPU, for
 * test_gpu: it lets the loader (common/gpu.c) be tested everywhere, GPU or
 * not: the ABI handshake, device selection, the layer descriptions and
 * model ids it passes, the input copy, the argument and overflow checks
 * done before and after the module, error propagation and forget().
 *
 * Built twice by tests/unit/gpu.cmake: as a valid module, and with
 * QR_FAKE_ABI set to another version to test the refusal.  Knobs (read at
 * each call): QR_FAKE_CUDA_DEVICES (number of devices, default 1),
 * QR_FAKE_CUDA_FAIL (non-empty: sgemm, forward and the zk calls fail).  The
 * test reads the number of weight uploads through qr_fake_cuda_uploads.
 *
 * The zk entries (g1_msm, g2_msm, ntt) compute with the grid emulator
 * (zk_gpu_emu.c): the GPU kernels' own per-thread code run in loops, so a
 * proof through the fake module exercises the GPU algorithm end to end;
 * qr_fake_cuda_zk_calls counts them. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/qr_cuda_abi.h"
#include "model_ops.h"
#include "zk_gpu_emu.h"

#ifndef QR_FAKE_ABI
#define QR_FAKE_ABI QR_CUDA_ABI_VERSION
#endif

#define S_EXPORT __attribute__((visibility("default")))

enum { S_MAX_MODELS = 16 };

struct qr_cuda_ctx {
    int device;
    char name[64];
    uint64_t ids[S_MAX_MODELS]; /* "uploaded" models */
    int nids;
};

static int s_uploads;
static int s_zk_calls;

static void s_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

static int s_device_count(int *count, char *err, size_t errlen)
{
    const char *e = getenv("QR_FAKE_CUDA_DEVICES");
    *count = e ? atoi(e) : 1;
    return 0;
}

static qr_cuda_ctx_t *s_open(int device, char *err, size_t errlen)
{
    int n;
    s_device_count(&n, err, errlen);
    if (n == 0) {
        s_err(err, errlen, "no CUDA device found");
        return NULL;
    }
    if (device < 0 || device >= n) {
        s_err(err, errlen, "CUDA device does not exist");
        return NULL;
    }
    qr_cuda_ctx_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->device = device;
    snprintf(c->name, sizeof c->name, "Fake GPU %d", device);
    return c;
}

static void s_close(qr_cuda_ctx_t *c)
{
    free(c);
}

static const char *s_name(const qr_cuda_ctx_t *c)
{
    return c->name;
}

static int s_sgemm(qr_cuda_ctx_t *c, const float *A, const float *B, float *C, uint32_t m,
                   uint32_t n, uint32_t k, char *err, size_t errlen)
{
    if (getenv("QR_FAKE_CUDA_FAIL") && *getenv("QR_FAKE_CUDA_FAIL")) {
        s_err(err, errlen, "fake failure");
        return -1;
    }
    for (uint32_t i = 0; i < m; i++)
        for (uint32_t j = 0; j < n; j++) {
            double s = 0;
            for (uint32_t l = 0; l < k; l++)
                s += (double)A[(size_t)i * k + l] * B[(size_t)l * n + j];
            C[(size_t)i * n + j] = (float)s;
        }
    return 0;
}

static int s_forward(qr_cuda_ctx_t *c, uint64_t id, const qr_cuda_layer_t *layers, uint32_t nl,
                     uint32_t input, const float *in, uint32_t rows, float *const *outs, char *err,
                     size_t errlen)
{
    if (getenv("QR_FAKE_CUDA_FAIL") && *getenv("QR_FAKE_CUDA_FAIL")) {
        s_err(err, errlen, "fake failure");
        return -1;
    }
    int known = 0;
    for (int i = 0; i < c->nids; i++)
        known |= c->ids[i] == id;
    if (!known) {
        if (c->nids == S_MAX_MODELS) {
            s_err(err, errlen, "fake: too many models");
            return -1;
        }
        c->ids[c->nids++] = id;
        s_uploads++;
    }
    for (uint32_t i = 0; i < nl; i++) {
        const qr_cuda_layer_t *L = &layers[i];
        const float *x = i ? outs[i - 1] : in;
        float *y = outs[i];
        size_t n = (size_t)rows * L->out;
        if (L->in != (i ? layers[i - 1].out : input)) {
            s_err(err, errlen, "fake: widths do not chain");
            return -1;
        }
        switch (L->op) {
        case QR_CUDA_OP_EMBEDDING:
            for (uint32_t r = 0; r < rows; r++)
                memcpy(y + (size_t)r * L->out, L->weight + (size_t)x[r] * L->out,
                       L->out * sizeof *y);
            break;
        case QR_CUDA_OP_DENSE:
            for (uint32_t r = 0; r < rows; r++)
                for (uint32_t o = 0; o < L->out; o++) {
                    double s = L->bias ? L->bias[o] : 0.0;
                    for (uint32_t j = 0; j < L->in; j++)
                        s += (double)x[(size_t)r * L->in + j] * L->weight[(size_t)o * L->in + j];
                    y[(size_t)r * L->out + o] = (float)s;
                }
            break;
        case QR_CUDA_OP_RELU:
            for (size_t j = 0; j < n; j++)
                y[j] = qr_op_relu(x[j]);
            break;
        case QR_CUDA_OP_GELU:
            for (size_t j = 0; j < n; j++)
                y[j] = qr_op_gelu(x[j]);
            break;
        case QR_CUDA_OP_LAYERNORM:
            for (uint32_t r = 0; r < rows; r++) {
                const float *xr = x + (size_t)r * L->in;
                double mean = 0, var = 0;
                for (uint32_t j = 0; j < L->in; j++)
                    mean += xr[j];
                mean /= L->in;
                float hi = (float)mean, lo = (float)(mean - hi);
                for (uint32_t j = 0; j < L->in; j++) {
                    float d = (xr[j] - hi) - lo;
                    var += (double)d * d;
                }
                var /= L->in;
                float inv = (float)(1.0 / sqrt(var + L->eps));
                for (uint32_t j = 0; j < L->in; j++)
                    y[(size_t)r * L->out + j] = qr_op_layernorm(xr[j] - hi, lo, inv, L->weight[j],
                                                                L->bias ? L->bias[j] : 0);
            }
            break;
        case QR_CUDA_OP_SOFTMAX:
            for (uint32_t r = 0; r < rows; r++) {
                const float *xr = x + (size_t)r * L->in;
                float mx = xr[0];
                for (uint32_t j = 1; j < L->in; j++)
                    mx = xr[j] > mx ? xr[j] : mx;
                double s = 0;
                for (uint32_t j = 0; j < L->in; j++)
                    s += qr_op_softmax(xr[j], mx, 1.0f);
                for (uint32_t j = 0; j < L->in; j++)
                    y[(size_t)r * L->out + j] = qr_op_softmax(xr[j], mx, (float)(1.0 / s));
            }
            break;
        case QR_CUDA_OP_RESIDUAL: {
            const float *src = L->from < 0 ? in : outs[L->from];
            for (size_t j = 0; j < n; j++)
                y[j] = x[j] + src[j];
            break;
        }
        default:
            s_err(err, errlen, "fake: unknown op");
            return -1;
        }
    }
    return 0;
}

static void s_forget(qr_cuda_ctx_t *c, uint64_t id)
{
    for (int i = 0; i < c->nids; i++)
        if (c->ids[i] == id) {
            c->ids[i] = c->ids[--c->nids];
            return;
        }
}

static bool s_fail_set(void)
{
    const char *f = getenv("QR_FAKE_CUDA_FAIL");
    return f && *f;
}

static int s_g1_msm(qr_cuda_ctx_t *c, uint64_t *out, const uint64_t *bases, const uint64_t *k,
                    size_t n, char *err, size_t errlen)
{
    s_zk_calls++;
    if (s_fail_set()) {
        s_err(err, errlen, "fake failure");
        return -1;
    }
    qr_g1_t r;
    if (qr_zk_gpu_emu_g1_msm(&r, (const qr_g1_affine_t *)bases, k, n, 0)) {
        s_err(err, errlen, "fake: out of memory");
        return -1;
    }
    memcpy(out, &r, sizeof r);
    return 0;
}

static int s_g2_msm(qr_cuda_ctx_t *c, uint64_t *out, const uint64_t *bases, const uint64_t *k,
                    size_t n, char *err, size_t errlen)
{
    s_zk_calls++;
    if (s_fail_set()) {
        s_err(err, errlen, "fake failure");
        return -1;
    }
    qr_g2_t r;
    if (qr_zk_gpu_emu_g2_msm(&r, (const qr_g2_affine_t *)bases, k, n, 0)) {
        s_err(err, errlen, "fake: out of memory");
        return -1;
    }
    memcpy(out, &r, sizeof r);
    return 0;
}

static int s_ntt(qr_cuda_ctx_t *c, uint64_t *a, unsigned log_n, unsigned ops, const uint64_t *shift,
                 char *err, size_t errlen)
{
    s_zk_calls++;
    if (s_fail_set()) {
        s_err(err, errlen, "fake failure");
        return -1;
    }
    qr_fr_t sh;
    if (shift)
        memcpy(&sh, shift, sizeof sh);
    if (qr_zk_gpu_emu_ntt((qr_fr_t *)a, log_n, ops, shift ? &sh : NULL)) {
        s_err(err, errlen, "fake: bad NTT arguments");
        return -1;
    }
    return 0;
}

static const qr_cuda_api_t s_api = {
    .version = QR_FAKE_ABI,
    .size = sizeof(qr_cuda_api_t),
    .device_count = s_device_count,
    .open = s_open,
    .close = s_close,
    .name = s_name,
    .sgemm = s_sgemm,
    .forward = s_forward,
    .forget = s_forget,
    .g1_msm = s_g1_msm,
    .g2_msm = s_g2_msm,
    .ntt = s_ntt,
};

S_EXPORT int qr_cuda_abi_version(void)
{
    return QR_FAKE_ABI;
}

S_EXPORT const qr_cuda_api_t *qr_cuda_api(int version)
{
    return version == QR_FAKE_ABI ? &s_api : NULL;
}

S_EXPORT int qr_fake_cuda_uploads(void)
{
    return s_uploads;
}

S_EXPORT int qr_fake_cuda_zk_calls(void)
{
    return s_zk_calls;
}
