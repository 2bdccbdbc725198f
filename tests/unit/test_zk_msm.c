/* common/zk: Pippenger MSM in G1 and G2 against the naive sum of scalar
 * multiplications, over the awkward inputs (zero scalars, r - 1, repeated
 * and opposite points, infinity), every window width including the batched
 * affine path on small n, and threads; the shared digit decomposition and
 * its sub-ranges; a 0/1 witness that overflows the batch's retry list;
 * negative digits meeting P and -P; batch fixed-base multiplication. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "msm.h"
#include "zk_rand.h"

static uint64_t s_seed = 0x5eed0f0123456789ull;

static uint64_t s_rand64(void)
{
    return zk_rand64(&s_seed);
}

static void s_rand_fr(qr_fr_t *a)
{
    zk_rand_fr(a, &s_seed);
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
    assert_int_equal(zk_rand_g1_bases(p, n, &s_seed), 0);
}

static void s_g2_bases(qr_g2_affine_t *p, size_t n)
{
    assert_int_equal(zk_rand_g2_bases(p, n, &s_seed), 0);
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

/* The shared digit decomposition (qr_msm_digits_*): its error paths, then
 * G1 and G2 MSMs from one decomposition, over the whole range and over
 * sub-ranges (with the bases outside the range made invalid, so reading
 * one would show), for the default and forced window widths and thread
 * counts; and a decomposition split over threads (n >= 2^14) against one
 * made on one thread. */
static void test_digits(void **state)
{
    (void)state;
    qr_msm_scalar_t k4[4] = {{{1, 0, 0, 0}}, {{2, 0, 0, 0}}, {{3, 0, 0, 0}}, {{4, 0, 0, 0}}};
    assert_null(qr_msm_digits_new(k4, 4, 1, 1));
    assert_null(qr_msm_digits_new(k4, 4, 17, 1));
    assert_null(qr_msm_digits_new(NULL, 4, 12, 1));
    qr_msm_digits_t *d = qr_msm_digits_new(NULL, 0, 12, 1);
    assert_non_null(d);
    assert_int_equal(qr_msm_digits_size(d), 0);
    assert_int_equal(qr_msm_digits_window(d), 12);
    qr_g1_t o1;
    qr_g2_t o2;
    qr_g1_affine_t g1;
    qr_g2_affine_t g2;
    qr_g1_generator(&g1);
    qr_g2_generator(&g2);
    assert_int_equal(qr_g1_msm_digits(&o1, &g1, d, 0, 0, 1), 0);
    assert_true(qr_g1_is_inf(&o1));
    assert_int_equal(qr_g1_msm_digits(&o1, &g1, d, 0, 1, 1), -1);
    qr_msm_digits_destroy(&d);
    assert_null(d);
    qr_msm_digits_destroy(&d);
    qr_msm_digits_destroy(NULL);
    d = qr_msm_digits_new(k4, 4, 0, 2);
    assert_non_null(d);
    assert_int_equal(qr_msm_digits_window(d), qr_msm_window(4, 0, 2));
    assert_int_equal(qr_g1_msm_digits(&o1, &g1, d, 2, 1, 1), -1); /* lo > hi */
    assert_int_equal(qr_g1_msm_digits(&o1, &g1, d, 0, 5, 1), -1); /* hi > n */
    assert_int_equal(qr_g2_msm_digits(&o2, &g2, d, 0, 5, 1), -1);
    assert_int_equal(qr_g1_msm_digits(&o1, &g1, NULL, 0, 0, 1), -1);
    assert_int_equal(qr_g2_msm_digits(&o2, &g2, NULL, 0, 0, 1), -1);
    assert_int_equal(qr_g2_msm_digits(&o2, &g2, d, 3, 3, 1), 0);
    assert_true(qr_g2_is_inf(&o2));
    qr_msm_digits_destroy(&d);

    size_t n = 1200;
    qr_fr_t *k = malloc(n * sizeof *k);
    qr_msm_scalar_t *ks = malloc(n * sizeof *ks);
    qr_g1_affine_t *p = malloc(n * sizeof *p);
    qr_g2_affine_t *q = malloc(n * sizeof *q);
    assert_true(k && ks && p && q);
    s_scalars(k, n);
    s_g1_bases(p, n);
    s_g2_bases(q, 400);
    qr_msm_scalars_from_fr(ks, k, n, 2);
    const size_t lo1 = 5, lo2 = 3, hi2 = 400;
    qr_g1_t w1, w1r, got1;
    qr_g2_t w2r, got2;
    s_g1_naive(&w1, p, k, n);
    s_g1_naive(&w1r, p + lo1, k + lo1, n - lo1);
    s_g2_naive(&w2r, q + lo2, k + lo2, hi2 - lo2);
    const unsigned cs[] = {0, 2, 5, 10, 11, 13, 16};
    for (size_t t = 0; t < sizeof cs / sizeof cs[0]; t++) {
        unsigned th = 1 + (unsigned)(t % 3);
        d = qr_msm_digits_new(ks, n, cs[t], th);
        assert_non_null(d);
        assert_int_equal(qr_msm_digits_size(d), n);
        assert_int_equal(qr_g1_msm_digits(&got1, p, d, 0, n, th), 0);
        assert_true(qr_g1_eq(&got1, &w1));
        /* [lo1, n) with the bases below lo1 off the curve */
        qr_g1_affine_t keep[5];
        memcpy(keep, p, sizeof keep);
        for (size_t i = 0; i < lo1; i++)
            qr_fp_from_u64(&p[i].x, 7), qr_fp_from_u64(&p[i].y, 7);
        assert_int_equal(qr_g1_msm_digits(&got1, p, d, lo1, n, th), 0);
        assert_true(qr_g1_eq(&got1, &w1r));
        memcpy(p, keep, sizeof keep);
        if (cs[t] == 0 || cs[t] >= 11) { /* G2 from the same digits */
            assert_int_equal(qr_g2_msm_digits(&got2, q, d, lo2, hi2, th), 0);
            assert_true(qr_g2_eq(&got2, &w2r));
        }
        qr_msm_digits_destroy(&d);
    }
    free(k);
    free(ks);
    free(p);
    free(q);

    /* threaded decomposition: the same sums as on one thread */
    n = (size_t)1 << 15;
    ks = malloc(n * sizeof *ks);
    p = malloc(n * sizeof *p);
    k = malloc(n * sizeof *k);
    assert_true(ks && p && k);
    for (size_t i = 0; i < n; i++)
        s_rand_fr(&k[i]);
    s_g1_bases(p, n);
    qr_msm_scalars_from_fr(ks, k, n, 3);
    qr_msm_digits_t *d1 = qr_msm_digits_new(ks, n, 13, 1), *d3 = qr_msm_digits_new(ks, n, 13, 3);
    assert_true(d1 && d3);
    qr_g1_t a1, a3;
    assert_int_equal(qr_g1_msm_digits(&a1, p, d1, 0, n, 1), 0);
    assert_int_equal(qr_g1_msm_digits(&a3, p, d3, 0, n, 2), 0);
    assert_true(qr_g1_eq(&a1, &a3));
    assert_int_equal(qr_g1_msm_c(&a3, p, ks, n, 3, 9), 0); /* Jacobian buckets */
    assert_true(qr_g1_eq(&a1, &a3));
    qr_msm_digits_destroy(&d1);
    qr_msm_digits_destroy(&d3);
    /* the conversion split over threads gives the same integers */
    qr_msm_scalar_t *k1 = malloc(n * sizeof *k1);
    assert_non_null(k1);
    qr_msm_scalars_from_fr(k1, k, n, 1);
    assert_memory_equal(k1, ks, n * sizeof *k1);
    free(k1);
    free(k);
    free(ks);
    free(p);
}

/* A circuit-like witness: most scalars 0 or 1, so window 0's bucket 0
 * takes thousands of points: the batch's retry list overflows into the
 * Jacobian twins, which the batched reduction folds back (c >= 11) */
static void test_retry(void **state)
{
    (void)state;
    size_t n = 6000;
    qr_fr_t *k = malloc(n * sizeof *k);
    qr_msm_scalar_t *ks = malloc(n * sizeof *ks);
    qr_g1_affine_t *p = malloc(n * sizeof *p);
    assert_true(k && ks && p);
    for (size_t i = 0; i < n; i++) {
        uint64_t sel = s_rand64() % 20;
        if (sel < 9)
            qr_fr_zero(&k[i]);
        else if (sel < 18)
            qr_fr_one(&k[i]);
        else
            s_rand_fr(&k[i]);
    }
    s_g1_bases(p, n);
    qr_msm_scalars_from_fr(ks, k, n, 1);
    qr_g1_t want, got;
    s_g1_naive(&want, p, k, n);
    for (unsigned c = 11; c <= 16; c++) {
        assert_int_equal(qr_g1_msm_c(&got, p, ks, n, 1 + c % 2, c), 0);
        assert_true(qr_g1_eq(&got, &want));
    }
    size_t n2 = 1500;
    qr_g2_affine_t *q = malloc(n2 * sizeof *q);
    assert_non_null(q);
    s_g2_bases(q, n2);
    qr_g2_t want2, got2;
    s_g2_naive(&want2, q, k, n2);
    for (unsigned c = 11; c <= 16; c += 5) {
        assert_int_equal(qr_g2_msm_c(&got2, q, ks, n2, 2, c), 0);
        assert_true(qr_g2_eq(&got2, &want2));
    }
    free(q);
    free(k);
    free(ks);
    free(p);
}

/* Negative digits: the base goes in as it is with the sign apart, so a
 * bucket holding P meets -P (cancels) and -P meets -P (doubles) on that
 * path.  k = 2^c - 1 gives digit -1 in window 0 (and a carry); the bases
 * repeat P, -P, Q. */
static void test_signs(void **state)
{
    (void)state;
    size_t n = 12;
    qr_g1_affine_t p[12], g1;
    qr_g2_affine_t q[12], g2;
    qr_fr_t k[12];
    qr_msm_scalar_t ks[12];
    qr_g1_generator(&g1);
    qr_g2_generator(&g2);
    qr_fr_t t[2];
    qr_fr_from_u64(&t[0], 12345);
    qr_fr_from_u64(&t[1], 777);
    qr_g1_affine_t pq[2];
    qr_g2_affine_t qq[2];
    assert_int_equal(qr_g1_mul_fixed_batch(pq, &g1, t, 2, 1), 0);
    assert_int_equal(qr_g2_mul_fixed_batch(qq, &g2, t, 2, 1), 0);
    for (unsigned c = 11; c <= 16; c++) {
        for (size_t i = 0; i < n; i++) {
            size_t sel = i % 4; /* P, -P, P, Q */
            p[i] = pq[sel == 3];
            q[i] = qq[sel == 3];
            if (sel == 1) {
                qr_fp_neg(&p[i].y, &p[i].y);
                qr_fp2_neg(&q[i].y, &q[i].y);
            }
            uint64_t v = (i % 3 == 2) ? ((uint64_t)1 << c) - 2 : ((uint64_t)1 << c) - 1;
            qr_fr_from_u64(&k[i], v);
        }
        qr_msm_scalars_from_fr(ks, k, n, 1);
        qr_g1_t want, got;
        qr_g2_t want2, got2;
        s_g1_naive(&want, p, k, n);
        s_g2_naive(&want2, q, k, n);
        assert_int_equal(qr_g1_msm_c(&got, p, ks, n, 1, c), 0);
        assert_true(qr_g1_eq(&got, &want));
        assert_int_equal(qr_g2_msm_c(&got2, q, ks, n, 1, c), 0);
        assert_true(qr_g2_eq(&got2, &want2));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_batch), cmocka_unit_test(test_g1_sizes),
        cmocka_unit_test(test_g2_sizes),    cmocka_unit_test(test_windows),
        cmocka_unit_test(test_degenerate),  cmocka_unit_test(test_digits),
        cmocka_unit_test(test_retry),       cmocka_unit_test(test_signs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
