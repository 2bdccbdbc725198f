/* common/zk: the NTT over Fr against a naive DFT, round trips, cosets, the
 * threaded path, and the roots snarkjs uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ntt.h"
#include "zk_rand.h"

static uint64_t s_seed = 0xabcdef0011223344ull;

static void s_rand_fr(qr_fr_t *a)
{
    zk_rand_fr(a, &s_seed);
}

/* sum_j a_j x^j */
static void s_eval(qr_fr_t *out, const qr_fr_t *a, size_t n, const qr_fr_t *x)
{
    qr_fr_t acc;
    qr_fr_zero(&acc);
    for (size_t j = n; j-- > 0;) {
        qr_fr_mul(&acc, &acc, x);
        qr_fr_add(&acc, &acc, &a[j]);
    }
    *out = acc;
}

static void test_roots(void **state)
{
    (void)state;
    char buf[QR_ZK_DEC_MAX];
    qr_fr_t w, t, one, m1;
    qr_fr_one(&one);
    qr_fr_neg(&m1, &one);
    /* ffjavascript's 2^28-th root of unity: 5^((r-1)/2^28) */
    qr_fr_root_of_unity(&w, 28);
    assert_string_equal(
        qr_fr_to_dec(buf, &w),
        "19103219067921713944291392827692070036145651957329286315305642004821462161904");
    qr_fr_t g, five;
    qr_fr_generator(&g);
    qr_fr_from_u64(&five, 5);
    assert_true(qr_fr_eq(&g, &five));
    for (unsigned k = 1; k <= 28; k++) {
        /* w_k^(2^(k-1)) = -1: primitive */
        qr_fr_root_of_unity(&w, k);
        t = w;
        for (unsigned i = 1; i < k; i++)
            qr_fr_sqr(&t, &t);
        assert_true(qr_fr_eq(&t, &m1));
    }
    qr_fr_root_of_unity(&w, 0);
    assert_true(qr_fr_is_one(&w));
    assert_null(qr_ntt_new(29, 1));
}

static void test_vs_dft(void **state)
{
    (void)state;
    for (unsigned k = 0; k <= 7; k++) {
        size_t n = (size_t)1 << k;
        qr_ntt_t *d = qr_ntt_new(k, 1);
        assert_non_null(d);
        assert_int_equal(qr_ntt_size(d), n);
        qr_fr_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        for (size_t i = 0; i < n; i++)
            s_rand_fr(&a[i]);
        memcpy(b, a, n * sizeof *a);
        qr_ntt_forward(d, b);
        qr_fr_t w, x, y;
        qr_fr_root_of_unity(&w, k);
        qr_fr_one(&x);
        for (size_t i = 0; i < n; i++) {
            s_eval(&y, a, n, &x);
            assert_true(qr_fr_eq(&y, &b[i]));
            qr_fr_mul(&x, &x, &w);
        }
        qr_ntt_inverse(d, b);
        assert_memory_equal(a, b, n * sizeof *a);
        /* cosets: shift 5 and snarkjs's w_{k+1} */
        qr_fr_t shifts[2];
        qr_fr_generator(&shifts[0]);
        qr_fr_root_of_unity(&shifts[1], k + 1);
        for (int s = 0; s < 2; s++) {
            memcpy(b, a, n * sizeof *a);
            qr_ntt_coset_forward(d, b, &shifts[s]);
            x = shifts[s];
            for (size_t i = 0; i < n; i++) {
                s_eval(&y, a, n, &x);
                assert_true(qr_fr_eq(&y, &b[i]));
                qr_fr_mul(&x, &x, &w);
            }
            qr_ntt_coset_inverse(d, b, &shifts[s]);
            assert_memory_equal(a, b, n * sizeof *a);
        }
        free(a);
        free(b);
        qr_ntt_destroy(&d);
        assert_null(d);
    }
    qr_ntt_destroy(NULL);
}

/* a polynomial product through evaluations: (x + 1)(x - 1) = x^2 - 1 */
static void test_product(void **state)
{
    (void)state;
    qr_ntt_t *d = qr_ntt_new(2, 1);
    qr_fr_t a[4], b[4], one, m1;
    qr_fr_one(&one);
    qr_fr_neg(&m1, &one);
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    a[0] = one;
    a[1] = one;
    b[0] = m1;
    b[1] = one;
    qr_ntt_forward(d, a);
    qr_ntt_forward(d, b);
    for (int i = 0; i < 4; i++)
        qr_fr_mul(&a[i], &a[i], &b[i]);
    qr_ntt_inverse(d, a);
    assert_true(qr_fr_eq(&a[0], &m1));
    assert_true(qr_fr_is_zero(&a[1]));
    assert_true(qr_fr_is_one(&a[2]));
    assert_true(qr_fr_is_zero(&a[3]));
    qr_ntt_destroy(&d);
}

/* big enough for the threaded path; must equal the single-threaded one */
static void test_threads(void **state)
{
    (void)state;
    const unsigned k = 16;
    size_t n = (size_t)1 << k;
    qr_ntt_t *d1 = qr_ntt_new(k, 1), *d3 = qr_ntt_new(k, 3);
    assert_non_null(d1);
    assert_non_null(d3);
    qr_fr_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    for (size_t i = 0; i < n; i++)
        s_rand_fr(&a[i]);
    memcpy(b, a, n * sizeof *a);
    memcpy(c, a, n * sizeof *a);
    qr_ntt_forward(d1, b);
    qr_ntt_forward(d3, c);
    assert_memory_equal(b, c, n * sizeof *b);
    /* spot-check a few outputs against direct evaluation */
    qr_fr_t w, x, y;
    qr_fr_root_of_unity(&w, k);
    const size_t idx[3] = {0, 1, n - 1};
    for (int i = 0; i < 3; i++) {
        uint64_t e[4] = {idx[i], 0, 0, 0};
        qr_fr_pow(&x, &w, e);
        s_eval(&y, a, n, &x);
        assert_true(qr_fr_eq(&y, &b[idx[i]]));
    }
    qr_fr_t g;
    qr_fr_generator(&g);
    qr_ntt_coset_inverse(d3, c, &g);
    qr_ntt_coset_forward(d3, c, &g);
    qr_ntt_inverse(d3, c);
    assert_memory_equal(a, c, n * sizeof *a);
    free(a);
    free(b);
    free(c);
    qr_ntt_destroy(&d1);
    qr_ntt_destroy(&d3);
}

/* The cache-blocked transform (blocks of 2^10 in L1, then column tiles of
 * the rest) against the plain radix-2 one written here (bit reversal, then
 * log2 n stages over the whole array; the inverse by reversing indices
 * 1..n-1 and scaling by 1/n), limb for limb: sizes around and above the
 * block (2^9 .. 2^15), forward, inverse and both cosets, 1 to 3 threads. */
static void s_ref_forward(qr_fr_t *a, unsigned k)
{
    size_t n = (size_t)1 << k;
    qr_ntt_bitreverse(a, k);
    qr_fr_t w;
    qr_fr_root_of_unity(&w, k);
    for (size_t m = 1; m < n; m <<= 1) {
        qr_fr_t wm = w, x; /* w^(n/2m): a primitive 2m-th root */
        for (size_t s = m; s < n / 2; s <<= 1)
            qr_fr_sqr(&wm, &wm);
        for (size_t k0 = 0; k0 < n; k0 += 2 * m) {
            qr_fr_one(&x);
            for (size_t j = 0; j < m; j++) {
                qr_fr_t u = a[k0 + j], t;
                qr_fr_mul(&t, &a[k0 + j + m], &x);
                qr_fr_add(&a[k0 + j], &u, &t);
                qr_fr_sub(&a[k0 + j + m], &u, &t);
                qr_fr_mul(&x, &x, &wm);
            }
        }
    }
}

static void s_ref_inverse(qr_fr_t *a, unsigned k)
{
    size_t n = (size_t)1 << k;
    s_ref_forward(a, k);
    for (size_t i = 1, j = n - 1; i < j; i++, j--) {
        qr_fr_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
    qr_fr_t ninv;
    qr_fr_from_u64(&ninv, (uint64_t)n);
    qr_fr_inv(&ninv, &ninv);
    for (size_t i = 0; i < n; i++)
        qr_fr_mul(&a[i], &a[i], &ninv);
}

static void s_ref_scale(qr_fr_t *a, size_t n, const qr_fr_t *s)
{
    qr_fr_t x;
    qr_fr_one(&x);
    for (size_t i = 0; i < n; i++) {
        qr_fr_mul(&a[i], &a[i], &x);
        qr_fr_mul(&x, &x, s);
    }
}

static void test_blocked(void **state)
{
    (void)state;
    for (unsigned k = 9; k <= 15; k++) {
        size_t n = (size_t)1 << k;
        qr_fr_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
        assert_true(a && b && c);
        for (size_t i = 0; i < n; i++)
            s_rand_fr(&a[i]);
        qr_ntt_t *d = qr_ntt_new(k, 1 + k % 3);
        assert_non_null(d);
        memcpy(b, a, n * sizeof *a);
        memcpy(c, a, n * sizeof *a);
        s_ref_forward(b, k);
        qr_ntt_forward(d, c);
        assert_memory_equal(b, c, n * sizeof *b);
        memcpy(b, a, n * sizeof *a);
        memcpy(c, a, n * sizeof *a);
        s_ref_inverse(b, k);
        qr_ntt_inverse(d, c);
        assert_memory_equal(b, c, n * sizeof *b);
        /* snarkjs's coset (w_{k+1}) after an inverse, as the prover runs it */
        qr_fr_t sh, g, gi;
        qr_fr_root_of_unity(&sh, k + 1);
        s_ref_scale(b, n, &sh);
        s_ref_forward(b, k);
        qr_ntt_coset_forward(d, c, &sh);
        assert_memory_equal(b, c, n * sizeof *b);
        /* and the generator's coset back */
        qr_fr_generator(&g);
        qr_fr_inv(&gi, &g);
        memcpy(b, a, n * sizeof *a);
        memcpy(c, a, n * sizeof *a);
        s_ref_inverse(b, k);
        s_ref_scale(b, n, &gi);
        qr_ntt_coset_inverse(d, c, &g);
        assert_memory_equal(b, c, n * sizeof *b);
        qr_ntt_destroy(&d);
        free(a);
        free(b);
        free(c);
    }
}

static void test_bitreverse(void **state)
{
    (void)state;
    qr_fr_t a[8], b[8];
    for (int i = 0; i < 8; i++)
        qr_fr_from_u64(&a[i], (uint64_t)i);
    memcpy(b, a, sizeof a);
    qr_ntt_bitreverse(b, 3);
    const int want[8] = {0, 4, 2, 6, 1, 5, 3, 7};
    for (int i = 0; i < 8; i++)
        assert_true(qr_fr_eq(&b[i], &a[want[i]]));
    qr_ntt_bitreverse(b, 3);
    assert_memory_equal(a, b, sizeof a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roots),      cmocka_unit_test(test_vs_dft),
        cmocka_unit_test(test_product),    cmocka_unit_test(test_threads),
        cmocka_unit_test(test_bitreverse), cmocka_unit_test(test_blocked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
