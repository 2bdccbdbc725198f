/* common/chain/tx: addresses from keys, and EIP-1559 transactions signed
 * byte-for-byte like ethereumjs's published vectors
 * (ethereumjs-monorepo packages/tx/test/json/eip1559.json). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ethutil.h"
#include "keccak.h"
#include "rlp.h"
#include "tx.h"

static qr_ethkey_t *s_key(const char *hex)
{
    uint8_t sec[32];
    char err[128];
    assert_int_equal(qr_hex_decode_exact(hex, sec, 32), 0);
    qr_ethkey_t *k = qr_ethkey_new(sec, err, sizeof err);
    if (!k)
        fail_msg("%s", err);
    return k;
}

static void test_addresses(void **state)
{
    (void)state;
    static const struct {
        const char *key, *addr;
    } v[] = {
        {"0x0000000000000000000000000000000000000000000000000000000000000001",
         "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"},
        {"0x0000000000000000000000000000000000000000000000000000000000000002",
         "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"},
        /* anvil's and hardhat's first dev account */
        {"0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
         "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        qr_ethkey_t *k = s_key(v[i].key);
        char text[43];
        qr_address_to_text(qr_ethkey_address(k), text);
        assert_string_equal(text, v[i].addr);
        qr_ethkey_destroy(&k);
        assert_null(k);
    }
    /* zero and the curve order are not keys */
    uint8_t zero[32] = {0}, order[32];
    char err[128];
    assert_null(qr_ethkey_new(zero, err, sizeof err));
    assert_int_equal(
        qr_hex_decode_exact("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
                            order, 32),
        0);
    assert_null(qr_ethkey_new(order, err, sizeof err));

    /* the first contract anvil's dev account deploys lands here */
    uint8_t sender[20], out[20];
    char text[43];
    assert_int_equal(qr_address_from_text("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", sender), 0);
    qr_contract_address(sender, 0, out);
    qr_address_to_text(out, text);
    assert_string_equal(text, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
}

static const struct {
    uint64_t nonce, value, gas, tip, cap;
    const char *raw; /* the published RLP string wrapping the typed bytes */
} s_vec[] = {
    {819, 43203529, 35552, 75853, 121212,
     "0xb87302f870821e8e8203338301284d8301d97c828ae094000000000000000000000000000000000000aaaa84"
     "02933bc980c080a0d067f2167008c59219652f91cbf8788dbca5f771f6e91e2b7657e85b78b472e0a01d305af9"
     "fe81fdba43f0dfcd400ed24dcace0a7e30d4e85701dcaaf484cd079e"},
    {353, 61901619, 32593, 38850, 136295,
     "0xb87202f86f821e8e8201618297c283021467827f5194000000000000000000000000000000000000aaaa8403"
     "b08b3380c001a004205678f13fc1d7b10feea6513dfa76e24418b6e08097d95c6f93a3b64e536da01d45ad61bf"
     "ece43862de2cce7d2575a8c1d08c26c87f3cb5f26d7b0be54a91b2"},
    {985, 32531825, 68541, 66377, 136097,
     "0xb87402f871821e8e8203d983010349830213a183010bbd94000000000000000000000000000000000000aaaa"
     "8401f0657180c001a0e6d23c5ecc0f388a4d41a9523c3ad171e98083a61288c340b968dfe0903a6741a07319e8"
     "d54a4fd8f0c081d3ce093d869f9df598481991c8534bfd8f2c163884b4"},
    {623, 21649799, 57725, 74140, 81173,
     "0xb87302f870821e8e82026f8301219c83013d1582e17d94000000000000000000000000000000000000aaaa84"
     "014a598780c080a0b107893e4590e177e244493a3f2b59d63619ddd82772105d8c96b7fc85ff683da07dc9b9dc"
     "054d2f69f9cc540688f6c0da3b54dd8bd8323f06d0ca26b546a480f1"},
    {972, 94563383, 65254, 42798, 103466,
     "0xb87202f86f821e8e8203cc82a72e8301942a82fee694000000000000000000000000000000000000aaaa8405"
     "a2ec3780c080a02596bfedd3101f7e3c881eec060f83c60617fb21173ff41a560e02c9c23f02f4a01ef1f7930d"
     "31081c06dfd2176046a99442a88678638a33eb80afa8d2d3389ee0"},
    {709, 6478043, 28335, 86252, 94636,
     "0xb87202f86f821e8e8202c5830150ec830171ac826eaf94000000000000000000000000000000000000aaaa83"
     "62d8db80c001a09880d133cd636f8c8dce32e2c43494b9f2dc000eee8dc61931e09f866ed04b46a00e44d5c503"
     "c7f08b36c8b062c32a963f3dd20a71e95e3d903bfbe7f4da47cd47"},
    {939, 2782905, 45047, 45216, 91648,
     "0xb87102f86e821e8e8203ab82b0a08301660082aff794000000000000000000000000000000000000aaaa832a"
     "76b980c001a0a0e7d9b07c7ec68f24788a554f993b99d59a3f08439cc6c942f62ea0341f2aeba078122b9957c1"
     "46f7c87811bd58a7e9916ca8c07dabcf875b97bbdef79cb9c197"},
    {119, 65456115, 62341, 24721, 107729,
     "0xb87002f86d821e8e778260918301a4d182f38594000000000000000000000000000000000000aaaa8403e6c7"
     "f380c001a0e38e239770801eb995498c821e55ac9c19ae09184bb27b34be105e02fe3b7615a067c64ca6bd6d91"
     "07e85fd581ab2e70a14b637eb36505bb40861ef9d6e800cab6"},
};

static void test_eip1559_vectors(void **state)
{
    (void)state;
    qr_ethkey_t *k = s_key("0x8f2a55949038a9610f50fb23b5883af3b4ecb3c3bb792cbcefbd1542c692be63");
    char err[160];
    for (size_t i = 0; i < sizeof s_vec / sizeof s_vec[0]; i++) {
        uint8_t wrapped[200];
        long wn = qr_hex_decode(s_vec[i].raw, wrapped, sizeof wrapped);
        assert_true(wn > 0);
        qr_rlp_item_t item;
        assert_int_equal(qr_rlp_decode_all(wrapped, (size_t)wn, &item, err, sizeof err), 0);

        qr_tx_t tx = {0};
        tx.chain_id = 7822; /* 0x1e8e, the vectors' custom chain */
        tx.nonce = s_vec[i].nonce;
        tx.max_priority_fee = qr_u256_from_u64(s_vec[i].tip);
        tx.max_fee = qr_u256_from_u64(s_vec[i].cap);
        tx.gas = s_vec[i].gas;
        tx.has_to = 1;
        tx.to[18] = 0xaa;
        tx.to[19] = 0xaa;
        tx.value = qr_u256_from_u64(s_vec[i].value);
        qr_signed_tx_t st;
        assert_int_equal(qr_tx_sign(&tx, k, &st, err, sizeof err), 0);
        assert_int_equal(st.raw_len, item.len);
        assert_memory_equal(st.raw, item.p, item.len);
        uint8_t h[32];
        qr_keccak256(item.p, item.len, h);
        assert_memory_equal(st.hash, h, 32);

        /* and back: same fields, the signer recovered from the signature */
        qr_tx_t back;
        uint8_t sender[20];
        assert_int_equal(qr_tx_decode(st.raw, st.raw_len, &back, sender, err, sizeof err), 0);
        assert_memory_equal(sender, qr_ethkey_address(k), 20);
        assert_int_equal(back.nonce, tx.nonce);
        assert_int_equal(back.gas, tx.gas);
        assert_int_equal(back.chain_id, 7822);
        assert_memory_equal(back.value.b, tx.value.b, 32);
        assert_memory_equal(back.to, tx.to, 20);
        assert_int_equal(back.data_len, 0);

        /* a changed s still parses but recovers someone else (or no one) */
        uint8_t *bad = malloc(st.raw_len);
        assert_non_null(bad);
        memcpy(bad, st.raw, st.raw_len);
        bad[st.raw_len - 1] ^= 0x01;
        if (qr_tx_decode(bad, st.raw_len, &back, sender, err, sizeof err) == 0)
            assert_memory_not_equal(sender, qr_ethkey_address(k), 20);
        free(bad);
        qr_signed_tx_free(&st);
    }
    qr_ethkey_destroy(&k);
}

static void test_creation_and_data(void **state)
{
    (void)state;
    qr_ethkey_t *k = s_key("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
    uint8_t code[300];
    for (size_t i = 0; i < sizeof code; i++)
        code[i] = (uint8_t)i;
    qr_tx_t tx = {.chain_id = 31337,
                  .nonce = 0,
                  .gas = 3000000,
                  .has_to = 0,
                  .data = code,
                  .data_len = sizeof code};
    tx.max_fee = qr_u256_from_u64(2000000000);
    tx.max_priority_fee = qr_u256_from_u64(1000000000);
    char err[160];
    qr_signed_tx_t st, st2;
    assert_int_equal(qr_tx_sign(&tx, k, &st, err, sizeof err), 0);
    /* deterministic (RFC 6979): the same transaction signs to the same bytes */
    assert_int_equal(qr_tx_sign(&tx, k, &st2, err, sizeof err), 0);
    assert_int_equal(st.raw_len, st2.raw_len);
    assert_memory_equal(st.raw, st2.raw, st.raw_len);
    qr_tx_t back;
    uint8_t sender[20];
    assert_int_equal(qr_tx_decode(st.raw, st.raw_len, &back, sender, err, sizeof err), 0);
    assert_false(back.has_to);
    assert_int_equal(back.data_len, sizeof code);
    assert_memory_equal(back.data, code, sizeof code);
    assert_memory_equal(sender, qr_ethkey_address(k), 20);

    /* malformed raw transactions */
    assert_int_equal(qr_tx_decode(st.raw + 1, st.raw_len - 1, &back, sender, err, sizeof err), -1);
    assert_non_null(strstr(err, "type 2"));
    assert_int_equal(qr_tx_decode(st.raw, st.raw_len - 1, &back, sender, err, sizeof err), -1);
    assert_non_null(strstr(err, "truncated"));
    uint8_t short_list[] = {0x02, 0xc3, 0x01, 0x02, 0x03};
    assert_int_equal(qr_tx_decode(short_list, sizeof short_list, &back, sender, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "12"));
    qr_signed_tx_free(&st);
    qr_signed_tx_free(&st2);
    qr_ethkey_destroy(&k);
}

static void test_key_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/qr_chain_keyXXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/eth.key", dir);
    const char *hex = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    char err[256];

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "  0x%s\n", hex);
    fclose(f);
    chmod(path, 0644);
    assert_null(qr_ethkey_load(path, err, sizeof err));
    assert_non_null(strstr(err, "chmod 600"));
    chmod(path, 0600);
    qr_ethkey_t *k = qr_ethkey_load(path, err, sizeof err);
    if (!k)
        fail_msg("%s", err);
    char text[43];
    qr_address_to_text(qr_ethkey_address(k), text);
    assert_string_equal(text, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    qr_ethkey_destroy(&k);

    /* a bad key: the message names the file, never the text in it */
    f = fopen(path, "w");
    fprintf(f, "%.63s\n", hex);
    fclose(f);
    assert_null(qr_ethkey_load(path, err, sizeof err));
    assert_non_null(strstr(err, "64 hex digits"));
    assert_null(strstr(err, "ac0974"));
    unlink(path);
    assert_null(qr_ethkey_load(path, err, sizeof err));
    assert_non_null(strstr(err, "cannot open"));
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_eip1559_vectors),
        cmocka_unit_test(test_creation_and_data),
        cmocka_unit_test(test_key_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
