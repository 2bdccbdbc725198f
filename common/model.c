/* ai.infer models: graph validation, CPU forward pass, dense-layer
 * verification; see model.h and docs/model.md.
 *
 * Invariants once qr_model_new has returned a model:
 *   1. layers[0].in == input, and layers[i].in == layers[i - 1].out;
 *   2. every width is in [1, QR_MODEL_MAX_WIDTH];
 *   3. every tensor pointer is into the weights file, has exactly the shape
 *      the op needs, and holds only finite values;
 *   4. an embedding is layer 0 only, with input width 1;
 *   5. a residual's source is in [-1, i - 1] and has width layers[i].in.
 * qr_model_forward and qr_model_verify_dense rely on them and do not check
 * again. */
#include "model.h"

#include <assert.h>
#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

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
    for (uint32_t i = 0; (*self_p)->layers && i < (*self_p)->n; i++)
    {
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

/* gelu(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), written
 * as x / (1 + exp(-2u)) (the same function): for large negative x the first
 * form subtracts nearly equal numbers and loses every digit, the second does
 * not.  In double so x^3 cannot overflow. */
static float s_gelu(float xf)
{
    double x = xf;
    double u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    return (float)(x / (1.0 + exp(-2.0 * u)));
}

/* Runs layer i on rows rows of x into y; src is the residual's source. */
static int s_run(const s_layer_t *L, uint32_t i, const float *x, const float *src, float *y,
                 uint32_t rows, char *err, size_t errlen)
{
    size_t in = L->in, out = L->out;
    switch (L->op) {
    case QR_MODEL_EMBEDDING:
        for (uint32_t r = 0; r < rows; r++) {
            float id = x[r];
            if (!(id >= 0.0f && id < (float)L->vocab) || id != floorf(id)) {
                s_err(err, errlen,
                      "layer %u (embedding): row %u: token id %g is not an integer in [0, %u)", i,
                      r, (double)id, L->vocab);
                return -1;
            }
            memcpy(y + r * out, L->w + (size_t)id * out, out * sizeof *y);
        }
        break;
    case QR_MODEL_DENSE:
        /* the bias goes into C first and sgemm adds the product (beta = 1):
         * one rounding per element, and the same sum that
         * qr_model_verify_dense checks (bias as one more column of x) */
        if (L->b)
            for (uint32_t r = 0; r < rows; r++)
                memcpy(y + r * out, L->b, out * sizeof *y);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)out, (int)in, 1.0f, x,
                    (int)in, L->w, (int)in, L->b ? 1.0f : 0.0f, y, (int)out);
        break;
    case QR_MODEL_RELU:
        for (size_t j = 0; j < (size_t)rows * out; j++)
            y[j] = x[j] > 0.0f ? x[j] : 0.0f;
        break;
    case QR_MODEL_GELU:
        for (size_t j = 0; j < (size_t)rows * out; j++)
            y[j] = s_gelu(x[j]);
        break;
    case QR_MODEL_LAYERNORM:
        /* two passes in double: the one-pass E[x^2] - E[x]^2 cancels badly
         * when the mean is large against the spread */
        for (uint32_t r = 0; r < rows; r++) {
            const float *xr = x + r * in;
            float *yr = y + r * out;
            double mean = 0.0, var = 0.0;
            for (size_t j = 0; j < in; j++)
                mean += xr[j];
            mean /= (double)in;
            for (size_t j = 0; j < in; j++)
                var += ((double)xr[j] - mean) * ((double)xr[j] - mean);
            var /= (double)in; /* biased, as PyTorch */
            double inv = 1.0 / sqrt(var + L->eps);
            for (size_t j = 0; j < in; j++)
                yr[j] = (float)(((double)xr[j] - mean) * inv * L->w[j] + (L->b ? L->b[j] : 0.0));
        }
        break;
    case QR_MODEL_SOFTMAX:
        /* subtracting the row's max keeps exp from overflowing; the largest
         * term is then exp(0) = 1 so the sum is never 0 */
        for (uint32_t r = 0; r < rows; r++) {
            const float *xr = x + r * in;
            float *yr = y + r * out;
            float mx = xr[0];
            for (size_t j = 1; j < in; j++)
                mx = xr[j] > mx ? xr[j] : mx;
            double sum = 0.0;
            for (size_t j = 0; j < in; j++)
                sum += exp((double)xr[j] - mx);
            for (size_t j = 0; j < in; j++)
                yr[j] = (float)(exp((double)xr[j] - mx) / sum);
        }
        break;
    case QR_MODEL_RESIDUAL:
        for (size_t j = 0; j < (size_t)rows * out; j++)
            y[j] = x[j] + src[j];
        break;
    }
    /* an overflow here would only make the result unverifiable (the gemm
     * check never passes inf); say so now, on the worker */
    if (!qr_floats_finite(y, (size_t)rows * out)) {
        s_err(err, errlen, "layer %u (%s): output is not finite (overflow)", i,
              qr_model_op_name((int)L->op));
        return -1;
    }
    return 0;
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
    if (!qr_floats_finite(in, n_in)) {
        s_err(err, errlen, "forward: the input holds inf or NaN");
        return NULL;
    }
    qr_model_acts_t *a = calloc(1, sizeof *a);
    if (!a || !(a->outs = calloc((size_t)self->n + 1, sizeof *a->outs)))
        goto oom;
    a->rows = rows;
    a->n = self->n;
    if (!(a->outs[0] = malloc(n_in * sizeof(float))))
        goto oom;
    memcpy(a->outs[0], in, n_in * sizeof(float));
    for (uint32_t i = 0; i < self->n; i++) {
        const s_layer_t *L = &self->layers[i];
        if (!(a->outs[i + 1] = malloc((size_t)rows * L->out * sizeof(float))))
            goto oom;
        const float *src = L->op == QR_MODEL_RESIDUAL ? a->outs[L->from + 1] : NULL;
        if (s_run(L, i, a->outs[i], src, a->outs[i + 1], rows, err, errlen))
            goto fail;
    }
    return a;
oom:
    s_err(err, errlen, "forward: out of memory");
fail:
    qr_model_acts_destroy(&a);
    return NULL;
}

qr_model_acts_t *qr_model_acts_new(const qr_model_t *self, uint32_t rows)
{
    if (!self || rows == 0 || rows > QR_MODEL_MAX_ROWS)
        return NULL;
    qr_model_acts_t *a = calloc(1, sizeof *a);
    if (!a || !(a->outs = calloc((size_t)self->n + 1, sizeof *a->outs))) {
        free(a);
        return NULL;
    }
    a->rows = rows;
    a->n = self->n;
    for (uint32_t i = 0; i <= self->n; i++) {
        uint32_t w = i ? self->layers[i - 1].out : self->input;
        if (!(a->outs[i] = malloc((size_t)rows * w * sizeof(float)))) {
            qr_model_acts_destroy(&a);
            return NULL;
        }
    }
    return a;
}

float *qr_model_acts_layer_mut(qr_model_acts_t *self, int i)
{
    return self && i >= -1 && i < (int)self->n ? self->outs[i + 1] : NULL;
}

void qr_model_acts_destroy(qr_model_acts_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_model_acts_t *a = *self_p;
    if (a->outs)
        for (uint32_t i = 0; i <= a->n; i++)
            free(a->outs[i]);
    free(a->outs);
    free(a);
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
