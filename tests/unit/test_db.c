/* Tests for broker/db.c against a real PostgreSQL (the pg ctest fixture,
 * tests/scripts/pg.sh).  QUARRY_TEST_PG names the cluster's postgres
 * database; the tests create their own database (named with the pid), run
 * in order against it, and drop it at the end.  The test talks libpq
 * directly only to look behind the module's back (catalog checks, killing
 * its backend).  A timing run prints the group-commit rate (not asserted). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "db.h"
#include "err.h"
#include "jobstate.h"
#include "migrations.h"
#include "util.h"

enum { SYS = 1, FEES = 2, CLIENT = 3, OPER = 4, WORKER = 1 };

static char s_admin_ci[512]; /* the cluster's postgres database */
static char s_test_ci[640];  /* our database */
static char s_dbname[64];
static qr_db_t *s_db;
static uint64_t s_txn;       /* next ledger txn id */

/* ---- helpers -------------------------------------------------------------- */

/* Runs sql on a fresh connection to conninfo and returns the first value of
 * the first row as a long long (0 if no rows). */
static long long s_scalar(const char *ci, const char *sql)
{
    PGconn *c = PQconnectdb(ci);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    long long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                      ? (PQgetvalue(r, 0, 0)[0] == 't' ? 1 : atoll(PQgetvalue(r, 0, 0)))
                      : 0;
    PQclear(r);
    PQfinish(c);
    return v;
}

static long long s_q(const char *sql)
{
    return s_scalar(s_test_ci, sql);
}

static qr_db_job_t s_job(uint64_t id, size_t input_len, uint8_t *input)
{
    qr_db_job_t j;
    memset(&j, 0, sizeof j);
    j.id = id;
    j.client_id = CLIENT;
    snprintf(j.kind, sizeof j.kind, "ai.gemm");
    j.state = QR_JOB_QUEUED;
    j.m = 64;
    j.n = 32;
    j.k = 16;
    j.max_price = 100;
    j.need_gpu = true;
    j.min_mem_mb = 1024;
    j.priority = -3;
    j.max_attempts = 3;
    j.created_ms = j.updated_ms = qr_wall_ms();
    j.input = input;
    j.input_len = input_len;
    j.input_blob = id; /* each test job gets its own blob, same id */
    return j;
}

/* A balanced two-entry ledger transaction. */
static void s_move(uint64_t from, int from_bkt, uint64_t to, int to_bkt, uint64_t job,
                   const char *kind, int64_t amount)
{
    uint64_t txn = s_txn++;
    int64_t now = qr_wall_ms();
    qr_db_add_ledger(s_db, txn, from, from_bkt, job, kind, -amount, now);
    qr_db_add_ledger(s_db, txn, to, to_bkt, job, kind, amount, now);
}

/* Settles job: client's reservation of 100 pays 90 to the operator and 10
 * to the fee account, in one txn, with the transitions and the result. */
static void s_settle(uint64_t job_id, const void *result, size_t len)
{
    int64_t now = qr_wall_ms();
    qr_db_job_t j = s_job(job_id, 0, NULL);
    if (result)
        qr_db_add_blob(s_db, (1ull << 40) + job_id, result, len);
    static const int path[] = {QR_JOB_ASSIGNED, QR_JOB_RUNNING, QR_JOB_DONE, QR_JOB_SETTLED};
    for (size_t i = 0; i < sizeof path / sizeof path[0]; i++) {
        j.state = path[i];
        if (result && path[i] == QR_JOB_SETTLED)
            j.result_blob = (1ull << 40) + job_id; /* written with the settled row */
        j.worker_id = WORKER;
        j.attempts = 1;
        j.units = 7;
        j.price = 90;
        j.fee = 10;
        j.updated_ms = now;
        qr_db_job_update(s_db, &j);
        qr_db_add_event(s_db, job_id, path[i], WORKER, "", now);
    }
    uint64_t txn = s_txn++;
    qr_db_add_ledger(s_db, txn, CLIENT, QR_BUCKET_RESERVED, job_id, "payment", -100, now);
    qr_db_add_ledger(s_db, txn, OPER, QR_BUCKET_AVAILABLE, job_id, "payment", 90, now);
    qr_db_add_ledger(s_db, txn, FEES, QR_BUCKET_AVAILABLE, job_id, "fee", 10, now);
    qr_db_add_settlement(s_db, job_id, WORKER, OPER, CLIENT, 7, 90, 10, now);
}

static void s_commit_ok(void)
{
    char err[512] = "";
    int rc = qr_db_commit(s_db, err, sizeof err);
    if (rc != QR_OK)
        fail_msg("commit: %d %s", rc, err);
    assert_int_equal(qr_db_pending(s_db), 0);
}

typedef struct {
    qr_db_account_t a[16];
    int n;
} s_accts_t;

static void s_on_account(void *arg, const qr_db_account_t *a)
{
    s_accts_t *x = arg;
    if (x->n < 16)
        x->a[x->n++] = *a;
}

static const qr_db_account_t *s_find(const s_accts_t *x, uint64_t id)
{
    for (int i = 0; i < x->n; i++)
        if (x->a[i].id == id)
            return &x->a[i];
    return NULL;
}

static void s_balance(uint64_t id, int64_t available, int64_t reserved)
{
    s_accts_t x = {.n = 0};
    char err[256];
    assert_int_equal(qr_db_load_accounts(s_db, s_on_account, &x, err, sizeof err), QR_OK);
    const qr_db_account_t *a = s_find(&x, id);
    assert_non_null(a);
    assert_int_equal(a->available, available);
    assert_int_equal(a->reserved, reserved);
}

/* ---- setup ---------------------------------------------------------------- */

static int s_group_setup(void **state)
{
    const char *ci = getenv("QUARRY_TEST_PG");
    if (!ci || !*ci) {
        fprintf(stderr, "QUARRY_TEST_PG not set: run through ctest (pg fixture)\n");
        return -1;
    }
    snprintf(s_admin_ci, sizeof s_admin_ci, "%s", ci);
    snprintf(s_dbname, sizeof s_dbname, "quarry_test_db_%ld", (long)getpid());
    /* a later keyword overrides an earlier one in a conninfo string */
    snprintf(s_test_ci, sizeof s_test_ci, "%s dbname=%s", ci, s_dbname);
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", s_dbname);
    s_scalar(s_admin_ci, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", s_dbname);
    s_scalar(s_admin_ci, sql);
    s_txn = 1;
    return 0;
}

static int s_group_teardown(void **state)
{
    qr_db_destroy(&s_db);
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", s_dbname);
    s_scalar(s_admin_ci, sql);
    return 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_bad_conninfo(void **state)
{
    char err[256] = "";
    qr_db_t *db = qr_db_new("host=/nonexistent/quarry port=1 dbname=x connect_timeout=2", err,
                            sizeof err);
    assert_null(db);
    assert_true(strlen(err) > 0);
    err[0] = '\0';
    assert_null(qr_db_new("this is = not a conninfo", err, sizeof err));
    assert_true(strlen(err) > 0);
    qr_db_destroy(NULL);
    qr_db_destroy(&db);
    assert_null(db);
}

static void test_migrate(void **state)
{
    char err[256] = "";
    s_db = qr_db_new(s_test_ci, err, sizeof err);
    if (!s_db)
        fail_msg("connect: %s", err);
    assert_true(qr_db_ok(s_db));
    int applied = -1;
    assert_int_equal(qr_db_migrate(s_db, &applied, err, sizeof err), QR_OK);
    assert_int_equal(applied, (int)qr_migrations_count);
    assert_true(qr_migrations_count >= 2);
    for (size_t i = 1; i < qr_migrations_count; i++)
        assert_true(qr_migrations[i].version > qr_migrations[i - 1].version);
    assert_int_equal(qr_db_migrate(s_db, &applied, err, sizeof err), QR_OK);
    assert_int_equal(applied, 0);
    assert_int_equal(qr_db_migrate(s_db, NULL, err, sizeof err), QR_OK);
    assert_int_equal(s_q("SELECT count(*) FROM schema_migrations"), (long long)qr_migrations_count);
    assert_int_equal(s_q("SELECT count(*) FROM schema_migrations WHERE version = 1 AND name = 'core'"),
                     1);
    assert_int_equal(s_q("SELECT count(*) FROM pg_views WHERE viewname LIKE 'v\\_%'"), 8);
    assert_int_equal(s_q("SELECT jobs_without_client + jobs_without_input + dangling_results + "
                         "settlements_without_settled_job + entries_without_account FROM v_integrity"),
                     0);
    /* the lock was released */
    assert_int_equal(s_q("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), 0);
}

static void test_max_ids_empty(void **state)
{
    uint64_t j = 9, a = 9, w = 9, t = 9, bl = 9;
    char err[256];
    assert_int_equal(qr_db_max_ids(s_db, &j, &a, &w, &t, &bl, err, sizeof err), QR_OK);
    assert_int_equal(j + a + w + t + bl, 0);
    assert_int_equal(qr_db_pending(s_db), 0);
    assert_int_equal(qr_db_commit(s_db, err, sizeof err), QR_OK); /* empty batch */
}

static void test_setup_parties(void **state)
{
    qr_db_add_account(s_db, SYS, "system:deposits", QR_ACCT_SYSTEM);
    qr_db_add_account(s_db, FEES, "system:fees", QR_ACCT_SYSTEM);
    qr_db_add_account(s_db, CLIENT, "alice \"the\" client\\", QR_ACCT_CLIENT);
    qr_db_add_account(s_db, OPER, "op-bob", QR_ACCT_OPERATOR);
    qr_db_add_worker(s_db, WORKER, "bob-gpu-1", OPER,
                     "[{\"type\":\"gpu\",\"model\":\"H100\",\"mem_mb\":81920}]", "ai.gemm", 5, 4);
    s_move(SYS, QR_BUCKET_AVAILABLE, CLIENT, QR_BUCKET_AVAILABLE, 0, "deposit", 1000000000);
    assert_int_equal(qr_db_pending(s_db), 4 + 1 + 2);
    s_commit_ok();
    s_balance(CLIENT, 1000000000, 0);
    s_balance(SYS, -1000000000, 0);
    assert_int_equal(s_q("SELECT count(*) FROM workers WHERE state = 'offline' AND slots = 4 AND "
                         "devices->0->>'model' = 'H100'"),
                     1);
    /* re-announce: upsert updates, and the state change lands */
    qr_db_add_worker(s_db, WORKER, "bob-gpu-1", OPER, "[]", "ai.gemm,zk.groth16", 6, 8);
    qr_db_worker_state(s_db, WORKER, "offline", 50, 0);
    qr_db_worker_state(s_db, WORKER, "online", 99, 3); /* last wins */
    s_commit_ok();
    assert_int_equal(s_q("SELECT count(*) FROM workers WHERE state = 'online' AND slots = 8 AND "
                         "ask_price = 6 AND reputation = 99 AND jobs_done = 3 AND "
                         "runtimes = 'ai.gemm,zk.groth16'"),
                     1);
}

typedef struct {
    qr_db_job_t jobs[8];
    int n;
} s_jobs_t;

static void s_on_job_owned(void *arg, qr_db_job_t *job)
{
    s_jobs_t *x = arg;
    if (x->n < 8)
        x->jobs[x->n++] = *job;
    else
        free(job->input);
}

static void s_on_job(void *arg, const qr_db_job_t *job)
{
    s_jobs_t *x = arg;
    if (x->n < 8)
        x->jobs[x->n++] = *job;
}

static void s_on_worker(void *arg, const qr_db_worker_t *w)
{
    *(qr_db_worker_t *)arg = *w;
}

static void test_job_roundtrip(void **state)
{
    char err[512] = "";
    size_t in_len = 32 * 1024;
    uint8_t *input = malloc(in_len);
    for (size_t i = 0; i < in_len; i++)
        input[i] = (uint8_t)(i * 7 + 3);
    qr_db_job_t j = s_job(100, in_len, input);
    j.deadline_ms = j.created_ms + 60000;
    snprintf(j.idem_key, sizeof j.idem_key, "key-\"1\",{x}\\");
    qr_db_add_blob(s_db, j.input_blob, j.input, j.input_len);
    qr_db_add_job(s_db, &j);
    qr_db_add_event(s_db, 100, QR_JOB_SUBMITTED, 0, "", j.created_ms);
    qr_db_add_event(s_db, 100, QR_JOB_QUEUED, 0, "", j.created_ms);
    s_move(CLIENT, QR_BUCKET_AVAILABLE, CLIENT, QR_BUCKET_RESERVED, 100, "reserve", 100);
    qr_db_job_t j2 = s_job(101, 0, NULL); /* no input, no idem key */
    qr_db_add_blob(s_db, j2.input_blob, j2.input, j2.input_len);
    qr_db_add_job(s_db, &j2);
    s_move(CLIENT, QR_BUCKET_AVAILABLE, CLIENT, QR_BUCKET_RESERVED, 101, "reserve", 100);
    s_commit_ok();
    s_balance(CLIENT, 1000000000 - 200, 200);

    qr_db_job_t got;
    assert_int_equal(qr_db_get_job(s_db, 100, &got, err, sizeof err), QR_OK);
    assert_int_equal(got.id, 100);
    assert_int_equal(got.client_id, CLIENT);
    assert_string_equal(got.kind, "ai.gemm");
    assert_int_equal(got.state, QR_JOB_QUEUED);
    assert_int_equal(got.m, 64);
    assert_int_equal(got.n, 32);
    assert_int_equal(got.k, 16);
    assert_int_equal(got.max_price, 100);
    assert_true(got.need_gpu);
    assert_int_equal(got.min_mem_mb, 1024);
    assert_int_equal(got.priority, -3);
    assert_int_equal(got.max_attempts, 3);
    assert_int_equal(got.attempts, 0);
    assert_int_equal(got.deadline_ms, j.deadline_ms);
    assert_int_equal(got.worker_id, 0);
    assert_int_equal(got.created_ms, j.created_ms);
    assert_int_equal(got.updated_ms, j.updated_ms);
    assert_string_equal(got.idem_key, j.idem_key);
    assert_null(got.input);

    assert_int_equal(qr_db_get_job(s_db, 101, &got, err, sizeof err), QR_OK);
    assert_int_equal(got.deadline_ms, 0);
    assert_string_equal(got.idem_key, "");
    assert_int_equal(qr_db_get_job(s_db, 999999, &got, err, sizeof err), QR_ENOTFOUND);

    uint8_t *data = (uint8_t *)"x";
    size_t len = 5;
    assert_int_equal(qr_db_get_result(s_db, 100, &data, &len, err, sizeof err), QR_ENOTFOUND);
    assert_null(data);
    assert_int_equal(len, 0);

    /* reload: both live, oldest first, inputs loaded and owned by us */
    s_jobs_t live = {.n = 0};
    assert_int_equal(qr_db_load_jobs(s_db, s_on_job_owned, &live, err, sizeof err), QR_OK);
    assert_int_equal(live.n, 2);
    assert_int_equal(live.jobs[0].id, 100);
    assert_int_equal(live.jobs[0].input_len, in_len);
    assert_memory_equal(live.jobs[0].input, input, in_len);
    assert_int_equal(live.jobs[1].id, 101);
    assert_non_null(live.jobs[1].input);
    assert_int_equal(live.jobs[1].input_len, 0);
    for (int i = 0; i < live.n; i++)
        free(live.jobs[i].input);

    /* settle 100 with a 16 KiB result */
    size_t res_len = 16 * 1024;
    uint8_t *result = malloc(res_len);
    for (size_t i = 0; i < res_len; i++)
        result[i] = (uint8_t)(i ^ 0x5a);
    s_settle(100, result, res_len);
    s_commit_ok();

    assert_int_equal(qr_db_get_job(s_db, 100, &got, err, sizeof err), QR_OK);
    assert_int_equal(got.state, QR_JOB_SETTLED);
    assert_int_equal(got.worker_id, WORKER);
    assert_int_equal(got.attempts, 1);
    assert_int_equal(got.units, 7);
    assert_int_equal(got.price, 90);
    assert_int_equal(got.fee, 10);
    assert_int_equal(qr_db_get_result(s_db, 100, &data, &len, err, sizeof err), QR_OK);
    assert_int_equal(len, res_len);
    assert_memory_equal(data, result, res_len);
    free(data);
    s_balance(CLIENT, 1000000000 - 200, 100);
    s_balance(OPER, 90, 0);
    s_balance(FEES, 10, 0);
    assert_int_equal(s_q("SELECT count(*) FROM job_events WHERE job_id = 100"), 6);
    assert_int_equal(s_q("SELECT count(*) FROM settlements WHERE job_id = 100 AND batch_id IS NULL"),
                     1);

    live.n = 0;
    assert_int_equal(qr_db_load_jobs(s_db, s_on_job_owned, &live, err, sizeof err), QR_OK);
    assert_int_equal(live.n, 1);
    assert_int_equal(live.jobs[0].id, 101);
    free(live.jobs[0].input);

    /* listing: newest first, filters, limit */
    s_jobs_t list = {.n = 0};
    assert_int_equal(qr_db_list_jobs(s_db, CLIENT, NULL, 10, s_on_job, &list, err, sizeof err),
                     QR_OK);
    assert_int_equal(list.n, 2);
    assert_int_equal(list.jobs[0].id, 101);
    assert_int_equal(list.jobs[1].id, 100);
    assert_null(list.jobs[0].input);
    list.n = 0;
    assert_int_equal(qr_db_list_jobs(s_db, 0, "settled", 0, s_on_job, &list, err, sizeof err),
                     QR_OK);
    assert_int_equal(list.n, 1);
    assert_int_equal(list.jobs[0].id, 100);
    list.n = 0;
    assert_int_equal(qr_db_list_jobs(s_db, 0, "", 1, s_on_job, &list, err, sizeof err), QR_OK);
    assert_int_equal(list.n, 1);
    list.n = 0;
    assert_int_equal(qr_db_list_jobs(s_db, OPER, NULL, 10, s_on_job, &list, err, sizeof err),
                     QR_OK);
    assert_int_equal(list.n, 0);

    qr_db_worker_t w;
    memset(&w, 0, sizeof w);
    assert_int_equal(qr_db_load_workers(s_db, s_on_worker, &w, err, sizeof err), QR_OK);
    assert_int_equal(w.id, WORKER);
    assert_string_equal(w.name, "bob-gpu-1");
    assert_int_equal(w.operator_id, OPER);
    assert_int_equal(w.reputation, 99);

    s_accts_t x = {.n = 0};
    assert_int_equal(qr_db_load_accounts(s_db, s_on_account, &x, err, sizeof err), QR_OK);
    assert_int_equal(x.n, 4);
    assert_string_equal(s_find(&x, CLIENT)->name, "alice \"the\" client\\");
    assert_int_equal(s_find(&x, CLIENT)->kind, QR_ACCT_CLIENT);
    assert_int_equal(s_find(&x, OPER)->kind, QR_ACCT_OPERATOR);
    assert_int_equal(s_find(&x, SYS)->kind, QR_ACCT_SYSTEM);

    uint64_t mj, ma, mw, mt, mb;
    assert_int_equal(qr_db_max_ids(s_db, &mj, &ma, &mw, &mt, &mb, err, sizeof err), QR_OK);
    assert_int_equal(mj, 101);
    assert_int_equal(mb, (1ull << 40) + 100); /* the result blob of job 100 */
    assert_int_equal(ma, 4);
    assert_int_equal(mw, 1);
    assert_int_equal(mt, s_txn - 1);
    free(input);
    free(result);
}

static void test_unbalanced_refused(void **state)
{
    char err[256] = "";
    long long entries = s_q("SELECT count(*) FROM ledger_entries");
    qr_db_job_t j = s_job(200, 0, NULL);
    qr_db_add_blob(s_db, j.input_blob, j.input, j.input_len);
    qr_db_add_job(s_db, &j);
    qr_db_add_event(s_db, 200, QR_JOB_QUEUED, 0, "", j.created_ms);
    s_move(CLIENT, QR_BUCKET_AVAILABLE, CLIENT, QR_BUCKET_RESERVED, 200, "reserve", 100);
    uint64_t txn = s_txn++;
    qr_db_add_ledger(s_db, txn, CLIENT, QR_BUCKET_AVAILABLE, 200, "deposit", 5, 0);
    qr_db_add_ledger(s_db, txn, SYS, QR_BUCKET_AVAILABLE, 200, "deposit", -4, 0);
    assert_int_equal(qr_db_commit(s_db, err, sizeof err), QR_EINVAL);
    assert_non_null(strstr(err, "does not sum to zero"));
    assert_int_equal(qr_db_pending(s_db), 0);
    qr_db_job_t got;
    assert_int_equal(qr_db_get_job(s_db, 200, &got, err, sizeof err), QR_ENOTFOUND);
    assert_int_equal(s_q("SELECT count(*) FROM ledger_entries"), entries);
    s_balance(CLIENT, 1000000000 - 200, 100);
}

static void test_double_settlement(void **state)
{
    char err[512] = "";
    long long events = s_q("SELECT count(*) FROM job_events");
    /* a new account and job ride in the same batch: neither may persist */
    qr_db_add_account(s_db, 50, "carol", QR_ACCT_CLIENT);
    qr_db_job_t j = s_job(300, 0, NULL);
    qr_db_add_blob(s_db, j.input_blob, j.input, j.input_len);
    qr_db_add_job(s_db, &j);
    s_move(CLIENT, QR_BUCKET_AVAILABLE, CLIENT, QR_BUCKET_RESERVED, 300, "reserve", 100);
    s_settle(100, "again", 5);
    assert_int_equal(qr_db_commit(s_db, err, sizeof err), QR_EDB);
    assert_true(strlen(err) > 0);
    assert_true(qr_db_ok(s_db));
    assert_int_equal(qr_db_pending(s_db), 0);
    qr_db_job_t got;
    assert_int_equal(qr_db_get_job(s_db, 300, &got, err, sizeof err), QR_ENOTFOUND);
    assert_int_equal(s_q("SELECT count(*) FROM accounts WHERE id = 50"), 0);
    assert_int_equal(s_q("SELECT count(*) FROM job_events"), events);
    assert_int_equal(s_q("SELECT count(*) FROM settlements"), 1);
    s_balance(CLIENT, 1000000000 - 200, 100);
    s_balance(OPER, 90, 0);
    /* the connection is usable again */
    qr_db_add_account(s_db, 50, "carol", QR_ACCT_CLIENT);
    s_commit_ok();
    assert_int_equal(s_q("SELECT count(*) FROM accounts WHERE id = 50"), 1);
}

static void test_constraint_errors(void **state)
{
    char err[512] = "";
    /* same idempotency key twice for one client */
    qr_db_job_t a = s_job(400, 0, NULL), b = s_job(401, 0, NULL);
    snprintf(a.idem_key, sizeof a.idem_key, "dup");
    snprintf(b.idem_key, sizeof b.idem_key, "dup");
    qr_db_add_blob(s_db, a.input_blob, a.input, a.input_len);
    qr_db_add_job(s_db, &a);
    qr_db_add_blob(s_db, b.input_blob, b.input, b.input_len);
    qr_db_add_job(s_db, &b);
    assert_int_equal(qr_db_commit(s_db, err, sizeof err), QR_EDB);
    assert_non_null(strstr(err, "duplicate key"));
    /* overdraft: balanced txn but a client's balance would go negative */
    s_move(OPER, QR_BUCKET_AVAILABLE, SYS, QR_BUCKET_AVAILABLE, 0, "withdraw", 1000);
    assert_int_equal(qr_db_commit(s_db, err, sizeof err), QR_EDB);
    /* update of a job that does not exist */
    qr_db_job_t ghost = s_job(987654, 0, NULL);
    qr_db_job_update(s_db, &ghost);
    assert_int_equal(qr_db_commit(s_db, err, sizeof err), QR_EDB);
    assert_non_null(strstr(err, "do not exist"));
    /* ledger entry for an unknown account */
    s_move(CLIENT, QR_BUCKET_AVAILABLE, 777, QR_BUCKET_AVAILABLE, 0, "deposit", 1);
    assert_int_equal(qr_db_commit(s_db, err, sizeof err), QR_EDB);
    /* bad worker devices JSON */
    qr_db_add_worker(s_db, 9, "w9", OPER, "{not json", "", 1, 1);
    assert_int_equal(qr_db_commit(s_db, err, sizeof err), QR_EDB);
    assert_int_equal(s_q("SELECT count(*) FROM jobs WHERE id >= 400"), 0);
    s_balance(OPER, 90, 0);
    assert_true(qr_db_ok(s_db));
}

static void test_update_last_wins(void **state)
{
    char err[256] = "";
    qr_db_job_t j = s_job(500, 0, NULL);
    qr_db_add_blob(s_db, j.input_blob, j.input, j.input_len);
    qr_db_add_job(s_db, &j);
    s_move(CLIENT, QR_BUCKET_AVAILABLE, CLIENT, QR_BUCKET_RESERVED, 500, "reserve", 100);
    /* inserted and updated in one batch, interleaved with another job's update */
    j.state = QR_JOB_ASSIGNED;
    j.worker_id = WORKER;
    qr_db_job_update(s_db, &j);
    qr_db_job_t other = s_job(101, 0, NULL);
    other.state = QR_JOB_RUNNING;
    other.worker_id = WORKER;
    qr_db_job_update(s_db, &other);
    j.state = QR_JOB_QUEUED;
    j.worker_id = 0;
    j.attempts = 1;
    snprintf(j.detail, sizeof j.detail, "worker lost: \"missed\" heartbeats, {retry}\\");
    j.updated_ms = j.created_ms + 1234;
    qr_db_job_update(s_db, &j);
    s_commit_ok();
    qr_db_job_t got;
    assert_int_equal(qr_db_get_job(s_db, 500, &got, err, sizeof err), QR_OK);
    assert_int_equal(got.state, QR_JOB_QUEUED);
    assert_int_equal(got.worker_id, 0);
    assert_int_equal(got.attempts, 1);
    assert_string_equal(got.detail, j.detail);
    assert_int_equal(got.updated_ms, j.created_ms + 1234);
    assert_int_equal(qr_db_get_job(s_db, 101, &got, err, sizeof err), QR_OK);
    assert_int_equal(got.state, QR_JOB_RUNNING);
    assert_int_equal(got.worker_id, WORKER);
}

typedef struct {
    char op[64];
    uint64_t jobs;
    int64_t earned;
    int calls;
} s_ops_t;

static void s_on_op(void *arg, const char *op, uint64_t jobs, int64_t earned)
{
    s_ops_t *x = arg;
    snprintf(x->op, sizeof x->op, "%s", op);
    x->jobs = jobs;
    x->earned = earned;
    x->calls++;
}

static void test_dash(void **state)
{
    char err[256] = "";
    qr_db_dash_t d;
    s_ops_t ops = {.calls = 0};
    assert_int_equal(qr_db_dash(s_db, &d, s_on_op, &ops, err, sizeof err), QR_OK);
    assert_int_equal(d.ledger_sum, 0);
    assert_int_equal(d.settled_total, 1);
    assert_true(d.jobs_per_s > 0.0);
    assert_true(d.p50_ms >= 0.0 && d.p99_ms >= d.p50_ms);
    assert_int_equal(ops.calls, 1);
    assert_string_equal(ops.op, "op-bob");
    assert_int_equal(ops.jobs, 1);
    assert_int_equal(ops.earned, 80); /* what the operator keeps: price less fee */
    assert_int_equal(qr_db_dash(s_db, &d, NULL, NULL, err, sizeof err), QR_OK);
    /* the full audits agree */
    assert_int_equal(s_q("SELECT total FROM v_ledger_check"), 0);
    assert_int_equal(s_q("SELECT cardinality(unbalanced_txns) FROM v_ledger_check"), 0);
    assert_int_equal(s_q("SELECT count(*) FROM v_balances WHERE NOT consistent"), 0);
    assert_int_equal(s_q("SELECT queued FROM v_queue_depth WHERE kind = 'ai.gemm'"), 1);
    assert_int_equal(s_q("SELECT running FROM v_queue_depth WHERE kind = 'ai.gemm'"), 1);
    assert_int_equal(s_q("SELECT busy FROM v_worker_utilisation WHERE id = 1"), 1);
    assert_int_equal(s_q("SELECT settled_last_minute FROM v_throughput"), 1);
    assert_int_equal(s_q("SELECT samples FROM v_latency"), 1);
}

static void test_killed_connection(void **state)
{
    char err[512] = "";
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '%s' "
             "AND application_name = 'quarry-broker'",
             s_dbname);
    assert_int_equal(s_scalar(s_admin_ci, sql), 1);
    qr_db_add_account(s_db, 60, "dave", QR_ACCT_CLIENT);
    assert_int_equal(qr_db_commit(s_db, err, sizeof err), QR_EDB);
    assert_true(strlen(err) > 0);
    assert_int_equal(qr_db_pending(s_db), 0);
    assert_false(qr_db_ok(s_db));
    qr_db_job_t got;
    assert_int_equal(qr_db_get_job(s_db, 100, &got, err, sizeof err), QR_EDB);
    assert_int_equal(qr_db_reconnect(s_db, err, sizeof err), QR_OK);
    assert_true(qr_db_ok(s_db));
    assert_int_equal(s_q("SELECT count(*) FROM accounts WHERE id = 60"), 0);
    qr_db_add_account(s_db, 60, "dave", QR_ACCT_CLIENT);
    s_commit_ok();
    assert_int_equal(qr_db_get_job(s_db, 100, &got, err, sizeof err), QR_OK);
}

/* Group-commit rate, printed, not asserted: batches in a pipeline, each
 * inserting `batch` new jobs (input, 2 events, a 2-entry reservation) and
 * settling the previous batch's jobs (s_settle: 4 updates deduplicated to 1,
 * 4 events, 3 ledger entries, a settlement and the result). */
static void s_rate(uint64_t base, int batch, int batches, size_t in_len, size_t res_len)
{
    uint8_t *input = malloc(in_len), *result = malloc(res_len);
    for (size_t i = 0; i < in_len; i++)
        input[i] = (uint8_t)(i * 31 + 7);
    for (size_t i = 0; i < res_len; i++)
        result[i] = (uint8_t)(i * 13 + 1);
    char err[256];
    qr_db_dash_t d;
    assert_int_equal(qr_db_dash(s_db, &d, NULL, NULL, err, sizeof err), QR_OK);
    uint64_t settled0 = d.settled_total;
    int64_t t0 = qr_clock_us(), worst = 0;
    for (int b = 0; b <= batches; b++) {
        int64_t tb = qr_clock_us();
        if (b < batches)
            for (int i = 0; i < batch; i++) {
                uint64_t id = base + (uint64_t)b * (uint64_t)batch + (uint64_t)i;
                qr_db_job_t j = s_job(id, in_len, input);
                qr_db_add_blob(s_db, j.input_blob, j.input, j.input_len);
                qr_db_add_job(s_db, &j);
                qr_db_add_event(s_db, id, QR_JOB_SUBMITTED, 0, "", j.created_ms);
                qr_db_add_event(s_db, id, QR_JOB_QUEUED, 0, "", j.created_ms);
                s_move(CLIENT, QR_BUCKET_AVAILABLE, CLIENT, QR_BUCKET_RESERVED, id, "reserve", 100);
            }
        if (b > 0)
            for (int i = 0; i < batch; i++)
                s_settle(base + (uint64_t)(b - 1) * (uint64_t)batch + (uint64_t)i, result, res_len);
        s_commit_ok();
        int64_t dt = qr_clock_us() - tb;
        if (dt > worst)
            worst = dt;
    }
    double secs = (double)(qr_clock_us() - t0) / 1e6;
    int n = batch * batches;
    printf("[ perf     ] %d jobs, %zu B input + %zu B result, 6 events, 5 ledger entries, "
           "1 settlement, 4 updates each: %.2f s, %.0f jobs/s (batch %d, slowest commit %.1f ms)\n",
           n, in_len, res_len, secs, n / secs, batch, (double)worst / 1000);
    assert_int_equal(qr_db_dash(s_db, &d, NULL, NULL, err, sizeof err), QR_OK);
    assert_int_equal(d.ledger_sum, 0);
    assert_int_equal(d.settled_total, settled0 + (uint64_t)n);
    /* every row of the batches' logs arrived (their COPYs go in statements
     * of a few hundred rows each) */
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM job_events WHERE job_id BETWEEN %llu AND %llu",
             (unsigned long long)base, (unsigned long long)(base + (uint64_t)n - 1));
    assert_int_equal(s_q(sql), 6LL * n);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM ledger_entries WHERE job_id BETWEEN %llu AND %llu",
             (unsigned long long)base, (unsigned long long)(base + (uint64_t)n - 1));
    assert_int_equal(s_q(sql), 5LL * n);
    free(input);
    free(result);
}

static void test_commit_rate(void **state)
{
    s_rate(1000000, 500, 20, 32 * 1024, 16 * 1024);
    /* the same without the bulk payloads: what the commit path itself costs */
    s_rate(2000000, 1000, 20, 256, 128);
    assert_int_equal(s_q("SELECT count(*) FROM v_balances WHERE NOT consistent"), 0);
    assert_int_equal(s_q("SELECT total FROM v_ledger_check"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_conninfo),
        cmocka_unit_test(test_migrate),
        cmocka_unit_test(test_max_ids_empty),
        cmocka_unit_test(test_setup_parties),
        cmocka_unit_test(test_job_roundtrip),
        cmocka_unit_test(test_unbalanced_refused),
        cmocka_unit_test(test_double_settlement),
        cmocka_unit_test(test_constraint_errors),
        cmocka_unit_test(test_update_last_wins),
        cmocka_unit_test(test_dash),
        cmocka_unit_test(test_killed_connection),
        cmocka_unit_test(test_commit_rate),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
