/*
 * chan.h - channel internals shared by chan.c and select.c.
 */
#ifndef GORC_CHAN_H
#define GORC_CHAN_H

#include "runtime/runtime.h"

/* A goroutine waiting on a channel. It lives on the waiting goroutine's stack: the goroutine
 * cannot return (and free it) before it is woken, and whoever wakes it first takes it off the
 * queue under the channel lock. */
typedef struct gorc__sudog {
    gorc__g *g;
    struct gorc__sudog *next, *prev;
    void *elem; /* value to send, or where to receive into (may be NULL) */
    gorc_chan *c;
    int caseidx; /* select: which case this is */
    bool isselect;
    bool success; /* woken by a completed transfer (false: by close) */
} gorc__sudog;

typedef struct gorc__waitlist {
    gorc__sudog *first, *last;
} gorc__waitlist;

struct gorc_chan {
    gorc__lock lock;
    _Atomic uint32_t closed;
    _Atomic size_t count; /* elements in buf (read without the lock by the fast paths) */
    size_t cap;
    size_t elemsize;
    size_t sendx, recvx;
    char *buf;
    gorc__waitlist recvq, sendq;
    _Atomic int64_t refs;
};

void gorc__waitlist_push(gorc__waitlist *q, gorc__sudog *s);
void gorc__waitlist_remove(gorc__waitlist *q, gorc__sudog *s);
/* Pop the first waiter that can still be woken (a select waiter another case already won is
 * skipped). */
gorc__sudog *gorc__waitlist_take(gorc__waitlist *q);

/* Transfers with the lock held. The first two return the partner goroutine, to be readied by
 * the caller after it releases the lock. */
gorc__g *gorc__chan_send_to(gorc_chan *c, gorc__sudog *sg, const void *elem);
gorc__g *gorc__chan_recv_from(gorc_chan *c, gorc__sudog *sg, void *elem);
void gorc__chan_bufsend(gorc_chan *c, const void *elem);
void gorc__chan_bufrecv(gorc_chan *c, void *elem);

static inline void *gorc__chan_slot(gorc_chan *c, size_t i)
{
    return c->buf + i * c->elemsize;
}

#endif
