/* ai.infer end to end through real processes: models uploaded to the
 * broker's content-addressed store, fetched by workers in chunks and cached
 * on disk, jobs batched on the workers, every layer checked by the broker
 * before payment, tampered layers caught, bad models refused at submit.
 * Expected outputs come from the CPU runtime in this process; the Python
 * suite checks the same path against numpy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "model.h"
#include "safetensors.h"

#define CPORT 27260
#define WPORT 27261
#define BMETRICS 27262
#define W1METRICS 27263
#define W2METRICS 27264
#define DEPOSIT 100000000

static char s_db[512];
static pid_t s_broker, s_w1, s_w2;
static quarry_client_t *s_alice;
/* the model: files on disk, their names in the store, and a local copy */
static char s_wsha[QUARRY_SHA_HEX + 1], s_gsha[QUARRY_SHA_HEX + 1];
static qr_st_file_t *s_st;
static qr_model_t *s_model;

#define IN 24
#define HID 48
#define OUT 10
static const char *s_graph =
    "{\"input\": 24, \"layers\": ["
    "{\"op\": \"dense\", \"weight\": \"fc1.weight\", \"bias\": \"fc1.bias\"},"
    "{\"op\": \"gelu\"},"
    "{\"op\": \"layernorm\", \"weight\": \"ln.weight\", \"bias\": \"ln.bias\"},"
    "{\"op\": \"dense\", \"weight\": \"fc2.weight\"},"
    "{\"op\": \"relu\"},"
    "{\"op\": \"residual\", \"from\": 2},"
    "{\"op\": \"dense\", \"weight\": \"head.weight\", \"bias\": \"head.bias\"},"
    "{\"op\": \"softmax\"}]}";
#define NLAYERS 8

/* Writes a safetensors file of F32 tensors (name, rows, cols; cols 0 = 1-D)
 * filled from seed; returns its size. */
typedef struct {
    const char *name;
    uint32_t d0, d1;
} s_tensor_t;

static size_t s_write_weights(const char *path, const s_tensor_t *t, size_t n, unsigned seed)
{
    char hdr[4096];
    size_t hn = 0, off = 0;
    hn += (size_t)snprintf(hdr + hn, sizeof hdr - hn, "{");
    for (size_t i = 0; i < n; i++) {
        size_t cnt = (size_t)t[i].d0 * (t[i].d1 ? t[i].d1 : 1);
        if (t[i].d1)
            hn += (size_t)snprintf(hdr + hn, sizeof hdr - hn,
                                   "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%u,%u],"
                                   "\"data_offsets\":[%zu,%zu]}",
                                   i ? "," : "", t[i].name, t[i].d0, t[i].d1, off, off + cnt * 4);
        else
            hn += (size_t)snprintf(hdr + hn, sizeof hdr - hn,
                                   "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%u],"
                                   "\"data_offsets\":[%zu,%zu]}",
                                   i ? "," : "", t[i].name, t[i].d0, off, off + cnt * 4);
        off += cnt * 4;
    }
    hn += (size_t)snprintf(hdr + hn, sizeof hdr - hn, "}");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t hl = hn;
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, hn, f);
    float *data = malloc(off);
    h_random(data, off / 4, &seed);
    for (size_t i = 0; i < off / 4; i++)
        data[i] *= 0.3f;
    fwrite(data, 1, off, f);
    free(data);
    fclose(f);
    return 8 + hn + off;
}

static void s_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int s_setup(void **state)
{
    (void)state;
    h_kill_all();
    /* no cache or store from an earlier run: fetches below are counted */
    assert_int_equal(system("rm -rf stores/27260 caches/27261-*"), 0);
    h_db_create("qr_it_infer", s_db, sizeof s_db);
    s_broker = h_broker("infer-broker", s_db, CPORT, WPORT, "--metrics-addr=127.0.0.1:27262",
                        NULL);
    /* w1 batches: a lone job waits 40 ms for company */
    s_w1 = h_worker("infer-w1", WPORT, "iw1", "op-a", 2, 100, "--metrics-addr=127.0.0.1:27263",
                    "--batch-delay-ms=40", NULL);
    s_w2 = h_worker("infer-w2", WPORT, "iw2", "op-b", 2, 100, "--metrics-addr=127.0.0.1:27264",
                    NULL);
    s_alice = h_client(CPORT, "alice");
    quarry_balance_t b;
    assert_int_equal(quarry_deposit(s_alice, "alice", DEPOSIT, &b), QUARRY_OK);
    h_wait_online(s_alice, 2);
    const s_tensor_t t[] = {{"fc1.weight", HID, IN}, {"fc1.bias", HID, 0},
                            {"ln.weight", HID, 0},   {"ln.bias", HID, 0},
                            {"fc2.weight", HID, HID}, {"head.weight", OUT, HID},
                            {"head.bias", OUT, 0}};
    s_write_weights("infer-model.safetensors", t, sizeof t / sizeof *t, 7);
    s_write_text("infer-graph.json", s_graph);
    char err[256];
    s_st = qr_st_load("infer-model.safetensors", err, sizeof err);
    assert_non_null(s_st);
    s_model = qr_model_new(s_graph, strlen(s_graph), s_st, err, sizeof err);
    assert_non_null(s_model);
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    quarry_client_destroy(&s_alice);
    h_stop(s_w1, SIGTERM, 10000);
    h_stop(s_w2, SIGTERM, 10000);
    assert_int_equal(h_stop(s_broker, SIGTERM, 10000), 0);
    qr_model_destroy(&s_model);
    qr_st_destroy(&s_st);
    h_db_drop("qr_it_infer");
    return 0;
}

static double s_bmetric(const char *name)
{
    static char buf[65536];
    assert_int_equal(h_http_get(BMETRICS, "/metrics", buf, sizeof buf), 200);
    return h_metric(buf, name);
}

static double s_wmetric(int port, const char *name)
{
    static char buf[65536];
    assert_int_equal(h_http_get(port, "/metrics", buf, sizeof buf), 200);
    return h_metric(buf, name);
}

static void test_upload(void **state)
{
    (void)state;
    uint64_t size = 0;
    assert_int_equal(quarry_upload(s_alice, "infer-model.safetensors", s_wsha, &size), QUARRY_OK);
    struct stat st;
    assert_int_equal(stat("infer-model.safetensors", &st), 0);
    assert_int_equal(size, (uint64_t)st.st_size);
    assert_int_equal(quarry_upload(s_alice, "infer-graph.json", s_gsha, NULL), QUARRY_OK);
    assert_int_equal(s_bmetric("quarry_artifact_uploads_total"), 2);
    double bytes = s_bmetric("quarry_artifact_upload_bytes_total");
    assert_true(bytes >= (double)size);
    /* the store holds it under its hash, byte for byte */
    char path[256];
    snprintf(path, sizeof path, "stores/27260/%.2s/%s", s_wsha, s_wsha);
    struct stat st2;
    assert_int_equal(stat(path, &st2), 0);
    assert_int_equal(st2.st_size, st.st_size);
    /* a second upload of the same file sends nothing */
    char again[QUARRY_SHA_HEX + 1];
    assert_int_equal(quarry_upload(s_alice, "infer-model.safetensors", again, NULL), QUARRY_OK);
    assert_string_equal(again, s_wsha);
    assert_true(s_bmetric("quarry_artifact_upload_bytes_total") == bytes);
    assert_int_equal(s_bmetric("quarry_artifact_uploads_total"), 2);
    /* bad uploads: a missing file, an empty one */
    assert_int_equal(quarry_upload(s_alice, "no-such-file", again, NULL), QUARRY_EIO);
    s_write_text("infer-empty", "");
    assert_int_equal(quarry_upload(s_alice, "infer-empty", again, NULL), QUARRY_EINVAL);
}

/* Submits rows rows from seed, returns the job id and the expected output. */
static uint64_t s_submit(uint32_t rows, unsigned seed, float **want, const quarry_job_opts_t *o)
{
    float *x = malloc((size_t)rows * IN * sizeof *x);
    h_random(x, (size_t)rows * IN, &seed);
    char err[256];
    qr_model_acts_t *a = qr_model_forward(s_model, x, rows, err, sizeof err);
    assert_non_null(a);
    *want = malloc((size_t)rows * OUT * sizeof **want);
    memcpy(*want, qr_model_acts_output(a), (size_t)rows * OUT * sizeof **want);
    qr_model_acts_destroy(&a);
    uint64_t id = 0;
    assert_int_equal(quarry_infer_submit(s_alice, s_wsha, s_gsha, rows, x, (size_t)rows * IN, o,
                                         &id, NULL, NULL),
                     QUARRY_OK);
    free(x);
    return id;
}

static void s_expect(uint64_t id, const float *want, uint32_t rows)
{
    quarry_job_info_t info;
    assert_int_equal(quarry_job_wait(s_alice, id, 60000, NULL, NULL, &info), QUARRY_OK);
    if (info.state != QUARRY_JOB_SETTLED)
        fail_msg("job %llu ended %s: %s", (unsigned long long)id, info.state_name, info.detail);
    assert_int_equal(info.m, rows);
    assert_int_equal(info.n, OUT);
    assert_int_equal(info.k, IN);
    float *got = NULL;
    size_t count = 0;
    assert_int_equal(quarry_job_result_alloc(s_alice, id, &got, &count, &info), QUARRY_OK);
    assert_int_equal(count, (size_t)rows * OUT);
    for (size_t i = 0; i < count; i++)
        if (fabsf(got[i] - want[i]) > 1e-5f + 1e-4f * fabsf(want[i]))
            fail_msg("job %llu element %zu: got %g, want %g", (unsigned long long)id, i,
                     (double)got[i], (double)want[i]);
    /* each softmax row sums to 1 */
    for (uint32_t r = 0; r < rows; r++) {
        double s = 0;
        for (int j = 0; j < OUT; j++)
            s += got[(size_t)r * OUT + j];
        assert_true(fabs(s - 1.0) < 1e-4);
    }
    quarry_free(got);
}

static void test_infer_jobs(void **state)
{
    (void)state;
    enum { N = 40 };
    uint64_t ids[N];
    float *want[N];
    uint32_t rows[N];
    for (int i = 0; i < N; i++) {
        rows[i] = 1 + (uint32_t)(i * 7 % 23);
        ids[i] = s_submit(rows[i], 100 + (unsigned)i, &want[i], NULL);
    }
    for (int i = 0; i < N; i++) {
        s_expect(ids[i], want[i], rows[i]);
        free(want[i]);
    }
    h_check_books(s_db);
    /* billed for its own rows: a bigger job never costs less */
    quarry_job_info_t a, b;
    assert_int_equal(quarry_job_status(s_alice, ids[0], &a), QUARRY_OK);  /* 1 row */
    assert_int_equal(quarry_job_status(s_alice, ids[3], &b), QUARRY_OK);  /* 22 rows */
    assert_true(a.units >= 1 && b.units >= a.units);
    /* each worker fetched the model at most once (weights + graph), from
     * the broker's store, and kept it */
    double f1 = s_wmetric(W1METRICS, "quarry_worker_fetches_total{result=\"ok\"}");
    double f2 = s_wmetric(W2METRICS, "quarry_worker_fetches_total{result=\"ok\"}");
    assert_true(f1 <= 2 && f2 <= 2 && f1 + f2 >= 2);
    assert_true(s_bmetric("quarry_artifact_fetch_bytes_total") > 0);
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "caches/%d-%s/%s", WPORT, f1 >= 2 ? "iw1" : "iw2", s_wsha);
    assert_int_equal(stat(path, &st), 0);
    /* the scheduler sent later jobs to a worker that held the model */
    assert_true(s_bmetric("quarry_affinity_hits_total") > 0);
}

static void test_batching(void **state)
{
    (void)state;
    /* only w1 (40 ms batch delay, 2 slots): one-row jobs arriving together
     * share forward passes, and each still gets its own rows back */
    h_stop(s_w2, SIGTERM, 10000);
    s_w2 = 0;
    h_wait_online(s_alice, 1);
    double p0 = s_wmetric(W1METRICS, "quarry_worker_infer_passes_total");
    double j0 = s_wmetric(W1METRICS, "quarry_worker_infer_jobs_total");
    enum { N = 32 };
    uint64_t ids[N];
    float *want[N];
    for (int i = 0; i < N; i++)
        ids[i] = s_submit(1, 500 + (unsigned)i, &want[i], NULL);
    for (int i = 0; i < N; i++) {
        s_expect(ids[i], want[i], 1);
        free(want[i]);
    }
    double passes = s_wmetric(W1METRICS, "quarry_worker_infer_passes_total") - p0;
    double jobs = s_wmetric(W1METRICS, "quarry_worker_infer_jobs_total") - j0;
    assert_true(jobs == N);
    assert_true(passes < N); /* some passes carried several jobs */
    print_message("batching: %d one-row jobs in %.0f forward passes\n", N, passes);
    s_w2 = h_worker("infer-w2", WPORT, "iw2", "op-b", 2, 100, "--metrics-addr=127.0.0.1:27264",
                    NULL);
    h_wait_online(s_alice, 2);
    h_check_books(s_db);
}

static void test_refused_at_submit(void **state)
{
    (void)state;
    float x[IN * 2] = {0};
    uint64_t id;
    /* an artifact nobody uploaded */
    const char *nobody = "0000000000000000000000000000000000000000000000000000000000000000";
    assert_int_equal(quarry_infer_submit(s_alice, nobody, s_gsha, 2, x, IN * 2, NULL, &id, NULL,
                                         NULL),
                     QUARRY_ENOTFOUND);
    assert_non_null(strstr(quarry_client_last_error(s_alice), "upload"));
    /* a graph that does not fit the weights */
    char bad[QUARRY_SHA_HEX + 1];
    s_write_text("infer-bad-graph.json",
                 "{\"input\": 24, \"layers\": [{\"op\": \"dense\", \"weight\": \"fc2.weight\"}]}");
    assert_int_equal(quarry_upload(s_alice, "infer-bad-graph.json", bad, NULL), QUARRY_OK);
    assert_int_equal(quarry_infer_submit(s_alice, s_wsha, bad, 2, x, IN * 2, NULL, &id, NULL,
                                         NULL),
                     QUARRY_EINVAL);
    assert_non_null(strstr(quarry_client_last_error(s_alice), "fc2.weight"));
    /* weights that are not safetensors at all */
    assert_int_equal(quarry_infer_submit(s_alice, s_gsha, s_gsha, 2, x, IN * 2, NULL, &id, NULL,
                                         NULL),
                     QUARRY_EINVAL);
    assert_non_null(strstr(quarry_client_last_error(s_alice), "safetensors"));
    /* an input of the wrong width */
    assert_int_equal(quarry_infer_submit(s_alice, s_wsha, s_gsha, 2, x, 2 * (IN - 1), NULL, &id,
                                         NULL, NULL),
                     QUARRY_EINVAL);
    /* a non-finite input */
    x[5] = INFINITY;
    assert_int_equal(quarry_infer_submit(s_alice, s_wsha, s_gsha, 2, x, IN * 2, NULL, &id, NULL,
                                         NULL),
                     QUARRY_EINVAL);
    /* the broker is still serving */
    float *want;
    id = s_submit(3, 900, &want, NULL);
    s_expect(id, want, 3);
    free(want);
}

/* The broker killed with -9 while ai.infer jobs are queued and running:
 * restarted on the same database and store, it reloads the jobs, loads
 * their model again from the store, and every job settles once. */
static void test_broker_restart(void **state)
{
    (void)state;
    enum { N = 12 };
    uint64_t ids[N];
    float *want[N];
    /* no workers: every job is still queued when the broker dies */
    h_stop(s_w1, SIGTERM, 10000);
    h_stop(s_w2, SIGTERM, 10000);
    h_wait_online(s_alice, 0);
    for (int i = 0; i < N; i++)
        ids[i] = s_submit(40, 700 + (unsigned)i, &want[i], NULL);
    h_stop(s_broker, SIGKILL, 5000);
    s_broker = h_broker("infer-broker", s_db, CPORT, WPORT, "--metrics-addr=127.0.0.1:27262",
                        NULL);
    quarry_client_destroy(&s_alice);
    s_alice = h_client(CPORT, "alice");
    s_w1 = h_worker("infer-w1", WPORT, "iw1", "op-a", 2, 100, "--metrics-addr=127.0.0.1:27263",
                    "--batch-delay-ms=40", NULL);
    s_w2 = h_worker("infer-w2", WPORT, "iw2", "op-b", 2, 100, "--metrics-addr=127.0.0.1:27264",
                    NULL);
    h_wait_online(s_alice, 2);
    for (int i = 0; i < N; i++) {
        s_expect(ids[i], want[i], 40);
        free(want[i]);
    }
    h_check_books(s_db);
    /* the model came back from the store, not from a new upload */
    assert_int_equal(s_bmetric("quarry_artifact_uploads_total"), 0);
    assert_true(s_bmetric("quarry_model_loads_total") >= 1);
}

/* A worker that alters one value of layer `layer` in every result: the
 * broker catches it, does not pay, and lowers its reputation. */
static void s_tamper(int layer)
{
    if (!QR_TEST_FAULTS_BUILD)
        skip();
    h_stop(s_w1, SIGTERM, 10000);
    h_stop(s_w2, SIGTERM, 10000);
    s_w1 = s_w2 = 0;
    h_wait_online(s_alice, 0); /* or a count of 1 below could be a leaver's */
    char fault[64], name[32];
    snprintf(fault, sizeof fault, "--fault-tamper-layer=%d", layer);
    snprintf(name, sizeof name, "cheat%d", layer);
    pid_t cheat = h_worker("infer-cheat", WPORT, name, "op-cheat", 1, 100, fault, NULL);
    h_wait_online(s_alice, 1);
    quarry_balance_t before;
    int brc = quarry_balance(s_alice, "op-cheat", &before);
    if (brc != QUARRY_OK)
        before.available = 0;
    quarry_job_opts_t o;
    quarry_job_opts_init(&o);
    o.max_attempts = 1;
    float *want;
    uint64_t id = s_submit(5, 1000 + (unsigned)layer, &want, &o);
    free(want);
    quarry_job_info_t info;
    assert_int_equal(quarry_job_wait(s_alice, id, 60000, NULL, NULL, &info), QUARRY_EFAILED);
    assert_int_equal(info.state, QUARRY_JOB_FAILED);
    char needle[32];
    snprintf(needle, sizeof needle, "layer %d", layer);
    if (!strstr(info.detail, needle))
        fail_msg("detail does not name %s: %s", needle, info.detail);
    quarry_balance_t after;
    if (quarry_balance(s_alice, "op-cheat", &after) == QUARRY_OK)
        assert_int_equal(after.available, before.available); /* not paid */
    assert_true(s_bmetric("quarry_verification_failures_total") >= 1);
    h_stop(cheat, SIGTERM, 10000);
    s_w1 = h_worker("infer-w1", WPORT, "iw1", "op-a", 2, 100, "--metrics-addr=127.0.0.1:27263",
                    "--batch-delay-ms=40", NULL);
    s_w2 = h_worker("infer-w2", WPORT, "iw2", "op-b", 2, 100, "--metrics-addr=127.0.0.1:27264",
                    NULL);
    h_wait_online(s_alice, 2);
    h_check_books(s_db);
}

static void test_tamper_dense(void **state)
{
    (void)state;
    s_tamper(0);
}

static void test_tamper_gelu(void **state)
{
    (void)state;
    s_tamper(1);
}

static void test_tamper_layernorm(void **state)
{
    (void)state;
    s_tamper(2);
}

static void test_tamper_residual(void **state)
{
    (void)state;
    s_tamper(5);
}

static void test_tamper_output(void **state)
{
    (void)state;
    s_tamper(NLAYERS - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upload),
        cmocka_unit_test(test_infer_jobs),
        cmocka_unit_test(test_batching),
        cmocka_unit_test(test_refused_at_submit),
        cmocka_unit_test(test_broker_restart),
        cmocka_unit_test(test_tamper_dense),
        cmocka_unit_test(test_tamper_gelu),
        cmocka_unit_test(test_tamper_layernorm),
        cmocka_unit_test(test_tamper_residual),
        cmocka_unit_test(test_tamper_output),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
