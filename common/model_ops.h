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
 * per-element step that follows them is defined here.
 *
 * No libm call and no branch: exp is our own (qr_op_exp), so a loop over
 * these functions vectorises on the CPU without -ffast-math or libmvec, and
 * the CPU and the GPU evaluate the same polynomial. */
#ifndef QR_MODEL_OPS_H
#define QR_MODEL_OPS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define QR_HD __host__ __device__ __forceinline__
#else
#define QR_HD static inline
#endif

/* 2^n as a float for an integer n in [-126, 127], from its bits; 0 for
 * n = -127. */
QR_HD float qr_op_pow2i(int32_t n)
{
    int32_t bits = (n + 127) * (1 << 23); /* a multiply: no shift of a signed value */
#ifdef __CUDA_ARCH__ /* device code: the intrinsic; host code, also under nvcc: memcpy */
    return __int_as_float(bits);
#else
    float f;
    memcpy(&f, &bits, sizeof f); /* compiles to nothing, vectorises */
    return f;
#endif
}

/* e^x for x already in [-87.4, 88.8] (not NaN): the common core of
 * qr_op_exp and qr_op_gelu, which clamp their arguments themselves.
 * Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2 (ln2 split so n * C1 is
 * exact), Cephes' expf polynomial for e^r, then * 2^(n-1) * 2 so n = 128
 * (x up to ln(FLT_MAX)) stays in the exponent field; n = -126 (x below
 * -86.99) gives 0, so results under 1.8e-38 are flushed and nothing
 * subnormal is ever computed (slow on CPUs; GPUs flush anyway). */
QR_HD float qr_op_exp_core(float xc)
{
    float t = xc * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * qr_op_pow2i((int32_t)n - 1) * 2.0f;
}

/* e^x in float, within 2 ulp of the exact value (the unit test measures it
 * against double exp), for every x: +inf above ln(FLT_MAX), 0 below -86.99
 * (results under 1.8e-38: see qr_op_exp_core), NaN for NaN.  The clamp
 * comes first and also maps NaN into range (a compare with NaN is false),
 * so the int conversion in the core is always defined; the select at the
 * end restores NaN. */
QR_HD float qr_op_exp(float x)
{
    float xc = x < 88.8f ? x : 88.8f; /* NaN -> 88.8 */
    xc = xc > -87.4f ? xc : -87.4f;
    float y = qr_op_exp_core(xc); /* overflows to inf by itself above 88.72 */
    return x == x ? y : x;
}

QR_HD float qr_op_relu(float x)
{
    return x > 0.0f ? x : 0.0f;
}

/* gelu(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), written
 * as x / (1 + exp(-2u)), the same function: for large negative x the first
 * form subtracts nearly equal numbers and loses every digit, the second does
 * not.  x^3 may overflow to inf for |x| > 2^42; u is then clamped, so exp
 * stays finite.  Below u = -44 (x < -10.05) the exact value is under
 * 6e-38 in magnitude and the result is 0; above u = 43.5 exp(-2u) is under
 * 1.8e-38 and the result is x. */
QR_HD float qr_op_gelu(float x)
{
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    float uc = u > -44.0f ? (u < 43.5f ? u : 43.5f) : -44.0f; /* NaN -> -44 */
    float y = x / (1.0f + qr_op_exp_core(-2.0f * uc));        /* NaN x: NaN */
    return u < -44.0f ? 0.0f : y;
}

/* One element of layernorm once the row's mean and 1/sqrt(var + eps) are
 * known; b may be 0 when the layer has no bias.  (The CPU passes x - hi and
 * lo for a mean split in two floats, hi + lo, so a row with a large mean
 * and a small spread keeps its digits; see model.c.) */
QR_HD float qr_op_layernorm(float x, float mean, float inv, float w, float b)
{
    return (x - mean) * inv * w + b;
}

/* One element of softmax once the row's max and 1/sum(exp(x - max)) are
 * known.  (The CPU stores exp(x - max) while summing and multiplies it by
 * inv_sum afterwards: the same numbers, one exp per element.) */
QR_HD float qr_op_softmax(float x, float max, float inv_sum)
{
    return qr_op_exp(x - max) * inv_sum;
}

#endif
