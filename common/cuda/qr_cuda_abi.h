/* The C ABI between the loader (common/gpu.c) and the CUDA module
 * libquarry_cuda.so (common/cuda/qr_cuda.cu), which gpu.c opens with
 * dlopen() so that no Quarry binary needs a CUDA library to start.
 *
 * Plain C types only: this header is included by C (gpu.c, the test's fake
 * module) and by nvcc's C++ (qr_cuda.cu), and it must not pull in CUDA or
 * Quarry headers.  The module exports two symbols, qr_cuda_abi_version and
 * qr_cuda_api; everything else goes through the table.
 *
 * Changing any struct or signature here means bumping QR_CUDA_ABI_VERSION:
 * an installed module from another build is then refused with a message
 * instead of being called with the wrong layout. */
#ifndef QR_CUDA_ABI_H
#define QR_CUDA_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QR_CUDA_ABI_VERSION 2

/* Layer ops.  The values are the ABI's own, mapped from qr_model_op_t by
 * gpu.c with a switch, so a reordering of model.h cannot silently change
 * what the module computes. */
enum {
    QR_CUDA_OP_EMBEDDING = 0,
    QR_CUDA_OP_DENSE = 1,
    QR_CUDA_OP_RELU = 2,
    QR_CUDA_OP_GELU = 3,
    QR_CUDA_OP_LAYERNORM = 4,
    QR_CUDA_OP_SOFTMAX = 5,
    QR_CUDA_OP_RESIDUAL = 6,
};

/* One layer, as qr_model_layer_t (common/model.h) describes it.  Pointers
 * are host memory owned by the caller (the weights file). */
typedef struct {
    int op;              /* QR_CUDA_OP_* */
    uint32_t in, out;    /* input and output row widths */
    const float *weight; /* embedding [vocab, out], dense [out, in], layernorm [out]; else NULL */
    const float *bias;   /* dense or layernorm [out], or NULL */
    uint32_t vocab;      /* embedding: rows of weight */
    int from;            /* residual: source layer, -1 the model input */
    float eps;           /* layernorm */
} qr_cuda_layer_t;

typedef struct qr_cuda_ctx qr_cuda_ctx_t;

/* NTT operations (a bit set; applied in this order): the inverse transform
 * (as qr_ntt_inverse), then evaluation on the coset shift w^i (as
 * qr_ntt_coset_forward); 0 is the plain forward transform (qr_ntt_forward). */
enum {
    QR_CUDA_NTT_INVERSE = 1,
    QR_CUDA_NTT_COSET_FORWARD = 2,
};

/* BN254 data crosses the ABI as little-endian 64-bit limbs in the layouts
 * of common/zk (bn254_field.h, bn254_curve.h), without including them:
 *   Fp, Fr element   4 limbs, Montgomery form, fully reduced
 *   G1 affine        8 limbs (x, y); (0, 0) is infinity
 *   G2 affine        16 limbs (x.c0, x.c1, y.c0, y.c1)
 *   G1 Jacobian      12 limbs (X, Y, Z), Z = 0 for infinity; G2 24 limbs
 *   MSM scalar       4 limbs, canonical integer (not Montgomery), < r */

/* Every function that can fail returns 0 or -1 with a message in err (may
 * be NULL); none aborts the process.  A context is not thread-safe: the
 * caller serialises calls on one context (gpu.c holds a mutex). */
typedef struct {
    int version; /* QR_CUDA_ABI_VERSION of the module */
    size_t size; /* sizeof (qr_cuda_api_t) in the module */
    /* Number of CUDA devices through *count; -1 when there is no usable
     * driver (the message says so). */
    int (*device_count)(int *count, char *err, size_t errlen);
    /* A context on device: cuBLAS handle, stream, caches.  NULL on error. */
    qr_cuda_ctx_t *(*open)(int device, char *err, size_t errlen);
    /* Frees everything on the device.  NULL-safe. */
    void (*close)(qr_cuda_ctx_t *ctx);
    /* The device's name ("NVIDIA H100 80GB HBM3"); owned by ctx. */
    const char *(*name)(const qr_cuda_ctx_t *ctx);
    /* Row-major C (m x n) = A (m x k) * B (k x n), fp32, host buffers. */
    int (*sgemm)(qr_cuda_ctx_t *ctx, const float *A, const float *B, float *C, uint32_t m,
                 uint32_t n, uint32_t k, char *err, size_t errlen);
    /* Runs nlayers layers on rows rows of in (rows x input width, already
     * validated: finite, token ids integral and in range) and writes layer
     * i's output (rows x layers[i].out) to outs[i], host memory.  Weights
     * are uploaded on the first call for model_id and kept on the device
     * until forget(model_id) or close; a later call with the same id but
     * other layers (shapes, pointers or sampled weight values differ) is
     * treated as a new model. */
    int (*forward)(qr_cuda_ctx_t *ctx, uint64_t model_id, const qr_cuda_layer_t *layers,
                   uint32_t nlayers, uint32_t input_width, const float *in, uint32_t rows,
                   float *const *outs, char *err, size_t errlen);
    /* Frees the device copy of model_id's weights (no-op when not cached). */
    void (*forget)(qr_cuda_ctx_t *ctx, uint64_t model_id);
    /* --- since version 2: the Groth16 prover's MSMs and NTTs (host buffers;
     * layouts above; the caller checked n and the pointers) --- */
    /* out (Jacobian) = sum_{i < n} k_i bases_i; n <= 2^26 */
    int (*g1_msm)(qr_cuda_ctx_t *ctx, uint64_t *out, const uint64_t *bases, const uint64_t *k,
                  size_t n, char *err, size_t errlen);
    int (*g2_msm)(qr_cuda_ctx_t *ctx, uint64_t *out, const uint64_t *bases, const uint64_t *k,
                  size_t n, char *err, size_t errlen);
    /* In place on the 2^log_n Fr elements of a (log_n <= 28): the
     * QR_CUDA_NTT_* operations in ops; shift (4 limbs, Montgomery) is read
     * with QR_CUDA_NTT_COSET_FORWARD only.  One upload, one download. */
    int (*ntt)(qr_cuda_ctx_t *ctx, uint64_t *a, unsigned log_n, unsigned ops, const uint64_t *shift,
               char *err, size_t errlen);
} qr_cuda_api_t;

/* The module's two exports. */
typedef int (*qr_cuda_abi_version_fn)(void);
typedef const qr_cuda_api_t *(*qr_cuda_api_fn)(int version);

#ifdef __cplusplus
}
#endif

#endif
