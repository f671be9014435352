/*
 * ws_e2e_server.c - the gorc side of tests/e2e/ws-e2e (not a cmocka test).
 *
 *   ws_e2e_server serve ADDR     WebSocket echo on ws://ADDR/echo (subprotocols "chat",
 *                                "superchat"; 1 MiB message limit), a 1 KiB-limit echo on
 *                                /small, the echo with permessage-deflate on /echoz, and a
 *                                page on / whose script talks to /echoz and
 *                                writes what it saw into the DOM (for headless Chromium).
 *                                Prints "listening on ADDR" and serves until killed.
 *   ws_e2e_server client URL [z] a gorc client (offering permessage-deflate with z) against another
 * implementation's echo server: messages of many sizes and both types, fragments, a batch, a ping,
 * then a close with code 4000; prints "ok" and exits 0, or prints what went wrong and exits 1.
 */
#include <gorc_websocket.h>
#include <gorc_wsdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char page[] =
    "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ws e2e</title></head><body>\n"
    "<p id=\"status\">running</p><p id=\"proto\"></p><p id=\"ext\"></p><p id=\"count\">0</p>\n"
    "<script>\n"
    "const st = document.getElementById('status');\n"
    "const ws = new WebSocket('ws://' + location.host + '/echoz', ['superchat', 'chat']);\n"
    "ws.binaryType = 'arraybuffer';\n"
    "const sent = [];\n"
    "for (let i = 0; i < 50; i++) sent.push('message ' + i + ' "
    "\\u00e9\\u20ac\\ud83d\\ude00'.repeat(i % 7 + 1));\n"
    "sent.push('x'.repeat(70000));\n"
    "let got = 0, bin = false;\n"
    "ws.onopen = () => { document.getElementById('proto').textContent = ws.protocol;\n"
    "  document.getElementById('ext').textContent = ws.extensions;\n"
    "  for (const m of sent) ws.send(m);\n"
    "  const b = new Uint8Array(1000); for (let i = 0; i < b.length; i++) b[i] = i & 255;\n"
    "  ws.send(b); };\n"
    "ws.onmessage = (e) => {\n"
    "  if (typeof e.data === 'string') {\n"
    "    if (e.data !== sent[got]) { st.textContent = 'mismatch at ' + got; ws.close(); return; }\n"
    "    got++; document.getElementById('count').textContent = String(got);\n"
    "  } else {\n"
    "    const b = new Uint8Array(e.data); let ok = b.length === 1000;\n"
    "    for (let i = 0; ok && i < b.length; i++) ok = b[i] === (i & 255);\n"
    "    bin = ok; ws.close(4000, 'done');\n"
    "  }\n"
    "};\n"
    "ws.onclose = (e) => { if (st.textContent === 'running')\n"
    "  st.textContent = (got === sent.length && bin ? 'ok ' : 'bad ') + e.code + ' ' + got; };\n"
    "ws.onerror = () => { st.textContent = 'error'; };\n"
    "</script></body></html>\n";

static const char *const protos[] = {"chat", "superchat", NULL};
static gorc_ws_extension *deflate;

static void handler(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    bool small = strcmp(r->path, "/small") == 0, z = strcmp(r->path, "/echoz") == 0;
    if (strcmp(r->path, "/") == 0) {
        gorc_http_rw_set_header(w, "Content-Type", "text/html; charset=utf-8");
        gorc_http_rw_write_string(w, page);
        return;
    }
    if (!small && !z && strcmp(r->path, "/echo") != 0) {
        gorc_http_error(w, 404, NULL);
        return;
    }
    gorc_ws_opts o = {.subprotocols = protos,
                      .max_message = small ? 1024 : 1 << 20,
                      .extension = z ? deflate : NULL};
    gorc_ws *ws;
    if (gorc_ws_upgrade(&ws, w, r, &o) < 0)
        return;
    for (;;) {
        int type;
        char *m;
        ssize_t n = gorc_ws_read_message(ws, &type, &m, NULL);
        if (n < 0)
            break;
        gorc_ws_write_message(ws, type, m, (size_t)n, NULL);
        free(m);
    }
    gorc_ws_close(ws, 0, NULL);
}

static int rc = 1;

static bool expect(gorc_ws *ws, int type, const char *p, size_t n)
{
    int t;
    char *m;
    ssize_t k = gorc_ws_read_message(ws, &t, &m, NULL);
    if (k < 0) {
        printf("read: %s\n", gorc_strerror((int)k));
        return false;
    }
    bool ok = t == type && (size_t)k == n && memcmp(m, p, n) == 0;
    if (!ok)
        printf("echo of a %zu-byte message differs (got type %d, %zd bytes)\n", n, t, k);
    free(m);
    return ok;
}

static void client(const char *url, bool z)
{
    gorc_ws *ws;
    gorc_ws_opts o = {.extension = z ? deflate : NULL};
    int r = gorc_ws_dial(&ws, url, &o, NULL);
    if (r < 0) {
        printf("dial %s: %s\n", url, gorc_strerror(r));
        return;
    }
    size_t big = 300000;
    char *p = malloc(big);
    for (size_t i = 0; i < big; i++)
        p[i] = (char)('a' + i % 26);
    size_t sizes[] = {0, 1, 125, 126, 65535, 65536, big};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int type = GORC_WS_TEXT; type <= GORC_WS_BINARY; type++)
            if (gorc_ws_write_message(ws, type, p, sizes[i], NULL) < 0 ||
                !expect(ws, type, p, sizes[i]))
                goto out;
    if (gorc_ws_write_fragment(ws, GORC_WS_TEXT, "fr\xc3", 3, false, NULL) < 0 ||
        gorc_ws_ping(ws, "ping", 4) < 0 ||
        gorc_ws_write_fragment(ws, 0, "\xa9gment", 6, true, NULL) < 0 ||
        !expect(ws, GORC_WS_TEXT, "fr\xc3\xa9gment", 9))
        goto out;
    struct iovec iov[3] = {{"one", 3}, {"two", 3}, {"three", 5}};
    if (gorc_ws_write_messages(ws, GORC_WS_BINARY, iov, 3, NULL) < 0 ||
        !expect(ws, GORC_WS_BINARY, "one", 3) || !expect(ws, GORC_WS_BINARY, "two", 3) ||
        !expect(ws, GORC_WS_BINARY, "three", 5))
        goto out;
    r = gorc_ws_close(ws, 4000, "bye");
    ws = NULL;
    if (r < 0) {
        printf("close: %s\n", gorc_strerror(r));
        goto out;
    }
    printf("ok\n");
    rc = 0;
out:
    if (ws)
        gorc_ws_release(ws);
    free(p);
}

static const char *arg_mode, *arg_addr;
static bool arg_z;

static void run(void *unused)
{
    (void)unused;
    if (strcmp(arg_mode, "client") == 0) {
        client(arg_addr, arg_z);
        return;
    }
    gorc_listener *l;
    int r = gorc_tcp_listen(&l, arg_addr, NULL);
    if (r < 0) {
        printf("listen: %s\n", gorc_strerror(r));
        return;
    }
    char a[GORC_ADDRSTRLEN];
    gorc_listener_addr(l, a, sizeof a);
    printf("listening on %s\n", a);
    fflush(stdout);
    gorc_http_server_opts o = {.handler = handler};
    gorc_http_server *s;
    gorc_http_server_new(&s, &o);
    gorc_http_server_serve(s, l);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4 || (strcmp(argv[1], "serve") != 0 && strcmp(argv[1], "client") != 0)) {
        fprintf(stderr, "usage: ws_e2e_server serve ADDR | client URL [z]\n");
        return 2;
    }
    arg_mode = argv[1];
    arg_addr = argv[2];
    arg_z = argc == 4 && strcmp(argv[3], "z") == 0;
    if (gorc_wsdeflate_new(&deflate, NULL) != 0)
        return 1;
    if (gorc_main(run, NULL) != 0)
        return 1;
    return rc;
}
