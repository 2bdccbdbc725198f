/* worker/cache: the on-disk model cache, LRU under a size cap, pins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utime.h>

#include "cache.h"

static char s_dir[] = "/tmp/qr-test-cache-XXXXXX";

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

/* A name for i and a finished download of size bytes under it. */
static void s_download(qr_cache_t *c, int i, size_t size, char *sha)
{
    snprintf(sha, QR_SHA_HEX + 1, "%064x", i);
    char part[4200];
    assert_int_equal(qr_cache_path(c, sha, true, part, sizeof part), 0);
    FILE *f = fopen(part, "wb");
    assert_non_null(f);
    for (size_t k = 0; k < size; k++)
        fputc('x', f);
    fclose(f);
}

static char s_dropped[8][QR_SHA_HEX + 1];
static int s_ndropped;
static void s_on_drop(void *arg, const char *sha)
{
    (*(int *)arg)++;
    snprintf(s_dropped[s_ndropped++ % 8], QR_SHA_HEX + 1, "%s", sha);
}

static void test_lru_and_pins(void **state)
{
    (void)state;
    char err[256], a[QR_SHA_HEX + 1], b[QR_SHA_HEX + 1], c[QR_SHA_HEX + 1], d[QR_SHA_HEX + 1];
    qr_cache_t *cache = qr_cache_new(s_dir, 3000, err, sizeof err);
    assert_non_null(cache);
    int drops = 0;
    s_download(cache, 1, 1000, a);
    assert_int_equal(qr_cache_insert(cache, a, 1000, s_on_drop, &drops, err, sizeof err), 0);
    s_download(cache, 2, 1000, b);
    assert_int_equal(qr_cache_insert(cache, b, 1000, s_on_drop, &drops, err, sizeof err), 0);
    s_download(cache, 3, 1000, c);
    assert_int_equal(qr_cache_insert(cache, c, 1000, s_on_drop, &drops, err, sizeof err), 0);
    assert_int_equal(qr_cache_count(cache), 3);
    assert_int_equal(qr_cache_bytes(cache), 3000);
    assert_int_equal(drops, 0);
    assert_true(qr_cache_has(cache, a));
    /* a was used last: b is the least recently used now */
    qr_cache_touch(cache, a);
    s_download(cache, 4, 1000, d);
    assert_int_equal(qr_cache_insert(cache, d, 1000, s_on_drop, &drops, err, sizeof err), 0);
    assert_int_equal(drops, 1);
    assert_string_equal(s_dropped[0], b);
    assert_false(qr_cache_has(cache, b));
    char path[4200];
    struct stat sb;
    qr_cache_path(cache, b, false, path, sizeof path);
    assert_int_not_equal(stat(path, &sb), 0); /* its file went with it */
    /* pinned entries stay even when that overfills the cache */
    qr_cache_pin(cache, c);
    qr_cache_pin(cache, a);
    qr_cache_pin(cache, d);
    s_download(cache, 2, 1500, b);
    assert_int_equal(qr_cache_insert(cache, b, 1500, s_on_drop, &drops, err, sizeof err), 0);
    assert_int_equal(drops, 1);
    assert_int_equal(qr_cache_count(cache), 4);
    /* unpinned ones go, least recently used first, until the new one fits:
     * c (1000) is not enough for 4500 + 10 bytes under 3000, b goes too */
    qr_cache_unpin(cache, c);
    qr_cache_unpin(cache, c); /* extra unpins are harmless */
    char e[QR_SHA_HEX + 1];
    s_download(cache, 5, 10, e);
    assert_int_equal(qr_cache_insert(cache, e, 10, s_on_drop, &drops, err, sizeof err), 0);
    assert_int_equal(drops, 3);
    assert_string_equal(s_dropped[1], c);
    assert_string_equal(s_dropped[2], b);
    assert_false(qr_cache_has(cache, c) || qr_cache_has(cache, b));
    assert_true(qr_cache_has(cache, a) && qr_cache_has(cache, d) && qr_cache_has(cache, e));
    assert_int_equal(qr_cache_bytes(cache), 2010);
    /* a second insert of a held name keeps the one there */
    s_download(cache, 5, 10, e);
    assert_int_equal(qr_cache_insert(cache, e, 10, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(qr_cache_count(cache), 3);
    /* a missing download cannot be inserted */
    char f[QR_SHA_HEX + 1];
    snprintf(f, sizeof f, "%064x", 6);
    assert_int_equal(qr_cache_insert(cache, f, 10, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, f));
    assert_int_equal(qr_cache_path(cache, "not-a-sha", false, path, sizeof path), -1);
    assert_false(qr_cache_has(cache, "not-a-sha"));
    qr_cache_destroy(&cache);
    assert_null(cache);
    qr_cache_destroy(NULL);
}

static void test_restart_adopts(void **state)
{
    (void)state;
    /* the files of test_lru_and_pins are still there: a, d, e; make d the
     * oldest on disk, and leave a stray partial download */
    char err[256], b[QR_SHA_HEX + 1], path[4200], stray[4200];
    snprintf(b, sizeof b, "%064x", 4);
    snprintf(path, sizeof path, "%s/%s", s_dir, b);
    struct utimbuf old = {.actime = 1000, .modtime = 1000};
    assert_int_equal(utime(path, &old), 0);
    snprintf(stray, sizeof stray, "%s/%064x.part", s_dir, 9);
    FILE *f = fopen(stray, "wb");
    fputs("half", f);
    fclose(f);
    qr_cache_t *cache = qr_cache_new(s_dir, 100, err, sizeof err);
    assert_non_null(cache);
    assert_int_equal(qr_cache_count(cache), 3);
    assert_string_equal(qr_cache_name(cache, 0), b); /* least recently used first */
    assert_null(qr_cache_name(cache, 99));
    struct stat sb;
    assert_int_not_equal(stat(stray, &sb), 0);
    /* over the new, smaller cap: the next insert evicts down to it */
    char g[QR_SHA_HEX + 1];
    snprintf(g, sizeof g, "%064x", 7);
    char part[4200];
    qr_cache_path(cache, g, true, part, sizeof part);
    f = fopen(part, "wb");
    fputs("0123456789", f);
    fclose(f);
    assert_int_equal(qr_cache_insert(cache, g, 10, NULL, NULL, err, sizeof err), 0);
    assert_true(qr_cache_bytes(cache) <= 100);
    assert_true(qr_cache_has(cache, g));
    qr_cache_destroy(&cache);
    assert_null(qr_cache_new("/proc/qr-no-cache", 100, err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lru_and_pins),
        cmocka_unit_test(test_restart_adopts),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
