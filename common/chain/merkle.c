/* Sorted-pair keccak Merkle trees; see merkle.h. */
#include "merkle.h"
#include "keccak.h"

#include <stdlib.h>
#include <string.h>

struct qr_merkle {
    size_t nlevels;
    size_t *count; /* nodes per level, level 0 the leaves */
    uint8_t (**level)[32];
};

void qr_settlement_leaf(const qr_settlement_t *rec, uint8_t out[32])
{
    /* abi.encode of four static values is four words; written here directly
     * so hashing a leaf cannot fail on an allocation */
    uint8_t enc[4 * 32] = {0};
    for (int i = 0; i < 8; i++)
        enc[31 - i] = (uint8_t)(rec->job_id >> (8 * i));
    memcpy(enc + 32 + 12, rec->client, QR_ADDR_LEN);
    memcpy(enc + 64 + 12, rec->operator_, QR_ADDR_LEN);
    memcpy(enc + 96, rec->amount.b, 32);
    uint8_t inner[32];
    qr_keccak256(enc, sizeof enc, inner);
    qr_keccak256(inner, sizeof inner, out);
}

void qr_merkle_hash_pair(const uint8_t a[32], const uint8_t b[32], uint8_t out[32])
{
    uint8_t buf[64];
    int a_first = memcmp(a, b, 32) <= 0;
    memcpy(buf, a_first ? a : b, 32);
    memcpy(buf + 32, a_first ? b : a, 32);
    qr_keccak256(buf, sizeof buf, out);
}

qr_merkle_t *qr_merkle_new(const uint8_t (*leaves)[32], size_t n)
{
    if (n == 0)
        return NULL;
    qr_merkle_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    size_t nlevels = 1;
    for (size_t m = n; m > 1; m = (m + 1) / 2)
        nlevels++;
    self->count = calloc(nlevels, sizeof *self->count);
    self->level = calloc(nlevels, sizeof *self->level);
    if (!self->count || !self->level)
        goto fail;
    self->nlevels = nlevels;
    self->count[0] = n;
    if (!(self->level[0] = malloc(n * 32)))
        goto fail;
    memcpy(self->level[0], leaves, n * 32);
    for (size_t l = 1; l < nlevels; l++) {
        size_t below = self->count[l - 1], m = (below + 1) / 2;
        self->count[l] = m;
        if (!(self->level[l] = malloc(m * 32)))
            goto fail;
        for (size_t i = 0; i < m; i++) {
            if (2 * i + 1 < below)
                qr_merkle_hash_pair(self->level[l - 1][2 * i], self->level[l - 1][2 * i + 1],
                                    self->level[l][i]);
            else /* the odd one out moves up as it is */
                memcpy(self->level[l][i], self->level[l - 1][2 * i], 32);
        }
    }
    return self;
fail:
    qr_merkle_destroy(&self);
    return NULL;
}

void qr_merkle_destroy(qr_merkle_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_merkle_t *self = *self_p;
    for (size_t l = 0; self->level && l < self->nlevels; l++)
        free(self->level[l]);
    free(self->level);
    free(self->count);
    free(self);
    *self_p = NULL;
}

void qr_merkle_root(const qr_merkle_t *self, uint8_t out[32])
{
    memcpy(out, self->level[self->nlevels - 1][0], 32);
}

size_t qr_merkle_leaf_count(const qr_merkle_t *self)
{
    return self->count[0];
}

int qr_merkle_proof(const qr_merkle_t *self, size_t index, uint8_t (*proof)[32])
{
    if (index >= self->count[0])
        return -1;
    int n = 0;
    for (size_t l = 0; l + 1 < self->nlevels; l++, index /= 2) {
        size_t sib = index ^ 1;
        if (sib < self->count[l])
            memcpy(proof[n++], self->level[l][sib], 32);
    }
    return n;
}

int qr_merkle_verify(const uint8_t leaf[32], const uint8_t (*proof)[32], size_t n,
                     const uint8_t root[32])
{
    uint8_t h[32];
    memcpy(h, leaf, 32);
    for (size_t i = 0; i < n; i++)
        qr_merkle_hash_pair(h, proof[i], h);
    return memcmp(h, root, 32) == 0;
}
