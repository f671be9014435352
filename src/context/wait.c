/*
 * wait.c - the blocking calls that take a context.
 *
 * Channel operations and select go through a select that watches the context's cancellation
 * source (runtime/select.c): the context is one more "case" in the poll order when it is
 * already cancelled, and a hook on the source wakes the parked select the way a timeout does,
 * so exactly one case happens and a value is either delivered or not taken. Sleep selects on
 * the context's done channel with a timeout. A semaphore acquire is a runtime wait of its own; it
 * gets the context's cancellation source (runtime/sync.c wakes the waiter through a hook, the way
 * a timeout does).
 */
#include "context/context.h"
#include "runtime/sync.h"

#include <stdlib.h>
#include <string.h>

/* A select that also watches ctx: the case performed, or the context's error. The context
 * costs a hook on its cancellation source, not a lock and a queued waiter on its done
 * channel. Only when no case has a channel does the done channel stand in. */
static int select_watching(gorc_case *cases, size_t n, gorc_ctx *ctx)
{
    gorc__cancel *cx = gorc__ctx_source(ctx);
    if (cx == NULL)
        return gorc_select(cases, n);
    bool any = false;
    for (size_t i = 0; i < n && !any; i++)
        any = cases[i].chan != NULL;
    if (!any) {
        gorc_case done = {.chan = gorc_ctx_done(ctx), .dir = GORC_RECV};
        int r = gorc_select(&done, 1);
        return r < 0 ? r : gorc_ctx_err(ctx);
    }
    int r = gorc__select_cancel(cases, n, cx);
    return r == -ECANCELED ? gorc_ctx_err(ctx) : r;
}

/* One channel operation as a one-case select that also watches ctx. A NULL channel blocks
 * until ctx is cancelled (a nil channel in Go never proceeds); a context that can never be
 * cancelled makes it the plain call. */
static int chan_op_ctx(gorc_chan *c, int dir, void *elem, gorc_ctx *ctx)
{
    if (ctx == NULL)
        return -EINVAL;
    if (c == NULL)
        return select_watching(NULL, 0, ctx);
    if (gorc__ctx_source(ctx) == NULL)
        return dir == GORC_SEND ? gorc_chan_send(c, elem) : gorc_chan_recv(c, elem);
    gorc_case cs[1] = {{.chan = c, .dir = dir, .elem = elem}};
    int r = select_watching(cs, 1, ctx);
    return r == 0 ? (cs[0].closed ? -EPIPE : 0) : r;
}

int gorc_chan_send_ctx(gorc_chan *c, const void *elem, gorc_ctx *ctx)
{
    return chan_op_ctx(c, GORC_SEND, (void *)elem, ctx);
}

int gorc_chan_recv_ctx(gorc_chan *c, void *elem, gorc_ctx *ctx)
{
    return chan_op_ctx(c, GORC_RECV, elem, ctx);
}

int gorc_select_ctx(gorc_case *cases, size_t n, gorc_ctx *ctx)
{
    if (ctx == NULL || (cases == NULL && n > 0))
        return -EINVAL;
    return select_watching(cases, n, ctx);
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
