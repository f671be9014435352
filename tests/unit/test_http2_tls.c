/*
 * test_http2_tls.c - h2 over TLS chosen by ALPN: libgorc_http2 and libgorc_tls together, each
 * through libgorc's public API only (the server's ALPN hook, gorc_conn_protocol, the client's
 * dial_tls hook).
 *
 * The server is one gorc_http_server behind a TLS listener, configured for HTTP/2; whether a
 * connection speaks h2 or HTTP/1.1 is what its TLS handshake chose. The client is one
 * gorc_http_client with libgorc_tls's hook and libgorc_http2's transport. Checked: h2 when
 * both sides offer it, with concurrent requests multiplexed on one connection; HTTP/1.1 when
 * the server offers only "http/1.1" - over the very connection the HTTP/2 transport dialed
 * (the server accepts one connection in all), and the host remembered so that later requests
 * do not probe again; HTTP/1.1 when the client has no HTTP/2 transport; the same handlers on
 * both. Certificates are made at test time (tls_testutil.h). Deadlines are hang guards only.
 */
#include "testutil.h"
#include "tls_testutil.h"

#include <gorc_http.h>
#include <gorc_http2.h>
#include <gorc_net.h>
#include <gorc_tls.h>

#include <stdatomic.h>
#include <string.h>

#define MS    GORC_MILLISECOND
#define GUARD (10 * GORC_SECOND)

static test_pki ca, leaf;
static atomic_int running, peak;

static void handler(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    if (strcmp(r->path, "/slow") == 0) {
        int v = atomic_fetch_add(&running, 1) + 1;
        int p = atomic_load(&peak);
        while (v > p && !atomic_compare_exchange_weak(&peak, &p, v))
            ;
        gorc_sleep(50 * MS);
        atomic_fetch_sub(&running, 1);
    }
    char buf[64];
    snprintf(buf, sizeof buf, "proto %d %s\n", r->proto_major, r->path);
    gorc_http_rw_write_string(w, buf);
}

typedef struct server {
    gorc_http_server *hs;
    gorc_http2_server *h2;
    gorc_tls_config *tls;
    gorc_listener *l;
    char base[GORC_ADDRSTRLEN + 16];
    gorc_waitgroup wg;
} server;

static void serve_main(void *arg)
{
    server *sv = arg;
    CHECK_EQ(gorc_http_server_serve(sv->hs, sv->l), GORC_HTTP_ESERVERCLOSED);
    gorc_waitgroup_done(&sv->wg);
}

/* An HTTPS server whose TLS configuration offers alpn (nalpn names); HTTP/2 configured unless
 * no_h2. */
static void server_start_h2(server *sv, const char *const *alpn, size_t nalpn, bool no_h2)
{
    gorc_http_server_opts so = {.handler = handler};
    CHECK_EQ(gorc_http_server_new(&sv->hs, &so), 0);
    if (!no_h2)
        CHECK_EQ(gorc_http2_configure_server(sv->hs, NULL, &sv->h2), 0);
    gorc_tls_cert cert = {.cert_pem = leaf.cert_pem, .key_pem = leaf.key_pem};
    gorc_tls_server_opts to = {.certs = &cert, .num_certs = 1, .alpn = alpn, .num_alpn = nalpn};
    CHECK_EQ(gorc_tls_server_config_new(&sv->tls, &to), 0);
    gorc_listener *raw;
    CHECK_EQ(gorc_tcp_listen(&raw, "127.0.0.1:0", NULL), 0);
    char addr[GORC_ADDRSTRLEN];
    CHECK(gorc_listener_addr(raw, addr, sizeof addr) > 0);
    CHECK_EQ(gorc_tls_listen(&sv->l, raw, sv->tls), 0);
    snprintf(sv->base, sizeof sv->base, "https://%s", addr);
    gorc_waitgroup_add(&sv->wg, 1);
    CHECK_EQ(gorc_go(serve_main, sv), 0);
}

static void server_start(server *sv, const char *const *alpn, size_t nalpn)
{
    server_start_h2(sv, alpn, nalpn, false);
}

static void server_stop(server *sv)
{
    CHECK_EQ(gorc_http_server_shutdown(sv->hs, gorc_now() + GUARD), 0);
    gorc_waitgroup_wait(&sv->wg);
    gorc_listener_release(sv->l);
    gorc_http_server_free(sv->hs);
    gorc_http2_server_free(sv->h2);
    gorc_tls_config_free(sv->tls);
}

typedef struct client {
    gorc_tls_config *tls;
    gorc_http2_client *h2; /* NULL: HTTP/1.1 only */
    gorc_http_client *c;
} client;

static void client_new(client *cl, bool with_h2)
{
    gorc_tls_client_opts to = {.ca_pem = ca.cert_pem};
    CHECK_EQ(gorc_tls_client_config_new(&cl->tls, &to), 0);
    gorc_http_client_opts o = {.timeout = GUARD};
    gorc_tls_http_client_opts(&o, cl->tls);
    cl->h2 = NULL;
    if (with_h2)
        CHECK_EQ(gorc_http2_configure_client(&o, NULL, &cl->h2), 0);
    CHECK_EQ(gorc_http_client_new(&cl->c, &o), 0);
}

static void client_free(client *cl)
{
    gorc_http_client_free(cl->c);
    gorc_http2_client_free(cl->h2);
    gorc_tls_config_free(cl->tls);
}

/* GET base+path: the status must be 200; returns the response's protocol major version. */
static int get(client *cl, const server *sv, const char *path)
{
    char u[GORC_ADDRSTRLEN + 64];
    snprintf(u, sizeof u, "%s%s", sv->base, path);
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_get(cl->c, u, &r), 0);
    CHECK_EQ(r->status, 200);
    char *b;
    ssize_t n = gorc_http_response_read_all(r, &b, 0);
    CHECK(n > 0);
    char want[64];
    snprintf(want, sizeof want, "proto %d %s\n", r->proto_major, path);
    CHECK(strcmp(b, want) == 0); /* the handler saw the protocol the client got */
    free(b);
    int proto = r->proto_major;
    gorc_http_response_close(r);
    return proto;
}

static const char *const h2_h1[] = {"h2", "http/1.1"};
static const char *const h1_only[] = {"http/1.1"};

GO_TEST(test_h2_by_alpn)
{
    server sv = {0};
    server_start(&sv, h2_h1, 2);
    client cl;
    client_new(&cl, true);
    CHECK_EQ(get(&cl, &sv, "/hello"), 2);
    CHECK_EQ(get(&cl, &sv, "/again"), 2);
    CHECK_EQ(gorc_http2_client_dials(cl.h2), 1);
    CHECK_EQ(gorc_http2_client_conns(cl.h2), 1);
    gorc_http2_server_stats st;
    gorc_http2_server_stats_get(sv.h2, &st);
    CHECK_EQ(st.conns_total, 1);
    CHECK_EQ(st.streams_total, 2);
    client_free(&cl);
    server_stop(&sv);
}

typedef struct par {
    client *cl;
    server *sv;
    atomic_int h2;
    gorc_waitgroup wg;
} par;

static void par_get(void *arg)
{
    par *p = arg;
    if (get(p->cl, p->sv, "/slow") == 2)
        atomic_fetch_add(&p->h2, 1);
    gorc_waitgroup_done(&p->wg);
}

GO_TEST(test_h2_tls_multiplexes_one_connection)
{
    server sv = {0};
    server_start(&sv, h2_h1, 2);
    client cl;
    client_new(&cl, true);
    atomic_store(&peak, 0);
    /* 20 requests at once, none before any connection exists: they wait for the one dial. */
    par p = {.cl = &cl, .sv = &sv};
    for (int i = 0; i < 20; i++) {
        gorc_waitgroup_add(&p.wg, 1);
        CHECK_EQ(gorc_go(par_get, &p), 0);
    }
    gorc_waitgroup_wait(&p.wg);
    CHECK_EQ(atomic_load(&p.h2), 20);
    CHECK_EQ(gorc_http2_client_dials(cl.h2), 1);
    gorc_http2_server_stats st;
    gorc_http2_server_stats_get(sv.h2, &st);
    CHECK_EQ(st.conns_total, 1);
    CHECK_EQ(st.streams_total, 20);
    CHECK(atomic_load(&peak) > 1); /* the handlers overlapped: streams, not a queue */
    gorc_http_server_stats hs;
    gorc_http_server_stats_get(sv.hs, &hs);
    CHECK_EQ(hs.conns_total, 1);
    client_free(&cl);
    server_stop(&sv);
}

GO_TEST(test_fallback_to_http11_by_alpn)
{
    server sv = {0};
    server_start(&sv, h1_only, 1);
    client cl;
    client_new(&cl, true);
    CHECK_EQ(get(&cl, &sv, "/one"), 1);
    CHECK_EQ(get(&cl, &sv, "/two"), 1);
    CHECK_EQ(get(&cl, &sv, "/three"), 1);
    /* The HTTP/2 transport dialed once, found HTTP/1.1 and handed the connection over; the
     * host is remembered, so no later request probes again, and HTTP/1.1 kept the connection. */
    CHECK_EQ(gorc_http2_client_dials(cl.h2), 1);
    CHECK_EQ(gorc_http2_client_conns(cl.h2), 0);
    gorc_http_server_stats hs;
    gorc_http_server_stats_get(sv.hs, &hs);
    CHECK_EQ(hs.conns_total, 1);
    CHECK_EQ(hs.requests, 3);
    CHECK_EQ(gorc_http_client_idle_conns(cl.c, sv.base), 1);
    gorc_http2_server_stats st;
    gorc_http2_server_stats_get(sv.h2, &st);
    CHECK_EQ(st.conns_total, 0);
    client_free(&cl);
    server_stop(&sv);
}

GO_TEST(test_http11_client_on_h2_server)
{
    /* A client without libgorc_http2 offers only "http/1.1": the same server answers it. */
    server sv = {0};
    server_start(&sv, h2_h1, 2);
    client cl;
    client_new(&cl, false);
    CHECK_EQ(get(&cl, &sv, "/plain"), 1);
    gorc_http2_server_stats st;
    gorc_http2_server_stats_get(sv.h2, &st);
    CHECK_EQ(st.conns_total, 0);
    client_free(&cl);

    /* ... and a TLS connection that negotiated no protocol at all is HTTP/1.1 too. */
    gorc_tls_client_opts to = {.ca_pem = ca.cert_pem};
    gorc_tls_config *tc;
    CHECK_EQ(gorc_tls_client_config_new(&tc, &to), 0);
    gorc_conn *c;
    CHECK_EQ(gorc_tls_dial(&c, sv.base + strlen("https://"), tc, GUARD, NULL), 0);
    CHECK(strcmp(gorc_conn_protocol(c), "") == 0);
    const char req[] = "GET /raw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    CHECK_EQ(gorc_conn_write_all(c, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    char buf[512];
    size_t got = 0;
    ssize_t k;
    while (got < sizeof buf - 1 && (k = gorc_conn_read(c, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)k;
    buf[got] = 0;
    CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    CHECK(strstr(buf, "proto 1 /raw\n") != NULL);
    gorc_conn_close(c);
    gorc_tls_config_free(tc);
    server_stop(&sv);
}

GO_TEST(test_h2_offered_without_http2)
{
    /* A TLS configuration that offers "h2" on a server without HTTP/2: a connection that
     * chose it is closed at once (counted as a bad request), not parsed as HTTP/1.1. */
    static const char *const h2_only[] = {"h2"};
    server sv = {0};
    server_start_h2(&sv, h2_h1, 2, true);
    gorc_tls_client_opts to = {.ca_pem = ca.cert_pem, .alpn = h2_only, .num_alpn = 1};
    gorc_tls_config *tc;
    CHECK_EQ(gorc_tls_client_config_new(&tc, &to), 0);
    gorc_conn *c;
    CHECK_EQ(gorc_tls_dial(&c, sv.base + strlen("https://"), tc, GUARD, NULL), 0);
    CHECK(strcmp(gorc_conn_protocol(c), "h2") == 0);
    gorc_conn_set_deadline(c, gorc_now() + GUARD);
    char buf[64];
    ssize_t k = gorc_conn_read(c, buf, sizeof buf);
    CHECK(k == 0 || k == GORC_EUNEXPECTEDEOF || k == -ECONNRESET);
    gorc_conn_close(c);
    gorc_tls_config_free(tc);
    gorc_http_server_stats hs;
    gorc_http_server_stats_get(sv.hs, &hs);
    CHECK_EQ(hs.bad_requests, 1);
    CHECK_EQ(hs.requests, 0);
    /* HTTP/1.1 clients are still served. */
    client cl;
    client_new(&cl, false);
    CHECK_EQ(get(&cl, &sv, "/plain"), 1);
    client_free(&cl);
    server_stop(&sv);
}

static int setup(void **state)
{
    (void)state;
    ca = test_cert("gorc test CA", NULL, NULL, -60, 3600);
    leaf = test_cert("localhost", "DNS:localhost,IP:127.0.0.1", &ca, -60, 3600);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_pki_free(&leaf);
    test_pki_free(&ca);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h2_by_alpn),
        cmocka_unit_test(test_h2_tls_multiplexes_one_connection),
        cmocka_unit_test(test_fallback_to_http11_by_alpn),
        cmocka_unit_test(test_http11_client_on_h2_server),
        cmocka_unit_test(test_h2_offered_without_http2),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
