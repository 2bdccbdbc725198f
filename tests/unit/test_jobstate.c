/* common/jobstate and common/err: names round-trip, final states, messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "err.h"
#include "jobstate.h"

static void test_states(void **state)
{
    (void)state;
    for (int s = 0; s < QR_JOB_STATE_COUNT_; s++)
        assert_int_equal(qr_job_state_parse(qr_job_state_name(s)), s);
    assert_int_equal(qr_job_state_parse("bogus"), -1);
    assert_int_equal(qr_job_state_parse(NULL), -1);
    assert_string_equal(qr_job_state_name(99), "unknown");
    assert_false(qr_job_state_final(QR_JOB_QUEUED));
    assert_false(qr_job_state_final(QR_JOB_VERIFIED));
    assert_true(qr_job_state_final(QR_JOB_SETTLED));
    assert_true(qr_job_state_final(QR_JOB_CANCELLED));
}

static void test_errors(void **state)
{
    (void)state;
    for (int c = 0; c < QR_ERR_COUNT_; c++) {
        assert_non_null(qr_strerror(c));
        assert_string_not_equal(qr_strerror(c), "unknown error");
    }
    assert_string_equal(qr_strerror(-QR_EFUNDS), qr_strerror(QR_EFUNDS));
    assert_string_equal(qr_strerror(9999), "unknown error");
    for (int c = 0; c < QR_ERR_COUNT_; c++)
        assert_string_not_equal(qr_errname(c), "EUNKNOWN");
    assert_string_equal(qr_errname(QR_EFUNDS), "EFUNDS");
    assert_string_equal(qr_errname(-QR_EDB), "EDB");
    assert_string_equal(qr_errname(12345), "EUNKNOWN");
    /* the wire depends on these numbers: append-only */
    assert_int_equal(QR_EDB, 7);
    assert_int_equal(QR_EUNAVAIL, 20);
    assert_int_equal(QR_ELIMIT, 21);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
