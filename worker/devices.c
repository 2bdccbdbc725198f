/* Device discovery; see devices.h.
 *
 * The CUDA driver API is declared here by hand (a handful of functions and
 * attribute numbers that NVIDIA keeps stable across driver versions) so the
 * worker builds without the CUDA toolkit and links no CUDA library. */
#include "devices.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_CUDA_SUCCESS 0
#define S_ATTR_MULTIPROCESSOR_COUNT 16
#define S_ATTR_CC_MAJOR 75
#define S_ATTR_CC_MINOR 76
#define S_MAX_GPUS 64

typedef int (*s_cu_init_fn)(unsigned int flags);
typedef int (*s_cu_count_fn)(int *count);
typedef int (*s_cu_get_fn)(int *device, int ordinal);
typedef int (*s_cu_name_fn)(char *name, int len, int device);
typedef int (*s_cu_mem_fn)(size_t *bytes, int device);
typedef int (*s_cu_attr_fn)(int *value, int attrib, int device);

struct qr_devices_t {
    qr_device_info_t *items; /* CPU first, then GPUs */
    size_t count;            /* entries in items */
    size_t gpus;             /* GPU entries */
};

static void s_copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src);
}

/* Value of the first "key : value" line of a /proc style file, trimmed. */
static int s_proc_field(const char *path, const char *key, char *out, size_t outlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[512];
    size_t klen = strlen(key);
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) != 0)
            continue;
        char *p = line + klen;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != ':')
            continue;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, "\r\n");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        snprintf(out, outlen, "%.*s", (int)n, p);
        rc = 0;
        break;
    }
    fclose(f);
    return rc;
}

static void s_detect_cpu(qr_device_info_t *d, const qr_devices_opts_t *o)
{
    s_copy(d->type, sizeof d->type, "cpu");
    /* x86 says "model name", some ARM kernels only "Hardware" or "Processor". */
    const char *cpuinfo = o->cpuinfo_path ? o->cpuinfo_path : "/proc/cpuinfo";
    if (s_proc_field(cpuinfo, "model name", d->model, sizeof d->model) < 0 &&
        s_proc_field(cpuinfo, "Hardware", d->model, sizeof d->model) < 0 &&
        s_proc_field(cpuinfo, "Processor", d->model, sizeof d->model) < 0)
        s_copy(d->model, sizeof d->model, "unknown");
    if (!d->model[0])
        s_copy(d->model, sizeof d->model, "unknown");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    d->cores = n > 0 ? (uint32_t)n : 1;
    char mem[64];
    const char *meminfo = o->meminfo_path ? o->meminfo_path : "/proc/meminfo";
    if (s_proc_field(meminfo, "MemTotal", mem, sizeof mem) == 0)
        d->mem_mb = strtoull(mem, NULL, 10) / 1024; /* the kernel reports kB */
    if (!d->mem_mb) {
        long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
        if (pages > 0 && psize > 0)
            d->mem_mb = (uint64_t)pages * (uint64_t)psize / (1024 * 1024);
    }
}

/* Appends one entry per CUDA device.  Any failure of the driver leaves the
 * list as it is: a box whose GPU is broken still serves CPU jobs. */
static void s_detect_gpus(qr_devices_t *self, const qr_devices_opts_t *o)
{
    const char *lib = o->cuda_lib ? o->cuda_lib : "libcuda.so.1";
    /* Never dlclose: cuInit starts driver threads that would run unmapped code. */
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return;
    s_cu_init_fn cu_init;
    s_cu_count_fn cu_count;
    s_cu_get_fn cu_get;
    s_cu_name_fn cu_name;
    s_cu_mem_fn cu_mem;
    s_cu_attr_fn cu_attr;
    /* POSIX's sanctioned way to turn a data pointer into a function pointer. */
    *(void **)&cu_init = dlsym(h, "cuInit");
    *(void **)&cu_count = dlsym(h, "cuDeviceGetCount");
    *(void **)&cu_get = dlsym(h, "cuDeviceGet");
    *(void **)&cu_name = dlsym(h, "cuDeviceGetName");
    *(void **)&cu_mem = dlsym(h, "cuDeviceTotalMem_v2");
    *(void **)&cu_attr = dlsym(h, "cuDeviceGetAttribute");
    if (!cu_init || !cu_count || !cu_get || !cu_name || !cu_mem || !cu_attr)
        return;
    int count = 0;
    if (cu_init(0) != S_CUDA_SUCCESS || cu_count(&count) != S_CUDA_SUCCESS || count <= 0)
        return;
    if (count > S_MAX_GPUS)
        count = S_MAX_GPUS;
    qr_device_info_t *items = realloc(self->items, sizeof *items * (self->count + (size_t)count));
    if (!items)
        return;
    self->items = items;
    for (int i = 0; i < count; i++) {
        int dev;
        if (cu_get(&dev, i) != S_CUDA_SUCCESS)
            continue;
        qr_device_info_t *d = &self->items[self->count];
        memset(d, 0, sizeof *d);
        s_copy(d->type, sizeof d->type, "gpu");
        if (cu_name(d->model, (int)sizeof d->model, dev) != S_CUDA_SUCCESS || !d->model[0])
            s_copy(d->model, sizeof d->model, "unknown");
        d->model[sizeof d->model - 1] = '\0';
        size_t bytes = 0;
        if (cu_mem(&bytes, dev) == S_CUDA_SUCCESS)
            d->mem_mb = bytes / (1024 * 1024);
        int sms = 0, major = 0, minor = 0;
        if (cu_attr(&sms, S_ATTR_MULTIPROCESSOR_COUNT, dev) == S_CUDA_SUCCESS && sms > 0)
            d->cores = (uint32_t)sms;
        if (cu_attr(&major, S_ATTR_CC_MAJOR, dev) == S_CUDA_SUCCESS &&
            cu_attr(&minor, S_ATTR_CC_MINOR, dev) == S_CUDA_SUCCESS)
            snprintf(d->compute_cap, sizeof d->compute_cap, "%d.%d", major, minor);
        self->count++;
        self->gpus++;
    }
}

qr_devices_t *qr_devices_detect(const qr_devices_opts_t *opts)
{
    qr_devices_opts_t defaults = {.gpu = true};
    const qr_devices_opts_t *o = opts ? opts : &defaults;
    qr_devices_t *self = calloc(1, sizeof *self);
    if (!self)
        goto fail;
    self->items = calloc(1, sizeof *self->items);
    if (!self->items)
        goto fail;
    s_detect_cpu(&self->items[0], o);
    self->count = 1;
    if (o->gpu)
        s_detect_gpus(self, o);
    return self;
fail:
    qr_devices_destroy(&self);
    return NULL;
}

void qr_devices_destroy(qr_devices_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->items);
    free(*self_p);
    *self_p = NULL;
}

size_t qr_devices_count(const qr_devices_t *self)
{
    return self->count;
}

const qr_device_info_t *qr_devices_get(const qr_devices_t *self, size_t i)
{
    return i < self->count ? &self->items[i] : NULL;
}

size_t qr_devices_gpus(const qr_devices_t *self)
{
    return self->gpus;
}
