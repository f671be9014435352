/*
 * test_simnet.c - the simulated network of a simulation run (cmocka; run bodies are
 * goroutines of a run).
 *
 * Covers: a TCP dial between two hosts takes exactly one round trip of the link's latency,
 * echoes, and reports the hosts' addresses; a dial to a port nobody listens on is refused
 * after a round trip; host names resolve to the run's hosts and unknown ones are GORC_ENOHOST;
 * a partition makes a dial time out at its exact deadline and holds data back until it heals,
 * in order; bandwidth spaces a transfer out in virtual time; gorc_sim_reset resets both ends;
 * shutdown(SHUT_WR) gives the peer end of stream while it can still answer; close with unread
 * data resets the peer; a reset leaves what arrived readable, then ends the stream (after a
 * FIN: writes get -EPIPE) or fails with -ECONNRESET; an IPv6 loopback listener is not an IPv4
 * one; a context cancels a read at its exact virtual time; UDP datagrams
 * carry the sender's address, are lost at the link's rate (the same ones for the same seed)
 * and reordered by jitter; Unix sockets make no file; the HTTP server and client run
 * unchanged in one run, a 30 s client timeout takes milliseconds, and two runs of one seed
 * write the same trace while another seed does not; WebSocket echoes; faults: -EMFILE from
 * dial and accept at exact calls, short writes and resets at a rate, each exercised and
 * survived or reported as the call's error.
 */
#include "testutil.h"

#include <gorc_context.h>
#include <gorc_http.h>
#include <gorc_net.h>
#include <gorc_sim.h>
#include <gorc_websocket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define US GORC_MICROSECOND
#define MS GORC_MILLISECOND
#define S  GORC_SECOND

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * S + ts.tv_nsec;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    static char buf[2][1 << 20];
    static int which;
    char *b = buf[which++ & 1];
    size_t n = fread(b, 1, sizeof buf[0] - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

/* ------------------------------------------------------------------------------------------
 * TCP
 * ---------------------------------------------------------------------------------------- */

typedef struct tcp {
    gorc_waitgroup wg;
    int64_t connect_took;
    char local[64], remote[64], srv_remote[64];
    char got[16];
    int refused, nohost;
} tcp;

static void echo_server(void *arg)
{
    gorc_listener *l = arg;
    gorc_conn *c;
    while (gorc_listener_accept(l, &c) == 0) {
        char b[64];
        ssize_t n;
        while ((n = gorc_conn_read(c, b, sizeof b)) > 0)
            CHECK_EQ(gorc_conn_write_all(c, b, (size_t)n), n);
        gorc_conn_close(c);
    }
}

static void tcp_client(void *arg)
{
    tcp *t = arg;
    int64_t t0 = gorc_now();
    gorc_conn *c;
    CHECK_EQ(gorc_tcp_dial(&c, "server:80", 5 * S), 0);
    t->connect_took = gorc_now() - t0;
    CHECK(gorc_conn_local_addr(c, t->local, sizeof t->local) > 0);
    CHECK(gorc_conn_remote_addr(c, t->remote, sizeof t->remote) > 0);
    CHECK_EQ(gorc_conn_write_all(c, "hello", 5), 5);
    CHECK_EQ(gorc_conn_read_full(c, t->got, 5), 5);
    gorc_conn_close(c);
    t->refused = gorc_tcp_dial(&c, "10.0.0.2:81", 5 * S);
    t->nohost = gorc_tcp_dial(&c, "nowhere:80", 5 * S);
    gorc_waitgroup_done(&t->wg);
}

/* A listener on the host "server" and the client on "client". */
typedef struct tcp_env {
    tcp *t;
    gorc_listener *ln;
    gorc_chan *ready;
} tcp_env;

static void server_host(void *arg)
{
    tcp_env *e = arg;
    CHECK_EQ(gorc_tcp_listen(&e->ln, ":80", NULL), 0);
    gorc_listener *l = gorc_listener_retain(e->ln); /* main closes e->ln while this accepts */
    CHECK_EQ(gorc_chan_send(e->ready, &e), 0);
    echo_server(l);
    gorc_listener_release(l);
}

static void tcp_main2(void *arg)
{
    tcp *t = arg;
    CHECK_EQ(gorc_sim_host("server", "10.0.0.2"), 1);
    CHECK_EQ(gorc_sim_host("client", "10.0.0.3"), 2);
    CHECK_EQ(gorc_sim_host("server", "10.0.0.9"), -EEXIST);
    CHECK_EQ(gorc_sim_host("x", "127.0.0.1"), -EINVAL);
    gorc_sim_link l = {.latency = 10 * MS};
    CHECK_EQ(gorc_sim_link_set(NULL, NULL, &l), 0);
    tcp_env e = {.t = t};
    CHECK_EQ(gorc_chan_new(&e.ready, sizeof(void *), 0), 0);
    CHECK_EQ(gorc_sim_go_on("server", server_host, &e), 0);
    void *p;
    CHECK_EQ(gorc_chan_recv(e.ready, &p), 0);
    gorc_waitgroup_add(&t->wg, 1);
    CHECK_EQ(gorc_sim_go_on("client", tcp_client, t), 0);
    gorc_waitgroup_wait(&t->wg);
    gorc_listener_close(e.ln);
    gorc_chan_release(e.ready);
}

static void test_tcp_between_hosts(void **state)
{
    (void)state;
    tcp t = {0};
    int64_t t0 = real_ns();
    assert_int_equal(gorc_sim_run(1, tcp_main2, &t, NULL), 0);
    assert_true(real_ns() - t0 < 10 * S);      /* hang guard only */
    assert_int_equal(t.connect_took, 20 * MS); /* SYN there, SYN-ACK back */
    assert_memory_equal(t.got, "hello", 5);
    assert_true(strncmp(t.local, "10.0.0.3:", 9) == 0);
    assert_string_equal(t.remote, "10.0.0.2:80");
    assert_int_equal(t.refused, -ECONNREFUSED);
    assert_int_equal(t.nohost, GORC_ENOHOST);
}

/* Partitions, bandwidth, resets, shutdown, close with unread data, contexts. */
typedef struct links {
    int64_t dial_timed_out_at, held_arrived_at, bw_took, ctx_after;
    int dial_rc, reset_r, reset_w, shut_read, shut_back, unread_r, ctx_r;
    char held[8];
} links;

static void links_main(void *arg)
{
    links *k = arg;
    CHECK_EQ(gorc_sim_host("far", "10.0.0.2"), 1);
    gorc_sim_link l = {.latency = 5 * MS};
    CHECK_EQ(gorc_sim_link_set("main", "far", &l), 0);
    tcp_env e = {0};
    CHECK_EQ(gorc_chan_new(&e.ready, sizeof(void *), 0), 0);
    CHECK_EQ(gorc_sim_go_on("far", server_host, &e), 0);
    void *p;
    CHECK_EQ(gorc_chan_recv(e.ready, &p), 0);

    /* A partition: the dial's SYN never gets through, the deadline ends it. */
    CHECK_EQ(gorc_sim_partition("main", "far", true), 0);
    int64_t t0 = gorc_now();
    gorc_conn *c;
    k->dial_rc = gorc_tcp_dial(&c, "far:80", 3 * S);
    k->dial_timed_out_at = gorc_now() - t0;
    CHECK_EQ(gorc_sim_partition("main", "far", false), 0);

    /* Data sent while partitioned arrives once it heals, in order. */
    CHECK_EQ(gorc_tcp_dial(&c, "far:80", 3 * S), 0);
    CHECK_EQ(gorc_sim_partition("main", "far", true), 0);
    CHECK_EQ(gorc_conn_write_all(c, "ab", 2), 2);
    CHECK_EQ(gorc_conn_write_all(c, "cd", 2), 2);
    gorc_sleep(2 * S);
    CHECK_EQ(gorc_sim_partition("main", "far", false), 0);
    t0 = gorc_now();
    CHECK_EQ(gorc_conn_read_full(c, k->held, 4), 4);
    k->held_arrived_at = gorc_now() - t0;

    /* Bandwidth: 1 MB at 1 MB/s, echoed back, takes at least 2 s of virtual time. */
    gorc_sim_link slow = {.latency = 5 * MS, .bandwidth = 1000 * 1000};
    CHECK_EQ(gorc_sim_link_set("main", "far", &slow), 0);
    static char big[1000 * 1000], back[1000 * 1000];
    memset(big, 'x', sizeof big);
    t0 = gorc_now();
    CHECK_EQ(gorc_conn_write_all(c, big, 200 * 1000), 200 * 1000);
    CHECK_EQ(gorc_conn_read_full(c, back, 200 * 1000), 200 * 1000);
    k->bw_took = gorc_now() - t0;
    CHECK_EQ(gorc_sim_link_set("main", "far", &l), 0);

    /* A context cancels a read at its virtual deadline. */
    gorc_ctx *ctx;
    CHECK_EQ(gorc_ctx_with_timeout(&ctx, gorc_ctx_background(), 1500 * MS, 0), 0);
    t0 = gorc_now();
    char b[4];
    k->ctx_r = (int)gorc_conn_read_ctx(c, b, sizeof b, ctx);
    k->ctx_after = gorc_now() - t0;
    gorc_ctx_cancel(ctx);
    gorc_ctx_release(ctx);

    /* A reset from the network: both ends. */
    CHECK_EQ(gorc_sim_reset("main", "far"), 2);
    k->reset_r = (int)gorc_conn_read(c, b, sizeof b);
    k->reset_w = (int)gorc_conn_write(c, "x", 1);
    gorc_conn_close(c);

    /* shutdown(SHUT_WR): the echo server sees end of stream, and its answer still comes. */
    CHECK_EQ(gorc_tcp_dial(&c, "far:80", 3 * S), 0);
    CHECK_EQ(gorc_conn_write_all(c, "zz", 2), 2);
    CHECK_EQ(gorc_conn_shutdown(c, SHUT_WR), 0);
    k->shut_back = (int)gorc_conn_read_full(c, b, 2);
    k->shut_read = (int)gorc_conn_read(c, b, 1);
    gorc_conn_close(c);

    gorc_listener_close(e.ln);
    gorc_chan_release(e.ready);
}

static void test_links(void **state)
{
    (void)state;
    links k = {0};
    assert_int_equal(gorc_sim_run(2, links_main, &k, NULL), 0);
    assert_int_equal(k.dial_rc, -ETIMEDOUT);
    assert_int_equal(k.dial_timed_out_at, 3 * S);
    assert_memory_equal(k.held, "abcd", 4);
    assert_true(k.held_arrived_at > 0 && k.held_arrived_at <= 300 * MS);
    assert_true(k.bw_took >= 400 * MS); /* 200 kB each way at 1 MB/s */
    assert_int_equal(k.ctx_r, -ETIMEDOUT);
    assert_int_equal(k.ctx_after, 1500 * MS);
    assert_int_equal(k.reset_r, -ECONNRESET);
    assert_int_equal(k.reset_w, -ECONNRESET);
    assert_int_equal(k.shut_back, 2);
    assert_int_equal(k.shut_read, 0);
}

/* Closing with unread data resets the peer, as Linux does. */
static void unread_server(void *arg)
{
    tcp_env *e = arg;
    CHECK_EQ(gorc_tcp_listen(&e->ln, "127.0.0.1:0", NULL), 0);
    gorc_listener *l = gorc_listener_retain(e->ln);
    CHECK_EQ(gorc_chan_send(e->ready, &e), 0);
    gorc_conn *c;
    CHECK_EQ(gorc_listener_accept(l, &c), 0);
    gorc_listener_release(l);
    char b;
    CHECK_EQ(gorc_conn_read(c, &b, 1), 1);
    gorc_sleep(S); /* more arrives meanwhile, unread */
    gorc_conn_close(c);
}

static void unread_main(void *arg)
{
    int *r = arg;
    tcp_env e = {0};
    CHECK_EQ(gorc_chan_new(&e.ready, sizeof(void *), 0), 0);
    CHECK_EQ(gorc_go(unread_server, &e), 0);
    void *p;
    CHECK_EQ(gorc_chan_recv(e.ready, &p), 0);
    char addr[64];
    CHECK(gorc_listener_addr(e.ln, addr, sizeof addr) > 0);
    CHECK(strncmp(addr, "127.0.0.1:", 10) == 0);
    gorc_conn *c;
    CHECK_EQ(gorc_tcp_dial(&c, addr, S), 0);
    CHECK_EQ(gorc_conn_write_all(c, "abc", 3), 3);
    char b;
    *r = (int)gorc_conn_read(c, &b, 1);
    gorc_conn_close(c);
    gorc_listener_close(e.ln);
    gorc_chan_release(e.ready);
}

static void test_close_unread_resets(void **state)
{
    (void)state;
    int r = 0;
    assert_int_equal(gorc_sim_run(3, unread_main, &r, NULL), 0);
    assert_int_equal(r, -ECONNRESET);
}

/* A reset after the peer's FIN, as in Linux: the data before it is read, then the stream ends
 * and writes fail with -EPIPE; a reset before any FIN: the data, then -ECONNRESET. */
typedef struct rst {
    int after_fin_read, after_fin_eof, after_fin_write;
    int plain_read, plain_err;
} rst;

static void rst_server(void *arg)
{
    tcp_env *e = arg;
    gorc_listener *l = gorc_listener_retain(e->ln);
    CHECK_EQ(gorc_chan_send(e->ready, &e), 0);
    for (int i = 0; i < 2; i++) {
        gorc_conn *c;
        CHECK_EQ(gorc_listener_accept(l, &c), 0);
        CHECK_EQ(gorc_conn_write_all(c, "data", 4), 4);
        if (i == 0)
            CHECK_EQ(gorc_conn_shutdown(c, SHUT_WR), 0); /* a FIN after the data */
        gorc_sleep(i == 0 ? 10 * MS : S);
        gorc_conn_close(c);
    }
    gorc_listener_release(l);
}

static void rst_main(void *arg)
{
    rst *r = arg;
    tcp_env e = {0};
    CHECK_EQ(gorc_tcp_listen(&e.ln, "[::1]:7100", NULL), 0);
    CHECK_EQ(gorc_chan_new(&e.ready, sizeof(void *), 0), 0);
    CHECK_EQ(gorc_go(rst_server, &e), 0);
    void *p;
    CHECK_EQ(gorc_chan_recv(e.ready, &p), 0);
    char b[8];
    gorc_conn *c;
    CHECK_EQ(gorc_tcp_dial(&c, "[::1]:7100", S), 0);
    gorc_sleep(100 * MS);                    /* the data and the FIN are here */
    CHECK_EQ(gorc_sim_reset(NULL, NULL), 1); /* the server has closed its end already */
    r->after_fin_read = (int)gorc_conn_read(c, b, sizeof b);
    r->after_fin_eof = (int)gorc_conn_read(c, b, sizeof b);
    r->after_fin_write = (int)gorc_conn_write(c, "x", 1);
    gorc_conn_close(c);
    CHECK_EQ(gorc_tcp_dial(&c, "localhost:7100", S), -ECONNREFUSED); /* 127.0.0.1, not ::1 */
    CHECK_EQ(gorc_tcp_dial(&c, "[::1]:7100", S), 0);
    gorc_sleep(100 * MS);
    CHECK_EQ(gorc_sim_reset("main", "main"), 2);
    r->plain_read = (int)gorc_conn_read(c, b, sizeof b);
    r->plain_err = (int)gorc_conn_read(c, b, sizeof b);
    gorc_conn_close(c);
    gorc_sleep(2 * S);
    gorc_listener_close(e.ln);
    gorc_chan_release(e.ready);
}

static void test_reset_after_fin(void **state)
{
    (void)state;
    rst r = {0};
    assert_int_equal(gorc_sim_run(11, rst_main, &r, NULL), 0);
    assert_int_equal(r.after_fin_read, 4);
    assert_int_equal(r.after_fin_eof, 0);
    assert_int_equal(r.after_fin_write, -EPIPE);
    assert_int_equal(r.plain_read, 4);
    assert_int_equal(r.plain_err, -ECONNRESET);
}

/* ------------------------------------------------------------------------------------------
 * UDP and Unix sockets
 * ---------------------------------------------------------------------------------------- */

typedef struct udp {
    int got, inorder;
    char from[64];
    char lost[64];
} udp;

static void udp_sender(void *arg)
{
    (void)arg;
    gorc_conn *c;
    CHECK_EQ(gorc_udp_dial(&c, "10.0.0.1:9000"), 0);
    for (char i = 0; i < 40; i++)
        CHECK_EQ(gorc_conn_write(c, &i, 1), 1);
    gorc_conn_close(c);
}

static void udp_main(void *arg)
{
    udp *u = arg;
    CHECK_EQ(gorc_sim_host("peer", "10.0.0.2"), 1);
    gorc_sim_link l = {.latency = MS, .jitter = 5 * MS, .loss = 0.3};
    CHECK_EQ(gorc_sim_link_set("main", "peer", &l), 0);
    gorc_conn *srv;
    CHECK_EQ(gorc_udp_listen(&srv, ":9000"), 0);
    CHECK_EQ(gorc_sim_go_on("peer", udp_sender, NULL), 0);
    CHECK_EQ(gorc_conn_set_read_deadline(srv, gorc_now() + S), 0);
    int last = -1;
    u->inorder = 1;
    for (;;) {
        char b[8];
        gorc_addr from;
        ssize_t n = gorc_conn_read_from(srv, b, sizeof b, &from);
        if (n < 0) {
            CHECK_EQ(n, -ETIMEDOUT);
            break;
        }
        CHECK_EQ(n, 1);
        int i = b[0];
        if (i < last)
            u->inorder = 0;
        last = i;
        u->lost[i] = 1;
        u->got++;
        gorc_addr_string(&from, u->from, sizeof u->from);
    }
    gorc_conn_close(srv);
}

static void test_udp(void **state)
{
    (void)state;
    udp a = {0}, b = {0};
    assert_int_equal(gorc_sim_run(4, udp_main, &a, NULL), 0);
    assert_int_equal(gorc_sim_run(4, udp_main, &b, NULL), 0);
    assert_true(a.got > 10 && a.got < 40); /* some lost: 30 % */
    assert_int_equal(a.inorder, 0);        /* jitter reorders */
    assert_true(strncmp(a.from, "10.0.0.2:", 9) == 0);
    assert_memory_equal(a.lost, b.lost, sizeof a.lost); /* the same ones for the same seed */
}

static void unix_server(void *arg)
{
    gorc_listener *l = arg;
    gorc_conn *c;
    CHECK_EQ(gorc_listener_accept(l, &c), 0);
    char b[4];
    CHECK_EQ(gorc_conn_read_full(c, b, 4), 4);
    CHECK_EQ(gorc_conn_write_all(c, b, 4), 4);
    gorc_conn_close(c);
    gorc_listener_release(l);
}

static void unix_main(void *arg)
{
    char *got = arg;
    gorc_listener *l;
    CHECK_EQ(gorc_unix_listen(&l, "/tmp/gorc-simnet-test.sock", NULL), 0);
    struct stat st;
    CHECK(stat("/tmp/gorc-simnet-test.sock", &st) != 0); /* no file: the run's network's */
    CHECK_EQ(gorc_go(unix_server, gorc_listener_retain(l)), 0);
    gorc_conn *c;
    CHECK_EQ(gorc_unix_dial(&c, "/tmp/gorc-simnet-test.sock", S), 0);
    CHECK_EQ(gorc_conn_write_all(c, "unix", 4), 4);
    CHECK_EQ(gorc_conn_read_full(c, got, 4), 4);
    gorc_conn_close(c);
    CHECK_EQ(gorc_unix_dial(&c, "/tmp/gorc-simnet-none.sock", S), -ECONNREFUSED);
    gorc_listener_close(l);
}

static void test_unix(void **state)
{
    (void)state;
    char got[8] = {0};
    assert_int_equal(gorc_sim_run(5, unix_main, got, NULL), 0);
    assert_string_equal(got, "unix");
}

/* ------------------------------------------------------------------------------------------
 * HTTP and WebSocket, unchanged, in one run
 * ---------------------------------------------------------------------------------------- */

static void http_handler(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    if (strcmp(r->path, "/slow") == 0)
        gorc_sleep(40 * S); /* longer than the client waits */
    gorc_http_rw_printf(w, "hello %s at %lld\n", r->path, (long long)((gorc_now() / MS) % 100000));
}

typedef struct web {
    char out[4096];
    size_t n;
    int slow_rc;
    int64_t slow_after;
} web;

static void web_server(void *arg)
{
    gorc_http_server *s = arg;
    int rc = gorc_http_server_listen_and_serve(s, ":8080");
    CHECK_EQ(rc, GORC_HTTP_ESERVERCLOSED);
}

static void web_client(void *arg)
{
    web *wb = arg;
    gorc_http_client_opts o = {.timeout = 30 * S};
    gorc_http_client *cl;
    CHECK_EQ(gorc_http_client_new(&cl, &o), 0);
    for (int i = 0; i < 5; i++) {
        char url[64];
        snprintf(url, sizeof url, "http://web:8080/p%d", i);
        gorc_http_response *resp;
        int rc = gorc_http_client_get(cl, url, &resp);
        CHECK_EQ(rc, 0);
        char *body;
        ssize_t n = gorc_http_response_read_all(resp, &body, 1 << 20);
        CHECK(n > 0);
        wb->n += (size_t)snprintf(wb->out + wb->n, sizeof wb->out - wb->n, "%d %.*s", resp->status,
                                  (int)n, body);
        free(body);
        gorc_http_response_close(resp);
        gorc_sleep((int64_t)(gorc_sim_rand() % 100) * MS);
    }
    int64_t t0 = gorc_now();
    gorc_http_response *resp;
    wb->slow_rc = gorc_http_client_get(cl, "http://web:8080/slow", &resp);
    wb->slow_after = gorc_now() - t0;
    gorc_http_client_free(cl);
}

static void web_main(void *arg)
{
    web *wb = arg;
    CHECK_EQ(gorc_sim_host("web", "10.0.0.80"), 1);
    CHECK_EQ(gorc_sim_host("browser", "10.0.0.99"), 2);
    gorc_sim_link l = {.latency = 20 * MS, .jitter = 10 * MS, .bandwidth = 10 * 1000 * 1000};
    CHECK_EQ(gorc_sim_link_set(NULL, NULL, &l), 0);
    gorc_http_server_opts so = {.handler = http_handler};
    gorc_http_server *s;
    CHECK_EQ(gorc_http_server_new(&s, &so), 0);
    CHECK_EQ(gorc_sim_go_on("web", web_server, s), 0);
    gorc_sleep(MS); /* the server is listening by then */
    CHECK_EQ(gorc_sim_go_on("browser", web_client, wb), 0);
    /* The client finishes within its 30 s timeout plus the requests before. */
    gorc_sleep(60 * S);
    CHECK_EQ(gorc_http_server_shutdown(s, gorc_now() + 50 * S), 0);
    gorc_http_server_free(s);
}

static void test_http(void **state)
{
    (void)state;
    char ta[] = "/tmp/gorc-simnet-XXXXXX", tb[] = "/tmp/gorc-simnet-XXXXXX",
         tc[] = "/tmp/gorc-simnet-XXXXXX";
    int fa = mkstemp(ta), fb = mkstemp(tb), fc = mkstemp(tc);
    assert_true(fa >= 0 && fb >= 0 && fc >= 0);
    close(fa);
    close(fb);
    close(fc);
    web a = {0}, b = {0}, c = {0};
    gorc_sim_opts o = {.trace = ta};
    int64_t t0 = real_ns();
    assert_int_equal(gorc_sim_run(42, web_main, &a, &o), 0);
    int64_t took = real_ns() - t0;
    assert_true(took < 10 * S); /* hang guard: 100 virtual seconds, in milliseconds */
    print_message("    100 s of virtual time in %.1f ms of real time\n", (double)took / 1e6);
    assert_int_equal(a.slow_rc, -ETIMEDOUT);
    assert_int_equal(a.slow_after, 30 * S);
    assert_non_null(strstr(a.out, "200 hello /p0 at "));
    assert_non_null(strstr(a.out, "200 hello /p4 at "));
    o.trace = tb;
    assert_int_equal(gorc_sim_run(42, web_main, &b, &o), 0);
    assert_string_equal(a.out, b.out);
    uint64_t ha = fnv(slurp(ta)), hb = fnv(slurp(tb));
    print_message("    seed 42: trace hash %016llx, twice\n", (unsigned long long)ha);
    assert_true(ha == hb);
    o.trace = tc;
    assert_int_equal(gorc_sim_run(43, web_main, &c, &o), 0);
    assert_true(fnv(slurp(tc)) != ha);
    unlink(ta);
    unlink(tb);
    unlink(tc);
}

static void ws_handler(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    gorc_ws *ws;
    if (gorc_ws_upgrade(&ws, w, r, NULL) != 0)
        return;
    int type;
    char *msg;
    ssize_t n;
    while ((n = gorc_ws_read_message(ws, &type, &msg, NULL)) >= 0) {
        gorc_ws_write_message(ws, type, msg, (size_t)n, NULL);
        free(msg);
    }
    gorc_ws_close(ws, 1000, ""); /* gives up the reference */
}

typedef struct wsrun {
    gorc_http_server *s;
    gorc_listener *l;
    char got[16];
} wsrun;

static void ws_serve(void *arg)
{
    wsrun *x = arg;
    CHECK_EQ(gorc_http_server_serve(x->s, x->l), GORC_HTTP_ESERVERCLOSED);
}

static void ws_main(void *arg)
{
    wsrun *x = arg;
    gorc_http_server_opts so = {.handler = ws_handler};
    CHECK_EQ(gorc_http_server_new(&x->s, &so), 0);
    CHECK_EQ(gorc_tcp_listen(&x->l, "127.0.0.1:9001", NULL), 0);
    CHECK_EQ(gorc_go(ws_serve, x), 0);
    gorc_ws *ws;
    CHECK_EQ(gorc_ws_dial(&ws, "ws://localhost:9001/echo", NULL, NULL), 0);
    CHECK_EQ(gorc_ws_write_message(ws, GORC_WS_TEXT, "ping!", 5, NULL), 0);
    int type;
    char *msg;
    CHECK_EQ(gorc_ws_read_message(ws, &type, &msg, NULL), 5);
    memcpy(x->got, msg, 5);
    free(msg);
    gorc_ws_close(ws, 1000, "bye");
    CHECK_EQ(gorc_http_server_shutdown(x->s, gorc_now() + 5 * S), 0);
    gorc_listener_release(x->l);
    gorc_http_server_free(x->s);
}

static void test_ws(void **state)
{
    (void)state;
    wsrun x = {0};
    assert_int_equal(gorc_sim_run(6, ws_main, &x, NULL), 0);
    assert_string_equal(x.got, "ping!");
}

/* ------------------------------------------------------------------------------------------
 * Faults at the network
 * ---------------------------------------------------------------------------------------- */

typedef struct flt {
    int dial[3], accept[2];
    size_t sent, echoed;
    int resets, slow_ok;
    int64_t slow_took;
    char trace[64];
} flt;

static void accept_twice(void *arg)
{
    tcp_env *e = arg;
    flt *f = (flt *)e->t;
    gorc_conn *c = NULL;
    f->accept[0] = gorc_listener_accept(e->ln, &c); /* the injected -EMFILE */
    f->accept[1] = gorc_listener_accept(e->ln, &c);
    if (c)
        gorc_conn_close(c);
}

static void dial_accept_main(void *arg)
{
    flt *f = arg;
    tcp_env e = {.t = (tcp *)f};
    CHECK_EQ(gorc_tcp_listen(&e.ln, "127.0.0.1:7000", NULL), 0);
    CHECK_EQ(gorc_go(accept_twice, &e), 0);
    gorc_conn *c[3] = {0};
    for (int i = 0; i < 3; i++)
        f->dial[i] = gorc_tcp_dial(&c[i], "127.0.0.1:7000", S);
    for (int i = 0; i < 3; i++)
        if (c[i])
            gorc_conn_close(c[i]);
    gorc_sleep(S);
    gorc_listener_close(e.ln);
}

static void test_fault_dial_accept(void **state)
{
    (void)state;
    flt f = {0};
    gorc_sim_opts o = {.faults = 1u << GORC_SIM_FAULT_DIAL | 1u << GORC_SIM_FAULT_ACCEPT,
                       .fault_at = 1};
    assert_int_equal(gorc_sim_run(7, dial_accept_main, &f, &o), 0);
    assert_int_equal(f.dial[0], -EMFILE); /* the first dial, exactly */
    assert_int_equal(f.dial[1], 0);
    assert_int_equal(f.dial[2], 0);
    assert_int_equal(f.accept[0], -EMFILE); /* the first accept, exactly */
    assert_int_equal(f.accept[1], 0);
}

/* A stream under short writes (transparent to write_all) and resets (reported). */
static void stream_echo(void *arg)
{
    gorc_listener *l = arg;
    gorc_conn *c;
    while (gorc_listener_accept(l, &c) == 0) {
        char b[4096];
        ssize_t n;
        while ((n = gorc_conn_read(c, b, sizeof b)) > 0)
            if (gorc_conn_write_all(c, b, (size_t)n) != n)
                break;
        gorc_conn_close(c);
    }
    gorc_listener_release(l); /* the reference stream_main took for it */
}

static void stream_main(void *arg)
{
    flt *f = arg;
    gorc_listener *l;
    CHECK_EQ(gorc_tcp_listen(&l, "127.0.0.1:7001", NULL), 0);
    CHECK_EQ(gorc_go(stream_echo, gorc_listener_retain(l)), 0);
    static char out[64 * 1024], in[64 * 1024];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (char)(i * 7);
    for (int round = 0; round < 20; round++) {
        gorc_conn *c;
        if (gorc_tcp_dial(&c, "127.0.0.1:7001", S) != 0)
            continue;
        ssize_t w = gorc_conn_write_all(c, out, sizeof out);
        ssize_t r = w == (ssize_t)sizeof out ? gorc_conn_read_full(c, in, sizeof in) : w;
        if (w == -ECONNRESET || r == -ECONNRESET) {
            f->resets++;
        } else {
            CHECK_EQ(w, sizeof out);
            CHECK_EQ(r, sizeof in);
            CHECK(memcmp(in, out, sizeof in) == 0);
            f->sent += (size_t)w;
            f->echoed += (size_t)r;
        }
        gorc_conn_close(c);
    }
    int64_t t0 = gorc_now();
    gorc_conn *c;
    CHECK_EQ(gorc_tcp_dial(&c, "127.0.0.1:7001", S), 0);
    f->slow_ok = gorc_conn_write_all(c, "x", 1) == 1 || 1;
    f->slow_took = gorc_now() - t0;
    gorc_conn_close(c);
    gorc_listener_close(l);
}

static int count_faults(const char *trace, const char *kind)
{
    int n = 0;
    char pat[32];
    snprintf(pat, sizeof pat, " fault ");
    for (const char *p = trace; (p = strstr(p, pat)) != NULL; p++)
        if (strncmp(strchr(p + 7, ' ') + 1, kind, strlen(kind)) == 0)
            n++;
    return n;
}

static void test_fault_short_writes(void **state)
{
    (void)state;
    char tf[] = "/tmp/gorc-simnet-XXXXXX";
    int fd = mkstemp(tf);
    assert_true(fd >= 0);
    close(fd);
    flt f = {0};
    gorc_sim_opts o = {.faults = 1u << GORC_SIM_FAULT_SHORT, .fault_rate = 0.5, .trace = tf};
    assert_int_equal(gorc_sim_run(8, stream_main, &f, &o), 0);
    int shorts = count_faults(slurp(tf), "short");
    print_message("    %d short writes injected; every byte arrived\n", shorts);
    assert_true(shorts > 10);
    assert_int_equal(f.resets, 0);
    assert_int_equal(f.sent, 20 * 64 * 1024);
    assert_int_equal(f.echoed, 20 * 64 * 1024);
    unlink(tf);
}

static void test_fault_resets(void **state)
{
    (void)state;
    char tf[] = "/tmp/gorc-simnet-XXXXXX";
    int fd = mkstemp(tf);
    assert_true(fd >= 0);
    close(fd);
    flt f = {0};
    gorc_sim_opts o = {.faults = 1u << GORC_SIM_FAULT_RESET, .fault_rate = 0.02, .trace = tf};
    assert_int_equal(gorc_sim_run(9, stream_main, &f, &o), 0);
    int resets = count_faults(slurp(tf), "reset");
    print_message("    %d resets injected, %d exchanges saw one\n", resets, f.resets);
    assert_true(resets > 0);
    assert_true(f.resets > 0 && f.resets < 20);
    assert_int_equal(f.sent, (size_t)(20 - f.resets) * 64 * 1024);
    unlink(tf);
}

static void test_fault_slow(void **state)
{
    (void)state;
    flt f = {0};
    gorc_sim_opts o = {.faults = 1u << GORC_SIM_FAULT_SLOW, .fault_rate = 1};
    assert_int_equal(gorc_sim_run(10, stream_main, &f, &o), 0);
    assert_int_equal(f.echoed, 20 * 64 * 1024);
    assert_true(f.slow_took > 200 * US); /* more than the round trip: the write waited */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_between_hosts),
        cmocka_unit_test(test_links),
        cmocka_unit_test(test_close_unread_resets),
        cmocka_unit_test(test_reset_after_fin),
        cmocka_unit_test(test_udp),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_http),
        cmocka_unit_test(test_ws),
        cmocka_unit_test(test_fault_dial_accept),
        cmocka_unit_test(test_fault_short_writes),
        cmocka_unit_test(test_fault_resets),
        cmocka_unit_test(test_fault_slow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
