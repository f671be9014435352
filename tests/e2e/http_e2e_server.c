/*
 * http_e2e_server.c - the HTTP server under test for tests/e2e/http-e2e (curl, ab, wrk, Python,
 * Chromium).
 *
 * Real clients find what unit tests miss: framing they do not expect, connections they reuse
 * or abandon, bodies they send before or after "100 Continue". This program exposes the
 * server with every limit and timeout settable from the command line, so the driver can make
 * a slowloris client or an oversized header fail in a second instead of after the production
 * defaults, and a handful of handlers that exercise each path of the response writer and the
 * body reader.
 *
 * Routing is a plain table of path prefixes rather than gorc_http_mux, on purpose: a failure
 * here should point at the server, not at the router (the demo covers the router).
 *
 *   http_e2e_server [--addr 127.0.0.1:0] [--read-header-timeout MS] [--read-timeout MS]
 *                   [--write-timeout MS] [--idle-timeout MS] [--max-request-line N]
 *                   [--max-header-bytes N] [--max-headers N] [--max-body N]
 *                   [--shutdown-timeout MS] [--no-keepalive]
 *
 * It prints "listening on HOST:PORT" once it accepts (port 0 picks a free port). SIGINT or
 * SIGTERM (read from a signalfd by a goroutine, never in a handler) and POST /quit start a
 * graceful shutdown; the exit status is 0 when every connection finished in time, 3 when
 * some had to be cut, 1 for a setup error.
 *
 * Handlers (bodies use fixed patterns the driver can check byte for byte):
 *   GET  /, /hello         "Hello, World!\n"
 *   POST /echo             the whole request body back (read first, at most --max-body)
 *   POST /echo-stream      the body back as it arrives (reads and writes interleave)
 *   POST /upload           reads the body as a stream: "LENGTH FNV1A64HEX\n"
 *   POST /reject           403 without reading the body (no "100 Continue" may be sent)
 *   POST /expect           "expect=VALUE len=N\n" after reading the body
 *   GET  /big/N            N bytes, byte i = 'a' + i % 26, written in 64 KiB pieces
 *   GET  /fixed/N          the same, with Content-Length set by the handler first
 *   GET  /chunked?n=&size= n pieces of size bytes, piece i filled with 'a' + i % 26, each flushed
 *   GET  /stream?n=&ms=    n lines "tick I\n", flushed, ms apart
 *   GET  /sleep/MS         "slept MS\n" after sleeping
 *   GET  /status/CODE      that status (a body unless 1xx/204/304)
 *   GET  /info             the request as the handler sees it, one "key: value" per line
 *   GET  /stats            server counters as JSON
 *   POST /quit             "bye\n", then a graceful shutdown from inside the handler
 *   GET  /wait/MS          waits for the request's context to end (or MS): "cancelled CAUSE\n"
 *                          or "waited\n"; /stats counts the handlers waiting now
 *   POST /trailers         reads the body, answers "LENGTH\n" with trailers X-Length: LENGTH
 *                          and X-Client-Trailer: the request's X-Sum trailer (or "none")
 *   GET  /early            103 Early Hints with a Link field, then 200 "early RC\n" (RC: what
 *                          gorc_http_rw_write_header(w, 103) returned)
 *
 * Built as tests/e2e/http2_e2e_server.c (GORC_E2E_HTTP2) it also serves HTTP/2 with prior
 * knowledge (libgorc_http2, h2c) on the same port, with --max-streams N, and /stats adds the
 * HTTP/2 counters; tests/e2e/http2-e2e drives it.
 */
#include <gorc.h>
#include <gorc_http.h>
#include <gorc_net.h>

#ifdef GORC_E2E_HTTP2
#include <gorc_http2.h>
#endif

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>

#define MS GORC_MILLISECOND

typedef struct config {
    const char *addr;
    gorc_http_server_opts opts;
    int64_t shutdown_timeout;
} config;

static config cfg = {.addr = "127.0.0.1:0", .shutdown_timeout = 5 * GORC_SECOND};
static gorc_http_server *server;
static gorc_chan *stopped; /* closed once the graceful shutdown has returned */
static atomic_bool stopping;
static atomic_int shutdown_rc;
static atomic_long write_errors, last_write_error;
static atomic_long waiting; /* /wait handlers waiting now */
#ifdef GORC_E2E_HTTP2
static gorc_http2_server *h2;
static gorc_http2_opts h2opts = {.h2c = true};
#endif
static char letters[65536 + 26]; /* 'a' + i % 26, filled at start-up */

/* ------------------------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------------------------- */

/* A non-negative integer query parameter, or def when absent or malformed. */
static long query_long(const gorc_http_request *r, const char *key, long def)
{
    char buf[32], *end;
    if (gorc_http_query_value(r->query, key, buf, sizeof buf) <= 0)
        return def;
    long v = strtol(buf, &end, 10);
    return *end == '\0' && v >= 0 ? v : def;
}

/* The number after prefix in the path ("/big/123"), or -1. */
static long path_number(const gorc_http_request *r, const char *prefix)
{
    char *end;
    const char *s = r->path + strlen(prefix);
    long v = strtol(s, &end, 10);
    /* At most 1 GiB, so that no request can make a handler write for ever. */
    return *s != '\0' && *end == '\0' && v >= 0 && v <= (1L << 30) ? v : -1;
}

/* Count a failed write so the driver can see, through /stats, that a stalled client was
 * dropped by the write timeout. */
static bool write_ok(ssize_t rc)
{
    if (rc >= 0)
        return true;
    atomic_fetch_add(&write_errors, 1);
    atomic_store(&last_write_error, (long)rc);
    return false;
}

/* ------------------------------------------------------------------------------------------
 * Handlers
 * ---------------------------------------------------------------------------------------- */

static void h_hello(gorc_http_rw *w, gorc_http_request *r)
{
    gorc_http_rw_set_header(w, "Content-Type", "text/plain; charset=utf-8");
    gorc_http_rw_write_string(w, "Hello, World!\n");
}

static void h_echo(gorc_http_rw *w, gorc_http_request *r)
{
    char *body;
    ssize_t n = gorc_http_request_read_all(r, &body, 0);
    if (n < 0)
        return; /* 413 or a dropped connection: the server answers or closes */
    const char *ct = gorc_http_request_header(r, "Content-Type");
    gorc_http_rw_set_header(w, "Content-Type", ct ? ct : "application/octet-stream");
    write_ok(gorc_http_rw_write(w, body, (size_t)n));
    free(body);
}

static void h_echo_stream(gorc_http_rw *w, gorc_http_request *r)
{
    char buf[16384];
    ssize_t n;
    gorc_http_rw_set_header(w, "Content-Type", "application/octet-stream");
    while ((n = gorc_http_request_read(r, buf, sizeof buf)) > 0)
        if (!write_ok(gorc_http_rw_write(w, buf, (size_t)n)))
            return;
}

static void h_upload(gorc_http_rw *w, gorc_http_request *r)
{
    unsigned char buf[16384];
    uint64_t hash = 14695981039346656037u;
    int64_t total = 0;
    ssize_t n;
    while ((n = gorc_http_request_read(r, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            hash = (hash ^ buf[i]) * 1099511628211u;
        total += n;
    }
    if (n < 0)
        return;
    gorc_http_rw_printf(w, "%" PRId64 " %016" PRIx64 "\n", total, hash);
}

static void h_reject(gorc_http_rw *w, gorc_http_request *r)
{
    gorc_http_error(w, 403, "rejected");
}

static void h_expect(gorc_http_rw *w, gorc_http_request *r)
{
    const char *e = gorc_http_request_header(r, "Expect");
    char *body;
    ssize_t n = gorc_http_request_read_all(r, &body, 0);
    if (n < 0)
        return;
    free(body);
    gorc_http_rw_printf(w, "expect=%s len=%zd\n", e ? e : "none", n);
}

/* 103 Early Hints with a Link field, then 200 "early\n" (the Link stays on the final head). */
static void h_early(gorc_http_rw *w, gorc_http_request *r)
{
    gorc_http_rw_set_header(w, "Link", "</style.css>; rel=preload; as=style");
    int rc = gorc_http_rw_write_header(w, 103);
    gorc_http_rw_printf(w, "early %d\n", rc);
}

/* total bytes of the alphabet pattern, in 64 KiB writes. */
static void write_letters(gorc_http_rw *w, long total)
{
    for (long off = 0; off < total;) {
        size_t n = (size_t)(total - off) < 65536 ? (size_t)(total - off) : 65536;
        if (!write_ok(gorc_http_rw_write(w, letters + off % 26, n)))
            return;
        off += (long)n;
    }
}

static void h_big(gorc_http_rw *w, gorc_http_request *r)
{
    long total = path_number(r, "/big/");
    if (total < 0) {
        gorc_http_error(w, 400, "bad size");
        return;
    }
    write_letters(w, total);
}

/* The same body as /big/N, announced with Content-Length: never chunked, even for HTTP/1.0
 * keep-alive, and HEAD must repeat the length. */
static void h_fixed(gorc_http_rw *w, gorc_http_request *r)
{
    long total = path_number(r, "/fixed/");
    char len[24];
    snprintf(len, sizeof len, "%ld", total);
    if (total < 0 || gorc_http_rw_set_header(w, "Content-Length", len) < 0) {
        gorc_http_error(w, 400, "bad size");
        return;
    }
    write_letters(w, total);
}

static void h_chunked(gorc_http_rw *w, gorc_http_request *r)
{
    long n = query_long(r, "n", 10), size = query_long(r, "size", 100);
    char *piece = malloc((size_t)size + 1);
    if (piece == NULL) {
        gorc_http_error(w, 500, "out of memory");
        return;
    }
    for (long i = 0; i < n; i++) {
        memset(piece, 'a' + (int)(i % 26), (size_t)size);
        if (!write_ok(gorc_http_rw_write(w, piece, (size_t)size)) ||
            !write_ok(gorc_http_rw_flush(w)))
            break;
    }
    free(piece);
}

static void h_stream(gorc_http_rw *w, gorc_http_request *r)
{
    long n = query_long(r, "n", 5), ms = query_long(r, "ms", 200);
    gorc_http_rw_set_header(w, "Content-Type", "text/plain; charset=utf-8");
    for (long i = 1; i <= n; i++) {
        if (i > 1)
            gorc_sleep(ms * MS);
        if (!write_ok(gorc_http_rw_printf(w, "tick %ld\n", i)) || !write_ok(gorc_http_rw_flush(w)))
            return;
    }
}

static void h_sleep(gorc_http_rw *w, gorc_http_request *r)
{
    long ms = path_number(r, "/sleep/");
    if (ms < 0 || ms > 60000) {
        gorc_http_error(w, 400, "bad duration");
        return;
    }
    gorc_sleep(ms * MS);
    gorc_http_rw_printf(w, "slept %ld\n", ms);
}

static void h_status(gorc_http_rw *w, gorc_http_request *r)
{
    long code = path_number(r, "/status/");
    if (gorc_http_rw_write_header(w, (int)code) < 0) {
        gorc_http_error(w, 400, "bad status");
        return;
    }
    if (code >= 200 && code != 204 && code != 304)
        gorc_http_rw_printf(w, "status %ld\n", code);
}

static void h_info(gorc_http_rw *w, gorc_http_request *r)
{
    gorc_http_rw_printf(w,
                        "method: %s\npath: %s\nquery: %s\nhost: %s\nproto: HTTP/%d.%d\n"
                        "content_length: %" PRId64 "\nclose: %d\nheaders: %zu\n",
                        r->method, r->path, r->query, r->host, r->proto_major, r->proto_minor,
                        r->content_length, (int)r->close, r->num_headers);
    for (size_t i = 0; i < r->num_headers; i++)
        gorc_http_rw_printf(w, "header: %s: %s\n", r->headers[i].name, r->headers[i].value);
}

static void h_stats(gorc_http_rw *w, gorc_http_request *r)
{
    gorc_http_server_stats st;
    gorc_http_server_stats_get(server, &st);
    gorc_http_rw_set_header(w, "Content-Type", "application/json");
    gorc_http_rw_printf(
        w,
        "{\"requests\":%" PRIu64 ",\"conns_total\":%" PRIu64 ",\"conns_open\":%" PRIu64
        ",\"conns_active\":%" PRIu64 ",\"bad_requests\":%" PRIu64 ",\"timeouts\":%" PRIu64
        ",\"write_errors\":%ld,\"last_write_error\":%ld,\"goroutines\":%" PRId64 ",\"waiting\":%ld",
        st.requests, st.conns_total, st.conns_open, st.conns_active, st.bad_requests, st.timeouts,
        atomic_load(&write_errors), atomic_load(&last_write_error), gorc_count(),
        atomic_load(&waiting));
#ifdef GORC_E2E_HTTP2
    gorc_http2_server_stats h;
    gorc_http2_server_stats_get(h2, &h);
    gorc_http_rw_printf(
        w,
        ",\"h2_conns_total\":%" PRIu64 ",\"h2_conns_open\":%" PRIu64 ",\"h2_streams\":%" PRIu64
        ",\"h2_running\":%" PRIu64 ",\"h2_peak\":%" PRIu64 ",\"h2_resets\":%" PRIu64
        ",\"h2_refused\":%" PRIu64 ",\"h2_calm\":%" PRIu64 ",\"h2_protocol_errors\":%" PRIu64,
        h.conns_total, h.conns_open, h.streams_total, h.handlers_running, h.handlers_peak,
        h.resets_received, h.refused, h.calm_goaways, h.protocol_errors);
#endif
    gorc_http_rw_write_string(w, "}\n");
}

static void h_wait(gorc_http_rw *w, gorc_http_request *r)
{
    long ms = path_number(r, "/wait/");
    gorc_ctx *x = gorc_http_request_ctx(r);
    atomic_fetch_add(&waiting, 1);
    int rc = gorc_sleep_ctx(ms > 0 ? ms * MS : 30 * GORC_SECOND, x);
    atomic_fetch_sub(&waiting, 1);
    if (rc < 0)
        gorc_http_rw_printf(w, "cancelled %d\n", gorc_ctx_cause(x));
    else
        gorc_http_rw_write_string(w, "waited\n");
}

static void h_trailers(gorc_http_rw *w, gorc_http_request *r)
{
    char *body;
    ssize_t n = gorc_http_request_read_all(r, &body, 0);
    if (n < 0)
        return;
    free(body);
    const char *sum = gorc_http_request_trailer(r, "X-Sum");
    char len[32];
    snprintf(len, sizeof len, "%zd", n);
    gorc_http_rw_set_trailer(w, "X-Length", len);
    gorc_http_rw_set_trailer(w, "X-Client-Trailer", sum ? sum : "none");
    gorc_http_rw_printf(w, "%zd\n", n);
}

static void stop(void);

static void h_quit(gorc_http_rw *w, gorc_http_request *r)
{
    gorc_http_rw_write_string(w, "bye\n");
    gorc_http_rw_flush(w);
    stop();
}

typedef struct route {
    const char *method; /* NULL: any */
    const char *path;   /* exact, or a prefix when it ends in '/' */
    void (*fn)(gorc_http_rw *, gorc_http_request *);
} route;

static const route routes[] = {
    {"GET", "/", h_hello},         {"GET", "/hello", h_hello},
    {"POST", "/echo", h_echo},     {"POST", "/echo-stream", h_echo_stream},
    {"POST", "/upload", h_upload}, {"POST", "/reject", h_reject},
    {"POST", "/expect", h_expect}, {"GET", "/big/", h_big},
    {"GET", "/fixed/", h_fixed},   {"GET", "/chunked", h_chunked},
    {"GET", "/stream", h_stream},  {"GET", "/sleep/", h_sleep},
    {"GET", "/status/", h_status}, {NULL, "/info", h_info},
    {"GET", "/stats", h_stats},    {"POST", "/quit", h_quit},
    {"GET", "/wait/", h_wait},     {"POST", "/trailers", h_trailers},
    {"GET", "/early", h_early},
};

static bool path_matches(const char *pattern, const char *path)
{
    size_t n = strlen(pattern);
    if (n > 1 && pattern[n - 1] == '/')
        return strncmp(pattern, path, n) == 0;
    return strcmp(pattern, path) == 0;
}

static bool method_matches(const char *want, const char *got)
{
    return want == NULL || strcmp(want, got) == 0 ||
           (strcmp(want, "GET") == 0 && strcmp(got, "HEAD") == 0);
}

static void dispatch(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!path_matches(routes[i].path, r->path))
            continue;
        path_known = true;
        if (method_matches(routes[i].method, r->method)) {
            routes[i].fn(w, r);
            return;
        }
    }
    if (path_known)
        gorc_http_error(w, 405, "method not allowed");
    else
        gorc_http_error(w, 404, "not found");
}

/* ------------------------------------------------------------------------------------------
 * Start-up and shutdown
 * ---------------------------------------------------------------------------------------- */

/* Runs once, from the signal goroutine or the /quit handler. */
static void stop(void)
{
    if (atomic_exchange(&stopping, true))
        return;
    int rc = gorc_http_server_shutdown(server, gorc_now() + cfg.shutdown_timeout);
    atomic_store(&shutdown_rc, rc);
    gorc_chan_close(stopped);
}

static void watch_signals(void *arg)
{
    gorc_conn *c = arg;
    struct signalfd_siginfo si;
    if (gorc_conn_read_full(c, &si, sizeof si) == (ssize_t)sizeof si)
        stop();
}

static int64_t ms_arg(const char *s)
{
    return (int64_t)strtoll(s, NULL, 10) * MS;
}

static void usage(void)
{
    fprintf(stderr, "usage: http_e2e_server [--addr A] [--read-header-timeout MS] "
                    "[--read-timeout MS] [--write-timeout MS] [--idle-timeout MS] "
                    "[--max-request-line N] [--max-header-bytes N] [--max-headers N] "
                    "[--max-body N] [--shutdown-timeout MS] [--no-keepalive]\n");
    exit(1);
}

static void parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"addr", required_argument, NULL, 'a'},
        {"read-header-timeout", required_argument, NULL, 'H'},
        {"read-timeout", required_argument, NULL, 'R'},
        {"write-timeout", required_argument, NULL, 'W'},
        {"idle-timeout", required_argument, NULL, 'I'},
        {"max-request-line", required_argument, NULL, 'l'},
        {"max-header-bytes", required_argument, NULL, 'b'},
        {"max-headers", required_argument, NULL, 'n'},
        {"max-body", required_argument, NULL, 'B'},
        {"shutdown-timeout", required_argument, NULL, 'S'},
        {"no-keepalive", no_argument, NULL, 'k'},
        {"max-streams", required_argument, NULL, 'm'},
        {NULL, 0, NULL, 0},
    };
    gorc_http_server_opts *o = &cfg.opts;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            cfg.addr = optarg;
            break;
        case 'H':
            o->read_header_timeout = ms_arg(optarg);
            break;
        case 'R':
            o->read_timeout = ms_arg(optarg);
            break;
        case 'W':
            o->write_timeout = ms_arg(optarg);
            break;
        case 'I':
            o->idle_timeout = ms_arg(optarg);
            break;
        case 'l':
            o->max_request_line = strtoul(optarg, NULL, 10);
            break;
        case 'b':
            o->max_header_bytes = strtoul(optarg, NULL, 10);
            break;
        case 'n':
            o->max_headers = strtoul(optarg, NULL, 10);
            break;
        case 'B':
            o->max_body_bytes = strtoll(optarg, NULL, 10);
            break;
        case 'S':
            cfg.shutdown_timeout = ms_arg(optarg);
            break;
        case 'k':
            o->disable_keepalive = true;
            break;
        case 'm':
#ifdef GORC_E2E_HTTP2
            h2opts.max_concurrent_streams = (uint32_t)strtoul(optarg, NULL, 10);
#endif
            break;
        default:
            usage();
        }
    }
    if (optind != argc)
        usage();
}

static int exit_code;

static int fail(const char *what, int rc)
{
    fprintf(stderr, "http_e2e_server: %s: %s\n", what, strerror(-rc));
    return 1;
}

/* Whether every connection is gone, waiting a little. A shutdown started by a handler does
 * not wait for that handler's own connection, and a timed-out one leaves handlers running:
 * freeing the server under them would be a use after free, so then it is left to exit. */
static bool connections_gone(void)
{
    gorc_http_server_stats st;
    for (int i = 0; i < 100; i++) {
        gorc_http_server_stats_get(server, &st);
        if (st.conns_open == 0)
            return true;
        gorc_sleep(10 * MS);
    }
    return false;
}

/* Serve until shut down. Returns the exit status. */
static int serve(int sigfd)
{
    gorc_conn *sig;
    gorc_listener *ln;
    int rc;
    if ((rc = gorc_conn_from_fd(&sig, sigfd)) < 0)
        return fail("signalfd", rc);
    if ((rc = gorc_chan_new(&stopped, 0, 0)) < 0 ||
        (rc = gorc_http_server_new(&server, &cfg.opts)) < 0)
        return fail("server", rc);
#ifdef GORC_E2E_HTTP2
    if ((rc = gorc_http2_configure_server(server, &h2opts, &h2)) < 0)
        return fail("http2", rc);
#endif
    if ((rc = gorc_tcp_listen(&ln, cfg.addr, NULL)) < 0)
        return fail(cfg.addr, rc);
    char where[GORC_ADDRSTRLEN];
    gorc_listener_addr(ln, where, sizeof where);
    printf("listening on %s\n", where);
    fflush(stdout);
    gorc_go(watch_signals, sig);
    rc = gorc_http_server_serve(server, ln);
    gorc_listener_release(ln);
    if (rc != GORC_HTTP_ESERVERCLOSED)
        return fail("serve", rc);
    gorc_chan_recv(stopped, NULL);
    gorc_conn_close(sig); /* ends watch_signals if a request started the shutdown */
    rc = atomic_load(&shutdown_rc);
    printf("shutdown: %s\n", rc == 0 ? "ok" : strerror(-rc));
    fflush(stdout);
    if (rc == 0 && connections_gone()) {
        gorc_http_server_free(server);
#ifdef GORC_E2E_HTTP2
        gorc_http2_server_free(h2);
#endif
    }
    gorc_chan_release(stopped);
    return rc == 0 ? 0 : 3;
}

static void run(void *arg)
{
    exit_code = serve(*(int *)arg);
}

int main(int argc, char **argv)
{
    cfg.opts.handler = dispatch;
    for (size_t i = 0; i < sizeof letters; i++)
        letters[i] = (char)('a' + i % 26);
    parse_args(argc, argv);
    /* Blocked before the runtime's threads exist, so every thread inherits the mask and the
     * signals are only ever seen through the signalfd. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0) {
        perror("http_e2e_server: signalfd");
        return 1;
    }
    if (gorc_main(run, &fd) != 0)
        return 1;
    return exit_code;
}
