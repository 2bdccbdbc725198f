/* The Groth16 prover's GPU half (docs/gpu.md, docs/zk.md): MSM in G1 and
 * G2 and the radix-2 NTT over Fr, on host buffers, for the table entries
 * g1_msm, g2_msm and ntt of qr_cuda_abi.h.
 *
 * Every kernel is a grid-stride loop around a per-thread body from
 * common/zk/msm_gpu_impl.h or ntt_gpu_impl.h, whose arithmetic is the
 * QR_ZK_HD field and group law of common/zk (the code the CPU prover
 * runs); the host side here is the launch sequence, mirrored line for line
 * by the CPU grid emulator tests/unit/zk_gpu_emu.c, which is how CI tests
 * these kernels without a GPU.  The sort, the scans and the maximum are
 * CUB's (part of the toolkit).
 *
 * Memory: one scratch arena per context, grown to the largest call and
 * kept (an ai call that runs out of memory frees it), and the NTT's twiddle
 * table for the last size used.  A call uploads its inputs, queues every
 * kernel, and synchronises only where the host needs a count (the tiles of
 * each accumulation level) and at the end.
 *
 * Errors are -1 with a message naming the step; a sticky CUDA error marks
 * the context broken (qr_cuda.cu).  The caller (common/gpu.c, then the
 * prover's caller) falls back to the CPU. */
#include <cub/cub.cuh>
#include <cuda_runtime.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qr_cuda_int.h"
#include "zk/msm_gpu_impl.h"
#include "zk/ntt_gpu_impl.h"

/* threads a block: the curve kernels use many registers (a G2 Jacobian
 * point is 24 limbs), the others little */
#define S_EC_THREADS 128u
#define S_THREADS 256u
#define S_ALIGN 256u

struct qr_cuda_zk {
    void *arena;     /* scratch of the current call */
    size_t cap;      /* its bytes */
    qr_fr_t *tw;     /* twiddles w^0 .. w^(n/2 - 1) of size 2^tw_log, or NULL */
    uint32_t tw_log; /* their size */
};

void qr_cuda_zk_trim(qr_cuda_ctx_t *ctx)
{
    if (!ctx || !ctx->zk)
        return;
    if (ctx->zk->arena)
        cudaFree(ctx->zk->arena);
    if (ctx->zk->tw)
        cudaFree(ctx->zk->tw);
    free(ctx->zk);
    ctx->zk = NULL;
}

static int s_zk_state(qr_cuda_ctx_t *ctx, char *err, size_t errlen)
{
    if (ctx->zk)
        return 0;
    ctx->zk = (struct qr_cuda_zk *)calloc(1, sizeof *ctx->zk);
    if (!ctx->zk) {
        qr_cuda_errf(err, errlen, "out of host memory");
        return -1;
    }
    return 0;
}

/* The arena holds at least bytes (contents not kept). */
static int s_reserve(qr_cuda_ctx_t *ctx, size_t bytes, const char *what, char *err, size_t errlen)
{
    if (s_zk_state(ctx, err, errlen))
        return -1;
    struct qr_cuda_zk *z = ctx->zk;
    if (z->cap >= bytes)
        return 0;
    if (z->arena)
        cudaFree(z->arena);
    z->arena = NULL;
    z->cap = 0;
    if (qr_cuda_alloc(ctx, &z->arena, bytes, what, err, errlen))
        return -1;
    z->cap = bytes;
    return 0;
}

/* Carves arena space: first pass (base NULL) only counts. */
typedef struct {
    char *base;
    size_t off;
} s_carve_t;

template <typename T> static T *s_take(s_carve_t *c, size_t count)
{
    size_t at = (c->off + S_ALIGN - 1) / S_ALIGN * S_ALIGN;
    c->off = at + count * sizeof(T);
    return c->base ? (T *)(c->base + at) : NULL;
}

/* ---- the per-group bodies, by overload ---- */

static __host__ __device__ __forceinline__ void
s_tile_aff(size_t t, const uint32_t *toff, uint32_t nbt, const uint32_t *first, const uint32_t *cnt,
           const qr_g1_affine_t *bases, const uint32_t *vals, qr_g1_t *part)
{
    qr_g1_msmg_k_tile_aff(t, toff, nbt, first, cnt, bases, vals, part);
}
static __host__ __device__ __forceinline__ void
s_tile_aff(size_t t, const uint32_t *toff, uint32_t nbt, const uint32_t *first, const uint32_t *cnt,
           const qr_g2_affine_t *bases, const uint32_t *vals, qr_g2_t *part)
{
    qr_g2_msmg_k_tile_aff(t, toff, nbt, first, cnt, bases, vals, part);
}
static __host__ __device__ __forceinline__ void s_tile_jac(size_t t, const uint32_t *toff,
                                                           uint32_t nbt, const uint32_t *first,
                                                           const uint32_t *cnt, const qr_g1_t *in,
                                                           qr_g1_t *part)
{
    qr_g1_msmg_k_tile_jac(t, toff, nbt, first, cnt, in, part);
}
static __host__ __device__ __forceinline__ void s_tile_jac(size_t t, const uint32_t *toff,
                                                           uint32_t nbt, const uint32_t *first,
                                                           const uint32_t *cnt, const qr_g2_t *in,
                                                           qr_g2_t *part)
{
    qr_g2_msmg_k_tile_jac(t, toff, nbt, first, cnt, in, part);
}
static __host__ __device__ __forceinline__ void s_gather(size_t b, const uint32_t *toff,
                                                         const uint32_t *ntile, const qr_g1_t *part,
                                                         qr_g1_t *buckets)
{
    qr_g1_msmg_k_gather(b, toff, ntile, part, buckets);
}
static __host__ __device__ __forceinline__ void s_gather(size_t b, const uint32_t *toff,
                                                         const uint32_t *ntile, const qr_g2_t *part,
                                                         qr_g2_t *buckets)
{
    qr_g2_msmg_k_gather(b, toff, ntile, part, buckets);
}
static __host__ __device__ __forceinline__ void s_segment(size_t t, const qr_msmg_plan_t *p,
                                                          const qr_g1_t *buckets, qr_g1_t *segs)
{
    qr_g1_msmg_k_segment(t, p, buckets, segs);
}
static __host__ __device__ __forceinline__ void s_segment(size_t t, const qr_msmg_plan_t *p,
                                                          const qr_g2_t *buckets, qr_g2_t *segs)
{
    qr_g2_msmg_k_segment(t, p, buckets, segs);
}
static __host__ __device__ __forceinline__ void s_window(size_t w, const qr_msmg_plan_t *p,
                                                         const qr_g1_t *segs, qr_g1_t *wins)
{
    qr_g1_msmg_k_window(w, p, segs, wins);
}
static __host__ __device__ __forceinline__ void s_window(size_t w, const qr_msmg_plan_t *p,
                                                         const qr_g2_t *segs, qr_g2_t *wins)
{
    qr_g2_msmg_k_window(w, p, segs, wins);
}
static void s_join(qr_g1_t *out, const qr_g1_t *wins, const qr_msmg_plan_t *p)
{
    qr_g1_msmg_join(out, wins, p);
}
static void s_join(qr_g2_t *out, const qr_g2_t *wins, const qr_msmg_plan_t *p)
{
    qr_g2_msmg_join(out, wins, p);
}
static void s_set_inf(qr_g1_t *r)
{
    qr_g1_set_inf(r);
}
static void s_set_inf(qr_g2_t *r)
{
    qr_g2_set_inf(r);
}

/* ---- kernels: grid-stride loops around the bodies ---- */

/* grid-stride loop: for (size_t i = s_first(); i < n; i += s_stride()) */
static __device__ __forceinline__ size_t s_first(void)
{
    return blockIdx.x * (size_t)blockDim.x + threadIdx.x;
}

static __device__ __forceinline__ size_t s_stride(void)
{
    return (size_t)gridDim.x * blockDim.x;
}

__global__ void k_recode(const uint64_t *k, size_t n, qr_msmg_plan_t p, uint32_t *keys,
                         uint32_t *vals)
{
    for (size_t i = s_first(); i < n; i += s_stride())
        qr_msmg_k_recode(i, k, n, &p, keys, vals);
}

__global__ void k_bounds(const uint32_t *keys, size_t m, uint32_t nbt, uint32_t *first,
                         uint32_t *end)
{
    for (size_t t = s_first(); t < m; t += s_stride())
        qr_msmg_k_bounds(t, keys, m, nbt, first, end);
}

__global__ void k_count(size_t nbt, const uint32_t *first, uint32_t *end_cnt, uint32_t *ntile)
{
    for (size_t b = s_first(); b < nbt; b += s_stride())
        qr_msmg_k_count(b, first, end_cnt, ntile);
}

__global__ void k_next(size_t nbt, const uint32_t *prev_toff, const uint32_t *prev_ntile,
                       uint32_t *first, uint32_t *cnt, uint32_t *ntile)
{
    for (size_t b = s_first(); b < nbt; b += s_stride())
        qr_msmg_k_next(b, prev_toff, prev_ntile, first, cnt, ntile);
}

template <typename P, typename A>
__global__ void k_tile_aff(size_t tiles, const uint32_t *toff, uint32_t nbt, const uint32_t *first,
                           const uint32_t *cnt, const A *bases, const uint32_t *vals, P *part)
{
    for (size_t t = s_first(); t < tiles; t += s_stride())
        s_tile_aff(t, toff, nbt, first, cnt, bases, vals, part);
}

template <typename P>
__global__ void k_tile_jac(size_t tiles, const uint32_t *toff, uint32_t nbt, const uint32_t *first,
                           const uint32_t *cnt, const P *in, P *part)
{
    for (size_t t = s_first(); t < tiles; t += s_stride())
        s_tile_jac(t, toff, nbt, first, cnt, in, part);
}

template <typename P>
__global__ void k_gather(size_t nbt, const uint32_t *toff, const uint32_t *ntile, const P *part,
                         P *buckets)
{
    for (size_t b = s_first(); b < nbt; b += s_stride())
        s_gather(b, toff, ntile, part, buckets);
}

template <typename P> __global__ void k_segment(qr_msmg_plan_t p, const P *buckets, P *segs)
{
    for (size_t t = s_first(); t < (size_t)p.nwin * p.nseg; t += s_stride())
        s_segment(t, &p, buckets, segs);
}

template <typename P> __global__ void k_window(qr_msmg_plan_t p, const P *segs, P *wins)
{
    for (size_t w = s_first(); w < p.nwin; w += s_stride())
        s_window(w, &p, segs, wins);
}

/* ---- the MSM ---- */

/* The buffers of one MSM (s_msm_layout carves them) */
template <typename P, typename A> struct s_msm_bufs {
    A *bases;
    uint64_t *k;
    uint32_t *keys[2], *vals[2];                      /* the sort's double buffers */
    uint32_t *first[2], *cnt[2], *ntile[2], *toff[2]; /* per bucket, two levels in turn */
    uint32_t *max;                                    /* the largest bucket */
    P *part[2], *buckets, *segs, *wins;
    void *temp; /* CUB's scratch */
    size_t temp_bytes;
};

template <typename P, typename A>
static void s_msm_layout(s_carve_t *c, s_msm_bufs<P, A> *b, size_t n, const qr_msmg_plan_t *p,
                         size_t temp_bytes)
{
    size_t m = (size_t)p->nwin * n, nbt = p->nbt, tiles = m / QR_MSMG_TILE + nbt + 1;
    b->bases = s_take<A>(c, n);
    b->k = s_take<uint64_t>(c, 4 * n);
    for (int i = 0; i < 2; i++) {
        b->keys[i] = s_take<uint32_t>(c, m);
        b->vals[i] = s_take<uint32_t>(c, m);
        b->first[i] = s_take<uint32_t>(c, nbt);
        b->cnt[i] = s_take<uint32_t>(c, nbt);
        b->ntile[i] = s_take<uint32_t>(c, nbt);
        b->toff[i] = s_take<uint32_t>(c, nbt);
        b->part[i] = s_take<P>(c, tiles);
    }
    b->max = s_take<uint32_t>(c, 1);
    b->buckets = s_take<P>(c, nbt);
    b->segs = s_take<P>(c, (size_t)p->nwin * p->nseg);
    b->wins = s_take<P>(c, p->nwin);
    b->temp = s_take<char>(c, temp_bytes);
    b->temp_bytes = temp_bytes;
}

#define S_LAUNCH(what, ...)                                                                        \
    do {                                                                                           \
        __VA_ARGS__;                                                                               \
        if (qr_cuda_launched(ctx, what, err, errlen))                                              \
            return -1;                                                                             \
    } while (0)
#define S_CHECK(call, what)                                                                        \
    do {                                                                                           \
        if (qr_cuda_check(ctx, (call), what, err, errlen))                                         \
            return -1;                                                                             \
    } while (0)

/* The whole MSM on the device; the same steps as qr_zk_gpu_emu_g1_msm
 * (tests/unit/zk_gpu_emu.c). */
template <typename P, typename A>
static int s_msm_run(qr_cuda_ctx_t *ctx, P *out, const A *bases, const uint64_t *k, size_t n,
                     char *err, size_t errlen)
{
    cudaStream_t st = ctx->stream;
    qr_msmg_plan_t p = qr_msmg_plan(n, 0);
    size_t m = (size_t)p.nwin * n, nbt = p.nbt;
    /* CUB's scratch: the largest of what its three calls need */
    size_t tb_sort = 0, tb_scan = 0, tb_max = 0;
    {
        cub::DoubleBuffer<uint32_t> dk(NULL, NULL), dv(NULL, NULL);
        S_CHECK(
            cub::DeviceRadixSort::SortPairs(NULL, tb_sort, dk, dv, (int)m, 0, (int)p.key_bits, st),
            "CUB radix sort (sizing)");
        S_CHECK(cub::DeviceScan::ExclusiveSum(NULL, tb_scan, (uint32_t *)NULL, (uint32_t *)NULL,
                                              (int)nbt, st),
                "CUB scan (sizing)");
        S_CHECK(
            cub::DeviceReduce::Max(NULL, tb_max, (uint32_t *)NULL, (uint32_t *)NULL, (int)nbt, st),
            "CUB max (sizing)");
    }
    size_t tb = tb_sort > tb_scan ? tb_sort : tb_scan;
    tb = tb > tb_max ? tb : tb_max;
    s_msm_bufs<P, A> b;
    s_carve_t c = {NULL, 0};
    s_msm_layout(&c, &b, n, &p, tb);
    char what[96];
    snprintf(what, sizeof what, "the MSM of %zu points", n);
    if (s_reserve(ctx, c.off, what, err, errlen))
        return -1;
    c.base = (char *)ctx->zk->arena;
    c.off = 0;
    s_msm_layout(&c, &b, n, &p, tb);

    S_CHECK(cudaMemcpyAsync(b.bases, bases, n * sizeof(A), cudaMemcpyHostToDevice, st),
            "copying the MSM bases");
    S_CHECK(cudaMemcpyAsync(b.k, k, n * 32, cudaMemcpyHostToDevice, st), "copying the scalars");
    S_LAUNCH("MSM recode kernel", k_recode<<<qr_cuda_blocks(n, S_THREADS), S_THREADS, 0, st>>>(
                                      b.k, n, p, b.keys[0], b.vals[0]));
    cub::DoubleBuffer<uint32_t> dk(b.keys[0], b.keys[1]), dv(b.vals[0], b.vals[1]);
    S_CHECK(cub::DeviceRadixSort::SortPairs(b.temp, tb, dk, dv, (int)m, 0, (int)p.key_bits, st),
            "CUB radix sort of the MSM buckets");
    const uint32_t *keys = dk.Current(), *vals = dv.Current();
    S_CHECK(cudaMemsetAsync(b.first[0], 0, nbt * 4, st), "cudaMemset");
    S_CHECK(cudaMemsetAsync(b.cnt[0], 0, nbt * 4, st), "cudaMemset");
    S_LAUNCH("MSM bounds kernel", k_bounds<<<qr_cuda_blocks(m, S_THREADS), S_THREADS, 0, st>>>(
                                      keys, m, p.nbt, b.first[0], b.cnt[0]));
    S_LAUNCH("MSM count kernel", k_count<<<qr_cuda_blocks(nbt, S_THREADS), S_THREADS, 0, st>>>(
                                     nbt, b.first[0], b.cnt[0], b.ntile[0]));
    S_CHECK(cub::DeviceReduce::Max(b.temp, tb, b.cnt[0], b.max, (int)nbt, st), "CUB max");
    uint32_t max_cnt = 0;
    S_CHECK(cudaMemcpyAsync(&max_cnt, b.max, 4, cudaMemcpyDeviceToHost, st), "copying a count");
    S_CHECK(cudaStreamSynchronize(st), "MSM buckets");
    uint32_t levels = qr_msmg_levels(max_cnt), cur = 0;
    for (uint32_t lv = 0; lv < levels; lv++) {
        if (lv > 0) {
            S_LAUNCH("MSM level kernel",
                     k_next<<<qr_cuda_blocks(nbt, S_THREADS), S_THREADS, 0, st>>>(
                         nbt, b.toff[cur], b.ntile[cur], b.first[cur ^ 1], b.cnt[cur ^ 1],
                         b.ntile[cur ^ 1]));
            cur ^= 1;
        }
        S_CHECK(cub::DeviceScan::ExclusiveSum(b.temp, tb, b.ntile[cur], b.toff[cur], (int)nbt, st),
                "CUB scan of the MSM tiles");
        uint32_t last[2] = {0, 0};
        S_CHECK(cudaMemcpyAsync(&last[0], b.toff[cur] + nbt - 1, 4, cudaMemcpyDeviceToHost, st),
                "copying a count");
        S_CHECK(cudaMemcpyAsync(&last[1], b.ntile[cur] + nbt - 1, 4, cudaMemcpyDeviceToHost, st),
                "copying a count");
        S_CHECK(cudaStreamSynchronize(st), "MSM tiles");
        size_t tiles = (size_t)last[0] + last[1];
        if (tiles == 0)
            continue;
        if (lv == 0)
            S_LAUNCH(
                "MSM bucket kernel",
                (k_tile_aff<P, A><<<qr_cuda_blocks(tiles, S_EC_THREADS), S_EC_THREADS, 0, st>>>(
                    tiles, b.toff[cur], p.nbt, b.first[cur], b.cnt[cur], b.bases, vals,
                    b.part[cur])));
        else
            S_LAUNCH("MSM bucket level kernel",
                     (k_tile_jac<P><<<qr_cuda_blocks(tiles, S_EC_THREADS), S_EC_THREADS, 0, st>>>(
                         tiles, b.toff[cur], p.nbt, b.first[cur], b.cnt[cur], b.part[cur ^ 1],
                         b.part[cur])));
    }
    S_LAUNCH("MSM gather kernel",
             (k_gather<P><<<qr_cuda_blocks(nbt, S_THREADS), S_THREADS, 0, st>>>(
                 nbt, b.toff[cur], b.ntile[cur], b.part[cur], b.buckets)));
    S_LAUNCH("MSM reduction kernel",
             (k_segment<P>
              <<<qr_cuda_blocks((size_t)p.nwin * p.nseg, S_EC_THREADS), S_EC_THREADS, 0, st>>>(
                  p, b.buckets, b.segs)));
    S_LAUNCH("MSM window kernel", (k_window<P><<<1, 32, 0, st>>>(p, b.segs, b.wins)));
    P wins[(255 + QR_MSMG_MIN_C - 1) / QR_MSMG_MIN_C];
    S_CHECK(cudaMemcpyAsync(wins, b.wins, p.nwin * sizeof(P), cudaMemcpyDeviceToHost, st),
            "copying the window sums");
    S_CHECK(cudaStreamSynchronize(st), "MSM");
    s_join(out, wins, &p);
    return 0;
}

template <typename P, typename A>
static int s_msm(qr_cuda_ctx_t *ctx, uint64_t *out, const uint64_t *bases, const uint64_t *k,
                 size_t n, const char *group, char *err, size_t errlen)
{
    if (qr_cuda_enter(ctx, err, errlen))
        return -1;
    if (!out || (n && (!bases || !k)) || n > QR_MSMG_MAX_N) {
        qr_cuda_errf(err, errlen, "%s MSM: bad arguments (n=%zu, at most %zu)", group, n,
                     QR_MSMG_MAX_N);
        return -1;
    }
    P r;
    if (n == 0) {
        s_set_inf(&r);
        memcpy(out, &r, sizeof r);
        return 0;
    }
    int rc = s_msm_run<P, A>(ctx, &r, (const A *)bases, k, n, err, errlen);
    if (rc) {
        if (!ctx->broken[0])
            cudaStreamSynchronize(ctx->stream); /* nothing may still read the caller's buffers */
        (void)cudaGetLastError();
        return -1;
    }
    memcpy(out, &r, sizeof r);
    return 0;
}

int qr_cuda_zk_g1_msm(qr_cuda_ctx_t *ctx, uint64_t *out, const uint64_t *bases, const uint64_t *k,
                      size_t n, char *err, size_t errlen)
{
    return s_msm<qr_g1_t, qr_g1_affine_t>(ctx, out, bases, k, n, "G1", err, errlen);
}

int qr_cuda_zk_g2_msm(qr_cuda_ctx_t *ctx, uint64_t *out, const uint64_t *bases, const uint64_t *k,
                      size_t n, char *err, size_t errlen)
{
    return s_msm<qr_g2_t, qr_g2_affine_t>(ctx, out, bases, k, n, "G2", err, errlen);
}

/* ---- the NTT ---- */

/* a table of x^(2^k), passed to kernels by value */
typedef struct {
    qr_fr_t t[QR_NTTG_MAX_LOG];
} s_pow_tab_t;

__global__ void k_twiddle(size_t half, s_pow_tab_t pw, qr_fr_t *tw)
{
    for (size_t j = s_first(); j < half; j += s_stride())
        qr_nttg_k_twiddle(j, pw.t, tw);
}

__global__ void k_bitrev(size_t n, qr_fr_t *a, uint32_t log_n)
{
    for (size_t i = s_first(); i < n; i += s_stride())
        qr_nttg_k_bitrev(i, a, log_n);
}

__global__ void k_stage(size_t half, qr_fr_t *a, const qr_fr_t *tw, size_t m, size_t n)
{
    for (size_t b = s_first(); b < half; b += s_stride())
        qr_nttg_k_stage(b, a, tw, m, n);
}

__global__ void k_inverse_fix(size_t half, qr_fr_t *a, size_t n, qr_fr_t ninv)
{
    for (size_t i = s_first(); i <= half; i += s_stride())
        qr_nttg_k_inverse_fix(i, a, n, &ninv);
}

__global__ void k_coset_scale(size_t n, qr_fr_t *a, s_pow_tab_t ps)
{
    for (size_t i = s_first(); i < n; i += s_stride())
        qr_nttg_k_coset_scale(i, a, ps.t);
}

/* The twiddles of size 2^log_n on the device (cached for the next call) */
static int s_twiddles(qr_cuda_ctx_t *ctx, uint32_t log_n, char *err, size_t errlen)
{
    struct qr_cuda_zk *z = ctx->zk;
    if (z->tw && z->tw_log == log_n)
        return 0;
    if (z->tw)
        cudaFree(z->tw);
    z->tw = NULL;
    size_t half = ((size_t)1 << log_n) / 2;
    void *p = NULL;
    if (qr_cuda_alloc(ctx, &p, (half ? half : 1) * sizeof(qr_fr_t), "NTT twiddles", err, errlen))
        return -1;
    z->tw = (qr_fr_t *)p;
    z->tw_log = log_n;
    s_pow_tab_t pw;
    qr_fr_t w;
    qr_nttg_root(&w, log_n);
    qr_nttg_pow2_table(pw.t, &w, log_n);
    if (half) {
        k_twiddle<<<qr_cuda_blocks(half, S_THREADS), S_THREADS, 0, ctx->stream>>>(half, pw, z->tw);
        if (qr_cuda_launched(ctx, "NTT twiddle kernel", err, errlen)) {
            cudaFree(z->tw);
            z->tw = NULL;
            return -1;
        }
    }
    return 0;
}

static int s_ntt_run(qr_cuda_ctx_t *ctx, uint64_t *host, uint32_t log_n, unsigned ops,
                     const qr_fr_t *shift, char *err, size_t errlen)
{
    cudaStream_t st = ctx->stream;
    size_t n = (size_t)1 << log_n, half = n / 2;
    char what[64];
    snprintf(what, sizeof what, "an NTT of 2^%u", log_n);
    if (s_reserve(ctx, n * sizeof(qr_fr_t), what, err, errlen) ||
        s_twiddles(ctx, log_n, err, errlen))
        return -1;
    qr_fr_t *a = (qr_fr_t *)ctx->zk->arena;
    S_CHECK(cudaMemcpyAsync(a, host, n * sizeof(qr_fr_t), cudaMemcpyHostToDevice, st),
            "copying the NTT input");
    for (unsigned pass = 0; pass < 2; pass++) {
        bool inverse = pass == 0 && (ops & QR_CUDA_NTT_INVERSE);
        bool coset = pass == 1 && (ops & QR_CUDA_NTT_COSET_FORWARD);
        bool plain = pass == 1 && ops == 0;
        if (!inverse && !coset && !plain)
            continue;
        if (coset) {
            s_pow_tab_t ps;
            qr_nttg_pow2_table(ps.t, shift, log_n);
            S_LAUNCH("NTT coset kernel",
                     k_coset_scale<<<qr_cuda_blocks(n, S_THREADS), S_THREADS, 0, st>>>(n, a, ps));
        }
        if (n < 2)
            continue;
        S_LAUNCH("NTT bit reversal kernel",
                 k_bitrev<<<qr_cuda_blocks(n, S_THREADS), S_THREADS, 0, st>>>(n, a, log_n));
        for (size_t m = 1; m < n; m <<= 1)
            S_LAUNCH("NTT butterfly kernel",
                     k_stage<<<qr_cuda_blocks(half, S_THREADS), S_THREADS, 0, st>>>(
                         half, a, ctx->zk->tw, m, n));
        if (inverse) {
            qr_fr_t ninv;
            qr_nttg_inv_pow2(&ninv, log_n);
            S_LAUNCH("NTT inverse kernel",
                     k_inverse_fix<<<qr_cuda_blocks(half + 1, S_THREADS), S_THREADS, 0, st>>>(
                         half, a, n, ninv));
        }
    }
    S_CHECK(cudaMemcpyAsync(host, a, n * sizeof(qr_fr_t), cudaMemcpyDeviceToHost, st),
            "copying the NTT result");
    S_CHECK(cudaStreamSynchronize(st), "NTT");
    return 0;
}

int qr_cuda_zk_ntt(qr_cuda_ctx_t *ctx, uint64_t *a, unsigned log_n, unsigned ops,
                   const uint64_t *shift, char *err, size_t errlen)
{
    if (qr_cuda_enter(ctx, err, errlen))
        return -1;
    if (!a || log_n > QR_NTTG_MAX_LOG || ops > 3 || ((ops & QR_CUDA_NTT_COSET_FORWARD) && !shift)) {
        qr_cuda_errf(err, errlen, "NTT: bad arguments (log n %u, ops %u)", log_n, ops);
        return -1;
    }
    if (s_zk_state(ctx, err, errlen))
        return -1;
    qr_fr_t sh;
    if (shift)
        memcpy(&sh, shift, sizeof sh);
    else
        qr_fr_one(&sh);
    if (s_ntt_run(ctx, a, log_n, ops, &sh, err, errlen)) {
        if (!ctx->broken[0])
            cudaStreamSynchronize(ctx->stream);
        (void)cudaGetLastError();
        return -1;
    }
    return 0;
}
