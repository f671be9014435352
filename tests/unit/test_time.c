/*
 * test_time.c - clock, sleep, timers, tickers (cmocka; bodies run as goroutines).
 *
 * Covers: gorc_now is monotonic (also across threads); gorc_sleep sleeps at least its duration
 * (and not absurdly longer), returns at once for ns <= 0, and sleeps the thread off-runtime;
 * many concurrent sleepers all wake (100,000 in release when that is cheap, else 10,000
 * scaled); a timer fires exactly once on its channel; stop before the fire returns true and
 * nothing arrives; stop after the fire returns false and the value stays (Go 1.19); reset
 * (before and after the fire, and after a stop); gorc_after_func runs its function in a new
 * goroutine (and not at all when stopped); gorc_after (also released before it fires); a
 * ticker ticks repeatedly, stops, resets; select on timer channels. Timing bounds are hang
 * guards only: lower bounds are what the API promises, upper bounds are generous.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define MS GORC_MILLISECOND

/* Receive one int64_t from c with a hang guard; returns the value. */
static int64_t recv_time(gorc_chan *c, int64_t guard)
{
    int64_t v = 0;
    gorc_case cs[1] = {{.chan = c, .dir = GORC_RECV, .elem = &v}};
    int r = gorc_select_timeout(cs, 1, guard);
    CHECK_EQ(r, 0);
    CHECK(!cs[0].closed);
    return v;
}

/* ------------------------------------------------------------------------------------------
 * Clock and sleep
 * ---------------------------------------------------------------------------------------- */

static void *now_thread(void *arg)
{
    int64_t *last = arg;
    for (int i = 0; i < 100000; i++) {
        int64_t t = gorc_now();
        CHECK(t >= *last);
        *last = t;
    }
    return NULL;
}

GO_TEST(test_now_monotonic)
{
    int64_t last = gorc_now();
    CHECK(last > 0);
    for (long i = 0; i < scaled(1000000); i++) {
        int64_t t = gorc_now();
        CHECK(t >= last);
        last = t;
        if (i % 10000 == 0)
            gorc_yield(); /* maybe continue on another thread */
    }
    /* A plain thread sees the same clock. */
    pthread_t th;
    int64_t tl = gorc_now();
    CHECK_EQ(pthread_create(&th, NULL, now_thread, &tl), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK(gorc_now() >= tl);
}

GO_TEST(test_sleep)
{
    for (int i = 0; i < 5; i++) {
        int64_t t0 = gorc_now();
        gorc_sleep(10 * MS);
        int64_t el = gorc_now() - t0;
        CHECK(el >= 10 * MS);
        CHECK(el < 2 * GORC_SECOND);
    }
    int64_t t0 = gorc_now();
    gorc_sleep(0);
    gorc_sleep(-1);
    gorc_sleep(INT64_MIN);
    CHECK(gorc_now() - t0 < GORC_SECOND);
    t0 = gorc_now();
    gorc_sleep(1);
    gorc_sleep(GORC_MICROSECOND);
    CHECK(gorc_now() - t0 >= GORC_MICROSECOND + 1);
}

static void test_sleep_off_runtime(void **state)
{
    (void)state;
    int64_t t0 = gorc_now();
    gorc_sleep(5 * MS); /* not a goroutine: sleeps the thread */
    int64_t el = gorc_now() - t0;
    assert_true(el >= 5 * MS);
    assert_true(el < 2 * GORC_SECOND);
}

typedef struct sleepers {
    _Atomic long left;
    _Atomic long early; /* woke before their time: must stay 0 */
    gorc_chan *done;
} sleepers;

static void sleeper(void *arg)
{
    sleepers *s = arg;
    /* Durations 1..20 ms, spread by the goroutine id. */
    int64_t d = (int64_t)(gorc_id() % 20 + 1) * MS;
    int64_t t0 = gorc_now();
    gorc_sleep(d);
    if (gorc_now() - t0 < d)
        atomic_fetch_add(&s->early, 1);
    if (atomic_fetch_sub(&s->left, 1) == 1)
        CHECK_EQ(gorc_chan_send(s->done, NULL), 0);
}

GO_TEST(test_many_sleepers)
{
    wait_count(1);
    /* 100,000 sleepers must be cheap; do them unscaled in release builds only. */
    long n = test_div() == 1 ? 100000 : scaled(10000);
    sleepers s = {.left = n};
    CHECK_EQ(gorc_chan_new(&s.done, 0, 1), 0);
    int64_t t0 = gorc_now();
    for (long i = 0; i < n; i++)
        CHECK_EQ(gorc_go(sleeper, &s), 0);
    CHECK_EQ(gorc_chan_recv(s.done, NULL), 0);
    int64_t el = gorc_now() - t0;
    CHECK_EQ(atomic_load(&s.left), 0);
    CHECK_EQ(atomic_load(&s.early), 0);
    CHECK(el >= 1 * MS);
    if (getenv("GORC_TEST_VERBOSE"))
        fprintf(stderr, "%ld sleepers: %.1f ms\n", n, (double)el / MS);
    wait_count(1);
    gorc_chan_release(s.done);
}

/* ------------------------------------------------------------------------------------------
 * Timers
 * ---------------------------------------------------------------------------------------- */

GO_TEST(test_timer_fires_once)
{
    int64_t t0 = gorc_now();
    gorc_timer *t = NULL;
    CHECK_EQ(gorc_timer_new(&t, 10 * MS), 0);
    CHECK(t != NULL);
    gorc_chan *c = gorc_timer_chan(t);
    CHECK(c != NULL);
    CHECK_EQ(gorc_chan_cap(c), 1);
    int64_t fired = recv_time(c, 10 * GORC_SECOND);
    CHECK(fired >= t0 + 10 * MS);
    CHECK(gorc_now() - t0 >= 10 * MS);
    CHECK(fired <= gorc_now());
    gorc_sleep(30 * MS);
    CHECK_EQ(gorc_chan_tryrecv(c, NULL), GORC_EAGAIN); /* once only */
    CHECK(!gorc_timer_stop(t));                        /* already fired */
    gorc_timer_free(t);

    /* d <= 0 fires at once. */
    CHECK_EQ(gorc_timer_new(&t, 0), 0);
    recv_time(gorc_timer_chan(t), 10 * GORC_SECOND);
    gorc_timer_free(t);
    CHECK_EQ(gorc_timer_new(&t, -5 * GORC_SECOND), 0);
    recv_time(gorc_timer_chan(t), 10 * GORC_SECOND);
    gorc_timer_free(t);

    CHECK_EQ(gorc_timer_new(NULL, MS), GORC_EINVAL);
    CHECK(gorc_timer_chan(NULL) == NULL);
    CHECK(!gorc_timer_stop(NULL));
    CHECK(!gorc_timer_reset(NULL, MS));
    gorc_timer_free(NULL);
}

/* Blocking on the channel of a timer that is already due (time.NewTimer(0), time.After(0)).
 * Regression: the timer used to be run from the parking goroutine's stack while it still held
 * the channel lock, and its send spun on that lock forever. */
GO_TEST(test_recv_on_due_timer)
{
    for (int i = 0; i < 100; i++) {
        gorc_timer *t;
        CHECK_EQ(gorc_timer_new(&t, 0), 0);
        recv_time(gorc_timer_chan(t), 10 * GORC_SECOND);
        gorc_timer_free(t);
        gorc_chan *c;
        CHECK_EQ(gorc_after(&c, 0), 0);
        int64_t v;
        CHECK_EQ(gorc_chan_recv(c, &v), 0);
        gorc_chan_release(c);
    }
}

GO_TEST(test_timer_stop)
{
    /* Stop before the fire: true, nothing arrives. */
    gorc_timer *t;
    CHECK_EQ(gorc_timer_new(&t, 30 * MS), 0);
    CHECK(gorc_timer_stop(t));
    CHECK(!gorc_timer_stop(t)); /* a second stop has nothing to prevent */
    gorc_sleep(60 * MS);
    CHECK_EQ(gorc_chan_tryrecv(gorc_timer_chan(t), NULL), GORC_EAGAIN);
    gorc_timer_free(t);

    /* Stop after the fire: false, and (Go 1.19) the value stays in the channel. */
    CHECK_EQ(gorc_timer_new(&t, MS), 0);
    int64_t deadline = gorc_now() + 10 * GORC_SECOND;
    while (gorc_chan_len(gorc_timer_chan(t)) == 0) {
        CHECK(gorc_now() < deadline);
        gorc_sleep(MS);
    }
    CHECK(!gorc_timer_stop(t));
    int64_t v = 0;
    CHECK_EQ(gorc_chan_tryrecv(gorc_timer_chan(t), &v), 0);
    CHECK(v > 0);
    gorc_timer_free(t);

    /* Free an armed timer (stops it): nothing may fire into freed memory (ASan). */
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(gorc_timer_new(&t, (i % 3) * GORC_MICROSECOND), 0);
        gorc_timer_free(t);
    }
    gorc_sleep(5 * MS);
}

GO_TEST(test_timer_reset)
{
    /* Reset an armed timer to fire sooner. */
    gorc_timer *t;
    CHECK_EQ(gorc_timer_new(&t, 100 * GORC_SECOND), 0);
    int64_t t0 = gorc_now();
    CHECK(gorc_timer_reset(t, 10 * MS)); /* was active */
    int64_t fired = recv_time(gorc_timer_chan(t), 10 * GORC_SECOND);
    CHECK(fired >= t0 + 10 * MS);

    /* Reset after it fired: false, fires again. */
    t0 = gorc_now();
    CHECK(!gorc_timer_reset(t, 5 * MS));
    fired = recv_time(gorc_timer_chan(t), 10 * GORC_SECOND);
    CHECK(fired >= t0 + 5 * MS);

    /* Reset after a stop: false, fires. */
    CHECK(!gorc_timer_reset(t, 100 * GORC_SECOND)); /* had fired */
    CHECK(gorc_timer_stop(t));
    CHECK(!gorc_timer_reset(t, 2 * MS));
    recv_time(gorc_timer_chan(t), 10 * GORC_SECOND);

    /* Reset to later: does not fire at the old time. */
    CHECK(!gorc_timer_reset(t, 5 * MS));
    CHECK(gorc_timer_reset(t, 100 * GORC_SECOND));
    gorc_sleep(30 * MS);
    CHECK_EQ(gorc_chan_len(gorc_timer_chan(t)), 0);

    /* Many resets in a row leave exactly one pending fire. */
    for (int i = 0; i < 1000; i++)
        CHECK(gorc_timer_reset(t, (i % 5 + 1) * MS));
    recv_time(gorc_timer_chan(t), 10 * GORC_SECOND);
    gorc_sleep(20 * MS);
    CHECK_EQ(gorc_chan_len(gorc_timer_chan(t)), 0);
    CHECK(!gorc_timer_stop(t));
    gorc_timer_free(t);
}

typedef struct func_ctx {
    gorc_chan *c;
    uint64_t main_id;
} func_ctx;

static void timer_fn(void *arg)
{
    func_ctx *f = arg;
    uint64_t id = gorc_id();
    CHECK(id != 0);
    CHECK(id != f->main_id);
    int64_t now = gorc_now();
    CHECK_EQ(gorc_chan_send(f->c, &now), 0); /* may block: it is a goroutine */
}

GO_TEST(test_timer_func)
{
    func_ctx f = {.main_id = gorc_id()};
    CHECK_EQ(gorc_chan_new(&f.c, sizeof(int64_t), 0), 0);
    gorc_timer *t;
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_after_func(&t, 10 * MS, timer_fn, &f), 0);
    CHECK(gorc_timer_chan(t) == NULL);
    int64_t when = recv_time(f.c, 10 * GORC_SECOND);
    CHECK(when >= t0 + 10 * MS);
    CHECK(!gorc_timer_stop(t));
    /* Reset re-runs it. */
    CHECK(!gorc_timer_reset(t, MS));
    recv_time(f.c, 10 * GORC_SECOND);
    gorc_timer_free(t);

    /* Stopped before it fires: never runs. */
    CHECK_EQ(gorc_after_func(&t, 20 * MS, timer_fn, &f), 0);
    CHECK(gorc_timer_stop(t));
    gorc_case cs[1] = {{.chan = f.c, .dir = GORC_RECV}};
    CHECK_EQ(gorc_select_timeout(cs, 1, 50 * MS), GORC_ETIMEDOUT);
    gorc_timer_free(t);

    /* Many at once, all run. */
    int n = (int)scaled(1000);
    gorc_timer **ts = calloc((size_t)n, sizeof *ts);
    CHECK(ts != NULL);
    for (int i = 0; i < n; i++)
        CHECK_EQ(gorc_after_func(&ts[i], (i % 10) * MS, timer_fn, &f), 0);
    for (int i = 0; i < n; i++)
        recv_time(f.c, 10 * GORC_SECOND);
    for (int i = 0; i < n; i++)
        gorc_timer_free(ts[i]);
    free(ts);
    CHECK_EQ(gorc_after_func(NULL, MS, timer_fn, &f), GORC_EINVAL);
    CHECK_EQ(gorc_after_func(&t, MS, NULL, &f), GORC_EINVAL);
    wait_count(1);
    gorc_chan_release(f.c);
}

GO_TEST(test_after)
{
    int64_t t0 = gorc_now();
    gorc_chan *c = NULL;
    CHECK_EQ(gorc_after(&c, 10 * MS), 0);
    CHECK(c != NULL);
    int64_t fired = recv_time(c, 10 * GORC_SECOND);
    CHECK(fired >= t0 + 10 * MS);
    gorc_sleep(20 * MS);
    CHECK_EQ(gorc_chan_tryrecv(c, NULL), GORC_EAGAIN);
    gorc_chan_release(c);

    /* The caller drops its reference before the fire: the timer keeps the channel alive. */
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(gorc_after(&c, (i % 4) * MS), 0);
        gorc_chan_release(c);
    }
    /* time.After in a select loop, as a timeout. */
    gorc_chan *never;
    CHECK_EQ(gorc_chan_new(&never, 0, 0), 0);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(gorc_after(&c, MS), 0);
        gorc_case cs[2] = {{.chan = never, .dir = GORC_RECV}, {.chan = c, .dir = GORC_RECV}};
        CHECK_EQ(gorc_select(cs, 2), 1);
        gorc_chan_release(c);
    }
    gorc_chan_release(never);
    CHECK_EQ(gorc_after(NULL, MS), GORC_EINVAL);
    gorc_sleep(10 * MS);
}

/* ------------------------------------------------------------------------------------------
 * Tickers
 * ---------------------------------------------------------------------------------------- */

GO_TEST(test_ticker)
{
    gorc_ticker *tk = NULL;
    int64_t period = 2 * MS;
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_ticker_new(&tk, period), 0);
    gorc_chan *c = gorc_ticker_chan(tk);
    CHECK(c != NULL);
    int64_t last = 0;
    for (int k = 1; k <= 5; k++) {
        int64_t v = recv_time(c, 10 * GORC_SECOND);
        CHECK(v > last);
        CHECK(v >= t0 + k * period); /* the k-th received tick is at least the k-th due one */
        last = v;
    }
    /* A slow receiver: ticks are dropped, not queued (the channel holds one). */
    gorc_sleep(20 * period);
    CHECK(gorc_chan_len(c) <= 1);

    /* Stop: after at most one tick already in flight, nothing more arrives. */
    gorc_ticker_stop(tk);
    gorc_sleep(10 * MS);
    gorc_chan_tryrecv(c, NULL);
    gorc_sleep(10 * MS);
    CHECK_EQ(gorc_chan_tryrecv(c, NULL), GORC_EAGAIN);
    gorc_ticker_stop(tk); /* twice is fine */

    /* Reset after stop restarts it with the new period. */
    t0 = gorc_now();
    CHECK_EQ(gorc_ticker_reset(tk, 3 * MS), 0);
    last = 0;
    for (int k = 1; k <= 3; k++) {
        int64_t v = recv_time(c, 10 * GORC_SECOND);
        CHECK(v >= t0 + k * 3 * MS);
        CHECK(v > last);
        last = v;
    }
    /* Reset while running, to a long period: no tick within the old period's reach. */
    CHECK_EQ(gorc_ticker_reset(tk, 100 * GORC_SECOND), 0);
    gorc_chan_tryrecv(c, NULL);
    gorc_sleep(20 * MS);
    CHECK_EQ(gorc_chan_tryrecv(c, NULL), GORC_EAGAIN);

    CHECK_EQ(gorc_ticker_reset(tk, 0), GORC_EINVAL);
    CHECK_EQ(gorc_ticker_reset(tk, -1), GORC_EINVAL);
    CHECK_EQ(gorc_ticker_reset(NULL, MS), GORC_EINVAL);
    gorc_ticker_free(tk);

    CHECK_EQ(gorc_ticker_new(&tk, 0), GORC_EINVAL);
    CHECK_EQ(gorc_ticker_new(&tk, -MS), GORC_EINVAL);
    CHECK_EQ(gorc_ticker_new(NULL, MS), GORC_EINVAL);
    CHECK(gorc_ticker_chan(NULL) == NULL);
    gorc_ticker_stop(NULL);
    gorc_ticker_free(NULL);

    /* Free a fast ticker while it runs. */
    for (int i = 0; i < 50; i++) {
        CHECK_EQ(gorc_ticker_new(&tk, 10 * GORC_MICROSECOND), 0);
        gorc_sleep(100 * GORC_MICROSECOND);
        gorc_ticker_free(tk);
    }
}

/* ------------------------------------------------------------------------------------------
 * Select with timer channels
 * ---------------------------------------------------------------------------------------- */

static void send_after(void *arg)
{
    gorc_sleep(2 * MS);
    int v = 17;
    CHECK_EQ(gorc_chan_send(arg, &v), 0);
}

GO_TEST(test_select_with_timer)
{
    gorc_chan *data;
    CHECK_EQ(gorc_chan_new(&data, sizeof(int), 0), 0);
    gorc_timer *t;

    /* Nothing else ready: the timer case wins, after its duration. */
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_timer_new(&t, 10 * MS), 0);
    int x = 0;
    int64_t when = 0;
    gorc_case cs[2] = {{.chan = data, .dir = GORC_RECV, .elem = &x},
                       {.chan = gorc_timer_chan(t), .dir = GORC_RECV, .elem = &when}};
    CHECK_EQ(gorc_select(cs, 2), 1);
    CHECK(when >= t0 + 10 * MS);
    CHECK(gorc_now() - t0 >= 10 * MS);

    /* Data first: the timer is then stopped before it fires. */
    CHECK(!gorc_timer_reset(t, 100 * GORC_SECOND));
    CHECK_EQ(gorc_go(send_after, data), 0);
    CHECK_EQ(gorc_select(cs, 2), 0);
    CHECK_EQ(x, 17);
    CHECK(gorc_timer_stop(t));
    gorc_timer_free(t);

    /* A ticker and a timer in one select: ticks first, then the timer ends the loop. */
    gorc_ticker *tk;
    CHECK_EQ(gorc_ticker_new(&tk, MS), 0);
    CHECK_EQ(gorc_timer_new(&t, 30 * MS), 0);
    gorc_case tc[3] = {{.chan = gorc_ticker_chan(tk), .dir = GORC_RECV},
                       {.chan = gorc_timer_chan(t), .dir = GORC_RECV},
                       {.chan = data, .dir = GORC_RECV}};
    int ticks = 0;
    for (;;) {
        int r = gorc_select_timeout(tc, 3, 10 * GORC_SECOND);
        CHECK(r == 0 || r == 1);
        if (r == 1)
            break;
        ticks++;
    }
    CHECK(ticks >= 1);
    gorc_ticker_free(tk);
    gorc_timer_free(t);
    wait_count(1);
    gorc_chan_release(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_now_monotonic),
        cmocka_unit_test(test_sleep),
        cmocka_unit_test(test_sleep_off_runtime),
        cmocka_unit_test(test_many_sleepers),
        cmocka_unit_test(test_timer_fires_once),
        cmocka_unit_test(test_recv_on_due_timer),
        cmocka_unit_test(test_timer_stop),
        cmocka_unit_test(test_timer_reset),
        cmocka_unit_test(test_timer_func),
        cmocka_unit_test(test_after),
        cmocka_unit_test(test_ticker),
        cmocka_unit_test(test_select_with_timer),
    };
    return cmocka_run_group_tests_name("time", tests, NULL, NULL);
}
