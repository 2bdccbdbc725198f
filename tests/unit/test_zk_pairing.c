/* common/zk: the optimal ate pairing.  Known answers from the EIP-197
 * precompile vectors (go-ethereum core/vm/testdata/precompiles/
 * bn256Pairing.json: jeff1-6, one_point, two_point_match_2-4), the rest by
 * bilinearity, non-degeneracy and the order of GT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "bn254_pairing.h"
#include "zk_rand.h"

static uint64_t s_seed = 0xfeedface87654321ull;

static void s_rand_fr(qr_fr_t *a)
{
    zk_rand_fr(a, &s_seed);
}

static void s_hex(uint8_t *out, const char *hex, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* the G2 generator, EIP-197 order */
#define G2GEN                                                                                      \
    "198e9393920d483a7260bfb731fb5d25f1aa493335a9e71297e485b7aef312c2"                             \
    "1800deef121f1e76426a00665e5c4479674322d4f75edadd46debd5cd992f6ed"                             \
    "090689d0585ff075ec9e99ad690c3395bc4b313370b38ef355acdadcd122975b"                             \
    "12c85ea5db8c6deb4aab71808dcb408fe3d1e7690c43d37b4ce6cc0166fa7daa"
/* -G2 */
#define G2NEG                                                                                      \
    "198e9393920d483a7260bfb731fb5d25f1aa493335a9e71297e485b7aef312c2"                             \
    "1800deef121f1e76426a00665e5c4479674322d4f75edadd46debd5cd992f6ed"                             \
    "275dc4a288d1afb3cbb1ac09187524c7db36395df7be3b99e673b13a075a65ec"                             \
    "1d9befcd05a5323e6da4d435f3b617cdb3af83285c2df711ef39c01571827f9d"
#define G1GEN                                                                                      \
    "0000000000000000000000000000000000000000000000000000000000000001"                             \
    "0000000000000000000000000000000000000000000000000000000000000002"

typedef struct {
    const char *name, *in;
    bool want;
} s_pvec_t;

static const s_pvec_t s_vecs[] = {
    {"jeff1",
     "1c76476f4def4bb94541d57ebba1193381ffa7aa76ada664dd31c16024c43f593034dd2920f673e204fee2811c67"
     "8745fc819b55d3e9d294e45c9b03a76aef41209dd15ebff5d46c4bd888e51a93cf99a7329636c63514396b4a4520"
     "03a35bf704bf11ca01483bfa8b34b43561848d28905960114c8ac04049af4b6315a416782bb8324af6cfc93537a2"
     "ad1a445cfd0ca2a71acd7ac41fadbf933c2a51be344d120a2a4cf30c1bf9845f20c6fe39e07ea2cce61f0c9bb048"
     "165fe5e4de877550111e129f1cf1097710d41c4ac70fcdfa5ba2023c6ff1cbeac322de49d1b6df7c2032c61a830e"
     "3c17286de9462bf242fca2883585b93870a73853face6a6bf411" G2GEN,
     true},
    {"jeff2",
     "2eca0c7238bf16e83e7a1e6c5d49540685ff51380f309842a98561558019fc0203d3260361bb8451de5ff5ecd17f"
     "010ff22f5c31cdf184e9020b06fa5997db841213d2149b006137fcfb23036606f848d638d576a120ca981b5b1a5f"
     "9300b3ee2276cf730cf493cd95d64677bbb75fc42db72513a4c1e387b476d056f80aa75f21ee6226d31426322afc"
     "da621464d0611d226783262e21bb3bc86b537e986237096df1f82dff337dd5972e32a8ad43e28a78a96a823ef1cd"
     "4debe12b6552ea5f06967a1237ebfeca9aaae0d6d0bab8e28c198c5a339ef8a2407e31cdac516db922160fa257a5"
     "fd5b280642ff47b65eca77e626cb685c84fa6d3b6882a283ddd1" G2GEN,
     true},
    {"jeff3",
     "0f25929bcb43d5a57391564615c9e70a992b10eafa4db109709649cf48c50dd216da2f5cb6be7a0aa72c440c53c9"
     "bbdfec6c36c7d515536431b3a865468acbba2e89718ad33c8bed92e210e81d1853435399a271913a6520736a4729"
     "cf0d51eb01a9e2ffa2e92599b68e44de5bcf354fa2642bd4f26b259daa6f7ce3ed57aeb314a9a87b789a58af499b"
     "314e13c3d65bede56c07ea2d418d6874857b70763713178fb49a2d6cd347dc58973ff49613a20757d0fcc22079f9"
     "abd10c3baee245901b9e027bd5cfc2cb5db82d4dc9677ac795ec500ecd47deee3b5da006d6d049b811d7511c7815"
     "8de484232fc68daf8a45cf217d1c2fae693ff5871e8752d73b21" G2GEN,
     true},
    {"jeff4",
     "2f2ea0b3da1e8ef11914acf8b2e1b32d99df51f5f4f206fc6b947eae860eddb6068134ddb33dc888ef446b648d72"
     "338684d678d2eb2371c61a50734d78da4b7225f83c8b6ab9de74e7da488ef02645c5a16a6652c3c71a15dc37fe3a"
     "5dcb7cb122acdedd6308e3bb230d226d16a105295f523a8a02bfc5e8bd2da135ac4c245d065bbad92e7c4e31bf37"
     "57f1fe7362a63fbfee50e7dc68da116e67d600d9bf6806d302580dc0661002994e7cd3a7f224e7ddc27802777486"
     "bf80f40e4ca3cfdb186bac5188a98c45e6016873d107f5cd131f3a3e339d0375e58bd6219347b008122ae2b09e53"
     "9e152ec5364e7e2204b03d11d3caa038bfc7cd499f8176aacbee1f39e4e4afc4bc74790a4a028aff2c3d2538731f"
     "b755edefd8cb48d6ea589b5e283f150794b6736f670d6a1033f9b46c6f5204f50813eb85c8dc4b59db1c5d39140d"
     "97ee4d2b36d99bc49974d18ecca3e7ad51011956051b464d9e27d46cc25e0764bb98575bd466d32db7b15f582b2d"
     "5c452b36aa394b789366e5e3ca5aabd415794ab061441e51d01e94640b7e3084a07e02c78cf3103c542bc5b29866"
     "9f211b88da1679b0b64a63b7e0e7bfe52aae524f73a55be7fe70c7e9bfc94b4cf0da1213d2149b006137fcfb2303"
     "6606f848d638d576a120ca981b5b1a5f9300b3ee2276cf730cf493cd95d64677bbb75fc42db72513a4c1e387b476"
     "d056f80aa75f21ee6226d31426322afcda621464d0611d226783262e21bb3bc86b537e986237096df1f82dff337d"
     "d5972e32a8ad43e28a78a96a823ef1cd4debe12b6552ea5f",
     true},
    {"jeff5",
     "20a754d2071d4d53903e3b31a7e98ad6882d58aec240ef981fdf0a9d22c5926a29c853fcea789887315916bbeb89"
     "ca37edb355b4f980c9a12a94f30deeed30211213d2149b006137fcfb23036606f848d638d576a120ca981b5b1a5f"
     "9300b3ee2276cf730cf493cd95d64677bbb75fc42db72513a4c1e387b476d056f80aa75f21ee6226d31426322afc"
     "da621464d0611d226783262e21bb3bc86b537e986237096df1f82dff337dd5972e32a8ad43e28a78a96a823ef1cd"
     "4debe12b6552ea5f1abb4a25eb9379ae96c84fff9f0540abcfc0a0d11aeda02d4f37e4baf74cb0c11073b3ff2cdb"
     "b38755f8691ea59e9606696b3ff278acfc098fa8226470d03869217cee0a9ad79a4493b5253e2e4e3a39fc2df384"
     "19f230d341f60cb064a0ac290a3d76f140db8418ba512272381446eb73958670f00cf46f1d9e64cba057b53c26f6"
     "4a8ec70387a13e41430ed3ee4a7db2059cc5fc13c067194bcc0cb49a98552fd72bd9edb657346127da132e5b82ab"
     "908f5816c826acb499e22f2412d1a2d70f25929bcb43d5a57391564615c9e70a992b10eafa4db109709649cf48c5"
     "0dd2198a1f162a73261f112401aa2db79c7dab1533c9935c77290a6ce3b191f2318d" G2GEN,
     true},
    {"jeff6",
     "1c76476f4def4bb94541d57ebba1193381ffa7aa76ada664dd31c16024c43f593034dd2920f673e204fee2811c67"
     "8745fc819b55d3e9d294e45c9b03a76aef41209dd15ebff5d46c4bd888e51a93cf99a7329636c63514396b4a4520"
     "03a35bf704bf11ca01483bfa8b34b43561848d28905960114c8ac04049af4b6315a416782bb8324af6cfc93537a2"
     "ad1a445cfd0ca2a71acd7ac41fadbf933c2a51be344d120a2a4cf30c1bf9845f20c6fe39e07ea2cce61f0c9bb048"
     "165fe5e4de877550111e129f1cf1097710d41c4ac70fcdfa5ba2023c6ff1cbeac322de49d1b6df7c103188585e23"
     "64128fe25c70558f1560f4f9350baf3959e603cc91486e110936" G2GEN,
     false},
    {"empty_data", "", true},
    {"one_point", G1GEN G2GEN, false},
    {"two_point_match_2", G1GEN G2GEN G1GEN G2NEG, true},
    {"two_point_match_3",
     G1GEN
     "203e205db4f19b37b60121b83a7333706db86431c6d835849957ed8c3928ad7927dc7234fd11d3e8c36c59277c"
     "3e6f149d5cd3cfa9a62aee49f8130962b4b3b9195e8aa5b7827463722b8c153931579d3505566b4edf48d498"
     "e185f0509de15204bb53b8977e5f92a0bc372742c4830944a59b4fe6b1c0466e2a6dad122b5d2e"
     "030644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd31a76dae6d3272396d0cbe61f"
     "ced2bc532edac647851e3ac53ce1cc9c7e645a83" G2GEN,
     true},
    {"two_point_match_4",
     "105456a333e6d636854f987ea7bb713dfd0ae8371a72aea313ae0c32c0bf10160cf031d41b41557f3e7e3ba0c51b"
     "ebe5da8e6ecd855ec50fc87efcdeac168bcc0476be093a6d2b4bbf907172049874af11e1b6267606e00804d3ff00"
     "37ec57fd3010c68cb50161b7d1d96bb71edfec9880171954e56871abf3d93cc94d745fa114c059d74e5b6c4ec14a"
     "e5864ebe23a71781d86c29fb8fb6cce94f70d3de7a2101b33461f39d9e887dbb100f170a2345dde3c07e256d1dfa"
     "2b657ba5cd030427" G1GEN "1a2c3013d2ea92e13c800cde68ef56a294b883f6ac35d25f587c09b1b3c635f729"
     "0158a80cd3d66530f74dc94c94adb88f5cdb481acca997b6e60071f08a115f2f997f3dbd66a7afe07fe7862ce239"
     "edba9e05c5afff7f8a1259c9733b2dfbb929d1691530ca701b4a106054688728c9972c8512e9789e9567aae23e30"
     "2ccd75",
     true},
};

static void test_eip197(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof s_vecs / sizeof s_vecs[0]; k++) {
        size_t len = strlen(s_vecs[k].in);
        assert_int_equal(len % 384, 0);
        size_t n = len / 384;
        qr_g1_affine_t P[4];
        qr_g2_affine_t Q[4];
        assert_true(n <= 4);
        for (size_t i = 0; i < n; i++) {
            uint8_t b[192];
            s_hex(b, s_vecs[k].in + 384 * i, 192);
            assert_int_equal(qr_g1_from_be64(&P[i], b), QR_ZK_OK);
            assert_int_equal(qr_g2_from_be128(&Q[i], b + 64), QR_ZK_OK);
        }
        if (qr_bn254_pairing_check(P, Q, n) != s_vecs[k].want)
            fail_msg("%s", s_vecs[k].name);
    }
}

static void s_gens(qr_g1_t *g, qr_g2_t *h)
{
    qr_g1_affine_t a;
    qr_g2_affine_t b;
    qr_g1_generator(&a);
    qr_g2_generator(&b);
    qr_g1_from_affine(g, &a);
    qr_g2_from_affine(h, &b);
}

static void test_bilinear(void **state)
{
    (void)state;
    qr_g1_t g, p;
    qr_g2_t h, q;
    qr_g1_affine_t ga, pa;
    qr_g2_affine_t ha, qa;
    qr_fp12_t e, e1, e2;
    s_gens(&g, &h);
    qr_g1_to_affine(&ga, &g);
    qr_g2_to_affine(&ha, &h);
    /* non-degenerate, and of order r */
    qr_bn254_pairing(&e, &ga, &ha);
    assert_false(qr_fp12_is_one(&e));
    const uint64_t r[4] = QR_FR_MOD;
    qr_fp12_pow(&e1, &e, r, 4);
    assert_true(qr_fp12_is_one(&e1));
    for (int k = 0; k < 2; k++) {
        qr_fr_t a, b, ab;
        s_rand_fr(&a);
        s_rand_fr(&b);
        qr_fr_mul(&ab, &a, &b);
        qr_g1_mul_fr(&p, &g, &a);
        qr_g2_mul_fr(&q, &h, &b);
        qr_g1_to_affine(&pa, &p);
        qr_g2_to_affine(&qa, &q);
        /* e(aP, bQ) = e(P, Q)^(ab) */
        qr_bn254_pairing(&e1, &pa, &qa);
        uint64_t abv[4];
        qr_fr_to_canonical(abv, &ab);
        qr_fp12_pow(&e2, &e, abv, 4);
        assert_true(qr_fp12_eq(&e1, &e2));
        /* = e(abP, Q) = e(P, abQ) */
        qr_g1_mul_fr(&p, &g, &ab);
        qr_g1_to_affine(&pa, &p);
        qr_bn254_pairing(&e2, &pa, &ha);
        assert_true(qr_fp12_eq(&e1, &e2));
        qr_g2_mul_fr(&q, &h, &ab);
        qr_g2_to_affine(&qa, &q);
        qr_bn254_pairing(&e2, &ga, &qa);
        assert_true(qr_fp12_eq(&e1, &e2));
    }
    /* e(P, Q) e(P', Q) = e(P + P', Q) */
    qr_fr_t a, b;
    s_rand_fr(&a);
    s_rand_fr(&b);
    qr_g1_t p1, p2, ps;
    qr_g1_mul_fr(&p1, &g, &a);
    qr_g1_mul_fr(&p2, &g, &b);
    qr_g1_add(&ps, &p1, &p2);
    qr_g1_affine_t a1, a2, as;
    qr_g1_to_affine(&a1, &p1);
    qr_g1_to_affine(&a2, &p2);
    qr_g1_to_affine(&as, &ps);
    qr_bn254_pairing(&e1, &a1, &ha);
    qr_bn254_pairing(&e2, &a2, &ha);
    qr_fp12_mul(&e1, &e1, &e2);
    qr_bn254_pairing(&e2, &as, &ha);
    assert_true(qr_fp12_eq(&e1, &e2));
}

/* e(alpha, beta) against vk_alphabeta_12 of a snarkjs verification key
 * (iden3/go-circuits, the KYC circuit's key): snarkjs JSON writes Fp2 as
 * [c0, c1], G2 as [x, y, [1, 0]] and Fp12 as [[c00, c01, c02], [c10, c11,
 * c12]] in this tower.  Pins the whole pairing, final exponent included. */
static void test_snarkjs_alphabeta(void **state)
{
    (void)state;
    static const char *alpha[2] = {
        "20491192805390485299153009773594534940189261866228447918068658471970481763042",
        "9383485363053290200918347156157836566562967994039712273449902621266178545958"};
    static const char *beta[4] = {
        "6375614351688725206403948262868962793625744043794305715222011528459656738731",
        "4252822878758300859123897981450591353533073413197771768651442665752259397132",
        "10505242626370262277552901082094356697409835680220590971873171140371331206856",
        "21847035105528745403288232691147584728191162732299865338377159692350059136679"};
    static const char *ab[12] = {
        "2029413683389138792403550203267699914886160938906632433982220835551125967885",
        "21072700047562757817161031222997517981543347628379360635925549008442030252106",
        "5940354580057074848093997050200682056184807770593307860589430076672439820312",
        "12156638873931618554171829126792193045421052652279363021382169897324752428276",
        "7898200236362823042373859371574133993780991612861777490112507062703164551277",
        "7074218545237549455313236346927434013100842096812539264420499035217050630853",
        "7077479683546002997211712695946002074877511277312570035766170199895071832130",
        "10093483419865920389913245021038182291233451549023025229112148274109565435465",
        "4595479056700221319381530156280926371456704509942304414423590385166031118820",
        "19831328484489333784475432780421641293929726139240675179672856274388269393268",
        "11934129596455521040620786944827826205713621633706285934057045369193958244500",
        "8037395052364110730298837004334506829870972346962140206007064471173334027475"};
    qr_g1_affine_t a;
    qr_g2_affine_t b;
    qr_fp12_t want, got;
    assert_int_equal(qr_fp_from_dec(&a.x, alpha[0]), 0);
    assert_int_equal(qr_fp_from_dec(&a.y, alpha[1]), 0);
    assert_int_equal(qr_fp_from_dec(&b.x.c0, beta[0]), 0);
    assert_int_equal(qr_fp_from_dec(&b.x.c1, beta[1]), 0);
    assert_int_equal(qr_fp_from_dec(&b.y.c0, beta[2]), 0);
    assert_int_equal(qr_fp_from_dec(&b.y.c1, beta[3]), 0);
    assert_true(qr_g1_affine_on_curve(&a));
    assert_true(qr_g2_affine_on_curve(&b));
    assert_true(qr_g2_in_subgroup(&b));
    qr_fp2_t *c[6] = {&want.c0.c0, &want.c0.c1, &want.c0.c2, &want.c1.c0, &want.c1.c1, &want.c1.c2};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(qr_fp_from_dec(&c[i]->c0, ab[2 * i]), 0);
        assert_int_equal(qr_fp_from_dec(&c[i]->c1, ab[2 * i + 1]), 0);
    }
    qr_bn254_pairing(&got, &a, &b);
    assert_true(qr_fp12_eq(&got, &want));
}

/* The Groth16 verifier's shape: e(-A, B) e(alpha, beta) e(L, gamma)
 * e(C, delta) = 1 for a consistent set, 0 after one change */
static void test_check_groth16_shape(void **state)
{
    (void)state;
    qr_g1_t g;
    qr_g2_t h;
    s_gens(&g, &h);
    qr_fr_t a, b, al, be, ga, de, l, c, t;
    s_rand_fr(&al);
    s_rand_fr(&be);
    s_rand_fr(&ga);
    s_rand_fr(&de);
    s_rand_fr(&l);
    s_rand_fr(&c);
    s_rand_fr(&b);
    /* choose a so that a b = al be + l ga + c de */
    qr_fr_t rhs, x;
    qr_fr_mul(&rhs, &al, &be);
    qr_fr_mul(&x, &l, &ga);
    qr_fr_add(&rhs, &rhs, &x);
    qr_fr_mul(&x, &c, &de);
    qr_fr_add(&rhs, &rhs, &x);
    qr_fr_inv(&t, &b);
    qr_fr_mul(&a, &rhs, &t);
    qr_fr_neg(&a, &a);
    const qr_fr_t *s1[4] = {&a, &al, &l, &c}, *s2[4] = {&b, &be, &ga, &de};
    qr_g1_affine_t P[4];
    qr_g2_affine_t Q[4];
    for (int i = 0; i < 4; i++) {
        qr_g1_t p;
        qr_g2_t q;
        qr_g1_mul_fr(&p, &g, s1[i]);
        qr_g2_mul_fr(&q, &h, s2[i]);
        qr_g1_to_affine(&P[i], &p);
        qr_g2_to_affine(&Q[i], &q);
    }
    assert_true(qr_bn254_pairing_check(P, Q, 4));
    /* a swapped pair of G2 points breaks it */
    qr_g2_affine_t tq = Q[2];
    Q[2] = Q[3];
    Q[3] = tq;
    assert_false(qr_bn254_pairing_check(P, Q, 4));
    Q[3] = Q[2];
    Q[2] = tq;
    /* infinity pairs are neutral */
    qr_g1_affine_t P5[5];
    qr_g2_affine_t Q5[5];
    memcpy(P5, P, sizeof P);
    memcpy(Q5, Q, sizeof Q);
    memset(&P5[4], 0, sizeof P5[4]);
    Q5[4] = Q[0];
    assert_true(qr_bn254_pairing_check(P5, Q5, 5));
    P5[4] = P[0];
    memset(&Q5[4], 0, sizeof Q5[4]);
    assert_true(qr_bn254_pairing_check(P5, Q5, 5));
    assert_true(qr_bn254_pairing_check(NULL, NULL, 0));
}

/* more pairs than one batch of side-by-side Miller loops (16) */
static void test_check_many(void **state)
{
    (void)state;
    enum { N = 19 };
    qr_g1_t g;
    qr_g2_t h;
    s_gens(&g, &h);
    qr_g1_affine_t P[N];
    qr_g2_affine_t Q[N];
    qr_fr_t sum, x, y, xy;
    qr_fr_zero(&sum);
    for (int i = 0; i < N - 1; i++) {
        s_rand_fr(&x);
        s_rand_fr(&y);
        qr_fr_mul(&xy, &x, &y);
        qr_fr_add(&sum, &sum, &xy);
        qr_g1_t p;
        qr_g2_t q;
        qr_g1_mul_fr(&p, &g, &x);
        qr_g2_mul_fr(&q, &h, &y);
        qr_g1_to_affine(&P[i], &p);
        qr_g2_to_affine(&Q[i], &q);
    }
    /* last pair: e(-sum G, H) */
    qr_fr_neg(&sum, &sum);
    qr_g1_t p;
    qr_g1_mul_fr(&p, &g, &sum);
    qr_g1_to_affine(&P[N - 1], &p);
    qr_g2_to_affine(&Q[N - 1], &h);
    assert_true(qr_bn254_pairing_check(P, Q, N));
    qr_fp_add(&P[3].y, &P[3].y, &P[3].y); /* off the curve now: must fail */
    assert_false(qr_bn254_pairing_check(P, Q, N));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eip197),
        cmocka_unit_test(test_bilinear),
        cmocka_unit_test(test_snarkjs_alphabeta),
        cmocka_unit_test(test_check_groth16_shape),
        cmocka_unit_test(test_check_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
