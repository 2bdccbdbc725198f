/* Keccak-f[1600] and the Keccak-256 sponge; see keccak.h.
 *
 * A plain lane-oriented implementation: state words are little-endian lanes
 * (the Keccak spec's byte order), bytes are XORed in one at a time.  Hashing
 * here is a few hundred bytes per transaction or Merkle node, so clarity wins
 * over unrolling. */
#include "keccak.h"

#include <string.h>

static const uint64_t s_rc[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};

/* rho offsets and pi destinations, in the order the combined rho-pi step
 * walks the lanes starting from lane 1 */
static const unsigned s_rotc[24] = {1,  3,  6,  10, 15, 21, 28, 36, 45, 55, 2,  14,
                                    27, 41, 56, 8,  25, 43, 62, 18, 39, 61, 20, 44};
static const unsigned s_piln[24] = {10, 7,  11, 17, 18, 3, 5,  16, 8,  21, 24, 4,
                                    15, 23, 19, 13, 12, 2, 20, 14, 22, 9,  6,  1};

static uint64_t s_rotl(uint64_t x, unsigned n)
{
    return (x << n) | (x >> (64 - n));
}

static void s_permute(uint64_t st[25])
{
    uint64_t bc[5];
    for (int round = 0; round < 24; round++) {
        /* theta */
        for (int i = 0; i < 5; i++)
            bc[i] = st[i] ^ st[i + 5] ^ st[i + 10] ^ st[i + 15] ^ st[i + 20];
        for (int i = 0; i < 5; i++) {
            uint64_t t = bc[(i + 4) % 5] ^ s_rotl(bc[(i + 1) % 5], 1);
            for (int j = 0; j < 25; j += 5)
                st[j + i] ^= t;
        }
        /* rho and pi */
        uint64_t t = st[1];
        for (int i = 0; i < 24; i++) {
            unsigned j = s_piln[i];
            uint64_t tmp = st[j];
            st[j] = s_rotl(t, s_rotc[i]);
            t = tmp;
        }
        /* chi */
        for (int j = 0; j < 25; j += 5) {
            for (int i = 0; i < 5; i++)
                bc[i] = st[j + i];
            for (int i = 0; i < 5; i++)
                st[j + i] ^= (~bc[(i + 1) % 5]) & bc[(i + 2) % 5];
        }
        /* iota */
        st[0] ^= s_rc[round];
    }
}

static void s_xor_byte(uint64_t st[25], size_t i, uint8_t b)
{
    st[i / 8] ^= (uint64_t)b << (8 * (i % 8));
}

void qr_keccak_init(qr_keccak_t *k)
{
    memset(k, 0, sizeof *k);
}

void qr_keccak_update(qr_keccak_t *k, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        s_xor_byte(k->st, k->pos, p[i]);
        if (++k->pos == QR_KECCAK256_RATE) {
            s_permute(k->st);
            k->pos = 0;
        }
    }
}

void qr_keccak_final(qr_keccak_t *k, uint8_t out[QR_KECCAK256_LEN])
{
    /* pad10*1 with Keccak's 0x01 domain bit; both bits land in one byte
     * (0x81) when only one byte of the block is left */
    s_xor_byte(k->st, k->pos, 0x01);
    s_xor_byte(k->st, QR_KECCAK256_RATE - 1, 0x80);
    s_permute(k->st);
    for (int i = 0; i < QR_KECCAK256_LEN; i++)
        out[i] = (uint8_t)(k->st[i / 8] >> (8 * (i % 8)));
    /* the state may have absorbed a secret (a key file's text) */
    volatile uint64_t *v = k->st;
    for (int i = 0; i < 25; i++)
        v[i] = 0;
    k->pos = 0;
}

void qr_keccak256(const void *data, size_t len, uint8_t out[QR_KECCAK256_LEN])
{
    qr_keccak_t k;
    qr_keccak_init(&k);
    qr_keccak_update(&k, data, len);
    qr_keccak_final(&k, out);
}
