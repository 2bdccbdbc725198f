/* The GPU path for ai.gemm, ai.infer and zk.groth16: a loader for the CUDA module
 * libquarry_cuda.so (common/cuda/, built only where nvcc exists) and the
 * calls a worker makes on it.  docs/gpu.md has the design.
 *
 * Nothing here links CUDA: the module is opened with dlopen(), so a binary
 * starts and runs on the CPU on a machine without the module, the driver, a
 * GPU or the CUDA libraries; qr_gpu_open then returns NULL with the reason,
 * and the caller uses the CPU path (qr_gemm_rows, qr_model_forward).
 *
 *   char err[256];
 *   qr_gpu_t *gpu = qr_gpu_open(0, err, sizeof err);
 *   if (!gpu) log("GPU off: %s", err);                        // CPU from here
 *   ...
 *   qr_model_acts_t *a = gpu ? qr_gpu_model_forward(gpu, m, in, rows, err, sizeof err)
 *                            : qr_model_forward(m, in, rows, err, sizeof err);
 *   ...
 *   qr_gpu_model_forget(gpu, m);          // before qr_model_destroy(&m)
 *   qr_gpu_close(&gpu);
 *
 * Results match the CPU path within float tolerance (the same fp32 sums for
 * dense layers, the same element-wise code from model_ops.h), and dense
 * layers pass qr_model_verify_dense as the CPU's do.
 *
 * Threads: one qr_gpu_t may be shared; its calls are serialised by a mutex
 * (one stream, one set of device buffers).  A failing call leaves the
 * handle usable unless the message says the GPU context is unusable; then
 * close it and stay on the CPU. */
#ifndef QR_GPU_H
#define QR_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "zk/prover.h"

typedef struct qr_gpu qr_gpu_t;

/* File name of the CUDA module. */
#define QR_GPU_MODULE "libquarry_cuda.so"

/* Loads the module and opens CUDA device `device` (0 = the first).  The
 * module is searched for, first found wins: $QUARRY_CUDA_MODULE when set
 * (a full path; nothing else is tried then), the running executable's
 * directory, its ../lib, then the dynamic loader's path.  Returns the handle
 * (caller owns; qr_gpu_close) or NULL with the reason in err: no module
 * (built without nvcc), a module that does not load (e.g. cuBLAS missing)
 * or has another ABI version, no driver, no device, device out of range,
 * a GPU this module was not built for. */
qr_gpu_t *qr_gpu_open(int device, char *err, size_t errlen);
/* As qr_gpu_open with the module at path (NULL: search as above). */
qr_gpu_t *qr_gpu_open_module(const char *path, int device, char *err, size_t errlen);
/* Frees the device memory and the handle.  NULL-safe, nulls *self_p. */
void qr_gpu_close(qr_gpu_t **self_p);

/* The device's name ("NVIDIA H100 80GB HBM3"), and the module's path as
 * loaded; owned by the handle ("" for NULL). */
const char *qr_gpu_name(const qr_gpu_t *self);
const char *qr_gpu_module_path(const qr_gpu_t *self);

/* C = A * B on the GPU, as qr_gemm_rows on all rows: A m x k, B k x n,
 * C m x n, row-major fp32, host memory.  Returns 0, or -1 with a message
 * for a shape qr_gemm_sizes refuses or a CUDA/cuBLAS error (e.g. out of
 * GPU memory: the caller may retry on the CPU). */
int qr_gpu_sgemm(qr_gpu_t *self, const float *A, const float *B, float *C, uint32_t m, uint32_t n,
                 uint32_t k, char *err, size_t errlen);

/* qr_model_forward on the GPU: the same contract (rows 1..QR_MODEL_MAX_ROWS,
 * finite input, token ids integral in [0, vocab), no layer output
 * overflowing, with the same messages), the same result layout (every
 * layer's output, caller owns; qr_model_acts_destroy).  Also NULL with a
 * message for a CUDA/cuBLAS error.
 *
 * The model's weights are uploaded on its first forward and stay on the
 * device, keyed by the model's address: call qr_gpu_model_forget before
 * destroying the model (a later model at the same address is caught by a
 * check of shapes, weight pointers and sampled weight values, but that is
 * a safety net, not the contract). */
qr_model_acts_t *qr_gpu_model_forward(qr_gpu_t *self, const qr_model_t *model, const float *in,
                                      uint32_t rows, char *err, size_t errlen);
/* Frees the device copy of model's weights; no-op when not cached or
 * either is NULL. */
void qr_gpu_model_forget(qr_gpu_t *self, const qr_model_t *model);

/* ---- zk.groth16: the prover's MSMs and NTTs (docs/zk.md, "GPU") ----
 * Types from common/zk (header only: qrcommon does not link qrzk).  Each
 * returns 0, or -1 with a message ("GPU G1 MSM: ...") for bad arguments, a
 * size over the GPU path's limit (n > 2^26 for an MSM, log_n > 28) or a
 * CUDA error; the caller then computes on the CPU (qr_g1_msm, qr_ntt_*),
 * which gives the same result. */

/* out = sum_{i < n} k_i bases_i, as qr_g1_msm / qr_g2_msm (canonical
 * scalars < r, affine bases with (0, 0) as infinity). */
int qr_gpu_g1_msm(qr_gpu_t *self, qr_g1_t *out, const qr_g1_affine_t *bases,
                  const qr_msm_scalar_t *k, size_t n, char *err, size_t errlen);
int qr_gpu_g2_msm(qr_gpu_t *self, qr_g2_t *out, const qr_g2_affine_t *bases,
                  const qr_msm_scalar_t *k, size_t n, char *err, size_t errlen);
/* In place on the 2^log_n elements of a: ops is a set of QR_G16_NTT_*
 * (prover.h), run in the order inverse (qr_ntt_inverse), then coset
 * forward with shift (qr_ntt_coset_forward); 0 is qr_ntt_forward.  The
 * same limbs as the CPU. */
int qr_gpu_ntt(qr_gpu_t *self, qr_fr_t *a, unsigned log_n, unsigned ops, const qr_fr_t *shift,
               char *err, size_t errlen);
/* Fills *be so that qr_g16_prove_backend runs every MSM and NTT on self
 * (self must outlive its use; the calls are serialised like the others). */
void qr_gpu_g16_backend(qr_gpu_t *self, qr_g16_backend_t *be);

#endif
