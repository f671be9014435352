/*
 * test_wsdeflate.c - permessage-deflate (libgorc_wsdeflate) through the core's extension hook:
 * the negotiation of RFC 7692 §7.1 on the extension's own functions, a gorc client and server
 * both compressing, and a raw client that compresses with zlib itself and inflates what the
 * server sends, so the test sees RSV1 and the bytes on the wire. Violations get their close
 * codes: RSV1 on a continuation (1002), data that does not inflate (1007), a message that
 * inflates past the limit (1009). Python's websockets and Chromium, which both offer
 * permessage-deflate, are in tests/e2e/ws-e2e.
 */
#include "http_testutil.h"

#include <gorc_websocket.h>
#include <stdatomic.h>
#include <gorc_wsdeflate.h>
#include <zlib.h>

#include "websocket/frame.h"

/* ------------------------------------------------------------------------------------------
 * Negotiation
 * ---------------------------------------------------------------------------------------- */

static int offer(gorc_ws_extension *x, const char *params, char *rsp)
{
    void *st = NULL;
    int r = x->accept(x->arg, params, rsp, 256, &st);
    if (st)
        x->free(st);
    return r;
}

static void test_negotiation(void **state)
{
    (void)state;
    gorc_ws_extension *x;
    assert_int_equal(gorc_wsdeflate_new(&x, NULL), 0);
    assert_string_equal(x->name, "permessage-deflate");
    char rsp[256];
    assert_int_equal(offer(x, "", rsp), 1);
    assert_string_equal(rsp, "");
    assert_int_equal(offer(x, "client_max_window_bits", rsp), 1);
    assert_string_equal(rsp, "");
    assert_int_equal(offer(x, "server_no_context_takeover; client_no_context_takeover", rsp), 1);
    assert_string_equal(rsp, "server_no_context_takeover; client_no_context_takeover");
    assert_int_equal(offer(x, "server_max_window_bits=10", rsp), 1);
    assert_string_equal(rsp, "server_max_window_bits=10");
    assert_int_equal(offer(x, "server_max_window_bits=\"12\"", rsp), 1);
    assert_string_equal(rsp, "server_max_window_bits=12");
    /* Declined: zlib cannot keep to an 8-bit window; unknown, repeated or bad parameters. */
    assert_int_equal(offer(x, "server_max_window_bits=8", rsp), 0);
    assert_int_equal(offer(x, "x_unknown", rsp), 0);
    assert_int_equal(offer(x, "server_no_context_takeover; server_no_context_takeover", rsp), 0);
    assert_int_equal(offer(x, "server_max_window_bits=16", rsp), 0);
    assert_int_equal(offer(x, "server_max_window_bits", rsp), 0);
    assert_int_equal(offer(x, "server_no_context_takeover=1", rsp), 0);
    /* The client's side. */
    char buf[256];
    assert_int_equal(x->offer(x->arg, buf, sizeof buf), 0);
    assert_string_equal(buf, "client_max_window_bits");
    void *st = NULL;
    assert_int_equal(
        x->confirm(x->arg, "client_max_window_bits=10; server_no_context_takeover", &st), 0);
    x->free(st);
    assert_true(x->confirm(x->arg, "client_max_window_bits=8", &st) < 0);
    assert_true(x->confirm(x->arg, "client_max_window_bits", &st) < 0); /* needs a value */
    assert_true(x->confirm(x->arg, "bogus", &st) < 0);
    gorc_wsdeflate_free(x);
    gorc_wsdeflate_opts o = {.no_context_takeover = true, .peer_no_context_takeover = true};
    assert_int_equal(gorc_wsdeflate_new(&x, &o), 0);
    assert_int_equal(offer(x, "", rsp), 1);
    assert_string_equal(rsp, "server_no_context_takeover; client_no_context_takeover");
    assert_int_equal(x->offer(x->arg, buf, sizeof buf), 0);
    assert_string_equal(
        buf, "client_max_window_bits; client_no_context_takeover; server_no_context_takeover");
    gorc_wsdeflate_free(x);
    gorc_wsdeflate_opts bad = {.max_window_bits = 8};
    assert_int_equal(gorc_wsdeflate_new(&x, &bad), -EINVAL);
    bad.max_window_bits = 0;
    bad.level = 10;
    assert_int_equal(gorc_wsdeflate_new(&x, &bad), -EINVAL);
    assert_int_equal(gorc_wsdeflate_new(NULL, NULL), -EINVAL);
}

/* ------------------------------------------------------------------------------------------
 * A server that echoes with permessage-deflate (/echo: context takeover; /nct: none; /small:
 * a 4 KiB limit on the inflated size)
 * ---------------------------------------------------------------------------------------- */

static gorc_ws_extension *deflate_x, *deflate_nct;
static _Atomic int last_err, handlers_done;

static void h_ws(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    gorc_ws_opts o = {.extension = strcmp(r->path, "/nct") == 0 ? deflate_nct : deflate_x};
    if (strcmp(r->path, "/small") == 0)
        o.max_message = 4096;
    gorc_ws *ws;
    if (gorc_ws_upgrade(&ws, w, r, &o) < 0) {
        atomic_fetch_add(&handlers_done, 1);
        return;
    }
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

static char *text(size_t n)
{
    char *p = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        p[i] = "the quick brown fox jumps over the lazy dog "[i % 44];
    p[n] = 0;
    return p;
}

GO_TEST(test_gorc_both_sides)
{
    uint64_t mark = gorc_leak_mark();
    CHECK_EQ(gorc_wsdeflate_new(&deflate_x, NULL), 0);
    gorc_wsdeflate_opts nct = {.no_context_takeover = true};
    CHECK_EQ(gorc_wsdeflate_new(&deflate_nct, &nct), 0);
    atomic_store(&handlers_done, 0);
    fixture f;
    gorc_http_server_opts so = {.handler = h_ws};
    fixture_start_opts(&f, &so);
    const char *paths[] = {"/echo", "/nct"};
    gorc_ws_extension *clients[] = {deflate_x, deflate_nct};
    for (int k = 0; k < 4; k++) {
        char url[128];
        snprintf(url, sizeof url, "ws://%s%s", f.addr, paths[k % 2]);
        gorc_ws_opts o = {.extension = clients[k / 2]};
        gorc_ws *c;
        CHECK_EQ(gorc_ws_dial(&c, url, &o, NULL), 0);
        size_t sizes[] = {0, 10, 63, 64, 65, 1000, 70000, 1 << 20};
        for (int rep = 0; rep < 3; rep++) { /* repeated: context takeover matters */
            for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
                char *p = text(sizes[i]);
                CHECK_EQ(gorc_ws_write_message(c, GORC_WS_TEXT, p, sizes[i], NULL), 0);
                int t;
                char *m;
                CHECK_EQ(gorc_ws_read_message(c, &t, &m, NULL), (long)sizes[i]);
                CHECK(t == GORC_WS_TEXT && memcmp(m, p, sizes[i]) == 0);
                free(m);
                free(p);
            }
        }
        /* A compressed message read as a stream. */
        char *p = text(50000);
        CHECK_EQ(gorc_ws_write_message(c, GORC_WS_BINARY, p, 50000, NULL), 0);
        int t;
        CHECK_EQ(gorc_ws_next_message(c, &t, NULL), 0);
        CHECK_EQ(t, GORC_WS_BINARY);
        size_t got = 0;
        char piece[999];
        ssize_t kk;
        while ((kk = gorc_ws_read(c, piece, sizeof piece, NULL)) > 0) {
            CHECK(memcmp(piece, p + got, (size_t)kk) == 0);
            got += (size_t)kk;
        }
        CHECK_EQ(kk, 0);
        CHECK_EQ(got, 50000);
        free(p);
        /* A batch goes through the extension message by message. */
        struct iovec iov[3] = {
            {"a", 1},
            {"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 72},
            {"c", 1}};
        CHECK_EQ(gorc_ws_write_messages(c, GORC_WS_TEXT, iov, 3, NULL), 0);
        for (int i = 0; i < 3; i++) {
            char *m;
            CHECK_EQ(gorc_ws_read_message(c, &t, &m, NULL), (long)iov[i].iov_len);
            CHECK(memcmp(m, iov[i].iov_base, iov[i].iov_len) == 0);
            free(m);
        }
        CHECK_EQ(gorc_ws_close(c, 0, NULL), 0);
    }
    wait_handlers(4);
    CHECK_EQ(atomic_load(&last_err), GORC_WS_ECLOSED);
    fixture_stop(&f);
    gorc_wsdeflate_free(deflate_x);
    gorc_wsdeflate_free(deflate_nct);
    CHECK_EQ(gorc_leak_check(mark, 5 * GORC_SECOND), 0);
}

/* ------------------------------------------------------------------------------------------
 * A raw client with zlib: what is on the wire
 * ---------------------------------------------------------------------------------------- */

static gorc_conn *raw_open(fixture *f, const char *path)
{
    gorc_conn *c;
    CHECK_EQ(gorc_tcp_dial(&c, f->addr, GORC_SECOND), 0);
    char head[512];
    int n = snprintf(
        head, sizeof head,
        "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: x-other, permessage-deflate; client_max_window_bits\r\n\r\n",
        path);
    CHECK_EQ(gorc_conn_write_all(c, head, (size_t)n), n);
    char b[1024] = {0};
    size_t k = 0;
    while (!strstr(b, "\r\n\r\n")) {
        CHECK(k < sizeof b - 1);
        CHECK_EQ(gorc_conn_read(c, b + k, 1), 1);
        k++;
    }
    CHECK(strncmp(b, "HTTP/1.1 101 ", 13) == 0);
    CHECK(strstr(b, "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n") != NULL);
    gorc_conn_set_deadline(c, gorc_now() + 10 * GORC_SECOND);
    return c;
}

static size_t zdeflate(const char *p, size_t n, uint8_t *out, size_t cap)
{
    z_stream z = {0};
    CHECK_EQ(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)p;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    CHECK_EQ(deflate(&z, Z_SYNC_FLUSH), Z_OK);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    CHECK(len >= 4 && memcmp(out + len - 4, "\0\0\xff\xff", 4) == 0);
    return len - 4;
}

static void send_frame(gorc_conn *c, int b0, const uint8_t *p, size_t n)
{
    uint8_t h[14];
    const uint8_t key[4] = {9, 8, 7, 6};
    size_t hn = gorc__ws_put_header(h, b0 & 0x7f, b0 & 0x80, n, key);
    uint8_t *m = malloc(n + 1);
    memcpy(m, p, n);
    uint8_t pos = 0;
    gorc__ws_mask(m, n, key, &pos);
    CHECK_EQ(gorc_conn_write_all(c, h, hn), (long)hn);
    if (n)
        CHECK_EQ(gorc_conn_write_all(c, m, n), (long)n);
    free(m);
}

/* One server frame: its first byte, payload into a malloc'd *p. */
static int read_frame(gorc_conn *c, uint8_t **p, size_t *n)
{
    uint8_t h[10];
    if (gorc_conn_read_full(c, h, 2) != 2)
        return -1;
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
    *p = malloc(len + 4);
    if (len)
        CHECK_EQ(gorc_conn_read_full(c, *p, len), (long)len);
    *n = len;
    return h[0];
}

static int close_code(gorc_conn *c)
{
    uint8_t *p;
    size_t n;
    int b0;
    while ((b0 = read_frame(c, &p, &n)) >= 0 && (b0 & 0x0f) != 8)
        free(p);
    CHECK(b0 >= 0 && n >= 2);
    int code = p[0] << 8 | p[1];
    free(p);
    return code;
}

GO_TEST(test_wire)
{
    uint64_t mark = gorc_leak_mark();
    CHECK_EQ(gorc_wsdeflate_new(&deflate_x, NULL), 0);
    deflate_nct = deflate_x;
    atomic_store(&handlers_done, 0);
    fixture f;
    gorc_http_server_opts so = {.handler = h_ws};
    fixture_start_opts(&f, &so);
    /* A compressed message in, a compressed echo out that inflates to the same text. */
    gorc_conn *c = raw_open(&f, "/echo");
    char *msg = text(20000);
    uint8_t z[30000];
    size_t zn = zdeflate(msg, 20000, z, sizeof z);
    CHECK(zn < 1000);
    send_frame(c, 0xc1, z, zn); /* FIN, RSV1, text */
    uint8_t *p;
    size_t n;
    int b0 = read_frame(c, &p, &n);
    CHECK_EQ(b0, 0xc1);
    CHECK(n < 1000);
    memcpy(p + n, "\0\0\xff\xff", 4);
    char *out = malloc(30000);
    z_stream in = {0};
    CHECK_EQ(inflateInit2(&in, -15), Z_OK);
    in.next_in = p;
    in.avail_in = (uInt)(n + 4);
    in.next_out = (Bytef *)out;
    in.avail_out = 30000;
    CHECK_EQ(inflate(&in, Z_SYNC_FLUSH), Z_OK);
    CHECK_EQ(30000 - in.avail_out, 20000);
    CHECK(memcmp(out, msg, 20000) == 0);
    inflateEnd(&in);
    free(p);
    /* A small message goes out uncompressed (RSV1 clear). */
    send_frame(c, 0x81, (const uint8_t *)"hi", 2);
    CHECK_EQ(read_frame(c, &p, &n), 0x81);
    CHECK(n == 2 && memcmp(p, "hi", 2) == 0);
    free(p);
    /* RSV1 on a continuation frame: 1002. */
    send_frame(c, 0x41, z, zn / 2);
    send_frame(c, 0xc0, z + zn / 2, zn - zn / 2);
    CHECK_EQ(close_code(c), 1002);
    gorc_conn_close(c);
    wait_handlers(1);
    CHECK_EQ(atomic_load(&last_err), GORC_WS_EPROTO);
    /* Data that does not inflate: 1007. */
    c = raw_open(&f, "/echo");
    send_frame(c, 0xc2, (const uint8_t *)"\xff\xff\xff\xff\xff", 5);
    CHECK_EQ(close_code(c), 1007);
    gorc_conn_close(c);
    wait_handlers(2);
    CHECK_EQ(atomic_load(&last_err), GORC_WS_EBADDATA);
    /* A small compressed message that inflates past /small's 4 KiB: 1009. */
    c = raw_open(&f, "/small");
    send_frame(c, 0xc1, z, zn);
    CHECK_EQ(close_code(c), 1009);
    gorc_conn_close(c);
    wait_handlers(3);
    CHECK_EQ(atomic_load(&last_err), GORC_WS_ETOOBIG);
    /* Compressed text that is not UTF-8 once inflated: 1007. */
    c = raw_open(&f, "/echo");
    zn = zdeflate("ok \xc0\xaf", 5, z, sizeof z);
    send_frame(c, 0xc1, z, zn);
    CHECK_EQ(close_code(c), 1007);
    gorc_conn_close(c);
    wait_handlers(4);
    free(out);
    free(msg);
    fixture_stop(&f);
    gorc_wsdeflate_free(deflate_x);
    CHECK_EQ(gorc_leak_check(mark, 5 * GORC_SECOND), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiation),
        cmocka_unit_test(test_gorc_both_sides),
        cmocka_unit_test(test_wire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
