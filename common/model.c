/* ai.infer models: graph validation, CPU forward pass, dense-layer
 * verification and the whole-result check; see model.h and docs/model.md.
 *
 * Invariants once qr_model_new has returned a model:
 *   1. layers[0].in == input, and layers[i].in == layers[i - 1].out;
 *   2. every width is in [1, QR_MODEL_MAX_WIDTH];
 *   3. every tensor pointer is into the weights file, has exactly the shape
 *      the op needs, and holds only finite values;
 *   4. an embedding is layer 0 only, with input width 1;
 *   5. a residual's source is in [-1, i - 1] and has width layers[i].in.
 * qr_model_forward, qr_model_verify_dense and qr_model_check rely on them
 * and do not check again. */
#include "model.h"

#include <assert.h>
#include <cblas.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "model_ops.h"

typedef struct {
    qr_model_op_t op; /* what the layer computes */
    uint32_t in;      /* width of an input row */
    uint32_t out;     /* width of an output row */
    const float *w;   /* embedding [vocab, out], dense [out, in], layernorm [out] */
    const float *b;   /* dense or layernorm bias [out], or NULL */
    uint32_t vocab;   /* embedding: rows of w */
    int from;         /* residual: source layer, -1 the model input */
    double eps;       /* layernorm: added to the variance */
    float *wt;        /* dense: W^T with the bias as an extra row ((in + 1) x out,
                         or in x out without bias), owned: what verification
                         multiplies by, made once instead of per check */
    float *wt_abs;    /* |wt| for the verification bound, or NULL (fp64 path) */
} s_layer_t;

struct qr_model {
    uint32_t input;    /* width of a model input row */
    uint32_t n;        /* number of layers */
    s_layer_t *layers; /* n layers, in order */
};

struct qr_model_acts {
    uint32_t rows; /* rows in every buffer */
    uint32_t n;    /* number of layers */
    float **outs;  /* n + 1 buffers: [0] the input, [i + 1] layer i's output */
    float *arena;  /* one allocation holding all of them */
};

static const char *const s_op_names[] = {"embedding", "dense",   "relu",    "gelu",
                                         "layernorm", "softmax", "residual"};
#define S_NOPS (sizeof s_op_names / sizeof *s_op_names)

static void s_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *qr_model_op_name(int op)
{
    return op >= 0 && (size_t)op < S_NOPS ? s_op_names[op] : "?";
}

/* "[a, b]" for a tensor's shape, into buf. */
static const char *s_shape(const qr_st_tensor_t *t, char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len, "[");
    for (uint32_t d = 0; d < t->ndims && o < len; d++)
        o += (size_t)snprintf(buf + o, len - o, "%s%llu", d ? ", " : "",
                              (unsigned long long)t->dims[d]);
    if (o < len)
        snprintf(buf + o, len - o, "]");
    return buf;
}

/* Refuses any key of the layer object not in allowed (NULL-terminated):
 * a misspelt optional field ("bais") must not silently mean "no bias". */
static int s_fields(json_t *obj, const char *const *allowed, uint32_t i, const char *op, char *err,
                    size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(key, *a) == 0;
        if (!ok) {
            s_err(err, errlen, "layer %u (%s): unknown field \"%s\"", i, op, key);
            return -1;
        }
    }
    return 0;
}

/* Looks up the tensor named by obj[key] and checks that it has ndims
 * dimensions and only finite values.  Absent and optional: *out = NULL and
 * 0. */
static int s_tensor(json_t *obj, const char *key, int required, uint32_t ndims,
                    const qr_st_file_t *weights, uint32_t i, const char *op,
                    const qr_st_tensor_t **out, char *err, size_t errlen)
{
    *out = NULL;
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            s_err(err, errlen, "layer %u (%s): \"%s\" is missing", i, op, key);
        return required ? -1 : 0;
    }
    if (!json_is_string(v)) {
        s_err(err, errlen, "layer %u (%s): \"%s\" is not a tensor name (a string)", i, op, key);
        return -1;
    }
    const char *name = json_string_value(v);
    const qr_st_tensor_t *t = qr_st_find(weights, name);
    if (!t) {
        s_err(err, errlen, "layer %u (%s): tensor '%s' (\"%s\") is not in the weights file", i, op,
              name, key);
        return -1;
    }
    char sh[128];
    if (t->ndims != ndims) {
        s_err(err, errlen, "layer %u (%s): tensor '%s' has shape %s, expected %u dimension%s", i,
              op, name, s_shape(t, sh, sizeof sh), ndims, ndims == 1 ? "" : "s");
        return -1;
    }
    /* the gemm verification cannot bound rounding around inf or NaN, and a
     * non-finite weight makes every honest output unverifiable */
    if (!qr_floats_finite(t->data, (size_t)t->count)) {
        s_err(err, errlen, "layer %u (%s): tensor '%s' holds inf or NaN", i, op, name);
        return -1;
    }
    *out = t;
    return 0;
}

/* Requires t->dims[d] == want. */
static int s_dim(const qr_st_tensor_t *t, uint32_t d, uint64_t want, const char *what, uint32_t i,
                 const char *op, char *err, size_t errlen)
{
    if (t->dims[d] == want)
        return 0;
    char sh[128];
    s_err(err, errlen,
          "layer %u (%s): tensor '%s' has shape %s, but dimension %u must be %llu (%s)", i, op,
          t->name, s_shape(t, sh, sizeof sh), d, (unsigned long long)want, what);
    return -1;
}

/* A width taken from a tensor dimension: 1 .. QR_MODEL_MAX_WIDTH. */
static int s_width(const qr_st_tensor_t *t, uint32_t d, uint32_t i, const char *op, char *err,
                   size_t errlen)
{
    if (t->dims[d] >= 1 && t->dims[d] <= QR_MODEL_MAX_WIDTH)
        return 0;
    char sh[128];
    s_err(err, errlen, "layer %u (%s): tensor '%s' has shape %s; dimension %u must be 1..%u", i, op,
          t->name, s_shape(t, sh, sizeof sh), d, QR_MODEL_MAX_WIDTH);
    return -1;
}

/* Validates layer i (obj) given the width of its input and fills *L. */
static int s_layer(json_t *obj, uint32_t i, uint32_t width, const qr_model_t *m,
                   const qr_st_file_t *weights, s_layer_t *L, char *err, size_t errlen)
{
    if (!json_is_object(obj)) {
        s_err(err, errlen, "layer %u: not a JSON object", i);
        return -1;
    }
    json_t *jop = json_object_get(obj, "op");
    if (!json_is_string(jop)) {
        s_err(err, errlen, "layer %u: \"op\" is %s", i, jop ? "not a string" : "missing");
        return -1;
    }
    const char *op = json_string_value(jop);
    size_t k = 0;
    while (k < S_NOPS && strcmp(op, s_op_names[k]) != 0)
        k++;
    if (k == S_NOPS) {
        s_err(err, errlen,
              "layer %u: unknown op \"%s\" (embedding, dense, relu, gelu, layernorm, softmax, "
              "residual)",
              i, op);
        return -1;
    }
    memset(L, 0, sizeof *L);
    L->op = (qr_model_op_t)k;
    L->in = L->out = width;
    L->from = -2;
    const qr_st_tensor_t *w = NULL, *b = NULL;
    switch (L->op) {
    case QR_MODEL_EMBEDDING: {
        static const char *const f[] = {"op", "weight", NULL};
        if (s_fields(obj, f, i, op, err, errlen))
            return -1;
        if (i != 0) {
            s_err(err, errlen, "layer %u (embedding): an embedding must be the first layer", i);
            return -1;
        }
        if (width != 1) {
            s_err(err, errlen,
                  "layer 0 (embedding): \"input\" must be 1 (one token id per row), not %u", width);
            return -1;
        }
        if (s_tensor(obj, "weight", 1, 2, weights, i, op, &w, err, errlen) ||
            s_width(w, 1, i, op, err, errlen))
            return -1;
        if (w->dims[0] < 1 || w->dims[0] > QR_MODEL_MAX_VOCAB) {
            char sh[128];
            s_err(err, errlen,
                  "layer 0 (embedding): tensor '%s' has shape %s; the vocabulary must be 1..%u",
                  w->name, s_shape(w, sh, sizeof sh), QR_MODEL_MAX_VOCAB);
            return -1;
        }
        L->vocab = (uint32_t)w->dims[0];
        L->out = (uint32_t)w->dims[1];
        L->w = w->data;
        return 0;
    }
    case QR_MODEL_DENSE: {
        static const char *const f[] = {"op", "weight", "bias", NULL};
        if (s_fields(obj, f, i, op, err, errlen) ||
            s_tensor(obj, "weight", 1, 2, weights, i, op, &w, err, errlen) ||
            s_width(w, 0, i, op, err, errlen) ||
            s_dim(w, 1, width, "the width of the layer's input", i, op, err, errlen) ||
            s_tensor(obj, "bias", 0, 1, weights, i, op, &b, err, errlen) ||
            (b && s_dim(b, 0, w->dims[0], "the dense layer's output width", i, op, err, errlen)))
            return -1;
        L->out = (uint32_t)w->dims[0];
        L->w = w->data;
        L->b = b ? b->data : NULL;
        return 0;
    }
    case QR_MODEL_LAYERNORM: {
        static const char *const f[] = {"op", "weight", "bias", "eps", NULL};
        if (s_fields(obj, f, i, op, err, errlen) ||
            s_tensor(obj, "weight", 1, 1, weights, i, op, &w, err, errlen) ||
            s_dim(w, 0, width, "the width of the layer's input", i, op, err, errlen) ||
            s_tensor(obj, "bias", 0, 1, weights, i, op, &b, err, errlen) ||
            (b && s_dim(b, 0, width, "the width of the layer's input", i, op, err, errlen)))
            return -1;
        L->w = w->data;
        L->b = b ? b->data : NULL;
        L->eps = 1e-5; /* PyTorch's default */
        json_t *e = json_object_get(obj, "eps");
        if (e) {
            double v = json_number_value(e);
            if (!json_is_number(e) || !(v > 0) || !isfinite(v)) {
                s_err(err, errlen, "layer %u (layernorm): \"eps\" must be a positive number", i);
                return -1;
            }
            L->eps = v;
        }
        return 0;
    }
    case QR_MODEL_RESIDUAL: {
        static const char *const f[] = {"op", "from", NULL};
        if (s_fields(obj, f, i, op, err, errlen))
            return -1;
        json_t *jf = json_object_get(obj, "from");
        if (!json_is_integer(jf)) {
            s_err(err, errlen, "layer %u (residual): \"from\" is %s", i,
                  jf ? "not an integer" : "missing");
            return -1;
        }
        json_int_t from = json_integer_value(jf);
        if (from < -1 || from >= (json_int_t)i) {
            s_err(err, errlen,
                  "layer %u (residual): \"from\" %lld is out of range (-1 for the input, or an "
                  "earlier layer 0..%d)",
                  i, (long long)from, (int)i - 1);
            return -1;
        }
        uint32_t fw = from < 0 ? m->input : m->layers[from].out;
        if (fw != width) {
            s_err(err, errlen,
                  "layer %u (residual): width %u of %s %lld does not match the width %u of the "
                  "layer's input",
                  i, fw, from < 0 ? "the model input" : "layer", (long long)from, width);
            return -1;
        }
        L->from = (int)from;
        return 0;
    }
    default: { /* relu, gelu, softmax: no parameters */
        static const char *const f[] = {"op", NULL};
        return s_fields(obj, f, i, op, err, errlen);
    }
    }
}

/* Fills l->wt: W^T in tiles (a strided transpose misses the cache on every
 * element of a large matrix), then the bias as the last row. */
static int s_transpose(s_layer_t *l)
{
    size_t in = l->in, out = l->out, k = in + (l->b ? 1 : 0);
    l->wt = malloc(k * out * sizeof *l->wt);
    if (!l->wt)
        return -1;
    enum { T = 32 };
    for (size_t o0 = 0; o0 < out; o0 += T)
        for (size_t j0 = 0; j0 < in; j0 += T)
            for (size_t o = o0; o < o0 + T && o < out; o++)
                for (size_t j = j0; j < j0 + T && j < in; j++)
                    l->wt[j * out + o] = l->w[o * in + j];
    if (l->b)
        memcpy(l->wt + in * out, l->b, out * sizeof *l->wt);
    l->wt_abs = qr_gemm_prepare_b(l->wt, (uint32_t)k, (uint32_t)out); /* NULL is fine */
    return 0;
}

qr_model_t *qr_model_new(const char *graph, size_t len, const qr_st_file_t *weights, char *err,
                         size_t errlen)
{
    assert(weights);
    s_err(err, errlen, "");
    qr_model_t *m = NULL;
    json_error_t jerr;
    json_t *root = graph ? json_loadb(graph, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!root) {
        s_err(err, errlen, "graph is not valid JSON: %s (line %d, column %d)",
              graph ? jerr.text : "no text", graph ? jerr.line : 0, graph ? jerr.column : 0);
        goto fail;
    }
    if (!json_is_object(root)) {
        s_err(err, errlen, "graph is not a JSON object");
        goto fail;
    }
    static const char *const top[] = {"input", "layers", NULL};
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        int ok = strcmp(key, top[0]) == 0 || strcmp(key, top[1]) == 0;
        if (!ok) {
            s_err(err, errlen, "graph: unknown field \"%s\" (\"input\" and \"layers\" only)", key);
            goto fail;
        }
    }
    json_t *jin = json_object_get(root, "input"), *jl = json_object_get(root, "layers");
    if (!json_is_integer(jin) || json_integer_value(jin) < 1 ||
        json_integer_value(jin) > QR_MODEL_MAX_WIDTH) {
        s_err(err, errlen, "graph: \"input\" must be an integer width 1..%u", QR_MODEL_MAX_WIDTH);
        goto fail;
    }
    if (!json_is_array(jl) || json_array_size(jl) == 0 ||
        json_array_size(jl) > QR_MODEL_MAX_LAYERS) {
        s_err(err, errlen, "graph: \"layers\" must be an array of 1..%u layers",
              QR_MODEL_MAX_LAYERS);
        goto fail;
    }
    m = calloc(1, sizeof *m);
    if (!m || !(m->layers = calloc(json_array_size(jl), sizeof *m->layers))) {
        s_err(err, errlen, "out of memory");
        goto fail;
    }
    m->input = (uint32_t)json_integer_value(jin);
    uint32_t width = m->input;
    for (size_t i = 0; i < json_array_size(jl); i++) {
        if (s_layer(json_array_get(jl, i), (uint32_t)i, width, m, weights, &m->layers[i], err,
                    errlen))
            goto fail;
        width = m->layers[i].out;
        m->n = (uint32_t)i + 1; /* residual checks read only validated layers */
    }
    for (uint32_t i = 0; i < m->n; i++)
        if (m->layers[i].op == QR_MODEL_DENSE && s_transpose(&m->layers[i]) < 0) {
            s_err(err, errlen, "out of memory");
            goto fail;
        }
    json_decref(root);
    return m;
fail:
    json_decref(root);
    qr_model_destroy(&m);
    return NULL;
}

void qr_model_destroy(qr_model_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    for (uint32_t i = 0; (*self_p)->layers && i < (*self_p)->n; i++) {
        free((*self_p)->layers[i].wt);
        free((*self_p)->layers[i].wt_abs);
    }
    free((*self_p)->layers);
    free(*self_p);
    *self_p = NULL;
}

uint32_t qr_model_input_width(const qr_model_t *self)
{
    return self ? self->input : 0;
}

uint32_t qr_model_output_width(const qr_model_t *self)
{
    return self && self->n ? self->layers[self->n - 1].out : 0;
}

uint32_t qr_model_layers(const qr_model_t *self)
{
    return self ? self->n : 0;
}

int qr_model_op(const qr_model_t *self, uint32_t i)
{
    return self && i < self->n ? (int)self->layers[i].op : -1;
}

uint32_t qr_model_layer_in_width(const qr_model_t *self, uint32_t i)
{
    return self && i < self->n ? self->layers[i].in : 0;
}

uint32_t qr_model_layer_width(const qr_model_t *self, uint32_t i)
{
    return self && i < self->n ? self->layers[i].out : 0;
}

int qr_model_residual_from(const qr_model_t *self, uint32_t i)
{
    return self && i < self->n && self->layers[i].op == QR_MODEL_RESIDUAL ? self->layers[i].from
                                                                          : -2;
}

int qr_model_dense(const qr_model_t *self, uint32_t i, const float **W, const float **b,
                   uint32_t *out, uint32_t *in)
{
    const s_layer_t *L =
        self && i < self->n && self->layers[i].op == QR_MODEL_DENSE ? &self->layers[i] : NULL;
    if (W)
        *W = L ? L->w : NULL;
    if (b)
        *b = L ? L->b : NULL;
    if (out)
        *out = L ? L->out : 0;
    if (in)
        *in = L ? L->in : 0;
    return L ? 0 : -1;
}

int qr_model_layer(const qr_model_t *self, uint32_t i, qr_model_layer_t *out)
{
    if (!self || i >= self->n || !out)
        return -1;
    const s_layer_t *L = &self->layers[i];
    *out = (qr_model_layer_t){.op = (int)L->op,
                              .in = L->in,
                              .out = L->out,
                              .weight = L->w,
                              .bias = L->b,
                              .vocab = L->vocab,
                              .from = L->from,
                              .eps = (float)L->eps};
    return 0;
}

/* ---- the forward pass ----
 *
 * Element-wise layers run as vectorised loops over whole rows (#pragma omp
 * simd with -fopenmp-simd, and target_clones so an AVX2 or AVX-512 machine
 * gets wide vectors from one x86-64 binary); the arithmetic is
 * model_ops.h's, in float.  Every activation must be finite (an overflow
 * could never verify); the check rides along the loops that read the data
 * anyway: each element-wise kernel reports a non-finite input (the output
 * of a dense layer before it) and, where its op can overflow (residual,
 * layernorm), a non-finite output. */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define S_VEC __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define S_VEC
#endif
/* for helpers of S_VEC functions: inlined, they are compiled once per clone */
#ifdef __GNUC__
#define S_INLINE static inline __attribute__((always_inline))
#else
#define S_INLINE static inline
#endif

enum { S_BAD_IN = 1, S_BAD_OUT = 2 };

/* True when x is neither inf nor NaN (NaN fails the compare too). */
#define S_FINITE(x) (fabsf(x) <= FLT_MAX)

S_VEC static int s_finite(const float *x, size_t n)
{
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t j = 0; j < n; j++)
        bad |= !S_FINITE(x[j]);
    return !bad;
}

S_VEC static int s_relu(const float *x, float *y, size_t n)
{
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t j = 0; j < n; j++) {
        bad |= !S_FINITE(x[j]);
        y[j] = qr_op_relu(x[j]);
    }
    return bad ? S_BAD_IN : 0;
}

/* gelu of a finite x is finite (|gelu(x)| <= |x|): only the input is checked. */
S_VEC static int s_gelu(const float *x, float *y, size_t n)
{
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t j = 0; j < n; j++) {
        bad |= !S_FINITE(x[j]);
        y[j] = qr_op_gelu(x[j]);
    }
    return bad ? S_BAD_IN : 0;
}

S_VEC static int s_residual(const float *x, const float *src, float *y, size_t n)
{
    int bad_in = 0, bad_out = 0;
#pragma omp simd reduction(| : bad_in, bad_out)
    for (size_t j = 0; j < n; j++) {
        bad_in |= !S_FINITE(x[j]);
        y[j] = x[j] + src[j];
        bad_out |= !S_FINITE(y[j]);
    }
    return (bad_in ? S_BAD_IN : 0) | (bad_out ? S_BAD_OUT : 0);
}

/* Two passes: the mean in double, then the variance of d = x - mean with d
 * in float.  The mean is split into hi + lo (two floats) and d = (x - hi) -
 * lo: x - hi is exact when x is within a factor 2 of the mean (Sterbenz),
 * so a row with a large mean and a small spread keeps its digits, which a
 * float mean would lose (the one-pass E[x^2] - E[x]^2 would lose them all). */
S_VEC static int s_layernorm(const float *x, float *y, uint32_t rows, uint32_t n, const float *w,
                             const float *b, double eps)
{
    int bad_in = 0, bad_out = 0;
    for (uint32_t r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n;
        double s = 0.0;
#pragma omp simd reduction(+ : s) reduction(| : bad_in)
        for (uint32_t j = 0; j < n; j++) {
            s += xr[j];
            bad_in |= !S_FINITE(xr[j]);
        }
        if (bad_in)
            return S_BAD_IN;
        double mean = s / n;
        float hi = (float)mean, lo = (float)(mean - hi);
        double v = 0.0;
#pragma omp simd reduction(+ : v)
        for (uint32_t j = 0; j < n; j++) {
            float d = (xr[j] - hi) - lo;
            v += (double)d * d;
        }
        float inv = (float)(1.0 / sqrt(v / n + eps)); /* biased variance, as PyTorch */
        if (b) {
#pragma omp simd reduction(| : bad_out)
            for (uint32_t j = 0; j < n; j++) {
                yr[j] = qr_op_layernorm(xr[j] - hi, lo, inv, w[j], b[j]);
                bad_out |= !S_FINITE(yr[j]);
            }
        } else {
#pragma omp simd reduction(| : bad_out)
            for (uint32_t j = 0; j < n; j++) {
                yr[j] = qr_op_layernorm(xr[j] - hi, lo, inv, w[j], 0.0f);
                bad_out |= !S_FINITE(yr[j]);
            }
        }
    }
    return bad_out ? S_BAD_OUT : 0;
}

/* Max subtracted first, so exp never overflows and the largest term is
 * exp(0) = 1 (the sum is never 0); exp(x - max) is stored while summing and
 * scaled afterwards, which is qr_op_softmax's number with one exp per
 * element.  The output lies in [0, 1]: always finite. */
S_VEC static int s_softmax(const float *x, float *y, uint32_t rows, uint32_t n)
{
    for (uint32_t r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n;
        float mx = xr[0];
        int bad = 0;
#pragma omp simd reduction(max : mx) reduction(| : bad)
        for (uint32_t j = 0; j < n; j++) {
            mx = xr[j] > mx ? xr[j] : mx;
            bad |= !S_FINITE(xr[j]);
        }
        if (bad)
            return S_BAD_IN;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (uint32_t j = 0; j < n; j++) {
            yr[j] = qr_op_exp(xr[j] - mx);
            s += yr[j];
        }
        float inv = (float)(1.0 / s);
#pragma omp simd
        for (uint32_t j = 0; j < n; j++)
            yr[j] *= inv;
    }
    return 0;
}

/* Runs element-wise layer L on rows [r0, r1) of x (src: the residual's
 * source) into y.  Returns S_BAD_IN / S_BAD_OUT flags. */
static int s_ew(const s_layer_t *L, const float *x, const float *src, float *y, uint32_t r0,
                uint32_t r1)
{
    size_t w = L->out, o = (size_t)r0 * w, n = (size_t)(r1 - r0) * w;
    switch (L->op) {
    case QR_MODEL_RELU:
        return s_relu(x + o, y + o, n);
    case QR_MODEL_GELU:
        return s_gelu(x + o, y + o, n);
    case QR_MODEL_RESIDUAL:
        return s_residual(x + o, src + o, y + o, n);
    case QR_MODEL_LAYERNORM:
        return s_layernorm(x + o, y + o, r1 - r0, L->out, L->w, L->b, L->eps);
    case QR_MODEL_SOFTMAX:
        return s_softmax(x + o, y + o, r1 - r0, L->out);
    default:
        return 0;
    }
}

/* Dense layer: the bias goes into y first and sgemm adds the product (beta
 * = 1): one rounding per element, and the same sum that the verification
 * checks (bias as one more column of x).  One row is a matrix-vector
 * product: sgemv reads W once, where sgemm would first pack it. */
static void s_dense(const s_layer_t *L, const float *x, float *y, uint32_t rows)
{
    size_t out = L->out;
    if (L->b)
        for (uint32_t r = 0; r < rows; r++)
            memcpy(y + r * out, L->b, out * sizeof *y);
    if (rows == 1) {
        if (!L->b)
            memset(y, 0, out * sizeof *y);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)L->out, (int)L->in, 1.0f, L->w, (int)L->in, x,
                    1, 1.0f, y, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)L->out, (int)L->in, 1.0f,
                x, (int)L->in, L->w, (int)L->in, L->b ? 1.0f : 0.0f, y, (int)L->out);
}

/* Token ids to rows of the table; an id that is not an integer in
 * [0, vocab) is refused with its row. */
static int s_embedding(const s_layer_t *L, const float *x, float *y, uint32_t rows, char *err,
                       size_t errlen)
{
    size_t out = L->out;
    for (uint32_t r = 0; r < rows; r++) {
        float id = x[r];
        if (!(id >= 0.0f && id < (float)L->vocab) || id != floorf(id)) {
            s_err(err, errlen,
                  "layer 0 (embedding): row %u: token id %g is not an integer in [0, %u)", r,
                  (double)id, L->vocab);
            return -1;
        }
        memcpy(y + r * out, L->w + (size_t)id * out, out * sizeof *y);
    }
    return 0;
}

/* One allocation for every buffer of a result (input copy and n layers),
 * each starting on a 64-byte line: one malloc instead of n + 1, and the
 * vector loops never straddle a line at a row start. */
static qr_model_acts_t *s_acts_alloc(const qr_model_t *self, uint32_t rows)
{
    qr_model_acts_t *a = calloc(1, sizeof *a + ((size_t)self->n + 1) * sizeof(float *));
    if (!a)
        return NULL;
    a->rows = rows;
    a->n = self->n;
    a->outs = (float **)(a + 1);
    size_t total = 0;
    for (uint32_t i = 0; i <= self->n; i++) {
        size_t w = i ? self->layers[i - 1].out : self->input;
        total += ((size_t)rows * w + 15) & ~(size_t)15;
    }
    if (!(a->arena = aligned_alloc(64, total * sizeof(float)))) {
        free(a);
        return NULL;
    }
    float *p = a->arena;
    for (uint32_t i = 0; i <= self->n; i++) {
        size_t w = i ? self->layers[i - 1].out : self->input;
        a->outs[i] = p;
        p += ((size_t)rows * w + 15) & ~(size_t)15;
    }
    return a;
}

/* The message for layer i's output not being finite. */
static void s_overflow(const qr_model_t *self, uint32_t i, char *err, size_t errlen)
{
    s_err(err, errlen, "layer %u (%s): output is not finite (overflow)", i,
          qr_model_op_name((int)self->layers[i].op));
}

qr_model_acts_t *qr_model_forward(const qr_model_t *self, const float *in, uint32_t rows, char *err,
                                  size_t errlen)
{
    assert(self);
    s_err(err, errlen, "");
    if (rows == 0 || rows > QR_MODEL_MAX_ROWS || !in) {
        s_err(err, errlen, "forward: rows must be 1..%u, got %u%s", QR_MODEL_MAX_ROWS, rows,
              in ? "" : " (no input)");
        return NULL;
    }
    size_t n_in = (size_t)rows * self->input;
    if (!s_finite(in, n_in)) {
        s_err(err, errlen, "forward: the input holds inf or NaN");
        return NULL;
    }
    qr_model_acts_t *a = s_acts_alloc(self, rows);
    if (!a) {
        s_err(err, errlen, "forward: out of memory");
        return NULL;
    }
    memcpy(a->outs[0], in, n_in * sizeof(float));
    for (uint32_t i = 0; i < self->n; i++) {
        const s_layer_t *L = &self->layers[i];
        const float *x = a->outs[i];
        float *y = a->outs[i + 1];
        if (L->op == QR_MODEL_EMBEDDING) {
            if (s_embedding(L, x, y, rows, err, errlen))
                goto fail;
            continue;
        }
        if (L->op == QR_MODEL_DENSE) {
            s_dense(L, x, y, rows);
            /* an element-wise layer next checks this output as it reads
             * it; otherwise check it here */
            int next_ew = i + 1 < self->n && self->layers[i + 1].op != QR_MODEL_DENSE;
            if (!next_ew && !s_finite(y, (size_t)rows * L->out)) {
                s_overflow(self, i, err, errlen);
                goto fail;
            }
            continue;
        }
        const float *src = L->op == QR_MODEL_RESIDUAL ? a->outs[L->from + 1] : NULL;
        int bad = s_ew(L, x, src, y, 0, rows);
        /* only a dense layer leaves its output unchecked, and only when
         * this layer follows it */
        if ((bad & S_BAD_IN) && i > 0) { /* layer 0's input was checked above */
            s_overflow(self, i - 1, err, errlen);
            goto fail;
        }
        if (bad & S_BAD_OUT) {
            s_overflow(self, i, err, errlen);
            goto fail;
        }
    }
    return a;
fail:
    qr_model_acts_destroy(&a);
    return NULL;
}

qr_model_acts_t *qr_model_acts_new(const qr_model_t *self, uint32_t rows)
{
    if (!self || rows == 0 || rows > QR_MODEL_MAX_ROWS)
        return NULL;
    return s_acts_alloc(self, rows);
}

float *qr_model_acts_layer_mut(qr_model_acts_t *self, int i)
{
    return self && i >= -1 && i < (int)self->n ? self->outs[i + 1] : NULL;
}

void qr_model_acts_destroy(qr_model_acts_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->arena);
    free(*self_p);
    *self_p = NULL;
}

uint32_t qr_model_acts_rows(const qr_model_acts_t *self)
{
    return self ? self->rows : 0;
}

const float *qr_model_acts_layer(const qr_model_acts_t *self, int i)
{
    return self && i >= -1 && i < (int)self->n ? self->outs[i + 1] : NULL;
}

const float *qr_model_acts_output(const qr_model_acts_t *self)
{
    return self ? self->outs[self->n] : NULL;
}

int qr_model_verify_dense(const qr_model_t *self, uint32_t i, const float *x, const float *y,
                          uint32_t rows, int rounds, uint64_t seed, double *worst)
{
    const float *W, *b;
    uint32_t out, in;
    if (qr_model_dense(self, i, &W, &b, &out, &in) || rows == 0 || rows > QR_MODEL_MAX_ROWS || !x ||
        !y)
        return -1;
    /* qr_gemm_verify wants B = W^T (in x out) row-major, with the bias as an
     * extra row: made once at load (s_transpose) */
    (void)W;
    uint32_t k = in + (b ? 1 : 0);
    const float *B = self->layers[i].wt;
    float *A = NULL;
    int rc = -1;
    if (b) {
        if (!(A = malloc((size_t)rows * k * sizeof *A)))
            goto done;
        for (size_t r = 0; r < rows; r++) {
            memcpy(A + r * k, x + r * in, in * sizeof *A);
            A[r * k + in] = 1.0f;
        }
    }
    rc = qr_gemm_verify_b(b ? A : x, B, self->layers[i].wt_abs, y, rows, out, k, rounds, seed,
                          worst);
done:
    free(A);
    return rc;
}

/* ---- checking a whole claimed result (qr_model_check) ----
 *
 * Dense layers: Freivalds with secret vectors made once per model
 * (qr_model_probes_new), so a check reads each row of the claimed input and
 * output once per vector and never touches W.  The bias is one more column
 * of ones in x and one more entry b.r of v = W^T r, exactly as
 * qr_model_verify_dense folds it, and the bound is qr_gemm_verify's fp32
 * bound (qr_gemm_tol_fp32) for k = in (+ 1 with a bias) and n = out.
 *
 * Other layers are applied again to the claimed input and each element is
 * compared with a tolerance that covers any correct float implementation
 * (docs/model.md derives them); U below is the unit roundoff 2^-24 and F an
 * absolute floor for flush-to-zero of subnormals (a GPU's default).
 *
 * Rows are checked in blocks small enough that the block's rows of every
 * layer stay in cache, so each claimed activation is read from memory once
 * even though it is the output of one layer and the input of the next. */

#define S_U 0x1p-24
#define S_F 0x1p-120f

typedef struct {
    const float *w, *b; /* the tensors these vectors were made from */
    uint32_t in, out;
    double tol;       /* qr_gemm_tol_fp32(out, in (+ 1)) */
    int fp32;         /* the float sums are safe (see qr_model_probes_new) */
    float *r, *ra;    /* rounds x out: r and |r| */
    float *v, *va;    /* rounds x (in + 1): W^T r then b.r; |W^T||r| then |b||r| */
    double *vd, *vad; /* the same in double, for rows the float sums cannot decide */
} s_probe_t;

struct qr_model_probes {
    uint32_t n;   /* layers of the model they were made for */
    int rounds;   /* vectors per dense layer */
    s_probe_t *p; /* n entries; only dense layers' are filled */
};

static uint64_t s_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* v += c * row and va += |c| * |row|, in double. */
S_VEC static void s_axpy2(double *v, double *va, double c, const float *row, uint32_t n)
{
    double ca = fabs(c);
#pragma omp simd
    for (uint32_t j = 0; j < n; j++) {
        v[j] += c * row[j];
        va[j] += ca * fabs((double)row[j]);
    }
}

static int s_probe_make(const s_layer_t *L, int rounds, uint64_t *seed, s_probe_t *P)
{
    uint32_t in = L->in, out = L->out, k1 = in + 1;
    P->w = L->w;
    P->b = L->b;
    P->in = in;
    P->out = out;
    P->tol = qr_gemm_tol_fp32(out, in + (L->b ? 1 : 0));
    size_t nr = (size_t)rounds * out, nv = (size_t)rounds * k1;
    P->r = malloc((2 * nr + 2 * nv) * sizeof(float));
    P->vd = calloc(2 * nv, sizeof(double));
    if (!P->r || !P->vd)
        return -1;
    P->ra = P->r + nr;
    P->v = P->ra + nr;
    P->va = P->v + nv;
    P->vad = P->vd + nv;
    /* the fp32 sums are safe when W has no nonzero weight under 2^-101:
     * then every |W^T||r| entry of a column with a nonzero weight is at
     * least 2^-124 and the rounding of v to float stays relative (the same
     * condition as qr_gemm_prepare_b) */
    int tiny = 0;
    for (size_t j = 0; j < (size_t)in * out; j++)
        tiny |= (fabsf(L->w[j]) < 0x1p-101f) & (L->w[j] != 0.0f);
    int fin = 1;
    for (int t = 0; t < rounds; t++) {
        float *r = P->r + (size_t)t * out, *ra = P->ra + (size_t)t * out;
        double *vd = P->vd + (size_t)t * k1, *vad = P->vad + (size_t)t * k1;
        for (uint32_t o = 0; o < out; o++) {
            /* uniform in [-1, 1) on a 2^-23 grid, never 0 so every column
             * counts (as qr_gemm_verify) */
            float x = (float)((double)(s_splitmix(seed) >> 40) * 0x1p-23 - 1.0);
            r[o] = x == 0.0f ? 0.5f : x;
            ra[o] = fabsf(r[o]);
            s_axpy2(vd, vad, r[o], L->w + (size_t)o * in, in);
            if (L->b) {
                vd[in] += (double)r[o] * L->b[o];
                vad[in] += (double)ra[o] * fabsf(L->b[o]);
            }
        }
        float *v = P->v + (size_t)t * k1, *va = P->va + (size_t)t * k1;
        for (uint32_t j = 0; j < k1; j++) {
            v[j] = (float)vd[j];
            va[j] = (float)vad[j];
            fin &= isfinite(v[j]) && isfinite(va[j]);
        }
    }
    P->fp32 = !tiny && fin;
    return 0;
}

qr_model_probes_t *qr_model_probes_new(const qr_model_t *m, int rounds, uint64_t seed)
{
    if (!m || rounds < 1 || rounds > 64)
        return NULL;
    qr_model_probes_t *p = calloc(1, sizeof *p);
    if (!p || !(p->p = calloc(m->n, sizeof *p->p))) {
        free(p);
        return NULL;
    }
    p->n = m->n;
    p->rounds = rounds;
    for (uint32_t i = 0; i < m->n; i++)
        if (m->layers[i].op == QR_MODEL_DENSE &&
            s_probe_make(&m->layers[i], rounds, &seed, &p->p[i]) < 0) {
            qr_model_probes_destroy(&p);
            return NULL;
        }
    return p;
}

void qr_model_probes_destroy(qr_model_probes_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_model_probes_t *p = *self_p;
    for (uint32_t i = 0; i < p->n; i++) {
        free(p->p[i].r);
        free(p->p[i].vd);
    }
    free(p->p);
    free(p);
    *self_p = NULL;
}

/* Four rows at once against one vector pair: s[q] = x_q . a and sa[q] =
 * |x_q| . aa, in float.  Eight independent sums keep the vector units busy
 * (one sum would wait on its own latency every step). */
S_VEC static void s_dots4(const float *x0, const float *x1, const float *x2, const float *x3,
                          const float *a, const float *aa, uint32_t n, float s[4], float sa[4])
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3, a0, a1, a2, a3)
    for (uint32_t j = 0; j < n; j++) {
        float v = a[j], va = aa[j];
        s0 += x0[j] * v;
        a0 += fabsf(x0[j]) * va;
        s1 += x1[j] * v;
        a1 += fabsf(x1[j]) * va;
        s2 += x2[j] * v;
        a2 += fabsf(x2[j]) * va;
        s3 += x3[j] * v;
        a3 += fabsf(x3[j]) * va;
    }
    s[0] = s0, s[1] = s1, s[2] = s2, s[3] = s3;
    sa[0] = a0, sa[1] = a1, sa[2] = a2, sa[3] = a3;
}

/* The same for one row in double; also says whether y is finite. */
static double s_dot64(const float *x, const double *a, const double *aa, uint32_t n, double *sa)
{
    double s = 0, t = 0;
    for (uint32_t j = 0; j < n; j++) {
        s += x[j] * a[j];
        t += fabs((double)x[j]) * aa[j];
    }
    *sa = t;
    return s;
}

/* One row in double: for rows whose float sums overflowed, and for layers
 * whose weights make the float sums unsafe.  Returns 0 pass, 1 fail. */
static int s_dense_row64(const s_probe_t *P, int rounds, const float *x, const float *y,
                         double *dev_out, double *lim_out)
{
    uint32_t k1 = P->in + 1;
    if (!s_finite(y, P->out)) {
        *dev_out = INFINITY;
        *lim_out = 0;
        return 1;
    }
    for (int t = 0; t < rounds; t++) {
        const double *vd = P->vd + (size_t)t * k1, *vad = P->vad + (size_t)t * k1;
        const float *r = P->r + (size_t)t * P->out, *ra = P->ra + (size_t)t * P->out;
        double ax, ay, sy = 0, sx = s_dot64(x, vd, vad, P->in, &ax) + vd[P->in];
        ax += vad[P->in];
        ay = 0;
        for (uint32_t o = 0; o < P->out; o++) {
            sy += (double)y[o] * r[o];
            ay += fabs((double)y[o]) * ra[o];
        }
        double dev = fabs(sy - sx), lim = P->tol * (ax + ay) + 1e-30;
        if (!(dev <= lim)) {
            *dev_out = dev;
            *lim_out = lim;
            return 1;
        }
    }
    return 0;
}

/* Why a check failed: the row and element (-1: the whole row) and the
 * numbers, for the message. */
typedef struct {
    uint32_t row;
    int64_t col;
    double got, want, lim;
} s_why_t;

/* Dense layer rows [r0, r1): x (in wide) and y (out wide).  Returns 0 or 1
 * (*why filled). */
static int s_chk_dense(const s_probe_t *P, int rounds, const float *x, const float *y, uint32_t r0,
                       uint32_t r1, s_why_t *why)
{
    uint32_t in = P->in, out = P->out, k1 = in + 1;
    for (uint32_t r = r0; r < r1; r += 4) {
        uint32_t nq = r1 - r < 4 ? r1 - r : 4;
        const float *xq[4], *yq[4];
        for (uint32_t q = 0; q < 4; q++) { /* a short group repeats its last row */
            uint32_t rr = r + (q < nq ? q : nq - 1);
            xq[q] = x + (size_t)rr * in;
            yq[q] = y + (size_t)rr * out;
        }
        int slow[4] = {!P->fp32, !P->fp32, !P->fp32, !P->fp32};
        for (int t = 0; t < rounds && P->fp32; t++) {
            const float *v = P->v + (size_t)t * k1, *va = P->va + (size_t)t * k1;
            const float *rv = P->r + (size_t)t * out, *ra = P->ra + (size_t)t * out;
            float sx[4], ax[4], sy[4], ay[4];
            s_dots4(xq[0], xq[1], xq[2], xq[3], v, va, in, sx, ax);
            s_dots4(yq[0], yq[1], yq[2], yq[3], rv, ra, out, sy, ay);
            for (uint32_t q = 0; q < nq; q++) {
                double dx = (double)sx[q] + v[in], bx = (double)ax[q] + va[in];
                if (!isfinite(sx[q]) || !isfinite(ax[q]) || !isfinite(sy[q]) || !isfinite(ay[q])) {
                    slow[q] = 1; /* overflow or a non-finite y: decide in double */
                    continue;
                }
                double dev = fabs((double)sy[q] - dx), lim = P->tol * (bx + ay[q]) + 1e-30;
                if (!(dev <= lim)) {
                    *why = (s_why_t){r + q, -1, dev, 0, lim};
                    return 1;
                }
            }
        }
        for (uint32_t q = 0; q < nq; q++) {
            double dev, lim;
            if (slow[q] && s_dense_row64(P, rounds, xq[q], yq[q], &dev, &lim)) {
                *why = (s_why_t){r + q, -1, dev, 0, lim};
                return 1;
            }
        }
    }
    return 0;
}

/* The element-wise checks: f is the checker's value and the return the
 * tolerance for a claimed y (|y - f| <= lim passes).  Each tolerance covers
 * the rounding of a correct float implementation plus the checker's own,
 * doubled; docs/model.md derives them. */

/* relu is exact in any implementation (the floor covers flushing a
 * subnormal input). */
static inline float s_lim_relu(float x, float *f)
{
    *f = qr_op_relu(x);
    return S_F;
}

/* One rounding on each side. */
static inline float s_lim_residual(float x, float s, float *f)
{
    *f = x + s;
    return (float)(4 * S_U) * fabsf(*f) + S_F;
}

/* gelu: the rounding of u (relative 6U), of exp (4U) magnified by |2u|,
 * the additions and the division, for the x / (1 + exp(-2u)) form, plus an
 * absolute 4U|x| for the 0.5 x (1 + tanh(u)) form (PyTorch's); then
 * doubled:
 *   lim = U (16|x| + (48|u| + 16)(1 - t)|f|) + F,  t = 1 / (1 + exp(-2u)).
 * (1 - t)|f| is bounded without a division by min(|f|, |x| - |f|), since
 * f = x t and 0 <= t <= 1. */
static inline float s_lim_gelu(float x, float *f)
{
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    float uc = u > -44.0f ? (u < 43.5f ? u : 43.5f) : -44.0f;
    *f = qr_op_gelu(x);
    float af = fabsf(*f), ax = fabsf(x), m = ax - af;
    m = af < m ? af : m;
    return (float)S_U * (16.0f * ax + (48.0f * fabsf(uc) + 16.0f) * m) + S_F;
}

/* The vector form of the gelu check, without qr_op_gelu's division (the
 * slowest instruction in it): with D = 1 + exp(-2u), f = x / D, so
 * |y - f| <= lim is |y D - x| <= lim D; and lim is taken with |y| for |f|
 * (when |y - f| = e, this raises lim by at most 2128 U e < e / 7000, so it
 * admits nothing meaningfully larger).  Below u = -44, f = 0 and the plain
 * form is used (D would be 1.6e38 and overflow the products). */
S_INLINE int s_gelu_ok(float x, float y)
{
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    float uc = u > -44.0f ? (u < 43.5f ? u : 43.5f) : -44.0f;
    float d = 1.0f + qr_op_exp_core(-2.0f * uc);
    float ax = fabsf(x), ay = fabsf(y), m = ax - ay;
    m = ay < m ? ay : m;
    float lim = (float)S_U * (16.0f * ax + (48.0f * fabsf(uc) + 16.0f) * m) + S_F;
    int ok = u < -44.0f ? ay <= lim : fabsf(y * d - x) <= lim * d;
    return ok & S_FINITE(y);
}

/* |y - f| <= lim for a finite y; false for NaN. */
#define S_OK(y, f, lim) ((fabsf((y) - (f)) <= (lim)) & S_FINITE(y))

S_VEC static int s_chk_relu(const float *x, const float *y, size_t n)
{
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t j = 0; j < n; j++) {
        float f, lim = s_lim_relu(x[j], &f);
        bad |= !S_OK(y[j], f, lim);
    }
    return bad;
}

S_VEC static int s_chk_gelu(const float *x, const float *y, size_t n)
{
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t j = 0; j < n; j++)
        bad |= !s_gelu_ok(x[j], y[j]);
    return bad;
}

S_VEC static int s_chk_residual(const float *x, const float *s, const float *y, size_t n)
{
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t j = 0; j < n; j++) {
        float f, lim = s_lim_residual(x[j], s[j], &f);
        bad |= !S_OK(y[j], f, lim);
    }
    return bad;
}

/* Layernorm of one row, checked in double.  A correct float implementation
 * (two passes or Welford, any summation order) gets the mean within
 * D = (n + 2) U mean|x| (+ FLT_MIN for flushed subnormals), so each
 * x - mean within D + U|x - mean|, and 1/sqrt(var + eps) within a relative
 * rho = ((n + 4) U + D^2 s^2) / 2 + 4U (the sum of squares is of positive
 * terms; a shifted mean only adds D^2 to it); then three roundings. */
S_INLINE int s_ln_row(const float *x, const float *y, uint32_t n, const float *w, const float *b,
                      int has_b, double eps)
{
    double s = 0, sa = 0;
#pragma omp simd reduction(+ : s, sa)
    for (uint32_t j = 0; j < n; j++) {
        s += x[j];
        sa += fabs((double)x[j]);
    }
    double mean = s / n, v = 0;
#pragma omp simd reduction(+ : v)
    for (uint32_t j = 0; j < n; j++) {
        double d = x[j] - mean;
        v += d * d;
    }
    double sc = 1.0 / sqrt(v / n + eps);
    double D = (n + 2.0) * S_U * (sa / n) + 0x1p-126;
    double rho = 0.5 * ((n + 4.0) * S_U + D * D * sc * sc) + 4 * S_U;
    rho = rho < 1e30 ? rho : 1e30;
    double c2 = rho + 4 * S_U;
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (uint32_t j = 0; j < n; j++) {
        double d = x[j] - mean, bj = has_b ? b[j] : 0.0;
        double f = d * sc * w[j] + bj;
        double e = fabs((double)w[j]) * sc * (D + fabs(d) * c2) + 3 * S_U * fabs(bj);
        double lim = 2 * e + 4 * S_U * fabs(f) + S_F;
        bad |= !(fabs(y[j] - f) <= lim) | !S_FINITE(y[j]);
    }
    return bad;
}

S_VEC static int s_chk_layernorm(const float *x, const float *y, uint32_t rows, uint32_t n,
                                 const float *w, const float *b, double eps)
{
    int bad = 0;
    for (uint32_t r = 0; r < rows && !bad; r++)
        bad = b ? s_ln_row(x + (size_t)r * n, y + (size_t)r * n, n, w, b, 1, eps)
                : s_ln_row(x + (size_t)r * n, y + (size_t)r * n, n, w, NULL, 0, eps);
    return bad;
}

/* Softmax of one row: a correct float implementation gets each element
 * within a relative U|d| (rounding of d = x - max, magnified by exp),
 * 4U (exp), (n + 4)U (the sum of n positive terms, each with its exp
 * error) and 2U (the division); the checker's own error is U(|d| + 6)
 * (its sum is in double); doubled.  Below d = -87.3 both sides are under
 * FLT_MIN, which the floor covers. */
S_VEC static int s_chk_softmax(const float *x, const float *y, uint32_t rows, uint32_t n)
{
    int bad = 0;
    for (uint32_t r = 0; r < rows && !bad; r++) {
        const float *xr = x + (size_t)r * n, *yr = y + (size_t)r * n;
        float mx = xr[0];
#pragma omp simd reduction(max : mx)
        for (uint32_t j = 0; j < n; j++)
            mx = xr[j] > mx ? xr[j] : mx;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (uint32_t j = 0; j < n; j++)
            s += qr_op_exp(xr[j] - mx);
        float inv = (float)(1.0 / s), c = (float)(2 * S_U) * ((float)n + 16.0f);
#pragma omp simd reduction(| : bad)
        for (uint32_t j = 0; j < n; j++) {
            float d = xr[j] - mx, ad = -d;
            ad = ad < 128.0f ? ad : 128.0f; /* d may overflow to -inf */
            float f = qr_op_exp(d) * inv, lim = (c + (float)(4 * S_U) * ad) * f + S_F;
            bad |= !S_OK(yr[j], f, lim);
        }
    }
    return bad;
}

/* The first element of [0, n) that fails, in scalar code, for the
 * message; op is the layer's op.  The vector check has already said one
 * does, so the worst ratio is reported if rounding differs. */
static size_t s_find(int op, const float *x, const float *s, const float *y, size_t n, float *want,
                     float *lim)
{
    size_t worst = 0;
    double wr = -1;
    for (size_t j = 0; j < n; j++) {
        float f, l = op == QR_MODEL_RELU   ? s_lim_relu(x[j], &f)
                     : op == QR_MODEL_GELU ? s_lim_gelu(x[j], &f)
                                           : s_lim_residual(x[j], s[j], &f);
        double ratio = S_FINITE(y[j]) ? fabs((double)y[j] - f) / l : INFINITY;
        if (!(ratio <= wr)) { /* NaN counts as worst */
            wr = ratio != ratio ? INFINITY : ratio;
            worst = j;
            *want = f;
            *lim = l;
        }
        if (!S_OK(y[j], f, l))
            return j;
    }
    return worst;
}

/* Checks layer i on rows [r0, r1).  Returns 0 or 1 with *why. */
static int s_chk_layer(const qr_model_t *m, const qr_model_probes_t *P, uint32_t i,
                       const float *input, const float *const *layers, uint32_t r0, uint32_t r1,
                       s_why_t *why)
{
    const s_layer_t *L = &m->layers[i];
    const float *x = i ? layers[i - 1] : input, *y = layers[i];
    size_t w = L->out, o = (size_t)r0 * w, n = (size_t)(r1 - r0) * w;
    const float *src = L->op == QR_MODEL_RESIDUAL ? (L->from < 0 ? input : layers[L->from]) : NULL;
    int bad = 0;
    switch (L->op) {
    case QR_MODEL_EMBEDDING:
        for (uint32_t r = r0; r < r1; r++)
            if (memcmp(y + (size_t)r * w, L->w + (size_t)x[r] * w, w * sizeof *y) != 0) {
                *why = (s_why_t){r, -1, x[r], 0, 0};
                return 1;
            }
        return 0;
    case QR_MODEL_DENSE:
        return s_chk_dense(&P->p[i], P->rounds, x, y, r0, r1, why);
    case QR_MODEL_RELU:
        bad = s_chk_relu(x + o, y + o, n);
        break;
    case QR_MODEL_GELU:
        bad = s_chk_gelu(x + o, y + o, n);
        break;
    case QR_MODEL_RESIDUAL:
        bad = s_chk_residual(x + o, src + o, y + o, n);
        break;
    case QR_MODEL_LAYERNORM:
    case QR_MODEL_SOFTMAX:
        /* row by row, so the failing row is known */
        for (uint32_t r = r0; r < r1; r++) {
            const float *xr = x + (size_t)r * w, *yr = y + (size_t)r * w;
            if (L->op == QR_MODEL_LAYERNORM ? s_chk_layernorm(xr, yr, 1, L->out, L->w, L->b, L->eps)
                                            : s_chk_softmax(xr, yr, 1, L->out)) {
                *why = (s_why_t){r, -2, 0, 0, 0};
                return 1;
            }
        }
        return 0;
    }
    if (!bad)
        return 0;
    float want = 0, lim = 0;
    size_t j = s_find((int)L->op, x + o, src ? src + o : NULL, y + o, n, &want, &lim);
    *why = (s_why_t){r0 + (uint32_t)(j / w), (int64_t)(j % w), y[o + j], want, lim};
    return 1;
}

/* Rows [lo, hi) of a check, in blocks of `block` rows: one thread's share. */
#define S_CHECK_THREADS 16
typedef struct {
    const qr_model_t *m;
    const qr_model_probes_t *probes;
    const float *input;
    const float *const *layers;
    uint32_t lo, hi, block;
    uint32_t nbad; /* OUT: the first failing layer in the range, m->n if none */
    s_why_t why;   /* OUT: where */
} s_range_t;

static void *s_range_run(void *arg)
{
    s_range_t *r = arg;
    r->nbad = r->m->n;
    for (uint32_t r0 = r->lo; r0 < r->hi; r0 += r->block) {
        uint32_t r1 = r->hi - r0 < r->block ? r->hi : r0 + r->block;
        for (uint32_t i = 0; i < r->nbad; i++)
            if (s_chk_layer(r->m, r->probes, i, r->input, r->layers, r0, r1, &r->why)) {
                r->nbad = i; /* later blocks only look for an earlier failure */
                break;
            }
        if (r->nbad == 0)
            break;
    }
    return NULL;
}

int qr_model_check(const qr_model_t *m, const float *input, const float *const *layers,
                   uint32_t rows, const qr_model_probes_t *probes, int *bad_layer, char *err,
                   size_t errlen)
{
    return qr_model_check_mt(m, input, layers, rows, probes, 1, bad_layer, err, errlen);
}

int qr_model_check_mt(const qr_model_t *m, const float *input, const float *const *layers,
                      uint32_t rows, const qr_model_probes_t *probes, int threads, int *bad_layer,
                      char *err, size_t errlen)
{
    if (bad_layer)
        *bad_layer = -1;
    s_err(err, errlen, "");
    if (!m || !input || !layers || !probes || rows == 0 || rows > QR_MODEL_MAX_ROWS) {
        s_err(err, errlen,
              "check: needs a model, input, layers and probes, and rows 1..%u (got %u)",
              QR_MODEL_MAX_ROWS, rows);
        return -1;
    }
    if (probes->n != m->n) {
        s_err(err, errlen, "check: the probes were made for another model");
        return -1;
    }
    for (uint32_t i = 0; i < m->n; i++) {
        const s_layer_t *L = &m->layers[i];
        const s_probe_t *P = &probes->p[i];
        if (!layers[i]) {
            s_err(err, errlen, "check: layer %u has no data", i);
            return -1;
        }
        if (L->op == QR_MODEL_DENSE &&
            (P->w != L->w || P->b != L->b || P->in != L->in || P->out != L->out)) {
            s_err(err, errlen, "check: the probes were made for another model (layer %u)", i);
            return -1;
        }
    }
    /* the input is the broker's own: a bad one is an error, not the
     * worker's fault */
    if (!s_finite(input, (size_t)rows * m->input)) {
        s_err(err, errlen, "check: the input holds inf or NaN");
        return -1;
    }
    if (m->layers[0].op == QR_MODEL_EMBEDDING)
        for (uint32_t r = 0; r < rows; r++) {
            float id = input[r];
            if (!(id >= 0.0f && id < (float)m->layers[0].vocab) || id != floorf(id)) {
                s_err(err, errlen, "check: input row %u: token id %g is not an integer in [0, %u)",
                      r, (double)id, m->layers[0].vocab);
                return -1;
            }
        }
    /* rows per block: every layer's rows of a block in about 256 KiB */
    size_t row_bytes = (size_t)m->input * sizeof(float);
    for (uint32_t i = 0; i < m->n; i++)
        row_bytes += (size_t)m->layers[i].out * sizeof(float);
    uint32_t block = (uint32_t)(((size_t)256 << 10) / row_bytes);
    block = block < 4 ? 4 : block & ~3u; /* whole groups of four for the dense sums */
    /* rows split over threads in whole blocks; every layer works row by row
     * (a residual reads the same rows of an earlier layer), so the ranges
     * are independent */
    uint32_t nblocks = (rows + block - 1) / block;
    if (threads < 1)
        threads = 1;
    if ((uint32_t)threads > nblocks)
        threads = (int)nblocks;
    if (threads > S_CHECK_THREADS)
        threads = S_CHECK_THREADS;
    s_range_t rg[S_CHECK_THREADS];
    pthread_t tid[S_CHECK_THREADS];
    bool started[S_CHECK_THREADS] = {false};
    for (int t = 0; t < threads; t++) {
        uint32_t b0 = (uint32_t)((uint64_t)nblocks * (uint64_t)t / (uint64_t)threads);
        uint32_t b1 = (uint32_t)((uint64_t)nblocks * (uint64_t)(t + 1) / (uint64_t)threads);
        rg[t] = (s_range_t){.m = m, .probes = probes, .input = input, .layers = layers,
                            .lo = b0 * block, .hi = b1 * block < rows ? b1 * block : rows,
                            .block = block, .nbad = m->n};
        if (t > 0)
            started[t] = pthread_create(&tid[t], NULL, s_range_run, &rg[t]) == 0;
    }
    s_range_run(&rg[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            s_range_run(&rg[t]); /* no thread to be had: do it here */
    }
    uint32_t nbad = m->n; /* the first failing layer over all ranges */
    s_why_t why = {0, 0, 0, 0, 0};
    for (int t = 0; t < threads; t++)
        if (rg[t].nbad < nbad) {
            nbad = rg[t].nbad;
            why = rg[t].why;
        }
    if (nbad == m->n)
        return 0;
    if (bad_layer)
        *bad_layer = (int)nbad;
    const char *op = qr_model_op_name((int)m->layers[nbad].op);
    if (m->layers[nbad].op == QR_MODEL_DENSE)
        s_err(err, errlen,
              "layer %u (dense): row %u: fails the Freivalds check (deviation %.3g, bound %.3g)",
              nbad, why.row, why.got, why.lim);
    else if (m->layers[nbad].op == QR_MODEL_EMBEDDING)
        s_err(err, errlen, "layer 0 (embedding): row %u: is not row %g of the table", why.row,
              why.got);
    else if (why.col < 0)
        s_err(err, errlen, "layer %u (%s): row %u: does not match the layer applied to its input",
              nbad, op, why.row);
    else
        s_err(err, errlen, "layer %u (%s): row %u, element %lld: %.9g, expected %.9g within %.3g",
              nbad, op, why.row, (long long)why.col, why.got, why.want, why.lim);
    return 1;
}
