/* Inside libquarry_cuda.so: the context every entry point works on and the
 * helpers the module's .cu files share (qr_cuda.cu: the context, errors,
 * device memory, the ai kernels; qr_cuda_zk.cu: the Groth16 MSM and NTT).
 * Not an interface: nothing here leaves the module (-fvisibility=hidden),
 * the only way in is the table of qr_cuda_abi.h. */
#ifndef QR_CUDA_INT_H
#define QR_CUDA_INT_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stddef.h>

#include "qr_cuda_abi.h"

typedef struct {
    float *p;   /* device memory, or NULL */
    size_t cap; /* floats */
} qr_cuda_buf_t;

struct s_model;
struct qr_cuda_zk;

struct qr_cuda_ctx {
    int device;
    char name[256];
    cudaStream_t stream;
    cublasHandle_t blas;
    qr_cuda_buf_t act;      /* forward: input and every layer's output */
    qr_cuda_buf_t gemm;     /* sgemm: A, B and C */
    struct s_model *models; /* cached weights, most recently added first */
    struct qr_cuda_zk *zk;  /* the prover's scratch and twiddles (qr_cuda_zk.cu), or NULL */
    bool in_zk;       /* a zk call is allocating: an out-of-memory must not free its buffers */
    char broken[512]; /* non-empty once a sticky error has poisoned the context */
};

/* printf into err (NULL-safe) */
void qr_cuda_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 0 for cudaSuccess; else -1, "what: message (cudaErrorName)" in err, the
 * error cleared, and the context marked broken when the error is sticky */
int qr_cuda_check(qr_cuda_ctx_t *ctx, cudaError_t e, const char *what, char *err, size_t errlen);
/* cudaGetLastError right after a launch, named after the kernel */
int qr_cuda_launched(qr_cuda_ctx_t *ctx, const char *kernel, char *err, size_t errlen);
/* Entry check of every call: a live context, its device made current */
int qr_cuda_enter(qr_cuda_ctx_t *ctx, char *err, size_t errlen);
/* cudaMalloc; on out-of-memory, once more after freeing every cached model
 * and the ai arenas */
int qr_cuda_alloc(qr_cuda_ctx_t *ctx, void **p, size_t bytes, const char *what, char *err,
                  size_t errlen);
/* Grid for a grid-stride loop over n items with `threads` a block */
unsigned qr_cuda_blocks(size_t n, unsigned threads);

/* ---- qr_cuda_zk.cu: the table's Groth16 entries ---- */
int qr_cuda_zk_g1_msm(qr_cuda_ctx_t *ctx, uint64_t *out, const uint64_t *bases, const uint64_t *k,
                      size_t n, char *err, size_t errlen);
int qr_cuda_zk_g2_msm(qr_cuda_ctx_t *ctx, uint64_t *out, const uint64_t *bases, const uint64_t *k,
                      size_t n, char *err, size_t errlen);
int qr_cuda_zk_ntt(qr_cuda_ctx_t *ctx, uint64_t *a, unsigned log_n, unsigned ops,
                   const uint64_t *shift, char *err, size_t errlen);
/* Frees the zk buffers (the ai path's out-of-memory retry, close) */
void qr_cuda_zk_trim(qr_cuda_ctx_t *ctx);

#endif
