/* The GPU MSM and NTT (common/zk/msm_gpu_impl.h, ntt_gpu_impl.h: the
 * per-thread bodies of common/cuda/qr_cuda_zk.cu) run by the grid emulator
 * (zk_gpu_emu.c) against the CPU's qr_g1_msm / qr_g2_msm / qr_ntt_*: the
 * same sums and the same limbs, on random inputs and the awkward ones (zero
 * scalars, r - 1, infinity bases, a point and its negation, every scalar
 * equal so one bucket holds everything, n = 0, 1 and not a power of two,
 * every window width), plus the digit recoding on its own.  This is the
 * GPU arithmetic's coverage on machines without a GPU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "msm.h"
#include "msm_gpu_impl.h"
#include "ntt.h"
#include "ntt_gpu_impl.h"
#include "zk_gpu_emu.h"
#include "zk_rand.h"

static uint64_t s_seed = 0x0dd5eed5a11c0de5ull;

static uint64_t s_rand64(void)
{
    return zk_rand64(&s_seed);
}

static void s_rand_fr(qr_fr_t *a)
{
    zk_rand_fr(a, &s_seed);
}

/* scalar mixes: 0 random with zeros, ones, r - 1, small values and runs;
 * 1 all zero; 2 all one; 3 all r - 1 */
static void s_scalars(qr_msm_scalar_t *k, size_t n, int mix)
{
    qr_fr_t one, mone, x;
    qr_fr_one(&one);
    qr_fr_neg(&mone, &one);
    for (size_t i = 0; i < n; i++) {
        uint64_t sel = mix ? 100 : s_rand64() % 16;
        if (mix == 1 || sel == 0)
            qr_fr_zero(&x);
        else if (mix == 2 || sel == 1)
            x = one;
        else if (mix == 3 || sel == 2)
            x = mone;
        else if (sel == 3)
            qr_fr_from_u64(&x, s_rand64() % 70000);
        else if (sel == 4 && i > 0) {
            k[i] = k[i - 1];
            continue;
        } else
            s_rand_fr(&x);
        qr_fr_to_canonical(k[i].l, &x);
    }
}

/* bases: random multiples of G with infinity, repeats and negations; mix 1:
 * all infinity; 2: G and -G alternating */
static void s_g1_bases(qr_g1_affine_t *p, size_t n, int mix)
{
    qr_g1_affine_t g;
    qr_g1_generator(&g);
    if (mix) {
        for (size_t i = 0; i < n; i++) {
            if (mix == 1)
                memset(&p[i], 0, sizeof p[i]);
            else {
                p[i] = g;
                if (i & 1)
                    qr_fp_neg(&p[i].y, &p[i].y);
            }
        }
        return;
    }
    assert_int_equal(zk_rand_g1_bases(p, n, &s_seed), 0);
}

static void s_g2_bases(qr_g2_affine_t *p, size_t n, int mix)
{
    qr_g2_affine_t g;
    qr_g2_generator(&g);
    if (mix) {
        for (size_t i = 0; i < n; i++) {
            if (mix == 1)
                memset(&p[i], 0, sizeof p[i]);
            else {
                p[i] = g;
                if (i & 1)
                    qr_fp2_neg(&p[i].y, &p[i].y);
            }
        }
        return;
    }
    assert_int_equal(zk_rand_g2_bases(p, n, &s_seed), 0);
}

static void s_g1_case(size_t n, int kmix, int pmix, unsigned c)
{
    qr_g1_affine_t *p = malloc((n ? n : 1) * sizeof *p);
    qr_msm_scalar_t *k = malloc((n ? n : 1) * sizeof *k);
    assert_true(p && k);
    s_g1_bases(p, n, pmix);
    s_scalars(k, n, kmix);
    qr_g1_t want, got;
    assert_int_equal(qr_g1_msm(&want, p, k, n, 2), 0);
    assert_int_equal(qr_zk_gpu_emu_g1_msm(&got, p, &k[0].l[0], n, c), 0);
    if (!qr_g1_eq(&want, &got))
        fail_msg("G1 MSM differs: n=%zu scalars=%d bases=%d c=%u", n, kmix, pmix, c);
    free(p);
    free(k);
}

static void s_g2_case(size_t n, int kmix, int pmix, unsigned c)
{
    qr_g2_affine_t *p = malloc((n ? n : 1) * sizeof *p);
    qr_msm_scalar_t *k = malloc((n ? n : 1) * sizeof *k);
    assert_true(p && k);
    s_g2_bases(p, n, pmix);
    s_scalars(k, n, kmix);
    qr_g2_t want, got;
    assert_int_equal(qr_g2_msm(&want, p, k, n, 2), 0);
    assert_int_equal(qr_zk_gpu_emu_g2_msm(&got, p, &k[0].l[0], n, c), 0);
    if (!qr_g2_eq(&want, &got))
        fail_msg("G2 MSM differs: n=%zu scalars=%d bases=%d c=%u", n, kmix, pmix, c);
    free(p);
    free(k);
}

/* the digits put back together give the scalar (mod r) */
static void test_digits(void **state)
{
    (void)state;
    for (unsigned c = QR_MSMG_MIN_C; c <= QR_MSMG_MAX_C; c++) {
        qr_msmg_plan_t p = qr_msmg_plan(1000, c);
        assert_int_equal(p.c, c);
        assert_true(p.nwin * p.c >= 255);
        assert_int_equal(p.nseg * p.seg, p.nb);
        assert_true(p.nbt < (1u << p.key_bits));
        for (int it = 0; it < 200; it++) {
            qr_msm_scalar_t k;
            qr_fr_t x, back, two_c, d;
            if (it == 0)
                qr_fr_zero(&x);
            else if (it == 1) {
                qr_fr_one(&x);
                qr_fr_neg(&x, &x);
            } else
                s_rand_fr(&x);
            qr_fr_to_canonical(k.l, &x);
            qr_fr_from_u64(&two_c, 1ull << c);
            qr_fr_zero(&back);
            int32_t digits[128];
            uint32_t carry = 0;
            for (uint32_t w = 0; w < p.nwin; w++) {
                digits[w] = qr_msmg_digit(k.l, w, &p, &carry);
                assert_true(digits[w] >= -(int32_t)p.nb && digits[w] <= (int32_t)p.nb);
            }
            assert_int_equal(carry, 0);
            for (uint32_t w = p.nwin; w-- > 0;) {
                qr_fr_mul(&back, &back, &two_c);
                qr_fr_from_u64(&d, (uint64_t)(digits[w] < 0 ? -digits[w] : digits[w]));
                if (digits[w] < 0)
                    qr_fr_sub(&back, &back, &d);
                else
                    qr_fr_add(&back, &back, &d);
            }
            assert_true(qr_fr_eq(&back, &x));
        }
    }
    /* the plan the GPU would pick stays inside the sort's limits */
    for (size_t n = 1; n <= QR_MSMG_MAX_N; n *= 2) {
        qr_msmg_plan_t p = qr_msmg_plan(n, 0);
        assert_true((uint64_t)p.nwin * n < (1ull << 31));
        assert_true(p.key_bits <= 32);
    }
}

/* qr_msmg_locate: the last bucket whose tile offset is <= t */
static void test_locate(void **state)
{
    (void)state;
    const uint32_t toff[] = {0, 0, 2, 2, 2, 5, 6};
    const uint32_t want[] = {1, 1, 4, 4, 4, 5, 6, 6};
    for (uint32_t t = 0; t < 8; t++)
        assert_int_equal(qr_msmg_locate(toff, 7, t), want[t]);
    assert_int_equal(qr_msmg_levels(0), 1);
    assert_int_equal(qr_msmg_levels(QR_MSMG_TILE), 1);
    assert_int_equal(qr_msmg_levels(QR_MSMG_TILE + 1), 2);
    assert_int_equal(qr_msmg_levels(QR_MSMG_TILE * QR_MSMG_TILE + 1), 3);
}

static void test_g1_sizes(void **state)
{
    (void)state;
    const size_t ns[] = {0, 1, 2, 3, 17, 100, 1000, 4097};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        s_g1_case(ns[i], 0, 0, 0);
}

static void test_g1_edges(void **state)
{
    (void)state;
    s_g1_case(300, 1, 0, 0);  /* every scalar zero */
    s_g1_case(300, 0, 1, 0);  /* every base infinity */
    s_g1_case(2000, 2, 0, 0); /* every scalar one: one bucket, three levels */
    s_g1_case(2000, 3, 0, 0); /* every scalar r - 1 */
    s_g1_case(1000, 2, 2, 8); /* G, -G, G, ...: the bucket cancels to infinity */
    s_g1_case(1001, 0, 2, 0);
    s_g1_case(1, 3, 0, 0);
}

static void test_g1_windows(void **state)
{
    (void)state;
    for (unsigned c = QR_MSMG_MIN_C; c <= QR_MSMG_MAX_C; c++)
        s_g1_case(300, 0, 0, c);
}

static void test_g2(void **state)
{
    (void)state;
    const size_t ns[] = {0, 1, 5, 300};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        s_g2_case(ns[i], 0, 0, 0);
    s_g2_case(100, 2, 0, 4); /* one bucket, levels */
    s_g2_case(64, 0, 1, 0);
    s_g2_case(65, 3, 2, 0);
    s_g2_case(200, 0, 0, 11);
}

static void test_ntt(void **state)
{
    (void)state;
    qr_fr_t inc, gen;
    qr_fr_generator(&gen);
    for (unsigned lg = 0; lg <= 12; lg++) {
        size_t n = (size_t)1 << lg;
        qr_ntt_t *d = qr_ntt_new(lg, 1);
        qr_fr_t *a = malloc(n * sizeof *a), *want = malloc(n * sizeof *a),
                *got = malloc(n * sizeof *a);
        assert_true(d && a && want && got);
        qr_fr_root_of_unity(&inc, lg + 1);
        for (unsigned ops = 0; ops < 4; ops++)
            for (int sh = 0; sh < 2; sh++) {
                const qr_fr_t *shift = sh ? &gen : &inc;
                for (size_t i = 0; i < n; i++) {
                    if (i % 7 == 3)
                        qr_fr_zero(&a[i]);
                    else
                        s_rand_fr(&a[i]);
                }
                memcpy(want, a, n * sizeof *a);
                memcpy(got, a, n * sizeof *a);
                if (ops & QR_ZK_GPU_EMU_INVERSE)
                    qr_ntt_inverse(d, want);
                if (ops & QR_ZK_GPU_EMU_COSET)
                    qr_ntt_coset_forward(d, want, shift);
                if (ops == 0)
                    qr_ntt_forward(d, want);
                assert_int_equal(qr_zk_gpu_emu_ntt(got, lg, ops, shift), 0);
                if (memcmp(want, got, n * sizeof *a) != 0)
                    fail_msg("NTT differs: log n %u ops %u shift %d", lg, ops, sh);
            }
        free(a);
        free(want);
        free(got);
        qr_ntt_destroy(&d);
    }
    qr_fr_t x;
    assert_int_equal(qr_zk_gpu_emu_ntt(&x, 29, 0, NULL), -1);
    assert_int_equal(qr_zk_gpu_emu_ntt(&x, 0, QR_ZK_GPU_EMU_COSET, NULL), -1);
    assert_int_equal(qr_zk_gpu_emu_ntt(NULL, 0, 0, NULL), -1);
}

/* the table-driven powers and 1/2^k against plain arithmetic */
static void test_ntt_pieces(void **state)
{
    (void)state;
    qr_fr_t x, tab[QR_NTTG_MAX_LOG], p, q, two, inv;
    s_rand_fr(&x);
    qr_nttg_pow2_table(tab, &x, QR_NTTG_MAX_LOG);
    const uint32_t es[] = {0, 1, 2, 3, 255, 65536, (1u << 28) - 1, 123456789};
    for (size_t i = 0; i < sizeof es / sizeof es[0]; i++) {
        const uint64_t e[4] = {es[i], 0, 0, 0};
        qr_nttg_pow(&p, tab, es[i]);
        qr_fr_pow(&q, &x, e);
        assert_true(qr_fr_eq(&p, &q));
    }
    qr_fr_from_u64(&two, 2);
    for (uint32_t k = 0; k <= QR_NTTG_MAX_LOG; k++) {
        qr_nttg_inv_pow2(&inv, k);
        const uint64_t e[4] = {k, 0, 0, 0};
        qr_fr_pow(&p, &two, e);
        qr_fr_mul(&p, &p, &inv);
        assert_true(qr_fr_is_one(&p));
        qr_nttg_root(&p, k);
        qr_fr_root_of_unity(&q, k);
        assert_true(qr_fr_eq(&p, &q));
    }
    for (uint32_t i = 0; i < 1024; i++)
        assert_int_equal(qr_nttg_bitrev(qr_nttg_bitrev(i, 10), 10), i);
    assert_int_equal(qr_nttg_bitrev(1, 10), 512);
    assert_int_equal(qr_nttg_bitrev(0, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digits),     cmocka_unit_test(test_locate),
        cmocka_unit_test(test_g1_sizes),   cmocka_unit_test(test_g1_edges),
        cmocka_unit_test(test_g1_windows), cmocka_unit_test(test_g2),
        cmocka_unit_test(test_ntt),        cmocka_unit_test(test_ntt_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
