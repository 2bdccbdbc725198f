/* The grid emulator; see zk_gpu_emu.h.  Mirrors the host side of
 * common/cuda/qr_cuda_zk.cu (s_msm_run, s_ntt_run): keep the two in step. */
#include "zk_gpu_emu.h"

#include <stdlib.h>
#include <string.h>

#include "msm_gpu_impl.h"
#include "ntt_gpu_impl.h"

/* out[i] = sum of in[0..i) (CUB's DeviceScan::ExclusiveSum) */
static void s_scan(uint32_t *out, const uint32_t *in, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = in[i];
        out[i] = s;
        s += v;
    }
}

/* stable counting sort by key (the device sorts by radix, also stable) */
static int s_sort(uint32_t *keys, uint32_t *vals, size_t m, uint32_t nkeys)
{
    uint32_t *cnt = calloc((size_t)nkeys + 1, sizeof *cnt);
    uint32_t *k2 = malloc(m * sizeof *k2), *v2 = malloc(m * sizeof *v2);
    if (!cnt || !k2 || !v2) {
        free(cnt);
        free(k2);
        free(v2);
        return -1;
    }
    for (size_t i = 0; i < m; i++)
        cnt[keys[i]]++;
    s_scan(cnt, cnt, (size_t)nkeys + 1);
    for (size_t i = 0; i < m; i++) {
        uint32_t at = cnt[keys[i]]++;
        k2[at] = keys[i];
        v2[at] = vals[i];
    }
    memcpy(keys, k2, m * sizeof *keys);
    memcpy(vals, v2, m * sizeof *vals);
    free(cnt);
    free(k2);
    free(v2);
    return 0;
}

/* The MSM for one group: the same kernels in the same order as the device,
 * with the same buffers (two sets of per-bucket arrays used in turn). */
#define S_EMU_MSM(NAME, P, A, G)                                                                   \
    int NAME(P *out, const A *bases, const uint64_t *k, size_t n, unsigned force_c)                \
    {                                                                                              \
        if ((n && (!bases || !k)) || !out || n > QR_MSMG_MAX_N)                                    \
            return -1;                                                                             \
        if (n == 0) {                                                                              \
            G##_set_inf(out);                                                                      \
            return 0;                                                                              \
        }                                                                                          \
        qr_msmg_plan_t p = qr_msmg_plan(n, force_c);                                               \
        size_t m = (size_t)p.nwin * n, nbt = p.nbt;                                                \
        int rc = -1;                                                                               \
        uint32_t *keys = malloc(m * 4), *vals = malloc(m * 4);                                     \
        uint32_t *first[2] = {calloc(nbt, 4), calloc(nbt, 4)};                                     \
        uint32_t *cnt[2] = {calloc(nbt, 4), calloc(nbt, 4)};                                       \
        uint32_t *ntile[2] = {calloc(nbt, 4), calloc(nbt, 4)};                                     \
        uint32_t *toff[2] = {calloc(nbt, 4), calloc(nbt, 4)};                                      \
        P *part[2] = {NULL, NULL}, *buckets = malloc(nbt * sizeof(P));                             \
        P *segs = malloc((size_t)p.nwin * p.nseg * sizeof(P)), *wins = malloc(p.nwin * sizeof(P)); \
        if (!keys || !vals || !first[0] || !first[1] || !cnt[0] || !cnt[1] || !ntile[0] ||         \
            !ntile[1] || !toff[0] || !toff[1] || !buckets || !segs || !wins)                       \
            goto done;                                                                             \
        for (size_t i = 0; i < n; i++)                                                             \
            qr_msmg_k_recode(i, k, n, &p, keys, vals);                                             \
        if (s_sort(keys, vals, m, p.nbt + 1))                                                      \
            goto done;                                                                             \
        for (size_t t = 0; t < m; t++)                                                             \
            qr_msmg_k_bounds(t, keys, m, p.nbt, first[0], cnt[0]);                                 \
        for (size_t b = 0; b < nbt; b++)                                                           \
            qr_msmg_k_count(b, first[0], cnt[0], ntile[0]);                                        \
        uint32_t max_cnt = 0;                                                                      \
        for (size_t b = 0; b < nbt; b++)                                                           \
            max_cnt = cnt[0][b] > max_cnt ? cnt[0][b] : max_cnt;                                   \
        uint32_t levels = qr_msmg_levels(max_cnt), cur = 0;                                        \
        for (uint32_t lv = 0; lv < levels; lv++) {                                                 \
            if (lv > 0) {                                                                          \
                for (size_t b = 0; b < nbt; b++)                                                   \
                    qr_msmg_k_next(b, toff[cur], ntile[cur], first[cur ^ 1], cnt[cur ^ 1],         \
                                   ntile[cur ^ 1]);                                                \
                cur ^= 1;                                                                          \
            }                                                                                      \
            s_scan(toff[cur], ntile[cur], nbt);                                                    \
            size_t tiles = (size_t)toff[cur][nbt - 1] + ntile[cur][nbt - 1];                       \
            free(part[cur]);                                                                       \
            part[cur] = malloc((tiles ? tiles : 1) * sizeof(P));                                   \
            if (!part[cur])                                                                        \
                goto done;                                                                         \
            for (size_t t = 0; t < tiles; t++) {                                                   \
                if (lv == 0)                                                                       \
                    G##_msmg_k_tile_aff(t, toff[cur], p.nbt, first[cur], cnt[cur], bases, vals,    \
                                        part[cur]);                                                \
                else                                                                               \
                    G##_msmg_k_tile_jac(t, toff[cur], p.nbt, first[cur], cnt[cur], part[cur ^ 1],  \
                                        part[cur]);                                                \
            }                                                                                      \
        }                                                                                          \
        for (size_t b = 0; b < nbt; b++)                                                           \
            G##_msmg_k_gather(b, toff[cur], ntile[cur], part[cur], buckets);                       \
        for (size_t t = 0; t < (size_t)p.nwin * p.nseg; t++)                                       \
            G##_msmg_k_segment(t, &p, buckets, segs);                                              \
        for (size_t w = 0; w < p.nwin; w++)                                                        \
            G##_msmg_k_window(w, &p, segs, wins);                                                  \
        G##_msmg_join(out, wins, &p);                                                              \
        rc = 0;                                                                                    \
    done:                                                                                          \
        free(keys);                                                                                \
        free(vals);                                                                                \
        for (int i = 0; i < 2; i++) {                                                              \
            free(first[i]);                                                                        \
            free(cnt[i]);                                                                          \
            free(ntile[i]);                                                                        \
            free(toff[i]);                                                                         \
            free(part[i]);                                                                         \
        }                                                                                          \
        free(buckets);                                                                             \
        free(segs);                                                                                \
        free(wins);                                                                                \
        return rc;                                                                                 \
    }

S_EMU_MSM(qr_zk_gpu_emu_g1_msm, qr_g1_t, qr_g1_affine_t, qr_g1)
S_EMU_MSM(qr_zk_gpu_emu_g2_msm, qr_g2_t, qr_g2_affine_t, qr_g2)

int qr_zk_gpu_emu_ntt(qr_fr_t *a, unsigned log_n, unsigned ops, const qr_fr_t *shift)
{
    if (!a || log_n > QR_NTTG_MAX_LOG || ops > 3 || ((ops & QR_ZK_GPU_EMU_COSET) && !shift))
        return -1;
    size_t n = (size_t)1 << log_n;
    qr_fr_t pw[QR_NTTG_MAX_LOG + 1], ps[QR_NTTG_MAX_LOG + 1], w, ninv;
    qr_fr_t *tw = malloc((n / 2 ? n / 2 : 1) * sizeof *tw);
    if (!tw)
        return -1;
    qr_nttg_root(&w, log_n);
    qr_nttg_pow2_table(pw, &w, log_n);
    for (size_t j = 0; j < n / 2; j++)
        qr_nttg_k_twiddle(j, pw, tw);
    for (unsigned pass = 0; pass < 2; pass++) {
        bool inverse = pass == 0 && (ops & QR_ZK_GPU_EMU_INVERSE);
        bool coset = pass == 1 && (ops & QR_ZK_GPU_EMU_COSET);
        bool plain = pass == 1 && ops == 0;
        if (!inverse && !coset && !plain)
            continue;
        if (coset) {
            qr_nttg_pow2_table(ps, shift, log_n);
            for (size_t i = 0; i < n; i++)
                qr_nttg_k_coset_scale(i, a, ps);
        }
        if (n < 2)
            continue;
        for (size_t i = 0; i < n; i++)
            qr_nttg_k_bitrev(i, a, log_n);
        for (size_t m = 1; m < n; m <<= 1)
            for (size_t b = 0; b < n / 2; b++)
                qr_nttg_k_stage(b, a, tw, m, n);
        if (inverse) {
            qr_nttg_inv_pow2(&ninv, log_n);
            for (size_t i = 0; i <= n / 2; i++)
                qr_nttg_k_inverse_fix(i, a, n, &ninv);
        }
    }
    free(tw);
    return 0;
}
