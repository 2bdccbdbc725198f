/* .wtns reader; layout in wtns.h */
#include "wtns.h"

#include <stdio.h>
#include <stdlib.h>

#include "zkey.h"

void qr_wtns_destroy(qr_wtns_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->values);
    free(*self_p);
    *self_p = NULL;
}

static qr_wtns_t *s_parse(const qr_binfile_t *bf, char *err, size_t errlen)
{
    static const uint64_t r[4] = QR_FR_MOD;
    qr_bincur_t cur;
    uint32_t n8, n;
    const uint8_t *prime;
    uint64_t at;
    if (qr_binfile_section(bf, 1, &cur, err, errlen) || qr_bincur_u32(&cur, &n8, "n8", err, errlen))
        return NULL;
    if (n8 != 32) {
        qr_bincur_fail(&cur, cur.start, err, errlen,
                       "%u-byte field elements, only BN254 (32) is supported", n8);
        return NULL;
    }
    at = cur.pos;
    if (qr_bincur_bytes(&cur, 32, &prime, "prime", err, errlen))
        return NULL;
    for (int i = 0; i < 4; i++) {
        uint64_t limb = 0;
        for (int j = 7; j >= 0; j--)
            limb = limb << 8 | prime[8 * i + j];
        if (limb != r[i]) {
            qr_bincur_fail(&cur, at, err, errlen,
                           "the prime is not BN254's scalar field: a witness for another curve");
            return NULL;
        }
    }
    if (qr_bincur_u32(&cur, &n, "nWitness", err, errlen) || qr_bincur_expect_end(&cur, err, errlen))
        return NULL;
    if (n == 0) {
        qr_bincur_fail(&cur, cur.pos - 4, err, errlen, "nWitness is 0");
        return NULL;
    }

    if (qr_binfile_section(bf, 2, &cur, err, errlen))
        return NULL;
    if (cur.end - cur.start != (uint64_t)n * 32) {
        qr_bincur_fail(&cur, cur.start, err, errlen, "%llu bytes, expected %llu for nWitness = %u",
                       (unsigned long long)(cur.end - cur.start), (unsigned long long)n * 32, n);
        return NULL;
    }
    qr_wtns_t *w = calloc(1, sizeof *w);
    if (w)
        w->values = malloc((size_t)n * sizeof(qr_fr_t));
    if (!w || !w->values) {
        qr_wtns_destroy(&w);
        snprintf(err, errlen, "%s: out of memory for %u witness values", bf->path, n);
        return NULL;
    }
    w->n = n;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *v;
        at = cur.pos;
        if (qr_bincur_bytes(&cur, 32, &v, "witness value", err, errlen))
            goto fail;
        if (qr_fr_from_le32(&w->values[i], v)) {
            qr_bincur_fail(&cur, at, err, errlen, "witness value %u is not below r", i);
            goto fail;
        }
    }
    /* signal 0 is the constant 1 of every circom circuit and of the Groth16
     * setup; anything else is a damaged or foreign file */
    if (!qr_fr_is_one(&w->values[0])) {
        qr_bincur_fail(&cur, cur.start, err, errlen, "witness value 0 is not the constant 1");
        goto fail;
    }
    return w;
fail:
    qr_wtns_destroy(&w);
    return NULL;
}

qr_wtns_t *qr_wtns_load_mem(const char *name, const void *data, size_t size, char *err,
                            size_t errlen)
{
    qr_binfile_t bf;
    if (qr_binfile_open_mem(&bf, name, data, size, "wtns", 2, err, errlen))
        return NULL;
    return s_parse(&bf, err, errlen);
}

qr_wtns_t *qr_wtns_load(const char *path, char *err, size_t errlen)
{
    qr_binfile_t bf;
    if (qr_binfile_open(&bf, path, "wtns", 2, err, errlen))
        return NULL;
    qr_wtns_t *w = s_parse(&bf, err, errlen);
    qr_binfile_close(&bf);
    return w;
}
