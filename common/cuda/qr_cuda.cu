/* libquarry_cuda.so: the GPU runtime for ai.gemm and ai.infer (docs/gpu.md);
 * the Groth16 prover's MSMs and NTTs are in qr_cuda_zk.cu, on the same
 * context (qr_cuda_int.h).
 *
 * Loaded with dlopen() by common/gpu.c, never linked, so that a binary built
 * where nvcc exists still starts on a machine without a driver or the CUDA
 * libraries.  The only way in is the table of qr_cuda_abi.h.
 *
 * What lives on the device, per context:
 *   - each model's weights, uploaded once into one allocation and kept until
 *     forget() or close (keyed by the caller's model id, checked against the
 *     layer descriptors and a sample of the weight values on every call);
 *   - one activation arena (input plus every layer's output, since residuals
 *     may read any earlier layer and the caller wants every layer back) and
 *     one scratch arena for ai.gemm, both grown on demand and reused.
 * On an out-of-memory the context drops what the current call does not need
 * (other models, the other arena) and tries once more.
 *
 * Numerics follow common/model.c: dense layers are one cublasSgemm with the
 * bias placed in C beforehand and beta = 1 (one fp32 sum of in + 1 terms per
 * element, the sum qr_model_verify_dense checks), in CUBLAS_DEFAULT_MATH,
 * which never drops below fp32 (TF32 would fail Freivalds' bound); the
 * element-wise steps are the qr_op_* functions of common/model_ops.h, the
 * same code the CPU runs; the row reductions of layernorm and softmax are
 * block reductions summed in double, as the CPU sums in double.
 *
 * Errors: every CUDA and cuBLAS status is checked (cudaGetLastError after
 * each launch) and turned into -1 and a message; nothing aborts.  An error
 * that poisons the CUDA context (an illegal address, say) marks the context
 * broken: every later call fails at once with the original message, and the
 * caller should close it and use the CPU. */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_ops.h"
#include "qr_cuda_abi.h"
#include "qr_cuda_int.h"

#define QR_EXPORT extern "C" __attribute__((visibility("default")))

/* Arena segments start on 256-byte boundaries: cuBLAS and coalesced loads
 * want aligned rows, and the cost is at most 63 floats a segment. */
#define S_ALIGN 64u

typedef struct s_model {
    uint64_t id;             /* the caller's model id */
    uint64_t fp;             /* s_fingerprint of the layers it was uploaded from */
    uint32_t n;              /* layers */
    uint32_t input;          /* model input width */
    qr_cuda_layer_t *layers; /* copy of the descriptors (host pointers) */
    float *dev;              /* one allocation holding every tensor */
    size_t *w_off, *b_off;   /* per layer: offset of weight / bias in dev, or SIZE_MAX */
    size_t bytes;            /* size of dev */
    struct s_model *next;
} s_model_t;

typedef qr_cuda_buf_t s_buf_t;

static void s_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Errors after which the CUDA context cannot be used again (the runtime
 * keeps returning them); everything else is cleared and the context lives
 * on. */
static bool s_sticky(cudaError_t e)
{
    switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
    case cudaErrorContextIsDestroyed:
        return true;
    default:
        return false;
    }
}

/* 0 for cudaSuccess; else -1 and "what: message (cudaErrorName)". */
static int s_cu(qr_cuda_ctx_t *ctx, cudaError_t e, const char *what, char *err, size_t errlen)
{
    if (e == cudaSuccess)
        return 0;
    char msg[512];
    snprintf(msg, sizeof msg, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
    s_err(err, errlen, "%s", msg);
    (void)cudaGetLastError(); /* a non-sticky error must not fail the next call */
    if (ctx && s_sticky(e) && !ctx->broken[0])
        snprintf(ctx->broken, sizeof ctx->broken, "%s", msg);
    return -1;
}

static int s_blas(cublasStatus_t st, const char *what, char *err, size_t errlen)
{
    if (st == CUBLAS_STATUS_SUCCESS)
        return 0;
    s_err(err, errlen, "%s: %s (%s)", what, cublasGetStatusString(st), cublasGetStatusName(st));
    return -1;
}

/* Every launch is checked at once: a bad configuration is reported here,
 * with the kernel's name, not at the next synchronisation. */
static int s_launched(qr_cuda_ctx_t *ctx, const char *kernel, char *err, size_t errlen)
{
    return s_cu(ctx, cudaGetLastError(), kernel, err, errlen);
}

/* Entry check of every call: refuses a poisoned context and makes the
 * context's device current for this thread (the runtime's current device is
 * per thread, and the caller may change threads between calls). */
static int s_enter(qr_cuda_ctx_t *ctx, char *err, size_t errlen)
{
    if (!ctx) {
        s_err(err, errlen, "no CUDA context");
        return -1;
    }
    if (ctx->broken[0]) {
        s_err(err, errlen, "GPU context unusable after an earlier error: %s", ctx->broken);
        return -1;
    }
    return s_cu(ctx, cudaSetDevice(ctx->device), "cudaSetDevice", err, errlen);
}

static size_t s_round(size_t n)
{
    return (n + S_ALIGN - 1) / S_ALIGN * S_ALIGN;
}

/* ---- kernels ---- */

/* Grid for a grid-stride loop over n elements: enough blocks to fill any
 * current GPU, and never more than the launch limit. */
static unsigned s_blocks(size_t n)
{
    size_t b = (n + 255) / 256;
    return (unsigned)(b < 1 ? 1 : (b > 65535u * 4 ? 65535u * 4 : b));
}

__global__ void k_probe(int *out)
{
    *out = 1;
}

__global__ void k_bias_rows(float *y, const float *b, uint32_t out, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = b[i % out];
}

/* ids were checked on the host (integral, in [0, vocab)) before upload */
__global__ void k_embedding(float *y, const float *ids, const float *w, uint32_t out, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / out, j = i % out;
        y[i] = w[(size_t)ids[r] * out + j];
    }
}

__global__ void k_relu(float *y, const float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = qr_op_relu(x[i]);
}

__global__ void k_gelu(float *y, const float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = qr_op_gelu(x[i]);
}

__global__ void k_residual(float *y, const float *x, const float *src, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = x[i] + src[i];
}

/* Sum of v over the block (blockDim.x a multiple of 32, at most 1024),
 * returned to every thread.  sh holds 32 doubles; it is free again on
 * return. */
__device__ double s_block_sum(double v, double *sh)
{
    unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0)
        sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < blockDim.x / 32 ? sh[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0)
            sh[0] = v;
    }
    __syncthreads();
    double r = sh[0];
    __syncthreads();
    return r;
}

__device__ float s_block_max(float v, float *sh)
{
    unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
    if (lane == 0)
        sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < blockDim.x / 32 ? sh[lane] : -INFINITY;
        for (int o = 16; o > 0; o >>= 1)
            v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
        if (lane == 0)
            sh[0] = v;
    }
    __syncthreads();
    float r = sh[0];
    __syncthreads();
    return r;
}

/* One block per row, as the CPU (model.c): the mean summed in double, split
 * into two floats hi + lo, then the variance of d = (x - hi) - lo, d in
 * float and its square summed in double.  x - hi is exact when x is within
 * a factor 2 of the mean, so a row with a large mean and a small spread
 * keeps its digits, which x - (float)mean would lose. */
__global__ void k_layernorm(float *y, const float *x, const float *w, const float *b,
                            uint32_t width, float eps)
{
    __shared__ double sh[32];
    const float *xr = x + (size_t)blockIdx.x * width;
    float *yr = y + (size_t)blockIdx.x * width;
    double s = 0.0;
    for (uint32_t j = threadIdx.x; j < width; j += blockDim.x)
        s += xr[j];
    double mean = s_block_sum(s, sh) / width;
    float hi = (float)mean, lo = (float)(mean - (double)hi);
    double v = 0.0;
    for (uint32_t j = threadIdx.x; j < width; j += blockDim.x) {
        float d = (xr[j] - hi) - lo;
        v += (double)d * d;
    }
    double var = s_block_sum(v, sh) / width; /* biased, as PyTorch */
    float inv = (float)(1.0 / sqrt(var + (double)eps));
    for (uint32_t j = threadIdx.x; j < width; j += blockDim.x)
        yr[j] = qr_op_layernorm(xr[j] - hi, lo, inv, w[j], b ? b[j] : 0.0f);
}

/* One block per row: max, then the sum of exp(x - max) in double (its
 * largest term is 1, so it is never 0), then the element-wise step.  The
 * terms are qr_op_softmax(x, max, 1): exactly the exp the last step
 * scales, whichever exp model_ops.h uses. */
__global__ void k_softmax(float *y, const float *x, uint32_t width)
{
    __shared__ double sh[32];
    __shared__ float shf[32];
    const float *xr = x + (size_t)blockIdx.x * width;
    float *yr = y + (size_t)blockIdx.x * width;
    float mx = -INFINITY;
    for (uint32_t j = threadIdx.x; j < width; j += blockDim.x)
        mx = fmaxf(mx, xr[j]);
    mx = s_block_max(mx, shf);
    double s = 0.0;
    for (uint32_t j = threadIdx.x; j < width; j += blockDim.x)
        s += (double)qr_op_softmax(xr[j], mx, 1.0f);
    float inv = (float)(1.0 / s_block_sum(s, sh));
    for (uint32_t j = threadIdx.x; j < width; j += blockDim.x)
        yr[j] = qr_op_softmax(xr[j], mx, inv);
}

/* Threads per row for the row kernels: a warp for narrow rows, up to 256
 * (each thread then strides over the row). */
static unsigned s_row_threads(uint32_t width)
{
    unsigned t = 32;
    while (t < width && t < 256)
        t *= 2;
    return t;
}

/* ---- device memory ---- */

static void s_buf_free(s_buf_t *b)
{
    if (b->p)
        cudaFree(b->p);
    b->p = NULL;
    b->cap = 0;
}

static void s_model_free(s_model_t *m)
{
    if (!m)
        return;
    if (m->dev)
        cudaFree(m->dev);
    free(m->layers);
    free(m->w_off);
    free(m->b_off);
    free(m);
}

/* Frees every cached model but keep (may be NULL). */
static void s_evict_others(qr_cuda_ctx_t *ctx, const s_model_t *keep)
{
    s_model_t **pp = &ctx->models;
    while (*pp) {
        s_model_t *m = *pp;
        if (m == keep) {
            pp = &m->next;
            continue;
        }
        *pp = m->next;
        s_model_free(m);
    }
}

/* cudaMalloc, and on out-of-memory once more after dropping what the
 * current call does not need: other models than keep, and the arena spare
 * (the one the call does not use; NULL: both may go). */
static int s_alloc(qr_cuda_ctx_t *ctx, void **p, size_t bytes, const s_model_t *keep,
                   s_buf_t *spare, const char *what, char *err, size_t errlen)
{
    cudaError_t e = cudaMalloc(p, bytes);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        s_evict_others(ctx, keep);
        if (!ctx->in_zk)
            qr_cuda_zk_trim(ctx);
        if (spare)
            s_buf_free(spare);
        else {
            s_buf_free(&ctx->act);
            s_buf_free(&ctx->gemm);
        }
        e = cudaMalloc(p, bytes);
    }
    if (e != cudaSuccess) {
        *p = NULL;
        char what2[160];
        snprintf(what2, sizeof what2, "cudaMalloc of %zu MiB for %s",
                 (bytes + (1u << 20) - 1) >> 20, what);
        return s_cu(ctx, e, what2, err, errlen);
    }
    return 0;
}

/* Makes b hold at least n floats (contents are not kept). */
static int s_buf_grow(qr_cuda_ctx_t *ctx, s_buf_t *b, size_t n, const s_model_t *keep,
                      s_buf_t *spare, const char *what, char *err, size_t errlen)
{
    if (b->cap >= n)
        return 0;
    s_buf_free(b);
    void *p;
    if (s_alloc(ctx, &p, n * sizeof(float), keep, spare, what, err, errlen))
        return -1;
    b->p = (float *)p;
    b->cap = n;
    return 0;
}

/* ---- the model cache ---- */

static size_t s_weight_count(const qr_cuda_layer_t *L)
{
    switch (L->op) {
    case QR_CUDA_OP_EMBEDDING:
        return (size_t)L->vocab * L->out;
    case QR_CUDA_OP_DENSE:
        return (size_t)L->out * L->in;
    case QR_CUDA_OP_LAYERNORM:
        return L->out;
    default:
        return 0;
    }
}

static uint64_t s_fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}

/* A hash of the descriptors and of 16 values sampled from each tensor: a
 * model id reused for other weights (a model freed without forget() and a
 * new one allocated at the same address) is then very likely caught, for
 * the price of a few hundred reads per call. */
static uint64_t s_fingerprint(const qr_cuda_layer_t *layers, uint32_t n, uint32_t input)
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = s_fnv(h, &n, sizeof n);
    h = s_fnv(h, &input, sizeof input);
    for (uint32_t i = 0; i < n; i++) {
        const qr_cuda_layer_t *L = &layers[i];
        h = s_fnv(h, &L->op, sizeof L->op);
        h = s_fnv(h, &L->in, sizeof L->in);
        h = s_fnv(h, &L->out, sizeof L->out);
        h = s_fnv(h, &L->vocab, sizeof L->vocab);
        h = s_fnv(h, &L->from, sizeof L->from);
        h = s_fnv(h, &L->eps, sizeof L->eps);
        h = s_fnv(h, &L->weight, sizeof L->weight);
        h = s_fnv(h, &L->bias, sizeof L->bias);
        size_t cw = s_weight_count(L), cb = L->bias ? L->out : 0;
        for (int k = 0; k < 16; k++) {
            if (L->weight && cw)
                h = s_fnv(h, &L->weight[(cw - 1) * k / 15], sizeof(float));
            if (L->bias && cb)
                h = s_fnv(h, &L->bias[(cb - 1) * k / 15], sizeof(float));
        }
    }
    return h;
}

/* Offset in m->dev of an earlier tensor with the same host pointer and
 * size (tied weights are uploaded once), or SIZE_MAX. */
static size_t s_tied(const s_model_t *m, uint32_t upto, const float *p, size_t count)
{
    for (uint32_t i = 0; i < upto; i++) {
        const qr_cuda_layer_t *L = &m->layers[i];
        if (L->weight == p && s_weight_count(L) == count && m->w_off[i] != SIZE_MAX)
            return m->w_off[i];
        if (L->bias == p && L->out == count && m->b_off[i] != SIZE_MAX)
            return m->b_off[i];
    }
    return SIZE_MAX;
}

static s_model_t *s_upload(qr_cuda_ctx_t *ctx, uint64_t id, uint64_t fp,
                           const qr_cuda_layer_t *layers, uint32_t n, uint32_t input, char *err,
                           size_t errlen)
{
    s_model_t *m = (s_model_t *)calloc(1, sizeof *m);
    if (!m || !(m->layers = (qr_cuda_layer_t *)malloc(n * sizeof *m->layers)) ||
        !(m->w_off = (size_t *)malloc(n * sizeof *m->w_off)) ||
        !(m->b_off = (size_t *)malloc(n * sizeof *m->b_off))) {
        s_err(err, errlen, "out of host memory");
        s_model_free(m);
        return NULL;
    }
    m->id = id;
    m->fp = fp;
    m->n = n;
    m->input = input;
    memcpy(m->layers, layers, n * sizeof *layers);
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        const qr_cuda_layer_t *L = &layers[i];
        size_t cw = s_weight_count(L);
        m->w_off[i] = m->b_off[i] = SIZE_MAX;
        if (L->weight && cw) {
            size_t t = s_tied(m, i, L->weight, cw);
            m->w_off[i] = t != SIZE_MAX ? t : total;
            if (t == SIZE_MAX)
                total += s_round(cw);
        }
        if (L->bias) {
            size_t t = s_tied(m, i, L->bias, L->out);
            m->b_off[i] = t != SIZE_MAX ? t : total;
            if (t == SIZE_MAX)
                total += s_round(L->out);
        }
    }
    m->bytes = total * sizeof(float);
    if (total) {
        void *p;
        if (s_alloc(ctx, &p, m->bytes, NULL, NULL, "model weights", err, errlen)) {
            s_model_free(m);
            return NULL;
        }
        m->dev = (float *)p;
    }
    /* Synchronous copies from pageable memory: an upload happens once per
     * model, and the host buffers may go away right after the call. */
    for (uint32_t i = 0; i < n; i++) {
        const qr_cuda_layer_t *L = &layers[i];
        size_t cw = s_weight_count(L);
        if (L->weight && cw &&
            s_cu(ctx,
                 cudaMemcpy(m->dev + m->w_off[i], L->weight, cw * sizeof(float),
                            cudaMemcpyHostToDevice),
                 "uploading weights", err, errlen)) {
            s_model_free(m);
            return NULL;
        }
        if (L->bias && s_cu(ctx,
                            cudaMemcpy(m->dev + m->b_off[i], L->bias, L->out * sizeof(float),
                                       cudaMemcpyHostToDevice),
                            "uploading a bias", err, errlen)) {
            s_model_free(m);
            return NULL;
        }
    }
    m->next = ctx->models;
    ctx->models = m;
    return m;
}

static void s_forget(qr_cuda_ctx_t *ctx, uint64_t id)
{
    if (!ctx)
        return;
    cudaSetDevice(ctx->device);
    for (s_model_t **pp = &ctx->models; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            s_model_t *m = *pp;
            *pp = m->next;
            s_model_free(m);
            return;
        }
}

/* Field by field: the structs' padding is not ours to compare. */
static bool s_same(const qr_cuda_layer_t *a, const qr_cuda_layer_t *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i].op != b[i].op || a[i].in != b[i].in || a[i].out != b[i].out ||
            a[i].weight != b[i].weight || a[i].bias != b[i].bias || a[i].vocab != b[i].vocab ||
            a[i].from != b[i].from || a[i].eps != b[i].eps)
            return false;
    return true;
}

/* The cached model for id, uploaded now if absent or stale. */
static s_model_t *s_model_get(qr_cuda_ctx_t *ctx, uint64_t id, const qr_cuda_layer_t *layers,
                              uint32_t n, uint32_t input, char *err, size_t errlen)
{
    uint64_t fp = s_fingerprint(layers, n, input);
    for (s_model_t *m = ctx->models; m; m = m->next)
        if (m->id == id) {
            if (m->fp == fp && m->n == n && m->input == input && s_same(m->layers, layers, n))
                return m;
            s_forget(ctx, id); /* same id, other model: never run stale weights */
            break;
        }
    return s_upload(ctx, id, fp, layers, n, input, err, errlen);
}

/* ---- the API ---- */

static int s_device_count(int *count, char *err, size_t errlen)
{
    *count = 0;
    cudaError_t e = cudaGetDeviceCount(count);
    if (e == cudaErrorNoDevice) {
        (void)cudaGetLastError();
        *count = 0;
        return 0;
    }
    if (e == cudaErrorInsufficientDriver) {
        (void)cudaGetLastError();
        int drv = 0;
        cudaDriverGetVersion(&drv);
        if (drv == 0)
            s_err(err, errlen, "no CUDA driver (libcuda.so.1 could not be loaded)");
        else
            s_err(err, errlen,
                  "the CUDA driver supports CUDA %d.%d, older than the runtime %d.%d this module "
                  "was built with",
                  drv / 1000, drv % 1000 / 10, CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
        *count = 0;
        return -1;
    }
    if (s_cu(NULL, e, "cudaGetDeviceCount", err, errlen)) {
        *count = 0;
        return -1;
    }
    return 0;
}

static void s_close(qr_cuda_ctx_t *ctx)
{
    if (!ctx)
        return;
    cudaSetDevice(ctx->device);
    if (ctx->stream)
        cudaStreamSynchronize(ctx->stream);
    s_evict_others(ctx, NULL);
    s_buf_free(&ctx->act);
    s_buf_free(&ctx->gemm);
    qr_cuda_zk_trim(ctx);
    if (ctx->blas)
        cublasDestroy(ctx->blas);
    if (ctx->stream)
        cudaStreamDestroy(ctx->stream);
    (void)cudaGetLastError();
    free(ctx);
}

static qr_cuda_ctx_t *s_open(int device, char *err, size_t errlen)
{
    int count;
    if (s_device_count(&count, err, errlen))
        return NULL;
    if (count == 0) {
        s_err(err, errlen, "no CUDA device found");
        return NULL;
    }
    if (device < 0 || device >= count) {
        s_err(err, errlen, "CUDA device %d does not exist (%d device%s: 0..%d)", device, count,
              count == 1 ? "" : "s", count - 1);
        return NULL;
    }
    qr_cuda_ctx_t *ctx = (qr_cuda_ctx_t *)calloc(1, sizeof *ctx);
    if (!ctx) {
        s_err(err, errlen, "out of host memory");
        return NULL;
    }
    ctx->device = device;
    cudaDeviceProp prop;
    int *probe = NULL, one = 0;
    if (s_cu(ctx, cudaSetDevice(device), "cudaSetDevice", err, errlen) ||
        s_cu(ctx, cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties", err, errlen))
        goto fail;
    snprintf(ctx->name, sizeof ctx->name, "%s", prop.name);
    if (s_cu(ctx, cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking),
             "cudaStreamCreate", err, errlen))
        goto fail;
    /* A device older than every architecture in the fat binary (and than
     * its PTX) fails every launch; find out now, with a clear message, not
     * in the middle of a job. */
    if (s_cu(ctx, cudaMalloc((void **)&probe, sizeof *probe), "cudaMalloc", err, errlen))
        goto fail;
    k_probe<<<1, 1, 0, ctx->stream>>>(probe);
    {
        cudaError_t e = cudaGetLastError();
        if (e == cudaSuccess)
            e = cudaMemcpyAsync(&one, probe, sizeof one, cudaMemcpyDeviceToHost, ctx->stream);
        if (e == cudaSuccess)
            e = cudaStreamSynchronize(ctx->stream);
        cudaFree(probe);
        if (e == cudaErrorNoKernelImageForDevice || e == cudaErrorUnsupportedPtxVersion) {
            s_err(err, errlen,
                  "%s (compute capability %d.%d) is not supported by this build of the CUDA "
                  "module: %s",
                  prop.name, prop.major, prop.minor, cudaGetErrorString(e));
            (void)cudaGetLastError();
            goto fail;
        }
        if (s_cu(ctx, e, "probe kernel", err, errlen))
            goto fail;
        if (one != 1) {
            s_err(err, errlen, "probe kernel did not run on %s", prop.name);
            goto fail;
        }
    }
    if (s_blas(cublasCreate(&ctx->blas), "cublasCreate", err, errlen) ||
        s_blas(cublasSetStream(ctx->blas, ctx->stream), "cublasSetStream", err, errlen) ||
        /* never below fp32 (no TF32): results must pass Freivalds' fp32 bound */
        s_blas(cublasSetMathMode(ctx->blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode", err, errlen))
        goto fail;
    return ctx;
fail:
    s_close(ctx);
    return NULL;
}

static const char *s_name(const qr_cuda_ctx_t *ctx)
{
    return ctx ? ctx->name : "";
}

static int s_sgemm(qr_cuda_ctx_t *ctx, const float *A, const float *B, float *C, uint32_t m,
                   uint32_t n, uint32_t k, char *err, size_t errlen)
{
    if (s_enter(ctx, err, errlen))
        return -1;
    if (!A || !B || !C || m == 0 || n == 0 || k == 0 || m > INT32_MAX || n > INT32_MAX ||
        k > INT32_MAX) {
        s_err(err, errlen, "sgemm: bad arguments (m=%u n=%u k=%u)", m, n, k);
        return -1;
    }
    size_t na = (size_t)m * k, nb = (size_t)k * n, nc = (size_t)m * n;
    size_t oa = 0, ob = s_round(na), oc = ob + s_round(nb);
    if (s_buf_grow(ctx, &ctx->gemm, oc + nc, NULL, &ctx->act, "sgemm operands", err, errlen))
        return -1;
    float *dA = ctx->gemm.p + oa, *dB = ctx->gemm.p + ob, *dC = ctx->gemm.p + oc;
    const float one = 1.0f, zero = 0.0f;
    if (s_cu(ctx, cudaMemcpyAsync(dA, A, na * sizeof(float), cudaMemcpyHostToDevice, ctx->stream),
             "copying A", err, errlen) ||
        s_cu(ctx, cudaMemcpyAsync(dB, B, nb * sizeof(float), cudaMemcpyHostToDevice, ctx->stream),
             "copying B", err, errlen))
        return -1;
    /* cuBLAS is column-major: row-major C = A B is column-major C^T = B^T A^T,
     * and a row-major matrix read column-major is its transpose, so the
     * call multiplies B (n x k, ld n) by A (k x m, ld k) with no transposes */
    if (s_blas(cublasSgemm(ctx->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)n, (int)m, (int)k, &one, dB,
                           (int)n, dA, (int)k, &zero, dC, (int)n),
               "cublasSgemm", err, errlen))
        return -1;
    if (s_cu(ctx, cudaMemcpyAsync(C, dC, nc * sizeof(float), cudaMemcpyDeviceToHost, ctx->stream),
             "copying C back", err, errlen) ||
        s_cu(ctx, cudaStreamSynchronize(ctx->stream), "sgemm", err, errlen))
        return -1;
    return 0;
}

/* Enqueues layer i: x its input, y its output, src a residual's source. */
static int s_layer(qr_cuda_ctx_t *ctx, const s_model_t *m, uint32_t i, const float *x,
                   const float *src, float *y, uint32_t rows, char *err, size_t errlen)
{
    const qr_cuda_layer_t *L = &m->layers[i];
    const float *w = m->w_off[i] != SIZE_MAX ? m->dev + m->w_off[i] : NULL;
    const float *b = m->b_off[i] != SIZE_MAX ? m->dev + m->b_off[i] : NULL;
    size_t n = (size_t)rows * L->out;
    cudaStream_t st = ctx->stream;
    switch (L->op) {
    case QR_CUDA_OP_EMBEDDING:
        k_embedding<<<s_blocks(n), 256, 0, st>>>(y, x, w, L->out, n);
        return s_launched(ctx, "embedding kernel", err, errlen);
    case QR_CUDA_OP_DENSE: {
        /* as the CPU: bias in C first, beta = 1, so each element is one fp32
         * sum of in + 1 terms; row-major Y = X W^T is column-major
         * Y^T = W X^T, and W ([out, in] row-major) read column-major is W^T,
         * hence OP_T on it */
        if (b) {
            k_bias_rows<<<s_blocks(n), 256, 0, st>>>(y, b, L->out, n);
            if (s_launched(ctx, "bias kernel", err, errlen))
                return -1;
        }
        const float one = 1.0f, beta = b ? 1.0f : 0.0f;
        return s_blas(cublasSgemm(ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)L->out, (int)rows,
                                  (int)L->in, &one, w, (int)L->in, x, (int)L->in, &beta, y,
                                  (int)L->out),
                      "cublasSgemm (dense layer)", err, errlen);
    }
    case QR_CUDA_OP_RELU:
        k_relu<<<s_blocks(n), 256, 0, st>>>(y, x, n);
        return s_launched(ctx, "relu kernel", err, errlen);
    case QR_CUDA_OP_GELU:
        k_gelu<<<s_blocks(n), 256, 0, st>>>(y, x, n);
        return s_launched(ctx, "gelu kernel", err, errlen);
    case QR_CUDA_OP_LAYERNORM:
        k_layernorm<<<rows, s_row_threads(L->out), 0, st>>>(y, x, w, b, L->out, L->eps);
        return s_launched(ctx, "layernorm kernel", err, errlen);
    case QR_CUDA_OP_SOFTMAX:
        k_softmax<<<rows, s_row_threads(L->out), 0, st>>>(y, x, L->out);
        return s_launched(ctx, "softmax kernel", err, errlen);
    case QR_CUDA_OP_RESIDUAL:
        k_residual<<<s_blocks(n), 256, 0, st>>>(y, x, src, n);
        return s_launched(ctx, "residual kernel", err, errlen);
    default:
        s_err(err, errlen, "layer %u: unknown op %d", i, L->op);
        return -1;
    }
}

static int s_forward(qr_cuda_ctx_t *ctx, uint64_t id, const qr_cuda_layer_t *layers,
                     uint32_t nlayers, uint32_t input, const float *in, uint32_t rows,
                     float *const *outs, char *err, size_t errlen)
{
    if (s_enter(ctx, err, errlen))
        return -1;
    if (!layers || nlayers == 0 || !in || !outs || rows == 0 || input == 0 || rows > INT32_MAX) {
        s_err(err, errlen, "forward: bad arguments");
        return -1;
    }
    for (uint32_t i = 0; i < nlayers; i++) {
        const qr_cuda_layer_t *L = &layers[i];
        uint32_t w_in = i ? layers[i - 1].out : input;
        if (L->in != w_in || L->out == 0 || L->in > INT32_MAX || L->out > INT32_MAX ||
            (L->op == QR_CUDA_OP_RESIDUAL && (L->from < -1 || L->from >= (int)i)) ||
            ((L->op == QR_CUDA_OP_EMBEDDING || L->op == QR_CUDA_OP_DENSE ||
              L->op == QR_CUDA_OP_LAYERNORM) &&
             !L->weight)) {
            s_err(err, errlen, "forward: layer %u is inconsistent", i);
            return -1;
        }
    }
    s_model_t *m = s_model_get(ctx, id, layers, nlayers, input, err, errlen);
    if (!m)
        return -1;
    /* arena: the input, then each layer's output */
    size_t *off = (size_t *)malloc((nlayers + 1) * sizeof *off);
    if (!off) {
        s_err(err, errlen, "out of host memory");
        return -1;
    }
    size_t total = s_round((size_t)rows * input);
    off[0] = 0;
    for (uint32_t i = 0; i < nlayers; i++) {
        off[i + 1] = total;
        total += s_round((size_t)rows * layers[i].out);
    }
    int rc = -1;
    if (s_buf_grow(ctx, &ctx->act, total, m, &ctx->gemm, "activations", err, errlen))
        goto done;
    {
        float *act = ctx->act.p;
        if (s_cu(ctx,
                 cudaMemcpyAsync(act, in, (size_t)rows * input * sizeof(float),
                                 cudaMemcpyHostToDevice, ctx->stream),
                 "copying the input", err, errlen))
            goto done;
        for (uint32_t i = 0; i < nlayers; i++) {
            const float *src =
                layers[i].op == QR_CUDA_OP_RESIDUAL ? act + off[layers[i].from + 1] : NULL;
            if (s_layer(ctx, m, i, act + off[i], src, act + off[i + 1], rows, err, errlen))
                goto done;
        }
        /* all the work is queued before the first copy back: a copy into
         * pageable memory holds the host until it is done, and the GPU
         * should not wait for the host to queue the next kernel */
        for (uint32_t i = 0; i < nlayers; i++)
            if (s_cu(ctx,
                     cudaMemcpyAsync(outs[i], act + off[i + 1],
                                     (size_t)rows * layers[i].out * sizeof(float),
                                     cudaMemcpyDeviceToHost, ctx->stream),
                     "copying activations back", err, errlen))
                goto done;
        if (s_cu(ctx, cudaStreamSynchronize(ctx->stream), "forward", err, errlen))
            goto done;
    }
    rc = 0;
done:
    if (rc && !ctx->broken[0])
        cudaStreamSynchronize(ctx->stream); /* nothing may still write into outs */
    free(off);
    return rc;
}

/* ---- for qr_cuda_zk.cu (qr_cuda_int.h) ---- */

void qr_cuda_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int qr_cuda_check(qr_cuda_ctx_t *ctx, cudaError_t e, const char *what, char *err, size_t errlen)
{
    return s_cu(ctx, e, what, err, errlen);
}

int qr_cuda_launched(qr_cuda_ctx_t *ctx, const char *kernel, char *err, size_t errlen)
{
    return s_launched(ctx, kernel, err, errlen);
}

int qr_cuda_enter(qr_cuda_ctx_t *ctx, char *err, size_t errlen)
{
    return s_enter(ctx, err, errlen);
}

int qr_cuda_alloc(qr_cuda_ctx_t *ctx, void **p, size_t bytes, const char *what, char *err,
                  size_t errlen)
{
    ctx->in_zk = true;
    int rc = s_alloc(ctx, p, bytes, NULL, NULL, what, err, errlen);
    ctx->in_zk = false;
    return rc;
}

unsigned qr_cuda_blocks(size_t n, unsigned threads)
{
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 1 ? 1 : (b > 65535u * 4 ? 65535u * 4 : b));
}

static void s_forget_api(qr_cuda_ctx_t *ctx, uint64_t id)
{
    s_forget(ctx, id);
}

/* in the order of qr_cuda_abi.h (designated initialisers are C++20) */
static const qr_cuda_api_t s_api = {
    QR_CUDA_ABI_VERSION,   /* version */
    sizeof(qr_cuda_api_t), /* size */
    s_device_count,        /* device_count */
    s_open,                /* open */
    s_close,               /* close */
    s_name,                /* name */
    s_sgemm,               /* sgemm */
    s_forward,             /* forward */
    s_forget_api,          /* forget */
    qr_cuda_zk_g1_msm,     /* g1_msm */
    qr_cuda_zk_g2_msm,     /* g2_msm */
    qr_cuda_zk_ntt,        /* ntt */
};

QR_EXPORT int qr_cuda_abi_version(void)
{
    return QR_CUDA_ABI_VERSION;
}

QR_EXPORT const qr_cuda_api_t *qr_cuda_api(int version)
{
    return version == QR_CUDA_ABI_VERSION ? &s_api : NULL;
}
