/* Loader of the CUDA module and the GPU calls; see gpu.h and docs/gpu.md.
 *
 * Plain C with no CUDA header: everything CUDA lives in libquarry_cuda.so
 * (common/cuda/qr_cuda.cu), reached through the function table of
 * common/cuda/qr_cuda_abi.h.  This file owns what the CPU path already
 * defines (argument checks, token ids, the overflow check, the messages),
 * so both paths refuse the same inputs with the same words, and the module
 * only computes. */
#include "gpu.h"

#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuda/qr_cuda_abi.h"
#include "gemm.h"

/* the ABI's limb layouts are common/zk's structs (qr_cuda_abi.h) */
_Static_assert(sizeof(qr_g1_affine_t) == 8 * 8 && sizeof(qr_g1_t) == 12 * 8, "G1 layout");
_Static_assert(sizeof(qr_g2_affine_t) == 16 * 8 && sizeof(qr_g2_t) == 24 * 8, "G2 layout");
_Static_assert(sizeof(qr_msm_scalar_t) == 4 * 8 && sizeof(qr_fr_t) == 4 * 8, "Fr layout");
_Static_assert(QR_G16_NTT_INVERSE == QR_CUDA_NTT_INVERSE &&
                   QR_G16_NTT_COSET_FORWARD == QR_CUDA_NTT_COSET_FORWARD,
               "NTT ops");

/* the GPU path's limits (common/zk/msm_gpu_impl.h, ntt_gpu_impl.h) */
#define S_MSM_MAX_N ((size_t)1 << 26)
#define S_NTT_MAX_LOG 28u

/* room for a directory of PATH_MAX and the module's name */
#define S_PATH (PATH_MAX + 64)

struct qr_gpu {
    void *dl;                 /* dlopen handle of the module */
    const qr_cuda_api_t *api; /* its function table */
    qr_cuda_ctx_t *ctx;       /* the device context */
    pthread_mutex_t lock;     /* serialises every call on ctx */
    char path[S_PATH];        /* module as loaded */
};

static void s_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* snprintf(dst, n, "%s", src) without gcc guessing at src's length */
static void s_copy(char *dst, size_t n, const char *src)
{
    size_t l = strlen(src);
    l = l < n ? l : n - 1;
    memcpy(dst, src, l);
    dst[l] = '\0';
}

/* dlopen without ever unloading: the module carries a static CUDA runtime
 * whose exit handlers would run from unmapped code if dlclose removed it. */
static void *s_dlopen(const char *path)
{
    return dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
}

/* Finds and loads the module (gpu.h gives the order).  Returns the handle
 * and its path in path, or NULL with the reason in err. */
static void *s_load(const char *explicit_path, char *path, size_t pathlen, char *err, size_t errlen)
{
    const char *env = getenv("QUARRY_CUDA_MODULE");
    if (!explicit_path && env && *env)
        explicit_path = env;
    if (explicit_path) {
        void *dl = s_dlopen(explicit_path);
        if (!dl) {
            const char *why = dlerror();
            s_err(err, errlen, "CUDA module %s%s cannot be loaded: %s", explicit_path,
                  explicit_path == env ? " (QUARRY_CUDA_MODULE)" : "", why ? why : "?");
            return NULL;
        }
        s_copy(path, pathlen, explicit_path);
        return dl;
    }
    /* next to the executable, then its ../lib: the build tree puts the
     * module in build/lib with the binaries one level below build/, and an
     * install has bin/ and lib/ */
    char dir[PATH_MAX] = "", tried[2][S_PATH] = {"", ""};
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    char *slash = n > 0 ? (dir[n] = '\0', strrchr(dir, '/')) : NULL;
    if (slash) {
        *slash = '\0';
        snprintf(tried[0], sizeof tried[0], "%s/" QR_GPU_MODULE, dir);
        char *up = strrchr(dir, '/');
        snprintf(tried[1], sizeof tried[1], "%.*s/lib/" QR_GPU_MODULE, up ? (int)(up - dir) : 0,
                 dir);
    } else
        dir[0] = '\0';
    int failed = 0; /* err holds why a module that exists did not load */
    for (int i = 0; i < 2 && dir[0]; i++) {
        if (access(tried[i], F_OK) != 0)
            continue;
        void *dl = s_dlopen(tried[i]);
        if (dl) {
            s_copy(path, pathlen, tried[i]);
            s_err(err, errlen, "%s", "");
            return dl;
        }
        /* present but broken (cuBLAS missing, say): that is the reason to
         * give, unless the loader's path has a working one */
        if (!failed++) {
            const char *why = dlerror();
            s_err(err, errlen, "CUDA module %s cannot be loaded: %s", tried[i], why ? why : "?");
        }
    }
    void *dl = s_dlopen(QR_GPU_MODULE);
    if (dl) {
        s_copy(path, pathlen, QR_GPU_MODULE);
        s_err(err, errlen, "%s", "");
        return dl;
    }
    if (!failed && dir[0])
        s_err(err, errlen,
              "no CUDA module: looked for %s, %s and " QR_GPU_MODULE " on the loader's path "
              "(built without nvcc? set QUARRY_CUDA_MODULE to its path)",
              tried[0], tried[1]);
    else if (!failed)
        s_err(err, errlen,
              "no CUDA module: " QR_GPU_MODULE " is not on the loader's path (built without "
              "nvcc? set QUARRY_CUDA_MODULE to its path)");
    return NULL;
}

qr_gpu_t *qr_gpu_open(int device, char *err, size_t errlen)
{
    return qr_gpu_open_module(NULL, device, err, errlen);
}

qr_gpu_t *qr_gpu_open_module(const char *path, int device, char *err, size_t errlen)
{
    s_err(err, errlen, "%s", "");
    qr_gpu_t *self = calloc(1, sizeof *self);
    if (!self) {
        s_err(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    if (!(self->dl = s_load(path, self->path, sizeof self->path, err, errlen)))
        goto fail;
    /* a void * to a function pointer goes through memcpy: ISO C has no
     * conversion between the two, POSIX guarantees the representation */
    void *sym_v = dlsym(self->dl, "qr_cuda_abi_version"), *sym_a = dlsym(self->dl, "qr_cuda_api");
    if (!sym_v || !sym_a) {
        s_err(err, errlen, "%s does not export qr_cuda_api (not a Quarry CUDA module)", self->path);
        goto fail;
    }
    qr_cuda_abi_version_fn version_fn;
    qr_cuda_api_fn api_fn;
    memcpy(&version_fn, &sym_v, sizeof version_fn);
    memcpy(&api_fn, &sym_a, sizeof api_fn);
    int v = version_fn();
    if (v != QR_CUDA_ABI_VERSION || !(self->api = api_fn(QR_CUDA_ABI_VERSION)) ||
        self->api->version != QR_CUDA_ABI_VERSION || self->api->size < sizeof(qr_cuda_api_t)) {
        s_err(err, errlen,
              "CUDA module %s has ABI version %d, this program needs %d (a module from another "
              "build?)",
              self->path, v, QR_CUDA_ABI_VERSION);
        self->api = NULL;
        goto fail;
    }
    char why[512] = "";
    if (!(self->ctx = self->api->open(device, why, sizeof why))) {
        s_err(err, errlen, "%s", why[0] ? why : "CUDA device could not be opened");
        goto fail;
    }
    return self;
fail:
    qr_gpu_close(&self);
    return NULL;
}

void qr_gpu_close(qr_gpu_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_gpu_t *self = *self_p;
    if (self->api && self->ctx)
        self->api->close(self->ctx);
    if (self->dl)
        dlclose(self->dl);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

const char *qr_gpu_name(const qr_gpu_t *self)
{
    return self ? self->api->name(self->ctx) : "";
}

const char *qr_gpu_module_path(const qr_gpu_t *self)
{
    return self ? self->path : "";
}

int qr_gpu_sgemm(qr_gpu_t *self, const float *A, const float *B, float *C, uint32_t m, uint32_t n,
                 uint32_t k, char *err, size_t errlen)
{
    s_err(err, errlen, "%s", "");
    if (!self || !A || !B || !C) {
        s_err(err, errlen, "sgemm: %s", self ? "no matrix" : "no GPU");
        return -1;
    }
    size_t ab, bb, cb;
    if (qr_gemm_sizes(m, n, k, &ab, &bb, &cb) != 0) {
        s_err(err, errlen, "sgemm: bad shape m=%u n=%u k=%u (each 1..%u)", m, n, k,
              QR_GEMM_MAX_DIM);
        return -1;
    }
    char why[512] = "";
    pthread_mutex_lock(&self->lock);
    int rc = self->api->sgemm(self->ctx, A, B, C, m, n, k, why, sizeof why);
    pthread_mutex_unlock(&self->lock);
    if (rc)
        s_err(err, errlen, "GPU sgemm: %s", why);
    return rc ? -1 : 0;
}

/* The module's op for a model op, or -1. */
static int s_op(int op)
{
    switch (op) {
    case QR_MODEL_EMBEDDING:
        return QR_CUDA_OP_EMBEDDING;
    case QR_MODEL_DENSE:
        return QR_CUDA_OP_DENSE;
    case QR_MODEL_RELU:
        return QR_CUDA_OP_RELU;
    case QR_MODEL_GELU:
        return QR_CUDA_OP_GELU;
    case QR_MODEL_LAYERNORM:
        return QR_CUDA_OP_LAYERNORM;
    case QR_MODEL_SOFTMAX:
        return QR_CUDA_OP_SOFTMAX;
    case QR_MODEL_RESIDUAL:
        return QR_CUDA_OP_RESIDUAL;
    default:
        return -1;
    }
}

qr_model_acts_t *qr_gpu_model_forward(qr_gpu_t *self, const qr_model_t *model, const float *in,
                                      uint32_t rows, char *err, size_t errlen)
{
    s_err(err, errlen, "%s", "");
    if (!self || !model) {
        s_err(err, errlen, "forward: %s", self ? "no model" : "no GPU");
        return NULL;
    }
    /* the checks and messages of qr_model_forward (common/model.c) */
    if (rows == 0 || rows > QR_MODEL_MAX_ROWS || !in) {
        s_err(err, errlen, "forward: rows must be 1..%u, got %u%s", QR_MODEL_MAX_ROWS, rows,
              in ? "" : " (no input)");
        return NULL;
    }
    uint32_t input = qr_model_input_width(model), nl = qr_model_layers(model);
    if (!qr_floats_finite(in, (size_t)rows * input)) {
        s_err(err, errlen, "forward: the input holds inf or NaN");
        return NULL;
    }
    qr_cuda_layer_t *layers = calloc(nl, sizeof *layers); /* zeroed padding, too */
    float **outs = calloc(nl, sizeof *outs);
    qr_model_acts_t *a = NULL;
    if (!layers || !outs)
        goto oom;
    for (uint32_t i = 0; i < nl; i++) {
        qr_model_layer_t L;
        if (qr_model_layer(model, i, &L) != 0 || s_op(L.op) < 0) {
            s_err(err, errlen, "forward: layer %u cannot be described to the GPU", i);
            goto fail;
        }
        layers[i] = (qr_cuda_layer_t){.op = s_op(L.op),
                                      .in = L.in,
                                      .out = L.out,
                                      .weight = L.weight,
                                      .bias = L.bias,
                                      .vocab = L.vocab,
                                      .from = L.from,
                                      .eps = L.eps};
        /* the GPU gathers rows by id without looking: every id is checked
         * here, as the CPU does (an embedding is always layer 0) */
        if (L.op == QR_MODEL_EMBEDDING)
            for (uint32_t r = 0; r < rows; r++) {
                float id = in[r];
                if (!(id >= 0.0f && id < (float)L.vocab) || id != floorf(id)) {
                    s_err(err, errlen,
                          "layer %u (embedding): row %u: token id %g is not an integer in [0, %u)",
                          i, r, (double)id, L.vocab);
                    goto fail;
                }
            }
    }
    if (!(a = qr_model_acts_new(model, rows)))
        goto oom;
    memcpy(qr_model_acts_layer_mut(a, -1), in, (size_t)rows * input * sizeof(float));
    for (uint32_t i = 0; i < nl; i++)
        outs[i] = qr_model_acts_layer_mut(a, (int)i);
    char why[512] = "";
    pthread_mutex_lock(&self->lock);
    int rc = self->api->forward(self->ctx, (uint64_t)(uintptr_t)model, layers, nl, input, in, rows,
                                outs, why, sizeof why);
    pthread_mutex_unlock(&self->lock);
    if (rc) {
        s_err(err, errlen, "GPU forward: %s", why);
        goto fail;
    }
    /* as the CPU: an overflow would only make the result unverifiable, so
     * it is refused here, naming the first layer that overflowed */
    for (uint32_t i = 0; i < nl; i++)
        if (!qr_floats_finite(outs[i], (size_t)rows * layers[i].out)) {
            s_err(err, errlen, "layer %u (%s): output is not finite (overflow)", i,
                  qr_model_op_name(qr_model_op(model, i)));
            goto fail;
        }
    free(layers);
    free(outs);
    return a;
oom:
    s_err(err, errlen, "forward: out of memory");
fail:
    qr_model_acts_destroy(&a);
    free(layers);
    free(outs);
    return NULL;
}

void qr_gpu_model_forget(qr_gpu_t *self, const qr_model_t *model)
{
    if (!self || !model)
        return;
    pthread_mutex_lock(&self->lock);
    self->api->forget(self->ctx, (uint64_t)(uintptr_t)model);
    pthread_mutex_unlock(&self->lock);
}

/* ---- zk.groth16 ---- */

static int s_msm(qr_gpu_t *self, int g2, void *out, const void *bases, const qr_msm_scalar_t *k,
                 size_t n, char *err, size_t errlen)
{
    const char *what = g2 ? "G2 MSM" : "G1 MSM";
    s_err(err, errlen, "%s", "");
    if (!self || !out || (n && (!bases || !k))) {
        s_err(err, errlen, "%s: %s", what, self ? "no points or scalars" : "no GPU");
        return -1;
    }
    if (n > S_MSM_MAX_N) {
        s_err(err, errlen, "%s: %zu points, the GPU path takes at most %zu", what, n, S_MSM_MAX_N);
        return -1;
    }
    char why[512] = "";
    pthread_mutex_lock(&self->lock);
    int rc = g2 ? self->api->g2_msm(self->ctx, (uint64_t *)out, (const uint64_t *)bases,
                                    (const uint64_t *)k, n, why, sizeof why)
                : self->api->g1_msm(self->ctx, (uint64_t *)out, (const uint64_t *)bases,
                                    (const uint64_t *)k, n, why, sizeof why);
    pthread_mutex_unlock(&self->lock);
    if (rc)
        s_err(err, errlen, "GPU %s: %s", what, why);
    return rc ? -1 : 0;
}

int qr_gpu_g1_msm(qr_gpu_t *self, qr_g1_t *out, const qr_g1_affine_t *bases,
                  const qr_msm_scalar_t *k, size_t n, char *err, size_t errlen)
{
    return s_msm(self, 0, out, bases, k, n, err, errlen);
}

int qr_gpu_g2_msm(qr_gpu_t *self, qr_g2_t *out, const qr_g2_affine_t *bases,
                  const qr_msm_scalar_t *k, size_t n, char *err, size_t errlen)
{
    return s_msm(self, 1, out, bases, k, n, err, errlen);
}

int qr_gpu_ntt(qr_gpu_t *self, qr_fr_t *a, unsigned log_n, unsigned ops, const qr_fr_t *shift,
               char *err, size_t errlen)
{
    s_err(err, errlen, "%s", "");
    if (!self || !a || ops > (QR_G16_NTT_INVERSE | QR_G16_NTT_COSET_FORWARD) ||
        ((ops & QR_G16_NTT_COSET_FORWARD) && !shift)) {
        s_err(err, errlen, "NTT: %s", self ? "bad arguments" : "no GPU");
        return -1;
    }
    if (log_n > S_NTT_MAX_LOG) {
        s_err(err, errlen, "NTT: size 2^%u, at most 2^%u", log_n, S_NTT_MAX_LOG);
        return -1;
    }
    char why[512] = "";
    pthread_mutex_lock(&self->lock);
    int rc = self->api->ntt(self->ctx, (uint64_t *)a, log_n, ops, (const uint64_t *)shift, why,
                            sizeof why);
    pthread_mutex_unlock(&self->lock);
    if (rc)
        s_err(err, errlen, "GPU NTT: %s", why);
    return rc ? -1 : 0;
}

/* the backend's entries: the prover names the backend and the step
 * ("prove: GPU G1 MSM (A): ..."), so only the reason after our own "GPU G1
 * MSM: " or "G1 MSM: " goes on */
static const char *s_strip(const char *m)
{
    const char *c = strstr(m, ": ");
    return c ? c + 2 : m;
}

static int s_be_g1(void *ctx, qr_g1_t *out, const qr_g1_affine_t *bases, const qr_msm_scalar_t *k,
                   size_t n, char *err, size_t errlen)
{
    char why[512];
    int rc = qr_gpu_g1_msm(ctx, out, bases, k, n, why, sizeof why);
    if (rc)
        s_err(err, errlen, "%s", s_strip(why));
    return rc;
}

static int s_be_g2(void *ctx, qr_g2_t *out, const qr_g2_affine_t *bases, const qr_msm_scalar_t *k,
                   size_t n, char *err, size_t errlen)
{
    char why[512];
    int rc = qr_gpu_g2_msm(ctx, out, bases, k, n, why, sizeof why);
    if (rc)
        s_err(err, errlen, "%s", s_strip(why));
    return rc;
}

static int s_be_ntt(void *ctx, qr_fr_t *a, unsigned log_n, unsigned ops, const qr_fr_t *shift,
                    char *err, size_t errlen)
{
    char why[512];
    int rc = qr_gpu_ntt(ctx, a, log_n, ops, shift, why, sizeof why);
    if (rc)
        s_err(err, errlen, "%s", s_strip(why));
    return rc;
}

void qr_gpu_g16_backend(qr_gpu_t *self, qr_g16_backend_t *be)
{
    memset(be, 0, sizeof *be);
    if (!self)
        return; /* every entry NULL: all on the CPU */
    be->name = "GPU";
    be->ctx = self;
    be->g1_msm = s_be_g1;
    be->g2_msm = s_be_g2;
    be->ntt = s_be_ntt;
}
