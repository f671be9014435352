/*
 * select.c - waiting on several channel operations at once.
 *
 * This is Go's selectgo. Two orders matter:
 *   - poll order, a fresh uniformly random permutation of the cases for every call: the first
 *     ready case in that order wins, which makes the choice among ready cases uniform;
 *   - lock order, the cases sorted by channel address: every select locks its channels in the
 *     same global order, so two selects over the same channels cannot deadlock.
 *
 * With all channels locked, pass 1 looks for a case that can proceed now. If none can (and the
 * call may block), pass 2 queues one sudog per case on its channel and parks. The sudogs are
 * queued in poll order, not lock order: a partner takes the first one on its channel's queue,
 * so this is what makes the choice among several cases on one channel random once the select
 * has blocked (lock order would always put the same one first). The first
 * operation to reach any of them claims the whole select by flipping g->selectdone from 0 to
 * 1 (gorc__waitlist_take); everyone else finding a sudog of a claimed select skips it. A
 * timeout is a timer that tries the same flip. On wake-up the select relocks everything and
 * unqueues the sudogs that did not fire.
 *
 * A select may also watch a cancellation source (runtime/cancel.h: a context's), which is how
 * gorc_select_ctx waits on a context without locking and queueing on its done channel. The
 * source counts as one more case in the poll order when it is already cancelled, and while
 * parked a hook on it tries the same selectdone flip as a timeout; the select then returns
 * -ECANCELED. The hook is armed, like the timer, before the channels are unlocked.
 *
 * The unlock after parking needs care: once the last channel is unlocked, the goroutine may be
 * woken, return, and reuse the stack where the case and lock-order arrays live. Channels are
 * unlocked in reverse lock order and the first one last; the woken goroutine must lock that one
 * before it can leave, so nothing is read after it is released.
 */
#include "runtime/cancel.h"
#include "runtime/chan.h"

#include <stdlib.h>
#include <string.h>

#define SMALL 8

typedef struct selctx {
    gorc_case *cases;
    const size_t *lockorder;
    size_t nlock;
    gorc__g *g;
    int64_t deadline;
    gorc__cancel *cx;      /* a cancellation source to watch, or NULL */
    gorc__cancel_wake cxw; /* our hook on it */
} selctx;

static void sellock(gorc_case *cases, const size_t *lo, size_t n)
{
    gorc_chan *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        gorc_chan *c = cases[lo[i]].chan;
        if (c != prev)
            gorc__lock_acquire(&c->lock);
        prev = c;
    }
}

static void selunlock(gorc_case *cases, const size_t *lo, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        gorc_chan *c = cases[lo[i]].chan;
        if (i > 0 && c == cases[lo[i - 1]].chan)
            continue; /* unlocked with its first occurrence */
        gorc__lock_release(&c->lock);
    }
}

static void on_timeout(gorc__timer *t, int64_t now)
{
    (void)now;
    gorc__g *g = t->arg;
    uint32_t zero = 0;
    if (atomic_compare_exchange_strong(&g->selectdone, &zero, 1)) {
        g->param = NULL;
        gorc__ready(g);
    }
}

static void park_unlock(void *arg)
{
    selctx *s = arg;
    if (s->deadline)
        gorc__sleept_arm(s->g, s->deadline, on_timeout);
    if (s->cx)
        gorc__cancel_hook_add(s->cx, &s->cxw.h); /* wakes us at once if already cancelled */
    selunlock(s->cases, s->lockorder, s->nlock);
}

/* Sort case indices by channel address (heap sort: no recursion, no allocation). */
static void sift(gorc_case *cases, size_t *a, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && (uintptr_t)cases[a[child + 1]].chan > (uintptr_t)cases[a[child]].chan)
            child++;
        if ((uintptr_t)cases[a[root]].chan >= (uintptr_t)cases[a[child]].chan)
            return;
        size_t t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

static void sort_lockorder(gorc_case *cases, size_t *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift(cases, a, i, n);
    for (size_t end = n; end-- > 1;) {
        size_t t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift(cases, a, 0, end);
    }
}

/* Pass 1: with all locks held, perform the first case in poll order that can proceed.
 * Returns its index (locks released) or -1 (locks still held). */
#define CANCELLED (-ECANCELED)

static int try_cases(gorc_case *cases, const size_t *po, size_t n, const size_t *lo,
                     gorc__cancel *cx)
{
    /* A cancelled source is ready too: it takes a uniformly random place in the poll order. */
    size_t cxat = cx && gorc__cancel_err(cx) ? (size_t)(gorc__rand() % (n + 1)) : SIZE_MAX;
    for (size_t k = 0; k <= n; k++) {
        if (k == cxat) {
            selunlock(cases, lo, n);
            return CANCELLED;
        }
        if (k == n)
            break;
        size_t i = po[k];
        gorc_case *cs = &cases[i];
        gorc_chan *c = cs->chan;
        gorc__g *wake = NULL;
        gorc__sudog *sg;
        if (cs->dir == GORC_RECV) {
            if ((sg = gorc__waitlist_take(&c->sendq)) != NULL)
                wake = gorc__chan_recv_from(c, sg, cs->elem);
            else if (atomic_load_explicit(&c->count, memory_order_relaxed) > 0)
                gorc__chan_bufrecv(c, cs->elem);
            else if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
                if (cs->elem && c->elemsize)
                    memset(cs->elem, 0, c->elemsize);
                cs->closed = true;
            } else
                continue;
        } else {
            if (atomic_load_explicit(&c->closed, memory_order_relaxed))
                cs->closed = true;
            else if ((sg = gorc__waitlist_take(&c->recvq)) != NULL)
                wake = gorc__chan_send_to(c, sg, cs->elem);
            else if (atomic_load_explicit(&c->count, memory_order_relaxed) < c->cap)
                gorc__chan_bufsend(c, cs->elem);
            else
                continue;
        }
        selunlock(cases, lo, n);
        if (wake)
            gorc__ready(wake);
        return (int)i;
    }
    return -1;
}

static int block_forever(void)
{
    gorc__park(GORC__W_SELECT_NO_CASES, NULL, NULL);
    gorc__fatal("unreachable: select with no cases was woken");
}

static int sleep_until(int64_t deadline)
{
    gorc_sleep(deadline - gorc_now());
    return -ETIMEDOUT;
}

static int do_select(gorc_case *cases, size_t n, bool block, int64_t deadline, gorc__cancel *cx)
{
    if (n > 0 && cases == NULL)
        return -EINVAL;
    if (block)
        gorc__may_block();
    else
        gorc__note_foreign();
    size_t active = 0;
    for (size_t i = 0; i < n; i++) {
        if (cases[i].dir != GORC_RECV && cases[i].dir != GORC_SEND)
            return -EINVAL;
        cases[i].closed = false;
        if (cases[i].chan)
            active++;
    }
    if (active == 0) {
        if (!block)
            return deadline ? -ETIMEDOUT : -EAGAIN;
        return deadline ? sleep_until(deadline) : block_forever();
    }

    size_t small_idx[2 * SMALL];
    gorc__sudog small_sg[SMALL];
    size_t *po = small_idx, *lo = small_idx + SMALL;
    gorc__sudog *sgs = small_sg;
    void *heap = NULL;
    if (active > SMALL) {
        heap = malloc(active * (2 * sizeof(size_t) + sizeof(gorc__sudog)));
        if (heap == NULL)
            return -ENOMEM;
        sgs = heap;
        po = (size_t *)(sgs + active);
        lo = po + active;
    }
    /* Poll order: inside-out Fisher-Yates over the active cases. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (cases[i].chan == NULL)
            continue;
        size_t j = (size_t)(gorc__rand() % (k + 1));
        po[k] = po[j];
        po[j] = i;
        lo[k] = i;
        k++;
    }
    sort_lockorder(cases, lo, active);

    sellock(cases, lo, active);
    int r = try_cases(cases, po, active, lo, cx);
    if (r == CANCELLED) {
        free(heap);
        return r;
    }
    if (r >= 0 || !block || (deadline && deadline <= gorc_now())) {
        if (r < 0) {
            selunlock(cases, lo, active);
            r = block ? -ETIMEDOUT : (deadline ? -ETIMEDOUT : -EAGAIN);
        }
        free(heap);
        return r;
    }

    /* Pass 2: queue on every channel, in poll order, and park. */
    gorc__g *g = gorc__getg();
    g->param = NULL;
    atomic_store(&g->selectdone, 0);
    for (size_t m = 0; m < active; m++) {
        size_t i = po[m];
        gorc__sudog *sg = &sgs[m];
        *sg = (gorc__sudog){
            .g = g, .elem = cases[i].elem, .c = cases[i].chan, .caseidx = (int)i, .isselect = true};
        gorc__waitlist_push(
            cases[i].dir == GORC_RECV ? &cases[i].chan->recvq : &cases[i].chan->sendq, sg);
    }
    selctx ctx = {
        .cases = cases, .lockorder = lo, .nlock = active, .g = g, .deadline = deadline, .cx = cx};
    if (cx)
        gorc__cancel_wake_init(&ctx.cxw, g);
    gorc__park(GORC__W_SELECT, park_unlock, &ctx);

    /* Woken by a channel operation (g->param is its sudog), the timeout or the cancel (NULL). */
    if (deadline)
        gorc__sleept_cancel(g);
    if (cx)
        gorc__cancel_unhook(cx, &ctx.cxw.h); /* also waits for a wake hook in progress */
    gorc__sudog *won = g->param;
    sellock(cases, lo, active);
    for (size_t m = 0; m < active; m++) {
        gorc__sudog *sg = &sgs[m];
        if (sg == won)
            continue;
        gorc_chan *c = sg->c;
        gorc__waitlist_remove(cases[sg->caseidx].dir == GORC_RECV ? &c->recvq : &c->sendq, sg);
    }
    selunlock(cases, lo, active);
    if (won == NULL) {
        r = cx ? CANCELLED : -ETIMEDOUT;
    } else {
        r = won->caseidx;
        cases[r].closed = !won->success;
    }
    free(heap);
    return r;
}

int gorc__select_cancel(gorc_case *cases, size_t n, gorc__cancel *cx)
{
    return do_select(cases, n, true, 0, cx);
}

int gorc_select(gorc_case *cases, size_t n)
{
    return do_select(cases, n, true, 0, NULL);
}

int gorc_select_try(gorc_case *cases, size_t n)
{
    return do_select(cases, n, false, 0, NULL);
}

int gorc_select_timeout(gorc_case *cases, size_t n, int64_t timeout_ns)
{
    if (timeout_ns <= 0) {
        int r = do_select(cases, n, false, 0, NULL);
        return r == -EAGAIN ? -ETIMEDOUT : r;
    }
    int err = gorc__ensure_init(); /* the timeout needs the runtime's timer heaps */
    if (err != 0)
        return err;
    return do_select(cases, n, true, gorc__deadline(timeout_ns), NULL);
}
