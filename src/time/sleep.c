/*
 * sleep.c - the public timers: one-shot timers, AfterFunc timers, time.After and tickers.
 *
 * This is the layer Go keeps in package time (time/sleep.go, time/tick.go): user-facing
 * objects built from two runtime pieces, a runtime timer (runtime/timer.c, the per-P heaps)
 * and a capacity-1 channel. A timer's function runs on the thread that runs the heap, so it
 * never blocks: it try-sends the fire time (a slow receiver misses ticks, as in Go) or starts
 * a goroutine for an AfterFunc timer.
 *
 * Every object has its own lock `mu`, held by Stop, Reset and free only: concurrent calls on
 * one timer are allowed, as on Go's Timer, and a reset is a delete plus an add that must not
 * interleave with another.
 */
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

struct gorc_timer {
    gorc__timer t;
    gorc__lock mu;
    gorc_chan *c;
    gorc_fn fn;
    void *fnarg;
};

struct gorc_ticker {
    gorc__timer t;
    gorc__lock mu;
    gorc_chan *c;
};

static void send_time(gorc__timer *t, int64_t now)
{
    gorc_chan *c = ((gorc_timer *)t->arg)->c;
    gorc_chan_trysend(c, &now);
}

static void run_func(gorc__timer *t, int64_t now)
{
    (void)now;
    gorc_timer *pt = t->arg;
    if (gorc_go(pt->fn, pt->fnarg) != 0)
        gorc__fatal("out of memory starting a timer function's goroutine");
}

/* A zeroed object of size bytes, after starting the runtime, with a capacity-1 channel of
 * int64_t stored at chan_off: what timers, tickers and time.After are made of. */
static void *alloc_with_chan(size_t size, size_t chan_off, int *rc)
{
    *rc = gorc__ensure_init();
    if (*rc != 0)
        return NULL;
    char *obj = calloc(1, size);
    if (obj == NULL) {
        *rc = -ENOMEM;
        return NULL;
    }
    *rc = gorc_chan_new((gorc_chan **)(void *)(obj + chan_off), sizeof(int64_t), 1);
    if (*rc != 0) {
        free(obj);
        return NULL;
    }
    return obj;
}

int gorc_timer_new(gorc_timer **out, int64_t d)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    int rc;
    gorc_timer *t = alloc_with_chan(sizeof *t, offsetof(gorc_timer, c), &rc);
    if (t == NULL)
        return rc;
    t->t.f = send_time;
    t->t.arg = t;
    gorc__timer_add(&t->t, gorc__deadline(d));
    *out = t;
    return 0;
}

int gorc_after_func(gorc_timer **out, int64_t d, gorc_fn fn, void *arg)
{
    if (out == NULL || fn == NULL)
        return -EINVAL;
    *out = NULL;
    int err = gorc__ensure_init();
    if (err != 0)
        return err;
    gorc_timer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    t->fn = fn;
    t->fnarg = arg;
    t->t.f = run_func;
    t->t.arg = t;
    gorc__timer_add(&t->t, gorc__deadline(d));
    *out = t;
    return 0;
}

gorc_chan *gorc_timer_chan(gorc_timer *t)
{
    return t ? t->c : NULL;
}

/* Stop, reset and free of timers and tickers, serialised by the object's mu. */

static bool stop_locked(gorc__lock *mu, gorc__timer *t)
{
    gorc__lock_acquire(mu);
    bool was = gorc__timer_del(t);
    gorc__lock_release(mu);
    return was;
}

/* Disarm (waiting out a run in progress), set the period if period > 0, fire d from now. */
static bool rearm_locked(gorc__lock *mu, gorc__timer *t, int64_t period, int64_t d)
{
    gorc__lock_acquire(mu);
    bool was = gorc__timer_del_sync(t);
    if (period > 0)
        t->period = period;
    gorc__timer_add(t, gorc__deadline(d));
    gorc__lock_release(mu);
    return was;
}

/* Disarm for good, drop the channel and free obj, which contains t and mu. */
static void free_locked(gorc__lock *mu, gorc__timer *t, gorc_chan *c, void *obj)
{
    gorc__lock_acquire(mu);
    gorc__timer_del_sync(t);
    gorc__lock_release(mu);
    gorc_chan_release(c);
    free(obj);
}

bool gorc_timer_stop(gorc_timer *t)
{
    return t ? stop_locked(&t->mu, &t->t) : false;
}

bool gorc_timer_reset(gorc_timer *t, int64_t d)
{
    return t ? rearm_locked(&t->mu, &t->t, 0, d) : false;
}

void gorc_timer_free(gorc_timer *t)
{
    if (t)
        free_locked(&t->mu, &t->t, t->c, t);
}

/* time.After: a self-owned timer that frees itself after firing. */
typedef struct after_timer {
    gorc__timer t;
    gorc_chan *c;
} after_timer;

static void after_fire(gorc__timer *t, int64_t now)
{
    after_timer *a = t->arg;
    gorc_chan_trysend(a->c, &now);
    gorc_chan_release(a->c);
    free(a);
}

int gorc_after(gorc_chan **out, int64_t d)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    int rc;
    after_timer *a = alloc_with_chan(sizeof *a, offsetof(after_timer, c), &rc);
    if (a == NULL)
        return rc;
    gorc_chan_retain(a->c);
    a->t.selfowned = true;
    a->t.f = after_fire;
    a->t.arg = a;
    *out = a->c;
    gorc__timer_add(&a->t, gorc__deadline(d));
    return 0;
}

static void tick(gorc__timer *t, int64_t now)
{
    gorc_chan_trysend(((gorc_ticker *)t->arg)->c, &now);
}

int gorc_ticker_new(gorc_ticker **out, int64_t period)
{
    if (out == NULL || period <= 0)
        return -EINVAL;
    *out = NULL;
    int rc;
    gorc_ticker *t = alloc_with_chan(sizeof *t, offsetof(gorc_ticker, c), &rc);
    if (t == NULL)
        return rc;
    t->t.f = tick;
    t->t.arg = t;
    t->t.period = period;
    gorc__timer_add(&t->t, gorc__deadline(period));
    *out = t;
    return 0;
}

gorc_chan *gorc_ticker_chan(gorc_ticker *t)
{
    return t ? t->c : NULL;
}

void gorc_ticker_stop(gorc_ticker *t)
{
    if (t)
        stop_locked(&t->mu, &t->t);
}

int gorc_ticker_reset(gorc_ticker *t, int64_t period)
{
    if (t == NULL || period <= 0)
        return -EINVAL;
    rearm_locked(&t->mu, &t->t, period, period);
    return 0;
}

void gorc_ticker_free(gorc_ticker *t)
{
    if (t)
        free_locked(&t->mu, &t->t, t->c, t);
}
