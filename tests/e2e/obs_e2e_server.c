/*
 * obs_e2e_server.c - the program tests/e2e/obs-e2e observes: a gorc HTTP server with the
 * debugging endpoints mounted and known things going on inside it.
 *
 *   obs_e2e_server PORT SECONDS
 *
 * Serves /debug/pprof/... and /metrics on 127.0.0.1:PORT (0: any free port) and stops by
 * itself after SECONDS.
 * Inside, two goroutines burn CPU in functions with recognisable names (obs_hot_spin, exported;
 * obs_static_spin, static), one waits forever on a locked mutex (obs_stuck_on_lock), and
 * GET /slow takes 50 ms, GET /hello answers at once. Block and mutex profiling are on. Prints
 * "listening on 127.0.0.1:PORT" once ready.
 */
#include <gorc.h>
#include <gorc_debug.h>
#include <gorc_http.h>
#include <gorc_http_debug.h>
#include <gorc_net.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile uint64_t sink;
static gorc_mutex held;
static int64_t deadline;

__attribute__((noinline)) void obs_hot_spin(void *arg)
{
    (void)arg;
    while (gorc_now() < deadline) {
        for (uint64_t i = 0; i < 2000000; i++)
            sink += i * i;
        gorc_yield();
    }
}

__attribute__((noinline)) static void obs_static_spin(void *arg)
{
    (void)arg;
    while (gorc_now() < deadline) {
        for (uint64_t i = 0; i < 2000000; i++)
            sink ^= i + (sink >> 3);
        gorc_yield();
    }
}

__attribute__((noinline)) void obs_stuck_on_lock(void *arg)
{
    (void)arg;
    gorc_mutex_lock(&held);
    gorc_mutex_unlock(&held);
}

static void hello(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)r;
    (void)arg;
    gorc_http_rw_write_string(w, "hello\n");
}

static void slow(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)r;
    (void)arg;
    gorc_sleep(50 * GORC_MILLISECOND);
    gorc_http_rw_write_string(w, "slow\n");
}

static gorc_http_server *srv;

static void stopper(void *arg)
{
    (void)arg;
    gorc_sleep(deadline - gorc_now());
    gorc_http_server_close(srv);
}

static int port;

static void main_fn(void *arg)
{
    (void)arg;
    gorc_mutex_lock(&held);
    gorc_go(obs_stuck_on_lock, NULL);
    gorc_go(obs_hot_spin, NULL);
    gorc_go(obs_static_spin, NULL);
    gorc_set_block_profile_rate(1);
    gorc_set_mutex_profile_fraction(1);
    gorc_http_mux *m;
    if (gorc_http_mux_new(&m) != 0 || gorc_http_pprof_register(m, NULL) != 0 ||
        gorc_http_mux_handle(m, "GET /hello", hello, NULL) != 0 ||
        gorc_http_mux_handle(m, "GET /slow", slow, NULL) != 0) {
        fprintf(stderr, "obs_e2e_server: mux setup failed\n");
        exit(1);
    }
    gorc_http_server_opts o = {.handler = gorc_http_mux_serve, .arg = m};
    if (gorc_http_server_new(&srv, &o) != 0)
        exit(1);
    if (gorc_http_mux_handle(m, "GET /metrics", gorc_http_metrics_handler, srv) != 0)
        exit(1);
    gorc_listener *l;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    int rc = gorc_tcp_listen(&l, addr, NULL);
    if (rc != 0) {
        fprintf(stderr, "obs_e2e_server: listen: %s\n", gorc_strerror(rc));
        exit(1);
    }
    char bound[64];
    if (gorc_listener_addr(l, bound, sizeof bound) < 0)
        exit(1);
    printf("listening on %s\n", bound);
    fflush(stdout);
    gorc_go(stopper, NULL);
    gorc_http_server_serve(srv, l);
    exit(0);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: obs_e2e_server PORT SECONDS\n");
        return 2;
    }
    port = atoi(argv[1]);
    deadline = gorc_now() + (int64_t)atoi(argv[2]) * GORC_SECOND;
    return gorc_main(main_fn, NULL);
}
