/*
 * netpoll.c - poll descriptors: goroutines waiting for a descriptor to become ready.
 *
 * This is Go's pollDesc, and the reasoning is Go's. Every descriptor is registered with the
 * kernel once, edge-triggered, for both directions, when it is created; from then on readiness
 * is a notification to remember, not a state to ask about. Each direction has one atomic word:
 *
 *   NIL    nothing pending, nobody waiting
 *   READY  readiness arrived that no reader has consumed yet
 *   WAIT   a goroutine is about to park (it set WAIT before switching out)
 *   G      that goroutine, parked
 *
 * The poller and the waiting goroutine race on that word with compare-and-swap only: the poller
 * turns NIL or WAIT into READY and takes a G out to wake it; the goroutine turns READY into NIL
 * (consume and retry the system call) or NIL into WAIT, then parks. gorc__park runs its unlock
 * callback after the goroutine is off its stack, and that callback publishes the G (WAIT -> G).
 * If readiness, a deadline or a close got in between, the word is no longer WAIT, the publish
 * fails, and the callback readies the goroutine itself - legal since it is switched out. So a
 * wake-up is never lost and never delivered to a goroutine still on its way down.
 *
 * Deadlines are a timer per direction; the timer's function marks the direction expired and
 * wakes the waiter. A timer that fires late, after the deadline was moved or cleared, finds the
 * current deadline still in the future (or none) and does nothing - the deadline itself serves
 * as the sequence number. Closing (evict) marks the descriptor closing, which every check sees,
 * and wakes both directions. Nothing is ever waited for here that evict cannot interrupt.
 *
 * An interruption (gorc__pd_interrupt) is a third way to wake a direction: a flag beside the
 * deadline that fails the direction's checks with -ECANCELED until it is lowered again. It is
 * how a cancelled context stops a blocked network call (net/fd.c). It is kept apart from the
 * deadline so that the deadline the user set is never overwritten, never needs restoring, and
 * may be moved meanwhile without undoing the interruption.
 *
 * Descriptors come from a cache and are never freed: an event for a descriptor that was closed
 * and recycled may still be in flight in another thread's epoll_wait results. Events carry
 * (table index, recycle count), and a stale count is ignored.
 *
 * The waiter count (gorc__netpoll_waiters) covers a goroutine from just before it parks on I/O
 * until it runs again, including the time it spends in a poller's result list: deadlock
 * detection must never see zero while a wake-up is in flight.
 */
#include "runtime/netpoll.h"
#include "sim/sim.h"

#include <stdlib.h>

#define PD_CHUNK     128
#define PD_MAXCHUNKS (1u << 15) /* 4M descriptors */

static _Atomic(gorc__pd *) chunks[PD_MAXCHUNKS];
static uint32_t nchunks;
static gorc__lock cache_lock;
static gorc__pd *cache;
static _Atomic int64_t waiters;

int64_t gorc__netpoll_waiters(void)
{
    return atomic_load(&waiters);
}

/* ------------------------------------------------------------------------------------------
 * The descriptor cache
 * ---------------------------------------------------------------------------------------- */

static void rd_fire(gorc__timer *t, int64_t now);
static void wd_fire(gorc__timer *t, int64_t now);

/* Under cache_lock. */
static bool grow_cache(void)
{
    if (nchunks == PD_MAXCHUNKS)
        return false;
    gorc__pd *c = calloc(PD_CHUNK, sizeof *c);
    if (c == NULL)
        return false;
    for (uint32_t i = 0; i < PD_CHUNK; i++) {
        gorc__pd *pd = &c[i];
        pd->idx = nchunks * PD_CHUNK + i;
        pd->rt.f = rd_fire;
        pd->rt.arg = pd;
        pd->wt.f = wd_fire;
        pd->wt.arg = pd;
        pd->next = i + 1 < PD_CHUNK ? &c[i + 1] : cache;
    }
    cache = c;
    atomic_store_explicit(&chunks[nchunks], c, memory_order_release);
    nchunks++;
    return true;
}

gorc__pd *gorc__pd_lookup(uint32_t idx, uint32_t seq)
{
    if (idx / PD_CHUNK >= PD_MAXCHUNKS)
        return NULL;
    gorc__pd *c = atomic_load_explicit(&chunks[idx / PD_CHUNK], memory_order_acquire);
    if (c == NULL)
        return NULL;
    gorc__pd *pd = &c[idx % PD_CHUNK];
    return atomic_load_explicit(&pd->seq, memory_order_relaxed) == seq ? pd : NULL;
}

static gorc__pd *pd_alloc(void)
{
    gorc__lock_acquire(&cache_lock);
    if (cache == NULL && !grow_cache()) {
        gorc__lock_release(&cache_lock);
        return NULL;
    }
    gorc__pd *pd = cache;
    cache = pd->next;
    gorc__lock_release(&cache_lock);
    return pd;
}

static void pd_free(gorc__pd *pd)
{
    gorc__lock_acquire(&cache_lock);
    pd->next = cache;
    cache = pd;
    gorc__lock_release(&cache_lock);
}

int gorc__pd_open(gorc__pd **out, int fd)
{
    gorc_maxprocs(); /* the runtime (and its poller) must exist */
    gorc__pd *pd = pd_alloc();
    if (pd == NULL)
        return -ENOMEM;
    gorc__lock_acquire(&pd->lock);
    pd->fd = fd;
    pd->closing = false;
    pd->rintr = pd->wintr = false;
    pd->rd = pd->wd = 0;
    atomic_store(&pd->rg, GORC__PD_NIL);
    atomic_store(&pd->wg, GORC__PD_NIL);
    atomic_store(&pd->info, 0);
    atomic_store(&pd->unusual, 0);
    pd->sim = NULL;
    pd->simvirt = false;
    gorc__lock_release(&pd->lock);
    if (gorc__sim_on() && gorc__sim_io_adopt(pd)) {
        *out = pd;
        return 0;
    }
    int rc = gorc__netpoll_open(fd, pd);
    if (rc != 0) {
        atomic_fetch_add(&pd->seq, 1);
        pd_free(pd);
        return rc;
    }
    *out = pd;
    return 0;
}

int gorc__pd_open_virtual(gorc__pd **out, int fd)
{
    gorc__pd *pd = pd_alloc();
    if (pd == NULL)
        return -ENOMEM;
    gorc__lock_acquire(&pd->lock);
    pd->fd = fd;
    pd->closing = false;
    pd->rintr = pd->wintr = false;
    pd->rd = pd->wd = 0;
    atomic_store(&pd->rg, GORC__PD_NIL);
    atomic_store(&pd->wg, GORC__PD_NIL);
    atomic_store(&pd->info, 0);
    atomic_store(&pd->unusual, 0);
    pd->sim = NULL;
    pd->simvirt = true;
    gorc__lock_release(&pd->lock);
    *out = pd;
    return 0;
}

void gorc__pd_close(gorc__pd *pd)
{
    uintptr_t r = atomic_load(&pd->rg), w = atomic_load(&pd->wg);
    if (r > GORC__PD_READY || w > GORC__PD_READY)
        gorc__fatal("runtime: blocked write on closing polldesc");
    if (pd->sim)
        gorc__sim_io_forget(pd);
    else if (!pd->simvirt)
        gorc__netpoll_close(pd->fd);
    /* The timers were stopped by evict; wait out a run of their function in progress. */
    gorc__timer_del_sync(&pd->rt);
    gorc__timer_del_sync(&pd->wt);
    atomic_fetch_add(&pd->seq, 1);
    pd->fd = -1;
    pd_free(pd);
}

/* ------------------------------------------------------------------------------------------
 * Blocking and unblocking (Go's netpollblock / netpollunblock)
 * ---------------------------------------------------------------------------------------- */

static _Atomic uintptr_t *gpp_of(gorc__pd *pd, int mode)
{
    return mode == 'r' ? &pd->rg : &pd->wg;
}

/* Take the waiter of one direction out (or record readiness when ioready). Returns the G to
 * wake, or NULL. */
static gorc__g *unblock(gorc__pd *pd, int mode, bool ioready)
{
    _Atomic uintptr_t *gpp = gpp_of(pd, mode);
    uintptr_t old = atomic_load_explicit(gpp, memory_order_acquire);
    for (;;) {
        if (old == GORC__PD_READY)
            return NULL;
        if (old == GORC__PD_NIL && !ioready)
            return NULL;
        uintptr_t nv = ioready ? GORC__PD_READY : GORC__PD_NIL;
        if (atomic_compare_exchange_weak_explicit(gpp, &old, nv, memory_order_acq_rel,
                                                  memory_order_acquire))
            return old == GORC__PD_WAIT ? NULL : (gorc__g *)old;
    }
}

typedef struct commit {
    _Atomic uintptr_t *gpp;
    gorc__g *g;
    gorc__pd *pd;  /* for a bounded wait: the timer unblocks it */
    int mode;      /* the direction the timer unblocks */
    int64_t until; /* bounded wait: when to give up, else 0 */
} commit;

static void until_fire(gorc__timer *t, int64_t now)
{
    (void)now;
    gorc__g *g = t->arg;
    commit *c = g->param; /* still valid: the waiter cancels this timer before returning */
    gorc__g *w = unblock(c->pd, c->mode, false);
    if (w)
        gorc__ready(w);
}

/* Runs after the goroutine switched out: publish it as the waiter, unless the word moved on. */
static void commit_park(void *arg)
{
    commit *c = arg;
    _Atomic uintptr_t *gpp = c->gpp;
    gorc__g *g = c->g;
    if (c->until) {
        g->param = c;
        gorc__sleept_arm(g, c->until, until_fire);
    }
    /* From here on c may be gone: once published, g can be woken and return. */
    uintptr_t exp = GORC__PD_WAIT;
    if (!atomic_compare_exchange_strong_explicit(gpp, &exp, (uintptr_t)g, memory_order_acq_rel,
                                                 memory_order_acquire))
        gorc__ready(g);
}

/* Park until readiness, a deadline or a close. True if readiness was consumed. */
static bool block(gorc__pd *pd, int mode, int64_t until)
{
    if (gorc__sim_on())
        gorc__sim_point();
    _Atomic uintptr_t *gpp = gpp_of(pd, mode);
    for (;;) {
        uintptr_t v = GORC__PD_READY;
        if (atomic_compare_exchange_strong(gpp, &v, GORC__PD_NIL))
            return true;
        if (v == GORC__PD_NIL && atomic_compare_exchange_strong(gpp, &v, GORC__PD_WAIT))
            break;
        if (v != GORC__PD_READY && v != GORC__PD_NIL)
            gorc__fatal("runtime: double wait on a poll descriptor");
    }
    /* Re-check after WAIT is visible: a close or deadline before it would have found NIL. */
    if (gorc__pd_check(pd, mode) == 0) {
        commit c = {.gpp = gpp, .g = gorc__getg(), .pd = pd, .mode = mode, .until = until};
        if (gorc__sim_on())
            gorc__sim_io_wait(c.g, pd);
        atomic_fetch_add_explicit(&waiters, 1, memory_order_relaxed);
        gorc__park(GORC__W_IO, commit_park, &c);
        atomic_fetch_sub_explicit(&waiters, 1, memory_order_relaxed);
        if (until)
            gorc__sleept_cancel(c.g);
    }
    uintptr_t old = atomic_exchange(gpp, GORC__PD_NIL);
    if (old > GORC__PD_WAIT)
        gorc__fatal("runtime: corrupted poll descriptor");
    return old == GORC__PD_READY;
}

int gorc__pd_wait(gorc__pd *pd, int mode)
{
    for (;;) {
        int err = gorc__pd_check(pd, mode);
        if (err)
            return err;
        if (block(pd, mode, 0))
            return 0;
        /* Woken without readiness: by a close or deadline (checked above), or a deadline
         * that was moved away again before we ran. */
    }
}

int gorc__pd_wait_until(gorc__pd *pd, int mode, int64_t until)
{
    int err = gorc__pd_check(pd, mode);
    if (err)
        return err;
    if (until > gorc__nanotime())
        block(pd, mode, until);
    return gorc__pd_check(pd, mode);
}

void gorc__netpoll_ready(gorc__pd *pd, int mode, gorc__glist *l)
{
    gorc__g *gs[2] = {NULL, NULL};
    if (mode == 'r' || mode == 'r' + 'w')
        gs[0] = unblock(pd, 'r', true);
    if (mode == 'w' || mode == 'r' + 'w')
        gs[1] = unblock(pd, 'w', true);
    for (int i = 0; i < 2; i++) {
        gorc__g *g = gs[i];
        if (g == NULL)
            continue;
        if (g->foreign) { /* a thread outside the runtime: not for a run queue */
            gorc__ready(g);
            continue;
        }
        g->schedlink = NULL;
        if (l->tail)
            l->tail->schedlink = g;
        else
            l->head = g;
        l->tail = g;
        l->n++;
    }
}

/* ------------------------------------------------------------------------------------------
 * Deadlines and closing
 * ---------------------------------------------------------------------------------------- */

/* Under pd->lock. */
static void publish_info(gorc__pd *pd)
{
    uint32_t info = 0;
    if (pd->closing)
        info |= GORC__PD_CLOSING;
    if (pd->rd < 0)
        info |= GORC__PD_RD_EXPIRED;
    if (pd->wd < 0)
        info |= GORC__PD_WD_EXPIRED;
    if (pd->rintr)
        info |= GORC__PD_RD_INTR;
    if (pd->wintr)
        info |= GORC__PD_WD_INTR;
    atomic_store_explicit(&pd->info, info, memory_order_release);
}

static void deadline_fire(gorc__pd *pd, int mode, int64_t now)
{
    gorc__lock_acquire(&pd->lock);
    int64_t *d = mode == 'r' ? &pd->rd : &pd->wd;
    if (pd->closing || *d <= 0 || *d > now) {
        gorc__lock_release(&pd->lock); /* a late fire for a deadline since moved */
        return;
    }
    *d = -1;
    publish_info(pd);
    gorc__g *g = unblock(pd, mode, false);
    gorc__lock_release(&pd->lock);
    if (g)
        gorc__ready(g);
}

static void rd_fire(gorc__timer *t, int64_t now)
{
    deadline_fire(t->arg, 'r', now);
}

static void wd_fire(gorc__timer *t, int64_t now)
{
    deadline_fire(t->arg, 'w', now);
}

/* Under pd->lock. */
static void rearm(gorc__timer *t, int64_t d)
{
    gorc__timer_del(t);
    if (d > 0)
        gorc__timer_add(t, d);
}

void gorc__pd_set_deadline(gorc__pd *pd, int64_t when, int mode)
{
    int64_t d = 0;
    if (when != 0)
        d = when <= gorc__nanotime() ? -1 : when;
    gorc__g *rg = NULL, *wg = NULL;
    gorc__lock_acquire(&pd->lock);
    if (pd->closing) {
        gorc__lock_release(&pd->lock);
        return;
    }
    if ((mode == 'r' || mode == 'r' + 'w') && d != pd->rd) {
        pd->rd = d;
        rearm(&pd->rt, d);
    }
    if ((mode == 'w' || mode == 'r' + 'w') && d != pd->wd) {
        pd->wd = d;
        rearm(&pd->wt, d);
    }
    publish_info(pd);
    if (pd->rd < 0)
        rg = unblock(pd, 'r', false);
    if (pd->wd < 0)
        wg = unblock(pd, 'w', false);
    gorc__lock_release(&pd->lock);
    if (rg)
        gorc__ready(rg);
    if (wg)
        gorc__ready(wg);
}

void gorc__pd_interrupt(gorc__pd *pd, int mode, bool on)
{
    gorc__g *g = NULL;
    gorc__lock_acquire(&pd->lock);
    if (mode == 'r')
        pd->rintr = on;
    else
        pd->wintr = on;
    publish_info(pd);
    if (on && !pd->closing) /* closing has woken everyone already */
        g = unblock(pd, mode, false);
    gorc__lock_release(&pd->lock);
    if (g)
        gorc__ready(g);
}

void gorc__pd_evict(gorc__pd *pd)
{
    gorc__lock_acquire(&pd->lock);
    if (pd->closing) {
        gorc__lock_release(&pd->lock);
        return;
    }
    pd->closing = true;
    publish_info(pd);
    gorc__g *rg = unblock(pd, 'r', false);
    gorc__g *wg = unblock(pd, 'w', false);
    gorc__timer_del(&pd->rt);
    gorc__timer_del(&pd->wt);
    gorc__lock_release(&pd->lock);
    if (rg)
        gorc__ready(rg);
    if (wg)
        gorc__ready(wg);
}
