/* Key files for CurveZMQ; see keys.h. */
#define _GNU_SOURCE
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static const char s_z85[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

int qr_keys_valid_z85(const char *s)
{
    if (!s || strlen(s) != QR_KEY_Z85_LEN)
        return 0;
    for (const char *p = s; *p; p++)
        if (!strchr(s_z85, *p))
            return 0;
    uint8_t bin[32];
    return zmq_z85_decode(bin, s) != NULL;
}

int qr_keys_generate(char *pub, char *sec)
{
    return zmq_curve_keypair(pub, sec) == 0 ? 0 : -1;
}

static int s_read_line(const char *path, char *out, size_t outlen, struct stat *st, char *err,
                       size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
        return -1;
    }
    if (st && fstat(fileno(f), st) < 0)
        memset(st, 0, sizeof *st);
    char line[128] = "";
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, " \t\r\n")] = '\0';
    if (!qr_keys_valid_z85(line)) {
        snprintf(err, errlen, "key file %s does not hold a 40-character Z85 key", path);
        return -1;
    }
    snprintf(out, outlen, "%s", line);
    return 0;
}

int qr_keys_write(const char *prefix, const char *pub, const char *sec, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.key", prefix);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    char line[64];
    int n = snprintf(line, sizeof line, "%s\n", sec);
    int ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    close(fd);
    if (!ok) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s.pub", prefix);
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "%s\n", pub) < 0 || fclose(f) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int qr_keys_load_secret(const char *path, char *pub, char *sec, char *err, size_t errlen)
{
    struct stat st;
    if (s_read_line(path, sec, QR_KEY_Z85_LEN + 1, &st, err, errlen) < 0)
        return -1;
    if (st.st_mode & 077) {
        snprintf(err, errlen, "secret key file %s is readable by others (chmod 600 it)", path);
        sec[0] = '\0';
        return -1;
    }
    if (zmq_curve_public(pub, sec) != 0) {
        snprintf(err, errlen, "cannot derive the public key from %s", path);
        sec[0] = '\0';
        return -1;
    }
    return 0;
}

int qr_keys_load_public(const char *text_or_path, char *pub, char *err, size_t errlen)
{
    if (qr_keys_valid_z85(text_or_path)) {
        snprintf(pub, QR_KEY_Z85_LEN + 1, "%s", text_or_path);
        return 0;
    }
    return s_read_line(text_or_path, pub, QR_KEY_Z85_LEN + 1, NULL, err, errlen);
}
