/*
 * context.c - Go's context package: cancellation trees, deadlines, values, after-functions.
 *
 * Every context is one gorc_ctx record, whatever its kind:
 *   BACKGROUND  the static root;
 *   CANCEL      made by with_cancel / with_deadline: owns a cancellation source (`cx`,
 *               runtime/cancel.h) with an eagerly made done channel;
 *   VALUE       a key and a value; its cancellation is its parent's;
 *   DETACHED    made by without_cancel: its parent's values, nobody's cancellation.
 * `canceller` points at the source that decides a context's fate: its own `cx`, the nearest
 * CANCEL ancestor's, or NULL (never cancelled). Err, Cause and Done read it; no walk up the
 * chain is needed for them. Only Value walks the chain, as in Go.
 *
 * The tree. A CANCEL context registers a hook (`child`) with its canceller's parent source.
 * When that source is cancelled the hook, running under the source's lock, pins the child
 * (takes a reference unless the child is already being freed) and queues its source; the
 * canceller then cancels the queued children one after another (runtime/cancel.c), so depth
 * costs no stack. A child cancelled by itself unhooks from its parent, so a long-lived parent
 * does not accumulate dead children.
 *
 * Lifetimes. A context holds a reference to its parent; its registration with the parent's
 * source is weak (the pin above bridges the race with a concurrent last release). A deadline
 * is an AfterFunc timer whose goroutine does the cancel (timer functions may not close
 * channels: runtime/timer.c); the pending timer holds a reference, dropped when the timer is
 * stopped by a cancel or when its goroutine has cancelled. The last release frees a chain of
 * contexts iteratively, for the same reason the cancel is a loop.
 *
 * Locking: each source's lock guards its hooks (cancel.h). `refs` is atomic. Everything else
 * in a record is written before the record is published (the constructor's return) and only
 * read afterwards, except `timer`, which is set before the record is published too.
 */
#include "context/context.h"

#include <stdlib.h>

enum { BACKGROUND, CANCEL, VALUE, DETACHED };

struct gorc_ctx {
    _Atomic int64_t refs;
    int kind;
    gorc_ctx *parent;        /* strong reference; NULL for the background */
    gorc__cancel *canceller; /* the source deciding this context's fate, or NULL */
    int64_t deadline;        /* 0: none (inherited from the parent unless earlier) */
    const void *key;         /* VALUE */
    void *value;
    /* CANCEL only: */
    gorc__cancel cx;
    gorc__cancel_hook child;     /* registration with parent_cx */
    gorc__cancel *parent_cx;     /* the source `child` is registered with, or NULL */
    _Atomic(gorc_timer *) timer; /* deadline timer, or NULL (set once, maybe after a cancel) */
    int deadline_cause;
};

static gorc_ctx background = {.refs = 1, .kind = BACKGROUND};

gorc_ctx *gorc_ctx_background(void)
{
    return &background;
}

gorc_ctx *gorc_ctx_retain(gorc_ctx *c)
{
    if (c && c->kind != BACKGROUND)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

/* A reference unless the count already reached zero (the context is being freed). */
static bool try_retain(gorc_ctx *c)
{
    int64_t r = atomic_load_explicit(&c->refs, memory_order_relaxed);
    while (r > 0)
        if (atomic_compare_exchange_weak_explicit(&c->refs, &r, r + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

/* Everything but the parent reference; returns the parent, whose reference the caller drops. */
static gorc_ctx *destroy(gorc_ctx *c)
{
    if (c->kind == CANCEL) {
        if (c->parent_cx)
            gorc__cancel_unhook(c->parent_cx, &c->child);
        /* No reference is left for the timer, so it was stopped or has fired. */
        gorc_timer_free(atomic_load_explicit(&c->timer, memory_order_acquire));
        gorc_chan_release(c->cx.done);
    }
    gorc_ctx *p = c->parent;
    free(c);
    return p;
}

void gorc_ctx_release(gorc_ctx *c)
{
    while (c && c->kind != BACKGROUND &&
           atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        c = destroy(c);
}

static gorc_ctx *ctx_of_cx(gorc__cancel *cx)
{
    return (gorc_ctx *)(void *)((char *)cx - offsetof(gorc_ctx, cx));
}

/* After a context's cancel, by whatever route: its deadline timer is of no use any more. */
static void cancelled(gorc_ctx *c)
{
    gorc_timer *t = atomic_load_explicit(&c->timer, memory_order_acquire);
    if (t && gorc_timer_stop(t))
        gorc_ctx_release(c); /* the stopped timer's reference */
}

/* Cancel c by itself (not through its parent): also leave the parent's list. */
static void fire_self(gorc_ctx *c, int err, int cause)
{
    if (gorc__cancel_fire(&c->cx, err, cause) && c->parent_cx)
        gorc__cancel_unhook(c->parent_cx, &c->child);
}

static void unpin(gorc__cancel *cx)
{
    gorc_ctx *c = ctx_of_cx(cx);
    cancelled(c);
    gorc_ctx_release(c);
}

/* The parent's source is being cancelled (its lock held): queue this child unless it is
 * being freed, in which case nobody can observe it any more. */
static void child_fn(gorc__cancel_hook *h, gorc__cancel *src, gorc__cancel_later *later)
{
    (void)src;
    gorc_ctx *c = (gorc_ctx *)(void *)((char *)h - offsetof(gorc_ctx, child));
    if (!try_retain(c))
        return;
    c->cx.worknext = later->children;
    later->children = &c->cx;
}

static gorc_ctx *alloc(gorc_ctx *parent, int kind)
{
    gorc_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    atomic_init(&c->refs, 1);
    c->kind = kind;
    c->parent = gorc_ctx_retain(parent);
    c->canceller = parent->canceller;
    c->deadline = parent->deadline;
    return c;
}

/* A CANCEL context under parent, registered with parent's source. */
static int new_cancel(gorc_ctx **out, gorc_ctx *parent)
{
    if (out == NULL || parent == NULL)
        return -EINVAL;
    gorc_ctx *c = alloc(parent, CANCEL);
    if (c == NULL)
        return -ENOMEM;
    gorc_chan *done;
    int rc = gorc_chan_new(&done, 0, 0);
    if (rc != 0) {
        c->kind = VALUE; /* nothing of CANCEL's to undo */
        gorc_ctx_release(c);
        return rc;
    }
    gorc__cancel_init(&c->cx, done);
    c->cx.unpin = unpin;
    c->parent_cx = parent->canceller;
    c->canceller = &c->cx;
    c->child.fn = child_fn;
    if (c->parent_cx)
        gorc__cancel_hook_add(c->parent_cx, &c->child); /* cancels c now if parent is */
    *out = c;
    return 0;
}

int gorc_ctx_with_cancel(gorc_ctx **out, gorc_ctx *parent)
{
    return new_cancel(out, parent);
}

static void deadline_fire(void *arg)
{
    gorc_ctx *c = arg;
    fire_self(c, -ETIMEDOUT, c->deadline_cause);
    gorc_ctx_release(c); /* the timer's reference */
}

int gorc_ctx_with_deadline(gorc_ctx **out, gorc_ctx *parent, int64_t deadline, int cause)
{
    if (cause > 0)
        return -EINVAL;
    int rc = new_cancel(out, parent);
    if (rc != 0)
        return rc;
    gorc_ctx *c = *out;
    if (c->deadline != 0 && c->deadline <= deadline)
        return 0; /* the parent's deadline comes first: it decides (Go does the same) */
    c->deadline = deadline;
    c->deadline_cause = cause;
    int64_t d = deadline - gorc_now();
    if (d <= 0) {
        fire_self(c, -ETIMEDOUT, cause);
        return 0;
    }
    gorc_ctx_retain(c); /* for the timer */
    gorc_timer *t;
    rc = gorc_after_func(&t, d, deadline_fire, c);
    if (rc == 0) {
        atomic_store_explicit(&c->timer, t, memory_order_release);
    } else {
        gorc_ctx_release(c); /* the timer's */
        gorc_ctx_cancel(c);
        gorc_ctx_release(c);
        *out = NULL;
    }
    return rc;
}

int gorc_ctx_with_timeout(gorc_ctx **out, gorc_ctx *parent, int64_t timeout, int cause)
{
    int64_t now = gorc_now();
    int64_t deadline = timeout > INT64_MAX - now ? INT64_MAX : now + timeout;
    return gorc_ctx_with_deadline(out, parent, deadline, cause);
}

int gorc_ctx_with_value(gorc_ctx **out, gorc_ctx *parent, const void *key, void *value)
{
    if (out == NULL || parent == NULL || key == NULL)
        return -EINVAL;
    gorc_ctx *c = alloc(parent, VALUE);
    if (c == NULL)
        return -ENOMEM;
    c->key = key;
    c->value = value;
    *out = c;
    return 0;
}

int gorc_ctx_without_cancel(gorc_ctx **out, gorc_ctx *parent)
{
    if (out == NULL || parent == NULL)
        return -EINVAL;
    gorc_ctx *c = alloc(parent, DETACHED);
    if (c == NULL)
        return -ENOMEM;
    c->canceller = NULL;
    c->deadline = 0;
    *out = c;
    return 0;
}

int gorc_ctx_cancel_cause(gorc_ctx *c, int cause)
{
    if (c == NULL || c->kind != CANCEL || cause > 0)
        return -EINVAL;
    fire_self(c, -ECANCELED, cause);
    cancelled(c);
    return 0;
}

int gorc_ctx_cancel(gorc_ctx *c)
{
    return gorc_ctx_cancel_cause(c, 0);
}

gorc_chan *gorc_ctx_done(gorc_ctx *c)
{
    return c && c->canceller ? c->canceller->done : NULL;
}

int gorc_ctx_err(gorc_ctx *c)
{
    return c && c->canceller ? gorc__cancel_err(c->canceller) : 0;
}

int gorc_ctx_cause(gorc_ctx *c)
{
    if (gorc_ctx_err(c) == 0)
        return 0;
    /* The acquire load of err above orders this read after the cancel's write. */
    return c->canceller->cause;
}

bool gorc_ctx_deadline(gorc_ctx *c, int64_t *deadline)
{
    if (c == NULL || c->deadline == 0)
        return false;
    if (deadline)
        *deadline = c->deadline;
    return true;
}

void *gorc_ctx_value(gorc_ctx *c, const void *key)
{
    for (; c; c = c->parent)
        if (c->kind == VALUE && c->key == key)
            return c->value;
    return NULL;
}

gorc__cancel *gorc__ctx_source(gorc_ctx *c)
{
    return c->canceller;
}

/* ------------------------------------------------------------------------------------------
 * After-functions. refs: one for the registration (dropped by whoever ends it: a stop that
 * unhooks, or the run) and one for the handle the caller holds, if any.
 * ---------------------------------------------------------------------------------------- */

struct gorc_ctx_after {
    gorc__cancel_hook h;
    gorc__cancel *src;
    gorc_fn fn;
    void *arg;
    uintptr_t pc; /* gorc_ctx_after_func's caller: where the goroutine is "spawned" */
    _Atomic int refs;
    _Atomic bool stopped; /* for a context that is never cancelled: stop was called */
};

static void after_put(gorc_ctx_after *a)
{
    if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) == 1)
        free(a);
}

static void after_fn(gorc__cancel_hook *h, gorc__cancel *src, gorc__cancel_later *later)
{
    (void)src;
    h->next = later->run;
    later->run = h;
}

static void after_run(gorc__cancel_hook *h)
{
    gorc_ctx_after *a = (gorc_ctx_after *)(void *)h;
    if (gorc__go_from(a->fn, a->arg, a->pc, false) != 0)
        gorc__fatal("out of memory starting a context after-function");
    after_put(a);
}

int gorc_ctx_after_func(gorc_ctx_after **out, gorc_ctx *c, gorc_fn fn, void *arg)
{
    if (c == NULL || fn == NULL)
        return -EINVAL;
    gorc_ctx_after *a = calloc(1, sizeof *a);
    if (a == NULL)
        return -ENOMEM;
    a->h.fn = after_fn;
    a->h.after = after_run;
    a->src = c->canceller;
    a->fn = fn;
    a->arg = arg;
    a->pc = (uintptr_t)__builtin_return_address(0);
    /* A context that is never cancelled holds no registration. */
    atomic_init(&a->refs, (out ? 1 : 0) + (a->src ? 1 : 0));
    if (out)
        *out = a;
    if (a->src)
        gorc__cancel_hook_add(a->src, &a->h); /* runs it now if c is cancelled already */
    else if (out == NULL)
        free(a); /* nothing will ever use it */
    return 0;
}

bool gorc_ctx_after_stop(gorc_ctx_after *a)
{
    if (a == NULL)
        return false;
    if (a->src == NULL) {
        /* Never to be run: the first stop is the one that stopped it. */
        return !atomic_exchange(&a->stopped, true);
    }
    if (!gorc__cancel_unhook(a->src, &a->h))
        return false;
    after_put(a); /* the registration's reference: it will never run */
    return true;
}

void gorc_ctx_after_free(gorc_ctx_after *a)
{
    if (a == NULL)
        return;
    gorc_ctx_after_stop(a);
    after_put(a);
}
