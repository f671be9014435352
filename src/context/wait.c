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
