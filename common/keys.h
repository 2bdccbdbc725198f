/* CurveZMQ key pairs on disk, shared by the broker, the worker and the SDK.
 *
 * A key pair lives in two files: PREFIX.key holds the secret key and PREFIX.pub
 * the public key, each as one line of 40-character Z85 text.  The secret file
 * is created with mode 0600 and never printed.  A public key can be given as
 * the Z85 text itself or as the path of a file holding it. */
#ifndef QR_KEYS_H
#define QR_KEYS_H

#include <stddef.h>

#define QR_KEY_Z85_LEN 40

/* Generates a key pair into pub and sec (41 bytes each, NUL-terminated).
 * Returns 0, or -1 when this libzmq lacks CURVE. */
int qr_keys_generate(char *pub, char *sec);

/* Writes PREFIX.key (0600, refusing to overwrite) and PREFIX.pub.  Returns 0,
 * or -1 with a message in err. */
int qr_keys_write(const char *prefix, const char *pub, const char *sec, char *err, size_t errlen);

/* Reads a secret key file and derives its public key into pub and sec (41
 * bytes each).  Returns 0, or -1 with a message in err (missing file, bad
 * text, a file readable by others). */
int qr_keys_load_secret(const char *path, char *pub, char *sec, char *err, size_t errlen);

/* Reads a public key given as Z85 text or as a file holding it, into pub (41
 * bytes).  Returns 0, or -1 with a message in err. */
int qr_keys_load_public(const char *text_or_path, char *pub, char *err, size_t errlen);

/* True when s is exactly 40 valid Z85 characters. */
int qr_keys_valid_z85(const char *s);

#endif
