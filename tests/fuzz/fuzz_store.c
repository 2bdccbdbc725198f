/* libFuzzer target: the broker's artifact store (broker/store.c) driven by
 * any sequence of UPLOAD steps a client could send.
 *
 * The input is a list of steps: [which name][flags][offset u16][len u16],
 * with chunk bytes taken from one of three contents (two fixed files and the
 * rest of the input).  Names are the SHA-256 of those contents, a name that
 * matches nothing, or garbage.  After every step the store must hold, under
 * any name it reports complete, exactly the bytes whose SHA-256 is that name
 * (invariant 1 of store.c), and an accepted step never reports more bytes
 * than the announced size.
 *
 * Invariants besides "no crash / no sanitizer report / no leak". */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "store.h"

#define S_CHECK(cond)                                                                           \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "fuzz_store: invariant failed at %s:%d: %s\n", __FILE__, __LINE__,  \
                    #cond);                                                                     \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

static int s_rm(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void s_sha(const void *d, size_t n, char *hex)
{
    qr_sha_t h;
    qr_sha_init(&h);
    qr_sha_update(&h, d, n);
    qr_sha_final(&h, hex);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t fixed_a[300], fixed_b[5000];
    for (size_t i = 0; i < sizeof fixed_a; i++)
        fixed_a[i] = (uint8_t)(i * 31 + 7);
    for (size_t i = 0; i < sizeof fixed_b; i++)
        fixed_b[i] = (uint8_t)(i * 17 + 1);
    /* steps first (6 bytes each, up to 32), the rest is the third content */
    size_t nsteps = size / 6 < 32 ? size / 6 : 32;
    const uint8_t *steps = data;
    const uint8_t *rest = data + nsteps * 6;
    size_t nrest = size - nsteps * 6;
    const uint8_t *content[3] = {fixed_a, fixed_b, rest};
    size_t clen[3] = {sizeof fixed_a, sizeof fixed_b, nrest};
    char names[5][QR_SHA_HEX + 2];
    for (int i = 0; i < 3; i++)
        s_sha(content[i], clen[i], names[i]);
    memset(names[3], 'a', QR_SHA_HEX);
    names[3][QR_SHA_HEX] = '\0';
    snprintf(names[4], sizeof names[4], "../%.20s", (const char *)fixed_a);

    char dir[256];
    snprintf(dir, sizeof dir, "%s/fuzz-store-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    char err[512];
    /* a 4000-byte limit: fixed_b is over it */
    qr_store_t *st = qr_store_new(dir, 4000, 2, err, sizeof err);
    S_CHECK(st);
    for (size_t s = 0; s < nsteps; s++) {
        const uint8_t *p = steps + s * 6;
        int which = p[0] % 5, src = p[1] % 3;
        uint64_t off = (uint64_t)p[2] | (uint64_t)p[3] << 8;
        size_t len = (size_t)p[4] | (size_t)p[5] << 8;
        uint64_t total = (p[1] & 0x80) ? clen[src] + (p[1] & 3) : clen[src];
        const uint8_t *chunk = NULL;
        if (p[1] & 0x40)
            len = 0; /* a question */
        else {
            if (off > clen[src])
                off = clen[src];
            if (len > clen[src] - off)
                len = (size_t)(clen[src] - off);
            chunk = content[src] + off;
        }
        uint64_t have = 12345;
        int rc = qr_store_put(st, names[which], total, off, chunk, len, &have, err, sizeof err);
        S_CHECK(rc == QR_OK || rc == QR_ESTATE || rc == QR_EINVAL || rc == QR_ETOOBIG ||
                rc == QR_ELIMIT || rc == QR_EIO);
        S_CHECK(rc == QR_OK || rc == QR_ESTATE || err[0]); /* a refusal says why */
        if (rc == QR_OK || rc == QR_ESTATE) /* the count means something then */
            S_CHECK(total == 0 || have <= total); /* 0: "how big is it?" */
        /* whatever is complete is exactly the content of its name */
        for (int n = 0; n < 5; n++) {
            int64_t got = qr_store_size(st, names[n]);
            if (got < 0)
                continue;
            S_CHECK(n < 3 && (uint64_t)got == clen[n]);
            uint8_t *back = malloc((size_t)got + 1);
            S_CHECK(back);
            S_CHECK(qr_store_read(st, names[n], 0, back, (size_t)got) == got);
            char hex[QR_SHA_HEX + 1];
            s_sha(back, (size_t)got, hex);
            S_CHECK(strcmp(hex, names[n]) == 0);
            free(back);
        }
    }
    qr_store_sweep(st, INT64_MAX / 2, 0); /* every upload is abandoned by then */
    S_CHECK(qr_store_uploads(st) == 0);
    qr_store_destroy(&st);
    nftw(dir, s_rm, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}
