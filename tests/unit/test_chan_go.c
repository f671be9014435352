/*
 * test_chan_go.c - Go's own channel tests, ported (cmocka; bodies run as goroutines).
 *
 * Each test names the Go test it ports: runtime/chan_test.go (TestX) or a program of Go's
 * test/chan directory (test/chan/x.go). Counts are Go's, or smaller where Go's take long, and
 * are divided by GORC_TEST_SCALE under sanitizers, Valgrind and qemu.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nonblock_recv_race),
        cmocka_unit_test(test_pseudo_random_send),
    };
    return cmocka_run_group_tests_name("chan_go", tests, NULL, NULL);
}
