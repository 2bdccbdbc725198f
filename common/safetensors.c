/* Reading safetensors files; see safetensors.h.
 *
 * Model weights arrive as safetensors images (a file on a worker, or bytes a
 * client sent); this module turns one into a sorted table of fp32 tensors that
 * the compute code can use directly.  Everything in the image is untrusted:
 *
 *   1. the 8-byte length is checked against the buffer and a size cap before
 *      anything is read after it;
 *   2. the header is parsed by jansson with duplicate keys refused (two
 *      tensors of one name would be ambiguous), and must be a JSON object;
 *   3. each entry's dtype, shape and data_offsets are checked with 64-bit
 *      overflow checks: the byte span must equal count * element size and lie
 *      inside the data section;
 *   4. spans are compared pairwise after sorting by offset, so no two tensors
 *      share a byte (empty tensors occupy none);
 *   5. only then is any data read, converted to fp32 into one owned buffer.
 *
 * The input buffer is never kept: parsing converts, so qr_st_parse needs no
 * copy and qr_st_load maps the file only for the duration of the parse. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The header is metadata only; the reference implementation caps it at 100 MB
 * and so do we, so a hostile length cannot make jansson allocate gigabytes. */
#define S_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
/* Largest file qr_st_load accepts: fits in memory on a worker, refuses
 * devices and sparse monsters before mapping them. */
#define S_MAX_FILE ((uint64_t)16 << 30)
/* Names are echoed in messages; keep the message readable. */
#define S_NAME_SHOWN 64

struct qr_st_file {
    size_t count;            /* tensors */
    qr_st_tensor_t *tensors; /* count entries, sorted by name */
    char *names;             /* all names, NUL-separated; tensors[i].name points here */
    float *data;             /* all values, fp32, in tensor order */
};

/* One tensor while parsing: where its bytes lie in the data section. */
typedef struct {
    qr_st_tensor_t t; /* name points into the jansson tree until copied */
    uint64_t begin;   /* data_offsets[0] */
    uint64_t end;     /* data_offsets[1] */
} s_entry_t;

static void s_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char *s_dtype_name(qr_st_dtype_t d)
{
    return d == QR_ST_F32 ? "F32" : d == QR_ST_F16 ? "F16" : "BF16";
}

static size_t s_elem_size(qr_st_dtype_t d)
{
    return d == QR_ST_F32 ? 4 : 2;
}

static float s_bits_to_f32(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float qr_st_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        if (mant == 0)
            return s_bits_to_f32(sign); /* +-0 */
        /* subnormal: mant * 2^-24; normalise it, every one is a normal fp32 */
        uint32_t e = 127 - 15 + 1;
        while (!(mant & 0x400)) {
            mant <<= 1;
            e--;
        }
        mant &= 0x3ff;
        return s_bits_to_f32(sign | e << 23 | mant << 13);
    }
    if (exp == 0x1f) /* inf, or NaN keeping its payload and quiet bit */
        return s_bits_to_f32(sign | 0xffu << 23 | mant << 13);
    return s_bits_to_f32(sign | (exp + 127 - 15) << 23 | mant << 13);
}

float qr_st_bf16_to_f32(uint16_t h)
{
    /* bfloat16 is the top half of an fp32, special values included */
    return s_bits_to_f32((uint32_t)h << 16);
}

static uint64_t s_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int s_mul_overflows(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a)
        return 1;
    *out = a * b;
    return 0;
}

/* A JSON integer >= 0, as uint64. */
static int s_get_uint(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Validates one header entry into e (name, dtype, dims, count, offsets). */
static int s_parse_entry(const char *name, json_t *obj, uint64_t datalen, s_entry_t *e, char *err,
                         size_t errlen)
{
    const int nl = S_NAME_SHOWN;
    memset(e, 0, sizeof *e);
    e->t.name = name;
    if (!json_is_object(obj)) {
        s_err(err, errlen, "safetensors: tensor '%.*s': entry is not a JSON object", nl, name);
        return -1;
    }
    json_t *dt = json_object_get(obj, "dtype");
    if (!dt) {
        s_err(err, errlen, "safetensors: tensor '%.*s': no \"dtype\"", nl, name);
        return -1;
    }
    if (!json_is_string(dt)) {
        s_err(err, errlen, "safetensors: tensor '%.*s': \"dtype\" is not a string", nl, name);
        return -1;
    }
    const char *ds = json_string_value(dt);
    if (strcmp(ds, "F32") == 0)
        e->t.dtype = QR_ST_F32;
    else if (strcmp(ds, "F16") == 0)
        e->t.dtype = QR_ST_F16;
    else if (strcmp(ds, "BF16") == 0)
        e->t.dtype = QR_ST_BF16;
    else {
        s_err(err, errlen,
              "safetensors: tensor '%.*s': dtype \"%.16s\" is not supported (F32, F16 or BF16)", nl,
              name, ds);
        return -1;
    }

    json_t *shape = json_object_get(obj, "shape");
    if (!json_is_array(shape)) {
        s_err(err, errlen, "safetensors: tensor '%.*s': \"shape\" %s", nl, name,
              shape ? "is not an array" : "is missing");
        return -1;
    }
    size_t nd = json_array_size(shape);
    if (nd > QR_ST_MAX_DIMS) {
        s_err(err, errlen, "safetensors: tensor '%.*s': \"shape\" has %zu dimensions (at most %d)",
              nl, name, nd, QR_ST_MAX_DIMS);
        return -1;
    }
    e->t.ndims = (uint32_t)nd;
    int zero = 0;
    for (size_t i = 0; i < nd; i++) {
        if (s_get_uint(json_array_get(shape, i), &e->t.dims[i]) < 0) {
            s_err(err, errlen,
                  "safetensors: tensor '%.*s': \"shape\"[%zu] is not a non-negative integer", nl,
                  name, i);
            return -1;
        }
        zero |= e->t.dims[i] == 0;
    }
    /* any zero dimension makes an empty tensor, however large the others */
    uint64_t count = 1;
    for (size_t i = 0; i < nd && !zero; i++)
        if (s_mul_overflows(count, e->t.dims[i], &count)) {
            s_err(err, errlen, "safetensors: tensor '%.*s': \"shape\" element count overflows", nl,
                  name);
            return -1;
        }
    e->t.count = zero ? 0 : count;
    uint64_t bytes;
    if (s_mul_overflows(e->t.count, s_elem_size(e->t.dtype), &bytes)) {
        s_err(err, errlen, "safetensors: tensor '%.*s': byte size of \"shape\" overflows", nl,
              name);
        return -1;
    }

    json_t *off = json_object_get(obj, "data_offsets");
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        s_get_uint(json_array_get(off, 0), &e->begin) < 0 ||
        s_get_uint(json_array_get(off, 1), &e->end) < 0) {
        s_err(err, errlen, "safetensors: tensor '%.*s': \"data_offsets\" %s", nl, name,
              off ? "is not [begin, end] of two non-negative integers" : "is missing");
        return -1;
    }
    if (e->begin > e->end || e->end > datalen) {
        s_err(err, errlen,
              "safetensors: tensor '%.*s': \"data_offsets\" [%llu, %llu] out of range "
              "(data section is %llu bytes)",
              nl, name, (unsigned long long)e->begin, (unsigned long long)e->end,
              (unsigned long long)datalen);
        return -1;
    }
    if (e->end - e->begin != bytes) {
        s_err(err, errlen,
              "safetensors: tensor '%.*s': \"data_offsets\" span %llu bytes, but %s of "
              "%llu elements needs %llu",
              nl, name, (unsigned long long)(e->end - e->begin), s_dtype_name(e->t.dtype),
              (unsigned long long)e->t.count, (unsigned long long)bytes);
        return -1;
    }
    return 0;
}

static int s_cmp_offset(const void *a, const void *b)
{
    const s_entry_t *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int s_cmp_name(const void *a, const void *b)
{
    return strcmp(((const s_entry_t *)a)->t.name, ((const s_entry_t *)b)->t.name);
}

static void s_convert(const uint8_t *src, qr_st_dtype_t dtype, uint64_t count, float *dst)
{
    for (uint64_t i = 0; i < count; i++) {
        if (dtype == QR_ST_F32) {
            const uint8_t *p = src + 4 * i;
            dst[i] = s_bits_to_f32((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                                   (uint32_t)p[3] << 24);
        } else {
            uint16_t h = (uint16_t)(src[2 * i] | src[2 * i + 1] << 8);
            dst[i] = dtype == QR_ST_F16 ? qr_st_f16_to_f32(h) : qr_st_bf16_to_f32(h);
        }
    }
}

qr_st_file_t *qr_st_parse(const void *buf, size_t len, char *err, size_t errlen)
{
    if (!buf && len) {
        s_err(err, errlen, "safetensors: no buffer");
        return NULL;
    }
    const uint8_t *p = buf;
    json_t *root = NULL;
    s_entry_t *ents = NULL;
    qr_st_file_t *self = NULL;

    if (len < 8) {
        s_err(err, errlen, "safetensors: truncated: %zu bytes, the header length alone needs 8",
              len);
        return NULL;
    }
    uint64_t hlen = s_le64(p);
    if (hlen > len - 8) {
        s_err(err, errlen,
              "safetensors: header length %llu runs past the end of the input (%zu bytes after "
              "the length)",
              (unsigned long long)hlen, len - 8);
        return NULL;
    }
    if (hlen > S_MAX_HEADER) {
        s_err(err, errlen, "safetensors: header length %llu is over the limit of %llu bytes",
              (unsigned long long)hlen, (unsigned long long)S_MAX_HEADER);
        return NULL;
    }
    const uint8_t *data = p + 8 + hlen;
    uint64_t datalen = len - 8 - hlen;

    json_error_t jerr;
    root = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        s_err(err, errlen, "safetensors: header is not valid JSON: %s (line %d, column %d)",
              jerr.text, jerr.line, jerr.column);
        goto fail;
    }
    if (!json_is_object(root)) {
        s_err(err, errlen, "safetensors: header is not a JSON object");
        goto fail;
    }

    size_t n = json_object_size(root);
    ents = calloc(n ? n : 1, sizeof *ents);
    if (!ents) {
        s_err(err, errlen, "safetensors: out of memory");
        goto fail;
    }
    size_t count = 0, namebytes = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "__metadata__") == 0)
            continue; /* free-form strings; nothing of ours */
        if (s_parse_entry(key, val, datalen, &ents[count], err, errlen) < 0)
            goto fail;
        namebytes += strlen(key) + 1;
        count++;
    }

    /* no byte belongs to two tensors: sorted by offset, each starts at or
     * after the previous non-empty one ends */
    qsort(ents, count, sizeof *ents, s_cmp_offset);
    uint64_t prev_end = 0;
    const char *prev_name = NULL;
    for (size_t i = 0; i < count; i++) {
        if (ents[i].begin == ents[i].end)
            continue;
        if (prev_name && ents[i].begin < prev_end) {
            s_err(err, errlen,
                  "safetensors: tensors '%.*s' and '%.*s' overlap (\"data_offsets\" [%llu, %llu] "
                  "starts before %llu)",
                  S_NAME_SHOWN, prev_name, S_NAME_SHOWN, ents[i].t.name,
                  (unsigned long long)ents[i].begin, (unsigned long long)ents[i].end,
                  (unsigned long long)prev_end);
            goto fail;
        }
        prev_end = ents[i].end;
        prev_name = ents[i].t.name;
    }
    qsort(ents, count, sizeof *ents, s_cmp_name);

    /* every count fits: the spans are disjoint inside datalen bytes */
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += ents[i].t.count;
    if (total > SIZE_MAX / sizeof(float)) {
        s_err(err, errlen, "safetensors: %llu values do not fit in memory",
              (unsigned long long)total);
        goto fail;
    }

    self = calloc(1, sizeof *self);
    if (!self)
        goto oom;
    self->tensors = calloc(count ? count : 1, sizeof *self->tensors);
    self->names = malloc(namebytes ? namebytes : 1);
    self->data = malloc(total ? (size_t)total * sizeof(float) : sizeof(float));
    if (!self->tensors || !self->names || !self->data)
        goto oom;
    self->count = count;
    char *np = self->names;
    float *dp = self->data;
    for (size_t i = 0; i < count; i++) {
        qr_st_tensor_t *t = &self->tensors[i];
        *t = ents[i].t;
        size_t kl = strlen(ents[i].t.name) + 1;
        memcpy(np, ents[i].t.name, kl);
        t->name = np;
        np += kl;
        s_convert(data + ents[i].begin, t->dtype, t->count, dp);
        t->data = dp;
        dp += t->count;
    }
    free(ents);
    json_decref(root);
    return self;

oom:
    s_err(err, errlen, "safetensors: out of memory");
fail:
    qr_st_destroy(&self);
    free(ents);
    json_decref(root);
    return NULL;
}

qr_st_file_t *qr_st_load(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        s_err(err, errlen, "safetensors: cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        s_err(err, errlen, "safetensors: cannot stat %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        s_err(err, errlen, "safetensors: %s is not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((uint64_t)st.st_size > S_MAX_FILE || (uint64_t)st.st_size > SIZE_MAX) {
        s_err(err, errlen, "safetensors: %s is %llu bytes, over the limit of %llu", path,
              (unsigned long long)st.st_size, (unsigned long long)S_MAX_FILE);
        close(fd);
        return NULL;
    }
    size_t len = (size_t)st.st_size;
    if (len == 0) {
        close(fd);
        s_err(err, errlen, "safetensors: %s is empty", path);
        return NULL;
    }
    /* mapped, not read: the parse converts into its own buffer, so a large
     * file never needs twice its size in memory */
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int merr = errno;
    close(fd);
    if (map == MAP_FAILED) {
        s_err(err, errlen, "safetensors: cannot map %s: %s", path, strerror(merr));
        return NULL;
    }
    char inner[512] = "";
    qr_st_file_t *self = qr_st_parse(map, len, inner, sizeof inner);
    munmap(map, len);
    if (!self)
        s_err(err, errlen, "%s: %s", path, inner);
    return self;
}

void qr_st_destroy(qr_st_file_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_st_file_t *self = *self_p;
    free(self->tensors);
    free(self->names);
    free(self->data);
    free(self);
    *self_p = NULL;
}

size_t qr_st_count(const qr_st_file_t *self)
{
    return self ? self->count : 0;
}

const qr_st_tensor_t *qr_st_at(const qr_st_file_t *self, size_t i)
{
    if (!self || i >= self->count)
        return NULL;
    return &self->tensors[i];
}

const qr_st_tensor_t *qr_st_find(const qr_st_file_t *self, const char *name)
{
    if (!self || !name)
        return NULL;
    size_t lo = 0, hi = self->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, self->tensors[mid].name);
        if (c == 0)
            return &self->tensors[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
