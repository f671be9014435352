/*
 * netpoll.h - the poller's internal interface: poll descriptors and the backend contract.
 *
 * Three layers, as in Go:
 *   fd.c / net*.c      descriptors as the user sees them (locks, reference counts, syscalls)
 *   netpoll.c          poll descriptors (gorc__pd): who waits for which direction of which
 *                      descriptor, deadlines, the count of I/O waiters; no system calls
 *   netpoll_<os>.c     the kernel interface: register a descriptor once, wait for readiness,
 *                      report it through gorc__netpoll_ready (epoll today; kqueue or io_uring
 *                      would be files of their own implementing the same five functions)
 * The scheduler only sees the four functions declared in runtime.h.
 */
#ifndef GORC_NETPOLL_H
#define GORC_NETPOLL_H

#include "runtime.h"

/* Per-direction state word of a poll descriptor (Go's pdNil / pdReady / pdWait), or the
 * address of the goroutine parked on it. */
#define GORC__PD_NIL   ((uintptr_t)0)
#define GORC__PD_READY ((uintptr_t)1)
#define GORC__PD_WAIT  ((uintptr_t)2)

/* pd->info bits, readable without the lock. */
#define GORC__PD_CLOSING    1u
#define GORC__PD_RD_EXPIRED 2u
#define GORC__PD_WD_EXPIRED 4u

typedef struct gorc__pd gorc__pd;

struct gorc__pd {
    _Atomic uintptr_t rg, wg; /* GORC__PD_* or the waiting gorc__g * */
    _Atomic uint32_t info;    /* GORC__PD_CLOSING | _RD_EXPIRED | _WD_EXPIRED */
    _Atomic uint32_t seq;     /* bumped when the descriptor is recycled: stale events */
    _Atomic uint32_t unusual; /* out-of-band data, hang-up or error was seen: see fd.c */
    uint32_t idx;             /* position in the descriptor table (backend event tag) */
    int fd;
    gorc__lock lock; /* deadlines, timers, closing */
    bool closing;
    int64_t rd, wd; /* deadlines: 0 none, -1 expired, else gorc_now() time */
    gorc__timer rt, wt;
    gorc__pd *next; /* free list */
};

/* ---- used by fd.c ---- */

/* A descriptor from the cache, registered with the backend for fd. 0 or a negative errno. */
int gorc__pd_open(gorc__pd **out, int fd);
/* Unregister and recycle; no goroutine may be waiting on pd (evict first). */
void gorc__pd_close(gorc__pd *pd);
/* Closing: every waiter, present and future, gets -EBADF. */
void gorc__pd_evict(gorc__pd *pd);
/* Deadline for mode 'r', 'w' or 'r' + 'w': an absolute gorc_now() time, 0 for none. */
void gorc__pd_set_deadline(gorc__pd *pd, int64_t when, int mode);
/* Wait until the direction may be ready. 0, -EBADF (closing) or -ETIMEDOUT (deadline). */
int gorc__pd_wait(gorc__pd *pd, int mode);
/* The same, but also return 0 at `until` (used to back off on EMFILE while still
 * noticing close and deadlines). */
int gorc__pd_wait_until(gorc__pd *pd, int mode, int64_t until);

/* Error a closed or expired descriptor gives for mode, or 0. */
static inline int gorc__pd_check(gorc__pd *pd, int mode)
{
    uint32_t info = atomic_load_explicit(&pd->info, memory_order_acquire);
    if (GORC_LIKELY(info == 0))
        return 0;
    if (info & GORC__PD_CLOSING)
        return -EBADF;
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

/* ---- the backend contract (netpoll_<os>.c) ---- */

/* Register fd, edge-triggered, for both directions; events carry (pd->idx, pd->seq). */
int gorc__netpoll_open(int fd, gorc__pd *pd);
/* Unregister fd (it is still open). */
void gorc__netpoll_close(int fd);

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
