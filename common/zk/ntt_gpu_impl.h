/* The GPU NTT over Fr as per-thread kernel bodies (QR_ZK_HD), launched one
 * thread per index by common/cuda/qr_cuda_zk.cu and run in loops on the
 * CPU by tests/unit/zk_gpu_emu.c, which checks them against ntt.c.
 *
 * The same transform as ntt.c, step for step, so the results are equal
 * (field arithmetic is exact; equal here means the same limbs):
 *   forward:  bit reversal, then log n stages of Cooley-Tukey butterflies,
 *             butterfly b of the stage with half-block m pairing
 *             (k, k + m), k = 2 (b - j) + j, j = b mod m, twiddle
 *             w^(j n / 2m) from a table of w^0 .. w^(n/2 - 1);
 *   inverse:  the forward transform, then a[i] <-> a[n - i] for
 *             0 < i < n/2 (w^-1 = w^(n-1)) and every element times 1/n;
 *   coset forward with shift s: a[i] *= s^i, then the forward transform.
 * Powers are computed without a sequential chain, which a GPU cannot
 * afford: x^e = prod over the set bits k of e of x^(2^k), from a table of
 * the log n squarings of x (made once on the host, a few hundred bytes).
 * 1/n = ((r + 1) / 2)^log n, so no inversion is needed on either side. */
#ifndef QR_ZK_NTT_GPU_IMPL_H
#define QR_ZK_NTT_GPU_IMPL_H

#include "bn254_field.h"

/* the largest log n (r - 1 = 2^28 t) */
#define QR_NTTG_MAX_LOG 28u

/* i with its low `bits` bits reversed */
QR_ZK_HD uint32_t qr_nttg_bitrev(uint32_t i, uint32_t bits)
{
    uint32_t x = i;
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
    x = (x >> 16) | (x << 16);
    return bits ? x >> (32 - bits) : 0;
}

/* w_k, the primitive 2^k-th root ntt.c uses (w_28 = 5^t, squared down) */
QR_ZK_HD void qr_nttg_root(qr_fr_t *r, uint32_t log_n)
{
    const qr_fr_t w28 = {QR_FR_ROOT28};
    *r = w28;
    for (uint32_t k = QR_FR_TWO_ADICITY; k > log_n; k--)
        qr_fr_sqr(r, r);
}

/* tab[k] = x^(2^k) for k < bits */
QR_ZK_HD void qr_nttg_pow2_table(qr_fr_t *tab, const qr_fr_t *x, uint32_t bits)
{
    qr_fr_t y = *x;
    for (uint32_t k = 0; k < bits; k++) {
        tab[k] = y;
        qr_fr_sqr(&y, &y);
    }
}

/* x^e from tab (tab[k] = x^(2^k), e < 2^bits) */
QR_ZK_HD void qr_nttg_pow(qr_fr_t *r, const qr_fr_t *tab, uint32_t e)
{
    qr_fr_one(r);
    for (uint32_t k = 0; e; k++, e >>= 1)
        if (e & 1u)
            qr_fr_mul(r, r, &tab[k]);
}

/* 1/2^log_n: (r + 1)/2 = r >> 1 plus one (r odd), raised to log_n */
QR_ZK_HD void qr_nttg_inv_pow2(qr_fr_t *r, uint32_t log_n)
{
    const uint64_t m[4] = QR_FR_MOD;
    uint64_t h[4] = {(m[0] >> 1) | (m[1] << 63), (m[1] >> 1) | (m[2] << 63),
                     (m[2] >> 1) | (m[3] << 63), m[3] >> 1};
    uint64_t c = 0;
    h[0] = qr_zk_adc(h[0], 1, &c);
    h[1] = qr_zk_adc(h[1], 0, &c);
    h[2] = qr_zk_adc(h[2], 0, &c);
    h[3] = qr_zk_adc(h[3], 0, &c);
    qr_fr_t half;
    qr_fr_from_canonical(&half, h);
    qr_fr_one(r);
    for (uint32_t k = 0; k < log_n; k++)
        qr_fr_mul(r, r, &half);
}

/* Kernel: thread j < n/2, tw[j] = w^j (pw = the pow2 table of w) */
QR_ZK_HD void qr_nttg_k_twiddle(size_t j, const qr_fr_t *pw, qr_fr_t *tw)
{
    qr_nttg_pow(&tw[j], pw, (uint32_t)j);
}

/* Kernel: thread i < n, swaps a[i] and a[bitrev(i)] once (the lower index
 * does it) */
QR_ZK_HD void qr_nttg_k_bitrev(size_t i, qr_fr_t *a, uint32_t log_n)
{
    uint32_t j = qr_nttg_bitrev((uint32_t)i, log_n);
    if ((uint32_t)i < j) {
        qr_fr_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Kernel: thread b < n/2, butterfly b of the stage with half-block m */
QR_ZK_HD void qr_nttg_k_stage(size_t b, qr_fr_t *a, const qr_fr_t *tw, size_t m, size_t n)
{
    size_t j = b & (m - 1), k = (b - j) * 2 + j, step = n / (2 * m);
    qr_fr_t t, u = a[k];
    if (j == 0)
        t = a[k + m];
    else
        qr_fr_mul(&t, &a[k + m], &tw[j * step]);
    qr_fr_add(&a[k], &u, &t);
    qr_fr_sub(&a[k + m], &u, &t);
}

/* Kernel: thread i <= n/2 (n >= 2), after the forward transform: the
 * inverse's index reversal and the factor 1/n */
QR_ZK_HD void qr_nttg_k_inverse_fix(size_t i, qr_fr_t *a, size_t n, const qr_fr_t *ninv)
{
    if (i == 0 || 2 * i == n) {
        qr_fr_mul(&a[i], &a[i], ninv);
        return;
    }
    qr_fr_t t = a[i];
    qr_fr_mul(&a[i], &a[n - i], ninv);
    qr_fr_mul(&a[n - i], &t, ninv);
}

/* Kernel: thread i < n, a[i] *= s^i (ps = the pow2 table of the shift) */
QR_ZK_HD void qr_nttg_k_coset_scale(size_t i, qr_fr_t *a, const qr_fr_t *ps)
{
    qr_fr_t f;
    qr_nttg_pow(&f, ps, (uint32_t)i);
    qr_fr_mul(&a[i], &a[i], &f);
}

#endif
