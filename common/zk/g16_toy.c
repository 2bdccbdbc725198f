/* A Groth16 setup from known secrets and a synthetic circuit; see
 * g16_toy.h (tests and benchmarks only). */
#include "g16_toy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msm.h"
#include "ntt.h"

static void *s_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

static uint64_t s_mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* a field element from the seed stream (below 2^253, so < r) */
static void s_rand_fr(qr_fr_t *r, uint64_t *s)
{
    uint64_t v[4] = {s_mix(s), s_mix(s), s_mix(s), s_mix(s) & 0x1fffffffffffffffull};
    qr_fr_from_canonical(r, v);
}

void qr_g16_toy_secrets(qr_g16_toy_secrets_t *sec, uint64_t seed)
{
    s_rand_fr(&sec->tau, &seed);
    s_rand_fr(&sec->alpha, &seed);
    s_rand_fr(&sec->beta, &seed);
    s_rand_fr(&sec->gamma, &seed);
    s_rand_fr(&sec->delta, &seed);
}

int qr_g16_toy_lagrange(qr_fr_t *out, size_t cnt, size_t m, const qr_fr_t *tau, const qr_fr_t *x0,
                        const qr_fr_t *step)
{
    qr_fr_t *den = malloc(cnt * sizeof *den), *scr = malloc(cnt * sizeof *scr);
    if (!den || !scr) {
        free(den);
        free(scr);
        return -1;
    }
    qr_fr_t x = *x0, mm, zt, one;
    qr_fr_one(&one);
    qr_fr_from_u64(&mm, m);
    uint64_t e[4] = {m, 0, 0, 0};
    qr_fr_pow(&zt, tau, e);
    qr_fr_sub(&zt, &zt, &one);
    int rc = 0;
    for (size_t j = 0; j < cnt; j++) {
        qr_fr_sub(&den[j], tau, &x);
        if (qr_fr_is_zero(&den[j]))
            rc = -1;
        qr_fr_mul(&den[j], &den[j], &mm);
        out[j] = x; /* x_j, kept for the numerator */
        qr_fr_mul(&x, &x, step);
    }
    if (rc == 0) {
        qr_fr_batch_inv(den, den, cnt, scr);
        for (size_t j = 0; j < cnt; j++) {
            qr_fr_mul(&out[j], &out[j], &zt);
            qr_fr_mul(&out[j], &out[j], &den[j]);
        }
    }
    free(den);
    free(scr);
    return rc;
}

qr_g16_toy_t *qr_g16_toy_setup(const qr_g16_toy_r1cs_t *cs, const qr_g16_toy_secrets_t *sec,
                               unsigned threads, char *err, size_t errlen)
{
    if (!cs || !sec || cs->n_vars < cs->n_public + 1 || cs->n_vars == 0)
        return s_fail(err, errlen, "toy setup: bad R1CS sizes");
    size_t nA = 0, nB = 0;
    for (size_t t = 0; t < cs->n_terms; t++) {
        const qr_g16_toy_term_t *x = &cs->terms[t];
        if (x->matrix > 2 || x->constraint >= cs->n_constraints || x->signal >= cs->n_vars)
            return s_fail(err, errlen, "toy setup: term %zu out of range", t);
        nA += x->matrix == 0;
        nB += x->matrix == 1;
    }
    if (qr_fr_is_zero(&sec->alpha) || qr_fr_is_zero(&sec->beta) || qr_fr_is_zero(&sec->gamma) ||
        qr_fr_is_zero(&sec->delta))
        return s_fail(err, errlen, "toy setup: a zero secret");
    uint64_t rows = (uint64_t)cs->n_constraints + cs->n_public + 1;
    unsigned log = 0;
    while (((uint64_t)1 << log) < rows)
        log++;
    if (log > QR_NTT_MAX_LOG - 1)
        return s_fail(err, errlen, "toy setup: %llu rows need a domain over 2^27",
                      (unsigned long long)rows);
    size_t n = (size_t)1 << log, nv = cs->n_vars, np1 = (size_t)cs->n_public + 1;
    size_t ncoef = nA + nB + np1;

    qr_g16_toy_t *self = calloc(1, sizeof *self);
    size_t bytes = np1 * sizeof(qr_g1_affine_t) * 2 + ncoef * sizeof(qr_g16_coef_t) +
                   nv * (3 * sizeof(qr_g1_affine_t) + sizeof(qr_g2_affine_t)) +
                   n * sizeof(qr_g1_affine_t);
    size_t nsc1 = 3 * nv + n + np1 + 3, nsc2 = nv + 3;
    char *mem = malloc(bytes);
    qr_fr_t *lag = malloc(n * sizeof *lag), *abc = calloc(3 * nv, sizeof *abc);
    qr_fr_t *sc1 = malloc(nsc1 * sizeof *sc1), *sc2 = malloc(nsc2 * sizeof *sc2);
    qr_g1_affine_t *p1 = malloc(nsc1 * sizeof *p1);
    qr_g2_affine_t *p2 = malloc(nsc2 * sizeof *p2);
    if (!self || !mem || !lag || !abc || !sc1 || !sc2 || !p1 || !p2) {
        s_fail(err, errlen, "toy setup: out of memory");
        goto fail;
    }
    qr_g16_pk_t *pk = &self->pk;
    pk->mem = mem;
    pk->ic = (qr_g1_affine_t *)mem;
    self->vk.ic = pk->ic + np1;
    pk->coefs = (qr_g16_coef_t *)(self->vk.ic + np1);
    pk->a = (qr_g1_affine_t *)(pk->coefs + ncoef);
    pk->b1 = pk->a + nv;
    pk->c = pk->b1 + nv;
    pk->h = pk->c + nv;
    pk->b2 = (qr_g2_affine_t *)(pk->h + n);
    pk->n_vars = cs->n_vars;
    pk->n_public = cs->n_public;
    pk->domain_size = (uint32_t)n;
    pk->log_domain = log;
    pk->n_coefs = ncoef;

    /* A_i(tau), B_i(tau), C_i(tau) in the Lagrange basis */
    qr_fr_t one, w, w2;
    qr_fr_one(&one);
    qr_fr_root_of_unity(&w, log);
    qr_fr_root_of_unity(&w2, log + 1);
    if (qr_g16_toy_lagrange(lag, n, n, &sec->tau, &one, &w) != 0) {
        s_fail(err, errlen, "toy setup: tau is on the domain");
        goto fail;
    }
    qr_fr_t *A = abc, *B = abc + nv, *C = abc + 2 * nv;
    size_t k = 0;
    for (size_t t = 0; t < cs->n_terms; t++) {
        const qr_g16_toy_term_t *x = &cs->terms[t];
        qr_fr_t v;
        qr_fr_mul(&v, &x->value, &lag[x->constraint]);
        qr_fr_add(&abc[x->matrix * nv + x->signal], &abc[x->matrix * nv + x->signal], &v);
        if (x->matrix < 2) {
            qr_g16_coef_t *co = &pk->coefs[k++];
            co->matrix = x->matrix;
            co->constraint = x->constraint;
            co->signal = x->signal;
            co->value = x->value;
        }
    }
    for (size_t s = 0; s < np1; s++) { /* snarkjs's rows binding the public signals */
        qr_fr_add(&A[s], &A[s], &lag[cs->n_constraints + s]);
        qr_g16_coef_t *co = &pk->coefs[k++];
        co->matrix = 0;
        co->constraint = cs->n_constraints + (uint32_t)s;
        co->signal = (uint32_t)s;
        co->value = one;
    }

    /* the G1 scalars: a, b1, c, h, ic, alpha, beta, delta */
    qr_fr_t ig, id;
    qr_fr_inv(&ig, &sec->gamma);
    qr_fr_inv(&id, &sec->delta);
    qr_fr_t *sa = sc1, *sb = sc1 + nv, *scc = sc1 + 2 * nv, *sh = sc1 + 3 * nv, *sic = sh + n;
    for (size_t i = 0; i < nv; i++) {
        qr_fr_t t, u;
        sa[i] = A[i];
        sb[i] = B[i];
        qr_fr_mul(&t, &sec->beta, &A[i]);
        qr_fr_mul(&u, &sec->alpha, &B[i]);
        qr_fr_add(&t, &t, &u);
        qr_fr_add(&t, &t, &C[i]);
        if (i < np1) {
            qr_fr_mul(&sic[i], &t, &ig);
            qr_fr_zero(&scc[i]);
        } else {
            qr_fr_mul(&scc[i], &t, &id);
        }
    }
    if (qr_g16_toy_lagrange(sh, n, 2 * n, &sec->tau, &w2, &w) != 0) {
        s_fail(err, errlen, "toy setup: tau is on the doubled domain");
        goto fail;
    }
    for (size_t j = 0; j < n; j++)
        qr_fr_mul(&sh[j], &sh[j], &id);
    sic[np1] = sec->alpha;
    sic[np1 + 1] = sec->beta;
    sic[np1 + 2] = sec->delta;
    for (size_t i = 0; i < nv; i++)
        sc2[i] = B[i];
    sc2[nv] = sec->beta;
    sc2[nv + 1] = sec->gamma;
    sc2[nv + 2] = sec->delta;

    qr_g1_affine_t g1;
    qr_g2_affine_t g2;
    qr_g1_generator(&g1);
    qr_g2_generator(&g2);
    if (qr_g1_mul_fixed_batch(p1, &g1, sc1, nsc1, threads) != 0 ||
        qr_g2_mul_fixed_batch(p2, &g2, sc2, nsc2, threads) != 0) {
        s_fail(err, errlen, "toy setup: out of memory");
        goto fail;
    }
    memcpy(pk->a, p1, nv * sizeof *p1);
    memcpy(pk->b1, p1 + nv, nv * sizeof *p1);
    memcpy(pk->c, p1 + 2 * nv, nv * sizeof *p1);
    memcpy(pk->h, p1 + 3 * nv, n * sizeof *p1);
    memcpy(pk->ic, p1 + 3 * nv + n, np1 * sizeof *p1);
    memcpy(self->vk.ic, pk->ic, np1 * sizeof *p1);
    pk->alpha1 = p1[3 * nv + n + np1];
    pk->beta1 = p1[3 * nv + n + np1 + 1];
    pk->delta1 = p1[3 * nv + n + np1 + 2];
    memcpy(pk->b2, p2, nv * sizeof *p2);
    pk->beta2 = p2[nv];
    pk->gamma2 = p2[nv + 1];
    pk->delta2 = p2[nv + 2];
    self->vk.n_public = cs->n_public;
    self->vk.alpha1 = pk->alpha1;
    self->vk.beta2 = pk->beta2;
    self->vk.gamma2 = pk->gamma2;
    self->vk.delta2 = pk->delta2;
    free(lag);
    free(abc);
    free(sc1);
    free(sc2);
    free(p1);
    free(p2);
    return self;
fail:
    free(mem);
    free(self);
    free(lag);
    free(abc);
    free(sc1);
    free(sc2);
    free(p1);
    free(p2);
    return NULL;
}

void qr_g16_toy_destroy(qr_g16_toy_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->pk.mem);
    free(*self_p);
    *self_p = NULL;
}

int qr_g16_toy_circuit(uint32_t n_constraints, uint64_t seed, qr_g16_toy_r1cs_t *cs,
                       qr_g16_toy_term_t **terms, qr_fr_t **witness)
{
    if (n_constraints < 2 || n_constraints > UINT32_MAX - 3)
        return -1;
    uint32_t N = n_constraints, nv = N + 2; /* 1, out, x_0 .. x_{N-1} */
    size_t cap = (size_t)N * 5;
    qr_g16_toy_term_t *t = malloc(cap * sizeof *t);
    qr_fr_t *w = malloc((size_t)nv * sizeof *w);
    if (!t || !w) {
        free(t);
        free(w);
        return -1;
    }
    size_t k = 0;
#define S_TERM(m, c, s, v)                                                                         \
    do {                                                                                           \
        t[k].matrix = (m);                                                                         \
        t[k].constraint = (c);                                                                     \
        t[k].signal = (s);                                                                         \
        t[k].value = (v);                                                                          \
        k++;                                                                                       \
    } while (0)
    qr_fr_t one, two, ki, u, v;
    qr_fr_one(&one);
    qr_fr_from_u64(&two, 2);
    qr_fr_one(&w[0]);
    s_rand_fr(&w[2], &seed);
    for (uint32_t i = 0; i + 1 < N; i++) {
        qr_fr_from_u64(&ki, i % 7 + 1);
        S_TERM(0, i, 2 + i, one);
        S_TERM(0, i, 0, ki);
        if (i == 0) {
            S_TERM(1, i, 0, two);
            v = two;
        } else {
            S_TERM(1, i, 2 + i - 1, one);
            S_TERM(1, i, 0, one);
            qr_fr_add(&v, &w[2 + i - 1], &one);
        }
        S_TERM(2, i, 2 + i + 1, one);
        qr_fr_add(&u, &w[2 + i], &ki);
        qr_fr_mul(&w[2 + i + 1], &u, &v);
    }
    S_TERM(0, N - 1, 1, one);
    S_TERM(1, N - 1, 0, one);
    S_TERM(2, N - 1, 2 + N - 1, one);
#undef S_TERM
    w[1] = w[2 + N - 1];
    cs->n_vars = nv;
    cs->n_public = 1;
    cs->n_constraints = N;
    cs->terms = t;
    cs->n_terms = k;
    *terms = t;
    *witness = w;
    return 0;
}

bool qr_g16_toy_satisfied(const qr_g16_toy_r1cs_t *cs, const qr_fr_t *w)
{
    size_t m = cs->n_constraints;
    qr_fr_t *e = calloc(3 * (m ? m : 1), sizeof *e);
    if (!e)
        return false;
    for (size_t t = 0; t < cs->n_terms; t++) {
        const qr_g16_toy_term_t *x = &cs->terms[t];
        if (x->matrix > 2 || x->constraint >= m || x->signal >= cs->n_vars) {
            free(e);
            return false;
        }
        qr_fr_t v;
        qr_fr_mul(&v, &x->value, &w[x->signal]);
        qr_fr_add(&e[x->matrix * m + x->constraint], &e[x->matrix * m + x->constraint], &v);
    }
    bool ok = qr_fr_is_one(&w[0]);
    for (size_t j = 0; j < m && ok; j++) {
        qr_fr_t ab;
        qr_fr_mul(&ab, &e[j], &e[m + j]);
        ok = qr_fr_eq(&ab, &e[2 * m + j]);
    }
    free(e);
    return ok;
}
