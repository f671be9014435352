/*
 * gateway.c - the fan-out gateway done right: every request asks three backends at once with
 * a 100 ms budget, answers with what came back in time, and cancels the rest.
 *
 *   make build/release/examples/gateway && build/release/examples/gateway [HOST:PORT]
 *   curl http://127.0.0.1:8090/           {"users":"...","prices":"...","reviews":"timeout"}
 *   curl http://127.0.0.1:8090/stats      goroutines, descriptors, pooled connections, ...
 *
 * The three backends run in the same process on ports of their own: "users" and "prices"
 * answer at once, "reviews" takes a second. Each gateway request makes a context with a
 * 100 ms timeout from the request's own context (so a client that leaves cancels it too),
 * starts the three calls in a task group, and waits for the group. A call that runs out of
 * budget is cancelled: the HTTP client cuts its connection, and the slow backend sees its own
 * request context cancelled (it counts those, /stats shows it), so no goroutine, connection or
 * buffer is left working for an answer nobody will read. Nothing here needs reference-counted
 * ownership code: the context and the group say who waits for whom.
 *
 * tests/e2e/gateway-e2e drives 10,000 requests through it and checks the answers, the
 * cancellations, and that goroutines, descriptors and pooled connections return to their
 * baseline.
 */
#include <gorc.h>
#include <gorc_context.h>
#include <gorc_http.h>
#include <gorc_net.h>
#include <gorc_signal.h>

#include <dirent.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUDGET    (100 * GORC_MILLISECOND)
#define SLOW_TIME GORC_SECOND
#define NBACKENDS 3

static const char *const names[NBACKENDS] = {"users", "prices", "reviews"};
static char urls[NBACKENDS][GORC_ADDRSTRLEN + 16];
static gorc_http_client *client;
static _Atomic long slow_started, slow_cancelled, slow_completed, served;
static _Atomic long partial; /* answers missing a fast backend too (out of budget on a busy host) */

/* ---- the backends ---- */

static void backend(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    const char *name = arg;
    if (strcmp(name, "reviews") == 0) {
        /* Slow: a second of work that stops when the caller goes away. */
        atomic_fetch_add(&slow_started, 1);
        if (gorc_sleep_ctx(SLOW_TIME, gorc_http_request_ctx(r)) != 0) {
            atomic_fetch_add(&slow_cancelled, 1);
            return;
        }
        atomic_fetch_add(&slow_completed, 1);
    }
    gorc_http_rw_printf(w, "%s of %s", name, r->query[0] ? r->query : "everyone");
}

/* ---- the gateway ---- */

typedef struct call {
    int i;
    char body[128];
    int err; /* 0, or why this backend is missing from the answer */
} call;

static int call_backend(gorc_ctx *ctx, void *arg)
{
    call *c = arg;
    gorc_http_client_request q = {.url = urls[c->i], .ctx = ctx};
    gorc_http_response *resp;
    c->err = gorc_http_client_do(client, &q, &resp);
    if (c->err == 0) {
        ssize_t n = gorc_http_response_read(resp, c->body, sizeof c->body - 1);
        c->err = n < 0 ? (int)n : 0;
        c->body[n > 0 ? n : 0] = 0;
        gorc_http_response_close(resp);
    }
    return 0; /* a missing backend is a partial answer, not a failed request */
}

static void fan_out(gorc_http_rw *w, gorc_http_request *r)
{
    gorc_ctx *ctx;
    gorc_group *g;
    if (gorc_ctx_with_timeout(&ctx, gorc_http_request_ctx(r), BUDGET, 0) != 0) {
        gorc_http_error(w, 503, NULL);
        return;
    }
    call calls[NBACKENDS] = {{0}};
    if (gorc_group_new(&g, ctx) == 0) {
        for (int i = 0; i < NBACKENDS; i++) {
            calls[i].i = i;
            if (gorc_group_go(g, call_backend, &calls[i]) != 0)
                calls[i].err = -ENOMEM;
        }
        gorc_group_free(g); /* waits for the three */
    } else {
        for (int i = 0; i < NBACKENDS; i++)
            calls[i].err = -ENOMEM;
    }
    gorc_ctx_cancel(ctx);
    gorc_ctx_release(ctx);
    gorc_http_rw_set_header(w, "Content-Type", "application/json");
    gorc_http_rw_write_string(w, "{");
    for (int i = 0; i < NBACKENDS; i++)
        gorc_http_rw_printf(w, "%s\"%s\":\"%s\"", i ? "," : "", names[i],
                            calls[i].err == 0            ? calls[i].body
                            : calls[i].err == -ETIMEDOUT ? "timeout"
                                                         : gorc_strerror(calls[i].err));
    gorc_http_rw_write_string(w, "}\n");
    if (calls[0].err != 0 || calls[1].err != 0)
        atomic_fetch_add(&partial, 1);
    atomic_fetch_add(&served, 1);
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (d == NULL)
        return -1;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own descriptor */
}

static void gateway(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    (void)arg;
    if (strcmp(r->path, "/stats") == 0) {
        gorc_http_rw_set_header(w, "Content-Type", "application/json");
        gorc_http_rw_printf(w,
                            "{\"goroutines\":%lld,\"fds\":%d,\"idle_conns\":%d,\"served\":%ld,"
                            "\"partial\":%ld,\"slow_started\":%ld,\"slow_cancelled\":%ld,"
                            "\"slow_completed\":%ld}\n",
                            (long long)gorc_count(), open_fds(),
                            gorc_http_client_idle_conns(client, NULL), atomic_load(&served),
                            atomic_load(&partial), atomic_load(&slow_started),
                            atomic_load(&slow_cancelled), atomic_load(&slow_completed));
    } else if (strcmp(r->path, "/") == 0) {
        fan_out(w, r);
    } else {
        gorc_http_error(w, 404, NULL);
    }
}

/* ---- main ---- */

typedef struct run {
    const char *addr;
    int status;
} run;

/* a[0] serves on a[1] until it is shut down. */
static void serve_backend(void *arg)
{
    void **a = arg;
    gorc_http_server_serve(a[0], a[1]);
    free(a);
}

static void body(void *arg)
{
    run *ru = arg;
    gorc_http_server *backends[NBACKENDS], *front;
    ru->status = 1;
    if (gorc_http_client_new(&client, NULL) != 0)
        return;
    for (int i = 0; i < NBACKENDS; i++) {
        gorc_http_server_opts o = {.handler = backend, .arg = (void *)names[i]};
        gorc_listener *l;
        void **a = malloc(2 * sizeof *a);
        char addr[GORC_ADDRSTRLEN];
        if (a == NULL || gorc_http_server_new(&backends[i], &o) != 0 ||
            gorc_tcp_listen(&l, "127.0.0.1:0", NULL) != 0 ||
            gorc_listener_addr(l, addr, sizeof addr) < 0) {
            fprintf(stderr, "gateway: cannot start backend %s\n", names[i]);
            return;
        }
        snprintf(urls[i], sizeof urls[i], "http://%s/", addr);
        a[0] = backends[i];
        a[1] = l;
        gorc_go(serve_backend, a);
    }
    gorc_http_server_opts o = {.handler = gateway};
    gorc_listener *l;
    int rc = gorc_http_server_new(&front, &o);
    if (rc == 0)
        rc = gorc_tcp_listen(&l, ru->addr, NULL);
    if (rc != 0) {
        fprintf(stderr, "gateway: cannot listen on %s: %s\n", ru->addr, gorc_strerror(rc));
        return;
    }
    char addr[GORC_ADDRSTRLEN];
    gorc_listener_addr(l, addr, sizeof addr);
    printf("gateway on http://%s/ (backends %s %s %s); Ctrl-C stops it\n", addr, urls[0], urls[1],
           urls[2]);
    fflush(stdout);

    /* Ctrl-C or SIGTERM: a context that a signal cancels, and a goroutine that waits on it. */
    static const int sigs[] = {SIGINT, SIGTERM};
    gorc_ctx *stop;
    if (gorc_signal_notify_ctx(&stop, gorc_ctx_background(), sigs, 2) != 0)
        return;
    void **a = malloc(2 * sizeof *a);
    if (a == NULL)
        return;
    a[0] = front;
    a[1] = l;
    gorc_go(serve_backend, a);
    gorc_chan_recv(gorc_ctx_done(stop), NULL);
    gorc_http_server_shutdown(front, gorc_now() + 2 * GORC_SECOND);
    gorc_http_server_free(front);
    for (int i = 0; i < NBACKENDS; i++) {
        gorc_http_server_shutdown(backends[i], gorc_now() + 2 * GORC_SECOND);
        gorc_http_server_free(backends[i]);
    }
    gorc_http_client_free(client);
    gorc_ctx_release(stop);
    printf("served %ld requests; %ld slow calls cancelled, %ld completed\n", atomic_load(&served),
           atomic_load(&slow_cancelled), atomic_load(&slow_completed));
    ru->status = 0;
}

int main(int argc, char **argv)
{
    run ru = {.addr = argc > 1 ? argv[1] : "127.0.0.1:8090"};
    if (gorc_main(body, &ru) != 0)
        return 1;
    return ru.status;
}
