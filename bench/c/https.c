/* https: the hello-world HTTPS server of the https100, tlshandshake and tlsidle workloads. It
 * listens on ADDR with the certificate chain CERT and key KEY (PEM files) and answers every
 * request with "Hello, World!\n" as text/plain until it is killed; bench/run measures it from
 * outside with wrk, next to the same server in Go (bench/go/https, crypto/tls) and nginx.
 *
 * bench/c/http.c over gorc_tls_listen, with libgorc_tls's defaults: TLS 1.2 and 1.3 (1.3
 * chosen with wrk), X25519 first, session tickets on, ALPN "http/1.1" (as Go's server would
 * negotiate with a client that offers only that), the HTTP server's default timeouts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gorc.h"
#include "gorc_http.h"
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
    static const char *const alpn[] = {"http/1.1"};
    gorc_tls_cert cert = {.cert_file = args[2], .key_file = args[3]};
    gorc_tls_server_opts to = {.certs = &cert, .num_certs = 1, .alpn = alpn, .num_alpn = 1};
    gorc_http_server_opts opts = {.handler = handler};
    gorc_tls_config *cfg;
    gorc_http_server *s;
    gorc_listener *raw, *l;
    int rc = gorc_tls_server_config_new(&cfg, &to);
    if (rc == 0)
        rc = gorc_http_server_new(&s, &opts);
    if (rc == 0)
        rc = gorc_tcp_listen(&raw, args[1], NULL);
    if (rc == 0)
        rc = gorc_tls_listen(&l, raw, cfg);
    if (rc == 0) {
        fprintf(stderr, "https: gorc on %s, %d Ps\n", args[1], gorc_maxprocs());
        rc = gorc_http_server_serve(s, l);
    }
    fprintf(stderr, "https: %s\n", gorc_strerror(rc));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: https ADDR CERT KEY\n");
        return 2;
    }
    args = argv;
    int rc = gorc_main(serve, NULL);
    fprintf(stderr, "https: gorc_main: %s\n", strerror(-rc));
    return 1;
}
