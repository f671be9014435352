/*
 * h2taste.c - libgorc_http2 as an installed library: an h2c server and the HTTP/2 client in one
 * program, one request. Prints "h2 200 HTTP/2" (tests/consumers/run builds it with
 * pkg-config gorc-http2 and with CMake's gorc::http2 targets).
 */
#include <gorc.h>
#include <gorc_http.h>
#include <gorc_http2.h>

#include <stdio.h>
#include <stdlib.h>

static void hello(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    gorc_http_rw_printf(w, "HTTP/%d", r->proto_major);
}

static gorc_http_server *srv;
static gorc_listener *ln;

static void serve(void *arg)
{
    (void)arg;
    gorc_http_server_serve(srv, ln);
}

static void run(void *arg)
{
    (void)arg;
    gorc_http_server_opts so = {.handler = hello};
    gorc_http2_opts ho = {.h2c = true};
    gorc_http2_server *h2s;
    char addr[GORC_ADDRSTRLEN], url[GORC_ADDRSTRLEN + 16];
    if (gorc_http_server_new(&srv, &so) < 0 || gorc_http2_configure_server(srv, &ho, &h2s) < 0 ||
        gorc_tcp_listen(&ln, "127.0.0.1:0", NULL) < 0 ||
        gorc_listener_addr(ln, addr, sizeof addr) < 0)
        return;
    gorc_go(serve, NULL);
    gorc_http_client_opts co = {.timeout = 10 * GORC_SECOND};
    gorc_http2_client_opts hc = {.h2c_prior_knowledge = true};
    gorc_http2_client *h2c;
    gorc_http_client *c;
    gorc_http_response *resp;
    char *body;
    snprintf(url, sizeof url, "http://%s/", addr);
    if (gorc_http2_configure_client(&co, &hc, &h2c) == 0 && gorc_http_client_new(&c, &co) == 0 &&
        gorc_http_client_get(c, url, &resp) == 0) {
        if (gorc_http_response_read_all(resp, &body, 0) >= 0) {
            printf("h2 %d %s\n", resp->status, body);
            free(body);
        }
        gorc_http_response_close(resp);
        gorc_http_client_free(c);
        gorc_http2_client_free(h2c);
    }
    gorc_http_server_shutdown(srv, gorc_now() + 5 * GORC_SECOND);
    gorc_listener_release(ln);
    gorc_http_server_free(srv);
    gorc_http2_server_free(h2s);
}

int main(void)
{
    return gorc_main(run, NULL);
}
