/* snarkjs Groth16 JSON; formats in g16_json.h.
 *
 * The writer is a few lines of our own rather than jansson's dump: the
 * output has to be snarkjs's bytes exactly (the test compares them), and
 * owning the layout keeps that independent of a library's formatting
 * choices.  The readers use jansson. */
#include "g16_json.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bn254_pairing.h"
#include "verify.h"

/* ---- writer ---- */

#define JW_MAX_DEPTH 8

typedef struct {
    char *buf;
    size_t len, cap;
    bool oom;
    int depth;
    bool empty[JW_MAX_DEPTH]; /* no element yet in the open container */
} s_jw_t;

static void s_jw_put(s_jw_t *w, const char *s, size_t n)
{
    if (w->oom)
        return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 1024;
        while (cap < w->len + n + 1)
            cap *= 2;
        char *b = realloc(w->buf, cap);
        if (!b) {
            w->oom = true;
            return;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = 0;
}

static void s_jw_puts(s_jw_t *w, const char *s)
{
    s_jw_put(w, s, strlen(s));
}

/* Starts an element of the open container: separator, newline, indent,
 * key.  At depth 0 (the top value) nothing. */
static void s_jw_elem(s_jw_t *w, const char *key)
{
    if (w->depth == 0)
        return;
    s_jw_puts(w, w->empty[w->depth - 1] ? "\n" : ",\n");
    w->empty[w->depth - 1] = false;
    for (int i = 0; i < w->depth; i++)
        s_jw_put(w, " ", 1);
    if (key) {
        s_jw_put(w, "\"", 1);
        s_jw_puts(w, key); /* our keys need no escaping */
        s_jw_puts(w, "\": ");
    }
}

static void s_jw_open(s_jw_t *w, const char *key, char c)
{
    s_jw_elem(w, key);
    s_jw_put(w, &c, 1);
    if (w->depth >= JW_MAX_DEPTH) {
        w->oom = true; /* cannot happen with our fixed shapes */
        return;
    }
    w->empty[w->depth++] = true;
}

/* JSON.stringify writes an empty container as [] or {} */
static void s_jw_close(s_jw_t *w, char c)
{
    if (w->depth == 0)
        return;
    bool empty = w->empty[--w->depth];
    if (!empty) {
        s_jw_put(w, "\n", 1);
        for (int i = 0; i < w->depth; i++)
            s_jw_put(w, " ", 1);
    }
    s_jw_put(w, &c, 1);
}

static void s_jw_str(s_jw_t *w, const char *key, const char *s)
{
    s_jw_elem(w, key);
    s_jw_put(w, "\"", 1);
    s_jw_puts(w, s);
    s_jw_put(w, "\"", 1);
}

static void s_jw_uint(s_jw_t *w, const char *key, uint32_t v)
{
    char b[16];
    snprintf(b, sizeof b, "%u", v);
    s_jw_elem(w, key);
    s_jw_puts(w, b);
}

static void s_jw_fp(s_jw_t *w, const qr_fp_t *a)
{
    char d[QR_ZK_DEC_MAX];
    s_jw_str(w, NULL, qr_fp_to_dec(d, a));
}

static void s_jw_fp2(s_jw_t *w, const char *key, const qr_fp2_t *a)
{
    s_jw_open(w, key, '[');
    s_jw_fp(w, &a->c0);
    s_jw_fp(w, &a->c1);
    s_jw_close(w, ']');
}

static void s_jw_g1(s_jw_t *w, const char *key, const qr_g1_affine_t *a)
{
    s_jw_open(w, key, '[');
    if (qr_g1_affine_is_inf(a)) {
        s_jw_str(w, NULL, "0");
        s_jw_str(w, NULL, "1");
        s_jw_str(w, NULL, "0");
    } else {
        s_jw_fp(w, &a->x);
        s_jw_fp(w, &a->y);
        s_jw_str(w, NULL, "1");
    }
    s_jw_close(w, ']');
}

static void s_jw_g2(s_jw_t *w, const char *key, const qr_g2_affine_t *a)
{
    qr_fp2_t zero, one;
    qr_fp2_zero(&zero);
    qr_fp2_one(&one);
    bool inf = qr_g2_affine_is_inf(a);
    s_jw_open(w, key, '[');
    s_jw_fp2(w, NULL, inf ? &zero : &a->x);
    s_jw_fp2(w, NULL, inf ? &one : &a->y);
    s_jw_fp2(w, NULL, inf ? &zero : &one);
    s_jw_close(w, ']');
}

static char *s_jw_finish(s_jw_t *w)
{
    if (w->oom) {
        free(w->buf);
        return NULL;
    }
    return w->buf;
}

char *qr_g16_proof_to_json(const qr_g16_proof_t *p)
{
    s_jw_t w = {0};
    s_jw_open(&w, NULL, '{');
    s_jw_g1(&w, "pi_a", &p->a);
    s_jw_g2(&w, "pi_b", &p->b);
    s_jw_g1(&w, "pi_c", &p->c);
    s_jw_str(&w, "protocol", "groth16");
    s_jw_str(&w, "curve", "bn128");
    s_jw_close(&w, '}');
    return s_jw_finish(&w);
}

char *qr_g16_public_to_json(const qr_fr_t *pub, uint32_t n)
{
    s_jw_t w = {0};
    char d[QR_ZK_DEC_MAX];
    s_jw_open(&w, NULL, '[');
    for (uint32_t i = 0; i < n; i++)
        s_jw_str(&w, NULL, qr_fr_to_dec(d, &pub[i]));
    s_jw_close(&w, ']');
    return s_jw_finish(&w);
}

char *qr_g16_vk_to_json(const qr_g16_vk_t *vk)
{
    qr_fp12_t ab;
    qr_bn254_pairing(&ab, &vk->alpha1, &vk->beta2);
    s_jw_t w = {0};
    s_jw_open(&w, NULL, '{');
    s_jw_str(&w, "protocol", "groth16");
    s_jw_str(&w, "curve", "bn128");
    s_jw_uint(&w, "nPublic", vk->n_public);
    s_jw_g1(&w, "vk_alpha_1", &vk->alpha1);
    s_jw_g2(&w, "vk_beta_2", &vk->beta2);
    s_jw_g2(&w, "vk_gamma_2", &vk->gamma2);
    s_jw_g2(&w, "vk_delta_2", &vk->delta2);
    s_jw_open(&w, "vk_alphabeta_12", '[');
    const qr_fp6_t *half[2] = {&ab.c0, &ab.c1};
    for (int i = 0; i < 2; i++) {
        s_jw_open(&w, NULL, '[');
        s_jw_fp2(&w, NULL, &half[i]->c0);
        s_jw_fp2(&w, NULL, &half[i]->c1);
        s_jw_fp2(&w, NULL, &half[i]->c2);
        s_jw_close(&w, ']');
    }
    s_jw_close(&w, ']');
    s_jw_open(&w, "IC", '[');
    for (uint32_t i = 0; i <= vk->n_public; i++)
        s_jw_g1(&w, NULL, &vk->ic[i]);
    s_jw_close(&w, ']');
    s_jw_close(&w, '}');
    return s_jw_finish(&w);
}

/* ---- files ---- */

static int s_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Larger than any JSON file of ours: a key with a million public signals
 * is ~160 MB, so 1 GiB only stops reading /dev/zero */
#define JSON_MAX_BYTES (1u << 30)

char *qr_g16_read_text(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        s_fail(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (len < cap - 1)
            break;
        if (cap >= JSON_MAX_BYTES) {
            s_fail(err, errlen, "%s: larger than %u bytes", path, JSON_MAX_BYTES);
            free(buf);
            fclose(f);
            return NULL;
        }
        char *b = realloc(buf, cap * 2);
        if (!b) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = b;
        cap *= 2;
    }
    if (!buf) {
        fclose(f);
        s_fail(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    if (ferror(f)) {
        s_fail(err, errlen, "%s: read error", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[len] = 0;
    if (strlen(buf) != len) {
        s_fail(err, errlen, "%s: a NUL byte at offset %zu: not a JSON text", path, strlen(buf));
        free(buf);
        return NULL;
    }
    return buf;
}

int qr_g16_write_text(const char *path, const char *text, char *err, size_t errlen)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp)
        return s_fail(err, errlen, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        s_fail(err, errlen, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        s_fail(err, errlen, "%s: %s", ok ? path : tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

/* ---- readers ---- */

/* Where a value sits, for messages: "pi_b[1][0]" */
typedef struct {
    const char *name; /* file */
    char *err;
    size_t errlen;
} s_ctx_t;

/* -1: the text is not the expected shape */
static int s_bad(s_ctx_t *c, const char *where, const char *what)
{
    return s_fail(c->err, c->errlen, "%s: %s: %s", c->name, where, what);
}

/* -2: well formed, but a value is not a field element or a point of the
 * group (QR_G16_JSON_EINVALID) */
static int s_invalid(s_ctx_t *c, const char *where, const char *what)
{
    s_fail(c->err, c->errlen, "%s: %s: %s", c->name, where, what);
    return QR_G16_JSON_EINVALID;
}

static json_t *s_parse(s_ctx_t *c, const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        s_fail(c->err, c->errlen, "%s: line %d, column %d: %s", c->name, je.line, je.column,
               je.text);
    return j;
}

static int s_dec(s_ctx_t *c, const char *where, json_t *v, bool fr, void *out)
{
    if (!json_is_string(v))
        return s_bad(c, where, "not a decimal string");
    const char *s = json_string_value(v);
    if (!*s || strspn(s, "0123456789") != strlen(s))
        return s_bad(c, where, "not a decimal string");
    int rc = fr ? qr_fr_from_dec(out, s) : qr_fp_from_dec(out, s);
    if (rc)
        return s_invalid(c, where, fr ? "not below r" : "not below p");
    return 0;
}

static json_t *s_array(s_ctx_t *c, const char *where, json_t *v, size_t n)
{
    if (!json_is_array(v)) {
        s_bad(c, where, "not an array");
        return NULL;
    }
    if (json_array_size(v) != n) {
        char m[64];
        snprintf(m, sizeof m, "%zu elements, expected %zu", json_array_size(v), n);
        s_bad(c, where, m);
        return NULL;
    }
    return v;
}

static int s_fp2(s_ctx_t *c, const char *where, json_t *v, qr_fp2_t *out)
{
    char w[96];
    int rc;
    if (!s_array(c, where, v, 2))
        return -1;
    snprintf(w, sizeof w, "%s[0]", where);
    if ((rc = s_dec(c, w, json_array_get(v, 0), false, &out->c0)))
        return rc;
    snprintf(w, sizeof w, "%s[1]", where);
    return s_dec(c, w, json_array_get(v, 1), false, &out->c1);
}

/* A projective triple: z = 1 gives the point, z = 0 infinity (any x, y are
 * refused but the canonical 0, 1), anything else is not what snarkjs
 * writes and is refused rather than normalised */
static int s_g1(s_ctx_t *c, const char *where, json_t *v, qr_g1_affine_t *out)
{
    char w[96];
    qr_fp_t x, y, z;
    int rc;
    if (!json_is_array(v) || json_array_size(v) != 3)
        return s_bad(c, where, "not a G1 point [x, y, z]");
    snprintf(w, sizeof w, "%s[0]", where);
    if ((rc = s_dec(c, w, json_array_get(v, 0), false, &x)))
        return rc;
    snprintf(w, sizeof w, "%s[1]", where);
    if ((rc = s_dec(c, w, json_array_get(v, 1), false, &y)))
        return rc;
    snprintf(w, sizeof w, "%s[2]", where);
    if ((rc = s_dec(c, w, json_array_get(v, 2), false, &z)))
        return rc;
    if (qr_fp_is_zero(&z)) {
        if (!qr_fp_is_zero(&x) || !qr_fp_is_one(&y))
            return s_invalid(c, where, "infinity must be written [\"0\", \"1\", \"0\"]");
        memset(out, 0, sizeof *out);
        return 0;
    }
    if (!qr_fp_is_one(&z))
        return s_invalid(c, where, "z is neither 1 nor 0 (not a normalised point)");
    out->x = x;
    out->y = y;
    if ((qr_fp_is_zero(&x) && qr_fp_is_zero(&y)) || !qr_g1_affine_on_curve(out))
        return s_invalid(c, where, "not on the curve");
    return 0;
}

static int s_g2(s_ctx_t *c, const char *where, json_t *v, qr_g2_affine_t *out)
{
    char w[96];
    qr_fp2_t x, y, z;
    int rc;
    if (!json_is_array(v) || json_array_size(v) != 3)
        return s_bad(c, where, "not a G2 point [[x0, x1], [y0, y1], [z0, z1]]");
    snprintf(w, sizeof w, "%s[0]", where);
    if ((rc = s_fp2(c, w, json_array_get(v, 0), &x)))
        return rc;
    snprintf(w, sizeof w, "%s[1]", where);
    if ((rc = s_fp2(c, w, json_array_get(v, 1), &y)))
        return rc;
    snprintf(w, sizeof w, "%s[2]", where);
    if ((rc = s_fp2(c, w, json_array_get(v, 2), &z)))
        return rc;
    qr_fp2_t one;
    qr_fp2_one(&one);
    if (qr_fp2_is_zero(&z)) {
        if (!qr_fp2_is_zero(&x) || !qr_fp2_eq(&y, &one))
            return s_invalid(c, where,
                             "infinity must be written [[\"0\", \"0\"], "
                             "[\"1\", \"0\"], [\"0\", \"0\"]]");
        memset(out, 0, sizeof *out);
        return 0;
    }
    if (!qr_fp2_eq(&z, &one))
        return s_invalid(c, where, "z is neither 1 nor 0 (not a normalised point)");
    out->x = x;
    out->y = y;
    if ((qr_fp2_is_zero(&x) && qr_fp2_is_zero(&y)) || !qr_g2_affine_on_curve(out))
        return s_invalid(c, where, "not on the twist curve");
    if (!qr_g2_in_subgroup(out))
        return s_invalid(c, where, "not in G2 (on the twist, outside the order-r subgroup)");
    return 0;
}

/* "protocol" and "curve", when present, must be ours */
static int s_tags(s_ctx_t *c, json_t *o)
{
    json_t *v = json_object_get(o, "protocol");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "groth16") != 0))
        return s_bad(c, "protocol", "not \"groth16\"");
    v = json_object_get(o, "curve");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "bn128") != 0))
        return s_bad(c, "curve", "not \"bn128\" (BN254)");
    return 0;
}

static json_t *s_key(s_ctx_t *c, json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        s_bad(c, key, "missing");
    return v;
}

int qr_g16_proof_from_json(qr_g16_proof_t *p, const char *text, const char *name, char *err,
                           size_t errlen)
{
    s_ctx_t c = {name, err, errlen};
    json_t *j = s_parse(&c, text);
    if (!j)
        return -1;
    int rc = -1;
    json_t *a, *b, *cc;
    if (!json_is_object(j)) {
        s_bad(&c, "top level", "not an object");
        goto done;
    }
    if (s_tags(&c, j) || !(a = s_key(&c, j, "pi_a")) || !(b = s_key(&c, j, "pi_b")) ||
        !(cc = s_key(&c, j, "pi_c")))
        goto done;
    if ((rc = s_g1(&c, "pi_a", a, &p->a)) || (rc = s_g2(&c, "pi_b", b, &p->b)) ||
        (rc = s_g1(&c, "pi_c", cc, &p->c)))
        goto done;
done:
    json_decref(j);
    return rc;
}

int qr_g16_public_from_json(qr_fr_t **pub, uint32_t *n, const char *text, const char *name,
                            char *err, size_t errlen)
{
    s_ctx_t c = {name, err, errlen};
    *pub = NULL;
    *n = 0;
    json_t *j = s_parse(&c, text);
    if (!j)
        return -1;
    int rc = -1;
    if (!json_is_array(j)) {
        s_bad(&c, "top level", "not an array of public signals");
        goto done;
    }
    size_t len = json_array_size(j);
    if (len > UINT32_MAX) {
        s_bad(&c, "top level", "too many public signals");
        goto done;
    }
    qr_fr_t *v = malloc((len ? len : 1) * sizeof *v);
    if (!v) {
        s_bad(&c, "top level", "out of memory");
        goto done;
    }
    for (size_t i = 0; i < len; i++) {
        char w[32];
        snprintf(w, sizeof w, "[%zu]", i);
        if ((rc = s_dec(&c, w, json_array_get(j, i), true, &v[i]))) {
            free(v);
            goto done;
        }
    }
    *pub = v;
    *n = (uint32_t)len;
    rc = 0;
done:
    json_decref(j);
    return rc;
}

qr_g16_vk_t *qr_g16_vk_from_json(const char *text, const char *name, char *err, size_t errlen)
{
    s_ctx_t c = {name, err, errlen};
    json_t *j = s_parse(&c, text);
    if (!j)
        return NULL;
    qr_g16_vk_t *vk = NULL;
    json_t *v, *ic;
    if (!json_is_object(j)) {
        s_bad(&c, "top level", "not an object");
        goto fail;
    }
    if (s_tags(&c, j) || !(v = s_key(&c, j, "nPublic")))
        goto fail;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) >= (json_int_t)UINT32_MAX) {
        s_bad(&c, "nPublic", "not a count");
        goto fail;
    }
    uint32_t np = (uint32_t)json_integer_value(v);
    if (!(ic = s_key(&c, j, "IC")))
        goto fail;
    if (!json_is_array(ic) || json_array_size(ic) != (size_t)np + 1) {
        s_bad(&c, "IC", "not an array of nPublic + 1 points");
        goto fail;
    }
    vk = qr_g16_vk_new(np);
    if (!vk) {
        s_bad(&c, "IC", "out of memory");
        goto fail;
    }
    if (!(v = s_key(&c, j, "vk_alpha_1")) || s_g1(&c, "vk_alpha_1", v, &vk->alpha1) ||
        !(v = s_key(&c, j, "vk_beta_2")) || s_g2(&c, "vk_beta_2", v, &vk->beta2) ||
        !(v = s_key(&c, j, "vk_gamma_2")) || s_g2(&c, "vk_gamma_2", v, &vk->gamma2) ||
        !(v = s_key(&c, j, "vk_delta_2")) || s_g2(&c, "vk_delta_2", v, &vk->delta2))
        goto fail;
    for (uint32_t i = 0; i <= np; i++) {
        char w[32];
        snprintf(w, sizeof w, "IC[%u]", i);
        if (s_g1(&c, w, json_array_get(ic, i), &vk->ic[i]))
            goto fail;
    }
    /* optional (the verifier does not need it), but when present it must
     * be right: a mismatch means the file was edited or damaged */
    v = json_object_get(j, "vk_alphabeta_12");
    if (v) {
        qr_fp12_t want, got;
        qr_fp2_t *coef[2][3] = {{&got.c0.c0, &got.c0.c1, &got.c0.c2},
                                {&got.c1.c0, &got.c1.c1, &got.c1.c2}};
        if (!s_array(&c, "vk_alphabeta_12", v, 2))
            goto fail;
        for (int i = 0; i < 2; i++) {
            char w[64];
            snprintf(w, sizeof w, "vk_alphabeta_12[%d]", i);
            json_t *h = s_array(&c, w, json_array_get(v, i), 3);
            if (!h)
                goto fail;
            for (int k = 0; k < 3; k++) {
                snprintf(w, sizeof w, "vk_alphabeta_12[%d][%d]", i, k);
                if (s_fp2(&c, w, json_array_get(h, k), coef[i][k]))
                    goto fail;
            }
        }
        qr_bn254_pairing(&want, &vk->alpha1, &vk->beta2);
        if (!qr_fp12_eq(&want, &got)) {
            s_bad(&c, "vk_alphabeta_12", "is not e(vk_alpha_1, vk_beta_2)");
            goto fail;
        }
    }
    json_decref(j);
    return vk;
fail:
    qr_g16_vk_destroy(&vk);
    json_decref(j);
    return NULL;
}

int qr_g16_proof_load(qr_g16_proof_t *p, const char *path, char *err, size_t errlen)
{
    char *t = qr_g16_read_text(path, err, errlen);
    if (!t)
        return -1;
    int rc = qr_g16_proof_from_json(p, t, path, err, errlen);
    free(t);
    return rc;
}

int qr_g16_public_load(qr_fr_t **pub, uint32_t *n, const char *path, char *err, size_t errlen)
{
    *pub = NULL;
    *n = 0;
    char *t = qr_g16_read_text(path, err, errlen);
    if (!t)
        return -1;
    int rc = qr_g16_public_from_json(pub, n, t, path, err, errlen);
    free(t);
    return rc;
}

qr_g16_vk_t *qr_g16_vk_load(const char *path, char *err, size_t errlen)
{
    char *t = qr_g16_read_text(path, err, errlen);
    if (!t)
        return NULL;
    qr_g16_vk_t *vk = qr_g16_vk_from_json(t, path, err, errlen);
    free(t);
    return vk;
}
