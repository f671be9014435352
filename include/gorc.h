/*
 * gorc.h - goroutines, channels, select, timers and sync for C.
 *
 * This is the whole public API of the gorc core runtime. Every exported symbol starts with
 * `gorc_`; everything named `gorc__` is internal and may change.
 *
 * Conventions (see docs/api.md for the full reference):
 *  - Errors are returned as negative errno values (0 or a positive result means success).
 *    errno is never used to report errors: it belongs to a thread, and goroutines move
 *    between threads.
 *  - Where Go panics but the caller can recover (send on a closed channel, close of a closed
 *    channel, negative WaitGroup counter) gorc returns an error. Where Go's runtime dies
 *    (deadlock, stack overflow, unlock of an unlocked mutex) gorc prints a message in Go's
 *    words to stderr and exits with status 2.
 *  - Durations and times are int64_t nanoseconds on the monotonic clock.
 */
#ifndef GORC_H
#define GORC_H

#include "gorc_version.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Marks every public function: the shared library exports these and nothing else (it is built
 * with -fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define GORC_API __attribute__((visibility("default")))
#else
#define GORC_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes returned by gorc functions (negated). They are errno values, some with a meaning
 * of gorc's own: gorc_strerror gives the text for both. */
#define GORC_ECLOSED   (-EPIPE)     /* the channel is closed */
#define GORC_EAGAIN    (-EAGAIN)    /* the operation would block */
#define GORC_ETIMEDOUT (-ETIMEDOUT) /* the deadline passed */
#define GORC_ENOMEM    (-ENOMEM)
#define GORC_EINVAL    (-EINVAL)

/* The message for an error code gorc returned (negative, or its positive errno value), in Go's
 * words where gorc's meaning is Go's ("use of closed network connection", "i/o timeout"); "success"
 * for 0. Never NULL; the string is static. Go: err.Error(). */
GORC_API const char *gorc_strerror(int err);

/* The version of the library linked in (which may differ from GORC_VERSION_* of the header the
 * program was built with): GORC_VERSION_NUMBER's encoding, and "MAJOR.MINOR.PATCH". Go:
 * runtime.Version(). */
GORC_API int gorc_version(void);
GORC_API const char *gorc_version_string(void);

/* Duration helpers, in nanoseconds (as Go's time.Duration). */
#define GORC_NANOSECOND  ((int64_t)1)
#define GORC_MICROSECOND ((int64_t)1000)
#define GORC_MILLISECOND ((int64_t)1000000)
#define GORC_SECOND      ((int64_t)1000000000)

/* ------------------------------------------------------------------------------------------
 * Runtime and goroutines
 * ---------------------------------------------------------------------------------------- */

typedef void (*gorc_fn)(void *arg);

/* Start the runtime (if not started yet), run fn(arg) as a new goroutine and wait until it
 * returns. Other goroutines are not waited for. Returns 0; -EINVAL if fn is NULL or the caller
 * is itself a goroutine; -EBUSY if another thread's gorc_main is running; -ENOMEM / -EAGAIN if
 * the runtime could not start. May be called again after it returns; see docs/api.md for what
 * happens to goroutines left running. Go: func main(). */
GORC_API int gorc_main(gorc_fn fn, void *arg);

/* Options for gorc_go_ex. Zero-initialise and set what you need. */
typedef struct gorc_go_opts {
    size_t stack_size; /* usable stack bytes; 0 = default (GORC_STACK_SIZE or 64 KiB) */
} gorc_go_opts;

/* Start fn(arg) in a new goroutine. Returns 0; -EINVAL if fn is NULL (or, for gorc_go_ex, a
 * stack_size outside 4 KiB..16 GiB); -ENOMEM if the goroutine's record cannot be allocated;
 * -ENOMEM too if no address space is left for its stack (a custom-size stack is mapped here;
 * a default one is reserved here and taken when the goroutine first runs, so that cannot
 * fail); -EAGAIN if the runtime failed to start. Callable from goroutines and from any other
 * thread. Go: go fn(arg). */
GORC_API int gorc_go(gorc_fn fn, void *arg);
GORC_API int gorc_go_ex(gorc_fn fn, void *arg, const gorc_go_opts *attr);

/* The current goroutine's id (unique for the life of the process, never 0), or 0 when called
 * from a thread that is not running a goroutine. */
GORC_API uint64_t gorc_id(void);

/* Let other goroutines run; the caller is put back in the global run queue. Go:
 * runtime.Gosched(). */
GORC_API void gorc_yield(void);

/* Number of goroutines that exist (running, runnable or blocked). Go: runtime.NumGoroutine. */
GORC_API int64_t gorc_count(void);

/* Number of Ps (processors running goroutines in parallel). Fixed when the runtime starts:
 * GORC_MAXPROCS if set, else the CPUs this process may use (affinity mask and cgroup v2
 * cpu.max quota). Go: runtime.GOMAXPROCS(0). */
GORC_API int gorc_maxprocs(void);

/* Run fn(arg), a call that may block in the kernel or in a C library (file I/O, getaddrinfo,
 * a database client), without holding up other goroutines: the caller's P is handed to
 * another thread for the duration, and re-acquired afterwards (the goroutine may then wait
 * for a free P). Returns fn's result. Go: what every system call does (entersyscall). */
GORC_API void *gorc_blocking(void *(*fn)(void *), void *arg);
/* The same as a bracket around code that is not a single function call. Calls do not nest:
 * an enter inside an enter is ignored. No gorc function that may park (channels, sleep, sync)
 * may be called between them. */
GORC_API void gorc_blocking_enter(void);
GORC_API void gorc_blocking_exit(void);

/* Declare the calling thread, which the runtime did not create, as one that may wake
 * goroutines (send on channels, spawn, unlock...). While any such thread exists, deadlock
 * detection is off, since the runtime cannot know what it will do. A thread counts from its
 * first call to this function, gorc_go or gorc_go_ex, a channel operation (send, receive,
 * their try forms, close) or a select, or from the first time it waits in any other gorc call
 * (a sync call that blocks, network I/O), until it exits - also when that call came before the
 * runtime started. Other calls do not count it: making, releasing or measuring channels, sync
 * calls that do not wait (an uncontended lock, unlock, waitgroup add/done, signal, release),
 * timers, gorc_sleep. So call this before goroutines start waiting for the thread, as those
 * may otherwise be reported deadlocked first. Harmless on runtime threads. */
GORC_API void gorc_foreign_attach(void);

/* Leak checks (Go: go.uber.org/goleak, and Go 1.27's goroutineleak profile).
 *
 * gorc_leak_mark returns a mark: every goroutine started after the call has a larger id (ids
 * only grow). gorc_leak_check waits up to timeout_ns for every goroutine started after mark
 * to finish - except the calling goroutine and the runtime's own (the signal goroutine) -
 * then prints one report per survivor to stderr: id, state and wait reason, how long it has
 * been parked and on what (a channel, or a sync object's lock word), the function it was
 * started with and where it was spawned (addresses, with the module and offset for addr2line
 * or gdb). A survivor blocked where nothing can ever wake it (a nil channel, a select with no
 * cases) is marked "certain leak". Returns the number of survivors (0: none). A mark of 0
 * checks every goroutine. Marking turns on the park-time bookkeeping (one clock read per
 * park), which stays on for the process. It cannot fail. With GORC_LEAKCHECK=1 in the
 * environment, gorc_main runs the check (timeout GORC_LEAKCHECK_MS, default 1000) on the
 * goroutines started during its call when its function returns, and exits with status 2 if
 * any survived. */
GORC_API uint64_t gorc_leak_mark(void);
GORC_API int gorc_leak_check(uint64_t mark, int64_t timeout_ns);

/* Print every goroutine's id, state and wait reason to stderr (a goroutine dump). */
GORC_API void gorc_dump(void);

/* ------------------------------------------------------------------------------------------
 * Channels
 * ---------------------------------------------------------------------------------------- */

typedef struct gorc_chan gorc_chan;

/* Make a channel carrying elements of elem_size bytes (0 is allowed, for signal channels)
 * with a buffer of cap elements (0 = unbuffered). The channel starts with one reference.
 * Returns 0 and sets *out; -EINVAL if out is NULL, elem_size exceeds 1 GiB or the buffer size
 * overflows; -ENOMEM. Go: make(chan T, cap). */
GORC_API int gorc_chan_new(gorc_chan **out, size_t elem_size, size_t cap);

/* Reference counting: a channel is freed when its last reference is released. Releasing
 * the last reference while goroutines are blocked on the channel is a fatal error. */
GORC_API gorc_chan *gorc_chan_retain(gorc_chan *c);
GORC_API void gorc_chan_release(gorc_chan *c);

/* Send the elem_size bytes at elem, blocking until a receiver takes it or buffer space is
 * free. Returns 0, or -EPIPE if the channel is closed (also when it is closed while the
 * sender waits). A NULL channel blocks forever, as a nil channel does in Go. Go: c <- v. */
GORC_API int gorc_chan_send(gorc_chan *c, const void *elem);

/* Receive into elem (may be NULL to discard). Returns 0 with a value, or -EPIPE when the
 * channel is closed and its buffer drained (elem is then zero-filled). Go: v, ok := <-c. */
GORC_API int gorc_chan_recv(gorc_chan *c, void *elem);

/* Non-blocking forms: as above (-EPIPE when the channel is closed, for tryrecv once it is
 * drained), but -EAGAIN instead of blocking. A NULL channel always gives -EAGAIN. Go: select
 * with a default case. */
GORC_API int gorc_chan_trysend(gorc_chan *c, const void *elem);
GORC_API int gorc_chan_tryrecv(gorc_chan *c, void *elem);

/* Close the channel: blocked receivers get -EPIPE once the buffer is drained, blocked and
 * future senders get -EPIPE. Returns 0, -EPIPE if already closed, -EINVAL for NULL. */
GORC_API int gorc_chan_close(gorc_chan *c);

/* Elements buffered now, and buffer capacity. 0 for NULL. Go: len(c), cap(c). */
GORC_API size_t gorc_chan_len(gorc_chan *c);
GORC_API size_t gorc_chan_cap(gorc_chan *c);

/* ------------------------------------------------------------------------------------------
 * Select
 * ---------------------------------------------------------------------------------------- */

enum { GORC_RECV = 1, GORC_SEND = 2 };

typedef struct gorc_case {
    gorc_chan *chan; /* NULL: the case is never ready (Go's nil channel) */
    int dir;         /* GORC_RECV or GORC_SEND */
    void *elem;      /* SEND: value to send; RECV: where to store (NULL to discard) */
    bool closed;     /* out: the case was chosen because the channel is closed */
} gorc_case;

/* Wait until one case can proceed, perform it and return its index. Among several ready
 * cases the choice is uniformly random. A chosen RECV case on a closed, drained channel
 * stores a zero value and sets closed; a SEND case on a closed channel is chosen with closed
 * set and nothing sent (Go panics there). With n == 0 (or only NULL channels) it blocks
 * forever, as an empty select does in Go. Returns -EINVAL for a NULL cases array with n > 0 or
 * a case whose dir is not GORC_RECV/GORC_SEND, -ENOMEM if more than 8 active cases need
 * memory that cannot be had. Go: select { ... }. */
GORC_API int gorc_select(gorc_case *cases, size_t n);

/* Non-blocking select: returns -EAGAIN if no case is ready (also for n == 0); other errors as
 * gorc_select. Go: select with default. */
GORC_API int gorc_select_try(gorc_case *cases, size_t n);

/* Select that gives up after timeout_ns (relative) and returns -ETIMEDOUT. A negative or
 * zero timeout only polls, as gorc_select_try, and gives -ETIMEDOUT when no case is ready;
 * n == 0 just sleeps. A timeout too large to add to the clock never expires. A positive
 * timeout starts the runtime: -EAGAIN if it failed to start. Other errors as gorc_select.
 * Go: select with a case <-time.After(d). */
GORC_API int gorc_select_timeout(gorc_case *cases, size_t n, int64_t timeout_ns);

/* ------------------------------------------------------------------------------------------
 * Time
 * ---------------------------------------------------------------------------------------- */

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC). */
GORC_API int64_t gorc_now(void);

/* Park the calling goroutine for at least ns nanoseconds (returns at once if ns <= 0).
 * On a non-goroutine thread it sleeps the thread. Go: time.Sleep. */
GORC_API void gorc_sleep(int64_t ns);

typedef struct gorc_timer gorc_timer;

/* A one-shot timer: after d ns, the fire time (int64_t, gorc_now clock) is sent on its
 * channel (capacity 1; the send never blocks). Returns 0 and *out; -EINVAL if out is NULL;
 * -ENOMEM; -EAGAIN if the runtime failed to start. Timer functions may be called concurrently
 * on one timer. Go: time.NewTimer. */
GORC_API int gorc_timer_new(gorc_timer **out, int64_t d);

/* A timer that runs fn(arg) in a new goroutine after d ns; its channel is NULL. Errors as
 * gorc_timer_new, and -EINVAL if fn is NULL. Go: time.AfterFunc. */
GORC_API int gorc_after_func(gorc_timer **out, int64_t d, gorc_fn fn, void *arg);

/* The timer's channel (owned by the timer: valid until gorc_timer_free). */
GORC_API gorc_chan *gorc_timer_chan(gorc_timer *t);

/* Stop: returns true if this call prevented the timer from firing. Go: Timer.Stop. */
GORC_API bool gorc_timer_stop(gorc_timer *t);

/* Re-arm to fire d ns from now; returns true if the timer had been active. Like Go up to
 * 1.22 (Go 1.19 is gorc's reference), it does not drain a value already in the channel.
 * Go: Timer.Reset. */
GORC_API bool gorc_timer_reset(gorc_timer *t, int64_t d);

/* Stop and free the timer and its channel. */
GORC_API void gorc_timer_free(gorc_timer *t);

/* A channel that receives the fire time once, d ns from now. The caller owns one reference
 * and releases it with gorc_chan_release (the timer holds its own until it fires).
 * Returns 0 and *out; -EINVAL if out is NULL; -ENOMEM; -EAGAIN. Go: time.After. */
GORC_API int gorc_after(gorc_chan **out, int64_t d);

typedef struct gorc_ticker gorc_ticker;

/* A ticker sends the time every period ns; ticks a slow receiver misses are dropped, as in
 * Go. Returns 0 and *out; -EINVAL if out is NULL or period <= 0; -ENOMEM; -EAGAIN.
 * Go: time.NewTicker. */
GORC_API int gorc_ticker_new(gorc_ticker **out, int64_t period);
/* The ticker's channel (owned by the ticker). Go: Ticker.C. */
GORC_API gorc_chan *gorc_ticker_chan(gorc_ticker *t);
/* Stop further ticks; the channel is not closed. Go: Ticker.Stop. */
GORC_API void gorc_ticker_stop(gorc_ticker *t);
/* Stop, then tick every period ns from now (a stopped ticker starts again). Returns 0, or
 * -EINVAL if t is NULL or period <= 0. Go: Ticker.Reset. */
GORC_API int gorc_ticker_reset(gorc_ticker *t, int64_t period);
/* Stop the ticker, release its channel and free it. */
GORC_API void gorc_ticker_free(gorc_ticker *t);

/* ------------------------------------------------------------------------------------------
 * Sync. Every type is ready to use when zero-initialised (= {0}), as in Go, and must not be
 * copied after first use. Waiters park their goroutine (or, on a foreign thread, the thread).
 * ---------------------------------------------------------------------------------------- */

/* The sync types are opaque storage: their layout is the library's (runtime/sync.c checks that it
 * fits), they need no C11 atomics in the header, and C++ can embed them. Zero them (= {0} in
 * C, {} in C++) and do not touch the storage. */
typedef struct gorc_mutex {
    uint64_t opaque_[4];
} gorc_mutex;

/* Lock, parking the goroutine while the mutex is held. A waiter that waits over 1 ms switches
 * the mutex to handoff mode (Go's starvation mode) so it cannot be starved. */
GORC_API void gorc_mutex_lock(gorc_mutex *m);
/* Returns true if the lock was taken without waiting. */
GORC_API bool gorc_mutex_trylock(gorc_mutex *m);
/* Unlock; unlocking an unlocked mutex is fatal ("sync: unlock of unlocked mutex"). */
GORC_API void gorc_mutex_unlock(gorc_mutex *m);

typedef struct gorc_rwmutex {
    uint64_t opaque_[10];
} gorc_rwmutex;

/* Any number of readers or one writer; once a writer waits, new readers wait behind it. lock
 * and unlock take and release the write lock, rlock and runlock a read lock; the try forms
 * return true if they took it without waiting. Unlocking what is not locked is fatal.
 * Go: sync.RWMutex. */
GORC_API void gorc_rwmutex_lock(gorc_rwmutex *rw);
GORC_API void gorc_rwmutex_unlock(gorc_rwmutex *rw);
GORC_API void gorc_rwmutex_rlock(gorc_rwmutex *rw);
GORC_API void gorc_rwmutex_runlock(gorc_rwmutex *rw);
GORC_API bool gorc_rwmutex_trylock(gorc_rwmutex *rw);
GORC_API bool gorc_rwmutex_tryrlock(gorc_rwmutex *rw);

typedef struct gorc_waitgroup {
    uint64_t opaque_[4];
} gorc_waitgroup;

/* Add delta to the counter; returns 0, or -EINVAL (counter left unchanged) if it would
 * become negative ("sync: negative WaitGroup counter" in Go) or exceed INT32_MAX.
 * Go: WaitGroup.Add. */
GORC_API int gorc_waitgroup_add(gorc_waitgroup *wg, int64_t delta);
/* gorc_waitgroup_add(wg, -1), with its errors as gorc_waitgroup_add. Go: WaitGroup.Done. */
GORC_API int gorc_waitgroup_done(gorc_waitgroup *wg);
/* Block until the counter is zero. */
GORC_API void gorc_waitgroup_wait(gorc_waitgroup *wg);

/* A goroutine started by gorc_waitgroup_go: wg's counter is incremented before it starts and
 * decremented when fn returns. Returns 0; -EINVAL if wg or fn is NULL; -ENOMEM; -EAGAIN (the
 * runtime failed to start). On an error the counter is left unchanged. Go: WaitGroup.Go. */
GORC_API int gorc_waitgroup_go(gorc_waitgroup *wg, gorc_fn fn, void *arg);

typedef struct gorc_once {
    uint64_t opaque_[4];
} gorc_once;

/* Run fn(arg) exactly once across all callers; later callers wait until it has returned. */
GORC_API void gorc_once_do(gorc_once *o, gorc_fn fn, void *arg);

typedef struct gorc_cond {
    gorc_mutex *l; /* the lock held around wait: set before first use */
    uint64_t opaque_[3];
} gorc_cond;

/* Atomically unlock c->l and park; relock before returning. Go: sync.Cond. */
GORC_API void gorc_cond_wait(gorc_cond *c);
GORC_API void gorc_cond_signal(gorc_cond *c);
GORC_API void gorc_cond_broadcast(gorc_cond *c);

typedef struct gorc_sema {
    uint64_t opaque_[4]; /* permits are set with gorc_sema_init */
} gorc_sema;

/* A counting semaphore (Go's x/sync/semaphore.Weighted with FIFO waiters). */
GORC_API void gorc_sema_init(gorc_sema *s, int64_t permits);
/* Acquire n permits (n > 0), waiting as needed; -EINVAL if n <= 0. */
GORC_API int gorc_sema_acquire(gorc_sema *s, int64_t n);
/* As above (-EINVAL if n <= 0) but gives up after timeout_ns with -ETIMEDOUT, taking
 * nothing. */
GORC_API int gorc_sema_acquire_timeout(gorc_sema *s, int64_t n, int64_t timeout_ns);
GORC_API bool gorc_sema_tryacquire(gorc_sema *s, int64_t n);
GORC_API void gorc_sema_release(gorc_sema *s, int64_t n);

#ifdef __cplusplus
}
#endif
#endif /* GORC_H */
