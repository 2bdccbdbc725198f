/* The GPU multi-scalar multiplication, written as per-thread kernel bodies
 * (QR_ZK_HD) that common/cuda/qr_cuda_zk.cu launches one thread per index,
 * and that tests/unit/zk_gpu_emu.c runs in plain loops on the CPU (the
 * "grid emulator"), so the GPU's algorithm and arithmetic are tested in
 * every build, GPU or not, against qr_g1_msm / qr_g2_msm.
 *
 * Pippenger with every window at once (sum_i k_i P_i, k_i canonical, < r):
 *
 *   1. recode  (thread per scalar i): signed c-bit digits d_{w,i} in
 *      [-2^(c-1), 2^(c-1)], nwin = ceil(255 / c) windows (the top one never
 *      recoded: it has at most c - 1 bits plus a carry).  Each digit becomes
 *      an entry at [w n + i]: key = w nb + |d| - 1 (its bucket; nb = 2^(c-1)
 *      buckets a window, nbt = nwin nb in all), value = i with the sign in
 *      bit 31; a zero digit gets key nbt (sorted past every bucket).
 *   2. sort the entries by key (the GPU: a CUB radix sort over the key's
 *      bits; the emulator: a counting sort; stable or not, addition commutes)
 *      and find each bucket's run in the sorted array (thread per position:
 *      a run starts where the key changes), first[b] and cnt[b].
 *   3. accumulate, in levels, each bucket's run into one point: a bucket of
 *      cnt entries is cut into ceil(cnt / T) tiles of T = QR_MSMG_TILE
 *      entries, one thread per tile (the tiles' offsets are an exclusive
 *      scan of the per-bucket tile counts; a thread finds its bucket by
 *      binary search), summing affine bases by mixed additions into a
 *      Jacobian partial.  While some bucket still has more than one
 *      partial, the next level sums its partials T at a time the same way.
 *      A skewed input (a witness full of 0s and 1s puts most points in one
 *      bucket) thus costs log_T(n) levels instead of one thread adding n
 *      points.  Then gather: bucket b = its one partial, or infinity.
 *   4. reduce (thread per window segment): window w's sum is
 *      sum_b (b + 1) B_b.  Its nb buckets are cut into nseg segments of L;
 *      a segment [lo, lo + L) computes by the running sum
 *          R = sum_{b in seg} (b - lo + 1) B_b,   S = sum_{b in seg} B_b
 *      and contributes R + lo S (lo S by double-and-add on a small
 *      integer); then one thread per window adds its segments.
 *   5. join on the host: Horner, sum_w 2^(c w) W_w (c doublings a window).
 *
 * Everything here is the CUDA-independent part: digits, keys, run bounds,
 * tile location, the tile sums, the reduction formula and the join.  The
 * sort and the scans are each runtime's own (CUB on the device).  Memory
 * per call, n points: 16 nwin n bytes of keys and values (double-buffered
 * for the sort: 256 MiB at n = 2^20, c = 16), the partials and buckets
 * (96 bytes a G1 point, 192 a G2 point).
 *
 * Nothing here is constant-time (the group law branches on special cases). */
#ifndef QR_ZK_MSM_GPU_IMPL_H
#define QR_ZK_MSM_GPU_IMPL_H

#include "bn254_curve.h"

/* entries summed by one thread at each accumulation level */
#define QR_MSMG_TILE 32u
/* sign of an entry's value (the point index is below it) */
#define QR_MSMG_NEG 0x80000000u
/* window width limits, and the largest n (entries nwin n must fit the sort's
 * int count: 16 windows x 2^26 = 2^30) */
#define QR_MSMG_MIN_C 2u
#define QR_MSMG_MAX_C 16u
#define QR_MSMG_MAX_N ((size_t)1 << 26)
/* at most this many segments a window in the reduction */
#define QR_MSMG_MAX_SEG 256u

typedef struct {
    uint32_t c;        /* window bits */
    uint32_t nwin;     /* windows, ceil(255 / c) */
    uint32_t nb;       /* buckets a window, 2^(c-1) */
    uint32_t nbt;      /* buckets in all, nwin nb (also the key of a zero digit) */
    uint32_t nseg;     /* reduction segments a window (a power of two <= nb) */
    uint32_t seg;      /* buckets a segment, nb / nseg */
    uint32_t key_bits; /* bits of a key, for the radix sort: keys <= nbt */
} qr_msmg_plan_t;

/* The plan for n points; force_c (2..16) fixes the window, 0 picks by the
 * cost nwin (n + 3 nb): n mixed additions a window, and per bucket two
 * Jacobian additions of the reduction (1.5x a mixed one) */
QR_ZK_HD qr_msmg_plan_t qr_msmg_plan(size_t n, uint32_t force_c)
{
    qr_msmg_plan_t p;
    uint32_t best = QR_MSMG_MIN_C;
    double best_cost = 1e300;
    for (uint32_t c = QR_MSMG_MIN_C; c <= QR_MSMG_MAX_C; c++) {
        uint32_t nwin = (255 + c - 1) / c;
        double cost = (double)nwin * ((double)n + 3.0 * (double)(1u << (c - 1)));
        if (cost < best_cost) {
            best_cost = cost;
            best = c;
        }
    }
    if (force_c >= QR_MSMG_MIN_C && force_c <= QR_MSMG_MAX_C)
        best = force_c;
    p.c = best;
    p.nwin = (255 + best - 1) / best;
    p.nb = 1u << (best - 1);
    p.nbt = p.nwin * p.nb;
    /* enough segments for a few thousand threads, none shorter than 16
     * buckets (each segment costs a small scalar multiplication) */
    uint32_t nseg = 1;
    while (nseg * 2 <= QR_MSMG_MAX_SEG && p.nb / (nseg * 2) >= 16 && p.nwin * nseg < 4096)
        nseg *= 2;
    p.nseg = nseg;
    p.seg = p.nb / nseg;
    uint32_t bits = 1;
    while (bits < 32 && (p.nbt >> bits) != 0)
        bits++;
    p.key_bits = bits;
    return p;
}

/* bits [pos, pos + c) of k, c <= 16 (zero past bit 255) */
QR_ZK_HD uint32_t qr_msmg_bits(const uint64_t k[4], uint32_t pos, uint32_t c)
{
    uint32_t w = pos / 64, o = pos % 64;
    if (w >= 4)
        return 0;
    uint64_t v = k[w] >> o;
    if (o + c > 64 && w + 1 < 4)
        v |= k[w + 1] << (64 - o);
    return (uint32_t)(v & ((1u << c) - 1));
}

/* Signed digit of window w given the carry out of window w - 1 (updated for
 * window w + 1): below the top, a value >= 2^(c-1) becomes value - 2^c and
 * carries one; the top window keeps its value (at most 2^(c-1)). */
QR_ZK_HD int32_t qr_msmg_digit(const uint64_t k[4], uint32_t w, const qr_msmg_plan_t *p,
                               uint32_t *carry)
{
    uint32_t v = qr_msmg_bits(k, w * p->c, p->c) + *carry;
    *carry = 0;
    if (v >= p->nb && w + 1 < p->nwin) {
        *carry = 1;
        return (int32_t)v - (int32_t)(2 * p->nb);
    }
    return (int32_t)v;
}

/* Kernel 1, thread i < n: scalar i's entries at [w n + i] */
QR_ZK_HD void qr_msmg_k_recode(size_t i, const uint64_t *k, size_t n, const qr_msmg_plan_t *p,
                               uint32_t *keys, uint32_t *vals)
{
    uint32_t carry = 0;
    const uint64_t *ki = k + 4 * i;
    for (uint32_t w = 0; w < p->nwin; w++) {
        int32_t d = qr_msmg_digit(ki, w, p, &carry);
        size_t at = (size_t)w * n + i;
        if (d == 0) {
            keys[at] = p->nbt;
            vals[at] = (uint32_t)i;
        } else {
            uint32_t mag = (uint32_t)(d < 0 ? -d : d);
            keys[at] = w * p->nb + mag - 1;
            vals[at] = (uint32_t)i | (d < 0 ? QR_MSMG_NEG : 0);
        }
    }
}

/* Kernel 2, thread t < m over the sorted keys: records where each bucket's
 * run starts and ends (first[] and end[] zeroed beforehand, so an empty
 * bucket has first = end = 0). */
QR_ZK_HD void qr_msmg_k_bounds(size_t t, const uint32_t *keys, size_t m, uint32_t nbt,
                               uint32_t *first, uint32_t *end)
{
    uint32_t k = keys[t];
    if (k >= nbt)
        return;
    if (t == 0 || keys[t - 1] != k)
        first[k] = (uint32_t)t;
    if (t + 1 == m || keys[t + 1] != k)
        end[k] = (uint32_t)(t + 1);
}

/* tiles for cnt entries */
QR_ZK_HD uint32_t qr_msmg_tiles(uint32_t cnt)
{
    return (cnt + QR_MSMG_TILE - 1) / QR_MSMG_TILE;
}

/* Kernel 3a, thread b < nbt: cnt[b] from the run bounds (in place over end)
 * and the bucket's tile count */
QR_ZK_HD void qr_msmg_k_count(size_t b, const uint32_t *first, uint32_t *end_cnt, uint32_t *ntile)
{
    uint32_t c = end_cnt[b] - first[b];
    end_cnt[b] = c;
    ntile[b] = qr_msmg_tiles(c);
}

/* Kernel 3b, thread b < nbt of a later level: the bucket's partials
 * become its entries (first = the previous tile offset, cnt = the previous
 * tile count) and its new tile count */
QR_ZK_HD void qr_msmg_k_next(size_t b, const uint32_t *prev_toff, const uint32_t *prev_ntile,
                             uint32_t *first, uint32_t *cnt, uint32_t *ntile)
{
    first[b] = prev_toff[b];
    cnt[b] = prev_ntile[b];
    ntile[b] = qr_msmg_tiles(prev_ntile[b]);
}

/* The bucket that tile t belongs to: the last b with toff[b] <= t (toff the
 * exclusive scan of the tile counts, so empty buckets before it share its
 * offset and the ones after start past t). */
QR_ZK_HD uint32_t qr_msmg_locate(const uint32_t *toff, uint32_t nbt, uint32_t t)
{
    uint32_t lo = 0, hi = nbt; /* answer in [lo, hi) */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (toff[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Levels after the first while the largest tile count exceeds one; max_cnt
 * is the largest bucket. */
QR_ZK_HD uint32_t qr_msmg_levels(uint32_t max_cnt)
{
    uint32_t levels = 1, m = qr_msmg_tiles(max_cnt);
    while (m > 1) {
        m = qr_msmg_tiles(m);
        levels++;
    }
    return levels;
}

/* One macro writes the group-specific bodies for G1 and G2 (P Jacobian, A
 * affine, G the group prefix, F the field prefix), as bn254_curve.h does
 * for the group law. */
#define QR_MSMG_GROUP_OPS(P, A, G, F)                                                              \
    /* Kernel 4 (level 1), thread t < tiles: the affine entries of tile t,                         \
     * signed, summed into part[t] */                                                              \
    QR_ZK_HD void G##_msmg_k_tile_aff(size_t t, const uint32_t *toff, uint32_t nbt,                \
                                      const uint32_t *first, const uint32_t *cnt, const A *bases,  \
                                      const uint32_t *vals, P *part)                               \
    {                                                                                              \
        uint32_t b = qr_msmg_locate(toff, nbt, (uint32_t)t);                                       \
        uint32_t j = (uint32_t)t - toff[b];                                                        \
        uint32_t begin = first[b] + j * QR_MSMG_TILE, len = cnt[b] - j * QR_MSMG_TILE;             \
        if (len > QR_MSMG_TILE)                                                                    \
            len = QR_MSMG_TILE;                                                                    \
        P acc;                                                                                     \
        G##_set_inf(&acc);                                                                         \
        for (uint32_t e = begin; e < begin + len; e++) {                                           \
            uint32_t v = vals[e];                                                                  \
            A q = bases[v & ~QR_MSMG_NEG];                                                         \
            if (v & QR_MSMG_NEG)                                                                   \
                F##_neg(&q.y, &q.y);                                                               \
            G##_add_mixed(&acc, &acc, &q);                                                         \
        }                                                                                          \
        part[t] = acc;                                                                             \
    }                                                                                              \
    /* Kernel 4 (later levels), thread t < tiles: partials of tile t summed */                     \
    QR_ZK_HD void G##_msmg_k_tile_jac(size_t t, const uint32_t *toff, uint32_t nbt,                \
                                      const uint32_t *first, const uint32_t *cnt, const P *in,     \
                                      P *part)                                                     \
    {                                                                                              \
        uint32_t b = qr_msmg_locate(toff, nbt, (uint32_t)t);                                       \
        uint32_t j = (uint32_t)t - toff[b];                                                        \
        uint32_t begin = first[b] + j * QR_MSMG_TILE, len = cnt[b] - j * QR_MSMG_TILE;             \
        if (len > QR_MSMG_TILE)                                                                    \
            len = QR_MSMG_TILE;                                                                    \
        P acc = in[begin];                                                                         \
        for (uint32_t e = begin + 1; e < begin + len; e++)                                         \
            G##_add(&acc, &acc, &in[e]);                                                           \
        part[t] = acc;                                                                             \
    }                                                                                              \
    /* Kernel 5, thread b < nbt: the bucket's one partial, or infinity */                          \
    QR_ZK_HD void G##_msmg_k_gather(size_t b, const uint32_t *toff, const uint32_t *ntile,         \
                                    const P *part, P *buckets)                                     \
    {                                                                                              \
        if (ntile[b])                                                                              \
            buckets[b] = part[toff[b]];                                                            \
        else                                                                                       \
            G##_set_inf(&buckets[b]);                                                              \
    }                                                                                              \
    /* k a (k < 2^32, small), double-and-add from the top bit */                                   \
    QR_ZK_HD void G##_msmg_mul_small(P *r, const P *a, uint32_t k)                                 \
    {                                                                                              \
        P acc;                                                                                     \
        G##_set_inf(&acc);                                                                         \
        for (int bit = 31; bit >= 0; bit--) {                                                      \
            if (!G##_is_inf(&acc))                                                                 \
                G##_dbl(&acc, &acc);                                                               \
            if ((k >> bit) & 1u)                                                                   \
                G##_add(&acc, &acc, a);                                                            \
        }                                                                                          \
        *r = acc;                                                                                  \
    }                                                                                              \
    /* Kernel 6, thread t < nwin nseg (window t / nseg, segment t % nseg):                         \
     * R + lo S of the segment's buckets (see the header comment) */                               \
    QR_ZK_HD void G##_msmg_k_segment(size_t t, const qr_msmg_plan_t *p, const P *buckets, P *segs) \
    {                                                                                              \
        uint32_t w = (uint32_t)t / p->nseg, s = (uint32_t)t % p->nseg;                             \
        uint32_t lo = s * p->seg;                                                                  \
        const P *bk = buckets + (size_t)w * p->nb;                                                 \
        P run, sum, t2;                                                                            \
        G##_set_inf(&run);                                                                         \
        G##_set_inf(&sum);                                                                         \
        for (uint32_t b = lo + p->seg; b-- > lo;) {                                                \
            G##_add(&run, &run, &bk[b]);                                                           \
            G##_add(&sum, &sum, &run);                                                             \
        }                                                                                          \
        G##_msmg_mul_small(&t2, &run, lo);                                                         \
        G##_add(&segs[t], &sum, &t2);                                                              \
    }                                                                                              \
    /* Kernel 7, thread w < nwin: the window's segments added */                                   \
    QR_ZK_HD void G##_msmg_k_window(size_t w, const qr_msmg_plan_t *p, const P *segs, P *wins)     \
    {                                                                                              \
        P acc = segs[w * p->nseg];                                                                 \
        for (uint32_t s = 1; s < p->nseg; s++)                                                     \
            G##_add(&acc, &acc, &segs[w * p->nseg + s]);                                           \
        wins[w] = acc;                                                                             \
    }                                                                                              \
    /* Host: out = sum_w 2^(c w) wins[w] (Horner from the top window) */                           \
    QR_ZK_HD void G##_msmg_join(P *out, const P *wins, const qr_msmg_plan_t *p)                    \
    {                                                                                              \
        P acc = wins[p->nwin - 1];                                                                 \
        for (uint32_t w = p->nwin - 1; w-- > 0;) {                                                 \
            for (uint32_t i = 0; i < p->c && !G##_is_inf(&acc); i++)                               \
                G##_dbl(&acc, &acc);                                                               \
            G##_add(&acc, &acc, &wins[w]);                                                         \
        }                                                                                          \
        *out = acc;                                                                                \
    }

QR_MSMG_GROUP_OPS(qr_g1_t, qr_g1_affine_t, qr_g1, qr_fp)
QR_MSMG_GROUP_OPS(qr_g2_t, qr_g2_affine_t, qr_g2, qr_fp2)

#endif
