/*
 * test_websocket.c - WebSocket (RFC 6455): the frame codec alone, then a gorc server and
 * client against each other, then a raw client sending exact bytes for every protocol
 * violation, each of which must get the close code RFC 6455 prescribes and leak nothing.
 * Independent implementations (Python's websockets, Chromium) are in tests/e2e/ws-e2e.
 */
#include "http_testutil.h"

#include <gorc_websocket.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <unistd.h>

#include "websocket/frame.h"

/* ------------------------------------------------------------------------------------------
 * The codec
 * ---------------------------------------------------------------------------------------- */

static int fhdr(const char *bytes, size_t n, bool expect_mask)
{
    gorc__ws_frame f;
    return gorc__ws_parse_header((const uint8_t *)bytes, n, expect_mask, 0, &f);
}

static bool utf8(const char *s, size_t n, size_t split)
{
    gorc__ws_utf8 u = {0};
    return gorc__ws_utf8_feed(&u, (const uint8_t *)s, split) &&
           gorc__ws_utf8_feed(&u, (const uint8_t *)s + split, n - split) && gorc__ws_utf8_done(&u);
}

static void test_codec(void **state)
{
    (void)state;
    char acc[29];
    gorc__ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, acc); /* RFC 6455 §1.3's example */
    assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    gorc__ws_frame f;
    /* A masked "Hello" from RFC 6455 §5.7. */
    const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    assert_int_equal(gorc__ws_parse_header(hello, sizeof hello, true, 0, &f), 6);
    assert_true(f.fin && f.op == 1 && f.len == 5 && f.masked);
    uint8_t pl[5], pos = 0;
    memcpy(pl, hello + 6, 5);
    gorc__ws_mask(pl, 5, f.key, &pos);
    assert_memory_equal(pl, "Hello", 5);
    for (size_t n = 0; n < 6; n++) /* every prefix asks for more */
        assert_int_equal(gorc__ws_parse_header(hello, n, true, 0, &f), 0);
    assert_int_equal(fhdr("\x81\x05", 2, true), -1002); /* unmasked client frame */
    assert_int_equal(fhdr("\x81\x85"
                          "abcd",
                          6, false),
                     -1002);                                     /* masked server frame */
    assert_int_equal(fhdr("\xc1\x00", 2, false), -1002);         /* RSV1 */
    assert_int_equal(fhdr("\x83\x00", 2, false), -1002);         /* reserved opcode 3 */
    assert_int_equal(fhdr("\x8b\x00", 2, false), -1002);         /* reserved opcode 0xB */
    assert_int_equal(fhdr("\x09\x00", 2, false), -1002);         /* fragmented ping */
    assert_int_equal(fhdr("\x89\x7e\x00\x7e", 4, false), -1002); /* 126-byte ping */
    assert_int_equal(fhdr("\x82\x7e\x00\x05", 4, false), -1002); /* non-minimal 16-bit */
    assert_int_equal(fhdr("\x82\x7f\x00\x00\x00\x00\x00\x00\xff\xff", 10, false), -1002);
    assert_int_equal(fhdr("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", 10, false), -1002);
    assert_int_equal(fhdr("\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10, false), 10);
    uint8_t out[14];
    for (uint64_t len = 0; len < 70000; len += len < 130 ? 1 : 997) {
        size_t hn = gorc__ws_put_header(out, 2, true, len, (const uint8_t *)"wxyz");
        assert_int_equal(gorc__ws_parse_header(out, hn, true, 0, &f), (int)hn);
        assert_true(f.len == len && f.op == 2 && f.fin);
    }
    /* UTF-8: valid text split at every point; each kind of invalid sequence. */
    const char *ok = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xed\x9f\xbf\xf4\x8f\xbf\xbfz";
    for (size_t i = 0; i <= strlen(ok); i++)
        assert_true(utf8(ok, strlen(ok), i));
    const char *bad[] = {"\xc0\xaf",         "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                         "\xf5\x80\x80\x80", "\x80",         "\xc3",         "\xe2\x82",
                         "\xc3\x28"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        for (size_t j = 0; j <= strlen(bad[i]); j++)
            assert_false(utf8(bad[i], strlen(bad[i]), j));
    int code;
    assert_int_equal(gorc__ws_parse_close((const uint8_t *)"", 0, &code), 0);
    assert_int_equal(code, 1005);
    assert_int_equal(gorc__ws_parse_close((const uint8_t *)"\x03", 1, &code), -1002);
    assert_int_equal(gorc__ws_parse_close((const uint8_t *)"\x03\xed", 2, &code), -1002);
    assert_int_equal(gorc__ws_parse_close((const uint8_t *)"\x03\xe8\xff", 3, &code), -1007);
    assert_int_equal(gorc__ws_parse_close((const uint8_t *)"\x0f\xa0ok", 4, &code), 0);
    assert_int_equal(code, 4000);
}

/* ------------------------------------------------------------------------------------------
 * A server: /echo echoes messages (subprotocols "chat" then "superchat"), /small has 1 KiB
 * limits, /idle reads with a short keep-alive, /ctx reads with a context that is cancelled.
 * Every handler records what its last read returned and what the peer's close said.
 * ---------------------------------------------------------------------------------------- */

static _Atomic int last_err, last_code, upgrades, handlers_done;
static const char *const server_protos[] = {"chat", "superchat", NULL};

static void echo_loop(gorc_ws *ws)
{
    for (;;) {
        int type;
        char *m;
        ssize_t n = gorc_ws_read_message(ws, &type, &m, NULL);
        if (n < 0) {
            atomic_store(&last_err, (int)n);
            break;
        }
        gorc_ws_write_message(ws, type, m, (size_t)n, NULL);
        free(m);
    }
    atomic_store(&last_code, gorc_ws_close_status(ws, NULL, 0));
}

static void h_ws(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    gorc_ws_opts o = {.subprotocols = server_protos};
    char path[64];
    snprintf(path, sizeof path, "%s", r->path); /* r's strings die at the upgrade */
    if (strcmp(path, "/small") == 0)
        o.max_message = 1024;
    if (strcmp(path, "/idle") == 0) {
        o.ping_interval = 50 * GORC_MILLISECOND;
        o.pong_timeout = 100 * GORC_MILLISECOND;
    }
    gorc_ws *ws;
    int rc = gorc_ws_upgrade(&ws, w, r, &o);
    if (rc < 0) {
        atomic_store(&last_err, rc);
        atomic_fetch_add(&handlers_done, 1);
        return;
    }
    atomic_fetch_add(&upgrades, 1);
    if (strcmp(path, "/ctx") == 0) {
        gorc_ctx *ctx;
        CHECK_EQ(gorc_ctx_with_timeout(&ctx, gorc_ctx_background(), 50 * GORC_MILLISECOND, 0), 0);
        int type;
        char *m;
        atomic_store(&last_err, (int)gorc_ws_read_message(ws, &type, &m, ctx));
        gorc_ctx_release(ctx);
        /* The connection still works after the cancelled read. */
        ssize_t n = gorc_ws_read_message(ws, &type, &m, NULL);
        if (n >= 0) {
            gorc_ws_write_message(ws, type, m, (size_t)n, NULL);
            free(m);
        }
    } else {
        echo_loop(ws);
    }
    gorc_ws_close(ws, 0, NULL);
    atomic_fetch_add(&handlers_done, 1);
}

static void wait_handlers(int n)
{
    int64_t end = gorc_now() + 10 * GORC_SECOND;
    while (atomic_load(&handlers_done) < n) {
        CHECK(gorc_now() < end);
        gorc_sleep(GORC_MILLISECOND);
    }
}

static void start(fixture *f)
{
    gorc_http_server_opts o = {.handler = h_ws};
    fixture_start_opts(f, &o);
    atomic_store(&handlers_done, 0);
    atomic_store(&upgrades, 0);
}

static char *url(const fixture *f, const char *path)
{
    static char u[256];
    snprintf(u, sizeof u, "ws://%s%s", f->addr, path);
    return u;
}

/* ------------------------------------------------------------------------------------------
 * gorc client against gorc server
 * ---------------------------------------------------------------------------------------- */

static void roundtrip(gorc_ws *c, int type, const char *p, size_t n)
{
    CHECK_EQ(gorc_ws_write_message(c, type, p, n, NULL), 0);
    int t;
    char *m;
    CHECK_EQ(gorc_ws_read_message(c, &t, &m, NULL), (long)n);
    CHECK_EQ(t, type);
    CHECK(memcmp(m, p, n) == 0);
    free(m);
}

GO_TEST(test_echo)
{
    uint64_t mark = gorc_leak_mark();
    fixture f;
    start(&f);
    const char *const offer[] = {"superchat", "chat", NULL};
    gorc_ws_opts o = {.subprotocols = offer};
    gorc_ws *c;
    CHECK_EQ(gorc_ws_dial(&c, url(&f, "/echo"), &o, NULL), 0);
    CHECK(strcmp(gorc_ws_subprotocol(c), "chat") == 0); /* the server's preference wins */
    size_t big = 1 << 20;
    char *p = malloc(big);
    for (size_t i = 0; i < big; i++)
        p[i] = (char)('a' + i % 26);
    size_t sizes[] = {0, 1, 125, 126, 127, 4095, 4096, 65535, 65536, 100000, big};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        roundtrip(c, GORC_WS_TEXT, p, sizes[i]);
        roundtrip(c, GORC_WS_BINARY, p, sizes[i]);
    }
    roundtrip(c, GORC_WS_TEXT, "h\xc3\xa9llo \xf0\x9f\x98\x80", 11);
    /* A fragmented message with pings between fragments comes back whole. */
    CHECK_EQ(gorc_ws_write_fragment(c, GORC_WS_TEXT, "frag", 4, false, NULL), 0);
    CHECK_EQ(gorc_ws_ping(c, "p", 1), 0);
    CHECK_EQ(gorc_ws_write_message(c, GORC_WS_TEXT, "x", 1, NULL), -EBUSY);
    CHECK_EQ(gorc_ws_write_fragment(c, 0, "men", 3, false, NULL), 0);
    CHECK_EQ(gorc_ws_write_fragment(c, 0, "ted", 3, true, NULL), 0);
    int t;
    char *m;
    CHECK_EQ(gorc_ws_read_message(c, &t, &m, NULL), 10);
    CHECK(strcmp(m, "fragmented") == 0);
    free(m);
    /* A batch: 100 messages in one call arrive as 100 messages, in order. */
    struct iovec iov[100];
    char bufs[100][16];
    for (int i = 0; i < 100; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = (size_t)snprintf(bufs[i], sizeof bufs[i], "msg %d", i);
    }
    CHECK_EQ(gorc_ws_write_messages(c, GORC_WS_TEXT, iov, 100, NULL), 0);
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(gorc_ws_read_message(c, &t, &m, NULL), (long)iov[i].iov_len);
        CHECK(memcmp(m, bufs[i], iov[i].iov_len) == 0);
        free(m);
    }
    /* Streaming read of a large message in small pieces. */
    CHECK_EQ(gorc_ws_write_message(c, GORC_WS_BINARY, p, 300000, NULL), 0);
    CHECK_EQ(gorc_ws_next_message(c, &t, NULL), 0);
    size_t got = 0;
    char piece[777];
    ssize_t k;
    while ((k = gorc_ws_read(c, piece, sizeof piece, NULL)) > 0) {
        CHECK(memcmp(piece, p + got, (size_t)k) == 0);
        got += (size_t)k;
    }
    CHECK_EQ(k, 0);
    CHECK_EQ(got, 300000);
    CHECK_EQ(gorc_ws_close(c, 4001, "bye"), 0);
    wait_handlers(1);
    CHECK_EQ(atomic_load(&last_err), GORC_WS_ECLOSED);
    CHECK_EQ(atomic_load(&last_code), 4001);
    free(p);
    fixture_stop(&f);
    CHECK_EQ(gorc_leak_check(mark, 5 * GORC_SECOND), 0);
}

/* ------------------------------------------------------------------------------------------
 * A raw client: exact bytes on the wire
 * ---------------------------------------------------------------------------------------- */

/* Send a request head and read the response head (returned malloc'd). */
static char *raw_request(gorc_conn *c, const char *head)
{
    CHECK_EQ(gorc_conn_write_all(c, head, strlen(head)), (long)strlen(head));
    char *b = calloc(1, 4096);
    size_t n = 0;
    while (!strstr(b, "\r\n\r\n")) {
        CHECK(n < 4095);
        ssize_t k = gorc_conn_read(c, b + n, 1); /* byte by byte: leave frames unread */
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    return b;
}

#define UPGRADE_HEAD(path, extra)                                                                  \
    "GET " path " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"            \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" extra "\r\n"

static gorc_conn *raw_open(fixture *f, const char *path)
{
    gorc_conn *c;
    CHECK_EQ(gorc_tcp_dial(&c, f->addr, GORC_SECOND), 0);
    char head[512];
    snprintf(head, sizeof head, UPGRADE_HEAD("%s", ""), path);
    char *rsp = raw_request(c, head);
    CHECK(strncmp(rsp, "HTTP/1.1 101 ", 13) == 0);
    CHECK(strstr(rsp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != NULL);
    free(rsp);
    gorc_conn_set_deadline(c, gorc_now() + 10 * GORC_SECOND);
    return c;
}

/* Send one frame: b0 is FIN/RSV/opcode; masked or not; len as given (minimal encoding). */
static void raw_frame(gorc_conn *c, int b0, bool masked, const void *p, size_t n)
{
    uint8_t h[14];
    const uint8_t key[4] = {1, 2, 3, 4};
    size_t hn = gorc__ws_put_header(h, 0, false, n, masked ? key : NULL);
    h[0] = (uint8_t)b0;
    uint8_t *pl = malloc(n + 1);
    memcpy(pl, p, n);
    uint8_t pos = 0;
    if (masked)
        gorc__ws_mask(pl, n, key, &pos);
    CHECK_EQ(gorc_conn_write_all(c, h, hn), (long)hn);
    if (n)
        CHECK_EQ(gorc_conn_write_all(c, pl, n), (long)n);
    free(pl);
}

/* Read one server frame; returns its opcode, payload in p (up to cap), length in *n. */
static int raw_read(gorc_conn *c, uint8_t *p, size_t cap, size_t *n)
{
    uint8_t h[10];
    if (gorc_conn_read_full(c, h, 2) != 2)
        return -1;
    CHECK((h[1] & 0x80) == 0); /* servers never mask */
    size_t len = h[1] & 0x7f;
    if (len == 126) {
        CHECK_EQ(gorc_conn_read_full(c, h + 2, 2), 2);
        len = (size_t)h[2] << 8 | h[3];
    } else if (len == 127) {
        CHECK_EQ(gorc_conn_read_full(c, h + 2, 8), 8);
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
    }
    CHECK(len <= cap);
    if (len)
        CHECK_EQ(gorc_conn_read_full(c, p, len), (long)len);
    *n = len;
    return h[0] & 0x0f;
}

/* The close code of the server's next close frame (skipping other frames), then the
 * server must end the stream. */
static int raw_close_code(gorc_conn *c)
{
    size_t cap = 70000, n;
    uint8_t *p = malloc(cap); /* not on the stack: goroutine stacks are 64 KiB */
    int op;
    while ((op = raw_read(c, p, cap, &n)) >= 0 && op != 8) {
    }
    CHECK_EQ(op, 8);
    CHECK(n >= 2);
    char x;
    CHECK_EQ(gorc_conn_read(c, &x, 1), 0); /* the server shut its side down */
    int code = p[0] << 8 | p[1];
    free(p);
    return code;
}

typedef struct violation {
    const char *name;
    const char *path;
    int code; /* the close code expected */
    int err;  /* what the server's read returns */
    void (*send)(gorc_conn *c);
} violation;

static void v_unmasked(gorc_conn *c)
{
    raw_frame(c, 0x81, false, "hi", 2);
}
static void v_rsv1(gorc_conn *c)
{
    raw_frame(c, 0xc1, true, "hi", 2);
}
static void v_rsv3(gorc_conn *c)
{
    raw_frame(c, 0x91, true, "hi", 2);
}
static void v_opcode(gorc_conn *c)
{
    raw_frame(c, 0x83, true, "hi", 2);
}
static void v_ctl_opcode(gorc_conn *c)
{
    raw_frame(c, 0x8c, true, "", 0);
}
static void v_big_ping(gorc_conn *c)
{
    char p[126] = {0};
    raw_frame(c, 0x89, true, p, sizeof p);
}
static void v_frag_ping(gorc_conn *c)
{
    raw_frame(c, 0x09, true, "x", 1);
}
static void v_bad_utf8(gorc_conn *c)
{
    raw_frame(c, 0x81, true, "ok\xc0\xaf", 4);
}
static void v_bad_utf8_split(gorc_conn *c)
{
    raw_frame(c, 0x01, true, "caf\xc3", 4); /* valid so far: the sequence continues */
    raw_frame(c, 0x80, true, "(", 1);       /* ...with a byte that is no continuation */
}
static void v_truncated_utf8(gorc_conn *c)
{
    raw_frame(c, 0x81, true, "caf\xc3", 4);
}
static void v_cont_alone(gorc_conn *c)
{
    raw_frame(c, 0x80, true, "x", 1);
}
static void v_interleaved(gorc_conn *c)
{
    raw_frame(c, 0x01, true, "part", 4);
    raw_frame(c, 0x81, true, "new", 3); /* a new message inside a fragmented one */
}
static void v_nonminimal(gorc_conn *c)
{
    const uint8_t h[] = {0x82, 0xfe, 0x00, 0x03, 1, 2, 3, 4, 'a' ^ 1, 'b' ^ 2, 'c' ^ 3};
    gorc_conn_write_all(c, h, sizeof h);
}
static void v_too_big(gorc_conn *c)
{
    char p[2000] = {0};
    raw_frame(c, 0x82, true, p, sizeof p); /* /small allows 1 KiB */
}
static void v_too_big_frags(gorc_conn *c)
{
    char p[600] = {0};
    raw_frame(c, 0x02, true, p, sizeof p);
    raw_frame(c, 0x80, true, p, sizeof p); /* each frame fits, the message does not */
}
static void v_close_1byte(gorc_conn *c)
{
    raw_frame(c, 0x88, true, "\x03", 1);
}
static void v_close_badcode(gorc_conn *c)
{
    raw_frame(c, 0x88, true, "\x03\xed", 2);
}
static void v_close_badreason(gorc_conn *c)
{
    raw_frame(c, 0x88, true, "\x03\xe8\xff", 3);
}

static const violation violations[] = {
    {"unmasked client frame", "/echo", 1002, GORC_WS_EPROTO, v_unmasked},
    {"RSV1 without an extension", "/echo", 1002, GORC_WS_EPROTO, v_rsv1},
    {"RSV3", "/echo", 1002, GORC_WS_EPROTO, v_rsv3},
    {"reserved data opcode", "/echo", 1002, GORC_WS_EPROTO, v_opcode},
    {"reserved control opcode", "/echo", 1002, GORC_WS_EPROTO, v_ctl_opcode},
    {"126-byte ping", "/echo", 1002, GORC_WS_EPROTO, v_big_ping},
    {"fragmented ping", "/echo", 1002, GORC_WS_EPROTO, v_frag_ping},
    {"invalid UTF-8", "/echo", 1007, GORC_WS_EBADDATA, v_bad_utf8},
    {"invalid UTF-8 across fragments", "/echo", 1007, GORC_WS_EBADDATA, v_bad_utf8_split},
    {"UTF-8 cut at the message end", "/echo", 1007, GORC_WS_EBADDATA, v_truncated_utf8},
    {"continuation without a message", "/echo", 1002, GORC_WS_EPROTO, v_cont_alone},
    {"interleaved messages", "/echo", 1002, GORC_WS_EPROTO, v_interleaved},
    {"non-minimal length", "/echo", 1002, GORC_WS_EPROTO, v_nonminimal},
    {"frame over the limit", "/small", 1009, GORC_WS_ETOOBIG, v_too_big},
    {"message over the limit", "/small", 1009, GORC_WS_ETOOBIG, v_too_big_frags},
    {"one-byte close payload", "/echo", 1002, GORC_WS_EPROTO, v_close_1byte},
    {"close code 1005 sent", "/echo", 1002, GORC_WS_EPROTO, v_close_badcode},
    {"close reason not UTF-8", "/echo", 1007, GORC_WS_EBADDATA, v_close_badreason},
};

GO_TEST(test_violations)
{
    uint64_t mark = gorc_leak_mark();
    fixture f;
    start(&f);
    int n = (int)(sizeof violations / sizeof violations[0]);
    for (int i = 0; i < n; i++) {
        const violation *v = &violations[i];
        gorc_conn *c = raw_open(&f, v->path);
        /* A good message first: the violation comes mid-stream. */
        raw_frame(c, 0x81, true, "ok", 2);
        uint8_t p[16];
        size_t len;
        CHECK_EQ(raw_read(c, p, sizeof p, &len), 1);
        if (strcmp(v->path, "/small") == 0) { /* the limit is per message, not cumulative */
            char big[1000];
            memset(big, 'b', sizeof big);
            uint8_t echo[1000];
            for (int j = 0; j < 3; j++) {
                raw_frame(c, 0x82, true, big, sizeof big);
                CHECK_EQ(raw_read(c, echo, sizeof echo, &len), 2);
                CHECK_EQ(len, sizeof big);
            }
        }
        v->send(c);
        int code = raw_close_code(c);
        if (code != v->code)
            fprintf(stderr, "%s: close code %d, want %d\n", v->name, code, v->code);
        CHECK_EQ(code, v->code);
        gorc_conn_close(c);
        wait_handlers(i + 1);
        if (atomic_load(&last_err) != v->err)
            fprintf(stderr, "%s: read returned %d, want %d\n", v->name, last_err, v->err);
        CHECK_EQ(atomic_load(&last_err), v->err);
    }
    /* Abrupt close: the stream ends without a close frame (1006 on the server's side). */
    gorc_conn *c = raw_open(&f, "/echo");
    raw_frame(c, 0x01, true, "half", 4);
    gorc_conn_close(c);
    wait_handlers(n + 1);
    CHECK_EQ(atomic_load(&last_err), GORC_EUNEXPECTEDEOF);
    CHECK_EQ(atomic_load(&last_code), GORC_WS_CLOSE_ABNORMAL);
    /* A proper close: the server echoes the code. */
    c = raw_open(&f, "/echo");
    raw_frame(c, 0x88, true,
              "\x0f\xa0"
              "done",
              6);
    uint8_t p[64];
    size_t len;
    CHECK_EQ(raw_read(c, p, sizeof p, &len), 8);
    CHECK(len == 2 && (p[0] << 8 | p[1]) == 4000);
    gorc_conn_close(c);
    wait_handlers(n + 2);
    CHECK_EQ(atomic_load(&last_err), GORC_WS_ECLOSED);
    CHECK_EQ(atomic_load(&last_code), 4000);
    /* A ping gets its pong with the same payload, even inside a fragmented message. */
    c = raw_open(&f, "/echo");
    raw_frame(c, 0x01, true, "ab", 2);
    raw_frame(c, 0x89, true, "pp", 2);
    CHECK_EQ(raw_read(c, p, sizeof p, &len), 10);
    CHECK(len == 2 && memcmp(p, "pp", 2) == 0);
    raw_frame(c, 0x80, true, "cd", 2);
    CHECK_EQ(raw_read(c, p, sizeof p, &len), 1);
    CHECK(len == 4 && memcmp(p, "abcd", 4) == 0);
    gorc_conn_close(c);
    wait_handlers(n + 3);
    fixture_stop(&f);
    CHECK_EQ(gorc_leak_check(mark, 5 * GORC_SECOND), 0);
}

/* ------------------------------------------------------------------------------------------
 * Handshakes that fail
 * ---------------------------------------------------------------------------------------- */

static int status_of(fixture *f, const char *head)
{
    gorc_conn *c;
    CHECK_EQ(gorc_tcp_dial(&c, f->addr, GORC_SECOND), 0);
    char *rsp = raw_request(c, head);
    int st = atoi(rsp + 9);
    if (st == 426)
        CHECK(strstr(rsp, "Sec-WebSocket-Version: 13\r\n") != NULL);
    free(rsp);
    gorc_conn_close(c);
    return st;
}

static void h_plain(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)r;
    (void)arg;
    gorc_http_error(w, 404, "no websocket here");
}

GO_TEST(test_handshake_errors)
{
    uint64_t mark = gorc_leak_mark();
    fixture f;
    start(&f);
    CHECK_EQ(status_of(&f, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    CHECK_EQ(status_of(&f, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"), 405);
    CHECK_EQ(status_of(&f, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
                           "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 8\r\n\r\n"),
             426);
    CHECK_EQ(status_of(&f, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
                           "Upgrade\r\nSec-WebSocket-Key: short\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n"),
             400);
    CHECK_EQ(status_of(&f, UPGRADE_HEAD("/", "Origin: http://evil.example\r\n")), 403);
    CHECK_EQ(status_of(&f, UPGRADE_HEAD("/", "Origin: http://x\r\n")), 101);
    wait_handlers(6);
    CHECK_EQ(atomic_load(&upgrades), 1);
    /* Client side: bad URLs, a scheme it cannot dial, a server that does not upgrade. */
    gorc_ws *ws;
    CHECK_EQ(gorc_ws_dial(&ws, "http://127.0.0.1:1/", NULL, NULL), -EPROTONOSUPPORT);
    CHECK_EQ(gorc_ws_dial(&ws, "wss://127.0.0.1:1/", NULL, NULL), -EPROTONOSUPPORT);
    CHECK_EQ(gorc_ws_dial(&ws, "ws://", NULL, NULL), -EINVAL);
    CHECK_EQ(gorc_ws_dial(&ws, "ws://a b/", NULL, NULL), -EINVAL);
    CHECK_EQ(gorc_ws_dial(NULL, "ws://x/", NULL, NULL), -EINVAL);
    fixture g;
    gorc_http_server_opts po = {.handler = h_plain};
    fixture_start_opts(&g, &po);
    CHECK_EQ(gorc_ws_dial(&ws, url(&g, "/"), NULL, NULL), GORC_WS_EHANDSHAKE);
    /* A subprotocol the client did not offer is refused by the client. */
    const char *const other[] = {"other", NULL};
    gorc_ws_opts o = {.subprotocols = other};
    CHECK_EQ(gorc_ws_dial(&ws, url(&f, "/echo"), &o, NULL), 0);
    CHECK(strcmp(gorc_ws_subprotocol(ws), "") == 0); /* nothing in common: none chosen */
    CHECK_EQ(gorc_ws_close(ws, 1000, NULL), 0);
    fixture_stop(&g);
    wait_handlers(7);
    fixture_stop(&f);
    CHECK_EQ(gorc_leak_check(mark, 5 * GORC_SECOND), 0);
}

/* ------------------------------------------------------------------------------------------
 * Deadlines, contexts, keep-alive, EMFILE
 * ---------------------------------------------------------------------------------------- */

GO_TEST(test_deadlines)
{
    uint64_t mark = gorc_leak_mark();
    fixture f;
    start(&f);
    gorc_ws *c;
    CHECK_EQ(gorc_ws_dial(&c, url(&f, "/echo"), NULL, NULL), 0);
    /* A read deadline fails the read, and the connection works after it is moved. */
    CHECK_EQ(gorc_ws_set_read_deadline(c, gorc_now() + 30 * GORC_MILLISECOND), 0);
    int t;
    char *m;
    CHECK_EQ(gorc_ws_read_message(c, &t, &m, NULL), -ETIMEDOUT);
    CHECK_EQ(gorc_ws_set_read_deadline(c, 0), 0);
    roundtrip(c, GORC_WS_TEXT, "after", 5);
    /* A context cancelled while the read waits. */
    gorc_ctx *ctx;
    CHECK_EQ(gorc_ctx_with_timeout(&ctx, gorc_ctx_background(), 30 * GORC_MILLISECOND, 0), 0);
    CHECK_EQ(gorc_ws_read_message(c, &t, &m, ctx), -ETIMEDOUT);
    gorc_ctx *cc;
    CHECK_EQ(gorc_ctx_with_cancel(&cc, gorc_ctx_background()), 0);
    gorc_ctx_cancel(cc);
    CHECK_EQ(gorc_ws_read_message(c, &t, &m, cc), -ECANCELED);
    CHECK_EQ(gorc_ws_write_message(c, GORC_WS_TEXT, "x", 1, cc), -ECANCELED);
    gorc_ctx_release(ctx);
    gorc_ctx_release(cc);
    roundtrip(c, GORC_WS_TEXT, "still", 5);
    CHECK_EQ(gorc_ws_close(c, 0, NULL), 0);
    /* The server side's read with a context (/ctx): cancelled, then it still echoes. */
    CHECK_EQ(gorc_ws_dial(&c, url(&f, "/ctx"), NULL, NULL), 0);
    gorc_sleep(100 * GORC_MILLISECOND);
    roundtrip(c, GORC_WS_BINARY, "ctx", 3);
    CHECK_EQ(gorc_ws_close(c, 0, NULL), 0);
    wait_handlers(2);
    /* Keep-alive (/idle: ping every 50 ms, 100 ms for the answer). A gorc client that reads
     * answers the pings, and the connection outlives many intervals. */
    CHECK_EQ(gorc_ws_dial(&c, url(&f, "/idle"), NULL, NULL), 0);
    CHECK_EQ(gorc_ws_set_read_deadline(c, gorc_now() + 500 * GORC_MILLISECOND), 0);
    CHECK_EQ(gorc_ws_read_message(c, &t, &m, NULL), -ETIMEDOUT); /* the pings were answered */
    CHECK_EQ(gorc_ws_set_read_deadline(c, 0), 0);
    roundtrip(c, GORC_WS_TEXT, "alive", 5);
    CHECK_EQ(gorc_ws_close(c, 0, NULL), 0);
    wait_handlers(3);
    /* A peer that never answers: the server's read gives up after ping + pong timeout. */
    gorc_conn *raw = raw_open(&f, "/idle");
    int64_t t0 = gorc_now();
    wait_handlers(4);
    CHECK_EQ(atomic_load(&last_err), -ETIMEDOUT);
    CHECK(gorc_now() - t0 >= 100 * GORC_MILLISECOND);
    uint8_t p[8];
    size_t len;
    CHECK_EQ(raw_read(raw, p, sizeof p, &len), 9); /* it did ping */
    gorc_conn_close(raw);
    fixture_stop(&f);
    CHECK_EQ(gorc_leak_check(mark, 5 * GORC_SECOND), 0);
}

typedef struct dialer {
    gorc_conn *c;
    const char *url;
    int rc;
    gorc_ws *ws;
    gorc_chan *done;
} dialer;

static void dial_on(void *arg)
{
    dialer *d = arg;
    gorc_ws_opts o = {.handshake_timeout = 10 * GORC_SECOND};
    d->rc = gorc_ws_client(&d->ws, d->c, d->url, &o, NULL);
    int one = 1;
    gorc_chan_send(d->done, &one);
}

GO_TEST(test_emfile)
{
    uint64_t mark = gorc_leak_mark();
    fixture f;
    start(&f);
    /* The server cannot accept (no descriptor left) while a client waits in its handshake;
     * once descriptors are free again, the upgrade completes. */
    dialer d = {.url = url(&f, "/echo")};
    CHECK_EQ(gorc_chan_new(&d.done, sizeof(int), 1), 0);
    int fds[4096], nfd = 0;
    while (nfd < 4096) {
        int x = dup(0);
        if (x < 0)
            break;
        fds[nfd++] = x;
    }
    CHECK(nfd < 4096); /* the limit was reached */
    gorc_ws *ws;
    CHECK_EQ(gorc_ws_dial(&ws, url(&f, "/echo"), NULL, NULL), -EMFILE);
    close(fds[--nfd]); /* one descriptor for the client's socket, none for the server's */
    CHECK_EQ(gorc_tcp_dial(&d.c, f.addr, GORC_SECOND), 0);
    CHECK_EQ(gorc_go(dial_on, &d), 0);
    gorc_sleep(50 * GORC_MILLISECOND);
    int one;
    CHECK_EQ(gorc_chan_tryrecv(d.done, &one), GORC_EAGAIN); /* still waiting */
    while (nfd > 0)
        close(fds[--nfd]);
    CHECK_EQ(gorc_chan_recv(d.done, &one), 0);
    CHECK_EQ(d.rc, 0);
    roundtrip(d.ws, GORC_WS_TEXT, "emfile", 6);
    CHECK_EQ(gorc_ws_close(d.ws, 0, NULL), 0);
    gorc_chan_release(d.done);
    wait_handlers(1);
    fixture_stop(&f);
    CHECK_EQ(gorc_leak_check(mark, 5 * GORC_SECOND), 0);
}

int main(void)
{
    /* test_emfile exhausts descriptors: keep the limit small enough to do it quickly. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur > 1024) {
        rl.rlim_cur = 1024;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec),      cmocka_unit_test(test_echo),
        cmocka_unit_test(test_violations), cmocka_unit_test(test_handshake_errors),
        cmocka_unit_test(test_deadlines),  cmocka_unit_test(test_emfile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
