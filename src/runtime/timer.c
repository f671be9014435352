/*
 * timer.c - the monotonic clock, the runtime's timer heaps, and sleeping.
 *
 * This is Go's runtime/time.go: the heaps and the goroutine's own timer. The timers users see
 * (gorc_timer_*, gorc_after, tickers) are built on it in time/sleep.c, as Go builds package
 * time's on the runtime's.
 *
 * Timers live in per-P 4-ary min-heaps (as Go's since 1.14), each with a lane beside it that
 * takes, in a ring, the timers armed in deadline order (see "the lane"): a goroutine arms its
 * timer on the P it runs on, so 100,000 sleepers spread over the Ps and never contend on one
 * lock. Each heap has a lock of its own because a timer may be stopped from any thread, and
 * p->timer0 mirrors its earliest deadline so the scheduler can tell "nothing due" from one
 * relaxed load, without reading the clock.
 *
 * Who runs expired timers: g0 of the P's own M, which a goroutine switch passes through when a
 * timer is due (runnable_fast); an M looking for work, for its own P and for idle Ps
 * (findrunnable), and for running Ps only when it finds nothing else to do (steal_work); and
 * the poller, which sleeps in gorc__netpoll with the earliest deadline of all Ps as its
 * timeout. Arming a timer that becomes its P's earliest, and earlier than the poller's
 * current deadline, breaks it out (gorc__netpoll_break) so it can recompute; there is no
 * periodic tick anywhere.
 *
 * gorc_sleep's timers, the bulk of any program with many sleepers, fall due in bunches: they
 * are taken out of the heap under one hold of its lock and their goroutines readied together,
 * at the tail of the run queue in deadline order, with one wake-up of another M for the lot
 * (gorc__ready_batch), where each used to cost a lock round trip, a runnext swap and a wakep.
 *
 * A timer's function runs without the heap lock held, and the timer is out of the heap while
 * it runs (tickers are re-armed first). gorc__timer_del_sync waits until a concurrent run of the
 * function has finished, so a timer can be freed right after it.
 *
 * Sleeping arms the goroutine's own timer from the park's after-action: the timer cannot
 * fire (and ready the goroutine) before the goroutine has switched out.
 */
#include "runtime/runtime.h"
#include "runtime/trace.h"
#include "sim/sim.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t gorc__nanotime(void)
{
    if (gorc__sim_on()) {
        /* Inside a simulation run the clock is the run's own (src/sim/sim.c). */
        gorc__m *m = gorc__getm();
        if (m && m->sim)
            return gorc__sim_now(m);
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * GORC_SECOND + ts.tv_nsec;
}

int64_t gorc_now(void)
{
    return gorc__nanotime();
}

int64_t gorc__deadline(int64_t d)
{
    int64_t now = gorc__nanotime();
    if (d <= 0)
        return now;
    return d > INT64_MAX - now ? INT64_MAX : now + d;
}

/* ---- the heap ----
 *
 * An entry holds the deadline beside the timer, so sifting compares entries in the heap's own
 * array instead of loading each timer: 100,000 sleeping goroutines' timers are scattered over
 * the heap and cold, and with the deadlines behind pointers siftdown was 14 % of the sleepers
 * benchmark. (Go's heap made the same change in 1.23.) Entry i is stored at
 * timers[i + HEAP_OFF] in a 64-byte aligned array, so that the four children of an entry,
 * 4i+1 .. 4i+4, share one cache line. */

struct gorc__timerwhen {
    int64_t when;
    gorc__timer *t;
};

#define HEAP_OFF    3
#define ENTRY(p, i) ((p)->timers[(i) + HEAP_OFF])

static void place(gorc__p *p, int i, struct gorc__timerwhen e)
{
    ENTRY(p, i) = e;
    e.t->idx = i;
}

static void siftup(gorc__p *p, int i)
{
    struct gorc__timerwhen e = ENTRY(p, i);
    while (i > 0) {
        int parent = (i - 1) / 4;
        if (e.when >= ENTRY(p, parent).when)
            break;
        place(p, i, ENTRY(p, parent));
        i = parent;
    }
    place(p, i, e);
}

static void siftdown(gorc__p *p, int i)
{
    struct gorc__timerwhen e = ENTRY(p, i);
    int n = p->ntimers;
    for (;;) {
        int c = 4 * i + 1;
        if (c >= n)
            break;
        int best = c;
        int64_t w = ENTRY(p, c).when;
        for (int k = c + 1; k < c + 4 && k < n; k++)
            if (ENTRY(p, k).when < w) {
                best = k;
                w = ENTRY(p, k).when;
            }
        if (w >= e.when)
            break;
        place(p, i, ENTRY(p, best));
        i = best;
    }
    place(p, i, e);
}

static bool heap_push(gorc__p *p, gorc__timer *t)
{
    if (p->ntimers == p->captimers) {
        int nc = p->captimers ? p->captimers * 2 : 64;
        size_t bytes = ((size_t)nc + HEAP_OFF) * sizeof(struct gorc__timerwhen);
        struct gorc__timerwhen *h = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
        if (h == NULL)
            return false;
        if (p->timers)
            memcpy(h + HEAP_OFF, p->timers + HEAP_OFF, (size_t)p->ntimers * sizeof *h);
        free(p->timers);
        p->timers = h;
        p->captimers = nc;
    }
    place(p, p->ntimers++, (struct gorc__timerwhen){t->when, t});
    siftup(p, t->idx);
    return true;
}

static void heap_remove(gorc__p *p, int i)
{
    int last = --p->ntimers;
    if (i != last) {
        place(p, i, ENTRY(p, last));
        siftdown(p, i);
        siftup(p, i);
    }
}

/* ---- the lane ----
 *
 * Most timers are armed in deadline order: a goroutine sleeping in a loop, many sleeping for
 * one duration, a server's per-connection timeouts. Such a timer, no earlier than the last one
 * the lane took, goes to the tail of the P's lane, a ring that is sorted by construction, and
 * the earliest timer is the heap's root or the lane's head, whichever is first. Arming and
 * firing are then a store and a load at the ends of a ring instead of a siftup and a siftdown
 * over a heap of 100,000, each level a cache line of the heap and, for the index, one of a
 * timer (the siftdown was a quarter of the sleepers benchmark's instructions). A timer armed
 * out of order goes to the heap, so a mix of durations costs what the heap alone did.
 *
 * Deleting from the middle leaves a NULL entry (lanedead counts them) that is skipped once it
 * reaches the head, so the head is always a live timer. A full ring is compacted, and doubled
 * only if fewer than a quarter of its entries were deleted: stopped timers cost their slot
 * until then, and the ring stays within a small multiple of its live timers. */

#define LANE(p, pos) ((p)->lane[(pos) & ((p)->lanecap - 1)])

static uint32_t lane_len(const gorc__p *p)
{
    return p->lanetail - p->lanehead;
}

static void lane_at(gorc__p *p, uint32_t pos, struct gorc__timerwhen e)
{
    LANE(p, pos) = e;
    e.t->idx = -1 - (int)(pos & (p->lanecap - 1));
}

/* Compact the live entries into a new ring, twice as large unless enough were deleted. */
static bool lane_grow(gorc__p *p)
{
    uint32_t nc = p->lanecap == 0 ? 64 : p->lanedead < p->lanecap / 4 ? 2 * p->lanecap : p->lanecap;
    if (nc > (uint32_t)INT32_MAX)
        return false;
    struct gorc__timerwhen *r = malloc((size_t)nc * sizeof *r);
    if (r == NULL)
        return false;
    uint32_t k = 0;
    for (uint32_t pos = p->lanehead; pos != p->lanetail; pos++)
        if (LANE(p, pos).t != NULL)
            r[k++] = LANE(p, pos);
    free(p->lane);
    p->lane = r;
    p->lanecap = nc;
    p->lanehead = 0;
    p->lanetail = k;
    p->lanedead = 0;
    for (uint32_t i = 0; i < k; i++)
        r[i].t->idx = -1 - (int)i;
    return true;
}

static bool lane_push(gorc__p *p, gorc__timer *t)
{
    if (lane_len(p) == p->lanecap && !lane_grow(p))
        return false;
    lane_at(p, p->lanetail++, (struct gorc__timerwhen){t->when, t});
    p->lanelast = t->when;
    return true;
}

static void lane_remove(gorc__p *p, uint32_t slot)
{
    p->lane[slot].t = NULL;
    p->lanedead++;
    while (p->lanehead != p->lanetail && LANE(p, p->lanehead).t == NULL) {
        p->lanehead++;
        p->lanedead--;
    }
}

/* ---- both together ---- */

static bool insert(gorc__p *p, gorc__timer *t)
{
    if (lane_len(p) == 0 || t->when >= p->lanelast) {
        if (lane_push(p, t))
            return true;
    }
    return heap_push(p, t);
}

static void unlink_timer(gorc__p *p, gorc__timer *t)
{
    if (t->idx < 0)
        lane_remove(p, (uint32_t)(-1 - t->idx));
    else
        heap_remove(p, t->idx);
}

/* The earliest timer's entry, or NULL. */
static struct gorc__timerwhen *earliest(gorc__p *p)
{
    struct gorc__timerwhen *h = p->ntimers ? &ENTRY(p, 0) : NULL;
    if (lane_len(p) == 0)
        return h;
    struct gorc__timerwhen *l = &LANE(p, p->lanehead);
    return h != NULL && h->when < l->when ? h : l;
}

static void update_timer0(gorc__p *p)
{
    struct gorc__timerwhen *e = earliest(p);
    atomic_store_explicit(&p->timer0, e ? e->when : 0, memory_order_release);
}

/* ---- arming and disarming ---- */

static gorc__p *timer_p(void)
{
    if (GORC__UNLIKELY(gorc__nprocs() == 0) && gorc__ensure_init() != 0)
        gorc__fatal("the runtime failed to start; no timer can be armed");
    gorc__m *m = gorc__getm();
    if (m && m->p)
        return m->p;
    /* A foreign thread or an M that lost its P: any heap will do, the lock protects it. */
    return gorc__p_at((int)(gorc__rand() % (uint64_t)gorc__nprocs()));
}

void gorc__timer_add(gorc__timer *t, int64_t when)
{
    if (when <= 0)
        when = 1;
    gorc__p *p = timer_p();
    gorc__lock_acquire(&p->tlock);
    t->when = when;
    atomic_store_explicit(&t->p, p, memory_order_relaxed);
    if (!insert(p, t)) {
        gorc__lock_release(&p->tlock);
        gorc__fatal("out of memory growing a timer heap");
    }
    /* Only a new earliest deadline of the P can be earlier than what a poller sleeps until:
     * the poller read this P's timer0 either after it reached its present value (and sleeps
     * no longer than that) or before, and then whoever lowered it to that value poked. So a
     * timer behind another - every sleeper of a loop - costs no fence and no poke. */
    int64_t t0 = atomic_load_explicit(&p->timer0, memory_order_relaxed);
    bool first = t0 == 0 || when < t0;
    if (first)
        atomic_store_explicit(&p->timer0, when, memory_order_release);
    gorc__lock_release(&p->tlock);
    if (first)
        gorc__poller_poke(when);
}

bool gorc__timer_del(gorc__timer *t)
{
    _Atomic(gorc__p *) *tp = &t->p;
    for (;;) {
        gorc__p *p = atomic_load(tp);
        if (p == NULL)
            return false;
        gorc__lock_acquire(&p->tlock);
        if (atomic_load_explicit(tp, memory_order_relaxed) != p) {
            gorc__lock_release(&p->tlock);
            continue;
        }
        unlink_timer(p, t);
        atomic_store_explicit(tp, NULL, memory_order_relaxed);
        update_timer0(p);
        gorc__lock_release(&p->tlock);
        return true;
    }
}

bool gorc__timer_del_sync(gorc__timer *t)
{
    bool r = gorc__timer_del(t);
    /* A runner marks the timer running before it leaves the heap (both under the heap lock),
     * so having seen it out of the heap, we see the mark too. */
    while (atomic_load(&t->running) != 0)
        sched_yield();
    return r;
}

static void wake_sleeper(gorc__timer *t, int64_t now);

/* Sleeping goroutines whose timers fell due together are readied as one batch. */
#define WAKE_BATCH 128
/* How long due sleepers may wait for room in their P's run queue (gorc__ready_room), which
 * is also how late a timer due behind them may run while the P has a backlog. */
#define TIMER_WAIT (GORC_MILLISECOND / 2)

/* A lane's timers fire in order: start loading the ones a few places on, which 100,000
 * sleepers' timers are not in cache. */
static void prefetch_lane(gorc__p *p, const struct gorc__timerwhen *e)
{
    if (e < p->lane || e >= p->lane + p->lanecap)
        return;
    uint32_t ahead = p->lanehead + 8;
    if (ahead - p->lanehead < lane_len(p) && LANE(p, ahead).t != NULL)
        __builtin_prefetch(LANE(p, ahead).t);
}

int64_t gorc__timers_run(gorc__p *p, int64_t now)
{
    gorc__g *batch[WAKE_BATCH];
    int nb = 0, room = gorc__ready_room(p), woken = 0;
    if (room < WAKE_BATCH / 2)
        room = WAKE_BATCH / 2; /* sleepers make progress whatever else fills the queue */
    int64_t wait = 0;
    struct gorc__timerwhen *e;
    gorc__lock_acquire(&p->tlock);
    while ((e = earliest(p)) != NULL && e->when <= now) {
        gorc__timer *t = e->t;
        prefetch_lane(p, e);
        if (t->f == wake_sleeper) {
            /* gorc_sleep's timer: nothing runs but the wake-up, and nobody waits for it, so
             * take it out and collect its goroutine without dropping the lock. Only as many
             * as the P's run queue holds: the rest would wait behind it anyway, and would
             * leave the P through the global queue; they wait here, in order. */
            if (woken == room) {
                wait = now + TIMER_WAIT;
                break;
            }
            woken++;
            unlink_timer(p, t);
            atomic_store_explicit(&t->p, NULL, memory_order_relaxed);
            batch[nb++] = t->arg;
            if (nb == WAKE_BATCH) {
                update_timer0(p);
                gorc__lock_release(&p->tlock);
                gorc__ready_batch(batch, nb);
                nb = 0;
                gorc__lock_acquire(&p->tlock);
            }
            continue;
        }
        bool selfowned = t->selfowned;
        if (!selfowned)
            atomic_fetch_add(&t->running, 1);
        unlink_timer(p, t);
        if (t->period > 0) {
            /* Tickers: next multiple of the period after now; missed ticks are dropped. */
            t->when += t->period * (1 + (now - t->when) / t->period);
            if (!insert(p, t)) {
                gorc__lock_release(&p->tlock);
                gorc__fatal("out of memory growing a timer heap");
            }
        } else {
            atomic_store_explicit(&t->p, NULL, memory_order_relaxed);
        }
        update_timer0(p);
        void (*f)(gorc__timer *, int64_t) = t->f;
        gorc__lock_release(&p->tlock);
        GORC__TRACE(NULL, GORC__EV_TIMER, 0, p->id, 0, (uintptr_t)t, 0);
        f(t, now);
        if (!selfowned)
            atomic_fetch_sub(&t->running, 1); /* the last access: t may be freed next */
        gorc__lock_acquire(&p->tlock);
    }
    update_timer0(p);
    int64_t next = e ? e->when : 0;
    if (room != INT_MAX)
        p->timerwait = wait;
    gorc__lock_release(&p->tlock);
    if (nb > 0)
        gorc__ready_batch(batch, nb);
    return next;
}

void gorc__timers_clear(gorc__p *p)
{
    gorc__lock_acquire(&p->tlock);
    for (int i = 0; i < p->ntimers; i++)
        atomic_store_explicit(&ENTRY(p, i).t->p, NULL, memory_order_relaxed);
    p->ntimers = 0;
    for (uint32_t pos = p->lanehead; pos != p->lanetail; pos++)
        if (LANE(p, pos).t != NULL)
            atomic_store_explicit(&LANE(p, pos).t->p, NULL, memory_order_relaxed);
    p->lanehead = p->lanetail = p->lanedead = 0;
    update_timer0(p);
    gorc__lock_release(&p->tlock);
}

int64_t gorc__timers_next(void)
{
    int64_t best = 0;
    for (int i = 0, n = gorc__nprocs(); i < n; i++) {
        int64_t w = atomic_load_explicit(&gorc__p_at(i)->timer0, memory_order_acquire);
        if (w != 0 && (best == 0 || w < best))
            best = w;
    }
    return best;
}

/* ---- the goroutine's own timer: sleep and timeouts ---- */

static gorc__timer *sleept(gorc__g *g)
{
    if (g->sleept == NULL) {
        g->sleept = calloc(1, sizeof(gorc__timer));
        if (g->sleept == NULL)
            gorc__fatal("out of memory allocating a goroutine's timer");
    }
    return g->sleept;
}

void gorc__sleept_arm(gorc__g *g, int64_t when, void (*f)(gorc__timer *, int64_t))
{
    gorc__timer *t = sleept(g);
    t->f = f;
    t->arg = g;
    t->period = 0;
    gorc__timer_add(t, when);
}

void gorc__sleept_cancel(gorc__g *g)
{
    if (g->sleept)
        gorc__timer_del_sync(g->sleept);
}

static void wake_sleeper(gorc__timer *t, int64_t now)
{
    (void)now;
    gorc__ready(t->arg);
}

typedef struct {
    gorc__g *g;
    int64_t when;
} sleepctx;

static void arm_sleep(void *arg)
{
    sleepctx *s = arg;
    gorc__sleept_arm(s->g, s->when, wake_sleeper);
}

void gorc_sleep(int64_t ns)
{
    if (ns <= 0)
        return;
    gorc__m *m = gorc__getm();
    if (m == NULL || m->curg == &m->g0) {
        struct timespec ts = {.tv_sec = ns / GORC_SECOND, .tv_nsec = ns % GORC_SECOND};
        while (nanosleep(&ts, &ts) != 0)
            ;
        return;
    }
    gorc__g *g = m->curg;
    sleept(g);
    sleepctx s = {.g = g, .when = gorc__deadline(ns)};
    gorc__park(GORC__W_SLEEP, arm_sleep, &s);
}

int64_t gorc__timers_pending(void)
{
    int64_t n = 0;
    for (int i = 0; i < gorc__nprocs(); i++) {
        gorc__p *p = gorc__p_at(i);
        gorc__lock_acquire(&p->tlock);
        n += p->ntimers + (int64_t)(lane_len(p) - p->lanedead);
        gorc__lock_release(&p->tlock);
    }
    return n;
}
