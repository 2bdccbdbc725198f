/* Inference throughput of the GPU path (common/gpu.h) on the ai_bench
 * shapes: qr_gpu_model_forward against qr_gpu_sgemm on the same products,
 * and the CPU's qr_model_forward for scale.
 *
 *   gpu_bench [WIDTH=1024] [LAYERS=4] [ROWS=256] [REPS=20]
 *
 * The model is WIDTH -> WIDTH dense layers with bias, each followed by
 * GELU, then a layernorm (as ai_bench).  Both GPU figures include the
 * copies to and from the device (the forward copies every layer's output
 * back: the broker verifies each).  Without a GPU it prints "no GPU: why"
 * and exits 0.  Last line:
 *   gpu_infer_gflops=X gpu_sgemm_gflops=Y ratio=Z cpu_infer_gflops=W */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "model.h"
#include "safetensors.h"
#include "util.h"

static uint32_t s_rng = 12345;
static float s_rand(void)
{
    s_rng = s_rng * 1664525u + 1013904223u;
    return ((float)(s_rng >> 8) / 16777216.0f - 0.5f) * 0.1f;
}

/* ai_bench's model: safetensors image wK [w,w], bK [w] per layer, ln.w, ln.b. */
static qr_model_t *s_model(uint32_t width, uint32_t layers, qr_st_file_t **st)
{
    size_t hcap = 256 + (size_t)layers * 192, hn = 0, off = 0;
    char *hdr = malloc(hcap);
    hn += (size_t)snprintf(hdr + hn, hcap - hn, "{");
    size_t wbytes = (size_t)width * width * 4, bbytes = (size_t)width * 4;
    for (uint32_t l = 0; l < layers; l++) {
        hn += (size_t)snprintf(
            hdr + hn, hcap - hn,
            "%s\"w%u\":{\"dtype\":\"F32\",\"shape\":[%u,%u],\"data_offsets\":[%zu,%zu]},"
            "\"b%u\":{\"dtype\":\"F32\",\"shape\":[%u],\"data_offsets\":[%zu,%zu]}",
            l ? "," : "", l, width, width, off, off + wbytes, l, width, off + wbytes,
            off + wbytes + bbytes);
        off += wbytes + bbytes;
    }
    hn +=
        (size_t)snprintf(hdr + hn, hcap - hn,
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
    *st = qr_st_parse(img, total, err, sizeof err);
    free(img);
    free(hdr);
    if (!*st) {
        fprintf(stderr, "gpu_bench: weights: %s\n", err);
        return NULL;
    }
    size_t gcap = 128 + (size_t)layers * 96, gn = 0;
    char *graph = malloc(gcap);
    gn += (size_t)snprintf(graph + gn, gcap - gn, "{\"input\":%u,\"layers\":[", width);
    for (uint32_t l = 0; l < layers; l++)
        gn += (size_t)snprintf(
            graph + gn, gcap - gn,
            "%s{\"op\":\"dense\",\"weight\":\"w%u\",\"bias\":\"b%u\"},{\"op\":\"gelu\"}",
            l ? "," : "", l, l);
    gn += (size_t)snprintf(graph + gn, gcap - gn,
                           ",{\"op\":\"layernorm\",\"weight\":\"ln.w\",\"bias\":\"ln.b\"}]}");
    qr_model_t *m = qr_model_new(graph, gn, *st, err, sizeof err);
    free(graph);
    if (!m)
        fprintf(stderr, "gpu_bench: model: %s\n", err);
    return m;
}

int main(int argc, char **argv)
{
    uint32_t width = argc > 1 ? (uint32_t)atoi(argv[1]) : 1024;
    uint32_t layers = argc > 2 ? (uint32_t)atoi(argv[2]) : 4;
    uint32_t rows = argc > 3 ? (uint32_t)atoi(argv[3]) : 256;
    int reps = argc > 4 ? atoi(argv[4]) : 20;
    if (width < 1 || width > 8192 || layers < 1 || layers > 64 || rows < 1 || rows > 65536 ||
        reps < 1) {
        fprintf(stderr, "usage: gpu_bench [WIDTH] [LAYERS] [ROWS] [REPS]\n");
        return 2;
    }
    char err[512];
    qr_gpu_t *gpu = qr_gpu_open(0, err, sizeof err);
    if (!gpu) {
        printf("no GPU: %s\n", err);
        return 0;
    }
    printf("GPU: %s (module %s)\n", qr_gpu_name(gpu), qr_gpu_module_path(gpu));
    qr_st_file_t *st = NULL;
    qr_model_t *m = s_model(width, layers, &st);
    if (!m)
        return 1;
    float *x = malloc(sizeof(float) * rows * width);
    for (size_t i = 0; i < (size_t)rows * width; i++)
        x[i] = s_rand() * 10;
    double flop = 2.0 * rows * (double)width * width * layers;

    /* the first call uploads the weights: timed apart */
    int64_t t0 = qr_clock_us();
    qr_model_acts_t *a = qr_gpu_model_forward(gpu, m, x, rows, err, sizeof err);
    double t_first = (double)(qr_clock_us() - t0) / 1e6;
    if (!a) {
        fprintf(stderr, "gpu_bench: forward: %s\n", err);
        return 1;
    }
    qr_model_acts_destroy(&a);
    t0 = qr_clock_us();
    for (int r = 0; r < reps; r++) {
        a = qr_gpu_model_forward(gpu, m, x, rows, err, sizeof err);
        if (!a) {
            fprintf(stderr, "gpu_bench: forward: %s\n", err);
            return 1;
        }
        if (r + 1 < reps)
            qr_model_acts_destroy(&a);
    }
    double t_fwd = (double)(qr_clock_us() - t0) / 1e6 / reps;
    /* the result must pass the broker's check, as the CPU's does */
    int bad = 0;
    for (uint32_t l = 0; l < qr_model_layers(m); l++)
        if (qr_model_dense(m, l, NULL, NULL, NULL, NULL) == 0)
            bad |=
                qr_model_verify_dense(m, l, qr_model_acts_layer(a, (int)l - 1),
                                      qr_model_acts_layer(a, (int)l), rows, 2, 99 + l, NULL) != 0;
    qr_model_acts_destroy(&a);

    /* sgemm on the same shapes: rows x width times width x width, per layer
     * (includes copying both operands up and C back, as an ai.gemm job) */
    float *w = malloc(sizeof(float) * width * width), *y = malloc(sizeof(float) * rows * width);
    for (size_t i = 0; i < (size_t)width * width; i++)
        w[i] = s_rand();
    if (qr_gpu_sgemm(gpu, x, w, y, rows, width, width, err, sizeof err)) {
        fprintf(stderr, "gpu_bench: sgemm: %s\n", err);
        return 1;
    }
    t0 = qr_clock_us();
    for (int r = 0; r < reps; r++)
        for (uint32_t l = 0; l < layers; l++)
            if (qr_gpu_sgemm(gpu, x, w, y, rows, width, width, err, sizeof err)) {
                fprintf(stderr, "gpu_bench: sgemm: %s\n", err);
                return 1;
            }
    double t_gemm = (double)(qr_clock_us() - t0) / 1e6 / reps;

    /* the CPU forward, for scale (fewer reps: it is slower) */
    int creps = reps < 3 ? reps : 3;
    t0 = qr_clock_us();
    for (int r = 0; r < creps; r++) {
        a = qr_model_forward(m, x, rows, err, sizeof err);
        qr_model_acts_destroy(&a);
    }
    double t_cpu = (double)(qr_clock_us() - t0) / 1e6 / creps;

    double gf = flop / t_fwd / 1e9, gg = flop / t_gemm / 1e9, gc = flop / t_cpu / 1e9;
    printf("model: %u dense layers %ux%u + bias + gelu, then layernorm; rows=%u reps=%d\n", layers,
           width, width, rows, reps);
    printf("gpu forward:       %.3f ms  %.1f GFLOP/s  %.0f rows/s (first call, with upload: "
           "%.3f ms)%s\n",
           t_fwd * 1e3, gf, rows / t_fwd, t_first * 1e3, bad ? "  VERIFY FAILED" : "");
    printf("gpu sgemm:         %.3f ms  %.1f GFLOP/s\n", t_gemm * 1e3, gg);
    printf("cpu forward:       %.3f ms  %.1f GFLOP/s\n", t_cpu * 1e3, gc);
    printf("gpu_infer_gflops=%.1f gpu_sgemm_gflops=%.1f ratio=%.3f cpu_infer_gflops=%.1f\n", gf, gg,
           gf / gg, gc);
    qr_gpu_model_forget(gpu, m);
    qr_gpu_close(&gpu);
    qr_model_destroy(&m);
    qr_st_destroy(&st);
    free(x);
    free(w);
    free(y);
    return bad;
}
