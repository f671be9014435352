/*
 * trace.h - the execution tracer's hooks, shared by the runtime's files (trace.c has the design).
 *
 * Every hook is one relaxed load of gorc__trace_gen and a branch predicted not taken: with the
 * tracer off, nothing else runs. With it on, the event goes to the calling thread's buffer.
 */
#ifndef GORC_RUNTIME_TRACE_H
#define GORC_RUNTIME_TRACE_H

#include "runtime/runtime.h"

/* Event types of the binary trace (docs/observability.md, "Execution trace"). */
enum {
    GORC__EV_NONE = 0,
    GORC__EV_GO_CREATE,     /* g: new goroutine, arg: start function, aux: parent's id (low 32) */
    GORC__EV_GO_START,      /* g started running on P p */
    GORC__EV_GO_STOP,       /* g gave up the CPU but stays runnable; reason: GORC__STOP_* */
    GORC__EV_GO_BLOCK,      /* g parked; reason: GORC__W_*, arg: the object it waits on */
    GORC__EV_GO_UNBLOCK,    /* g made runnable; arg: the waker goroutine's id (0: no goroutine) */
    GORC__EV_GO_END,        /* g returned from its function */
    GORC__EV_GO_STATUS,     /* g existed when the trace began; reason: GORC__G_*, arg: function */
    GORC__EV_PROC_START,    /* this thread took P p */
    GORC__EV_PROC_STOP,     /* this thread gave P p up */
    GORC__EV_SYSCALL_BEGIN, /* g entered a declared blocking call (gorc_blocking_enter) */
    GORC__EV_SYSCALL_END,
    GORC__EV_POLL_BEGIN,   /* this thread blocks in the poller; arg: timeout ns (-1: none) */
    GORC__EV_POLL_END,     /* aux: goroutines it readied */
    GORC__EV_TIMER,        /* a timer's function runs here; arg: the timer */
    GORC__EV_RETAKE,       /* the monitor took P p from thread arg */
    GORC__EV_TASK_BEGIN,   /* arg: task id, aux: string length; g: parent task (string: type) */
    GORC__EV_TASK_END,     /* arg: task id */
    GORC__EV_REGION_BEGIN, /* g: goroutine, arg: task, string: region type */
    GORC__EV_REGION_END,
    GORC__EV_LOG,    /* g, arg: task; string: "category\0message" */
    GORC__EV_STRING, /* continuation slots of the event before */
    GORC__EV_COUNT
};

enum { GORC__STOP_YIELD = 1, GORC__STOP_NOP = 2 };

/* One event: 32 bytes, four words (so a record is two stores of 16 bytes on most CPUs). */
typedef struct gorc__tev {
    uint64_t ts;   /* ticks of the trace clock */
    uint32_t kind; /* type | reason << 8 | (p + 1) << 16 */
    uint32_t aux;
    uint64_t g;
    uint64_t arg;
} gorc__tev;

/* Non-zero while a trace or the flight recorder records: the session number. */
extern _Atomic uint32_t gorc__trace_gen;

/* m: the calling thread's M, whose buffer is at hand, or NULL (then a thread-local finds the
 * thread's buffer: the monitor, foreign threads, places that do not have m). */
void gorc__trace_ev1(gorc__m *m, uint32_t kind, uint64_t g, uint64_t arg, uint32_t aux);
static inline void gorc__trace_ev(gorc__m *m, int type, int reason, int p, uint64_t g, uint64_t arg,
                                  uint32_t aux)
{
    /* The record's kind word is put together here, where type and reason are constants. */
    gorc__trace_ev1(m, (uint32_t)type | (uint32_t)reason << 8 | (uint32_t)(p + 1) << 16, g, arg,
                    aux);
}
/* GO_START of g on p when the switch comes straight from this thread's own block, stop or
 * end event: it takes that event's timestamp instead of reading the clock again (the switch
 * between them is tens of nanoseconds; a clock read costs about ten). */
void gorc__trace_start_now(gorc__m *m, int p, uint64_t g);

#define GORC__TRACE(m, type, reason, p, g, arg, aux)                                               \
    do {                                                                                           \
        if (GORC__UNLIKELY(atomic_load_explicit(&gorc__trace_gen, memory_order_relaxed) != 0))     \
            gorc__trace_ev((m), (type), (reason), (p), (g), (uint64_t)(arg), (aux));               \
    } while (0)

/* The id of the goroutine m runs, 0 on g0 or a foreign thread. */
static inline uint64_t gorc__trace_gid(const gorc__m *m)
{
    return m && m->curg != &m->g0 ? m->curg->id : 0;
}

/* The trace clock (trace.c): TSC/CNTVCT ticks where they are constant and synchronised. */
uint64_t gorc__trace_ticks(void);

/* Latency histograms (scheduling latency here, request latency in http/debug.c): buckets
 * four to a power of two, so a percentile read from them is within 25 %. Bucket i >= 8 holds
 * [lo, hi) with lo = (4 + i % 4) << (i / 4 - 2) ns; buckets 0-7 hold 0-7 ns. */
#define GORC__LHIST_BUCKETS 160
static inline int gorc__lhist_index(int64_t ns)
{
    if (ns < 8)
        return ns < 0 ? 0 : (int)ns;
    int e = 63 - __builtin_clzll((uint64_t)ns);
    int i = e * 4 + (int)((uint64_t)ns >> (e - 2) & 3);
    return i < GORC__LHIST_BUCKETS ? i : GORC__LHIST_BUCKETS - 1;
}
/* The upper bound of bucket i, ns. */
static inline int64_t gorc__lhist_upper(int i)
{
    if (i < 8)
        return i + 1;
    return (int64_t)(4 + i % 4 + 1) << (i / 4 - 2);
}

/* Scheduling latency (runnable to running), kept only while someone reads it (the debug page):
 * gorc__schedlat_enable turns the bookkeeping on; _read sums the per-P histograms. */
extern _Atomic bool gorc__schedlat_on;
void gorc__schedlat_enable(void);
void gorc__schedlat_read(uint64_t out[GORC__LHIST_BUCKETS]);
void gorc__schedlat_note(int p, int64_t ns);

#endif /* GORC_RUNTIME_TRACE_H */
