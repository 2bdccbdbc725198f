/* Models for the ai.infer job kind: a safetensors weights file plus a small
 * JSON graph of layers (docs/model.md has the format and the math).
 *
 * The broker builds a qr_model_t at submit, which validates the whole graph
 * against the weights (ops, fields, tensor names, shapes, width chaining,
 * residual links, finite weights), so a bad model is refused there and never
 * reaches a worker.  The worker runs qr_model_forward, which returns every
 * layer's output; the broker then checks every layer of the returned
 * activations (qr_model_check): dense layers with Freivalds' test and secret
 * vectors made once per model, in O(rows (in + out)) instead of
 * recomputing the product, the cheap layers by applying them again.
 *
 * Ownership: the model keeps pointers into the qr_st_file_t it was built
 * from (weights can be large; copying them would double the memory), so the
 * weights must outlive the model.  A model is immutable after qr_model_new:
 * every query, qr_model_forward and qr_model_verify_dense may run
 * concurrently on one model from several threads (OpenBLAS must be the
 * thread-safe build, as Debian's is). */
#ifndef QR_MODEL_H
#define QR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

/* Limits checked at qr_model_new / qr_model_forward.  Widths and rows stay
 * within what the gemm verification accepts for one side of a matrix. */
#define QR_MODEL_MAX_LAYERS 4096u
#define QR_MODEL_MAX_WIDTH 65536u
#define QR_MODEL_MAX_ROWS 65536u
/* Token ids travel as floats: integers are exact only up to 2^24. */
#define QR_MODEL_MAX_VOCAB (1u << 24)

typedef enum {
    QR_MODEL_EMBEDDING = 0, /* row = weight[id], id = the row's single input value */
    QR_MODEL_DENSE,         /* y = x W^T + b (PyTorch Linear: W is [out, in]) */
    QR_MODEL_RELU,          /* max(x, 0) */
    QR_MODEL_GELU,          /* tanh approximation (PyTorch approximate='tanh') */
    QR_MODEL_LAYERNORM,     /* over the row, biased variance, then * weight + bias */
    QR_MODEL_SOFTMAX,       /* over the row, max subtracted first */
    QR_MODEL_RESIDUAL,      /* x + output of layer "from" (-1: the model input) */
} qr_model_op_t;

typedef struct qr_model qr_model_t;
typedef struct qr_model_acts qr_model_acts_t;

/* Parses the graph (len bytes of JSON, need not be NUL-terminated) and
 * validates it against weights.  Returns the model (caller owns;
 * qr_model_destroy) or NULL with a message in err naming the layer index and
 * tensor at fault.  weights must outlive the model. */
qr_model_t *qr_model_new(const char *graph, size_t len, const qr_st_file_t *weights, char *err,
                         size_t errlen);
/* NULL-safe, nulls *self_p. */
void qr_model_destroy(qr_model_t **self_p);

/* Width of one input row, of one output row, and the number of layers
 * (0 for a NULL model). */
uint32_t qr_model_input_width(const qr_model_t *self);
uint32_t qr_model_output_width(const qr_model_t *self);
uint32_t qr_model_layers(const qr_model_t *self);
/* Layer i's op, input width and output width.  For i out of range: op -1,
 * widths 0. */
int qr_model_op(const qr_model_t *self, uint32_t i);
uint32_t qr_model_layer_in_width(const qr_model_t *self, uint32_t i);
uint32_t qr_model_layer_width(const qr_model_t *self, uint32_t i);
/* For a residual layer, the layer it adds ("from", -1 the model input);
 * -2 for any other layer or i out of range. */
int qr_model_residual_from(const qr_model_t *self, uint32_t i);
/* The op's name as in the graph ("dense", ...), or "?" for an unknown value. */
const char *qr_model_op_name(int op);

/* Dense layer i's weight W ([out, in], row-major), bias b ([out], NULL when
 * the layer has none) and widths, through the OUT parameters (each may be
 * NULL).  The pointers belong to the weights file.  Returns 0, or -1 (OUT
 * parameters set to NULL/0) when layer i is not dense or out of range. */
int qr_model_dense(const qr_model_t *self, uint32_t i, const float **W, const float **b,
                   uint32_t *out, uint32_t *in);

/* Everything a runtime needs to run layer i (the GPU path builds its plan
 * from this).  Pointers belong to the weights file; NULL where the op has
 * none.  weight: embedding [vocab, out], dense [out, in], layernorm [out];
 * bias: dense or layernorm [out]. */
typedef struct {
    int op;              /* qr_model_op_t */
    uint32_t in, out;    /* input and output row widths */
    const float *weight; /* see above, or NULL */
    const float *bias;   /* or NULL */
    uint32_t vocab;      /* embedding: rows of weight */
    int from;            /* residual: source layer, -1 the model input */
    float eps;           /* layernorm: added to the variance */
} qr_model_layer_t;
/* Fills *out for layer i.  Returns 0, or -1 when i is out of range. */
int qr_model_layer(const qr_model_t *self, uint32_t i, qr_model_layer_t *out);

/* An empty result for rows rows (buffers allocated, contents undefined),
 * for a runtime other than qr_model_forward to fill through
 * qr_model_acts_layer_mut.  NULL on rows 0 / over QR_MODEL_MAX_ROWS or out
 * of memory. */
qr_model_acts_t *qr_model_acts_new(const qr_model_t *self, uint32_t rows);
/* Writable output of layer i (i = -1: the input copy); NULL out of range. */
float *qr_model_acts_layer_mut(qr_model_acts_t *self, int i);

/* Runs the model on rows input rows (in: rows x input width, row-major; for
 * an embedding model one token id per row, an integral float in
 * [0, vocab)).  Returns every layer's output (caller owns;
 * qr_model_acts_destroy) or NULL with a message in err for rows 0 or over
 * QR_MODEL_MAX_ROWS, an input that is not finite, a token id that is not an
 * integer in range, a layer whose output overflows, or out of memory.
 * Thread-safe; uses cblas_sgemm (cblas_sgemv for one row) and vectorised
 * float element-wise code (model_ops.h). */
qr_model_acts_t *qr_model_forward(const qr_model_t *self, const float *in, uint32_t rows, char *err,
                                  size_t errlen);
/* NULL-safe, nulls *self_p. */
void qr_model_acts_destroy(qr_model_acts_t **self_p);
/* Number of rows in the result. */
uint32_t qr_model_acts_rows(const qr_model_acts_t *self);
/* Output of layer i (rows x qr_model_layer_width(model, i)); i = -1 gives a
 * copy of the model input, so the input of layer i is always layer i - 1.
 * NULL when i is out of range.  Owned by the result. */
const float *qr_model_acts_layer(const qr_model_acts_t *self, int i);
/* Output of the last layer (rows x qr_model_output_width). */
const float *qr_model_acts_output(const qr_model_acts_t *self);

/* Checks a claimed dense-layer output y (rows x out) against its input x
 * (rows x in): y == x W^T + b within fp32 rounding, with qr_gemm_verify's
 * Freivalds test and its bound (`rounds` random vectors from seed).  The bias
 * is folded into the product as an extra column of ones in x and an extra
 * row b in W^T, so the rounding of the bias add is covered by the same bound
 * (subtracting b from y instead would cancel catastrophically when b
 * dominates).  *worst (may be NULL) as for qr_gemm_verify.  Returns 0 when y
 * passes, 1 when it does not, -1 when layer i is not dense, rows is 0 or
 * over QR_MODEL_MAX_ROWS, or out of memory.  Thread-safe. */
int qr_model_verify_dense(const qr_model_t *self, uint32_t i, const float *x, const float *y,
                          uint32_t rows, int rounds, uint64_t seed, double *worst);

/* ---- checking a whole claimed result (the broker's side of ai.infer) ----
 *
 * Secret Freivalds vectors for every dense layer of m: for each of `rounds`
 * random vectors r (uniform in [-1, 1), from seed), v = W^T r with b.r
 * appended, and |W^T||r| with |b||r| appended, computed once (O(in x out)
 * per vector) so that checking a result costs O(rows (in + out) rounds)
 * per dense layer and never reads W.  The seed must be secret and drawn
 * from the OS: a worker that knew r could forge results that pass.  Keep
 * the probes away from workers and make new ones now and then (see
 * docs/model.md for why reusing them across checks is sound).  Returns
 * NULL for a NULL model, rounds outside 1..64, or out of memory.  The
 * probes belong to m (they are refused with any other model) and are
 * immutable: any number of qr_model_check calls may share them from
 * several threads. */
typedef struct qr_model_probes qr_model_probes_t;
qr_model_probes_t *qr_model_probes_new(const qr_model_t *m, int rounds, uint64_t seed);
/* NULL-safe, nulls *self_p. */
void qr_model_probes_destroy(qr_model_probes_t **self_p);

/* Checks a worker's whole claimed result: layers[i] is the claimed output
 * of layer i (rows x qr_model_layer_width(m, i)), input the model input the
 * broker sent (rows x input width; token ids for an embedding model).
 * Every layer is checked against its claimed input (layers[i - 1], or
 * input for layer 0; a residual also reads its claimed source):
 *   - dense: Freivalds with the probes and qr_gemm_verify's fp32 rounding
 *     bound (bias folded in as in qr_model_verify_dense);
 *   - embedding: each row bit for bit the table row of its token id;
 *   - relu, gelu, residual, layernorm, softmax: applied again and compared
 *     element by element within a tolerance that any correct float
 *     implementation meets (other exp, other summation order, a GPU's
 *     flush-to-zero) and that is a few units of rounding scaled by the
 *     op's condition (docs/model.md has the formulas).
 * Every claimed value must be finite.  Returns 0 when every layer passes;
 * 1 when one does not, with *bad_layer (may be NULL) the first failing
 * layer and err naming it, the row and why; -1 (*bad_layer -1) for a NULL
 * argument, rows 0 or over QR_MODEL_MAX_ROWS, probes of another model, or
 * an input the model refuses (inf, NaN, a bad token id).  Allocates
 * nothing; thread-safe. */
int qr_model_check(const qr_model_t *m, const float *input, const float *const *layers,
                   uint32_t rows, const qr_model_probes_t *probes, int *bad_layer, char *err,
                   size_t errlen);
/* qr_model_check with the rows split over up to `threads` threads (whole
 * blocks of rows each; the calling thread takes the first share): the same
 * verdict and the same first failing layer, in about 1/threads of the wall
 * time for a large result.  threads <= 1 is qr_model_check. */
int qr_model_check_mt(const qr_model_t *m, const float *input, const float *const *layers,
                      uint32_t rows, const qr_model_probes_t *probes, int threads, int *bad_layer,
                      char *err, size_t errlen);

#endif
