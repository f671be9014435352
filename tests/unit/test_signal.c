/*
 * test_signal.c - signals as channel values and NotifyContext (cmocka; bodies run as
 * goroutines). In a binary of their own: the first gorc_signal_notify starts a goroutine that
 * lives for the rest of the process, which the other test files' goroutine counts would see.
 *
 * Covers: a signal sent to the process arrives on every channel registered for it, and not on
 * others; the element-size, argument and signal-number checks; a full channel misses the
 * signal instead of blocking anything; stop gives the signal its previous handler back (a test
 * handler installed before notify runs again after stop); stop of an unknown channel; a
 * context cancelled by a signal (cause -EINTR) and one cancelled by its owner, after which the
 * signal's previous handler is back. Hang guards only.
 *
 * Not under ThreadSanitizer: it defers a signal handler until the thread that took the signal
 * next enters a call TSan intercepts, and gorc's threads sleep in raw futex and epoll system
 * calls, so delivery can wait forever there. The tests are reported as skipped in that variant.
 */
#include "testutil.h"

#include <gorc_signal.h>

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define GUARD (10 * GORC_SECOND)

static volatile sig_atomic_t test_handler_runs;

static void test_handler(int s)
{
    (void)s;
    test_handler_runs++;
}

static void install_test_handler(int s)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = test_handler;
    sigaction(s, &sa, NULL);
}

static int recv_sig(gorc_chan *c, int64_t timeout)
{
    int s = 0;
    gorc_case cs[1] = {{.chan = c, .dir = GORC_RECV, .elem = &s}};
    int r = gorc_select_timeout(cs, 1, timeout);
    return r == 0 ? s : r;
}

GO_TEST(notify_run)
{
    gorc_chan *a, *b, *bad;
    CHECK_EQ(gorc_chan_new(&a, sizeof(int), 4), 0);
    CHECK_EQ(gorc_chan_new(&b, sizeof(int), 4), 0);
    CHECK_EQ(gorc_chan_new(&bad, sizeof(long long), 4), 0);
    int usr1 = SIGUSR1, usr2 = SIGUSR2, segv = SIGSEGV, kill9 = SIGKILL, zero = 0, big = 99;
    CHECK_EQ(gorc_signal_notify(NULL, &usr1, 1), -EINVAL);
    CHECK_EQ(gorc_signal_notify(a, NULL, 0), -EINVAL);
    CHECK_EQ(gorc_signal_notify(bad, &usr1, 1), -EINVAL);
    CHECK_EQ(gorc_signal_notify(a, &segv, 1), -EINVAL);
    CHECK_EQ(gorc_signal_notify(a, &kill9, 1), -EINVAL);
    CHECK_EQ(gorc_signal_notify(a, &zero, 1), -EINVAL);
    CHECK_EQ(gorc_signal_notify(a, &big, 1), -EINVAL);
    CHECK_EQ(gorc_signal_stop(a), -ENOENT);
    CHECK_EQ(gorc_signal_stop(NULL), -EINVAL);

    install_test_handler(SIGUSR2);
    CHECK_EQ(gorc_signal_notify(a, &usr1, 1), 0);
    CHECK_EQ(gorc_signal_notify(a, &usr2, 1), 0); /* adds to a's set */
    CHECK_EQ(gorc_signal_notify(b, &usr1, 1), 0);

    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(recv_sig(a, GUARD), SIGUSR1);
    CHECK_EQ(recv_sig(b, GUARD), SIGUSR1);
    CHECK_EQ(kill(getpid(), SIGUSR2), 0);
    CHECK_EQ(recv_sig(a, GUARD), SIGUSR2);
    CHECK_EQ(recv_sig(b, 20 * GORC_MILLISECOND), -ETIMEDOUT); /* b did not ask for it */
    CHECK_EQ(test_handler_runs, 0);

    /* A full channel misses signals; nothing blocks, and b still gets its own. */
    for (int i = 0; i < 4; i++)
        gorc_chan_trysend(a, &i);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(recv_sig(b, GUARD), SIGUSR1);

    /* After stop, SIGUSR2's previous handler is back. */
    CHECK_EQ(gorc_signal_stop(a), 0);
    CHECK_EQ(gorc_signal_stop(a), -ENOENT);
    CHECK_EQ(kill(getpid(), SIGUSR2), 0);
    int64_t deadline = gorc_now() + GUARD;
    while (test_handler_runs == 0 && gorc_now() < deadline)
        gorc_sleep(GORC_MILLISECOND);
    CHECK_EQ(test_handler_runs, 1);
    /* SIGUSR1 is still b's. */
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(recv_sig(b, GUARD), SIGUSR1);
    CHECK_EQ(gorc_signal_stop(b), 0);
    gorc_chan_release(a);
    gorc_chan_release(b);
    gorc_chan_release(bad);
}

GO_TEST(notify_ctx_run)
{
    int sigs[] = {SIGUSR1, SIGHUP};
    gorc_ctx *ctx;
    CHECK_EQ(gorc_signal_notify_ctx(&ctx, gorc_ctx_background(), sigs, 2), 0);
    CHECK_EQ(gorc_ctx_err(ctx), 0);
    CHECK_EQ(kill(getpid(), SIGHUP), 0);
    gorc_case cs[1] = {{.chan = gorc_ctx_done(ctx), .dir = GORC_RECV}};
    CHECK_EQ(gorc_select_timeout(cs, 1, GUARD), 0);
    CHECK_EQ(gorc_ctx_err(ctx), -ECANCELED);
    CHECK_EQ(gorc_ctx_cause(ctx), -EINTR);
    gorc_ctx_release(ctx);

    /* Cancelled by its owner: the signal's previous handler comes back. */
    install_test_handler(SIGUSR1);
    test_handler_runs = 0;
    CHECK_EQ(gorc_signal_notify_ctx(&ctx, gorc_ctx_background(), sigs, 1), 0);
    CHECK_EQ(gorc_ctx_cancel(ctx), 0);
    gorc_ctx_release(ctx);
    int64_t deadline = gorc_now() + GUARD;
    for (;;) {
        /* The waiting goroutine restores the handler after it sees the cancel. */
        struct sigaction cur;
        sigaction(SIGUSR1, NULL, &cur);
        if (cur.sa_handler == test_handler)
            break;
        CHECK(gorc_now() < deadline);
        gorc_sleep(GORC_MILLISECOND);
    }
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    while (test_handler_runs == 0 && gorc_now() < deadline)
        gorc_sleep(GORC_MILLISECOND);
    CHECK_EQ(test_handler_runs, 1);
    CHECK_EQ(gorc_signal_notify_ctx(&ctx, NULL, sigs, 1), -EINVAL);
}

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

/* cmocka's skip() must be called from the test function itself, not from a goroutine. */
static void skip_under_tsan(void)
{
#ifdef UNDER_TSAN
    print_message("signal tests skipped under ThreadSanitizer (deferred signal delivery)\n");
    skip();
#endif
}

static void test_notify(void **state)
{
    skip_under_tsan();
    notify_run(state);
}

static void test_notify_ctx(void **state)
{
    skip_under_tsan();
    notify_ctx_run(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify),
        cmocka_unit_test(test_notify_ctx),
    };
    return cmocka_run_group_tests_name("signal", tests, NULL, NULL);
}
