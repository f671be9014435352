/*
 * sync.h - the real layouts of the public sync types (gorc_mutex and the rest are opaque
 * storage in gorc.h), for sync.c and for tests that check their invariants.
 *
 * Each gorc__X_of() turns a public object into its layout; static assertions check that every
 * layout fits its storage. Both agree that all-zero means "unlocked, empty, ready to use".
 * Every queue `q` is guarded by the object's `qlock` spin word (sync.c explains the protocol).
 */
#ifndef GORC_SYNC_H
#define GORC_SYNC_H

#include "runtime/runtime.h"

#include <stddef.h>

typedef struct gorc__mutex {
    _Atomic uint32_t state; /* LOCKED | WOKEN | STARVING | waiters << M_WSHIFT */
    _Atomic uint32_t qlock; /* guards q */
    gorc__waitq q;
} gorc__mutex;

typedef struct gorc__rwmutex {
    gorc__mutex w;             /* held by the writer while it holds or waits for the lock */
    _Atomic int32_t readers;   /* readers inside, minus RW_MAX_READERS while a writer waits */
    _Atomic int32_t departing; /* readers the waiting writer still waits for */
    _Atomic uint32_t qlock;    /* guards rq and wq */
    gorc__waitq rq, wq;
} gorc__rwmutex;

typedef struct gorc__waitgroup {
    _Atomic int64_t count;  /* counter << 32 | waiters */
    _Atomic uint32_t qlock; /* guards q */
    gorc__waitq q;
} gorc__waitgroup;

typedef struct gorc__once {
    _Atomic uint32_t done;
    gorc__mutex m;
} gorc__once;

typedef struct gorc__cond {
    gorc_mutex *l;          /* public: the same first member as gorc_cond */
    _Atomic uint32_t qlock; /* guards q */
    gorc__waitq q;
} gorc__cond;

typedef struct gorc__sema {
    _Atomic int64_t avail;  /* permits not granted; changed under qlock or by CAS */
    _Atomic uint32_t qlock; /* guards q */
    gorc__waitq q;
} gorc__sema;

#define GORC__FITS(pub, priv)                                                                      \
    _Static_assert(sizeof(priv) <= sizeof(pub) && _Alignof(priv) <= _Alignof(pub),                 \
                   #priv " does not fit in " #pub)
GORC__FITS(gorc_mutex, gorc__mutex);
GORC__FITS(gorc_rwmutex, gorc__rwmutex);
GORC__FITS(gorc_waitgroup, gorc__waitgroup);
GORC__FITS(gorc_once, gorc__once);
GORC__FITS(gorc_cond, gorc__cond);
GORC__FITS(gorc_sema, gorc__sema);
_Static_assert(offsetof(gorc__cond, l) == offsetof(gorc_cond, l), "gorc_cond.l moved");

static inline gorc__mutex *gorc__mutex_of(gorc_mutex *m)
{
    return (gorc__mutex *)(void *)m;
}
static inline gorc__rwmutex *gorc__rwmutex_of(gorc_rwmutex *rw)
{
    return (gorc__rwmutex *)(void *)rw;
}
static inline gorc__waitgroup *gorc__waitgroup_of(gorc_waitgroup *wg)
{
    return (gorc__waitgroup *)(void *)wg;
}
static inline gorc__once *gorc__once_of(gorc_once *o)
{
    return (gorc__once *)(void *)o;
}
static inline gorc__cond *gorc__cond_of(gorc_cond *c)
{
    return (gorc__cond *)(void *)c;
}
static inline gorc__sema *gorc__sema_of(gorc_sema *s)
{
    return (gorc__sema *)(void *)s;
}

typedef struct gorc__cancel gorc__cancel;
/* gorc_sema_acquire that also gives up, with cx's error, when cx is cancelled (cx NULL: never).
 * -EINVAL for n <= 0. */
int gorc__sema_acquire_cancel(gorc_sema *s, int64_t n, gorc__cancel *cx);

#endif
