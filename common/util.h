/* Clocks, structured logging and small helpers shared by every Quarry process.
 *
 * Logs are one line per event in key=value form on stderr:
 *   ts=2026-11-23T01:02:03.456Z level=info proc=broker msg="job settled" job=42 worker=3
 * The level and process name are set once at start-up by main() (the only
 * process-wide state in Quarry, written before any thread starts). */
#ifndef QR_UTIL_H
#define QR_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds, for deadlines and intervals. */
int64_t qr_clock_ms(void);
/* Monotonic microseconds, for latency measurements. */
int64_t qr_clock_us(void);
/* Wall clock milliseconds since the Unix epoch, for records. */
int64_t qr_wall_ms(void);

typedef enum { QR_LOG_DEBUG = 0, QR_LOG_INFO, QR_LOG_WARN, QR_LOG_ERROR } qr_log_level_t;

/* Sets the process name and minimum level; call from main() before threads. */
void qr_log_init(const char *proc, qr_log_level_t level);
/* Parses "debug|info|warn|error"; returns -1 for anything else. */
int qr_log_level_parse(const char *s);
/* Logs msg with extra key=value pairs given as a printf format in kvfmt
 * (may be NULL), e.g. qr_log(QR_LOG_INFO, "job settled", "job=%llu", id).
 * Thread-safe: the line is written with a single write(2). */
void qr_log(qr_log_level_t level, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills buf with n bytes from the OS random source (getrandom). Returns 0 or -1. */
int qr_random_bytes(void *buf, size_t n);
/* Creates folder path and any missing parents (mode 0750), like mkdir -p.
 * Returns 0 (also when it exists), or -1 with errno set. */
int qr_mkdir_p(const char *path);

#endif
