/* libFuzzer target: the CURVE key-file readers (common/keys.c).
 *
 * The input becomes a key file (mode 0600, or 0644 when the first byte is
 * odd) read by qr_keys_load_secret and qr_keys_load_public, and, when it is
 * short text without NULs, is also given to qr_keys_load_public and
 * qr_keys_valid_z85 as the key itself.
 *
 * Invariants besides "no crash / no sanitizer report / no leak": a failure
 * leaves a reason in err and never echoes the secret; a success yields a valid
 * 40-character Z85 key, and a loaded secret's public key is the one libzmq
 * derives from it; a world-readable secret file is always refused. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "keys.h"

#define S_CHECK(cond)                                                                           \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "fuzz_keys: invariant failed at %s:%d: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                                     \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool open_mode = data[0] & 1;
    data++;
    size--;
    const char *dir = getenv("TMPDIR");
    char path[256];
    snprintf(path, sizeof path, "%s/quarry-fuzz-key-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);
    chmod(path, open_mode ? 0644 : 0600);

    char pub[41], sec[41], err[512];
    memset(err, 0, sizeof err);
    int rc = qr_keys_load_secret(path, pub, sec, err, sizeof err);
    if (rc == 0) {
        S_CHECK(!open_mode);
        S_CHECK(qr_keys_valid_z85(sec) && qr_keys_valid_z85(pub));
        char derived[41];
        S_CHECK(zmq_curve_public(derived, sec) == 0 && strcmp(derived, pub) == 0);
        S_CHECK(err[0] == '\0' || strstr(err, sec) == NULL);
    } else {
        S_CHECK(err[0] != '\0');
        /* the file's first line never appears in the reason */
        char line[64];
        size_t n = 0;
        while (n < size && n < sizeof line - 1 && data[n] != '\n')
            n++;
        memcpy(line, data, n);
        line[n] = '\0';
        if (n >= 8 && !memchr(line, '\0', n))
            S_CHECK(strstr(err, line) == NULL);
    }
    memset(err, 0, sizeof err);
    if (qr_keys_load_public(path, pub, err, sizeof err) == 0)
        S_CHECK(qr_keys_valid_z85(pub));
    else
        S_CHECK(err[0] != '\0');
    unlink(path);

    if (size <= 64 && !memchr(data, '\0', size)) {
        char text[65];
        memcpy(text, data, size);
        text[size] = '\0';
        int valid = qr_keys_valid_z85(text);
        memset(err, 0, sizeof err);
        int r2 = qr_keys_load_public(text, pub, err, sizeof err);
        if (valid)
            S_CHECK(r2 == 0 && strcmp(pub, text) == 0);
        else if (r2 == 0)
            S_CHECK(qr_keys_valid_z85(pub)); /* text named a file holding a key */
    }
    return 0;
}
