/*
 * test_select.c - select (cmocka; bodies run as goroutines).
 *
 * Covers: fairness among always-ready cases (chi-square and per-case bounds, including send
 * cases and one channel in several cases); gorc_select_try (-EAGAIN when nothing is ready);
 * gorc_select_timeout (-ETIMEDOUT; timeout <= 0 polls but still says -ETIMEDOUT; zero cases or
 * only NULL channels sleep); NULL-channel cases are never chosen; mixed send and receive cases;
 * the same channel in several cases (also a select pairing with another select on one
 * channel); closed channels (receive case: zero value and closed=true; send case: closed=true,
 * nothing sent), also when the close wakes a blocked select; many selects racing over the
 * same channels with exact accounting, timeouts firing on both sides; 64-case selects (heap
 * allocated); invalid arguments. Semantics follow Go 1.19.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <string.h>

static gorc_chan *mkchan(size_t elem, size_t cap)
{
    gorc_chan *c = NULL;
    CHECK_EQ(gorc_chan_new(&c, elem, cap), 0);
    return c;
}

/* No libm: the test binaries are not linked with -lm. */
static double xsqrt(double a)
{
    double x = a > 1 ? a : 1;
    for (int i = 0; i < 100; i++)
        x = 0.5 * (x + a / x);
    return x;
}

static double xabs(double a)
{
    return a < 0 ? -a : a;
}

/* Checks counts[k] ~ Binomial(n, 1/k) for each k: every count within 6 standard deviations
 * (two-sided p ~ 2e-9 each) and the chi-square statistic below the 1e-7 tail for k-1 degrees
 * of freedom (approximated generously). A fair select fails with probability < 1e-6. */
static void check_uniform(const long *counts, int k, long n)
{
    double e = (double)n / k;
    double sd = xsqrt((double)n * (1.0 / k) * (1.0 - 1.0 / k));
    double chi2 = 0;
    long total = 0;
    for (int i = 0; i < k; i++) {
        double d = (double)counts[i] - e;
        if (xabs(d) > 6 * sd) {
            fprintf(stderr, "case %d chosen %ld times, expected %.0f +- %.1f\n", i, counts[i], e,
                    sd);
            CHECK(xabs(d) <= 6 * sd);
        }
        chi2 += d * d / e;
        total += counts[i];
    }
    CHECK_EQ(total, n);
    /* Chi-square upper 1e-7 points: df=1: 28.4, df=3: 35.4, df=63: 143. Use df + 10 xsqrt(2 df)
     * + 25, which is above all of them. */
    double df = k - 1;
    double limit = df + 10 * xsqrt(2 * df) + 25;
    if (chi2 > limit)
        fprintf(stderr, "chi2 %.1f > %.1f for k=%d n=%ld\n", chi2, limit, k, n);
    CHECK(chi2 <= limit);
}

/* ------------------------------------------------------------------------------------------
 * Fairness
 * ---------------------------------------------------------------------------------------- */

GO_TEST(test_fairness_recv)
{
    enum { K = 4 };
    long n = scaled(100000);
    gorc_chan *c[K];
    gorc_case cs[K];
    int vals[K];
    for (int i = 0; i < K; i++) {
        c[i] = mkchan(sizeof(int), 1);
        int v = i;
        CHECK_EQ(gorc_chan_send(c[i], &v), 0);
        cs[i] = (gorc_case){.chan = c[i], .dir = GORC_RECV, .elem = &vals[i]};
    }
    long counts[K] = {0};
    for (long it = 0; it < n; it++) {
        int r = gorc_select(cs, K);
        CHECK(r >= 0 && r < K);
        CHECK_EQ(vals[r], r);
        CHECK(!cs[r].closed);
        counts[r]++;
        CHECK_EQ(gorc_chan_trysend(c[r], &r), 0); /* refill */
    }
    check_uniform(counts, K, n);
    for (int i = 0; i < K; i++)
        gorc_chan_release(c[i]);
}

GO_TEST(test_fairness_mixed)
{
    /* Two receive cases on full channels, two send cases on channels with room, and a fifth
     * case on the same channel as the first. select_try and select_timeout share the poll
     * order code, so alternate between all three entry points. */
    enum { K = 5 };
    long n = scaled(100000);
    gorc_chan *r0 = mkchan(sizeof(int), 1), *r1 = mkchan(sizeof(int), 1);
    gorc_chan *s0 = mkchan(sizeof(int), 1), *s1 = mkchan(sizeof(int), 1);
    int one = 1, v0 = 0, v1 = 0, v4 = 0, out0 = 10, out1 = 11;
    CHECK_EQ(gorc_chan_send(r0, &one), 0);
    CHECK_EQ(gorc_chan_send(r1, &one), 0);
    gorc_case cs[K] = {
        {.chan = r0, .dir = GORC_RECV, .elem = &v0},
        {.chan = r1, .dir = GORC_RECV, .elem = &v1},
        {.chan = s0, .dir = GORC_SEND, .elem = &out0},
        {.chan = s1, .dir = GORC_SEND, .elem = &out1},
        {.chan = r0, .dir = GORC_RECV, .elem = &v4},
    };
    long counts[K] = {0};
    for (long it = 0; it < n; it++) {
        int r;
        switch (it % 3) {
        case 0:
            r = gorc_select(cs, K);
            break;
        case 1:
            r = gorc_select_try(cs, K);
            break;
        default:
            r = gorc_select_timeout(cs, K, GORC_SECOND);
            break;
        }
        CHECK(r >= 0 && r < K);
        counts[r]++;
        int x;
        switch (r) {
        case 0:
        case 4:
            CHECK_EQ(r == 0 ? v0 : v4, 1);
            CHECK_EQ(gorc_chan_trysend(r0, &one), 0);
            break;
        case 1:
            CHECK_EQ(v1, 1);
            CHECK_EQ(gorc_chan_trysend(r1, &one), 0);
            break;
        case 2:
            CHECK_EQ(gorc_chan_tryrecv(s0, &x), 0);
            CHECK_EQ(x, 10);
            break;
        case 3:
            CHECK_EQ(gorc_chan_tryrecv(s1, &x), 0);
            CHECK_EQ(x, 11);
            break;
        }
        /* Every channel is back to its starting state. */
        CHECK_EQ(gorc_chan_len(r0) + gorc_chan_len(r1), 2);
        CHECK_EQ(gorc_chan_len(s0) + gorc_chan_len(s1), 0);
    }
    check_uniform(counts, K, n);
    gorc_chan_release(r0);
    gorc_chan_release(r1);
    gorc_chan_release(s0);
    gorc_chan_release(s1);
}

/* ------------------------------------------------------------------------------------------
 * Non-blocking, timeouts, NULL channels, invalid arguments
 * ---------------------------------------------------------------------------------------- */

GO_TEST(test_select_try)
{
    gorc_chan *b = mkchan(sizeof(int), 1);
    gorc_chan *u = mkchan(sizeof(int), 0);
    gorc_chan *full = mkchan(sizeof(int), 1);
    int v = 3, x = 0;
    CHECK_EQ(gorc_chan_send(full, &v), 0);
    gorc_case cs[5] = {
        {.chan = b, .dir = GORC_RECV, .elem = &x},    /* empty */
        {.chan = u, .dir = GORC_RECV, .elem = &x},    /* no sender */
        {.chan = u, .dir = GORC_SEND, .elem = &v},    /* no receiver */
        {.chan = full, .dir = GORC_SEND, .elem = &v}, /* full */
        {.chan = NULL, .dir = GORC_RECV, .elem = &x}, /* never */
    };
    for (int i = 0; i < 100; i++)
        CHECK_EQ(gorc_select_try(cs, 5), GORC_EAGAIN);
    CHECK_EQ(gorc_select_try(NULL, 0), GORC_EAGAIN);
    CHECK_EQ(gorc_select_try(cs + 4, 1), GORC_EAGAIN);
    CHECK_EQ(gorc_chan_len(full), 1);
    CHECK_EQ(gorc_chan_len(b), 0);

    /* Make one ready: it is chosen. */
    CHECK_EQ(gorc_chan_send(b, &v), 0);
    x = 0;
    CHECK_EQ(gorc_select_try(cs, 5), 0);
    CHECK_EQ(x, 3);
    CHECK_EQ(gorc_select_try(cs, 5), GORC_EAGAIN);

    /* Invalid direction. */
    gorc_case bad[2] = {{.chan = b, .dir = GORC_RECV, .elem = &x}, {.chan = b, .dir = 7}};
    CHECK_EQ(gorc_select_try(bad, 2), GORC_EINVAL);
    CHECK_EQ(gorc_select(bad, 2), GORC_EINVAL);
    CHECK_EQ(gorc_select_timeout(bad, 2, GORC_MILLISECOND), GORC_EINVAL);
    bad[1].dir = 0;
    CHECK_EQ(gorc_select_try(bad, 2), GORC_EINVAL);
    CHECK_EQ(gorc_select(NULL, 3), GORC_EINVAL);

    gorc_chan_release(b);
    gorc_chan_release(u);
    gorc_chan_release(full);
}

typedef struct delayed {
    gorc_chan *c;
    int64_t delay;
    int value;
    int dir; /* what the helper does: GORC_SEND sends value, GORC_RECV receives */
    int got;
} delayed;

static void delayed_op(void *arg)
{
    delayed *d = arg;
    gorc_sleep(d->delay);
    if (d->dir == GORC_SEND)
        CHECK_EQ(gorc_chan_send(d->c, &d->value), 0);
    else
        CHECK_EQ(gorc_chan_recv(d->c, &d->got), 0);
}

GO_TEST(test_select_timeout)
{
    gorc_chan *u = mkchan(sizeof(int), 0);
    gorc_chan *b = mkchan(sizeof(int), 2);
    int x = 0, v = 8;
    gorc_case cs[3] = {
        {.chan = u, .dir = GORC_RECV, .elem = &x},
        {.chan = b, .dir = GORC_RECV, .elem = &x},
        {.chan = NULL, .dir = GORC_SEND, .elem = &v},
    };

    /* Nothing ready: times out after at least the timeout. */
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_select_timeout(cs, 3, 20 * GORC_MILLISECOND), GORC_ETIMEDOUT);
    int64_t el = gorc_now() - t0;
    CHECK(el >= 20 * GORC_MILLISECOND);
    CHECK(el < 5 * GORC_SECOND);

    /* Timeout <= 0: a poll that says -ETIMEDOUT. */
    t0 = gorc_now();
    CHECK_EQ(gorc_select_timeout(cs, 3, 0), GORC_ETIMEDOUT);
    CHECK_EQ(gorc_select_timeout(cs, 3, -GORC_SECOND), GORC_ETIMEDOUT);
    CHECK_EQ(gorc_select_timeout(cs, 3, INT64_MIN), GORC_ETIMEDOUT);
    CHECK_EQ(gorc_select_timeout(NULL, 0, 0), GORC_ETIMEDOUT);
    CHECK_EQ(gorc_select_timeout(cs + 2, 1, -1), GORC_ETIMEDOUT);
    CHECK(gorc_now() - t0 < GORC_SECOND);
    /* ... but a ready case still wins. */
    CHECK_EQ(gorc_chan_send(b, &v), 0);
    CHECK_EQ(gorc_select_timeout(cs, 3, 0), 1);
    CHECK_EQ(x, 8);
    CHECK_EQ(gorc_chan_send(b, &v), 0);
    CHECK_EQ(gorc_select_timeout(cs, 3, -5), 1);

    /* A value that arrives before the deadline wins, well before it. */
    delayed d = {.c = u, .delay = 5 * GORC_MILLISECOND, .value = 99, .dir = GORC_SEND};
    CHECK_EQ(gorc_go(delayed_op, &d), 0);
    t0 = gorc_now();
    x = 0;
    CHECK_EQ(gorc_select_timeout(cs, 3, 10 * GORC_SECOND), 0);
    CHECK_EQ(x, 99);
    CHECK(gorc_now() - t0 < 5 * GORC_SECOND);

    /* A send case with a timeout, taken by a late receiver. */
    int out = 1234;
    gorc_case sc[2] = {{.chan = u, .dir = GORC_SEND, .elem = &out},
                       {.chan = NULL, .dir = GORC_RECV}};
    d = (delayed){.c = u, .delay = 5 * GORC_MILLISECOND, .dir = GORC_RECV};
    CHECK_EQ(gorc_go(delayed_op, &d), 0);
    CHECK_EQ(gorc_select_timeout(sc, 2, 10 * GORC_SECOND), 0);
    /* The helper stored the value before finishing; wait until it is gone. */
    wait_count(1);
    CHECK_EQ(d.got, 1234);

    /* Zero cases, or only NULL channels, with a timeout: a sleep. */
    t0 = gorc_now();
    CHECK_EQ(gorc_select_timeout(NULL, 0, 10 * GORC_MILLISECOND), GORC_ETIMEDOUT);
    el = gorc_now() - t0;
    CHECK(el >= 10 * GORC_MILLISECOND && el < 5 * GORC_SECOND);
    t0 = gorc_now();
    CHECK_EQ(gorc_select_timeout(cs + 2, 1, 10 * GORC_MILLISECOND), GORC_ETIMEDOUT);
    el = gorc_now() - t0;
    CHECK(el >= 10 * GORC_MILLISECOND && el < 5 * GORC_SECOND);

    /* Many short timeouts in a row (the goroutine's timer is re-armed each time). */
    for (int i = 0; i < 200; i++)
        CHECK_EQ(gorc_select_timeout(cs, 2, 10 * GORC_MICROSECOND), GORC_ETIMEDOUT);

    gorc_chan_release(u);
    gorc_chan_release(b);
}

GO_TEST(test_nil_cases_never_chosen)
{
    gorc_chan *b = mkchan(sizeof(int), 1);
    int x = 0, v = 5;
    gorc_case cs[4] = {
        {.chan = NULL, .dir = GORC_RECV, .elem = &x},
        {.chan = b, .dir = GORC_RECV, .elem = &x},
        {.chan = NULL, .dir = GORC_SEND, .elem = &v},
        {.chan = NULL, .dir = GORC_RECV, .elem = NULL},
    };
    for (int i = 0; i < 1000; i++) {
        CHECK_EQ(gorc_chan_send(b, &i), 0);
        CHECK_EQ(gorc_select(cs, 4), 1);
        CHECK_EQ(x, i);
    }
    /* Blocking with NULL cases, woken by the one real channel. */
    delayed d = {.c = b, .delay = 2 * GORC_MILLISECOND, .value = 77, .dir = GORC_SEND};
    CHECK_EQ(gorc_go(delayed_op, &d), 0);
    CHECK_EQ(gorc_select(cs, 4), 1);
    CHECK_EQ(x, 77);
    wait_count(1);
    gorc_chan_release(b);
}

/* ------------------------------------------------------------------------------------------
 * Mixed directions, one channel in several cases
 * ---------------------------------------------------------------------------------------- */

GO_TEST(test_send_recv_mixed)
{
    gorc_chan *in = mkchan(sizeof(int), 0);
    gorc_chan *out = mkchan(sizeof(int), 0);
    int x = 0, v = 31;
    gorc_case cs[2] = {{.chan = in, .dir = GORC_RECV, .elem = &x},
                       {.chan = out, .dir = GORC_SEND, .elem = &v}};
    /* A receiver on out arrives: the send case is taken. */
    delayed d = {.c = out, .delay = 2 * GORC_MILLISECOND, .dir = GORC_RECV};
    CHECK_EQ(gorc_go(delayed_op, &d), 0);
    CHECK_EQ(gorc_select(cs, 2), 1);
    wait_count(1);
    CHECK_EQ(d.got, 31);
    /* A sender on in arrives: the receive case is taken. */
    d = (delayed){.c = in, .delay = 2 * GORC_MILLISECOND, .value = 41, .dir = GORC_SEND};
    CHECK_EQ(gorc_go(delayed_op, &d), 0);
    CHECK_EQ(gorc_select(cs, 2), 0);
    CHECK_EQ(x, 41);
    wait_count(1);
    /* Both partners already waiting: either may be chosen, the other still waits. */
    delayed a = {.c = out, .dir = GORC_RECV};
    delayed b = {.c = in, .value = 51, .dir = GORC_SEND};
    CHECK_EQ(gorc_go(delayed_op, &a), 0);
    CHECK_EQ(gorc_go(delayed_op, &b), 0);
    gorc_sleep(5 * GORC_MILLISECOND);
    int r = gorc_select(cs, 2);
    CHECK(r == 0 || r == 1);
    r = gorc_select(cs, 2); /* the other one */
    CHECK(r == 0 || r == 1);
    CHECK_EQ(x, 51);
    wait_count(1);
    CHECK_EQ(a.got, 31);
    gorc_chan_release(in);
    gorc_chan_release(out);
}

typedef struct pairsel {
    gorc_chan *c, *stop;
    int id;
    _Atomic long *sent, *recvd;
    gorc_chan *done;
} pairsel;

/* Select on {recv c, send c, recv stop} - both directions on one unbuffered channel - until
 * stop is closed. A select can only pair with another goroutine's select, never with itself,
 * so every completed send has a matching receive. */
static void pair_selector(void *arg)
{
    pairsel *p = arg;
    for (int i = 0;; i++) {
        int in = -1, out = p->id * 1000000 + i % 1000000;
        gorc_case cs[3] = {{.chan = p->c, .dir = GORC_RECV, .elem = &in},
                           {.chan = p->c, .dir = GORC_SEND, .elem = &out},
                           {.chan = p->stop, .dir = GORC_RECV}};
        int r = gorc_select(cs, 3);
        if (r == 2) {
            CHECK(cs[2].closed);
            break;
        }
        if (r == 0) {
            CHECK(in >= 0);
            CHECK(in / 1000000 != p->id); /* not from ourselves */
            atomic_fetch_add(p->recvd, 1);
        } else {
            CHECK_EQ(r, 1);
            atomic_fetch_add(p->sent, 1);
        }
    }
    CHECK_EQ(gorc_chan_send(p->done, NULL), 0);
}

GO_TEST(test_same_channel_several_cases)
{
    /* Two receive cases on one buffered channel: the value goes to one of them. */
    gorc_chan *c = mkchan(sizeof(int), 1);
    int a = 0, b = 0, v = 6;
    gorc_case cs[3] = {{.chan = c, .dir = GORC_RECV, .elem = &a},
                       {.chan = c, .dir = GORC_RECV, .elem = &b},
                       {.chan = c, .dir = GORC_SEND, .elem = &v}};
    long counts[2] = {0};
    long n = scaled(20000);
    for (long i = 0; i < n; i++) {
        a = b = 0;
        CHECK_EQ(gorc_chan_send(c, &v), 0);
        int r = gorc_select(cs, 2);
        CHECK(r == 0 || r == 1);
        CHECK_EQ(r == 0 ? a : b, 6);
        CHECK_EQ(r == 0 ? b : a, 0);
        counts[r]++;
    }
    check_uniform(counts, 2, n);
    /* Receive and send on the same buffered channel: whichever is possible. */
    CHECK_EQ(gorc_select(cs, 3), 2); /* empty: only the send */
    CHECK_EQ(gorc_chan_len(c), 1);
    a = b = 0;
    int r = gorc_select(cs, 3); /* full: only a receive */
    CHECK(r == 0 || r == 1);
    CHECK_EQ(a + b, 6);

    /* Blocking on two cases of one channel, woken by a sender: one case fires, the other
     * sudog is unqueued (a second send must then find no stale waiter). */
    gorc_chan *u = mkchan(sizeof(int), 0);
    cs[0].chan = cs[1].chan = u;
    delayed d = {.c = u, .delay = 2 * GORC_MILLISECOND, .value = 88, .dir = GORC_SEND};
    a = b = 0;
    CHECK_EQ(gorc_go(delayed_op, &d), 0);
    r = gorc_select(cs, 2);
    CHECK(r == 0 || r == 1);
    CHECK_EQ(a + b, 88);
    wait_count(1);
    CHECK_EQ(gorc_chan_trysend(u, &v), GORC_EAGAIN);

    /* Selects pairing with each other on {recv u, send u}. */
    enum { G = 4 };
    _Atomic long sent = 0, recvd = 0;
    long target = scaled(20000);
    gorc_chan *done = mkchan(0, G);
    gorc_chan *stop = mkchan(0, 0);
    pairsel ps[G];
    for (int i = 0; i < G; i++) {
        ps[i] = (pairsel){u, stop, i, &sent, &recvd, done};
        CHECK_EQ(gorc_go(pair_selector, &ps[i]), 0);
    }
    int64_t deadline = gorc_now() + 20 * GORC_SECOND;
    while (atomic_load(&sent) < target) {
        CHECK(gorc_now() < deadline);
        gorc_sleep(GORC_MILLISECOND);
    }
    CHECK_EQ(gorc_chan_close(stop), 0);
    for (int i = 0; i < G; i++)
        CHECK_EQ(gorc_chan_recv(done, NULL), 0);
    CHECK_EQ(atomic_load(&sent), atomic_load(&recvd));
    gorc_chan_release(done);
    gorc_chan_release(stop);
    gorc_chan_release(c);
    gorc_chan_release(u);
}

/* ------------------------------------------------------------------------------------------
 * Closed channels
 * ---------------------------------------------------------------------------------------- */

static void close_later(void *arg)
{
    gorc_sleep(3 * GORC_MILLISECOND);
    CHECK_EQ(gorc_chan_close(arg), 0);
}

GO_TEST(test_select_closed)
{
    gorc_chan *c = mkchan(sizeof(long), 2);
    gorc_chan *never = mkchan(sizeof(long), 0);
    long v = 5, x = -1, y = -1;
    CHECK_EQ(gorc_chan_send(c, &v), 0);
    CHECK_EQ(gorc_chan_close(c), 0);
    gorc_case cs[2] = {{.chan = never, .dir = GORC_RECV, .elem = &y},
                       {.chan = c, .dir = GORC_RECV, .elem = &x}};
    /* The buffered value first, not marked closed. */
    cs[1].closed = true; /* an input value is ignored */
    CHECK_EQ(gorc_select(cs, 2), 1);
    CHECK(!cs[1].closed);
    CHECK(!cs[0].closed);
    CHECK_EQ(x, 5);
    /* Then closed with a zero value, every time. */
    for (int i = 0; i < 10; i++) {
        x = -1;
        CHECK_EQ(gorc_select(cs, 2), 1);
        CHECK(cs[1].closed);
        CHECK(!cs[0].closed);
        CHECK_EQ(x, 0);
        CHECK_EQ(y, -1);
        x = -1;
        CHECK_EQ(gorc_select_try(cs, 2), 1);
        CHECK(cs[1].closed);
        CHECK_EQ(x, 0);
        CHECK_EQ(gorc_select_timeout(cs, 2, GORC_MILLISECOND), 1);
        CHECK(cs[1].closed);
    }
    /* A NULL elem is fine. */
    cs[1].elem = NULL;
    CHECK_EQ(gorc_select(cs, 2), 1);
    CHECK(cs[1].closed);

    /* A send case on a closed channel is chosen with closed set and sends nothing. */
    gorc_chan *s = mkchan(sizeof(long), 4);
    CHECK_EQ(gorc_chan_close(s), 0);
    gorc_case sc[2] = {{.chan = never, .dir = GORC_RECV, .elem = &y},
                       {.chan = s, .dir = GORC_SEND, .elem = &v}};
    CHECK_EQ(gorc_select(sc, 2), 1);
    CHECK(sc[1].closed);
    CHECK_EQ(gorc_chan_len(s), 0);
    CHECK_EQ(gorc_select_try(sc, 2), 1);
    CHECK(sc[1].closed);

    /* Closing wakes a blocked select: receive case. */
    gorc_chan *w = mkchan(sizeof(long), 0);
    gorc_case wc[2] = {{.chan = never, .dir = GORC_RECV, .elem = &y},
                       {.chan = w, .dir = GORC_RECV, .elem = &x}};
    x = -1;
    CHECK_EQ(gorc_go(close_later, w), 0);
    CHECK_EQ(gorc_select(wc, 2), 1);
    CHECK(wc[1].closed);
    CHECK(!wc[0].closed);
    CHECK_EQ(x, 0);
    wait_count(1);
    gorc_chan_release(w);

    /* ... and a send case (unbuffered, nobody receiving). */
    w = mkchan(sizeof(long), 0);
    gorc_case wsc[2] = {{.chan = never, .dir = GORC_RECV, .elem = &y},
                        {.chan = w, .dir = GORC_SEND, .elem = &v}};
    CHECK_EQ(gorc_go(close_later, w), 0);
    CHECK_EQ(gorc_select_timeout(wsc, 2, 10 * GORC_SECOND), 1);
    CHECK(wsc[1].closed);
    wait_count(1);
    gorc_chan_release(w);

    /* Several closed channels: the choice among them is still random. */
    gorc_chan *k[3];
    gorc_case kc[3];
    for (int i = 0; i < 3; i++) {
        k[i] = mkchan(0, 0);
        CHECK_EQ(gorc_chan_close(k[i]), 0);
        kc[i] = (gorc_case){.chan = k[i], .dir = GORC_RECV};
    }
    long counts[3] = {0};
    long n = scaled(30000);
    for (long i = 0; i < n; i++) {
        int r = gorc_select(kc, 3);
        CHECK(r >= 0 && r < 3 && kc[r].closed);
        counts[r]++;
    }
    check_uniform(counts, 3, n);
    for (int i = 0; i < 3; i++)
        gorc_chan_release(k[i]);

    gorc_chan_release(c);
    gorc_chan_release(s);
    gorc_chan_release(never);
}

/* ------------------------------------------------------------------------------------------
 * Racing selects with exact accounting
 * ---------------------------------------------------------------------------------------- */

enum { RCH = 3 };

typedef struct race {
    gorc_chan *c[RCH];
    gorc_chan *done;
    long n; /* values 0..n-1 */
    int nprod;
    _Atomic int next_id;
    _Atomic uint64_t *seen;
    _Atomic long count, timeouts_send, timeouts_recv;
    _Atomic long long sum;
} race;

static void race_producer(void *arg)
{
    race *x = arg;
    int id = atomic_fetch_add(&x->next_id, 1);
    long lo = x->n * id / x->nprod, hi = x->n * (id + 1) / x->nprod;
    for (long v = lo; v < hi; v++) {
        long a = v, b = v, c = v; /* one buffer per case */
        gorc_case cs[RCH + 1] = {
            {.chan = x->c[0], .dir = GORC_SEND, .elem = &a},
            {.chan = x->c[1], .dir = GORC_SEND, .elem = &b},
            {.chan = x->c[2], .dir = GORC_SEND, .elem = &c},
            {.chan = NULL, .dir = GORC_SEND, .elem = &v},
        };
        for (;;) {
            int r;
            if (v % 3 == 0)
                r = gorc_select(cs, RCH + 1);
            else
                r = gorc_select_timeout(cs, RCH + 1, (v % 3 == 1 ? 1 : 50) * GORC_MICROSECOND);
            if (r == GORC_ETIMEDOUT) {
                atomic_fetch_add(&x->timeouts_send, 1);
                continue; /* not sent: retry the same value */
            }
            CHECK(r >= 0 && r < RCH);
            CHECK(!cs[r].closed);
            break;
        }
        if ((v - lo) % 1024 == 1023)
            gorc_sleep(200 * GORC_MICROSECOND); /* a lull: let receive timeouts fire */
    }
    CHECK_EQ(gorc_chan_send(x->done, NULL), 0);
}

static void race_consumer(void *arg)
{
    race *x = arg;
    long vals[RCH];
    gorc_case cs[RCH];
    for (int i = 0; i < RCH; i++)
        cs[i] = (gorc_case){.chan = x->c[i], .dir = GORC_RECV, .elem = &vals[i]};
    int open = RCH;
    long count = 0, k = 0;
    long long sum = 0;
    while (open > 0) {
        int r;
        if (k++ % 2 == 0)
            r = gorc_select(cs, RCH);
        else
            r = gorc_select_timeout(cs, RCH,
                                    (k % 3 == 1   ? 1
                                     : k % 3 == 2 ? 20
                                                  : 300) *
                                        GORC_MICROSECOND);
        if (r == GORC_ETIMEDOUT) {
            atomic_fetch_add(&x->timeouts_recv, 1);
            continue;
        }
        CHECK(r >= 0 && r < RCH);
        if (cs[r].closed) {
            CHECK_EQ(vals[r], 0);
            cs[r].chan = NULL; /* Go's idiom: a nil channel is never ready again */
            open--;
            continue;
        }
        long v = vals[r];
        CHECK(v >= 0 && v < x->n);
        uint64_t bit = (uint64_t)1 << (v % 64);
        uint64_t old = atomic_fetch_or(&x->seen[v / 64], bit);
        CHECK((old & bit) == 0);
        count++;
        sum += v;
        if (count % 512 == 0)
            gorc_sleep(100 * GORC_MICROSECOND); /* back-pressure: let send timeouts fire */
    }
    atomic_fetch_add(&x->count, count);
    atomic_fetch_add(&x->sum, sum);
    CHECK_EQ(gorc_chan_send(x->done, NULL), 0);
}

GO_TEST(test_racing_selects)
{
    int64_t base = base_count();
    enum { NP = 4, NC = 4 };
    race x = {.n = scaled(100000), .nprod = NP};
    x.c[0] = mkchan(sizeof(long), 0);
    x.c[1] = mkchan(sizeof(long), 1);
    x.c[2] = mkchan(sizeof(long), 16);
    x.done = mkchan(0, 0);
    x.seen = calloc((size_t)(x.n / 64 + 1), sizeof(uint64_t));
    CHECK(x.seen != NULL);
    for (int i = 0; i < NC; i++)
        CHECK_EQ(gorc_go(race_consumer, &x), 0);
    for (int i = 0; i < NP; i++)
        CHECK_EQ(gorc_go(race_producer, &x), 0);
    for (int i = 0; i < NP; i++)
        CHECK_EQ(gorc_chan_recv(x.done, NULL), 0);
    for (int i = 0; i < RCH; i++)
        CHECK_EQ(gorc_chan_close(x.c[i]), 0);
    for (int i = 0; i < NC; i++)
        CHECK_EQ(gorc_chan_recv(x.done, NULL), 0);
    CHECK_EQ(atomic_load(&x.count), x.n);
    CHECK_EQ(atomic_load(&x.sum), (long long)x.n * (x.n - 1) / 2);
    for (long v = 0; v < x.n; v++)
        CHECK(atomic_load(&x.seen[v / 64]) & ((uint64_t)1 << (v % 64)));
    if (getenv("GORC_TEST_VERBOSE"))
        fprintf(stderr, "racing selects: %ld send timeouts, %ld receive timeouts\n",
                atomic_load(&x.timeouts_send), atomic_load(&x.timeouts_recv));
    free(x.seen);
    for (int i = 0; i < RCH; i++)
        gorc_chan_release(x.c[i]);
    gorc_chan_release(x.done);
    wait_count(base);
}

/* ------------------------------------------------------------------------------------------
 * Many cases (more than the on-stack arrays hold)
 * ---------------------------------------------------------------------------------------- */

enum { MANY = 64 };

typedef struct many_ctx {
    gorc_chan **c;
    int which;
    int value;
} many_ctx;

static void many_sender(void *arg)
{
    many_ctx *m = arg;
    gorc_sleep(2 * GORC_MILLISECOND);
    CHECK_EQ(gorc_chan_send(m->c[m->which], &m->value), 0);
}

GO_TEST(test_many_cases)
{
    gorc_chan *c[MANY];
    gorc_case cs[MANY];
    int vals[MANY];
    for (int i = 0; i < MANY; i++) {
        c[i] = mkchan(sizeof(int), 1);
        cs[i] = (gorc_case){.chan = c[i], .dir = GORC_RECV, .elem = &vals[i]};
    }
    CHECK_EQ(gorc_select_try(cs, MANY), GORC_EAGAIN);
    CHECK_EQ(gorc_select_timeout(cs, MANY, GORC_MILLISECOND), GORC_ETIMEDOUT);
    /* Exactly one ready. */
    for (int k = 0; k < MANY; k++) {
        int v = 1000 + k;
        CHECK_EQ(gorc_chan_send(c[k], &v), 0);
        CHECK_EQ(gorc_select(cs, MANY), k);
        CHECK_EQ(vals[k], 1000 + k);
    }
    /* All ready: uniform. */
    for (int i = 0; i < MANY; i++)
        CHECK_EQ(gorc_chan_send(c[i], &i), 0);
    long counts[MANY] = {0};
    long n = scaled(64000);
    if (n < 64 * 50)
        n = 64 * 50;
    for (long it = 0; it < n; it++) {
        int r = gorc_select(cs, MANY);
        CHECK(r >= 0 && r < MANY);
        CHECK_EQ(vals[r], r);
        counts[r]++;
        CHECK_EQ(gorc_chan_trysend(c[r], &r), 0);
    }
    check_uniform(counts, MANY, n);
    for (int i = 0; i < MANY; i++)
        CHECK_EQ(gorc_chan_tryrecv(c[i], NULL), 0);
    /* Blocking with 64 cases, woken by a send on one of them; some cases NULL, some sends
     * on full channels. */
    for (int rep = 0; rep < 20; rep++) {
        int which = (rep * 37 + 5) % MANY;
        for (int i = 0; i < MANY; i++) {
            cs[i].chan = (i % 5 == 3 && i != which) ? NULL : c[i];
            cs[i].dir = GORC_RECV;
        }
        int fill = 0;
        int full = (which + 1) % MANY; /* a send case that cannot proceed */
        CHECK_EQ(gorc_chan_send(c[full], &fill), 0);
        cs[full].chan = c[full];
        cs[full].dir = GORC_SEND;
        cs[full].elem = &fill;
        many_ctx m = {c, which, 5000 + rep};
        CHECK_EQ(gorc_go(many_sender, &m), 0);
        int r = rep % 2 ? gorc_select(cs, MANY) : gorc_select_timeout(cs, MANY, 10 * GORC_SECOND);
        CHECK_EQ(r, which);
        CHECK_EQ(vals[which], 5000 + rep);
        cs[full].elem = &vals[full];
        CHECK_EQ(gorc_chan_recv(c[full], NULL), 0);
        wait_count(1);
    }
    for (int i = 0; i < MANY; i++)
        gorc_chan_release(c[i]);
}

GO_TEST(test_zero_cases_sleep)
{
    for (int i = 0; i < 3; i++) {
        int64_t t0 = gorc_now();
        CHECK_EQ(gorc_select_timeout(NULL, 0, 5 * GORC_MILLISECOND), GORC_ETIMEDOUT);
        int64_t el = gorc_now() - t0;
        CHECK(el >= 5 * GORC_MILLISECOND);
        CHECK(el < 5 * GORC_SECOND);
    }
    CHECK_EQ(gorc_select_try(NULL, 0), GORC_EAGAIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fairness_recv),
        cmocka_unit_test(test_fairness_mixed),
        cmocka_unit_test(test_select_try),
        cmocka_unit_test(test_select_timeout),
        cmocka_unit_test(test_nil_cases_never_chosen),
        cmocka_unit_test(test_send_recv_mixed),
        cmocka_unit_test(test_same_channel_several_cases),
        cmocka_unit_test(test_select_closed),
        cmocka_unit_test(test_racing_selects),
        cmocka_unit_test(test_many_cases),
        cmocka_unit_test(test_zero_cases_sleep),
    };
    return cmocka_run_group_tests_name("select", tests, NULL, NULL);
}
