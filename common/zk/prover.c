/* The Groth16 prover; see prover.h for the steps and snarkjs's
 * groth16_prove.js for the reference it follows line by line. */
#include "prover.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "msm.h"
#include "ntt.h"

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

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int qr_fr_random(qr_fr_t *out)
{
    const uint64_t r[4] = QR_FR_MOD;
    /* rejection sampling on 254-bit draws: r > 2^253, so 3 tries in 4 are
     * kept, and the result is exactly uniform (no modular bias) */
    for (int tries = 0; tries < 256; tries++) {
        uint64_t v[4];
        uint8_t *p = (uint8_t *)v;
        size_t got = 0;
        while (got < sizeof v) {
            ssize_t k = getrandom(p + got, sizeof v - got, 0);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                return -1;
            }
            got += (size_t)k;
        }
        v[3] &= 0x3fffffffffffffffull;
        uint64_t b = 0;
        (void)qr_zk_sbb(v[0], r[0], &b);
        (void)qr_zk_sbb(v[1], r[1], &b);
        (void)qr_zk_sbb(v[2], r[2], &b);
        (void)qr_zk_sbb(v[3], r[3], &b);
        if (b) { /* v < r */
            qr_fr_from_canonical(out, v);
            return 0;
        }
    }
    return -1;
}

/* ---- step 1: A w and B w, one thread per matrix ---- */

typedef struct {
    const qr_g16_pk_t *pk;
    const qr_fr_t *w;
    qr_fr_t *out; /* domain_size elements, zeroed */
    uint32_t matrix;
} s_abc_job_t;

static void *s_abc_run(void *arg)
{
    s_abc_job_t *j = arg;
    const qr_g16_coef_t *co = j->pk->coefs;
    for (size_t i = 0; i < j->pk->n_coefs; i++) {
        if (co[i].matrix != j->matrix)
            continue;
        qr_fr_t t;
        qr_fr_mul(&t, &co[i].value, &j->w[co[i].signal]);
        qr_fr_add(&j->out[co[i].constraint], &j->out[co[i].constraint], &t);
    }
    return NULL;
}

static int s_check_key(const qr_g16_pk_t *pk, char *err, size_t errlen)
{
    if (!pk || !pk->coefs || !pk->a || !pk->b1 || !pk->b2 || !pk->c || !pk->h)
        return s_fail(err, errlen, "prove: incomplete proving key");
    if (pk->log_domain >= QR_NTT_MAX_LOG || pk->domain_size != (1u << pk->log_domain))
        return s_fail(err, errlen, "prove: domain size %u is not 2^k with k < %d",
                      pk->domain_size, QR_NTT_MAX_LOG);
    if (pk->n_vars < (uint64_t)pk->n_public + 1 || pk->n_vars == 0)
        return s_fail(err, errlen, "prove: key has %u signals for %u public ones", pk->n_vars,
                      pk->n_public);
    for (size_t i = 0; i < pk->n_coefs; i++) {
        const qr_g16_coef_t *c = &pk->coefs[i];
        if (c->matrix > 1 || c->constraint >= pk->domain_size || c->signal >= pk->n_vars)
            return s_fail(err, errlen,
                          "prove: key coefficient %zu (matrix %u, row %u, signal %u) out of range",
                          i, c->matrix, c->constraint, c->signal);
    }
    return 0;
}

/* ---- step 2: the H evaluations, snarkjs's way ---- */

static int s_h_evals(const qr_g16_pk_t *pk, const qr_fr_t *w, unsigned threads,
                     const qr_g16_backend_t *be, qr_fr_t *a, qr_g16_timing_t *tm, char *err,
                     size_t errlen)
{
    size_t n = pk->domain_size;
    bool gpu_ntt = be && be->ntt;
    qr_fr_t *b = calloc(n, sizeof *b), *c = malloc(n * sizeof *c);
    /* no twiddle table on the CPU when the backend transforms */
    qr_ntt_t *d = gpu_ntt ? NULL : qr_ntt_new(pk->log_domain, threads);
    if (!b || !c || (!d && !gpu_ntt)) {
        free(b);
        free(c);
        qr_ntt_destroy(&d);
        return s_fail(err, errlen, "prove: out of memory (domain 2^%u)", pk->log_domain);
    }
    double t0 = s_now();
    s_abc_job_t ja = {pk, w, a, 0}, jb = {pk, w, b, 1};
    pthread_t tid;
    bool two = threads > 1 && pthread_create(&tid, NULL, s_abc_run, &jb) == 0;
    s_abc_run(&ja);
    if (two)
        pthread_join(tid, NULL);
    else
        s_abc_run(&jb);
    for (size_t i = 0; i < n; i++)
        qr_fr_mul(&c[i], &a[i], &b[i]);
    double t1 = s_now();
    /* snarkjs: inc = w_{k+1}, batchApplyKey(x, 1, inc) then fft, i.e. the
     * values at inc w_k^i; our coset_forward multiplies coefficient j by
     * inc^j and transforms: the same numbers */
    qr_fr_t inc;
    qr_fr_root_of_unity(&inc, pk->log_domain + 1);
    qr_fr_t *v[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        if (gpu_ntt) {
            char why[256] = "";
            if (be->ntt(be->ctx, v[i], pk->log_domain,
                        QR_G16_NTT_INVERSE | QR_G16_NTT_COSET_FORWARD, &inc, why,
                        sizeof why) != 0) {
                s_fail(err, errlen, "prove: %s NTT (%c): %s", be->name ? be->name : "backend",
                       "ABC"[i], why);
                free(b);
                free(c);
                return -1;
            }
            continue;
        }
        qr_ntt_inverse(d, v[i]);
        qr_ntt_coset_forward(d, v[i], &inc);
    }
    for (size_t i = 0; i < n; i++) {
        qr_fr_t t;
        qr_fr_mul(&t, &a[i], &b[i]);
        qr_fr_sub(&a[i], &t, &c[i]);
    }
    double t2 = s_now();
    if (tm) {
        tm->abc = t1 - t0;
        tm->ntt = t2 - t1;
    }
    free(b);
    free(c);
    qr_ntt_destroy(&d);
    return 0;
}

/* One G1 MSM through the backend or the CPU; -1 with err naming `what` */
static int s_g1_msm(const qr_g16_backend_t *be, const char *what, qr_g1_t *out,
                    const qr_g1_affine_t *bases, const qr_msm_scalar_t *k, size_t n, unsigned th,
                    char *err, size_t errlen)
{
    if (be && be->g1_msm) {
        char why[256] = "";
        if (be->g1_msm(be->ctx, out, bases, k, n, why, sizeof why) != 0)
            return s_fail(err, errlen, "prove: %s G1 MSM (%s): %s", be->name ? be->name : "backend",
                          what, why);
        return 0;
    }
    if (qr_g1_msm(out, bases, k, n, th))
        return s_fail(err, errlen, "prove: out of memory in a G1 MSM");
    return 0;
}

/* The same over [lo, hi) of the witness: through the backend with the
 * scalars, on the CPU with their shared digit decomposition dw */
static int s_g1_msm_w(const qr_g16_backend_t *be, const char *what, qr_g1_t *out,
                      const qr_g1_affine_t *bases, const qr_msm_scalar_t *kw,
                      const qr_msm_digits_t *dw, size_t lo, size_t hi, unsigned th, char *err,
                      size_t errlen)
{
    if (!dw)
        return s_g1_msm(be, what, out, bases + lo, kw + lo, hi - lo, th, err, errlen);
    if (qr_g1_msm_digits(out, bases, dw, lo, hi, th))
        return s_fail(err, errlen, "prove: out of memory in a G1 MSM");
    return 0;
}

int qr_g16_prove_timed(const qr_g16_pk_t *pk, const qr_fr_t *w, uint32_t n_w, const qr_fr_t *r,
                       const qr_fr_t *s, int threads, qr_g16_timing_t *timing,
                       qr_g16_proof_t *out, char *err, size_t errlen)
{
    return qr_g16_prove_backend(pk, w, n_w, r, s, threads, NULL, timing, out, err, errlen);
}

int qr_g16_prove_backend(const qr_g16_pk_t *pk, const qr_fr_t *w, uint32_t n_w, const qr_fr_t *r,
                         const qr_fr_t *s, int threads, const qr_g16_backend_t *be,
                         qr_g16_timing_t *timing, qr_g16_proof_t *out, char *err, size_t errlen)
{
    double t_start = s_now();
    if (s_check_key(pk, err, errlen))
        return -1;
    if (!w || n_w != pk->n_vars)
        return s_fail(err, errlen, "prove: witness has %u values, the key wants %u", n_w,
                      pk->n_vars);
    if (!qr_fr_is_one(&w[0]))
        return s_fail(err, errlen, "prove: witness[0] is not 1 (not a witness file's layout)");
    qr_fr_t rr, ss;
    if (r && s) {
        rr = *r;
        ss = *s;
    } else if (qr_fr_random(&rr) || qr_fr_random(&ss)) {
        return s_fail(err, errlen, "prove: no randomness from the OS: %s", strerror(errno));
    }
    unsigned th = qr_msm_threads(threads <= 0 ? 0 : (unsigned)threads);
    qr_g16_timing_t tm;
    memset(&tm, 0, sizeof tm);

    size_t n = pk->domain_size, nv = pk->n_vars, np1 = (size_t)pk->n_public + 1;
    qr_fr_t *hv = calloc(n, sizeof *hv);
    qr_msm_scalar_t *kw = malloc(nv * sizeof *kw), *kh = malloc(n * sizeof *kh);
    if (!hv || !kw || !kh) {
        free(hv);
        free(kw);
        free(kh);
        return s_fail(err, errlen, "prove: out of memory");
    }
    int rc = s_h_evals(pk, w, th, be, hv, &tm, err, errlen);
    if (rc == 0) {
        /* out of Montgomery form once, for all five MSMs */
        qr_msm_scalars_from_fr(kw, w, nv, th);
        qr_msm_scalars_from_fr(kh, hv, n, th);
    }
    free(hv);
    qr_g1_t pa, pb1, pc, ph, t;
    qr_g2_t pb, t2;
    double t0 = s_now(), t1 = t0, t2_ = t0;
    /* on the CPU, one signed-digit decomposition of the witness serves A, B1
     * and C, and B2 as well when the G2 MSM would pick the same window */
    qr_msm_digits_t *dw = NULL;
    if (rc == 0 && !(be && be->g1_msm)) {
        dw = qr_msm_digits_new(kw, nv, 0, th);
        if (!dw)
            rc = s_fail(err, errlen, "prove: out of memory");
    }
    if (rc == 0) {
        if (s_g1_msm_w(be, "A", &pa, pk->a, kw, dw, 0, nv, th, err, errlen) ||
            s_g1_msm_w(be, "B1", &pb1, pk->b1, kw, dw, 0, nv, th, err, errlen) ||
            s_g1_msm_w(be, "C", &pc, pk->c, kw, dw, np1, nv, th, err, errlen) ||
            s_g1_msm(be, "H", &ph, pk->h, kh, n, th, err, errlen))
            rc = -1;
        t1 = s_now();
        if (rc == 0 && be && be->g2_msm) {
            char why[256] = "";
            if (be->g2_msm(be->ctx, &pb, pk->b2, kw, nv, why, sizeof why) != 0)
                rc = s_fail(err, errlen, "prove: %s G2 MSM (B2): %s",
                            be->name ? be->name : "backend", why);
        } else if (rc == 0 && (dw && qr_msm_digits_window(dw) == qr_msm_window(nv, 1, th)
                                   ? qr_g2_msm_digits(&pb, pk->b2, dw, 0, nv, th)
                                   : qr_g2_msm(&pb, pk->b2, kw, nv, th)))
            rc = s_fail(err, errlen, "prove: out of memory in the G2 MSM");
        t2_ = s_now();
    }
    qr_msm_digits_destroy(&dw);
    free(kw);
    free(kh);
    if (rc)
        return rc;

    /* pi_a = alpha1 + A + r delta1 */
    qr_g1_t d1;
    qr_g1_from_affine(&d1, &pk->delta1);
    qr_g1_from_affine(&t, &pk->alpha1);
    qr_g1_add(&pa, &pa, &t);
    qr_g1_mul_fr(&t, &d1, &rr);
    qr_g1_add(&pa, &pa, &t);
    /* pi_b = beta2 + B2 + s delta2 */
    qr_g2_from_affine(&t2, &pk->beta2);
    qr_g2_add(&pb, &pb, &t2);
    qr_g2_t d2;
    qr_g2_from_affine(&d2, &pk->delta2);
    qr_g2_mul_fr(&t2, &d2, &ss);
    qr_g2_add(&pb, &pb, &t2);
    /* b1 = beta1 + B1 + s delta1 */
    qr_g1_from_affine(&t, &pk->beta1);
    qr_g1_add(&pb1, &pb1, &t);
    qr_g1_mul_fr(&t, &d1, &ss);
    qr_g1_add(&pb1, &pb1, &t);
    /* pi_c = C + H + s pi_a + r b1 - r s delta1 */
    qr_g1_add(&pc, &pc, &ph);
    qr_g1_mul_fr(&t, &pa, &ss);
    qr_g1_add(&pc, &pc, &t);
    qr_g1_mul_fr(&t, &pb1, &rr);
    qr_g1_add(&pc, &pc, &t);
    qr_fr_t rs;
    qr_fr_mul(&rs, &rr, &ss);
    qr_fr_neg(&rs, &rs);
    qr_g1_mul_fr(&t, &d1, &rs);
    qr_g1_add(&pc, &pc, &t);

    qr_g1_to_affine(&out->a, &pa);
    qr_g2_to_affine(&out->b, &pb);
    qr_g1_to_affine(&out->c, &pc);
    if (timing) {
        tm.msm_g1 = t1 - t0;
        tm.msm_g2 = t2_ - t1;
        tm.total = s_now() - t_start;
        *timing = tm;
    }
    return 0;
}

int qr_g16_prove_rs(const qr_g16_pk_t *pk, const qr_fr_t *w, uint32_t n_w, const qr_fr_t *r,
                    const qr_fr_t *s, int threads, qr_g16_proof_t *out, char *err,
                    size_t errlen)
{
    if (!r || !s)
        return s_fail(err, errlen, "prove: r and s are required");
    return qr_g16_prove_timed(pk, w, n_w, r, s, threads, NULL, out, err, errlen);
}

int qr_g16_prove(const qr_g16_pk_t *pk, const qr_fr_t *w, uint32_t n_w, int threads,
                 qr_g16_proof_t *out, char *err, size_t errlen)
{
    return qr_g16_prove_timed(pk, w, n_w, NULL, NULL, threads, NULL, out, err, errlen);
}
