/* Speed of the BN254 arithmetic under common/zk/: the figures docs/zk.md
 * quotes.  Prints one key=value per line.
 *
 *   zk_arith [THREADS]     THREADS for the NTT and MSM rows (default 2)
 *
 * The first line names the field multiplication in use (mulx-adx or
 * portable; QUARRY_ZK_FMUL=portable in the environment forces the latter,
 * for before/after figures from one binary).  fp_mul_ns is the latency of
 * one multiplication (a chain x = x y), fp_mul_tput_ns the cost when four
 * independent chains run side by side, as in the MSM's batched additions.
 *
 * Each figure is the best of five runs, so a busy shared machine inflates it
 * less; the chained loops (x = x * y) keep the compiler from hoisting work. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bn254_pairing.h"
#include "msm.h"
#include "ntt.h"

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define BEST_OF(var, body)                                                                         \
    do {                                                                                           \
        var = 1e30;                                                                                \
        for (int rep_ = 0; rep_ < 5; rep_++) {                                                     \
            double t0_ = s_now();                                                                  \
            body;                                                                                  \
            double dt_ = s_now() - t0_;                                                            \
            if (dt_ < var)                                                                         \
                var = dt_;                                                                         \
        }                                                                                          \
    } while (0)

static void s_ntt(unsigned log_n, unsigned threads)
{
    size_t n = (size_t)1 << log_n;
    qr_ntt_t *d = qr_ntt_new(log_n, threads);
    qr_fr_t *a = malloc(n * sizeof *a);
    if (!d || !a) {
        fprintf(stderr, "zk_arith: out of memory at 2^%u\n", log_n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        qr_fr_from_u64(&a[i], i * 2654435761u + 1);
    double t;
    BEST_OF(t, qr_ntt_forward(d, a));
    printf("ntt_2^%u_threads%u_ms=%.2f\n", log_n, threads, t * 1e3);
    if (log_n == 20) {
        qr_fr_t g;
        qr_fr_generator(&g);
        BEST_OF(t, qr_ntt_coset_forward(d, a, &g));
        printf("ntt_coset_2^%u_threads%u_ms=%.2f\n", log_n, threads, t * 1e3);
    }
    free(a);
    qr_ntt_destroy(&d);
}

/* G1 MSM of 2^log_n random 254-bit scalars over points k_i G */
static void s_msm(unsigned log_n, unsigned threads)
{
    size_t n = (size_t)1 << log_n;
    qr_fr_t *k = malloc(n * sizeof *k);
    qr_msm_scalar_t *ks = malloc(n * sizeof *ks);
    qr_g1_affine_t *p = malloc(n * sizeof *p), g;
    if (!k || !ks || !p) {
        fprintf(stderr, "zk_arith: out of memory at 2^%u\n", log_n);
        exit(1);
    }
    uint64_t z = 0x5eed;
    for (int pass = 0; pass < 2; pass++) { /* bases from one set, scalars from another */
        for (size_t i = 0; i < n; i++) {
            uint64_t v[4];
            for (int j = 0; j < 4; j++) {
                uint64_t x = (z += 0x9e3779b97f4a7c15ull);
                x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
                x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
                v[j] = x ^ (x >> 31);
            }
            v[3] &= 0x1fffffffffffffffull;
            qr_fr_from_canonical(&k[i], v);
        }
        if (pass == 0) {
            qr_g1_generator(&g);
            if (qr_g1_mul_fixed_batch(p, &g, k, n, threads))
                exit(1);
        }
    }
    qr_msm_scalars_from_fr(ks, k, n, threads);
    qr_g1_t out;
    double best = 1e30;
    for (int rep = 0; rep < (log_n < 20 ? 3 : 2); rep++) {
        double t0 = s_now();
        if (qr_g1_msm(&out, p, ks, n, threads))
            exit(1);
        double dt = s_now() - t0;
        best = dt < best ? dt : best;
    }
    printf("msm_g1_2^%u_threads%u_ms=%.1f\n", log_n, threads, best * 1e3);
    free(k);
    free(ks);
    free(p);
}

int main(int argc, char **argv)
{
    unsigned threads = argc > 1 ? (unsigned)atoi(argv[1]) : 2;
    const int N = 2000000;
    double t;

    qr_fp_t x, y;
    qr_fp_from_u64(&x, 12345);
    qr_fp_from_u64(&y, 67890);
    printf("fmul=%s\n", qr_zk_fmul_name());
    BEST_OF(t, for (int i = 0; i < N; i++) qr_fp_mul(&x, &x, &y));
    printf("fp_mul_ns=%.1f\n", t / N * 1e9);
    qr_fp_t x4[4];
    for (int j = 0; j < 4; j++)
        qr_fp_from_u64(&x4[j], 1000u + (unsigned)j);
    BEST_OF(t, for (int i = 0; i < N / 4; i++) {
        qr_fp_mul(&x4[0], &x4[0], &y);
        qr_fp_mul(&x4[1], &x4[1], &y);
        qr_fp_mul(&x4[2], &x4[2], &y);
        qr_fp_mul(&x4[3], &x4[3], &y);
    });
    printf("fp_mul_tput_ns=%.1f\n", t / N * 1e9);
    qr_fp_add(&x, &x, &x4[0]);
    qr_fp_add(&x, &x, &x4[3]);
    BEST_OF(t, for (int i = 0; i < N; i++) qr_fp_sqr(&x, &x));
    printf("fp_sqr_ns=%.1f\n", t / N * 1e9);
    BEST_OF(t, for (int i = 0; i < N; i++) qr_fp_add(&x, &x, &y));
    printf("fp_add_ns=%.1f\n", t / N * 1e9);
    qr_fr_t u, v;
    qr_fr_from_u64(&u, 3);
    qr_fr_from_u64(&v, 7);
    BEST_OF(t, for (int i = 0; i < N; i++) qr_fr_mul(&u, &u, &v));
    printf("fr_mul_ns=%.1f\n", t / N * 1e9);
    BEST_OF(t, for (int i = 0; i < 2000; i++) qr_fp_inv(&x, &x));
    printf("fp_inv_us=%.2f\n", t / 2000 * 1e6);
    qr_fp2_t a2, b2;
    a2.c0 = x;
    a2.c1 = y;
    b2 = a2;
    BEST_OF(t, for (int i = 0; i < N / 4; i++) qr_fp2_mul(&a2, &a2, &b2));
    printf("fp2_mul_ns=%.1f\n", t / (N / 4) * 1e9);
    if (qr_fp2_is_zero(&a2) && qr_fp_is_zero(&x) && qr_fr_is_zero(&u))
        printf("#\n"); /* keeps the results alive */

    /* G1: a running sum of a point, so every add is a generic one */
    qr_g1_affine_t g1a;
    qr_g2_affine_t g2a;
    qr_g1_generator(&g1a);
    qr_g2_generator(&g2a);
    qr_g1_t g1, acc1;
    qr_g2_t g2, acc2;
    qr_g1_from_affine(&g1, &g1a);
    qr_g2_from_affine(&g2, &g2a);
    const uint64_t k[4] = {0x1234567890abcdefull, 0x0fedcba987654321ull, 0x1111111122222222ull,
                           0x0123456789abcdefull};
    qr_g1_mul(&g1, &g1, k); /* a Z != 1 point */
    qr_g1_dbl(&acc1, &g1);
    const int M = 200000;
    BEST_OF(t, for (int i = 0; i < M; i++) qr_g1_add(&acc1, &acc1, &g1));
    printf("g1_add_ns=%.1f\n", t / M * 1e9);
    BEST_OF(t, for (int i = 0; i < M; i++) qr_g1_add_mixed(&acc1, &acc1, &g1a));
    printf("g1_add_mixed_ns=%.1f\n", t / M * 1e9);
    BEST_OF(t, for (int i = 0; i < M; i++) qr_g1_dbl(&acc1, &acc1));
    printf("g1_dbl_ns=%.1f\n", t / M * 1e9);
    qr_g2_mul(&g2, &g2, k);
    qr_g2_dbl(&acc2, &g2);
    BEST_OF(t, for (int i = 0; i < M / 4; i++) qr_g2_add(&acc2, &acc2, &g2));
    printf("g2_add_ns=%.1f\n", t / (M / 4) * 1e9);
    BEST_OF(t, for (int i = 0; i < 200; i++) qr_g1_mul(&acc1, &acc1, k));
    printf("g1_mul_us=%.1f\n", t / 200 * 1e6);
    BEST_OF(t, for (int i = 0; i < 50; i++) qr_g2_mul(&acc2, &acc2, k));
    printf("g2_mul_us=%.1f\n", t / 50 * 1e6);
    BEST_OF(t, for (int i = 0; i < 50; i++)(void) qr_g2_in_subgroup(&g2a));
    printf("g2_subgroup_check_us=%.1f\n", t / 50 * 1e6);
    if (qr_g1_is_inf(&acc1) || qr_g2_is_inf(&acc2))
        printf("#\n");

    qr_fp12_t f, e;
    BEST_OF(t, for (int i = 0; i < 20; i++) qr_bn254_miller_loop(&f, &g1a, &g2a, 1));
    printf("miller_loop_ms=%.3f\n", t / 20 * 1e3);
    BEST_OF(t, for (int i = 0; i < 20; i++) qr_bn254_final_exp(&e, &f));
    printf("final_exp_ms=%.3f\n", t / 20 * 1e3);
    BEST_OF(t, for (int i = 0; i < 20; i++) qr_bn254_pairing(&e, &g1a, &g2a));
    printf("pairing_ms=%.3f\n", t / 20 * 1e3);
    /* the Groth16 verifier's check: four pairs */
    qr_g1_affine_t P[4] = {g1a, g1a, g1a, g1a};
    qr_g2_affine_t Q[4] = {g2a, g2a, g2a, g2a};
    bool ok = false;
    BEST_OF(t, for (int i = 0; i < 20; i++) ok ^= qr_bn254_pairing_check(P, Q, 4));
    printf("pairing_check_4_ms=%.3f%s\n", t / 20 * 1e3, ok ? "" : " ");

    s_ntt(16, 1);
    s_ntt(20, 1);
    if (threads > 1) {
        s_ntt(16, threads);
        s_ntt(20, threads);
    }
    s_msm(16, 1);
    s_msm(16, threads);
    s_msm(20, threads);
    return 0;
}
