/*
 * test_chan.c - channels (cmocka; bodies run as goroutines).
 *
 * Covers: a concurrent prime sieve (first 100 primes, 2..541); FIFO order per sender over
 * unbuffered and buffered channels; every close rule (send on closed, double close,
 * close(NULL), draining a closed buffer, zeroed element, close waking every blocked receiver
 * and sender); trysend/tryrecv (full, empty, no partner, NULL channel); len/cap; element
 * sizes 0, 1, 8, 100 and 4096; N producers x M consumers with exact accounting (every value
 * received exactly once); reference counting. Semantics follow Go 1.19.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <string.h>

static gorc_chan *mkchan(size_t elem, size_t cap)
{
    gorc_chan *c = NULL;
    CHECK_EQ(gorc_chan_new(&c, elem, cap), 0);
    CHECK(c != NULL);
    return c;
}

/* ------------------------------------------------------------------------------------------
 * Prime sieve (Go's classic): a generator and one filter goroutine per prime found.
 * Shutdown runs backwards: main closes the last channel, each filter whose send fails closes
 * its input, which fails the send of the goroutine before it.
 * ---------------------------------------------------------------------------------------- */

typedef struct sieve_filter {
    gorc_chan *in, *out;
    int prime;
} sieve_filter;

static void sieve_gen(void *arg)
{
    gorc_chan *out = arg;
    for (int i = 2;; i++)
        if (gorc_chan_send(out, &i) != 0)
            break;
    gorc_chan_release(out);
}

static void sieve_filter_fn(void *arg)
{
    sieve_filter *f = arg;
    int v;
    for (;;) {
        if (gorc_chan_recv(f->in, &v) != 0) {
            gorc_chan_close(f->out); /* upstream gone (not used by this shutdown order) */
            break;
        }
        if (v % f->prime != 0 && gorc_chan_send(f->out, &v) != 0) {
            CHECK_EQ(gorc_chan_close(f->in), 0); /* downstream gone: stop upstream */
            break;
        }
    }
    gorc_chan_release(f->in);
    gorc_chan_release(f->out);
    free(f);
}

static int is_prime(int n)
{
    if (n < 2)
        return 0;
    for (int d = 2; d * d <= n; d++)
        if (n % d == 0)
            return 0;
    return 1;
}

GO_TEST(test_prime_sieve)
{
    int64_t base = base_count();
    gorc_chan *ch = mkchan(sizeof(int), 0);
    CHECK_EQ(gorc_go(sieve_gen, gorc_chan_retain(ch)), 0);
    int expect = 1;
    for (int i = 0; i < 100; i++) {
        int prime;
        CHECK_EQ(gorc_chan_recv(ch, &prime), 0);
        do
            expect++;
        while (!is_prime(expect));
        CHECK_EQ(prime, expect);
        sieve_filter *f = malloc(sizeof *f);
        CHECK(f != NULL);
        f->in = gorc_chan_retain(ch);
        f->out = mkchan(sizeof(int), 0);
        f->prime = prime;
        gorc_chan_release(ch);
        ch = gorc_chan_retain(f->out);
        CHECK_EQ(gorc_go(sieve_filter_fn, f), 0);
    }
    CHECK_EQ(expect, 541);
    CHECK_EQ(gorc_count(), base + 101);
    CHECK_EQ(gorc_chan_close(ch), 0);
    gorc_chan_release(ch);
    wait_count(base);
}

/* ------------------------------------------------------------------------------------------
 * FIFO per sender
 * ---------------------------------------------------------------------------------------- */

typedef struct seqmsg {
    int sender;
    int seq;
} seqmsg;

typedef struct fifo_ctx {
    gorc_chan *c;
    gorc_chan *done;
    int id, n;
} fifo_ctx;

static void fifo_sender(void *arg)
{
    fifo_ctx *x = arg;
    for (int i = 0; i < x->n; i++) {
        seqmsg m = {x->id, i};
        CHECK_EQ(gorc_chan_send(x->c, &m), 0);
        if (i % 97 == 0)
            gorc_yield();
    }
    CHECK_EQ(gorc_chan_send(x->done, NULL), 0);
}

static void fifo_run(size_t cap)
{
    enum { S = 6 };
    int n = (int)scaled(20000);
    gorc_chan *c = mkchan(sizeof(seqmsg), cap);
    gorc_chan *done = mkchan(0, S);
    fifo_ctx ctx[S];
    for (int s = 0; s < S; s++) {
        ctx[s] = (fifo_ctx){c, done, s, n};
        CHECK_EQ(gorc_go(fifo_sender, &ctx[s]), 0);
    }
    int next[S] = {0};
    for (long k = 0; k < (long)S * n; k++) {
        seqmsg m;
        CHECK_EQ(gorc_chan_recv(c, &m), 0);
        CHECK(m.sender >= 0 && m.sender < S);
        CHECK_EQ(m.seq, next[m.sender]);
        next[m.sender]++;
    }
    for (int s = 0; s < S; s++) {
        CHECK_EQ(next[s], n);
        CHECK_EQ(gorc_chan_recv(done, NULL), 0);
    }
    CHECK_EQ(gorc_chan_tryrecv(c, NULL), GORC_EAGAIN);
    gorc_chan_release(c);
    gorc_chan_release(done);
}

GO_TEST(test_fifo_per_sender)
{
    fifo_run(0);
    fifo_run(1);
    fifo_run(3);
    fifo_run(64);
}

/* ------------------------------------------------------------------------------------------
 * Close rules
 * ---------------------------------------------------------------------------------------- */

GO_TEST(test_close_basic)
{
    CHECK_EQ(gorc_chan_close(NULL), GORC_EINVAL);
    CHECK_EQ(GORC_ECLOSED, -EPIPE);

    for (size_t cap = 0; cap <= 4; cap += 4) {
        gorc_chan *c = mkchan(sizeof(int), cap);
        CHECK_EQ(gorc_chan_close(c), 0);
        CHECK_EQ(gorc_chan_close(c), GORC_ECLOSED);
        int v = 7;
        CHECK_EQ(gorc_chan_send(c, &v), GORC_ECLOSED);
        CHECK_EQ(gorc_chan_trysend(c, &v), GORC_ECLOSED);
        v = 0x5a5a5a5a;
        CHECK_EQ(gorc_chan_recv(c, &v), GORC_ECLOSED);
        CHECK_EQ(v, 0);
        v = 0x5a5a5a5a;
        CHECK_EQ(gorc_chan_tryrecv(c, &v), GORC_ECLOSED);
        CHECK_EQ(v, 0);
        CHECK_EQ(gorc_chan_recv(c, NULL), GORC_ECLOSED);
        CHECK_EQ(gorc_chan_len(c), 0);
        CHECK_EQ(gorc_chan_cap(c), cap);
        gorc_chan_release(c);
    }
}

GO_TEST(test_close_drains_buffer)
{
    gorc_chan *c = mkchan(sizeof(int), 5);
    for (int i = 1; i <= 3; i++)
        CHECK_EQ(gorc_chan_send(c, &i), 0);
    CHECK_EQ(gorc_chan_close(c), 0);
    CHECK_EQ(gorc_chan_len(c), 3);
    CHECK_EQ(gorc_chan_cap(c), 5);
    int four = 4;
    CHECK_EQ(gorc_chan_send(c, &four), GORC_ECLOSED);
    CHECK_EQ(gorc_chan_len(c), 3);
    int v;
    CHECK_EQ(gorc_chan_recv(c, &v), 0);
    CHECK_EQ(v, 1);
    CHECK_EQ(gorc_chan_tryrecv(c, &v), 0);
    CHECK_EQ(v, 2);
    CHECK_EQ(gorc_chan_recv(c, &v), 0);
    CHECK_EQ(v, 3);
    CHECK_EQ(gorc_chan_len(c), 0);
    v = -1;
    CHECK_EQ(gorc_chan_recv(c, &v), GORC_ECLOSED);
    CHECK_EQ(v, 0);
    v = -1;
    CHECK_EQ(gorc_chan_recv(c, &v), GORC_ECLOSED); /* and again: closed stays closed */
    CHECK_EQ(v, 0);
    gorc_chan_release(c);

    /* A full buffer of large elements, closed: every byte of each comes out, then zeros. */
    gorc_chan *b = mkchan(100, 2);
    unsigned char buf[100];
    for (int k = 0; k < 2; k++) {
        memset(buf, 0x10 + k, sizeof buf);
        CHECK_EQ(gorc_chan_send(b, buf), 0);
    }
    CHECK_EQ(gorc_chan_trysend(b, buf), GORC_EAGAIN);
    CHECK_EQ(gorc_chan_close(b), 0);
    for (int k = 0; k < 2; k++) {
        memset(buf, 0xff, sizeof buf);
        CHECK_EQ(gorc_chan_recv(b, buf), 0);
        for (size_t j = 0; j < sizeof buf; j++)
            CHECK_EQ(buf[j], 0x10 + k);
    }
    memset(buf, 0xff, sizeof buf);
    CHECK_EQ(gorc_chan_recv(b, buf), GORC_ECLOSED);
    for (size_t j = 0; j < sizeof buf; j++)
        CHECK_EQ(buf[j], 0);
    gorc_chan_release(b);
}

typedef struct waker_ctx {
    gorc_chan *c;       /* the channel to block on */
    gorc_chan *started; /* signalled just before blocking */
    gorc_chan *results; /* int results */
    int index;
} waker_ctx;

static void blocked_receiver(void *arg)
{
    waker_ctx *x = arg;
    long v[4] = {-1, -1, -1, -1};
    CHECK_EQ(gorc_chan_send(x->started, NULL), 0);
    int rc = gorc_chan_recv(x->c, v);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(v[i], 0); /* zeroed by close */
    CHECK_EQ(gorc_chan_send(x->results, &rc), 0);
}

static void blocked_sender(void *arg)
{
    waker_ctx *x = arg;
    long v[4] = {x->index, x->index, x->index, x->index};
    CHECK_EQ(gorc_chan_send(x->started, NULL), 0);
    int rc = gorc_chan_send(x->c, v);
    CHECK_EQ(gorc_chan_send(x->results, &rc), 0);
}

/* n goroutines block on c with fn; close c; each must see -EPIPE. */
static void close_wakes(gorc_chan *c, gorc_fn fn, int n)
{
    gorc_chan *started = mkchan(0, 0);
    gorc_chan *results = mkchan(sizeof(int), (size_t)n);
    waker_ctx *ctx = calloc((size_t)n, sizeof *ctx);
    CHECK(ctx != NULL);
    for (int i = 0; i < n; i++) {
        ctx[i] = (waker_ctx){c, started, results, i + 1};
        CHECK_EQ(gorc_go(fn, &ctx[i]), 0);
    }
    for (int i = 0; i < n; i++)
        CHECK_EQ(gorc_chan_recv(started, NULL), 0);
    gorc_sleep(20 * GORC_MILLISECOND); /* let them all get to their blocking call */
    CHECK_EQ(gorc_chan_len(results), 0);
    CHECK_EQ(gorc_chan_close(c), 0);
    for (int i = 0; i < n; i++) {
        int rc = 0;
        CHECK_EQ(gorc_chan_recv(results, &rc), 0);
        CHECK_EQ(rc, GORC_ECLOSED);
    }
    free(ctx);
    gorc_chan_release(started);
    gorc_chan_release(results);
}

GO_TEST(test_close_wakes_receivers)
{
    int64_t base = base_count();
    for (size_t cap = 0; cap <= 8; cap += 8) {
        gorc_chan *c = mkchan(4 * sizeof(long), cap);
        close_wakes(c, blocked_receiver, 50);
        gorc_chan_release(c);
    }
    wait_count(base);
}

GO_TEST(test_close_wakes_senders)
{
    int64_t base = base_count();
    gorc_chan *c = mkchan(4 * sizeof(long), 0);
    close_wakes(c, blocked_sender, 50);
    gorc_chan_release(c);

    /* Full buffer: senders block, close fails them all, the buffered values survive. */
    c = mkchan(4 * sizeof(long), 2);
    long v[4] = {100, 100, 100, 100};
    CHECK_EQ(gorc_chan_send(c, v), 0);
    v[0] = 101;
    CHECK_EQ(gorc_chan_send(c, v), 0);
    close_wakes(c, blocked_sender, 30);
    CHECK_EQ(gorc_chan_len(c), 2);
    CHECK_EQ(gorc_chan_recv(c, v), 0);
    CHECK_EQ(v[0], 100);
    CHECK_EQ(gorc_chan_recv(c, v), 0);
    CHECK_EQ(v[0], 101);
    CHECK_EQ(gorc_chan_recv(c, v), GORC_ECLOSED);
    CHECK_EQ(v[0], 0);
    gorc_chan_release(c);
    wait_count(base);
}

/* ------------------------------------------------------------------------------------------
 * Non-blocking operations, len and cap
 * ---------------------------------------------------------------------------------------- */

static void recv_one(void *arg)
{
    gorc_chan **cs = arg; /* cs[0]: receive from, cs[1]: report the value on */
    int v = 0;
    CHECK_EQ(gorc_chan_recv(cs[0], &v), 0);
    CHECK_EQ(gorc_chan_send(cs[1], &v), 0);
}

static void send_one(void *arg)
{
    gorc_chan **cs = arg;
    int v = 4242;
    CHECK_EQ(gorc_chan_send(cs[0], &v), 0);
    CHECK_EQ(gorc_chan_send(cs[1], &v), 0);
}

GO_TEST(test_try_ops)
{
    int v = 1;
    CHECK_EQ(gorc_chan_trysend(NULL, &v), GORC_EAGAIN);
    CHECK_EQ(gorc_chan_tryrecv(NULL, &v), GORC_EAGAIN);
    CHECK_EQ(gorc_chan_len(NULL), 0);
    CHECK_EQ(gorc_chan_cap(NULL), 0);

    /* Unbuffered, nobody there. */
    gorc_chan *u = mkchan(sizeof(int), 0);
    CHECK_EQ(gorc_chan_trysend(u, &v), GORC_EAGAIN);
    CHECK_EQ(gorc_chan_tryrecv(u, &v), GORC_EAGAIN);
    CHECK_EQ(gorc_chan_len(u), 0);
    CHECK_EQ(gorc_chan_cap(u), 0);

    /* Unbuffered with a blocked receiver: trysend succeeds once it is there. */
    gorc_chan *report = mkchan(sizeof(int), 1);
    gorc_chan *cs[2] = {u, report};
    CHECK_EQ(gorc_go(recv_one, cs), 0);
    int64_t deadline = gorc_now() + 10 * GORC_SECOND;
    v = 777;
    int rc;
    while ((rc = gorc_chan_trysend(u, &v)) == GORC_EAGAIN) {
        CHECK(gorc_now() < deadline);
        gorc_sleep(100 * GORC_MICROSECOND);
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(gorc_chan_recv(report, &v), 0);
    CHECK_EQ(v, 777);

    /* Unbuffered with a blocked sender: tryrecv succeeds once it is there. */
    CHECK_EQ(gorc_go(send_one, cs), 0);
    v = 0;
    while ((rc = gorc_chan_tryrecv(u, &v)) == GORC_EAGAIN) {
        CHECK(gorc_now() < deadline);
        gorc_sleep(100 * GORC_MICROSECOND);
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(v, 4242);
    CHECK_EQ(gorc_chan_recv(report, &v), 0);
    CHECK_EQ(gorc_chan_trysend(u, &v), GORC_EAGAIN);
    CHECK_EQ(gorc_chan_tryrecv(u, &v), GORC_EAGAIN);

    /* Buffered: len/cap and the full and empty boundaries. */
    gorc_chan *b = mkchan(sizeof(int), 3);
    CHECK_EQ(gorc_chan_cap(b), 3);
    CHECK_EQ(gorc_chan_tryrecv(b, &v), GORC_EAGAIN);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(gorc_chan_len(b), (size_t)i);
        CHECK_EQ(gorc_chan_trysend(b, &i), 0);
    }
    CHECK_EQ(gorc_chan_len(b), 3);
    CHECK_EQ(gorc_chan_trysend(b, &v), GORC_EAGAIN);
    CHECK_EQ(gorc_chan_len(b), 3);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(gorc_chan_tryrecv(b, &v), 0);
        CHECK_EQ(v, i);
        CHECK_EQ(gorc_chan_len(b), (size_t)(2 - i));
    }
    CHECK_EQ(gorc_chan_tryrecv(b, &v), GORC_EAGAIN);
    /* Wrap around the ring a few times. */
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(gorc_chan_trysend(b, &i), 0);
        CHECK_EQ(gorc_chan_trysend(b, &i), 0);
        CHECK_EQ(gorc_chan_tryrecv(b, &v), 0);
        CHECK_EQ(v, i);
        CHECK_EQ(gorc_chan_tryrecv(b, &v), 0);
        CHECK_EQ(v, i);
    }
    gorc_chan_release(b);
    gorc_chan_release(u);
    gorc_chan_release(report);
}

GO_TEST(test_make_errors)
{
    gorc_chan *c = (gorc_chan *)&c;
    CHECK_EQ(gorc_chan_new(NULL, 4, 1), GORC_EINVAL);
    CHECK_EQ(gorc_chan_new(&c, (size_t)1 << 40, 1), GORC_EINVAL);
    CHECK(c == NULL);
    CHECK_EQ(gorc_chan_new(&c, 16, SIZE_MAX / 4), GORC_EINVAL);
    CHECK(c == NULL);
    /* A signal channel with a huge capacity needs no buffer. */
    CHECK_EQ(gorc_chan_new(&c, 0, (size_t)1 << 40), 0);
    CHECK_EQ(gorc_chan_cap(c), (size_t)1 << 40);
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(gorc_chan_trysend(c, NULL), 0);
    CHECK_EQ(gorc_chan_len(c), 1000);
    gorc_chan_release(c);
}

/* ------------------------------------------------------------------------------------------
 * Element sizes
 * ---------------------------------------------------------------------------------------- */

typedef struct elem_ctx {
    gorc_chan *c;
    size_t size;
    int n;
} elem_ctx;

static unsigned char pattern(int i, size_t j)
{
    return (unsigned char)(i * 31 + (int)j * 7 + 1);
}

static void elem_sender(void *arg)
{
    elem_ctx *x = arg;
    unsigned char buf[4096];
    for (int i = 0; i < x->n; i++) {
        for (size_t j = 0; j < x->size; j++)
            buf[j] = pattern(i, j);
        CHECK_EQ(gorc_chan_send(x->c, x->size ? buf : NULL), 0);
    }
    CHECK_EQ(gorc_chan_close(x->c), 0);
}

GO_TEST(test_elem_sizes)
{
    static const size_t sizes[] = {0, 1, 8, 100, 4096};
    static const size_t caps[] = {0, 1, 7};
    static unsigned char buf[4096 + 64];
    int n = (int)scaled(2000);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
            size_t sz = sizes[si];
            elem_ctx x = {mkchan(sz, caps[ci]), sz, n};
            CHECK_EQ(gorc_go(elem_sender, &x), 0);
            int i = 0;
            for (;; i++) {
                memset(buf, 0xee, sizeof buf);
                /* Odd values into buf, even ones discarded (NULL); the closing receive
                 * (i == n) must zero exactly the element. */
                bool into = (i & 1) || sz == 0 || i == n;
                int rc = gorc_chan_recv(x.c, into ? buf : NULL);
                if (rc == GORC_ECLOSED)
                    break;
                CHECK_EQ(rc, 0);
                if (i & 1) {
                    for (size_t j = 0; j < sz; j++)
                        CHECK_EQ(buf[j], pattern(i, j));
                }
                /* Nothing past the element is written. */
                for (size_t j = sz; j < sizeof buf; j++)
                    CHECK_EQ(buf[j], 0xee);
            }
            CHECK_EQ(i, n);
            for (size_t j = 0; j < sz; j++)
                CHECK_EQ(buf[j], 0); /* the closed receive zeroed exactly the element */
            for (size_t j = sz; j < sizeof buf; j++)
                CHECK_EQ(buf[j], 0xee);
            gorc_chan_release(x.c);
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * N producers x M consumers, exact accounting
 * ---------------------------------------------------------------------------------------- */

typedef struct mpmc {
    gorc_chan *c;
    gorc_chan *done; /* producers and consumers report here */
    long n;          /* values in total: 0..n-1 */
    int nprod;
    _Atomic uint64_t *seen; /* bitmap */
    _Atomic long count;
    _Atomic long long sum;
    _Atomic int next_producer;
    bool use_try; /* mix in trysend/tryrecv loops */
} mpmc;

static void mpmc_producer(void *arg)
{
    mpmc *x = arg;
    int id = atomic_fetch_add(&x->next_producer, 1);
    long lo = x->n * id / x->nprod, hi = x->n * (id + 1) / x->nprod;
    for (long v = lo; v < hi; v++) {
        if (x->use_try && (v & 3) == 0) {
            /* Bounded: producers and consumers all polling would never meet. */
            int rc = GORC_EAGAIN;
            for (int t = 0; t < 50 && (rc = gorc_chan_trysend(x->c, &v)) == GORC_EAGAIN; t++)
                gorc_yield();
            if (rc == GORC_EAGAIN)
                rc = gorc_chan_send(x->c, &v);
            CHECK_EQ(rc, 0);
        } else {
            CHECK_EQ(gorc_chan_send(x->c, &v), 0);
        }
    }
    CHECK_EQ(gorc_chan_send(x->done, NULL), 0);
}

static void mpmc_consumer(void *arg)
{
    mpmc *x = arg;
    long count = 0;
    long long sum = 0;
    for (long k = 0;; k++) {
        long v = -1;
        int rc;
        if (x->use_try && (k & 3) == 1) {
            rc = GORC_EAGAIN;
            for (int t = 0; t < 50 && (rc = gorc_chan_tryrecv(x->c, &v)) == GORC_EAGAIN; t++)
                gorc_yield();
            if (rc == GORC_EAGAIN)
                rc = gorc_chan_recv(x->c, &v);
        } else {
            rc = gorc_chan_recv(x->c, &v);
        }
        if (rc == GORC_ECLOSED) {
            CHECK_EQ(v, 0);
            break;
        }
        CHECK_EQ(rc, 0);
        CHECK(v >= 0 && v < x->n);
        uint64_t bit = (uint64_t)1 << (v % 64);
        uint64_t old = atomic_fetch_or(&x->seen[v / 64], bit);
        CHECK((old & bit) == 0); /* received twice */
        count++;
        sum += v;
    }
    atomic_fetch_add(&x->count, count);
    atomic_fetch_add(&x->sum, sum);
    CHECK_EQ(gorc_chan_send(x->done, NULL), 0);
}

static void mpmc_run(int nprod, int ncons, size_t cap, long n, bool use_try)
{
    int64_t base = base_count();
    mpmc x = {.c = mkchan(sizeof(long), cap),
              .done = mkchan(0, 0),
              .n = n,
              .nprod = nprod,
              .use_try = use_try};
    x.seen = calloc((size_t)(n / 64 + 1), sizeof(uint64_t));
    CHECK(x.seen != NULL);
    for (int i = 0; i < ncons; i++)
        CHECK_EQ(gorc_go(mpmc_consumer, &x), 0);
    for (int i = 0; i < nprod; i++)
        CHECK_EQ(gorc_go(mpmc_producer, &x), 0);
    for (int i = 0; i < nprod; i++)
        CHECK_EQ(gorc_chan_recv(x.done, NULL), 0);
    CHECK_EQ(gorc_chan_close(x.c), 0);
    for (int i = 0; i < ncons; i++)
        CHECK_EQ(gorc_chan_recv(x.done, NULL), 0);
    CHECK_EQ(atomic_load(&x.count), n);
    CHECK_EQ(atomic_load(&x.sum), (long long)n * (n - 1) / 2);
    for (long v = 0; v < n; v++)
        CHECK(atomic_load(&x.seen[v / 64]) & ((uint64_t)1 << (v % 64)));
    CHECK_EQ(gorc_chan_len(x.c), 0);
    free(x.seen);
    gorc_chan_release(x.c);
    gorc_chan_release(x.done);
    wait_count(base);
}

GO_TEST(test_mpmc_unbuffered)
{
    mpmc_run(8, 8, 0, scaled(200000), false);
    mpmc_run(1, 8, 0, scaled(20000), false);
    mpmc_run(8, 1, 0, scaled(20000), false);
}

GO_TEST(test_mpmc_buffered)
{
    mpmc_run(8, 8, 1, scaled(200000), false);
    mpmc_run(8, 8, 128, scaled(200000), false);
    mpmc_run(3, 5, 7, scaled(50000), false);
}

GO_TEST(test_mpmc_try)
{
    mpmc_run(4, 4, 0, scaled(50000), true);
    mpmc_run(4, 4, 16, scaled(50000), true);
}

/* ------------------------------------------------------------------------------------------
 * Reference counting
 * ---------------------------------------------------------------------------------------- */

static void refs_user(void *arg)
{
    gorc_chan *c = arg; /* we own one reference */
    gorc_sleep(5 * GORC_MILLISECOND);
    int v = 99;
    CHECK_EQ(gorc_chan_send(c, &v), 0);
    CHECK_EQ(gorc_chan_close(c), 0);
    gorc_chan_release(c);
}

GO_TEST(test_refcount)
{
    CHECK(gorc_chan_retain(NULL) == NULL);
    gorc_chan_release(NULL);

    gorc_chan *c = mkchan(sizeof(int), 1);
    CHECK(gorc_chan_retain(c) == c);
    CHECK(gorc_chan_retain(c) == c);
    gorc_chan_release(c);
    gorc_chan_release(c);
    int v = 5;
    CHECK_EQ(gorc_chan_send(c, &v), 0); /* still alive: one reference left */
    CHECK_EQ(gorc_chan_recv(c, &v), 0);
    CHECK_EQ(v, 5);
    gorc_chan_release(c); /* freed (ASan would flag any later use) */

    /* The creator hands a reference to a goroutine and drops its original one while the
     * goroutine still uses the channel (a second reference, keep, receives). */
    gorc_chan *d = mkchan(sizeof(int), 1);
    gorc_chan *keep = gorc_chan_retain(d);
    CHECK_EQ(gorc_go(refs_user, gorc_chan_retain(d)), 0);
    gorc_chan_release(d);
    CHECK_EQ(gorc_chan_recv(keep, &v), 0);
    CHECK_EQ(v, 99);
    CHECK_EQ(gorc_chan_recv(keep, &v), GORC_ECLOSED);
    gorc_chan_release(keep);

    /* Many goroutines each owning a reference, releasing in any order. */
    int64_t base = base_count();
    gorc_chan *e = mkchan(sizeof(int), 0);
    gorc_chan *results = mkchan(sizeof(int), 0);
    gorc_chan *pair[2] = {e, results};
    for (int i = 0; i < 100; i++)
        CHECK_EQ(gorc_go(recv_one, pair), 0);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(gorc_chan_send(e, &i), 0);
    long sum = 0;
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(gorc_chan_recv(results, &v), 0);
        sum += v;
    }
    CHECK_EQ(sum, 4950);
    wait_count(base);
    gorc_chan_release(e);
    gorc_chan_release(results);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prime_sieve),
        cmocka_unit_test(test_fifo_per_sender),
        cmocka_unit_test(test_close_basic),
        cmocka_unit_test(test_close_drains_buffer),
        cmocka_unit_test(test_close_wakes_receivers),
        cmocka_unit_test(test_close_wakes_senders),
        cmocka_unit_test(test_try_ops),
        cmocka_unit_test(test_make_errors),
        cmocka_unit_test(test_elem_sizes),
        cmocka_unit_test(test_mpmc_unbuffered),
        cmocka_unit_test(test_mpmc_buffered),
        cmocka_unit_test(test_mpmc_try),
        cmocka_unit_test(test_refcount),
    };
    return cmocka_run_group_tests_name("chan", tests, NULL, NULL);
}
