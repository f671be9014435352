/*
 * client.c - the HTTP/2 client (libgorc_http2): one multiplexed connection per host behind
 * gorc_http_client_do.
 *
 * gorc_http2_configure_client fills gorc_http_client_opts.round_trip, so the ordinary client
 * calls (gorc_http_client_do / _get, redirects, timeouts, contexts) send their requests here;
 * a request this transport does not take (no prior knowledge for http://, or a connection
 * whose ALPN chose HTTP/1.1) gets GORC_HTTP_ENOTHANDLED and goes out over HTTP/1.1.
 *
 * https. The round trip carries the client's dial_tls hook (libgorc_tls's, or any other), so
 * this library dials TLS without linking a TLS library: it asks the hook to offer "h2" and
 * "http/1.1" by ALPN. A connection that chose "h2" joins the pool (key "https://host:port");
 * one that chose HTTP/1.1 goes back to the HTTP/1.1 client through rt->h1_conn, which sends
 * the request over it and pools it, and the host is remembered as HTTP/1.1 (h1host) so that
 * its later requests go straight to HTTP/1.1.
 *
 * Connections. Every request to one host:port shares one connection while it lives (Go's
 * http2 ClientConnPool): the first request dials, later ones find it in the pool. nghttp2
 * keeps a request's HEADERS queued while the server's SETTINGS_MAX_CONCURRENT_STREAMS are
 * open, so the stream limit is honoured without a count here. A connection that received
 * GOAWAY or failed leaves the pool; its streams in flight finish or fail.
 *
 * Goroutines, as in the server (server.c): a reader per connection feeds
 * nghttp2_session_mem_recv, a writer gathers frames and writes them, and the requesting
 * goroutine itself pushes the request body into the stream's bounded output buffer (waiting
 * for the server's flow-control window) and waits for the response head. Response bodies are
 * buffered per stream up to the stream window and given back to the server's window as the
 * caller reads them (automatic window updates are off). One mutex per connection protects the
 * session and its streams. Waits honour the exchange's deadline and context through a
 * per-stream context.
 */
#include "gorc_http2.h"

#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CL_WINDOW  (1u << 20)
#define CL_OUTBUF  65536
#define CL_RBUF    16384
#define CL_WBATCH  65536
#define CL_HDR_MAX (64u << 10) /* response header bytes, as the HTTP/1.1 client's default */

typedef struct ccon ccon;

typedef struct cstream {
    ccon *c;
    int32_t id;
    struct cstream *next; /* the connection's list */
    gorc_http_response pub;
    gorc_http_header *hdr;
    size_t nhdr, hcap, hbytes;
    char **sv;
    size_t nsv, svcap;
    char *url;
    bool got_head, closed, released, is_head;
    bool interim; /* the head being received is a 1xx one */
    int err;
    /* Request body. */
    char *out;
    size_t outoff, outlen;
    bool out_eof, deferred, wwait;
    gorc_sema wsem;
    /* Response body. */
    char *in;
    size_t inoff, inlen, incap;
    bool in_eof, rwait;
    gorc_sema rsem;
    gorc_ctx *wctx; /* the exchange's deadline and context, for every wait */
} cstream;

struct ccon {
    gorc_http2_client *cl;
    gorc_conn *conn;
    ccon *next;
    char key[GORC_ADDRSTRLEN + 8];
    gorc_mutex mu;
    nghttp2_session *sess;
    cstream *streams;
    int refs; /* the pool's, the reader's, and one per live stream (under cl->mu) */
    bool dead, goaway, wwait;
    bool settings, swait; /* the server's first SETTINGS arrived; someone waits for it */
    gorc_sema ssem;
    gorc_cond wcond;
    gorc_waitgroup wg; /* reader and writer */
};

/* A dial in progress: other requests to the same host wait for it instead of dialing too. */
typedef struct dialing {
    struct dialing *next;
    const char *key;
} dialing;

/* An https host whose ALPN chose HTTP/1.1: its requests go to HTTP/1.1 without a dial here. */
typedef struct h1host {
    struct h1host *next;
    char key[GORC_ADDRSTRLEN + 8];
} h1host;

/* Hosts remembered at most; past it the list starts again (each then costs one more probe). */
#define H1_HOSTS_MAX 256

struct gorc_http2_client {
    gorc_http2_client_opts o;
    gorc_mutex mu; /* protects conns, dials and every ccon's refs */
    ccon *conns;
    dialing *dials_now;
    h1host *h1; /* https hosts that speak HTTP/1.1 only (under mu), nh1 of them */
    int nh1;
    gorc_cond dcond; /* a dial finished (l = &mu) */
    bool closing;
    _Atomic uint64_t dials;
    /* Connections not yet freed (their last ccon_unref still to run, which locks mu):
     * gorc_http2_client_free waits for 0 before it frees the client. */
    _Atomic int live;
};

static void cc_kick(ccon *c)
{
    if (c->wwait) {
        c->wwait = false;
        gorc_cond_signal(&c->wcond);
    }
}

static void wake(gorc_sema *s, bool *flag)
{
    if (*flag) {
        *flag = false;
        gorc_sema_release(s, 1);
    }
}

/* Wait (flag set under c->mu) with the lock released; the stream's context bounds it.
 * Returns 0 or the context's error. */
static int cwait(ccon *c, cstream *st, gorc_sema *sem, bool *flag)
{
    gorc_mutex_unlock(&c->mu);
    int r = st->wctx ? gorc_sema_acquire_ctx(sem, 1, st->wctx) : gorc_sema_acquire(sem, 1);
    gorc_mutex_lock(&c->mu);
    if (r < 0) {
        if (*flag)
            *flag = false;
        int cause = st->wctx ? gorc_ctx_cause(st->wctx) : 0;
        return cause ? cause : r;
    }
    return 0;
}

static void stream_free(cstream *st);

static void ccon_unref(ccon *c)
{
    gorc_http2_client *cl = c->cl;
    gorc_mutex_lock(&cl->mu);
    bool last = --c->refs == 0;
    gorc_mutex_unlock(&cl->mu);
    if (!last)
        return;
    gorc_waitgroup_wait(&c->wg);
    while (c->streams) /* released ones whose close the server never confirmed */
        stream_free(c->streams);
    nghttp2_session_del(c->sess);
    gorc_conn_close(c->conn);
    free(c);
    atomic_fetch_sub(&cl->live, 1); /* the last touch of cl: gorc_http2_client_free waits */
}

/* Take c out of the pool (under cl->mu). */
static void pool_remove(gorc_http2_client *cl, ccon *c)
{
    for (ccon **p = &cl->conns; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            c->next = NULL;
            c->refs--; /* the pool's */
            return;
        }
    }
}

static void stream_free(cstream *st)
{
    ccon *c = st->c;
    for (cstream **p = &c->streams; *p; p = &(*p)->next)
        if (*p == st) {
            *p = st->next;
            break;
        }
    for (size_t i = 0; i < st->nsv; i++)
        free(st->sv[i]);
    free(st->sv);
    free(st->hdr);
    free(st->url);
    free(st->out);
    free(st->in);
    if (st->wctx) {
        gorc_ctx_cancel(st->wctx);
        gorc_ctx_release(st->wctx);
    }
    free(st);
}

static void stream_fail(cstream *st, int err)
{
    if (st->err == 0)
        st->err = err;
    wake(&st->rsem, &st->rwait);
    wake(&st->wsem, &st->wwait);
}

/* ------------------------------------------------------------------------------------------
 * nghttp2 callbacks (under the connection's mu)
 * ---------------------------------------------------------------------------------------- */

static char *keep_str(cstream *st, const char *p, size_t n)
{
    if (st->nsv == st->svcap) {
        size_t cap = st->svcap ? st->svcap * 2 : 32;
        char **nv = realloc(st->sv, cap * sizeof *nv);
        if (nv == NULL)
            return NULL;
        st->sv = nv;
        st->svcap = cap;
    }
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, p, n);
    s[n] = 0;
    st->sv[st->nsv++] = s;
    return s;
}

static int c_on_header(nghttp2_session *sess, const nghttp2_frame *f, const uint8_t *name,
                       size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    cstream *st = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
    /* The first head is a RESPONSE; after a 1xx one nghttp2 files the final head as HEADERS,
     * as it does trailers (which come after the final head and are not kept). */
    if (st == NULL || f->hd.type != NGHTTP2_HEADERS ||
        !(f->headers.cat == NGHTTP2_HCAT_RESPONSE ||
          (f->headers.cat == NGHTTP2_HCAT_HEADERS && !st->got_head)))
        return 0;
    st->hbytes += nlen + vlen + 32;
    if (st->hbytes > CL_HDR_MAX)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        int s = 0;
        for (size_t i = 0; i < vlen; i++)
            s = s * 10 + (value[i] - '0');
        /* A 1xx head (100 Continue, 103 Early Hints; nghttp2 files it as a response too) is
         * skipped with its fields, as the HTTP/1.1 client skips it; the final head follows. */
        st->interim = s < 200;
        if (!st->interim)
            st->pub.status = s;
        return 0;
    }
    if ((nlen > 0 && name[0] == ':') || st->interim)
        return 0;
    if (st->nhdr == st->hcap) {
        size_t cap = st->hcap ? st->hcap * 2 : 16;
        gorc_http_header *nh = realloc(st->hdr, cap * sizeof *nh);
        if (nh == NULL)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        st->hdr = nh;
        st->hcap = cap;
    }
    char *n = keep_str(st, (const char *)name, nlen), *v = keep_str(st, (const char *)value, vlen);
    if (n == NULL || v == NULL)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->hdr[st->nhdr].name = n;
    st->hdr[st->nhdr].value = v;
    st->nhdr++;
    if (nlen == 14 && memcmp(name, "content-length", 14) == 0) {
        char *e;
        long long cl = strtoll(v, &e, 10);
        if (*e == 0 && cl >= 0)
            st->pub.content_length = cl;
    }
    return 0;
}

static int c_on_frame_recv(nghttp2_session *sess, const nghttp2_frame *f, void *user)
{
    ccon *c = user;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = true;
        return 0;
    }
    if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK) && !c->settings) {
        c->settings = true;
        wake(&c->ssem, &c->swait);
        return 0;
    }
    cstream *st = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
    if (st == NULL)
        return 0;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (f->hd.type == NGHTTP2_HEADERS && !st->got_head && !st->interim && st->pub.status >= 200) {
        st->got_head = true;
        wake(&st->rsem, &st->rwait);
    }
    if (end && (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA)) {
        st->in_eof = true;
        wake(&st->rsem, &st->rwait);
    }
    return 0;
}

static int c_on_data(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data,
                     size_t len, void *user)
{
    cstream *st = nghttp2_session_get_stream_user_data(sess, id);
    if (st == NULL || st->released) {
        nghttp2_session_consume(sess, id, len);
        return 0;
    }
    if (st->inoff > 0 && st->inlen + len > st->incap) {
        memmove(st->in, st->in + st->inoff, st->inlen - st->inoff);
        st->inlen -= st->inoff;
        st->inoff = 0;
    }
    if (st->inlen + len > st->incap) { /* bounded by the stream window we advertise */
        size_t cap = st->incap ? st->incap * 2 : 16384;
        while (cap < st->inlen + len)
            cap *= 2;
        char *n = realloc(st->in, cap);
        if (n == NULL)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        st->in = n;
        st->incap = cap;
    }
    memcpy(st->in + st->inlen, data, len);
    st->inlen += len;
    wake(&st->rsem, &st->rwait);
    return 0;
}

static int c_on_close(nghttp2_session *sess, int32_t id, uint32_t code, void *user)
{
    cstream *st = nghttp2_session_get_stream_user_data(sess, id);
    if (st == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(sess, id, NULL);
    st->closed = true;
    if (!st->in_eof)
        stream_fail(st, code == NGHTTP2_REFUSED_STREAM ? -ECONNREFUSED : -ECONNRESET);
    wake(&st->rsem, &st->rwait);
    wake(&st->wsem, &st->wwait);
    if (st->released)
        stream_free(st);
    return 0;
}

static ssize_t c_data_read(nghttp2_session *sess, int32_t id, uint8_t *buf, size_t length,
                           uint32_t *flags, nghttp2_data_source *src, void *user)
{
    cstream *st = src->ptr;
    size_t avail = st->outlen - st->outoff;
    if (avail == 0 && !st->out_eof) {
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = avail < length ? avail : length;
    memcpy(buf, st->out + st->outoff, n);
    st->outoff += n;
    if (st->outoff == st->outlen)
        st->outoff = st->outlen = 0;
    wake(&st->wsem, &st->wwait);
    if (st->out_eof && st->outlen == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static nghttp2_session_callbacks *ccbs;
static pthread_once_t ccbs_once = PTHREAD_ONCE_INIT;

static void ccbs_make(void)
{
    if (nghttp2_session_callbacks_new(&ccbs) != 0) {
        ccbs = NULL;
        return;
    }
    nghttp2_session_callbacks_set_on_header_callback(ccbs, c_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(ccbs, c_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(ccbs, c_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(ccbs, c_on_close);
}

/* ------------------------------------------------------------------------------------------
 * Connections
 * ---------------------------------------------------------------------------------------- */

static void c_dead(ccon *c)
{
    c->dead = true;
    wake(&c->ssem, &c->swait);
    for (cstream *st = c->streams; st; st = st->next)
        stream_fail(st, -ECONNRESET);
    cc_kick(c);
}

static void c_writer(void *arg)
{
    ccon *c = arg;
    char *buf = malloc(CL_WBATCH + 16384);
    size_t cap = CL_WBATCH + 16384;
    gorc_mutex_lock(&c->mu);
    while (buf && !c->dead) {
        size_t n = 0;
        while (n < CL_WBATCH) {
            const uint8_t *p;
            ssize_t k = nghttp2_session_mem_send(c->sess, &p);
            if (k <= 0) {
                if (k < 0)
                    c_dead(c);
                break;
            }
            if (n + (size_t)k > cap) {
                char *nb = realloc(buf, n + (size_t)k);
                if (nb == NULL) {
                    c_dead(c);
                    break;
                }
                buf = nb;
                cap = n + (size_t)k;
            }
            memcpy(buf + n, p, (size_t)k);
            n += (size_t)k;
        }
        if (n > 0 && !c->dead) {
            gorc_mutex_unlock(&c->mu);
            ssize_t w = gorc_conn_write_all(c->conn, buf, n);
            gorc_mutex_lock(&c->mu);
            if (w < 0)
                c_dead(c);
            continue;
        }
        if (c->dead)
            break;
        c->wwait = true;
        gorc_cond_wait(&c->wcond);
    }
    if (buf == NULL)
        c_dead(c);
    free(buf);
    gorc_mutex_unlock(&c->mu);
    gorc_conn_shutdown(c->conn, SHUT_RD); /* the reader stops too */
    gorc_waitgroup_done(&c->wg);
}

static void c_reader(void *arg)
{
    ccon *c = arg;
    gorc_http2_client *cl = c->cl;
    char *buf = malloc(CL_RBUF);
    while (buf) {
        ssize_t k = gorc_conn_read(c->conn, buf, CL_RBUF);
        gorc_mutex_lock(&c->mu);
        bool stop =
            k <= 0 || c->dead || nghttp2_session_mem_recv(c->sess, (uint8_t *)buf, (size_t)k) < 0;
        cc_kick(c);
        if (!stop && !nghttp2_session_want_read(c->sess) && !nghttp2_session_want_write(c->sess))
            stop = true;
        if (stop)
            c_dead(c);
        bool gone = c->goaway || c->dead;
        gorc_mutex_unlock(&c->mu);
        if (gone) {
            gorc_mutex_lock(&cl->mu);
            pool_remove(cl, c);
            gorc_mutex_unlock(&cl->mu);
        }
        if (stop)
            break;
    }
    if (buf == NULL) {
        gorc_mutex_lock(&c->mu);
        c_dead(c);
        gorc_mutex_unlock(&c->mu);
    }
    free(buf);
    gorc_mutex_lock(&cl->mu);
    pool_remove(cl, c);
    gorc_mutex_unlock(&cl->mu);
    gorc_waitgroup_done(&c->wg);
    ccon_unref(c); /* the reader's */
}

/* A connection to dial (pooled, with a reference for the caller), or an error. */
static int dial_conn(gorc_http2_client *cl, const gorc_http_round_trip *rt, const char *key,
                     ccon **out);

static bool is_h1(const gorc_http2_client *cl, const char *key)
{
    for (const h1host *h = cl->h1; h; h = h->next)
        if (strcasecmp(h->key, key) == 0)
            return true;
    return false;
}

/* Remember that key's server chose HTTP/1.1 (under cl->mu). */
static void mark_h1(gorc_http2_client *cl, const char *key)
{
    if (is_h1(cl, key))
        return;
    if (cl->nh1 >= H1_HOSTS_MAX) {
        while (cl->h1) {
            h1host *h = cl->h1;
            cl->h1 = h->next;
            free(h);
        }
        cl->nh1 = 0;
    }
    h1host *h = calloc(1, sizeof *h);
    if (h == NULL)
        return; /* only a lost shortcut: the next request probes again */
    snprintf(h->key, sizeof h->key, "%s", key);
    h->next = cl->h1;
    cl->h1 = h;
    cl->nh1++;
}

/* A pooled connection to rt->dial with a reference for the caller; at most one dial per host
 * at a time (Go's dialCall), so concurrent first requests share one connection. Pool keys are
 * "host:port" for h2c and "https://host:port" for h2 over TLS. GORC_HTTP_ENOTHANDLED: the
 * host speaks HTTP/1.1 (and *rt->h1_conn may hold the connection that found it out). */
static int get_conn(gorc_http2_client *cl, const gorc_http_round_trip *rt, ccon **out)
{
    char key[sizeof((ccon *)0)->key];
    bool tls = strcmp(rt->scheme, "https") == 0;
    if ((size_t)snprintf(key, sizeof key, "%s%s", tls ? "https://" : "", rt->dial) >= sizeof key)
        return -EINVAL;
    gorc_mutex_lock(&cl->mu);
    for (;;) {
        if (tls && is_h1(cl, key)) {
            gorc_mutex_unlock(&cl->mu);
            return GORC_HTTP_ENOTHANDLED;
        }
        for (ccon *c = cl->conns; c; c = c->next) {
            if (strcasecmp(c->key, key) == 0 && !c->dead && !c->goaway) {
                c->refs++;
                gorc_mutex_unlock(&cl->mu);
                *out = c;
                return 0;
            }
        }
        if (cl->closing) {
            gorc_mutex_unlock(&cl->mu);
            return -ESHUTDOWN;
        }
        bool busy = false;
        for (dialing *d = cl->dials_now; d; d = d->next)
            busy |= strcasecmp(d->key, key) == 0;
        if (!busy)
            break;
        gorc_cond_wait(&cl->dcond);
    }
    dialing me = {.next = cl->dials_now, .key = key};
    /* cppcheck-suppress autoVariables ; unlinked below, before this frame returns */
    cl->dials_now = &me;
    gorc_mutex_unlock(&cl->mu);
    int r = dial_conn(cl, rt, key, out);
    gorc_mutex_lock(&cl->mu);
    if (r == GORC_HTTP_ENOTHANDLED)
        mark_h1(cl, key); /* before the waiters look again */
    for (dialing **p = &cl->dials_now; *p; p = &(*p)->next)
        if (*p == &me) {
            *p = me.next;
            break;
        }
    gorc_cond_broadcast(&cl->dcond);
    gorc_mutex_unlock(&cl->mu);
    return r;
}

static int dial_conn(gorc_http2_client *cl, const gorc_http_round_trip *rt, const char *key,
                     ccon **out)
{
    int64_t t = 30 * GORC_SECOND;
    if (rt->deadline > 0) {
        t = rt->deadline - gorc_now();
        if (t <= 0)
            return -ETIMEDOUT;
    }
    gorc_conn *conn;
    int r;
    if (rt->dial_tls) {
        /* h2 over TLS: offer "h2" first and HTTP/1.1 as the fallback (Go's NextProtos). */
        r = rt->dial_tls(rt->dial_tls_arg, &conn, rt->dial, rt->host, "\x02h2\x08http/1.1", t,
                         rt->req->ctx);
        if (r < 0)
            return r;
        atomic_fetch_add(&cl->dials, 1);
        if (strcmp(gorc_conn_protocol(conn), "h2") != 0) {
            /* The server chose HTTP/1.1 (or nothing): hand the connection to HTTP/1.1. */
            if (rt->h1_conn)
                *rt->h1_conn = conn;
            else
                gorc_conn_close(conn);
            return GORC_HTTP_ENOTHANDLED;
        }
    } else {
        r = rt->req->ctx ? gorc_tcp_dial_ctx(&conn, rt->dial, t, rt->req->ctx)
                         : gorc_tcp_dial(&conn, rt->dial, t);
        if (r < 0)
            return r;
        atomic_fetch_add(&cl->dials, 1);
    }
    ccon *c = calloc(1, sizeof *c);
    nghttp2_option *opt = NULL;
    pthread_once(&ccbs_once, ccbs_make);
    if (c == NULL || ccbs == NULL || nghttp2_option_new(&opt) != 0) {
        free(c);
        gorc_conn_close(conn);
        return -ENOMEM;
    }
    nghttp2_option_set_no_auto_window_update(opt, 1);
    r = nghttp2_session_client_new2(&c->sess, ccbs, c, opt);
    nghttp2_option_del(opt);
    if (r != 0) {
        free(c);
        gorc_conn_close(conn);
        return -ENOMEM;
    }
    c->cl = cl;
    c->conn = conn;
    c->wcond.l = &c->mu;
    gorc_sema_init(&c->ssem, 0);
    snprintf(c->key, sizeof c->key, "%s", key);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, cl->o.stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, CL_HDR_MAX},
    };
    nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, 3);
    nghttp2_session_set_local_window_size(c->sess, NGHTTP2_FLAG_NONE, 0,
                                          (int32_t)cl->o.conn_window);
    c->refs = 3; /* the pool, the reader, the caller */
    atomic_fetch_add(&cl->live, 1);
    gorc_waitgroup_add(&c->wg, 2);
    if (gorc_go(c_writer, c) < 0 || gorc_go(c_reader, c) < 0) {
        /* Cannot happen short of memory; the goroutine that started cleans up. */
        gorc_waitgroup_done(&c->wg);
        c->dead = true;
    }
    /* The first requests wait for the server's SETTINGS, so that they respect its stream
     * limit from the start instead of being refused (REFUSED_STREAM) above it. */
    gorc_mutex_lock(&c->mu);
    int64_t wait = rt->deadline > 0 ? rt->deadline - gorc_now() : 10 * GORC_SECOND;
    if (!c->settings && !c->dead) {
        c->swait = true;
        gorc_mutex_unlock(&c->mu);
        int w = wait > 0 ? gorc_sema_acquire_timeout(&c->ssem, 1, wait) : -ETIMEDOUT;
        gorc_mutex_lock(&c->mu);
        if (w < 0 && c->swait)
            c->swait = false;
    }
    bool up = c->settings && !c->dead;
    if (!up)
        c_dead(c);
    gorc_mutex_unlock(&c->mu);
    if (!up) {
        gorc_conn_close(gorc_conn_retain(c->conn)); /* the reader ends */
        ccon_unref(c);
        ccon_unref(c); /* the pool's: it never joined */
        return -ECONNRESET;
    }
    gorc_mutex_lock(&cl->mu);
    c->next = cl->conns;
    cl->conns = c;
    gorc_mutex_unlock(&cl->mu);
    *out = c;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Requests and responses
 * ---------------------------------------------------------------------------------------- */

static ssize_t resp_read(void *impl, void *buf, size_t n)
{
    cstream *st = impl;
    ccon *c = st->c;
    gorc_mutex_lock(&c->mu);
    ssize_t r;
    for (;;) {
        size_t avail = st->inlen - st->inoff;
        if (avail > 0) {
            size_t k = avail < n ? avail : n;
            memcpy(buf, st->in + st->inoff, k);
            st->inoff += k;
            if (st->inoff == st->inlen)
                st->inoff = st->inlen = 0;
            if (!c->dead) {
                if (st->closed)
                    nghttp2_session_consume_connection(c->sess, k);
                else
                    nghttp2_session_consume(c->sess, st->id, k);
                cc_kick(c);
            }
            r = (ssize_t)k;
            break;
        }
        if (st->in_eof || n == 0) {
            r = 0;
            break;
        }
        if (st->err) {
            r = st->err;
            break;
        }
        st->rwait = true;
        int e = cwait(c, st, &st->rsem, &st->rwait);
        if (e < 0 && st->err == 0)
            st->err = e;
    }
    gorc_mutex_unlock(&c->mu);
    return r;
}

static void resp_close(void *impl)
{
    cstream *st = impl;
    ccon *c = st->c;
    gorc_mutex_lock(&c->mu);
    st->released = true;
    if (!st->closed && !c->dead) {
        nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
        size_t left = st->inlen - st->inoff;
        if (left)
            nghttp2_session_consume(c->sess, st->id, left);
        cc_kick(c);
    }
    bool now = st->closed || c->dead || st->id <= 0;
    if (now)
        stream_free(st);
    gorc_mutex_unlock(&c->mu);
    ccon_unref(c); /* the stream's */
}

static const gorc_http_response_ops resp_ops = {.read = resp_read, .close = resp_close};

static bool skip_header(const char *name)
{
    static const char *const no[] = {
        "Host",    "Connection", "Keep-Alive",        "Proxy-Connection",
        "Upgrade", "Te",         "Transfer-Encoding", "Content-Length"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (strcasecmp(name, no[i]) == 0)
            return true;
    return false;
}

/* Push the request body into the stream (the caller's goroutine). 0 or an error. */
static int push_body(ccon *c, cstream *st, const gorc_http_round_trip *rt)
{
    const gorc_http_client_request *q = rt->req;
    size_t memoff = 0;
    char chunk[16384];
    for (;;) {
        const char *p;
        size_t n;
        if (q->body_read) {
            gorc_mutex_unlock(&c->mu);
            ssize_t k = q->body_read(q->body_arg, chunk, sizeof chunk);
            gorc_mutex_lock(&c->mu);
            if (k < 0)
                return (int)k;
            p = chunk;
            n = (size_t)k;
        } else {
            p = (const char *)q->body + memoff;
            n = q->body_len - memoff < sizeof chunk ? q->body_len - memoff : sizeof chunk;
            memoff += n;
        }
        if (n == 0) {
            st->out_eof = true;
            if (st->deferred && !c->dead) {
                st->deferred = false;
                nghttp2_session_resume_data(c->sess, st->id);
            }
            cc_kick(c);
            return 0;
        }
        while (n > 0) {
            if (st->err || c->dead || st->closed)
                return st->got_head ? 0 : (st->err ? st->err : -ECONNRESET);
            if (st->outoff > 0 && st->outlen == CL_OUTBUF) {
                memmove(st->out, st->out + st->outoff, st->outlen - st->outoff);
                st->outlen -= st->outoff;
                st->outoff = 0;
            }
            size_t space = CL_OUTBUF - st->outlen;
            if (space == 0) {
                st->wwait = true;
                int e = cwait(c, st, &st->wsem, &st->wwait);
                if (e < 0)
                    return e;
                continue;
            }
            size_t k = space < n ? space : n;
            memcpy(st->out + st->outlen, p, k);
            st->outlen += k;
            p += k;
            n -= k;
            if (st->deferred) {
                st->deferred = false;
                nghttp2_session_resume_data(c->sess, st->id);
            }
            cc_kick(c);
        }
    }
}

/* One attempt at rt. *unprocessed: it failed in a way that tells the server never processed
 * it - REFUSED_STREAM, or a GOAWAY whose last stream is below ours (nghttp2 closes those
 * streams with REFUSED_STREAM), before any response head (RFC 9113, 8.7). */
static int round_trip_once(gorc_http2_client *cl, const gorc_http_round_trip *rt,
                           gorc_http_response **out, bool *unprocessed)
{
    ccon *c = NULL;
    int r = get_conn(cl, rt, &c);
    if (r < 0)
        return r;
    const gorc_http_client_request *q = rt->req;
    cstream *st = calloc(1, sizeof *st);
    bool body = rt->send_body && (q->body_read || q->body_len > 0);
    if (st == NULL || (body && (st->out = malloc(CL_OUTBUF)) == NULL) ||
        (st->url = strdup(rt->url)) == NULL) {
        if (st)
            free(st->out);
        free(st);
        ccon_unref(c);
        return -ENOMEM;
    }
    st->c = c;
    st->is_head = strcmp(rt->method, "HEAD") == 0;
    st->pub.content_length = -1;
    st->pub.proto_major = 2;
    st->pub.url = st->url;
    st->pub.ops = &resp_ops;
    st->pub.impl = st;
    gorc_sema_init(&st->rsem, 0);
    gorc_sema_init(&st->wsem, 0);
    if (rt->deadline > 0 || q->ctx) {
        gorc_ctx *parent = q->ctx ? q->ctx : gorc_ctx_background();
        r = rt->deadline > 0 ? gorc_ctx_with_deadline(&st->wctx, parent, rt->deadline, -ETIMEDOUT)
                             : gorc_ctx_with_cancel(&st->wctx, parent);
        if (r < 0)
            st->wctx = NULL;
    }
    size_t max = q->num_headers + 6;
    nghttp2_nv *nv = calloc(max, sizeof *nv);
    char **low = calloc(max, sizeof *low);
    /* cppcheck-suppress variableScope ; nv points into it until nghttp2_submit_request */
    char clen[24];
    if (nv == NULL || low == NULL) {
        free(nv);
        free(low);
        gorc_mutex_lock(&c->mu);
        st->next = c->streams; /* stream_free unlinks it */
        c->streams = st;
        stream_free(st);
        gorc_mutex_unlock(&c->mu);
        ccon_unref(c);
        return -ENOMEM;
    }
    size_t k = 0;
#define NV(n, v) (nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), 0}
    nv[k++] = NV(":method", rt->method);
    nv[k++] = NV(":scheme", rt->scheme);
    nv[k++] = NV(":authority", rt->authority);
    nv[k++] = NV(":path", rt->target);
    bool have_ua = false;
    for (size_t i = 0; i < q->num_headers; i++) {
        const char *n = q->headers[i].name;
        if (skip_header(n))
            continue;
        size_t nl = strlen(n);
        low[i] = malloc(nl + 1);
        if (low[i] == NULL)
            continue;
        for (size_t j = 0; j <= nl; j++)
            low[i][j] = (char)(n[j] >= 'A' && n[j] <= 'Z' ? n[j] | 0x20 : n[j]);
        have_ua |= strcmp(low[i], "user-agent") == 0;
        nv[k++] = NV(low[i], q->headers[i].value);
    }
    if (!have_ua)
        nv[k++] = NV("user-agent", "gorc-http-client/2");
    if (body && (q->body || q->content_length > 0)) {
        snprintf(clen, sizeof clen, "%lld",
                 (long long)(q->body ? (int64_t)q->body_len : q->content_length));
        nv[k++] = NV("content-length", clen);
    }
#undef NV
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = c_data_read};
    gorc_mutex_lock(&c->mu);
    st->next = c->streams;
    c->streams = st;
    int32_t id =
        c->dead ? -1 : nghttp2_submit_request(c->sess, NULL, nv, k, body ? &prd : NULL, st);
    for (size_t i = 0; i < q->num_headers; i++)
        free(low[i]);
    free(low);
    free(nv);
    if (id < 0) {
        stream_free(st);
        gorc_mutex_unlock(&c->mu);
        ccon_unref(c);
        return -ECONNRESET;
    }
    st->id = id;
    cc_kick(c);
    r = body ? push_body(c, st, rt) : 0;
    while (r == 0 && !st->got_head) {
        if (st->err) {
            r = st->err;
            break;
        }
        st->rwait = true;
        r = cwait(c, st, &st->rsem, &st->rwait);
    }
    if (r < 0) {
        *unprocessed = st->err == -ECONNREFUSED && !st->got_head && r == st->err;
        gorc_mutex_unlock(&c->mu);
        resp_close(st);
        return r;
    }
    st->pub.reason = gorc_http_status_text(st->pub.status);
    st->pub.headers = st->hdr;
    st->pub.num_headers = st->nhdr;
    gorc_mutex_unlock(&c->mu);
    *out = &st->pub;
    return 0;
}

/* Attempts at a request the server did not process, as Go's http2 Transport retries. */
#define RETRY_MAX 4

static int do_round_trip(void *arg, const gorc_http_round_trip *rt, gorc_http_response **out)
{
    gorc_http2_client *cl = arg;
    /* https: h2 if ALPN chooses it (Go's Transport after http2.ConfigureTransports); http:
     * only with prior knowledge. */
    bool tls = strcmp(rt->scheme, "https") == 0;
    if (tls ? rt->dial_tls == NULL : !cl->o.h2c_prior_knowledge || strcmp(rt->scheme, "http") != 0)
        return GORC_HTTP_ENOTHANDLED;
    /* A request the server refused unprocessed is sent again, whatever its method (it was
     * never acted on), if its body can be sent again: none, or in memory - a body_read stream
     * has been consumed. A GOAWAY'd connection has left the pool, so the retry dials anew; a
     * REFUSED_STREAM on a live one (its stream limit) retries there after a short pause. */
    bool replayable = !rt->send_body || rt->req->body_read == NULL;
    for (int attempt = 1;; attempt++) {
        bool unprocessed = false;
        int r = round_trip_once(cl, rt, out, &unprocessed);
        if (r == 0 || !unprocessed || !replayable || attempt >= RETRY_MAX ||
            (rt->req->ctx && gorc_ctx_err(rt->req->ctx) != 0) ||
            (rt->deadline > 0 && gorc_now() >= rt->deadline))
            return r;
        gorc_sleep(GORC_MILLISECOND << (attempt - 1));
    }
}

/* ------------------------------------------------------------------------------------------
 * Public API
 * ---------------------------------------------------------------------------------------- */

int gorc_http2_configure_client(gorc_http_client_opts *o, const gorc_http2_client_opts *opts,
                                gorc_http2_client **out)
{
    if (o == NULL || out == NULL)
        return -EINVAL;
    gorc_http2_client_opts co = opts ? *opts : (gorc_http2_client_opts){0};
    if (co.stream_window > INT32_MAX || co.conn_window > INT32_MAX)
        return -EINVAL;
    if (co.stream_window == 0)
        co.stream_window = CL_WINDOW;
    if (co.conn_window < 65535)
        co.conn_window = co.conn_window == 0 ? CL_WINDOW : 65535;
    gorc_http2_client *cl = calloc(1, sizeof *cl);
    if (cl == NULL)
        return -ENOMEM;
    cl->o = co;
    cl->dcond.l = &cl->mu;
    o->round_trip = do_round_trip;
    o->round_trip_arg = cl;
    *out = cl;
    return 0;
}

int gorc_http2_client_conns(gorc_http2_client *cl)
{
    if (cl == NULL)
        return -EINVAL;
    int n = 0;
    gorc_mutex_lock(&cl->mu);
    for (ccon *c = cl->conns; c; c = c->next)
        n++;
    gorc_mutex_unlock(&cl->mu);
    return n;
}

uint64_t gorc_http2_client_dials(gorc_http2_client *cl)
{
    return cl ? atomic_load(&cl->dials) : 0;
}

void gorc_http2_client_free(gorc_http2_client *cl)
{
    if (cl == NULL)
        return;
    gorc_mutex_lock(&cl->mu);
    cl->closing = true;
    size_t n = 0;
    for (ccon *c = cl->conns; c; c = c->next)
        n++;
    ccon **list = calloc(n ? n : 1, sizeof *list);
    n = 0;
    for (ccon *c = cl->conns; c && list; c = c->next) {
        c->refs++; /* ours, while we close them */
        list[n++] = c;
    }
    gorc_mutex_unlock(&cl->mu);
    for (size_t i = 0; i < n; i++) {
        ccon *c = list[i];
        gorc_conn_close(gorc_conn_retain(c->conn)); /* the reader ends and leaves the pool */
        gorc_mutex_lock(&c->mu);
        c_dead(c);
        gorc_mutex_unlock(&c->mu);
    }
    /* Wait until every connection has left the pool (its reader has stopped). */
    for (;;) {
        gorc_mutex_lock(&cl->mu);
        bool empty = cl->conns == NULL;
        gorc_mutex_unlock(&cl->mu);
        if (empty)
            break;
        gorc_sleep(GORC_MILLISECOND);
    }
    for (size_t i = 0; i < n; i++)
        ccon_unref(list[i]);
    free(list);
    /* A reader that has left the pool may still be on its way to its last ccon_unref. */
    while (atomic_load(&cl->live) > 0)
        gorc_sleep(GORC_MILLISECOND);
    while (cl->h1) {
        h1host *h = cl->h1;
        cl->h1 = h->next;
        free(h);
    }
    free(cl);
}
