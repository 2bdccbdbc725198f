/* Reading safetensors files (the format PyTorch and Hugging Face write).
 *
 * A file is: an unsigned 64-bit little-endian header length N, N bytes of
 * UTF-8 JSON mapping tensor names to {"dtype", "shape", "data_offsets":
 * [begin, end]} (plus an optional "__metadata__" object of strings), then the
 * tensors' bytes, offsets relative to the end of the header.  This module
 * validates all of it (offsets in range, sizes matching shapes and dtypes,
 * no overlaps, no overflow) and gives each tensor as fp32, converting F16 and
 * BF16 (and F32 as is) on load.  Corrupt or truncated input is refused with a
 * message that says what is wrong; nothing is read past the buffer.
 * Not thread-safe per object; separate objects are independent. */
#ifndef QR_SAFETENSORS_H
#define QR_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define QR_ST_MAX_DIMS 8

typedef enum { QR_ST_F32 = 0, QR_ST_F16, QR_ST_BF16 } qr_st_dtype_t;

typedef struct {
    const char *name;               /* tensor name (owned by the file object) */
    qr_st_dtype_t dtype;            /* as stored */
    uint32_t ndims;                 /* 0..QR_ST_MAX_DIMS */
    uint64_t dims[QR_ST_MAX_DIMS];  /* shape, row-major */
    uint64_t count;                 /* product of dims (1 for a scalar) */
    const float *data;              /* count fp32 values, converted on load */
} qr_st_tensor_t;

typedef struct qr_st_file qr_st_file_t;

/* Parses a whole safetensors image of len bytes (copied; the caller keeps
 * buf).  Returns the file object (caller owns; qr_st_destroy) or NULL with a
 * message in err. */
qr_st_file_t *qr_st_parse(const void *buf, size_t len, char *err, size_t errlen);
/* Reads and parses the file at path.  Same contract as qr_st_parse. */
qr_st_file_t *qr_st_load(const char *path, char *err, size_t errlen);
/* NULL-safe, nulls *self_p. */
void qr_st_destroy(qr_st_file_t **self_p);

/* Number of tensors, and tensor i in name order (i < count), or NULL. */
size_t qr_st_count(const qr_st_file_t *self);
const qr_st_tensor_t *qr_st_at(const qr_st_file_t *self, size_t i);
/* The tensor called name, or NULL. */
const qr_st_tensor_t *qr_st_find(const qr_st_file_t *self, const char *name);

/* Converts one IEEE half / bfloat16 value to fp32 (exact). */
float qr_st_f16_to_f32(uint16_t h);
float qr_st_bf16_to_f32(uint16_t h);

#endif
