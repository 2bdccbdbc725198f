/* The iden3 binfile container and the snarkjs Groth16 .zkey reader; see
 * zkey.h for the layouts. */
#include "zkey.h"
#include "verify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- binfile ---- */

static int s_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static uint32_t s_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t s_le64(const uint8_t *p)
{
    return (uint64_t)s_le32(p) | (uint64_t)s_le32(p + 4) << 32;
}

int qr_binfile_open_mem(qr_binfile_t *bf, const char *name, const void *data, size_t size,
                        const char *magic, uint32_t max_version, char *err, size_t errlen)
{
    memset(bf, 0, sizeof *bf);
    bf->path = name;
    bf->data = data;
    bf->size = size;
    const uint8_t *d = data;
    if (size < 12)
        return s_fail(err, errlen, "%s: truncated: %zu bytes, not even a %s header", name, size,
                      magic);
    if (memcmp(d, magic, 4) != 0)
        return s_fail(err, errlen, "%s: not a %s file (magic at offset 0 is not \"%s\")", name,
                      magic, magic);
    bf->version = s_le32(d + 4);
    if (bf->version < 1 || bf->version > max_version)
        return s_fail(err, errlen, "%s: %s version %u at offset 4 not supported (1..%u)", name,
                      magic, bf->version, max_version);
    uint32_t n = s_le32(d + 8);
    if (n > QR_BINFILE_MAX_SECTIONS)
        return s_fail(err, errlen,
                      "%s: %u sections at offset 8, more than the %d this reader takes", name, n,
                      QR_BINFILE_MAX_SECTIONS);
    uint64_t pos = 12;
    for (uint32_t i = 0; i < n; i++) {
        if (size - pos < 12)
            return s_fail(err, errlen,
                          "%s: truncated: section header %u of %u at offset %llu past the end "
                          "(%zu bytes)",
                          name, i + 1, n, (unsigned long long)pos, size);
        qr_binfile_section_t *s = &bf->sec[i];
        s->type = s_le32(d + pos);
        s->size = s_le64(d + pos + 4);
        s->off = pos + 12;
        if (s->size > size - s->off)
            return s_fail(err, errlen,
                          "%s: truncated: section %u at offset %llu declares %llu bytes, only "
                          "%llu left",
                          name, s->type, (unsigned long long)s->off, (unsigned long long)s->size,
                          (unsigned long long)(size - s->off));
        pos = s->off + s->size;
    }
    /* snarkjs never leaves anything after the last section; bytes there
     * mean a section size that shrank or a file glued to another */
    if (pos != size)
        return s_fail(err, errlen, "%s: %llu unexpected bytes after the last section (offset %llu)",
                      name, (unsigned long long)(size - pos), (unsigned long long)pos);
    bf->n_sections = n;
    return 0;
}

int qr_binfile_open(qr_binfile_t *bf, const char *path, const char *magic, uint32_t max_version,
                    char *err, size_t errlen)
{
    memset(bf, 0, sizeof *bf);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return s_fail(err, errlen, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return s_fail(err, errlen, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return s_fail(err, errlen, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return s_fail(err, errlen, "%s: mmap: %s", path, strerror(e));
        }
    }
    close(fd);
    if (qr_binfile_open_mem(bf, path, map ? map : "", size, magic, max_version, err, errlen)) {
        if (map)
            munmap(map, size);
        memset(bf, 0, sizeof *bf);
        return -1;
    }
    /* close unmaps only what open mapped */
    bf->mapped = map != NULL;
    return 0;
}

void qr_binfile_close(qr_binfile_t *bf)
{
    if (!bf)
        return;
    if (bf->mapped)
        munmap((void *)bf->data, bf->size);
    memset(bf, 0, sizeof *bf);
}

int qr_binfile_section(const qr_binfile_t *bf, uint32_t type, qr_bincur_t *cur, char *err,
                       size_t errlen)
{
    const qr_binfile_section_t *found = NULL;
    for (uint32_t i = 0; i < bf->n_sections; i++) {
        if (bf->sec[i].type != type)
            continue;
        if (found)
            return s_fail(err, errlen, "%s: section %u repeated (offsets %llu and %llu)", bf->path,
                          type, (unsigned long long)found->off, (unsigned long long)bf->sec[i].off);
        found = &bf->sec[i];
    }
    if (!found)
        return s_fail(err, errlen, "%s: section %u missing", bf->path, type);
    cur->bf = bf;
    cur->type = type;
    cur->start = cur->pos = found->off;
    cur->end = found->off + found->size;
    return 0;
}

int qr_bincur_fail(const qr_bincur_t *cur, uint64_t off, char *err, size_t errlen, const char *fmt,
                   ...)
{
    if (err && errlen) {
        int n = snprintf(err, errlen, "%s: section %u at offset %llu: ", cur->bf->path, cur->type,
                         (unsigned long long)off);
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

int qr_bincur_bytes(qr_bincur_t *cur, size_t n, const uint8_t **p, const char *what, char *err,
                    size_t errlen)
{
    if (n > cur->end - cur->pos)
        return qr_bincur_fail(cur, cur->pos, err, errlen,
                              "truncated: %s needs %zu bytes, the section has %llu left", what, n,
                              (unsigned long long)(cur->end - cur->pos));
    *p = cur->bf->data + cur->pos;
    cur->pos += n;
    return 0;
}

int qr_bincur_u32(qr_bincur_t *cur, uint32_t *v, const char *what, char *err, size_t errlen)
{
    const uint8_t *p;
    if (qr_bincur_bytes(cur, 4, &p, what, err, errlen))
        return -1;
    *v = s_le32(p);
    return 0;
}

int qr_bincur_u64(qr_bincur_t *cur, uint64_t *v, const char *what, char *err, size_t errlen)
{
    const uint8_t *p;
    if (qr_bincur_bytes(cur, 8, &p, what, err, errlen))
        return -1;
    *v = s_le64(p);
    return 0;
}

int qr_bincur_expect_end(const qr_bincur_t *cur, char *err, size_t errlen)
{
    if (cur->pos != cur->end)
        return qr_bincur_fail(cur, cur->pos, err, errlen,
                              "%llu unexpected bytes after the last field",
                              (unsigned long long)(cur->end - cur->pos));
    return 0;
}

/* ---- .zkey ---- */

enum {
    ZKEY_HEADER = 1,
    ZKEY_GROTH16 = 2,
    ZKEY_IC = 3,
    ZKEY_COEFS = 4,
    ZKEY_A = 5,
    ZKEY_B1 = 6,
    ZKEY_B2 = 7,
    ZKEY_C = 8,
    ZKEY_H = 9
};
#define ZKEY_PROTOCOL_GROTH16 1
/* bytes of one coefficient entry: matrix, constraint, signal, value */
#define ZKEY_COEF_SIZE (12 + 32)

static const char *s_point_error(qr_zk_err_t e)
{
    switch (e) {
    case QR_ZK_ENONCANON:
        return "a coordinate is not below p";
    case QR_ZK_ENOTONCURVE:
        return "not on the curve";
    case QR_ZK_ENOTINGROUP:
        return "not in the order-r subgroup";
    default:
        return "invalid";
    }
}

/* One G1 point at the cursor */
static int s_read_g1(qr_bincur_t *cur, qr_g1_affine_t *out, const char *what, char *err,
                     size_t errlen)
{
    const uint8_t *p;
    uint64_t at = cur->pos;
    if (qr_bincur_bytes(cur, 64, &p, what, err, errlen))
        return -1;
    qr_zk_err_t e = qr_g1_from_zkey(out, p);
    if (e != QR_ZK_OK)
        return qr_bincur_fail(cur, at, err, errlen, "%s: %s", what, s_point_error(e));
    return 0;
}

/* One G2 point at the cursor; subgroup checked when full */
static int s_read_g2(qr_bincur_t *cur, qr_g2_affine_t *out, bool full, const char *what, char *err,
                     size_t errlen)
{
    const uint8_t *p;
    uint64_t at = cur->pos;
    if (qr_bincur_bytes(cur, 128, &p, what, err, errlen))
        return -1;
    qr_zk_err_t e;
    if (full) {
        e = qr_g2_from_zkey(out, p);
    } else {
        qr_g2_affine_t t;
        if (qr_fp_from_mont_le32(&t.x.c0, p) || qr_fp_from_mont_le32(&t.x.c1, p + 32) ||
            qr_fp_from_mont_le32(&t.y.c0, p + 64) || qr_fp_from_mont_le32(&t.y.c1, p + 96))
            e = QR_ZK_ENONCANON;
        else if (!qr_g2_affine_on_curve(&t))
            e = QR_ZK_ENOTONCURVE;
        else {
            e = QR_ZK_OK;
            *out = t;
        }
    }
    if (e != QR_ZK_OK)
        return qr_bincur_fail(cur, at, err, errlen, "%s: %s", what, s_point_error(e));
    return 0;
}

/* A section of exactly n G1 points */
static int s_read_g1_section(const qr_binfile_t *bf, uint32_t type, qr_g1_affine_t *out, uint64_t n,
                             const char *what, char *err, size_t errlen)
{
    qr_bincur_t cur;
    if (qr_binfile_section(bf, type, &cur, err, errlen))
        return -1;
    if (cur.end - cur.start != n * 64)
        return qr_bincur_fail(&cur, cur.start, err, errlen,
                              "%s: %llu bytes, expected %llu (%llu points)", what,
                              (unsigned long long)(cur.end - cur.start),
                              (unsigned long long)(n * 64), (unsigned long long)n);
    char name[64];
    for (uint64_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s[%llu]", what, (unsigned long long)i);
        if (s_read_g1(&cur, &out[i], name, err, errlen))
            return -1;
    }
    return 0;
}

/* Checks a prime field header entry: n8 (u32) then the prime, n8 bytes LE */
static int s_read_prime(qr_bincur_t *cur, const uint64_t want[4], const char *what, char *err,
                        size_t errlen)
{
    uint32_t n8;
    uint64_t at = cur->pos;
    if (qr_bincur_u32(cur, &n8, what, err, errlen))
        return -1;
    if (n8 != 32)
        return qr_bincur_fail(cur, at, err, errlen,
                              "%s: %u-byte field, only BN254 (32) is supported", what, n8);
    const uint8_t *p;
    at = cur->pos;
    if (qr_bincur_bytes(cur, 32, &p, what, err, errlen))
        return -1;
    for (int i = 0; i < 4; i++)
        if (s_le64(p + 8 * i) != want[i])
            return qr_bincur_fail(cur, at, err, errlen,
                                  "%s is not the BN254 (bn128) one: another curve", what);
    return 0;
}

/* Rounds up to a multiple of 64: every array starts on a cache line (and on
 * the alignment the MSM's vector loads like) */
static size_t s_align(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

void qr_g16_pk_destroy(qr_g16_pk_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->mem);
    free(*self_p);
    *self_p = NULL;
}

/* Sections 1 and 2: the protocol, the primes, the sizes and the header
 * points, into pk's scalar fields.  0, or -1 with err. */
static int s_zkey_header(const qr_binfile_t *bf, qr_g16_pk_t *pk, char *err, size_t errlen)
{
    static const uint64_t p[4] = QR_FP_MOD, r[4] = QR_FR_MOD;
    qr_bincur_t cur;
    uint32_t proto;
    if (qr_binfile_section(bf, ZKEY_HEADER, &cur, err, errlen) ||
        qr_bincur_u32(&cur, &proto, "protocol", err, errlen))
        return -1;
    if (proto != ZKEY_PROTOCOL_GROTH16)
        return qr_bincur_fail(&cur, cur.start, err, errlen, "protocol %u is not Groth16 (1)%s",
                              proto,
                              proto == 2    ? ": a PLONK key"
                              : proto == 10 ? ": an FFLONK key"
                                            : "");
    uint64_t at;
    if (qr_binfile_section(bf, ZKEY_GROTH16, &cur, err, errlen) ||
        s_read_prime(&cur, p, "base field prime q", err, errlen) ||
        s_read_prime(&cur, r, "scalar field prime r", err, errlen) ||
        qr_bincur_u32(&cur, &pk->n_vars, "nVars", err, errlen))
        return -1;
    at = cur.pos;
    if (qr_bincur_u32(&cur, &pk->n_public, "nPublic", err, errlen))
        return -1;
    if ((uint64_t)pk->n_public + 1 > pk->n_vars)
        return qr_bincur_fail(&cur, at, err, errlen,
                              "nPublic %u leaves no room for the constant 1 in %u signals",
                              pk->n_public, pk->n_vars);
    at = cur.pos;
    if (qr_bincur_u32(&cur, &pk->domain_size, "domainSize", err, errlen))
        return -1;
    if (pk->domain_size < 2 || (pk->domain_size & (pk->domain_size - 1)) ||
        pk->domain_size > (1u << 28))
        return qr_bincur_fail(
            &cur, at, err, errlen,
            "domainSize %u is not a power of two in [2, 2^28] (the 2-adicity of r)",
            pk->domain_size);
    while ((1u << pk->log_domain) < pk->domain_size)
        pk->log_domain++;
    /* the public signals and the 1 get a row each after the constraints */
    if ((uint64_t)pk->n_public + 1 > pk->domain_size)
        return qr_bincur_fail(&cur, at, err, errlen, "domainSize %u smaller than nPublic + 1",
                              pk->domain_size);
    if (s_read_g1(&cur, &pk->alpha1, "alpha1", err, errlen) ||
        s_read_g1(&cur, &pk->beta1, "beta1", err, errlen) ||
        s_read_g2(&cur, &pk->beta2, true, "beta2", err, errlen) ||
        s_read_g2(&cur, &pk->gamma2, true, "gamma2", err, errlen) ||
        s_read_g1(&cur, &pk->delta1, "delta1", err, errlen) ||
        s_read_g2(&cur, &pk->delta2, true, "delta2", err, errlen) ||
        qr_bincur_expect_end(&cur, err, errlen))
        return -1;
    return 0;
}

/* Every point section holds exactly the points pk's sizes call for, so a
 * corrupt count can neither ask for terabytes nor leave a key short.
 * 0, or -1 with err. */
static int s_zkey_check_sizes(const qr_binfile_t *bf, const qr_g16_pk_t *pk, char *err,
                              size_t errlen)
{
    static const struct {
        uint32_t type;
        unsigned point;
    } need[] = {{ZKEY_IC, 64},  {ZKEY_A, 64}, {ZKEY_B1, 64},
                {ZKEY_B2, 128}, {ZKEY_C, 64}, {ZKEY_H, 64}};
    uint64_t nv = pk->n_vars, np = pk->n_public, nd = pk->domain_size;
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        uint64_t n = need[i].type == ZKEY_IC  ? np + 1
                     : need[i].type == ZKEY_C ? nv - np - 1
                     : need[i].type == ZKEY_H ? nd
                                              : nv;
        qr_bincur_t c;
        if (qr_binfile_section(bf, need[i].type, &c, err, errlen))
            return -1;
        if (c.end - c.start != n * need[i].point)
            return qr_bincur_fail(
                &c, c.start, err, errlen, "%llu bytes, expected %llu (%llu points of %u bytes)",
                (unsigned long long)(c.end - c.start), (unsigned long long)(n * need[i].point),
                (unsigned long long)n, need[i].point);
    }
    return 0;
}

static qr_g16_pk_t *s_zkey_parse(const qr_binfile_t *bf, unsigned flags, char *err, size_t errlen)
{
    qr_g16_pk_t *pk = calloc(1, sizeof *pk);
    if (!pk) {
        s_fail(err, errlen, "%s: out of memory", bf->path);
        return NULL;
    }
    uint64_t at;
    qr_bincur_t cur;
    if (s_zkey_header(bf, pk, err, errlen))
        goto fail;

    /* the coefficient count decides the size of the allocation */
    qr_bincur_t coefs;
    uint32_t n_coefs;
    if (qr_binfile_section(bf, ZKEY_COEFS, &coefs, err, errlen) ||
        qr_bincur_u32(&coefs, &n_coefs, "number of coefficients", err, errlen))
        goto fail;
    if ((uint64_t)n_coefs * ZKEY_COEF_SIZE != coefs.end - coefs.pos) {
        qr_bincur_fail(&coefs, coefs.start, err, errlen,
                       "%u coefficients need %llu bytes, the section has %llu", n_coefs,
                       (unsigned long long)n_coefs * ZKEY_COEF_SIZE,
                       (unsigned long long)(coefs.end - coefs.pos));
        goto fail;
    }

    size_t nv = pk->n_vars, np = pk->n_public, nd = pk->domain_size;
    size_t o_ic = 0;
    size_t o_coefs = o_ic + s_align((np + 1) * sizeof(qr_g1_affine_t));
    size_t o_a = o_coefs + s_align((size_t)n_coefs * sizeof(qr_g16_coef_t));
    size_t o_b1 = o_a + s_align(nv * sizeof(qr_g1_affine_t));
    size_t o_b2 = o_b1 + s_align(nv * sizeof(qr_g1_affine_t));
    size_t o_c = o_b2 + s_align(nv * sizeof(qr_g2_affine_t));
    size_t o_h = o_c + s_align(nv * sizeof(qr_g1_affine_t));
    size_t total = o_h + s_align(nd * sizeof(qr_g1_affine_t));
    if (s_zkey_check_sizes(bf, pk, err, errlen))
        goto fail;
    if (posix_memalign(&pk->mem, 64, total) != 0) {
        pk->mem = NULL;
        s_fail(err, errlen, "%s: out of memory (%zu bytes for the key)", bf->path, total);
        goto fail;
    }
    uint8_t *m = pk->mem;
    pk->ic = (qr_g1_affine_t *)(m + o_ic);
    pk->coefs = (qr_g16_coef_t *)(m + o_coefs);
    pk->n_coefs = n_coefs;
    pk->a = (qr_g1_affine_t *)(m + o_a);
    pk->b1 = (qr_g1_affine_t *)(m + o_b1);
    pk->b2 = (qr_g2_affine_t *)(m + o_b2);
    pk->c = (qr_g1_affine_t *)(m + o_c);
    pk->h = (qr_g1_affine_t *)(m + o_h);

    for (uint32_t i = 0; i < n_coefs; i++) {
        const uint8_t *e;
        at = coefs.pos;
        if (qr_bincur_bytes(&coefs, ZKEY_COEF_SIZE, &e, "coefficient", err, errlen))
            goto fail;
        qr_g16_coef_t *k = &pk->coefs[i];
        k->matrix = s_le32(e);
        k->constraint = s_le32(e + 4);
        k->signal = s_le32(e + 8);
        if (k->matrix > 1) {
            qr_bincur_fail(&coefs, at, err, errlen,
                           "coefficient %u: matrix %u is neither A (0) "
                           "nor B (1)",
                           i, k->matrix);
            goto fail;
        }
        if (k->constraint >= pk->domain_size) {
            qr_bincur_fail(&coefs, at, err, errlen,
                           "coefficient %u: constraint %u outside the domain (%u)", i,
                           k->constraint, pk->domain_size);
            goto fail;
        }
        if (k->signal >= pk->n_vars) {
            qr_bincur_fail(&coefs, at, err, errlen, "coefficient %u: signal %u of %u", i, k->signal,
                           pk->n_vars);
            goto fail;
        }
        /* the bytes are the integer n R^2 mod r (zkey.h); read as
         * Montgomery limbs that is the element n R, whose canonical
         * integer n R is in turn the Montgomery limbs of n */
        qr_fr_t t;
        if (qr_fr_from_mont_le32(&t, e + 12)) {
            qr_bincur_fail(&coefs, at + 12, err, errlen, "coefficient %u: value not below r", i);
            goto fail;
        }
        qr_fr_to_canonical(k->value.l, &t);
    }

    bool full = flags & QR_ZKEY_CHECK_SUBGROUPS;
    if (s_read_g1_section(bf, ZKEY_IC, pk->ic, np + 1, "IC", err, errlen) ||
        s_read_g1_section(bf, ZKEY_A, pk->a, nv, "A", err, errlen) ||
        s_read_g1_section(bf, ZKEY_B1, pk->b1, nv, "B1", err, errlen) ||
        s_read_g1_section(bf, ZKEY_C, pk->c + np + 1, nv - np - 1, "C", err, errlen) ||
        s_read_g1_section(bf, ZKEY_H, pk->h, nd, "H", err, errlen))
        goto fail;
    /* snarkjs keeps no C points for the public signals and the 1 */
    memset(pk->c, 0, (np + 1) * sizeof(qr_g1_affine_t));
    if (qr_binfile_section(bf, ZKEY_B2, &cur, err, errlen))
        goto fail;
    char name[48];
    for (size_t i = 0; i < nv; i++) {
        snprintf(name, sizeof name, "B2[%zu]", i);
        if (s_read_g2(&cur, &pk->b2[i], full, name, err, errlen))
            goto fail;
    }
    return pk;
fail:
    qr_g16_pk_destroy(&pk);
    return NULL;
}

qr_g16_pk_t *qr_zkey_load_mem(const char *name, const void *data, size_t size, unsigned flags,
                              char *err, size_t errlen)
{
    qr_binfile_t bf;
    if (qr_binfile_open_mem(&bf, name, data, size, "zkey", 1, err, errlen))
        return NULL;
    return s_zkey_parse(&bf, flags, err, errlen);
}

qr_g16_pk_t *qr_zkey_load(const char *path, unsigned flags, char *err, size_t errlen)
{
    qr_binfile_t bf;
    if (qr_binfile_open(&bf, path, "zkey", 1, err, errlen))
        return NULL;
    qr_g16_pk_t *pk = s_zkey_parse(&bf, flags, err, errlen);
    qr_binfile_close(&bf);
    return pk;
}

/* The verification key alone: sections 1-3, and the sizes of the rest
 * checked against the header without reading them (the mapping pages in
 * only what is read, so a gigabyte key costs a few pages). */
static qr_g16_vk_t *s_zkey_vk(const qr_binfile_t *bf, qr_g16_pk_t *hdr, char *err, size_t errlen)
{
    if (s_zkey_header(bf, hdr, err, errlen) || s_zkey_check_sizes(bf, hdr, err, errlen))
        return NULL;
    qr_g16_vk_t *vk = qr_g16_vk_new(hdr->n_public);
    if (!vk) {
        s_fail(err, errlen, "%s: out of memory", bf->path);
        return NULL;
    }
    vk->alpha1 = hdr->alpha1;
    vk->beta2 = hdr->beta2;
    vk->gamma2 = hdr->gamma2;
    vk->delta2 = hdr->delta2;
    if (s_read_g1_section(bf, ZKEY_IC, vk->ic, (uint64_t)hdr->n_public + 1, "IC", err, errlen))
        qr_g16_vk_destroy(&vk);
    return vk;
}

qr_g16_vk_t *qr_zkey_load_vk(const char *path, qr_g16_pk_t *hdr, char *err, size_t errlen)
{
    qr_g16_pk_t local;
    memset(&local, 0, sizeof local);
    qr_binfile_t bf;
    if (qr_binfile_open(&bf, path, "zkey", 1, err, errlen))
        return NULL;
    qr_g16_vk_t *vk = s_zkey_vk(&bf, &local, err, errlen);
    qr_binfile_close(&bf);
    if (vk && hdr)
        *hdr = local;
    return vk;
}

qr_g16_vk_t *qr_zkey_load_vk_mem(const char *name, const void *data, size_t size, qr_g16_pk_t *hdr,
                                 char *err, size_t errlen)
{
    qr_g16_pk_t local;
    memset(&local, 0, sizeof local);
    qr_binfile_t bf;
    if (qr_binfile_open_mem(&bf, name, data, size, "zkey", 1, err, errlen))
        return NULL;
    qr_g16_vk_t *vk = s_zkey_vk(&bf, &local, err, errlen);
    if (vk && hdr)
        *hdr = local;
    return vk;
}
