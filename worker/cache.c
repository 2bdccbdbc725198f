/* On-disk LRU artifact cache; see cache.h.
 *
 * Invariants:
 *   1. every entry is a complete file whose SHA-256 was checked when it was
 *      inserted (or that an earlier run inserted);
 *   2. bytes == the sum of the entries' sizes;
 *   3. entries are few (models, not inputs), so a linear array ordered by
 *      last use (index 0 = least recent) is the whole data structure. */
#include "cache.h"

#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char sha[QR_SHA_HEX + 1];
    uint64_t size;
    uint32_t pins;  /* in use: never evicted */
    int64_t mtime;  /* ordering at start only */
} s_entry_t;

struct qr_cache {
    char *dir;
    uint64_t cap;     /* bytes */
    uint64_t bytes;   /* invariant 2 */
    s_entry_t *e;     /* invariant 3 */
    size_t n, capn;
};

static int s_find(const qr_cache_t *self, const char *sha)
{
    for (size_t i = 0; i < self->n; i++)
        if (strcmp(self->e[i].sha, sha) == 0)
            return (int)i;
    return -1;
}

static int s_push(qr_cache_t *self, const s_entry_t *en)
{
    if (self->n == self->capn) {
        size_t nc = self->capn ? self->capn * 2 : 16;
        s_entry_t *ne = realloc(self->e, nc * sizeof *ne);
        if (!ne)
            return -1;
        self->e = ne;
        self->capn = nc;
    }
    self->e[self->n++] = *en;
    self->bytes += en->size;
    return 0;
}

static int s_by_mtime(const void *a, const void *b)
{
    const s_entry_t *x = a, *y = b;
    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

qr_cache_t *qr_cache_new(const char *dir, uint64_t cap_bytes, char *err, size_t errlen)
{
    if (!dir || !*dir || strlen(dir) > 3000) {
        snprintf(err, errlen, "artifact cache folder is not usable");
        return NULL;
    }
    if (qr_mkdir_p(dir) < 0) {
        snprintf(err, errlen, "cannot create the artifact cache %s: %s", dir, strerror(errno));
        return NULL;
    }
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot open the artifact cache %s: %s", dir, strerror(errno));
        return NULL;
    }
    qr_cache_t *self = calloc(1, sizeof *self);
    if (!self || !(self->dir = strdup(dir))) {
        free(self);
        closedir(d);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->cap = cap_bytes;
    struct dirent *de;
    while ((de = readdir(d))) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (de->d_name[0] == '.' || stat(p, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (!qr_sha_valid(de->d_name)) {
            /* an interrupted download (or a stranger): not ours to keep */
            if (strstr(de->d_name, ".part"))
                unlink(p);
            continue;
        }
        s_entry_t en = {.size = (uint64_t)st.st_size, .mtime = (int64_t)st.st_mtime};
        memcpy(en.sha, de->d_name, QR_SHA_HEX + 1);
        if (s_push(self, &en) < 0) {
            closedir(d);
            qr_cache_destroy(&self);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
    }
    closedir(d);
    if (self->n) /* qsort(NULL, 0) is undefined */
        qsort(self->e, self->n, sizeof *self->e, s_by_mtime);
    return self;
}

void qr_cache_destroy(qr_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_cache_t *self = *self_p;
    free(self->e);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

bool qr_cache_has(const qr_cache_t *self, const char *sha)
{
    return qr_sha_valid(sha) && s_find(self, sha) >= 0;
}

int qr_cache_path(const qr_cache_t *self, const char *sha, bool part, char *buf, size_t len)
{
    if (!qr_sha_valid(sha))
        return -1;
    int n = snprintf(buf, len, "%s/%s%s", self->dir, sha, part ? ".part" : "");
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

void qr_cache_touch(qr_cache_t *self, const char *sha)
{
    int i = s_find(self, sha);
    if (i < 0)
        return;
    s_entry_t en = self->e[i];
    memmove(&self->e[i], &self->e[i + 1], (self->n - (size_t)i - 1) * sizeof *self->e);
    self->e[self->n - 1] = en;
    /* the order survives a restart through the file's modification time */
    char p[4200];
    if (qr_cache_path(self, sha, false, p, sizeof p) == 0)
        utimensat(AT_FDCWD, p, NULL, 0);
}

void qr_cache_pin(qr_cache_t *self, const char *sha)
{
    int i = s_find(self, sha);
    if (i >= 0)
        self->e[i].pins++;
}

void qr_cache_unpin(qr_cache_t *self, const char *sha)
{
    int i = s_find(self, sha);
    if (i >= 0 && self->e[i].pins)
        self->e[i].pins--;
}

int qr_cache_insert(qr_cache_t *self, const char *sha, uint64_t size,
                    void (*dropped)(void *arg, const char *sha), void *arg, char *err,
                    size_t errlen)
{
    char part[4200], dest[4200];
    if (qr_cache_path(self, sha, true, part, sizeof part) < 0 ||
        qr_cache_path(self, sha, false, dest, sizeof dest) < 0) {
        snprintf(err, errlen, "bad artifact name");
        return -1;
    }
    int have = s_find(self, sha);
    if (have >= 0) { /* raced with itself: keep the one we have */
        unlink(part);
        qr_cache_touch(self, sha);
        return 0;
    }
    /* evict least recently used, unpinned entries until the new one fits */
    for (size_t i = 0; i < self->n && self->bytes + size > self->cap;) {
        if (self->e[i].pins) {
            i++;
            continue;
        }
        s_entry_t gone = self->e[i];
        char p[4200];
        if (qr_cache_path(self, gone.sha, false, p, sizeof p) == 0)
            unlink(p);
        memmove(&self->e[i], &self->e[i + 1], (self->n - i - 1) * sizeof *self->e);
        self->n--;
        self->bytes -= gone.size;
        if (dropped)
            dropped(arg, gone.sha);
    }
    if (rename(part, dest) < 0) {
        snprintf(err, errlen, "cannot move the download of %s into the cache: %s", sha,
                 strerror(errno));
        unlink(part);
        return -1;
    }
    s_entry_t en = {.size = size, .mtime = (int64_t)time(NULL)};
    memcpy(en.sha, sha, QR_SHA_HEX + 1);
    if (s_push(self, &en) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

size_t qr_cache_count(const qr_cache_t *self)
{
    return self ? self->n : 0;
}

const char *qr_cache_name(const qr_cache_t *self, size_t i)
{
    return self && i < self->n ? self->e[i].sha : NULL;
}

uint64_t qr_cache_bytes(const qr_cache_t *self)
{
    return self ? self->bytes : 0;
}
