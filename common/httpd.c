/* Minimal HTTP endpoint; see httpd.h. */
#define _GNU_SOURCE
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* How long a connection may take to send its request line. */
#define S_READ_MS 100

struct qr_httpd {
    int fd;   /* listening socket */
    int port; /* bound port */
};

void qr_text_printf(qr_text_t *t, const char *fmt, ...)
{
    if (t->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->len;
        int n = vsnprintf(t->p ? t->p + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t ncap = t->cap ? t->cap * 2 : 4096;
        while (ncap - t->len <= (size_t)n)
            ncap *= 2;
        char *np = realloc(t->p, ncap);
        if (!np) {
            t->oom = 1;
            return;
        }
        t->p = np;
        t->cap = ncap;
    }
}

qr_httpd_t *qr_httpd_new(const char *addr, char *err, size_t errlen)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || !colon[1]) {
        snprintf(err, errlen, "metrics address '%s' must be HOST:PORT or :PORT", addr);
        return NULL;
    }
    char host[256];
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host) {
        snprintf(err, errlen, "metrics host name too long");
        return NULL;
    }
    memcpy(host, addr, hl);
    host[hl] = '\0';
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(hl ? host : NULL, colon + 1, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "metrics address '%s': %s", addr, gai_strerror(gai));
        return NULL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 16) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return NULL;
    }
    freeaddrinfo(res);
    qr_httpd_t *self = calloc(1, sizeof *self);
    if (!self) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->fd = fd;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        self->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                    : ((struct sockaddr_in *)&ss)->sin_port);
    return self;
}

void qr_httpd_destroy(qr_httpd_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    close((*self_p)->fd);
    free(*self_p);
    *self_p = NULL;
}

int qr_httpd_fd(const qr_httpd_t *self)
{
    return self->fd;
}

int qr_httpd_port(const qr_httpd_t *self)
{
    return self->port;
}

static void s_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        struct pollfd pf = {fd, POLLOUT, 0};
        if (poll(&pf, 1, S_READ_MS) <= 0)
            return;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void s_answer(int fd, qr_httpd_render_fn render, void *arg)
{
    char req[1024];
    size_t got = 0;
    /* the request line is all we need; stop at its end or the deadline */
    while (got < sizeof req - 1 && !memchr(req, '\n', got)) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, S_READ_MS) <= 0)
            return;
        ssize_t r = recv(fd, req + got, sizeof req - 1 - got, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0)
            return;
        got += (size_t)r;
    }
    req[got] = '\0';
    char method[8], path[256];
    int status;
    qr_text_t body = {0};
    if (sscanf(req, "%7s %255s", method, path) != 2) {
        status = 400;
        qr_text_printf(&body, "bad request\n");
    } else if (strcmp(method, "GET") != 0) {
        status = 405;
        qr_text_printf(&body, "only GET\n");
    } else {
        char *q = strchr(path, '?');
        if (q)
            *q = '\0';
        status = render(arg, path, &body);
    }
    if (body.oom) {
        status = 500;
        body.len = 0;
    }
    const char *reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 503 ? "Service Unavailable"
                         : status == 400 ? "Bad Request"
                         : status == 405 ? "Method Not Allowed"
                                         : "Error";
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.0 %d %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      status, reason, body.len);
    s_write_all(fd, head, (size_t)hn);
    s_write_all(fd, body.p, body.len);
    free(body.p);
}

void qr_httpd_serve(qr_httpd_t *self, qr_httpd_render_fn render, void *arg)
{
    for (int i = 0; i < 16; i++) {
        int fd = accept4(self->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        s_answer(fd, render, arg);
        close(fd);
    }
}
