/* Groth16 against the reference: snarkjs's proofs pass our verifier, our
 * proofs pass `snarkjs groth16 verify`, and tampered proofs or wrong public
 * signals fail both; quarry-verify's exit codes; quarry-prove.
 *
 * Fixtures from tests/scripts/zk_fixtures.sh (QR_ZK_FIXTURES); snarkjs's
 * CLI at QR_ZK_SNARKJS, run with node; quarry-verify at QR_ZK_VERIFY_BIN,
 * quarry-prove at QR_ZK_PROVE_BIN (when the prover is built). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "g16_json.h"
#include "verify.h"
#include "wtns.h"
#include "zkey.h"
#ifdef QR_ZK_HAVE_PROVER
#include "prover.h"
#endif

static const char *const s_circuits[] = {"mul100", "pow5_1000", "mul4000", "mixed65k"};
#define N_CIRCUITS (sizeof s_circuits / sizeof s_circuits[0])

static const char *s_dir, *s_snarkjs, *s_verify_bin;
static char s_tmp[256];

static char *s_path(const char *circuit, const char *file)
{
    static char buf[8][1024];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, sizeof buf[0], "%s/%s/%s", s_dir, circuit, file);
    return b;
}

static char *s_tmp_path(const char *file)
{
    static char buf[8][1024];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, sizeof buf[0], "%s/%s", s_tmp, file);
    return b;
}

/* Exit status of a shell command, output to a log in the temp folder */
static int s_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof cmd - 64);
    snprintf(cmd + n, sizeof cmd - (size_t)n, " >>'%s/run.log' 2>&1", s_tmp);
    int st = system(cmd);
    assert_true(st != -1 && WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* `snarkjs groth16 verify`: 0 valid, 1 invalid */
static int s_snarkjs_verify(const char *vk, const char *pub, const char *proof)
{
    return s_run("node '%s' groth16 verify '%s' '%s' '%s'", s_snarkjs, vk, pub, proof);
}

static void s_write(const char *path, char *text)
{
    char err[256];
    assert_non_null(text);
    if (qr_g16_write_text(path, text, err, sizeof err))
        fail_msg("%s", err);
    free(text);
}

static void s_g1_add_gen(qr_g1_affine_t *p)
{
    qr_g1_affine_t g;
    qr_g1_t a;
    qr_g1_generator(&g);
    qr_g1_from_affine(&a, p);
    qr_g1_add_mixed(&a, &a, &g);
    qr_g1_to_affine(p, &a);
}

static void s_g2_add_gen(qr_g2_affine_t *p)
{
    qr_g2_affine_t g;
    qr_g2_t a;
    qr_g2_generator(&g);
    qr_g2_from_affine(&a, p);
    qr_g2_add_mixed(&a, &a, &g);
    qr_g2_to_affine(p, &a);
}

typedef struct {
    qr_g16_vk_t *vk;      /* from verification_key.json */
    qr_g16_vk_t *vk_pk;   /* from the zkey */
    qr_g16_proof_t proof; /* snarkjs's */
    qr_fr_t *pub;
    uint32_t n_pub;
} s_fix_t;

static void s_fix_load(s_fix_t *f, const char *c)
{
    char err[512];
    memset(f, 0, sizeof *f);
    f->vk = qr_g16_vk_load(s_path(c, "verification_key.json"), err, sizeof err);
    if (!f->vk)
        fail_msg("%s", err);
    qr_g16_pk_t *pk = qr_zkey_load(s_path(c, "circuit.zkey"), 0, err, sizeof err);
    if (!pk)
        fail_msg("%s", err);
    f->vk_pk = qr_g16_vk_from_pk(pk);
    qr_g16_pk_destroy(&pk);
    if (qr_g16_proof_load(&f->proof, s_path(c, "proof.json"), err, sizeof err) ||
        qr_g16_public_load(&f->pub, &f->n_pub, s_path(c, "public.json"), err, sizeof err))
        fail_msg("%s", err);
}

static void s_fix_free(s_fix_t *f)
{
    qr_g16_vk_destroy(&f->vk);
    qr_g16_vk_destroy(&f->vk_pk);
    free(f->pub);
}

/* snarkjs's proofs pass ours, under the key from either file */
static void t_snarkjs_proofs_pass(void **state)
{
    for (size_t k = 0; k < N_CIRCUITS; k++) {
        s_fix_t f;
        s_fix_load(&f, s_circuits[k]);
        assert_true(qr_g16_verify(f.vk, f.pub, f.n_pub, &f.proof));
        assert_true(qr_g16_verify(f.vk_pk, f.pub, f.n_pub, &f.proof));
        /* wrong counts of public signals */
        assert_false(qr_g16_verify(f.vk, f.pub, f.n_pub - 1, &f.proof));
        assert_false(qr_g16_verify(f.vk, NULL, f.n_pub, &f.proof));
        s_fix_free(&f);
    }
}

/* Each of a, b, c moved to another valid point, each public signal
 * changed, signals swapped, a proof under another circuit's key: ours and
 * snarkjs both refuse, while the untouched files pass both (so the
 * harness itself is sound). */
static void t_tampered_fail_both(void **state)
{
    for (size_t k = 0; k < N_CIRCUITS; k++) {
        const char *c = s_circuits[k];
        s_fix_t f;
        s_fix_load(&f, c);
        char vk[1024];
        snprintf(vk, sizeof vk, "%s", s_path(c, "verification_key.json"));
        assert_int_equal(s_snarkjs_verify(vk, s_path(c, "public.json"), s_path(c, "proof.json")),
                         0);
        assert_int_equal(s_run("'%s' '%s' '%s' '%s'", s_verify_bin, vk, s_path(c, "public.json"),
                               s_path(c, "proof.json")),
                         0);
        for (int which = 0; which < 3; which++) {
            qr_g16_proof_t t = f.proof;
            if (which == 0)
                s_g1_add_gen(&t.a);
            else if (which == 1)
                s_g2_add_gen(&t.b);
            else
                s_g1_add_gen(&t.c);
            assert_false(qr_g16_verify(f.vk, f.pub, f.n_pub, &t));
            s_write(s_tmp_path("bad_proof.json"), qr_g16_proof_to_json(&t));
            assert_int_equal(
                s_snarkjs_verify(vk, s_path(c, "public.json"), s_tmp_path("bad_proof.json")), 1);
            assert_int_equal(s_run("'%s' '%s' '%s' '%s'", s_verify_bin, vk,
                                   s_path(c, "public.json"), s_tmp_path("bad_proof.json")),
                             1);
        }
        qr_fr_t one;
        qr_fr_one(&one);
        for (uint32_t i = 0; i <= f.n_pub; i++) {
            qr_fr_t *p = malloc(f.n_pub * sizeof *p);
            memcpy(p, f.pub, f.n_pub * sizeof *p);
            if (i < f.n_pub) {
                qr_fr_add(&p[i], &p[i], &one);
            } else {
                /* swap the first two */
                qr_fr_t s = p[0];
                p[0] = p[1];
                p[1] = s;
            }
            assert_false(qr_g16_verify(f.vk, p, f.n_pub, &f.proof));
            s_write(s_tmp_path("bad_public.json"), qr_g16_public_to_json(p, f.n_pub));
            free(p);
            /* snarkjs only for the first and the swap: each run is ~1 s */
            if (i == 0 || i == f.n_pub) {
                assert_int_equal(
                    s_snarkjs_verify(vk, s_tmp_path("bad_public.json"), s_path(c, "proof.json")),
                    1);
                assert_int_equal(s_run("'%s' '%s' '%s' '%s'", s_verify_bin, vk,
                                       s_tmp_path("bad_public.json"), s_path(c, "proof.json")),
                                 1);
            }
        }
        /* a proof of another circuit, under this key (mul100 and mul4000
         * both have four public signals) */
        const char *other = s_circuits[(k + 2) % N_CIRCUITS];
        s_fix_t g;
        s_fix_load(&g, other);
        if (g.n_pub == f.n_pub) {
            assert_false(qr_g16_verify(f.vk, g.pub, g.n_pub, &g.proof));
            assert_false(qr_g16_verify(f.vk, f.pub, f.n_pub, &g.proof));
            assert_int_equal(
                s_snarkjs_verify(vk, s_path(other, "public.json"), s_path(other, "proof.json")), 1);
        }
        s_fix_free(&g);
        s_fix_free(&f);
    }
}

/* quarry-verify: 0 valid, 1 invalid, 2 usage and file errors */
static void t_quarry_verify_exit_codes(void **state)
{
    const char *c = "mul100";
    const char *vk = s_path(c, "verification_key.json"), *pub = s_path(c, "public.json"),
               *proof = s_path(c, "proof.json");
    assert_int_equal(s_run("'%s'", s_verify_bin), 2);
    assert_int_equal(s_run("'%s' '%s' '%s'", s_verify_bin, vk, pub), 2);
    assert_int_equal(s_run("'%s' '%s' '%s' /nonexistent.json", s_verify_bin, vk, pub), 2);
    assert_int_equal(s_run("'%s' /nonexistent.json '%s' '%s'", s_verify_bin, pub, proof), 2);
    FILE *f = fopen(s_tmp_path("junk.json"), "w");
    fputs("{\"pi_a\": [", f);
    fclose(f);
    assert_int_equal(s_run("'%s' '%s' '%s' '%s'", s_verify_bin, vk, pub, s_tmp_path("junk.json")),
                     2);
    /* the proof as the key, the key as the proof */
    assert_int_equal(s_run("'%s' '%s' '%s' '%s'", s_verify_bin, proof, pub, vk), 2);
    /* a point off the curve is an invalid proof, as for snarkjs */
    char err[256];
    qr_g16_proof_t p;
    assert_int_equal(qr_g16_proof_load(&p, proof, err, sizeof err), 0);
    qr_fp_t one;
    qr_fp_one(&one);
    qr_fp_add(&p.c.y, &p.c.y, &one);
    s_write(s_tmp_path("offcurve.json"), qr_g16_proof_to_json(&p));
    assert_int_equal(
        s_run("'%s' '%s' '%s' '%s'", s_verify_bin, vk, pub, s_tmp_path("offcurve.json")), 1);
    assert_int_equal(s_snarkjs_verify(vk, pub, s_tmp_path("offcurve.json")), 1);
    /* one public signal too many */
    qr_fr_t *pv;
    uint32_t n;
    assert_int_equal(qr_g16_public_load(&pv, &n, pub, err, sizeof err), 0);
    qr_fr_t *more = calloc(n + 1, sizeof *more);
    memcpy(more, pv, n * sizeof *pv);
    s_write(s_tmp_path("more.json"), qr_g16_public_to_json(more, n + 1));
    assert_int_equal(s_run("'%s' '%s' '%s' '%s'", s_verify_bin, vk, s_tmp_path("more.json"), proof),
                     1);
    free(more);
    free(pv);
}

#ifdef QR_ZK_HAVE_PROVER
/* Our proofs: pass ours and snarkjs, and our public.json is snarkjs's */
static void t_our_proofs_pass_snarkjs(void **state)
{
    const char *prove_bin = getenv("QR_ZK_PROVE_BIN");
    for (size_t k = 0; k < N_CIRCUITS; k++) {
        const char *c = s_circuits[k];
        char err[512];
        qr_g16_pk_t *pk = qr_zkey_load(s_path(c, "circuit.zkey"), 0, err, sizeof err);
        qr_wtns_t *w = qr_wtns_load(s_path(c, "witness.wtns"), err, sizeof err);
        assert_non_null(pk);
        assert_non_null(w);
        qr_g16_vk_t *vk = qr_g16_vk_from_pk(pk);
        qr_g16_proof_t p;
        if (qr_g16_prove(pk, w->values, w->n, 2, &p, err, sizeof err))
            fail_msg("%s: %s", c, err);
        s_write(s_tmp_path("our_proof.json"), qr_g16_proof_to_json(&p));
        s_write(s_tmp_path("our_public.json"), qr_g16_public_to_json(w->values + 1, pk->n_public));
        char vkj[1024];
        snprintf(vkj, sizeof vkj, "%s", s_path(c, "verification_key.json"));
        assert_true(qr_g16_verify(vk, w->values + 1, pk->n_public, &p));
        assert_int_equal(
            s_snarkjs_verify(vkj, s_tmp_path("our_public.json"), s_tmp_path("our_proof.json")), 0);
        assert_int_equal(
            s_run("cmp '%s' '%s'", s_tmp_path("our_public.json"), s_path(c, "public.json")), 0);
        /* the tool: rapidsnark's arguments */
        if (prove_bin) {
            assert_int_equal(s_run("'%s' '%s' '%s' '%s' '%s'", prove_bin, s_path(c, "circuit.zkey"),
                                   s_path(c, "witness.wtns"), s_tmp_path("tool_proof.json"),
                                   s_tmp_path("tool_public.json")),
                             0);
            assert_int_equal(s_snarkjs_verify(vkj, s_tmp_path("tool_public.json"),
                                              s_tmp_path("tool_proof.json")),
                             0);
            assert_int_equal(s_run("'%s' '%s' '%s' '%s'", s_verify_bin, vkj,
                                   s_tmp_path("tool_public.json"), s_tmp_path("tool_proof.json")),
                             0);
            assert_int_equal(
                s_run("cmp '%s' '%s'", s_tmp_path("tool_public.json"), s_path(c, "public.json")),
                0);
            /* usage and file errors */
            assert_int_equal(s_run("'%s' '%s'", prove_bin, s_path(c, "circuit.zkey")), 2);
            assert_int_equal(s_run("'%s' '%s' /nonexistent.wtns '%s' '%s'", prove_bin,
                                   s_path(c, "circuit.zkey"), s_tmp_path("x.json"),
                                   s_tmp_path("y.json")),
                             2);
            /* a witness of another circuit */
            const char *other = s_circuits[(k + 1) % N_CIRCUITS];
            assert_int_equal(s_run("'%s' '%s' '%s' '%s' '%s'", prove_bin, s_path(c, "circuit.zkey"),
                                   s_path(other, "witness.wtns"), s_tmp_path("x.json"),
                                   s_tmp_path("y.json")),
                             2);
        }
        qr_g16_vk_destroy(&vk);
        qr_wtns_destroy(&w);
        qr_g16_pk_destroy(&pk);
    }
}
#endif

int main(void)
{
    s_dir = getenv("QR_ZK_FIXTURES");
    s_snarkjs = getenv("QR_ZK_SNARKJS");
    s_verify_bin = getenv("QR_ZK_VERIFY_BIN");
    if (!s_dir || !s_snarkjs || !s_verify_bin) {
        fprintf(stderr, "QR_ZK_FIXTURES, QR_ZK_SNARKJS, QR_ZK_VERIFY_BIN not set\n");
        return 77;
    }
    struct stat st;
    for (size_t k = 0; k < N_CIRCUITS; k++)
        if (stat(s_path(s_circuits[k], "stamp"), &st) != 0) {
            fprintf(stderr, "no fixture %s in %s: the setup was skipped\n", s_circuits[k], s_dir);
            return 77;
        }
    if (stat(s_snarkjs, &st) != 0) {
        fprintf(stderr, "no snarkjs at %s\n", s_snarkjs);
        return 77;
    }
    snprintf(s_tmp, sizeof s_tmp, "%s/tmp-groth16-XXXXXX", s_dir);
    if (!mkdtemp(s_tmp)) {
        perror(s_tmp);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_snarkjs_proofs_pass),
        cmocka_unit_test(t_tampered_fail_both),
        cmocka_unit_test(t_quarry_verify_exit_codes),
#ifdef QR_ZK_HAVE_PROVER
        cmocka_unit_test(t_our_proofs_pass_snarkjs),
#endif
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (rc == 0) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", s_tmp);
    } else {
        fprintf(stderr, "logs of the commands in %s/run.log\n", s_tmp);
    }
    return rc;
}
