/* A minimal HTTP/1.0 endpoint for /metrics and /healthz, driven by the
 * caller's poll loop.
 *
 * The listening socket is non-blocking; the caller polls qr_httpd_fd() with
 * its other sockets (zmq_poll takes raw fds) and calls qr_httpd_serve() when
 * it is readable.  Each connection is served at once and closed: read the
 * request line within a short deadline, ask the render callback for the body,
 * write it, close.  Only GET is answered.  A peer that sends nothing within
 * the deadline is dropped, so a slow scraper can stall the loop by at most
 * that long per connection.  Not thread-safe; one owner thread. */
#ifndef QR_HTTPD_H
#define QR_HTTPD_H

#include <stddef.h>

typedef struct qr_httpd qr_httpd_t;

/* A growable text buffer the render callback appends to. */
typedef struct {
    char *p;    /* bytes, not NUL-terminated */
    size_t len; /* used */
    size_t cap; /* allocated */
    int oom;    /* an append failed */
} qr_text_t;

/* Appends printf-formatted text. */
void qr_text_printf(qr_text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fills out with the body for path and returns the HTTP status (200, 404,
 * 503...); content type is text/plain (Prometheus text format 0.0.4). */
typedef int (*qr_httpd_render_fn)(void *arg, const char *path, qr_text_t *out);

/* Listens on addr, "HOST:PORT" (":PORT" = all interfaces).  Returns the
 * server (caller owns) or NULL with a message in err. */
qr_httpd_t *qr_httpd_new(const char *addr, char *err, size_t errlen);
/* Closes the socket; NULL-safe, nulls *self_p. */
void qr_httpd_destroy(qr_httpd_t **self_p);
/* The listening socket, for the caller's poll. */
int qr_httpd_fd(const qr_httpd_t *self);
/* The port actually bound (useful with port 0). */
int qr_httpd_port(const qr_httpd_t *self);
/* Accepts and answers every pending connection. */
void qr_httpd_serve(qr_httpd_t *self, qr_httpd_render_fn render, void *arg);

#endif
