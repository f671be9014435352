/* trace_prog - a known program under the execution tracer, for tests/e2e/trace-e2e.
 *
 *   trace_prog trace  OUT.json   trace the workload with gorc_trace_start into a file, convert
 *   trace_prog flight OUT.json   run it under the flight recorder, convert a snapshot
 *   trace_prog serve SECONDS     an HTTP server on 127.0.0.1 (it prints its address) with the
 *                                debug page at /debug/, /hello, /sleep (100 ms) and /work (a
 *                                few goroutines ping-pong), for SECONDS; no flight recorder
 *
 * The workload: WORKERS goroutines ("worker") each do ROUNDS ping-pongs over unbuffered
 * channels with an echo goroutine ("echo"), take a mutex held by the others, sleep 1 ms, do a
 * declared blocking call, and record a task, a region and a log; the main goroutine waits for
 * all of them on a WaitGroup. Every goroutine is created, blocks, is woken and ends inside
 * the trace, which trace_check.py verifies against the JSON. */
#include "gorc.h"
#include "gorc_http.h"
#include "gorc_http_debug.h"
#include "gorc_net.h"
#include "gorc_trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { WORKERS = 8, ROUNDS = 50 };

static gorc_mutex mu;
static gorc_waitgroup wg;
static long shared;

static void die(const char *what, int rc)
{
    fprintf(stderr, "trace_prog: %s: %s\n", what, gorc_strerror(rc));
    exit(1);
}

typedef struct pair {
    gorc_chan *ping, *pong;
} pair;

void echo(void *arg);
void echo(void *arg)
{
    pair *pp = arg;
    int v;
    while (gorc_chan_recv(pp->ping, &v) == 0) {
        v++;
        gorc_chan_send(pp->pong, &v);
    }
    gorc_chan_close(pp->pong);
}

static void *nap(void *arg)
{
    (void)arg;
    usleep(2000);
    return NULL;
}

void worker(void *arg);
void worker(void *arg)
{
    (void)arg;
    uint64_t task = gorc_trace_task_new(0, "work");
    pair pp;
    gorc_chan_new(&pp.ping, sizeof(int), 0);
    gorc_chan_new(&pp.pong, sizeof(int), 0);
    int rc = gorc_go(echo, &pp);
    if (rc != 0)
        die("gorc_go", rc);
    gorc_trace_region_begin(task, "pingpong");
    int v = 0;
    for (int i = 0; i < ROUNDS; i++) {
        gorc_chan_send(pp.ping, &v);
        gorc_chan_recv(pp.pong, &v);
    }
    gorc_trace_region_end(task, "pingpong");
    gorc_trace_log(task, "result", v == ROUNDS ? "ok" : "wrong");
    gorc_chan_close(pp.ping);
    gorc_chan_recv(pp.pong, NULL);
    gorc_chan_release(pp.ping);
    gorc_chan_release(pp.pong);
    for (int i = 0; i < 5; i++) {
        gorc_mutex_lock(&mu);
        shared++;
        gorc_sleep(GORC_MILLISECOND / 10);
        gorc_mutex_unlock(&mu);
    }
    gorc_sleep(GORC_MILLISECOND);
    gorc_blocking(nap, NULL);
    gorc_trace_task_end(task);
    gorc_waitgroup_done(&wg);
}

static const char *out_path;
static bool flight;

static void write_json(const void *bin, size_t n)
{
    char *json;
    size_t len;
    int rc = gorc_trace_json(bin, n, &json, &len);
    if (rc != 0)
        die("gorc_trace_json", rc);
    FILE *f = fopen(out_path, "w");
    if (f == NULL || fwrite(json, 1, len, f) != len || fclose(f) != 0) {
        perror(out_path);
        exit(1);
    }
    free(json);
}

static void body(void *arg)
{
    (void)arg;
    int rc;
    char bin[4096];
    int fd = -1;
    if (flight) {
        gorc_flight_recorder_opts o = {.min_age = 5 * GORC_SECOND, .max_bytes = 64 << 20};
        if ((rc = gorc_flight_recorder_start(&o)) != 0)
            die("gorc_flight_recorder_start", rc);
    } else {
        snprintf(bin, sizeof bin, "%s.bin", out_path);
        fd = open(bin, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            perror(bin);
            exit(1);
        }
        if ((rc = gorc_trace_start(fd)) != 0)
            die("gorc_trace_start", rc);
        if (gorc_trace_start(fd) != -EBUSY)
            die("second gorc_trace_start is not EBUSY", -EINVAL);
    }
    for (int i = 0; i < WORKERS; i++) {
        gorc_waitgroup_add(&wg, 1);
        if ((rc = gorc_go(worker, NULL)) != 0)
            die("gorc_go", rc);
    }
    gorc_waitgroup_wait(&wg);
    /* Every echo closed its pong on its way out: wait until all have ended. */
    for (int64_t deadline = gorc_now() + 30 * GORC_SECOND; gorc_count() > 1;) {
        if (gorc_now() > deadline)
            die("goroutines did not end", -ETIMEDOUT);
        gorc_sleep(GORC_MILLISECOND / 2);
    }
    if (shared != WORKERS * 5)
        die("shared count wrong", -EINVAL);
    if (flight) {
        void *p;
        size_t n;
        if ((rc = gorc_flight_recorder_snapshot(&p, &n)) != 0)
            die("gorc_flight_recorder_snapshot", rc);
        gorc_flight_recorder_stop();
        write_json(p, n);
        free(p);
    } else {
        if ((rc = gorc_trace_stop()) != 0)
            die("gorc_trace_stop", rc);
        close(fd);
        FILE *f = fopen(bin, "rb");
        if (f == NULL)
            die("reopen", -errno);
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        void *p = malloc((size_t)n);
        if (p == NULL || fread(p, 1, (size_t)n, f) != (size_t)n)
            die("read back", -EIO);
        fclose(f);
        write_json(p, (size_t)n);
        free(p);
    }
}

static void hello(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)r;
    (void)arg;
    gorc_http_rw_write_string(w, "Hello, World!\n");
}

static void slow(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)r;
    (void)arg;
    gorc_sleep(100 * GORC_MILLISECOND);
    gorc_http_rw_write_string(w, "slept\n");
}

static void work(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)r;
    (void)arg;
    gorc_waitgroup_add(&wg, 1);
    if (gorc_go(worker, NULL) != 0) {
        gorc_waitgroup_done(&wg);
        gorc_http_error(w, 500, "no goroutine");
        return;
    }
    gorc_waitgroup_wait(&wg);
    gorc_http_rw_write_string(w, "worked\n");
}

static long serve_seconds;
static gorc_http_server *srv;

static void stop_later(void *arg)
{
    (void)arg;
    gorc_sleep(serve_seconds * GORC_SECOND);
    gorc_http_server_close(srv);
}

static void serve(void *arg)
{
    (void)arg;
    gorc_http_mux *mux;
    gorc_listener *ln;
    int rc;
    if ((rc = gorc_http_mux_new(&mux)) != 0 || (rc = gorc_http_debug_mount(mux, "/debug/")) != 0 ||
        (rc = gorc_http_mux_handle(mux, "GET /hello", hello, NULL)) != 0 ||
        (rc = gorc_http_mux_handle(mux, "GET /sleep", slow, NULL)) != 0 ||
        (rc = gorc_http_mux_handle(mux, "GET /work", work, NULL)) != 0)
        die("mux", rc);
    if (gorc_http_debug_mount(mux, "/debug/") != -EEXIST ||
        gorc_http_debug_mount(mux, "x") != -EINVAL)
        die("gorc_http_debug_mount errors", -EINVAL);
    gorc_http_server_opts o = {.handler = gorc_http_mux_serve, .arg = mux};
    if ((rc = gorc_http_server_new(&srv, &o)) != 0 ||
        (rc = gorc_tcp_listen(&ln, "127.0.0.1:0", NULL)) != 0)
        die("listen", rc);
    char where[GORC_ADDRSTRLEN];
    gorc_listener_addr(ln, where, sizeof where);
    printf("serving on %s\n", where);
    fflush(stdout);
    gorc_go(stop_later, NULL);
    gorc_http_server_serve(srv, ln);
    gorc_listener_release(ln);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "serve") == 0) {
        serve_seconds = atol(argv[2]);
        int rc = gorc_main(serve, NULL);
        return rc == 0 ? 0 : 1;
    }
    if (argc != 3 || (strcmp(argv[1], "trace") != 0 && strcmp(argv[1], "flight") != 0)) {
        fprintf(stderr, "usage: trace_prog trace|flight OUT.json | serve SECONDS\n");
        return 2;
    }
    flight = strcmp(argv[1], "flight") == 0;
    out_path = argv[2];
    int rc = gorc_main(body, NULL);
    if (rc != 0)
        die("gorc_main", rc);
    return 0;
}
