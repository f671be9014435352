/*
 * conn.c - TLS connections: OpenSSL's non-blocking sessions on goroutines and the poller
 * (Go's tls.Conn, tls.NewListener, tls.Dial), and the HTTP client's dial hook.
 *
 * A TLS connection is a layered gorc_conn (gorc_net.h) over a plain TCP connection, the
 * "inner" one. OpenSSL reads and writes the socket itself, through a small BIO of ours that
 * calls recv / send(MSG_NOSIGNAL) on the non-blocking descriptor (so a write to a closed peer
 * is -EPIPE, never SIGPIPE) and reports EAGAIN as "retry" (on a simulated socket of a
 * simulation run it calls gorc_conn_raw_recv / _send instead, and kTLS stays off). Every OpenSSL
 * call runs inside a gorc_conn_raw_read / _raw_write callback on the inner connection (Go's
 * RawConn): when OpenSSL says SSL_ERROR_WANT_READ (WANT_WRITE), the callback returns false and the
 * goroutine parks on the poller for that direction, with the inner connection's deadlines and the
 * call's context in force, then calls OpenSSL again. So a handshake, a read or a write that
 * would block parks a goroutine, never a thread, and deadlines and contexts bound handshakes
 * as they bound I/O. Why not a memory BIO pair: it costs a copy each way and a buffer per
 * connection, and an idle connection would hold the buffer; with the socket BIO and
 * SSL_MODE_RELEASE_BUFFERS an idle connection holds no record buffer at all.
 *
 * Locks. An SSL object takes one call at a time, while Go lets one goroutine read a tls.Conn
 * while another writes it (HTTP/2 does). So each connection has a mutex, mu, held around each
 * OpenSSL call and never while parked: a reader waiting for data does not hold it, and a
 * writer can go on meanwhile. Readers exclude each other, and writers each other, with the
 * inner connection's read and write locks, which raw I/O holds for the whole call. The
 * handshake takes hs (a goroutine mutex) so that only one goroutine drives it; the others
 * wait for its result. OpenSSL's error queue is per thread and a goroutine may wake on
 * another thread, so the queue is cleared before each call and read right after it, under mu,
 * with no parking in between.
 *
 * Errors. A failed handshake is permanent (Go's handshakeErr), and so is a failed write that
 * may have left part of a record behind (Go's permanentError); an expired read deadline is
 * not: records are kept whole by OpenSSL, and the next read picks up where it stopped. The
 * handshake's failures are sorted into the GORC_ETLS* codes from the verification result and
 * OpenSSL's reason codes.
 *
 * The handshake is lazy: accept only wraps the connection (no OpenSSL object yet: SSL_new
 * runs in the connection's own goroutine, at its first read, write or gorc_conn_handshake).
 *
 * Idle waits. The HTTP server waits for the next request with gorc__conn_wait_read and
 * watches a client during a handler with gorc__conn_peek_wait. For TLS both are an SSL_peek
 * of one byte: it decrypts whatever record arrives and keeps the plaintext in OpenSSL for the
 * next read, consuming nothing; a close_notify is end of stream, and a post-handshake message
 * (a session ticket, a key update) is processed and the wait goes on.
 *
 * sendfile: with kernel TLS in force for sending (kTLS), SSL_sendfile sends the file without
 * copying; otherwise the file is read in 16 KiB pieces (as a blocking call) and written.
 */
#include "tls/tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef struct tconn {
    gorc_conn *inner; /* the plain connection (the layered one holds its reference) */
    gorc_tls_config *cfg;
    gorc__tls_certset *set; /* server: the certificates ssl was made from */
    int fd;                 /* inner's descriptor */
    pthread_mutex_t mu;     /* every call on ssl, and sys_err, werr */
    SSL *ssl;               /* made by the first handshake; NULL before */
    gorc_mutex hs;          /* one goroutine drives the handshake */
    _Atomic int state;      /* 0 handshake to do, 1 done, else its (permanent) error */
    int sys_err;            /* errno the BIO met in the current call (mu) */
    int werr;               /* a write failed mid-record: every later write fails so (mu) */
    bool server;
    bool sim; /* inner is a simulated socket: the BIO goes through gorc_conn_raw_recv / _send */
    /* client: the ALPN list (wire format) to offer when the configuration names no protocol,
     * or NULL; an HTTP client's literal, used only during dial()'s handshake. */
    const char *http_alpn;
    bool ktls;      /* the socket BIO (kTLS needs OpenSSL's own) */
    char *name;     /* client: the server name */
    char proto[32]; /* ALPN result ("" none), set once by the handshake */
} tconn;

/* ------------------------------------------------------------------------------------------
 * The BIO: recv / send on the non-blocking socket
 *
 * In a simulation run the inner connection may be a simulated socket (docs/simulation.md),
 * whose descriptor is an eventfd standing for it: then the BIO reads and writes through
 * gorc_conn_raw_recv / _send, which reach the simulated socket as fd.c's own reads do. The
 * raw callbacks around OpenSSL's calls, and so the parking on WANT_READ / WANT_WRITE, are the
 * same; outside a run the cost is the test of t->sim.
 * ---------------------------------------------------------------------------------------- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

/* A simulated socket's call (gorc_conn_raw_recv / _send: count or -errno) as a system call's
 * result, so that both share the code after it. */
static ssize_t sim_result(ssize_t r)
{
    if (r >= 0)
        return r;
    errno = (int)-r;
    return -1;
}

static int bio_read(BIO *b, char *buf, size_t n, size_t *got)
{
    tconn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t r;
    if (__builtin_expect(t->sim, 0))
        r = sim_result(gorc_conn_raw_recv(t->inner, buf, n));
    else
        do
            r = recv(t->fd, buf, n, 0);
        while (r < 0 && errno == EINTR);
    if (r > 0) {
        *got = (size_t)r;
        return 1;
    }
    *got = 0;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_read(b);
    else if (r < 0)
        t->sys_err = errno;
    return 0;
}

static int bio_write(BIO *b, const char *buf, size_t n, size_t *put)
{
    tconn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t r;
    if (__builtin_expect(t->sim, 0))
        r = sim_result(gorc_conn_raw_send(t->inner, buf, n));
    else
        do
            r = send(t->fd, buf, n, MSG_NOSIGNAL);
        while (r < 0 && errno == EINTR);
    if (r >= 0) {
        *put = (size_t)r;
        return 1;
    }
    *put = 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        BIO_set_retry_write(b);
    else
        t->sys_err = errno;
    return 0;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void bio_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gorc");
    if (m && BIO_meth_set_read_ex(m, bio_read) && BIO_meth_set_write_ex(m, bio_write) &&
        BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create))
        bio_method = m;
}

/* SIGPIPE is blocked around the socket BIO's writes (the kTLS path: OpenSSL's BIO writes with
 * write(2)); one it caused is consumed before the mask is restored. */
typedef struct nosig {
    sigset_t old;
    bool on;
} nosig;

static void nosig_begin(tconn *t, nosig *s)
{
    s->on = t->ktls;
    if (!s->on)
        return;
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &s->old);
}

static void nosig_end(nosig *s)
{
    if (!s->on)
        return;
    sigset_t pipe, pending;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) && !sigismember(&s->old, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &s->old, NULL);
}

/* ------------------------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------------------------- */

static int verify_err(long v)
{
    switch (v) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return GORC_ETLSEXPIRED;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return GORC_ETLSHOSTNAME;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
        return GORC_ETLSUNKNOWNCA;
    default:
        return GORC_ETLSHANDSHAKE;
    }
}

/* The error of a failed call (e: SSL_get_error), from the thread's error queue, which is
 * drained. Under mu, right after the call. */
static int ssl_err(tconn *t, int e, bool handshake)
{
    int rc = 0;
    unsigned long q;
    while ((q = ERR_get_error()) != 0) {
        if (rc != 0 || ERR_GET_LIB(q) != ERR_LIB_SSL)
            continue;
        switch (ERR_GET_REASON(q)) {
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_NO_PROTOCOLS_AVAILABLE:
        case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        case SSL_R_VERSION_TOO_LOW:
        case SSL_R_VERSION_TOO_HIGH:
        case SSL_R_WRONG_SSL_VERSION:
            rc = GORC_ETLSVERSION;
            break;
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
            rc = verify_err(SSL_get_verify_result(t->ssl));
            break;
        case SSL_R_UNEXPECTED_EOF_WHILE_READING:
            rc = GORC_EUNEXPECTEDEOF;
            break;
        default:
            rc = GORC_ETLSHANDSHAKE;
        }
    }
    if (rc == 0 && e == SSL_ERROR_SYSCALL)
        rc = t->sys_err ? -t->sys_err : handshake ? GORC_EUNEXPECTEDEOF : 0;
    else if (rc == 0)
        rc = GORC_ETLSHANDSHAKE;
    if (rc == -EBADF)
        rc = GORC_ENETCLOSED;
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * The handshake
 * ---------------------------------------------------------------------------------------- */

/* Empty this thread's OpenSSL error queue. ERR_clear_error walks all 16 slots even when the
 * queue is empty (it was 5% of an HTTPS keep-alive server's CPU), and the queue is almost
 * always empty here, so look first. */
static void clear_errors(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

static void lock(tconn *t)
{
    pthread_mutex_lock(&t->mu);
    clear_errors();
    t->sys_err = 0;
}

static void unlock(tconn *t)
{
    clear_errors();
    pthread_mutex_unlock(&t->mu);
}

/* The OpenSSL object, made in the connection's own goroutine at its first handshake. */
static int setup(tconn *t)
{
    pthread_once(&bio_once, bio_init);
    if (bio_method == NULL)
        return -ENOMEM;
    SSL_CTX *ctx;
    if (t->server) {
        t->set = gorc__tls_certset_get(t->cfg);
        ctx = t->set->e[0].ctx;
    } else {
        ctx = t->cfg->ctx;
    }
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) {
        ERR_clear_error();
        return -ENOMEM;
    }
    if (t->ktls) {
        SSL_set_fd(ssl, t->fd); /* OpenSSL's socket BIO: the one it can switch to kTLS */
    } else {
        BIO *b = BIO_new(bio_method);
        if (b == NULL) {
            SSL_free(ssl);
            ERR_clear_error();
            return -ENOMEM;
        }
        BIO_set_data(b, t);
        SSL_set_bio(ssl, b, b);
    }
    int rc = 0;
    if (t->server) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
        SSL_set_app_data(ssl, t->name); /* the session cache's key */
        unsigned char ip[16];
        bool is_ip = t->name && (inet_pton(AF_INET, t->name, ip) == 1 ||
                                 inet_pton(AF_INET6, t->name, ip) == 1);
        if (t->name && !is_ip && SSL_set_tlsext_host_name(ssl, t->name) != 1)
            rc = -ENOMEM;
        if (rc == 0 && t->name && SSL_get_verify_mode(ssl) != SSL_VERIFY_NONE) {
            if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), t->name) != 1
                      : SSL_set1_host(ssl, t->name) != 1)
                rc = -ENOMEM;
        }
        if (rc == 0 && t->http_alpn && t->http_alpn[0] && t->cfg->alpn == NULL &&
            SSL_set_alpn_protos(ssl, (const unsigned char *)t->http_alpn,
                                (unsigned)strlen(t->http_alpn)) != 0)
            rc = -ENOMEM;
        SSL_SESSION *sess = rc == 0 && t->name ? gorc__tls_session_get(t->cfg, t->name) : NULL;
        if (sess) {
            SSL_set_session(ssl, sess);
            SSL_SESSION_free(sess);
        }
    }
    ERR_clear_error();
    if (rc != 0) {
        SSL_free(ssl);
        return rc;
    }
    pthread_mutex_lock(&t->mu);
    t->ssl = ssl;
    pthread_mutex_unlock(&t->mu);
    return 0;
}

typedef struct hsio {
    tconn *t;
    int waiting; /* the direction the raw call waits on */
    int want;    /* after the call: 'r', 'w' or 0 (finished, rc says how) */
    int rc;
} hsio;

static bool hs_fn(int fd, void *arg)
{
    (void)fd;
    hsio *q = arg;
    tconn *t = q->t;
    nosig ns;
    lock(t);
    nosig_begin(t, &ns);
    int r = SSL_do_handshake(t->ssl);
    nosig_end(&ns);
    q->want = 0;
    q->rc = 0;
    if (r != 1) {
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            q->want = 'r';
        else if (e == SSL_ERROR_WANT_WRITE)
            q->want = 'w';
        else
            q->rc = ssl_err(t, e, true);
    } else {
        const unsigned char *p;
        unsigned int n;
        SSL_get0_alpn_selected(t->ssl, &p, &n);
        if (p && n < sizeof t->proto) {
            memcpy(t->proto, p, n);
            t->proto[n] = 0;
        }
    }
    unlock(t);
    return q->want != q->waiting;
}

/* Drive the handshake, waiting in whichever direction OpenSSL asks for. */
static int run_handshake(tconn *t, gorc_ctx *ctx)
{
    int rc = t->ssl ? 0 : setup(t);
    if (rc != 0)
        return rc;
    gorc_ctx *tctx = NULL;
    if (t->cfg->hs_timeout > 0) {
        rc = gorc_ctx_with_timeout(&tctx, ctx ? ctx : gorc_ctx_background(), t->cfg->hs_timeout, 0);
        if (rc != 0)
            return rc;
        ctx = tctx;
    }
    hsio q = {.t = t, .want = 'r'};
    for (;;) {
        q.waiting = q.want;
        rc = q.waiting == 'w' ? gorc_conn_raw_write(t->inner, hs_fn, &q, ctx)
                              : gorc_conn_raw_read(t->inner, hs_fn, &q, ctx);
        if (rc != 0 || q.want == 0) {
            rc = rc ? rc : q.rc;
            break;
        }
    }
    if (tctx) {
        gorc_ctx_cancel(tctx);
        gorc_ctx_release(tctx);
    }
    return rc;
}

static int handshake(tconn *t, gorc_ctx *ctx)
{
    int st = atomic_load_explicit(&t->state, memory_order_acquire);
    if (__builtin_expect(st == 1, 1))
        return 0;
    if (st != 0)
        return st;
    gorc_mutex_lock(&t->hs);
    st = atomic_load(&t->state);
    if (st == 0) {
        int rc = run_handshake(t, ctx);
        st = rc == 0 ? 1 : rc;
        atomic_store_explicit(&t->state, st, memory_order_release);
    }
    gorc_mutex_unlock(&t->hs);
    return st == 1 ? 0 : st;
}

/* ------------------------------------------------------------------------------------------
 * Reading and writing
 * ---------------------------------------------------------------------------------------- */

typedef struct rio {
    tconn *t;
    void *buf;
    size_t n, got;
    bool peek;
    bool want_write;
    int rc;
} rio;

static bool read_fn(int fd, void *arg)
{
    (void)fd;
    rio *q = arg;
    tconn *t = q->t;
    nosig ns;
    lock(t);
    nosig_begin(t, &ns);
    size_t got = 0;
    int r =
        q->peek ? SSL_peek_ex(t->ssl, q->buf, q->n, &got) : SSL_read_ex(t->ssl, q->buf, q->n, &got);
    nosig_end(&ns);
    bool done = true;
    q->rc = 0;
    q->got = got;
    if (r != 1) {
        q->got = 0;
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            done = false;
        else if (e == SSL_ERROR_WANT_WRITE)
            q->want_write = true;
        else if (e != SSL_ERROR_ZERO_RETURN)
            q->rc = ssl_err(t, e, false);
    }
    unlock(t);
    return done;
}

/* Wait until the descriptor may be writable (a read that must write first). */
static bool wait_once(int fd, void *arg)
{
    (void)fd;
    bool *first = arg;
    bool done = !*first;
    *first = false;
    return done;
}

static ssize_t do_read(tconn *t, void *buf, size_t n, bool peek, gorc_ctx *ctx)
{
    int rc = handshake(t, ctx);
    if (rc != 0)
        return rc;
    rio q = {.t = t, .buf = buf, .n = n, .peek = peek};
    for (;;) {
        q.want_write = false;
        rc = gorc_conn_raw_read(t->inner, read_fn, &q, ctx);
        if (rc != 0)
            return rc;
        if (!q.want_write)
            return q.rc ? q.rc : (ssize_t)q.got;
        bool first = true;
        if ((rc = gorc_conn_raw_write(t->inner, wait_once, &first, ctx)) != 0)
            return rc;
    }
}

static ssize_t t_read(void *self, void *buf, size_t n, gorc_ctx *ctx)
{
    if (n == 0) {
        int rc = handshake(self, ctx);
        return rc ? rc : 0;
    }
    return do_read(self, buf, n, false, ctx);
}

static int t_wait_readable(void *self)
{
    char b;
    ssize_t r = do_read(self, &b, 1, true, NULL);
    return r < 0 ? (int)r : r > 0;
}

typedef struct wio {
    tconn *t;
    const char *buf;
    size_t n, done;
    bool all;
    bool want_read;
    bool pending; /* OpenSSL holds part of a record (it said WANT_WRITE) */
    int rc;
} wio;

static bool write_fn(int fd, void *arg)
{
    (void)fd;
    wio *q = arg;
    tconn *t = q->t;
    nosig ns;
    lock(t);
    nosig_begin(t, &ns);
    bool done = true;
    q->rc = t->werr;
    while (q->rc == 0 && q->done < q->n) {
        size_t w = 0;
        int r = SSL_write_ex(t->ssl, q->buf + q->done, q->n - q->done, &w);
        if (r == 1) {
            q->pending = false;
            q->done += w;
            if (!q->all)
                break;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE) {
            q->pending = true;
            done = false;
        } else if (e == SSL_ERROR_WANT_READ) {
            q->want_read = true;
        } else {
            q->rc = t->werr = ssl_err(t, e, false);
            if (q->rc == 0)
                q->rc = t->werr = -EPIPE;
        }
        break;
    }
    nosig_end(&ns);
    unlock(t);
    return done;
}

static ssize_t t_write(void *self, const void *buf, size_t n, bool all, gorc_ctx *ctx,
                       size_t *written)
{
    tconn *t = self;
    *written = 0;
    int rc = handshake(t, ctx);
    if (rc != 0)
        return rc;
    wio q = {.t = t, .buf = buf, .n = n, .all = all};
    for (;;) {
        q.want_read = false;
        rc = gorc_conn_raw_write(t->inner, write_fn, &q, ctx);
        *written = q.done;
        if (rc != 0) {
            if (q.pending) { /* part of a record is out: the stream cannot go on */
                pthread_mutex_lock(&t->mu);
                t->werr = rc;
                pthread_mutex_unlock(&t->mu);
            }
            return rc;
        }
        if (q.rc != 0)
            return q.rc;
        if (!q.want_read)
            return (ssize_t)q.done;
        bool first = true;
        if ((rc = gorc_conn_raw_read(t->inner, wait_once, &first, ctx)) != 0)
            return rc;
    }
}

/* ------------------------------------------------------------------------------------------
 * sendfile
 * ---------------------------------------------------------------------------------------- */

typedef struct sfio {
    tconn *t;
    int file;
    int64_t off;
    size_t n, done;
    int rc;
} sfio;

static bool sendfile_fn(int fd, void *arg)
{
    (void)fd;
    sfio *q = arg;
    tconn *t = q->t;
    nosig ns;
    lock(t);
    nosig_begin(t, &ns);
    bool done = true;
    q->rc = t->werr;
    while (q->rc == 0 && q->done < q->n) {
        size_t want = q->n - q->done > (1u << 30) ? (1u << 30) : q->n - q->done;
        ossl_ssize_t r = SSL_sendfile(t->ssl, q->file, (off_t)(q->off + (int64_t)q->done), want, 0);
        if (r > 0) {
            q->done += (size_t)r;
            continue;
        }
        int e = SSL_get_error(t->ssl, (int)r);
        if (e == SSL_ERROR_WANT_WRITE)
            done = false;
        else {
            int er = ssl_err(t, e, false);
            q->rc = t->werr = er ? er : -EIO;
        }
        break;
    }
    nosig_end(&ns);
    unlock(t);
    return done;
}

static bool ktls_send(tconn *t)
{
    bool on = false;
#ifndef OPENSSL_NO_KTLS
    pthread_mutex_lock(&t->mu);
    on = t->ssl && BIO_get_ktls_send(SSL_get_wbio(t->ssl));
    pthread_mutex_unlock(&t->mu);
#endif
    return on;
}

static ssize_t t_sendfile(void *self, int file, int64_t off, size_t n, gorc_ctx *ctx, size_t *sent)
{
    tconn *t = self;
    *sent = 0;
    int rc = handshake(t, ctx);
    if (rc != 0)
        return rc;
    if (ktls_send(t)) {
        sfio q = {.t = t, .file = file, .off = off, .n = n};
        rc = gorc_conn_raw_write(t->inner, sendfile_fn, &q, ctx);
        *sent = q.done;
        return rc ? rc : q.rc ? q.rc : (ssize_t)n;
    }
    enum { CHUNK = 16384 }; /* one full TLS record per write */
    char *buf = malloc(n < CHUNK ? (n ? n : 1) : CHUNK);
    if (buf == NULL)
        return -ENOMEM;
    ssize_t r = 0;
    while (*sent < n) {
        size_t want = n - *sent < CHUNK ? n - *sent : CHUNK;
        ssize_t k = gorc_file_read(file, buf, want, off + (int64_t)*sent);
        if (k <= 0) {
            r = k < 0 ? k : -EIO;
            break;
        }
        size_t w = 0;
        r = t_write(t, buf, (size_t)k, true, ctx, &w);
        *sent += w;
        if (r < 0)
            break;
    }
    free(buf);
    return r < 0 ? r : (ssize_t)n;
}

/* ------------------------------------------------------------------------------------------
 * The rest of the ops, and making connections
 * ---------------------------------------------------------------------------------------- */

static int t_handshake(void *self, gorc_ctx *ctx)
{
    return handshake(self, ctx);
}

static const char *t_protocol(void *self)
{
    tconn *t = self;
    return atomic_load_explicit(&t->state, memory_order_acquire) == 1 ? t->proto : "";
}

/* Close: a close_notify if it can go out at once (Go's Close sends one too); never waits. */
static void t_close(void *self)
{
    tconn *t = self;
    if (atomic_load(&t->state) != 1 || pthread_mutex_trylock(&t->mu) != 0)
        return;
    ERR_clear_error();
    if (t->werr == 0) {
        nosig ns;
        nosig_begin(t, &ns);
        SSL_shutdown(t->ssl);
        nosig_end(&ns);
    }
    unlock(t);
}

static void t_free(void *self)
{
    tconn *t = self;
    SSL_free(t->ssl);
    ERR_clear_error();
    gorc__tls_certset_put(t->set);
    gorc_tls_config_free(t->cfg);
    pthread_mutex_destroy(&t->mu);
    free(t->name);
    free(t);
}

static const gorc_conn_ops tls_ops = {
    .read = t_read,
    .write = t_write,
    .handshake = t_handshake,
    .protocol = t_protocol,
    .wait_readable = t_wait_readable,
    .sendfile = t_sendfile,
    .close = t_close,
    .free = t_free,
};

static int wrap(gorc_conn **out, gorc_conn *inner, gorc_tls_config *cfg, const char *name,
                const char *http_alpn)
{
    tconn *t = calloc(1, sizeof *t);
    int fd = gorc_conn_fd(inner);
    if (t == NULL || fd < 0 || (name && (t->name = strdup(name)) == NULL)) {
        free(t ? t->name : NULL);
        free(t);
        gorc_conn_close(inner);
        return fd < 0 ? fd : -ENOMEM;
    }
    t->inner = inner;
    t->fd = fd;
    t->cfg = cfg;
    t->server = cfg->server;
    t->http_alpn = http_alpn;
    t->sim = gorc_conn_simulated(inner);
    t->ktls = cfg->ktls && !t->sim; /* kTLS needs a kernel socket */
    pthread_mutex_init(&t->mu, NULL);
    atomic_init(&t->state, 0);
    atomic_fetch_add(&cfg->refs, 1);
    int rc = gorc_conn_layer(out, inner, &tls_ops, t);
    if (rc != 0)
        t_free(t); /* gorc_conn_layer closed inner */
    return rc;
}

int gorc_tls_server(gorc_conn **out, gorc_conn *inner, gorc_tls_config *cfg)
{
    if (out)
        *out = NULL;
    if (out == NULL || inner == NULL || cfg == NULL || !cfg->server) {
        if (inner)
            gorc_conn_close(inner);
        return -EINVAL;
    }
    return wrap(out, inner, cfg, NULL, NULL);
}

static int client(gorc_conn **out, gorc_conn *inner, gorc_tls_config *cfg, const char *name,
                  const char *http_alpn)
{
    if (out)
        *out = NULL;
    bool verify = cfg && cfg->ctx && SSL_CTX_get_verify_mode(cfg->ctx) != SSL_VERIFY_NONE;
    if (out == NULL || inner == NULL || cfg == NULL || cfg->server ||
        (verify && (name == NULL || name[0] == 0))) {
        if (inner)
            gorc_conn_close(inner);
        return -EINVAL;
    }
    return wrap(out, inner, cfg, name && name[0] ? name : NULL, http_alpn);
}

int gorc_tls_client(gorc_conn **out, gorc_conn *inner, gorc_tls_config *cfg,
                    const char *server_name)
{
    return client(out, inner, cfg, server_name, NULL);
}

int gorc_tls_conn_state(gorc_conn *c, gorc_tls_state *st)
{
    tconn *t = gorc_conn_layer_self(c, &tls_ops);
    if (t == NULL || st == NULL)
        return -EINVAL;
    if (atomic_load_explicit(&t->state, memory_order_acquire) != 1)
        return -EAGAIN;
    pthread_mutex_lock(&t->mu);
    const char *sni = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
    *st = (gorc_tls_state){
        .version = SSL_version(t->ssl),
        .cipher = SSL_get_cipher_name(t->ssl),
        .protocol = t->proto,
        .server_name = sni ? sni : "",
        .resumed = SSL_session_reused(t->ssl) == 1,
    };
    pthread_mutex_unlock(&t->mu);
    st->ktls_send = ktls_send(t);
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Listeners, dialing, the HTTP client's hook
 * ---------------------------------------------------------------------------------------- */

static int l_wrap(void *self, gorc_conn *raw, gorc_conn **out)
{
    return wrap(out, raw, self, NULL, false);
}

static void l_free(void *self)
{
    gorc_tls_config_free(self);
}

static const gorc_listener_ops tls_listener_ops = {.wrap = l_wrap, .free = l_free};

int gorc_tls_listen(gorc_listener **out, gorc_listener *inner, gorc_tls_config *cfg)
{
    if (out)
        *out = NULL;
    if (out == NULL || inner == NULL || cfg == NULL || !cfg->server) {
        if (inner)
            gorc_listener_close(inner);
        return -EINVAL;
    }
    atomic_fetch_add(&cfg->refs, 1);
    int rc = gorc_listener_layer(out, inner, &tls_listener_ops, cfg);
    if (rc != 0)
        gorc_tls_config_free(cfg);
    return rc;
}

/* The host part of "host:port" ("[v6]:port" without brackets), into buf. */
static int host_of(const char *addr, char *buf, size_t n)
{
    const char *end = strrchr(addr, ':');
    const char *h = addr;
    if (end == NULL)
        end = addr + strlen(addr);
    if (h[0] == '[') {
        h++;
        if (end > h && end[-1] == ']')
            end--;
    }
    size_t l = (size_t)(end - h);
    if (l >= n)
        return -EINVAL;
    memcpy(buf, h, l);
    buf[l] = 0;
    return 0;
}

static int dial(gorc_conn **out, const char *addr, const char *host, gorc_tls_config *cfg,
                int64_t timeout_ns, gorc_ctx *ctx, const char *http_alpn)
{
    *out = NULL;
    int64_t deadline = timeout_ns > 0 ? gorc_now() + timeout_ns : 0;
    gorc_conn *raw, *c;
    int rc = ctx ? gorc_tcp_dial_ctx(&raw, addr, timeout_ns, ctx)
                 : gorc_tcp_dial(&raw, addr, timeout_ns);
    if (rc != 0)
        return rc;
    if ((rc = client(&c, raw, cfg, host, http_alpn)) != 0)
        return rc;
    if (deadline)
        gorc_conn_set_deadline(c, deadline);
    rc = ctx ? gorc_conn_handshake_ctx(c, ctx) : gorc_conn_handshake(c);
    if (rc == 0 && deadline)
        rc = gorc_conn_set_deadline(c, 0);
    if (rc != 0) {
        gorc_conn_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

int gorc_tls_dial(gorc_conn **out, const char *addr, gorc_tls_config *cfg, int64_t timeout_ns,
                  gorc_ctx *ctx)
{
    if (out)
        *out = NULL;
    char host[256];
    if (out == NULL || addr == NULL || cfg == NULL || cfg->server ||
        host_of(addr, host, sizeof host) != 0)
        return -EINVAL;
    return dial(out, addr, host, cfg, timeout_ns, ctx, NULL);
}

static int http_dial(void *arg, gorc_conn **out, const char *addr, const char *host,
                     const char *alpn, int64_t timeout_ns, gorc_ctx *ctx)
{
    return dial(out, addr, host, arg, timeout_ns, ctx, alpn ? alpn : "\x08http/1.1");
}

void gorc_tls_http_client_opts(gorc_http_client_opts *o, gorc_tls_config *cfg)
{
    if (o == NULL || cfg == NULL)
        return;
    o->dial_tls = http_dial;
    o->dial_tls_arg = cfg;
}
