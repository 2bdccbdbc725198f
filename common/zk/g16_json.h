/* snarkjs's Groth16 JSON files, read and written byte for byte as snarkjs
 * writes them:
 *
 *   proof.json    {"pi_a": [x, y, "1"], "pi_b": [[x.c0, x.c1], [y.c0, y.c1],
 *                  ["1", "0"]], "pi_c": [x, y, "1"], "protocol": "groth16",
 *                  "curve": "bn128"}
 *   public.json   ["out", ..., "in", ...]  (outputs, then public inputs)
 *   verification_key.json  {"protocol", "curve", "nPublic", "vk_alpha_1",
 *                  "vk_beta_2", "vk_gamma_2", "vk_delta_2",
 *                  "vk_alphabeta_12", "IC"}  (`snarkjs zkey export
 *                  verificationkey`)
 *
 * Numbers are decimal strings of canonical values; points are projective
 * triples normalised to z = 1, infinity written [0, 1, 0] (G2: [["0", "0"],
 * ["1", "0"], ["0", "0"]]), as ffjavascript's toObject does.  Layout is
 * that of snarkjs's CLI (bfj with space 1, the same as
 * JSON.stringify(obj, null, 1)): one value per line, one space of indent
 * per level, no newline at the end.
 *
 * The readers (jansson) take any JSON whitespace and key order, accept
 * points with z = 1, or z = 0 for infinity, and refuse everything else
 * with a message: a value >= the modulus, a point off its curve or (pi_b,
 * vk G2 points) outside G2, a wrong protocol or curve, missing keys, a
 * vk_alphabeta_12 that is not e(vk_alpha_1, vk_beta_2). */
#ifndef QR_ZK_G16_JSON_H
#define QR_ZK_G16_JSON_H

#include "groth16.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writers: a malloc'd NUL-terminated string, NULL when out of memory */
char *qr_g16_proof_to_json(const qr_g16_proof_t *p);
char *qr_g16_public_to_json(const qr_fr_t *pub, uint32_t n);
/* computes vk_alphabeta_12 = e(alpha1, beta2) (~0.6 ms) */
char *qr_g16_vk_to_json(const qr_g16_vk_t *vk);

/* Readers of JSON text; name is for messages (a file name).  0, or with
 * err filled -1 when the text is not the expected JSON (syntax, shape,
 * missing key, not a decimal string) and QR_G16_JSON_EINVALID when it is
 * but a value is not a field element or a point of its group (>= the
 * modulus, off the curve, outside G2): snarkjs calls such a proof invalid
 * rather than malformed, and quarry-verify exits 1 for it, not 2. */
#define QR_G16_JSON_EINVALID (-2)
int qr_g16_proof_from_json(qr_g16_proof_t *p, const char *text, const char *name, char *err,
                           size_t errlen);
/* *pub is malloc'd (free()), *n its length */
int qr_g16_public_from_json(qr_fr_t **pub, uint32_t *n, const char *text, const char *name,
                            char *err, size_t errlen);
qr_g16_vk_t *qr_g16_vk_from_json(const char *text, const char *name, char *err, size_t errlen);

/* The same over files */
int qr_g16_proof_load(qr_g16_proof_t *p, const char *path, char *err, size_t errlen);
int qr_g16_public_load(qr_fr_t **pub, uint32_t *n, const char *path, char *err, size_t errlen);
qr_g16_vk_t *qr_g16_vk_load(const char *path, char *err, size_t errlen);
/* Writes text to path through a temporary file and rename, so a reader
 * never sees half a file */
int qr_g16_write_text(const char *path, const char *text, char *err, size_t errlen);
/* Reads a whole (text) file, malloc'd and NUL-terminated; NULL with err */
char *qr_g16_read_text(const char *path, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
