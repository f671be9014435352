/*
 * test_tls.c - libgorc_tls: gorc's TLS server against gorc's TLS client over loopback, with
 * certificates made at test time (tls_testutil.h).
 *
 * What each test proves:
 *  - echo: a TLS connection is a gorc_conn (read, write, writev, read_full, bufio-free paths),
 *    TLS 1.3 is chosen, ALPN and the cipher suite follow the server's preference (Go's
 *    AES-128-GCM first, for TLS 1.2 as well), the handshake is lazy (accept
 *    returns before any byte is exchanged) and gorc_conn_protocol tells the result;
 *  - verify: the client's distinct errors for an expired certificate, a wrong host, an
 *    unknown issuer and a protocol-version mismatch (and that the server sees a failure);
 *  - sni: two certificates, each chosen by the name the client sends;
 *  - resume: a second connection with the client's session cache resumes (DidResume);
 *  - reload: a connection made before a certificate reload keeps working, new connections
 *    get the new certificate, a failed reload changes nothing;
 *  - cancel: a handshake with a silent peer is stopped by a context (-ECANCELED), by a
 *    deadline (-ETIMEDOUT) and by the configuration's handshake timeout, and a blocked TLS
 *    read is woken by close with GORC_ENETCLOSED;
 *  - garbage: an HTTP request in place of a ClientHello fails the server's handshake with
 *    GORC_ETLSHANDSHAKE, and a TLS 1.2-only client against a 1.3-only server gets
 *    GORC_ETLSVERSION on both sides;
 *  - duplex: one goroutine blocked reading a TLS connection does not stop another writing it;
 *  - sendfile: gorc_conn_sendfile over TLS sends the file's bytes, in order;
 *  - http: the HTTP server serves https with the same handler, the HTTP client fetches
 *    https:// with the dial hook and pools the connection under its scheme; without the hook
 *    https is -EPROTONOSUPPORT;
 *  - errors: -EINVAL paths (also of the raw calls), GORC_ETLSBADCERT for bad PEM,
 *    gorc_strerror's texts.
 * Every test checks that its goroutines and descriptors are gone at the end. Under
 * GORC_SIM_SEED (the sim variant, tests/e2e/sim-e2e) every test runs unchanged on the simulated
 * network: nothing here talks to another process.
 */
#include "testutil.h"
#include "tls_testutil.h"

#include <gorc_http.h>
#include <gorc_net.h>
#include <gorc_sim.h>
#include <gorc_tls.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define MS GORC_MILLISECOND

static test_pki ca, ca2, leaf, leaf_b, expired, other_ca_leaf, leaf2;

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n;
}

static gorc_tls_config *server_cfg(const test_pki *p, const char *const *alpn, size_t nalpn,
                                   int minv, int maxv)
{
    gorc_tls_cert c = {.cert_pem = p->cert_pem, .key_pem = p->key_pem};
    gorc_tls_server_opts o = {.certs = &c,
                              .num_certs = 1,
                              .alpn = alpn,
                              .num_alpn = nalpn,
                              .min_version = minv,
                              .max_version = maxv};
    gorc_tls_config *cfg;
    CHECK_EQ(gorc_tls_server_config_new(&cfg, &o), 0);
    return cfg;
}

static gorc_tls_config *client_cfg(const test_pki *trust, const char *const *alpn, size_t nalpn,
                                   int minv, int maxv, int cache)
{
    gorc_tls_client_opts o = {.ca_pem = trust->cert_pem,
                              .alpn = alpn,
                              .num_alpn = nalpn,
                              .min_version = minv,
                              .max_version = maxv,
                              .session_cache = cache};
    gorc_tls_config *cfg;
    CHECK_EQ(gorc_tls_client_config_new(&cfg, &o), 0);
    return cfg;
}

/* A TLS listener on a free loopback port; its address goes to addr. */
static gorc_listener *listen_tls(gorc_tls_config *cfg, char *addr, size_t n)
{
    gorc_listener *raw, *l;
    CHECK_EQ(gorc_tcp_listen(&raw, "127.0.0.1:0", NULL), 0);
    CHECK(gorc_listener_addr(raw, addr, n) > 0);
    CHECK_EQ(gorc_tls_listen(&l, raw, cfg), 0);
    return l;
}

/* The server side of most tests: accept `conns` connections, each served by an echo
 * goroutine that records its handshake's result. */
typedef struct echo_srv {
    gorc_listener *l;
    int conns;
    _Atomic int hs_err; /* the last failed server handshake */
    _Atomic int served;
    gorc_waitgroup wg;
} echo_srv;

static void echo_conn(void *arg)
{
    void **a = arg;
    echo_srv *s = a[0];
    gorc_conn *c = a[1];
    free(a);
    int rc = gorc_conn_handshake(c);
    if (rc != 0) {
        atomic_store(&s->hs_err, rc);
    } else {
        char buf[4096];
        ssize_t n;
        while ((n = gorc_conn_read(c, buf, sizeof buf)) > 0)
            if (gorc_conn_write_all(c, buf, (size_t)n) != n)
                break;
        atomic_fetch_add(&s->served, 1);
    }
    gorc_conn_close(c);
    gorc_waitgroup_done(&s->wg);
}

static void echo_accept(void *arg)
{
    echo_srv *s = arg;
    for (int i = 0; i < s->conns; i++) {
        gorc_conn *c;
        int64_t t0 = gorc_now();
        if (gorc_listener_accept(s->l, &c) != 0)
            break;
        CHECK(gorc_now() - t0 < 10 * GORC_SECOND);
        CHECK(gorc_conn_inner(c) != NULL);
        CHECK_EQ(strcmp(gorc_conn_protocol(c), ""), 0); /* lazy: nothing happened yet */
        void **a = malloc(2 * sizeof *a);
        a[0] = s;
        a[1] = c;
        gorc_waitgroup_add(&s->wg, 1);
        CHECK_EQ(gorc_go(echo_conn, a), 0);
    }
    gorc_waitgroup_done(&s->wg);
}

static void srv_start(echo_srv *s, gorc_tls_config *cfg, int conns, char *addr, size_t n)
{
    memset(s, 0, sizeof *s);
    s->l = listen_tls(cfg, addr, n);
    s->conns = conns;
    gorc_waitgroup_add(&s->wg, 1);
    CHECK_EQ(gorc_go(echo_accept, s), 0);
}

static void srv_stop(echo_srv *s)
{
    gorc_listener_close(s->l);
    gorc_waitgroup_wait(&s->wg);
}

static void roundtrip(gorc_conn *c, const char *msg)
{
    size_t n = strlen(msg);
    CHECK_EQ(gorc_conn_write_all(c, msg, n), (ssize_t)n);
    char buf[256];
    CHECK_EQ(gorc_conn_read_full(c, buf, n), (ssize_t)n);
    CHECK(memcmp(buf, msg, n) == 0);
}

typedef struct big_write {
    gorc_conn *c;
    const char *buf;
    size_t n;
    ssize_t rc;
} big_write;

static void write_big(void *arg)
{
    big_write *w = arg;
    w->rc = gorc_conn_write_all(w->c, w->buf, w->n);
}

GO_TEST(test_echo)
{
    int64_t g = base_count();
    int fds = count_fds();
    static const char *const salpn[] = {"h2", "http/1.1"};
    static const char *const calpn[] = {"http/1.1", "h2"};
    gorc_tls_config *sc = server_cfg(&leaf, salpn, 2, 0, 0);
    gorc_tls_config *cc = client_cfg(&ca, calpn, 2, 0, 0, 0);
    char addr[64];
    echo_srv s;
    srv_start(&s, sc, 1, addr, sizeof addr);
    gorc_conn *c;
    CHECK_EQ(gorc_tls_dial(&c, addr, cc, 5 * GORC_SECOND, NULL), 0);
    CHECK_EQ(strcmp(gorc_conn_protocol(c), "h2"), 0); /* the server's preference */
    gorc_tls_state st;
    CHECK_EQ(gorc_tls_conn_state(c, &st), 0);
    CHECK_EQ(st.version, GORC_TLS_V13);
    CHECK(!st.resumed);
    /* The server's (Go's) preference over the client's, which puts AES-256 first. */
    CHECK_EQ(strcmp(st.cipher, "TLS_AES_128_GCM_SHA256"), 0);
    roundtrip(c, "hello over tls");
    struct iovec iov[3] = {{"ab", 2}, {"", 0}, {"cdef", 4}};
    CHECK_EQ(gorc_conn_writev(c, iov, 3), 6);
    char buf[8];
    CHECK_EQ(gorc_conn_read_full(c, buf, 6), 6);
    CHECK(memcmp(buf, "abcdef", 6) == 0);
    /* A large message crosses many records and both sides' socket buffers: written by
     * another goroutine while this one reads the echo, since more than the buffers hold
     * (the simulated network's window is 256 KiB) is in flight. */
    size_t big = 1 << 20;
    char *out = malloc(big), *in = malloc(big);
    for (size_t i = 0; i < big; i++)
        out[i] = (char)(i * 7);
    big_write bw = {.c = c, .buf = out, .n = big};
    gorc_waitgroup bwg = {0};
    CHECK_EQ(gorc_waitgroup_go(&bwg, write_big, &bw), 0);
    CHECK_EQ(gorc_conn_read_full(c, in, big), (ssize_t)big);
    gorc_waitgroup_wait(&bwg);
    CHECK_EQ(bw.rc, (ssize_t)big);
    CHECK(memcmp(in, out, big) == 0);
    free(out);
    free(in);
    char a1[64], a2[64];
    CHECK(gorc_conn_local_addr(c, a1, sizeof a1) > 0);
    CHECK(gorc_conn_remote_addr(c, a2, sizeof a2) > 0);
    CHECK_EQ(strcmp(a2, addr), 0);
    CHECK(gorc_conn_fd(c) >= 0);
    CHECK_EQ(gorc_conn_simulated(c), gorc_sim_active()); /* under GORC_SIM_SEED: simulated */
    CHECK_EQ(gorc_conn_set_nodelay(c, true), 0);
    gorc_conn_retain(c);
    CHECK_EQ(gorc_conn_close(c), 0);
    CHECK_EQ(gorc_conn_close(c), GORC_ENETCLOSED); /* gives up the second reference */
    srv_stop(&s);
    CHECK_EQ(atomic_load(&s.served), 1);
    gorc_tls_config_free(sc);
    gorc_tls_config_free(cc);
    wait_count(g);
    CHECK_EQ(count_fds(), fds);
}

/* Dial addr with trust and name; the client's error. */
static int dial_err(const char *addr, gorc_tls_config *cc, const char *name)
{
    gorc_conn *raw, *c;
    CHECK_EQ(gorc_tcp_dial(&raw, addr, GORC_SECOND), 0);
    CHECK_EQ(gorc_tls_client(&c, raw, cc, name), 0);
    int rc = gorc_conn_handshake(c);
    if (rc == 0)
        roundtrip(c, "x");
    gorc_conn_close(c);
    return rc;
}

GO_TEST(test_verify)
{
    int64_t g = base_count();
    int fds = count_fds();
    gorc_tls_config *cc = client_cfg(&ca, NULL, 0, 0, 0, 0);
    char addr[64];
    echo_srv s;
    /* Expired. */
    gorc_tls_config *sc = server_cfg(&expired, NULL, 0, 0, 0);
    srv_start(&s, sc, 1, addr, sizeof addr);
    CHECK_EQ(dial_err(addr, cc, "localhost"), GORC_ETLSEXPIRED);
    srv_stop(&s);
    CHECK(atomic_load(&s.hs_err) != 0); /* the server saw the client's alert */
    gorc_tls_config_free(sc);
    /* Wrong host; the right one; an IP address in the certificate. */
    sc = server_cfg(&leaf, NULL, 0, 0, 0);
    srv_start(&s, sc, 3, addr, sizeof addr);
    CHECK_EQ(dial_err(addr, cc, "wrong.example"), GORC_ETLSHOSTNAME);
    CHECK_EQ(dial_err(addr, cc, "localhost"), 0);
    CHECK_EQ(dial_err(addr, cc, "127.0.0.1"), 0);
    srv_stop(&s);
    gorc_tls_config_free(sc);
    /* Unknown issuer. */
    sc = server_cfg(&other_ca_leaf, NULL, 0, 0, 0);
    srv_start(&s, sc, 1, addr, sizeof addr);
    CHECK_EQ(dial_err(addr, cc, "localhost"), GORC_ETLSUNKNOWNCA);
    srv_stop(&s);
    gorc_tls_config_free(sc);
    /* Protocol mismatch: a TLS 1.2-only server, a TLS 1.3-only client. */
    sc = server_cfg(&leaf, NULL, 0, GORC_TLS_V12, GORC_TLS_V12);
    gorc_tls_config *c13 = client_cfg(&ca, NULL, 0, GORC_TLS_V13, 0, 0);
    srv_start(&s, sc, 1, addr, sizeof addr);
    CHECK_EQ(dial_err(addr, c13, "localhost"), GORC_ETLSVERSION);
    srv_stop(&s);
    CHECK_EQ(atomic_load(&s.hs_err), GORC_ETLSVERSION);
    gorc_tls_config_free(sc);
    gorc_tls_config_free(c13);
    /* TLS 1.2 works when both allow it. */
    sc = server_cfg(&leaf, NULL, 0, GORC_TLS_V12, GORC_TLS_V12);
    srv_start(&s, sc, 1, addr, sizeof addr);
    gorc_conn *c;
    CHECK_EQ(gorc_tls_dial(&c, addr, cc, GORC_SECOND, NULL), 0);
    gorc_tls_state st;
    CHECK_EQ(gorc_tls_conn_state(c, &st), 0);
    CHECK_EQ(st.version, GORC_TLS_V12);
    CHECK_EQ(strcmp(st.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256"), 0);
    gorc_conn_close(c);
    srv_stop(&s);
    gorc_tls_config_free(sc);
    gorc_tls_config_free(cc);
    wait_count(g);
    CHECK_EQ(count_fds(), fds);
}

GO_TEST(test_sni)
{
    int64_t g = base_count();
    gorc_tls_cert certs[2] = {{.cert_pem = leaf.cert_pem, .key_pem = leaf.key_pem},
                              {.cert_pem = leaf_b.cert_pem, .key_pem = leaf_b.key_pem}};
    gorc_tls_server_opts o = {.certs = certs, .num_certs = 2};
    gorc_tls_config *sc;
    CHECK_EQ(gorc_tls_server_config_new(&sc, &o), 0);
    gorc_tls_config *cc = client_cfg(&ca, NULL, 0, 0, 0, 0);
    char addr[64];
    echo_srv s;
    srv_start(&s, sc, 4, addr, sizeof addr);
    /* Each name verifies only against the certificate that carries it: success means the
     * server chose by SNI. */
    CHECK_EQ(dial_err(addr, cc, "localhost"), 0);
    CHECK_EQ(dial_err(addr, cc, "b.test"), 0);
    CHECK_EQ(dial_err(addr, cc, "x.wild.test"), 0); /* *.wild.test on the second */
    CHECK_EQ(dial_err(addr, cc, "y.x.wild.test"), GORC_ETLSHOSTNAME); /* one label only */
    srv_stop(&s);
    gorc_tls_config_free(sc);
    gorc_tls_config_free(cc);
    wait_count(g);
}

/* Dial, exchange a message (which brings the TLS 1.3 ticket in), report resumption. */
static bool dial_resumed(const char *addr, gorc_tls_config *cc)
{
    gorc_conn *c;
    CHECK_EQ(gorc_tls_dial(&c, addr, cc, GORC_SECOND, NULL), 0);
    roundtrip(c, "resume?");
    gorc_tls_state st;
    CHECK_EQ(gorc_tls_conn_state(c, &st), 0);
    gorc_conn_close(c);
    return st.resumed;
}

GO_TEST(test_resume)
{
    int64_t g = base_count();
    gorc_tls_config *sc = server_cfg(&leaf, NULL, 0, 0, 0);
    gorc_tls_config *cc = client_cfg(&ca, NULL, 0, 0, 0, 8);
    gorc_tls_config *nocache = client_cfg(&ca, NULL, 0, 0, 0, 0);
    char addr[64];
    echo_srv s;
    srv_start(&s, sc, 5, addr, sizeof addr);
    CHECK(!dial_resumed(addr, cc));
    CHECK(dial_resumed(addr, cc));
    CHECK(dial_resumed(addr, cc));
    CHECK(!dial_resumed(addr, nocache));
    /* Tickets survive a certificate reload (the ticket keys move to the new set). */
    gorc_tls_cert nc = {.cert_pem = leaf.cert_pem, .key_pem = leaf.key_pem};
    CHECK_EQ(gorc_tls_config_reload(sc, &nc, 1), 0);
    CHECK(dial_resumed(addr, cc));
    srv_stop(&s);
    gorc_tls_config_free(sc);
    gorc_tls_config_free(cc);
    gorc_tls_config_free(nocache);
    wait_count(g);
}

GO_TEST(test_reload)
{
    int64_t g = base_count();
    gorc_tls_config *sc = server_cfg(&leaf, NULL, 0, 0, 0);
    gorc_tls_config *c1 = client_cfg(&ca, NULL, 0, 0, 0, 0);
    gorc_tls_config *c2 = client_cfg(&ca2, NULL, 0, 0, 0, 0);
    char addr[64];
    echo_srv s;
    srv_start(&s, sc, 4, addr, sizeof addr);
    gorc_conn *old;
    CHECK_EQ(gorc_tls_dial(&old, addr, c1, GORC_SECOND, NULL), 0);
    roundtrip(old, "before");
    /* A bad reload changes nothing. */
    gorc_tls_cert bad = {.cert_pem = leaf2.cert_pem, .key_pem = leaf.key_pem};
    CHECK_EQ(gorc_tls_config_reload(sc, &bad, 1), GORC_ETLSBADCERT);
    CHECK_EQ(dial_err(addr, c1, "localhost"), 0);
    gorc_tls_cert nc = {.cert_pem = leaf2.cert_pem, .key_pem = leaf2.key_pem};
    CHECK_EQ(gorc_tls_config_reload(sc, &nc, 1), 0);
    roundtrip(old, "after: the old connection goes on");
    CHECK_EQ(dial_err(addr, c1, "localhost"), GORC_ETLSUNKNOWNCA); /* the new certificate */
    CHECK_EQ(dial_err(addr, c2, "localhost"), 0);
    gorc_conn_close(old);
    srv_stop(&s);
    gorc_tls_config_free(sc);
    gorc_tls_config_free(c1);
    gorc_tls_config_free(c2);
    wait_count(g);
}

/* A TCP peer that accepts and says nothing; returns its listener (accepting into *peer). */
static void silent_accept(void *arg)
{
    void **a = arg;
    gorc_conn *c;
    if (gorc_listener_accept(a[0], &c) == 0)
        a[1] = c;
    gorc_waitgroup_done(a[2]);
}

static void cancel_later(void *arg)
{
    gorc_sleep(50 * MS);
    gorc_ctx_cancel(arg);
}

static void read_blocked(void *arg)
{
    void **a = arg;
    char b;
    a[1] = (void *)(intptr_t)gorc_conn_read(a[0], &b, 1);
}

GO_TEST(test_cancel)
{
    int64_t g = base_count();
    int fds = count_fds();
    gorc_tls_client_opts co = {.ca_pem = ca.cert_pem, .handshake_timeout = 200 * MS};
    gorc_tls_config *cc = client_cfg(&ca, NULL, 0, 0, 0, 0), *quick;
    CHECK_EQ(gorc_tls_client_config_new(&quick, &co), 0);
    gorc_listener *l;
    CHECK_EQ(gorc_tcp_listen(&l, "127.0.0.1:0", NULL), 0);
    char addr[64];
    CHECK(gorc_listener_addr(l, addr, sizeof addr) > 0);
    for (int round = 0; round < 3; round++) {
        gorc_waitgroup wg = {0};
        void *a[3] = {l, NULL, &wg};
        gorc_waitgroup_add(&wg, 1);
        CHECK_EQ(gorc_go(silent_accept, a), 0);
        gorc_conn *raw, *c;
        CHECK_EQ(gorc_tcp_dial(&raw, addr, GORC_SECOND), 0);
        CHECK_EQ(gorc_tls_client(&c, raw, round == 2 ? quick : cc, "localhost"), 0);
        int64_t t0 = gorc_now();
        if (round == 0) { /* a context's cancel */
            gorc_ctx *ctx;
            CHECK_EQ(gorc_ctx_with_cancel(&ctx, gorc_ctx_background()), 0);
            CHECK_EQ(gorc_go(cancel_later, ctx), 0);
            CHECK_EQ(gorc_conn_handshake_ctx(c, ctx), -ECANCELED);
            gorc_ctx_release(ctx);
            /* The failure is permanent, as Go's handshakeErr. */
            char b;
            CHECK_EQ(gorc_conn_read(c, &b, 1), -ECANCELED);
        } else if (round == 1) { /* a deadline */
            CHECK_EQ(gorc_conn_set_deadline(c, gorc_now() + 50 * MS), 0);
            CHECK_EQ(gorc_conn_handshake(c), -ETIMEDOUT);
        } else { /* the configuration's handshake timeout */
            CHECK_EQ(gorc_conn_handshake(c), -ETIMEDOUT);
        }
        CHECK(gorc_now() - t0 < 5 * GORC_SECOND);
        gorc_conn_close(c);
        gorc_waitgroup_wait(&wg);
        gorc_conn_close(a[1]);
    }
    gorc_listener_close(l);
    /* Close wakes a reader blocked inside TLS. */
    gorc_tls_config *sc = server_cfg(&leaf, NULL, 0, 0, 0);
    echo_srv s;
    srv_start(&s, sc, 1, addr, sizeof addr);
    gorc_conn *c;
    CHECK_EQ(gorc_tls_dial(&c, addr, cc, GORC_SECOND, NULL), 0);
    gorc_waitgroup wg = {0};
    void *a[2] = {c, (void *)1};
    CHECK_EQ(gorc_waitgroup_go(&wg, read_blocked, a), 0);
    gorc_sleep(30 * MS);
    gorc_conn_retain(c);
    CHECK_EQ(gorc_conn_close(c), 0);
    gorc_waitgroup_wait(&wg);
    CHECK_EQ((intptr_t)a[1], GORC_ENETCLOSED);
    gorc_conn_release(c);
    srv_stop(&s);
    gorc_tls_config_free(sc);
    gorc_tls_config_free(cc);
    gorc_tls_config_free(quick);
    wait_count(g);
    CHECK_EQ(count_fds(), fds);
}

GO_TEST(test_garbage)
{
    int64_t g = base_count();
    gorc_tls_config *sc = server_cfg(&leaf, NULL, 0, GORC_TLS_V13, 0);
    char addr[64];
    echo_srv s;
    srv_start(&s, sc, 2, addr, sizeof addr);
    gorc_conn *c;
    CHECK_EQ(gorc_tcp_dial(&c, addr, GORC_SECOND), 0);
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_EQ(gorc_conn_write_all(c, req, sizeof req - 1), (ssize_t)sizeof req - 1);
    char buf[64];
    CHECK(gorc_conn_read(c, buf, sizeof buf) >= 0 || true); /* an alert, or nothing */
    gorc_conn_close(c);
    /* A client that speaks only TLS 1.2, against a TLS 1.3-only server. */
    gorc_tls_config *c12 = client_cfg(&ca, NULL, 0, GORC_TLS_V12, GORC_TLS_V12, 0);
    CHECK_EQ(dial_err(addr, c12, "localhost"), GORC_ETLSVERSION);
    srv_stop(&s);
    CHECK_EQ(atomic_load(&s.hs_err), GORC_ETLSVERSION);
    CHECK_EQ(atomic_load(&s.served), 0);
    gorc_tls_config_free(c12);
    gorc_tls_config_free(sc);
    /* The garbage alone. */
    sc = server_cfg(&leaf, NULL, 0, 0, 0);
    srv_start(&s, sc, 1, addr, sizeof addr);
    CHECK_EQ(gorc_tcp_dial(&c, addr, GORC_SECOND), 0);
    CHECK_EQ(gorc_conn_write_all(c, req, sizeof req - 1), (ssize_t)sizeof req - 1);
    gorc_conn_read(c, buf, sizeof buf);
    srv_stop(&s);
    CHECK_EQ(atomic_load(&s.hs_err), GORC_ETLSHANDSHAKE);
    gorc_conn_close(c);
    gorc_tls_config_free(sc);
    wait_count(g);
}

static void duplex_reader(void *arg)
{
    void **a = arg;
    char buf[5];
    a[1] = (void *)(intptr_t)gorc_conn_read_full(a[0], buf, 5);
}

GO_TEST(test_duplex)
{
    int64_t g = base_count();
    gorc_tls_config *sc = server_cfg(&leaf, NULL, 0, 0, 0);
    gorc_tls_config *cc = client_cfg(&ca, NULL, 0, 0, 0, 0);
    char addr[64];
    echo_srv s;
    srv_start(&s, sc, 1, addr, sizeof addr);
    gorc_conn *c;
    CHECK_EQ(gorc_tls_dial(&c, addr, cc, GORC_SECOND, NULL), 0);
    gorc_waitgroup wg = {0};
    void *a[2] = {c, NULL};
    CHECK_EQ(gorc_waitgroup_go(&wg, duplex_reader, a), 0);
    gorc_sleep(20 * MS); /* the reader is parked inside SSL_read's wait now */
    CHECK_EQ(gorc_conn_write_all(c, "12345", 5), 5); /* must not wait for the reader */
    gorc_waitgroup_wait(&wg);
    CHECK_EQ((intptr_t)a[1], 5);
    gorc_conn_close(c);
    srv_stop(&s);
    gorc_tls_config_free(sc);
    gorc_tls_config_free(cc);
    wait_count(g);
}

GO_TEST(test_sendfile)
{
    int64_t g = base_count();
    gorc_tls_config *sc = server_cfg(&leaf, NULL, 0, 0, 0);
    gorc_tls_config *cc = client_cfg(&ca, NULL, 0, 0, 0, 0);
    char path[] = "/tmp/gorc-tls-sendfile-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    size_t n = 200000;
    char *data = malloc(n), *got = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i % 251);
    CHECK_EQ(write(fd, data, n), (ssize_t)n);
    char addr[64];
    echo_srv s;
    srv_start(&s, sc, 1, addr, sizeof addr);
    gorc_conn *c;
    CHECK_EQ(gorc_tls_dial(&c, addr, cc, GORC_SECOND, NULL), 0);
    CHECK_EQ(gorc_conn_sendfile(c, fd, 1000, 100000), 100000);
    CHECK_EQ(gorc_conn_read_full(c, got, 100000), 100000);
    CHECK(memcmp(got, data + 1000, 100000) == 0);
    CHECK_EQ(gorc_conn_sendfile(c, fd, (int64_t)n - 10, 20), -EIO); /* the file ends first */
    gorc_conn_close(c);
    srv_stop(&s);
    close(fd);
    free(data);
    free(got);
    gorc_tls_config_free(sc);
    gorc_tls_config_free(cc);
    wait_count(g);
}

static void hello(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)r;
    (void)arg;
    gorc_http_rw_write_string(w, "hello https\n");
}

static void serve(void *arg)
{
    void **a = arg;
    gorc_http_server_serve(a[0], a[1]);
}

GO_TEST(test_http)
{
    int64_t g = base_count();
    int fds = count_fds();
    gorc_tls_config *sc = server_cfg(&leaf, NULL, 0, 0, 0);
    gorc_tls_config *cc = client_cfg(&ca, NULL, 0, 0, 0, 0);
    char addr[64];
    gorc_listener *l = listen_tls(sc, addr, sizeof addr);
    gorc_http_server_opts so = {.handler = hello};
    gorc_http_server *srv;
    CHECK_EQ(gorc_http_server_new(&srv, &so), 0);
    void *a[2] = {srv, l};
    gorc_waitgroup wg = {0};
    CHECK_EQ(gorc_waitgroup_go(&wg, serve, a), 0);
    const char *port = strrchr(addr, ':') + 1;
    char url[128];
    snprintf(url, sizeof url, "https://localhost:%s/x", port);
    /* Without the hook: https is not supported. */
    gorc_http_client *plain;
    CHECK_EQ(gorc_http_client_new(&plain, NULL), 0);
    gorc_http_response *r;
    CHECK_EQ(gorc_http_client_get(plain, url, &r), -EPROTONOSUPPORT);
    gorc_http_client_free(plain);
    gorc_http_client_opts co = {0};
    gorc_tls_http_client_opts(&co, cc);
    gorc_http_client *cl;
    CHECK_EQ(gorc_http_client_new(&cl, &co), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(gorc_http_client_get(cl, url, &r), 0);
        CHECK_EQ(r->status, 200);
        CHECK_EQ(strncmp(r->url, "https://", 8), 0);
        char *body;
        CHECK_EQ(gorc_http_response_read_all(r, &body, 0), 12);
        CHECK_EQ(strcmp(body, "hello https\n"), 0);
        free(body);
        gorc_http_response_close(r);
    }
    char key[128];
    snprintf(key, sizeof key, "https://localhost:%s", port);
    CHECK_EQ(gorc_http_client_idle_conns(cl, key), 1); /* one connection, pooled and reused */
    snprintf(key, sizeof key, "localhost:%s", port);
    CHECK_EQ(gorc_http_client_idle_conns(cl, key), 0); /* pooled apart from plain http */
    gorc_http_server_stats st;
    gorc_http_server_stats_get(srv, &st);
    CHECK_EQ(st.conns_total, 1);
    CHECK_EQ(st.requests, 3);
    /* A wrong name is the TLS error, through the HTTP client. */
    snprintf(url, sizeof url, "https://127.0.0.2:%s/", port);
    gorc_http_client_free(cl);
    gorc_http_server_close(srv);
    gorc_waitgroup_wait(&wg);
    gorc_http_server_free(srv);
    gorc_listener_release(l);
    gorc_tls_config_free(sc);
    gorc_tls_config_free(cc);
    wait_count(g);
    CHECK_EQ(count_fds(), fds);
}

GO_TEST(test_errors)
{
    int64_t g = base_count();
    gorc_tls_config *cfg;
    CHECK_EQ(gorc_tls_server_config_new(NULL, NULL), -EINVAL);
    CHECK_EQ(gorc_tls_server_config_new(&cfg, NULL), -EINVAL);
    gorc_tls_server_opts o = {0};
    CHECK_EQ(gorc_tls_server_config_new(&cfg, &o), -EINVAL);
    gorc_tls_cert bad = {.cert_pem = "not pem", .key_pem = leaf.key_pem};
    o = (gorc_tls_server_opts){.certs = &bad, .num_certs = 1};
    CHECK_EQ(gorc_tls_server_config_new(&cfg, &o), GORC_ETLSBADCERT);
    gorc_tls_cert missing = {.cert_file = "/nonexistent/cert.pem", .key_file = "/nonexistent"};
    o.certs = &missing;
    CHECK_EQ(gorc_tls_server_config_new(&cfg, &o), GORC_ETLSBADCERT);
    gorc_tls_cert good = {.cert_pem = leaf.cert_pem, .key_pem = leaf.key_pem};
    o = (gorc_tls_server_opts){.certs = &good, .num_certs = 1, .min_version = 0x0301};
    CHECK_EQ(gorc_tls_server_config_new(&cfg, &o), -EINVAL); /* TLS 1.0 is not offered */
    static const char *const empty[] = {""};
    o = (gorc_tls_server_opts){.certs = &good, .num_certs = 1, .alpn = empty, .num_alpn = 1};
    CHECK_EQ(gorc_tls_server_config_new(&cfg, &o), -EINVAL);
    gorc_tls_client_opts co = {.ca_pem = "garbage"};
    CHECK_EQ(gorc_tls_client_config_new(&cfg, &co), GORC_ETLSBADCERT);
    CHECK_EQ(gorc_tls_client_config_new(&cfg, NULL), 0); /* the system store */
    gorc_conn *c;
    CHECK_EQ(gorc_tls_dial(&c, "127.0.0.1:1", cfg, GORC_SECOND, NULL), -ECONNREFUSED);
    CHECK_EQ(gorc_tls_dial(&c, NULL, cfg, 0, NULL), -EINVAL);
    CHECK_EQ(gorc_tls_server(&c, NULL, cfg), -EINVAL);
    CHECK_EQ(gorc_tls_config_reload(cfg, &good, 1), -EINVAL); /* a client configuration */
    gorc_tls_state st;
    CHECK_EQ(gorc_tls_conn_state(NULL, &st), -EINVAL);
    gorc_listener *l;
    CHECK_EQ(gorc_tcp_listen(&l, "127.0.0.1:0", NULL), 0);
    gorc_listener *tl;
    CHECK_EQ(gorc_tls_listen(&tl, l, cfg), -EINVAL); /* closed l */
    char a[64];
    CHECK_EQ(gorc_tcp_listen(&l, "127.0.0.1:0", NULL), 0);
    CHECK(gorc_listener_addr(l, a, sizeof a) > 0);
    gorc_conn *raw;
    CHECK_EQ(gorc_tcp_dial(&raw, a, GORC_SECOND), 0);
    CHECK_EQ(gorc_tls_client(&c, raw, cfg, ""), -EINVAL); /* verification needs a name */
    CHECK_EQ(gorc_tcp_dial(&raw, a, GORC_SECOND), 0);
    CHECK_EQ(gorc_tls_client(&c, raw, cfg, "localhost"), 0);
    CHECK_EQ(gorc_tls_conn_state(c, &st), -EAGAIN);        /* no handshake yet */
    CHECK_EQ(gorc_conn_read_from(c, a, 1, NULL), -EINVAL); /* UDP calls: not on TLS */
    CHECK_EQ(gorc_conn_raw_read(c, NULL, NULL, NULL), -EINVAL);
    char b = 0;
    CHECK_EQ(gorc_conn_raw_recv(c, &b, 1), -EINVAL); /* layered */
    CHECK_EQ(gorc_conn_raw_send(NULL, &b, 1), -EINVAL);
    CHECK_EQ(gorc_conn_raw_recv(gorc_conn_inner(c), NULL, 1), -EINVAL);
    CHECK_EQ(gorc_conn_raw_recv(gorc_conn_inner(c), &b, 1), -EAGAIN); /* nothing sent yet */
    CHECK(!gorc_conn_simulated(NULL));
    gorc_conn_close(c);
    gorc_listener_close(l);
    gorc_tls_config_free(cfg);
    gorc_tls_config_free(NULL);
    CHECK(strstr(gorc_strerror(GORC_ETLSEXPIRED), "expired") != NULL);
    CHECK(strstr(gorc_strerror(GORC_ETLSHOSTNAME), "host") != NULL);
    CHECK(strstr(gorc_strerror(GORC_ETLSUNKNOWNCA), "unknown authority") != NULL);
    CHECK(strstr(gorc_strerror(GORC_ETLSVERSION), "version") != NULL);
    CHECK(strstr(gorc_strerror(GORC_ETLSHANDSHAKE), "handshake") != NULL);
    CHECK(strstr(gorc_strerror(GORC_ETLSBADCERT), "certificate") != NULL);
    wait_count(g);
}

int main(void)
{
    ca = test_cert("gorc test CA", NULL, NULL, -3600, 86400);
    ca2 = test_cert("gorc test CA 2", NULL, NULL, -3600, 86400);
    leaf = test_cert("localhost", "DNS:localhost,IP:127.0.0.1", &ca, -3600, 86400);
    leaf_b = test_cert("b.test", "DNS:b.test,DNS:*.wild.test", &ca, -3600, 86400);
    leaf2 = test_cert("localhost", "DNS:localhost", &ca2, -3600, 86400);
    expired = test_cert("localhost", "DNS:localhost", &ca, -7200, -3600);
    other_ca_leaf = test_cert("localhost", "DNS:localhost", &ca2, -3600, 86400);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo),     cmocka_unit_test(test_verify),
        cmocka_unit_test(test_sni),      cmocka_unit_test(test_resume),
        cmocka_unit_test(test_reload),   cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_garbage),  cmocka_unit_test(test_duplex),
        cmocka_unit_test(test_sendfile), cmocka_unit_test(test_http),
        cmocka_unit_test(test_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_pki *all[] = {&ca, &ca2, &leaf, &leaf_b, &leaf2, &expired, &other_ca_leaf};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        test_pki_free(all[i]);
    return rc;
}
