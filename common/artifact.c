/* SHA-256 content addresses; see artifact.h. */
#include "artifact.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

_Static_assert(sizeof(crypto_hash_sha256_state) <= sizeof(qr_sha_t),
               "qr_sha_t must hold libsodium's SHA-256 state");

bool qr_sha_valid(const char *s)
{
    if (!s)
        return false;
    size_t i = 0;
    for (; s[i]; i++)
        if (i >= QR_SHA_HEX || !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return i == QR_SHA_HEX;
}

void qr_sha_init(qr_sha_t *h)
{
    crypto_hash_sha256_init((crypto_hash_sha256_state *)h);
}

void qr_sha_update(qr_sha_t *h, const void *data, size_t len)
{
    if (len)
        crypto_hash_sha256_update((crypto_hash_sha256_state *)h, data, len);
}

void qr_sha_final(qr_sha_t *h, char *hex)
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final((crypto_hash_sha256_state *)h, d);
    sodium_bin2hex(hex, QR_SHA_HEX + 1, d, sizeof d);
}

int qr_sha_file(const char *path, char *hex, uint64_t *size, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    qr_sha_t h;
    qr_sha_init(&h);
    unsigned char buf[1u << 16];
    uint64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        qr_sha_update(&h, buf, (size_t)n);
        total += (uint64_t)n;
    }
    close(fd);
    qr_sha_final(&h, hex);
    if (size)
        *size = total;
    return 0;
}
