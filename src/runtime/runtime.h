/*
 * runtime.h - internal declarations shared by the runtime's files.
 *
 * The runtime follows Go's G/M/P model (docs/design.md tells the whole story):
 *   G  a goroutine: a function, its stack and its saved registers (gorc__g).
 *   M  a worker thread. Each M has a "g0" context on its own thread stack that runs the
 *      scheduler loop when no goroutine can be switched to directly.
 *   P  a processor: the right to run goroutines, with a local run queue, caches of free Gs and
 *      stacks, and a timer heap. There are exactly gorc_maxprocs() Ps.
 *
 * Nothing here is public: every name starts with gorc__ and every struct may change.
 */
#ifndef GORC_RUNTIME_H
#define GORC_RUNTIME_H

#include "gorc.h"
#include "gorc_debug.h"
#include "os/os.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__SANITIZE_ADDRESS__)
#define GORC__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORC__ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define GORC__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORC__TSAN 1
#endif
#endif

#define GORC__LIKELY(x)   __builtin_expect(!!(x), 1)
#define GORC__UNLIKELY(x) __builtin_expect(!!(x), 0)

typedef struct gorc__g gorc__g;
typedef struct gorc__m gorc__m;
typedef struct gorc__p gorc__p;
typedef struct gorc__timer gorc__timer;
typedef struct gorc__sim gorc__sim;

/* ---- runtime lock (short critical sections only: channel and queue state); waiters spin,
 * then nap (support.c) ---- */

typedef struct gorc__lock {
    _Atomic uint32_t v;
} gorc__lock;

void gorc__lock_slow(_Atomic uint32_t *v);

static inline void gorc__lock_acquire(gorc__lock *l)
{
    if (GORC__UNLIKELY(atomic_exchange_explicit(&l->v, 1, memory_order_acquire)))
        gorc__lock_slow(&l->v);
}

static inline void gorc__lock_release(gorc__lock *l)
{
    atomic_store_explicit(&l->v, 0, memory_order_release);
}

/* ---- context switch (src/arch/ctx_<arch>.S) ---- */

/* Saves callee-saved registers and FP control state on the current stack, stores the stack
 * pointer in *save_sp, loads load_sp and restores from it. */
void gorc__ctx_switch(void **save_sp, void *load_sp);
/* Builds the first frame on a fresh stack so that switching to the returned sp calls
 * entry(arg) (which must never return). */
void *gorc__ctx_init(void *stack_top, void (*entry)(void *), void *arg);

/* ---- stacks (src/runtime/stack.c) ---- */

typedef struct gorc__stack {
    char *lo;       /* lowest usable byte */
    size_t size;    /* usable bytes */
    uint32_t flags; /* GORC__STK_* */
    uint32_t vg_id; /* valgrind registration id */
    int32_t arena;  /* index of the arena it was carved from + 1; 0 for its own mapping */
} gorc__stack;

/* p: the caller's P, held in the scheduler, or NULL (then only global caches are used). */
int gorc__stack_alloc(gorc__p *p, gorc__stack *s, size_t size);
/* A size that gets its own mapping rather than a default stack from the arenas. */
bool gorc__stack_custom(size_t size);
/* Reserve a default-size stack for a goroutine about to be spawned (0 or -ENOMEM), or give the
 * reservation back if the goroutine is not created after all. p: the caller's P, held, or
 * NULL. */
int gorc__stack_promise(gorc__p *p);
void gorc__stack_unpromise(gorc__p *p);
void gorc__stack_free(gorc__p *p, gorc__stack *s);
void gorc__stack_check(gorc__g *g, void *sp);
bool gorc__stack_trim(void); /* true: the cache holds stacks to return later */
void gorc__stack_init(void);
void gorc__stack_thread_init(void);
/* Make sure the SIGSEGV handler is still ours (re-installing it, chained, if not). */
void gorc__stack_handler_check(void);

/* ---- goroutines ---- */

enum {
    GORC__G_FREE = 0, /* in a free list */
    GORC__G_RUNNABLE, /* in a run queue */
    GORC__G_RUNNING,  /* running on an M */
    GORC__G_WAITING,  /* parked; only gorc__ready moves it on */
    GORC__G_DEAD,     /* finished, not yet recycled */
};

/* Why a goroutine is parked: printed by gorc_dump and the deadlock report. */
enum {
    GORC__W_NONE = 0,
    GORC__W_CHAN_SEND,
    GORC__W_CHAN_RECV,
    GORC__W_CHAN_SEND_NIL,
    GORC__W_CHAN_RECV_NIL,
    GORC__W_SELECT,
    GORC__W_SELECT_NO_CASES,
    GORC__W_SLEEP,
    GORC__W_MUTEX,
    GORC__W_RWMUTEX_R,
    GORC__W_RWMUTEX_W,
    GORC__W_WAITGROUP,
    GORC__W_COND,
    GORC__W_SEMA,
    GORC__W_IO,
    GORC__W_BLOCKING,
    GORC__W_SIM_WAIT, /* gorc_sim_wait */
};

/* A compacted stack's live bytes (stack.c). */
typedef struct gorc__cbuf {
    uint32_t len;   /* bytes in data */
    uint32_t epoch; /* gorc__cstk_epoch at compaction */
    uint64_t data[];
} gorc__cbuf;

struct gorc__g {
    /* The first cache line holds what a switch, a park, a readying and a spawn touch; the
     * second what a spawn and a goroutine's start and end touch; the rest is read by dumps,
     * profiles, leak reports, the simulation and the stack compactor. Records are 64-byte
     * aligned (gslab_new), so a switch pulls in exactly one line of the record and a spawn two. */
    _Alignas(64) void *sp;  /* saved stack pointer while not running */
    gorc__g *schedlink;     /* run queue and free list link */
    _Atomic uint8_t status; /* GORC__G_* */
    uint8_t waitreason;     /* GORC__W_* */
    bool foreign;           /* a thread outside the runtime, parked on futex */
    /* Stack compaction (stack.c, "Compaction"): cstk is GORC__CSTK_*, moved out of the states
     * that mean "pages present" only by CAS; crun is 1 from the moment the scheduler picks the
     * goroutine to run until it has switched out in a park, written only by the scheduler. */
    _Atomic uint8_t cstk;
    _Atomic uint8_t crun;
    bool insim;   /* sim != NULL: the hot paths test this byte, not the pointer's line */
    bool is_main; /* the goroutine gorc_main started */
    bool system;  /* started by the runtime for itself: never reported as a leak */
    /* Bumped by the G's M each time it starts running; traceback.c keys its lazily stamped
     * "in this state since" on (nrun, status) so that the hot path never reads the clock, and
     * the compactor tells a goroutine parked through a whole scan period by it. */
    _Atomic uint32_t nrun;
    _Atomic uint32_t selectdone;
    void *param; /* wake-up datum (select: the case that fired) */
    /* The frame tracebacks of a switched-out goroutine start from: gorc__park's while it is
     * parked there, gorc_yield's or gorc_blocking_exit's after those. Set at every switch
     * out; read only while the goroutine is not running. */
    void *parkfp;
    /* When it was made runnable, for one readying in 32, in units of 64 ns (proc.c's ready_clock;
     * 0: not timed); read when it runs. 32 bits cover 274 s. */
    uint32_t readytime;
    /* Stack compaction, continued: cscans is the compactor's and the fault handler's,
     * cbackoff the compactor's and the scheduler's (after a restore). */
    _Atomic uint8_t cscans;   /* scans it was seen parked at (the fault handler starts again) */
    _Atomic uint8_t cbackoff; /* extra scans to stay parked: it woke soon after compaction */
    uint8_t ncompact;         /* times compacted, saturating (tests read it) */
    bool simext; /* parked on something outside its simulation run (a real descriptor) */
    uint64_t id;
    /* ---- written at spawn, read at start and end ---- */
    gorc_fn fn;
    void *arg;
    gorc__stack stk; /* lo is NULL while the goroutine has none (gorc__stack_free) */
    /* Who made it and where (gorc_go's caller), for dumps and leak reports; written at spawn. */
    uintptr_t spawnpc;
    uint64_t parent; /* id of the spawning goroutine, 0 for a thread */
    /* ---- colder (64 bytes without sanitizers: the record is 192) ---- */
    _Atomic uint32_t futex; /* foreign threads park on this */
    /* The host of the run's simulated network it runs on (src/net/simnet.c): its spawner's,
     * or the one gorc_sim_go_on named. Touched only by the run's thread. */
    uint16_t simhost;
    /* The simulation run it belongs to (src/sim), NULL for every other goroutine; set at spawn
     * of a run's goroutine, cleared when the record is freed. sim and simext are touched only
     * by the run's thread, and simext also under the lock the waker takes. */
    gorc__sim *sim;
    gorc__timer *sleept; /* timer used by gorc_sleep and timeouts, lazily made */
    gorc__g *allnext;    /* every G ever made, for gorc_dump */
    /* Only while leak tracking is on (gorc__leak_on): what it parked on (the channel of a
     * channel operation, the lock word of a sync object, else NULL). */
    void *waiton;
    /* "In this state since": obs_since is the time of the state obs_key names, as
     * (nrun << 8 | status) truncated to 32 bits. An observer stamps it the first time it sees
     * a state; a park stamps it exactly while leak tracking is on (traceback.c). */
    _Atomic uint32_t obs_key;
    uint32_t cscan_nrun; /* stack compaction: nrun when the compactor first saw it parked */
    _Atomic int64_t obs_since;
    /* Stack compaction: the live bytes saved, or a stale buffer to free; owned by whoever
     * moved cstk to BUSY. */
    gorc__cbuf *cbuf;
#ifdef GORC__ASAN
    void *asan_fake;
#endif
#ifdef GORC__TSAN
    void *tsan_fiber;
#endif
};

/* ---- stack compaction (stack.c; docs/stacks.md) ----
 *
 * g->cstk says who may touch a parked goroutine's stack pages; g->crun says whether the
 * scheduler has picked it to run. The scheduler's side of the handshake is a plain store and
 * a load (gorc__cstk_resume); the compactor pays for both with membarrier (stack.c). */
enum {
    GORC__CSTK_PRESENT = 0, /* pages present: it may run, or be compacted if parked */
    GORC__CSTK_BUSY,        /* being compacted or restored: wait */
    GORC__CSTK_COMPACTED,   /* live bytes in g->cbuf, pages released and inaccessible */
    GORC__CSTK_STALE,       /* pages present, g->cbuf a stale buffer (restored in a fault) */
};
/* The compaction clock: bumped by every scan. */
extern _Atomic uint32_t gorc__cstk_epoch;
/* Compaction is on (set once at start-up: guard markers and membarrier work, and
 * GORC_STACK_COMPACT is not "off"). */
extern bool gorc__cstk_on;
bool gorc__cstk_enabled(void);
/* Nanoseconds between scans (the monitor calls gorc__cstk_scan that often). */
int64_t gorc__cstk_period(void);
/* Change it (tests: GORC_STACK_COMPACT is read once, at start-up). */
void gorc__cstk_set_period(int64_t ns);
/* Compact every goroutine parked long enough; returns how many were compacted. */
int gorc__cstk_scan(void);
/* Before g runs again: claim it (crun), then make its stack present, restoring it if it was
 * compacted. Called by the scheduler just before switching to g. The signal fence only keeps
 * the compiler from moving the load above the store: the compactor's membarrier orders them
 * for the processor. */
void gorc__cstk_resume_slow(gorc__g *g);
static inline void gorc__cstk_resume(gorc__g *g)
{
    if (!gorc__cstk_on)
        return;
    atomic_store_explicit(&g->crun, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    if (GORC__LIKELY(atomic_load_explicit(&g->cstk, memory_order_acquire) == GORC__CSTK_PRESENT))
        return;
    gorc__cstk_resume_slow(g);
}
/* g has just switched out in a park (run by the context that switched in, before the lock g
 * parked under is released): from now on its stack may be compacted. Release: the compactor
 * that reads crun == 0 sees the saved stack pointer. */
static inline void gorc__cstk_parked(gorc__g *g)
{
    if (gorc__cstk_on)
        atomic_store_explicit(&g->crun, 0, memory_order_release);
}
/* Compaction statistics for tests and benchmarks. */
typedef struct gorc__cstk_stats {
    uint64_t compacted, restored, faults, refused;
    int64_t restore_ns; /* total time spent restoring */
} gorc__cstk_stats;
void gorc__cstk_get_stats(gorc__cstk_stats *st);

/* ---- Ms ---- */

/* Scheduling latency histogram: bucket i counts waits below 2^i microseconds (the last one
 * everything longer). */
#define GORC__LAT_BUCKETS 22

/* Counters of one M for the runtime metrics (metrics.c sums them over every M). Only the M's
 * own thread writes them, with a relaxed load and store (a plain add, no locked instruction):
 * the scheduler's hot path never writes a cache line another thread writes. */
typedef struct gorc__mstats {
    /* wakeups (readyings of parked goroutines) also picks the readyings that are timed: every
     * 32nd. Parks are not counted apart: every park ends in a wakeup, so parks = wakeups +
     * goroutines parked now (metrics.c). Spawns and exits are not counted here either: the
     * goroutine-id generator counts spawns, and each P's nended the exits. */
    _Atomic uint64_t wakeups, steals, blocking, pollwaits, pollready;
    _Atomic uint64_t lat[GORC__LAT_BUCKETS];
    _Atomic uint64_t latsum; /* ns, of the sampled waits */
} gorc__mstats;

static inline void gorc__stat_add(_Atomic uint64_t *c, uint64_t d)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

/* Deepest stack a traceback or a profile sample records. */
#define GORC__MAXFRAMES 64

/* What the context we switch to must do first, on behalf of the one that switched away. It
 * cannot be done before the switch: the old goroutine is still on its stack until then. */
enum { GORC__AFTER_NONE = 0, GORC__AFTER_UNLOCK, GORC__AFTER_YIELD, GORC__AFTER_EXIT };

struct gorc__m {
    gorc__g g0;     /* scheduler context on this thread's stack */
    gorc__g *curg;  /* goroutine running now (g0 when in the scheduler loop) */
    gorc__p *p;     /* attached P, or NULL */
    gorc__p *nextp; /* P handed over by whoever woke us */
    gorc__g *nextg; /* goroutine for g0 to run next (it needed a fresh stack) */
    uint32_t id;
    uint64_t rnd;  /* select's and steal order's random state */
    bool spinning; /* looking for work, counted in sched.nmspinning */
    bool lostp;    /* the monitor took our P away while a goroutine ran */
    /* 1 while this M uses its P's unlocked state (run queue, caches): the monitor never takes a
     * P whose M is inside the scheduler. Written only by this M. */
    _Atomic uint32_t insched;
    bool inblocking; /* inside gorc_blocking_enter/exit, P handed off */
    /* GORC__PREEMPT_*: the monitor asks the goroutine running here to let others run. */
    _Atomic uint32_t preempt;
    int after; /* GORC__AFTER_* */
    gorc__g *after_g;
    void (*after_unlock)(void *);
    void *after_arg;
    _Atomic uint32_t park;   /* futex: 0 = sleeping, 1 = woken */
    gorc__m *schedlink;      /* idle M list */
    struct gorc__tbuf *tbuf; /* this thread's trace buffer (runtime/trace.c), or NULL */
    char *g0_lo;             /* thread stack bounds, for sanitizers */
    size_t g0_size;
    gorc__sim *sim; /* the simulation run this M is the thread of, else NULL (src/sim) */
    /* Tracebacks and CPU profiling (traceback.c, pprof.c). Ms are never freed; allnext links
     * every M ever started, newest first, written once under the scheduler lock before the M
     * is published. */
    gorc__m *allnext;
    _Atomic int tid; /* kernel thread id, set by the thread itself when it starts */
    pthread_t thread;
    /* A stack request: the requester bumps sigreq and signals the thread; the handler unwinds
     * the interrupted goroutine into sigpcs and then stores sigreq into sigdone. Requests are
     * serialised by traceback.c's lock. */
    _Atomic uint32_t sigreq, sigdone;
    uint64_t siggoid; /* goroutine the handler found running (0: none) */
    int nsigpcs;
    uintptr_t sigpcs[GORC__MAXFRAMES];
    /* CPU profiling: the samples the SIGPROF handler recorded (pprof.c), and the M's timer. */
    struct gorc__profbuf *_Atomic prof;
    /* Set by the fault handler before a fatal report: where the goroutine faulted. */
    const void *faultuc;
    gorc__mstats stats;
};

/* ---- Ps ---- */

#define GORC__RUNQ        256
#define GORC__GFREE_LOCAL 64

struct gorc__p {
    int id;
    _Atomic uint32_t owner; /* id of the M holding this P, 0 when idle or being handed over */
    _Atomic(gorc__m *) m;
    gorc__p *link;              /* idle P list */
    _Atomic uint32_t schedtick; /* bumped on every switch; the monitor watches it */
    uint32_t monitor_tick;      /* monitor's last view of schedtick */
    int64_t monitor_when;
    _Atomic uint32_t runqhead;
    _Atomic uint32_t runqtail;
    _Atomic(gorc__g *) runnext;
    _Atomic(gorc__g *) runq[GORC__RUNQ];
    gorc__g *gfree[GORC__GFREE_LOCAL]; /* free Gs (with or without stacks) */
    int ngfree;
    gorc__stack *stkcache; /* free default-size stacks */
    int nstkcache;
    /* Stack promises this P may make without touching the global count (stack.c), and the
     * goroutines it created and those that ended on it (the difference of their sums over the
     * Ps, plus global counts for threads without a P, is gorc_count). Written only by the P's
     * owner: a spawner and a finishing goroutine on another CPU would otherwise fight over two
     * shared counters on every spawn. */
    int stkcredit;
    /* Goroutines spawned and ended here: two counters that only grow, so that the runtime
     * metrics' exit count is exact and never goes down (gorc_count is their difference). */
    _Atomic uint64_t nspawned, nended;
    /* timers: a 4-ary min-heap by deadline and a lane of timers armed in deadline order (a
     * ring: lanehead..lanetail, deleted entries NULL until they reach the head), all guarded
     * by tlock (timer.c) */
    gorc__lock tlock;
    struct gorc__timerwhen *timers;
    int ntimers, captimers;
    struct gorc__timerwhen *lane;
    uint32_t lanehead, lanetail, lanecap, lanedead;
    int64_t lanelast; /* deadline of the lane's last entry, a bound for the next */
    /* Until when due sleepers may wait in the heap for room in the run queue (0: they may
     * not); set by the owner's gorc__timers_run, read by the owner's scheduler (proc.c). */
    int64_t timerwait;
    _Atomic int64_t timer0; /* earliest deadline, 0 = none */
};

/* ---- the scheduler as a whole (its state is private to proc.c) ---- */

/* Number of Ps (0 before the runtime has started). */
int gorc__nprocs(void);
/* P number i, 0 <= i < gorc__nprocs(). */
gorc__p *gorc__p_at(int i);
/* Ps that are idle or whose M is spinning: none of them runs a goroutine now. */
int gorc__nprocs_idle(void);
/* A timer now falls due at `when`: break the M blocked in the poller if it sleeps past it. */
void gorc__poller_poke(int64_t when);

/* The M running this thread, or NULL on a foreign thread. Not inlinable on purpose: a
 * goroutine may resume on another thread after any switch, and the compiler must not reuse a
 * thread-local address it computed before the switch. */
gorc__m *gorc__getm(void);
/* The running goroutine; on a foreign thread, that thread's stand-in G. */
gorc__g *gorc__getg(void);

void gorc__init(void);
/* Start the runtime if needed: 0, or the error it failed to start with. */
int gorc__ensure_init(void);
/* The current thread's M. Read it only through gorc__getm(), or at the very start of a function
 * that does not use it again after anything that may switch goroutines. */
extern _Thread_local gorc__m *gorc__tls_m;
void gorc__note_foreign_slow(void);
/* Count the calling thread as a foreign thread (see gorc_foreign_attach). Called at public
 * entry points, before anything can switch, so the thread-local read is safe inline. */
static inline void gorc__note_foreign(void)
{
    if (GORC__UNLIKELY(gorc__tls_m == NULL))
        gorc__note_foreign_slow();
}

/* Preemption requests (m->preempt). The monitor asks when a goroutine has not switched for
 * 5 ms while its P has other work; the goroutine yields at its next call that may block
 * anyway (gorc__may_block), or, inside a call that may not switch (gorc_go), answers that it
 * is alive: it is busy in the runtime, not stuck in C code or the kernel, so the monitor
 * hands its P's queue to the other Ps instead of starting another thread for the P. */
enum { GORC__PREEMPT_NONE = 0, GORC__PREEMPT_ASKED, GORC__PREEMPT_ALIVE };
void gorc__preempted(gorc__m *m);

/* At the start of a public call that may block, so may also switch goroutines and threads
 * (channel send and receive, select, mutex lock): note a foreign caller, or yield if the
 * monitor asked. */
static inline void gorc__may_block(void)
{
    gorc__m *m = gorc__tls_m;
    if (GORC__UNLIKELY(m == NULL))
        gorc__note_foreign_slow();
    else if (GORC__UNLIKELY(atomic_load_explicit(&m->preempt, memory_order_relaxed) != 0))
        gorc__preempted(m);
}
uint64_t gorc__rand(void);

/* Leak tracking (runtime/leak.c): parks record their time and object while it is on. */
extern _Atomic bool gorc__leak_on;
/* What gorc__park must do besides parking, in one word so that a park with none of it on
 * tests a single load: leak bookkeeping (leak.c), block and mutex profiles (pprof.c), the
 * execution tracer (trace.c). Each owner sets its bit when it turns its feature on and clears
 * it when it turns it off (the leak bit stays); the slow path then looks at the features' own
 * variables. */
enum { GORC__PH_LEAK = 1, GORC__PH_BLOCKPROF = 2, GORC__PH_TRACE = 4 };
extern _Atomic uint32_t gorc__park_hooks;
static inline void gorc__park_hook(uint32_t bit, bool on)
{
    if (on)
        atomic_fetch_or(&gorc__park_hooks, bit);
    else
        atomic_fetch_and(&gorc__park_hooks, ~bit);
}
/* The last goroutine id handed out (proc.c). */
uint64_t gorc__last_goid(void);
/* GORC_LEAKCHECK is set (bookkeeping is then turned on); and gorc_main's check, which exits
 * with status 2 when goroutines started after mark survive. */
bool gorc__leak_main_wanted(void);
void gorc__leak_check_main(uint64_t mark);
/* Start fn(arg) as gorc_go does, recording pc as the place it was spawned from (wrappers pass
 * their own caller's address); system goroutines are the runtime's and never leak. */
int gorc__go_from(gorc_fn fn, void *arg, uintptr_t pc, bool system);
/* Call fn for every goroutine that is not free or dead (a snapshot walk: goroutines may change
 * state meanwhile; their records are never freed). */
void gorc__each_g(void (*fn)(gorc__g *g, void *arg), void *arg);

/* Park the current goroutine with the given wait reason. unlock(arg), if not NULL, runs after
 * the goroutine is fully switched out; a waker that finds the goroutine under that lock may
 * then ready it. */
void gorc__park(int reason, void (*unlock)(void *), void *arg);
/* Make a parked goroutine runnable (next to run on the current P). */
void gorc__ready(gorc__g *g);
/* Wake the Ms needed to run newly readied work. */
void gorc__wakep(void);
/* Put a list of runnable Gs in the global run queue (used by timers and the poller). */
void gorc__inject(gorc__g *head, gorc__g *tail, int n);
/* Make n parked goroutines runnable at the tail of the current P's queue (not runnext: they
 * are a batch, timers that fell due together) and wake at most one M for them. */
void gorc__ready_batch(gorc__g *const *gs, int n);
/* How many goroutines gorc__ready_batch can put on p's own run queue now, if the calling M
 * holds p (INT_MAX if it does not, or runs a simulation: those have nowhere to save room). */
int gorc__ready_room(gorc__p *p);
/* How late a due timer may run while its P has other goroutines to run (proc.c gathers them
 * so that they run together); never early. */
#define GORC__TIMER_SLACK (100 * GORC_MICROSECOND)

/* ---- timers (src/runtime/timer.c) ----
 *
 * A timer's f runs on whatever thread runs the heap: possibly inside the scheduler while a
 * goroutine is half-way through parking and still holds the lock it parks under. So f must not
 * take locks that goroutines park under (channel locks via blocking operations, sync queue
 * locks); it may ready goroutines, try-send on channels and CAS flags such as g->selectdone. */

struct gorc__timer {
    int64_t when;   /* deadline, 0 when not in a heap */
    int64_t period; /* > 0 for tickers */
    void (*f)(gorc__timer *t, int64_t now);
    void *arg;
    _Atomic(gorc__p *) p; /* heap it is in, or NULL */
    int idx;              /* index in that heap, or -1 - slot in its lane */
    _Atomic int running;  /* runs of f in progress (gorc__timer_del_sync waits for 0) */
    bool selfowned;       /* f frees the timer: the runner must not touch it after f */
};

void gorc__timer_add(gorc__timer *t, int64_t when);
/* Remove t from its heap; true if it was there (so it will not fire). */
bool gorc__timer_del(gorc__timer *t);
/* As gorc__timer_del, and also wait for a run of t's function in progress to finish. */
bool gorc__timer_del_sync(gorc__timer *t);
/* Arm / disarm the goroutine's own timer (sleep, select and semaphore timeouts). */
void gorc__sleept_arm(gorc__g *g, int64_t when, void (*f)(gorc__timer *, int64_t));
void gorc__sleept_cancel(gorc__g *g);
/* Run the P's expired timers; returns the next deadline (0 = none). */
int64_t gorc__timers_run(gorc__p *p, int64_t now);
/* Earliest deadline over all Ps (0 = none). */
int64_t gorc__timers_next(void);
int64_t gorc__nanotime(void);
/* now + d, saturating at INT64_MAX (a deadline that never comes) instead of overflowing. */
int64_t gorc__deadline(int64_t d);

/* ---- poller: see runtime/netpoll.h, whose opening comment is the backend contract ---- */

/* ---- waiter queues used by sync primitives (intrusive on the waiter's stack) ---- */

typedef struct gorc__waitq {
    void *head, *tail; /* gorc__waiter nodes, FIFO */
} gorc__waitq;

typedef struct gorc__waiter {
    struct gorc__waiter *next;
    gorc__g *g;
    int64_t n; /* semaphore permits wanted, rwmutex reader flag, ... */
    bool done; /* set by the waker before readying */
} gorc__waiter;

void gorc__waitq_push(gorc__waitq *q, gorc__waiter *w);
gorc__waiter *gorc__waitq_pop(gorc__waitq *q);
bool gorc__waitq_remove(gorc__waitq *q, gorc__waiter *w);

/* ---- metrics (src/runtime/metrics.c) ---- */

/* The scheduler's own figures, read by proc.c for metrics.c. */
typedef struct gorc__schedsnap {
    int64_t nprocs, npidle, nmspinning, mcount, nforeign, npolling;
    int64_t runq_global, runq_local, retakes;
} gorc__schedsnap;
void gorc__sched_snapshot(gorc__schedsnap *s);
/* Bytes of stacks in the global cache (stack.c). */
size_t gorc__stack_cached_bytes(void);
/* Timers in every P's heap (timer.c). */
int64_t gorc__timers_pending(void);

/* ---- tracebacks (src/runtime/traceback.c) ---- */

/* On functions that read another thread's scheduling fields (a goroutine's sp, status, wait
 * reason, an M's current goroutine) for a dump, a profile or a metric: snapshot reads, racy by
 * design and validated where it matters (a stack walk is bounded and re-checked), so
 * ThreadSanitizer is told not to instrument them. */
#define GORC__RACY __attribute__((no_sanitize_thread))

/* Every M ever started, newest first (proc.c). */
gorc__m *gorc__allm(void);
/* Goroutines ever made (the id generator's value), and ever ended. */
uint64_t gorc__goroutines_made(void);
uint64_t gorc__goroutines_ended(void);
/* The newest G ever made; walk on through g->allnext (never freed). No lock: fatal paths. */
gorc__g *gorc__allg(void);
/* Walk frame pointers from (pc, fp) within [lo, hi): every step is checked against the
 * bounds, so a corrupt chain ends the walk instead of faulting. Returns the pcs stored. */
int gorc__unwind(uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int max);
/* The stack of g: 0..max pcs, or -1 if it cannot be had (running elsewhere and not
 * answering, or in a blocking call when interrupt is false). *goid_seen confirms who. */
int gorc__g_stack(gorc__g *g, uintptr_t *pcs, int max, bool interrupt);
/* Print every goroutine with its stack, in Go's format. interrupt: also signal running
 * threads in blocking calls (only on the way out: it may interrupt their system calls). */
void gorc__dump_all(FILE *f, bool interrupt);
/* Print g's frames (a goroutine dump's lines, without its header), for the leak report. */
void gorc__print_frames(FILE *f, gorc__g *g);
/* GOTRACEBACK level: 0 none, 1 single (default), 2 all, 3 crash. */
int gorc__traceback_level(void);
/* After a fatal error's message: the stacks GORC_TRACEBACK asks for (crash: abort()). */
void gorc__traceback_fatal(void);
/* At start-up: GORC_TRACEBACK, the SIGPROF handler, SIGQUIT's dump. */
void gorc__traceback_init(void);
/* The SIGPROF handler's profiling half (pprof.c): record a sample taken on m. */
void gorc__prof_sample(gorc__m *m, const uintptr_t *pcs, int n, uint64_t goid);
/* Block and mutex profiles (pprof.c): nonzero while either is on; then gorc__park times each
 * wait and reports it. */
extern _Atomic int gorc__blockprof;
void gorc__block_event(int reason, int64_t waited);
/* A new M starts: give it a profiling timer if the CPU profile is on (pprof.c). */
void gorc__prof_thread_start(gorc__m *m);

/* Print "fatal error: <msg>" and exit(2), as Go's runtime.throw does. */
__attribute__((noreturn, format(printf, 1, 2))) void gorc__fatal(const char *fmt, ...);
const char *gorc__waitreason_str(int r);
/* Leak tracking's park-time stamp (traceback.c): g parks now. */
void gorc__stamp_park(gorc__g *g);
/* When g parked, exactly, while leak tracking is on and g is still in that park; else 0. */
int64_t gorc__parked_since(const gorc__g *g);

#endif /* GORC_RUNTIME_H */
