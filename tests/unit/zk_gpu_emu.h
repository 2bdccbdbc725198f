/* The grid emulator: the GPU MSM and NTT of common/cuda/qr_cuda_zk.cu run
 * on the CPU, every kernel a loop over its thread indices calling the same
 * per-thread bodies (common/zk/msm_gpu_impl.h, ntt_gpu_impl.h) in the same
 * order, with the sort and the scans the device takes from CUB done by
 * plain loops.  test_zk_gpu_emu checks it against qr_g1_msm / qr_ntt_*, and
 * the fake CUDA module (fake_cuda.c) computes with it, so the prover's GPU
 * hook runs the GPU's algorithm in every build.
 *
 * Single-threaded and slow (the point is the code path, not speed).  Each
 * function returns 0, or -1 on bad arguments or out of memory. */
#ifndef QR_ZK_GPU_EMU_H
#define QR_ZK_GPU_EMU_H

#include <stddef.h>
#include <stdint.h>

#include "bn254_curve.h"

/* out = sum k[i] bases[i]; k: n canonical scalars (4 limbs each, < r);
 * force_c 0 picks the window as the GPU does */
int qr_zk_gpu_emu_g1_msm(qr_g1_t *out, const qr_g1_affine_t *bases, const uint64_t *k, size_t n,
                         unsigned force_c);
int qr_zk_gpu_emu_g2_msm(qr_g2_t *out, const qr_g2_affine_t *bases, const uint64_t *k, size_t n,
                         unsigned force_c);

/* The NTT ops of the GPU module, in this order: QR_ZK_GPU_EMU_INVERSE
 * (qr_ntt_inverse), then QR_ZK_GPU_EMU_COSET (qr_ntt_coset_forward with
 * shift); 0 is the plain forward transform (qr_ntt_forward). */
#define QR_ZK_GPU_EMU_INVERSE 1u
#define QR_ZK_GPU_EMU_COSET 2u
int qr_zk_gpu_emu_ntt(qr_fr_t *a, unsigned log_n, unsigned ops, const qr_fr_t *shift);

#endif
