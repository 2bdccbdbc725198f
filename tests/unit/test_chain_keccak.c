/* common/chain: keccak-256 and the hex / u256 / address helpers, against
 * published values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ethutil.h"
#include "keccak.h"

static void s_hex_eq(const uint8_t *got, size_t n, const char *want)
{
    char text[2 * 256 + 3];
    assert_true(n <= 256);
    qr_hex_encode(got, n, text);
    assert_string_equal(text + 2, want[0] == '0' && want[1] == 'x' ? want + 2 : want);
}

static void s_keccak_str(const char *s, const char *want)
{
    uint8_t h[32];
    qr_keccak256(s, strlen(s), h);
    s_hex_eq(h, 32, want);
}

static void test_known_answers(void **state)
{
    (void)state;
    /* Ethereum's Keccak-256 (0x01 padding); SHA3-256("") would be a7ffc6f8... */
    s_keccak_str("", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
    s_keccak_str("abc", "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
    s_keccak_str("The quick brown fox jumps over the lazy dog",
                 "4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15");
    /* the ERC-20 Transfer event topic, on every token's logs */
    s_keccak_str("Transfer(address,address,uint256)",
                 "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
}

static void test_block_boundaries(void **state)
{
    (void)state;
    /* around the 136-byte rate: 135 puts both padding bits in one byte
     * (0x81), 136 needs a block of padding only, 137 spills over (values
     * cross-checked with js-sha3) */
    static const struct {
        size_t n;
        const char *want;
    } v[] = {
        {135, "34367dc248bbd832f4e3e69dfaac2f92638bd0bbd18f2912ba4ef454919cf446"},
        {136, "a6c4d403279fe3e0af03729caada8374b5ca54d8065329a3ebcaeb4b60aa386e"},
        {137, "d869f639c7046b4929fc92a4d988a8b22c55fbadb802c0c66ebcd484f1915f39"},
    };
    char buf[200];
    memset(buf, 'a', sizeof buf);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t h[32];
        qr_keccak256(buf, v[i].n, h);
        s_hex_eq(h, 32, v[i].want);
    }
}

static void test_million_a_streaming(void **state)
{
    (void)state;
    /* the classic long-message vector, fed in uneven pieces so updates
     * straddle block boundaries at every offset */
    char *buf = malloc(1000000);
    assert_non_null(buf);
    memset(buf, 'a', 1000000);
    uint8_t one[32], streamed[32];
    qr_keccak256(buf, 1000000, one);
    s_hex_eq(one, 32, "fadae6b49f129bbb812be8407b7b2894f34aecf6dbd1f9b0f0c7e9853098fc96");
    qr_keccak_t k;
    qr_keccak_init(&k);
    size_t pos = 0, step = 1;
    while (pos < 1000000) {
        size_t n = step < 1000000 - pos ? step : 1000000 - pos;
        qr_keccak_update(&k, buf + pos, n);
        pos += n;
        step = step % 301 + 7;
    }
    qr_keccak_final(&k, streamed);
    assert_memory_equal(one, streamed, 32);
    free(buf);
}

static void test_hex_and_quantities(void **state)
{
    (void)state;
    uint8_t b[4];
    assert_int_equal(qr_hex_decode("0xdeadBEEF", b, 4), 4);
    assert_int_equal(b[0], 0xde);
    assert_int_equal(b[3], 0xef);
    assert_int_equal(qr_hex_decode("abc", b, 4), -1);          /* odd */
    assert_int_equal(qr_hex_decode("0xzz", b, 4), -1);         /* not hex */
    assert_int_equal(qr_hex_decode("0x0102030405", b, 4), -1); /* too long */
    assert_int_equal(qr_hex_decode_exact("0x010203", b, 4), -1);

    uint64_t v;
    assert_int_equal(qr_quantity_to_u64("0x0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(qr_quantity_to_u64("0x7a69", &v), 0);
    assert_int_equal(v, 31337);
    assert_int_equal(qr_quantity_to_u64("0xffffffffffffffff", &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(qr_quantity_to_u64("0x10000000000000000", &v), -1);
    assert_int_equal(qr_quantity_to_u64("0x", &v), -1);
    assert_int_equal(qr_quantity_to_u64("12", &v), -1);
    char q[67];
    qr_quantity_from_u64(0, q);
    assert_string_equal(q, "0x0");
    qr_quantity_from_u64(1024, q);
    assert_string_equal(q, "0x400");

    qr_u256_t a, c;
    assert_int_equal(qr_quantity_to_u256("0xde0b6b3a7640000", &a), 0); /* 1 ether */
    char dec[80];
    qr_u256_to_dec(&a, dec, sizeof dec);
    assert_string_equal(dec, "1000000000000000000");
    memset(c.b, 0xff, 32);
    qr_u256_to_dec(&c, dec, sizeof dec);
    assert_string_equal(
        dec, "115792089237316195423570985008687907853269984665640564039457584007913129639935");
    qr_u256_t one = qr_u256_from_u64(1), sum;
    assert_int_equal(qr_u256_add(&c, &one, &sum), -1);
    assert_int_equal(qr_u256_sub(&one, &c, &sum), -1);
    assert_int_equal(qr_u256_sub(&a, &one, &sum), 0);
    qr_u256_to_dec(&sum, dec, sizeof dec);
    assert_string_equal(dec, "999999999999999999");
}

static void test_eip55(void **state)
{
    (void)state;
    /* the examples in EIP-55 */
    static const char *v[] = {
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t a[20];
        char text[43];
        assert_int_equal(qr_address_from_text(v[i], a), 0);
        qr_address_to_text(a, text);
        assert_string_equal(text, v[i]);
    }
    uint8_t a[20];
    /* all lower case carries no checksum and is accepted */
    assert_int_equal(qr_address_from_text("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", a), 0);
    /* one letter's case flipped: a typo the checksum catches */
    assert_int_equal(qr_address_from_text("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", a), -1);
    assert_int_equal(qr_address_from_text("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA", a), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_block_boundaries),
        cmocka_unit_test(test_million_a_streaming),
        cmocka_unit_test(test_hex_and_quantities),
        cmocka_unit_test(test_eip55),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
