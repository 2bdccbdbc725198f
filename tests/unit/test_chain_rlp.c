/* common/chain/rlp: the examples of the Ethereum wiki's RLP page and the
 * yellow paper, round trips, and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ethutil.h"
#include "rlp.h"

/* Compares a finished encoder with expected hex and empties it. */
static void s_expect(qr_rlp_t *r, const char *want_hex)
{
    assert_int_equal(qr_rlp_finish(r), 0);
    uint8_t want[256];
    long n = qr_hex_decode(want_hex, want, sizeof want);
    assert_true(n >= 0);
    assert_int_equal(r->len, (size_t)n);
    assert_memory_equal(r->p, want, (size_t)n);
    qr_rlp_free(r);
}

static void test_wiki_examples(void **state)
{
    (void)state;
    qr_rlp_t r = {0};
    qr_rlp_bytes(&r, "dog", 3);
    s_expect(&r, "83646f67");

    qr_rlp_list_begin(&r);
    qr_rlp_bytes(&r, "cat", 3);
    qr_rlp_bytes(&r, "dog", 3);
    qr_rlp_list_end(&r);
    s_expect(&r, "c88363617483646f67");

    qr_rlp_bytes(&r, "", 0);
    s_expect(&r, "80");
    qr_rlp_list_begin(&r);
    qr_rlp_list_end(&r);
    s_expect(&r, "c0");
    qr_rlp_uint(&r, 0);
    s_expect(&r, "80");
    qr_rlp_bytes(&r, "\x00", 1); /* the byte 0x00, not the integer */
    s_expect(&r, "00");
    qr_rlp_uint(&r, 15);
    s_expect(&r, "0f");
    qr_rlp_uint(&r, 1024);
    s_expect(&r, "820400");

    /* the set-theoretic representation of three: [ [], [[]], [ [], [[]] ] ] */
    qr_rlp_list_begin(&r);
    qr_rlp_list_begin(&r);
    qr_rlp_list_end(&r);
    qr_rlp_list_begin(&r);
    qr_rlp_list_begin(&r);
    qr_rlp_list_end(&r);
    qr_rlp_list_end(&r);
    qr_rlp_list_begin(&r);
    qr_rlp_list_begin(&r);
    qr_rlp_list_end(&r);
    qr_rlp_list_begin(&r);
    qr_rlp_list_begin(&r);
    qr_rlp_list_end(&r);
    qr_rlp_list_end(&r);
    qr_rlp_list_end(&r);
    qr_rlp_list_end(&r);
    s_expect(&r, "c7c0c1c0c3c0c1c0");

    /* 56 bytes: the first string needing the long form */
    const char *lorem = "Lorem ipsum dolor sit amet, consectetur adipisicing elit";
    assert_int_equal(strlen(lorem), 56);
    qr_rlp_bytes(&r, lorem, 56);
    assert_int_equal(qr_rlp_finish(&r), 0);
    assert_int_equal(r.len, 58);
    assert_int_equal(r.p[0], 0xb8);
    assert_int_equal(r.p[1], 0x38);
    assert_memory_equal(r.p + 2, lorem, 56);
    qr_rlp_free(&r);

    /* integers from the ethereum/tests RLP suite */
    qr_rlp_uint(&r, 100000);
    s_expect(&r, "830186a0");
    qr_u256_t big = {{0}};
    big.b[0] = 0x01; /* 2^248: all 32 bytes, header 0x80 + 32 */
    qr_rlp_u256(&r, &big);
    s_expect(&r, "a00100000000000000000000000000000000000000000000000000000000000000");
}

static void test_long_list_and_roundtrip(void **state)
{
    (void)state;
    /* a list whose payload passes 55 bytes takes the 0xf8 header, which the
     * encoder inserts in front of an already-written payload */
    qr_rlp_t r = {0};
    qr_rlp_list_begin(&r);
    for (int i = 0; i < 20; i++)
        qr_rlp_bytes(&r, "cat", 3);
    qr_rlp_list_begin(&r);
    qr_rlp_uint(&r, 70000);
    qr_rlp_list_end(&r);
    qr_rlp_list_end(&r);
    assert_int_equal(qr_rlp_finish(&r), 0);
    assert_int_equal(r.p[0], 0xf8);
    assert_int_equal(r.p[1], 20 * 4 + 5);

    char err[128];
    qr_rlp_item_t top, it;
    assert_int_equal(qr_rlp_decode_all(r.p, r.len, &top, err, sizeof err), 0);
    assert_true(top.is_list);
    qr_rlp_iter_t iter;
    assert_int_equal(qr_rlp_iter_init(&iter, &top, err, sizeof err), 0);
    int n = 0, rc;
    while ((rc = qr_rlp_iter_next(&iter, &it, err, sizeof err)) == 1) {
        if (n < 20) {
            assert_false(it.is_list);
            assert_int_equal(it.len, 3);
            assert_memory_equal(it.p, "cat", 3);
        } else {
            assert_true(it.is_list);
            qr_rlp_iter_t inner;
            qr_rlp_item_t v;
            uint64_t x;
            assert_int_equal(qr_rlp_iter_init(&inner, &it, err, sizeof err), 0);
            assert_int_equal(qr_rlp_iter_next(&inner, &v, err, sizeof err), 1);
            assert_int_equal(qr_rlp_item_u64(&v, &x, err, sizeof err), 0);
            assert_int_equal(x, 70000);
            assert_int_equal(qr_rlp_iter_next(&inner, &v, err, sizeof err), 0);
        }
        n++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, 21);
    qr_rlp_free(&r);

    /* a 1 KiB string: two length bytes (0xb9 0x04 0x00) */
    uint8_t big[1024];
    memset(big, 0xab, sizeof big);
    qr_rlp_bytes(&r, big, sizeof big);
    assert_int_equal(qr_rlp_finish(&r), 0);
    assert_int_equal(r.p[0], 0xb9);
    assert_int_equal(r.p[1], 0x04);
    assert_int_equal(r.p[2], 0x00);
    assert_int_equal(qr_rlp_decode_all(r.p, r.len, &top, err, sizeof err), 0);
    assert_int_equal(top.len, 1024);
    qr_rlp_free(&r);

    /* unbalanced lists are caught at finish */
    qr_rlp_list_begin(&r);
    assert_int_equal(qr_rlp_finish(&r), -1);
    qr_rlp_free(&r);
    qr_rlp_list_end(&r);
    assert_int_equal(qr_rlp_finish(&r), -1);
    qr_rlp_free(&r);
}

/* Decoding hex must fail with a message containing want. */
static void s_bad(const char *hex, const char *want)
{
    uint8_t buf[64];
    long n = qr_hex_decode(hex, buf, sizeof buf);
    assert_true(n >= 0);
    char err[128] = "";
    qr_rlp_item_t item;
    int rc = qr_rlp_decode_all(buf, (size_t)n, &item, err, sizeof err);
    if (rc == 0 && item.is_list) {
        /* the top is fine; the fault is inside */
        qr_rlp_iter_t it;
        qr_rlp_item_t el;
        assert_int_equal(qr_rlp_iter_init(&it, &item, err, sizeof err), 0);
        while ((rc = qr_rlp_iter_next(&it, &el, err, sizeof err)) == 1)
            ;
    }
    assert_int_equal(rc, -1);
    if (!strstr(err, want))
        fail_msg("%s: error '%s' lacks '%s'", hex, err, want);
}

static void test_malformed(void **state)
{
    (void)state;
    s_bad("", "empty");
    s_bad("8100", "single byte"); /* 0x00 must be itself */
    s_bad("817f", "single byte");
    s_bad("b80564", "long form");       /* 5 bytes in long form */
    s_bad("b9003800", "leading zero");  /* length with a zero byte */
    s_bad("83646f", "truncated");       /* "dog" cut short */
    s_bad("c88363617483", "truncated"); /* list cut short */
    s_bad("b9", "truncated length");
    s_bad("8080", "trailing");      /* two items where one is expected */
    s_bad("c3c58080", "truncated"); /* inner list longer than the outer */
    s_bad("c28100", "single byte"); /* non-canonical inside a list */

    /* a 64-bit length far past the input */
    uint8_t huge[] = {0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
    char err[128];
    qr_rlp_item_t item;
    assert_int_equal(qr_rlp_decode(huge, sizeof huge, &item, err, sizeof err), -1);
    assert_non_null(strstr(err, "truncated"));

    /* integers: leading zeros, too wide, a list */
    uint8_t lead[] = {0x82, 0x00, 0x01};
    uint64_t v;
    assert_int_equal(qr_rlp_decode_all(lead, sizeof lead, &item, err, sizeof err), 0);
    assert_int_equal(qr_rlp_item_u64(&item, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "leading zero"));
    uint8_t wide[] = {0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(qr_rlp_decode_all(wide, sizeof wide, &item, err, sizeof err), 0);
    assert_int_equal(qr_rlp_item_u64(&item, &v, err, sizeof err), -1);
    qr_u256_t w;
    assert_int_equal(qr_rlp_item_u256(&item, &w, err, sizeof err), 0);
    uint8_t list[] = {0xc0};
    assert_int_equal(qr_rlp_decode_all(list, 1, &item, err, sizeof err), 0);
    assert_int_equal(qr_rlp_item_u64(&item, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "list"));
    uint8_t str[] = {0x80};
    qr_rlp_iter_t it;
    assert_int_equal(qr_rlp_decode_all(str, 1, &item, err, sizeof err), 0);
    assert_int_equal(qr_rlp_iter_init(&it, &item, err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wiki_examples),
        cmocka_unit_test(test_long_list_and_roundtrip),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
