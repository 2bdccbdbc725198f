/* common/model: forward passes of small models against a naive double
 * reference written here and against numpy run at test time (skipped
 * without python3/numpy), every validation error refused with a message
 * naming the layer and tensor, forward-time input errors, concurrent
 * forwards on one model, Freivalds checks of dense layers (honest
 * activations pass, perturbed ones fail), the float element-wise
 * arithmetic against double, the accessors another runtime uses, and the
 * broker's whole-result check (qr_model_check): honest results of this
 * runtime and of a differently written one pass, every kind of tampering
 * of every layer fails at that layer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"
#include "model_ops.h"
#include "safetensors.h"

/* ---- building safetensors images in memory ---- */

typedef struct {
    const char *name;
    uint32_t ndims;
    uint64_t dims[2];
    const float *data;
} s_t;

static uint64_t s_count(const s_t *t)
{
    uint64_t c = 1;
    for (uint32_t d = 0; d < t->ndims; d++)
        c *= t->dims[d];
    return c;
}

/* An F32 image of the n tensors; caller frees. */
static uint8_t *s_image(const s_t *ts, size_t n, size_t *len)
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
    *len = 8 + o + off;
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)o >> (8 * i));
    memcpy(b + 8, hdr, o);
    uint8_t *p = b + 8 + o;
    for (size_t i = 0; i < n; i++) {
        for (uint64_t j = 0; j < s_count(&ts[i]); j++) {
            uint32_t u;
            memcpy(&u, &ts[i].data[j], 4);
            for (int k = 0; k < 4; k++)
                *p++ = (uint8_t)(u >> (8 * k));
        }
    }
    return b;
}

static qr_st_file_t *s_file(const s_t *ts, size_t n)
{
    size_t len;
    uint8_t *img = s_image(ts, n, &len);
    char err[256];
    qr_st_file_t *f = qr_st_parse(img, len, err, sizeof err);
    free(img);
    if (!f)
        fail_msg("test image refused: %s", err);
    return f;
}

/* Deterministic values in [-scale, scale). */
static uint64_t s_seed = 12345;
static void s_fill(float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) {
        s_seed = s_seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = scale * (float)((double)(s_seed >> 40) / (double)(1u << 24) * 2.0 - 1.0);
    }
}

/* ---- the two test models ---- */

/* Model A: token ids -> embedding(7 x 8) -> dense 8->16 + b -> gelu ->
 * dense 16->8 -> residual(0) -> layernorm -> dense 8->5 + b -> softmax. */
#define A_V 7
#define A_D 8
#define A_H 16
#define A_O 5
static float a_emb[A_V * A_D], a_w1[A_H * A_D], a_b1[A_H], a_w2[A_D * A_H], a_lw[A_D], a_lb[A_D],
    a_w3[A_O * A_D], a_b3[A_O];
static const s_t a_ts[] = {
    {"emb", 2, {A_V, A_D}, a_emb},        {"fc1.weight", 2, {A_H, A_D}, a_w1},
    {"fc1.bias", 1, {A_H}, a_b1},         {"fc2.weight", 2, {A_D, A_H}, a_w2},
    {"ln.weight", 1, {A_D}, a_lw},        {"ln.bias", 1, {A_D}, a_lb},
    {"head.weight", 2, {A_O, A_D}, a_w3}, {"head.bias", 1, {A_O}, a_b3},
};
static const char a_graph[] =
    "{\"input\": 1, \"layers\": ["
    "{\"op\": \"embedding\", \"weight\": \"emb\"},"
    "{\"op\": \"dense\", \"weight\": \"fc1.weight\", \"bias\": \"fc1.bias\"},"
    "{\"op\": \"gelu\"},"
    "{\"op\": \"dense\", \"weight\": \"fc2.weight\"},"
    "{\"op\": \"residual\", \"from\": 0},"
    "{\"op\": \"layernorm\", \"weight\": \"ln.weight\", \"bias\": \"ln.bias\", \"eps\": 1e-5},"
    "{\"op\": \"dense\", \"weight\": \"head.weight\", \"bias\": \"head.bias\"},"
    "{\"op\": \"softmax\"}]}";

/* Model B: 4 wide input -> dense 4->4 + b -> relu -> residual(-1) ->
 * layernorm without bias (eps default) -> softmax. */
#define B_D 4
static float b_w[B_D * B_D], b_b[B_D], b_lw[B_D];
static const s_t b_ts[] = {
    {"d.w", 2, {B_D, B_D}, b_w}, {"d.b", 1, {B_D}, b_b}, {"n.w", 1, {B_D}, b_lw}};
static const char b_graph[] = "{\"layers\": [{\"op\": \"dense\", \"weight\": \"d.w\", \"bias\": "
                              "\"d.b\"}, {\"op\": \"relu\"}, {\"op\": \"residual\", \"from\": -1}, "
                              "{\"op\": \"layernorm\", \"weight\": \"n.w\"}, {\"op\": "
                              "\"softmax\"}], \"input\": 4}";

static int s_ready;
static void s_init(void)
{
    if (s_ready)
        return;
    s_fill(a_emb, sizeof a_emb / 4, 1.0f);
    s_fill(a_w1, sizeof a_w1 / 4, 0.5f);
    s_fill(a_b1, sizeof a_b1 / 4, 0.5f);
    s_fill(a_w2, sizeof a_w2 / 4, 0.4f);
    s_fill(a_lw, sizeof a_lw / 4, 1.0f);
    s_fill(a_lb, sizeof a_lb / 4, 0.2f);
    s_fill(a_w3, sizeof a_w3 / 4, 1.0f);
    s_fill(a_b3, sizeof a_b3 / 4, 0.3f);
    s_fill(b_w, sizeof b_w / 4, 1.0f);
    s_fill(b_b, sizeof b_b / 4, 0.5f);
    s_fill(b_lw, sizeof b_lw / 4, 2.0f);
    s_ready = 1;
}

/* ---- a naive reference, in double, written from the definitions ---- */

typedef struct {
    int op;
    uint32_t out;
    const float *w, *b;
    int from;
    double eps;
} s_ref_layer_t;

/* Runs the reference; acts[i + 1] gets layer i (rows x out, double). */
static void s_ref(const s_ref_layer_t *Ls, uint32_t n, uint32_t in_w, const float *in,
                  uint32_t rows, double **acts, uint32_t *widths)
{
    widths[0] = in_w;
    acts[0] = malloc(sizeof(double) * rows * in_w);
    for (size_t j = 0; j < (size_t)rows * in_w; j++)
        acts[0][j] = in[j];
    for (uint32_t i = 0; i < n; i++) {
        const s_ref_layer_t *L = &Ls[i];
        uint32_t win = widths[i], wout = L->out ? L->out : win;
        widths[i + 1] = wout;
        double *x = acts[i], *y = malloc(sizeof(double) * rows * wout);
        acts[i + 1] = y;
        for (uint32_t r = 0; r < rows; r++) {
            double *xr = x + (size_t)r * win, *yr = y + (size_t)r * wout;
            double mean = 0, var = 0, mx = -INFINITY, sum = 0;
            switch (L->op) {
            case QR_MODEL_EMBEDDING:
                for (uint32_t o = 0; o < wout; o++)
                    yr[o] = L->w[(size_t)xr[0] * wout + o];
                break;
            case QR_MODEL_DENSE:
                for (uint32_t o = 0; o < wout; o++) {
                    double s = L->b ? L->b[o] : 0.0;
                    for (uint32_t j = 0; j < win; j++)
                        s += xr[j] * L->w[(size_t)o * win + j];
                    yr[o] = s;
                }
                break;
            case QR_MODEL_RELU:
                for (uint32_t j = 0; j < win; j++)
                    yr[j] = xr[j] > 0 ? xr[j] : 0;
                break;
            case QR_MODEL_GELU:
                for (uint32_t j = 0; j < win; j++)
                    yr[j] = 0.5 * xr[j] *
                            (1 + tanh(sqrt(2 / 3.14159265358979323846) *
                                      (xr[j] + 0.044715 * pow(xr[j], 3))));
                break;
            case QR_MODEL_LAYERNORM:
                for (uint32_t j = 0; j < win; j++)
                    mean += xr[j] / win;
                for (uint32_t j = 0; j < win; j++)
                    var += (xr[j] - mean) * (xr[j] - mean) / win;
                for (uint32_t j = 0; j < win; j++)
                    yr[j] = (xr[j] - mean) / sqrt(var + L->eps) * L->w[j] + (L->b ? L->b[j] : 0);
                break;
            case QR_MODEL_SOFTMAX:
                for (uint32_t j = 0; j < win; j++)
                    mx = fmax(mx, xr[j]);
                for (uint32_t j = 0; j < win; j++)
                    sum += exp(xr[j] - mx);
                for (uint32_t j = 0; j < win; j++)
                    yr[j] = exp(xr[j] - mx) / sum;
                break;
            case QR_MODEL_RESIDUAL:
                for (uint32_t j = 0; j < win; j++)
                    yr[j] = xr[j] + acts[L->from + 1][(size_t)r * win + j];
                break;
            }
        }
    }
}

static const s_ref_layer_t a_ref[] = {
    {QR_MODEL_EMBEDDING, A_D, a_emb, NULL, 0, 0}, {QR_MODEL_DENSE, A_H, a_w1, a_b1, 0, 0},
    {QR_MODEL_GELU, 0, NULL, NULL, 0, 0},         {QR_MODEL_DENSE, A_D, a_w2, NULL, 0, 0},
    {QR_MODEL_RESIDUAL, 0, NULL, NULL, 0, 0},     {QR_MODEL_LAYERNORM, 0, a_lw, a_lb, 0, 1e-5},
    {QR_MODEL_DENSE, A_O, a_w3, a_b3, 0, 0},      {QR_MODEL_SOFTMAX, 0, NULL, NULL, 0, 0},
};
static const s_ref_layer_t b_ref[] = {
    {QR_MODEL_DENSE, B_D, b_w, b_b, 0, 0},     {QR_MODEL_RELU, 0, NULL, NULL, 0, 0},
    {QR_MODEL_RESIDUAL, 0, NULL, NULL, -1, 0}, {QR_MODEL_LAYERNORM, 0, b_lw, NULL, 0, 1e-5},
    {QR_MODEL_SOFTMAX, 0, NULL, NULL, 0, 0},
};

static void s_close(const float *got, const double *want, size_t n, double tol, const char *what,
                    uint32_t layer)
{
    for (size_t j = 0; j < n; j++)
        if (!(fabs(got[j] - want[j]) <= tol * (1 + fabs(want[j]))))
            fail_msg("%s: layer %u [%zu]: got %.9g, want %.9g", what, layer, j, (double)got[j],
                     want[j]);
}

/* Builds the model, runs it and compares every layer with the reference. */
static void s_check_model(const s_t *ts, size_t nts, const char *graph, const s_ref_layer_t *ref,
                          uint32_t nl, const float *in, uint32_t rows)
{
    qr_st_file_t *f = s_file(ts, nts);
    char err[512] = "x";
    qr_model_t *m = qr_model_new(graph, strlen(graph), f, err, sizeof err);
    if (!m)
        fail_msg("model refused: %s", err);
    assert_string_equal(err, "");
    assert_int_equal(qr_model_layers(m), nl);
    qr_model_acts_t *a = qr_model_forward(m, in, rows, err, sizeof err);
    if (!a)
        fail_msg("forward failed: %s", err);
    assert_int_equal(qr_model_acts_rows(a), rows);
    double *acts[16];
    uint32_t widths[17];
    s_ref(ref, nl, qr_model_input_width(m), in, rows, acts, widths);
    for (int i = -1; i < (int)nl; i++) {
        assert_int_equal(i < 0 ? qr_model_input_width(m) : qr_model_layer_width(m, (uint32_t)i),
                         widths[i + 1]);
        s_close(qr_model_acts_layer(a, i), acts[i + 1], (size_t)rows * widths[i + 1], 2e-5, "naive",
                (uint32_t)i);
        free(acts[i + 1]);
    }
    assert_ptr_equal(qr_model_acts_output(a), qr_model_acts_layer(a, (int)nl - 1));
    assert_null(qr_model_acts_layer(a, (int)nl));
    assert_null(qr_model_acts_layer(a, -2));
    qr_model_acts_destroy(&a);
    assert_null(a);
    qr_model_destroy(&m);
    assert_null(m);
    qr_st_destroy(&f);
}

static void test_forward(void **state)
{
    (void)state;
    s_init();
    float ids[] = {0, 3, 6, 1, 1, 5, 2, 4, 0};
    s_check_model(a_ts, 8, a_graph, a_ref, 8, ids, 9);

    float in[6 * B_D];
    s_fill(in, 6 * B_D, 2.0f);
    s_check_model(b_ts, 3, b_graph, b_ref, 5, in, 6);
}

static void test_queries(void **state)
{
    (void)state;
    s_init();
    qr_st_file_t *f = s_file(a_ts, 8);
    qr_model_t *m = qr_model_new(a_graph, strlen(a_graph), f, NULL, 0);
    assert_non_null(m);
    assert_int_equal(qr_model_input_width(m), 1);
    assert_int_equal(qr_model_output_width(m), A_O);
    assert_int_equal(qr_model_layers(m), 8);
    const int ops[] = {QR_MODEL_EMBEDDING, QR_MODEL_DENSE,     QR_MODEL_GELU,  QR_MODEL_DENSE,
                       QR_MODEL_RESIDUAL,  QR_MODEL_LAYERNORM, QR_MODEL_DENSE, QR_MODEL_SOFTMAX};
    const uint32_t outs[] = {A_D, A_H, A_H, A_D, A_D, A_D, A_O, A_O};
    const char *names[] = {"embedding", "dense",     "gelu",  "dense",
                           "residual",  "layernorm", "dense", "softmax"};
    for (uint32_t i = 0; i < 8; i++) {
        assert_int_equal(qr_model_op(m, i), ops[i]);
        assert_string_equal(qr_model_op_name(qr_model_op(m, i)), names[i]);
        assert_int_equal(qr_model_layer_width(m, i), outs[i]);
        assert_int_equal(qr_model_layer_in_width(m, i), i ? outs[i - 1] : 1);
        assert_int_equal(qr_model_residual_from(m, i), i == 4 ? 0 : -2);
    }
    assert_int_equal(qr_model_op(m, 8), -1);
    assert_int_equal(qr_model_layer_width(m, 8), 0);
    assert_int_equal(qr_model_layer_in_width(m, 8), 0);
    assert_string_equal(qr_model_op_name(-1), "?");
    assert_string_equal(qr_model_op_name(99), "?");

    const float *W, *b;
    uint32_t o, in;
    assert_int_equal(qr_model_dense(m, 1, &W, &b, &o, &in), 0);
    assert_ptr_equal(W, qr_st_find(f, "fc1.weight")->data);
    assert_ptr_equal(b, qr_st_find(f, "fc1.bias")->data);
    assert_int_equal(o, A_H);
    assert_int_equal(in, A_D);
    assert_int_equal(qr_model_dense(m, 3, &W, &b, &o, &in), 0);
    assert_null(b);
    assert_int_equal(in, A_H);
    assert_int_equal(qr_model_dense(m, 2, &W, &b, &o, &in), -1);
    assert_null(W);
    assert_int_equal(o, 0);
    assert_int_equal(qr_model_dense(m, 99, NULL, NULL, NULL, NULL), -1);
    qr_model_destroy(&m);
    qr_st_destroy(&f);
}

/* ---- validation ---- */

static qr_st_file_t *s_vfile;

/* Expects graph to be refused with a message containing want. */
static void s_bad(const char *graph, const char *want, int line)
{
    char err[512] = "";
    qr_model_t *m = qr_model_new(graph, strlen(graph), s_vfile, err, sizeof err);
    if (m) {
        qr_model_destroy(&m);
        fail_msg("line %d: accepted, wanted \"%s\"", line, want);
    }
    if (!strstr(err, want))
        fail_msg("line %d: message \"%s\" lacks \"%s\"", line, err, want);
    assert_null(qr_model_new(graph, strlen(graph), s_vfile, NULL, 0));
    char tiny[4];
    assert_null(qr_model_new(graph, strlen(graph), s_vfile, tiny, sizeof tiny));
    assert_true(strlen(tiny) < sizeof tiny);
}
#define BAD(g, want) s_bad(g, want, __LINE__)
/* a graph with input 8 and the given layers */
#define G8(layers) "{\"input\":8,\"layers\":[" layers "]}"
#define D1 "{\"op\":\"dense\",\"weight\":\"fc1.weight\",\"bias\":\"fc1.bias\"}"

static void test_validation(void **state)
{
    (void)state;
    s_init();
    static float inf_w[2] = {1.0f, INFINITY};
    s_t ts[10];
    memcpy(ts, a_ts, sizeof a_ts);
    ts[8] = (s_t){"bad", 1, {2}, inf_w};
    ts[9] = (s_t){"scalar", 0, {0}, inf_w};
    s_vfile = s_file(ts, 10);

    /* the JSON and the top level */
    BAD("", "graph is not valid JSON");
    BAD("{\"input\":8,", "graph is not valid JSON");
    BAD("[]", "graph is not a JSON object");
    BAD("{\"input\":8,\"input\":8,\"layers\":[{\"op\":\"relu\"}]}", "duplicate");
    BAD("{\"input\":8,\"layers\":[{\"op\":\"relu\"}],\"name\":\"x\"}", "unknown field \"name\"");
    BAD("{\"layers\":[{\"op\":\"relu\"}]}", "\"input\" must be an integer width");
    BAD("{\"input\":0,\"layers\":[{\"op\":\"relu\"}]}", "\"input\" must be");
    BAD("{\"input\":8.0,\"layers\":[{\"op\":\"relu\"}]}", "\"input\" must be");
    BAD("{\"input\":65537,\"layers\":[{\"op\":\"relu\"}]}", "\"input\" must be");
    BAD("{\"input\":8}", "\"layers\" must be an array");
    BAD("{\"input\":8,\"layers\":[]}", "\"layers\" must be an array of 1..");
    BAD("{\"input\":8,\"layers\":{}}", "\"layers\" must be");
    assert_null(qr_model_new(NULL, 0, s_vfile, NULL, 0));

    /* ops and fields */
    BAD(G8("3"), "layer 0: not a JSON object");
    BAD(G8("{\"weight\":\"emb\"}"), "layer 0: \"op\" is missing");
    BAD(G8("{\"op\":7}"), "layer 0: \"op\" is not a string");
    BAD(G8("{\"op\":\"relu\"},{\"op\":\"conv2d\"}"), "layer 1: unknown op \"conv2d\"");
    BAD(G8("{\"op\":\"relu\"},{\"op\":\"Relu\"}"), "layer 1: unknown op \"Relu\"");
    BAD(G8("{\"op\":\"relu\",\"inplace\":true}"), "layer 0 (relu): unknown field \"inplace\"");
    BAD(G8("{\"op\":\"softmax\",\"dim\":1}"), "layer 0 (softmax): unknown field \"dim\"");
    BAD(G8("{\"op\":\"gelu\",\"approximate\":\"none\"}"), "layer 0 (gelu): unknown field");
    BAD(G8("{\"op\":\"dense\",\"weight\":\"fc1.weight\",\"bais\":\"fc1.bias\"}"),
        "layer 0 (dense): unknown field \"bais\"");
    BAD(G8("{\"op\":\"dense\"}"), "layer 0 (dense): \"weight\" is missing");
    BAD(G8("{\"op\":\"dense\",\"weight\":3}"), "layer 0 (dense): \"weight\" is not a tensor name");
    BAD(G8("{\"op\":\"layernorm\"}"), "layer 0 (layernorm): \"weight\" is missing");
    BAD(G8("{\"op\":\"residual\"}"), "layer 0 (residual): \"from\" is missing");
    BAD(G8("{\"op\":\"relu\"},{\"op\":\"residual\",\"from\":\"0\"}"),
        "layer 1 (residual): \"from\" is not an integer");

    /* tensors */
    BAD(G8("{\"op\":\"dense\",\"weight\":\"nope\"}"),
        "layer 0 (dense): tensor 'nope' (\"weight\") is not in the weights file");
    BAD(G8("{\"op\":\"relu\"},{\"op\":\"layernorm\",\"weight\":\"ln.weight\",\"bias\":\"missing."
           "b\"}"),
        "layer 1 (layernorm): tensor 'missing.b' (\"bias\") is not in the weights file");
    BAD(G8("{\"op\":\"dense\",\"weight\":\"fc1.bias\"}"),
        "layer 0 (dense): tensor 'fc1.bias' has shape [16], expected 2 dimensions");
    BAD(G8("{\"op\":\"dense\",\"weight\":\"fc1.weight\",\"bias\":\"fc1.weight\"}"),
        "tensor 'fc1.weight' has shape [16, 8], expected 1 dimension");
    BAD(G8("{\"op\":\"dense\",\"weight\":\"fc1.weight\",\"bias\":\"ln.bias\"}"),
        "layer 0 (dense): tensor 'ln.bias' has shape [8], but dimension 0 must be 16");
    BAD(G8("{\"op\":\"dense\",\"weight\":\"fc1.weight\",\"bias\":\"bad\"}"),
        "layer 0 (dense): tensor 'bad' holds inf or NaN");
    BAD(G8("{\"op\":\"dense\",\"weight\":\"scalar\"}"), "tensor 'scalar' has shape [], expected 2");
    BAD(G8("{\"op\":\"layernorm\",\"weight\":\"fc1.bias\"}"),
        "layer 0 (layernorm): tensor 'fc1.bias' has shape [16], but dimension 0 must be 8");
    BAD(G8("{\"op\":\"layernorm\",\"weight\":\"ln.weight\",\"eps\":0}"),
        "layer 0 (layernorm): \"eps\" must be a positive number");
    BAD(G8("{\"op\":\"layernorm\",\"weight\":\"ln.weight\",\"eps\":\"1e-5\"}"), "\"eps\" must be");

    /* width chaining: fc1 takes 8 and gives 16, so a second fc1 does not fit */
    BAD(G8(D1 "," D1), "layer 1 (dense): tensor 'fc1.weight' has shape [16, 8], but dimension 1 "
                       "must be 16 (the width of the layer's input)");
    BAD("{\"input\":5,\"layers\":[" D1 "]}", "layer 0 (dense): tensor 'fc1.weight' has shape "
                                             "[16, 8], but dimension 1 must be 5");
    BAD(G8(D1 ",{\"op\":\"gelu\"},{\"op\":\"layernorm\",\"weight\":\"ln.weight\"}"),
        "layer 2 (layernorm): tensor 'ln.weight' has shape [8], but dimension 0 must be 16");

    /* residuals */
    BAD(G8(D1 ",{\"op\":\"residual\",\"from\":-1}"),
        "layer 1 (residual): width 8 of the model input -1 does not match the width 16");
    BAD(G8(D1 ",{\"op\":\"gelu\"},{\"op\":\"dense\",\"weight\":\"fc2.weight\"},"
              "{\"op\":\"residual\",\"from\":1}"),
        "layer 3 (residual): width 16 of layer 1 does not match the width 8");
    BAD(G8("{\"op\":\"relu\"},{\"op\":\"residual\",\"from\":1}"),
        "layer 1 (residual): \"from\" 1 is out of range (-1 for the input, or an earlier layer "
        "0..0)");
    BAD(G8("{\"op\":\"residual\",\"from\":0}"), "layer 0 (residual): \"from\" 0 is out of range");
    BAD(G8("{\"op\":\"residual\",\"from\":-2}"), "\"from\" -2 is out of range");

    /* embeddings */
    BAD("{\"input\":1,\"layers\":[{\"op\":\"relu\"},{\"op\":\"embedding\",\"weight\":\"emb\"}]}",
        "layer 1 (embedding): an embedding must be the first layer");
    BAD(G8("{\"op\":\"embedding\",\"weight\":\"emb\"}"),
        "layer 0 (embedding): \"input\" must be 1 (one token id per row), not 8");
    BAD("{\"input\":1,\"layers\":[{\"op\":\"embedding\",\"weight\":\"ln.weight\"}]}",
        "layer 0 (embedding): tensor 'ln.weight' has shape [8], expected 2 dimensions");
    BAD("{\"input\":1,\"layers\":[{\"op\":\"embedding\",\"weight\":\"emb\",\"bias\":\"x\"}]}",
        "layer 0 (embedding): unknown field \"bias\"");

    /* the good ones still pass with this file (extra tensors are fine) */
    char err[256];
    qr_model_t *m = qr_model_new(a_graph, strlen(a_graph), s_vfile, err, sizeof err);
    assert_non_null(m);
    qr_model_destroy(&m);
    /* the length is honoured: the graph need not be NUL-terminated */
    assert_null(qr_model_new(a_graph, strlen(a_graph) - 1, s_vfile, err, sizeof err));
    assert_non_null(strstr(err, "not valid JSON"));
    qr_st_destroy(&s_vfile);
}

static void test_forward_errors(void **state)
{
    (void)state;
    s_init();
    qr_st_file_t *f = s_file(a_ts, 8);
    qr_model_t *m = qr_model_new(a_graph, strlen(a_graph), f, NULL, 0);
    assert_non_null(m);
    char err[256];
    struct {
        float id;
        const char *want;
    } cases[] = {
        {7.0f, "layer 0 (embedding): row 1: token id 7 is not an integer in [0, 7)"},
        {-1.0f, "token id -1 is not"},
        {1.5f, "token id 1.5 is not"},
        {1e30f, "is not an integer"},
        {NAN, "the input holds inf or NaN"},
        {INFINITY, "the input holds inf or NaN"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        float ids[3] = {0.0f, cases[c].id, 2.0f};
        assert_null(qr_model_forward(m, ids, 3, err, sizeof err));
        if (!strstr(err, cases[c].want))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", c, err, cases[c].want);
        assert_null(qr_model_forward(m, ids, 3, NULL, 0));
    }
    float ids[1] = {0.0f};
    assert_null(qr_model_forward(m, ids, 0, err, sizeof err));
    assert_non_null(strstr(err, "rows must be 1.."));
    assert_null(qr_model_forward(m, NULL, 1, err, sizeof err));
    assert_null(qr_model_forward(m, ids, QR_MODEL_MAX_ROWS + 1, err, sizeof err));
    qr_model_destroy(&m);
    qr_st_destroy(&f);

    /* finite weights and input, but the product overflows fp32 */
    static float big[1] = {3e38f};
    s_t t = {"big", 2, {1, 1}, big};
    f = s_file(&t, 1);
    const char *g = "{\"input\":1,\"layers\":[{\"op\":\"dense\",\"weight\":\"big\"}]}";
    m = qr_model_new(g, strlen(g), f, err, sizeof err);
    assert_non_null(m);
    float x[2] = {0.5f, 10.0f};
    assert_null(qr_model_forward(m, x, 2, err, sizeof err));
    assert_non_null(strstr(err, "layer 0 (dense): output is not finite"));
    qr_model_acts_t *a = qr_model_forward(m, x, 1, err, sizeof err);
    assert_non_null(a);
    assert_true(qr_model_acts_output(a)[0] == 1.5e38f);
    qr_model_acts_destroy(&a);
    qr_model_destroy(&m);
    qr_st_destroy(&f);
}

/* Extremes the numerics must survive: softmax of huge logits, gelu far out,
 * layernorm of a row with a large mean and a small spread, and of a
 * constant row. */
static void test_numerics(void **state)
{
    (void)state;
    static float one[4] = {1, 1, 1, 1};
    s_t t = {"one", 1, {4}, one};
    qr_st_file_t *f = s_file(&t, 1);
    const char *g = "{\"input\":4,\"layers\":[{\"op\":\"softmax\"}]}";
    qr_model_t *m = qr_model_new(g, strlen(g), f, NULL, 0);
    float x[8] = {1e30f, 1e30f, -1e30f, 0, 88.0f, 89.0f, 90.0f, 91.0f};
    qr_model_acts_t *a = qr_model_forward(m, x, 2, NULL, 0);
    assert_non_null(a);
    const float *y = qr_model_acts_output(a);
    assert_true(y[0] == 0.5f && y[1] == 0.5f && y[2] == 0.0f && y[3] == 0.0f);
    double s = 0;
    for (int j = 4; j < 8; j++)
        s += y[j];
    assert_true(fabs(s - 1) < 1e-6 && y[7] > y[6]);
    qr_model_acts_destroy(&a);
    qr_model_destroy(&m);

    g = "{\"input\":4,\"layers\":[{\"op\":\"gelu\"}]}";
    m = qr_model_new(g, strlen(g), f, NULL, 0);
    float gx[4] = {-1e30f, 1e30f, -10.0f, 3e38f};
    a = qr_model_forward(m, gx, 1, NULL, 0);
    assert_non_null(a);
    y = qr_model_acts_output(a);
    assert_true(y[0] == 0.0f && y[1] == 1e30f && y[3] == 3e38f);
    /* gelu(-10) is about -10 * Phi(-10) ~ -7.7e-23: tiny but not flushed */
    assert_true(y[2] < 0 && y[2] > -1e-20f);
    qr_model_acts_destroy(&a);
    qr_model_destroy(&m);

    g = "{\"input\":4,\"layers\":[{\"op\":\"layernorm\",\"weight\":\"one\",\"eps\":1e-12}]}";
    m = qr_model_new(g, strlen(g), f, NULL, 0);
    float lx[8] = {10000.0f, 10000.001f, 9999.999f, 10000.0f, 5, 5, 5, 5};
    a = qr_model_forward(m, lx, 2, NULL, 0);
    assert_non_null(a);
    y = qr_model_acts_output(a);
    /* the float inputs are 10000, 10000.0009765625, 9999.9990234375 */
    double mean = (10000.0 * 2 + 10000.0009765625 + 9999.9990234375) / 4, var = 0;
    for (int j = 0; j < 4; j++)
        var += ((double)lx[j] - mean) * ((double)lx[j] - mean) / 4;
    for (int j = 0; j < 4; j++)
        assert_true(fabs(y[j] - ((double)lx[j] - mean) / sqrt(var + 1e-12)) < 1e-5);
    for (int j = 4; j < 8; j++)
        assert_true(y[j] == 0.0f);
    qr_model_acts_destroy(&a);
    qr_model_destroy(&m);
    qr_st_destroy(&f);
}

/* ---- concurrency ---- */

typedef struct {
    const qr_model_t *m;
    const float *in;
    uint32_t rows;
    const float *want;
    size_t n;
    int ok;
} s_job_t;

static void *s_worker(void *arg)
{
    s_job_t *j = arg;
    j->ok = 1;
    for (int it = 0; it < 50 && j->ok; it++) {
        qr_model_acts_t *a = qr_model_forward(j->m, j->in, j->rows, NULL, 0);
        j->ok = a && memcmp(qr_model_acts_output(a), j->want, j->n * sizeof(float)) == 0;
        qr_model_acts_destroy(&a);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    s_init();
    qr_st_file_t *f = s_file(a_ts, 8);
    qr_model_t *m = qr_model_new(a_graph, strlen(a_graph), f, NULL, 0);
    float ids[64];
    for (int i = 0; i < 64; i++)
        ids[i] = (float)(i * 5 % A_V);
    qr_model_acts_t *ref = qr_model_forward(m, ids, 64, NULL, 0);
    assert_non_null(ref);
    pthread_t th[4];
    s_job_t jobs[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (s_job_t){m, ids, 64, qr_model_acts_output(ref), 64 * A_O, 0};
        assert_int_equal(pthread_create(&th[t], NULL, s_worker, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_true(jobs[t].ok);
    }
    qr_model_acts_destroy(&ref);
    qr_model_destroy(&m);
    qr_st_destroy(&f);
}

/* ---- dense-layer verification ---- */

static void test_verify_dense(void **state)
{
    (void)state;
    s_init();
    qr_st_file_t *f = s_file(a_ts, 8);
    qr_model_t *m = qr_model_new(a_graph, strlen(a_graph), f, NULL, 0);
    float ids[32];
    for (int i = 0; i < 32; i++)
        ids[i] = (float)(i * 3 % A_V);
    qr_model_acts_t *a = qr_model_forward(m, ids, 32, NULL, 0);
    assert_non_null(a);
    const uint32_t dense[] = {1, 3, 6};
    for (size_t d = 0; d < 3; d++) {
        uint32_t i = dense[d], w = qr_model_layer_width(m, i);
        const float *x = qr_model_acts_layer(a, (int)i - 1), *y = qr_model_acts_layer(a, (int)i);
        double worst = -1;
        assert_int_equal(qr_model_verify_dense(m, i, x, y, 32, 3, 42 + d, &worst), 0);
        assert_true(worst >= 0 && worst <= 1);
        /* one element off by a relative 1e-3 is caught */
        float *bad = malloc((size_t)32 * w * sizeof *bad);
        memcpy(bad, y, (size_t)32 * w * sizeof *bad);
        bad[17 * w + 2] *= 1.001f;
        assert_int_equal(qr_model_verify_dense(m, i, x, bad, 32, 3, 7, &worst), 1);
        assert_true(worst > 1);
        /* a result computed without the bias is caught too */
        const float *b;
        qr_model_dense(m, i, NULL, &b, NULL, NULL);
        if (b) {
            memcpy(bad, y, (size_t)32 * w * sizeof *bad);
            for (uint32_t r = 0; r < 32; r++)
                for (uint32_t o = 0; o < w; o++)
                    bad[r * w + o] -= b[o];
            assert_int_equal(qr_model_verify_dense(m, i, x, bad, 32, 2, 9, NULL), 1);
        }
        /* NaN in the claimed output never passes */
        memcpy(bad, y, (size_t)32 * w * sizeof *bad);
        bad[5] = NAN;
        assert_int_equal(qr_model_verify_dense(m, i, x, bad, 32, 2, 9, NULL), 1);
        free(bad);
    }
    /* not a dense layer, no rows, no data */
    const float *x = qr_model_acts_layer(a, 1), *y = qr_model_acts_layer(a, 2);
    assert_int_equal(qr_model_verify_dense(m, 2, x, y, 32, 2, 1, NULL), -1);
    assert_int_equal(qr_model_verify_dense(m, 0, x, y, 32, 2, 1, NULL), -1);
    assert_int_equal(qr_model_verify_dense(m, 1, x, y, 0, 2, 1, NULL), -1);
    assert_int_equal(qr_model_verify_dense(m, 1, NULL, y, 32, 2, 1, NULL), -1);
    assert_int_equal(qr_model_verify_dense(NULL, 1, x, y, 32, 2, 1, NULL), -1);
    qr_model_acts_destroy(&a);
    qr_model_destroy(&m);
    qr_st_destroy(&f);
}

/* A bias that dwarfs the product: y - b would cancel catastrophically, so
 * an honest result is checked with the bias folded into the product. */
static void test_verify_big_bias(void **state)
{
    (void)state;
    static float w[4 * 64], b[4];
    s_fill(w, 4 * 64, 1e-3f);
    for (int o = 0; o < 4; o++)
        b[o] = 1e4f * (float)(o + 1);
    s_t ts[] = {{"w", 2, {4, 64}, w}, {"b", 1, {4}, b}};
    qr_st_file_t *f = s_file(ts, 2);
    const char *g =
        "{\"input\":64,\"layers\":[{\"op\":\"dense\",\"weight\":\"w\",\"bias\":\"b\"}]}";
    qr_model_t *m = qr_model_new(g, strlen(g), f, NULL, 0);
    assert_non_null(m);
    float x[16 * 64];
    s_fill(x, 16 * 64, 1e-3f);
    qr_model_acts_t *a = qr_model_forward(m, x, 16, NULL, 0);
    assert_non_null(a);
    for (uint64_t seed = 1; seed < 20; seed++)
        assert_int_equal(qr_model_verify_dense(m, 0, x, qr_model_acts_output(a), 16, 4, seed, NULL),
                         0);
    qr_model_acts_destroy(&a);
    qr_model_destroy(&m);
    qr_st_destroy(&f);
}

/* ---- element-wise arithmetic (model_ops.h) against double ---- */

static double s_ulps(float got, double want)
{
    if (want == 0)
        return got == 0 ? 0 : INFINITY;
    return fabs(got - want) / (fabs(want) * 0x1p-23);
}

static double s_gelu_ref(double x)
{
    return 0.5 * x * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
}

static void test_ops_accuracy(void **state)
{
    (void)state;
    /* exp: within 2 ulp over the whole normal range, exact special cases */
    double worst = 0;
    for (double x = -86.9; x <= 88.7; x += 0.001237) {
        double u = s_ulps(qr_op_exp((float)x), exp((double)(float)x));
        worst = u > worst ? u : worst;
    }
    if (!(worst <= 2.0))
        fail_msg("qr_op_exp: %.2f ulp", worst);
    assert_true(qr_op_exp(0.0f) == 1.0f);
    assert_true(qr_op_exp(-INFINITY) == 0.0f && qr_op_exp(-100.0f) == 0.0f);
    assert_true(isinf(qr_op_exp(INFINITY)) && isinf(qr_op_exp(89.0f)));
    assert_true(isfinite(qr_op_exp(88.72f)) && qr_op_exp(88.72f) > 3.3e38f);
    assert_true(isnan(qr_op_exp(NAN)));

    /* gelu: relative 1e-6 where it is not tiny; absolute 1e-6 |x| beyond */
    for (double x = -12; x <= 12; x += 0.000731) {
        float xf = (float)x;
        double want = s_gelu_ref(xf), got = qr_op_gelu(xf);
        if (!(fabs(got - want) <= 1e-6 * fabs(want) + 1e-7 * fabs(xf) * (xf < -3) + 1e-37))
            fail_msg("gelu(%.9g) = %.9g, want %.9g", (double)xf, got, want);
    }
    assert_true(qr_op_gelu(0.0f) == 0.0f && qr_op_gelu(1e30f) == 1e30f &&
                qr_op_gelu(-1e30f) == 0.0f);
    assert_true(isnan(qr_op_gelu(NAN)));
    assert_true(qr_op_relu(-1.0f) == 0.0f && qr_op_relu(2.5f) == 2.5f);
    assert_true(qr_op_layernorm(3.0f, 1.0f, 0.5f, 2.0f, 0.25f) == 2.25f);
    assert_true(fabsf(qr_op_softmax(1.0f, 1.0f, 0.25f) - 0.25f) < 1e-8f);
}

/* A wide model of the element-wise ops on large-ish values, against the
 * double reference: the float arithmetic stays within 1e-5 relative. */
static void test_forward_wide(void **state)
{
    (void)state;
    enum { W = 1000, R = 7 };
    static float lw[W], lb[W];
    s_fill(lw, W, 1.0f);
    s_fill(lb, W, 0.5f);
    s_t ts[] = {{"lw", 1, {W}, lw}, {"lb", 1, {W}, lb}};
    qr_st_file_t *f = s_file(ts, 2);
    const char *g =
        "{\"input\":1000,\"layers\":[{\"op\":\"gelu\"},{\"op\":\"residual\",\"from\":-1},"
        "{\"op\":\"layernorm\",\"weight\":\"lw\",\"bias\":\"lb\"},{\"op\":\"relu\"},"
        "{\"op\":\"softmax\"}]}";
    qr_model_t *m = qr_model_new(g, strlen(g), f, NULL, 0);
    assert_non_null(m);
    static float in[R * W];
    s_fill(in, R * W, 6.0f);
    for (int j = 0; j < W; j++)
        in[j] += 300.0f; /* row 0: a large mean against the spread */
    const s_ref_layer_t ref[] = {{QR_MODEL_GELU, 0, NULL, NULL, 0, 0},
                                 {QR_MODEL_RESIDUAL, 0, NULL, NULL, -1, 0},
                                 {QR_MODEL_LAYERNORM, 0, lw, lb, 0, 1e-5},
                                 {QR_MODEL_RELU, 0, NULL, NULL, 0, 0},
                                 {QR_MODEL_SOFTMAX, 0, NULL, NULL, 0, 0}};
    double *acts[6];
    uint32_t widths[6];
    s_ref(ref, 5, W, in, R, acts, widths);
    qr_model_acts_t *a = qr_model_forward(m, in, R, NULL, 0);
    assert_non_null(a);
    for (int i = 0; i < 5; i++)
        s_close(qr_model_acts_layer(a, i), acts[i + 1], (size_t)R * W, 1e-5, "wide", (uint32_t)i);
    for (int i = 0; i < 6; i++)
        free(acts[i]);
    qr_model_acts_destroy(&a);
    qr_model_destroy(&m);
    qr_st_destroy(&f);
}

/* ---- the accessors another runtime uses ---- */

static void test_layer_acts_new(void **state)
{
    (void)state;
    s_init();
    qr_st_file_t *f = s_file(a_ts, 8);
    qr_model_t *m = qr_model_new(a_graph, strlen(a_graph), f, NULL, 0);
    assert_non_null(m);
    qr_model_layer_t L;
    assert_int_equal(qr_model_layer(m, 0, &L), 0);
    assert_int_equal(L.op, QR_MODEL_EMBEDDING);
    assert_ptr_equal(L.weight, qr_st_find(f, "emb")->data);
    assert_int_equal(L.vocab, A_V);
    assert_int_equal(L.in, 1);
    assert_int_equal(L.out, A_D);
    assert_int_equal(qr_model_layer(m, 1, &L), 0);
    assert_true(L.op == QR_MODEL_DENSE && L.in == A_D && L.out == A_H);
    assert_ptr_equal(L.bias, qr_st_find(f, "fc1.bias")->data);
    assert_int_equal(qr_model_layer(m, 3, &L), 0);
    assert_null(L.bias);
    assert_int_equal(qr_model_layer(m, 4, &L), 0);
    assert_true(L.op == QR_MODEL_RESIDUAL && L.from == 0);
    assert_int_equal(qr_model_layer(m, 5, &L), 0);
    assert_true(L.op == QR_MODEL_LAYERNORM && L.eps == 1e-5f && L.bias != NULL);
    assert_int_equal(qr_model_layer(m, 7, &L), 0);
    assert_true(L.op == QR_MODEL_SOFTMAX && L.weight == NULL && L.in == A_O);
    assert_int_equal(qr_model_layer(m, 8, &L), -1);
    assert_int_equal(qr_model_layer(m, 0, NULL), -1);
    assert_int_equal(qr_model_layer(NULL, 0, &L), -1);

    assert_null(qr_model_acts_new(NULL, 1));
    assert_null(qr_model_acts_new(m, 0));
    assert_null(qr_model_acts_new(m, QR_MODEL_MAX_ROWS + 1));
    qr_model_acts_t *a = qr_model_acts_new(m, 3);
    assert_non_null(a);
    assert_int_equal(qr_model_acts_rows(a), 3);
    assert_null(qr_model_acts_layer_mut(a, -2));
    assert_null(qr_model_acts_layer_mut(a, 8));
    assert_null(qr_model_acts_layer_mut(NULL, 0));
    /* every buffer writable to its full size, none overlapping */
    for (int i = -1; i < 8; i++) {
        float *y = qr_model_acts_layer_mut(a, i);
        assert_non_null(y);
        assert_ptr_equal(y, qr_model_acts_layer(a, i));
        uint32_t w = i < 0 ? 1 : qr_model_layer_width(m, (uint32_t)i);
        for (uint32_t j = 0; j < 3 * w; j++)
            y[j] = (float)(i * 1000 + (int)j);
    }
    for (int i = -1; i < 8; i++) {
        const float *y = qr_model_acts_layer(a, i);
        uint32_t w = i < 0 ? 1 : qr_model_layer_width(m, (uint32_t)i);
        for (uint32_t j = 0; j < 3 * w; j++)
            assert_true(y[j] == (float)(i * 1000 + (int)j));
    }
    assert_ptr_equal(qr_model_acts_output(a), qr_model_acts_layer(a, 7));
    qr_model_acts_destroy(&a);
    assert_null(a);
    qr_model_destroy(&m);
    qr_st_destroy(&f);
}

/* ---- the broker's whole-result check ---- */

/* Runs layer by layer another way, as another correct runtime would (a GPU,
 * PyTorch): naive dense sums in another order, gelu in the 0.5 x (1 +
 * tanh(u)) form with libm, layernorm with a float mean and variance,
 * softmax with expf and a float sum backwards.  The result goes into an
 * empty qr_model_acts_new, as the GPU path fills one. */
static qr_model_acts_t *s_other_forward(const qr_model_t *m, const float *in, uint32_t rows)
{
    qr_model_acts_t *a = qr_model_acts_new(m, rows);
    assert_non_null(a);
    memcpy(qr_model_acts_layer_mut(a, -1), in, (size_t)rows * qr_model_input_width(m) * 4);
    for (uint32_t i = 0; i < qr_model_layers(m); i++) {
        qr_model_layer_t L;
        assert_int_equal(qr_model_layer(m, i, &L), 0);
        const float *x = qr_model_acts_layer(a, (int)i - 1);
        float *y = qr_model_acts_layer_mut(a, (int)i);
        for (uint32_t r = 0; r < rows; r++) {
            const float *xr = x + (size_t)r * L.in;
            float *yr = y + (size_t)r * L.out;
            float mean = 0, var = 0, mx = -INFINITY, sum = 0;
            switch (L.op) {
            case QR_MODEL_EMBEDDING:
                memcpy(yr, L.weight + (size_t)xr[0] * L.out, L.out * 4);
                break;
            case QR_MODEL_DENSE:
                for (uint32_t o = 0; o < L.out; o++) {
                    float s = 0;
                    for (uint32_t j = L.in; j-- > 0;)
                        s += xr[j] * L.weight[(size_t)o * L.in + j];
                    yr[o] = s + (L.bias ? L.bias[o] : 0.0f);
                }
                break;
            case QR_MODEL_RELU:
                for (uint32_t j = 0; j < L.in; j++)
                    yr[j] = fmaxf(xr[j], 0.0f);
                break;
            case QR_MODEL_GELU:
                for (uint32_t j = 0; j < L.in; j++)
                    yr[j] =
                        0.5f * xr[j] *
                        (1.0f + tanhf(0.7978845608f * (xr[j] + 0.044715f * xr[j] * xr[j] * xr[j])));
                break;
            case QR_MODEL_LAYERNORM:
                for (uint32_t j = 0; j < L.in; j++)
                    mean += xr[j];
                mean /= (float)L.in;
                for (uint32_t j = 0; j < L.in; j++)
                    var += (xr[j] - mean) * (xr[j] - mean);
                var /= (float)L.in;
                for (uint32_t j = 0; j < L.in; j++)
                    yr[j] = (xr[j] - mean) / sqrtf(var + L.eps) * L.weight[j] +
                            (L.bias ? L.bias[j] : 0.0f);
                break;
            case QR_MODEL_SOFTMAX:
                for (uint32_t j = 0; j < L.in; j++)
                    mx = fmaxf(mx, xr[j]);
                for (uint32_t j = L.in; j-- > 0;)
                    sum += expf(xr[j] - mx);
                for (uint32_t j = 0; j < L.in; j++)
                    yr[j] = expf(xr[j] - mx) / sum;
                break;
            case QR_MODEL_RESIDUAL: {
                const float *src = qr_model_acts_layer(a, L.from) + (size_t)r * L.in;
                for (uint32_t j = 0; j < L.in; j++)
                    yr[j] = xr[j] + src[j];
                break;
            }
            }
        }
    }
    return a;
}

/* layers[] of a result. */
static void s_layers(const qr_model_acts_t *a, uint32_t n, const float **layers)
{
    for (uint32_t i = 0; i < n; i++)
        layers[i] = qr_model_acts_layer(a, (int)i);
}

/* Expects qr_model_check to say rc, and for a failure to name layer bad. */
static void s_expect(const qr_model_t *m, const float *in, const float *const *layers,
                     uint32_t rows, const qr_model_probes_t *p, int rc, int bad, int line)
{
    char err[512] = "x";
    int got_bad = 99;
    int got = qr_model_check(m, in, layers, rows, p, &got_bad, err, sizeof err);
    if (got != rc || got_bad != bad)
        fail_msg("line %d: rc %d bad %d (%s), wanted rc %d bad %d", line, got, got_bad, err, rc,
                 bad);
    if (rc == 0)
        assert_string_equal(err, "");
    if (rc == 1) {
        char want[64];
        snprintf(want, sizeof want, "layer %d (%s)", bad,
                 qr_model_op_name(qr_model_op(m, (uint32_t)bad)));
        if (!strstr(err, want))
            fail_msg("line %d: \"%s\" lacks \"%s\"", line, err, want);
    }
    if (rc == -1)
        assert_true(strlen(err) > 0);
    /* split over threads: the same verdict, the same first failing layer */
    for (int threads = 2; threads <= 3; threads++) {
        char err2[512] = "x";
        int bad2 = 99;
        int got2 = qr_model_check_mt(m, in, layers, rows, p, threads, &bad2, err2, sizeof err2);
        if (got2 != rc || bad2 != bad)
            fail_msg("line %d: %d threads: rc %d bad %d (%s), wanted rc %d bad %d", line,
                     threads, got2, bad2, err2, rc, bad);
    }
}
#define EXPECT(rc, bad) s_expect(m, in, layers, rows, p, rc, bad, __LINE__)

/* Honest results of both runtimes pass; every kind of tampering of every
 * layer fails, at that layer. */
static void s_check_model_tamper(const s_t *ts, size_t nts, const char *graph, const float *in,
                                 uint32_t rows)
{
    qr_st_file_t *f = s_file(ts, nts);
    qr_model_t *m = qr_model_new(graph, strlen(graph), f, NULL, 0);
    assert_non_null(m);
    uint32_t n = qr_model_layers(m);
    const float *layers[16];
    for (int rounds = 1; rounds <= 3; rounds++) {
        qr_model_probes_t *p = qr_model_probes_new(m, rounds, 1000 + (uint64_t)rounds);
        assert_non_null(p);
        qr_model_acts_t *a = qr_model_forward(m, in, rows, NULL, 0);
        assert_non_null(a);
        s_layers(a, n, layers);
        EXPECT(0, -1);
        assert_int_equal(qr_model_check(m, in, layers, rows, p, NULL, NULL, 0), 0);
        qr_model_acts_t *o = s_other_forward(m, in, rows);
        s_layers(o, n, layers);
        EXPECT(0, -1);
        qr_model_acts_destroy(&o);
        s_layers(a, n, layers);
        for (uint32_t i = 0; i < n; i++) {
            size_t w = qr_model_layer_width(m, i), len = rows * w;
            float *t = malloc(len * sizeof *t);
            const float *y = layers[i];
            layers[i] = t;
            /* one element, in the last row */
            size_t e = (rows - 1) * w + w / 2;
            memcpy(t, y, len * 4);
            t[e] += 0.05f + 0.1f * fabsf(t[e]);
            EXPECT(1, (int)i);
            /* the whole layer scaled */
            for (size_t j = 0; j < len; j++)
                t[j] = y[j] * 1.25f + (y[j] == 0 ? 0.01f : 0.0f);
            EXPECT(1, (int)i);
            /* two rows swapped (rows that differ) */
            if (rows > 1 && memcmp(y, y + w, w * 4) != 0) {
                memcpy(t, y + w, w * 4);
                memcpy(t + w, y, w * 4);
                memcpy(t + 2 * w, y + 2 * w, (len - 2 * w) * 4);
                EXPECT(1, (int)i);
            }
            /* NaN and inf */
            memcpy(t, y, len * 4);
            t[0] = NAN;
            EXPECT(1, (int)i);
            t[0] = INFINITY;
            EXPECT(1, (int)i);
            t[0] = -INFINITY;
            EXPECT(1, (int)i);
            layers[i] = y;
            free(t);
        }
        /* two layers tampered: the first is named */
        if (n > 3) {
            size_t w1 = qr_model_layer_width(m, 1), w3 = qr_model_layer_width(m, 3);
            float *t1 = malloc(rows * w1 * 4), *t3 = malloc(rows * w3 * 4);
            memcpy(t1, layers[1], rows * w1 * 4);
            memcpy(t3, layers[3], rows * w3 * 4);
            t1[(rows - 1) * w1] += 1.0f;
            t3[0] += 1.0f;
            const float *k1 = layers[1], *k3 = layers[3];
            layers[1] = t1;
            layers[3] = t3;
            EXPECT(1, 1);
            layers[1] = k1;
            layers[3] = k3;
            free(t1);
            free(t3);
        }
        qr_model_acts_destroy(&a);
        qr_model_probes_destroy(&p);
        assert_null(p);
    }
    qr_model_destroy(&m);
    qr_st_destroy(&f);
}

static void test_check(void **state)
{
    (void)state;
    s_init();
    const uint32_t counts[] = {1, 2, 5, 9, 33};
    for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
        uint32_t rows = counts[c];
        float ids[33], in[33 * B_D];
        for (uint32_t r = 0; r < rows; r++)
            ids[r] = (float)((r * 3 + 1) % A_V);
        s_check_model_tamper(a_ts, 8, a_graph, ids, rows);
        s_fill(in, rows * B_D, 2.0f);
        s_check_model_tamper(b_ts, 3, b_graph, in, rows);
    }
}

/* Rows in several blocks (the check walks blocks of rows through every
 * layer), a failure late in a later block behind one early in another. */
static void test_check_blocks(void **state)
{
    (void)state;
    enum { D = 256, R = 150 };
    static float w1[D * D], b1[D], w2[D * D], lw[D];
    s_fill(w1, D * D, 0.1f);
    s_fill(b1, D, 0.5f);
    s_fill(w2, D * D, 0.1f);
    s_fill(lw, D, 1.0f);
    s_t ts[] = {
        {"w1", 2, {D, D}, w1}, {"b1", 1, {D}, b1}, {"w2", 2, {D, D}, w2}, {"lw", 1, {D}, lw}};
    qr_st_file_t *f = s_file(ts, 4);
    const char *g =
        "{\"input\":256,\"layers\":[{\"op\":\"dense\",\"weight\":\"w1\",\"bias\":\"b1\"},"
        "{\"op\":\"gelu\"},{\"op\":\"dense\",\"weight\":\"w2\"},{\"op\":\"residual\","
        "\"from\":-1},{\"op\":\"layernorm\",\"weight\":\"lw\"},{\"op\":\"softmax\"}]}";
    qr_model_t *m = qr_model_new(g, strlen(g), f, NULL, 0);
    assert_non_null(m);
    static float in[R * D];
    s_fill(in, R * D, 1.0f);
    uint32_t rows = R;
    qr_model_acts_t *a = qr_model_forward(m, in, R, NULL, 0);
    assert_non_null(a);
    qr_model_probes_t *p = qr_model_probes_new(m, 2, 77);
    const float *layers[6];
    s_layers(a, 6, layers);
    EXPECT(0, -1);
    qr_model_acts_t *o = s_other_forward(m, in, R);
    s_layers(o, 6, layers);
    EXPECT(0, -1);
    qr_model_acts_destroy(&o);
    s_layers(a, 6, layers);
    static float t5[R * D], t2[R * D];
    memcpy(t5, layers[5], sizeof t5);
    memcpy(t2, layers[2], sizeof t2);
    t5[3 * D + 7] += 0.01f;        /* softmax, row 3 */
    t2[(R - 1) * D + 100] += 5.0f; /* dense, the last row */
    layers[5] = t5;
    EXPECT(1, 5);
    layers[2] = t2;
    EXPECT(1, 2);
    qr_model_probes_destroy(&p);
    qr_model_acts_destroy(&a);
    qr_model_destroy(&m);
    qr_st_destroy(&f);
}

static void test_check_errors(void **state)
{
    (void)state;
    s_init();
    qr_st_file_t *f = s_file(a_ts, 8);
    qr_model_t *m = qr_model_new(a_graph, strlen(a_graph), f, NULL, 0);
    qr_model_t *m2 = qr_model_new(a_graph, strlen(a_graph), f, NULL, 0);
    assert_non_null(m);
    float in[3] = {0, 1, 2};
    uint32_t rows = 3;
    qr_model_acts_t *a = qr_model_forward(m, in, rows, NULL, 0);
    assert_non_null(a);
    const float *layers[8];
    s_layers(a, 8, layers);
    qr_model_probes_t *p = qr_model_probes_new(m, 2, 5);
    EXPECT(0, -1);
    /* probes of an equal model over the same tensors fit it too */
    assert_int_equal(qr_model_check(m2, in, layers, rows, p, NULL, NULL, 0), 0);
    int bad = 7;
    char err[256];
    assert_int_equal(qr_model_check(NULL, in, layers, rows, p, &bad, err, sizeof err), -1);
    assert_int_equal(bad, -1);
    assert_int_equal(qr_model_check(m, NULL, layers, rows, p, &bad, err, sizeof err), -1);
    assert_int_equal(qr_model_check(m, in, NULL, rows, p, &bad, err, sizeof err), -1);
    assert_int_equal(qr_model_check(m, in, layers, rows, NULL, &bad, err, sizeof err), -1);
    assert_int_equal(qr_model_check(m, in, layers, 0, p, &bad, err, sizeof err), -1);
    assert_int_equal(qr_model_check(m, in, layers, QR_MODEL_MAX_ROWS + 1, p, &bad, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "rows"));
    layers[4] = NULL;
    assert_int_equal(qr_model_check(m, in, layers, rows, p, &bad, err, sizeof err), -1);
    assert_non_null(strstr(err, "layer 4 has no data"));
    s_layers(a, 8, layers);
    /* the input is the broker's own: a bad one is an error */
    float bad_in[3] = {0, 7, 2};
    assert_int_equal(qr_model_check(m, bad_in, layers, rows, p, &bad, err, sizeof err), -1);
    assert_non_null(strstr(err, "token id 7"));
    bad_in[1] = NAN;
    assert_int_equal(qr_model_check(m, bad_in, layers, rows, p, &bad, err, sizeof err), -1);
    assert_int_equal(qr_model_check(m, bad_in, layers, rows, p, NULL, NULL, 0), -1);
    /* a different (valid) input: the embedding rows no longer match */
    float other[3] = {1, 1, 2};
    assert_int_equal(qr_model_check(m, other, layers, rows, p, &bad, err, sizeof err), 1);
    assert_int_equal(bad, 0);
    assert_non_null(strstr(err, "layer 0 (embedding): row 0"));
    /* probes of another model */
    qr_st_file_t *fb = s_file(b_ts, 3);
    qr_model_t *mb = qr_model_new(b_graph, strlen(b_graph), fb, NULL, 0);
    qr_model_probes_t *pb = qr_model_probes_new(mb, 2, 5);
    assert_non_null(pb);
    assert_int_equal(qr_model_check(m, in, layers, rows, pb, &bad, err, sizeof err), -1);
    assert_non_null(strstr(err, "another model"));
    qr_model_probes_destroy(&pb);
    qr_model_destroy(&mb);
    qr_st_destroy(&fb);
    /* probes */
    assert_null(qr_model_probes_new(NULL, 2, 1));
    assert_null(qr_model_probes_new(m, 0, 1));
    assert_null(qr_model_probes_new(m, 65, 1));
    qr_model_probes_destroy(NULL);
    qr_model_probes_t *none = NULL;
    qr_model_probes_destroy(&none);
    qr_model_probes_destroy(&p);
    assert_null(p);
    qr_model_acts_destroy(&a);
    qr_model_destroy(&m);
    qr_model_destroy(&m2);
    qr_st_destroy(&f);
}

/* Shared probes, several threads checking at once. */
typedef struct {
    const qr_model_t *m;
    const float *in;
    const float *const *layers;
    uint32_t rows;
    const qr_model_probes_t *p;
    int ok;
} s_chk_job_t;

static void *s_chk_worker(void *arg)
{
    s_chk_job_t *j = arg;
    j->ok = 1;
    for (int it = 0; it < 200 && j->ok; it++)
        j->ok = qr_model_check(j->m, j->in, j->layers, j->rows, j->p, NULL, NULL, 0) == 0;
    return NULL;
}

static void test_check_threads(void **state)
{
    (void)state;
    s_init();
    qr_st_file_t *f = s_file(a_ts, 8);
    qr_model_t *m = qr_model_new(a_graph, strlen(a_graph), f, NULL, 0);
    float ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = (float)(i % A_V);
    qr_model_acts_t *a = qr_model_forward(m, ids, 40, NULL, 0);
    const float *layers[8];
    s_layers(a, 8, layers);
    qr_model_probes_t *p = qr_model_probes_new(m, 2, 99);
    pthread_t th[4];
    s_chk_job_t jobs[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (s_chk_job_t){m, ids, layers, 40, p, 0};
        assert_int_equal(pthread_create(&th[t], NULL, s_chk_worker, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_true(jobs[t].ok);
    }
    qr_model_probes_destroy(&p);
    qr_model_acts_destroy(&a);
    qr_model_destroy(&m);
    qr_st_destroy(&f);
}

/* ---- numpy cross-check ---- */

/* A generic numpy interpreter of the graph format, in float64, reading the
 * same safetensors file (F32 only here) with struct and json. */
static const char s_py[] =
    "import json, struct, sys\n"
    "import numpy as np\n"
    "d = sys.argv[1]\n"
    "raw = open(d + '/w.safetensors', 'rb').read()\n"
    "n = struct.unpack('<Q', raw[:8])[0]\n"
    "hdr = json.loads(raw[8:8 + n])\n"
    "data = raw[8 + n:]\n"
    "def T(name):\n"
    "    e = hdr[name]\n"
    "    b, t = e['data_offsets']\n"
    "    assert e['dtype'] == 'F32'\n"
    "    return np.frombuffer(data[b:t], dtype='<f4').astype(np.float64).reshape(e['shape'])\n"
    "g = json.load(open(d + '/graph.json'))\n"
    "x = np.fromfile(d + '/in.bin', dtype='<f4').astype(np.float64).reshape(-1, g['input'])\n"
    "acts = [x]\n"
    "for L in g['layers']:\n"
    "    op = L['op']\n"
    "    if op == 'embedding':\n"
    "        x = T(L['weight'])[x[:, 0].astype(np.int64)]\n"
    "    elif op == 'dense':\n"
    "        x = x @ T(L['weight']).T + (T(L['bias']) if 'bias' in L else 0)\n"
    "    elif op == 'relu':\n"
    "        x = np.maximum(x, 0)\n"
    "    elif op == 'gelu':\n"
    "        x = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))\n"
    "    elif op == 'layernorm':\n"
    "        mu = x.mean(axis=1, keepdims=True)\n"
    "        var = ((x - mu) ** 2).mean(axis=1, keepdims=True)\n"
    "        x = (x - mu) / np.sqrt(var + L.get('eps', 1e-5)) * T(L['weight'])\n"
    "        if 'bias' in L:\n"
    "            x = x + T(L['bias'])\n"
    "    elif op == 'softmax':\n"
    "        e = np.exp(x - x.max(axis=1, keepdims=True))\n"
    "        x = e / e.sum(axis=1, keepdims=True)\n"
    "    elif op == 'residual':\n"
    "        x = x + acts[L['from'] + 1]\n"
    "    acts.append(x)\n"
    "np.concatenate([a.ravel() for a in acts[1:]]).astype('<f8').tofile(d + '/out.bin')\n";

static const char *s_python(void)
{
    /* as test_safetensors: $QUARRY_PYTHON, python3 on PATH, Debian's */
    const char *cands[] = {getenv("QUARRY_PYTHON"), "python3", "/usr/bin/python3"};
    char cmd[512];
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        if (!cands[i] || !*cands[i] || strchr(cands[i], '\''))
            continue;
        snprintf(cmd, sizeof cmd, "'%s' -c 'import numpy' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0)
            return cands[i];
    }
    return NULL;
}

static void s_write(const char *path, const void *b, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static void s_numpy_model(const char *python, const s_t *ts, size_t nts, const char *graph,
                          const float *in, uint32_t rows)
{
    char dir[] = "/tmp/qr-test-model-XXXXXX", path[512], cmd[1024], err[512];
    assert_non_null(mkdtemp(dir));
    size_t len;
    uint8_t *img = s_image(ts, nts, &len);
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    s_write(path, img, len);
    free(img);
    qr_st_file_t *f = qr_st_load(path, err, sizeof err);
    assert_non_null(f);
    qr_model_t *m = qr_model_new(graph, strlen(graph), f, err, sizeof err);
    assert_non_null(m);
    snprintf(path, sizeof path, "%s/graph.json", dir);
    s_write(path, graph, strlen(graph));
    snprintf(path, sizeof path, "%s/in.bin", dir);
    s_write(path, in, (size_t)rows * qr_model_input_width(m) * sizeof *in);

    snprintf(cmd, sizeof cmd, "'%s' - '%s'", python, dir);
    FILE *py = popen(cmd, "w");
    assert_non_null(py);
    assert_int_equal(fwrite(s_py, 1, sizeof s_py - 1, py), sizeof s_py - 1);
    assert_int_equal(pclose(py), 0);

    qr_model_acts_t *a = qr_model_forward(m, in, rows, err, sizeof err);
    assert_non_null(a);
    snprintf(path, sizeof path, "%s/out.bin", dir);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    for (uint32_t i = 0; i < qr_model_layers(m); i++) {
        size_t n = (size_t)rows * qr_model_layer_width(m, i);
        double *want = malloc(n * sizeof *want);
        assert_non_null(want);
        assert_int_equal(fread(want, sizeof *want, n, fp), n);
        s_close(qr_model_acts_layer(a, (int)i), want, n, 2e-5, "numpy", i);
        free(want);
    }
    assert_int_equal(fgetc(fp), EOF);
    fclose(fp);
    qr_model_acts_destroy(&a);
    qr_model_destroy(&m);
    qr_st_destroy(&f);
    const char *files[] = {"w.safetensors", "graph.json", "in.bin", "out.bin"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void test_numpy(void **state)
{
    (void)state;
    s_init();
    const char *python = s_python();
    if (!python) {
        printf("# no python3 with numpy found; numpy cross-check skipped\n");
        skip();
    }
    float ids[12] = {6, 5, 4, 3, 2, 1, 0, 0, 3, 3, 6, 2};
    s_numpy_model(python, a_ts, 8, a_graph, ids, 12);
    float in[10 * B_D];
    s_fill(in, 10 * B_D, 3.0f);
    s_numpy_model(python, b_ts, 3, b_graph, in, 10);
}

static void test_null(void **state)
{
    (void)state;
    qr_model_destroy(NULL);
    qr_model_t *m = NULL;
    qr_model_destroy(&m);
    qr_model_acts_destroy(NULL);
    qr_model_acts_t *a = NULL;
    qr_model_acts_destroy(&a);
    assert_int_equal(qr_model_input_width(NULL), 0);
    assert_int_equal(qr_model_output_width(NULL), 0);
    assert_int_equal(qr_model_layers(NULL), 0);
    assert_int_equal(qr_model_op(NULL, 0), -1);
    assert_int_equal(qr_model_layer_width(NULL, 0), 0);
    assert_int_equal(qr_model_residual_from(NULL, 0), -2);
    assert_int_equal(qr_model_dense(NULL, 0, NULL, NULL, NULL, NULL), -1);
    assert_int_equal(qr_model_acts_rows(NULL), 0);
    assert_null(qr_model_acts_layer(NULL, 0));
    assert_null(qr_model_acts_output(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward),        cmocka_unit_test(test_queries),
        cmocka_unit_test(test_validation),     cmocka_unit_test(test_forward_errors),
        cmocka_unit_test(test_numerics),       cmocka_unit_test(test_threads),
        cmocka_unit_test(test_verify_dense),   cmocka_unit_test(test_verify_big_bias),
        cmocka_unit_test(test_numpy),          cmocka_unit_test(test_null),
        cmocka_unit_test(test_ops_accuracy),   cmocka_unit_test(test_forward_wide),
        cmocka_unit_test(test_layer_acts_new), cmocka_unit_test(test_check),
        cmocka_unit_test(test_check_blocks),   cmocka_unit_test(test_check_errors),
        cmocka_unit_test(test_check_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
