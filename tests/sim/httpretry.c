/*
 * httpretry.c - a planted HTTP client retry bug that only connection resets show, for the
 * simulation's exploration driver (tests/e2e/sim-e2e).
 *
 *   sim_httpretry buggy | fixed
 *
 * A counter service: POST /incr adds one and answers the new value. A client wants exactly
 * N increments and retries a request that failed. The buggy client retries blindly: when the
 * connection is reset after the server has counted the request but before the answer
 * arrived, the retry counts it twice. On a real loopback network resets do not happen, so
 * every plain run passes; under simulation with GORC_SIM_FAULTS=reset some seed resets a
 * connection at that point, the final count is wrong, and the seed replays it. The fixed
 * client sends an idempotency key with each request (the same one on a retry) and the server
 * counts each key once. The server and the client are unchanged gorc HTTP code on the
 * simulated network, on two hosts.
 * Exit status: 0 when the count is N, 1 when it is not.
 */
#include <gorc.h>
#include <gorc_http.h>
#include <gorc_net.h>
#include <gorc_sim.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 30

static bool fixed;
static long counter;
static bool seen[N + 1];
static gorc_mutex mu;

static void handler(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    gorc_mutex_lock(&mu);
    if (strcmp(r->method, "POST") == 0) {
        const char *key = gorc_http_request_header(r, "Idempotency-Key");
        int k = key ? atoi(key) : 0;
        if (!(fixed && k > 0 && k <= N && seen[k]))
            counter++;
        if (k > 0 && k <= N)
            seen[k] = true;
    }
    long v = counter;
    gorc_mutex_unlock(&mu);
    gorc_http_rw_printf(w, "%ld\n", v);
}

static void serve(void *arg)
{
    gorc_http_server *s = arg;
    gorc_http_server_listen_and_serve(s, ":8080");
}

static int post(gorc_http_client *cl, const char *url, int key)
{
    char kv[16];
    snprintf(kv, sizeof kv, "%d", key);
    gorc_http_header h = {.name = "Idempotency-Key", .value = kv};
    gorc_http_client_request req = {.method = "POST", .url = url, .body = "+1", .body_len = 2};
    if (fixed) {
        req.headers = &h;
        req.num_headers = 1;
    }
    gorc_http_response *resp;
    int rc = gorc_http_client_do(cl, &req, &resp);
    if (rc != 0)
        return rc;
    char *body;
    ssize_t n = gorc_http_response_read_all(resp, &body, 4096);
    int status = resp->status;
    gorc_http_response_close(resp);
    if (n < 0)
        return (int)n;
    free(body);
    return status == 200 ? 0 : -EPROTO;
}

static void run(void *arg)
{
    (void)arg;
    gorc_sim_host("api", "10.0.0.2"); /* -EINVAL outside a simulation: then "api" is unknown */
    const char *url = gorc_sim_active() ? "http://api:8080/incr" : "http://127.0.0.1:8080/incr";
    gorc_http_server_opts so = {.handler = handler};
    gorc_http_server *s;
    if (gorc_http_server_new(&s, &so) != 0)
        exit(3);
    if (gorc_sim_active())
        gorc_sim_go_on("api", serve, s);
    else
        gorc_go(serve, s);
    gorc_sleep(10 * GORC_MILLISECOND);
    gorc_http_client_opts co = {.timeout = 5 * GORC_SECOND};
    gorc_http_client *cl;
    if (gorc_http_client_new(&cl, &co) != 0)
        exit(3);
    for (int i = 1; i <= N; i++) {
        int tries = 0, rc;
        while ((rc = post(cl, url, i)) != 0 && ++tries < 50) /* the retry */
            gorc_sleep(10 * GORC_MILLISECOND);
        if (rc != 0) {
            fprintf(stderr, "httpretry: request %d failed %d times: %s\n", i, tries,
                    gorc_strerror(rc));
            exit(3);
        }
    }
    gorc_http_client_free(cl);
    gorc_http_server_shutdown(s, gorc_now() + GORC_SECOND);
    gorc_http_server_free(s);
    if (counter != N) {
        fprintf(stderr, "httpretry: %d increments were asked for, the counter says %ld\n", N,
                counter);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "buggy") != 0 && strcmp(argv[1], "fixed") != 0)) {
        fprintf(stderr, "usage: sim_httpretry buggy|fixed\n");
        return 64;
    }
    fixed = strcmp(argv[1], "fixed") == 0;
    return gorc_main(run, NULL) == 0 ? 0 : 1;
}
