/*
 * server.c - the HTTP/2 server (libgorc_http2): connections, streams, handlers, flow control.
 *
 * nghttp2 does the framing, HPACK and the flow-control arithmetic; this file decides who runs
 * what. It uses only the core's public API (gorc.h, gorc_net.h, gorc_http.h): the HTTP/1.1
 * server hands it a connection through gorc_http_server_set_next_proto, and handlers get
 * writers made with gorc_http_rw_new, so they see the same API as on HTTP/1.1.
 *
 * Goroutines. A connection has three kinds:
 *  - the reader: the HTTP/1.1 server's connection goroutine, which called h2_serve. It reads
 *    the socket and feeds nghttp2_session_mem_recv; nghttp2's callbacks create streams, queue
 *    request body bytes and start handlers.
 *  - the writer: waits on wcond until nghttp2 has something to send, gathers frames with
 *    nghttp2_session_mem_send into one buffer and writes it with the lock released.
 *  - one goroutine per stream runs the handler. Its writes go into the stream's output
 *    buffer, from which nghttp2's data source takes DATA frames as the client's window
 *    allows; a handler that fills the buffer waits (with the write timeout) until the writer
 *    has taken bytes out, so a client that does not open its window backs up to the handler
 *    with at most stream_write_buffer bytes held. Body reads wait for DATA the same way, and
 *    hand the bytes back to the client's window only as the handler consumes them
 *    (nghttp2_session_consume; automatic window updates are off), so an unread body holds at
 *    most stream_window bytes per stream and conn_window per connection.
 * One mutex per connection (mu) protects the session and every stream's state; nothing
 * blocks while holding it. Waits use per-stream semaphores released under mu by the other
 * side, with a "waiting" flag so that no permit is posted for nobody.
 *
 * Limits. At most max_concurrent_streams handlers run per connection, whatever the client
 * does with RST_STREAM: a stream reset while its handler runs still counts until the handler
 * returns (its context is cancelled), and new streams wait in a queue, bounded at four times
 * the limit, beyond which the connection ends with ENHANCE_YOUR_CALM (Go's answer to the
 * rapid-reset attack, CVE-2023-44487). Streams reset while queued are dropped without running.
 * Header blocks are bounded in wire bytes (CONTINUATION floods) and in decoded bytes and
 * fields (HPACK bombs: 431 without running a handler); empty DATA frames and control-frame
 * floods end the connection (nghttp2 counts queued SETTINGS/PING acks).
 *
 * Lifetimes. A stream record is freed when nghttp2 has closed the stream and its handler (if
 * one ran) has returned, whichever is last. When the connection ends, every waiting handler
 * is woken with an error and its context cancelled; the reader waits for the writer and all
 * handlers before freeing the session.
 */
#include "gorc_http2.h"

#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEF_STREAMS      250
#define DEF_WINDOW       (1u << 20)
#define DEF_WBUF         (64u << 10)
#define RBUF_SIZE        16384
#define WBATCH           65536 /* frames gathered per socket write */
#define QUEUE_FACTOR     4     /* queued streams allowed, times max_concurrent_streams */
#define EMPTY_FRAMES_MAX 1000  /* empty DATA frames a connection may send */
#define ARENA_BLOCK      4096
#define ARENA_INLINE     2048 /* the first block, allocated with the stream record */

typedef struct ablock {
    struct ablock *next;
    size_t used, cap;
    char data[];
} ablock;

typedef struct h2conn h2conn;

typedef struct h2stream {
    h2conn *c;
    int32_t id;
    struct h2stream *prev, *next; /* the connection's list (all streams) */
    struct h2stream *qnext;       /* the queue of streams waiting for a handler slot */
    ablock *arena;
    /* Request (built by the header callbacks; read-only once the handler starts). */
    gorc_http_request req;
    gorc_http_header *hdr;
    size_t nhdr, hcap;
    gorc_http_header *trl;
    size_t ntrl, tcap;
    size_t hbytes; /* decoded header bytes so far (RFC 9113 6.5.2 accounting) */
    size_t hwire;  /* wire bytes of the current header block */
    int bad;       /* a status to answer without running the handler (431, 400) */
    bool got_path, got_method;
    const char *scheme;
    void *route;
    /* State below is protected by c->mu. */
    bool queued, running, handler_done, closed, reset;
    bool active;    /* counted in c->nactive (from the request head to the record's end) */
    bool rst_after; /* the client still sends a body nobody reads: RST_STREAM(NO_ERROR) once
                       our END_STREAM is out (sooner, nghttp2 would send it first) */
    int err;        /* sticky: the stream or the connection is gone (-ECONNRESET, -EPIPE, ...) */
    gorc_ctx *ctx;
    /* Request body: bytes received and not yet read. */
    char *in;
    size_t inoff, inlen, incap;
    bool in_eof;
    bool expect;        /* "expect: 100-continue": the client waits for 100 before the body */
    bool continue_sent; /* 100 Continue went out (at most once) */
    int in_err;
    int64_t in_total;
    int64_t read_deadline;
    bool rwait;
    gorc_sema rsem;
    /* Response. */
    gorc_http_rw *rw;
    int status;
    bool status_set, submitted, no_body, is_head, deferred;
    int64_t cl, written;
    const char *sniffed;
    gorc_http_header *rh;
    size_t nrh, rhcap;
    gorc_http_header *rt; /* trailers to send */
    size_t nrt, rtcap;
    char *out;
    size_t outoff, outlen, outcap;
    bool out_eof; /* the handler has returned: the body ends after out */
    bool wwait;
    gorc_sema wsem;
} h2stream;

struct gorc_http2_server {
    gorc_http_server *hs;
    gorc_http2_opts o;
    const gorc_http_server_opts *ho;
    gorc_mutex mu; /* protects conns */
    h2conn *conns;
    bool shutting;
    _Atomic uint64_t conns_total, conns_open, streams_total, handlers_running, handlers_peak,
        resets_received, refused, calm_goaways, protocol_errors;
};

struct h2conn {
    gorc_http2_server *srv;
    gorc_conn *conn;
    h2conn *prev, *next; /* srv->conns, under srv->mu */
    gorc_mutex mu;
    nghttp2_session *sess;
    h2stream *streams;
    h2stream *qhead, *qtail;
    size_t nqueued;
    uint32_t nrunning;
    uint32_t nactive; /* streams with a handler queued or running, or a response pending */
    int64_t idle_since;
    bool served_one; /* a request has been seen: the idle timeout replaces the header one */
    bool dead;       /* the socket failed or the reader stopped: no more session calls */
    bool wwait;      /* the writer waits on wcond */
    bool writer_exit;
    gorc_cond wcond;
    gorc_waitgroup wg;  /* the handlers */
    gorc_waitgroup wwg; /* the writer */
    uint32_t empty_frames;
    int fatal; /* nghttp2 error code to end the connection with, or 0 */
    char remote[GORC_ADDRSTRLEN];
};

/* ------------------------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------------------------- */

static void *arena_alloc(ablock **a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (*a == NULL || (*a)->used + n > (*a)->cap) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        ablock *b = malloc(sizeof *b + cap);
        if (b == NULL)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = *a;
        *a = b;
    }
    void *p = (*a)->data + (*a)->used;
    (*a)->used += n;
    return p;
}

static char *arena_strndup(ablock **a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* Free every block but keep (the one allocated with its owner, or NULL). */
static void arena_free(ablock **a, const ablock *keep)
{
    while (*a) {
        ablock *b = *a;
        *a = b->next;
        if (b != keep)
            free(b);
    }
}

/* Append name: value to a header array in the arena. 0 or -ENOMEM. */
static int hdr_push(ablock **a, gorc_http_header **arr, size_t *n, size_t *cap, const char *name,
                    size_t nlen, const char *value, size_t vlen)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        gorc_http_header *na = arena_alloc(a, ncap * sizeof *na);
        if (na == NULL)
            return -ENOMEM;
        if (*n)
            memcpy(na, *arr, *n * sizeof *na);
        *arr = na;
        *cap = ncap;
    }
    char *nm = arena_strndup(a, name, nlen), *val = arena_strndup(a, value, vlen);
    if (nm == NULL || val == NULL)
        return -ENOMEM;
    (*arr)[*n].name = nm;
    (*arr)[*n].value = val;
    (*n)++;
    return 0;
}

static int64_t mono_now(void)
{
    return gorc_now();
}

/* The IMF-fixdate for now, cached per thread for a second. */
static void http_date(char out[30])
{
    static _Thread_local time_t last;
    static _Thread_local char buf[30];
    time_t t = time(NULL);
    if (t != last) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = t;
    }
    memcpy(out, buf, 30);
}

static void bump_peak(gorc_http2_server *srv, uint64_t v)
{
    uint64_t p = atomic_load(&srv->handlers_peak);
    while (v > p && !atomic_compare_exchange_weak(&srv->handlers_peak, &p, v))
        ;
}

/* Wake the writer (under mu). */
static void kick(h2conn *c)
{
    if (c->wwait) {
        c->wwait = false;
        gorc_cond_signal(&c->wcond);
    }
}

static void wake_reader_of(h2stream *st)
{
    if (st->rwait) {
        st->rwait = false;
        gorc_sema_release(&st->rsem, 1);
    }
}

static void wake_writer_of(h2stream *st)
{
    if (st->wwait) {
        st->wwait = false;
        gorc_sema_release(&st->wsem, 1);
    }
}

/* Wait on sem (flag set by the caller under mu) with mu released, until deadline (0: none).
 * Returns false on timeout. */
static bool wait_sem(h2conn *c, gorc_sema *sem, bool *flag, int64_t deadline)
{
    gorc_mutex_unlock(&c->mu);
    int r;
    if (deadline > 0) {
        int64_t d = deadline - mono_now();
        r = d > 0 ? gorc_sema_acquire_timeout(sem, 1, d) : -ETIMEDOUT;
    } else {
        r = gorc_sema_acquire(sem, 1);
    }
    gorc_mutex_lock(&c->mu);
    if (r < 0 && *flag) {
        *flag = false;
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------
 * Stream records
 * ---------------------------------------------------------------------------------------- */

static const gorc_http_request_ops req_ops;
static const gorc_http_rw_ops rw_ops;

static h2stream *stream_new(h2conn *c, int32_t id)
{
    /* One allocation for the record and the first arena block: a request's fields and its
     * response head usually fit, so a stream costs one malloc of ours. */
    size_t rec = (sizeof(h2stream) + 15) & ~(size_t)15;
    h2stream *st = malloc(rec + ARENA_INLINE);
    if (st == NULL)
        return NULL;
    memset(st, 0, sizeof *st);
    ablock *first = (ablock *)(void *)((char *)st + rec);
    first->next = NULL;
    first->used = 0;
    first->cap = ARENA_INLINE - sizeof(ablock);
    st->arena = first;
    st->c = c;
    st->id = id;
    st->status = 200;
    st->cl = -1;
    st->req.query = "";
    st->req.host = "";
    st->req.path = "";
    st->req.method = "";
    st->req.remote_addr = c->remote;
    st->req.proto_major = 2;
    st->req.content_length = -1;
    st->req.ops = &req_ops;
    st->req.impl = st;
    gorc_sema_init(&st->rsem, 0);
    gorc_sema_init(&st->wsem, 0);
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    return st;
}

/* A stream is over for the connection's idle accounting (under mu). */
static void stream_done(h2stream *st)
{
    h2conn *c = st->c;
    if (!st->active)
        return;
    st->active = false;
    if (c->nactive > 0)
        c->nactive--;
    if (c->nactive == 0)
        c->idle_since = mono_now();
}

static void stream_free(h2stream *st)
{
    h2conn *c = st->c;
    stream_done(st);
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    if (st->ctx) {
        gorc_ctx_cancel(st->ctx);
        gorc_ctx_release(st->ctx);
    }
    gorc_http_rw_free(st->rw);
    free(st->in);
    free(st->out);
    arena_free(&st->arena, (const ablock *)(const void *)((const char *)st +
                                                          ((sizeof(h2stream) + 15) & ~(size_t)15)));
    free(st);
}

/* Free when nghttp2 is done with the stream and no handler uses it (under mu). */
static void stream_maybe_free(h2stream *st)
{
    if (st->closed && !st->running && !st->queued)
        stream_free(st);
}

/* The stream is gone for the handler: fail its waits, cancel its context. */
static void stream_fail(h2stream *st, int err)
{
    if (st->err == 0)
        st->err = err;
    if (st->in_err == 0 && !st->in_eof)
        st->in_err = err;
    if (st->ctx)
        gorc_ctx_cancel_cause(st->ctx, -ECONNRESET);
    wake_reader_of(st);
    wake_writer_of(st);
}

/* ------------------------------------------------------------------------------------------
 * Responses
 * ---------------------------------------------------------------------------------------- */

static bool status_has_body(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

/* nghttp2's data source: DATA frames from the stream's output buffer. */
static ssize_t data_read(nghttp2_session *sess, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    h2stream *st = src->ptr;
    size_t avail = st->outlen - st->outoff;
    if (avail == 0 && !st->out_eof) {
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = avail < length ? avail : length;
    if (n) {
        memcpy(buf, st->out + st->outoff, n);
        st->outoff += n;
        if (st->outoff == st->outlen)
            st->outoff = st->outlen = 0;
        wake_writer_of(st);
    }
    if (st->out_eof && st->outlen == st->outoff) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->nrt > 0) {
            nghttp2_nv nv[64];
            size_t k = 0;
            char lname[64][64];
            for (size_t i = 0; i < st->nrt && k < 64; i++) {
                size_t nl = strlen(st->rt[i].name);
                if (nl >= sizeof lname[0])
                    continue;
                for (size_t j = 0; j <= nl; j++)
                    lname[k][j] =
                        (char)(st->rt[i].name[j] |
                               (st->rt[i].name[j] >= 'A' && st->rt[i].name[j] <= 'Z' ? 0x20 : 0));
                nv[k] = (nghttp2_nv){(uint8_t *)lname[k], (uint8_t *)st->rt[i].value, nl,
                                     strlen(st->rt[i].value), NGHTTP2_NV_FLAG_NONE};
                k++;
            }
            if (nghttp2_submit_trailer(sess, id, nv, k) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
    }
    return (ssize_t)n;
}

/* Lower-case a header name into the arena for the wire (HTTP/2 field names are lower case). */
static char *lower_dup(ablock **a, const char *s, size_t *len)
{
    size_t n = strlen(s);
    char *p = arena_alloc(a, n + 1);
    if (p == NULL)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        p[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] | 0x20 : s[i]);
    *len = n;
    return p;
}

/* Send the response HEADERS (under mu). final: the handler has returned, so out holds the
 * whole body and its length is known. */
static int submit_head(h2stream *st, bool final)
{
    h2conn *c = st->c;
    st->submitted = true;
    st->no_body = !status_has_body(st->status);
    size_t max = st->nrh + 4;
    nghttp2_nv *nv = arena_alloc(&st->arena, max * sizeof *nv);
    char status[4];
    /* cppcheck-suppress variableScope ; nv points into it until nghttp2_submit_response */
    char clen[24];
    /* cppcheck-suppress variableScope ; the same */
    char date[30];
    if (nv == NULL)
        return -ENOMEM;
    snprintf(status, sizeof status, "%03d", st->status);
    size_t k = 0;
    nv[k++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE};
    bool have_date = false, have_ct = false;
    for (size_t i = 0; i < st->nrh; i++) {
        size_t nl;
        char *name = lower_dup(&st->arena, st->rh[i].name, &nl);
        if (name == NULL)
            return -ENOMEM;
        have_date |= strcmp(name, "date") == 0;
        have_ct |= strcmp(name, "content-type") == 0;
        nv[k++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)st->rh[i].value, nl,
                               strlen(st->rh[i].value), NGHTTP2_NV_FLAG_NONE};
    }
    if (!have_date) {
        http_date(date);
        nv[k++] = (nghttp2_nv){(uint8_t *)"date", (uint8_t *)date, 4, 29, NGHTTP2_NV_FLAG_NONE};
    }
    if (!st->no_body && st->sniffed && !have_ct)
        nv[k++] = (nghttp2_nv){(uint8_t *)"content-type", (uint8_t *)st->sniffed, 12,
                               strlen(st->sniffed), NGHTTP2_NV_FLAG_NONE};
    int64_t len = st->cl;
    if (len < 0 && final && !st->no_body && !(st->is_head && st->written == 0))
        len = st->written;
    if (st->no_body && !(st->status == 304 && st->cl >= 0))
        len = -1;
    if (len >= 0) {
        int l = snprintf(clen, sizeof clen, "%lld", (long long)len);
        nv[k++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)clen, 14, (size_t)l,
                               NGHTTP2_NV_FLAG_NONE};
    }
    bool body = !st->no_body && !st->is_head && (!final || st->outlen > 0 || st->nrt > 0);
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = data_read};
    int r = nghttp2_submit_response(c->sess, st->id, nv, k, body ? &prd : NULL);
    kick(c);
    return r == 0 ? 0 : -EPIPE;
}

/* Let nghttp2 take more of out (under mu). */
static void resume(h2stream *st)
{
    if (st->deferred) {
        st->deferred = false;
        nghttp2_session_resume_data(st->c->sess, st->id);
    }
    kick(st->c);
}

static int rw_set_header(void *impl, const char *name, const char *value, bool replace)
{
    h2stream *st = impl;
    h2conn *c = st->c;
    gorc_mutex_lock(&c->mu);
    int r = 0;
    if (st->submitted) {
        r = -EALREADY;
        goto out;
    }
    if (strcasecmp(name, "Content-Length") == 0) {
        if (value == NULL) {
            st->cl = -1;
            goto out;
        }
        char *end;
        long long v = strtoll(value, &end, 10);
        if (*value < '0' || *value > '9' || *end != 0 || v < 0)
            r = -EINVAL;
        else
            st->cl = v;
        goto out;
    }
    /* Connection-specific fields are not allowed in HTTP/2 (RFC 9113 8.2.2). */
    if (strcasecmp(name, "Connection") == 0 || strcasecmp(name, "Keep-Alive") == 0 ||
        strcasecmp(name, "Proxy-Connection") == 0 || strcasecmp(name, "Upgrade") == 0)
        goto out;
    if (strcasecmp(name, "Transfer-Encoding") == 0) {
        r = -EINVAL;
        goto out;
    }
    if (replace) {
        size_t o = 0;
        for (size_t i = 0; i < st->nrh; i++)
            if (strcasecmp(st->rh[i].name, name) != 0)
                st->rh[o++] = st->rh[i];
        st->nrh = o;
    }
    if (value)
        r = hdr_push(&st->arena, &st->rh, &st->nrh, &st->rhcap, name, strlen(name), value,
                     strlen(value));
out:
    gorc_mutex_unlock(&c->mu);
    return r;
}

/* An interim 1xx response (under mu): a HEADERS frame without END_STREAM before the final
 * one (RFC 9113, 8.1). 100 carries nothing else and goes out once; another 1xx (103 Early
 * Hints) carries the header fields set so far, which stay set for the final response, as on
 * HTTP/1.1 and in Go. */
static int send_interim(h2stream *st, int status)
{
    h2conn *c = st->c;
    if (c->dead || st->closed || st->reset)
        return st->err ? st->err : -EPIPE;
    if (status == 100) {
        if (st->continue_sent)
            return 0;
        st->continue_sent = true;
    }
    size_t n = status == 100 ? 0 : st->nrh;
    nghttp2_nv *nv = arena_alloc(&st->arena, (n + 1) * sizeof *nv);
    char code[4];
    if (nv == NULL)
        return -ENOMEM;
    snprintf(code, sizeof code, "%03d", status);
    size_t k = 0;
    nv[k++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)code, 7, 3, NGHTTP2_NV_FLAG_NONE};
    for (size_t i = 0; i < n; i++) {
        size_t nl;
        char *name = lower_dup(&st->arena, st->rh[i].name, &nl);
        if (name == NULL)
            return -ENOMEM;
        nv[k++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)st->rh[i].value, nl,
                               strlen(st->rh[i].value), NGHTTP2_NV_FLAG_NONE};
    }
    /* nghttp2 copies the fields at submission. */
    int r = nghttp2_submit_headers(c->sess, NGHTTP2_FLAG_NONE, st->id, NULL, nv, k, NULL);
    kick(c);
    return r == 0 ? 0 : -EPIPE;
}

static int rw_write_header(void *impl, int status)
{
    h2stream *st = impl;
    gorc_mutex_lock(&st->c->mu);
    int r = 0;
    if (st->submitted || st->status_set)
        r = -EALREADY;
    else if (status >= 200) {
        st->status = status;
        st->status_set = true;
    } else if (status == 101) {
        r = -EINVAL; /* HTTP/2 has no protocol switch (RFC 9113, 8.6) */
    } else {
        r = send_interim(st, status);
    }
    gorc_mutex_unlock(&st->c->mu);
    return r;
}

static ssize_t rw_write(void *impl, const void *buf, size_t n)
{
    h2stream *st = impl;
    h2conn *c = st->c;
    gorc_mutex_lock(&c->mu);
    ssize_t r = (ssize_t)n;
    if (st->err) {
        r = st->err;
        goto out;
    }
    if (!status_has_body(st->status)) {
        r = GORC_HTTP_EBODYNOTALLOWED;
        goto out;
    }
    if (st->cl >= 0 && st->written + (int64_t)n > st->cl) {
        r = -EINVAL;
        goto out;
    }
    st->written += (int64_t)n;
    if (st->sniffed == NULL && n > 0)
        st->sniffed = gorc_http_detect_content_type(buf, n);
    if (st->is_head || n == 0)
        goto out;
    const char *p = buf;
    size_t cap = c->srv->o.stream_write_buffer;
    while (n > 0) {
        if (st->err || c->dead) {
            r = st->err ? st->err : -EPIPE;
            goto out;
        }
        if (st->outlen == st->outcap && st->outoff > 0) {
            memmove(st->out, st->out + st->outoff, st->outlen - st->outoff);
            st->outlen -= st->outoff;
            st->outoff = 0;
        }
        if (st->outlen + n > st->outcap && st->outcap < cap) {
            /* Grow towards cap: most responses are small, and a 64 KiB buffer per stream
             * would be a malloc the size of a heap trim each time. */
            size_t ncap = st->outcap ? st->outcap * 2 : 1024;
            while (ncap < st->outlen + n && ncap < cap)
                ncap *= 2;
            if (ncap > cap)
                ncap = cap;
            char *nb = realloc(st->out, ncap);
            if (nb == NULL) {
                r = -ENOMEM;
                goto out;
            }
            st->out = nb;
            st->outcap = ncap;
        }
        size_t space = st->outcap - st->outlen;
        if (space == 0) {
            if (!st->submitted && submit_head(st, false) < 0) {
                r = st->err = -EPIPE;
                goto out;
            }
            resume(st);
            st->wwait = true;
            int64_t wt = c->srv->ho->write_timeout;
            if (!wait_sem(c, &st->wsem, &st->wwait, wt > 0 ? mono_now() + wt : 0)) {
                st->err = -ETIMEDOUT;
                nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
                kick(c);
                r = -ETIMEDOUT;
                goto out;
            }
            continue;
        }
        size_t k = space < n ? space : n;
        memcpy(st->out + st->outlen, p, k);
        st->outlen += k;
        p += k;
        n -= k;
    }
    if (st->submitted)
        resume(st);
out:
    gorc_mutex_unlock(&c->mu);
    return r;
}

static int rw_flush(void *impl)
{
    h2stream *st = impl;
    h2conn *c = st->c;
    gorc_mutex_lock(&c->mu);
    int r = st->err;
    if (r == 0 && !c->dead) {
        if (!st->submitted)
            r = submit_head(st, false);
        if (r == 0)
            resume(st);
    }
    gorc_mutex_unlock(&c->mu);
    return r;
}

static int rw_status(const void *impl)
{
    return ((const h2stream *)impl)->status;
}

static bool rw_sent(const void *impl)
{
    h2stream *st = (h2stream *)impl;
    gorc_mutex_lock(&st->c->mu);
    bool s = st->submitted;
    gorc_mutex_unlock(&st->c->mu);
    return s;
}

static int rw_set_trailer(void *impl, const char *name, const char *value)
{
    h2stream *st = impl;
    gorc_mutex_lock(&st->c->mu);
    int r = 0;
    size_t i;
    for (i = 0; i < st->nrt; i++)
        if (strcasecmp(st->rt[i].name, name) == 0)
            break;
    if (i < st->nrt) {
        char *v = arena_strndup(&st->arena, value, strlen(value));
        if (v)
            st->rt[i].value = v;
        else
            r = -ENOMEM;
    } else if (st->nrt >= 64) {
        r = -ENOMEM;
    } else {
        r = hdr_push(&st->arena, &st->rt, &st->nrt, &st->rtcap, name, strlen(name), value,
                     strlen(value));
    }
    gorc_mutex_unlock(&st->c->mu);
    return r;
}

static const gorc_http_rw_ops rw_ops = {
    .set_header = rw_set_header,
    .write_header = rw_write_header,
    .write = rw_write,
    .flush = rw_flush,
    .status = rw_status,
    .sent = rw_sent,
    .set_trailer = rw_set_trailer,
};

/* ------------------------------------------------------------------------------------------
 * Request bodies and contexts
 * ---------------------------------------------------------------------------------------- */

static ssize_t req_read(void *impl, void *buf, size_t n)
{
    h2stream *st = impl;
    h2conn *c = st->c;
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
            if (!c->dead && !st->closed) {
                nghttp2_session_consume(c->sess, st->id, k); /* reopen the client's window */
                kick(c);
            } else if (!c->dead) {
                nghttp2_session_consume_connection(c->sess, k);
                kick(c);
            }
            r = (ssize_t)k;
            break;
        }
        if (st->in_err) {
            r = st->in_err;
            break;
        }
        if (st->in_eof || n == 0) {
            r = 0;
            break;
        }
        /* The first read of a body the client holds back for "100 Continue" asks for it; a
         * handler that answers without reading never sends it (the client then sends no body). */
        if (st->expect && !st->continue_sent && !st->submitted) {
            int e = send_interim(st, 100);
            if (e < 0) {
                r = e;
                break;
            }
        }
        st->rwait = true;
        if (!wait_sem(c, &st->rsem, &st->rwait, st->read_deadline)) {
            st->in_err = -ETIMEDOUT;
            if (!c->dead && !st->closed) {
                nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
                kick(c);
            }
        }
    }
    bool too_large = r == GORC_HTTP_ETOOLARGE && !st->submitted;
    gorc_mutex_unlock(&c->mu);
    if (too_large)
        gorc_http_error(st->rw, 413, NULL); /* as HTTP/1.1 answers for the handler */
    return r;
}

static gorc_ctx *req_ctx(void *impl)
{
    h2stream *st = impl;
    gorc_mutex_lock(&st->c->mu);
    if (st->ctx == NULL) {
        if (gorc_ctx_with_cancel(&st->ctx, gorc_http_server_ctx(st->c->srv->hs)) != 0)
            st->ctx = NULL;
        else if (st->reset || st->c->dead)
            gorc_ctx_cancel_cause(st->ctx, -ECONNRESET);
    }
    gorc_ctx *x = st->ctx ? st->ctx : gorc_ctx_background();
    gorc_mutex_unlock(&st->c->mu);
    return x;
}

/* Only the handler's goroutine allocates: no lock needed (the header callbacks are done). */
static void *req_alloc(void *impl, size_t n)
{
    h2stream *st = impl;
    gorc_mutex_lock(&st->c->mu);
    void *p = arena_alloc(&st->arena, n);
    gorc_mutex_unlock(&st->c->mu);
    return p;
}

static void **req_route_slot(void *impl)
{
    return &((h2stream *)impl)->route;
}

static const char *req_trailer(void *impl, const char *name)
{
    h2stream *st = impl;
    gorc_mutex_lock(&st->c->mu);
    const char *v = st->in_eof ? gorc_http_header_lookup(st->trl, st->ntrl, name) : NULL;
    gorc_mutex_unlock(&st->c->mu);
    return v;
}

static const gorc_http_request_ops req_ops = {
    .read = req_read,
    .ctx = req_ctx,
    .alloc = req_alloc,
    .route_slot = req_route_slot,
    .trailer = req_trailer,
};

/* ------------------------------------------------------------------------------------------
 * Handlers
 * ---------------------------------------------------------------------------------------- */

static void start_handler(h2stream *st);

/* Start queued streams while there is room (under mu). */
static void run_queue(h2conn *c)
{
    uint32_t max = c->srv->o.max_concurrent_streams;
    while (c->qhead && c->nrunning < max) {
        h2stream *st = c->qhead;
        c->qhead = st->qnext;
        if (c->qhead == NULL)
            c->qtail = NULL;
        c->nqueued--;
        st->queued = false;
        if (st->reset || c->dead) { /* reset while waiting: never runs */
            stream_maybe_free(st);
            continue;
        }
        start_handler(st);
    }
}

static void handler_main(void *arg)
{
    h2stream *st = arg;
    h2conn *c = st->c;
    gorc_http2_server *srv = c->srv;
    srv->ho->handler(st->rw, &st->req, srv->ho->arg);
    gorc_http_server_count_request(srv->hs, false);
    gorc_mutex_lock(&c->mu);
    st->handler_done = true;
    st->out_eof = true;
    if (!c->dead && !st->closed && st->err == 0) {
        if (!st->submitted)
            submit_head(st, true);
        else
            resume(st);
        /* A body the handler left unread: give its window back and stop the client. */
        size_t left = st->inlen - st->inoff;
        st->inoff = st->inlen = 0;
        if (left)
            nghttp2_session_consume(c->sess, st->id, left);
        if (!st->in_eof)
            st->rst_after = true;
        kick(c);
    }
    if (st->ctx)
        gorc_ctx_cancel(st->ctx);
    st->running = false;
    c->nrunning--;
    atomic_fetch_sub(&srv->handlers_running, 1);
    run_queue(c);
    stream_maybe_free(st);
    gorc_mutex_unlock(&c->mu);
    gorc_waitgroup_done(&c->wg);
}

/* (under mu) */
static void start_handler(h2stream *st)
{
    h2conn *c = st->c;
    gorc_http2_server *srv = c->srv;
    if (gorc_http_rw_new(&st->rw, &rw_ops, st, &st->req) < 0) {
        nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    int64_t rt = srv->ho->read_timeout;
    st->read_deadline = rt > 0 ? mono_now() + rt : 0;
    st->running = true;
    c->nrunning++;
    bump_peak(srv, c->nrunning);
    atomic_fetch_add(&srv->handlers_running, 1);
    atomic_fetch_add(&srv->streams_total, 1);
    gorc_waitgroup_add(&c->wg, 1);
    if (gorc_go(handler_main, st) < 0) {
        gorc_waitgroup_done(&c->wg);
        st->running = false;
        c->nrunning--;
        atomic_fetch_sub(&srv->handlers_running, 1);
        nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    }
}

/* Answer without running the handler (a refused request). */
static void answer_refused(h2stream *st, int status)
{
    h2conn *c = st->c;
    atomic_fetch_add(&c->srv->refused, 1);
    gorc_http_server_count_request(c->srv->hs, true);
    char s[4];
    snprintf(s, sizeof s, "%03d", status);
    nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)s, 7, 3, NGHTTP2_NV_FLAG_NONE}};
    nghttp2_submit_response(c->sess, st->id, nv, 1, NULL);
    if (!st->in_eof)
        st->rst_after = true;
    st->handler_done = true;
}

/* The request head is complete (under mu, in the reader's callback). */
static void request_ready(h2stream *st)
{
    h2conn *c = st->c;
    gorc_http2_server *srv = c->srv;
    c->served_one = true;
    if (st->bad == 0 && (!st->got_method || !st->got_path))
        st->bad = 400;
    if (st->bad == 0 && srv->ho->max_body_bytes >= 0 &&
        st->req.content_length > srv->ho->max_body_bytes)
        st->bad = 413;
    if (st->bad) {
        answer_refused(st, st->bad);
        return;
    }
    st->req.headers = st->hdr;
    st->req.num_headers = st->nhdr;
    st->is_head = strcmp(st->req.method, "HEAD") == 0;
    if (st->in_eof)
        st->req.content_length = 0;
    c->nactive++;
    st->active = true;
    if (c->nrunning < srv->o.max_concurrent_streams && c->qhead == NULL) {
        start_handler(st);
        return;
    }
    if (c->nqueued >= (size_t)srv->o.max_concurrent_streams * QUEUE_FACTOR) {
        /* Handlers outlive their streams faster than they finish: the rapid-reset pattern. */
        c->fatal = NGHTTP2_ENHANCE_YOUR_CALM;
        return;
    }
    st->queued = true;
    st->qnext = NULL;
    if (c->qtail)
        c->qtail->qnext = st;
    else
        c->qhead = st;
    c->qtail = st;
    c->nqueued++;
}

/* ------------------------------------------------------------------------------------------
 * nghttp2 callbacks (all under mu)
 * ---------------------------------------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *sess, const nghttp2_frame *f, void *user)
{
    h2conn *c = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2stream *st = stream_new(c, f->hd.stream_id);
    if (st == NULL)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(sess, f->hd.stream_id, st);
    return 0;
}

static int on_begin_frame(nghttp2_session *sess, const nghttp2_frame_hd *hd, void *user)
{
    h2conn *c = user;
    const gorc_http_server_opts *ho = c->srv->ho;
    if (hd->type == NGHTTP2_HEADERS || hd->type == NGHTTP2_CONTINUATION) {
        h2stream *st = nghttp2_session_get_stream_user_data(sess, hd->stream_id);
        static _Thread_local size_t lone; /* a block for a stream without a record */
        size_t *wire = st ? &st->hwire : &lone;
        if (hd->type == NGHTTP2_HEADERS)
            *wire = 0;
        *wire += hd->length;
        /* The wire size of one header block: HPACK never makes a field list smaller than a
         * quarter of... it can make it much larger, so bound the wire bytes separately. */
        if (*wire > ho->max_header_bytes + 16384) {
            c->fatal = NGHTTP2_ENHANCE_YOUR_CALM;
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
    } else if (hd->type == NGHTTP2_DATA && hd->length == 0 &&
               !(hd->flags & NGHTTP2_FLAG_END_STREAM)) {
        if (++c->empty_frames > EMPTY_FRAMES_MAX) {
            c->fatal = NGHTTP2_ENHANCE_YOUR_CALM;
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
    }
    return 0;
}

static int on_header(nghttp2_session *sess, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    h2conn *c = user;
    h2stream *st = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
    if (st == NULL || st->bad)
        return 0;
    const gorc_http_server_opts *ho = c->srv->ho;
    const char *n = (const char *)name, *v = (const char *)value;
    st->hbytes += nlen + vlen + 32;
    if (st->hbytes > ho->max_header_bytes) {
        st->bad = 431;
        return 0;
    }
    if (f->headers.cat != NGHTTP2_HCAT_REQUEST) { /* trailers */
        if (nlen > 0 && n[0] != ':' &&
            hdr_push(&st->arena, &st->trl, &st->ntrl, &st->tcap, n, nlen, v, vlen) < 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        return 0;
    }
    if (nlen > 0 && n[0] == ':') {
        char *s = arena_strndup(&st->arena, v, vlen);
        if (s == NULL)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        if (nlen == 7 && memcmp(n, ":method", 7) == 0) {
            st->req.method = s;
            st->got_method = true;
        } else if (nlen == 5 && memcmp(n, ":path", 5) == 0) {
            char *q = strchr(s, '?');
            if (q) {
                *q = 0;
                st->req.query = q + 1;
            }
            size_t pl = strlen(s);
            if (s[0] != '/' && strcmp(s, "*") != 0) {
                st->bad = 400;
                return 0;
            }
            /* Decode %XX escapes in place, refusing malformed ones and %00. */
            char *o = s;
            for (size_t i = 0; i < pl; i++) {
                if (s[i] == '%') {
                    int hi = i + 2 < pl + 1 && s[i + 1] ? s[i + 1] : -1,
                        lo = hi >= 0 && s[i + 2] ? s[i + 2] : -1;
                    char hex[3] = {(char)hi, (char)lo, 0};
                    char *e;
                    long x = hi > 0 && lo > 0 ? strtol(hex, &e, 16) : -1;
                    if (x <= 0 || *e != 0) {
                        st->bad = 400;
                        return 0;
                    }
                    *o++ = (char)x;
                    i += 2;
                } else {
                    *o++ = s[i];
                }
            }
            *o = 0;
            st->req.path = s;
            st->got_path = true;
        } else if (nlen == 10 && memcmp(n, ":authority", 10) == 0) {
            st->req.host = s;
        } else if (nlen == 7 && memcmp(n, ":scheme", 7) == 0) {
            st->scheme = s;
        }
        return 0;
    }
    if (st->nhdr >= ho->max_headers) {
        st->bad = 431;
        return 0;
    }
    if (nlen == 6 && memcmp(n, "cookie", 6) == 0) {
        /* HTTP/2 may split Cookie into several fields; handlers see one (RFC 9113 8.2.3). */
        for (size_t i = 0; i < st->nhdr; i++) {
            if (strcmp(st->hdr[i].name, "cookie") == 0) {
                size_t ol = strlen(st->hdr[i].value);
                char *j = arena_alloc(&st->arena, ol + 2 + vlen + 1);
                if (j == NULL)
                    return NGHTTP2_ERR_CALLBACK_FAILURE;
                memcpy(j, st->hdr[i].value, ol);
                memcpy(j + ol, "; ", 2);
                memcpy(j + ol + 2, v, vlen);
                j[ol + 2 + vlen] = 0;
                st->hdr[i].value = j;
                return 0;
            }
        }
    }
    if (hdr_push(&st->arena, &st->hdr, &st->nhdr, &st->hcap, n, nlen, v, vlen) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (nlen == 4 && memcmp(n, "host", 4) == 0 && st->req.host[0] == 0)
        st->req.host = st->hdr[st->nhdr - 1].value;
    if (nlen == 14 && memcmp(n, "content-length", 14) == 0) {
        char *e;
        long long cl = strtoll(st->hdr[st->nhdr - 1].value, &e, 10);
        if (*e == 0 && cl >= 0)
            st->req.content_length = cl;
    }
    if (nlen == 6 && memcmp(n, "expect", 6) == 0 && vlen == 12 &&
        strncasecmp((const char *)v, "100-continue", 12) == 0)
        st->expect = true;
    return 0;
}

static int on_frame_recv(nghttp2_session *sess, const nghttp2_frame *f, void *user)
{
    h2conn *c = user;
    if (f->hd.type == NGHTTP2_RST_STREAM)
        atomic_fetch_add(&c->srv->resets_received, 1);
    h2stream *st = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
    if (st == NULL)
        return 0;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (f->hd.type == NGHTTP2_HEADERS) {
        if (end)
            st->in_eof = true;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST)
            request_ready(st);
        else if (st->bad == 431 && !st->handler_done) /* trailers too large */
            stream_fail(st, GORC_HTTP_EBADMSG);
        wake_reader_of(st);
    } else if (f->hd.type == NGHTTP2_DATA && end) {
        st->in_eof = true;
        wake_reader_of(st);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    h2conn *c = user;
    h2stream *st = nghttp2_session_get_stream_user_data(sess, id);
    if (st == NULL || st->handler_done || st->in_err) {
        nghttp2_session_consume(sess, id, len); /* nobody reads it: do not hold the window */
        return 0;
    }
    int64_t max = c->srv->ho->max_body_bytes;
    st->in_total += (int64_t)len;
    if (max >= 0 && st->in_total > max) {
        st->in_err = GORC_HTTP_ETOOLARGE;
        nghttp2_session_consume(sess, id, len);
        nghttp2_submit_rst_stream(sess, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        wake_reader_of(st);
        return 0;
    }
    if (st->inoff > 0 && st->inlen + len > st->incap) {
        memmove(st->in, st->in + st->inoff, st->inlen - st->inoff);
        st->inlen -= st->inoff;
        st->inoff = 0;
    }
    if (st->inlen + len > st->incap) {
        /* Bounded by the stream's window: the client cannot send more than we gave back. */
        size_t ncap = st->incap ? st->incap * 2 : 16384;
        while (ncap < st->inlen + len)
            ncap *= 2;
        char *n = realloc(st->in, ncap);
        if (n == NULL)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        st->in = n;
        st->incap = ncap;
    }
    memcpy(st->in + st->inlen, data, len);
    st->inlen += len;
    wake_reader_of(st);
    return 0;
}

static int on_stream_close(nghttp2_session *sess, int32_t id, uint32_t code, void *user)
{
    h2stream *st = nghttp2_session_get_stream_user_data(sess, id);
    if (st == NULL)
        return 0;
    h2conn *c = st->c;
    nghttp2_session_set_stream_user_data(sess, id, NULL);
    st->closed = true;
    if (!st->handler_done || !st->out_eof) {
        st->reset = true;
        stream_fail(st, code == NGHTTP2_NO_ERROR ? -EPIPE : -ECONNRESET);
    }
    (void)c;
    stream_maybe_free(st);
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * The connection: writer and reader
 * ---------------------------------------------------------------------------------------- */

static void writer_main(void *arg)
{
    h2conn *c = arg;
    const gorc_http_server_opts *ho = c->srv->ho;
    char *buf = malloc(WBATCH + 16384);
    gorc_mutex_lock(&c->mu);
    int64_t wdl = 0;
    while (buf) {
        bool last = c->writer_exit; /* the reader stopped: one last flush (GOAWAY) */
        if (c->nrunning > 0 && !last && !c->dead) {
            /* Handlers are running: let the runnable ones finish first, so that their
             * responses leave in this write instead of one write each. */
            gorc_mutex_unlock(&c->mu);
            gorc_yield();
            gorc_mutex_lock(&c->mu);
        }
        size_t n = 0;
        while (!c->dead && n < WBATCH) {
            const uint8_t *p;
            ssize_t k = nghttp2_session_mem_send(c->sess, &p);
            if (k < 0) {
                c->dead = true;
                break;
            }
            if (k == 0)
                break;
            if (n + (size_t)k > WBATCH + 16384) {
                char *nb = realloc(buf, n + (size_t)k);
                if (nb == NULL) {
                    c->dead = true;
                    break;
                }
                buf = nb;
            }
            memcpy(buf + n, p, (size_t)k);
            n += (size_t)k;
        }
        if (n > 0) {
            gorc_mutex_unlock(&c->mu);
            int64_t wt = ho->write_timeout;
            if (wt > 0) {
                int64_t now = mono_now();
                if (wdl == 0 || wdl - now < wt / 2) {
                    wdl = now + wt;
                    gorc_conn_set_write_deadline(c->conn, wdl);
                }
            }
            ssize_t w = gorc_conn_write_all(c->conn, buf, n);
            gorc_mutex_lock(&c->mu);
            if (w < 0)
                c->dead = true;
            if (n > WBATCH + 16384) {
                free(buf);
                buf = malloc(WBATCH + 16384);
            }
            if (!last)
                continue;
        }
        if (c->dead || last)
            break;
        if (!nghttp2_session_want_read(c->sess) && !nghttp2_session_want_write(c->sess)) {
            /* Nothing more to do either way (GOAWAY exchanged, streams done): wake the reader. */
            gorc_conn_set_read_deadline(c->conn, 1);
        }
        c->wwait = true;
        gorc_cond_wait(&c->wcond);
    }
    if (buf == NULL)
        c->dead = true;
    free(buf);
    if (c->dead)
        gorc_conn_set_read_deadline(c->conn, 1); /* the reader stops too */
    gorc_mutex_unlock(&c->mu);
    /* No gorc_waitgroup_done here: gorc_waitgroup_go, which started the writer, calls it when
     * this returns (a second call let the reader free c before the first returned). */
}

/* Count the connection errors we send, whoever detected them (nghttp2 answers most protocol
 * errors itself). */
static int on_frame_send(nghttp2_session *sess, const nghttp2_frame *f, void *user)
{
    h2conn *c = user;
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        h2stream *st = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
        if (st && st->rst_after && !st->in_eof) {
            st->rst_after = false;
            nghttp2_submit_rst_stream(sess, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
        }
    }
    if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR)
        atomic_fetch_add(f->goaway.error_code == NGHTTP2_ENHANCE_YOUR_CALM
                             ? &c->srv->calm_goaways
                             : &c->srv->protocol_errors,
                         1);
    return 0;
}

static nghttp2_session_callbacks *cbs;
static pthread_once_t cbs_once = PTHREAD_ONCE_INIT;

static void cbs_make(void)
{
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        cbs = NULL;
        return;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
}

/* The callbacks every session shares (made once; NULL when out of memory). */
static nghttp2_session_callbacks *callbacks(void)
{
    pthread_once(&cbs_once, cbs_make);
    return cbs;
}

/* End the session after mem_recv failed or a defence fired (on_frame_sent counts it). */
static void feed_fatal(h2conn *c, int rv)
{
    if (c->fatal == NGHTTP2_ENHANCE_YOUR_CALM || rv == NGHTTP2_ERR_FLOODED)
        nghttp2_session_terminate_session(c->sess, NGHTTP2_ENHANCE_YOUR_CALM);
    else if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC)
        atomic_fetch_add(&c->srv->protocol_errors, 1); /* not HTTP/2: no GOAWAY to send */
    else
        nghttp2_session_terminate_session(c->sess, NGHTTP2_PROTOCOL_ERROR);
}

/* Feed bytes to the session (under mu). false: the connection must end. */
static bool feed(h2conn *c, const void *p, size_t n)
{
    ssize_t rv = nghttp2_session_mem_recv(c->sess, p, n);
    if (rv < 0 || c->fatal) {
        feed_fatal(c, (int)rv);
        kick(c);
        return false;
    }
    kick(c);
    return true;
}

/* The read deadline the connection should have now (under mu). */
static int64_t read_deadline(h2conn *c)
{
    const gorc_http_server_opts *ho = c->srv->ho;
    if (c->nactive > 0)
        return 0;
    int64_t t = c->served_one ? ho->idle_timeout : ho->read_header_timeout;
    return t > 0 ? c->idle_since + t : 0;
}

static void conn_register(gorc_http2_server *srv, h2conn *c, bool add)
{
    gorc_mutex_lock(&srv->mu);
    if (add) {
        c->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = c;
        srv->conns = c;
    } else {
        if (c->prev)
            c->prev->next = c->next;
        else
            srv->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
    }
    gorc_mutex_unlock(&srv->mu);
}

/* Graceful close of one connection (under mu): GOAWAY, no new streams, finish the others. */
static void goaway(h2conn *c)
{
    if (c->dead)
        return;
    nghttp2_submit_goaway(c->sess, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->sess), NGHTTP2_NO_ERROR, NULL,
                          0);
    kick(c);
}

static void h2_serve(gorc_http_server *hs, gorc_conn *conn, const void *pre, size_t npre, void *arg)
{
    gorc_http2_server *srv = arg;
    h2conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->srv = srv;
    c->conn = conn;
    c->wcond.l = &c->mu;
    c->idle_since = mono_now();
    if (gorc_conn_remote_addr(conn, c->remote, sizeof c->remote) < 0)
        c->remote[0] = 0;
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0) {
        free(c);
        return;
    }
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    nghttp2_option_set_max_continuations(opt, 64);
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 100);
    int rv = nghttp2_session_server_new2(&c->sess, callbacks(), c, opt);
    nghttp2_option_del(opt);
    if (rv != 0) {
        free(c);
        return;
    }
    atomic_fetch_add(&srv->conns_total, 1);
    atomic_fetch_add(&srv->conns_open, 1);
    const gorc_http_server_opts *ho = srv->ho;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, srv->o.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, srv->o.stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)ho->max_header_bytes},
    };
    gorc_mutex_lock(&c->mu);
    nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    nghttp2_session_set_local_window_size(c->sess, NGHTTP2_FLAG_NONE, 0,
                                          (int32_t)srv->o.conn_window);
    gorc_mutex_unlock(&c->mu);
    conn_register(srv, c, true);
    gorc_mutex_lock(&srv->mu);
    bool shut = srv->shutting || gorc_http_server_closing(hs);
    gorc_mutex_unlock(&srv->mu);

    if (gorc_waitgroup_go(&c->wwg, writer_main, c) < 0)
        c->dead = true;
    char *buf = malloc(RBUF_SIZE);
    gorc_mutex_lock(&c->mu);
    if (shut)
        goaway(c);
    bool ok = buf != NULL && !c->dead && (npre == 0 || feed(c, pre, npre));
    int64_t rdl = -1;
    while (ok && !c->dead) {
        if (!nghttp2_session_want_read(c->sess) && !nghttp2_session_want_write(c->sess))
            break;
        /* Set under mu: the writer's wake-up (a past deadline, also under mu) cannot be lost. */
        int64_t want = read_deadline(c);
        if (want != rdl) {
            rdl = want;
            gorc_conn_set_read_deadline(conn, want);
        }
        gorc_mutex_unlock(&c->mu);
        ssize_t k = gorc_conn_read(conn, buf, RBUF_SIZE);
        gorc_mutex_lock(&c->mu);
        if (k == -ETIMEDOUT && !c->dead) {
            /* Either the writer woke us (session finished) or the idle/header timeout. */
            if (!nghttp2_session_want_read(c->sess) && !nghttp2_session_want_write(c->sess))
                break;
            int64_t dl = read_deadline(c);
            if (dl > 0 && mono_now() >= dl) {
                goaway(c);
                break;
            }
            rdl = -1;
            continue;
        }
        if (k <= 0)
            break;
        ok = feed(c, buf, (size_t)k);
    }
    /* Let the writer flush what is queued (a GOAWAY, last responses) once, within a second,
     * then stop everything. */
    c->writer_exit = true;
    kick(c);
    gorc_mutex_unlock(&c->mu);
    free(buf);
    gorc_conn_set_write_deadline(conn, mono_now() + GORC_SECOND);
    gorc_waitgroup_wait(&c->wwg);
    gorc_mutex_lock(&c->mu);
    c->dead = true;
    for (h2stream *st = c->streams; st; st = st->next)
        stream_fail(st, -ECONNRESET);
    while (c->qhead) { /* never started */
        h2stream *st = c->qhead;
        c->qhead = st->qnext;
        st->queued = false;
        st->closed = true;
        stream_maybe_free(st);
    }
    c->qtail = NULL;
    c->nqueued = 0;
    kick(c);
    gorc_mutex_unlock(&c->mu);
    gorc_waitgroup_wait(&c->wg);
    conn_register(srv, c, false);
    while (c->streams)
        stream_free(c->streams);
    nghttp2_session_del(c->sess);
    free(c);
    atomic_fetch_sub(&srv->conns_open, 1);
    (void)hs;
}

/* ------------------------------------------------------------------------------------------
 * Server
 * ---------------------------------------------------------------------------------------- */

static void on_shutdown(void *arg)
{
    gorc_http2_server *srv = arg;
    gorc_mutex_lock(&srv->mu);
    srv->shutting = true;
    for (h2conn *c = srv->conns; c; c = c->next) {
        gorc_mutex_lock(&c->mu);
        goaway(c);
        gorc_mutex_unlock(&c->mu);
    }
    gorc_mutex_unlock(&srv->mu);
}

int gorc_http2_configure_server(gorc_http_server *s, const gorc_http2_opts *opts,
                                gorc_http2_server **out)
{
    if (s == NULL || out == NULL)
        return -EINVAL;
    gorc_http2_opts o = opts ? *opts : (gorc_http2_opts){0};
    if (o.max_concurrent_streams > INT32_MAX || o.stream_window > INT32_MAX ||
        o.conn_window > INT32_MAX || o.stream_write_buffer > INT32_MAX)
        return -EINVAL;
    if (o.max_concurrent_streams == 0)
        o.max_concurrent_streams = DEF_STREAMS;
    if (o.stream_window == 0)
        o.stream_window = DEF_WINDOW;
    if (o.conn_window == 0)
        o.conn_window = DEF_WINDOW;
    if (o.conn_window < 65535)
        o.conn_window = 65535; /* the protocol's initial connection window */
    if (o.stream_write_buffer == 0)
        o.stream_write_buffer = DEF_WBUF;
    if (callbacks() == NULL)
        return -ENOMEM;
    gorc_http2_server *h = calloc(1, sizeof *h);
    if (h == NULL)
        return -ENOMEM;
    h->hs = s;
    h->o = o;
    h->ho = gorc_http_server_options(s);
    int r = gorc_http_server_set_next_proto(s, "h2", h2_serve, h);
    if (r == 0 && o.h2c)
        r = gorc_http_server_set_next_proto(s, "h2c", h2_serve, h);
    if (r == 0)
        r = gorc_http_server_on_shutdown(s, on_shutdown, h);
    if (r < 0) {
        gorc_http_server_set_next_proto(s, "h2", NULL, NULL);
        gorc_http_server_set_next_proto(s, "h2c", NULL, NULL);
        free(h);
        return r;
    }
    *out = h;
    return 0;
}

void gorc_http2_server_stats_get(gorc_http2_server *h, gorc_http2_server_stats *out)
{
    if (h == NULL || out == NULL)
        return;
    out->conns_total = atomic_load(&h->conns_total);
    out->conns_open = atomic_load(&h->conns_open);
    out->streams_total = atomic_load(&h->streams_total);
    out->handlers_running = atomic_load(&h->handlers_running);
    out->handlers_peak = atomic_load(&h->handlers_peak);
    out->resets_received = atomic_load(&h->resets_received);
    out->refused = atomic_load(&h->refused);
    out->calm_goaways = atomic_load(&h->calm_goaways);
    out->protocol_errors = atomic_load(&h->protocol_errors);
}

void gorc_http2_server_free(gorc_http2_server *h)
{
    free(h);
}

const char *gorc_http2_nghttp2_version(void)
{
    return nghttp2_version(0)->version_str;
}
