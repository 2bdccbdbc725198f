/* libFuzzer target: the model graph parser (common/model.c) of ai.infer.
 *
 * The input is a graph JSON checked by qr_model_new against a fixed small
 * weights file (an embedding, dense layers with and without bias, a
 * layernorm); when it is accepted, the model runs forward on two rows and
 * every dense layer's claimed output must pass verification.
 *
 * Invariants besides "no crash / no sanitizer report / no leak": a refused
 * graph leaves a reason in err; an accepted one has consistent widths, a
 * forward pass that succeeds on valid input, and honest dense layers that
 * verify. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "safetensors.h"

#define S_CHECK(cond)                                                                           \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "fuzz_model: invariant failed at %s:%d: %s\n", __FILE__, __LINE__,  \
                    #cond);                                                                     \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

static qr_st_file_t *s_weights;

/* A safetensors image: emb [5,4], d1.w [4,4], d1.b [4], d2.w [3,4], ln.w [4], ln.b [4]. */
static void s_build(void)
{
    static const struct {
        const char *name;
        int rows, cols;
    } t[] = {{"emb", 5, 4}, {"d1.w", 4, 4}, {"d1.b", 4, 0}, {"d2.w", 3, 4}, {"ln.w", 4, 0}, {"ln.b", 4, 0}};
    char hdr[1024];
    size_t n = 0, off = 0;
    n += (size_t)snprintf(hdr + n, sizeof hdr - n, "{");
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t count = (size_t)t[i].rows * (size_t)(t[i].cols ? t[i].cols : 1);
        if (t[i].cols)
            n += (size_t)snprintf(hdr + n, sizeof hdr - n,
                                  "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                                  i ? "," : "", t[i].name, t[i].rows, t[i].cols, off, off + count * 4);
        else
            n += (size_t)snprintf(hdr + n, sizeof hdr - n,
                                  "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
                                  i ? "," : "", t[i].name, t[i].rows, off, off + count * 4);
        off += count * 4;
    }
    n += (size_t)snprintf(hdr + n, sizeof hdr - n, "}");
    size_t total = 8 + n + off;
    uint8_t *img = calloc(1, total);
    uint64_t hl = n;
    memcpy(img, &hl, 8); /* little-endian hosts only, as libFuzzer runs here */
    memcpy(img + 8, hdr, n);
    for (size_t i = 0; i < off / 4; i++) {
        float v = (float)((int)(i * 37 % 17) - 8) / 8.0f;
        memcpy(img + 8 + n + i * 4, &v, 4); /* the data need not be aligned */
    }
    char err[256];
    s_weights = qr_st_parse(img, total, err, sizeof err);
    free(img);
    if (!s_weights) {
        fprintf(stderr, "fuzz_model: weights: %s\n", err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_weights)
        s_build();
    char err[512] = "";
    qr_model_t *m = qr_model_new((const char *)data, size, s_weights, err, sizeof err);
    if (!m) {
        S_CHECK(err[0] != '\0');
        return 0;
    }
    uint32_t in = qr_model_input_width(m), layers = qr_model_layers(m);
    S_CHECK(in > 0 && layers > 0 && qr_model_output_width(m) > 0);
    if (in <= 64) {
        float x[2 * 64];
        for (uint32_t i = 0; i < 2 * in; i++)
            x[i] = (float)(i % 3); /* valid token ids too (vocab 5) */
        qr_model_acts_t *a = qr_model_forward(m, x, 2, err, sizeof err);
        if (a) {
            for (uint32_t l = 0; l < layers; l++) {
                const float *W, *b;
                uint32_t o, iw;
                if (qr_model_dense(m, l, &W, &b, &o, &iw) != 0)
                    continue;
                double worst = 0;
                int v = qr_model_verify_dense(m, l, qr_model_acts_layer(a, (int)l - 1),
                                              qr_model_acts_layer(a, (int)l), 2, 2, 7, &worst);
                S_CHECK(v == 0);
            }
            qr_model_acts_destroy(&a);
        } else
            S_CHECK(err[0] != '\0');
    }
    qr_model_destroy(&m);
    return 0;
}
