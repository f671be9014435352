/*
 * http_testutil.h - what the HTTP test files share: a server running on 127.0.0.1 in a
 * goroutine, and a raw client that sends one request on a fresh connection and reads the
 * response to the end, so each test states exactly what goes over the wire.
 *
 * Everything here runs inside goroutines (GO_TEST bodies), so failures use CHECK.
 */
#ifndef GORC_HTTP_TESTUTIL_H
#define GORC_HTTP_TESTUTIL_H

#include "testutil.h"

#include <gorc_http.h>
#include <string.h>

#include "http/parse.h"

typedef struct fixture {
    gorc_http_server *s;
    gorc_listener *l;
    char addr[GORC_ADDRSTRLEN];
    gorc_chan *done; /* gorc_http_server_serve's result */
} fixture;

static inline void fixture_serve(void *arg)
{
    fixture *f = arg;
    int r = gorc_http_server_serve(f->s, f->l);
    CHECK_EQ(gorc_chan_send(f->done, &r), 0);
}

/* Start a server with options o (handler included) on a free loopback port. */
static inline void fixture_start_opts(fixture *f, const gorc_http_server_opts *o)
{
    memset(f, 0, sizeof *f);
    CHECK_EQ(gorc_http_server_new(&f->s, o), 0);
    CHECK_EQ(gorc_tcp_listen(&f->l, "127.0.0.1:0", NULL), 0);
    CHECK(gorc_listener_addr(f->l, f->addr, sizeof f->addr) > 0);
    CHECK_EQ(gorc_chan_new(&f->done, sizeof(int), 1), 0);
    CHECK_EQ(gorc_go(fixture_serve, f), 0);
}

/* Shut the server down gracefully and check that it stopped cleanly. */
static inline void fixture_stop(fixture *f)
{
    CHECK_EQ(gorc_http_server_shutdown(f->s, gorc_now() + 10 * GORC_SECOND), 0);
    int r;
    CHECK_EQ(gorc_chan_recv(f->done, &r), 0);
    CHECK_EQ(r, GORC_HTTP_ESERVERCLOSED);
    gorc_http_server_free(f->s);
    gorc_listener_release(f->l);
    gorc_chan_release(f->done);
}

typedef struct resp {
    int status;
    char *raw; /* the whole response */
    size_t len;
    gorc__http_header hdrs[64];
    size_t nhdrs;
    const char *body;
    size_t blen;
} resp;

/* Send "METHOD target" with extra header lines (each ending in CRLF; "Host: test" is added
 * unless they have a Host) and "Connection: close" on a new connection, and read the response
 * until the server closes (4 MiB at most). */
static inline void fetch(fixture *f, const char *method, const char *target, const char *extra,
                         resp *r)
{
    const size_t max = (size_t)4 << 20;
    memset(r, 0, sizeof *r);
    gorc_conn *c;
    CHECK_EQ(gorc_tcp_dial(&c, f->addr, 5 * GORC_SECOND), 0);
    gorc_conn_set_deadline(c, gorc_now() + 30 * GORC_SECOND);
    char req[4096];
    int n =
        snprintf(req, sizeof req, "%s %s HTTP/1.1\r\n%s%sConnection: close\r\n\r\n", method, target,
                 extra && strstr(extra, "Host:") ? "" : "Host: test\r\n", extra ? extra : "");
    CHECK(n > 0 && (size_t)n < sizeof req);
    CHECK_EQ(gorc_conn_write_all(c, req, (size_t)n), n);
    r->raw = malloc(max + 1);
    CHECK(r->raw != NULL);
    for (;;) {
        ssize_t k = gorc_conn_read(c, r->raw + r->len, max - r->len);
        CHECK(k >= 0);
        if (k == 0)
            break;
        r->len += (size_t)k;
        CHECK(r->len < max);
    }
    r->raw[r->len] = 0;
    gorc_conn_close(c);
    gorc__http_response pr = {
        .headers = r->hdrs, .headers_cap = 64, .head_request = strcmp(method, "HEAD") == 0};
    int hl = gorc__http_parse_response(&pr, r->raw, r->len, 0, NULL);
    CHECK(hl > 0);
    r->status = pr.status;
    r->nhdrs = pr.num_headers;
    r->body = r->raw + hl;
    r->blen = r->len - (size_t)hl;
    if (pr.body == GORC__HTTP_BODY_LENGTH)
        CHECK_EQ(r->blen, pr.content_length);
}

/* The value of response header name, copied into buf, or NULL when absent. */
static inline const char *hdr_copy(const resp *r, const char *name, char *buf, size_t n)
{
    const gorc__http_header *h =
        gorc__http_header_find(r->hdrs, r->nhdrs, name, strlen(name), NULL);
    if (h == NULL)
        return NULL;
    CHECK(h->value.n < n);
    memcpy(buf, h->value.p, h->value.n);
    buf[h->value.n] = 0;
    return buf;
}

/* The same in a static buffer (valid until the next call). */
static inline const char *hdr(const resp *r, const char *name)
{
    static char v[1024];
    return hdr_copy(r, name, v, sizeof v);
}

static inline void resp_free(resp *r)
{
    free(r->raw);
}

#endif
