/*
 * group.c - task groups: Go's errgroup (golang.org/x/sync/errgroup) in C.
 *
 * A group is a cancellable context, a wait group counting its running tasks, the first error
 * (set once, by compare-and-swap), and optionally a semaphore holding the concurrency limit.
 * The first failing task cancels the group's context with its error as the cause, so tasks
 * that watch the context stop early; Wait cancels it too, as errgroup does, releasing
 * whatever is still tied to it.
 */
#include "context/context.h"

#include <stdlib.h>

struct gorc_group {
    gorc_ctx *ctx;
    gorc_waitgroup wg;
    gorc_sema sem;   /* permits = free slots, when limited */
    int limit;       /* < 0: none; written only while no task runs (set_limit checks) */
    _Atomic int err; /* the first task error, 0 until then */
    _Atomic int64_t running;
};

typedef struct task {
    gorc_group *g;
    gorc_group_fn fn;
    void *arg;
} task;

int gorc_group_new(gorc_group **out, gorc_ctx *parent)
{
    if (out == NULL)
        return -EINVAL;
    gorc_group *g = calloc(1, sizeof *g);
    if (g == NULL)
        return -ENOMEM;
    int rc = gorc_ctx_with_cancel(&g->ctx, parent ? parent : gorc_ctx_background());
    if (rc != 0) {
        free(g);
        return rc;
    }
    g->limit = -1;
    *out = g;
    return 0;
}

gorc_ctx *gorc_group_ctx(gorc_group *g)
{
    return g ? g->ctx : NULL;
}

int gorc_group_set_limit(gorc_group *g, int n)
{
    if (g == NULL || n == 0)
        return -EINVAL;
    if (atomic_load(&g->running) != 0)
        return -EBUSY;
    g->limit = n < 0 ? -1 : n;
    if (n > 0)
        gorc_sema_init(&g->sem, n);
    return 0;
}

static void fail(gorc_group *g, int err)
{
    int zero = 0;
    if (atomic_compare_exchange_strong(&g->err, &zero, err))
        gorc_ctx_cancel_cause(g->ctx, err);
}

static void run(void *p)
{
    task t = *(task *)p;
    free(p);
    gorc_group *g = t.g;
    int err = t.fn(g->ctx, t.arg);
    if (err != 0)
        fail(g, err);
    if (g->limit > 0)
        gorc_sema_release(&g->sem, 1);
    atomic_fetch_sub(&g->running, 1);
    gorc_waitgroup_done(&g->wg);
}

/* Start a task that already holds a slot. */
static int start(gorc_group *g, gorc_group_fn fn, void *arg, uintptr_t pc)
{
    task *t = malloc(sizeof *t);
    int rc = t ? 0 : -ENOMEM;
    if (rc == 0) {
        *t = (task){g, fn, arg};
        atomic_fetch_add(&g->running, 1);
        gorc_waitgroup_add(&g->wg, 1);
        rc = gorc__go_from(run, t, pc, false);
        if (rc != 0) {
            free(t);
            atomic_fetch_sub(&g->running, 1);
            gorc_waitgroup_done(&g->wg);
        }
    }
    if (rc != 0) {
        if (g->limit > 0)
            gorc_sema_release(&g->sem, 1);
        fail(g, rc);
    }
    return rc;
}

int gorc_group_go(gorc_group *g, gorc_group_fn fn, void *arg)
{
    if (g == NULL || fn == NULL)
        return -EINVAL;
    if (g->limit > 0)
        gorc_sema_acquire(&g->sem, 1);
    return start(g, fn, arg, (uintptr_t)__builtin_return_address(0));
}

int gorc_group_try_go(gorc_group *g, gorc_group_fn fn, void *arg)
{
    if (g == NULL || fn == NULL)
        return -EINVAL;
    if (g->limit > 0 && !gorc_sema_tryacquire(&g->sem, 1))
        return -EAGAIN;
    return start(g, fn, arg, (uintptr_t)__builtin_return_address(0));
}

int gorc_group_wait(gorc_group *g)
{
    if (g == NULL)
        return -EINVAL;
    gorc_waitgroup_wait(&g->wg);
    int err = atomic_load(&g->err);
    gorc_ctx_cancel_cause(g->ctx, err);
    return err;
}

void gorc_group_free(gorc_group *g)
{
    if (g == NULL)
        return;
    gorc_group_wait(g);
    gorc_ctx_release(g->ctx);
    free(g);
}
