/*
 * test_leak.c - gorc_leak_mark and gorc_leak_check (cmocka; bodies run as goroutines).
 *
 * The three leak patterns people report from Go services, each detected with its report
 * checked: a backend call whose caller gave up without a context (the goroutine blocks for
 * ever sending its result), a consumer of a channel that is never closed, and a goroutine
 * driven by a ticker nobody stops. Also: goroutines that finish within the bound are not
 * reported; goroutines from before the mark are not reported; a nil-channel wait is marked as
 * a certain leak; the report names the object waited on, the start function (module and
 * offset), the spawning goroutine and the goroutine's frames. The report goes to stderr, which the
 * tests capture in a temporary file.
 */
#include "testutil.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define MS GORC_MILLISECOND

static char report[16384];

/* gorc_leak_check with stderr captured into report. */
static int check_captured(uint64_t mark, int64_t timeout)
{
    char path[] = "/tmp/gorc-leak-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    CHECK(saved >= 0);
    CHECK(dup2(fd, 2) == 2);
    int n = gorc_leak_check(mark, timeout);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t len = pread(fd, report, sizeof report - 1, 0);
    close(fd);
    report[len > 0 ? len : 0] = 0;
    return n;
}

static void expect(const char *text)
{
    if (strstr(report, text) == NULL) {
        fprintf(stderr, "report lacks \"%s\":\n%s\n", text, report);
        abort();
    }
}

/* "exe+0x<offset>" for a function of this program, as the report prints it. */
static void expect_where(void (*fn)(void *))
{
    Dl_info di;
    CHECK(dladdr((void *)(uintptr_t)fn, &di) != 0 && di.dli_fname != NULL);
    char want[512];
    snprintf(want, sizeof want, "%s+0x%lx", di.dli_fname,
             (unsigned long)((uintptr_t)fn - (uintptr_t)di.dli_fbase));
    expect(want);
}

/* ---- pattern 1: the caller left, the backend call blocks for ever on its result ---- */

static gorc_chan *result_ch;

static void backend_call(void *arg)
{
    (void)arg;
    gorc_sleep(10 * MS); /* a slow backend */
    int v = 42;
    gorc_chan_send(result_ch, &v); /* the caller is gone: nobody will ever receive */
}

GO_TEST(test_leak_no_context)
{
    uint64_t mark = gorc_leak_mark();
    CHECK_EQ(gorc_chan_new(&result_ch, sizeof(int), 0), 0);
    CHECK_EQ(gorc_go(backend_call, NULL), 0);
    /* The caller waits 2 ms for the answer, then gives up without telling the backend. */
    int v;
    gorc_case cs[1] = {{.chan = result_ch, .dir = GORC_RECV, .elem = &v}};
    CHECK_EQ(gorc_select_timeout(cs, 1, 2 * MS), -ETIMEDOUT);
    CHECK_EQ(check_captured(mark, 50 * MS), 1);
    expect("1 goroutine started after the mark still running");
    expect("[chan send, ");
    char on[64];
    snprintf(on, sizeof on, "] on %p", (void *)result_ch);
    expect(on);
    expect_where(backend_call);
    char by[64];
    snprintf(by, sizeof by, "created by goroutine %llu at", (unsigned long long)gorc_id());
    expect(by);
    expect("(...)\n\t"); /* then its frames, as a dump prints them */
    /* Clean up: take the value, the goroutine ends, and the check passes. */
    CHECK_EQ(gorc_chan_recv(result_ch, &v), 0);
    CHECK_EQ(check_captured(mark, 5 * GORC_SECOND), 0);
    CHECK_EQ(report[0], 0);
    gorc_chan_release(result_ch);
}

/* ---- pattern 2: a consumer of a channel nobody closes ---- */

static void consumer(void *arg)
{
    int v;
    while (gorc_chan_recv(arg, &v) == 0)
        ;
}

GO_TEST(test_leak_channel_never_closed)
{
    gorc_chan *jobs;
    CHECK_EQ(gorc_chan_new(&jobs, sizeof(int), 4), 0);
    uint64_t mark = gorc_leak_mark();
    CHECK_EQ(gorc_go(consumer, jobs), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(gorc_chan_send(jobs, &i), 0);
    /* The producer is done but forgets gorc_chan_close(jobs). */
    CHECK_EQ(check_captured(mark, 30 * MS), 1);
    expect("[chan receive, ");
    expect_where(consumer);
    char argtext[64];
    snprintf(argtext, sizeof argtext, "argument %p", (void *)jobs);
    expect(argtext);
    gorc_chan_close(jobs);
    CHECK_EQ(check_captured(mark, 5 * GORC_SECOND), 0);
    gorc_chan_release(jobs);
}

/* ---- pattern 3: a goroutine driven by a ticker nobody stops ---- */

static _Atomic int ticks;

static void poller_loop(void *arg)
{
    gorc_ticker *t = arg;
    int64_t when;
    while (gorc_chan_recv(gorc_ticker_chan(t), &when) == 0)
        atomic_fetch_add(&ticks, 1);
}

GO_TEST(test_leak_timer_never_stopped)
{
    gorc_ticker *t;
    CHECK_EQ(gorc_ticker_new(&t, MS), 0);
    uint64_t mark = gorc_leak_mark();
    CHECK_EQ(gorc_go(poller_loop, t), 0);
    CHECK_EQ(check_captured(mark, 30 * MS), 1);
    CHECK(atomic_load(&ticks) > 0); /* it is alive and busy, and still a leak */
    expect_where(poller_loop);
    /* Stopping the ticker is not enough (its channel is never closed): the loop must end. */
    gorc_ticker_stop(t);
    CHECK_EQ(check_captured(mark, 20 * MS), 1);
    gorc_chan_close(gorc_ticker_chan(t));
    CHECK_EQ(check_captured(mark, 5 * GORC_SECOND), 0);
    gorc_ticker_free(t);
}

/* ---- what is not a leak, and the certain ones ---- */

static void brief(void *arg)
{
    (void)arg;
    gorc_sleep(10 * MS);
}

static gorc_chan *old_gate;

static void from_before(void *arg)
{
    (void)arg;
    gorc_chan_recv(old_gate, NULL);
}

static void nil_waiter(void *arg)
{
    (void)arg;
    gorc_chan_recv(NULL, NULL); /* can never be woken */
}

GO_TEST(test_leak_bounds)
{
    CHECK_EQ(gorc_chan_new(&old_gate, 0, 0), 0);
    CHECK_EQ(gorc_go(from_before, NULL), 0); /* before the mark: not ours to report */
    uint64_t mark = gorc_leak_mark();
    for (int i = 0; i < 20; i++)
        CHECK_EQ(gorc_go(brief, NULL), 0);
    CHECK_EQ(check_captured(mark, 10 * GORC_SECOND), 0);
    CHECK_EQ(report[0], 0);

    CHECK_EQ(gorc_go(nil_waiter, NULL), 0);
    CHECK_EQ(check_captured(mark, 10 * MS), 1);
    expect("[chan receive (nil chan)");
    expect("certain leak: nothing can ever wake it");
    /* A mark of 0 counts every goroutine but the caller: the one from before too. */
    CHECK_EQ(check_captured(0, 10 * MS), 2);
    gorc_chan_close(old_gate);
    gorc_chan_release(old_gate);
    /* nil_waiter stays parked for good; the process ends with it. */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leak_no_context),
        cmocka_unit_test(test_leak_channel_never_closed),
        cmocka_unit_test(test_leak_timer_never_stopped),
        cmocka_unit_test(test_leak_bounds),
    };
    return cmocka_run_group_tests_name("leak", tests, NULL, NULL);
}
