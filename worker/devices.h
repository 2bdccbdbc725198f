/* What compute a worker box has: its CPU and any NVIDIA GPUs.
 *
 * The worker reports this list in READY so the broker can match jobs that
 * need a GPU or a minimum of memory.  The CPU comes from /proc/cpuinfo,
 * sysconf and /proc/meminfo; GPUs come from the CUDA driver API, loaded at
 * run time with dlopen("libcuda.so.1") so that one binary runs on boxes with
 * and without a driver: no library, or a driver that fails to initialise,
 * means no GPUs and is not an error.  Detection runs once at start-up; the
 * list is read-only afterwards and safe to read from any thread. */
#ifndef QR_DEVICES_H
#define QR_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One device, as the READY message describes it (quarry.Device). */
typedef struct {
    char type[8];         /* "cpu" or "gpu" */
    char model[128];      /* marketing name, "unknown" when not found */
    uint64_t mem_mb;      /* system memory (cpu) or device memory (gpu) */
    uint32_t cores;       /* online CPU cores, or GPU multiprocessors */
    char compute_cap[16]; /* GPU compute capability "9.0"; empty for a CPU */
} qr_device_info_t;

typedef struct qr_devices_t qr_devices_t;

/* Where detection looks; NULL fields take the system defaults
 * (/proc/cpuinfo, /proc/meminfo, libcuda.so.1).  Tests point them at fixtures. */
typedef struct {
    const char *cpuinfo_path; /* file with "model name : ..." lines */
    const char *meminfo_path; /* file with a "MemTotal: N kB" line */
    const char *cuda_lib;     /* shared library with the CUDA driver API */
    bool gpu;                 /* false: do not look for GPUs at all */
} qr_devices_opts_t;

/* Detects the devices.  opts may be NULL for the defaults with GPUs on.
 * Always lists exactly one "cpu" entry first, then one "gpu" entry per CUDA
 * device.  Returns a new list the caller owns, or NULL when out of memory. */
qr_devices_t *qr_devices_detect(const qr_devices_opts_t *opts);

/* Frees the list and sets *self_p to NULL; accepts NULL and *self_p == NULL. */
void qr_devices_destroy(qr_devices_t **self_p);

/* Number of devices (CPU included, so at least 1). */
size_t qr_devices_count(const qr_devices_t *self);

/* Device i, 0 <= i < count; the list keeps ownership. */
const qr_device_info_t *qr_devices_get(const qr_devices_t *self, size_t i);

/* Number of GPU entries. */
size_t qr_devices_gpus(const qr_devices_t *self);

#endif
