/* Inference throughput of the GPU path (common/gpu.h) on the ai_bench
 * shapes: qr_gpu_model_forward against qr_gpu_sgemm on the same products,
 * and the CPU's qr_model_forward for scale.
 *
 *   gpu_bench [WIDTH=1024] [LAYERS=4] [ROWS=256] [REPS=20]
 *   gpu_bench zk [LOGMAX=20] [PROVE_LOG=LOGMAX] [THREADS=0]
 *       the Groth16 prover's GPU half: G1 MSM 2^16 .. 2^LOGMAX (every
 *       other power), G2 MSM 2^16 and 2^18, the prover's NTT (inverse then
 *       coset, one call) 2^16 .. 2^LOGMAX, first call (device allocation
 *       included) and best of three, transfers included, each result
 *       checked against the CPU at 2^16; then a proof of the synthetic
 *       circuit (g16_toy.c) filling 2^PROVE_LOG through the GPU and on the
 *       CPU (THREADS, 0 = all), both checked with qr_g16_verify.
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
#include <time.h>

#include "g16_toy.h"
#include "gpu.h"
#include "ntt.h"
#include "verify.h"
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

/* ---- gpu_bench zk ---- */

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t s_zseed = 0x243f6a8885a308d3ull;

static void s_rand_fr(qr_fr_t *a)
{
    uint64_t v[4];
    for (int i = 0; i < 4; i++) {
        uint64_t z = (s_zseed += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        v[i] = z ^ (z >> 31);
    }
    v[3] &= 0x1fffffffffffffffull;
    qr_fr_from_canonical(a, v);
}

/* runs one GPU call: the first time and the best of three, in seconds */
#define S_TIME3(first, best, call)                                                                 \
    do {                                                                                           \
        best = 1e30;                                                                               \
        for (int rep_ = 0; rep_ < 4; rep_++) {                                                     \
            double t0_ = s_now();                                                                  \
            if ((call) != 0) {                                                                     \
                printf("GPU call failed: %s\n", err);                                              \
                return 1;                                                                          \
            }                                                                                      \
            double dt_ = s_now() - t0_;                                                            \
            if (rep_ == 0)                                                                         \
                first = dt_;                                                                       \
            else if (dt_ < best)                                                                   \
                best = dt_;                                                                        \
        }                                                                                          \
    } while (0)

static int s_zk(qr_gpu_t *gpu, unsigned logmax, unsigned prove_log, unsigned threads)
{
    char err[512];
    size_t nmax = (size_t)1 << logmax;
    qr_fr_t *kf = malloc(nmax * sizeof *kf);
    qr_msm_scalar_t *ks = malloc(nmax * sizeof *ks);
    qr_g1_affine_t *p = malloc(nmax * sizeof *p), g;
    if (!kf || !ks || !p)
        return 1;
    for (size_t i = 0; i < nmax; i++)
        s_rand_fr(&kf[i]);
    qr_g1_generator(&g);
    if (qr_g1_mul_fixed_batch(p, &g, kf, nmax, threads))
        return 1;
    for (size_t i = 0; i < nmax; i++)
        s_rand_fr(&kf[i]);
    qr_msm_scalars_from_fr(ks, kf, nmax, threads);
    int bad = 0;
    for (unsigned lg = 16; lg <= logmax; lg += 2) {
        size_t n = (size_t)1 << lg;
        qr_g1_t out, want;
        double first = 0, best;
        S_TIME3(first, best, qr_gpu_g1_msm(gpu, &out, p, ks, n, err, sizeof err));
        const char *check = "-";
        if (lg == 16) {
            qr_g1_msm(&want, p, ks, n, threads);
            check = qr_g1_eq(&want, &out) ? "yes" : "NO";
            bad |= !qr_g1_eq(&want, &out);
        }
        printf("gpu_msm_g1_2^%u_ms=%.2f first_ms=%.2f points_per_s=%.0f matches_cpu=%s\n", lg,
               best * 1e3, first * 1e3, n / best, check);
    }
    free(p);
    unsigned g2max = logmax < 18 ? logmax : 18;
    qr_g2_affine_t *q = malloc(((size_t)1 << g2max) * sizeof *q), g2;
    if (!q)
        return 1;
    qr_g2_generator(&g2);
    if (qr_g2_mul_fixed_batch(q, &g2, kf, (size_t)1 << g2max, threads))
        return 1;
    for (unsigned lg = 16; lg <= g2max; lg += 2) {
        size_t n = (size_t)1 << lg;
        qr_g2_t out, want;
        double first = 0, best;
        S_TIME3(first, best, qr_gpu_g2_msm(gpu, &out, q, ks, n, err, sizeof err));
        const char *check = "-";
        if (lg == 16) {
            qr_g2_msm(&want, q, ks, n, threads);
            check = qr_g2_eq(&want, &out) ? "yes" : "NO";
            bad |= !qr_g2_eq(&want, &out);
        }
        printf("gpu_msm_g2_2^%u_ms=%.2f first_ms=%.2f points_per_s=%.0f matches_cpu=%s\n", lg,
               best * 1e3, first * 1e3, n / best, check);
    }
    free(q);
    for (unsigned lg = 16; lg <= logmax; lg += 2) {
        size_t n = (size_t)1 << lg;
        qr_fr_t *a = malloc(n * sizeof *a), sh;
        if (!a)
            return 1;
        memcpy(a, kf, n * sizeof *a);
        qr_fr_root_of_unity(&sh, lg + 1);
        const unsigned ops = QR_G16_NTT_INVERSE | QR_G16_NTT_COSET_FORWARD;
        double first = 0, best;
        S_TIME3(first, best, qr_gpu_ntt(gpu, a, lg, ops, &sh, err, sizeof err));
        const char *check = "-";
        if (lg == 16) {
            qr_fr_t *b = malloc(n * sizeof *b);
            qr_ntt_t *d = qr_ntt_new(lg, threads);
            if (!b || !d)
                return 1;
            memcpy(b, kf, n * sizeof *b);
            memcpy(a, kf, n * sizeof *a);
            qr_gpu_ntt(gpu, a, lg, ops, &sh, err, sizeof err);
            qr_ntt_inverse(d, b);
            qr_ntt_coset_forward(d, b, &sh);
            check = memcmp(a, b, n * sizeof *a) == 0 ? "yes" : "NO";
            bad |= memcmp(a, b, n * sizeof *a) != 0;
            free(b);
            qr_ntt_destroy(&d);
        }
        printf("gpu_ntt_inverse_coset_2^%u_ms=%.2f first_ms=%.2f matches_cpu=%s\n", lg, best * 1e3,
               first * 1e3, check);
        free(a);
    }
    free(kf);
    free(ks);

    /* a whole proof, GPU against CPU */
    uint32_t nc = ((uint32_t)1 << prove_log) - 2;
    qr_g16_toy_r1cs_t cs;
    qr_g16_toy_term_t *terms;
    qr_fr_t *w;
    if (qr_g16_toy_circuit(nc, prove_log, &cs, &terms, &w))
        return 1;
    qr_g16_toy_secrets_t sec;
    qr_g16_toy_secrets(&sec, 0x5ec0de + prove_log);
    double t0 = s_now();
    qr_g16_toy_t *key = qr_g16_toy_setup(&cs, &sec, threads, err, sizeof err);
    if (!key) {
        printf("setup: %s\n", err);
        return 1;
    }
    double t_setup = s_now() - t0;
    qr_g16_backend_t be;
    qr_gpu_g16_backend(gpu, &be);
    qr_g16_proof_t pg, pc;
    qr_g16_timing_t tg, tg2, tc;
    if (qr_g16_prove_backend(&key->pk, w, cs.n_vars, NULL, NULL, (int)threads, &be, &tg, &pg, err,
                             sizeof err) ||
        qr_g16_prove_backend(&key->pk, w, cs.n_vars, NULL, NULL, (int)threads, &be, &tg2, &pg, err,
                             sizeof err)) {
        printf("GPU proof failed: %s\n", err);
        return 1;
    }
    bool okg = qr_g16_verify(&key->vk, &w[1], 1, &pg);
    if (qr_g16_prove_timed(&key->pk, w, cs.n_vars, NULL, NULL, (int)threads, &tc, &pc, err,
                           sizeof err)) {
        printf("CPU proof failed: %s\n", err);
        return 1;
    }
    bool okc = qr_g16_verify(&key->vk, &w[1], 1, &pc);
    printf("gpu_prove_2^%u_s=%.3f first_s=%.3f abc_s=%.3f ntt_s=%.3f msm_g1_s=%.3f msm_g2_s=%.3f "
           "verified=%s\n",
           prove_log, tg2.total, tg.total, tg2.abc, tg2.ntt, tg2.msm_g1, tg2.msm_g2,
           okg ? "yes" : "NO");
    printf("cpu_prove_2^%u_s=%.3f ntt_s=%.3f msm_g1_s=%.3f msm_g2_s=%.3f threads=%u verified=%s "
           "setup_s=%.1f speedup=%.1f\n",
           prove_log, tc.total, tc.ntt, tc.msm_g1, tc.msm_g2, threads, okc ? "yes" : "NO", t_setup,
           tc.total / tg2.total);
    qr_g16_toy_destroy(&key);
    free(terms);
    free(w);
    return bad || !okg || !okc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "zk") == 0) {
        unsigned logmax = argc > 2 ? (unsigned)atoi(argv[2]) : 20;
        unsigned prove_log = argc > 3 ? (unsigned)atoi(argv[3]) : logmax;
        unsigned threads = qr_msm_threads(argc > 4 ? (unsigned)atoi(argv[4]) : 0);
        if (logmax < 16 || logmax > 26 || prove_log < 2 || prove_log > 24) {
            fprintf(stderr, "usage: gpu_bench zk [LOGMAX=20 (16..26)] [PROVE_LOG (2..24)] "
                            "[THREADS]\n");
            return 2;
        }
        char err[512];
        qr_gpu_t *gpu = qr_gpu_open(0, err, sizeof err);
        if (!gpu) {
            printf("no GPU: %s\n", err);
            return 0;
        }
        printf("GPU: %s (module %s)\n", qr_gpu_name(gpu), qr_gpu_module_path(gpu));
        int rc = s_zk(gpu, logmax, prove_log, threads);
        qr_gpu_close(&gpu);
        return rc;
    }
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
