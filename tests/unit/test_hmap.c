/* common/hmap: insert, replace, delete with backward shift, growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

static void test_basic(void **state)
{
    (void)state;
    qr_hmap_t *m = qr_hmap_new();
    assert_non_null(m);
    int a = 1, b = 2;
    assert_null(qr_hmap_get(m, "x", 1));
    assert_int_equal(qr_hmap_put(m, "x", 1, &a), 0);
    assert_ptr_equal(qr_hmap_get(m, "x", 1), &a);
    assert_int_equal(qr_hmap_put(m, "x", 1, &b), 0);
    assert_ptr_equal(qr_hmap_get(m, "x", 1), &b);
    assert_int_equal(qr_hmap_size(m), 1);
    const char *longkey = "a key longer than sixteen bytes, kept on the heap";
    assert_int_equal(qr_hmap_put(m, longkey, strlen(longkey), &a), 0);
    assert_ptr_equal(qr_hmap_get(m, longkey, strlen(longkey)), &a);
    assert_null(qr_hmap_get(m, longkey, strlen(longkey) - 1));
    assert_ptr_equal(qr_hmap_del(m, "x", 1), &b);
    assert_null(qr_hmap_del(m, "x", 1));
    assert_int_equal(qr_hmap_size(m), 1);
    qr_hmap_destroy(&m);
    assert_null(m);
    qr_hmap_destroy(&m);
    qr_hmap_destroy(NULL);
}

/* A shadow array checks the map through many random puts and deletes. */
static void test_random(void **state)
{
    (void)state;
    enum { N = 20000 };
    static void *shadow[N];
    memset(shadow, 0, sizeof shadow);
    qr_hmap_t *m = qr_hmap_new();
    uint64_t x = 88172645463325252ull;
    size_t live = 0;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t k = x % N;
        if (x & (1ull << 40)) {
            void *v = (void *)(uintptr_t)(k + 1);
            if (!shadow[k])
                live++;
            assert_int_equal(qr_hmap_put_u64(m, k, v), 0);
            shadow[k] = v;
        } else {
            void *got = qr_hmap_del_u64(m, k);
            assert_ptr_equal(got, shadow[k]);
            if (shadow[k])
                live--;
            shadow[k] = NULL;
        }
        assert_int_equal(qr_hmap_size(m), live);
    }
    for (uint64_t k = 0; k < N; k++)
        assert_ptr_equal(qr_hmap_get_u64(m, k), shadow[k]);
    qr_hmap_destroy(&m);
}

static void s_count(void *arg, void *v)
{
    (void)v;
    (*(int *)arg)++;
}

static void test_each(void **state)
{
    (void)state;
    qr_hmap_t *m = qr_hmap_new();
    for (uint64_t k = 1; k <= 100; k++)
        qr_hmap_put_u64(m, k, (void *)(uintptr_t)k);
    int n = 0;
    qr_hmap_each(m, s_count, &n);
    assert_int_equal(n, 100);
    qr_hmap_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
