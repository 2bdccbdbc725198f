/* quarry-mirror's loop; see mirror.h for the design. */
#include "mirror.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "abi.h"
#include "err.h"
#include "ethutil.h"
#include "httpd.h"
#include "merkle.h"
#include "mirror_core.h"
#include "mirror_db.h"
#include "rpc.h"
#include "tx.h"
#include "util.h"

/* Step outcomes. */
enum { S_IDLE = 0, S_PROGRESS = 1, S_RETRY = 2, S_FATAL_CFG = 3, S_FATAL_STATE = 4 };

/* Proof trees kept for /proof and /records: an operator's claims walk its
 * records in job order, which cluster by batch. */
#define S_TREES 4
/* How many records /records serves per page. */
#define S_PAGE 256
/* How often the accounts that hold settlements back are logged. */
#define S_WAITING_LOG_MS 30000
/* Counters for /metrics are re-read at most this often. */
#define S_STATS_MS 2000

typedef struct {
    bool used;
    uint64_t batch_id;
    qr_merkle_t *tree;
    int64_t used_at;
} s_tree_t;

struct qr_mirror {
    qr_mirror_cfg_t cfg;
    qr_ethkey_t *key;
    uint8_t contract[QR_ADDR_LEN];
    qr_u256_t fee_cap; /* 0 = none */
    qr_mirror_db_t *db;
    qr_rpc_t *rpc;
    qr_httpd_t *httpd;
    bool locked;        /* holds the mirror lock on this db connection */
    bool chain_checked; /* step 2 done since the node was last unreachable */
    uint64_t chain_id;
    int64_t backoff_ms;
    int64_t last_bcast_ms;   /* last re-broadcast of the oldest pending tx */
    int64_t last_waiting_ms; /* last log of accounts without an address */
    bool fault_fired;
    /* health, for /healthz and /metrics */
    bool db_up, node_up;
    char last_error[1024];
    uint64_t rpc_errors, db_errors, fee_bumps, resigns, posted, confirmed;
    qr_mirror_stats_t stats;
    int64_t stats_at;
    bool stats_ok;
    s_tree_t trees[S_TREES];
    qr_mirror_rec_t *recs; /* scratch for building: batch_size records */
};

static void s_tree_drop_all(qr_mirror_t *self)
{
    for (int i = 0; i < S_TREES; i++) {
        qr_merkle_destroy(&self->trees[i].tree);
        self->trees[i].used = false;
    }
}

qr_mirror_t *qr_mirror_new(const qr_mirror_cfg_t *cfg, char *err, size_t errlen)
{
    if (!cfg->db || !*cfg->db || !cfg->rpc_url || !*cfg->rpc_url) {
        snprintf(err, errlen, "--db and --rpc-url are required");
        return NULL;
    }
    if (cfg->batch_size < 1 || cfg->batch_size > 1 << 20) {
        snprintf(err, errlen, "--batch-size must be 1..1048576");
        return NULL;
    }
    if (cfg->confirmations < 1 || cfg->poll_ms < 1 || cfg->stuck_ms < 1 ||
        cfg->batch_age_ms < 0 || cfg->rpc_timeout_ms < 1 || cfg->backoff_max_ms < 1 ||
        cfg->max_unconfirmed < 1 || cfg->gas_limit < 0 || cfg->max_fee_gwei < 0) {
        snprintf(err, errlen, "--confirmations, --poll-ms, --stuck-ms, --rpc-timeout-ms, "
                              "--backoff-max-ms and --max-unconfirmed must be positive");
        return NULL;
    }
    if (cfg->fee_bump_pct < 10 || cfg->fee_bump_pct > 1000) {
        snprintf(err, errlen, "--fee-bump-pct must be 10..1000 (nodes replace a transaction "
                              "only for a rise of at least 10%%)");
        return NULL;
    }
    if (cfg->wei_per_unit < 1) {
        snprintf(err, errlen, "--wei-per-unit must be at least 1");
        return NULL;
    }
    qr_mirror_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = *cfg;
    if (!cfg->contract || qr_address_from_text(cfg->contract, self->contract) < 0) {
        snprintf(err, errlen, "--contract: '%s' is not a 0x address (or its EIP-55 checksum "
                              "is wrong)",
                 cfg->contract ? cfg->contract : "");
        goto fail;
    }
    if (!cfg->key_file || !*cfg->key_file) {
        snprintf(err, errlen, "--key-file is required (the broker's Ethereum key)");
        goto fail;
    }
    if (!(self->key = qr_ethkey_load(cfg->key_file, err, errlen)))
        goto fail;
    if (cfg->max_fee_gwei > 0) {
        qr_u256_t g = qr_u256_from_u64((uint64_t)cfg->max_fee_gwei);
        qr_u256_mul_small(&g, 1000000000u, &self->fee_cap);
    }
    if (!(self->recs = calloc((size_t)cfg->batch_size, sizeof *self->recs))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!(self->rpc = qr_rpc_new(cfg->rpc_url, (int)cfg->rpc_timeout_ms, err, errlen)))
        goto fail;
    if (cfg->metrics_addr && *cfg->metrics_addr &&
        !(self->httpd = qr_httpd_new(cfg->metrics_addr, err, errlen)))
        goto fail;
    snprintf(self->last_error, sizeof self->last_error, "starting");
    return self;
fail:
    qr_mirror_destroy(&self);
    return NULL;
}

void qr_mirror_destroy(qr_mirror_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_mirror_t *self = *self_p;
    s_tree_drop_all(self);
    qr_httpd_destroy(&self->httpd);
    qr_rpc_destroy(&self->rpc);
    qr_mirror_db_destroy(&self->db);
    qr_ethkey_destroy(&self->key);
    free(self->recs);
    free(self);
    *self_p = NULL;
}

/* ---- failures -------------------------------------------------------------------- */

static int s_db_fail(qr_mirror_t *self, const char *what, const char *err)
{
    self->db_errors++;
    snprintf(self->last_error, sizeof self->last_error, "%.200s: %.512s", what, err);
    qr_log(QR_LOG_WARN, "database step failed", "what=%s reason=\"%s\"", what, err);
    if (!qr_mirror_db_ok(self->db)) {
        /* the lock went with the connection: take it again on the next */
        qr_mirror_db_destroy(&self->db);
        self->locked = false;
        self->db_up = false;
        s_tree_drop_all(self);
    }
    return S_RETRY;
}

static int s_rpc_fail(qr_mirror_t *self, const char *what)
{
    const qr_rpc_error_t *e = qr_rpc_last_error(self->rpc);
    self->rpc_errors++;
    snprintf(self->last_error, sizeof self->last_error, "%.200s: %.512s", what, e->message);
    qr_log(QR_LOG_WARN, "node call failed", "what=%s code=%s reason=\"%s\"", what,
           qr_errname(e->code), e->message);
    if (e->code == QR_EUNAVAIL || e->code == QR_ETIMEOUT || e->code == QR_EIO) {
        self->node_up = false;
        /* a node that comes back may be another one (or a restarted one):
         * check chain and contract again before trusting it */
        self->chain_checked = false;
    }
    return S_RETRY;
}

/* Case-insensitive substring test for node error messages, whose wording
 * differs between clients ("nonce too low", "Nonce too low"). */
static bool s_says(const char *msg, const char *what)
{
    size_t n = strlen(what);
    for (const char *p = msg; *p; p++) {
        size_t i = 0;
        while (i < n && p[i] && tolower((unsigned char)p[i]) == tolower((unsigned char)what[i]))
            i++;
        if (i == n)
            return true;
    }
    return false;
}

/* ---- contract reads --------------------------------------------------------------- */

static int s_call(qr_mirror_t *self, uint8_t *calldata, size_t len, uint8_t **out,
                  size_t *outlen)
{
    qr_call_t call = {.has_to = 1, .data = calldata, .data_len = len};
    memcpy(call.to, self->contract, QR_ADDR_LEN);
    int rc = qr_rpc_call(self->rpc, &call, NULL, out, outlen);
    free(calldata);
    return rc;
}

static int s_next_batch_id(qr_mirror_t *self, uint64_t *out)
{
    uint8_t *cd, *ret = NULL;
    size_t len, rlen = 0;
    if (qr_mirror_simple_calldata("nextBatchId()", 0, 0, &cd, &len) < 0)
        return QR_ENOMEM;
    int rc = s_call(self, cd, len, &ret, &rlen);
    if (rc != QR_OK)
        return rc;
    qr_abi_dec_t d;
    qr_abi_dec_init(&d, ret, rlen);
    rc = qr_abi_get_uint64(&d, out) < 0 ? QR_EPROTO : QR_OK;
    free(ret);
    return rc;
}

static int s_batch_root(qr_mirror_t *self, uint64_t id, uint8_t root[32])
{
    uint8_t *cd, *ret = NULL;
    size_t len, rlen = 0;
    if (qr_mirror_simple_calldata("batchRoots(uint64)", 1, id, &cd, &len) < 0)
        return QR_ENOMEM;
    int rc = s_call(self, cd, len, &ret, &rlen);
    if (rc != QR_OK)
        return rc;
    qr_abi_dec_t d;
    qr_abi_dec_init(&d, ret, rlen);
    rc = qr_abi_get_bytes32(&d, root) < 0 ? QR_EPROTO : QR_OK;
    free(ret);
    return rc;
}

/* Step 2: the node is on the expected chain and the contract is ours. */
static int s_check_chain(qr_mirror_t *self)
{
    uint64_t chain;
    if (qr_rpc_chain_id(self->rpc, &chain) != QR_OK)
        return s_rpc_fail(self, "eth_chainId");
    self->node_up = true;
    if (self->cfg.chain_id && chain != self->cfg.chain_id) {
        qr_log(QR_LOG_ERROR, "node is on another chain",
               "want=%" PRIu64 " node=%" PRIu64, self->cfg.chain_id, chain);
        return S_FATAL_CFG;
    }
    char caddr[43], kaddr[43], baddr[43];
    qr_address_to_text(self->contract, caddr);
    qr_address_to_text(qr_ethkey_address(self->key), kaddr);
    uint8_t *cd, *ret = NULL;
    size_t len, rlen = 0;
    if (qr_mirror_simple_calldata("broker()", 0, 0, &cd, &len) < 0)
        return S_RETRY;
    int rc = s_call(self, cd, len, &ret, &rlen);
    if (rc == QR_EINVAL || (rc == QR_OK && rlen == 0)) {
        free(ret);
        qr_log(QR_LOG_ERROR, "no QuarrySettlement at the contract address on this chain",
               "contract=%s chain=%" PRIu64, caddr, chain);
        return S_FATAL_CFG;
    }
    if (rc != QR_OK)
        return s_rpc_fail(self, "broker()");
    uint8_t broker[QR_ADDR_LEN];
    qr_abi_dec_t d;
    qr_abi_dec_init(&d, ret, rlen);
    int bad = qr_abi_get_address(&d, broker);
    free(ret);
    if (bad < 0) {
        qr_log(QR_LOG_ERROR, "the contract's broker() answer is malformed", "contract=%s", caddr);
        return S_FATAL_CFG;
    }
    if (memcmp(broker, qr_ethkey_address(self->key), QR_ADDR_LEN) != 0) {
        qr_address_to_text(broker, baddr);
        qr_log(QR_LOG_ERROR, "the contract's broker is not this key: it would refuse every post",
               "contract=%s broker=%s key=%s", caddr, baddr, kaddr);
        return S_FATAL_CFG;
    }
    /* the database's batches must be this contract's: numbering restarts
     * at 0 with a new contract and the old rows would shadow it */
    qr_mirror_batch_t last;
    bool found;
    char err[256];
    if (qr_mirror_db_last_batch(self->db, &last, &found, err, sizeof err) != QR_OK)
        return s_db_fail(self, "last batch", err);
    if (found && (memcmp(last.contract, self->contract, QR_ADDR_LEN) != 0 ||
                  last.chain_id != chain)) {
        char other[43];
        qr_address_to_text(last.contract, other);
        qr_log(QR_LOG_ERROR, "this database mirrors to another contract",
               "database_contract=%s database_chain=%" PRIu64 " contract=%s chain=%" PRIu64,
               other, last.chain_id, caddr, chain);
        return S_FATAL_CFG;
    }
    self->chain_id = chain;
    self->chain_checked = true;
    qr_log(QR_LOG_INFO, "node and contract checked",
           "chain=%" PRIu64 " contract=%s broker=%s", chain, caddr, kaddr);
    return S_PROGRESS;
}

/* ---- transactions ---------------------------------------------------------------- */

/* Signs postBatch for batch b with nonce and fees into tx (tx->raw
 * malloc'd).  gas: the limit to use, or 0 to estimate. */
static int s_sign_post(qr_mirror_t *self, const qr_mirror_batch_t *b, uint64_t nonce,
                       const qr_u256_t *tip, const qr_u256_t *max_fee, uint64_t gas,
                       qr_mirror_tx_t *out)
{
    uint8_t *cd;
    size_t len;
    if (qr_mirror_post_calldata(b->id, b->root, b->count, &cd, &len) < 0)
        return S_RETRY;
    if (!gas) {
        if (self->cfg.gas_limit > 0)
            gas = (uint64_t)self->cfg.gas_limit;
        else {
            qr_call_t call = {.has_from = 1, .has_to = 1, .data = cd, .data_len = len};
            memcpy(call.from, qr_ethkey_address(self->key), QR_ADDR_LEN);
            memcpy(call.to, self->contract, QR_ADDR_LEN);
            int rc = qr_rpc_estimate_gas(self->rpc, &call, &gas);
            if (rc != QR_OK) {
                free(cd);
                return s_rpc_fail(self, "estimate postBatch");
            }
            gas += gas / 4;
        }
    }
    qr_tx_t tx = {.chain_id = self->chain_id, .nonce = nonce, .max_priority_fee = *tip,
                  .max_fee = *max_fee, .gas = gas, .has_to = 1, .data = cd, .data_len = len};
    memcpy(tx.to, self->contract, QR_ADDR_LEN);
    qr_signed_tx_t st;
    char err[160];
    int rc = qr_tx_sign(&tx, self->key, &st, err, sizeof err);
    free(cd);
    if (rc < 0) {
        qr_log(QR_LOG_ERROR, "cannot sign", "reason=\"%s\"", err);
        return S_RETRY;
    }
    memset(out, 0, sizeof *out);
    memcpy(out->hash, st.hash, 32);
    out->nonce = nonce;
    out->tip = *tip;
    out->max_fee = *max_fee;
    out->gas = gas;
    out->raw = st.raw; /* ownership moves */
    out->raw_len = st.raw_len;
    return S_PROGRESS;
}

/* Current fees, within the cap. */
static int s_fees(qr_mirror_t *self, qr_u256_t *tip, qr_u256_t *max_fee)
{
    if (qr_rpc_fees(self->rpc, tip, max_fee) != QR_OK)
        return s_rpc_fail(self, "fees");
    if (!qr_u256_is_zero(&self->fee_cap)) {
        if (qr_u256_cmp(max_fee, &self->fee_cap) > 0)
            *max_fee = self->fee_cap;
        if (qr_u256_cmp(tip, max_fee) > 0)
            *tip = *max_fee;
    }
    return S_PROGRESS;
}

static void s_fault(qr_mirror_t *self, const char *where, uint64_t batch_id)
{
#ifdef QR_TEST_FAULTS
    if (self->fault_fired || !self->cfg.fault || strcmp(self->cfg.fault, where) != 0)
        return;
    if (self->cfg.fault_batch >= 0 && (uint64_t)self->cfg.fault_batch != batch_id)
        return;
    qr_log(QR_LOG_WARN, "TEST FAULT: exiting", "fault=%s batch=%" PRIu64, where, batch_id);
    /* like kill -9: no clean-up, no flush of anything not yet committed */
    _exit(3);
#else
    (void)self;
    (void)where;
    (void)batch_id;
#endif
}

/* Sends tx of batch b.  A node that already has it, or the same nonce
 * mined, is not a failure here: the receipt search settles it. */
static int s_send(qr_mirror_t *self, const qr_mirror_batch_t *b, const qr_mirror_tx_t *tx,
                  bool *nonce_gone, bool *underpriced)
{
    uint8_t hash[32];
    char h[67];
    qr_hex_encode(tx->hash, 32, h);
    *nonce_gone = *underpriced = false;
    int rc = qr_rpc_send_raw(self->rpc, tx->raw, tx->raw_len, hash);
    if (rc == QR_OK) {
        self->last_bcast_ms = qr_clock_ms();
        qr_log(QR_LOG_DEBUG, "transaction sent", "batch=%" PRIu64 " tx=%s nonce=%" PRIu64, b->id,
               h, tx->nonce);
        return S_PROGRESS;
    }
    const qr_rpc_error_t *e = qr_rpc_last_error(self->rpc);
    if (rc == QR_EINVAL) {
        if (s_says(e->message, "already known") || s_says(e->message, "already imported") ||
            s_says(e->message, "alreadyknown") || s_says(e->message, "known transaction")) {
            self->last_bcast_ms = qr_clock_ms();
            return S_PROGRESS;
        }
        if (s_says(e->message, "nonce too low") || s_says(e->message, "nonce has already been") ||
            s_says(e->message, "noncetoolow")) {
            *nonce_gone = true;
            return S_PROGRESS;
        }
        if (s_says(e->message, "underpriced") || s_says(e->message, "fee too low") ||
            s_says(e->message, "replacement")) {
            *underpriced = true;
            return S_PROGRESS;
        }
    }
    return s_rpc_fail(self, "eth_sendRawTransaction");
}

/* A new transaction for batch b: same nonce with higher fees (bump), or a
 * fresh nonce (the old one was taken).  Persisted before it is sent. */
static int s_replace(qr_mirror_t *self, const qr_mirror_batch_t *b, const qr_mirror_tx_t *last,
                     bool fresh_nonce, bool more_gas)
{
    qr_u256_t tip, max_fee;
    int rc = s_fees(self, &tip, &max_fee);
    if (rc != S_PROGRESS)
        return rc;
    uint64_t nonce = last->nonce;
    uint64_t gas = more_gas ? last->gas * 2 : last->gas;
    if (fresh_nonce) {
        if (qr_rpc_nonce(self->rpc, qr_ethkey_address(self->key), &nonce) != QR_OK)
            return s_rpc_fail(self, "eth_getTransactionCount");
    } else {
        qr_u256_t t2, f2;
        qr_mirror_bump(&last->tip, (unsigned)self->cfg.fee_bump_pct, &tip, &self->fee_cap, &t2);
        qr_mirror_bump(&last->max_fee, (unsigned)self->cfg.fee_bump_pct, &max_fee, &self->fee_cap,
                       &f2);
        if (qr_u256_cmp(&t2, &f2) > 0)
            t2 = f2;
        if (qr_u256_cmp(&f2, &last->max_fee) <= 0) {
            char cap[80];
            qr_u256_to_dec(&self->fee_cap, cap, sizeof cap);
            qr_log(QR_LOG_WARN, "stuck transaction is at the fee cap; waiting",
                   "batch=%" PRIu64 " max_fee_wei=%s", b->id, cap);
            return S_IDLE;
        }
        tip = t2;
        max_fee = f2;
    }
    qr_mirror_tx_t tx;
    rc = s_sign_post(self, b, nonce, &tip, &max_fee, gas, &tx);
    if (rc != S_PROGRESS)
        return rc;
    char err[256], h[67], fee[80];
    if (qr_mirror_db_add_tx(self->db, b->id, &tx, err, sizeof err) != QR_OK) {
        free(tx.raw);
        return s_db_fail(self, "add transaction", err);
    }
    qr_hex_encode(tx.hash, 32, h);
    qr_u256_to_dec(&max_fee, fee, sizeof fee);
    if (fresh_nonce) {
        self->resigns++;
        qr_log(QR_LOG_WARN, "batch re-signed with a fresh nonce",
               "batch=%" PRIu64 " nonce=%" PRIu64 " tx=%s gas=%" PRIu64, b->id, nonce, h, gas);
    } else {
        self->fee_bumps++;
        qr_log(QR_LOG_WARN, "stuck transaction re-priced",
               "batch=%" PRIu64 " nonce=%" PRIu64 " tx=%s max_fee_wei=%s", b->id, nonce, h, fee);
    }
    bool gone, under;
    qr_mirror_batch_t nb = *b;
    nb.nonce = nonce;
    rc = s_send(self, &nb, &tx, &gone, &under);
    free(tx.raw);
    if (rc == S_PROGRESS && !gone && !under) {
        if (qr_mirror_db_mark_sent(self->db, b->id, err, sizeof err) != QR_OK)
            return s_db_fail(self, "mark sent", err);
    }
    return rc == S_RETRY ? S_RETRY : S_PROGRESS;
}

/* ---- step 3: an open batch ------------------------------------------------------- */

static int s_confirm(qr_mirror_t *self, const qr_mirror_batch_t *b)
{
    uint64_t head;
    char err[256];
    if (qr_rpc_block_number(self->rpc, &head) != QR_OK)
        return s_rpc_fail(self, "eth_blockNumber");
    if (head + 1 < b->block + (uint64_t)self->cfg.confirmations)
        return S_IDLE;
    qr_receipt_t r;
    int rc = qr_rpc_receipt(self->rpc, b->tx_hash, &r);
    if (rc == QR_ENOTREADY) {
        qr_log(QR_LOG_WARN, "mined batch lost its receipt (reorganisation); sending again",
               "batch=%" PRIu64 " block=%" PRIu64, b->id, b->block);
        if (qr_mirror_db_mark_unmined(self->db, b->id, err, sizeof err) != QR_OK)
            return s_db_fail(self, "mark unmined", err);
        return S_PROGRESS;
    }
    if (rc != QR_OK)
        return s_rpc_fail(self, "eth_getTransactionReceipt");
    uint64_t block = r.block_number, gas = r.gas_used;
    qr_u256_t price = r.effective_gas_price;
    qr_receipt_free(&r);
    if (block != b->block) {
        /* re-mined elsewhere: count again from the new block */
        if (qr_mirror_db_mark_mined(self->db, b->id, b->tx_hash, block, gas, &price, err,
                                    sizeof err) != QR_OK)
            return s_db_fail(self, "mark mined", err);
        return S_PROGRESS;
    }
    if (qr_mirror_db_mark_confirmed(self->db, b->id, err, sizeof err) != QR_OK)
        return s_db_fail(self, "mark confirmed", err);
    self->confirmed++;
    qr_log(QR_LOG_INFO, "batch confirmed",
           "batch=%" PRIu64 " records=%u block=%" PRIu64 " head=%" PRIu64, b->id, b->count,
           b->block, head);
    return S_PROGRESS;
}

static int s_advance(qr_mirror_t *self, const qr_mirror_batch_t *b)
{
    char err[256];
    if (!strcmp(b->state, "mined"))
        return s_confirm(self, b);
    qr_mirror_tx_t *txs = NULL;
    size_t ntx = 0;
    if (qr_mirror_db_batch_txs(self->db, b->id, &txs, &ntx, err, sizeof err) != QR_OK)
        return s_db_fail(self, "batch transactions", err);
    int rc = S_IDLE;
    if (ntx == 0) {
        qr_log(QR_LOG_ERROR, "batch has no transaction", "batch=%" PRIu64, b->id);
        rc = S_FATAL_STATE;
        goto done;
    }
    /* a receipt for any of its transactions, newest first */
    bool reverted = false;
    for (size_t i = ntx; i-- > 0;) {
        qr_receipt_t r;
        int q = qr_rpc_receipt(self->rpc, txs[i].hash, &r);
        if (q == QR_ENOTREADY)
            continue;
        if (q != QR_OK) {
            rc = s_rpc_fail(self, "eth_getTransactionReceipt");
            goto done;
        }
        self->node_up = true;
        if (r.status == 1) {
            char h[67];
            qr_hex_encode(txs[i].hash, 32, h);
            int m = qr_mirror_db_mark_mined(self->db, b->id, txs[i].hash, r.block_number,
                                            r.gas_used, &r.effective_gas_price, err, sizeof err);
            uint64_t block = r.block_number, gas = r.gas_used;
            qr_receipt_free(&r);
            if (m != QR_OK) {
                rc = s_db_fail(self, "mark mined", err);
                goto done;
            }
            self->posted++;
            qr_log(QR_LOG_INFO, "batch mined",
                   "batch=%" PRIu64 " records=%u tx=%s block=%" PRIu64 " gas=%" PRIu64
                   " gas_per_record=%" PRIu64,
                   b->id, b->count, h, block, gas, b->count ? gas / b->count : 0);
            if (self->cfg.confirmations <= 1) {
                qr_mirror_batch_t mb = *b;
                memcpy(mb.tx_hash, txs[i].hash, 32);
                mb.block = block;
                snprintf(mb.state, sizeof mb.state, "mined");
                s_confirm(self, &mb);
            }
            rc = S_PROGRESS;
            goto done;
        }
        qr_receipt_free(&r);
        reverted = true;
    }
    const qr_mirror_tx_t *last = &txs[ntx - 1];
    if (reverted) {
        /* postBatch reverted: out of gas, or the batch id was taken */
        uint64_t next;
        uint8_t root[32];
        if (s_next_batch_id(self, &next) != QR_OK || s_batch_root(self, b->id, root) != QR_OK) {
            rc = s_rpc_fail(self, "contract state");
            goto done;
        }
        if (next > b->id && memcmp(root, b->root, 32) != 0) {
            qr_log(QR_LOG_ERROR, "the contract holds another root for this batch id: was the "
                                 "broker key used by another mirror?",
                   "batch=%" PRIu64, b->id);
            rc = S_FATAL_STATE;
            goto done;
        }
        if (next == b->id) {
            qr_log(QR_LOG_WARN, "postBatch reverted; signing again with more gas",
                   "batch=%" PRIu64 " gas=%" PRIu64, b->id, last->gas);
            rc = s_replace(self, b, last, true, true);
            goto done;
        }
        /* next > id and our root: another of our transactions posted it
         * and its receipt is not visible yet; wait for it */
        rc = S_IDLE;
        goto done;
    }
    bool gone = false, under = false;
    int64_t now = qr_clock_ms();
    if (!strcmp(b->state, "signed")) {
        rc = s_send(self, b, last, &gone, &under);
        if (rc == S_PROGRESS && !gone && !under) {
            if (qr_mirror_db_mark_sent(self->db, b->id, err, sizeof err) != QR_OK) {
                rc = s_db_fail(self, "mark sent", err);
                goto done;
            }
            s_fault(self, "exit-after-send", b->id);
        }
        if (rc != S_PROGRESS || (!gone && !under))
            goto done;
    } else if (last->age_ms >= self->cfg.stuck_ms) {
        /* waited long enough: has another transaction taken the nonce? */
        uint64_t latest;
        json_t *res = NULL;
        char a[43];
        qr_hex_encode(qr_ethkey_address(self->key), QR_ADDR_LEN, a);
        if (qr_rpc_request(self->rpc, "eth_getTransactionCount", json_pack("[s, s]", a, "latest"),
                           &res) != QR_OK) {
            rc = s_rpc_fail(self, "eth_getTransactionCount");
            goto done;
        }
        int bad = !json_is_string(res) || qr_quantity_to_u64(json_string_value(res), &latest) < 0;
        json_decref(res);
        if (bad) {
            rc = S_RETRY;
            goto done;
        }
        if (latest > last->nonce)
            gone = true; /* mined, but none of ours: checked above */
        else
            under = true; /* still pending: re-price */
    } else if (now - self->last_bcast_ms >= self->cfg.stuck_ms / 2) {
        /* a node restarted without its pool forgets pending transactions:
         * broadcasting the same bytes again is harmless */
        rc = s_send(self, b, last, &gone, &under);
        if (rc != S_PROGRESS)
            goto done;
        rc = S_IDLE;
        if (!gone && !under)
            goto done;
    } else {
        rc = S_IDLE;
        goto done;
    }
    if (gone) {
        /* the nonce is used and no receipt is ours: unless the contract
         * already has this batch (then a receipt will show up), sign it
         * again with a fresh nonce; the contract's batch order makes a
         * second post impossible either way */
        uint64_t next;
        if (s_next_batch_id(self, &next) != QR_OK) {
            rc = s_rpc_fail(self, "nextBatchId");
            goto done;
        }
        if (next > b->id) {
            rc = S_IDLE;
            goto done;
        }
        rc = s_replace(self, b, last, true, false);
    } else if (under) {
        rc = s_replace(self, b, last, false, false);
    }
done:
    qr_mirror_txs_free(&txs, ntx);
    return rc;
}

/* ---- step 4: a new batch ---------------------------------------------------------- */

static void s_log_waiting(qr_mirror_t *self)
{
    int64_t now = qr_clock_ms();
    if (self->last_waiting_ms && now - self->last_waiting_ms < S_WAITING_LOG_MS)
        return;
    self->last_waiting_ms = now;
    qr_mirror_waiting_t w[8];
    size_t n = 0;
    char err[256];
    if (qr_mirror_db_waiting(self->db, w, 8, &n, err, sizeof err) != QR_OK)
        return;
    for (size_t i = 0; i < n; i++)
        qr_log(QR_LOG_WARN, "settlements wait for an Ethereum address",
               "account=\"%s\" account_id=%" PRIu64 " jobs=%" PRIu64
               " fix=\"quarry-mirror address %s 0x...\"",
               w[i].name, w[i].account_id, w[i].jobs, w[i].name);
}

static int s_build(qr_mirror_t *self)
{
    char err[256];
    size_t n = 0;
    int64_t age = 0;
    s_log_waiting(self);
    if (qr_mirror_db_eligible(self->db, (size_t)self->cfg.batch_size, self->cfg.wei_per_unit,
                              self->recs, &n, &age, err, sizeof err) != QR_OK)
        return s_db_fail(self, "eligible settlements", err);
    if (!qr_mirror_due(n, (size_t)self->cfg.batch_size, age, self->cfg.batch_age_ms))
        return S_IDLE;

    qr_mirror_batch_t last;
    bool found;
    if (qr_mirror_db_last_batch(self->db, &last, &found, err, sizeof err) != QR_OK)
        return s_db_fail(self, "last batch", err);
    uint64_t id = found ? last.id + 1 : 0, next;
    if (s_next_batch_id(self, &next) != QR_OK)
        return s_rpc_fail(self, "nextBatchId");
    if (next > id) {
        qr_log(QR_LOG_ERROR, "the contract has batches this database does not know: restored "
                             "from an old backup, or the key posted elsewhere?",
               "contract_next=%" PRIu64 " database_next=%" PRIu64, next, id);
        return S_FATAL_STATE;
    }
    if (next < id)
        return S_IDLE; /* a mined batch is not visible on chain yet (reorg): wait */

    qr_merkle_t *tree = qr_mirror_tree(self->recs, n);
    if (!tree)
        return S_RETRY;
    qr_mirror_batch_t b;
    memset(&b, 0, sizeof b);
    b.id = id;
    b.chain_id = self->chain_id;
    memcpy(b.contract, self->contract, QR_ADDR_LEN);
    qr_merkle_root(tree, b.root);
    qr_merkle_destroy(&tree);
    b.count = (uint32_t)n;

    uint64_t nonce;
    if (qr_rpc_nonce(self->rpc, qr_ethkey_address(self->key), &nonce) != QR_OK)
        return s_rpc_fail(self, "eth_getTransactionCount");
    if (found && nonce <= last.nonce)
        nonce = last.nonce + 1;
    b.nonce = nonce;
    qr_u256_t tip, max_fee;
    int rc = s_fees(self, &tip, &max_fee);
    if (rc != S_PROGRESS)
        return rc;
    qr_mirror_tx_t tx;
    rc = s_sign_post(self, &b, nonce, &tip, &max_fee, 0, &tx);
    if (rc != S_PROGRESS)
        return rc;
    memcpy(b.tx_hash, tx.hash, 32);
    /* the point of no return: from this commit on, these settlements
     * belong to batch id and only this batch's transactions post them */
    if (qr_mirror_db_insert_batch(self->db, &b, self->recs, n, &tx, err, sizeof err) != QR_OK) {
        free(tx.raw);
        return s_db_fail(self, "insert batch", err);
    }
    char h[67], r[67];
    qr_hex_encode(tx.hash, 32, h);
    qr_hex_encode(b.root, 32, r);
    qr_log(QR_LOG_INFO, "batch built",
           "batch=%" PRIu64 " records=%zu oldest_ms=%" PRId64 " root=%s nonce=%" PRIu64
           " tx=%s gas_limit=%" PRIu64,
           id, n, age, r, nonce, h, tx.gas);
    s_fault(self, "exit-after-persist", id);
    bool gone, under;
    snprintf(b.state, sizeof b.state, "signed");
    rc = s_send(self, &b, &tx, &gone, &under);
    free(tx.raw);
    if (rc != S_PROGRESS)
        return rc; /* persisted: the next step sends it again */
    if (!gone && !under) {
        if (qr_mirror_db_mark_sent(self->db, id, err, sizeof err) != QR_OK)
            return s_db_fail(self, "mark sent", err);
        s_fault(self, "exit-after-send", id);
    }
    return S_PROGRESS;
}

/* ---- one step --------------------------------------------------------------------- */

static int s_step(qr_mirror_t *self)
{
    char err[256];
    if (!self->db) {
        self->db = qr_mirror_db_new(self->cfg.db, err, sizeof err);
        if (!self->db) {
            self->db_errors++;
            self->db_up = false;
            snprintf(self->last_error, sizeof self->last_error, "%s", err);
            qr_log(QR_LOG_WARN, "database unavailable", "reason=\"%s\"", err);
            return S_RETRY;
        }
        int rc = qr_mirror_db_schema_ok(self->db, err, sizeof err);
        if (rc != QR_OK) {
            if (rc == QR_ENOTFOUND)
                qr_log(QR_LOG_ERROR, "database schema is too old for the mirror",
                       "fix=\"quarry-broker migrate (or quarry-mirror migrate)\"");
            qr_mirror_db_destroy(&self->db);
            self->db_errors++;
            snprintf(self->last_error, sizeof self->last_error, "schema: %s", err);
            return S_RETRY;
        }
        self->db_up = true;
    }
    if (!self->locked) {
        bool got;
        if (qr_mirror_db_lock(self->db, &got, err, sizeof err) != QR_OK)
            return s_db_fail(self, "lock", err);
        if (!got) {
            snprintf(self->last_error, sizeof self->last_error,
                     "standing by: another mirror holds the lock");
            qr_log(QR_LOG_INFO, "another mirror is active on this database; standing by", NULL);
            return S_RETRY;
        }
        self->locked = true;
        qr_log(QR_LOG_INFO, "mirror active", NULL);
    }
    if (!self->chain_checked)
        return s_check_chain(self);

    qr_mirror_batch_t *open = NULL;
    size_t nopen = 0;
    if (qr_mirror_db_open_batches(self->db, &open, &nopen, err, sizeof err) != QR_OK)
        return s_db_fail(self, "open batches", err);
    int rc = S_IDLE;
    size_t pending = 0, mined = 0;
    for (size_t i = 0; i < nopen; i++) {
        int r = s_advance(self, &open[i]);
        if (r == S_PROGRESS)
            rc = S_PROGRESS;
        else if (r != S_IDLE) {
            free(open);
            return r;
        }
    }
    free(open);
    /* count again after the changes above */
    if (qr_mirror_db_open_batches(self->db, &open, &nopen, err, sizeof err) != QR_OK)
        return s_db_fail(self, "open batches", err);
    for (size_t i = 0; i < nopen; i++) {
        if (!strcmp(open[i].state, "mined"))
            mined++;
        else
            pending++;
    }
    free(open);
    if (pending == 0 && mined < (size_t)self->cfg.max_unconfirmed) {
        int r = s_build(self);
        if (r != S_IDLE)
            rc = r;
    }
    if (rc == S_IDLE && nopen == 0) {
        /* nothing in flight made a node call: one cheap call keeps
         * /healthz honest about the node */
        uint64_t head;
        if (qr_rpc_block_number(self->rpc, &head) != QR_OK)
            return s_rpc_fail(self, "eth_blockNumber");
        self->node_up = true;
    }
    if (rc == S_IDLE || rc == S_PROGRESS)
        self->last_error[0] = '\0';
    return rc;
}

/* ---- HTTP ------------------------------------------------------------------------- */

static qr_merkle_t *s_tree_for(qr_mirror_t *self, uint64_t batch_id, char *err, size_t errlen)
{
    int64_t now = qr_clock_ms();
    s_tree_t *victim = &self->trees[0];
    for (int i = 0; i < S_TREES; i++) {
        s_tree_t *t = &self->trees[i];
        if (t->used && t->batch_id == batch_id) {
            t->used_at = now;
            return t->tree;
        }
        if (!t->used || (victim->used && t->used_at < victim->used_at))
            victim = t;
    }
    qr_mirror_rec_t *recs = NULL;
    size_t n = 0;
    if (qr_mirror_db_batch_records(self->db, batch_id, &recs, &n, err, errlen) != QR_OK)
        return NULL;
    qr_merkle_t *tree = qr_mirror_tree(recs, n);
    free(recs);
    if (!tree) {
        snprintf(err, errlen, "batch %" PRIu64 " has no records", batch_id);
        return NULL;
    }
    qr_merkle_destroy(&victim->tree);
    victim->used = true;
    victim->batch_id = batch_id;
    victim->tree = tree;
    victim->used_at = now;
    return tree;
}

/* The proof document of job_id, or NULL with an HTTP status in *status. */
static json_t *s_proof(qr_mirror_t *self, uint64_t job_id, int *status, char *err,
                       size_t errlen)
{
    qr_mirror_rec_t rec;
    qr_mirror_where_t w;
    qr_mirror_names_t names;
    int rc = qr_mirror_db_record(self->db, job_id, &rec, &w, &names, err, errlen);
    if (rc != QR_OK) {
        *status = rc == QR_ENOTFOUND ? 404 : 503;
        return NULL;
    }
    qr_merkle_t *tree = s_tree_for(self, w.batch_id, err, errlen);
    if (!tree) {
        *status = 503;
        return NULL;
    }
    uint8_t proof[QR_MERKLE_MAX_DEPTH][32];
    int np = qr_merkle_proof(tree, w.leaf_index, proof);
    uint8_t root[32];
    qr_merkle_root(tree, root);
    if (np < 0 || memcmp(root, w.root, 32) != 0) {
        snprintf(err, errlen, "batch %" PRIu64 ": stored records do not give the stored root",
                 w.batch_id);
        *status = 500;
        return NULL;
    }
    *status = 200;
    return qr_mirror_proof_json(&rec, &w, (const uint8_t(*)[32])proof, (size_t)np);
}

static void s_put_json(qr_text_t *out, json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT);
    if (s) {
        qr_text_printf(out, "%s\n", s);
        free(s);
    } else
        out->oom = 1;
}

static int s_error_json(qr_text_t *out, int status, const char *msg)
{
    json_t *doc = json_pack("{s:s}", "error", msg);
    if (doc)
        s_put_json(out, doc);
    json_decref(doc);
    return status;
}

/* Percent-decodes src (a path segment) into dst. */
static void s_unescape(const char *src, size_t n, char *dst, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        if (src[i] == '%' && i + 2 < n + 0 && isxdigit((unsigned char)src[i + 1]) &&
            isxdigit((unsigned char)src[i + 2])) {
            char hx[3] = {src[i + 1], src[i + 2], 0};
            dst[k++] = (char)strtol(hx, NULL, 16);
            i += 2;
        } else
            dst[k++] = src[i];
    }
    dst[k] = '\0';
}

static bool s_parse_u64(const char *s, uint64_t *out)
{
    if (!*s || strlen(s) > 19)
        return false;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    *out = strtoull(s, NULL, 10);
    return true;
}

/* /records/address/0xADDR[/after/JOB] or /records/account/NAME[/after/JOB]:
 * an operator's confirmed records with proofs, a page at a time. */
static int s_records(qr_mirror_t *self, const char *rest, qr_text_t *out)
{
    char kind[16], who[200], err[256];
    const char *slash = strchr(rest, '/');
    if (!slash || (size_t)(slash - rest) >= sizeof kind)
        return s_error_json(out, 404, "use /records/address/0xADDR or /records/account/NAME");
    snprintf(kind, sizeof kind, "%.*s", (int)(slash - rest), rest);
    const char *w = slash + 1, *end = strstr(w, "/after/");
    uint64_t after = 0;
    if (end && !s_parse_u64(end + 7, &after))
        return s_error_json(out, 400, "after: not a job id");
    s_unescape(w, end ? (size_t)(end - w) : strlen(w), who, sizeof who);
    uint8_t addr[QR_ADDR_LEN];
    if (!strcmp(kind, "address")) {
        if (qr_address_from_text(who, addr) < 0)
            return s_error_json(out, 400, "not a 0x address");
    } else if (!strcmp(kind, "account")) {
        int rc = qr_mirror_db_address_of(self->db, who, addr, err, sizeof err);
        if (rc != QR_OK)
            return s_error_json(out, rc == QR_ENOTFOUND ? 404 : 503, err);
    } else
        return s_error_json(out, 404, "use /records/address/0xADDR or /records/account/NAME");
    uint64_t jobs[S_PAGE];
    size_t n = 0;
    if (qr_mirror_db_operator_jobs(self->db, addr, after, S_PAGE, jobs, &n, err, sizeof err) !=
        QR_OK)
        return s_error_json(out, 503, err);
    json_t *doc = json_object(), *arr = json_array();
    char a[43];
    qr_address_to_text(addr, a);
    json_object_set_new(doc, "operator", json_string(a));
    json_object_set_new(doc, "records", arr);
    for (size_t i = 0; i < n; i++) {
        int status;
        json_t *p = s_proof(self, jobs[i], &status, err, sizeof err);
        if (!p) {
            json_decref(doc);
            return s_error_json(out, status == 404 ? 503 : status, err);
        }
        json_array_append_new(arr, p);
    }
    json_object_set_new(doc, "next_after",
                        n == S_PAGE ? json_integer((json_int_t)jobs[n - 1]) : json_null());
    s_put_json(out, doc);
    json_decref(doc);
    return 200;
}

static void s_refresh_stats(qr_mirror_t *self)
{
    int64_t now = qr_clock_ms();
    if (self->stats_at && now - self->stats_at < S_STATS_MS)
        return;
    self->stats_at = now;
    char err[256];
    self->stats_ok = self->db && self->locked &&
                     qr_mirror_db_stats(self->db, &self->stats, err, sizeof err) == QR_OK;
}

static int s_render(void *arg, const char *path, qr_text_t *out)
{
    qr_mirror_t *self = arg;
    if (!strcmp(path, "/healthz")) {
        bool ok = self->db_up && self->locked && self->node_up && self->chain_checked;
        qr_text_printf(out, "%s%s%s\n", ok ? "ok" : "unhealthy",
                       self->last_error[0] ? ": " : "", self->last_error);
        return ok ? 200 : 503;
    }
    if (!strcmp(path, "/metrics")) {
        s_refresh_stats(self);
        qr_text_printf(out,
                       "# HELP quarry_mirror_up 1 while PostgreSQL and the node answer and this "
                       "mirror is the active one.\n# TYPE quarry_mirror_up gauge\n"
                       "quarry_mirror_up %d\n",
                       self->db_up && self->locked && self->node_up && self->chain_checked);
        qr_text_printf(out, "# TYPE quarry_mirror_db_up gauge\nquarry_mirror_db_up %d\n",
                       self->db_up);
        qr_text_printf(out, "# TYPE quarry_mirror_node_up gauge\nquarry_mirror_node_up %d\n",
                       self->node_up);
        qr_text_printf(out, "# TYPE quarry_mirror_active gauge\nquarry_mirror_active %d\n",
                       self->locked);
        qr_text_printf(out,
                       "# TYPE quarry_mirror_backoff_ms gauge\nquarry_mirror_backoff_ms %" PRId64
                       "\n",
                       self->backoff_ms);
        const char *ctr[][2] = {{"rpc_errors_total", "node calls that failed"},
                                {"db_errors_total", "database steps that failed"},
                                {"fee_bumps_total", "stuck transactions re-priced"},
                                {"resigns_total", "batches signed again with a fresh nonce"},
                                {"batches_mined_total", "batches mined by this process"},
                                {"batches_confirmed_total", "batches confirmed by this process"}};
        uint64_t val[] = {self->rpc_errors, self->db_errors, self->fee_bumps,
                          self->resigns,    self->posted,    self->confirmed};
        for (size_t i = 0; i < sizeof val / sizeof val[0]; i++)
            qr_text_printf(out,
                           "# HELP quarry_mirror_%s %s.\n# TYPE quarry_mirror_%s counter\n"
                           "quarry_mirror_%s %" PRIu64 "\n",
                           ctr[i][0], ctr[i][1], ctr[i][0], ctr[i][0], val[i]);
        if (self->stats_ok) {
            const qr_mirror_stats_t *s = &self->stats;
            qr_text_printf(out,
                           "# HELP quarry_mirror_settlements_unbatched Settlements in no batch "
                           "yet.\n# TYPE quarry_mirror_settlements_unbatched gauge\n"
                           "quarry_mirror_settlements_unbatched %" PRId64 "\n",
                           s->unbatched);
            qr_text_printf(out,
                           "# HELP quarry_mirror_settlements_waiting_address Unbatched "
                           "settlements whose client or operator has no address.\n"
                           "# TYPE quarry_mirror_settlements_waiting_address gauge\n"
                           "quarry_mirror_settlements_waiting_address %" PRId64 "\n",
                           s->unbatched - s->eligible);
            static const char *st[4] = {"signed", "sent", "mined", "confirmed"};
            qr_text_printf(out, "# TYPE quarry_mirror_batches gauge\n");
            for (int i = 0; i < 4; i++)
                qr_text_printf(out, "quarry_mirror_batches{state=\"%s\"} %" PRId64 "\n", st[i],
                               s->batches[i]);
            qr_text_printf(out,
                           "# TYPE quarry_mirror_records_confirmed gauge\n"
                           "quarry_mirror_records_confirmed %" PRId64 "\n"
                           "# TYPE quarry_mirror_gas_used gauge\nquarry_mirror_gas_used %" PRId64
                           "\n# TYPE quarry_mirror_last_batch_id gauge\n"
                           "quarry_mirror_last_batch_id %" PRId64 "\n",
                           s->records_confirmed, s->gas_used_total, s->last_batch);
        }
        return 200;
    }
    if (!strncmp(path, "/proof/", 7)) {
        uint64_t job;
        if (!s_parse_u64(path + 7, &job))
            return s_error_json(out, 400, "usage: /proof/JOB (a job id)");
        if (!self->db || !self->locked)
            return s_error_json(out, 503, "database unavailable");
        int status;
        char err[256];
        json_t *doc = s_proof(self, job, &status, err, sizeof err);
        if (!doc)
            return s_error_json(out, status, err);
        s_put_json(out, doc);
        json_decref(doc);
        return 200;
    }
    if (!strncmp(path, "/records/", 9)) {
        if (!self->db || !self->locked)
            return s_error_json(out, 503, "database unavailable");
        return s_records(self, path + 9, out);
    }
    qr_text_printf(out, "not found: try /metrics, /healthz, /proof/JOB, /records/address/0xADDR\n");
    return 404;
}

/* ---- loop -------------------------------------------------------------------------- */

int qr_mirror_run(qr_mirror_t *self, volatile sig_atomic_t *stop)
{
    char kaddr[43], caddr[43];
    qr_address_to_text(qr_ethkey_address(self->key), kaddr);
    qr_address_to_text(self->contract, caddr);
    qr_log(QR_LOG_INFO, "mirror starting",
           "key=%s contract=%s batch_size=%" PRId64 " batch_age_ms=%" PRId64
           " confirmations=%" PRId64 " http=%s",
           kaddr, caddr, self->cfg.batch_size, self->cfg.batch_age_ms, self->cfg.confirmations,
           self->httpd ? self->cfg.metrics_addr : "off");
    int64_t next = 0;
    int status = 0;
    while (!*stop) {
        int64_t now = qr_clock_ms();
        if (now >= next) {
            int rc = s_step(self);
            now = qr_clock_ms();
            if (rc == S_FATAL_CFG || rc == S_FATAL_STATE) {
                status = rc == S_FATAL_CFG ? 2 : 1;
                break;
            }
            if (rc == S_RETRY) {
                self->backoff_ms =
                    qr_mirror_backoff(self->backoff_ms, self->cfg.poll_ms < 200 ? self->cfg.poll_ms : 200,
                                      self->cfg.backoff_max_ms);
                next = now + self->backoff_ms;
                qr_log(QR_LOG_DEBUG, "backing off", "ms=%" PRId64, self->backoff_ms);
            } else {
                self->backoff_ms = 0;
                next = rc == S_PROGRESS ? now : now + self->cfg.poll_ms;
            }
        }
        int64_t wait = next - now;
        if (wait < 0)
            wait = 0;
        if (wait > 1000)
            wait = 1000;
        if (self->httpd) {
            struct pollfd pf = {qr_httpd_fd(self->httpd), POLLIN, 0};
            int pr = poll(&pf, 1, (int)wait);
            if (pr > 0)
                qr_httpd_serve(self->httpd, s_render, self);
        } else if (wait > 0) {
            struct timespec ts = {wait / 1000, (long)(wait % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    qr_log(QR_LOG_INFO, "mirror stopping", "status=%d", status);
    return status;
}
