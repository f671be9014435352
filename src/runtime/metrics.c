/*
 * metrics.c - runtime metrics by name (Go's runtime/metrics).
 *
 * Each metric has a stable name in Go's form ("/sched/latencies:seconds": what, then the
 * unit), a description and a kind. Reading costs the reader, never the scheduler: the
 * counters live in each M (gorc__mstats, written only by the M's own thread with plain
 * relaxed stores) and are summed over every M here; the gauges come from the scheduler's
 * state (gorc__sched_snapshot), the timer heaps and the stack cache, and the goroutine counts by
 * state from one walk over every G. A read is therefore a consistent picture of nothing in
 * particular: each value is exact by itself, the sum of a moving target.
 *
 * The scheduling latency histogram times one readying in 32 (a spawn or a wake-up) to the
 * moment the goroutine runs, so the clock is read on an eighth of the switches only.
 */
#include "runtime/netpoll.h"
#include "runtime/runtime.h"

#include <math.h> /* INFINITY */
#include <string.h>

enum {
    M_GOROUTINES,
    M_RUNNING,
    M_RUNNABLE,
    M_WAITING,
    M_BLOCKING,
    M_CREATED,
    M_EXITED,
    M_THREADS,
    M_MAXPROCS,
    M_PIDLE,
    M_SPINNING,
    M_RUNQ_GLOBAL,
    M_RUNQ_LOCAL,
    M_LATENCY,
    M_PARKS,
    M_WAKEUPS,
    M_STEALS,
    M_BLOCKING_CALLS,
    M_RETAKES,
    M_FOREIGN,
    M_POLL_WAITS,
    M_POLL_READY,
    M_POLL_WAITERS,
    M_TIMERS,
    M_STACK_INUSE,
    M_STACK_CACHED,
    M_COUNT
};

#define C GORC_METRIC_COUNTER
#define G GORC_METRIC_GAUGE
#define H GORC_METRIC_HISTOGRAM

static const gorc_metric_desc descs[M_COUNT] = {
    [M_GOROUTINES] = {"/sched/goroutines:goroutines", "Live goroutines.", G},
    [M_RUNNING] = {"/sched/goroutines/running:goroutines", "Goroutines running on a thread.", G},
    [M_RUNNABLE] = {"/sched/goroutines/runnable:goroutines",
                    "Goroutines ready to run, waiting for a P.", G},
    [M_WAITING] = {"/sched/goroutines/waiting:goroutines",
                   "Goroutines parked (channel, select, sync, sleep, I/O).", G},
    [M_BLOCKING] = {"/sched/goroutines/blocking:goroutines",
                    "Goroutines inside gorc_blocking calls (their P handed off).", G},
    [M_CREATED] = {"/sched/goroutines-created:goroutines", "Goroutines spawned since start.", C},
    [M_EXITED] = {"/sched/goroutines-exited:goroutines", "Goroutines finished since start.", C},
    [M_THREADS] = {"/sched/threads:threads", "Worker threads (Ms) started.", G},
    [M_MAXPROCS] = {"/sched/gomaxprocs:threads", "Ps: goroutines that can run at once.", G},
    [M_PIDLE] = {"/sched/procs/idle:procs", "Ps with nothing to run.", G},
    [M_SPINNING] = {"/sched/procs/spinning:threads", "Threads looking for work (spinning).", G},
    [M_RUNQ_GLOBAL] = {"/sched/runqueue/global:goroutines", "Goroutines in the global run queue.",
                       G},
    [M_RUNQ_LOCAL] = {"/sched/runqueue/local:goroutines",
                      "Goroutines in the Ps' local run queues, summed.", G},
    [M_LATENCY] = {"/sched/latencies:seconds",
                   "Time goroutines spent runnable before running (one readying in 32 timed).", H},
    [M_PARKS] = {"/sched/parks:events",
                 "Goroutines parked since start (wake-ups plus goroutines parked now).", C},
    [M_WAKEUPS] = {"/sched/wakeups:events", "Goroutines made runnable again since start.", C},
    [M_STEALS] = {"/sched/steals:events", "Successful steals from another P's run queue.", C},
    [M_BLOCKING_CALLS] = {"/sched/blocking-calls:calls",
                          "gorc_blocking / gorc_blocking_enter calls since start.", C},
    [M_RETAKES] = {"/sched/monitor/retakes:events",
                   "Ps the monitor took from a goroutine that did not come back.", C},
    [M_FOREIGN] = {"/sched/foreign-threads:threads",
                   "Threads outside the runtime that have used it and live.", G},
    [M_POLL_WAITS] = {"/netpoll/waits:calls", "Calls into the poller (epoll_wait).", C},
    [M_POLL_READY] = {"/netpoll/ready:events",
                      "Goroutines the poller made runnable (readiness events).", C},
    [M_POLL_WAITERS] = {"/netpoll/waiters:goroutines", "Goroutines waiting for I/O.", G},
    [M_TIMERS] = {"/timers/pending:timers", "Timers in the Ps' heaps.", G},
    [M_STACK_INUSE] = {"/memory/stacks/inuse:bytes",
                       "Stack bytes reserved by live goroutines (resident pages are fewer).", G},
    [M_STACK_CACHED] = {"/memory/stacks/cached:bytes",
                        "Stack bytes of finished goroutines kept in the global cache.", G},
};

/* Bucket i of the latency histogram is [bounds[i], bounds[i+1]) seconds. */
static const double lat_bounds[GORC__LAT_BUCKETS + 1] = {
    0,        1e-6,     2e-6,      4e-6,      8e-6,      16e-6,      32e-6,   64e-6,
    128e-6,   256e-6,   512e-6,    1024e-6,   2048e-6,   4096e-6,    8192e-6, 16384e-6,
    32768e-6, 65536e-6, 131072e-6, 262144e-6, 524288e-6, 1048576e-6, INFINITY};

const gorc_metric_desc *gorc_metrics_all(size_t *n)
{
    if (n)
        *n = M_COUNT;
    return descs;
}

typedef struct gcount {
    uint64_t running, runnable, waiting, blocking, stack;
} gcount;

GORC__RACY static void count_gs(gcount *c)
{
    memset(c, 0, sizeof *c);
    for (gorc__g *g = gorc__allg(); g; g = g->allnext) {
        uint32_t s = atomic_load(&g->status);
        if (s == GORC__G_RUNNING) {
            if (g->waitreason == GORC__W_BLOCKING)
                c->blocking++;
            else
                c->running++;
        } else if (s == GORC__G_RUNNABLE) {
            c->runnable++;
        } else if (s == GORC__G_WAITING) {
            c->waiting++;
        } else {
            continue;
        }
        c->stack += g->stk.size;
    }
}

void gorc_metrics_read(gorc_metric_sample *samples, size_t n)
{
    if (samples == NULL || gorc__ensure_init() != 0) {
        for (size_t i = 0; samples && i < n; i++)
            samples[i].kind = GORC_METRIC_BAD;
        return;
    }
    gorc__mstats sum;
    memset(&sum, 0, sizeof sum);
    for (gorc__m *m = gorc__allm(); m; m = m->allnext) {
        gorc__mstats *s = &m->stats;
        sum.wakeups += atomic_load_explicit(&s->wakeups, memory_order_relaxed);
        sum.steals += atomic_load_explicit(&s->steals, memory_order_relaxed);
        sum.blocking += atomic_load_explicit(&s->blocking, memory_order_relaxed);
        sum.pollwaits += atomic_load_explicit(&s->pollwaits, memory_order_relaxed);
        sum.pollready += atomic_load_explicit(&s->pollready, memory_order_relaxed);
        sum.latsum += atomic_load_explicit(&s->latsum, memory_order_relaxed);
        for (int i = 0; i < GORC__LAT_BUCKETS; i++)
            sum.lat[i] += atomic_load_explicit(&s->lat[i], memory_order_relaxed);
    }
    gorc__schedsnap ss;
    gorc__sched_snapshot(&ss);
    uint64_t made = gorc__goroutines_made();
    uint64_t exited = gorc__goroutines_ended();
    gcount gc;
    bool counted = false;
    for (size_t i = 0; i < n; i++) {
        gorc_metric_sample *s = &samples[i];
        int k = -1;
        for (int j = 0; s->name && j < M_COUNT; j++)
            if (strcmp(s->name, descs[j].name) == 0)
                k = j;
        s->value = 0;
        s->nbuckets = 0;
        s->bounds = NULL;
        s->sum = 0;
        if (k < 0) {
            s->kind = GORC_METRIC_BAD;
            continue;
        }
        s->kind = descs[k].kind;
        if (!counted && (k <= M_BLOCKING || k == M_STACK_INUSE || k == M_PARKS)) {
            count_gs(&gc);
            counted = true;
        }
        uint64_t v = 0;
        switch (k) {
        case M_GOROUTINES:
            v = (uint64_t)gorc_count();
            break;
        case M_RUNNING:
            v = gc.running;
            break;
        case M_RUNNABLE:
            v = gc.runnable;
            break;
        case M_WAITING:
            v = gc.waiting;
            break;
        case M_BLOCKING:
            v = gc.blocking;
            break;
        case M_CREATED:
            v = made;
            break;
        case M_EXITED:
            v = exited;
            break;
        case M_THREADS:
            v = (uint64_t)ss.mcount;
            break;
        case M_MAXPROCS:
            v = (uint64_t)ss.nprocs;
            break;
        case M_PIDLE:
            v = (uint64_t)ss.npidle;
            break;
        case M_SPINNING:
            v = (uint64_t)ss.nmspinning;
            break;
        case M_RUNQ_GLOBAL:
            v = (uint64_t)ss.runq_global;
            break;
        case M_RUNQ_LOCAL:
            v = (uint64_t)ss.runq_local;
            break;
        case M_LATENCY:
            s->nbuckets = GORC__LAT_BUCKETS;
            s->bounds = lat_bounds;
            for (int b = 0; b < GORC__LAT_BUCKETS; b++) {
                s->counts[b] = sum.lat[b];
                v += sum.lat[b];
            }
            s->sum = (double)sum.latsum / 1e9;
            break;
        case M_PARKS: {
            /* A goroutine being woken is counted in wakeups a moment before it stops being
             * parked: keep the counter from stepping back over that moment. */
            static _Atomic uint64_t parks_seen;
            v = sum.wakeups + gc.waiting;
            uint64_t seen = atomic_load(&parks_seen);
            while (v > seen && !atomic_compare_exchange_weak(&parks_seen, &seen, v))
                ;
            if (v < seen)
                v = seen;
            break;
        }
        case M_WAKEUPS:
            v = sum.wakeups;
            break;
        case M_STEALS:
            v = sum.steals;
            break;
        case M_BLOCKING_CALLS:
            v = sum.blocking;
            break;
        case M_RETAKES:
            v = (uint64_t)ss.retakes;
            break;
        case M_FOREIGN:
            v = (uint64_t)ss.nforeign;
            break;
        case M_POLL_WAITS:
            v = sum.pollwaits;
            break;
        case M_POLL_READY:
            v = sum.pollready;
            break;
        case M_POLL_WAITERS:
            v = (uint64_t)gorc__netpoll_waiters();
            break;
        case M_TIMERS:
            v = (uint64_t)gorc__timers_pending();
            break;
        case M_STACK_INUSE:
            v = gc.stack;
            break;
        case M_STACK_CACHED:
            v = gorc__stack_cached_bytes();
            break;
        default:
            break;
        }
        s->value = v;
    }
}
