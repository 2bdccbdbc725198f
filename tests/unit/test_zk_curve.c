/* common/zk: G1 and G2.  Known answers from the EIP-196 precompile vectors
 * (go-ethereum core/vm/testdata/precompiles, bn256Add and bn256ScalarMul),
 * the rest through the group laws. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "bn254_curve.h"
#include "zk_rand.h"

static uint64_t s_seed = 0xc0ffee0123456789ull;

static void s_rand_fr(qr_fr_t *a)
{
    zk_rand_fr(a, &s_seed);
}

static void s_rand_fp(qr_fp_t *a)
{
    uint64_t v[4];
    for (int i = 0; i < 4; i++)
        v[i] = zk_rand64(&s_seed);
    v[3] &= 0x0fffffffffffffffull; /* < 2^252 < p */
    qr_fp_from_canonical(a, v);
}

static void s_hex(uint8_t *out, const char *hex, size_t n)
{
    assert_int_equal(strlen(hex), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void s_g1_gen(qr_g1_t *g)
{
    qr_g1_affine_t a;
    qr_g1_generator(&a);
    qr_g1_from_affine(g, &a);
}

static void s_g2_gen(qr_g2_t *g)
{
    qr_g2_affine_t a;
    qr_g2_generator(&a);
    qr_g2_from_affine(g, &a);
}

/* ---- EIP-196 vectors ---- */

typedef struct {
    const char *in, *out;
} s_vec_t;

static const s_vec_t s_add_vecs[] = {
    /* chfast1 */
    {"18b18acfb4c2c30276db5411368e7185b311dd124691610c5d3b74034e093dc9063c909c4720840cb5134cb9f59fa"
     "749755796819658d32efc0d288198f3726607c2b7f58a84bd6145f00c9c2bc0bb1a187f20ff2c92963a88019e7c6a"
     "014eed06614e20c147e940f2d70da3f74c9a17df361706a4485c742bd6788478fa17d7",
     "2243525c5efd4b9c3d3c45ac0ca3fe4dd85e830a4ce6b65fa1eeaee202839703301d1d33be6da8e509df21cc35964"
     "723180eed7532537db9ae5e7d48f195c915"},
    /* chfast2 */
    {"2243525c5efd4b9c3d3c45ac0ca3fe4dd85e830a4ce6b65fa1eeaee202839703301d1d33be6da8e509df21cc35964"
     "723180eed7532537db9ae5e7d48f195c91518b18acfb4c2c30276db5411368e7185b311dd124691610c5d3b74034e"
     "093dc9063c909c4720840cb5134cb9f59fa749755796819658d32efc0d288198f37266",
     "2bd3e6d0f3b142924f5ca7b49ce5b9d54c4703d7ae5648e61d02268b1a0a9fb721611ce0a6af85915e2f1d7030090"
     "9ce2e49dfad4a4619c8390cae66cefdb204"},
    /* cdetrio1: O + O */
    {"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "0000000000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "00000000000000000000000000000000000"},
    /* cdetrio6: O + G */
    {"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "0000010000000000000000000000000000000000000000000000000000000000000002",
     "000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000"
     "00000000000000000000000000000000002"},
    /* cdetrio11: G + G */
    {"000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000"
     "000000000000000000000000000000000020000000000000000000000000000000000000000000000000000000000"
     "0000010000000000000000000000000000000000000000000000000000000000000002",
     "030644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd315ed738c0e0a7c92e7845f96b2ae9"
     "c0a68a6a449e3538fc7ff3ebf7a5a18a2c4"},
    /* cdetrio13 */
    {"17c139df0efee0f766bc0204762b774362e4ded88953a39ce849a8a7fa163fa901e0559bacb160664764a357af8a9"
     "fe70baa9258e0b959273ffc5718c6d4cc7c039730ea8dff1254c0fee9c0ea777d29a9c710b7e616683f194f18c43b"
     "43b869073a5ffcc6fc7a28c30723d6e58ce577356982d65b833a5a5c15bf9024b43d98",
     "15bf2bb17880144b5d1cd2b1f46eff9d617bffd1ca57c37fb5a49bd84e53cf66049c797f9ce0d17083deb32b5e36f"
     "2ea2a212ee036598dd7624c168993d1355f"},
    /* cdetrio14: P + (-P) */
    {"17c139df0efee0f766bc0204762b774362e4ded88953a39ce849a8a7fa163fa901e0559bacb160664764a357af8a9"
     "fe70baa9258e0b959273ffc5718c6d4cc7c17c139df0efee0f766bc0204762b774362e4ded88953a39ce849a8a7fa"
     "163fa92e83f8d734803fc370eba25ed1f6b8768bd6d83887b87165fc2434fe11a830cb",
     "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "00000000000000000000000000000000000"},
};

static const s_vec_t s_mul_vecs[] = {
    /* chfast1 */
    {"2bd3e6d0f3b142924f5ca7b49ce5b9d54c4703d7ae5648e61d02268b1a0a9fb721611ce0a6af85915e2f1d7030090"
     "9ce2e49dfad4a4619c8390cae66cefdb20400000000000000000000000000000000000000000000000011138ce750"
     "fa15c2",
     "070a8d6a982153cae4be29d434e8faef8a47b274a053f5a4ee2a6c9c13c31e5c031b8ce914eba3a9ffb989f9cdd5b"
     "0f01943074bf4f0f315690ec3cec6981afc"},
    /* chfast2: scalar above r */
    {"070a8d6a982153cae4be29d434e8faef8a47b274a053f5a4ee2a6c9c13c31e5c031b8ce914eba3a9ffb989f9cdd5b"
     "0f01943074bf4f0f315690ec3cec6981afc30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d8"
     "7cfd46",
     "025a6f4181d2b4ea8b724290ffb40156eb0adb514c688556eb79cdea0752c2bb2eff3f31dea215f1eb86023a133a9"
     "96eb6300b44da664d64251d05381bb8a02e"},
    /* chfast3 */
    {"025a6f4181d2b4ea8b724290ffb40156eb0adb514c688556eb79cdea0752c2bb2eff3f31dea215f1eb86023a133a9"
     "96eb6300b44da664d64251d05381bb8a02e183227397098d014dc2822db40c0ac2ecbc0b548b438e5469e10460b6c"
     "3e7ea3",
     "14789d0d4a730b354403b5fac948113739e276c23e0258d8596ee72f9cd9d3230af18a63153e0ec25ff9f2951dd3f"
     "a90ed0197bfef6e2a1a62b5095b9d2b4a27"},
    /* cdetrio1: scalar 2^256 - 1 */
    {"1a87b0584ce92f4593d161480614f2989035225609f08058ccfa3d0f940febe31a2f3c951f6dadcc7ee9007dff815"
     "04b0fcd6d7cf59996efdc33d92bf7f9f8f6ffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
     "ffffff",
     "2cde5879ba6f13c0b5aa4ef627f159a3347df9722efce88a9afbb20b763b4c411aa7e43076f6aee272755a7f9b848"
     "32e71559ba0d2e0b17d5f9f01755e5b0d11"},
    /* cdetrio2: scalar r - 1, so -P */
    {"1a87b0584ce92f4593d161480614f2989035225609f08058ccfa3d0f940febe31a2f3c951f6dadcc7ee9007dff815"
     "04b0fcd6d7cf59996efdc33d92bf7f9f8f630644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0"
     "000000",
     "1a87b0584ce92f4593d161480614f2989035225609f08058ccfa3d0f940febe3163511ddc1c3f25d3967453882000"
     "81287b3fd1472d8339d5fecb2eae0830451"},
    /* cdetrio3: scalar 2^128 */
    {"1a87b0584ce92f4593d161480614f2989035225609f08058ccfa3d0f940febe31a2f3c951f6dadcc7ee9007dff815"
     "04b0fcd6d7cf59996efdc33d92bf7f9f8f60000000000000000000000000000000100000000000000000000000000"
     "000000",
     "1051acb0700ec6d42a88215852d582efbaef31529b6fcbc3277b5c1b300f5cf0135b2394bb45ab04b8bd7611bd2df"
     "e1de6a4e6e2ccea1ea1955f577cd66af85b"},
    /* cdetrio4: scalar 9 */
    {"1a87b0584ce92f4593d161480614f2989035225609f08058ccfa3d0f940febe31a2f3c951f6dadcc7ee9007dff815"
     "04b0fcd6d7cf59996efdc33d92bf7f9f8f60000000000000000000000000000000000000000000000000000000000"
     "000009",
     "1dbad7d39dbc56379f78fac1bca147dc8e66de1b9d183c7b167351bfe0aeab742cd757d51289cd8dbd0acf9e673ad"
     "67d0f0a89f912af47ed1be53664f5692575"},
    /* cdetrio5: scalar 1 */
    {"1a87b0584ce92f4593d161480614f2989035225609f08058ccfa3d0f940febe31a2f3c951f6dadcc7ee9007dff815"
     "04b0fcd6d7cf59996efdc33d92bf7f9f8f60000000000000000000000000000000000000000000000000000000000"
     "000001",
     "1a87b0584ce92f4593d161480614f2989035225609f08058ccfa3d0f940febe31a2f3c951f6dadcc7ee9007dff815"
     "04b0fcd6d7cf59996efdc33d92bf7f9f8f6"},
    /* cdetrio6 */
    {"17c139df0efee0f766bc0204762b774362e4ded88953a39ce849a8a7fa163fa901e0559bacb160664764a357af8a9"
     "fe70baa9258e0b959273ffc5718c6d4cc7cffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
     "ffffff",
     "29e587aadd7c06722aabba753017c093f70ba7eb1f1c0104ec0564e7e3e21f6022b1143f6a41008e7755c71c3d00b"
     "6b915d386de21783ef590486d8afa8453b1"},
    /* cdetrio11 */
    {"039730ea8dff1254c0fee9c0ea777d29a9c710b7e616683f194f18c43b43b869073a5ffcc6fc7a28c30723d6e58ce"
     "577356982d65b833a5a5c15bf9024b43d98ffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
     "ffffff",
     "00a1a234d08efaa2616607e31eca1980128b00b415c845ff25bba3afcb81dc00242077290ed33906aeb8e42fd98c4"
     "1bcb9057ba03421af3f2d08cfc441186024"},
    /* cdetrio14: scalar 9 */
    {"039730ea8dff1254c0fee9c0ea777d29a9c710b7e616683f194f18c43b43b869073a5ffcc6fc7a28c30723d6e58ce"
     "577356982d65b833a5a5c15bf9024b43d980000000000000000000000000000000000000000000000000000000000"
     "000009",
     "19f75b9dd68c080a688774a6213f131e3052bd353a304a189d7a2ee367e3c2582612f545fb9fc89fde80fd81c68fc"
     "7dcb27fea5fc124eeda69433cf5c46d2d7f"},
};

static void test_eip196_add(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof s_add_vecs / sizeof s_add_vecs[0]; k++) {
        uint8_t in[128], want[64], got[64];
        s_hex(in, s_add_vecs[k].in, 128);
        s_hex(want, s_add_vecs[k].out, 64);
        qr_g1_affine_t a, b, c;
        assert_int_equal(qr_g1_from_be64(&a, in), QR_ZK_OK);
        assert_int_equal(qr_g1_from_be64(&b, in + 64), QR_ZK_OK);
        qr_g1_t pa, pb, pc;
        qr_g1_from_affine(&pa, &a);
        qr_g1_from_affine(&pb, &b);
        qr_g1_add(&pc, &pa, &pb);
        qr_g1_to_affine(&c, &pc);
        qr_g1_to_be64(got, &c);
        assert_memory_equal(got, want, 64);
        /* mixed addition gives the same */
        qr_g1_add_mixed(&pc, &pa, &b);
        qr_g1_to_affine(&c, &pc);
        qr_g1_to_be64(got, &c);
        assert_memory_equal(got, want, 64);
    }
}

static void test_eip196_mul(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof s_mul_vecs / sizeof s_mul_vecs[0]; k++) {
        uint8_t in[96], want[64], got[64];
        s_hex(in, s_mul_vecs[k].in, 96);
        s_hex(want, s_mul_vecs[k].out, 64);
        qr_g1_affine_t a, c;
        assert_int_equal(qr_g1_from_be64(&a, in), QR_ZK_OK);
        uint64_t e[4];
        for (int i = 0; i < 4; i++) {
            e[i] = 0;
            for (int j = 0; j < 8; j++)
                e[i] = (e[i] << 8) | in[64 + (3 - i) * 8 + j];
        }
        qr_g1_t pa, pc;
        qr_g1_from_affine(&pa, &a);
        qr_g1_mul(&pc, &pa, e);
        qr_g1_to_affine(&c, &pc);
        qr_g1_to_be64(got, &c);
        assert_memory_equal(got, want, 64);
    }
}

static void test_generators(void **state)
{
    (void)state;
    qr_g1_affine_t g1;
    qr_g2_affine_t g2;
    qr_g1_generator(&g1);
    qr_g2_generator(&g2);
    assert_true(qr_g1_affine_on_curve(&g1));
    assert_true(qr_g2_affine_on_curve(&g2));
    assert_true(qr_g2_in_subgroup(&g2));
    /* the G2 generator as EIP-197 encodes it (x_im, x_re, y_im, y_re) */
    static const char *g2hex = "198e9393920d483a7260bfb731fb5d25f1aa493335a9e71297e485b7aef312c2"
                               "1800deef121f1e76426a00665e5c4479674322d4f75edadd46debd5cd992f6ed"
                               "090689d0585ff075ec9e99ad690c3395bc4b313370b38ef355acdadcd122975b"
                               "12c85ea5db8c6deb4aab71808dcb408fe3d1e7690c43d37b4ce6cc0166fa7daa";
    uint8_t b[128], out[128];
    s_hex(b, g2hex, 128);
    qr_g2_to_be128(out, &g2);
    assert_memory_equal(out, b, 128);
    qr_g2_affine_t t;
    assert_int_equal(qr_g2_from_be128(&t, b), QR_ZK_OK);
    assert_true(qr_g2_affine_eq(&t, &g2));
    /* [r] G = O in both groups, [r - 1] G = -G */
    const uint64_t r[4] = QR_FR_MOD;
    uint64_t rm1[4] = {r[0] - 1, r[1], r[2], r[3]};
    qr_g1_t p, q, ng;
    qr_g2_t p2, q2, ng2;
    s_g1_gen(&p);
    qr_g1_mul(&q, &p, r);
    assert_true(qr_g1_is_inf(&q));
    qr_g1_mul(&q, &p, rm1);
    qr_g1_neg(&ng, &p);
    assert_true(qr_g1_eq(&q, &ng));
    s_g2_gen(&p2);
    qr_g2_mul(&q2, &p2, r);
    assert_true(qr_g2_is_inf(&q2));
    qr_g2_mul(&q2, &p2, rm1);
    qr_g2_neg(&ng2, &p2);
    assert_true(qr_g2_eq(&q2, &ng2));
}

static void test_group_law(void **state)
{
    (void)state;
    qr_g1_t g, a, b, c, t, u;
    qr_g2_t h, a2, b2, c2, t2, u2;
    s_g1_gen(&g);
    s_g2_gen(&h);
    for (int k = 0; k < 8; k++) {
        qr_fr_t x, y, z, s;
        s_rand_fr(&x);
        s_rand_fr(&y);
        s_rand_fr(&z);
        qr_g1_mul_fr(&a, &g, &x);
        qr_g1_mul_fr(&b, &g, &y);
        qr_g1_mul_fr(&c, &g, &z);
        /* [x]G + [y]G = [x + y]G */
        qr_g1_add(&t, &a, &b);
        qr_fr_add(&s, &x, &y);
        qr_g1_mul_fr(&u, &g, &s);
        assert_true(qr_g1_eq(&t, &u));
        /* commutative, associative */
        qr_g1_add(&u, &b, &a);
        assert_true(qr_g1_eq(&t, &u));
        qr_g1_add(&t, &t, &c);
        qr_g1_add(&u, &b, &c);
        qr_g1_add(&u, &a, &u);
        assert_true(qr_g1_eq(&t, &u));
        /* [y]([x]G) = [xy]G */
        qr_g1_mul_fr(&t, &a, &y);
        qr_fr_mul(&s, &x, &y);
        qr_g1_mul_fr(&u, &g, &s);
        assert_true(qr_g1_eq(&t, &u));
        /* 2a = a + a, a + O = a, a - a = O, mixed = full */
        qr_g1_dbl(&t, &a);
        qr_g1_add(&u, &a, &a);
        assert_true(qr_g1_eq(&t, &u));
        qr_g1_t inf, na;
        qr_g1_set_inf(&inf);
        qr_g1_add(&t, &a, &inf);
        assert_true(qr_g1_eq(&t, &a));
        qr_g1_neg(&na, &a);
        qr_g1_add(&t, &a, &na);
        assert_true(qr_g1_is_inf(&t));
        qr_g1_affine_t ab;
        qr_g1_to_affine(&ab, &b);
        assert_true(qr_g1_affine_on_curve(&ab));
        qr_g1_add_mixed(&t, &a, &ab);
        qr_g1_add(&u, &a, &b);
        assert_true(qr_g1_eq(&t, &u));
        qr_g1_add_mixed(&t, &b, &ab); /* doubling through the mixed path */
        qr_g1_dbl(&u, &b);
        assert_true(qr_g1_eq(&t, &u));

        /* the same in G2 */
        qr_g2_mul_fr(&a2, &h, &x);
        qr_g2_mul_fr(&b2, &h, &y);
        qr_g2_mul_fr(&c2, &h, &z);
        qr_g2_add(&t2, &a2, &b2);
        qr_fr_add(&s, &x, &y);
        qr_g2_mul_fr(&u2, &h, &s);
        assert_true(qr_g2_eq(&t2, &u2));
        qr_g2_add(&t2, &t2, &c2);
        qr_g2_add(&u2, &b2, &c2);
        qr_g2_add(&u2, &a2, &u2);
        assert_true(qr_g2_eq(&t2, &u2));
        qr_g2_mul_fr(&t2, &a2, &y);
        qr_fr_mul(&s, &x, &y);
        qr_g2_mul_fr(&u2, &h, &s);
        assert_true(qr_g2_eq(&t2, &u2));
        qr_g2_affine_t ab2;
        qr_g2_to_affine(&ab2, &b2);
        assert_true(qr_g2_affine_on_curve(&ab2));
        assert_true(qr_g2_in_subgroup(&ab2));
        qr_g2_add_mixed(&t2, &a2, &ab2);
        qr_g2_add(&u2, &a2, &b2);
        assert_true(qr_g2_eq(&t2, &u2));
        qr_g2_dbl(&t2, &a2);
        qr_g2_add(&u2, &a2, &a2);
        assert_true(qr_g2_eq(&t2, &u2));
        qr_g2_t na2;
        qr_g2_neg(&na2, &a2);
        qr_g2_add(&t2, &a2, &na2);
        assert_true(qr_g2_is_inf(&t2));
        /* psi acts as [p] = [6u^2] on G2 */
        const uint64_t e[4] = QR_BN254_6U2;
        qr_g2_psi(&t2, &a2);
        qr_g2_mul(&u2, &a2, e);
        assert_true(qr_g2_eq(&t2, &u2));
    }
}

/* A random point of the twist (on the curve, almost surely outside G2) */
static void s_twist_point(qr_g2_affine_t *q)
{
    const qr_fp2_t b = QR_FP2_BTWIST;
    for (;;) {
        qr_fp2_t x, y2;
        s_rand_fp(&x.c0);
        s_rand_fp(&x.c1);
        qr_fp2_sqr(&y2, &x);
        qr_fp2_mul(&y2, &y2, &x);
        qr_fp2_add(&y2, &y2, &b);
        if (qr_fp2_sqrt(&q->y, &y2)) {
            q->x = x;
            return;
        }
    }
}

static void test_subgroup(void **state)
{
    (void)state;
    const uint64_t r[4] = QR_FR_MOD;
    /* cofactor h = 2p - r; clearing it lands in G2 */
    const uint64_t p[4] = QR_FP_MOD;
    uint64_t h[4], c = 0, bw = 0;
    for (int i = 0; i < 4; i++) {
        __extension__ unsigned __int128 s = ((unsigned __int128)p[i] << 1) + c;
        h[i] = (uint64_t)s;
        c = (uint64_t)(s >> 64);
    }
    for (int i = 0; i < 4; i++)
        h[i] = qr_zk_sbb(h[i], r[i], &bw);
    for (int k = 0; k < 6; k++) {
        qr_g2_affine_t q, qa;
        s_twist_point(&q);
        assert_true(qr_g2_affine_on_curve(&q));
        qr_g2_t pq, t;
        qr_g2_from_affine(&pq, &q);
        /* the fast check against the definition, [r] Q = O */
        qr_g2_mul(&t, &pq, r);
        assert_false(qr_g2_is_inf(&t));
        assert_false(qr_g2_in_subgroup(&q));
        uint8_t b[128];
        qr_g2_to_be128(b, &q);
        assert_int_equal(qr_g2_from_be128(&qa, b), QR_ZK_ENOTINGROUP);
        qr_g2_to_zkey(b, &q);
        assert_int_equal(qr_g2_from_zkey(&qa, b), QR_ZK_ENOTINGROUP);
        /* [h] Q is in G2 */
        qr_g2_mul(&t, &pq, h);
        qr_g2_to_affine(&qa, &t);
        assert_true(qr_g2_in_subgroup(&qa));
        qr_g2_mul(&t, &t, r);
        assert_true(qr_g2_is_inf(&t));
    }
}

static void test_encodings(void **state)
{
    (void)state;
    qr_g1_t g, a;
    qr_g2_t h, a2;
    s_g1_gen(&g);
    s_g2_gen(&h);
    qr_fr_t x;
    s_rand_fr(&x);
    qr_g1_mul_fr(&a, &g, &x);
    qr_g2_mul_fr(&a2, &h, &x);
    qr_g1_affine_t p, t;
    qr_g2_affine_t q, u;
    qr_g1_to_affine(&p, &a);
    qr_g2_to_affine(&q, &a2);
    uint8_t b1[64], b2[128];
    qr_g1_to_be64(b1, &p);
    assert_int_equal(qr_g1_from_be64(&t, b1), QR_ZK_OK);
    assert_true(qr_g1_affine_eq(&t, &p));
    qr_g1_to_zkey(b1, &p);
    assert_int_equal(qr_g1_from_zkey(&t, b1), QR_ZK_OK);
    assert_true(qr_g1_affine_eq(&t, &p));
    qr_g2_to_be128(b2, &q);
    assert_int_equal(qr_g2_from_be128(&u, b2), QR_ZK_OK);
    assert_true(qr_g2_affine_eq(&u, &q));
    qr_g2_to_zkey(b2, &q);
    assert_int_equal(qr_g2_from_zkey(&u, b2), QR_ZK_OK);
    assert_true(qr_g2_affine_eq(&u, &q));
    /* infinity: all zeros both ways */
    memset(b2, 0, sizeof b2);
    assert_int_equal(qr_g2_from_be128(&u, b2), QR_ZK_OK);
    assert_true(qr_g2_affine_is_inf(&u));
    memset(b1, 0, sizeof b1);
    assert_int_equal(qr_g1_from_zkey(&t, b1), QR_ZK_OK);
    assert_true(qr_g1_affine_is_inf(&t));
    qr_g1_t inf;
    qr_g1_set_inf(&inf);
    qr_g1_to_affine(&t, &inf);
    qr_g1_to_be64(b1, &t);
    for (int i = 0; i < 64; i++)
        assert_int_equal(b1[i], 0);

    /* errors: off the curve, (1, 3) */
    memset(b1, 0, sizeof b1);
    b1[31] = 1;
    b1[63] = 3;
    assert_int_equal(qr_g1_from_be64(&t, b1), QR_ZK_ENOTONCURVE);
    /* a coordinate >= p: G = (1, 2) with y + p, which is 2 mod p */
    static const char *gy_plus_p =
        "0000000000000000000000000000000000000000000000000000000000000001"
        "30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd49";
    s_hex(b1, gy_plus_p, 64);
    assert_int_equal(qr_g1_from_be64(&t, b1), QR_ZK_ENONCANON);
    /* G2 generator with x and y swapped: canonical but not on the twist */
    qr_g2_affine_t g2, sw;
    qr_g2_generator(&g2);
    sw.x = g2.y;
    sw.y = g2.x;
    qr_g2_to_be128(b2, &sw);
    assert_int_equal(qr_g2_from_be128(&u, b2), QR_ZK_ENOTONCURVE);
    /* G2 with the halves of x in the wrong order (the classic EIP-197
     * mistake: c0 first) is off the twist */
    qr_g2_to_be128(b2, &g2);
    uint8_t tmp[32];
    memcpy(tmp, b2, 32);
    memcpy(b2, b2 + 32, 32);
    memcpy(b2 + 32, tmp, 32);
    assert_int_equal(qr_g2_from_be128(&u, b2), QR_ZK_ENOTONCURVE);
    memset(b2, 0xff, 128);
    assert_int_equal(qr_g2_from_be128(&u, b2), QR_ZK_ENONCANON);
    assert_int_equal(qr_g2_from_zkey(&u, b2), QR_ZK_ENONCANON);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eip196_add), cmocka_unit_test(test_eip196_mul),
        cmocka_unit_test(test_generators), cmocka_unit_test(test_group_law),
        cmocka_unit_test(test_subgroup),   cmocka_unit_test(test_encodings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
