/* Element-wise arithmetic of the ai.infer layers, shared by the CPU runtime
 * (common/model.c), the broker's re-application of cheap layers when it
 * checks a result, and the CUDA kernels (common/cuda/): one definition, so
 * the CPU tests cover the numbers the GPU computes.
 *
 * Everything here is a pure function of its arguments, in float (the
 * element-wise layers are memory-bound; double would halve their speed on
 * the CPU and cost far more on most GPUs).  Row reductions (the mean and
 * variance of layernorm, the max and sum of softmax) are done by each
 * runtime in its own way (a loop here, a block reduction on the GPU); the
 * per-element step that follows them is defined here. */
#ifndef QR_MODEL_OPS_H
#define QR_MODEL_OPS_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define QR_HD __host__ __device__ __forceinline__
#else
#define QR_HD static inline
#endif

QR_HD float qr_op_relu(float x)
{
    return x > 0.0f ? x : 0.0f;
}

/* gelu(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), written
 * as x / (1 + exp(-2u)), the same function: for large negative x the first
 * form subtracts nearly equal numbers and loses every digit, the second does
 * not.  u is clamped so x^3 and exp cannot overflow: beyond |u| = 40 the
 * result is x or 0 to float precision anyway. */
QR_HD float qr_op_gelu(float x)
{
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    u = u < -40.0f ? -40.0f : (u > 40.0f ? 40.0f : u);
    return x / (1.0f + expf(-2.0f * u));
}

/* One element of layernorm once the row's mean and 1/sqrt(var + eps) are
 * known; b may be 0 when the layer has no bias. */
QR_HD float qr_op_layernorm(float x, float mean, float inv, float w, float b)
{
    return (x - mean) * inv * w + b;
}

/* One element of softmax once the row's max and 1/sum(exp(x - max)) are
 * known. */
QR_HD float qr_op_softmax(float x, float max, float inv_sum)
{
    return expf(x - max) * inv_sum;
}

#endif
