/* broker/mirror/mirror_db against the test cluster (pg fixture,
 * QUARRY_TEST_PG): the schema check before and after the migrations,
 * addresses, which settlements are eligible and which wait, the one
 * transaction that persists a batch (and refuses to take a settlement
 * twice), the batch's life through its states, records for proofs and
 * claims, counters, and the one-mirror lock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "err.h"
#include "mirror_db.h"

static char s_admin[512], s_ci[600], s_name[64];
static qr_mirror_db_t *s_m;

static void s_exec(const char *ci, const char *sql)
{
    PGconn *c = PQconnectdb(ci);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static long long s_int(const char *sql)
{
    PGconn *c = PQconnectdb(s_ci);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

static int s_setup(void **state)
{
    (void)state;
    const char *pg = getenv("QUARRY_TEST_PG");
    if (!pg)
        return -1;
    snprintf(s_admin, sizeof s_admin, "%s", pg);
    snprintf(s_name, sizeof s_name, "quarry_test_mirror_%ld", (long)getpid());
    snprintf(s_ci, sizeof s_ci, "%s dbname=%s", pg, s_name);
    char sql[200];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", s_name);
    s_exec(s_admin, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", s_name);
    s_exec(s_admin, sql);
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    qr_mirror_db_destroy(&s_m);
    char sql[200];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", s_name);
    s_exec(s_admin, sql);
    return 0;
}

static void test_schema_and_addresses(void **state)
{
    (void)state;
    char err[256];
    s_m = qr_mirror_db_new(s_ci, err, sizeof err);
    assert_non_null(s_m);
    /* an empty database: not migrated, and the mirror says so */
    assert_int_equal(qr_mirror_db_schema_ok(s_m, err, sizeof err), QR_ENOTFOUND);
    qr_db_t *d = qr_db_new(s_ci, err, sizeof err);
    assert_non_null(d);
    int applied;
    assert_int_equal(qr_db_migrate(d, &applied, err, sizeof err), QR_OK);
    assert_true(applied >= 6);
    qr_db_destroy(&d);
    assert_int_equal(qr_mirror_db_schema_ok(s_m, err, sizeof err), QR_OK);

    s_exec(s_ci, "INSERT INTO accounts (id, name, kind) VALUES (1, 'alice', 'client'), "
                 "(2, 'op-a', 'operator'), (3, 'op-b', 'operator'), (4, '77', 'client')");
    uint8_t a[20], b[20];
    memset(a, 0xa1, 20);
    uint64_t id;
    assert_int_equal(qr_mirror_db_set_address(s_m, "alice", a, &id, err, sizeof err), QR_OK);
    assert_int_equal(id, 1);
    /* by id when no account has that name; a name that is digits wins */
    memset(a, 0xa2, 20);
    assert_int_equal(qr_mirror_db_set_address(s_m, "2", a, &id, err, sizeof err), QR_OK);
    assert_int_equal(id, 2);
    memset(a, 0xa4, 20);
    assert_int_equal(qr_mirror_db_set_address(s_m, "77", a, &id, err, sizeof err), QR_OK);
    assert_int_equal(id, 4);
    assert_int_equal(qr_mirror_db_set_address(s_m, "nobody", a, &id, err, sizeof err),
                     QR_ENOTFOUND);
    assert_non_null(strstr(err, "nobody"));
    /* setting again replaces */
    memset(a, 0xa1, 20);
    a[0] = 0x01;
    assert_int_equal(qr_mirror_db_set_address(s_m, "alice", a, &id, err, sizeof err), QR_OK);
    assert_int_equal(qr_mirror_db_address_of(s_m, "alice", b, err, sizeof err), QR_OK);
    assert_memory_equal(a, b, 20);
    assert_int_equal(qr_mirror_db_address_of(s_m, "op-b", b, err, sizeof err), QR_ENOTFOUND);
    qr_mirror_addr_t *all;
    size_t n;
    assert_int_equal(qr_mirror_db_addresses(s_m, &all, &n, err, sizeof err), QR_OK);
    assert_int_equal(n, 3);
    assert_string_equal(all[1].name, "op-a");
    free(all);
    bool got;
    assert_int_equal(qr_mirror_db_lock(s_m, &got, err, sizeof err), QR_OK);
    assert_true(got);
    /* a second mirror on the same database stands by */
    qr_mirror_db_t *other = qr_mirror_db_new(s_ci, err, sizeof err);
    assert_int_equal(qr_mirror_db_lock(other, &got, err, sizeof err), QR_OK);
    assert_false(got);
    qr_mirror_db_destroy(&other);
}

static void test_batches(void **state)
{
    (void)state;
    char err[256];
    /* settlements: 10 for alice/op-a, 3 for alice/op-b (no address), one
     * broken (fee above price) */
    s_exec(s_ci, "INSERT INTO settlements (job_id, worker_id, operator_id, client_id, units, "
                 "price, fee, settled_at) SELECT g, 1, 2, 1, 1, 100, 5, now() - interval '10 s' "
                 "FROM generate_series(1, 10) g");
    s_exec(s_ci, "INSERT INTO settlements (job_id, worker_id, operator_id, client_id, units, "
                 "price, fee, settled_at) SELECT g, 2, 3, 1, 1, 120, 6, now() "
                 "FROM generate_series(11, 13) g");
    s_exec(s_ci, "INSERT INTO settlements (job_id, worker_id, operator_id, client_id, units, "
                 "price, fee, settled_at) VALUES (14, 1, 2, 1, 1, 5, 6, now())");
    qr_mirror_rec_t recs[32];
    size_t n;
    int64_t age;
    assert_int_equal(qr_mirror_db_eligible(s_m, 32, 1000, recs, &n, &age, err, sizeof err), QR_OK);
    assert_int_equal(n, 10);
    assert_true(age >= 9000);
    assert_int_equal(recs[0].job_id, 1);
    uint64_t v;
    qr_u256_to_u64(&recs[0].amount, &v);
    assert_int_equal(v, 95000);
    assert_int_equal(recs[0].client[0], 0x01);
    assert_int_equal(recs[0].operator_[0], 0xa2);
    qr_mirror_waiting_t w[4];
    size_t nw;
    assert_int_equal(qr_mirror_db_waiting(s_m, w, 4, &nw, err, sizeof err), QR_OK);
    assert_int_equal(nw, 1);
    assert_string_equal(w[0].name, "op-b");
    assert_int_equal(w[0].jobs, 3);

    /* a batch of the first 4 */
    qr_mirror_batch_t b = {.id = 0, .chain_id = 31337, .count = 4, .nonce = 7};
    memset(b.contract, 0xcc, 20);
    memset(b.root, 0x77, 32);
    uint8_t raw[5] = {2, 1, 2, 3, 4};
    qr_mirror_tx_t tx = {.nonce = 7, .gas = 60000, .raw = raw, .raw_len = 5};
    memset(tx.hash, 0x99, 32);
    tx.max_fee = qr_u256_from_u64(2000000000);
    tx.tip = qr_u256_from_u64(1000000000);
    memcpy(b.tx_hash, tx.hash, 32);
    assert_int_equal(qr_mirror_db_insert_batch(s_m, &b, recs, 4, &tx, err, sizeof err), QR_OK);
    assert_int_equal(s_int("SELECT count(*) FROM settlements WHERE batch_id = 0"), 4);
    /* the same settlements cannot go into a second batch: all or nothing */
    b.id = 1;
    tx.hash[0] = 0x98;
    assert_int_equal(qr_mirror_db_insert_batch(s_m, &b, recs + 2, 4, &tx, err, sizeof err), QR_EDB);
    assert_int_equal(s_int("SELECT count(*) FROM mirror_batches"), 1);
    assert_int_equal(s_int("SELECT count(*) FROM mirror_txs"), 1);
    tx.hash[0] = 0x99;
    assert_int_equal(s_int("SELECT count(*) FROM settlements WHERE batch_id IS NOT NULL"), 4);
    assert_int_equal(qr_mirror_db_eligible(s_m, 32, 1000, recs, &n, &age, err, sizeof err), QR_OK);
    assert_int_equal(n, 6);
    assert_int_equal(recs[0].job_id, 5);

    qr_mirror_batch_t *open;
    size_t no;
    assert_int_equal(qr_mirror_db_open_batches(s_m, &open, &no, err, sizeof err), QR_OK);
    assert_int_equal(no, 1);
    assert_string_equal(open[0].state, "signed");
    assert_int_equal(open[0].nonce, 7);
    free(open);
    qr_mirror_tx_t *txs;
    size_t nt;
    assert_int_equal(qr_mirror_db_batch_txs(s_m, 0, &txs, &nt, err, sizeof err), QR_OK);
    assert_int_equal(nt, 1);
    assert_int_equal(txs[0].raw_len, 5);
    assert_memory_equal(txs[0].raw, raw, 5);
    qr_u256_to_u64(&txs[0].max_fee, &v);
    assert_int_equal(v, 2000000000);
    qr_mirror_txs_free(&txs, nt);

    /* a re-price: a second transaction becomes the current one */
    qr_mirror_tx_t tx2 = tx;
    tx2.hash[0] = 0x42;
    tx2.max_fee = qr_u256_from_u64(2500000000);
    assert_int_equal(qr_mirror_db_mark_sent(s_m, 0, err, sizeof err), QR_OK);
    assert_int_equal(qr_mirror_db_add_tx(s_m, 0, &tx2, err, sizeof err), QR_OK);
    qr_mirror_batch_t got;
    assert_int_equal(qr_mirror_db_batch(s_m, 0, &got, err, sizeof err), QR_OK);
    assert_string_equal(got.state, "signed");
    assert_int_equal(got.tx_hash[0], 0x42);
    assert_int_equal(qr_mirror_db_batch_txs(s_m, 0, &txs, &nt, err, sizeof err), QR_OK);
    assert_int_equal(nt, 2);
    qr_mirror_txs_free(&txs, nt);
    assert_int_equal(qr_mirror_db_mark_sent(s_m, 0, err, sizeof err), QR_OK);
    qr_u256_t price = qr_u256_from_u64(1500000000);
    assert_int_equal(qr_mirror_db_mark_mined(s_m, 0, tx.hash, 12, 51498, &price, err, sizeof err),
                     QR_OK);
    assert_int_equal(qr_mirror_db_batch(s_m, 0, &got, err, sizeof err), QR_OK);
    assert_string_equal(got.state, "mined");
    assert_int_equal(got.block, 12);
    assert_int_equal(got.tx_hash[0], 0x99); /* the one mined, not the newest */
    /* a reorganisation takes it back, a new receipt mines it again */
    assert_int_equal(qr_mirror_db_mark_unmined(s_m, 0, err, sizeof err), QR_OK);
    assert_int_equal(qr_mirror_db_batch(s_m, 0, &got, err, sizeof err), QR_OK);
    assert_string_equal(got.state, "sent");
    assert_int_equal(got.block, 0);
    assert_int_equal(qr_mirror_db_mark_mined(s_m, 0, tx.hash, 13, 51498, &price, err, sizeof err),
                     QR_OK);
    /* not claimable before confirmation */
    uint8_t opa[20];
    memset(opa, 0xa2, 20);
    uint64_t jobs[8];
    size_t nj;
    assert_int_equal(qr_mirror_db_operator_jobs(s_m, opa, 0, 8, jobs, &nj, err, sizeof err), QR_OK);
    assert_int_equal(nj, 0);
    assert_int_equal(qr_mirror_db_mark_confirmed(s_m, 0, err, sizeof err), QR_OK);
    assert_int_equal(qr_mirror_db_operator_jobs(s_m, opa, 0, 8, jobs, &nj, err, sizeof err), QR_OK);
    assert_int_equal(nj, 4);
    assert_int_equal(qr_mirror_db_operator_jobs(s_m, opa, 2, 1, jobs, &nj, err, sizeof err), QR_OK);
    assert_int_equal(nj, 1);
    assert_int_equal(jobs[0], 3);

    /* the record of job 3, for its proof */
    qr_mirror_rec_t rec;
    qr_mirror_where_t where;
    qr_mirror_names_t names;
    assert_int_equal(qr_mirror_db_record(s_m, 3, &rec, &where, &names, err, sizeof err), QR_OK);
    assert_int_equal(where.batch_id, 0);
    assert_int_equal(where.leaf_index, 2);
    assert_int_equal(where.count, 4);
    assert_string_equal(where.state, "confirmed");
    assert_string_equal(where.client_account, "alice");
    assert_string_equal(where.operator_account, "op-a");
    assert_int_equal(where.price, 100);
    assert_int_equal(where.block, 13);
    qr_u256_to_u64(&rec.amount, &v);
    assert_int_equal(v, 95000);
    assert_int_equal(qr_mirror_db_record(s_m, 5, &rec, &where, &names, err, sizeof err),
                     QR_ENOTFOUND);
    qr_mirror_rec_t *br;
    size_t nbr;
    assert_int_equal(qr_mirror_db_batch_records(s_m, 0, &br, &nbr, err, sizeof err), QR_OK);
    assert_int_equal(nbr, 4);
    for (size_t i = 0; i < nbr; i++)
        assert_int_equal(br[i].job_id, i + 1);
    free(br);

    qr_mirror_stats_t st;
    assert_int_equal(qr_mirror_db_stats(s_m, &st, err, sizeof err), QR_OK);
    assert_int_equal(st.unbatched, 10); /* 6 eligible, 3 op-b, 1 broken */
    assert_int_equal(st.eligible, 7);   /* the broken one has addresses */
    assert_int_equal(st.batches[3], 1);
    assert_int_equal(st.records_confirmed, 4);
    assert_int_equal(st.gas_used_total, 51498);
    assert_int_equal(st.last_batch, 0);
    bool found;
    assert_int_equal(qr_mirror_db_last_batch(s_m, &got, &found, err, sizeof err), QR_OK);
    assert_true(found);
    assert_int_equal(got.id, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_and_addresses),
        cmocka_unit_test(test_batches),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
