/*
 * test_sim.c - deterministic simulation runs (cmocka; run bodies are goroutines of a run).
 *
 * Covers: the same seed gives the same schedule (trace files byte for byte), the same output
 * and the same select choices, and different seeds give different ones; the run waits for
 * every goroutine it started; virtual time: a 30-second select timeout, sleeps, a ticker, a
 * timer and a context deadline take no real time and read exact virtual durations; timers fire
 * in deadline order, the runtime's own timers too (armed in and out of order, stopped, re-armed,
 * and stopped timers do not grow the P's lane); gorc_sim_wait returns once the others are durably
 * blocked, without moving the clock, and refuses a second waiter and callers outside a run; a
 * goroutine parked on a descriptor opened before the run is outside it and not durably blocked (the
 * clock stands still until a thread outside the run writes to it), while one opened inside the run
 * is the run's, and a foreign thread's write to it is still seen (the run waits a moment of real
 * time before calling it a deadlock); gorc_blocking runs inline; a run started from a goroutine;
 * one run at a time (-EBUSY); bad options (-EINVAL); faults at exact calls (spawn, channel
 * creation) and at a rate; perturbation finds a lost update that a plain schedule never shows, and
 * replays it. Sockets made inside a run are the run's: a TCP echo over loopback with a read
 * deadline and a client that pauses 10 s between two writes runs on virtual time, the deadline
 * fires exactly, and two runs of one seed write the same trace. The deadlock report of a run is
 * checked from outside in test_crash.c.
 */
#include "testutil.h"
#include "runtime/runtime.h"

#include <gorc_context.h>
#include <gorc_net.h>
#include <gorc_sim.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MS GORC_MILLISECOND
#define S  GORC_SECOND

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * S + ts.tv_nsec;
}

/* ------------------------------------------------------------------------------------------
 * Determinism
 * ---------------------------------------------------------------------------------------- */

/* Workers append to a shared log in whatever order the schedule runs them; each yields or
 * passes through a channel between appends, and main selects among ready channels. */
typedef struct mix {
    char log[4096];
    size_t n;
    gorc_mutex mu;
    gorc_chan *c;
    gorc_waitgroup wg;
    int picks[2];
    char sel[64];
} mix;

static mix *mx;

static void mix_note(char ch)
{
    gorc_mutex_lock(&mx->mu);
    if (mx->n < sizeof mx->log - 1)
        mx->log[mx->n++] = ch;
    gorc_mutex_unlock(&mx->mu);
}

static void mix_worker(void *arg)
{
    char ch = (char)(uintptr_t)arg;
    for (int i = 0; i < 8; i++) {
        mix_note(ch);
        if (i % 2)
            gorc_yield();
        else {
            int v = i;
            CHECK_EQ(gorc_chan_send(mx->c, &v), 0);
        }
    }
    gorc_waitgroup_done(&mx->wg);
}

static void mix_drain(void *arg)
{
    (void)arg;
    int v;
    while (gorc_chan_recv(mx->c, &v) == 0)
        mix_note('.');
}

static void mix_main(void *arg)
{
    (void)arg;
    CHECK(gorc_sim_active());
    CHECK_EQ(gorc_chan_new(&mx->c, sizeof(int), 2), 0);
    gorc_waitgroup_add(&mx->wg, 6);
    for (int i = 0; i < 6; i++)
        CHECK_EQ(gorc_go(mix_worker, (void *)(uintptr_t)('a' + i)), 0);
    CHECK_EQ(gorc_go(mix_drain, NULL), 0);
    gorc_waitgroup_wait(&mx->wg);
    gorc_chan_close(mx->c);
    /* Two channels always ready: which one select takes comes from the seed. */
    gorc_chan *r[2];
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(gorc_chan_new(&r[i], sizeof(int), 1), 0);
    }
    for (int k = 0; k < 60; k++) {
        int one = 1, got;
        for (int i = 0; i < 2; i++)
            (void)gorc_chan_trysend(r[i], &one);
        gorc_case cs[2] = {{.chan = r[0], .dir = GORC_RECV, .elem = &got},
                           {.chan = r[1], .dir = GORC_RECV, .elem = &got}};
        int w = gorc_select(cs, 2);
        CHECK(w == 0 || w == 1);
        mx->picks[w]++;
        mx->sel[k] = (char)('0' + w);
    }
    for (int i = 0; i < 2; i++)
        gorc_chan_release(r[i]);
}

static void run_mix(uint64_t seed, mix *out, const char *trace)
{
    memset(out, 0, sizeof *out);
    mx = out;
    gorc_sim_opts o = {.trace = trace};
    assert_int_equal(gorc_sim_run(seed, mix_main, NULL, &o), 0);
    gorc_chan_release(out->c);
    mx = NULL;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char big[2][1 << 20];
    static int which;
    char *b = big[which++ % 2];
    size_t n = fread(b, 1, (1 << 20) - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

static void test_same_seed_same_run(void **state)
{
    (void)state;
    static mix a, b;
    char ta[] = "/tmp/gorc-sim-trace-XXXXXX", tb[] = "/tmp/gorc-sim-trace-XXXXXX";
    int fa = mkstemp(ta), fb = mkstemp(tb);
    assert_true(fa >= 0 && fb >= 0);
    close(fa);
    close(fb);
    run_mix(42, &a, ta);
    run_mix(42, &b, tb);
    assert_string_equal(a.log, b.log);
    assert_string_equal(a.sel, b.sel);
    const char *x = slurp(ta), *y = slurp(tb);
    assert_true(strlen(x) > 100);
    assert_string_equal(x, y);
    /* Both select cases are taken, in a seed-given mix. */
    assert_true(a.picks[0] > 5 && a.picks[1] > 5);
    unlink(ta);
    unlink(tb);
}

static void test_seeds_differ(void **state)
{
    (void)state;
    static mix a, b;
    run_mix(1, &a, NULL);
    int differ = 0;
    for (uint64_t seed = 2; seed < 10; seed++) {
        run_mix(seed, &b, NULL);
        differ += strcmp(a.log, b.log) != 0;
        assert_int_equal(strlen(b.log), 6 * 8 + 6 * 4); /* every note, in some order */
    }
    assert_true(differ >= 7);
}

/* The run returns only when every goroutine it started has finished. */
static _Atomic int late_done;

static void late(void *arg)
{
    (void)arg;
    gorc_sleep(5 * S);
    late_done = 1;
}

static void spawn_late(void *arg)
{
    (void)arg;
    CHECK_EQ(gorc_go(late, NULL), 0);
    CHECK(gorc_count() >= 2);
}

static void test_waits_for_all(void **state)
{
    (void)state;
    late_done = 0;
    assert_int_equal(gorc_sim_run(3, spawn_late, NULL, NULL), 0);
    assert_int_equal(late_done, 1);
}

/* ------------------------------------------------------------------------------------------
 * Virtual time
 * ---------------------------------------------------------------------------------------- */

static void long_timeout(void *arg)
{
    int64_t *elapsed = arg;
    gorc_chan *c;
    CHECK_EQ(gorc_chan_new(&c, sizeof(int), 0), 0);
    int v;
    gorc_case cs[1] = {{.chan = c, .dir = GORC_RECV, .elem = &v}};
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_select_timeout(cs, 1, 30 * S), GORC_ETIMEDOUT);
    elapsed[0] = gorc_now() - t0;
    /* A sleep, a timer and a context deadline, all virtual. */
    t0 = gorc_now();
    gorc_sleep(2 * S);
    elapsed[1] = gorc_now() - t0;
    gorc_timer *t;
    CHECK_EQ(gorc_timer_new(&t, 90 * S), 0);
    int64_t fired;
    t0 = gorc_now();
    CHECK_EQ(gorc_chan_recv(gorc_timer_chan(t), &fired), 0);
    elapsed[2] = gorc_now() - t0;
    gorc_timer_free(t);
    gorc_ctx *ctx;
    CHECK_EQ(gorc_ctx_with_timeout(&ctx, gorc_ctx_background(), 10 * 60 * S, 0), 0);
    t0 = gorc_now();
    CHECK_EQ(gorc_chan_recv(gorc_ctx_done(ctx), NULL), GORC_ECLOSED);
    CHECK_EQ(gorc_ctx_err(ctx), GORC_ETIMEDOUT);
    elapsed[3] = gorc_now() - t0;
    gorc_ctx_release(ctx);
    gorc_chan_release(c);
}

static void test_virtual_timeouts(void **state)
{
    (void)state;
    int64_t el[4] = {0};
    int64_t t0 = real_ns();
    assert_int_equal(gorc_sim_run(7, long_timeout, el, NULL), 0);
    int64_t real = real_ns() - t0;
    assert_int_equal(el[0], 30 * S);
    assert_int_equal(el[1], 2 * S);
    assert_int_equal(el[2], 90 * S);
    assert_int_equal(el[3], 10 * 60 * S);
    assert_true(real < 5 * S); /* hang guard: it takes milliseconds */
}

/* The runtime's timers, armed in and out of deadline order (the P's lane and its heap), some
 * stopped, some stopped and re-armed: the rest fire once each, in deadline order, never
 * early. */
enum { NLANE = 3000 };

typedef struct fired {
    int idx[NLANE];
    int64_t when[NLANE], at[NLANE];
    int n;
} fired;

static fired *fr;
static gorc__timer lanet[NLANE];

static void note_fire(gorc__timer *t, int64_t now)
{
    fr->idx[fr->n] = (int)(t - lanet);
    fr->when[fr->n] = t->when;
    fr->at[fr->n] = now;
    fr->n++;
}

static void lane_and_heap(void *arg)
{
    bool *want = arg;
    int64_t base = gorc_now() + S;
    for (int i = 0; i < NLANE; i++) {
        lanet[i].f = note_fire;
        /* Every third one out of order: it goes to the heap, the others to the lane. */
        int64_t when =
            i % 3 == 2 ? base + (int64_t)((i * 7919) % NLANE) * MS : base + (int64_t)i * MS;
        gorc__timer_add(&lanet[i], when);
        want[i] = true;
    }
    for (int i = 0; i < NLANE; i += 4) { /* from the lane's middle and head, and the heap */
        CHECK(gorc__timer_del(&lanet[i]));
        CHECK(!gorc__timer_del(&lanet[i]));
        want[i] = false;
    }
    for (int i = 0; i < NLANE; i += 8) { /* re-armed, earlier than the lane's tail */
        gorc__timer_add(&lanet[i], base + (int64_t)(NLANE - i) * MS);
        want[i] = true;
    }
    gorc_sleep(2 * S + NLANE * MS);
    /* Many timers armed and stopped again behind a live one at the lane's head: the deleted
     * entries must not grow the lane. */
    gorc__p *p = gorc__getm()->p;
    static gorc__timer keeper = {.f = note_fire};
    gorc__timer_add(&keeper, gorc_now() + S / 2);
    uint32_t cap = p->lanecap;
    for (int r = 0; r < 100; r++)
        for (int i = 0; i < NLANE; i++) {
            gorc__timer_add(&lanet[i], gorc_now() + S + (int64_t)(r * NLANE + i));
            CHECK(gorc__timer_del(&lanet[i]));
        }
    CHECK(p->lanecap <= 2 * (cap > 2 * NLANE ? cap : 2 * NLANE));
    CHECK(gorc__timer_del(&keeper));
}

static void test_timer_lane_and_heap(void **state)
{
    (void)state;
    static fired f;
    static bool want[NLANE];
    memset(&f, 0, sizeof f);
    fr = &f;
    assert_int_equal(gorc_sim_run(13, lane_and_heap, want, NULL), 0);
    static int count[NLANE];
    memset(count, 0, sizeof count);
    for (int k = 0; k < f.n; k++) {
        count[f.idx[k]]++;
        assert_true(f.at[k] >= f.when[k]); /* never early */
        if (k > 0)
            assert_true(f.when[k] >= f.when[k - 1]); /* in deadline order */
    }
    for (int i = 0; i < NLANE; i++)
        assert_int_equal(count[i], want[i] ? 1 : 0);
}

typedef struct order {
    int seq[8];
    int n;
    int64_t at[8];
} order;

static order *ord;

static void sleeper(void *arg)
{
    int i = (int)(uintptr_t)arg;
    int64_t t0 = gorc_now();
    gorc_sleep((int64_t)(8 - i) * S); /* spawned 0..7, wake 7..0 */
    ord->at[i] = gorc_now() - t0;
    ord->seq[ord->n++] = i;
}

static void ticks_and_sleeps(void *arg)
{
    (void)arg;
    for (int i = 0; i < 8; i++)
        CHECK_EQ(gorc_go(sleeper, (void *)(uintptr_t)i), 0);
    gorc_ticker *tk;
    CHECK_EQ(gorc_ticker_new(&tk, 250 * MS), 0);
    int64_t t0 = gorc_now(), v;
    for (int i = 0; i < 40; i++)
        CHECK_EQ(gorc_chan_recv(gorc_ticker_chan(tk), &v), 0);
    CHECK_EQ(gorc_now() - t0, 10 * S);
    gorc_ticker_free(tk);
}

static void test_timer_order(void **state)
{
    (void)state;
    static order o;
    memset(&o, 0, sizeof o);
    ord = &o;
    assert_int_equal(gorc_sim_run(11, ticks_and_sleeps, NULL, NULL), 0);
    assert_int_equal(o.n, 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(o.seq[i], 7 - i);
        assert_int_equal(o.at[i], (int64_t)(8 - i) * S);
    }
}

/* gorc_sim_wait: returns when the other goroutines are durably blocked; no time passes. */
typedef struct waitst {
    gorc_chan *c;
    int stage;
    int second_rc;
} waitst;

static void wait_helper(void *arg)
{
    waitst *w = arg;
    w->stage = 1;
    int v;
    CHECK_EQ(gorc_chan_recv(w->c, &v), 0); /* durably blocked */
    w->stage = 2;
    gorc_sleep(S);
    w->stage = 3;
}

static void second_waiter(void *arg)
{
    waitst *w = arg;
    w->second_rc = gorc_sim_wait();
}

static void wait_main(void *arg)
{
    waitst *w = arg;
    CHECK_EQ(gorc_chan_new(&w->c, sizeof(int), 0), 0);
    CHECK_EQ(gorc_go(wait_helper, w), 0);
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_sim_wait(), 0);
    CHECK_EQ(w->stage, 1);
    CHECK_EQ(gorc_now(), t0);
    int v = 1;
    CHECK_EQ(gorc_chan_send(w->c, &v), 0);
    CHECK_EQ(gorc_sim_wait(), 0); /* helper is asleep now: a sleep is durable */
    CHECK_EQ(w->stage, 2);
    CHECK_EQ(gorc_now(), t0);
    /* A second waiter while we wait is refused. */
    CHECK_EQ(gorc_go(second_waiter, w), 0);
    CHECK_EQ(gorc_sim_wait(), 0);
    gorc_sleep(2 * S);
    CHECK_EQ(w->stage, 3);
    gorc_chan_release(w->c);
}

static void test_wait(void **state)
{
    (void)state;
    waitst w = {0};
    w.second_rc = 99;
    assert_int_equal(gorc_sim_wait(), -EINVAL); /* outside a run */
    assert_int_equal(gorc_sim_run(5, wait_main, &w, NULL), 0);
    /* The second waiter either ran while main waited (-EBUSY) or after (0); under seed 5 it
     * must be one of them, and both runs of the seed agree. */
    int first = w.second_rc;
    assert_true(first == 0 || first == -EBUSY);
    waitst w2 = {0};
    assert_int_equal(gorc_sim_run(5, wait_main, &w2, NULL), 0);
    assert_int_equal(w2.second_rc, first);
}

static void busy_waiters(void *arg)
{
    waitst *w = arg;
    CHECK_EQ(gorc_go(second_waiter, w), 0);
    gorc_yield();
    w->stage = gorc_sim_wait(); /* main's own result */
}

static void test_wait_busy(void **state)
{
    (void)state;
    /* Of two simultaneous waiters exactly one gets -EBUSY, whichever parks first. */
    int main_busy = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        waitst w = {.second_rc = 99, .stage = 99};
        assert_int_equal(gorc_sim_run(seed, busy_waiters, &w, NULL), 0);
        assert_true((w.stage == -EBUSY) != (w.second_rc == -EBUSY));
        assert_true(w.stage == 0 || w.second_rc == 0);
        main_busy += w.stage == -EBUSY;
    }
    assert_true(main_busy > 0 && main_busy < 20); /* both orders happen */
}

/* A goroutine on a real descriptor is not durably blocked: the clock does not move until the
 * data arrives from a thread outside the run. */
typedef struct ext {
    int fds[2];
    gorc_conn *c; /* opened before the run: outside it */
    int64_t read_at, sleep_done_at;
    char got[8];
} ext;

static void *outside_writer(void *arg)
{
    ext *e = arg;
    usleep(50 * 1000);
    (void)!write(e->fds[1], "hello", 5);
    return NULL;
}

static void ext_sleeper(void *arg)
{
    ext *e = arg;
    gorc_sleep(S);
    e->sleep_done_at = gorc_now();
}

static void ext_main(void *arg)
{
    ext *e = arg;
    gorc_conn *c = e->c;
    CHECK_EQ(gorc_go(ext_sleeper, e), 0);
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_conn_read(c, e->got, 5), 5);
    e->read_at = gorc_now() - t0;
    gorc_conn_close(c);
    CHECK(e->sleep_done_at == 0); /* the sleeper's second had not passed */
}

static void test_outside_io_not_durable(void **state)
{
    (void)state;
    ext e = {0};
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, e.fds), 0);
    assert_int_equal(gorc_conn_from_fd(&e.c, e.fds[0]), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, outside_writer, &e), 0);
    int64_t t0 = real_ns();
    assert_int_equal(gorc_sim_run(9, ext_main, &e, NULL), 0);
    pthread_join(t, NULL);
    assert_true(real_ns() - t0 >= 40 * MS); /* it really waited for the writer */
    assert_int_equal(e.read_at, 0);         /* while virtual time stood still */
    assert_memory_equal(e.got, "hello", 5);
    assert_true(e.sleep_done_at != 0);
    close(e.fds[1]);
}

/* Opened inside the run: the run's. Nothing else happens, so when the reader blocks the run
 * looks for a moment of real time, and sees the foreign thread's write. */
static void inside_main(void *arg)
{
    ext *e = arg;
    gorc_conn *c;
    CHECK_EQ(gorc_conn_from_fd(&c, e->fds[0]), 0);
    CHECK_EQ(gorc_conn_read(c, e->got, 5), 5);
    gorc_conn_close(c);
}

static void test_inside_fd_foreign_writer(void **state)
{
    (void)state;
    ext e = {0};
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, e.fds), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, outside_writer, &e), 0);
    assert_int_equal(gorc_sim_run(9, inside_main, &e, NULL), 0);
    pthread_join(t, NULL);
    assert_memory_equal(e.got, "hello", 5);
    close(e.fds[1]);
}

static void *blocking_call(void *arg)
{
    usleep(20 * 1000);
    return arg;
}

static void blocking_main(void *arg)
{
    int64_t t0 = gorc_now();
    CHECK(gorc_blocking(blocking_call, arg) == arg);
    CHECK_EQ(gorc_now(), t0); /* the clock stood still while the thread was blocked */
}

static void test_blocking_inline(void **state)
{
    (void)state;
    int x;
    assert_int_equal(gorc_sim_run(1, blocking_main, &x, NULL), 0);
}

/* Sockets made in the run: their waits are durable, so virtual time moves past a client's
 * pause and the server's read deadline fires at its exact virtual time. */
typedef struct echo {
    gorc_listener *l;
    int64_t timed_out_after;
    char got[16];
    size_t n;
} echo;

static void echo_client(void *arg)
{
    echo *e = arg;
    char addr[64];
    CHECK(gorc_listener_addr(e->l, addr, sizeof addr) > 0);
    gorc_conn *c;
    CHECK_EQ(gorc_tcp_dial(&c, addr, 5 * S), 0);
    CHECK_EQ(gorc_conn_write_all(c, "ab", 2), 2);
    gorc_sleep(10 * S);
    CHECK_EQ(gorc_conn_write_all(c, "cd", 2), 2);
    char b[4];
    CHECK_EQ(gorc_conn_read_full(c, b, 4), 4); /* the echo */
    CHECK(memcmp(b, "abcd", 4) == 0);
    gorc_conn_close(c);
}

static void echo_main(void *arg)
{
    echo *e = arg;
    CHECK_EQ(gorc_tcp_listen(&e->l, "127.0.0.1:0", NULL), 0);
    CHECK_EQ(gorc_go(echo_client, e), 0);
    gorc_conn *c;
    CHECK_EQ(gorc_listener_accept(e->l, &c), 0);
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_conn_set_read_deadline(c, t0 + 5 * S), 0);
    ssize_t r = gorc_conn_read_full(c, e->got, 2);
    CHECK_EQ(r, 2);
    r = gorc_conn_read(c, e->got + 2, 2);
    CHECK_EQ(r, -ETIMEDOUT);
    e->timed_out_after = gorc_now() - t0;
    CHECK_EQ(gorc_conn_set_read_deadline(c, 0), 0);
    CHECK_EQ(gorc_conn_read_full(c, e->got + 2, 2), 2);
    CHECK_EQ(gorc_conn_write_all(c, e->got, 4), 4);
    char one;
    CHECK_EQ(gorc_conn_read(c, &one, 1), 0); /* the client closed */
    gorc_conn_close(c);
    gorc_listener_close(e->l);
}

static void test_run_sockets(void **state)
{
    (void)state;
    char ta[] = "/tmp/gorc-sim-trace-XXXXXX", tb[] = "/tmp/gorc-sim-trace-XXXXXX";
    int fa = mkstemp(ta), fb = mkstemp(tb);
    assert_true(fa >= 0 && fb >= 0);
    close(fa);
    close(fb);
    int64_t t0 = real_ns();
    echo e = {0};
    gorc_sim_opts o = {.trace = ta};
    assert_int_equal(gorc_sim_run(21, echo_main, &e, &o), 0);
    assert_true(real_ns() - t0 < 5 * S); /* 10 virtual seconds in milliseconds */
    assert_int_equal(e.timed_out_after, 5 * S);
    assert_memory_equal(e.got, "abcd", 4);
    echo e2 = {0};
    o.trace = tb;
    assert_int_equal(gorc_sim_run(21, echo_main, &e2, &o), 0);
    assert_string_equal(slurp(ta), slurp(tb));
    unlink(ta);
    unlink(tb);
}

/* ------------------------------------------------------------------------------------------
 * Calling conventions and errors
 * ---------------------------------------------------------------------------------------- */

static void nested(void *arg)
{
    int *rc = arg;
    *rc = gorc_sim_run(1, nested, NULL, NULL);
}

static void from_goroutine(void *arg)
{
    int *rcs = arg;
    int64_t t0 = gorc_now();
    rcs[0] = gorc_sim_run(2, nested, &rcs[1], NULL);
    CHECK(gorc_now() - t0 < 60 * S); /* real time out here */
    CHECK(!gorc_sim_active());
}

static void test_from_goroutine(void **state)
{
    (void)state;
    int rcs[2] = {99, 99};
    assert_int_equal(gorc_main(from_goroutine, rcs), 0);
    assert_int_equal(rcs[0], 0);
    assert_int_equal(rcs[1], -EBUSY);
}

static void noop(void *arg)
{
    (void)arg;
}

static void test_bad_args(void **state)
{
    (void)state;
    assert_int_equal(gorc_sim_run(1, NULL, NULL, NULL), -EINVAL);
    gorc_sim_opts o = {.perturb = 1.5};
    assert_int_equal(gorc_sim_run(1, noop, NULL, &o), -EINVAL);
    o = (gorc_sim_opts){.fault_rate = -0.1};
    assert_int_equal(gorc_sim_run(1, noop, NULL, &o), -EINVAL);
    o = (gorc_sim_opts){.trace = "/nonexistent-dir/trace"};
    assert_int_equal(gorc_sim_run(1, noop, NULL, &o), -ENOENT);
    assert_false(gorc_sim_active());
    assert_int_equal(gorc_sim_seed(), 0);
}

/* ------------------------------------------------------------------------------------------
 * Faults
 * ---------------------------------------------------------------------------------------- */

typedef struct faultst {
    int spawn_rc[5];
    int chan_rc[5];
    uint64_t seed;
} faultst;

static void fault_main(void *arg)
{
    faultst *f = arg;
    f->seed = gorc_sim_seed();
    for (int i = 0; i < 5; i++) {
        f->spawn_rc[i] = gorc_go(noop, NULL);
        gorc_chan *c = NULL;
        f->chan_rc[i] = gorc_chan_new(&c, 1, 0);
        CHECK((f->chan_rc[i] == 0) == (c != NULL));
        if (c)
            gorc_chan_release(c);
    }
}

static void test_faults_exact(void **state)
{
    (void)state;
    faultst f = {0};
    gorc_sim_opts o = {.faults = 1u << GORC_SIM_FAULT_SPAWN | 1u << GORC_SIM_FAULT_CHAN,
                       .fault_at = 3};
    assert_int_equal(gorc_sim_run(77, fault_main, &f, &o), 0);
    assert_int_equal(f.seed, 77);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(f.spawn_rc[i], i == 2 ? -ENOMEM : 0);
        assert_int_equal(f.chan_rc[i], i == 2 ? -ENOMEM : 0);
    }
    /* Only the kinds in the mask fail. */
    o = (gorc_sim_opts){.faults = 1u << GORC_SIM_FAULT_CHAN, .fault_rate = 1};
    assert_int_equal(gorc_sim_run(77, fault_main, &f, &o), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(f.spawn_rc[i], 0);
        assert_int_equal(f.chan_rc[i], -ENOMEM);
    }
}

static void test_faults_rate(void **state)
{
    (void)state;
    faultst f = {0}, g = {0};
    gorc_sim_opts o = {.faults = 1u << GORC_SIM_FAULT_SPAWN, .fault_rate = 0.5};
    int failed = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        assert_int_equal(gorc_sim_run(seed, fault_main, &f, &o), 0);
        assert_int_equal(gorc_sim_run(seed, fault_main, &g, &o), 0);
        assert_memory_equal(f.spawn_rc, g.spawn_rc, sizeof f.spawn_rc); /* replays */
        for (int i = 0; i < 5; i++)
            failed += f.spawn_rc[i] != 0;
    }
    assert_true(failed > 20 && failed < 80); /* about half of 100 */
}

/* ------------------------------------------------------------------------------------------
 * Perturbation: a lost update between two goroutines that read, pass through a channel
 * operation (a preemption point), and write back.
 * ---------------------------------------------------------------------------------------- */

typedef struct race {
    int counter;
    gorc_chan *tick;
    gorc_waitgroup wg;
} race;

static void racer(void *arg)
{
    race *r = arg;
    for (int i = 0; i < 3; i++) {
        int v = r->counter;
        int one = 1;
        CHECK_EQ(gorc_chan_trysend(r->tick, &one) == 0 || 1, 1); /* a channel operation */
        r->counter = v + 1;
    }
    gorc_waitgroup_done(&r->wg);
}

static void race_main(void *arg)
{
    race *r = arg;
    r->counter = 0;
    CHECK_EQ(gorc_chan_new(&r->tick, sizeof(int), 1000), 0);
    gorc_waitgroup_add(&r->wg, 2);
    gorc_go(racer, r);
    gorc_go(racer, r);
    gorc_waitgroup_wait(&r->wg);
    gorc_chan_release(r->tick);
}

static void test_perturb_finds_lost_update(void **state)
{
    (void)state;
    race r;
    /* Without perturbation the racers never interleave: no seed loses an update. */
    for (uint64_t seed = 1; seed <= 50; seed++) {
        memset(&r, 0, sizeof r);
        assert_int_equal(gorc_sim_run(seed, race_main, &r, NULL), 0);
        assert_int_equal(r.counter, 6);
    }
    gorc_sim_opts o = {.perturb = 0.3};
    uint64_t bad = 0;
    for (uint64_t seed = 1; seed <= 200 && !bad; seed++) {
        memset(&r, 0, sizeof r);
        assert_int_equal(gorc_sim_run(seed, race_main, &r, &o), 0);
        if (r.counter != 6)
            bad = seed;
    }
    assert_true(bad != 0);
    int lost = -1;
    for (int k = 0; k < 10; k++) { /* the failing seed fails the same way, 10 times of 10 */
        memset(&r, 0, sizeof r);
        assert_int_equal(gorc_sim_run(bad, race_main, &r, &o), 0);
        assert_true(r.counter != 6);
        if (lost < 0)
            lost = r.counter;
        assert_int_equal(r.counter, lost);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_run),
        cmocka_unit_test(test_seeds_differ),
        cmocka_unit_test(test_waits_for_all),
        cmocka_unit_test(test_virtual_timeouts),
        cmocka_unit_test(test_timer_order),
        cmocka_unit_test(test_timer_lane_and_heap),
        cmocka_unit_test(test_wait),
        cmocka_unit_test(test_wait_busy),
        cmocka_unit_test(test_outside_io_not_durable),
        cmocka_unit_test(test_inside_fd_foreign_writer),
        cmocka_unit_test(test_blocking_inline),
        cmocka_unit_test(test_run_sockets),
        cmocka_unit_test(test_from_goroutine),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_faults_exact),
        cmocka_unit_test(test_faults_rate),
        cmocka_unit_test(test_perturb_finds_lost_update),
    };
    return cmocka_run_group_tests_name("sim", tests, NULL, NULL);
}
