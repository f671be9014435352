/*
 * sync.c - Mutex, RWMutex, WaitGroup, Once, Cond and a counting semaphore.
 *
 * These are Go 1.19's sync algorithms. Each object owns a FIFO queue of waiters (gorc__waiter
 * nodes on the waiting goroutine's stack, so blocking allocates nothing) guarded by its own
 * spin word, `qlock`. A waiter queues itself and parks with qlock still held; the scheduler
 * releases qlock only once the goroutine has switched out (see gorc__park). A waker takes
 * qlock, pops the waiter, releases qlock and then readies it, so it can never ready a
 * goroutine that is still on its way to sleep. Foreign threads go through the same calls:
 * gorc__park and gorc__ready make them sleep on a futex instead.
 *
 * Registration under qlock. Go's Mutex and RWMutex count their waiters in an atomic word and
 * only later sleep on a runtime semaphore, whose count covers a wake-up that comes before the
 * sleep. gorc needs no such count: a waiter updates the atomic word (counts itself as a waiter)
 * while it holds qlock and queues itself before releasing it. A waker that saw that update
 * takes qlock afterwards, so it always finds the waiter queued. An empty queue where the word
 * promised a waiter is therefore a broken invariant and fatal ("inconsistent ... state").
 *
 * Mutex. `state` packs LOCKED, WOKEN (a goroutine is awake and about to grab the lock: unlock
 * need not wake another), STARVING and the waiter count, exactly as Go's. Lock and unlock are
 * one atomic instruction each when uncontended. Under contention a goroutine spins briefly
 * (only when other Ps are running, which is when the holder can be, and nobody is queued yet:
 * see can_spin), then queues. In normal mode a woken waiter competes with newcomers, which
 * usually win - they are already running, and letting them go on keeps the lock's cache line
 * on one CPU: that is what makes a contended Mutex fast. A waiter that has waited over 1 ms
 * switches the mutex to starvation mode, where unlock hands ownership straight to the first waiter
 * and newcomers queue at the tail; a waiter that was woken and lost the race goes back to the head.
 * The mutex leaves starvation mode when the waiter handed the lock is the last one or waited under
 * 1 ms.
 *
 * RWMutex. Go's: `readers` counts readers and drops by RW_MAX_READERS while a writer holds or
 * waits for the lock, so new readers see a negative count and queue (writers are preferred and
 * cannot be starved). The writer then waits until the readers that were inside have left,
 * counted down in `departing`. Readers enter with a CAS that only succeeds on a non-negative
 * count, so a reader that must wait adds itself to the count under qlock (registration, as
 * above), and the writer's unlock finds exactly the readers it counted in rq.
 *
 * WaitGroup. `count` packs the counter (high 32 bits) and the number of waiters (low 32), as
 * Go's state word does. The Add that brings the counter to zero clears the word and wakes
 * exactly the waiters it counted; they are the oldest in the queue, so a WaitGroup reused
 * right away (new waiters queued behind) is not disturbed.
 *
 * Cond. A waiter queues itself before unlocking c->l, so a signal sent after the unlock always
 * finds it; if the signal comes before the waiter parks, it only marks the waiter done and the
 * waiter does not park at all (`n` records whether it has parked, under qlock).
 *
 * Semaphore. Permits are granted under qlock to the head waiters in FIFO order, as far as they
 * fit, so one big request blocks smaller ones behind it (x/sync/semaphore.Weighted). A timeout
 * races a release as in select: both try to flip the waiter's g->selectdone from 0 to 1, and
 * the loser backs off, so permits granted concurrently with the timeout are kept, never lost.
 * The timer must not take qlock: timers also run in the scheduler while a goroutine that is
 * parking still holds its qlock (released after the switch), possibly on the same thread. So the
 * timed-out waiter unqueues itself once it runs, and if it was the head, grants what now fits.
 *
 * gorc__mutex.starve_since is not used: the 1 ms test is per waiter, as in Go.
 */
#include "runtime/cancel.h"
#include "sim/sim.h"
#include "runtime/sync.h"

#include <stdlib.h>

/* The public handle of a mutex embedded in another object, for the public lock calls. */
static inline gorc_mutex *mutex_pub(gorc__mutex *m)
{
    return (gorc_mutex *)(void *)m;
}

/* ------------------------------------------------------------------------------------------
 * Spin words and waiter queues
 * ---------------------------------------------------------------------------------------- */

static inline void qlock(_Atomic uint32_t *l)
{
    if (GORC__UNLIKELY(atomic_exchange_explicit(l, 1, memory_order_acquire)))
        gorc__lock_slow(l);
}

static inline void qunlock(_Atomic uint32_t *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}

/* gorc__park's after-switch action: release the qlock the goroutine parked under. */
static void qunlock_cb(void *l)
{
    qunlock(l);
}

void gorc__waitq_push(gorc__waitq *q, gorc__waiter *w)
{
    w->next = NULL;
    if (q->tail)
        ((gorc__waiter *)q->tail)->next = w;
    else
        q->head = w;
    q->tail = w;
}

static void waitq_push_front(gorc__waitq *q, gorc__waiter *w)
{
    w->next = q->head;
    q->head = w;
    if (q->tail == NULL)
        q->tail = w;
}

gorc__waiter *gorc__waitq_pop(gorc__waitq *q)
{
    gorc__waiter *w = q->head;
    if (w) {
        q->head = w->next;
        if (q->head == NULL)
            q->tail = NULL;
        w->next = NULL;
    }
    return w;
}

bool gorc__waitq_remove(gorc__waitq *q, gorc__waiter *w)
{
    gorc__waiter *prev = NULL;
    for (gorc__waiter *p = q->head; p; prev = p, p = p->next) {
        if (p != w)
            continue;
        if (prev)
            prev->next = w->next;
        else
            q->head = w->next;
        if (q->tail == w)
            q->tail = prev;
        w->next = NULL;
        return true;
    }
    return false;
}

/* Park the calling goroutine on q, which the caller has locked with *l. */
static void park_on(gorc__waitq *q, gorc__waiter *w, _Atomic uint32_t *l, int reason)
{
    gorc__waitq_push(q, w);
    gorc__park(reason, qunlock_cb, l);
}

/* Ready a list of popped waiters linked through next (their nodes stay valid until their
 * goroutine runs, so next is read first). */
static void ready_list(gorc__waiter *w)
{
    while (w) {
        gorc__waiter *next = w->next;
        gorc__ready(w->g);
        w = next;
    }
}

/* Pop up to n waiters (all if n < 0) under *l, then ready them. Returns how many. */
static int64_t wake_n(_Atomic uint32_t *l, gorc__waitq *q, int64_t n)
{
    gorc__waiter *head = NULL, **tail = &head;
    int64_t k = 0;
    qlock(l);
    for (gorc__waiter *w; k != n && (w = gorc__waitq_pop(q)) != NULL; k++) {
        w->done = true;
        *tail = w;
        tail = &w->next;
    }
    qunlock(l);
    ready_list(head);
    return k;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* ------------------------------------------------------------------------------------------
 * Mutex
 * ---------------------------------------------------------------------------------------- */

enum {
    M_LOCKED = 1u,
    M_WOKEN = 2u,
    M_STARVING = 4u,
    M_WSHIFT = 3, /* waiter count above these bits */
    M_WAITER = 1u << M_WSHIFT,
};

#define STARVE_NS   (1 * GORC_MILLISECOND)
#define SPIN_ROUNDS 4  /* Go's active_spin */
#define SPIN_PAUSES 30 /* Go's active_spin_cnt */

/* What a goroutine in Lock remembers across its attempts. */
typedef struct mwait {
    int64_t start; /* when it first queued, 0 if it has not */
    bool starving; /* it waited over STARVE_NS: it wants handoff mode */
    bool awoke;    /* it owns the WOKEN bit */
    int spins;
} mwait;

/* Spin only while it can pay: the holder can be running (several Ps, another one busy),
 * nothing else waits to run here (Go's sync_runtime_canSpin), and - unlike Go - nobody is
 * queued yet, unless we are the woken waiter. A mutex with queued waiters is oversubscribed;
 * a newcomer spinning on it only pulls the lock to another CPU (WebKit's WTF::Lock reasons the
 * same way). 100 goroutines on 2 Ps hammering one mutex run ~1.2x faster for it. */
static bool can_spin(const mwait *st, uint32_t state)
{
    int n = gorc__nprocs();
    if (st->spins >= SPIN_ROUNDS || n <= 1 || ((state >> M_WSHIFT) != 0 && !st->awoke))
        return false;
    int idle = gorc__nprocs_idle();
    if (n <= idle + 1)
        return false;
    gorc__m *m = gorc__getm();
    gorc__p *p = m ? m->p : NULL;
    if (p && (atomic_load_explicit(&p->runnext, memory_order_relaxed) != NULL ||
              atomic_load_explicit(&p->runqhead, memory_order_relaxed) !=
                  atomic_load_explicit(&p->runqtail, memory_order_relaxed)))
        return false;
    return true;
}

static void spin(void)
{
    for (int i = 0; i < SPIN_PAUSES; i++)
        cpu_relax();
}

/* The next state of a goroutine that will either take the free lock or count itself as a
 * waiter (Go's lockSlow computation). */
static uint32_t lock_or_wait_state(uint32_t old, const mwait *st)
{
    uint32_t next = old;
    if (!(old & M_STARVING))
        next |= M_LOCKED; /* newcomers never take a starving mutex */
    if (old & (M_LOCKED | M_STARVING))
        next += M_WAITER;
    if (st->starving && (old & M_LOCKED))
        next |= M_STARVING;
    if (st->awoke) {
        if (!(next & M_WOKEN))
            gorc__fatal("sync: inconsistent mutex state");
        next &= ~M_WOKEN;
    }
    return next;
}

/* Ownership was handed to us: the state says STARVING, not LOCKED, and still counts us as a
 * waiter. Take the lock, and leave starvation mode if we are the last waiter or did not wait
 * long. */
static void take_handoff(gorc__mutex *m, bool starving)
{
    uint32_t old = atomic_load_explicit(&m->state, memory_order_relaxed);
    if ((old & (M_LOCKED | M_WOKEN)) || !(old & M_STARVING) || (old >> M_WSHIFT) == 0)
        gorc__fatal("sync: inconsistent mutex state");
    uint32_t delta = M_LOCKED - M_WAITER; /* wraps: unsigned arithmetic */
    if (!starving || (old >> M_WSHIFT) == 1)
        delta -= M_STARVING;
    atomic_fetch_add_explicit(&m->state, delta, memory_order_acquire);
}

enum { Q_ACQUIRED, Q_WOKEN };

/* Take the lock or count ourselves as a waiter and sleep, both under qlock. Returns
 * Q_ACQUIRED if we own the lock (free on arrival, or handed to us), Q_WOKEN if we were woken
 * to compete for it. */
static int mutex_queue(gorc__mutex *m, mwait *st, int reason)
{
    bool requeue = st->start != 0;
    if (!requeue)
        st->start = gorc_now();
    qlock(&m->qlock);
    uint32_t old = atomic_load_explicit(&m->state, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&m->state, &old, lock_or_wait_state(old, st),
                                                  memory_order_acquire, memory_order_relaxed))
        ;
    if (!(old & (M_LOCKED | M_STARVING))) {
        qunlock(&m->qlock);
        return Q_ACQUIRED;
    }
    gorc__waiter w = {.g = gorc__getg()};
    if (requeue) /* woken and lost the race: back to the head, as Go's queueLifo */
        waitq_push_front(&m->q, &w);
    else
        gorc__waitq_push(&m->q, &w);
    gorc__park(reason, qunlock_cb, &m->qlock);

    st->starving = st->starving || gorc_now() - st->start > STARVE_NS;
    if (w.n) {
        take_handoff(m, st->starving);
        return Q_ACQUIRED;
    }
    return Q_WOKEN;
}

static void mutex_lock_slow(gorc__mutex *m, int reason)
{
    mwait st = {0};
    uint32_t old = atomic_load_explicit(&m->state, memory_order_relaxed);
    for (;;) {
        if ((old & (M_LOCKED | M_STARVING)) == M_LOCKED && can_spin(&st, old)) {
            /* (Go also lets a spinning newcomer claim WOKEN so that unlock wakes nobody; here
             * newcomers spin only while nobody is queued, so there is nobody to wake.) */
            spin();
            st.spins++;
            old = atomic_load_explicit(&m->state, memory_order_relaxed);
            continue;
        }
        if (!(old & (M_LOCKED | M_STARVING))) {
            uint32_t next = (old | M_LOCKED) & ~(st.awoke ? M_WOKEN : 0u);
            if (atomic_compare_exchange_weak_explicit(&m->state, &old, next, memory_order_acquire,
                                                      memory_order_relaxed))
                return;
            continue;
        }
        if (mutex_queue(m, &st, reason) == Q_ACQUIRED)
            return;
        st.awoke = true; /* the unlock that woke us set WOKEN on our behalf */
        st.spins = 0;
        old = atomic_load_explicit(&m->state, memory_order_relaxed);
    }
}

static inline void mutex_lock(gorc__mutex *m, int reason)
{
    uint32_t unlocked = 0;
    if (GORC__LIKELY(atomic_compare_exchange_strong_explicit(
            &m->state, &unlocked, M_LOCKED, memory_order_acquire, memory_order_relaxed)))
        return;
    mutex_lock_slow(m, reason);
}

void gorc_mutex_lock(gorc_mutex *m_)
{
    gorc__mutex *m = gorc__mutex_of(m_);
    if (gorc__sim_on())
        gorc__sim_point();
    mutex_lock(m, GORC__W_MUTEX);
}

bool gorc_mutex_trylock(gorc_mutex *m_)
{
    gorc__mutex *m = gorc__mutex_of(m_);
    uint32_t old = atomic_load_explicit(&m->state, memory_order_relaxed);
    while (!(old & (M_LOCKED | M_STARVING)))
        if (atomic_compare_exchange_weak_explicit(&m->state, &old, old | M_LOCKED,
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
    return false;
}

/* Wake the first waiter, handing it the lock in starvation mode. */
static void mutex_wake(gorc__mutex *m, bool handoff)
{
    qlock(&m->qlock);
    gorc__waiter *w = gorc__waitq_pop(&m->q);
    if (w == NULL)
        gorc__fatal("sync: inconsistent mutex state");
    w->n = handoff;
    w->done = true;
    gorc__g *g = w->g;
    qunlock(&m->qlock);
    gorc__ready(g);
}

static void mutex_unlock_slow(gorc__mutex *m, uint32_t state)
{
    if (((state + M_LOCKED) & M_LOCKED) == 0)
        gorc__fatal("sync: unlock of unlocked mutex");
    if (state & M_STARVING) {
        mutex_wake(m, true);
        return;
    }
    /* Wake one waiter unless there are none, or someone already holds, is about to grab
     * (WOKEN) or was handed the lock. */
    uint32_t old = state;
    while ((old >> M_WSHIFT) != 0 && !(old & (M_LOCKED | M_WOKEN | M_STARVING))) {
        if (atomic_compare_exchange_weak_explicit(&m->state, &old, (old - M_WAITER) | M_WOKEN,
                                                  memory_order_relaxed, memory_order_relaxed)) {
            mutex_wake(m, false);
            return;
        }
    }
}

void gorc_mutex_unlock(gorc_mutex *m_)
{
    gorc__mutex *m = gorc__mutex_of(m_);
    uint32_t state =
        atomic_fetch_sub_explicit(&m->state, M_LOCKED, memory_order_release) - M_LOCKED;
    if (GORC__UNLIKELY(state != 0))
        mutex_unlock_slow(m, state);
    if (gorc__sim_on())
        gorc__sim_point();
}

/* ------------------------------------------------------------------------------------------
 * RWMutex
 * ---------------------------------------------------------------------------------------- */

#define RW_MAX_READERS (1 << 30)

bool gorc_rwmutex_tryrlock(gorc_rwmutex *rw_)
{
    gorc__rwmutex *rw = gorc__rwmutex_of(rw_);
    int32_t c = atomic_load_explicit(&rw->readers, memory_order_relaxed);
    while (c >= 0)
        if (atomic_compare_exchange_weak_explicit(&rw->readers, &c, c + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

/* A writer holds or wants the lock: count ourselves in under qlock (so the writer's unlock
 * finds us queued), unless the writer has left meanwhile. */
static void rw_rlock_slow(gorc__rwmutex *rw)
{
    qlock(&rw->qlock);
    if (atomic_fetch_add_explicit(&rw->readers, 1, memory_order_acquire) >= 0) {
        qunlock(&rw->qlock);
        return;
    }
    gorc__waiter w = {.g = gorc__getg()};
    park_on(&rw->rq, &w, &rw->qlock, GORC__W_RWMUTEX_R);
}

void gorc_rwmutex_rlock(gorc_rwmutex *rw_)
{
    gorc__rwmutex *rw = gorc__rwmutex_of(rw_);
    if (!gorc_rwmutex_tryrlock(rw_))
        rw_rlock_slow(rw);
}

static void rw_runlock_slow(gorc__rwmutex *rw, int32_t old)
{
    if (old == 0 || old == -RW_MAX_READERS)
        gorc__fatal("sync: RUnlock of unlocked RWMutex");
    /* A writer waits for the readers that were inside; the last one out wakes it. */
    if (atomic_fetch_sub_explicit(&rw->departing, 1, memory_order_acq_rel) == 1 &&
        wake_n(&rw->qlock, &rw->wq, 1) != 1)
        gorc__fatal("sync: inconsistent RWMutex state");
}

void gorc_rwmutex_runlock(gorc_rwmutex *rw_)
{
    gorc__rwmutex *rw = gorc__rwmutex_of(rw_);
    int32_t old = atomic_fetch_sub_explicit(&rw->readers, 1, memory_order_release);
    if (GORC__UNLIKELY(old <= 0))
        rw_runlock_slow(rw, old);
}

/* Wait until the r readers inside when we announced ourselves have left. */
static void rw_wait_departing(gorc__rwmutex *rw, int32_t r)
{
    qlock(&rw->qlock);
    if (atomic_fetch_add_explicit(&rw->departing, r, memory_order_acq_rel) + r == 0) {
        qunlock(&rw->qlock);
        return;
    }
    gorc__waiter w = {.g = gorc__getg()};
    park_on(&rw->wq, &w, &rw->qlock, GORC__W_RWMUTEX_W);
}

void gorc_rwmutex_lock(gorc_rwmutex *rw_)
{
    gorc__rwmutex *rw = gorc__rwmutex_of(rw_);
    mutex_lock(&rw->w, GORC__W_RWMUTEX_W);
    int32_t r = atomic_fetch_sub_explicit(&rw->readers, RW_MAX_READERS, memory_order_acq_rel);
    if (r != 0)
        rw_wait_departing(rw, r);
}

bool gorc_rwmutex_trylock(gorc_rwmutex *rw_)
{
    gorc__rwmutex *rw = gorc__rwmutex_of(rw_);
    if (!gorc_mutex_trylock(mutex_pub(&rw->w)))
        return false;
    int32_t none = 0;
    if (!atomic_compare_exchange_strong_explicit(&rw->readers, &none, -RW_MAX_READERS,
                                                 memory_order_acquire, memory_order_relaxed)) {
        gorc_mutex_unlock(mutex_pub(&rw->w));
        return false;
    }
    return true;
}

void gorc_rwmutex_unlock(gorc_rwmutex *rw_)
{
    gorc__rwmutex *rw = gorc__rwmutex_of(rw_);
    int64_t r =
        (int64_t)atomic_fetch_add_explicit(&rw->readers, RW_MAX_READERS, memory_order_release) +
        RW_MAX_READERS;
    if (r >= RW_MAX_READERS)
        gorc__fatal("sync: Unlock of unlocked RWMutex");
    /* The r readers that arrived while we held the lock are all queued (they registered
     * under qlock): let them in before other writers. */
    if (r > 0 && wake_n(&rw->qlock, &rw->rq, r) != r)
        gorc__fatal("sync: inconsistent RWMutex state");
    gorc_mutex_unlock(mutex_pub(&rw->w));
}

/* ------------------------------------------------------------------------------------------
 * WaitGroup
 * ---------------------------------------------------------------------------------------- */

#define WG_SHIFT   32
#define WG_WAITERS 0xffffffffLL

/* Adds delta to the counter. Where Go panics ("sync: negative WaitGroup counter") this
 * returns -EINVAL and leaves the counter unchanged; so it does if the counter would exceed
 * INT32_MAX (the counter shares a 64-bit word with the waiter count). */
/* The count reached zero with waiters: wake them all. */
__attribute__((noinline)) static int wg_wake(gorc__waitgroup *wg, int64_t waiters)
{
    if (wake_n(&wg->qlock, &wg->q, waiters) != waiters)
        gorc__fatal("sync: inconsistent WaitGroup state");
    return 0;
}

int gorc_waitgroup_add(gorc_waitgroup *wg_, int64_t delta)
{
    gorc__waitgroup *wg = gorc__waitgroup_of(wg_);
    int64_t old = atomic_load_explicit(&wg->count, memory_order_relaxed), next;
    do {
        int64_t v = old >> WG_SHIFT;
        if (delta < -v || delta > INT32_MAX - v)
            return -EINVAL;
        v += delta;
        next = v == 0 ? 0 : (v << WG_SHIFT) | (old & WG_WAITERS);
    } while (!atomic_compare_exchange_weak_explicit(&wg->count, &old, next, memory_order_acq_rel,
                                                    memory_order_relaxed));
    int64_t waiters = old & WG_WAITERS;
    if (next == 0 && waiters != 0)
        return wg_wake(wg, waiters); /* a tail call: the common path stays a leaf, frameless */
    return 0;
}

int gorc_waitgroup_done(gorc_waitgroup *wg)
{
    return gorc_waitgroup_add(wg, -1);
}

void gorc_waitgroup_wait(gorc_waitgroup *wg_)
{
    gorc__waitgroup *wg = gorc__waitgroup_of(wg_);
    if ((atomic_load_explicit(&wg->count, memory_order_acquire) >> WG_SHIFT) == 0)
        return;
    qlock(&wg->qlock);
    int64_t old = atomic_load_explicit(&wg->count, memory_order_acquire);
    do {
        if ((old >> WG_SHIFT) == 0) {
            qunlock(&wg->qlock);
            return;
        }
    } while (!atomic_compare_exchange_weak_explicit(&wg->count, &old, old + 1, memory_order_acquire,
                                                    memory_order_acquire));
    gorc__waiter w = {.g = gorc__getg()};
    park_on(&wg->q, &w, &wg->qlock, GORC__W_WAITGROUP);
}

typedef struct wgtask {
    gorc_waitgroup *wg;
    gorc_fn fn;
    void *arg;
} wgtask;

static void wg_run(void *p)
{
    wgtask t = *(wgtask *)p;
    free(p);
    t.fn(t.arg);
    gorc_waitgroup_done(t.wg);
}

int gorc_waitgroup_go(gorc_waitgroup *wg, gorc_fn fn, void *arg)
{
    if (wg == NULL || fn == NULL)
        return -EINVAL;
    wgtask *t = malloc(sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    *t = (wgtask){wg, fn, arg};
    int rc = gorc_waitgroup_add(wg, 1);
    if (rc == 0 &&
        (rc = gorc__go_from(wg_run, t, (uintptr_t)__builtin_return_address(0), false)) != 0)
        gorc_waitgroup_done(wg);
    if (rc != 0)
        free(t);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Once
 * ---------------------------------------------------------------------------------------- */

static void once_slow(gorc__once *o, gorc_fn fn, void *arg)
{
    gorc_mutex_lock(mutex_pub(&o->m));
    if (!atomic_load_explicit(&o->done, memory_order_relaxed)) {
        fn(arg);
        atomic_store_explicit(&o->done, 1, memory_order_release);
    }
    gorc_mutex_unlock(mutex_pub(&o->m));
}

void gorc_once_do(gorc_once *o_, gorc_fn fn, void *arg)
{
    gorc__once *o = gorc__once_of(o_);
    if (GORC__LIKELY(atomic_load_explicit(&o->done, memory_order_acquire)))
        return;
    once_slow(o, fn, arg);
}

/* ------------------------------------------------------------------------------------------
 * Cond
 * ---------------------------------------------------------------------------------------- */

void gorc_cond_wait(gorc_cond *c_)
{
    gorc__cond *c = gorc__cond_of(c_);
    gorc__waiter w = {.g = gorc__getg()};
    qlock(&c->qlock);
    gorc__waitq_push(&c->q, &w); /* from here on, a signal finds us */
    qunlock(&c->qlock);
    gorc_mutex_unlock(c->l);
    qlock(&c->qlock);
    if (w.done) { /* signalled before we could park */
        qunlock(&c->qlock);
    } else {
        w.n = 1; /* parked: the signaller must ready us */
        gorc__park(GORC__W_COND, qunlock_cb, &c->qlock);
    }
    gorc_mutex_lock(c->l);
}

/* Pop up to n waiters (all if n < 0); ready those that have parked. */
static void cond_notify(gorc__cond *c, int n)
{
    gorc__waiter *head = NULL, **tail = &head;
    qlock(&c->qlock);
    for (gorc__waiter *w; n != 0 && (w = gorc__waitq_pop(&c->q)) != NULL; n--) {
        w->done = true;
        if (w->n) { /* else it sees done and does not park; its node is not ours to touch */
            *tail = w;
            tail = &w->next;
        }
    }
    qunlock(&c->qlock);
    ready_list(head);
}

void gorc_cond_signal(gorc_cond *c_)
{
    gorc__cond *c = gorc__cond_of(c_);
    cond_notify(c, 1);
}

void gorc_cond_broadcast(gorc_cond *c_)
{
    gorc__cond *c = gorc__cond_of(c_);
    cond_notify(c, -1);
}

/* ------------------------------------------------------------------------------------------
 * Semaphore
 * ---------------------------------------------------------------------------------------- */

/* What the park's after-switch action needs to arm the timeout. */
typedef struct semctx {
    gorc__sema *s;
    gorc__g *g;
    int64_t deadline;      /* 0: none */
    gorc__cancel *cx;      /* a context's cancellation, or NULL */
    gorc__cancel_wake cxw; /* our hook on cx */
} semctx;

void gorc_sema_init(gorc_sema *s_, int64_t permits)
{
    gorc__sema *s = gorc__sema_of(s_);
    atomic_store_explicit(&s->qlock, 0, memory_order_relaxed);
    s->q.head = s->q.tail = NULL;
    atomic_store_explicit(&s->avail, permits, memory_order_release);
}

/* Under qlock: take n permits if nobody queued before us and they are there. */
static bool sema_take(gorc__sema *s, int64_t n)
{
    int64_t a = atomic_load_explicit(&s->avail, memory_order_relaxed);
    if (s->q.head != NULL || a < n)
        return false;
    atomic_store_explicit(&s->avail, a - n, memory_order_relaxed);
    return true;
}

/* Claim a waiter against its timeout. */
static bool claim(gorc__g *g)
{
    uint32_t zero = 0;
    return atomic_compare_exchange_strong(&g->selectdone, &zero, 1);
}

/* Under qlock: grant permits to head waiters while they fit, dropping timed-out ones (they
 * leave on their own). Returns the granted ones as a list to ready once qlock is released. */
static gorc__waiter *sema_grant(gorc__sema *s)
{
    gorc__waiter *head = NULL, **tail = &head, *w;
    int64_t a = atomic_load_explicit(&s->avail, memory_order_relaxed);
    while ((w = s->q.head) != NULL && w->n <= a) {
        gorc__waitq_pop(&s->q);
        if (!claim(w->g))
            continue; /* timed out: not granted, and its node is not ours any more */
        a -= w->n;
        w->done = true;
        *tail = w;
        tail = &w->next;
    }
    atomic_store_explicit(&s->avail, a, memory_order_relaxed);
    return head;
}

static void sema_timeout(gorc__timer *t, int64_t now)
{
    (void)now;
    gorc__g *g = t->arg;
    if (claim(g))
        gorc__ready(g);
}

static void sema_park_unlock(void *arg)
{
    semctx *c = arg;
    _Atomic uint32_t *l = &c->s->qlock;
    if (c->deadline)
        gorc__sleept_arm(c->g, c->deadline, sema_timeout);
    /* Before qunlock, like the timer: once qlock is released a grant may wake us and the
     * stack holding the hook may be gone. A source already cancelled wakes us right here. */
    if (c->cx)
        gorc__cancel_hook_add(c->cx, &c->cxw.h);
    qunlock(l); /* c may be gone after this */
}

/* Timed out: leave the queue (unless a release already dropped us), and if we were blocking
 * the head, let the waiters behind us have what fits. */
static void sema_leave(gorc__sema *s, gorc__waiter *w)
{
    qlock(&s->qlock);
    bool was_head = s->q.head == w;
    gorc__waiter *granted = NULL;
    if (gorc__waitq_remove(&s->q, w) && was_head)
        granted = sema_grant(s);
    qunlock(&s->qlock);
    ready_list(granted);
}

/* Take n permits, waiting until deadline (0: none) or until cx (NULL: none) is cancelled.
 * Permits available now are taken even if the deadline has passed or cx is cancelled, as Go's
 * semaphore does. */
static int sema_acquire(gorc__sema *s, int64_t n, int64_t deadline, gorc__cancel *cx)
{
    qlock(&s->qlock);
    if (sema_take(s, n)) {
        qunlock(&s->qlock);
        return 0;
    }
    if (deadline && deadline <= gorc_now()) {
        qunlock(&s->qlock);
        return -ETIMEDOUT;
    }
    int err = cx ? gorc__cancel_err(cx) : 0;
    if (err != 0) {
        qunlock(&s->qlock);
        return err;
    }
    gorc__g *g = gorc__getg();
    gorc__waiter w = {.g = g, .n = n};
    atomic_store_explicit(&g->selectdone, 0, memory_order_relaxed);
    gorc__waitq_push(&s->q, &w);
    semctx c = {.s = s, .g = g, .deadline = deadline, .cx = cx};
    if (cx)
        gorc__cancel_wake_init(&c.cxw, g);
    gorc__park(GORC__W_SEMA, sema_park_unlock, &c);
    if (deadline)
        gorc__sleept_cancel(g); /* also waits for a sema_timeout in progress */
    if (cx)
        gorc__cancel_unhook(cx, &c.cxw.h); /* also waits for a wake hook in progress */
    if (w.done)                            /* written under qlock before the release readied us */
        return 0;
    sema_leave(s, &w);
    return cx ? gorc__cancel_err(cx) : -ETIMEDOUT;
}

int gorc__sema_acquire_cancel(gorc_sema *s, int64_t n, gorc__cancel *cx)
{
    if (n <= 0)
        return -EINVAL;
    gorc_maxprocs(); /* the scheduler must be running for goroutines to park */
    return sema_acquire(gorc__sema_of(s), n, 0, cx);
}

int gorc_sema_acquire(gorc_sema *s_, int64_t n)
{
    gorc__sema *s = gorc__sema_of(s_);
    if (n <= 0)
        return -EINVAL;
    return sema_acquire(s, n, 0, NULL);
}

/* A timeout <= 0 only tries (as gorc_select_timeout does). */
int gorc_sema_acquire_timeout(gorc_sema *s_, int64_t n, int64_t timeout_ns)
{
    gorc__sema *s = gorc__sema_of(s_);
    if (n <= 0)
        return -EINVAL;
    if (timeout_ns <= 0)
        return gorc_sema_tryacquire(s_, n) ? 0 : -ETIMEDOUT;
    gorc_maxprocs(); /* the timer heaps belong to the runtime's Ps */
    return sema_acquire(s, n, gorc_now() + timeout_ns, NULL);
}

/* False for n <= 0. */
bool gorc_sema_tryacquire(gorc_sema *s_, int64_t n)
{
    gorc__sema *s = gorc__sema_of(s_);
    if (n <= 0)
        return false;
    qlock(&s->qlock);
    bool ok = sema_take(s, n);
    qunlock(&s->qlock);
    return ok;
}

/* Release n permits (nothing for n <= 0) and wake the head waiters they satisfy. */
void gorc_sema_release(gorc_sema *s_, int64_t n)
{
    gorc__sema *s = gorc__sema_of(s_);
    if (n <= 0)
        return;
    qlock(&s->qlock);
    atomic_store_explicit(&s->avail, atomic_load_explicit(&s->avail, memory_order_relaxed) + n,
                          memory_order_relaxed);
    gorc__waiter *granted = sema_grant(s);
    qunlock(&s->qlock);
    ready_list(granted);
}
