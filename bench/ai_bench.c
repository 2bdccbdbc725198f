/* Inference throughput of the ai.infer runtime (common/model.c) on the CPU,
 * against raw cblas_sgemm on the same shapes, with and without batching
 * rows, and the cost of the broker's whole-result check (qr_model_check).
 *
 *   ai_bench [SHAPE=mlp] [WIDTH=1024] [BLOCKS=2] [ROWS=256] [REPS=20]
 *
 * SHAPE mlp: BLOCKS transformer MLP blocks of width WIDTH, each
 *   dense WIDTH -> 4 WIDTH + bias, gelu, dense 4 WIDTH -> WIDTH + bias,
 *   residual (the block's input), layernorm
 * (the feed-forward half of a GPT-2 medium / BERT-large layer at 1024).
 * SHAPE square: BLOCKS dense WIDTH -> WIDTH + bias each followed by gelu,
 * then a layernorm (the first figures of docs/benchmarks.md; more
 * element-wise work per flop than a transformer has).
 *
 * Weights are made here (fixed seed) as a safetensors image.  The raw sgemm
 * baseline runs the same chain of products (the model's own weights,
 * CblasTrans, buffers allocated once) and nothing else.  Prints figures
 * and, last, infer_gflops=X sgemm_gflops=Y ratio=Z verify_frac=W and more
 * key=value pairs.  Exits 1 when an honest result fails the check or a
 * tampered one passes. */
#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "model.h"
#include "safetensors.h"
#include "util.h"

static uint32_t s_rng = 12345;
static float s_rand(void)
{
    s_rng = s_rng * 1664525u + 1013904223u;
    return (float)(s_rng >> 8) / 16777216.0f - 0.5f; /* [-0.5, 0.5) */
}

/* A growing string. */
typedef struct {
    char *p;
    size_t n, cap;
} s_buf_t;

static void s_put(s_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_put(s_buf_t *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        b->cap = b->cap * 2 + (size_t)k + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
}

typedef struct {
    const char *name;
    uint32_t rows, cols; /* cols 0: a vector */
    float scale;
    float base; /* added to every value (layernorm weight 1) */
} s_tensor_t;

/* Appends a tensor named by fmt to ts. */
static void s_add(s_tensor_t *ts, char (*names)[16], size_t *nt, uint32_t rows, uint32_t cols,
                  float scale, float base, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
static void s_add(s_tensor_t *ts, char (*names)[16], size_t *nt, uint32_t rows, uint32_t cols,
                  float scale, float base, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(names[*nt], 16, fmt, ap);
    va_end(ap);
    ts[*nt] = (s_tensor_t){names[*nt], rows, cols, scale, base};
    (*nt)++;
}

int main(int argc, char **argv)
{
    const char *shape = argc > 1 ? argv[1] : "mlp";
    uint32_t width = argc > 2 ? (uint32_t)atoi(argv[2]) : 1024;
    uint32_t blocks = argc > 3 ? (uint32_t)atoi(argv[3]) : 2;
    uint32_t rows = argc > 4 ? (uint32_t)atoi(argv[4]) : 256;
    int reps = argc > 5 ? atoi(argv[5]) : 20;
    int mlp = strcmp(shape, "mlp") == 0;
    if ((!mlp && strcmp(shape, "square") != 0) || width < 1 || width > 8192 || blocks < 1 ||
        blocks > 64 || rows < 1 || rows > 65536 || reps < 1) {
        fprintf(stderr, "usage: ai_bench [mlp|square] [WIDTH] [BLOCKS] [ROWS] [REPS]\n");
        return 2;
    }
    uint32_t hidden = mlp ? 4 * width : width;

    /* tensors and graph; weights ~ U(-0.5, 0.5) / sqrt(fan_in) as an
     * initialised network, so activations stay O(1) through the blocks */
    s_tensor_t ts[64 * 6 + 2];
    size_t nt = 0;
    char names[64 * 6 + 2][16];
    s_buf_t g = {0};
    s_put(&g, "{\"input\":%u,\"layers\":[", width);
    uint32_t nlayers = 0;
    for (uint32_t l = 0; l < blocks; l++) {
        float s1 = 2.0f / sqrtf((float)width), s2 = 2.0f / sqrtf((float)hidden);
        s_add(ts, names, &nt, hidden, width, s1, 0, "w%u", l);
        s_add(ts, names, &nt, hidden, 0, 0.1f, 0, "b%u", l);
        s_put(&g, "%s{\"op\":\"dense\",\"weight\":\"w%u\",\"bias\":\"b%u\"},{\"op\":\"gelu\"}",
              l ? "," : "", l, l);
        nlayers += 2;
        if (mlp) {
            s_add(ts, names, &nt, width, hidden, s2, 0, "v%u", l);
            s_add(ts, names, &nt, width, 0, 0.1f, 0, "c%u", l);
            s_add(ts, names, &nt, width, 0, 0.2f, 1.0f, "g%u", l);
            s_add(ts, names, &nt, width, 0, 0.1f, 0, "h%u", l);
            /* the block's input: the model input, or the previous layernorm */
            s_put(&g,
                  ",{\"op\":\"dense\",\"weight\":\"v%u\",\"bias\":\"c%u\"},"
                  "{\"op\":\"residual\",\"from\":%d},"
                  "{\"op\":\"layernorm\",\"weight\":\"g%u\",\"bias\":\"h%u\"}",
                  l, l, (int)nlayers - 3, l, l);
            nlayers += 3;
        }
    }
    if (!mlp) {
        s_add(ts, names, &nt, width, 0, 0.2f, 1.0f, "ln.w");
        s_add(ts, names, &nt, width, 0, 0.1f, 0, "ln.b");
        s_put(&g, ",{\"op\":\"layernorm\",\"weight\":\"ln.w\",\"bias\":\"ln.b\"}");
        nlayers++;
    }
    s_put(&g, "]}");

    /* the safetensors image */
    s_buf_t h = {0};
    size_t off = 0;
    s_put(&h, "{");
    for (size_t i = 0; i < nt; i++) {
        size_t bytes = (size_t)ts[i].rows * (ts[i].cols ? ts[i].cols : 1) * 4;
        if (ts[i].cols)
            s_put(&h, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%u,%u],\"data_offsets\":[%zu,%zu]}",
                  i ? "," : "", ts[i].name, ts[i].rows, ts[i].cols, off, off + bytes);
        else
            s_put(&h, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%u],\"data_offsets\":[%zu,%zu]}",
                  i ? "," : "", ts[i].name, ts[i].rows, off, off + bytes);
        off += bytes;
    }
    s_put(&h, "}");
    size_t total = 8 + h.n + off;
    uint8_t *img = malloc(total);
    uint64_t hl = h.n;
    memcpy(img, &hl, 8);
    memcpy(img + 8, h.p, h.n);
    size_t k = 0;
    for (size_t i = 0; i < nt; i++)
        for (size_t j = 0; j < (size_t)ts[i].rows * (ts[i].cols ? ts[i].cols : 1); j++) {
            float v = ts[i].base + ts[i].scale * s_rand();
            memcpy(img + 8 + h.n + 4 * k++, &v, 4);
        }
    char err[512];
    qr_st_file_t *st = qr_st_parse(img, total, err, sizeof err);
    free(img);
    if (!st) {
        fprintf(stderr, "ai_bench: weights: %s\n", err);
        return 1;
    }
    qr_model_t *m = qr_model_new(g.p, g.n, st, err, sizeof err);
    if (!m) {
        fprintf(stderr, "ai_bench: model: %s\n", err);
        return 1;
    }
    float *x = malloc(sizeof(float) * rows * width);
    for (size_t i = 0; i < (size_t)rows * width; i++)
        x[i] = 2.0f * s_rand();
    double flop = 0; /* of the dense layers; the element-wise ones are not counted */
    for (uint32_t i = 0; i < qr_model_layers(m); i++) {
        uint32_t o, in;
        if (qr_model_dense(m, i, NULL, NULL, &o, &in) == 0)
            flop += 2.0 * rows * (double)o * in;
    }

    /* Batched: forward, the same products in raw sgemm (the model's own
     * weights, buffers allocated once, nothing else), interleaved rep by
     * rep and each the best of REPS: the machine may be shared, and the
     * minimum is the figure least disturbed by others. */
    float *bufs[2] = {malloc(sizeof(float) * rows * hidden), malloc(sizeof(float) * rows * hidden)};
    int64_t t0 = qr_clock_us();
    qr_model_probes_t *probes = qr_model_probes_new(m, 2, 0x5eed);
    double t_probes = (double)(qr_clock_us() - t0) / 1e6;
    const float **layers = malloc(sizeof *layers * nlayers);
    double t_fwd = 1e30, t_gemm = 1e30, t_chk = 1e30;
    int bad_layer, fails = 0;
    qr_model_acts_t *a = NULL;
    for (int r = -1; r < reps; r++) { /* rep -1 warms up */
        qr_model_acts_destroy(&a);
        t0 = qr_clock_us();
        a = qr_model_forward(m, x, rows, err, sizeof err);
        double t = (double)(qr_clock_us() - t0) / 1e6;
        if (!a) {
            fprintf(stderr, "ai_bench: forward: %s\n", err);
            return 1;
        }
        t_fwd = r >= 0 && t < t_fwd ? t : t_fwd;

        t0 = qr_clock_us();
        const float *in_p = x;
        int cur = 0;
        for (uint32_t i = 0; i < nlayers; i++) {
            const float *W;
            uint32_t o, in;
            if (qr_model_dense(m, i, &W, NULL, &o, &in) != 0)
                continue;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)o, (int)in, 1.0f,
                        in_p, (int)in, W, (int)in, 0.0f, bufs[cur], (int)o);
            in_p = bufs[cur];
            cur ^= 1;
        }
        t = (double)(qr_clock_us() - t0) / 1e6;
        t_gemm = r >= 0 && t < t_gemm ? t : t_gemm;
    }
    /* The check, on its own: it runs in the broker, not next to the
     * worker's sgemm; OpenBLAS's threads spin (sched_yield) for a while
     * after a product and on a machine whose two CPUs share a core they
     * would slow the check by half, so they are let go to sleep first. */
    for (uint32_t i = 0; i < nlayers; i++)
        layers[i] = qr_model_acts_layer(a, (int)i);
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    for (int r = -1; r < reps; r++) {
        t0 = qr_clock_us();
        if (qr_model_check(m, x, layers, rows, probes, &bad_layer, err, sizeof err) != 0) {
            fprintf(stderr, "ai_bench: the honest result FAILED the check: %s\n", err);
            fails = 1;
        }
        double t = (double)(qr_clock_us() - t0) / 1e6;
        t_chk = r >= 0 && t < t_chk ? t : t_chk;
    }
    /* the same check split over the CPUs, as the broker runs it: the
     * forward pass uses every CPU too (OpenBLAS), so this is the like-for-
     * like wall-time fraction */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int cthreads = ncpu > 1 ? (int)(ncpu < 4 ? ncpu : 4) : 1;
    double t_chk_mt = 1e30;
    nanosleep(&pause, NULL);
    for (int r = -1; r < reps; r++) {
        t0 = qr_clock_us();
        if (qr_model_check_mt(m, x, layers, rows, probes, cthreads, &bad_layer, err,
                              sizeof err) != 0) {
            fprintf(stderr, "ai_bench: the honest result FAILED the threaded check: %s\n", err);
            fails = 1;
        }
        double t = (double)(qr_clock_us() - t0) / 1e6;
        t_chk_mt = r >= 0 && t < t_chk_mt ? t : t_chk_mt;
    }
    /* how far below the bound honest dense results sit (1 = at the bound) */
    double worst = 0;
    for (uint32_t i = 0; i < nlayers; i++) {
        double w = 0;
        if (qr_model_dense(m, i, NULL, NULL, NULL, NULL) == 0 &&
            qr_model_verify_dense(m, i, qr_model_acts_layer(a, (int)i - 1), layers[i], rows, 2, 7,
                                  &w) == 0 &&
            w > worst)
            worst = w;
    }
    /* a tampered copy must fail: the middle element of the last layer */
    size_t last = (size_t)rows * qr_model_layer_width(m, nlayers - 1);
    float *tam = malloc(last * sizeof *tam);
    memcpy(tam, layers[nlayers - 1], last * sizeof *tam);
    tam[last / 2] += 0.01f;
    layers[nlayers - 1] = tam;
    if (qr_model_check(m, x, layers, rows, probes, &bad_layer, err, sizeof err) != 1) {
        fprintf(stderr, "ai_bench: a tampered result PASSED the check\n");
        fails = 1;
    }
    free(tam);
    qr_model_acts_destroy(&a);

    /* The same rows one at a time (no batching), each checked too: the
     * best of REPS passes over up to 64 rows, per row. */
    uint32_t single = rows < 64 ? rows : 64;
    double t_one = 1e30, t_one_chk = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        double tf = 0, tc = 0;
        for (uint32_t r = 0; r < single; r++) {
            t0 = qr_clock_us();
            a = qr_model_forward(m, x + (size_t)r * width, 1, err, sizeof err);
            tf += (double)(qr_clock_us() - t0) / 1e6;
            for (uint32_t i = 0; i < nlayers; i++)
                layers[i] = qr_model_acts_layer(a, (int)i);
            t0 = qr_clock_us();
            fails |= qr_model_check(m, x + (size_t)r * width, layers, 1, probes, NULL, err,
                                    sizeof err) != 0;
            tc += (double)(qr_clock_us() - t0) / 1e6;
            qr_model_acts_destroy(&a);
        }
        t_one = tf / single < t_one ? tf / single : t_one;
        t_one_chk = tc / single < t_one_chk ? tc / single : t_one_chk;
    }

    double gf = flop / t_fwd / 1e9, gg = flop / t_gemm / 1e9;
    if (mlp)
        printf("model: %u MLP blocks (dense %u->%u + bias, gelu, dense %u->%u + bias, residual, "
               "layernorm); rows=%u reps=%d\n",
               blocks, width, hidden, hidden, width, rows, reps);
    else
        printf("model: %u dense layers %ux%u + bias + gelu, then layernorm; rows=%u reps=%d\n",
               blocks, width, width, rows, reps);
    printf("forward batched:   %8.3f ms  %6.1f GFLOP/s  %8.0f rows/s\n", t_fwd * 1e3, gf,
           rows / t_fwd);
    printf("raw cblas_sgemm:   %8.3f ms  %6.1f GFLOP/s  (ratio %.3f)\n", t_gemm * 1e3, gg, gf / gg);
    printf("forward one row:   %8.3f ms  %8.0f rows/s (batching gains x%.1f)\n", t_one * 1e3,
           1.0 / t_one, (rows / t_fwd) * t_one);
    printf(
        "check batched:     %8.3f ms  (%.2f%% of the forward pass; probes made once in %.1f ms)\n",
        t_chk * 1e3, 100 * t_chk / t_fwd, t_probes * 1e3);
    printf("check, %d threads:  %8.3f ms  (%.2f%% of the forward pass, which uses every CPU)\n",
           cthreads, t_chk_mt * 1e3, 100 * t_chk_mt / t_fwd);
    printf("check one row:     %8.3f ms  (%.2f%% of a one-row forward pass)\n", t_one_chk * 1e3,
           100 * t_one_chk / t_one);
    printf("honest dense results use at most %.2g of the Freivalds bound\n", worst);
    printf(
        "infer_gflops=%.1f sgemm_gflops=%.1f ratio=%.3f verify_frac=%.4f rows_per_s_batched=%.0f "
        "rows_per_s_single=%.0f batch_speedup=%.1f verify_frac_single=%.4f "
        "verify_frac_1thread=%.4f check_threads=%d%s\n",
        gf, gg, gf / gg, t_chk_mt / t_fwd, rows / t_fwd, 1.0 / t_one, (rows / t_fwd) * t_one,
        t_one_chk / t_one, t_chk / t_fwd, cthreads, fails ? " FAILED" : "");
    qr_model_probes_destroy(&probes);
    qr_model_destroy(&m);
    qr_st_destroy(&st);
    free(layers);
    free(x);
    free(bufs[0]);
    free(bufs[1]);
    free(g.p);
    free(h.p);
    return fails;
}
