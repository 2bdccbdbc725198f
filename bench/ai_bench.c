/* Inference throughput of the ai.infer runtime (common/model.c) on the CPU,
 * against raw cblas_sgemm on the same shapes, with and without batching rows,
 * and the cost of checking every dense layer with Freivalds.
 *
 *   ai_bench [WIDTH=1024] [LAYERS=4] [ROWS=256] [REPS=20]
 *
 * The model is WIDTH -> WIDTH dense layers with bias, each followed by GELU,
 * then a layernorm: weights made here (fixed seed) as a safetensors image.
 * Prints figures and, last, infer_gflops=X sgemm_gflops=Y ratio=Z
 * verify_frac=W (plus rows_per_s batched and one row at a time). */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "safetensors.h"
#include "util.h"

static uint32_t s_rng = 12345;
static float s_rand(void)
{
    s_rng = s_rng * 1664525u + 1013904223u;
    return ((float)(s_rng >> 8) / 16777216.0f - 0.5f) * 0.1f;
}

int main(int argc, char **argv)
{
    uint32_t width = argc > 1 ? (uint32_t)atoi(argv[1]) : 1024;
    uint32_t layers = argc > 2 ? (uint32_t)atoi(argv[2]) : 4;
    uint32_t rows = argc > 3 ? (uint32_t)atoi(argv[3]) : 256;
    int reps = argc > 4 ? atoi(argv[4]) : 20;
    if (width < 1 || width > 8192 || layers < 1 || layers > 64 || rows < 1 || rows > 65536 || reps < 1) {
        fprintf(stderr, "usage: ai_bench [WIDTH] [LAYERS] [ROWS] [REPS]\n");
        return 2;
    }
    /* safetensors image: per layer wK [width,width], bK [width]; ln.w, ln.b */
    size_t hcap = 256 + (size_t)layers * 192, hn = 0, off = 0;
    char *hdr = malloc(hcap);
    hn += (size_t)snprintf(hdr + hn, hcap - hn, "{");
    size_t wbytes = (size_t)width * width * 4, bbytes = (size_t)width * 4;
    for (uint32_t l = 0; l < layers; l++) {
        hn += (size_t)snprintf(hdr + hn, hcap - hn,
                               "%s\"w%u\":{\"dtype\":\"F32\",\"shape\":[%u,%u],\"data_offsets\":[%zu,%zu]},"
                               "\"b%u\":{\"dtype\":\"F32\",\"shape\":[%u],\"data_offsets\":[%zu,%zu]}",
                               l ? "," : "", l, width, width, off, off + wbytes, l, width, off + wbytes,
                               off + wbytes + bbytes);
        off += wbytes + bbytes;
    }
    hn += (size_t)snprintf(hdr + hn, hcap - hn,
                           ",\"ln.w\":{\"dtype\":\"F32\",\"shape\":[%u],\"data_offsets\":[%zu,%zu]},"
                           "\"ln.b\":{\"dtype\":\"F32\",\"shape\":[%u],\"data_offsets\":[%zu,%zu]}}",
                           width, off, off + bbytes, width, off + bbytes, off + 2 * bbytes);
    off += 2 * bbytes;
    size_t total = 8 + hn + off;
    uint8_t *img = malloc(total);
    uint64_t hl = hn;
    memcpy(img, &hl, 8);
    memcpy(img + 8, hdr, hn);
    for (size_t i = 0; i < off / 4; i++) {
        float v = s_rand();
        memcpy(img + 8 + hn + i * 4, &v, 4);
    }
    char err[512];
    qr_st_file_t *st = qr_st_parse(img, total, err, sizeof err);
    free(img);
    if (!st) {
        fprintf(stderr, "ai_bench: weights: %s\n", err);
        return 1;
    }
    size_t gcap = 128 + (size_t)layers * 96, gn = 0;
    char *graph = malloc(gcap);
    gn += (size_t)snprintf(graph + gn, gcap - gn, "{\"input\":%u,\"layers\":[", width);
    for (uint32_t l = 0; l < layers; l++)
        gn += (size_t)snprintf(graph + gn, gcap - gn,
                               "%s{\"op\":\"dense\",\"weight\":\"w%u\",\"bias\":\"b%u\"},{\"op\":\"gelu\"}",
                               l ? "," : "", l, l);
    gn += (size_t)snprintf(graph + gn, gcap - gn,
                           ",{\"op\":\"layernorm\",\"weight\":\"ln.w\",\"bias\":\"ln.b\"}]}");
    qr_model_t *m = qr_model_new(graph, gn, st, err, sizeof err);
    if (!m) {
        fprintf(stderr, "ai_bench: model: %s\n", err);
        return 1;
    }
    float *x = malloc(sizeof(float) * rows * width);
    for (size_t i = 0; i < (size_t)rows * width; i++)
        x[i] = s_rand() * 10;
    double flop = 2.0 * rows * (double)width * width * layers;

    /* batched forward */
    qr_model_acts_t *a = qr_model_forward(m, x, rows, err, sizeof err); /* warm-up */
    qr_model_acts_destroy(&a);
    int64_t t0 = qr_clock_us();
    for (int r = 0; r < reps; r++) {
        a = qr_model_forward(m, x, rows, err, sizeof err);
        if (!a) {
            fprintf(stderr, "ai_bench: forward: %s\n", err);
            return 1;
        }
        if (r + 1 < reps)
            qr_model_acts_destroy(&a);
    }
    double t_fwd = (double)(qr_clock_us() - t0) / 1e6 / reps;

    /* raw sgemm on the same shapes (x W^T per layer, nothing else) */
    float *w = malloc(sizeof(float) * width * width), *y = malloc(sizeof(float) * rows * width);
    for (size_t i = 0; i < (size_t)width * width; i++)
        w[i] = s_rand();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)width, (int)width, 1.0f, x,
                (int)width, w, (int)width, 0.0f, y, (int)width);
    t0 = qr_clock_us();
    for (int r = 0; r < reps; r++)
        for (uint32_t l = 0; l < layers; l++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)width, (int)width,
                        1.0f, x, (int)width, w, (int)width, 0.0f, y, (int)width);
    double t_gemm = (double)(qr_clock_us() - t0) / 1e6 / reps;

    /* verification of every dense layer of the last batched run */
    t0 = qr_clock_us();
    int bad = 0;
    for (uint32_t l = 0; l < qr_model_layers(m); l++) {
        if (qr_model_dense(m, l, NULL, NULL, NULL, NULL) != 0)
            continue;
        bad |= qr_model_verify_dense(m, l, qr_model_acts_layer(a, (int)l - 1),
                                     qr_model_acts_layer(a, (int)l), rows, 2, 99 + l, NULL) != 0;
    }
    double t_ver = (double)(qr_clock_us() - t0) / 1e6;
    qr_model_acts_destroy(&a);

    /* the same rows one at a time (no batching) */
    uint32_t single = rows < 64 ? rows : 64;
    t0 = qr_clock_us();
    for (uint32_t r = 0; r < single; r++) {
        a = qr_model_forward(m, x + (size_t)r * width, 1, err, sizeof err);
        qr_model_acts_destroy(&a);
    }
    double t_one = (double)(qr_clock_us() - t0) / 1e6 / single;

    double gf = flop / t_fwd / 1e9, gg = flop / t_gemm / 1e9;
    printf("model: %u dense layers %ux%u + bias + gelu, then layernorm; rows=%u reps=%d\n", layers,
           width, width, rows, reps);
    printf("forward batched:   %.3f ms  %.1f GFLOP/s  %.0f rows/s\n", t_fwd * 1e3, gf, rows / t_fwd);
    printf("forward one row:   %.3f ms  %.0f rows/s (batching gains x%.1f)\n", t_one * 1e3,
           1.0 / t_one, (rows / t_fwd) / (1.0 / t_one));
    printf("raw cblas_sgemm:   %.3f ms  %.1f GFLOP/s\n", t_gemm * 1e3, gg);
    printf("verify dense:      %.3f ms  (%.1f%% of the forward pass)%s\n", t_ver * 1e3,
           100 * t_ver / t_fwd, bad ? "  FAILED" : "");
    printf("infer_gflops=%.1f sgemm_gflops=%.1f ratio=%.3f verify_frac=%.4f rows_per_s=%.0f "
           "rows_per_s_unbatched=%.0f\n",
           gf, gg, gf / gg, t_ver / t_fwd, rows / t_fwd, 1.0 / t_one);
    qr_model_destroy(&m);
    qr_st_destroy(&st);
    free(x);
    free(w);
    free(y);
    free(hdr);
    free(graph);
    return bad;
}
