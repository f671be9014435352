/*
 * http2_get.c - the gorc HTTP/2 client against other servers (tests/e2e/http2-e2e): GET URL
 * COUNT times from COUNT goroutines at once over h2c with prior knowledge, read every body,
 * and print one line: "ok=N status=S bytes=B dials=D proto=P" (S and P of the last response,
 * B the total body bytes, D the connections the client dialed: 1 when it multiplexed).
 *
 *   http2_get URL [COUNT]
 */
#include <gorc.h>
#include <gorc_http.h>
#include <gorc_http2.h>
#ifdef GORC_E2E_TLS /* tests/e2e/h2s_get.c */
#include <gorc_tls.h>
#endif

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static const char *url;
static gorc_http_client *client;
static atomic_int oks, last_status, last_proto;
static atomic_long bytes;
static gorc_waitgroup wg;

static void get(void *arg)
{
    (void)arg;
    gorc_http_response *r;
    int rc = gorc_http_client_get(client, url, &r);
    if (rc == 0) {
        char *b;
        ssize_t n = gorc_http_response_read_all(r, &b, 0);
        if (n >= 0) {
            atomic_fetch_add(&oks, 1);
            atomic_fetch_add(&bytes, n);
            free(b);
        }
        atomic_store(&last_status, r->status);
        atomic_store(&last_proto, r->proto_major);
        gorc_http_response_close(r);
    } else {
        fprintf(stderr, "http2_get: %s: %s\n", url, gorc_strerror(rc));
    }
    gorc_waitgroup_done(&wg);
}

static int count = 1;

static void run(void *arg)
{
    (void)arg;
    gorc_http_client_opts co = {.timeout = 20 * GORC_SECOND};
    gorc_http2_client_opts ho = {.h2c_prior_knowledge = true};
    gorc_http2_client *h2;
#ifdef GORC_E2E_TLS
    gorc_tls_client_opts to = {.ca_file = getenv("H2S_CA")};
    gorc_tls_config *tls;
    int rc = gorc_tls_client_config_new(&tls, &to);
    if (rc < 0) {
        fprintf(stderr, "h2s_get: %s\n", gorc_strerror(rc));
        return;
    }
    gorc_tls_http_client_opts(&co, tls);
#endif
    if (gorc_http2_configure_client(&co, &ho, &h2) < 0 || gorc_http_client_new(&client, &co) < 0)
        return;
    for (int i = 0; i < count; i++) {
        gorc_waitgroup_add(&wg, 1);
        if (gorc_go(get, NULL) < 0)
            gorc_waitgroup_done(&wg);
    }
    gorc_waitgroup_wait(&wg);
    printf("ok=%d status=%d bytes=%ld dials=%llu proto=%d\n", atomic_load(&oks),
           atomic_load(&last_status), atomic_load(&bytes),
           (unsigned long long)gorc_http2_client_dials(h2), atomic_load(&last_proto));
    gorc_http_client_free(client);
    gorc_http2_client_free(h2);
#ifdef GORC_E2E_TLS
    gorc_tls_config_free(tls);
#endif
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: http2_get URL [COUNT]\n");
        return 2;
    }
    url = argv[1];
    if (argc > 2)
        count = atoi(argv[2]);
    return gorc_main(run, NULL) == 0 ? 0 : 1;
}
