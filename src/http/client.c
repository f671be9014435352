/*
 * client.c - the HTTP/1.1 client: requests, responses, redirects, a keep-alive pool.
 *
 * A request is one goroutine's straight-line work: take a connection, write the head and
 * body, read the response head; the body is then read on demand by the caller. No goroutine
 * per connection is needed (Go's transport runs two, a reader and a writer, because its
 * connections are shared through channels): the calling goroutine owns the connection from
 * the moment it leaves the pool until the response body ends, and the poller parks it while
 * the network is slow.
 *
 * The pool keeps idle connections per "host:port", most recently used first (warm ones are
 * likelier to be alive, and older ones then age out). A connection returns to the pool as
 * soon as its body has been read to the end, as in Go, not only at close, so a caller that
 * reads a body and immediately sends the next request reuses it. Because of that the response
 * head is copied out of the connection's buffer into the response: the buffer belongs to the
 * next request as soon as the connection is back in the pool.
 *
 * A pooled connection may have been closed by the server while it sat idle. Before reuse it
 * is polled: readable means end of stream or unsolicited bytes, both fatal. The server may
 * still close it in the instant after that check; then the write fails or the read sees end
 * of stream before any response byte, and a request that can be replayed safely (an
 * idempotent method and a body held in memory) is sent once more on a new connection, as Go
 * does.
 *
 * The request body is written before the response is read, in the same goroutine. A server
 * that answers early and closes (a 413 for a large upload) makes the write fail; the client
 * then still looks for that response in what was received, so the caller sees the status
 * rather than a broken pipe.
 *
 * Timeouts are connection deadlines: the whole-exchange deadline is set on every connection
 * an exchange uses (dialing, writing, each redirect, the body), and the response-header
 * timeout narrows the read deadline only while the head is awaited.
 *
 * Contexts. A request may carry a context (req->ctx). Its deadline joins the exchange deadline;
 * its cancellation reaches a request blocked anywhere in it through a watch (cwatch): a hook on
 * the context's cancellation source that shuts the connection in use down, which wakes the
 * blocked read or write; the error is then reported as the context's, and a connection that
 * saw a cancel never goes back to the pool. The watch follows the request from connection to
 * connection (redirects, retries) and lives with the response until it is closed, because the
 * body is read after gorc_http_client_do returns. Its lock guards which connection it points
 * at; the hook's work runs without the source's lock (runtime/cancel.h), so the watch's end
 * waits for a hook run in progress before freeing anything.
 *
 * Idle connections past idle_conn_timeout are closed by a sweeper timer (one per client,
 * armed only while something is idle) so that a quiet client does not hold descriptors the
 * server has already given up on.
 */
#include "context/context.h"
#include "http/internal.h"
#include "net/internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEF_CONNECT_TIMEOUT (30 * GORC_SECOND)
#define DEF_MAX_REDIRECTS   10
#define DEF_MAX_IDLE        64 /* Go keeps 2: a busy gateway then redials thousands a second */
#define DEF_IDLE_TIMEOUT    (90 * GORC_SECOND)
#define DEF_MAX_HEAD        ((size_t)64 << 10)
#define DEF_READ_ALL_MAX    ((size_t)64 << 20)
#define BUF_INIT            8192           /* a connection's read buffer to start with */
#define BUF_KEEP            (BUF_INIT * 4) /* larger buffers are shrunk when pooled */
#define INLINE_BODY         16384          /* in-memory bodies up to this go out with the head */
#define STREAM_CHUNK        16384          /* a streamed body is read in pieces of this size */
#define MAX_1XX             5              /* informational responses before the final one (Go) */
#define SLURP_MAX           2048           /* a redirect's body is drained up to this for reuse */
#define HDRS_INIT           32
#define USER_AGENT          "gorc-http-client/1.1"

/* ------------------------------------------------------------------------------------------
 * Types
 * ---------------------------------------------------------------------------------------- */

/* One connection with its read buffer; buf[off..len) are bytes received but not used yet. */
typedef struct pconn {
    gorc_conn *c;
    char *buf;
    size_t cap, off, len;
    int64_t idle_since;
    bool reused; /* taken from the pool (may have gone stale) */
    struct pconn *next;
    char key[]; /* the pool key, "host:port" in lower case */
} pconn;

/* The idle connections of one host:port, most recently used first. */
typedef struct phost {
    struct phost *next;
    pconn *idle;
    int n;
    char key[];
} phost;

struct gorc_http_client {
    gorc_http_client_opts o; /* with the defaults filled in */
    gorc_mutex mu;           /* guards everything below */
    phost *hosts;
    gorc_timer *sweeper;
    bool sweep_armed, closing;
    gorc_waitgroup sweeps; /* one count while the sweeper is armed or running */
};

/* A request's watch on its context (see the top of the file). */
typedef struct cwatch {
    gorc__cancel_hook h;
    gorc__cancel *src;
    gorc_ctx *ctx;
    gorc__lock mu;           /* guards cur and fired */
    gorc_conn *cur;          /* the connection in use (a reference), or NULL */
    bool fired;              /* the context was cancelled */
    _Atomic bool after_done; /* the hook's work has finished (see watch_end) */
} cwatch;

/* A parsed http or https URL. Every string lives in mem. */
typedef struct hurl {
    char *mem;
    const char *full;      /* "http://" or "https://" authority target: response->url */
    const char *authority; /* host[:port] as written: the Host header */
    const char *dial;      /* "host:port" with the port always present */
    const char *key;       /* dial in lower case: the domain comparisons of redirects */
    const char *target;    /* "/path?query", escaped */
    const char *pkey;      /* the pool key: key, with "https://" in front for https */
    const char *host;      /* the host without port or brackets: what TLS verifies */
    bool tls;              /* https */
} hurl;

enum { BODY_NONE, BODY_MEM, BODY_STREAM };

/* One hop of an exchange (the first request or a redirect). */
typedef struct xreq {
    const gorc_http_client_request *req;
    const char *method;
    hurl url;
    int body;             /* BODY_* sent on this hop */
    bool close;           /* "Connection: close" is sent */
    bool keep_sensitive;  /* Authorization and Cookie still go out (same domain) */
    bool keep_host;       /* the caller's Host header still applies (same host:port) */
    const char *host_hdr; /* the caller's Host header, or NULL */
    char *referer;        /* the previous URL after a redirect, or NULL */
    int64_t deadline;     /* the whole exchange, 0 = none */
    cwatch *cw;           /* the context's watch, or NULL */
} xreq;

typedef struct resp {
    gorc_http_response pub; /* first: the public pointer is this struct's */
    gorc_http_client *cl;
    pconn *pc;     /* NULL once the connection went back or was closed */
    int mode;      /* GORC__HTTP_BODY_* */
    uint64_t left; /* BODY_LENGTH: bytes still to come */
    gorc__http_chunked ch;
    bool done;             /* the body ended */
    bool reusable;         /* the connection may be pooled after the body */
    int err;               /* sticky body error */
    cwatch *cw;            /* the request's context watch, until close */
    gorc_http_header hv[]; /* headers, then their strings */
} resp;

/* ------------------------------------------------------------------------------------------
 * Context watches
 * ---------------------------------------------------------------------------------------- */

static void watch_fn(gorc__cancel_hook *h, gorc__cancel *src, gorc__cancel_later *later)
{
    (void)src;
    h->next = later->run;
    later->run = h;
}

/* Runs once, without the source's lock: cut the connection in use. */
static void watch_after(gorc__cancel_hook *h)
{
    cwatch *cw = (cwatch *)(void *)h;
    gorc__lock_acquire(&cw->mu);
    gorc_conn *c = gorc_conn_retain(cw->cur);
    cw->fired = true;
    gorc__lock_release(&cw->mu);
    if (c) {
        gorc_conn_shutdown(c, SHUT_RDWR);
        gorc_conn_release(c);
    }
    atomic_store_explicit(&cw->after_done, true, memory_order_release); /* cw is gone next */
}

/* A watch for ctx, or NULL with *err 0 when ctx can never be cancelled. */
static cwatch *watch_new(gorc_ctx *ctx, int *err)
{
    *err = 0;
    gorc__cancel *src = ctx ? gorc__ctx_source(ctx) : NULL;
    if (src == NULL)
        return NULL;
    cwatch *cw = calloc(1, sizeof *cw);
    if (cw == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    cw->src = src;
    cw->ctx = gorc_ctx_retain(ctx);
    cw->h.fn = watch_fn;
    cw->h.after = watch_after;
    gorc__cancel_hook_add(src, &cw->h); /* cut at once if ctx is cancelled already */
    return cw;
}

/* The connection now in use (NULL: none). A connection attached after the cancel is cut at
 * once. */
static void watch_set(cwatch *cw, gorc_conn *c)
{
    if (cw == NULL)
        return;
    gorc__lock_acquire(&cw->mu);
    gorc_conn *old = cw->cur;
    cw->cur = gorc_conn_retain(c);
    bool fired = cw->fired;
    gorc__lock_release(&cw->mu);
    gorc_conn_release(old);
    if (fired && c)
        gorc_conn_shutdown(c, SHUT_RDWR);
}

static bool watch_fired(cwatch *cw)
{
    return cw && gorc_ctx_err(cw->ctx) != 0;
}

/* err, or the context's error when the context was cancelled: the I/O error was its doing. */
static int watch_err(cwatch *cw, int err)
{
    int c = cw ? gorc_ctx_err(cw->ctx) : 0;
    return c != 0 ? c : err;
}

static void watch_end(cwatch *cw)
{
    if (cw == NULL)
        return;
    if (!gorc__cancel_unhook(cw->src, &cw->h))
        while (!atomic_load_explicit(&cw->after_done, memory_order_acquire))
            gorc_yield(); /* a cancel is cutting the connection right now */
    gorc_conn_release(cw->cur);
    gorc_ctx_release(cw->ctx);
    free(cw);
}

/* ------------------------------------------------------------------------------------------
 * Byte strings, hex digits, lists
 * ---------------------------------------------------------------------------------------- */

static void sb_header(gorc__http_sbuf *b, const char *name, const char *value)
{
    gorc__http_sbuf_str(b, name);
    gorc__http_sbuf_put(b, ": ", 2);
    gorc__http_sbuf_str(b, value);
    gorc__http_sbuf_put(b, "\r\n", 2);
}

static int64_t min_deadline(int64_t a, int64_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

/* Does the comma-separated list s contain token tok (ASCII case ignored)? */
static bool has_token(const char *s, const char *tok)
{
    gorc__http_slice rest = {s, strlen(s)}, e;
    while (gorc__http_list_next(&rest, &e))
        if (gorc__http_ieq(e, tok, strlen(tok)))
            return true;
    return false;
}

static const char *user_header(const gorc_http_client_request *q, const char *name)
{
    return gorc_http_header_lookup(q->headers, q->num_headers, name);
}

/* ------------------------------------------------------------------------------------------
 * URLs
 * ---------------------------------------------------------------------------------------- */

static void url_free(hurl *u)
{
    free(u->mem);
    u->mem = NULL;
}

/* Length of "scheme:" at the start of s (RFC 3986 §3.1), or 0 when s has no scheme. */
static size_t scheme_len(const char *s)
{
    if (!((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z'))
        return 0;
    size_t i = 1;
    while (s[i] && (strchr("+-.", s[i]) || ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z') ||
                    (s[i] >= '0' && s[i] <= '9')))
        i++;
    return s[i] == ':' ? i + 1 : 0;
}

/* reg-name or IPv4 characters (RFC 3986 §3.2.2; no %-escapes). */
static bool is_host_char(char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
           (c && strchr("-._~!$&'()*+,;=", c));
}

/* Check a port (possibly empty: dflt) and store it, NUL-terminated, in out[6]. */
static int parse_port(const char *p, size_t n, char *out, const char *dflt)
{
    if (n == 0) {
        strcpy(out, dflt);
        return 0;
    }
    if (n > 5)
        return -EINVAL;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -EINVAL;
        v = v * 10 + (p[i] - '0');
    }
    if (v > 65535)
        return -EINVAL;
    memcpy(out, p, n);
    out[n] = 0;
    return 0;
}

/* Split authority a[0..n) into host (with brackets for IPv6) and port. */
static int split_authority(const char *a, size_t n, size_t *host_len, char *port, const char *dflt)
{
    if (n == 0 || memchr(a, '@', n) != NULL)
        return -EINVAL; /* no host, or userinfo (credentials belong in a header) */
    size_t h;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', n);
        char ip[INET6_ADDRSTRLEN];
        struct in6_addr a6;
        size_t in = close ? (size_t)(close - a) - 1 : 0;
        if (close == NULL || in == 0 || in >= sizeof ip)
            return -EINVAL;
        memcpy(ip, a + 1, in);
        ip[in] = 0;
        if (inet_pton(AF_INET6, ip, &a6) != 1)
            return -EINVAL;
        h = in + 2;
    } else {
        h = 0;
        while (h < n && a[h] != ':') {
            if (!is_host_char(a[h]))
                return -EINVAL;
            h++;
        }
        if (h == 0)
            return -EINVAL;
    }
    if (h < n && a[h] != ':')
        return -EINVAL;
    *host_len = h;
    return h < n ? parse_port(a + h + 1, n - h - 1, port, dflt) : parse_port(NULL, 0, port, dflt);
}

/* Escape path-and-query p[0..n) into out (room for 3n + 2): spaces and non-ASCII bytes
 * become %XX; an existing %-escape must be well-formed. */
static ssize_t escape_target(const char *p, size_t n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (n == 0 || p[0] != '/')
        out[o++] = '/';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%' &&
            (i + 2 >= n || gorc__http_hexval(p[i + 1]) < 0 || gorc__http_hexval(p[i + 2]) < 0))
            return -EINVAL;
        if (c <= 0x20 || c >= 0x7f) {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = 0;
    return (ssize_t)o;
}

/* Lay out the strings of u in one allocation. */
static int url_build(hurl *u, bool tls, const char *auth, size_t an, size_t hn, const char *port,
                     const char *tgt, size_t tn)
{
    const char *scheme = tls ? "https://" : "http://";
    size_t sn = strlen(scheme), kp = tls ? sn : 0;
    size_t dn = hn + 1 + strlen(port);
    size_t need =
        (sn + an + 3 * tn + 3) + (an + 1) + 2 * (dn + 1) + (kp + dn + 1) + (hn + 1) + (3 * tn + 3);
    char *m = malloc(need);
    if (m == NULL)
        return -ENOMEM;
    char *full = m, *a = m + sn + an + 3 * tn + 3, *d = a + an + 1, *k = d + dn + 1;
    char *pk = k + dn + 1, *h = pk + kp + dn + 1, *t = h + hn + 1;
    ssize_t r = escape_target(tgt, tn, t);
    if (r < 0) {
        free(m);
        return (int)r;
    }
    memcpy(full, scheme, sn);
    memcpy(full + sn, auth, an);
    memcpy(full + sn + an, t, (size_t)r + 1);
    memcpy(a, auth, an);
    a[an] = 0;
    memcpy(d, auth, hn);
    d[hn] = ':';
    memcpy(d + hn + 1, port, strlen(port) + 1);
    for (size_t i = 0; i <= dn; i++)
        k[i] = (char)((d[i] >= 'A' && d[i] <= 'Z') ? d[i] | 0x20 : d[i]);
    memcpy(pk, scheme, kp);
    memcpy(pk + kp, k, dn + 1);
    bool br = auth[0] == '[';
    memcpy(h, auth + br, hn - 2 * br);
    h[hn - 2 * br] = 0;
    *u = (hurl){m, full, a, d, k, t, tls ? pk : k, h, tls};
    return 0;
}

/* Parse an absolute http URL. The fragment is dropped. */
static int url_parse(hurl *u, const char *s)
{
    memset(u, 0, sizeof *u);
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return -EINVAL;
    size_t sl = scheme_len(s);
    if (sl == 0)
        return -EINVAL;
    bool tls = sl == 6 && strncasecmp(s, "https", 5) == 0;
    if (!tls && (sl != 5 || strncasecmp(s, "http", 4) != 0))
        return -EPROTONOSUPPORT;
    if (strncmp(s + sl, "//", 2) != 0)
        return -EINVAL;
    const char *a = s + sl + 2;
    size_t an = strcspn(a, "/?#"), hn;
    char port[6];
    int r = split_authority(a, an, &hn, port, tls ? "443" : "80");
    if (r < 0)
        return r;
    const char *t = a + an;
    return url_build(u, tls, a, an, hn, port, t, strcspn(t, "#"));
}

/* Go's resolvePath: merge a relative path with the base path and remove dot segments.
 * full[0..n) starts with '/'; out has room for n + 2. */
static void remove_dots(const char *full, size_t n, char *out)
{
    size_t o = 0;
    bool first = true;
    const char *p = full, *end = full + n, *elem = p;
    size_t en = 0;
    out[o++] = '/';
    for (bool found = true; found;) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        elem = p;
        en = slash ? (size_t)(slash - p) : (size_t)(end - p);
        found = slash != NULL;
        p = slash ? slash + 1 : end;
        if (en == 1 && elem[0] == '.') {
            first = false;
        } else if (en == 2 && elem[0] == '.' && elem[1] == '.') {
            size_t i = o;
            while (i > 1 && out[i - 1] != '/')
                i--;
            /* Drop the last element and the slash before it (never the leading '/'). */
            o = i > 1 ? i - 1 : 1;
            first = i <= 1;
        } else {
            if (!first)
                out[o++] = '/';
            memcpy(out + o, elem, en);
            o += en;
            first = false;
        }
    }
    if ((en == 1 && elem[0] == '.') || (en == 2 && elem[0] == '.' && elem[1] == '.'))
        out[o++] = '/';
    out[o] = 0;
    if (o > 1 && out[1] == '/')
        memmove(out, out + 1, o);
}

/* Resolve reference ref (a Location value) against base (RFC 3986 §5.2). */
static int url_resolve(hurl *out, const hurl *base, const char *ref)
{
    if (scheme_len(ref) > 0)
        return url_parse(out, ref);
    gorc__http_sbuf b = {0};
    if (ref[0] == '/' && ref[1] == '/') {
        gorc__http_sbuf_str(&b, base->tls ? "https:" : "http:");
        gorc__http_sbuf_str(&b, ref);
    } else {
        size_t rp = strcspn(ref, "?#");
        const char *bq = strchr(base->target, '?');
        size_t bp = bq ? (size_t)(bq - base->target) : strlen(base->target);
        gorc__http_sbuf path = {0};
        if (rp == 0) {
            gorc__http_sbuf_put(&path, base->target, bp);
        } else if (ref[0] != '/') {
            const char *ls = memrchr(base->target, '/', bp);
            gorc__http_sbuf_put(&path, base->target, ls ? (size_t)(ls - base->target) + 1 : 0);
        }
        gorc__http_sbuf_put(&path, ref, rp);
        char *clean = path.oom ? NULL : malloc(path.n + 2);
        if (clean != NULL)
            remove_dots(path.p, path.n, clean);
        gorc__http_sbuf_str(&b, base->tls ? "https://" : "http://");
        gorc__http_sbuf_str(&b, base->authority);
        gorc__http_sbuf_str(&b, clean ? clean : "");
        if (ref[rp] == '?')
            gorc__http_sbuf_str(&b, ref + rp);
        else if (rp == 0 && bq)
            gorc__http_sbuf_str(&b, bq); /* an empty reference (or "#frag") keeps the base query */
        b.oom |= clean == NULL;
        free(clean);
        free(path.p);
    }
    int r = b.oom ? -ENOMEM : url_parse(out, b.p);
    free(b.p);
    return r;
}

/* Is host:port b the same as a, or a subdomain of it (Go's isDomainOrSubdomain)? */
static bool same_domain(const char *a, const char *b)
{
    size_t an = strlen(a), bn = strlen(b);
    if (an == bn)
        return strcmp(a, b) == 0;
    return bn > an && b[bn - an - 1] == '.' && strcmp(b + bn - an, a) == 0 && a[0] != '[';
}

/* ------------------------------------------------------------------------------------------
 * Connections and the pool
 * ---------------------------------------------------------------------------------------- */

static pconn *pconn_new(gorc_conn *c, const char *key)
{
    size_t kn = strlen(key) + 1;
    pconn *pc = calloc(1, sizeof *pc + kn);
    if (pc == NULL)
        return NULL;
    pc->buf = malloc(BUF_INIT);
    if (pc->buf == NULL) {
        free(pc);
        return NULL;
    }
    pc->cap = BUF_INIT;
    pc->c = c;
    memcpy(pc->key, key, kn);
    return pc;
}

static void pconn_close(pconn *pc)
{
    if (pc == NULL)
        return;
    gorc_conn_close(pc->c);
    free(pc->buf);
    free(pc);
}

static void pconn_close_list(pconn *pc)
{
    while (pc != NULL) {
        pconn *next = pc->next;
        pconn_close(pc);
        pc = next;
    }
}

/* An idle connection that is readable has either been closed by the server or received
 * bytes nobody asked for; neither can carry a request. */
static bool pconn_dead(pconn *pc)
{
    return gorc__conn_poll_in(pc->c);
}

static bool pconn_expired(const gorc_http_client *cl, const pconn *pc, int64_t now)
{
    return cl->o.idle_conn_timeout > 0 && now - pc->idle_since >= cl->o.idle_conn_timeout;
}

static phost **host_find(gorc_http_client *cl, const char *key)
{
    phost **pp = &cl->hosts;
    while (*pp != NULL && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void host_drop_if_empty(phost **pp)
{
    phost *h = *pp;
    if (h->n == 0) {
        *pp = h->next;
        free(h);
    }
}

static void sweep(void *arg);

/* Arm the sweeper to run in d ns (called with cl->mu held). */
static void sweep_arm(gorc_http_client *cl, int64_t d)
{
    if (cl->sweep_armed || cl->closing || cl->o.idle_conn_timeout <= 0)
        return;
    if (cl->sweeper == NULL) {
        if (gorc_after_func(&cl->sweeper, d, sweep, cl) < 0) {
            cl->sweeper = NULL;
            return; /* expired connections are still dropped when next looked at */
        }
    } else {
        gorc_timer_reset(cl->sweeper, d);
    }
    gorc_waitgroup_add(&cl->sweeps, 1);
    cl->sweep_armed = true;
}

/* Unlink every expired idle connection into *dead and return the earliest expiry left. */
static int64_t collect_expired(gorc_http_client *cl, int64_t now, pconn **dead)
{
    int64_t next = INT64_MAX;
    for (phost **hp = &cl->hosts; *hp != NULL;) {
        phost *h = *hp;
        for (pconn **pp = &h->idle; *pp != NULL;) {
            pconn *pc = *pp;
            if (pconn_expired(cl, pc, now)) {
                *pp = pc->next;
                pc->next = *dead;
                *dead = pc;
                h->n--;
            } else {
                int64_t t = pc->idle_since + cl->o.idle_conn_timeout;
                next = t < next ? t : next;
                pp = &pc->next;
            }
        }
        host_drop_if_empty(hp);
        if (*hp == h)
            hp = &h->next;
    }
    return next;
}

static void sweep(void *arg)
{
    gorc_http_client *cl = arg;
    pconn *dead = NULL;
    gorc_mutex_lock(&cl->mu);
    cl->sweep_armed = false;
    if (!cl->closing) {
        int64_t now = gorc_now();
        int64_t next = collect_expired(cl, now, &dead);
        if (next != INT64_MAX)
            sweep_arm(cl, next - now + GORC_MILLISECOND);
    }
    gorc_mutex_unlock(&cl->mu);
    pconn_close_list(dead);
    gorc_waitgroup_done(&cl->sweeps);
}

/* Take the most recently used live idle connection to key, or NULL. */
static pconn *pool_get(gorc_http_client *cl, const char *key)
{
    pconn *dead = NULL, *pc = NULL;
    int64_t now = gorc_now();
    gorc_mutex_lock(&cl->mu);
    phost **hp = host_find(cl, key);
    phost *h = *hp;
    while (h != NULL && h->idle != NULL && pc == NULL) {
        pc = h->idle;
        h->idle = pc->next;
        h->n--;
        if (pconn_expired(cl, pc, now) || pconn_dead(pc)) {
            pc->next = dead;
            dead = pc;
            pc = NULL;
        }
    }
    if (h != NULL)
        host_drop_if_empty(hp);
    gorc_mutex_unlock(&cl->mu);
    pconn_close_list(dead);
    if (pc != NULL) {
        pc->next = NULL;
        pc->reused = true;
    }
    return pc;
}

/* Park pc in the pool, or close it when the pool is full or the client closing. */
static void pool_put(gorc_http_client *cl, pconn *pc)
{
    pc->off = pc->len = 0;
    if (pc->cap > BUF_KEEP) {
        char *b = realloc(pc->buf, BUF_INIT);
        if (b != NULL) {
            pc->buf = b;
            pc->cap = BUF_INIT;
        }
    }
    pc->idle_since = gorc_now();
    gorc_mutex_lock(&cl->mu);
    phost **hp = host_find(cl, pc->key);
    if (*hp == NULL && !cl->closing && cl->o.max_idle_per_host > 0) {
        size_t kn = strlen(pc->key) + 1;
        *hp = calloc(1, sizeof **hp + kn);
        if (*hp != NULL)
            memcpy((*hp)->key, pc->key, kn);
    }
    phost *h = *hp;
    if (h != NULL && !cl->closing && h->n < cl->o.max_idle_per_host) {
        pc->next = h->idle;
        h->idle = pc;
        h->n++;
        sweep_arm(cl, cl->o.idle_conn_timeout);
        pc = NULL;
    }
    gorc_mutex_unlock(&cl->mu);
    pconn_close(pc);
}

/* ------------------------------------------------------------------------------------------
 * Client
 * ---------------------------------------------------------------------------------------- */

static void resolve_opts(gorc_http_client_opts *o, const gorc_http_client_opts *in)
{
    *o = in ? *in : (gorc_http_client_opts){0};
    o->connect_timeout = o->connect_timeout == 0  ? DEF_CONNECT_TIMEOUT
                         : o->connect_timeout < 0 ? 0
                                                  : o->connect_timeout;
    o->response_header_timeout = o->response_header_timeout > 0 ? o->response_header_timeout : 0;
    o->timeout = o->timeout > 0 ? o->timeout : 0;
    o->max_redirects = o->max_redirects == 0 ? DEF_MAX_REDIRECTS : o->max_redirects;
    o->max_idle_per_host = o->max_idle_per_host == 0  ? DEF_MAX_IDLE
                           : o->max_idle_per_host < 0 ? 0
                                                      : o->max_idle_per_host;
    if (o->disable_keepalive)
        o->max_idle_per_host = 0;
    o->idle_conn_timeout = o->idle_conn_timeout == 0 ? DEF_IDLE_TIMEOUT : o->idle_conn_timeout;
    if (o->max_response_header_bytes == 0)
        o->max_response_header_bytes = DEF_MAX_HEAD;
    if (o->max_response_header_bytes > GORC__HTTP_LIMIT_CAP / 2)
        o->max_response_header_bytes = GORC__HTTP_LIMIT_CAP / 2;
}

int gorc_http_client_new(gorc_http_client **out, const gorc_http_client_opts *opts)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    gorc_http_client *cl = calloc(1, sizeof *cl);
    if (cl == NULL)
        return -ENOMEM;
    resolve_opts(&cl->o, opts);
    *out = cl;
    return 0;
}

void gorc_http_client_free(gorc_http_client *cl)
{
    if (cl == NULL)
        return;
    pconn *dead = NULL;
    gorc_mutex_lock(&cl->mu);
    cl->closing = true;
    if (cl->sweep_armed && gorc_timer_stop(cl->sweeper)) {
        cl->sweep_armed = false;
        gorc_waitgroup_done(&cl->sweeps);
    }
    while (cl->hosts != NULL) {
        phost *h = cl->hosts;
        cl->hosts = h->next;
        while (h->idle != NULL) {
            pconn *pc = h->idle;
            h->idle = pc->next;
            pc->next = dead;
            dead = pc;
        }
        free(h);
    }
    gorc_mutex_unlock(&cl->mu);
    gorc_waitgroup_wait(&cl->sweeps); /* a sweep that already fired finishes first */
    if (cl->sweeper != NULL)
        gorc_timer_free(cl->sweeper);
    pconn_close_list(dead);
    free(cl);
}

int gorc_http_client_idle_conns(gorc_http_client *cl, const char *hostport)
{
    if (cl == NULL)
        return -EINVAL;
    char key[256];
    if (hostport) {
        size_t n = strlen(hostport);
        if (n >= sizeof key)
            return -EINVAL;
        for (size_t i = 0; i <= n; i++)
            key[i] =
                (char)(hostport[i] >= 'A' && hostport[i] <= 'Z' ? hostport[i] + 32 : hostport[i]);
    }
    int total = 0;
    gorc_mutex_lock(&cl->mu);
    for (phost *h = cl->hosts; h; h = h->next)
        if (hostport == NULL || strcmp(h->key, key) == 0)
            total += h->n;
    gorc_mutex_unlock(&cl->mu);
    return total;
}

static gorc_once default_once;
static gorc_http_client *default_client;

static void default_init(void *arg)
{
    (void)arg;
    gorc_http_client_new(&default_client, NULL);
}

/* ------------------------------------------------------------------------------------------
 * Writing requests
 * ---------------------------------------------------------------------------------------- */

static bool skip_user_header(const xreq *x, const char *name)
{
    static const char *const managed[] = {"Host", "Content-Length", "Transfer-Encoding",
                                          "Connection"};
    static const char *const sensitive[] = {"Authorization", "WWW-Authenticate", "Cookie",
                                            "Cookie2"};
    for (size_t i = 0; i < sizeof managed / sizeof *managed; i++)
        if (strcasecmp(name, managed[i]) == 0)
            return true;
    for (size_t i = 0; !x->keep_sensitive && i < sizeof sensitive / sizeof *sensitive; i++)
        if (strcasecmp(name, sensitive[i]) == 0)
            return true;
    return x->referer != NULL && strcasecmp(name, "Referer") == 0;
}

/* Methods whose requests carry a body by convention: Go sends "Content-Length: 0" for them
 * when the body is empty, and so do we (some servers answer 411 otherwise). */
static bool wants_length(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0;
}

static void head_framing(const xreq *x, gorc__http_sbuf *b)
{
    const gorc_http_client_request *q = x->req;
    char num[32];
    if (x->body == BODY_STREAM && q->content_length > 0) {
        snprintf(num, sizeof num, "%lld", (long long)q->content_length);
        sb_header(b, "Content-Length", num);
    } else if (x->body == BODY_STREAM) {
        sb_header(b, "Transfer-Encoding", "chunked");
    } else if ((x->body == BODY_MEM && q->body_len > 0) || wants_length(x->method)) {
        snprintf(num, sizeof num, "%zu", x->body == BODY_MEM ? q->body_len : (size_t)0);
        sb_header(b, "Content-Length", num);
    }
    if (x->close)
        sb_header(b, "Connection", "close");
}

static void build_head(const xreq *x, gorc__http_sbuf *b)
{
    const gorc_http_client_request *q = x->req;
    gorc__http_sbuf_str(b, x->method);
    gorc__http_sbuf_put(b, " ", 1);
    gorc__http_sbuf_str(b, x->url.target);
    gorc__http_sbuf_put(b, " HTTP/1.1\r\n", 11);
    sb_header(b, "Host", x->host_hdr && x->keep_host ? x->host_hdr : x->url.authority);
    if (user_header(q, "User-Agent") == NULL)
        sb_header(b, "User-Agent", USER_AGENT);
    for (size_t i = 0; i < q->num_headers; i++)
        if (!skip_user_header(x, q->headers[i].name))
            sb_header(b, q->headers[i].name, q->headers[i].value);
    if (x->referer != NULL)
        sb_header(b, "Referer", x->referer);
    head_framing(x, b);
    gorc__http_sbuf_put(b, "\r\n", 2);
}

/* Write a streamed body, chunked. Body errors are returned with *from_body set. */
static int write_chunked(const xreq *x, gorc_conn *c, char *buf, bool *from_body)
{
    for (;;) {
        ssize_t k = x->req->body_read(x->req->body_arg, buf + 18, STREAM_CHUNK);
        if (k < 0 || k > STREAM_CHUNK) {
            *from_body = true;
            return k < 0 ? (int)k : -EINVAL;
        }
        if (k == 0)
            break;
        char hdr[20];
        int hn = snprintf(hdr, sizeof hdr, "%zx\r\n", (size_t)k);
        memcpy(buf + 18 - hn, hdr, (size_t)hn);
        memcpy(buf + 18 + k, "\r\n", 2);
        ssize_t w = gorc_conn_write_all(c, buf + 18 - hn, (size_t)(hn + k + 2));
        if (w < 0)
            return (int)w;
    }
    ssize_t w = gorc_conn_write_all(c, "0\r\n\r\n", 5);
    return w < 0 ? (int)w : 0;
}

/* Write a streamed body of exactly content_length bytes. */
static int write_counted(const xreq *x, gorc_conn *c, char *buf, bool *from_body)
{
    const gorc_http_client_request *q = x->req;
    uint64_t left = (uint64_t)q->content_length;
    while (left > 0) {
        size_t want = left < STREAM_CHUNK ? (size_t)left : STREAM_CHUNK;
        ssize_t k = q->body_read(q->body_arg, buf, want);
        if (k <= 0 || (size_t)k > want) {
            *from_body = true;
            return k < 0 ? (int)k : -EINVAL; /* shorter than content_length */
        }
        ssize_t w = gorc_conn_write_all(c, buf, (size_t)k);
        if (w < 0)
            return (int)w;
        left -= (uint64_t)k;
    }
    char extra;
    ssize_t k = q->body_read(q->body_arg, &extra, 1);
    if (k != 0)
        *from_body = true;
    return k < 0 ? (int)k : k > 0 ? -EINVAL : 0; /* longer than content_length */
}

static int write_stream(const xreq *x, gorc_conn *c, bool *from_body)
{
    char *buf = malloc(STREAM_CHUNK + 32);
    if (buf == NULL) {
        *from_body = true;
        return -ENOMEM;
    }
    int r = x->req->content_length > 0 ? write_counted(x, c, buf, from_body)
                                       : write_chunked(x, c, buf, from_body);
    free(buf);
    return r;
}

/* Write the request. A failure that is not the connection's sets *from_body (or is -ENOMEM
 * with it set): such a request is not retried and no response is looked for. */
static int write_request(const xreq *x, pconn *pc, bool *from_body)
{
    const gorc_http_client_request *q = x->req;
    gorc__http_sbuf b = {0};
    build_head(x, &b);
    bool inline_body = x->body == BODY_MEM && q->body_len <= INLINE_BODY;
    if (inline_body)
        gorc__http_sbuf_put(&b, q->body, q->body_len);
    if (b.oom) {
        free(b.p);
        *from_body = true;
        return -ENOMEM;
    }
    ssize_t w = gorc_conn_write_all(pc->c, b.p, b.n);
    free(b.p);
    if (w >= 0 && x->body == BODY_MEM && !inline_body)
        w = gorc_conn_write_all(pc->c, q->body, q->body_len);
    if (w < 0)
        return (int)w;
    return x->body == BODY_STREAM ? write_stream(x, pc->c, from_body) : 0;
}

/* ------------------------------------------------------------------------------------------
 * Reading responses
 * ---------------------------------------------------------------------------------------- */

/* Read more bytes into pc's buffer, first moving unused bytes to its front and growing it up
 * to max. Returns the count read, 0 at end of stream, -EMSGSIZE when the buffer is full. */
static ssize_t pconn_fill(pconn *pc, size_t max)
{
    if (pc->off > 0) {
        memmove(pc->buf, pc->buf + pc->off, pc->len - pc->off);
        pc->len -= pc->off;
        pc->off = 0;
    }
    if (pc->len == pc->cap) {
        if (pc->cap >= max)
            return -EMSGSIZE;
        size_t cap = pc->cap * 2 < max ? pc->cap * 2 : max;
        char *b = realloc(pc->buf, cap);
        if (b == NULL)
            return -ENOMEM;
        pc->buf = b;
        pc->cap = cap;
    }
    ssize_t k = gorc_conn_read(pc->c, pc->buf + pc->len, pc->cap - pc->len);
    if (k > 0)
        pc->len += (size_t)k;
    return k;
}

/* Copy the parsed head into a new response. */
static resp *resp_new(const xreq *x, const gorc__http_response *pr)
{
    size_t strs = pr->reason.n + 1 + strlen(x->url.full) + 1;
    for (size_t i = 0; i < pr->num_headers; i++)
        strs += pr->headers[i].name.n + pr->headers[i].value.n + 2;
    resp *r = calloc(1, sizeof *r + pr->num_headers * sizeof(gorc_http_header) + strs);
    if (r == NULL)
        return NULL;
    char *s = (char *)(r->hv + pr->num_headers);
    for (size_t i = 0; i < pr->num_headers; i++) {
        const gorc__http_header *h = &pr->headers[i];
        r->hv[i].name = s;
        memcpy(s, h->name.p, h->name.n);
        s += h->name.n;
        *s++ = 0;
        r->hv[i].value = s;
        memcpy(s, h->value.p, h->value.n);
        s += h->value.n;
        *s++ = 0;
    }
    r->pub.reason = s;
    memcpy(s, pr->reason.p, pr->reason.n);
    s += pr->reason.n;
    *s++ = 0;
    r->pub.url = strcpy(s, x->url.full);
    return r;
}

/* Set up body framing and the public fields from the parsed head. */
static void resp_frame(resp *r, const xreq *x, const gorc__http_response *pr)
{
    r->pub.status = pr->status;
    r->pub.proto_minor = pr->minor_version;
    r->pub.proto_major = 1;
    r->pub.headers = r->hv;
    r->pub.num_headers = pr->num_headers;
    r->mode = pr->status == 101 ? GORC__HTTP_BODY_NONE : (int)pr->body;
    r->reusable =
        pr->keep_alive && !x->close && pr->status != 101 && r->mode != GORC__HTTP_BODY_CLOSE;
    switch (r->mode) {
    case GORC__HTTP_BODY_LENGTH:
        r->left = (uint64_t)pr->content_length;
        r->done = r->left == 0;
        r->pub.content_length = pr->content_length;
        break;
    case GORC__HTTP_BODY_CHUNKED:
        gorc__http_chunked_init(&r->ch, 0, NULL);
        r->pub.content_length = -1;
        break;
    case GORC__HTTP_BODY_CLOSE:
        r->pub.content_length = -1;
        break;
    default:
        r->done = true;
        /* A HEAD response tells the length the body would have had (Go does the same). */
        r->pub.content_length = strcmp(x->method, "HEAD") == 0 ? pr->content_length : 0;
    }
}

/* Give the connection back (body finished, reusable, nothing extra received) or close it. */
static void resp_release(resp *r)
{
    pconn *pc = r->pc;
    if (pc == NULL)
        return;
    r->pc = NULL;
    watch_set(r->cw, NULL); /* before the pool may hand the connection to someone else */
    if (r->done && r->err == 0 && r->reusable && pc->off == pc->len && !watch_fired(r->cw))
        pool_put(r->cl, pc);
    else
        pconn_close(pc);
}

/* Parse the buffered bytes as a response head. Returns the head length, 0 for more, or an
 * error; grows the header array when it is too small. */
static int parse_head(pconn *pc, gorc__http_response *pr, size_t *cap, size_t max, size_t prev)
{
    for (;;) {
        gorc__http_limits lim = {
            .max_request_line = max, .max_header_bytes = max, .max_headers = *cap};
        int h = gorc__http_parse_response(pr, pc->buf + pc->off, pc->len - pc->off, prev, &lim);
        if (h >= 0 || pr->fault != GORC__HTTP_FAULT_TOO_MANY_HEADERS || *cap >= max / 4)
            return h < 0 ? GORC_HTTP_EBADMSG : h;
        gorc__http_header *hs = realloc(pr->headers, *cap * 4 * sizeof *hs);
        if (hs == NULL)
            return -ENOMEM;
        pr->headers = hs;
        *cap *= 4;
        pr->headers_cap = *cap;
        prev = 0;
    }
}

/* Read the response head from pc, skipping 1xx interim responses. *got tells whether any
 * byte of a response arrived (for the stale-connection retry). */
static int read_head(const gorc_http_client *cl, const xreq *x, pconn *pc, resp **out, bool *got)
{
    size_t cap = HDRS_INIT, max = cl->o.max_response_header_bytes, prev = 0;
    size_t bufmax = max > BUF_INIT ? max : BUF_INIT;
    gorc__http_response pr = {.headers = malloc(cap * sizeof(gorc__http_header)),
                              .headers_cap = cap,
                              .head_request = strcmp(x->method, "HEAD") == 0};
    int r = pr.headers ? 0 : -ENOMEM, n1xx = 0;
    while (r == 0) {
        if (pc->len > pc->off) {
            *got = true;
            r = parse_head(pc, &pr, &cap, max, prev);
            if (r > 0 && pr.status < 200 && pr.status != 101) {
                pc->off += (size_t)r; /* 100 Continue, 103 Early Hints: wait for the next */
                r = ++n1xx > MAX_1XX ? GORC_HTTP_EBADMSG : 0;
                prev = 0;
                continue;
            }
            if (r != 0)
                break;
            prev = pc->len - pc->off;
        }
        ssize_t k = pconn_fill(pc, bufmax);
        if (k <= 0)
            r = k == -EMSGSIZE ? GORC_HTTP_EBADMSG : k == 0 ? GORC_EUNEXPECTEDEOF : (int)k;
    }
    if (r > 0) {
        pc->off += (size_t)r;
        *out = resp_new(x, &pr);
        r = *out ? 0 : -ENOMEM;
        if (r == 0)
            resp_frame(*out, x, &pr);
    }
    free(pr.headers);
    return r;
}

/* ------------------------------------------------------------------------------------------
 * One hop: connection, request, response head
 * ---------------------------------------------------------------------------------------- */

static int dial(const gorc_http_client *cl, const xreq *x, pconn **out)
{
    int64_t t = cl->o.connect_timeout;
    if (x->deadline != 0) {
        int64_t left = x->deadline - gorc_now();
        if (left <= 0)
            return -ETIMEDOUT;
        t = t == 0 || left < t ? left : t;
    }
    gorc_conn *c;
    int r;
    if (x->url.tls) /* url_parse let https through only with a hook */
        r = cl->o.dial_tls(cl->o.dial_tls_arg, &c, x->url.dial, x->url.host, "\x08http/1.1", t,
                           x->cw ? x->cw->ctx : NULL);
    else
        r = x->cw ? gorc_tcp_dial_ctx(&c, x->url.dial, t, x->cw->ctx)
                  : gorc_tcp_dial(&c, x->url.dial, t);
    if (r < 0)
        return r;
    *out = pconn_new(c, x->url.pkey);
    if (*out == NULL) {
        gorc_conn_close(c);
        return -ENOMEM;
    }
    return 0;
}

/* Send x on pc and read the response head. *stale: pc was pooled and failed before any
 * response byte, as a connection the server closed while idle does. */
static int exchange(gorc_http_client *cl, const xreq *x, pconn *pc, resp **out, bool *stale)
{
    bool from_body = false, got = false;
    gorc_conn_set_deadline(pc->c, x->deadline);
    int w = write_request(x, pc, &from_body);
    if (w < 0 && (from_body || (w != -EPIPE && w != -ECONNRESET)))
        return w;
    if (cl->o.response_header_timeout > 0)
        gorc_conn_set_read_deadline(
            pc->c, min_deadline(gorc_now() + cl->o.response_header_timeout, x->deadline));
    int r = read_head(cl, x, pc, out, &got);
    *stale = pc->reused && !got;
    if (r < 0)
        return w < 0 ? w : r;
    gorc_conn_set_read_deadline(pc->c, x->deadline);
    resp *rp = *out;
    rp->cl = cl;
    rp->pc = pc;
    rp->cw = x->cw;
    if (w < 0)
        rp->reusable = false; /* an early answer: the request was cut short */
    if (rp->done)
        resp_release(rp);
    return 0;
}

/* Can the request be sent again after a failure on a stale connection? (Go's
 * isReplayable: a body that can be re-read and an idempotent method.) */
static bool replayable(const xreq *x)
{
    static const char *const idem[] = {"GET", "HEAD", "OPTIONS", "TRACE"};
    if (x->body == BODY_STREAM)
        return false;
    for (size_t i = 0; i < sizeof idem / sizeof *idem; i++)
        if (strcmp(x->method, idem[i]) == 0)
            return true;
    return user_header(x->req, "Idempotency-Key") || user_header(x->req, "X-Idempotency-Key");
}

/* Offer the hop to another transport (opts.round_trip). 1: it declined; *h1 may then hold a
 * connection it dialed whose peer chose HTTP/1.1. */
static int foreign_roundtrip(gorc_http_client *cl, const xreq *x, gorc_http_response **out,
                             gorc_conn **h1)
{
    gorc_http_round_trip rt = {
        .req = x->req,
        .method = x->method,
        .scheme = x->url.tls ? "https" : "http",
        .host = x->url.host,
        .dial_tls = x->url.tls ? cl->o.dial_tls : NULL,
        .dial_tls_arg = x->url.tls ? cl->o.dial_tls_arg : NULL,
        .h1_conn = h1,
        .authority = x->keep_host && x->host_hdr ? x->host_hdr : x->url.authority,
        .dial = x->url.dial,
        .target = x->url.target,
        .url = x->url.full,
        .send_body = x->body != BODY_NONE,
        .deadline = x->deadline,
        .response_header_timeout = cl->o.response_header_timeout,
    };
    int r = cl->o.round_trip(cl->o.round_trip_arg, &rt, out);
    if (r != GORC_HTTP_ENOTHANDLED && *h1) { /* a transport that broke the contract */
        gorc_conn_close(*h1);
        *h1 = NULL;
    }
    return r == GORC_HTTP_ENOTHANDLED ? 1 : r;
}

static int roundtrip(gorc_http_client *cl, const xreq *x, gorc_http_response **pub)
{
    gorc_conn *h1 = NULL;
    if (cl->o.round_trip) {
        int f = foreign_roundtrip(cl, x, pub, &h1);
        if (f <= 0)
            return f;
    }
    resp **out = (resp **)pub; /* the public part is first */
    for (int attempt = 0;; attempt++) {
        pconn *pc = NULL;
        int r = 0;
        if (h1) { /* dialed by the other transport, which found the peer speaks HTTP/1.1 */
            pc = pconn_new(h1, x->url.pkey);
            if (pc == NULL) {
                gorc_conn_close(h1);
                return -ENOMEM;
            }
            h1 = NULL;
        } else {
            pc = attempt == 0 ? pool_get(cl, x->url.pkey) : NULL;
            r = pc ? 0 : dial(cl, x, &pc);
        }
        if (r < 0)
            return r;
        watch_set(x->cw, pc->c);
        bool stale = false;
        r = exchange(cl, x, pc, out, &stale);
        if (r == 0)
            return 0;
        pconn_close(pc);
        if (!stale || attempt > 0 || !replayable(x))
            return r;
    }
}

/* ------------------------------------------------------------------------------------------
 * Redirects and the public entry points
 * ---------------------------------------------------------------------------------------- */

static int check_request(const gorc_http_client_request *q)
{
    if (q == NULL || q->url == NULL || (q->method && !gorc__http_is_token(q->method)))
        return -EINVAL;
    if ((q->headers == NULL && q->num_headers > 0) || (q->body == NULL && q->body_len > 0) ||
        (q->body_read != NULL && q->body != NULL))
        return -EINVAL;
    for (size_t i = 0; i < q->num_headers; i++)
        if (!gorc__http_is_token(q->headers[i].name) || !gorc__http_is_value(q->headers[i].value))
            return -EINVAL; /* no header injection through CR or LF */
    return 0;
}

static bool is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* Read (and drop) a little of a redirect's body so that its connection can be reused. */
static void slurp_and_close(gorc_http_response *r)
{
    if (r->content_length <= SLURP_MAX) {
        char buf[512];
        for (size_t total = 0; total < SLURP_MAX;) {
            ssize_t k = gorc_http_response_read(r, buf, sizeof buf);
            if (k <= 0)
                break;
            total += (size_t)k;
        }
    }
    gorc_http_response_close(r);
}

/* Hand the context watch to a response of ours (another transport watches its own). */
static void set_watch(gorc_http_response *r, cwatch *cw)
{
    if (r->ops == NULL)
        ((resp *)r)->cw = cw;
}

/* Turn x into the next hop for redirect response r. Returns 1 to follow, 0 to hand r to the
 * caller as it is, or an error. */
static int next_hop(gorc_http_client *cl, xreq *x, gorc_http_response *r, int hops)
{
    const char *loc = gorc_http_response_header(r, "Location");
    int st = r->status;
    if (cl->o.max_redirects < 0 || !is_redirect(st) || loc == NULL)
        return 0;
    if ((st == 307 || st == 308) && x->body == BODY_STREAM)
        return 0; /* the body cannot be sent twice */
    if (hops >= cl->o.max_redirects)
        return GORC_HTTP_ETOOMANYREDIRECTS;
    hurl nu;
    int e = url_resolve(&nu, &x->url, loc);
    if (e < 0)
        return e;
    if (nu.tls && cl->o.dial_tls == NULL) {
        url_free(&nu);
        return -EPROTONOSUPPORT;
    }
    char *ref = strdup(x->url.full);
    if (ref == NULL) {
        url_free(&nu);
        return -ENOMEM;
    }
    x->keep_sensitive = x->keep_sensitive && same_domain(x->url.key, nu.key);
    x->keep_host = x->keep_host && strcmp(x->url.key, nu.key) == 0;
    url_free(&x->url);
    x->url = nu;
    free(x->referer);
    x->referer = ref;
    if (st != 307 && st != 308) {
        x->body = BODY_NONE;
        if (strcmp(x->method, "HEAD") != 0)
            x->method = "GET";
    }
    return 1;
}

static void xreq_init(gorc_http_client *cl, xreq *x, const gorc_http_client_request *q)
{
    x->req = q;
    x->method = q->method ? q->method : "GET";
    x->body = q->body_read ? BODY_STREAM : q->body ? BODY_MEM : BODY_NONE;
    const char *conn = user_header(q, "Connection");
    x->close = cl->o.disable_keepalive || (conn && has_token(conn, "close"));
    x->keep_sensitive = x->keep_host = true;
    x->host_hdr = user_header(q, "Host");
    x->deadline = cl->o.timeout > 0 ? gorc_now() + cl->o.timeout : 0;
    int64_t d;
    if (gorc_ctx_deadline(q->ctx, &d))
        x->deadline = min_deadline(x->deadline, d);
}

int gorc_http_client_do(gorc_http_client *cl, const gorc_http_client_request *req,
                        gorc_http_response **out)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (cl == NULL) {
        gorc_once_do(&default_once, default_init, NULL);
        if ((cl = default_client) == NULL)
            return -ENOMEM;
    }
    int r = check_request(req);
    if (r < 0)
        return r;
    if ((r = gorc_ctx_err(req->ctx)) != 0)
        return r;
    xreq x = {0};
    xreq_init(cl, &x, req);
    if ((r = url_parse(&x.url, req->url)) < 0)
        return r;
    if (x.url.tls && cl->o.dial_tls == NULL) {
        url_free(&x.url);
        return -EPROTONOSUPPORT;
    }
    x.cw = watch_new(req->ctx, &r);
    for (int hops = 0; r == 0 || r == 1; hops++) { /* r: the watch's error, or next_hop's 1 */
        gorc_http_response *rp = NULL;
        if ((r = roundtrip(cl, &x, &rp)) < 0)
            break;
        r = next_hop(cl, &x, rp, hops);
        if (r <= 0) {
            if (r == 0) {
                *out = rp; /* the response keeps the watch until it is closed */
                if (rp->ops)
                    watch_end(x.cw);
                x.cw = NULL;
            } else {
                set_watch(rp, NULL);
                gorc_http_response_close(rp);
            }
            break;
        }
        set_watch(rp, NULL); /* the watch stays with x for the next hop */
        slurp_and_close(rp);
    }
    if (r < 0)
        r = watch_err(x.cw, r);
    watch_end(x.cw);
    url_free(&x.url);
    free(x.referer);
    return r;
}

int gorc_http_client_get(gorc_http_client *c, const char *url, gorc_http_response **out)
{
    gorc_http_client_request q = {.method = "GET", .url = url};
    return gorc_http_client_do(c, &q, out);
}

/* ------------------------------------------------------------------------------------------
 * Response bodies
 * ---------------------------------------------------------------------------------------- */

/* Up to n bytes from the buffer, or else straight from the connection into buf. */
static ssize_t take(pconn *pc, void *buf, size_t n)
{
    size_t avail = pc->len - pc->off;
    if (avail == 0)
        return gorc_conn_read(pc->c, buf, n);
    size_t k = avail < n ? avail : n;
    memcpy(buf, pc->buf + pc->off, k);
    pc->off += k;
    return (ssize_t)k;
}

static ssize_t read_length(resp *r, void *buf, size_t n)
{
    size_t want = r->left < n ? (size_t)r->left : n;
    ssize_t k = take(r->pc, buf, want);
    if (k == 0)
        return GORC_EUNEXPECTEDEOF;
    if (k > 0 && (r->left -= (uint64_t)k) == 0)
        r->done = true;
    return k;
}

static ssize_t read_close(resp *r, void *buf, size_t n)
{
    ssize_t k = take(r->pc, buf, n);
    if (k == 0)
        r->done = true;
    return k;
}

/* Feed the decoder from the buffer (refilled as needed) until payload or the end shows up.
 * Inside a long chunk with nothing buffered, payload is read straight into buf. */
static ssize_t read_chunked(resp *r, void *buf, size_t n)
{
    pconn *pc = r->pc;
    for (;;) {
        size_t avail = pc->len - pc->off, used = 0;
        const char *src = pc->buf + pc->off;
        if (avail == 0 && r->ch.remaining >= BUF_INIT / 2 && n >= BUF_INIT / 2) {
            size_t want = r->ch.remaining < n ? (size_t)r->ch.remaining : n;
            ssize_t k = gorc_conn_read(pc->c, buf, want);
            if (k <= 0)
                return k == 0 ? GORC_EUNEXPECTEDEOF : k;
            src = buf;
            avail = (size_t)k;
        } else if (avail == 0) {
            pc->off = pc->len = 0;
            ssize_t k = gorc_conn_read(pc->c, pc->buf, pc->cap);
            if (k <= 0)
                return k == 0 ? GORC_EUNEXPECTEDEOF : k;
            pc->len = (size_t)k;
            continue;
        } else if (avail > n) {
            avail = n; /* so that the payload found fits in buf */
        }
        gorc__http_slice data;
        int rc = gorc__http_chunked_decode(&r->ch, src, avail, &used, &data);
        if (src != buf)
            pc->off += used;
        if (rc == GORC__HTTP_CHUNK_DATA) {
            if (data.p != buf)
                memcpy(buf, data.p, data.n);
            return (ssize_t)data.n;
        }
        if (rc == GORC__HTTP_CHUNK_DONE) {
            r->done = true;
            return 0;
        }
        if (rc < 0)
            return GORC_HTTP_EBADMSG;
    }
}

ssize_t gorc_http_response_read(gorc_http_response *pub, void *buf, size_t n)
{
    resp *r = (resp *)pub;
    if (r == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    if (pub->ops)
        return pub->ops->read(pub->impl, buf, n);
    if (r->err != 0)
        return r->err;
    if (r->done || n == 0)
        return 0;
    ssize_t k = r->mode == GORC__HTTP_BODY_LENGTH    ? read_length(r, buf, n)
                : r->mode == GORC__HTTP_BODY_CHUNKED ? read_chunked(r, buf, n)
                                                     : read_close(r, buf, n);
    /* A cut connection looks like an error or, for a body that ends at close, like the end:
     * either way it was the context. */
    if (k <= 0 && watch_fired(r->cw)) {
        k = watch_err(r->cw, (int)k);
        r->done = false;
    }
    if (k < 0)
        r->err = (int)k;
    if (k < 0 || r->done)
        resp_release(r);
    return k;
}

static ssize_t response_reader(void *r, void *buf, size_t n)
{
    return gorc_http_response_read(r, buf, n);
}

ssize_t gorc_http_response_read_all(gorc_http_response *r, char **out, size_t max)
{
    if (r == NULL || out == NULL)
        return -EINVAL;
    size_t hint = r->content_length > 0 ? (size_t)r->content_length : 0;
    return gorc__http_read_all(response_reader, r, hint, max ? max : DEF_READ_ALL_MAX, out);
}

const char *gorc_http_response_header(const gorc_http_response *r, const char *name)
{
    return r ? gorc_http_header_lookup(r->headers, r->num_headers, name) : NULL;
}

void gorc_http_response_close(gorc_http_response *pub)
{
    resp *r = (resp *)pub;
    if (r == NULL)
        return;
    if (pub->ops) {
        pub->ops->close(pub->impl);
        return;
    }
    resp_release(r);
    watch_end(r->cw);
    free(r);
}
