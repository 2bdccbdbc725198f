/* .r1cs reader; layout in r1cs.h */
#include "r1cs.h"

#include <stdio.h>
#include <stdlib.h>

#include "zkey.h"

void qr_r1cs_destroy(qr_r1cs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_r1cs_t *cs = *self_p;
    free(cs->wire_to_label);
    free(cs->terms);
    free(cs->lc);
    free(cs);
    *self_p = NULL;
}

uint32_t qr_r1cs_n_public(const qr_r1cs_t *cs)
{
    return cs->n_outputs + cs->n_pub_inputs;
}

/* One pass over the constraints section: counts the terms (fill false) or
 * stores them (fill true).  The first pass does every bounds and range
 * check, so the second cannot fail. */
static int s_constraints(const qr_binfile_t *bf, qr_r1cs_t *cs, bool fill, size_t *n_terms,
                         char *err, size_t errlen)
{
    static const char *const name[3] = {"A", "B", "C"};
    qr_bincur_t cur;
    if (qr_binfile_section(bf, 2, &cur, err, errlen))
        return -1;
    size_t t = 0;
    char what[64];
    for (uint32_t c = 0; c < cs->n_constraints; c++) {
        for (int m = 0; m < 3; m++) {
            uint32_t n;
            snprintf(what, sizeof what, "constraint %u %s term count", c, name[m]);
            if (qr_bincur_u32(&cur, &n, what, err, errlen))
                return -1;
            if (fill)
                cs->lc[3 * (size_t)c + m] = t;
            /* the section bounds the count before anything is allocated */
            if ((uint64_t)n * 36 > cur.end - cur.pos)
                return qr_bincur_fail(&cur, cur.pos - 4, err, errlen,
                                      "truncated: constraint %u %s has %u terms, only %llu bytes "
                                      "left",
                                      c, name[m], n, (unsigned long long)(cur.end - cur.pos));
            for (uint32_t i = 0; i < n; i++, t++) {
                const uint8_t *p;
                uint64_t at = cur.pos;
                if (qr_bincur_bytes(&cur, 36, &p, "term", err, errlen))
                    return -1;
                uint32_t s = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24;
                qr_fr_t v;
                if (s >= cs->n_vars)
                    return qr_bincur_fail(&cur, at, err, errlen,
                                          "constraint %u %s: signal %u of %u", c, name[m], s,
                                          cs->n_vars);
                if (qr_fr_from_le32(&v, p + 4))
                    return qr_bincur_fail(&cur, at + 4, err, errlen,
                                          "constraint %u %s: coefficient not below r", c, name[m]);
                if (fill) {
                    cs->terms[t].signal = s;
                    cs->terms[t].value = v;
                }
            }
        }
    }
    if (fill)
        cs->lc[3 * (size_t)cs->n_constraints] = t;
    *n_terms = t;
    return qr_bincur_expect_end(&cur, err, errlen);
}

static qr_r1cs_t *s_parse(const qr_binfile_t *bf, char *err, size_t errlen)
{
    static const uint64_t r[4] = QR_FR_MOD;
    qr_bincur_t cur;
    uint32_t n8;
    const uint8_t *prime;
    if (qr_binfile_section(bf, 1, &cur, err, errlen) || qr_bincur_u32(&cur, &n8, "n8", err, errlen))
        return NULL;
    if (n8 != 32) {
        qr_bincur_fail(&cur, cur.start, err, errlen,
                       "%u-byte field elements, only BN254 (32) is supported", n8);
        return NULL;
    }
    uint64_t at = cur.pos;
    if (qr_bincur_bytes(&cur, 32, &prime, "prime", err, errlen))
        return NULL;
    for (int i = 0; i < 4; i++) {
        uint64_t limb = 0;
        for (int j = 7; j >= 0; j--)
            limb = limb << 8 | prime[8 * i + j];
        if (limb != r[i]) {
            qr_bincur_fail(&cur, at, err, errlen,
                           "the prime is not BN254's scalar field: a circuit for another curve");
            return NULL;
        }
    }
    qr_r1cs_t *cs = calloc(1, sizeof *cs);
    if (!cs) {
        snprintf(err, errlen, "%s: out of memory", bf->path);
        return NULL;
    }
    size_t n_terms = 0;
    at = cur.pos;
    if (qr_bincur_u32(&cur, &cs->n_vars, "nVars", err, errlen) ||
        qr_bincur_u32(&cur, &cs->n_outputs, "nOutputs", err, errlen) ||
        qr_bincur_u32(&cur, &cs->n_pub_inputs, "nPubInputs", err, errlen) ||
        qr_bincur_u32(&cur, &cs->n_prv_inputs, "nPrvInputs", err, errlen) ||
        qr_bincur_u64(&cur, &cs->n_labels, "nLabels", err, errlen) ||
        qr_bincur_u32(&cur, &cs->n_constraints, "nConstraints", err, errlen) ||
        qr_bincur_expect_end(&cur, err, errlen))
        goto fail;
    if ((uint64_t)cs->n_outputs + cs->n_pub_inputs + cs->n_prv_inputs + 1 > cs->n_vars) {
        qr_bincur_fail(&cur, at, err, errlen,
                       "%u outputs, %u public and %u private inputs do not fit in %u signals",
                       cs->n_outputs, cs->n_pub_inputs, cs->n_prv_inputs, cs->n_vars);
        goto fail;
    }
    for (uint32_t i = 0; i < bf->n_sections; i++)
        if (bf->sec[i].type == 4 || bf->sec[i].type == 5)
            cs->custom_gates = true;

    if (s_constraints(bf, cs, false, &n_terms, err, errlen))
        goto fail;
    cs->n_terms = n_terms;
    cs->terms = malloc((n_terms ? n_terms : 1) * sizeof *cs->terms);
    cs->lc = malloc((3 * (size_t)cs->n_constraints + 1) * sizeof *cs->lc);
    cs->wire_to_label = malloc((cs->n_vars ? cs->n_vars : 1) * sizeof *cs->wire_to_label);
    if (!cs->terms || !cs->lc || !cs->wire_to_label) {
        snprintf(err, errlen, "%s: out of memory for %zu terms", bf->path, n_terms);
        goto fail;
    }
    if (s_constraints(bf, cs, true, &n_terms, err, errlen))
        goto fail;

    if (qr_binfile_section(bf, 3, &cur, err, errlen))
        goto fail;
    if (cur.end - cur.start != (uint64_t)cs->n_vars * 8) {
        qr_bincur_fail(&cur, cur.start, err, errlen, "%llu bytes, expected %llu for %u signals",
                       (unsigned long long)(cur.end - cur.start),
                       (unsigned long long)cs->n_vars * 8, cs->n_vars);
        goto fail;
    }
    for (uint32_t i = 0; i < cs->n_vars; i++) {
        at = cur.pos;
        if (qr_bincur_u64(&cur, &cs->wire_to_label[i], "label id", err, errlen))
            goto fail;
        if (cs->wire_to_label[i] >= cs->n_labels) {
            qr_bincur_fail(&cur, at, err, errlen, "signal %u: label %llu of %llu", i,
                           (unsigned long long)cs->wire_to_label[i],
                           (unsigned long long)cs->n_labels);
            goto fail;
        }
    }
    return cs;
fail:
    qr_r1cs_destroy(&cs);
    return NULL;
}

qr_r1cs_t *qr_r1cs_load_mem(const char *name, const void *data, size_t size, char *err,
                            size_t errlen)
{
    qr_binfile_t bf;
    if (qr_binfile_open_mem(&bf, name, data, size, "r1cs", 1, err, errlen))
        return NULL;
    return s_parse(&bf, err, errlen);
}

qr_r1cs_t *qr_r1cs_load(const char *path, char *err, size_t errlen)
{
    qr_binfile_t bf;
    if (qr_binfile_open(&bf, path, "r1cs", 1, err, errlen))
        return NULL;
    qr_r1cs_t *cs = s_parse(&bf, err, errlen);
    qr_binfile_close(&bf);
    return cs;
}

static void s_eval(qr_fr_t *out, const qr_r1cs_t *cs, size_t k, const qr_fr_t *w)
{
    qr_fr_zero(out);
    for (size_t i = cs->lc[k]; i < cs->lc[k + 1]; i++) {
        qr_fr_t t;
        qr_fr_mul(&t, &cs->terms[i].value, &w[cs->terms[i].signal]);
        qr_fr_add(out, out, &t);
    }
}

bool qr_r1cs_satisfied(const qr_r1cs_t *cs, const qr_fr_t *w, uint32_t n_w, uint32_t *bad)
{
    if (n_w != cs->n_vars) {
        if (bad)
            *bad = cs->n_constraints;
        return false;
    }
    for (uint32_t c = 0; c < cs->n_constraints; c++) {
        qr_fr_t a, b, cc;
        s_eval(&a, cs, 3 * (size_t)c, w);
        s_eval(&b, cs, 3 * (size_t)c + 1, w);
        s_eval(&cc, cs, 3 * (size_t)c + 2, w);
        qr_fr_mul(&a, &a, &b);
        if (!qr_fr_eq(&a, &cc)) {
            if (bad)
                *bad = c;
            return false;
        }
    }
    return true;
}
