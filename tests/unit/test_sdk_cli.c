/* The quarry CLI as a user runs it: flags, usage errors, exit codes, JSON and
 * error output, against nothing or against a scripted broker peer
 * (test_sdk_fake.c).  QUARRY_CLI is the path of the built binary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "test_sdk_fake.c"

/* Runs QUARRY_CLI with args (a shell fragment), stdout and stderr into out;
 * returns the exit code (-1 when it did not exit normally). */
static const char *s_env = ""; /* VAR=value words put before the binary */

static int s_run(char *out, size_t cap, const char *fmt, ...)
{
    char args[1024], cmd[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd,
             "env -u QUARRY_BROKER -u QUARRY_ACCOUNT -u QUARRY_TIMEOUT_MS -u QUARRY_SERVER_KEY -u QUARRY_KEY %s '%s' %s 2>&1", s_env,
             QUARRY_CLI, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char s_out[65536];

static void test_usage_errors(void **state)
{
    (void)state;
    assert_int_equal(s_run(s_out, sizeof s_out, "frobnicate"), 2);
    assert_non_null(strstr(s_out, "quarry: unknown command 'frobnicate'"));

    assert_int_equal(s_run(s_out, sizeof s_out, "--bogus status 1"), 2);
    assert_non_null(strstr(s_out, "quarry: unknown flag '--bogus'"));

    assert_int_equal(s_run(s_out, sizeof s_out, "status 1 --state queued"), 2);
    assert_non_null(strstr(s_out, "unknown flag '--state' for status"));

    assert_int_equal(s_run(s_out, sizeof s_out, "submit --m abc --n 2 --k 2 --random 1"), 2);
    assert_non_null(strstr(s_out, "--m: 'abc' is not a non-negative integer"));

    assert_int_equal(s_run(s_out, sizeof s_out, "submit --m 2 --n 2 --random 1"), 2);
    assert_non_null(strstr(s_out, "needs --m, --n and --k"));

    assert_int_equal(s_run(s_out, sizeof s_out, "submit --m 2 --n 2 --k 2"), 2);
    assert_non_null(strstr(s_out, "--random SEED"));

    assert_int_equal(s_run(s_out, sizeof s_out, "submit --m 2 --n 2 --k 2 --random 1 --input x"),
                     2);
    assert_non_null(strstr(s_out, "--input FILE|SHA"));

    assert_int_equal(s_run(s_out, sizeof s_out, "submit --m 2 --n 2 --k 2 --random 1 --out x"), 2);
    assert_non_null(strstr(s_out, "--out needs --wait"));

    assert_int_equal(s_run(s_out, sizeof s_out, "status"), 2);
    assert_non_null(strstr(s_out, "usage: quarry status JOB"));

    assert_int_equal(s_run(s_out, sizeof s_out, "status x1"), 2);
    assert_int_equal(s_run(s_out, sizeof s_out, "status 0"), 2);
    assert_int_equal(s_run(s_out, sizeof s_out, "status 1 2"), 2);
    assert_non_null(strstr(s_out, "unexpected argument '2'"));
    assert_int_equal(s_run(s_out, sizeof s_out, "deposit bob -5"), 2);
    assert_int_equal(s_run(s_out, sizeof s_out, "deposit bob 0"), 2);
    assert_int_equal(s_run(s_out, sizeof s_out, "jobs --state nonsense"), 2);
    assert_int_equal(s_run(s_out, sizeof s_out, "jobs --limit"), 2);
    assert_non_null(strstr(s_out, "--limit needs a value"));
    assert_int_equal(s_run(s_out, sizeof s_out, "--timeout-ms 0 dash"), 2);
    assert_int_equal(s_run(s_out, sizeof s_out, "-x dash"), 2);
    assert_int_equal(s_run(s_out, sizeof s_out, "--json=maybe dash"), 2);
    assert_int_equal(s_run(s_out, sizeof s_out, ""), 2);
    assert_non_null(strstr(s_out, "usage: quarry"));
    /* input file of the wrong size: checked before any connection */
    assert_int_equal(s_run(s_out, sizeof s_out,
                           "--broker tcp://127.0.0.1:1 submit --m 2 --n 2 --k 2 --a /dev/null --b /dev/null"),
                     2);
    assert_non_null(strstr(s_out, "must hold exactly 4 fp32 values"));
    assert_int_equal(s_run(s_out, sizeof s_out,
                           "submit --m 2 --n 2 --k 2 --a /nonexistent/a --b /nonexistent/b"),
                     5);
}

static void test_help_version(void **state)
{
    (void)state;
    assert_int_equal(s_run(s_out, sizeof s_out, "--help"), 0);
    assert_non_null(strstr(s_out, "Exit codes:"));
    assert_non_null(strstr(s_out, "submit"));
    assert_non_null(strstr(s_out, "--broker URL"));
    assert_int_equal(s_run(s_out, sizeof s_out, "help"), 0);
    assert_int_equal(s_run(s_out, sizeof s_out, "--version"), 0);
    assert_non_null(strstr(s_out, "quarry 0.1.0"));
}

static void test_unavailable(void **state)
{
    (void)state;
    assert_int_equal(s_run(s_out, sizeof s_out, "--broker tcp://127.0.0.1:1 --timeout-ms 200 status 1"), 3);
    assert_non_null(strstr(s_out, "quarry: broker at tcp://127.0.0.1:1 did not answer within 200 ms"));
    /* the environment is read too; flags win over it */
    s_env = "QUARRY_BROKER=tcp://127.0.0.1:2 QUARRY_TIMEOUT_MS=150";
    assert_int_equal(s_run(s_out, sizeof s_out, "dash"), 3);
    assert_non_null(strstr(s_out, "broker at tcp://127.0.0.1:2 did not answer within 150 ms"));
    assert_int_equal(s_run(s_out, sizeof s_out, "--broker tcp://127.0.0.1:3 dash"), 3);
    assert_non_null(strstr(s_out, "tcp://127.0.0.1:3"));
    s_env = "QUARRY_TIMEOUT_MS=soon";
    assert_int_equal(s_run(s_out, sizeof s_out, "dash"), 2);
    s_env = "";
}

/* Answers: BALANCE ok, SUBMIT refused, STATUS ok, WATCH -> failed, LIST. */
static void script_cli(fake_t *f)
{
    qr_msg_t msg;
    size_t idlen;
    const void *id;

    Quarry__BalanceReq *b = (Quarry__BalanceReq *)fake_expect(f, &msg, QR_CMD_BALANCE, &quarry__balance_req__descriptor);
    FAKE_CHECK(f, b && !strcmp(b->account, "")); /* own account */
    Quarry__BalanceReply br = QUARRY__BALANCE_REPLY__INIT;
    br.req_id = b->req_id;
    br.account = (char *)"bob \"the builder\"";
    br.available = 42;
    br.reserved = 8;
    protobuf_c_message_free_unpacked(&b->base, NULL);
    fake_send(f, &msg, QR_CMD_BALANCE | QR_CMD_REPLY, &br.base, NULL, 0);
    qr_msg_close(&msg);

    Quarry__Submit *s = (Quarry__Submit *)fake_expect(f, &msg, QR_CMD_SUBMIT, &quarry__submit__descriptor);
    FAKE_CHECK(f, s && s->spec && s->spec->m == 3 && s->spec->n == 2 && s->spec->k == 4);
    FAKE_CHECK(f, s->spec->max_price == 77 && s->spec->timeout_ms == 1234 && s->spec->need_gpu);
    FAKE_CHECK(f, qr_msg_npayload(&msg) == 2);
    size_t la, lb;
    qr_msg_payload(&msg, 0, &la);
    qr_msg_payload(&msg, 1, &lb);
    FAKE_CHECK(f, la == 3 * 4 * 4 && lb == 4 * 2 * 4);
    id = qr_msg_identity(&msg, &idlen);
    qr_wire_send_error(f->router, id, idlen, QR_PROTO_CLIENT, s->req_id, 0, QR_EFUNDS,
                       "balance 42 is short of max price 77");
    protobuf_c_message_free_unpacked(&s->base, NULL);
    qr_msg_close(&msg);

    /* --input SHA: the inputs by name, no frames */
    s = (Quarry__Submit *)fake_expect(f, &msg, QR_CMD_SUBMIT, &quarry__submit__descriptor);
    FAKE_CHECK(f, s && s->spec && s->spec->input && strlen(s->spec->input) == 64 &&
                      s->spec->input[0] == 'a' && s->spec->m == 3);
    FAKE_CHECK(f, qr_msg_npayload(&msg) == 0);
    id = qr_msg_identity(&msg, &idlen);
    qr_wire_send_error(f->router, id, idlen, QR_PROTO_CLIENT, s ? s->req_id : 0, 0, QR_ENOTFOUND,
                       "the input artifact aaaaaaaaaaaa... is not in the store");
    if (s)
        protobuf_c_message_free_unpacked(&s->base, NULL);
    qr_msg_close(&msg);

    Quarry__JobRef *r = (Quarry__JobRef *)fake_expect(f, &msg, QR_CMD_STATUS, &quarry__job_ref__descriptor);
    FAKE_CHECK(f, r && r->job_id == 42);
    Quarry__StatusReply sr = QUARRY__STATUS_REPLY__INIT;
    Quarry__JobInfo j = fake_job(42, "running", 500);
    j.detail = (char *)"line1\nline2\ttab";
    sr.req_id = r->req_id;
    sr.job = &j;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    fake_send(f, &msg, QR_CMD_STATUS | QR_CMD_REPLY, &sr.base, NULL, 0);
    qr_msg_close(&msg);

    r = (Quarry__JobRef *)fake_expect(f, &msg, QR_CMD_WATCH, &quarry__job_ref__descriptor);
    FAKE_CHECK(f, r);
    Quarry__Event ev = QUARRY__EVENT__INIT;
    j = fake_job(42, "expired", 0);
    j.detail = (char *)"deadline passed";
    ev.req_id = r->req_id;
    ev.job = &j;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    fake_send(f, &msg, QR_CMD_WATCH | QR_CMD_REPLY, &ev.base, NULL, 0);
    qr_msg_close(&msg);

    Quarry__ListReq *l = (Quarry__ListReq *)fake_expect(f, &msg, QR_CMD_LIST, &quarry__list_req__descriptor);
    FAKE_CHECK(f, l && !strcmp(l->state, "queued") && l->limit == 5 && !l->all_accounts);
    Quarry__ListReply lr = QUARRY__LIST_REPLY__INIT;
    Quarry__JobInfo j1 = fake_job(7, "queued", 0), j2 = fake_job(12345, "queued", 0);
    Quarry__JobInfo *js[2] = {&j1, &j2};
    lr.req_id = l->req_id;
    lr.n_jobs = 2;
    lr.jobs = js;
    protobuf_c_message_free_unpacked(&l->base, NULL);
    fake_send(f, &msg, QR_CMD_LIST | QR_CMD_REPLY, &lr.base, NULL, 0);
    qr_msg_close(&msg);
}

static void test_against_fake(void **state)
{
    (void)state;
    fake_t f;
    assert_int_equal(fake_start(&f, script_cli, NULL), 0);
    const char *ep = f.endpoint;

    assert_int_equal(s_run(s_out, sizeof s_out, "--broker %s --account bob --json balance", ep), 0);
    assert_string_equal(s_out, "{\"account\":\"bob \\\"the builder\\\"\",\"available\":42,"
                               "\"reserved\":8,\"earned\":0}\n");

    assert_int_equal(s_run(s_out, sizeof s_out,
                           "--broker %s submit --m 3 --n 2 --k 4 --random 9 --max-price 77 "
                           "--timeout-ms 1234 --gpu",
                           ep),
                     4);
    assert_string_equal(s_out, "quarry: balance 42 is short of max price 77\n");

    assert_int_equal(s_run(s_out, sizeof s_out,
                           "--broker %s submit --m 3 --n 2 --k 4 --input "
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                           ep),
                     4);
    assert_non_null(strstr(s_out, "is not in the store"));

    assert_int_equal(s_run(s_out, sizeof s_out, "status 42 --json --broker=%s", ep), 0);
    assert_non_null(strstr(s_out, "\"job_id\":42"));
    assert_non_null(strstr(s_out, "\"state\":\"running\""));
    assert_non_null(strstr(s_out, "\"detail\":\"line1\\nline2\\ttab\""));

    assert_int_equal(s_run(s_out, sizeof s_out, "--broker %s wait 42", ep), 1);
    assert_non_null(strstr(s_out, "job 42 expired"));
    assert_non_null(strstr(s_out, "quarry: job 42 expired: deadline passed"));

    assert_int_equal(s_run(s_out, sizeof s_out, "--broker %s jobs --state queued --limit 5", ep), 0);
    assert_non_null(strstr(s_out, "   ID  STATE"));
    assert_non_null(strstr(s_out, "12345  queued"));
    assert_non_null(strstr(s_out, "    7  queued"));

    assert_string_equal(fake_join(&f), "");
}

/* keygen writes a pair and refuses to overwrite; admin and key flags are
 * checked before any connection (exit 2). */
static void test_keys(void **state)
{
    (void)state;
    char dir[] = "/tmp/qr-clikeys-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(s_run(s_out, sizeof s_out, "keygen"), 2);
    assert_non_null(strstr(s_out, "usage: quarry keygen PREFIX"));
    assert_int_equal(s_run(s_out, sizeof s_out, "keygen %s/a", dir), 0);
    assert_int_equal(strcspn(s_out, "\n"), 40); /* the public key, one line */
    char pub[41];
    memcpy(pub, s_out, 40);
    pub[40] = '\0';
    assert_int_equal(s_run(s_out, sizeof s_out, "keygen %s/a", dir), 5);
    assert_non_null(strstr(s_out, "exists"));
    assert_int_equal(s_run(s_out, sizeof s_out, "--json keygen %s/b", dir), 0);
    assert_non_null(strstr(s_out, "\"public_key\":"));

    assert_int_equal(s_run(s_out, sizeof s_out, "admin"), 2);
    assert_int_equal(s_run(s_out, sizeof s_out, "admin frob %s/a.pub x", dir), 2);
    assert_non_null(strstr(s_out, "unknown operation 'frob'"));
    assert_int_equal(s_run(s_out, sizeof s_out, "admin add-client %s/a.pub", dir), 2);
    assert_int_equal(s_run(s_out, sizeof s_out, "admin remove %s/a.pub bob", dir), 2);
    assert_int_equal(s_run(s_out, sizeof s_out, "admin add-client /nonexistent.pub bob"), 2);
    assert_non_null(strstr(s_out, "neither a 40-character Z85 key nor a readable file"));
    /* a readable file that holds no Z85 key */
    assert_int_equal(s_run(s_out, sizeof s_out, "admin add-operator /etc/passwd op"), 2);
    assert_non_null(strstr(s_out, "does not hold a 40-character Z85 public key"));

    /* bad key flags: exit 2 with the reason, nothing sent */
    assert_int_equal(s_run(s_out, sizeof s_out, "--server-key nonsense --timeout-ms 5000 dash"), 2);
    assert_non_null(strstr(s_out, "broker public key"));
    assert_int_equal(s_run(s_out, sizeof s_out, "--server-key '%s' --key %s/a.pub dash", pub, dir), 2);
    assert_non_null(strstr(s_out, "readable by others"));
    s_env = "QUARRY_KEY=/nonexistent.key QUARRY_SERVER_KEY=/nonexistent.pub";
    assert_int_equal(s_run(s_out, sizeof s_out, "dash"), 2);
    s_env = "";
    /* good keys, nobody there: exit 3 with the hint */
    assert_int_equal(s_run(s_out, sizeof s_out,
                           "--broker tcp://127.0.0.1:1 --timeout-ms 200 --server-key %s/a.pub "
                           "--key %s/a.key dash", dir, dir),
                     3);
    assert_non_null(strstr(s_out, "your key is not admitted"));
    assert_int_equal(s_run(s_out, sizeof s_out, "--help"), 0);
    assert_non_null(strstr(s_out, "--server-key KEY"));
    assert_non_null(strstr(s_out, "keygen PREFIX"));
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_help_version),
        cmocka_unit_test(test_unavailable), cmocka_unit_test(test_keys),
        cmocka_unit_test(test_against_fake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
