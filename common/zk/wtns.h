/* snarkjs witness files (.wtns), as `snarkjs wtns calculate` and circom's
 * witness generators write them: a binfile ("wtns", version 2) with
 * section 1 = n8 (u32), the prime (n8 bytes LE), nWitness (u32), and
 * section 2 = nWitness values, n8 bytes each, little-endian, canonical
 * (not Montgomery).  The loader converts them to our Montgomery qr_fr_t. */
#ifndef QR_ZK_WTNS_H
#define QR_ZK_WTNS_H

#include "groth16.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t n;      /* nWitness: the circuit's nVars */
    qr_fr_t *values; /* n elements, values[0] = 1 */
} qr_wtns_t;

/* Loads a .wtns over BN254's scalar field; NULL with err naming file,
 * section and offset on any error: wrong magic or version, another prime,
 * a value not below r, a first value that is not the constant 1, sizes
 * that do not match. */
qr_wtns_t *qr_wtns_load(const char *path, char *err, size_t errlen);
qr_wtns_t *qr_wtns_load_mem(const char *name, const void *data, size_t size, char *err,
                            size_t errlen);
void qr_wtns_destroy(qr_wtns_t **self_p);

#ifdef __cplusplus
}
#endif

#endif
