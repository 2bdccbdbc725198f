/* quarry-mirror end to end: PostgreSQL, a broker, two workers, a client
 * submitting ai.gemm jobs that settle, an anvil node (tests/scripts/
 * with_anvil.sh passes QUARRY_TEST_ETH_URL and the compiled contract in
 * QUARRY_TEST_SETTLEMENT_BIN), QuarrySettlement deployed by
 * `quarry-mirror deploy`, and quarry-mirror as a process.
 *
 *   flow     records of an account without an address wait (and are
 *            logged), every settlement ends in a confirmed batch, every
 *            record verifies on chain (verifySettlement) and a forged one
 *            does not; `quarry proof`; `quarry claim` pays the operator
 *            exactly its records, once
 *   crash    exit right after a batch is persisted and right after it is
 *            sent (test-build faults), then kill -9 at a random moment:
 *            each restart finishes the batch with the same transaction,
 *            no batch is posted twice, every settlement is mirrored
 *   stuck    mining off: the mirror re-prices its transaction (same nonce)
 *            and the re-priced one is what gets mined
 *   node     the node unreachable (a relay in front of it is stopped): the
 *            mirror backs off, /healthz says so, and it catches up when the
 *            node is back
 *   database PostgreSQL unreachable for the mirror (its connection goes
 *            through a relay that is stopped; the broker keeps its own):
 *            the same, and the mirror takes its lock again on reconnecting
 *
 * Exits 77 (skip) without a node or a compiled contract. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "abi.h"
#include "err.h"
#include "ethutil.h"
#include "harness.h"
#include "merkle.h"
#include "mirror_core.h"
#include "rpc.h"
#include "tx.h"

#define CPORT 27280
#define WPORT 27281
#define HPORT 27282
#define RELAY_PORT 27283
#define PG_RELAY_PORT 27284
#define WEI_PER_UNIT 1000000000ULL

/* anvil's dev accounts 0-3: the broker's key, alice (client), op-a, op-b */
static const char *s_dev_keys[4] = {
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
};
static const char *s_key_files[4] = {"mirror-broker.key", "mirror-alice.key", "mirror-opa.key",
                                     "mirror-opb.key"};

static char s_db[512];
static char s_eth[256];
static char s_relay_url[64];
static uint8_t s_contract[20];
static char s_contract_text[43];
static pid_t s_broker, s_w1, s_w2, s_mirror, s_relay, s_pg_relay;
static quarry_client_t *s_alice;
static qr_rpc_t *s_rpc;
static qr_ethkey_t *s_keys[4];
static unsigned s_seed = 6;

static void s_check(int rc)
{
    if (rc != QR_OK)
        fail_msg("rpc failed (%d): %s", rc, qr_rpc_last_error(s_rpc)->message);
}

/* ---- chain helpers ------------------------------------------------------------- */

static void s_send(qr_ethkey_t *key, const uint8_t *to, qr_u256_t value, const uint8_t *data,
                   size_t len, qr_receipt_t *rcpt)
{
    qr_tx_t tx = {0};
    s_check(qr_rpc_chain_id(s_rpc, &tx.chain_id));
    s_check(qr_rpc_nonce(s_rpc, qr_ethkey_address(key), &tx.nonce));
    s_check(qr_rpc_fees(s_rpc, &tx.max_priority_fee, &tx.max_fee));
    tx.gas = 200000;
    tx.has_to = 1;
    memcpy(tx.to, to, 20);
    tx.value = value;
    tx.data = data;
    tx.data_len = len;
    qr_signed_tx_t st;
    char err[160];
    if (qr_tx_sign(&tx, key, &st, err, sizeof err) < 0)
        fail_msg("%s", err);
    uint8_t hash[32];
    s_check(qr_rpc_send_raw(s_rpc, st.raw, st.raw_len, hash));
    s_check(qr_rpc_wait_receipt(s_rpc, hash, 20000, 50, rcpt));
    qr_signed_tx_free(&st);
}

static void s_balance(const uint8_t addr[20], qr_u256_t *out)
{
    char a[43];
    qr_hex_encode(addr, 20, a);
    json_t *res;
    s_check(qr_rpc_request(s_rpc, "eth_getBalance", json_pack("[s, s]", a, "latest"), &res));
    assert_int_equal(qr_quantity_to_u256(json_string_value(res), out), 0);
    json_decref(res);
}

/* One 32-byte word from a view call (calldata freed). */
static void s_view(uint8_t *cd, size_t len, uint8_t word[32])
{
    qr_call_t call = {.has_to = 1, .data = cd, .data_len = len};
    memcpy(call.to, s_contract, 20);
    uint8_t *out = NULL;
    size_t olen = 0;
    s_check(qr_rpc_call(s_rpc, &call, NULL, &out, &olen));
    assert_true(olen >= 32);
    memcpy(word, out, 32);
    free(out);
    free(cd);
}

static uint64_t s_next_batch(void)
{
    uint8_t *cd, w[32];
    size_t len;
    assert_int_equal(qr_mirror_simple_calldata("nextBatchId()", 0, 0, &cd, &len), 0);
    s_view(cd, len, w);
    uint64_t v = 0;
    for (int i = 24; i < 32; i++)
        v = v << 8 | w[i];
    return v;
}

static void s_deposits(const uint8_t who[20], qr_u256_t *out)
{
    qr_abi_enc_t e;
    uint8_t *cd;
    size_t len;
    qr_abi_enc_init(&e, "deposits(address)");
    qr_abi_put_address(&e, who);
    assert_int_equal(qr_abi_enc_finish(&e, &cd, &len), 0);
    qr_abi_enc_free(&e);
    s_view(cd, len, out->b);
}

static void s_mine(void)
{
    json_t *res = NULL;
    s_check(qr_rpc_request(s_rpc, "evm_mine", NULL, &res));
    json_decref(res);
}

static void s_automine(bool on)
{
    json_t *res = NULL;
    s_check(qr_rpc_request(s_rpc, "evm_setAutomine", json_pack("[b]", on), &res));
    json_decref(res);
}

/* ---- processes ----------------------------------------------------------------- */

/* Runs a command line, its stdout into out; returns the exit status. */
static int s_run(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int s_run(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t got = 0;
    out[0] = '\0';
    for (size_t r; got + 1 < cap && (r = fread(out + got, 1, cap - 1 - got, p)) > 0;)
        got += r;
    out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static pid_t s_start_mirror(const char *log, const char *rpc, ...)
{
    static char dbarg[600], rpcarg[300], contract[80], key[80], http[64];
    snprintf(dbarg, sizeof dbarg, "--db=%s", s_db);
    snprintf(rpcarg, sizeof rpcarg, "--rpc-url=%s", rpc);
    snprintf(contract, sizeof contract, "--contract=%s", s_contract_text);
    snprintf(key, sizeof key, "--key-file=%s", s_key_files[0]);
    snprintf(http, sizeof http, "--http-addr=127.0.0.1:%d", HPORT);
    char *argv[32] = {QR_MIRROR_BIN, dbarg, rpcarg, contract, key, http,
                      "--batch-size=16", "--batch-age-ms=300", "--confirmations=2",
                      "--poll-ms=100", "--stuck-ms=1500", "--backoff-max-ms=1000",
                      "--rpc-timeout-ms=2000", "--wei-per-unit=1000000000", "--log-level=debug"};
    int n = 15;
    va_list ap;
    va_start(ap, rpc);
    for (char *a; n < 31 && (a = va_arg(ap, char *));)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return h_spawn(log, argv);
}

/* A TCP relay from listen_port to port on 127.0.0.1, in a child: stopping
 * it makes the node (or the database) unreachable for the mirror without
 * losing the chain (or the data). */
static pid_t s_start_relay_to(int listen_port, int port)
{
    assert_true(port > 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)listen_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 16) < 0)
        _exit(1);
    for (;;) {
        int c = accept(ls, NULL, NULL);
        if (c < 0)
            continue;
        if (fork() == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(ls);
            int u = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in b = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            if (connect(u, (struct sockaddr *)&b, sizeof b) < 0)
                _exit(0);
            struct pollfd pf[2] = {{c, POLLIN, 0}, {u, POLLIN, 0}};
            char buf[65536];
            for (;;) {
                if (poll(pf, 2, -1) <= 0)
                    _exit(0);
                for (int i = 0; i < 2; i++)
                    if (pf[i].revents) {
                        ssize_t r = read(pf[i].fd, buf, sizeof buf);
                        if (r <= 0 || write(pf[1 - i].fd, buf, (size_t)r) != r)
                            _exit(0);
                    }
            }
        }
        close(c);
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
    }
}

static pid_t s_start_relay(void)
{
    int port = 0;
    sscanf(s_eth, "http://127.0.0.1:%d", &port);
    return s_start_relay_to(RELAY_PORT, port);
}

static void s_kill_relay(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
        *pid = 0;
    }
}

static void s_stop_relay(void)
{
    s_kill_relay(&s_relay);
}

/* ---- jobs ---------------------------------------------------------------------- */

static void s_jobs(int n)
{
    uint64_t ids[256];
    assert_true(n <= 256);
    quarry_job_opts_t o;
    quarry_job_opts_init(&o);
    o.max_price = 1000;
    float a[64], b[64];
    for (int i = 0; i < n; i++) {
        h_random(a, 64, &s_seed);
        h_random(b, 64, &s_seed);
        assert_int_equal(quarry_gemm_submit(s_alice, 8, 8, 8, a, b, &o, &ids[i], NULL, NULL),
                         QUARRY_OK);
    }
    for (int i = 0; i < n; i++) {
        quarry_job_info_t info;
        assert_int_equal(quarry_job_wait(s_alice, ids[i], 60000, NULL, NULL, &info), QUARRY_OK);
        assert_int_equal(info.state, QUARRY_JOB_SETTLED);
    }
}

/* Waits (mining a block now and then, for the confirmations) until every
 * settlement is in a confirmed batch. */
static void s_wait_mirrored(int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 200) {
        if (h_sql(s_db, "SELECT count(*) FROM settlements s LEFT JOIN mirror_batches b "
                        "ON b.id = s.batch_id WHERE b.state IS DISTINCT FROM 'confirmed'") == 0)
            return;
        s_mine();
        h_sleep_ms(200);
    }
    fail_msg("settlements not mirrored in %d ms: %lld left", timeout_ms,
             (long long)h_sql(s_db, "SELECT count(*) FROM settlements s LEFT JOIN mirror_batches b "
                                    "ON b.id = s.batch_id WHERE b.state IS DISTINCT FROM "
                                    "'confirmed'"));
}

/* The first column of the first row of a query, as text, into out. */
static void s_text(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void s_text(char *out, size_t cap, const char *fmt, ...)
{
    char q[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    PGconn *c = PQconnectdb(s_db);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("%s: %s", q, PQerrorMessage(c));
    snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
}

/* Invariants after any amount of crashing: each settlement in exactly one
 * batch, batches numbered 0..n-1 like the contract's, each root on chain. */
static void s_check_batches(void)
{
    int64_t nb = h_sql(s_db, "SELECT count(*) FROM mirror_batches");
    assert_int_equal(h_sql(s_db, "SELECT coalesce(max(id) + 1, 0) FROM mirror_batches"), nb);
    assert_int_equal((int64_t)s_next_batch(), nb);
    int64_t ns = h_sql(s_db, "SELECT count(*) FROM settlements");
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM mirror_records"), ns);
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM settlements s JOIN mirror_records m "
                                 "ON m.job_id = s.job_id AND m.batch_id = s.batch_id"),
                     ns);
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM mirror_batches b WHERE count <> "
                                 "(SELECT count(*) FROM mirror_records m WHERE m.batch_id = b.id)"),
                     0);
    for (int64_t id = 0; id < nb; id++) {
        uint8_t *cd, w[32];
        size_t len;
        assert_int_equal(qr_mirror_simple_calldata("batchRoots(uint64)", 1, (uint64_t)id, &cd, &len), 0);
        s_view(cd, len, w);
        char got[67], want[80];
        qr_hex_encode(w, 32, got);
        s_text(want, sizeof want, "SELECT '0x' || encode(root, 'hex') FROM mirror_batches WHERE id = %lld",
               (long long)id);
        assert_string_equal(got, want);
    }
}

/* The proof document of a job from the mirror's HTTP endpoint. */
static json_t *s_proof_doc(uint64_t job)
{
    static char body[1 << 16];
    char path[64];
    snprintf(path, sizeof path, "/proof/%" PRIu64, job);
    assert_int_equal(h_http_get(HPORT, path, body, sizeof body), 200);
    json_error_t je;
    json_t *doc = json_loads(body, 0, &je);
    assert_non_null(doc);
    return doc;
}

static bool s_verify_on_chain(json_t *doc, const qr_mirror_rec_t *override)
{
    qr_mirror_rec_t rec;
    uint64_t batch;
    uint8_t root[32], proof[QR_MERKLE_MAX_DEPTH][32];
    size_t np;
    char err[160];
    assert_int_equal(qr_mirror_proof_parse(doc, &rec, &batch, root, proof, &np, err, sizeof err), 0);
    if (override)
        rec = *override;
    uint8_t *cd, w[32];
    size_t len;
    assert_int_equal(qr_mirror_verify_calldata(batch, &rec, (const uint8_t(*)[32])proof, np, &cd, &len), 0);
    s_view(cd, len, w);
    return w[31] == 1;
}

static void s_write_keys(void)
{
    for (int i = 0; i < 4; i++) {
        FILE *f = fopen(s_key_files[i], "w");
        assert_non_null(f);
        fprintf(f, "%s\n", s_dev_keys[i]);
        fclose(f);
        chmod(s_key_files[i], 0600);
        uint8_t sec[32];
        char err[160];
        assert_int_equal(qr_hex_decode_exact(s_dev_keys[i], sec, 32), 0);
        s_keys[i] = qr_ethkey_new(sec, err, sizeof err);
        assert_non_null(s_keys[i]);
    }
}

static void s_set_address(const char *account, int key)
{
    char addr[43], out[512];
    qr_address_to_text(qr_ethkey_address(s_keys[key]), addr);
    assert_int_equal(s_run(out, sizeof out, "%s --db='%s' address %s %s", QR_MIRROR_BIN, s_db,
                           account, addr), 0);
}

static bool s_log_has(const char *log, const char *what)
{
    char path[256], line[4096];
    snprintf(path, sizeof path, "logs/%s.log", log);
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, what) != NULL;
    if (f)
        fclose(f);
    return found;
}

/* ---- setup --------------------------------------------------------------------- */

static int s_setup(void **state)
{
    (void)state;
    const char *eth = getenv("QUARRY_TEST_ETH_URL"), *bin = getenv("QUARRY_TEST_SETTLEMENT_BIN");
    snprintf(s_eth, sizeof s_eth, "%s", eth);
    snprintf(s_relay_url, sizeof s_relay_url, "http://127.0.0.1:%d", RELAY_PORT);
    char err[160];
    s_rpc = qr_rpc_new(s_eth, 10000, err, sizeof err);
    assert_non_null(s_rpc);
    s_write_keys();
    h_db_create("qr_it_mirror", s_db, sizeof s_db);
    s_broker = h_broker("mirror-broker", s_db, CPORT, WPORT, NULL);
    s_w1 = h_worker("mirror-w1", WPORT, "mw1", "op-a", 2, 100, NULL);
    s_w2 = h_worker("mirror-w2", WPORT, "mw2", "op-b", 2, 100, NULL);
    s_alice = h_client(CPORT, "alice");
    quarry_balance_t b;
    assert_int_equal(quarry_deposit(s_alice, "alice", 100000000, &b), QUARRY_OK);
    h_wait_online(s_alice, 2);

    /* the contract, deployed by the mirror's own subcommand */
    char out[4096];
    assert_int_equal(s_run(out, sizeof out, "%s --rpc-url=%s --key-file=%s deploy %s", QR_MIRROR_BIN,
                           s_eth, s_key_files[0], bin), 0);
    out[strcspn(out, "\n")] = '\0';
    assert_int_equal(qr_address_from_text(out, s_contract), 0);
    qr_address_to_text(s_contract, s_contract_text);
    /* alice deposits 10 ether on chain for the operators to claim from */
    qr_abi_enc_t e;
    uint8_t *cd;
    size_t len;
    qr_abi_enc_init(&e, "deposit()");
    assert_int_equal(qr_abi_enc_finish(&e, &cd, &len), 0);
    qr_abi_enc_free(&e);
    qr_receipt_t r;
    qr_u256_t ten = qr_u256_from_u64(10000000000000000000ULL);
    s_send(s_keys[1], s_contract, ten, cd, len, &r);
    assert_int_equal(r.status, 1);
    qr_receipt_free(&r);
    free(cd);
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    quarry_client_destroy(&s_alice);
    if (s_mirror > 0)
        h_stop(s_mirror, SIGTERM, 10000);
    s_stop_relay();
    s_kill_relay(&s_pg_relay);
    h_stop(s_w1, SIGTERM, 10000);
    h_stop(s_w2, SIGTERM, 10000);
    h_stop(s_broker, SIGTERM, 10000);
    h_db_drop("qr_it_mirror");
    for (int i = 0; i < 4; i++)
        qr_ethkey_destroy(&s_keys[i]);
    qr_rpc_destroy(&s_rpc);
    return 0;
}

/* ---- tests --------------------------------------------------------------------- */

static void test_flow(void **state)
{
    (void)state;
    s_jobs(40);
    /* op-b has no address yet: its records must wait, not vanish */
    s_set_address("alice", 1);
    s_set_address("op-a", 2);
    s_mirror = s_start_mirror("mirror-1", s_eth, NULL);
    int64_t opa = h_sql(s_db, "SELECT count(*) FROM settlements s JOIN accounts a ON a.id = "
                              "s.operator_id WHERE a.name = 'op-a'");
    int64_t opb = 40 - opa;
    for (int i = 0; i < 150; i++) {
        if (h_sql(s_db, "SELECT count(*) FROM mirror_batches WHERE state = 'confirmed'") > 0 &&
            h_sql(s_db, "SELECT count(*) FROM mirror_records") == opa &&
            h_sql(s_db, "SELECT count(*) FROM mirror_batches WHERE state <> 'confirmed'") == 0)
            break;
        s_mine();
        h_sleep_ms(200);
    }
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM mirror_records"), opa);
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM settlements WHERE batch_id IS NULL"), opb);
    if (opb > 0) {
        for (int i = 0; i < 50 && !s_log_has("mirror-1", "account=\"op-b\""); i++)
            h_sleep_ms(100);
        assert_true(s_log_has("mirror-1", "settlements wait for an Ethereum address"));
        assert_true(s_log_has("mirror-1", "account=\"op-b\""));
    }
    static char m[1 << 16];
    assert_int_equal(h_http_get(HPORT, "/metrics", m, sizeof m), 200);
    h_sleep_ms(2100); /* the counters are re-read every 2 s */
    assert_int_equal(h_http_get(HPORT, "/metrics", m, sizeof m), 200);
    assert_int_equal((int64_t)h_metric(m, "quarry_mirror_settlements_waiting_address"), opb);
    assert_int_equal(h_http_get(HPORT, "/healthz", m, sizeof m), 200);

    s_set_address("op-b", 3);
    s_wait_mirrored(30000);
    s_check_batches();
    /* the state machine's last step: settled -> mirrored, with its event row,
     * for every job of a confirmed batch and no other */
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM jobs j JOIN mirror_records r ON r.job_id = "
                                 "j.id JOIN mirror_batches b ON b.id = r.batch_id "
                                 "WHERE b.state = 'confirmed' AND j.state <> 'mirrored'"),
                     0);
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM job_events WHERE state = 'mirrored'"),
                     h_sql(s_db, "SELECT count(*) FROM jobs WHERE state = 'mirrored'"));
    assert_true(h_sql(s_db, "SELECT count(*) FROM jobs WHERE state = 'mirrored'") >= 40);
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM job_events WHERE state = 'mirrored' "
                                 "AND detail NOT LIKE 'batch %% tx 0x%%'"),
                     0);
    assert_true(h_sql(s_db, "SELECT max(count) FROM mirror_batches") <= 16);
    assert_true(h_sql(s_db, "SELECT count(*) FROM mirror_batches") >= 3);

    /* every record verifies on chain, with the amount the ledger booked */
    for (int64_t i = 0; i < 40; i++) {
        uint64_t job = (uint64_t)h_sql(s_db, "SELECT job_id FROM settlements ORDER BY job_id "
                                             "OFFSET %lld LIMIT 1", (long long)i);
        json_t *doc = s_proof_doc(job);
        int64_t net = h_sql(s_db, "SELECT price - fee FROM settlements WHERE job_id = %" PRIu64, job);
        char want[40];
        snprintf(want, sizeof want, "%llu", (unsigned long long)net * WEI_PER_UNIT);
        assert_string_equal(json_string_value(json_object_get(doc, "amount")), want);
        assert_string_equal(json_string_value(json_object_get(doc, "state")), "confirmed");
        assert_true(s_verify_on_chain(doc, NULL));
        if (i == 0) {
            /* forged: one wei more, or another operator */
            qr_mirror_rec_t rec;
            uint64_t batch;
            uint8_t root[32], proof[QR_MERKLE_MAX_DEPTH][32];
            size_t np;
            char err[160];
            assert_int_equal(qr_mirror_proof_parse(doc, &rec, &batch, root, proof, &np, err,
                                                   sizeof err), 0);
            qr_u256_t one = qr_u256_from_u64(1);
            qr_mirror_rec_t forged = rec;
            qr_u256_add(&rec.amount, &one, &forged.amount);
            assert_false(s_verify_on_chain(doc, &forged));
            forged = rec;
            memcpy(forged.operator_, qr_ethkey_address(s_keys[0]), 20);
            assert_false(s_verify_on_chain(doc, &forged));
        }
        json_decref(doc);
    }
    static char out[1 << 16];
    uint64_t first = (uint64_t)h_sql(s_db, "SELECT min(job_id) FROM settlements");
    assert_int_equal(s_run(out, sizeof out, "%s proof %" PRIu64 " --mirror=http://127.0.0.1:%d "
                           "--rpc=%s --json", QR_CLI_BIN, first, HPORT, s_eth), 0);
    assert_non_null(strstr(out, "\"verified_on_chain\":true"));
    assert_int_equal(s_run(out, sizeof out, "%s proof %" PRIu64 " --mirror=http://127.0.0.1:%d "
                           "--rpc=%s", QR_CLI_BIN, first, HPORT, s_eth), 0);
    assert_non_null(strstr(out, "verifySettlement: true"));
    /* a job that was never settled */
    assert_int_equal(s_run(out, sizeof out, "%s proof 999999 --mirror=http://127.0.0.1:%d 2>&1",
                           QR_CLI_BIN, HPORT), 4);

    /* op-a claims: paid exactly its records, from alice's deposit */
    const uint8_t *opa_addr = qr_ethkey_address(s_keys[2]);
    qr_u256_t bal0, dep0, bal1, dep1;
    s_balance(opa_addr, &bal0);
    s_deposits(qr_ethkey_address(s_keys[1]), &dep0);
    int64_t opa_net = h_sql(s_db, "SELECT coalesce(sum(s.price - s.fee), 0) FROM settlements s JOIN "
                                  "accounts a ON a.id = s.operator_id WHERE a.name = 'op-a'");
    /* the wrong key for op-b's records is refused before anything is sent */
    assert_int_equal(s_run(out, sizeof out, "%s claim --mirror=http://127.0.0.1:%d --rpc=%s "
                           "--eth-key=%s --operator=op-b 2>&1", QR_CLI_BIN, HPORT, s_eth,
                           s_key_files[2]), 2);
    assert_int_equal(s_run(out, sizeof out, "%s claim --mirror=http://127.0.0.1:%d --rpc=%s "
                           "--eth-key=%s --operator=op-a --json", QR_CLI_BIN, HPORT, s_eth,
                           s_key_files[2]), 0);
    json_error_t je;
    json_t *doc = json_loads(out, 0, &je);
    assert_non_null(doc);
    json_t *claimed = json_object_get(doc, "claimed");
    assert_int_equal((int64_t)json_array_size(claimed), opa);
    char want[40];
    snprintf(want, sizeof want, "%llu", (unsigned long long)opa_net * WEI_PER_UNIT);
    assert_string_equal(json_string_value(json_object_get(doc, "total_amount")), want);
    /* what the claims cost in gas, from their receipts */
    qr_u256_t gas_cost = qr_u256_from_u64(0);
    for (size_t i = 0; i < json_array_size(claimed); i++) {
        uint8_t h[32];
        const char *hx = json_string_value(json_object_get(json_array_get(claimed, i), "tx_hash"));
        assert_int_equal(qr_hex_decode_exact(hx, h, 32), 0);
        qr_receipt_t r;
        s_check(qr_rpc_receipt(s_rpc, h, &r));
        assert_int_equal(r.status, 1);
        qr_u256_t c;
        assert_int_equal(qr_u256_mul_small(&r.effective_gas_price, (uint32_t)r.gas_used, &c), 0);
        qr_u256_add(&gas_cost, &c, &gas_cost);
        qr_receipt_free(&r);
    }
    json_decref(doc);
    s_balance(opa_addr, &bal1);
    s_deposits(qr_ethkey_address(s_keys[1]), &dep1);
    qr_u256_t paid = qr_u256_from_u64((uint64_t)opa_net * WEI_PER_UNIT), expect, moved;
    qr_u256_add(&bal0, &paid, &expect);
    qr_u256_sub(&expect, &gas_cost, &expect);
    assert_memory_equal(bal1.b, expect.b, 32);
    qr_u256_sub(&dep0, &dep1, &moved);
    assert_memory_equal(moved.b, paid.b, 32);
    /* a second claim finds everything claimed and sends nothing */
    assert_int_equal(s_run(out, sizeof out, "%s claim --mirror=http://127.0.0.1:%d --rpc=%s "
                           "--eth-key=%s --json", QR_CLI_BIN, HPORT, s_eth, s_key_files[2]), 0);
    doc = json_loads(out, 0, &je);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "claimed")), 0);
    assert_int_equal((int64_t)json_array_size(json_object_get(doc, "skipped")), opa);
    json_decref(doc);
    h_check_books(s_db);
}

static void test_crash(void **state)
{
    (void)state;
    if (!QR_TEST_FAULTS_BUILD) {
        skip();
        return;
    }
    for (int round = 0; round < 2; round++) {
        const char *fault = round == 0 ? "--fault-exit=exit-after-persist" : "--fault-exit=exit-after-send";
        assert_int_equal(h_stop(s_mirror, SIGTERM, 10000), 0);
        s_mirror = 0;
        s_jobs(20);
        int64_t before = h_sql(s_db, "SELECT count(*) FROM mirror_batches");
        pid_t m = s_start_mirror("mirror-crash", s_eth, fault, NULL);
        int st = h_stop(m, 0, 30000); /* signal 0: just wait for the exit */
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 3);
        int64_t id = before;
        char want_state[16];
        snprintf(want_state, sizeof want_state, "%s", round == 0 ? "signed" : "sent");
        assert_int_equal(h_sql(s_db, "SELECT count(*) FROM mirror_batches WHERE id = %lld AND "
                                     "state = '%s'", (long long)id, want_state), 1);
        /* persisted but not sent: the chain has not seen it; sent: mined */
        assert_int_equal((int64_t)s_next_batch(), round == 0 ? id : id + 1);
        char hash0[80], hash1[80];
        s_text(hash0, sizeof hash0, "SELECT encode(tx_hash, 'hex') FROM mirror_batches WHERE id = %lld",
               (long long)id);
        s_mirror = s_start_mirror("mirror-2", s_eth, NULL);
        s_wait_mirrored(30000);
        s_check_batches();
        /* the restart finished the batch with the very transaction it had
         * persisted: one transaction, no second post */
        assert_int_equal(h_sql(s_db, "SELECT count(*) FROM mirror_txs WHERE batch_id = %lld",
                               (long long)id), 1);
        s_text(hash1, sizeof hash1, "SELECT encode(tx_hash, 'hex') FROM mirror_batches WHERE id = %lld",
               (long long)id);
        assert_string_equal(hash0, hash1);
    }
    /* kill -9 at some moment of a busy backlog, a few times */
    assert_int_equal(h_stop(s_mirror, SIGTERM, 10000), 0);
    s_jobs(120);
    for (int k = 0; k < 3; k++) {
        s_mirror = s_start_mirror("mirror-kill", s_eth, "--batch-size=4", NULL);
        h_sleep_ms(150 + (int)(rand_r(&s_seed) % 400));
        kill(s_mirror, SIGKILL);
        waitpid(s_mirror, NULL, 0);
        s_mirror = 0;
    }
    s_mirror = s_start_mirror("mirror-3", s_eth, NULL);
    s_wait_mirrored(60000);
    s_check_batches();
    h_check_books(s_db);
}

static void test_stuck(void **state)
{
    (void)state;
    s_automine(false);
    s_jobs(5);
    /* the batch goes out and sits in the pool; after stuck-ms a re-priced
     * transaction with the same nonce replaces it */
    int64_t id = -1;
    for (int i = 0; i < 100 && id < 0; i++) {
        h_sleep_ms(100);
        id = h_sql(s_db, "SELECT coalesce(max(id), -1) FROM mirror_batches WHERE state IN "
                         "('signed', 'sent')");
    }
    assert_true(id >= 0);
    for (int i = 0; i < 100; i++) {
        if (h_sql(s_db, "SELECT count(*) FROM mirror_txs WHERE batch_id = %lld", (long long)id) >= 2)
            break;
        h_sleep_ms(100);
    }
    assert_true(h_sql(s_db, "SELECT count(*) FROM mirror_txs WHERE batch_id = %lld", (long long)id) >= 2);
    assert_int_equal(h_sql(s_db, "SELECT count(DISTINCT nonce) FROM mirror_txs WHERE batch_id = %lld",
                           (long long)id), 1);
    assert_int_equal(h_sql(s_db, "SELECT (max(max_fee) > min(max_fee))::int FROM mirror_txs "
                                 "WHERE batch_id = %lld", (long long)id), 1);
    s_automine(true);
    s_mine();
    s_wait_mirrored(30000);
    s_check_batches();
    /* the one mined is the newest, highest-priced transaction */
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM mirror_batches b WHERE b.id = %lld AND "
                                 "b.tx_hash = (SELECT tx_hash FROM mirror_txs t WHERE t.batch_id = "
                                 "b.id ORDER BY max_fee DESC LIMIT 1)", (long long)id), 1);
}

/* Polls /healthz for up to 5 s until it answers want; the last status */
static int s_wait_health(int want, char *m, size_t cap)
{
    int status = 0;
    for (int i = 0; i < 50 && status != want; i++) {
        status = h_http_get(HPORT, "/healthz", m, cap);
        if (status != want)
            h_sleep_ms(100);
    }
    return status;
}

static void test_node_down(void **state)
{
    (void)state;
    assert_int_equal(h_stop(s_mirror, SIGTERM, 10000), 0);
    s_relay = s_start_relay();
    h_sleep_ms(200);
    s_mirror = s_start_mirror("mirror-relay", s_relay_url, NULL);
    s_jobs(8);
    s_wait_mirrored(30000);
    /* the node goes away: the mirror backs off and says so */
    s_stop_relay();
    s_jobs(24);
    static char m[1 << 16];
    assert_int_equal(s_wait_health(503, m, sizeof m), 503);
    h_sleep_ms(2500);
    assert_int_equal(h_http_get(HPORT, "/metrics", m, sizeof m), 200);
    assert_true(h_metric(m, "quarry_mirror_rpc_errors_total") >= 2);
    assert_int_equal((int)h_metric(m, "quarry_mirror_node_up"), 0);
    /* nothing was lost while it was away: it catches up */
    s_relay = s_start_relay();
    s_wait_mirrored(30000);
    s_check_batches();
    assert_int_equal(h_http_get(HPORT, "/healthz", m, sizeof m), 200);
    assert_true(h_alive(s_mirror));
}

static void test_database_down(void **state)
{
    (void)state;
    assert_int_equal(h_stop(s_mirror, SIGTERM, 10000), 0);
    s_mirror = 0;
    /* the mirror reaches the cluster's TCP port through the relay */
    const char *p = strstr(s_db, "port=");
    assert_non_null(p);
    int pgport = atoi(p + 5);
    static char dbarg[600];
    snprintf(dbarg, sizeof dbarg,
             "--db=host=127.0.0.1 port=%d dbname=qr_it_mirror user=postgres connect_timeout=2",
             PG_RELAY_PORT);
    s_pg_relay = s_start_relay_to(PG_RELAY_PORT, pgport);
    h_sleep_ms(200);
    s_mirror = s_start_mirror("mirror-pgrelay", s_eth, dbarg, NULL);
    s_jobs(8);
    s_wait_mirrored(30000);
    /* the database goes away for the mirror while settlements keep coming */
    s_kill_relay(&s_pg_relay);
    s_jobs(24);
    static char m[1 << 16];
    assert_int_equal(s_wait_health(503, m, sizeof m), 503);
    h_sleep_ms(2000);
    assert_true(h_alive(s_mirror));
    assert_int_equal(h_http_get(HPORT, "/metrics", m, sizeof m), 200);
    assert_int_equal((int)h_metric(m, "quarry_mirror_db_up"), 0);
    assert_true(h_metric(m, "quarry_mirror_db_errors_total") >= 1);
    /* it was not mirroring meanwhile: the new settlements wait */
    assert_true(h_sql(s_db, "SELECT count(*) FROM settlements WHERE batch_id IS NULL") >= 1);
    /* the database is back: it reconnects, locks again and catches up */
    s_pg_relay = s_start_relay_to(PG_RELAY_PORT, pgport);
    s_wait_mirrored(30000);
    s_check_batches();
    assert_int_equal(s_wait_health(200, m, sizeof m), 200);
    assert_true(s_log_has("mirror-pgrelay", "database"));
    h_check_books(s_db);
}

int main(void)
{
    if (!getenv("QUARRY_TEST_ETH_URL") || !getenv("QUARRY_TEST_SETTLEMENT_BIN")) {
        fprintf(stderr, "it_mirror: SKIP: no node or no compiled contract (run through ctest)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow),          cmocka_unit_test(test_crash),
        cmocka_unit_test(test_stuck),         cmocka_unit_test(test_node_down),
        cmocka_unit_test(test_database_down),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
