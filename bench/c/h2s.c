/* h2s: the hello-world server of the h2-over-TLS workloads (h2, h2-nginx, h2-h2o, h2s100). It
 * listens on ADDR with the certificate chain CERT and key KEY (PEM files) and answers every
 * request with "Hello, World!\n" as text/plain until it is killed; bench/run loads it with
 * h2load over TLS next to Go (bench/go/h2s), nginx (listen ... ssl http2) and h2o.
 *
 * bench/c/https.c with libgorc_http2 on the same gorc_http_server: the TLS configuration
 * offers "h2" and "http/1.1" by ALPN, a connection that chose "h2" is served by libgorc_http2
 * (gorc_http2_configure_server, its defaults: 250 streams, 1 MiB windows), any other by
 * HTTP/1.1. libgorc_tls's defaults otherwise (TLS 1.2 and 1.3, X25519 first, tickets on). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gorc.h"
#include "gorc_http.h"
#include "gorc_http2.h"
#include "gorc_tls.h"

static const char hello[] = "Hello, World!\n";
static char **args;

static void handler(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)r;
    (void)arg;
    gorc_http_rw_set_header(w, "Content-Type", "text/plain; charset=utf-8");
    gorc_http_rw_write(w, hello, sizeof hello - 1);
}

static void serve(void *arg)
{
    (void)arg;
    static const char *const alpn[] = {"h2", "http/1.1"};
    gorc_tls_cert cert = {.cert_file = args[2], .key_file = args[3]};
    gorc_tls_server_opts to = {.certs = &cert, .num_certs = 1, .alpn = alpn, .num_alpn = 2};
    gorc_http_server_opts opts = {.handler = handler};
    gorc_tls_config *cfg;
    gorc_http_server *s;
    gorc_http2_server *h2;
    gorc_listener *raw, *l;
    int rc = gorc_tls_server_config_new(&cfg, &to);
    if (rc == 0)
        rc = gorc_http_server_new(&s, &opts);
    if (rc == 0)
        rc = gorc_http2_configure_server(s, NULL, &h2);
    if (rc == 0)
        rc = gorc_tcp_listen(&raw, args[1], NULL);
    if (rc == 0)
        rc = gorc_tls_listen(&l, raw, cfg);
    if (rc == 0) {
        fprintf(stderr, "h2s: gorc on %s, %d Ps, nghttp2 %s\n", args[1], gorc_maxprocs(),
                gorc_http2_nghttp2_version());
        rc = gorc_http_server_serve(s, l);
    }
    fprintf(stderr, "h2s: %s\n", gorc_strerror(rc));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: h2s ADDR CERT KEY\n");
        return 2;
    }
    args = argv;
    int rc = gorc_main(serve, NULL);
    fprintf(stderr, "h2s: gorc_main: %s\n", gorc_strerror(rc));
    return 1;
}
