/*
 * test_http_client.c - the HTTP client against servers that say exactly what a test needs.
 *
 * Most tests talk to a raw TCP server written here with gorc_net: it reads each request
 * (head, then body by Content-Length or chunked framing) and answers with bytes chosen by
 * the test, so the client meets well-formed, odd and broken responses alike, and the test
 * can see the exact bytes the client sent. The server counts connections and requests, which
 * is how connection reuse is checked. A last test runs the client against gorc's own server.
 *
 * Everything is on loopback with small counts; deadlines are hang guards only.
 */
#include "testutil.h"

#include <gorc_http.h>
#include <gorc_net.h>

#include "http/parse.h"

#include <stdatomic.h>
#include <string.h>

#define MS    GORC_MILLISECOND
#define GUARD (10 * GORC_SECOND)

/* ------------------------------------------------------------------------------------------
 * A raw server
 * ---------------------------------------------------------------------------------------- */

typedef struct srv srv;
/* Serve one connection; idx counts connections from 0. */
typedef void (*conn_fn)(srv *s, gorc_conn *c, int idx);

#define MAX_CONNS 512
#define REQ_MAX   (256 * 1024)

struct srv {
    gorc_listener *l;
    char addr[GORC_ADDRSTRLEN];
    char url[GORC_ADDRSTRLEN + 16]; /* "http://addr" */
    conn_fn fn;
    const char *reply;                 /* for the canned handler */
    atomic_int conns, requests, ended; /* ended: connections whose handler returned */
    gorc_waitgroup accepting, wg;      /* the accept loop; the connection handlers */
    gorc_mutex mu;                     /* guards open[] and last[] */
    gorc_conn *open[MAX_CONNS];
    int nopen;
    char last[REQ_MAX]; /* the last request, raw */
    size_t last_len;
    char snap[REQ_MAX]; /* a copy of last for the test (see srv_last) */
};

/* A request as read by the server. */
typedef struct rawreq {
    char buf[REQ_MAX];
    size_t len;      /* bytes in buf: head plus body */
    size_t head_len; /* body starts here */
    char method[16];
    char target[1024];
} rawreq;

static void accept_loop(void *arg);

/* A server on listen_addr, or NULL if it cannot listen there. Servers are big: on the heap. */
static srv *srv_start_at(const char *listen_addr, conn_fn fn, const char *reply)
{
    srv *s = calloc(1, sizeof *s);
    CHECK(s != NULL);
    if (gorc_tcp_listen(&s->l, listen_addr, NULL) < 0) {
        free(s);
        return NULL;
    }
    CHECK(gorc_listener_addr(s->l, s->addr, sizeof s->addr) > 0);
    snprintf(s->url, sizeof s->url, "http://%s", s->addr);
    s->fn = fn;
    s->reply = reply;
    gorc_waitgroup_add(&s->accepting, 1);
    gorc_listener_retain(s->l); /* the accept loop's own reference: srv_stop closes it */
    CHECK_EQ(gorc_go(accept_loop, s), 0);
    return s;
}

static srv *srv_start(conn_fn fn, const char *reply)
{
    srv *s = srv_start_at("127.0.0.1:0", fn, reply);
    CHECK(s != NULL);
    return s;
}

typedef struct conn_job {
    srv *s;
    gorc_conn *c;
    int idx;
} conn_job;

static void conn_main(void *arg)
{
    conn_job *j = arg;
    gorc_conn_set_deadline(j->c, gorc_now() + GUARD);
    j->s->fn(j->s, j->c, j->idx);
    gorc_conn_close(j->c);
    atomic_fetch_add(&j->s->ended, 1);
    gorc_waitgroup_done(&j->s->wg);
    free(j);
}

static void accept_loop(void *arg)
{
    srv *s = arg;
    for (;;) {
        gorc_conn *c;
        if (gorc_listener_accept(s->l, &c) < 0)
            break;
        conn_job *j = malloc(sizeof *j);
        CHECK(j != NULL);
        *j = (conn_job){s, c, atomic_fetch_add(&s->conns, 1)};
        gorc_mutex_lock(&s->mu);
        CHECK(s->nopen < MAX_CONNS);
        s->open[s->nopen++] = gorc_conn_retain(c);
        gorc_mutex_unlock(&s->mu);
        gorc_waitgroup_add(&s->wg, 1);
        CHECK_EQ(gorc_go(conn_main, j), 0);
    }
    gorc_listener_release(s->l);
    gorc_waitgroup_done(&s->accepting);
}

/* Close the listener and every connection, and wait for the handlers. */
static void srv_stop(srv *s)
{
    gorc_listener_close(s->l);
    gorc_waitgroup_wait(&s->accepting);
    for (int i = 0; i < s->nopen; i++)
        gorc_conn_close(s->open[i]);
    gorc_waitgroup_wait(&s->wg);
    free(s);
}

/* Read one whole request (head and body). Returns its length, 0 when the client closed the
 * connection first, or a negative error. */
static ssize_t read_request(gorc_conn *c, rawreq *q)
{
    gorc__http_header hs[64];
    gorc__http_request pr = {.headers = hs, .headers_cap = 64};
    q->len = 0;
    int h = 0;
    while (h == 0) {
        ssize_t k = gorc_conn_read(c, q->buf + q->len, sizeof q->buf - q->len - 1);
        if (k <= 0)
            return q->len == 0 ? k : -EPROTO;
        q->len += (size_t)k;
        h = gorc__http_parse_request(&pr, q->buf, q->len, 0, NULL);
        CHECK(h >= 0);
    }
    q->head_len = (size_t)h;
    snprintf(q->method, sizeof q->method, "%.*s", (int)pr.method.n, pr.method.p);
    snprintf(q->target, sizeof q->target, "%.*s", (int)pr.target.n, pr.target.p);
    if (pr.body == GORC__HTTP_BODY_LENGTH) {
        size_t end = q->head_len + (size_t)pr.content_length;
        CHECK(end < sizeof q->buf);
        while (q->len < end) {
            ssize_t k = gorc_conn_read(c, q->buf + q->len, end - q->len);
            if (k <= 0)
                return -EPROTO;
            q->len += (size_t)k;
        }
    } else if (pr.body == GORC__HTTP_BODY_CHUNKED) {
        gorc__http_chunked d;
        gorc__http_chunked_init(&d, 0, NULL);
        size_t pos = q->head_len;
        for (;;) {
            size_t used;
            gorc__http_slice data;
            int rc = gorc__http_chunked_decode(&d, q->buf + pos, q->len - pos, &used, &data);
            pos += used;
            CHECK(rc >= 0);
            if (rc == GORC__HTTP_CHUNK_DONE)
                break;
            if (rc == GORC__HTTP_NEED_MORE) {
                ssize_t k = gorc_conn_read(c, q->buf + q->len, sizeof q->buf - q->len - 1);
                if (k <= 0)
                    return -EPROTO;
                q->len += (size_t)k;
            }
        }
    }
    q->buf[q->len] = 0;
    return (ssize_t)q->len;
}

static void record(srv *s, const rawreq *q)
{
    gorc_mutex_lock(&s->mu);
    memcpy(s->last, q->buf, q->len + 1);
    s->last_len = q->len;
    gorc_mutex_unlock(&s->mu);
    atomic_fetch_add(&s->requests, 1);
}

/* The last request the server read, raw and NUL-terminated. */
static const char *srv_last(srv *s)
{
    gorc_mutex_lock(&s->mu);
    memcpy(s->snap, s->last, s->last_len + 1);
    gorc_mutex_unlock(&s->mu);
    return s->snap;
}

static void write_str(gorc_conn *c, const char *s)
{
    gorc_conn_write_all(c, s, strlen(s));
}

/* Answer every request on the connection with s->reply; close after it when it says so. */
static void h_canned(srv *s, gorc_conn *c, int idx)
{
    rawreq *q = malloc(sizeof *q); /* big: keep it off the goroutine's stack */
    CHECK(q != NULL);
    while (read_request(c, q) > 0) {
        record(s, q);
        write_str(c, s->reply);
        if (strstr(s->reply, "Connection: close") ||
            (strncmp(s->reply, "HTTP/1.0", 8) == 0 && !strstr(s->reply, "keep-alive")))
            break;
    }
    free(q);
}

/* Read requests and never answer: the client must time out. */
static void h_silent(srv *s, gorc_conn *c, int idx)
{
    rawreq *q = malloc(sizeof *q);
    while (read_request(c, q) > 0)
        record(s, q);
    free(q);
}

/* The body of a raw request. */
static const char *body_of(const char *raw)
{
    const char *p = strstr(raw, "\r\n\r\n");
    CHECK(p != NULL);
    return p + 4;
}

static gorc_http_client *client(const gorc_http_client_opts *o)
{
    gorc_http_client *c;
    CHECK_EQ(gorc_http_client_new(&c, o), 0);
    return c;
}

/* GET url, read the whole body, check status and body; returns the body's length. */
static void get_expect(gorc_http_client *c, const char *url, int status, const char *body)
{
    gorc_http_response *r;
    int e = gorc_http_client_get(c, url, &r);
    if (e != 0)
        fprintf(stderr, "GET %s: %s\n", url, strerror(-e));
    CHECK_EQ(e, 0);
    CHECK_EQ(r->status, status);
    char *b;
    ssize_t n = gorc_http_response_read_all(r, &b, 0);
    CHECK_EQ(n, (ssize_t)strlen(body));
    CHECK(strcmp(b, body) == 0);
    free(b);
    gorc_http_response_close(r);
}

static char *fmt(const char *f, const char *a)
{
    static _Thread_local char buf[2][512];
    static _Thread_local int i;
    i ^= 1;
    snprintf(buf[i], sizeof buf[i], f, a);
    return buf[i];
}

/* ------------------------------------------------------------------------------------------
 * Framing
 * ---------------------------------------------------------------------------------------- */

GO_TEST(test_content_length)
{
    srv *s = srv_start(
        h_canned, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Thing: a b\r\nx-thing: second\r\n\r\n"
                  "hello");
    gorc_http_client *c = client(NULL);
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_get(c, fmt("%s/a%%20b c?q=1&r=%%41#frag", s->url), &r), 0);
    CHECK_EQ(r->status, 200);
    CHECK(strcmp(r->reason, "OK") == 0);
    CHECK_EQ(r->proto_minor, 1);
    CHECK_EQ(r->content_length, 5);
    CHECK_EQ(r->num_headers, 3);
    CHECK(strcmp(gorc_http_response_header(r, "x-THING"), "a b") == 0);
    CHECK(strcmp(r->headers[2].name, "x-thing") == 0);
    CHECK(strcmp(r->headers[2].value, "second") == 0);
    CHECK(gorc_http_response_header(r, "Missing") == NULL);
    CHECK(strcmp(r->url, fmt("%s/a%%20b%%20c?q=1&r=%%41", s->url)) == 0);
    char buf[16];
    CHECK_EQ(gorc_http_response_read(r, buf, 2), 2);
    CHECK_EQ(gorc_http_response_read(r, buf + 2, sizeof buf), 3);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_EQ(gorc_http_response_read(r, buf, sizeof buf), 0);
    CHECK_EQ(gorc_http_response_read(r, buf, sizeof buf), 0);
    gorc_http_response_close(r);
    /* What went out: the escaped target without the fragment, Host, a User-Agent. */
    CHECK(strncmp(srv_last(s), "GET /a%20b%20c?q=1&r=%41 HTTP/1.1\r\n", 35) == 0);
    CHECK(strstr(srv_last(s), fmt("\r\nHost: %s\r\n", s->addr)) != NULL);
    CHECK(strstr(srv_last(s), "\r\nUser-Agent: ") != NULL);
    CHECK(strstr(srv_last(s), "Content-Length") == NULL);
    gorc_http_client_free(c);
    srv_stop(s);
}

GO_TEST(test_chunked)
{
    srv *s = srv_start(h_canned, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "5;name=value\r\nhello\r\n"
                                 "1\r\n,\r\n"
                                 "0006 ; x\r\n world\r\n"
                                 "0\r\nTrailer-A: 1\r\nTrailer-B: 2\r\n\r\n");
    gorc_http_client *c = client(NULL);
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_get(c, s->url, &r), 0);
    CHECK_EQ(r->content_length, -1);
    /* One byte at a time, through every state of the decoder. */
    char out[64];
    size_t n = 0;
    ssize_t k;
    while ((k = gorc_http_response_read(r, out + n, 1)) > 0)
        n += (size_t)k;
    CHECK_EQ(k, 0);
    CHECK_EQ(n, 12);
    CHECK(memcmp(out, "hello, world", 12) == 0);
    gorc_http_response_close(r);
    get_expect(c, s->url, 200, "hello, world");
    CHECK_EQ(atomic_load(&s->conns), 1); /* the trailers were consumed: reused */
    gorc_http_client_free(c);
    srv_stop(s);
}

/* A large chunked body in large chunks: payload is read straight into the caller's buffer. */
static void h_big_chunked(srv *s, gorc_conn *c, int idx)
{
    rawreq *q = malloc(sizeof *q);
    char *chunk = malloc(100000);
    for (int i = 0; i < 100000; i++)
        chunk[i] = (char)('a' + i % 26);
    while (read_request(c, q) > 0) {
        record(s, q);
        write_str(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (int i = 0; i < 3; i++) {
            write_str(c, "186a0\r\n");
            gorc_conn_write_all(c, chunk, 100000);
            write_str(c, "\r\n");
        }
        write_str(c, "0\r\n\r\n");
    }
    free(chunk);
    free(q);
}

GO_TEST(test_chunked_large)
{
    srv *s = srv_start(h_big_chunked, NULL);
    gorc_http_client *c = client(NULL);
    for (int round = 0; round < 2; round++) {
        gorc_http_response *r;
        CHECK_EQ(gorc_http_client_get(c, s->url, &r), 0);
        char *b;
        CHECK_EQ(gorc_http_response_read_all(r, &b, 0), 300000);
        for (int i = 0; i < 300000; i++)
            CHECK_EQ(b[i], 'a' + (i % 100000) % 26);
        free(b);
        gorc_http_response_close(r);
    }
    CHECK_EQ(atomic_load(&s->conns), 1);
    gorc_http_client_free(c);
    srv_stop(s);
}

GO_TEST(test_close_delimited)
{
    srv *s = srv_start(h_canned, "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil the end");
    gorc_http_client *c = client(NULL);
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_get(c, s->url, &r), 0);
    CHECK_EQ(r->proto_minor, 0);
    CHECK_EQ(r->content_length, -1);
    char *b;
    CHECK_EQ(gorc_http_response_read_all(r, &b, 0), 13);
    CHECK(strcmp(b, "until the end") == 0);
    free(b);
    gorc_http_response_close(r);
    get_expect(c, s->url, 200, "until the end");
    CHECK_EQ(atomic_load(&s->conns), 2); /* never reused */
    gorc_http_client_free(c);
    srv_stop(s);

    /* HTTP/1.0 with a length and keep-alive is reused. */
    s = srv_start(h_canned,
                  "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi");
    c = client(NULL);
    get_expect(c, s->url, 200, "hi");
    get_expect(c, s->url, 200, "hi");
    CHECK_EQ(atomic_load(&s->conns), 1);
    gorc_http_client_free(c);
    srv_stop(s);
}

GO_TEST(test_head_and_no_body_statuses)
{
    srv *s;
    /* A HEAD answer announces a length but carries no body. */
    s = srv_start(h_canned, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
    gorc_http_client *c = client(NULL);
    for (int i = 0; i < 3; i++) {
        gorc_http_client_request q = {.method = "HEAD", .url = s->url};
        gorc_http_response *r;
        CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
        CHECK_EQ(r->status, 200);
        CHECK_EQ(r->content_length, 100);
        char buf[8];
        CHECK_EQ(gorc_http_response_read(r, buf, sizeof buf), 0);
        gorc_http_response_close(r);
    }
    CHECK_EQ(atomic_load(&s->conns), 1);
    CHECK(strncmp(srv_last(s), "HEAD / HTTP/1.1\r\n", 17) == 0);
    gorc_http_client_free(c);
    srv_stop(s);

    s = srv_start(h_canned, "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n");
    c = client(NULL);
    for (int i = 0; i < 2; i++)
        get_expect(c, s->url, 204, "");
    CHECK_EQ(atomic_load(&s->conns), 1);
    gorc_http_client_free(c);
    srv_stop(s);
}

GO_TEST(test_interim_responses_skipped)
{
    srv *s =
        srv_start(h_canned, "HTTP/1.1 100 Continue\r\n\r\n"
                            "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                            "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
    gorc_http_client *c = client(NULL);
    gorc_http_header h[] = {{"Expect", "100-continue"}};
    gorc_http_client_request q = {.method = "POST",
                                  .url = s->url,
                                  .headers = h,
                                  .num_headers = 1,
                                  .body = "data",
                                  .body_len = 4};
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
    CHECK_EQ(r->status, 201);
    CHECK(strcmp(r->reason, "Created") == 0);
    CHECK(gorc_http_response_header(r, "Link") == NULL);
    char *b;
    CHECK_EQ(gorc_http_response_read_all(r, &b, 0), 2);
    free(b);
    gorc_http_response_close(r);
    CHECK(strstr(srv_last(s), "\r\nContent-Length: 4\r\n") != NULL);
    CHECK(strcmp(body_of(srv_last(s)), "data") == 0);
    gorc_http_client_free(c);
    srv_stop(s);

    /* Six interim responses are too many. */
    s = srv_start(h_canned, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
                            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
                            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
                            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    c = client(NULL);
    CHECK_EQ(gorc_http_client_get(c, s->url, &r), GORC_HTTP_EBADMSG);
    CHECK(r == NULL);
    gorc_http_client_free(c);
    srv_stop(s);
}

/* ------------------------------------------------------------------------------------------
 * Connection reuse and the pool
 * ---------------------------------------------------------------------------------------- */

GO_TEST(test_keepalive_reuse)
{
    srv *s = srv_start(h_canned, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
    gorc_http_client *c = client(NULL);
    for (int i = 0; i < 3; i++)
        get_expect(c, s->url, 200, "hi");
    CHECK_EQ(atomic_load(&s->conns), 1); /* one connection served all three */
    CHECK_EQ(atomic_load(&s->requests), 3);
    CHECK(strstr(srv_last(s), "Connection") == NULL);

    /* A body closed before its end takes its connection with it. */
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_get(c, s->url, &r), 0);
    gorc_http_response_close(r);
    get_expect(c, s->url, 200, "hi");
    CHECK_EQ(atomic_load(&s->conns), 2);
    gorc_http_client_free(c);

    /* Keep-alive off: "Connection: close" and a connection per request. */
    gorc_http_client_opts o = {.disable_keepalive = true};
    c = client(&o);
    get_expect(c, s->url, 200, "hi");
    get_expect(c, s->url, 200, "hi");
    CHECK_EQ(atomic_load(&s->conns), 4);
    CHECK(strstr(srv_last(s), "\r\nConnection: close\r\n") != NULL);
    gorc_http_client_free(c);

    /* The caller asks for close in a header. */
    c = client(NULL);
    gorc_http_header h[] = {{"Connection", "close"}};
    gorc_http_client_request q = {.url = s->url, .headers = h, .num_headers = 1};
    CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
    char *b;
    CHECK_EQ(gorc_http_response_read_all(r, &b, 0), 2);
    free(b);
    gorc_http_response_close(r);
    get_expect(c, s->url, 200, "hi");
    CHECK_EQ(atomic_load(&s->conns), 6);
    gorc_http_client_free(c);
    srv_stop(s);

    /* The server says close. */
    s = srv_start(h_canned, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
    c = client(NULL);
    get_expect(c, s->url, 200, "hi");
    get_expect(c, s->url, 200, "hi");
    CHECK_EQ(atomic_load(&s->conns), 2);
    gorc_http_client_free(c);
    srv_stop(s);
}

/* Answer each request with its target as the body. */
static void h_echo_target(srv *s, gorc_conn *c, int idx)
{
    rawreq *q = malloc(sizeof *q);
    char head[1200];
    while (read_request(c, q) > 0) {
        atomic_fetch_add(&s->requests, 1);
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s",
                 strlen(q->target), q->target);
        write_str(c, head);
    }
    free(q);
}

typedef struct worker {
    gorc_http_client *c;
    srv *s;
    int id, m;
    gorc_waitgroup *wg;
} worker;

static void pool_worker(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < w->m; i++) {
        char url[256], path[64];
        snprintf(path, sizeof path, "/w%d/%d", w->id, i);
        snprintf(url, sizeof url, "%s%s", w->s->url, path);
        get_expect(w->c, url, 200, path);
        if (i % 3 == 0)
            gorc_yield();
    }
    gorc_waitgroup_done(w->wg);
}

GO_TEST(test_pool_concurrent)
{
    srv *s = srv_start(h_echo_target, NULL);
    int n = 2 + (int)scaled(14), m = 2 + (int)scaled(30);
    gorc_http_client_opts o = {.max_idle_per_host = n};
    gorc_http_client *c = client(&o);
    gorc_waitgroup wg = {0};
    worker *w = calloc((size_t)n, sizeof *w);
    gorc_waitgroup_add(&wg, n);
    for (int i = 0; i < n; i++) {
        w[i] = (worker){c, s, i, m, &wg};
        CHECK_EQ(gorc_go(pool_worker, &w[i]), 0);
    }
    gorc_waitgroup_wait(&wg);
    CHECK_EQ(atomic_load(&s->requests), n * m);
    /* Nothing is ever dropped from a pool as large as the number of workers, so no more
     * connections exist than workers. */
    CHECK(atomic_load(&s->conns) <= n);
    free(w);
    gorc_http_client_free(c);
    srv_stop(s);

    /* A small pool drops what does not fit; everything still works. */
    s = srv_start(h_echo_target, NULL);
    o.max_idle_per_host = 1;
    c = client(&o);
    w = calloc((size_t)n, sizeof *w);
    gorc_waitgroup_add(&wg, n);
    for (int i = 0; i < n; i++) {
        w[i] = (worker){c, s, i, m, &wg};
        CHECK_EQ(gorc_go(pool_worker, &w[i]), 0);
    }
    gorc_waitgroup_wait(&wg);
    CHECK_EQ(atomic_load(&s->requests), n * m);
    free(w);
    gorc_http_client_free(c);
    srv_stop(s);
}

GO_TEST(test_idle_timeout)
{
    srv *s = srv_start(h_canned, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
    gorc_http_client_opts o = {.idle_conn_timeout = 50 * MS};
    gorc_http_client *c = client(&o);
    get_expect(c, s->url, 200, "hi");
    /* The sweeper closes the idle connection by itself: the server sees it end. */
    int64_t until = gorc_now() + GUARD;
    while (atomic_load(&s->ended) == 0 && gorc_now() < until)
        gorc_sleep(10 * MS);
    CHECK_EQ(atomic_load(&s->ended), 1);
    get_expect(c, s->url, 200, "hi");
    CHECK_EQ(atomic_load(&s->conns), 2);
    /* The sweeper is re-armed for the next idle connection. */
    while (atomic_load(&s->ended) == 1 && gorc_now() < until)
        gorc_sleep(10 * MS);
    CHECK_EQ(atomic_load(&s->ended), 2);
    gorc_http_client_free(c);
    srv_stop(s);
}

/* Serve one request, then close without a word: the pooled connection goes stale. */
static void h_one_then_close(srv *s, gorc_conn *c, int idx)
{
    rawreq *q = malloc(sizeof *q);
    if (read_request(c, q) > 0) {
        record(s, q);
        write_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
    }
    free(q);
}

/* On the first connection: answer one request, read the next and close without answering
 * (a server closing an idle connection just as a request arrives). Later connections
 * answer everything. */
static void h_drop_second(srv *s, gorc_conn *c, int idx)
{
    rawreq *q = malloc(sizeof *q);
    for (int i = 0; read_request(c, q) > 0; i++) {
        record(s, q);
        if (idx == 0 && i == 1)
            break;
        write_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
    }
    free(q);
}

GO_TEST(test_stale_pooled_connection)
{
    srv *s = srv_start(h_one_then_close, NULL);
    gorc_http_client *c = client(NULL);
    for (int i = 0; i < 3; i++)
        get_expect(c, s->url, 200, "hi");
    CHECK_EQ(atomic_load(&s->conns), 3);
    gorc_http_client_free(c);
    srv_stop(s);

    /* The request reaches the server, which closes: retried once on a new connection. */
    s = srv_start(h_drop_second, NULL);
    c = client(NULL);
    get_expect(c, s->url, 200, "hi");
    get_expect(c, s->url, 200, "hi");
    CHECK_EQ(atomic_load(&s->conns), 2);
    CHECK_EQ(atomic_load(&s->requests), 3);
    gorc_http_client_free(c);
    srv_stop(s);

    /* A POST is not replayed: the caller gets the error. */
    s = srv_start(h_drop_second, NULL);
    c = client(NULL);
    get_expect(c, s->url, 200, "hi");
    gorc_http_client_request q = {.method = "POST", .url = s->url, .body = "x", .body_len = 1};
    gorc_http_response *r = (gorc_http_response *)1;
    CHECK_EQ(gorc_http_client_do(c, &q, &r), GORC_EUNEXPECTEDEOF);
    CHECK(r == NULL);
    CHECK_EQ(atomic_load(&s->conns), 1);
    gorc_http_client_free(c);
    srv_stop(s);

    /* ... unless it carries an Idempotency-Key. */
    s = srv_start(h_drop_second, NULL);
    c = client(NULL);
    get_expect(c, s->url, 200, "hi");
    gorc_http_header h[] = {{"Idempotency-Key", "abc"}};
    q.url = s->url;
    q.headers = h;
    q.num_headers = 1;
    CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
    CHECK_EQ(r->status, 200);
    gorc_http_response_close(r);
    CHECK_EQ(atomic_load(&s->conns), 2);
    CHECK(strcmp(body_of(srv_last(s)), "x") == 0);
    gorc_http_client_free(c);
    srv_stop(s);
}

/* ------------------------------------------------------------------------------------------
 * Redirects
 * ---------------------------------------------------------------------------------------- */

static const char *req_header(const rawreq *q, const char *name, char *out, size_t n)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\r\n%s: ", name);
    const char *p = strstr(q->buf, pat);
    if (p == NULL || p > q->buf + q->head_len)
        return NULL;
    p += strlen(pat);
    snprintf(out, n, "%.*s", (int)strcspn(p, "\r"), p);
    return out;
}

static void redirect_to(char *out, size_t n, int code, const char *loc)
{
    snprintf(out, n, "HTTP/1.1 %d Moved\r\nLocation: %s\r\nContent-Length: 5\r\n\r\nmoved", code,
             loc);
}

/* Answer by path: redirects of every kind and "/show", which describes the request. */
static void route(const rawreq *q, char *out, size_t n)
{
    char host[128], v1[64], v2[64], loc[256];
    const char *t = q->target;
    int hop;
    if (strcmp(t, "/a/b/start") == 0) {
        redirect_to(out, n, 302, "../c/./next?x=1#frag");
    } else if (strcmp(t, "/see-other") == 0 || strcmp(t, "/found") == 0) {
        redirect_to(out, n, t[1] == 's' ? 303 : 302, "/show");
    } else if (strcmp(t, "/temporary") == 0 || strcmp(t, "/permanent") == 0) {
        redirect_to(out, n, t[1] == 't' ? 307 : 308, "show");
    } else if (strcmp(t, "/loop") == 0) {
        /* With a chunked body: drained before the next hop, so the connection is kept. */
        snprintf(out, n,
                 "HTTP/1.1 302 Found\r\nLocation: /loop\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    } else if (sscanf(t, "/hop/%d", &hop) == 1 && hop > 0) {
        snprintf(loc, sizeof loc, "/hop/%d", hop - 1);
        redirect_to(out, n, 301, loc);
    } else if (strcmp(t, "/elsewhere") == 0) {
        /* Another host name for the same server: credentials must not follow. */
        req_header(q, "Host", host, sizeof host);
        snprintf(loc, sizeof loc, "http://localhost%s/show", strchr(host, ':'));
        redirect_to(out, n, 302, loc);
    } else if (strcmp(t, "/absolute") == 0) {
        req_header(q, "Host", host, sizeof host);
        snprintf(loc, sizeof loc, "http://%s/show?abs", host);
        redirect_to(out, n, 301, loc);
    } else if (strcmp(t, "/no-location") == 0) {
        snprintf(out, n, "HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n");
    } else if (strcmp(t, "/https") == 0) {
        redirect_to(out, n, 302, "https://127.0.0.1/");
    } else if (strcmp(t, "/bad-location") == 0) {
        redirect_to(out, n, 302, "http://[::1/");
    } else if (strcmp(t, "/query-only") == 0) {
        redirect_to(out, n, 302, "?y=2");
    } else {
        char body[2048];
        snprintf(body, sizeof body, "%.15s %.300s cl=%.63s auth=%.63s ref=%.255s body=%.300s",
                 q->method, t, req_header(q, "Content-Length", v1, sizeof v1) ? v1 : "-",
                 req_header(q, "Authorization", v2, sizeof v2) ? v2 : "-",
                 req_header(q, "Referer", loc, sizeof loc) ? loc : "-", q->buf + q->head_len);
        snprintf(out, n, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    }
}

static void h_router(srv *s, gorc_conn *c, int idx)
{
    rawreq *q = malloc(sizeof *q);
    char *out = malloc(4096);
    while (read_request(c, q) > 0) {
        record(s, q);
        route(q, out, 4096);
        write_str(c, out);
    }
    free(out);
    free(q);
}

/* Send method to path with an in-memory body (or none); return the response body. */
static char *do_body(gorc_http_client *c, srv *s, const char *method, const char *path,
                     const char *body, int status)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", s->url, path);
    gorc_http_header h[] = {{"Authorization", "Bearer x"}, {"X-Keep", "1"}};
    gorc_http_client_request q = {.method = method,
                                  .url = url,
                                  .headers = h,
                                  .num_headers = 2,
                                  .body = body,
                                  .body_len = body ? strlen(body) : 0};
    gorc_http_response *r;
    int e = gorc_http_client_do(c, &q, &r);
    if (e != 0)
        fprintf(stderr, "%s %s: %s\n", method, url, strerror(-e));
    CHECK_EQ(e, 0);
    CHECK_EQ(r->status, status);
    char *b;
    CHECK(gorc_http_response_read_all(r, &b, 0) >= 0);
    gorc_http_response_close(r);
    return b;
}

static void expect_body(char *got, const char *want)
{
    if (strcmp(got, want) != 0)
        fprintf(stderr, "got  \"%s\"\nwant \"%s\"\n", got, want);
    CHECK(strcmp(got, want) == 0);
    free(got);
}

GO_TEST(test_redirects)
{
    srv *s = srv_start(h_router, NULL);
    gorc_http_client *c = client(NULL);
    char want[512];

    /* Relative Location, dot segments and fragment: the final URL is reported. */
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_get(c, fmt("%s/a/b/start", s->url), &r), 0);
    CHECK_EQ(r->status, 200);
    CHECK(strcmp(r->url, fmt("%s/a/c/next?x=1", s->url)) == 0);
    gorc_http_response_close(r);
    CHECK(strstr(srv_last(s), fmt("\r\nReferer: %s/a/b/start\r\n", s->url)) != NULL);

    /* 303 and 302 turn a POST into a GET without body; headers follow on the same host. */
    snprintf(want, sizeof want, "GET /show cl=- auth=Bearer x ref=%s/see-other body=", s->url);
    expect_body(do_body(c, s, "POST", "/see-other", "payload", 200), want);
    CHECK(strstr(srv_last(s), "\r\nX-Keep: 1\r\n") != NULL);
    snprintf(want, sizeof want, "GET /show cl=- auth=Bearer x ref=%s/found body=", s->url);
    expect_body(do_body(c, s, "PUT", "/found", "payload", 200), want);
    /* HEAD stays HEAD. */
    free(do_body(c, s, "HEAD", "/see-other", NULL, 200));
    CHECK(strncmp(srv_last(s), "HEAD /show HTTP/1.1\r\n", 21) == 0);

    /* 307 and 308 resend method and body. */
    snprintf(want, sizeof want, "POST /show cl=7 auth=Bearer x ref=%s/temporary body=payload",
             s->url);
    expect_body(do_body(c, s, "POST", "/temporary", "payload", 200), want);
    snprintf(want, sizeof want, "PUT /show cl=7 auth=Bearer x ref=%s/permanent body=payload",
             s->url);
    expect_body(do_body(c, s, "PUT", "/permanent", "payload", 200), want);

    /* Absolute Location; a query-only reference; no Location: the 3xx itself. */
    snprintf(want, sizeof want, "GET /show?abs cl=- auth=Bearer x ref=%s/absolute body=", s->url);
    expect_body(do_body(c, s, "GET", "/absolute", NULL, 200), want);
    snprintf(want, sizeof want,
             "GET /query-only?y=2 cl=- auth=Bearer x ref=%s/query-only body=", s->url);
    expect_body(do_body(c, s, "GET", "/query-only", NULL, 200), want);
    expect_body(do_body(c, s, "GET", "/no-location", NULL, 302), "");

    /* To another host: Authorization is dropped, other headers kept. */
    snprintf(want, sizeof want, "GET /show cl=- auth=- ref=%s/elsewhere body=", s->url);
    expect_body(do_body(c, s, "GET", "/elsewhere", NULL, 200), want);
    CHECK(strstr(srv_last(s), "\r\nX-Keep: 1\r\n") != NULL);

    /* Unsupported or malformed Location. */
    CHECK_EQ(gorc_http_client_get(c, fmt("%s/https", s->url), &r), -EPROTONOSUPPORT);
    CHECK_EQ(gorc_http_client_get(c, fmt("%s/bad-location", s->url), &r), -EINVAL);

    /* A loop: 10 redirects are followed, the 11th is an error. */
    int before = atomic_load(&s->requests);
    CHECK_EQ(gorc_http_client_get(c, fmt("%s/loop", s->url), &r), GORC_HTTP_ETOOMANYREDIRECTS);
    CHECK(r == NULL);
    CHECK_EQ(atomic_load(&s->requests) - before, 11);
    gorc_http_client_free(c);

    gorc_http_client_opts o = {.max_redirects = 3};
    c = client(&o);
    expect_body(do_body(c, s, "GET", "/hop/3", NULL, 200),
                fmt("GET /hop/0 cl=- auth=Bearer x ref=%s/hop/1 body=", s->url));
    CHECK_EQ(gorc_http_client_get(c, fmt("%s/hop/4", s->url), &r), GORC_HTTP_ETOOMANYREDIRECTS);
    gorc_http_client_free(c);

    /* Negative: redirects are handed back as they are. */
    o.max_redirects = -1;
    c = client(&o);
    CHECK_EQ(gorc_http_client_get(c, fmt("%s/loop", s->url), &r), 0);
    CHECK_EQ(r->status, 302);
    CHECK(strcmp(gorc_http_response_header(r, "Location"), "/loop") == 0);
    char *b;
    CHECK_EQ(gorc_http_response_read_all(r, &b, 0), 3);
    free(b);
    gorc_http_response_close(r);
    gorc_http_client_free(c);
    srv_stop(s);
}

typedef struct pieces {
    const char *const *p;
    int i;
    size_t off; /* into p[i] */
} pieces;

/* Hand out the strings p[0], p[1], ... one per call (split if n is smaller); "!" fails. */
static ssize_t piece_read(void *arg, void *buf, size_t n)
{
    pieces *p = arg;
    const char *s = p->p[p->i];
    if (s == NULL)
        return 0;
    if (strcmp(s, "!") == 0)
        return -EIO;
    size_t k = strlen(s + p->off);
    k = k < n ? k : n;
    memcpy(buf, s + p->off, k);
    p->off += k;
    if (s[p->off] == 0) {
        p->i++;
        p->off = 0;
    }
    return (ssize_t)k;
}

/* Send parts as a streamed body (with content_length if > 0). Returns the status or an
 * error. */
static int upload(gorc_http_client *c, const char *method, const char *url,
                  const char *const *parts, int64_t content_length)
{
    pieces p = {parts, 0, 0};
    gorc_http_client_request q = {.method = method,
                                  .url = url,
                                  .body_read = piece_read,
                                  .body_arg = &p,
                                  .content_length = content_length};
    gorc_http_response *r;
    int e = gorc_http_client_do(c, &q, &r);
    if (e < 0)
        return e;
    e = r->status;
    gorc_http_response_close(r);
    return e;
}

GO_TEST(test_streamed_body_not_replayed)
{
    srv *s = srv_start(h_router, NULL);
    gorc_http_client *c = client(NULL);
    static const char *const parts[] = {"stream", NULL};
    CHECK_EQ(upload(c, "POST", fmt("%s/temporary", s->url), parts, 0), 307);
    /* A 303 drops the body anyway, so it is followed. */
    CHECK_EQ(upload(c, "POST", fmt("%s/see-other", s->url), parts, 0), 200);
    CHECK(strncmp(srv_last(s), "GET /show HTTP/1.1\r\n", 20) == 0);
    gorc_http_client_free(c);
    srv_stop(s);
}

/* ------------------------------------------------------------------------------------------
 * Timeouts and connection errors
 * ---------------------------------------------------------------------------------------- */

/* Send a head and part of the body, then stall. */
static void h_stall_body(srv *s, gorc_conn *c, int idx)
{
    rawreq *q = malloc(sizeof *q);
    if (read_request(c, q) > 0) {
        write_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
        char b[16];
        while (gorc_conn_read(c, b, sizeof b) > 0)
            ;
    }
    free(q);
}

GO_TEST(test_timeouts)
{
    /* Nobody listens: refused. */
    char addr[GORC_ADDRSTRLEN], url[GORC_ADDRSTRLEN + 16];
    gorc_listener *l;
    CHECK_EQ(gorc_tcp_listen(&l, "127.0.0.1:0", NULL), 0);
    CHECK(gorc_listener_addr(l, addr, sizeof addr) > 0);
    gorc_listener_close(l);
    snprintf(url, sizeof url, "http://%s/", addr);
    gorc_http_client *c = client(NULL);
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_get(c, url, &r), -ECONNREFUSED);
    gorc_http_client_free(c);

    /* A server that never answers: the response header timeout, then the overall one. */
    srv *s = srv_start(h_silent, NULL);
    gorc_http_client_opts o = {.response_header_timeout = 100 * MS};
    c = client(&o);
    CHECK_EQ(gorc_http_client_get(c, s->url, &r), -ETIMEDOUT);
    gorc_http_client_free(c);
    o = (gorc_http_client_opts){.timeout = 100 * MS};
    c = client(&o);
    CHECK_EQ(gorc_http_client_get(c, s->url, &r), -ETIMEDOUT);
    gorc_http_client_free(c);
    srv_stop(s);

    /* The overall timeout also bounds the body. */
    s = srv_start(h_stall_body, NULL);
    o = (gorc_http_client_opts){.timeout = 200 * MS, .response_header_timeout = 5 * GORC_SECOND};
    c = client(&o);
    CHECK_EQ(gorc_http_client_get(c, s->url, &r), 0);
    CHECK_EQ(r->status, 200);
    char buf[200];
    CHECK_EQ(gorc_http_response_read(r, buf, sizeof buf), 10);
    CHECK_EQ(gorc_http_response_read(r, buf, sizeof buf), -ETIMEDOUT);
    CHECK_EQ(gorc_http_response_read(r, buf, sizeof buf), -ETIMEDOUT); /* sticky */
    gorc_http_response_close(r);
    gorc_http_client_free(c);
    srv_stop(s);
}

/* ------------------------------------------------------------------------------------------
 * Contexts
 * ---------------------------------------------------------------------------------------- */

/* Send a head and part of a close-delimited body, then stall. */
static void h_stall_close_body(srv *s, gorc_conn *c, int idx)
{
    rawreq *q = malloc(sizeof *q);
    if (read_request(c, q) > 0) {
        write_str(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc");
        char b[16];
        while (gorc_conn_read(c, b, sizeof b) > 0)
            ;
    }
    free(q);
}

typedef struct later_cancel {
    gorc_ctx *ctx;
    int64_t after;
} later_cancel;

static void cancel_later(void *arg)
{
    later_cancel *lc = arg;
    gorc_sleep(lc->after);
    gorc_ctx_cancel_cause(lc->ctx, -ECONNABORTED);
}

GO_TEST(test_request_context)
{
    char buf[200];
    gorc_http_response *r;
    gorc_ctx *ctx;

    /* A context cancelled before the call: nothing is sent. */
    srv *s = srv_start(h_canned, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    gorc_http_client *c = client(NULL);
    CHECK_EQ(gorc_ctx_with_cancel(&ctx, gorc_ctx_background()), 0);
    gorc_ctx_cancel(ctx);
    gorc_http_client_request q = {.url = s->url, .ctx = ctx};
    CHECK_EQ(gorc_http_client_do(c, &q, &r), -ECANCELED);
    CHECK(r == NULL);
    CHECK_EQ(atomic_load(&s->requests), 0);
    gorc_ctx_release(ctx);

    /* A live context: the request works and its connection is pooled as usual. */
    CHECK_EQ(gorc_ctx_with_timeout(&ctx, gorc_ctx_background(), GUARD, 0), 0);
    q.ctx = ctx;
    CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
    CHECK_EQ(gorc_http_response_read(r, buf, sizeof buf), 2);
    CHECK_EQ(gorc_http_response_read(r, buf, sizeof buf), 0);
    gorc_http_response_close(r);
    CHECK_EQ(gorc_http_client_idle_conns(c, s->addr), 1);
    CHECK_EQ(gorc_http_client_idle_conns(c, NULL), 1);
    CHECK_EQ(gorc_http_client_idle_conns(c, "127.0.0.1:1"), 0);
    CHECK_EQ(gorc_http_client_idle_conns(NULL, NULL), -EINVAL);
    gorc_ctx_cancel(ctx);
    gorc_ctx_release(ctx);
    gorc_http_client_free(c);
    srv_stop(s);

    /* A server that never answers: the context's deadline ends the wait for the head. */
    s = srv_start(h_silent, NULL);
    c = client(NULL);
    CHECK_EQ(gorc_ctx_with_timeout(&ctx, gorc_ctx_background(), 50 * MS, 0), 0);
    q = (gorc_http_client_request){.url = s->url, .ctx = ctx};
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_http_client_do(c, &q, &r), -ETIMEDOUT);
    CHECK(gorc_now() - t0 < GUARD);
    CHECK_EQ(gorc_http_client_idle_conns(c, NULL), 0);
    gorc_ctx_release(ctx);

    /* The same server, cancelled by another goroutine while the head is awaited. */
    CHECK_EQ(gorc_ctx_with_cancel(&ctx, gorc_ctx_background()), 0);
    later_cancel lc = {ctx, 20 * MS};
    CHECK_EQ(gorc_go(cancel_later, &lc), 0);
    q.ctx = ctx;
    CHECK_EQ(gorc_http_client_do(c, &q, &r), -ECANCELED);
    CHECK_EQ(gorc_ctx_cause(ctx), -ECONNABORTED);
    CHECK_EQ(gorc_http_client_idle_conns(c, NULL), 0);
    gorc_ctx_release(ctx);
    gorc_http_client_free(c);
    srv_stop(s);

    /* Cancelled while the body is read: the read fails with the context's error, sticky. */
    s = srv_start(h_stall_body, NULL);
    c = client(NULL);
    CHECK_EQ(gorc_ctx_with_cancel(&ctx, gorc_ctx_background()), 0);
    q = (gorc_http_client_request){.url = s->url, .ctx = ctx};
    CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
    CHECK_EQ(gorc_http_response_read(r, buf, sizeof buf), 10);
    lc = (later_cancel){ctx, 20 * MS};
    CHECK_EQ(gorc_go(cancel_later, &lc), 0);
    CHECK_EQ(gorc_http_response_read(r, buf, sizeof buf), -ECANCELED);
    CHECK_EQ(gorc_http_response_read(r, buf, sizeof buf), -ECANCELED);
    gorc_http_response_close(r);
    CHECK_EQ(gorc_http_client_idle_conns(c, NULL), 0);
    gorc_ctx_release(ctx);
    gorc_http_client_free(c);
    srv_stop(s);

    /* A body that ends at close: the cut is not mistaken for the end of the body. */
    s = srv_start(h_stall_close_body, NULL);
    c = client(NULL);
    CHECK_EQ(gorc_ctx_with_timeout(&ctx, gorc_ctx_background(), 30 * MS, 0), 0);
    q = (gorc_http_client_request){.url = s->url, .ctx = ctx};
    CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
    CHECK_EQ(gorc_http_response_read(r, buf, sizeof buf), 3);
    CHECK_EQ(gorc_http_response_read(r, buf, sizeof buf), -ETIMEDOUT);
    gorc_http_response_close(r);
    gorc_ctx_release(ctx);
    gorc_http_client_free(c);
    srv_stop(s);
}

/* ------------------------------------------------------------------------------------------
 * Malformed responses
 * ---------------------------------------------------------------------------------------- */

static void expect_head_error(const char *reply, int err)
{
    srv *s = srv_start(h_canned, reply);
    gorc_http_client *c = client(NULL);
    gorc_http_response *r = (gorc_http_response *)1;
    int e = gorc_http_client_get(c, s->url, &r);
    if (e != err)
        fprintf(stderr, "reply \"%.40s...\": %d, want %d\n", reply, e, err);
    CHECK_EQ(e, err);
    CHECK(r == NULL);
    gorc_http_client_free(c);
    srv_stop(s);
}

static void expect_body_error(const char *reply, int err)
{
    srv *s = srv_start(h_canned, reply);
    gorc_http_client *c = client(NULL);
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_get(c, s->url, &r), 0);
    char *b = (char *)1;
    CHECK_EQ(gorc_http_response_read_all(r, &b, 0), err);
    CHECK(b == NULL);
    char x;
    CHECK_EQ(gorc_http_response_read(r, &x, 1), err);
    gorc_http_response_close(r);
    gorc_http_client_free(c);
    srv_stop(s);
}

/* Read a request and close at once. */
static void h_hang_up(srv *s, gorc_conn *c, int idx)
{
    rawreq *q = malloc(sizeof *q);
    read_request(c, q);
    free(q);
}

GO_TEST(test_malformed_responses)
{
    expect_head_error("HTTP/1.1 abc OK\r\n\r\n", GORC_HTTP_EBADMSG);
    expect_head_error("SSH-2.0-OpenSSH_9.2\r\n", GORC_HTTP_EBADMSG);
    expect_head_error("HTTP/1.1 200 OK\nContent-Length: 0\n\n", GORC_HTTP_EBADMSG);
    expect_head_error("HTTP/2.0 200 OK\r\n\r\n", GORC_HTTP_EBADMSG);
    expect_head_error("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "0\r\n\r\n",
                      GORC_HTTP_EBADMSG);
    expect_head_error("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
                      GORC_HTTP_EBADMSG);
    expect_head_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", GORC_HTTP_EBADMSG);
    expect_head_error("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", GORC_HTTP_EBADMSG);
    /* The connection ends inside the head, or before it. */
    expect_head_error("HTTP/1.0 200 OK\r\nContent-Len", GORC_EUNEXPECTEDEOF);
    srv *s = srv_start(h_hang_up, NULL);
    gorc_http_client *c = client(NULL);
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_get(c, s->url, &r), GORC_EUNEXPECTEDEOF);
    gorc_http_client_free(c);
    srv_stop(s);

    /* Bodies: bad chunk size, bad chunk end, cut short. */
    expect_body_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                      GORC_HTTP_EBADMSG);
    expect_body_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
                      GORC_HTTP_EBADMSG);
    expect_body_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;\nx\r\nabc\r\n",
                      GORC_HTTP_EBADMSG);
    expect_body_error("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nshort",
                      GORC_EUNEXPECTEDEOF);
    expect_body_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                      "5\r\nabc",
                      GORC_EUNEXPECTEDEOF);
}

GO_TEST(test_large_heads)
{
    /* A 70 KiB header is over the default limit, and fine under a larger one. */
    size_t big = 70 * 1024;
    char *reply = malloc(big + 100);
    int n = sprintf(reply, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(reply + n, 'x', big);
    strcpy(reply + n + big, "\r\nContent-Length: 2\r\n\r\nok");
    expect_head_error(reply, GORC_HTTP_EBADMSG);
    srv *s = srv_start(h_canned, reply);
    gorc_http_client_opts o = {.max_response_header_bytes = 256 * 1024};
    gorc_http_client *c = client(&o);
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_get(c, s->url, &r), 0);
    CHECK_EQ(strlen(gorc_http_response_header(r, "x-big")), big);
    gorc_http_response_close(r);
    get_expect(c, s->url, 200, "ok");
    gorc_http_client_free(c);
    srv_stop(s);
    free(reply);

    /* Thousands of header lines within the byte limit are fine. */
    reply = malloc(3000 * 16 + 100);
    n = sprintf(reply, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 3000; i++)
        n += sprintf(reply + n, "H%d: %d\r\n", i, i);
    strcpy(reply + n, "Content-Length: 2\r\n\r\nok");
    s = srv_start(h_canned, reply);
    c = client(NULL);
    CHECK_EQ(gorc_http_client_get(c, s->url, &r), 0);
    CHECK_EQ(r->num_headers, 3001);
    CHECK(strcmp(gorc_http_response_header(r, "h2999"), "2999") == 0);
    gorc_http_response_close(r);
    gorc_http_client_free(c);
    srv_stop(s);
    free(reply);
}

/* ------------------------------------------------------------------------------------------
 * Requests: validation and bodies
 * ---------------------------------------------------------------------------------------- */

static int do_req(gorc_http_client *c, const char *method, const char *url,
                  const gorc_http_header *h, size_t nh)
{
    gorc_http_client_request q = {.method = method, .url = url, .headers = h, .num_headers = nh};
    gorc_http_response *r = (gorc_http_response *)1;
    int e = gorc_http_client_do(c, &q, &r);
    if (e == 0)
        gorc_http_response_close(r);
    else
        CHECK(r == NULL);
    return e;
}

GO_TEST(test_request_validation)
{
    gorc_http_client *c = client(NULL);
    /* Refused before anything is sent: no server needed. */
    static const struct {
        const char *url;
        int err;
    } urls[] = {
        {"http://user:pw@127.0.0.1:1/", -EINVAL},
        {"http://@127.0.0.1:1/", -EINVAL},
        {"https://127.0.0.1:1/", -EPROTONOSUPPORT},
        {"HTTPS://127.0.0.1:1/", -EPROTONOSUPPORT},
        {"ftp://127.0.0.1:1/", -EPROTONOSUPPORT},
        {"localhost:80", -EPROTONOSUPPORT},
        {"127.0.0.1:80/", -EINVAL},
        {"/relative", -EINVAL},
        {"", -EINVAL},
        {"http:", -EINVAL},
        {"http:host/", -EINVAL},
        {"http://", -EINVAL},
        {"http:///path", -EINVAL},
        {"http://:80/", -EINVAL},
        {"http://[::1/", -EINVAL},
        {"http://[::1]x/", -EINVAL},
        {"http://[nope]:80/", -EINVAL},
        {"http://host:99999/", -EINVAL},
        {"http://host:8x/", -EINVAL},
        {"http://a:1:2/", -EINVAL},
        {"http://a b/", -EINVAL},
        {"http://a<b/", -EINVAL},
        {"http://host/\r\nX: y", -EINVAL},
        {"http://host/a\tb", -EINVAL},
        {"http://host/%zz", -EINVAL},
        {"http://host/%4", -EINVAL},
        {"http://host/?q=%", -EINVAL},
    };
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
        int e = do_req(c, NULL, urls[i].url, NULL, 0);
        if (e != urls[i].err)
            fprintf(stderr, "url \"%s\": %d, want %d\n", urls[i].url, e, urls[i].err);
        CHECK_EQ(e, urls[i].err);
    }
    const char *u = "http://127.0.0.1:1/";
    gorc_http_header bad_value[] = {{"X-A", "a\r\nX-Injected: 1"}};
    gorc_http_header bad_lf[] = {{"X-A", "a\nb"}};
    gorc_http_header bad_nul_name[] = {{"", "v"}};
    gorc_http_header bad_name[] = {{"Bad Name", "v"}};
    gorc_http_header bad_colon[] = {{"X-A:", "v"}};
    gorc_http_header bad_crlf_name[] = {{"X-A\r\nX-B", "v"}};
    CHECK_EQ(do_req(c, NULL, u, bad_value, 1), -EINVAL);
    CHECK_EQ(do_req(c, NULL, u, bad_lf, 1), -EINVAL);
    CHECK_EQ(do_req(c, NULL, u, bad_nul_name, 1), -EINVAL);
    CHECK_EQ(do_req(c, NULL, u, bad_name, 1), -EINVAL);
    CHECK_EQ(do_req(c, NULL, u, bad_colon, 1), -EINVAL);
    CHECK_EQ(do_req(c, NULL, u, bad_crlf_name, 1), -EINVAL);
    CHECK_EQ(do_req(c, "GE T", u, NULL, 0), -EINVAL);
    CHECK_EQ(do_req(c, "", u, NULL, 0), -EINVAL);
    CHECK_EQ(do_req(c, "GET\r\n", u, NULL, 0), -EINVAL);
    CHECK_EQ(do_req(c, NULL, NULL, NULL, 0), -EINVAL);
    CHECK_EQ(do_req(c, NULL, u, NULL, 1), -EINVAL);
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_do(c, NULL, &r), -EINVAL);
    gorc_http_client_request q = {.url = u, .body_len = 3};
    CHECK_EQ(gorc_http_client_do(c, &q, &r), -EINVAL);
    CHECK_EQ(gorc_http_client_do(c, &q, NULL), -EINVAL);
    CHECK_EQ(gorc_http_client_get(c, NULL, &r), -EINVAL);
    CHECK_EQ(gorc_http_client_new(NULL, NULL), -EINVAL);
    gorc_http_client_free(c);
}

GO_TEST(test_request_headers)
{
    srv *s = srv_start(h_canned, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    gorc_http_client *c = client(NULL);
    /* Host overrides; framing headers of the caller are ignored; others go out as given. */
    gorc_http_header h[] = {{"Host", "example.test"},
                            {"Content-Length", "99"},
                            {"Transfer-Encoding", "gzip"},
                            {"User-Agent", "tester/1"},
                            {"X-Multi", "1"},
                            {"X-Multi", "2"},
                            {"X-Empty", ""}};
    CHECK_EQ(do_req(c, "GET", fmt("%s/h", s->url), h, 7), 0);
    const char *last = srv_last(s);
    CHECK(strstr(last, "\r\nHost: example.test\r\n") != NULL);
    CHECK(strstr(last, s->addr) == NULL);
    CHECK(strstr(last, "Content-Length") == NULL);
    CHECK(strstr(last, "Transfer-Encoding") == NULL);
    CHECK(strstr(last, "\r\nUser-Agent: tester/1\r\n") != NULL);
    CHECK(strstr(last, "gorc") == NULL);
    CHECK(strstr(last, "\r\nX-Multi: 1\r\nX-Multi: 2\r\n") != NULL);
    CHECK(strstr(last, "\r\nX-Empty: \r\n") != NULL);
    /* POST, PUT and PATCH with no body say "Content-Length: 0"; DELETE does not. */
    CHECK_EQ(do_req(c, "POST", s->url, NULL, 0), 0);
    CHECK(strstr(srv_last(s), "\r\nContent-Length: 0\r\n") != NULL);
    CHECK_EQ(do_req(c, "DELETE", s->url, NULL, 0), 0);
    CHECK(strstr(srv_last(s), "Content-Length") == NULL);
    CHECK(strncmp(srv_last(s), "DELETE / HTTP/1.1\r\n", 19) == 0);
    /* A query without a path. */
    CHECK_EQ(do_req(c, NULL, fmt("%s?x=1", s->url), NULL, 0), 0);
    CHECK(strncmp(srv_last(s), "GET /?x=1 HTTP/1.1\r\n", 20) == 0);
    CHECK_EQ(atomic_load(&s->conns), 1);
    gorc_http_client_free(c);
    srv_stop(s);
}

GO_TEST(test_streamed_upload)
{
    srv *s = srv_start(h_canned, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    gorc_http_client *c = client(NULL);
    const char *url = fmt("%s/up", s->url);
    /* Chunked: one chunk per piece, byte for byte. */
    static const char *const parts[] = {"hello", " ", "abcdefghijklmnopqrstuvwxyz", NULL};
    CHECK_EQ(upload(c, "PUT", url, parts, 0), 200);
    const char *last = srv_last(s);
    CHECK(strncmp(last, "PUT /up HTTP/1.1\r\n", 18) == 0);
    CHECK(strstr(last, "\r\nTransfer-Encoding: chunked\r\n") != NULL);
    CHECK(strstr(last, "Content-Length") == NULL);
    CHECK(strcmp(body_of(last), "5\r\nhello\r\n1\r\n \r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                                "0\r\n\r\n") == 0);

    /* With a length: plain bytes. */
    static const char *const two[] = {"hello", " world", NULL};
    CHECK_EQ(upload(c, "PUT", url, two, 11), 200);
    CHECK(strstr(srv_last(s), "\r\nContent-Length: 11\r\n") != NULL);
    CHECK(strcmp(body_of(srv_last(s)), "hello world") == 0);
    CHECK_EQ(atomic_load(&s->conns), 1);

    /* Shorter or longer than announced, or a failing reader: the request is abandoned. */
    CHECK_EQ(upload(c, "PUT", url, two, 20), -EINVAL);
    CHECK_EQ(upload(c, "PUT", url, two, 5), -EINVAL);
    static const char *const failing[] = {"abc", "!", NULL};
    CHECK_EQ(upload(c, "PUT", url, failing, 0), -EIO);
    /* The connection of an abandoned request is not reused. */
    CHECK_EQ(upload(c, "PUT", url, two, 11), 200);
    CHECK_EQ(atomic_load(&s->conns), 4);
    gorc_http_client_free(c);
    srv_stop(s);
}

/* A body reader producing n pseudo-random bytes in pieces of varying size. */
typedef struct gen {
    size_t left;
    uint32_t seed;
    int calls;
} gen;

static ssize_t gen_read(void *arg, void *buf, size_t n);

/* The whole output of a generator, in one buffer. */
static char *gen_all(size_t n, uint32_t seed)
{
    char *p = malloc(n);
    gen g = {n, seed, 0};
    for (size_t off = 0; off < n;)
        off += (size_t)gen_read(&g, p + off, n - off);
    return p;
}

static ssize_t gen_read(void *arg, void *buf, size_t n)
{
    gen *g = arg;
    size_t k = (size_t)(g->calls++ * 7919 % 20000) + 1;
    k = k < n ? k : n;
    k = k < g->left ? k : g->left;
    for (size_t i = 0; i < k; i++) {
        g->seed = g->seed * 1103515245u + 12345u;
        ((unsigned char *)buf)[i] = (unsigned char)(g->seed >> 16);
    }
    g->left -= k;
    return (ssize_t)k;
}

GO_TEST(test_large_bodies)
{
    srv *s = srv_start(h_canned, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    gorc_http_client *c = client(NULL);
    size_t n = 200000;
    char *body = gen_all(n, 1);
    gen g;
    /* In memory, larger than what goes out with the head. */
    gorc_http_client_request q = {.method = "POST", .url = s->url, .body = body, .body_len = n};
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
    gorc_http_response_close(r);
    const char *last = srv_last(s);
    CHECK(memcmp(body_of(last), body, n) == 0);
    /* Streamed with a length, in odd pieces. */
    g = (gen){n, 1, 0};
    q = (gorc_http_client_request){.method = "POST",
                                   .url = s->url,
                                   .body_read = gen_read,
                                   .body_arg = &g,
                                   .content_length = (int64_t)n};
    CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
    gorc_http_response_close(r);
    CHECK(memcmp(body_of(srv_last(s)), body, n) == 0);
    CHECK_EQ(atomic_load(&s->conns), 1);
    free(body);
    gorc_http_client_free(c);
    srv_stop(s);

    /* read_all's limit. */
    s = srv_start(h_canned, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
                            "0123456789012345678901234567890123456789012345678901234567890123456789"
                            "012345678901234567890123456789");
    c = client(NULL);
    CHECK_EQ(gorc_http_client_get(c, s->url, &r), 0);
    char *b = (char *)1;
    CHECK_EQ(gorc_http_response_read_all(r, &b, 10), GORC_HTTP_ETOOLARGE);
    CHECK(b == NULL);
    gorc_http_response_close(r);
    CHECK_EQ(gorc_http_client_get(c, s->url, &r), 0);
    CHECK_EQ(gorc_http_response_read_all(r, &b, 100), 100);
    free(b);
    gorc_http_response_close(r);
    gorc_http_client_free(c);
    srv_stop(s);
}

/* Refuse an upload after its head, without reading the body, as a server with a body
 * limit does. */
static void h_refuse_upload(srv *s, gorc_conn *c, int idx)
{
    char buf[4096];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t k = gorc_conn_read(c, buf + n, sizeof buf - 1 - n);
        if (k <= 0)
            return;
        n += (size_t)k;
        buf[n] = 0;
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    atomic_fetch_add(&s->requests, 1);
    write_str(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n"
                 "\r\ntoo big\n");
    gorc_sleep(20 * MS); /* let the answer arrive before the reset the close causes */
}

GO_TEST(test_early_response)
{
    srv *s = srv_start(h_refuse_upload, NULL);
    gorc_http_client *c = client(NULL);
    size_t n = (size_t)8 << 20;
    char *body = calloc(1, n);
    gorc_http_client_request q = {.method = "POST", .url = s->url, .body = body, .body_len = n};
    gorc_http_response *r;
    int e = gorc_http_client_do(c, &q, &r);
    if (e != 0)
        fprintf(stderr, "early response: %s\n", strerror(-e));
    CHECK_EQ(e, 0);
    CHECK_EQ(r->status, 413);
    char *b;
    CHECK_EQ(gorc_http_response_read_all(r, &b, 0), 8);
    CHECK(strcmp(b, "too big\n") == 0);
    free(b);
    gorc_http_response_close(r);
    free(body);
    gorc_http_client_free(c);
    srv_stop(s);
}

/* ------------------------------------------------------------------------------------------
 * Addresses, the default client
 * ---------------------------------------------------------------------------------------- */

GO_TEST(test_ipv6_and_default_client)
{
    srv *s = srv_start_at("[::1]:0", h_canned, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv6");
    if (s != NULL) {
        const char *port = strrchr(s->addr, ':') + 1;
        get_expect(NULL, fmt("http://[::1]:%s/six", port), 200, "v6");
        CHECK(strstr(srv_last(s), fmt("\r\nHost: [::1]:%s\r\n", port)) != NULL);
        CHECK(strncmp(srv_last(s), "GET /six HTTP/1.1\r\n", 19) == 0);
        srv_stop(s);
    } else {
        fprintf(stderr, "no IPv6 loopback: skipped the IPv6 part\n");
    }
    /* The default client (c == NULL) pools too. */
    s = srv_start(h_canned, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    get_expect(NULL, s->url, 200, "ok");
    get_expect(NULL, fmt("%s/again", s->url), 200, "ok");
    CHECK_EQ(atomic_load(&s->conns), 1);
    srv_stop(s);
}

/* ------------------------------------------------------------------------------------------
 * Against gorc's own server
 * ---------------------------------------------------------------------------------------- */

static void fill_big(char *p, size_t n, size_t off)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('A' + (off + i) % 23);
}

static void echo_handler(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    if (strcmp(r->path, "/redir") == 0) {
        gorc_http_redirect(w, "/final?from=redir", 302);
        return;
    }
    if (strcmp(r->path, "/big") == 0) {
        char *p = malloc(16384);
        for (size_t off = 0; off < (1 << 20); off += 16384) {
            fill_big(p, 16384, off);
            gorc_http_rw_write(w, p, 16384);
        }
        free(p);
        return;
    }
    char *body = NULL;
    ssize_t n = gorc_http_request_read_all(r, &body, 0);
    if (n < 0) {
        gorc_http_error(w, 400, "bad body");
        return;
    }
    gorc_http_rw_set_header(w, "X-Method", r->method);
    gorc_http_rw_printf(w, "%s %s?%s %zd:", r->method, r->path, r->query, n);
    if (n > 0)
        gorc_http_rw_write(w, body, (size_t)n);
    free(body);
}

typedef struct served {
    gorc_http_server *hs;
    gorc_listener *l;
    gorc_waitgroup wg;
} served;

static void serve_main(void *arg)
{
    served *sv = arg;
    CHECK_EQ(gorc_http_server_serve(sv->hs, sv->l), GORC_HTTP_ESERVERCLOSED);
    gorc_waitgroup_done(&sv->wg);
}

GO_TEST(test_against_gorc_server)
{
    served sv = {0};
    gorc_http_server_opts so = {.handler = echo_handler};
    CHECK_EQ(gorc_http_server_new(&sv.hs, &so), 0);
    CHECK_EQ(gorc_tcp_listen(&sv.l, "127.0.0.1:0", NULL), 0);
    char addr[GORC_ADDRSTRLEN], base[GORC_ADDRSTRLEN + 16];
    CHECK(gorc_listener_addr(sv.l, addr, sizeof addr) > 0);
    snprintf(base, sizeof base, "http://%s", addr);
    gorc_waitgroup_add(&sv.wg, 1);
    CHECK_EQ(gorc_go(serve_main, &sv), 0);

    gorc_http_client *c = client(NULL);
    get_expect(c, fmt("%s/hello?x=1", base), 200, "GET /hello?x=1 0:");
    gorc_http_client_request q = {
        .method = "POST", .url = fmt("%s/p", base), .body = "abc", .body_len = 3};
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
    CHECK(strcmp(gorc_http_response_header(r, "x-method"), "POST") == 0);
    char *b;
    CHECK_EQ(gorc_http_response_read_all(r, &b, 0), 14);
    CHECK(strcmp(b, "POST /p? 3:abc") == 0);
    free(b);
    gorc_http_response_close(r);

    /* A streamed, chunked upload comes back whole. */
    size_t n = 100000;
    char *want = gen_all(n, 7);
    gen g = {n, 7, 0};
    q = (gorc_http_client_request){
        .method = "PUT", .url = fmt("%s/up", base), .body_read = gen_read, .body_arg = &g};
    CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
    CHECK_EQ(r->status, 200);
    ssize_t k = gorc_http_response_read_all(r, &b, 0);
    CHECK_EQ(k, (ssize_t)(strlen("PUT /up? 100000:") + n));
    CHECK(memcmp(b + strlen("PUT /up? 100000:"), want, n) == 0);
    free(b);
    free(want);
    gorc_http_response_close(r);

    /* The server's redirect, a large streamed (chunked) response, HEAD. */
    CHECK_EQ(gorc_http_client_get(c, fmt("%s/redir", base), &r), 0);
    CHECK(strcmp(r->url, fmt("%s/final?from=redir", base)) == 0);
    CHECK_EQ(gorc_http_response_read_all(r, &b, 0), (ssize_t)strlen("GET /final?from=redir 0:"));
    free(b);
    gorc_http_response_close(r);
    CHECK_EQ(gorc_http_client_get(c, fmt("%s/big", base), &r), 0);
    CHECK_EQ(r->content_length, -1);
    CHECK_EQ(gorc_http_response_read_all(r, &b, 0), 1 << 20);
    char *p = malloc(1 << 20);
    fill_big(p, 1 << 20, 0);
    CHECK(memcmp(b, p, 1 << 20) == 0);
    free(p);
    free(b);
    gorc_http_response_close(r);
    q = (gorc_http_client_request){.method = "HEAD", .url = fmt("%s/hello", base)};
    CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
    CHECK_EQ(r->status, 200);
    CHECK_EQ(gorc_http_response_read(r, &(char){0}, 1), 0);
    gorc_http_response_close(r);

    gorc_http_server_stats st;
    gorc_http_server_stats_get(sv.hs, &st);
    CHECK_EQ(st.conns_total, 1); /* everything over one kept-alive connection */
    CHECK_EQ(st.requests, 7);

    gorc_http_client_free(c);
    CHECK_EQ(gorc_http_server_shutdown(sv.hs, gorc_now() + GUARD), 0);
    gorc_waitgroup_wait(&sv.wg);
    gorc_listener_release(sv.l);
    gorc_http_server_free(sv.hs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_chunked_large),
        cmocka_unit_test(test_close_delimited),
        cmocka_unit_test(test_head_and_no_body_statuses),
        cmocka_unit_test(test_interim_responses_skipped),
        cmocka_unit_test(test_keepalive_reuse),
        cmocka_unit_test(test_pool_concurrent),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_stale_pooled_connection),
        cmocka_unit_test(test_redirects),
        cmocka_unit_test(test_streamed_body_not_replayed),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_request_context),
        cmocka_unit_test(test_malformed_responses),
        cmocka_unit_test(test_large_heads),
        cmocka_unit_test(test_request_validation),
        cmocka_unit_test(test_request_headers),
        cmocka_unit_test(test_streamed_upload),
        cmocka_unit_test(test_large_bodies),
        cmocka_unit_test(test_early_response),
        cmocka_unit_test(test_ipv6_and_default_client),
        cmocka_unit_test(test_against_gorc_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
