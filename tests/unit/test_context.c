/*
 * test_context.c - contexts, the blocking calls that take one, and task groups (cmocka;
 * bodies run as goroutines).
 *
 * Covers: the background context; cancel with and without a cause (first one wins);
 * propagation to every descendant through value and cancel levels, and not upwards; a child of
 * a cancelled parent; parents released before children; deadlines and timeouts (past, future,
 * inherited, custom cause) and Deadline(); values and without-cancel; after-functions (run,
 * stop, run at once, never for an uncancellable context); send, receive, select and sleep with
 * a context, including a value delivered exactly once or not at all across thousands of races
 * with cancellation; semaphore acquire with a context (cancel wakes it, no permit is lost in
 * races); cancelling from a foreign thread; a 10,000-deep chain; 100,000 siblings cancelled at
 * once; task groups (first error, cancellation cause, limits, TryGo, SetLimit while running)
 * and WaitGroup.Go. Every test ends with the goroutine count back at its baseline. Timing
 * bounds are hang guards only.
 */
#include "testutil.h"

#include <gorc_context.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define MS GORC_MILLISECOND

/* A receive on c that must report "closed" within a hang guard. */
static void check_closed(gorc_chan *c)
{
    gorc_case cs[1] = {{.chan = c, .dir = GORC_RECV}};
    CHECK_EQ(gorc_select_timeout(cs, 1, 10 * GORC_SECOND), 0);
    CHECK(cs[0].closed);
}

static void check_open(gorc_chan *c)
{
    CHECK(c != NULL);
    gorc_case cs[1] = {{.chan = c, .dir = GORC_RECV}};
    CHECK_EQ(gorc_select_try(cs, 1), -EAGAIN);
}

GO_TEST(test_background)
{
    gorc_ctx *bg = gorc_ctx_background();
    CHECK(bg != NULL);
    CHECK(gorc_ctx_done(bg) == NULL);
    CHECK_EQ(gorc_ctx_err(bg), 0);
    CHECK_EQ(gorc_ctx_cause(bg), 0);
    CHECK(!gorc_ctx_deadline(bg, NULL));
    CHECK(gorc_ctx_value(bg, &bg) == NULL);
    CHECK_EQ(gorc_ctx_cancel(bg), -EINVAL);
    CHECK(gorc_ctx_retain(bg) == bg);
    gorc_ctx_release(bg);
    gorc_ctx_release(bg); /* static: still fine */
    CHECK_EQ(gorc_ctx_err(NULL), 0);
    CHECK(gorc_ctx_done(NULL) == NULL);
    CHECK_EQ(gorc_ctx_with_cancel(NULL, bg), -EINVAL);
    gorc_ctx *c;
    CHECK_EQ(gorc_ctx_with_cancel(&c, NULL), -EINVAL);
    CHECK_EQ(gorc_ctx_with_value(&c, bg, NULL, NULL), -EINVAL);
    CHECK_EQ(gorc_ctx_with_deadline(&c, bg, gorc_now(), 5), -EINVAL);
    CHECK_EQ(gorc_chan_recv_ctx(NULL, NULL, NULL), -EINVAL);
}

GO_TEST(test_cancel)
{
    gorc_ctx *c;
    CHECK_EQ(gorc_ctx_with_cancel(&c, gorc_ctx_background()), 0);
    check_open(gorc_ctx_done(c));
    CHECK_EQ(gorc_ctx_err(c), 0);
    CHECK_EQ(gorc_ctx_cause(c), 0);
    CHECK_EQ(gorc_ctx_cancel_cause(c, 3), -EINVAL);
    CHECK_EQ(gorc_ctx_cancel(c), 0);
    CHECK_EQ(gorc_ctx_err(c), -ECANCELED);
    CHECK_EQ(gorc_ctx_cause(c), -ECANCELED);
    check_closed(gorc_ctx_done(c));
    /* Later cancels change nothing. */
    CHECK_EQ(gorc_ctx_cancel_cause(c, -ECONNRESET), 0);
    CHECK_EQ(gorc_ctx_cause(c), -ECANCELED);
    gorc_ctx_release(c);

    CHECK_EQ(gorc_ctx_with_cancel(&c, gorc_ctx_background()), 0);
    CHECK_EQ(gorc_ctx_cancel_cause(c, -ECONNRESET), 0);
    CHECK_EQ(gorc_ctx_err(c), -ECANCELED);
    CHECK_EQ(gorc_ctx_cause(c), -ECONNRESET);
    gorc_ctx_release(c);
}

static int key_a, key_b;

GO_TEST(test_propagation)
{
    gorc_ctx *root, *val, *mid, *leaf, *other;
    CHECK_EQ(gorc_ctx_with_cancel(&root, gorc_ctx_background()), 0);
    CHECK_EQ(gorc_ctx_with_value(&val, root, &key_a, "a"), 0);
    CHECK_EQ(gorc_ctx_with_cancel(&mid, val), 0);
    CHECK_EQ(gorc_ctx_with_cancel(&leaf, mid), 0);
    CHECK_EQ(gorc_ctx_with_cancel(&other, root), 0);
    /* A value context shares its parent's cancellation. */
    CHECK(gorc_ctx_done(val) == gorc_ctx_done(root));
    CHECK_EQ(gorc_ctx_cancel(val), -EINVAL);

    /* Cancelling a child reaches down, never up or sideways. */
    CHECK_EQ(gorc_ctx_cancel_cause(mid, -EPIPE), 0);
    CHECK_EQ(gorc_ctx_err(leaf), -ECANCELED);
    CHECK_EQ(gorc_ctx_cause(leaf), -EPIPE);
    check_closed(gorc_ctx_done(leaf));
    CHECK_EQ(gorc_ctx_err(root), 0);
    CHECK_EQ(gorc_ctx_err(val), 0);
    CHECK_EQ(gorc_ctx_err(other), 0);

    /* The parents go first: the children keep them alive. */
    gorc_ctx_release(root);
    gorc_ctx_release(val);
    CHECK_EQ(gorc_ctx_err(other), 0);
    CHECK(gorc_ctx_value(leaf, &key_a) != NULL);
    gorc_ctx_release(mid);
    gorc_ctx_release(leaf);
    gorc_ctx_release(other);

    /* A child of a cancelled parent is born cancelled, with the parent's cause. */
    CHECK_EQ(gorc_ctx_with_cancel(&root, gorc_ctx_background()), 0);
    CHECK_EQ(gorc_ctx_cancel_cause(root, -EIO), 0);
    CHECK_EQ(gorc_ctx_with_cancel(&leaf, root), 0);
    CHECK_EQ(gorc_ctx_err(leaf), -ECANCELED);
    CHECK_EQ(gorc_ctx_cause(leaf), -EIO);
    check_closed(gorc_ctx_done(leaf));
    gorc_ctx_release(leaf);
    gorc_ctx_release(root);

    /* Cancelling the root reaches every level, through values too. */
    CHECK_EQ(gorc_ctx_with_cancel(&root, gorc_ctx_background()), 0);
    CHECK_EQ(gorc_ctx_with_value(&val, root, &key_a, "a"), 0);
    CHECK_EQ(gorc_ctx_with_cancel(&mid, val), 0);
    CHECK_EQ(gorc_ctx_with_cancel(&leaf, mid), 0);
    CHECK_EQ(gorc_ctx_cancel(root), 0);
    CHECK_EQ(gorc_ctx_err(mid), -ECANCELED);
    CHECK_EQ(gorc_ctx_err(leaf), -ECANCELED);
    CHECK_EQ(gorc_ctx_err(val), -ECANCELED);
    gorc_ctx_release(leaf);
    gorc_ctx_release(mid);
    gorc_ctx_release(val);
    gorc_ctx_release(root);
}

GO_TEST(test_deadline)
{
    int64_t before = gorc_now();
    gorc_ctx *c, *d, *e;
    CHECK_EQ(gorc_ctx_with_timeout(&c, gorc_ctx_background(), 20 * MS, 0), 0);
    int64_t dl;
    CHECK(gorc_ctx_deadline(c, &dl));
    CHECK(dl >= before + 20 * MS);
    CHECK_EQ(gorc_ctx_err(c), 0);
    check_closed(gorc_ctx_done(c));
    CHECK(gorc_now() >= before + 20 * MS);
    CHECK_EQ(gorc_ctx_err(c), -ETIMEDOUT);
    CHECK_EQ(gorc_ctx_cause(c), -ETIMEDOUT);
    /* A later cancel changes nothing. */
    CHECK_EQ(gorc_ctx_cancel(c), 0);
    CHECK_EQ(gorc_ctx_err(c), -ETIMEDOUT);
    gorc_ctx_release(c);

    /* A deadline in the past: cancelled at once, with the given cause. */
    CHECK_EQ(gorc_ctx_with_deadline(&c, gorc_ctx_background(), gorc_now() - GORC_SECOND, -EBUSY),
             0);
    CHECK_EQ(gorc_ctx_err(c), -ETIMEDOUT);
    CHECK_EQ(gorc_ctx_cause(c), -EBUSY);
    gorc_ctx_release(c);

    /* A parent's earlier deadline is the child's; a later one of the parent is not. */
    CHECK_EQ(gorc_ctx_with_timeout(&c, gorc_ctx_background(), 30 * MS, 0), 0);
    CHECK_EQ(gorc_ctx_with_timeout(&d, c, 10 * GORC_SECOND, 0), 0);
    int64_t dc, dd;
    CHECK(gorc_ctx_deadline(c, &dc) && gorc_ctx_deadline(d, &dd));
    CHECK_EQ(dc, dd);
    CHECK_EQ(gorc_ctx_with_timeout(&e, d, 5 * MS, -ENOSPC), 0);
    check_closed(gorc_ctx_done(e));
    CHECK_EQ(gorc_ctx_cause(e), -ENOSPC);
    CHECK_EQ(gorc_ctx_err(d), 0);
    check_closed(gorc_ctx_done(d)); /* by the parent's deadline */
    CHECK_EQ(gorc_ctx_err(d), -ETIMEDOUT);
    gorc_ctx_release(e);
    gorc_ctx_release(d);
    gorc_ctx_release(c);

    /* Cancelled before its deadline: the timer goes, and the context is freed on release (the
     * leak check at the end of the run proves nothing was left). */
    CHECK_EQ(gorc_ctx_with_timeout(&c, gorc_ctx_background(), 3600 * GORC_SECOND, 0), 0);
    CHECK_EQ(gorc_ctx_cancel(c), 0);
    CHECK_EQ(gorc_ctx_err(c), -ECANCELED);
    gorc_ctx_release(c);

    /* A huge timeout does not overflow. */
    CHECK_EQ(gorc_ctx_with_timeout(&c, gorc_ctx_background(), INT64_MAX, 0), 0);
    CHECK_EQ(gorc_ctx_err(c), 0);
    gorc_ctx_cancel(c);
    gorc_ctx_release(c);
}

GO_TEST(test_values)
{
    gorc_ctx *a, *b, *shadow, *det, *cc;
    CHECK_EQ(gorc_ctx_with_value(&a, gorc_ctx_background(), &key_a, "a"), 0);
    CHECK_EQ(gorc_ctx_with_cancel(&cc, a), 0);
    CHECK_EQ(gorc_ctx_with_value(&b, cc, &key_b, "b"), 0);
    CHECK_EQ(gorc_ctx_with_value(&shadow, b, &key_a, "a2"), 0);
    CHECK(strcmp(gorc_ctx_value(b, &key_a), "a") == 0);
    CHECK(strcmp(gorc_ctx_value(b, &key_b), "b") == 0);
    CHECK(strcmp(gorc_ctx_value(shadow, &key_a), "a2") == 0);
    CHECK(gorc_ctx_value(a, &key_b) == NULL);

    /* Without-cancel: the values stay, the cancellation does not reach it. */
    gorc_ctx *dl;
    CHECK_EQ(gorc_ctx_with_timeout(&dl, shadow, GORC_SECOND, 0), 0);
    CHECK_EQ(gorc_ctx_without_cancel(&det, dl), 0);
    CHECK(strcmp(gorc_ctx_value(det, &key_b), "b") == 0);
    CHECK(gorc_ctx_done(det) == NULL);
    CHECK(!gorc_ctx_deadline(det, NULL));
    CHECK_EQ(gorc_ctx_cancel(det), -EINVAL);
    gorc_ctx_cancel(cc);
    CHECK_EQ(gorc_ctx_err(dl), -ECANCELED);
    CHECK_EQ(gorc_ctx_err(det), 0);
    gorc_ctx *child;
    CHECK_EQ(gorc_ctx_with_cancel(&child, det), 0);
    CHECK_EQ(gorc_ctx_err(child), 0);
    gorc_ctx_release(child);
    gorc_ctx_release(det);
    gorc_ctx_release(dl);
    gorc_ctx_release(shadow);
    gorc_ctx_release(b);
    gorc_ctx_release(cc);
    gorc_ctx_release(a);
}

static _Atomic int after_runs;
static _Atomic uint64_t after_gid;

static void after_fn(void *arg)
{
    after_gid = gorc_id();
    atomic_fetch_add(&after_runs, 1);
    if (arg)
        gorc_chan_close(arg);
}

GO_TEST(test_after_func)
{
    after_runs = 0;
    gorc_ctx *c;
    gorc_chan *ran;
    gorc_ctx_after *a;
    CHECK_EQ(gorc_ctx_after_func(&a, NULL, after_fn, NULL), -EINVAL);

    /* Runs once the context is cancelled, in a goroutine of its own. */
    CHECK_EQ(gorc_ctx_with_cancel(&c, gorc_ctx_background()), 0);
    CHECK_EQ(gorc_chan_new(&ran, 0, 0), 0);
    CHECK_EQ(gorc_ctx_after_func(&a, c, after_fn, ran), 0);
    gorc_sleep(MS);
    CHECK_EQ(after_runs, 0);
    gorc_ctx_cancel(c);
    check_closed(ran);
    CHECK_EQ(after_runs, 1);
    CHECK(after_gid != gorc_id());
    CHECK(!gorc_ctx_after_stop(a)); /* already started */
    gorc_ctx_after_free(a);
    gorc_chan_release(ran);

    /* Registered on a cancelled context: runs at once. Without a handle. */
    CHECK_EQ(gorc_chan_new(&ran, 0, 0), 0);
    CHECK_EQ(gorc_ctx_after_func(NULL, c, after_fn, ran), 0);
    check_closed(ran);
    CHECK_EQ(after_runs, 2);
    gorc_chan_release(ran);
    gorc_ctx_release(c);

    /* Stopped first: never runs; a second stop reports it was not this one. */
    CHECK_EQ(gorc_ctx_with_cancel(&c, gorc_ctx_background()), 0);
    CHECK_EQ(gorc_ctx_after_func(&a, c, after_fn, NULL), 0);
    CHECK(gorc_ctx_after_stop(a));
    CHECK(!gorc_ctx_after_stop(a));
    gorc_ctx_cancel(c);
    gorc_sleep(5 * MS);
    CHECK_EQ(after_runs, 2);
    gorc_ctx_after_free(a);
    gorc_ctx_release(c);

    /* A context that can never be cancelled never runs it. */
    CHECK_EQ(gorc_ctx_after_func(&a, gorc_ctx_background(), after_fn, NULL), 0);
    CHECK(gorc_ctx_after_stop(a));
    CHECK(!gorc_ctx_after_stop(a));
    gorc_ctx_after_free(a);
    CHECK_EQ(after_runs, 2);
}

/* ---- blocking calls ---- */

typedef struct blockarg {
    gorc_chan *c;
    gorc_ctx *ctx;
    gorc_sema *sem;
    _Atomic int result;
    _Atomic int started;
    gorc_waitgroup wg;
} blockarg;

static void recv_blocked(void *p)
{
    blockarg *b = p;
    int v = 7;
    b->started = 1;
    b->result = gorc_chan_recv_ctx(b->c, &v, b->ctx);
    CHECK_EQ(v, 7); /* nothing taken, nothing written */
    gorc_waitgroup_done(&b->wg);
}

static void send_blocked(void *p)
{
    blockarg *b = p;
    int v = 9;
    b->started = 1;
    b->result = gorc_chan_send_ctx(b->c, &v, b->ctx);
    gorc_waitgroup_done(&b->wg);
}

static void sema_blocked(void *p)
{
    blockarg *b = p;
    b->started = 1;
    b->result = gorc_sema_acquire_ctx(b->sem, 1, b->ctx);
    gorc_waitgroup_done(&b->wg);
}

static void run_blocked(gorc_fn fn, blockarg *b)
{
    b->result = 1;
    b->started = 0;
    gorc_waitgroup_add(&b->wg, 1);
    CHECK_EQ(gorc_go(fn, b), 0);
    while (!b->started)
        gorc_sleep(MS / 4);
    gorc_sleep(2 * MS); /* let it park */
    CHECK_EQ(b->result, 1);
    CHECK_EQ(gorc_ctx_cancel_cause(b->ctx, -ENOTCONN), 0);
    gorc_waitgroup_wait(&b->wg);
    CHECK_EQ(b->result, -ECANCELED);
}

GO_TEST(test_blocking_calls)
{
    int64_t base = base_count();
    blockarg b = {0};
    CHECK_EQ(gorc_chan_new(&b.c, sizeof(int), 0), 0);

    CHECK_EQ(gorc_ctx_with_cancel(&b.ctx, gorc_ctx_background()), 0);
    run_blocked(recv_blocked, &b);
    gorc_ctx_release(b.ctx);
    CHECK_EQ(gorc_ctx_with_cancel(&b.ctx, gorc_ctx_background()), 0);
    run_blocked(send_blocked, &b);
    gorc_ctx_release(b.ctx);
    /* The channel is untouched: nothing was sent. */
    CHECK_EQ(gorc_chan_tryrecv(b.c, NULL), -EAGAIN);

    gorc_sema sem = {0};
    gorc_sema_init(&sem, 0);
    b.sem = &sem;
    CHECK_EQ(gorc_ctx_with_cancel(&b.ctx, gorc_ctx_background()), 0);
    run_blocked(sema_blocked, &b);
    /* Cancelled already: permits that are there are still taken; none is waited for. */
    CHECK_EQ(gorc_sema_acquire_ctx(&sem, 1, b.ctx), -ECANCELED);
    gorc_sema_release(&sem, 1);
    CHECK_EQ(gorc_sema_acquire_ctx(&sem, 1, b.ctx), 0);
    CHECK_EQ(gorc_sema_acquire_ctx(&sem, 0, b.ctx), -EINVAL);
    gorc_ctx_release(b.ctx);

    /* A completed operation wins over a context that is never cancelled. */
    int v = 5, got = 0;
    gorc_chan *buf;
    CHECK_EQ(gorc_chan_new(&buf, sizeof(int), 1), 0);
    CHECK_EQ(gorc_chan_send_ctx(buf, &v, gorc_ctx_background()), 0);
    CHECK_EQ(gorc_chan_recv_ctx(buf, &got, gorc_ctx_background()), 0);
    CHECK_EQ(got, 5);
    gorc_chan_close(buf);
    CHECK_EQ(gorc_chan_recv_ctx(buf, &got, gorc_ctx_background()), -EPIPE);
    gorc_ctx *c;
    CHECK_EQ(gorc_ctx_with_cancel(&c, gorc_ctx_background()), 0);
    CHECK_EQ(gorc_chan_send_ctx(buf, &v, c), -EPIPE);
    gorc_ctx_release(c);
    gorc_chan_release(buf);

    /* Sleep: a full sleep is 0, a cancelled one returns early with the error. */
    CHECK_EQ(gorc_ctx_with_timeout(&c, gorc_ctx_background(), 5 * MS, 0), 0);
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_sleep_ctx(10 * GORC_SECOND, c), -ETIMEDOUT);
    CHECK(gorc_now() - t0 < 5 * GORC_SECOND);
    gorc_ctx_release(c);
    CHECK_EQ(gorc_ctx_with_cancel(&c, gorc_ctx_background()), 0);
    CHECK_EQ(gorc_sleep_ctx(MS, c), 0);
    CHECK_EQ(gorc_sleep_ctx(MS, gorc_ctx_background()), 0);
    gorc_ctx_release(c);

    gorc_chan_release(b.c);
    wait_count(base);
}

GO_TEST(test_select_ctx)
{
    /* More cases than fit on the stack; the context's case is chosen when it is cancelled. */
    enum { N = 40 };
    gorc_chan *chans[N];
    gorc_case cs[N];
    for (int i = 0; i < N; i++) {
        CHECK_EQ(gorc_chan_new(&chans[i], sizeof(int), 1), 0);
        cs[i] = (gorc_case){.chan = chans[i], .dir = GORC_RECV};
    }
    gorc_ctx *c;
    CHECK_EQ(gorc_ctx_with_timeout(&c, gorc_ctx_background(), 2 * MS, 0), 0);
    CHECK_EQ(gorc_select_ctx(cs, N, c), -ETIMEDOUT);
    /* With a case ready and the context not cancelled, the case is performed. */
    gorc_ctx *live;
    CHECK_EQ(gorc_ctx_with_cancel(&live, gorc_ctx_background()), 0);
    int v = 3, got = 0;
    gorc_chan_send(chans[17], &v);
    cs[17].elem = &got;
    CHECK_EQ(gorc_select_ctx(cs, N, live), 17);
    CHECK_EQ(got, 3);
    CHECK(!cs[17].closed);
    gorc_chan_close(chans[5]);
    CHECK_EQ(gorc_select_ctx(cs, N, live), 5);
    CHECK(cs[5].closed);
    CHECK_EQ(gorc_select_ctx(NULL, 1, live), -EINVAL);
    /* No cases: only the context can end it. */
    CHECK_EQ(gorc_select_ctx(NULL, 0, c), -ETIMEDOUT);
    gorc_ctx_cancel(live);
    gorc_ctx_release(live);
    gorc_ctx_release(c);
    for (int i = 0; i < N; i++)
        gorc_chan_release(chans[i]);

    /* A ready case and a cancelled context: either may be chosen, as in a Go select (each in
     * at least 10 % of 1,000 rounds; a fair choice misses that with probability < 1e-30). */
    gorc_chan *one;
    CHECK_EQ(gorc_chan_new(&one, sizeof(int), 1), 0);
    CHECK_EQ(gorc_ctx_with_cancel(&c, gorc_ctx_background()), 0);
    gorc_ctx_cancel(c);
    int took = 0, cancelled = 0;
    for (int i = 0; i < 1000; i++) {
        v = i;
        if (gorc_chan_len(one) == 0)
            CHECK_EQ(gorc_chan_send(one, &v), 0);
        gorc_case rc[1] = {{.chan = one, .dir = GORC_RECV, .elem = &got}};
        int r = gorc_select_ctx(rc, 1, c);
        if (r == 0)
            took++;
        else if (r == -ECANCELED)
            cancelled++;
        else
            CHECK(false);
    }
    CHECK(took >= 100 && cancelled >= 100);
    gorc_ctx_release(c);
    gorc_chan_release(one);
}

/* Exactly once: senders race cancellation; every send that reports 0 was received, and no
 * value is received whose send reported an error. */
typedef struct race {
    gorc_chan *c;
    gorc_ctx *ctx;
    _Atomic long sent, recvd;
    gorc_waitgroup round, recv;
} race;

static void race_sender(void *p)
{
    race *r = p;
    int v = 1;
    if (gorc_chan_send_ctx(r->c, &v, r->ctx) == 0)
        atomic_fetch_add(&r->sent, 1);
    gorc_waitgroup_done(&r->round);
}

static void race_receiver(void *p)
{
    race *r = p;
    int v;
    while (gorc_chan_recv(r->c, &v) == 0)
        atomic_fetch_add(&r->recvd, 1);
    gorc_waitgroup_done(&r->recv);
}

static void race_canceller(void *p)
{
    race *r = p;
    gorc_yield();
    gorc_ctx_cancel(r->ctx);
    gorc_waitgroup_done(&r->round);
}

GO_TEST(test_cancel_races_completion)
{
    int64_t base = base_count();
    long rounds = scaled(2000);
    race r = {0};
    CHECK_EQ(gorc_chan_new(&r.c, sizeof(int), 0), 0);
    CHECK_EQ(gorc_waitgroup_go(&r.recv, race_receiver, &r), 0);
    for (long i = 0; i < rounds; i++) {
        CHECK_EQ(gorc_ctx_with_cancel(&r.ctx, gorc_ctx_background()), 0);
        gorc_waitgroup_add(&r.round, 4);
        for (int k = 0; k < 3; k++)
            CHECK_EQ(gorc_go(race_sender, &r), 0);
        CHECK_EQ(gorc_go(race_canceller, &r), 0);
        gorc_waitgroup_wait(&r.round);
        gorc_ctx_release(r.ctx);
    }
    gorc_chan_close(r.c);
    gorc_waitgroup_wait(&r.recv);
    CHECK_EQ(atomic_load(&r.sent), atomic_load(&r.recvd));
    gorc_chan_release(r.c);
    wait_count(base);
}

/* Semaphore permits are never lost: acquirers with a context race a releaser and their
 * cancellation; what was granted plus what is left equals what was released. */
typedef struct semrace {
    gorc_sema sem;
    gorc_ctx *ctx;
    _Atomic long got;
    gorc_waitgroup wg;
} semrace;

static void sem_acquirer(void *p)
{
    semrace *s = p;
    if (gorc_sema_acquire_ctx(&s->sem, 1, s->ctx) == 0)
        atomic_fetch_add(&s->got, 1);
    gorc_waitgroup_done(&s->wg);
}

static void sem_releaser(void *p)
{
    semrace *s = p;
    gorc_sema_release(&s->sem, 2);
    gorc_waitgroup_done(&s->wg);
}

static void sem_canceller(void *p)
{
    semrace *s = p;
    gorc_ctx_cancel(s->ctx);
    gorc_waitgroup_done(&s->wg);
}

GO_TEST(test_sema_races_cancel)
{
    int64_t base = base_count();
    long rounds = scaled(2000);
    semrace s = {0};
    gorc_sema_init(&s.sem, 0);
    for (long i = 0; i < rounds; i++) {
        CHECK_EQ(gorc_ctx_with_cancel(&s.ctx, gorc_ctx_background()), 0);
        gorc_waitgroup_add(&s.wg, 5);
        for (int k = 0; k < 3; k++)
            CHECK_EQ(gorc_go(sem_acquirer, &s), 0);
        CHECK_EQ(gorc_go(sem_releaser, &s), 0);
        CHECK_EQ(gorc_go(sem_canceller, &s), 0);
        gorc_waitgroup_wait(&s.wg);
        gorc_ctx_release(s.ctx);
    }
    long left = 0;
    while (gorc_sema_tryacquire(&s.sem, 1))
        left++;
    CHECK_EQ(atomic_load(&s.got) + left, 2 * rounds);
    wait_count(base);
}

/* ---- foreign threads, depth and breadth ---- */

static _Atomic int foreign_ready;

/* A thread of the program's own: it declares itself (it will wake a goroutine, so deadlock
 * detection must wait for it), then cancels from outside the runtime. */
static void *foreign_cancel(void *p)
{
    gorc_foreign_attach();
    foreign_ready = 1;
    gorc_sleep(5 * MS); /* sleeps the thread */
    gorc_ctx_cancel_cause(p, -ESHUTDOWN);
    return NULL;
}

static void *join_thread(void *t)
{
    pthread_join(*(pthread_t *)t, NULL);
    return NULL;
}

GO_TEST(test_cancel_from_foreign_thread)
{
    gorc_ctx *c;
    CHECK_EQ(gorc_ctx_with_cancel(&c, gorc_ctx_background()), 0);
    gorc_chan *never;
    CHECK_EQ(gorc_chan_new(&never, sizeof(int), 0), 0);
    pthread_t t;
    foreign_ready = 0;
    CHECK_EQ(pthread_create(&t, NULL, foreign_cancel, c), 0);
    while (!foreign_ready)
        gorc_sleep(MS / 4);
    int v;
    CHECK_EQ(gorc_chan_recv_ctx(never, &v, c), -ECANCELED);
    CHECK_EQ(gorc_ctx_cause(c), -ESHUTDOWN);
    gorc_blocking(join_thread, &t);
    gorc_chan_release(never);
    gorc_ctx_release(c);
}

GO_TEST(test_deep_chain)
{
    long depth = 10000;
    gorc_ctx **chain = malloc((size_t)depth * sizeof *chain);
    CHECK(chain != NULL);
    gorc_ctx *p = gorc_ctx_background();
    for (long i = 0; i < depth; i++) {
        int rc = i % 3 == 1 ? gorc_ctx_with_value(&chain[i], p, &key_a, NULL)
                            : gorc_ctx_with_cancel(&chain[i], p);
        CHECK_EQ(rc, 0);
        p = chain[i];
    }
    gorc_chan *leaf_done = gorc_ctx_done(chain[depth - 1]);
    check_open(leaf_done);
    CHECK_EQ(gorc_ctx_cancel(chain[0]), 0);
    check_closed(leaf_done);
    CHECK_EQ(gorc_ctx_err(chain[depth - 1]), -ECANCELED);
    /* Parents first: the chain is freed in one go by the last release, without recursion. */
    for (long i = 0; i < depth; i++)
        gorc_ctx_release(chain[i]);

    /* The other order, on a chain that was never cancelled. */
    p = gorc_ctx_background();
    for (long i = 0; i < depth; i++) {
        CHECK_EQ(gorc_ctx_with_cancel(&chain[i], p), 0);
        p = chain[i];
    }
    for (long i = depth; i-- > 0;)
        gorc_ctx_release(chain[i]);
    free(chain);
}

GO_TEST(test_many_siblings)
{
    long n = scaled(100000);
    gorc_ctx *root;
    CHECK_EQ(gorc_ctx_with_cancel(&root, gorc_ctx_background()), 0);
    gorc_ctx **kids = malloc((size_t)n * sizeof *kids);
    CHECK(kids != NULL);
    for (long i = 0; i < n; i++)
        CHECK_EQ(gorc_ctx_with_cancel(&kids[i], root), 0);
    /* Half of them go away early: they leave the root's list. */
    for (long i = 0; i < n; i += 2)
        gorc_ctx_release(kids[i]);
    CHECK_EQ(gorc_ctx_cancel(root), 0);
    for (long i = 1; i < n; i += 2) {
        CHECK_EQ(gorc_ctx_err(kids[i]), -ECANCELED);
        gorc_ctx_release(kids[i]);
    }
    free(kids);
    gorc_ctx_release(root);
}

/* ---- mutex and wait group with a context ---- */

typedef struct lockrace {
    gorc_mutex mu;
    gorc_ctx *ctx;
    _Atomic long got, gave_up;
    gorc_waitgroup wg;
} lockrace;

static void lock_waiter(void *p)
{
    lockrace *l = p;
    int rc = gorc_mutex_lock_ctx(&l->mu, l->ctx);
    if (rc == 0) {
        atomic_fetch_add(&l->got, 1);
        gorc_mutex_unlock(&l->mu);
    } else {
        CHECK_EQ(rc, -ECANCELED);
        atomic_fetch_add(&l->gave_up, 1);
    }
    gorc_waitgroup_done(&l->wg);
}

static void lock_canceller(void *p)
{
    lockrace *l = p;
    gorc_yield();
    gorc_ctx_cancel(l->ctx);
    gorc_waitgroup_done(&l->wg);
}

static void lock_releaser(void *p)
{
    lockrace *l = p;
    gorc_yield();
    gorc_mutex_unlock(&l->mu);
    gorc_waitgroup_done(&l->wg);
}

/* The mutex is free again within the hang guard (a helper may still be handing it back). */
static void wait_unlocked(gorc_mutex *m)
{
    int64_t deadline = gorc_now() + 10 * GORC_SECOND;
    while (!gorc_mutex_trylock(m)) {
        CHECK(gorc_now() < deadline);
        gorc_sleep(MS / 4);
    }
    gorc_mutex_unlock(m);
}

GO_TEST(test_mutex_and_waitgroup_ctx)
{
    int64_t base = base_count();
    lockrace l = {0};
    gorc_ctx *c;
    CHECK_EQ(gorc_mutex_lock_ctx(NULL, gorc_ctx_background()), -EINVAL);
    CHECK_EQ(gorc_waitgroup_wait_ctx(&l.wg, NULL), -EINVAL);

    /* Uncontended: taken at once, even with a cancelled context. */
    CHECK_EQ(gorc_ctx_with_cancel(&c, gorc_ctx_background()), 0);
    gorc_ctx_cancel(c);
    CHECK_EQ(gorc_mutex_lock_ctx(&l.mu, c), 0);
    /* Contended and cancelled: the error, and the mutex stays the holder's. */
    CHECK_EQ(gorc_mutex_lock_ctx(&l.mu, c), -ECANCELED);
    gorc_ctx_release(c);
    CHECK_EQ(gorc_ctx_with_timeout(&c, gorc_ctx_background(), 5 * MS, 0), 0);
    CHECK_EQ(gorc_mutex_lock_ctx(&l.mu, c), -ETIMEDOUT);
    gorc_ctx_release(c);
    CHECK(!gorc_mutex_trylock(&l.mu));
    gorc_mutex_unlock(&l.mu);
    wait_unlocked(&l.mu); /* the helper that took it for the gone caller gave it back */

    /* Races: an unlock and a cancel at once; the lock is granted or not, never lost. */
    long rounds = scaled(2000);
    for (long i = 0; i < rounds; i++) {
        gorc_mutex_lock(&l.mu);
        CHECK_EQ(gorc_ctx_with_cancel(&l.ctx, gorc_ctx_background()), 0);
        gorc_waitgroup_add(&l.wg, 3);
        CHECK_EQ(gorc_go(lock_waiter, &l), 0);
        CHECK_EQ(gorc_go(lock_canceller, &l), 0);
        CHECK_EQ(gorc_go(lock_releaser, &l), 0);
        gorc_waitgroup_wait(&l.wg);
        wait_unlocked(&l.mu);
        gorc_ctx_release(l.ctx);
    }
    CHECK_EQ(atomic_load(&l.got) + atomic_load(&l.gave_up), rounds);

    /* Wait group: the deadline ends the wait; once the counter is zero it returns 0. */
    gorc_waitgroup wg = {0};
    gorc_waitgroup_add(&wg, 1);
    CHECK_EQ(gorc_ctx_with_timeout(&c, gorc_ctx_background(), 5 * MS, 0), 0);
    CHECK_EQ(gorc_waitgroup_wait_ctx(&wg, c), -ETIMEDOUT);
    CHECK_EQ(gorc_waitgroup_wait_ctx(&wg, c), -ETIMEDOUT); /* cancelled: at once */
    gorc_ctx_release(c);
    CHECK_EQ(gorc_ctx_with_cancel(&c, gorc_ctx_background()), 0);
    gorc_waitgroup_done(&wg);
    CHECK_EQ(gorc_waitgroup_wait_ctx(&wg, c), 0);
    CHECK_EQ(gorc_waitgroup_wait_ctx(&wg, gorc_ctx_background()), 0);
    gorc_ctx_cancel(c);
    gorc_ctx_release(c);
    wait_count(base); /* every helper has ended */
}

/* ---- groups ---- */

static _Atomic int now_running, max_running;

static int task_ok(gorc_ctx *ctx, void *arg)
{
    int r = atomic_fetch_add(&now_running, 1) + 1;
    int m = atomic_load(&max_running);
    while (r > m && !atomic_compare_exchange_weak(&max_running, &m, r))
        ;
    gorc_sleep(MS);
    atomic_fetch_sub(&now_running, 1);
    (void)ctx;
    (void)arg;
    return 0;
}

static int task_fail(gorc_ctx *ctx, void *arg)
{
    (void)ctx;
    gorc_sleep(2 * MS);
    return (int)(intptr_t)arg;
}

static int task_wait_cancel(gorc_ctx *ctx, void *arg)
{
    (void)arg;
    return gorc_sleep_ctx(30 * GORC_SECOND, ctx) == -ECANCELED ? 0 : -EPROTO;
}

GO_TEST(test_group)
{
    int64_t base = base_count();
    gorc_group *g;
    CHECK_EQ(gorc_group_new(NULL, NULL), -EINVAL);
    CHECK_EQ(gorc_group_new(&g, NULL), 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(gorc_group_go(g, task_wait_cancel, NULL), 0);
    CHECK_EQ(gorc_group_go(g, task_fail, (void *)(intptr_t)-EIO), 0);
    CHECK_EQ(gorc_group_go(g, task_fail, (void *)(intptr_t)-EIO), 0);
    CHECK_EQ(gorc_group_wait(g), -EIO);
    CHECK_EQ(gorc_ctx_err(gorc_group_ctx(g)), -ECANCELED);
    CHECK_EQ(gorc_ctx_cause(gorc_group_ctx(g)), -EIO);
    gorc_group_free(g);

    /* All succeed: 0, and Wait cancels the context. */
    gorc_ctx *parent;
    CHECK_EQ(gorc_ctx_with_value(&parent, gorc_ctx_background(), &key_a, "p"), 0);
    CHECK_EQ(gorc_group_new(&g, parent), 0);
    CHECK(gorc_ctx_value(gorc_group_ctx(g), &key_a) != NULL);
    CHECK_EQ(gorc_group_set_limit(g, 0), -EINVAL);
    CHECK_EQ(gorc_group_set_limit(g, 3), 0);
    now_running = max_running = 0;
    for (int i = 0; i < 20; i++)
        CHECK_EQ(gorc_group_go(g, task_ok, NULL), 0);
    CHECK_EQ(gorc_group_set_limit(g, 5), -EBUSY);
    CHECK_EQ(gorc_group_wait(g), 0);
    CHECK(max_running <= 3);
    CHECK(max_running >= 1);
    CHECK_EQ(gorc_ctx_err(gorc_group_ctx(g)), -ECANCELED);
    /* TryGo refuses when every slot is taken. */
    CHECK_EQ(gorc_group_set_limit(g, 1), 0);
    CHECK_EQ(gorc_group_try_go(g, task_fail, (void *)(intptr_t)0), 0);
    CHECK_EQ(gorc_group_try_go(g, task_ok, NULL), -EAGAIN);
    CHECK_EQ(gorc_group_wait(g), 0);
    CHECK_EQ(gorc_group_try_go(g, task_ok, NULL), 0);
    gorc_group_free(g);
    gorc_ctx_release(parent);
    wait_count(base);
}

static void wg_task(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
}

GO_TEST(test_waitgroup_go)
{
    gorc_waitgroup wg = {0};
    _Atomic int n = 0;
    CHECK_EQ(gorc_waitgroup_go(NULL, wg_task, NULL), -EINVAL);
    CHECK_EQ(gorc_waitgroup_go(&wg, NULL, NULL), -EINVAL);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(gorc_waitgroup_go(&wg, wg_task, (void *)&n), 0);
    gorc_waitgroup_wait(&wg);
    CHECK_EQ(n, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_background),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_propagation),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_after_func),
        cmocka_unit_test(test_blocking_calls),
        cmocka_unit_test(test_select_ctx),
        cmocka_unit_test(test_cancel_races_completion),
        cmocka_unit_test(test_sema_races_cancel),
        cmocka_unit_test(test_cancel_from_foreign_thread),
        cmocka_unit_test(test_deep_chain),
        cmocka_unit_test(test_many_siblings),
        cmocka_unit_test(test_mutex_and_waitgroup_ctx),
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_waitgroup_go),
    };
    return cmocka_run_group_tests_name("context", tests, NULL, NULL);
}
