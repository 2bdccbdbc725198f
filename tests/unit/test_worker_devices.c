/* Device discovery (worker/devices.c): the real box, /proc fixtures, and the
 * no-GPU paths that most machines take. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices.h"

static void s_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_detect_this_box(void **state)
{
    (void)state;
    qr_devices_t *d = qr_devices_detect(NULL);
    assert_non_null(d);
    assert_true(qr_devices_count(d) >= 1);
    const qr_device_info_t *cpu = qr_devices_get(d, 0);
    assert_string_equal(cpu->type, "cpu");
    assert_true(cpu->model[0] != '\0');
    assert_int_equal(cpu->cores, (uint32_t)sysconf(_SC_NPROCESSORS_ONLN));
    assert_true(cpu->mem_mb > 0);
    assert_string_equal(cpu->compute_cap, "");
    assert_int_equal(qr_devices_count(d), 1 + qr_devices_gpus(d));
    for (size_t i = 1; i < qr_devices_count(d); i++) {
        const qr_device_info_t *g = qr_devices_get(d, i);
        assert_string_equal(g->type, "gpu");
        assert_true(g->mem_mb > 0);
        assert_true(g->cores > 0);
        assert_non_null(strchr(g->compute_cap, '.'));
        printf("# gpu %zu: %s, %llu MiB, %u SMs, cc %s\n", i, g->model,
               (unsigned long long)g->mem_mb, g->cores, g->compute_cap);
    }
    printf("# cpu: %s, %u cores, %llu MiB, %zu gpus\n", cpu->model, cpu->cores,
           (unsigned long long)cpu->mem_mb, qr_devices_gpus(d));
    assert_null(qr_devices_get(d, qr_devices_count(d)));
    qr_devices_destroy(&d);
    assert_null(d);
}

static void test_detect_fixtures(void **state)
{
    (void)state;
    char cpuinfo[] = "/tmp/qr-cpuinfo-XXXXXX", meminfo[] = "/tmp/qr-meminfo-XXXXXX";
    int fd1 = mkstemp(cpuinfo), fd2 = mkstemp(meminfo);
    assert_true(fd1 >= 0 && fd2 >= 0);
    close(fd1);
    close(fd2);
    s_write(cpuinfo, "processor\t: 0\nvendor_id\t: Test\nmodel name\t: Test CPU 9000  \n"
                     "processor\t: 1\nmodel name\t: Test CPU 9000\n");
    s_write(meminfo, "MemFree:         1000 kB\nMemTotal:       16384000 kB\n");
    qr_devices_opts_t o = {.cpuinfo_path = cpuinfo, .meminfo_path = meminfo,
                           .cuda_lib = "/nonexistent/libcuda.so.1", .gpu = true};
    qr_devices_t *d = qr_devices_detect(&o);
    assert_non_null(d);
    assert_int_equal(qr_devices_count(d), 1); /* no driver: no GPU, no error */
    assert_int_equal(qr_devices_gpus(d), 0);
    assert_string_equal(qr_devices_get(d, 0)->model, "Test CPU 9000");
    assert_int_equal(qr_devices_get(d, 0)->mem_mb, 16000);
    qr_devices_destroy(&d);

    /* ARM style cpuinfo without "model name" */
    s_write(cpuinfo, "processor\t: 0\nBogoMIPS\t: 50.00\nHardware\t: Board X\n");
    d = qr_devices_detect(&o);
    assert_string_equal(qr_devices_get(d, 0)->model, "Board X");
    qr_devices_destroy(&d);
    unlink(cpuinfo);
    unlink(meminfo);
}

static void test_missing_files(void **state)
{
    (void)state;
    qr_devices_opts_t o = {.cpuinfo_path = "/nonexistent/cpuinfo",
                           .meminfo_path = "/nonexistent/meminfo", .gpu = false};
    qr_devices_t *d = qr_devices_detect(&o);
    assert_non_null(d);
    assert_string_equal(qr_devices_get(d, 0)->model, "unknown");
    assert_true(qr_devices_get(d, 0)->mem_mb > 0); /* falls back to sysconf */
    assert_true(qr_devices_get(d, 0)->cores >= 1);
    qr_devices_destroy(&d);
}

static void test_gpu_paths_without_gpus(void **state)
{
    (void)state;
    /* GPUs off: never loads the driver. */
    qr_devices_opts_t off = {.gpu = false};
    qr_devices_t *d = qr_devices_detect(&off);
    assert_int_equal(qr_devices_gpus(d), 0);
    assert_int_equal(qr_devices_count(d), 1);
    qr_devices_destroy(&d);
    /* A library that loads but is not a CUDA driver. */
    qr_devices_opts_t notcuda = {.cuda_lib = "libm.so.6", .gpu = true};
    d = qr_devices_detect(&notcuda);
    assert_non_null(d);
    assert_int_equal(qr_devices_gpus(d), 0);
    qr_devices_destroy(&d);
}

static void test_destroy_null(void **state)
{
    (void)state;
    qr_devices_t *d = NULL;
    qr_devices_destroy(&d);
    qr_devices_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect_this_box),
        cmocka_unit_test(test_detect_fixtures),
        cmocka_unit_test(test_missing_files),
        cmocka_unit_test(test_gpu_paths_without_gpus),
        cmocka_unit_test(test_destroy_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
