/* common/chain/abi: the worked examples of the Solidity ABI specification,
 * decoding them back, and short or hostile return data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "ethutil.h"

static void s_expect(qr_abi_enc_t *e, const char *want_hex)
{
    uint8_t *out;
    size_t len;
    assert_int_equal(qr_abi_enc_finish(e, &out, &len), 0);
    char *got = malloc(2 * len + 3);
    assert_non_null(got);
    qr_hex_encode(out, len, got);
    assert_string_equal(got, want_hex);
    free(got);
    free(out);
    qr_abi_enc_free(e);
}

#define W0 "0000000000000000000000000000000000000000000000000000000000000"

static void test_spec_examples(void **state)
{
    (void)state;
    uint8_t sel[4];
    qr_abi_selector("transfer(address,uint256)", sel);
    assert_memory_equal(sel, "\xa9\x05\x9c\xbb", 4);

    qr_abi_enc_t e;
    /* baz(69, true) */
    qr_abi_enc_init(&e, "baz(uint32,bool)");
    qr_abi_put_uint(&e, 69);
    qr_abi_put_bool(&e, 1);
    s_expect(&e, "0xcdcd77c0" W0 "045" W0 "001");

    /* bar(["abc", "def"]): a static array is its elements in place */
    qr_abi_enc_init(&e, "bar(bytes3[2])");
    qr_abi_put_fixed_bytes(&e, "abc", 3);
    qr_abi_put_fixed_bytes(&e, "def", 3);
    s_expect(&e, "0xfce353f6"
                 "6162630000000000000000000000000000000000000000000000000000000000"
                 "6465660000000000000000000000000000000000000000000000000000000000");

    /* sam("dave", true, [1, 2, 3]) */
    qr_abi_enc_init(&e, "sam(bytes,bool,uint256[])");
    qr_abi_put_bytes(&e, "dave", 4);
    qr_abi_put_bool(&e, 1);
    qr_u256_t arr[3] = {qr_u256_from_u64(1), qr_u256_from_u64(2), qr_u256_from_u64(3)};
    qr_abi_put_uint256_array(&e, arr, 3);
    s_expect(&e, "0xa5643bf2" W0 "060" W0 "001" W0 "0a0" W0 "004"
                 "6461766500000000000000000000000000000000000000000000000000000000" W0 "003" W0
                 "001" W0 "002" W0 "003");

    /* f(0x123, [0x456, 0x789], "1234567890", "Hello, world!") */
    qr_abi_enc_init(&e, "f(uint256,uint32[],bytes10,bytes)");
    qr_u256_t a = qr_u256_from_u64(0x123);
    qr_abi_put_uint256(&e, &a);
    qr_u256_t small[2] = {qr_u256_from_u64(0x456), qr_u256_from_u64(0x789)};
    qr_abi_put_uint256_array(&e, small, 2);
    qr_abi_put_fixed_bytes(&e, "1234567890", 10);
    qr_abi_put_bytes(&e, "Hello, world!", 13);
    s_expect(&e, "0x8be65246" W0 "123" W0 "080"
                 "3132333435363738393000000000000000000000000000000000000000000000" W0 "0e0" W0
                 "002" W0 "456" W0 "789" W0 "00d"
                 "48656c6c6f2c20776f726c642100000000000000000000000000000000000000");

    /* no selector, empty dynamic values: a 32-byte-aligned empty string is
     * just its zero length word */
    qr_abi_enc_init(&e, NULL);
    qr_abi_put_bytes(&e, "", 0);
    qr_abi_put_bytes32_array(&e, NULL, 0);
    s_expect(&e, "0x" W0 "040" W0 "060" W0 "000" W0 "000");
}

static void test_decode_roundtrip(void **state)
{
    (void)state;
    /* encode the contract's own shapes, read them back */
    qr_abi_enc_t e;
    qr_abi_enc_init(&e, NULL);
    uint8_t addr[20], b32[32], proof[3][32];
    for (int i = 0; i < 20; i++)
        addr[i] = (uint8_t)(0xa0 + i);
    for (int i = 0; i < 32; i++)
        b32[i] = (uint8_t)i;
    for (int i = 0; i < 3; i++)
        memset(proof[i], 0x11 * (i + 1), 32);
    qr_u256_t big;
    memset(big.b, 0xee, 32);
    qr_abi_put_uint(&e, UINT64_MAX);
    qr_abi_put_address(&e, addr);
    qr_abi_put_uint256(&e, &big);
    qr_abi_put_bytes32_array(&e, (const uint8_t(*)[32])proof, 3);
    qr_abi_put_bool(&e, 0);
    qr_abi_put_bytes32(&e, b32);
    qr_abi_put_bytes(&e, "slashed: wrong result", 21);
    uint8_t *out;
    size_t len;
    assert_int_equal(qr_abi_enc_finish(&e, &out, &len), 0);
    qr_abi_enc_free(&e);

    qr_abi_dec_t d;
    qr_abi_dec_init(&d, out, len);
    uint64_t v;
    uint8_t a2[20], b2[32];
    qr_u256_t u;
    const uint8_t *items, *msg;
    size_t n, mlen;
    int flag = 7;
    assert_int_equal(qr_abi_get_uint64(&d, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(qr_abi_get_address(&d, a2), 0);
    assert_memory_equal(a2, addr, 20);
    assert_int_equal(qr_abi_get_uint256(&d, &u), 0);
    assert_memory_equal(u.b, big.b, 32);
    assert_int_equal(qr_abi_get_word_array(&d, &items, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(items, proof, 96);
    assert_int_equal(qr_abi_get_bool(&d, &flag), 0);
    assert_int_equal(flag, 0);
    assert_int_equal(qr_abi_get_bytes32(&d, b2), 0);
    assert_memory_equal(b2, b32, 32);
    assert_int_equal(qr_abi_get_bytes(&d, &msg, &mlen), 0);
    assert_int_equal(mlen, 21);
    assert_memory_equal(msg, "slashed: wrong result", 21);
    /* past the last head slot is past the head, into the tail: still in
     * bounds, so only a type check can fail; at the real end it must fail */
    qr_abi_dec_init(&d, out, 32);
    assert_int_equal(qr_abi_get_uint64(&d, &v), 0);
    assert_int_equal(qr_abi_get_uint64(&d, &v), -1);
    assert_non_null(strstr(d.err, "ends before"));
    free(out);
}

static void test_hostile_data(void **state)
{
    (void)state;
    uint8_t buf[160] = {0};
    qr_abi_dec_t d;
    uint64_t v;
    int b;
    uint8_t a[20];
    const uint8_t *p;
    size_t n;

    /* truncated: 31 bytes is not one slot */
    qr_abi_dec_init(&d, buf, 31);
    assert_int_equal(qr_abi_get_uint64(&d, &v), -1);
    assert_true(d.failed);
    /* the first error sticks */
    assert_int_equal(qr_abi_get_bool(&d, &b), -1);
    assert_non_null(strstr(d.err, "uint64"));

    /* a bool of 2, an address with high bits, a uint64 over 64 bits */
    buf[31] = 2;
    qr_abi_dec_init(&d, buf, 32);
    assert_int_equal(qr_abi_get_bool(&d, &b), -1);
    assert_non_null(strstr(d.err, "not a bool"));
    buf[31] = 0;
    buf[0] = 1;
    qr_abi_dec_init(&d, buf, 32);
    assert_int_equal(qr_abi_get_address(&d, a), -1);
    qr_abi_dec_init(&d, buf, 32);
    assert_int_equal(qr_abi_get_uint64(&d, &v), -1);
    assert_non_null(strstr(d.err, "does not fit"));
    buf[0] = 0;

    /* bytes whose offset points past the end */
    buf[31] = 0xe0;
    qr_abi_dec_init(&d, buf, 64);
    assert_int_equal(qr_abi_get_bytes(&d, &p, &n), -1);
    assert_non_null(strstr(d.err, "past"));
    /* a misaligned offset */
    buf[31] = 0x21;
    qr_abi_dec_init(&d, buf, 96);
    assert_int_equal(qr_abi_get_bytes(&d, &p, &n), -1);
    assert_non_null(strstr(d.err, "bad offset"));
    /* a huge offset word (would overflow if added blindly) */
    memset(buf, 0xff, 32);
    qr_abi_dec_init(&d, buf, 96);
    assert_int_equal(qr_abi_get_bytes(&d, &p, &n), -1);
    memset(buf, 0, sizeof buf);
    /* a length that runs past the data: offset 0x20, length 0x40, 32 left */
    buf[31] = 0x20;
    buf[63] = 0x40;
    qr_abi_dec_init(&d, buf, 96);
    assert_int_equal(qr_abi_get_bytes(&d, &p, &n), -1);
    assert_non_null(strstr(d.err, "overruns"));
    /* an array of 2 words with room for 1 */
    buf[63] = 2;
    qr_abi_dec_init(&d, buf, 96);
    assert_int_equal(qr_abi_get_word_array(&d, &p, &n), -1);
    /* and room for 2 is fine */
    qr_abi_dec_init(&d, buf, 128);
    assert_int_equal(qr_abi_get_word_array(&d, &p, &n), 0);
    assert_int_equal(n, 2);
    /* a length word of 2^255 */
    buf[32] = 0x80;
    qr_abi_dec_init(&d, buf, 128);
    assert_int_equal(qr_abi_get_word_array(&d, &p, &n), -1);
}

static void test_revert_reasons(void **state)
{
    (void)state;
    /* the Solidity docs' example: revert("Not enough Ether provided.") */
    uint8_t data[100];
    long n = qr_hex_decode("0x08c379a0"
                           "0000000000000000000000000000000000000000000000000000000000000020"
                           "000000000000000000000000000000000000000000000000000000000000001a"
                           "4e6f7420656e6f7567682045746865722070726f76696465642e000000000000",
                           data, sizeof data);
    assert_int_equal(n, 100);
    char why[128];
    qr_abi_revert_reason(data, (size_t)n, why, sizeof why);
    assert_string_equal(why, "Not enough Ether provided.");
    /* the same cut short falls back to naming the selector */
    qr_abi_revert_reason(data, 60, why, sizeof why);
    assert_string_equal(why, "custom error 0x08c379a0");
    /* Panic(0x11): arithmetic overflow */
    uint8_t panic[36] = {0x4e, 0x48, 0x7b, 0x71};
    panic[35] = 0x11;
    qr_abi_revert_reason(panic, sizeof panic, why, sizeof why);
    assert_string_equal(why, "panic 0x11");
    qr_abi_revert_reason(NULL, 0, why, sizeof why);
    assert_string_equal(why, "reverted without data");
    uint8_t custom[4];
    qr_abi_selector("NotBroker()", custom);
    qr_abi_revert_reason(custom, 4, why, sizeof why);
    assert_non_null(strstr(why, "custom error 0x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_examples),
        cmocka_unit_test(test_decode_roundtrip),
        cmocka_unit_test(test_hostile_data),
        cmocka_unit_test(test_revert_reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
