/* EIP-1559 transactions and secp256k1 keys; see tx.h. */
#include "tx.h"
#include "keccak.h"
#include "rlp.h"

#include <errno.h>
#include <fcntl.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define QR_TX_TYPE_1559 0x02

struct qr_ethkey {
    secp256k1_context *ctx; /* own context: randomised, used by one thread */
    uint8_t secret[32];
    uint8_t address[QR_ADDR_LEN];
};

static void s_pubkey_address(const secp256k1_context *ctx, const secp256k1_pubkey *pk,
                             uint8_t out[QR_ADDR_LEN])
{
    uint8_t ser[65];
    size_t n = sizeof ser;
    secp256k1_ec_pubkey_serialize(ctx, ser, &n, pk, SECP256K1_EC_UNCOMPRESSED);
    uint8_t h[32];
    qr_keccak256(ser + 1, 64, h); /* skip the 0x04 prefix */
    memcpy(out, h + 12, QR_ADDR_LEN);
}

qr_ethkey_t *qr_ethkey_new(const uint8_t secret[32], char *err, size_t errlen)
{
    qr_ethkey_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    if (!self->ctx) {
        snprintf(err, errlen, "cannot create a secp256k1 context");
        free(self);
        return NULL;
    }
    /* blinding against timing side channels while signing; it can only fail
     * on a broken context, and an unblinded one still signs correctly */
    uint8_t seed[32];
    int blinded = getrandom(seed, sizeof seed, 0) == (ssize_t)sizeof seed &&
                  secp256k1_context_randomize(self->ctx, seed);
    (void)blinded;
    qr_wipe(seed, sizeof seed);
    secp256k1_pubkey pk;
    if (!secp256k1_ec_seckey_verify(self->ctx, secret) ||
        !secp256k1_ec_pubkey_create(self->ctx, &pk, secret)) {
        snprintf(err, errlen, "not a valid secp256k1 secret key (zero or above the curve order)");
        secp256k1_context_destroy(self->ctx);
        free(self);
        return NULL;
    }
    memcpy(self->secret, secret, 32);
    s_pubkey_address(self->ctx, &pk, self->address);
    return self;
}

qr_ethkey_t *qr_ethkey_load(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "key file %s is not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "key file %s is readable by others (chmod 600 it)", path);
        close(fd);
        return NULL;
    }
    char text[160];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
        return NULL;
    }
    text[n] = '\0';
    /* trim whitespace either side; the digits themselves never reach err */
    char *s = text;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t len = strlen(s);
    while (len &&
           (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' || s[len - 1] == '\r'))
        s[--len] = '\0';
    uint8_t secret[32];
    qr_ethkey_t *self = NULL;
    if (qr_hex_decode_exact(s, secret, sizeof secret) < 0)
        snprintf(err, errlen, "key file %s does not hold 64 hex digits", path);
    else
        self = qr_ethkey_new(secret, err, errlen); /* NULL: err says why */
    qr_wipe(secret, sizeof secret);
    qr_wipe(text, sizeof text);
    return self;
}

void qr_ethkey_destroy(qr_ethkey_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_ethkey_t *self = *self_p;
    qr_wipe(self->secret, sizeof self->secret);
    secp256k1_context_destroy(self->ctx);
    free(self);
    *self_p = NULL;
}

const uint8_t *qr_ethkey_address(const qr_ethkey_t *self)
{
    return self->address;
}

int qr_ethkey_sign(const qr_ethkey_t *self, const uint8_t digest[32], uint8_t r[32], uint8_t s[32],
                   int *y_parity)
{
    secp256k1_ecdsa_recoverable_signature sig;
    if (!secp256k1_ecdsa_sign_recoverable(self->ctx, &sig, digest, self->secret, NULL, NULL))
        return -1;
    uint8_t rs[64];
    int recid;
    secp256k1_ecdsa_recoverable_signature_serialize_compact(self->ctx, rs, &recid, &sig);
    memcpy(r, rs, 32);
    memcpy(s, rs + 32, 32);
    *y_parity = recid;
    return 0;
}

/* The nine unsigned fields, as list items (the caller opens the list). */
static void s_fields(qr_rlp_t *r, const qr_tx_t *tx)
{
    qr_rlp_uint(r, tx->chain_id);
    qr_rlp_uint(r, tx->nonce);
    qr_rlp_u256(r, &tx->max_priority_fee);
    qr_rlp_u256(r, &tx->max_fee);
    qr_rlp_uint(r, tx->gas);
    qr_rlp_bytes(r, tx->to, tx->has_to ? QR_ADDR_LEN : 0);
    qr_rlp_u256(r, &tx->value);
    qr_rlp_bytes(r, tx->data, tx->data_len);
    qr_rlp_list_begin(r); /* access list: always empty */
    qr_rlp_list_end(r);
}

/* r and s are integers in RLP, so their leading zeros go. */
static void s_rlp_word(qr_rlp_t *r, const uint8_t w[32])
{
    qr_u256_t v;
    memcpy(v.b, w, 32);
    qr_rlp_u256(r, &v);
}

int qr_tx_signing_hash(const qr_tx_t *tx, uint8_t hash[32])
{
    qr_rlp_t r = {0};
    uint8_t type = QR_TX_TYPE_1559;
    qr_rlp_raw(&r, &type, 1);
    qr_rlp_list_begin(&r);
    s_fields(&r, tx);
    qr_rlp_list_end(&r);
    if (qr_rlp_finish(&r) < 0) {
        qr_rlp_free(&r);
        return -1;
    }
    qr_keccak256(r.p, r.len, hash);
    qr_rlp_free(&r);
    return 0;
}

int qr_tx_sign(const qr_tx_t *tx, const qr_ethkey_t *key, qr_signed_tx_t *out, char *err,
               size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (tx->data_len && !tx->data) {
        snprintf(err, errlen, "tx: data_len without data");
        return -1;
    }
    uint8_t digest[32];
    if (qr_tx_signing_hash(tx, digest) < 0) {
        snprintf(err, errlen, "tx: out of memory");
        return -1;
    }
    if (qr_ethkey_sign(key, digest, out->r, out->s, &out->y_parity) < 0) {
        snprintf(err, errlen, "tx: signing failed");
        return -1;
    }
    qr_rlp_t r = {0};
    uint8_t type = QR_TX_TYPE_1559;
    qr_rlp_raw(&r, &type, 1);
    qr_rlp_list_begin(&r);
    s_fields(&r, tx);
    qr_rlp_uint(&r, (uint64_t)out->y_parity);
    s_rlp_word(&r, out->r);
    s_rlp_word(&r, out->s);
    qr_rlp_list_end(&r);
    if (qr_rlp_finish(&r) < 0) {
        qr_rlp_free(&r);
        snprintf(err, errlen, "tx: out of memory");
        return -1;
    }
    out->raw = r.p; /* the buffer changes hands; r is not freed */
    out->raw_len = r.len;
    qr_keccak256(out->raw, out->raw_len, out->hash);
    return 0;
}

void qr_signed_tx_free(qr_signed_tx_t *out)
{
    free(out->raw);
    memset(out, 0, sizeof *out);
}

static int s_word(const qr_rlp_item_t *it, uint8_t w[32], char *err, size_t errlen)
{
    qr_u256_t v;
    if (qr_rlp_item_u256(it, &v, err, errlen) < 0)
        return -1;
    memcpy(w, v.b, 32);
    return 0;
}

int qr_tx_decode(const uint8_t *raw, size_t len, qr_tx_t *tx, uint8_t sender[QR_ADDR_LEN],
                 char *err, size_t errlen)
{
    memset(tx, 0, sizeof *tx);
    if (len < 1 || raw[0] != QR_TX_TYPE_1559) {
        snprintf(err, errlen, "tx: not an EIP-1559 (type 2) transaction");
        return -1;
    }
    qr_rlp_item_t list, f[12];
    qr_rlp_iter_t it;
    if (qr_rlp_decode_all(raw + 1, len - 1, &list, err, errlen) < 0 ||
        qr_rlp_iter_init(&it, &list, err, errlen) < 0)
        return -1;
    int n = 0, rc;
    while ((rc = qr_rlp_iter_next(&it, &f[n < 12 ? n : 11], err, errlen)) == 1)
        n++;
    if (rc < 0)
        return -1;
    if (n != 12) {
        snprintf(err, errlen, "tx: %d fields, a signed type-2 transaction has 12", n);
        return -1;
    }
    uint64_t y;
    uint8_t r[32], s[32];
    if (qr_rlp_item_u64(&f[0], &tx->chain_id, err, errlen) < 0 ||
        qr_rlp_item_u64(&f[1], &tx->nonce, err, errlen) < 0 ||
        qr_rlp_item_u256(&f[2], &tx->max_priority_fee, err, errlen) < 0 ||
        qr_rlp_item_u256(&f[3], &tx->max_fee, err, errlen) < 0 ||
        qr_rlp_item_u64(&f[4], &tx->gas, err, errlen) < 0 ||
        qr_rlp_item_u256(&f[6], &tx->value, err, errlen) < 0 ||
        qr_rlp_item_u64(&f[9], &y, err, errlen) < 0 || s_word(&f[10], r, err, errlen) < 0 ||
        s_word(&f[11], s, err, errlen) < 0)
        return -1;
    if (f[5].is_list || (f[5].len != 0 && f[5].len != QR_ADDR_LEN)) {
        snprintf(err, errlen, "tx: 'to' is neither empty nor a 20-byte address");
        return -1;
    }
    tx->has_to = f[5].len == QR_ADDR_LEN;
    if (tx->has_to)
        memcpy(tx->to, f[5].p, QR_ADDR_LEN);
    if (f[7].is_list) {
        snprintf(err, errlen, "tx: data is a list");
        return -1;
    }
    tx->data = f[7].len ? f[7].p : NULL;
    tx->data_len = f[7].len;
    if (!f[8].is_list || f[8].len) {
        snprintf(err, errlen, "tx: access lists are not supported");
        return -1;
    }
    if (y > 1) {
        snprintf(err, errlen, "tx: y_parity %llu is not 0 or 1", (unsigned long long)y);
        return -1;
    }
    uint8_t digest[32], rs[64];
    if (qr_tx_signing_hash(tx, digest) < 0) {
        snprintf(err, errlen, "tx: out of memory");
        return -1;
    }
    memcpy(rs, r, 32);
    memcpy(rs + 32, s, 32);
    /* verification needs no secret, so the library's static context does */
    const secp256k1_context *ctx = secp256k1_context_static;
    secp256k1_ecdsa_recoverable_signature sig;
    secp256k1_pubkey pk;
    if (!secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, &sig, rs, (int)y) ||
        !secp256k1_ecdsa_recover(ctx, &pk, &sig, digest)) {
        snprintf(err, errlen, "tx: signature does not recover a public key");
        return -1;
    }
    /* nodes reject high-s signatures (EIP-2); so do we */
    secp256k1_ecdsa_signature plain;
    secp256k1_ecdsa_recoverable_signature_convert(ctx, &plain, &sig);
    if (secp256k1_ecdsa_signature_normalize(ctx, NULL, &plain)) {
        snprintf(err, errlen, "tx: high-s signature");
        return -1;
    }
    s_pubkey_address(ctx, &pk, sender);
    return 0;
}

void qr_contract_address(const uint8_t sender[QR_ADDR_LEN], uint64_t nonce,
                         uint8_t out[QR_ADDR_LEN])
{
    /* at most 1 + 21 + 9 bytes: built on the stack, no allocation to fail */
    uint8_t buf[40];
    size_t n = 0;
    uint8_t nb[8];
    size_t nlen = 0;
    for (uint64_t v = nonce; v; v >>= 8)
        nb[nlen++] = (uint8_t)v;
    size_t nonce_enc = (nlen == 1 && nb[0] < 0x80) ? 1 : 1 + nlen;
    buf[n++] = (uint8_t)(0xc0 + 21 + nonce_enc);
    buf[n++] = 0x80 + QR_ADDR_LEN;
    memcpy(buf + n, sender, QR_ADDR_LEN);
    n += QR_ADDR_LEN;
    if (nlen == 1 && nb[0] < 0x80) {
        buf[n++] = nb[0];
    } else {
        buf[n++] = (uint8_t)(0x80 + nlen);
        for (size_t i = 0; i < nlen; i++)
            buf[n++] = nb[nlen - 1 - i];
    }
    uint8_t h[32];
    qr_keccak256(buf, n, h);
    memcpy(out, h + 12, QR_ADDR_LEN);
}
