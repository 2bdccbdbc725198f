/* broker/mirror/mirror_core: amounts, decimal text, fee bumps, back-off,
 * when a batch is due, the tree over records, calldata layouts and the
 * proof document's round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "mirror_core.h"

static void s_dec(const qr_u256_t *v, char *out)
{
    qr_u256_to_dec(v, out, 80);
}

static void test_amount(void **state)
{
    (void)state;
    qr_u256_t a;
    char d[80];
    assert_int_equal(qr_mirror_amount(100, 5, 1, &a), 0);
    s_dec(&a, d);
    assert_string_equal(d, "95");
    assert_int_equal(qr_mirror_amount(100, 5, 1000000000ULL, &a), 0);
    s_dec(&a, d);
    assert_string_equal(d, "95000000000");
    /* the largest product: (2^64-1) * (2^64-1) = 2^128 - 2^65 + 1 */
    assert_int_equal(qr_mirror_amount(UINT64_MAX, 0, UINT64_MAX, &a), 0);
    s_dec(&a, d);
    assert_string_equal(d, "340282366920938463426481119284349108225");
    assert_int_equal(qr_mirror_amount(7, 7, 3, &a), 0);
    assert_true(qr_u256_is_zero(&a));
    assert_int_equal(qr_mirror_amount(5, 6, 1, &a), -1); /* fee above price */
}

static void test_decimal(void **state)
{
    (void)state;
    qr_u256_t v;
    char d[80];
    const char *ok[] = {"0", "1", "18446744073709551616",
                        "115792089237316195423570985008687907853269984665640564039457584007913129639935"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(qr_u256_from_dec(ok[i], &v), 0);
        s_dec(&v, d);
        assert_string_equal(d, ok[i]);
    }
    assert_int_equal(qr_u256_from_dec("", &v), -1);
    assert_int_equal(qr_u256_from_dec("12a", &v), -1);
    assert_int_equal(qr_u256_from_dec("-1", &v), -1);
    /* 2^256 */
    assert_int_equal(qr_u256_from_dec("115792089237316195423570985008687907853269984665640564039457584007913129639936",
                                      &v), -1);
}

static void test_bump(void **state)
{
    (void)state;
    qr_u256_t old = qr_u256_from_u64(1000), sug = qr_u256_from_u64(0), cap = qr_u256_from_u64(0), out;
    uint64_t x;
    qr_mirror_bump(&old, 25, &sug, &cap, &out);
    qr_u256_to_u64(&out, &x);
    assert_int_equal(x, 1250);
    /* rounds up, and always rises */
    old = qr_u256_from_u64(3);
    qr_mirror_bump(&old, 10, NULL, NULL, &out);
    qr_u256_to_u64(&out, &x);
    assert_int_equal(x, 4);
    old = qr_u256_from_u64(0);
    qr_mirror_bump(&old, 25, NULL, NULL, &out);
    qr_u256_to_u64(&out, &x);
    assert_int_equal(x, 1);
    /* the market moved more than the bump: take the market */
    old = qr_u256_from_u64(1000);
    sug = qr_u256_from_u64(5000);
    qr_mirror_bump(&old, 25, &sug, NULL, &out);
    qr_u256_to_u64(&out, &x);
    assert_int_equal(x, 5000);
    /* never above the cap */
    cap = qr_u256_from_u64(1100);
    qr_mirror_bump(&old, 25, &sug, &cap, &out);
    qr_u256_to_u64(&out, &x);
    assert_int_equal(x, 1100);
    /* no overflow near the top */
    memset(old.b, 0xff, 32);
    qr_mirror_bump(&old, 25, NULL, NULL, &out);
    assert_memory_equal(out.b, old.b, 32);
}

static void test_backoff_due(void **state)
{
    (void)state;
    assert_int_equal(qr_mirror_backoff(0, 200, 30000), 200);
    assert_int_equal(qr_mirror_backoff(200, 200, 30000), 400);
    assert_int_equal(qr_mirror_backoff(20000, 200, 30000), 30000);
    assert_int_equal(qr_mirror_backoff(30000, 200, 30000), 30000);
    assert_int_equal(qr_mirror_backoff(INT64_MAX, 200, 30000), 30000);
    assert_false(qr_mirror_due(0, 1024, 1000000, 60000));
    assert_true(qr_mirror_due(1024, 1024, 0, 60000));
    assert_true(qr_mirror_due(2000, 1024, 0, 60000));
    assert_false(qr_mirror_due(1, 1024, 59999, 60000));
    assert_true(qr_mirror_due(1, 1024, 60000, 60000));
}

static void s_rec(qr_mirror_rec_t *r, uint64_t job)
{
    memset(r, 0, sizeof *r);
    r->job_id = job;
    memset(r->client, 0x11, 20);
    memset(r->operator_, 0x22, 20);
    r->client[19] = (uint8_t)job;
    r->amount = qr_u256_from_u64(job * 1000);
}

static void test_tree_and_json(void **state)
{
    (void)state;
    qr_mirror_rec_t recs[37];
    for (int i = 0; i < 37; i++)
        s_rec(&recs[i], (uint64_t)(100 + i));
    assert_null(qr_mirror_tree(recs, 0));
    qr_merkle_t *t = qr_mirror_tree(recs, 37);
    assert_non_null(t);
    uint8_t root[32], proof[QR_MERKLE_MAX_DEPTH][32];
    qr_merkle_root(t, root);
    qr_mirror_where_t w = {.batch_id = 7, .leaf_index = 5, .count = 37, .state = "confirmed",
                           .chain_id = 31337, .block = 12, .gas_used = 51498, .units = 1,
                           .price = 100, .fee = 5, .client_account = "ali\"ce",
                           .operator_account = "op-a"};
    memcpy(w.root, root, 32);
    memset(w.contract, 0x33, 20);
    int np = qr_merkle_proof(t, 5, proof);
    assert_true(np > 0);
    json_t *doc = qr_mirror_proof_json(&recs[5], &w, (const uint8_t(*)[32])proof, (size_t)np);
    assert_non_null(doc);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    json_error_t je;
    doc = json_loads(text, 0, &je);
    free(text);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "client_account")), "ali\"ce");
    assert_string_equal(json_string_value(json_object_get(doc, "amount")), "105000");
    qr_mirror_rec_t back;
    uint64_t batch;
    uint8_t root2[32], proof2[QR_MERKLE_MAX_DEPTH][32];
    size_t np2;
    char err[160];
    assert_int_equal(qr_mirror_proof_parse(doc, &back, &batch, root2, proof2, &np2, err, sizeof err), 0);
    assert_memory_equal(&back, &recs[5], sizeof back);
    assert_int_equal(batch, 7);
    assert_memory_equal(root2, root, 32);
    assert_int_equal(np2, (size_t)np);
    assert_memory_equal(proof2, proof, (size_t)np * 32);
    /* the leaf in the document is the contract's leaf of the record */
    qr_settlement_t s = {.job_id = 105, .amount = recs[5].amount};
    memcpy(s.client, recs[5].client, 20);
    memcpy(s.operator_, recs[5].operator_, 20);
    uint8_t leaf[32];
    qr_settlement_leaf(&s, leaf);
    char hex[67];
    qr_hex_encode(leaf, 32, hex);
    assert_string_equal(json_string_value(json_object_get(doc, "leaf")), hex);
    assert_true(qr_merkle_verify(leaf, (const uint8_t(*)[32])proof2, np2, root));
    /* broken documents say which field */
    json_object_set_new(doc, "amount", json_string("12x"));
    assert_int_equal(qr_mirror_proof_parse(doc, &back, &batch, root2, proof2, &np2, err, sizeof err), -1);
    assert_non_null(strstr(err, "amount"));
    json_object_set_new(doc, "amount", json_string("1"));
    json_object_set_new(doc, "proof", json_pack("[s]", "0x12"));
    assert_int_equal(qr_mirror_proof_parse(doc, &back, &batch, root2, proof2, &np2, err, sizeof err), -1);
    assert_non_null(strstr(err, "proof"));
    json_decref(doc);
    qr_merkle_destroy(&t);
}

static void test_calldata(void **state)
{
    (void)state;
    uint8_t root[32], *cd, sel[4];
    size_t len;
    memset(root, 0xab, 32);
    assert_int_equal(qr_mirror_post_calldata(3, root, 1024, &cd, &len), 0);
    assert_int_equal(len, 4 + 3 * 32);
    qr_abi_selector("postBatch(uint64,bytes32,uint32)", sel);
    assert_memory_equal(cd, sel, 4);
    assert_int_equal(cd[4 + 31], 3);
    assert_memory_equal(cd + 4 + 32, root, 32);
    assert_int_equal(cd[4 + 64 + 30], 4); /* 1024 = 0x0400 */
    free(cd);
    qr_mirror_rec_t r;
    s_rec(&r, 9);
    uint8_t proof[2][32];
    memset(proof, 0x5c, sizeof proof);
    assert_int_equal(qr_mirror_claim_calldata(1, &r, (const uint8_t(*)[32])proof, 2, &cd, &len), 0);
    /* 5 head slots + length + 2 elements */
    assert_int_equal(len, 4 + 8 * 32);
    qr_abi_selector("claim(uint64,uint64,address,uint256,bytes32[])", sel);
    assert_memory_equal(cd, sel, 4);
    free(cd);
    assert_int_equal(qr_mirror_verify_calldata(1, &r, (const uint8_t(*)[32])proof, 2, &cd, &len), 0);
    assert_int_equal(len, 4 + 9 * 32);
    free(cd);
    assert_int_equal(qr_mirror_simple_calldata("nextBatchId()", 0, 0, &cd, &len), 0);
    assert_int_equal(len, 4);
    free(cd);
    assert_int_equal(qr_mirror_simple_calldata("isClaimed(uint64)", 1, 77, &cd, &len), 0);
    assert_int_equal(len, 36);
    assert_int_equal(cd[35], 77);
    free(cd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amount),         cmocka_unit_test(test_decimal),
        cmocka_unit_test(test_bump),           cmocka_unit_test(test_backoff_due),
        cmocka_unit_test(test_tree_and_json),  cmocka_unit_test(test_calldata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
