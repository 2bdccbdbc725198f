/* snarkjs's binary files: the iden3 "binfile" container that .zkey, .wtns,
 * .r1cs and .ptau share, and the Groth16 proving key (.zkey) on top of it.
 *
 * Container (iden3 binfileutils): a 4-byte magic ("zkey", "wtns", "r1cs"),
 * u32 version, u32 number of sections, then the sections one after the
 * other, each u32 type, u64 size, size bytes.  All integers little-endian.
 * A type may in principle repeat; the readers here want every section they
 * use exactly once, as snarkjs's startReadUniqueSection does.
 *
 * Every read goes through a cursor that knows its section's bounds, so a
 * truncated or corrupt file ends in an error that names the file, the
 * section, the file offset and what was being read, never in a read past
 * the end.  The whole file is mapped read-only (a .zkey can be gigabytes;
 * the page cache holds it once) and unmapped before the loaders return. */
#ifndef QR_ZK_ZKEY_H
#define QR_ZK_ZKEY_H

#include "groth16.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- binfile container ---- */

#define QR_BINFILE_MAX_SECTIONS 64

typedef struct {
    uint32_t type;
    uint64_t off;  /* file offset of the first data byte */
    uint64_t size; /* data bytes */
} qr_binfile_section_t;

typedef struct {
    const char *path; /* for messages; not owned */
    const uint8_t *data;
    size_t size;
    bool mapped; /* data is our mapping, for qr_binfile_close */
    uint32_t version;
    uint32_t n_sections;
    qr_binfile_section_t sec[QR_BINFILE_MAX_SECTIONS];
} qr_binfile_t;

/* A read position inside one section */
typedef struct {
    const qr_binfile_t *bf;
    uint32_t type;
    uint64_t start, end; /* file offsets: [start, end) is the section */
    uint64_t pos;        /* file offset of the next read */
} qr_bincur_t;

/* Maps path, checks magic (4 chars), a version in [1, max_version] and the
 * section table (every section inside the file).  -1 with err filled on
 * failure, nothing left to close. */
int qr_binfile_open(qr_binfile_t *bf, const char *path, const char *magic, uint32_t max_version,
                    char *err, size_t errlen);
/* The same over a buffer the caller keeps alive (tests, in-memory keys) */
int qr_binfile_open_mem(qr_binfile_t *bf, const char *name, const void *data, size_t size,
                        const char *magic, uint32_t max_version, char *err, size_t errlen);
/* Unmaps (mapped files only); NULL-safe, idempotent */
void qr_binfile_close(qr_binfile_t *bf);
/* Cursor at the start of the one section of this type; -1 when it is
 * missing or repeated */
int qr_binfile_section(const qr_binfile_t *bf, uint32_t type, qr_bincur_t *cur, char *err,
                       size_t errlen);
/* Bounded reads; what names the field in the error message */
int qr_bincur_u32(qr_bincur_t *cur, uint32_t *v, const char *what, char *err, size_t errlen);
int qr_bincur_u64(qr_bincur_t *cur, uint64_t *v, const char *what, char *err, size_t errlen);
/* Points *p at n bytes of the section and advances */
int qr_bincur_bytes(qr_bincur_t *cur, size_t n, const uint8_t **p, const char *what, char *err,
                    size_t errlen);
/* -1 unless the cursor is exactly at the section's end (trailing bytes are
 * a sign of a count that does not match the data) */
int qr_bincur_expect_end(const qr_bincur_t *cur, char *err, size_t errlen);
/* Formats "PATH: section T at offset O: MSG" into err; returns -1 */
int qr_bincur_fail(const qr_bincur_t *cur, uint64_t off, char *err, size_t errlen, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));

/* ---- .zkey (Groth16) ----
 *
 * Sections: 1 protocol (u32, 1 = Groth16), 2 Groth16 header (n8q, q, n8r,
 * r, nVars, nPublic, domainSize, alpha1, beta1, beta2, gamma2, delta1,
 * delta2), 3 IC, 4 coefs, 5 A, 6 B1, 7 B2, 8 C (nVars - nPublic - 1
 * points, for the private signals), 9 H (domainSize points), 10 the
 * contributions (not read).  Points are Montgomery little-endian, (0, 0) for
 * infinity.
 *
 * Coefficients ("Montgomery and scaled"): zkey_new.js reads the r1cs
 * value n into ffjavascript's Montgomery form (n R), multiplies it by
 * Fr.e(R^2) (stored as R^3) in Montgomery arithmetic, giving the form of
 * n R^2, and writes that with toRprLE, which leaves Montgomery form: the 32
 * bytes are the integer n R^2 mod r.  The snarkjs prover multiplies them
 * raw with the raw standard-form witness, (n R^2)(w)/R = n w R, which is
 * ffjavascript's Montgomery form of n w, so the witness needs no
 * conversion there (and joinABC leaves Montgomery form before the H MSM).
 * We want our element n, whose Montgomery limbs are n R: the bytes read as
 * Montgomery limbs are the element n R, and its canonical integer, n R,
 * is those limbs. */

/* Checks every point of the B2 query for G2 membership as well.  Without
 * it every point is canonical and on its curve (for G1, cofactor 1, that
 * is membership) and the header's G2 points, which become the verification
 * key, are in G2; the B2 query is then only known to be on the twist.  A
 * wrong B2 point cannot make a false proof verify (the verifier checks
 * pi_b itself), it can only make our proofs fail, and the check costs
 * ~0.06 ms a point (a minute for a million-signal key), so it is opt-in. */
#define QR_ZKEY_CHECK_SUBGROUPS 1u

/* Loads a Groth16 .zkey; NULL with err ("PATH: section S at offset O: ...")
 * on any error.  Free with qr_g16_pk_destroy. */
qr_g16_pk_t *qr_zkey_load(const char *path, unsigned flags, char *err, size_t errlen);
qr_g16_pk_t *qr_zkey_load_mem(const char *name, const void *data, size_t size, unsigned flags,
                              char *err, size_t errlen);
void qr_g16_pk_destroy(qr_g16_pk_t **self_p);

/* The verification key of a .zkey without loading the proving key: the
 * header and IC sections are read and checked as qr_zkey_load checks them,
 * the other sections only for their sizes (their points are not read: a
 * bad point there shows when the key is loaded to prove).  With hdr, its
 * sizes (n_vars, n_public, domain_size, log_domain) and header points are
 * filled in; its arrays stay NULL (do not pass it to qr_g16_pk_destroy).
 * NULL with err as qr_zkey_load.  Free with qr_g16_vk_destroy. */
qr_g16_vk_t *qr_zkey_load_vk(const char *path, qr_g16_pk_t *hdr, char *err, size_t errlen);
qr_g16_vk_t *qr_zkey_load_vk_mem(const char *name, const void *data, size_t size, qr_g16_pk_t *hdr,
                                 char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
