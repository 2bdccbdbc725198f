/* Content-addressed artifact store; see store.h.
 *
 * Invariants:
 *   1. a file under <dir>/xx/ is complete, fsync'ed and its SHA-256 is its
 *      name (only s_finish renames into place, after checking);
 *   2. an upload in progress has written exactly `have` bytes to its .part
 *      file and fed exactly those bytes to its running hash;
 *   3. at most max_uploads uploads are in progress. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "util.h"

typedef struct s_upload {
    char sha[QR_SHA_HEX + 1]; /* its name */
    uint64_t size;            /* announced total */
    uint64_t have;            /* bytes written (invariant 2) */
    int fd;                   /* the .part file */
    qr_sha_t hash;            /* over the bytes written */
    int64_t touched_ms;       /* monotonic ms of the last chunk */
    struct s_upload *next;
} s_upload_t;

struct qr_store {
    char *dir;            /* the store folder */
    uint64_t max_bytes;   /* largest artifact */
    uint32_t max_uploads; /* invariant 3 */
    uint32_t nuploads;
    s_upload_t *uploads;  /* in progress (few: a list is enough) */
};

static void s_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, a, b);
}

static int s_mkdir(const char *path)
{
    return mkdir(path, 0750) == 0 || errno == EEXIST ? 0 : -1;
}

qr_store_t *qr_store_new(const char *dir, uint64_t max_bytes, uint32_t max_uploads, char *err,
                         size_t errlen)
{
    char tmp[4096];
    if (!dir || !*dir || strlen(dir) > 3000) {
        s_err(err, errlen, "artifact store folder %s%s is not usable", dir ? dir : "", "");
        return NULL;
    }
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    if (qr_mkdir_p(dir) < 0 || s_mkdir(tmp) < 0) {
        s_err(err, errlen, "cannot create the artifact store under %s: %s", dir, strerror(errno));
        return NULL;
    }
    /* partial uploads of an earlier run: their hash state is gone */
    DIR *d = opendir(tmp);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') {
                char p[4400];
                snprintf(p, sizeof p, "%s/%s", tmp, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    qr_store_t *self = calloc(1, sizeof *self);
    if (!self || !(self->dir = strdup(dir))) {
        free(self);
        s_err(err, errlen, "out of memory%s%s", "", "");
        return NULL;
    }
    self->max_bytes = max_bytes;
    self->max_uploads = max_uploads ? max_uploads : 1;
    return self;
}

static void s_upload_drop(qr_store_t *self, s_upload_t *u)
{
    for (s_upload_t **pp = &self->uploads; *pp; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            break;
        }
    char p[4200];
    snprintf(p, sizeof p, "%s/tmp/%s.part", self->dir, u->sha);
    close(u->fd);
    unlink(p);
    free(u);
    self->nuploads--;
}

void qr_store_destroy(qr_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_store_t *self = *self_p;
    while (self->uploads)
        s_upload_drop(self, self->uploads);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

int qr_store_path(qr_store_t *self, const char *sha, char *buf, size_t len)
{
    if (!qr_sha_valid(sha))
        return -1;
    int n = snprintf(buf, len, "%s/%.2s/%s", self->dir, sha, sha);
    if (n < 0 || (size_t)n >= len)
        return -1;
    struct stat st;
    return stat(buf, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -1;
}

int64_t qr_store_size(qr_store_t *self, const char *sha)
{
    char p[4200];
    struct stat st;
    if (qr_store_path(self, sha, p, sizeof p) < 0 || stat(p, &st) < 0)
        return -1;
    return (int64_t)st.st_size;
}

static s_upload_t *s_upload_find(qr_store_t *self, const char *sha)
{
    for (s_upload_t *u = self->uploads; u; u = u->next)
        if (strcmp(u->sha, sha) == 0)
            return u;
    return NULL;
}

static int s_write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Last byte arrived: check, fsync, rename into place (invariant 1). */
static int s_finish(qr_store_t *self, s_upload_t *u, char *err, size_t errlen)
{
    char got[QR_SHA_HEX + 1], part[4200], dir[4200], dest[4300];
    qr_sha_final(&u->hash, got);
    if (strcmp(got, u->sha) != 0) {
        s_err(err, errlen, "uploaded bytes have SHA-256 %s, not the name %s; upload dropped", got,
              u->sha);
        s_upload_drop(self, u);
        return QR_EINVAL;
    }
    snprintf(part, sizeof part, "%s/tmp/%s.part", self->dir, u->sha);
    snprintf(dir, sizeof dir, "%s/%.2s", self->dir, u->sha);
    snprintf(dest, sizeof dest, "%s/%s", dir, u->sha);
    if (fsync(u->fd) < 0 || s_mkdir(dir) < 0 || rename(part, dest) < 0) {
        s_err(err, errlen, "cannot store artifact %s: %s", u->sha, strerror(errno));
        s_upload_drop(self, u);
        return QR_EIO;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* the rename itself is durable */
        close(dfd);
    }
    close(u->fd);
    u->fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* s_upload_drop closes it; nothing to unlink */
    s_upload_drop(self, u);
    return QR_OK;
}

int qr_store_put(qr_store_t *self, const char *sha, uint64_t size, uint64_t offset,
                 const void *data, size_t len, uint64_t *have, char *err, size_t errlen)
{
    *have = 0;
    if (err && errlen)
        err[0] = '\0';
    if (!qr_sha_valid(sha)) {
        s_err(err, errlen, "artifact name must be a SHA-256 in 64 lowercase hex digits%s%s", "",
              "");
        return QR_EINVAL;
    }
    int64_t held = qr_store_size(self, sha);
    if (held >= 0) {
        *have = (uint64_t)held; /* complete already: nothing to do */
        if (size && (uint64_t)held != size) {
            s_err(err, errlen, "artifact %s is stored with a different size than announced%s",
                  sha, "");
            return QR_EINVAL;
        }
        return QR_OK;
    }
    if (size == 0) {
        s_err(err, errlen, "artifact %s: size must be at least 1 byte%s", sha, "");
        return QR_EINVAL;
    }
    if (size > self->max_bytes) {
        char lim[64];
        snprintf(lim, sizeof lim, "%llu", (unsigned long long)self->max_bytes);
        s_err(err, errlen, "artifact %s is over the store's limit of %s bytes", sha, lim);
        return QR_ETOOBIG;
    }
    s_upload_t *u = s_upload_find(self, sha);
    if (u && u->size != size) {
        s_err(err, errlen, "artifact %s: size disagrees with the upload in progress%s", sha, "");
        return QR_EINVAL;
    }
    if (!u && len == 0)
        return QR_OK; /* a question: nothing held yet */
    if (!u) {
        if (offset != 0)
            return QR_ESTATE;
        if (self->nuploads >= self->max_uploads) {
            s_err(err, errlen, "too many uploads in progress; try %s again later%s", sha, "");
            return QR_ELIMIT;
        }
        char part[4200];
        snprintf(part, sizeof part, "%s/tmp/%s.part", self->dir, sha);
        int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        if (fd < 0 || !(u = calloc(1, sizeof *u))) {
            s_err(err, errlen, "cannot start upload %s: %s", sha, strerror(errno));
            if (fd >= 0)
                close(fd);
            return QR_EIO;
        }
        memcpy(u->sha, sha, QR_SHA_HEX + 1);
        u->size = size;
        u->fd = fd;
        qr_sha_init(&u->hash);
        u->next = self->uploads;
        self->uploads = u;
        self->nuploads++;
    }
    u->touched_ms = qr_clock_ms();
    *have = u->have;
    if (len == 0)
        return QR_OK;
    if (offset != u->have)
        return QR_ESTATE;
    if (len > size - u->have) {
        s_err(err, errlen, "artifact %s: chunk runs past the announced size%s", sha, "");
        return QR_EINVAL;
    }
    if (s_write_all(u->fd, data, len) < 0) {
        s_err(err, errlen, "cannot write upload %s: %s", sha, strerror(errno));
        s_upload_drop(self, u);
        *have = 0;
        return QR_EIO;
    }
    qr_sha_update(&u->hash, data, len);
    u->have += len;
    *have = u->have;
    if (u->have == u->size) {
        int rc = s_finish(self, u, err, errlen);
        if (rc != QR_OK)
            *have = 0;
        return rc;
    }
    return QR_OK;
}

int64_t qr_store_read(qr_store_t *self, const char *sha, uint64_t offset, void *buf, size_t len)
{
    char p[4200];
    if (qr_store_path(self, sha, p, sizeof p) < 0)
        return -1;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, (uint8_t *)buf + got, len - got, (off_t)(offset + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    return (int64_t)got;
}

void qr_store_sweep(qr_store_t *self, int64_t now_ms, int64_t idle_ms)
{
    for (s_upload_t *u = self->uploads, *next; u; u = next) {
        next = u->next;
        if (now_ms - u->touched_ms > idle_ms)
            s_upload_drop(self, u);
    }
}

uint32_t qr_store_uploads(const qr_store_t *self)
{
    return self ? self->nuploads : 0;
}
