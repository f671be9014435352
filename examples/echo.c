/*
 * echo.c - a TCP echo server, one goroutine per connection.
 *
 *   make build/release/examples/echo && build/release/examples/echo 127.0.0.1:7000
 *   nc 127.0.0.1 7000        (in another terminal: every line comes back)
 *
 * The code reads like a threaded server - accept in a loop, hand each connection to its own
 * goroutine, read and write as if the calls blocked - but it runs on a handful of threads and
 * an idle connection costs a parked goroutine (about 4.5 KB), not a thread. A client that stays
 * silent for IDLE_TIMEOUT is dropped, with a read deadline. An optional second argument stops
 * the server after that many connections (handy for scripts).
 */
#include <gorc.h>
#include <gorc_net.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDLE_TIMEOUT (5 * 60 * GORC_SECOND)

static atomic_long active;

static void serve(void *arg)
{
    gorc_conn *c = arg;
    char peer[GORC_ADDRSTRLEN] = "?", buf[16384];
    gorc_conn_remote_addr(c, peer, sizeof peer);
    fprintf(stderr, "echo: %s connected (%ld active)\n", peer, atomic_load(&active));
    ssize_t n;
    for (;;) {
        gorc_conn_set_read_deadline(c, gorc_now() + IDLE_TIMEOUT);
        n = gorc_conn_read(c, buf, sizeof buf);
        if (n <= 0)
            break;
        if (gorc_conn_write_all(c, buf, (size_t)n) < 0)
            break;
    }
    const char *why = n == 0 ? "closed" : n == -ETIMEDOUT ? "idle too long" : strerror((int)-n);
    fprintf(stderr, "echo: %s %s (%ld active)\n", peer, why, atomic_fetch_sub(&active, 1) - 1);
    gorc_conn_close(c);
}

typedef struct args {
    const char *addr;
    long max_conns;
} args;

static void run(void *arg)
{
    args *a = arg;
    gorc_listener *ln;
    int rc = gorc_tcp_listen(&ln, a->addr, NULL);
    if (rc < 0) {
        fprintf(stderr, "echo: listen %s: %s\n", a->addr, strerror(-rc));
        exit(1);
    }
    char where[GORC_ADDRSTRLEN];
    gorc_listener_addr(ln, where, sizeof where);
    fprintf(stderr, "echo: listening on %s\n", where);
    for (long served = 0; a->max_conns == 0 || served < a->max_conns; served++) {
        gorc_conn *c;
        rc = gorc_listener_accept(ln, &c);
        if (rc < 0) {
            fprintf(stderr, "echo: accept: %s\n", strerror(-rc));
            break;
        }
        atomic_fetch_add(&active, 1); /* counted before it runs: see the wait below */
        if (gorc_go(serve, c) != 0) {
            atomic_fetch_sub(&active, 1);
            gorc_conn_close(c);
        }
    }
    gorc_listener_close(ln);
    while (atomic_load(&active) > 0) /* let the last connections finish */
        gorc_sleep(10 * GORC_MILLISECOND);
}

int main(int argc, char **argv)
{
    args a = {argc > 1 ? argv[1] : "127.0.0.1:7000", argc > 2 ? atol(argv[2]) : 0};
    return gorc_main(run, &a) == 0 ? 0 : 1;
}
