/*
 * test_chan_go.c - Go's own channel tests, ported (cmocka; bodies run as goroutines).
 *
 * Each test names the Go test it ports: runtime/chan_test.go (TestX) or a program of Go's
 * test/chan directory (test/chan/x.go). Counts are Go's, or smaller where Go's take long, and
 * are divided by GORC_TEST_SCALE under sanitizers, Valgrind and qemu (testutil.h); the
 * statistical checks keep their round counts, and the one stress loop is bounded by time.
 *
 * From chan_test.go: TestChan, TestNonblockRecvRace, TestNonblockSelectRace(2),
 * TestSelfSelect, TestSelectStress, TestSelectFairness, TestChanSendInterface,
 * TestPseudoRandomSend (and a receive counterpart), TestMultiConsumer,
 * TestSelectDuplicateChannel. From test/chan: select3, select6, select7, doubleselect,
 * nonblock, fifo, goroutines, and powser1 in small. Not ported, as they test what gorc does
 * not have: stack shrinking and copying (TestShrinkStackDuringBlockedSend,
 * TestNoShrinkStackWhileParking, TestSelectStackAdjust), the garbage collector
 * (TestChanSendBarrier, TestChanSendSelectBarrier, select2), allocation counts (TestChanAlloc),
 * compile-time checks (perm, sendstmt, select5). The classic prime sieve (test/chan/sieve1)
 * is in test_chan.c.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <string.h>

#define MS GORC_MILLISECOND

static gorc_chan *mkchan(size_t elem, size_t cap)
{
    gorc_chan *c = NULL;
    CHECK_EQ(gorc_chan_new(&c, elem, cap), 0);
    CHECK(c != NULL);
    return c;
}

/* A time budget for stress loops: they stop at whichever comes first, their round count or
 * the budget, so a slow machine makes them shorter rather than the run longer. */
static bool within(int64_t start, int64_t budget)
{
    return gorc_now() - start < budget;
}

/* ------------------------------------------------------------------------------------------
 * TestNonblockRecvRace: a buffered channel holding values is closed and drained while others
 * receive without blocking. The channel is never open and empty, so a non-blocking receive
 * must give a value or "closed", never "would block".
 * ---------------------------------------------------------------------------------------- */

static void nbrecv_once(void *arg)
{
    gorc_chan *c = arg;
    int r = gorc_chan_tryrecv(c, NULL);
    if (r == GORC_EAGAIN)
        fprintf(stderr, "TestNonblockRecvRace: chan is not ready\n");
    CHECK(r == 0 || r == GORC_ECLOSED);
    gorc_chan_release(c);
}

/* The stress form: main runs short rounds - make a channel holding one value, offer it to the
 * checkers, close it, drain it - without waiting for anyone, while checkers take the channel
 * on offer (at most one checker gets each) and receive from it once without blocking. Only the
 * checker and, after the close, main receive from a channel: while it is open it is never
 * empty, whatever stage it is at when the checker looks. The race needs a checker to be held
 * up between two adjacent loads (an interrupt, preemption, a sanitizer's bookkeeping) while
 * main closes and drains, which main does as it never waits for the checkers. */
enum { NB_CHECKERS = 2 };

typedef struct nbrace {
    _Atomic(gorc_chan *) offer; /* a channel with a reference for whoever takes it */
    _Atomic int stop;
    _Atomic long checked, bad; /* receives; those that said "would block" */
    gorc_chan *exited;
} nbrace;

static void nbrace_checker(void *arg)
{
    nbrace *x = arg;
    for (long k = 1; !atomic_load_explicit(&x->stop, memory_order_relaxed); k++) {
        gorc_chan *c = atomic_exchange(&x->offer, NULL);
        if (c == NULL) {
            if (k % 64 == 0)
                gorc_yield(); /* main may share our P */
            continue;
        }
        int rc;
        if (k % 8 != 0) {
            rc = gorc_chan_tryrecv(c, NULL);
        } else { /* the same through a non-blocking select */
            gorc_case cs[2] = {{.chan = NULL, .dir = GORC_RECV}, {.chan = c, .dir = GORC_RECV}};
            rc = gorc_select_try(cs, 2);
            if (rc == 1)
                rc = cs[1].closed ? GORC_ECLOSED : 0;
        }
        if (rc == GORC_EAGAIN)
            atomic_fetch_add(&x->bad, 1);
        else
            CHECK(rc == 0 || rc == GORC_ECLOSED);
        atomic_fetch_add(&x->checked, 1);
        gorc_chan_release(c);
    }
    CHECK_EQ(gorc_chan_send(x->exited, NULL), 0);
}

GO_TEST(test_nonblock_recv_race)
{
    int64_t base = base_count();
    /* Go's form: one goroutine per round. */
    long n = scaled(10000);
    for (long i = 0; i < n; i++) {
        gorc_chan *c = mkchan(sizeof(int), 1);
        int one = 1;
        CHECK_EQ(gorc_chan_send(c, &one), 0);
        CHECK_EQ(gorc_go(nbrecv_once, gorc_chan_retain(c)), 0);
        CHECK_EQ(gorc_chan_close(c), 0);
        gorc_chan_recv(c, NULL);
        gorc_chan_release(c);
    }
    wait_count(base);

    /* The stress form. What counts is the number of rounds, so they are not scaled down,
     * only bounded by time. Before the fix this failed in every release run (hundreds of
     * "would block" in a few million receives) and in 7 of 10 TSan runs. */
    nbrace x = {.exited = mkchan(0, NB_CHECKERS)};
    for (int i = 0; i < NB_CHECKERS; i++)
        CHECK_EQ(gorc_go(nbrace_checker, &x), 0);
    int64_t start = gorc_now();
    long r;
    for (r = 0; r < 5000000 && (r % 256 != 0 || within(start, 2 * GORC_SECOND)); r++) {
        gorc_chan *c = mkchan(sizeof(int), 1);
        int one = 1;
        CHECK_EQ(gorc_chan_send(c, &one), 0);
        gorc_chan_release(atomic_exchange(&x.offer, gorc_chan_retain(c))); /* untaken: NULL */
        CHECK_EQ(gorc_chan_close(c), 0);
        while (gorc_chan_recv(c, NULL) == 0)
            ;
        gorc_chan_release(c);
        if (r % 64 == 0)
            gorc_yield(); /* checkers may share our P */
    }
    atomic_store(&x.stop, 1);
    for (int i = 0; i < NB_CHECKERS; i++)
        CHECK_EQ(gorc_chan_recv(x.exited, NULL), 0);
    gorc_chan_release(atomic_exchange(&x.offer, NULL));
    if (atomic_load(&x.bad) != 0)
        fprintf(stderr, "TestNonblockRecvRace: %ld of %ld receives said \"would block\"\n",
                atomic_load(&x.bad), atomic_load(&x.checked));
    CHECK_EQ(atomic_load(&x.bad), 0);
    gorc_chan_release(x.exited);
    wait_count(base);
}

/* ------------------------------------------------------------------------------------------
 * TestPseudoRandomSend: a select with two send cases on one channel sends either value, at
 * random, also when it has blocked and a receiver completes it (Go queues a blocked select's
 * cases in its random poll order, which permutes cases on the same channel). The forms below
 * make the select block in every round: a non-blocking receive on an unbuffered channel only
 * succeeds once the select waits in the channel's send queue. With fair choices, fewer than
 * 10% of 1000 rounds going to one case has a probability far below 1e-30.
 * ---------------------------------------------------------------------------------------- */

enum { PR_ROUNDS = 1000 };

typedef struct prsel {
    gorc_chan *c, *done;
    int n;
    long counts[2]; /* receive form: rounds won by each case */
} prsel;

static void check_both_chosen(const char *what, long n0, long n1, long n)
{
    if (n0 < n / 10 || n1 < n / 10)
        fprintf(stderr, "%s: want pseudorandom, got %ld and %ld of %ld\n", what, n0, n1, n);
    CHECK(n0 >= n / 10 && n1 >= n / 10);
    CHECK_EQ(n0 + n1, n);
}

/* Go's form: the receiver yields before each receive, so the select sometimes blocks. */
static void pr_receiver(void *arg)
{
    prsel *p = arg;
    int *l = malloc(sizeof(int) * (size_t)p->n);
    CHECK(l != NULL);
    for (int i = 0; i < p->n; i++) {
        gorc_yield();
        CHECK_EQ(gorc_chan_recv(p->c, &l[i]), 0);
    }
    long ones = 0;
    for (int i = 0; i < p->n; i++)
        ones += l[i];
    p->counts[1] = ones;
    p->counts[0] = p->n - ones;
    free(l);
    CHECK_EQ(gorc_chan_send(p->done, NULL), 0);
}

static void pr_send_selector(void *arg)
{
    prsel *p = arg;
    int one = 1, zero = 0;
    for (int i = 0; i < p->n; i++) {
        gorc_case cs[2] = {{.chan = p->c, .dir = GORC_SEND, .elem = &one},
                           {.chan = p->c, .dir = GORC_SEND, .elem = &zero}};
        CHECK(gorc_select(cs, 2) >= 0);
    }
    CHECK_EQ(gorc_chan_send(p->done, NULL), 0);
}

static void pr_recv_selector(void *arg)
{
    prsel *p = arg;
    for (int i = 0; i < p->n; i++) {
        int a = -1, b = -1;
        gorc_case cs[2] = {{.chan = p->c, .dir = GORC_RECV, .elem = &a},
                           {.chan = p->c, .dir = GORC_RECV, .elem = &b}};
        int r = gorc_select(cs, 2);
        CHECK(r == 0 || r == 1);
        CHECK_EQ(r == 0 ? a : b, i);
        CHECK_EQ(r == 0 ? b : a, -1);
        p->counts[r]++;
    }
    CHECK_EQ(gorc_chan_send(p->done, NULL), 0);
}

GO_TEST(test_pseudo_random_send)
{
    int64_t base = base_count();
    gorc_chan *done = mkchan(0, 2);
    /* Go's form, with Go's sizes: n = 100 over an unbuffered and a buffered channel. */
    for (int cap = 0; cap <= 100; cap += 100) {
        prsel p = {.c = mkchan(sizeof(int), (size_t)cap), .done = done, .n = 100};
        CHECK_EQ(gorc_go(pr_receiver, &p), 0);
        CHECK_EQ(gorc_go(pr_send_selector, &p), 0);
        CHECK_EQ(gorc_chan_recv(done, NULL), 0);
        CHECK_EQ(gorc_chan_recv(done, NULL), 0);
        check_both_chosen("TestPseudoRandomSend", p.counts[0], p.counts[1], p.n);
        gorc_chan_release(p.c);
    }

    /* The select blocks in every round; the receiver completes it. */
    prsel p = {.c = mkchan(sizeof(int), 0), .done = done, .n = PR_ROUNDS};
    CHECK_EQ(gorc_go(pr_send_selector, &p), 0);
    long ones = 0;
    int64_t deadline = gorc_now() + 20 * GORC_SECOND;
    for (int i = 0; i < PR_ROUNDS; i++) {
        int v = -1;
        while (gorc_chan_tryrecv(p.c, &v) == GORC_EAGAIN) {
            CHECK(gorc_now() < deadline);
            gorc_yield();
        }
        CHECK(v == 0 || v == 1);
        ones += v;
    }
    CHECK_EQ(gorc_chan_recv(done, NULL), 0);
    check_both_chosen("blocked send select", PR_ROUNDS - ones, ones, PR_ROUNDS);
    gorc_chan_release(p.c);

    /* The receive counterpart: two receive cases on one channel, completed by a sender. */
    p = (prsel){.c = mkchan(sizeof(int), 0), .done = done, .n = PR_ROUNDS};
    CHECK_EQ(gorc_go(pr_recv_selector, &p), 0);
    for (int i = 0; i < PR_ROUNDS; i++) {
        while (gorc_chan_trysend(p.c, &i) == GORC_EAGAIN) {
            CHECK(gorc_now() < deadline);
            gorc_yield();
        }
    }
    CHECK_EQ(gorc_chan_recv(done, NULL), 0);
    check_both_chosen("blocked receive select", p.counts[0], p.counts[1], PR_ROUNDS);
    gorc_chan_release(p.c);
    gorc_chan_release(done);
    wait_count(base);
}

/* ------------------------------------------------------------------------------------------
 * TestChan: for every capacity 0..N-1 (Go: 200; fewer when scaled down): receive from an empty
 * channel blocks, non-blocking receive does not; send to a full channel blocks, non-blocking
 * send does not; a closed channel gives its buffered values in order, then zero and "closed";
 * close unblocks a receiver; 100 values arrive in FIFO order; 4 senders x 1000 values arrive
 * exactly once each at 4 receivers; len and cap.
 * ---------------------------------------------------------------------------------------- */

enum { TC_P = 4, TC_L = 1000 };

typedef struct tchan {
    gorc_chan *c;
    _Atomic int flag;
    int v;
    int *counts; /* TC_L counters, one receiver's */
    gorc_waitgroup *wg;
} tchan;

static void tc_recv_flag(void *arg)
{
    tchan *t = arg;
    gorc_chan_recv(t->c, NULL);
    atomic_fetch_add(&t->flag, 1);
}

static void tc_send_flag(void *arg)
{
    tchan *t = arg;
    int zero = 0;
    CHECK_EQ(gorc_chan_send(t->c, &zero), 0);
    atomic_store(&t->flag, 1);
}

static void tc_recv_closed(void *arg)
{
    tchan *t = arg;
    int v = 5;
    CHECK_EQ(gorc_chan_recv(t->c, &v), GORC_ECLOSED);
    CHECK_EQ(v, 0);
    atomic_store(&t->flag, 1);
}

static void tc_send_n(void *arg)
{
    tchan *t = arg;
    for (int i = 0; i < t->v; i++)
        CHECK_EQ(gorc_chan_send(t->c, &i), 0);
    if (t->wg)
        gorc_waitgroup_done(t->wg);
}

static void tc_recv_count(void *arg)
{
    tchan *t = arg;
    for (int i = 0; i < TC_L; i++) {
        int v = -1;
        CHECK_EQ(gorc_chan_recv(t->c, &v), 0);
        CHECK(v >= 0 && v < TC_L);
        t->counts[v]++;
    }
    gorc_waitgroup_done(t->wg);
}

static void test_chan_cap(int cap)
{
    int64_t base = 1;
    int v;
    {
        /* Receive from an empty channel blocks; non-blocking receive does not. */
        tchan t = {.c = mkchan(sizeof(int), (size_t)cap)};
        CHECK_EQ(gorc_go(tc_recv_flag, &t), 0);
        CHECK_EQ(gorc_go(tc_recv_flag, &t), 0);
        gorc_sleep(MS);
        CHECK_EQ(atomic_load(&t.flag), 0);
        CHECK_EQ(gorc_chan_tryrecv(t.c, &v), GORC_EAGAIN);
        gorc_case cs[1] = {{.chan = t.c, .dir = GORC_RECV, .elem = &v}};
        CHECK_EQ(gorc_select_try(cs, 1), GORC_EAGAIN);
        int zero = 0;
        CHECK_EQ(gorc_chan_send(t.c, &zero), 0);
        CHECK_EQ(gorc_chan_send(t.c, &zero), 0);
        wait_count(base);
        CHECK_EQ(atomic_load(&t.flag), 2);
        gorc_chan_release(t.c);
    }
    {
        /* Send to a full channel blocks; non-blocking send does not. */
        tchan t = {.c = mkchan(sizeof(int), (size_t)cap)};
        for (int i = 0; i < cap; i++)
            CHECK_EQ(gorc_chan_send(t.c, &i), 0);
        CHECK_EQ(gorc_go(tc_send_flag, &t), 0);
        gorc_sleep(MS);
        CHECK_EQ(atomic_load(&t.flag), 0);
        int zero = 0;
        gorc_case cs[1] = {{.chan = t.c, .dir = GORC_SEND, .elem = &zero}};
        CHECK_EQ(gorc_select_try(cs, 1), GORC_EAGAIN);
        CHECK_EQ(gorc_chan_trysend(t.c, &zero), GORC_EAGAIN);
        CHECK_EQ(gorc_chan_recv(t.c, &v), 0);
        wait_count(base);
        CHECK_EQ(atomic_load(&t.flag), 1);
        gorc_chan_release(t.c);
    }
    {
        /* A closed channel gives its values, then zero and "closed". */
        gorc_chan *c = mkchan(sizeof(int), (size_t)cap);
        for (int i = 0; i < cap; i++)
            CHECK_EQ(gorc_chan_send(c, &i), 0);
        CHECK_EQ(gorc_chan_close(c), 0);
        for (int i = 0; i < cap; i++) {
            CHECK_EQ(gorc_chan_recv(c, &v), 0);
            CHECK_EQ(v, i);
        }
        v = 9;
        CHECK_EQ(gorc_chan_recv(c, &v), GORC_ECLOSED);
        CHECK_EQ(v, 0);
        v = 9;
        CHECK_EQ(gorc_chan_recv(c, &v), GORC_ECLOSED);
        CHECK_EQ(v, 0);
        gorc_chan_release(c);
    }
    {
        /* Close unblocks a receiver. */
        tchan t = {.c = mkchan(sizeof(int), (size_t)cap)};
        CHECK_EQ(gorc_go(tc_recv_closed, &t), 0);
        gorc_sleep(MS);
        CHECK_EQ(gorc_chan_close(t.c), 0);
        wait_count(base);
        CHECK_EQ(atomic_load(&t.flag), 1);
        gorc_chan_release(t.c);
    }
    {
        /* 100 values in FIFO order, twice (Go: with v := <-c, then v, ok := <-c). */
        tchan t = {.c = mkchan(sizeof(int), (size_t)cap), .v = 100};
        for (int round = 0; round < 2; round++) {
            CHECK_EQ(gorc_go(tc_send_n, &t), 0);
            for (int i = 0; i < 100; i++) {
                CHECK_EQ(gorc_chan_recv(t.c, &v), 0);
                CHECK_EQ(v, i);
            }
            wait_count(base);
        }

        /* 4 senders of 1000 values, 4 receivers: each value arrives 4 times. */
        gorc_waitgroup wg = {0};
        int *counts = calloc(TC_P * TC_L, sizeof(int));
        CHECK(counts != NULL);
        tchan snd = {.c = t.c, .v = TC_L, .wg = &wg}, rcv[TC_P];
        gorc_waitgroup_add(&wg, 2 * TC_P);
        for (int p = 0; p < TC_P; p++) {
            CHECK_EQ(gorc_go(tc_send_n, &snd), 0);
            rcv[p] = (tchan){.c = t.c, .counts = counts + p * TC_L, .wg = &wg};
            CHECK_EQ(gorc_go(tc_recv_count, &rcv[p]), 0);
        }
        gorc_waitgroup_wait(&wg);
        for (int i = 0; i < TC_L; i++) {
            int sum = 0;
            for (int p = 0; p < TC_P; p++)
                sum += counts[p * TC_L + i];
            CHECK_EQ(sum, TC_P);
        }
        free(counts);
        wait_count(base);
        gorc_chan_release(t.c);
    }
    {
        /* len and cap. */
        gorc_chan *c = mkchan(sizeof(int), (size_t)cap);
        CHECK_EQ(gorc_chan_len(c), 0);
        CHECK_EQ(gorc_chan_cap(c), cap);
        for (int i = 0; i < cap; i++)
            CHECK_EQ(gorc_chan_send(c, &i), 0);
        CHECK_EQ(gorc_chan_len(c), cap);
        CHECK_EQ(gorc_chan_cap(c), cap);
        gorc_chan_release(c);
    }
}

GO_TEST(test_chan)
{
    base_count();
    long n = scaled(200);
    if (n < 4)
        n = 4;
    for (int cap = 0; cap < n; cap++)
        test_chan_cap(cap);
}

/* ------------------------------------------------------------------------------------------
 * TestNonblockSelectRace, TestNonblockSelectRace2: a select acts on the channels' state at one
 * moment, not over a smeared window. c1 holds a value; a goroutine selects without blocking
 * on {c1, c2} while main makes c2 ready (a send; in Race2, a close) and then takes c1's value
 * if it can. One of the two is always ready, so the default case must never run.
 * ---------------------------------------------------------------------------------------- */

typedef struct nbsel {
    gorc_chan *c1, *c2, *done;
} nbsel;

static void nbsel_try(void *arg)
{
    nbsel *x = arg;
    gorc_case cs[2] = {{.chan = x->c1, .dir = GORC_RECV}, {.chan = x->c2, .dir = GORC_RECV}};
    bool ok = gorc_select_try(cs, 2) >= 0;
    CHECK_EQ(gorc_chan_send(x->done, &ok), 0);
}

static void nonblock_select_race(bool close_c2)
{
    gorc_chan *done = mkchan(sizeof(bool), 1);
    long n = scaled(20000);
    for (long i = 0; i < n; i++) {
        nbsel x = {mkchan(sizeof(int), 1), mkchan(sizeof(int), close_c2 ? 0 : 1), done};
        int one = 1;
        CHECK_EQ(gorc_chan_send(x.c1, &one), 0);
        CHECK_EQ(gorc_go(nbsel_try, &x), 0);
        if (close_c2)
            CHECK_EQ(gorc_chan_close(x.c2), 0);
        else
            CHECK_EQ(gorc_chan_send(x.c2, &one), 0);
        gorc_chan_tryrecv(x.c1, NULL);
        bool ok = false;
        CHECK_EQ(gorc_chan_recv(done, &ok), 0);
        if (!ok)
            fprintf(stderr, "TestNonblockSelectRace%s: no chan is ready\n", close_c2 ? "2" : "");
        CHECK(ok);
        gorc_chan_release(x.c1);
        gorc_chan_release(x.c2);
    }
    gorc_chan_release(done);
}

GO_TEST(test_nonblock_select_race)
{
    int64_t base = base_count();
    nonblock_select_race(false);
    nonblock_select_race(true);
    wait_count(base);
}

/* ------------------------------------------------------------------------------------------
 * TestSelfSelect: two goroutines select on {send c, receive c} over one channel (both case
 * orders); this must neither crash nor deadlock, and on an unbuffered channel a select never
 * receives its own value.
 * ---------------------------------------------------------------------------------------- */

typedef struct selfsel {
    gorc_chan *c;
    int p;
    bool unbuffered;
    gorc_waitgroup *wg;
} selfsel;

static void selfsel_run(void *arg)
{
    selfsel *x = arg;
    for (int i = 0; i < 1000; i++) {
        int out = x->p, in = -1;
        gorc_case sr[2] = {{.chan = x->c, .dir = GORC_SEND, .elem = &out},
                           {.chan = x->c, .dir = GORC_RECV, .elem = &in}};
        gorc_case rs[2] = {sr[1], sr[0]};
        bool first = x->p == 0 || i % 2 == 0;
        gorc_case *cs = first ? sr : rs;
        int r = gorc_select(cs, 2);
        CHECK(r == 0 || r == 1);
        CHECK(!cs[r].closed);
        if (cs[r].dir == GORC_RECV && x->unbuffered && in == x->p) {
            fprintf(stderr, "TestSelfSelect: self receive\n");
            CHECK(false);
        }
    }
    gorc_waitgroup_done(x->wg);
}

GO_TEST(test_self_select)
{
    int64_t base = base_count();
    for (int cap = 0; cap <= 10; cap += 10) {
        gorc_waitgroup wg = {0};
        gorc_chan *c = mkchan(sizeof(int), (size_t)cap);
        selfsel x[2];
        gorc_waitgroup_add(&wg, 2);
        for (int p = 0; p < 2; p++) {
            x[p] = (selfsel){c, p, cap == 0, &wg};
            CHECK_EQ(gorc_go(selfsel_run, &x[p]), 0);
        }
        gorc_waitgroup_wait(&wg);
        wait_count(base);
        gorc_chan_release(c);
    }
}

/* ------------------------------------------------------------------------------------------
 * TestSelectStress: four channels (two unbuffered, capacities 2 and 3); per channel one
 * goroutine sends N values and one receives N; plus one goroutine sending N values on each
 * channel in a single select and one receiving likewise, each dropping a channel (NULL) from
 * its select once it has done N on it. All of it interacts chaotically and must not deadlock.
 * ---------------------------------------------------------------------------------------- */

typedef struct sstress {
    gorc_chan *c[4];
    long n;
    gorc_waitgroup wg;
} sstress;

typedef struct sstress_arg {
    sstress *s;
    int k;
} sstress_arg;

static void ss_sender(void *arg)
{
    sstress_arg *a = arg;
    int zero = 0;
    for (long i = 0; i < a->s->n; i++)
        CHECK_EQ(gorc_chan_send(a->s->c[a->k], &zero), 0);
    gorc_waitgroup_done(&a->s->wg);
}

static void ss_receiver(void *arg)
{
    sstress_arg *a = arg;
    for (long i = 0; i < a->s->n; i++)
        CHECK_EQ(gorc_chan_recv(a->s->c[a->k], NULL), 0);
    gorc_waitgroup_done(&a->s->wg);
}

static void ss_selector(void *arg)
{
    sstress_arg *a = arg;
    sstress *s = a->s;
    int dir = a->k, zero = 0, in;
    long n[4] = {0};
    gorc_case cs[4];
    for (int k = 0; k < 4; k++)
        cs[k] = (gorc_case){.chan = s->c[k], .dir = dir, .elem = dir == GORC_SEND ? &zero : &in};
    for (long i = 0; i < 4 * s->n; i++) {
        int r = gorc_select(cs, 4);
        CHECK(r >= 0 && r < 4);
        CHECK(!cs[r].closed);
        if (++n[r] == s->n)
            cs[r].chan = NULL;
    }
    for (int k = 0; k < 4; k++)
        CHECK_EQ(n[k], s->n);
    gorc_waitgroup_done(&s->wg);
}

GO_TEST(test_select_stress)
{
    int64_t base = base_count();
    sstress s = {.c = {mkchan(sizeof(int), 0), mkchan(sizeof(int), 0), mkchan(sizeof(int), 2),
                       mkchan(sizeof(int), 3)},
                 .n = scaled(20000)};
    sstress_arg args[4], sel_send = {&s, GORC_SEND}, sel_recv = {&s, GORC_RECV};
    gorc_waitgroup_add(&s.wg, 10);
    for (int k = 0; k < 4; k++) {
        args[k] = (sstress_arg){&s, k};
        CHECK_EQ(gorc_go(ss_sender, &args[k]), 0);
        CHECK_EQ(gorc_go(ss_receiver, &args[k]), 0);
    }
    CHECK_EQ(gorc_go(ss_selector, &sel_send), 0);
    CHECK_EQ(gorc_go(ss_selector, &sel_recv), 0);
    gorc_waitgroup_wait(&s.wg);
    wait_count(base);
    for (int k = 0; k < 4; k++)
        gorc_chan_release(s.c[k]);
}

/* ------------------------------------------------------------------------------------------
 * TestSelectFairness: a goroutine selects over two empty unbuffered channels and two always
 * ready buffered ones, and forwards what it got; over 10000 trials the two ready ones must
 * each be chosen about half the time (Go's bound: |ratio - 0.5| <= 4/sqrt(trials), 8 sigma).
 * ---------------------------------------------------------------------------------------- */

enum { SF_TRIALS = 10000 };

typedef struct sfair {
    gorc_chan *c1, *c2, *c3, *c4, *out, *done, *exited;
} sfair;

static void sf_selector(void *arg)
{
    sfair *f = arg;
    for (;;) {
        char b = 0;
        gorc_case in[4] = {{.chan = f->c3, .dir = GORC_RECV, .elem = &b},
                           {.chan = f->c4, .dir = GORC_RECV, .elem = &b},
                           {.chan = f->c1, .dir = GORC_RECV, .elem = &b},
                           {.chan = f->c2, .dir = GORC_RECV, .elem = &b}};
        CHECK(gorc_select(in, 4) >= 2);
        gorc_case out[2] = {{.chan = f->out, .dir = GORC_SEND, .elem = &b},
                            {.chan = f->done, .dir = GORC_RECV}};
        if (gorc_select(out, 2) == 1)
            break;
    }
    CHECK_EQ(gorc_chan_send(f->exited, NULL), 0);
}

GO_TEST(test_select_fairness)
{
    int64_t base = base_count();
    sfair f = {mkchan(1, SF_TRIALS + 1),
               mkchan(1, SF_TRIALS + 1),
               mkchan(1, 0),
               mkchan(1, 0),
               mkchan(1, 0),
               mkchan(0, 0),
               mkchan(0, 1)};
    char one = 1, two = 2;
    for (int i = 0; i < SF_TRIALS + 1; i++) {
        CHECK_EQ(gorc_chan_send(f.c1, &one), 0);
        CHECK_EQ(gorc_chan_send(f.c2, &two), 0);
    }
    CHECK_EQ(gorc_go(sf_selector, &f), 0);
    long cnt1 = 0, cnt2 = 0;
    for (int i = 0; i < SF_TRIALS; i++) {
        char b = 0;
        CHECK_EQ(gorc_chan_recv(f.out, &b), 0);
        CHECK(b == 1 || b == 2);
        if (b == 1)
            cnt1++;
        else
            cnt2++;
    }
    /* |cnt1/n - 1/2| > 4/sqrt(n)  <=>  (2 cnt1 - n)^2 > 64 n */
    long d = 2 * cnt1 - SF_TRIALS;
    if (d * d > 64L * SF_TRIALS)
        fprintf(stderr, "TestSelectFairness: unfair select: in %d trials, results were %ld, %ld\n",
                SF_TRIALS, cnt1, cnt2);
    CHECK(d * d <= 64L * SF_TRIALS);
    CHECK_EQ(gorc_chan_close(f.done), 0);
    CHECK_EQ(gorc_chan_recv(f.exited, NULL), 0);
    wait_count(base);
    gorc_chan *all[] = {f.c1, f.c2, f.c3, f.c4, f.out, f.done, f.exited};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        gorc_chan_release(all[i]);
}

/* ------------------------------------------------------------------------------------------
 * TestChanSendInterface: sending interface values (here: pointers to structs, and a struct
 * holding a pointer, as an interface value does) plainly and through selects with a default.
 * The values must arrive intact.
 * ---------------------------------------------------------------------------------------- */

typedef struct iface {
    const void *type;
    void *data;
} iface;

GO_TEST(test_chan_send_interface)
{
    static const int type_a = 0, type_b = 0;
    int mt1 = 1, mt2 = 2;
    gorc_chan *c = mkchan(sizeof(iface), 1);
    iface m = {&type_a, &mt1}, other = {&type_b, &mt2}, got;
    CHECK_EQ(gorc_chan_send(c, &m), 0);
    gorc_case one[1] = {{.chan = c, .dir = GORC_SEND, .elem = &m}};
    CHECK_EQ(gorc_select_try(one, 1), GORC_EAGAIN); /* full: default */
    gorc_case two[2] = {{.chan = c, .dir = GORC_SEND, .elem = &m},
                        {.chan = c, .dir = GORC_SEND, .elem = &other}};
    CHECK_EQ(gorc_select_try(two, 2), GORC_EAGAIN);
    CHECK_EQ(gorc_chan_recv(c, &got), 0);
    CHECK(got.type == &type_a && got.data == &mt1);
    /* Now there is room: one of the two is sent, intact. */
    int r = gorc_select_try(two, 2);
    CHECK(r == 0 || r == 1);
    CHECK_EQ(gorc_chan_recv(c, &got), 0);
    CHECK(got.type == (r == 0 ? (const void *)&type_a : (const void *)&type_b));
    CHECK(got.data == (r == 0 ? (void *)&mt1 : (void *)&mt2));
    /* Pointers through an unbuffered channel. */
    gorc_chan *p = mkchan(sizeof(int *), 1);
    int *ptr = &mt2, *back = NULL;
    CHECK_EQ(gorc_chan_send(p, &ptr), 0);
    CHECK_EQ(gorc_chan_recv(p, &back), 0);
    CHECK(back == &mt2 && *back == 2);
    gorc_chan_release(p);
    gorc_chan_release(c);
}

/* ------------------------------------------------------------------------------------------
 * TestMultiConsumer: 23 workers take values from one channel and pass them on to another
 * (yielding on some values, to upset the FIFO-ish order); a feeder sends niter values (Go:
 * 271828) and closes the work channel, waits for the workers, then closes the results channel.
 * Every value must come out exactly once: the count and the sum match.
 * ---------------------------------------------------------------------------------------- */

enum { MC_NWORK = 23 };
static const int mc_pn[] = {2, 3, 7, 11, 13, 17, 19, 23, 27, 31};
#define MC_NPN ((int)(sizeof mc_pn / sizeof mc_pn[0]))

typedef struct mcons {
    gorc_chan *q, *r;
    long niter;
    long long expect;
    gorc_waitgroup wg;
} mcons;

typedef struct mcworker {
    mcons *m;
    int w;
} mcworker;

static void mc_worker(void *arg)
{
    mcworker *x = arg;
    int v;
    while (gorc_chan_recv(x->m->q, &v) == 0) {
        if (mc_pn[x->w % MC_NPN] == v)
            gorc_yield();
        CHECK_EQ(gorc_chan_send(x->m->r, &v), 0);
    }
    gorc_waitgroup_done(&x->m->wg);
}

static void mc_feeder(void *arg)
{
    mcons *m = arg;
    for (long i = 0; i < m->niter; i++) {
        int v = mc_pn[i % MC_NPN];
        m->expect += v;
        CHECK_EQ(gorc_chan_send(m->q, &v), 0);
    }
    CHECK_EQ(gorc_chan_close(m->q), 0);
    gorc_waitgroup_wait(&m->wg);
    CHECK_EQ(gorc_chan_close(m->r), 0);
}

GO_TEST(test_multi_consumer)
{
    int64_t base = base_count();
    mcons m = {.q = mkchan(sizeof(int), MC_NWORK * 3),
               .r = mkchan(sizeof(int), MC_NWORK * 3),
               .niter = scaled(271828)};
    mcworker w[MC_NWORK];
    gorc_waitgroup_add(&m.wg, MC_NWORK);
    for (int i = 0; i < MC_NWORK; i++) {
        w[i] = (mcworker){&m, i};
        CHECK_EQ(gorc_go(mc_worker, &w[i]), 0);
    }
    CHECK_EQ(gorc_go(mc_feeder, &m), 0);
    long n = 0;
    long long sum = 0;
    int v;
    while (gorc_chan_recv(m.r, &v) == 0) {
        n++;
        sum += v;
    }
    /* The feeder wrote expect before closing q, which happened before r was closed. */
    if (n != m.niter || sum != m.expect)
        fprintf(stderr, "TestMultiConsumer: expected sum %lld (got %lld) from %ld iter (saw %ld)\n",
                m.expect, sum, m.niter, n);
    CHECK(n == m.niter && sum == m.expect);
    wait_count(base);
    gorc_chan_release(m.q);
    gorc_chan_release(m.r);
}

/* ------------------------------------------------------------------------------------------
 * TestSelectDuplicateChannel: a goroutine queued twice on one channel (select {<-c; <-c; <-d})
 * and woken through another must take both of its waiters off c; a later send on c must then
 * wake the goroutine queued on c after it, not a stale waiter. Also test/chan/select6.go
 * (issue 2075), the same shape with the select's waiter ahead of a plain receiver.
 * ---------------------------------------------------------------------------------------- */

typedef struct dupsel {
    gorc_chan *c, *d, *e;
} dupsel;

static void dup_a(void *arg)
{
    dupsel *x = arg;
    gorc_case cs[3] = {{.chan = x->c, .dir = GORC_RECV},
                       {.chan = x->c, .dir = GORC_RECV},
                       {.chan = x->d, .dir = GORC_RECV}};
    CHECK_EQ(gorc_select(cs, 3), 2);
    int nine = 9;
    CHECK_EQ(gorc_chan_send(x->e, &nine), 0);
}

static void dup_b(void *arg)
{
    dupsel *x = arg;
    int v = 0;
    CHECK_EQ(gorc_chan_recv(x->c, &v), 0);
    CHECK_EQ(v, 8);
}

/* select6: the goroutines of issue 2075. */
typedef struct sel6 {
    gorc_chan *c1, *c2, *c3;
} sel6;

static void s6_recv_c1(void *arg)
{
    CHECK_EQ(gorc_chan_recv(((sel6 *)arg)->c1, NULL), 0);
}

static void s6_select(void *arg)
{
    sel6 *x = arg;
    gorc_case cs[2] = {{.chan = x->c1, .dir = GORC_RECV}, {.chan = x->c2, .dir = GORC_RECV}};
    int r = gorc_select(cs, 2);
    if (r == 0)
        fprintf(stderr, "select6: dummy\n");
    CHECK_EQ(r, 1);
    CHECK_EQ(gorc_chan_send(x->c3, NULL), 0);
    CHECK_EQ(gorc_chan_recv(x->c1, NULL), 0);
}

static void s6_send_c2(void *arg)
{
    CHECK_EQ(gorc_chan_send(((sel6 *)arg)->c2, NULL), 0);
}

GO_TEST(test_select_duplicate_channel)
{
    int64_t base = base_count();
    dupsel x = {mkchan(sizeof(int), 0), mkchan(sizeof(int), 0), mkchan(sizeof(int), 0)};
    CHECK_EQ(gorc_go(dup_a, &x), 0);
    gorc_sleep(MS); /* A is queued on c first */
    CHECK_EQ(gorc_go(dup_b, &x), 0);
    gorc_sleep(MS); /* then B */
    int v = 7;
    CHECK_EQ(gorc_chan_send(x.d, &v), 0); /* wakes A, which unqueues itself from c */
    CHECK_EQ(gorc_chan_recv(x.e, &v), 0);
    CHECK_EQ(v, 9);
    v = 8;
    CHECK_EQ(gorc_chan_send(x.c, &v), 0); /* must wake B */
    wait_count(base);
    gorc_chan_release(x.c);
    gorc_chan_release(x.d);
    gorc_chan_release(x.e);

    sel6 y = {mkchan(0, 0), mkchan(0, 0), mkchan(0, 0)};
    CHECK_EQ(gorc_go(s6_recv_c1, &y), 0);
    CHECK_EQ(gorc_go(s6_select, &y), 0);
    CHECK_EQ(gorc_go(s6_send_c2, &y), 0);
    CHECK_EQ(gorc_chan_recv(y.c3, NULL), 0);
    CHECK_EQ(gorc_chan_send(y.c1, NULL), 0);
    CHECK_EQ(gorc_chan_send(y.c1, NULL), 0);
    wait_count(base);
    gorc_chan_release(y.c1);
    gorc_chan_release(y.c2);
    gorc_chan_release(y.c3);
}

/* ------------------------------------------------------------------------------------------
 * test/chan/select3.go: which operations block. Go's testBlock runs the operation in a
 * goroutine and calls it blocked if it has not finished after 0.1 s; here 20 ms. An operation
 * that blocks is then released by closing its channel, so no goroutine is left behind; the
 * ones that block for good (a send or receive on a nil channel, an empty select) cannot be,
 * and are covered by the deadlock reports of test_crash instead, and here by
 * gorc_select_timeout. Go's panics (send on a closed channel, also in a select) are gorc's
 * -EPIPE and closed flags.
 * ---------------------------------------------------------------------------------------- */

typedef struct blkop {
    int op;
    gorc_chan *c;
    gorc_chan *done; /* cap 1: the operation finished */
} blkop;

enum {
    OP_SEND_BUFFERED,      /* send to a fresh channel with room */
    OP_RECV_CLOSED,        /* receive from a closed channel, 10 times, both forms */
    OP_RECV,               /* receive from c */
    OP_SELECT_RECV,        /* select { <-c } */
    OP_SELECT_NIL_DEFAULT, /* select { <-nil; nil <- 7; default } */
    OP_SELECT_DEFAULT,     /* select { default } */
    OP_SELECT_READY_SEND,  /* select { c <- 7; default } with room */
    OP_SELECT_READY_RECV,  /* select { <-c; default } with a value */
    OP_SELECT_CLOSED,      /* select { <-closed } */
    OP_SELECT_SELF,        /* select { c <- 1; <-c } on an unbuffered channel */
};

static void blk_run(void *arg)
{
    blkop *b = arg;
    int v = 7, x = 5;
    switch (b->op) {
    case OP_SEND_BUFFERED: {
        gorc_chan *ch = mkchan(sizeof(int), 1);
        CHECK_EQ(gorc_chan_send(ch, &v), 0);
        gorc_chan_release(ch);
        break;
    }
    case OP_RECV_CLOSED:
        for (int i = 0; i < 10; i++) {
            x = 5;
            CHECK_EQ(gorc_chan_recv(b->c, &x), GORC_ECLOSED);
            CHECK_EQ(x, 0);
            x = 5;
            CHECK_EQ(gorc_chan_tryrecv(b->c, &x), GORC_ECLOSED);
            CHECK_EQ(x, 0);
        }
        break;
    case OP_RECV:
        CHECK_EQ(gorc_chan_recv(b->c, &x), GORC_ECLOSED); /* released by a close */
        break;
    case OP_SELECT_RECV: {
        gorc_case cs[2] = {{.chan = b->c, .dir = GORC_RECV, .elem = &x},
                           {.chan = NULL, .dir = GORC_SEND, .elem = &v}};
        CHECK_EQ(gorc_select(cs, 2), 0);
        CHECK(cs[0].closed);
        break;
    }
    case OP_SELECT_NIL_DEFAULT: {
        gorc_case cs[2] = {{.chan = NULL, .dir = GORC_RECV, .elem = &x},
                           {.chan = NULL, .dir = GORC_SEND, .elem = &v}};
        CHECK_EQ(gorc_select_try(cs, 1), GORC_EAGAIN);
        CHECK_EQ(gorc_select_try(cs + 1, 1), GORC_EAGAIN);
        CHECK_EQ(gorc_select_try(cs, 2), GORC_EAGAIN);
        break;
    }
    case OP_SELECT_DEFAULT:
        CHECK_EQ(gorc_select_try(NULL, 0), GORC_EAGAIN);
        break;
    case OP_SELECT_READY_SEND: {
        gorc_chan *ch = mkchan(sizeof(int), 1);
        gorc_case cs[1] = {{.chan = ch, .dir = GORC_SEND, .elem = &v}};
        CHECK_EQ(gorc_select_try(cs, 1), 0);
        gorc_chan_release(ch);
        break;
    }
    case OP_SELECT_READY_RECV: {
        gorc_chan *ch = mkchan(sizeof(int), 1);
        CHECK_EQ(gorc_chan_send(ch, &v), 0);
        gorc_case cs[1] = {{.chan = ch, .dir = GORC_RECV, .elem = &x}};
        CHECK_EQ(gorc_select_try(cs, 1), 0);
        CHECK_EQ(x, 7);
        gorc_chan_release(ch);
        break;
    }
    case OP_SELECT_CLOSED: {
        gorc_case cs[1] = {{.chan = b->c, .dir = GORC_RECV, .elem = &x}};
        CHECK_EQ(gorc_select(cs, 1), 0);
        CHECK(cs[0].closed);
        CHECK_EQ(x, 0);
        break;
    }
    case OP_SELECT_SELF: {
        gorc_case cs[2] = {{.chan = b->c, .dir = GORC_SEND, .elem = &v},
                           {.chan = b->c, .dir = GORC_RECV, .elem = &x}};
        int r = gorc_select(cs, 2);
        CHECK(r == 0 || r == 1);
        CHECK(cs[r].closed); /* it did not pair with itself: only the close released it */
        break;
    }
    default:
        CHECK(false);
    }
    CHECK_EQ(gorc_chan_send(b->done, NULL), 0);
}

/* The operation must not finish within 20 ms; then c is closed and it must finish. Takes the
 * caller's reference to c. */
static void expect_blocks(int op, gorc_chan *c)
{
    blkop b = {op, c, mkchan(0, 1)};
    CHECK_EQ(gorc_go(blk_run, &b), 0);
    gorc_case cs[1] = {{.chan = b.done, .dir = GORC_RECV}};
    if (gorc_select_timeout(cs, 1, 20 * MS) != GORC_ETIMEDOUT) {
        fprintf(stderr, "select3: operation %d did not block\n", op);
        CHECK(false);
    }
    CHECK_EQ(gorc_chan_close(c), 0);
    CHECK_EQ(gorc_chan_recv(b.done, NULL), 0);
    gorc_chan_release(b.done);
    gorc_chan_release(c);
}

/* The operation must finish (Go: within 0.1 s; here a generous 10 s, as a loaded machine may
 * not run the goroutine at once). */
static void expect_no_block(int op, gorc_chan *c)
{
    blkop b = {op, c, mkchan(0, 1)};
    CHECK_EQ(gorc_go(blk_run, &b), 0);
    gorc_case cs[1] = {{.chan = b.done, .dir = GORC_RECV}};
    if (gorc_select_timeout(cs, 1, 10 * GORC_SECOND) != 0) {
        fprintf(stderr, "select3: operation %d blocked\n", op);
        CHECK(false);
    }
    gorc_chan_release(b.done);
}

GO_TEST(test_select3)
{
    int64_t base = base_count();
    gorc_chan *closedch = mkchan(sizeof(int), 0);
    CHECK_EQ(gorc_chan_close(closedch), 0);
    int v = 7;

    /* A nil channel blocks (test_crash: nilsend, nilrecv); in a select it is never chosen. */
    CHECK_EQ(gorc_chan_trysend(NULL, &v), GORC_EAGAIN);
    CHECK_EQ(gorc_chan_tryrecv(NULL, &v), GORC_EAGAIN);
    expect_no_block(OP_SELECT_NIL_DEFAULT, NULL);

    expect_no_block(OP_SEND_BUFFERED, NULL);              /* room in the buffer */
    expect_no_block(OP_RECV_CLOSED, closedch);            /* a closed channel */
    CHECK_EQ(gorc_chan_send(closedch, &v), GORC_ECLOSED); /* Go: panics */
    expect_blocks(OP_RECV, mkchan(sizeof(int), 0));       /* nothing ready */

    /* Empty selects and selects over nil channels only block for good (test_crash:
     * selectnone); with a timeout they time out. */
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_select_timeout(NULL, 0, 5 * MS), GORC_ETIMEDOUT);
    gorc_case nils[2] = {{.chan = NULL, .dir = GORC_RECV}, {.chan = NULL, .dir = GORC_SEND}};
    CHECK_EQ(gorc_select_timeout(nils, 1, 5 * MS), GORC_ETIMEDOUT);
    CHECK_EQ(gorc_select_timeout(nils + 1, 1, 5 * MS), GORC_ETIMEDOUT);
    CHECK_EQ(gorc_select_timeout(nils, 2, 5 * MS), GORC_ETIMEDOUT);
    CHECK(gorc_now() - t0 >= 20 * MS);

    expect_blocks(OP_SELECT_RECV, mkchan(sizeof(int), 0)); /* a non-ready channel */
    expect_no_block(OP_SELECT_DEFAULT, NULL);              /* a default case */
    expect_no_block(OP_SELECT_READY_SEND, NULL);           /* ready channels */
    expect_no_block(OP_SELECT_READY_RECV, NULL);
    expect_no_block(OP_SELECT_CLOSED, closedch); /* closed: like a plain receive */
    gorc_case sc[1] = {{.chan = closedch, .dir = GORC_SEND, .elem = &v}};
    CHECK_EQ(gorc_select(sc, 1), 0); /* Go: panics */
    CHECK(sc[0].closed);
    expect_blocks(OP_SELECT_SELF, mkchan(sizeof(int), 0)); /* a select that sees itself */
    wait_count(base);
    gorc_chan_release(closedch);
}

/* ------------------------------------------------------------------------------------------
 * test/chan/select7.go: a received value may be discarded, by a plain receive and by selects
 * of one and two cases.
 * ---------------------------------------------------------------------------------------- */

static void s7_send(void *arg)
{
    int v = 1;
    CHECK_EQ(gorc_chan_send(arg, &v), 0);
}

GO_TEST(test_select7)
{
    int64_t base = base_count();
    gorc_chan *c = mkchan(sizeof(int), 0), *c2 = mkchan(sizeof(int), 0);
    for (int form = 0; form < 3; form++) {
        CHECK_EQ(gorc_go(s7_send, c), 0);
        if (form == 0) {
            CHECK_EQ(gorc_chan_recv(c, NULL), 0);
        } else {
            gorc_case cs[2] = {{.chan = c, .dir = GORC_RECV}, {.chan = c2, .dir = GORC_RECV}};
            CHECK_EQ(gorc_select(cs, (size_t)form), 0);
        }
        wait_count(base);
    }
    gorc_chan_release(c);
    gorc_chan_release(c2);
}

/* ------------------------------------------------------------------------------------------
 * test/chan/doubleselect.go: a sender selects over four unbuffered channels to send a counter;
 * a mux per channel forwards to one channel; the receiver must see every value exactly once
 * (two cases of one select must never both run).
 * ---------------------------------------------------------------------------------------- */

typedef struct dsel {
    gorc_chan *c[4], *cmux, *done;
    long n;
} dsel;

typedef struct dmux {
    dsel *d;
    int k;
} dmux;

static void ds_sender(void *arg)
{
    dsel *d = arg;
    for (long i = 0; i < d->n; i++) {
        gorc_case cs[4];
        for (int k = 0; k < 4; k++)
            cs[k] = (gorc_case){.chan = d->c[k], .dir = GORC_SEND, .elem = &i};
        CHECK(gorc_select(cs, 4) >= 0);
    }
    for (int k = 0; k < 4; k++)
        CHECK_EQ(gorc_chan_close(d->c[k]), 0);
}

static void ds_mux(void *arg)
{
    dmux *m = arg;
    long v;
    while (gorc_chan_recv(m->d->c[m->k], &v) == 0)
        CHECK_EQ(gorc_chan_send(m->d->cmux, &v), 0);
    CHECK_EQ(gorc_chan_send(m->d->done, NULL), 0);
}

static void ds_closer(void *arg)
{
    dsel *d = arg;
    for (int k = 0; k < 4; k++)
        CHECK_EQ(gorc_chan_recv(d->done, NULL), 0);
    CHECK_EQ(gorc_chan_close(d->cmux), 0);
}

GO_TEST(test_doubleselect)
{
    int64_t base = base_count();
    dsel d = {.cmux = mkchan(sizeof(long), 0), .done = mkchan(0, 0), .n = scaled(100000)};
    dmux m[4];
    for (int k = 0; k < 4; k++) {
        d.c[k] = mkchan(sizeof(long), 0);
        m[k] = (dmux){&d, k};
    }
    CHECK_EQ(gorc_go(ds_sender, &d), 0);
    for (int k = 0; k < 4; k++)
        CHECK_EQ(gorc_go(ds_mux, &m[k]), 0);
    CHECK_EQ(gorc_go(ds_closer, &d), 0);
    char *seen = calloc((size_t)d.n, 1);
    CHECK(seen != NULL);
    long v, got = 0;
    while (gorc_chan_recv(d.cmux, &v) == 0) {
        CHECK(v >= 0 && v < d.n);
        if (seen[v])
            fprintf(stderr, "doubleselect: got duplicate value: %ld\n", v);
        CHECK(!seen[v]);
        seen[v] = 1;
        got++;
    }
    CHECK_EQ(got, d.n);
    free(seen);
    wait_count(base);
    for (int k = 0; k < 4; k++)
        gorc_chan_release(d.c[k]);
    gorc_chan_release(d.cmux);
    gorc_chan_release(d.done);
}

/* ------------------------------------------------------------------------------------------
 * test/chan/nonblock.go: non-blocking sends and receives over unbuffered and one-slot
 * channels of int32, int64, bool and string-sized (16 bytes) elements: nothing to receive at
 * first; a non-blocking send retried until a receiver goroutine takes it, and a non-blocking
 * receive retried until a sender goroutine provides the value (Go: up to 10000 tries, 20 us
 * apart).
 * ---------------------------------------------------------------------------------------- */

typedef struct nbk {
    gorc_chan *c, *sync;
    size_t size;
    unsigned char want[16];
} nbk;

static void nbk_receiver(void *arg)
{
    nbk *k = arg;
    unsigned char got[16] = {0};
    CHECK_EQ(gorc_chan_recv(k->c, got), 0);
    CHECK(memcmp(got, k->want, k->size) == 0);
    CHECK_EQ(gorc_chan_send(k->sync, NULL), 0);
}

static void nbk_sender(void *arg)
{
    nbk *k = arg;
    CHECK_EQ(gorc_chan_send(k->c, k->want), 0);
    CHECK_EQ(gorc_chan_send(k->sync, NULL), 0);
}

GO_TEST(test_nonblock)
{
    int64_t base = base_count();
    const int max_tries = 10000;
    static const size_t sizes[] = {sizeof(int32_t), sizeof(int64_t), sizeof(bool), 16};
    for (int buffer = 0; buffer < 2; buffer++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            nbk k = {mkchan(sizes[s], (size_t)buffer), mkchan(0, 0), sizes[s], {0}};
            for (size_t i = 0; i < k.size; i++)
                k.want[i] = (unsigned char)(123 + i);
            if (k.size == sizeof(bool))
                k.want[0] = 1;
            unsigned char got[16];
            CHECK_EQ(gorc_chan_tryrecv(k.c, got), GORC_EAGAIN);

            CHECK_EQ(gorc_go(nbk_receiver, &k), 0);
            int tries = 0;
            while (gorc_chan_trysend(k.c, k.want) == GORC_EAGAIN) {
                if (++tries > max_tries) {
                    fprintf(stderr, "nonblock: receiver, buffer=%d size=%zu\n", buffer, k.size);
                    CHECK(false);
                }
                gorc_sleep(20 * GORC_MICROSECOND);
            }
            CHECK_EQ(gorc_chan_recv(k.sync, NULL), 0);

            CHECK_EQ(gorc_go(nbk_sender, &k), 0);
            if (buffer > 0)
                CHECK_EQ(gorc_chan_recv(k.sync, NULL), 0);
            tries = 0;
            memset(got, 0, sizeof got);
            while (gorc_chan_tryrecv(k.c, got) == GORC_EAGAIN) {
                if (++tries > max_tries) {
                    fprintf(stderr, "nonblock: sender, buffer=%d size=%zu\n", buffer, k.size);
                    CHECK(false);
                }
                gorc_sleep(20 * GORC_MICROSECOND);
            }
            CHECK(memcmp(got, k.want, k.size) == 0);
            if (buffer == 0)
                CHECK_EQ(gorc_chan_recv(k.sync, NULL), 0);
            wait_count(base);
            gorc_chan_release(k.c);
            gorc_chan_release(k.sync);
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * test/chan/fifo.go: a buffered channel gives its values in order (AsynchFifo); senders
 * blocked on an unbuffered channel are served in order, checked by a daisy chain of
 * receivers each of which receives only after the one before it has (SynchFifo).
 * ---------------------------------------------------------------------------------------- */

enum { FIFO_N = 10 };

typedef struct fchain {
    gorc_chan *ch, *in, *out;
    int val;
} fchain;

static void fifo_chain(void *arg)
{
    fchain *f = arg;
    int v = -1;
    CHECK_EQ(gorc_chan_recv(f->in, NULL), 0);
    CHECK_EQ(gorc_chan_recv(f->ch, &v), 0);
    if (v != f->val)
        fprintf(stderr, "fifo: chain %d got %d\n", f->val, v);
    CHECK_EQ(v, f->val);
    int one = 1;
    CHECK_EQ(gorc_chan_send(f->out, &one), 0);
}

GO_TEST(test_fifo)
{
    int64_t base = base_count();
    /* AsynchFifo */
    gorc_chan *ch = mkchan(sizeof(int), FIFO_N);
    for (int i = 0; i < FIFO_N; i++)
        CHECK_EQ(gorc_chan_send(ch, &i), 0);
    for (int i = 0; i < FIFO_N; i++) {
        int v = -1;
        CHECK_EQ(gorc_chan_recv(ch, &v), 0);
        CHECK_EQ(v, i);
    }
    gorc_chan_release(ch);

    /* SynchFifo */
    ch = mkchan(sizeof(int), 0);
    gorc_chan *links[FIFO_N + 1];
    fchain f[FIFO_N];
    links[0] = mkchan(sizeof(int), 0);
    for (int i = 0; i < FIFO_N; i++) {
        links[i + 1] = mkchan(sizeof(int), 0);
        f[i] = (fchain){ch, links[i], links[i + 1], i};
        CHECK_EQ(gorc_go(fifo_chain, &f[i]), 0);
    }
    int zero = 0;
    CHECK_EQ(gorc_chan_send(links[0], &zero), 0);
    for (int i = 0; i < FIFO_N; i++)
        CHECK_EQ(gorc_chan_send(ch, &i), 0);
    CHECK_EQ(gorc_chan_recv(links[FIFO_N], NULL), 0);
    wait_count(base);
    for (int i = 0; i <= FIFO_N; i++)
        gorc_chan_release(links[i]);
    gorc_chan_release(ch);
}

/* ------------------------------------------------------------------------------------------
 * test/chan/goroutines.go: a lot of goroutines threaded together by unbuffered channels
 * (Go: 10000), each passing on what it gets plus one, torn down cleanly.
 * ---------------------------------------------------------------------------------------- */

typedef struct gchain {
    gorc_chan *left, *right;
} gchain;

static void gchain_f(void *arg)
{
    gchain *g = arg;
    int v = 0;
    CHECK_EQ(gorc_chan_recv(g->right, &v), 0);
    v++;
    CHECK_EQ(gorc_chan_send(g->left, &v), 0);
}

GO_TEST(test_goroutines)
{
    int64_t base = base_count();
    long n = scaled(10000);
    gorc_chan **ch = malloc(sizeof *ch * (size_t)(n + 1));
    gchain *g = malloc(sizeof *g * (size_t)n);
    CHECK(ch != NULL && g != NULL);
    ch[0] = mkchan(sizeof(int), 0);
    for (long i = 0; i < n; i++) {
        ch[i + 1] = mkchan(sizeof(int), 0);
        g[i] = (gchain){ch[i], ch[i + 1]};
        CHECK_EQ(gorc_go(gchain_f, &g[i]), 0);
    }
    int v = 0;
    CHECK_EQ(gorc_chan_send(ch[n], &v), 0);
    CHECK_EQ(gorc_chan_recv(ch[0], &v), 0);
    CHECK_EQ(v, n);
    wait_count(base);
    for (long i = 0; i <= n; i++)
        gorc_chan_release(ch[i]);
    free(ch);
    free(g);
}

/* ------------------------------------------------------------------------------------------
 * test/chan/powser1.go, in small: power series as demand-driven streams of rationals. A
 * stream is Go's dch, a request channel and a data channel; each operator is a goroutine that
 * computes a term only when asked for one. split copies a stream to two consumers on demand,
 * serving either while it waits for its input (a select whose cases are switched off with
 * NULL channels, Go's nil-channel idiom), which is what lets Exp be defined by feedback, as in
 * powser1: X = Integ(1, X * U'). Checked: ones, integrals, sums, products of a stream with
 * itself, and exp(x) = sum x^n / n!. Every operator also selects on a quit channel, closed
 * at the end, so the whole network shuts down.
 * ---------------------------------------------------------------------------------------- */

enum { PS_MAX = 64, PS_TERMS = 12 };

typedef struct rat {
    int64_t n, d; /* d > 0, reduced */
} rat;

static int64_t gcd64(int64_t a, int64_t b)
{
    if (a < 0)
        a = -a;
    while (b != 0) {
        int64_t t = a % b;
        a = b;
        b = t < 0 ? -t : t;
    }
    return a ? a : 1;
}

static rat mkrat(int64_t n, int64_t d)
{
    if (d < 0) {
        n = -n;
        d = -d;
    }
    int64_t g = gcd64(n, d);
    return (rat){n / g, d / g};
}

static rat radd(rat a, rat b)
{
    return mkrat(a.n * b.d + b.n * a.d, a.d * b.d);
}

static rat rmul(rat a, rat b)
{
    return mkrat(a.n * b.n, a.d * b.d);
}

typedef struct dch {
    gorc_chan *req, *dat;
} dch;

typedef struct psnet {
    gorc_chan *quit;
    gorc_waitgroup wg;
    dch streams[64];
    int nstreams;
} psnet;

static dch *mkdch(psnet *net)
{
    CHECK(net->nstreams < 64);
    dch *d = &net->streams[net->nstreams++];
    d->req = mkchan(0, 0);
    d->dat = mkchan(sizeof(rat), 0);
    return d;
}

/* A blocking channel operation that gives up (false) when the network quits. */
static bool ps_op(psnet *net, gorc_chan *c, int dir, void *elem)
{
    gorc_case cs[2] = {{.chan = c, .dir = dir, .elem = elem},
                       {.chan = net->quit, .dir = GORC_RECV}};
    int r = gorc_select(cs, 2);
    CHECK(r == 0 || r == 1);
    return r == 0 && !cs[0].closed;
}

/* The consumer's side: ask for the next term and wait for it. */
static bool ps_get(psnet *net, dch *d, rat *out)
{
    return ps_op(net, d->req, GORC_SEND, NULL) && ps_op(net, d->dat, GORC_RECV, out);
}

typedef enum { PS_REP, PS_MONO, PS_ADD, PS_CMUL, PS_INTEG, PS_DERIV, PS_MUL } psop;

typedef struct psnode {
    psnet *net;
    psop op;
    rat c; /* PS_REP, PS_CMUL, PS_INTEG: the constant; PS_MONO: the coefficient */
    int k; /* PS_MONO: the power */
    dch *u, *v, *out;
} psnode;

static void ps_node(void *arg)
{
    psnode *x = arg;
    psnet *net = x->net;
    rat us[PS_MAX], vs[PS_MAX];
    for (int n = 0;; n++) {
        if (!ps_op(net, x->out->req, GORC_RECV, NULL))
            break;
        CHECK(n < PS_MAX);
        rat t = {0, 1}, a, b;
        bool ok = true;
        switch (x->op) {
        case PS_REP:
            t = x->c;
            break;
        case PS_MONO:
            t = n == x->k ? x->c : mkrat(0, 1);
            break;
        case PS_ADD:
            ok = ps_get(net, x->u, &a) && ps_get(net, x->v, &b);
            if (ok)
                t = radd(a, b);
            break;
        case PS_CMUL:
            ok = ps_get(net, x->u, &a);
            if (ok)
                t = rmul(x->c, a);
            break;
        case PS_INTEG: /* c, u0, u1/2, u2/3, ... */
            if (n == 0) {
                t = x->c;
            } else {
                ok = ps_get(net, x->u, &a);
                if (ok)
                    t = rmul(a, mkrat(1, n));
            }
            break;
        case PS_DERIV: /* u1, 2 u2, 3 u3, ... */
            if (n == 0)
                ok = ps_get(net, x->u, &a); /* the constant term goes */
            if (ok)
                ok = ps_get(net, x->u, &a);
            if (ok)
                t = rmul(a, mkrat(n + 1, 1));
            break;
        case PS_MUL: /* the n-th term of the product needs u_n and v_n */
            ok = ps_get(net, x->u, &us[n]) && ps_get(net, x->v, &vs[n]);
            for (int i = 0; ok && i <= n; i++)
                t = radd(t, rmul(us[i], vs[n - i]));
            break;
        }
        if (!ok || !ps_op(net, x->out->dat, GORC_SEND, &t))
            break;
    }
    gorc_waitgroup_done(&net->wg);
    free(x);
}

static dch *ps_start(psnet *net, psnode tmpl, dch *out)
{
    psnode *x = malloc(sizeof *x);
    CHECK(x != NULL);
    *x = tmpl;
    x->net = net;
    x->out = out ? out : mkdch(net);
    gorc_waitgroup_add(&net->wg, 1);
    CHECK_EQ(gorc_go(ps_node, x), 0);
    return x->out;
}

typedef struct pssplit {
    psnet *net;
    dch *in, *out[2];
} pssplit;

/* Copy in to out[0] and out[1], each getting every term, fetching a term from in only when a
 * consumer asks for one it has not got yet. Every wait is one select over whatever can
 * happen next: a request from a side not already waiting, a reply to a waiting side whose
 * term is at hand, the request to in or its reply. */
static void ps_split(void *arg)
{
    pssplit *x = arg;
    psnet *net = x->net;
    rat vals[PS_MAX], got;
    int nvals = 0, next[2] = {0, 0};
    bool waiting[2] = {false, false}, asked = false;
    for (;;) {
        bool need = (waiting[0] && next[0] == nvals) || (waiting[1] && next[1] == nvals);
        gorc_case cs[7] = {
            {.chan = waiting[0] ? NULL : x->out[0]->req, .dir = GORC_RECV},
            {.chan = waiting[1] ? NULL : x->out[1]->req, .dir = GORC_RECV},
            {.chan = waiting[0] && next[0] < nvals ? x->out[0]->dat : NULL,
             .dir = GORC_SEND,
             .elem = &vals[next[0] < PS_MAX ? next[0] : 0]},
            {.chan = waiting[1] && next[1] < nvals ? x->out[1]->dat : NULL,
             .dir = GORC_SEND,
             .elem = &vals[next[1] < PS_MAX ? next[1] : 0]},
            {.chan = need && !asked ? x->in->req : NULL, .dir = GORC_SEND},
            {.chan = asked ? x->in->dat : NULL, .dir = GORC_RECV, .elem = &got},
            {.chan = net->quit, .dir = GORC_RECV},
        };
        int r = gorc_select(cs, 7);
        CHECK(r >= 0 && r < 7);
        if (r == 6)
            break;
        CHECK(!cs[r].closed);
        switch (r) {
        case 0:
        case 1:
            waiting[r] = true;
            break;
        case 2:
        case 3:
            waiting[r - 2] = false;
            next[r - 2]++;
            break;
        case 4:
            asked = true;
            break;
        case 5:
            CHECK(nvals < PS_MAX);
            vals[nvals++] = got;
            asked = false;
            break;
        }
    }
    gorc_waitgroup_done(&net->wg);
    free(x);
}

static void ps_start_split(psnet *net, dch *in, dch *out0, dch *out1)
{
    pssplit *x = malloc(sizeof *x);
    CHECK(x != NULL);
    *x = (pssplit){net, in, {out0, out1}};
    gorc_waitgroup_add(&net->wg, 1);
    CHECK_EQ(gorc_go(ps_split, x), 0);
}

/* exp(U) for U(0) = 0, by feedback: X = Integ(1, X * U'), X split to feed itself. */
static dch *ps_exp(psnet *net, dch *u)
{
    dch *x = mkdch(net), *x0 = mkdch(net), *x1 = mkdch(net);
    dch *du = ps_start(net, (psnode){.op = PS_DERIV, .u = u}, NULL);
    dch *prod = ps_start(net, (psnode){.op = PS_MUL, .u = x0, .v = du}, NULL);
    ps_start(net, (psnode){.op = PS_INTEG, .c = mkrat(1, 1), .u = prod}, x);
    ps_start_split(net, x, x0, x1);
    return x1;
}

static void ps_expect(psnet *net, dch *d, const char *what, rat (*want)(int))
{
    for (int n = 0; n < PS_TERMS; n++) {
        rat t, w = want(n);
        CHECK(ps_get(net, d, &t));
        if (t.n != w.n || t.d != w.d)
            fprintf(stderr, "powser %s: term %d is %lld/%lld, want %lld/%lld\n", what, n,
                    (long long)t.n, (long long)t.d, (long long)w.n, (long long)w.d);
        CHECK(t.n == w.n && t.d == w.d);
    }
}

static rat want_one(int n)
{
    (void)n;
    return mkrat(1, 1);
}

static rat want_zero(int n)
{
    (void)n;
    return mkrat(0, 1);
}

static rat want_log(int n) /* -log(1 - x) = x + x^2/2 + x^3/3 + ... */
{
    return n == 0 ? mkrat(0, 1) : mkrat(1, n);
}

static rat want_sq(int n) /* 1/(1-x)^2 */
{
    return mkrat(n + 1, 1);
}

static rat want_exp(int n)
{
    int64_t f = 1;
    for (int i = 2; i <= n; i++)
        f *= i;
    return mkrat(1, f);
}

GO_TEST(test_powser)
{
    int64_t base = base_count();
    psnet net = {.quit = mkchan(0, 0)};
    rat one = mkrat(1, 1), minus = mkrat(-1, 1);
    ps_expect(&net, ps_start(&net, (psnode){.op = PS_REP, .c = one}, NULL), "ones", want_one);

    dch *ones = ps_start(&net, (psnode){.op = PS_REP, .c = one}, NULL);
    ps_expect(&net, ps_start(&net, (psnode){.op = PS_INTEG, .c = mkrat(0, 1), .u = ones}, NULL),
              "integ(ones)", want_log);

    dch *a = ps_start(&net, (psnode){.op = PS_REP, .c = one}, NULL);
    dch *b = ps_start(&net, (psnode){.op = PS_REP, .c = one}, NULL);
    dch *nb = ps_start(&net, (psnode){.op = PS_CMUL, .c = minus, .u = b}, NULL);
    ps_expect(&net, ps_start(&net, (psnode){.op = PS_ADD, .u = a, .v = nb}, NULL), "ones - ones",
              want_zero);

    /* A stream times itself, through split. */
    dch *s = ps_start(&net, (psnode){.op = PS_REP, .c = one}, NULL);
    dch *s0 = mkdch(&net), *s1 = mkdch(&net);
    ps_start_split(&net, s, s0, s1);
    ps_expect(&net, ps_start(&net, (psnode){.op = PS_MUL, .u = s0, .v = s1}, NULL), "ones^2",
              want_sq);

    dch *xs = ps_start(&net, (psnode){.op = PS_MONO, .c = one, .k = 1}, NULL);
    ps_expect(&net, ps_exp(&net, xs), "exp(x)", want_exp);

    CHECK_EQ(gorc_chan_close(net.quit), 0);
    gorc_waitgroup_wait(&net.wg);
    wait_count(base);
    for (int i = 0; i < net.nstreams; i++) {
        gorc_chan_release(net.streams[i].req);
        gorc_chan_release(net.streams[i].dat);
    }
    gorc_chan_release(net.quit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nonblock_recv_race),
        cmocka_unit_test(test_pseudo_random_send),
        cmocka_unit_test(test_chan),
        cmocka_unit_test(test_nonblock_select_race),
        cmocka_unit_test(test_self_select),
        cmocka_unit_test(test_select_stress),
        cmocka_unit_test(test_select_fairness),
        cmocka_unit_test(test_chan_send_interface),
        cmocka_unit_test(test_multi_consumer),
        cmocka_unit_test(test_select_duplicate_channel),
        cmocka_unit_test(test_select3),
        cmocka_unit_test(test_select7),
        cmocka_unit_test(test_doubleselect),
        cmocka_unit_test(test_nonblock),
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_goroutines),
        cmocka_unit_test(test_powser),
    };
    return cmocka_run_group_tests_name("chan_go", tests, NULL, NULL);
}
