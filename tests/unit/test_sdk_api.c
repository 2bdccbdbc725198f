/* libquarry without a broker: error codes and state names agree with the
 * broker's (common/err.h, common/jobstate.h), argument checks return
 * QUARRY_EINVAL without touching the network, destroy takes NULL, and a
 * connection to an endpoint where nothing listens fails in time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "gemm.h"
#include "jobstate.h"
#include "quarry.h"

static int64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_codes_agree(void **state)
{
    (void)state;
    assert_int_equal(QUARRY_OK, QR_OK);
    assert_int_equal(QUARRY_EINVAL, QR_EINVAL);
    assert_int_equal(QUARRY_EPROTO, QR_EPROTO);
    assert_int_equal(QUARRY_EKIND, QR_EKIND);
    assert_int_equal(QUARRY_ETOOBIG, QR_ETOOBIG);
    assert_int_equal(QUARRY_EFUNDS, QR_EFUNDS);
    assert_int_equal(QUARRY_ENOTFOUND, QR_ENOTFOUND);
    assert_int_equal(QUARRY_EDB, QR_EDB);
    assert_int_equal(QUARRY_ESTATE, QR_ESTATE);
    assert_int_equal(QUARRY_ETIMEOUT, QR_ETIMEOUT);
    assert_int_equal(QUARRY_ENOMEM, QR_ENOMEM);
    assert_int_equal(QUARRY_EIO, QR_EIO);
    assert_int_equal(QUARRY_EVERIFY, QR_EVERIFY);
    assert_int_equal(QUARRY_ECANCELLED, QR_ECANCELLED);
    assert_int_equal(QUARRY_EEXPIRED, QR_EEXPIRED);
    assert_int_equal(QUARRY_EFAILED, QR_EFAILED);
    assert_int_equal(QUARRY_EPRICE, QR_EPRICE);
    assert_int_equal(QUARRY_ENOTREADY, QR_ENOTREADY);
    assert_int_equal(QUARRY_EPERM, QR_EPERM);
    assert_int_equal(QUARRY_ECOMPUTE, QR_ECOMPUTE);
    assert_int_equal(QUARRY_EUNAVAIL, QR_EUNAVAIL);
    /* a code appended to err.h must be added to quarry.h too */
    assert_int_equal(QUARRY_ELIMIT, QR_ELIMIT);
    assert_int_equal(QR_ERR_COUNT_, QUARRY_ELIMIT + 1);
    assert_int_equal(QUARRY_GEMM_MAX_DIM, QR_GEMM_MAX_DIM);
}

static void test_strerror(void **state)
{
    (void)state;
    for (int i = 0; i < QR_ERR_COUNT_; i++) {
        assert_non_null(quarry_strerror(i));
        assert_string_equal(quarry_strerror(i), qr_strerror(i));
    }
    assert_string_equal(quarry_strerror(QUARRY_OK), "success");
    assert_string_equal(quarry_strerror(-QUARRY_EFUNDS), quarry_strerror(QUARRY_EFUNDS));
    assert_string_equal(quarry_strerror(9999), "unknown error");
    assert_non_null(quarry_version());
    assert_string_equal(quarry_version(), "0.1.0");
}

static void test_states_agree(void **state)
{
    (void)state;
    assert_int_equal(QUARRY_JOB_CANCELLED + 1, QR_JOB_STATE_COUNT_);
    for (int s = 0; s < QR_JOB_STATE_COUNT_; s++) {
        assert_string_equal(quarry_job_state_name((quarry_job_state_t)s), qr_job_state_name(s));
        assert_int_equal(quarry_job_state_parse(qr_job_state_name(s)), s);
        assert_int_equal(quarry_job_state_final((quarry_job_state_t)s), qr_job_state_final(s));
    }
    assert_int_equal(quarry_job_state_parse("bogus"), QUARRY_JOB_UNKNOWN);
    assert_int_equal(quarry_job_state_parse(NULL), QUARRY_JOB_UNKNOWN);
    assert_string_equal(quarry_job_state_name(QUARRY_JOB_UNKNOWN), "unknown");
    assert_false(quarry_job_state_final(QUARRY_JOB_UNKNOWN));
    assert_int_equal(quarry_job_state_code(QUARRY_JOB_SETTLED), QUARRY_OK);
    assert_int_equal(quarry_job_state_code(QUARRY_JOB_MIRRORED), QUARRY_OK);
    assert_int_equal(quarry_job_state_code(QUARRY_JOB_FAILED), QUARRY_EFAILED);
    assert_int_equal(quarry_job_state_code(QUARRY_JOB_EXPIRED), QUARRY_EEXPIRED);
    assert_int_equal(quarry_job_state_code(QUARRY_JOB_CANCELLED), QUARRY_ECANCELLED);
    assert_int_equal(quarry_job_state_code(QUARRY_JOB_REJECTED), QUARRY_EINVAL);
    assert_int_equal(quarry_job_state_code(QUARRY_JOB_RUNNING), QUARRY_ETIMEOUT);
}

static void test_destroy_null(void **state)
{
    (void)state;
    quarry_client_destroy(NULL);
    quarry_client_t *c = NULL;
    quarry_client_destroy(&c);
    quarry_client_destroy(&c);
    assert_null(c);
    quarry_job_list_free(NULL);
    quarry_job_info_t *j = NULL;
    quarry_job_list_free(&j);
    quarry_workers_free(NULL);
    quarry_dash_free(NULL);
    quarry_dash_t *d = NULL;
    quarry_dash_free(&d);
    quarry_free(NULL);
    quarry_job_opts_init(NULL);
    quarry_job_opts_t o;
    memset(&o, 0xff, sizeof o);
    quarry_job_opts_init(&o);
    assert_int_equal(o.max_price, 0);
    assert_null(o.idem_key);
}

/* Every function with a NULL client: QUARRY_EINVAL, no crash. */
static void test_null_client(void **state)
{
    (void)state;
    float a[1] = {1}, *cp = (float *)1;
    uint64_t id = 0;
    size_t n = 0;
    quarry_job_info_t info;
    quarry_balance_t b;
    quarry_job_info_t *jobs = (quarry_job_info_t *)1;
    quarry_worker_info_t *w = (quarry_worker_info_t *)1;
    quarry_dash_t *d = (quarry_dash_t *)1;
    assert_int_equal(quarry_client_new(NULL, NULL, 0, NULL), QUARRY_EINVAL);
    assert_int_equal(quarry_client_set_timeout(NULL, 10), QUARRY_EINVAL);
    assert_string_equal(quarry_client_last_error(NULL), "");
    assert_int_equal(quarry_client_account_id(NULL), 0);
    assert_int_equal(quarry_gemm_submit(NULL, 1, 1, 1, a, a, NULL, &id, NULL, NULL), QUARRY_EINVAL);
    assert_int_equal(quarry_job_status(NULL, 1, &info), QUARRY_EINVAL);
    assert_int_equal(quarry_job_wait(NULL, 1, 10, NULL, NULL, &info), QUARRY_EINVAL);
    assert_int_equal(quarry_job_watch(NULL, 1, 10, NULL, NULL, &info), QUARRY_EINVAL);
    assert_int_equal(quarry_job_result(NULL, 1, a, 1, &n, &info), QUARRY_EINVAL);
    assert_int_equal(quarry_job_result_alloc(NULL, 1, &cp, &n, &info), QUARRY_EINVAL);
    assert_null(cp);
    assert_int_equal(quarry_job_cancel(NULL, 1, &info), QUARRY_EINVAL);
    assert_int_equal(quarry_job_list(NULL, NULL, 0, false, &jobs, &n), QUARRY_EINVAL);
    assert_null(jobs);
    assert_int_equal(quarry_workers(NULL, &w, &n), QUARRY_EINVAL);
    assert_null(w);
    assert_int_equal(quarry_balance(NULL, NULL, &b), QUARRY_EINVAL);
    assert_int_equal(quarry_deposit(NULL, "x", 1, &b), QUARRY_EINVAL);
    assert_int_equal(quarry_dash(NULL, &d), QUARRY_EINVAL);
    assert_null(d);
}

/* Nothing listens on the port: client_new gives up within its timeout. */
static void test_unavailable(void **state)
{
    (void)state;
    quarry_client_t *c = (quarry_client_t *)1;
    int64_t t0 = s_ms();
    quarry_err_t rc = quarry_client_new("tcp://127.0.0.1:1", "alice", 300, &c);
    int64_t dt = s_ms() - t0;
    assert_int_equal(rc, QUARRY_EUNAVAIL);
    assert_null(c);
    assert_true(dt >= 250);
    assert_true(dt < 2000);

    /* a malformed endpoint is an argument error */
    c = (quarry_client_t *)1;
    assert_int_equal(quarry_client_new("nonsense://x", "alice", 300, &c), QUARRY_EINVAL);
    assert_null(c);
}

/* Key settings are checked before any socket exists: QUARRY_EINVAL at once,
 * the reason in err_buf, never the secret key itself. */
static void test_key_options(void **state)
{
    (void)state;
    char dir[] = "/tmp/qr-apikeys-XXXXXX", prefix[64], keyfile[80], pubfile[80], pub[41];
    assert_non_null(mkdtemp(dir));
    snprintf(prefix, sizeof prefix, "%s/k", dir);
    snprintf(keyfile, sizeof keyfile, "%s.key", prefix);
    snprintf(pubfile, sizeof pubfile, "%s.pub", prefix);

    /* keygen: 0600 secret, public file, refuses to overwrite */
    assert_int_equal(quarry_keygen(NULL, pub), QUARRY_EINVAL);
    assert_int_equal(quarry_keygen("", pub), QUARRY_EINVAL);
    assert_int_equal(quarry_keygen(prefix, pub), QUARRY_OK);
    assert_int_equal(strlen(pub), 40);
    struct stat st;
    assert_int_equal(stat(keyfile, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char line[64] = "";
    FILE *fp = fopen(pubfile, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    line[strcspn(line, "\n")] = '\0';
    assert_string_equal(line, pub);
    char secret[64] = "";
    fp = fopen(keyfile, "r");
    assert_non_null(fp);
    assert_non_null(fgets(secret, sizeof secret, fp));
    fclose(fp);
    secret[strcspn(secret, "\n")] = '\0';
    char pub2[41] = "unchanged";
    assert_int_equal(quarry_keygen(prefix, pub2), QUARRY_EIO);
    assert_string_equal(pub2, "unchanged");
    char again[64] = "";
    fp = fopen(keyfile, "r");
    assert_non_null(fgets(again, sizeof again, fp));
    fclose(fp);
    again[strcspn(again, "\n")] = '\0';
    assert_string_equal(again, secret);

    quarry_client_opts_t o;
    memset(&o, 0x55, sizeof o);
    quarry_client_opts_init(&o);
    assert_null(o.endpoint);
    assert_null(o.server_key);
    assert_null(o.key_file);
    assert_int_equal(o.timeout_ms, 0);
    quarry_client_opts_init(NULL);
    char why[256];
    o.endpoint = "tcp://127.0.0.1:1";
    o.timeout_ms = 3000; /* any network attempt would show in the time taken */
    o.err_buf = why;
    o.err_len = sizeof why;
    quarry_client_t *c = (quarry_client_t *)1;
    assert_int_equal(quarry_client_new_opts(&o, NULL), QUARRY_EINVAL);

    struct {
        const char *server_key, *key_file, *expect;
    } bad[] = {
        {"not a key", NULL, "broker public key"},
        {"0123456789012345678901234567890123456789\"", NULL, "broker public key"},
        {"/nonexistent/broker.pub", NULL, "cannot read key file"},
        {pub, "/nonexistent/me.key", "cannot read key file"},
        {pub, pubfile, "readable by others"}, /* a .pub is 0644 */
        {NULL, keyfile, "needs the broker's public key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.server_key = bad[i].server_key;
        o.key_file = bad[i].key_file;
        c = (quarry_client_t *)1;
        why[0] = '\0';
        int64_t t0 = s_ms();
        assert_int_equal(quarry_client_new_opts(&o, &c), QUARRY_EINVAL);
        assert_true(s_ms() - t0 < 500);
        assert_null(c);
        if (!strstr(why, bad[i].expect))
            fail_msg("case %zu: '%s' lacks '%s'", i, why, bad[i].expect);
        assert_null(strstr(why, secret));
    }
    /* a secret file that others may read is refused, and its text not shown */
    assert_int_equal(chmod(keyfile, 0640), 0);
    o.server_key = pubfile;
    o.key_file = keyfile;
    assert_int_equal(quarry_client_new_opts(&o, &c), QUARRY_EINVAL);
    assert_non_null(strstr(why, "readable by others"));
    assert_null(strstr(why, secret));
    assert_int_equal(chmod(keyfile, 0600), 0);

    /* the environment feeds quarry_client_new */
    setenv("QUARRY_SERVER_KEY", "garbage", 1);
    assert_int_equal(quarry_client_new("tcp://127.0.0.1:1", "alice", 3000, &c), QUARRY_EINVAL);
    assert_null(c);
    unsetenv("QUARRY_SERVER_KEY");
    setenv("QUARRY_KEY", keyfile, 1);
    assert_int_equal(quarry_client_new("tcp://127.0.0.1:1", "alice", 3000, &c), QUARRY_EINVAL);
    unsetenv("QUARRY_KEY");

    /* admin_key checks its arguments first */
    assert_int_equal(quarry_admin_key(NULL, "remove", pub, NULL), QUARRY_EINVAL);

    unlink(keyfile);
    unlink(pubfile);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_agree),  cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_states_agree), cmocka_unit_test(test_destroy_null),
        cmocka_unit_test(test_null_client),  cmocka_unit_test(test_unavailable),
        cmocka_unit_test(test_key_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
