/* quarry-mirror: posts settled jobs to the QuarrySettlement contract.
 *
 *   quarry-mirror [settings]                      run the mirror (mirror.h)
 *   quarry-mirror [settings] migrate              apply the database migrations
 *   quarry-mirror [settings] address ACCOUNT 0xADDR   set an account's address
 *   quarry-mirror [settings] addresses            list the addresses set
 *   quarry-mirror [settings] deploy BYTECODE      deploy QuarrySettlement with
 *                                                 this key as its broker
 *
 * Settings come from defaults, a config file, QUARRY_MIRROR_* variables and
 * flags (common/config.h); --help lists them.  Exit status: 0, 1 (failure,
 * or a state the mirror will not repair alone), 2 (bad settings: systemd's
 * RestartPreventExitStatus). */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "config.h"
#include "db.h"
#include "err.h"
#include "ethutil.h"
#include "mirror.h"
#include "mirror_db.h"
#include "rpc.h"
#include "tx.h"
#include "util.h"

#define S_ENV "QUARRY_MIRROR"

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static int s_migrate(const char *conninfo)
{
    char err[512];
    qr_db_t *d = qr_db_new(conninfo, err, sizeof err);
    int applied = 0;
    if (!d || qr_db_migrate(d, &applied, err, sizeof err) != QR_OK) {
        fprintf(stderr, "quarry-mirror: migrate: %s\n", err);
        qr_db_destroy(&d);
        return 1;
    }
    qr_db_destroy(&d);
    printf("applied %d migration(s)\n", applied);
    return 0;
}

static int s_address(const char *conninfo, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: quarry-mirror address ACCOUNT 0xADDR\n");
        return 2;
    }
    uint8_t addr[QR_ADDR_LEN];
    if (qr_address_from_text(argv[1], addr) < 0) {
        fprintf(stderr, "quarry-mirror: '%s' is not a 0x address (40 hex digits; mixed case "
                        "must carry a valid EIP-55 checksum)\n",
                argv[1]);
        return 2;
    }
    char err[512];
    qr_mirror_db_t *db = qr_mirror_db_new(conninfo, err, sizeof err);
    if (!db) {
        fprintf(stderr, "quarry-mirror: %s\n", err);
        return 1;
    }
    int rc = qr_mirror_db_schema_ok(db, err, sizeof err);
    uint64_t id = 0;
    if (rc == QR_OK)
        rc = qr_mirror_db_set_address(db, argv[0], addr, &id, err, sizeof err);
    qr_mirror_db_destroy(&db);
    if (rc != QR_OK) {
        fprintf(stderr, "quarry-mirror: address: %s%s\n", err,
                rc == QR_ENOTFOUND && strstr(err, "migration")
                    ? " (run quarry-mirror migrate)"
                    : "");
        return 1;
    }
    char text[43];
    qr_address_to_text(addr, text);
    printf("account %s (id %" PRIu64 "): %s\n", argv[0], id, text);
    return 0;
}

static int s_addresses(const char *conninfo)
{
    char err[512];
    qr_mirror_db_t *db = qr_mirror_db_new(conninfo, err, sizeof err);
    if (!db) {
        fprintf(stderr, "quarry-mirror: %s\n", err);
        return 1;
    }
    qr_mirror_addr_t *a = NULL;
    size_t n = 0;
    int rc = qr_mirror_db_addresses(db, &a, &n, err, sizeof err);
    qr_mirror_db_destroy(&db);
    if (rc != QR_OK) {
        fprintf(stderr, "quarry-mirror: addresses: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        char text[43];
        qr_address_to_text(a[i].address, text);
        printf("%-10" PRIu64 " %-24s %s\n", a[i].account_id, a[i].name, text);
    }
    free(a);
    return 0;
}

/* deploy BYTECODE: the creation code (hex, as solc writes it) plus the
 * constructor's argument, this key's address as the broker. */
static int s_deploy(const char *rpc_url, const char *key_file, int64_t timeout_ms, const char *bin)
{
    char err[512];
    FILE *f = fopen(bin, "r");
    if (!f) {
        fprintf(stderr, "quarry-mirror: deploy: cannot open %s\n", bin);
        return 1;
    }
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    for (size_t r; text && (r = fread(text + len, 1, cap - len - 1, f)) > 0;) {
        len += r;
        if (len + 1 == cap) {
            char *q = realloc(text, cap *= 2);
            if (!q) {
                free(text);
                text = NULL;
            } else
                text = q;
        }
    }
    fclose(f);
    if (!text) {
        fprintf(stderr, "quarry-mirror: deploy: out of memory\n");
        return 1;
    }
    text[len] = '\0';
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    uint8_t *code = NULL;
    size_t clen = 0;
    int bad = qr_hex_decode_alloc(text, &code, &clen);
    free(text);
    if (bad < 0 || clen == 0) {
        fprintf(stderr, "quarry-mirror: deploy: %s does not hold hex bytecode\n", bin);
        return 1;
    }
    qr_ethkey_t *key = qr_ethkey_load(key_file, err, sizeof err);
    qr_rpc_t *rpc = key ? qr_rpc_new(rpc_url, (int)timeout_ms, err, sizeof err) : NULL;
    int rc = 1;
    uint8_t *data = NULL, *args = NULL;
    qr_signed_tx_t st = {0};
    if (!rpc) {
        fprintf(stderr, "quarry-mirror: deploy: %s\n", err);
        goto done;
    }
    qr_abi_enc_t e;
    size_t alen;
    qr_abi_enc_init(&e, NULL);
    qr_abi_put_address(&e, qr_ethkey_address(key));
    if (qr_abi_enc_finish(&e, &args, &alen) < 0 || !(data = malloc(clen + alen))) {
        qr_abi_enc_free(&e);
        goto done;
    }
    qr_abi_enc_free(&e);
    memcpy(data, code, clen);
    memcpy(data + clen, args, alen);
    qr_tx_t tx = {.data = data, .data_len = clen + alen};
    qr_call_t call = {.has_from = 1, .data = data, .data_len = clen + alen};
    memcpy(call.from, qr_ethkey_address(key), QR_ADDR_LEN);
    if (qr_rpc_chain_id(rpc, &tx.chain_id) != QR_OK ||
        qr_rpc_nonce(rpc, qr_ethkey_address(key), &tx.nonce) != QR_OK ||
        qr_rpc_fees(rpc, &tx.max_priority_fee, &tx.max_fee) != QR_OK ||
        qr_rpc_estimate_gas(rpc, &call, &tx.gas) != QR_OK) {
        fprintf(stderr, "quarry-mirror: deploy: %s\n", qr_rpc_last_error(rpc)->message);
        goto done;
    }
    tx.gas += tx.gas / 5;
    if (qr_tx_sign(&tx, key, &st, err, sizeof err) < 0) {
        fprintf(stderr, "quarry-mirror: deploy: %s\n", err);
        goto done;
    }
    uint8_t hash[32];
    qr_receipt_t r;
    if (qr_rpc_send_raw(rpc, st.raw, st.raw_len, hash) != QR_OK ||
        qr_rpc_wait_receipt(rpc, hash, 120000, 250, &r) != QR_OK) {
        fprintf(stderr, "quarry-mirror: deploy: %s\n", qr_rpc_last_error(rpc)->message);
        goto done;
    }
    if (r.status != 1 || !r.has_contract) {
        fprintf(stderr, "quarry-mirror: deploy: the creation reverted\n");
        qr_receipt_free(&r);
        goto done;
    }
    char addr[43], h[67];
    qr_address_to_text(r.contract_address, addr);
    qr_hex_encode(hash, 32, h);
    printf("%s\n", addr);
    fprintf(stderr, "deployed QuarrySettlement at %s (tx %s, block %" PRIu64 ", gas %" PRIu64
                    ") on chain %" PRIu64 "\n",
            addr, h, r.block_number, r.gas_used, tx.chain_id);
    qr_receipt_free(&r);
    rc = 0;
done:
    qr_signed_tx_free(&st);
    free(data);
    free(args);
    free(code);
    qr_rpc_destroy(&rpc);
    qr_ethkey_destroy(&key);
    return rc;
}

int main(int argc, char **argv)
{
    char *db = NULL, *rpc = NULL, *contract = NULL, *key = NULL, *http = NULL, *level = NULL;
    int64_t chain = 0, size = 0, age = 0, confs = 0, poll_ms = 0, stuck = 0, bump = 0, cap = 0,
            wei = 0, gas = 0, timeout = 0, backoff = 0, unconf = 0;
#ifdef QR_TEST_FAULTS
    char *fault = NULL;
    int64_t fault_batch = -1;
#endif
    const qr_opt_t opts[] = {
        {"db", QR_OPT_STR, &db, "dbname=quarry", "PostgreSQL conninfo string or URI"},
        {"rpc-url", QR_OPT_STR, &rpc, "http://127.0.0.1:8545",
         "Ethereum JSON-RPC endpoint (http or https)"},
        {"contract", QR_OPT_STR, &contract, "", "QuarrySettlement's 0x address"},
        {"key-file", QR_OPT_STR, &key, "",
         "the broker's Ethereum key: 64 hex digits in a file of mode 0600 (the contract's "
         "broker())"},
        {"chain-id", QR_OPT_INT, &chain, "0", "refuse a node on another chain (0 = any)"},
        {"batch-size", QR_OPT_INT, &size, "1024", "settlements per batch at most"},
        {"batch-age-ms", QR_OPT_INT, &age, "60000",
         "post a partial batch once its oldest settlement waited this long"},
        {"confirmations", QR_OPT_INT, &confs, "3",
         "blocks, the mining one included, before a batch counts as confirmed"},
        {"poll-ms", QR_OPT_INT, &poll_ms, "1000", "how often an idle mirror looks for work"},
        {"stuck-ms", QR_OPT_INT, &stuck, "120000",
         "a transaction without a receipt this long is re-priced (same nonce, higher fees)"},
        {"fee-bump-pct", QR_OPT_INT, &bump, "25", "fee rise per re-price, percent (>= 10)"},
        {"max-fee-gwei", QR_OPT_INT, &cap, "500", "cap on the max fee per gas (0 = none)"},
        {"wei-per-unit", QR_OPT_INT, &wei, "1",
         "wei per ledger base unit: a record's amount is (price - fee) * this"},
        {"gas-limit", QR_OPT_INT, &gas, "0", "gas limit of postBatch (0 = estimate + 25%)"},
        {"rpc-timeout-ms", QR_OPT_INT, &timeout, "10000", "deadline of each JSON-RPC call"},
        {"backoff-max-ms", QR_OPT_INT, &backoff, "30000",
         "longest wait between tries while PostgreSQL or the node is unavailable"},
        {"max-unconfirmed", QR_OPT_INT, &unconf, "16",
         "mined batches awaiting confirmation before new batches wait"},
        {"http-addr", QR_OPT_STR, &http, "127.0.0.1:9108",
         "HOST:PORT serving /metrics, /healthz, /proof/JOB and /records/... (empty = off)"},
        {"log-level", QR_OPT_STR, &level, "info", "debug, info, warn or error"},
#ifdef QR_TEST_FAULTS
        {"fault-exit", QR_OPT_STR, &fault, "",
         "TEST BUILD: exit(3) at exit-after-persist or exit-after-send of a batch"},
        {"fault-batch", QR_OPT_INT, &fault_batch, "-1",
         "TEST BUILD: the batch id --fault-exit fires on (-1 = the first)"},
#endif
    };
    const size_t nopts = sizeof opts / sizeof opts[0];
    char err[512];
    int argi = 0, rc = 0;
    bool help = false;
    if (qr_config_parse(opts, nopts, S_ENV, argc, argv, &argi, &help, err, sizeof err) < 0) {
        fprintf(stderr, "quarry-mirror: %s\n", err);
        return 2;
    }
    if (help) {
        printf("usage: quarry-mirror [settings] [migrate | address ACCOUNT 0xADDR | addresses |\n"
               "                                  deploy BYTECODE_FILE]\n\n"
               "Posts settled Quarry jobs to the QuarrySettlement contract as Merkle roots of\n"
               "batches, and serves each settlement's proof.  Without a command it runs the\n"
               "mirror.  'migrate' applies the database migrations; 'address' sets the\n"
               "Ethereum address of an account (settlements of accounts without one wait);\n"
               "'deploy' creates the contract with --key-file's address as its broker and\n"
               "prints the contract's address.\n\n");
        qr_config_usage(stdout, opts, nopts, S_ENV);
        qr_config_free(opts, nopts);
        return 0;
    }
    int lv = qr_log_level_parse(level);
    if (lv < 0) {
        fprintf(stderr, "quarry-mirror: --log-level must be debug, info, warn or error\n");
        qr_config_free(opts, nopts);
        return 2;
    }
    qr_log_init("mirror", (qr_log_level_t)lv);
    const char *cmd = argi < argc ? argv[argi] : NULL;
    if (cmd && !strcmp(cmd, "migrate")) {
        rc = s_migrate(db);
    } else if (cmd && !strcmp(cmd, "address")) {
        rc = s_address(db, argc - argi - 1, argv + argi + 1);
    } else if (cmd && !strcmp(cmd, "addresses")) {
        rc = s_addresses(db);
    } else if (cmd && !strcmp(cmd, "deploy")) {
        if (argc - argi != 2) {
            fprintf(stderr, "usage: quarry-mirror deploy BYTECODE_FILE\n");
            rc = 2;
        } else if (!*key) {
            fprintf(stderr, "quarry-mirror: deploy needs --key-file\n");
            rc = 2;
        } else
            rc = s_deploy(rpc, key, timeout, argv[argi + 1]);
    } else if (cmd) {
        fprintf(stderr, "quarry-mirror: unknown command '%s' (see --help)\n", cmd);
        rc = 2;
    } else {
        qr_mirror_cfg_t cfg = {
            .db = db, .rpc_url = rpc, .contract = contract, .key_file = key,
            .chain_id = (uint64_t)(chain > 0 ? chain : 0), .batch_size = size,
            .batch_age_ms = age, .confirmations = confs, .poll_ms = poll_ms, .stuck_ms = stuck,
            .fee_bump_pct = bump, .max_fee_gwei = cap,
            .wei_per_unit = (uint64_t)(wei > 0 ? wei : 0), .gas_limit = gas,
            .rpc_timeout_ms = timeout, .backoff_max_ms = backoff, .max_unconfirmed = unconf,
            .metrics_addr = http, .fault = "", .fault_batch = -1,
        };
#ifdef QR_TEST_FAULTS
        cfg.fault = fault;
        cfg.fault_batch = fault_batch;
#endif
        qr_mirror_t *m = qr_mirror_new(&cfg, err, sizeof err);
        if (!m) {
            qr_log(QR_LOG_ERROR, "cannot start", "reason=\"%s\"", err);
            fprintf(stderr, "quarry-mirror: %s\n", err);
            rc = 2;
        } else {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = s_on_signal;
            sigaction(SIGINT, &sa, NULL);
            sigaction(SIGTERM, &sa, NULL);
            rc = qr_mirror_run(m, &s_stop);
            qr_mirror_destroy(&m);
        }
    }
    qr_config_free(opts, nopts);
    return rc;
}
