/*
 * gorc_debug.h - seeing inside a running program: goroutine stacks and symbols, pprof
 * profiles, runtime metrics (Go's runtime.Stack, runtime/pprof, runtime/metrics).
 *
 * docs/observability.md explains how each works and what it costs. All of it is in the core
 * library (libc and pthreads only); an optional symboliser (libgorc_symbolize) adds static
 * functions and file:line through gorc_set_symbolizer.
 */
#ifndef GORC_DEBUG_H
#define GORC_DEBUG_H

#include "gorc.h"

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Goroutines and their stacks
 * ---------------------------------------------------------------------------------------- */

/* One goroutine, as gorc_goroutines reports it. Strings are static. */
typedef struct gorc_goroutine_info {
    uint64_t id;
    uint64_t parent;   /* the goroutine that spawned it; 0 when a thread did */
    const char *state; /* "running", "runnable", or the wait reason ("chan receive", ...) */
    bool waiting;      /* parked (state is then its wait reason) */
    bool system;       /* started by the runtime for itself (the signal goroutine) */
    /* gorc_now() time it entered this state: exact for parked goroutines while leak tracking
     * is on (gorc_leak_mark), otherwise the first time any observer saw it in this state. */
    int64_t since;
    uintptr_t start_fn; /* the function it was started with */
    uintptr_t spawn_pc; /* return address in the caller of gorc_go: where it was spawned */
} gorc_goroutine_info;

/* Fill out[0..n) with the live goroutines (newest first) and return how many there are, which
 * may exceed n (call again with more room). A snapshot walk: goroutines may change state
 * meanwhile. out may be NULL when n is 0. Returns 0 if the runtime cannot start. It cannot
 * fail otherwise. Go: runtime.NumGoroutine plus the debug page's goroutine table. */
GORC_API size_t gorc_goroutines(gorc_goroutine_info *out, size_t n);

/* Goroutine id's stack as text, in the format of a Go goroutine dump: "goroutine N [state]:",
 * two lines per frame (function, then file:line or module+offset), "created by ...". Written
 * snprintf-style: at most n bytes including the terminating NUL; returns the length the whole
 * text needs. A goroutine running on another thread is interrupted (SIGPROF to its thread) for
 * its stack; one in a blocking call (gorc_blocking) is not, and reads "stack unavailable".
 * Errors: -ESRCH (no live goroutine with that id), -EINVAL (NULL buf with n > 0).
 * Go: runtime.Stack for one goroutine. */
GORC_API ssize_t gorc_goroutine_stack(uint64_t id, char *buf, size_t n);

/* Every goroutine's stack, as gorc_goroutine_stack writes one, newest first. Returns the
 * length needed; -EINVAL (NULL buf with n > 0). Go: runtime.Stack(buf, true). */
GORC_API ssize_t gorc_stack_all(char *buf, size_t n);

/* The program counters of goroutine id's stack, innermost first (return addresses except for
 * a running goroutine's first). Returns how many were stored (at most max, 0 for a goroutine
 * that has not run yet), or -ESRCH (no such goroutine), -EAGAIN (running and its stack
 * could not be had: in a blocking call, or its thread did not answer in 100 ms), -EINVAL
 * (max < 0, NULL pcs with max > 0). Go: runtime.Callers for another goroutine. */
GORC_API int gorc_goroutine_pcs(uint64_t id, uintptr_t *pcs, int max);

/* What is known about a code address. Strings live as long as the process (the symboliser
 * keeps them). */
typedef struct gorc_symbol {
    const char *function; /* NULL when unknown */
    uintptr_t offset;     /* pc - the function's start */
    const char *file;     /* source file, NULL when unknown */
    int line;
    const char *module;      /* executable or shared object, NULL when unknown */
    uintptr_t module_offset; /* pc - the module's load address (for addr2line -e module) */
} gorc_symbol;

/* A symboliser: fill what it knows into *out (which holds dladdr's findings already) and
 * return true, or return false and leave *out alone. Called from any thread, also while the
 * program dies (it should not take locks a crashing thread may hold). */
typedef bool (*gorc_symbolizer_fn)(uintptr_t pc, gorc_symbol *out, void *arg);

/* Install a symboliser (NULL: dladdr only). Set it once at start-up, before any dump or
 * profile. It cannot fail. Go: runtime.SetCgoTraceback's symbolizer. */
GORC_API void gorc_set_symbolizer(gorc_symbolizer_fn fn, void *arg);

/* Describe pc: dladdr(3) (module, nearest exported symbol), then the installed symboliser.
 * Returns whether anything was found; false for a NULL out. Go: runtime.FuncForPC. */
GORC_API bool gorc_symbolize(uintptr_t pc, gorc_symbol *out);

/* ------------------------------------------------------------------------------------------
 * Profiles, in pprof's profile.proto (uncompressed; go tool pprof reads it as it is)
 * ---------------------------------------------------------------------------------------- */

/* Start the CPU profile: every thread running goroutines is sampled hz times per CPU-second
 * it uses (0: 100, Go's rate), by a SIGPROF timer on its own CPU clock; samples carry the
 * goroutine id as label "goroutine". The program must not use SIGPROF itself. Returns 0,
 * -EINVAL (hz < 0 or above 1000), -EBUSY (a profile is already running), -EAGAIN (no thread
 * for collecting samples), or the error the runtime failed to start with.
 * Go: pprof.StartCPUProfile (and runtime.SetCPUProfileRate). */
GORC_API int gorc_cpu_profile_start(int hz);

/* Stop the CPU profile and hand over its profile.proto bytes in *out (malloc'd; free it) and
 * their count in *len. Returns 0, -EINVAL (NULL out or len), -ESRCH (no profile running),
 * -ENOMEM (the profile is lost; profiling has stopped). Go: pprof.StopCPUProfile. */
GORC_API int gorc_cpu_profile_stop(char **out, size_t *len);

/* Write the profile called name: "goroutine" (every goroutine's stack, grouped), "block"
 * (where goroutines waited on channels, selects, sync objects and semaphores, and how long),
 * "mutex" (waits for gorc_mutex and gorc_rwmutex). debug 0: profile.proto; 1: Go's text
 * form ("goroutine profile: total N", "N @ pcs" and one "#" line per frame); 2 (goroutine
 * only): every stack as a goroutine dump. *out is malloc'd (free it; text is NUL-terminated,
 * not counted in *len). Returns 0, -EINVAL (NULL name, out or len, debug < 0), -ENOENT (no
 * such profile), -ENOMEM, -EAGAIN (goroutines kept multiplying while the dump was taken), or
 * the error the runtime failed to start with. Go: pprof.Lookup(name).WriteTo(w, debug). */
GORC_API int gorc_profile_write(const char *name, int debug, char **out, size_t *len);

/* The block profile samples waits of rate nanoseconds and longer, and shorter ones with
 * probability wait/rate (rate 1: every wait); 0 turns it off (the default: parking then
 * costs one load). It cannot fail. Go: runtime.SetBlockProfileRate. */
GORC_API void gorc_set_block_profile_rate(int64_t rate);

/* The mutex profile records one in rate waits for a gorc_mutex or gorc_rwmutex (0: off, the
 * default). Returns the previous rate; a negative rate only reads it. It cannot fail.
 * Go: runtime.SetMutexProfileFraction (gorc records the waiter's stack and wait, where Go
 * records the unlocker's). */
GORC_API int gorc_set_mutex_profile_fraction(int rate);

/* ------------------------------------------------------------------------------------------
 * Runtime metrics (Go's runtime/metrics)
 * ---------------------------------------------------------------------------------------- */

typedef enum gorc_metric_kind {
    GORC_METRIC_BAD = 0,   /* no metric of that name */
    GORC_METRIC_COUNTER,   /* only grows: events since start */
    GORC_METRIC_GAUGE,     /* a level now */
    GORC_METRIC_HISTOGRAM, /* counts per bucket */
} gorc_metric_kind;

/* A metric: its name (Go's form: "/sched/latencies:seconds", the unit after the colon), what
 * it means, its kind. Names and meanings are stable; new metrics may be added. */
typedef struct gorc_metric_desc {
    const char *name;
    const char *description;
    gorc_metric_kind kind;
} gorc_metric_desc;

/* Every metric (the array is static; *n gets its length when n is not NULL). It cannot fail.
 * Go: metrics.All. */
GORC_API const gorc_metric_desc *gorc_metrics_all(size_t *n);

#define GORC_METRIC_MAX_BUCKETS 32

/* One value to read: set name, gorc_metrics_read fills the rest. */
typedef struct gorc_metric_sample {
    const char *name;      /* in */
    gorc_metric_kind kind; /* GORC_METRIC_BAD for an unknown name */
    uint64_t value;        /* counters and gauges; for a histogram, its total count */
    /* Histograms: counts[i] values fell in [bounds[i], bounds[i + 1]) (in the metric's unit;
     * the last bound is +Inf), for i < nbuckets; sum is their total (NAN if unknown). */
    size_t nbuckets;
    const double *bounds;
    uint64_t counts[GORC_METRIC_MAX_BUCKETS];
    double sum;
} gorc_metric_sample;

/* Read the named metrics into samples[0..n). Costs the caller a walk over every thread and
 * goroutine; the scheduler keeps per-thread counters and is never slowed by it. It cannot
 * fail (unknown names get GORC_METRIC_BAD; so does every sample if the runtime cannot start).
 * Go: metrics.Read. */
GORC_API void gorc_metrics_read(gorc_metric_sample *samples, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* GORC_DEBUG_H */
