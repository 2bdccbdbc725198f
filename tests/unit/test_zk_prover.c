/* common/zk: the Groth16 prover end to end on keys from a known-secret
 * setup (g16_toy.c, the snarkjs key layout computed from the definitions):
 * proofs of satisfying witnesses pass the pairing equation
 *   e(-A, B) e(alpha, beta) e(L, gamma) e(C, delta) == 1
 * checked here directly with qr_bn254_pairing_check, proofs of wrong
 * witnesses fail it, and malformed input is refused with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <stdio.h>

#include "bn254_pairing.h"
#include "g16_json.h"
#include "g16_toy.h"
#include "prover.h"
#include "verify.h"
#include "wtns.h"
#include "zkey.h"

/* The pairing equation with L = ic_0 + sum pub_i ic_i */
static bool s_verify(const qr_g16_vk_t *vk, const qr_fr_t *pub, const qr_g16_proof_t *p)
{
    qr_g1_t l, t, ic;
    qr_g1_from_affine(&l, &vk->ic[0]);
    for (uint32_t i = 0; i < vk->n_public; i++) {
        qr_g1_from_affine(&ic, &vk->ic[i + 1]);
        qr_g1_mul_fr(&t, &ic, &pub[i]);
        qr_g1_add(&l, &l, &t);
    }
    qr_g1_affine_t P[4];
    qr_g2_affine_t Q[4];
    P[0] = p->a;
    qr_fp_neg(&P[0].y, &P[0].y);
    Q[0] = p->b;
    P[1] = vk->alpha1;
    Q[1] = vk->beta2;
    qr_g1_to_affine(&P[2], &l);
    Q[2] = vk->gamma2;
    P[3] = p->c;
    Q[3] = vk->delta2;
    return qr_g1_affine_on_curve(&p->a) && qr_g1_affine_on_curve(&p->c) &&
           qr_g2_affine_on_curve(&p->b) && qr_bn254_pairing_check(P, Q, 4);
}

/* x^3 + x + 5 = out, the circom tutorial circuit: signals
 * 0: 1, 1: out (public), 2: x, 3: x^2, 4: x^3, 5: x^3 + x */
static const uint32_t s_cubic_rows[][3][2] = {
    /* A (signal, coef), B, C; coef 0 = absent */
    {{2, 1}, {2, 1}, {3, 1}},
    {{3, 1}, {2, 1}, {4, 1}},
};

static void s_cubic(qr_g16_toy_r1cs_t *cs, qr_g16_toy_term_t *t, qr_fr_t *w, uint64_t x)
{
    size_t k = 0;
    qr_fr_t one, five;
    qr_fr_one(&one);
    qr_fr_from_u64(&five, 5);
    for (uint32_t r = 0; r < 2; r++)
        for (uint32_t m = 0; m < 3; m++) {
            t[k].matrix = m;
            t[k].constraint = r;
            t[k].signal = s_cubic_rows[r][m][0];
            qr_fr_from_u64(&t[k].value, s_cubic_rows[r][m][1]);
            k++;
        }
    /* (x^3 + x) * 1 = s5 */
    t[k++] = (qr_g16_toy_term_t){0, 2, 4, one};
    t[k++] = (qr_g16_toy_term_t){0, 2, 2, one};
    t[k++] = (qr_g16_toy_term_t){1, 2, 0, one};
    t[k++] = (qr_g16_toy_term_t){2, 2, 5, one};
    /* (s5 + 5) * 1 = out */
    t[k++] = (qr_g16_toy_term_t){0, 3, 5, one};
    t[k++] = (qr_g16_toy_term_t){0, 3, 0, five};
    t[k++] = (qr_g16_toy_term_t){1, 3, 0, one};
    t[k++] = (qr_g16_toy_term_t){2, 3, 1, one};
    cs->n_vars = 6;
    cs->n_public = 1;
    cs->n_constraints = 4;
    cs->terms = t;
    cs->n_terms = k;
    qr_fr_one(&w[0]);
    qr_fr_from_u64(&w[2], x);
    qr_fr_from_u64(&w[3], x * x);
    qr_fr_from_u64(&w[4], x * x * x);
    qr_fr_from_u64(&w[5], x * x * x + x);
    qr_fr_from_u64(&w[1], x * x * x + x + 5);
}

static void test_cubic(void **state)
{
    (void)state;
    qr_g16_toy_r1cs_t cs;
    qr_g16_toy_term_t t[16];
    qr_fr_t w[6];
    s_cubic(&cs, t, w, 3);
    assert_true(qr_g16_toy_satisfied(&cs, w));
    qr_g16_toy_secrets_t sec;
    qr_g16_toy_secrets(&sec, 42);
    char err[256] = "";
    qr_g16_toy_t *key = qr_g16_toy_setup(&cs, &sec, 1, err, sizeof err);
    assert_non_null(key);
    assert_int_equal(key->pk.domain_size, 8); /* 4 rows + 2 binding rows */
    qr_fr_t r, s;
    qr_fr_from_u64(&r, 7);
    qr_fr_from_u64(&s, 11);
    qr_g16_proof_t p;
    assert_int_equal(qr_g16_prove_rs(&key->pk, w, 6, &r, &s, 1, &p, err, sizeof err), 0);
    assert_true(s_verify(&key->vk, &w[1], &p));
    qr_fr_t bad_pub;
    qr_fr_from_u64(&bad_pub, 36);
    assert_false(s_verify(&key->vk, &bad_pub, &p));
    /* r = s = 0 is still a valid proof (not zero-knowledge, but sound) */
    qr_fr_t z;
    qr_fr_zero(&z);
    assert_int_equal(qr_g16_prove_rs(&key->pk, w, 6, &z, &z, 2, &p, err, sizeof err), 0);
    assert_true(s_verify(&key->vk, &w[1], &p));
    /* random r, s from the OS: valid, and two proofs differ */
    qr_g16_proof_t p2;
    assert_int_equal(qr_g16_prove(&key->pk, w, 6, 0, &p, err, sizeof err), 0);
    assert_int_equal(qr_g16_prove(&key->pk, w, 6, 0, &p2, err, sizeof err), 0);
    assert_true(s_verify(&key->vk, &w[1], &p));
    assert_true(s_verify(&key->vk, &w[1], &p2));
    assert_false(qr_g1_affine_eq(&p.a, &p2.a));
    /* a witness that breaks a constraint (x^2 wrong, out consistent with
     * the public input): the prover cannot tell, the proof fails */
    qr_fr_t wb[6];
    memcpy(wb, w, sizeof wb);
    qr_fr_from_u64(&wb[3], 10);
    assert_false(qr_g16_toy_satisfied(&cs, wb));
    assert_int_equal(qr_g16_prove_rs(&key->pk, wb, 6, &r, &s, 1, &p, err, sizeof err), 0);
    assert_false(s_verify(&key->vk, &wb[1], &p));
    qr_g16_toy_destroy(&key);
    assert_null(key);
    qr_g16_toy_destroy(&key);
}

static void test_refusals(void **state)
{
    (void)state;
    qr_g16_toy_r1cs_t cs;
    qr_g16_toy_term_t t[16];
    qr_fr_t w[7];
    s_cubic(&cs, t, w, 4);
    qr_g16_toy_secrets_t sec;
    qr_g16_toy_secrets(&sec, 43);
    char err[256] = "";
    qr_g16_toy_t *key = qr_g16_toy_setup(&cs, &sec, 1, err, sizeof err);
    assert_non_null(key);
    qr_g16_proof_t p;
    assert_int_equal(qr_g16_prove(&key->pk, w, 5, 1, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "witness has 5 values, the key wants 6"));
    assert_int_equal(qr_g16_prove(&key->pk, w, 7, 1, &p, err, sizeof err), -1);
    assert_int_equal(qr_g16_prove(&key->pk, NULL, 6, 1, &p, err, sizeof err), -1);
    qr_fr_t w0 = w[0];
    qr_fr_from_u64(&w[0], 2);
    assert_int_equal(qr_g16_prove(&key->pk, w, 6, 1, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "witness[0] is not 1"));
    w[0] = w0;
    assert_int_equal(qr_g16_prove_rs(&key->pk, w, 6, NULL, NULL, 1, &p, err, sizeof err), -1);
    /* a corrupt key: coefficient pointing past the witness */
    key->pk.coefs[0].signal = 6;
    assert_int_equal(qr_g16_prove(&key->pk, w, 6, 1, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "out of range"));
    key->pk.coefs[0].signal = 2;
    key->pk.domain_size = 12;
    assert_int_equal(qr_g16_prove(&key->pk, w, 6, 1, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "domain size"));
    key->pk.domain_size = 8;
    assert_int_equal(qr_g16_prove(&key->pk, w, 6, 1, &p, err, sizeof err), 0);
    assert_true(s_verify(&key->vk, &w[1], &p));
    assert_int_equal(qr_g16_prove(NULL, w, 6, 1, &p, err, sizeof err), -1);
    qr_g16_toy_destroy(&key);
    /* setup refuses bad input */
    t[0].signal = 99;
    assert_null(qr_g16_toy_setup(&cs, &sec, 1, err, sizeof err));
    t[0].signal = 2;
    qr_fr_zero(&sec.delta);
    assert_null(qr_g16_toy_setup(&cs, &sec, 1, err, sizeof err));
}

/* the synthetic chain circuit at sizes where the MSMs use the Jacobian and
 * the batched paths, one and two threads, more public rows than one */
static void s_chain(uint32_t n, int threads)
{
    qr_g16_toy_r1cs_t cs;
    qr_g16_toy_term_t *t;
    qr_fr_t *w;
    assert_int_equal(qr_g16_toy_circuit(n, 1000 + n, &cs, &t, &w), 0);
    assert_true(qr_g16_toy_satisfied(&cs, w));
    qr_g16_toy_secrets_t sec;
    qr_g16_toy_secrets(&sec, n);
    char err[256] = "";
    qr_g16_toy_t *key = qr_g16_toy_setup(&cs, &sec, 2, err, sizeof err);
    assert_non_null(key);
    qr_g16_proof_t p;
    qr_g16_timing_t tm;
    assert_int_equal(qr_g16_prove_timed(&key->pk, w, cs.n_vars, NULL, NULL, threads, &tm, &p,
                                        err, sizeof err),
                     0);
    assert_true(tm.total > 0 && tm.msm_g1 > 0);
    assert_true(s_verify(&key->vk, &w[1], &p));
    /* flip one private value: fails */
    qr_fr_t one;
    qr_fr_one(&one);
    qr_fr_add(&w[n / 2], &w[n / 2], &one);
    assert_int_equal(qr_g16_prove(&key->pk, w, cs.n_vars, threads, &p, err, sizeof err), 0);
    assert_false(s_verify(&key->vk, &w[1], &p));
    qr_g16_toy_destroy(&key);
    free(t);
    free(w);
}

static void test_chain(void **state)
{
    (void)state;
    s_chain(2, 1);
    s_chain(1000, 2);
    s_chain(20000, 2);
}

/* snarkjs fixtures (tests/scripts/zk_fixtures.sh: circom circuits, a real
 * ceremony, snarkjs's .zkey and .wtns): our proof of snarkjs's witness under
 * snarkjs's key verifies against snarkjs's verification_key.json, with the
 * JSON verifier (verify.c) and with the pairing equation above, and the
 * public signals match snarkjs's public.json.  QR_ZK_FIXTURES names the
 * fixture folder; without it (or with none built) the test skips. */
static void test_snarkjs_fixtures(void **state)
{
    (void)state;
    const char *dir = getenv("QR_ZK_FIXTURES");
    if (!dir || !*dir) {
        skip();
        return;
    }
    const char *names[] = {"mul100", "pow5_1000", "mul4000"};
    int done = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char zp[1024], wp[1024], vp[1024], pp[1024], err[512] = "";
        snprintf(zp, sizeof zp, "%s/%s/circuit.zkey", dir, names[i]);
        snprintf(wp, sizeof wp, "%s/%s/witness.wtns", dir, names[i]);
        snprintf(vp, sizeof vp, "%s/%s/verification_key.json", dir, names[i]);
        snprintf(pp, sizeof pp, "%s/%s/public.json", dir, names[i]);
        FILE *f = fopen(zp, "rb");
        if (!f)
            continue;
        fclose(f);
        qr_g16_pk_t *pk = qr_zkey_load(zp, 0, err, sizeof err);
        if (!pk)
            fail_msg("%s", err);
        qr_wtns_t *wt = qr_wtns_load(wp, err, sizeof err);
        if (!wt)
            fail_msg("%s", err);
        qr_g16_vk_t *vk = qr_g16_vk_load(vp, err, sizeof err);
        if (!vk)
            fail_msg("%s", err);
        qr_fr_t *pub = NULL;
        uint32_t npub = 0;
        if (qr_g16_public_load(&pub, &npub, pp, err, sizeof err))
            fail_msg("%s", err);
        assert_int_equal(npub, pk->n_public);
        for (uint32_t k = 0; k < npub; k++)
            assert_true(qr_fr_eq(&pub[k], &wt->values[k + 1]));
        qr_g16_proof_t p;
        if (qr_g16_prove(pk, wt->values, wt->n, 2, &p, err, sizeof err))
            fail_msg("%s: %s", names[i], err);
        assert_true(qr_g16_verify(vk, pub, npub, &p));
        assert_true(s_verify(vk, pub, &p));
        /* and a wrong public input is refused */
        qr_fr_t one;
        qr_fr_one(&one);
        qr_fr_add(&pub[0], &pub[0], &one);
        assert_false(qr_g16_verify(vk, pub, npub, &p));
        free(pub);
        qr_g16_vk_destroy(&vk);
        qr_wtns_destroy(&wt);
        qr_g16_pk_destroy(&pk);
        done++;
    }
    if (done == 0)
        skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cubic),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_snarkjs_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
