/*
 * netpoll.h - the network poller: poll descriptors, and the contract every backend fulfils.
 *
 * Three layers, as in Go:
 *   net/fd.c, net/net.c     descriptors as the user sees them (locks, references, syscalls)
 *   runtime/netpoll.c       poll descriptors (gorc__pd): who waits for which direction of which
 *                           descriptor, deadlines, the count of I/O waiters; no system calls
 *   os/netpoll_<name>.c     the backend: the kernel's readiness interface. The build compiles
 *                           exactly one, chosen by POLLER=<name> (default: epoll).
 *
 * THE BACKEND CONTRACT. A backend is one file that defines these five functions and nothing
 * else that the rest of gorc calls (everything else in it is static):
 *
 *   int gorc__netpoll_init(void)
 *       Called once, from the runtime's start-up, before any other backend function and before
 *       any worker thread exists. Returns 0, or a negative errno; on failure it must release
 *       everything it acquired (the runtime then fails to start with -EAGAIN and never calls
 *       the backend again).
 *
 *   int gorc__netpoll_open(int fd, gorc__pd *pd)
 *       Start watching fd, a non-blocking descriptor, for both directions, once for its whole
 *       life: no call is made per read or write. Readiness must be reported edge-style (a
 *       change after the last report produces a new report; a level that persists need not be
 *       repeated), because netpoll.c remembers what it was told. Events must identify the
 *       descriptor by (pd->idx, pd->seq), never by pointer alone, so that an event that races
 *       with a close is recognised as stale by gorc__pd_lookup. Returns 0 or a negative errno
 *       (fd is then not watched). May be called from any thread, concurrently.
 *
 *   void gorc__netpoll_close(int fd)
 *       Stop watching fd, which is still open. After it returns no new event for fd may be
 *       reported, though one already collected by a concurrent gorc__netpoll may be (that is
 *       what the sequence number is for). Any thread, concurrently.
 *
 *   gorc__g *gorc__netpoll(int64_t timeout_ns, gorc__g **tail, int *n)
 *       Wait up to timeout_ns (-1: forever, 0: do not block) for readiness, then call
 *       gorc__netpoll_ready for each ready descriptor and direction, and gorc__pd_unusual
 *       first for out-of-band data, hang-up or error. Returns the readied goroutines as a list
 *       (head returned, *tail and *n set; NULL and 0 when none). Any number of threads may
 *       call it with timeout 0 at once; the scheduler guarantees that at most one blocks in it.
 *       A blocking call may return early with nothing (a signal, a break): the caller
 *       recomputes its timeout and comes back. It must not round a timeout down: a timer found
 *       not yet due would be slept on again.
 *
 *   void gorc__netpoll_break(void)
 *       Make a blocked gorc__netpoll return soon, or the next one return at once if none is
 *       blocked. Callable from any thread, including from timer functions and with runtime
 *       locks held, so it must not block or allocate. Several breaks may coalesce into one; a
 *       non-blocking gorc__netpoll must not consume a break meant for a blocking one.
 *
 * What a backend may assume: the runtime has started (init succeeded) before open, close,
 * netpoll or break run; a descriptor is opened once before it is closed, and closed before its
 * number can be reused; gorc__pd_lookup and gorc__netpoll_ready may be called from inside
 * gorc__netpoll on any thread. What it must not do: park goroutines, take locks that
 * goroutines park under, or read the scheduler's state.
 *
 * The scheduler sees only gorc__netpoll_init, gorc__netpoll, gorc__netpoll_break and
 * gorc__netpoll_waiters; net/fd.c sees the gorc__pd functions.
 */
#ifndef GORC_NETPOLL_H
#define GORC_NETPOLL_H

#include "runtime/runtime.h"

/* Per-direction state word of a poll descriptor (Go's pdNil / pdReady / pdWait), or the
 * address of the goroutine parked on it. */
#define GORC__PD_NIL   ((uintptr_t)0)
#define GORC__PD_READY ((uintptr_t)1)
#define GORC__PD_WAIT  ((uintptr_t)2)

/* pd->info bits, readable without the lock. */
#define GORC__PD_CLOSING    1u
#define GORC__PD_RD_EXPIRED 2u
#define GORC__PD_WD_EXPIRED 4u
#define GORC__PD_RD_INTR    8u  /* reads interrupted (gorc__pd_interrupt) */
#define GORC__PD_WD_INTR    16u /* writes interrupted */

typedef struct gorc__pd gorc__pd;

struct gorc__pd {
    _Atomic uintptr_t rg, wg; /* GORC__PD_* or the waiting gorc__g * */
    _Atomic uint32_t info;    /* GORC__PD_CLOSING | _RD_EXPIRED | _WD_EXPIRED | _RD/WD_INTR */
    _Atomic uint32_t seq;     /* bumped when the descriptor is recycled: stale events */
    _Atomic uint32_t unusual; /* out-of-band data, hang-up or error was seen: see fd.c */
    uint32_t idx;             /* position in the descriptor table (backend event tag) */
    int fd;
    gorc__lock lock; /* deadlines, timers, interruptions, closing */
    bool closing;
    bool rintr, wintr; /* interrupted directions (gorc__pd_interrupt) */
    int64_t rd, wd;    /* deadlines: 0 none, -1 expired, else gorc_now() time */
    gorc__timer rt, wt;
    gorc__pd *next; /* free list */
    /* A descriptor made inside a simulation run is the run's: the run polls it itself at its
     * quiescent points, in a fixed order, and the backend never sees it until the run ends
     * (src/sim/sim.c). Written by the run's thread only. */
    gorc__sim *sim;
    int simidx;
    /* A simulated socket's (src/net/simnet.c): no kernel object behind it, nothing polls it;
     * the simulated network readies it. Set at open, before the descriptor is shared. */
    bool simvirt;
};

/* ---- used by fd.c ---- */

/* A descriptor from the cache, registered with the backend for fd (opened by a goroutine of
 * a simulation run: given to the run instead). 0 or a negative errno. */
int gorc__pd_open(gorc__pd **out, int fd);
/* A descriptor for a simulated socket: never registered with the backend nor polled by a
 * run; only gorc__netpoll_ready readies it. 0 or -ENOMEM. */
int gorc__pd_open_virtual(gorc__pd **out, int fd);
/* Unregister and recycle; no goroutine may be waiting on pd (evict first). */
void gorc__pd_close(gorc__pd *pd);
/* Closing: every waiter, present and future, gets -EBADF. */
void gorc__pd_evict(gorc__pd *pd);
/* Deadline for mode 'r', 'w' or 'r' + 'w': an absolute gorc_now() time, 0 for none. */
void gorc__pd_set_deadline(gorc__pd *pd, int64_t when, int mode);
/* Interrupt mode 'r' or 'w' (on) or end the interruption (off). While a direction is
 * interrupted its waiter is woken and every wait and check in it fails with -ECANCELED, as
 * with an expired deadline, but the deadline itself is left as it is. For the cancellable
 * calls of net/fd.c, which interrupt only a direction whose lock they hold. Takes pd->lock
 * and may ready a goroutine: callable from a cancellation hook. */
void gorc__pd_interrupt(gorc__pd *pd, int mode, bool on);
/* Wait until the direction may be ready. 0, -EBADF (closing), -ECANCELED (interrupted) or
 * -ETIMEDOUT (deadline). */
int gorc__pd_wait(gorc__pd *pd, int mode);
/* The same, but also return 0 at `until` (used to back off on EMFILE while still
 * noticing close and deadlines). */
int gorc__pd_wait_until(gorc__pd *pd, int mode, int64_t until);

/* Error a closed, interrupted or expired descriptor gives for mode, or 0. */
static inline int gorc__pd_check(gorc__pd *pd, int mode)
{
    uint32_t info = atomic_load_explicit(&pd->info, memory_order_acquire);
    if (GORC__LIKELY(info == 0))
        return 0;
    if (info & GORC__PD_CLOSING)
        return -EBADF;
    if ((mode == 'r' && (info & GORC__PD_RD_INTR)) || (mode == 'w' && (info & GORC__PD_WD_INTR)))
        return -ECANCELED;
    if ((mode == 'r' && (info & GORC__PD_RD_EXPIRED)) ||
        (mode == 'w' && (info & GORC__PD_WD_EXPIRED)))
        return -ETIMEDOUT;
    return 0;
}

/* The backend saw out-of-band data, a hang-up or an error; call before gorc__netpoll_ready
 * for the same event. */
static inline void gorc__pd_unusual(gorc__pd *pd)
{
    atomic_store_explicit(&pd->unusual, 1, memory_order_release);
}

/* ---- the backend (os/netpoll_<name>.c): see the contract above ---- */

int gorc__netpoll_init(void);
int gorc__netpoll_open(int fd, gorc__pd *pd);
void gorc__netpoll_close(int fd);
gorc__g *gorc__netpoll(int64_t timeout_ns, gorc__g **tail, int *n);
void gorc__netpoll_break(void);

/* ---- used by the scheduler (netpoll.c) ---- */

/* Goroutines waiting on I/O (they can be woken, so they do not count toward a deadlock). */
int64_t gorc__netpoll_waiters(void);

/* ---- used by the backend (netpoll.c) ---- */

/* The descriptor for an event's tag, or NULL if the tag is stale. */
gorc__pd *gorc__pd_lookup(uint32_t idx, uint32_t seq);

/* A list of goroutines made runnable by one poll. */
typedef struct gorc__glist {
    gorc__g *head, *tail;
    int n;
} gorc__glist;

/* Readiness for mode 'r', 'w' or 'r' + 'w': wake the waiters into l. */
void gorc__netpoll_ready(gorc__pd *pd, int mode, gorc__glist *l);

#endif
