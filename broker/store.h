/* The broker's content-addressed artifact store: model weights and graphs
 * that clients upload once (UPLOAD) and workers fetch in chunks (FETCH).
 *
 * Layout under the store folder: ab/abcdef... (the SHA-256, first two digits
 * as a fan-out folder) for complete artifacts, tmp/<sha>.part for uploads in
 * progress.  An artifact becomes visible only after its last byte arrived,
 * its SHA-256 matched its name, and the file was fsync'ed and renamed into
 * place: a crash at any point leaves either nothing or a whole, checked file.
 * Partial uploads do not survive a restart (the client's next UPLOAD learns
 * that the broker has 0 bytes and starts again).
 *
 * The store is the record of what exists: a standby broker must see the same
 * folder (shared storage) to serve the artifacts of jobs it takes over.
 * Not thread-safe; the broker's loop owns it. */
#ifndef QR_STORE_H
#define QR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "artifact.h"

typedef struct qr_store qr_store_t;

/* Opens (creating) the store under dir; max_bytes caps one artifact's size,
 * max_uploads the uploads in progress at once.  Removes partial uploads left
 * by an earlier run.  Returns the store (caller owns) or NULL with a reason
 * in err. */
qr_store_t *qr_store_new(const char *dir, uint64_t max_bytes, uint32_t max_uploads, char *err,
                         size_t errlen);
/* NULL-safe, nulls *self_p; drops uploads in progress. */
void qr_store_destroy(qr_store_t **self_p);

/* Size of the complete artifact sha, or -1 when the store does not hold it
 * (or sha is not a valid name). */
int64_t qr_store_size(qr_store_t *self, const char *sha);

/* Path of the complete artifact sha into buf.  Returns 0, or -1 when it is
 * not held or buf is too small. */
int qr_store_path(qr_store_t *self, const char *sha, char *buf, size_t len);

/* One UPLOAD step for artifact sha of size bytes: appends len bytes of data
 * at offset (len 0: only asks).  *have receives the bytes the store has after
 * the step (size once complete).  Returns QR_OK (also when the artifact was
 * already complete: the chunk is ignored); QR_ESTATE when offset is not
 * *have (the client resumes from *have); QR_EINVAL for a bad name, a size of
 * 0 or one that disagrees with an upload in progress, a chunk past size, or
 * content whose SHA-256 is not sha (the upload is dropped); QR_ETOOBIG over
 * max_bytes; QR_ELIMIT when too many uploads are in progress; QR_EIO on a
 * disk error.  A message in err for each. */
int qr_store_put(qr_store_t *self, const char *sha, uint64_t size, uint64_t offset,
                 const void *data, size_t len, uint64_t *have, char *err, size_t errlen);

/* Reads up to len bytes of artifact sha at offset into buf.  Returns the
 * bytes read (0 at the end), or -1 when not held or on a read error. */
int64_t qr_store_read(qr_store_t *self, const char *sha, uint64_t offset, void *buf, size_t len);

/* Drops uploads that saw no chunk for idle_ms (monotonic now_ms). */
void qr_store_sweep(qr_store_t *self, int64_t now_ms, int64_t idle_ms);

/* Uploads in progress. */
uint32_t qr_store_uploads(const qr_store_t *self);

#endif
