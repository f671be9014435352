/*
 * test_sync.c - Mutex, RWMutex, WaitGroup, Once, Cond and semaphore (cmocka; bodies run as
 * goroutines).
 *
 * Covers: exact counting under a contended mutex (with holders that yield inside the critical
 * section, so waiters really park); trylock; handoff (a goroutine that keeps re-locking cannot
 * starve a waiter); rwmutex readers sharing, writers excluding everyone, writer preference
 * (tryrlock fails and new readers wait while a writer waits) and a writer not starved by a
 * stream of readers; WaitGroup with many goroutines and waiters, the negative counter
 * (-EINVAL, counter unchanged), reuse; Once under concurrent callers; Cond signal and
 * broadcast without lost wake-ups, a ping-pong and a producer/consumer queue; semaphore FIFO
 * order, timeouts (also racing releases), tryacquire, permit accounting; a foreign pthread
 * contending on a mutex with goroutines and waiting on a WaitGroup and a semaphore.
 *
 * A few checks look inside the objects (how many waiters are queued) through runtime.h, to
 * order steps without sleeping and hoping.
 */
#include "testutil.h"

#include "runtime/sync.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

/* Poll expr (parking between looks, so never a deadlock) until it holds; hang guard. */
#define WAIT_UNTIL(expr)                                                                           \
    do {                                                                                           \
        int64_t deadline_ = gorc_now() + 20 * GORC_SECOND;                                         \
        while (!(expr)) {                                                                          \
            CHECK(gorc_now() < deadline_);                                                         \
            gorc_sleep(100 * GORC_MICROSECOND);                                                    \
        }                                                                                          \
    } while (0)

static void spawn(gorc_fn fn, void *arg)
{
    CHECK_EQ(gorc_go(fn, arg), 0);
}

static uint64_t rnd_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Waiters queued on a wait queue, counted under its spin word. */
static int queued(_Atomic uint32_t *l, gorc__waitq *q)
{
    if (atomic_exchange_explicit(l, 1, memory_order_acquire))
        gorc__lock_slow(l);
    int n = 0;
    for (gorc__waiter *w = q->head; w; w = w->next)
        n++;
    atomic_store_explicit(l, 0, memory_order_release);
    return n;
}

/* Wait for the WaitGroup from another goroutine, so a lost wake-up fails instead of hanging. */
static void wg_wait_fn(void *arg)
{
    void **a = arg;
    gorc_waitgroup_wait(a[0]);
    atomic_store((atomic_int *)a[1], 1);
}

static void wg_wait_bounded(gorc_waitgroup *wg)
{
    atomic_int done = 0;
    void *a[2] = {wg, &done};
    spawn(wg_wait_fn, a);
    WAIT_UNTIL(atomic_load(&done));
}

/* ------------------------------------------------------------------------------------------
 * Mutex
 * ---------------------------------------------------------------------------------------- */

typedef struct mcount {
    gorc_mutex mu;
    gorc_waitgroup wg;
    long iters;
    long count;        /* guarded by mu */
    atomic_int inside; /* must never exceed 1 */
} mcount;

static void mcount_worker(void *arg)
{
    mcount *c = arg;
    for (long i = 0; i < c->iters; i++) {
        gorc_mutex_lock(&c->mu);
        CHECK_EQ(atomic_fetch_add(&c->inside, 1), 0);
        c->count++;
        if (i % 61 == 0)
            gorc_yield(); /* holding the lock: the others must park */
        atomic_fetch_sub(&c->inside, 1);
        gorc_mutex_unlock(&c->mu);
    }
    CHECK_EQ(gorc_waitgroup_done(&c->wg), 0);
}

GO_TEST(test_mutex_count)
{
    static mcount c;
    memset(&c, 0, sizeof c);
    c.iters = scaled(20000);
    enum { G = 64 };
    for (int i = 0; i < G; i++) {
        CHECK_EQ(gorc_waitgroup_add(&c.wg, 1), 0);
        spawn(mcount_worker, &c);
    }
    wg_wait_bounded(&c.wg);
    CHECK_EQ(c.count, G * c.iters);
    CHECK_EQ(atomic_load(&gorc__mutex_of(&c.mu)->state), 0); /* unlocked, no waiters left behind */
}

static void trylock_worker(void *arg)
{
    mcount *c = arg;
    for (long i = 0; i < c->iters; i++) {
        while (!gorc_mutex_trylock(&c->mu))
            gorc_yield();
        CHECK_EQ(atomic_fetch_add(&c->inside, 1), 0);
        c->count++;
        atomic_fetch_sub(&c->inside, 1);
        gorc_mutex_unlock(&c->mu);
    }
    CHECK_EQ(gorc_waitgroup_done(&c->wg), 0);
}

GO_TEST(test_mutex_trylock)
{
    gorc_mutex m = {0};
    CHECK(gorc_mutex_trylock(&m));
    CHECK(!gorc_mutex_trylock(&m));
    gorc_mutex_unlock(&m);
    gorc_mutex_lock(&m);
    CHECK(!gorc_mutex_trylock(&m));
    gorc_mutex_unlock(&m);
    CHECK(gorc_mutex_trylock(&m));
    gorc_mutex_unlock(&m);

    /* trylock mixed with lock */
    static mcount c;
    memset(&c, 0, sizeof c);
    c.iters = scaled(5000);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(gorc_waitgroup_add(&c.wg, 1), 0);
        spawn(i % 2 ? trylock_worker : mcount_worker, &c);
    }
    wg_wait_bounded(&c.wg);
    CHECK_EQ(c.count, 8 * c.iters);
}

typedef struct hog {
    gorc_mutex mu;
    atomic_int stop;
    atomic_int hogs;
    gorc_waitgroup wg;
} hog;

/* Re-locks at once after every unlock, and yields while holding the lock so that the waiter
 * gets to run (and lose) even on one P. */
static void hog_fn(void *arg)
{
    hog *h = arg;
    atomic_fetch_add(&h->hogs, 1);
    while (!atomic_load(&h->stop)) {
        gorc_mutex_lock(&h->mu);
        gorc_yield();
        gorc_mutex_unlock(&h->mu);
    }
    gorc_waitgroup_done(&h->wg);
}

GO_TEST(test_mutex_no_starvation)
{
    static hog h;
    memset(&h, 0, sizeof h);
    enum { HOGS = 2 };
    gorc_waitgroup_add(&h.wg, HOGS);
    for (int i = 0; i < HOGS; i++)
        spawn(hog_fn, &h);
    WAIT_UNTIL(atomic_load(&h.hogs) == HOGS);
    int64_t worst = 0;
    for (int i = 0; i < 20; i++) {
        int64_t t0 = gorc_now();
        gorc_mutex_lock(&h.mu);
        int64_t d = gorc_now() - t0;
        worst = d > worst ? d : worst;
        gorc_mutex_unlock(&h.mu);
        gorc_yield();
    }
    atomic_store(&h.stop, 1);
    wg_wait_bounded(&h.wg);
    /* Handoff starts after 1 ms of waiting; a second is very generous (sanitizers, CI). */
    CHECK(worst < GORC_SECOND);
}

/* ------------------------------------------------------------------------------------------
 * RWMutex
 * ---------------------------------------------------------------------------------------- */

typedef struct rwstate {
    gorc_rwmutex rw;
    gorc_waitgroup wg;
    atomic_int readers_in, writers_in;
    atomic_int stop, started;
    long iters;
    long value; /* guarded by rw */
    int nreaders;
} rwstate;

static void readers_meet(void *arg)
{
    rwstate *s = arg;
    gorc_rwmutex_rlock(&s->rw);
    atomic_fetch_add(&s->readers_in, 1);
    WAIT_UNTIL(atomic_load(&s->readers_in) == s->nreaders); /* all inside at once */
    gorc_rwmutex_runlock(&s->rw);
    gorc_waitgroup_done(&s->wg);
}

GO_TEST(test_rwmutex_readers_share)
{
    static rwstate s;
    memset(&s, 0, sizeof s);
    s.nreaders = 8;
    gorc_waitgroup_add(&s.wg, s.nreaders);
    for (int i = 0; i < s.nreaders; i++)
        spawn(readers_meet, &s);
    wg_wait_bounded(&s.wg);
    CHECK(gorc_rwmutex_trylock(&s.rw));
    gorc_rwmutex_unlock(&s.rw);
}

static void rw_writer(void *arg)
{
    rwstate *s = arg;
    for (long i = 0; i < s->iters; i++) {
        gorc_rwmutex_lock(&s->rw);
        CHECK_EQ(atomic_fetch_add(&s->writers_in, 1), 0);
        CHECK_EQ(atomic_load(&s->readers_in), 0);
        s->value++;
        if (i % 7 == 0)
            gorc_yield();
        atomic_fetch_sub(&s->writers_in, 1);
        gorc_rwmutex_unlock(&s->rw);
    }
    gorc_waitgroup_done(&s->wg);
}

static void rw_reader(void *arg)
{
    rwstate *s = arg;
    for (long i = 0; i < s->iters; i++) {
        gorc_rwmutex_rlock(&s->rw);
        atomic_fetch_add(&s->readers_in, 1);
        CHECK_EQ(atomic_load(&s->writers_in), 0);
        volatile long v = s->value;
        (void)v;
        if (i % 5 == 0)
            gorc_yield();
        atomic_fetch_sub(&s->readers_in, 1);
        gorc_rwmutex_runlock(&s->rw);
    }
    gorc_waitgroup_done(&s->wg);
}

GO_TEST(test_rwmutex_exclusion)
{
    static rwstate s;
    memset(&s, 0, sizeof s);
    s.iters = scaled(5000);
    enum { W = 4, R = 16 };
    gorc_waitgroup_add(&s.wg, W + R);
    for (int i = 0; i < W + R; i++)
        spawn(i % 5 == 0 ? rw_writer : rw_reader, &s);
    wg_wait_bounded(&s.wg);
    CHECK_EQ(s.value, W * s.iters);
    CHECK_EQ(atomic_load(&gorc__rwmutex_of(&s.rw)->readers), 0);
}

static void writer_once(void *arg)
{
    rwstate *s = arg;
    gorc_rwmutex_lock(&s->rw);
    atomic_store(&s->writers_in, 1);
    gorc_sleep(2 * GORC_MILLISECOND);
    CHECK_EQ(atomic_load(&s->readers_in), 0);
    atomic_store(&s->writers_in, 0);
    s->value++;
    gorc_rwmutex_unlock(&s->rw);
    gorc_waitgroup_done(&s->wg);
}

static void reader_once(void *arg)
{
    rwstate *s = arg;
    gorc_rwmutex_rlock(&s->rw);
    CHECK_EQ(s->value, 1); /* the writer that was waiting went first */
    atomic_fetch_add(&s->readers_in, 1);
    gorc_rwmutex_runlock(&s->rw);
    gorc_waitgroup_done(&s->wg);
}

GO_TEST(test_rwmutex_writer_preferred)
{
    static rwstate s;
    memset(&s, 0, sizeof s);
    gorc_rwmutex *rw = &s.rw;
    CHECK(gorc_rwmutex_tryrlock(rw));
    CHECK(gorc_rwmutex_tryrlock(rw));
    CHECK(!gorc_rwmutex_trylock(rw));
    gorc_rwmutex_runlock(rw);
    CHECK(!gorc_rwmutex_trylock(rw));
    /* A writer arrives while we read: it waits for us, and from then on readers wait. */
    gorc_waitgroup_add(&s.wg, 2);
    spawn(writer_once, &s);
    WAIT_UNTIL(atomic_load(&gorc__rwmutex_of(rw)->readers) < 0);
    CHECK(!gorc_rwmutex_tryrlock(rw));
    spawn(reader_once, &s);
    WAIT_UNTIL(queued(&gorc__rwmutex_of(rw)->qlock, &gorc__rwmutex_of(rw)->rq) == 1);
    CHECK_EQ(atomic_load(&s.writers_in), 0);
    gorc_rwmutex_runlock(rw); /* the last reader out lets the writer in */
    wg_wait_bounded(&s.wg);
    CHECK_EQ(s.value, 1);
    CHECK_EQ(atomic_load(&s.readers_in), 1);
    CHECK(gorc_rwmutex_trylock(rw));
    CHECK(!gorc_rwmutex_tryrlock(rw));
    CHECK(!gorc_rwmutex_trylock(rw));
    gorc_rwmutex_unlock(rw);
    CHECK(gorc_rwmutex_tryrlock(rw));
    gorc_rwmutex_runlock(rw);
}

static void stream_reader(void *arg)
{
    rwstate *s = arg;
    atomic_fetch_add(&s->started, 1);
    while (!atomic_load(&s->stop)) {
        gorc_rwmutex_rlock(&s->rw);
        atomic_fetch_add(&s->readers_in, 1);
        gorc_sleep(200 * GORC_MICROSECOND);
        atomic_fetch_sub(&s->readers_in, 1);
        gorc_rwmutex_runlock(&s->rw);
    }
    gorc_waitgroup_done(&s->wg);
}

GO_TEST(test_rwmutex_writer_not_starved)
{
    static rwstate s;
    memset(&s, 0, sizeof s);
    enum { R = 6 };
    gorc_waitgroup_add(&s.wg, R);
    for (int i = 0; i < R; i++)
        spawn(stream_reader, &s);
    WAIT_UNTIL(atomic_load(&s.started) == R && atomic_load(&s.readers_in) > 0);
    for (int i = 0; i < 10; i++) {
        int64_t t0 = gorc_now();
        gorc_rwmutex_lock(&s.rw);
        CHECK_EQ(atomic_load(&s.readers_in), 0);
        CHECK(gorc_now() - t0 < GORC_SECOND); /* readers hold it ~200 us at a time */
        gorc_rwmutex_unlock(&s.rw);
        gorc_sleep(GORC_MILLISECOND);
    }
    atomic_store(&s.stop, 1);
    wg_wait_bounded(&s.wg);
}

/* ------------------------------------------------------------------------------------------
 * WaitGroup
 * ---------------------------------------------------------------------------------------- */

typedef struct wgstate {
    gorc_waitgroup wg, waiters_done;
    atomic_long sum;
    atomic_int woken;
} wgstate;

static void wg_adder(void *arg)
{
    wgstate *s = arg;
    if (atomic_fetch_add(&s->sum, 1) % 3 == 0)
        gorc_yield();
    CHECK_EQ(gorc_waitgroup_done(&s->wg), 0);
}

static void wg_waiter(void *arg)
{
    wgstate *s = arg;
    gorc_waitgroup_wait(&s->wg);
    atomic_fetch_add(&s->woken, 1);
    gorc_waitgroup_done(&s->waiters_done);
}

GO_TEST(test_wg_many)
{
    static wgstate s;
    memset(&s, 0, sizeof s);
    long n = scaled(10000);
    enum { WAITERS = 5 };
    CHECK_EQ(gorc_waitgroup_add(&s.wg, n), 0);
    gorc_waitgroup_add(&s.waiters_done, WAITERS);
    for (int i = 0; i < WAITERS; i++)
        spawn(wg_waiter, &s);
    for (long i = 0; i < n; i++)
        spawn(wg_adder, &s);
    gorc_waitgroup_wait(&s.wg);
    CHECK_EQ(atomic_load(&s.sum), n);
    wg_wait_bounded(&s.waiters_done);
    CHECK_EQ(atomic_load(&s.woken), WAITERS);
    CHECK_EQ(atomic_load(&gorc__waitgroup_of(&s.wg)->count), 0);
}

GO_TEST(test_wg_negative)
{
    static wgstate s;
    memset(&s, 0, sizeof s);
    gorc_waitgroup *wg = &s.wg;
    CHECK_EQ(gorc_waitgroup_done(wg), -EINVAL);
    CHECK_EQ(gorc_waitgroup_add(wg, -5), -EINVAL);
    gorc_waitgroup_wait(wg); /* still zero: returns at once */
    CHECK_EQ(gorc_waitgroup_add(wg, 2), 0);
    CHECK_EQ(gorc_waitgroup_add(wg, -3), -EINVAL); /* counter stays 2 */
    gorc_waitgroup_add(&s.waiters_done, 1);
    spawn(wg_waiter, &s);
    WAIT_UNTIL(queued(&gorc__waitgroup_of(wg)->qlock, &gorc__waitgroup_of(wg)->q) == 1);
    CHECK_EQ(gorc_waitgroup_done(wg), 0);
    gorc_sleep(2 * GORC_MILLISECOND);
    CHECK_EQ(atomic_load(&s.woken), 0); /* one left */
    CHECK_EQ(gorc_waitgroup_done(wg), 0);
    wg_wait_bounded(&s.waiters_done);
    CHECK_EQ(atomic_load(&s.woken), 1);
    CHECK_EQ(gorc_waitgroup_done(wg), -EINVAL);
    /* The counter is 32 bits wide, as Go's. */
    CHECK_EQ(gorc_waitgroup_add(wg, INT32_MAX), 0);
    CHECK_EQ(gorc_waitgroup_add(wg, 1), -EINVAL);
    CHECK_EQ(gorc_waitgroup_add(wg, -(int64_t)INT32_MAX), 0);
    CHECK_EQ(gorc_waitgroup_add(wg, (int64_t)1 << 40), -EINVAL);
    CHECK_EQ(gorc_waitgroup_add(wg, INT64_MIN), -EINVAL);
    gorc_waitgroup_wait(wg);
}

GO_TEST(test_wg_reuse)
{
    static wgstate s;
    memset(&s, 0, sizeof s);
    long rounds = scaled(400);
    uint64_t seed = 88172645463325252ULL;
    for (long r = 0; r < rounds; r++) {
        int n = 1 + (int)(rnd_next(&seed) % 16), w = (int)(rnd_next(&seed) % 3);
        atomic_store(&s.sum, 0);
        atomic_store(&s.woken, 0);
        CHECK_EQ(gorc_waitgroup_add(&s.wg, n), 0);
        gorc_waitgroup_add(&s.waiters_done, w);
        for (int i = 0; i < w; i++)
            spawn(wg_waiter, &s);
        for (int i = 0; i < n; i++)
            spawn(wg_adder, &s);
        gorc_waitgroup_wait(&s.wg);
        CHECK_EQ(atomic_load(&s.sum), n);
        /* Reuse at once, before the other waiters of this round have run. */
    }
    wg_wait_bounded(&s.waiters_done);
    CHECK_EQ(atomic_load(&gorc__waitgroup_of(&s.wg)->count), 0);
}

/* ------------------------------------------------------------------------------------------
 * Once
 * ---------------------------------------------------------------------------------------- */

typedef struct oncestate {
    gorc_once once;
    gorc_waitgroup wg;
    atomic_int calls, finished;
} oncestate;

static void once_fn(void *arg)
{
    oncestate *s = arg;
    atomic_fetch_add(&s->calls, 1);
    gorc_sleep(5 * GORC_MILLISECOND); /* others pile up meanwhile */
    atomic_store(&s->finished, 1);
}

static void once_caller(void *arg)
{
    oncestate *s = arg;
    gorc_once_do(&s->once, once_fn, s);
    CHECK_EQ(atomic_load(&s->finished), 1);
    gorc_waitgroup_done(&s->wg);
}

GO_TEST(test_once)
{
    static oncestate s;
    memset(&s, 0, sizeof s);
    enum { N = 100 };
    gorc_waitgroup_add(&s.wg, N);
    for (int i = 0; i < N; i++)
        spawn(once_caller, &s);
    wg_wait_bounded(&s.wg);
    gorc_once_do(&s.once, once_fn, &s);
    CHECK_EQ(atomic_load(&s.calls), 1);
}

/* ------------------------------------------------------------------------------------------
 * Cond
 * ---------------------------------------------------------------------------------------- */

typedef struct condstate {
    gorc_mutex mu;
    gorc_cond c, c2;
    gorc_waitgroup wg;
    int tickets, waiting, gen, turn; /* guarded by mu */
    long rounds;
    /* bounded queue */
    long buf[8];
    int head, len;
    long sum;
    long per_producer;
} condstate;

static void ticket_waiter(void *arg)
{
    condstate *s = arg;
    gorc_mutex_lock(&s->mu);
    while (s->tickets == 0)
        gorc_cond_wait(&s->c);
    s->tickets--;
    gorc_mutex_unlock(&s->mu);
    gorc_waitgroup_done(&s->wg);
}

GO_TEST(test_cond_signal)
{
    static condstate s;
    memset(&s, 0, sizeof s);
    s.c.l = &s.mu;
    gorc_cond_signal(&s.c); /* nobody waits: nothing happens */
    gorc_cond_broadcast(&s.c);
    int n = (int)scaled(200);
    if (n < 8)
        n = 8;
    gorc_waitgroup_add(&s.wg, n);
    for (int i = 0; i < n; i++)
        spawn(ticket_waiter, &s);
    uint64_t seed = 0x1234567ULL;
    for (int i = 0; i < n; i++) {
        gorc_mutex_lock(&s.mu);
        s.tickets++;
        gorc_cond_signal(&s.c);
        gorc_mutex_unlock(&s.mu);
        if (rnd_next(&seed) % 2)
            gorc_yield();
    }
    wg_wait_bounded(&s.wg); /* one signal per ticket: a lost one would leave a waiter */
    CHECK_EQ(s.tickets, 0);
}

static void gen_waiter(void *arg)
{
    condstate *s = arg;
    gorc_mutex_lock(&s->mu);
    s->waiting++;
    while (s->gen == 0)
        gorc_cond_wait(&s->c);
    s->waiting--;
    gorc_mutex_unlock(&s->mu);
    gorc_waitgroup_done(&s->wg);
}

static int waiting_now(condstate *s)
{
    gorc_mutex_lock(&s->mu);
    int w = s->waiting;
    gorc_mutex_unlock(&s->mu);
    return w;
}

GO_TEST(test_cond_broadcast)
{
    static condstate s;
    memset(&s, 0, sizeof s);
    s.c.l = &s.mu;
    enum { N = 50 };
    gorc_waitgroup_add(&s.wg, N);
    for (int i = 0; i < N; i++)
        spawn(gen_waiter, &s);
    WAIT_UNTIL(waiting_now(&s) == N);
    gorc_mutex_lock(&s.mu);
    s.gen = 1;
    gorc_cond_broadcast(&s.c);
    gorc_mutex_unlock(&s.mu);
    wg_wait_bounded(&s.wg);
    CHECK_EQ(s.waiting, 0);
}

/* Two goroutines take turns: each signal comes right after the other side's unlock. */
static void pingpong(void *arg)
{
    condstate *s = arg;
    gorc_mutex_lock(&s->mu);
    int me = s->waiting++; /* 0 or 1 */
    for (long i = 0; i < s->rounds; i++) {
        while (s->turn != me)
            gorc_cond_wait(&s->c);
        s->turn = 1 - me;
        gorc_cond_signal(&s->c);
    }
    gorc_mutex_unlock(&s->mu);
    gorc_waitgroup_done(&s->wg);
}

GO_TEST(test_cond_pingpong)
{
    static condstate s;
    memset(&s, 0, sizeof s);
    s.c.l = &s.mu;
    s.rounds = scaled(20000);
    gorc_waitgroup_add(&s.wg, 2);
    spawn(pingpong, &s);
    spawn(pingpong, &s);
    wg_wait_bounded(&s.wg);
}

static void producer(void *arg)
{
    condstate *s = arg;
    for (long i = 1; i <= s->per_producer; i++) {
        gorc_mutex_lock(&s->mu);
        while (s->len == 8)
            gorc_cond_wait(&s->c2); /* not full */
        s->buf[(s->head + s->len++) % 8] = i;
        gorc_cond_signal(&s->c); /* not empty */
        gorc_mutex_unlock(&s->mu);
    }
    gorc_waitgroup_done(&s->wg);
}

static void consumer(void *arg)
{
    condstate *s = arg;
    for (;;) {
        gorc_mutex_lock(&s->mu);
        while (s->len == 0 && s->gen == 0)
            gorc_cond_wait(&s->c);
        if (s->len == 0) { /* gen: producers are done and the queue is drained */
            gorc_mutex_unlock(&s->mu);
            break;
        }
        long v = s->buf[s->head];
        s->head = (s->head + 1) % 8;
        s->len--;
        s->sum += v;
        gorc_cond_signal(&s->c2);
        gorc_mutex_unlock(&s->mu);
    }
    gorc_waitgroup_done(&s->wg);
}

static long consumed(condstate *s)
{
    gorc_mutex_lock(&s->mu);
    long sum = s->sum;
    gorc_mutex_unlock(&s->mu);
    return sum;
}

GO_TEST(test_cond_producer_consumer)
{
    static condstate s;
    memset(&s, 0, sizeof s);
    s.c.l = s.c2.l = &s.mu;
    s.per_producer = scaled(5000);
    enum { P = 4, C = 4 };
    gorc_waitgroup_add(&s.wg, P + C);
    for (int i = 0; i < P + C; i++)
        spawn(i % 2 ? producer : consumer, &s);
    long want = P * (s.per_producer * (s.per_producer + 1) / 2);
    WAIT_UNTIL(consumed(&s) == want);
    gorc_mutex_lock(&s.mu);
    s.gen = 1; /* no more values: consumers leave */
    gorc_cond_broadcast(&s.c);
    gorc_mutex_unlock(&s.mu);
    wg_wait_bounded(&s.wg);
    CHECK_EQ(s.sum, want);
    CHECK_EQ(s.len, 0);
}

/* ------------------------------------------------------------------------------------------
 * Semaphore
 * ---------------------------------------------------------------------------------------- */

/* One goroutine blocked in acquire (with a timeout if timeout != 0). */
typedef struct semwaiter {
    gorc_sema *s;
    int64_t want, timeout;
    atomic_int done;
    int rc;
} semwaiter;

static void sem_waiter(void *arg)
{
    semwaiter *w = arg;
    w->rc = w->timeout ? gorc_sema_acquire_timeout(w->s, w->want, w->timeout)
                       : gorc_sema_acquire(w->s, w->want);
    atomic_store(&w->done, 1);
}

static int sem_queued(gorc_sema *s)
{
    return queued(&gorc__sema_of(s)->qlock, &gorc__sema_of(s)->q);
}

static void start_waiter(semwaiter *w, gorc_sema *s, int64_t want, int64_t timeout)
{
    int before = sem_queued(s);
    *w = (semwaiter){.s = s, .want = want, .timeout = timeout};
    spawn(sem_waiter, w);
    WAIT_UNTIL(sem_queued(s) == before + 1);
}

GO_TEST(test_sema_fifo)
{
    static gorc_sema s;
    gorc_sema_init(&s, 0);
    static semwaiter a, b, c, d, e;
    start_waiter(&a, &s, 3, 0);
    start_waiter(&b, &s, 1, 0);
    gorc_sema_release(&s, 1);
    gorc_sleep(2 * GORC_MILLISECOND);
    CHECK(!atomic_load(&a.done));        /* needs 3 */
    CHECK(!atomic_load(&b.done));        /* fits, but is behind a */
    CHECK(!gorc_sema_tryacquire(&s, 1)); /* nor may a newcomer jump the queue */
    gorc_sema_release(&s, 2);
    WAIT_UNTIL(atomic_load(&a.done));
    CHECK_EQ(a.rc, 0);
    gorc_sleep(GORC_MILLISECOND);
    CHECK(!atomic_load(&b.done));
    gorc_sema_release(&s, 1);
    WAIT_UNTIL(atomic_load(&b.done));
    CHECK_EQ(b.rc, 0);
    CHECK_EQ(atomic_load(&gorc__sema_of(&s)->avail), 0);

    /* One release wakes as many head waiters as fit, in order, and stops at the first that
     * does not. */
    start_waiter(&c, &s, 1, 0);
    start_waiter(&d, &s, 2, 0);
    start_waiter(&e, &s, 5, 0);
    gorc_sema_release(&s, 4);
    WAIT_UNTIL(atomic_load(&c.done) && atomic_load(&d.done));
    CHECK_EQ(sem_queued(&s), 1);
    CHECK(!atomic_load(&e.done));
    CHECK_EQ(atomic_load(&gorc__sema_of(&s)->avail), 1);
    gorc_sema_release(&s, 4);
    WAIT_UNTIL(atomic_load(&e.done));
    CHECK_EQ(atomic_load(&gorc__sema_of(&s)->avail), 0);
}

GO_TEST(test_sema_try_and_args)
{
    gorc_sema s = {0}; /* zero value: no permits */
    CHECK(!gorc_sema_tryacquire(&s, 1));
    gorc_sema_init(&s, 3);
    CHECK(!gorc_sema_tryacquire(&s, 0));
    CHECK(!gorc_sema_tryacquire(&s, -1));
    CHECK_EQ(gorc_sema_acquire(&s, 0), -EINVAL);
    CHECK_EQ(gorc_sema_acquire(&s, -2), -EINVAL);
    CHECK_EQ(gorc_sema_acquire_timeout(&s, 0, GORC_SECOND), -EINVAL);
    CHECK(!gorc_sema_tryacquire(&s, 4));
    CHECK(gorc_sema_tryacquire(&s, 2));
    CHECK(gorc_sema_tryacquire(&s, 1));
    CHECK(!gorc_sema_tryacquire(&s, 1));
    gorc_sema_release(&s, 0);  /* ignored */
    gorc_sema_release(&s, -4); /* ignored */
    CHECK_EQ(atomic_load(&gorc__sema_of(&s)->avail), 0);
    gorc_sema_release(&s, 2);
    CHECK_EQ(gorc_sema_acquire(&s, 2), 0);
    CHECK_EQ(atomic_load(&gorc__sema_of(&s)->avail), 0);
}

GO_TEST(test_sema_timeout)
{
    static gorc_sema s;
    gorc_sema_init(&s, 0);
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_sema_acquire_timeout(&s, 1, 20 * GORC_MILLISECOND), -ETIMEDOUT);
    CHECK(gorc_now() - t0 >= 20 * GORC_MILLISECOND);
    CHECK_EQ(gorc_sema_acquire_timeout(&s, 1, 0), -ETIMEDOUT);
    CHECK_EQ(gorc_sema_acquire_timeout(&s, 1, -5), -ETIMEDOUT);
    CHECK_EQ(sem_queued(&s), 0);
    gorc_sema_release(&s, 1);
    CHECK_EQ(gorc_sema_acquire_timeout(&s, 1, 0), 0);
    gorc_sema_release(&s, 1);
    CHECK_EQ(gorc_sema_acquire_timeout(&s, 1, GORC_SECOND), 0);

    /* A timed-out head waiter unblocks the smaller ones behind it. */
    static semwaiter big, small;
    gorc_sema_release(&s, 1);
    start_waiter(&big, &s, 3, 20 * GORC_MILLISECOND);
    start_waiter(&small, &s, 1, 0);
    WAIT_UNTIL(atomic_load(&big.done) && atomic_load(&small.done));
    CHECK_EQ(big.rc, -ETIMEDOUT);
    CHECK_EQ(small.rc, 0);
    CHECK_EQ(atomic_load(&gorc__sema_of(&s)->avail), 0);

    /* Released in time: granted, keeps the permits, and its timer is gone. */
    start_waiter(&big, &s, 2, 10 * GORC_SECOND);
    gorc_sema_release(&s, 2);
    WAIT_UNTIL(atomic_load(&big.done));
    CHECK_EQ(big.rc, 0);
    CHECK_EQ(atomic_load(&gorc__sema_of(&s)->avail), 0);
}

typedef struct semload {
    gorc_sema sem;
    gorc_waitgroup wg;
    atomic_long inside;
    atomic_long timeouts, grants;
    long iters;
} semload;

enum { SEM_PERMITS = 5 };

static void sem_worker(void *arg)
{
    semload *l = arg;
    uint64_t seed = gorc_id() * 0x9E3779B97F4A7C15ULL | 1;
    for (long i = 0; i < l->iters; i++) {
        int64_t n = 1 + (int64_t)(rnd_next(&seed) % SEM_PERMITS);
        uint64_t mode = rnd_next(&seed) % 4;
        int rc = 0;
        if (mode == 0)
            rc = gorc_sema_acquire(&l->sem, n);
        else if (mode == 1)
            rc = gorc_sema_tryacquire(&l->sem, n) ? 0 : -EAGAIN;
        else /* short timeouts race the releases */
            rc = gorc_sema_acquire_timeout(&l->sem, n,
                                           (int64_t)(rnd_next(&seed) % 50) * GORC_MICROSECOND + 1);
        if (rc != 0) {
            CHECK(rc == -ETIMEDOUT || rc == -EAGAIN);
            atomic_fetch_add(&l->timeouts, 1);
            continue;
        }
        atomic_fetch_add(&l->grants, 1);
        CHECK(atomic_fetch_add(&l->inside, n) + n <= SEM_PERMITS);
        if (rnd_next(&seed) % 2)
            gorc_yield();
        atomic_fetch_sub(&l->inside, n);
        gorc_sema_release(&l->sem, n);
    }
    gorc_waitgroup_done(&l->wg);
}

GO_TEST(test_sema_accounting)
{
    static semload l;
    memset(&l, 0, sizeof l);
    gorc_sema_init(&l.sem, SEM_PERMITS);
    l.iters = scaled(4000);
    enum { G = 32 };
    gorc_waitgroup_add(&l.wg, G);
    for (int i = 0; i < G; i++)
        spawn(sem_worker, &l);
    wg_wait_bounded(&l.wg);
    CHECK_EQ(atomic_load(&gorc__sema_of(&l.sem)->avail),
             SEM_PERMITS); /* no permit lost or made up */
    CHECK_EQ(sem_queued(&l.sem), 0);
    CHECK(atomic_load(&l.grants) > 0);
    CHECK(gorc_sema_tryacquire(&l.sem, SEM_PERMITS));
}

/* ------------------------------------------------------------------------------------------
 * A foreign thread
 * ---------------------------------------------------------------------------------------- */

typedef struct foreign {
    gorc_mutex mu;
    long count; /* guarded by mu */
    long iters;
    gorc_waitgroup workers; /* goroutines; the foreign thread waits on it */
    gorc_waitgroup fdone;   /* the foreign thread's Done wakes the main goroutine */
    gorc_sema sem;
    gorc_rwmutex rw;
    atomic_int attached, waiting, saw_workers_done;
} foreign;

static void foreign_worker(void *arg)
{
    foreign *f = arg;
    for (long i = 0; i < f->iters; i++) {
        gorc_mutex_lock(&f->mu);
        f->count++;
        if (i % 13 == 0)
            gorc_yield(); /* the foreign thread must sleep on the mutex */
        gorc_mutex_unlock(&f->mu);
    }
    gorc_waitgroup_done(&f->workers);
}

static void *foreign_main(void *arg)
{
    foreign *f = arg;
    gorc_foreign_attach();
    atomic_store(&f->attached, 1);
    for (long i = 0; i < f->iters; i++) {
        gorc_mutex_lock(&f->mu);
        f->count++;
        gorc_mutex_unlock(&f->mu);
        gorc_rwmutex_rlock(&f->rw);
        gorc_rwmutex_runlock(&f->rw);
    }
    atomic_store(&f->waiting, 1);
    gorc_waitgroup_wait(&f->workers);
    atomic_store(&f->saw_workers_done, 1);
    CHECK_EQ(gorc_sema_acquire(&f->sem, 2), 0); /* released by the main goroutine */
    gorc_waitgroup_done(&f->fdone);
    return NULL;
}

static void *join(void *arg)
{
    pthread_join(*(pthread_t *)arg, NULL);
    return NULL;
}

GO_TEST(test_foreign_thread)
{
    static foreign f;
    memset(&f, 0, sizeof f);
    f.iters = scaled(20000);
    enum { G = 8 };
    gorc_waitgroup_add(&f.fdone, 1);
    gorc_waitgroup_add(&f.workers, G + 1); /* +1: held until the thread waits */
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, foreign_main, &f), 0);
    WAIT_UNTIL(atomic_load(&f.attached));
    for (int i = 0; i < G; i++)
        spawn(foreign_worker, &f);
    for (long i = 0; i < f.iters / 4; i++) { /* a writer too */
        gorc_rwmutex_lock(&f.rw);
        gorc_rwmutex_unlock(&f.rw);
        if (i % 8 == 0)
            gorc_yield();
    }
    WAIT_UNTIL(atomic_load(&f.waiting));
    gorc_sleep(5 * GORC_MILLISECOND); /* let it go to sleep in wg_wait */
    CHECK(!atomic_load(&f.saw_workers_done));
    gorc_waitgroup_done(&f.workers);
    WAIT_UNTIL(atomic_load(&f.saw_workers_done));
    gorc_sleep(2 * GORC_MILLISECOND);
    gorc_sema_release(&f.sem, 1);
    gorc_sema_release(&f.sem, 1);
    wg_wait_bounded(&f.fdone);
    gorc_blocking(join, &t);
    CHECK_EQ(f.count, (G + 1) * f.iters);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutex_count),
        cmocka_unit_test(test_mutex_trylock),
        cmocka_unit_test(test_mutex_no_starvation),
        cmocka_unit_test(test_rwmutex_readers_share),
        cmocka_unit_test(test_rwmutex_exclusion),
        cmocka_unit_test(test_rwmutex_writer_preferred),
        cmocka_unit_test(test_rwmutex_writer_not_starved),
        cmocka_unit_test(test_wg_many),
        cmocka_unit_test(test_wg_negative),
        cmocka_unit_test(test_wg_reuse),
        cmocka_unit_test(test_once),
        cmocka_unit_test(test_cond_signal),
        cmocka_unit_test(test_cond_broadcast),
        cmocka_unit_test(test_cond_pingpong),
        cmocka_unit_test(test_cond_producer_consumer),
        cmocka_unit_test(test_sema_fifo),
        cmocka_unit_test(test_sema_try_and_args),
        cmocka_unit_test(test_sema_timeout),
        cmocka_unit_test(test_sema_accounting),
        cmocka_unit_test(test_foreign_thread),
    };
    return cmocka_run_group_tests_name("sync", tests, NULL, NULL);
}
