/* CurveZMQ end to end: only registered keys get in, each key acts as its own
 * account, admin powers need an admin key, and a worker flooding reports
 * about jobs it does not hold is refused and loses its standing while honest
 * peers are served. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "err.h"
#include "harness.h"
#include "keys.h"
#include "wire.h"

#define CPORT 27190
#define WPORT 27191
#define MPORT 27192

static char s_dir[256], s_db[512];
static pid_t s_broker, s_worker;
static char s_broker_pub[41], s_admin_pub[41], s_alice_pub[41], s_bob_pub[41], s_op_pub[41],
    s_rogue_pub[41], s_rogue_sec[41];

static void s_key(const char *name, char *pub, char *sec_out)
{
    char prefix[300], sec[41];
    snprintf(prefix, sizeof prefix, "%s/%s", s_dir, name);
    assert_int_equal(qr_keys_generate(pub, sec), 0);
    char err[256];
    if (qr_keys_write(prefix, pub, sec, err, sizeof err) != 0)
        fail_msg("%s", err);
    if (sec_out)
        memcpy(sec_out, sec, 41);
}

static quarry_err_t s_connect(const char *keyname, const char *server_key, const char *account,
                              quarry_client_t **c)
{
    char ep[64], keyfile[300];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", CPORT);
    snprintf(keyfile, sizeof keyfile, "%s/%s.key", s_dir, keyname ? keyname : "");
    quarry_client_opts_t o;
    quarry_client_opts_init(&o);
    o.endpoint = ep;
    o.account = account;
    o.timeout_ms = 1500;
    o.server_key = server_key;
    o.key_file = keyname ? keyfile : NULL;
    return quarry_client_new_opts(&o, c);
}

static quarry_client_t *s_client(const char *keyname, const char *account)
{
    quarry_client_t *c = NULL;
    for (int i = 0; i < 40; i++) {
        if (s_connect(keyname, s_broker_pub, account, &c) == QUARRY_OK) {
            quarry_client_set_timeout(c, 20000);
            return c;
        }
        h_sleep_ms(250);
    }
    fail_msg("%s could not connect", keyname);
    return NULL;
}

static int s_setup(void **state)
{
    (void)state;
    char cwd[200];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(s_dir, sizeof s_dir, "%s/seckeys", cwd);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(mkdir(s_dir, 0700), 0);
    s_key("broker", s_broker_pub, NULL);
    s_key("admin", s_admin_pub, NULL);
    s_key("alice", s_alice_pub, NULL);
    s_key("bob", s_bob_pub, NULL);
    s_key("op", s_op_pub, NULL);
    s_key("rogue", s_rogue_pub, s_rogue_sec);
    char mallory[41];
    s_key("mallory", mallory, NULL);
    h_db_create("qr_it_sec", s_db, sizeof s_db);
    char curve[320], admins[64], dbarg[600], cep[64], wep[64], met[64];
    snprintf(curve, sizeof curve, "--curve-key=%s/broker", s_dir);
    snprintf(admins, sizeof admins, "--admin-keys=%s", s_admin_pub);
    snprintf(dbarg, sizeof dbarg, "--db=%s", s_db);
    snprintf(cep, sizeof cep, "--client-endpoint=tcp://127.0.0.1:%d", CPORT);
    snprintf(wep, sizeof wep, "--worker-endpoint=tcp://127.0.0.1:%d", WPORT);
    snprintf(met, sizeof met, "--metrics-addr=127.0.0.1:%d", MPORT);
    char *argv[] = {QR_BROKER_BIN, cep, wep, dbarg, curve, admins, met, "--heartbeat-ms=200", NULL};
    s_broker = h_spawn("sec-broker", argv);
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    if (s_worker)
        h_stop(s_worker, SIGTERM, 10000);
    assert_int_equal(h_stop(s_broker, SIGTERM, 10000), 0);
    h_db_drop("qr_it_sec");
    return 0;
}

/* The admin binds keys; alice and the operator's worker get in, and alice's
 * job runs and is paid for; what she may not do is refused. */
static void test_registered_keys(void **state)
{
    (void)state;
    quarry_client_t *root = s_client("admin", "root");
    assert_int_equal(quarry_admin_key(root, "add-client", s_alice_pub, "alice"), QUARRY_OK);
    assert_int_equal(quarry_admin_key(root, "add-client", s_bob_pub, "bob"), QUARRY_OK);
    assert_int_equal(quarry_admin_key(root, "add-operator", s_op_pub, "op-sec"), QUARRY_OK);
    assert_int_equal(quarry_admin_key(root, "add-operator", s_rogue_pub, "op-rogue"), QUARRY_OK);
    /* a key bound elsewhere is not silently moved */
    assert_int_equal(quarry_admin_key(root, "add-client", s_alice_pub, "bob"), QUARRY_ESTATE);
    assert_int_equal(quarry_deposit(root, "alice", 100000, NULL), QUARRY_OK);
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM curve_keys"), 4);

    char skey[300], wkey[300], wep[64];
    snprintf(skey, sizeof skey, "--server-key=%s/broker.pub", s_dir);
    snprintf(wkey, sizeof wkey, "--key=%s/op.key", s_dir);
    snprintf(wep, sizeof wep, "--broker=tcp://127.0.0.1:%d", WPORT);
    char *wargv[] = {QR_WORKER_BIN, wep, skey, wkey, "--name=sec-w", "--operator=op-sec",
                     "--slots=1", "--ask-price=10", NULL};
    s_worker = h_spawn("sec-worker", wargv);
    h_wait_online(root, 1);

    quarry_client_t *alice = s_client("alice", "alice");
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1};
    quarry_job_opts_t o;
    quarry_job_opts_init(&o);
    o.max_price = 1000;
    uint64_t id;
    quarry_job_info_t info;
    assert_int_equal(quarry_gemm_submit(alice, 2, 2, 2, a, b, &o, &id, NULL, NULL), QUARRY_OK);
    assert_int_equal(quarry_job_wait(alice, id, 30000, NULL, NULL, &info), QUARRY_OK);
    float c[4];
    assert_int_equal(quarry_job_result(alice, id, c, 4, NULL, NULL), QUARRY_OK);
    assert_true(c[0] == 1 && c[3] == 4);
    /* not an admin */
    assert_int_equal(quarry_deposit(alice, "alice", 5, NULL), QUARRY_EPERM);
    assert_non_null(strstr(quarry_client_last_error(alice), "admin"));
    quarry_dash_t *d = NULL;
    assert_int_equal(quarry_dash(alice, &d), QUARRY_EPERM);
    assert_int_equal(quarry_admin_key(alice, "add-admin", s_alice_pub, "alice"), QUARRY_EPERM);
    quarry_balance_t bal;
    assert_int_equal(quarry_balance(alice, "bob", &bal), QUARRY_EPERM);
    quarry_job_info_t *list = NULL;
    size_t n = 0;
    assert_int_equal(quarry_job_list(alice, NULL, 10, true, &list, &n), QUARRY_EPERM);
    /* bob cannot see, wait on, cancel or download alice's job */
    quarry_client_t *bob = s_client("bob", "bob");
    assert_int_equal(quarry_job_status(bob, id, &info), QUARRY_ENOTFOUND);
    assert_int_equal(quarry_job_cancel(bob, id, &info), QUARRY_ENOTFOUND);
    assert_int_equal(quarry_job_result(bob, id, c, 4, NULL, NULL), QUARRY_ENOTFOUND);
    assert_int_equal(quarry_job_wait(bob, id, 2000, NULL, NULL, &info), QUARRY_ENOTFOUND);
    /* a key acts only as its own account */
    quarry_client_t *fake = NULL;
    assert_int_equal(s_connect("bob", s_broker_pub, "alice", &fake), QUARRY_EPERM);
    quarry_client_destroy(&fake);
    /* the admin sees everything */
    assert_int_equal(quarry_dash(root, &d), QUARRY_OK);
    assert_int_equal(d->ledger_sum, 0);
    quarry_dash_free(&d);
    quarry_client_destroy(&bob);
    quarry_client_destroy(&alice);
    quarry_client_destroy(&root);
    h_check_books(s_db);
}

/* Keys the broker does not know, a wrong server key, and no CURVE at all:
 * no handshake, so no answer; the broker counts them and keeps serving. */
static void test_refused_peers(void **state)
{
    (void)state;
    quarry_client_t *c = NULL;
    assert_int_equal(s_connect("mallory", s_broker_pub, "mallory", &c), QUARRY_EUNAVAIL);
    assert_null(c);
    char wrong[41], wsec[41];
    assert_int_equal(qr_keys_generate(wrong, wsec), 0);
    assert_int_equal(s_connect("alice", wrong, "alice", &c), QUARRY_EUNAVAIL);
    assert_int_equal(s_connect(NULL, NULL, "alice", &c), QUARRY_EUNAVAIL); /* plain text */
    static char m[1 << 16];
    assert_int_equal(h_http_get(MPORT, "/metrics", m, sizeof m), 200);
    assert_true(h_metric(m, "quarry_handshakes_refused_total{domain=\"clients\"}") >= 1);
    /* honest clients are still served */
    quarry_client_t *alice = s_client("alice", "alice");
    quarry_balance_t bal;
    assert_int_equal(quarry_balance(alice, NULL, &bal), QUARRY_OK);
    quarry_client_destroy(&alice);
}

/* A registered operator's worker that floods RESULTs for a job it does not
 * hold: each is refused, it drops below min-reputation, the job's owner is
 * unaffected. */
static void test_worker_flood(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, s_broker_pub, 41);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, s_rogue_pub, 41);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, s_rogue_sec, 41);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", WPORT);
    assert_int_equal(zmq_connect(s, ep), 0);
    Quarry__Ready r = QUARRY__READY__INIT;
    r.name = "rogue-w";
    r.operator_ = "op-rogue";
    char *rt[] = {"ai.gemm"};
    r.runtimes = rt;
    r.n_runtimes = 1;
    r.slots = 1;
    r.ask_price = 1;
    assert_int_equal(qr_wire_send(s, NULL, 0, QR_PROTO_WORKER, QR_WCMD_READY, &r.base, NULL, 0), QR_OK);
    qr_msg_t m;
    char err[128];
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    assert_true(zmq_poll(&it, 1, 10000) > 0);
    assert_int_equal(qr_wire_recv(s, false, QR_PROTO_WORKER, 0, &m, err, sizeof err), QR_OK);
    assert_int_equal(m.cmd, QR_WCMD_READY | QR_CMD_REPLY);
    qr_msg_close(&m);
    float cbuf[4] = {9, 9, 9, 9};
    int refused = 0;
    for (int i = 0; i < 30; i++) {
        Quarry__Result res = QUARRY__RESULT__INIT;
        res.job_id = 1; /* alice's job, settled by another worker */
        res.units = 1;
        qr_payload_t p = {cbuf, sizeof cbuf};
        qr_wire_send(s, NULL, 0, QR_PROTO_WORKER, QR_WCMD_RESULT, &res.base, &p, 1);
    }
    for (int i = 0; i < 200 && refused < 30; i++) {
        if (zmq_poll(&it, 1, 2000) <= 0)
            break;
        if (qr_wire_recv(s, false, QR_PROTO_WORKER, 0, &m, err, sizeof err) == QR_OK &&
            m.cmd == QR_CMD_ERROR)
            refused++;
        qr_msg_close(&m);
    }
    assert_int_equal(refused, 30);
    assert_true(h_sql(s_db, "SELECT reputation FROM workers WHERE name = 'rogue-w'") < 50);
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM settlements"), 1);
    zmq_close(s);
    zmq_ctx_term(ctx);
    /* and alice still gets work done */
    quarry_client_t *alice = s_client("alice", "alice");
    float a[1] = {3}, b[1] = {4};
    quarry_job_opts_t o;
    quarry_job_opts_init(&o);
    o.max_price = 1000;
    uint64_t id;
    quarry_job_info_t info;
    assert_int_equal(quarry_gemm_submit(alice, 1, 1, 1, a, b, &o, &id, NULL, NULL), QUARRY_OK);
    assert_int_equal(quarry_job_wait(alice, id, 30000, NULL, NULL, &info), QUARRY_OK);
    assert_int_equal(h_sql(s_db, "SELECT count(*) FROM settlements s JOIN workers w ON w.id = "
                                 "s.worker_id WHERE w.name = 'rogue-w'"), 0);
    quarry_client_destroy(&alice);
    h_check_books(s_db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registered_keys),
        cmocka_unit_test(test_refused_peers),
        cmocka_unit_test(test_worker_flood),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
