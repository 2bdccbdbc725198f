/* A worker's on-disk artifact cache: the models it fetched from the broker,
 * kept across jobs and restarts under a size cap, least recently used out
 * first.  Files are named by their SHA-256 (<dir>/<sha>); a download lands in
 * <dir>/<sha>.part and is inserted only after its hash matched.  Entries in
 * use (a loaded model) are pinned and never evicted.
 *
 * Not thread-safe; the worker's main thread owns it. */
#ifndef QR_CACHE_H
#define QR_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "artifact.h"

typedef struct qr_cache qr_cache_t;

/* Opens (creating) the cache under dir with a cap of cap_bytes; adopts the
 * artifacts already there (least recently used first, by modification time)
 * and removes stray partial downloads.  Returns the cache (caller owns) or
 * NULL with a reason in err. */
qr_cache_t *qr_cache_new(const char *dir, uint64_t cap_bytes, char *err, size_t errlen);
/* NULL-safe, nulls *self_p.  Files stay on disk. */
void qr_cache_destroy(qr_cache_t **self_p);

/* True when the cache holds sha. */
bool qr_cache_has(const qr_cache_t *self, const char *sha);
/* Path of sha's file (held or not) or of its partial download (part) into
 * buf.  Returns 0, or -1 for a bad name or a short buf. */
int qr_cache_path(const qr_cache_t *self, const char *sha, bool part, char *buf, size_t len);
/* Marks sha as just used (moves it to the back of the eviction order). */
void qr_cache_touch(qr_cache_t *self, const char *sha);
/* Pins / unpins sha (counted): a pinned entry is never evicted. */
void qr_cache_pin(qr_cache_t *self, const char *sha);
void qr_cache_unpin(qr_cache_t *self, const char *sha);

/* Moves the finished, checked download <sha>.part of size bytes into the
 * cache, first evicting unpinned entries, least recently used first, until it
 * fits under the cap; dropped(arg, sha) is called for each eviction (may be
 * NULL).  An artifact larger than the cap is still inserted (a job needs it)
 * after evicting everything unpinned.  Returns 0, or -1 with a reason in err
 * (rename failed). */
int qr_cache_insert(qr_cache_t *self, const char *sha, uint64_t size,
                    void (*dropped)(void *arg, const char *sha), void *arg, char *err,
                    size_t errlen);

/* Number of artifacts held, and the i-th one's name (NULL out of range). */
size_t qr_cache_count(const qr_cache_t *self);
const char *qr_cache_name(const qr_cache_t *self, size_t i);
/* Bytes held. */
uint64_t qr_cache_bytes(const qr_cache_t *self);

#endif
