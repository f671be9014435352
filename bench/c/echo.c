/* echo: 100 TCP connections over loopback, each doing 64-byte request/response round trips
 * against an echo server in the same process, for 5 s (ECHO_SECONDS overrides). Prints wall
 * ns per round trip (elapsed / round trips over all connections). Both the server and the
 * clients are goroutines, one per connection, as in the Go counterpart bench/go/echo. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gorc.h"
#include "gorc_net.h"

enum { CONNS = 100, MSG = 64 };

static gorc_listener *ln;
static char addr[GORC_ADDRSTRLEN];
static atomic_int stop;
static gorc_chan *done; /* each client sends its round-trip count */

static void check(long rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "echo: %s: %s\n", what, strerror((int)-rc));
        exit(1);
    }
}

static void serve(void *arg)
{
    gorc_conn *c = arg;
    char buf[MSG];
    for (;;) {
        ssize_t n = gorc_conn_read_full(c, buf, MSG);
        if (n <= 0)
            break;
        check(gorc_conn_write_all(c, buf, MSG), "server write");
    }
    gorc_conn_close(c);
}

static void acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        gorc_conn *c;
        if (gorc_listener_accept(ln, &c) != 0)
            return;
        check(gorc_go(serve, c), "gorc_go");
    }
}

static void client(void *arg)
{
    (void)arg;
    gorc_conn *c;
    check(gorc_tcp_dial(&c, addr, 5 * GORC_SECOND), "dial");
    char req[MSG], resp[MSG];
    memset(req, 'x', sizeof req);
    int64_t count = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        memcpy(req, &count, sizeof count);
        check(gorc_conn_write_all(c, req, MSG), "client write");
        check(gorc_conn_read_full(c, resp, MSG), "client read");
        if (memcmp(req, resp, MSG) != 0) {
            fprintf(stderr, "echo: response does not match request\n");
            exit(1);
        }
        count++;
    }
    gorc_conn_close(c);
    gorc_chan_send(done, &count);
}

static void body(void *arg)
{
    (void)arg;
    const char *s = getenv("ECHO_SECONDS");
    double secs = s ? atof(s) : 5.0;
    check(gorc_tcp_listen(&ln, "127.0.0.1:0", NULL), "listen");
    check(gorc_listener_addr(ln, addr, sizeof addr), "listener addr");
    check(gorc_chan_new(&done, sizeof(int64_t), CONNS), "chan");
    check(gorc_go(acceptor, NULL), "gorc_go");
    int64_t t0 = gorc_now();
    for (int i = 0; i < CONNS; i++)
        check(gorc_go(client, NULL), "gorc_go");
    gorc_sleep((int64_t)(secs * 1e9));
    atomic_store(&stop, 1);
    int64_t total = 0;
    for (int i = 0; i < CONNS; i++) {
        int64_t n;
        gorc_chan_recv(done, &n);
        total += n;
    }
    int64_t elapsed = gorc_now() - t0;
    gorc_listener_close(ln);
    fprintf(stderr, "echo: %lld round trips in %.3f s over %d connections\n", (long long)total,
            elapsed / 1e9, CONNS);
    printf("%.1f\n", (double)elapsed / (double)total);
}

int main(void)
{
    check(gorc_main(body, NULL), "gorc_main");
    return 0;
}
