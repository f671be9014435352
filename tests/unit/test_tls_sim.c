/*
 * test_tls_sim.c - libgorc_tls on the simulated network of a simulation run (cmocka; run
 * bodies are goroutines of a run, certificates are made at test time: tls_testutil.h).
 *
 * Covers: a TLS server on one host and a client on another, over a link with latency and
 * jitter, handshake (TLS 1.3, ALPN, the server's name verified) and exchange a few hundred
 * KiB in messages of sizes drawn from the seed, checked byte for byte in both directions at
 * once; the connection is simulated and kTLS stays off though the configuration asks for it;
 * two runs of one seed give the same schedule trace, the same virtual times of every read and
 * the same end time, although OpenSSL's randomness (not the seed's) makes the handshake bytes
 * differ - and another seed gives another schedule; a reset of the hosts' connections fails
 * a TLS read blocked meanwhile with -ECONNRESET at the virtual time of the reset, and the
 * peer's read too; connection resets injected at a rate fail exchanges with -ECONNRESET and
 * leave the rest correct; a partition holds a handshake back in virtual time until it heals,
 * and one that does not heal ends the handshake at the configuration's timeout, exactly.
 */
#include "testutil.h"
#include "tls_testutil.h"

#include <gorc_net.h>
#include <gorc_sim.h>
#include <gorc_tls.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS GORC_MILLISECOND
#define S  GORC_SECOND

static test_pki ca, leaf;

static uint64_t fnv_bytes(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const uint8_t *)p)[i]) * 1099511628211ULL;
    return h;
}

#define FNV0 1469598103934665603ULL

static uint64_t fnv_file(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    uint64_t h = FNV0;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        h = fnv_bytes(h, buf, n);
    fclose(f);
    return h;
}

static void temp_path(char *path)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

/* ------------------------------------------------------------------------------------------
 * The server: a TLS echo service on host "srv", port 8443
 * ---------------------------------------------------------------------------------------- */

typedef struct srv {
    gorc_listener *l;
    gorc_waitgroup wg;
    int hs_err;   /* the last failed server handshake */
    int read_err; /* the last read error of a served connection */
} srv;

typedef struct srv_conn {
    srv *s;
    gorc_conn *c;
} srv_conn;

static void echo_conn(void *arg)
{
    srv_conn *sc = arg;
    srv *s = sc->s;
    gorc_conn *c = sc->c;
    free(sc);
    int rc = gorc_conn_handshake(c);
    if (rc != 0) {
        s->hs_err = rc;
    } else {
        char buf[8192];
        ssize_t n;
        while ((n = gorc_conn_read(c, buf, sizeof buf)) > 0)
            if (gorc_conn_write_all(c, buf, (size_t)n) != n)
                break;
        if (n < 0)
            s->read_err = (int)n;
    }
    gorc_conn_close(c);
    gorc_waitgroup_done(&s->wg);
}

static void accept_loop(void *arg)
{
    srv *s = arg;
    gorc_conn *c;
    while (gorc_listener_accept(s->l, &c) == 0) {
        srv_conn *sc = malloc(sizeof *sc);
        CHECK(sc != NULL);
        *sc = (srv_conn){s, c};
        gorc_waitgroup_add(&s->wg, 1);
        CHECK_EQ(gorc_go(echo_conn, sc), 0);
    }
    gorc_listener_release(s->l); /* the reference listen_on_srv took for this loop */
    gorc_waitgroup_done(&s->wg);
}

static void listen_on_srv(void *arg)
{
    srv *s = arg;
    static const char *const alpn[] = {"h2", "http/1.1"};
    gorc_tls_cert cert = {.cert_pem = leaf.cert_pem, .key_pem = leaf.key_pem};
    gorc_tls_server_opts o = {.certs = &cert, .num_certs = 1, .alpn = alpn, .num_alpn = 2};
    gorc_tls_config *cfg;
    CHECK_EQ(gorc_tls_server_config_new(&cfg, &o), 0);
    gorc_listener *raw;
    CHECK_EQ(gorc_tcp_listen(&raw, ":8443", NULL), 0);
    CHECK_EQ(gorc_tls_listen(&s->l, raw, cfg), 0);
    gorc_tls_config_free(cfg); /* the listener holds its own reference */
    gorc_listener_retain(s->l);
    CHECK_EQ(gorc_go(accept_loop, s), 0);
}

/* Two hosts, the link between them, and the server started on "srv". */
static void start(srv *s, const gorc_sim_link *l)
{
    memset(s, 0, sizeof *s);
    CHECK_EQ(gorc_sim_host("srv", "10.0.0.2"), 1);
    CHECK_EQ(gorc_sim_link_set(NULL, NULL, l), 0);
    gorc_waitgroup_add(&s->wg, 1);
    CHECK_EQ(gorc_sim_go_on("srv", listen_on_srv, s), 0);
    gorc_sleep(MS); /* listening by then: starting it takes no virtual time */
}

static void stop(srv *s)
{
    gorc_listener_close(s->l); /* gives up the reference, and ends accept_loop */
    gorc_waitgroup_wait(&s->wg);
}

static gorc_tls_config *client_cfg(int64_t hs_timeout, bool ktls)
{
    static const char *const alpn[] = {"http/1.1", "h2"};
    gorc_tls_client_opts o = {.ca_pem = ca.cert_pem,
                              .alpn = alpn,
                              .num_alpn = 2,
                              .handshake_timeout = hs_timeout,
                              .ktls = ktls};
    gorc_tls_config *cfg;
    CHECK_EQ(gorc_tls_client_config_new(&cfg, &o), 0);
    return cfg;
}

/* ------------------------------------------------------------------------------------------
 * Exchange: byte for byte, and the same schedule for the same seed
 * ---------------------------------------------------------------------------------------- */

enum { MSGS = 40, MAXMSG = 20000 };

typedef struct xchg {
    /* what the run reports */
    size_t bytes;
    uint64_t times; /* digest of the virtual time and size of every read of the echo */
    int64_t hs_took, end;
    char proto[16];
    bool simulated, ktls_send;
    int version;
    /* the writer's side */
    gorc_conn *c;
    size_t sizes[MSGS];
    char *out;
    ssize_t wrc;
} xchg;

static void writer(void *arg)
{
    xchg *x = arg;
    size_t off = 0;
    x->wrc = 0;
    for (int i = 0; i < MSGS; i++) {
        ssize_t w = gorc_conn_write_all(x->c, x->out + off, x->sizes[i]);
        if (w != (ssize_t)x->sizes[i]) {
            x->wrc = w;
            return;
        }
        off += x->sizes[i];
        gorc_sleep((int64_t)(gorc_sim_rand() % 5) * MS);
    }
}

static void xchg_main(void *arg)
{
    xchg *x = arg;
    gorc_sim_link l = {.latency = 20 * MS, .jitter = 10 * MS};
    srv s;
    start(&s, &l);
    gorc_tls_config *cc = client_cfg(0, true);
    int64_t t0 = gorc_now();
    gorc_conn *c;
    CHECK_EQ(gorc_tls_dial(&c, "srv:8443", cc, 10 * S, NULL), 0);
    x->hs_took = gorc_now() - t0;
    gorc_tls_state st;
    CHECK_EQ(gorc_tls_conn_state(c, &st), 0);
    x->version = st.version;
    x->ktls_send = st.ktls_send;
    x->simulated = gorc_conn_simulated(c);
    snprintf(x->proto, sizeof x->proto, "%s", gorc_conn_protocol(c));
    size_t total = 0;
    for (int i = 0; i < MSGS; i++) {
        x->sizes[i] = 1 + (size_t)(gorc_sim_rand() % MAXMSG);
        total += x->sizes[i];
    }
    x->out = malloc(total);
    char *in = malloc(total);
    CHECK(x->out != NULL && in != NULL);
    for (size_t i = 0; i < total; i++)
        x->out[i] = (char)(gorc_sim_rand() >> 56);
    x->c = c;
    gorc_waitgroup wg = {0};
    CHECK_EQ(gorc_waitgroup_go(&wg, writer, x), 0);
    x->times = FNV0;
    while (x->bytes < total) {
        ssize_t n = gorc_conn_read(c, in + x->bytes, total - x->bytes);
        CHECK(n > 0);
        int64_t rec[2] = {gorc_now() - t0, n};
        x->times = fnv_bytes(x->times, rec, sizeof rec);
        x->bytes += (size_t)n;
    }
    gorc_waitgroup_wait(&wg);
    CHECK_EQ(x->wrc, 0);
    CHECK(memcmp(in, x->out, total) == 0);
    free(in);
    free(x->out);
    gorc_conn_close(c);
    gorc_tls_config_free(cc);
    stop(&s);
    x->end = gorc_now() - t0;
}

static void test_exchange(void **state)
{
    (void)state;
    char ta[] = "/tmp/gorc-tlssim-XXXXXX", tb[] = "/tmp/gorc-tlssim-XXXXXX",
         tc[] = "/tmp/gorc-tlssim-XXXXXX";
    temp_path(ta);
    temp_path(tb);
    temp_path(tc);
    xchg a = {0}, b = {0}, c = {0};
    assert_int_equal(gorc_sim_run(5, xchg_main, &a, &(gorc_sim_opts){.trace = ta}), 0);
    assert_true(a.simulated);
    assert_false(a.ktls_send); /* asked for, but there is no kernel socket */
    assert_int_equal(a.version, GORC_TLS_V13);
    assert_string_equal(a.proto, "h2"); /* the server's preference */
    assert_true(a.bytes > 100000);
    /* TCP's round trip, then TLS 1.3's one: two round trips of 40-60 ms each. */
    assert_true(a.hs_took >= 80 * MS && a.hs_took < 200 * MS);
    assert_int_equal(gorc_sim_run(5, xchg_main, &b, &(gorc_sim_opts){.trace = tb}), 0);
    uint64_t ha = fnv_file(ta), hb = fnv_file(tb);
    print_message("    seed 5: %zu bytes echoed, handshake %.3f ms, end %.3f ms, trace %016llx, "
                  "twice\n",
                  a.bytes, (double)a.hs_took / 1e6, (double)a.end / 1e6, (unsigned long long)ha);
    assert_true(ha == hb);
    assert_true(a.times == b.times);
    assert_int_equal(a.hs_took, b.hs_took);
    assert_int_equal(a.end, b.end);
    assert_int_equal(gorc_sim_run(6, xchg_main, &c, &(gorc_sim_opts){.trace = tc}), 0);
    assert_true(fnv_file(tc) != ha);
    assert_true(c.times != a.times);
    unlink(ta);
    unlink(tb);
    unlink(tc);
}

/* ------------------------------------------------------------------------------------------
 * Resets
 * ---------------------------------------------------------------------------------------- */

typedef struct rst {
    int read_rc, srv_err;
    int64_t read_at, reset_at;
} rst;

static void reset_later(void *arg)
{
    rst *r = arg;
    gorc_sleep(2 * S);
    r->reset_at = gorc_now();
    CHECK_EQ(gorc_sim_reset("main", "srv"), 2); /* both ends of the one connection */
}

static void reset_main(void *arg)
{
    rst *r = arg;
    gorc_sim_link l = {.latency = 5 * MS, .jitter = 2 * MS};
    srv s;
    start(&s, &l);
    gorc_tls_config *cc = client_cfg(0, false);
    gorc_conn *c;
    CHECK_EQ(gorc_tls_dial(&c, "srv:8443", cc, 10 * S, NULL), 0);
    CHECK_EQ(gorc_conn_write_all(c, "ping", 4), 4);
    char buf[16];
    CHECK_EQ(gorc_conn_read_full(c, buf, 4), 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    CHECK_EQ(gorc_go(reset_later, r), 0);
    /* Blocked inside TLS (SSL_read wants a record) when the reset comes. */
    r->read_rc = (int)gorc_conn_read(c, buf, sizeof buf);
    r->read_at = gorc_now();
    gorc_conn_close(c);
    gorc_tls_config_free(cc);
    stop(&s);
    r->srv_err = s.read_err;
}

static void test_reset_mid_stream(void **state)
{
    (void)state;
    rst r = {0};
    assert_int_equal(gorc_sim_run(11, reset_main, &r, NULL), 0);
    assert_int_equal(r.read_rc, -ECONNRESET);
    assert_int_equal(r.read_at, r.reset_at); /* at once, in virtual time */
    assert_int_equal(r.srv_err, -ECONNRESET);
}

typedef struct flt {
    int ok, resets, other;
} flt;

static void faults_main(void *arg)
{
    flt *f = arg;
    gorc_sim_link l = {.latency = MS};
    srv s;
    start(&s, &l);
    gorc_tls_config *cc = client_cfg(0, false);
    static char out[32 * 1024], in[sizeof out];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (char)(i * 13);
    for (int round = 0; round < 30; round++) {
        gorc_conn *c;
        int rc = gorc_tls_dial(&c, "srv:8443", cc, 10 * S, NULL);
        ssize_t w = 0, n = 0;
        if (rc == 0) {
            /* Small enough to sit in the window while the echo comes back. */
            w = gorc_conn_write_all(c, out, sizeof out);
            n = w == (ssize_t)sizeof out ? gorc_conn_read_full(c, in, sizeof in) : w;
            gorc_conn_close(c);
        }
        int err = rc ? rc : w < 0 ? (int)w : n < 0 ? (int)n : 0;
        if (err == 0) {
            CHECK_EQ(n, (ssize_t)sizeof in);
            CHECK(memcmp(in, out, sizeof in) == 0);
            f->ok++;
        } else if (err == -ECONNRESET) {
            f->resets++;
        } else {
            f->other++;
            print_message("    round %d: %d (%s)\n", round, err, gorc_strerror(err));
        }
    }
    gorc_tls_config_free(cc);
    stop(&s);
}

static void test_fault_resets(void **state)
{
    (void)state;
    flt f = {0};
    gorc_sim_opts o = {.faults = 1u << GORC_SIM_FAULT_RESET, .fault_rate = 0.01};
    assert_int_equal(gorc_sim_run(12, faults_main, &f, &o), 0);
    print_message("    %d exchanges whole, %d reset\n", f.ok, f.resets);
    assert_true(f.resets > 0);
    assert_true(f.ok > 0);
    assert_int_equal(f.other, 0);
}

/* ------------------------------------------------------------------------------------------
 * Partitions and the handshake timeout
 * ---------------------------------------------------------------------------------------- */

typedef struct part {
    int healed_rc, cut_rc;
    int64_t healed_took, cut_took;
} part;

static void heal_later(void *arg)
{
    (void)arg;
    gorc_sleep(S);
    CHECK_EQ(gorc_sim_partition("main", "srv", false), 0);
}

/* Dial over TCP, cut the network, then handshake with hs_timeout: the handshake's result and
 * how long it took in virtual time. */
static int cut_handshake(int64_t hs_timeout, bool heal, int64_t *took)
{
    gorc_tls_config *cc = client_cfg(hs_timeout, false);
    gorc_conn *raw, *c;
    CHECK_EQ(gorc_tcp_dial(&raw, "srv:8443", S), 0);
    CHECK_EQ(gorc_tls_client(&c, raw, cc, "srv"), 0);
    CHECK_EQ(gorc_sim_partition("main", "srv", true), 0);
    if (heal)
        CHECK_EQ(gorc_go(heal_later, NULL), 0);
    int64_t t0 = gorc_now();
    int rc = gorc_conn_handshake(c);
    *took = gorc_now() - t0;
    if (rc == 0) {
        CHECK_EQ(gorc_conn_write_all(c, "after", 5), 5);
        char buf[8];
        CHECK_EQ(gorc_conn_read_full(c, buf, 5), 5);
        CHECK(memcmp(buf, "after", 5) == 0);
    }
    gorc_conn_close(c);
    gorc_tls_config_free(cc);
    if (!heal)
        CHECK_EQ(gorc_sim_partition("main", "srv", false), 0);
    return rc;
}

static void partition_main(void *arg)
{
    part *p = arg;
    gorc_sim_link l = {.latency = 10 * MS, .jitter = 5 * MS};
    srv s;
    start(&s, &l);
    p->healed_rc = cut_handshake(3 * S, true, &p->healed_took);
    p->cut_rc = cut_handshake(3 * S, false, &p->cut_took);
    stop(&s);
}

static void test_partition_handshake(void **state)
{
    (void)state;
    part p = {0};
    assert_int_equal(gorc_sim_run(13, partition_main, &p, NULL), 0);
    print_message("    healed after 1 s: handshake in %.3f ms; never healed: %s after %.3f ms\n",
                  (double)p.healed_took / 1e6, gorc_strerror(p.cut_rc), (double)p.cut_took / 1e6);
    assert_int_equal(p.healed_rc, 0);
    /* Held back until the heal; then the ClientHello's retransmission (every 200 ms) and one
     * round trip of at most 30 ms. */
    assert_true(p.healed_took >= S && p.healed_took < S + 200 * MS + 60 * MS);
    assert_int_equal(p.cut_rc, -ETIMEDOUT);
    assert_int_equal(p.cut_took, 3 * S); /* the configuration's handshake timeout, exactly */
}

int main(void)
{
    ca = test_cert("gorc test CA", NULL, NULL, -3600, 86400);
    leaf = test_cert("srv", "DNS:srv", &ca, -3600, 86400);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exchange),
        cmocka_unit_test(test_reset_mid_stream),
        cmocka_unit_test(test_fault_resets),
        cmocka_unit_test(test_partition_handshake),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_pki_free(&ca);
    test_pki_free(&leaf);
    return rc;
}
