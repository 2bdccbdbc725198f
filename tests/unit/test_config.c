/* common/config: defaults, file, environment and flags, in that order of
 * precedence, and clear errors for bad input. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char *s_str;
static int64_t s_int;
static bool s_bool;
static const qr_opt_t s_opts[] = {
    {"name", QR_OPT_STR, &s_str, "dflt", "a string"},
    {"count", QR_OPT_INT, &s_int, "5", "an integer"},
    {"flag", QR_OPT_BOOL, &s_bool, NULL, "a bool"},
};
#define NOPTS (sizeof s_opts / sizeof s_opts[0])

static int s_parse(int argc, char **argv, int *argi, char *err)
{
    bool help;
    return qr_config_parse(s_opts, NOPTS, "QTEST", argc, argv, argi, &help, err, 256);
}

static void test_defaults_and_flags(void **state)
{
    (void)state;
    char err[256];
    int argi;
    char *argv[] = {"prog", "--count", "7", "--flag", "--name=x y", "rest", NULL};
    assert_int_equal(s_parse(6, argv, &argi, err), 0);
    assert_string_equal(s_str, "x y");
    assert_int_equal(s_int, 7);
    assert_true(s_bool);
    assert_int_equal(argi, 5);
    char *argv2[] = {"prog", NULL};
    assert_int_equal(s_parse(1, argv2, &argi, err), 0);
    assert_string_equal(s_str, "dflt");
    assert_int_equal(s_int, 5);
    assert_false(s_bool);
    qr_config_free(s_opts, NOPTS);
}

static void test_file_env_precedence(void **state)
{
    (void)state;
    char path[] = "/tmp/qtest-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# comment\nname = fromfile\ncount = 11  # trailing\nflag = yes\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    setenv("QTEST_CONFIG", path, 1);
    setenv("QTEST_COUNT", "12", 1);
    char err[256];
    int argi;
    char *argv[] = {"prog", NULL};
    assert_int_equal(s_parse(1, argv, &argi, err), 0);
    assert_string_equal(s_str, "fromfile");
    assert_int_equal(s_int, 12); /* environment beats the file */
    assert_true(s_bool);
    char *argv2[] = {"prog", "--count=13", NULL};
    assert_int_equal(s_parse(2, argv2, &argi, err), 0);
    assert_int_equal(s_int, 13); /* flags beat the environment */
    unsetenv("QTEST_CONFIG");
    unsetenv("QTEST_COUNT");
    unlink(path);
    qr_config_free(s_opts, NOPTS);
}

static void test_errors(void **state)
{
    (void)state;
    char err[256];
    int argi;
    char *a1[] = {"prog", "--nope", NULL};
    assert_int_equal(s_parse(2, a1, &argi, err), -1);
    assert_non_null(strstr(err, "--nope"));
    char *a2[] = {"prog", "--count", "abc", NULL};
    assert_int_equal(s_parse(3, a2, &argi, err), -1);
    assert_non_null(strstr(err, "integer"));
    char *a3[] = {"prog", "--count", NULL};
    assert_int_equal(s_parse(2, a3, &argi, err), -1);
    assert_non_null(strstr(err, "needs a value"));
    char *a4[] = {"prog", "--flag=maybe", NULL};
    assert_int_equal(s_parse(2, a4, &argi, err), -1);
    char *a5[] = {"prog", "--config", "/nonexistent/quarry.conf", NULL};
    assert_int_equal(s_parse(3, a5, &argi, err), -1);
    assert_non_null(strstr(err, "/nonexistent/quarry.conf"));
    char path[] = "/tmp/qtest-config-XXXXXX";
    int fd = mkstemp(path);
    assert_int_equal(write(fd, "count 3\n", 8), 8);
    close(fd);
    char *a6[] = {"prog", "--config", path, NULL};
    assert_int_equal(s_parse(3, a6, &argi, err), -1);
    assert_non_null(strstr(err, ":1:"));
    unlink(path);
    qr_config_free(s_opts, NOPTS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_flags),
        cmocka_unit_test(test_file_env_precedence),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
