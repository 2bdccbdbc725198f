/* The broker's PostgreSQL layer (see db.h): migrations, restart reload, reads
 * for STATUS/LIST/RESULT, and the group commit that makes every state change
 * durable before anyone is told about it.
 *
 * Design notes (group commit)
 *
 *   The qr_db_add_* calls only touch memory.  New rows are encoded at once
 *   into one binary COPY stream per table (s_copy_t), so the commit is a
 *   handful of round trips however many rows a poll loop produced:
 *
 *     BEGIN
 *     COPY accounts          (new accounts first: everything else refers to them)
 *     INSERT workers ... ON CONFLICT (id) DO UPDATE     (per row, they are rare)
 *     COPY blobs             (inputs and results the broker has not stored yet)
 *     COPY jobs              (referring to their input blob)
 *     UPDATE jobs FROM unnest(arrays)                   (deduplicated, last wins)
 *     UPDATE workers FROM unnest(arrays)                (state/reputation/jobs_done)
 *     COPY job_events, ledger_entries, settlements
 *     UPDATE accounts FROM unnest(per-account ledger deltas)
 *     COMMIT
 *
 *   Invariants:
 *   1. One qr_db_commit = one transaction.  It either writes the whole batch
 *      or nothing, and the batch is empty afterwards either way.
 *   2. The ledger entries of each txn_id in a batch sum to zero, checked in
 *      memory before anything is sent (QR_EINVAL otherwise); so the ledger's
 *      total stays zero.
 *   3. accounts.available/reserved move only here, in the same transaction
 *      as the ledger entries they sum, by exactly those entries.
 *   4. Every job update names a job that exists (the UPDATE's row count is
 *      checked), so a state the broker reported is never silently dropped.
 *   5. Each PGresult is cleared in the function that obtained it; after any
 *      failure the connection is left idle (ROLLBACK) or reported dead.
 *
 *   Binary COPY: each table's rows go as COPY statements of S_COPY_ROWS
 *   rows.  A statement's stream is the 19-byte header, then per row an int16
 *   field count and per field an int32 length (-1 = NULL) and the value in
 *   network byte order; text and bytea are raw bytes; timestamptz is int64
 *   microseconds since 2000-01-01 UTC (integer_datetimes, checked at
 *   connect); the stream ends with int16 -1.
 *
 *   UPDATE ... FROM unnest(arrays) u WHERE t.id = u.id also says
 *   AND t.id = ANY($1): without it the planner joins a few hundred updates
 *   against the whole table by hashing it (a sequential scan of every job
 *   ever kept, per commit) until the table is large enough to tip the costs
 *   towards index lookups; with it the rows come from the primary key.
 *
 * Callbacks of the load/list functions run while the query's rows are still
 * arriving: they must not call back into this module. */
#include "db.h"

#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "jobstate.h"
#include "migrations.h"

/* Milliseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC). */
#define S_PG_EPOCH_MS 946684800000LL
/* Advisory lock key held while migrating: "quarry\0\1" as a big-endian int8. */
#define S_MIGRATE_LOCK "8175547842735702017"
/* Bytes per CopyData message: large enough to amortise the call, small enough
 * that libpq does not double a batch's memory. */
#define S_COPY_CHUNK (1u << 20)
/* The binary COPY header: signature, flags, extension length. */
#define S_COPY_HEADER 19
/* Rows per COPY statement.  PostgreSQL 15 buffers up to 1,000 rows of a COPY
 * in as many tuple slots, each registered with the transaction's resource
 * owner under the same tuple descriptor; that registry is an open-addressing
 * hash, so identical keys make adding and dropping them quadratic.  Past a
 * few hundred rows that cost outgrows a statement's own (measured on a
 * five-column log table: 1.2 us a row at 300 rows, 1.8 at 1,000; over the
 * bench, splitting the logs into statements of 250 rows took ~5% off the
 * database's CPU per job). */
#define S_COPY_ROWS 256
/* A batch buffer that grew past this is freed after the commit, not kept. */
#define S_KEEP_CAP (64u << 20)

/* Wall-clock ms as a timestamptz expression (int8 parameter, no rounding). */
#define S_TS(p) "(timestamptz 'epoch' + " p " * interval '1 millisecond')"
/* A timestamptz column as int8 ms since the Unix epoch. */
#define S_MS(c) "(extract(epoch from " c ") * 1000)::int8"

/* Columns read into a qr_db_job_t (binary results, see s_job_from_row). */
#define S_JOB_COLS                                                                              \
    "id, client_id, kind, state, m::int8, n::int8, k::int8, max_price, need_gpu, min_mem_mb, " \
    "priority::int8, max_attempts::int8, attempts::int8, coalesce(" S_MS("deadline") ", 0), "  \
    "coalesce(worker_id, 0), units, price, fee, " S_MS("created_at") ", " S_MS("updated_at")   \
    ", detail, coalesce(idem_key, ''), input_blob, coalesce(model, '')"
#define S_JOB_NCOLS 24

/* A growable byte buffer. */
typedef struct {
    uint8_t *p;  /* bytes */
    size_t len;  /* used */
    size_t cap;  /* allocated */
} s_buf_t;

/* The tables written by COPY, in commit order where it matters. */
enum { S_ACCOUNTS = 0, S_BLOBS, S_JOBS, S_EVENTS, S_LEDGER, S_SETTLEMENTS, S_NCOPY };

static const char *const s_copy_sql[S_NCOPY] = {
    "COPY accounts (id, name, kind) FROM STDIN (FORMAT binary)",
    "COPY blobs (id, data) FROM STDIN (FORMAT binary)",
    "COPY jobs (id, client_id, kind, state, m, n, k, max_price, need_gpu, min_mem_mb, priority, "
    "max_attempts, attempts, deadline, worker_id, units, price, fee, detail, idem_key, input_blob, "
    "created_at, updated_at, model) FROM STDIN (FORMAT binary)",
    "COPY job_events (job_id, state, worker_id, detail, at) FROM STDIN (FORMAT binary)",
    "COPY ledger_entries (txn_id, account_id, bucket, job_id, kind, amount, at) FROM STDIN "
    "(FORMAT binary)",
    "COPY settlements (job_id, worker_id, operator_id, client_id, units, price, fee, settled_at) "
    "FROM STDIN (FORMAT binary)",
};

/* One table's pending COPY stream. */
typedef struct {
    s_buf_t buf;  /* header + encoded rows (the trailer is sent after each statement's rows) */
    size_t rows;  /* rows encoded */
    s_buf_t cuts; /* size_t byte offsets where a new COPY statement starts (S_COPY_ROWS) */
} s_copy_t;

/* What the ledger check and the balance update need of an entry. */
typedef struct {
    uint64_t txn_id;     /* ledger transaction */
    uint64_t account_id; /* account moved */
    int bucket;          /* qr_bucket_t */
    int64_t amount;      /* signed base units */
} s_entry_t;

/* A queued job update. */
typedef struct {
    uint64_t id;         /* job */
    size_t seq;          /* order queued, so the last update of a job wins */
    int state;           /* qr_job_state_t */
    uint64_t worker_id;  /* 0 = none */
    uint32_t attempts;
    uint64_t units, price, fee;
    int64_t updated_ms;  /* wall clock */
    uint64_t result_blob; /* 0 = leave as it is */
    char detail[256];
} s_jobupd_t;

/* A queued worker upsert (strings owned). */
typedef struct {
    uint64_t id;
    char *name;
    uint64_t operator_id;
    char *devices;      /* JSON */
    char *runtimes;
    uint64_t ask_price;
    uint32_t slots;
} s_worker_t;

/* A queued worker state change. */
typedef struct {
    uint64_t id;        /* worker */
    size_t seq;         /* order queued: last wins */
    char state[32];
    int32_t reputation;
    uint64_t jobs_done;
} s_wstate_t;

struct qr_db {
    PGconn *conn;             /* the connection; NULL only if libpq ran out of memory */
    uint64_t fence;           /* leader epoch every commit checks; 0 = none */
    char *conninfo;           /* kept for qr_db_reconnect */
    s_copy_t copy[S_NCOPY];   /* pending inserts, per table */
    s_entry_t *entries;       /* pending ledger entries (also encoded in copy[S_LEDGER]) */
    size_t n_entries, cap_entries;
    s_jobupd_t *upd;          /* pending job updates */
    size_t n_upd, cap_upd;
    s_worker_t *workers;      /* pending worker upserts */
    struct s_keyop {
        char key[41];
        uint64_t account_id;
        char role[12]; /* "" = remove */
    } *keyops;                /* pending key bindings, in order */
    size_t n_keyops, cap_keyops;
    size_t n_workers, cap_workers;
    s_wstate_t *wstate;       /* pending worker state changes */
    size_t n_wstate, cap_wstate;
    size_t seq;               /* counter behind s_jobupd_t.seq and s_wstate_t.seq */
    bool oom;                 /* an add_* ran out of memory: the commit refuses the batch */
};

/* ---- small helpers ------------------------------------------------------ */

static void s_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* libpq messages end in newlines and may span lines: keep one log line */
    size_t n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
    for (char *c = err; *c; c++)
        if (*c == '\n')
            *c = ' ';
}

/* The server's message for res (primary and detail), or the connection's. */
static void s_pgerr(qr_db_t *self, const PGresult *res, const char *what, char *err,
                    size_t errlen)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (primary) {
        const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        s_seterr(err, errlen, "%s: %s%s%s%s", what, primary, detail ? " (" : "",
                 detail ? detail : "", detail ? ")" : "");
    } else {
        const char *msg = self->conn ? PQerrorMessage(self->conn) : "";
        s_seterr(err, errlen, "%s: %s", what, *msg ? msg : "connection lost");
    }
}

/* Refuses work on a connection libpq already knows to be dead. */
static bool s_alive(qr_db_t *self, char *err, size_t errlen)
{
    if (self->conn && PQstatus(self->conn) == CONNECTION_OK)
        return true;
    s_seterr(err, errlen, "database connection lost: %s",
             self->conn ? PQerrorMessage(self->conn) : "out of memory");
    return false;
}

/* Runs a command (text parameters) that returns no rows.  *affected (may be
 * NULL) gets the row count.  Returns QR_OK or QR_EDB. */
static int s_cmd(qr_db_t *self, const char *sql, int nparams, const char *const *values,
                 uint64_t *affected, char *err, size_t errlen)
{
    PGresult *res = PQexecParams(self->conn, sql, nparams, NULL, values, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        s_pgerr(self, res, "database", err, errlen);
        PQclear(res);
        return QR_EDB;
    }
    if (affected)
        *affected = strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return QR_OK;
}

static bool s_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return false;
    *p = q;
    *cap = n;
    return true;
}


static void s_copystr(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---- buffers and the binary COPY encoder ---------------------------------- */

static bool s_reserve(qr_db_t *self, s_buf_t *b, size_t n)
{
    if (self->oom)
        return false;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            self->oom = true;
            return false;
        }
        b->p = p;
        b->cap = cap;
    }
    return true;
}

static void s_put(qr_db_t *self, s_buf_t *b, const void *p, size_t n)
{
    if (n && s_reserve(self, b, n)) {
        memcpy(b->p + b->len, p, n);
        b->len += n;
    }
}

static void s_put16(qr_db_t *self, s_buf_t *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    s_put(self, b, x, 2);
}

static void s_put32(qr_db_t *self, s_buf_t *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    s_put(self, b, x, 4);
}

static void s_put64(qr_db_t *self, s_buf_t *b, uint64_t v)
{
    s_put32(self, b, (uint32_t)(v >> 32));
    s_put32(self, b, (uint32_t)v);
}

/* Starts a row of nfields in table t's stream (writing the header first). */
static s_buf_t *s_row(qr_db_t *self, int t, uint16_t nfields)
{
    s_copy_t *c = &self->copy[t];
    if (c->buf.len == 0) {
        static const uint8_t sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
        s_put(self, &c->buf, sig, sizeof sig);
        s_put32(self, &c->buf, 0); /* flags: no OIDs */
        s_put32(self, &c->buf, 0); /* header extension length */
    }
    if (c->rows && c->rows % S_COPY_ROWS == 0) {
        size_t at = c->buf.len;
        s_put(self, &c->cuts, &at, sizeof at);
    }
    s_put16(self, &c->buf, nfields);
    c->rows++;
    return &c->buf;
}

static void s_f_null(qr_db_t *self, s_buf_t *b)
{
    s_put32(self, b, UINT32_MAX); /* -1 */
}

static void s_f_i64(qr_db_t *self, s_buf_t *b, uint64_t v)
{
    s_put32(self, b, 8);
    s_put64(self, b, v);
}

/* An id where 0 means "none". */
static void s_f_id(qr_db_t *self, s_buf_t *b, uint64_t v)
{
    if (v)
        s_f_i64(self, b, v);
    else
        s_f_null(self, b);
}

static void s_f_i32(qr_db_t *self, s_buf_t *b, uint32_t v)
{
    s_put32(self, b, 4);
    s_put32(self, b, v);
}

static void s_f_bool(qr_db_t *self, s_buf_t *b, bool v)
{
    uint8_t x = v ? 1 : 0;
    s_put32(self, b, 1);
    s_put(self, b, &x, 1);
}

static void s_f_bytes(qr_db_t *self, s_buf_t *b, const void *p, size_t n)
{
    if (n > 0x3fffffff) { /* PostgreSQL's 1 GiB field limit */
        self->oom = true;
        return;
    }
    s_put32(self, b, (uint32_t)n);
    s_put(self, b, p, n);
}

static void s_f_text(qr_db_t *self, s_buf_t *b, const char *s)
{
    s_f_bytes(self, b, s ? s : "", s ? strlen(s) : 0);
}

/* A text field from a fixed-size char array, which may lack its NUL. */
static void s_f_textn(qr_db_t *self, s_buf_t *b, const char *s, size_t cap)
{
    s_f_bytes(self, b, s, strnlen(s, cap));
}

static void s_f_ts(qr_db_t *self, s_buf_t *b, int64_t wall_ms)
{
    s_f_i64(self, b, (uint64_t)((wall_ms - S_PG_EPOCH_MS) * 1000));
}

/* ---- text array parameters (for UPDATE ... FROM unnest) ------------------ */

static void s_arr_sep(qr_db_t *self, s_buf_t *b)
{
    s_put(self, b, b->len ? "," : "{", 1);
}

static void s_arr_u64(qr_db_t *self, s_buf_t *b, uint64_t v)
{
    char tmp[24];
    s_arr_sep(self, b);
    s_put(self, b, tmp, (size_t)snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v));
}

static void s_arr_i64(qr_db_t *self, s_buf_t *b, int64_t v)
{
    char tmp[24];
    s_arr_sep(self, b);
    s_put(self, b, tmp, (size_t)snprintf(tmp, sizeof tmp, "%lld", (long long)v));
}

static void s_arr_id(qr_db_t *self, s_buf_t *b, uint64_t v)
{
    if (v) {
        s_arr_u64(self, b, v);
    } else {
        s_arr_sep(self, b);
        s_put(self, b, "NULL", 4);
    }
}

/* A text element, always quoted so "NULL", commas and braces stay data. */
static void s_arr_text(qr_db_t *self, s_buf_t *b, const char *s)
{
    s_arr_sep(self, b);
    s_put(self, b, "\"", 1);
    for (const char *c = s; *c; c++) {
        if (*c == '"' || *c == '\\')
            s_put(self, b, "\\", 1);
        s_put(self, b, c, 1);
    }
    s_put(self, b, "\"", 1);
}

/* Closes the array literal and NUL-terminates it for PQexecParams. */
static void s_arr_end(qr_db_t *self, s_buf_t *b)
{
    if (b->len == 0)
        s_put(self, b, "{", 1);
    s_put(self, b, "}", 2); /* with the terminating NUL */
}

/* ---- connection ------------------------------------------------------------ */

/* Notices ("relation already exists, skipping") are not errors: keep them off
 * stderr, where they would break the broker's one-line log format. */
static void s_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static PGconn *s_connect(const char *conninfo, char *err, size_t errlen)
{
    /* conninfo may be a URI or key=value; client_encoding fixes how the text
     * in binary COPY rows is read. */
    const char *const keys[] = {"dbname", "client_encoding", "fallback_application_name", NULL};
    const char *const vals[] = {conninfo, "UTF8", "quarry-broker", NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (!conn) {
        s_seterr(err, errlen, "database: out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        s_seterr(err, errlen, "database connect failed: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    const char *idt = PQparameterStatus(conn, "integer_datetimes");
    if (!idt || strcmp(idt, "on") != 0) {
        s_seterr(err, errlen, "database server lacks integer_datetimes (binary COPY needs it)");
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, s_quiet, NULL);
    return conn;
}

qr_db_t *qr_db_new(const char *conninfo, char *err, size_t errlen)
{
    if (!conninfo) {
        s_seterr(err, errlen, "database: no conninfo");
        return NULL;
    }
    qr_db_t *self = calloc(1, sizeof *self);
    if (!self) {
        s_seterr(err, errlen, "database: out of memory");
        return NULL;
    }
    self->conninfo = strdup(conninfo);
    if (!self->conninfo) {
        s_seterr(err, errlen, "database: out of memory");
        goto fail;
    }
    self->conn = s_connect(conninfo, err, errlen);
    if (!self->conn)
        goto fail;
    return self;
fail:
    free(self->conninfo);
    free(self);
    return NULL;
}

static void s_clear(qr_db_t *self)
{
    for (int t = 0; t < S_NCOPY; t++) {
        s_copy_t *c = &self->copy[t];
        if (c->buf.cap > S_KEEP_CAP) {
            free(c->buf.p);
            c->buf.p = NULL;
            c->buf.cap = 0;
        }
        c->buf.len = 0;
        c->cuts.len = 0;
        c->rows = 0;
    }
    for (size_t i = 0; i < self->n_workers; i++) {
        free(self->workers[i].name);
        free(self->workers[i].devices);
        free(self->workers[i].runtimes);
    }
    self->n_entries = self->n_upd = self->n_workers = self->n_wstate = 0;
    self->n_keyops = 0;
    self->seq = 0;
    self->oom = false;
}

void qr_db_destroy(qr_db_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_db_t *self = *self_p;
    s_clear(self);
    for (int t = 0; t < S_NCOPY; t++) {
        free(self->copy[t].buf.p);
        free(self->copy[t].cuts.p);
    }
    free(self->entries);
    free(self->upd);
    free(self->workers);
    free(self->keyops);
    free(self->wstate);
    if (self->conn)
        PQfinish(self->conn);
    free(self->conninfo);
    free(self);
    *self_p = NULL;
}

bool qr_db_ok(qr_db_t *self)
{
    return self && self->conn && PQstatus(self->conn) == CONNECTION_OK;
}

int qr_db_reconnect(qr_db_t *self, char *err, size_t errlen)
{
    if (self->conn)
        PQfinish(self->conn);
    self->conn = s_connect(self->conninfo, err, errlen);
    return self->conn ? QR_OK : QR_EDB;
}

/* ---- migrations --------------------------------------------------------------- */

static int s_apply(qr_db_t *self, const qr_migration_t *m, char *err, size_t errlen)
{
    char what[96];
    snprintf(what, sizeof what, "migration %03d_%s", m->version, m->name);
    PGresult *res = PQexec(self->conn, "BEGIN");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        goto fail;
    PQclear(res);
    /* A migration is fixed text from the binary, run as one multi-statement
     * simple query (the extended protocol takes one statement only). */
    res = PQexec(self->conn, m->sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        goto fail;
    PQclear(res);
    char ver[16];
    snprintf(ver, sizeof ver, "%d", m->version);
    const char *params[2] = {ver, m->name};
    res = PQexecParams(self->conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                       2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        goto fail;
    PQclear(res);
    res = PQexec(self->conn, "COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        goto fail;
    PQclear(res);
    return QR_OK;
fail:
    s_pgerr(self, res, what, err, errlen);
    PQclear(res);
    if (PQstatus(self->conn) == CONNECTION_OK)
        PQclear(PQexec(self->conn, "ROLLBACK"));
    return QR_EDB;
}

int qr_db_migrate(qr_db_t *self, int *applied, char *err, size_t errlen)
{
    int rc = QR_EDB, count = 0;
    bool locked = false;
    bool *have = NULL;
    PGresult *res = NULL;
    if (applied)
        *applied = 0;
    if (!s_alive(self, err, errlen))
        return QR_EDB;
    /* Lock before CREATE TABLE IF NOT EXISTS: two sessions creating it at
     * once can still collide on the catalog. */
    const char *key[1] = {S_MIGRATE_LOCK};
    if (s_cmd(self, "SELECT pg_advisory_lock($1::int8)", 1, key, NULL, err, errlen) != QR_OK)
        goto fail;
    locked = true;
    if (s_cmd(self,
              "CREATE TABLE IF NOT EXISTS schema_migrations ("
              " version int PRIMARY KEY, name text NOT NULL,"
              " applied_at timestamptz NOT NULL DEFAULT now())",
              0, NULL, NULL, err, errlen) != QR_OK)
        goto fail;
    have = calloc(qr_migrations_count + 1, sizeof *have);
    if (!have) {
        s_seterr(err, errlen, "migrate: out of memory");
        goto fail;
    }
    res = PQexecParams(self->conn, "SELECT version FROM schema_migrations", 0, NULL, NULL, NULL,
                       NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        s_pgerr(self, res, "migrate", err, errlen);
        goto fail;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        int v = atoi(PQgetvalue(res, r, 0));
        for (size_t i = 0; i < qr_migrations_count; i++)
            if (qr_migrations[i].version == v)
                have[i] = true;
    }
    PQclear(res);
    res = NULL;
    for (size_t i = 0; i < qr_migrations_count; i++) {
        if (have[i])
            continue;
        if (s_apply(self, &qr_migrations[i], err, errlen) != QR_OK)
            goto fail;
        count++;
    }
    rc = QR_OK;
fail:
    PQclear(res);
    free(have);
    if (locked && PQstatus(self->conn) == CONNECTION_OK)
        s_cmd(self, "SELECT pg_advisory_unlock($1::int8)", 1, key, NULL, NULL, 0);
    if (applied)
        *applied = count;
    return rc;
}

/* ---- reads ------------------------------------------------------------------------ */

/* Binary-result getters; a NULL reads as 0 / "" (the SQL coalesces anyway). */
static int64_t s_get_i64(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
        return 0;
    const uint8_t *p = (const uint8_t *)PQgetvalue(res, row, col);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

static bool s_get_bool(const PGresult *res, int row, int col)
{
    return !PQgetisnull(res, row, col) && PQgetlength(res, row, col) == 1 &&
           PQgetvalue(res, row, col)[0] != 0;
}

static void s_get_text(const PGresult *res, int row, int col, char *dst, size_t cap)
{
    s_copystr(dst, cap, PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}

/* Fills job from a row of S_JOB_COLS (and input, when with_input).
 * Returns false when the input could not be allocated. */
static bool s_job_from_row(const PGresult *res, int row, qr_db_job_t *job, bool with_input)
{
    char state[32];
    memset(job, 0, sizeof *job);
    job->id = (uint64_t)s_get_i64(res, row, 0);
    job->client_id = (uint64_t)s_get_i64(res, row, 1);
    s_get_text(res, row, 2, job->kind, sizeof job->kind);
    s_get_text(res, row, 3, state, sizeof state);
    job->state = qr_job_state_parse(state);
    job->m = (uint32_t)s_get_i64(res, row, 4);
    job->n = (uint32_t)s_get_i64(res, row, 5);
    job->k = (uint32_t)s_get_i64(res, row, 6);
    job->max_price = (uint64_t)s_get_i64(res, row, 7);
    job->need_gpu = s_get_bool(res, row, 8);
    job->min_mem_mb = (uint64_t)s_get_i64(res, row, 9);
    job->priority = (int32_t)s_get_i64(res, row, 10);
    job->max_attempts = (uint32_t)s_get_i64(res, row, 11);
    job->attempts = (uint32_t)s_get_i64(res, row, 12);
    job->deadline_ms = s_get_i64(res, row, 13);
    job->worker_id = (uint64_t)s_get_i64(res, row, 14);
    job->units = (uint64_t)s_get_i64(res, row, 15);
    job->price = (uint64_t)s_get_i64(res, row, 16);
    job->fee = (uint64_t)s_get_i64(res, row, 17);
    job->created_ms = s_get_i64(res, row, 18);
    job->updated_ms = s_get_i64(res, row, 19);
    s_get_text(res, row, 20, job->detail, sizeof job->detail);
    s_get_text(res, row, 21, job->idem_key, sizeof job->idem_key);
    job->input_blob = (uint64_t)s_get_i64(res, row, 22);
    s_get_text(res, row, 23, job->model, sizeof job->model);
    if (with_input) {
        size_t n = (size_t)PQgetlength(res, row, S_JOB_NCOLS);
        /* non-NULL even when empty: NULL means "not loaded" */
        job->input = malloc(n ? n : 1);
        if (!job->input)
            return false;
        memcpy(job->input, PQgetvalue(res, row, S_JOB_NCOLS), n);
        job->input_len = n;
    }
    return true;
}

/* Runs a query in single-row mode, calling row(ctx, res, r) per row, so large
 * tables stream instead of landing in memory at once.  Every result is
 * drained even after an error, leaving the connection ready.  row returns
 * false to report an out-of-memory.  Returns QR_OK or QR_EDB. */
static int s_stream(qr_db_t *self, const char *sql, int nparams, const char *const *values,
                    bool (*row)(void *ctx, const PGresult *res, int r), void *ctx, char *err,
                    size_t errlen)
{
    int rc = QR_OK;
    if (!s_alive(self, err, errlen))
        return QR_EDB;
    if (!PQsendQueryParams(self->conn, sql, nparams, NULL, values, NULL, NULL, 1)) {
        s_pgerr(self, NULL, "database", err, errlen);
        return QR_EDB;
    }
    /* Failing to switch is not fatal: the rows then arrive in one result,
     * which the loop below handles the same way. */
    (void)PQsetSingleRowMode(self->conn);
    PGresult *res;
    while ((res = PQgetResult(self->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
            for (int r = 0; rc == QR_OK && r < PQntuples(res); r++)
                if (!row(ctx, res, r)) {
                    s_seterr(err, errlen, "database: out of memory reading rows");
                    rc = QR_EDB;
                }
        } else if (rc == QR_OK) {
            s_pgerr(self, res, "database", err, errlen);
            rc = QR_EDB;
        }
        PQclear(res);
    }
    if (rc == QR_OK && PQstatus(self->conn) != CONNECTION_OK) {
        s_pgerr(self, NULL, "database", err, errlen);
        rc = QR_EDB;
    }
    return rc;
}

int qr_db_max_ids(qr_db_t *self, uint64_t *job_id, uint64_t *account_id, uint64_t *worker_id,
                  uint64_t *txn_id, uint64_t *blob_id, char *err, size_t errlen)
{
    if (!s_alive(self, err, errlen))
        return QR_EDB;
    PGresult *res = PQexecParams(self->conn,
                                 "SELECT (SELECT coalesce(max(id), 0) FROM jobs),"
                                 " (SELECT coalesce(max(id), 0) FROM accounts),"
                                 " (SELECT coalesce(max(id), 0) FROM workers),"
                                 " (SELECT coalesce(max(txn_id), 0) FROM ledger_entries),"
                                 " (SELECT coalesce(max(id), 0) FROM blobs)",
                                 0, NULL, NULL, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        s_pgerr(self, res, "max ids", err, errlen);
        PQclear(res);
        return QR_EDB;
    }
    uint64_t *out[5] = {job_id, account_id, worker_id, txn_id, blob_id};
    for (int i = 0; i < 5; i++)
        if (out[i])
            *out[i] = (uint64_t)s_get_i64(res, 0, i);
    PQclear(res);
    return QR_OK;
}

typedef struct {
    void (*fn)(void *arg, const qr_db_account_t *a);
    void *arg;
} s_acct_ctx_t;

static bool s_acct_row(void *ctx, const PGresult *res, int r)
{
    s_acct_ctx_t *c = ctx;
    qr_db_account_t a;
    char kind[16];
    memset(&a, 0, sizeof a);
    a.id = (uint64_t)s_get_i64(res, r, 0);
    s_get_text(res, r, 1, a.name, sizeof a.name);
    s_get_text(res, r, 2, kind, sizeof kind);
    a.kind = strcmp(kind, "operator") == 0 ? QR_ACCT_OPERATOR
             : strcmp(kind, "system") == 0 ? QR_ACCT_SYSTEM
                                           : QR_ACCT_CLIENT;
    a.available = s_get_i64(res, r, 3);
    a.reserved = s_get_i64(res, r, 4);
    c->fn(c->arg, &a);
    return true;
}

int qr_db_load_accounts(qr_db_t *self, void (*fn)(void *arg, const qr_db_account_t *a), void *arg,
                        char *err, size_t errlen)
{
    s_acct_ctx_t ctx = {fn, arg};
    return s_stream(self, "SELECT id, name, kind, available, reserved FROM accounts ORDER BY id",
                    0, NULL, s_acct_row, &ctx, err, errlen);
}

typedef struct {
    void (*fn)(void *arg, const qr_db_worker_t *w);
    void *arg;
} s_worker_ctx_t;

static bool s_worker_row(void *ctx, const PGresult *res, int r)
{
    s_worker_ctx_t *c = ctx;
    qr_db_worker_t w;
    memset(&w, 0, sizeof w);
    w.id = (uint64_t)s_get_i64(res, r, 0);
    s_get_text(res, r, 1, w.name, sizeof w.name);
    w.operator_id = (uint64_t)s_get_i64(res, r, 2);
    w.reputation = (int32_t)s_get_i64(res, r, 3);
    w.jobs_done = (uint64_t)s_get_i64(res, r, 4);
    w.earned = s_get_i64(res, r, 5);
    c->fn(c->arg, &w);
    return true;
}

int qr_db_load_workers(qr_db_t *self, void (*fn)(void *arg, const qr_db_worker_t *w), void *arg,
                       char *err, size_t errlen)
{
    s_worker_ctx_t ctx = {fn, arg};
    return s_stream(self,
                    "SELECT w.id, w.name, w.operator_id, w.reputation::int8, w.jobs_done, "
                    "coalesce((SELECT sum(s.price - s.fee) FROM settlements s "
                    "WHERE s.worker_id = w.id), 0)::int8 FROM workers w ORDER BY w.id",
                    0, NULL, s_worker_row, &ctx, err, errlen);
}

typedef struct {
    void (*fn)(void *arg, qr_db_job_t *job);
    void (*cfn)(void *arg, const qr_db_job_t *job);
    void *arg;
    bool with_input;
} s_job_ctx_t;

static bool s_job_row(void *ctx, const PGresult *res, int r)
{
    s_job_ctx_t *c = ctx;
    qr_db_job_t job;
    if (!s_job_from_row(res, r, &job, c->with_input))
        return false;
    if (c->fn)
        c->fn(c->arg, &job); /* takes job.input */
    else
        c->cfn(c->arg, &job);
    return true;
}

int qr_db_load_jobs(qr_db_t *self, void (*fn)(void *arg, qr_db_job_t *job), void *arg, char *err,
                    size_t errlen)
{
    s_job_ctx_t ctx = {fn, NULL, arg, true};
    /* A sequential scan, once per start: no index covers state (001_core.sql). */
    return s_stream(self,
                    "SELECT " S_JOB_COLS ", (SELECT data FROM blobs WHERE blobs.id = input_blob) "
                    "FROM jobs WHERE state IN ('submitted', "
                    "'queued', 'assigned', 'running', 'done', 'verified') ORDER BY id",
                    0, NULL, s_job_row, &ctx, err, errlen);
}

int qr_db_get_job(qr_db_t *self, uint64_t job_id, qr_db_job_t *out, char *err, size_t errlen)
{
    if (!s_alive(self, err, errlen))
        return QR_EDB;
    char id[24];
    snprintf(id, sizeof id, "%llu", (unsigned long long)job_id);
    const char *params[1] = {id};
    PGresult *res = PQexecParams(self->conn, "SELECT " S_JOB_COLS " FROM jobs WHERE id = $1", 1,
                                 NULL, params, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        s_pgerr(self, res, "get job", err, errlen);
        PQclear(res);
        return QR_EDB;
    }
    int rc = QR_ENOTFOUND;
    if (PQntuples(res) == 1) {
        s_job_from_row(res, 0, out, false);
        rc = QR_OK;
    } else {
        s_seterr(err, errlen, "job %llu not found", (unsigned long long)job_id);
    }
    PQclear(res);
    return rc;
}

int qr_db_find_idem(qr_db_t *self, uint64_t client_id, const char *key, uint64_t *job_id,
                    char *err, size_t errlen)
{
    *job_id = 0;
    if (!s_alive(self, err, errlen))
        return QR_EDB;
    char id[24];
    snprintf(id, sizeof id, "%llu", (unsigned long long)client_id);
    const char *params[2] = {id, key};
    PGresult *res = PQexecParams(self->conn,
                                 "SELECT id FROM jobs WHERE client_id = $1 AND idem_key = $2", 2,
                                 NULL, params, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        s_pgerr(self, res, "find idempotency key", err, errlen);
        PQclear(res);
        return QR_EDB;
    }
    int rc = QR_ENOTFOUND;
    if (PQntuples(res) == 1) {
        *job_id = (uint64_t)s_get_i64(res, 0, 0);
        rc = QR_OK;
    }
    PQclear(res);
    return rc;
}

int qr_db_get_result(qr_db_t *self, uint64_t job_id, uint8_t **data, size_t *len, char *err,
                     size_t errlen)
{
    *data = NULL;
    *len = 0;
    if (!s_alive(self, err, errlen))
        return QR_EDB;
    char id[24];
    snprintf(id, sizeof id, "%llu", (unsigned long long)job_id);
    const char *params[1] = {id};
    PGresult *res = PQexecParams(self->conn,
                                 "SELECT b.data FROM jobs j JOIN blobs b ON b.id = j.result_blob "
                                 "WHERE j.id = $1",
                                 1, NULL, params, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        s_pgerr(self, res, "get result", err, errlen);
        PQclear(res);
        return QR_EDB;
    }
    int rc = QR_OK;
    if (PQntuples(res) != 1) {
        s_seterr(err, errlen, "no result stored for job %llu", (unsigned long long)job_id);
        rc = QR_ENOTFOUND;
    } else {
        size_t n = (size_t)PQgetlength(res, 0, 0);
        *data = malloc(n ? n : 1);
        if (!*data) {
            s_seterr(err, errlen, "get result: out of memory");
            rc = QR_EDB;
        } else {
            memcpy(*data, PQgetvalue(res, 0, 0), n);
            *len = n;
        }
    }
    PQclear(res);
    return rc;
}

int qr_db_list_jobs(qr_db_t *self, uint64_t client_id, const char *state, uint32_t limit,
                    void (*fn)(void *arg, const qr_db_job_t *job), void *arg, char *err,
                    size_t errlen)
{
    char cid[24], lim[16];
    snprintf(cid, sizeof cid, "%llu", (unsigned long long)client_id);
    snprintf(lim, sizeof lim, "%u", limit);
    /* LIMIT NULL is no limit: limit 0 lists everything. */
    const char *params[3] = {cid, state ? state : "", limit ? lim : NULL};
    s_job_ctx_t ctx = {NULL, fn, arg, false};
    /* Unnamed statements are planned with the actual values, so the
     * "$1 = 0 OR" arms fold away and jobs_client / the pkey serve the scan. */
    return s_stream(self,
                    "SELECT " S_JOB_COLS " FROM jobs WHERE ($1::int8 = 0 OR client_id = $1) "
                    "AND ($2::text = '' OR state = $2) ORDER BY id DESC LIMIT $3::int8",
                    3, params, s_job_row, &ctx, err, errlen);
}

int qr_db_dash(qr_db_t *self, qr_db_dash_t *out,
               void (*fn)(void *arg, const char *op, uint64_t jobs, int64_t earned), void *arg,
               char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!s_alive(self, err, errlen))
        return QR_EDB;
    /* ledger_sum comes from the balance columns (one row per account) rather
     * than v_ledger_check, which scans the whole ledger; the two agree by
     * invariant 3, and v_balances/v_ledger_check remain the full audit. */
    PGresult *res = PQexecParams(
        self->conn,
        "SELECT t.jobs_per_s, l.p50_ms, l.p99_ms, (SELECT count(*) FROM settlements),"
        " (SELECT coalesce(sum(available + reserved), 0)::int8 FROM accounts)"
        " FROM v_throughput t, v_latency l",
        0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        s_pgerr(self, res, "dash", err, errlen);
        PQclear(res);
        return QR_EDB;
    }
    out->jobs_per_s = strtod(PQgetvalue(res, 0, 0), NULL);
    out->p50_ms = strtod(PQgetvalue(res, 0, 1), NULL);
    out->p99_ms = strtod(PQgetvalue(res, 0, 2), NULL);
    out->settled_total = strtoull(PQgetvalue(res, 0, 3), NULL, 10);
    out->ledger_sum = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    PQclear(res);
    if (!fn)
        return QR_OK;
    res = PQexecParams(self->conn,
                       "SELECT operator, jobs, earned FROM v_operator_earnings ORDER BY operator",
                       0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        s_pgerr(self, res, "dash", err, errlen);
        PQclear(res);
        return QR_EDB;
    }
    for (int r = 0; r < PQntuples(res); r++)
        fn(arg, PQgetvalue(res, r, 0), strtoull(PQgetvalue(res, r, 1), NULL, 10),
           strtoll(PQgetvalue(res, r, 2), NULL, 10));
    PQclear(res);
    return QR_OK;
}

/* ---- queueing ------------------------------------------------------------------------------- */

void qr_db_add_account(qr_db_t *self, uint64_t id, const char *name, int kind)
{
    static const char *const kinds[] = {"client", "operator", "system"};
    s_buf_t *b = s_row(self, S_ACCOUNTS, 3);
    s_f_i64(self, b, id);
    s_f_text(self, b, name);
    /* an unknown kind is sent as such and refused by the CHECK constraint */
    s_f_text(self, b, kind >= 0 && kind <= 2 ? kinds[kind] : "unknown");
}

void qr_db_add_worker(qr_db_t *self, uint64_t id, const char *name, uint64_t operator_id,
                      const char *devices_json, const char *runtimes, uint64_t ask_price,
                      uint32_t slots)
{
    if (self->oom)
        return;
    if (!s_grow((void **)&self->workers, &self->cap_workers, self->n_workers + 1,
                sizeof *self->workers)) {
        self->oom = true;
        return;
    }
    s_worker_t *w = &self->workers[self->n_workers];
    w->id = id;
    w->operator_id = operator_id;
    w->ask_price = ask_price;
    w->slots = slots;
    w->name = strdup(name ? name : "");
    w->devices = strdup(devices_json && *devices_json ? devices_json : "[]");
    w->runtimes = strdup(runtimes ? runtimes : "");
    self->n_workers++; /* counted even on failure so s_clear frees what was got */
    if (!w->name || !w->devices || !w->runtimes)
        self->oom = true;
}

void qr_db_worker_state(qr_db_t *self, uint64_t id, const char *state, int32_t reputation,
                        uint64_t jobs_done)
{
    if (self->oom)
        return;
    if (!s_grow((void **)&self->wstate, &self->cap_wstate, self->n_wstate + 1,
                sizeof *self->wstate)) {
        self->oom = true;
        return;
    }
    s_wstate_t *s = &self->wstate[self->n_wstate++];
    s->id = id;
    s->seq = self->seq++;
    s_copystr(s->state, sizeof s->state, state ? state : "", state ? strlen(state) : 0);
    s->reputation = reputation;
    s->jobs_done = jobs_done;
}

void qr_db_add_job(qr_db_t *self, const qr_db_job_t *job)
{
    s_buf_t *b = s_row(self, S_JOBS, 24);
    s_f_i64(self, b, job->id);
    s_f_i64(self, b, job->client_id);
    s_f_textn(self, b, job->kind, sizeof job->kind);
    s_f_text(self, b, qr_job_state_name(job->state));
    s_f_i32(self, b, job->m);
    s_f_i32(self, b, job->n);
    s_f_i32(self, b, job->k);
    s_f_i64(self, b, job->max_price);
    s_f_bool(self, b, job->need_gpu);
    s_f_i64(self, b, job->min_mem_mb);
    s_f_i32(self, b, (uint32_t)job->priority);
    s_f_i32(self, b, job->max_attempts);
    s_f_i32(self, b, job->attempts);
    if (job->deadline_ms)
        s_f_ts(self, b, job->deadline_ms);
    else
        s_f_null(self, b);
    s_f_id(self, b, job->worker_id);
    s_f_i64(self, b, job->units);
    s_f_i64(self, b, job->price);
    s_f_i64(self, b, job->fee);
    s_f_textn(self, b, job->detail, sizeof job->detail);
    if (job->idem_key[0])
        s_f_textn(self, b, job->idem_key, sizeof job->idem_key);
    else
        s_f_null(self, b);
    s_f_i64(self, b, job->input_blob);
    s_f_ts(self, b, job->created_ms);
    s_f_ts(self, b, job->updated_ms ? job->updated_ms : job->created_ms);
    if (job->model[0])
        s_f_textn(self, b, job->model, sizeof job->model);
    else
        s_f_null(self, b);
}

void qr_db_job_update(qr_db_t *self, const qr_db_job_t *job)
{
    if (self->oom)
        return;
    if (!s_grow((void **)&self->upd, &self->cap_upd, self->n_upd + 1, sizeof *self->upd)) {
        self->oom = true;
        return;
    }
    s_jobupd_t *u = &self->upd[self->n_upd++];
    u->id = job->id;
    u->seq = self->seq++;
    u->state = job->state;
    u->worker_id = job->worker_id;
    u->attempts = job->attempts;
    u->units = job->units;
    u->price = job->price;
    u->fee = job->fee;
    u->updated_ms = job->updated_ms;
    u->result_blob = job->result_blob;
    s_copystr(u->detail, sizeof u->detail, job->detail, strnlen(job->detail, sizeof job->detail));
}

void qr_db_add_event(qr_db_t *self, uint64_t job_id, int state, uint64_t worker_id,
                     const char *detail, int64_t wall_ms)
{
    s_buf_t *b = s_row(self, S_EVENTS, 5);
    s_f_i64(self, b, job_id);
    s_f_text(self, b, qr_job_state_name(state));
    s_f_id(self, b, worker_id);
    s_f_text(self, b, detail);
    s_f_ts(self, b, wall_ms);
}

void qr_db_add_ledger(qr_db_t *self, uint64_t txn_id, uint64_t account_id, int bucket,
                      uint64_t job_id, const char *kind, int64_t amount, int64_t wall_ms)
{
    if (self->oom)
        return;
    if (!s_grow((void **)&self->entries, &self->cap_entries, self->n_entries + 1,
                sizeof *self->entries)) {
        self->oom = true;
        return;
    }
    self->entries[self->n_entries++] = (s_entry_t){txn_id, account_id, bucket, amount};
    s_buf_t *b = s_row(self, S_LEDGER, 7);
    s_f_i64(self, b, txn_id);
    s_f_i64(self, b, account_id);
    s_f_text(self, b, bucket == QR_BUCKET_RESERVED ? "reserved" : "available");
    s_f_id(self, b, job_id);
    s_f_text(self, b, kind);
    s_f_i64(self, b, (uint64_t)amount);
    s_f_ts(self, b, wall_ms);
}

void qr_db_add_settlement(qr_db_t *self, uint64_t job_id, uint64_t worker_id,
                          uint64_t operator_id, uint64_t client_id, uint64_t units,
                          uint64_t price, uint64_t fee, int64_t wall_ms)
{
    s_buf_t *b = s_row(self, S_SETTLEMENTS, 8);
    s_f_i64(self, b, job_id);
    s_f_i64(self, b, worker_id);
    s_f_i64(self, b, operator_id);
    s_f_i64(self, b, client_id);
    s_f_i64(self, b, units);
    s_f_i64(self, b, price);
    s_f_i64(self, b, fee);
    s_f_ts(self, b, wall_ms);
}

void qr_db_add_blob(qr_db_t *self, uint64_t id, const void *data, size_t len)
{
    s_buf_t *b = s_row(self, S_BLOBS, 2);
    s_f_i64(self, b, id);
    s_f_bytes(self, b, data, data ? len : 0);
}

int qr_db_lead(qr_db_t *self, const char *holder, bool *got, uint64_t *epoch, char *err,
               size_t errlen)
{
    *got = false;
    *epoch = 0;
    if (!s_alive(self, err, errlen))
        return QR_EDB;
    PGresult *res = PQexecParams(self->conn,
                                 "SELECT pg_try_advisory_lock(hashtext('quarry-broker-leader'))",
                                 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        s_pgerr(self, res, "leader lock", err, errlen);
        PQclear(res);
        return QR_EDB;
    }
    bool locked = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!locked)
        return QR_OK;
    const char *params[1] = {holder ? holder : ""};
    res = PQexecParams(self->conn,
                       "UPDATE broker_leader SET epoch = epoch + 1, holder = $1, since = now()"
                       " WHERE id = 1 RETURNING epoch",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        s_pgerr(self, res, "leader epoch", err, errlen);
        PQclear(res);
        return QR_EDB;
    }
    *epoch = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    *got = true;
    return QR_OK;
}

void qr_db_fence(qr_db_t *self, uint64_t epoch)
{
    self->fence = epoch;
}

void qr_db_discard(qr_db_t *self)
{
    s_clear(self);
}

size_t qr_db_pending(const qr_db_t *self)
{
    size_t n = self->n_upd + self->n_workers + self->n_wstate + self->n_keyops;
    for (int t = 0; t < S_NCOPY; t++)
        n += self->copy[t].rows;
    return n;
}

/* ---- commit ----------------------------------------------------------------------- */

static int s_cmp_entry_txn(const void *a, const void *b)
{
    const s_entry_t *x = a, *y = b;
    return (x->txn_id > y->txn_id) - (x->txn_id < y->txn_id);
}

static int s_cmp_entry_acct(const void *a, const void *b)
{
    const s_entry_t *x = a, *y = b;
    return (x->account_id > y->account_id) - (x->account_id < y->account_id);
}

static int s_cmp_upd(const void *a, const void *b)
{
    const s_jobupd_t *x = a, *y = b;
    if (x->id != y->id)
        return (x->id > y->id) - (x->id < y->id);
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* qsort that accepts an empty (NULL) array, which qsort itself does not. */
static void s_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

static int s_cmp_wstate(const void *a, const void *b)
{
    const s_wstate_t *x = a, *y = b;
    if (x->id != y->id)
        return (x->id > y->id) - (x->id < y->id);
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Invariant 2: each txn_id's entries sum to zero (overflow counts as not). */
static bool s_ledger_balanced(qr_db_t *self, uint64_t *bad_txn)
{
    s_sort(self->entries, self->n_entries, sizeof *self->entries, s_cmp_entry_txn);
    for (size_t i = 0; i < self->n_entries;) {
        size_t j = i;
        int64_t sum = 0;
        bool over = false;
        for (; j < self->n_entries && self->entries[j].txn_id == self->entries[i].txn_id; j++)
            over |= __builtin_add_overflow(sum, self->entries[j].amount, &sum);
        if (over || sum != 0) {
            *bad_txn = self->entries[i].txn_id;
            return false;
        }
        i = j;
    }
    return true;
}

/* Sends table t's COPY stream.  Returns QR_OK or QR_EDB. */
/* Sends one COPY's data: the stream's header, the rows in [from, to) of
 * table t's buffer, the trailer, then the end of the copy.  The server has
 * answered the statement with CopyInResponse.  QR_OK or QR_EDB. */
static int s_copy_rows(qr_db_t *self, int t, size_t from, size_t to, char *err, size_t errlen)
{
    s_copy_t *c = &self->copy[t];
    static const uint8_t trailer[2] = {0xff, 0xff}; /* int16 -1 */
    const char *abort_msg = NULL;
    if (PQputCopyData(self->conn, (const char *)c->buf.p, S_COPY_HEADER) != 1)
        abort_msg = "client failed sending COPY data";
    for (size_t off = from; !abort_msg && off < to;) {
        size_t n = to - off < S_COPY_CHUNK ? to - off : S_COPY_CHUNK;
        if (PQputCopyData(self->conn, (const char *)c->buf.p + off, (int)n) != 1)
            abort_msg = "client failed sending COPY data";
        off += n;
    }
    if (!abort_msg && PQputCopyData(self->conn, (const char *)trailer, sizeof trailer) != 1)
        abort_msg = "client failed sending COPY data";
    if (PQputCopyEnd(self->conn, abort_msg) != 1 || abort_msg) {
        s_pgerr(self, NULL, "copy", err, errlen);
        return QR_EDB;
    }
    return QR_OK;
}

/* Table t's rows as COPY statements of S_COPY_ROWS rows, all sent in one
 * simple query: the server answers each statement's end with the next
 * one's CopyInResponse, so a statement costs one round trip, not two. */
static int s_send_copy(qr_db_t *self, int t, char *err, size_t errlen)
{
    s_copy_t *c = &self->copy[t];
    if (self->oom) {
        s_seterr(err, errlen, "database: out of memory encoding rows");
        return QR_EDB;
    }
    const size_t *cut = (const size_t *)c->cuts.p;
    size_t ncut = c->cuts.len / sizeof *cut, sqllen = strlen(s_copy_sql[t]);
    char *sql = malloc((ncut + 1) * (sqllen + 2) + 1);
    if (!sql) {
        s_seterr(err, errlen, "database: out of memory encoding rows");
        return QR_EDB;
    }
    char *p = sql;
    for (size_t i = 0; i <= ncut; i++) {
        memcpy(p, s_copy_sql[t], sqllen);
        p += sqllen;
        *p++ = ';';
    }
    *p = '\0';
    int rc = PQsendQuery(self->conn, sql) == 1 ? QR_OK : QR_EDB;
    free(sql);
    if (rc != QR_OK) {
        s_pgerr(self, NULL, "copy", err, errlen);
        return rc;
    }
    size_t from = S_COPY_HEADER, sent = 0;
    PGresult *res;
    /* Every result until the query ends: a COPY_IN for each statement (its
     * rows go then), a COMMAND_OK after each, or the error that ends them. */
    while ((res = PQgetResult(self->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COPY_IN && rc == QR_OK && sent <= ncut) {
            size_t to = sent < ncut ? cut[sent] : c->buf.len;
            rc = s_copy_rows(self, t, from, to, err, errlen);
            from = to;
            sent++;
        } else if (st == PGRES_COPY_IN) {
            PQputCopyEnd(self->conn, "client gave up the batch"); /* after an error */
        } else if (st != PGRES_COMMAND_OK && rc == QR_OK) {
            s_pgerr(self, res, "copy", err, errlen);
            rc = QR_EDB;
        }
        PQclear(res);
    }
    if (rc == QR_OK && sent != ncut + 1) {
        s_seterr(err, errlen, "copy: the server took %zu of %zu statements", sent, ncut + 1);
        rc = QR_EDB;
    }
    return rc;
}

void qr_db_set_key(qr_db_t *self, const char *key, uint64_t account_id, const char *role)
{
    if (!s_grow((void **)&self->keyops, &self->cap_keyops, self->n_keyops + 1,
                sizeof *self->keyops)) {
        self->oom = true;
        return;
    }
    struct s_keyop *k = &self->keyops[self->n_keyops++];
    snprintf(k->key, sizeof k->key, "%s", key);
    k->account_id = account_id;
    snprintf(k->role, sizeof k->role, "%s", role ? role : "");
}

static int s_apply_keyops(qr_db_t *self, char *err, size_t errlen)
{
    for (size_t i = 0; i < self->n_keyops; i++) {
        const struct s_keyop *k = &self->keyops[i];
        char acct[24];
        snprintf(acct, sizeof acct, "%llu", (unsigned long long)k->account_id);
        const char *params[3] = {k->key, acct, k->role};
        int rc = k->role[0]
                     ? s_cmd(self,
                             "INSERT INTO curve_keys (key, account_id, role) VALUES ($1, $2, $3)"
                             " ON CONFLICT (key) DO UPDATE SET account_id = excluded.account_id,"
                             " role = excluded.role",
                             3, params, NULL, err, errlen)
                     : s_cmd(self, "DELETE FROM curve_keys WHERE key = $1", 1, params, NULL, err,
                             errlen);
        if (rc != QR_OK)
            return rc;
    }
    return QR_OK;
}

typedef struct {
    void (*fn)(void *arg, const char *key, uint64_t account_id, const char *role);
    void *arg;
} s_key_ctx_t;

static bool s_key_row(void *ctx, const PGresult *res, int r)
{
    s_key_ctx_t *c = ctx;
    char key[64], role[16];
    s_get_text(res, r, 0, key, sizeof key);
    s_get_text(res, r, 2, role, sizeof role);
    c->fn(c->arg, key, (uint64_t)s_get_i64(res, r, 1), role);
    return true;
}

int qr_db_load_keys(qr_db_t *self,
                    void (*fn)(void *arg, const char *key, uint64_t account_id, const char *role),
                    void *arg, char *err, size_t errlen)
{
    s_key_ctx_t ctx = {fn, arg};
    return s_stream(self, "SELECT key, account_id, role FROM curve_keys ORDER BY key", 0, NULL,
                    s_key_row, &ctx, err, errlen);
}

static int s_upsert_workers(qr_db_t *self, char *err, size_t errlen)
{
    for (size_t i = 0; i < self->n_workers; i++) {
        const s_worker_t *w = &self->workers[i];
        char id[24], op[24], ask[24], slots[16];
        snprintf(id, sizeof id, "%llu", (unsigned long long)w->id);
        snprintf(op, sizeof op, "%llu", (unsigned long long)w->operator_id);
        snprintf(ask, sizeof ask, "%llu", (unsigned long long)w->ask_price);
        snprintf(slots, sizeof slots, "%u", w->slots);
        const char *params[7] = {id, w->name, op, w->devices, w->runtimes, ask, slots};
        int rc = s_cmd(self,
                       "INSERT INTO workers (id, name, operator_id, devices, runtimes, ask_price,"
                       " slots, last_seen) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, now())"
                       " ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
                       " operator_id = excluded.operator_id, devices = excluded.devices,"
                       " runtimes = excluded.runtimes, ask_price = excluded.ask_price,"
                       " slots = excluded.slots, last_seen = excluded.last_seen",
                       7, params, NULL, err, errlen);
        if (rc != QR_OK)
            return rc;
    }
    return QR_OK;
}

static int s_update_jobs(qr_db_t *self, char *err, size_t errlen)
{
    enum { ID, STATE, WORKER, ATTEMPTS, UNITS, PRICE, FEE, DETAIL, MS, RESULT, NARR };
    s_buf_t arr[NARR];
    int rc = QR_EDB;
    size_t rows = 0;
    memset(arr, 0, sizeof arr);
    s_sort(self->upd, self->n_upd, sizeof *self->upd, s_cmp_upd);
    for (size_t i = 0; i < self->n_upd; i++) {
        const s_jobupd_t *u = &self->upd[i];
        if (i + 1 < self->n_upd && self->upd[i + 1].id == u->id)
            continue; /* a later update of the same job wins */
        s_arr_u64(self, &arr[ID], u->id);
        s_arr_text(self, &arr[STATE], qr_job_state_name(u->state));
        s_arr_id(self, &arr[WORKER], u->worker_id);
        s_arr_u64(self, &arr[ATTEMPTS], u->attempts);
        s_arr_u64(self, &arr[UNITS], u->units);
        s_arr_u64(self, &arr[PRICE], u->price);
        s_arr_u64(self, &arr[FEE], u->fee);
        s_arr_text(self, &arr[DETAIL], u->detail);
        s_arr_i64(self, &arr[MS], u->updated_ms);
        s_arr_id(self, &arr[RESULT], u->result_blob);
        rows++;
    }
    const char *params[NARR];
    for (int a = 0; a < NARR; a++) {
        s_arr_end(self, &arr[a]);
        params[a] = (const char *)arr[a].p;
    }
    if (self->oom) {
        s_seterr(err, errlen, "database: out of memory encoding job updates");
        goto fail;
    }
    uint64_t affected = 0;
    if (s_cmd(self,
              "UPDATE jobs j SET state = u.state, worker_id = u.worker_id,"
              " attempts = u.attempts, units = u.units, price = u.price, fee = u.fee,"
              " detail = u.detail, updated_at = " S_TS(
                  "u.ms") ","
                          " result_blob = coalesce(u.result, j.result_blob)"
                          " FROM unnest($1::int8[], $2::text[], $3::int8[], $4::int4[], $5::int8[],"
                          " $6::int8[], $7::int8[], $8::text[], $9::int8[], $10::int8[])"
                          " AS u(id, state, worker_id, attempts, units, price, fee, detail, ms, "
                          "result)"
                          " WHERE j.id = u.id AND j.id = ANY($1::int8[])",
              NARR, params, &affected, err, errlen) != QR_OK)
        goto fail;
    if (affected != rows) {
        s_seterr(err, errlen, "job update: %llu of %zu jobs do not exist",
                 (unsigned long long)(rows - affected), rows);
        goto fail;
    }
    rc = QR_OK;
fail:
    for (int a = 0; a < NARR; a++)
        free(arr[a].p);
    return rc;
}

static int s_update_wstate(qr_db_t *self, char *err, size_t errlen)
{
    enum { ID, STATE, REP, DONE, NARR };
    s_buf_t arr[NARR];
    int rc = QR_EDB;
    memset(arr, 0, sizeof arr);
    s_sort(self->wstate, self->n_wstate, sizeof *self->wstate, s_cmp_wstate);
    for (size_t i = 0; i < self->n_wstate; i++) {
        const s_wstate_t *s = &self->wstate[i];
        if (i + 1 < self->n_wstate && self->wstate[i + 1].id == s->id)
            continue;
        s_arr_u64(self, &arr[ID], s->id);
        s_arr_text(self, &arr[STATE], s->state);
        s_arr_i64(self, &arr[REP], s->reputation);
        s_arr_u64(self, &arr[DONE], s->jobs_done);
    }
    const char *params[NARR];
    for (int a = 0; a < NARR; a++) {
        s_arr_end(self, &arr[a]);
        params[a] = (const char *)arr[a].p;
    }
    if (self->oom) {
        s_seterr(err, errlen, "database: out of memory encoding worker states");
        goto fail;
    }
    rc = s_cmd(self,
               "UPDATE workers w SET state = u.state, reputation = u.rep, jobs_done = u.done,"
               " last_seen = now()"
               " FROM unnest($1::int8[], $2::text[], $3::int4[], $4::int8[])"
               " AS u(id, state, rep, done) WHERE w.id = u.id AND w.id = ANY($1::int8[])",
               NARR, params, NULL, err, errlen);
fail:
    for (int a = 0; a < NARR; a++)
        free(arr[a].p);
    return rc;
}

/* Invariant 3: one UPDATE moves each touched account by its entries' sums.
 * Its row count doubles as the existence check of every account named (the
 * ledger carries no per-row foreign key, see 001_core.sql). */
static int s_update_balances(qr_db_t *self, char *err, size_t errlen)
{
    s_buf_t ids = {0}, av = {0}, rs = {0};
    int rc = QR_EDB;
    size_t accounts = 0;
    s_sort(self->entries, self->n_entries, sizeof *self->entries, s_cmp_entry_acct);
    for (size_t i = 0; i < self->n_entries;) {
        int64_t sum[2] = {0, 0};
        bool over = false;
        size_t j = i;
        for (; j < self->n_entries && self->entries[j].account_id == self->entries[i].account_id;
             j++) {
            int bkt = self->entries[j].bucket == QR_BUCKET_RESERVED;
            over |= __builtin_add_overflow(sum[bkt], self->entries[j].amount, &sum[bkt]);
        }
        if (over) {
            s_seterr(err, errlen, "ledger: balance change of account %llu overflows",
                     (unsigned long long)self->entries[i].account_id);
            goto fail;
        }
        s_arr_u64(self, &ids, self->entries[i].account_id);
        s_arr_i64(self, &av, sum[0]);
        s_arr_i64(self, &rs, sum[1]);
        accounts++;
        i = j;
    }
    s_arr_end(self, &ids);
    s_arr_end(self, &av);
    s_arr_end(self, &rs);
    if (self->oom) {
        s_seterr(err, errlen, "database: out of memory encoding balances");
        goto fail;
    }
    const char *params[3] = {(const char *)ids.p, (const char *)av.p, (const char *)rs.p};
    uint64_t affected = 0;
    if (s_cmd(self,
              "UPDATE accounts a SET available = a.available + d.av, reserved = a.reserved + d.rs"
              " FROM unnest($1::int8[], $2::int8[], $3::int8[]) AS d(id, av, rs)"
              " WHERE a.id = d.id AND a.id = ANY($1::int8[])",
              3, params, &affected, err, errlen) != QR_OK)
        goto fail;
    if (affected != accounts) {
        s_seterr(err, errlen, "ledger: entries for %llu unknown accounts",
                 (unsigned long long)(accounts - affected));
        goto fail;
    }
    rc = QR_OK;
fail:
    free(ids.p);
    free(av.p);
    free(rs.p);
    return rc;
}

int qr_db_commit(qr_db_t *self, char *err, size_t errlen)
{
    int rc = QR_EDB;
    bool begun = false;
    if (qr_db_pending(self) == 0 && !self->oom)
        return QR_OK;
    if (self->oom) {
        s_seterr(err, errlen, "database: out of memory queuing rows; batch dropped");
        goto fail;
    }
    uint64_t bad_txn = 0;
    if (!s_ledger_balanced(self, &bad_txn)) {
        s_seterr(err, errlen, "ledger transaction %llu does not sum to zero",
                 (unsigned long long)bad_txn);
        rc = QR_EINVAL;
        goto fail;
    }
    if (!s_alive(self, err, errlen))
        goto fail;
    /* BEGIN and the leader fence go as one simple query: one round trip
     * (the fence's row count comes with the last result) */
    char begin[128] = "BEGIN";
    if (self->fence)
        snprintf(begin, sizeof begin,
                 "BEGIN; UPDATE broker_leader SET since = since WHERE id = 1 AND epoch = %llu",
                 (unsigned long long)self->fence);
    begun = true; /* the failure path rolls back whatever got started */
    PGresult *res = PQexec(self->conn, begin);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        s_pgerr(self, res, "database", err, errlen);
        PQclear(res);
        goto fail;
    }
    bool fenced = self->fence && strtoull(PQcmdTuples(res), NULL, 10) != 1;
    PQclear(res);
    if (fenced) {
        s_seterr(err, errlen, "fenced: another broker became active (epoch moved past %llu)",
                 (unsigned long long)self->fence);
        rc = QR_EPERM;
        goto fail;
    }
    if (self->copy[S_ACCOUNTS].rows && s_send_copy(self, S_ACCOUNTS, err, errlen) != QR_OK)
        goto fail;
    if (self->copy[S_BLOBS].rows && s_send_copy(self, S_BLOBS, err, errlen) != QR_OK)
        goto fail;
    if (s_upsert_workers(self, err, errlen) != QR_OK)
        goto fail;
    if (s_apply_keyops(self, err, errlen) != QR_OK)
        goto fail;
    if (self->copy[S_JOBS].rows && s_send_copy(self, S_JOBS, err, errlen) != QR_OK)
        goto fail;
    if (self->n_upd && s_update_jobs(self, err, errlen) != QR_OK)
        goto fail;
    if (self->n_wstate && s_update_wstate(self, err, errlen) != QR_OK)
        goto fail;
    for (int t = S_EVENTS; t < S_NCOPY; t++)
        if (self->copy[t].rows && s_send_copy(self, t, err, errlen) != QR_OK)
            goto fail;
    if (self->n_entries && s_update_balances(self, err, errlen) != QR_OK)
        goto fail;
    if (s_cmd(self, "COMMIT", 0, NULL, NULL, err, errlen) != QR_OK) {
        begun = false; /* a failed COMMIT ends the transaction anyway */
        goto fail;
    }
    s_clear(self);
    return QR_OK;
fail:
    if (begun && self->conn && PQstatus(self->conn) == CONNECTION_OK &&
        PQtransactionStatus(self->conn) != PQTRANS_IDLE)
        PQclear(PQexec(self->conn, "ROLLBACK"));
    s_clear(self);
    return rc;
}
