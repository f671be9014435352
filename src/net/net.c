/*
 * net.c - TCP, UDP and Unix sockets for goroutines (Go's net package, the parts C servers use).
 *
 * A connection or listener is a gorc__fd (fd.c: the descriptor, its locks and its poll
 * descriptor) plus a reference count for its memory. The two lifetimes are kept apart on
 * purpose: the descriptor's ends when it is closed and the last operation using it has left
 * (so a reader blocked in another goroutine is woken, never handed a reused descriptor number),
 * the memory's when the last reference is dropped (so that reader can still look at the
 * struct on its way out). Close gives up the caller's reference, which makes the common case
 * - one goroutine owns the connection - one call.
 *
 * Defaults follow Go: TCP_NODELAY and a 15 s keep-alive on every TCP connection, SO_REUSEADDR
 * on TCP listeners, the system's maximum backlog, ":port" listening on IPv6 and IPv4 at once,
 * dials that try each resolved address in turn with a share of the timeout.
 *
 * The _ctx calls are the plain ones with a context's cancellation source handed to the
 * descriptor's wait (fd.c: a hook that interrupts the waiting direction). A context that is
 * cancelled already fails the call before it touches the socket; one that can never be
 * cancelled makes it the plain call. A dial's deadline is the earlier of its timeout and the
 * context's deadline, shared among the addresses as without a context.
 */
#include "net/internal.h"
#include "net/simnet.h"
#include "sim/sim.h"

#include <limits.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEEPALIVE_DEFAULT (15 * GORC_SECOND)
#define MAXADDRS          8

struct gorc_conn {
    gorc__fd fd;
    _Atomic int32_t refs;
    int family;
    /* Relative timeouts (0: none) and the deadline each last armed; see rearm(). */
    _Atomic int64_t rto, wto, rarmed, warmed;
    /* A layered connection (gorc_conn_layer): ops and self, set once before the connection is
     * shared, and the connection it is built on (one reference, dropped with the last of this
     * one's); fd is not used then. ops is NULL for a plain connection: each I/O call tests it
     * once, a predicted branch, and plain connections keep their path. */
    const gorc_conn_ops *ops;
    void *self;
    gorc_conn *inner;
    _Atomic bool lclosed; /* a layered connection's close has run */
};

struct gorc_listener {
    gorc__fd fd;
    _Atomic int32_t refs;
    int family;
    int64_t keepalive;
    char *unlink_path; /* a Unix socket file this listener made */
    /* A layered listener (gorc_listener_layer): set once at creation; fd is not used then. */
    const gorc_listener_ops *ops;
    void *self;
    gorc_listener *inner;
};

/* ------------------------------------------------------------------------------------------
 * Sockets and options
 * ---------------------------------------------------------------------------------------- */

static int new_socket(int family, int type)
{
    int s = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return s >= 0 ? s : -errno;
}

static int setopt(int s, int level, int opt, int v)
{
    return setsockopt(s, level, opt, &v, sizeof v) == 0 ? 0 : -errno;
}

static int getopt_int(int s, int level, int opt, int *v)
{
    socklen_t len = sizeof *v;
    return getsockopt(s, level, opt, v, &len) == 0 ? 0 : -errno;
}

static int set_keepalive(int s, int64_t period)
{
    if (period <= 0)
        return setopt(s, SOL_SOCKET, SO_KEEPALIVE, 0);
    int secs = (int)((period + GORC_SECOND - 1) / GORC_SECOND);
    int rc = setopt(s, SOL_SOCKET, SO_KEEPALIVE, 1);
    if (rc == 0)
        rc = setopt(s, IPPROTO_TCP, TCP_KEEPINTVL, secs);
    if (rc == 0)
        rc = setopt(s, IPPROTO_TCP, TCP_KEEPIDLE, secs);
    return rc;
}

/* Go's defaults for a new TCP connection. */
static void tcp_defaults(int s, int64_t keepalive)
{
    setopt(s, IPPROTO_TCP, TCP_NODELAY, 1);
    if (keepalive >= 0)
        set_keepalive(s, keepalive ? keepalive : KEEPALIVE_DEFAULT);
}

static int fd_kind(int s, int *family)
{
    int type = 0;
    *family = AF_UNSPEC;
    if (getopt_int(s, SOL_SOCKET, SO_TYPE, &type) != 0)
        return GORC__FD_OTHER; /* ENOTSOCK: a pipe, FIFO, terminal... */
    getopt_int(s, SOL_SOCKET, SO_DOMAIN, family);
    return type == SOCK_STREAM ? GORC__FD_STREAM : GORC__FD_DGRAM;
}

static int make_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0))
        return -errno;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return -errno;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Connections: life cycle
 * ---------------------------------------------------------------------------------------- */

/* Wrap s; on failure s is closed. */
static int conn_wrap(gorc_conn **out, int s, int kind, int family, bool ours)
{
    gorc_conn *c = malloc(sizeof *c);
    if (c == NULL) {
        close(s);
        return -ENOMEM;
    }
    int rc = gorc__fd_init(&c->fd, s, kind, family, ours);
    if (rc != 0) {
        close(s);
        free(c);
        return rc;
    }
    atomic_init(&c->refs, 1);
    c->family = family;
    atomic_init(&c->rto, 0);
    atomic_init(&c->wto, 0);
    atomic_init(&c->rarmed, 0);
    atomic_init(&c->warmed, 0);
    c->ops = NULL;
    c->self = NULL;
    c->inner = NULL;
    atomic_init(&c->lclosed, false);
    *out = c;
    return 0;
}

/* A simulated socket (simnet.c), made by a goroutine of a simulation run; on failure the
 * socket is closed. */
static int conn_wrap_sim(gorc_conn **out, int s, gorc__sep *e, int kind, int family)
{
    gorc_conn *c = calloc(1, sizeof *c);
    int rc = c ? gorc__fd_init_sim(&c->fd, s, kind, e) : -ENOMEM;
    if (rc != 0) {
        gorc__simnet_close(e);
        close(s);
        free(c);
        return rc;
    }
    atomic_init(&c->refs, 1);
    c->family = family;
    *out = c;
    return 0;
}

#define LAYERED(c) __builtin_expect((c)->ops != NULL, 0)

/* The plain connection at the bottom of c: where deadlines, options and addresses live. */
static gorc_conn *base(gorc_conn *c)
{
    while (LAYERED(c))
        c = c->inner;
    return c;
}

static void layered_close(gorc_conn *c)
{
    if (c->ops->close)
        c->ops->close(c->self);
}

gorc_conn *gorc_conn_retain(gorc_conn *c)
{
    if (c)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

void gorc_conn_release(gorc_conn *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (LAYERED(c)) {
        if (!atomic_exchange(&c->lclosed, true))
            layered_close(c);
        gorc_conn_close(c->inner); /* wakes nobody: no one else holds c */
        c->ops->free(c->self);
        free(c);
        return;
    }
    gorc__fd_close(&c->fd);
    free(c);
}

int gorc_conn_close(gorc_conn *c)
{
    if (c == NULL)
        return -EINVAL;
    int rc;
    if (LAYERED(c)) {
        rc = GORC_ENETCLOSED;
        if (!atomic_exchange(&c->lclosed, true)) {
            layered_close(c);
            /* Closing the inner connection wakes every goroutine waiting in the ops; the inner
             * reference itself goes with the last of c's. */
            gorc_conn *b = base(c);
            rc = gorc__fd_close(&b->fd);
        }
    } else {
        rc = gorc__fd_close(&c->fd);
    }
    gorc_conn_release(c);
    return rc;
}

int gorc_conn_from_fd(gorc_conn **out, int fd)
{
    if (out == NULL || fd < 0) {
        if (fd >= 0)
            close(fd); /* the connection owns fd even on failure */
        return -EINVAL;
    }
    *out = NULL;
    int rc = make_nonblocking(fd);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    int family;
    int kind = fd_kind(fd, &family);
    return conn_wrap(out, fd, kind, family, false); /* made elsewhere: assume nothing */
}

/* ------------------------------------------------------------------------------------------
 * Connections: I/O
 * ---------------------------------------------------------------------------------------- */

/* Set up *cx to watch ctx for one operation (a context that can never be cancelled gives a
 * cx without a source: the plain call). Returns the context's error if it is cancelled
 * already, else 0. */
static int watch(gorc__fd_cancel *cx, gorc_ctx *ctx)
{
    gorc__cancel *src = gorc__ctx_source(ctx);
    gorc__fd_cancel_init(cx, src);
    return src ? gorc__cancel_err(src) : 0;
}

/* A relative timeout d in force for mode: make sure the call about to start may wait at least
 * d/2 and at most d. The deadline moves only when less than half of d is left, so a stream of
 * quick calls costs a clock read each and a timer update every d/2, not one per call. */
static void rearm(gorc_conn *c, int mode)
{
    _Atomic int64_t *to = mode == 'r' ? &c->rto : &c->wto;
    int64_t d = atomic_load_explicit(to, memory_order_relaxed);
    if (__builtin_expect(d <= 0, 1))
        return;
    _Atomic int64_t *armed = mode == 'r' ? &c->rarmed : &c->warmed;
    int64_t now = gorc_now();
    if (atomic_load_explicit(armed, memory_order_relaxed) - now >= d / 2)
        return;
    atomic_store_explicit(armed, now + d, memory_order_relaxed);
    gorc__fd_set_deadline(&c->fd, now + d, mode);
}

ssize_t gorc_conn_read(gorc_conn *c, void *buf, size_t n)
{
    if (c == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    if (LAYERED(c))
        return c->ops->read(c->self, buf, n, NULL);
    rearm(c, 'r');
    return gorc__fd_read(&c->fd, buf, n, NULL);
}

ssize_t gorc_conn_read_ctx(gorc_conn *c, void *buf, size_t n, gorc_ctx *ctx)
{
    if (c == NULL || ctx == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    gorc__fd_cancel cx;
    int err = watch(&cx, ctx);
    if (LAYERED(c))
        return err ? err : c->ops->read(c->self, buf, n, ctx);
    rearm(c, 'r');
    return err ? err : gorc__fd_read(&c->fd, buf, n, &cx);
}

/* Read exactly n bytes, watching ctx (NULL: none); *got: how many were read. */
static ssize_t read_full(gorc_conn *c, void *buf, size_t n, gorc_ctx *ctx, size_t *got)
{
    *got = 0;
    while (*got < n) {
        gorc__fd_cancel cx;
        int err = ctx ? watch(&cx, ctx) : 0;
        ssize_t r;
        if (LAYERED(c)) {
            r = err ? err : c->ops->read(c->self, (char *)buf + *got, n - *got, ctx);
        } else {
            rearm(c, 'r');
            r = err ? err : gorc__fd_read(&c->fd, (char *)buf + *got, n - *got, ctx ? &cx : NULL);
        }
        if (r < 0)
            return r;
        if (r == 0)
            return *got == 0 ? 0 : GORC_EUNEXPECTEDEOF;
        *got += (size_t)r;
    }
    return (ssize_t)n;
}

ssize_t gorc_conn_read_full(gorc_conn *c, void *buf, size_t n)
{
    if (c == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    size_t got;
    return read_full(c, buf, n, NULL, &got);
}

ssize_t gorc_conn_read_full_ctx(gorc_conn *c, void *buf, size_t n, gorc_ctx *ctx, size_t *got)
{
    size_t dummy;
    if (got == NULL)
        got = &dummy;
    *got = 0;
    if (c == NULL || ctx == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    int err = gorc_ctx_err(ctx);
    return err ? err : read_full(c, buf, n, ctx, got);
}

ssize_t gorc_conn_write(gorc_conn *c, const void *buf, size_t n)
{
    if (c == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    size_t w;
    if (LAYERED(c))
        return c->ops->write(c->self, buf, n, false, NULL, &w);
    rearm(c, 'w');
    return gorc__fd_write(&c->fd, buf, n, false, NULL);
}

ssize_t gorc_conn_write_ctx(gorc_conn *c, const void *buf, size_t n, gorc_ctx *ctx)
{
    if (c == NULL || ctx == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    gorc__fd_cancel cx;
    int err = watch(&cx, ctx);
    size_t w;
    if (LAYERED(c))
        return err ? err : c->ops->write(c->self, buf, n, false, ctx, &w);
    rearm(c, 'w');
    return err ? err : gorc__fd_write(&c->fd, buf, n, false, &cx);
}

ssize_t gorc_conn_write_all(gorc_conn *c, const void *buf, size_t n)
{
    if (c == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    size_t w;
    if (LAYERED(c))
        return c->ops->write(c->self, buf, n, true, NULL, &w);
    rearm(c, 'w');
    return gorc__fd_write(&c->fd, buf, n, true, NULL);
}

ssize_t gorc_conn_write_all_ctx(gorc_conn *c, const void *buf, size_t n, gorc_ctx *ctx,
                                size_t *written)
{
    size_t dummy;
    if (written == NULL)
        written = &dummy;
    *written = 0;
    if (c == NULL || ctx == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    gorc__fd_cancel cx;
    int err = watch(&cx, ctx);
    if (err)
        return err;
    if (LAYERED(c))
        return c->ops->write(c->self, buf, n, true, ctx, written);
    rearm(c, 'w');
    ssize_t r = gorc__fd_write(&c->fd, buf, n, true, &cx);
    *written = r >= 0 ? (size_t)r : cx.written;
    return r;
}

/* writev through a layer: small messages (an HTTP head and a short body) are gathered into
 * one write, so that a TLS layer sends one record rather than one per piece. */
static ssize_t layered_writev(gorc_conn *c, const struct iovec *iov, int iovcnt, size_t total)
{
    enum { GATHER = 4096 };
    size_t w;
    if (total <= GATHER && iovcnt > 1) {
        char buf[GATHER];
        size_t o = 0;
        for (int i = 0; i < iovcnt; i++) {
            if (iov[i].iov_len)
                memcpy(buf + o, iov[i].iov_base, iov[i].iov_len);
            o += iov[i].iov_len;
        }
        return c->ops->write(c->self, buf, total, true, NULL, &w);
    }
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len == 0)
            continue;
        ssize_t r = c->ops->write(c->self, iov[i].iov_base, iov[i].iov_len, true, NULL, &w);
        if (r < 0)
            return r;
    }
    return (ssize_t)total;
}

ssize_t gorc_conn_writev(gorc_conn *c, const struct iovec *iov, int iovcnt)
{
    if (c == NULL || iovcnt < 0 || (iov == NULL && iovcnt > 0))
        return -EINVAL;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
            return -EINVAL;
        total += iov[i].iov_len;
    }
    if (LAYERED(c))
        return layered_writev(c, iov, iovcnt, total);
    rearm(c, 'w');
    return gorc__fd_writev(&c->fd, iov, iovcnt, total);
}

bool gorc__conn_poll_in(gorc_conn *c)
{
    c = base(c);
    if (!gorc__fd_incref(&c->fd))
        return true;
    bool r;
    if (c->fd.sim) {
        r = gorc__simnet_readable(c->fd.sim);
    } else {
        struct pollfd p = {.fd = c->fd.sysfd, .events = POLLIN | POLLRDHUP};
        r = poll(&p, 1, 0) != 0;
    }
    gorc__fd_decref(&c->fd);
    return r;
}

int gorc__conn_peek_wait(gorc_conn *c)
{
    if (LAYERED(c))
        return c->ops->wait_readable ? c->ops->wait_readable(c->self) : 1;
    return gorc__fd_peek_wait(&c->fd);
}

int gorc__conn_wait_read(gorc_conn *c)
{
    if (LAYERED(c)) {
        int r = c->ops->wait_readable ? c->ops->wait_readable(c->self) : 0;
        return r < 0 ? r : 0;
    }
    return gorc__fd_wait_read(&c->fd);
}

/* sendfile through a layer without one of its own: the file is read in pieces (as a
 * blocking call) and written with the layer's write. */
static ssize_t layered_sendfile(gorc_conn *c, int file_fd, int64_t off, size_t n, gorc_ctx *ctx,
                                size_t *sent)
{
    if (c->ops->sendfile)
        return c->ops->sendfile(c->self, file_fd, off, n, ctx, sent);
    enum { CHUNK = 16384 };
    char *buf = malloc(n < CHUNK ? (n ? n : 1) : CHUNK);
    if (buf == NULL)
        return -ENOMEM;
    ssize_t rc = 0;
    *sent = 0;
    while (*sent < n) {
        size_t want = n - *sent < CHUNK ? n - *sent : CHUNK;
        ssize_t r = gorc_file_read(file_fd, buf, want, off + (int64_t)*sent);
        if (r <= 0) {
            rc = r < 0 ? r : -EIO;
            break;
        }
        size_t w = 0;
        ssize_t k = c->ops->write(c->self, buf, (size_t)r, true, ctx, &w);
        *sent += w;
        if (k < 0) {
            rc = k;
            break;
        }
    }
    free(buf);
    return rc < 0 ? rc : (ssize_t)n;
}

ssize_t gorc_conn_sendfile(gorc_conn *c, int file_fd, int64_t off, size_t n)
{
    if (c == NULL || file_fd < 0 || off < 0)
        return -EINVAL;
    size_t sent;
    if (LAYERED(c))
        return layered_sendfile(c, file_fd, off, n, NULL, &sent);
    rearm(c, 'w');
    return gorc__fd_sendfile(&c->fd, file_fd, off, n, NULL);
}

ssize_t gorc_conn_sendfile_ctx(gorc_conn *c, int file_fd, int64_t off, size_t n, gorc_ctx *ctx,
                               size_t *sent)
{
    size_t dummy;
    if (sent == NULL)
        sent = &dummy;
    *sent = 0;
    if (c == NULL || file_fd < 0 || off < 0 || ctx == NULL)
        return -EINVAL;
    gorc__fd_cancel cx;
    int err = watch(&cx, ctx);
    if (err)
        return err;
    if (LAYERED(c))
        return layered_sendfile(c, file_fd, off, n, ctx, sent);
    rearm(c, 'w');
    ssize_t r = gorc__fd_sendfile(&c->fd, file_fd, off, n, &cx);
    *sent = r >= 0 ? (size_t)r : cx.written;
    return r;
}

int gorc_conn_shutdown(gorc_conn *c, int how)
{
    if (c == NULL || (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR))
        return -EINVAL;
    c = base(c);
    if (!gorc__fd_incref(&c->fd))
        return GORC_ENETCLOSED;
    int rc = GORC__UNLIKELY(c->fd.sim)         ? gorc__simnet_shutdown(c->fd.sim, how)
             : shutdown(c->fd.sysfd, how) == 0 ? 0
                                               : -errno;
    gorc__fd_decref(&c->fd);
    return rc;
}

/* An absolute deadline replaces a relative timeout for its direction. */
static int set_deadline(gorc_conn *c, int64_t t, bool r, bool w)
{
    if (c == NULL)
        return -EINVAL;
    c = base(c);
    if (r)
        atomic_store(&c->rto, 0);
    if (w)
        atomic_store(&c->wto, 0);
    return gorc__fd_set_deadline(&c->fd, t, (r ? 'r' : 0) + (w ? 'w' : 0));
}

int gorc_conn_set_deadline(gorc_conn *c, int64_t t)
{
    return set_deadline(c, t, true, true);
}

int gorc_conn_set_read_deadline(gorc_conn *c, int64_t t)
{
    return set_deadline(c, t, true, false);
}

int gorc_conn_set_write_deadline(gorc_conn *c, int64_t t)
{
    return set_deadline(c, t, false, true);
}

/* A relative timeout: 0 turns it off (and clears the deadline it armed). */
static int set_timeout(gorc_conn *c, int64_t d, int mode)
{
    if (c == NULL || d < 0)
        return -EINVAL;
    c = base(c);
    _Atomic int64_t *to = mode == 'r' ? &c->rto : &c->wto;
    _Atomic int64_t *armed = mode == 'r' ? &c->rarmed : &c->warmed;
    atomic_store(armed, 0);
    atomic_store(to, d);
    return gorc__fd_set_deadline(&c->fd, 0, mode); /* the next call arms it */
}

int gorc_conn_set_read_timeout(gorc_conn *c, int64_t d)
{
    return set_timeout(c, d, 'r');
}

int gorc_conn_set_write_timeout(gorc_conn *c, int64_t d)
{
    return set_timeout(c, d, 'w');
}

/* ------------------------------------------------------------------------------------------
 * Connections: addresses and options
 * ---------------------------------------------------------------------------------------- */

static int sock_addr(gorc__fd *fd, bool peer, char *buf, size_t n)
{
    if (buf == NULL || n == 0)
        return -EINVAL;
    if (!gorc__fd_incref(fd))
        return GORC_ENETCLOSED;
    gorc_addr a = {.len = sizeof a.u};
    int rc;
    if (GORC__UNLIKELY(fd->sim)) {
        rc = gorc__simnet_addr(fd->sim, peer, &a);
    } else {
        rc = peer ? getpeername(fd->sysfd, &a.u.sa, &a.len)
                  : getsockname(fd->sysfd, &a.u.sa, &a.len);
        rc = rc == 0 ? 0 : -errno;
    }
    gorc__fd_decref(fd);
    return rc == 0 ? gorc_addr_string(&a, buf, n) : rc;
}

int gorc_conn_local_addr(gorc_conn *c, char *buf, size_t n)
{
    return c ? sock_addr(&base(c)->fd, false, buf, n) : -EINVAL;
}

int gorc_conn_remote_addr(gorc_conn *c, char *buf, size_t n)
{
    return c ? sock_addr(&base(c)->fd, true, buf, n) : -EINVAL;
}

int gorc_conn_fd(gorc_conn *c)
{
    if (c == NULL)
        return -EINVAL;
    c = base(c);
    int fd = gorc__fd_raw(&c->fd);
    return fd >= 0 ? fd : GORC_ENETCLOSED;
}

/* A plain connection has no handshake; a layered one (libgorc_tls's) brings its own. */
static int handshake(gorc_conn *c, gorc_ctx *ctx)
{
    if (LAYERED(c)) {
        if (atomic_load_explicit(&c->lclosed, memory_order_relaxed))
            return GORC_ENETCLOSED;
        return c->ops->handshake ? c->ops->handshake(c->self, ctx) : 0;
    }
    /* Only whether it is open: gorc__fd_raw would turn the read shortcut off. */
    if (!gorc__fd_incref(&c->fd))
        return GORC_ENETCLOSED;
    gorc__fd_decref(&c->fd);
    return 0;
}

int gorc_conn_handshake(gorc_conn *c)
{
    return c ? handshake(c, NULL) : -EINVAL;
}

int gorc_conn_handshake_ctx(gorc_conn *c, gorc_ctx *ctx)
{
    if (c == NULL || ctx == NULL)
        return -EINVAL;
    int err = gorc_ctx_err(ctx);
    return err ? err : handshake(c, ctx);
}

const char *gorc_conn_protocol(gorc_conn *c)
{
    if (c == NULL || !LAYERED(c) || c->ops->protocol == NULL)
        return "";
    const char *p = c->ops->protocol(c->self);
    return p ? p : "";
}

/* ------------------------------------------------------------------------------------------
 * Layered connections (the ops of an extension library over a plain connection)
 * ---------------------------------------------------------------------------------------- */

int gorc_conn_layer(gorc_conn **out, gorc_conn *inner, const gorc_conn_ops *ops, void *self)
{
    if (out)
        *out = NULL;
    if (out == NULL || inner == NULL || ops == NULL || ops->read == NULL || ops->write == NULL ||
        ops->free == NULL) {
        if (inner)
            gorc_conn_close(inner);
        return -EINVAL;
    }
    gorc_conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        gorc_conn_close(inner);
        return -ENOMEM;
    }
    atomic_init(&c->refs, 1);
    c->family = inner->family;
    c->ops = ops;
    c->self = self;
    c->inner = inner;
    atomic_init(&c->lclosed, false);
    *out = c;
    return 0;
}

gorc_conn *gorc_conn_inner(gorc_conn *c)
{
    return c && LAYERED(c) ? c->inner : NULL;
}

void *gorc_conn_layer_self(gorc_conn *c, const gorc_conn_ops *ops)
{
    return c && ops && c->ops == ops ? c->self : NULL;
}

static int raw_io(gorc_conn *c, int mode, bool (*fn)(int, void *), void *arg, gorc_ctx *ctx)
{
    if (c == NULL || fn == NULL || LAYERED(c))
        return -EINVAL;
    gorc__fd_cancel cx;
    int err = ctx ? watch(&cx, ctx) : 0;
    if (err)
        return err;
    rearm(c, mode);
    err = gorc__fd_raw_io(&c->fd, mode, fn, arg, ctx ? &cx : NULL);
    return err;
}

int gorc_conn_raw_read(gorc_conn *c, bool (*fn)(int fd, void *arg), void *arg, gorc_ctx *ctx)
{
    return raw_io(c, 'r', fn, arg, ctx);
}

int gorc_conn_raw_write(gorc_conn *c, bool (*fn)(int fd, void *arg), void *arg, gorc_ctx *ctx)
{
    return raw_io(c, 'w', fn, arg, ctx);
}

ssize_t gorc_conn_raw_recv(gorc_conn *c, void *buf, size_t n)
{
    if (c == NULL || (buf == NULL && n > 0) || LAYERED(c))
        return -EINVAL;
    if (!gorc__fd_incref(&c->fd))
        return GORC_ENETCLOSED;
    ssize_t r = gorc__fd_raw_recv(&c->fd, buf, n);
    gorc__fd_decref(&c->fd);
    return r;
}

ssize_t gorc_conn_raw_send(gorc_conn *c, const void *buf, size_t n)
{
    if (c == NULL || (buf == NULL && n > 0) || LAYERED(c))
        return -EINVAL;
    if (!gorc__fd_incref(&c->fd))
        return GORC_ENETCLOSED;
    ssize_t r = gorc__fd_raw_send(&c->fd, buf, n);
    gorc__fd_decref(&c->fd);
    return r;
}

/* fd.sim is set before the connection is shared and never changes: no reference needed. */
bool gorc_conn_simulated(gorc_conn *c)
{
    return c != NULL && base(c)->fd.sim != NULL;
}

static int conn_setopt(gorc_conn *c, int level, int opt, int v)
{
    if (c == NULL)
        return -EINVAL;
    c = base(c);
    if (!gorc__fd_incref(&c->fd))
        return GORC_ENETCLOSED;
    int rc = c->fd.sim ? 0 : setopt(c->fd.sysfd, level, opt, v); /* simulated: no options */
    gorc__fd_decref(&c->fd);
    return rc;
}

int gorc_conn_set_nodelay(gorc_conn *c, bool on)
{
    return conn_setopt(c, IPPROTO_TCP, TCP_NODELAY, on);
}

int gorc_conn_set_read_buffer(gorc_conn *c, int bytes)
{
    return conn_setopt(c, SOL_SOCKET, SO_RCVBUF, bytes);
}

int gorc_conn_set_write_buffer(gorc_conn *c, int bytes)
{
    return conn_setopt(c, SOL_SOCKET, SO_SNDBUF, bytes);
}

int gorc_conn_set_keepalive(gorc_conn *c, int64_t period)
{
    if (c == NULL)
        return -EINVAL;
    c = base(c);
    if (!gorc__fd_incref(&c->fd))
        return GORC_ENETCLOSED;
    int rc = c->fd.sim ? 0 : set_keepalive(c->fd.sysfd, period);
    gorc__fd_decref(&c->fd);
    return rc;
}

int gorc_conn_set_linger(gorc_conn *c, int sec)
{
    if (c == NULL)
        return -EINVAL;
    c = base(c);
    if (!gorc__fd_incref(&c->fd))
        return GORC_ENETCLOSED;
    struct linger l = {.l_onoff = sec >= 0, .l_linger = sec >= 0 ? sec : 0};
    int rc = c->fd.sim                                                           ? 0
             : setsockopt(c->fd.sysfd, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0 ? 0
                                                                                 : -errno;
    gorc__fd_decref(&c->fd);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Dialing
 * ---------------------------------------------------------------------------------------- */

/* Go's partialDeadline: an equal share of what is left per remaining address, at least 2 s. */
static int64_t partial_deadline(int64_t deadline, int remaining)
{
    if (deadline == 0)
        return 0;
    int64_t now = gorc_now();
    int64_t left = deadline - now;
    if (left <= 0)
        return -1;
    int64_t share = left / remaining;
    if (share < 2 * GORC_SECOND)
        share = left < 2 * GORC_SECOND ? left : 2 * GORC_SECOND;
    return now + share;
}

/* Connect first, register with the poller after: registered earlier, a socket that is not
 * yet connecting reports a hang-up, which would make the poller think the peer had gone. */
/* dial_one in a simulation run: a simulated socket connects through the run's network. */
static int dial_sim(gorc_conn **out, const gorc_addr *a, int type, int64_t deadline,
                    gorc__fd_cancel *cx)
{
    gorc__sep *e;
    int s = gorc__simnet_socket(&e, a->u.sa.sa_family, type);
    if (s < 0)
        return s;
    gorc_conn *c;
    int kind = type == SOCK_STREAM ? GORC__FD_STREAM : GORC__FD_DGRAM;
    int rc = conn_wrap_sim(&c, s, e, kind, a->u.sa.sa_family);
    if (rc != 0)
        return rc;
    rc = gorc__simnet_connect(e, a);
    if (rc == -EINPROGRESS)
        rc = gorc__fd_connect_wait(&c->fd, deadline, cx);
    if (rc != 0) {
        gorc_conn_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

static int dial_one(gorc_conn **out, const gorc_addr *a, int type, int64_t deadline,
                    gorc__fd_cancel *cx)
{
    if (GORC__UNLIKELY(gorc__simnet_on()))
        return dial_sim(out, a, type, deadline, cx);
    int s = new_socket(a->u.sa.sa_family, type);
    if (s < 0)
        return s;
    int rc = connect(s, &a->u.sa, a->len) == 0 ? 0 : -errno;
    if (rc != 0 && rc != -EINPROGRESS) {
        close(s);
        return rc;
    }
    gorc_conn *c;
    int kind = type == SOCK_STREAM ? GORC__FD_STREAM : GORC__FD_DGRAM;
    int werr = conn_wrap(&c, s, kind, a->u.sa.sa_family, true);
    if (werr != 0)
        return werr;
    if (rc == -EINPROGRESS)
        rc = gorc__fd_connect_wait(&c->fd, deadline, cx);
    if (rc != 0) {
        gorc_conn_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* The deadline of a dial: timeout_ns from now (<= 0: none) or ctx's deadline if earlier. */
static int64_t dial_deadline(int64_t timeout_ns, gorc_ctx *ctx)
{
    int64_t deadline = timeout_ns > 0 ? gorc__deadline(timeout_ns) : 0, cd;
    if (ctx && gorc_ctx_deadline(ctx, &cd) && (deadline == 0 || cd < deadline))
        deadline = cd;
    return deadline;
}

/* Dial addr, watching ctx (NULL: none) while resolving and connecting. */
static int dial(gorc_conn **out, const char *addr, int type, int64_t timeout_ns, gorc_ctx *ctx)
{
    if (out == NULL || addr == NULL)
        return -EINVAL;
    *out = NULL;
    if (GORC__UNLIKELY(gorc__sim_on()) && gorc__sim_fault(GORC_SIM_FAULT_DIAL))
        return -EMFILE; /* an injected fault: out of descriptors */
    gorc_addr as[MAXADDRS];
    int n = gorc__resolve(as, MAXADDRS, addr, 0, false, ctx);
    int64_t deadline = dial_deadline(timeout_ns, ctx);
    int rc = n;
    for (int i = 0; i < n; i++) {
        int64_t d = partial_deadline(deadline, n - i);
        gorc__fd_cancel cx;
        int err = ctx ? watch(&cx, ctx) : 0;
        if (err)
            return err;
        if (d < 0)
            return -ETIMEDOUT;
        rc = dial_one(out, &as[i], type, d, ctx ? &cx : NULL);
        if (rc == 0)
            return 0;
    }
    return rc;
}

int gorc_tcp_dial(gorc_conn **out, const char *addr, int64_t timeout_ns)
{
    int rc = dial(out, addr, SOCK_STREAM, timeout_ns, NULL);
    if (rc == 0)
        tcp_defaults((*out)->fd.sysfd, 0);
    return rc;
}

int gorc_tcp_dial_ctx(gorc_conn **out, const char *addr, int64_t timeout_ns, gorc_ctx *ctx)
{
    if (ctx == NULL) {
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    int rc = dial(out, addr, SOCK_STREAM, timeout_ns, ctx);
    if (rc == 0)
        tcp_defaults((*out)->fd.sysfd, 0);
    return rc;
}

static int unix_dial(gorc_conn **out, const char *path, int64_t timeout_ns, gorc_ctx *ctx)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    gorc_addr a;
    int rc = gorc__unix_addr(&a, path);
    if (rc != 0)
        return rc;
    gorc__fd_cancel cx;
    int err = ctx ? watch(&cx, ctx) : 0;
    if (err)
        return err;
    if (GORC__UNLIKELY(gorc__sim_on()) && gorc__sim_fault(GORC_SIM_FAULT_DIAL))
        return -EMFILE; /* an injected fault: out of descriptors */
    int64_t deadline = dial_deadline(timeout_ns, ctx);
    if (deadline < 0)
        return -ETIMEDOUT;
    return dial_one(out, &a, SOCK_STREAM, deadline, ctx ? &cx : NULL);
}

int gorc_unix_dial(gorc_conn **out, const char *path, int64_t timeout_ns)
{
    return unix_dial(out, path, timeout_ns, NULL);
}

int gorc_unix_dial_ctx(gorc_conn **out, const char *path, int64_t timeout_ns, gorc_ctx *ctx)
{
    if (ctx == NULL) {
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    return unix_dial(out, path, timeout_ns, ctx);
}

/* ------------------------------------------------------------------------------------------
 * Listeners
 * ---------------------------------------------------------------------------------------- */

static int listener_wrap(gorc_listener **out, int s, int family, int64_t keepalive)
{
    gorc_listener *l = calloc(1, sizeof *l);
    if (l == NULL) {
        close(s);
        return -ENOMEM;
    }
    int rc = gorc__fd_init(&l->fd, s, GORC__FD_STREAM, AF_UNSPEC, false);
    if (rc != 0) {
        close(s);
        free(l);
        return rc;
    }
    atomic_init(&l->refs, 1);
    l->family = family;
    l->keepalive = keepalive;
    *out = l;
    return 0;
}

/* A simulated listening socket on a (simulation runs). */
static int listen_sim(gorc_listener **out, const gorc_addr *a, int backlog, int64_t keepalive)
{
    gorc__sep *e;
    int s = gorc__simnet_socket(&e, a->u.sa.sa_family, SOCK_STREAM);
    if (s < 0)
        return s;
    int rc = gorc__simnet_bind(e, a);
    if (rc == 0)
        rc = gorc__simnet_listen(e, backlog);
    gorc_listener *l = rc == 0 ? calloc(1, sizeof *l) : NULL;
    if (rc == 0 && l == NULL)
        rc = -ENOMEM;
    if (rc == 0)
        rc = gorc__fd_init_sim(&l->fd, s, GORC__FD_STREAM, e);
    if (rc != 0) {
        gorc__simnet_close(e);
        close(s);
        free(l);
        return rc;
    }
    atomic_init(&l->refs, 1);
    l->family = a->u.sa.sa_family;
    l->keepalive = keepalive;
    *out = l;
    return 0;
}

/* The address to listen on; *dual when it is the wildcard and both IPv6 and IPv4 are meant. */
static int listen_addr(gorc_addr *a, const char *addr, int family, bool *dual)
{
    gorc_addr as[MAXADDRS];
    int n = gorc__resolve(as, MAXADDRS, addr, family, true, NULL);
    if (n < 0)
        return n;
    int pick = 0;
    for (int i = 0; i < n && family == 0; i++)
        if (as[i].u.sa.sa_family == AF_INET) { /* Go prefers IPv4 for a host name */
            pick = i;
            break;
        }
    *a = as[pick];
    *dual = false;
    bool wild4 = a->u.sa.sa_family == AF_INET && a->u.in4.sin_addr.s_addr == htonl(INADDR_ANY);
    bool wild6 = a->u.sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&a->u.in6.sin6_addr);
    if (family == 0 && ((wild4 && addr[0] == ':') || wild6)) {
        uint16_t port = wild4 ? a->u.in4.sin_port : a->u.in6.sin6_port;
        memset(a, 0, sizeof *a);
        a->u.in6.sin6_family = AF_INET6;
        a->u.in6.sin6_port = port;
        a->u.in6.sin6_addr = in6addr_any;
        a->len = sizeof a->u.in6;
        *dual = true;
    }
    return 0;
}

/* The unspecified IPv4 address instead of a dual-stack one, for hosts without IPv6. */
static void fallback_v4(gorc_addr *a)
{
    uint16_t port = a->u.in6.sin6_port;
    memset(a, 0, sizeof *a);
    a->u.in4.sin_family = AF_INET;
    a->u.in4.sin_port = port;
    a->u.in4.sin_addr.s_addr = htonl(INADDR_ANY);
    a->len = sizeof a->u.in4;
}

static int bind_listen(int s, const gorc_addr *a, int backlog)
{
    if (bind(s, &a->u.sa, a->len) != 0)
        return -errno;
    if (listen(s, backlog > 0 ? backlog : 65535) != 0) /* the kernel caps it at somaxconn */
        return -errno;
    return 0;
}

static int tcp_socket(const gorc_addr *a, const gorc_listen_opts *o, bool dual)
{
    int family = a->u.sa.sa_family;
    int s = new_socket(family, SOCK_STREAM);
    if (s < 0)
        return s;
    int rc = 0;
    if (family == AF_INET6)
        rc = setopt(s, IPPROTO_IPV6, IPV6_V6ONLY, !dual && o->family == AF_INET6);
    if (rc == 0 && !o->no_reuseaddr)
        rc = setopt(s, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && o->reuseport)
        rc = setopt(s, SOL_SOCKET, SO_REUSEPORT, 1);
    if (rc == 0)
        rc = bind_listen(s, a, o->backlog);
    if (rc != 0) {
        close(s);
        return rc;
    }
    return s;
}

int gorc_tcp_listen(gorc_listener **out, const char *addr, const gorc_listen_opts *opts)
{
    if (out == NULL || addr == NULL)
        return -EINVAL;
    *out = NULL;
    gorc_listen_opts o = opts ? *opts : (gorc_listen_opts){0};
    gorc_addr a;
    bool dual;
    int rc = listen_addr(&a, addr, o.family, &dual);
    if (rc != 0)
        return rc;
    if (GORC__UNLIKELY(gorc__simnet_on()))
        return listen_sim(out, &a, o.backlog, o.keepalive);
    int s = tcp_socket(&a, &o, dual);
    if (s == -EAFNOSUPPORT && dual) {
        fallback_v4(&a);
        s = tcp_socket(&a, &o, false);
    }
    if (s < 0)
        return s;
    return listener_wrap(out, s, a.u.sa.sa_family, o.keepalive);
}

int gorc_unix_listen(gorc_listener **out, const char *path, const gorc_listen_opts *opts)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    gorc_addr a;
    int rc = gorc__unix_addr(&a, path);
    if (rc != 0)
        return rc;
    if (GORC__UNLIKELY(gorc__simnet_on())) /* no file: the run's network has the name */
        return listen_sim(out, &a, opts ? opts->backlog : 0, -1);
    int s = new_socket(AF_UNIX, SOCK_STREAM);
    if (s < 0)
        return s;
    if (bind(s, &a.u.sa, a.len) != 0) {
        rc = -errno;
        close(s);
        return rc;
    }
    bool file = path[0] != '@';
    char *copy = NULL;
    int backlog = opts && opts->backlog > 0 ? opts->backlog : 65535;
    if (listen(s, backlog) != 0)
        rc = -errno;
    else if (file && (copy = strdup(path)) == NULL)
        rc = -ENOMEM;
    if (rc == 0)
        rc = listener_wrap(out, s, AF_UNIX, -1); /* closes s on failure */
    else
        close(s);
    if (rc != 0) {
        if (file)
            unlink(path);
        free(copy);
        return rc;
    }
    (*out)->unlink_path = copy;
    return 0;
}

/* A listening stream socket? Then its family, else 0. */
static int listening_family(int fd)
{
    int type = 0, acc = 0, family = 0;
    if (getopt_int(fd, SOL_SOCKET, SO_TYPE, &type) != 0 || type != SOCK_STREAM)
        return 0;
    if (getopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc) != 0 || !acc)
        return 0;
    getopt_int(fd, SOL_SOCKET, SO_DOMAIN, &family);
    return family ? family : AF_UNSPEC;
}

int gorc_listener_from_fd(gorc_listener **out, int fd)
{
    if (out == NULL || fd < 0) {
        if (fd >= 0)
            close(fd); /* the listener owns fd even on failure */
        return -EINVAL;
    }
    *out = NULL;
    int type = 0;
    int rc = getopt_int(fd, SOL_SOCKET, SO_TYPE, &type);
    int family = rc == 0 ? listening_family(fd) : 0;
    if (rc == 0 && family == 0)
        rc = -EINVAL;
    if (rc == 0)
        rc = make_nonblocking(fd);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    return listener_wrap(out, fd, family, family == AF_UNIX ? -1 : 0);
}

int gorc_listeners_from_systemd(gorc_listener **out, int max, bool unset_env)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    long p = pid ? strtol(pid, NULL, 10) : 0, n = fds ? strtol(fds, NULL, 10) : 0;
    if (unset_env) {
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
    }
    if (p != (long)getpid() || n <= 0 || n > 65536)
        return 0;
    for (int i = 0; i < n && i < max && out; i++) {
        out[i] = NULL;
        if (listening_family(3 + i) != 0)
            gorc_listener_from_fd(&out[i], 3 + i);
    }
    return (int)n;
}

static int accept_sim(gorc_listener *l, gorc_conn **out, gorc__fd_cancel *cx)
{
    if (gorc__sim_fault(GORC_SIM_FAULT_ACCEPT))
        return -EMFILE; /* an injected fault: out of descriptors */
    int s;
    gorc__sep *e;
    int rc = gorc__fd_accept_sim(&l->fd, &s, &e, cx);
    if (rc != 0)
        return rc;
    return conn_wrap_sim(out, s, e, GORC__FD_STREAM, l->family);
}

static int accept_conn(gorc_listener *l, gorc_conn **out, gorc__fd_cancel *cx)
{
    if (GORC__UNLIKELY(l->fd.sim))
        return accept_sim(l, out, cx);
    int s;
    int rc = gorc__fd_accept(&l->fd, &s, NULL, NULL, cx);
    if (rc != 0)
        return rc;
    if (l->family == AF_INET || l->family == AF_INET6)
        tcp_defaults(s, l->keepalive);
    return conn_wrap(out, s, GORC__FD_STREAM, l->family, true);
}

/* A layered listener: accept from the inner one, then let the layer wrap the connection. */
static int layered_accept(gorc_listener *l, gorc_conn **out, gorc_ctx *ctx)
{
    gorc_conn *raw;
    int rc =
        ctx ? gorc_listener_accept_ctx(l->inner, &raw, ctx) : gorc_listener_accept(l->inner, &raw);
    if (rc != 0)
        return rc;
    rc = l->ops->wrap(l->self, raw, out); /* takes raw over, also on failure */
    if (rc != 0)
        *out = NULL;
    return rc;
}

int gorc_listener_accept(gorc_listener *l, gorc_conn **out)
{
    if (l == NULL || out == NULL)
        return -EINVAL;
    *out = NULL;
    if (l->ops)
        return layered_accept(l, out, NULL);
    return accept_conn(l, out, NULL);
}

int gorc_listener_accept_ctx(gorc_listener *l, gorc_conn **out, gorc_ctx *ctx)
{
    if (out)
        *out = NULL;
    if (l == NULL || out == NULL || ctx == NULL)
        return -EINVAL;
    if (l->ops)
        return layered_accept(l, out, ctx);
    gorc__fd_cancel cx;
    int err = watch(&cx, ctx);
    return err ? err : accept_conn(l, out, &cx);
}

/* The plain listener at the bottom of l. */
static gorc_listener *lbase(gorc_listener *l)
{
    while (l->ops)
        l = l->inner;
    return l;
}

int gorc_listener_set_deadline(gorc_listener *l, int64_t t)
{
    return l ? gorc__fd_set_deadline(&lbase(l)->fd, t, 'r') : -EINVAL;
}

int gorc_listener_addr(gorc_listener *l, char *buf, size_t n)
{
    return l ? sock_addr(&lbase(l)->fd, false, buf, n) : -EINVAL;
}

int gorc_listener_fd(gorc_listener *l)
{
    if (l == NULL)
        return -EINVAL;
    l = lbase(l);
    if (!gorc__fd_incref(&l->fd))
        return GORC_ENETCLOSED;
    int fd = l->fd.sysfd;
    gorc__fd_decref(&l->fd);
    return fd;
}

static int listener_close(gorc_listener *l)
{
    if (l->ops)
        return listener_close(l->inner);
    int rc = gorc__fd_close(&l->fd);
    if (rc == 0 && l->unlink_path) {
        unlink(l->unlink_path);
        free(l->unlink_path);
        l->unlink_path = NULL;
    }
    return rc;
}

gorc_listener *gorc_listener_retain(gorc_listener *l)
{
    if (l)
        atomic_fetch_add(&l->refs, 1);
    return l;
}

void gorc_listener_release(gorc_listener *l)
{
    if (l == NULL || atomic_fetch_sub(&l->refs, 1) != 1)
        return;
    if (l->ops) {
        gorc_listener_release(l->inner);
        if (l->ops->free)
            l->ops->free(l->self);
        free(l);
        return;
    }
    listener_close(l);
    free(l);
}

int gorc_listener_layer(gorc_listener **out, gorc_listener *inner, const gorc_listener_ops *ops,
                        void *self)
{
    if (out)
        *out = NULL;
    if (out == NULL || inner == NULL || ops == NULL || ops->wrap == NULL) {
        if (inner)
            gorc_listener_close(inner);
        return -EINVAL;
    }
    gorc_listener *l = calloc(1, sizeof *l);
    if (l == NULL) {
        gorc_listener_close(inner);
        return -ENOMEM;
    }
    atomic_init(&l->refs, 1);
    l->family = inner->family;
    l->ops = ops;
    l->self = self;
    l->inner = inner;
    *out = l;
    return 0;
}

int gorc_listener_close(gorc_listener *l)
{
    if (l == NULL)
        return -EINVAL;
    int rc = listener_close(l);
    gorc_listener_release(l);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * UDP
 * ---------------------------------------------------------------------------------------- */

int gorc_udp_listen(gorc_conn **out, const char *addr)
{
    if (out == NULL || addr == NULL)
        return -EINVAL;
    *out = NULL;
    gorc_addr a;
    bool dual;
    int rc = listen_addr(&a, addr, 0, &dual);
    if (rc != 0)
        return rc;
    if (GORC__UNLIKELY(gorc__simnet_on())) {
        gorc__sep *e;
        int s = gorc__simnet_socket(&e, a.u.sa.sa_family, SOCK_DGRAM);
        if (s < 0)
            return s;
        rc = gorc__simnet_bind(e, &a);
        if (rc != 0) {
            gorc__simnet_close(e);
            close(s);
            return rc;
        }
        return conn_wrap_sim(out, s, e, GORC__FD_DGRAM, a.u.sa.sa_family);
    }
    int s = new_socket(a.u.sa.sa_family, SOCK_DGRAM);
    if (s == -EAFNOSUPPORT && dual) {
        fallback_v4(&a);
        dual = false;
        s = new_socket(AF_INET, SOCK_DGRAM);
    }
    if (s < 0)
        return s;
    if (a.u.sa.sa_family == AF_INET6)
        rc = setopt(s, IPPROTO_IPV6, IPV6_V6ONLY, 0);
    if (rc == 0 && bind(s, &a.u.sa, a.len) != 0)
        rc = -errno;
    if (rc != 0) {
        close(s);
        return rc;
    }
    return conn_wrap(out, s, GORC__FD_DGRAM, a.u.sa.sa_family, true);
}

int gorc_udp_dial(gorc_conn **out, const char *addr)
{
    return dial(out, addr, SOCK_DGRAM, 0, NULL);
}

static ssize_t read_from(gorc_conn *c, void *buf, size_t n, gorc_addr *from, gorc__fd_cancel *cx)
{
    rearm(c, 'r');
    if (from == NULL)
        return gorc__fd_recvfrom(&c->fd, buf, n, NULL, NULL, cx);
    memset(from, 0, sizeof *from);
    from->len = sizeof from->u;
    ssize_t r = gorc__fd_recvfrom(&c->fd, buf, n, &from->u.sa, &from->len, cx);
    if (r >= 0)
        gorc__unmap_v4(from);
    return r;
}

ssize_t gorc_conn_read_from(gorc_conn *c, void *buf, size_t n, gorc_addr *from)
{
    if (c == NULL || LAYERED(c) || (buf == NULL && n > 0))
        return -EINVAL;
    return read_from(c, buf, n, from, NULL);
}

ssize_t gorc_conn_read_from_ctx(gorc_conn *c, void *buf, size_t n, gorc_addr *from, gorc_ctx *ctx)
{
    if (c == NULL || LAYERED(c) || ctx == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    gorc__fd_cancel cx;
    int err = watch(&cx, ctx);
    return err ? err : read_from(c, buf, n, from, &cx);
}

static ssize_t write_to(gorc_conn *c, const void *buf, size_t n, const gorc_addr *to,
                        gorc__fd_cancel *cx)
{
    gorc_addr m;
    if (c->family == AF_INET6 && to->u.sa.sa_family == AF_INET) {
        /* A dual-stack socket reaches IPv4 peers through IPv4-mapped addresses. */
        memset(&m, 0, sizeof m);
        m.u.in6.sin6_family = AF_INET6;
        m.u.in6.sin6_port = to->u.in4.sin_port;
        m.u.in6.sin6_addr.s6_addr[10] = 0xff;
        m.u.in6.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&m.u.in6.sin6_addr.s6_addr[12], &to->u.in4.sin_addr, 4);
        m.len = sizeof m.u.in6;
        to = &m;
    }
    rearm(c, 'w');
    return gorc__fd_sendto(&c->fd, buf, n, &to->u.sa, to->len, cx);
}

ssize_t gorc_conn_write_to(gorc_conn *c, const void *buf, size_t n, const gorc_addr *to)
{
    if (c == NULL || LAYERED(c) || to == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    return write_to(c, buf, n, to, NULL);
}

ssize_t gorc_conn_write_to_ctx(gorc_conn *c, const void *buf, size_t n, const gorc_addr *to,
                               gorc_ctx *ctx)
{
    if (c == NULL || LAYERED(c) || to == NULL || ctx == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    gorc__fd_cancel cx;
    int err = watch(&cx, ctx);
    return err ? err : write_to(c, buf, n, to, &cx);
}

/* ------------------------------------------------------------------------------------------
 * Files, through gorc_blocking
 * ---------------------------------------------------------------------------------------- */

typedef struct filereq {
    int fd;
    const char *path;
    int flags;
    mode_t mode;
    char *buf;
    size_t n;
    int64_t off;
    ssize_t r;
} filereq;

static void *run_open(void *arg)
{
    filereq *q = arg;
    do
        q->r = open(q->path, q->flags | O_CLOEXEC, q->mode);
    while (q->r < 0 && errno == EINTR);
    if (q->r < 0)
        q->r = -errno;
    return NULL;
}

static void *run_read(void *arg)
{
    filereq *q = arg;
    do
        q->r = q->off >= 0 ? pread(q->fd, q->buf, q->n, (off_t)q->off) : read(q->fd, q->buf, q->n);
    while (q->r < 0 && errno == EINTR);
    if (q->r < 0)
        q->r = -errno;
    return NULL;
}

static void *run_write(void *arg)
{
    filereq *q = arg;
    size_t done = 0;
    while (done < q->n) {
        ssize_t r = q->off >= 0 ? pwrite(q->fd, q->buf + done, q->n - done, (off_t)(q->off + done))
                                : write(q->fd, q->buf + done, q->n - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            q->r = r < 0 ? -errno : -EIO;
            return NULL;
        }
        done += (size_t)r;
    }
    q->r = (ssize_t)done;
    return NULL;
}

int gorc_file_open(const char *path, int flags, mode_t mode)
{
    if (path == NULL)
        return -EINVAL;
    filereq q = {.path = path, .flags = flags, .mode = mode};
    gorc_blocking(run_open, &q);
    return (int)q.r;
}

ssize_t gorc_file_read(int fd, void *buf, size_t n, int64_t off)
{
    if (fd < 0 || (buf == NULL && n > 0))
        return -EINVAL;
    filereq q = {.fd = fd, .buf = buf, .n = n, .off = off};
    gorc_blocking(run_read, &q);
    return q.r;
}

ssize_t gorc_file_write(int fd, const void *buf, size_t n, int64_t off)
{
    if (fd < 0 || (buf == NULL && n > 0))
        return -EINVAL;
    filereq q = {.fd = fd, .buf = (char *)buf, .n = n, .off = off};
    gorc_blocking(run_write, &q);
    return q.r;
}
