/* The baseline bench/core.sh compares Quarry with: the usual PostgreSQL job
 * queue, where clients INSERT jobs and workers claim them with
 * SELECT ... FOR UPDATE SKIP LOCKED, compute, store the result and commit,
 * one job per transaction (the pattern of pg-boss, graphile-worker, Que,
 * solid_queue and most hand-written queues).
 *
 *   pgqueue_bench CONNINFO JOBS DIM shared|unique [CLIENTS=2] [WORKERS=2] [CLAIM=1]
 *
 * CLIENTS threads insert JOBS jobs between them, each job its own
 * transaction, as fast as commits allow.  With "unique" each job row holds
 * a fresh DIM x DIM A and B (fp32); with "shared" the matrices are stored
 * once and every job row names them (workers keep the one they read), as
 * Quarry's shared-input run deduplicates them.  WORKERS threads each loop:
 * claim up to CLAIM queued jobs with SKIP LOCKED, C = A * B with OpenBLAS,
 * UPDATE the rows with C and done_at, COMMIT; an empty claim waits 1 ms.
 * Every commit is durable (the cluster's fsync and synchronous_commit, as
 * for Quarry).  The queue does less than Quarry does per job: no
 * verification, no ledger, no events, no matching.
 *
 * Jobs/s is JOBS over first insert to last completion; latency is each job's
 * done_at - created_at (both clock_timestamp() on the server).  The last
 * line reads: jobs_per_s=N p50_ms=X p99_ms=Y. */
#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

static const char *s_conninfo;
static long s_jobs, s_claim;
static bool s_shared;
static uint32_t s_dim;
static atomic_long s_next;     /* next job a client inserts */
static atomic_long s_finished; /* jobs completed by workers */
static atomic_int s_failed;

static PGconn *s_connect(void)
{
    PGconn *c = PQconnectdb(s_conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pgqueue_bench: connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

static bool s_ok(PGconn *c, PGresult *res, const char *what)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return true;
    fprintf(stderr, "pgqueue_bench: %s: %s", what, PQerrorMessage(c));
    atomic_store(&s_failed, 1);
    return false;
}

static bool s_exec(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    bool ok = s_ok(c, res, sql);
    PQclear(res);
    return ok;
}

static void *s_client(void *arg)
{
    (void)arg;
    PGconn *c = s_connect();
    if (!c) {
        atomic_store(&s_failed, 1);
        return NULL;
    }
    size_t n = (size_t)s_dim * s_dim, bytes = n * sizeof(float);
    float *a = malloc(bytes), *b = malloc(bytes);
    unsigned seed = (unsigned)(uintptr_t)&seed;
    for (long j; !atomic_load(&s_failed) && (j = atomic_fetch_add(&s_next, 1)) < s_jobs;) {
        for (size_t i = 0; !s_shared && i < n; i++) {
            a[i] = (float)rand_r(&seed) / (float)RAND_MAX - 0.5f;
            b[i] = (float)rand_r(&seed) / (float)RAND_MAX - 0.5f;
        }
        const char *vals[2] = {(const char *)a, (const char *)b};
        int lens[2] = {(int)bytes, (int)bytes}, fmts[2] = {1, 1};
        PGresult *res = s_shared ? PQexec(c, "INSERT INTO pgq_jobs (input_id) VALUES (1)")
                                 : PQexecParams(c, "INSERT INTO pgq_jobs (a, b) VALUES ($1, $2)", 2,
                                                NULL, vals, lens, fmts, 0);
        bool ok = s_ok(c, res, "insert");
        PQclear(res);
        if (!ok)
            break;
    }
    free(a);
    free(b);
    PQfinish(c);
    return NULL;
}

static void *s_worker(void *arg)
{
    (void)arg;
    PGconn *c = s_connect();
    if (!c) {
        atomic_store(&s_failed, 1);
        return NULL;
    }
    size_t n = (size_t)s_dim * s_dim, bytes = n * sizeof(float);
    float *cm = malloc(bytes), *held = NULL; /* shared: the inputs, read once */
    char claim[256];
    snprintf(claim, sizeof claim,
             "SELECT id, a, b, input_id FROM pgq_jobs WHERE state = 'queued' ORDER BY id"
             " LIMIT %ld FOR UPDATE SKIP LOCKED",
             s_claim);
    while (!atomic_load(&s_failed) && atomic_load(&s_finished) < s_jobs) {
        if (!s_exec(c, "BEGIN"))
            break;
        PGresult *res = PQexecParams(c, claim, 0, NULL, NULL, NULL, NULL, 1);
        if (!s_ok(c, res, "claim")) {
            PQclear(res);
            break;
        }
        int rows = PQntuples(res);
        bool ok = true;
        if (rows && s_shared && !held) {
            PGresult *in = PQexecParams(c, "SELECT a || b FROM pgq_inputs WHERE id = 1", 0, NULL,
                                        NULL, NULL, NULL, 1);
            if (s_ok(c, in, "input") && PQntuples(in) == 1 &&
                PQgetlength(in, 0, 0) == (int)(2 * bytes) && (held = malloc(2 * bytes)))
                memcpy(held, PQgetvalue(in, 0, 0), 2 * bytes);
            PQclear(in);
        }
        for (int r = 0; r < rows && ok; r++) {
            float *a = held, *b = held ? held + n : NULL;
            if (!s_shared && PQgetlength(res, r, 1) == (int)bytes &&
                PQgetlength(res, r, 2) == (int)bytes) {
                a = (float *)(void *)PQgetvalue(res, r, 1);
                b = (float *)(void *)PQgetvalue(res, r, 2);
            }
            if (!a || (!s_shared && a == held)) {
                fprintf(stderr, "pgqueue_bench: job without its inputs\n");
                atomic_store(&s_failed, 1);
                ok = false;
                break;
            }
            uint64_t id_be;
            memcpy(&id_be, PQgetvalue(res, r, 0), sizeof id_be);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s_dim, (int)s_dim,
                        (int)s_dim, 1.0f, a, (int)s_dim, b, (int)s_dim, 0.0f, cm, (int)s_dim);
            const char *vals[2] = {(const char *)&id_be, (const char *)cm};
            int lens[2] = {8, (int)bytes}, fmts[2] = {1, 1};
            PGresult *u = PQexecParams(c,
                                       "UPDATE pgq_jobs SET state = 'done', c = $2,"
                                       " done_at = clock_timestamp() WHERE id = $1",
                                       2, NULL, vals, lens, fmts, 0);
            ok = s_ok(c, u, "update");
            PQclear(u);
        }
        PQclear(res);
        if (!ok || !s_exec(c, "COMMIT"))
            break;
        if (rows == 0) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        } else {
            atomic_fetch_add(&s_finished, rows);
        }
    }
    free(cm);
    free(held);
    PQfinish(c);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 8 || (strcmp(argv[4], "shared") && strcmp(argv[4], "unique"))) {
        fprintf(stderr, "usage: pgqueue_bench CONNINFO JOBS DIM shared|unique [CLIENTS=2]"
                        " [WORKERS=2] [CLAIM=1]\n");
        return 2;
    }
    s_conninfo = argv[1];
    s_jobs = atol(argv[2]);
    long dim = atol(argv[3]);
    s_shared = strcmp(argv[4], "shared") == 0;
    long clients = argc > 5 ? atol(argv[5]) : 2, workers = argc > 6 ? atol(argv[6]) : 2;
    s_claim = argc > 7 ? atol(argv[7]) : 1;
    if (s_jobs < 1 || dim < 1 || dim > 4096 || clients < 1 || clients > 64 || workers < 1 ||
        workers > 64 || s_claim < 1 || s_claim > 1000) {
        fprintf(stderr, "pgqueue_bench: bad numbers\n");
        return 2;
    }
    s_dim = (uint32_t)dim;
    PGconn *c = s_connect();
    if (!c)
        return 1;
    if (!s_exec(c, "SET client_min_messages = warning") ||
        !s_exec(c, "DROP TABLE IF EXISTS pgq_jobs, pgq_inputs") ||
        !s_exec(c, "CREATE TABLE pgq_inputs (id bigint PRIMARY KEY, a bytea NOT NULL,"
                   " b bytea NOT NULL)") ||
        !s_exec(c, "CREATE TABLE pgq_jobs (id bigserial PRIMARY KEY,"
                   " state text NOT NULL DEFAULT 'queued', input_id bigint, a bytea, b bytea,"
                   " c bytea, created_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
                   " done_at timestamptz)") ||
        !s_exec(c, "ALTER TABLE pgq_jobs ALTER COLUMN a SET STORAGE EXTERNAL,"
                   " ALTER COLUMN b SET STORAGE EXTERNAL, ALTER COLUMN c SET STORAGE EXTERNAL") ||
        !s_exec(c, "CREATE INDEX pgq_jobs_queued ON pgq_jobs (id) WHERE state = 'queued'"))
        return 1;
    if (s_shared) {
        size_t n = (size_t)s_dim * s_dim, bytes = n * sizeof(float);
        float *m = malloc(2 * bytes);
        unsigned seed = 1;
        for (size_t i = 0; i < 2 * n; i++)
            m[i] = (float)rand_r(&seed) / (float)RAND_MAX - 0.5f;
        const char *vals[2] = {(const char *)m, (const char *)(m + n)};
        int lens[2] = {(int)bytes, (int)bytes}, fmts[2] = {1, 1};
        PGresult *res = PQexecParams(c, "INSERT INTO pgq_inputs VALUES (1, $1, $2)", 2, NULL, vals,
                                     lens, fmts, 0);
        bool ok = s_ok(c, res, "inputs");
        PQclear(res);
        free(m);
        if (!ok)
            return 1;
    }
    pthread_t th[128];
    int nth = 0;
    for (long i = 0; i < workers; i++)
        pthread_create(&th[nth++], NULL, s_worker, NULL);
    for (long i = 0; i < clients; i++)
        pthread_create(&th[nth++], NULL, s_client, NULL);
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    if (atomic_load(&s_failed))
        return 1;
    PGresult *res = PQexec(c, "SELECT count(*) FILTER (WHERE state = 'done'),"
                              " extract(epoch FROM max(done_at) - min(created_at)),"
                              " 1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY"
                              "   extract(epoch FROM done_at - created_at)),"
                              " 1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY"
                              "   extract(epoch FROM done_at - created_at))"
                              " FROM pgq_jobs");
    if (!s_ok(c, res, "summary"))
        return 1;
    long done = atol(PQgetvalue(res, 0, 0));
    double secs = atof(PQgetvalue(res, 0, 1));
    double p50 = atof(PQgetvalue(res, 0, 2)), p99 = atof(PQgetvalue(res, 0, 3));
    PQclear(res);
    PQfinish(c);
    if (done != s_jobs || secs <= 0) {
        fprintf(stderr, "pgqueue_bench: %ld of %ld jobs done\n", done, s_jobs);
        return 1;
    }
    printf("pgqueue: jobs=%ld dim=%u inputs=%s clients=%ld workers=%ld claim=%ld seconds=%.3f\n",
           s_jobs, s_dim, s_shared ? "shared" : "unique", clients, workers, s_claim, secs);
    printf("jobs_per_s=%.0f p50_ms=%.2f p99_ms=%.2f\n", (double)s_jobs / secs, p50, p99);
    return 0;
}
