/* common/ring: FIFO order across wrap-around and growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ring.h"

static void test_fifo(void **state)
{
    (void)state;
    qr_ring_t r = {0};
    assert_null(qr_ring_pop(&r));
    uintptr_t next_in = 1, next_out = 1;
    /* interleave pushes and pops so the head wraps while the array grows */
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 7 + round; i++)
            assert_int_equal(qr_ring_push(&r, (void *)next_in++), 0);
        for (int i = 0; i < 5; i++)
            assert_ptr_equal(qr_ring_pop(&r), (void *)next_out++);
        assert_int_equal(r.n, next_in - next_out);
        for (size_t i = 0; i < r.n; i++)
            assert_ptr_equal(qr_ring_at(&r, i), (void *)(next_out + i));
    }
    while (r.n)
        assert_ptr_equal(qr_ring_pop(&r), (void *)next_out++);
    assert_int_equal(next_out, next_in);
    assert_null(qr_ring_pop(&r));
    qr_ring_free(&r);
    assert_null(r.items);
    qr_ring_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fifo)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
