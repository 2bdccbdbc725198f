/* snarkjs file formats against files snarkjs and circom wrote
 * (tests/scripts/zk_fixtures.sh, folder in QR_ZK_FIXTURES): .zkey, .wtns,
 * .r1cs and the JSON files; truncated and bit-flipped copies; JSON error
 * paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bn254_pairing.h"
#include "g16_json.h"
#include "r1cs.h"
#include "verify.h"
#include "wtns.h"
#include "zkey.h"

static const char *const s_circuits[] = {"mul100", "pow5_1000", "mul4000", "mixed65k"};
#define N_CIRCUITS (sizeof s_circuits / sizeof s_circuits[0])

static const char *s_dir;

static char *s_path(const char *circuit, const char *file)
{
    static char buf[4][1024];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s/%s", s_dir, circuit, file);
    return b;
}

static uint8_t *s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

/* ---- the files agree with each other ---- */

/* zkey coefficients are exactly the r1cs A and B entries (in file order),
 * then one A entry of 1 per public signal and the 1: checks the value
 * conversion (zkey: Montgomery of Montgomery, r1cs: canonical) exactly */
static void t_zkey_matches_r1cs(void **state)
{
    char err[512];
    for (size_t k = 0; k < N_CIRCUITS; k++) {
        const char *c = s_circuits[k];
        qr_r1cs_t *cs = qr_r1cs_load(s_path(c, "circuit.r1cs"), err, sizeof err);
        if (!cs)
            fail_msg("%s", err);
        qr_g16_pk_t *pk = qr_zkey_load(s_path(c, "circuit.zkey"), 0, err, sizeof err);
        if (!pk)
            fail_msg("%s", err);
        assert_int_equal(pk->n_vars, cs->n_vars);
        assert_int_equal(pk->n_public, qr_r1cs_n_public(cs));
        assert_true(pk->domain_size >= cs->n_constraints + pk->n_public + 1);
        assert_false(cs->custom_gates);
        size_t i = 0;
        for (uint32_t con = 0; con < cs->n_constraints; con++)
            for (uint32_t m = 0; m < 2; m++)
                for (size_t t = cs->lc[3 * con + m]; t < cs->lc[3 * con + m + 1]; t++, i++) {
                    assert_true(i < pk->n_coefs);
                    assert_int_equal(pk->coefs[i].matrix, m);
                    assert_int_equal(pk->coefs[i].constraint, con);
                    assert_int_equal(pk->coefs[i].signal, cs->terms[t].signal);
                    assert_memory_equal(&pk->coefs[i].value, &cs->terms[t].value, sizeof(qr_fr_t));
                }
        for (uint32_t s = 0; s <= pk->n_public; s++, i++) {
            assert_int_equal(pk->coefs[i].matrix, 0);
            assert_int_equal(pk->coefs[i].constraint, cs->n_constraints + s);
            assert_int_equal(pk->coefs[i].signal, s);
            assert_true(qr_fr_is_one(&pk->coefs[i].value));
        }
        assert_int_equal(i, pk->n_coefs);
        /* snarkjs keeps no C points for the public part */
        for (uint32_t s = 0; s <= pk->n_public; s++)
            assert_true(qr_g1_affine_is_inf(&pk->c[s]));
        /* the full subgroup check agrees */
        qr_g16_pk_t *pk2 =
            qr_zkey_load(s_path(c, "circuit.zkey"), QR_ZKEY_CHECK_SUBGROUPS, err, sizeof err);
        if (!pk2)
            fail_msg("%s", err);
        assert_memory_equal(pk2->b2, pk->b2, pk->n_vars * sizeof(qr_g2_affine_t));
        qr_g16_pk_destroy(&pk2);
        qr_g16_pk_destroy(&pk);
        assert_null(pk);
        qr_r1cs_destroy(&cs);
        assert_null(cs);
    }
}

/* the witness: values as `snarkjs wtns export json` prints them, satisfies
 * the r1cs, and its public part is public.json */
static void t_wtns(void **state)
{
    char err[512];
    for (size_t k = 0; k < N_CIRCUITS; k++) {
        const char *c = s_circuits[k];
        qr_wtns_t *w = qr_wtns_load(s_path(c, "witness.wtns"), err, sizeof err);
        if (!w)
            fail_msg("%s", err);
        qr_r1cs_t *cs = qr_r1cs_load(s_path(c, "circuit.r1cs"), err, sizeof err);
        assert_non_null(cs);
        assert_int_equal(w->n, cs->n_vars);
        uint32_t bad = 0;
        assert_true(qr_r1cs_satisfied(cs, w->values, w->n, &bad));
        /* one wrong value breaks a constraint (the last signal is used) */
        qr_fr_t one, save = w->values[w->n - 1];
        qr_fr_one(&one);
        qr_fr_add(&w->values[w->n - 1], &w->values[w->n - 1], &one);
        assert_false(qr_r1cs_satisfied(cs, w->values, w->n, &bad));
        assert_true(bad < cs->n_constraints);
        w->values[w->n - 1] = save;
        assert_false(qr_r1cs_satisfied(cs, w->values, w->n - 1, &bad));

        qr_fr_t *js = NULL;
        uint32_t n_js = 0;
        /* witness.json is an array of decimal strings, like public.json */
        if (qr_g16_public_load(&js, &n_js, s_path(c, "witness.json"), err, sizeof err))
            fail_msg("%s", err);
        assert_int_equal(n_js, w->n);
        assert_memory_equal(js, w->values, w->n * sizeof(qr_fr_t));
        free(js);

        qr_fr_t *pub = NULL;
        uint32_t n_pub = 0;
        assert_int_equal(
            qr_g16_public_load(&pub, &n_pub, s_path(c, "public.json"), err, sizeof err), 0);
        assert_int_equal(n_pub, qr_r1cs_n_public(cs));
        assert_memory_equal(pub, w->values + 1, n_pub * sizeof(qr_fr_t));
        free(pub);
        qr_r1cs_destroy(&cs);
        qr_wtns_destroy(&w);
        assert_null(w);
    }
}

/* ---- JSON byte for byte ---- */

static void t_json_bytes(void **state)
{
    char err[512];
    for (size_t k = 0; k < N_CIRCUITS; k++) {
        const char *c = s_circuits[k];
        size_t n;
        /* verification_key.json: ours from the zkey equals snarkjs's export */
        qr_g16_pk_t *pk = qr_zkey_load(s_path(c, "circuit.zkey"), 0, err, sizeof err);
        assert_non_null(pk);
        qr_g16_vk_t *vk = qr_g16_vk_from_pk(pk);
        assert_non_null(vk);
        char *ours = qr_g16_vk_to_json(vk);
        uint8_t *theirs = s_slurp(s_path(c, "verification_key.json"), &n);
        assert_string_equal(ours, (char *)theirs);
        /* and reading theirs gives the same key */
        qr_g16_vk_t *vk2 = qr_g16_vk_from_json((char *)theirs, "vk", err, sizeof err);
        if (!vk2)
            fail_msg("%s", err);
        assert_int_equal(vk2->n_public, vk->n_public);
        assert_memory_equal(&vk2->alpha1, &vk->alpha1, sizeof vk->alpha1);
        assert_memory_equal(&vk2->beta2, &vk->beta2, sizeof vk->beta2);
        assert_memory_equal(&vk2->gamma2, &vk->gamma2, sizeof vk->gamma2);
        assert_memory_equal(&vk2->delta2, &vk->delta2, sizeof vk->delta2);
        assert_memory_equal(vk2->ic, vk->ic, (vk->n_public + 1) * sizeof(qr_g1_affine_t));
        free(ours);
        free(theirs);
        qr_g16_vk_destroy(&vk2);
        qr_g16_vk_destroy(&vk);
        qr_g16_pk_destroy(&pk);

        /* proof.json and public.json: read and rewritten, the same bytes */
        qr_g16_proof_t p;
        if (qr_g16_proof_load(&p, s_path(c, "proof.json"), err, sizeof err))
            fail_msg("%s", err);
        ours = qr_g16_proof_to_json(&p);
        theirs = s_slurp(s_path(c, "proof.json"), &n);
        assert_string_equal(ours, (char *)theirs);
        free(ours);
        free(theirs);
        qr_fr_t *pub;
        uint32_t n_pub;
        assert_int_equal(
            qr_g16_public_load(&pub, &n_pub, s_path(c, "public.json"), err, sizeof err), 0);
        ours = qr_g16_public_to_json(pub, n_pub);
        theirs = s_slurp(s_path(c, "public.json"), &n);
        assert_string_equal(ours, (char *)theirs);
        free(ours);
        free(theirs);
        free(pub);
    }
    /* what JSON.stringify writes for the edge cases */
    char *s = qr_g16_public_to_json(NULL, 0);
    assert_string_equal(s, "[]");
    free(s);
    qr_g16_proof_t inf;
    memset(&inf, 0, sizeof inf);
    s = qr_g16_proof_to_json(&inf);
    assert_string_equal(s, "{\n \"pi_a\": [\n  \"0\",\n  \"1\",\n  \"0\"\n ],\n \"pi_b\": [\n  [\n"
                           "   \"0\",\n   \"0\"\n  ],\n  [\n   \"1\",\n   \"0\"\n  ],\n  [\n"
                           "   \"0\",\n   \"0\"\n  ]\n ],\n \"pi_c\": [\n  \"0\",\n  \"1\",\n"
                           "  \"0\"\n ],\n \"protocol\": \"groth16\",\n \"curve\": \"bn128\"\n}");
    /* and infinity reads back */
    qr_g16_proof_t back;
    memset(&back, 0xff, sizeof back);
    char err2[256];
    assert_int_equal(qr_g16_proof_from_json(&back, s, "inf", err2, sizeof err2), 0);
    assert_memory_equal(&back, &inf, sizeof inf);
    free(s);
}

/* ---- corrupt and truncated binary files ---- */

typedef void *(*s_loader_t)(const void *data, size_t size, char *err, size_t errlen);

static void *s_load_zkey(const void *d, size_t n, char *err, size_t errlen)
{
    return qr_zkey_load_mem("t.zkey", d, n, 0, err, errlen);
}
static void *s_load_wtns(const void *d, size_t n, char *err, size_t errlen)
{
    return qr_wtns_load_mem("t.wtns", d, n, err, errlen);
}
static void *s_load_r1cs(const void *d, size_t n, char *err, size_t errlen)
{
    return qr_r1cs_load_mem("t.r1cs", d, n, err, errlen);
}
static void s_free(int kind, void *p)
{
    if (kind == 0) {
        qr_g16_pk_t *pk = p;
        qr_g16_pk_destroy(&pk);
    } else if (kind == 1) {
        qr_wtns_t *w = p;
        qr_wtns_destroy(&w);
    } else {
        qr_r1cs_t *cs = p;
        qr_r1cs_destroy(&cs);
    }
}

/* Every strict prefix fails (each copy is its own allocation of exactly
 * that size, so ASan sees any read past it) with a message that names the
 * file and, past the container header, the section and offset. */
static void s_truncations(int kind, s_loader_t load, const char *file, const char *name)
{
    size_t n;
    uint8_t *full = s_slurp(s_path("mul100", file), &n);
    char err[512];
    void *ok = load(full, n, err, sizeof err);
    if (!ok)
        fail_msg("%s", err);
    s_free(kind, ok);
    size_t tried = 0;
    for (size_t len = 0; len < n; len += len < 512 ? 1 : 1 + len / 64, tried++) {
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, full, len);
        err[0] = 0;
        void *p = load(cut, len, err, sizeof err);
        if (p)
            fail_msg("%s cut to %zu of %zu bytes loaded", file, len, n);
        assert_non_null(strstr(err, name));
        if (len >= 12 && !strstr(err, "section") && !strstr(err, "truncated"))
            fail_msg("%s at %zu: message without section or truncation: %s", file, len, err);
        free(cut);
    }
    assert_true(tried > 500);
    free(full);
}

static void t_truncated(void **state)
{
    s_truncations(0, s_load_zkey, "circuit.zkey", "t.zkey");
    s_truncations(1, s_load_wtns, "witness.wtns", "t.wtns");
    s_truncations(2, s_load_r1cs, "circuit.r1cs", "t.r1cs");
}

/* Which section a file offset lies in: 0 for the file header (magic,
 * version, count), 1000 + type for the section table entry of a section */
static uint32_t s_section_at(const uint8_t *d, size_t n, size_t off, size_t *sec_start)
{
    size_t pos = 12;
    uint32_t ns = d[8] | d[9] << 8;
    if (off < 12)
        return 0;
    for (uint32_t i = 0; i < ns && pos + 12 <= n; i++) {
        uint32_t type = d[pos] | d[pos + 1] << 8;
        uint64_t size = 0;
        for (int b = 7; b >= 0; b--)
            size = size << 8 | d[pos + 4 + b];
        if (off < pos + 12)
            return 1000 + type;
        if (off < pos + 12 + size) {
            *sec_start = pos + 12;
            return type;
        }
        pos += 12 + size;
    }
    return 0;
}

/* Single bit flips: never a crash; in the zkey every flip in a point (the
 * header's, IC, A, B1, B2, C, H) and in the container header is caught;
 * flips elsewhere (a coefficient value that stays below r, the
 * contributions section nobody reads) may load. */
static void t_bitflips_zkey(void **state)
{
    size_t n;
    uint8_t *d = s_slurp(s_path("mul100", "circuit.zkey"), &n);
    char err[512];
    uint64_t x = 0x9e3779b97f4a7c15u;
    int caught = 0, loaded = 0;
    for (int i = 0; i < 1500; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t off = (size_t)(x % n);
        int bit = (int)(x >> 60) & 7;
        size_t sec_start = 0;
        uint32_t sec = s_section_at(d, n, off, &sec_start);
        /* every 5th flip goes to the headers, which are tiny */
        if (i % 5 == 0) {
            off = (size_t)(x % 600);
            sec = s_section_at(d, n, off, &sec_start);
        }
        d[off] ^= (uint8_t)(1u << bit);
        qr_g16_pk_t *pk = qr_zkey_load_mem("t.zkey", d, n, 0, err, sizeof err);
        d[off] ^= (uint8_t)(1u << bit);
        /* the file header, the table entries of the sections read, the
         * protocol, the Groth16 header (sizes, primes, counts and points,
         * all checked) and every point section; a table entry of section
         * 10 may change its type into one nobody reads */
        bool must_fail = sec == 0 || (sec > 1000 && sec != 1010) || sec == 1 || sec == 2 ||
                         sec == 3 || (sec >= 5 && sec <= 9);
        if (pk) {
            loaded++;
            if (must_fail)
                fail_msg("bit %d of byte %zu (section %u) flipped and the key still loaded", bit,
                         off, sec);
            qr_g16_pk_destroy(&pk);
        } else {
            caught++;
            assert_non_null(strstr(err, "t.zkey"));
        }
    }
    print_message("zkey bit flips: %d refused, %d loaded (coefficients, contributions)\n", caught,
                  loaded);
    assert_true(caught > 1000);
    free(d);
}

static void t_bitflips_wtns_r1cs(void **state)
{
    const char *files[2] = {"witness.wtns", "circuit.r1cs"};
    for (int f = 0; f < 2; f++) {
        size_t n;
        uint8_t *d = s_slurp(s_path("mul100", files[f]), &n);
        char err[512];
        uint64_t x = 0x243f6a8885a308d3u;
        for (int i = 0; i < 1500; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t off = (size_t)(x % n);
            int bit = (int)(x >> 60) & 7;
            size_t start = 0;
            uint32_t sec = s_section_at(d, n, off, &start);
            d[off] ^= (uint8_t)(1u << bit);
            void *p =
                f == 0 ? s_load_wtns(d, n, err, sizeof err) : s_load_r1cs(d, n, err, sizeof err);
            d[off] ^= (uint8_t)(1u << bit);
            /* the container header and the field header are always caught;
             * the wtns's first value (the 1) as well; the top byte of a
             * value below r mostly goes past r */
            bool must_fail = sec == 0 || sec > 1000 || (sec == 1 && off < start + 36) ||
                             (f == 0 && sec == 2 && off < start + 32);
            if (p && must_fail)
                fail_msg("%s: bit %d of byte %zu (section %u) flipped and it loaded", files[f], bit,
                         off, sec);
            s_free(f + 1, p);
        }
        free(d);
    }
}

/* Container-level errors name what is wrong */
static void t_binfile_errors(void **state)
{
    char err[512];
    assert_null(qr_zkey_load("/nonexistent/x.zkey", 0, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/x.zkey"));
    assert_non_null(strstr(err, "No such file"));
    assert_null(qr_zkey_load(s_path("mul100", "witness.wtns"), 0, err, sizeof err));
    assert_non_null(strstr(err, "not a zkey file"));

    size_t n;
    uint8_t *d = s_slurp(s_path("mul100", "witness.wtns"), &n);
    d[4] = 3; /* version */
    assert_null(qr_wtns_load_mem("w", d, n, err, sizeof err));
    assert_non_null(strstr(err, "version 3"));
    d[4] = 2;
    /* section 1 renamed 2: section 2 repeated, 1 missing */
    uint8_t save = d[12];
    d[12] = 2;
    assert_null(qr_wtns_load_mem("w", d, n, err, sizeof err));
    assert_non_null(strstr(err, "section 1 missing"));
    d[12] = save;
    /* a witness value >= r: the first one after the 1 set to all ones */
    size_t first = 12 + 12 + 40 + 12 + 32;
    memset(d + first, 0xff, 32);
    assert_null(qr_wtns_load_mem("w", d, n, err, sizeof err));
    assert_non_null(strstr(err, "witness value 1 is not below r"));
    assert_non_null(strstr(err, "section 2 at offset"));
    free(d);

    /* a zkey whose section 2 is shorter than its declared size */
    d = s_slurp(s_path("mul100", "circuit.zkey"), &n);
    assert_null(qr_zkey_load_mem("k", d, 200, 0, err, sizeof err));
    assert_non_null(strstr(err, "truncated"));
    /* the protocol is PLONK */
    qr_binfile_t bf;
    qr_bincur_t cur;
    assert_int_equal(qr_binfile_open_mem(&bf, "k", d, n, "zkey", 1, err, sizeof err), 0);
    assert_int_equal(qr_binfile_section(&bf, 1, &cur, err, sizeof err), 0);
    d[cur.start] = 2;
    assert_null(qr_zkey_load_mem("k", d, n, 0, err, sizeof err));
    assert_non_null(strstr(err, "PLONK"));
    d[cur.start] = 1;
    /* nPublic larger than nVars */
    assert_int_equal(qr_binfile_section(&bf, 2, &cur, err, sizeof err), 0);
    size_t np_off = cur.start + 4 + 32 + 4 + 32 + 4;
    uint8_t keep[4];
    memcpy(keep, d + np_off, 4);
    memset(d + np_off, 0x7f, 4);
    assert_null(qr_zkey_load_mem("k", d, n, 0, err, sizeof err));
    assert_non_null(strstr(err, "nPublic"));
    memcpy(d + np_off, keep, 4);
    /* a G2 header point off the twist: flip a bit of beta2.x */
    size_t beta2 = np_off + 4 + 4 + 64 + 64;
    d[beta2 + 5] ^= 1;
    assert_null(qr_zkey_load_mem("k", d, n, 0, err, sizeof err));
    assert_non_null(strstr(err, "beta2"));
    d[beta2 + 5] ^= 1;
    qr_g16_pk_t *pk = qr_zkey_load_mem("k", d, n, 0, err, sizeof err);
    assert_non_null(pk);
    qr_g16_pk_destroy(&pk);
    qr_g16_pk_destroy(&pk); /* NULL-safe */
    qr_binfile_close(&bf);
    free(d);
}

/* The verification key alone: the same key as from the whole proving key,
 * the same sizes; every truncation and every header or IC corruption that
 * the full loader refuses is refused too, while a damaged point in A (not
 * read) still loads the key. */
static void t_zkey_vk_only(void **state)
{
    size_t n;
    uint8_t *d = s_slurp(s_path("mul100", "circuit.zkey"), &n);
    char err[512];
    qr_g16_pk_t *pk = qr_zkey_load_mem("k", d, n, 0, err, sizeof err);
    assert_non_null(pk);
    qr_g16_vk_t *want = qr_g16_vk_from_pk(pk);
    qr_g16_pk_t hdr;
    memset(&hdr, 0xa5, sizeof hdr);
    qr_g16_vk_t *vk = qr_zkey_load_vk_mem("k", d, n, &hdr, err, sizeof err);
    if (!vk)
        fail_msg("%s", err);
    assert_int_equal(vk->n_public, want->n_public);
    assert_memory_equal(&vk->alpha1, &want->alpha1, sizeof vk->alpha1);
    assert_memory_equal(&vk->beta2, &want->beta2, sizeof vk->beta2);
    assert_memory_equal(&vk->gamma2, &want->gamma2, sizeof vk->gamma2);
    assert_memory_equal(&vk->delta2, &want->delta2, sizeof vk->delta2);
    assert_memory_equal(vk->ic, want->ic, (want->n_public + 1) * sizeof *vk->ic);
    assert_int_equal(hdr.n_vars, pk->n_vars);
    assert_int_equal(hdr.n_public, pk->n_public);
    assert_int_equal(hdr.domain_size, pk->domain_size);
    assert_int_equal(hdr.log_domain, pk->log_domain);
    qr_g16_vk_destroy(&vk);

    /* truncations: the whole file's sections are in the table, so a cut
     * anywhere is caught from the table alone */
    for (size_t len = 0; len < n; len += len < 512 ? 7 : 1 + len / 32) {
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, d, len);
        vk = qr_zkey_load_vk_mem("k", cut, len, NULL, err, sizeof err);
        if (vk)
            fail_msg("cut to %zu of %zu bytes and the verification key loaded", len, n);
        assert_non_null(strstr(err, "k"));
        free(cut);
    }

    qr_binfile_t bf;
    qr_bincur_t cur;
    assert_int_equal(qr_binfile_open_mem(&bf, "k", d, n, "zkey", 1, err, sizeof err), 0);
    /* an IC point off the curve */
    assert_int_equal(qr_binfile_section(&bf, 3, &cur, err, sizeof err), 0);
    d[cur.start + 3] ^= 4;
    assert_null(qr_zkey_load_vk_mem("k", d, n, NULL, err, sizeof err));
    assert_non_null(strstr(err, "IC"));
    d[cur.start + 3] ^= 4;
    /* a header point off the twist */
    assert_int_equal(qr_binfile_section(&bf, 2, &cur, err, sizeof err), 0);
    size_t beta2 = cur.start + 4 + 32 + 4 + 32 + 4 + 4 + 4 + 64 + 64;
    d[beta2 + 5] ^= 1;
    assert_null(qr_zkey_load_vk_mem("k", d, n, NULL, err, sizeof err));
    assert_non_null(strstr(err, "beta2"));
    d[beta2 + 5] ^= 1;
    /* a point of A is not read: the verification key loads, the key not */
    assert_int_equal(qr_binfile_section(&bf, 5, &cur, err, sizeof err), 0);
    d[cur.start + 3] ^= 4;
    vk = qr_zkey_load_vk_mem("k", d, n, NULL, err, sizeof err);
    assert_non_null(vk);
    qr_g16_vk_destroy(&vk);
    assert_null(qr_zkey_load_mem("k", d, n, 0, err, sizeof err));
    d[cur.start + 3] ^= 4;
    qr_binfile_close(&bf);

    /* from a file, as the broker reads it */
    vk = qr_zkey_load_vk(s_path("mul100", "circuit.zkey"), NULL, err, sizeof err);
    assert_non_null(vk);
    assert_memory_equal(vk->ic, want->ic, (want->n_public + 1) * sizeof *vk->ic);
    qr_g16_vk_destroy(&vk);
    assert_null(qr_zkey_load_vk(s_path("mul100", "witness.wtns"), NULL, err, sizeof err));
    assert_non_null(strstr(err, "not a zkey file"));

    qr_g16_vk_destroy(&want);
    qr_g16_pk_destroy(&pk);
    free(d);
}

/* ---- JSON errors ---- */

static char *s_replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    assert_non_null(at);
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *r = malloc(n);
    snprintf(r, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    return r;
}

static void t_json_errors(void **state)
{
    char err[512];
    size_t n;
    char *proof = (char *)s_slurp(s_path("mul100", "proof.json"), &n);
    qr_g16_proof_t p;
    assert_int_equal(qr_g16_proof_from_json(&p, proof, "proof.json", err, sizeof err), 0);

    struct {
        const char *from, *to, *msg;
        int rc;
    } cases[] = {
        {"\"pi_a\"", "\"pi_x\"", "pi_a: missing", -1},
        {"\"groth16\"", "\"plonk\"", "protocol", -1},
        {"\"bn128\"", "\"bls12381\"", "curve", -1},
        {"\"pi_c\": [", "\"pi_c\": [\"1\", ", "not a G1 point", -1},
        {"\"1\"\n ],\n \"pi_b\"", "\"2\"\n ],\n \"pi_b\"", "pi_a: z is neither",
         QR_G16_JSON_EINVALID},
        {"\"curve\": \"bn128\"", "\"curve\": \"bn128\",", "line", -1},
        {"\"pi_a\": [\n  \"", "\"pi_a\": [\n  \"x", "pi_a[0]: not a decimal", -1},
        {"\"pi_a\": [\n  \"", "\"pi_a\": [\n  \"1", "pi_a", QR_G16_JSON_EINVALID},
        {"\"pi_a\": [\n  \"", "\"pi_a\": [\n  \"-", "not a decimal", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *bad = s_replace(proof, cases[i].from, cases[i].to);
        err[0] = 0;
        int rc = qr_g16_proof_from_json(&p, bad, "proof.json", err, sizeof err);
        if (rc != cases[i].rc || !strstr(err, cases[i].msg))
            fail_msg("case %zu: rc %d, err '%s', wanted %d '%s'", i, rc, err, cases[i].rc,
                     cases[i].msg);
        assert_non_null(strstr(err, "proof.json"));
        free(bad);
    }
    assert_int_equal(qr_g16_proof_from_json(&p, "[1]", "proof.json", err, sizeof err), -1);
    assert_non_null(strstr(err, "proof.json: top level: not an object"));
    /* a coordinate >= p: x replaced by p itself */
    const char *pstr =
        "21888242871839275222246405745257275088696311157297823662689037894645226208583";
    assert_int_equal(qr_g16_proof_from_json(&p, proof, "proof.json", err, sizeof err), 0);
    char d[QR_ZK_DEC_MAX];
    char *bad = s_replace(proof, qr_fp_to_dec(d, &p.a.x), pstr);
    assert_int_equal(qr_g16_proof_from_json(&p, bad, "proof.json", err, sizeof err),
                     QR_G16_JSON_EINVALID);
    assert_non_null(strstr(err, "pi_a[0]: not below p"));
    free(bad);

    /* pi_b on the twist but outside G2: x = (k, 0) for the first k with a
     * root of x^3 + 3/(9 + u) */
    qr_g2_affine_t t;
    qr_fp2_t b, xi;
    qr_fp_from_u64(&xi.c0, 9);
    qr_fp_from_u64(&xi.c1, 1);
    qr_fp2_inv(&b, &xi);
    qr_fp2_t three;
    qr_fp2_zero(&three);
    qr_fp_from_u64(&three.c0, 3);
    qr_fp2_mul(&b, &b, &three);
    for (uint64_t k = 1;; k++) {
        qr_fp2_t rhs;
        qr_fp2_zero(&t.x);
        qr_fp_from_u64(&t.x.c0, k);
        qr_fp2_sqr(&rhs, &t.x);
        qr_fp2_mul(&rhs, &rhs, &t.x);
        qr_fp2_add(&rhs, &rhs, &b);
        if (qr_fp2_sqrt(&t.y, &rhs))
            break;
    }
    assert_true(qr_g2_affine_on_curve(&t));
    assert_false(qr_g2_in_subgroup(&t));
    qr_g16_proof_t q;
    assert_int_equal(qr_g16_proof_from_json(&q, proof, "proof.json", err, sizeof err), 0);
    q.b = t;
    char *js = qr_g16_proof_to_json(&q);
    assert_int_equal(qr_g16_proof_from_json(&p, js, "proof.json", err, sizeof err),
                     QR_G16_JSON_EINVALID);
    assert_non_null(strstr(err, "pi_b: not in G2"));
    free(js);
    free(proof);

    /* public signals */
    qr_fr_t *pub;
    uint32_t np;
    assert_int_equal(qr_g16_public_from_json(&pub, &np, "[\"1\", 2]", "pub", err, sizeof err), -1);
    assert_non_null(strstr(err, "pub: [1]: not a decimal string"));
    assert_null(pub);
    assert_int_equal(
        qr_g16_public_from_json(
            &pub, &np,
            "[\"21888242871839275222246405745257275088548364400416034343698204186575808495617\"]",
            "pub", err, sizeof err),
        QR_G16_JSON_EINVALID);
    assert_non_null(strstr(err, "not below r"));
    assert_int_equal(qr_g16_public_from_json(&pub, &np, "{}", "pub", err, sizeof err), -1);
    assert_int_equal(qr_g16_public_from_json(&pub, &np, "[\"007\"]", "pub", err, sizeof err), 0);
    assert_int_equal(np, 1);
    qr_fr_t seven;
    qr_fr_from_u64(&seven, 7);
    assert_true(qr_fr_eq(&pub[0], &seven));
    free(pub);
    assert_int_equal(qr_g16_public_load(&pub, &np, "/nonexistent.json", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent.json"));

    /* verification key: a changed alphabeta, a missing IC point, nPublic */
    char *vkj = (char *)s_slurp(s_path("mul100", "verification_key.json"), &n);
    qr_g16_vk_t *vk = qr_g16_vk_from_json(vkj, "vk.json", err, sizeof err);
    assert_non_null(vk);
    qr_fp12_t ab;
    qr_bn254_pairing(&ab, &vk->alpha1, &vk->beta2);
    char *ab0 = strdup(qr_fp_to_dec(d, &ab.c0.c0.c0));
    qr_fp_t one;
    qr_fp_one(&one);
    qr_fp_add(&ab.c0.c0.c0, &ab.c0.c0.c0, &one);
    bad = s_replace(vkj, ab0, qr_fp_to_dec(d, &ab.c0.c0.c0));
    qr_g16_vk_t *vk2 = qr_g16_vk_from_json(bad, "vk.json", err, sizeof err);
    assert_null(vk2);
    assert_non_null(strstr(err, "vk_alphabeta_12: is not e(vk_alpha_1, vk_beta_2)"));
    free(bad);
    free(ab0);
    bad = s_replace(vkj, "\"nPublic\": 4", "\"nPublic\": 5");
    assert_null(qr_g16_vk_from_json(bad, "vk.json", err, sizeof err));
    assert_non_null(strstr(err, "IC: not an array of nPublic + 1 points"));
    free(bad);
    bad = s_replace(vkj, "\"nPublic\": 4", "\"nPublic\": -1");
    assert_null(qr_g16_vk_from_json(bad, "vk.json", err, sizeof err));
    assert_non_null(strstr(err, "nPublic: not a count"));
    free(bad);
    assert_null(qr_g16_vk_load("/nonexistent/vk.json", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/vk.json"));
    qr_g16_vk_destroy(&vk);
    free(vkj);
}

int main(void)
{
    s_dir = getenv("QR_ZK_FIXTURES");
    if (!s_dir) {
        fprintf(stderr, "QR_ZK_FIXTURES not set (tests/scripts/zk_fixtures.sh makes it)\n");
        return 77;
    }
    for (size_t k = 0; k < N_CIRCUITS; k++) {
        FILE *f = fopen(s_path(s_circuits[k], "stamp"), "r");
        if (!f) {
            fprintf(stderr, "no fixture %s in %s: the setup was skipped\n", s_circuits[k], s_dir);
            return 77;
        }
        fclose(f);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_zkey_matches_r1cs), cmocka_unit_test(t_wtns),
        cmocka_unit_test(t_json_bytes),        cmocka_unit_test(t_truncated),
        cmocka_unit_test(t_bitflips_zkey),     cmocka_unit_test(t_bitflips_wtns_r1cs),
        cmocka_unit_test(t_binfile_errors),    cmocka_unit_test(t_zkey_vk_only),
        cmocka_unit_test(t_json_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
