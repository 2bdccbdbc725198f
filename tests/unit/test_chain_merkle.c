/* common/chain/merkle: roots against an independent computation (js-sha3,
 * same sorted-pair rule), every proof of trees of 1..70 leaves, forged
 * proofs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ethutil.h"
#include "keccak.h"
#include "merkle.h"

static void s_hex_eq(const uint8_t got[32], const char *want)
{
    char text[67];
    qr_hex_encode(got, 32, text);
    assert_string_equal(text + 2, want);
}

static void test_reference_roots(void **state)
{
    (void)state;
    uint8_t leaves[5][32], root[32];
    const char *names = "abcde";
    for (int i = 0; i < 5; i++)
        qr_keccak256(names + i, 1, leaves[i]);
    /* 3 leaves: c has no partner and moves up unchanged */
    qr_merkle_t *t = qr_merkle_new((const uint8_t(*)[32])leaves, 3);
    assert_non_null(t);
    qr_merkle_root(t, root);
    s_hex_eq(root, "5842148bc6ebeb52af882a317c765fccd3ae80589b21a9b8cbf21abb630e46a7");
    qr_merkle_destroy(&t);
    assert_null(t);
    t = qr_merkle_new((const uint8_t(*)[32])leaves, 5);
    qr_merkle_root(t, root);
    s_hex_eq(root, "1dd0d2a6ae466d665cb26e1a31f07c57ae5df7d2bc559cd5826d417be9141a5d");
    /* e's proof is a single node: it skipped two levels */
    uint8_t proof[QR_MERKLE_MAX_DEPTH][32];
    assert_int_equal(qr_merkle_proof(t, 4, proof), 1);
    assert_int_equal(qr_merkle_proof(t, 0, proof), 3);
    assert_int_equal(qr_merkle_proof(t, 5, proof), -1);
    qr_merkle_destroy(&t);

    /* one leaf is its own root with an empty proof; none is no tree */
    t = qr_merkle_new((const uint8_t(*)[32])leaves, 1);
    qr_merkle_root(t, root);
    assert_memory_equal(root, leaves[0], 32);
    assert_int_equal(qr_merkle_proof(t, 0, proof), 0);
    assert_true(qr_merkle_verify(leaves[0], NULL, 0, root));
    qr_merkle_destroy(&t);
    assert_null(qr_merkle_new((const uint8_t(*)[32])leaves, 0));
    qr_merkle_destroy(NULL);
}

static void test_settlement_leaf(void **state)
{
    (void)state;
    qr_settlement_t rec = {.job_id = 42};
    memset(rec.client, 0x11, 20);
    memset(rec.operator_, 0x22, 20);
    assert_int_equal(qr_quantity_to_u256("0xde0b6b3a7640000", &rec.amount), 0); /* 1 ether */
    uint8_t leaf[32];
    qr_settlement_leaf(&rec, leaf);
    /* keccak256(keccak256(abi.encode(42, 0x11.., 0x22.., 1e18))) */
    s_hex_eq(leaf, "e75aefa45db1baf6ef7bc3ba6f12d2325e891484341f3c25b6edd33033d474f3");
}

static void test_all_proofs(void **state)
{
    (void)state;
    uint8_t(*leaves)[32] = malloc(70 * 32);
    assert_non_null(leaves);
    for (size_t n = 1; n <= 70; n++) {
        for (size_t i = 0; i < n; i++) {
            qr_settlement_t rec = {.job_id = 1000 + i};
            memset(rec.client, (int)i, 20);
            memset(rec.operator_, (int)(i * 7), 20);
            rec.amount = qr_u256_from_u64(i * 1000003);
            qr_settlement_leaf(&rec, leaves[i]);
        }
        qr_merkle_t *t = qr_merkle_new((const uint8_t(*)[32])leaves, n);
        assert_non_null(t);
        assert_int_equal(qr_merkle_leaf_count(t), n);
        uint8_t root[32], proof[QR_MERKLE_MAX_DEPTH][32];
        qr_merkle_root(t, root);
        size_t depth = 0;
        while (((size_t)1 << depth) < n)
            depth++;
        for (size_t i = 0; i < n; i++) {
            int k = qr_merkle_proof(t, i, proof);
            assert_true(k >= 0 && (size_t)k <= depth);
            assert_true(qr_merkle_verify(leaves[i], (const uint8_t(*)[32])proof, (size_t)k, root));
            /* another leaf with this proof, or a proof with a bit flipped,
             * or one node short, must not verify */
            assert_false(qr_merkle_verify(leaves[(i + 1) % n], (const uint8_t(*)[32])proof,
                                          (size_t)k, root) &&
                         n > 1);
            if (k > 0) {
                proof[k - 1][5] ^= 0x40;
                assert_false(
                    qr_merkle_verify(leaves[i], (const uint8_t(*)[32])proof, (size_t)k, root));
                proof[k - 1][5] ^= 0x40;
                assert_false(
                    qr_merkle_verify(leaves[i], (const uint8_t(*)[32])proof, (size_t)k - 1, root));
            }
        }
        qr_merkle_destroy(&t);
    }
    free(leaves);
}

static void test_pair_order(void **state)
{
    (void)state;
    /* sorted pairs: the order the caller passes does not matter, and the
     * smaller node goes first */
    uint8_t a[32] = {0}, b[32] = {0}, h1[32], h2[32], want[32], buf[64];
    a[31] = 1;
    b[0] = 1;
    qr_merkle_hash_pair(a, b, h1);
    qr_merkle_hash_pair(b, a, h2);
    assert_memory_equal(h1, h2, 32);
    memcpy(buf, a, 32);
    memcpy(buf + 32, b, 32);
    qr_keccak256(buf, 64, want);
    assert_memory_equal(h1, want, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_roots),
        cmocka_unit_test(test_settlement_leaf),
        cmocka_unit_test(test_all_proofs),
        cmocka_unit_test(test_pair_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
