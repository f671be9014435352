/* h2: the hello-world HTTP/2 server of the h2c workloads (h2c with prior knowledge on a plain
 * port). The same handler as bench/c/http.c on a gorc_http_server configured with libgorc_http2
 * (gorc_http2_configure_server, h2c on, every other option its default); bench/run loads it
 * with h2load -c100 -m10 next to nginx (listen ... http2) and h2o. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gorc.h"
#include "gorc_http.h"
#include "gorc_http2.h"

static const char hello[] = "Hello, World!\n";

static void handler(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)r;
    (void)arg;
    gorc_http_rw_set_header(w, "Content-Type", "text/plain; charset=utf-8");
    gorc_http_rw_write(w, hello, sizeof hello - 1);
}

static void serve(void *arg)
{
    const char *addr = arg;
    gorc_http_server_opts opts = {.handler = handler};
    gorc_http2_opts h2o = {.h2c = true};
    gorc_http_server *s;
    gorc_http2_server *h2;
    int rc = gorc_http_server_new(&s, &opts);
    if (rc == 0)
        rc = gorc_http2_configure_server(s, &h2o, &h2);
    if (rc == 0) {
        fprintf(stderr, "h2: gorc on %s, %d Ps, nghttp2 %s\n", addr, gorc_maxprocs(),
                gorc_http2_nghttp2_version());
        rc = gorc_http_server_listen_and_serve(s, addr);
    }
    fprintf(stderr, "h2: %s\n", strerror(-rc));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: h2 ADDR (e.g. 127.0.0.1:8080)\n");
        return 2;
    }
    int rc = gorc_main(serve, argv[1]);
    fprintf(stderr, "h2: gorc_main: %s\n", strerror(-rc));
    return 1;
}
