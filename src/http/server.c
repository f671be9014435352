/*
 * server.c - the HTTP/1.1 server: connections, requests, response writers, shutdown.
 *
 * One goroutine per connection runs a loop: read a request head into the connection's read
 * buffer, parse it in place (parse.c reports slices of the buffer; the bytes after each
 * slice are overwritten with NULs so the handler gets C strings without a copy), call the
 * handler, finish the response, and go round again while the connection is kept alive.
 * A connection owns only its record; everything else it borrows from the buffer pool below
 * while it is in use. A hello-world request costs one read, one write and no allocation.
 *
 * Buffers. The read buffer holds the current head at its start, then body bytes and any
 * pipelined requests. While a handler runs, the head must not move (its strings point into
 * it), so body reads only ever compact the bytes after the head; the buffer is grown before
 * the handler starts if too little room is left for that. Output goes through the output
 * buffer: a response whose handler writes at most BODY_BUF_MAX bytes is sent with a
 * Content-Length, in one write together with its head; a larger or flushed one switches to
 * chunked framing (close-delimited for HTTP/1.0). Responses to pipelined requests are
 * gathered and written together once no complete request is left in the read buffer.
 *
 * Buffer pool. The read, body and output buffers, the header slots and the handler's arena
 * come from a small per-thread pool of 4 KiB buffers and go back as soon as they are empty:
 * an idle keep-alive connection waits for readability holding no buffer at all
 * (gorc__conn_wait_read), and with many connections the few buffers in use stay in cache
 * instead of one cold set per connection. A goroutine may
 * move to another thread whenever it parks, so the pool is only touched by two small
 * functions that never park, and a buffer taken on one thread may be returned on another.
 *
 * Timeouts. Read and write deadlines are timers in the poller; re-arming them costs a lock
 * and a heap update, so it is done lazily: the idle and write deadlines are only pushed
 * forward when less than half of their period is left. A connection is therefore closed
 * between half and all of idle_timeout after its last request, and a write is cut between
 * half and all of write_timeout after it started waiting. The header and body deadlines,
 * which defend against slow clients, are exact.
 *
 * Request contexts. gorc_http_request_ctx makes a request's context on first use only, so a
 * handler that never asks pays nothing. It is a child of the server's base context (cancelled
 * by gorc_http_server_close and when a shutdown's deadline passes) and is cancelled when the
 * handler returns. Once the request body has been read, a watcher goroutine waits on the
 * connection without taking any byte (gorc__conn_peek_wait): end of stream or a reset means
 * the client has gone, so it cancels the context with -ECONNRESET and the handler's writes
 * fail with -EPIPE from then on; bytes of a pipelined request mean the client is still there,
 * and the watcher stops, as Go's background read does. When the handler returns, the watcher
 * is called off by expiring the read deadline, awaited, and the deadline the connection had
 * is restored.
 *
 * Shutdown. Each connection is IDLE (between requests, no byte of the next one read) or
 * ACTIVE. Shutdown marks the server closing, closes the listeners, and closes IDLE
 * connections by moving them to CLOSED with a compare-and-swap, so it never races with a
 * request that just arrived: a connection that gets its first byte moves IDLE -> ACTIVE with
 * the same kind of swap and the loser backs off. ACTIVE connections see the closing flag
 * when their request ends and close themselves, unless the response went out without
 * Connection: close: then the client may be sending its next request already, and the
 * connection stays for it (shutdown_idle_grace says how long an idle one may). The same seq-cst
 * store-then-load on each side (Dekker) ensures that one of the two always notices the other.
 */
#include "context/context.h"
#include "http/internal.h"
#include "net/internal.h"
#include "sim/sim.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define POOL_SIZE    GORC__HTTP_BUF_SIZE /* the one buffer size the pool keeps */
#define HDR_SLOT     (sizeof(gorc__http_header) + sizeof(gorc_http_header))
#define RBUF_SPARE   4096 /* room kept after a head for body reads */
#define WBUF_INIT    4096
#define WBUF_BATCH   65536        /* pipelined responses are gathered up to this */
#define BODY_BUF_MAX 16384        /* handler output buffered to compute Content-Length */
#define BIG_WRITE    4096         /* writes at least this large bypass the output buffer */
#define DISCARD_MAX  (256 * 1024) /* unread body drained to keep a connection alive */
#define LINGER_MAX   (256 * 1024) /* bytes drained before closing after an error */
#define LINGER_NS    GORC_SECOND  /* and for at most this long */
/* try_parse's answer to an Expect the server cannot meet (Go answers 417 too). */
#define EXPECT_FAILED 10000

#define DEF_READ_HEADER_TIMEOUT (10 * GORC_SECOND)
#define DEF_READ_TIMEOUT        (60 * GORC_SECOND)
#define DEF_WRITE_TIMEOUT       (60 * GORC_SECOND)
#define DEF_IDLE_TIMEOUT        (60 * GORC_SECOND)
#define DEF_MAX_BODY            ((int64_t)8 << 20)

/* C_MARKED: idle, and seen idle by a shutdown with a grace period (see close_conns). */
enum { C_IDLE, C_ACTIVE, C_CLOSED, C_MARKED };

typedef struct chunk {
    struct chunk *next;
    char data[];
} chunk;

/* Strings and small records that live until the current handler returns: bump-allocated from
 * a pool buffer taken at the first allocation of a request, larger ones from malloc. */
typedef struct arena {
    size_t used;
    char *first; /* POOL_SIZE bytes from the pool, or NULL */
    chunk *extra;
} arena;

typedef struct hconn hconn;

/* The server side of a request: the public part first, so a gorc_http_request * converts. */
typedef struct hreq {
    gorc_http_request pub;
    hconn *h;
    int body;          /* GORC__HTTP_BODY_* */
    int64_t remaining; /* Content-Length bytes still to read */
    gorc__http_chunked ch;
    bool body_done;
    int body_err; /* sticky error of the body stream */
    bool expect;  /* the client waits for 100 Continue */
    bool continue_sent;
    bool is_head;
    int64_t deadline; /* read deadline of head and body (0: none) */
    void *route;      /* the router's slot */
} hreq;

struct gorc_http_rw {
    /* A writer made by gorc_http_rw_new: every call goes to ops (then nothing below is
     * used but r). NULL for the built-in server's writer. */
    const gorc_http_rw_ops *ops;
    void *impl;
    gorc_http_request *r;
    hconn *h;
    int status;
    bool status_set;
    bool sent;           /* the head is out (or in the output buffer) */
    bool chunked;        /* body framing once sent */
    bool no_body;        /* status forbids a body */
    bool want_close;     /* the handler asked for Connection: close */
    int64_t cl;          /* Content-Length the handler declared, -1 none */
    int64_t written;     /* body bytes the handler wrote */
    int err;             /* sticky write error */
    const char *sniffed; /* default Content-Type, from the first bytes written */
    gorc_http_header *hdr;
    size_t nhdr, hcap;
    char *bbuf; /* body held back until the handler returns or it grows too big */
    size_t blen, bcap;
    gorc_http_header *trl; /* trailers (arena), sent after the last chunk */
    size_t ntrl, tcap;
};

struct hconn {
    gorc_http_server *s;
    gorc_conn *c;
    hconn *prev, *next;
    _Atomic int state;
    _Atomic uint64_t gid;
    char *rbuf;
    size_t rlen, rcap, rpos, hlen;
    char *wbuf;
    size_t wlen, wcap;
    int64_t rdl, wdl; /* deadlines set on c (0: none) */
    bool keep;        /* keep the connection after this request */
    bool fresh;       /* no request read yet: the HTTP/2 preface may come */
    hreq req;
    gorc_http_rw rw;
    char *hbuf; /* header slots: hdr_cap parser slots, then hdr_cap public ones */
    size_t hbuf_cap, hdr_cap;
    gorc__http_header *phdr;
    gorc_http_header *uhdr;
    arena ar;
    char remote[GORC_ADDRSTRLEN];
    /* The current request's context (NULL until the handler asks) and its watcher. */
    gorc_ctx *ctx;
    bool watching;           /* a watcher goroutine runs (wwg counts it) */
    _Atomic bool peer_gone;  /* the watcher saw the client leave */
    _Atomic bool unwatching; /* the handler returned: the watcher's wake-up is not the peer */
    gorc_waitgroup wwg;
    int64_t marked_at; /* when a shutdown marked it idle (C_MARKED); protected by s->mu */
    bool hijacked;     /* gorc_http_rw_hijack gave c away (c is NULL from then on) */
};

typedef struct lnode {
    gorc_listener *l;
    struct lnode *next;
} lnode;

#define NEXT_PROTO_MAX  4
#define ON_SHUTDOWN_MAX 8

/* A protocol registered with gorc_http_server_set_next_proto. */
typedef struct next_proto {
    char name[33];
    gorc_http_next_proto_fn fn;
    void *arg;
} next_proto;

struct gorc_http_server {
    gorc_http_server_opts o;
    gorc__http_limits lim;
    size_t rmax; /* largest read buffer a head may need */
    gorc_mutex mu;
    hconn *conns;
    lnode *listeners;
    _Atomic bool closing;
    _Atomic int serving;
    gorc_ctx *base; /* parent of every request context; cancelled by close, shutdown deadline */
    _Atomic int hijacked_running; /* handlers still running after a hijack (free waits) */
    /* Set before serving, read-only afterwards. */
    next_proto np[NEXT_PROTO_MAX];
    const next_proto *h2c; /* the "h2c" entry, or NULL: a plain connection's preface is not
                              looked for */
    /* Shutdown hooks: registered before serving; run once (the flag, under mu). */
    struct {
        void (*fn)(void *);
        void *arg;
    } on_shut[ON_SHUTDOWN_MAX];
    int non_shut;
    bool shut_ran;
    _Atomic uint64_t requests, conns_total, conns_open, conns_active, bad_requests, timeouts;
    _Atomic uint64_t metrics[GORC__HM_N]; /* for /metrics (see the block at the end) */
};

static void count_bytes(gorc_http_server *s, int which, ssize_t n)
{
    if (n > 0)
        atomic_fetch_add_explicit(&s->metrics[which], (uint64_t)n, memory_order_relaxed);
}
static void count_reject(gorc_http_server *s, int status);
static void count_request(hconn *h, int64_t t0);

/* ------------------------------------------------------------------------------------------
 * Request contexts (see the top of the file)
 * ---------------------------------------------------------------------------------------- */

static void watch_peer(void *arg)
{
    hconn *h = arg;
    int rc = gorc__conn_peek_wait(h->c);
    if (!atomic_load(&h->unwatching) && rc <= 0) {
        atomic_store(&h->peer_gone, true);
        gorc_ctx_cancel_cause(h->ctx, -ECONNRESET);
    }
    gorc_waitgroup_done(&h->wwg);
}

/* Watch the client once the body is read and nothing of a next request is buffered. */
static void start_watch(hconn *h)
{
    if (h->watching || h->ctx == NULL || h->hijacked ||
        !(h->req.body_done || h->req.body == GORC__HTTP_BODY_NONE) || h->rlen > h->rpos)
        return;
    if (gorc_waitgroup_go(&h->wwg, watch_peer, h) == 0)
        h->watching = true;
}

static void end_ctx(hconn *h)
{
    if (h->watching) {
        atomic_store(&h->unwatching, true);
        gorc_conn_set_read_deadline(h->c, gorc_now() - 1); /* wakes the watcher */
        gorc_waitgroup_wait(&h->wwg);
        gorc_conn_set_read_deadline(h->c, h->rdl); /* the deadline the server had set */
        h->watching = false;
        atomic_store(&h->unwatching, false);
    }
    if (atomic_load(&h->peer_gone))
        h->keep = false;
    atomic_store(&h->peer_gone, false);
    gorc_ctx_cancel(h->ctx);
    gorc_ctx_release(h->ctx);
    h->ctx = NULL;
}

gorc_ctx *gorc_http_request_ctx(gorc_http_request *r)
{
    if (r == NULL)
        return NULL;
    if (r->ops)
        return r->ops->ctx(r->impl);
    hconn *h = ((hreq *)r)->h;
    if (h->ctx == NULL) {
        if (gorc_ctx_with_cancel(&h->ctx, h->s->base) != 0)
            return gorc_ctx_background(); /* out of memory: a context that never ends */
        start_watch(h);
    }
    return h->ctx;
}

/* The client is gone (seen by the watcher): writes fail from now on. */
static bool peer_gone(gorc_http_rw *w)
{
    if (!atomic_load_explicit(&w->h->peer_gone, memory_order_relaxed))
        return false;
    if (w->err == 0)
        w->err = -EPIPE;
    return true;
}

/* ------------------------------------------------------------------------------------------
 * Buffers (the pool is common.c's)
 * ---------------------------------------------------------------------------------------- */

static char *pool_get(void)
{
    return gorc__http_buf_get();
}

static void pool_put(char *b)
{
    gorc__http_buf_put(b);
}

/* Give back a buffer of cap bytes: pool-sized ones to the pool, larger ones to malloc. */
static void buf_release(char **b, size_t *cap)
{
    if (*b == NULL)
        return;
    if (*cap == POOL_SIZE)
        pool_put(*b);
    else
        free(*b);
    *b = NULL;
    *cap = 0;
}

/* Make room for need bytes in a buffer holding len: from the pool when it fits, else grown by
 * doubling. 0 or -ENOMEM (the buffer is unchanged). */
static int buf_reserve(char **b, size_t *cap, size_t len, size_t need)
{
    if (need <= *cap)
        return 0;
    if (*b == NULL && need <= POOL_SIZE) {
        *b = pool_get();
        if (*b == NULL)
            return -ENOMEM;
        *cap = POOL_SIZE;
        return 0;
    }
    size_t ncap = *cap ? *cap * 2 : POOL_SIZE;
    while (ncap < need)
        ncap *= 2;
    char *nb = malloc(ncap);
    if (nb == NULL)
        return -ENOMEM;
    if (len)
        memcpy(nb, *b, len);
    buf_release(b, cap);
    *b = nb;
    *cap = ncap;
    return 0;
}

/* The monotonic clock at its coarse resolution (a few ms; the same clock as gorc_now). Enough
 * for connection deadlines and far cheaper to read than the precise one. */
static int64_t coarse_now(void)
{
    int64_t vt;
    if (gorc__sim_on() && gorc__sim_clock(&vt)) /* a simulation run's clock is its own */
        return vt;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * GORC_SECOND + ts.tv_nsec;
}

/* ------------------------------------------------------------------------------------------
 * Arena
 * ---------------------------------------------------------------------------------------- */

static void *arena_alloc(arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (a->first == NULL && n <= POOL_SIZE) {
        a->first = pool_get();
        a->used = 0;
    }
    if (a->first && a->used + n <= POOL_SIZE) {
        void *p = a->first + a->used;
        a->used += n;
        return p;
    }
    chunk *c = malloc(sizeof(chunk) + n);
    if (c == NULL)
        return NULL;
    c->next = a->extra;
    a->extra = c;
    return c->data;
}

static char *arena_strdup(arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(a, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void arena_reset(arena *a)
{
    while (a->extra) {
        chunk *c = a->extra;
        a->extra = c->next;
        free(c);
    }
    if (a->first) {
        pool_put(a->first);
        a->first = NULL;
    }
    a->used = 0;
}

void *gorc__http_req_alloc(gorc_http_request *r, size_t n)
{
    if (r->ops)
        return r->ops->alloc(r->impl, n);
    return arena_alloc(&((hreq *)r)->h->ar, n);
}

void **gorc__http_req_route_slot(gorc_http_request *r)
{
    if (r->ops)
        return r->ops->route_slot(r->impl);
    return &((hreq *)r)->route;
}

/* ------------------------------------------------------------------------------------------
 * Deadlines and raw output
 * ---------------------------------------------------------------------------------------- */

static void set_rdl(hconn *h, int64_t when)
{
    if (h->rdl != when) {
        h->rdl = when;
        gorc_conn_set_read_deadline(h->c, when);
    }
}

/* Deadline for waiting for the next request: pushed forward lazily (see the top comment). */
static void arm_idle(hconn *h)
{
    int64_t t = h->s->o.idle_timeout;
    if (t <= 0) {
        set_rdl(h, 0);
        return;
    }
    int64_t now = coarse_now();
    if (h->rdl == 0 || h->rdl - now < t / 2)
        set_rdl(h, now + t);
}

static void arm_write(hconn *h)
{
    int64_t t = h->s->o.write_timeout;
    if (t <= 0)
        return;
    int64_t now = coarse_now();
    if (h->wdl == 0 || h->wdl - now < t / 2) {
        h->wdl = now + t;
        gorc_conn_set_write_deadline(h->c, h->wdl);
    }
}

static void write_failed(hconn *h, int err)
{
    if (h->rw.err == 0) {
        h->rw.err = err;
        if (err == -ETIMEDOUT)
            atomic_fetch_add(&h->s->timeouts, 1);
    }
    h->keep = false;
}

/* Write n bytes to the socket (after what is buffered). */
static int send_raw(hconn *h, const void *p, size_t n)
{
    if (h->rw.err)
        return h->rw.err;
    arm_write(h);
    ssize_t r = gorc_conn_write_all(h->c, p, n);
    count_bytes(h->s, GORC__HM_OUT, r);
    if (r < 0) {
        write_failed(h, (int)r);
        return (int)r;
    }
    return 0;
}

static int flush_out(hconn *h)
{
    if (h->wlen == 0)
        return h->rw.err;
    int r = send_raw(h, h->wbuf, h->wlen);
    h->wlen = 0;
    buf_release(&h->wbuf, &h->wcap);
    return r;
}

static int wreserve(hconn *h, size_t n)
{
    if (h->wlen + n <= h->wcap)
        return 0;
    if (buf_reserve(&h->wbuf, &h->wcap, h->wlen, h->wlen + n) < 0) {
        write_failed(h, -ENOMEM);
        return -ENOMEM;
    }
    return 0;
}

static void wput(hconn *h, const void *p, size_t n)
{
    if (wreserve(h, n) == 0) {
        memcpy(h->wbuf + h->wlen, p, n);
        h->wlen += n;
    }
}

static void wputs(hconn *h, const char *s)
{
    wput(h, s, strlen(s));
}

/* Digits of v in base 10 or 16 (no printf: this runs for every response). */
static void wput_num(hconn *h, uint64_t v, unsigned base)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    wput(h, tmp + i, sizeof tmp - i);
}

/* ------------------------------------------------------------------------------------------
 * Response heads
 * ---------------------------------------------------------------------------------------- */

static bool status_has_body(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

static const char *find_hdr(const gorc_http_rw *w, const char *name)
{
    return gorc_http_header_lookup(w->hdr, w->nhdr, name);
}

/* Go's DetectContentType, reduced to what matters for a server's own output: HTML, plain
 * text, or opaque bytes. */
const char *gorc_http_detect_content_type(const void *data, size_t n)
{
    const char *p = data;
    if (p == NULL)
        n = 0;
    const char *t = p;
    size_t rest = n;
    for (; rest > 0 && (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n'); t++)
        rest--;
    static const char *const html[] = {
        "<!doctype html", "<html",  "<head", "<body",   "<p",    "<h1",
        "<div",           "<table", "<!--",  "<script", "<title"};
    for (size_t k = 0; rest > 0 && *t == '<' && k < sizeof html / sizeof html[0]; k++) {
        size_t len = strlen(html[k]);
        if (rest > len && strncasecmp(t, html[k], len) == 0 &&
            (t[len] == ' ' || t[len] == '>' || html[k][1] == '!'))
            return "text/html; charset=utf-8";
    }
    for (size_t k = 0; k < n && k < 512; k++) {
        unsigned char c = (unsigned char)p[k];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f')
            return "application/octet-stream";
    }
    return "text/plain; charset=utf-8";
}

static void put_status_line(hconn *h, int status)
{
    if (status == 200) {
        wput(h, "HTTP/1.1 200 OK\r\n", 17);
        return;
    }
    char line[13] = "HTTP/1.1 000 ";
    line[9] = (char)('0' + status / 100);
    line[10] = (char)('0' + status / 10 % 10);
    line[11] = (char)('0' + status % 10);
    wput(h, line, sizeof line);
    const char *reason = gorc_http_status_text(status);
    wputs(h, *reason ? reason : "status code");
    wput(h, "\r\n", 2);
}

static void put_headers(hconn *h)
{
    gorc_http_rw *w = &h->rw;
    for (size_t i = 0; i < w->nhdr; i++) {
        wputs(h, w->hdr[i].name);
        wput(h, ": ", 2);
        wputs(h, w->hdr[i].value);
        wput(h, "\r\n", 2);
    }
}

/* Put the response head into the output buffer. final: the handler has returned and its
 * whole body is in bbuf, so its length is known. */
static void put_head(hconn *h, bool final)
{
    gorc_http_rw *w = &h->rw;
    hreq *q = &h->req;
    w->sent = true;
    w->no_body = !status_has_body(w->status);
    if (w->want_close || atomic_load(&h->s->closing))
        h->keep = false;
    put_status_line(h, w->status);
    put_headers(h);
    if (find_hdr(w, "Date") == NULL) {
        char date[GORC__HTTP_DATE_LEN];
        gorc__http_now_date(date);
        wput(h, "Date: ", 6);
        wput(h, date, sizeof date);
        wput(h, "\r\n", 2);
    }
    if (!w->no_body && w->sniffed && find_hdr(w, "Content-Type") == NULL) {
        wput(h, "Content-Type: ", 14);
        wputs(h, w->sniffed);
        wput(h, "\r\n", 2);
    }
    int64_t len = w->cl;
    if (len < 0 && final && !w->no_body && !(q->is_head && w->written == 0))
        len = w->written;
    if (w->no_body) {
        if (w->status == 304 && w->cl >= 0)
            len = w->cl; /* the length the 200 would have had: allowed for 304 */
        else
            len = -1;
    }
    if (len >= 0) {
        wput(h, "Content-Length: ", 16);
        wput_num(h, (uint64_t)len, 10);
        wput(h, "\r\n", 2);
    } else if (!w->no_body && !q->is_head) {
        if (q->pub.proto_minor >= 1) {
            w->chunked = true;
            wput(h, "Transfer-Encoding: chunked\r\n", 28);
        } else {
            h->keep = false; /* HTTP/1.0 without a length: the body ends at close */
        }
    }
    if (!h->keep)
        wput(h, "Connection: close\r\n", 19);
    else if (q->pub.proto_minor == 0)
        wput(h, "Connection: keep-alive\r\n", 24);
    wput(h, "\r\n", 2);
}

/* Body bytes after the head: framed, buffered or written straight through. */
static int put_body(hconn *h, const char *p, size_t n)
{
    gorc_http_rw *w = &h->rw;
    if (n == 0 || w->no_body || h->req.is_head)
        return w->err;
    if (w->chunked) {
        wput_num(h, n, 16);
        wput(h, "\r\n", 2);
    }
    if (n >= BIG_WRITE) {
        if (flush_out(h) == 0)
            send_raw(h, p, n);
    } else {
        wput(h, p, n);
    }
    if (w->chunked)
        wput(h, "\r\n", 2);
    if (h->wlen >= BODY_BUF_MAX)
        flush_out(h);
    return w->err;
}

/* Switch to streaming: the head and whatever body was held back go out. */
static int start_stream(hconn *h)
{
    gorc_http_rw *w = &h->rw;
    put_head(h, false);
    int r = put_body(h, w->bbuf, w->blen);
    w->blen = 0;
    buf_release(&w->bbuf, &w->bcap);
    return r;
}

/* ------------------------------------------------------------------------------------------
 * Response writer API
 * ---------------------------------------------------------------------------------------- */

static int hdr_remove(gorc_http_rw *w, const char *name)
{
    size_t o = 0;
    for (size_t i = 0; i < w->nhdr; i++)
        if (strcasecmp(w->hdr[i].name, name) != 0)
            w->hdr[o++] = w->hdr[i];
    w->nhdr = o;
    return 0;
}

static int hdr_append(gorc_http_rw *w, const char *name, const char *value)
{
    arena *a = &w->h->ar;
    if (w->nhdr == w->hcap) {
        size_t cap = w->hcap ? w->hcap * 2 : 16;
        gorc_http_header *n = arena_alloc(a, cap * sizeof *n);
        if (n == NULL)
            return -ENOMEM;
        if (w->nhdr)
            memcpy(n, w->hdr, w->nhdr * sizeof *n);
        w->hdr = n;
        w->hcap = cap;
    }
    char *nm = arena_strdup(a, name), *val = arena_strdup(a, value);
    if (nm == NULL || val == NULL)
        return -ENOMEM;
    w->hdr[w->nhdr].name = nm;
    w->hdr[w->nhdr].value = val;
    w->nhdr++;
    return 0;
}

/* Headers the server frames itself. Returns 1 if name was one of them (handled). */
static int managed_header(gorc_http_rw *w, const char *name, const char *value)
{
    char c = (char)(name[0] | 0x20);
    if (c != 'c' && c != 't')
        return 0; /* the common case (Content-Type is the exception), without a compare */
    if (strcasecmp(name, "Content-Length") == 0) {
        if (value == NULL) {
            w->cl = -1;
            return 1;
        }
        char *end;
        long long v = strtoll(value, &end, 10);
        if (*value < '0' || *value > '9' || *end != 0 || v < 0)
            return -EINVAL;
        w->cl = v;
        return 1;
    }
    if (strcasecmp(name, "Transfer-Encoding") == 0)
        return -EINVAL;
    if (strcasecmp(name, "Connection") == 0) {
        w->want_close = false;
        gorc__http_slice rest = {value ? value : "", value ? strlen(value) : 0}, e;
        while (gorc__http_list_next(&rest, &e))
            if (gorc__http_ieq(e, "close", 5))
                w->want_close = true;
        return 1;
    }
    return 0;
}

static int set_or_add(gorc_http_rw *w, const char *name, const char *value, bool replace)
{
    if (w == NULL || !gorc__http_is_token(name) || (value && !gorc__http_is_value(value)) ||
        (!replace && value == NULL))
        return -EINVAL;
    if (w->ops)
        return w->ops->set_header(w->impl, name, value, replace);
    if (w->sent)
        return -EALREADY;
    int m = managed_header(w, name, value);
    if (m != 0)
        return m < 0 ? m : 0;
    if (replace)
        hdr_remove(w, name);
    return value ? hdr_append(w, name, value) : 0;
}

int gorc_http_rw_set_header(gorc_http_rw *w, const char *name, const char *value)
{
    return set_or_add(w, name, value, true);
}

int gorc_http_rw_add_header(gorc_http_rw *w, const char *name, const char *value)
{
    return set_or_add(w, name, value, false);
}

/* An interim 1xx response, sent at once. */
static int send_interim(hconn *h, int status)
{
    if (h->req.pub.proto_minor == 0)
        return 0; /* HTTP/1.0 clients do not expect 1xx */
    if (status == 100) {
        if (h->req.continue_sent)
            return 0;
        h->req.continue_sent = true;
    }
    put_status_line(h, status);
    if (status != 100)
        put_headers(h);
    wput(h, "\r\n", 2);
    return flush_out(h);
}

int gorc_http_rw_write_header(gorc_http_rw *w, int status)
{
    if (w == NULL || status < 100 || status > 999)
        return -EINVAL;
    if (w->ops)
        return w->ops->write_header(w->impl, status);
    if (w->sent || w->status_set)
        return -EALREADY;
    if (status < 200 && status != 101)
        return send_interim(w->h, status);
    w->status = status;
    w->status_set = true;
    return 0;
}

ssize_t gorc_http_rw_write(gorc_http_rw *w, const void *buf, size_t n)
{
    if (w == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    if (w->ops)
        return w->ops->write(w->impl, buf, n);
    if (w->err || peer_gone(w))
        return w->err;
    if (!status_has_body(w->status))
        return GORC_HTTP_EBODYNOTALLOWED;
    if (w->cl >= 0 && w->written + (int64_t)n > w->cl)
        return -EINVAL;
    w->written += (int64_t)n;
    hconn *h = w->h;
    if (w->sniffed == NULL && n > 0)
        w->sniffed = gorc_http_detect_content_type(
            buf, n); /* what Go does with the first write's bytes, HEAD too */
    if (h->req.is_head || n == 0)
        return (ssize_t)n;
    if (!w->sent) {
        if (w->blen + n <= BODY_BUF_MAX) {
            if (buf_reserve(&w->bbuf, &w->bcap, w->blen, w->blen + n) < 0) {
                write_failed(h, -ENOMEM);
                return -ENOMEM;
            }
            memcpy(w->bbuf + w->blen, buf, n);
            w->blen += n;
            return (ssize_t)n;
        }
        if (start_stream(h) < 0)
            return w->err;
    }
    int r = put_body(h, buf, n);
    return r < 0 ? r : (ssize_t)n;
}

ssize_t gorc_http_rw_write_string(gorc_http_rw *w, const char *s)
{
    if (s == NULL)
        return -EINVAL;
    return gorc_http_rw_write(w, s, strlen(s));
}

ssize_t gorc_http_rw_printf(gorc_http_rw *w, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof small)
        return gorc_http_rw_write(w, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    ssize_t r = gorc_http_rw_write(w, big, (size_t)n);
    free(big);
    return r;
}

int gorc_http_rw_flush(gorc_http_rw *w)
{
    if (w == NULL)
        return -EINVAL;
    if (w->ops)
        return w->ops->flush(w->impl);
    if (w->err || peer_gone(w))
        return w->err;
    if (!w->sent && start_stream(w->h) < 0)
        return w->err;
    return flush_out(w->h);
}

ssize_t gorc_http_rw_send_file(gorc_http_rw *w, int fd, int64_t off, int64_t n)
{
    if (w == NULL || fd < 0 || off < 0 || n < 0)
        return -EINVAL;
    if (w->ops)
        return w->ops->send_file ? w->ops->send_file(w->impl, fd, off, n)
                                 : gorc__http_copy_file(w, fd, off, n);
    hconn *h = w->h;
    if (w->err || peer_gone(w))
        return w->err;
    if (!status_has_body(w->status))
        return GORC_HTTP_EBODYNOTALLOWED;
    if (w->cl >= 0 && w->written + n > w->cl)
        return -EINVAL;
    if (!w->sent && w->blen == 0 && w->cl < 0)
        w->cl = n; /* the whole body is this file: frame it with a length, not chunks */
    if (h->req.is_head) {
        w->written += n;
        return n;
    }
    if (!w->sent && start_stream(h) < 0)
        return w->err;
    if (w->chunked) {
        return gorc__http_copy_file(w, fd, off, n); /* chunked framing around a file */
    }
    if (flush_out(h) < 0)
        return w->err;
    arm_write(h);
    ssize_t r = gorc_conn_sendfile(h->c, fd, off, (size_t)n);
    count_bytes(h->s, GORC__HM_OUT, r);
    if (r < 0) {
        write_failed(h, (int)r);
        return r;
    }
    w->written += n;
    return n;
}

/* http.Error on a writer of another transport: Go's own steps, through the interface. */
static int ops_error(gorc_http_rw *w, int status, const char *msg)
{
    if (w->ops->sent(w->impl))
        return -EALREADY;
    w->ops->set_header(w->impl, "Content-Length", NULL, true);
    w->ops->set_header(w->impl, "Content-Type", "text/plain; charset=utf-8", true);
    w->ops->set_header(w->impl, "X-Content-Type-Options", "nosniff", true);
    int r = w->ops->write_header(w->impl, status);
    if (r < 0)
        return r;
    if (msg == NULL)
        msg = gorc_http_status_text(status);
    ssize_t k = w->ops->write(w->impl, msg, strlen(msg));
    if (k >= 0)
        k = w->ops->write(w->impl, "\n", 1);
    return k < 0 ? (int)k : 0;
}

int gorc_http_error(gorc_http_rw *w, int status, const char *msg)
{
    if (w == NULL || status < 200 || status > 999)
        return -EINVAL;
    if (w->ops)
        return ops_error(w, status, msg);
    if (w->sent)
        return -EALREADY;
    w->cl = -1; /* the length set for the body this replaces; Go 1.23 drops it too */
    w->blen = 0;
    w->written = 0;
    gorc_http_rw_set_header(w, "Content-Type", "text/plain; charset=utf-8");
    gorc_http_rw_set_header(w, "X-Content-Type-Options", "nosniff");
    w->status = status;
    w->status_set = true;
    if (msg == NULL)
        msg = gorc_http_status_text(status);
    ssize_t r = gorc_http_rw_write_string(w, msg);
    if (r >= 0)
        r = gorc_http_rw_write(w, "\n", 1);
    return r < 0 ? (int)r : 0;
}

int gorc_http_redirect(gorc_http_rw *w, const char *url, int code)
{
    if (w == NULL || url == NULL || code < 300 || code > 399)
        return -EINVAL;
    int r = gorc_http_rw_set_header(w, "Location", url);
    if (r < 0)
        return r;
    r = gorc_http_rw_set_header(w, "Content-Type", "text/html; charset=utf-8");
    if (r < 0)
        return r;
    r = gorc_http_rw_write_header(w, code);
    if (r < 0)
        return r;
    const char *method = gorc_http_rw_request(w)->method;
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
        /* Go writes a link; the URL is escaped so it cannot inject markup. */
        gorc__http_sbuf b = {0};
        gorc__http_sbuf_str(&b, "<a href=\"");
        gorc__http_sbuf_html(&b, url);
        gorc__http_sbuf_str(&b, "\">");
        gorc__http_sbuf_str(&b, gorc_http_status_text(code));
        gorc__http_sbuf_str(&b, "</a>.\n\n");
        r = b.oom ? -ENOMEM : (int)gorc_http_rw_write(w, b.p, b.n);
        free(b.p);
        if (r < 0)
            return r;
    }
    return w->ops ? 0 : w->err;
}

int gorc_http_rw_status(const gorc_http_rw *w)
{
    if (w && w->ops)
        return w->ops->status(w->impl);
    return w ? w->status : -EINVAL;
}

bool gorc_http_rw_sent(const gorc_http_rw *w)
{
    if (w && w->ops)
        return w->ops->sent(w->impl);
    return w && w->sent;
}

int gorc_http_rw_new(gorc_http_rw **out, const gorc_http_rw_ops *ops, void *impl,
                     gorc_http_request *r)
{
    if (out == NULL || ops == NULL || r == NULL || !ops->set_header || !ops->write_header ||
        !ops->write || !ops->flush || !ops->status || !ops->sent)
        return -EINVAL;
    gorc_http_rw *w = calloc(1, sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    w->ops = ops;
    w->impl = impl;
    w->r = r;
    *out = w;
    return 0;
}

void gorc_http_rw_free(gorc_http_rw *w)
{
    if (w && w->ops)
        free(w);
}

gorc_http_request *gorc_http_rw_request(gorc_http_rw *w)
{
    if (w == NULL)
        return NULL;
    return w->ops ? w->r : &w->h->req.pub;
}

/* Fields a trailer may not carry (RFC 9110 6.5.1: framing, routing, authentication). */
static bool trailer_forbidden(const char *name)
{
    static const char *const no[] = {"Content-Length", "Transfer-Encoding", "Connection",
                                     "Host",           "Trailer",           "Te",
                                     "Content-Type",   "Authorization",     "Keep-Alive"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (strcasecmp(name, no[i]) == 0)
            return true;
    return false;
}

int gorc_http_rw_set_trailer(gorc_http_rw *w, const char *name, const char *value)
{
    if (w == NULL || name == NULL || value == NULL || !gorc__http_is_token(name) ||
        !gorc__http_is_value(value) || trailer_forbidden(name))
        return -EINVAL;
    if (w->ops)
        return w->ops->set_trailer ? w->ops->set_trailer(w->impl, name, value) : -ENOTSUP;
    hconn *h = w->h;
    if (h->req.pub.proto_minor == 0 || (w->sent && !w->chunked))
        return -ENOTSUP;
    arena *a = &h->ar;
    for (size_t i = 0; i < w->ntrl; i++) {
        if (strcasecmp(w->trl[i].name, name) == 0) {
            char *v = arena_strdup(a, value);
            if (v == NULL)
                return -ENOMEM;
            w->trl[i].value = v;
            return 0;
        }
    }
    if (w->ntrl == w->tcap) {
        size_t cap = w->tcap ? w->tcap * 2 : 4;
        gorc_http_header *n = arena_alloc(a, cap * sizeof *n);
        if (n == NULL)
            return -ENOMEM;
        if (w->ntrl)
            memcpy(n, w->trl, w->ntrl * sizeof *n);
        w->trl = n;
        w->tcap = cap;
    }
    char *nm = arena_strdup(a, name), *val = arena_strdup(a, value);
    if (nm == NULL || val == NULL)
        return -ENOMEM;
    w->trl[w->ntrl].name = nm;
    w->trl[w->ntrl].value = val;
    w->ntrl++;
    return 0;
}

const char *gorc_http_request_trailer(const gorc_http_request *r, const char *name)
{
    if (r == NULL || name == NULL)
        return NULL;
    if (r->ops)
        return r->ops->trailer ? r->ops->trailer(r->impl, name) : NULL;
    return NULL; /* the HTTP/1.1 server's chunked decoder checks trailers and drops them */
}

/* ------------------------------------------------------------------------------------------
 * Request bodies
 * ---------------------------------------------------------------------------------------- */

const char *gorc_http_request_header(const gorc_http_request *r, const char *name)
{
    return r ? gorc_http_header_lookup(r->headers, r->num_headers, name) : NULL;
}

/* Read more body bytes into the read buffer, behind the head (which must not move). */
static ssize_t fill_body(hconn *h)
{
    if (h->rpos == h->rlen) {
        h->rpos = h->rlen = h->hlen;
    } else if (h->rlen == h->rcap && h->rpos > h->hlen) {
        memmove(h->rbuf + h->hlen, h->rbuf + h->rpos, h->rlen - h->rpos);
        h->rlen -= h->rpos - h->hlen;
        h->rpos = h->hlen;
    }
    set_rdl(h, h->req.deadline);
    ssize_t k = gorc_conn_read(h->c, h->rbuf + h->rlen, h->rcap - h->rlen);
    count_bytes(h->s, GORC__HM_IN, k);
    return k;
}

static ssize_t body_fail(hconn *h, ssize_t err)
{
    hreq *q = &h->req;
    if (err == 0)
        err = GORC_EUNEXPECTEDEOF;
    if (err == -ETIMEDOUT)
        atomic_fetch_add(&h->s->timeouts, 1);
    q->body_err = (int)err;
    h->keep = false;
    /* Answer for the handler if it has not written: it may just return on the error. */
    if (err == GORC_HTTP_ETOOLARGE && !h->rw.sent)
        gorc_http_error(&h->rw, 413, NULL);
    else if (err == GORC_HTTP_EBADMSG && !h->rw.sent)
        gorc_http_error(&h->rw, 400, "malformed chunked body");
    return err;
}

static ssize_t read_length(hconn *h, char *buf, size_t n)
{
    hreq *q = &h->req;
    if (q->remaining == 0) {
        q->body_done = true;
        return 0;
    }
    if ((int64_t)n > q->remaining)
        n = (size_t)q->remaining;
    size_t avail = h->rlen - h->rpos;
    ssize_t k;
    if (avail > 0) {
        k = (ssize_t)(avail < n ? avail : n);
        memcpy(buf, h->rbuf + h->rpos, (size_t)k);
        h->rpos += (size_t)k;
    } else {
        set_rdl(h, q->deadline);
        k = gorc_conn_read(h->c, buf, n);
        count_bytes(h->s, GORC__HM_IN, k);
        if (k <= 0)
            return body_fail(h, k);
    }
    q->remaining -= k;
    if (q->remaining == 0)
        q->body_done = true;
    return k;
}

static ssize_t read_chunked(hconn *h, char *buf, size_t n)
{
    hreq *q = &h->req;
    for (;;) {
        size_t avail = h->rlen - h->rpos;
        if (avail == 0) {
            ssize_t k = fill_body(h);
            if (k <= 0)
                return body_fail(h, k);
            h->rlen += (size_t)k;
            continue;
        }
        size_t feed = avail < n ? avail : n, used = 0;
        gorc__http_slice data;
        int rc = gorc__http_chunked_decode(&q->ch, h->rbuf + h->rpos, feed, &used, &data);
        if (rc == GORC__HTTP_CHUNK_DATA) {
            memmove(buf, data.p, data.n);
            h->rpos += used;
            return (ssize_t)data.n;
        }
        if (rc == GORC__HTTP_CHUNK_DONE) {
            h->rpos += used;
            q->body_done = true;
            return 0;
        }
        if (rc < 0)
            return body_fail(h, rc == GORC__HTTP_EBODY ? GORC_HTTP_ETOOLARGE : GORC_HTTP_EBADMSG);
        h->rpos += used;
    }
}

ssize_t gorc_http_request_read(gorc_http_request *r, void *buf, size_t n)
{
    if (r == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    if (r->ops)
        return r->ops->read(r->impl, buf, n);
    hreq *q = (hreq *)r;
    hconn *h = q->h;
    if (q->body_err)
        return q->body_err;
    if (q->body_done || q->body == GORC__HTTP_BODY_NONE || n == 0)
        return 0;
    if (q->expect && !q->continue_sent && !h->rw.sent) {
        int e = send_interim(h, 100);
        if (e < 0)
            return body_fail(h, e);
    }
    ssize_t k =
        q->body == GORC__HTTP_BODY_LENGTH ? read_length(h, buf, n) : read_chunked(h, buf, n);
    if (k == 0 || q->body_done)
        start_watch(h); /* the body is read: from now on only the client's leaving can come */
    return k;
}

static ssize_t body_reader(void *r, void *buf, size_t n)
{
    return gorc_http_request_read(r, buf, n);
}

ssize_t gorc_http_request_read_all(gorc_http_request *r, char **out, size_t max)
{
    if (r == NULL || out == NULL)
        return -EINVAL;
    /* Another transport's reads enforce its server's max_body_bytes themselves. */
    int64_t limit = r->ops ? -1 : ((hreq *)r)->h->s->o.max_body_bytes;
    if (max == 0)
        max = limit < 0 ? SIZE_MAX - 1 : (size_t)limit;
    size_t hint = r->content_length > 0 ? (size_t)r->content_length : 0;
    ssize_t n = gorc__http_read_all(body_reader, r, hint, max, out);
    if (n == 0) {
        free(*out); /* documented: an empty body gives NULL */
        *out = NULL;
    }
    return n;
}

/* ------------------------------------------------------------------------------------------
 * Reading requests
 * ---------------------------------------------------------------------------------------- */

/* Answer a request the parser or a limit refused, then close. */
static void reject(hconn *h, int err)
{
    const char *reason = "Expectation Failed";
    int status = err == -EXPECT_FAILED ? 417 : gorc__http_error_status(err, &reason);
    atomic_fetch_add(&h->s->bad_requests, 1);
    count_reject(h->s, status);
    char date[GORC__HTTP_DATE_LEN];
    gorc__http_now_date(date);
    char msg[256];
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 %d %s\r\nDate: %.*s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n%d %s\n",
                     status, reason, GORC__HTTP_DATE_LEN, date, strlen(reason) + 5, status, reason);
    wput(h, msg, (size_t)n); /* after any pipelined responses still buffered */
    flush_out(h);
    h->keep = false;
}

static bool activate(hconn *h)
{
    int expect = C_IDLE;
    if (!atomic_compare_exchange_strong(&h->state, &expect, C_ACTIVE) &&
        (expect != C_MARKED || !atomic_compare_exchange_strong(&h->state, &expect, C_ACTIVE)))
        return false;
    atomic_fetch_add(&h->s->conns_active, 1);
    return true;
}

static int grow_rbuf(hconn *h, size_t want)
{
    return buf_reserve(&h->rbuf, &h->rcap, h->rlen, want);
}

/* Header slots for the request being read, at least want of them: a pool buffer holds
 * POOL_SIZE / HDR_SLOT (85), enough for most requests; more come from malloc. */
static int take_hdrs(hconn *h, size_t want)
{
    if (h->hbuf && h->hdr_cap >= want)
        return 0;
    buf_release(&h->hbuf, &h->hbuf_cap);
    size_t bytes = want * HDR_SLOT;
    if (bytes <= POOL_SIZE) {
        bytes = POOL_SIZE;
        h->hbuf = pool_get();
    } else {
        h->hbuf = malloc(bytes);
    }
    if (h->hbuf == NULL)
        return -ENOMEM;
    h->hbuf_cap = bytes;
    h->hdr_cap = bytes / HDR_SLOT;
    h->phdr = (gorc__http_header *)(void *)h->hbuf;
    h->uhdr = (gorc_http_header *)(void *)(h->hbuf + h->hdr_cap * sizeof(gorc__http_header));
    return 0;
}

static void drop_hdrs(hconn *h)
{
    buf_release(&h->hbuf, &h->hbuf_cap);
    h->phdr = NULL;
    h->uhdr = NULL;
    h->hdr_cap = 0;
}

/* NUL-terminate a parser slice in place (the byte after it is a delimiter already used). */
static const char *cstr(gorc__http_slice s)
{
    if (s.p == NULL)
        return "";
    ((char *)s.p)[s.n] = 0;
    return s.p;
}

/* Turn a parsed head into the handler's view and prepare the body stream. */
static int setup_request(hconn *h, gorc__http_request *pr, size_t head, int64_t start)
{
    gorc_http_server *s = h->s;
    hreq *q = &h->req;
    /* Each field is set here or below (the chunked decoder only when it is used), rather than
     * zeroing the whole record, which would touch all its cache lines on every request. */
    q->h = h;
    q->remaining = 0;
    q->body_done = false;
    q->body_err = 0;
    q->continue_sent = false;
    q->route = NULL;
    q->pub.content_length = 0;
    gorc_http_request *r = &q->pub;
    h->hlen = h->rpos = head;
    /* The path and query are NUL-terminated first: the delimiter after the path ('?') must
     * be overwritten only after the query is located. */
    const char *query = pr->query.p ? cstr(pr->query) : "";
    char *path;
    if (pr->form == GORC__HTTP_TARGET_ABSOLUTE) {
        char *host = arena_alloc(&h->ar, pr->authority.n + 1);
        if (host == NULL)
            return -ENOMEM;
        memcpy(host, pr->authority.p, pr->authority.n);
        host[pr->authority.n] = 0;
        r->host = host;
        path = arena_alloc(&h->ar, pr->path.n + 2);
        if (path == NULL)
            return -ENOMEM;
        memcpy(path, pr->path.n ? pr->path.p : "/", pr->path.n ? pr->path.n : 1);
        path[pr->path.n ? pr->path.n : 1] = 0;
    } else {
        path = (char *)cstr(pr->path);
        r->host = cstr(pr->host);
    }
    size_t plen = strlen(path);
    if (memchr(path, '%', plen) && gorc__http_pct_decode(path, plen, false) < 0)
        return GORC__HTTP_EBADMSG;
    r->path = path;
    r->query = query;
    r->method = cstr(pr->method);
    r->proto_minor = pr->minor_version;
    for (size_t i = 0; i < pr->num_headers; i++) {
        h->uhdr[i].name = cstr(pr->headers[i].name);
        h->uhdr[i].value = cstr(pr->headers[i].value);
    }
    r->headers = h->uhdr;
    r->num_headers = pr->num_headers;
    r->remote_addr = h->remote;
    q->is_head = strcmp(r->method, "HEAD") == 0;
    q->body = pr->body;
    q->deadline = s->o.read_timeout > 0 ? start + s->o.read_timeout : 0;
    if (pr->body == GORC__HTTP_BODY_LENGTH) {
        if (s->o.max_body_bytes >= 0 && pr->content_length > s->o.max_body_bytes)
            return GORC__HTTP_EBODY;
        q->remaining = pr->content_length;
        r->content_length = pr->content_length;
        if (q->remaining == 0) {
            q->body = GORC__HTTP_BODY_NONE;
            q->body_done = true;
        }
    } else if (pr->body == GORC__HTTP_BODY_CHUNKED) {
        r->content_length = -1;
        gorc__http_chunked_init(&q->ch, s->o.max_body_bytes < 0 ? 0 : s->o.max_body_bytes, &s->lim);
    }
    if (q->body == GORC__HTTP_BODY_NONE)
        q->body_done = true;
    q->expect = pr->expect_continue && q->body != GORC__HTTP_BODY_NONE;
    h->keep = pr->keep_alive && !s->o.disable_keepalive && !atomic_load(&s->closing);
    r->close = !h->keep;
    return 0;
}

/* Move unconsumed bytes (a pipelined request) to the start of the read buffer. */
static void compact(hconn *h)
{
    size_t left = h->rlen - h->rpos;
    char *small;
    if (left == 0) {
        buf_release(&h->rbuf, &h->rcap); /* idle: hold no buffer */
    } else if (h->rcap > POOL_SIZE && left <= POOL_SIZE && (small = pool_get()) != NULL) {
        memcpy(small, h->rbuf + h->rpos, left); /* back to a pool buffer after a large head */
        buf_release(&h->rbuf, &h->rcap);
        h->rbuf = small;
        h->rcap = POOL_SIZE;
    } else if (h->rpos) {
        memmove(h->rbuf, h->rbuf + h->rpos, left);
    }
    h->rlen = left;
    h->rpos = h->hlen = 0;
    drop_hdrs(h); /* the last request's fields are no longer referenced */
}

/* Parse what is buffered. Returns > 0 (head length), 0 (need more) or an error. */
static int try_parse(hconn *h, size_t *prev, int64_t start)
{
    size_t first =
        h->s->o.max_headers < POOL_SIZE / HDR_SLOT ? h->s->o.max_headers : POOL_SIZE / HDR_SLOT;
    if (take_hdrs(h, first) < 0)
        return -ENOMEM;
    gorc__http_request pr = {.headers = h->phdr, .headers_cap = h->hdr_cap};
    int n = gorc__http_parse_request(&pr, h->rbuf, h->rlen, *prev, &h->s->lim);
    if (n == 0) {
        *prev = h->rlen;
        return 0;
    }
    if (n == GORC__HTTP_EHEADERS && pr.fault == GORC__HTTP_FAULT_TOO_MANY_HEADERS &&
        h->hdr_cap < h->s->o.max_headers) {
        if (take_hdrs(h, h->s->o.max_headers) < 0)
            return -ENOMEM;
        *prev = 0;
        return try_parse(h, prev, start);
    }
    if (n < 0)
        return n;
    h->fresh = false;
    if (h->rcap - (size_t)n < RBUF_SPARE && pr.body != GORC__HTTP_BODY_NONE) {
        /* Make room for body reads now: once the handler has pointers into the head, the
         * buffer cannot move. */
        if (grow_rbuf(h, (size_t)n + RBUF_SPARE) < 0)
            return -ENOMEM;
        n = gorc__http_parse_request(&pr, h->rbuf, h->rlen, 0, &h->s->lim);
    }
    if (pr.expect_unknown)
        return -EXPECT_FAILED;
    int e = setup_request(h, &pr, (size_t)n, start);
    return e < 0 ? e : n;
}

/* The HTTP/2 connection preface (RFC 9113 3.4). */
#define PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define PREFACE_LEN (sizeof PREFACE - 1)

/* Read the next request head. Returns 1 (ready for the handler), 2 (the first bytes are the
 * HTTP/2 preface and h2c is registered: hand the connection over) or 0 (close the
 * connection; any answer has been sent). */
static int read_request(hconn *h)
{
    gorc_http_server *s = h->s;
    compact(h);
    size_t prev = 0;
    bool idle = true;
    int64_t start = 0;
    for (;;) {
        if (h->rlen > 0) {
            if (idle) {
                idle = false;
                start = coarse_now();
                if (!activate(h))
                    return 0;
            }
            if (h->fresh && s->h2c) {
                size_t m = h->rlen < PREFACE_LEN ? h->rlen : PREFACE_LEN;
                if (memcmp(h->rbuf, PREFACE, m) != 0)
                    h->fresh = false; /* HTTP/1 */
                else if (m == PREFACE_LEN)
                    return 2;
            }
            int n = !h->fresh || !s->h2c ? try_parse(h, &prev, start) : 0;
            if (n > 0)
                return 1;
            if (n < 0) {
                reject(h, n == -ENOMEM ? GORC__HTTP_EHEADERS : n);
                return 0;
            }
            if (s->o.read_header_timeout > 0) {
                int64_t when = start + s->o.read_header_timeout;
                if (h->rdl == 0 || h->rdl > when)
                    set_rdl(h, when);
            }
            if (h->rlen == h->rcap && grow_rbuf(h, h->rcap < s->rmax ? h->rcap * 2 : 0) < 0) {
                reject(h, GORC__HTTP_EHEADERS);
                return 0;
            }
            if (h->rlen == h->rcap) {
                reject(h, GORC__HTTP_EHEADERS); /* cannot happen with sane limits */
                return 0;
            }
        } else {
            arm_idle(h);
            if (gorc__conn_wait_read(h->c) < 0)
                return 0; /* idle timeout, or closed by shutdown */
        }
        if (h->rbuf == NULL && grow_rbuf(h, POOL_SIZE) < 0)
            return 0; /* out of memory: drop the connection, keep serving others */
        ssize_t k = gorc_conn_read(h->c, h->rbuf + h->rlen, h->rcap - h->rlen);
        count_bytes(s, GORC__HM_IN, k);
        if (k <= 0) {
            if (k == -ETIMEDOUT && !idle)
                atomic_fetch_add(&s->timeouts, 1);
            return 0;
        }
        h->rlen += (size_t)k;
    }
}

/* ------------------------------------------------------------------------------------------
 * Finishing a request
 * ---------------------------------------------------------------------------------------- */

/* Drain a body the handler left unread, so the connection can carry the next request. */
static void discard_body(hconn *h)
{
    hreq *q = &h->req;
    if (q->body == GORC__HTTP_BODY_NONE || q->body_done || q->body_err)
        return;
    if (q->expect && !q->continue_sent) {
        h->keep = false; /* the client has not sent it and waits for our word: do not ask */
        return;
    }
    char scratch[4096];
    size_t total = 0;
    while (total < DISCARD_MAX) {
        ssize_t k = gorc_http_request_read(&q->pub, scratch, sizeof scratch);
        if (k <= 0) {
            if (k < 0)
                h->keep = false;
            return;
        }
        total += (size_t)k;
    }
    h->keep = false;
}

static void finish_response(hconn *h)
{
    gorc_http_rw *w = &h->rw;
    if (w->err)
        return;
    if (!w->sent && w->ntrl > 0 && w->cl < 0 && h->req.pub.proto_minor >= 1 &&
        status_has_body(w->status) && !h->req.is_head) {
        start_stream(h); /* trailers need the chunked framing */
        if (w->err)
            return;
    }
    if (!w->sent) {
        put_head(h, true);
        if (!w->no_body && !h->req.is_head && w->blen > 0) {
            if (w->blen >= BIG_WRITE) {
                if (flush_out(h) == 0)
                    send_raw(h, w->bbuf, w->blen);
            } else {
                wput(h, w->bbuf, w->blen);
            }
        }
    } else if (w->chunked) {
        if (w->ntrl == 0) {
            wput(h, "0\r\n\r\n", 5);
        } else {
            wput(h, "0\r\n", 3);
            for (size_t i = 0; i < w->ntrl; i++) {
                wputs(h, w->trl[i].name);
                wput(h, ": ", 2);
                wputs(h, w->trl[i].value);
                wput(h, "\r\n", 2);
            }
            wput(h, "\r\n", 2);
        }
    }
    if (w->cl >= 0 && w->written < w->cl && !h->req.is_head && !w->no_body)
        h->keep = false; /* short body: the client cannot find the next response */
}

/* A complete head is already buffered (pipelining): its response can share a write. Only
 * the end of a head is looked for; the next read_request parses it (a malformed one is
 * answered there, after what is gathered here). */
static bool more_buffered(const hconn *h)
{
    return h->rpos < h->rlen && memmem(h->rbuf + h->rpos, h->rlen - h->rpos, "\r\n\r\n", 4);
}

static void reset_rw(hconn *h)
{
    gorc_http_rw *w = &h->rw;
    buf_release(&w->bbuf, &w->bcap);
    memset(w, 0, sizeof *w);
    w->h = h;
    w->status = 200;
    w->cl = -1;
}

static bool deactivate(hconn *h)
{
    atomic_store(&h->state, C_IDLE);
    atomic_fetch_sub(&h->s->conns_active, 1);
    return !atomic_load(&h->s->closing);
}

/* Finish the response and decide whether the connection serves another request. */
static bool finish_request(hconn *h)
{
    discard_body(h);
    finish_response(h);
    bool ok = h->rw.err == 0 && h->keep;
    if (!ok || !more_buffered(h) || h->wlen >= WBUF_BATCH)
        flush_out(h);
    ok = ok && h->rw.err == 0;
    arena_reset(&h->ar);
    reset_rw(h);
    /* A response that went out without Connection: close (shutdown began after its head)
     * promised the client this connection: it may be sending the next request already.
     * Keep it; that request is answered with Connection: close, or shutdown closes the
     * connection once idle. */
    deactivate(h);
    return ok;
}

/* ------------------------------------------------------------------------------------------
 * Connections
 * ---------------------------------------------------------------------------------------- */

/* Close after an error without losing the answer: stop writing, and read what the client
 * still sends for a while, so the kernel does not answer it with a reset that could discard
 * our response before the client reads it (nginx's lingering close). */
static void linger_close(hconn *h)
{
    if (gorc_conn_shutdown(h->c, SHUT_WR) < 0)
        return;
    gorc_conn_set_read_deadline(h->c, gorc_now() + LINGER_NS);
    char scratch[4096];
    size_t total = 0;
    while (total < LINGER_MAX) {
        ssize_t k = gorc_conn_read(h->c, scratch, sizeof scratch);
        if (k <= 0)
            break;
        total += (size_t)k;
    }
}

static void conn_free(hconn *h)
{
    arena_reset(&h->ar);
    buf_release(&h->rbuf, &h->rcap);
    buf_release(&h->wbuf, &h->wcap);
    buf_release(&h->rw.bbuf, &h->rw.bcap);
    drop_hdrs(h);
    free(h);
}

static void conn_unlink(hconn *h)
{
    gorc_http_server *s = h->s;
    gorc_mutex_lock(&s->mu);
    if (h->prev)
        h->prev->next = h->next;
    else
        s->conns = h->next;
    if (h->next)
        h->next->prev = h->prev;
    gorc_mutex_unlock(&s->mu);
}

/* A layered (TLS) connection's handshake, in the connection's own goroutine and bounded by
 * the read-header timeout: a client that trickles its ClientHello is cut off as a slowloris
 * client is, and counted as a timeout (a failed handshake as a bad request). Plain
 * connections skip it. False: close the connection. */
static bool conn_handshake(hconn *h)
{
    if (gorc_conn_inner(h->c) == NULL)
        return true;
    gorc_http_server *s = h->s;
    if (s->o.read_header_timeout > 0)
        set_rdl(h, coarse_now() + s->o.read_header_timeout);
    int rc = gorc_conn_handshake(h->c);
    set_rdl(h, 0); /* the idle timeout takes over */
    if (rc == 0)
        return true;
    if (rc == -ETIMEDOUT)
        atomic_fetch_add(&s->timeouts, 1);
    else if (rc != GORC_ENETCLOSED && rc != GORC_EUNEXPECTEDEOF && rc != -ECONNRESET)
        atomic_fetch_add(&s->bad_requests, 1);
    return false;
}

static const next_proto *find_proto(const gorc_http_server *s, const char *name)
{
    for (int i = 0; i < NEXT_PROTO_MAX; i++)
        if (s->np[i].fn && strcmp(s->np[i].name, name) == 0)
            return &s->np[i];
    return NULL;
}

/* Give the connection to another protocol (it stays ACTIVE meanwhile: shutdown waits). */
static void hand_over(hconn *h, const next_proto *p, const void *pre, size_t npre)
{
    p->fn(h->s, h->c, pre, npre, p->arg);
    h->keep = false;
    h->rlen = h->rpos = 0;
}

static void serve_conn(void *arg)
{
    hconn *h = arg;
    gorc_http_server *s = h->s;
    atomic_store(&h->gid, gorc_id());
    if (!conn_handshake(h))
        goto done;
    if (gorc_conn_inner(h->c) != NULL)
        h->fresh = false; /* h2c is for plain connections; over TLS, h2 comes by ALPN only */
    /* A protocol the TLS handshake chose by ALPN ("h2"); plain connections and a TLS one that
     * negotiated nothing or "http/1.1" answer "" or a name without a hook: HTTP/1.1 then. */
    const char *alpn = gorc_conn_protocol(h->c);
    const next_proto *np = alpn[0] ? find_proto(s, alpn) : NULL;
    if (np) {
        if (activate(h))
            hand_over(h, np, NULL, 0);
        goto done;
    }
    if (strcmp(alpn, "h2") == 0) {
        /* The TLS configuration offered "h2" but no HTTP/2 hook is registered: the client
         * will speak HTTP/2, which the HTTP/1.1 parser would only answer with 400. */
        atomic_fetch_add(&s->bad_requests, 1);
        goto done;
    }
    for (;;) {
        int rr = read_request(h);
        if (rr == 2) {
            hand_over(h, s->h2c, h->rbuf, h->rlen);
            break;
        }
        if (!rr)
            break;
        int64_t t0 = gorc_now(); /* the metrics' duration and the debug page's timing */
        s->o.handler(&h->rw, &h->req.pub, s->o.arg);
        if (t0 != 0)
            gorc__http_observe_end(&s->o, &h->req.pub, t0);
        if (h->ctx)
            end_ctx(h);
        atomic_fetch_add(&s->requests, 1);
        count_request(h, t0);
        if (h->hijacked) {
            conn_free(h);
            atomic_fetch_sub(&s->hijacked_running, 1); /* last touch of s */
            return;
        }
        if (!finish_request(h))
            break;
    }
done:
    if (atomic_load(&h->state) == C_ACTIVE)
        deactivate(h);
    if (!h->keep && h->rw.err == 0 && (h->rlen > h->rpos || h->req.body_err || !h->req.body_done))
        linger_close(h);
    conn_unlink(h);
    gorc_conn_close(h->c); /* gives up the connection's reference */
    atomic_fetch_sub(&s->conns_open, 1);
    conn_free(h);
}

static hconn *conn_new(gorc_http_server *s, gorc_conn *c)
{
    hconn *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->s = s;
    h->c = c;
    h->req.h = h;
    h->req.body_done = true;
    h->req.pub.proto_major = 1;
    h->fresh = true;
    reset_rw(h);
    if (gorc_conn_remote_addr(c, h->remote, sizeof h->remote) < 0)
        strcpy(h->remote, "");
    return h;
}

/* Register a new connection and start its goroutine. False: the server is closing (late:
 * closed, or past its shutdown deadline) or out of memory, and the caller closes c. */
static bool conn_start(gorc_http_server *s, gorc_conn *c, bool late)
{
    hconn *h = conn_new(s, c);
    if (h == NULL)
        return false;
    gorc_mutex_lock(&s->mu);
    bool ok = !atomic_load(&s->closing) || (late && gorc_ctx_err(s->base) == 0);
    if (ok) {
        h->next = s->conns;
        if (s->conns)
            s->conns->prev = h;
        s->conns = h;
        atomic_fetch_add(&s->conns_open, 1);
        atomic_fetch_add(&s->conns_total, 1);
    }
    gorc_mutex_unlock(&s->mu);
    if (!ok) {
        conn_free(h);
        return false;
    }
    if (gorc_go(serve_conn, h) < 0) {
        conn_unlink(h);
        atomic_fetch_sub(&s->conns_open, 1);
        conn_free(h);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------
 * Hijacking (WebSocket and other protocols that take over the connection)
 *
 * The handler gets the connection and the bytes already read past the request; the server
 * forgets the connection (shutdown neither closes nor waits for it, as in Go) and gives every
 * buffer of the request back to the pool at once, so a long-lived hijacked connection holds
 * none of them. The connection record itself lives until the handler returns.
 * ---------------------------------------------------------------------------------------- */

int gorc_http_rw_hijack(gorc_http_rw *w, gorc_conn **out, char **buffered, size_t *nbuffered)
{
    if (w == NULL || out == NULL || (buffered == NULL) != (nbuffered == NULL))
        return -EINVAL;
    hconn *h = w->h;
    if (h->hijacked || w->sent)
        return -EALREADY;
    if (w->err)
        return w->err;
    int r = flush_out(h); /* responses to earlier pipelined requests */
    if (r < 0)
        return r;
    size_t extra = h->rlen > h->rpos ? h->rlen - h->rpos : 0;
    if (extra > 0 && buffered == NULL)
        return -EINVAL; /* bytes the caller would lose */
    char *copy = NULL;
    if (extra > 0) {
        copy = malloc(extra);
        if (copy == NULL)
            return -ENOMEM;
        memcpy(copy, h->rbuf + h->rpos, extra);
    }
    if (h->watching) { /* the request context's watcher waits on the connection: call it off */
        atomic_store(&h->unwatching, true);
        gorc_conn_set_read_deadline(h->c, gorc_now() - 1);
        gorc_waitgroup_wait(&h->wwg);
        h->watching = false;
        atomic_store(&h->unwatching, false);
    }
    gorc_conn_set_deadline(h->c, 0);
    gorc_http_server *s = h->s;
    atomic_fetch_add(&s->hijacked_running, 1);
    conn_unlink(h);
    atomic_store(&h->state, C_CLOSED);
    atomic_fetch_sub(&s->conns_active, 1);
    atomic_fetch_sub(&s->conns_open, 1);
    *out = h->c;
    h->c = NULL;
    h->hijacked = true;
    h->keep = false;
    h->req.body_done = true;
    w->sent = true;
    w->err = -EALREADY;
    arena_reset(&h->ar);
    buf_release(&h->rbuf, &h->rcap);
    buf_release(&h->wbuf, &h->wcap);
    buf_release(&w->bbuf, &w->bcap);
    w->blen = 0;
    drop_hdrs(h);
    h->rlen = h->rpos = h->hlen = h->wlen = 0;
    if (buffered) {
        *buffered = copy;
        *nbuffered = extra;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Server
 * ---------------------------------------------------------------------------------------- */

static int64_t dflt(int64_t v, int64_t d)
{
    return v == 0 ? d : v < 0 ? -1 : v;
}

int gorc_http_server_new(gorc_http_server **out, const gorc_http_server_opts *opts)
{
    if (out == NULL || opts == NULL || opts->handler == NULL)
        return -EINVAL;
    gorc_http_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->o = *opts;
    s->o.read_header_timeout = dflt(opts->read_header_timeout, DEF_READ_HEADER_TIMEOUT);
    s->o.read_timeout = dflt(opts->read_timeout, DEF_READ_TIMEOUT);
    s->o.write_timeout = dflt(opts->write_timeout, DEF_WRITE_TIMEOUT);
    s->o.idle_timeout = dflt(opts->idle_timeout, DEF_IDLE_TIMEOUT);
    s->o.max_body_bytes = dflt(opts->max_body_bytes, DEF_MAX_BODY);
    if (s->o.max_request_line == 0)
        s->o.max_request_line = GORC__HTTP_DEFAULT_MAX_REQUEST_LINE;
    if (s->o.max_header_bytes == 0)
        s->o.max_header_bytes = GORC__HTTP_DEFAULT_MAX_HEADER_BYTES;
    if (s->o.max_headers == 0)
        s->o.max_headers = GORC__HTTP_DEFAULT_MAX_HEADERS;
    s->lim.max_request_line = s->o.max_request_line;
    s->lim.max_header_bytes = s->o.max_header_bytes;
    s->lim.max_headers = s->o.max_headers;
    s->rmax = s->o.max_request_line + s->o.max_header_bytes + 64;
    if (gorc_ctx_with_cancel(&s->base, gorc_ctx_background()) != 0) {
        free(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

static bool accept_retryable(int e)
{
    return e == -ENOBUFS || e == -ENOMEM || e == -ECONNABORTED || e == -EPROTO || e == -EPERM;
}

static void listener_unlink(gorc_http_server *s, const gorc_listener *l)
{
    gorc_mutex_lock(&s->mu);
    for (lnode **p = &s->listeners; *p; p = &(*p)->next) {
        if ((*p)->l == l) {
            lnode *n = *p;
            *p = n->next;
            free(n);
            break;
        }
    }
    gorc_mutex_unlock(&s->mu);
}

int gorc_http_server_serve(gorc_http_server *s, gorc_listener *l)
{
    if (s == NULL || l == NULL)
        return -EINVAL;
    lnode *n = malloc(sizeof *n);
    if (n == NULL)
        return -ENOMEM;
    n->l = gorc_listener_retain(l);
    gorc_mutex_lock(&s->mu);
    bool closing = atomic_load(&s->closing);
    if (!closing) {
        n->next = s->listeners;
        s->listeners = n;
        atomic_fetch_add(&s->serving, 1);
    }
    gorc_mutex_unlock(&s->mu);
    if (closing) {
        gorc_listener_release(l);
        free(n);
        return GORC_HTTP_ESERVERCLOSED;
    }
    int err;
    for (;;) {
        gorc_conn *c;
        err = gorc_listener_accept(l, &c);
        if (atomic_load(&s->closing)) {
            /* Accepted as shutdown began: the client's connection is established and may
             * carry a request already, so it is served (with Connection: close), as Go does,
             * unless the server was closed. */
            if (err == 0 && !conn_start(s, c, true))
                gorc_conn_close(c);
            err = GORC_HTTP_ESERVERCLOSED;
            break;
        }
        if (err == 0) {
            if (!conn_start(s, c, false))
                gorc_conn_close(c);
            continue;
        }
        if (!accept_retryable(err))
            break;
        gorc_sleep(5 * GORC_MILLISECOND); /* Go backs off on temporary accept errors too */
    }
    listener_unlink(s, l);
    gorc_listener_close(l); /* as Go's Serve does; gives up the reference taken above */
    atomic_fetch_sub(&s->serving, 1);
    return err;
}

int gorc_http_server_listen_and_serve(gorc_http_server *s, const char *addr)
{
    if (s == NULL || addr == NULL)
        return -EINVAL;
    gorc_listener *l;
    int r = gorc_tcp_listen(&l, addr, NULL);
    if (r < 0)
        return r;
    r = gorc_http_server_serve(s, l);
    gorc_listener_release(l);
    return r;
}

int gorc_http_listen_and_serve(const char *addr, gorc_http_handler_fn fn, void *arg)
{
    gorc_http_server_opts o = {.handler = fn, .arg = arg};
    gorc_http_server *s;
    int r = gorc_http_server_new(&s, &o);
    if (r < 0)
        return r;
    r = gorc_http_server_listen_and_serve(s, addr);
    gorc_http_server_close(s);
    gorc_http_server_free(s);
    return r;
}

/* Close the listeners so every gorc_http_server_serve returns. */
static void close_listeners(gorc_http_server *s)
{
    gorc_mutex_lock(&s->mu);
    for (lnode *n = s->listeners; n; n = n->next)
        gorc_listener_close(gorc_listener_retain(n->l));
    gorc_mutex_unlock(&s->mu);
}

/* Close connections: idle ones only, or all. Returns how many of the remaining connections
 * belong to the calling goroutine (a handler shutting its own server down).
 * With shutdown_idle_grace, an idle connection is first marked (C_MARKED, with the time) and
 * closed only if it is still marked, never having started a request, a grace period later. */
static int close_conns(gorc_http_server *s, bool all)
{
    int self = 0;
    uint64_t me = gorc_id();
    int64_t grace = all ? 0 : s->o.shutdown_idle_grace, now = grace > 0 ? gorc_now() : 0;
    gorc_mutex_lock(&s->mu);
    for (hconn *h = s->conns; h; h = h->next) {
        if (atomic_load(&h->gid) == me && me != 0) {
            self++;
            continue;
        }
        int expect = C_IDLE;
        if (grace > 0) {
            if (atomic_compare_exchange_strong(&h->state, &expect, C_MARKED)) {
                h->marked_at = now;
                continue;
            }
            expect = C_MARKED;
            if (now - h->marked_at < grace ||
                !atomic_compare_exchange_strong(&h->state, &expect, C_CLOSED))
                continue;
            gorc_conn_close(gorc_conn_retain(h->c));
            continue;
        }
        if (atomic_compare_exchange_strong(&h->state, &expect, C_CLOSED) || all)
            gorc_conn_close(gorc_conn_retain(h->c));
    }
    gorc_mutex_unlock(&s->mu);
    return self;
}

/* Run the gorc_http_server_on_shutdown functions, once. */
static void run_on_shutdown(gorc_http_server *s)
{
    gorc_mutex_lock(&s->mu);
    bool ran = s->shut_ran;
    s->shut_ran = true;
    gorc_mutex_unlock(&s->mu);
    if (!ran)
        for (int i = 0; i < s->non_shut; i++)
            s->on_shut[i].fn(s->on_shut[i].arg);
}

int gorc_http_server_shutdown(gorc_http_server *s, int64_t deadline)
{
    if (s == NULL)
        return -EINVAL;
    atomic_store(&s->closing, true);
    close_listeners(s);
    run_on_shutdown(s);
    int64_t pause = GORC_MILLISECOND;
    for (;;) {
        int self = close_conns(s, false);
        if (atomic_load(&s->conns_open) <= (uint64_t)self && atomic_load(&s->serving) == 0)
            return 0;
        int64_t now = gorc_now();
        if (deadline > 0 && now >= deadline) {
            gorc_ctx_cancel_cause(s->base, GORC_HTTP_ESERVERCLOSED);
            close_conns(s, true);
            return -ETIMEDOUT;
        }
        int64_t d = pause;
        if (deadline > 0 && deadline - now < d)
            d = deadline - now;
        gorc_sleep(d);
        if (pause < 500 * GORC_MILLISECOND)
            pause *= 2;
    }
}

int gorc_http_server_close(gorc_http_server *s)
{
    if (s == NULL)
        return -EINVAL;
    atomic_store(&s->closing, true);
    gorc_ctx_cancel_cause(s->base, GORC_HTTP_ESERVERCLOSED);
    close_listeners(s);
    run_on_shutdown(s);
    close_conns(s, true);
    return 0;
}

int gorc_http_server_set_next_proto(gorc_http_server *s, const char *proto,
                                    gorc_http_next_proto_fn fn, void *arg)
{
    if (s == NULL || proto == NULL || proto[0] == 0 || strlen(proto) > 32)
        return -EINVAL;
    next_proto *free_slot = NULL;
    for (int i = 0; i < NEXT_PROTO_MAX; i++) {
        next_proto *p = &s->np[i];
        if (p->fn && strcmp(p->name, proto) == 0) {
            free_slot = p;
            break;
        }
        if (p->fn == NULL && free_slot == NULL)
            free_slot = p;
    }
    if (fn == NULL) {
        if (free_slot && free_slot->fn && strcmp(free_slot->name, proto) == 0)
            free_slot->fn = NULL;
    } else {
        if (free_slot == NULL)
            return -ENOMEM;
        strcpy(free_slot->name, proto);
        free_slot->fn = fn;
        free_slot->arg = arg;
    }
    s->h2c = find_proto(s, "h2c");
    return 0;
}

int gorc_http_server_on_shutdown(gorc_http_server *s, void (*fn)(void *arg), void *arg)
{
    if (s == NULL || fn == NULL)
        return -EINVAL;
    gorc_mutex_lock(&s->mu);
    int r = s->non_shut < ON_SHUTDOWN_MAX ? 0 : -ENOSPC;
    if (r == 0) {
        s->on_shut[s->non_shut].fn = fn;
        s->on_shut[s->non_shut].arg = arg;
        s->non_shut++;
    }
    gorc_mutex_unlock(&s->mu);
    return r;
}

const gorc_http_server_opts *gorc_http_server_options(const gorc_http_server *s)
{
    return s ? &s->o : NULL;
}

bool gorc_http_server_closing(const gorc_http_server *s)
{
    return s && atomic_load(&((gorc_http_server *)s)->closing);
}

gorc_ctx *gorc_http_server_ctx(gorc_http_server *s)
{
    return s ? s->base : NULL;
}

void gorc_http_server_count_request(gorc_http_server *s, bool bad)
{
    if (s)
        atomic_fetch_add(bad ? &s->bad_requests : &s->requests, 1);
}

void gorc_http_server_stats_get(gorc_http_server *s, gorc_http_server_stats *out)
{
    if (s == NULL || out == NULL)
        return;
    out->requests = atomic_load(&s->requests);
    out->conns_total = atomic_load(&s->conns_total);
    out->conns_open = atomic_load(&s->conns_open);
    out->conns_active = atomic_load(&s->conns_active);
    out->bad_requests = atomic_load(&s->bad_requests);
    out->timeouts = atomic_load(&s->timeouts);
}

void gorc_http_server_free(gorc_http_server *s)
{
    if (s == NULL)
        return;
    /* Connection goroutines may still be returning from handlers after a forced close. */
    while (atomic_load(&s->conns_open) > 0 || atomic_load(&s->serving) > 0 ||
           atomic_load(&s->hijacked_running) > 0)
        gorc_sleep(GORC_MILLISECOND);
    gorc_ctx_cancel(s->base);
    gorc_ctx_release(s->base);
    free(s);
}

/* ------------------------------------------------------------------------------------------
 * Metrics for the Prometheus handler (http/metrics.c): requests by method and status class,
 * their duration (the handler's run, from the parsed head to its return), bytes read and
 * written on connections, refused requests by status. Relaxed atomics on the server: counts
 * per request, not per switch.
 * ---------------------------------------------------------------------------------------- */

const char *const gorc__http_methods[GORC__HTTP_NMETHODS] = {"GET",    "HEAD",  "POST",    "PUT",
                                                             "DELETE", "PATCH", "OPTIONS", "other"};
const double gorc__http_dur_bounds[GORC__HTTP_NDUR - 1] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                           0.5,   1,    2.5,   5,    10};
const int gorc__http_reject_codes[GORC__HTTP_NREJECT - 1] = {400, 408, 413, 414, 417, 431, 501};

static void count_reject(gorc_http_server *s, int status)
{
    int i = 0;
    while (i < GORC__HTTP_NREJECT - 1 && gorc__http_reject_codes[i] != status)
        i++;
    atomic_fetch_add_explicit(&s->metrics[GORC__HM_REJECT + i], 1, memory_order_relaxed);
}

static void count_request(hconn *h, int64_t t0)
{
    gorc_http_server *s = h->s;
    int m = 0;
    while (m < GORC__HTTP_NMETHODS - 1 && strcmp(gorc__http_methods[m], h->req.pub.method) != 0)
        m++;
    int st = gorc_http_rw_status(&h->rw);
    int cls = st >= 100 && st < 600 ? st / 100 - 1 : GORC__HTTP_NCLASSES - 1;
    atomic_fetch_add_explicit(&s->metrics[GORC__HM_REQ + m * GORC__HTTP_NCLASSES + cls], 1,
                              memory_order_relaxed);
    int64_t d = gorc_now() - t0;
    double secs = (double)d / 1e9;
    int b = 0;
    while (b < GORC__HTTP_NDUR - 1 && secs > gorc__http_dur_bounds[b])
        b++;
    atomic_fetch_add_explicit(&s->metrics[GORC__HM_DUR + b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->metrics[GORC__HM_DURSUM], (uint64_t)(d > 0 ? d : 0),
                              memory_order_relaxed);
}

void gorc__http_server_metrics(gorc_http_server *s, uint64_t *out, gorc_http_server_stats *st)
{
    for (int i = 0; i < GORC__HM_N; i++)
        out[i] = atomic_load_explicit(&s->metrics[i], memory_order_relaxed);
    gorc_http_server_stats_get(s, st);
}
