/* quarry-mirror's PostgreSQL layer; see mirror_db.h. */
#include "mirror_db.h"

#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* pg_advisory_lock key of the active mirror: one per database, so two
 * mirrors started by mistake never build two batches over one backlog (the
 * second stands by).  Distinct from the broker's keys. */
#define S_MIRROR_LOCK "7305929912146318473"

struct qr_mirror_db {
    PGconn *conn;
};

static void s_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void s_pgerr(qr_mirror_db_t *self, const PGresult *res, const char *what, char *err,
                    size_t errlen)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (primary)
        s_seterr(err, errlen, "%s: %s", what, primary);
    else {
        const char *msg = self->conn ? PQerrorMessage(self->conn) : "";
        s_seterr(err, errlen, "%s: %s", what, *msg ? msg : "connection lost");
    }
}

qr_mirror_db_t *qr_mirror_db_new(const char *conninfo, char *err, size_t errlen)
{
    qr_mirror_db_t *self = calloc(1, sizeof *self);
    if (!self) {
        s_seterr(err, errlen, "out of memory");
        return NULL;
    }
    self->conn = PQconnectdb(conninfo);
    if (!self->conn || PQstatus(self->conn) != CONNECTION_OK) {
        s_seterr(err, errlen, "cannot connect to PostgreSQL: %s",
                 self->conn ? PQerrorMessage(self->conn) : "out of memory");
        qr_mirror_db_destroy(&self);
        return NULL;
    }
    return self;
}

void qr_mirror_db_destroy(qr_mirror_db_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    PQfinish((*self_p)->conn);
    free(*self_p);
    *self_p = NULL;
}

bool qr_mirror_db_ok(const qr_mirror_db_t *self)
{
    return self && self->conn && PQstatus(self->conn) == CONNECTION_OK;
}

/* Runs sql with text parameters; rows (if any) in *res when res is not
 * NULL.  *affected gets the row count when not NULL. */
static int s_run(qr_mirror_db_t *self, const char *what, const char *sql, int nparams,
                 const char *const *values, PGresult **res, uint64_t *affected, char *err,
                 size_t errlen)
{
    if (res)
        *res = NULL;
    if (!qr_mirror_db_ok(self)) {
        s_seterr(err, errlen, "%s: database connection lost", what);
        return QR_EDB;
    }
    PGresult *r = PQexecParams(self->conn, sql, nparams, NULL, values, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        s_pgerr(self, r, what, err, errlen);
        PQclear(r);
        return QR_EDB;
    }
    if (affected)
        *affected = strtoull(PQcmdTuples(r), NULL, 10);
    if (res)
        *res = r;
    else
        PQclear(r);
    return QR_OK;
}

static uint64_t s_u64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoull(PQgetvalue(r, row, col), NULL, 10);
}

static int64_t s_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* A hex column (encode(x, 'hex')) of exactly n bytes. */
static int s_bytes(const PGresult *r, int row, int col, uint8_t *out, size_t n)
{
    if (PQgetisnull(r, row, col)) {
        memset(out, 0, n);
        return 0;
    }
    return qr_hex_decode_exact(PQgetvalue(r, row, col), out, n);
}

/* Hex of n bytes without "0x", for decode($n, 'hex'). */
static void s_hex(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int qr_mirror_db_schema_ok(qr_mirror_db_t *self, char *err, size_t errlen)
{
    PGresult *r;
    int rc = s_run(self, "schema check",
                   "SELECT to_regclass('schema_migrations') IS NOT NULL AND EXISTS "
                   "(SELECT 1 FROM schema_migrations WHERE version = 6) AND "
                   "to_regclass('mirror_batches') IS NOT NULL",
                   0, NULL, &r, NULL, err, errlen);
    if (rc != QR_OK) {
        /* schema_migrations absent makes the EXISTS fail: not applied */
        return qr_mirror_db_ok(self) ? QR_ENOTFOUND : rc;
    }
    bool ok = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!ok)
        s_seterr(err, errlen, "migration 006_mirror is not applied");
    return ok ? QR_OK : QR_ENOTFOUND;
}

int qr_mirror_db_lock(qr_mirror_db_t *self, bool *got, char *err, size_t errlen)
{
    const char *v[1] = {S_MIRROR_LOCK};
    PGresult *r;
    *got = false;
    int rc = s_run(self, "mirror lock", "SELECT pg_try_advisory_lock($1::int8)", 1, v, &r, NULL,
                   err, errlen);
    if (rc != QR_OK)
        return rc;
    *got = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return QR_OK;
}

/* The id of account by name, or by id when all digits and no name matches. */
static int s_account(qr_mirror_db_t *self, const char *account, uint64_t *id, char *err,
                     size_t errlen)
{
    const char *v[1] = {account};
    PGresult *r;
    int rc = s_run(self, "account",
                   "SELECT id FROM accounts WHERE name = $1 UNION ALL "
                   "SELECT id FROM accounts WHERE $1 ~ '^[0-9]{1,18}$' AND id = $1::int8 "
                   "AND NOT EXISTS (SELECT 1 FROM accounts WHERE name = $1) LIMIT 1",
                   1, v, &r, NULL, err, errlen);
    if (rc != QR_OK)
        return rc;
    if (PQntuples(r) < 1) {
        PQclear(r);
        s_seterr(err, errlen, "no account '%s'", account);
        return QR_ENOTFOUND;
    }
    *id = s_u64(r, 0, 0);
    PQclear(r);
    return QR_OK;
}

int qr_mirror_db_set_address(qr_mirror_db_t *self, const char *account,
                             const uint8_t addr[QR_ADDR_LEN], uint64_t *account_id, char *err,
                             size_t errlen)
{
    uint64_t id;
    int rc = s_account(self, account, &id, err, errlen);
    if (rc != QR_OK)
        return rc;
    char ids[24], hex[41];
    snprintf(ids, sizeof ids, "%llu", (unsigned long long)id);
    s_hex(addr, QR_ADDR_LEN, hex);
    const char *v[2] = {ids, hex};
    rc = s_run(self, "set address",
               "INSERT INTO account_addresses (account_id, address) VALUES ($1, decode($2, 'hex')) "
               "ON CONFLICT (account_id) DO UPDATE SET address = EXCLUDED.address, set_at = now()",
               2, v, NULL, NULL, err, errlen);
    if (rc == QR_OK && account_id)
        *account_id = id;
    return rc;
}

int qr_mirror_db_address_of(qr_mirror_db_t *self, const char *account,
                            uint8_t addr[QR_ADDR_LEN], char *err, size_t errlen)
{
    uint64_t id;
    int rc = s_account(self, account, &id, err, errlen);
    if (rc != QR_OK)
        return rc;
    char ids[24];
    snprintf(ids, sizeof ids, "%llu", (unsigned long long)id);
    const char *v[1] = {ids};
    PGresult *r;
    rc = s_run(self, "address",
               "SELECT encode(address, 'hex') FROM account_addresses WHERE account_id = $1", 1, v,
               &r, NULL, err, errlen);
    if (rc != QR_OK)
        return rc;
    if (PQntuples(r) < 1) {
        PQclear(r);
        s_seterr(err, errlen, "account '%s' has no address", account);
        return QR_ENOTFOUND;
    }
    s_bytes(r, 0, 0, addr, QR_ADDR_LEN);
    PQclear(r);
    return QR_OK;
}

int qr_mirror_db_addresses(qr_mirror_db_t *self, qr_mirror_addr_t **out, size_t *n, char *err,
                           size_t errlen)
{
    PGresult *r;
    *out = NULL;
    *n = 0;
    int rc = s_run(self, "addresses",
                   "SELECT x.account_id, coalesce(a.name, ''), encode(x.address, 'hex') "
                   "FROM account_addresses x LEFT JOIN accounts a ON a.id = x.account_id "
                   "ORDER BY x.account_id",
                   0, NULL, &r, NULL, err, errlen);
    if (rc != QR_OK)
        return rc;
    int rows = PQntuples(r);
    if (rows > 0 && !(*out = calloc((size_t)rows, sizeof **out))) {
        PQclear(r);
        return QR_ENOMEM;
    }
    for (int i = 0; i < rows; i++) {
        (*out)[i].account_id = s_u64(r, i, 0);
        snprintf((*out)[i].name, sizeof (*out)[i].name, "%s", PQgetvalue(r, i, 1));
        s_bytes(r, i, 2, (*out)[i].address, QR_ADDR_LEN);
    }
    *n = (size_t)rows;
    PQclear(r);
    return QR_OK;
}

int qr_mirror_db_eligible(qr_mirror_db_t *self, size_t max, uint64_t wei_per_unit,
                          qr_mirror_rec_t *out, size_t *n, int64_t *oldest_age_ms, char *err,
                          size_t errlen)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%zu", max);
    const char *v[1] = {lim};
    PGresult *r;
    *n = 0;
    *oldest_age_ms = 0;
    /* the partial index settlements_unbatched gives the backlog in job
     * order; fee > price would be a broken row and is never mirrored */
    int rc = s_run(self, "eligible settlements",
                   "SELECT s.job_id, encode(ca.address, 'hex'), encode(oa.address, 'hex'), "
                   "s.price, s.fee, "
                   "greatest(0, (extract(epoch FROM now() - s.settled_at) * 1000)::int8) "
                   "FROM settlements s "
                   "JOIN account_addresses ca ON ca.account_id = s.client_id "
                   "JOIN account_addresses oa ON oa.account_id = s.operator_id "
                   "WHERE s.batch_id IS NULL AND s.price >= s.fee "
                   "ORDER BY s.job_id LIMIT $1",
                   1, v, &r, NULL, err, errlen);
    if (rc != QR_OK)
        return rc;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && (size_t)i < max; i++) {
        qr_mirror_rec_t *rec = &out[*n];
        rec->job_id = s_u64(r, i, 0);
        if (s_bytes(r, i, 1, rec->client, QR_ADDR_LEN) < 0 ||
            s_bytes(r, i, 2, rec->operator_, QR_ADDR_LEN) < 0 ||
            qr_mirror_amount(s_u64(r, i, 3), s_u64(r, i, 4), wei_per_unit, &rec->amount) < 0)
            continue;
        int64_t age = s_i64(r, i, 5);
        if (age > *oldest_age_ms)
            *oldest_age_ms = age;
        (*n)++;
    }
    PQclear(r);
    return QR_OK;
}

int qr_mirror_db_waiting(qr_mirror_db_t *self, qr_mirror_waiting_t *out, size_t max, size_t *n,
                         char *err, size_t errlen)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%zu", max);
    const char *v[1] = {lim};
    PGresult *r;
    *n = 0;
    int rc = s_run(self, "waiting accounts",
                   "SELECT a.id, a.name, count(*) FROM settlements s "
                   "JOIN accounts a ON a.id = s.client_id OR a.id = s.operator_id "
                   "WHERE s.batch_id IS NULL AND NOT EXISTS "
                   "(SELECT 1 FROM account_addresses x WHERE x.account_id = a.id) "
                   "GROUP BY a.id, a.name ORDER BY count(*) DESC, a.id LIMIT $1",
                   1, v, &r, NULL, err, errlen);
    if (rc != QR_OK)
        return rc;
    for (int i = 0; i < PQntuples(r) && (size_t)i < max; i++) {
        out[i].account_id = s_u64(r, i, 0);
        snprintf(out[i].name, sizeof out[i].name, "%s", PQgetvalue(r, i, 1));
        out[i].jobs = s_u64(r, i, 2);
        (*n)++;
    }
    PQclear(r);
    return QR_OK;
}

/* Appends text to a growable buffer; false when out of memory. */
typedef struct {
    char *p;
    size_t len, cap;
} s_buf_t;

static bool s_put(s_buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return false;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

static int s_tx_insert(qr_mirror_db_t *self, uint64_t batch_id, const qr_mirror_tx_t *tx,
                       char *err, size_t errlen)
{
    char bid[24], nonce[24], gas[24], hash[65], maxfee[80], tip[80];
    snprintf(bid, sizeof bid, "%llu", (unsigned long long)batch_id);
    snprintf(nonce, sizeof nonce, "%llu", (unsigned long long)tx->nonce);
    snprintf(gas, sizeof gas, "%llu", (unsigned long long)tx->gas);
    s_hex(tx->hash, 32, hash);
    qr_u256_to_dec(&tx->max_fee, maxfee, sizeof maxfee);
    qr_u256_to_dec(&tx->tip, tip, sizeof tip);
    char *raw = malloc(2 * tx->raw_len + 1);
    if (!raw)
        return QR_ENOMEM;
    s_hex(tx->raw, tx->raw_len, raw);
    const char *v[7] = {hash, bid, nonce, maxfee, tip, gas, raw};
    int rc = s_run(self, "insert transaction",
                   "INSERT INTO mirror_txs (tx_hash, batch_id, nonce, max_fee, tip, gas_limit, raw) "
                   "VALUES (decode($1, 'hex'), $2, $3, $4::numeric, $5::numeric, $6, "
                   "decode($7, 'hex'))",
                   7, v, NULL, NULL, err, errlen);
    free(raw);
    return rc;
}

static void s_rollback(qr_mirror_db_t *self)
{
    if (qr_mirror_db_ok(self))
        PQclear(PQexec(self->conn, "ROLLBACK"));
}

int qr_mirror_db_insert_batch(qr_mirror_db_t *self, const qr_mirror_batch_t *b,
                              const qr_mirror_rec_t *recs, size_t n, const qr_mirror_tx_t *tx,
                              char *err, size_t errlen)
{
    s_buf_t jobs = {0}, cl = {0}, op = {0}, am = {0};
    bool ok = s_put(&jobs, "{", 1) && s_put(&cl, "{", 1) && s_put(&op, "{", 1) &&
              s_put(&am, "{", 1);
    for (size_t i = 0; ok && i < n; i++) {
        char num[32], hex[42], dec[80];
        const char *sep = i ? "," : "";
        int k = snprintf(num, sizeof num, "%s%llu", sep, (unsigned long long)recs[i].job_id);
        ok = s_put(&jobs, num, (size_t)k);
        hex[0] = ',';
        s_hex(recs[i].client, QR_ADDR_LEN, hex + 1);
        ok = ok && s_put(&cl, hex + (i ? 0 : 1), strlen(hex + (i ? 0 : 1)));
        s_hex(recs[i].operator_, QR_ADDR_LEN, hex + 1);
        ok = ok && s_put(&op, hex + (i ? 0 : 1), strlen(hex + (i ? 0 : 1)));
        qr_u256_to_dec(&recs[i].amount, dec, sizeof dec);
        ok = ok && s_put(&am, sep, strlen(sep)) && s_put(&am, dec, strlen(dec));
    }
    ok = ok && s_put(&jobs, "}", 1) && s_put(&cl, "}", 1) && s_put(&op, "}", 1) &&
         s_put(&am, "}", 1);
    int rc = QR_ENOMEM;
    if (!ok) {
        s_seterr(err, errlen, "insert batch: out of memory");
        goto done;
    }
    char bid[24], chain[24], count[16], nonce[24], contract[41], root[65], hash[65];
    snprintf(bid, sizeof bid, "%llu", (unsigned long long)b->id);
    snprintf(chain, sizeof chain, "%llu", (unsigned long long)b->chain_id);
    snprintf(count, sizeof count, "%u", (unsigned)n);
    snprintf(nonce, sizeof nonce, "%llu", (unsigned long long)tx->nonce);
    s_hex(b->contract, QR_ADDR_LEN, contract);
    s_hex(b->root, 32, root);
    s_hex(tx->hash, 32, hash);
    if ((rc = s_run(self, "insert batch", "BEGIN", 0, NULL, NULL, NULL, err, errlen)) != QR_OK)
        goto done;
    const char *bv[7] = {bid, chain, contract, root, count, nonce, hash};
    rc = s_run(self, "insert batch",
               "INSERT INTO mirror_batches (id, chain_id, contract, root, count, nonce, state, "
               "tx_hash) VALUES ($1, $2, decode($3, 'hex'), decode($4, 'hex'), $5, $6, 'signed', "
               "decode($7, 'hex'))",
               7, bv, NULL, NULL, err, errlen);
    const char *rv[5] = {bid, jobs.p, cl.p, op.p, am.p};
    if (rc == QR_OK)
        rc = s_run(self, "insert records",
                   "INSERT INTO mirror_records (job_id, batch_id, leaf_index, client, operator, "
                   "amount) SELECT t.j, $1, t.i - 1, decode(t.c, 'hex'), decode(t.o, 'hex'), "
                   "t.a::numeric FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[]) "
                   "WITH ORDINALITY AS t(j, c, o, a, i)",
                   5, rv, NULL, NULL, err, errlen);
    uint64_t affected = 0;
    const char *sv[2] = {bid, jobs.p};
    if (rc == QR_OK)
        rc = s_run(self, "claim settlements",
                   "UPDATE settlements SET batch_id = $1 WHERE job_id = ANY($2::int8[]) "
                   "AND batch_id IS NULL",
                   2, sv, NULL, &affected, err, errlen);
    if (rc == QR_OK && affected != n) {
        /* another writer took some of them: build again from a fresh read */
        s_seterr(err, errlen, "insert batch: %llu of %zu settlements were still unbatched",
                 (unsigned long long)affected, n);
        rc = QR_EDB;
    }
    if (rc == QR_OK)
        rc = s_tx_insert(self, b->id, tx, err, errlen);
    if (rc == QR_OK)
        rc = s_run(self, "insert batch", "COMMIT", 0, NULL, NULL, NULL, err, errlen);
    else
        s_rollback(self);
done:
    free(jobs.p);
    free(cl.p);
    free(op.p);
    free(am.p);
    return rc;
}

#define S_BATCH_COLS                                                                              \
    "id, chain_id, encode(contract, 'hex'), encode(root, 'hex'), count, nonce, state, "          \
    "encode(tx_hash, 'hex'), coalesce(block_number, 0), coalesce(gas_used, 0), "                 \
    "greatest(0, (extract(epoch FROM now() - created_at) * 1000)::int8)"

static void s_batch_row(const PGresult *r, int i, qr_mirror_batch_t *b)
{
    memset(b, 0, sizeof *b);
    b->id = s_u64(r, i, 0);
    b->chain_id = s_u64(r, i, 1);
    s_bytes(r, i, 2, b->contract, QR_ADDR_LEN);
    s_bytes(r, i, 3, b->root, 32);
    b->count = (uint32_t)s_u64(r, i, 4);
    b->nonce = s_u64(r, i, 5);
    snprintf(b->state, sizeof b->state, "%s", PQgetvalue(r, i, 6));
    s_bytes(r, i, 7, b->tx_hash, 32);
    b->block = s_u64(r, i, 8);
    b->gas_used = s_u64(r, i, 9);
    b->age_ms = s_i64(r, i, 10);
}

int qr_mirror_db_open_batches(qr_mirror_db_t *self, qr_mirror_batch_t **out, size_t *n,
                              char *err, size_t errlen)
{
    PGresult *r;
    *out = NULL;
    *n = 0;
    int rc = s_run(self, "open batches",
                   "SELECT " S_BATCH_COLS " FROM mirror_batches WHERE state <> 'confirmed' "
                   "ORDER BY id",
                   0, NULL, &r, NULL, err, errlen);
    if (rc != QR_OK)
        return rc;
    int rows = PQntuples(r);
    if (rows > 0 && !(*out = calloc((size_t)rows, sizeof **out))) {
        PQclear(r);
        return QR_ENOMEM;
    }
    for (int i = 0; i < rows; i++)
        s_batch_row(r, i, &(*out)[i]);
    *n = (size_t)rows;
    PQclear(r);
    return QR_OK;
}

int qr_mirror_db_last_batch(qr_mirror_db_t *self, qr_mirror_batch_t *out, bool *found,
                            char *err, size_t errlen)
{
    PGresult *r;
    *found = false;
    int rc = s_run(self, "last batch",
                   "SELECT " S_BATCH_COLS " FROM mirror_batches ORDER BY id DESC LIMIT 1", 0,
                   NULL, &r, NULL, err, errlen);
    if (rc != QR_OK)
        return rc;
    if (PQntuples(r) == 1) {
        s_batch_row(r, 0, out);
        *found = true;
    }
    PQclear(r);
    return QR_OK;
}

int qr_mirror_db_batch(qr_mirror_db_t *self, uint64_t id, qr_mirror_batch_t *out, char *err,
                       size_t errlen)
{
    char bid[24];
    snprintf(bid, sizeof bid, "%llu", (unsigned long long)id);
    const char *v[1] = {bid};
    PGresult *r;
    int rc = s_run(self, "batch", "SELECT " S_BATCH_COLS " FROM mirror_batches WHERE id = $1", 1,
                   v, &r, NULL, err, errlen);
    if (rc != QR_OK)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return QR_ENOTFOUND;
    }
    s_batch_row(r, 0, out);
    PQclear(r);
    return QR_OK;
}

void qr_mirror_txs_free(qr_mirror_tx_t **txs, size_t n)
{
    if (!txs || !*txs)
        return;
    for (size_t i = 0; i < n; i++)
        free((*txs)[i].raw);
    free(*txs);
    *txs = NULL;
}

int qr_mirror_db_batch_txs(qr_mirror_db_t *self, uint64_t batch_id, qr_mirror_tx_t **out,
                           size_t *n, char *err, size_t errlen)
{
    char bid[24];
    snprintf(bid, sizeof bid, "%llu", (unsigned long long)batch_id);
    const char *v[1] = {bid};
    PGresult *r;
    *out = NULL;
    *n = 0;
    int rc = s_run(self, "batch transactions",
                   "SELECT encode(tx_hash, 'hex'), nonce, max_fee::text, tip::text, gas_limit, "
                   "encode(raw, 'hex'), "
                   "greatest(0, (extract(epoch FROM now() - created_at) * 1000)::int8) "
                   "FROM mirror_txs WHERE batch_id = $1 ORDER BY created_at, tx_hash",
                   1, v, &r, NULL, err, errlen);
    if (rc != QR_OK)
        return rc;
    int rows = PQntuples(r);
    if (rows > 0 && !(*out = calloc((size_t)rows, sizeof **out))) {
        PQclear(r);
        return QR_ENOMEM;
    }
    for (int i = 0; i < rows; i++) {
        qr_mirror_tx_t *t = &(*out)[i];
        s_bytes(r, i, 0, t->hash, 32);
        t->nonce = s_u64(r, i, 1);
        qr_u256_from_dec(PQgetvalue(r, i, 2), &t->max_fee);
        qr_u256_from_dec(PQgetvalue(r, i, 3), &t->tip);
        t->gas = s_u64(r, i, 4);
        if (qr_hex_decode_alloc(PQgetvalue(r, i, 5), &t->raw, &t->raw_len) < 0) {
            *n = (size_t)i;
            qr_mirror_txs_free(out, *n);
            *n = 0;
            PQclear(r);
            return QR_ENOMEM;
        }
        t->age_ms = s_i64(r, i, 6);
    }
    *n = (size_t)rows;
    PQclear(r);
    return QR_OK;
}

int qr_mirror_db_add_tx(qr_mirror_db_t *self, uint64_t batch_id, const qr_mirror_tx_t *tx,
                        char *err, size_t errlen)
{
    int rc = s_run(self, "add transaction", "BEGIN", 0, NULL, NULL, NULL, err, errlen);
    if (rc != QR_OK)
        return rc;
    rc = s_tx_insert(self, batch_id, tx, err, errlen);
    char bid[24], nonce[24], hash[65];
    snprintf(bid, sizeof bid, "%llu", (unsigned long long)batch_id);
    snprintf(nonce, sizeof nonce, "%llu", (unsigned long long)tx->nonce);
    s_hex(tx->hash, 32, hash);
    const char *v[3] = {bid, nonce, hash};
    if (rc == QR_OK)
        rc = s_run(self, "add transaction",
                   "UPDATE mirror_batches SET nonce = $2, tx_hash = decode($3, 'hex'), "
                   "state = 'signed' WHERE id = $1",
                   3, v, NULL, NULL, err, errlen);
    if (rc == QR_OK)
        rc = s_run(self, "add transaction", "COMMIT", 0, NULL, NULL, NULL, err, errlen);
    else
        s_rollback(self);
    return rc;
}

static int s_set(qr_mirror_db_t *self, uint64_t batch_id, const char *sql, char *err,
                 size_t errlen)
{
    char bid[24];
    snprintf(bid, sizeof bid, "%llu", (unsigned long long)batch_id);
    const char *v[1] = {bid};
    return s_run(self, "batch state", sql, 1, v, NULL, NULL, err, errlen);
}

int qr_mirror_db_mark_sent(qr_mirror_db_t *self, uint64_t batch_id, char *err, size_t errlen)
{
    return s_set(self, batch_id,
                 "UPDATE mirror_batches SET state = 'sent', sent_at = coalesce(sent_at, now()) "
                 "WHERE id = $1 AND state = 'signed'",
                 err, errlen);
}

int qr_mirror_db_mark_mined(qr_mirror_db_t *self, uint64_t batch_id, const uint8_t hash[32],
                            uint64_t block, uint64_t gas_used, const qr_u256_t *gas_price,
                            char *err, size_t errlen)
{
    char bid[24], blk[24], gas[24], h[65], price[80];
    snprintf(bid, sizeof bid, "%llu", (unsigned long long)batch_id);
    snprintf(blk, sizeof blk, "%llu", (unsigned long long)block);
    snprintf(gas, sizeof gas, "%llu", (unsigned long long)gas_used);
    s_hex(hash, 32, h);
    qr_u256_to_dec(gas_price, price, sizeof price);
    const char *v[5] = {bid, h, blk, gas, price};
    return s_run(self, "batch mined",
                 "UPDATE mirror_batches SET state = 'mined', tx_hash = decode($2, 'hex'), "
                 "block_number = $3, gas_used = $4, gas_price = $5::numeric, "
                 "sent_at = coalesce(sent_at, now()), mined_at = now() WHERE id = $1",
                 5, v, NULL, NULL, err, errlen);
}

int qr_mirror_db_mark_unmined(qr_mirror_db_t *self, uint64_t batch_id, char *err,
                              size_t errlen)
{
    return s_set(self, batch_id,
                 "UPDATE mirror_batches SET state = 'sent', block_number = NULL, gas_used = NULL, "
                 "gas_price = NULL, mined_at = NULL WHERE id = $1 AND state = 'mined'",
                 err, errlen);
}

int qr_mirror_db_mark_confirmed(qr_mirror_db_t *self, uint64_t batch_id, char *err,
                                size_t errlen)
{
    /* One statement, one transaction: the batch is confirmed and its jobs
     * take the job state machine's last step, settled -> mirrored, with the
     * event row every transition gets (naming the batch and transaction).
     * Settled jobs are final, so the broker never writes these rows again;
     * one it still holds in memory reports "settled" until it forgets it,
     * and every read from PostgreSQL (STATUS, RESULT, LIST, the views)
     * sees "mirrored". */
    return s_set(self, batch_id,
                 "WITH b AS (UPDATE mirror_batches SET state = 'confirmed', confirmed_at = now() "
                 "           WHERE id = $1 AND state = 'mined' RETURNING id, tx_hash), "
                 "j AS (UPDATE jobs SET state = 'mirrored', updated_at = now() "
                 "      FROM mirror_records r, b WHERE r.batch_id = b.id AND jobs.id = r.job_id "
                 "      AND jobs.state = 'settled' "
                 "      RETURNING jobs.id, jobs.worker_id, b.id AS bid, b.tx_hash) "
                 "INSERT INTO job_events (job_id, state, worker_id, detail, at) "
                 "SELECT id, 'mirrored', worker_id, "
                 "       'batch ' || bid || ' tx 0x' || coalesce(encode(tx_hash, 'hex'), ''), now() "
                 "FROM j",
                 err, errlen);
}

static int s_rec_row(const PGresult *r, int i, int col, qr_mirror_rec_t *rec)
{
    rec->job_id = s_u64(r, i, col);
    if (s_bytes(r, i, col + 1, rec->client, QR_ADDR_LEN) < 0 ||
        s_bytes(r, i, col + 2, rec->operator_, QR_ADDR_LEN) < 0 ||
        qr_u256_from_dec(PQgetvalue(r, i, col + 3), &rec->amount) < 0)
        return -1;
    return 0;
}

int qr_mirror_db_record(qr_mirror_db_t *self, uint64_t job_id, qr_mirror_rec_t *rec,
                        qr_mirror_where_t *w, qr_mirror_names_t *names, char *err,
                        size_t errlen)
{
    char jid[24];
    snprintf(jid, sizeof jid, "%llu", (unsigned long long)job_id);
    const char *v[1] = {jid};
    PGresult *r;
    int rc = s_run(self, "record",
                   "SELECT m.job_id, encode(m.client, 'hex'), encode(m.operator, 'hex'), "
                   "m.amount::text, m.batch_id, m.leaf_index, b.count, b.state, b.chain_id, "
                   "encode(b.contract, 'hex'), encode(b.root, 'hex'), encode(b.tx_hash, 'hex'), "
                   "coalesce(b.block_number, 0), coalesce(b.gas_used, 0), "
                   "coalesce(s.units, 0), coalesce(s.price, 0), coalesce(s.fee, 0), "
                   "coalesce(ca.name, ''), coalesce(oa.name, '') "
                   "FROM mirror_records m JOIN mirror_batches b ON b.id = m.batch_id "
                   "LEFT JOIN settlements s ON s.job_id = m.job_id "
                   "LEFT JOIN accounts ca ON ca.id = s.client_id "
                   "LEFT JOIN accounts oa ON oa.id = s.operator_id WHERE m.job_id = $1",
                   1, v, &r, NULL, err, errlen);
    if (rc != QR_OK)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        s_seterr(err, errlen, "job %llu is in no batch", (unsigned long long)job_id);
        return QR_ENOTFOUND;
    }
    memset(w, 0, sizeof *w);
    if (s_rec_row(r, 0, 0, rec) < 0) {
        PQclear(r);
        s_seterr(err, errlen, "record of job %llu is malformed", (unsigned long long)job_id);
        return QR_EDB;
    }
    w->batch_id = s_u64(r, 0, 4);
    w->leaf_index = (uint32_t)s_u64(r, 0, 5);
    w->count = (uint32_t)s_u64(r, 0, 6);
    snprintf(names->state, sizeof names->state, "%s", PQgetvalue(r, 0, 7));
    w->state = names->state;
    w->chain_id = s_u64(r, 0, 8);
    s_bytes(r, 0, 9, w->contract, QR_ADDR_LEN);
    s_bytes(r, 0, 10, w->root, 32);
    s_bytes(r, 0, 11, w->tx_hash, 32);
    w->block = s_u64(r, 0, 12);
    w->gas_used = s_u64(r, 0, 13);
    w->units = s_u64(r, 0, 14);
    w->price = s_u64(r, 0, 15);
    w->fee = s_u64(r, 0, 16);
    snprintf(names->client_account, sizeof names->client_account, "%s", PQgetvalue(r, 0, 17));
    snprintf(names->operator_account, sizeof names->operator_account, "%s",
             PQgetvalue(r, 0, 18));
    w->client_account = names->client_account;
    w->operator_account = names->operator_account;
    PQclear(r);
    return QR_OK;
}

int qr_mirror_db_batch_records(qr_mirror_db_t *self, uint64_t batch_id, qr_mirror_rec_t **out,
                               size_t *n, char *err, size_t errlen)
{
    char bid[24];
    snprintf(bid, sizeof bid, "%llu", (unsigned long long)batch_id);
    const char *v[1] = {bid};
    PGresult *r;
    *out = NULL;
    *n = 0;
    int rc = s_run(self, "batch records",
                   "SELECT job_id, encode(client, 'hex'), encode(operator, 'hex'), amount::text "
                   "FROM mirror_records WHERE batch_id = $1 ORDER BY leaf_index",
                   1, v, &r, NULL, err, errlen);
    if (rc != QR_OK)
        return rc;
    int rows = PQntuples(r);
    if (rows > 0 && !(*out = calloc((size_t)rows, sizeof **out))) {
        PQclear(r);
        return QR_ENOMEM;
    }
    for (int i = 0; i < rows; i++)
        if (s_rec_row(r, i, 0, &(*out)[i]) < 0) {
            free(*out);
            *out = NULL;
            PQclear(r);
            s_seterr(err, errlen, "batch %s: a malformed record", bid);
            return QR_EDB;
        }
    *n = (size_t)rows;
    PQclear(r);
    return QR_OK;
}

int qr_mirror_db_operator_jobs(qr_mirror_db_t *self, const uint8_t addr[QR_ADDR_LEN],
                               uint64_t after, size_t max, uint64_t *jobs, size_t *n, char *err,
                               size_t errlen)
{
    char hex[41], aft[24], lim[24];
    s_hex(addr, QR_ADDR_LEN, hex);
    snprintf(aft, sizeof aft, "%llu", (unsigned long long)after);
    snprintf(lim, sizeof lim, "%zu", max);
    const char *v[3] = {hex, aft, lim};
    PGresult *r;
    *n = 0;
    int rc = s_run(self, "operator records",
                   "SELECT m.job_id FROM mirror_records m JOIN mirror_batches b "
                   "ON b.id = m.batch_id WHERE m.operator = decode($1, 'hex') AND m.job_id > $2 "
                   "AND b.state = 'confirmed' ORDER BY m.job_id LIMIT $3",
                   3, v, &r, NULL, err, errlen);
    if (rc != QR_OK)
        return rc;
    for (int i = 0; i < PQntuples(r) && (size_t)i < max; i++)
        jobs[(*n)++] = s_u64(r, i, 0);
    PQclear(r);
    return QR_OK;
}

int qr_mirror_db_stats(qr_mirror_db_t *self, qr_mirror_stats_t *out, char *err, size_t errlen)
{
    PGresult *r;
    memset(out, 0, sizeof *out);
    out->last_batch = -1;
    int rc = s_run(self, "stats",
                   "SELECT (SELECT count(*) FROM settlements WHERE batch_id IS NULL), "
                   "(SELECT count(*) FROM settlements s "
                   " JOIN account_addresses ca ON ca.account_id = s.client_id "
                   " JOIN account_addresses oa ON oa.account_id = s.operator_id "
                   " WHERE s.batch_id IS NULL), "
                   "(SELECT count(*) FROM mirror_batches WHERE state = 'signed'), "
                   "(SELECT count(*) FROM mirror_batches WHERE state = 'sent'), "
                   "(SELECT count(*) FROM mirror_batches WHERE state = 'mined'), "
                   "(SELECT count(*) FROM mirror_batches WHERE state = 'confirmed'), "
                   "(SELECT coalesce(sum(count), 0) FROM mirror_batches WHERE state = 'confirmed'), "
                   "(SELECT coalesce(sum(gas_used), 0) FROM mirror_batches), "
                   "(SELECT coalesce(max(id), -1) FROM mirror_batches)",
                   0, NULL, &r, NULL, err, errlen);
    if (rc != QR_OK)
        return rc;
    if (PQntuples(r) == 1) {
        out->unbatched = s_i64(r, 0, 0);
        out->eligible = s_i64(r, 0, 1);
        for (int i = 0; i < 4; i++)
            out->batches[i] = s_i64(r, 0, 2 + i);
        out->records_confirmed = s_i64(r, 0, 6);
        out->gas_used_total = s_i64(r, 0, 7);
        out->last_batch = s_i64(r, 0, 8);
    }
    PQclear(r);
    return QR_OK;
}
