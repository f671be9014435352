/*
 * signal.c - Go's os/signal: signals delivered as channel values, and NotifyContext.
 *
 * A signal handler may do almost nothing: it cannot take a lock, allocate or touch a channel.
 * So the handler sets the signal's bit in `pending` (a lock-free atomic) and writes a byte to
 * a non-blocking pipe; one goroutine, started by the first gorc_signal_notify, waits on the
 * pipe's read end through the poller, takes the whole pending mask, and try-sends each signal
 * to the channels registered for it. A full pipe only means a wake-up is already on its way.
 * Bits coalesce, so a signal repeated before the goroutine runs is delivered once (Go's
 * runtime queue does the same).
 *
 * Locking: `mu` (a gorc_mutex: registration may park) guards `regs`, `installed` and `saved`.
 * The handler reads only `pending` and `wfd`, both set before any handler is installed.
 * Lifetime: the goroutine and the pipe live until the process exits, as Go's signal loop.
 */
#include "gorc_net.h"
#include "gorc_signal.h"
#include "runtime/chan.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct reg {
    gorc_chan *c;
    uint64_t mask; /* bit s: signal s */
    struct reg *next;
} reg;

static gorc_mutex mu;
static reg *regs;
static uint64_t installed; /* signals whose handler is ours */
static struct sigaction saved[64];
static _Atomic uint64_t pending;
static int wfd = -1;
static gorc_conn *rconn;

/* The signals a program may ask for (see gorc_signal.h for why not the others). */
static bool allowed(int s)
{
    switch (s) {
    case SIGHUP:
    case SIGINT:
    case SIGQUIT:
    case SIGTERM:
    case SIGUSR1:
    case SIGUSR2:
    case SIGPIPE:
    case SIGWINCH:
    case SIGCHLD:
    case SIGALRM:
    case SIGTSTP:
    case SIGTTIN:
    case SIGTTOU:
    case SIGCONT:
    case SIGURG:
        return true;
    default:
        return false;
    }
}

static void on_signal(int s)
{
    int saved_errno = errno;
    atomic_fetch_or_explicit(&pending, (uint64_t)1 << s, memory_order_release);
    char b = 0;
    ssize_t r = write(wfd, &b, 1); /* EAGAIN: a wake-up is pending anyway */
    (void)r;
    errno = saved_errno;
}

static void deliver(uint64_t m)
{
    gorc_mutex_lock(&mu);
    for (int s = 1; s < 64; s++) {
        if (!(m & ((uint64_t)1 << s)))
            continue;
        for (reg *r = regs; r; r = r->next)
            if (r->mask & ((uint64_t)1 << s))
                gorc_chan_trysend(r->c, &s); /* full: missed, as in Go */
    }
    gorc_mutex_unlock(&mu);
}

static void loop(void *arg)
{
    (void)arg;
    char buf[64];
    for (;;) {
        ssize_t n = gorc_conn_read(rconn, buf, sizeof buf);
        if (n < 0 && n != -EINTR && n != -EAGAIN)
            gorc__fatal("signal: reading the wake-up pipe: %s", gorc_strerror((int)n));
        uint64_t m = atomic_exchange_explicit(&pending, 0, memory_order_acquire);
        if (m)
            deliver(m);
    }
}

/* Under mu: the pipe and the goroutine, once. */
static int start(void)
{
    if (rconn)
        return 0;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
        return -errno;
    int rc = gorc_conn_from_fd(&rconn, fds[0]); /* owns fds[0] even on failure */
    if (rc != 0) {
        rconn = NULL;
        close(fds[1]);
        return rc;
    }
    wfd = fds[1];
    rc = gorc__go_from(loop, NULL, (uintptr_t)__builtin_return_address(0), true);
    if (rc != 0) {
        gorc_conn_close(rconn);
        gorc_conn_release(rconn);
        rconn = NULL;
        close(wfd);
        wfd = -1;
    }
    return rc;
}

/* Under mu: our handler on exactly the signals some registration wants. */
static int sync_handlers(void)
{
    uint64_t want = 0;
    for (reg *r = regs; r; r = r->next)
        want |= r->mask;
    for (int s = 1; s < 64; s++) {
        uint64_t bit = (uint64_t)1 << s;
        if ((want & bit) && !(installed & bit)) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_signal;
            sa.sa_flags = SA_RESTART;
            sigfillset(&sa.sa_mask);
            if (sigaction(s, &sa, &saved[s]) != 0)
                return -errno;
            installed |= bit;
        } else if (!(want & bit) && (installed & bit)) {
            sigaction(s, &saved[s], NULL);
            installed &= ~bit;
        }
    }
    return 0;
}

int gorc_signal_notify(gorc_chan *c, const int *sigs, size_t n)
{
    if (c == NULL || sigs == NULL || n == 0)
        return -EINVAL;
    uint64_t mask = 0;
    for (size_t i = 0; i < n; i++) {
        if (!allowed(sigs[i]))
            return -EINVAL;
        mask |= (uint64_t)1 << sigs[i];
    }
    /* A channel of int: any other element size would be written out of bounds. */
    if (c->elemsize != sizeof(int))
        return -EINVAL;
    gorc_mutex_lock(&mu);
    int rc = start();
    reg *r = NULL;
    if (rc == 0) {
        for (r = regs; r && r->c != c; r = r->next)
            ;
        if (r) {
            r->mask |= mask;
        } else if ((r = malloc(sizeof *r)) != NULL) {
            *r = (reg){gorc_chan_retain(c), mask, regs};
            regs = r;
        } else {
            rc = -ENOMEM;
        }
    }
    if (rc == 0)
        rc = sync_handlers();
    gorc_mutex_unlock(&mu);
    return rc;
}

/* cppcheck-suppress constParameter ; the API takes the channel as gorc_signal_notify does */
int gorc_signal_stop(gorc_chan *c)
{
    if (c == NULL)
        return -EINVAL;
    gorc_mutex_lock(&mu);
    reg **pp = &regs;
    while (*pp && (*pp)->c != c)
        pp = &(*pp)->next;
    reg *r = *pp;
    if (r) {
        *pp = r->next;
        sync_handlers();
    }
    gorc_mutex_unlock(&mu);
    if (r == NULL)
        return -ENOENT;
    gorc_chan_release(r->c);
    free(r);
    return 0;
}

/* ---- NotifyContext: a goroutine waits for a signal or the end of the context ---- */

typedef struct waiter {
    gorc_ctx *ctx;
    gorc_chan *c;
} waiter;

static void wait_signal(void *arg)
{
    waiter w = *(waiter *)arg;
    free(arg);
    int sig;
    gorc_case cs[2] = {{.chan = w.c, .dir = GORC_RECV, .elem = &sig},
                       {.chan = gorc_ctx_done(w.ctx), .dir = GORC_RECV}};
    if (gorc_select(cs, 2) == 0)
        gorc_ctx_cancel_cause(w.ctx, -EINTR);
    gorc_signal_stop(w.c);
    gorc_chan_release(w.c);
    gorc_ctx_release(w.ctx);
}

int gorc_signal_notify_ctx(gorc_ctx **out, gorc_ctx *parent, const int *sigs, size_t n)
{
    if (out == NULL)
        return -EINVAL;
    gorc_ctx *ctx;
    int rc = gorc_ctx_with_cancel(&ctx, parent);
    if (rc != 0)
        return rc;
    waiter *w = malloc(sizeof *w);
    gorc_chan *c = NULL;
    rc = w ? gorc_chan_new(&c, sizeof(int), 1) : -ENOMEM;
    if (rc == 0 && (rc = gorc_signal_notify(c, sigs, n)) == 0) {
        *w = (waiter){gorc_ctx_retain(ctx), c};
        rc = gorc_go(wait_signal, w);
        if (rc != 0) {
            gorc_signal_stop(c);
            gorc_ctx_release(ctx);
        }
    }
    if (rc != 0) {
        free(w);
        gorc_chan_release(c);
        gorc_ctx_cancel(ctx);
        gorc_ctx_release(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}
