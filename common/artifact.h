/* Content addresses of artifacts (model weights, graphs): SHA-256 as 64
 * lowercase hex digits, the name an artifact has in the broker's store, in a
 * worker's cache, in a JobSpec and on the command line (`quarry upload`
 * prints it).  SHA-256 comes from libsodium, which libzmq already pulls in.
 * Every function is thread-safe. */
#ifndef QR_ARTIFACT_H
#define QR_ARTIFACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QR_SHA_HEX 64 /* characters in an artifact name, without the NUL */

/* True when s is exactly 64 lowercase hex digits (NULL: false).  Anything
 * else is refused before it can become a file name. */
bool qr_sha_valid(const char *s);

/* Streaming SHA-256. */
typedef struct {
    uint64_t opaque[32]; /* libsodium's crypto_hash_sha256_state fits (checked) */
} qr_sha_t;
void qr_sha_init(qr_sha_t *h);
void qr_sha_update(qr_sha_t *h, const void *data, size_t len);
/* Writes the digest as 64 hex digits + NUL into hex[QR_SHA_HEX + 1]. */
void qr_sha_final(qr_sha_t *h, char *hex);

/* Hashes the file at path into hex, and its size into *size (may be NULL).
 * Returns 0, or -1 with a message in err (cannot open or read). */
int qr_sha_file(const char *path, char *hex, uint64_t *size, char *err, size_t errlen);

#endif
