/*
 * test_foreign.c - threads the runtime did not create (the cgo-callback case) (cmocka).
 *
 * Covers: a plain pthread, after gorc_foreign_attach(), spawns goroutines with gorc_go, sends
 * on buffered and unbuffered channels (a blocking send that waits for a goroutine to receive),
 * receives from goroutines, selects (with and without a timeout) and sleeps, while the main
 * goroutine waits on it - without a false deadlock report, since an attached thread may
 * still wake goroutines. Also: goroutines started from a thread before any gorc_main, several
 * foreign threads at once, gorc_id() == 0 there, and detection working again once the foreign
 * threads have exited is covered by test_crash ("foreign-exit-deadlock").
 *
 * This is its own binary: the cmocka thread itself becomes a foreign thread here (it calls
 * gorc_go outside gorc_main), which turns deadlock detection off for the rest of the process.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define MS GORC_MILLISECOND

static gorc_chan *mkchan(size_t elem, size_t cap)
{
    gorc_chan *c = NULL;
    CHECK_EQ(gorc_chan_new(&c, elem, cap), 0);
    return c;
}

static void *join_thread(void *arg)
{
    return (void *)(intptr_t)pthread_join(*(pthread_t *)arg, NULL);
}

/* pthread_join from a goroutine, as a declared blocking call. */
static void gjoin(pthread_t th)
{
    CHECK_EQ((intptr_t)gorc_blocking(join_thread, &th), 0);
}

typedef struct fctx {
    gorc_chan *buffered; /* foreign -> goroutine, long, cap 16 */
    gorc_chan *unbuf;    /* foreign -> goroutine, long, unbuffered */
    gorc_chan *back;     /* goroutine -> foreign, long, unbuffered */
    gorc_chan *results;  /* goroutines report here, long */
    _Atomic int attached;
    long n;
    int64_t blocked_ns; /* how long the foreign thread's first unbuffered send blocked */
} fctx;

/* Receives n values from buffered and n from unbuf (the latter only after a delay, so the
 * foreign sender really blocks), sends n values back, reports the sum. */
static void consumer(void *arg)
{
    fctx *x = arg;
    long sum = 0, v;
    for (long i = 0; i < x->n; i++) {
        CHECK_EQ(gorc_chan_recv(x->buffered, &v), 0);
        CHECK_EQ(v, i);
        sum += v;
    }
    gorc_sleep(20 * MS); /* the foreign thread is blocked in its unbuffered send by now */
    for (long i = 0; i < x->n; i++) {
        CHECK_EQ(gorc_chan_recv(x->unbuf, &v), 0);
        CHECK_EQ(v, 1000 + i);
        sum += v;
    }
    for (long i = 0; i < x->n; i++)
        CHECK_EQ(gorc_chan_send(x->back, &i), 0);
    CHECK_EQ(gorc_chan_send(x->results, &sum), 0);
}

static void reporter(void *arg)
{
    fctx *x = arg;
    CHECK(gorc_id() != 0);
    long one = 1;
    CHECK_EQ(gorc_chan_send(x->results, &one), 0);
}

static void *foreign_main(void *arg)
{
    fctx *x = arg;
    gorc_foreign_attach();
    gorc_foreign_attach(); /* twice is harmless */
    atomic_store(&x->attached, 1);
    CHECK_EQ(gorc_id(), 0);
    /* Spawn goroutines from here. */
    CHECK_EQ(gorc_go(consumer, x), 0);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(gorc_go(reporter, x), 0);
    for (long i = 0; i < x->n; i++)
        CHECK_EQ(gorc_chan_send(x->buffered, &i), 0);
    for (long i = 0; i < x->n; i++) {
        long v = 1000 + i;
        int64_t t0 = gorc_now();
        CHECK_EQ(gorc_chan_send(x->unbuf, &v), 0); /* blocks the thread until received */
        if (i == 0)
            x->blocked_ns = gorc_now() - t0;
    }
    for (long i = 0; i < x->n; i++) {
        long v = -1;
        if (i % 3 == 0) {
            CHECK_EQ(gorc_chan_recv(x->back, &v), 0);
        } else {
            gorc_case cs[2] = {{.chan = NULL, .dir = GORC_RECV},
                               {.chan = x->back, .dir = GORC_RECV, .elem = &v}};
            int r = i % 3 == 1 ? gorc_select(cs, 2) : gorc_select_timeout(cs, 2, 20 * GORC_SECOND);
            CHECK_EQ(r, 1);
        }
        CHECK_EQ(v, i);
    }
    /* A timeout that fires, and a sleep, on a foreign thread. */
    gorc_case cs[1] = {{.chan = x->back, .dir = GORC_RECV}};
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_select_timeout(cs, 1, 5 * MS), GORC_ETIMEDOUT);
    CHECK(gorc_now() - t0 >= 5 * MS);
    t0 = gorc_now();
    gorc_sleep(2 * MS);
    CHECK(gorc_now() - t0 >= 2 * MS);
    CHECK_EQ(gorc_chan_tryrecv(x->back, NULL), GORC_EAGAIN);
    return NULL;
}

static void run_foreign(fctx *x)
{
    x->buffered = mkchan(sizeof(long), 16);
    x->unbuf = mkchan(sizeof(long), 0);
    x->back = mkchan(sizeof(long), 0);
    x->results = mkchan(sizeof(long), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, foreign_main, x), 0);
    /* The thread must be attached before this goroutine blocks on what it will send, or the
     * runtime could rightly call it a deadlock. Sleeping is not blocking for good. */
    while (!atomic_load(&x->attached))
        gorc_sleep(100 * GORC_MICROSECOND);
    long total = 0, v;
    for (int i = 0; i < 11; i++) {
        CHECK_EQ(gorc_chan_recv(x->results, &v), 0); /* blocks on goroutines it spawned */
        total += v;
    }
    long n = x->n;
    CHECK_EQ(total, 10 + n * (n - 1) / 2 + 1000 * n + n * (n - 1) / 2);
    gjoin(th);
    CHECK(x->blocked_ns >= 10 * MS); /* it really waited for the receiver */
    gorc_chan_release(x->buffered);
    gorc_chan_release(x->unbuf);
    gorc_chan_release(x->back);
    gorc_chan_release(x->results);
}

GO_TEST(test_foreign_thread)
{
    fctx x = {.n = scaled(2000) < 50 ? 50 : scaled(2000)};
    run_foreign(&x);
}

/* The main goroutine blocks on a channel that only the foreign thread sends on, and the
 * thread sends late: no deadlock report may fire in between. */
typedef struct late {
    gorc_chan *c;
    _Atomic int attached;
} late;

static void *late_sender(void *arg)
{
    late *l = arg;
    gorc_foreign_attach();
    atomic_store(&l->attached, 1);
    usleep(50 * 1000); /* a plain sleep: the runtime sees nothing for 50 ms */
    long v = 42;
    CHECK_EQ(gorc_chan_send(l->c, &v), 0);
    return NULL;
}

GO_TEST(test_foreign_late_send)
{
    for (int round = 0; round < 3; round++) {
        late l = {.c = mkchan(sizeof(long), 0)};
        gorc_chan *c = l.c;
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, late_sender, &l), 0);
        while (!atomic_load(&l.attached)) /* sleeping keeps a timer pending: no deadlock */
            gorc_sleep(100 * GORC_MICROSECOND);
        long v = 0;
        CHECK_EQ(gorc_chan_recv(c, &v), 0);
        CHECK_EQ(v, 42);
        gjoin(th);
        gorc_chan_release(c);
    }
}

/* Several foreign threads hammer one channel; goroutines drain it. */
typedef struct multi {
    gorc_chan *c;
    gorc_chan *done;
    long per;
    _Atomic int next;
    _Atomic long sum;
} multi;

static void *multi_sender(void *arg)
{
    multi *m = arg;
    gorc_foreign_attach();
    long base = atomic_fetch_add(&m->next, 1) * m->per;
    for (long i = 0; i < m->per; i++) {
        long v = base + i;
        CHECK_EQ(gorc_chan_send(m->c, &v), 0);
    }
    return NULL;
}

static void multi_receiver(void *arg)
{
    multi *m = arg;
    long v, sum = 0;
    while (gorc_chan_recv(m->c, &v) == 0)
        sum += v;
    atomic_fetch_add(&m->sum, sum);
    CHECK_EQ(gorc_chan_send(m->done, NULL), 0);
}

GO_TEST(test_many_foreign_threads)
{
    enum { T = 4, R = 3 };
    multi m = {.c = mkchan(sizeof(long), 0), .done = mkchan(0, 0), .per = scaled(5000)};
    for (int i = 0; i < R; i++)
        CHECK_EQ(gorc_go(multi_receiver, &m), 0);
    pthread_t th[T];
    for (int i = 0; i < T; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, multi_sender, &m), 0);
    for (int i = 0; i < T; i++)
        gjoin(th[i]);
    CHECK_EQ(gorc_chan_close(m.c), 0);
    for (int i = 0; i < R; i++)
        CHECK_EQ(gorc_chan_recv(m.done, NULL), 0);
    long n = T * m.per;
    CHECK_EQ(atomic_load(&m.sum), n * (n - 1) / 2);
    gorc_chan_release(m.c);
    gorc_chan_release(m.done);
}

/* Goroutines started from a plain thread with no gorc_main running at all. */
static void add_one(void *arg)
{
    gorc_chan *c = arg;
    long v;
    CHECK_EQ(gorc_chan_recv(c, &v), 0);
    v++;
    CHECK_EQ(gorc_chan_send(c, &v), 0);
}

static void test_no_main(void **state)
{
    (void)state;
    gorc_chan *c = mkchan(sizeof(long), 0);
    assert_int_equal(gorc_id(), 0);
    long v = 0;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(gorc_go(add_one, c), 0);
        assert_int_equal(gorc_chan_send(c, &v), 0); /* this (cmocka) thread blocks */
        assert_int_equal(gorc_chan_recv(c, &v), 0);
    }
    assert_int_equal(v, 100);
    gorc_chan_release(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_foreign_thread),
        cmocka_unit_test(test_foreign_late_send),
        cmocka_unit_test(test_many_foreign_threads),
        cmocka_unit_test(test_no_main),
    };
    return cmocka_run_group_tests_name("foreign", tests, NULL, NULL);
}
