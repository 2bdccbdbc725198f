/* Integration-test harness: real processes, real sockets, a real database.
 *
 * Each test program makes its own database on the suite's PostgreSQL cluster
 * (QUARRY_TEST_PG), starts quarry-broker and quarry-worker binaries as child
 * processes on its own ports, talks to them through libquarry, and checks the
 * books with SQL.  Logs of every child go to the build's tests/logs/. */
#ifndef QR_HARNESS_H
#define QR_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "quarry.h"

/* Creates (after dropping) database name on the test cluster and writes its
 * conninfo to out.  Fails the test on error. */
void h_db_create(const char *name, char *out, size_t outlen);
/* Drops database name (forcing other sessions off). */
void h_db_drop(const char *name);
/* One integer from a SQL query (first column of the first row); fails the
 * test when the query fails or returns nothing. */
int64_t h_sql(const char *conninfo, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Starts argv[0] with args, stdout and stderr appended to logs/<log>.log.
 * Returns the pid. */
pid_t h_spawn(const char *log, char *const argv[]);
/* Sends sig and waits up to timeout_ms for the exit (then SIGKILL).
 * Returns the wait status. */
int h_stop(pid_t pid, int sig, int timeout_ms);
/* Kills (SIGKILL) every child still running; tests call it first so a
 * failure in an earlier test cannot leave daemons on their ports. */
void h_kill_all(void);
/* True while pid runs. */
bool h_alive(pid_t pid);

/* Starts a broker on 127.0.0.1 client port cport and worker port wport
 * (heartbeat 200 ms, liveness 3, --insecure), with extra NULL-terminated args. */
pid_t h_broker(const char *log, const char *db, int cport, int wport, ...);
/* Starts a worker with name, operator, slots, ask, then extra args (NULL-terminated). */
pid_t h_worker(const char *log, int wport, const char *name, const char *op, int slots, int ask,
               ...);
/* Connects a client, retrying for up to 15 s while the broker comes up. */
quarry_client_t *h_client(int cport, const char *account);

/* Asserts the books and references are sound: the ledger sums to zero, every
 * transaction balances, no job is settled twice, balances match the ledger,
 * and v_integrity finds no dangling reference. */
void h_check_books(const char *conninfo);
/* Waits up to 15 s until exactly n workers are online; fails the test if not. */
void h_wait_online(quarry_client_t *c, int n);
/* GET http://127.0.0.1:port/path; the body (NUL-terminated, cut to len)
 * goes to buf.  Returns the HTTP status, or -1 when nothing answered. */
int h_http_get(int port, const char *path, char *buf, size_t len);
/* The value of a Prometheus sample line "name value" in text (name may carry
 * labels, written exactly as exported); fails the test when absent. */
double h_metric(const char *text, const char *name);
/* Fills p with n uniform values in [-1, 1). */
void h_random(float *p, size_t n, unsigned *seed);
/* Sleeps ms milliseconds. */
void h_sleep_ms(int ms);
/* Polls the job until cond(state) or timeout; returns the last info. */
bool h_wait_state(quarry_client_t *c, uint64_t id, quarry_job_state_t want, int timeout_ms,
                  quarry_job_info_t *info);

#endif
