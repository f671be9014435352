/*
 * test_http2.c - libgorc_http2: the HTTP/2 server and client against each other over h2c,
 * with the same handler and client API as HTTP/1.1.
 *
 * The server is a gorc_http_server configured with gorc_http2_configure_server; the client
 * a gorc_http_client whose options gorc_http2_configure_client filled. Handlers record what
 * they saw (protocol, concurrency, bytes written, their context's cause) in atomics that the
 * tests check. Frame-level cases and the floods are in tests/e2e/http2_e2e.py (Python's h2).
 * Everything is on loopback; deadlines are hang guards only.
 */
#include "testutil.h"

#include <gorc_http.h>
#include <gorc_http2.h>
#include <gorc_net.h>

#include <stdatomic.h>
#include <string.h>
#include <strings.h>

#define MS    GORC_MILLISECOND
#define GUARD (10 * GORC_SECOND)

static atomic_int running, peak, proto_seen, ctx_cause, ctx_waiting;
static atomic_long big_written;

static void note_running(int d)
{
    int v = atomic_fetch_add(&running, d) + d;
    int p = atomic_load(&peak);
    while (v > p && !atomic_compare_exchange_weak(&peak, &p, v))
        ;
}

static void fill(char *p, size_t n, size_t off)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (off + i) % 26);
}

static void handler(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    atomic_store(&proto_seen, r->proto_major);
    if (strcmp(r->path, "/hello") == 0) {
        gorc_http_rw_write_string(w, "Hello, World!\n");
    } else if (strcmp(r->path, "/echo") == 0) {
        char *b;
        ssize_t n = gorc_http_request_read_all(r, &b, 0);
        if (n < 0)
            return;
        gorc_http_rw_set_header(w, "X-Len", gorc_http_rw_request(w) == r ? "same" : "other");
        gorc_http_rw_write(w, b, (size_t)n);
        free(b);
    } else if (strcmp(r->path, "/slow") == 0) {
        note_running(1);
        gorc_sleep(50 * MS);
        note_running(-1);
        gorc_http_rw_write_string(w, "slow\n");
    } else if (strncmp(r->path, "/big/", 5) == 0) {
        long total = atol(r->path + 5);
        char buf[16384];
        for (long off = 0; off < total;) {
            size_t k = total - off < (long)sizeof buf ? (size_t)(total - off) : sizeof buf;
            fill(buf, k, (size_t)off);
            if (gorc_http_rw_write(w, buf, k) < 0)
                return;
            off += (long)k;
            atomic_store(&big_written, off);
        }
    } else if (strcmp(r->path, "/wait") == 0) {
        gorc_ctx *x = gorc_http_request_ctx(r);
        atomic_fetch_add(&ctx_waiting, 1);
        gorc_sleep_ctx(5 * GORC_SECOND, x);
        atomic_store(&ctx_cause, gorc_ctx_cause(x));
        atomic_fetch_sub(&ctx_waiting, 1);
    } else if (strcmp(r->path, "/early") == 0) {
        gorc_http_rw_set_header(w, "Link", "</a.css>; rel=preload");
        CHECK_EQ(gorc_http_rw_write_header(w, 103), 0);
        CHECK_EQ(gorc_http_rw_write_header(w, 101), r->proto_major == 2 ? -EINVAL : 0);
        gorc_http_rw_write_string(w, "early\n");
    } else if (strcmp(r->path, "/continue") == 0) {
        CHECK_EQ(gorc_http_rw_write_header(w, 100), 0);
        CHECK_EQ(gorc_http_rw_write_header(w, 100), 0); /* once only, the second is a no-op */
        char *b;
        ssize_t n = gorc_http_request_read_all(r, &b, 0);
        if (n < 0)
            return;
        gorc_http_rw_write(w, b, (size_t)n);
        free(b);
    } else if (strcmp(r->path, "/trailers") == 0) {
        gorc_http_rw_write_string(w, "body\n");
        CHECK_EQ(gorc_http_rw_set_trailer(w, "X-Sum", "42"), 0);
        CHECK_EQ(gorc_http_rw_set_trailer(w, "Content-Length", "1"), -EINVAL);
    } else {
        gorc_http_error(w, 404, NULL);
    }
}

/* A logging middleware: wraps the writer with its own ops, counting bytes and the status. */
typedef struct logw {
    gorc_http_rw *inner;
    long bytes;
} logw;
static atomic_long logged_bytes, logged_status;

static int lw_set_header(void *impl, const char *n, const char *v, bool replace)
{
    logw *l = impl;
    return replace ? gorc_http_rw_set_header(l->inner, n, v)
                   : gorc_http_rw_add_header(l->inner, n, v);
}
static int lw_write_header(void *impl, int status)
{
    return gorc_http_rw_write_header(((logw *)impl)->inner, status);
}
static ssize_t lw_write(void *impl, const void *buf, size_t n)
{
    logw *l = impl;
    ssize_t r = gorc_http_rw_write(l->inner, buf, n);
    if (r > 0)
        l->bytes += r;
    return r;
}
static int lw_flush(void *impl)
{
    return gorc_http_rw_flush(((logw *)impl)->inner);
}
static int lw_status(const void *impl)
{
    return gorc_http_rw_status(((const logw *)impl)->inner);
}
static bool lw_sent(const void *impl)
{
    return gorc_http_rw_sent(((const logw *)impl)->inner);
}
static const gorc_http_rw_ops log_ops = {.set_header = lw_set_header,
                                         .write_header = lw_write_header,
                                         .write = lw_write,
                                         .flush = lw_flush,
                                         .status = lw_status,
                                         .sent = lw_sent};

static void logging(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    logw l = {.inner = w};
    gorc_http_rw *lw;
    CHECK_EQ(gorc_http_rw_new(&lw, &log_ops, &l, r), 0);
    handler(lw, r, arg);
    atomic_store(&logged_bytes, l.bytes);
    atomic_store(&logged_status, gorc_http_rw_status(lw));
    gorc_http_rw_free(lw);
}

typedef struct server {
    gorc_http_server *hs;
    gorc_http2_server *h2;
    gorc_listener *l;
    gorc_waitgroup wg;
    char base[GORC_ADDRSTRLEN + 16];
} server;

static void serve_main(void *arg)
{
    server *sv = arg;
    CHECK_EQ(gorc_http_server_serve(sv->hs, sv->l), GORC_HTTP_ESERVERCLOSED);
    gorc_waitgroup_done(&sv->wg);
}

static void server_start(server *sv, gorc_http_handler_fn fn, uint32_t max_streams)
{
    gorc_http_server_opts so = {.handler = fn, .max_body_bytes = 4 << 20};
    CHECK_EQ(gorc_http_server_new(&sv->hs, &so), 0);
    gorc_http2_opts ho = {.h2c = true, .max_concurrent_streams = max_streams};
    CHECK_EQ(gorc_http2_configure_server(sv->hs, &ho, &sv->h2), 0);
    CHECK_EQ(gorc_tcp_listen(&sv->l, "127.0.0.1:0", NULL), 0);
    char addr[GORC_ADDRSTRLEN];
    CHECK(gorc_listener_addr(sv->l, addr, sizeof addr) > 0);
    snprintf(sv->base, sizeof sv->base, "http://%s", addr);
    gorc_waitgroup_add(&sv->wg, 1);
    CHECK_EQ(gorc_go(serve_main, sv), 0);
}

static void server_stop(server *sv)
{
    CHECK_EQ(gorc_http_server_shutdown(sv->hs, gorc_now() + GUARD), 0);
    gorc_waitgroup_wait(&sv->wg);
    gorc_listener_release(sv->l);
    gorc_http_server_free(sv->hs);
    gorc_http2_server_free(sv->h2);
}

static gorc_http_client *h2_client(gorc_http2_client **h2)
{
    gorc_http_client_opts o = {.timeout = GUARD};
    gorc_http2_client_opts co = {.h2c_prior_knowledge = true};
    CHECK_EQ(gorc_http2_configure_client(&o, &co, h2), 0);
    gorc_http_client *c;
    CHECK_EQ(gorc_http_client_new(&c, &o), 0);
    return c;
}

static char urlbuf[4][256];
static int urlnext;
static const char *url(const server *sv, const char *path)
{
    char *u = urlbuf[urlnext++ % 4];
    snprintf(u, 256, "%s%s", sv->base, path);
    return u;
}

static char *get_body(gorc_http_client *c, const char *u, int want_status, ssize_t *len)
{
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_get(c, u, &r), 0);
    CHECK_EQ(r->status, want_status);
    CHECK_EQ(r->proto_major, 2);
    char *b;
    ssize_t n = gorc_http_response_read_all(r, &b, 0);
    CHECK(n >= 0);
    if (len)
        *len = n;
    gorc_http_response_close(r);
    return b;
}

GO_TEST(test_h2c_basic)
{
    server sv = {0};
    server_start(&sv, handler, 0);
    gorc_http2_client *h2;
    gorc_http_client *c = h2_client(&h2);

    char *b = get_body(c, url(&sv, "/hello"), 200, NULL);
    CHECK(strcmp(b, "Hello, World!\n") == 0);
    CHECK_EQ(atomic_load(&proto_seen), 2);
    free(b);
    b = get_body(c, url(&sv, "/nothing"), 404, NULL);
    free(b);

    /* A 1 MB upload echoed: flow control both ways, the stream window is 1 MiB. */
    size_t n = 1 << 20;
    char *up = malloc(n);
    fill(up, n, 3);
    gorc_http_client_request q = {
        .method = "POST", .url = url(&sv, "/echo"), .body = up, .body_len = n};
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
    CHECK_EQ(r->status, 200);
    CHECK(strcmp(gorc_http_response_header(r, "x-len"), "same") == 0);
    CHECK_EQ(gorc_http_response_read_all(r, &b, 0), (ssize_t)n);
    CHECK(memcmp(b, up, n) == 0);
    free(b);
    free(up);
    gorc_http_response_close(r);

    /* HEAD: the length, no body. */
    q = (gorc_http_client_request){.method = "HEAD", .url = url(&sv, "/hello")};
    CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
    CHECK_EQ(r->status, 200);
    CHECK_EQ(r->content_length, 14);
    CHECK_EQ(gorc_http_response_read(r, &(char){0}, 1), 0);
    gorc_http_response_close(r);

    /* Trailers after a body (the client reads past them). */
    b = get_body(c, url(&sv, "/trailers"), 200, NULL);
    CHECK(strcmp(b, "body\n") == 0);
    free(b);

    CHECK_EQ(gorc_http2_client_dials(h2), 1); /* all of it over one connection */
    gorc_http2_server_stats st;
    gorc_http2_server_stats_get(sv.h2, &st);
    CHECK_EQ(st.conns_total, 1);
    CHECK_EQ(st.streams_total, 5);

    gorc_http_client_free(c);
    gorc_http2_client_free(h2);
    server_stop(&sv);
}

typedef struct par {
    gorc_http_client *c;
    const char *u;
    atomic_int ok;
    gorc_waitgroup wg;
} par;

static void par_get(void *arg)
{
    par *p = arg;
    gorc_http_response *r;
    if (gorc_http_client_get(p->c, p->u, &r) == 0) {
        char *b;
        if (r->status == 200 && gorc_http_response_read_all(r, &b, 0) == 5) {
            atomic_fetch_add(&p->ok, 1);
            free(b);
        }
        gorc_http_response_close(r);
    }
    gorc_waitgroup_done(&p->wg);
}

GO_TEST(test_multiplex_within_stream_limit)
{
    server sv = {0};
    server_start(&sv, handler, 4); /* the server allows 4 streams at once */
    gorc_http2_client *h2;
    gorc_http_client *c = h2_client(&h2);
    atomic_store(&peak, 0);
    par p = {.c = c, .u = url(&sv, "/slow")};
    for (int i = 0; i < 24; i++) {
        gorc_waitgroup_add(&p.wg, 1);
        CHECK_EQ(gorc_go(par_get, &p), 0);
    }
    gorc_waitgroup_wait(&p.wg);
    CHECK_EQ(atomic_load(&p.ok), 24);
    CHECK_EQ(atomic_load(&peak), 4);          /* multiplexed, and never over the limit */
    CHECK_EQ(gorc_http2_client_dials(h2), 1); /* on one connection */
    gorc_http_client_free(c);
    gorc_http2_client_free(h2);
    server_stop(&sv);
}

GO_TEST(test_flow_control_backs_up_to_the_handler)
{
    server sv = {0};
    server_start(&sv, handler, 0);
    gorc_http2_client *h2;
    gorc_http_client *c = h2_client(&h2);
    atomic_store(&big_written, 0);
    long total = 16 << 20;
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_get(c, url(&sv, "/big/16777216"), &r), 0);
    /* The client reads nothing: the handler stops once the windows (1 MiB stream, 1 MiB
     * connection) and its 64 KiB buffer are full. Wait until its progress has stood still for
     * 100 ms (however slow the machine or the build), then check where it stopped. */
    long w1 = -1;
    for (int still = 0, i = 0; still < 4 && i < 400; i++) {
        gorc_sleep(25 * MS);
        long w = atomic_load(&big_written);
        still = w == w1 ? still + 1 : 0;
        w1 = w;
    }
    CHECK(w1 <= (1 << 20) + (64 << 10) + (16 << 10));
    CHECK(w1 < total);
    /* Reading lets it go on, and everything arrives in order. */
    char *buf = malloc(1 << 16), *want = malloc(1 << 16);
    long got = 0;
    for (;;) {
        ssize_t k = gorc_http_response_read(r, buf, 1 << 16);
        CHECK(k >= 0);
        if (k == 0)
            break;
        fill(want, (size_t)k, (size_t)got);
        CHECK(memcmp(buf, want, (size_t)k) == 0);
        got += k;
    }
    CHECK_EQ(got, total);
    free(buf);
    free(want);
    gorc_http_response_close(r);
    gorc_http_client_free(c);
    gorc_http2_client_free(h2);
    server_stop(&sv);
}

GO_TEST(test_reset_cancels_request_context)
{
    server sv = {0};
    server_start(&sv, handler, 0);
    gorc_http2_client *h2;
    gorc_http_client *c = h2_client(&h2);
    atomic_store(&ctx_cause, 0);
    gorc_ctx *x;
    CHECK_EQ(gorc_ctx_with_timeout(&x, gorc_ctx_background(), 150 * MS, -ETIMEDOUT), 0);
    gorc_http_client_request q = {.url = url(&sv, "/wait"), .ctx = x};
    gorc_http_response *r;
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_http_client_do(c, &q, &r), -ETIMEDOUT); /* the client gives up, RST_STREAM */
    CHECK(gorc_now() - t0 < 2 * GORC_SECOND);
    for (int i = 0; i < 200 && atomic_load(&ctx_cause) == 0; i++)
        gorc_sleep(5 * MS);
    CHECK_EQ(atomic_load(&ctx_cause), -ECONNRESET); /* the handler's context saw the reset */
    gorc_ctx_release(x);
    /* The connection goes on serving. */
    char *b = get_body(c, url(&sv, "/hello"), 200, NULL);
    free(b);
    CHECK_EQ(gorc_http2_client_dials(h2), 1);
    gorc_http_client_free(c);
    gorc_http2_client_free(h2);
    server_stop(&sv);
}

typedef struct inflight {
    gorc_http_client *c;
    const char *u;
    int status;
    gorc_waitgroup wg;
} inflight;

static void inflight_get(void *arg)
{
    inflight *f = arg;
    gorc_http_response *r;
    if (gorc_http_client_get(f->c, f->u, &r) == 0) {
        char *b;
        if (gorc_http_response_read_all(r, &b, 0) == 5) {
            f->status = r->status;
            free(b);
        }
        gorc_http_response_close(r);
    }
    gorc_waitgroup_done(&f->wg);
}

GO_TEST(test_graceful_shutdown_goaway)
{
    server sv = {0};
    server_start(&sv, handler, 0);
    gorc_http2_client *h2;
    gorc_http_client *c = h2_client(&h2);
    char *b = get_body(c, url(&sv, "/hello"), 200, NULL); /* the connection is up */
    free(b);
    inflight f = {.c = c, .u = url(&sv, "/slow")};
    gorc_waitgroup_add(&f.wg, 1);
    CHECK_EQ(gorc_go(inflight_get, &f), 0);
    gorc_sleep(15 * MS);
    /* GOAWAY: the stream in flight completes, then the connection closes. */
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_http_server_shutdown(sv.hs, gorc_now() + GUARD), 0);
    CHECK(gorc_now() - t0 < 2 * GORC_SECOND);
    gorc_waitgroup_wait(&f.wg);
    CHECK_EQ(f.status, 200);
    gorc_http2_server_stats st;
    gorc_http2_server_stats_get(sv.h2, &st);
    CHECK_EQ(st.conns_open, 0);
    gorc_waitgroup_wait(&sv.wg);
    gorc_listener_release(sv.l);
    gorc_http_server_free(sv.hs);
    gorc_http2_server_free(sv.h2);
    gorc_http_client_free(c);
    gorc_http2_client_free(h2);
}

GO_TEST(test_limits_and_middleware)
{
    server sv = {0};
    server_start(&sv, logging, 0);
    gorc_http2_client *h2;
    gorc_http_client *c = h2_client(&h2);
    /* The middleware's writer sees what the handler wrote, over HTTP/2 ... */
    char *b = get_body(c, url(&sv, "/hello"), 200, NULL);
    free(b);
    CHECK_EQ(atomic_load(&logged_bytes), 14);
    CHECK_EQ(atomic_load(&logged_status), 200);
    b = get_body(c, url(&sv, "/nothing"), 404, NULL);
    free(b);
    CHECK_EQ(atomic_load(&logged_status), 404);
    /* ... and over HTTP/1.1 on the same port, from a client without HTTP/2. */
    gorc_http_client *c1;
    CHECK_EQ(gorc_http_client_new(&c1, NULL), 0);
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_get(c1, url(&sv, "/hello"), &r), 0);
    CHECK_EQ(r->proto_major, 1);
    CHECK_EQ(atomic_load(&proto_seen), 1);
    CHECK_EQ(atomic_load(&logged_bytes), 14);
    gorc_http_response_close(r);
    gorc_http_client_free(c1);
    /* A body over max_body_bytes (4 MiB): 413 from the server for the handler. */
    size_t n = 5 << 20;
    char *up = calloc(1, n);
    gorc_http_client_request q = {
        .method = "POST", .url = url(&sv, "/echo"), .body = up, .body_len = n};
    CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
    CHECK_EQ(r->status, 413);
    gorc_http_response_close(r);
    free(up);
    /* More header fields than max_headers (100): 431, and the connection goes on. */
    static gorc_http_header many[120];
    static char names[120][16];
    for (int i = 0; i < 120; i++) {
        snprintf(names[i], sizeof names[i], "X-H%d", i);
        many[i] = (gorc_http_header){names[i], "v"};
    }
    q = (gorc_http_client_request){.url = url(&sv, "/hello"), .headers = many, .num_headers = 120};
    CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
    CHECK_EQ(r->status, 431);
    gorc_http_response_close(r);
    /* A header list over the server's SETTINGS_MAX_HEADER_LIST_SIZE (64 KiB) is refused by
     * the client itself, as Go's is; the connection goes on. */
    char *big = malloc(70000);
    memset(big, 'x', 69999);
    big[69999] = 0;
    gorc_http_header h = {"X-Big", big};
    q = (gorc_http_client_request){.url = url(&sv, "/hello"), .headers = &h, .num_headers = 1};
    CHECK(gorc_http_client_do(c, &q, &r) < 0);
    free(big);
    b = get_body(c, url(&sv, "/hello"), 200, NULL);
    free(b);
    CHECK_EQ(gorc_http2_client_dials(h2), 1);
    gorc_http_client_free(c);
    gorc_http2_client_free(h2);
    server_stop(&sv);
}

GO_TEST(test_api_errors)
{
    gorc_http_client_opts o = {0};
    gorc_http2_client *h2;
    CHECK_EQ(gorc_http2_configure_client(NULL, NULL, &h2), -EINVAL);
    CHECK_EQ(gorc_http2_configure_client(&o, NULL, NULL), -EINVAL);
    gorc_http2_client_opts bad = {.stream_window = 1u << 31};
    CHECK_EQ(gorc_http2_configure_client(&o, &bad, &h2), -EINVAL);
    gorc_http2_server *s2;
    CHECK_EQ(gorc_http2_configure_server(NULL, NULL, &s2), -EINVAL);
    gorc_http_server_opts so = {.handler = handler};
    gorc_http_server *hs;
    CHECK_EQ(gorc_http_server_new(&hs, &so), 0);
    gorc_http2_opts ho = {.max_concurrent_streams = 1u << 31};
    CHECK_EQ(gorc_http2_configure_server(hs, &ho, &s2), -EINVAL);
    CHECK_EQ(gorc_http_server_set_next_proto(hs, "", NULL, NULL), -EINVAL);
    CHECK(gorc_http2_nghttp2_version()[0] != 0);
    /* Without prior knowledge an http:// request is not HTTP/2's: it goes out over HTTP/1.1. */
    CHECK_EQ(gorc_http2_configure_client(&o, NULL, &h2), 0);
    CHECK(o.round_trip != NULL);
    gorc_http_server_close(hs);
    gorc_http_server_free(hs);
    gorc_http2_client_free(h2);
    CHECK_EQ(gorc_http_rw_new(NULL, &log_ops, NULL, NULL), -EINVAL);
}

/* 1xx over HTTP/2: the server sends 103 and 100 as interim HEADERS; the client skips them and
 * their fields and returns the final response. */
GO_TEST(test_interim_responses)
{
    server sv = {0};
    server_start(&sv, handler, 0);
    gorc_http2_client *h2;
    gorc_http_client *c = h2_client(&h2);
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_get(c, url(&sv, "/early"), &r), 0);
    CHECK_EQ(r->status, 200);
    CHECK_EQ(r->proto_major, 2);
    /* The Link field set before the 103 stays on the final head, once. */
    int links = 0;
    for (size_t i = 0; i < r->num_headers; i++)
        links += strcasecmp(r->headers[i].name, "link") == 0;
    CHECK_EQ(links, 1);
    char *b;
    CHECK_EQ(gorc_http_response_read_all(r, &b, 0), 6);
    CHECK(memcmp(b, "early\n", 6) == 0);
    free(b);
    gorc_http_response_close(r);

    gorc_http_header hx[] = {{"Expect", "100-continue"}};
    gorc_http_client_request q = {.method = "POST",
                                  .url = url(&sv, "/continue"),
                                  .headers = hx,
                                  .num_headers = 1,
                                  .body = "payload",
                                  .body_len = 7};
    CHECK_EQ(gorc_http_client_do(c, &q, &r), 0);
    CHECK_EQ(r->status, 200);
    CHECK_EQ(gorc_http_response_read_all(r, &b, 0), 7);
    CHECK(memcmp(b, "payload", 7) == 0);
    free(b);
    gorc_http_response_close(r);
    CHECK_EQ(gorc_http2_client_dials(h2), 1);
    gorc_http_client_free(c);
    gorc_http2_client_free(h2);
    server_stop(&sv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h2c_basic),
        cmocka_unit_test(test_interim_responses),
        cmocka_unit_test(test_multiplex_within_stream_limit),
        cmocka_unit_test(test_flow_control_backs_up_to_the_handler),
        cmocka_unit_test(test_reset_cancels_request_context),
        cmocka_unit_test(test_graceful_shutdown_goaway),
        cmocka_unit_test(test_limits_and_middleware),
        cmocka_unit_test(test_api_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
