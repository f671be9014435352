/*
 * cancel.c - cancellation sources (see cancel.h for the model and the locking rules).
 *
 * One cancel runs as a loop over a work list rather than a recursion: a source's hooks may
 * queue child sources, each child's hooks may queue its own, and a chain 10,000 deep is then
 * 10,000 iterations on one stack frame. Each source is cancelled under its own lock only, and
 * its done channel is closed after that lock is released.
 */
#include "runtime/cancel.h"

void gorc__cancel_init(gorc__cancel *c, gorc_chan *done)
{
    c->lock = (gorc__lock){0};
    atomic_store_explicit(&c->err, 0, memory_order_relaxed);
    c->cause = 0;
    c->hooks = NULL;
    c->worknext = NULL;
    c->done = done;
    c->unpin = NULL;
}

/* Under c->lock: detach every hook and run its fn. */
static void run_hooks(gorc__cancel *c, gorc__cancel_later *later)
{
    gorc__cancel_hook *h = c->hooks;
    c->hooks = NULL;
    while (h) {
        gorc__cancel_hook *next = h->next;
        h->linked = false;
        h->next = h->prev = NULL;
        h->fn(h, c, later);
        h = next;
    }
}

/* Cancel one source; false if it was already cancelled. */
static bool fire_one(gorc__cancel *c, int err, int cause, gorc__cancel_later *later)
{
    gorc__lock_acquire(&c->lock);
    if (atomic_load_explicit(&c->err, memory_order_relaxed) != 0) {
        gorc__lock_release(&c->lock);
        return false;
    }
    c->cause = cause;
    atomic_store_explicit(&c->err, err, memory_order_release);
    run_hooks(c, later);
    gorc__lock_release(&c->lock);
    if (c->done)
        gorc_chan_close(c->done);
    return true;
}

/* Do what hooks queued, and what that queues in turn, until nothing is left. */
static void drain(gorc__cancel_later *later, int err, int cause)
{
    for (;;) {
        gorc__cancel_hook *run = later->run;
        later->run = NULL;
        while (run) {
            gorc__cancel_hook *next = run->next; /* after() may free run */
            run->after(run);
            run = next;
        }
        gorc__cancel *c = later->children;
        if (c == NULL)
            return;
        later->children = c->worknext;
        c->worknext = NULL;
        fire_one(c, err, cause, later);
        if (c->unpin)
            c->unpin(c);
    }
}

bool gorc__cancel_fire(gorc__cancel *c, int err, int cause)
{
    if (cause == 0)
        cause = err;
    gorc__cancel_later later = {NULL, NULL};
    bool first = fire_one(c, err, cause, &later);
    drain(&later, err, cause);
    return first;
}

bool gorc__cancel_hook_add(gorc__cancel *c, gorc__cancel_hook *h)
{
    gorc__lock_acquire(&c->lock);
    int err = atomic_load_explicit(&c->err, memory_order_relaxed);
    if (err != 0) {
        int cause = c->cause;
        gorc__cancel_later later = {NULL, NULL};
        h->linked = false;
        h->next = h->prev = NULL;
        h->fn(h, c, &later);
        gorc__lock_release(&c->lock);
        drain(&later, err, cause);
        return false;
    }
    h->prev = NULL;
    h->next = c->hooks;
    if (c->hooks)
        c->hooks->prev = h;
    c->hooks = h;
    h->linked = true;
    gorc__lock_release(&c->lock);
    return true;
}

bool gorc__cancel_unhook(gorc__cancel *c, gorc__cancel_hook *h)
{
    gorc__lock_acquire(&c->lock);
    bool was = h->linked;
    if (was) {
        if (h->prev)
            h->prev->next = h->next;
        else
            c->hooks = h->next;
        if (h->next)
            h->next->prev = h->prev;
        h->next = h->prev = NULL;
        h->linked = false;
    }
    gorc__lock_release(&c->lock);
    return was;
}

static void wake_fn(gorc__cancel_hook *h, gorc__cancel *src, gorc__cancel_later *later)
{
    (void)src;
    (void)later;
    gorc__g *g = ((gorc__cancel_wake *)(void *)h)->g;
    uint32_t zero = 0;
    if (atomic_compare_exchange_strong(&g->selectdone, &zero, 1)) {
        g->param = NULL;
        gorc__ready(g);
    }
}

void gorc__cancel_wake_init(gorc__cancel_wake *w, gorc__g *g)
{
    w->h = (gorc__cancel_hook){.fn = wake_fn};
    w->g = g;
}
