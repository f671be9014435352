/*
 * fuzz_http_parse.c - libFuzzer target for src/http/parse.c.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc src/http/parse.c \
 *            tests/fuzz/fuzz_http_parse.c -o fuzz_http_parse
 *
 * Sanitizers find memory errors; this target also checks the parser's promises and aborts
 * when one is broken, because a parser that disagrees with itself is how request smuggling
 * starts:
 *  - every slice lies inside the bytes given, and inside the head when a head is complete;
 *  - results are internally consistent (fault set iff error, body kind vs. flags, limits);
 *  - the answer does not depend on how the bytes arrive: each prefix, parsed from scratch in
 *    a heap block of exactly its size (so reading past it is an ASan error), is NEED_MORE or
 *    exactly the whole input's answer; feeding with the prev_len hint ends with the same
 *    answer; the chunked decoder yields the same payload and end however the input is cut.
 *
 * Input: byte 0 picks limits and options, the rest is the message.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/parse.h"
#include "http_parse_sig.h"

#define CAP_MAX 64
#define SIG_MAX (32 + 4 * CAP_MAX)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct config {
    gorc__http_limits lim;
    const gorc__http_limits *limp;
    size_t cap;
    bool head_request;
    uint64_t max_body;
} config;

static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static char *dup_exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    CHECK(p != NULL);
    if (n)
        memcpy(p, s, n);
    return p;
}

static void check_slice(gorc__http_slice s, const char *lo, const char *hi)
{
    if (s.p == NULL) {
        CHECK(s.n == 0);
        return;
    }
    CHECK(s.p >= lo && s.p <= hi && s.n <= (size_t)(hi - s.p));
}

static bool slice_within(gorc__http_slice in, gorc__http_slice outer)
{
    return in.p >= outer.p && in.p + in.n <= outer.p + outer.n;
}

static void check_error(int r, gorc__http_fault f)
{
    CHECK(f != GORC__HTTP_FAULT_NONE && f < GORC__HTTP_FAULT_COUNT);
    int st = gorc__http_error_status(r, NULL);
    CHECK(st == 400 || st == 414 || st == 431 || st == 501 || st == 505);
    CHECK(strcmp(gorc__http_fault_text(f), "unknown") != 0);
}

/* Reference definitions, written independently of the parser's tables. */
static bool ref_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool ref_field_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static void check_headers(const gorc__http_header *h, size_t n, size_t cap, const char *lo,
                          const char *hi)
{
    CHECK(n <= cap);
    for (size_t i = 0; i < n; i++) {
        check_slice(h[i].name, lo, hi);
        check_slice(h[i].value, lo, hi);
        CHECK(h[i].name.n > 0);
        for (size_t j = 0; j < h[i].name.n; j++)
            CHECK(ref_tchar((unsigned char)h[i].name.p[j]));
        for (size_t j = 0; j < h[i].value.n; j++)
            CHECK(ref_field_byte((unsigned char)h[i].value.p[j]));
        if (h[i].value.n > 0) {
            CHECK(h[i].value.p[0] != ' ' && h[i].value.p[0] != '\t');
            char last = h[i].value.p[h[i].value.n - 1];
            CHECK(last != ' ' && last != '\t');
        }
    }
}

/* NEED_MORE is never the answer for more bytes than the limits allow in a head. */
static size_t head_bound(const config *c)
{
    size_t line =
        c->lim.max_request_line ? c->lim.max_request_line : GORC__HTTP_DEFAULT_MAX_REQUEST_LINE;
    size_t hdr =
        c->lim.max_header_bytes ? c->lim.max_header_bytes : GORC__HTTP_DEFAULT_MAX_HEADER_BYTES;
    return 2 * GORC__HTTP_MAX_EMPTY_LINES + line + 2 + hdr;
}

/* Parse buf[0..n) as a request or response; check invariants; return its signature. */
static size_t parse_one(const config *c, bool is_resp, const char *buf, size_t n, size_t prev,
                        long *sig)
{
    static gorc__http_header h[CAP_MAX];
    if (is_resp) {
        gorc__http_response q;
        memset(&q, 0xa5, sizeof q);
        q.headers = h;
        q.headers_cap = c->cap;
        q.head_request = c->head_request;
        int r = gorc__http_parse_response(&q, buf, n, prev, c->limp);
        CHECK(r <= (int)n);
        CHECK(r != 0 || n <= head_bound(c));
        if (r < 0)
            check_error(r, q.fault);
        if (r > 0) {
            const char *end = buf + r;
            CHECK(q.fault == GORC__HTTP_FAULT_NONE);
            CHECK(q.status >= 100 && q.status <= 999);
            CHECK(q.minor_version == 0 || q.minor_version == 1);
            check_slice(q.reason, buf, end);
            check_headers(h, q.num_headers, c->cap, buf, end);
            CHECK(q.content_length >= -1);
            CHECK(q.chunked == (q.body == GORC__HTTP_BODY_CHUNKED));
            CHECK(q.body != GORC__HTTP_BODY_LENGTH || q.content_length >= 0);
            CHECK(q.body != GORC__HTTP_BODY_CLOSE || !q.keep_alive);
            CHECK(!c->head_request || q.body == GORC__HTTP_BODY_NONE);
        }
        return resp_sig(sig, r, &q, buf);
    }
    gorc__http_request q;
    memset(&q, 0xa5, sizeof q);
    q.headers = h;
    q.headers_cap = c->cap;
    int r = gorc__http_parse_request(&q, buf, n, prev, c->limp);
    CHECK(r <= (int)n);
    CHECK(r != 0 || n <= head_bound(c));
    if (r < 0)
        check_error(r, q.fault);
    if (r > 0) {
        const char *end = buf + r;
        CHECK(q.fault == GORC__HTTP_FAULT_NONE);
        CHECK(q.method.n > 0 && q.target.n > 0);
        check_slice(q.method, buf, end);
        check_slice(q.target, buf, end);
        check_slice(q.path, buf, end);
        check_slice(q.query, buf, end);
        check_slice(q.authority, buf, end);
        check_slice(q.host, buf, end);
        CHECK(q.path.p == NULL || slice_within(q.path, q.target));
        CHECK(q.query.p == NULL || slice_within(q.query, q.target));
        CHECK(q.minor_version == 0 || q.minor_version == 1);
        CHECK(q.minor_version == 0 || q.has_host);
        CHECK(q.has_host == (q.host.p != NULL));
        check_headers(h, q.num_headers, c->cap, buf, end);
        CHECK(q.content_length >= -1);
        CHECK(q.chunked == (q.body == GORC__HTTP_BODY_CHUNKED));
        CHECK(!q.chunked || q.content_length == -1);
        CHECK(q.body != GORC__HTTP_BODY_CLOSE);
        CHECK((q.body == GORC__HTTP_BODY_LENGTH) == (q.content_length >= 0));
        CHECK(!q.expect_continue || q.minor_version == 1);
        if (q.form == GORC__HTTP_TARGET_ORIGIN)
            CHECK(q.target.p[0] == '/');
        if (q.form == GORC__HTTP_TARGET_ASTERISK)
            CHECK(q.target.n == 1 && q.target.p[0] == '*');
        if (q.form == GORC__HTTP_TARGET_ABSOLUTE)
            CHECK(q.authority.n > 0 && slice_within(q.authority, q.target));
        for (size_t i = 0; i < q.target.n; i++) {
            unsigned char ch = (unsigned char)q.target.p[i];
            CHECK(ch > 0x20 && ch < 0x7f && ch != '#');
        }
    }
    return req_sig(sig, r, &q, buf);
}

static void sig_equal(const long *a, size_t an, const long *b, size_t bn)
{
    CHECK(an == bn);
    CHECK(memcmp(a, b, an * sizeof *a) == 0);
}

/* Same signature for the prefix in its own exact-size block. */
static size_t parse_prefix(const config *c, bool is_resp, const char *s, size_t k, size_t prev,
                           long *sig)
{
    char *copy = dup_exact(s, k);
    size_t n = parse_one(c, is_resp, copy, k, prev, sig);
    free(copy);
    return n;
}

static void fuzz_head(const config *c, bool is_resp, const char *s, size_t n)
{
    long whole[SIG_MAX], part[SIG_MAX];
    size_t wn = parse_one(c, is_resp, s, n, 0, whole);

    /* From scratch: every prefix is NEED_MORE or the final answer. */
    size_t samples = n <= 256 ? n : 48;
    for (size_t i = 0; i < samples; i++) {
        size_t k = n <= 256 ? i : (size_t)(rng() % n);
        size_t pn = parse_prefix(c, is_resp, s, k, 0, part);
        if (part[0] != 0)
            sig_equal(part, pn, whole, wn);
    }

    /* With the hint, in random pieces: the first answer is the from-scratch answer for that
     * prefix and the final answer; a complete head is found once the data is all there. */
    size_t prev = 0, k = 0;
    while (k < n) {
        k += 1 + (size_t)(rng() % (rng() & 1 ? 4 : 64));
        if (k > n)
            k = n;
        size_t pn = parse_prefix(c, is_resp, s, k, prev, part);
        if (part[0] != 0) {
            long scratch[SIG_MAX];
            size_t sn = parse_prefix(c, is_resp, s, k, 0, scratch);
            sig_equal(part, pn, scratch, sn);
            sig_equal(part, pn, whole, wn);
            break;
        }
        prev = k;
    }
    if (n > 0 && k == n && part[0] == 0)
        CHECK(whole[0] <= 0);

    /* With the hint, byte by byte on the full buffer (cheap). */
    prev = 0;
    for (k = 1; k <= n; k++) {
        size_t pn = parse_one(c, is_resp, s, k, prev, part);
        if (part[0] != 0) {
            sig_equal(part, pn, whole, wn);
            break;
        }
        prev = k;
    }
}

typedef struct chunk_out {
    int r;
    gorc__http_fault fault;
    size_t consumed;
    size_t n;
} chunk_out;

/* Decode s[0..len) cut into pieces (step 0: random sizes, else that size); payload into out. */
static void decode(const config *c, const char *s, size_t len, size_t step, char *out,
                   chunk_out *res)
{
    gorc__http_chunked d;
    gorc__http_chunked_init(&d, c->max_body, c->limp);
    res->r = GORC__HTTP_NEED_MORE;
    res->n = 0;
    res->fault = GORC__HTTP_FAULT_NONE;
    size_t off = 0;
    while (off < len) {
        size_t n = step ? step : 1 + (size_t)(rng() % 32);
        if (n > len - off)
            n = len - off;
        char *piece = dup_exact(s + off, n);
        size_t pos = 0;
        int r;
        do {
            size_t used = (size_t)-1;
            gorc__http_slice data = {(const char *)1, 1};
            r = gorc__http_chunked_decode(&d, piece + pos, n - pos, &used, &data);
            CHECK(used <= n - pos);
            if (r == GORC__HTTP_CHUNK_DATA) {
                CHECK(data.n > 0 && data.p >= piece + pos);
                CHECK(data.p + data.n == piece + pos + used);
                memcpy(out + res->n, data.p, data.n);
                res->n += data.n;
            } else {
                CHECK(data.p == NULL && data.n == 0);
            }
            if (r == GORC__HTTP_NEED_MORE)
                CHECK(used == n - pos);
            if (r < 0) {
                CHECK(r == GORC__HTTP_EBADMSG || r == GORC__HTTP_EHEADERS || r == GORC__HTTP_EBODY);
                CHECK(d.fault != GORC__HTTP_FAULT_NONE);
            }
            pos += used;
        } while (r == GORC__HTTP_CHUNK_DATA && pos < n);
        free(piece);
        off += pos;
        if (r < 0 || r == GORC__HTTP_CHUNK_DONE) {
            res->r = r;
            res->fault = d.fault;
            size_t used = 1;
            gorc__http_slice data;
            CHECK(gorc__http_chunked_decode(&d, "0\r\n\r\n", 5, &used, &data) == r);
            CHECK(used == 0);
            break;
        }
    }
    res->consumed = off;
    CHECK(c->max_body == 0 || res->n <= c->max_body);
    CHECK(res->n <= res->consumed);
}

static void fuzz_chunked(const config *c, const char *s, size_t n)
{
    if (n == 0)
        return;
    char *a = malloc(n), *b = malloc(n);
    CHECK(a != NULL && b != NULL);
    chunk_out ra, rb;
    decode(c, s, n, n, a, &ra);
    for (int round = 0; round < 3; round++) {
        decode(c, s, n, round == 0 ? 1 : 0, b, &rb);
        CHECK(ra.r == rb.r && ra.fault == rb.fault && ra.consumed == rb.consumed);
        CHECK(ra.n == rb.n && memcmp(a, b, ra.n) == 0);
    }
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    config c;
    memset(&c, 0, sizeof c);
    if (opt & 1) {
        /* Small limits, so inputs reach every limit. */
        c.lim.max_request_line = 16 + (size_t)(opt >> 4) * 4;
        c.lim.max_header_bytes = 32 + (size_t)(opt >> 5) * 16;
        c.lim.max_headers = 1 + (size_t)(opt >> 6);
        c.lim.max_chunk_line = 4 + (size_t)(opt >> 4);
        c.lim.max_trailer_bytes = 8 + (size_t)(opt >> 4) * 2;
        c.limp = &c.lim;
    }
    c.cap = opt & 2 ? 4 : CAP_MAX;
    c.head_request = (opt & 4) != 0;
    c.max_body = opt & 8 ? 64 : 0;

    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    rng_state = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
    for (size_t i = 0; i < n && i < 64; i++)
        rng_state = (rng_state ^ (uint8_t)s[i]) * 0x100000001b3ULL;
    if (rng_state == 0)
        rng_state = 1;

    fuzz_head(&c, false, s, n);
    fuzz_head(&c, true, s, n);
    fuzz_chunked(&c, s, n);

    /* A body after a complete request head. */
    static gorc__http_header h[CAP_MAX];
    gorc__http_request q;
    memset(&q, 0, sizeof q);
    q.headers = h;
    q.headers_cap = c.cap;
    int r = gorc__http_parse_request(&q, s, n, 0, c.limp);
    if (r > 0 && q.chunked)
        fuzz_chunked(&c, s + r, n - (size_t)r);

    /* Helpers. */
    gorc__http_slice rest = {n ? s : NULL, n}, e;
    size_t count = 0;
    while (gorc__http_list_next(&rest, &e)) {
        CHECK(e.n > 0 && e.p >= s && e.p + e.n <= s + n);
        CHECK(e.p[0] != ' ' && e.p[0] != '\t' && e.p[0] != ',');
        CHECK(++count <= n);
    }
    if (r > 0 && q.num_headers > 0) {
        const gorc__http_header *f =
            gorc__http_header_find(q.headers, q.num_headers, h[0].name.p, h[0].name.n, NULL);
        CHECK(f == &h[0]);
    }
    return 0;
}
