/* libFuzzer target: the config-file parser (common/config.c).
 *
 * The input is written to a temporary file and qr_config_parse reads it
 * through --config, with a table holding every option type, with and without
 * defaults.  The first input byte picks how the file is named (--config FILE,
 * --config=FILE, or the PREFIX_CONFIG environment variable) and whether some
 * command-line flags follow, so the layering after the file runs too.
 *
 * Invariants besides "no crash / no sanitizer report / no leak": a failed
 * parse leaves a reason in err; a good one fills every string target and
 * stops at the first non-flag argument. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define S_CHECK(cond)                                                                           \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "fuzz_config: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, \
                    #cond);                                                                     \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

static char s_path[256];
static int s_fd = -1;

static char *s_str1, *s_str2, *s_str3;
static int64_t s_int1, s_int2;
static bool s_bool1, s_bool2;

static const qr_opt_t s_opts[] = {
    {"name", QR_OPT_STR, &s_str1, "worker-1", "a string with a default"},
    {"endpoint", QR_OPT_STR, &s_str2, NULL, "a string without a default"},
    {"log-level", QR_OPT_STR, &s_str3, "info", "a dashed string"},
    {"heartbeat-ms", QR_OPT_INT, &s_int1, "2500", "an integer"},
    {"slots", QR_OPT_INT, &s_int2, NULL, "an integer without a default"},
    {"need-gpu", QR_OPT_BOOL, &s_bool1, "false", "a bool"},
    {"verbose", QR_OPT_BOOL, &s_bool2, NULL, "a bool without a default"},
};
#define S_NOPTS (sizeof s_opts / sizeof s_opts[0])
#define S_PREFIX "QRFUZZCFG"

static void s_cleanup(void)
{
    if (s_fd >= 0) {
        close(s_fd);
        unlink(s_path);
    }
}

static void s_setup(void)
{
    const char *dir = getenv("TMPDIR");
    snprintf(s_path, sizeof s_path, "%s/quarry-fuzz-config-XXXXXX", dir && *dir ? dir : "/tmp");
    s_fd = mkstemp(s_path);
    S_CHECK(s_fd >= 0);
    atexit(s_cleanup);
    /* nothing from the caller's environment may leak into the parse */
    for (size_t i = 0; i < S_NOPTS + 1; i++) {
        static const char *names[] = {"NAME", "ENDPOINT", "LOG_LEVEL", "HEARTBEAT_MS",
                                      "SLOTS", "NEED_GPU", "VERBOSE", "CONFIG"};
        char env[64];
        snprintf(env, sizeof env, S_PREFIX "_%s", names[i]);
        unsetenv(env);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (s_fd < 0)
        s_setup();
    uint8_t mode = size ? data[0] : 0;
    const uint8_t *body = size ? data + 1 : data;
    size_t blen = size ? size - 1 : 0;
    S_CHECK(ftruncate(s_fd, 0) == 0);
    S_CHECK(pwrite(s_fd, body, blen, 0) == (ssize_t)blen);

    char eqarg[300];
    snprintf(eqarg, sizeof eqarg, "--config=%s", s_path);
    char *argv[12];
    int argc = 0;
    argv[argc++] = "fuzz_config";
    switch (mode & 3) {
    case 0:
    case 3:
        argv[argc++] = "--config";
        argv[argc++] = s_path;
        break;
    case 1:
        argv[argc++] = eqarg;
        break;
    case 2:
        setenv(S_PREFIX "_CONFIG", s_path, 1);
        break;
    }
    if (mode & 4)
        argv[argc++] = "--verbose";
    if (mode & 8) {
        argv[argc++] = "--slots";
        argv[argc++] = "3";
    }
    if (mode & 16)
        argv[argc++] = "--name=flag";
    argv[argc++] = "rest";
    argv[argc] = NULL;
    int want_argi = argc - 1;

    int argi = -1;
    bool help = true;
    char err[512];
    memset(err, 'x', sizeof err);
    int rc = qr_config_parse(s_opts, S_NOPTS, S_PREFIX, argc, argv, &argi, &help, err, sizeof err);
    unsetenv(S_PREFIX "_CONFIG");
    S_CHECK(rc == 0 || rc == -1);
    S_CHECK(!help);
    if (rc == 0) {
        S_CHECK(s_str1 && s_str2 && s_str3);
        S_CHECK(argi == want_argi);
        if (mode & 4)
            S_CHECK(s_bool2);
        if (mode & 8)
            S_CHECK(s_int2 == 3);
        if (mode & 16)
            S_CHECK(strcmp(s_str1, "flag") == 0);
    } else {
        S_CHECK(memchr(err, '\0', sizeof err) != NULL && err[0] != '\0');
    }
    qr_config_free(s_opts, S_NOPTS);
    S_CHECK(!s_str1 && !s_str2 && !s_str3);
    return 0;
}
