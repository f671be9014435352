/*
 * test_net_ctx.c - network calls that a context cancels: read, write, accept, dial, resolve.
 *
 * Each blocking call is woken by a cancel and by a context's deadline, with the right error
 * and within a hang guard (a far deadline of the connection's own, or a dial timeout, so a lost
 * wake-up fails a check instead of hanging). A context cancelled before the call leaves the
 * socket untouched; a context that can never be cancelled gives the plain call. After a
 * cancelled call the connection works as before and the deadlines set on it are still in
 * force. A cancel racing data over thousands of rounds loses and duplicates no byte. Every
 * test counts goroutines and descriptors (/proc/self/fd) before and after.
 *
 * Name resolution cannot be interrupted: this file defines getaddrinfo itself, forwarding to
 * the C library except for the host "slow.test" (a reserved name, RFC 6761), whose lookup
 * waits until the test releases it - so a cancelled lookup can be watched finishing in the
 * background, with no network involved ("missing.test" is a name that does not exist). Everything
 * else talks to 127.0.0.1 and Unix sockets.
 */
#include "testutil.h"

#include <gorc_net.h>

#include <dirent.h>
#include <dlfcn.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MS    GORC_MILLISECOND
#define GUARD (10 * GORC_SECOND) /* a woken call must come back well before this */

/* ------------------------------------------------------------------------------------------
 * A getaddrinfo that can be made slow
 * ---------------------------------------------------------------------------------------- */

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
static gai_fn real_getaddrinfo;
static _Atomic int slow_waiting;  /* lookups of slow.test in progress */
static _Atomic int slow_released; /* let them finish */

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    if (node && strcmp(node, "slow.test") == 0) {
        atomic_fetch_add(&slow_waiting, 1);
        struct timespec ms = {0, 1000 * 1000};
        for (int i = 0; i < 30000 && !atomic_load(&slow_released); i++)
            nanosleep(&ms, NULL);
        int rc = real_getaddrinfo("127.0.0.1", service, hints, res);
        atomic_fetch_sub(&slow_waiting, 1);
        return rc;
    }
    if (node && strcmp(node, "missing.test") == 0)
        return EAI_NONAME;
    return real_getaddrinfo(node, service, hints, res);
}

/* ------------------------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------------------------- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own */
}

static gorc_listener *listen_local(char *addr)
{
    gorc_listener *l;
    CHECK_EQ(gorc_tcp_listen(&l, "127.0.0.1:0", NULL), 0);
    CHECK(gorc_listener_addr(l, addr, GORC_ADDRSTRLEN) > 0);
    return l;
}

static void tcp_pair(gorc_conn **client, gorc_conn **server)
{
    char addr[GORC_ADDRSTRLEN];
    gorc_listener *l = listen_local(addr);
    CHECK_EQ(gorc_tcp_dial(client, addr, 5 * GORC_SECOND), 0);
    CHECK_EQ(gorc_listener_accept(l, server), 0);
    CHECK_EQ(gorc_listener_close(l), 0);
}

static gorc_ctx *cancellable(void)
{
    gorc_ctx *c;
    CHECK_EQ(gorc_ctx_with_cancel(&c, gorc_ctx_background()), 0);
    return c;
}

static gorc_ctx *timeout_ctx(int64_t d)
{
    gorc_ctx *c;
    CHECK_EQ(gorc_ctx_with_timeout(&c, gorc_ctx_background(), d, 0), 0);
    return c;
}

typedef struct delayed {
    gorc_ctx *ctx;
    int64_t delay;
} delayed;

static void delayed_cancel(void *arg)
{
    delayed *d = arg;
    gorc_sleep(d->delay);
    gorc_ctx_cancel(d->ctx);
    gorc_ctx_release(d->ctx);
    free(d);
}

/* Cancel ctx from another goroutine after delay. */
static void cancel_after(gorc_ctx *ctx, int64_t delay)
{
    delayed *d = malloc(sizeof *d);
    CHECK(d != NULL);
    d->ctx = gorc_ctx_retain(ctx);
    d->delay = delay;
    CHECK_EQ(gorc_go(delayed_cancel, d), 0);
}

/* Elapsed time since t0 is at least min and well inside the guard. */
static void check_woken(int64_t t0, int64_t min)
{
    int64_t dt = gorc_now() - t0;
    if (dt < min || dt >= GUARD / 2)
        fprintf(stderr, "woken after %.1f ms, expected at least %.1f ms\n", dt / 1e6, min / 1e6);
    CHECK(dt >= min && dt < GUARD / 2);
}

static void fill_pattern(unsigned char *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (unsigned char)(seed >> 16);
    }
}

/* ------------------------------------------------------------------------------------------
 * Reads
 * ---------------------------------------------------------------------------------------- */

GO_TEST(test_read_woken)
{
    (void)arg;
    int64_t base = base_count();
    int fds = count_fds();
    gorc_conn *a, *b;
    tcp_pair(&a, &b);
    CHECK_EQ(gorc_conn_set_read_deadline(b, gorc_now() + GUARD), 0);
    char buf[16];

    /* Cancelled while blocked. */
    gorc_ctx *ctx = cancellable();
    int64_t t0 = gorc_now();
    cancel_after(ctx, 50 * MS);
    CHECK_EQ(gorc_conn_read_ctx(b, buf, sizeof buf, ctx), -ECANCELED);
    check_woken(t0, 50 * MS);
    gorc_ctx_release(ctx);

    /* The context's deadline passes while blocked. */
    t0 = gorc_now();
    ctx = timeout_ctx(50 * MS);
    CHECK_EQ(gorc_conn_read_ctx(b, buf, sizeof buf, ctx), -ETIMEDOUT);
    check_woken(t0, 50 * MS);
    gorc_ctx_release(ctx);

    /* The connection works as before: data sent meanwhile is all there, once. */
    CHECK_EQ(gorc_conn_write_all(a, "hello", 5), 5);
    ctx = cancellable();
    CHECK_EQ(gorc_conn_read_full_ctx(b, buf, 5, ctx, NULL), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    gorc_ctx_release(ctx);

    gorc_conn_close(a);
    gorc_conn_close(b);
    wait_count(base);
    CHECK_EQ(count_fds(), fds);
}

typedef struct late_write {
    gorc_conn *c;
    int64_t delay;
    const char *data;
} late_write;

static void late_write_run(void *arg)
{
    late_write *w = arg;
    gorc_sleep(w->delay);
    CHECK_EQ(gorc_conn_write_all(w->c, w->data, strlen(w->data)), (ssize_t)strlen(w->data));
    gorc_conn_release(w->c);
    free(w);
}

static void write_after(gorc_conn *c, int64_t delay, const char *data)
{
    late_write *w = malloc(sizeof *w);
    CHECK(w != NULL);
    *w = (late_write){gorc_conn_retain(c), delay, data};
    CHECK_EQ(gorc_go(late_write_run, w), 0);
}

GO_TEST(test_read_state_after_cancel)
{
    (void)arg;
    int64_t base = base_count();
    int fds = count_fds();
    gorc_conn *a, *b;
    tcp_pair(&a, &b);
    char buf[16];

    /* A read that waits, then gets data: the context, never cancelled, changes nothing. */
    gorc_ctx *ctx = cancellable();
    write_after(a, 30 * MS, "ab");
    CHECK_EQ(gorc_conn_read_ctx(b, buf, sizeof buf, ctx), 2);
    CHECK(memcmp(buf, "ab", 2) == 0);
    gorc_ctx_release(ctx);

    /* A user deadline set before a cancelled call is still in force afterwards. */
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_conn_set_read_deadline(b, t0 + 300 * MS), 0);
    ctx = cancellable();
    cancel_after(ctx, 30 * MS);
    CHECK_EQ(gorc_conn_read_ctx(b, buf, sizeof buf, ctx), -ECANCELED);
    CHECK(gorc_now() - t0 < 250 * MS);
    gorc_ctx_release(ctx);
    ctx = cancellable();
    CHECK_EQ(gorc_conn_read_ctx(b, buf, sizeof buf, ctx), -ETIMEDOUT); /* the user's deadline */
    CHECK(gorc_now() - t0 >= 300 * MS);
    CHECK_EQ(gorc_ctx_err(ctx), 0);
    CHECK_EQ(gorc_conn_read(b, buf, sizeof buf), -ETIMEDOUT); /* expired until moved */
    gorc_ctx_release(ctx);

    /* Moving the deadline away while a context call waits does not undo a cancel. */
    CHECK_EQ(gorc_conn_set_read_deadline(b, gorc_now() + GUARD), 0);
    ctx = cancellable();
    t0 = gorc_now();
    cancel_after(ctx, 30 * MS);
    CHECK_EQ(gorc_conn_read_ctx(b, buf, sizeof buf, ctx), -ECANCELED);
    check_woken(t0, 30 * MS);
    gorc_ctx_release(ctx);

    /* The next read, plain or with a fresh context, works. */
    CHECK_EQ(gorc_conn_set_read_deadline(b, 0), 0);
    write_after(a, 20 * MS, "cd");
    CHECK_EQ(gorc_conn_read(b, buf, sizeof buf), 2);
    CHECK(memcmp(buf, "cd", 2) == 0);
    ctx = cancellable();
    write_after(a, 20 * MS, "ef");
    CHECK_EQ(gorc_conn_read_ctx(b, buf, sizeof buf, ctx), 2);
    CHECK(memcmp(buf, "ef", 2) == 0);
    gorc_ctx_release(ctx);

    /* read_full_ctx: what arrived before the cancel is reported in *got. */
    ctx = cancellable();
    CHECK_EQ(gorc_conn_write_all(a, "123", 3), 3);
    cancel_after(ctx, 50 * MS);
    size_t got = 99;
    memset(buf, 0, sizeof buf);
    CHECK_EQ(gorc_conn_read_full_ctx(b, buf, 8, ctx, &got), -ECANCELED);
    CHECK_EQ(got, 3);
    CHECK(memcmp(buf, "123", 3) == 0);
    gorc_ctx_release(ctx);
    CHECK_EQ(gorc_conn_write_all(a, "45678", 5), 5);
    ctx = cancellable();
    CHECK_EQ(gorc_conn_read_full_ctx(b, buf + 3, 5, ctx, &got), 5);
    CHECK_EQ(got, 5);
    CHECK(memcmp(buf, "12345678", 8) == 0);
    /* End of stream after part of it. */
    CHECK_EQ(gorc_conn_write_all(a, "xy", 2), 2);
    CHECK_EQ(gorc_conn_shutdown(a, SHUT_WR), 0);
    CHECK_EQ(gorc_conn_read_full_ctx(b, buf, 8, ctx, &got), GORC_EUNEXPECTEDEOF);
    CHECK_EQ(got, 2);
    CHECK_EQ(gorc_conn_read_ctx(b, buf, 8, ctx), 0);
    gorc_ctx_release(ctx);

    gorc_conn_close(a);
    gorc_conn_close(b);
    wait_count(base);
    CHECK_EQ(count_fds(), fds);
}

typedef struct closer {
    gorc_conn *c;
    int64_t delay;
} closer;

static void close_later(void *arg)
{
    closer *cl = arg;
    gorc_sleep(cl->delay);
    gorc_conn_close(cl->c);
}

GO_TEST(test_close_while_ctx_blocked)
{
    (void)arg;
    int64_t base = base_count();
    int fds = count_fds();
    gorc_conn *a, *b;
    tcp_pair(&a, &b);
    gorc_conn_set_read_deadline(b, gorc_now() + GUARD);
    gorc_ctx *ctx = cancellable();
    closer cl = {gorc_conn_retain(b), 30 * MS}; /* closes b; we keep a reference */
    CHECK_EQ(gorc_go(close_later, &cl), 0);
    char buf[4];
    CHECK_EQ(gorc_conn_read_ctx(b, buf, sizeof buf, ctx), GORC_ENETCLOSED);
    gorc_ctx_cancel(ctx);
    CHECK_EQ(gorc_conn_read_ctx(b, buf, sizeof buf, ctx), -ECANCELED); /* cancelled first */
    gorc_ctx_release(ctx);
    wait_count(base);
    gorc_conn_release(b);
    gorc_conn_close(a);
    CHECK_EQ(count_fds(), fds);
}

/* ------------------------------------------------------------------------------------------
 * Writes
 * ---------------------------------------------------------------------------------------- */

typedef struct drain {
    gorc_conn *c;
    unsigned char *buf;
    size_t cap, got;
    gorc_chan *done;
} drain;

/* Read everything until end of stream. */
static void drain_run(void *arg)
{
    drain *d = arg;
    gorc_conn_set_read_deadline(d->c, gorc_now() + 60 * GORC_SECOND);
    for (;;) {
        ssize_t r = gorc_conn_read(d->c, d->buf + d->got, d->cap - d->got);
        CHECK(r >= 0);
        if (r == 0)
            break;
        d->got += (size_t)r;
    }
    gorc_chan_send(d->done, NULL);
}

GO_TEST(test_write_woken)
{
    (void)arg;
    int64_t base = base_count();
    int fds = count_fds();
    gorc_conn *a, *b;
    tcp_pair(&a, &b);
    /* A small send buffer; the receive buffer stays as it is (a tiny one makes loopback TCP
     * crawl once the peer reads: the window stays below a segment). */
    gorc_conn_set_write_buffer(a, 4096);
    CHECK_EQ(gorc_conn_set_write_deadline(a, gorc_now() + GUARD), 0);
    size_t n = 2 << 20;
    unsigned char *big = malloc(n);
    CHECK(big != NULL);
    fill_pattern(big, n, 7);

    /* write_all_ctx: the peer never reads, so the buffers fill and the write waits. */
    gorc_ctx *ctx = cancellable();
    int64_t t0 = gorc_now();
    cancel_after(ctx, 50 * MS);
    size_t written = 0;
    CHECK_EQ(gorc_conn_write_all_ctx(a, big, n, ctx, &written), -ECANCELED);
    check_woken(t0, 50 * MS);
    CHECK(written > 0 && written < n);
    gorc_ctx_release(ctx);
    size_t sent = written;

    /* The same with the context's deadline; the socket is full, so nothing more goes. */
    t0 = gorc_now();
    ctx = timeout_ctx(50 * MS);
    CHECK_EQ(gorc_conn_write_all_ctx(a, big + sent, n - sent, ctx, &written), -ETIMEDOUT);
    check_woken(t0, 50 * MS);
    sent += written;
    gorc_ctx_release(ctx);

    /* A single write waits for room, and is woken. */
    ctx = cancellable();
    t0 = gorc_now();
    cancel_after(ctx, 50 * MS);
    CHECK_EQ(gorc_conn_write_ctx(a, big + sent, n - sent, ctx), -ECANCELED);
    check_woken(t0, 50 * MS);
    gorc_ctx_release(ctx);
    ctx = timeout_ctx(50 * MS);
    CHECK_EQ(gorc_conn_write_ctx(a, big + sent, n - sent, ctx), -ETIMEDOUT);
    gorc_ctx_release(ctx);

    /* *written told the truth: writing the rest gives the peer every byte exactly once. */
    drain d = {.c = b, .cap = n + 1};
    d.buf = malloc(d.cap);
    CHECK(d.buf != NULL);
    CHECK_EQ(gorc_chan_new(&d.done, 0, 1), 0);
    CHECK_EQ(gorc_go(drain_run, &d), 0);
    ctx = cancellable();
    CHECK_EQ(gorc_conn_write_all_ctx(a, big + sent, n - sent, ctx, &written), (ssize_t)(n - sent));
    CHECK_EQ(written, n - sent);
    CHECK_EQ(gorc_conn_write_ctx(a, NULL, 0, ctx), 0);
    gorc_ctx_release(ctx);
    CHECK_EQ(gorc_conn_shutdown(a, SHUT_WR), 0);
    CHECK_EQ(gorc_chan_recv(d.done, NULL), 0);
    CHECK_EQ(d.got, n);
    CHECK(memcmp(d.buf, big, n) == 0);

    gorc_chan_release(d.done);
    free(d.buf);
    free(big);
    gorc_conn_close(a);
    gorc_conn_close(b);
    wait_count(base);
    CHECK_EQ(count_fds(), fds);
}

/* ------------------------------------------------------------------------------------------
 * Accept and dial
 * ---------------------------------------------------------------------------------------- */

typedef struct dialer {
    char addr[GORC_ADDRSTRLEN];
    int64_t delay;
    gorc_conn *c;
    gorc_chan *done; /* a value once c is set (the goroutine count is no synchronisation) */
} dialer;

static void dial_later(void *arg)
{
    dialer *d = arg;
    gorc_sleep(d->delay);
    CHECK_EQ(gorc_tcp_dial(&d->c, d->addr, 5 * GORC_SECOND), 0);
    CHECK_EQ(gorc_chan_send(d->done, NULL), 0);
}

GO_TEST(test_accept_woken)
{
    (void)arg;
    int64_t base = base_count();
    int fds = count_fds();
    dialer d = {.delay = 30 * MS};
    CHECK_EQ(gorc_chan_new(&d.done, 0, 1), 0);
    gorc_listener *l = listen_local(d.addr);
    CHECK_EQ(gorc_listener_set_deadline(l, gorc_now() + GUARD), 0);
    gorc_conn *c = (gorc_conn *)&d; /* not NULL, to see it cleared */

    gorc_ctx *ctx = cancellable();
    int64_t t0 = gorc_now();
    cancel_after(ctx, 50 * MS);
    CHECK_EQ(gorc_listener_accept_ctx(l, &c, ctx), -ECANCELED);
    check_woken(t0, 50 * MS);
    CHECK(c == NULL);
    gorc_ctx_release(ctx);

    t0 = gorc_now();
    ctx = timeout_ctx(50 * MS);
    CHECK_EQ(gorc_listener_accept_ctx(l, &c, ctx), -ETIMEDOUT);
    check_woken(t0, 50 * MS);
    gorc_ctx_release(ctx);

    /* Still accepting: a connection that arrives while accept_ctx waits. */
    ctx = cancellable();
    CHECK_EQ(gorc_go(dial_later, &d), 0);
    CHECK_EQ(gorc_listener_accept_ctx(l, &c, ctx), 0);
    CHECK(c != NULL);
    CHECK_EQ(gorc_chan_recv(d.done, NULL), 0); /* the dialer is done: d.c is set */
    CHECK_EQ(gorc_conn_write_all(d.c, "x", 1), 1);
    char ch;
    CHECK_EQ(gorc_conn_read_ctx(c, &ch, 1, ctx), 1);
    gorc_ctx_release(ctx);
    gorc_conn_close(c);
    gorc_conn_close(d.c);
    gorc_listener_close(l);
    wait_count(base);
    gorc_chan_release(d.done);
    CHECK_EQ(count_fds(), fds);
}

/* A listener whose queue is full: connects to it hang (the SYNs are dropped). */
static int full_listener(char *addr, gorc_conn **fill, int *nfill)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    CHECK_EQ(bind(s, (struct sockaddr *)&sin, sizeof sin), 0);
    CHECK_EQ(listen(s, 0), 0);
    CHECK_EQ(getsockname(s, (struct sockaddr *)&sin, &len), 0);
    snprintf(addr, GORC_ADDRSTRLEN, "127.0.0.1:%u", ntohs(sin.sin_port));
    int rc = 0;
    *nfill = 0;
    while (*nfill < 8 && (rc = gorc_tcp_dial(&fill[*nfill], addr, 200 * MS)) == 0)
        (*nfill)++;
    CHECK_EQ(rc, -ETIMEDOUT);
    return s;
}

GO_TEST(test_dial_woken)
{
    (void)arg;
    int64_t base = base_count();
    int fds = count_fds();
    char addr[GORC_ADDRSTRLEN];
    gorc_conn *fill[8], *c = NULL;
    int nfill;
    int s = full_listener(addr, fill, &nfill);

    gorc_ctx *ctx = cancellable();
    int64_t t0 = gorc_now();
    cancel_after(ctx, 50 * MS);
    CHECK_EQ(gorc_tcp_dial_ctx(&c, addr, GUARD, ctx), -ECANCELED);
    check_woken(t0, 50 * MS);
    CHECK(c == NULL);
    gorc_ctx_release(ctx);

    /* The context's deadline bounds the dial (the timeout argument is far). */
    t0 = gorc_now();
    ctx = timeout_ctx(80 * MS);
    CHECK_EQ(gorc_tcp_dial_ctx(&c, addr, GUARD, ctx), -ETIMEDOUT);
    check_woken(t0, 80 * MS);
    gorc_ctx_release(ctx);

    /* ...and the timeout argument still does when it is the earlier. */
    t0 = gorc_now();
    ctx = timeout_ctx(GUARD);
    CHECK_EQ(gorc_tcp_dial_ctx(&c, addr, 80 * MS, ctx), -ETIMEDOUT);
    check_woken(t0, 80 * MS);
    CHECK_EQ(gorc_ctx_err(ctx), 0);
    gorc_ctx_cancel(ctx);
    gorc_ctx_release(ctx);

    for (int i = 0; i < nfill; i++)
        gorc_conn_close(fill[i]);
    close(s);

    /* A dial that succeeds, and a Unix one. */
    gorc_listener *l = listen_local(addr);
    ctx = cancellable();
    CHECK_EQ(gorc_tcp_dial_ctx(&c, addr, 0, ctx), 0);
    gorc_conn *sc;
    CHECK_EQ(gorc_listener_accept_ctx(l, &sc, ctx), 0);
    gorc_conn_close(sc);
    gorc_conn_close(c);
    gorc_listener_close(l);
    char path[64];
    snprintf(path, sizeof path, "@gorc-test-net-ctx-%d", (int)getpid());
    CHECK_EQ(gorc_unix_listen(&l, path, NULL), 0);
    CHECK_EQ(gorc_unix_dial_ctx(&c, path, GORC_SECOND, ctx), 0);
    CHECK_EQ(gorc_listener_accept_ctx(l, &sc, ctx), 0);
    CHECK_EQ(gorc_conn_write_all_ctx(c, "u", 1, ctx, NULL), 1);
    char ch;
    CHECK_EQ(gorc_conn_read_ctx(sc, &ch, 1, ctx), 1);
    gorc_conn_close(sc);
    gorc_conn_close(c);
    gorc_ctx_cancel(ctx);
    CHECK_EQ(gorc_unix_dial_ctx(&c, path, GORC_SECOND, ctx), -ECANCELED);
    CHECK(c == NULL);
    gorc_ctx_release(ctx);
    gorc_listener_close(l);

    wait_count(base);
    CHECK_EQ(count_fds(), fds);
}

/* ------------------------------------------------------------------------------------------
 * Cancelled before the call; never cancellable; bad arguments
 * ---------------------------------------------------------------------------------------- */

GO_TEST(test_cancelled_before)
{
    (void)arg;
    int64_t base = base_count();
    gorc_conn *a, *b;
    tcp_pair(&a, &b);
    char addr[GORC_ADDRSTRLEN];
    gorc_listener *l = listen_local(addr);
    gorc_conn *pending;
    CHECK_EQ(gorc_tcp_dial(&pending, addr, GORC_SECOND), 0); /* waits in the queue */
    CHECK_EQ(gorc_conn_write_all(a, "abc", 3), 3);
    int fds = count_fds();

    gorc_ctx *cancelled = cancellable(), *expired = timeout_ctx(-1);
    gorc_ctx_cancel(cancelled);
    gorc_ctx *cs[2] = {cancelled, expired};
    int errs[2] = {-ECANCELED, -ETIMEDOUT};
    for (int i = 0; i < 2; i++) {
        gorc_ctx *ctx = cs[i];
        int e = errs[i];
        char buf[8];
        size_t done = 99;
        gorc_conn *c = (gorc_conn *)buf;
        gorc_addr as[2];
        CHECK_EQ(gorc_conn_read_ctx(b, buf, sizeof buf, ctx), e); /* data is waiting */
        CHECK_EQ(gorc_conn_read_full_ctx(b, buf, 3, ctx, &done), e);
        CHECK_EQ(done, 0);
        CHECK_EQ(gorc_conn_write_ctx(a, "d", 1, ctx), e);
        done = 99;
        CHECK_EQ(gorc_conn_write_all_ctx(a, "d", 1, ctx, &done), e);
        CHECK_EQ(done, 0);
        CHECK_EQ(gorc_listener_accept_ctx(l, &c, ctx), e); /* a connection is waiting */
        CHECK(c == NULL);
        c = (gorc_conn *)buf;
        CHECK_EQ(gorc_tcp_dial_ctx(&c, addr, GORC_SECOND, ctx), e);
        CHECK(c == NULL);
        CHECK_EQ(gorc_resolve_ctx(as, 2, "127.0.0.1:80", 0, ctx), e);
        CHECK_EQ(gorc_resolve_ctx(as, 2, "slow.test:80", 0, ctx), e);
        CHECK_EQ(atomic_load(&slow_waiting), 0); /* no lookup started */
        CHECK_EQ(count_fds(), fds);              /* no socket made */
    }
    /* Nothing was touched: the data, the connection in the queue, the peer's silence. */
    char buf[8];
    CHECK_EQ(gorc_conn_read(b, buf, sizeof buf), 3);
    CHECK(memcmp(buf, "abc", 3) == 0);
    gorc_conn *c;
    CHECK_EQ(gorc_listener_accept(l, &c), 0);
    gorc_conn_close(c);
    gorc_conn_set_read_deadline(b, gorc_now() + 30 * MS);
    CHECK_EQ(gorc_conn_read(b, buf, sizeof buf), -ETIMEDOUT);

    gorc_ctx_release(cancelled);
    gorc_ctx_release(expired);
    gorc_conn_close(pending);
    gorc_listener_close(l);
    gorc_conn_close(a);
    gorc_conn_close(b);
    wait_count(base);
}

GO_TEST(test_never_cancelled_and_einval)
{
    (void)arg;
    int64_t base = base_count();
    int fds = count_fds();
    gorc_ctx *detached;
    CHECK_EQ(gorc_ctx_without_cancel(&detached, gorc_ctx_background()), 0);
    gorc_ctx *cs[2] = {gorc_ctx_background(), detached};
    for (int i = 0; i < 2; i++) {
        gorc_ctx *ctx = cs[i];
        CHECK(gorc_ctx_done(ctx) == NULL);
        char addr[GORC_ADDRSTRLEN];
        gorc_listener *l = listen_local(addr);
        gorc_conn *a, *b;
        CHECK_EQ(gorc_tcp_dial_ctx(&a, addr, GORC_SECOND, ctx), 0);
        CHECK_EQ(gorc_listener_accept_ctx(l, &b, ctx), 0);
        size_t done = 0;
        CHECK_EQ(gorc_conn_write_all_ctx(a, "abcd", 4, ctx, &done), 4);
        CHECK_EQ(done, 4);
        CHECK_EQ(gorc_conn_write_ctx(a, "e", 1, ctx), 1);
        char buf[8];
        CHECK_EQ(gorc_conn_read_full_ctx(b, buf, 5, ctx, &done), 5);
        CHECK(memcmp(buf, "abcde", 5) == 0);
        gorc_conn_set_read_deadline(b, gorc_now() + 30 * MS);
        CHECK_EQ(gorc_conn_read_ctx(b, buf, sizeof buf, ctx), -ETIMEDOUT); /* the deadline */
        gorc_addr as[4];
        CHECK_EQ(gorc_resolve_ctx(as, 4, "127.0.0.1:80", 0, ctx), 1);
        CHECK(gorc_resolve_ctx(as, 4, "localhost:80", AF_INET, ctx) >= 1);
        gorc_conn_close(a);
        gorc_conn_close(b);
        gorc_listener_close(l);
    }
    gorc_ctx_release(detached);

    /* NULL context or object. */
    gorc_ctx *bg = gorc_ctx_background();
    char buf[4];
    size_t done = 99;
    gorc_conn *c = (gorc_conn *)buf;
    gorc_addr as[1];
    CHECK_EQ(gorc_conn_read_ctx(NULL, buf, 1, bg), -EINVAL);
    CHECK_EQ(gorc_conn_read_ctx((gorc_conn *)buf, buf, 1, NULL), -EINVAL);
    CHECK_EQ(gorc_conn_read_full_ctx((gorc_conn *)buf, buf, 1, NULL, &done), -EINVAL);
    CHECK_EQ(done, 0);
    CHECK_EQ(gorc_conn_write_ctx((gorc_conn *)buf, buf, 1, NULL), -EINVAL);
    done = 99;
    CHECK_EQ(gorc_conn_write_all_ctx((gorc_conn *)buf, buf, 1, NULL, &done), -EINVAL);
    CHECK_EQ(done, 0);
    CHECK_EQ(gorc_listener_accept_ctx((gorc_listener *)buf, &c, NULL), -EINVAL);
    CHECK(c == NULL);
    c = (gorc_conn *)buf;
    CHECK_EQ(gorc_tcp_dial_ctx(&c, "127.0.0.1:1", 0, NULL), -EINVAL);
    CHECK(c == NULL);
    CHECK_EQ(gorc_unix_dial_ctx(&c, "@x", 0, NULL), -EINVAL);
    CHECK_EQ(gorc_resolve_ctx(as, 1, "127.0.0.1:80", 0, NULL), -EINVAL);
    wait_count(base);
    CHECK_EQ(count_fds(), fds);
}

/* ------------------------------------------------------------------------------------------
 * Cancellation racing completion
 * ---------------------------------------------------------------------------------------- */

typedef struct race {
    gorc_conn *w;
    gorc_ctx *ctx;
    unsigned char byte;
    int64_t spin_w, spin_c; /* ns of work before writing / cancelling */
    gorc_waitgroup *wg;
} race;

/* A few microseconds of work, so that data and cancel arrive in every order. */
static void spin(int64_t ns)
{
    int64_t end = gorc_now() + ns;
    while (gorc_now() < end)
        ;
}

static void race_write(void *arg)
{
    race *r = arg;
    spin(r->spin_w);
    CHECK_EQ(gorc_conn_write_all(r->w, &r->byte, 1), 1);
    gorc_waitgroup_done(r->wg);
}

static void race_cancel(void *arg)
{
    race *r = arg;
    spin(r->spin_c);
    gorc_ctx_cancel(r->ctx);
    gorc_waitgroup_done(r->wg);
}

GO_TEST(test_cancel_races_data)
{
    (void)arg;
    int64_t base = base_count();
    int fds = count_fds();
    gorc_conn *a, *b;
    tcp_pair(&a, &b);
    CHECK_EQ(gorc_conn_set_read_deadline(b, gorc_now() + 120 * GORC_SECOND), 0);
    gorc_waitgroup wg = {0};
    long rounds = scaled(5000);
    if (rounds < 500)
        rounds = 500;
    uint32_t seed = 12345;
    int64_t delay = 20 * 1000; /* the cancel's head start, adjusted to keep both outcomes */
    long got = 0, cancelled = 0;
    unsigned char expect = 0;
    for (long i = 0; i < rounds; i++) {
        race r = {.w = a, .ctx = cancellable(), .byte = (unsigned char)i, .wg = &wg};
        seed = seed * 1103515245u + 12345u;
        r.spin_w = (int64_t)((seed >> 8) % 2048);
        r.spin_c = (int64_t)((seed >> 4) % (uint32_t)(2 * delay + 1));
        gorc_waitgroup_add(&wg, 2);
        bool write_first = (seed >> 30) & 1; /* the one started last runs first on this P */
        CHECK_EQ(gorc_go(write_first ? race_cancel : race_write, &r), 0);
        CHECK_EQ(gorc_go(write_first ? race_write : race_cancel, &r), 0);
        unsigned char v;
        ssize_t n = gorc_conn_read_ctx(b, &v, 1, r.ctx);
        delay += n == 1 ? -delay / 32 : delay / 32 + 100;
        if (delay > 200 * 1000)
            delay = 200 * 1000; /* bounded: with one P the order hardly depends on it */
        if (n != 1) {
            CHECK_EQ(n, -ECANCELED);
            cancelled++;
            /* Not taken, so still to come: a plain read gets it (each round starts with
             * nothing pending, or every read would find data without waiting). */
            n = gorc_conn_read(b, &v, 1);
        }
        CHECK_EQ(n, 1);
        CHECK_EQ(v, expect); /* in order: none lost, none twice */
        expect++;
        got++;
        gorc_waitgroup_wait(&wg);
        gorc_ctx_release(r.ctx);
    }
    CHECK_EQ(got, rounds);
    gorc_conn_set_read_deadline(b, gorc_now() + 20 * MS);
    unsigned char v;
    CHECK_EQ(gorc_conn_read(b, &v, 1), -ETIMEDOUT);
    fprintf(stderr, "race: %ld rounds, %ld reads cancelled, cancel delay %.1f us at the end\n",
            rounds, cancelled, delay / 1e3);
    CHECK(cancelled > 0);
    /* Both outcomes happen, given a second P (with one, the cancel always runs before the
     * poller is asked about the data). */
    CHECK(cancelled < rounds || gorc_maxprocs() == 1);
    gorc_conn_close(a);
    gorc_conn_close(b);
    wait_count(base);
    CHECK_EQ(count_fds(), fds);
}

/* ------------------------------------------------------------------------------------------
 * Foreign threads
 * ---------------------------------------------------------------------------------------- */

static _Atomic int foreign_ready;

static void *foreign_cancel(void *p)
{
    gorc_foreign_attach(); /* it wakes a goroutine: deadlock detection must count it */
    atomic_store(&foreign_ready, 1);
    gorc_sleep(30 * MS); /* sleeps the thread */
    gorc_ctx_cancel(p);
    return NULL;
}

typedef struct foreign_read {
    gorc_conn *c;
    gorc_ctx *ctx;
    ssize_t result;
} foreign_read;

static void *foreign_reader(void *p)
{
    foreign_read *fr = p;
    gorc_foreign_attach();
    atomic_store(&foreign_ready, 1);
    char buf[4];
    fr->result = gorc_conn_read_ctx(fr->c, buf, sizeof buf, fr->ctx); /* blocks the thread */
    return NULL;
}

static void *join_thread(void *t)
{
    pthread_join(*(pthread_t *)t, NULL);
    return NULL;
}

GO_TEST(test_foreign_threads)
{
    (void)arg;
    int64_t base = base_count();
    int fds = count_fds();
    gorc_conn *a, *b;
    tcp_pair(&a, &b);
    gorc_conn_set_read_deadline(b, gorc_now() + GUARD);

    /* A foreign thread cancels a goroutine's read. */
    gorc_ctx *ctx = cancellable();
    pthread_t t;
    atomic_store(&foreign_ready, 0);
    CHECK_EQ(pthread_create(&t, NULL, foreign_cancel, ctx), 0);
    while (!atomic_load(&foreign_ready))
        gorc_sleep(MS / 4);
    int64_t t0 = gorc_now();
    char buf[4];
    CHECK_EQ(gorc_conn_read_ctx(b, buf, sizeof buf, ctx), -ECANCELED);
    CHECK(gorc_now() - t0 < GUARD / 2);
    gorc_blocking(join_thread, &t);
    gorc_ctx_release(ctx);

    /* A goroutine cancels a foreign thread's read. */
    foreign_read fr = {.c = b, .ctx = cancellable(), .result = 1000};
    atomic_store(&foreign_ready, 0);
    CHECK_EQ(pthread_create(&t, NULL, foreign_reader, &fr), 0);
    while (!atomic_load(&foreign_ready))
        gorc_sleep(MS / 4);
    gorc_sleep(30 * MS);
    gorc_ctx_cancel(fr.ctx);
    gorc_blocking(join_thread, &t);
    CHECK_EQ(fr.result, -ECANCELED);
    gorc_ctx_release(fr.ctx);

    /* The connection is fine. */
    CHECK_EQ(gorc_conn_write_all(a, "ok", 2), 2);
    CHECK_EQ(gorc_conn_read_full(b, buf, 2), 2);
    gorc_conn_close(a);
    gorc_conn_close(b);
    wait_count(base);
    CHECK_EQ(count_fds(), fds);
}

/* ------------------------------------------------------------------------------------------
 * Name resolution: returning early, finishing in the background
 * ---------------------------------------------------------------------------------------- */

static void release_slow_after(void *arg)
{
    gorc_sleep((int64_t)(intptr_t)arg);
    atomic_store(&slow_released, 1);
}

/* Wait (parking) until n lookups of slow.test are in progress. */
static void wait_slow(int n)
{
    int64_t end = gorc_now() + GUARD;
    while (atomic_load(&slow_waiting) != n) {
        CHECK(gorc_now() < end);
        gorc_sleep(MS / 2);
    }
}

GO_TEST(test_resolve_ctx)
{
    (void)arg;
    int64_t base = base_count();
    int fds = count_fds();
    gorc_addr as[4];
    char s[GORC_ADDRSTRLEN];

    /* Cancelled while the lookup is stuck: the call returns, the lookup carries on. */
    atomic_store(&slow_released, 0);
    gorc_ctx *ctx = cancellable();
    int64_t t0 = gorc_now();
    cancel_after(ctx, 50 * MS);
    CHECK_EQ(gorc_resolve_ctx(as, 4, "slow.test:80", AF_INET, ctx), -ECANCELED);
    check_woken(t0, 50 * MS);
    gorc_ctx_release(ctx);
    CHECK_EQ(atomic_load(&slow_waiting), 1);
    wait_count(base + 1); /* only the lookup's goroutine is left */

    /* The context's deadline, while the first lookup is still stuck. */
    t0 = gorc_now();
    ctx = timeout_ctx(50 * MS);
    CHECK_EQ(gorc_resolve_ctx(as, 4, "slow.test:80", AF_INET, ctx), -ETIMEDOUT);
    check_woken(t0, 50 * MS);
    gorc_ctx_release(ctx);
    wait_slow(2);

    /* A dial gives up during its lookup just the same. */
    ctx = cancellable();
    cancel_after(ctx, 30 * MS);
    gorc_conn *c = NULL;
    CHECK_EQ(gorc_tcp_dial_ctx(&c, "slow.test:80", GUARD, ctx), -ECANCELED);
    CHECK(c == NULL);
    gorc_ctx_release(ctx);
    wait_slow(3);

    /* Released, the lookups finish, free what they found, and their goroutines end. */
    atomic_store(&slow_released, 1);
    wait_slow(0);
    wait_count(base);

    /* A lookup that is slow but not cancelled gives its result. */
    atomic_store(&slow_released, 0);
    ctx = cancellable();
    CHECK_EQ(gorc_go(release_slow_after, (void *)(intptr_t)(30 * MS)), 0);
    CHECK_EQ(gorc_resolve_ctx(as, 4, "slow.test:80", AF_INET, ctx), 1);
    CHECK(gorc_addr_string(&as[0], s, sizeof s) > 0);
    CHECK(strcmp(s, "127.0.0.1:80") == 0);
    /* ...and a dial through it connects. */
    char addr[GORC_ADDRSTRLEN], byname[GORC_ADDRSTRLEN];
    gorc_listener *l = listen_local(addr);
    snprintf(byname, sizeof byname, "slow.test:%s", strrchr(addr, ':') + 1);
    CHECK_EQ(gorc_tcp_dial_ctx(&c, byname, GORC_SECOND, ctx), 0);
    gorc_conn *sc;
    CHECK_EQ(gorc_listener_accept_ctx(l, &sc, ctx), 0);
    gorc_conn_close(sc);
    gorc_conn_close(c);
    gorc_listener_close(l);
    /* Errors of the lookup itself come through. */
    CHECK_EQ(gorc_resolve_ctx(as, 4, "missing.test", 0, ctx), GORC_ENOHOST);
    gorc_ctx_release(ctx);

    wait_count(base);
    CHECK_EQ(count_fds(), fds);
}

/* UDP and sendfile: a datagram read woken by a cancel and by the context's deadline, a
 * write to a cancelled context that sends nothing, and a sendfile to a peer that does not read,
 * cut by a cancel with the bytes sent reported. */
GO_TEST(test_udp_and_sendfile_ctx)
{
    (void)arg;
    int64_t base = base_count();
    int fds = count_fds();
    gorc_conn *u;
    CHECK_EQ(gorc_udp_listen(&u, "127.0.0.1:0"), 0);
    char addr[GORC_ADDRSTRLEN];
    CHECK(gorc_conn_local_addr(u, addr, sizeof addr) > 0);
    char buf[64];
    gorc_addr from;
    gorc_ctx *ctx = cancellable();
    int64_t t0 = gorc_now();
    cancel_after(ctx, 30 * MS);
    CHECK_EQ(gorc_conn_read_from_ctx(u, buf, sizeof buf, &from, ctx), -ECANCELED);
    check_woken(t0, 30 * MS);
    gorc_ctx_release(ctx);
    ctx = timeout_ctx(20 * MS);
    CHECK_EQ(gorc_conn_read_from_ctx(u, buf, sizeof buf, NULL, ctx), -ETIMEDOUT);
    /* Cancelled before the call: nothing sent, nothing received. */
    gorc_addr to;
    CHECK_EQ(gorc_resolve(&to, 1, addr, 0), 1);
    CHECK_EQ(gorc_conn_write_to_ctx(u, "x", 1, &to, ctx), -ETIMEDOUT);
    gorc_ctx_release(ctx);
    ctx = cancellable();
    CHECK_EQ(gorc_conn_write_to_ctx(u, "hi", 2, &to, ctx), 2);
    CHECK_EQ(gorc_conn_read_from_ctx(u, buf, sizeof buf, &from, ctx), 2);
    CHECK(memcmp(buf, "hi", 2) == 0);
    CHECK_EQ(gorc_conn_write_to_ctx(u, "x", 1, &to, NULL), -EINVAL);
    gorc_ctx_release(ctx);
    gorc_conn_close(u);

    /* sendfile of 8 MiB to a peer that never reads. */
    char path[] = "/tmp/gorc-sendfile-XXXXXX";
    int f = mkstemp(path);
    CHECK(f >= 0);
    unlink(path);
    size_t n = 8 << 20;
    CHECK_EQ(ftruncate(f, (off_t)n), 0);
    gorc_conn *a, *b;
    tcp_pair(&a, &b);
    gorc_conn_set_write_buffer(a, 4096);
    ctx = cancellable();
    cancel_after(ctx, 30 * MS);
    size_t sent = 0;
    t0 = gorc_now();
    CHECK_EQ(gorc_conn_sendfile_ctx(a, f, 0, n, ctx, &sent), -ECANCELED);
    check_woken(t0, 30 * MS);
    CHECK(sent < n);
    CHECK_EQ(gorc_conn_sendfile_ctx(a, f, 0, n, NULL, &sent), -EINVAL);
    gorc_ctx_release(ctx);
    close(f);
    gorc_conn_close(a);
    gorc_conn_close(b);
    wait_count(base);
    CHECK_EQ(count_fds(), fds);
}

int main(void)
{
    real_getaddrinfo = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    if (real_getaddrinfo == NULL) {
        fprintf(stderr, "dlsym(getaddrinfo) failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_woken),
        cmocka_unit_test(test_read_state_after_cancel),
        cmocka_unit_test(test_close_while_ctx_blocked),
        cmocka_unit_test(test_write_woken),
        cmocka_unit_test(test_accept_woken),
        cmocka_unit_test(test_dial_woken),
        cmocka_unit_test(test_cancelled_before),
        cmocka_unit_test(test_never_cancelled_and_einval),
        cmocka_unit_test(test_cancel_races_data),
        cmocka_unit_test(test_foreign_threads),
        cmocka_unit_test(test_resolve_ctx),
        cmocka_unit_test(test_udp_and_sendfile_ctx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
