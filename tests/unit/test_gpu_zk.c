/* zk.groth16 on the GPU path (common/gpu.c, the prover's backend hook in
 * common/zk/prover.c, worker/executor.c):
 *   - the loader's qr_gpu_g1_msm / g2_msm / ntt against the CPU on the
 *     fake module (tests/unit/fake_cuda.c, which computes with the grid
 *     emulator: the GPU kernels' own code), their argument checks and the
 *     module's errors reaching the caller;
 *   - qr_g16_prove_backend through the fake module: the same proof as the
 *     CPU for the same r and s, which qr_g16_verify accepts, and every
 *     MSM and NTT really went through the module; a failing module fails
 *     the proof with a message naming the step;
 *   - the executor: a zk.groth16 job on a pool whose GPU fails is proved on
 *     the CPU, and one whose GPU works goes through it;
 *   - with a real GPU, the module's MSMs, NTTs and a whole proof against
 *     the CPU (skipped, saying why, without one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "err.h"
#include "executor.h"
#include "g16_toy.h"
#include "gpu.h"
#include "msm.h"
#include "ntt.h"
#include "prover.h"
#include "verify.h"
#include "zk_rand.h"

static uint64_t s_seed = 0x6e1f2a3b4c5d6e7full;

static void s_rand_fr(qr_fr_t *a)
{
    zk_rand_fr(a, &s_seed);
}

/* random scalars with zeros, ones and r - 1 mixed in */
static void s_scalars(qr_msm_scalar_t *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        qr_fr_t x;
        uint64_t sel = zk_rand64(&s_seed) % 8;
        if (sel == 0)
            qr_fr_zero(&x);
        else if (sel == 1)
            qr_fr_one(&x);
        else if (sel == 2) {
            qr_fr_one(&x);
            qr_fr_neg(&x, &x);
        } else
            s_rand_fr(&x);
        qr_fr_to_canonical(k[i].l, &x);
    }
}

static void s_g1_bases(qr_g1_affine_t *p, size_t n)
{
    qr_g1_affine_t g;
    qr_g1_generator(&g);
    qr_fr_t *t = malloc((n ? n : 1) * sizeof *t);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++)
        s_rand_fr(&t[i]);
    assert_int_equal(qr_g1_mul_fixed_batch(p, &g, t, n, 2), 0);
    for (size_t i = 0; i < n; i += 7)
        memset(&p[i], 0, sizeof p[i]); /* infinity */
    free(t);
}

static void s_g2_bases(qr_g2_affine_t *p, size_t n)
{
    qr_g2_affine_t g;
    qr_g2_generator(&g);
    qr_fr_t *t = malloc((n ? n : 1) * sizeof *t);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++)
        s_rand_fr(&t[i]);
    assert_int_equal(qr_g2_mul_fixed_batch(p, &g, t, n, 2), 0);
    for (size_t i = 0; i < n; i += 5)
        memset(&p[i], 0, sizeof p[i]);
    free(t);
}

static qr_gpu_t *s_fake(void)
{
    char err[512];
    qr_gpu_t *g = qr_gpu_open_module(QR_FAKE_CUDA, 0, err, sizeof err);
    if (!g)
        fail_msg("fake module: %s", err);
    return g;
}

static int s_fake_zk_calls(void)
{
    void *dl = dlopen(QR_FAKE_CUDA, RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(dl);
    void *sym = dlsym(dl, "qr_fake_cuda_zk_calls");
    assert_non_null(sym);
    int (*fn)(void);
    memcpy(&fn, &sym, sizeof fn);
    int v = fn();
    dlclose(dl);
    return v;
}

/* ---- the loader's calls against the CPU ---- */

/* MSMs of the sizes given and NTTs up to 2^max_log on g, each against the
 * CPU; the failure message says which */
static void s_compare(qr_gpu_t *g, const size_t *g1n, size_t ng1, const size_t *g2n, size_t ng2,
                      unsigned max_log)
{
    char err[512];
    for (size_t t = 0; t < ng1; t++) {
        size_t n = g1n[t];
        qr_g1_affine_t *p = malloc((n ? n : 1) * sizeof *p);
        qr_msm_scalar_t *k = malloc((n ? n : 1) * sizeof *k);
        assert_true(p && k);
        s_g1_bases(p, n);
        s_scalars(k, n);
        qr_g1_t want, got;
        assert_int_equal(qr_g1_msm(&want, p, k, n, 0), 0);
        if (qr_gpu_g1_msm(g, &got, p, k, n, err, sizeof err) != 0)
            fail_msg("G1 MSM of %zu: %s", n, err);
        if (!qr_g1_eq(&want, &got))
            fail_msg("G1 MSM of %zu points differs from the CPU", n);
        free(p);
        free(k);
    }
    for (size_t t = 0; t < ng2; t++) {
        size_t n = g2n[t];
        qr_g2_affine_t *p = malloc((n ? n : 1) * sizeof *p);
        qr_msm_scalar_t *k = malloc((n ? n : 1) * sizeof *k);
        assert_true(p && k);
        s_g2_bases(p, n);
        s_scalars(k, n);
        qr_g2_t want, got;
        assert_int_equal(qr_g2_msm(&want, p, k, n, 0), 0);
        if (qr_gpu_g2_msm(g, &got, p, k, n, err, sizeof err) != 0)
            fail_msg("G2 MSM of %zu: %s", n, err);
        if (!qr_g2_eq(&want, &got))
            fail_msg("G2 MSM of %zu points differs from the CPU", n);
        free(p);
        free(k);
    }
    for (unsigned lg = 0; lg <= max_log; lg++) {
        size_t n = (size_t)1 << lg;
        qr_ntt_t *d = qr_ntt_new(lg, 2);
        qr_fr_t *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got), inc;
        assert_true(d && want && got);
        qr_fr_root_of_unity(&inc, lg + 1);
        for (unsigned ops = 0; ops < 4; ops++) {
            for (size_t i = 0; i < n; i++)
                s_rand_fr(&want[i]);
            memcpy(got, want, n * sizeof *got);
            if (ops & QR_G16_NTT_INVERSE)
                qr_ntt_inverse(d, want);
            if (ops & QR_G16_NTT_COSET_FORWARD)
                qr_ntt_coset_forward(d, want, &inc);
            if (ops == 0)
                qr_ntt_forward(d, want);
            if (qr_gpu_ntt(g, got, lg, ops, &inc, err, sizeof err) != 0)
                fail_msg("NTT 2^%u ops %u: %s", lg, ops, err);
            if (memcmp(want, got, n * sizeof *got) != 0)
                fail_msg("NTT 2^%u ops %u differs from the CPU", lg, ops);
        }
        qr_ntt_destroy(&d);
        free(want);
        free(got);
    }
}

static void test_fake_calls(void **state)
{
    (void)state;
    qr_gpu_t *g = s_fake();
    const size_t g1n[] = {0, 1, 2, 100, 513}, g2n[] = {0, 1, 33};
    int before = s_fake_zk_calls();
    s_compare(g, g1n, 5, g2n, 3, 9);
    assert_int_equal(s_fake_zk_calls() - before, 5 + 3 + 10 * 4);
    qr_gpu_close(&g);
}

static void test_fake_refusals(void **state)
{
    (void)state;
    qr_gpu_t *g = s_fake();
    char err[512];
    qr_g1_t o1;
    qr_g2_t o2;
    qr_fr_t a[2], one;
    qr_fr_one(&one);
    qr_msm_scalar_t k = {{1, 0, 0, 0}};
    qr_g1_affine_t p1;
    qr_g1_generator(&p1);
    assert_int_equal(qr_gpu_g1_msm(NULL, &o1, &p1, &k, 1, err, sizeof err), -1);
    assert_string_equal(err, "G1 MSM: no GPU");
    assert_int_equal(qr_gpu_g1_msm(g, &o1, NULL, &k, 1, err, sizeof err), -1);
    assert_string_equal(err, "G1 MSM: no points or scalars");
    assert_int_equal(qr_gpu_g2_msm(g, &o2, NULL, NULL, ((size_t)1 << 26) + 1, err, sizeof err), -1);
    assert_string_equal(err, "G2 MSM: no points or scalars");
    assert_int_equal(qr_gpu_g1_msm(g, &o1, &p1, &k, ((size_t)1 << 26) + 1, err, sizeof err), -1);
    assert_string_equal(err, "G1 MSM: 67108865 points, the GPU path takes at most 67108864");
    assert_int_equal(qr_gpu_ntt(g, a, 29, 0, NULL, err, sizeof err), -1);
    assert_string_equal(err, "NTT: size 2^29, at most 2^28");
    assert_int_equal(qr_gpu_ntt(g, a, 1, QR_G16_NTT_COSET_FORWARD, NULL, err, sizeof err), -1);
    assert_string_equal(err, "NTT: bad arguments");
    assert_int_equal(qr_gpu_ntt(NULL, a, 1, 0, NULL, err, sizeof err), -1);
    assert_string_equal(err, "NTT: no GPU");
    /* n = 0 is the point at infinity, no pointers needed */
    assert_int_equal(qr_gpu_g1_msm(g, &o1, NULL, NULL, 0, err, sizeof err), 0);
    assert_true(qr_g1_is_inf(&o1));
    /* the module's errors reach the caller */
    setenv("QR_FAKE_CUDA_FAIL", "1", 1);
    assert_int_equal(qr_gpu_g1_msm(g, &o1, &p1, &k, 1, err, sizeof err), -1);
    assert_string_equal(err, "GPU G1 MSM: fake failure");
    assert_int_equal(qr_gpu_ntt(g, a, 1, 0, NULL, err, sizeof err), -1);
    assert_string_equal(err, "GPU NTT: fake failure");
    unsetenv("QR_FAKE_CUDA_FAIL");
    /* the backend of no GPU is all CPU */
    qr_g16_backend_t be;
    qr_gpu_g16_backend(NULL, &be);
    assert_null(be.g1_msm);
    assert_null(be.g2_msm);
    assert_null(be.ntt);
    qr_gpu_close(&g);
}

/* ---- the prover's backend hook ---- */

typedef struct {
    qr_g16_toy_r1cs_t cs;
    qr_g16_toy_term_t *terms;
    qr_fr_t *w;
    qr_g16_toy_t *key;
} s_circuit_t;

static void s_circuit(s_circuit_t *c, uint32_t rows)
{
    char err[256] = "";
    assert_int_equal(qr_g16_toy_circuit(rows, 77 + rows, &c->cs, &c->terms, &c->w), 0);
    qr_g16_toy_secrets_t sec;
    qr_g16_toy_secrets(&sec, rows);
    c->key = qr_g16_toy_setup(&c->cs, &sec, 2, err, sizeof err);
    if (!c->key)
        fail_msg("setup: %s", err);
}

static void s_circuit_free(s_circuit_t *c)
{
    qr_g16_toy_destroy(&c->key);
    free(c->terms);
    free(c->w);
}

/* a proof through be equals the CPU's for the same r, s and verifies */
static void s_prove_same(const s_circuit_t *c, const qr_g16_backend_t *be)
{
    char err[512] = "";
    qr_fr_t r, s;
    s_rand_fr(&r);
    s_rand_fr(&s);
    qr_g16_proof_t cpu, via;
    assert_int_equal(
        qr_g16_prove_rs(&c->key->pk, c->w, c->cs.n_vars, &r, &s, 2, &cpu, err, sizeof err), 0);
    if (qr_g16_prove_backend(&c->key->pk, c->w, c->cs.n_vars, &r, &s, 2, be, NULL, &via, err,
                             sizeof err) != 0)
        fail_msg("prove through the backend: %s", err);
    assert_memory_equal(&cpu, &via, sizeof cpu);
    assert_true(qr_g16_verify(&c->key->vk, &c->w[1], c->key->vk.n_public, &via));
}

static void test_backend_fake(void **state)
{
    (void)state;
    qr_gpu_t *g = s_fake();
    qr_g16_backend_t be;
    qr_gpu_g16_backend(g, &be);
    assert_string_equal(be.name, "GPU");
    s_circuit_t c;
    s_circuit(&c, 300);
    int before = s_fake_zk_calls();
    s_prove_same(&c, &be);
    /* 3 NTT calls (inverse + coset each), 4 G1 MSMs, 1 G2 MSM */
    assert_int_equal(s_fake_zk_calls() - before, 8);
    /* only some entries: the others on the CPU */
    qr_g16_backend_t part = be;
    part.g2_msm = NULL;
    part.ntt = NULL;
    s_prove_same(&c, &part);
    qr_g16_backend_t none;
    memset(&none, 0, sizeof none);
    s_prove_same(&c, &none);
    s_prove_same(&c, NULL);
    /* a failing module fails the proof and says where */
    char err[512] = "";
    qr_g16_proof_t p;
    setenv("QR_FAKE_CUDA_FAIL", "1", 1);
    assert_int_equal(qr_g16_prove_backend(&c.key->pk, c.w, c.cs.n_vars, NULL, NULL, 2, &be, NULL,
                                          &p, err, sizeof err),
                     -1);
    assert_string_equal(err, "prove: GPU NTT (A): fake failure");
    assert_int_equal(qr_g16_prove_backend(&c.key->pk, c.w, c.cs.n_vars, NULL, NULL, 2, &part, NULL,
                                          &p, err, sizeof err),
                     -1);
    assert_string_equal(err, "prove: GPU G1 MSM (A): fake failure");
    qr_g16_backend_t g2only = be;
    g2only.g1_msm = NULL;
    g2only.ntt = NULL;
    assert_int_equal(qr_g16_prove_backend(&c.key->pk, c.w, c.cs.n_vars, NULL, NULL, 2, &g2only,
                                          NULL, &p, err, sizeof err),
                     -1);
    assert_string_equal(err, "prove: GPU G2 MSM (B2): fake failure");
    unsetenv("QR_FAKE_CUDA_FAIL");
    /* a bad witness is refused before any backend call */
    before = s_fake_zk_calls();
    assert_int_equal(qr_g16_prove_backend(&c.key->pk, c.w, c.cs.n_vars - 1, NULL, NULL, 2, &be,
                                          NULL, &p, err, sizeof err),
                     -1);
    assert_int_equal(s_fake_zk_calls(), before);
    s_circuit_free(&c);
    qr_gpu_close(&g);
}

/* ---- the executor ---- */

static void s_put(uint8_t **at, const void *p, size_t n)
{
    memcpy(*at, p, n);
    *at += n;
}

/* w as a .wtns file (version 2) in a ZeroMQ frame */
static void s_wtns_frame(zmq_msg_t *m, const qr_fr_t *w, uint32_t n)
{
    size_t size = 12 + 12 + 40 + 12 + (size_t)n * 32;
    assert_int_equal(zmq_msg_init_size(m, size), 0);
    uint8_t *at = zmq_msg_data(m);
    const uint64_t r[4] = QR_FR_MOD;
    uint32_t u;
    uint64_t sz;
    s_put(&at, "wtns", 4);
    u = 2;
    s_put(&at, &u, 4); /* version */
    s_put(&at, &u, 4); /* sections */
    u = 1;
    s_put(&at, &u, 4);
    sz = 40;
    s_put(&at, &sz, 8);
    u = 32;
    s_put(&at, &u, 4);
    s_put(&at, r, 32);
    s_put(&at, &n, 4);
    u = 2;
    s_put(&at, &u, 4);
    sz = (uint64_t)n * 32;
    s_put(&at, &sz, 8);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t v[4];
        qr_fr_to_canonical(v, &w[i]);
        s_put(&at, v, 32);
    }
}

/* one zk job on a one-slot pool with gpu; returns its proof */
static void s_exec_zk(const s_circuit_t *c, qr_gpu_t *gpu, qr_g16_proof_t *out)
{
    void *ctx = zmq_ctx_new();
    qr_executor_t *x = qr_executor_new(ctx, 1, 0);
    assert_non_null(x);
    qr_executor_set_gpu(x, gpu);
    zmq_msg_t m;
    s_wtns_frame(&m, c->w, c->cs.n_vars);
    qr_exec_job_t *job = qr_exec_job_new_zk(7, &c->key->pk, &m);
    zmq_msg_close(&m);
    assert_non_null(job);
    assert_int_equal(qr_executor_submit(x, &job), QR_OK);
    qr_exec_event_t ev;
    for (;;) {
        zmq_pollitem_t it = {.socket = qr_executor_socket(x), .events = ZMQ_POLLIN};
        assert_true(zmq_poll(&it, 1, 60000) > 0);
        assert_int_equal(qr_executor_recv(x, &ev, ZMQ_DONTWAIT), QR_OK);
        if (ev.type == QR_EXEC_DONE)
            break;
    }
    if (qr_exec_job_status(ev.job) != QR_OK)
        fail_msg("zk job: status %d: %s", qr_exec_job_status(ev.job), qr_exec_job_error(ev.job));
    assert_string_equal(qr_exec_job_error(ev.job), "");
    size_t len = 0;
    const uint8_t *res = (const uint8_t *)qr_exec_job_result(ev.job, &len);
    assert_int_equal(len, 256 + 32 * (size_t)c->key->pk.n_public);
    assert_int_equal(qr_g1_from_be64(&out->a, res), QR_ZK_OK);
    assert_int_equal(qr_g2_from_be128(&out->b, res + 64), QR_ZK_OK);
    assert_int_equal(qr_g1_from_be64(&out->c, res + 192), QR_ZK_OK);
    qr_exec_job_destroy(&ev.job);
    qr_executor_destroy(&x);
    zmq_ctx_term(ctx);
}

static void test_executor_fallback(void **state)
{
    (void)state;
    s_circuit_t c;
    s_circuit(&c, 200);
    qr_gpu_t *g = s_fake();
    qr_g16_proof_t p;
    /* the GPU works: the proof goes through it */
    int before = s_fake_zk_calls();
    s_exec_zk(&c, g, &p);
    assert_int_equal(s_fake_zk_calls() - before, 8);
    assert_true(qr_g16_verify(&c.key->vk, &c.w[1], c.key->vk.n_public, &p));
    /* the GPU fails: the job is proved on the CPU all the same */
    setenv("QR_FAKE_CUDA_FAIL", "1", 1);
    before = s_fake_zk_calls();
    s_exec_zk(&c, g, &p);
    assert_true(s_fake_zk_calls() > before);
    assert_true(qr_g16_verify(&c.key->vk, &c.w[1], c.key->vk.n_public, &p));
    unsetenv("QR_FAKE_CUDA_FAIL");
    /* no GPU at all */
    s_exec_zk(&c, NULL, &p);
    assert_true(qr_g16_verify(&c.key->vk, &c.w[1], c.key->vk.n_public, &p));
    qr_gpu_close(&g);
    s_circuit_free(&c);
}

/* ---- a real GPU ---- */

static void test_real_gpu(void **state)
{
    (void)state;
    char err[512];
    qr_gpu_t *g = qr_gpu_open(0, err, sizeof err);
    if (!g) {
        printf("GPU comparison skipped: %s\n", err);
        skip();
    }
    printf("comparing %s (%s) with the CPU\n", qr_gpu_name(g), qr_gpu_module_path(g));
    const size_t g1n[] = {0, 1, 2, 3, 31, 32, 33, 1000, 4097, 70000},
                 g2n[] = {0, 1, 2, 33, 1000, 5000};
    s_compare(g, g1n, sizeof g1n / sizeof g1n[0], g2n, sizeof g2n / sizeof g2n[0], 14);
    /* one bucket holding everything (every scalar 1): several levels */
    size_t n = 100000;
    qr_g1_affine_t *p = malloc(n * sizeof *p);
    qr_msm_scalar_t *k = calloc(n, sizeof *k);
    assert_true(p && k);
    s_g1_bases(p, n);
    for (size_t i = 0; i < n; i++)
        k[i].l[0] = 1;
    qr_g1_t want, got;
    assert_int_equal(qr_g1_msm(&want, p, k, n, 0), 0);
    if (qr_gpu_g1_msm(g, &got, p, k, n, err, sizeof err) != 0)
        fail_msg("G1 MSM, all ones: %s", err);
    assert_true(qr_g1_eq(&want, &got));
    free(p);
    free(k);
    s_circuit_t c;
    s_circuit(&c, 5000);
    qr_g16_backend_t be;
    qr_gpu_g16_backend(g, &be);
    s_prove_same(&c, &be);
    s_circuit_free(&c);
    qr_gpu_close(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fake_calls),   cmocka_unit_test(test_fake_refusals),
        cmocka_unit_test(test_backend_fake), cmocka_unit_test(test_executor_fallback),
        cmocka_unit_test(test_real_gpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
