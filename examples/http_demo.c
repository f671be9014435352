/*
 * http_demo.c - a small web server on gorc: a live dashboard of the runtime serving it.
 *
 *   make demo                                   (or build/release/examples/http_demo)
 *   build/release/examples/http_demo 9000       another port; "host:port" works too
 *   build/release/examples/http_demo 8080 30    stop by itself after 30 seconds
 *   build/release/examples/http_demo 8080 -tls 8443 -cert cert.pem -key key.pem
 *                                               HTTPS too, with HTTP/2 (make demo does this)
 *
 * Every connection is served by its own goroutine, so handlers are written as plain blocking
 * code: /sleep/{ms} sleeps, /stream sleeps between lines, and neither holds up anyone else,
 * because a sleeping goroutine parks and frees its thread. The page at / shows this from the
 * inside: it polls /stats once a second and displays the goroutine count, the Ps (threads
 * running goroutines), the requests served and the open connections.
 *
 * It also mounts the debugging endpoints any gorc server can have (docs/observability.md):
 * /debug/pprof/ for go tool pprof (`go tool pprof -top http://127.0.0.1:8080/debug/pprof/
 * profile?seconds=5`) and /metrics for Prometheus.
 *
 * Signals arrive as channel values (gorc_signal_notify, Go's signal.Notify): an ordinary
 * goroutine receives SIGINT or SIGTERM and shuts the server down gracefully (requests in
 * progress finish, idle connections close).
 *
 * Restarts drop nothing (gorc_restart.h, docs/restart.md): SIGUSR2 starts a new copy of the
 * demo - rebuild it first and the new binary runs - which serves on the same listening
 * socket; once it is serving, this one stops accepting, finishes its requests and exits.
 *
 * With -tls the same server also listens for HTTPS (libgorc_tls on OpenSSL): ALPN picks HTTP/2
 * (libgorc_http2 on nghttp2) or HTTP/1.1 for each connection, with the same handlers; the
 * plain port takes prior-knowledge HTTP/2 (h2c) too. SIGHUP reloads the certificate and key
 * from their files: new handshakes use them, connections already open keep going.
 */
#include <gorc.h>
#include <gorc_http.h>
#include <gorc_http2.h>
#include <gorc_http_debug.h>
#include <gorc_trace.h>
#include <gorc_net.h>
#include <gorc_restart.h>
#include <gorc_signal.h>
#include <gorc_tls.h>

#include <ctype.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ECHO      (1 << 20)
#define MAX_SLEEP_MS  10000
#define STREAM_LINES  10
#define STREAM_PERIOD (200 * GORC_MILLISECOND)
#define GRACE         (5 * GORC_SECOND)

static gorc_http_server *server;
static int64_t started;
static gorc_chan *stopped; /* closed when the graceful shutdown has returned */
static atomic_bool stopping;
static atomic_int shutdown_rc;
static gorc_restart *restart;      /* hands the listener to a new process on SIGUSR2 */
static gorc_chan *restart_watched; /* closed when watch_restart has returned */
static gorc_tls_config *tls;       /* the HTTPS listener's certificate, reloaded on SIGHUP */
static gorc_chan *tls_served;      /* closed when the HTTPS listener's serve has returned */

static const char page[] =
    "<!doctype html>\n"
    "<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>gorc HTTP demo</title>\n"
    "<style>\n"
    "body{font:16px/1.5 system-ui,sans-serif;max-width:44em;margin:2em auto;padding:0 1em;"
    "color:#222}\n"
    "h1{font-size:1.6em;margin-bottom:.2em}\n"
    ".grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(12em,1fr));gap:.8em;"
    "margin:1.5em 0}\n"
    ".fig{border:1px solid #ddd;border-radius:8px;padding:.7em 1em}\n"
    ".fig b{display:block;font-size:1.9em;font-variant-numeric:tabular-nums}\n"
    ".fig span{color:#666;font-size:.9em}\n"
    "code{background:#f3f3f3;padding:0 .3em;border-radius:3px}\n"
    "#status{color:#666;font-size:.9em}\n"
    "</style></head><body>\n"
    "<h1>gorc: Go's runtime, in C</h1>\n"
    "<p>This page is served by a C program. Every connection has its own goroutine; "
    "the figures below come from <a href=\"/stats\">/stats</a>, fetched every second.</p>\n"
    "<div class=\"grid\">\n"
    "<div class=\"fig\"><b id=\"goroutines\">-</b><span>goroutines</span></div>\n"
    "<div class=\"fig\"><b id=\"procs\">-</b><span>Ps (parallel threads)</span></div>\n"
    "<div class=\"fig\"><b id=\"requests\">-</b><span>requests served</span></div>\n"
    "<div class=\"fig\"><b id=\"conns\">-</b><span>open connections</span></div>\n"
    "<div class=\"fig\"><b id=\"conns_total\">-</b><span>connections so far</span></div>\n"
    "<div class=\"fig\"><b id=\"uptime\">-</b><span>uptime</span></div>\n"
    "<div class=\"fig\"><b id=\"proto\">-</b><span>this page's protocol</span></div>\n"
    "</div>\n"
    "<p id=\"status\">waiting for the first update...</p>\n"
    "<h2>Try it</h2>\n"
    "<ul>\n"
    "<li><a href=\"/hello\">/hello</a>: <code>Hello, World!</code></li>\n"
    "<li><a href=\"/stream\">/stream</a>: ten lines, 200 ms apart, each sent as it is "
    "written (chunked)</li>\n"
    "<li><a href=\"/sleep/2000\">/sleep/2000</a>: a handler that sleeps two seconds; the "
    "goroutine parks and everything else keeps being served</li>\n"
    "<li><code>curl --data-binary 'some text' URL/echo</code>: the body back</li>\n"
    "<li><code>ab -k -n 100000 -c 100 URL/hello</code>: and watch the figures above</li>\n"
    "</ul>\n"
    "<script>\n"
    "'use strict';\n"
    "const base = location.origin;\n"
    "for (const c of document.querySelectorAll('code'))\n"
    "  c.textContent = c.textContent.replace('URL', base);\n"
    "let polls = 0;\n"
    "function uptime(ms) {\n"
    "  const s = Math.floor(ms / 1000), m = Math.floor(s / 60), h = Math.floor(m / 60);\n"
    "  if (h) return h + ' h ' + (m % 60) + ' min';\n"
    "  if (m) return m + ' min ' + (s % 60) + ' s';\n"
    "  return s + ' s';\n"
    "}\n"
    "function show(id, v) { document.getElementById(id).textContent = v; }\n"
    "async function poll() {\n"
    "  try {\n"
    "    const r = await fetch('/stats', {cache: 'no-store'});\n"
    "    const s = await r.json();\n"
    "    show('goroutines', s.goroutines);\n"
    "    show('procs', s.procs);\n"
    "    show('requests', s.requests);\n"
    "    show('conns', s.conns_open);\n"
    "    show('conns_total', s.conns_total);\n"
    "    show('uptime', uptime(s.uptime_ms));\n"
    "    show('proto', s.proto + (location.protocol === 'https:' ? ' over TLS' : ''));\n"
    "    polls++;\n"
    "    show('status', 'updated ' + polls + ' times, last at ' +\n"
    "         new Date().toLocaleTimeString());\n"
    "  } catch (e) {\n"
    "    show('status', 'server unreachable (' + e.message + ')');\n"
    "  }\n"
    "}\n"
    "poll();\n"
    "setInterval(poll, 1000);\n"
    "</script>\n"
    "</body></html>\n";

/* ------------------------------------------------------------------------------------------
 * Handlers
 * ---------------------------------------------------------------------------------------- */

static void index_page(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    gorc_http_rw_set_header(w, "Content-Type", "text/html; charset=utf-8");
    gorc_http_rw_write(w, page, sizeof page - 1);
}

static void stats(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    gorc_http_server_stats st;
    gorc_http_server_stats_get(server, &st);
    gorc_http_rw_set_header(w, "Content-Type", "application/json");
    gorc_http_rw_set_header(w, "Cache-Control", "no-store");
    gorc_http_rw_printf(
        w,
        "{\"goroutines\":%" PRId64 ",\"procs\":%d,\"requests\":%" PRIu64 ",\"conns_open\":%" PRIu64
        ",\"conns_active\":%" PRIu64 ",\"conns_total\":%" PRIu64 ",\"bad_requests\":%" PRIu64
        ",\"timeouts\":%" PRIu64 ",\"uptime_ms\":%" PRId64 ",\"proto\":\"HTTP/%d.%d\"}\n",
        gorc_count(), gorc_maxprocs(), st.requests, st.conns_open, st.conns_active, st.conns_total,
        st.bad_requests, st.timeouts, (gorc_now() - started) / GORC_MILLISECOND, r->proto_major,
        r->proto_minor);
}

static void hello(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    gorc_http_rw_set_header(w, "Content-Type", "text/plain; charset=utf-8");
    gorc_http_rw_write_string(w, "Hello, World!\n");
}

/* Each line is flushed as it is written, so the response is chunked and the client sees the
 * lines arrive one by one. nosniff keeps browsers from waiting for more bytes to guess the
 * type before they display anything. */
static void stream(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    gorc_http_rw_set_header(w, "Content-Type", "text/plain; charset=utf-8");
    gorc_http_rw_set_header(w, "X-Content-Type-Options", "nosniff");
    int64_t t0 = gorc_now();
    for (int i = 1; i <= STREAM_LINES; i++) {
        if (i > 1)
            gorc_sleep(STREAM_PERIOD);
        if (gorc_http_rw_printf(w, "line %d of %d at +%" PRId64 " ms\n", i, STREAM_LINES,
                                (gorc_now() - t0) / GORC_MILLISECOND) < 0 ||
            gorc_http_rw_flush(w) < 0)
            return; /* the client went away */
    }
}

static void sleep_ms(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    const char *s = gorc_http_request_path_value(r, "ms");
    char *end = "";
    long ms = s && isdigit((unsigned char)*s) ? strtol(s, &end, 10) : -1;
    if (ms < 0 || *end != '\0' || ms > MAX_SLEEP_MS) {
        gorc_http_error(w, 400, "want /sleep/MS with MS from 0 to 10000");
        return;
    }
    gorc_sleep(ms * GORC_MILLISECOND);
    gorc_http_rw_printf(w, "slept %ld ms (%" PRId64 " goroutines now)\n", ms, gorc_count());
}

static void echo(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    char *body;
    ssize_t n = gorc_http_request_read_all(r, &body, MAX_ECHO);
    if (n < 0) {
        if (n == GORC_HTTP_ETOOLARGE)
            gorc_http_error(w, 413, "body over 1 MiB");
        return;
    }
    const char *ct = gorc_http_request_header(r, "Content-Type");
    gorc_http_rw_set_header(w, "Content-Type", ct ? ct : "application/octet-stream");
    gorc_http_rw_write(w, body, (size_t)n);
    free(body);
}

static int routes(gorc_http_mux *m)
{
    static const struct {
        const char *pattern;
        gorc_http_handler_fn fn;
    } table[] = {
        {"GET /{$}", index_page}, {"GET /stats", stats}, {"GET /hello", hello},
        {"GET /stream", stream},  {"POST /echo", echo},  {"GET /sleep/{ms}", sleep_ms},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        int rc = gorc_http_mux_handle(m, table[i].pattern, table[i].fn, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Start-up and shutdown
 * ---------------------------------------------------------------------------------------- */

typedef struct args {
    char addr[GORC_ADDRSTRLEN];
    char tls_addr[GORC_ADDRSTRLEN]; /* "" = no HTTPS */
    const char *cert, *key;         /* PEM files of the HTTPS certificate and its key */
    long seconds;                   /* stop after this long; 0 = run until a signal */
    int status;
} args;

/* Runs once: from the signal goroutine or the timer goroutine, whichever comes first. */
static void stop(const char *why)
{
    if (atomic_exchange(&stopping, true))
        return;
    printf("\n%s: shutting down (requests in progress get up to %d s)\n", why,
           (int)(GRACE / GORC_SECOND));
    fflush(stdout);
    atomic_store(&shutdown_rc, gorc_http_server_shutdown(server, gorc_now() + GRACE));
    gorc_chan_close(stopped);
}

static void watch_signals(void *arg)
{
    int sig;
    if (gorc_chan_recv(arg, &sig) == 0) /* -EPIPE: closed at exit, no signal came */
        stop(sig == SIGINT ? "interrupt" : "terminated");
}

static void stop_later(void *arg)
{
    gorc_sleep(((args *)arg)->seconds * GORC_SECOND);
    stop("time is up");
}

/* The successor is serving: drain and exit (gorc_restart_exit closes). */
static void watch_restart(void *arg)
{
    (void)arg;
    gorc_chan_recv(gorc_restart_exit(restart), NULL);
    if (gorc_restart_successor(restart) > 0) {
        char why[64];
        snprintf(why, sizeof why, "restarted (process %d serves now)",
                 gorc_restart_successor(restart));
        stop(why);
    }
    gorc_chan_close(restart_watched);
}

/* SIGHUP: load the certificate and key again; a bad pair leaves the old one in force. */
static void watch_hup(void *arg)
{
    args *a = arg;
    static const int sigs[] = {SIGHUP};
    gorc_chan *hup;
    int sig;
    if (gorc_chan_new(&hup, sizeof(int), 1) < 0 || gorc_signal_notify(hup, sigs, 1) < 0)
        return;
    while (gorc_chan_recv(hup, &sig) == 0) {
        gorc_tls_cert c = {.cert_file = a->cert, .key_file = a->key};
        int rc = gorc_tls_config_reload(tls, &c, 1);
        printf("SIGHUP: %s%s\n", rc == 0 ? "certificate reloaded from " : "reload failed: ",
               rc == 0 ? a->cert : gorc_strerror(rc));
        fflush(stdout);
    }
}

static void serve_tls(void *arg)
{
    gorc_listener *ln = arg;
    int rc = gorc_http_server_serve(server, ln);
    if (rc != GORC_HTTP_ESERVERCLOSED)
        fprintf(stderr, "http_demo: serve https: %s\n", gorc_strerror(rc));
    gorc_listener_release(ln);
    gorc_chan_close(tls_served);
}

static int listen_on(const char *addr, gorc_listener **ln)
{
    /* The listener inherited from the process that restarted into this one, or a new one. */
    int rc = gorc_restart_listen(restart, ln, addr, NULL);
    if (rc == -EADDRINUSE)
        fprintf(stderr,
                "http_demo: %s is already in use (another server running?); pick another "
                "port: http_demo 8081\n",
                addr);
    else if (rc < 0)
        fprintf(stderr, "http_demo: cannot listen on %s: %s\n", addr, strerror(-rc));
    return rc;
}

/* The HTTPS listener: TLS over a listener of the restart set, ALPN choosing h2 or HTTP/1.1. */
static int listen_tls(args *a, gorc_listener **out)
{
    static const char *const alpn[] = {"h2", "http/1.1"};
    gorc_tls_cert c = {.cert_file = a->cert, .key_file = a->key};
    gorc_tls_server_opts so = {.certs = &c, .num_certs = 1, .alpn = alpn, .num_alpn = 2};
    int rc = gorc_tls_server_config_new(&tls, &so);
    if (rc < 0) {
        fprintf(stderr, "http_demo: certificate %s, key %s: %s\n", a->cert, a->key,
                gorc_strerror(rc));
        return rc;
    }
    gorc_listener *raw;
    if ((rc = listen_on(a->tls_addr, &raw)) < 0)
        return rc;
    if ((rc = gorc_tls_listen(out, raw, tls)) < 0)
        fprintf(stderr, "http_demo: TLS listener: %s\n", gorc_strerror(rc));
    return rc;
}

static void banner(gorc_listener *ln, gorc_listener *tln)
{
    char where[GORC_ADDRSTRLEN], tls_where[GORC_ADDRSTRLEN] = "";
    gorc_listener_addr(ln, where, sizeof where);
    if (tln)
        gorc_listener_addr(tln, tls_where, sizeof tls_where);
    printf("gorc %d.%d.%d HTTP demo on %d Ps: open http://%s/\n"
           "  GET  /            live figures of the runtime (polls /stats)\n"
           "  GET  /stats       the figures as JSON\n"
           "  GET  /hello       Hello, World!\n"
           "  GET  /stream      ten lines, 200 ms apart, each flushed as it is written\n"
           "  GET  /sleep/{ms}  a handler that sleeps without holding up the others\n"
           "  POST /echo        the request body back (up to 1 MiB)\n"
           "  GET  /debug/pprof/  profiles for go tool pprof (profile?seconds=N, goroutine, ...)\n"
           "  GET  /metrics     runtime and HTTP metrics for Prometheus\n"
           "  GET  /debug/      the live runtime page: charts, goroutines, trace downloads\n"
           "  GET  /debug/trace?seconds=2, /debug/flight, /debug/flight?saved=1\n"
           "                    execution traces (Chrome JSON: Perfetto, chrome://tracing)\n"
           "Ctrl-C stops it gracefully; kill -USR2 %d restarts it without dropping a request.\n",
           GORC_VERSION_MAJOR, GORC_VERSION_MINOR, GORC_VERSION_PATCH, gorc_maxprocs(), where,
           (int)getpid());
    if (tln)
        printf("HTTPS (HTTP/2 or HTTP/1.1, by ALPN) on https://%s/; kill -HUP %d reloads the "
               "certificate.\n",
               tls_where, (int)getpid());
    fflush(stdout);
}

static int serve(args *a)
{
    gorc_http_mux *mux;
    gorc_chan *sig;
    gorc_listener *ln;
    static const int sigs[] = {SIGINT, SIGTERM};
    if (gorc_chan_new(&sig, sizeof(int), 1) < 0 || gorc_signal_notify(sig, sigs, 2) < 0 ||
        gorc_chan_new(&stopped, 0, 0) < 0 || gorc_http_mux_new(&mux) < 0 || routes(mux) < 0)
        return 1;
    gorc_restart_opts ro = {.verbose = true}; /* SIGUSR2 restarts */
    int err = gorc_restart_new(&restart, &ro);
    if (err < 0) {
        fprintf(stderr, "http_demo: restart set-up: %s\n", gorc_strerror(err));
        return 1;
    }
    /* The live runtime page and trace downloads under /debug/, with the flight recorder on:
     * a request slower than half a second keeps a snapshot (/debug/flight?saved=1). */
    gorc_flight_recorder_opts fr = {.min_age = 10 * GORC_SECOND, .max_bytes = 32 << 20};
    if (gorc_http_debug_mount(mux, "/debug/") < 0 || gorc_flight_recorder_start(&fr) < 0)
        return 1;
    /* At shutdown an idle keep-alive connection gets a second to send one more request
     * (answered with Connection: close) before it is closed: no request in flight fails. */
    gorc_http_server_opts opts = {.handler = gorc_http_mux_serve,
                                  .arg = mux,
                                  .shutdown_idle_grace = GORC_SECOND,
                                  .flight_slow_request = 500 * GORC_MILLISECOND};
    if (gorc_http_server_new(&server, &opts) < 0 || listen_on(a->addr, &ln) < 0)
        return 1;
    /* HTTP/2: by ALPN on the HTTPS listener, by prior knowledge (h2c) on the plain one. */
    gorc_http2_server *h2 = NULL;
    gorc_http2_opts h2o = {.h2c = true};
    if ((err = gorc_http2_configure_server(server, &h2o, &h2)) < 0) {
        fprintf(stderr, "http_demo: HTTP/2: %s\n", gorc_strerror(err));
        return 1;
    }
    gorc_listener *tln = NULL;
    if (a->tls_addr[0] && (listen_tls(a, &tln) < 0 || gorc_chan_new(&tls_served, 0, 0) < 0 ||
                           gorc_go(watch_hup, a) < 0))
        return 1;
    /* Debugging endpoints (docs/observability.md): go tool pprof and Prometheus point here. */
    if (gorc_http_pprof_register(mux, "/debug/pprof") < 0 ||
        gorc_http_mux_handle(mux, "GET /metrics", gorc_http_metrics_handler, server) < 0)
        return 1;
    started = gorc_now();
    banner(ln, tln);
    gorc_go(watch_signals, sig);
    if (a->seconds > 0)
        gorc_go(stop_later, a);
    if (gorc_chan_new(&restart_watched, 0, 0) < 0 || gorc_go(watch_restart, NULL) < 0)
        return 1;
    /* Ready just before the accept loop: connections arriving in between wait in the
     * socket's queue, which the process that restarted into this one shares. */
    gorc_restart_ready(restart);
    if (tln && gorc_go(serve_tls, tln) < 0)
        return 1;
    int rc = gorc_http_server_serve(server, ln);
    gorc_listener_release(ln);
    if (tln)
        gorc_chan_recv(tls_served, NULL);
    if (rc != GORC_HTTP_ESERVERCLOSED) {
        fprintf(stderr, "http_demo: serve: %s\n", strerror(-rc));
        return 1;
    }
    gorc_chan_recv(stopped, NULL); /* the shutdown waits for requests in progress */
    gorc_signal_stop(sig);
    gorc_chan_close(sig);
    gorc_restart_stop(restart); /* closes the exit channel, if a restart did not */
    gorc_chan_recv(restart_watched, NULL);
    gorc_restart_free(restart);
    gorc_chan_release(restart_watched);
    gorc_http_server_stats st;
    gorc_http_server_stats_get(server, &st);
    rc = atomic_load(&shutdown_rc);
    printf("served %" PRIu64 " request%s on %" PRIu64 " connection%s%s; bye\n", st.requests,
           st.requests == 1 ? "" : "s", st.conns_total, st.conns_total == 1 ? "" : "s",
           rc == 0 ? "" : " (some connections had to be cut)");
    if (rc == 0) { /* else handlers may still be running: leave it all to the exit */
        gorc_http_server_free(server);
        gorc_http2_server_free(h2);
        gorc_http_mux_free(mux);
    }
    gorc_tls_config_free(tls);
    gorc_chan_release(stopped);
    return 0;
}

static void run(void *arg)
{
    args *a = arg;
    a->status = serve(a);
}

static bool all_digits(const char *s)
{
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* PORT means 127.0.0.1:PORT. */
static bool set_addr(char *dst, size_t n, const char *where)
{
    if (*where == '\0')
        return false;
    snprintf(dst, n, all_digits(where) ? "127.0.0.1:%s" : "%s", where);
    return true;
}

static bool parse_args(int argc, char **argv, args *a)
{
    const char *pos[2] = {"8080", NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(o, "-tls") == 0 && has_value) {
            if (!set_addr(a->tls_addr, sizeof a->tls_addr, argv[++i]))
                return false;
        } else if (strcmp(o, "-cert") == 0 && has_value) {
            a->cert = argv[++i];
        } else if (strcmp(o, "-key") == 0 && has_value) {
            a->key = argv[++i];
        } else if (o[0] != '-' && npos < 2) {
            pos[npos++] = o;
        } else {
            return false;
        }
    }
    if (!set_addr(a->addr, sizeof a->addr, pos[0]) || (pos[1] && !all_digits(pos[1])))
        return false;
    a->seconds = pos[1] ? atol(pos[1]) : 0;
    /* HTTPS needs its certificate and key, and they mean nothing without it. */
    return (a->tls_addr[0] != '\0') == (a->cert != NULL && a->key != NULL);
}

int main(int argc, char **argv)
{
    args a = {0};
    if (!parse_args(argc, argv, &a)) {
        fprintf(stderr, "usage: http_demo [PORT | HOST:PORT] [SECONDS] "
                        "[-tls PORT | HOST:PORT -cert CERT.pem -key KEY.pem]\n");
        return 2;
    }
    if (gorc_main(run, &a) != 0)
        return 1;
    return a.status;
}
