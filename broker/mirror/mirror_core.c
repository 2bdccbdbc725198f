/* quarry-mirror's pure pieces; see mirror_core.h. */
#include "mirror_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"

int qr_mirror_amount(uint64_t price, uint64_t fee, uint64_t wei_per_unit, qr_u256_t *out)
{
    if (fee > price)
        return -1;
    /* (price - fee) < 2^64 and wei_per_unit < 2^64: the product fits 128
     * bits, so two 32-bit multiplier steps on the u256 cannot overflow */
    qr_u256_t net = qr_u256_from_u64(price - fee), t;
    uint32_t hi = (uint32_t)(wei_per_unit >> 32), lo = (uint32_t)wei_per_unit;
    qr_u256_t a, b;
    qr_u256_mul_small(&net, hi, &t);
    /* t * 2^32: shift left by four bytes */
    memset(&a, 0, sizeof a);
    memcpy(a.b, t.b + 4, 28);
    qr_u256_mul_small(&net, lo, &b);
    return qr_u256_add(&a, &b, out) < 0 ? -1 : 0;
}

int qr_u256_from_dec(const char *s, qr_u256_t *out)
{
    if (!s || !*s || strlen(s) > 78)
        return -1;
    qr_u256_t v;
    memset(&v, 0, sizeof v);
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        qr_u256_t d = qr_u256_from_u64((uint64_t)(*s - '0'));
        if (qr_u256_mul_small(&v, 10, &v) < 0 || qr_u256_add(&v, &d, &v) < 0)
            return -1;
    }
    *out = v;
    return 0;
}

/* v / d for a small divisor, rounding up. */
static void s_div_ceil(const qr_u256_t *v, uint32_t d, qr_u256_t *out)
{
    uint64_t rem = 0;
    for (int i = 0; i < 32; i++) {
        uint64_t cur = rem << 8 | v->b[i];
        out->b[i] = (uint8_t)(cur / d);
        rem = cur % d;
    }
    if (rem) {
        qr_u256_t one = qr_u256_from_u64(1);
        qr_u256_add(out, &one, out);
    }
}

void qr_mirror_bump(const qr_u256_t *old, unsigned pct, const qr_u256_t *suggested,
                    const qr_u256_t *cap, qr_u256_t *out)
{
    qr_u256_t raised, inc;
    /* old * pct / 100, rounded up, at least 1 */
    if (qr_u256_mul_small(old, pct, &inc) < 0)
        memset(inc.b, 0xff, 32);
    s_div_ceil(&inc, 100, &inc);
    if (qr_u256_is_zero(&inc))
        inc = qr_u256_from_u64(1);
    if (qr_u256_add(old, &inc, &raised) < 0)
        memset(raised.b, 0xff, 32);
    if (suggested && qr_u256_cmp(suggested, &raised) > 0)
        raised = *suggested;
    if (cap && !qr_u256_is_zero(cap) && qr_u256_cmp(&raised, cap) > 0)
        raised = *cap;
    *out = raised;
}

int64_t qr_mirror_backoff(int64_t cur, int64_t min, int64_t max)
{
    int64_t next = cur <= 0 ? min : cur > max / 2 ? max : cur * 2;
    if (next < min)
        next = min;
    return next > max ? max : next;
}

bool qr_mirror_due(size_t n, size_t size, int64_t oldest_age_ms, int64_t max_age_ms)
{
    return n > 0 && (n >= size || oldest_age_ms >= max_age_ms);
}

static void s_leaf(const qr_mirror_rec_t *r, uint8_t out[32])
{
    qr_settlement_t s;
    s.job_id = r->job_id;
    memcpy(s.client, r->client, QR_ADDR_LEN);
    memcpy(s.operator_, r->operator_, QR_ADDR_LEN);
    s.amount = r->amount;
    qr_settlement_leaf(&s, out);
}

qr_merkle_t *qr_mirror_tree(const qr_mirror_rec_t *recs, size_t n)
{
    if (n == 0)
        return NULL;
    uint8_t(*leaves)[32] = malloc(n * sizeof *leaves);
    if (!leaves)
        return NULL;
    for (size_t i = 0; i < n; i++)
        s_leaf(&recs[i], leaves[i]);
    qr_merkle_t *t = qr_merkle_new((const uint8_t(*)[32])leaves, n);
    free(leaves);
    return t;
}

static int s_finish(qr_abi_enc_t *e, uint8_t **out, size_t *len)
{
    int rc = qr_abi_enc_finish(e, out, len);
    qr_abi_enc_free(e);
    return rc;
}

int qr_mirror_post_calldata(uint64_t batch_id, const uint8_t root[32], uint32_t count,
                            uint8_t **out, size_t *len)
{
    qr_abi_enc_t e;
    qr_abi_enc_init(&e, "postBatch(uint64,bytes32,uint32)");
    qr_abi_put_uint(&e, batch_id);
    qr_abi_put_bytes32(&e, root);
    qr_abi_put_uint(&e, count);
    return s_finish(&e, out, len);
}

int qr_mirror_verify_calldata(uint64_t batch_id, const qr_mirror_rec_t *rec,
                              const uint8_t (*proof)[32], size_t nproof, uint8_t **out,
                              size_t *len)
{
    qr_abi_enc_t e;
    qr_abi_enc_init(&e, "verifySettlement(uint64,uint64,address,address,uint256,bytes32[])");
    qr_abi_put_uint(&e, batch_id);
    qr_abi_put_uint(&e, rec->job_id);
    qr_abi_put_address(&e, rec->client);
    qr_abi_put_address(&e, rec->operator_);
    qr_abi_put_uint256(&e, &rec->amount);
    qr_abi_put_bytes32_array(&e, proof, nproof);
    return s_finish(&e, out, len);
}

int qr_mirror_claim_calldata(uint64_t batch_id, const qr_mirror_rec_t *rec,
                             const uint8_t (*proof)[32], size_t nproof, uint8_t **out,
                             size_t *len)
{
    qr_abi_enc_t e;
    qr_abi_enc_init(&e, "claim(uint64,uint64,address,uint256,bytes32[])");
    qr_abi_put_uint(&e, batch_id);
    qr_abi_put_uint(&e, rec->job_id);
    qr_abi_put_address(&e, rec->client);
    qr_abi_put_uint256(&e, &rec->amount);
    qr_abi_put_bytes32_array(&e, proof, nproof);
    return s_finish(&e, out, len);
}

int qr_mirror_simple_calldata(const char *signature, int has_arg, uint64_t arg, uint8_t **out,
                              size_t *len)
{
    qr_abi_enc_t e;
    qr_abi_enc_init(&e, signature);
    if (has_arg)
        qr_abi_put_uint(&e, arg);
    return s_finish(&e, out, len);
}

static json_t *s_hex(const void *p, size_t n)
{
    char buf[2 * 32 + 3];
    qr_hex_encode(p, n, buf);
    return json_string(buf);
}

static json_t *s_addr(const uint8_t a[QR_ADDR_LEN])
{
    char buf[43];
    qr_address_to_text(a, buf);
    return json_string(buf);
}

json_t *qr_mirror_proof_json(const qr_mirror_rec_t *rec, const qr_mirror_where_t *w,
                             const uint8_t (*proof)[32], size_t nproof)
{
    json_t *doc = json_object(), *arr = json_array();
    if (!doc || !arr) {
        json_decref(doc);
        json_decref(arr);
        return NULL;
    }
    char amount[80];
    qr_u256_to_dec(&rec->amount, amount, sizeof amount);
    uint8_t leaf[32];
    s_leaf(rec, leaf);
    for (size_t i = 0; i < nproof; i++)
        json_array_append_new(arr, s_hex(proof[i], 32));
    json_object_set_new(doc, "job_id", json_integer((json_int_t)rec->job_id));
    json_object_set_new(doc, "batch_id", json_integer((json_int_t)w->batch_id));
    json_object_set_new(doc, "leaf_index", json_integer(w->leaf_index));
    json_object_set_new(doc, "count", json_integer(w->count));
    json_object_set_new(doc, "state", json_string(w->state ? w->state : ""));
    json_object_set_new(doc, "client", s_addr(rec->client));
    json_object_set_new(doc, "operator", s_addr(rec->operator_));
    json_object_set_new(doc, "amount", json_string(amount));
    json_object_set_new(doc, "leaf", s_hex(leaf, 32));
    json_object_set_new(doc, "proof", arr);
    json_object_set_new(doc, "root", s_hex(w->root, 32));
    json_object_set_new(doc, "tx_hash", s_hex(w->tx_hash, 32));
    json_object_set_new(doc, "block", json_integer((json_int_t)w->block));
    json_object_set_new(doc, "gas_used", json_integer((json_int_t)w->gas_used));
    json_object_set_new(doc, "chain_id", json_integer((json_int_t)w->chain_id));
    json_object_set_new(doc, "contract", s_addr(w->contract));
    json_object_set_new(doc, "units", json_integer((json_int_t)w->units));
    json_object_set_new(doc, "price", json_integer((json_int_t)w->price));
    json_object_set_new(doc, "fee", json_integer((json_int_t)w->fee));
    json_object_set_new(doc, "client_account",
                        json_string(w->client_account ? w->client_account : ""));
    json_object_set_new(doc, "operator_account",
                        json_string(w->operator_account ? w->operator_account : ""));
    return doc;
}

static int s_bad(char *err, size_t errlen, const char *field)
{
    snprintf(err, errlen, "missing or malformed \"%s\"", field);
    return -1;
}

int qr_mirror_proof_parse(const json_t *doc, qr_mirror_rec_t *rec, uint64_t *batch_id,
                          uint8_t root[32], uint8_t (*proof)[32], size_t *nproof, char *err,
                          size_t errlen)
{
    json_t *v;
    memset(rec, 0, sizeof *rec);
    if (!json_is_object(doc))
        return s_bad(err, errlen, "(document)");
    v = json_object_get(doc, "job_id");
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return s_bad(err, errlen, "job_id");
    rec->job_id = (uint64_t)json_integer_value(v);
    v = json_object_get(doc, "batch_id");
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return s_bad(err, errlen, "batch_id");
    *batch_id = (uint64_t)json_integer_value(v);
    v = json_object_get(doc, "client");
    if (!json_is_string(v) || qr_address_from_text(json_string_value(v), rec->client) < 0)
        return s_bad(err, errlen, "client");
    v = json_object_get(doc, "operator");
    if (!json_is_string(v) || qr_address_from_text(json_string_value(v), rec->operator_) < 0)
        return s_bad(err, errlen, "operator");
    v = json_object_get(doc, "amount");
    if (!json_is_string(v) || qr_u256_from_dec(json_string_value(v), &rec->amount) < 0)
        return s_bad(err, errlen, "amount");
    v = json_object_get(doc, "root");
    if (!json_is_string(v) || qr_hex_decode_exact(json_string_value(v), root, 32) < 0)
        return s_bad(err, errlen, "root");
    v = json_object_get(doc, "proof");
    if (!json_is_array(v) || json_array_size(v) > QR_MERKLE_MAX_DEPTH)
        return s_bad(err, errlen, "proof");
    *nproof = json_array_size(v);
    for (size_t i = 0; i < *nproof; i++) {
        json_t *h = json_array_get(v, i);
        if (!json_is_string(h) || qr_hex_decode_exact(json_string_value(h), proof[i], 32) < 0)
            return s_bad(err, errlen, "proof");
    }
    return 0;
}
