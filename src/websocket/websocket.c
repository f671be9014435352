/*
 * websocket.c - WebSocket connections (RFC 6455): the handshakes, reading and writing
 * messages, ping/pong keep-alive, and the close handshake. The wire format is in frame.c.
 *
 * Memory. A connection is one small record. It holds no read buffer while it waits: a read
 * first waits for readability (gorc__conn_wait_read, as the HTTP server's idle connections
 * do), then borrows a 4 KiB buffer from a per-thread pool, parses what arrived and gives the
 * buffer back as soon as every buffered byte is consumed. Payloads larger than what is
 * buffered are read straight into the caller's buffer (or the message's), not through the
 * pool buffer. A hijacked connection's already-read bytes arrive in a malloc'd buffer that
 * is used up first and then freed. So ten thousand idle connections hold ten thousand
 * records and stacks, and only the few connections with bytes in flight hold buffers.
 *
 * Reading. One goroutine reads at a time (a second gets -EBUSY). Control frames are
 * handled where they are found, between or inside fragmented messages: a ping is answered
 * with a pong at once, a pong is only proof of life, a close frame is checked, answered
 * with the same code, and ends reading with GORC_WS_ECLOSED. A violation fails the
 * connection: the close frame with the code RFC 6455 prescribes (frame.c names it) goes
 * out, writing is shut down, and the error is sticky. Text is validated as it arrives,
 * across frames and reads, so a message is rejected at its first bad byte.
 *
 * Keep-alive without a goroutine or a timer of its own: when ping_interval is set, the
 * deadline of the waiting read is the earlier of the user's read deadline and the time a
 * ping is due (or, once one was sent, the time its answer is due). When it fires, the read
 * sends the ping, or fails with -ETIMEDOUT if the answer is late. Anything received counts
 * as an answer. The deadline on the connection is moved only when it must come earlier or
 * is more than half an interval early (an early wake-up re-arms and waits on), so a busy
 * connection does not update a timer per message.
 *
 * Writing. Frames go out under one mutex (wmu), so a control frame from any goroutine never
 * lands inside another frame, while data writes are one writer at a time (-EBUSY otherwise)
 * as in Go. A server frame is its header and the caller's payload in one gathered write (no
 * copy); gorc_ws_write_messages sends a whole queue of messages that way, 32 frames per
 * system call. A client must mask, which changes the bytes, so it masks a copy in a pooled
 * buffer, 4 KiB at a time. Mask keys come from a generator seeded by getrandom per
 * connection. A write error is sticky (a frame may be half sent), except a cancellation or
 * deadline that struck before any byte went out.
 *
 * Closing. gorc_ws_close sends the close frame (unless the reader already answered one),
 * then waits for the peer's: by reading itself when no goroutine reads, or by waiting for
 * the reader to see it. Then the connection is closed. The record is reference counted as a
 * gorc_conn is; the connection's own reference is dropped with the last one.
 */
#include "gorc_websocket.h"
#include "http/internal.h"
#include "net/internal.h"
#include "websocket/frame.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#define POOL_SIZE     GORC__HTTP_BUF_SIZE
#define DIRECT_MIN    1024 /* payload reads at least this large bypass the pool buffer */
#define BATCH         32   /* frames per gathered write */
#define DEF_MAX_MSG   ((int64_t)16 << 20)
#define DEF_HANDSHAKE (30 * GORC_SECOND)
#define DEF_CLOSE     (5 * GORC_SECOND)
#define MAX_RESP_HEAD 16384

struct gorc_ws {
    gorc_conn *c;
    _Atomic int32_t refs;
    _Atomic bool closed; /* gorc_ws_close ran */
    bool client;
    /* Read side: only the goroutine that set `reading` touches these. */
    _Atomic bool reading;
    uint8_t *rbuf; /* pooled (rcap == POOL_SIZE) or the hijack's leftover, or NULL */
    uint32_t rpos, rlen, rcap;
    gorc__ws_frame fr; /* the current data frame */
    uint64_t frem;     /* its payload bytes not yet read */
    uint64_t mlen;     /* bytes of the current message so far */
    uint8_t mpos;      /* mask position in the current frame */
    uint8_t mtype;     /* type of the message being read, 0 between messages */
    bool streaming;    /* gorc_ws_next_message started a message for gorc_ws_read */
    gorc__ws_utf8 u8;
    int rerr; /* sticky read error */
    /* Deadlines and keep-alive: written by the reader and by the deadline setter. */
    _Atomic int64_t rdl;       /* the user's read deadline */
    _Atomic int64_t armed;     /* the read deadline set on c */
    _Atomic int64_t last_recv; /* when bytes last arrived */
    _Atomic int64_t ping_at;   /* when the keep-alive ping went out (0: none outstanding) */
    /* Write side. */
    gorc_mutex wmu;       /* one frame or batch on the wire at a time; guards werr, wfrag */
    _Atomic bool writing; /* a data write is in progress */
    bool wfrag;           /* a fragmented message is being written */
    int werr;             /* sticky write error */
    _Atomic bool close_sent, close_recv;
    _Atomic int peer_code; /* what the peer's close said; 1006 when the stream just ended */
    char *peer_reason;     /* its reason (malloc'd, NUL-terminated), or NULL */
    uint64_t rng;          /* mask keys (client); under wmu */
    char *proto;           /* chosen subprotocol or NULL */
    /* The negotiated extension (NULL: none) and its state. */
    const gorc_ws_extension *ext;
    void *ext_state;
    bool mcomp; /* the message being read had RSV1: the extension decodes it */
    bool mtext; /* ...and is text (checked after decoding) */
    char *dmsg; /* a decoded message gorc_ws_read serves from, or NULL */
    size_t dlen, dpos;
    int64_t max_msg, max_frame, ping_iv, pong_to, close_to;
};

/* ------------------------------------------------------------------------------------------
 * Buffers: the HTTP server's per-thread pool (http/common.c), so the buffer an upgraded
 * connection's request used serves its frames next
 * ---------------------------------------------------------------------------------------- */

static uint8_t *pool_get(void)
{
    return gorc__http_buf_get();
}

static void pool_put(uint8_t *b)
{
    gorc__http_buf_put(b);
}

static void rbuf_drop(gorc_ws *ws)
{
    if (ws->rbuf == NULL)
        return;
    if (ws->rcap == POOL_SIZE)
        pool_put(ws->rbuf);
    else
        free(ws->rbuf);
    ws->rbuf = NULL;
    ws->rpos = ws->rlen = ws->rcap = 0;
}

static int64_t coarse_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * GORC_SECOND + ts.tv_nsec;
}

static bool cancellable(gorc_ctx *ctx)
{
    return ctx != NULL && gorc_ctx_done(ctx) != NULL;
}

/* ------------------------------------------------------------------------------------------
 * Records
 * ---------------------------------------------------------------------------------------- */

static int64_t dflt(int64_t v, int64_t d)
{
    return v == 0 ? d : v < 0 ? -1 : v;
}

static gorc_ws *ws_new(gorc_conn *c, bool client, const gorc_ws_opts *o)
{
    gorc_ws *ws = calloc(1, sizeof *ws);
    if (ws == NULL)
        return NULL;
    static const gorc_ws_opts none;
    if (o == NULL)
        o = &none;
    ws->c = c;
    atomic_init(&ws->refs, 1);
    ws->client = client;
    ws->max_msg = dflt(o->max_message, DEF_MAX_MSG);
    ws->max_frame = o->max_frame > 0 ? o->max_frame : ws->max_msg;
    ws->ping_iv = o->ping_interval > 0 ? o->ping_interval : 0;
    ws->pong_to = o->pong_timeout > 0 ? o->pong_timeout : ws->ping_iv;
    ws->close_to = o->close_timeout > 0 ? o->close_timeout : DEF_CLOSE;
    atomic_init(&ws->last_recv, coarse_now());
    if (getrandom(&ws->rng, sizeof ws->rng, 0) != sizeof ws->rng || ws->rng == 0)
        ws->rng = (uint64_t)gorc_now() * 0x9e3779b97f4a7c15ull | 1;
    return ws;
}

static void ws_free(gorc_ws *ws)
{
    if (ws->ext && ws->ext->free && ws->ext_state)
        ws->ext->free(ws->ext_state);
    free(ws->dmsg);
    rbuf_drop(ws);
    gorc_conn_release(ws->c);
    free(ws->peer_reason);
    free(ws->proto);
    free(ws);
}

gorc_ws *gorc_ws_retain(gorc_ws *ws)
{
    if (ws)
        atomic_fetch_add(&ws->refs, 1);
    return ws;
}

void gorc_ws_release(gorc_ws *ws)
{
    if (ws == NULL || atomic_fetch_sub(&ws->refs, 1) != 1)
        return;
    if (!atomic_load(&ws->closed))
        gorc_conn_close(gorc_conn_retain(ws->c));
    ws_free(ws);
}

const char *gorc_ws_subprotocol(gorc_ws *ws)
{
    return ws && ws->proto ? ws->proto : "";
}

gorc_conn *gorc_ws_conn(gorc_ws *ws)
{
    return ws ? ws->c : NULL;
}

/* ------------------------------------------------------------------------------------------
 * Writing frames
 * ---------------------------------------------------------------------------------------- */

static void mask_key(gorc_ws *ws, uint8_t key[4])
{
    uint64_t x = ws->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ws->rng = x;
    uint32_t v = (uint32_t)((x * 0x2545f4914f6cdd1dull) >> 32);
    memcpy(key, &v, 4);
}

/* Write iov (cnt pieces, total bytes) under wmu. */
static int put_iov(gorc_ws *ws, struct iovec *iov, int cnt, gorc_ctx *ctx)
{
    if (ws->werr)
        return ws->werr;
    if (!cancellable(ctx)) {
        ssize_t r = gorc_conn_writev(ws->c, iov, cnt);
        if (r < 0)
            ws->werr = (int)r;
        return r < 0 ? (int)r : 0;
    }
    bool any = false;
    for (int i = 0; i < cnt; i++) {
        size_t done = 0;
        ssize_t r = gorc_conn_write_all_ctx(ws->c, iov[i].iov_base, iov[i].iov_len, ctx, &done);
        if (r < 0) {
            if (any || done > 0 || (r != -ECANCELED && r != -ETIMEDOUT))
                ws->werr = (int)r; /* part of a frame is out: the stream is broken */
            return (int)r;
        }
        any = any || iov[i].iov_len > 0;
    }
    return 0;
}

/* One frame under wmu; a client masks a copy of the payload, POOL_SIZE bytes at a time. */
static int put_frame(gorc_ws *ws, int op, bool fin, const void *p, size_t n, gorc_ctx *ctx)
{
    uint8_t h[GORC__WS_MAX_HEADER];
    if (!ws->client) {
        struct iovec iov[2] = {{h, gorc__ws_put_header(h, op, fin, n, NULL)}, {(void *)p, n}};
        return put_iov(ws, iov, n ? 2 : 1, ctx);
    }
    uint8_t key[4], pos = 0;
    mask_key(ws, key);
    size_t hl = gorc__ws_put_header(h, op, fin, n, key);
    if (n <= 125) {
        uint8_t small[125];
        if (n)
            memcpy(small, p, n);
        gorc__ws_mask(small, n, key, &pos);
        struct iovec iov[2] = {{h, hl}, {small, n}};
        return put_iov(ws, iov, n ? 2 : 1, ctx);
    }
    uint8_t *b = pool_get();
    if (b == NULL)
        return -ENOMEM;
    int r = 0;
    const uint8_t *s = p;
    for (size_t off = 0; off < n && r == 0;) {
        size_t k = n - off < POOL_SIZE ? n - off : POOL_SIZE;
        memcpy(b, s + off, k);
        gorc__ws_mask(b, k, key, &pos);
        struct iovec iov[2] = {{h, hl}, {b, k}};
        r = off == 0 ? put_iov(ws, iov, 2, ctx) : put_iov(ws, iov + 1, 1, ctx);
        if (r < 0 && off > 0)
            ws->werr = r;
        off += k;
    }
    pool_put(b);
    return r;
}

static int send_control(gorc_ws *ws, int op, const void *p, size_t n)
{
    gorc_mutex_lock(&ws->wmu);
    int r;
    if (atomic_load(&ws->close_sent))
        r = GORC_WS_ECLOSED;
    else {
        if (op == GORC__WS_OP_CLOSE)
            atomic_store(&ws->close_sent, true);
        r = put_frame(ws, op, true, p, n, NULL);
    }
    gorc_mutex_unlock(&ws->wmu);
    return r;
}

static int send_close(gorc_ws *ws, int code, const char *reason, size_t rn)
{
    uint8_t b[125];
    size_t n = 0;
    if (code != GORC_WS_CLOSE_NO_STATUS) {
        b[0] = (uint8_t)(code >> 8);
        b[1] = (uint8_t)code;
        if (rn)
            memcpy(b + 2, reason, rn);
        n = 2 + rn;
    }
    return send_control(ws, GORC__WS_OP_CLOSE, b, n);
}

static bool data_type(int t)
{
    return t == GORC_WS_TEXT || t == GORC_WS_BINARY;
}

/* Enter and leave a data write (one writer at a time). */
static int wbegin(gorc_ws *ws)
{
    bool f = false;
    if (!atomic_compare_exchange_strong(&ws->writing, &f, true))
        return -EBUSY;
    return 0;
}

static void wend(gorc_ws *ws)
{
    atomic_store(&ws->writing, false);
}

/* One whole message under wmu (the caller is the one data writer): through the extension
 * when there is one (encoded before the lock is taken). */
static int put_message(gorc_ws *ws, int type, const void *p, size_t n, gorc_ctx *ctx)
{
    void *enc = NULL;
    size_t en = 0;
    int op = type;
    if (ws->ext) {
        int e = ws->ext->encode(ws->ext_state, p, n, &enc, &en);
        if (e < 0)
            return e;
        if (e == 1) {
            op |= 0x40; /* RSV1: this message is encoded */
            p = enc;
            n = en;
        }
    }
    gorc_mutex_lock(&ws->wmu);
    int r;
    if (atomic_load(&ws->close_sent))
        r = GORC_WS_ECLOSED;
    else if (ws->wfrag)
        r = -EBUSY;
    else
        r = put_frame(ws, op, true, p, n, ctx);
    gorc_mutex_unlock(&ws->wmu);
    free(enc);
    return r;
}

int gorc_ws_write_message(gorc_ws *ws, int type, const void *p, size_t n, gorc_ctx *ctx)
{
    if (ws == NULL || !data_type(type) || (p == NULL && n > 0))
        return -EINVAL;
    if (wbegin(ws) < 0)
        return -EBUSY;
    int r = put_message(ws, type, p, n, ctx);
    wend(ws);
    return r;
}

int gorc_ws_write_messages(gorc_ws *ws, int type, const struct iovec *msgs, int n, gorc_ctx *ctx)
{
    if (ws == NULL || !data_type(type) || n < 0 || (msgs == NULL && n > 0))
        return -EINVAL;
    for (int i = 0; i < n; i++)
        if (msgs[i].iov_base == NULL && msgs[i].iov_len > 0)
            return -EINVAL;
    if (wbegin(ws) < 0)
        return -EBUSY;
    if (ws->ext) { /* each message is encoded on its own: no batching of payloads */
        int r = 0;
        for (int i = 0; i < n && r == 0; i++)
            r = put_message(ws, type, msgs[i].iov_base, msgs[i].iov_len, ctx);
        wend(ws);
        return r;
    }
    gorc_mutex_lock(&ws->wmu);
    int r = 0;
    if (atomic_load(&ws->close_sent))
        r = GORC_WS_ECLOSED;
    else if (ws->wfrag)
        r = -EBUSY;
    for (int i = 0; i < n && r == 0;) {
        if (ws->client) { /* masking copies anyway: frame by frame */
            r = put_frame(ws, type, true, msgs[i].iov_base, msgs[i].iov_len, ctx);
            i++;
            continue;
        }
        uint8_t h[BATCH][10];
        struct iovec iov[2 * BATCH];
        int k = 0, cnt = 0;
        for (; k < BATCH && i + k < n; k++) {
            const struct iovec *m = &msgs[i + k];
            iov[cnt].iov_base = h[k];
            iov[cnt++].iov_len = gorc__ws_put_header(h[k], type, true, m->iov_len, NULL);
            if (m->iov_len)
                iov[cnt++] = *m;
        }
        r = put_iov(ws, iov, cnt, ctx);
        if (r < 0 && i > 0)
            ws->werr = r; /* earlier messages went out: the peer saw part of the batch */
        i += k;
    }
    gorc_mutex_unlock(&ws->wmu);
    wend(ws);
    return r;
}

int gorc_ws_write_fragment(gorc_ws *ws, int type, const void *p, size_t n, bool fin, gorc_ctx *ctx)
{
    if (ws == NULL || (p == NULL && n > 0))
        return -EINVAL;
    if (wbegin(ws) < 0)
        return -EBUSY;
    gorc_mutex_lock(&ws->wmu);
    int r;
    if (atomic_load(&ws->close_sent)) {
        r = GORC_WS_ECLOSED;
    } else if (!ws->wfrag && !data_type(type)) {
        r = -EINVAL;
    } else {
        r = put_frame(ws, ws->wfrag ? GORC__WS_OP_CONT : type, fin, p, n, ctx);
        if (r == 0)
            ws->wfrag = !fin;
    }
    gorc_mutex_unlock(&ws->wmu);
    wend(ws);
    return r;
}

int gorc_ws_ping(gorc_ws *ws, const void *p, size_t n)
{
    if (ws == NULL || n > 125 || (p == NULL && n > 0))
        return -EINVAL;
    return send_control(ws, GORC__WS_OP_PING, p, n);
}

int gorc_ws_set_write_deadline(gorc_ws *ws, int64_t t)
{
    if (ws == NULL)
        return -EINVAL;
    return gorc_conn_set_write_deadline(ws->c, t);
}

/* ------------------------------------------------------------------------------------------
 * Reading: deadlines, keep-alive, buffering
 * ---------------------------------------------------------------------------------------- */

/* When keep-alive needs the read to wake up (0: never). */
static int64_t ka_due(gorc_ws *ws)
{
    if (ws->ping_iv <= 0)
        return 0;
    int64_t p = atomic_load(&ws->ping_at);
    return p ? p + ws->pong_to : atomic_load(&ws->last_recv) + ws->ping_iv;
}

static void arm(gorc_ws *ws)
{
    int64_t want = atomic_load(&ws->rdl), ka = ka_due(ws);
    if (ka && (want == 0 || ka < want))
        want = ka;
    int64_t cur = atomic_load(&ws->armed);
    /* Keep an armed deadline that is at most half an interval early (see the top). */
    if (cur == want ||
        (ka && want == ka && cur != 0 && cur <= want && cur > want - ws->ping_iv / 2 &&
         cur > atomic_load(&ws->rdl) - 1 && atomic_load(&ws->rdl) == 0))
        return;
    atomic_store(&ws->armed, want);
    gorc_conn_set_read_deadline(ws->c, want);
}

int gorc_ws_set_read_deadline(gorc_ws *ws, int64_t t)
{
    if (ws == NULL)
        return -EINVAL;
    atomic_store(&ws->rdl, t);
    int64_t want = t, ka = ka_due(ws);
    if (ka && (want == 0 || ka < want))
        want = ka;
    atomic_store(&ws->armed, want);
    return gorc_conn_set_read_deadline(ws->c, want);
}

static int fail(gorc_ws *ws, int code)
{
    int err = code == GORC_WS_CLOSE_BAD_DATA  ? GORC_WS_EBADDATA
              : code == GORC_WS_CLOSE_TOO_BIG ? GORC_WS_ETOOBIG
                                              : GORC_WS_EPROTO;
    if (ws->rerr == 0) {
        ws->rerr = err;
        send_close(ws, code, "", 0);
        gorc_conn_shutdown(ws->c, SHUT_WR);
    }
    return ws->rerr;
}

/* A read error: a deadline that was keep-alive's sends the ping or gives up; the user's
 * (or a stray early one) is reported or re-armed. Returns 0 to retry, or the error. */
static int on_timeout(gorc_ws *ws)
{
    int64_t now = gorc_now(), u = atomic_load(&ws->rdl);
    if (u && now >= u)
        return -ETIMEDOUT;
    int64_t ka = ka_due(ws);
    if (ka && now >= ka) {
        if (atomic_load(&ws->ping_at)) {
            ws->rerr = -ETIMEDOUT; /* the peer is gone: fail for good */
            gorc_conn_close(gorc_conn_retain(ws->c));
            atomic_store(&ws->closed, true);
            return -ETIMEDOUT;
        }
        atomic_store(&ws->ping_at, now);
        send_control(ws, GORC__WS_OP_PING, NULL, 0);
    }
    arm(ws);
    return 0;
}

static ssize_t read_some(gorc_ws *ws, void *buf, size_t n, gorc_ctx *ctx)
{
    for (;;) {
        arm(ws);
        ssize_t k = cancellable(ctx) ? gorc_conn_read_ctx(ws->c, buf, n, ctx)
                                     : gorc_conn_read(ws->c, buf, n);
        if (k > 0) {
            int64_t now = coarse_now();
            if (now != atomic_load_explicit(&ws->last_recv, memory_order_relaxed))
                atomic_store(&ws->last_recv, now);
            if (atomic_load_explicit(&ws->ping_at, memory_order_relaxed))
                atomic_store(&ws->ping_at, 0);
            return k;
        }
        if (k == 0) {
            int zero = 0;
            atomic_compare_exchange_strong(&ws->peer_code, &zero, GORC_WS_CLOSE_ABNORMAL);
            ws->rerr = GORC_EUNEXPECTEDEOF;
            return GORC_EUNEXPECTEDEOF;
        }
        if (k == -ETIMEDOUT && (ctx == NULL || gorc_ctx_err(ctx) == 0)) {
            int r = on_timeout(ws);
            if (r < 0)
                return r;
            continue;
        }
        if (k != -ECANCELED && k != -ETIMEDOUT && ws->rerr == 0) {
            int zero = 0;
            atomic_compare_exchange_strong(&ws->peer_code, &zero, GORC_WS_CLOSE_ABNORMAL);
            ws->rerr = (int)k;
        }
        return k;
    }
}

/* Wait until a read is worth a buffer, holding none (a cancellable ctx cannot be watched
 * there: the read then waits with the buffer). */
static int wait_idle(gorc_ws *ws, gorc_ctx *ctx)
{
    if (cancellable(ctx))
        return 0;
    for (;;) {
        arm(ws);
        int r = gorc__conn_wait_read(ws->c);
        if (r != -ETIMEDOUT)
            return r;
        r = on_timeout(ws);
        if (r < 0)
            return r;
    }
}

/* Have at least need (<= POOL_SIZE) bytes buffered. */
static int fill(gorc_ws *ws, size_t need, gorc_ctx *ctx)
{
    while (ws->rlen - ws->rpos < need) {
        if (ws->rbuf && ws->rpos == ws->rlen)
            rbuf_drop(ws);
        if (ws->rbuf == NULL) {
            int r = wait_idle(ws, ctx);
            if (r < 0)
                return r;
            ws->rbuf = pool_get();
            if (ws->rbuf == NULL)
                return -ENOMEM;
            ws->rcap = POOL_SIZE;
        } else if (ws->rcap - ws->rpos < need) {
            size_t have = ws->rlen - ws->rpos;
            if (ws->rcap < POOL_SIZE) { /* the hijack's small leftover: move to a pool one */
                uint8_t *b = pool_get();
                if (b == NULL)
                    return -ENOMEM;
                memcpy(b, ws->rbuf + ws->rpos, have);
                free(ws->rbuf);
                ws->rbuf = b;
                ws->rcap = POOL_SIZE;
            } else {
                memmove(ws->rbuf, ws->rbuf + ws->rpos, have);
            }
            ws->rpos = 0;
            ws->rlen = (uint32_t)have;
        }
        ssize_t k = read_some(ws, ws->rbuf + ws->rlen, ws->rcap - ws->rlen, ctx);
        if (k < 0) {
            if (ws->rpos == ws->rlen)
                rbuf_drop(ws);
            return (int)k;
        }
        ws->rlen += (uint32_t)k;
    }
    return 0;
}

/* The peer's close frame, payload p[0..n) (unmasked). */
static int on_close(gorc_ws *ws, const uint8_t *p, size_t n)
{
    int code;
    int r = gorc__ws_parse_close(p, n, &code);
    if (r < 0)
        return fail(ws, -r);
    if (n > 2) {
        ws->peer_reason = malloc(n - 1);
        if (ws->peer_reason) {
            memcpy(ws->peer_reason, p + 2, n - 2);
            ws->peer_reason[n - 2] = 0;
        }
    }
    atomic_store(&ws->peer_code, code);
    atomic_store(&ws->close_recv, true);
    /* Echo the code (RFC 6455 §5.5.1); nothing if we closed first. */
    if (!atomic_load(&ws->close_sent))
        send_close(ws, code, "", 0);
    ws->rerr = GORC_WS_ECLOSED;
    rbuf_drop(ws);
    return GORC_WS_ECLOSED;
}

/* Read frame headers until a data frame's; control frames are handled on the way. */
static int next_frame(gorc_ws *ws, gorc_ctx *ctx)
{
    for (;;) {
        gorc__ws_frame f;
        int h;
        for (size_t need = 2;; need = ws->rlen - ws->rpos + 1) {
            int r = fill(ws, need, ctx);
            if (r < 0)
                return r;
            h = gorc__ws_parse_header(ws->rbuf + ws->rpos, ws->rlen - ws->rpos, !ws->client,
                                      ws->ext ? 0x40 : 0, &f);
            if (h != 0)
                break;
        }
        if (h < 0)
            return fail(ws, -h);
        if (f.op >= GORC__WS_OP_CLOSE) {
            int r = fill(ws, (size_t)h + f.len, ctx);
            if (r < 0)
                return r;
            uint8_t pl[125], pos = 0;
            memcpy(pl, ws->rbuf + ws->rpos + h, f.len);
            ws->rpos += (uint32_t)(h + f.len);
            if (f.masked)
                gorc__ws_mask(pl, f.len, f.key, &pos);
            if (f.op == GORC__WS_OP_CLOSE)
                return on_close(ws, pl, f.len);
            if (f.op == GORC__WS_OP_PING)
                send_control(ws, GORC__WS_OP_PONG, pl, f.len); /* after a close: not sent */
            continue;
        }
        if (f.op == GORC__WS_OP_CONT && f.rsv)
            return fail(ws, GORC_WS_CLOSE_PROTOCOL); /* RSV1 belongs to a message's first frame */
        if ((f.op == GORC__WS_OP_CONT) != (ws->mtype != 0))
            return fail(ws, GORC_WS_CLOSE_PROTOCOL); /* a continuation of nothing, or a new
                                                        message inside a fragmented one */
        if ((ws->max_frame >= 0 && f.len > (uint64_t)ws->max_frame) ||
            (ws->max_msg >= 0 &&
             (f.op == GORC__WS_OP_CONT ? ws->mlen : 0) + f.len > (uint64_t)ws->max_msg))
            return fail(ws, GORC_WS_CLOSE_TOO_BIG);
        if (f.op != GORC__WS_OP_CONT) {
            ws->mcomp = f.rsv != 0;
            ws->mtype = f.op;
            ws->mlen = 0;
            memset(&ws->u8, 0, sizeof ws->u8);
        }
        ws->rpos += (uint32_t)h;
        ws->fr = f;
        ws->frem = f.len;
        ws->mpos = 0;
        return 0;
    }
}

/* Up to n bytes of the current frame's payload (frem > 0). */
static ssize_t payload(gorc_ws *ws, uint8_t *buf, size_t n, gorc_ctx *ctx)
{
    if (n > ws->frem)
        n = (size_t)ws->frem;
    size_t have = ws->rlen - ws->rpos;
    ssize_t k;
    if (have > 0) {
        k = (ssize_t)(n < have ? n : have);
        memcpy(buf, ws->rbuf + ws->rpos, (size_t)k);
        ws->rpos += (uint32_t)k;
        if (ws->rpos == ws->rlen)
            rbuf_drop(ws);
    } else if (n >= DIRECT_MIN) {
        int r = wait_idle(ws, ctx);
        if (r < 0)
            return r;
        k = read_some(ws, buf, n, ctx);
        if (k < 0)
            return k;
    } else {
        int r = fill(ws, 1, ctx);
        if (r < 0)
            return r;
        return payload(ws, buf, n, ctx);
    }
    if (ws->fr.masked)
        gorc__ws_mask(buf, (size_t)k, ws->fr.key, &ws->mpos);
    if (ws->mtype == GORC_WS_TEXT && !ws->mcomp && !gorc__ws_utf8_feed(&ws->u8, buf, (size_t)k))
        return fail(ws, GORC_WS_CLOSE_BAD_DATA);
    ws->frem -= (uint64_t)k;
    ws->mlen += (uint64_t)k;
    return k;
}

/* Up to n bytes of the current message; 0 at its end (the message is then over). */
static ssize_t msg_read(gorc_ws *ws, uint8_t *buf, size_t n, gorc_ctx *ctx)
{
    for (;;) {
        if (ws->mtype == 0)
            return 0;
        if (ws->frem > 0) {
            if (n == 0)
                return 0;
            return payload(ws, buf, n, ctx);
        }
        if (ws->fr.fin) {
            if (ws->mtype == GORC_WS_TEXT && !ws->mcomp && !gorc__ws_utf8_done(&ws->u8))
                return fail(ws, GORC_WS_CLOSE_BAD_DATA);
            ws->mtype = 0;
            return 0;
        }
        int r = next_frame(ws, ctx);
        if (r < 0)
            return r;
    }
}

static int rbegin(gorc_ws *ws)
{
    bool f = false;
    if (!atomic_compare_exchange_strong(&ws->reading, &f, true))
        return -EBUSY;
    if (ws->rerr) {
        atomic_store(&ws->reading, false);
        return ws->rerr;
    }
    return 0;
}

static void rend(gorc_ws *ws)
{
    atomic_store(&ws->reading, false);
}

/* Discard the rest of the current message, then start the next. */
static int start_message(gorc_ws *ws, int *type, gorc_ctx *ctx)
{
    free(ws->dmsg);
    ws->dmsg = NULL;
    uint8_t scratch[512];
    ssize_t k;
    while ((k = msg_read(ws, scratch, sizeof scratch, ctx)) > 0) {
    }
    if (k < 0)
        return (int)k;
    int r = next_frame(ws, ctx);
    if (r < 0)
        return r;
    *type = ws->mtype;
    return 0;
}

/* The rest of the message just started, whole, into a malloc'd NUL-terminated buffer;
 * decoded by the extension when it had RSV1 (and then checked to be UTF-8 if text). */
static ssize_t read_whole(gorc_ws *ws, char **out, gorc_ctx *ctx)
{
    char *m = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        size_t want = ws->frem > 0 ? (size_t)ws->frem : 0;
        if (len + want + 1 > cap) {
            size_t ncap = cap ? cap : 64;
            while (ncap < len + want + 1)
                ncap *= 2;
            char *nm = realloc(m, ncap);
            if (nm == NULL) {
                free(m);
                return -ENOMEM; /* the message's rest is skipped by the next read */
            }
            m = nm;
            cap = ncap;
        }
        ssize_t k = msg_read(ws, (uint8_t *)m + len, cap - len - 1, ctx);
        if (k < 0) {
            free(m);
            return k;
        }
        if (k == 0)
            break;
        len += (size_t)k;
    }
    if (ws->mcomp) {
        void *d = NULL;
        size_t dn = 0;
        size_t max = ws->max_msg >= 0 ? (size_t)ws->max_msg : SIZE_MAX - 1;
        int r = ws->ext->decode(ws->ext_state, m, len, max, &d, &dn);
        free(m);
        if (r == -ENOMEM)
            return r;
        if (r < 0)
            return fail(ws, r == GORC_WS_ETOOBIG ? GORC_WS_CLOSE_TOO_BIG : GORC_WS_CLOSE_BAD_DATA);
        m = realloc(d, dn + 1);
        if (m == NULL) {
            free(d);
            return -ENOMEM;
        }
        len = dn;
        gorc__ws_utf8 u = {0};
        if (ws->mtext && (!gorc__ws_utf8_feed(&u, (uint8_t *)m, len) || !gorc__ws_utf8_done(&u))) {
            free(m);
            return fail(ws, GORC_WS_CLOSE_BAD_DATA);
        }
    }
    m[len] = 0;
    *out = m;
    return (ssize_t)len;
}

int gorc_ws_next_message(gorc_ws *ws, int *type, gorc_ctx *ctx)
{
    if (ws == NULL || type == NULL)
        return -EINVAL;
    int r = rbegin(ws);
    if (r < 0)
        return r;
    r = start_message(ws, type, ctx);
    if (r == 0 && ws->mcomp) { /* encoded: decoded whole, then served from memory */
        ws->mtext = *type == GORC_WS_TEXT;
        ssize_t k = read_whole(ws, &ws->dmsg, ctx);
        if (k < 0)
            r = (int)k;
        ws->dlen = k < 0 ? 0 : (size_t)k;
        ws->dpos = 0;
    }
    ws->streaming = r == 0;
    rend(ws);
    return r;
}

ssize_t gorc_ws_read(gorc_ws *ws, void *buf, size_t n, gorc_ctx *ctx)
{
    if (ws == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    int r = rbegin(ws);
    if (r < 0)
        return r;
    ssize_t k;
    if (!ws->streaming) {
        k = -EINVAL;
    } else if (ws->dmsg) {
        size_t left = ws->dlen - ws->dpos;
        k = (ssize_t)(n < left ? n : left);
        if (k > 0)
            memcpy(buf, ws->dmsg + ws->dpos, (size_t)k);
        ws->dpos += (size_t)k;
    } else {
        k = msg_read(ws, buf, n, ctx);
    }
    rend(ws);
    return k;
}

ssize_t gorc_ws_read_message(gorc_ws *ws, int *type, char **out, gorc_ctx *ctx)
{
    if (ws == NULL || type == NULL || out == NULL)
        return -EINVAL;
    *out = NULL;
    int r = rbegin(ws);
    if (r < 0)
        return r;
    ws->streaming = false;
    r = start_message(ws, type, ctx);
    if (r < 0) {
        rend(ws);
        return r;
    }
    ws->mtext = *type == GORC_WS_TEXT;
    ssize_t k = read_whole(ws, out, ctx);
    rend(ws);
    return k;
}

int gorc_ws_close_status(gorc_ws *ws, char *reason, size_t n)
{
    if (ws == NULL)
        return -EINVAL;
    int code = atomic_load(&ws->peer_code);
    if (reason && n > 0) {
        const char *s = atomic_load(&ws->close_recv) && ws->peer_reason ? ws->peer_reason : "";
        snprintf(reason, n, "%s", s);
    }
    return code;
}

/* ------------------------------------------------------------------------------------------
 * Closing
 * ---------------------------------------------------------------------------------------- */

int gorc_ws_close(gorc_ws *ws, int code, const char *reason)
{
    if (ws == NULL)
        return -EINVAL;
    if (code == 0)
        code = GORC_WS_CLOSE_NORMAL;
    size_t rn = reason ? strlen(reason) : 0;
    if (!gorc__ws_close_code_ok(code) || rn > 123)
        return -EINVAL;
    if (atomic_exchange(&ws->closed, true)) {
        gorc_ws_release(ws);
        return GORC_ENETCLOSED;
    }
    int ret = 0;
    int64_t dl = gorc_now() + ws->close_to;
    if (!atomic_load(&ws->close_sent)) {
        gorc_conn_set_write_deadline(ws->c, dl);
        int r = send_close(ws, code, reason, rn);
        if (r < 0 && r != GORC_WS_ECLOSED)
            ret = r;
    }
    if (ret == 0 && !atomic_load(&ws->close_recv)) {
        bool f = false;
        if (atomic_compare_exchange_strong(&ws->reading, &f, true)) {
            atomic_store(&ws->rdl, dl);
            int r;
            if (ws->rerr == 0) {
                int t;
                do
                    r = start_message(ws, &t, NULL);
                while (r == 0);
            } else { /* failed: drain what the peer still sends until it closes */
                uint8_t scratch[512];
                gorc_conn_set_read_deadline(ws->c, dl);
                while ((r = (int)gorc_conn_read(ws->c, scratch, sizeof scratch)) > 0) {
                }
            }
            if (r == -ETIMEDOUT)
                ret = -ETIMEDOUT;
            atomic_store(&ws->reading, false);
        } else {
            int64_t pause = GORC_MILLISECOND / 4;
            while (!atomic_load(&ws->close_recv) && atomic_load(&ws->reading)) {
                if (gorc_now() >= dl) {
                    ret = -ETIMEDOUT;
                    break;
                }
                gorc_sleep(pause);
                if (pause < 20 * GORC_MILLISECOND)
                    pause *= 2;
            }
        }
    }
    gorc_conn_close(gorc_conn_retain(ws->c));
    gorc_ws_release(ws);
    return ret;
}

/* ------------------------------------------------------------------------------------------
 * Handshakes
 * ---------------------------------------------------------------------------------------- */

/* Does a comma-separated header value list (any of r's headers named name) hold token? */
static bool has_token(const gorc_http_header *h, size_t n, const char *name, const char *token)
{
    size_t tn = strlen(token);
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(h[i].name, name) != 0)
            continue;
        gorc__http_slice rest = {h[i].value, strlen(h[i].value)}, e;
        while (gorc__http_list_next(&rest, &e))
            if (gorc__http_ieq(e, token, tn))
                return true;
    }
    return false;
}

static bool extra_headers_ok(const gorc_ws_opts *o)
{
    for (size_t i = 0; o && i < o->num_headers; i++)
        if (!gorc__http_is_token(o->headers[i].name) || !gorc__http_is_value(o->headers[i].value))
            return false;
    return true;
}

static void put_extra_headers(gorc__http_sbuf *b, const gorc_ws_opts *o)
{
    for (size_t i = 0; o && i < o->num_headers; i++) {
        gorc__http_sbuf_str(b, o->headers[i].name);
        gorc__http_sbuf_str(b, ": ");
        gorc__http_sbuf_str(b, o->headers[i].value);
        gorc__http_sbuf_str(b, "\r\n");
    }
}

/* The host[:port] of an Origin value "scheme://host[:port]", compared with Host. */
static bool same_origin(const char *origin, const char *host)
{
    const char *p = strstr(origin, "://");
    if (p == NULL)
        return false;
    p += 3;
    size_t n = strcspn(p, "/");
    return strlen(host) == n && strncasecmp(p, host, n) == 0;
}

static int refuse(gorc_http_rw *w, int status, const char *msg)
{
    if (status == 426)
        gorc_http_rw_set_header(w, "Sec-WebSocket-Version", "13");
    gorc_http_error(w, status, msg);
    return GORC_WS_EHANDSHAKE;
}

static bool key_ok(const char *k)
{
    if (k == NULL || strlen(k) != 24 || strcmp(k + 22, "==") != 0)
        return false;
    for (int i = 0; i < 22; i++)
        if (!(k[i] == '+' || k[i] == '/' || (k[i] >= '0' && k[i] <= '9') ||
              (k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z')))
            return false;
    return true;
}

/* Split an extension offer "name; a; b=1" into its name (NUL-terminated in name[0..nn)) and
 * its parameters (a pointer into e, up to its end). False when the name does not fit. */
static bool ext_split(gorc__http_slice e, char *name, size_t nn, gorc__http_slice *params)
{
    size_t i = 0;
    while (i < e.n && e.p[i] != ';')
        i++;
    size_t k = i;
    while (k > 0 && (e.p[k - 1] == ' ' || e.p[k - 1] == '\t'))
        k--;
    if (k == 0 || k >= nn)
        return false;
    memcpy(name, e.p, k);
    name[k] = 0;
    size_t j = i < e.n ? i + 1 : i;
    while (j < e.n && (e.p[j] == ' ' || e.p[j] == '\t'))
        j++;
    params->p = e.p + j;
    params->n = e.n - j;
    return true;
}

/* Server: the first of the client's offers of o's extension that it accepts. Appends the
 * response header to b. 0, or -ENOMEM. */
static int ext_accept(gorc_ws *ws, const gorc_http_request *r, const gorc_ws_opts *o,
                      gorc__http_sbuf *b)
{
    const gorc_ws_extension *x = o ? o->extension : NULL;
    if (x == NULL)
        return 0;
    for (size_t i = 0; i < r->num_headers; i++) {
        if (strcasecmp(r->headers[i].name, "Sec-WebSocket-Extensions") != 0)
            continue;
        gorc__http_slice rest = {r->headers[i].value, strlen(r->headers[i].value)}, e, prm;
        while (gorc__http_list_next(&rest, &e)) {
            char name[64], params[256], resp[256];
            if (!ext_split(e, name, sizeof name, &prm) || strcmp(name, x->name) != 0 ||
                prm.n >= sizeof params)
                continue;
            memcpy(params, prm.p, prm.n);
            params[prm.n] = 0;
            resp[0] = 0;
            void *st = NULL;
            int a = x->accept(x->arg, params, resp, sizeof resp, &st);
            if (a < 0)
                return a;
            if (a == 0)
                continue;
            ws->ext = x;
            ws->ext_state = st;
            gorc__http_sbuf_str(b, "Sec-WebSocket-Extensions: ");
            gorc__http_sbuf_str(b, x->name);
            if (resp[0]) {
                gorc__http_sbuf_str(b, "; ");
                gorc__http_sbuf_str(b, resp);
            }
            gorc__http_sbuf_str(b, "\r\n");
            return 0;
        }
    }
    return 0;
}

/* The first of the server's subprotocols that the client offered, or NULL. */
static const char *pick_proto(const gorc_http_request *r, const gorc_ws_opts *o)
{
    for (const char *const *s = o ? o->subprotocols : NULL; s && *s; s++)
        if (has_token(r->headers, r->num_headers, "Sec-WebSocket-Protocol", *s))
            return *s;
    return NULL;
}

int gorc_ws_upgrade(gorc_ws **out, gorc_http_rw *w, gorc_http_request *r, const gorc_ws_opts *o)
{
    if (out == NULL || w == NULL || r == NULL)
        return -EINVAL;
    *out = NULL;
    if (gorc_http_rw_sent(w))
        return -EALREADY;
    if (!extra_headers_ok(o))
        return -EINVAL;
    if (strcmp(r->method, "GET") != 0) {
        gorc_http_rw_set_header(w, "Allow", "GET");
        gorc_http_error(w, 405, "websocket: the upgrade must be a GET");
        return GORC_WS_EHANDSHAKE;
    }
    if (r->proto_minor < 1 || !has_token(r->headers, r->num_headers, "Connection", "upgrade") ||
        !has_token(r->headers, r->num_headers, "Upgrade", "websocket"))
        return refuse(w, 400, "websocket: not a websocket handshake");
    const char *v = gorc_http_request_header(r, "Sec-WebSocket-Version");
    if (v == NULL || strcmp(v, "13") != 0)
        return refuse(w, 426, "websocket: unsupported version");
    const char *key = gorc_http_request_header(r, "Sec-WebSocket-Key");
    if (!key_ok(key))
        return refuse(w, 400, "websocket: bad Sec-WebSocket-Key");
    const char *origin = gorc_http_request_header(r, "Origin");
    if (origin && !(o && o->any_origin) && !same_origin(origin, r->host))
        return refuse(w, 403, "websocket: origin not allowed");
    char accept[29];
    gorc__ws_accept_key(key, strlen(key), accept);
    const char *proto = pick_proto(r, o);
    gorc_ws *ws = ws_new(NULL, false, o);
    if (ws == NULL || (proto && (ws->proto = strdup(proto)) == NULL)) {
        if (ws)
            ws_free(ws);
        gorc_http_error(w, 500, "out of memory");
        return -ENOMEM;
    }
    gorc__http_sbuf b = {0};
    gorc__http_sbuf_str(&b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Accept: ");
    gorc__http_sbuf_str(&b, accept);
    gorc__http_sbuf_str(&b, "\r\n");
    if (proto) {
        gorc__http_sbuf_str(&b, "Sec-WebSocket-Protocol: ");
        gorc__http_sbuf_str(&b, proto);
        gorc__http_sbuf_str(&b, "\r\n");
    }
    int xr = ext_accept(ws, r, o, &b);
    put_extra_headers(&b, o);
    gorc__http_sbuf_str(&b, "\r\n");
    if (b.oom || xr < 0) {
        free(b.p);
        ws_free(ws);
        gorc_http_error(w, 500, "out of memory");
        return -ENOMEM;
    }
    char *extra;
    size_t nextra;
    int rc = gorc_http_rw_hijack(w, &ws->c, &extra, &nextra);
    if (rc < 0) {
        free(b.p);
        ws_free(ws);
        return rc;
    }
    ws->rbuf = (uint8_t *)extra;
    ws->rlen = ws->rcap = (uint32_t)nextra;
    ssize_t k = gorc_conn_write_all(ws->c, b.p, b.n);
    free(b.p);
    if (k < 0) {
        gorc_ws_release(ws);
        return (int)k;
    }
    *out = ws;
    return 0;
}

/* "ws://host[:port]/path?q": is_tls, the authority (for Host), the address to dial and the
 * request target. */
typedef struct url_parts {
    bool tls;
    char host[256], addr[272], target[2048];
} url_parts;

static int parse_url(const char *url, url_parts *u)
{
    const char *p;
    if (strncasecmp(url, "ws://", 5) == 0) {
        u->tls = false;
        p = url + 5;
    } else if (strncasecmp(url, "wss://", 6) == 0) {
        u->tls = true;
        p = url + 6;
    } else {
        return strstr(url, "://") ? -EPROTONOSUPPORT : -EINVAL;
    }
    size_t hn = strcspn(p, "/?#");
    if (hn == 0 || hn >= sizeof u->host || memchr(p, '@', hn))
        return -EINVAL;
    memcpy(u->host, p, hn);
    u->host[hn] = 0;
    const char *rest = p + hn;
    size_t tn = strcspn(rest, "#");
    if (tn + 2 > sizeof u->target)
        return -EINVAL;
    if (*rest != '/')
        u->target[0] = '/', memcpy(u->target + 1, rest, tn), u->target[tn + 1] = 0;
    else
        memcpy(u->target, rest, tn), u->target[tn] = 0;
    for (const char *s = u->host; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return -EINVAL;
    for (const char *s = u->target; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return -EINVAL;
    /* A port is present unless the authority ends in ']' or has no ':' after any ']'. */
    const char *close = strrchr(u->host, ']');
    const char *colon = strrchr(close ? close : u->host, ':');
    if (colon)
        snprintf(u->addr, sizeof u->addr, "%s", u->host);
    else
        snprintf(u->addr, sizeof u->addr, "%s:%s", u->host, u->tls ? "443" : "80");
    return 0;
}

static bool offered(const gorc_ws_opts *o, const char *p, size_t n)
{
    for (const char *const *s = o ? o->subprotocols : NULL; s && *s; s++)
        if (strlen(*s) == n && memcmp(*s, p, n) == 0)
            return true;
    return false;
}

/* The client handshake on c, with an absolute deadline (0: none). Owns c. */
static int client_handshake(gorc_ws **out, gorc_conn *c, const url_parts *u, const gorc_ws_opts *o,
                            gorc_ctx *ctx, int64_t deadline)
{
    gorc_ws *ws = ws_new(c, true, o);
    if (ws == NULL) {
        gorc_conn_close(c);
        return -ENOMEM;
    }
    uint8_t raw[16];
    for (int i = 0; i < 16; i += 4)
        mask_key(ws, raw + i);
    char key[25], accept[29];
    gorc__ws_base64(raw, 16, key);
    gorc__ws_accept_key(key, 24, accept);
    gorc__http_sbuf b = {0};
    gorc__http_sbuf_str(&b, "GET ");
    gorc__http_sbuf_str(&b, u->target);
    gorc__http_sbuf_str(&b, " HTTP/1.1\r\nHost: ");
    gorc__http_sbuf_str(&b, u->host);
    gorc__http_sbuf_str(&b, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ");
    gorc__http_sbuf_str(&b, key);
    gorc__http_sbuf_str(&b, "\r\n");
    if (o && o->subprotocols && o->subprotocols[0]) {
        gorc__http_sbuf_str(&b, "Sec-WebSocket-Protocol: ");
        for (const char *const *s = o->subprotocols; *s; s++) {
            gorc__http_sbuf_str(&b, *s);
            gorc__http_sbuf_str(&b, s[1] ? ", " : "\r\n");
        }
    }
    const gorc_ws_extension *x = o ? o->extension : NULL;
    int err = 0;
    if (x) {
        char offer[256] = "";
        err = x->offer(x->arg, offer, sizeof offer);
        gorc__http_sbuf_str(&b, "Sec-WebSocket-Extensions: ");
        gorc__http_sbuf_str(&b, x->name);
        if (offer[0]) {
            gorc__http_sbuf_str(&b, "; ");
            gorc__http_sbuf_str(&b, offer);
        }
        gorc__http_sbuf_str(&b, "\r\n");
    }
    put_extra_headers(&b, o);
    gorc__http_sbuf_str(&b, "\r\n");
    if (b.oom)
        err = -ENOMEM;
    if (deadline) {
        gorc_conn_set_read_deadline(c, deadline);
        gorc_conn_set_write_deadline(c, deadline);
    }
    if (err == 0) {
        ssize_t k = ctx ? gorc_conn_write_all_ctx(c, b.p, b.n, ctx, NULL)
                        : gorc_conn_write_all(c, b.p, b.n);
        if (k < 0)
            err = (int)k;
    }
    free(b.p);
    /* The response head, read into a pool buffer that becomes the read buffer. */
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, head = 0;
    gorc__http_header hdrs[32];
    gorc__http_response resp;
    while (err == 0) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : POOL_SIZE;
            if (ncap > MAX_RESP_HEAD) {
                err = GORC_WS_EHANDSHAKE;
                break;
            }
            /* Pool buffers are plain malloc'd blocks: realloc may grow one. */
            uint8_t *nb = cap ? realloc(buf, ncap) : pool_get();
            if (nb == NULL) {
                err = -ENOMEM;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t k = ctx ? gorc_conn_read_ctx(c, buf + len, cap - len, ctx)
                        : gorc_conn_read(c, buf + len, cap - len);
        if (k <= 0) {
            err = k == 0 ? GORC_EUNEXPECTEDEOF : (int)k;
            break;
        }
        size_t prev = len;
        len += (size_t)k;
        memset(&resp, 0, sizeof resp);
        resp.headers = hdrs;
        resp.headers_cap = sizeof hdrs / sizeof hdrs[0];
        int h = gorc__http_parse_response(&resp, (const char *)buf, len, prev, NULL);
        if (h > 0) {
            head = (size_t)h;
            break;
        }
        if (h != GORC__HTTP_NEED_MORE)
            err = GORC_WS_EHANDSHAKE;
    }
    if (err == 0) {
        const gorc__http_header *e;
        gorc__http_slice rest, el;
        bool up = false, conn = false;
        for (e = NULL; (e = gorc__http_header_find(hdrs, resp.num_headers, "upgrade", 7, e));)
            for (rest = e->value; gorc__http_list_next(&rest, &el);)
                up = up || gorc__http_ieq(el, "websocket", 9);
        for (e = NULL; (e = gorc__http_header_find(hdrs, resp.num_headers, "connection", 10, e));)
            for (rest = e->value; gorc__http_list_next(&rest, &el);)
                conn = conn || gorc__http_ieq(el, "upgrade", 7);
        const gorc__http_header *acc =
            gorc__http_header_find(hdrs, resp.num_headers, "sec-websocket-accept", 20, NULL);
        const gorc__http_header *pr =
            gorc__http_header_find(hdrs, resp.num_headers, "sec-websocket-protocol", 22, NULL);
        const gorc__http_header *ext =
            gorc__http_header_find(hdrs, resp.num_headers, "sec-websocket-extensions", 24, NULL);
        if (resp.status != 101 || !up || !conn || acc == NULL || acc->value.n != 28 ||
            memcmp(acc->value.p, accept, 28) != 0 || (pr && !offered(o, pr->value.p, pr->value.n)))
            err = GORC_WS_EHANDSHAKE;
        else if (pr && (ws->proto = strndup(pr->value.p, pr->value.n)) == NULL)
            err = -ENOMEM;
        if (err == 0 && ext != NULL) { /* only what we offered, once */
            gorc__http_slice xrest = ext->value, xe, prm;
            char name[64], params[256];
            if (x == NULL || !gorc__http_list_next(&xrest, &xe) ||
                !ext_split(xe, name, sizeof name, &prm) || strcmp(name, x->name) != 0 ||
                prm.n >= sizeof params || gorc__http_list_next(&xrest, &xe) ||
                gorc__http_header_find(hdrs, resp.num_headers, "sec-websocket-extensions", 24,
                                       ext) != NULL) {
                err = GORC_WS_EHANDSHAKE;
            } else {
                memcpy(params, prm.p, prm.n);
                params[prm.n] = 0;
                void *st = NULL;
                if (x->confirm(x->arg, params, &st) < 0)
                    err = GORC_WS_EHANDSHAKE;
                else {
                    ws->ext = x;
                    ws->ext_state = st;
                }
            }
        }
    }
    if (err < 0) {
        if (buf)
            cap == POOL_SIZE ? pool_put(buf) : free(buf);
        gorc_ws_release(ws);
        return err;
    }
    if (deadline) {
        gorc_conn_set_read_deadline(c, 0);
        gorc_conn_set_write_deadline(c, 0);
    }
    if (head < len) {
        ws->rbuf = buf;
        ws->rcap = (uint32_t)cap;
        ws->rpos = (uint32_t)head;
        ws->rlen = (uint32_t)len;
    } else {
        cap == POOL_SIZE ? pool_put(buf) : free(buf);
    }
    *out = ws;
    return 0;
}

int gorc_ws_client(gorc_ws **out, gorc_conn *c, const char *url, const gorc_ws_opts *o,
                   gorc_ctx *ctx)
{
    url_parts u;
    int r = url == NULL ? -EINVAL : parse_url(url, &u);
    if (out == NULL || c == NULL || r < 0 || !extra_headers_ok(o)) {
        if (c)
            gorc_conn_close(c);
        return -EINVAL;
    }
    *out = NULL;
    int64_t t = dflt(o ? o->handshake_timeout : 0, DEF_HANDSHAKE);
    return client_handshake(out, c, &u, o, ctx, t > 0 ? gorc_now() + t : 0);
}

int gorc_ws_dial(gorc_ws **out, const char *url, const gorc_ws_opts *o, gorc_ctx *ctx)
{
    if (out == NULL || url == NULL)
        return -EINVAL;
    *out = NULL;
    url_parts u;
    int r = parse_url(url, &u);
    if (r < 0)
        return r;
    if (u.tls)
        return -EPROTONOSUPPORT;
    if (!extra_headers_ok(o))
        return -EINVAL;
    int64_t t = dflt(o ? o->handshake_timeout : 0, DEF_HANDSHAKE);
    int64_t deadline = t > 0 ? gorc_now() + t : 0;
    gorc_conn *c;
    r = ctx ? gorc_tcp_dial_ctx(&c, u.addr, t > 0 ? t : 0, ctx)
            : gorc_tcp_dial(&c, u.addr, t > 0 ? t : 0);
    if (r < 0)
        return r;
    return client_handshake(out, c, &u, o, ctx, deadline);
}
