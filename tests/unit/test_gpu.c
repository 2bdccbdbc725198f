/* common/gpu: the CUDA module loader and the GPU runtime.
 *
 * Everywhere: the loader's error paths (no module, a file that is not a
 * library, a library that is not a module, another ABI version, no device,
 * close(NULL)), and the whole qr_gpu_* surface against a fake module that
 * computes on the CPU (tests/unit/fake_cuda.c): layer descriptions, input
 * and token checks with the CPU's messages, the overflow check, errors
 * from the module, the weight cache and forget, several threads on one
 * handle.
 *
 * With a GPU (the real libquarry_cuda.so opens a device): qr_gpu_model_forward
 * against qr_model_forward on models that use every op (several widths,
 * row counts 1 to 257 including non-multiples of 32), every dense layer
 * passing qr_model_verify_dense, and qr_gpu_sgemm against cblas_sgemm.
 * Without one these tests are skipped, saying why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cblas.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpu.h"
#include "model.h"
#include "safetensors.h"

/* ---- building models in memory (as test_model.c) ---- */

typedef struct {
    const char *name;
    uint32_t ndims;
    uint64_t dims[2];
    float scale; /* values uniform in [offset - scale, offset + scale) */
    float offset;
} s_spec_t;

typedef struct {
    const char *label;
    const s_spec_t *specs;
    size_t nspecs;
    const char *graph;
    uint32_t vocab; /* embedding models: token ids in [0, vocab) */
} s_def_t;

typedef struct {
    qr_st_file_t *st;
    qr_model_t *m;
    uint32_t vocab;
} s_mod_t;

static uint64_t s_seed = 12345;
static float s_rand(void)
{
    s_seed = s_seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(s_seed >> 40) / (double)(1u << 24) * 2.0 - 1.0);
}

static uint64_t s_count(const s_spec_t *t)
{
    uint64_t c = 1;
    for (uint32_t d = 0; d < t->ndims; d++)
        c *= t->dims[d];
    return c;
}

/* An F32 safetensors image of the tensors, filled with s_rand values. */
static qr_st_file_t *s_weights(const s_spec_t *ts, size_t n)
{
    char hdr[8192];
    size_t o = 0, off = 0;
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "{");
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes = s_count(&ts[i]) * 4;
        o += (size_t)snprintf(hdr + o, sizeof hdr - o, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[",
                              i ? "," : "", ts[i].name);
        for (uint32_t d = 0; d < ts[i].ndims; d++)
            o += (size_t)snprintf(hdr + o, sizeof hdr - o, "%s%llu", d ? "," : "",
                                  (unsigned long long)ts[i].dims[d]);
        o += (size_t)snprintf(hdr + o, sizeof hdr - o, "],\"data_offsets\":[%zu,%zu]}", off,
                              (size_t)(off + bytes));
        off += bytes;
    }
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "}");
    assert_true(o < sizeof hdr);
    size_t len = 8 + o + off;
    uint8_t *b = malloc(len);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)o >> (8 * i));
    memcpy(b + 8, hdr, o);
    uint8_t *p = b + 8 + o;
    for (size_t i = 0; i < n; i++)
        for (uint64_t j = 0; j < s_count(&ts[i]); j++) {
            float v = ts[i].offset + ts[i].scale * s_rand();
            memcpy(p, &v, 4); /* little-endian host, as the file format */
            p += 4;
        }
    char err[256];
    qr_st_file_t *f = qr_st_parse(b, len, err, sizeof err);
    free(b);
    if (!f)
        fail_msg("test image refused: %s", err);
    return f;
}

static s_mod_t s_build(const s_def_t *d)
{
    s_mod_t r = {.st = s_weights(d->specs, d->nspecs), .vocab = d->vocab};
    char err[512];
    r.m = qr_model_new(d->graph, strlen(d->graph), r.st, err, sizeof err);
    if (!r.m)
        fail_msg("%s: model refused: %s", d->label, err);
    return r;
}

static void s_drop(qr_gpu_t *gpu, s_mod_t *r)
{
    qr_gpu_model_forget(gpu, r->m);
    qr_model_destroy(&r->m);
    qr_st_destroy(&r->st);
}

/* Every op, dense with and without bias, widths from 1 to 1025 (wider than
 * a block of the row kernels), tied weights, residuals from the input and
 * from a layer. */
static const s_spec_t s_mlp_t[] = {
    {"fc1.w", 2, {64, 33}, 0.17f, 0}, {"fc1.b", 1, {64}, 0.5f, 0}, {"fc2.w", 2, {70, 64}, 0.12f, 0},
    {"ln.w", 1, {70}, 0.2f, 1},       {"ln.b", 1, {70}, 0.1f, 0},  {"head.w", 2, {10, 70}, 0.3f, 0},
    {"head.b", 1, {10}, 0.1f, 0},
};
static const s_spec_t s_res_t[] = {
    {"a.w", 2, {8, 8}, 0.35f, 0},
    {"a.b", 1, {8}, 0.2f, 0},
    {"ln.w", 1, {8}, 0.3f, 1},
    {"b.w", 2, {8, 8}, 0.35f, 0},
};
static const s_spec_t s_emb_t[] = {
    {"emb", 2, {50, 40}, 1.0f, 0}, {"fc.w", 2, {40, 40}, 0.16f, 0}, {"fc.b", 1, {40}, 0.1f, 0},
    {"ln.w", 1, {40}, 0.2f, 1},    {"ln.b", 1, {40}, 0.1f, 0},      {"out.w", 2, {50, 40}, 0.3f, 0},
};
static const s_spec_t s_wide_t[] = {
    {"w1", 2, {1025, 1000}, 0.03f, 0},
    {"b1", 1, {1025}, 0.5f, 0},
    {"ln.w", 1, {1025}, 0.2f, 1},
    {"w2", 2, {3, 1025}, 0.05f, 0},
};
static const s_spec_t s_tiny_t[] = {
    {"w", 2, {1, 1}, 1.0f, 0},
    {"b", 1, {1}, 0.5f, 0},
    {"ln.w", 1, {1}, 0.2f, 1},
    {"ln.b", 1, {1}, 0.5f, 0},
};
static const s_spec_t s_tied_t[] = {
    {"w", 2, {16, 16}, 0.25f, 0},
    {"b", 1, {16}, 0.2f, 0},
    {"big.w", 1, {16}, 0.1f, 1000}, /* layernorm weight far from 0 */
};

#define S_DEF(label, t, graph, vocab)                                                              \
    {                                                                                              \
        label, t, sizeof t / sizeof *t, graph, vocab                                               \
    }
static const s_def_t s_defs[] = {
    S_DEF("mlp", s_mlp_t,
          "{\"input\":33,\"layers\":[{\"op\":\"dense\",\"weight\":\"fc1.w\",\"bias\":\"fc1.b\"},"
          "{\"op\":\"relu\"},{\"op\":\"dense\",\"weight\":\"fc2.w\"},{\"op\":\"gelu\"},"
          "{\"op\":\"layernorm\",\"weight\":\"ln.w\",\"bias\":\"ln.b\"},"
          "{\"op\":\"dense\",\"weight\":\"head.w\",\"bias\":\"head.b\"},{\"op\":\"softmax\"}]}",
          0),
    S_DEF("residual", s_res_t,
          "{\"input\":8,\"layers\":[{\"op\":\"dense\",\"weight\":\"a.w\",\"bias\":\"a.b\"},"
          "{\"op\":\"gelu\"},{\"op\":\"residual\",\"from\":-1},"
          "{\"op\":\"layernorm\",\"weight\":\"ln.w\",\"eps\":0.001},"
          "{\"op\":\"dense\",\"weight\":\"b.w\"},{\"op\":\"residual\",\"from\":1},{\"op\":\"relu\"}"
          "]}",
          0),
    S_DEF("embedding", s_emb_t,
          "{\"input\":1,\"layers\":[{\"op\":\"embedding\",\"weight\":\"emb\"},"
          "{\"op\":\"dense\",\"weight\":\"fc.w\",\"bias\":\"fc.b\"},{\"op\":\"gelu\"},"
          "{\"op\":\"residual\",\"from\":0},"
          "{\"op\":\"layernorm\",\"weight\":\"ln.w\",\"bias\":\"ln.b\"},"
          "{\"op\":\"dense\",\"weight\":\"out.w\"},{\"op\":\"softmax\"}]}",
          50),
    S_DEF("wide", s_wide_t,
          "{\"input\":1000,\"layers\":[{\"op\":\"dense\",\"weight\":\"w1\",\"bias\":\"b1\"},"
          "{\"op\":\"layernorm\",\"weight\":\"ln.w\"},{\"op\":\"softmax\"},"
          "{\"op\":\"dense\",\"weight\":\"w2\"},{\"op\":\"relu\"}]}",
          0),
    S_DEF("tiny", s_tiny_t,
          "{\"input\":1,\"layers\":[{\"op\":\"dense\",\"weight\":\"w\",\"bias\":\"b\"},"
          "{\"op\":\"relu\"},{\"op\":\"softmax\"},"
          "{\"op\":\"layernorm\",\"weight\":\"ln.w\",\"bias\":\"ln.b\"}]}",
          0),
    S_DEF("tied", s_tied_t,
          "{\"input\":16,\"layers\":[{\"op\":\"dense\",\"weight\":\"w\"},{\"op\":\"gelu\"},"
          "{\"op\":\"dense\",\"weight\":\"w\",\"bias\":\"b\"},"
          "{\"op\":\"layernorm\",\"weight\":\"big.w\",\"bias\":\"b\"},{\"op\":\"relu\"}]}",
          0),
};
#define S_NDEFS (sizeof s_defs / sizeof *s_defs)

static const uint32_t s_rows[] = {1, 3, 31, 32, 33, 100, 257};

/* rows x width input; token ids for an embedding model. */
static float *s_input(const s_mod_t *r, uint32_t rows)
{
    uint32_t w = qr_model_input_width(r->m);
    float *x = malloc((size_t)rows * w * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < (size_t)rows * w; i++)
        x[i] = r->vocab ? (float)((i * 7 + 3) % r->vocab) : 2.0f * s_rand();
    return x;
}

/* Layer l of a GPU result against the op recomputed here in double from the
 * GPU's own input to the layer (x, and src for a residual), so each layer's
 * tolerance is its own rounding, not the drift of the layers before it:
 * embedding, relu and residual exact; dense within the worst case of an
 * fp32 sum of in + 1 terms; the others within a few float roundings. */
static void s_check_layer(const qr_model_t *m, uint32_t l, const float *x, const float *src,
                          const float *y, uint32_t rows, const char *label)
{
    qr_model_layer_t L;
    assert_int_equal(qr_model_layer(m, l, &L), 0);
    const double u = 5.97e-8; /* 2^-24 */
    for (uint32_t r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * L.in, *sr = src ? src + (size_t)r * L.in : NULL;
        const float *yr = y + (size_t)r * L.out;
        double mean = 0, var = 0, mx = -INFINITY, sum = 0;
        if (L.op == QR_MODEL_LAYERNORM || L.op == QR_MODEL_SOFTMAX) {
            for (uint32_t j = 0; j < L.in; j++) {
                mean += xr[j];
                mx = fmax(mx, xr[j]);
            }
            mean /= L.in;
            for (uint32_t j = 0; j < L.in; j++) {
                var += (xr[j] - mean) * (xr[j] - mean);
                sum += exp(xr[j] - mx);
            }
            var /= L.in;
        }
        for (uint32_t o = 0; o < L.out; o++) {
            double want = 0, tol = 0;
            switch (L.op) {
            case QR_MODEL_EMBEDDING:
                want = L.weight[(size_t)xr[0] * L.out + o];
                tol = 0;
                break;
            case QR_MODEL_DENSE: {
                double s = L.bias ? L.bias[o] : 0, a = L.bias ? fabs(L.bias[o]) : 0;
                for (uint32_t j = 0; j < L.in; j++) {
                    s += (double)xr[j] * L.weight[(size_t)o * L.in + j];
                    a += fabs((double)xr[j] * L.weight[(size_t)o * L.in + j]);
                }
                want = s;
                tol = 1.01 * (L.in + 2) * u * a;
                break;
            }
            case QR_MODEL_RELU:
                want = xr[o] > 0 ? xr[o] : 0;
                tol = 0;
                break;
            case QR_MODEL_GELU: {
                double v = xr[o], t = 0.7978845608028654 * (v + 0.044715 * v * v * v);
                want = 0.5 * v * (1 + tanh(t));
                tol = 16 * u * fabs(v) + 1e-30;
                break;
            }
            case QR_MODEL_LAYERNORM: {
                double z = (xr[o] - mean) / sqrt(var + L.eps) * L.weight[o];
                want = z + (L.bias ? L.bias[o] : 0);
                tol = 16 * u * (fabs(z) + fabs(want)) + 1e-30;
                break;
            }
            case QR_MODEL_SOFTMAX:
                want = exp(xr[o] - mx) / sum;
                /* + |x - max|: x - max is rounded to float before exp */
                tol = (16 + 2 * log2(L.in + 1.0) + fabs(xr[o] - mx)) * u * want + 1e-37;
                break;
            case QR_MODEL_RESIDUAL:
                want = (float)(xr[o] + sr[o]); /* one float add, as both runtimes */
                tol = 0;
                break;
            default:
                fail_msg("%s: layer %u: op %d", label, l, L.op);
            }
            if (!(fabs(yr[o] - want) <= tol))
                fail_msg("%s rows=%u layer %u (%s) row %u col %u: GPU %.9g, recomputed %.9g "
                         "(tol %.3g)",
                         label, rows, l, qr_model_op_name(L.op), r, o, (double)yr[o], want, tol);
        }
    }
}

/* The GPU's result: each layer recomputed from its own input
 * (s_check_layer), each dense layer through the broker's check, and the
 * whole result against the CPU path's within a tolerance for two fp32
 * implementations drifting apart over several layers (an indexing or
 * kernel bug is off by far more). */
static void s_compare(qr_gpu_t *gpu, const s_mod_t *r, const char *label, uint32_t rows)
{
    float *x = s_input(r, rows);
    char err[512];
    qr_model_acts_t *c = qr_model_forward(r->m, x, rows, err, sizeof err);
    if (!c)
        fail_msg("%s rows=%u: CPU forward: %s", label, rows, err);
    qr_model_acts_t *g = qr_gpu_model_forward(gpu, r->m, x, rows, err, sizeof err);
    if (!g)
        fail_msg("%s rows=%u: GPU forward: %s", label, rows, err);
    assert_int_equal(qr_model_acts_rows(g), rows);
    assert_memory_equal(qr_model_acts_layer(g, -1), x,
                        (size_t)rows * qr_model_input_width(r->m) * sizeof *x);
    for (int l = 0; l < (int)qr_model_layers(r->m); l++) {
        int from = qr_model_residual_from(r->m, (uint32_t)l);
        s_check_layer(r->m, (uint32_t)l, qr_model_acts_layer(g, l - 1),
                      from >= -1 ? qr_model_acts_layer(g, from) : NULL, qr_model_acts_layer(g, l),
                      rows, label);
        if (qr_model_op(r->m, (uint32_t)l) == QR_MODEL_DENSE) {
            double worst = 0;
            if (qr_model_verify_dense(r->m, (uint32_t)l, qr_model_acts_layer(g, l - 1),
                                      qr_model_acts_layer(g, l), rows, 2, 77 + (uint64_t)l, &worst))
                fail_msg("%s rows=%u: dense layer %d of the GPU fails verification (worst %.3g)",
                         label, rows, l, worst);
        }
        uint32_t w = qr_model_layer_width(r->m, (uint32_t)l);
        const float *cy = qr_model_acts_layer(c, l), *gy = qr_model_acts_layer(g, l);
        for (uint32_t row = 0; row < rows; row++) {
            float scale = 0;
            for (uint32_t j = 0; j < w; j++)
                scale = fmaxf(scale, fabsf(cy[(size_t)row * w + j]));
            float tol = 1e-3f * scale + 1e-6f;
            for (uint32_t j = 0; j < w; j++) {
                float a = cy[(size_t)row * w + j], b = gy[(size_t)row * w + j];
                if (!(fabsf(a - b) <= tol))
                    fail_msg("%s rows=%u layer %d (%s) row %u col %u: CPU %.9g GPU %.9g (tol %.3g)",
                             label, rows, l, qr_model_op_name(qr_model_op(r->m, (uint32_t)l)), row,
                             j, (double)a, (double)b, (double)tol);
            }
        }
    }
    qr_model_acts_destroy(&c);
    qr_model_acts_destroy(&g);
    free(x);
}

/* Every model at every row count, twice (the second run from the weight
 * cache), then with two models interleaved on one handle. */
static void s_models_on(qr_gpu_t *gpu)
{
    s_mod_t mods[S_NDEFS];
    for (size_t d = 0; d < S_NDEFS; d++) {
        mods[d] = s_build(&s_defs[d]);
        for (size_t k = 0; k < sizeof s_rows / sizeof *s_rows; k++)
            s_compare(gpu, &mods[d], s_defs[d].label, s_rows[k]);
        s_compare(gpu, &mods[d], s_defs[d].label, 5);
    }
    for (int rep = 0; rep < 2; rep++)
        for (size_t d = 0; d < S_NDEFS; d++)
            s_compare(gpu, &mods[d], s_defs[d].label, 17);
    for (size_t d = 0; d < S_NDEFS; d++)
        s_drop(gpu, &mods[d]);
}

/* C = A B against cblas_sgemm, each element within the rounding of a
 * k-term fp32 sum of |A||B|. */
static void s_sgemm_on(qr_gpu_t *gpu)
{
    static const uint32_t shapes[][3] = {{1, 1, 1},      {7, 13, 5},       {64, 64, 64},
                                         {100, 33, 257}, {257, 129, 1000}, {1, 4096, 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        uint32_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *A = malloc(sizeof(float) * m * k), *B = malloc(sizeof(float) * k * n),
              *C = malloc(sizeof(float) * m * n), *R = malloc(sizeof(float) * m * n);
        assert_true(A && B && C && R);
        for (size_t i = 0; i < (size_t)m * k; i++)
            A[i] = s_rand();
        for (size_t i = 0; i < (size_t)k * n; i++)
            B[i] = s_rand();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, A,
                    (int)k, B, (int)n, 0.0f, R, (int)n);
        char err[512];
        if (qr_gpu_sgemm(gpu, A, B, C, m, n, k, err, sizeof err) != 0)
            fail_msg("sgemm %ux%ux%u: %s", m, n, k, err);
        for (uint32_t i = 0; i < m; i++)
            for (uint32_t j = 0; j < n; j++) {
                double abs = 0;
                for (uint32_t l = 0; l < k; l++)
                    abs += fabs((double)A[(size_t)i * k + l] * B[(size_t)l * n + j]);
                double tol = 2.0 * k * 5.97e-8 * abs + 1e-30;
                double d = fabs((double)C[(size_t)i * n + j] - R[(size_t)i * n + j]);
                if (!(d <= tol))
                    fail_msg("sgemm %ux%ux%u C[%u][%u]: GPU %.9g CPU %.9g (tol %.3g)", m, n, k, i,
                             j, (double)C[(size_t)i * n + j], (double)R[(size_t)i * n + j], tol);
            }
        free(A);
        free(B);
        free(C);
        free(R);
    }
    char err[256];
    float one = 1;
    assert_int_equal(qr_gpu_sgemm(gpu, &one, &one, &one, 0, 1, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "bad shape"));
    assert_int_equal(qr_gpu_sgemm(gpu, &one, &one, &one, 1, 1, 70000, err, sizeof err), -1);
}

/* ---- the loader's error paths (no GPU needed) ---- */

static void test_close_null(void **state)
{
    qr_gpu_close(NULL);
    qr_gpu_t *g = NULL;
    qr_gpu_close(&g);
    assert_null(g);
    assert_string_equal(qr_gpu_name(NULL), "");
    assert_string_equal(qr_gpu_module_path(NULL), "");
    qr_gpu_model_forget(NULL, NULL);
    char err[128];
    assert_null(qr_gpu_model_forward(NULL, NULL, NULL, 1, err, sizeof err));
    assert_non_null(strstr(err, "no GPU"));
    assert_int_equal(qr_gpu_sgemm(NULL, NULL, NULL, NULL, 1, 1, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "no GPU"));
}

static void test_missing_module(void **state)
{
    char err[512];
    qr_gpu_t *g = qr_gpu_open_module("/nonexistent/" QR_GPU_MODULE, 0, err, sizeof err);
    assert_null(g);
    print_message("      missing module: %s\n", err);
    assert_non_null(strstr(err, "/nonexistent/" QR_GPU_MODULE));
    assert_non_null(strstr(err, "cannot be loaded"));
    /* and a NULL err is fine */
    assert_null(qr_gpu_open_module("/nonexistent/" QR_GPU_MODULE, 0, NULL, 0));
}

/* Found by the search or not, depending on the build: without nvcc the
 * reason is that there is no module; with it, the module loads and the
 * reason (on a machine without a GPU) is about the driver or the device. */
static void test_search(void **state)
{
    char err[512];
    qr_gpu_t *g = qr_gpu_open(0, err, sizeof err);
#ifdef QR_TEST_CUDA_MODULE
    if (g) {
        print_message("      found %s at %s\n", qr_gpu_name(g), qr_gpu_module_path(g));
        assert_true(qr_gpu_name(g)[0] != '\0');
        qr_gpu_close(&g);
        return;
    }
    print_message("      module found, no GPU: %s\n", err);
    assert_null(strstr(err, "no CUDA module"));
    assert_null(strstr(err, "ABI version"));
    assert_true(err[0] != '\0');
#else
    assert_null(g);
    print_message("      built without the CUDA module: %s\n", err);
    assert_non_null(strstr(err, "no CUDA module"));
    assert_non_null(strstr(err, "QUARRY_CUDA_MODULE"));
#endif
}

static void test_env_not_a_library(void **state)
{
    char path[] = "/tmp/qr_gpu_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "this is not an ELF file\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    setenv("QUARRY_CUDA_MODULE", path, 1);
    char err[512];
    qr_gpu_t *g = qr_gpu_open(0, err, sizeof err);
    unsetenv("QUARRY_CUDA_MODULE");
    unlink(path);
    assert_null(g);
    print_message("      not a library: %s\n", err);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "QUARRY_CUDA_MODULE"));
    /* set but empty counts as unset */
    setenv("QUARRY_CUDA_MODULE", "", 1);
    g = qr_gpu_open_module("/nonexistent/x.so", 0, err, sizeof err);
    unsetenv("QUARRY_CUDA_MODULE");
    assert_null(g);
    assert_null(strstr(err, "QUARRY_CUDA_MODULE"));
}

static void test_not_a_module(void **state)
{
    char err[512];
    qr_gpu_t *g = qr_gpu_open_module("libm.so.6", 0, err, sizeof err);
    assert_null(g);
    print_message("      not a module: %s\n", err);
    assert_non_null(strstr(err, "does not export qr_cuda_api"));
}

static void test_bad_abi(void **state)
{
    char err[512];
    qr_gpu_t *g = qr_gpu_open_module(QR_FAKE_CUDA_BADABI, 0, err, sizeof err);
    assert_null(g);
    print_message("      other ABI: %s\n", err);
    assert_non_null(strstr(err, "ABI version 99"));
}

static void test_fake_devices(void **state)
{
    char err[512];
    setenv("QR_FAKE_CUDA_DEVICES", "0", 1);
    qr_gpu_t *g = qr_gpu_open_module(QR_FAKE_CUDA, 0, err, sizeof err);
    assert_null(g);
    assert_string_equal(err, "no CUDA device found");
    setenv("QR_FAKE_CUDA_DEVICES", "2", 1);
    assert_null(qr_gpu_open_module(QR_FAKE_CUDA, 2, err, sizeof err));
    assert_non_null(strstr(err, "does not exist"));
    g = qr_gpu_open_module(QR_FAKE_CUDA, 1, err, sizeof err);
    unsetenv("QR_FAKE_CUDA_DEVICES");
    assert_non_null(g);
    assert_string_equal(err, "");
    assert_string_equal(qr_gpu_name(g), "Fake GPU 1");
    assert_string_equal(qr_gpu_module_path(g), QR_FAKE_CUDA);
    qr_gpu_close(&g);
    assert_null(g);
}

/* ---- the qr_gpu_* surface on the fake module ---- */

static qr_gpu_t *s_fake(void)
{
    char err[512];
    qr_gpu_t *g = qr_gpu_open_module(QR_FAKE_CUDA, 0, err, sizeof err);
    if (!g)
        fail_msg("fake module: %s", err);
    return g;
}

static void test_fake_models(void **state)
{
    qr_gpu_t *g = s_fake();
    s_models_on(g);
    qr_gpu_close(&g);
}

static void test_fake_sgemm(void **state)
{
    qr_gpu_t *g = s_fake();
    s_sgemm_on(g);
    qr_gpu_close(&g);
}

static int (*s_uploads_fn(void))(void)
{
    void *dl = dlopen(QR_FAKE_CUDA, RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(dl);
    void *sym = dlsym(dl, "qr_fake_cuda_uploads");
    assert_non_null(sym);
    int (*fn)(void);
    memcpy(&fn, &sym, sizeof fn);
    dlclose(dl);
    return fn;
}

/* Weights go up once per model, again only after forget. */
static void test_fake_cache(void **state)
{
    qr_gpu_t *g = s_fake();
    int (*uploads)(void) = s_uploads_fn();
    int u0 = uploads();
    s_mod_t a = s_build(&s_defs[0]), b = s_build(&s_defs[1]);
    s_compare(g, &a, "a", 4);
    s_compare(g, &a, "a", 9);
    assert_int_equal(uploads(), u0 + 1);
    s_compare(g, &b, "b", 4);
    s_compare(g, &a, "a", 4);
    assert_int_equal(uploads(), u0 + 2);
    qr_gpu_model_forget(g, a.m);
    s_compare(g, &a, "a", 4);
    assert_int_equal(uploads(), u0 + 3);
    s_drop(g, &a);
    s_drop(g, &b);
    qr_gpu_close(&g);
}

/* The CPU path's refusals, word for word. */
static void test_fake_refusals(void **state)
{
    qr_gpu_t *g = s_fake();
    s_mod_t mlp = s_build(&s_defs[0]), emb = s_build(&s_defs[2]);
    float x[3 * 33] = {0};
    char ce[256], ge[256];
    /* rows 0, too many rows, no input */
    uint32_t bad_rows[] = {0, QR_MODEL_MAX_ROWS + 1};
    for (size_t i = 0; i < 2; i++) {
        assert_null(qr_model_forward(mlp.m, x, bad_rows[i], ce, sizeof ce));
        assert_null(qr_gpu_model_forward(g, mlp.m, x, bad_rows[i], ge, sizeof ge));
        assert_string_equal(ge, ce);
    }
    assert_null(qr_model_forward(mlp.m, NULL, 1, ce, sizeof ce));
    assert_null(qr_gpu_model_forward(g, mlp.m, NULL, 1, ge, sizeof ge));
    assert_string_equal(ge, ce);
    /* not finite */
    x[40] = NAN;
    assert_null(qr_model_forward(mlp.m, x, 3, ce, sizeof ce));
    assert_null(qr_gpu_model_forward(g, mlp.m, x, 3, ge, sizeof ge));
    assert_string_equal(ge, ce);
    x[40] = INFINITY;
    assert_null(qr_gpu_model_forward(g, mlp.m, x, 3, ge, sizeof ge));
    assert_string_equal(ge, ce);
    /* token ids: out of range, negative, not integral */
    float ids[][3] = {{1, 50, 2}, {0, -1, 2}, {0, 1, 2.5f}};
    for (size_t i = 0; i < 3; i++) {
        assert_null(qr_model_forward(emb.m, ids[i], 3, ce, sizeof ce));
        assert_null(qr_gpu_model_forward(g, emb.m, ids[i], 3, ge, sizeof ge));
        assert_string_equal(ge, ce);
    }
    /* an error in the module reaches the caller, and the handle lives on */
    setenv("QR_FAKE_CUDA_FAIL", "1", 1);
    float ok[3] = {1, 2, 3}, one = 1;
    assert_null(qr_gpu_model_forward(g, emb.m, ok, 3, ge, sizeof ge));
    assert_string_equal(ge, "GPU forward: fake failure");
    assert_int_equal(qr_gpu_sgemm(g, &one, &one, &one, 1, 1, 1, ge, sizeof ge), -1);
    assert_string_equal(ge, "GPU sgemm: fake failure");
    unsetenv("QR_FAKE_CUDA_FAIL");
    s_compare(g, &emb, "embedding after a failure", 3);
    s_drop(g, &mlp);
    s_drop(g, &emb);
    qr_gpu_close(&g);
}

/* A layer that overflows is refused with the CPU's message. */
static void test_fake_overflow(void **state)
{
    static const s_spec_t t[] = {{"w", 2, {4, 4}, 1.0f, 3e19f}};
    const s_def_t d = S_DEF("overflow", t,
                            "{\"input\":4,\"layers\":[{\"op\":\"relu\"},{\"op\":\"dense\","
                            "\"weight\":\"w\"},{\"op\":\"gelu\"}]}",
                            0);
    qr_gpu_t *g = s_fake();
    s_mod_t r = s_build(&d);
    float x[8] = {3e19f, 3e19f, 3e19f, 3e19f, 1, 1, 1, 1};
    char ce[256], ge[256];
    assert_null(qr_model_forward(r.m, x, 2, ce, sizeof ce));
    assert_null(qr_gpu_model_forward(g, r.m, x, 2, ge, sizeof ge));
    print_message("      overflow: %s\n", ge);
    assert_string_equal(ge, ce);
    s_drop(g, &r);
    qr_gpu_close(&g);
}

typedef struct {
    qr_gpu_t *g;
    const s_mod_t *r;
    int ok;
} s_thread_t;

static void *s_thread(void *arg)
{
    s_thread_t *t = arg;
    float x[5 * 8];
    for (int i = 0; i < 40; i++)
        x[i] = (float)(i % 7) - 3;
    char err[256];
    qr_model_acts_t *c = qr_model_forward(t->r->m, x, 5, err, sizeof err);
    t->ok = c != NULL;
    for (int rep = 0; rep < 50 && t->ok; rep++) {
        qr_model_acts_t *a = qr_gpu_model_forward(t->g, t->r->m, x, 5, err, sizeof err);
        t->ok = a && fabsf(qr_model_acts_output(a)[7] - qr_model_acts_output(c)[7]) < 1e-4f;
        qr_model_acts_destroy(&a);
        if (rep % 10 == 9)
            qr_gpu_model_forget(t->g, t->r->m);
    }
    qr_model_acts_destroy(&c);
    return NULL;
}

/* One handle, four threads: calls are serialised, results stay right. */
static void test_fake_threads(void **state)
{
    qr_gpu_t *g = s_fake();
    s_mod_t r = s_build(&s_defs[1]);
    pthread_t th[4];
    s_thread_t t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (s_thread_t){g, &r, 0};
        assert_int_equal(pthread_create(&th[i], NULL, s_thread, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(t[i].ok);
    }
    s_drop(g, &r);
    qr_gpu_close(&g);
}

/* ---- a real GPU, when there is one ---- */

static qr_gpu_t *s_real;
static char s_real_why[512];

/* Opens the real module once for the GPU tests. */
static int s_real_setup(void **state)
{
    s_real = qr_gpu_open(0, s_real_why, sizeof s_real_why);
    if (s_real)
        print_message("      GPU: %s (%s)\n", qr_gpu_name(s_real), qr_gpu_module_path(s_real));
    return 0;
}

static int s_real_teardown(void **state)
{
    qr_gpu_close(&s_real);
    return 0;
}

static void s_need_gpu(void)
{
    if (!s_real) {
        print_message("      GPU comparison skipped: %s\n", s_real_why);
        skip();
    }
}

static void test_gpu_models(void **state)
{
    s_need_gpu();
    s_models_on(s_real);
}

static void test_gpu_sgemm(void **state)
{
    s_need_gpu();
    s_sgemm_on(s_real);
}

/* The real cache: forget and re-upload, a destroyed model's address reused
 * for other weights without forget (the fingerprint catches it), and the
 * CPU's refusals. */
static void test_gpu_cache(void **state)
{
    s_need_gpu();
    for (int rep = 0; rep < 3; rep++) {
        s_mod_t r = s_build(&s_defs[rep % 2]);
        s_compare(s_real, &r, "cache", 7);
        s_compare(s_real, &r, "cache", 7);
        if (rep == 1)
            qr_gpu_model_forget(s_real, r.m);
        s_compare(s_real, &r, "cache after forget", 9);
        qr_model_destroy(&r.m); /* no forget: the next model may reuse the address */
        qr_st_destroy(&r.st);
    }
    s_mod_t emb = s_build(&s_defs[2]);
    float bad[2] = {1, 50};
    char ce[256], ge[256];
    assert_null(qr_model_forward(emb.m, bad, 2, ce, sizeof ce));
    assert_null(qr_gpu_model_forward(s_real, emb.m, bad, 2, ge, sizeof ge));
    assert_string_equal(ge, ce);
    s_drop(s_real, &emb);
}

int main(void)
{
    const struct CMUnitTest loader[] = {
        cmocka_unit_test(test_close_null),    cmocka_unit_test(test_missing_module),
        cmocka_unit_test(test_search),        cmocka_unit_test(test_env_not_a_library),
        cmocka_unit_test(test_not_a_module),  cmocka_unit_test(test_bad_abi),
        cmocka_unit_test(test_fake_devices),  cmocka_unit_test(test_fake_models),
        cmocka_unit_test(test_fake_sgemm),    cmocka_unit_test(test_fake_cache),
        cmocka_unit_test(test_fake_refusals), cmocka_unit_test(test_fake_overflow),
        cmocka_unit_test(test_fake_threads),
    };
    const struct CMUnitTest gpu[] = {
        cmocka_unit_test(test_gpu_models),
        cmocka_unit_test(test_gpu_sgemm),
        cmocka_unit_test(test_gpu_cache),
    };
    int rc = cmocka_run_group_tests_name("gpu loader", loader, NULL, NULL);
    rc |= cmocka_run_group_tests_name("gpu device", gpu, s_real_setup, s_real_teardown);
    return rc;
}
