/* libFuzzer target: the safetensors reader (common/safetensors.c).
 *
 * The input is a whole safetensors image given to qr_st_parse as is (its
 * first 8 bytes are the header length, so random inputs die at framing; the
 * seeds, valid and broken files, keep the fuzzer inside the JSON).
 *
 * Invariants besides "no crash / no sanitizer report / no leak": a failure
 * returns NULL with a message; a success gives tensors in strictly increasing
 * name order, each with ndims <= QR_ST_MAX_DIMS, count equal to the product
 * of its dims, a known dtype, all count values readable (ASan checks the
 * reads), qr_st_find returning the same tensor, and no more data than the
 * input could hold (count * element size summed over tensors <= size). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

#define S_CHECK(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_safetensors: invariant failed at %s:%d: %s\n", __FILE__,         \
                    __LINE__, #cond);                                                              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    memset(err, 0, sizeof err);
    qr_st_file_t *f = qr_st_parse(data, size, err, sizeof err);
    if (!f) {
        S_CHECK(err[0] != '\0');
        S_CHECK(memchr(err, '\0', sizeof err) != NULL);
        return 0;
    }
    size_t n = qr_st_count(f);
    uint64_t bytes = 0;
    volatile float sink = 0;
    for (size_t i = 0; i < n; i++) {
        const qr_st_tensor_t *t = qr_st_at(f, i);
        S_CHECK(t && t->name);
        if (i > 0)
            S_CHECK(strcmp(qr_st_at(f, i - 1)->name, t->name) < 0);
        S_CHECK(strcmp(t->name, "__metadata__") != 0);
        S_CHECK(t->dtype == QR_ST_F32 || t->dtype == QR_ST_F16 || t->dtype == QR_ST_BF16);
        S_CHECK(t->ndims <= QR_ST_MAX_DIMS);
        uint64_t c = 1;
        int zero = 0;
        for (uint32_t d = 0; d < t->ndims; d++)
            zero |= t->dims[d] == 0;
        for (uint32_t d = 0; d < t->ndims && !zero; d++) {
            S_CHECK(t->dims[d] <= UINT64_MAX / c);
            c *= t->dims[d];
        }
        S_CHECK(t->count == (zero ? 0 : c));
        S_CHECK(t->data != NULL);
        for (uint64_t k = 0; k < t->count; k++)
            sink += t->data[k];
        bytes += t->count * (t->dtype == QR_ST_F32 ? 4 : 2);
        S_CHECK(bytes <= size);
        S_CHECK(qr_st_find(f, t->name) == t);
    }
    S_CHECK(qr_st_at(f, n) == NULL);
    (void)sink;
    qr_st_destroy(&f);
    S_CHECK(f == NULL);
    return 0;
}
