/*
 * parse.c - HTTP/1.x request/response heads and chunked bodies, zero-copy.
 *
 * Why it is built this way:
 *
 *  - Zero copy, no allocation. A server parses every request head, so the parser only
 *    reports (pointer, length) slices into the connection buffer and writes into arrays the
 *    caller owns. Nothing here allocates, locks or depends on the rest of gorc, which also
 *    makes it easy to fuzz in isolation.
 *
 *  - Restart instead of resume. A head parser that saves its position between calls has to
 *    carry slices across buffer moves and keeps a state machine per byte. Re-parsing the
 *    prefix from the start is simpler and cannot get out of step with the buffer; its cost is
 *    bounded because every limit is enforced on the bytes seen so far, not only on complete
 *    lines. To keep a head that trickles in byte by byte from costing O(n^2), a caller can
 *    pass the previous length: the new bytes are then only scanned for the things that can
 *    change the answer (the CRLF CRLF that ends a head, a bare LF, a size limit) before
 *    re-parsing.
 *
 *  - Errors are positional. Each check rejects at the first byte that proves the message bad,
 *    and limits are applied by clamping the scanned region, never by looking at how much data
 *    happens to be buffered. So a prefix either is reported as NEED_MORE or gets exactly the
 *    answer the full message gets, however the bytes were split. The fuzz target checks this.
 *
 *  - Strict where leniency enables request smuggling (RFC 9112 §11.2): bare LF, bare CR,
 *    obs-fold, whitespace before a colon, CL+TE, conflicting Content-Lengths, unknown or
 *    repeated transfer codings and control characters are all rejected rather than repaired,
 *    because a repair that differs from the one a proxy in front of us made is exactly what
 *    an attacker exploits. Leniency is kept only where every reading agrees (identical
 *    duplicate Content-Length values, empty list elements, HTTP/1.2 read as 1.1).
 *
 *  - Speed: one pass; hot loops are table lookups (one 256-byte class table, 4 cache lines)
 *    or 8-bytes-at-a-time checks on field values, with no function calls per byte. Derived
 *    facts (Content-Length, Transfer-Encoding, Connection, Host, Expect) are computed while
 *    the field line is in cache, dispatching on the name's length first.
 *
 * One field-line parser serves requests and responses; trailers in chunked bodies use the
 * same character classes in a byte-at-a-time state machine, because the body decoder must
 * consume input it cannot see the end of.
 */
#include "http/parse.h"

#include <string.h>

/* Character classes (bits of cls[]). */
#define C_TCHAR  0x01 /* token character (RFC 9110 §5.6.2) */
#define C_FIELD  0x02 /* field-value byte: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5) */
#define C_TARGET 0x04 /* request-target byte except '?', '%' and '#' (see docs) */
#define C_HOST   0x08 /* reg-name byte: unreserved / sub-delims (RFC 3986 §3.2.2) */
#define C_HEX    0x10
#define C_DIGIT  0x20
#define C_SCHEME 0x40 /* ALPHA / DIGIT / "+" / "-" / "." */
#define C_ALPHA  0x80

/* clang-format off */
static const uint8_t cls[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x0f, 0x06, 0x03, 0x0f, 0x03, 0x0f, 0x0f, 0x0e, 0x0e, 0x0f, 0x4f, 0x0e, 0x4f, 0x4f, 0x06,
    0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x06, 0x0e, 0x06, 0x0e, 0x06, 0x02,
    0x06, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf,
    0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0x06, 0x06, 0x06, 0x07, 0x0f,
    0x07, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf,
    0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0x06, 0x07, 0x06, 0x0f, 0x00,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
};
/* clang-format on */

#define BYTE(p)   ((uint8_t)(p)[0])
#define IS(c, k)  ((cls[(uint8_t)(c)] & (k)) != 0)
#define IS_WS(c)  ((c) == ' ' || (c) == '\t')
#define ONES      0x0101010101010101ULL
#define HIGH_BITS 0x8080808080808080ULL

#if defined(__GNUC__)
#define COLD __attribute__((cold))
#else
#define COLD
#endif

static inline uint8_t to_lower(uint8_t c)
{
    return (uint8_t)(c + (((unsigned)c - 'A' < 26u) << 5));
}

static inline unsigned hexval(uint8_t c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

/* Non-zero iff one of the 8 bytes at p is below 0x20 or is 0x7f, i.e. might end a field
 * value (CR) or be invalid in one. HTAB also trips it; the byte loop sorts that out. */
static inline uint64_t value_stop8(const char *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof x);
    uint64_t lt = (x - ONES * 0x20) & ~x & HIGH_BITS;
    uint64_t y = x ^ (ONES * 0x7f);
    uint64_t del = (y - ONES) & ~y & HIGH_BITS;
    return lt | del;
}

/* Skip field-value bytes (HTAB, SP, VCHAR, obs-text) from p; 8 at a time while none of them
 * can be special. Returns the first other byte's position, or stop. */
static inline const char *skip_field_value(const char *p, const char *stop)
{
    while ((size_t)(stop - p) >= 8 && value_stop8(p) == 0)
        p += 8;
    while (p < stop && IS(*p, C_FIELD))
        p++;
    return p;
}

/* name[0..n) equals the lower-case literal lit ignoring case. */
static inline bool name_is(const char *name, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (to_lower(BYTE(name + i)) != (uint8_t)lit[i])
            return false;
    }
    return true;
}

#define LIT(s) (s), (sizeof(s) - 1)

/* ------------------------------------------------------------------------------------------
 * Faults, limits
 * ---------------------------------------------------------------------------------------- */

/* The fault enum is ordered by status group, so the errno value is a range check. */
static int fault_error(gorc__http_fault f)
{
    if (f < GORC__HTTP_FAULT_BODY_TOO_LARGE)
        return GORC__HTTP_EBADMSG;
    if (f == GORC__HTTP_FAULT_BODY_TOO_LARGE)
        return GORC__HTTP_EBODY;
    if (f == GORC__HTTP_FAULT_LINE_TOO_LONG)
        return GORC__HTTP_ETOOLONG;
    if (f <= GORC__HTTP_FAULT_TRAILERS_TOO_LARGE)
        return GORC__HTTP_EHEADERS;
    if (f <= GORC__HTTP_FAULT_CONNECT)
        return GORC__HTTP_ENOTIMPL;
    return GORC__HTTP_EVERSION;
}

typedef struct lims {
    size_t line, hdr_bytes, nhdr, chunk_line, trailer;
} lims;

static size_t pick(size_t v, size_t def)
{
    if (v == 0)
        return def;
    return v > GORC__HTTP_LIMIT_CAP ? GORC__HTTP_LIMIT_CAP : v;
}

static void resolve_limits(const gorc__http_limits *in, lims *out)
{
    static const gorc__http_limits zero;
    if (in == NULL)
        in = &zero;
    out->line = pick(in->max_request_line, GORC__HTTP_DEFAULT_MAX_REQUEST_LINE);
    out->hdr_bytes = pick(in->max_header_bytes, GORC__HTTP_DEFAULT_MAX_HEADER_BYTES);
    out->nhdr = pick(in->max_headers, GORC__HTTP_DEFAULT_MAX_HEADERS);
    out->chunk_line = pick(in->max_chunk_line, GORC__HTTP_DEFAULT_MAX_CHUNK_LINE);
    out->trailer = pick(in->max_trailer_bytes, GORC__HTTP_DEFAULT_MAX_TRAILER_BYTES);
}

/* Limit scanning to n bytes from p. *clamped tells whether the limit (rather than the end of
 * the data) is what stops the scan: running into it then means "too long", not "need more". */
static inline const char *clamp(const char *p, const char *end, size_t n, bool *clamped)
{
    if ((size_t)(end - p) > n) {
        *clamped = true;
        return p + n;
    }
    *clamped = false;
    return end;
}

/* ------------------------------------------------------------------------------------------
 * Shared head parsing
 * ---------------------------------------------------------------------------------------- */

typedef struct head {
    gorc__http_header *hdrs;
    size_t cap; /* min(array capacity, max_headers) */
    size_t n;
    lims lim;
    gorc__http_fault fault;
    bool request;
    int minor;
    int64_t cl; /* -1: no Content-Length */
    bool te, te_chunked, te_last_chunked, te_other;
    bool close, keep_alive, expect_continue, expect_unknown;
    unsigned hosts;
    gorc__http_slice host;
} head;

static void head_init(head *h, gorc__http_header *hdrs, size_t cap, const lims *l, bool request)
{
    memset(h, 0, sizeof *h);
    h->hdrs = hdrs;
    h->cap = cap < l->nhdr ? cap : l->nhdr;
    h->lim = *l;
    h->request = request;
    h->cl = -1;
}

static COLD int head_fail(head *h, gorc__http_fault f)
{
    h->fault = f;
    return fault_error(f);
}

/* Ran into the scan limit: too long if the limit stopped us, else wait for more bytes. */
static inline int more(head *h, bool clamped, gorc__http_fault f)
{
    return clamped ? head_fail(h, f) : GORC__HTTP_NEED_MORE;
}

/* Match "HTTP/" DIGIT "." DIGIT at p. Returns 1 (and the digits), 0 when stop comes first,
 * -1 on a mismatch (found as early as the bytes allow). */
static int match_version(const char *p, const char *stop, int *major, int *minor)
{
    static const char pat[] = "HTTP/0.0";
    for (int i = 0; i < 8; i++) {
        if (p + i == stop)
            return 0;
        uint8_t c = BYTE(p + i);
        if (pat[i] == '0' ? !IS(c, C_DIGIT) : c != (uint8_t)pat[i])
            return -1;
    }
    *major = p[5] - '0';
    *minor = p[7] - '0';
    return 1;
}

/* uri-host [":" port] (RFC 9110 §7.2, RFC 3986 §3.2.2). need_host: the host part must not be
 * empty (an "http" URI with an empty host is invalid, RFC 9110 §4.2.1). Userinfo is not
 * allowed ('@' is not a host character). */
static bool valid_host(const char *p, size_t n, bool need_host)
{
    if (n == 0)
        return !need_host;
    const char *end = p + n, *start = p;
    if (*p == '[') {
        /* IP-literal: IPv6address / IPvFuture, checked for its alphabet only. */
        p++;
        const char *s = p;
        while (p < end && (IS(*p, C_HOST) || *p == ':'))
            p++;
        if (p == end || *p != ']' || p == s)
            return false;
        p++;
    } else {
        while (p < end) {
            if (IS(*p, C_HOST))
                p++;
            else if (*p == '%' && end - p >= 3 && IS(p[1], C_HEX) && IS(p[2], C_HEX))
                p += 3;
            else
                break;
        }
    }
    if (need_host && p == start)
        return false;
    if (p < end) {
        if (*p != ':')
            return false;
        p++;
        while (p < end && IS(*p, C_DIGIT))
            p++;
    }
    return p == end;
}

static int on_content_length(head *h, gorc__http_slice v)
{
    /* RFC 9110 §8.6: 1*DIGIT. A list of identical values ("5, 5", or repeated lines) is
     * accepted as that value; differing values are an error. */
    gorc__http_slice rest = v, e;
    bool any = false;
    while (gorc__http_list_next(&rest, &e)) {
        int64_t x = 0;
        for (size_t i = 0; i < e.n; i++) {
            uint8_t c = BYTE(e.p + i);
            if (!IS(c, C_DIGIT))
                return head_fail(h, GORC__HTTP_FAULT_CONTENT_LENGTH);
            int d = c - '0';
            if (x > (INT64_MAX - d) / 10)
                return head_fail(h, GORC__HTTP_FAULT_CONTENT_LENGTH);
            x = x * 10 + d;
        }
        if (h->cl >= 0 && h->cl != x)
            return head_fail(h, GORC__HTTP_FAULT_CONTENT_LENGTH_DIFF);
        h->cl = x;
        any = true;
    }
    return any ? 0 : head_fail(h, GORC__HTTP_FAULT_CONTENT_LENGTH);
}

static int on_transfer_encoding(head *h, gorc__http_slice v)
{
    /* transfer-coding = token *( OWS ";" OWS transfer-parameter ) (RFC 9112 §7). Repeated
     * lines form one list (RFC 9110 §5.3), so the final coding is the last element seen. */
    gorc__http_slice rest = v, e;
    bool any = false;
    h->te = true;
    while (gorc__http_list_next(&rest, &e)) {
        size_t i = 0;
        while (i < e.n && IS(e.p[i], C_TCHAR))
            i++;
        if (i == 0)
            return head_fail(h, GORC__HTTP_FAULT_TE_MALFORMED);
        bool params = false;
        if (i < e.n) {
            size_t j = i;
            while (j < e.n && IS_WS(e.p[j]))
                j++;
            if (j == e.n || e.p[j] != ';')
                return head_fail(h, GORC__HTTP_FAULT_TE_MALFORMED);
            params = true;
        }
        bool chunked = i == 7 && name_is(e.p, LIT("chunked"));
        if (chunked) {
            if (params) /* chunked takes no parameters */
                return head_fail(h, GORC__HTTP_FAULT_TE_MALFORMED);
            if (h->te_chunked)
                return head_fail(h, GORC__HTTP_FAULT_TE_CHUNKED_TWICE);
            h->te_chunked = true;
        } else {
            h->te_other = true;
        }
        h->te_last_chunked = chunked;
        any = true;
    }
    return any ? 0 : head_fail(h, GORC__HTTP_FAULT_TE_MALFORMED);
}

/* Derive facts from one field line. Dispatch on the name length first: most lines are none
 * of these and cost one switch. */
static int on_field(head *h, const char *name, size_t nlen, gorc__http_slice v)
{
    gorc__http_slice rest = v, e;
    switch (nlen) {
    case 4:
        if (h->request && name_is(name, LIT("host"))) {
            /* RFC 9112 §3.2: more than one Host line or an invalid value is a 400. */
            if (++h->hosts > 1)
                return head_fail(h, GORC__HTTP_FAULT_HOST_DUPLICATE);
            if (!valid_host(v.p, v.n, false))
                return head_fail(h, GORC__HTTP_FAULT_HOST_INVALID);
            h->host = v;
        }
        break;
    case 6:
        /* RFC 9110 §10.1.1: ignore 100-continue in an HTTP/1.0 request. */
        if (h->request && h->minor == 1 && name_is(name, LIT("expect"))) {
            while (gorc__http_list_next(&rest, &e)) {
                if (gorc__http_ieq(e, LIT("100-continue")))
                    h->expect_continue = true;
                else
                    h->expect_unknown = true;
            }
        }
        break;
    case 10:
        if (name_is(name, LIT("connection"))) {
            while (gorc__http_list_next(&rest, &e)) {
                if (gorc__http_ieq(e, LIT("close")))
                    h->close = true;
                else if (gorc__http_ieq(e, LIT("keep-alive")))
                    h->keep_alive = true;
            }
        }
        break;
    case 14:
        if (name_is(name, LIT("content-length")))
            return on_content_length(h, v);
        break;
    case 17:
        if (name_is(name, LIT("transfer-encoding")))
            return on_transfer_encoding(h, v);
        break;
    default:
        break;
    }
    return 0;
}

/* Parse field lines up to and including the empty line. Returns 1 with *out after the empty
 * line, NEED_MORE, or an error. The whole section (CRLFs included) is bounded by
 * max_header_bytes. */
static int parse_fields(head *h, const char *p, const char *end, const char **out)
{
    bool clamped;
    const char *stop = clamp(p, end, h->lim.hdr_bytes, &clamped);
    for (;;) {
        if (p == stop)
            return more(h, clamped, GORC__HTTP_FAULT_HEADERS_TOO_LARGE);
        uint8_t c = BYTE(p);
        if (c == '\r') {
            if (p + 1 == stop)
                return more(h, clamped, GORC__HTTP_FAULT_HEADERS_TOO_LARGE);
            if (p[1] != '\n')
                return head_fail(h, GORC__HTTP_FAULT_LINE_ENDING);
            *out = p + 2;
            return 1;
        }
        if (!IS(c, C_TCHAR)) {
            /* RFC 9112 §5.2 obs-fold, and §2.2 whitespace after the start line: reject. */
            if (IS_WS(c))
                return head_fail(h, GORC__HTTP_FAULT_OBS_FOLD);
            if (c == '\n')
                return head_fail(h, GORC__HTTP_FAULT_LINE_ENDING);
            return head_fail(h, GORC__HTTP_FAULT_HEADER_NAME);
        }
        if (h->n == h->cap)
            return head_fail(h, GORC__HTTP_FAULT_TOO_MANY_HEADERS);

        const char *name = p;
        do
            p++;
        while (p < stop && IS(*p, C_TCHAR));
        if (p == stop)
            return more(h, clamped, GORC__HTTP_FAULT_HEADERS_TOO_LARGE);
        if (*p != ':') {
            /* RFC 9112 §5.1: whitespace between name and colon MUST be rejected with 400. */
            if (IS_WS(*p))
                return head_fail(h, GORC__HTTP_FAULT_SPACE_BEFORE_COLON);
            return head_fail(h, GORC__HTTP_FAULT_HEADER_NAME);
        }
        size_t name_len = (size_t)(p - name);
        p++;
        while (p < stop && IS_WS(*p))
            p++;
        const char *val = p;
        p = skip_field_value(p, stop);
        if (p == stop)
            return more(h, clamped, GORC__HTTP_FAULT_HEADERS_TOO_LARGE);
        if (*p != '\r') {
            /* RFC 9110 §5.5: NUL, CR, LF are dangerous; other CTLs are not field-vchars. */
            return head_fail(h, *p == '\n' ? GORC__HTTP_FAULT_LINE_ENDING
                                           : GORC__HTTP_FAULT_HEADER_VALUE);
        }
        if (p + 1 == stop)
            return more(h, clamped, GORC__HTTP_FAULT_HEADERS_TOO_LARGE);
        if (p[1] != '\n')
            return head_fail(h, GORC__HTTP_FAULT_LINE_ENDING);
        const char *vend = p;
        while (vend > val && IS_WS(vend[-1]))
            vend--;
        gorc__http_header *hd = &h->hdrs[h->n++];
        hd->name.p = name;
        hd->name.n = name_len;
        hd->value.p = val;
        hd->value.n = (size_t)(vend - val);
        int r = on_field(h, name, name_len, hd->value);
        if (r < 0)
            return r;
        p += 2;
    }
}

/* Cheap pre-check for a caller that passes prev_len: can bytes [prev_len, len) change the
 * answer? Only a full parse can tell when they hold the end of a head (LF CR LF), a bare LF
 * (an error), or take the buffer past a limit. Everything else leaves the answer NEED_MORE:
 * a full parse of the previous prefix said so, and a head cannot end without LF CR LF. */
static bool need_full_parse(const char *buf, size_t len, size_t prev_len, const lims *l)
{
    if (prev_len == 0 || prev_len >= len)
        return true;
    size_t t1 = 2 * GORC__HTTP_MAX_EMPTY_LINES + l->line + 2;
    size_t t2 = t1 + l->hdr_bytes;
    if (len > t2 || (len > t1 && prev_len <= t1))
        return true;
    const char *p = buf + prev_len, *end = buf + len;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (p[-1] != '\r')
            return true;
        if (p - buf >= 2 && p[-2] == '\n')
            return true;
        p++;
    }
    return false;
}

/* ------------------------------------------------------------------------------------------
 * Requests
 * ---------------------------------------------------------------------------------------- */

/* absolute-form: http[s]://authority[path][?query] (RFC 9112 §3.2.2). */
static bool parse_absolute(gorc__http_request *req, const char *t, const char *tend, const char *q)
{
    const char *p = t;
    while (p < tend && IS(*p, C_SCHEME))
        p++;
    size_t slen = (size_t)(p - t);
    if (!(slen == 4 && name_is(t, LIT("http"))) && !(slen == 5 && name_is(t, LIT("https"))))
        return false;
    if (tend - p < 3 || memcmp(p, "://", 3) != 0)
        return false;
    p += 3;
    const char *a = p;
    while (p < tend && *p != '/' && *p != '?')
        p++;
    if (!valid_host(a, (size_t)(p - a), true))
        return false;
    req->authority.p = a;
    req->authority.n = (size_t)(p - a);
    req->path.p = p;
    req->path.n = (size_t)((q ? q : tend) - p);
    return true;
}

/* The end of a start line whose CR is at p, and the version it announced: what the request
 * and status lines share. Returns 1 with *out past the CRLF and h->minor set, or the answer
 * of more() / head_fail(). */
static int end_start_line(head *h, const char *p, const char *stop, bool clamped, int major,
                          int minor, const char **out)
{
    if (p + 1 == stop)
        return more(h, clamped, GORC__HTTP_FAULT_LINE_TOO_LONG);
    if (p[1] != '\n')
        return head_fail(h, GORC__HTTP_FAULT_LINE_ENDING);
    *out = p + 2;
    /* RFC 9110 §6.2: a higher minor version is processed as the highest we implement. */
    if (major != 1)
        return head_fail(h, GORC__HTTP_FAULT_VERSION_UNSUPPORTED);
    h->minor = minor > 1 ? 1 : minor;
    return 1;
}

static int parse_request_line(head *h, gorc__http_request *req, const char *p, const char *end,
                              const char **out)
{
    bool clamped;
    const char *stop = clamp(p, end, h->lim.line + 2, &clamped);
    const gorc__http_fault too_long = GORC__HTTP_FAULT_LINE_TOO_LONG;

    /* method SP */
    const char *m = p;
    while (p < stop && IS(*p, C_TCHAR))
        p++;
    if (p == stop)
        return more(h, clamped, too_long);
    if (*p != ' ') {
        bool sep = p == m || *p == '\r' || *p == '\n' || *p == '\t';
        return head_fail(h, sep ? GORC__HTTP_FAULT_REQUEST_LINE : GORC__HTTP_FAULT_METHOD);
    }
    if (p == m)
        return head_fail(h, GORC__HTTP_FAULT_REQUEST_LINE);
    req->method.p = m;
    req->method.n = (size_t)(p - m);
    p++;

    /* request-target SP: visible ASCII except '#', with valid %-escapes. */
    const char *t = p, *q = NULL;
    for (;;) {
        while (p < stop && IS(*p, C_TARGET))
            p++;
        if (p == stop)
            return more(h, clamped, too_long);
        if (*p == ' ')
            break;
        if (*p == '?') {
            if (q == NULL)
                q = p;
            p++;
        } else if (*p == '%') {
            if (p + 1 == stop)
                return more(h, clamped, too_long);
            if (!IS(p[1], C_HEX))
                return head_fail(h, GORC__HTTP_FAULT_TARGET);
            if (p + 2 == stop)
                return more(h, clamped, too_long);
            if (!IS(p[2], C_HEX))
                return head_fail(h, GORC__HTTP_FAULT_TARGET);
            p += 3;
        } else if (*p == '\r' || *p == '\n' || *p == '\t') {
            return head_fail(h, GORC__HTTP_FAULT_REQUEST_LINE);
        } else {
            return head_fail(h, GORC__HTTP_FAULT_TARGET);
        }
    }
    if (p == t)
        return head_fail(h, GORC__HTTP_FAULT_REQUEST_LINE);
    const char *tend = p;
    p++;

    /* HTTP-version CRLF */
    int major, minor;
    int r = match_version(p, stop, &major, &minor);
    if (r == 0)
        return more(h, clamped, too_long);
    if (r < 0)
        return head_fail(h, GORC__HTTP_FAULT_VERSION);
    p += 8;
    if (p == stop)
        return more(h, clamped, too_long);
    if (*p != '\r') {
        if (*p == '\n')
            return head_fail(h, GORC__HTTP_FAULT_LINE_ENDING);
        return head_fail(h, IS(*p, C_DIGIT) ? GORC__HTTP_FAULT_VERSION
                                            : GORC__HTTP_FAULT_REQUEST_LINE);
    }
    r = end_start_line(h, p, stop, clamped, major, minor, out);
    if (r != 1)
        return r;
    req->minor_version = h->minor;

    req->target.p = t;
    req->target.n = (size_t)(tend - t);
    if (q != NULL) {
        req->query.p = q + 1;
        req->query.n = (size_t)(tend - q - 1);
    }
    if (req->method.n == 7 && memcmp(m, "CONNECT", 7) == 0)
        return head_fail(h, GORC__HTTP_FAULT_CONNECT);
    if (*t == '/') {
        req->form = GORC__HTTP_TARGET_ORIGIN;
        req->path.p = t;
        req->path.n = (size_t)((q ? q : tend) - t);
    } else if (tend - t == 1 && *t == '*') {
        if (req->method.n != 7 || memcmp(m, "OPTIONS", 7) != 0)
            return head_fail(h, GORC__HTTP_FAULT_TARGET);
        req->form = GORC__HTTP_TARGET_ASTERISK;
        req->path = req->target;
    } else if (IS(*t, C_ALPHA) && parse_absolute(req, t, tend, q)) {
        req->form = GORC__HTTP_TARGET_ABSOLUTE;
    } else {
        return head_fail(h, GORC__HTTP_FAULT_TARGET);
    }
    return 1;
}

static int finish_request(head *h, gorc__http_request *req)
{
    if (h->minor == 1 && h->hosts == 0)
        return head_fail(h, GORC__HTTP_FAULT_HOST_MISSING);
    req->body = GORC__HTTP_BODY_NONE;
    if (h->te) {
        /* RFC 9112 §6.1: TE in HTTP/1.0 means faulty framing; CL+TE is a smuggling attempt
         * we may reject (we must not trust CL). §6.3: chunked not final in a request is a
         * 400. §6.1: a coding we do not implement is a 501. */
        if (h->minor == 0)
            return head_fail(h, GORC__HTTP_FAULT_TE_HTTP10);
        if (h->cl >= 0)
            return head_fail(h, GORC__HTTP_FAULT_CL_AND_TE);
        if (!h->te_last_chunked)
            return head_fail(h, GORC__HTTP_FAULT_TE_NOT_CHUNKED);
        if (h->te_other)
            return head_fail(h, GORC__HTTP_FAULT_TE_UNSUPPORTED);
        req->body = GORC__HTTP_BODY_CHUNKED;
        req->chunked = true;
    } else if (h->cl >= 0) {
        req->body = GORC__HTTP_BODY_LENGTH;
    }
    req->content_length = h->cl;
    req->keep_alive = !h->close && (h->minor == 1 || h->keep_alive);
    req->expect_continue = h->expect_continue;
    req->expect_unknown = h->expect_unknown;
    req->has_host = h->hosts > 0;
    req->host = h->host;
    return 1;
}

/* Skip up to GORC__HTTP_MAX_EMPTY_LINES CRLFs (RFC 9112 §2.2 SHOULD ignore at least one). */
static int skip_empty_lines(head *h, const char *p, const char *end, const char **out)
{
    for (int i = 0;; i++) {
        if (p == end)
            return GORC__HTTP_NEED_MORE;
        if (*p != '\r') {
            if (*p == '\n')
                return head_fail(h, GORC__HTTP_FAULT_LINE_ENDING);
            *out = p;
            return 1;
        }
        if (p + 1 == end)
            return GORC__HTTP_NEED_MORE;
        if (p[1] != '\n')
            return head_fail(h, GORC__HTTP_FAULT_LINE_ENDING);
        if (i == GORC__HTTP_MAX_EMPTY_LINES)
            return head_fail(h, GORC__HTTP_FAULT_EMPTY_LINES);
        p += 2;
    }
}

static int request_head(head *h, gorc__http_request *req, const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    int r = skip_empty_lines(h, p, end, &p);
    if (r <= 0)
        return r;
    r = parse_request_line(h, req, p, end, &p);
    if (r <= 0)
        return r;
    r = parse_fields(h, p, end, &p);
    if (r <= 0)
        return r;
    r = finish_request(h, req);
    if (r <= 0)
        return r;
    return (int)(p - buf);
}

int gorc__http_parse_request(gorc__http_request *req, const char *buf, size_t len, size_t prev_len,
                             const gorc__http_limits *lim)
{
    if (req == NULL || (buf == NULL && len > 0) || (req->headers == NULL && req->headers_cap > 0))
        return GORC__HTTP_EINVAL;
    req->fault = GORC__HTTP_FAULT_NONE;
    if (len == 0)
        return GORC__HTTP_NEED_MORE;
    lims l;
    resolve_limits(lim, &l);
    if (!need_full_parse(buf, len, prev_len, &l))
        return GORC__HTTP_NEED_MORE;

    static const gorc__http_slice none = {NULL, 0};
    req->num_headers = 0;
    req->method = req->target = req->path = req->query = req->authority = req->host = none;
    req->form = GORC__HTTP_TARGET_ORIGIN;
    req->minor_version = 1;
    req->body = GORC__HTTP_BODY_NONE;
    req->content_length = -1;
    req->chunked = req->keep_alive = req->expect_continue = req->has_host = false;
    req->expect_unknown = false;

    head h;
    head_init(&h, req->headers, req->headers_cap, &l, true);
    int r = request_head(&h, req, buf, len);
    req->num_headers = h.n;
    req->fault = h.fault;
    return r;
}

/* ------------------------------------------------------------------------------------------
 * Responses
 * ---------------------------------------------------------------------------------------- */

/* status-line = HTTP-version SP 3DIGIT SP [reason-phrase] CRLF (RFC 9112 §4). A missing
 * "SP reason" is tolerated: servers send "HTTP/1.1 200\r\n" and the reading is unambiguous. */
static int parse_status_line(head *h, gorc__http_response *resp, const char *p, const char *end,
                             const char **out)
{
    bool clamped;
    const char *stop = clamp(p, end, h->lim.line + 2, &clamped);
    const gorc__http_fault too_long = GORC__HTTP_FAULT_LINE_TOO_LONG;
    int major, minor;
    int r = match_version(p, stop, &major, &minor);
    if (r == 0)
        return more(h, clamped, too_long);
    if (r < 0)
        return head_fail(h, GORC__HTTP_FAULT_STATUS_LINE);
    p += 8;
    if (p == stop)
        return more(h, clamped, too_long);
    if (*p != ' ')
        return head_fail(h, GORC__HTTP_FAULT_STATUS_LINE);
    p++;
    int status = 0;
    for (int i = 0; i < 3; i++, p++) {
        if (p == stop)
            return more(h, clamped, too_long);
        if (!IS(*p, C_DIGIT))
            return head_fail(h, GORC__HTTP_FAULT_STATUS_LINE);
        status = status * 10 + (*p - '0');
    }
    if (status < 100)
        return head_fail(h, GORC__HTTP_FAULT_STATUS_LINE);
    if (p == stop)
        return more(h, clamped, too_long);
    const char *reason = p;
    if (*p == ' ') {
        reason = ++p;
        p = skip_field_value(p, stop);
        if (p == stop)
            return more(h, clamped, too_long);
    }
    if (*p != '\r') {
        return head_fail(h,
                         *p == '\n' ? GORC__HTTP_FAULT_LINE_ENDING : GORC__HTTP_FAULT_STATUS_LINE);
    }
    r = end_start_line(h, p, stop, clamped, major, minor, out);
    if (r != 1)
        return r;
    resp->minor_version = h->minor;
    resp->status = status;
    resp->reason.p = reason;
    resp->reason.n = (size_t)(p - reason);
    return 1;
}

static int finish_response(head *h, gorc__http_response *resp)
{
    int s = resp->status;
    bool no_body = resp->head_request || s < 200 || s == 204 || s == 304;
    if (h->te) {
        if (h->minor == 0)
            return head_fail(h, GORC__HTTP_FAULT_TE_HTTP10);
        if (h->cl >= 0)
            return head_fail(h, GORC__HTTP_FAULT_CL_AND_TE);
        /* A coding we cannot undo (or chunked not last, which §6.3 would read until close)
         * leaves the client with bytes it cannot use. Without a body it does not matter. */
        if (!no_body && (!h->te_last_chunked || h->te_other))
            return head_fail(h, GORC__HTTP_FAULT_TE_UNSUPPORTED);
    }
    if (no_body)
        resp->body = GORC__HTTP_BODY_NONE;
    else if (h->te)
        resp->body = GORC__HTTP_BODY_CHUNKED;
    else if (h->cl >= 0)
        resp->body = GORC__HTTP_BODY_LENGTH;
    else
        resp->body = GORC__HTTP_BODY_CLOSE;
    resp->chunked = resp->body == GORC__HTTP_BODY_CHUNKED;
    resp->content_length = h->cl;
    resp->keep_alive =
        !h->close && (h->minor == 1 || h->keep_alive) && resp->body != GORC__HTTP_BODY_CLOSE;
    return 1;
}

static int response_head(head *h, gorc__http_response *resp, const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    int r = parse_status_line(h, resp, p, end, &p);
    if (r <= 0)
        return r;
    r = parse_fields(h, p, end, &p);
    if (r <= 0)
        return r;
    r = finish_response(h, resp);
    if (r <= 0)
        return r;
    return (int)(p - buf);
}

int gorc__http_parse_response(gorc__http_response *resp, const char *buf, size_t len,
                              size_t prev_len, const gorc__http_limits *lim)
{
    if (resp == NULL || (buf == NULL && len > 0) ||
        (resp->headers == NULL && resp->headers_cap > 0))
        return GORC__HTTP_EINVAL;
    resp->fault = GORC__HTTP_FAULT_NONE;
    if (len == 0)
        return GORC__HTTP_NEED_MORE;
    lims l;
    resolve_limits(lim, &l);
    if (!need_full_parse(buf, len, prev_len, &l))
        return GORC__HTTP_NEED_MORE;

    static const gorc__http_slice none = {NULL, 0};
    resp->num_headers = 0;
    resp->minor_version = 1;
    resp->status = 0;
    resp->reason = none;
    resp->body = GORC__HTTP_BODY_NONE;
    resp->content_length = -1;
    resp->chunked = resp->keep_alive = false;

    head h;
    head_init(&h, resp->headers, resp->headers_cap, &l, false);
    int r = response_head(&h, resp, buf, len);
    resp->num_headers = h.n;
    resp->fault = h.fault;
    return r;
}

/* ------------------------------------------------------------------------------------------
 * Chunked bodies (RFC 9112 §7.1)
 * ---------------------------------------------------------------------------------------- */

/* The decoder is a byte-at-a-time state machine outside chunk data (size lines and trailers
 * are short) and hands chunk data out in one slice, so payload is never copied. */
enum {
    CH_SIZE_FIRST, /* first hex digit of a chunk size */
    CH_SIZE,       /* more hex digits */
    CH_SIZE_WS,    /* BWS after the size */
    CH_EXT,        /* chunk extensions, up to CR */
    CH_SIZE_LF,    /* LF ending the size line */
    CH_DATA,       /* chunk data, d->remaining > 0 */
    CH_DATA_CR,    /* CR after chunk data */
    CH_DATA_LF,    /* LF after chunk data */
    CH_TR_START,   /* start of a trailer line, or CR of the final CRLF */
    CH_TR_NAME,    /* trailer field name */
    CH_TR_VALUE,   /* trailer field value, up to CR */
    CH_TR_LF,      /* LF ending a trailer line */
    CH_END_LF,     /* LF of the final CRLF */
    CH_DONE,
    CH_ERROR
};

void gorc__http_chunked_init(gorc__http_chunked *d, uint64_t max_body, const gorc__http_limits *lim)
{
    lims l;
    resolve_limits(lim, &l);
    memset(d, 0, sizeof *d);
    d->max_body = max_body;
    d->max_line = l.chunk_line;
    d->max_trailer = l.trailer;
    d->state = CH_SIZE_FIRST;
}

static COLD int chunk_fail(gorc__http_chunked *d, gorc__http_fault f, size_t at, size_t *consumed)
{
    d->state = CH_ERROR;
    d->fault = f;
    d->error = fault_error(f);
    *consumed = at;
    return d->error;
}

/* Account one more digit of the chunk size; checks overflow and the body limit as soon as
 * the size says so, before any of the chunk's data arrives. */
static inline gorc__http_fault chunk_digit(gorc__http_chunked *d, uint8_t c)
{
    if (d->size >> 59) /* size * 16 + 15 would pass INT64_MAX */
        return GORC__HTTP_FAULT_CHUNK_SIZE_OVERFLOW;
    d->size = d->size << 4 | hexval(c);
    if (d->max_body != 0 && d->size > d->max_body - d->total)
        return GORC__HTTP_FAULT_BODY_TOO_LARGE;
    return GORC__HTTP_FAULT_NONE;
}

int gorc__http_chunked_decode(gorc__http_chunked *d, const char *buf, size_t len, size_t *consumed,
                              gorc__http_slice *data)
{
    if (d == NULL || consumed == NULL || data == NULL || (buf == NULL && len > 0))
        return GORC__HTTP_EINVAL;
    data->p = NULL;
    data->n = 0;
    *consumed = 0;
    if (d->state == CH_DONE)
        return GORC__HTTP_CHUNK_DONE;
    if (d->state == CH_ERROR)
        return d->error;

    gorc__http_fault f = GORC__HTTP_FAULT_NONE;
    size_t i = 0;
    for (; i < len; i++) {
        uint8_t c = BYTE(buf + i);
        switch (d->state) {
        case CH_DATA: {
            size_t avail = len - i;
            size_t n = d->remaining < avail ? (size_t)d->remaining : avail;
            data->p = buf + i;
            data->n = n;
            d->remaining -= n;
            if (d->remaining == 0)
                d->state = CH_DATA_CR;
            *consumed = i + n;
            return GORC__HTTP_CHUNK_DATA;
        }
        case CH_SIZE_FIRST:
            if (!IS(c, C_HEX)) {
                f = c == '\n' ? GORC__HTTP_FAULT_LINE_ENDING : GORC__HTTP_FAULT_CHUNK_SIZE;
                goto fail;
            }
            d->size = 0;
            d->line = 1;
            f = chunk_digit(d, c);
            if (f != GORC__HTTP_FAULT_NONE)
                goto fail;
            d->state = CH_SIZE;
            break;
        case CH_SIZE:
        case CH_SIZE_WS:
        case CH_EXT:
            if (c == '\r') {
                d->state = CH_SIZE_LF;
                break;
            }
            if (++d->line > d->max_line) {
                f = GORC__HTTP_FAULT_CHUNK_LINE_TOO_LONG;
                goto fail;
            }
            if (d->state == CH_EXT) {
                /* chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ): only its
                 * alphabet is checked; what matters for framing is that it cannot hide a
                 * line ending (bare LF or CR, the "funky chunks" vectors). */
                if (!IS(c, C_FIELD)) {
                    f = c == '\n' ? GORC__HTTP_FAULT_LINE_ENDING : GORC__HTTP_FAULT_CHUNK_EXT;
                    goto fail;
                }
            } else if (c == ';') {
                d->state = CH_EXT;
            } else if (IS_WS(c)) {
                d->state = CH_SIZE_WS;
            } else if (d->state == CH_SIZE && IS(c, C_HEX)) {
                f = chunk_digit(d, c);
                if (f != GORC__HTTP_FAULT_NONE)
                    goto fail;
            } else {
                f = c == '\n' ? GORC__HTTP_FAULT_LINE_ENDING : GORC__HTTP_FAULT_CHUNK_SIZE;
                goto fail;
            }
            break;
        case CH_SIZE_LF:
            if (c != '\n') {
                f = GORC__HTTP_FAULT_LINE_ENDING;
                goto fail;
            }
            if (d->size == 0) {
                d->state = CH_TR_START;
                d->line = 0;
            } else {
                d->total += d->size;
                d->remaining = d->size;
                d->state = CH_DATA;
            }
            break;
        case CH_DATA_CR:
        case CH_DATA_LF:
            if (c != (d->state == CH_DATA_CR ? '\r' : '\n')) {
                f = GORC__HTTP_FAULT_CHUNK_DATA_END;
                goto fail;
            }
            d->state = d->state == CH_DATA_CR ? CH_DATA_LF : CH_SIZE_FIRST;
            break;
        default:
            /* Trailer section: field lines as in a head (same classes, no obs-fold, CRLF
             * only), validated then discarded; bounded by max_trailer_bytes. */
            if (++d->line > d->max_trailer) {
                f = GORC__HTTP_FAULT_TRAILERS_TOO_LARGE;
                goto fail;
            }
            switch (d->state) {
            case CH_TR_START:
                if (c == '\r')
                    d->state = CH_END_LF;
                else if (IS(c, C_TCHAR))
                    d->state = CH_TR_NAME;
                else
                    f = c == '\n' ? GORC__HTTP_FAULT_LINE_ENDING : GORC__HTTP_FAULT_TRAILER;
                break;
            case CH_TR_NAME:
                if (c == ':')
                    d->state = CH_TR_VALUE;
                else if (!IS(c, C_TCHAR))
                    f = GORC__HTTP_FAULT_TRAILER;
                break;
            case CH_TR_VALUE:
                if (c == '\r')
                    d->state = CH_TR_LF;
                else if (!IS(c, C_FIELD))
                    f = c == '\n' ? GORC__HTTP_FAULT_LINE_ENDING : GORC__HTTP_FAULT_TRAILER;
                break;
            case CH_TR_LF:
            case CH_END_LF:
                if (c != '\n') {
                    f = GORC__HTTP_FAULT_LINE_ENDING;
                } else if (d->state == CH_TR_LF) {
                    d->state = CH_TR_START;
                } else {
                    d->state = CH_DONE;
                    *consumed = i + 1;
                    return GORC__HTTP_CHUNK_DONE;
                }
                break;
            default:
                f = GORC__HTTP_FAULT_CHUNK_SIZE; /* unreachable: corrupted state */
                break;
            }
            if (f != GORC__HTTP_FAULT_NONE)
                goto fail;
            break;
        }
    }
    *consumed = len;
    return GORC__HTTP_NEED_MORE;
fail:
    return chunk_fail(d, f, i, consumed);
}

/* ------------------------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------------------------- */

int gorc__http_error_status(int err, const char **reason)
{
    int status;
    const char *text;
    switch (err) {
    case GORC__HTTP_EBADMSG:
        status = 400;
        text = "Bad Request";
        break;
    case GORC__HTTP_EBODY:
        status = 413;
        text = "Content Too Large";
        break;
    case GORC__HTTP_ETOOLONG:
        status = 414;
        text = "URI Too Long";
        break;
    case GORC__HTTP_EHEADERS:
        status = 431;
        text = "Request Header Fields Too Large";
        break;
    case GORC__HTTP_ENOTIMPL:
        status = 501;
        text = "Not Implemented";
        break;
    case GORC__HTTP_EVERSION:
        status = 505;
        text = "HTTP Version Not Supported";
        break;
    default:
        status = 500;
        text = "Internal Server Error";
        break;
    }
    if (reason != NULL)
        *reason = text;
    return status;
}

static const char *const fault_texts[GORC__HTTP_FAULT_COUNT] = {
    [GORC__HTTP_FAULT_NONE] = "no error",
    [GORC__HTTP_FAULT_LINE_ENDING] = "bare CR or LF",
    [GORC__HTTP_FAULT_EMPTY_LINES] = "too many empty lines before the request line",
    [GORC__HTTP_FAULT_REQUEST_LINE] = "malformed request line",
    [GORC__HTTP_FAULT_METHOD] = "invalid method",
    [GORC__HTTP_FAULT_TARGET] = "invalid request-target",
    [GORC__HTTP_FAULT_VERSION] = "malformed HTTP version",
    [GORC__HTTP_FAULT_STATUS_LINE] = "malformed status line",
    [GORC__HTTP_FAULT_HEADER_NAME] = "invalid header field name",
    [GORC__HTTP_FAULT_SPACE_BEFORE_COLON] = "whitespace before colon in header field",
    [GORC__HTTP_FAULT_OBS_FOLD] = "obsolete line folding",
    [GORC__HTTP_FAULT_HEADER_VALUE] = "control character in header field value",
    [GORC__HTTP_FAULT_CONTENT_LENGTH] = "invalid Content-Length",
    [GORC__HTTP_FAULT_CONTENT_LENGTH_DIFF] = "conflicting Content-Length values",
    [GORC__HTTP_FAULT_CL_AND_TE] = "both Content-Length and Transfer-Encoding",
    [GORC__HTTP_FAULT_TE_MALFORMED] = "malformed Transfer-Encoding",
    [GORC__HTTP_FAULT_TE_CHUNKED_TWICE] = "chunked applied more than once",
    [GORC__HTTP_FAULT_TE_NOT_CHUNKED] = "chunked is not the final transfer coding",
    [GORC__HTTP_FAULT_TE_HTTP10] = "Transfer-Encoding in an HTTP/1.0 message",
    [GORC__HTTP_FAULT_HOST_MISSING] = "missing Host",
    [GORC__HTTP_FAULT_HOST_DUPLICATE] = "duplicate Host",
    [GORC__HTTP_FAULT_HOST_INVALID] = "invalid Host",
    [GORC__HTTP_FAULT_CHUNK_SIZE] = "invalid chunk size",
    [GORC__HTTP_FAULT_CHUNK_SIZE_OVERFLOW] = "chunk size too large",
    [GORC__HTTP_FAULT_CHUNK_EXT] = "invalid chunk extension",
    [GORC__HTTP_FAULT_CHUNK_LINE_TOO_LONG] = "chunk size line too long",
    [GORC__HTTP_FAULT_CHUNK_DATA_END] = "chunk data not followed by CRLF",
    [GORC__HTTP_FAULT_TRAILER] = "malformed trailer field",
    [GORC__HTTP_FAULT_BODY_TOO_LARGE] = "body too large",
    [GORC__HTTP_FAULT_LINE_TOO_LONG] = "request line too long",
    [GORC__HTTP_FAULT_HEADERS_TOO_LARGE] = "header section too large",
    [GORC__HTTP_FAULT_TOO_MANY_HEADERS] = "too many header fields",
    [GORC__HTTP_FAULT_TRAILERS_TOO_LARGE] = "trailer section too large",
    [GORC__HTTP_FAULT_TE_UNSUPPORTED] = "unsupported transfer coding",
    [GORC__HTTP_FAULT_CONNECT] = "CONNECT not implemented",
    [GORC__HTTP_FAULT_VERSION_UNSUPPORTED] = "unsupported HTTP version",
};

const char *gorc__http_fault_text(gorc__http_fault fault)
{
    if ((unsigned)fault >= GORC__HTTP_FAULT_COUNT)
        return "unknown";
    return fault_texts[fault];
}

bool gorc__http_ieq(gorc__http_slice s, const char *b, size_t bn)
{
    if (s.n != bn)
        return false;
    for (size_t i = 0; i < bn; i++) {
        if (to_lower(BYTE(s.p + i)) != to_lower(BYTE(b + i)))
            return false;
    }
    return true;
}

const gorc__http_header *gorc__http_header_find(const gorc__http_header *hdrs, size_t n,
                                                const char *name, size_t name_len,
                                                const gorc__http_header *prev)
{
    if (hdrs == NULL)
        return NULL;
    size_t i = prev == NULL ? 0 : (size_t)(prev - hdrs) + 1;
    for (; i < n; i++) {
        if (gorc__http_ieq(hdrs[i].name, name, name_len))
            return &hdrs[i];
    }
    return NULL;
}

bool gorc__http_list_next(gorc__http_slice *rest, gorc__http_slice *elem)
{
    if (rest->n == 0)
        return false;
    const char *p = rest->p, *end = p + rest->n;
    while (p < end && (IS_WS(*p) || *p == ','))
        p++;
    if (p == end) {
        rest->p = end;
        rest->n = 0;
        return false;
    }
    const char *s = p;
    bool quoted = false;
    for (; p < end; p++) {
        if (quoted) {
            if (*p == '\\' && p + 1 < end)
                p++;
            else if (*p == '"')
                quoted = false;
        } else if (*p == '"') {
            quoted = true;
        } else if (*p == ',') {
            break;
        }
    }
    const char *e = p;
    while (e > s && IS_WS(e[-1]))
        e--;
    elem->p = s;
    elem->n = (size_t)(e - s);
    if (p < end)
        p++;
    rest->p = p;
    rest->n = (size_t)(end - p);
    return true;
}
