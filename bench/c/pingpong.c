/* pingpong: two goroutines bounce an int over two unbuffered channels. The harness runs it as
 * workload pingpong1 (GORC_MAXPROCS=1) and pingpong2 (GORC_MAXPROCS=2). Prints wall-clock ns
 * per round trip. Go counterpart: bench/go/pingpong.
 *
 * BENCH_TRACE=trace runs it under the execution tracer (writing to /dev/null), =flight under
 * the flight recorder with its defaults: the trace-pingpong1 and flight-pingpong1 workloads. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gorc.h"
#include "gorc_trace.h"

enum { ROUNDS = 5000000 };

static gorc_chan *ping, *pong;

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "pingpong: %s: %s\n", what, strerror(-rc));
        exit(1);
    }
}

static void echo(void *arg)
{
    (void)arg;
    int64_t v;
    while (gorc_chan_recv(ping, &v) == 0) {
        v++;
        check(gorc_chan_send(pong, &v), "send pong");
    }
    gorc_chan_close(pong);
}

static void body(void *arg)
{
    (void)arg;
    check(gorc_chan_new(&ping, sizeof(int64_t), 0), "gorc_chan_new");
    check(gorc_chan_new(&pong, sizeof(int64_t), 0), "gorc_chan_new");
    check(gorc_go(echo, NULL), "gorc_go");
    const char *tr = getenv("BENCH_TRACE");
    bool tracing = tr && strcmp(tr, "trace") == 0, flight = tr && strcmp(tr, "flight") == 0;
    if (tracing)
        check(gorc_trace_start(open("/dev/null", O_WRONLY | O_CLOEXEC)), "gorc_trace_start");
    if (flight)
        check(gorc_flight_recorder_start(NULL), "gorc_flight_recorder_start");

    int64_t v = 0;
    int64_t start = gorc_now();
    for (int i = 0; i < ROUNDS; i++) {
        check(gorc_chan_send(ping, &v), "send ping");
        check(gorc_chan_recv(pong, &v), "recv pong");
    }
    int64_t elapsed = gorc_now() - start;
    if (tracing)
        check(gorc_trace_stop(), "gorc_trace_stop");
    if (flight)
        check(gorc_flight_recorder_stop(), "gorc_flight_recorder_stop");
    gorc_chan_close(ping);
    gorc_chan_recv(pong, NULL); /* wait for echo to finish before releasing */
    gorc_chan_release(ping);
    gorc_chan_release(pong);
    if (v != ROUNDS) {
        fprintf(stderr, "pingpong: got %lld, want %d\n", (long long)v, ROUNDS);
        exit(1);
    }
    printf("%.1f\n", (double)elapsed / ROUNDS);
}

int main(void)
{
    check(gorc_main(body, NULL), "gorc_main");
    return 0;
}
