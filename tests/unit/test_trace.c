/*
 * test_trace.c - the execution tracer's buffers, sessions and JSON encoder (cmocka; bodies run
 * as goroutines).
 *
 * The buffers: a trace of more events than one chunk holds streams every chunk to the
 * descriptor, with each event exactly once (counted from the JSON's own summary against the
 * number the workload must produce); the flight recorder keeps its window within max_bytes
 * while far more is recorded, and a snapshot taken while goroutines record is still a
 * complete trace. The sessions: EBUSY, EBADF, EINVAL, a write error (a pipe closed at the
 * other end) reported by gorc_trace_stop. The encoder: damaged input is refused (wrong magic,
 * truncated frames, a string running off its chunk) and strings are escaped. tests/e2e/trace-e2e
 * checks a whole trace with an independent JSON parser.
 */
#include "testutil.h"

#include <gorc_signal.h>
#include <gorc_trace.h>

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static gorc_chan *ping, *pong;

static void echo(void *arg)
{
    (void)arg;
    int v;
    while (gorc_chan_recv(ping, &v) == 0) {
        v++;
        CHECK_EQ(gorc_chan_send(pong, &v), 0);
    }
    gorc_chan_close(pong);
}

/* n round trips between two goroutines: at least 4 n block/unblock events. Returns once the
 * echo goroutine has ended (its end event recorded). */
static void pingpong(int n)
{
    int64_t before = gorc_count();
    CHECK_EQ(gorc_chan_new(&ping, sizeof(int), 0), 0);
    CHECK_EQ(gorc_chan_new(&pong, sizeof(int), 0), 0);
    CHECK_EQ(gorc_go(echo, NULL), 0);
    int v = 0;
    for (int i = 0; i < n; i++) {
        CHECK_EQ(gorc_chan_send(ping, &v), 0);
        CHECK_EQ(gorc_chan_recv(pong, &v), 0);
    }
    CHECK_EQ(v, n);
    gorc_chan_close(ping);
    gorc_chan_recv(pong, NULL);
    gorc_chan_release(ping);
    gorc_chan_release(pong);
    /* echo closed pong on its way out: let it finish (a previous test's main goroutine may
     * end meanwhile too, hence <=). Hang guard 60 s. */
    int64_t deadline = gorc_now() + 60 * GORC_SECOND;
    while (gorc_count() > before) {
        CHECK(gorc_now() < deadline);
        gorc_sleep(GORC_MILLISECOND / 2);
    }
}

/* The whole of a file descriptor's contents. */
static void *slurp(int fd, size_t *len)
{
    off_t n = lseek(fd, 0, SEEK_END);
    CHECK(n > 0);
    char *p = malloc((size_t)n);
    CHECK(p != NULL);
    CHECK_EQ(pread(fd, p, (size_t)n, 0), n);
    *len = (size_t)n;
    return p;
}

static long json_field(const char *json, const char *name)
{
    const char *p = strstr(json, name);
    CHECK(p != NULL);
    return atol(p + strlen(name));
}

/* Occurrences of what in s, by hand: a loop of strstr calls is quadratic under ASan, whose
 * strstr checks the whole rest of the string on every call (minutes for a big trace). */
static long count(const char *s, const char *what)
{
    long n = 0;
    size_t m = strlen(what);
    for (const char *p = s; *p; p++) {
        size_t i = 0;
        while (i < m && p[i] == what[i])
            i++;
        if (i == m) {
            n++;
            p += m - 1;
        }
    }
    return n;
}

static int tmpfile_fd(void)
{
    char path[] = "/tmp/gorc-trace-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    return fd;
}

GO_TEST(test_trace_streams_every_chunk)
{
    (void)arg;
    int fd = tmpfile_fd();
    CHECK_EQ(gorc_trace_start(fd), 0);
    CHECK(gorc_trace_enabled());
    int n = (int)scaled(20000);
    if (n < 3000)
        n = 3000; /* six chunks at least, under every variant */
    pingpong(n);
    CHECK_EQ(gorc_trace_stop(), 0);
    CHECK(!gorc_trace_enabled());
    size_t len;
    void *bin = slurp(fd, &len);
    close(fd);
    /* 32-byte events, 2,047 to a chunk: more than a few chunks went through the writer. */
    CHECK(len > (size_t)n * 4 * 32);
    char *json;
    size_t jl;
    CHECK_EQ(gorc_trace_json(bin, len, &json, &jl), 0);
    CHECK_EQ(strlen(json), jl);
    CHECK_EQ(json_field(json, "\"repairs\":"), 0);
    /* Each round trip blocks and wakes both goroutines: 2 n blocked slices, 2 n flows. */
    long blocked = count(json, "\"name\":\"blocked: chan ");
    CHECK(blocked >= 2L * n && blocked <= 2L * n + 4);
    long flows = count(json, "\"ph\":\"s\"");
    CHECK(flows >= 2L * n);
    CHECK_EQ(count(json, "\"ph\":\"f\""), flows);
    CHECK_EQ(count(json, "\"name\":\"create\""), 1);
    CHECK_EQ(count(json, "\"name\":\"end\""), 1);
    free(json);
    free(bin);
}

GO_TEST(test_trace_session_errors)
{
    (void)arg;
    CHECK_EQ(gorc_trace_start(-1), -EBADF);
    CHECK_EQ(gorc_trace_stop(), -EINVAL);
    CHECK_EQ(gorc_flight_recorder_stop(), -EINVAL);
    void *p;
    size_t n;
    CHECK_EQ(gorc_flight_recorder_snapshot(&p, &n), -EINVAL);
    CHECK_EQ(gorc_flight_recorder_snapshot(NULL, &n), -EINVAL);
    CHECK_EQ(gorc_flight_recorder_write_to(-1), -EBADF);
    gorc_flight_recorder_opts bad = {.min_age = -1};
    CHECK_EQ(gorc_flight_recorder_start(&bad), -EINVAL);
    gorc_flight_recorder_opts tiny = {.max_bytes = 4096};
    CHECK_EQ(gorc_flight_recorder_start(&tiny), -EINVAL);
    int fd = tmpfile_fd();
    CHECK_EQ(gorc_trace_start(fd), 0);
    CHECK_EQ(gorc_trace_start(fd), -EBUSY);
    CHECK_EQ(gorc_flight_recorder_start(NULL), -EBUSY);
    CHECK_EQ(gorc_trace_stop(), 0);
    CHECK_EQ(gorc_flight_recorder_start(NULL), 0);
    CHECK(gorc_flight_recorder_enabled());
    CHECK_EQ(gorc_trace_start(fd), -EBUSY);
    CHECK_EQ(gorc_flight_recorder_stop(), 0);
    CHECK(!gorc_flight_recorder_enabled());
    close(fd);
    /* Annotations while nothing records: ids stay unique, nothing happens. */
    uint64_t a = gorc_trace_task_new(0, "a"), b = gorc_trace_task_new(a, "b");
    CHECK(a != 0 && b != a);
    gorc_trace_region_begin(a, "r");
    gorc_trace_region_end(a, "r");
    gorc_trace_log(a, "k", "v");
    gorc_trace_task_end(b);
    gorc_trace_task_end(a);
}

GO_TEST(test_trace_write_error)
{
    (void)arg;
    signal(SIGPIPE, SIG_IGN);
    int pfd[2];
    CHECK_EQ(pipe(pfd), 0);
    close(pfd[0]); /* every write fails with EPIPE */
    /* The header is written at start: the error shows there already. */
    CHECK_EQ(gorc_trace_start(pfd[1]), -EPIPE);
    CHECK(!gorc_trace_enabled());
    int fd[2];
    CHECK_EQ(pipe(fd), 0);
    CHECK_EQ(gorc_trace_start(fd[1]), 0);
    close(fd[0]); /* the reader goes away in the middle of the trace */
    pingpong((int)scaled(5000));
    CHECK_EQ(gorc_trace_stop(), -EPIPE);
    close(fd[1]);
    close(pfd[1]);
}

GO_TEST(test_flight_recorder_window)
{
    (void)arg;
    size_t max = 256 << 10;
    gorc_flight_recorder_opts o = {.min_age = 60 * GORC_SECOND, .max_bytes = max};
    CHECK_EQ(gorc_flight_recorder_start(&o), 0);
    int n = (int)scaled(40000); /* about 5 MiB of events */
    pingpong(n);
    void *p;
    size_t len;
    CHECK_EQ(gorc_flight_recorder_snapshot(&p, &len), 0);
    /* The full chunks within max_bytes, plus each recording thread's current chunk. */
    CHECK(len <= max + (size_t)(gorc_maxprocs() + 4) * 66000);
    if (test_div() == 1)
        CHECK(len >= max / 2);
    char *json;
    size_t jl;
    CHECK_EQ(gorc_trace_json(p, len, &json, &jl), 0);
    CHECK(count(json, "\"name\":\"blocked: chan ") > 10);
    free(json);
    free(p);
    /* The recorder goes on: the next snapshot, written to a file, has the newest events. */
    int fd = tmpfile_fd();
    CHECK_EQ(gorc_flight_recorder_write_to(fd), 0);
    CHECK_EQ(gorc_flight_recorder_stop(), 0);
    p = slurp(fd, &len);
    close(fd);
    CHECK_EQ(gorc_trace_json(p, len, &json, &jl), 0);
    CHECK(count(json, "\"name\":\"end\"") >= 1); /* echo's end, in the newest chunk */
    free(json);
    free(p);
}

typedef struct snapper {
    gorc_waitgroup wg;
    _Atomic int stop;
} snapper;

static void busy(void *arg)
{
    snapper *s = arg;
    while (!atomic_load(&s->stop)) {
        gorc_yield();
        gorc_sleep(1000);
    }
    gorc_waitgroup_done(&s->wg);
}

GO_TEST(test_flight_snapshot_while_recording)
{
    (void)arg;
    gorc_flight_recorder_opts o = {.max_bytes = 512 << 10};
    CHECK_EQ(gorc_flight_recorder_start(&o), 0);
    snapper s = {0};
    for (int i = 0; i < 4; i++) {
        gorc_waitgroup_add(&s.wg, 1);
        CHECK_EQ(gorc_go(busy, &s), 0);
    }
    for (int i = 0; i < (int)scaled(20); i++) {
        void *p;
        size_t len;
        CHECK_EQ(gorc_flight_recorder_snapshot(&p, &len), 0);
        char *json;
        size_t jl;
        CHECK_EQ(gorc_trace_json(p, len, &json, &jl), 0);
        free(json);
        free(p);
        gorc_sleep(GORC_MILLISECOND);
    }
    atomic_store(&s.stop, 1);
    gorc_waitgroup_wait(&s.wg);
    CHECK_EQ(gorc_flight_recorder_stop(), 0);
}

GO_TEST(test_trace_json_refuses_damage)
{
    (void)arg;
    char *json;
    size_t jl;
    CHECK_EQ(gorc_trace_json(NULL, 0, &json, &jl), -EINVAL);
    CHECK_EQ(gorc_trace_json("GORCTRC1", 8, NULL, &jl), -EINVAL);
    CHECK_EQ(gorc_trace_json("not a trace at all", 18, &json, &jl), -EINVAL);
    CHECK_EQ(gorc_trace_json("GORCTRC1", 8, &json, &jl), -EINVAL); /* no clock frame */

    int fd = tmpfile_fd();
    CHECK_EQ(gorc_trace_start(fd), 0);
    uint64_t t = gorc_trace_task_new(0, "esc\"aped\n");
    gorc_trace_log(t, "quote\"d", "line\nbreak\\");
    gorc_trace_task_end(t);
    CHECK_EQ(gorc_trace_stop(), 0);
    size_t len;
    unsigned char *bin = slurp(fd, &len);
    close(fd);
    CHECK_EQ(gorc_trace_json(bin, len, &json, &jl), 0);
    CHECK(strstr(json, "\"name\":\"esc\\\"aped\\u000a\"") != NULL);
    CHECK(strstr(json, "\"category\":\"quote\\\"d\",\"message\":\"line\\u000abreak\\\\\"") != NULL);
    free(json);
    /* Every truncation is refused, never read past the end. */
    for (size_t cut = 1; cut < len; cut += 1 + len / 200) {
        unsigned char *c = malloc(len - cut);
        CHECK(c != NULL);
        memcpy(c, bin, len - cut);
        int rc = gorc_trace_json(c, len - cut, &json, &jl);
        CHECK(rc == -EINVAL || (rc == 0 && (free(json), 1)));
        free(c);
    }
    /* A string longer than what follows it in the frame. */
    unsigned char *c = malloc(len);
    CHECK(c != NULL);
    memcpy(c, bin, len);
    bool damaged = false;
    for (size_t off = 8; off + 16 <= len;) {
        uint32_t h[4];
        memcpy(h, c + off, 16);
        size_t flen = (size_t)h[2] | (size_t)h[3] << 32;
        if (h[0] == 2) {
            for (size_t e = off + 16; e + 32 <= off + 16 + flen; e += 32) {
                uint32_t kind;
                memcpy(&kind, c + e + 8, 4);
                if ((kind & 0xff) == 16) { /* a task's begin: its string length */
                    uint32_t huge = 1u << 30;
                    memcpy(c + e + 12, &huge, 4);
                    damaged = true;
                }
            }
        }
        off += 16 + flen;
    }
    CHECK(damaged);
    CHECK_EQ(gorc_trace_json(c, len, &json, &jl), -EINVAL);
    free(c);
    free(bin);
}

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

static void flight_dump_on_signal_body(void *arg);
/* As test_signal: ThreadSanitizer defers a signal until the thread calls into an intercepted
 * function, and the threads here sleep in epoll. */
static void test_flight_dump_on_signal(void **state)
{
    (void)state;
#ifdef UNDER_TSAN
    print_message("signal snapshot skipped under ThreadSanitizer (deferred signal delivery)\n");
    skip();
#endif
    assert_int_equal(gorc_main(flight_dump_on_signal_body, NULL), 0);
}

static void flight_dump_on_signal_body(void *arg)
{
    (void)arg;
    char dir[] = "/tmp/gorc-flight-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    CHECK_EQ(gorc_flight_recorder_dump_on_signal(SIGUSR2, NULL), -EINVAL);
    CHECK_EQ(gorc_flight_recorder_dump_on_signal(SIGSEGV, dir), -EINVAL);
    CHECK_EQ(gorc_flight_recorder_dump_on_signal(SIGUSR2, dir), 0);
    CHECK_EQ(gorc_flight_recorder_start(NULL), 0);
    pingpong(100);
    CHECK_EQ(kill(getpid(), SIGUSR2), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/gorc-flight-%d-1.json", dir, (int)getpid());
    int64_t deadline = gorc_now() + 30 * GORC_SECOND; /* hang guard */
    while (access(path, F_OK) != 0) {
        CHECK(gorc_now() < deadline);
        gorc_sleep(GORC_MILLISECOND);
    }
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    size_t len;
    char *json = slurp(fd, &len);
    close(fd);
    CHECK(len > 100 && strncmp(json, "{\"displayTimeUnit\"", 18) == 0);
    CHECK(json[len - 2] == '}'); /* complete: renamed into place once written */
    CHECK(strstr(json, "\"name\":\"blocked: chan ") != NULL);
    free(json);
    CHECK_EQ(gorc_flight_recorder_stop(), 0);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_streams_every_chunk),
        cmocka_unit_test(test_trace_session_errors),
        cmocka_unit_test(test_trace_write_error),
        cmocka_unit_test(test_flight_recorder_window),
        cmocka_unit_test(test_flight_snapshot_while_recording),
        cmocka_unit_test(test_trace_json_refuses_damage),
        cmocka_unit_test(test_flight_dump_on_signal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
