/* common/zk: Fp, Fr and the Fp2/Fp6/Fp12 tower.  Multiplication is checked
 * against a slow shift-and-add reference written here, the rest through
 * algebraic identities and published constants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bn254_tower.h"
#include "zk_rand.h"

#define P_DEC "21888242871839275222246405745257275088696311157297823662689037894645226208583"
#define R_DEC "21888242871839275222246405745257275088548364400416034343698204186575808495617"
#define PM1_DEC "21888242871839275222246405745257275088696311157297823662689037894645226208582"
#define RM1_DEC "21888242871839275222246405745257275088548364400416034343698204186575808495616"

__extension__ typedef unsigned __int128 u128;

static uint64_t s_seed = 0x5eed5eed12345678ull;

static uint64_t s_rand64(void)
{
    return zk_rand64(&s_seed);
}

static const uint64_t s_p[4] = QR_FP_MOD;
static const uint64_t s_r[4] = QR_FR_MOD;

static int s_cmp(const uint64_t a[4], const uint64_t b[4])
{
    for (int i = 3; i >= 0; i--)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

/* uniform-ish canonical integer below m by rejection */
static void s_rand_below(uint64_t v[4], const uint64_t m[4])
{
    do {
        for (int i = 0; i < 4; i++)
            v[i] = s_rand64();
        v[3] &= 0x3fffffffffffffffull;
    } while (s_cmp(v, m) >= 0);
}

static void s_rand_fp(qr_fp_t *a)
{
    uint64_t v[4];
    s_rand_below(v, s_p);
    qr_fp_from_canonical(a, v);
}

static void s_rand_fr(qr_fr_t *a)
{
    uint64_t v[4];
    s_rand_below(v, s_r);
    qr_fr_from_canonical(a, v);
}

static void s_rand_fp2(qr_fp2_t *a)
{
    s_rand_fp(&a->c0);
    s_rand_fp(&a->c1);
}

static void s_rand_fp6(qr_fp6_t *a)
{
    s_rand_fp2(&a->c0);
    s_rand_fp2(&a->c1);
    s_rand_fp2(&a->c2);
}

static void s_rand_fp12(qr_fp12_t *a)
{
    s_rand_fp6(&a->c0);
    s_rand_fp6(&a->c1);
}

/* reference (a + b) mod m and (a * b) mod m on canonical integers, written
 * without the library: schoolbook shift-and-add */
static void s_ref_addmod(uint64_t r[4], const uint64_t a[4], const uint64_t b[4],
                         const uint64_t m[4])
{
    uint64_t t[4], c = 0;
    for (int i = 0; i < 4; i++) {
        u128 s = (u128)a[i] + b[i] + c;
        t[i] = (uint64_t)s;
        c = (uint64_t)(s >> 64);
    }
    if (c || s_cmp(t, m) >= 0) {
        uint64_t br = 0;
        for (int i = 0; i < 4; i++) {
            u128 d = (u128)t[i] - m[i] - br;
            t[i] = (uint64_t)d;
            br = (uint64_t)(d >> 64) & 1;
        }
    }
    memcpy(r, t, sizeof t);
}

static void s_ref_mulmod(uint64_t r[4], const uint64_t a[4], const uint64_t b[4],
                         const uint64_t m[4])
{
    uint64_t acc[4] = {0, 0, 0, 0};
    for (int i = 255; i >= 0; i--) {
        s_ref_addmod(acc, acc, acc, m);
        if ((b[i / 64] >> (i % 64)) & 1)
            s_ref_addmod(acc, acc, a, m);
    }
    memcpy(r, acc, sizeof acc);
}

static void test_constants(void **state)
{
    (void)state;
    qr_fp_t a, one;
    qr_fr_t b, onr;
    char buf[QR_ZK_DEC_MAX];
    /* p and r themselves are not canonical, p - 1 and r - 1 are */
    assert_int_equal(qr_fp_from_dec(&a, P_DEC), -1);
    assert_int_equal(qr_fr_from_dec(&b, R_DEC), -1);
    assert_int_equal(qr_fp_from_dec(&a, PM1_DEC), 0);
    assert_int_equal(qr_fr_from_dec(&b, RM1_DEC), 0);
    assert_string_equal(qr_fp_to_dec(buf, &a), PM1_DEC);
    assert_string_equal(qr_fr_to_dec(buf, &b), RM1_DEC);
    /* (p - 1) + 1 = 0 */
    qr_fp_one(&one);
    qr_fp_add(&a, &a, &one);
    assert_true(qr_fp_is_zero(&a));
    qr_fr_one(&onr);
    qr_fr_add(&b, &b, &onr);
    assert_true(qr_fr_is_zero(&b));
    /* the limbs against the decimal values */
    uint64_t v[4];
    qr_fp_from_u64(&a, 0);
    qr_fp_sub(&a, &a, &one);
    qr_fp_to_canonical(v, &a);
    v[0] += 1;
    assert_memory_equal(v, s_p, sizeof v);
    /* from_u64 and one agree; 1 * 1 = 1 */
    qr_fp_from_u64(&a, 1);
    assert_true(qr_fp_is_one(&a));
    qr_fp_mul(&a, &a, &a);
    assert_true(qr_fp_is_one(&a));
}

static void test_mul_reference(void **state)
{
    (void)state;
    for (int k = 0; k < 300; k++) {
        const uint64_t *m = (k & 1) ? s_r : s_p;
        uint64_t x[4], y[4], want[4], got[4];
        s_rand_below(x, m);
        s_rand_below(y, m);
        if (k == 0) { /* extremes: (m - 1)^2 */
            memcpy(x, m, sizeof x);
            x[0] -= 1;
            memcpy(y, x, sizeof y);
        }
        s_ref_mulmod(want, x, y, m);
        if (k & 1) {
            qr_fr_t a, b;
            qr_fr_from_canonical(&a, x);
            qr_fr_from_canonical(&b, y);
            qr_fr_mul(&a, &a, &b);
            qr_fr_to_canonical(got, &a);
            assert_memory_equal(got, want, sizeof got);
            s_ref_mulmod(want, x, x, m);
            qr_fr_from_canonical(&a, x);
            qr_fr_sqr(&a, &a);
            qr_fr_to_canonical(got, &a);
        } else {
            qr_fp_t a, b;
            qr_fp_from_canonical(&a, x);
            qr_fp_from_canonical(&b, y);
            qr_fp_mul(&a, &a, &b);
            qr_fp_to_canonical(got, &a);
            assert_memory_equal(got, want, sizeof got);
            s_ref_mulmod(want, x, x, m);
            qr_fp_from_canonical(&a, x);
            qr_fp_sqr(&a, &a);
            qr_fp_to_canonical(got, &a);
        }
        assert_memory_equal(got, want, sizeof got);
        /* addition too */
        s_ref_addmod(want, x, y, m);
        if (m == s_p) {
            qr_fp_t a, b;
            qr_fp_from_canonical(&a, x);
            qr_fp_from_canonical(&b, y);
            qr_fp_add(&a, &a, &b);
            qr_fp_to_canonical(got, &a);
            assert_memory_equal(got, want, sizeof got);
        }
    }
}

static void test_axioms(void **state)
{
    (void)state;
    for (int k = 0; k < 200; k++) {
        qr_fp_t a, b, c, t, u, z;
        s_rand_fp(&a);
        s_rand_fp(&b);
        s_rand_fp(&c);
        qr_fp_mul(&t, &a, &b);
        qr_fp_mul(&u, &b, &a);
        assert_true(qr_fp_eq(&t, &u));
        qr_fp_mul(&t, &t, &c);
        qr_fp_mul(&u, &b, &c);
        qr_fp_mul(&u, &a, &u);
        assert_true(qr_fp_eq(&t, &u));
        /* a (b + c) = ab + ac */
        qr_fp_add(&t, &b, &c);
        qr_fp_mul(&t, &a, &t);
        qr_fp_mul(&u, &a, &b);
        qr_fp_mul(&z, &a, &c);
        qr_fp_add(&u, &u, &z);
        assert_true(qr_fp_eq(&t, &u));
        /* a - b + b = a, a + (-a) = 0, 2a = a + a */
        qr_fp_sub(&t, &a, &b);
        qr_fp_add(&t, &t, &b);
        assert_true(qr_fp_eq(&t, &a));
        qr_fp_neg(&t, &a);
        qr_fp_add(&t, &t, &a);
        assert_true(qr_fp_is_zero(&t));
        qr_fp_dbl(&t, &a);
        qr_fp_add(&u, &a, &a);
        assert_true(qr_fp_eq(&t, &u));
        /* the same in Fr */
        qr_fr_t x, y, w, v;
        s_rand_fr(&x);
        s_rand_fr(&y);
        qr_fr_add(&w, &x, &y);
        qr_fr_sqr(&w, &w); /* (x + y)^2 = x^2 + 2xy + y^2 */
        qr_fr_sqr(&v, &x);
        qr_fr_t xy, y2;
        qr_fr_mul(&xy, &x, &y);
        qr_fr_dbl(&xy, &xy);
        qr_fr_sqr(&y2, &y);
        qr_fr_add(&v, &v, &xy);
        qr_fr_add(&v, &v, &y2);
        assert_true(qr_fr_eq(&w, &v));
    }
    qr_fp_t zero, n;
    qr_fp_zero(&zero);
    qr_fp_neg(&n, &zero);
    assert_true(qr_fp_is_zero(&n));
}

static void test_inverse(void **state)
{
    (void)state;
    for (int k = 0; k < 50; k++) {
        qr_fp_t a, i, t;
        s_rand_fp(&a);
        qr_fp_inv(&i, &a);
        qr_fp_mul(&t, &a, &i);
        assert_true(qr_fp_is_one(&t));
        qr_fr_t x, y, z;
        s_rand_fr(&x);
        qr_fr_inv(&y, &x);
        qr_fr_mul(&z, &x, &y);
        assert_true(qr_fr_is_one(&z));
    }
    qr_fp_t z, zi;
    qr_fp_zero(&z);
    qr_fp_inv(&zi, &z);
    assert_true(qr_fp_is_zero(&zi));
    /* batch, with zeros mixed in, in place */
    enum { N = 37 };
    qr_fp_t in[N], out[N], scratch[N];
    for (int k = 0; k < N; k++) {
        if (k % 7 == 3)
            qr_fp_zero(&in[k]);
        else
            s_rand_fp(&in[k]);
    }
    memcpy(out, in, sizeof in);
    qr_fp_batch_inv(out, out, N, scratch);
    for (int k = 0; k < N; k++) {
        qr_fp_t w;
        qr_fp_inv(&w, &in[k]);
        assert_true(qr_fp_eq(&w, &out[k]));
    }
}

static void test_sqrt(void **state)
{
    (void)state;
    int squares = 0;
    for (int k = 0; k < 60; k++) {
        qr_fp_t a, s, t, na;
        s_rand_fp(&a);
        qr_fp_sqr(&t, &a);
        assert_true(qr_fp_sqrt(&s, &t));
        qr_fp_neg(&na, &a);
        assert_true(qr_fp_eq(&s, &a) || qr_fp_eq(&s, &na));
        assert_int_equal(qr_fp_legendre(&t), 1);
        /* a random element: sqrt succeeds exactly for the squares */
        s_rand_fp(&a);
        int l = qr_fp_legendre(&a);
        assert_int_equal(qr_fp_sqrt(&s, &a), l == 1);
        squares += l == 1;
    }
    assert_true(squares > 10 && squares < 50);
    /* -1 is not a square since p = 3 mod 4 */
    qr_fp_t m1, s, z;
    qr_fp_one(&m1);
    qr_fp_neg(&m1, &m1);
    assert_false(qr_fp_sqrt(&s, &m1));
    assert_int_equal(qr_fp_legendre(&m1), -1);
    qr_fp_zero(&z);
    assert_true(qr_fp_sqrt(&s, &z));
    assert_true(qr_fp_is_zero(&s));
}

static void test_bytes(void **state)
{
    (void)state;
    uint8_t b[32], c[32];
    for (int k = 0; k < 40; k++) {
        qr_fp_t a, t;
        s_rand_fp(&a);
        qr_fp_to_be32(b, &a);
        assert_int_equal(qr_fp_from_be32(&t, b), 0);
        assert_true(qr_fp_eq(&a, &t));
        qr_fp_to_le32(c, &a);
        for (int i = 0; i < 32; i++) /* le is be reversed */
            assert_int_equal(c[i], b[31 - i]);
        assert_int_equal(qr_fp_from_le32(&t, c), 0);
        assert_true(qr_fp_eq(&a, &t));
        qr_fp_to_mont_le32(c, &a);
        assert_int_equal(qr_fp_from_mont_le32(&t, c), 0);
        assert_true(qr_fp_eq(&a, &t));
        qr_fr_t x, y;
        s_rand_fr(&x);
        qr_fr_to_be32(b, &x);
        assert_int_equal(qr_fr_from_be32(&y, b), 0);
        assert_true(qr_fr_eq(&x, &y));
        qr_fr_to_le32(b, &x);
        assert_int_equal(qr_fr_from_le32(&y, b), 0);
        assert_true(qr_fr_eq(&x, &y));
        qr_fr_to_mont_le32(b, &x);
        assert_int_equal(qr_fr_from_mont_le32(&y, b), 0);
        assert_true(qr_fr_eq(&x, &y));
    }
    /* 1 in each layout */
    qr_fp_t one, t;
    qr_fp_one(&one);
    qr_fp_to_be32(b, &one);
    for (int i = 0; i < 31; i++)
        assert_int_equal(b[i], 0);
    assert_int_equal(b[31], 1);
    qr_fp_to_le32(b, &one);
    assert_int_equal(b[0], 1);
    /* Montgomery 1 is R mod p = 0x0e0a77c1...c58f0d9d, little-endian */
    qr_fp_to_mont_le32(b, &one);
    assert_int_equal(b[0], 0x9d);
    assert_int_equal(b[31], 0x0e);
    /* non-canonical encodings are refused: p, p + 1, all ones */
    uint64_t pv[4];
    memcpy(pv, s_p, sizeof pv);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++)
            b[(3 - i) * 8 + j] = (uint8_t)(pv[i] >> (56 - 8 * j));
    assert_int_equal(qr_fp_from_be32(&t, b), -1);
    b[31] += 1;
    assert_int_equal(qr_fp_from_be32(&t, b), -1);
    b[31] -= 2; /* p - 1 */
    assert_int_equal(qr_fp_from_be32(&t, b), 0);
    memset(b, 0xff, sizeof b);
    assert_int_equal(qr_fp_from_be32(&t, b), -1);
    assert_int_equal(qr_fp_from_le32(&t, b), -1);
    assert_int_equal(qr_fp_from_mont_le32(&t, b), -1);
    qr_fr_t x;
    assert_int_equal(qr_fr_from_be32(&x, b), -1);
    /* r is refused in Fr but is a fine element of Fp (r < p) */
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++)
            b[i * 8 + j] = (uint8_t)(s_r[i] >> (8 * j));
    assert_int_equal(qr_fr_from_le32(&x, b), -1);
    assert_int_equal(qr_fp_from_le32(&t, b), 0);
}

static void test_decimal(void **state)
{
    (void)state;
    char buf[QR_ZK_DEC_MAX];
    qr_fp_t a, b;
    qr_fr_t x;
    assert_int_equal(qr_fp_from_dec(&a, "0"), 0);
    assert_true(qr_fp_is_zero(&a));
    assert_string_equal(qr_fp_to_dec(buf, &a), "0");
    assert_int_equal(qr_fp_from_dec(&a, "000042"), 0);
    qr_fp_from_u64(&b, 42);
    assert_true(qr_fp_eq(&a, &b));
    assert_string_equal(qr_fp_to_dec(buf, &a), "42");
    /* across a 10^19 chunk boundary, with zeros inside the low chunk */
    assert_int_equal(qr_fp_from_dec(&a, "10000000000000000000"), 0);
    assert_string_equal(qr_fp_to_dec(buf, &a), "10000000000000000000");
    assert_int_equal(qr_fp_from_dec(&a, "123456789012345678900000000000000000007"), 0);
    assert_string_equal(qr_fp_to_dec(buf, &a), "123456789012345678900000000000000000007");
    /* u64 max + 1 = 2^64 */
    qr_fp_from_u64(&b, UINT64_MAX);
    qr_fp_t one;
    qr_fp_one(&one);
    qr_fp_add(&b, &b, &one);
    assert_string_equal(qr_fp_to_dec(buf, &b), "18446744073709551616");
    /* malformed */
    assert_int_equal(qr_fp_from_dec(&a, ""), -1);
    assert_int_equal(qr_fp_from_dec(&a, "-1"), -1);
    assert_int_equal(qr_fp_from_dec(&a, "12a"), -1);
    assert_int_equal(qr_fp_from_dec(&a, " 1"), -1);
    assert_int_equal(qr_fp_from_dec(&a, NULL), -1);
    /* far too long: must not wrap around into range */
    char big[200];
    memset(big, '9', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(qr_fp_from_dec(&a, big), -1);
    memset(big, '0', sizeof big - 1); /* but leading zeros are fine */
    big[sizeof big - 2] = '7';
    assert_int_equal(qr_fr_from_dec(&x, big), 0);
    assert_string_equal(qr_fr_to_dec(buf, &x), "7");
    /* random round trips */
    for (int k = 0; k < 50; k++) {
        s_rand_fp(&a);
        assert_int_equal(qr_fp_from_dec(&b, qr_fp_to_dec(buf, &a)), 0);
        assert_true(qr_fp_eq(&a, &b));
    }
}

/* ---- tower ---- */

static void s_p_limbs(uint64_t e[4])
{
    memcpy(e, s_p, 4 * sizeof *e);
}

static void test_fp2(void **state)
{
    (void)state;
    uint64_t pe[4];
    s_p_limbs(pe);
    for (int k = 0; k < 30; k++) {
        qr_fp2_t a, b, t, u;
        s_rand_fp2(&a);
        s_rand_fp2(&b);
        /* mul against the schoolbook formula (u^2 = -1) */
        qr_fp2_mul(&t, &a, &b);
        qr_fp_t x, y;
        qr_fp_mul(&x, &a.c0, &b.c0);
        qr_fp_mul(&y, &a.c1, &b.c1);
        qr_fp_sub(&u.c0, &x, &y);
        qr_fp_mul(&x, &a.c0, &b.c1);
        qr_fp_mul(&y, &a.c1, &b.c0);
        qr_fp_add(&u.c1, &x, &y);
        assert_true(qr_fp2_eq(&t, &u));
        qr_fp2_sqr(&t, &a);
        qr_fp2_mul(&u, &a, &a);
        assert_true(qr_fp2_eq(&t, &u));
        /* inverse */
        qr_fp2_inv(&t, &a);
        qr_fp2_mul(&t, &t, &a);
        qr_fp2_one(&u);
        assert_true(qr_fp2_eq(&t, &u));
        /* conj = Frobenius = a^p */
        qr_fp2_conj(&t, &a);
        qr_fp2_pow(&u, &a, pe, 4);
        assert_true(qr_fp2_eq(&t, &u));
        /* xi multiplication */
        qr_fp2_t xi;
        qr_fp_from_u64(&xi.c0, 9);
        qr_fp_one(&xi.c1);
        qr_fp2_mul(&t, &a, &xi);
        qr_fp2_mul_xi(&u, &a);
        assert_true(qr_fp2_eq(&t, &u));
        /* sqrt of a square; a * xi is not a square when a is, since xi is
         * a non-residue in Fp2 (that is what makes v^3 = xi irreducible) */
        qr_fp2_t s, n;
        qr_fp2_sqr(&t, &a);
        assert_true(qr_fp2_sqrt(&s, &t));
        qr_fp2_neg(&n, &a);
        assert_true(qr_fp2_eq(&s, &a) || qr_fp2_eq(&s, &n));
        qr_fp2_mul_xi(&t, &t);
        assert_false(qr_fp2_sqrt(&s, &t));
    }
    /* sqrt of elements of Fp: squares and non-squares there both have roots
     * in Fp2 */
    qr_fp2_t a, s, t;
    qr_fp_one(&a.c0);
    qr_fp_neg(&a.c0, &a.c0);
    qr_fp_zero(&a.c1);
    assert_true(qr_fp2_sqrt(&s, &a)); /* sqrt(-1) = +-u */
    qr_fp2_sqr(&t, &s);
    assert_true(qr_fp2_eq(&t, &a));
    assert_true(qr_fp_is_zero(&s.c0));
}

static void test_fp6_fp12(void **state)
{
    (void)state;
    for (int k = 0; k < 10; k++) {
        qr_fp6_t a, b, c, t, u, w;
        s_rand_fp6(&a);
        s_rand_fp6(&b);
        s_rand_fp6(&c);
        qr_fp6_mul(&t, &a, &b);
        qr_fp6_mul(&u, &b, &a);
        assert_true(qr_fp6_eq(&t, &u));
        qr_fp6_mul(&t, &t, &c);
        qr_fp6_mul(&u, &b, &c);
        qr_fp6_mul(&u, &a, &u);
        assert_true(qr_fp6_eq(&t, &u));
        qr_fp6_add(&t, &b, &c);
        qr_fp6_mul(&t, &a, &t);
        qr_fp6_mul(&u, &a, &b);
        qr_fp6_mul(&w, &a, &c);
        qr_fp6_add(&u, &u, &w);
        assert_true(qr_fp6_eq(&t, &u));
        qr_fp6_sqr(&t, &a);
        qr_fp6_mul(&u, &a, &a);
        assert_true(qr_fp6_eq(&t, &u));
        qr_fp6_inv(&t, &a);
        qr_fp6_mul(&t, &t, &a);
        qr_fp6_one(&u);
        assert_true(qr_fp6_eq(&t, &u));
        /* v^3 = xi */
        qr_fp6_t v;
        qr_fp6_zero(&v);
        qr_fp_one(&v.c1.c0);
        qr_fp6_mul(&t, &a, &v);
        qr_fp6_mul_v(&u, &a);
        assert_true(qr_fp6_eq(&t, &u));

        qr_fp12_t x, y, z, p, q;
        s_rand_fp12(&x);
        s_rand_fp12(&y);
        s_rand_fp12(&z);
        qr_fp12_mul(&p, &x, &y);
        qr_fp12_mul(&q, &y, &x);
        assert_true(qr_fp12_eq(&p, &q));
        qr_fp12_mul(&p, &p, &z);
        qr_fp12_mul(&q, &y, &z);
        qr_fp12_mul(&q, &x, &q);
        assert_true(qr_fp12_eq(&p, &q));
        qr_fp12_sqr(&p, &x);
        qr_fp12_mul(&q, &x, &x);
        assert_true(qr_fp12_eq(&p, &q));
        qr_fp12_inv(&p, &x);
        qr_fp12_mul(&p, &p, &x);
        assert_true(qr_fp12_is_one(&p));
        /* a sparse line times f equals the full product */
        qr_fp2_t l0, l1, l3;
        s_rand_fp2(&l0);
        s_rand_fp2(&l1);
        s_rand_fp2(&l3);
        qr_fp12_t line;
        memset(&line, 0, sizeof line);
        line.c0.c0 = l0;
        line.c1.c0 = l1;
        line.c1.c1 = l3;
        qr_fp12_mul(&p, &x, &line);
        q = x;
        qr_fp12_mul_line(&q, &l0, &l1, &l3);
        assert_true(qr_fp12_eq(&p, &q));
    }
}

static void test_frobenius(void **state)
{
    (void)state;
    uint64_t pe[4];
    s_p_limbs(pe);
    for (int k = 0; k < 3; k++) {
        qr_fp12_t a, f, g, t;
        s_rand_fp12(&a);
        /* frob(a) = a^p, the definition */
        qr_fp12_frob(&f, &a, 1);
        qr_fp12_pow(&g, &a, pe, 4);
        assert_true(qr_fp12_eq(&f, &g));
        /* p^2 and p^3 against repeated p */
        qr_fp12_frob(&t, &f, 1);
        qr_fp12_frob(&g, &a, 2);
        assert_true(qr_fp12_eq(&t, &g));
        qr_fp12_frob(&t, &t, 1);
        qr_fp12_frob(&g, &a, 3);
        assert_true(qr_fp12_eq(&t, &g));
        /* p^6 is conjugation, p^12 the identity */
        qr_fp12_frob(&t, &a, 6);
        qr_fp12_conj(&g, &a);
        assert_true(qr_fp12_eq(&t, &g));
        qr_fp12_frob(&t, &a, 12);
        assert_true(qr_fp12_eq(&t, &a));
        /* cyclotomic squaring on m = a^((p^6 - 1)(p^2 + 1)) */
        qr_fp12_t m;
        qr_fp12_inv(&t, &a);
        qr_fp12_conj(&m, &a);
        qr_fp12_mul(&m, &m, &t);
        qr_fp12_frob(&t, &m, 2);
        qr_fp12_mul(&m, &m, &t);
        qr_fp12_sqr(&f, &m);
        qr_fp12_cyclo_sqr(&g, &m);
        assert_true(qr_fp12_eq(&f, &g));
        /* and in that subgroup conj is the inverse */
        qr_fp12_conj(&t, &m);
        qr_fp12_mul(&t, &t, &m);
        assert_true(qr_fp12_is_one(&t));
    }
}

/* ---- the two multiplications ----
 * The MULX/ADX assembly (fp_x86.h) against the portable C, limb for limb
 * (and fp_x86.h's addition and subtraction against the C ones):
 * every pair from a list of edge values (0, 1, 2, m - 1, m - 2, limbs of all
 * ones below m, R mod m, R^2 mod m, ...), then random pairs, each as a
 * product, a square and with the result aliasing an operand; then the
 * public qr_fp_mul/qr_fr_mul under both selections.  Where the build or
 * the CPU has no assembly, checks that selecting it is refused. */
static void s_edges(uint64_t e[][4], int *n, const uint64_t m[4], const uint64_t one[4],
                    const uint64_t r2[4])
{
    const uint64_t F = ~0ull;
    const uint64_t v[][4] = {
        {0, 0, 0, 0},
        {1, 0, 0, 0},
        {2, 0, 0, 0},
        {m[0] - 1, m[1], m[2], m[3]},
        {m[0] - 2, m[1], m[2], m[3]},
        {m[0], m[1] - 1, m[2], m[3]}, /* m - 2^64 */
        {F, F, F, m[3] - 1},           /* all ones but the top limb */
        {F, F, F, 0},
        {F, 0, 0, 0},
        {0, F, 0, 0},
        {0, 0, F, 0},
        {0, 0, 0, m[3] - 1},
        {F, 0, F, 0},
        {0, F, 0, m[3] - 1},
        {F, F, m[2] - 1, m[3]}, /* just below m, low limbs all ones */
        {one[0], one[1], one[2], one[3]},
        {r2[0], r2[1], r2[2], r2[3]},
        {m[0] >> 1 | m[1] << 63, m[1] >> 1 | m[2] << 63, m[2] >> 1 | m[3] << 63, m[3] >> 1},
    };
    *n = (int)(sizeof v / sizeof v[0]);
    memcpy(e, v, sizeof v);
}

static void test_fmul_paths(void **state)
{
    (void)state;
    /* the edge values as canonical integers, against the reference, on
     * whichever multiplication is selected */
    for (int f = 0; f < 2; f++) {
        const uint64_t *m = f ? s_r : s_p;
        const uint64_t one_p[4] = QR_FP_ONE, one_r[4] = QR_FR_ONE, r2_p[4] = QR_FP_R2,
                       r2_r[4] = QR_FR_R2;
        uint64_t e[32][4], want[4], got[4];
        int ne;
        s_edges(e, &ne, m, f ? one_r : one_p, f ? r2_r : r2_p);
        for (int i = 0; i < ne; i++) {
            for (int j = 0; j < ne; j++) {
                s_ref_mulmod(want, e[i], e[j], m);
                if (f) {
                    qr_fr_t a, b;
                    qr_fr_from_canonical(&a, e[i]);
                    qr_fr_from_canonical(&b, e[j]);
                    qr_fr_mul(&a, &a, &b);
                    qr_fr_to_canonical(got, &a);
                } else {
                    qr_fp_t a, b;
                    qr_fp_from_canonical(&a, e[i]);
                    qr_fp_from_canonical(&b, e[j]);
                    qr_fp_mul(&a, &a, &b);
                    qr_fp_to_canonical(got, &a);
                }
                assert_memory_equal(got, want, sizeof got);
            }
        }
    }
#if defined(QR_ZK_ADX_ASM)
    if (!qr_zk_fmul_adx_available()) {
        assert_int_equal(qr_zk_fmul_select(true), -1);
        print_message("no BMI2/ADX on this CPU: the assembly is not run\n");
        return;
    }
    for (int f = 0; f < 2; f++) {
        const uint64_t *m = f ? s_r : s_p;
        const uint64_t inv = f ? QR_FR_INV : QR_FP_INV;
        const qr_zk_adx_q_t *q = f ? &qr_zk_adx_fr_q : &qr_zk_adx_fp_q;
        const uint64_t one_p[4] = QR_FP_ONE, one_r[4] = QR_FR_ONE, r2_p[4] = QR_FP_R2,
                       r2_r[4] = QR_FR_R2;
        uint64_t e[32][4];
        int ne;
        s_edges(e, &ne, m, f ? one_r : one_p, f ? r2_r : r2_p);
        for (int i = 0; i < ne; i++)
            assert_true(s_cmp(e[i], m) < 0);
        for (int k = 0; k < ne * ne + 200000; k++) {
            uint64_t a[4], b[4], want[4], got[4], t[4];
            if (k < ne * ne) {
                memcpy(a, e[k / ne], sizeof a);
                memcpy(b, e[k % ne], sizeof b);
            } else {
                s_rand_below(a, m);
                if (k % 3 == 0)
                    memcpy(b, e[k % ne], sizeof b);
                else
                    s_rand_below(b, m);
            }
            qr_zk_mont_mul(want, a, b, m, inv);
            qr_zk_mont_mul_adx(got, a, b, q);
            assert_memory_equal(got, want, sizeof got);
            assert_true(s_cmp(got, m) < 0);
            memcpy(t, a, sizeof t); /* r aliasing a, then b */
            qr_zk_mont_mul_adx(t, t, b, q);
            assert_memory_equal(t, want, sizeof t);
            memcpy(t, b, sizeof t);
            qr_zk_mont_mul_adx(t, a, t, q);
            assert_memory_equal(t, want, sizeof t);
            qr_zk_mont_mul(want, a, a, m, inv); /* square, in place; and the squaring */
            memcpy(t, a, sizeof t);
            qr_zk_mont_mul_adx(t, t, t, q);
            assert_memory_equal(t, want, sizeof t);
            qr_zk_mont_sqr_adx(got, a, q);
            assert_memory_equal(got, want, sizeof got);
            memcpy(t, a, sizeof t);
            qr_zk_mont_sqr_adx(t, t, q);
            assert_memory_equal(t, want, sizeof t);
            /* addition and subtraction (fp_x86.h too), both orders, in place */
            qr_zk_add(want, a, b, m);
            qr_zk_add_x86(got, a, b, q);
            assert_memory_equal(got, want, sizeof got);
            memcpy(t, b, sizeof t);
            qr_zk_add_x86(t, a, t, q);
            assert_memory_equal(t, want, sizeof t);
            qr_zk_sub(want, a, b, m);
            qr_zk_sub_x86(got, a, b, q);
            assert_memory_equal(got, want, sizeof got);
            qr_zk_sub(want, b, a, m);
            memcpy(t, b, sizeof t);
            qr_zk_sub_x86(t, t, a, q);
            assert_memory_equal(t, want, sizeof t);
        }
    }
    /* the public operations under each selection give the same limbs */
    for (int k = 0; k < 2000; k++) {
        qr_fp_t a, b, x, y, sx, sy;
        qr_fr_t c, d, u, v;
        s_rand_fp(&a);
        s_rand_fp(&b);
        s_rand_fr(&c);
        s_rand_fr(&d);
        assert_int_equal(qr_zk_fmul_select(true), 0);
        assert_string_equal(qr_zk_fmul_name(), "mulx-adx");
        qr_fp_mul(&x, &a, &b);
        qr_fp_sqr(&sx, &a);
        qr_fr_mul(&u, &c, &d);
        assert_int_equal(qr_zk_fmul_select(false), 0);
        assert_string_equal(qr_zk_fmul_name(), "portable");
        qr_fp_mul(&y, &a, &b);
        qr_fp_sqr(&sy, &a);
        qr_fr_mul(&v, &c, &d);
        assert_true(qr_fp_eq(&x, &y));
        assert_true(qr_fp_eq(&sx, &sy));
        assert_true(qr_fr_eq(&u, &v));
    }
    assert_int_equal(qr_zk_fmul_select(true), 0);
#else
    /* this file sees no assembly (off x86-64, -O0, QR_ZK_NO_ASM); the
     * library may still have it, so only the switch itself is checked */
    bool adx = strcmp(qr_zk_fmul_name(), "mulx-adx") == 0;
    assert_int_equal(qr_zk_fmul_select(false), 0);
    assert_string_equal(qr_zk_fmul_name(), "portable");
    assert_int_equal(qr_zk_fmul_select(adx), 0);
#endif
}

/* ---- the lazy-reduction pieces (fp_x86.h) ----
 * qr_zk_mul512_adx against schoolbook with 128-bit products on any 256-bit
 * values; qr_zk_redc_adx of a product against the Montgomery
 * multiplication, and of extreme inputs (high half m - 1 or 0, low half
 * all ones) against hi + lo 2^-256 mod m; qr_zk_fp2_mul_adx against
 * qr_fp2_mul on every pair of edge elements for each coordinate, on random
 * ones, and with the outputs aliasing the inputs. */
#if defined(QR_ZK_ADX_ASM)
static void s_ref_mul512(uint64_t t[8], const uint64_t a[4], const uint64_t b[4])
{
    memset(t, 0, 8 * sizeof *t);
    for (int i = 0; i < 4; i++) {
        unsigned __int128 c = 0;
        for (int j = 0; j < 4; j++) {
            c += (unsigned __int128)a[i] * b[j] + t[i + j];
            t[i + j] = (uint64_t)c;
            c >>= 64;
        }
        t[i + 4] = (uint64_t)c;
    }
}
#endif

static void test_lazy_paths(void **state)
{
    (void)state;
#if defined(QR_ZK_ADX_ASM)
    if (!qr_zk_fmul_adx_available()) {
        print_message("no BMI2/ADX on this CPU: the assembly is not run\n");
        return;
    }
    const uint64_t F = ~0ull;
    for (int f = 0; f < 2; f++) {
        const uint64_t *m = f ? s_r : s_p;
        const uint64_t inv = f ? QR_FR_INV : QR_FP_INV;
        const qr_zk_adx_q_t *q = f ? &qr_zk_adx_fr_q : &qr_zk_adx_fp_q;
        const uint64_t one_p[4] = QR_FP_ONE, one_r[4] = QR_FR_ONE, r2_p[4] = QR_FP_R2,
                       r2_r[4] = QR_FR_R2;
        uint64_t e[32][4];
        int ne;
        s_edges(e, &ne, m, f ? one_r : one_p, f ? r2_r : r2_p);
        memset(e[ne], 0xff, sizeof e[ne]); /* 2^256 - 1: mul512 takes any value */
        for (int k = 0; k < (ne + 1) * (ne + 1) + 100000; k++) {
            uint64_t a[4], b[4], want8[8], got8[8], want[4], got[4];
            if (k < (ne + 1) * (ne + 1)) {
                memcpy(a, e[k / (ne + 1)], sizeof a);
                memcpy(b, e[k % (ne + 1)], sizeof b);
            } else {
                for (int i = 0; i < 4; i++) {
                    a[i] = s_rand64();
                    b[i] = s_rand64();
                }
            }
            s_ref_mul512(want8, a, b);
            qr_zk_mul512_adx(got8, a, b);
            assert_memory_equal(got8, want8, sizeof got8);
            if (s_cmp(a, m) < 0 && s_cmp(b, m) < 0) {
                qr_zk_mont_mul(want, a, b, m, inv);
                qr_zk_redc_adx(got, got8, q);
                assert_memory_equal(got, want, sizeof got);
            }
        }
        /* t = hi 2^256 + lo for hi < m, any lo: hi + lo R^-1 mod m */
        for (int k = 0; k < 1000; k++) {
            uint64_t t[8], lo[4], hi[4], x[4], want[4], got[4], one[4] = {1, 0, 0, 0};
            for (int i = 0; i < 4; i++)
                lo[i] = k == 0 || k == 1 ? F : s_rand64();
            if (k == 0)
                memcpy(hi, m, sizeof hi), hi[0] -= 1; /* the largest input, m 2^256 - 1 */
            else if (k == 1)
                memset(hi, 0, sizeof hi);
            else
                s_rand_below(hi, m);
            memcpy(t, lo, sizeof lo);
            memcpy(t + 4, hi, sizeof hi);
            while (s_cmp(lo, m) >= 0) { /* lo mod m: lo - m until below m */
                uint64_t bw = 0;
                for (int i = 0; i < 4; i++)
                    lo[i] = qr_zk_sbb(lo[i], m[i], &bw);
            }
            qr_zk_mont_mul(x, lo, one, m, inv);
            qr_zk_add(want, x, hi, m);
            qr_zk_redc_adx(got, t, q);
            assert_memory_equal(got, want, sizeof got);
        }
    }
    /* Fp2 with lazy reduction against qr_fp2_mul */
    uint64_t e[32][4];
    int ne;
    const uint64_t one_p[4] = QR_FP_ONE, r2_p[4] = QR_FP_R2;
    s_edges(e, &ne, s_p, one_p, r2_p);
    const int pick[6] = {0, 1, 3, 4, 6, 14}; /* 0, 1, m - 1, m - 2, big limbs */
    for (int k = 0; k < 6 * 6 * 6 * 6 + 20000; k++) {
        qr_fp2_t a, b, want, got;
        if (k < 6 * 6 * 6 * 6) {
            memcpy(a.c0.l, e[pick[k % 6]], 32);
            memcpy(a.c1.l, e[pick[k / 6 % 6]], 32);
            memcpy(b.c0.l, e[pick[k / 36 % 6]], 32);
            memcpy(b.c1.l, e[pick[k / 216]], 32);
        } else {
            s_rand_fp2(&a);
            s_rand_fp2(&b);
        }
        qr_fp2_mul(&want, &a, &b);
        qr_zk_fp2_mul_adx(got.c0.l, got.c1.l, a.c0.l, a.c1.l, b.c0.l, b.c1.l, &qr_zk_adx_fp_q);
        assert_memory_equal(&got, &want, sizeof got);
        got = a; /* outputs over the first operand, then the second */
        qr_zk_fp2_mul_adx(got.c0.l, got.c1.l, got.c0.l, got.c1.l, b.c0.l, b.c1.l, &qr_zk_adx_fp_q);
        assert_memory_equal(&got, &want, sizeof got);
        got = b;
        qr_zk_fp2_mul_adx(got.c0.l, got.c1.l, a.c0.l, a.c1.l, got.c0.l, got.c1.l, &qr_zk_adx_fp_q);
        assert_memory_equal(&got, &want, sizeof got);
    }
#else
    print_message("no assembly in this build\n");
#endif
}

/* qr_fp_pow / qr_fr_pow (a fixed 4-bit window) against square-and-multiply
 * written here, for random exponents and ones whose nibbles are all 0, all
 * 15 or alternate */
static void test_pow(void **state)
{
    (void)state;
    for (int k = 0; k < 60; k++) {
        uint64_t e[4];
        for (int i = 0; i < 4; i++)
            e[i] = s_rand64();
        if (k == 0)
            memset(e, 0, sizeof e);
        if (k == 1)
            memset(e, 0xff, sizeof e);
        if (k == 2)
            e[0] = 1, e[1] = e[2] = e[3] = 0;
        if (k == 3)
            e[0] = e[1] = e[2] = e[3] = 0xf0f0f0f00f0f0f0full;
        qr_fp_t a, want, got;
        qr_fr_t b, wantr, gotr;
        s_rand_fp(&a);
        s_rand_fr(&b);
        qr_fp_one(&want);
        qr_fr_one(&wantr);
        for (int i = 255; i >= 0; i--) {
            qr_fp_sqr(&want, &want);
            qr_fr_sqr(&wantr, &wantr);
            if ((e[i / 64] >> (i % 64)) & 1) {
                qr_fp_mul(&want, &want, &a);
                qr_fr_mul(&wantr, &wantr, &b);
            }
        }
        qr_fp_pow(&got, &a, e);
        qr_fr_pow(&gotr, &b, e);
        assert_true(qr_fp_eq(&got, &want));
        assert_true(qr_fr_eq(&gotr, &wantr));
    }
}

/* the reference tests once more on the other multiplication: portable when
 * the assembly is the default, and back afterwards */
static bool s_was_adx;

static int s_portable_setup(void **state)
{
    (void)state;
    s_was_adx = strcmp(qr_zk_fmul_name(), "mulx-adx") == 0;
    return qr_zk_fmul_select(false);
}

static int s_portable_teardown(void **state)
{
    (void)state;
    return qr_zk_fmul_select(s_was_adx);
}

#define PORTABLE(t) cmocka_unit_test_setup_teardown(t, s_portable_setup, s_portable_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constants),
        cmocka_unit_test(test_mul_reference),
        cmocka_unit_test(test_axioms),
        cmocka_unit_test(test_inverse),
        cmocka_unit_test(test_sqrt),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_decimal),
        cmocka_unit_test(test_fp2),
        cmocka_unit_test(test_fp6_fp12),
        cmocka_unit_test(test_frobenius),
        cmocka_unit_test(test_pow),
        cmocka_unit_test(test_fmul_paths),
        cmocka_unit_test(test_lazy_paths),
        PORTABLE(test_pow),
        PORTABLE(test_mul_reference),
        PORTABLE(test_axioms),
        PORTABLE(test_inverse),
        PORTABLE(test_fp2),
        PORTABLE(test_fp6_fp12),
    };
    print_message("field multiplication: %s\n", qr_zk_fmul_name());
    return cmocka_run_group_tests(tests, NULL, NULL);
}
