/* zk_make_ptau: a snarkjs powers-of-tau file from KNOWN secrets, for the
 * Groth16 test fixtures only.
 *
 *   zk_make_ptau [--phase1] POWER OUT.ptau
 *   zk_make_ptau --version
 *
 * NOT A CEREMONY: tau, alpha and beta are fixed, derived from a constant
 * seed in this file (s_secrets below), so anyone can forge proofs under any
 * key set up on top of it.  It exists because snarkjs's own ceremony (new, contribute, beacon,
 * prepare phase2) takes ~20 minutes at 2^16 on the CI machine's two cores,
 * while this writes the same file in seconds: zk_fixtures.sh uses it for the
 * large circuits and runs `snarkjs groth16 setup` (the circuit-specific phase
 * 2 stays snarkjs's) on top.
 *
 * The file is, byte for byte, what `snarkjs powersoftau prepare phase2`
 * writes for these secrets (zk_ptau_check.sh compares; layouts from
 * snarkjs 0.7.6's powersoftau_new.js, powersoftau_utils.js and
 * powersoftau_preparephase2.js): an iden3 binfile "ptau" version 1 with,
 * n = 2^POWER:
 *   1  header: n8 = 32, q (le32), power, ceremonyPower (= power)
 *   2  tau^i G1, i < 2n - 1        3  tau^i G2, i < n
 *   4  alpha tau^i G1, i < n       5  beta tau^i G1, i < n
 *   6  beta G2
 *   7  contributions: one, whose proofs of knowledge and hashes pass
 *      `snarkjs powersoftau verify` (see s_contribution)
 *   12 for p = 0 .. POWER + 1, the 2^p points L_i(tau) G1 (L_i the Lagrange
 *      basis of the domain of size 2^p, natural order)
 *   13, 14, 15 the same for p = 0 .. POWER over tau^i G2, alpha tau^i G1,
 *      beta tau^i G1
 * Points are affine, Montgomery little-endian (as in a .zkey).  prepare
 * phase2 computes section 12's layer POWER + 1 by an inverse FFT of the 2n
 * powers with the missing tau^(2n-1) G1 replaced by zero, so that layer is
 * L_i(tau) - tau^(2n-1) w^i / (2n) rather than L_i(tau); we write the same.
 * --phase1 writes sections 1-7 only (what `powersoftau beacon` leaves):
 * the test runs snarkjs's prepare phase2 on it and compares with ours.
 *
 * Exit: 0 written, 1 failure (message on stderr), 2 usage. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "bn254_curve.h"
#include "bn254_field.h"
#include "bn254_tower.h"
#include "g16_toy.h"
#include "msm.h"
#include "ntt.h"

/* bump whenever the bytes written for a given POWER change (the fixture
 * cache keys on it) */
#define QR_PTAU_TOOL_VERSION 1
#define QR_PTAU_MAX_POWER 27

/* The known secrets: tau, alpha, beta and the three proof-of-knowledge
 * scalars, from qr_g16_toy_secrets(seed "quarptau") */
#define QR_PTAU_SEED 0x7175617270746175ull

typedef struct {
    qr_fr_t tau, alpha, beta;
    qr_fr_t k[3]; /* the g1_s of each proof of knowledge is k G1 */
} s_secrets_t;

static void s_secrets(s_secrets_t *s)
{
    qr_g16_toy_secrets_t t;
    qr_g16_toy_secrets(&t, QR_PTAU_SEED);
    s->tau = t.tau;
    s->alpha = t.alpha;
    s->beta = t.beta;
    s->k[0] = t.gamma;
    s->k[1] = t.delta;
    qr_fr_mul(&s->k[2], &t.gamma, &t.delta);
}

/* ---- BLAKE2b-512 (libsodium's generichash, unkeyed, 64 bytes: the
 * @noble/hashes blake2b({dkLen: 64}) snarkjs uses) ---- */

static void s_hash_init(crypto_generichash_state *h)
{
    crypto_generichash_init(h, NULL, 0, 64);
}

static void s_hash_g1(crypto_generichash_state *h, const qr_g1_affine_t *p)
{
    uint8_t b[64];
    qr_g1_to_be64(b, p); /* ffjavascript's "uncompressed": x, y big-endian */
    crypto_generichash_update(h, b, sizeof b);
}

static void s_hash_g2(crypto_generichash_state *h, const qr_g2_affine_t *p)
{
    uint8_t b[128];
    qr_g2_to_be128(b, p); /* x.c1, x.c0, y.c1, y.c0 big-endian */
    crypto_generichash_update(h, b, sizeof b);
}

/* ---- ffjavascript's ChaCha (chacha.js): 20 rounds, key = 8 seed words,
 * 128-bit block counter in words 12-15 from 0, no nonce ---- */

typedef struct {
    uint32_t st[16], out[16];
    int idx;
} s_chacha_t;

#define S_ROTL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define S_QR(a, b, c, d)                                                                           \
    do {                                                                                           \
        x[a] += x[b];                                                                              \
        x[d] = S_ROTL(x[d] ^ x[a], 16);                                                            \
        x[c] += x[d];                                                                              \
        x[b] = S_ROTL(x[b] ^ x[c], 12);                                                            \
        x[a] += x[b];                                                                              \
        x[d] = S_ROTL(x[d] ^ x[a], 8);                                                             \
        x[c] += x[d];                                                                              \
        x[b] = S_ROTL(x[b] ^ x[c], 7);                                                             \
    } while (0)

static void s_chacha_init(s_chacha_t *c, const uint32_t seed[8])
{
    static const uint32_t k[4] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
    memcpy(c->st, k, sizeof k);
    memcpy(c->st + 4, seed, 8 * sizeof *seed);
    memset(c->st + 12, 0, 4 * sizeof *c->st);
    c->idx = 16;
}

static uint32_t s_chacha_u32(s_chacha_t *c)
{
    if (c->idx == 16) {
        uint32_t *x = c->out;
        memcpy(x, c->st, sizeof c->st);
        for (int i = 0; i < 10; i++) {
            S_QR(0, 4, 8, 12);
            S_QR(1, 5, 9, 13);
            S_QR(2, 6, 10, 14);
            S_QR(3, 7, 11, 15);
            S_QR(0, 5, 10, 15);
            S_QR(1, 6, 11, 12);
            S_QR(2, 7, 8, 13);
            S_QR(3, 4, 9, 14);
        }
        for (int i = 0; i < 16; i++)
            x[i] += c->st[i];
        for (int i = 12; i < 16 && ++c->st[i] == 0; i++)
            ;
        c->idx = 0;
    }
    return c->out[c->idx++];
}

/* wasm_field1.js fromRng: four u64 (high word first) as little-endian limbs,
 * masked to 254 bits, redrawn while >= p; the result is read as Montgomery
 * form, which is what our limbs hold */
static void s_fp_from_rng(qr_fp_t *r, s_chacha_t *c)
{
    static const uint64_t p[4] = QR_FP_MOD;
    for (;;) {
        uint64_t v[4];
        for (int i = 0; i < 4; i++) {
            uint64_t hi = s_chacha_u32(c);
            v[i] = hi << 32 | s_chacha_u32(c);
        }
        v[3] &= (1ull << 62) - 1;
        int i = 3;
        while (i > 0 && v[i] == p[i])
            i--;
        if (v[i] < p[i]) {
            memcpy(r->l, v, sizeof v);
            return;
        }
    }
}

/* wasmcurves f1m isNegative: canonical value > (p - 1) / 2 */
static bool s_fp_negative(const qr_fp_t *a)
{
    static const uint64_t p[4] = QR_FP_MOD;
    uint64_t v[4], h[4];
    qr_fp_to_canonical(v, a);
    for (int i = 0; i < 4; i++)
        h[i] = p[i] >> 1 | (i < 3 ? p[i + 1] << 63 : 0);
    for (int i = 3; i >= 0; i--)
        if (v[i] != h[i])
            return v[i] > h[i];
    return false;
}

/* keypair.js hashToG2: ChaCha seeded with the hash's first 8 big-endian
 * words, then wasm_curve.js fromRng: x from the stream, a sign bit, until
 * x^3 + b' is a square; y the root with that sign (f2m isNegative: of c1,
 * or of c0 when c1 = 0); times the cofactor 2p - r */
static void s_hash_to_g2(qr_g2_affine_t *r, const uint8_t hash[64])
{
    static const qr_fp2_t b = QR_FP2_BTWIST;
    static const uint64_t cofactor[4] = {0x345f2299c0f9fa8dull, 0x06ceecda572a2489ull,
                                         0xb85045b68181585eull, 0x30644e72e131a029ull};
    uint32_t seed[8];
    for (int i = 0; i < 8; i++)
        seed[i] = (uint32_t)hash[4 * i] << 24 | (uint32_t)hash[4 * i + 1] << 16 |
                  (uint32_t)hash[4 * i + 2] << 8 | hash[4 * i + 3];
    s_chacha_t c;
    s_chacha_init(&c, seed);
    qr_g2_affine_t p;
    bool greatest;
    for (;;) {
        qr_fp2_t t;
        s_fp_from_rng(&p.x.c0, &c);
        s_fp_from_rng(&p.x.c1, &c);
        greatest = s_chacha_u32(&c) & 1;
        qr_fp2_sqr(&t, &p.x);
        qr_fp2_mul(&t, &t, &p.x);
        qr_fp2_add(&t, &t, &b);
        if (qr_fp2_sqrt(&p.y, &t))
            break;
    }
    bool neg = qr_fp_is_zero(&p.y.c1) ? s_fp_negative(&p.y.c0) : s_fp_negative(&p.y.c1);
    if (greatest != neg)
        qr_fp2_neg(&p.y, &p.y);
    qr_g2_t j;
    qr_g2_from_affine(&j, &p);
    qr_g2_mul(&j, &j, cofactor);
    qr_g2_to_affine(r, &j);
}

/* ---- the file ---- */

typedef struct {
    FILE *f;
    long size_at; /* where the open section's size goes */
    int err;
} s_out_t;

static void s_put(s_out_t *o, const void *p, size_t n)
{
    if (!o->err && fwrite(p, 1, n, o->f) != n)
        o->err = errno ? errno : EIO;
}

static void s_u32(s_out_t *o, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    s_put(o, b, 4);
}

static void s_u64(s_out_t *o, uint64_t v)
{
    s_u32(o, (uint32_t)v);
    s_u32(o, (uint32_t)(v >> 32));
}

static void s_section_start(s_out_t *o, uint32_t type)
{
    s_u32(o, type);
    o->size_at = ftell(o->f);
    s_u64(o, 0);
}

static void s_section_end(s_out_t *o)
{
    long end = ftell(o->f);
    if (o->err || end < 0 || fseek(o->f, o->size_at, SEEK_SET) != 0) {
        o->err = o->err ? o->err : EIO;
        return;
    }
    s_u64(o, (uint64_t)(end - o->size_at - 8));
    if (fseek(o->f, end, SEEK_SET) != 0)
        o->err = EIO;
}

static void s_put_g1(s_out_t *o, const qr_g1_affine_t *p, size_t n)
{
    uint8_t b[64];
    for (size_t i = 0; i < n; i++) {
        qr_g1_to_zkey(b, &p[i]);
        s_put(o, b, sizeof b);
    }
}

static void s_put_g2(s_out_t *o, const qr_g2_affine_t *p, size_t n)
{
    uint8_t b[128];
    for (size_t i = 0; i < n; i++) {
        qr_g2_to_zkey(b, &p[i]);
        s_put(o, b, sizeof b);
    }
}

/* The G1 and G2 points of the file, in section order */
typedef struct {
    qr_g1_affine_t *tau1, *alpha1, *beta1;       /* sections 2, 4, 5 */
    qr_g2_affine_t *tau2;                        /* 3 */
    qr_g2_affine_t beta2;                        /* 6 */
    qr_g1_affine_t *lag1, *lag_alpha, *lag_beta; /* 12, 14, 15 */
    qr_g2_affine_t *lag2;                        /* 13 */
} s_points_t;

/* p in .zkey bytes at q; returns the end */
static uint8_t *s_g1_at(uint8_t *q, const qr_g1_affine_t *p)
{
    qr_g1_to_zkey(q, p);
    return q + 64;
}

static uint8_t *s_g2_at(uint8_t *q, const qr_g2_affine_t *p)
{
    qr_g2_to_zkey(q, p);
    return q + 128;
}

/* snarkjs's first challenge hash (calculateFirstChallengeHash): the hash
 * of the blank accumulator of powersoftau new, after the hash of nothing */
static void s_first_challenge(uint8_t out[64], unsigned power)
{
    crypto_generichash_state h;
    uint8_t empty[64];
    s_hash_init(&h);
    crypto_generichash_final(&h, empty, sizeof empty);
    s_hash_init(&h);
    crypto_generichash_update(&h, empty, sizeof empty);
    qr_g1_affine_t g1;
    qr_g2_affine_t g2;
    qr_g1_generator(&g1);
    qr_g2_generator(&g2);
    size_t n = (size_t)1 << power;
    for (size_t i = 0; i < 2 * n - 1; i++)
        s_hash_g1(&h, &g1);
    for (size_t i = 0; i < n; i++)
        s_hash_g2(&h, &g2);
    for (size_t i = 0; i < 2 * n; i++)
        s_hash_g1(&h, &g1);
    s_hash_g2(&h, &g2);
    crypto_generichash_final(&h, out, 64);
}

/* One contribution, as powersoftau contribute would have made it with our
 * secrets from the blank accumulator, in writeContribution's layout:
 * the new tau G1, tau G2, alpha G1, beta G1, beta G2; the public key (per
 * secret x in tau, alpha, beta: g1_s = k G1, g1_sx = x k G1, and
 * g2_spx = x g2_sp, g2_sp = hashToG2(blake2b(personalisation byte 0/1/2,
 * first challenge, g1_s, g1_sx)), which verify checks by pairings); the
 * 216-byte partial hash of the response (misc.js fromPartialHash: @noble's
 * blake2b state, 128 bytes of buffer then v0l, v0h, ... v7h, length, pos as
 * u32 -- here the fresh state, so the response hash is the hash of the
 * public key alone); the next challenge, blake2b(response hash, every point
 * of sections 2-5, beta G2), which verify recomputes; type 0; and a name. */
static int s_contribution(uint8_t **out, size_t *len, const s_secrets_t *sec, unsigned power,
                          const s_points_t *pt)
{
    size_t n = (size_t)1 << power;
    const qr_fr_t *x[3] = {&sec->tau, &sec->alpha, &sec->beta};
    qr_g1_affine_t g1, s[3], sx[3];
    qr_g2_affine_t g2, spx[3];
    qr_g1_generator(&g1);
    qr_g2_generator(&g2);
    uint8_t challenge[64];
    s_first_challenge(challenge, power);
    for (int i = 0; i < 3; i++) {
        qr_g1_t j;
        qr_fr_t xk;
        qr_g1_from_affine(&j, &g1);
        qr_g1_mul_fr(&j, &j, &sec->k[i]);
        qr_g1_to_affine(&s[i], &j);
        qr_fr_mul(&xk, &sec->k[i], x[i]);
        qr_g1_from_affine(&j, &g1);
        qr_g1_mul_fr(&j, &j, &xk);
        qr_g1_to_affine(&sx[i], &j);

        crypto_generichash_state h;
        uint8_t pers = (uint8_t)i, hash[64];
        s_hash_init(&h);
        crypto_generichash_update(&h, &pers, 1);
        crypto_generichash_update(&h, challenge, sizeof challenge);
        s_hash_g1(&h, &s[i]);
        s_hash_g1(&h, &sx[i]);
        crypto_generichash_final(&h, hash, sizeof hash);
        qr_g2_affine_t sp;
        s_hash_to_g2(&sp, hash);
        qr_g2_t j2;
        qr_g2_from_affine(&j2, &sp);
        qr_g2_mul_fr(&j2, &j2, x[i]);
        qr_g2_to_affine(&spx[i], &j2);
    }

    /* the response hash, then the next challenge */
    crypto_generichash_state h;
    uint8_t response[64], next[64];
    s_hash_init(&h);
    for (int i = 0; i < 3; i++) {
        s_hash_g1(&h, &s[i]);
        s_hash_g1(&h, &sx[i]);
    }
    for (int i = 0; i < 3; i++)
        s_hash_g2(&h, &spx[i]);
    crypto_generichash_final(&h, response, sizeof response);
    s_hash_init(&h);
    crypto_generichash_update(&h, response, sizeof response);
    for (size_t i = 0; i < 2 * n - 1; i++)
        s_hash_g1(&h, &pt->tau1[i]);
    for (size_t i = 0; i < n; i++)
        s_hash_g2(&h, &pt->tau2[i]);
    for (size_t i = 0; i < n; i++)
        s_hash_g1(&h, &pt->alpha1[i]);
    for (size_t i = 0; i < n; i++)
        s_hash_g1(&h, &pt->beta1[i]);
    s_hash_g2(&h, &pt->beta2);
    crypto_generichash_final(&h, next, sizeof next);

    static const char name[] = "quarry-test-known-secrets-INSECURE";
    size_t cap = 64 * 4 + 128 * 2 + 64 * 6 + 128 * 3 + 216 + 64 + 4 + 4 + 2 + sizeof name;
    uint8_t *b = malloc(cap), *q = b;
    if (!b)
        return -1;
    q = s_g1_at(q, &pt->tau1[1]);
    q = s_g2_at(q, &pt->tau2[1]);
    q = s_g1_at(q, &pt->alpha1[0]);
    q = s_g1_at(q, &pt->beta1[0]);
    q = s_g2_at(q, &pt->beta2);
    for (int i = 0; i < 3; i++) {
        q = s_g1_at(q, &s[i]);
        q = s_g1_at(q, &sx[i]);
    }
    for (int i = 0; i < 3; i++)
        q = s_g2_at(q, &spx[i]);
    /* the fresh blake2b-512 state: empty buffer, h = IV with h0 ^= 0x01010040 */
    static const uint64_t iv[8] = {
        0x6a09e667f3bcc908ull, 0xbb67ae8584caa73bull, 0x3c6ef372fe94f82bull, 0xa54ff53a5f1d36f1ull,
        0x510e527fade682d1ull, 0x9b05688c2b3e6c1full, 0x1f83d9abfb41bd6bull, 0x5be0cd19137e2179ull};
    memset(q, 0, 216);
    for (int i = 0; i < 8; i++) {
        uint64_t v = iv[i] ^ (i == 0 ? 0x01010040ull : 0);
        for (int k = 0; k < 8; k++)
            q[128 + 8 * i + k] = (uint8_t)(v >> (8 * k)); /* lo word then hi word, LE */
    }
    q += 216;
    memcpy(q, next, 64);
    q += 64;
    memset(q, 0, 4); /* type 0: a contribution, not a beacon */
    q += 4;
    uint32_t plen = 2 + (uint32_t)(sizeof name - 1);
    for (int k = 0; k < 4; k++)
        *q++ = (uint8_t)(plen >> (8 * k));
    *q++ = 1; /* parameter 1: the name */
    *q++ = (uint8_t)(sizeof name - 1);
    memcpy(q, name, sizeof name - 1);
    q += sizeof name - 1;
    *out = b;
    *len = (size_t)(q - b);
    return 0;
}

/* Section 12's (and 13-15's) scalars: for p = 0 .. top, the 2^p values
 * L_i(tau) of the domain of size 2^p; the layer 2^(power + 1) as prepare
 * phase2 computes it (see the top of the file).  out holds 2^(top+1) - 1. */
static int s_lagrange_layers(qr_fr_t *out, unsigned top, unsigned power, const qr_fr_t *tau)
{
    qr_fr_t one;
    qr_fr_one(&one);
    for (unsigned p = 0; p <= top; p++) {
        size_t m = (size_t)1 << p;
        qr_fr_t *l = out + (m - 1), w;
        qr_fr_root_of_unity(&w, p);
        if (qr_g16_toy_lagrange(l, m, m, tau, &one, &w) != 0)
            return -1;
        if (p == power + 1) {
            /* minus tau^(m-1) w^i / m */
            qr_fr_t c, mi, x = one;
            uint64_t e[4] = {m - 1, 0, 0, 0};
            qr_fr_pow(&c, tau, e);
            qr_fr_from_u64(&mi, m);
            qr_fr_inv(&mi, &mi);
            qr_fr_mul(&c, &c, &mi);
            for (size_t i = 0; i < m; i++) {
                qr_fr_t t;
                qr_fr_mul(&t, &c, &x);
                qr_fr_sub(&l[i], &l[i], &t);
                qr_fr_mul(&x, &x, &w);
            }
        }
    }
    return 0;
}

static int s_usage(void)
{
    fprintf(stderr,
            "usage: zk_make_ptau [--phase1] POWER OUT.ptau   (POWER 1..%d)\n"
            "       zk_make_ptau --version\n"
            "Writes a snarkjs .ptau from KNOWN secrets: tests only, never production.\n",
            QR_PTAU_MAX_POWER);
    return 2;
}

int main(int argc, char **argv)
{
    int a = 1;
    bool phase1 = false;
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("%d\n", QR_PTAU_TOOL_VERSION);
        return 0;
    }
    if (a < argc && strcmp(argv[a], "--phase1") == 0) {
        phase1 = true;
        a++;
    }
    if (argc - a != 2)
        return s_usage();
    char *end;
    long pw = strtol(argv[a], &end, 10);
    if (*end || pw < 1 || pw > QR_PTAU_MAX_POWER)
        return s_usage();
    const char *path = argv[a + 1];
    if (sodium_init() < 0) {
        fprintf(stderr, "zk_make_ptau: libsodium failed to initialise\n");
        return 1;
    }
    unsigned power = (unsigned)pw;
    size_t n = (size_t)1 << power;

    s_secrets_t sec;
    s_secrets(&sec);

    /* every G1 scalar, in file order: sections 2, 4, 5, 12, 14, 15; G2: 3, 13 */
    size_t n12 = 4 * n - 1, n13 = 2 * n - 1; /* layers 0..power+1, 0..power */
    size_t n1 = (2 * n - 1) + n + n + n12 + 2 * n13, n2 = n + n13;
    qr_fr_t *k1 = malloc(n1 * sizeof *k1), *k2 = malloc(n2 * sizeof *k2);
    qr_g1_affine_t *p1 = malloc(n1 * sizeof *p1);
    qr_g2_affine_t *p2 = malloc(n2 * sizeof *p2);
    uint8_t *contrib = NULL;
    size_t contrib_len = 0;
    char tmp[4096];
    FILE *f = NULL;
    int rc = 1;
    if (!k1 || !k2 || !p1 || !p2) {
        fprintf(stderr, "zk_make_ptau: out of memory\n");
        goto done;
    }
    qr_fr_t *tau_pow = k1, *alpha_pow = k1 + 2 * n - 1, *beta_pow = alpha_pow + n;
    qr_fr_t *lag = beta_pow + n, *lag_alpha = lag + n12, *lag_beta = lag_alpha + n13;
    qr_fr_one(&tau_pow[0]);
    for (size_t i = 1; i < 2 * n - 1; i++)
        qr_fr_mul(&tau_pow[i], &tau_pow[i - 1], &sec.tau);
    for (size_t i = 0; i < n; i++) {
        qr_fr_mul(&alpha_pow[i], &tau_pow[i], &sec.alpha);
        qr_fr_mul(&beta_pow[i], &tau_pow[i], &sec.beta);
        k2[i] = tau_pow[i];
    }
    if (s_lagrange_layers(lag, power + 1, power, &sec.tau) != 0) {
        fprintf(stderr, "zk_make_ptau: tau on a domain, or out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < n13; i++) {
        qr_fr_mul(&lag_alpha[i], &lag[i], &sec.alpha);
        qr_fr_mul(&lag_beta[i], &lag[i], &sec.beta);
        k2[n + i] = lag[i];
    }
    qr_g1_affine_t g1;
    qr_g2_affine_t g2;
    qr_g1_generator(&g1);
    qr_g2_generator(&g2);
    if (qr_g1_mul_fixed_batch(p1, &g1, k1, n1, 0) != 0 ||
        qr_g2_mul_fixed_batch(p2, &g2, k2, n2, 0) != 0) {
        fprintf(stderr, "zk_make_ptau: out of memory\n");
        goto done;
    }
    s_points_t pt;
    pt.tau1 = p1;
    pt.alpha1 = p1 + 2 * n - 1;
    pt.beta1 = pt.alpha1 + n;
    pt.lag1 = pt.beta1 + n;
    pt.lag_alpha = pt.lag1 + n12;
    pt.lag_beta = pt.lag_alpha + n13;
    pt.tau2 = p2;
    pt.lag2 = p2 + n;
    {
        qr_g2_t j;
        qr_g2_from_affine(&j, &g2);
        qr_g2_mul_fr(&j, &j, &sec.beta);
        qr_g2_to_affine(&pt.beta2, &j);
    }
    if (s_contribution(&contrib, &contrib_len, &sec, power, &pt) != 0) {
        fprintf(stderr, "zk_make_ptau: out of memory\n");
        goto done;
    }

    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "zk_make_ptau: %s: %s\n", tmp, strerror(errno));
        goto done;
    }
    s_out_t o = {f, 0, 0};
    s_put(&o, "ptau", 4);
    s_u32(&o, 1);
    s_u32(&o, phase1 ? 7 : 11);
    s_section_start(&o, 1);
    s_u32(&o, 32);
    {
        static const uint64_t q[4] = QR_FP_MOD;
        uint8_t b[32];
        for (int i = 0; i < 32; i++)
            b[i] = (uint8_t)(q[i / 8] >> (8 * (i % 8)));
        s_put(&o, b, sizeof b);
    }
    s_u32(&o, power);
    s_u32(&o, power); /* ceremonyPower */
    s_section_end(&o);
    s_section_start(&o, 2);
    s_put_g1(&o, pt.tau1, 2 * n - 1);
    s_section_end(&o);
    s_section_start(&o, 3);
    s_put_g2(&o, pt.tau2, n);
    s_section_end(&o);
    s_section_start(&o, 4);
    s_put_g1(&o, pt.alpha1, n);
    s_section_end(&o);
    s_section_start(&o, 5);
    s_put_g1(&o, pt.beta1, n);
    s_section_end(&o);
    s_section_start(&o, 6);
    s_put_g2(&o, &pt.beta2, 1);
    s_section_end(&o);
    s_section_start(&o, 7);
    s_u32(&o, 1);
    s_put(&o, contrib, contrib_len);
    s_section_end(&o);
    if (!phase1) {
        s_section_start(&o, 12);
        s_put_g1(&o, pt.lag1, n12);
        s_section_end(&o);
        s_section_start(&o, 13);
        s_put_g2(&o, pt.lag2, n13);
        s_section_end(&o);
        s_section_start(&o, 14);
        s_put_g1(&o, pt.lag_alpha, n13);
        s_section_end(&o);
        s_section_start(&o, 15);
        s_put_g1(&o, pt.lag_beta, n13);
        s_section_end(&o);
    }
    int cerr = fclose(f);
    f = NULL;
    if (o.err || cerr != 0) {
        fprintf(stderr, "zk_make_ptau: writing %s: %s\n", tmp, strerror(o.err ? o.err : errno));
        remove(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "zk_make_ptau: rename to %s: %s\n", path, strerror(errno));
        remove(tmp);
        goto done;
    }
    rc = 0;
done:
    if (f) {
        fclose(f);
        remove(tmp);
    }
    free(contrib);
    free(k1);
    free(k2);
    free(p1);
    free(p2);
    return rc;
}
