/*
 * chan.c - channels.
 *
 * A channel is Go's hchan: a lock, a ring buffer of cap elements, and two queues of waiting
 * goroutines (receivers, senders). The invariants are Go's:
 *   - a waiting receiver exists only if the buffer is empty;
 *   - a waiting sender exists only if the buffer is full (always, for cap 0).
 * So a send first looks for a waiting receiver and copies its value straight into the
 * receiver's variable on the receiver's stack - no trip through the buffer, and the receiver
 * wakes with its value already in place. A receive that finds a waiting sender on a full
 * buffer takes the oldest buffered value and moves the sender's value into the freed slot,
 * which keeps each sender's values in order.
 *
 * Waiters (sudogs) live on the waiting goroutine's stack, so blocking allocates nothing. A
 * goroutine parks with the channel lock still held; the scheduler releases it only once the
 * goroutine has switched out (see gorc__park), which is what lets a waker ready it safely.
 *
 * The non-blocking fast paths (trysend on a full buffer, tryrecv on an empty one) answer
 * without the lock, as Go's do: closed and count are atomics and a stale answer is one that
 * was true an instant ago. That takes care with the order of the two loads; see chan_recv.
 * (Go also peeks at the wait queues of unbuffered channels without the lock; that is a data
 * race in C11 terms, so gorc takes the lock there.)
 *
 * Lifetime: a channel is reference counted (gorc_chan_retain/release) since C has no GC.
 */
#include "runtime/chan.h"
#include "sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gorc__waitlist_push(gorc__waitlist *q, gorc__sudog *s)
{
    s->next = NULL;
    s->prev = q->last;
    if (q->last)
        q->last->next = s;
    else
        q->first = s;
    q->last = s;
}

void gorc__waitlist_remove(gorc__waitlist *q, gorc__sudog *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else if (q->first == s)
        q->first = s->next;
    else
        return; /* not queued */
    if (s->next)
        s->next->prev = s->prev;
    else
        q->last = s->prev;
    s->next = s->prev = NULL;
}

gorc__sudog *gorc__waitlist_take(gorc__waitlist *q)
{
    for (;;) {
        gorc__sudog *s = q->first;
        if (s == NULL)
            return NULL;
        q->first = s->next;
        if (q->first)
            q->first->prev = NULL;
        else
            q->last = NULL;
        s->next = s->prev = NULL;
        if (s->isselect) {
            uint32_t zero = 0;
            if (!atomic_compare_exchange_strong(&s->g->selectdone, &zero, 1))
                continue; /* another case of that select already won */
        }
        return s;
    }
}

int gorc_chan_new(gorc_chan **out, size_t elem_size, size_t cap)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (elem_size > (1u << 30) || (elem_size && cap > SIZE_MAX / 2 / elem_size))
        return -EINVAL;
    if (gorc__sim_on() && gorc__sim_fault(GORC_SIM_FAULT_CHAN))
        return -ENOMEM;
    gorc_chan *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    if (cap > 0 && elem_size > 0) {
        c->buf = malloc(cap * elem_size);
        if (c->buf == NULL) {
            free(c);
            return -ENOMEM;
        }
    }
    c->cap = cap;
    c->elemsize = elem_size;
    atomic_store(&c->refs, 1);
    *out = c;
    return 0;
}

gorc_chan *gorc_chan_retain(gorc_chan *c)
{
    if (c)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void gorc_chan_release(gorc_chan *c)
{
    if (c == NULL || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    gorc__lock_acquire(&c->lock);
    bool waiters = c->recvq.first || c->sendq.first;
    gorc__lock_release(&c->lock);
    if (waiters)
        gorc__fatal("gorc_chan_release: last reference to a channel dropped while goroutines "
                    "are blocked on it");
    free(c->buf);
    free(c);
}

static void unlock_chan(void *arg)
{
    gorc__lock_release(&((gorc_chan *)arg)->lock);
}

/* Element copies are on every operation's path; the common sizes get fixed-size copies the
 * compiler turns into single moves instead of a call to memcpy. Inlined, like the buffer
 * helpers and chan_send/chan_recv below: every call level on this path costs a call, a return
 * and (the library keeps frame pointers for tracebacks) a frame, which on a buffered
 * channel's send or receive was a tenth of the instructions. */
static inline __attribute__((always_inline)) void copy_elem(gorc_chan *c, void *dst,
                                                            const void *src)
{
    if (dst == NULL)
        return;
    switch (c->elemsize) {
    case 0:
        return;
    case 4:
        memcpy(dst, src, 4);
        return;
    case 8:
        memcpy(dst, src, 8);
        return;
    case 16:
        memcpy(dst, src, 16);
        return;
    default:
        memcpy(dst, src, c->elemsize);
    }
}

/* Lock held; a receiver is waiting: hand elem over. Returns the goroutine to ready once the
 * lock is released. */
gorc__g *gorc__chan_send_to(gorc_chan *c, gorc__sudog *sg, const void *elem)
{
    copy_elem(c, sg->elem, elem);
    sg->success = true;
    sg->g->param = sg;
    return sg->g;
}

/* Lock held; a sender is waiting (so an unbuffered channel, or a full buffer): take the
 * oldest value. Returns the goroutine to ready once the lock is released. */
gorc__g *gorc__chan_recv_from(gorc_chan *c, gorc__sudog *sg, void *elem)
{
    if (c->cap == 0) {
        copy_elem(c, elem, sg->elem);
    } else {
        void *slot = gorc__chan_slot(c, c->recvx);
        copy_elem(c, elem, slot);
        copy_elem(c, slot, sg->elem);
        if (++c->recvx == c->cap)
            c->recvx = 0;
        c->sendx = c->recvx;
    }
    sg->success = true;
    sg->g->param = sg;
    return sg->g;
}

/* Lock held, room in the buffer. count is stored with release ordering so that the lock-free
 * fast path that reads it also sees a close made in an earlier critical section. */
static inline __attribute__((always_inline)) void bufsend(gorc_chan *c, const void *elem)
{
    copy_elem(c, gorc__chan_slot(c, c->sendx), elem);
    if (++c->sendx == c->cap)
        c->sendx = 0;
    atomic_store_explicit(&c->count, atomic_load_explicit(&c->count, memory_order_relaxed) + 1,
                          memory_order_release);
}

/* Lock held, buffer not empty. */
static inline __attribute__((always_inline)) void bufrecv(gorc_chan *c, void *elem)
{
    copy_elem(c, elem, gorc__chan_slot(c, c->recvx));
    if (++c->recvx == c->cap)
        c->recvx = 0;
    atomic_store_explicit(&c->count, atomic_load_explicit(&c->count, memory_order_relaxed) - 1,
                          memory_order_release);
}

/* The same for select.c. */
void gorc__chan_bufsend(gorc_chan *c, const void *elem)
{
    bufsend(c, elem);
}

void gorc__chan_bufrecv(gorc_chan *c, void *elem)
{
    bufrecv(c, elem);
}

static inline __attribute__((always_inline)) int chan_send(gorc_chan *c, const void *elem,
                                                           bool block)
{
    if (c == NULL) {
        if (!block)
            return -EAGAIN;
        gorc__park(GORC__W_CHAN_SEND_NIL, NULL, NULL);
        gorc__fatal("unreachable: goroutine blocked on a nil channel was woken");
    }
    /* Not closed, then full: even if a close comes between the two loads, the channel was open
     * and full at the first (after a close, count only goes down). */
    if (!block && c->cap > 0 && !atomic_load_explicit(&c->closed, memory_order_relaxed) &&
        atomic_load_explicit(&c->count, memory_order_relaxed) == c->cap)
        return -EAGAIN;
    gorc__lock_acquire(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        gorc__lock_release(&c->lock);
        return -EPIPE;
    }
    gorc__sudog *sg = gorc__waitlist_take(&c->recvq);
    if (sg) {
        gorc__g *g = gorc__chan_send_to(c, sg, elem);
        gorc__lock_release(&c->lock);
        gorc__ready(g);
        return 0;
    }
    if (atomic_load_explicit(&c->count, memory_order_relaxed) < c->cap) {
        bufsend(c, elem);
        gorc__lock_release(&c->lock);
        return 0;
    }
    if (!block) {
        gorc__lock_release(&c->lock);
        return -EAGAIN;
    }
    gorc__sudog me = {.g = gorc__getg(), .elem = (void *)elem, .c = c};
    gorc__waitlist_push(&c->sendq, &me);
    gorc__park(GORC__W_CHAN_SEND, unlock_chan, c);
    return me.success ? 0 : -EPIPE;
}

static inline __attribute__((always_inline)) int chan_recv(gorc_chan *c, void *elem, bool block)
{
    if (c == NULL) {
        if (!block)
            return -EAGAIN;
        gorc__park(GORC__W_CHAN_RECV_NIL, NULL, NULL);
        gorc__fatal("unreachable: goroutine blocked on a nil channel was woken");
    }
    /* Empty first, then closed (Go's chanrecv). The other order can see a state the channel
     * never had: a channel holding a value is seen open, then closed and drained by others,
     * then seen empty - "open and empty", would block. In this order, empty and then still
     * open means open and empty at the first load: a channel does not reopen, and a close
     * before the critical section whose count we read would be visible (the count stores are
     * releases, the loads acquires, and both happen under the lock). Empty and closed needs
     * a second look at count, since a value sent before the close may have arrived between
     * the loads; once closed, count only goes down, so empty then is empty for good. */
    if (!block && c->cap > 0 && atomic_load_explicit(&c->count, memory_order_acquire) == 0) {
        if (!atomic_load_explicit(&c->closed, memory_order_acquire))
            return -EAGAIN;
        if (atomic_load_explicit(&c->count, memory_order_acquire) == 0) {
            if (elem && c->elemsize)
                memset(elem, 0, c->elemsize);
            return -EPIPE;
        }
    }
    gorc__lock_acquire(&c->lock);
    size_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed) && n == 0) {
        gorc__lock_release(&c->lock);
        if (elem && c->elemsize)
            memset(elem, 0, c->elemsize);
        return -EPIPE;
    }
    gorc__sudog *sg = gorc__waitlist_take(&c->sendq);
    if (sg) {
        gorc__g *g = gorc__chan_recv_from(c, sg, elem);
        gorc__lock_release(&c->lock);
        gorc__ready(g);
        return 0;
    }
    if (n > 0) {
        bufrecv(c, elem);
        gorc__lock_release(&c->lock);
        return 0;
    }
    if (!block) {
        gorc__lock_release(&c->lock);
        return -EAGAIN;
    }
    gorc__sudog me = {.g = gorc__getg(), .elem = elem, .c = c};
    gorc__waitlist_push(&c->recvq, &me);
    gorc__park(GORC__W_CHAN_RECV, unlock_chan, c);
    return me.success ? 0 : -EPIPE;
}

/* Each entry point notes a foreign caller (a thread the runtime did not create): from then on
 * the thread counts as a possible waker and deadlock detection stands down. */

int gorc_chan_send(gorc_chan *c, const void *elem)
{
    gorc__may_block();
    return chan_send(c, elem, true);
}

int gorc_chan_recv(gorc_chan *c, void *elem)
{
    gorc__may_block();
    return chan_recv(c, elem, true);
}

int gorc_chan_trysend(gorc_chan *c, const void *elem)
{
    gorc__note_foreign();
    if (gorc__sim_on()) /* a preemption point under simulation, as blocking forms are */
        gorc__sim_point();
    return chan_send(c, elem, false);
}

int gorc_chan_tryrecv(gorc_chan *c, void *elem)
{
    gorc__note_foreign();
    if (gorc__sim_on()) /* a preemption point under simulation, as blocking forms are */
        gorc__sim_point();
    return chan_recv(c, elem, false);
}

int gorc_chan_close(gorc_chan *c)
{
    if (c == NULL)
        return -EINVAL;
    gorc__note_foreign();
    if (gorc__sim_on())
        gorc__sim_point();
    gorc__lock_acquire(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        gorc__lock_release(&c->lock);
        return -EPIPE;
    }
    atomic_store_explicit(&c->closed, 1, memory_order_release);
    /* Collect every waiter, then wake them after unlocking. */
    gorc__g *head = NULL;
    gorc__sudog *sg;
    while ((sg = gorc__waitlist_take(&c->recvq)) != NULL) {
        if (sg->elem && c->elemsize)
            memset(sg->elem, 0, c->elemsize);
        sg->success = false;
        sg->g->param = sg;
        sg->g->schedlink = head;
        head = sg->g;
    }
    while ((sg = gorc__waitlist_take(&c->sendq)) != NULL) {
        sg->success = false;
        sg->g->param = sg;
        sg->g->schedlink = head;
        head = sg->g;
    }
    gorc__lock_release(&c->lock);
    while (head) {
        gorc__g *g = head;
        head = g->schedlink;
        gorc__ready(g);
    }
    return 0;
}

size_t gorc_chan_len(gorc_chan *c)
{
    return c ? atomic_load_explicit(&c->count, memory_order_relaxed) : 0;
}

size_t gorc_chan_cap(gorc_chan *c)
{
    return c ? c->cap : 0;
}
