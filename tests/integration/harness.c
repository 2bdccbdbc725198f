/* Integration-test harness; see harness.h. */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

static const char *s_admin(void)
{
    const char *pg = getenv("QUARRY_TEST_PG");
    if (!pg) {
        fprintf(stderr, "QUARRY_TEST_PG is not set (run through ctest)\n");
        fail();
    }
    return pg;
}

static void s_exec_admin(const char *sql)
{
    PGconn *c = PQconnectdb(s_admin());
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "harness: %s\n", PQerrorMessage(c));
        PQfinish(c);
        fail();
    }
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "harness: %s: %s\n", sql, PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        fail();
    }
    PQclear(r);
    PQfinish(c);
}

void h_db_drop(const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    s_exec_admin(sql);
}

void h_db_create(const char *name, char *out, size_t outlen)
{
    h_db_drop(name);
    char sql[256];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    s_exec_admin(sql);
    /* same cluster, other database: swap the dbname in the admin conninfo */
    const char *admin = s_admin();
    const char *p = strstr(admin, "dbname=");
    assert_non_null(p);
    const char *end = strchr(p, ' ');
    snprintf(out, outlen, "%.*sdbname=%s%s", (int)(p - admin), admin, name, end ? end : "");
}

int64_t h_sql(const char *conninfo, const char *fmt, ...)
{
    char q[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "h_sql: %s\n", PQerrorMessage(c));
        PQfinish(c);
        fail();
    }
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1) {
        fprintf(stderr, "h_sql: %s: %s\n", q, PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        fail();
    }
    int64_t v = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

/* Children still running; killed when a failed assertion skips a test's
 * own clean-up, and at exit. */
static pid_t s_children[64];
static int s_nchildren;

void h_kill_all(void)
{
    for (int i = 0; i < s_nchildren; i++)
        if (s_children[i] > 0 && h_alive(s_children[i])) {
            kill(s_children[i], SIGKILL);
            waitpid(s_children[i], NULL, 0);
        }
    s_nchildren = 0;
}

pid_t h_spawn(const char *log, char *const argv[])
{
    static bool registered;
    if (!registered) {
        atexit(h_kill_all);
        registered = true;
    }
    mkdir("logs", 0755);
    char path[256];
    snprintf(path, sizeof path, "logs/%s.log", log);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (s_nchildren < 64)
        s_children[s_nchildren++] = pid;
    return pid;
}

bool h_alive(pid_t pid)
{
    int st;
    return waitpid(pid, &st, WNOHANG) == 0;
}

int h_stop(pid_t pid, int sig, int timeout_ms)
{
    int st = 0;
    if (pid <= 0)
        return -1; /* never kill(0) or kill(-1): that would hit the test runner */
    kill(pid, sig);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0)
            return -1;
        h_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return st;
}

#define S_MAXARGS 32

pid_t h_broker(const char *log, const char *db, int cport, int wport, ...)
{
    static char cep[64], wep[64], dbarg[512];
    snprintf(cep, sizeof cep, "--client-endpoint=tcp://127.0.0.1:%d", cport);
    snprintf(wep, sizeof wep, "--worker-endpoint=tcp://127.0.0.1:%d", wport);
    snprintf(dbarg, sizeof dbarg, "--db=%s", db);
    /* plain text: these tests are about the marketplace; it_security runs
     * its brokers with CURVE */
    /* an artifact store per broker port, so tests running side by side
     * never share one (a later --store-dir in the extra args wins) */
    static char store[64];
    snprintf(store, sizeof store, "--store-dir=stores/%d", cport);
    char *argv[S_MAXARGS] = {QR_BROKER_BIN, cep,         wep,         dbarg,
                             "--heartbeat-ms=200", "--liveness=3", "--insecure", store};
    int n = 8;
    va_list ap;
    va_start(ap, wport);
    for (char *a; n < S_MAXARGS - 1 && (a = va_arg(ap, char *));)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return h_spawn(log, argv);
}

pid_t h_worker(const char *log, int wport, const char *name, const char *op, int slots, int ask,
               ...)
{
    char ep[64], nm[128], o[128], sl[32], ak[32];
    snprintf(ep, sizeof ep, "--broker=tcp://127.0.0.1:%d", wport);
    snprintf(nm, sizeof nm, "--name=%s", name);
    snprintf(o, sizeof o, "--operator=%s", op);
    snprintf(sl, sizeof sl, "--slots=%d", slots);
    snprintf(ak, sizeof ak, "--ask-price=%d", ask);
    char cache[200];
    snprintf(cache, sizeof cache, "--cache-dir=caches/%d-%s", wport, name);
    char *argv[S_MAXARGS] = {QR_WORKER_BIN, ep, nm, o, sl, ak, cache};
    int n = 7;
    va_list ap;
    va_start(ap, ask);
    for (char *a; n < S_MAXARGS - 1 && (a = va_arg(ap, char *));)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return h_spawn(log, argv);
}

quarry_client_t *h_client(int cport, const char *account)
{
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", cport);
    quarry_client_t *c = NULL;
    for (int i = 0; i < 60; i++) {
        if (quarry_client_new(ep, account, 250, &c) == QUARRY_OK) {
            quarry_client_set_timeout(c, 20000);
            return c;
        }
        h_sleep_ms(250);
    }
    fprintf(stderr, "h_client: broker on port %d did not answer\n", cport);
    fail();
    return NULL;
}

void h_check_books(const char *db)
{
    assert_int_equal(h_sql(db, "SELECT coalesce(sum(amount),0) FROM ledger_entries"), 0);
    assert_int_equal(h_sql(db, "SELECT count(*) FROM (SELECT txn_id FROM ledger_entries "
                               "GROUP BY txn_id HAVING sum(amount) <> 0) t"), 0);
    assert_int_equal(h_sql(db, "SELECT count(*) - count(DISTINCT job_id) FROM settlements"), 0);
    assert_int_equal(h_sql(db, "SELECT count(*) FROM v_balances WHERE NOT consistent"), 0);
    assert_int_equal(h_sql(db, "SELECT jobs_without_client + jobs_without_input + dangling_results + "
                               "settlements_without_settled_job + entries_without_account "
                               "FROM v_integrity"), 0);
}

static int s_online(quarry_client_t *c)
{
    quarry_worker_info_t *ws = NULL;
    size_t n = 0;
    int online = 0;
    if (quarry_workers(c, &ws, &n) == QUARRY_OK)
        for (size_t k = 0; k < n; k++)
            online += strcmp(ws[k].state, "online") == 0;
    quarry_workers_free(&ws);
    return online;
}

void h_wait_online(quarry_client_t *c, int n)
{
    for (int i = 0; i < 150 && s_online(c) != n; i++)
        h_sleep_ms(100);
    assert_int_equal(s_online(c), n);
}

int h_http_get(int port, const char *path, char *buf, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    static char resp[1 << 20];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof resp - 1 && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    resp[got] = '\0';
    int status = -1;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    const char *body = strstr(resp, "\r\n\r\n");
    snprintf(buf, len, "%s", body ? body + 4 : "");
    return status;
}

double h_metric(const char *text, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, nl) == 0 && p[nl] == ' ')
            return strtod(p + nl + 1, NULL);
    fprintf(stderr, "h_metric: no sample %s\n", name);
    fail();
    return 0;
}

void h_random(float *p, size_t n, unsigned *seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)rand_r(seed) / ((float)RAND_MAX + 1.0f) * 2.0f - 1.0f;
}

void h_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

bool h_wait_state(quarry_client_t *c, uint64_t id, quarry_job_state_t want, int timeout_ms,
                  quarry_job_info_t *info)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if (quarry_job_status(c, id, info) == QUARRY_OK && info->state == want)
            return true;
        h_sleep_ms(50);
    }
    return false;
}
