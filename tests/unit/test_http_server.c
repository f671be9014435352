/*
 * test_http_server.c - the HTTP server against a raw in-process client.
 *
 * The client here writes exact bytes and reads exact bytes (with the project's response
 * parser), so every test states what goes over the wire. Real clients (curl, ab, wrk,
 * Python, Chromium) are driven by tests/e2e/http-e2e.
 */
#include "http_testutil.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <gorc_http.h>
#include <string.h>
#include <unistd.h>

#include "http/internal.h"
#include "http/parse.h"

/* ------------------------------------------------------------------------------------------
 * A server with test handlers, chosen by path
 * ---------------------------------------------------------------------------------------- */

static _Atomic int api_results[16];
static gorc_chan *gate;          /* the /slow handler waits for a value here */
static _Atomic int slow_entered; /* /slow handlers that have started */

static void h_echo_body(gorc_http_rw *w, gorc_http_request *r)
{
    char *body;
    ssize_t n = gorc_http_request_read_all(r, &body, 0);
    if (n < 0) {
        if (!gorc_http_rw_sent(w))
            gorc_http_error(w, n == GORC_HTTP_ETOOLARGE ? 413 : 400, "bad body");
        return;
    }
    gorc_http_rw_write(w, body, (size_t)n);
    free(body);
}

static void h_big(gorc_http_rw *w, gorc_http_request *r)
{
    if (strcmp(r->query, "html") == 0)
        gorc_http_rw_write_string(w, "<!DOCTYPE html><p>");
    char buf[1000];
    for (int i = 0; i < 100; i++) {
        memset(buf, 'a' + i % 26, sizeof buf);
        CHECK_EQ(gorc_http_rw_write(w, buf, sizeof buf), (long)sizeof buf);
    }
}

static void h_api(gorc_http_rw *w, gorc_http_request *r)
{
    api_results[0] = gorc_http_rw_set_header(w, "X-Bad", "a\r\nInjected: 1");
    api_results[1] = gorc_http_rw_set_header(w, "Bad Name", "v");
    api_results[2] = gorc_http_rw_set_header(w, "Transfer-Encoding", "chunked");
    api_results[3] = gorc_http_rw_add_header(w, "X-Multi", "1");
    api_results[4] = gorc_http_rw_add_header(w, "X-Multi", "2");
    api_results[5] = gorc_http_rw_write_header(w, 42);
    api_results[6] = gorc_http_rw_write_header(w, 201);
    api_results[7] = gorc_http_rw_write_header(w, 202);
    api_results[8] = gorc_http_rw_set_header(w, "Content-Length", "5");
    api_results[9] = (int)gorc_http_rw_write(w, "123456", 6);
    api_results[10] = (int)gorc_http_rw_write_string(w, "12345");
    api_results[11] = gorc_http_rw_flush(w);
    api_results[12] = gorc_http_rw_set_header(w, "X-Late", "1");
}

/* /ctxwait: wait for the request's context to end (the client leaving, or the server
 * closing), then record why and what a write says; /ctxquick: ask for the context, answer. */
static _Atomic int ctx_err, ctx_cause, ctx_write, ctx_entered;

static void h_ctxwait(gorc_http_rw *w, gorc_http_request *r)
{
    gorc_ctx *ctx = gorc_http_request_ctx(r);
    CHECK(ctx != NULL);
    atomic_store(&ctx_entered, 1);
    gorc_case cs[1] = {{.chan = gorc_ctx_done(ctx), .dir = GORC_RECV}};
    CHECK_EQ(gorc_select_timeout(cs, 1, 10 * GORC_SECOND), 0);
    ctx_err = gorc_ctx_err(ctx);
    ctx_cause = gorc_ctx_cause(ctx);
    ctx_write = (int)gorc_http_rw_write_string(w, "too late");
}

static void h_ctxquick(gorc_http_rw *w, gorc_http_request *r)
{
    gorc_ctx *ctx = gorc_http_request_ctx(r);
    CHECK(ctx != NULL && gorc_ctx_err(ctx) == 0);
    gorc_http_rw_write_string(w, "quick");
}

static void handler(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    const char *p = r->path;
    if (strcmp(p, "/hello") == 0) {
        gorc_http_rw_write_string(w, "Hello, World!\n");
    } else if (strcmp(p, "/path") == 0 || strncmp(p, "/p/", 3) == 0) {
        gorc_http_rw_printf(w, "%s %s ?%s host=%s", r->method, r->path, r->query, r->host);
    } else if (strcmp(p, "/echo") == 0) {
        h_echo_body(w, r);
    } else if (strcmp(p, "/big") == 0) {
        h_big(w, r);
    } else if (strcmp(p, "/ctxwait") == 0) {
        h_ctxwait(w, r);
    } else if (strcmp(p, "/ctxquick") == 0) {
        h_ctxquick(w, r);
    } else if (strcmp(p, "/nocontent") == 0) {
        gorc_http_rw_write_header(w, 204);
        api_results[13] = (int)gorc_http_rw_write_string(w, "x");
    } else if (strcmp(p, "/api") == 0) {
        h_api(w, r);
    } else if (strcmp(p, "/error") == 0) {
        gorc_http_rw_set_header(w, "X-Kept", "1");
        gorc_http_rw_set_header(w, "Content-Length", "1000");
        gorc_http_rw_write_string(w, "replaced");
        gorc_http_error(w, 403, "go away");
    } else if (strcmp(p, "/redirect") == 0) {
        gorc_http_redirect(w, "/to?a=\"<b>\"", 302);
    } else if (strcmp(p, "/slow") == 0) {
        atomic_fetch_add(&slow_entered, 1);
        gorc_chan_recv(gate, NULL);
        gorc_http_rw_write_string(w, "slow done");
    } else if (strcmp(p, "/ignore-body") == 0) {
        gorc_http_rw_write_string(w, "ignored");
    } else if (strcmp(p, "/file") == 0) {
        int fd = gorc_file_open("/proc/self/exe", O_RDONLY, 0);
        CHECK(fd >= 0);
        gorc_http_rw_set_header(w, "Content-Type", "application/octet-stream");
        CHECK_EQ(gorc_http_rw_send_file(w, fd, 0, 100000), 100000);
        close(fd);
    } else {
        gorc_http_error(w, 404, NULL);
    }
}

static void fixture_start(fixture *f, gorc_http_server_opts *o)
{
    o->handler = handler;
    fixture_start_opts(f, o);
}

/* ------------------------------------------------------------------------------------------
 * A raw client
 * ---------------------------------------------------------------------------------------- */

typedef struct client {
    gorc_conn *c;
    char buf[1 << 17];
    size_t len;
} client;

typedef struct reply {
    int status;
    char head[8192];
    char *body;
    size_t blen;
    bool chunked;
    int64_t clen;
} reply;

static client *dial(fixture *f)
{
    client *cl = calloc(1, sizeof *cl);
    CHECK(cl != NULL);
    CHECK_EQ(gorc_tcp_dial(&cl->c, f->addr, 5 * GORC_SECOND), 0);
    gorc_conn_set_deadline(cl->c, gorc_now() + 20 * GORC_SECOND);
    return cl;
}

static void hangup(client *cl)
{
    gorc_conn_close(cl->c);
    free(cl);
}

static void send_str(client *cl, const char *s)
{
    CHECK_EQ(gorc_conn_write_all(cl->c, s, strlen(s)), (long)strlen(s));
}

/* Read more bytes; false at end of stream. */
static bool more(client *cl)
{
    CHECK(cl->len < sizeof cl->buf);
    ssize_t n = gorc_conn_read(cl->c, cl->buf + cl->len, sizeof cl->buf - cl->len);
    if (n < 0)
        fprintf(stderr, "client read: %zd\n", n);
    CHECK(n >= 0);
    cl->len += (size_t)n;
    return n > 0;
}

static void consume(client *cl, size_t n)
{
    memmove(cl->buf, cl->buf + n, cl->len - n);
    cl->len -= n;
}

static void read_body(client *cl, reply *r, gorc__http_response *pr)
{
    r->body = malloc(1 << 20);
    CHECK(r->body != NULL);
    if (pr->body == GORC__HTTP_BODY_LENGTH) {
        while (cl->len < (size_t)pr->content_length)
            CHECK(more(cl));
        memcpy(r->body, cl->buf, (size_t)pr->content_length);
        r->blen = (size_t)pr->content_length;
        consume(cl, r->blen);
    } else if (pr->body == GORC__HTTP_BODY_CHUNKED) {
        gorc__http_chunked d;
        gorc__http_chunked_init(&d, 0, NULL);
        for (;;) {
            size_t used = 0;
            gorc__http_slice data;
            int rc = gorc__http_chunked_decode(&d, cl->buf, cl->len, &used, &data);
            CHECK(rc >= 0);
            if (rc == GORC__HTTP_CHUNK_DATA) {
                memcpy(r->body + r->blen, data.p, data.n);
                r->blen += data.n;
            }
            consume(cl, used);
            if (rc == GORC__HTTP_CHUNK_DONE)
                break;
            if (rc == GORC__HTTP_NEED_MORE)
                CHECK(more(cl));
        }
    } else if (pr->body == GORC__HTTP_BODY_CLOSE) {
        while (more(cl))
            ;
        memcpy(r->body, cl->buf, cl->len);
        r->blen = cl->len;
        cl->len = 0;
    }
    r->body[r->blen] = 0;
}

/* Read one response (skipping 1xx unless keep_interim). */
static void read_resp(client *cl, reply *r, bool head_req)
{
    memset(r, 0, sizeof *r);
    for (;;) {
        gorc__http_header hdrs[64];
        gorc__http_response pr = {.headers = hdrs, .headers_cap = 64, .head_request = head_req};
        int n = gorc__http_parse_response(&pr, cl->buf, cl->len, 0, NULL);
        CHECK(n >= 0);
        if (n == 0) {
            CHECK(more(cl));
            continue;
        }
        CHECK((size_t)n < sizeof r->head);
        memcpy(r->head, cl->buf, (size_t)n);
        r->head[n] = 0;
        r->status = pr.status;
        r->chunked = pr.chunked;
        r->clen = pr.content_length;
        consume(cl, (size_t)n);
        read_body(cl, r, &pr);
        return;
    }
}

static void reply_free(reply *r)
{
    free(r->body);
    r->body = NULL;
}

/* One request, one response, on a fresh connection. want_closed: check the server closes
 * the connection after it; else check it still answers on it. */
static void exchange(fixture *f, const char *req, reply *r, bool head_req, bool want_closed)
{
    client *cl = dial(f);
    send_str(cl, req);
    read_resp(cl, r, head_req);
    if (want_closed) {
        CHECK(cl->len == 0 && !more(cl));
    } else {
        reply again;
        send_str(cl, "GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
        read_resp(cl, &again, false);
        CHECK(strcmp(again.body, "Hello, World!\n") == 0);
        reply_free(&again);
    }
    hangup(cl);
}

static bool has(const reply *r, const char *s)
{
    return strstr(r->head, s) != NULL;
}

/* ------------------------------------------------------------------------------------------
 * Tests
 * ---------------------------------------------------------------------------------------- */

GO_TEST(test_keepalive_and_request_fields)
{
    fixture f;
    gorc_http_server_opts o = {0};
    fixture_start(&f, &o);
    client *cl = dial(&f);
    reply r;
    for (int i = 0; i < 3; i++) {
        send_str(cl, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        read_resp(cl, &r, false);
        CHECK_EQ(r.status, 200);
        CHECK(strcmp(r.body, "Hello, World!\n") == 0);
        CHECK(has(&r, "Content-Length: 14\r\n"));
        CHECK(has(&r, "\r\nDate: "));
        CHECK(has(&r, "Content-Type: text/plain; charset=utf-8"));
        CHECK(!has(&r, "Connection:"));
        reply_free(&r);
    }
    send_str(cl, "GET /p/a%20b%2Fc?x=1&y=%41 HTTP/1.1\r\nHost: example.com:80\r\n\r\n");
    read_resp(cl, &r, false);
    CHECK(strcmp(r.body, "GET /p/a b/c ?x=1&y=%41 host=example.com:80") == 0);
    reply_free(&r);
    send_str(cl, "GET http://other.org/path?q HTTP/1.1\r\nHost: other.org\r\n\r\n");
    read_resp(cl, &r, false);
    CHECK(strcmp(r.body, "GET /path ?q host=other.org") == 0);
    reply_free(&r);
    /* More fields than a pool buffer's 85 header slots (the default limit is 100). */
    char many[4096] = "GET /hello HTTP/1.1\r\nHost: h\r\n";
    for (int i = 0; i < 95; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "X-%d: %d\r\n", i, i);
    strcat(many, "\r\n");
    send_str(cl, many);
    read_resp(cl, &r, false);
    CHECK_EQ(r.status, 200);
    reply_free(&r);
    hangup(cl);
    gorc_http_server_stats st;
    gorc_http_server_stats_get(f.s, &st);
    CHECK_EQ(st.conns_total, 1);
    CHECK_EQ(st.requests, 6);
    fixture_stop(&f);
}

GO_TEST(test_pipelining)
{
    fixture f;
    gorc_http_server_opts o = {0};
    fixture_start(&f, &o);
    client *cl = dial(&f);
    char req[4096] = "";
    for (int i = 0; i < 8; i++) {
        char one[128];
        snprintf(one, sizeof one, "GET /p/%d HTTP/1.1\r\nHost: h\r\n\r\n", i);
        strcat(req, one);
    }
    strcat(req, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");
    strcat(req, "GET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    send_str(cl, req);
    reply r;
    for (int i = 0; i < 8; i++) {
        read_resp(cl, &r, false);
        char want[64];
        snprintf(want, sizeof want, "GET /p/%d ? host=h", i);
        CHECK(strcmp(r.body, want) == 0);
        reply_free(&r);
    }
    read_resp(cl, &r, false);
    CHECK(strcmp(r.body, "hello") == 0);
    reply_free(&r);
    read_resp(cl, &r, false);
    CHECK(has(&r, "Connection: close\r\n"));
    reply_free(&r);
    CHECK(!more(cl));
    hangup(cl);
    fixture_stop(&f);
}

GO_TEST(test_response_framing)
{
    fixture f;
    gorc_http_server_opts o = {0};
    fixture_start(&f, &o);
    reply r;
    /* Larger than the buffer: chunked for HTTP/1.1... */
    exchange(&f, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n", &r, false, false);
    CHECK(r.chunked);
    CHECK(has(&r, "Content-Type: text/plain; charset=utf-8"));
    CHECK_EQ(r.blen, 100000);
    for (size_t i = 0; i < r.blen; i++)
        CHECK_EQ(r.body[i], 'a' + (int)(i / 1000) % 26);
    reply_free(&r);
    /* ...delimited by close for HTTP/1.0. */
    exchange(&f, "GET /big HTTP/1.0\r\n\r\n", &r, false, true);
    CHECK(!r.chunked && r.clen == -1 && r.blen == 100000);
    CHECK(has(&r, "Connection: close"));
    reply_free(&r);
    /* HTTP/1.0 keep-alive gets a length and keeps the connection. */
    exchange(&f, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r, false, false);
    CHECK(has(&r, "Connection: keep-alive"));
    reply_free(&r);
    exchange(&f, "GET /hello HTTP/1.0\r\n\r\n", &r, false, true);
    reply_free(&r);
    exchange(&f, "HEAD /big?html HTTP/1.1\r\nHost: h\r\n\r\n", &r, true, false);
    CHECK(has(&r, "Content-Type: text/html; charset=utf-8") && has(&r, "Content-Length: 100018"));
    reply_free(&r);
    /* HEAD: the length of the GET, no body. */
    client *cl = dial(&f);
    send_str(cl, "HEAD /hello HTTP/1.1\r\nHost: h\r\n\r\nGET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
    read_resp(cl, &r, true);
    CHECK(has(&r, "Content-Length: 14\r\n") && r.blen == 0);
    reply_free(&r);
    read_resp(cl, &r, false);
    CHECK(strcmp(r.body, "Hello, World!\n") == 0);
    reply_free(&r);
    hangup(cl);
    /* 204: no body, no length; the write was refused. */
    exchange(&f, "GET /nocontent HTTP/1.1\r\nHost: h\r\n\r\n", &r, false, false);
    CHECK_EQ(r.status, 204);
    CHECK(!has(&r, "Content-Length") && !has(&r, "Transfer-Encoding"));
    CHECK_EQ(api_results[13], GORC_HTTP_EBODYNOTALLOWED);
    reply_free(&r);
    /* A file via sendfile. */
    exchange(&f, "GET /file HTTP/1.1\r\nHost: h\r\n\r\n", &r, false, false);
    CHECK_EQ(r.blen, 100000);
    CHECK(has(&r, "Content-Length: 100000"));
    CHECK(memcmp(r.body, "\177ELF", 4) == 0);
    reply_free(&r);
    fixture_stop(&f);
}

GO_TEST(test_writer_api)
{
    fixture f;
    gorc_http_server_opts o = {0};
    fixture_start(&f, &o);
    reply r;
    exchange(&f, "GET /api HTTP/1.1\r\nHost: h\r\n\r\n", &r, false, false);
    CHECK_EQ(api_results[0], -EINVAL);
    CHECK_EQ(api_results[1], -EINVAL);
    CHECK_EQ(api_results[2], -EINVAL);
    CHECK_EQ(api_results[3], 0);
    CHECK_EQ(api_results[4], 0);
    CHECK_EQ(api_results[5], -EINVAL);
    CHECK_EQ(api_results[6], 0);
    CHECK_EQ(api_results[7], -EALREADY);
    CHECK_EQ(api_results[8], 0);
    CHECK_EQ(api_results[9], -EINVAL);
    CHECK_EQ(api_results[10], 5);
    CHECK_EQ(api_results[11], 0);
    CHECK_EQ(api_results[12], -EALREADY);
    CHECK_EQ(r.status, 201);
    CHECK(has(&r, "X-Multi: 1\r\nX-Multi: 2\r\n"));
    CHECK(!has(&r, "Injected"));
    CHECK(strcmp(r.body, "12345") == 0);
    reply_free(&r);
    exchange(&f, "GET /error HTTP/1.1\r\nHost: h\r\n\r\n", &r, false, false);
    CHECK_EQ(r.status, 403);
    CHECK(strcmp(r.body, "go away\n") == 0 && has(&r, "X-Kept: 1"));
    CHECK(has(&r, "X-Content-Type-Options: nosniff"));
    reply_free(&r);
    exchange(&f, "GET /redirect HTTP/1.1\r\nHost: h\r\n\r\n", &r, false, false);
    CHECK_EQ(r.status, 302);
    CHECK(has(&r, "Location: /to?a=\"<b>\"\r\n"));
    CHECK(strstr(r.body, "&#34;&lt;b&gt;&#34;") != NULL);
    reply_free(&r);
    fixture_stop(&f);
}

GO_TEST(test_request_bodies)
{
    fixture f;
    gorc_http_server_opts o = {.max_body_bytes = 1000};
    fixture_start(&f, &o);
    reply r;
    exchange(&f, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", &r, false,
             false);
    CHECK(strcmp(r.body, "abc") == 0);
    reply_free(&r);
    exchange(&f,
             "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n",
             &r, false, false);
    CHECK(strcmp(r.body, "abcde") == 0);
    reply_free(&r);
    /* Over the limit: declared, or found while decoding chunks. */
    exchange(&f, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n", &r, false, true);
    CHECK_EQ(r.status, 413);
    reply_free(&r);
    exchange(&f,
             "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3e9\r\n",
             &r, false, true);
    CHECK_EQ(r.status, 413);
    reply_free(&r);
    /* A malformed chunk: the handler's read fails, the connection closes. */
    exchange(&f, "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", &r,
             false, true);
    CHECK_EQ(r.status, 400);
    reply_free(&r);
    /* An unread body is drained and the connection kept. */
    client *cl = dial(&f);
    send_str(cl, "POST /ignore-body HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789"
                 "GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
    read_resp(cl, &r, false);
    CHECK(strcmp(r.body, "ignored") == 0 && !has(&r, "Connection: close"));
    reply_free(&r);
    read_resp(cl, &r, false);
    CHECK(strcmp(r.body, "Hello, World!\n") == 0);
    reply_free(&r);
    hangup(cl);
    fixture_stop(&f);
}

GO_TEST(test_expect_continue)
{
    fixture f;
    gorc_http_server_opts o = {0};
    fixture_start(&f, &o);
    client *cl = dial(&f);
    send_str(cl,
             "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    reply r;
    gorc__http_header hdrs[8];
    gorc__http_response pr = {.headers = hdrs, .headers_cap = 8};
    int n;
    while ((n = gorc__http_parse_response(&pr, cl->buf, cl->len, 0, NULL)) == 0)
        CHECK(more(cl));
    CHECK_EQ(pr.status, 100);
    consume(cl, (size_t)n);
    send_str(cl, "ping");
    read_resp(cl, &r, false);
    CHECK_EQ(r.status, 200);
    CHECK(strcmp(r.body, "ping") == 0);
    reply_free(&r);
    hangup(cl);
    /* A handler that does not read: no 100, and the connection closes after the answer. */
    exchange(&f,
             "POST /ignore-body HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
             "Expect: 100-continue\r\n\r\n",
             &r, false, true);
    CHECK_EQ(r.status, 200);
    CHECK(has(&r, "Connection: close"));
    reply_free(&r);
    fixture_stop(&f);
}

static const struct {
    const char *req;
    int status;
} bad[] = {
    {"GET / HTTP/1.1\r\n\r\n", 400}, /* no Host */
    {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400}, /* obs-fold */
    {"GET / HTTP/1.1\r\nHost: h\r\nBad Name: a\r\n\r\n", 400},
    {"GET / HTTP/1.1\nHost: h\n\n", 400}, /* bare LF */
    {"GET /%00 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
    {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
    {"GET / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 417},
};

GO_TEST(test_rejections)
{
    fixture f;
    gorc_http_server_opts o = {.max_request_line = 200, .max_header_bytes = 400, .max_headers = 5};
    fixture_start(&f, &o);
    reply r;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        exchange(&f, bad[i].req, &r, false, true);
        if (r.status != bad[i].status)
            fprintf(stderr, "case %zu: got %d\n", i, r.status);
        CHECK_EQ(r.status, bad[i].status);
        CHECK(has(&r, "Connection: close"));
        reply_free(&r);
    }
    char big[1024];
    snprintf(big, sizeof big, "GET /%0300d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
    exchange(&f, big, &r, false, true);
    CHECK_EQ(r.status, 414);
    reply_free(&r);
    snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: h\r\nX: %0500d\r\n\r\n", 0);
    exchange(&f, big, &r, false, true);
    CHECK_EQ(r.status, 431);
    reply_free(&r);
    exchange(&f, "GET / HTTP/1.1\r\nHost: h\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\n\r\n", &r,
             false, true);
    CHECK_EQ(r.status, 431);
    reply_free(&r);
    gorc_http_server_stats st;
    gorc_http_server_stats_get(f.s, &st);
    CHECK_EQ(st.bad_requests, sizeof bad / sizeof bad[0] + 3);
    CHECK_EQ(st.requests, 0);
    fixture_stop(&f);
}

GO_TEST(test_timeouts)
{
    fixture f;
    gorc_http_server_opts o = {.read_header_timeout = 200 * GORC_MILLISECOND,
                               .idle_timeout = 200 * GORC_MILLISECOND,
                               .read_timeout = 300 * GORC_MILLISECOND};
    fixture_start(&f, &o);
    /* Slowloris: a head that never ends. */
    client *cl = dial(&f);
    send_str(cl, "GET / HTTP/1.1\r\nHost: h\r\n");
    int64_t t0 = gorc_now();
    for (int i = 0; i < 100; i++) {
        if (gorc_conn_write_all(cl->c, "X: y\r\n", 6) < 0)
            break;
        gorc_sleep(20 * GORC_MILLISECOND);
    }
    while (more(cl))
        ;
    CHECK(gorc_now() - t0 < 5 * GORC_SECOND);
    hangup(cl);
    /* Idle keep-alive connection. */
    cl = dial(&f);
    reply r;
    send_str(cl, "GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
    read_resp(cl, &r, false);
    reply_free(&r);
    CHECK(!more(cl));
    hangup(cl);
    /* A body that stops coming. */
    cl = dial(&f);
    send_str(cl, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    read_resp(cl, &r, false);
    CHECK_EQ(r.status, 400);
    reply_free(&r);
    hangup(cl);
    gorc_http_server_stats st;
    gorc_http_server_stats_get(f.s, &st);
    CHECK(st.timeouts >= 2);
    fixture_stop(&f);
}

typedef struct slow_client {
    fixture *f;
    gorc_chan *out;
} slow_client;

static void slow_request(void *arg)
{
    slow_client *sc = arg;
    reply r;
    exchange(sc->f, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n", &r, false, true);
    int res = r.status == 200 && strcmp(r.body, "slow done") == 0 && has(&r, "Connection: close");
    reply_free(&r);
    gorc_chan_send(sc->out, &res);
}

typedef struct shut {
    gorc_http_server *s;
    int64_t d;
    gorc_chan *out;
} shut;

static void shutdown_run(void *arg)
{
    shut *sh = arg;
    int r = gorc_http_server_shutdown(sh->s, gorc_now() + sh->d);
    gorc_chan_send(sh->out, &r);
}

GO_TEST(test_request_context)
{
    fixture f;
    gorc_http_server_opts o = {0};
    fixture_start(&f, &o);
    reply r;

    /* The context of a request whose handler returns normally; keep-alive goes on, with the
     * connection's deadlines intact, and a pipelined pair works too. */
    client *cl = dial(&f);
    for (int i = 0; i < 3; i++) {
        send_str(cl, "GET /ctxquick HTTP/1.1\r\nHost: h\r\n\r\n");
        read_resp(cl, &r, false);
        CHECK_EQ(r.status, 200);
        CHECK(strcmp(r.body, "quick") == 0);
        reply_free(&r);
    }
    send_str(cl, "GET /ctxquick HTTP/1.1\r\nHost: h\r\n\r\nGET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
    read_resp(cl, &r, false);
    CHECK(strcmp(r.body, "quick") == 0);
    reply_free(&r);
    read_resp(cl, &r, false);
    CHECK(strcmp(r.body, "Hello, World!\n") == 0);
    reply_free(&r);
    /* A body first: the watch starts once it is read. */
    send_str(cl, "POST /ctxquick HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
    read_resp(cl, &r, false);
    CHECK(strcmp(r.body, "quick") == 0);
    reply_free(&r);
    hangup(cl);

    /* The client leaves while the handler waits: the context is cancelled with -ECONNRESET
     * and the handler's writes fail. */
    ctx_entered = 0;
    ctx_err = ctx_cause = ctx_write = 0;
    cl = dial(&f);
    send_str(cl, "GET /ctxwait HTTP/1.1\r\nHost: h\r\n\r\n");
    while (!atomic_load(&ctx_entered))
        gorc_sleep(GORC_MILLISECOND);
    hangup(cl);
    int64_t deadline = gorc_now() + 10 * GORC_SECOND;
    while (atomic_load(&ctx_write) == 0 && gorc_now() < deadline)
        gorc_sleep(GORC_MILLISECOND);
    CHECK_EQ(ctx_err, -ECANCELED);
    CHECK_EQ(ctx_cause, -ECONNRESET);
    CHECK_EQ(ctx_write, -EPIPE);

    /* Closing the server cancels the contexts of running requests. */
    ctx_entered = 0;
    ctx_err = ctx_cause = ctx_write = 0;
    cl = dial(&f);
    send_str(cl, "GET /ctxwait HTTP/1.1\r\nHost: h\r\n\r\n");
    while (!atomic_load(&ctx_entered))
        gorc_sleep(GORC_MILLISECOND);
    CHECK_EQ(gorc_http_server_close(f.s), 0);
    deadline = gorc_now() + 10 * GORC_SECOND;
    while (atomic_load(&ctx_err) == 0 && gorc_now() < deadline)
        gorc_sleep(GORC_MILLISECOND);
    CHECK_EQ(ctx_err, -ECANCELED);
    CHECK_EQ(ctx_cause, GORC_HTTP_ESERVERCLOSED);
    hangup(cl);
    CHECK(gorc_http_request_ctx(NULL) == NULL);
    int res;
    CHECK_EQ(gorc_chan_recv(f.done, &res), 0);
    gorc_http_server_free(f.s);
    gorc_listener_release(f.l);
    gorc_chan_release(f.done);
}

GO_TEST(test_graceful_shutdown)
{
    fixture f;
    gorc_http_server_opts o = {0};
    fixture_start(&f, &o);
    CHECK_EQ(gorc_chan_new(&gate, 0, 1), 0);
    /* One idle keep-alive connection and one request in flight. */
    client *idle = dial(&f);
    reply r;
    send_str(idle, "GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
    read_resp(idle, &r, false);
    reply_free(&r);
    slow_client sc = {&f, NULL};
    CHECK_EQ(gorc_chan_new(&sc.out, sizeof(int), 1), 0);
    slow_entered = 0;
    CHECK_EQ(gorc_go(slow_request, &sc), 0);
    /* Wait for the slow handler itself: the server's active count may still include the
     * first connection, whose response the client has read before the server marks it idle. */
    while (atomic_load(&slow_entered) == 0)
        gorc_sleep(GORC_MILLISECOND);
    shut sh = {f.s, 10 * GORC_SECOND, NULL};
    CHECK_EQ(gorc_chan_new(&sh.out, sizeof(int), 1), 0);
    CHECK_EQ(gorc_go(shutdown_run, &sh), 0);
    CHECK(!more(idle)); /* the idle connection is closed at once */
    hangup(idle);
    int res;
    CHECK_EQ(gorc_chan_recv(f.done, &res), 0); /* serve returned */
    CHECK_EQ(res, GORC_HTTP_ESERVERCLOSED);
    gorc_conn *c;
    CHECK(gorc_tcp_dial(&c, f.addr, GORC_SECOND) < 0); /* no longer listening */
    CHECK_EQ(gorc_chan_trysend(gate, NULL), 0);        /* let the slow request finish */
    CHECK_EQ(gorc_chan_recv(sc.out, &res), 0);
    CHECK_EQ(res, 1);
    CHECK_EQ(gorc_chan_recv(sh.out, &res), 0);
    CHECK_EQ(res, 0);
    gorc_http_server_free(f.s);
    gorc_listener_release(f.l);
    gorc_chan_release(f.done);
    gorc_chan_release(sc.out);
    gorc_chan_release(sh.out);
    gorc_chan_release(gate);
}

GO_TEST(test_shutdown_deadline)
{
    fixture f;
    gorc_http_server_opts o = {0};
    fixture_start(&f, &o);
    /* A handler waiting for a body that never comes is cut at the deadline. */
    client *cl = dial(&f);
    send_str(cl, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab");
    gorc_http_server_stats st;
    do {
        gorc_sleep(GORC_MILLISECOND);
        gorc_http_server_stats_get(f.s, &st);
    } while (st.conns_active == 0);
    CHECK_EQ(gorc_http_server_shutdown(f.s, gorc_now() + 100 * GORC_MILLISECOND), -ETIMEDOUT);
    while (more(cl))
        ;
    hangup(cl);
    int res;
    CHECK_EQ(gorc_chan_recv(f.done, &res), 0);
    CHECK_EQ(res, GORC_HTTP_ESERVERCLOSED);
    gorc_http_server_free(f.s);
    CHECK_EQ(gorc_http_server_serve(NULL, f.l), -EINVAL);
    gorc_listener_release(f.l);
    gorc_chan_release(f.done);
}

typedef struct load {
    fixture *f;
    gorc_waitgroup *wg;
    int n;
} load;

static void load_client(void *arg)
{
    load *ld = arg;
    client *cl = dial(ld->f);
    for (int i = 0; i < ld->n; i++) {
        reply r;
        send_str(cl, i % 2 ? "GET /hello HTTP/1.1\r\nHost: h\r\n\r\n"
                           : "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok");
        read_resp(cl, &r, false);
        CHECK_EQ(r.status, 200);
        CHECK(strcmp(r.body, i % 2 ? "Hello, World!\n" : "ok") == 0);
        reply_free(&r);
    }
    hangup(cl);
    gorc_waitgroup_done(ld->wg);
}

GO_TEST(test_many_connections)
{
    fixture f;
    gorc_http_server_opts o = {0};
    fixture_start(&f, &o);
    gorc_waitgroup wg = {0};
    int conns = (int)scaled(200);
    load ld = {&f, &wg, (int)scaled(40) + 2};
    for (int i = 0; i < conns; i++) {
        gorc_waitgroup_add(&wg, 1);
        CHECK_EQ(gorc_go(load_client, &ld), 0);
    }
    gorc_waitgroup_wait(&wg);
    gorc_http_server_stats st;
    for (;;) {
        gorc_http_server_stats_get(f.s, &st);
        if (st.conns_open == 0)
            break;
        gorc_sleep(GORC_MILLISECOND);
    }
    CHECK_EQ(st.conns_total, conns);
    CHECK_EQ(st.requests, (uint64_t)conns * ld.n);
    fixture_stop(&f);
}

/* A client that sends keep-alive requests until the server goes away. A request may find
 * its connection closed before any byte of an answer (shutdown closed it while idle), but
 * never gets half an answer. */
typedef struct hammer {
    fixture *f;
    gorc_waitgroup *wg;
    _Atomic long *answered;
} hammer;

/* One request on c: true if fully answered, false if the connection was closed first. */
static bool hammer_once(gorc_conn *c)
{
    static const char req[] = "GET /hello HTTP/1.1\r\nHost: h\r\n\r\n";
    if (gorc_conn_write_all(c, req, sizeof req - 1) < 0)
        return false;
    char buf[512];
    size_t len = 0;
    for (;;) {
        ssize_t n = gorc_conn_read(c, buf + len, sizeof buf - len);
        if (n <= 0) {
            CHECK_EQ(len, 0);
            return false;
        }
        len += (size_t)n;
        gorc__http_header hd[16];
        gorc__http_response pr = {.headers = hd, .headers_cap = 16};
        int hl = gorc__http_parse_response(&pr, buf, len, 0, NULL);
        CHECK(hl >= 0);
        if (hl > 0 && len >= (size_t)hl + 14) {
            CHECK_EQ(pr.status, 200);
            CHECK_EQ(len, (size_t)hl + 14);
            return true;
        }
    }
}

static void hammer_client(void *arg)
{
    hammer *hm = arg;
    gorc_conn *c;
    while (gorc_tcp_dial(&c, hm->f->addr, 5 * GORC_SECOND) == 0) {
        gorc_conn_set_deadline(c, gorc_now() + 20 * GORC_SECOND);
        while (hammer_once(c))
            atomic_fetch_add(hm->answered, 1);
        gorc_conn_close(c);
    }
    gorc_waitgroup_done(hm->wg);
}

GO_TEST(test_shutdown_under_load)
{
    fixture f;
    gorc_http_server_opts o = {0};
    fixture_start(&f, &o);
    gorc_waitgroup wg = {0};
    _Atomic long answered = 0;
    hammer hm = {&f, &wg, &answered};
    int n = (int)scaled(50) + 2;
    for (int i = 0; i < n; i++) {
        gorc_waitgroup_add(&wg, 1);
        CHECK_EQ(gorc_go(hammer_client, &hm), 0);
    }
    while (atomic_load(&answered) < 20L * n)
        gorc_sleep(GORC_MILLISECOND);
    CHECK_EQ(gorc_http_server_shutdown(f.s, gorc_now() + 10 * GORC_SECOND), 0);
    gorc_waitgroup_wait(&wg);
    gorc_http_server_stats st;
    gorc_http_server_stats_get(f.s, &st);
    CHECK(st.requests >= (uint64_t)atomic_load(&answered));
    CHECK_EQ(st.conns_open, 0);
    int r;
    CHECK_EQ(gorc_chan_recv(f.done, &r), 0);
    CHECK_EQ(r, GORC_HTTP_ESERVERCLOSED);
    gorc_http_server_free(f.s);
    gorc_listener_release(f.l);
    gorc_chan_release(f.done);
}

static void test_helpers(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(gorc_http_query_value("a=1&b=x%20y+z&c", "b", buf, sizeof buf), 5);
    assert_string_equal(buf, "x y z");
    assert_int_equal(gorc_http_query_value("a=1&b=2", "c", buf, sizeof buf), -ENOENT);
    assert_int_equal(gorc_http_query_value("c&d=", "c", buf, sizeof buf), 0);
    assert_int_equal(gorc_http_query_value("a=%zz", "a", buf, sizeof buf), -EINVAL);
    assert_int_equal(gorc_http_query_value("a=123456", "a", buf, 4), -ENOSPC);
    assert_int_equal(gorc_http_query_value("%61=7", "a", buf, sizeof buf), 1);
    assert_string_equal(gorc_http_status_text(404), "Not Found");
    assert_string_equal(gorc_http_status_text(599), "");
    char d[32];
    gorc__http_format_date(784111777, d);
    assert_string_equal(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(gorc__http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    assert_int_equal(gorc__http_parse_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
    assert_int_equal(gorc__http_parse_date("Sun Nov  6 08:49:37 1994"), 784111777);
    assert_int_equal(gorc__http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT junk"), -1);
    assert_int_equal(gorc__http_parse_date("yesterday"), -1);
    char p[] = "/a%2fb+c%41";
    assert_int_equal(gorc__http_pct_decode(p, strlen(p), false), 7);
    assert_string_equal(p, "/a/b+cA");
    char q[] = "%00";
    assert_int_equal(gorc__http_pct_decode(q, 3, false), -EINVAL);
    char r2[] = "%4";
    assert_int_equal(gorc__http_pct_decode(r2, 2, false), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_keepalive_and_request_fields),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_response_framing),
        cmocka_unit_test(test_writer_api),
        cmocka_unit_test(test_request_bodies),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_request_context),
        cmocka_unit_test(test_graceful_shutdown),
        cmocka_unit_test(test_shutdown_deadline),
        cmocka_unit_test(test_many_connections),
        cmocka_unit_test(test_shutdown_under_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
