/* http: the hello-world HTTP server of the http100/http1000 workloads. It listens on the
 * address given as its only argument and answers every request with "Hello, World!\n" as
 * text/plain until it is killed; bench/run measures it from outside with wrk, next to the same
 * server in Go (bench/go/http) and nginx.
 *
 * Nothing is tuned: the server runs with its defaults, timeouts included (60 s idle and write
 * timeouts cut nothing in a 10 s run), as the Go server runs with net/http's. The Content-Type
 * is set explicitly because Go's net/http adds
 * "text/plain; charset=utf-8" by sniffing the body: with the same header on all three servers
 * the responses differ only in the headers each server adds by itself (Date, Server).
 *
 * BENCH_TRACE=trace runs it under the execution tracer (writing to /dev/null), =flight under
 * the flight recorder with its defaults: the trace-http100 and flight-http100 workloads. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gorc.h"
#include "gorc_http.h"
#include "gorc_trace.h"

static const char hello[] = "Hello, World!\n";

static void handler(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)r;
    (void)arg;
    gorc_http_rw_set_header(w, "Content-Type", "text/plain; charset=utf-8");
    gorc_http_rw_write(w, hello, sizeof hello - 1);
}

static void serve(void *arg)
{
    const char *addr = arg;
    const char *tr = getenv("BENCH_TRACE");
    if (tr && strcmp(tr, "trace") == 0) {
        int rc = gorc_trace_start(open("/dev/null", O_WRONLY | O_CLOEXEC));
        fprintf(stderr, "http: execution trace to /dev/null: %s\n", gorc_strerror(rc));
    } else if (tr && strcmp(tr, "flight") == 0) {
        int rc = gorc_flight_recorder_start(NULL);
        fprintf(stderr, "http: flight recorder: %s\n", gorc_strerror(rc));
    }
    gorc_http_server_opts opts = {.handler = handler};
    gorc_http_server *s;
    int rc = gorc_http_server_new(&s, &opts);
    if (rc == 0) {
        fprintf(stderr, "http: gorc on %s, %d Ps\n", addr, gorc_maxprocs());
        rc = gorc_http_server_listen_and_serve(s, addr);
    }
    fprintf(stderr, "http: %s\n", strerror(-rc));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: http ADDR (e.g. 127.0.0.1:8080)\n");
        return 2;
    }
    int rc = gorc_main(serve, argv[1]);
    fprintf(stderr, "http: gorc_main: %s\n", strerror(-rc));
    return 1;
}
