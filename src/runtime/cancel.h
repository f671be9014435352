/*
 * cancel.h - cancellation sources: the runtime's half of Go's context package.
 *
 * A gorc__cancel is something that is cancelled once, with an error code and a cause, and
 * tells everyone registered with it. Contexts (src/context/) are built from it; so are the
 * runtime's own cancellable waits (a semaphore acquire with a context), which is why it lives
 * in the runtime and not in the context layer: the runtime cannot call up into that layer.
 *
 * Registration is a hook: an intrusive node the registrant owns (often on its stack). When the
 * source is cancelled every hook's function runs exactly once, with the source's lock held, so
 * that gorc__cancel_unhook can promise the hook is not running and will not run once it
 * returns. Holding a lock, a hook must be short and must not park, take a lock that
 * goroutines park under, or take another source's lock. What it cannot do there - cancel a
 * child source, start a goroutine - it hands to the canceller through `later`, which the
 * canceller processes after releasing the lock. Child sources are processed iteratively, so a
 * chain of 10,000 contexts costs no stack.
 *
 * Locking: `lock` guards `hooks`, `err` writes and `cause`. `err` is also read without the lock
 * (an acquire load) by the fast "is it cancelled?" checks. Lock order: never two sources'
 * locks at once.
 */
#ifndef GORC_CANCEL_H
#define GORC_CANCEL_H

#include "runtime/runtime.h"

typedef struct gorc__cancel gorc__cancel;
typedef struct gorc__cancel_hook gorc__cancel_hook;

/* Work a hook asks the canceller to do once the source's lock is released. */
typedef struct gorc__cancel_later {
    gorc__cancel *children; /* sources to cancel too (linked by worknext) */
    gorc__cancel_hook *run; /* hooks whose `after` to call (linked by next) */
} gorc__cancel_later;

struct gorc__cancel_hook {
    gorc__cancel_hook *next, *prev; /* in the source's list, guarded by its lock */
    /* Runs once under the source's lock, when it is cancelled. */
    void (*fn)(gorc__cancel_hook *h, gorc__cancel *src, gorc__cancel_later *later);
    /* Runs without any lock, if fn queued the hook on later->run. */
    void (*after)(gorc__cancel_hook *h);
    bool linked; /* in a source's list (guarded by that source's lock) */
};

struct gorc__cancel {
    gorc__lock lock;
    _Atomic int err; /* 0 until cancelled, then the error (-ECANCELED, -ETIMEDOUT, ...) */
    int cause;       /* the cause given with the cancel (the error if none) */
    gorc__cancel_hook *hooks;
    gorc__cancel *worknext; /* in a canceller's work list (owned by that canceller) */
    gorc_chan *done;        /* closed on cancel; NULL for none */
    /* For child sources queued by a hook: called after the child has been cancelled, to drop
     * whatever reference the hook took to keep it alive. NULL: nothing to drop. */
    void (*unpin)(gorc__cancel *c);
};

/* Make c ready: not cancelled, no hooks, done may be NULL. */
void gorc__cancel_init(gorc__cancel *c, gorc_chan *done);
/* Cancel c with err (negative) and cause (0: err), then every child queued by its hooks.
 * Returns false if c was cancelled already (nothing changes then). Callable from any goroutine
 * or thread, but not from a timer function (closing done takes a channel lock). */
bool gorc__cancel_fire(gorc__cancel *c, int err, int cause);
/* The error c was cancelled with, or 0. */
static inline int gorc__cancel_err(gorc__cancel *c)
{
    return atomic_load_explicit(&c->err, memory_order_acquire);
}
/* Register h. If c is already cancelled, h->fn runs now (under c's lock, as it would have) and
 * its later-work is done before this returns; the result is then false. */
bool gorc__cancel_hook_add(gorc__cancel *c, gorc__cancel_hook *h);
/* Unregister h: once this returns h->fn is not running and never will. Returns true if h was
 * still registered (so fn never ran). */
bool gorc__cancel_unhook(gorc__cancel *c, gorc__cancel_hook *h);

/* A hook for a goroutine parked with g->selectdone == 0: on cancel it claims g (flips
 * selectdone to 1) and readies it, as a timeout does. g->param is set to NULL. Arm it only
 * after g has switched out (from the park's after-action), like a timer. */
typedef struct gorc__cancel_wake {
    gorc__cancel_hook h;
    gorc__g *g;
} gorc__cancel_wake;
void gorc__cancel_wake_init(gorc__cancel_wake *w, gorc__g *g);

/* gorc_select that also watches cx (runtime/select.c): the index of the case performed, or
 * -ECANCELED when cx was chosen (then no case was performed). At least one case must have a
 * channel; errors as gorc_select. */
int gorc__select_cancel(gorc_case *cases, size_t n, gorc__cancel *cx);

#endif
