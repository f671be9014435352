/*
 * proc.c - the scheduler.
 *
 * gorc runs goroutines (G) on worker threads (M) that must hold a processor (P) to do so; there
 * are exactly nprocs Ps, so at most nprocs goroutines run at once, while any number of Ms may
 * exist (some parked, one blocked in the poller, some stuck in a goroutine that made a blocking
 * call). This is Go's design; the text below says where gorc departs from it and why.
 *
 * Run queues. Each P has a 256-slot lock-free ring that only its owner appends to and anyone
 * may steal half of, plus a `runnext` slot: a goroutine readied by the running one (the
 * receiver of a channel send, a new goroutine) runs next, so a producer/consumer pair keeps
 * handing the CPU back and forth with warm caches. When the ring is full, half of it moves to
 * the global queue (a locked list). Every 61st schedule looks at the global queue first so
 * local work cannot starve it.
 *
 * Switching. A goroutine that blocks (gorc__park), yields or exits calls schedule_away on its
 * own stack. If its P has more work, it switches directly to the next goroutine: one stack
 * switch per handoff, where Go makes two (via g0). Only when the P runs dry does it switch to
 * the M's g0 context, whose loop (m_loop) looks harder: global queue, the poller, stealing from
 * other Ps, and finally parking. Whatever the old goroutine still needed done - releasing the
 * channel lock it parked under, requeueing itself, freeing its stack - is recorded in the M as
 * an "after" action and performed by whichever context runs next, once the old goroutine is
 * safely off its stack. That is how a waker can never resume a goroutine that has not finished
 * switching out.
 *
 * Spinning and parking. An M without work "spins" (steals) for a while before releasing its P
 * and parking on a futex. At most half the busy Ps' worth of Ms spin at once. When a goroutine
 * becomes runnable and there is an idle P but no spinning M, wakep() starts one. Parked Ms cost
 * nothing: an idle program sleeps in the kernel.
 *
 * The poller. At most one idle M blocks in gorc__netpoll (epoll_wait) with the earliest timer
 * deadline of all Ps as its timeout; the others park on their futex. Adding an earlier timer
 * or needing the poller's attention breaks it out through an eventfd. There is no periodic
 * tick: an idle process with a sleeping goroutine wakes exactly when the timer is due.
 *
 * The monitor. A separate thread watches every P. A P whose goroutine has not returned to the
 * scheduler for 10 ms - CPU-bound, stuck in a blocking system call or in some C library that
 * blocks - while other work waits for it is taken away from its M (see "P ownership" below for
 * how the M finds out without paying an atomic read-modify-write per switch) and handed to
 * another M. The old M
 * carries on with its goroutine; the next time that goroutine enters the runtime, the M finds
 * it has no P and, after the goroutine parks, yields or exits, parks itself. Go does this only
 * for goroutines inside system calls it knows about and preempts the rest asynchronously with
 * signals; gorc cannot safely interrupt arbitrary C code, so one stuck goroutine costs one
 * thread, but never the other goroutines' progress.
 *
 * Thread-locals. The only per-thread state is the M pointer, read through gorc__getm(), a
 * function the compiler may not inline or treat as pure: after any switch a goroutine may be
 * on another thread, and a cached thread-local address would point at the old thread's data.
 */
#include "runtime/netpoll.h"
#include "runtime/trace.h"
#include "sim/sim.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef GORC__ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef GORC__TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

/* The scheduler as a whole. Only this file reads it; the rest of the runtime asks through the
 * functions declared in runtime.h. */
/* A block of G pointers. The global run queue and the global list of free Gs are chains of
 * these rather than lists linked through the Gs: moving a hundred Gs in or out then reads and
 * writes a few contiguous cache lines, where following links through the Gs costs one
 * dependent cache miss per G. That matters when a spawner outruns the goroutines' runners:
 * with 200,000 goroutines queued, their records are no longer in any cache, and walking them
 * one miss at a time made running them slower still, so the backlog fed itself (spawn's
 * 130-350 ns per goroutine from run to run). */
#define GBLOCK 126 /* a block is 1 KiB */
typedef struct gblock {
    struct gblock *next;
    uint32_t head, tail; /* g[head..tail) */
    gorc__g *g[GBLOCK];
} gblock;

/* A FIFO of Gs in blocks. Only if no block can be allocated, Gs are linked through schedlink
 * on `ovf` instead (taken first, so none waits behind later blocks for long). */
typedef struct gqueue {
    gblock *head, *tail;
    gorc__g *ovf, *ovftail;
    gblock *spare; /* one emptied block kept for reuse */
} gqueue;

typedef struct gorc__sched {
    gorc__lock lock; /* idle lists, global run queue, counters below */
    gqueue runq;
    _Atomic int32_t runqsize;
    gorc__p *pidle;
    _Atomic int32_t npidle;
    gorc__m *midle;
    int mcount;
    _Atomic int32_t nmspinning;
    _Atomic int32_t nlostp;            /* Ms running a goroutine after losing their P */
    _Atomic int32_t nforeign;          /* foreign threads that have used the runtime */
    _Atomic uint64_t nspawned, nended; /* goroutines spawned, ended without a P (see gorc__p) */
    _Atomic uint64_t goidgen;
    _Atomic int32_t main_active;
    _Atomic int32_t npolling; /* Ms blocked in the poller */
    _Atomic int64_t pollwhen; /* deadline the poller sleeps until (0 = none, -1 = forever) */
    _Atomic int64_t lastpoll; /* when gorc__netpoll last ran */
    _Atomic int32_t monitor_sleeping;
    _Atomic uint32_t monitor_futex;
    int nprocs;
    gorc__p *allp;
    gorc__g *allg;           /* every G ever made, newest first (guarded by lock) */
    gorc__m *allm;           /* every M ever started, newest first (guarded by lock) */
    _Atomic int64_t retakes; /* Ps the monitor took from their M (written by the monitor) */
} gorc__sched;

static gorc__sched gorc__s;

_Thread_local gorc__m *gorc__tls_m;
static _Thread_local gorc__g *tls_foreign;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_err;
/* Un-counts a foreign thread when it exits. Created on first use, not at runtime start: a
 * thread may call gorc (a channel, say) before the runtime exists. */
static pthread_key_t foreign_key;
static pthread_once_t foreign_key_once = PTHREAD_ONCE_INIT;
static bool foreign_key_ok;
static _Atomic uint32_t mainwait;
static _Atomic uint32_t main_busy; /* a gorc_main call is in progress */
static _Atomic uint32_t next_mid = 1;
static _Atomic int dead_reported;

#define RETAKE_NS   (10 * GORC_MILLISECOND)
#define MAX_THREADS 10000

static void m_loop(gorc__m *m);
static void *mstart(void *arg);
static gorc__g *findrunnable(gorc__m *m);
static void check_dead(void);

/* ------------------------------------------------------------------------------------------
 * Thread-local access and small helpers
 * ---------------------------------------------------------------------------------------- */

__attribute__((noinline)) gorc__m *gorc__getm(void)
{
    __asm__ volatile("" ::: "memory");
    return gorc__tls_m;
}

static void foreign_exit(void *arg)
{
    gorc__g *g = arg;
    tls_foreign = NULL; /* a later destructor calling gorc registers the thread afresh */
    atomic_fetch_sub(&gorc__s.nforeign, 1);
    free(g->sleept);
    free(g);
}

static void foreign_key_init(void)
{
    foreign_key_ok = pthread_key_create(&foreign_key, foreign_exit) == 0;
}

static gorc__g *foreign_g(void)
{
    gorc__g *g = tls_foreign;
    if (g)
        return g;
    g = calloc(1, sizeof *g);
    if (g == NULL)
        gorc__fatal("out of memory registering a foreign thread");
    g->foreign = true;
    g->id = 0;
    atomic_store(&g->status, GORC__G_RUNNING);
    /* Without the key (no keys left) or its value (no memory), no destructor runs and the
     * thread stays counted after it exits: deadlock detection is then off for good, the safe
     * way to fail. */
    pthread_once(&foreign_key_once, foreign_key_init);
    if (foreign_key_ok)
        (void)pthread_setspecific(foreign_key, g);
    atomic_fetch_add(&gorc__s.nforeign, 1);
    tls_foreign = g;
    return g;
}

void gorc__note_foreign_slow(void)
{
    if (gorc__getm() == NULL)
        foreign_g();
}

void gorc_foreign_attach(void)
{
    gorc__note_foreign();
}

gorc__g *gorc__getg(void)
{
    gorc__m *m = gorc__getm();
    return m ? m->curg : foreign_g();
}

/* ------------------------------------------------------------------------------------------
 * P ownership.
 *
 * An M touching its P's unlocked state (run queue, caches) first sets m->insched, then checks
 * that it still owns the P. The monitor takes a P only from an M that is not in the scheduler:
 * it clears p->owner, then checks m->insched. That is Dekker's pattern, and each side needs a
 * full barrier between its store and its load; the M's side runs on every switch, the monitor's
 * a few times a second at most. membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) lets the monitor
 * execute the barrier on the M's behalf, so the M's side is two plain stores and a load. Where
 * membarrier is unavailable both sides use an ordinary fence.
 * ---------------------------------------------------------------------------------------- */

static bool use_membarrier;

/* A full barrier. ThreadSanitizer does not model fences (gcc refuses them with -Wtsan); under
 * it a sequentially consistent read-modify-write stands in, which is a full barrier on every
 * architecture gorc supports. */
static void full_fence(void)
{
#ifdef GORC__TSAN
    static _Atomic int dummy;
    atomic_fetch_add(&dummy, 0);
#else
    atomic_thread_fence(memory_order_seq_cst);
#endif
}

static void membarrier_init(void)
{
    use_membarrier = gorc__os_membarrier_register();
}

static void remote_fence(void)
{
    if (use_membarrier && gorc__os_membarrier())
        return;
    full_fence();
}

/* The monitor decided to retake p (under sched.lock) or the M must wait for its verdict. */
static gorc__p *p_enter_slow(gorc__m *m, gorc__p *p)
{
    gorc__lock_acquire(&gorc__s.lock);
    bool mine = atomic_load(&p->owner) == m->id;
    gorc__lock_release(&gorc__s.lock);
    if (mine)
        return p;
    atomic_store_explicit(&m->insched, 0, memory_order_release);
    m->p = NULL;
    m->lostp = true;
    GORC__TRACE(m, GORC__EV_PROC_STOP, 0, p->id, 0, 0, 0);
    return NULL;
}

static gorc__p *p_enter(gorc__m *m)
{
    gorc__p *p = m->p;
    if (p == NULL)
        return NULL;
    atomic_store_explicit(&m->insched, 1, memory_order_relaxed);
    if (GORC__UNLIKELY(!use_membarrier))
        full_fence();
    else
        atomic_signal_fence(memory_order_seq_cst);
    if (GORC__LIKELY(atomic_load_explicit(&p->owner, memory_order_relaxed) == m->id))
        return p;
    return p_enter_slow(m, p);
}

static void p_leave(gorc__m *m)
{
    atomic_store_explicit(&m->insched, 0, memory_order_release);
}

static bool in_sched(const gorc__m *m)
{
    return atomic_load_explicit(&m->insched, memory_order_relaxed) != 0;
}

static void wake_monitor(void);

static void acquirep(gorc__m *m, gorc__p *p)
{
    atomic_store(&p->m, m);
    m->p = p;
    atomic_store_explicit(&m->insched, 1, memory_order_relaxed);
    atomic_store(&p->owner, m->id);
    GORC__TRACE(m, GORC__EV_PROC_START, 0, p->id, 0, 0, 0);
    wake_monitor(); /* it sleeps while every P is idle */
}

/* Under sched.lock. */
static void pidleput(gorc__p *p)
{
    atomic_store(&p->owner, 0);
    atomic_store(&p->m, NULL);
    p->link = gorc__s.pidle;
    gorc__s.pidle = p;
    atomic_fetch_add(&gorc__s.npidle, 1);
}

/* Under sched.lock. */
static gorc__p *pidleget(void)
{
    gorc__p *p = gorc__s.pidle;
    if (p) {
        gorc__s.pidle = p->link;
        atomic_fetch_sub(&gorc__s.npidle, 1);
    }
    return p;
}

/* ------------------------------------------------------------------------------------------
 * Run queues
 * ---------------------------------------------------------------------------------------- */

static gblock *gblock_new(gqueue *q)
{
    gblock *b = q->spare;
    if (b)
        q->spare = NULL;
    else if ((b = malloc(sizeof *b)) == NULL)
        return NULL;
    b->next = NULL;
    b->head = b->tail = 0;
    return b;
}

static void gqueue_push(gqueue *q, gorc__g *const *gs, int n)
{
    while (n > 0) {
        gblock *b = q->tail;
        if (b == NULL || b->tail == GBLOCK) {
            gblock *nb = gblock_new(q);
            if (nb == NULL) {
                for (int i = 0; i < n; i++) {
                    gs[i]->schedlink = NULL;
                    if (q->ovftail)
                        q->ovftail->schedlink = gs[i];
                    else
                        q->ovf = gs[i];
                    q->ovftail = gs[i];
                }
                return;
            }
            if (b)
                b->next = nb;
            else
                q->head = nb;
            q->tail = b = nb;
        }
        int k = GBLOCK - (int)b->tail;
        if (k > n)
            k = n;
        memcpy(&b->g[b->tail], gs, (size_t)k * sizeof *gs);
        b->tail += (uint32_t)k;
        gs += k;
        n -= k;
    }
}

/* The oldest G, or NULL. */
static gorc__g *gqueue_pop(gqueue *q)
{
    gorc__g *g = q->ovf;
    if (g) {
        if ((q->ovf = g->schedlink) == NULL)
            q->ovftail = NULL;
        return g;
    }
    gblock *b = q->head;
    if (b == NULL)
        return NULL;
    g = b->g[b->head++];
    if (b->head == b->tail) {
        if ((q->head = b->next) == NULL)
            q->tail = NULL;
        if (q->spare == NULL)
            q->spare = b;
        else
            free(b);
    }
    return g;
}

/* Under sched.lock. */
static void globrunqput_n(gorc__g *const *gs, int n)
{
    gqueue_push(&gorc__s.runq, gs, n);
    atomic_fetch_add(&gorc__s.runqsize, n);
}

static void globrunqput(gorc__g *g)
{
    gorc__lock_acquire(&gorc__s.lock);
    globrunqput_n(&g, 1);
    gorc__lock_release(&gorc__s.lock);
}

static bool runqputslow(gorc__p *p, gorc__g *g, uint32_t h, uint32_t t)
{
    gorc__g *batch[GORC__RUNQ / 2 + 1];
    uint32_t n = (t - h) / 2;
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&p->runq[(h + i) % GORC__RUNQ], memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&p->runqhead, &h, h + n, memory_order_release,
                                                 memory_order_relaxed))
        return false;
    batch[n] = g;
    gorc__lock_acquire(&gorc__s.lock);
    globrunqput_n(batch, (int)n + 1);
    gorc__lock_release(&gorc__s.lock);
    return true;
}

/* Owner only. */
static void runqput(gorc__p *p, gorc__g *g, bool next)
{
    if (next) {
        g = atomic_exchange_explicit(&p->runnext, g, memory_order_acq_rel);
        if (g == NULL)
            return;
    }
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_relaxed);
        if (t - h < GORC__RUNQ) {
            atomic_store_explicit(&p->runq[t % GORC__RUNQ], g, memory_order_relaxed);
            atomic_store_explicit(&p->runqtail, t + 1, memory_order_release);
            return;
        }
        if (runqputslow(p, g, h, t))
            return;
    }
}

/* The next goroutines' records and saved frames are likely cold: queued long ago (a timer
 * that fired, a backlog of new goroutines) or by another CPU. Start fetching them while the
 * current one runs: the record of the one after next, and the saved frame on the stack of the
 * next one, whose record the previous call fetched. (A thief may take and run them meanwhile:
 * the reads are only hints.) */
static void runq_prefetch(gorc__p *p, uint32_t h, uint32_t t)
{
    if (h == t)
        return;
    gorc__g *next = atomic_load_explicit(&p->runq[h % GORC__RUNQ], memory_order_relaxed);
    if (h + 1 != t)
        __builtin_prefetch(
            atomic_load_explicit(&p->runq[(h + 1) % GORC__RUNQ], memory_order_relaxed));
#ifndef GORC__TSAN /* a racy read by design: g->sp is written without atomics when it runs */
    char *sp = __atomic_load_n(&next->sp, __ATOMIC_RELAXED);
    if (sp) {
        __builtin_prefetch(sp);
        __builtin_prefetch(sp + 64);
    }
#else
    (void)next;
#endif
}

/* Owner only. */
static gorc__g *runqget(gorc__p *p)
{
    gorc__g *next = atomic_load_explicit(&p->runnext, memory_order_relaxed);
    if (next && atomic_compare_exchange_strong(&p->runnext, &next, NULL))
        return next;
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_relaxed);
        if (t == h)
            return NULL;
        gorc__g *g = atomic_load_explicit(&p->runq[h % GORC__RUNQ], memory_order_relaxed);
        if (atomic_compare_exchange_strong_explicit(&p->runqhead, &h, h + 1, memory_order_release,
                                                    memory_order_relaxed)) {
            runq_prefetch(p, h + 1, t);
            return g;
        }
    }
}

static bool runqempty(gorc__p *p)
{
    uint32_t h = atomic_load(&p->runqhead);
    uint32_t t = atomic_load(&p->runqtail);
    return h == t && atomic_load(&p->runnext) == NULL;
}

/* Take half of p2's queue into p's ring at position t (p's tail); returns how many. */
static uint32_t runqgrab(gorc__p *p2, gorc__p *p, uint32_t t, bool steal_next)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&p2->runqhead, memory_order_acquire);
        uint32_t t2 = atomic_load_explicit(&p2->runqtail, memory_order_acquire);
        uint32_t n = t2 - h;
        n = n - n / 2;
        if (n == 0) {
            if (!steal_next)
                return 0;
            gorc__g *next = atomic_load(&p2->runnext);
            if (next == NULL)
                return 0;
            /* The owner probably is about to switch to it; give it a moment, as Go does. If it
             * switched meanwhile, it is not stuck, and what runnext holds now is most likely a
             * goroutine readied since: a producer and its consumer take turns there, and
             * comparing pointers alone would steal one of the pair half the time, at a moment
             * the owner was about to run it, and split them over two CPUs. */
            if (atomic_load(&p2->owner) != 0) {
                uint32_t tick = atomic_load_explicit(&p2->schedtick, memory_order_relaxed);
                usleep(3);
                if (atomic_load_explicit(&p2->schedtick, memory_order_relaxed) != tick)
                    return 0;
            }
            if (!atomic_compare_exchange_strong(&p2->runnext, &next, NULL))
                continue;
            atomic_store_explicit(&p->runq[t % GORC__RUNQ], next, memory_order_relaxed);
            return 1;
        }
        if (n > GORC__RUNQ / 2)
            continue; /* read an inconsistent head/tail pair */
        for (uint32_t i = 0; i < n; i++) {
            gorc__g *g =
                atomic_load_explicit(&p2->runq[(h + i) % GORC__RUNQ], memory_order_relaxed);
            atomic_store_explicit(&p->runq[(t + i) % GORC__RUNQ], g, memory_order_relaxed);
        }
        if (atomic_compare_exchange_strong_explicit(&p2->runqhead, &h, h + n, memory_order_release,
                                                    memory_order_relaxed))
            return n;
    }
}

static gorc__g *runqsteal(gorc__p *p, gorc__p *p2, bool steal_next)
{
    uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_relaxed);
    uint32_t n = runqgrab(p2, p, t, steal_next);
    if (n == 0)
        return NULL;
    n--;
    gorc__g *g = atomic_load_explicit(&p->runq[(t + n) % GORC__RUNQ], memory_order_relaxed);
    if (n > 0)
        atomic_store_explicit(&p->runqtail, t + n, memory_order_release);
    return g;
}

/* Under sched.lock: take one G and move up to a fair share more into p's ring. */
static gorc__g *globrunqget(gorc__p *p, int max)
{
    int sz = atomic_load(&gorc__s.runqsize);
    if (sz == 0)
        return NULL;
    int n = sz / gorc__s.nprocs + 1;
    if (n > sz)
        n = sz;
    if (max > 0 && n > max)
        n = max;
    if (n > GORC__RUNQ / 2)
        n = GORC__RUNQ / 2;
    atomic_fetch_sub(&gorc__s.runqsize, n);
    gorc__g *g = gqueue_pop(&gorc__s.runq);
    for (int i = 1; i < n; i++)
        runqput(p, gqueue_pop(&gorc__s.runq), false);
    return g;
}

static gorc__g *globrunqget_locked(gorc__p *p, int max)
{
    if (atomic_load_explicit(&gorc__s.runqsize, memory_order_relaxed) == 0)
        return NULL;
    gorc__lock_acquire(&gorc__s.lock);
    gorc__g *g = globrunqget(p, max);
    gorc__lock_release(&gorc__s.lock);
    return g;
}

/* ------------------------------------------------------------------------------------------
 * Ms: creation, parking, waking
 * ---------------------------------------------------------------------------------------- */

static void mpark_wait(gorc__m *m)
{
    while (atomic_load(&m->park) == 0)
        gorc__futex_wait(&m->park, 0, -1);
    atomic_store(&m->park, 0);
}

static void wake_monitor(void)
{
    if (atomic_load(&gorc__s.monitor_sleeping)) {
        atomic_store(&gorc__s.monitor_futex, 1);
        gorc__futex_wake(&gorc__s.monitor_futex, 1);
    }
}

/* Worker threads run only the scheduler loop on their own stack (goroutines have theirs, and
 * faults are handled on an alternate stack), so they need far less than the default 8 MiB. */
#define M_STACK (512 * 1024)

static int newm(gorc__p *p, bool spinning)
{
    gorc__m *m = calloc(1, sizeof *m);
    if (m == NULL)
        return -ENOMEM;
    m->id = atomic_fetch_add(&next_mid, 1);
    m->rnd = 0x9E3779B97F4A7C15ULL * m->id ^ (uint64_t)gorc__nanotime();
    if (m->rnd == 0)
        m->rnd = 1;
    m->nextp = p;
    m->spinning = spinning;
    m->g0.status = GORC__G_RUNNING;
    gorc__lock_acquire(&gorc__s.lock);
    if (gorc__s.mcount >= MAX_THREADS) {
        gorc__lock_release(&gorc__s.lock);
        gorc__fatal("thread exhaustion: program exceeds %d-thread limit", MAX_THREADS);
    }
    gorc__s.mcount++;
    gorc__lock_release(&gorc__s.lock);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, M_STACK);
    pthread_t thread;
    int rc = pthread_create(&thread, &attr, mstart, m);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        gorc__lock_acquire(&gorc__s.lock);
        gorc__s.mcount--;
        gorc__lock_release(&gorc__s.lock);
        free(m);
        return -rc;
    }
    return 0;
}

_Atomic uint32_t gorc__park_hooks;

gorc__m *gorc__allm(void)
{
    return __atomic_load_n(&gorc__s.allm, __ATOMIC_ACQUIRE);
}

uint64_t gorc__goroutines_made(void)
{
    return atomic_load_explicit(&gorc__s.goidgen, memory_order_relaxed);
}

gorc__g *gorc__allg(void)
{
    return __atomic_load_n(&gorc__s.allg, __ATOMIC_ACQUIRE);
}

/* No thread could be made for p (out of memory or address space): p goes back to the idle list
 * and the Ms that exist pick its work up when they next look. Go dies here; a server under
 * memory pressure is better off degraded than dead. Said once on stderr. */
static void no_thread_for(gorc__p *p, bool spinning, int err)
{
    static _Atomic int warned;
    if (atomic_exchange(&warned, 1) == 0)
        fprintf(stderr, "gorc: cannot create a worker thread (%s); continuing with fewer\n",
                strerror(-err));
    gorc__lock_acquire(&gorc__s.lock);
    pidleput(p);
    gorc__lock_release(&gorc__s.lock);
    if (spinning)
        atomic_fetch_sub(&gorc__s.nmspinning, 1);
}

/* Run p (or an idle P if NULL) on an idle M, or a new one. */
static void startm(gorc__p *p, bool spinning)
{
    gorc__lock_acquire(&gorc__s.lock);
    if (p == NULL) {
        p = pidleget();
        if (p == NULL) {
            gorc__lock_release(&gorc__s.lock);
            if (spinning)
                atomic_fetch_sub(&gorc__s.nmspinning, 1);
            return;
        }
    }
    gorc__m *m = gorc__s.midle;
    if (m) {
        gorc__s.midle = m->schedlink;
    }
    gorc__lock_release(&gorc__s.lock);
    wake_monitor();
    if (m == NULL) {
        int rc = newm(p, spinning);
        if (rc != 0)
            no_thread_for(p, spinning, rc);
        return;
    }
    m->nextp = p;
    m->spinning = spinning;
    atomic_store(&m->park, 1);
    gorc__futex_wake(&m->park, 1);
}

void gorc__wakep(void)
{
    if (atomic_load(&gorc__s.npidle) == 0)
        return;
    int32_t zero = 0;
    if (atomic_load(&gorc__s.nmspinning) != 0 ||
        !atomic_compare_exchange_strong(&gorc__s.nmspinning, &zero, 1))
        return;
    startm(NULL, true);
}

/* ------------------------------------------------------------------------------------------
 * Goroutine records: allocation, ids, recycling
 * ---------------------------------------------------------------------------------------- */

#define GSLAB 128

/* New records come in slabs so the global list of all Gs (for dumps) is touched rarely. */
#if !defined(GORC__ASAN) && !defined(GORC__TSAN) && UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(gorc__g) == 192, "a G record is three cache lines (see gorc__g)");
#endif

static gorc__g *gslab_new(void)
{
    /* Aligned so that each record's first 64 bytes are one cache line (see gorc__g); calloc,
     * not aligned_alloc and memset, so that fresh pages are not written twice. Slabs are
     * never freed. */
    char *raw = calloc(1, GSLAB * sizeof(gorc__g) + _Alignof(gorc__g));
    if (raw == NULL)
        return NULL;
    uintptr_t al = _Alignof(gorc__g);
    gorc__g *s = (gorc__g *)(((uintptr_t)raw + al - 1) & ~(al - 1));
    gorc__lock_acquire(&gorc__s.lock);
    for (int i = 0; i < GSLAB; i++) {
        s[i].allnext = gorc__s.allg;
        __atomic_store_n(&gorc__s.allg, &s[i], __ATOMIC_RELEASE);
    }
    gorc__lock_release(&gorc__s.lock);
    return s;
}

/* p: held by the caller, or NULL (see gorc__p.nspawned). d: +1 for a spawn, -1 for an end. */
static void count_goroutines(gorc__p *p, int64_t d)
{
    if (p) {
        _Atomic uint64_t *c = d > 0 ? &p->nspawned : &p->nended;
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(d > 0 ? &gorc__s.nspawned : &gorc__s.nended, 1,
                                  memory_order_relaxed);
    }
}

/* Free Gs: up to GORC__GFREE_LOCAL in each P's array, the rest on a stack of blocks under
 * gfree_lock (Gs linked through schedlink on gfree_ovf if no block could be allocated). */
static gorc__lock gfree_lock;
static gblock *gfree_top; /* g[0..tail) of each block */
static gblock *gfree_spare;
static gorc__g *gfree_ovf;

/* Under gfree_lock. */
static void gfree_push(gorc__g *const *gs, int n)
{
    while (n > 0) {
        gblock *b = gfree_top;
        if (b == NULL || b->tail == GBLOCK) {
            gblock *nb = gfree_spare;
            if (nb)
                gfree_spare = NULL;
            else if ((nb = malloc(sizeof *nb)) == NULL) {
                for (int i = 0; i < n; i++) {
                    gs[i]->schedlink = gfree_ovf;
                    gfree_ovf = gs[i];
                }
                return;
            }
            nb->head = nb->tail = 0;
            nb->next = b;
            gfree_top = b = nb;
        }
        int k = GBLOCK - (int)b->tail;
        if (k > n)
            k = n;
        memcpy(&b->g[b->tail], gs, (size_t)k * sizeof *gs);
        b->tail += (uint32_t)k;
        gs += k;
        n -= k;
    }
}

/* Under gfree_lock: up to max Gs into out, the most recently freed first. */
static int gfree_pop(gorc__g **out, int max)
{
    int k = 0;
    while (k < max && gfree_ovf) {
        out[k++] = gfree_ovf;
        gfree_ovf = gfree_ovf->schedlink;
    }
    while (k < max && gfree_top) {
        gblock *b = gfree_top;
        while (k < max && b->tail > 0)
            out[k++] = b->g[--b->tail];
        if (b->tail == 0) {
            gfree_top = b->next;
            if (gfree_spare == NULL)
                gfree_spare = b;
            else
                free(b);
        }
    }
    return k;
}

static gorc__g *galloc(gorc__p *p)
{
    if (p && p->ngfree == 0) {
        gorc__lock_acquire(&gfree_lock);
        p->ngfree = gfree_pop(p->gfree, GORC__GFREE_LOCAL / 2);
        gorc__lock_release(&gfree_lock);
        if (p->ngfree == 0) {
            gorc__g *s = gslab_new();
            if (s == NULL)
                return NULL;
            gorc__g *rest[GSLAB - GORC__GFREE_LOCAL];
            for (int i = 0; i < GSLAB - GORC__GFREE_LOCAL; i++)
                rest[i] = &s[GORC__GFREE_LOCAL + i];
            for (int i = 0; i < GORC__GFREE_LOCAL; i++)
                p->gfree[i] = &s[GORC__GFREE_LOCAL - 1 - i];
            p->ngfree = GORC__GFREE_LOCAL;
            gorc__lock_acquire(&gfree_lock);
            gfree_push(rest, GSLAB - GORC__GFREE_LOCAL);
            gorc__lock_release(&gfree_lock);
        }
    }
    gorc__g *g;
    if (p) {
        g = p->gfree[--p->ngfree];
        if (p->ngfree > 0) /* the next spawn's record: fetch it while this one is filled in */
            __builtin_prefetch(p->gfree[p->ngfree - 1], 1);
        return g;
    }
    gorc__lock_acquire(&gfree_lock);
    int n = gfree_pop(&g, 1);
    gorc__lock_release(&gfree_lock);
    if (n == 0) {
        gorc__g *s = gslab_new();
        if (s == NULL)
            return NULL;
        g = s;
        gorc__g *rest[GSLAB - 1];
        for (int i = 0; i < GSLAB - 1; i++)
            rest[i] = &s[1 + i];
        gorc__lock_acquire(&gfree_lock);
        gfree_push(rest, GSLAB - 1);
        gorc__lock_release(&gfree_lock);
    }
    return g;
}

static void gfree(gorc__p *p, gorc__g *g)
{
    gorc__stack_free(p, &g->stk);
#ifdef GORC__TSAN
    if (g->tsan_fiber) {
        __tsan_destroy_fiber(g->tsan_fiber);
        g->tsan_fiber = NULL;
    }
#endif
    if (GORC__UNLIKELY(g->insim)) {
        g->sim = NULL;
        g->insim = false;
        g->simext = false;
        g->simhost = 0;
    }
    atomic_store(&g->status, GORC__G_FREE);
    count_goroutines(p, -1);
    if (p) {
        if (p->ngfree == GORC__GFREE_LOCAL) {
            /* Keep the most recently freed half, whose records are warm. */
            gorc__lock_acquire(&gfree_lock);
            gfree_push(p->gfree, GORC__GFREE_LOCAL / 2);
            gorc__lock_release(&gfree_lock);
            memmove(p->gfree, p->gfree + GORC__GFREE_LOCAL / 2,
                    GORC__GFREE_LOCAL / 2 * sizeof p->gfree[0]);
            p->ngfree = GORC__GFREE_LOCAL / 2;
        }
        p->gfree[p->ngfree++] = g;
        return;
    }
    gorc__lock_acquire(&gfree_lock);
    gfree_push(&g, 1);
    gorc__lock_release(&gfree_lock);
}

/* ------------------------------------------------------------------------------------------
 * Switching
 * ---------------------------------------------------------------------------------------- */

static void switch_to(gorc__m *m, gorc__g *from, gorc__g *to, bool from_dies)
{
#ifdef GORC__ASAN
    const void *lo = to == &m->g0 ? (const void *)m->g0_lo : (const void *)to->stk.lo;
    size_t sz = to == &m->g0 ? m->g0_size : to->stk.size;
    __sanitizer_start_switch_fiber(from_dies ? NULL : &from->asan_fake, lo, sz);
#else
    (void)from_dies;
    (void)m;
#endif
#ifdef GORC__TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    gorc__ctx_switch(&from->sp, to->sp);
#ifdef GORC__ASAN
    __sanitizer_finish_switch_fiber(from->asan_fake, NULL, NULL);
#endif
}

static void run_after(gorc__m *m)
{
    int a = m->after;
    if (a == GORC__AFTER_NONE)
        return;
    m->after = GORC__AFTER_NONE;
    gorc__g *g = m->after_g;
    if (a == GORC__AFTER_UNLOCK) {
        gorc__cstk_parked(g);
        if (m->after_unlock)
            m->after_unlock(m->after_arg);
    } else if (a == GORC__AFTER_YIELD) {
        atomic_store(&g->status, GORC__G_RUNNABLE);
        if (GORC__UNLIKELY(g->insim))
            gorc__sim_ready(g);
        else
            globrunqput(g);
    } else if (a == GORC__AFTER_EXIT) {
        gfree(m->p, g);
    }
}

static void g_start(void *arg);

/* Give g a stack and a first frame if it has never run. Custom-size stacks were mapped at
 * spawn; default-size ones were promised then (gorc__stack_promise), so taking one here finds
 * a cached stack or an arena slot and cannot fail. */
static void prepare_first_run(gorc__p *p, gorc__g *g)
{
    if (g->sp != NULL)
        return;
    if (g->stk.lo == NULL && gorc__stack_alloc(p, &g->stk, 0) != 0)
        gorc__fatal("runtime: promised stack for goroutine %llu missing",
                    (unsigned long long)g->id);
    g->sp = gorc__ctx_init(g->stk.lo + g->stk.size, g_start, g);
#ifdef GORC__TSAN
    g->tsan_fiber = __tsan_create_fiber(0);
#endif
}

/* Code run right after a goroutine gets the CPU back. */
static void resumed(void)
{
    gorc__m *m = gorc__getm();
    run_after(m);
    p_leave(m);
}

/* The scheduling-latency clock: nanotime in units of 64 ns, never 0 (0 means "not timed"), in
 * 32 bits so that it fits the record's first cache line. Differences are right up to 274 s. */
static inline uint32_t ready_clock(void)
{
    uint32_t t = (uint32_t)((uint64_t)gorc__nanotime() >> 6);
    return t ? t : 1;
}

/* One readying in 32 is timed: the clock is read twice per 32 switches, not twice per switch
 * (Go times one in 8; here the clock read was a measurable part of a channel handoff). */
static inline void note_ready(gorc__m *m, gorc__g *g, gorc__m *waker)
{
    GORC__TRACE(m, GORC__EV_GO_UNBLOCK, 0, -1, g->id, gorc__trace_gid(waker), 0);
    if (m == NULL)
        return;
    uint64_t w = atomic_load_explicit(&m->stats.wakeups, memory_order_relaxed) + 1;
    atomic_store_explicit(&m->stats.wakeups, w, memory_order_relaxed);
    if (GORC__UNLIKELY((w & 31) == 0))
        g->readytime = ready_clock();
}

__attribute__((noinline, cold)) static void sched_latency(gorc__m *m, gorc__p *p, int64_t d)
{
    gorc__schedlat_note(p->id, d); /* the debug page's finer histogram, when it is mounted */
    int b = 0;
    uint64_t us = d > 0 ? (uint64_t)d / 1000 : 0;
    if (us > 0)
        b = 64 - __builtin_clzll(us);
    if (b >= GORC__LAT_BUCKETS)
        b = GORC__LAT_BUCKETS - 1;
    gorc__stat_add(&m->stats.lat[b], 1);
    gorc__stat_add(&m->stats.latsum, d > 0 ? (uint64_t)d : 0);
}

/* local: g came off p's own run queue, so this thread readied it before the event it just
 * recorded for from; the tracer may then give g's start that event's time. */
static inline __attribute__((always_inline)) void execute(gorc__m *m, gorc__p *p, gorc__g *from,
                                                          gorc__g *g, bool from_dies, bool local)
{
    prepare_first_run(p, g);
    gorc__cstk_resume(g);
    atomic_store_explicit(&g->nrun, atomic_load_explicit(&g->nrun, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (GORC__UNLIKELY(atomic_load_explicit(&gorc__trace_gen, memory_order_relaxed) != 0)) {
        if (from != &m->g0 && local)
            gorc__trace_start_now(m, p->id, g->id); /* schedule_away, right after from's event */
        else
            gorc__trace_ev(m, GORC__EV_GO_START, 0, p->id, g->id, 0, 0);
    }
    if (GORC__UNLIKELY(g->readytime != 0)) {
        sched_latency(m, p, (int64_t)(uint32_t)(ready_clock() - g->readytime) << 6);
        g->readytime = 0;
    }
    atomic_store_explicit(&g->status, GORC__G_RUNNING, memory_order_relaxed);
    m->curg = g;
    atomic_store_explicit(&p->schedtick, p->schedtick + 1, memory_order_relaxed);
    switch_to(m, from, g, from_dies);
}

static uint32_t runq_len(gorc__p *p)
{
    return atomic_load_explicit(&p->runqtail, memory_order_relaxed) -
           atomic_load_explicit(&p->runqhead, memory_order_relaxed);
}

int gorc__ready_room(gorc__p *p)
{
    gorc__m *m = gorc__getm();
    if (m == NULL || m->p != p || m->sim != NULL)
        return INT_MAX;
    return GORC__RUNQ - (int)runq_len(p);
}

/* Whether due timers (the earliest due at t0) may wait while p has other goroutines to run.
 * Their goroutines would queue behind those anyway, and timers armed one per switch fall due
 * one per switch: going to g0 for each cost a round trip and a heap lock per sleep. So they
 * gather for up to GORC__TIMER_SLACK and are run together; and sleepers that
 * gorc__timers_run left in the heap for want of room in the run queue wait while a backlog
 * remains, until p->timerwait. */
static bool timers_wait(gorc__p *p, int64_t t0, int64_t now)
{
    uint32_t n = runq_len(p);
    return n > 0 && (now - t0 < GORC__TIMER_SLACK || (now < p->timerwait && n >= GORC__RUNQ / 4));
}

/* Quick look for the next goroutine, from a goroutine's stack. Due timers send us to g0: the
 * departing goroutine may still hold the lock it parks under, and a timer's function may need
 * that very lock (a timer firing on the channel being received from). g0 runs them after the
 * lock is released. */
static gorc__g *runnable_fast(gorc__p *p, bool *local)
{
    int64_t t0 = atomic_load_explicit(&p->timer0, memory_order_relaxed);
    if (t0 != 0) {
        int64_t now = gorc__nanotime();
        if (t0 <= now && !timers_wait(p, t0, now))
            return NULL;
    }
    gorc__g *g;
    if (p->schedtick % 61 == 0 && (g = globrunqget_locked(p, 1)) != NULL)
        return g;
    if ((g = runqget(p)) != NULL) {
        /* Readied by this thread, before the event it just recorded: the tracer may give its
         * start that event's time (one from the global queue may be younger). A flag in a
         * register, not in m: the untraced switch stores nothing for the tracer. */
        *local = true;
        return g;
    }
    return globrunqget_locked(p, 0);
}

/* The current goroutine stops running (it parked, yielded or exits, as m->after says). */
static void schedule_away(gorc__m *m, gorc__g *g)
{
    bool dies = m->after == GORC__AFTER_EXIT;
    gorc__stack_check(g, __builtin_frame_address(0));
    /* A simulation run's goroutines always go back to g0, the run's loop (src/sim/sim.c),
     * which picks the next one from the seed. */
    gorc__p *p = GORC__UNLIKELY(m->sim != NULL) ? NULL : in_sched(m) ? m->p : p_enter(m);
    if (p == NULL) {
        m->curg = &m->g0;
        switch_to(m, g, &m->g0, dies);
        resumed();
        return;
    }
    bool local = false;
    gorc__g *next = runnable_fast(p, &local);
    if (next && (next->sp != NULL || next->stk.lo != NULL || p->nstkcache > 0) &&
        atomic_load_explicit(&next->cstk, memory_order_relaxed) != GORC__CSTK_COMPACTED) {
        execute(m, p, g, next, dies, local);
    } else {
        /* Nothing to run, or the next goroutine needs a fresh stack (page faults, perhaps an
         * mmap) or its compacted stack restored (a system call): let g0 do that after
         * releasing what we parked under, not while holding it. */
        m->nextg = next;
        m->curg = &m->g0;
        switch_to(m, g, &m->g0, dies);
    }
    resumed();
}

/* ------------------------------------------------------------------------------------------
 * Parking and readying
 * ---------------------------------------------------------------------------------------- */

static void park_foreign(gorc__g *g, void (*unlock)(void *), void *arg)
{
    atomic_store(&g->futex, 0);
    atomic_store(&g->status, GORC__G_WAITING);
    if (unlock)
        unlock(arg);
    while (atomic_load(&g->futex) == 0)
        gorc__futex_wait(&g->futex, 0, -1);
    atomic_store(&g->status, GORC__G_RUNNING);
}

/* A park while the block or mutex profile is on: timed for gorc__block_event. */
__attribute__((noinline)) static void park_timed(gorc__m *m, gorc__g *g, int reason)
{
    int64_t t0 = gorc__nanotime();
    schedule_away(m, g);
    gorc__block_event(reason, gorc__nanotime() - t0);
}

/* After the switch-out call of a function whose frame tracebacks start from (parkfp): keeps
 * the call from becoming a tail call, which would pop that frame before the switch and let
 * the scheduler's frameless code overwrite it while the goroutine waits. */
#define GORC__KEEP_FRAME() __asm__ volatile("" ::: "memory")

/* gorc__park with a hook on (gorc__park_hooks): leak bookkeeping, the tracer's block event,
 * timing for the block and mutex profiles. Out of line so that the common park stays short. */
__attribute__((noinline)) static void park_hooked(gorc__m *m, gorc__g *g, int reason,
                                                  void (*unlock)(void *), void *arg)
{
    if (atomic_load_explicit(&gorc__leak_on, memory_order_relaxed)) {
        gorc__stamp_park(g);
        g->waiton = reason == GORC__W_SELECT || reason == GORC__W_SLEEP ? NULL : arg;
    }
    GORC__TRACE(m, GORC__EV_GO_BLOCK, reason, -1, g->id,
                reason == GORC__W_SELECT || reason == GORC__W_SLEEP ? 0 : (uintptr_t)arg, 0);
    atomic_store_explicit(&g->status, GORC__G_WAITING, memory_order_relaxed);
    m->after = GORC__AFTER_UNLOCK;
    m->after_unlock = unlock;
    m->after_arg = arg;
    m->after_g = g;
    if (atomic_load_explicit(&gorc__blockprof, memory_order_relaxed) != 0)
        park_timed(m, g, reason);
    else
        schedule_away(m, g);
}

void gorc__park(int reason, void (*unlock)(void *), void *arg)
{
    gorc__m *m = gorc__getm();
    if (m == NULL || m->curg == &m->g0) {
        park_foreign(foreign_g(), unlock, arg);
        return;
    }
    gorc__g *g = m->curg;
    g->waitreason = (uint8_t)reason;
    /* Left as it is when the goroutine resumes: the other switches out (gorc_yield,
     * gorc_blocking_exit) set their own. __builtin_frame_address gives this function a frame
     * although proc.c is built without frame pointers. */
    g->parkfp = __builtin_frame_address(0);
    if (GORC__UNLIKELY(atomic_load_explicit(&gorc__park_hooks, memory_order_relaxed) != 0)) {
        park_hooked(m, g, reason, unlock, arg);
        GORC__KEEP_FRAME();
        return;
    }
    atomic_store_explicit(&g->status, GORC__G_WAITING, memory_order_relaxed);
    m->after = GORC__AFTER_UNLOCK;
    m->after_unlock = unlock;
    m->after_arg = arg;
    m->after_g = g;
    schedule_away(m, g);
    GORC__KEEP_FRAME();
}

void gorc__ready(gorc__g *g)
{
    if (g->foreign) {
        atomic_store(&g->futex, 1);
        gorc__futex_wake(&g->futex, 1);
        return;
    }
    g->waitreason = GORC__W_NONE;
    gorc__m *m = gorc__getm();
    note_ready(m, g, m);
    atomic_store_explicit(&g->status, GORC__G_RUNNABLE, memory_order_relaxed);
    if (GORC__UNLIKELY(g->insim)) {
        gorc__sim_ready(g);
        return;
    }
    gorc__p *p = NULL;
    bool held = m && in_sched(m);
    if (m)
        p = held ? m->p : p_enter(m);
    if (p) {
        runqput(p, g, true);
        if (!held)
            p_leave(m);
    } else {
        globrunqput(g);
    }
    gorc__wakep();
}

/* A batch goes to the P's own queue, whose length bounds it (gorc__ready_room): its
 * goroutines run soon, while what is loaded now is still in cache. Their saved frames, from
 * the saved stack pointer to the end of its page, are as cold as their records. */
static void prefetch_frames(gorc__g *g)
{
    char *sp = g->sp;
    if (sp == NULL)
        return;
    char *end = (char *)(((uintptr_t)sp | 4095) + 1);
    for (int k = 0; k < 6 && sp < end; k++, sp += 64)
        __builtin_prefetch(sp);
}

void gorc__ready_batch(gorc__g *const *gs, int n)
{
    if (GORC__UNLIKELY(n > 0 && gs[0]->insim)) {
        /* One heap's timers: a run's goroutines are all in its own P's heap. */
        for (int i = 0; i < n; i++)
            gorc__ready(gs[i]);
        return;
    }
    gorc__m *m = gorc__getm();
    gorc__p *p = NULL;
    bool held = m && in_sched(m);
    if (m)
        p = held ? m->p : p_enter(m);
    for (int i = 0; i < n; i++) {
        gorc__g *g = gs[i];
        if (i + 2 < n)
            __builtin_prefetch(gs[i + 2], 1);
        g->waitreason = GORC__W_NONE;
        note_ready(m, g, m);
        atomic_store_explicit(&g->status, GORC__G_RUNNABLE, memory_order_relaxed);
        if (p) {
            runqput(p, g, false);
            prefetch_frames(g);
        }
    }
    if (p) {
        if (!held)
            p_leave(m);
    } else {
        gorc__lock_acquire(&gorc__s.lock);
        globrunqput_n(gs, n);
        gorc__lock_release(&gorc__s.lock);
    }
    gorc__wakep();
}

void gorc__inject(gorc__g *head, gorc__g *tail, int n)
{
    (void)tail;
    if (n == 0)
        return;
    gorc__g *buf[64], *next;
    int k = 0;
    gorc__m *m = gorc__getm();
    gorc__lock_acquire(&gorc__s.lock);
    for (gorc__g *g = head; g; g = next) {
        next = g->schedlink;
        note_ready(m, g, NULL);
        atomic_store_explicit(&g->status, GORC__G_RUNNABLE, memory_order_relaxed);
        if (GORC__UNLIKELY(g->insim)) { /* I/O of a simulation run's goroutine on a real fd */
            gorc__sim_ready(g);
            if (k > 0 && next == NULL)
                globrunqput_n(buf, k);
            continue;
        }
        buf[k++] = g;
        if (k == 64 || next == NULL) {
            globrunqput_n(buf, k);
            k = 0;
        }
    }
    gorc__lock_release(&gorc__s.lock);
    for (int i = 0; i < n && atomic_load(&gorc__s.npidle) > 0; i++)
        startm(NULL, false);
}

/* ------------------------------------------------------------------------------------------
 * Goroutine entry and exit
 * ---------------------------------------------------------------------------------------- */

static void g_start(void *arg)
{
    gorc__g *g = arg;
    /* A frame, although proc.c is built without frame pointers: it ends every goroutine's
     * frame chain (the context's first frame pointer is 0), so a walk stops here instead of
     * following whatever this function kept in the frame-pointer register. */
    __asm__ volatile("" ::"r"(__builtin_frame_address(0)));
#ifdef GORC__ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    resumed();
    if (g->is_main)
        atomic_store(&gorc__s.main_active, 1); /* deadlock detection covers its lifetime */
    g->fn(g->arg);
    /* The goroutine is over; gorc__getm() again because fn may have moved us. */
    gorc__m *m = gorc__getm();
    g = m->curg;
    if (g->is_main) {
        atomic_store(&gorc__s.main_active, 0);
        atomic_store(&mainwait, 1);
        gorc__futex_wake(&mainwait, 1);
    }
    GORC__TRACE(m, GORC__EV_GO_END, 0, -1, g->id, 0, 0);
    atomic_store(&g->status, GORC__G_DEAD);
    m->after = GORC__AFTER_EXIT;
    m->after_g = g;
    schedule_away(m, g);
    __builtin_unreachable();
}

/* Set, with release ordering, once gorc__init has run (init_err is settled by then): every
 * spawn asks, and a load is cheaper than pthread_once's call. */
static _Atomic bool init_done;

static void init_once_fn(void)
{
    gorc__init();
    atomic_store_explicit(&init_done, true, memory_order_release);
}

int gorc__ensure_init(void)
{
    if (GORC__LIKELY(atomic_load_explicit(&init_done, memory_order_acquire)))
        return init_err;
    if (pthread_once(&init_once, init_once_fn) != 0)
        return -EAGAIN;
    return init_err;
}

static int spawn(gorc_fn fn, void *arg, size_t stack_req, bool is_main, uintptr_t pc, bool system)
{
    int rc = gorc__ensure_init();
    if (rc != 0)
        return rc;
    /* The stack is settled now, so that running out of memory is the spawner's error, not a
     * crash later: custom sizes are mapped, default ones promised. */
    gorc__stack stk = {0};
    bool custom = stack_req != 0 && gorc__stack_custom(stack_req); /* no call for the default */
    if (custom && (rc = gorc__stack_alloc(NULL, &stk, stack_req)) != 0)
        return rc;
    gorc__m *m = gorc__getm();
    if (GORC__UNLIKELY(gorc__sim_on()) && m && m->sim && m->curg != &m->g0 &&
        gorc__sim_fault(GORC_SIM_FAULT_SPAWN)) {
        if (custom)
            gorc__stack_free(NULL, &stk);
        return -ENOMEM;
    }
    if (m == NULL && !is_main)
        foreign_g(); /* a foreign thread spawning goroutines counts as a possible waker */
    if (m && GORC__UNLIKELY(atomic_load_explicit(&m->preempt, memory_order_relaxed) ==
                            GORC__PREEMPT_ASKED))
        atomic_store_explicit(&m->preempt, GORC__PREEMPT_ALIVE, memory_order_relaxed);
    bool held = m && in_sched(m);
    gorc__p *p = NULL;
    if (m)
        p = held ? m->p : p_enter(m);
    if (!custom && (rc = gorc__stack_promise(p)) != 0) {
        if (p && !held)
            p_leave(m);
        return rc;
    }
    gorc__g *g = galloc(p);
    if (g == NULL) {
        if (custom)
            gorc__stack_free(NULL, &stk);
        else
            gorc__stack_unpromise(p);
        if (p && !held)
            p_leave(m);
        return -ENOMEM;
    }
    /* Only the record's first two cache lines are written for an ordinary goroutine: the
     * stack's lo is NULL already for a default-size one, and the simulation's and leak tracker's
     * fields were cleared by gfree (or calloc) or never set. */
    g->fn = fn;
    g->arg = arg;
    g->sp = NULL;
    if (custom)
        g->stk = stk;
    g->is_main = is_main;
    g->waitreason = GORC__W_NONE;
    g->spawnpc = pc;
    g->system = system;
    g->parent = m && m->curg != &m->g0 ? m->curg->id : 0;
    if (GORC__UNLIKELY(atomic_load_explicit(&gorc__leak_on, memory_order_relaxed)))
        g->waiton = NULL;
    g->id = atomic_fetch_add_explicit(&gorc__s.goidgen, 1, memory_order_relaxed) + 1;
    if (GORC__UNLIKELY(m && m->sim)) { /* the goroutines a run's goroutines start are the run's */
        g->sim = m->sim;
        g->insim = true;
        g->simhost = m->curg != &m->g0 ? m->curg->simhost : 0;
    }
    /* One spawn in 32 is timed to its first run, picked by id: spawns are counted by the id
     * generator already (metrics.c), so the hot path keeps no counter of its own. parkfp need
     * not be cleared: no traceback looks at it before the goroutine first switches out, and
     * every switch out sets it. */
    g->readytime = GORC__UNLIKELY((g->id & 31) == 0) ? ready_clock() : 0;
    GORC__TRACE(m, GORC__EV_GO_CREATE, 0, -1, g->id, (uintptr_t)fn, (uint32_t)g->parent);
    count_goroutines(p, 1);
    atomic_store_explicit(&g->status, GORC__G_RUNNABLE, memory_order_release);
    if (GORC__UNLIKELY(g->insim)) {
        gorc__sim_ready(g);
        if (!held)
            p_leave(m);
        return 0;
    }
    if (p) {
        runqput(p, g, true);
        if (!held)
            p_leave(m);
    } else {
        globrunqput(g);
    }
    gorc__wakep();
    return 0;
}

uint64_t gorc__last_goid(void)
{
    return atomic_load_explicit(&gorc__s.goidgen, memory_order_relaxed);
}

int gorc__go_from(gorc_fn fn, void *arg, uintptr_t pc, bool system)
{
    if (fn == NULL)
        return -EINVAL;
    return spawn(fn, arg, 0, false, pc, system);
}

int gorc_go(gorc_fn fn, void *arg)
{
    if (fn == NULL)
        return -EINVAL;
    return spawn(fn, arg, 0, false, (uintptr_t)__builtin_return_address(0), false);
}

int gorc_go_ex(gorc_fn fn, void *arg, const gorc_go_opts *attr)
{
    if (fn == NULL)
        return -EINVAL;
    size_t ss = attr ? attr->stack_size : 0;
    if (ss != 0 && (ss < 4096 || ss > ((size_t)1 << 34)))
        return -EINVAL;
    return spawn(fn, arg, ss, false, (uintptr_t)__builtin_return_address(0), false);
}

uint64_t gorc_id(void)
{
    gorc__m *m = gorc__getm();
    if (m == NULL || m->curg == &m->g0)
        return 0;
    return m->curg->id;
}

void gorc__preempted(gorc__m *m)
{
    if (GORC__UNLIKELY(m->sim)) { /* a simulation run asks for preemption points this way */
        gorc__sim_point();
        return;
    }
    atomic_store_explicit(&m->preempt, GORC__PREEMPT_NONE, memory_order_relaxed);
    if (m->curg != &m->g0)
        gorc_yield();
}

void gorc_yield(void)
{
    gorc__m *m = gorc__getm();
    if (m == NULL || m->curg == &m->g0) {
        sched_yield();
        return;
    }
    gorc__p *p = m->p;
    if (p && runqempty(p) && atomic_load(&gorc__s.runqsize) == 0 && !m->sim)
        return;
    gorc__g *g = m->curg;
    /* Tracebacks start from this function's frame (its caller first): the switch path below
     * is built without frame pointers, so the frame the switch saved means nothing. */
    g->parkfp = __builtin_frame_address(0);
    GORC__TRACE(m, GORC__EV_GO_STOP, GORC__STOP_YIELD, -1, g->id, 0, 0);
    m->after = GORC__AFTER_YIELD;
    m->after_g = g;
    schedule_away(m, g);
    GORC__KEEP_FRAME();
}

/* ------------------------------------------------------------------------------------------
 * Declared blocking calls (Go's entersyscallblock / exitsyscall)
 * ---------------------------------------------------------------------------------------- */

/* Give the P away for the duration of a blocking call: to a new M if it has anything to run
 * or timers to watch, else to the idle list. */
static void handoffp(gorc__p *p)
{
    if (!runqempty(p) || atomic_load(&gorc__s.runqsize) > 0 || atomic_load(&p->timer0) != 0) {
        startm(p, false);
        return;
    }
    gorc__lock_acquire(&gorc__s.lock);
    pidleput(p);
    gorc__lock_release(&gorc__s.lock);
    /* A poller sleeping on an old deadline may now be the only M left to watch timers. */
    gorc__netpoll_break();
}

void gorc_blocking_enter(void)
{
    gorc__m *m = gorc__getm();
    /* In a simulation run the call blocks the run's only thread: nothing else runs (and the
     * virtual clock stands still) until it returns. */
    if (m == NULL || m->curg == &m->g0 || m->inblocking || m->sim)
        return;
    m->inblocking = true;
    m->curg->waitreason = GORC__W_BLOCKING;
    gorc__stat_add(&m->stats.blocking, 1);
    GORC__TRACE(m, GORC__EV_SYSCALL_BEGIN, 0, -1, m->curg->id, 0, 0);
    /* Counted like an M whose P was taken: it still runs a goroutine that can wake others. */
    atomic_fetch_add(&gorc__s.nlostp, 1);
    gorc__p *p = p_enter(m);
    if (p == NULL) {
        if (m->lostp) {
            /* The monitor already took the P and counted us; don't count twice. */
            m->lostp = false;
            atomic_fetch_sub(&gorc__s.nlostp, 1);
        }
        return;
    }
    m->p = NULL;
    atomic_store(&p->owner, 0); /* before leaving the scheduler: the monitor must not take it */
    GORC__TRACE(m, GORC__EV_PROC_STOP, 0, p->id, 0, 0, 0);
    p_leave(m);
    handoffp(p);
}

void gorc_blocking_exit(void)
{
    gorc__m *m = gorc__getm();
    if (m == NULL || !m->inblocking)
        return;
    m->inblocking = false;
    gorc__g *g = m->curg;
    g->waitreason = GORC__W_NONE;
    GORC__TRACE(m, GORC__EV_SYSCALL_END, 0, -1, g->id, 0, 0);
    gorc__lock_acquire(&gorc__s.lock);
    gorc__p *p = pidleget();
    gorc__lock_release(&gorc__s.lock);
    if (p) {
        acquirep(m, p);
        atomic_fetch_sub(&gorc__s.nlostp, 1);
        p_leave(m);
        return;
    }
    /* No P free: queue ourselves and let this M park (m_loop uncounts it). */
    GORC__TRACE(m, GORC__EV_GO_STOP, GORC__STOP_NOP, -1, g->id, 0, 0);
    m->lostp = true;
    /* Tracebacks start from this function's frame (its caller first): the switch path below
     * is built without frame pointers, so the frame the switch saved means nothing. */
    g->parkfp = __builtin_frame_address(0);
    m->after = GORC__AFTER_YIELD;
    m->after_g = g;
    schedule_away(m, g);
    GORC__KEEP_FRAME();
}

void *gorc_blocking(void *(*fn)(void *), void *arg)
{
    gorc_blocking_enter();
    void *r = fn(arg);
    gorc_blocking_exit();
    return r;
}

/* Ended first: a goroutine that ends between the two sums has been counted as spawned, so the
 * difference never goes below the goroutines alive at the second. */
uint64_t gorc__goroutines_ended(void)
{
    uint64_t n = atomic_load(&gorc__s.nended);
    for (int i = 0; i < gorc__s.nprocs; i++)
        n += atomic_load_explicit(&gorc__s.allp[i].nended, memory_order_relaxed);
    return n;
}

int64_t gorc_count(void)
{
    uint64_t ended = gorc__goroutines_ended();
    uint64_t n = atomic_load(&gorc__s.nspawned);
    for (int i = 0; i < gorc__s.nprocs; i++)
        n += atomic_load_explicit(&gorc__s.allp[i].nspawned, memory_order_relaxed);
    int64_t live = (int64_t)(n - ended);
    if (GORC__UNLIKELY(gorc__sim_on())) /* a run's own P is not one of allp */
        live += gorc__sim_count();
    return live;
}

int gorc__nprocs(void)
{
    return gorc__s.nprocs;
}

gorc__p *gorc__p_at(int i)
{
    return &gorc__s.allp[i];
}

int gorc__nprocs_idle(void)
{
    return atomic_load_explicit(&gorc__s.npidle, memory_order_relaxed) +
           atomic_load_explicit(&gorc__s.nmspinning, memory_order_relaxed);
}

/* Dekker again, with the poller (poll_ready): the poller stores npolling, then reads every
 * P's timer0; a timer's adder stored timer0, then reads npolling here. Without a full barrier
 * between each side's store and load, both can miss the other - the poller sleeps with no
 * timeout while a timer is due, and nothing breaks it out (seen as a test that hung until a
 * debugger's attach interrupted epoll_wait). */
void gorc__poller_poke(int64_t when)
{
    full_fence();
    if (atomic_load(&gorc__s.npolling) == 0)
        return;
    int64_t pw = atomic_load(&gorc__s.pollwhen);
    if (pw <= 0 || when < pw)
        gorc__netpoll_break();
}

int gorc_maxprocs(void)
{
    if (gorc__ensure_init() != 0)
        return 0;
    return gorc__s.nprocs;
}

/* ------------------------------------------------------------------------------------------
 * The g0 loop: finding work, spinning, polling, parking
 * ---------------------------------------------------------------------------------------- */

static void stop_spinning(gorc__m *m)
{
    if (m->spinning) {
        m->spinning = false;
        /* We found work while others may be parked: wake another spinner for the rest. */
        if (atomic_fetch_sub(&gorc__s.nmspinning, 1) == 1)
            gorc__wakep();
    }
}

static gorc__g *steal_work(gorc__p *p, int64_t now)
{
    int n = gorc__s.nprocs;
    for (int round = 0; round < 4; round++) {
        bool last = round == 3;
        int off = (int)(gorc__rand() % (uint64_t)n);
        for (int i = 0; i < n; i++) {
            gorc__p *p2 = &gorc__s.allp[(off + i) % n];
            if (p2 == p)
                continue;
            if (last) {
                int64_t t0 = atomic_load(&p2->timer0);
                if (t0 != 0 && t0 <= now) {
                    gorc__timers_run(p2, now);
                    gorc__g *g = runqget(p);
                    if (g)
                        return g;
                }
            }
            gorc__g *g = runqsteal(p, p2, last);
            if (g) {
                gorc__stat_add(&gorc__getm()->stats.steals, 1);
                return g;
            }
        }
    }
    return NULL;
}

/* Run the expired timers of p and of every idle P (nobody else will; the poller sleeps until
 * the earliest of them). A running P's own M runs its timers at its next switch, and other Ms
 * run them only when they find nothing else to do (steal_work): an M that ran them as a
 * matter of course fought the P's own M for the heap's lock, and readied the P's sleepers on
 * its own P, away from the caches that held them. */
static void run_due_timers(gorc__p *p, int64_t now)
{
    for (int i = 0; i < gorc__s.nprocs; i++) {
        gorc__p *p2 = &gorc__s.allp[i];
        int64_t t0 = atomic_load(&p2->timer0);
        if (t0 != 0 && t0 <= now && (p2 == p || atomic_load(&p2->owner) == 0))
            gorc__timers_run(p2, now);
    }
}

static gorc__g *poll_ready(bool block, gorc__m *m);

static gorc__g *findrunnable(gorc__m *m)
{
    gorc__g *g;
top:;
    gorc__p *p = m->p;
    int64_t now = gorc__nanotime();
    run_due_timers(p, now);
    if (p->schedtick % 61 == 0 && (g = globrunqget_locked(p, 1)) != NULL)
        goto found;
    if ((g = runqget(p)) != NULL)
        goto found;
    if ((g = globrunqget_locked(p, 0)) != NULL)
        goto found;
    if ((g = poll_ready(false, m)) != NULL)
        goto found;
    int busy = gorc__s.nprocs - atomic_load(&gorc__s.npidle);
    if (m->spinning || 2 * atomic_load(&gorc__s.nmspinning) < busy) {
        if (!m->spinning) {
            m->spinning = true;
            atomic_fetch_add(&gorc__s.nmspinning, 1);
        }
        if ((g = steal_work(p, now)) != NULL)
            goto found;
    }

    /* Nothing to do: give up the P. */
    gorc__lock_acquire(&gorc__s.lock);
    if ((g = globrunqget(p, 0)) != NULL) {
        gorc__lock_release(&gorc__s.lock);
        goto found;
    }
    m->p = NULL;
    pidleput(p);
    gorc__lock_release(&gorc__s.lock);
    GORC__TRACE(m, GORC__EV_PROC_STOP, 0, p->id, 0, 0, 0);

    bool was_spinning = m->spinning;
    if (was_spinning) {
        m->spinning = false;
        atomic_fetch_sub(&gorc__s.nmspinning, 1);
        /* A goroutine may have been queued after we looked and before we became idle, by an M
         * that saw us spinning and so woke nobody: look once more. */
        for (int i = 0; i < gorc__s.nprocs; i++) {
            if (!runqempty(&gorc__s.allp[i]) || atomic_load(&gorc__s.runqsize) > 0) {
                gorc__lock_acquire(&gorc__s.lock);
                gorc__p *p2 = pidleget();
                gorc__lock_release(&gorc__s.lock);
                if (p2) {
                    acquirep(m, p2);
                    m->spinning = true;
                    atomic_fetch_add(&gorc__s.nmspinning, 1);
                    goto top;
                }
                break;
            }
        }
    }
    check_dead();

    /* Block: as the poller if nobody else is, else on our futex. */
    g = poll_ready(true, m);
    if (m->p != NULL) {
        if (g)
            goto found;
        goto top;
    }
    gorc__lock_acquire(&gorc__s.lock);
    m->schedlink = gorc__s.midle;
    gorc__s.midle = m;
    gorc__lock_release(&gorc__s.lock);
    check_dead();
    mpark_wait(m);
    acquirep(m, m->nextp);
    m->nextp = NULL;
    goto top;

found:
    stop_spinning(m);
    return g;
}

/* Goroutines the poller readied, for an M holding p: run the first, queue the rest on p (the
 * run queue spills to the global one if needed) and wake one spinner to share them, rather
 * than starting an M per goroutine. */
static gorc__g *take_batch(gorc__p *p, gorc__g *head)
{
    if (GORC__UNLIKELY(gorc__sim_on())) {
        /* A simulation run's goroutines go to the run, the others as usual. */
        gorc__g *keep = NULL, *last = NULL, *nx;
        for (gorc__g *g = head; g; g = nx) {
            nx = g->schedlink;
            if (g->sim) {
                atomic_store_explicit(&g->status, GORC__G_RUNNABLE, memory_order_relaxed);
                gorc__sim_ready(g);
                continue;
            }
            g->schedlink = NULL;
            if (last)
                last->schedlink = g;
            else
                keep = g;
            last = g;
        }
        if ((head = keep) == NULL)
            return NULL;
    }
    gorc__g *next;
    for (gorc__g *g = head->schedlink; g; g = next) {
        next = g->schedlink;
        note_ready(NULL, g, NULL);
        atomic_store_explicit(&g->status, GORC__G_RUNNABLE, memory_order_relaxed);
        runqput(p, g, false);
    }
    note_ready(NULL, head, NULL);
    atomic_store_explicit(&head->status, GORC__G_RUNNABLE, memory_order_relaxed);
    if (head->schedlink)
        gorc__wakep();
    return head;
}

/* Poll for I/O and timers. Without block: a quick non-blocking look (only if goroutines wait
 * on I/O). With block (and no P): become the poller unless another M is, sleep until the next
 * timer or I/O, then try to get a P. Returns a readied goroutine (the rest are queued on the
 * P, see take_batch) with m->p set, or NULL. */
static gorc__g *poll_ready(bool block, gorc__m *m)
{
    gorc__g *head, *tail;
    int n = 0;
    if (!block) {
        if (gorc__netpoll_waiters() == 0 || atomic_load(&gorc__s.npolling) != 0)
            return NULL;
        head = gorc__netpoll(0, &tail, &n);
        atomic_store(&gorc__s.lastpoll, gorc__nanotime());
        gorc__stat_add(&m->stats.pollwaits, 1);
        gorc__stat_add(&m->stats.pollready, (uint64_t)n);
        if (n == 0)
            return NULL;
        return take_batch(m->p, head);
    }
    int32_t zero = 0;
    if (!atomic_compare_exchange_strong(&gorc__s.npolling, &zero, 1))
        return NULL;
    full_fence(); /* npolling before timer0: see gorc__poller_poke */
    int64_t when = gorc__timers_next();
    atomic_store(&gorc__s.pollwhen, when ? when : -1);
    int64_t timeout = -1;
    if (when) {
        timeout = when - gorc__nanotime();
        if (timeout < 0)
            timeout = 0;
    }
    GORC__TRACE(m, GORC__EV_POLL_BEGIN, 0, -1, 0, timeout, 0);
    head = gorc__netpoll(timeout, &tail, &n);
    GORC__TRACE(m, GORC__EV_POLL_END, 0, -1, 0, 0, (uint32_t)n);
    atomic_store(&gorc__s.lastpoll, gorc__nanotime());
    gorc__stat_add(&m->stats.pollwaits, 1);
    gorc__stat_add(&m->stats.pollready, (uint64_t)n);
    atomic_store(&gorc__s.pollwhen, 0);
    atomic_store(&gorc__s.npolling, 0);
    gorc__lock_acquire(&gorc__s.lock);
    gorc__p *p = pidleget();
    gorc__lock_release(&gorc__s.lock);
    if (p == NULL) {
        gorc__inject(head, tail, n);
        return NULL;
    }
    acquirep(m, p);
    if (n == 0)
        return NULL;
    return take_batch(p, head);
}

static void m_loop(gorc__m *m)
{
    for (;;) {
        run_after(m);
        if (m->lostp) {
            m->lostp = false;
            atomic_fetch_sub(&gorc__s.nlostp, 1);
        }
        if (m->p == NULL) {
            gorc__lock_acquire(&gorc__s.lock);
            gorc__p *p = pidleget();
            if (p == NULL) {
                m->schedlink = gorc__s.midle;
                gorc__s.midle = m;
            }
            gorc__lock_release(&gorc__s.lock);
            if (p == NULL) {
                mpark_wait(m);
                p = m->nextp;
                m->nextp = NULL;
            }
            acquirep(m, p);
        }
        /* nextg was taken from this P's queue by schedule_away, which held the P throughout. */
        gorc__g *g = m->nextg;
        m->nextg = NULL;
        if (g == NULL)
            g = findrunnable(m);
        execute(m, m->p, &m->g0, g, false, false);
    }
}

/* The calling thread becomes m's: its g0 is the thread's own stack. */
static void m_thread_init(gorc__m *m)
{
    gorc__tls_m = m;
    m->curg = &m->g0;
    m->thread = pthread_self();
    atomic_store(&m->tid, (int)gettid());
    gorc__lock_acquire(&gorc__s.lock);
    m->allnext = gorc__s.allm;
    __atomic_store_n(&gorc__s.allm, m, __ATOMIC_RELEASE);
    gorc__lock_release(&gorc__s.lock);
    gorc__prof_thread_start(m);
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *lo;
        size_t sz;
        pthread_attr_getstack(&attr, &lo, &sz);
        m->g0_lo = lo;
        m->g0_size = sz;
        pthread_attr_destroy(&attr);
    }
#ifdef GORC__TSAN
    m->g0.tsan_fiber = __tsan_get_current_fiber();
#endif
    gorc__stack_thread_init();
}

static void *mstart(void *arg)
{
    gorc__m *m = arg;
    m_thread_init(m);
    gorc__p *p = m->nextp;
    m->nextp = NULL;
    if (p)
        acquirep(m, p);
    m_loop(m);
    return NULL;
}

/* ------------------------------------------------------------------------------------------
 * Deadlock detection and goroutine dumps
 * ---------------------------------------------------------------------------------------- */

void gorc__each_g(void (*fn)(gorc__g *g, void *arg), void *arg)
{
    gorc__lock_acquire(&gorc__s.lock);
    gorc__g *all = gorc__s.allg;
    gorc__lock_release(&gorc__s.lock);
    for (gorc__g *g = all; g; g = g->allnext) {
        uint32_t s = atomic_load(&g->status);
        if (s != GORC__G_FREE && s != GORC__G_DEAD)
            fn(g, arg);
    }
}

void gorc__sched_snapshot(gorc__schedsnap *s)
{
    memset(s, 0, sizeof *s);
    s->nprocs = gorc__s.nprocs;
    s->npidle = atomic_load(&gorc__s.npidle);
    s->nmspinning = atomic_load(&gorc__s.nmspinning);
    s->nforeign = atomic_load(&gorc__s.nforeign);
    s->npolling = atomic_load(&gorc__s.npolling);
    s->runq_global = atomic_load(&gorc__s.runqsize);
    s->retakes = atomic_load(&gorc__s.retakes);
    gorc__lock_acquire(&gorc__s.lock);
    s->mcount = gorc__s.mcount;
    gorc__lock_release(&gorc__s.lock);
    for (int i = 0; i < gorc__s.nprocs; i++) {
        gorc__p *p = &gorc__s.allp[i];
        uint32_t h = atomic_load(&p->runqhead), t = atomic_load(&p->runqtail);
        s->runq_local += (int32_t)(t - h) > 0 ? (int32_t)(t - h) : 0;
        if (atomic_load(&p->runnext))
            s->runq_local++;
    }
}

void gorc_dump(void)
{
    if (pthread_once(&init_once, init_once_fn) != 0)
        return;
    gorc__dump_all(stderr, false);
    fflush(stderr);
}

/* Nothing runs and nothing could make anything run. main_active is read last: seeing every P
 * idle first means the main goroutine was not running then, and still alive afterwards means
 * it had not finished. */
static bool looks_dead(void)
{
    if (atomic_load(&gorc__s.npidle) != gorc__s.nprocs || atomic_load(&gorc__s.nlostp) != 0 ||
        atomic_load(&gorc__s.nforeign) != 0 || atomic_load(&gorc__s.runqsize) != 0)
        return false;
    if (gorc__timers_next() != 0 || gorc__netpoll_waiters() != 0)
        return false;
    for (int i = 0; i < gorc__s.nprocs; i++)
        if (!runqempty(&gorc__s.allp[i]))
            return false;
    return atomic_load(&gorc__s.main_active) != 0;
}

static uint64_t total_ticks(void)
{
    uint64_t sum = 0;
    for (int i = 0; i < gorc__s.nprocs; i++)
        sum += atomic_load(&gorc__s.allp[i].schedtick);
    return sum;
}

static void check_dead(void)
{
    if (!atomic_load(&gorc__s.main_active) || !looks_dead())
        return;
    /* The conditions were read one by one, not as one snapshot. Look again a little later: a
     * true deadlock is still there, and any switch in between shows in the Ps' ticks. */
    uint64_t ticks = total_ticks();
    usleep(2000);
    if (!looks_dead() || total_ticks() != ticks)
        return;
    int zero = 0;
    if (!atomic_compare_exchange_strong(&dead_reported, &zero, 1))
        return;
    fprintf(stderr, "fatal error: all goroutines are asleep - deadlock!\n\n");
    if (gorc__traceback_level() > 0)
        gorc__dump_all(stderr, false);
    fflush(stderr);
    _exit(2);
}

/* ------------------------------------------------------------------------------------------
 * The monitor thread
 * ---------------------------------------------------------------------------------------- */

static bool p_has_work(gorc__p *p)
{
    return !runqempty(p) || atomic_load(&gorc__s.runqsize) > 0 || atomic_load(&p->timer0) != 0;
}

/* Take p away from m (see "P ownership"); under sched.lock. */
static bool try_retake(gorc__p *p, gorc__m *m, uint32_t owner)
{
    if (atomic_load(&p->owner) != owner)
        return false;
    atomic_store(&p->owner, 0);
    remote_fence();
    if (atomic_load_explicit(&m->insched, memory_order_acquire)) {
        atomic_store(&p->owner, owner); /* it entered the scheduler after all */
        return false;
    }
    return true;
}

/* The monitor moves p's queued goroutines to the global queue, where the other Ps find them
 * (each looks there at least every 61 switches): p's goroutine is busy in the runtime without
 * switching, and another thread for p would only compete with it for a CPU. */
static void donate(gorc__p *p)
{
    gorc__g *batch[GORC__RUNQ / 2 + 1];
    uint32_t n;
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_acquire);
        n = t - h;
        n = n - n / 2;
        if (n > GORC__RUNQ / 2)
            continue; /* read an inconsistent head/tail pair */
        for (uint32_t i = 0; i < n; i++)
            batch[i] = atomic_load_explicit(&p->runq[(h + i) % GORC__RUNQ], memory_order_relaxed);
        if (atomic_compare_exchange_strong_explicit(&p->runqhead, &h, h + n, memory_order_release,
                                                    memory_order_relaxed))
            break;
    }
    gorc__g *next = atomic_load(&p->runnext);
    if (next && atomic_compare_exchange_strong(&p->runnext, &next, NULL))
        batch[n++] = next;
    if (n == 0)
        return;
    gorc__lock_acquire(&gorc__s.lock);
    globrunqput_n(batch, (int)n);
    gorc__lock_release(&gorc__s.lock);
    gorc__wakep();
}

/* Some P other than p is idle or switched goroutines in the last RETAKE_NS. */
static bool others_progress(const gorc__p *p, int64_t now)
{
    for (int i = 0; i < gorc__s.nprocs; i++) {
        gorc__p *p2 = &gorc__s.allp[i];
        if (p2 != p && (p2->monitor_when == 0 || now - p2->monitor_when < RETAKE_NS))
            return true;
    }
    return false;
}

/* Every P whose goroutine has not come back to the scheduler for 10 ms while other work waits
 * for the P: first ask it to yield (after 5 ms); then, if it answered that it is busy in the
 * runtime, hand the P's queue to the others; otherwise (stuck in C code or the kernel, or no
 * other P is making progress) give the P to another thread. */
static void retake(int64_t now)
{
    for (int i = 0; i < gorc__s.nprocs; i++) {
        gorc__p *p = &gorc__s.allp[i];
        uint32_t owner = atomic_load(&p->owner);
        gorc__m *m = atomic_load(&p->m);
        if (owner == 0 || m == NULL || in_sched(m)) {
            p->monitor_when = 0;
            continue;
        }
        uint32_t tick = atomic_load_explicit(&p->schedtick, memory_order_relaxed);
        if (tick != p->monitor_tick || p->monitor_when == 0) {
            p->monitor_tick = tick;
            p->monitor_when = now;
            if (atomic_load_explicit(&m->preempt, memory_order_relaxed) != GORC__PREEMPT_NONE)
                atomic_store_explicit(&m->preempt, GORC__PREEMPT_NONE, memory_order_relaxed);
            continue;
        }
        if (!p_has_work(p))
            continue;
        uint32_t pr = atomic_load_explicit(&m->preempt, memory_order_relaxed);
        if (now - p->monitor_when < RETAKE_NS) {
            if (now - p->monitor_when >= RETAKE_NS / 2 && pr == GORC__PREEMPT_NONE)
                atomic_store_explicit(&m->preempt, GORC__PREEMPT_ASKED, memory_order_relaxed);
            continue;
        }
        /* (Timers stay with the P: only a thread with the P runs them on time.) */
        if (pr == GORC__PREEMPT_ALIVE && atomic_load(&p->timer0) == 0 && others_progress(p, now)) {
            atomic_store_explicit(&m->preempt, GORC__PREEMPT_ASKED, memory_order_relaxed);
            donate(p);
            continue;
        }
        gorc__lock_acquire(&gorc__s.lock);
        bool taken = try_retake(p, m, owner);
        gorc__lock_release(&gorc__s.lock);
        if (!taken)
            continue;
        atomic_fetch_add(&gorc__s.nlostp, 1);
        atomic_fetch_add_explicit(&gorc__s.retakes, 1, memory_order_relaxed);
        p->monitor_when = 0;
        GORC__TRACE(NULL, GORC__EV_RETAKE, 0, p->id, 0, owner, 0);
        startm(p, false);
    }
}

/* While every P is busy nobody polls; make sure I/O readiness is noticed within 10 ms. */
static void poll_if_forgotten(int64_t now)
{
    if (gorc__netpoll_waiters() == 0 || atomic_load(&gorc__s.npolling) != 0 ||
        now - atomic_load(&gorc__s.lastpoll) < RETAKE_NS)
        return;
    int32_t zero = 0;
    if (!atomic_compare_exchange_strong(&gorc__s.npolling, &zero, 1))
        return;
    gorc__g *tail;
    int n = 0;
    gorc__g *head = gorc__netpoll(0, &tail, &n);
    atomic_store(&gorc__s.npolling, 0);
    gorc__inject(head, tail, n);
}

static void *monitor(void *arg)
{
    (void)arg;
    int64_t last_trim = gorc__nanotime(), last_scan = last_trim;
    /* Idle rounds last a compaction period (at most a second), and there are enough of them
     * for three trims: goroutines parked when the program went idle get compacted, cold
     * cached stacks get returned, and then the monitor sleeps for good. */
    int64_t period = gorc__cstk_period();
    int64_t idle_ns = gorc__cstk_on && period > 0 && period < GORC_SECOND ? period : GORC_SECOND;
    int idle_max = (int)(3 * GORC_SECOND / idle_ns);
    int idle_rounds = 0;
    bool cold_stacks = false;
    for (;;) {
        int64_t now = gorc__nanotime();
        if (now - last_trim >= GORC_SECOND) {
            cold_stacks = gorc__stack_trim();
            last_trim = now;
        }
        if (gorc__cstk_on && now - last_scan >= gorc__cstk_period()) {
            gorc__cstk_scan();
            last_scan = now;
        }
        if (atomic_load(&gorc__s.npidle) == gorc__s.nprocs && atomic_load(&gorc__s.nlostp) == 0) {
            /* Nothing runs: sleep until an M starts, waking a few times to compact parked
             * stacks, and once a period while the stack cache holds stacks to return (a
             * program that sleeps between bursts may start no M for a long time, and its cold
             * stacks would stay resident). */
            atomic_store(&gorc__s.monitor_futex, 0);
            atomic_store(&gorc__s.monitor_sleeping, 1);
            if (atomic_load(&gorc__s.npidle) == gorc__s.nprocs)
                gorc__futex_wait(&gorc__s.monitor_futex, 0,
                                 idle_rounds < idle_max || cold_stacks ? idle_ns : (int64_t)-1);
            atomic_store(&gorc__s.monitor_sleeping, 0);
            idle_rounds++;
            continue;
        }
        idle_rounds = 0;
        poll_if_forgotten(now);
        retake(now);
        usleep(RETAKE_NS / 2 / 1000);
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------
 * Start-up and gorc_main
 * ---------------------------------------------------------------------------------------- */

void gorc__init(void)
{
    int n = gorc__ncpu();
    gorc__p *allp = calloc((size_t)n, sizeof(gorc__p));
    if (allp == NULL) {
        init_err = -ENOMEM;
        return;
    }
    gorc__s.allp = allp;
    gorc__s.nprocs = n;
    membarrier_init();
    for (int i = n - 1; i >= 0; i--) {
        gorc__p *p = &gorc__s.allp[i];
        p->id = i;
        pidleput(p);
    }
    gorc__stack_init();
    gorc__traceback_init();
    if (gorc__netpoll_init() != 0) {
        init_err = -EAGAIN;
        return;
    }
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, monitor, NULL) != 0)
        init_err = -EAGAIN;
    pthread_attr_destroy(&attr);
}

int gorc_main(gorc_fn fn, void *arg)
{
    if (fn == NULL)
        return -EINVAL;
    if (gorc__getm() != NULL)
        return -EINVAL; /* called from a goroutine */
    uint32_t zero = 0;
    if (!atomic_compare_exchange_strong(&main_busy, &zero, 1))
        return -EBUSY; /* another thread's gorc_main is running */
    int simrc;
    if (GORC__UNLIKELY(gorc__sim_main(fn, arg, &simrc))) { /* GORC_SIM_SEED is set */
        atomic_store(&main_busy, 0);
        return simrc;
    }
    atomic_store(&mainwait, 0);
    bool leakcheck = gorc__leak_main_wanted();
    uint64_t mark = gorc__last_goid();
    if (gorc__cstk_on)
        gorc__stack_handler_check();
    int rc = spawn(fn, arg, 0, true, (uintptr_t)__builtin_return_address(0), false);
    if (rc == 0) {
        while (atomic_load(&mainwait) == 0)
            gorc__futex_wait(&mainwait, 0, -1);
        if (leakcheck)
            gorc__leak_check_main(mark + 1); /* the main goroutine itself has finished */
    }
    atomic_store(&main_busy, 0);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * What the simulator's loop needs (src/sim/sim.c runs it on the run's thread, as its g0)
 * ---------------------------------------------------------------------------------------- */

gorc__m *gorc__sim_m_attach(gorc__p *p)
{
    gorc__m *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->id = atomic_fetch_add(&next_mid, 1);
    m->g0.status = GORC__G_RUNNING;
    m_thread_init(m);
    atomic_store(&p->m, m);
    m->p = p;
    atomic_store(&p->owner, m->id);
    return m;
}

void gorc__sim_m_detach(gorc__m *m)
{
    atomic_store(&m->p->owner, 0);
    atomic_store(&m->p->m, NULL);
    gorc__tls_m = NULL;
    free(m);
}

void gorc__sim_exec(gorc__m *m, gorc__g *g)
{
    atomic_store_explicit(&m->insched, 1, memory_order_relaxed);
    execute(m, m->p, &m->g0, g, false, false);
}

void gorc__sim_after(gorc__m *m)
{
    run_after(m);
    p_leave(m);
}

int gorc__nforeign(void)
{
    return atomic_load(&gorc__s.nforeign);
}
