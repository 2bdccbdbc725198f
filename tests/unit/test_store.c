/* broker/store: the content-addressed artifact store behind UPLOAD and FETCH. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "store.h"

static char s_dir[] = "/tmp/qr-test-store-XXXXXX";

static void s_sha(const void *data, size_t len, char *hex)
{
    qr_sha_t h;
    qr_sha_init(&h);
    qr_sha_update(&h, data, len);
    qr_sha_final(&h, hex);
}

static int s_setup(void **state)
{
    (void)state;
    return mkdtemp(s_dir) ? 0 : -1;
}

static int s_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    return system(cmd);
}

static void test_sha(void **state)
{
    (void)state;
    char hex[QR_SHA_HEX + 1];
    s_sha("abc", 3, hex); /* FIPS 180-2 example */
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(qr_sha_valid(hex));
    assert_false(qr_sha_valid(NULL));
    assert_false(qr_sha_valid(""));
    assert_false(qr_sha_valid("BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    assert_false(qr_sha_valid("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"));
    assert_false(qr_sha_valid("../../../../etc/passwd0000000000000000000000000000000000000000000"));
    char path[256], got[QR_SHA_HEX + 1], err[256];
    snprintf(path, sizeof path, "%s/abc", s_dir);
    FILE *f = fopen(path, "wb");
    fputs("abc", f);
    fclose(f);
    uint64_t size = 0;
    assert_int_equal(qr_sha_file(path, got, &size, err, sizeof err), 0);
    assert_string_equal(got, hex);
    assert_int_equal(size, 3);
    assert_int_equal(qr_sha_file("/nonexistent/x", got, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/x"));
}

static void test_upload_in_chunks(void **state)
{
    (void)state;
    char err[256], sha[QR_SHA_HEX + 1], path[4200];
    qr_store_t *st = qr_store_new(s_dir, 1 << 20, 4, err, sizeof err);
    assert_non_null(st);
    enum { N = 100000 };
    uint8_t *data = malloc(N);
    for (int i = 0; i < N; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    s_sha(data, N, sha);
    uint64_t have = 99;
    assert_int_equal(qr_store_size(st, sha), -1);
    /* a question first: nothing there */
    assert_int_equal(qr_store_put(st, sha, N, 0, NULL, 0, &have, err, sizeof err), QR_OK);
    assert_int_equal(have, 0);
    assert_int_equal(qr_store_put(st, sha, N, 0, data, 30000, &have, err, sizeof err), QR_OK);
    assert_int_equal(have, 30000);
    assert_int_equal(qr_store_uploads(st), 1);
    /* out of step: told where to go on, nothing written */
    assert_int_equal(qr_store_put(st, sha, N, 50000, data + 50000, 100, &have, err, sizeof err),
                     QR_ESTATE);
    assert_int_equal(have, 30000);
    /* a size that disagrees with the upload in progress */
    assert_int_equal(qr_store_put(st, sha, N + 1, 30000, data, 1, &have, err, sizeof err),
                     QR_EINVAL);
    /* a chunk past the end */
    assert_int_equal(qr_store_put(st, sha, N, 30000, data, N, &have, err, sizeof err), QR_EINVAL);
    assert_int_equal(qr_store_size(st, sha), -1); /* not visible before the end */
    assert_int_equal(qr_store_put(st, sha, N, 30000, data + 30000, N - 30000, &have, err,
                                  sizeof err),
                     QR_OK);
    assert_int_equal(have, N);
    assert_int_equal(qr_store_size(st, sha), N);
    assert_int_equal(qr_store_uploads(st), 0);
    assert_int_equal(qr_store_path(st, sha, path, sizeof path), 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, N);
    /* read back in pieces, and past the end */
    uint8_t buf[4096];
    assert_int_equal(qr_store_read(st, sha, 12345, buf, sizeof buf), (int64_t)sizeof buf);
    assert_memory_equal(buf, data + 12345, sizeof buf);
    assert_int_equal(qr_store_read(st, sha, N - 10, buf, sizeof buf), 10);
    assert_int_equal(qr_store_read(st, sha, N, buf, sizeof buf), 0);
    /* complete already: another put is a no-op that says so */
    assert_int_equal(qr_store_put(st, sha, N, 0, data, 10, &have, err, sizeof err), QR_OK);
    assert_int_equal(have, N);
    free(data);
    qr_store_destroy(&st);
    assert_null(st);
    qr_store_destroy(NULL);
}

static void test_refusals(void **state)
{
    (void)state;
    char err[256], sha[QR_SHA_HEX + 1];
    qr_store_t *st = qr_store_new(s_dir, 1000, 1, err, sizeof err);
    assert_non_null(st);
    uint64_t have;
    /* bad names never reach the file system */
    assert_int_equal(qr_store_put(st, "../x", 3, 0, "abc", 3, &have, err, sizeof err), QR_EINVAL);
    assert_int_equal(qr_store_read(st, "../x", 0, err, 1), -1);
    s_sha("abc", 3, sha);
    assert_int_equal(qr_store_put(st, sha, 0, 0, "abc", 3, &have, err, sizeof err), QR_EINVAL);
    assert_int_equal(qr_store_put(st, sha, 5000, 0, "abc", 3, &have, err, sizeof err),
                     QR_ETOOBIG);
    assert_non_null(strstr(err, "1000"));
    /* content that is not its name: dropped, nothing stored */
    char other[QR_SHA_HEX + 1];
    s_sha("abd", 3, other);
    assert_int_equal(qr_store_put(st, other, 3, 0, "abc", 3, &have, err, sizeof err), QR_EINVAL);
    assert_non_null(strstr(err, "SHA-256"));
    assert_int_equal(qr_store_size(st, other), -1);
    assert_int_equal(qr_store_uploads(st), 0);
    /* one upload at a time here */
    assert_int_equal(qr_store_put(st, sha, 3, 0, "ab", 2, &have, err, sizeof err), QR_OK);
    assert_int_equal(qr_store_put(st, other, 3, 0, "ab", 2, &have, err, sizeof err), QR_ELIMIT);
    /* an abandoned upload is swept; its partial file goes too */
    qr_store_sweep(st, INT64_MAX / 2, 1000);
    assert_int_equal(qr_store_uploads(st), 0);
    assert_int_equal(qr_store_put(st, sha, 3, 2, "c", 1, &have, err, sizeof err), QR_ESTATE);
    assert_int_equal(have, 0);
    qr_store_destroy(&st);
    /* a store that cannot be made */
    assert_null(qr_store_new("/proc/qr-no", 1000, 1, err, sizeof err));
    assert_non_null(strstr(err, "/proc/qr-no"));
}

static void test_restart_drops_partials(void **state)
{
    (void)state;
    char err[256], sha[QR_SHA_HEX + 1];
    qr_store_t *st = qr_store_new(s_dir, 1000, 4, err, sizeof err);
    s_sha("hello", 5, sha);
    uint64_t have;
    assert_int_equal(qr_store_put(st, sha, 5, 0, "he", 2, &have, err, sizeof err), QR_OK);
    /* a crash: the process is gone with the hash state */
    char part[4200];
    snprintf(part, sizeof part, "%s/tmp/%s.part", s_dir, sha);
    struct stat sb;
    assert_int_equal(stat(part, &sb), 0);
    qr_store_t *again = qr_store_new(s_dir, 1000, 4, err, sizeof err);
    assert_non_null(again);
    assert_int_not_equal(stat(part, &sb), 0); /* the partial is gone */
    assert_int_equal(qr_store_put(again, sha, 5, 0, NULL, 0, &have, err, sizeof err), QR_OK);
    assert_int_equal(have, 0); /* start again from 0 */
    assert_int_equal(qr_store_put(again, sha, 5, 0, "hello", 5, &have, err, sizeof err), QR_OK);
    assert_int_equal(qr_store_size(again, sha), 5);
    qr_store_destroy(&again);
    qr_store_destroy(&st);
    /* complete artifacts survive a restart */
    st = qr_store_new(s_dir, 1000, 4, err, sizeof err);
    assert_int_equal(qr_store_size(st, sha), 5);
    qr_store_destroy(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha),
        cmocka_unit_test(test_upload_in_chunks),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_restart_drops_partials),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
