/*
 * test_http_drain.c - how a shutting-down HTTP server lets its keep-alive clients go without
 * failing a request (what restarts rely on, docs/restart.md): cmocka, bodies as goroutines.
 *
 * Covers: with shutdown_idle_grace, a request sent on an idle keep-alive connection after
 * shutdown began is answered, with Connection: close, and the connection then ends; an idle
 * connection that sends nothing is closed once the grace has passed (not before, and
 * shutdown returns 0); a response whose head went out before shutdown began (so it promised
 * keep-alive) keeps its connection for the client's next request, which is answered with
 * Connection: close; without the grace an idle connection is closed by shutdown, as in Go.
 * Timing bounds are hang guards, except "not before the grace", which is the property.
 */
#include "http_testutil.h"

#include <gorc_net.h>

#define GUARD (10 * GORC_SECOND)
#define GRACE (400 * GORC_MILLISECOND)

static gorc_chan *gate; /* /wait's handler blocks on it */

static void handler(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    if (strcmp(r->path, "/wait") == 0) {
        gorc_http_rw_write_string(w, "head\n");
        gorc_http_rw_flush(w); /* the head is out: keep-alive promised */
        gorc_chan_recv(gate, NULL);
    }
    gorc_http_rw_write_string(w, "ok\n");
}

/* A keep-alive connection. */
static gorc_conn *dial(fixture *f)
{
    gorc_conn *c;
    CHECK_EQ(gorc_tcp_dial(&c, f->addr, GUARD), 0);
    CHECK_EQ(gorc_conn_set_deadline(c, gorc_now() + GUARD), 0);
    return c;
}

static void send_get(gorc_conn *c, const char *path)
{
    char req[128];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    CHECK_EQ(gorc_conn_write_all(c, req, (size_t)n), n);
}

/* Read one response whose body ends with "ok\n". Returns whether it said Connection: close. */
static bool read_ok(gorc_conn *c)
{
    char buf[4096];
    size_t len = 0;
    for (;;) {
        buf[len] = 0;
        char *e = strstr(buf, "\r\n\r\n");
        if (e && (strstr(e, "ok\n") || strstr(e, "ok\r\n")))
            break;
        ssize_t k = gorc_conn_read(c, buf + len, sizeof buf - 1 - len);
        if (k <= 0)
            fprintf(stderr, "read: %zd (%s) after %zu bytes: %s\n", k, gorc_strerror((int)k), len,
                    buf);
        CHECK(k > 0);
        len += (size_t)k;
    }
    CHECK(strncmp(buf, "HTTP/1.1 200 ", 13) == 0);
    return strstr(buf, "\r\nConnection: close\r\n") != NULL;
}

/* Read the rest of a chunked response, up to its last chunk. */
static void read_chunked_end(gorc_conn *c)
{
    char buf[4096];
    size_t len = 0;
    for (;;) {
        buf[len] = 0;
        if (strstr(buf, "0\r\n\r\n"))
            return;
        ssize_t k = gorc_conn_read(c, buf + len, sizeof buf - 1 - len);
        CHECK(k > 0);
        len += (size_t)k;
    }
}

static void expect_eof(gorc_conn *c)
{
    char b;
    CHECK_EQ(gorc_conn_read(c, &b, 1), 0);
}

typedef struct stopper {
    fixture *f;
    int rc;
    int64_t took;
    gorc_chan *done;
} stopper;

static void stop_go(void *arg)
{
    stopper *s = arg;
    int64_t t0 = gorc_now();
    s->rc = gorc_http_server_shutdown(s->f->s, gorc_now() + GUARD);
    s->took = gorc_now() - t0;
    gorc_chan_close(s->done);
}

static void start_stop(stopper *s, fixture *f)
{
    s->f = f;
    CHECK_EQ(gorc_chan_new(&s->done, 0, 0), 0);
    CHECK_EQ(gorc_go(stop_go, s), 0);
}

static void wait_stop(stopper *s, fixture *f)
{
    gorc_case cs[1] = {{.chan = s->done, .dir = GORC_RECV}};
    CHECK_EQ(gorc_select_timeout(cs, 1, GUARD), 0);
    CHECK_EQ(s->rc, 0);
    int r;
    CHECK_EQ(gorc_chan_recv(f->done, &r), 0);
    CHECK_EQ(r, GORC_HTTP_ESERVERCLOSED);
    gorc_http_server_free(f->s);
    gorc_listener_release(f->l);
    gorc_chan_release(f->done);
    gorc_chan_release(s->done);
}

static void wait_closing(fixture *f)
{
    /* Shutdown has begun once the listener is closed: a new dial is refused. */
    for (int i = 0; i < 1000; i++) {
        gorc_conn *c;
        if (gorc_tcp_dial(&c, f->addr, GUARD) != 0)
            return;
        gorc_conn_close(c);
        gorc_sleep(GORC_MILLISECOND);
    }
    CHECK(!"shutdown did not close the listener");
}

GO_TEST(grace_request_run)
{
    fixture f;
    gorc_http_server_opts o = {.handler = handler, .shutdown_idle_grace = GRACE};
    fixture_start_opts(&f, &o);
    gorc_conn *c = dial(&f), *idle = dial(&f);
    send_get(c, "/");
    CHECK(!read_ok(c)); /* keep-alive */
    send_get(idle, "/");
    CHECK(!read_ok(idle));
    stopper s = {0};
    int64_t t0 = gorc_now();
    start_stop(&s, &f);
    wait_closing(&f);
    send_get(c, "/"); /* on an idle connection, after shutdown began: answered */
    CHECK(read_ok(c));
    expect_eof(c);
    expect_eof(idle); /* the one that sent nothing is closed after the grace... */
    CHECK(gorc_now() - t0 >= GRACE);
    wait_stop(&s, &f);
    CHECK(s.took >= GRACE); /* ...and shutdown waited for it */
    gorc_conn_close(c);
    gorc_conn_close(idle);
}

GO_TEST(promised_run)
{
    fixture f;
    gorc_http_server_opts o = {.handler = handler, .shutdown_idle_grace = 2 * GORC_SECOND};
    CHECK_EQ(gorc_chan_new(&gate, 0, 0), 0);
    fixture_start_opts(&f, &o);
    gorc_conn *c = dial(&f);
    send_get(c, "/wait");
    char buf[256];
    CHECK(gorc_conn_read(c, buf, sizeof buf) > 0); /* the head (keep-alive) and "head\n" */
    stopper s = {0};
    start_stop(&s, &f);
    wait_closing(&f);
    gorc_chan_close(gate); /* the handler ends after shutdown began */
    read_chunked_end(c);   /* the rest of that response */
    send_get(c, "/");      /* the client took the promise: its next request is answered */
    CHECK(read_ok(c));
    expect_eof(c);
    wait_stop(&s, &f);
    gorc_conn_close(c);
    gorc_chan_release(gate);
}

GO_TEST(no_grace_run)
{
    fixture f;
    gorc_http_server_opts o = {.handler = handler};
    fixture_start_opts(&f, &o);
    gorc_conn *c = dial(&f);
    send_get(c, "/");
    CHECK(!read_ok(c));
    gorc_sleep(20 * GORC_MILLISECOND); /* idle on the server's side too */
    stopper s = {0};
    start_stop(&s, &f);
    expect_eof(c);
    wait_stop(&s, &f);
    gorc_conn_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grace_request_run),
        cmocka_unit_test(promised_run),
        cmocka_unit_test(no_grace_run),
    };
    return cmocka_run_group_tests_name("http_drain", tests, NULL, NULL);
}
