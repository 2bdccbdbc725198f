/* Deterministic random numbers for the zk unit tests: splitmix64 over a
 * seed each test file keeps, and uniform elements of Fr from it (rejection
 * sampling below r), so a failure reproduces from the file's seed. */
#ifndef QR_TEST_ZK_RAND_H
#define QR_TEST_ZK_RAND_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bn254_curve.h"
#include "bn254_field.h"
#include "msm.h"

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

/* MSM bases: random multiples of the generator, with infinity, repeats of
 * an earlier base and negations of one sprinkled in (1 in 16 each).  0, or
 * -1 when memory ran out. */
#define ZK_RAND_BASES(name, pt, gen, mul_batch, neg, is_inf)                                       \
    static inline int name(pt *p, size_t n, uint64_t *seed)                                        \
    {                                                                                              \
        pt g;                                                                                      \
        gen(&g);                                                                                   \
        qr_fr_t *t = malloc((n ? n : 1) * sizeof *t);                                              \
        if (!t)                                                                                    \
            return -1;                                                                             \
        for (size_t i = 0; i < n; i++)                                                             \
            zk_rand_fr(&t[i], seed);                                                               \
        int rc = mul_batch(p, &g, t, n, 2);                                                        \
        free(t);                                                                                   \
        for (size_t i = 0; rc == 0 && i < n; i++) {                                                \
            uint64_t sel = zk_rand64(seed) % 16;                                                   \
            if (sel == 0) {                                                                        \
                memset(&p[i], 0, sizeof p[i]);                                                     \
            } else if (sel == 1 && i > 0) {                                                        \
                p[i] = p[zk_rand64(seed) % i];                                                     \
            } else if (sel == 2 && i > 0) {                                                        \
                p[i] = p[zk_rand64(seed) % i];                                                     \
                if (!is_inf(&p[i]))                                                                \
                    neg(&p[i].y, &p[i].y);                                                         \
            }                                                                                      \
        }                                                                                          \
        return rc;                                                                                 \
    }
ZK_RAND_BASES(zk_rand_g1_bases, qr_g1_affine_t, qr_g1_generator, qr_g1_mul_fixed_batch, qr_fp_neg,
              qr_g1_affine_is_inf)
ZK_RAND_BASES(zk_rand_g2_bases, qr_g2_affine_t, qr_g2_generator, qr_g2_mul_fixed_batch, qr_fp2_neg,
              qr_g2_affine_is_inf)
#undef ZK_RAND_BASES

#endif
