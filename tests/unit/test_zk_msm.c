/* common/zk: Pippenger MSM in G1 and G2 against the naive sum of scalar
 * multiplications, over the awkward inputs (zero scalars, r - 1, repeated
 * and opposite points, infinity), every window width including the batched
 * affine path on small n, and threads; batch fixed-base multiplication. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "msm.h"

static uint64_t s_seed = 0x5eed0f0123456789ull;

static uint64_t s_rand64(void)
{
    uint64_t z = (s_seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void s_rand_fr(qr_fr_t *a)
{
    const uint64_t r[4] = QR_FR_MOD;
    uint64_t v[4];
    for (;;) {
        for (int i = 0; i < 4; i++)
            v[i] = s_rand64();
        v[3] &= 0x3fffffffffffffffull;
        if (v[3] < r[3])
            break;
    }
    qr_fr_from_canonical(a, v);
}

/* The scalar mix the MSM must survive: mostly random, with zeros, ones,
 * r - 1, small values, and runs of one repeated value (which all land in
 * the same buckets and collide inside a batch). */
static void s_scalars(qr_fr_t *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t sel = s_rand64() % 16;
        if (sel == 0) {
            qr_fr_zero(&k[i]);
        } else if (sel == 1) {
            qr_fr_one(&k[i]);
        } else if (sel == 2) {
            qr_fr_t one;
            qr_fr_one(&one);
            qr_fr_neg(&k[i], &one); /* r - 1 */
        } else if (sel == 3) {
            qr_fr_from_u64(&k[i], s_rand64() % 70000);
        } else if (sel == 4 && i > 0) {
            k[i] = k[i - 1];
        } else {
            s_rand_fr(&k[i]);
        }
    }
}

/* Bases: random multiples of the generator, with infinity, repeats of an
 * earlier base and negations of one sprinkled in */
static void s_g1_bases(qr_g1_affine_t *p, size_t n)
{
    qr_g1_affine_t g;
    qr_g1_generator(&g);
    qr_fr_t *t = malloc((n ? n : 1) * sizeof *t);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++)
        s_rand_fr(&t[i]);
    assert_int_equal(qr_g1_mul_fixed_batch(p, &g, t, n, 2), 0);
    for (size_t i = 0; i < n; i++) {
        uint64_t sel = s_rand64() % 16;
        if (sel == 0) {
            memset(&p[i], 0, sizeof p[i]);
        } else if (sel == 1 && i > 0) {
            p[i] = p[s_rand64() % i];
        } else if (sel == 2 && i > 0) {
            p[i] = p[s_rand64() % i];
            qr_fp_neg(&p[i].y, &p[i].y);
            if (qr_fp_is_zero(&p[i].x))
                memset(&p[i], 0, sizeof p[i]);
        }
    }
    free(t);
}

static void s_g2_bases(qr_g2_affine_t *p, size_t n)
{
    qr_g2_affine_t g;
    qr_g2_generator(&g);
    qr_fr_t *t = malloc((n ? n : 1) * sizeof *t);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++)
        s_rand_fr(&t[i]);
    assert_int_equal(qr_g2_mul_fixed_batch(p, &g, t, n, 2), 0);
    for (size_t i = 0; i < n; i++) {
        uint64_t sel = s_rand64() % 16;
        if (sel == 0) {
            memset(&p[i], 0, sizeof p[i]);
        } else if (sel == 1 && i > 0) {
            p[i] = p[s_rand64() % i];
        } else if (sel == 2 && i > 0) {
            p[i] = p[s_rand64() % i];
            qr_fp2_neg(&p[i].y, &p[i].y);
            if (qr_fp2_is_zero(&p[i].x))
                memset(&p[i], 0, sizeof p[i]);
        }
    }
    free(t);
}

static void s_g1_naive(qr_g1_t *out, const qr_g1_affine_t *p, const qr_fr_t *k, size_t n)
{
    qr_g1_set_inf(out);
    for (size_t i = 0; i < n; i++) {
        qr_g1_t a, m;
        qr_g1_from_affine(&a, &p[i]);
        qr_g1_mul_fr(&m, &a, &k[i]);
        qr_g1_add(out, out, &m);
    }
}

static void s_g2_naive(qr_g2_t *out, const qr_g2_affine_t *p, const qr_fr_t *k, size_t n)
{
    qr_g2_set_inf(out);
    for (size_t i = 0; i < n; i++) {
        qr_g2_t a, m;
        qr_g2_from_affine(&a, &p[i]);
        qr_g2_mul_fr(&m, &a, &k[i]);
        qr_g2_add(out, out, &m);
    }
}

/* fixed-base batch against one scalar multiplication each, incl. 0, 1, r-1 */
static void test_fixed_batch(void **state)
{
    (void)state;
    const size_t ns[] = {1, 5, 300, 5000};
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        size_t n = ns[t];
        qr_fr_t *k = malloc(n * sizeof *k);
        qr_g1_affine_t *p1 = malloc(n * sizeof *p1), g1;
        qr_g2_affine_t *p2 = malloc(n * sizeof *p2), g2;
        assert_true(k && p1 && p2);
        s_scalars(k, n);
        qr_g1_generator(&g1);
        qr_g2_generator(&g2);
        assert_int_equal(qr_g1_mul_fixed_batch(p1, &g1, k, n, 2), 0);
        assert_int_equal(qr_g2_mul_fixed_batch(p2, &g2, k, n, 0), 0);
        size_t step = n > 300 ? 37 : 1; /* spot-check the large one */
        for (size_t i = 0; i < n; i += step) {
            qr_g1_t a, m;
            qr_g1_affine_t ma;
            qr_g1_from_affine(&a, &g1);
            qr_g1_mul_fr(&m, &a, &k[i]);
            qr_g1_to_affine(&ma, &m);
            assert_true(qr_g1_affine_eq(&ma, &p1[i]));
            assert_true(qr_g1_affine_on_curve(&p1[i]));
            if (i % 3 == 0) {
                qr_g2_t b, mb;
                qr_g2_affine_t mba;
                qr_g2_from_affine(&b, &g2);
                qr_g2_mul_fr(&mb, &b, &k[i]);
                qr_g2_to_affine(&mba, &mb);
                assert_true(qr_g2_affine_eq(&mba, &p2[i]));
            }
        }
        free(k);
        free(p1);
        free(p2);
    }
}

static void s_check_g1(size_t n, unsigned c, unsigned threads)
{
    qr_fr_t *k = malloc((n ? n : 1) * sizeof *k);
    qr_g1_affine_t *p = malloc((n ? n : 1) * sizeof *p);
    qr_msm_scalar_t *ks = malloc((n ? n : 1) * sizeof *ks);
    assert_true(k && p && ks);
    s_scalars(k, n);
    s_g1_bases(p, n);
    qr_msm_scalars_from_fr(ks, k, n, 1);
    qr_g1_t want, got;
    s_g1_naive(&want, p, k, n);
    assert_int_equal(qr_g1_msm_c(&got, p, ks, n, threads, c), 0);
    assert_true(qr_g1_eq(&want, &got));
    if (c == 0) {
        assert_int_equal(qr_g1_msm_fr(&got, p, k, n, threads), 0);
        assert_true(qr_g1_eq(&want, &got));
    }
    free(k);
    free(p);
    free(ks);
}

static void s_check_g2(size_t n, unsigned c, unsigned threads)
{
    qr_fr_t *k = malloc((n ? n : 1) * sizeof *k);
    qr_g2_affine_t *p = malloc((n ? n : 1) * sizeof *p);
    qr_msm_scalar_t *ks = malloc((n ? n : 1) * sizeof *ks);
    assert_true(k && p && ks);
    s_scalars(k, n);
    s_g2_bases(p, n);
    qr_msm_scalars_from_fr(ks, k, n, 1);
    qr_g2_t want, got;
    s_g2_naive(&want, p, k, n);
    assert_int_equal(qr_g2_msm_c(&got, p, ks, n, threads, c), 0);
    assert_true(qr_g2_eq(&want, &got));
    if (c == 0) {
        assert_int_equal(qr_g2_msm_fr(&got, p, k, n, threads), 0);
        assert_true(qr_g2_eq(&want, &got));
    }
    free(k);
    free(p);
    free(ks);
}

static void test_g1_sizes(void **state)
{
    (void)state;
    const size_t ns[] = {0, 1, 2, 3, 17, 1000, 4096};
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        s_check_g1(ns[t], 0, 1);
        s_check_g1(ns[t], 0, 2);
    }
}

static void test_g2_sizes(void **state)
{
    (void)state;
    const size_t ns[] = {0, 1, 2, 3, 17, 1000, 4096};
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++)
        s_check_g2(ns[t], 0, (unsigned)(t % 3));
}

/* every window width on one input: the Jacobian buckets below 11, the
 * batched affine ones from 11 on, with few points per bucket (so most
 * additions collide or meet an empty bucket) */
static void test_windows(void **state)
{
    (void)state;
    for (unsigned c = 2; c <= 16; c++)
        s_check_g1(700, c, c % 3);
    s_check_g2(300, 12, 2);
    s_check_g2(300, 16, 1);
    /* more threads than windows: the points are split too */
    s_check_g1(2000, 16, 40);
    qr_g1_t out;
    qr_msm_scalar_t k = {{1, 0, 0, 0}};
    qr_g1_affine_t g;
    qr_g1_generator(&g);
    assert_int_equal(qr_g1_msm_c(&out, &g, &k, 1, 1, 1), -1);
    assert_int_equal(qr_g1_msm_c(&out, &g, &k, 1, 1, 17), -1);
}

/* all points equal, all scalars equal: every addition hits one bucket, the
 * doubling and P + (-P) cases of the batched path */
static void test_degenerate(void **state)
{
    (void)state;
    size_t n = 3000;
    qr_g1_affine_t *p = malloc(n * sizeof *p), g;
    qr_msm_scalar_t *ks = malloc(n * sizeof *ks);
    qr_fr_t *k = malloc(n * sizeof *k);
    assert_true(p && ks && k);
    qr_g1_generator(&g);
    for (size_t i = 0; i < n; i++) {
        p[i] = g;
        if (i % 2)
            qr_fp_neg(&p[i].y, &p[i].y); /* alternate G, -G */
        qr_fr_from_u64(&k[i], 5);
    }
    qr_msm_scalars_from_fr(ks, k, n, 1);
    qr_g1_t got, want;
    for (unsigned c = 11; c <= 16; c += 5) {
        assert_int_equal(qr_g1_msm_c(&got, p, ks, n, 2, c), 0);
        assert_true(qr_g1_is_inf(&got)); /* 1500 (5G - 5G) */
    }
    for (size_t i = 0; i < n; i++)
        p[i] = g;
    s_g1_naive(&want, p, k, 7);
    qr_g1_t w7 = want;
    assert_int_equal(qr_g1_msm_c(&got, p, ks, 7, 1, 12), 0);
    assert_true(qr_g1_eq(&got, &w7));
    /* 3000 * 5 G */
    qr_g1_t a;
    qr_g1_from_affine(&a, &g);
    qr_msm_scalar_t m = {{15000, 0, 0, 0}};
    qr_g1_mul(&want, &a, m.l);
    assert_int_equal(qr_g1_msm_c(&got, p, ks, n, 2, 14), 0);
    assert_true(qr_g1_eq(&got, &want));
    free(p);
    free(ks);
    free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_batch),
        cmocka_unit_test(test_g1_sizes),
        cmocka_unit_test(test_g2_sizes),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
