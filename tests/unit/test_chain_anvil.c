/* common/chain against a real node: tests/scripts/with_anvil.sh starts anvil
 * and passes its URL in QUARRY_TEST_ETH_URL.  A signed EIP-1559 transfer,
 * the receipt, node-side errors; then, when the contract was compiled
 * (QUARRY_TEST_SETTLEMENT_BIN), QuarrySettlement deployed and driven with
 * leaves and proofs made by common/chain/merkle, which checks that the C
 * side and the contract agree on the leaf encoding and the pair order.
 * Exits 77 (skip) when run without a node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "err.h"
#include "ethutil.h"
#include "keccak.h"
#include "merkle.h"
#include "rpc.h"
#include "tx.h"

/* anvil's first three dev accounts (the well-known mnemonic "test test ...
 * junk"): broker, client, operator */
static const char *s_dev_keys[3] = {
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
};

static qr_rpc_t *s_rpc;
static qr_ethkey_t *s_keys[3];

static void s_check(int rc)
{
    if (rc != QR_OK)
        fail_msg("rpc failed (%d): %s", rc, qr_rpc_last_error(s_rpc)->message);
}

static int s_setup(void **state)
{
    (void)state;
    char err[160];
    s_rpc = qr_rpc_new(getenv("QUARRY_TEST_ETH_URL"), 10000, err, sizeof err);
    if (!s_rpc)
        return -1;
    for (int i = 0; i < 3; i++) {
        uint8_t sec[32];
        if (qr_hex_decode_exact(s_dev_keys[i], sec, 32) < 0 ||
            !(s_keys[i] = qr_ethkey_new(sec, err, sizeof err)))
            return -1;
    }
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        qr_ethkey_destroy(&s_keys[i]);
    qr_rpc_destroy(&s_rpc);
    return 0;
}

/* Builds, signs and sends a transaction from key: nonce and fees from the
 * node, gas estimated plus a margin; waits for the receipt.  to NULL
 * creates a contract.  Returns the signed transaction's hash in hash. */
static void s_send(qr_ethkey_t *key, const uint8_t *to, uint64_t value, const uint8_t *data,
                   size_t len, qr_receipt_t *rcpt)
{
    qr_tx_t tx = {0};
    s_check(qr_rpc_chain_id(s_rpc, &tx.chain_id));
    s_check(qr_rpc_nonce(s_rpc, qr_ethkey_address(key), &tx.nonce));
    s_check(qr_rpc_fees(s_rpc, &tx.max_priority_fee, &tx.max_fee));
    qr_call_t call = {.has_from = 1, .has_to = to != NULL, .data = data, .data_len = len};
    memcpy(call.from, qr_ethkey_address(key), 20);
    if (to)
        memcpy(call.to, to, 20);
    call.value = qr_u256_from_u64(value);
    s_check(qr_rpc_estimate_gas(s_rpc, &call, &tx.gas));
    tx.gas += tx.gas / 5;
    tx.has_to = to != NULL;
    if (to)
        memcpy(tx.to, to, 20);
    tx.value = call.value;
    tx.data = data;
    tx.data_len = len;
    qr_signed_tx_t st;
    char err[160];
    if (qr_tx_sign(&tx, key, &st, err, sizeof err) < 0)
        fail_msg("%s", err);
    uint8_t hash[32];
    s_check(qr_rpc_send_raw(s_rpc, st.raw, st.raw_len, hash));
    /* the node names the transaction by the hash we computed */
    assert_memory_equal(hash, st.hash, 32);
    s_check(qr_rpc_wait_receipt(s_rpc, hash, 20000, 100, rcpt));
    assert_memory_equal(rcpt->tx_hash, hash, 32);
    qr_signed_tx_free(&st);
}

static void s_balance(const uint8_t addr[20], qr_u256_t *out)
{
    char a[43];
    qr_hex_encode(addr, 20, a);
    json_t *res;
    s_check(qr_rpc_request(s_rpc, "eth_getBalance", json_pack("[s, s]", a, "latest"), &res));
    assert_true(json_is_string(res));
    assert_int_equal(qr_quantity_to_u256(json_string_value(res), out), 0);
    json_decref(res);
}

static void test_transfer(void **state)
{
    (void)state;
    uint64_t chain, block0, block1;
    s_check(qr_rpc_chain_id(s_rpc, &chain));
    assert_int_equal(chain, 31337);
    s_check(qr_rpc_block_number(s_rpc, &block0));
    qr_u256_t base, tip, price;
    s_check(qr_rpc_base_fee(s_rpc, &base));
    s_check(qr_rpc_max_priority_fee(s_rpc, &tip));
    s_check(qr_rpc_gas_price(s_rpc, &price));
    assert_false(qr_u256_is_zero(&base));

    const uint8_t *to = qr_ethkey_address(s_keys[1]);
    qr_u256_t before, after;
    s_balance(to, &before);
    qr_receipt_t r;
    s_send(s_keys[0], to, 123456789, NULL, 0, &r);
    assert_int_equal(r.status, 1);
    assert_int_equal(r.gas_used, 21000);
    assert_int_equal(r.nlogs, 0);
    assert_false(qr_u256_is_zero(&r.effective_gas_price));
    s_balance(to, &after);
    qr_u256_t diff;
    uint64_t d;
    assert_int_equal(qr_u256_sub(&after, &before, &diff), 0);
    assert_int_equal(qr_u256_to_u64(&diff, &d), 0);
    assert_int_equal(d, 123456789);
    s_check(qr_rpc_block_number(s_rpc, &block1));
    assert_true(block1 > block0);
    assert_int_equal(r.block_number, block1);
    qr_receipt_free(&r);

    /* the node refuses a replay (nonce already used): a JSON-RPC error */
    qr_tx_t tx = {.chain_id = 31337, .nonce = 0, .gas = 21000, .has_to = 1};
    tx.max_fee = qr_u256_from_u64(10000000000ULL);
    tx.max_priority_fee = qr_u256_from_u64(1);
    memcpy(tx.to, to, 20);
    qr_signed_tx_t st;
    char err[160];
    assert_int_equal(qr_tx_sign(&tx, s_keys[0], &st, err, sizeof err), 0);
    uint8_t hash[32];
    assert_int_equal(qr_rpc_send_raw(s_rpc, st.raw, st.raw_len, hash), QR_EINVAL);
    assert_true(qr_rpc_last_error(s_rpc)->has_rpc_code);
    printf("# replay refused: %s\n", qr_rpc_last_error(s_rpc)->message);
    qr_signed_tx_free(&st);
    /* a hash nobody sent has no receipt */
    memset(hash, 0x5a, 32);
    assert_int_equal(qr_rpc_receipt(s_rpc, hash, &r), QR_ENOTREADY);
}

/* eth_call of calldata (freed here) at the contract; the return data in
 * *out. */
static int s_call(const uint8_t contract[20], const uint8_t *from, uint8_t *calldata, size_t len,
                  uint8_t **out, size_t *outlen)
{
    qr_call_t call = {.has_to = 1, .data = calldata, .data_len = len};
    memcpy(call.to, contract, 20);
    if (from) {
        call.has_from = 1;
        memcpy(call.from, from, 20);
    }
    int rc = qr_rpc_call(s_rpc, &call, NULL, out, outlen);
    free(calldata);
    return rc;
}

static uint8_t *s_finish(qr_abi_enc_t *e, size_t *len)
{
    uint8_t *p;
    assert_int_equal(qr_abi_enc_finish(e, &p, len), 0);
    qr_abi_enc_free(e);
    return p;
}

static int s_verify_call(const uint8_t contract[20], uint64_t batch, const qr_settlement_t *rec,
                         const uint8_t (*proof)[32], size_t n)
{
    qr_abi_enc_t e;
    size_t len, outlen;
    uint8_t *out;
    qr_abi_enc_init(&e, "verifySettlement(uint64,uint64,address,address,uint256,bytes32[])");
    qr_abi_put_uint(&e, batch);
    qr_abi_put_uint(&e, rec->job_id);
    qr_abi_put_address(&e, rec->client);
    qr_abi_put_address(&e, rec->operator_);
    qr_abi_put_uint256(&e, &rec->amount);
    qr_abi_put_bytes32_array(&e, proof, n);
    uint8_t *cd = s_finish(&e, &len);
    s_check(s_call(contract, NULL, cd, len, &out, &outlen));
    qr_abi_dec_t d;
    int ok = -1;
    qr_abi_dec_init(&d, out, outlen);
    if (qr_abi_get_bool(&d, &ok) < 0)
        fail_msg("%s", d.err);
    free(out);
    return ok;
}

static void s_topic0(const char *event, uint8_t out[32])
{
    qr_keccak256(event, strlen(event), out);
}

static void test_settlement_contract(void **state)
{
    (void)state;
    const char *binpath = getenv("QUARRY_TEST_SETTLEMENT_BIN");
    if (!binpath) {
        skip();
        return;
    }
    FILE *f = fopen(binpath, "r");
    assert_non_null(f);
    static char hex[65536];
    size_t hn = fread(hex, 1, sizeof hex - 1, f);
    fclose(f);
    hex[hn] = '\0';
    while (hn && (hex[hn - 1] == '\n' || hex[hn - 1] == '\r'))
        hex[--hn] = '\0';
    uint8_t *code;
    size_t code_len;
    assert_int_equal(qr_hex_decode_alloc(hex, &code, &code_len), 0);

    const uint8_t *broker = qr_ethkey_address(s_keys[0]);
    const uint8_t *client = qr_ethkey_address(s_keys[1]);
    const uint8_t *operator_ = qr_ethkey_address(s_keys[2]);

    /* deploy: bytecode followed by the ABI-encoded constructor argument */
    qr_abi_enc_t e;
    qr_abi_enc_init(&e, NULL);
    qr_abi_put_address(&e, broker);
    size_t alen;
    uint8_t *args = s_finish(&e, &alen);
    uint8_t *init = malloc(code_len + alen);
    assert_non_null(init);
    memcpy(init, code, code_len);
    memcpy(init + code_len, args, alen);
    uint64_t nonce;
    s_check(qr_rpc_nonce(s_rpc, broker, &nonce));
    qr_receipt_t r;
    s_send(s_keys[0], NULL, 0, init, code_len + alen, &r);
    free(init);
    free(args);
    free(code);
    assert_int_equal(r.status, 1);
    assert_true(r.has_contract);
    uint8_t contract[20];
    qr_contract_address(broker, nonce, contract);
    assert_memory_equal(r.contract_address, contract, 20);
    printf("# deploy gas %llu\n", (unsigned long long)r.gas_used);
    qr_receipt_free(&r);

    /* broker() reads back the constructor argument */
    size_t len, outlen;
    uint8_t *cd, *out;
    qr_abi_enc_init(&e, "broker()");
    cd = s_finish(&e, &len);
    s_check(s_call(contract, NULL, cd, len, &out, &outlen));
    qr_abi_dec_t d;
    uint8_t got[20];
    qr_abi_dec_init(&d, out, outlen);
    assert_int_equal(qr_abi_get_address(&d, got), 0);
    assert_memory_equal(got, broker, 20);
    free(out);

    /* the client deposits 1 ether, the operator stakes 2 */
    qr_abi_enc_init(&e, "deposit()");
    cd = s_finish(&e, &len);
    s_send(s_keys[1], contract, 1000000000000000000ULL, cd, len, &r);
    free(cd);
    assert_int_equal(r.status, 1);
    assert_int_equal(r.nlogs, 1);
    uint8_t t0[32];
    s_topic0("Deposited(address,uint256,uint256)", t0);
    assert_memory_equal(r.logs[0].topics[0], t0, 32);
    qr_receipt_free(&r);
    qr_abi_enc_init(&e, "stake()");
    cd = s_finish(&e, &len);
    s_send(s_keys[2], contract, 2000000000000000000ULL, cd, len, &r);
    free(cd);
    assert_int_equal(r.status, 1);
    qr_receipt_free(&r);

    /* a batch of 7 settlements made and hashed in C */
    enum { N = 7 };
    qr_settlement_t recs[N];
    uint8_t leaves[N][32];
    for (int i = 0; i < N; i++) {
        memset(&recs[i], 0, sizeof recs[i]);
        recs[i].job_id = 1000 + (uint64_t)i * 37;
        memcpy(recs[i].client, client, 20);
        memcpy(recs[i].operator_, operator_, 20);
        recs[i].amount = qr_u256_from_u64(1000000000000000ULL * (uint64_t)(i + 1));
        qr_settlement_leaf(&recs[i], leaves[i]);
    }
    /* the contract's own leaf function agrees */
    qr_abi_enc_init(&e, "settlementLeaf(uint64,address,address,uint256)");
    qr_abi_put_uint(&e, recs[3].job_id);
    qr_abi_put_address(&e, recs[3].client);
    qr_abi_put_address(&e, recs[3].operator_);
    qr_abi_put_uint256(&e, &recs[3].amount);
    cd = s_finish(&e, &len);
    s_check(s_call(contract, NULL, cd, len, &out, &outlen));
    assert_int_equal(outlen, 32);
    assert_memory_equal(out, leaves[3], 32);
    free(out);

    qr_merkle_t *tree = qr_merkle_new((const uint8_t(*)[32])leaves, N);
    uint8_t root[32];
    qr_merkle_root(tree, root);

    /* only the broker may post, and batch ids go in order */
    qr_abi_enc_init(&e, "postBatch(uint64,bytes32,uint32)");
    qr_abi_put_uint(&e, 0);
    qr_abi_put_bytes32(&e, root);
    qr_abi_put_uint(&e, N);
    uint8_t *post = s_finish(&e, &len);
    uint8_t *copy = malloc(len);
    memcpy(copy, post, len);
    assert_int_equal(s_call(contract, client, copy, len, &out, &outlen), QR_EINVAL);
    uint8_t sel[4];
    char want[40];
    qr_abi_selector("NotBroker()", sel);
    snprintf(want, sizeof want, "custom error 0x%02x%02x%02x%02x", sel[0], sel[1], sel[2], sel[3]);
    if (!strstr(qr_rpc_last_error(s_rpc)->message, want))
        fail_msg("'%s' lacks '%s'", qr_rpc_last_error(s_rpc)->message, want);
    s_send(s_keys[0], contract, 0, post, len, &r);
    assert_int_equal(r.status, 1);
    printf("# postBatch gas %llu for %d records\n", (unsigned long long)r.gas_used, N);
    assert_int_equal(r.nlogs, 1);
    s_topic0("BatchPosted(uint64,bytes32,uint32)", t0);
    assert_memory_equal(r.logs[0].topics[0], t0, 32);
    qr_abi_dec_init(&d, r.logs[0].data, r.logs[0].data_len);
    uint8_t logged_root[32];
    uint64_t count;
    assert_int_equal(qr_abi_get_bytes32(&d, logged_root), 0);
    assert_int_equal(qr_abi_get_uint64(&d, &count), 0);
    assert_memory_equal(logged_root, root, 32);
    assert_int_equal(count, N);
    qr_receipt_free(&r);
    /* resending batch 0 reverts BatchOutOfOrder(1, 0) */
    int rc = s_call(contract, broker, post, len, &out, &outlen);
    if (rc != QR_EINVAL)
        fail_msg("rc %d: %s", rc, qr_rpc_last_error(s_rpc)->message);
    qr_abi_selector("BatchOutOfOrder(uint64,uint64)", sel);
    snprintf(want, sizeof want, "custom error 0x%02x%02x%02x%02x", sel[0], sel[1], sel[2], sel[3]);
    assert_non_null(strstr(qr_rpc_last_error(s_rpc)->message, want));
    /* batch 1 is next; its post costs what every later one will */
    uint8_t root1[32];
    memset(root1, 0x42, 32);
    qr_abi_enc_init(&e, "postBatch(uint64,bytes32,uint32)");
    qr_abi_put_uint(&e, 1);
    qr_abi_put_bytes32(&e, root1);
    qr_abi_put_uint(&e, 100);
    cd = s_finish(&e, &len);
    s_send(s_keys[0], contract, 0, cd, len, &r);
    free(cd);
    assert_int_equal(r.status, 1);
    printf("# postBatch gas %llu for a later batch\n", (unsigned long long)r.gas_used);
    qr_receipt_free(&r);

    /* every C proof verifies on chain; a wrong amount does not */
    uint8_t proof[QR_MERKLE_MAX_DEPTH][32];
    for (int i = 0; i < N; i++) {
        int k = qr_merkle_proof(tree, (size_t)i, proof);
        assert_int_equal(
            s_verify_call(contract, 0, &recs[i], (const uint8_t(*)[32])proof, (size_t)k), 1);
    }
    qr_settlement_t forged = recs[2];
    forged.amount = qr_u256_from_u64(999);
    int k = qr_merkle_proof(tree, 2, proof);
    assert_int_equal(s_verify_call(contract, 0, &forged, (const uint8_t(*)[32])proof, (size_t)k),
                     0);
    assert_int_equal(s_verify_call(contract, 1, &recs[2], (const uint8_t(*)[32])proof, (size_t)k),
                     0);

    /* the operator claims record 4 */
    k = qr_merkle_proof(tree, 4, proof);
    qr_abi_enc_init(&e, "claim(uint64,uint64,address,uint256,bytes32[])");
    qr_abi_put_uint(&e, 0);
    qr_abi_put_uint(&e, recs[4].job_id);
    qr_abi_put_address(&e, client);
    qr_abi_put_uint256(&e, &recs[4].amount);
    qr_abi_put_bytes32_array(&e, (const uint8_t(*)[32])proof, (size_t)k);
    uint8_t *claim = s_finish(&e, &len);
    qr_u256_t before, after;
    s_balance(operator_, &before);
    s_send(s_keys[2], contract, 0, claim, len, &r);
    assert_int_equal(r.status, 1);
    printf("# claim gas %llu (proof of %d)\n", (unsigned long long)r.gas_used, k);
    s_topic0("Claimed(uint64,uint64,address,address,uint256)", t0);
    assert_int_equal(r.nlogs, 1);
    assert_memory_equal(r.logs[0].topics[0], t0, 32);
    assert_int_equal(r.logs[0].topics[2][31], (uint8_t)recs[4].job_id);
    assert_memory_equal(r.logs[0].topics[3] + 12, operator_, 20);
    s_balance(operator_, &after);
    /* the operator got the amount, less the gas it paid */
    qr_u256_t fee, gained;
    assert_int_equal(qr_u256_sub(&after, &before, &gained), 0);
    uint64_t gained64, fee64, amount64;
    assert_int_equal(qr_u256_to_u64(&gained, &gained64), 0);
    fee = r.effective_gas_price;
    assert_int_equal(qr_u256_to_u64(&fee, &fee64), 0);
    assert_int_equal(qr_u256_to_u64(&recs[4].amount, &amount64), 0);
    assert_int_equal(gained64 + fee64 * r.gas_used, amount64);
    qr_receipt_free(&r);
    /* a second claim of the same job reverts AlreadyClaimed */
    assert_int_equal(s_call(contract, operator_, claim, len, &out, &outlen), QR_EINVAL);
    qr_abi_selector("AlreadyClaimed(uint64)", sel);
    snprintf(want, sizeof want, "custom error 0x%02x%02x%02x%02x", sel[0], sel[1], sel[2], sel[3]);
    assert_non_null(strstr(qr_rpc_last_error(s_rpc)->message, want));

    /* the broker slashes the operator, with a reason */
    qr_abi_enc_init(&e, "slash(address,uint256,string)");
    qr_abi_put_address(&e, operator_);
    qr_u256_t cut = qr_u256_from_u64(500000000000000000ULL);
    qr_abi_put_uint256(&e, &cut);
    qr_abi_put_bytes(&e, "result failed verification", 26);
    cd = s_finish(&e, &len);
    s_send(s_keys[0], contract, 0, cd, len, &r);
    free(cd);
    assert_int_equal(r.status, 1);
    s_topic0("Slashed(address,uint256,string)", t0);
    assert_memory_equal(r.logs[0].topics[0], t0, 32);
    qr_abi_dec_init(&d, r.logs[0].data, r.logs[0].data_len);
    qr_u256_t amt;
    const uint8_t *reason;
    size_t rlen;
    assert_int_equal(qr_abi_get_uint256(&d, &amt), 0);
    assert_int_equal(qr_abi_get_bytes(&d, &reason, &rlen), 0);
    assert_memory_equal(amt.b, cut.b, 32);
    assert_int_equal(rlen, 26);
    assert_memory_equal(reason, "result failed verification", 26);
    qr_receipt_free(&r);

    /* stakes(operator) is 1.5 ether now */
    qr_abi_enc_init(&e, "stakes(address)");
    qr_abi_put_address(&e, operator_);
    cd = s_finish(&e, &len);
    s_check(s_call(contract, NULL, cd, len, &out, &outlen));
    qr_abi_dec_init(&d, out, outlen);
    uint64_t st;
    assert_int_equal(qr_abi_get_uint64(&d, &st), 0);
    assert_int_equal(st, 1500000000000000000ULL);
    free(out);
    qr_merkle_destroy(&tree);
}

int main(void)
{
    if (!getenv("QUARRY_TEST_ETH_URL")) {
        fprintf(stderr, "test_chain_anvil: SKIP: no QUARRY_TEST_ETH_URL (run via with_anvil.sh)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transfer),
        cmocka_unit_test(test_settlement_contract),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
