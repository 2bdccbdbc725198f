/* Deterministic random numbers for the zk unit tests: splitmix64 over a
 * seed each test file keeps, and uniform elements of Fr from it (rejection
 * sampling below r), so a failure reproduces from the file's seed. */
#ifndef QR_TEST_ZK_RAND_H
#define QR_TEST_ZK_RAND_H

#include <stdint.h>

#include "bn254_field.h"

static inline uint64_t zk_rand64(uint64_t *seed)
{
    uint64_t z = (*seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void zk_rand_fr(qr_fr_t *a, uint64_t *seed)
{
    const uint64_t r[4] = QR_FR_MOD;
    uint64_t v[4];
    for (;;) {
        for (int i = 0; i < 4; i++)
            v[i] = zk_rand64(seed);
        v[3] &= 0x3fffffffffffffffull;
        if (v[3] < r[3])
            break;
    }
    qr_fr_from_canonical(a, v);
}

#endif
