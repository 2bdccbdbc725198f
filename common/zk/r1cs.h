/* circom constraint systems (.r1cs): a binfile ("r1cs", version 1) with
 *
 *   1 header: n8 (u32), prime (n8 bytes LE), nVars, nOutputs, nPubInputs,
 *     nPrvInputs (u32 each), nLabels (u64), nConstraints (u32);
 *   2 constraints: for each, the linear combinations A, B, C, each a u32
 *     count then (u32 signal, n8-byte coefficient, canonical LE) pairs,
 *     for A w * B w = C w;
 *   3 wire-to-label map: nVars u64 label ids;
 *   4, 5 custom gates (PLONK only; reported, not read).
 *
 * Signals are numbered 1 (the constant), outputs, public inputs, private
 * inputs, the rest; the public signals of a proof are outputs then public
 * inputs.  The Groth16 prover does not need this file (the .zkey carries
 * A and B); it is read to report a circuit's size and to check a witness
 * against its constraints. */
#ifndef QR_ZK_R1CS_H
#define QR_ZK_R1CS_H

#include "groth16.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t signal;
    qr_fr_t value; /* our Montgomery form */
} qr_r1cs_term_t;

typedef struct {
    uint32_t n_vars, n_outputs, n_pub_inputs, n_prv_inputs, n_constraints;
    uint64_t n_labels;
    bool custom_gates;       /* sections 4 and 5 present (PLONK circuits) */
    uint64_t *wire_to_label; /* n_vars */
    qr_r1cs_term_t *terms;   /* all linear combinations, back to back */
    size_t n_terms;
    /* linear combination k = 3 constraint + (0 A, 1 B, 2 C) is
     * terms[lc[k] .. lc[k + 1]); 3 n_constraints + 1 entries */
    size_t *lc;
} qr_r1cs_t;

/* Loads and validates (BN254 scalar field, signals below nVars,
 * coefficients below r, sizes exact); NULL with err naming file, section
 * and offset.  Free with qr_r1cs_destroy. */
qr_r1cs_t *qr_r1cs_load(const char *path, char *err, size_t errlen);
qr_r1cs_t *qr_r1cs_load_mem(const char *name, const void *data, size_t size, char *err,
                            size_t errlen);
void qr_r1cs_destroy(qr_r1cs_t **self_p);

/* Public signals of a proof: outputs plus public inputs */
uint32_t qr_r1cs_n_public(const qr_r1cs_t *cs);
/* Whether w (n_w == n_vars values) satisfies every constraint; on false,
 * *bad (when not NULL) is the first failing constraint, or n_constraints
 * for a length mismatch. */
bool qr_r1cs_satisfied(const qr_r1cs_t *cs, const qr_fr_t *w, uint32_t n_w, uint32_t *bad);

#ifdef __cplusplus
}
#endif

#endif
