/*
 * wait.c - the blocking calls that take a context.
 *
 * Channel operations, select and sleep need nothing new: a context's done channel is one more
 * case of a select, and select already guarantees that exactly one case happens, so a value
 * is either delivered or not taken. A semaphore acquire is a runtime wait of its own; it gets
 * the context's cancellation source (runtime/sync.c wakes the waiter through a hook, the way
 * a timeout does).
 */
#include "context/context.h"
#include "runtime/sync.h"

#include <stdlib.h>
#include <string.h>

/* Case arrays up to this size live on the stack. */
#define SMALL 16

int gorc_chan_send_ctx(gorc_chan *c, const void *elem, gorc_ctx *ctx)
{
    if (ctx == NULL)
        return -EINVAL;
    gorc_chan *done = gorc_ctx_done(ctx);
    if (done == NULL)
        return gorc_chan_send(c, elem);
    gorc_case cs[2] = {{.chan = c, .dir = GORC_SEND, .elem = (void *)elem},
                       {.chan = done, .dir = GORC_RECV}};
    int r = gorc_select(cs, 2);
    if (r == 0)
        return cs[0].closed ? -EPIPE : 0;
    return r == 1 ? gorc_ctx_err(ctx) : r;
}

int gorc_chan_recv_ctx(gorc_chan *c, void *elem, gorc_ctx *ctx)
{
    if (ctx == NULL)
        return -EINVAL;
    gorc_chan *done = gorc_ctx_done(ctx);
    if (done == NULL)
        return gorc_chan_recv(c, elem);
    gorc_case cs[2] = {{.chan = c, .dir = GORC_RECV, .elem = elem},
                       {.chan = done, .dir = GORC_RECV}};
    int r = gorc_select(cs, 2);
    if (r == 0)
        return cs[0].closed ? -EPIPE : 0;
    return r == 1 ? gorc_ctx_err(ctx) : r;
}

int gorc_select_ctx(gorc_case *cases, size_t n, gorc_ctx *ctx)
{
    if (ctx == NULL || (cases == NULL && n > 0))
        return -EINVAL;
    gorc_chan *done = gorc_ctx_done(ctx);
    if (done == NULL)
        return gorc_select(cases, n);
    gorc_case small[SMALL], *all = small;
    if (n + 1 > SMALL) {
        all = malloc((n + 1) * sizeof *all);
        if (all == NULL)
            return -ENOMEM;
    }
    if (n > 0)
        memcpy(all, cases, n * sizeof *all);
    all[n] = (gorc_case){.chan = done, .dir = GORC_RECV};
    int r = gorc_select(all, n + 1);
    if (r >= 0 && (size_t)r < n)
        cases[r].closed = all[r].closed;
    if (all != small)
        free(all);
    return r >= 0 && (size_t)r == n ? gorc_ctx_err(ctx) : r;
}

int gorc_sleep_ctx(int64_t ns, gorc_ctx *ctx)
{
    if (ctx == NULL)
        return -EINVAL;
    gorc_chan *done = gorc_ctx_done(ctx);
    if (done == NULL) {
        gorc_sleep(ns);
        return 0;
    }
    gorc_case cs[1] = {{.chan = done, .dir = GORC_RECV}};
    int r = gorc_select_timeout(cs, 1, ns);
    return r == -ETIMEDOUT ? 0 : gorc_ctx_err(ctx);
}

int gorc_sema_acquire_ctx(gorc_sema *s, int64_t n, gorc_ctx *ctx)
{
    if (ctx == NULL || n <= 0)
        return -EINVAL;
    return gorc__sema_acquire_cancel(s, n, gorc__ctx_source(ctx));
}

/* ------------------------------------------------------------------------------------------
 * Waits the runtime has no cancellable form of (a mutex lock, a wait-group wait): a helper
 * goroutine makes the plain call and reports through a channel, and the caller selects on
 * that channel and the context. Whoever comes second loses a compare-and-swap on `state` and
 * cleans up: a helper that got the mutex for a caller who left unlocks it, so a cancelled lock
 * never leaves the mutex held. The fast paths (trylock, a counter already at zero) start no
 * goroutine.
 * ---------------------------------------------------------------------------------------- */

enum { PENDING, GRANTED, GAVE_UP };

typedef struct proxy {
    _Atomic int refs; /* the caller and the helper */
    _Atomic int state;
    gorc_chan *done; /* closed by the helper once the wait is over */
    gorc_mutex *m;
    gorc_waitgroup *wg;
} proxy;

static void proxy_put(proxy *p)
{
    if (atomic_fetch_sub(&p->refs, 1) == 1) {
        gorc_chan_release(p->done);
        free(p);
    }
}

static void proxy_run(void *arg)
{
    proxy *p = arg;
    if (p->m)
        gorc_mutex_lock(p->m);
    else
        gorc_waitgroup_wait(p->wg);
    int pending = PENDING;
    if (!atomic_compare_exchange_strong(&p->state, &pending, GRANTED) && p->m)
        gorc_mutex_unlock(p->m); /* the caller gave up: the lock is not theirs */
    gorc_chan_close(p->done);
    proxy_put(p);
}

static int proxy_wait(gorc_mutex *m, gorc_waitgroup *wg, gorc_ctx *ctx)
{
    proxy *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    int rc = gorc_chan_new(&p->done, 0, 0);
    if (rc != 0) {
        free(p);
        return rc;
    }
    atomic_init(&p->refs, 2);
    p->m = m;
    p->wg = wg;
    if ((rc = gorc_go(proxy_run, p)) != 0) {
        gorc_chan_release(p->done);
        free(p);
        return rc;
    }
    gorc_case cs[2] = {{.chan = p->done, .dir = GORC_RECV},
                       {.chan = gorc_ctx_done(ctx), .dir = GORC_RECV}};
    if (gorc_select(cs, 2) == 0) {
        rc = 0; /* the helper is done: the lock is ours, or the counter reached zero */
    } else {
        int pending = PENDING;
        rc = atomic_compare_exchange_strong(&p->state, &pending, GAVE_UP) ? gorc_ctx_err(ctx)
                                                                          : 0; /* granted */
    }
    proxy_put(p);
    return rc;
}

int gorc_mutex_lock_ctx(gorc_mutex *m, gorc_ctx *ctx)
{
    if (m == NULL || ctx == NULL)
        return -EINVAL;
    if (gorc_mutex_trylock(m))
        return 0;
    if (gorc_ctx_done(ctx) == NULL) {
        gorc_mutex_lock(m);
        return 0;
    }
    int err = gorc_ctx_err(ctx);
    return err != 0 ? err : proxy_wait(m, NULL, ctx);
}

int gorc_waitgroup_wait_ctx(gorc_waitgroup *wg, gorc_ctx *ctx)
{
    if (wg == NULL || ctx == NULL)
        return -EINVAL;
    if (gorc_ctx_done(ctx) == NULL) {
        gorc_waitgroup_wait(wg);
        return 0;
    }
    int err = gorc_ctx_err(ctx);
    return err != 0 ? err : proxy_wait(NULL, wg, ctx);
}
