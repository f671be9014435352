/*
 * tls_e2e_server.c - the HTTPS server under test for tests/e2e/tls-e2e and the TLS benchmarks,
 * and a one-shot HTTPS client for the tests against other servers.
 *
 * The server is tests/e2e/http_e2e_server.c itself - the same handlers, limits and command
 * line - compiled with its TCP listener wrapped by gorc_tls_listen: so every check the HTTP
 * end-to-end tests make of the handlers can be made again over TLS, and a difference between
 * the two runs is the TLS layer's. The certificates come from the environment (the HTTP
 * server's options stay as they are):
 *
 *   TLS_CERT, TLS_KEY     the default certificate chain and key (PEM files; required)
 *   TLS_CERT2, TLS_KEY2   a second certificate, chosen by SNI (optional)
 *   TLS_ALPN              ALPN protocols, comma-separated (optional)
 *   TLS_MIN               "1.3" refuses TLS 1.2 too (default: 1.2 and 1.3)
 *
 * SIGHUP reloads the certificate files (gorc_tls_config_reload): connections open at the
 * time keep working, new handshakes see the new certificate; "reloaded" or "reload failed"
 * is printed. This is how a service wires certificate renewal, and the demo of it.
 *
 *   tls_e2e_server fetch URL [CA_FILE]   GET URL with gorc's HTTP client (verifying against
 *                                        CA_FILE, or the system store); prints the status and
 *                                        body, or "error NAME: text" and exits 2.
 *
 * Built as tests/e2e/h2s_e2e_server.c (GORC_E2E_HTTP2, linking libgorc_http2 too) it serves h2
 * to connections whose ALPN chose it, and fetch goes over h2 when the server chooses it,
 * printing "proto 2" (or 1) first.
 */
#include <gorc.h>
#include <gorc_http.h>
#include <gorc_net.h>
#include <gorc_tls.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static int tls_e2e_listen(gorc_listener **out, const char *addr, const gorc_listen_opts *o);

/* The HTTP server's program, with its listener made by tls_e2e_listen and its main renamed. */
#define gorc_tcp_listen tls_e2e_listen
#define main            http_e2e_main
#include "http_e2e_server.c"
#undef main
#undef gorc_tcp_listen

static gorc_tls_config *tls;
static int hupfd = -1;

static size_t load_certs(gorc_tls_cert *c)
{
    memset(c, 0, 2 * sizeof *c);
    c[0].cert_file = getenv("TLS_CERT");
    c[0].key_file = getenv("TLS_KEY");
    c[1].cert_file = getenv("TLS_CERT2");
    c[1].key_file = getenv("TLS_KEY2");
    return c[1].cert_file && c[1].key_file ? 2 : 1;
}

static const char *err_name(int rc)
{
    switch (rc) {
    case GORC_ETLSHANDSHAKE:
        return "GORC_ETLSHANDSHAKE";
    case GORC_ETLSEXPIRED:
        return "GORC_ETLSEXPIRED";
    case GORC_ETLSHOSTNAME:
        return "GORC_ETLSHOSTNAME";
    case GORC_ETLSUNKNOWNCA:
        return "GORC_ETLSUNKNOWNCA";
    case GORC_ETLSVERSION:
        return "GORC_ETLSVERSION";
    case GORC_ETLSBADCERT:
        return "GORC_ETLSBADCERT";
    default:
        return "other";
    }
}

/* SIGHUP: reload the certificates from their files. */
static void watch_hup(void *arg)
{
    gorc_conn *c = arg;
    struct signalfd_siginfo si;
    while (gorc_conn_read_full(c, &si, sizeof si) == (ssize_t)sizeof si) {
        gorc_tls_cert certs[2];
        size_t n = load_certs(certs);
        int rc = gorc_tls_config_reload(tls, certs, n);
        if (rc == 0)
            printf("reloaded\n");
        else
            printf("reload failed: %s\n", gorc_strerror(rc));
        fflush(stdout);
    }
    gorc_conn_close(c);
}

static int tls_e2e_listen(gorc_listener **out, const char *addr, const gorc_listen_opts *o)
{
    gorc_tls_cert certs[2];
    size_t n = load_certs(certs);
    if (certs[0].cert_file == NULL || certs[0].key_file == NULL) {
        fprintf(stderr, "tls_e2e_server: TLS_CERT and TLS_KEY must name PEM files\n");
        return -EINVAL;
    }
    const char *alpn[8];
    size_t nalpn = 0;
    char *list = getenv("TLS_ALPN") ? strdup(getenv("TLS_ALPN")) : NULL, *save = NULL;
    for (char *p = list ? strtok_r(list, ",", &save) : NULL; p && nalpn < 8;
         p = strtok_r(NULL, ",", &save))
        alpn[nalpn++] = p;
    const char *min = getenv("TLS_MIN");
    gorc_tls_server_opts so = {.certs = certs,
                               .num_certs = n,
                               .alpn = nalpn ? alpn : NULL,
                               .num_alpn = nalpn,
                               .min_version = min && strcmp(min, "1.3") == 0 ? GORC_TLS_V13 : 0};
    int rc = gorc_tls_server_config_new(&tls, &so);
    free(list);
    if (rc != 0) {
        fprintf(stderr, "tls_e2e_server: %s\n", gorc_strerror(rc));
        return rc;
    }
    gorc_listener *raw;
    if ((rc = gorc_tcp_listen(&raw, addr, o)) != 0)
        return rc;
    gorc_conn *hup;
    if (hupfd >= 0 && gorc_conn_from_fd(&hup, hupfd) == 0)
        gorc_go(watch_hup, hup);
    return gorc_tls_listen(out, raw, tls);
}

/* ------------------------------------------------------------------------------------------
 * fetch: the client side
 * ---------------------------------------------------------------------------------------- */

typedef struct fetch_args {
    const char *url, *ca;
    int rc;
} fetch_args;

static void fetch(void *arg)
{
    fetch_args *a = arg;
    gorc_tls_client_opts co = {.ca_file = a->ca, .session_cache = 4};
    gorc_tls_config *cc;
    int rc = gorc_tls_client_config_new(&cc, &co);
    gorc_http_client_opts ho = {0};
    gorc_http_client *cl = NULL;
    gorc_http_response *r = NULL;
#ifdef GORC_E2E_HTTP2 /* h2s_e2e_server.c: h2 when the server chooses it by ALPN */
    gorc_http2_client *h2c = NULL;
    if (rc == 0)
        rc = gorc_http2_configure_client(&ho, NULL, &h2c);
#endif
    if (rc == 0) {
        gorc_tls_http_client_opts(&ho, cc);
        rc = gorc_http_client_new(&cl, &ho);
    }
    if (rc == 0)
        rc = gorc_http_client_get(cl, a->url, &r);
    if (rc == 0) {
        char *body;
        ssize_t n = gorc_http_response_read_all(r, &body, 0);
        if (n >= 0) {
#ifdef GORC_E2E_HTTP2
            printf("proto %d\n", r->proto_major);
#endif
            printf("status %d\n%s", r->status, body);
            free(body);
        } else {
            rc = (int)n;
        }
        gorc_http_response_close(r);
    }
    if (rc != 0)
        printf("error %s: %s\n", err_name(rc), gorc_strerror(rc));
    gorc_http_client_free(cl);
#ifdef GORC_E2E_HTTP2
    gorc_http2_client_free(h2c);
#endif
    gorc_tls_config_free(cc);
    a->rc = rc;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "fetch") == 0) {
        fetch_args a = {.url = argv[2], .ca = argc > 3 && argv[3][0] ? argv[3] : NULL};
        if (gorc_main(fetch, &a) != 0)
            return 1;
        return a.rc == 0 ? 0 : 2;
    }
    /* SIGHUP goes to a signalfd; blocked before any thread exists, so all inherit the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    hupfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    return http_e2e_main(argc, argv);
}
