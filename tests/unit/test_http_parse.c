/*
 * test_http_parse.c - unit tests for src/http/parse.c (cmocka).
 *
 * Most checks go through helpers that, besides the expected outcome, re-parse the message
 * from every prefix: each prefix is copied into a heap block of exactly its size (so ASan
 * catches a read past what has been "received") and must either ask for more or give exactly
 * the answer of the whole message; feeding it byte by byte with the prev_len hint must end
 * with the same answer. That turns every case below into an incremental-parsing test too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/parse.h"
#include "http_parse_sig.h"

#define NHDRS 256
#define S(x)  (x), (sizeof(x) - 1)

static gorc__http_header hdrs[NHDRS];

/* ------------------------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------------------------- */

static void prep_req(gorc__http_request *req, gorc__http_header *h, size_t cap)
{
    memset(req, 0, sizeof *req);
    req->headers = h;
    req->headers_cap = cap;
}

static void prep_resp(gorc__http_response *resp, gorc__http_header *h, size_t cap, bool head)
{
    memset(resp, 0, sizeof *resp);
    resp->headers = h;
    resp->headers_cap = cap;
    resp->head_request = head;
}

/* Room for a signature (http_parse_sig.h). */
#define SIG_MAX (32 + 4 * NHDRS)

static void assert_sig_eq(const long *a, size_t an, const long *b, size_t bn)
{
    assert_int_equal(an, bn);
    assert_memory_equal(a, b, an * sizeof *a);
}

/* Parse s[0..n) as a request or response (is_resp) from a heap copy of exactly n bytes. */
static size_t parse_copy(bool is_resp, bool head, const char *s, size_t n, size_t prev,
                         const gorc__http_limits *lim, long *sig)
{
    static gorc__http_header h[NHDRS];
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, s, n);
    size_t k;
    if (is_resp) {
        gorc__http_response resp;
        prep_resp(&resp, h, NHDRS, head);
        int r = gorc__http_parse_response(&resp, copy, n, prev, lim);
        k = resp_sig(sig, r, &resp, copy);
    } else {
        gorc__http_request req;
        prep_req(&req, h, NHDRS);
        int r = gorc__http_parse_request(&req, copy, n, prev, lim);
        k = req_sig(sig, r, &req, copy);
    }
    free(copy);
    return k;
}

/* The incremental-parsing contract, checked for every prefix of s. */
static void check_consistency(bool is_resp, bool head, const char *s, size_t n,
                              const gorc__http_limits *lim)
{
    long whole[SIG_MAX], part[SIG_MAX];
    size_t wn = parse_copy(is_resp, head, s, n, 0, lim, whole);
    int wr = (int)whole[0];

    /* Re-parse from scratch: every prefix is NEED_MORE or the final answer. */
    for (size_t k = 0; k < n; k++) {
        size_t pn = parse_copy(is_resp, head, s, k, 0, lim, part);
        if (part[0] != 0)
            assert_sig_eq(part, pn, whole, wn);
    }
    /* With the prev_len hint, byte by byte: the first non-NEED_MORE answer is the final
     * one; a head that is complete must be found. Errors may be found only later. */
    size_t prev = 0;
    for (size_t k = 1; k <= n; k++) {
        size_t pn = parse_copy(is_resp, head, s, k, prev, lim, part);
        if (part[0] != 0) {
            assert_sig_eq(part, pn, whole, wn);
            return;
        }
        prev = k;
    }
    assert_true(wr <= 0);
}

static int parse_req(gorc__http_request *req, const char *s, size_t n, const gorc__http_limits *lim)
{
    prep_req(req, hdrs, NHDRS);
    return gorc__http_parse_request(req, s, n, 0, lim);
}

static int parse_resp(gorc__http_response *resp, const char *s, size_t n, bool head)
{
    prep_resp(resp, hdrs, NHDRS, head);
    return gorc__http_parse_response(resp, s, n, 0, NULL);
}

/* Request s must be accepted in full (head is the whole string). */
static void accept_req(gorc__http_request *req, const char *s, size_t n, int line)
{
    int r = parse_req(req, s, n, NULL);
    if (r != (int)n) {
        print_error("line %d: expected %zu, got %d (%s)\n", line, n, r,
                    gorc__http_fault_text(req->fault));
        fail();
    }
    check_consistency(false, false, s, n, NULL);
    parse_req(req, s, n, NULL); /* the consistency check used other header storage */
}
#define ACCEPT(req, s) accept_req((req), S(s), __LINE__)

static void reject_req(const char *s, size_t n, int status, gorc__http_fault fault,
                       const gorc__http_limits *lim, int line)
{
    gorc__http_request req;
    int r = parse_req(&req, s, n, lim);
    int st = r < 0 ? gorc__http_error_status(r, NULL) : 0;
    if (r >= 0 || st != status || req.fault != fault) {
        print_error("line %d: expected %d/%s, got r=%d status=%d fault=%s\n", line, status,
                    gorc__http_fault_text(fault), r, st, gorc__http_fault_text(req.fault));
        fail();
    }
    check_consistency(false, false, s, n, lim);
}
#define REJECT(s, status, fault)                                                                   \
    reject_req(S(s), (status), GORC__HTTP_FAULT_##fault, NULL, __LINE__)
#define REJECT_LIM(s, status, fault, lim)                                                          \
    reject_req(S(s), (status), GORC__HTTP_FAULT_##fault, (lim), __LINE__)

static void reject_resp(const char *s, size_t n, bool head, int err, gorc__http_fault fault,
                        int line)
{
    gorc__http_response resp;
    int r = parse_resp(&resp, s, n, head);
    if (r != err || resp.fault != fault) {
        print_error("line %d: expected %d/%s, got r=%d fault=%s\n", line, err,
                    gorc__http_fault_text(fault), r, gorc__http_fault_text(resp.fault));
        fail();
    }
    check_consistency(true, head, s, n, NULL);
}
#define REJECT_RESP(s, err, fault)                                                                 \
    reject_resp(S(s), false, GORC__HTTP_##err, GORC__HTTP_FAULT_##fault, __LINE__)

static bool slice_is(gorc__http_slice s, const char *lit)
{
    return s.p != NULL && s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}
#define assert_slice(s, lit) assert_true(slice_is((s), (lit)))

#define HOST "Host: example.com\r\n"

/* ------------------------------------------------------------------------------------------
 * Requests: accepted
 * ---------------------------------------------------------------------------------------- */

static void test_get(void **state)
{
    (void)state;
    gorc__http_request req;
    ACCEPT(&req, "GET /index.html?a=1&b=%20 HTTP/1.1\r\n"
                 "Host: example.com:8080\r\n"
                 "User-Agent: test/1.0\r\n"
                 "X-Empty:\r\n"
                 "X-Spaces: \t spaced out \t \r\n"
                 "\r\n");
    assert_slice(req.method, "GET");
    assert_slice(req.target, "/index.html?a=1&b=%20");
    assert_slice(req.path, "/index.html");
    assert_slice(req.query, "a=1&b=%20");
    assert_null(req.authority.p);
    assert_int_equal(req.form, GORC__HTTP_TARGET_ORIGIN);
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.num_headers, 4);
    assert_slice(req.headers[0].name, "Host");
    assert_slice(req.headers[0].value, "example.com:8080");
    assert_slice(req.headers[1].value, "test/1.0");
    assert_int_equal(req.headers[2].value.n, 0);
    assert_slice(req.headers[3].value, "spaced out");
    assert_true(req.has_host);
    assert_slice(req.host, "example.com:8080");
    assert_true(req.keep_alive);
    assert_false(req.chunked);
    assert_false(req.expect_continue);
    assert_int_equal(req.body, GORC__HTTP_BODY_NONE);
    assert_int_equal(req.content_length, -1);
    assert_int_equal(req.fault, GORC__HTTP_FAULT_NONE);

    ACCEPT(&req, "GET /? HTTP/1.1\r\n" HOST "\r\n");
    assert_slice(req.path, "/");
    assert_non_null(req.query.p);
    assert_int_equal(req.query.n, 0);

    ACCEPT(&req, "GET /a?b?c HTTP/1.1\r\n" HOST "\r\n");
    assert_slice(req.query, "b?c");

    /* Lenient characters browsers send unencoded, unknown methods, obs-text in values. */
    ACCEPT(&req, "PROPFIND /{x}|^`\"<>\\ HTTP/1.1\r\n" HOST "X: caf\xc3\xa9\r\n\r\n");
    assert_slice(req.method, "PROPFIND");
    assert_slice(req.headers[1].value, "caf\xc3\xa9");
}

static void test_post_content_length(void **state)
{
    (void)state;
    static const char msg[] = "POST /submit HTTP/1.1\r\n" HOST "Content-Length: 5\r\n"
                              "\r\n"
                              "hello";
    gorc__http_request req;
    int r = parse_req(&req, S(msg), NULL);
    assert_int_equal(r, (int)sizeof(msg) - 1 - 5);
    assert_memory_equal(msg + r, "hello", 5);
    assert_int_equal(req.body, GORC__HTTP_BODY_LENGTH);
    assert_int_equal(req.content_length, 5);
    assert_false(req.chunked);
    check_consistency(false, false, S(msg), NULL);

    ACCEPT(&req, "POST / HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n");
    assert_int_equal(req.body, GORC__HTTP_BODY_LENGTH);
    assert_int_equal(req.content_length, 0);
    ACCEPT(&req, "POST / HTTP/1.1\r\n" HOST "Content-Length: 9223372036854775807\r\n\r\n");
    assert_int_equal(req.content_length, INT64_MAX);
    ACCEPT(&req, "POST / HTTP/1.1\r\n" HOST "Content-Length: 007\r\n\r\n");
    assert_int_equal(req.content_length, 7);
    /* RFC 9110 §8.6: identical duplicates, as lines or as a list, are one value. */
    ACCEPT(&req, "POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\ncontent-length: 5\r\n\r\n");
    assert_int_equal(req.content_length, 5);
    ACCEPT(&req, "POST / HTTP/1.1\r\n" HOST "Content-Length: 5, 5,5\r\n\r\n");
    assert_int_equal(req.content_length, 5);
    ACCEPT(&req, "POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nContent-Length: 05\r\n\r\n");
    assert_int_equal(req.content_length, 5);
}

static void test_chunked_request(void **state)
{
    (void)state;
    gorc__http_request req;
    ACCEPT(&req, "POST /up HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n");
    assert_true(req.chunked);
    assert_int_equal(req.body, GORC__HTTP_BODY_CHUNKED);
    assert_int_equal(req.content_length, -1);
    ACCEPT(&req, "POST /up HTTP/1.1\r\n" HOST "transfer-encoding:  ChUnKeD \r\n\r\n");
    assert_true(req.chunked);
    ACCEPT(&req, "POST /up HTTP/1.1\r\n" HOST "Transfer-Encoding: , chunked,\r\n\r\n");
    assert_true(req.chunked);
}

static void test_pipelined(void **state)
{
    (void)state;
    static const char msg[] = "GET /1 HTTP/1.1\r\n" HOST "\r\n"
                              "POST /2 HTTP/1.1\r\n" HOST "Content-Length: 3\r\n\r\nabc"
                              "GET /3 HTTP/1.0\r\n\r\n";
    gorc__http_request req;
    const char *p = msg, *end = msg + sizeof(msg) - 1;
    int r = parse_req(&req, p, (size_t)(end - p), NULL);
    assert_true(r > 0);
    assert_slice(req.path, "/1");
    p += r;
    r = parse_req(&req, p, (size_t)(end - p), NULL);
    assert_true(r > 0);
    assert_slice(req.path, "/2");
    assert_int_equal(req.content_length, 3);
    p += r + req.content_length;
    r = parse_req(&req, p, (size_t)(end - p), NULL);
    assert_int_equal(r, end - p);
    assert_slice(req.path, "/3");
    assert_int_equal(req.minor_version, 0);
    assert_false(req.keep_alive);
}

static void test_leading_empty_lines(void **state)
{
    (void)state;
    gorc__http_request req;
    ACCEPT(&req, "\r\nGET / HTTP/1.1\r\n" HOST "\r\n");
    ACCEPT(&req, "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" HOST "\r\n");
    assert_slice(req.method, "GET");
    REJECT("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" HOST "\r\n", 400, EMPTY_LINES);
    REJECT("\nGET / HTTP/1.1\r\n" HOST "\r\n", 400, LINE_ENDING);
    REJECT("\r\rGET / HTTP/1.1\r\n" HOST "\r\n", 400, LINE_ENDING);
    assert_int_equal(parse_req(&req, S("\r\n\r\n"), NULL), GORC__HTTP_NEED_MORE);
}

static void test_versions_and_keep_alive(void **state)
{
    (void)state;
    gorc__http_request req;
    ACCEPT(&req, "GET / HTTP/1.0\r\n\r\n");
    assert_int_equal(req.minor_version, 0);
    assert_false(req.keep_alive);
    assert_false(req.has_host);
    ACCEPT(&req, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_true(req.keep_alive);
    ACCEPT(&req, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert_true(req.keep_alive);
    ACCEPT(&req, "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
    assert_false(req.keep_alive);
    ACCEPT(&req, "GET / HTTP/1.0\r\nConnection: foo\r\nConnection: keep-alive\r\n\r\n");
    assert_true(req.keep_alive);
    ACCEPT(&req, "GET / HTTP/1.1\r\n" HOST "\r\n");
    assert_true(req.keep_alive);
    ACCEPT(&req, "GET / HTTP/1.1\r\n" HOST "Connection: close\r\n\r\n");
    assert_false(req.keep_alive);
    ACCEPT(&req, "GET / HTTP/1.1\r\n" HOST "Connection: Upgrade, CLOSE\r\n\r\n");
    assert_false(req.keep_alive);
    ACCEPT(&req, "GET / HTTP/1.1\r\n" HOST "Connection: x\r\nconnection: close\r\n\r\n");
    assert_false(req.keep_alive);
    ACCEPT(&req, "GET / HTTP/1.1\r\n" HOST "Connection: closed, xclose\r\n\r\n");
    assert_true(req.keep_alive);
    /* RFC 9110 §6.2: HTTP/1.x above 1.1 is handled as 1.1. */
    ACCEPT(&req, "GET / HTTP/1.7\r\n" HOST "\r\n");
    assert_int_equal(req.minor_version, 1);

    REJECT("GET / HTTP/2.0\r\n" HOST "\r\n", 505, VERSION_UNSUPPORTED);
    REJECT("GET / HTTP/0.9\r\n" HOST "\r\n", 505, VERSION_UNSUPPORTED);
    REJECT("GET / HTTP/3.0\r\n\r\n", 505, VERSION_UNSUPPORTED);
    REJECT("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, VERSION_UNSUPPORTED);
    REJECT("CONNECT a:1 HTTP/2.0\r\n\r\n", 505, VERSION_UNSUPPORTED);
    REJECT("GET / http/1.1\r\n" HOST "\r\n", 400, VERSION);
    REJECT("GET / HTTP/1.10\r\n" HOST "\r\n", 400, VERSION);
    REJECT("GET / HTTP/1\r\n" HOST "\r\n", 400, VERSION);
    REJECT("GET / HTTP/11\r\n" HOST "\r\n", 400, VERSION);
    REJECT("GET / HTTP/1.x\r\n" HOST "\r\n", 400, VERSION);
    REJECT("GET / HTTP/2\r\n" HOST "\r\n", 400, VERSION);
}

static void test_expect_continue(void **state)
{
    (void)state;
    gorc__http_request req;
    ACCEPT(&req, "PUT / HTTP/1.1\r\n" HOST "Expect: 100-continue\r\nContent-Length: 1\r\n\r\n");
    assert_true(req.expect_continue);
    ACCEPT(&req, "PUT / HTTP/1.1\r\n" HOST "expect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
    assert_true(req.expect_continue);
    assert_false(req.expect_unknown);
    ACCEPT(&req, "PUT / HTTP/1.1\r\n" HOST "Expect: 200-ok\r\n\r\n");
    assert_false(req.expect_continue);
    assert_true(req.expect_unknown); /* the server answers 417 */
    /* RFC 9110 §10.1.1: a server MUST ignore 100-continue in an HTTP/1.0 request. */
    ACCEPT(&req, "PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
    assert_false(req.expect_continue);
}

static void test_host(void **state)
{
    (void)state;
    gorc__http_request req;
    ACCEPT(&req, "GET / HTTP/1.1\r\nHost:\r\n\r\n");
    assert_true(req.has_host);
    assert_int_equal(req.host.n, 0);
    ACCEPT(&req, "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    assert_slice(req.host, "[::1]:8080");
    ACCEPT(&req, "GET / HTTP/1.1\r\nHOST: 192.0.2.1\r\n\r\n");
    ACCEPT(&req, "GET / HTTP/1.1\r\nHost: xn--bcher-kva.example:\r\n\r\n");
    ACCEPT(&req, "GET / HTTP/1.1\r\nHost: a%20b\r\n\r\n");

    REJECT("GET / HTTP/1.1\r\n\r\n", 400, HOST_MISSING);
    REJECT("GET / HTTP/1.1\r\nX: 1\r\n\r\n", 400, HOST_MISSING);
    REJECT("GET / HTTP/1.1\r\n" HOST HOST "\r\n", 400, HOST_DUPLICATE);
    REJECT("GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", 400, HOST_DUPLICATE);
    REJECT("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, HOST_INVALID);
    REJECT("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400, HOST_INVALID);
    REJECT("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, HOST_INVALID);
    REJECT("GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n", 400, HOST_INVALID);
    REJECT("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, HOST_INVALID);
    REJECT("GET / HTTP/1.1\r\nHost: []\r\n\r\n", 400, HOST_INVALID);
    REJECT("GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400, HOST_INVALID);
}

static void test_targets(void **state)
{
    (void)state;
    gorc__http_request req;
    ACCEPT(&req, "OPTIONS * HTTP/1.1\r\n" HOST "\r\n");
    assert_int_equal(req.form, GORC__HTTP_TARGET_ASTERISK);
    assert_slice(req.path, "*");
    ACCEPT(&req, "GET http://example.com:81/a/b?x=y HTTP/1.1\r\n" HOST "\r\n");
    assert_int_equal(req.form, GORC__HTTP_TARGET_ABSOLUTE);
    assert_slice(req.authority, "example.com:81");
    assert_slice(req.path, "/a/b");
    assert_slice(req.query, "x=y");
    ACCEPT(&req, "GET HTTPS://example.com HTTP/1.1\r\n" HOST "\r\n");
    assert_slice(req.authority, "example.com");
    assert_int_equal(req.path.n, 0);
    ACCEPT(&req, "GET http://[2001:db8::1]?q HTTP/1.1\r\n" HOST "\r\n");
    assert_slice(req.authority, "[2001:db8::1]");
    assert_slice(req.query, "q");
    ACCEPT(&req, "GET /a%2Fb%20c HTTP/1.1\r\n" HOST "\r\n");

    REJECT("GET * HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    REJECT("OPTIONS *x HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    REJECT("GET index.html HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    REJECT("GET ftp://example.com/ HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    REJECT("GET http:/example.com/ HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    REJECT("GET http:///x HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    REJECT("GET http://:80/x HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    REJECT("GET http://user@example.com/ HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    REJECT("GET example.com:80 HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    REJECT("GET /a#frag HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    REJECT("GET /caf\xc3\xa9 HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    REJECT("GET /\x80 HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    REJECT("GET /\x7f HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    REJECT("GET /a\x01 HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    REJECT("GET /a%zz HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    REJECT("GET /a%2 HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    REJECT("GET /a% HTTP/1.1\r\n" HOST "\r\n", 400, TARGET);
    /* CONNECT (authority-form, tunnelling) is not implemented. */
    REJECT("CONNECT example.com:443 HTTP/1.1\r\n" HOST "\r\n", 501, CONNECT);
}

static void test_request_line_errors(void **state)
{
    (void)state;
    REJECT("GET  / HTTP/1.1\r\n" HOST "\r\n", 400, REQUEST_LINE);
    REJECT("GET /  HTTP/1.1\r\n" HOST "\r\n", 400, VERSION);
    REJECT("GET / HTTP/1.1 \r\n" HOST "\r\n", 400, REQUEST_LINE);
    REJECT(" GET / HTTP/1.1\r\n" HOST "\r\n", 400, REQUEST_LINE);
    REJECT("GET\t/ HTTP/1.1\r\n" HOST "\r\n", 400, REQUEST_LINE);
    REJECT("GET /\tHTTP/1.1\r\n" HOST "\r\n", 400, REQUEST_LINE);
    REJECT("GET / HTTP/1.1 extra\r\n" HOST "\r\n", 400, REQUEST_LINE);
    REJECT("GET /\r\n" HOST "\r\n", 400, REQUEST_LINE);
    REJECT("GET\r\n" HOST "\r\n", 400, REQUEST_LINE);
    REJECT("GET / x HTTP/1.1\r\n" HOST "\r\n", 400, VERSION);
    REJECT("G(T / HTTP/1.1\r\n" HOST "\r\n", 400, METHOD);
    REJECT("GE\x01T / HTTP/1.1\r\n" HOST "\r\n", 400, METHOD);
    REJECT("G\xc3\x89T / HTTP/1.1\r\n" HOST "\r\n", 400, METHOD);
    REJECT("GET / HTTP/1.1\n" HOST "\r\n", 400, LINE_ENDING);
    REJECT("GET / HTTP/1.1\r\r\n" HOST "\r\n", 400, LINE_ENDING);
    REJECT("GET / HTTP/1.1\rX" HOST "\r\n", 400, LINE_ENDING);
    REJECT("GET /\n HTTP/1.1\r\n" HOST "\r\n", 400, REQUEST_LINE);
    /* Non-HTTP garbage is rejected from the first bytes, without waiting for a line end. */
    gorc__http_request req;
    assert_int_equal(parse_req(&req, S("\x16\x03\x01\x02\x00"), NULL), GORC__HTTP_EBADMSG);
    assert_int_equal(parse_req(&req, S("SSH-2.0-OpenSSH_9.2\r\n"), NULL), GORC__HTTP_EBADMSG);
}

static void test_header_errors(void **state)
{
    (void)state;
    gorc__http_request req;
    ACCEPT(&req, "GET / HTTP/1.1\r\n" HOST "X-Tab:\tv\ta\t\r\n\r\n");
    assert_slice(req.headers[1].value, "v\ta");
    ACCEPT(&req, "GET / HTTP/1.1\r\n" HOST "!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n");
    ACCEPT(&req, "GET / HTTP/1.1\r\n" HOST "X: a:b::c\xff\x80\r\n\r\n");
    assert_slice(req.headers[1].value, "a:b::c\xff\x80");

    REJECT("GET / HTTP/1.1\r\n" HOST "Content-Length : 5\r\n\r\n", 400, SPACE_BEFORE_COLON);
    REJECT("GET / HTTP/1.1\r\n" HOST "X\t: 5\r\n\r\n", 400, SPACE_BEFORE_COLON);
    REJECT("GET / HTTP/1.1\r\n" HOST "Fo o: 5\r\n\r\n", 400, SPACE_BEFORE_COLON);
    REJECT("GET / HTTP/1.1\r\n" HOST "X: a\r\n b\r\n\r\n", 400, OBS_FOLD);
    REJECT("GET / HTTP/1.1\r\n" HOST "X: a\r\n\tb\r\n\r\n", 400, OBS_FOLD);
    REJECT("GET / HTTP/1.1\r\n Host: example.com\r\n\r\n", 400, OBS_FOLD);
    REJECT("GET / HTTP/1.1\r\n" HOST "F@o: 5\r\n\r\n", 400, HEADER_NAME);
    REJECT("GET / HTTP/1.1\r\n" HOST "F\x80o: 5\r\n\r\n", 400, HEADER_NAME);
    REJECT("GET / HTTP/1.1\r\n" HOST ": 5\r\n\r\n", 400, HEADER_NAME);
    REJECT("GET / HTTP/1.1\r\n" HOST "NoColon\r\n\r\n", 400, HEADER_NAME);
    REJECT("GET / HTTP/1.1\r\n" HOST "X: a\0b\r\n\r\n", 400, HEADER_VALUE);
    REJECT("GET / HTTP/1.1\r\n" HOST "X: a\x01\r\n\r\n", 400, HEADER_VALUE);
    REJECT("GET / HTTP/1.1\r\n" HOST "X: a\x7f\r\n\r\n", 400, HEADER_VALUE);
    REJECT("GET / HTTP/1.1\r\n" HOST "X: 0123456789abcdef\x1b\r\n\r\n", 400, HEADER_VALUE);
    REJECT("GET / HTTP/1.1\r\n" HOST "X: a\rb\r\n\r\n", 400, LINE_ENDING);
    REJECT("GET / HTTP/1.1\r\n" HOST "X: a\nb: c\r\n\r\n", 400, LINE_ENDING);
    REJECT("GET / HTTP/1.1\r\n" HOST "X: a\r\n\n", 400, LINE_ENDING);
    REJECT("GET / HTTP/1.1\r\n" HOST "X: a\r\n\r\r\n", 400, LINE_ENDING);
    REJECT("GET / HTTP/1.1\r\nHost: a\n\n", 400, LINE_ENDING);
    REJECT("GET / HTTP/1.1\n\n", 400, LINE_ENDING);
}

/* Every byte value at every position of a field value, a field name and a target, against
 * definitions written out here independently of the parser's tables (and its 8-byte path). */
static bool ref_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void test_byte_classes(void **state)
{
    (void)state;
    gorc__http_request req;
    char buf[128];
    for (int b = 0; b < 256; b++) {
        bool field_ok = b == '\t' || (b >= 0x20 && b != 0x7f);
        for (int pos = 0; pos < 19; pos++) {
            char val[19];
            memset(val, 'v', sizeof val);
            val[pos] = (char)b;
            int n = sprintf(buf, "GET / HTTP/1.0\r\nX: ");
            memcpy(buf + n, val, sizeof val);
            n += (int)sizeof val;
            n += sprintf(buf + n, "\r\n\r\n");
            int r = parse_req(&req, buf, (size_t)n, NULL);
            if (field_ok) {
                assert_int_equal(r, n);
                size_t lo = 0, hi = sizeof val;
                while (lo < hi && (val[lo] == ' ' || val[lo] == '\t'))
                    lo++;
                while (hi > lo && (val[hi - 1] == ' ' || val[hi - 1] == '\t'))
                    hi--;
                assert_int_equal(req.headers[0].value.n, hi - lo);
                assert_memory_equal(req.headers[0].value.p, val + lo, hi - lo);
            } else {
                assert_int_equal(r, GORC__HTTP_EBADMSG);
            }
        }
        /* Field name. */
        int n = sprintf(buf, "GET / HTTP/1.0\r\nXX");
        buf[n++] = (char)b;
        n += sprintf(buf + n, "YY: v\r\n\r\n");
        int r = parse_req(&req, buf, (size_t)n, NULL);
        if (ref_tchar((unsigned char)b) || b == ':')
            assert_int_equal(r, n);
        else
            assert_int_equal(r, GORC__HTTP_EBADMSG);
        /* Request target. */
        n = sprintf(buf, "GET /zz");
        buf[n++] = (char)b;
        n += sprintf(buf + n, "zz HTTP/1.0\r\n\r\n");
        r = parse_req(&req, buf, (size_t)n, NULL);
        if (b > 0x20 && b < 0x7f && b != '#' && b != '%')
            assert_int_equal(r, n);
        else
            assert_int_equal(r, GORC__HTTP_EBADMSG);
        /* Method. */
        n = sprintf(buf, "G");
        buf[n++] = (char)b;
        n += sprintf(buf + n, "T / HTTP/1.0\r\n\r\n");
        r = parse_req(&req, buf, (size_t)n, NULL);
        if (ref_tchar((unsigned char)b))
            assert_int_equal(r, n);
        else
            assert_int_equal(r, GORC__HTTP_EBADMSG);
    }
}

static void test_content_length_errors(void **state)
{
    (void)state;
#define CLREQ(v) "POST / HTTP/1.1\r\n" HOST "Content-Length: " v "\r\n\r\n"
    REJECT(CLREQ(""), 400, CONTENT_LENGTH);
    REJECT(CLREQ(","), 400, CONTENT_LENGTH);
    REJECT(CLREQ("-1"), 400, CONTENT_LENGTH);
    REJECT(CLREQ("+1"), 400, CONTENT_LENGTH);
    REJECT(CLREQ("1a"), 400, CONTENT_LENGTH);
    REJECT(CLREQ("0x10"), 400, CONTENT_LENGTH);
    REJECT(CLREQ("1 2"), 400, CONTENT_LENGTH);
    REJECT(CLREQ("1.0"), 400, CONTENT_LENGTH);
    REJECT(CLREQ("\"5\""), 400, CONTENT_LENGTH);
    REJECT(CLREQ("9223372036854775808"), 400, CONTENT_LENGTH);
    REJECT(CLREQ("99999999999999999999999"), 400, CONTENT_LENGTH);
    REJECT(CLREQ("5, 6"), 400, CONTENT_LENGTH_DIFF);
    REJECT(CLREQ("5, x"), 400, CONTENT_LENGTH);
    REJECT("POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
           CONTENT_LENGTH_DIFF);
    REJECT("POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nContent-Length:\r\n\r\n", 400,
           CONTENT_LENGTH);
#undef CLREQ
}

static void test_transfer_encoding_errors(void **state)
{
    (void)state;
#define TEREQ(v) "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: " v "\r\n\r\n"
    REJECT("POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
           400, CL_AND_TE);
    REJECT("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
           400, CL_AND_TE);
    REJECT(TEREQ("gzip, chunked"), 501, TE_UNSUPPORTED);
    REJECT(TEREQ("identity, chunked"), 501, TE_UNSUPPORTED);
    REJECT("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip\r\n"
           "Transfer-Encoding: chunked\r\n\r\n",
           501, TE_UNSUPPORTED);
    /* RFC 9112 §6.3: chunked not final in a request MUST be a 400. */
    REJECT(TEREQ("gzip"), 400, TE_NOT_CHUNKED);
    REJECT(TEREQ("chunked, gzip"), 400, TE_NOT_CHUNKED);
    REJECT(TEREQ("xchunked"), 400, TE_NOT_CHUNKED);
    REJECT(TEREQ("chunkedx"), 400, TE_NOT_CHUNKED);
    REJECT(TEREQ("identity"), 400, TE_NOT_CHUNKED);
    REJECT(TEREQ("chunked, chunked"), 400, TE_CHUNKED_TWICE);
    REJECT("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n"
           "Transfer-Encoding: chunked\r\n\r\n",
           400, TE_CHUNKED_TWICE);
    REJECT(TEREQ(""), 400, TE_MALFORMED);
    REJECT(TEREQ(" , "), 400, TE_MALFORMED);
    REJECT(TEREQ("\"chunked\""), 400, TE_MALFORMED);
    REJECT(TEREQ("chunked;a=b"), 400, TE_MALFORMED);
    REJECT(TEREQ("chun ked"), 400, TE_MALFORMED);
    REJECT(TEREQ("chunked\x0b"), 400, HEADER_VALUE);
    REJECT(TEREQ("gzip;q=1, chunked"), 501, TE_UNSUPPORTED);
    REJECT("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding : chunked\r\n\r\n", 400,
           SPACE_BEFORE_COLON);
    REJECT("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding:\r\n chunked\r\n\r\n", 400, TE_MALFORMED);
    REJECT("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: x\r\n chunked\r\n\r\n", 400, OBS_FOLD);
    /* RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing. */
    REJECT("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, TE_HTTP10);
    REJECT("POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", 400, TE_HTTP10);
#undef TEREQ
}

static void test_limits(void **state)
{
    (void)state;
    gorc__http_request req;
    static char buf[80000];

    /* Default request line limit (8 KiB): exactly at the limit is fine. */
    size_t n = 0;
    n += (size_t)sprintf(buf, "GET /");
    size_t line_len = GORC__HTTP_DEFAULT_MAX_REQUEST_LINE;
    while (n < line_len - 9)
        buf[n++] = 'a';
    n += (size_t)sprintf(buf + n, " HTTP/1.1\r\n" HOST "\r\n");
    assert_int_equal(parse_req(&req, buf, n, NULL), (int)n);
    assert_int_equal(req.target.n, line_len - 13);
    /* One more byte: 414, also while the line is still incomplete. */
    memmove(buf + 6, buf + 5, n - 5);
    n++;
    assert_int_equal(parse_req(&req, buf, n, NULL), GORC__HTTP_ETOOLONG);
    assert_int_equal(req.fault, GORC__HTTP_FAULT_LINE_TOO_LONG);
    assert_int_equal(gorc__http_error_status(GORC__HTTP_ETOOLONG, NULL), 414);
    assert_int_equal(parse_req(&req, buf, line_len + 2, NULL), GORC__HTTP_NEED_MORE);
    assert_int_equal(parse_req(&req, buf, line_len + 3, NULL), GORC__HTTP_ETOOLONG);

    /* Default header bytes (64 KiB): 431 even before the head ends. */
    n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n" HOST "X: ");
    while (n < 70000)
        buf[n++] = 'v';
    assert_int_equal(parse_req(&req, buf, n, NULL), GORC__HTTP_EHEADERS);
    assert_int_equal(req.fault, GORC__HTTP_FAULT_HEADERS_TOO_LARGE);

    /* Default header count (100). */
    n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n" HOST);
    for (int i = 1; i < 100; i++)
        n += (size_t)sprintf(buf + n, "X-%d: %d\r\n", i, i);
    n += (size_t)sprintf(buf + n, "\r\n");
    assert_int_equal(parse_req(&req, buf, n, NULL), (int)n);
    assert_int_equal(req.num_headers, 100);
    n -= 2;
    n += (size_t)sprintf(buf + n, "X-100: 100\r\n\r\n");
    assert_int_equal(parse_req(&req, buf, n, NULL), GORC__HTTP_EHEADERS);
    assert_int_equal(req.fault, GORC__HTTP_FAULT_TOO_MANY_HEADERS);

    /* Caller capacity below max_headers is the effective limit. */
    static const char two[] = "GET / HTTP/1.1\r\n" HOST "A: 1\r\n\r\n";
    gorc__http_header small[1];
    prep_req(&req, small, 1);
    assert_int_equal(gorc__http_parse_request(&req, S(two), 0, NULL), GORC__HTTP_EHEADERS);
    assert_int_equal(req.fault, GORC__HTTP_FAULT_TOO_MANY_HEADERS);
    prep_req(&req, NULL, 0);
    assert_int_equal(gorc__http_parse_request(&req, S("GET / HTTP/1.0\r\n\r\n"), 0, NULL), 18);

    /* Small custom limits, with the incremental checks (boundaries are exact). */
    gorc__http_limits lim = {.max_request_line = 16, .max_header_bytes = 20, .max_headers = 2};
    static const char l16[] = "GET /abcd HTTP/1.0\r\n\r\n"; /* request line: 18 bytes */
    REJECT_LIM(l16, 414, LINE_TOO_LONG, &lim);
    lim.max_request_line = 18;
    assert_int_equal(parse_req(&req, S(l16), &lim), (int)sizeof(l16) - 1);
    check_consistency(false, false, S(l16), &lim);
    lim.max_request_line = 17;
    REJECT_LIM(l16, 414, LINE_TOO_LONG, &lim);

    static const char h20[] = "GET / HTTP/1.0\r\nA: 1234567890123\r\n\r\n"; /* 20 bytes */
    assert_int_equal(parse_req(&req, S(h20), &lim), (int)sizeof(h20) - 1);
    check_consistency(false, false, S(h20), &lim);
    lim.max_header_bytes = 19;
    REJECT_LIM(h20, 431, HEADERS_TOO_LARGE, &lim);
    static const char h3[] = "GET / HTTP/1.0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    lim.max_header_bytes = 0;
    REJECT_LIM(h3, 431, TOO_MANY_HEADERS, &lim);
    lim.max_headers = 3;
    assert_int_equal(parse_req(&req, S(h3), &lim), (int)sizeof(h3) - 1);
}

/* Many short heads arriving one byte at a time cost linear time with the hint. */
static void test_incremental_hint(void **state)
{
    (void)state;
    static char buf[70000];
    size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n" HOST), lines = 1;
    while (n < 60000) {
        n += (size_t)sprintf(buf + n, "X-Filler: %0500d\r\n", 0);
        lines++;
    }
    n += (size_t)sprintf(buf + n, "\r\n");
    gorc__http_request req;
    gorc__http_limits lim = {.max_headers = 1000};
    prep_req(&req, hdrs, NHDRS);
    int r = 0;
    size_t k;
    for (k = 1; k <= n; k++) {
        r = gorc__http_parse_request(&req, buf, k, k - 1, &lim);
        if (r != 0)
            break;
    }
    assert_int_equal(k, n);
    assert_int_equal(r, (int)n);
    assert_int_equal(req.num_headers, lines);

    /* A bare LF is caught as soon as it arrives, even with the hint. */
    static const char bad[] = "GET / HTTP/1.1\r\nHost: a\nX: b";
    prep_req(&req, hdrs, NHDRS);
    for (k = 1; k <= sizeof(bad) - 1; k++) {
        r = gorc__http_parse_request(&req, bad, k, k - 1, NULL);
        if (r != 0)
            break;
    }
    assert_int_equal(r, GORC__HTTP_EBADMSG);
    assert_int_equal(k, 24);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    gorc__http_request req;
    gorc__http_response resp;
    prep_req(&req, hdrs, NHDRS);
    assert_int_equal(gorc__http_parse_request(NULL, "x", 1, 0, NULL), GORC__HTTP_EINVAL);
    assert_int_equal(gorc__http_parse_request(&req, NULL, 1, 0, NULL), GORC__HTTP_EINVAL);
    assert_int_equal(gorc__http_parse_request(&req, NULL, 0, 0, NULL), GORC__HTTP_NEED_MORE);
    prep_req(&req, NULL, 5);
    assert_int_equal(gorc__http_parse_request(&req, "x", 1, 0, NULL), GORC__HTTP_EINVAL);
    prep_resp(&resp, hdrs, NHDRS, false);
    assert_int_equal(gorc__http_parse_response(&resp, NULL, 1, 0, NULL), GORC__HTTP_EINVAL);
    assert_int_equal(gorc__http_parse_response(NULL, "x", 1, 0, NULL), GORC__HTTP_EINVAL);
    assert_int_equal(gorc__http_error_status(GORC__HTTP_EINVAL, NULL), 500);
}

/* ------------------------------------------------------------------------------------------
 * Helpers: status mapping, header lookup, lists
 * ---------------------------------------------------------------------------------------- */

static void test_error_status(void **state)
{
    (void)state;
    const char *reason = NULL;
    assert_int_equal(gorc__http_error_status(GORC__HTTP_EBADMSG, &reason), 400);
    assert_string_equal(reason, "Bad Request");
    assert_int_equal(gorc__http_error_status(GORC__HTTP_EBODY, &reason), 413);
    assert_string_equal(reason, "Content Too Large");
    assert_int_equal(gorc__http_error_status(GORC__HTTP_ETOOLONG, &reason), 414);
    assert_string_equal(reason, "URI Too Long");
    assert_int_equal(gorc__http_error_status(GORC__HTTP_EHEADERS, &reason), 431);
    assert_string_equal(reason, "Request Header Fields Too Large");
    assert_int_equal(gorc__http_error_status(GORC__HTTP_ENOTIMPL, &reason), 501);
    assert_string_equal(reason, "Not Implemented");
    assert_int_equal(gorc__http_error_status(GORC__HTTP_EVERSION, &reason), 505);
    assert_string_equal(reason, "HTTP Version Not Supported");
    assert_int_equal(gorc__http_error_status(-ENOMEM, &reason), 500);
    assert_string_equal(reason, "Internal Server Error");
    for (int f = 0; f < GORC__HTTP_FAULT_COUNT; f++) {
        const char *t = gorc__http_fault_text((gorc__http_fault)f);
        assert_non_null(t);
        assert_string_not_equal(t, "unknown");
    }
    assert_string_equal(gorc__http_fault_text(GORC__HTTP_FAULT_COUNT), "unknown");
    assert_string_equal(gorc__http_fault_text((gorc__http_fault)-1), "unknown");
}

static void test_header_find(void **state)
{
    (void)state;
    gorc__http_request req;
    ACCEPT(&req, "GET / HTTP/1.1\r\n" HOST "Accept: a\r\nX: 1\r\nACCEPT: b\r\n\r\n");
    const gorc__http_header *h =
        gorc__http_header_find(req.headers, req.num_headers, S("accept"), NULL);
    assert_non_null(h);
    assert_slice(h->value, "a");
    h = gorc__http_header_find(req.headers, req.num_headers, S("Accept"), h);
    assert_non_null(h);
    assert_slice(h->value, "b");
    assert_null(gorc__http_header_find(req.headers, req.num_headers, S("accept"), h));
    assert_null(gorc__http_header_find(req.headers, req.num_headers, S("accep"), NULL));
    assert_null(gorc__http_header_find(req.headers, req.num_headers, S("accepts"), NULL));
    assert_null(gorc__http_header_find(NULL, 0, S("x"), NULL));

    gorc__http_slice s = {"Keep-Alive", 10};
    assert_true(gorc__http_ieq(s, S("keep-alive")));
    assert_false(gorc__http_ieq(s, S("keep-alivf")));
    gorc__http_slice dash = {"-", 1};
    assert_false(gorc__http_ieq(dash, S("\r")));
}

static void test_list_next(void **state)
{
    (void)state;
    static const char v[] = " , a ,b\t,, \"c, d\" ,e;q=\"x,y\", f g ,";
    gorc__http_slice rest = {v, sizeof(v) - 1}, e;
    static const char *const want[] = {"a", "b", "\"c, d\"", "e;q=\"x,y\"", "f g"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        assert_true(gorc__http_list_next(&rest, &e));
        assert_slice(e, want[i]);
    }
    assert_false(gorc__http_list_next(&rest, &e));
    assert_false(gorc__http_list_next(&rest, &e));
    gorc__http_slice empty = {NULL, 0};
    assert_false(gorc__http_list_next(&empty, &e));
    gorc__http_slice esc = {S("\"a\\\"b,c\",d")};
    assert_true(gorc__http_list_next(&esc, &e));
    assert_slice(e, "\"a\\\"b,c\"");
    assert_true(gorc__http_list_next(&esc, &e));
    assert_slice(e, "d");
}

/* ------------------------------------------------------------------------------------------
 * Chunked bodies
 * ---------------------------------------------------------------------------------------- */

typedef struct chunk_result {
    int r; /* DONE or the error */
    gorc__http_fault fault;
    size_t consumed; /* total bytes consumed when done or at the error */
    char payload[4096];
    size_t n;
} chunk_result;

/* Decode s[0..len) fed in pieces of `step` bytes (0: all at once), each piece in its own
 * exact-size heap block. */
static void decode_steps(const char *s, size_t len, size_t step, uint64_t max_body,
                         const gorc__http_limits *lim, chunk_result *res)
{
    gorc__http_chunked d;
    gorc__http_chunked_init(&d, max_body, lim);
    memset(res, 0, sizeof *res);
    res->r = GORC__HTTP_NEED_MORE;
    size_t off = 0;
    if (step == 0)
        step = len ? len : 1;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        char *piece = malloc(n);
        assert_non_null(piece);
        memcpy(piece, s + off, n);
        size_t pos = 0;
        int r;
        do {
            size_t used;
            gorc__http_slice data;
            r = gorc__http_chunked_decode(&d, piece + pos, n - pos, &used, &data);
            assert_true(used <= n - pos);
            if (r == GORC__HTTP_CHUNK_DATA) {
                assert_true(data.n > 0);
                assert_true(data.p >= piece + pos && data.p + data.n <= piece + pos + used);
                assert_true(res->n + data.n <= sizeof res->payload);
                memcpy(res->payload + res->n, data.p, data.n);
                res->n += data.n;
            } else {
                assert_null(data.p);
            }
            if (r == GORC__HTTP_NEED_MORE)
                assert_int_equal(used, n - pos);
            pos += used;
        } while (r == GORC__HTTP_CHUNK_DATA && pos < n);
        off += pos;
        free(piece);
        if (r < 0 || r == GORC__HTTP_CHUNK_DONE) {
            res->r = r;
            res->fault = d.fault;
            res->consumed = off;
            /* Sticky. */
            size_t used = 99;
            gorc__http_slice data;
            assert_int_equal(gorc__http_chunked_decode(&d, "0\r\n\r\n", 5, &used, &data), r);
            assert_int_equal(used, 0);
            return;
        }
    }
    res->consumed = off;
}

/* Decode whole, byte by byte, and split in two at every position: all must agree. */
static void decode_all_ways(const char *s, size_t len, uint64_t max_body,
                            const gorc__http_limits *lim, chunk_result *res)
{
    static chunk_result other;
    decode_steps(s, len, 0, max_body, lim, res);
    decode_steps(s, len, 1, max_body, lim, &other);
    assert_int_equal(other.r, res->r);
    assert_int_equal(other.fault, res->fault);
    assert_int_equal(other.consumed, res->consumed);
    assert_int_equal(other.n, res->n);
    assert_memory_equal(other.payload, res->payload, res->n);
    for (size_t cut = 1; cut < len; cut++) {
        /* Two pieces: [0, cut) and [cut, len). */
        gorc__http_chunked d;
        gorc__http_chunked_init(&d, max_body, lim);
        size_t got = 0, off = 0;
        int r = GORC__HTTP_NEED_MORE;
        char out[4096];
        while (off < len && r != GORC__HTTP_CHUNK_DONE && r >= 0) {
            size_t lim_end = off < cut ? cut : len;
            size_t used;
            gorc__http_slice data;
            r = gorc__http_chunked_decode(&d, s + off, lim_end - off, &used, &data);
            if (r == GORC__HTTP_CHUNK_DATA) {
                memcpy(out + got, data.p, data.n);
                got += data.n;
            }
            off += used;
        }
        assert_int_equal(r < 0 || r == GORC__HTTP_CHUNK_DONE ? r : GORC__HTTP_NEED_MORE, res->r);
        assert_int_equal(off, res->consumed);
        assert_int_equal(got, res->n);
        assert_memory_equal(out, res->payload, got);
    }
}

#define DECODE(s, res) decode_all_ways(S(s), 0, NULL, (res))

static void expect_chunk_error(const char *s, size_t len, uint64_t max_body,
                               const gorc__http_limits *lim, int status, gorc__http_fault fault,
                               int line)
{
    chunk_result res;
    decode_all_ways(s, len, max_body, lim, &res);
    if (res.r >= 0 || gorc__http_error_status(res.r, NULL) != status || res.fault != fault) {
        print_error("line %d: expected %d/%s, got r=%d fault=%s\n", line, status,
                    gorc__http_fault_text(fault), res.r, gorc__http_fault_text(res.fault));
        fail();
    }
}
#define CHUNK_ERR(s, status, fault)                                                                \
    expect_chunk_error(S(s), 0, NULL, (status), GORC__HTTP_FAULT_##fault, __LINE__)

static void test_chunked_basic(void **state)
{
    (void)state;
    chunk_result res;
    DECODE("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", &res);
    assert_int_equal(res.r, GORC__HTTP_CHUNK_DONE);
    assert_int_equal(res.n, 11);
    assert_memory_equal(res.payload, "hello world", 11);
    assert_int_equal(res.consumed, 26);

    /* Bytes after the body belong to the next request. */
    DECODE("1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n", &res);
    assert_int_equal(res.r, GORC__HTTP_CHUNK_DONE);
    assert_int_equal(res.consumed, 11);

    DECODE("0\r\n\r\n", &res);
    assert_int_equal(res.r, GORC__HTTP_CHUNK_DONE);
    assert_int_equal(res.n, 0);

    DECODE("A\r\n0123456789\r\na\r\nabcdefghij\r\n000\r\n\r\n", &res);
    assert_int_equal(res.r, GORC__HTTP_CHUNK_DONE);
    assert_int_equal(res.n, 20);
    DECODE("0005\r\nhello\r\n0\r\n\r\n", &res);
    assert_int_equal(res.r, GORC__HTTP_CHUNK_DONE);
    assert_int_equal(res.n, 5);

    /* Incomplete bodies just want more. */
    DECODE("5\r\nhel", &res);
    assert_int_equal(res.r, GORC__HTTP_NEED_MORE);
    assert_int_equal(res.n, 3);
    DECODE("5\r\nhello\r\n0\r\n", &res);
    assert_int_equal(res.r, GORC__HTTP_NEED_MORE);
    DECODE("7fffffffffffffff\r\nabc", &res);
    assert_int_equal(res.r, GORC__HTTP_NEED_MORE);
    assert_int_equal(res.n, 3);

    gorc__http_chunked d;
    gorc__http_chunked_init(&d, 0, NULL);
    size_t used = 7;
    gorc__http_slice data;
    assert_int_equal(gorc__http_chunked_decode(&d, NULL, 0, &used, &data), GORC__HTTP_NEED_MORE);
    assert_int_equal(used, 0);
    assert_int_equal(gorc__http_chunked_decode(&d, NULL, 1, &used, &data), GORC__HTTP_EINVAL);
    assert_int_equal(gorc__http_chunked_decode(NULL, "0", 1, &used, &data), GORC__HTTP_EINVAL);
}

static void test_chunked_extensions_trailers(void **state)
{
    (void)state;
    chunk_result res;
    DECODE("5;name=value;flag;q=\"quoted; \\\"x\\\"\"\r\nhello\r\n0;last\r\n\r\n", &res);
    assert_int_equal(res.r, GORC__HTTP_CHUNK_DONE);
    assert_memory_equal(res.payload, "hello", 5);
    DECODE("5 ; a = b\r\nhello\r\n0\t;x\r\n\r\n", &res);
    assert_int_equal(res.r, GORC__HTTP_CHUNK_DONE);
    DECODE("5 \r\nhello\r\n0\r\n\r\n", &res);
    assert_int_equal(res.r, GORC__HTTP_CHUNK_DONE);
    DECODE("3\r\nabc\r\n0\r\nExpires: never\r\nX-Checksum:\tab cd \r\nE:\r\n\r\nNEXT", &res);
    assert_int_equal(res.r, GORC__HTTP_CHUNK_DONE);
    assert_int_equal(res.n, 3);
    assert_int_equal(res.consumed, 53);
    DECODE("0\r\nX: caf\xc3\xa9\r\n\r\n", &res);
    assert_int_equal(res.r, GORC__HTTP_CHUNK_DONE);
}

static void test_chunked_errors(void **state)
{
    (void)state;
    CHUNK_ERR("\r\n", 400, CHUNK_SIZE);
    CHUNK_ERR("g\r\n", 400, CHUNK_SIZE);
    CHUNK_ERR("-1\r\n", 400, CHUNK_SIZE);
    CHUNK_ERR("+1\r\n", 400, CHUNK_SIZE);
    CHUNK_ERR("0x5\r\nhello\r\n", 400, CHUNK_SIZE);
    CHUNK_ERR("5 5\r\nhello\r\n", 400, CHUNK_SIZE);
    CHUNK_ERR(" 5\r\nhello\r\n", 400, CHUNK_SIZE);
    CHUNK_ERR("5\nhello\r\n0\r\n\r\n", 400, LINE_ENDING);
    CHUNK_ERR("5\rhello\r\n0\r\n\r\n", 400, LINE_ENDING);
    CHUNK_ERR("\n", 400, LINE_ENDING);
    CHUNK_ERR("5;a=b\nhello\r\n0\r\n\r\n", 400, LINE_ENDING);
    CHUNK_ERR("5;a\rb\r\nhello\r\n", 400, LINE_ENDING);
    CHUNK_ERR("5;a\x01\r\nhello\r\n", 400, CHUNK_EXT);
    CHUNK_ERR("5;a\x7f\r\nhello\r\n", 400, CHUNK_EXT);
    CHUNK_ERR("5;a\0\r\nhello\r\n", 400, CHUNK_EXT);
    CHUNK_ERR("5\r\nhelloX\r\n0\r\n\r\n", 400, CHUNK_DATA_END);
    CHUNK_ERR("5\r\nhello\rX0\r\n\r\n", 400, CHUNK_DATA_END);
    CHUNK_ERR("5\r\nhello\n0\r\n\r\n", 400, CHUNK_DATA_END);
    CHUNK_ERR("5\r\nhello\r\r\n0\r\n\r\n", 400, CHUNK_DATA_END);
    CHUNK_ERR("8000000000000000\r\n", 400, CHUNK_SIZE_OVERFLOW);
    CHUNK_ERR("ffffffffffffffffff\r\n", 400, CHUNK_SIZE_OVERFLOW);
    CHUNK_ERR("00000000000000000000000000000000000000000000008000000000000000\r\n", 400,
              CHUNK_SIZE_OVERFLOW);
    /* Trailers. */
    CHUNK_ERR("0\r\n X: a\r\n\r\n", 400, TRAILER);
    CHUNK_ERR("0\r\nX: a\r\n\tb\r\n\r\n", 400, TRAILER);
    CHUNK_ERR("0\r\nX : a\r\n\r\n", 400, TRAILER);
    CHUNK_ERR("0\r\nNoColon\r\n\r\n", 400, TRAILER);
    CHUNK_ERR("0\r\n: a\r\n\r\n", 400, TRAILER);
    CHUNK_ERR("0\r\nX: a\x01\r\n\r\n", 400, TRAILER);
    CHUNK_ERR("0\r\nX: a\nY: b\r\n\r\n", 400, LINE_ENDING);
    CHUNK_ERR("0\r\nX: a\rY: b\r\n\r\n", 400, LINE_ENDING);
    CHUNK_ERR("0\r\n\n", 400, LINE_ENDING);
    CHUNK_ERR("0\r\n\rX", 400, LINE_ENDING);
    CHUNK_ERR("0\r\nX: a\r\n\n", 400, LINE_ENDING);
}

static void test_chunked_limits(void **state)
{
    (void)state;
    chunk_result res;
    /* 413: the body limit is enforced from the size line, before any data. */
    decode_all_ways(S("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), 11, NULL, &res);
    assert_int_equal(res.r, GORC__HTTP_CHUNK_DONE);
    expect_chunk_error(S("5\r\nhello\r\n7\r\n world!\r\n0\r\n\r\n"), 11, NULL, 413,
                       GORC__HTTP_FAULT_BODY_TOO_LARGE, __LINE__);
    decode_all_ways(S("5\r\nhello\r\n7\r\n"), 11, NULL, &res);
    assert_int_equal(res.r, GORC__HTTP_EBODY);
    assert_int_equal(res.consumed, 10); /* the offending size digit */
    assert_int_equal(res.n, 5);
    expect_chunk_error(S("fffffffffff\r\n"), 1 << 20, NULL, 413, GORC__HTTP_FAULT_BODY_TOO_LARGE,
                       __LINE__);
    assert_int_equal(gorc__http_error_status(GORC__HTTP_EBODY, NULL), 413);

    /* Size line (incl. extensions) bound: 16 bytes before CRLF fit, 17 do not. */
    gorc__http_limits lim = {.max_chunk_line = 16, .max_trailer_bytes = 12};
    decode_all_ways(S("1;aaaaaaaaaaaaaa\r\nx\r\n0\r\n\r\n"), 0, &lim, &res);
    assert_int_equal(res.r, GORC__HTTP_CHUNK_DONE);
    expect_chunk_error(S("1;aaaaaaaaaaaaaaa\r\nx\r\n0\r\n\r\n"), 0, &lim, 400,
                       GORC__HTTP_FAULT_CHUNK_LINE_TOO_LONG, __LINE__);
    expect_chunk_error(S("00000000000000001\r\nx\r\n"), 0, &lim, 400,
                       GORC__HTTP_FAULT_CHUNK_LINE_TOO_LONG, __LINE__);
    /* Trailer section bound (12 bytes incl. the final CRLF). */
    decode_all_ways(S("0\r\nX: 12345\r\n\r\n"), 0, &lim, &res);
    assert_int_equal(res.r, GORC__HTTP_CHUNK_DONE);
    expect_chunk_error(S("0\r\nX: 123456\r\n\r\n"), 0, &lim, 431,
                       GORC__HTTP_FAULT_TRAILERS_TOO_LARGE, __LINE__);

    /* Default chunk line limit: a long extension is refused. */
    static char big[5000];
    size_t n = (size_t)sprintf(big, "1;");
    while (n < 4200)
        big[n++] = 'e';
    gorc__http_chunked d;
    gorc__http_chunked_init(&d, 0, NULL);
    size_t used;
    gorc__http_slice data;
    assert_int_equal(gorc__http_chunked_decode(&d, big, n, &used, &data), GORC__HTTP_EBADMSG);
    assert_int_equal(d.fault, GORC__HTTP_FAULT_CHUNK_LINE_TOO_LONG);
    assert_int_equal(used, GORC__HTTP_DEFAULT_MAX_CHUNK_LINE);
}

/* ------------------------------------------------------------------------------------------
 * Responses
 * ---------------------------------------------------------------------------------------- */

static void accept_resp(gorc__http_response *resp, const char *s, size_t n, bool head, int line)
{
    int r = parse_resp(resp, s, n, head);
    if (r != (int)n) {
        print_error("line %d: expected %zu, got %d (%s)\n", line, n, r,
                    gorc__http_fault_text(resp->fault));
        fail();
    }
    check_consistency(true, head, s, n, NULL);
    parse_resp(resp, s, n, head);
}
#define ACCEPT_RESP(resp, s)      accept_resp((resp), S(s), false, __LINE__)
#define ACCEPT_RESP_HEAD(resp, s) accept_resp((resp), S(s), true, __LINE__)

static void test_response(void **state)
{
    (void)state;
    gorc__http_response resp;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello";
    int r = parse_resp(&resp, S(ok), false);
    assert_int_equal(r, (int)sizeof(ok) - 1 - 5);
    assert_int_equal(resp.status, 200);
    assert_slice(resp.reason, "OK");
    assert_int_equal(resp.minor_version, 1);
    assert_int_equal(resp.body, GORC__HTTP_BODY_LENGTH);
    assert_int_equal(resp.content_length, 5);
    assert_true(resp.keep_alive);
    assert_int_equal(resp.num_headers, 2);
    assert_slice(resp.headers[1].value, "x");
    check_consistency(true, false, S(ok), NULL);

    ACCEPT_RESP(&resp, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(resp.body, GORC__HTTP_BODY_CHUNKED);
    assert_true(resp.chunked);
    assert_true(resp.keep_alive);
    ACCEPT_RESP(&resp, "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n");
    assert_int_equal(resp.body, GORC__HTTP_BODY_CLOSE);
    assert_false(resp.keep_alive);
    ACCEPT_RESP(&resp, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_int_equal(resp.status, 404);
    assert_slice(resp.reason, "Not Found");
    assert_false(resp.keep_alive);
    ACCEPT_RESP(&resp, "HTTP/1.1 204 No Content\r\n\r\n");
    assert_int_equal(resp.body, GORC__HTTP_BODY_NONE);
    assert_true(resp.keep_alive);
    ACCEPT_RESP(&resp, "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n");
    assert_int_equal(resp.body, GORC__HTTP_BODY_NONE);
    assert_int_equal(resp.content_length, 100);
    ACCEPT_RESP(&resp, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_int_equal(resp.status, 100);
    assert_int_equal(resp.body, GORC__HTTP_BODY_NONE);
    ACCEPT_RESP(&resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n");
    assert_int_equal(resp.body, GORC__HTTP_BODY_NONE);
    ACCEPT_RESP_HEAD(&resp, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
    assert_int_equal(resp.body, GORC__HTTP_BODY_NONE);
    assert_int_equal(resp.content_length, 1234);
    assert_true(resp.keep_alive);
    ACCEPT_RESP_HEAD(&resp, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    assert_int_equal(resp.body, GORC__HTTP_BODY_NONE);
    assert_false(resp.chunked);
    ACCEPT_RESP(&resp, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n");
    assert_int_equal(resp.minor_version, 0);
    assert_false(resp.keep_alive);
    ACCEPT_RESP(&resp, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n");
    assert_true(resp.keep_alive);
    ACCEPT_RESP(&resp, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(resp.body, GORC__HTTP_BODY_CLOSE);
    assert_false(resp.keep_alive);
    ACCEPT_RESP(&resp, "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(resp.reason.n, 0);
    ACCEPT_RESP(&resp, "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(resp.reason.n, 0);
    ACCEPT_RESP(&resp, "HTTP/1.1 599 Odd\treason \xff\r\nContent-Length: 0\r\n\r\n");
    assert_slice(resp.reason, "Odd\treason \xff");
    ACCEPT_RESP(&resp, "HTTP/1.1 999 Library\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(resp.status, 999);
    ACCEPT_RESP(&resp, "HTTP/1.9 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(resp.minor_version, 1);
    ACCEPT_RESP(&resp, "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n");
    assert_int_equal(resp.content_length, 3);
    ACCEPT_RESP(&resp, "HTTP/1.1 200 OK\r\nHost: a b\r\nHost: c\r\nContent-Length: 3\r\n\r\n");
}

static void test_response_errors(void **state)
{
    (void)state;
    REJECT_RESP("HTTP/1.1 20 OK\r\n\r\n", EBADMSG, STATUS_LINE);
    REJECT_RESP("HTTP/1.1 2000 OK\r\n\r\n", EBADMSG, STATUS_LINE);
    REJECT_RESP("HTTP/1.1 099 Low\r\n\r\n", EBADMSG, STATUS_LINE);
    REJECT_RESP("HTTP/1.1 2x0 OK\r\n\r\n", EBADMSG, STATUS_LINE);
    REJECT_RESP("HTTP/1.1  200 OK\r\n\r\n", EBADMSG, STATUS_LINE);
    REJECT_RESP("HTTP/1.1\t200 OK\r\n\r\n", EBADMSG, STATUS_LINE);
    REJECT_RESP("HTTP/1.1 200 O\x01K\r\n\r\n", EBADMSG, STATUS_LINE);
    REJECT_RESP("HTTP/1.1 200 OK\n\r\n", EBADMSG, LINE_ENDING);
    REJECT_RESP("HTTP/1.1 200 OK\r\r\n", EBADMSG, LINE_ENDING);
    REJECT_RESP("HTTP/1.1 200\n\r\n", EBADMSG, LINE_ENDING);
    REJECT_RESP("HTTP/2 200 OK\r\n\r\n", EBADMSG, STATUS_LINE);
    REJECT_RESP("http/1.1 200 OK\r\n\r\n", EBADMSG, STATUS_LINE);
    REJECT_RESP("\r\nHTTP/1.1 200 OK\r\n\r\n", EBADMSG, STATUS_LINE);
    REJECT_RESP("HTTP/2.0 200 OK\r\n\r\n", EVERSION, VERSION_UNSUPPORTED);
    REJECT_RESP("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                EBADMSG, CL_AND_TE);
    REJECT_RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", ENOTIMPL, TE_UNSUPPORTED);
    REJECT_RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", ENOTIMPL,
                TE_UNSUPPORTED);
    REJECT_RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", EBADMSG,
                TE_CHUNKED_TWICE);
    REJECT_RESP("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", EBADMSG, TE_HTTP10);
    REJECT_RESP("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", EBADMSG,
                CONTENT_LENGTH_DIFF);
    REJECT_RESP("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", EBADMSG, CONTENT_LENGTH);
    /* The shared field-line rules. */
    REJECT_RESP("HTTP/1.1 200 OK\r\nX : 1\r\n\r\n", EBADMSG, SPACE_BEFORE_COLON);
    REJECT_RESP("HTTP/1.1 200 OK\r\nX: 1\r\n 2\r\n\r\n", EBADMSG, OBS_FOLD);
    REJECT_RESP("HTTP/1.1 200 OK\r\nX: 1\0\r\n\r\n", EBADMSG, HEADER_VALUE);
    REJECT_RESP("HTTP/1.1 200 OK\r\nX: 1\n\r\n", EBADMSG, LINE_ENDING);
    REJECT_RESP("HTTP/1.1 200 OK\r\nX(: 1\r\n\r\n", EBADMSG, HEADER_NAME);

    gorc__http_response resp;
    gorc__http_header one[1];
    prep_resp(&resp, one, 1, false);
    assert_int_equal(
        gorc__http_parse_response(&resp, S("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n"), 0, NULL),
        GORC__HTTP_EHEADERS);
    assert_int_equal(resp.fault, GORC__HTTP_FAULT_TOO_MANY_HEADERS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_post_content_length),
        cmocka_unit_test(test_chunked_request),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_leading_empty_lines),
        cmocka_unit_test(test_versions_and_keep_alive),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_request_line_errors),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_byte_classes),
        cmocka_unit_test(test_content_length_errors),
        cmocka_unit_test(test_transfer_encoding_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_incremental_hint),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_error_status),
        cmocka_unit_test(test_header_find),
        cmocka_unit_test(test_list_next),
        cmocka_unit_test(test_chunked_basic),
        cmocka_unit_test(test_chunked_extensions_trailers),
        cmocka_unit_test(test_chunked_errors),
        cmocka_unit_test(test_chunked_limits),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_response_errors),
    };
    return cmocka_run_group_tests_name("http_parse", tests, NULL, NULL);
}
