/* Groth16 prover speed (common/zk/prover.c) and its parts, for bench/zk.sh.
 * Prints one key=value line per figure.
 *
 *   zk_prove msm [THREADS]            G1 MSM 2^16, 2^18, 2^20; G2 MSM 2^16
 *   zk_prove ntt [THREADS]            NTT and coset NTT 2^16, 2^18, 2^20
 *   zk_prove prove LOG [THREADS] [REPS]
 *       a synthetic circuit filling a 2^LOG domain (2^LOG - 2 constraints,
 *       one public output), a key from known secrets (g16_toy.c), then
 *       REPS proofs (best time kept), each checked with qr_g16_verify
 *   zk_prove export LOG DIR [THREADS] [REPS]
 *       the same, and writes DIR/circuit.zkey and DIR/witness.wtns (the
 *       snarkjs formats, so `snarkjs groth16 prove` runs the same key and
 *       witness) plus our proof as DIR/proof.json and DIR/public.json for
 *       `snarkjs groth16 verify`
 *
 * Timings are wall clock on whatever else the machine runs; MSM and NTT
 * rows are best of three. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "g16_json.h"
#include "g16_toy.h"
#include "msm.h"
#include "ntt.h"
#include "prover.h"
#include "verify.h"

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *s_alloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "zk_prove: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static uint64_t s_seed = 0x1234567890abcdefull;

static void s_rand_fr(qr_fr_t *a)
{
    uint64_t v[4];
    for (int i = 0; i < 4; i++) {
        uint64_t z = (s_seed += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        v[i] = z ^ (z >> 31);
    }
    v[3] &= 0x1fffffffffffffffull;
    qr_fr_from_canonical(a, v);
}

static void s_msm(unsigned threads)
{
    size_t nmax = (size_t)1 << 20;
    qr_fr_t *k = s_alloc(nmax * sizeof *k);
    qr_msm_scalar_t *ks = s_alloc(nmax * sizeof *ks);
    qr_g1_affine_t *p = s_alloc(nmax * sizeof *p), g;
    for (size_t i = 0; i < nmax; i++)
        s_rand_fr(&k[i]);
    qr_g1_generator(&g);
    if (qr_g1_mul_fixed_batch(p, &g, k, nmax, threads))
        exit(1);
    for (size_t i = 0; i < nmax; i++) /* fresh scalars, unrelated to the bases */
        s_rand_fr(&k[i]);
    qr_msm_scalars_from_fr(ks, k, nmax, threads);
    for (unsigned lg = 16; lg <= 20; lg += 2) {
        size_t n = (size_t)1 << lg;
        double best = 1e30;
        qr_g1_t out;
        for (int rep = 0; rep < (lg < 20 ? 3 : 2); rep++) {
            double t0 = s_now();
            if (qr_g1_msm(&out, p, ks, n, threads))
                exit(1);
            double dt = s_now() - t0;
            best = dt < best ? dt : best;
        }
        printf("msm_g1_2^%u_s=%.3f points_per_s=%.0f window=%u threads=%u\n", lg, best, n / best,
               qr_msm_window(n, 0, threads), threads);
    }
    free(p);
    size_t n2 = (size_t)1 << 16;
    qr_g2_affine_t *q = s_alloc(n2 * sizeof *q), g2;
    qr_g2_generator(&g2);
    if (qr_g2_mul_fixed_batch(q, &g2, k, n2, threads))
        exit(1);
    double best = 1e30;
    qr_g2_t out2;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = s_now();
        if (qr_g2_msm(&out2, q, ks, n2, threads))
            exit(1);
        double dt = s_now() - t0;
        best = dt < best ? dt : best;
    }
    printf("msm_g2_2^16_s=%.3f points_per_s=%.0f window=%u threads=%u\n", best, n2 / best,
           qr_msm_window(n2, 1, threads), threads);
    free(q);
    free(k);
    free(ks);
}

static void s_ntt(unsigned threads)
{
    for (unsigned lg = 16; lg <= 20; lg += 2) {
        size_t n = (size_t)1 << lg;
        qr_ntt_t *d = qr_ntt_new(lg, threads);
        qr_fr_t *a = s_alloc(n * sizeof *a), sh;
        if (!d)
            exit(1);
        for (size_t i = 0; i < n; i++)
            s_rand_fr(&a[i]);
        qr_fr_root_of_unity(&sh, lg + 1);
        double bf = 1e30, bc = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = s_now();
            qr_ntt_inverse(d, a);
            double t1 = s_now();
            qr_ntt_coset_forward(d, a, &sh);
            double t2 = s_now();
            bf = t1 - t0 < bf ? t1 - t0 : bf;
            bc = t2 - t1 < bc ? t2 - t1 : bc;
        }
        printf("ntt_inverse_2^%u_ms=%.1f ntt_coset_2^%u_ms=%.1f elements_per_s=%.0f threads=%u\n",
               lg, bf * 1e3, lg, bc * 1e3, n / bf, threads);
        free(a);
        qr_ntt_destroy(&d);
    }
}

/* ---- snarkjs file writers (binfile: magic, version, sections) ---- */

static void s_u32(FILE *f, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    fwrite(b, 1, 4, f);
}

static void s_section(FILE *f, uint32_t type, uint64_t size)
{
    s_u32(f, type);
    s_u32(f, (uint32_t)size);
    s_u32(f, (uint32_t)(size >> 32));
}

static void s_fr_le(FILE *f, const uint64_t l[4])
{
    uint8_t b[32];
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(l[i / 8] >> (8 * (i % 8)));
    fwrite(b, 1, 32, f);
}

static void s_g1(FILE *f, const qr_g1_affine_t *p)
{
    uint8_t b[64];
    qr_g1_to_zkey(b, p);
    fwrite(b, 1, 64, f);
}

static void s_g2(FILE *f, const qr_g2_affine_t *p)
{
    uint8_t b[128];
    qr_g2_to_zkey(b, p);
    fwrite(b, 1, 128, f);
}

/* The .zkey layout of snarkjs's zkey_new.js (see zkey.h).  Coefficients:
 * zkey_new writes the r1cs value n as the integer n R^2 mod r (it
 * multiplies by R^2 in Montgomery arithmetic and writes out of Montgomery
 * form), i.e. the limbs of our element n R. */
static int s_write_zkey(const char *path, const qr_g16_pk_t *pk)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    const uint64_t q[4] = QR_FP_MOD, r[4] = QR_FR_MOD;
    size_t nv = pk->n_vars, np1 = (size_t)pk->n_public + 1, n = pk->domain_size;
    fwrite("zkey", 1, 4, f);
    s_u32(f, 1);
    s_u32(f, 10);
    s_section(f, 1, 4);
    s_u32(f, 1);
    s_section(f, 2, 4 + 32 + 4 + 32 + 4 * 3 + 64 * 3 + 128 * 3);
    s_u32(f, 32);
    s_fr_le(f, q);
    s_u32(f, 32);
    s_fr_le(f, r);
    s_u32(f, pk->n_vars);
    s_u32(f, pk->n_public);
    s_u32(f, pk->domain_size);
    s_g1(f, &pk->alpha1);
    s_g1(f, &pk->beta1);
    s_g2(f, &pk->beta2);
    s_g2(f, &pk->gamma2);
    s_g1(f, &pk->delta1);
    s_g2(f, &pk->delta2);
    s_section(f, 3, np1 * 64);
    for (size_t i = 0; i < np1; i++)
        s_g1(f, &pk->ic[i]);
    s_section(f, 4, 4 + pk->n_coefs * 44);
    s_u32(f, (uint32_t)pk->n_coefs);
    const qr_fr_t r2 = {QR_FR_R2}; /* the element R */
    for (size_t i = 0; i < pk->n_coefs; i++) {
        const qr_g16_coef_t *c = &pk->coefs[i];
        qr_fr_t v;
        qr_fr_mul(&v, &c->value, &r2);
        s_u32(f, c->matrix);
        s_u32(f, c->constraint);
        s_u32(f, c->signal);
        s_fr_le(f, v.l);
    }
    s_section(f, 5, nv * 64);
    for (size_t i = 0; i < nv; i++)
        s_g1(f, &pk->a[i]);
    s_section(f, 6, nv * 64);
    for (size_t i = 0; i < nv; i++)
        s_g1(f, &pk->b1[i]);
    s_section(f, 7, nv * 128);
    for (size_t i = 0; i < nv; i++)
        s_g2(f, &pk->b2[i]);
    s_section(f, 8, (nv - np1) * 64);
    for (size_t i = np1; i < nv; i++)
        s_g1(f, &pk->c[i]);
    s_section(f, 9, n * 64);
    for (size_t i = 0; i < n; i++)
        s_g1(f, &pk->h[i]);
    /* contributions: a zero circuit hash, none made */
    s_section(f, 10, 64 + 4);
    uint8_t zero[64] = {0};
    fwrite(zero, 1, 64, f);
    s_u32(f, 0);
    return fclose(f) == 0 ? 0 : -1;
}

static int s_write_wtns(const char *path, const qr_fr_t *w, uint32_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    const uint64_t r[4] = QR_FR_MOD;
    fwrite("wtns", 1, 4, f);
    s_u32(f, 2);
    s_u32(f, 2);
    s_section(f, 1, 4 + 32 + 4);
    s_u32(f, 32);
    s_fr_le(f, r);
    s_u32(f, n);
    s_section(f, 2, (uint64_t)n * 32);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t v[4];
        qr_fr_to_canonical(v, &w[i]);
        s_fr_le(f, v);
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int s_prove(unsigned lg, const char *dir, unsigned threads, int reps)
{
    uint32_t nc = ((uint32_t)1 << lg) - 2; /* + 1 public + 1 = the domain */
    qr_g16_toy_r1cs_t cs;
    qr_g16_toy_term_t *terms;
    qr_fr_t *w;
    char err[512] = "";
    double t0 = s_now();
    if (qr_g16_toy_circuit(nc, lg, &cs, &terms, &w))
        return 1;
    qr_g16_toy_secrets_t sec;
    qr_g16_toy_secrets(&sec, 0x5ec0de + lg);
    qr_g16_toy_t *key = qr_g16_toy_setup(&cs, &sec, threads, err, sizeof err);
    if (!key) {
        fprintf(stderr, "zk_prove: %s\n", err);
        return 1;
    }
    double t_setup = s_now() - t0;
    qr_g16_timing_t best, tm;
    qr_g16_proof_t p;
    memset(&best, 0, sizeof best);
    best.total = 1e30;
    if (reps < 1)
        reps = 1;
    for (int rep = 0; rep < reps; rep++) {
        if (qr_g16_prove_timed(&key->pk, w, cs.n_vars, NULL, NULL, (int)threads, &tm, &p, err,
                               sizeof err)) {
            fprintf(stderr, "zk_prove: %s\n", err);
            return 1;
        }
        if (tm.total < best.total)
            best = tm;
    }
    bool ok = qr_g16_verify(&key->vk, &w[1], 1, &p);
    printf("constraints=%u domain=2^%u vars=%u setup_s=%.2f prove_s=%.3f abc_s=%.3f ntt_s=%.3f "
           "msm_g1_s=%.3f msm_g2_s=%.3f threads=%u verified=%s\n",
           nc, lg, cs.n_vars, t_setup, best.total, best.abc, best.ntt, best.msm_g1, best.msm_g2,
           threads, ok ? "yes" : "NO");
    int rc = ok ? 0 : 1;
    if (dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/circuit.zkey", dir);
        if (s_write_zkey(path, &key->pk))
            rc = 1;
        snprintf(path, sizeof path, "%s/witness.wtns", dir);
        if (s_write_wtns(path, w, cs.n_vars))
            rc = 1;
        char *pj = qr_g16_proof_to_json(&p), *pub = qr_g16_public_to_json(&w[1], 1);
        snprintf(path, sizeof path, "%s/proof.json", dir);
        if (!pj || qr_g16_write_text(path, pj, err, sizeof err))
            rc = 1;
        snprintf(path, sizeof path, "%s/public.json", dir);
        if (!pub || qr_g16_write_text(path, pub, err, sizeof err))
            rc = 1;
        free(pj);
        free(pub);
        if (rc)
            fprintf(stderr, "zk_prove: writing into %s failed %s\n", dir, err);
    }
    qr_g16_toy_destroy(&key);
    free(terms);
    free(w);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "msm") == 0) {
        s_msm(qr_msm_threads(argc > 2 ? (unsigned)atoi(argv[2]) : 0));
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "ntt") == 0) {
        s_ntt(qr_msm_threads(argc > 2 ? (unsigned)atoi(argv[2]) : 0));
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "prove") == 0) {
        unsigned th = qr_msm_threads(argc > 3 ? (unsigned)atoi(argv[3]) : 0);
        return s_prove((unsigned)atoi(argv[2]), NULL, th, argc > 4 ? atoi(argv[4]) : 1);
    }
    if (argc >= 4 && strcmp(argv[1], "export") == 0) {
        unsigned th = qr_msm_threads(argc > 4 ? (unsigned)atoi(argv[4]) : 0);
        return s_prove((unsigned)atoi(argv[2]), argv[3], th, argc > 5 ? atoi(argv[5]) : 1);
    }
    fprintf(stderr, "usage: zk_prove msm|ntt [THREADS] | prove LOG [THREADS [REPS]] | "
                    "export LOG DIR [THREADS [REPS]]\n");
    return 2;
}
