/*
 * test_stack_compact.c - stack compaction (docs/stacks.md) under every kind of waker.
 *
 * main() sets GORC_STACK_COMPACT=0 before the runtime starts, so the monitor compacts every
 * parked goroutine at each of its rounds, whatever its park age: a goroutine parked in a
 * channel, select, mutex, wait group, condition, semaphore, sleep or read is sealed again and
 * again while other goroutines hand it values, read its wait records and write into its
 * frame. Every value is checked. Where the kernel has no guard markers (qemu)
 * compaction is off and the same tests check the plain runtime. Timing is never checked;
 * time limits are hang guards only.
 */
#include "testutil.h"
#include "runtime/runtime.h"
#include <gorc_net.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static gorc_chan *mkchan(size_t elem, size_t cap)
{
    gorc_chan *c = NULL;
    CHECK_EQ(gorc_chan_new(&c, elem, cap), 0);
    return c;
}

/* Wait (bounded) until the monitor has compacted at least n more goroutines than before. */
static void wait_compactions(uint64_t before, uint64_t n)
{
    if (!gorc__cstk_enabled())
        return;
    gorc__cstk_stats st;
    for (int i = 0; i < 2000; i++) { /* hang guard: 10 s */
        gorc__cstk_get_stats(&st);
        if (st.compacted >= before + n)
            return;
        gorc_sleep(5 * GORC_MILLISECOND);
    }
    CHECK(!"no compaction happened");
}

static uint64_t compacted_now(void)
{
    gorc__cstk_stats st;
    gorc__cstk_get_stats(&st);
    return st.compacted;
}

/* ---- a parked goroutine's frame is compacted and comes back intact ---- */

typedef struct frame_job {
    gorc_chan *in, *out;
} frame_job;

static void frame_keeper(void *arg)
{
    frame_job *j = arg;
    /* A frame full of known bytes, parked across many compactions. */
    unsigned char pattern[3000];
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (unsigned char)(i * 7 + 3);
    long v;
    while (gorc_chan_recv(j->in, &v) == 0) {
        for (size_t i = 0; i < sizeof pattern; i++)
            CHECK_EQ(pattern[i], (unsigned char)(i * 7 + 3));
        v = v * 2 + 1;
        CHECK_EQ(gorc_chan_send(j->out, &v), 0);
    }
    CHECK_EQ(gorc_chan_send(j->out, &v), 0);
}

GO_TEST(test_frame_survives)
{
    frame_job j = {.in = mkchan(sizeof(long), 0), .out = mkchan(sizeof(long), 0)};
    CHECK_EQ(gorc_go(frame_keeper, &j), 0);
    for (long i = 0; i < 20; i++) {
        wait_compactions(compacted_now(), 1); /* the keeper (and main) parked and sealed */
        CHECK_EQ(gorc_chan_send(j.in, &i), 0);
        long r = 0;
        CHECK_EQ(gorc_chan_recv(j.out, &r), 0);
        CHECK_EQ(r, i * 2 + 1);
    }
    CHECK_EQ(gorc_chan_close(j.in), 0);
    long r;
    CHECK_EQ(gorc_chan_recv(j.out, &r), 0);
    if (gorc__cstk_enabled()) {
        gorc__cstk_stats st;
        gorc__cstk_get_stats(&st);
        CHECK(st.restored > 0);
        CHECK(st.restored <= st.compacted);
    }
    gorc_chan_release(j.in);
    gorc_chan_release(j.out);
}

/* ---- other goroutines write into a parked goroutine's frame (user pointers) ---- */

typedef struct slot_job {
    long *slots;
    long i;
    gorc_waitgroup *wg;
} slot_job;

static void slot_writer(void *arg)
{
    slot_job *j = arg;
    gorc_sleep((j->i % 7) * GORC_MILLISECOND); /* let the parent park and be sealed */
    j->slots[j->i] = j->i * j->i;
    CHECK_EQ(gorc_waitgroup_done(j->wg), 0);
}

GO_TEST(test_user_pointers_into_parked_frame)
{
    enum { N = 64 };
    for (int round = 0; round < 10; round++) {
        long slots[N];
        slot_job jobs[N];
        gorc_waitgroup wg = {0};
        memset(slots, 0xff, sizeof slots);
        for (long i = 0; i < N; i++) {
            jobs[i] = (slot_job){.slots = slots, .i = i, .wg = &wg};
            CHECK_EQ(gorc_waitgroup_add(&wg, 1), 0);
            CHECK_EQ(gorc_go(slot_writer, &jobs[i]), 0);
        }
        gorc_waitgroup_wait(&wg); /* parked here, compacted, written into */
        for (long i = 0; i < N; i++)
            CHECK_EQ(slots[i], i * i);
    }
}

/* ---- many producers and consumers on unbuffered and buffered channels ---- */

typedef struct mpmc {
    gorc_chan *c, *done;
    long n, nprod;
    _Atomic long long sum;
    _Atomic long count;
} mpmc;

static void producer(void *arg)
{
    mpmc *x = arg;
    for (long v = 0; v < x->n / x->nprod; v++)
        CHECK_EQ(gorc_chan_send(x->c, &v), 0);
    CHECK_EQ(gorc_chan_send(x->done, NULL), 0);
}

static void consumer(void *arg)
{
    mpmc *x = arg;
    long v;
    long long sum = 0;
    long count = 0;
    while (gorc_chan_recv(x->c, &v) == 0) {
        CHECK(v >= 0 && v < x->n / x->nprod);
        sum += v;
        count++;
    }
    atomic_fetch_add(&x->sum, sum);
    atomic_fetch_add(&x->count, count);
    CHECK_EQ(gorc_chan_send(x->done, NULL), 0);
}

static void run_mpmc(size_t cap)
{
    enum { P = 4, C = 4 };
    mpmc x = {
        .c = mkchan(sizeof(long), cap), .done = mkchan(0, 0), .n = scaled(200000), .nprod = P};
    for (int i = 0; i < C; i++)
        CHECK_EQ(gorc_go(consumer, &x), 0);
    for (int i = 0; i < P; i++)
        CHECK_EQ(gorc_go(producer, &x), 0);
    for (int i = 0; i < P; i++)
        CHECK_EQ(gorc_chan_recv(x.done, NULL), 0);
    CHECK_EQ(gorc_chan_close(x.c), 0);
    for (int i = 0; i < C; i++)
        CHECK_EQ(gorc_chan_recv(x.done, NULL), 0);
    long per = x.n / P;
    CHECK_EQ(atomic_load(&x.count), per * P);
    CHECK_EQ(atomic_load(&x.sum), (long long)P * per * (per - 1) / 2);
    gorc_chan_release(x.c);
    gorc_chan_release(x.done);
}

GO_TEST(test_channels)
{
    run_mpmc(0);
    run_mpmc(3);
}

/* ---- select with several cases, some on the same channel, and timeouts ---- */

typedef struct selx {
    gorc_chan *a, *b, *done;
    long n;
} selx;

static void sel_sender(void *arg)
{
    selx *x = arg;
    for (long i = 0; i < x->n; i++)
        CHECK_EQ(gorc_chan_send((i & 1) ? x->a : x->b, &i), 0);
    CHECK_EQ(gorc_chan_send(x->done, NULL), 0);
}

GO_TEST(test_select)
{
    selx x = {.a = mkchan(sizeof(long), 0),
              .b = mkchan(sizeof(long), 0),
              .done = mkchan(0, 1),
              .n = scaled(20000)};
    CHECK_EQ(gorc_go(sel_sender, &x), 0);
    CHECK_EQ(gorc_go(sel_sender, &x), 0);
    long got = 0, sum = 0, timeouts = 0;
    while (got < 2 * x.n) {
        long va = -1, vb = -1, va2 = -1;
        gorc_case cs[3] = {{.chan = x.a, .dir = GORC_RECV, .elem = &va},
                           {.chan = x.b, .dir = GORC_RECV, .elem = &vb},
                           {.chan = x.a, .dir = GORC_RECV, .elem = &va2}};
        int r = gorc_select_timeout(cs, 3, 20 * GORC_MILLISECOND);
        if (r == GORC_ETIMEDOUT) {
            timeouts++;
            continue;
        }
        CHECK(r >= 0 && r < 3);
        long v = r == 0 ? va : r == 1 ? vb : va2;
        CHECK(v >= 0 && v < x.n);
        CHECK_EQ(v & 1, r != 1);
        sum += v;
        got++;
    }
    CHECK_EQ(sum, (long)x.n * (x.n - 1));
    CHECK_EQ(gorc_chan_recv(x.done, NULL), 0);
    CHECK_EQ(gorc_chan_recv(x.done, NULL), 0);
    (void)timeouts;
    gorc_chan_release(x.a);
    gorc_chan_release(x.b);
    gorc_chan_release(x.done);
}

/* ---- mutex, condition, semaphore and sleep waiters ---- */

typedef struct syncx {
    gorc_mutex mu;
    gorc_waitgroup wg;
    long count, turn, iters;
} syncx;

static void mutex_worker(void *arg)
{
    syncx *x = arg;
    for (long i = 0; i < x->iters; i++) {
        gorc_mutex_lock(&x->mu);
        long c = x->count;
        if ((i & 15) == 0)
            gorc_sleep(GORC_MILLISECOND / 4); /* hold it while others park on it */
        x->count = c + 1;
        gorc_mutex_unlock(&x->mu);
    }
    CHECK_EQ(gorc_waitgroup_done(&x->wg), 0);
}

GO_TEST(test_mutex)
{
    enum { G = 16 };
    static syncx x;
    memset(&x, 0, sizeof x);
    x.iters = scaled(2000);
    for (int i = 0; i < G; i++) {
        CHECK_EQ(gorc_waitgroup_add(&x.wg, 1), 0);
        CHECK_EQ(gorc_go(mutex_worker, &x), 0);
    }
    gorc_waitgroup_wait(&x.wg);
    CHECK_EQ(x.count, G * x.iters);
}

typedef struct condx {
    gorc_mutex mu;
    gorc_cond cond;
    long turn, rounds;
    int who;
    gorc_waitgroup wg;
} condx;

typedef struct condarg {
    condx *x;
    int me;
} condarg;

static void cond_player(void *arg)
{
    condx *x = ((condarg *)arg)->x;
    int me = ((condarg *)arg)->me;
    for (long r = 0; r < x->rounds; r++) {
        gorc_mutex_lock(&x->mu);
        while (x->turn % 3 != me)
            gorc_cond_wait(&x->cond);
        x->turn++;
        gorc_cond_broadcast(&x->cond);
        gorc_mutex_unlock(&x->mu);
    }
    CHECK_EQ(gorc_waitgroup_done(&x->wg), 0);
}

GO_TEST(test_cond)
{
    condx x;
    memset(&x, 0, sizeof x);
    x.cond.l = &x.mu;
    x.rounds = scaled(3000);
    condarg args[3];
    for (int i = 0; i < 3; i++) {
        args[i].x = &x;
        args[i].me = i;
        CHECK_EQ(gorc_waitgroup_add(&x.wg, 1), 0);
        CHECK_EQ(gorc_go(cond_player, &args[i]), 0);
    }
    gorc_waitgroup_wait(&x.wg);
    CHECK_EQ(x.turn, 3 * x.rounds);
}

typedef struct sleepx {
    _Atomic long woke;
    gorc_waitgroup wg;
} sleepx;

static void sleeper(void *arg)
{
    sleepx *x = arg;
    long marker = 0x5eed;
    gorc_sleep(30 * GORC_MILLISECOND); /* sealed while asleep; the timer wakes it */
    CHECK_EQ(marker, 0x5eed);
    atomic_fetch_add(&x->woke, 1);
    CHECK_EQ(gorc_waitgroup_done(&x->wg), 0);
}

GO_TEST(test_sleepers)
{
    sleepx x = {0};
    long n = scaled(2000);
    uint64_t before = compacted_now();
    for (long i = 0; i < n; i++) {
        CHECK_EQ(gorc_waitgroup_add(&x.wg, 1), 0);
        CHECK_EQ(gorc_go(sleeper, &x), 0);
    }
    gorc_waitgroup_wait(&x.wg);
    CHECK_EQ(atomic_load(&x.woke), n);
    (void)before;
}

/* ---- the poller readies a goroutine parked in a read ---- */

typedef struct readx {
    gorc_conn *c;
    gorc_chan *done;
} readx;

static void reader(void *arg)
{
    readx *x = arg;
    char buf[256];
    long total = 0;
    for (;;) {
        long n = gorc_conn_read(x->c, buf, sizeof buf);
        if (n <= 0)
            break;
        for (long i = 0; i < n; i++)
            CHECK_EQ(buf[i], (char)('a' + (total + i) % 26));
        total += n;
    }
    CHECK_EQ(gorc_chan_send(x->done, &total), 0);
}

GO_TEST(test_poller)
{
    gorc_listener *l = NULL;
    CHECK_EQ(gorc_tcp_listen(&l, "127.0.0.1:0", NULL), 0);
    char addr[64];
    CHECK(gorc_listener_addr(l, addr, sizeof addr) > 0);
    gorc_conn *cli = NULL, *srv = NULL;
    CHECK_EQ(gorc_tcp_dial(&cli, addr, 5 * GORC_SECOND), 0);
    CHECK_EQ(gorc_listener_accept(l, &srv), 0);
    readx x = {.c = srv, .done = mkchan(sizeof(long), 1)};
    CHECK_EQ(gorc_go(reader, &x), 0);
    long sent = 0;
    for (int k = 0; k < 30; k++) {
        wait_compactions(compacted_now(), 1); /* the reader parks in the poller, sealed */
        char chunk[100];
        for (int i = 0; i < 100; i++)
            chunk[i] = (char)('a' + (sent + i) % 26);
        CHECK_EQ(gorc_conn_write_all(cli, chunk, sizeof chunk), (long)sizeof chunk);
        sent += 100;
    }
    CHECK_EQ(gorc_conn_close(cli), 0);
    long total = 0;
    CHECK_EQ(gorc_chan_recv(x.done, &total), 0);
    CHECK_EQ(total, sent);
    gorc_conn_close(srv);
    gorc_listener_close(l);
    gorc_chan_release(x.done);
}

/* ---- a broadcast wakes many compacted goroutines at once ---- */

typedef struct herd {
    gorc_chan *gate;
    gorc_waitgroup parked, done;
} herd;

static void herd_member(void *arg)
{
    herd *h = arg;
    long id = (long)gorc_id();
    CHECK_EQ(gorc_waitgroup_done(&h->parked), 0);
    CHECK_EQ(gorc_chan_recv(h->gate, NULL), GORC_ECLOSED);
    CHECK_EQ(id, (long)gorc_id());
    CHECK_EQ(gorc_waitgroup_done(&h->done), 0);
}

GO_TEST(test_broadcast_to_compacted)
{
    herd h = {.gate = mkchan(0, 0)};
    long n = scaled(5000);
    uint64_t before = compacted_now();
    for (long i = 0; i < n; i++) {
        CHECK_EQ(gorc_waitgroup_add(&h.parked, 1), 0);
        CHECK_EQ(gorc_waitgroup_add(&h.done, 1), 0);
        CHECK_EQ(gorc_go(herd_member, &h), 0);
    }
    gorc_waitgroup_wait(&h.parked);
    wait_compactions(before, (uint64_t)n / 2);
    CHECK_EQ(gorc_chan_close(h.gate), 0); /* reads every sealed sudog */
    gorc_waitgroup_wait(&h.done);
    if (gorc__cstk_enabled()) {
        gorc__cstk_stats st;
        gorc__cstk_get_stats(&st);
        fprintf(stderr, "compacted %llu, restored %llu (%llu in the fault handler), %.1f us each\n",
                (unsigned long long)st.compacted, (unsigned long long)st.restored,
                (unsigned long long)st.faults,
                st.restored ? (double)st.restore_ns / 1e3 / (double)st.restored : 0.0);
    }
    gorc_chan_release(h.gate);
}

/* ---- a goroutine that wakes often is never compacted; one that stays parked is ----
 *
 * Checked against the scan epoch, not the clock: a park during which fewer than two scans
 * began must not end compacted, whatever the machine's load made of the nap; a park that
 * spanned three scans must. */

typedef struct ager {
    int64_t nap;
    int naps;
    bool wrongly_compacted; /* compacted in a park that saw fewer than two scans */
    bool long_park;         /* some park saw three scans or more */
    uint32_t ncompact;
    gorc_chan *done;
} ager;

static void napper(void *arg)
{
    ager *a = arg;
    gorc__g *g = gorc__getg();
    for (int i = 0; i < a->naps; i++) {
        uint32_t e0 = atomic_load(&gorc__cstk_epoch), n0 = g->ncompact;
        gorc_sleep(a->nap);
        uint32_t scans = atomic_load(&gorc__cstk_epoch) - e0;
        if (scans < 2 && g->ncompact != n0)
            a->wrongly_compacted = true;
        if (scans >= 3)
            a->long_park = true;
    }
    a->ncompact = g->ncompact;
    CHECK_EQ(gorc_chan_send(a->done, NULL), 0);
}

GO_TEST(test_park_age)
{
    gorc__cstk_set_period(40 * GORC_MILLISECOND);
    ager often = {.nap = 2 * GORC_MILLISECOND, .naps = 250, .done = mkchan(0, 2)};
    ager rarely = {.nap = 400 * GORC_MILLISECOND, .naps = 2, .done = often.done};
    CHECK_EQ(gorc_go(napper, &often), 0);
    CHECK_EQ(gorc_go(napper, &rarely), 0);
    CHECK_EQ(gorc_chan_recv(often.done, NULL), 0);
    CHECK_EQ(gorc_chan_recv(often.done, NULL), 0);
    gorc__cstk_set_period(0);
    CHECK(!often.wrongly_compacted);
    CHECK(!rarely.wrongly_compacted);
    if (gorc__cstk_enabled() && rarely.long_park)
        CHECK(rarely.ncompact >= 1);
    gorc_chan_release(often.done);
}

int main(void)
{
    setenv("GORC_STACK_COMPACT", "0", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_survives),
        cmocka_unit_test(test_user_pointers_into_parked_frame),
        cmocka_unit_test(test_channels),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_mutex),
        cmocka_unit_test(test_cond),
        cmocka_unit_test(test_sleepers),
        cmocka_unit_test(test_poller),
        cmocka_unit_test(test_broadcast_to_compacted),
        cmocka_unit_test(test_park_age),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
