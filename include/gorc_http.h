/*
 * gorc_http.h - HTTP/1.1 server and client for goroutines (Go's net/http, in C).
 *
 * The server runs one goroutine per connection. Each request is handed to a handler function
 * with a response writer and a request, as in Go:
 *
 *     static void hello(gorc_http_rw *w, gorc_http_request *r, void *arg)
 *     {
 *         gorc_http_rw_write_string(w, "Hello, World!\n");
 *     }
 *     static void serve(void *arg) { gorc_http_listen_and_serve("127.0.0.1:8080", hello, 0); }
 *     int main(void) { return gorc_main(serve, NULL); }
 *
 * A router (gorc_http_mux) matches method and path patterns; a file handler serves a
 * directory; the client keeps a pool of keep-alive connections per host. See docs/http.md.
 *
 * Conventions (as in gorc.h and gorc_net.h):
 *  - Errors are negative errno values; errno is never used.
 *  - Times are gorc_now() nanoseconds. In option structs a zero field means the documented
 *    default and a negative duration means "no limit".
 *  - Strings handed to a handler (method, path, header names and values, ...) are
 *    NUL-terminated and live until the handler returns. Do not keep pointers to them.
 *  - Header names compare without regard to ASCII case, as in HTTP.
 */
#ifndef GORC_HTTP_H
#define GORC_HTTP_H

#include "gorc.h"
#include "gorc_context.h"
#include "gorc_net.h"

#include <stdarg.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* gorc_http_server_serve after shutdown or close of the server. Go: http.ErrServerClosed. */
#define GORC_HTTP_ESERVERCLOSED (-ESHUTDOWN)
/* A body was written for a HEAD request or a 1xx, 204 or 304 response. Go:
 * http.ErrBodyNotAllowed. */
#define GORC_HTTP_EBODYNOTALLOWED (-EPERM)
/* The client gave up after too many redirects. Go: "stopped after 10 redirects". */
#define GORC_HTTP_ETOOMANYREDIRECTS (-ELOOP)
/* A response (client side) or a chunked request body (server side) was malformed. */
#define GORC_HTTP_EBADMSG (-EBADMSG)
/* A body is larger than the configured limit. Go: http.MaxBytesError. */
#define GORC_HTTP_ETOOLARGE (-EFBIG)

/* One header field. */
typedef struct gorc_http_header {
    const char *name;
    const char *value;
} gorc_http_header;

/* The reason phrase of a status code ("Not Found"), or "" for an unknown code. Go:
 * http.StatusText. */
GORC_API const char *gorc_http_status_text(int status);

/* The value of the first header named name in h[0..n) (ASCII case ignored), or NULL. Go:
 * http.Header.Get. */
GORC_API const char *gorc_http_header_lookup(const gorc_http_header *h, size_t n, const char *name);

/* The Content-Type the server gives a body that starts with data[0..n) when the handler set
 * none: "text/html; charset=utf-8", "text/plain; charset=utf-8" or
 * "application/octet-stream" (Go's algorithm, reduced to these three). Never fails (NULL data
 * is an empty body). Go: http.DetectContentType. */
GORC_API const char *gorc_http_detect_content_type(const void *data, size_t n);

/* Find key in a query string ("a=1&b=x%20y", without the '?') and store its value, decoded
 * ("+" is a space, %XX escapes) and NUL-terminated, in buf. Returns the decoded length, or
 * -ENOENT (absent), -ENOSPC (buf too small), -EINVAL (a bad %-escape). Go:
 * url.Values.Get. */
GORC_API int gorc_http_query_value(const char *query, const char *key, char *buf, size_t n);

/* ------------------------------------------------------------------------------------------
 * Server: requests and response writers
 * ---------------------------------------------------------------------------------------- */

/* A request as a handler sees it. Every field is read-only. Go: http.Request. */
typedef struct gorc_http_request {
    const char *method;      /* "GET", "POST", ... (case-sensitive, as sent) */
    const char *path;        /* decoded path ("/a b" for "/a%20b"); "*" for "OPTIONS *" */
    const char *query;       /* raw query after '?', "" when there is none */
    const char *host;        /* Host header (or the authority of an absolute target), or "" */
    const char *remote_addr; /* the client's "ip:port" */
    int proto_minor;         /* 1 for HTTP/1.1, 0 for HTTP/1.0 */
    const gorc_http_header *headers;
    size_t num_headers;
    int64_t content_length; /* body length; -1 when chunked (length unknown); 0: no body */
    bool close;             /* the connection will be closed after this request */
    int proto_major;        /* 1, or 2 for HTTP/2 */
    /* The transport that made the request (another protocol such as HTTP/2, or a
     * middleware); NULL for the built-in HTTP/1.1 server. See gorc_http_request_ops. */
    const struct gorc_http_request_ops *ops;
    void *impl;
} gorc_http_request;

/* The response writer of one request (opaque). Go: http.ResponseWriter. */
typedef struct gorc_http_rw gorc_http_rw;

/* A handler. It runs on the connection's goroutine; when it returns, the response is
 * finished (see gorc_http_rw_write for how it is framed). Go: http.HandlerFunc. */
typedef void (*gorc_http_handler_fn)(gorc_http_rw *w, gorc_http_request *r, void *arg);

/* The value of the request's first header named name, or NULL. Go: r.Header.Get. */
GORC_API const char *gorc_http_request_header(const gorc_http_request *r, const char *name);

/* The request's context (Go: r.Context()), made on the first call: cancelled with cause
 * -ECONNRESET when the client goes away (noticed once the body has been read; the handler's
 * writes then fail with -EPIPE), with cause GORC_HTTP_ESERVERCLOSED when the server is closed
 * or its shutdown deadline passes, and in any case when the handler returns. Owned by the
 * server: valid until the handler returns (retain it to keep it longer). A handler that never
 * calls it pays nothing. NULL for a NULL r; out of memory, the background context. */
GORC_API gorc_ctx *gorc_http_request_ctx(gorc_http_request *r);

/* Read up to n bytes of the request body, Content-Length or chunked. The first read of a
 * request that sent "Expect: 100-continue" sends "100 Continue" first. Returns the count, 0 at
 * the end of the body, or: GORC_HTTP_ETOOLARGE (over the server's max_body_bytes; the server
 * answers 413 if the handler has not written yet, and closes the connection),
 * GORC_HTTP_EBADMSG (malformed chunked framing; answered with 400 likewise; Go sends 200),
 * GORC_EUNEXPECTEDEOF (the client went away mid-body), -ETIMEDOUT (read timeout), GORC_ENETCLOSED,
 * -ECONNRESET or another connection error, -EINVAL (NULL r, NULL buf with n > 0).
 * Go: r.Body.Read. */
GORC_API ssize_t gorc_http_request_read(gorc_http_request *r, void *buf, size_t n);

/* Read the whole body into a malloc'd buffer (NUL-terminated for convenience; free it).
 * max bounds its size (0 = the server's max_body_bytes). Returns the length and sets *out
 * (NULL for an empty body), or an error as gorc_http_request_read, -ENOMEM, or
 * GORC_HTTP_ETOOLARGE when the body exceeds max (-EINVAL: NULL r or out).
 * Go: io.ReadAll(http.MaxBytesReader(...)). */
GORC_API ssize_t gorc_http_request_read_all(gorc_http_request *r, char **out, size_t max);

/* Set header name to value, replacing every header of that name (value NULL deletes it).
 * Must precede the first write. Content-Length, Transfer-Encoding and Connection are managed
 * by the server; setting Content-Length makes it trust that length (a handler writing more
 * gets -EINVAL), setting "Connection: close" closes the connection after the response.
 * Returns 0, -EINVAL (a name that is not a token, or CR, LF or NUL in the value: no header
 * injection), -EALREADY (the head was sent), -ENOMEM. Go: w.Header().Set. */
GORC_API int gorc_http_rw_set_header(gorc_http_rw *w, const char *name, const char *value);
/* Add a header line, keeping others of the same name. Errors as gorc_http_rw_set_header.
 * Go: Header().Add. */
GORC_API int gorc_http_rw_add_header(gorc_http_rw *w, const char *name, const char *value);

/* Set the status (100..999; default 200 at the first write). A 1xx status other than 101 is
 * sent at once as an interim response and the handler goes on (over HTTP/2 too). Returns 0,
 * -EINVAL (bad status; 101 over HTTP/2), -EALREADY (the head was sent already; Go logs
 * "superfluous WriteHeader").
 * Go: w.WriteHeader. */
GORC_API int gorc_http_rw_write_header(gorc_http_rw *w, int status);

/* Write body bytes. Output is buffered: a handler whose whole output fits in the buffer
 * (16 KiB) gets a Content-Length response; otherwise the head goes out when the buffer first
 * fills and the body is chunked (HTTP/1.1) or delimited by closing the connection (HTTP/1.0),
 * unless the handler set Content-Length. For HEAD the bytes are counted but not sent. Returns
 * n, or GORC_HTTP_EBODYNOTALLOWED (1xx/204/304), -EINVAL (NULL arguments, more than a declared
 * Content-Length), -ENOMEM, -EPIPE / -ECONNRESET (client gone), -ETIMEDOUT (write timeout),
 * GORC_ENETCLOSED. After an error later writes fail too. Go: w.Write. */
GORC_API ssize_t gorc_http_rw_write(gorc_http_rw *w, const void *buf, size_t n);
GORC_API ssize_t gorc_http_rw_write_string(gorc_http_rw *w, const char *s);
/* printf-style write. Returns the count written or an error as gorc_http_rw_write (-ENOMEM). */
GORC_API ssize_t gorc_http_rw_printf(gorc_http_rw *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Send the buffered head and body now (streaming). Returns 0 or an error as gorc_http_rw_write.
 * Go: w.(http.Flusher).Flush. */
GORC_API int gorc_http_rw_flush(gorc_http_rw *w);

/* Send n bytes of the regular file fd from offset off as body (with sendfile(2) when nothing
 * is buffered and the response is not chunked; the caller keeps fd). Returns n, or an error as
 * gorc_http_rw_write, or -EIO when the file is shorter than off + n. Go: io.Copy(w, file). */
GORC_API ssize_t gorc_http_rw_send_file(gorc_http_rw *w, int fd, int64_t off, int64_t n);

/* Answer with status and msg as text/plain ("msg\n"), replacing any body written so far
 * (still buffered) and its Content-Length; other headers stay. Returns 0, -EINVAL (NULL w,
 * status outside 200..999), -EALREADY when the head was already sent, or an error as
 * gorc_http_rw_write. Go: http.Error. */
GORC_API int gorc_http_error(gorc_http_rw *w, int status, const char *msg);

/* Redirect to url (Location) with code (301, 302, 303, 307, 308) and a short body. Returns 0,
 * -EINVAL (NULL arguments, code outside 300..399, a URL with control characters), -EALREADY
 * (a status was set or the head sent), or an error as gorc_http_rw_write. Go: http.Redirect. */
GORC_API int gorc_http_redirect(gorc_http_rw *w, const char *url, int code);

/* The status set so far (200 when none was set; -EINVAL for NULL), and whether the head has
 * been sent. */
GORC_API int gorc_http_rw_status(const gorc_http_rw *w);
GORC_API bool gorc_http_rw_sent(const gorc_http_rw *w);

/* Take over the request's connection (WebSocket, CONNECT tunnels): the server sends nothing
 * more on it, forgets it (shutdown neither closes nor waits for it) and hands the caller its
 * reference, with no deadlines set; the caller closes it. Bytes the server had already read
 * past the request go to a malloc'd *buffered (free it; NULL and *nbuffered 0 when there
 * are none). The request's buffers go back to the server's pool: r's strings and headers
 * are invalid after the call (copy what you need first); later writes on w fail with
 * -EALREADY. Returns 0, -EINVAL (NULL w or out, only one of buffered and nbuffered NULL, or
 * both NULL while bytes are buffered), -EALREADY (the head was sent, or already hijacked),
 * -ENOMEM, or an error as gorc_http_rw_write (sending earlier pipelined responses failed).
 * Go: http.Hijacker.Hijack, http.ResponseController.Hijack. */
GORC_API int gorc_http_rw_hijack(gorc_http_rw *w, gorc_conn **out, char **buffered,
                                 size_t *nbuffered);

/* ------------------------------------------------------------------------------------------
 * Transports and middlewares. The response writer and the request body are interfaces, as
 * http.ResponseWriter and Request.Body are in Go: another protocol (libgorc_http2) or a
 * middleware (one that logs, counts or compresses) implements them, and handlers, the router
 * and the file server work unchanged on top. Every gorc_http_rw_* and gorc_http_request_*
 * call dispatches to the ops of a writer or request made here; the built-in HTTP/1.1 server
 * takes a direct path.
 * ---------------------------------------------------------------------------------------- */

/* A response writer's methods; impl is the implementation's own pointer. Every entry must be
 * set, except those marked optional. Return values and errors are those of the public calls
 * of the same names. */
typedef struct gorc_http_rw_ops {
    /* gorc_http_rw_set_header (replace) and gorc_http_rw_add_header (!replace); the name and
     * value have been validated already. value NULL with replace: delete. */
    int (*set_header)(void *impl, const char *name, const char *value, bool replace);
    int (*write_header)(void *impl, int status);
    ssize_t (*write)(void *impl, const void *buf, size_t n);
    int (*flush)(void *impl);
    /* Optional: without it gorc_http_rw_send_file reads the file and calls write. */
    ssize_t (*send_file)(void *impl, int fd, int64_t off, int64_t n);
    int (*status)(const void *impl);
    bool (*sent)(const void *impl);
    /* Optional: without it gorc_http_rw_set_trailer answers -ENOTSUP. */
    int (*set_trailer)(void *impl, const char *name, const char *value);
} gorc_http_rw_ops;

/* A request's methods (the fields of gorc_http_request are plain data). */
typedef struct gorc_http_request_ops {
    ssize_t (*read)(void *impl, void *buf, size_t n); /* gorc_http_request_read */
    gorc_ctx *(*ctx)(void *impl);                     /* gorc_http_request_ctx */
    /* Memory that lives until the handler returns (the router's path values); NULL when out
     * of memory. */
    void *(*alloc)(void *impl, size_t n);
    /* A pointer-sized slot kept for the router, NULL when the request starts. */
    void **(*route_slot)(void *impl);
    /* Optional: the value of a trailer field the client sent after the body, or NULL. */
    const char *(*trailer)(void *impl, const char *name);
} gorc_http_request_ops;

/* Make a response writer whose calls go to ops with impl, for request r (which the writer's
 * helpers consult, e.g. gorc_http_redirect writes a body only for GET and HEAD). Free it with
 * gorc_http_rw_free after the handler returns. Returns 0 and *out, -EINVAL (NULL out, ops or
 * r, or an ops without a mandatory entry), -ENOMEM. Go: a type implementing
 * http.ResponseWriter (and http.Flusher). */
GORC_API int gorc_http_rw_new(gorc_http_rw **out, const gorc_http_rw_ops *ops, void *impl,
                              gorc_http_request *r);
/* Free a writer made by gorc_http_rw_new (NULL is ignored). */
GORC_API void gorc_http_rw_free(gorc_http_rw *w);

/* The request a writer was made for (its r, or the built-in server's request). NULL for
 * NULL. A middleware wrapping w passes it on. Go: none (Go passes the pair). */
GORC_API gorc_http_request *gorc_http_rw_request(gorc_http_rw *w);

/* Announce trailer name: value, sent after the body (HTTP/2 trailers; on HTTP/1.1 a chunked
 * response carries them after its last chunk). May be called until the handler returns;
 * setting the same name again replaces it. Returns 0, -EINVAL (NULL w, a name that is not a
 * token or is a field the framing owns (Content-Length, Transfer-Encoding, Host, ...), CR, LF
 * or NUL in value), -ENOTSUP (the writer has no trailers: HTTP/1.0, or an ops without
 * set_trailer), -ENOMEM. Go: w.Header().Set(http.TrailerPrefix + name, value). */
GORC_API int gorc_http_rw_set_trailer(gorc_http_rw *w, const char *name, const char *value);

/* The value of trailer field name the client sent after the request body (valid once
 * gorc_http_request_read has returned 0), or NULL. Go: r.Trailer.Get. */
GORC_API const char *gorc_http_request_trailer(const gorc_http_request *r, const char *name);

/* ------------------------------------------------------------------------------------------
 * Server
 * ---------------------------------------------------------------------------------------- */

typedef struct gorc_http_server gorc_http_server;

/* Server options. Zero-initialise; zero fields mean the defaults, negative durations or
 * sizes mean "no limit". The defaults bound what one hostile client can hold. */
typedef struct gorc_http_server_opts {
    gorc_http_handler_fn handler; /* required */
    void *arg;                    /* passed to the handler */
    /* Time to receive a whole request head, counted from its first byte (default 10 s):
     * a slowloris client is cut off here. Go: ReadHeaderTimeout. */
    int64_t read_header_timeout;
    /* Time to read the head and the body of one request (default 60 s). Go: ReadTimeout. */
    int64_t read_timeout;
    /* Time any single write may wait for the client to take data (default 60 s); a client
     * that stops reading is dropped. Like nginx's send_timeout; Go's WriteTimeout bounds
     * the whole response instead, which would cut streaming responses. */
    int64_t write_timeout;
    /* Time a keep-alive connection may sit between requests (default 60 s). Go:
     * IdleTimeout. */
    int64_t idle_timeout;
    size_t max_request_line; /* 414 beyond this (default 8 KiB) */
    size_t max_header_bytes; /* 431 beyond this, all field lines together (default 64 KiB) */
    size_t max_headers;      /* 431 beyond this many field lines (default 100) */
    int64_t max_body_bytes;  /* 413 beyond this (default 8 MiB) */
    bool disable_keepalive;  /* one request per connection. Go: SetKeepAlivesEnabled(false) */
    /* At shutdown, close an idle keep-alive connection only once it has stayed idle this
     * long, so that a request its client sent just as shutdown began is answered (with
     * Connection: close) instead of meeting a closed connection; for restarts
     * (docs/restart.md). 0 = at once, as Go. */
    int64_t shutdown_idle_grace;
    /* While the flight recorder runs, a request whose handler takes longer than this (ns)
     * keeps a snapshot of it, at most one a second, for the debug page's
     * {prefix}flight?saved=1 (gorc_http_debug.h). 0: never. */
    int64_t flight_slow_request;
} gorc_http_server_opts;

/* Counters of a server (for dashboards; read without locks, each exact by itself). */
typedef struct gorc_http_server_stats {
    uint64_t requests;     /* requests handled (handler called) */
    uint64_t conns_total;  /* connections accepted */
    uint64_t conns_open;   /* connections open now */
    uint64_t conns_active; /* connections with a request in progress now */
    uint64_t bad_requests; /* requests refused by the parser or limits (4xx/5xx, closed) */
    uint64_t timeouts;     /* connections cut off by a timeout */
} gorc_http_server_stats;

/* Make a server. Returns 0 and *out, -EINVAL (NULL out or opts, no handler), -ENOMEM. */
GORC_API int gorc_http_server_new(gorc_http_server **out, const gorc_http_server_opts *opts);

/* Accept connections on l and serve each in its own goroutine until the server is shut down
 * or closed. The server takes its own reference to l and closes it at shutdown; the caller
 * still releases its own. Returns GORC_HTTP_ESERVERCLOSED after shutdown or close, or the
 * accept error that stopped it (GORC_ENETCLOSED if l was closed by someone else, -ETIMEDOUT at
 * its deadline); -EINVAL (NULL s or l), -ENOMEM. Temporary accept errors are retried. May run
 * on several listeners at once (one goroutine each). Go: Server.Serve. */
GORC_API int gorc_http_server_serve(gorc_http_server *s, gorc_listener *l);

/* Listen on TCP addr and serve, as above. Returns -EINVAL (NULL s or addr), or the errors of
 * gorc_tcp_listen and gorc_http_server_serve. Go: Server.ListenAndServe. */
GORC_API int gorc_http_server_listen_and_serve(gorc_http_server *s, const char *addr);

/* A server with default options and handler fn: listen on addr and serve until an error.
 * Errors: those of gorc_http_server_new and gorc_http_server_listen_and_serve.
 * Go: http.ListenAndServe. */
GORC_API int gorc_http_listen_and_serve(const char *addr, gorc_http_handler_fn fn, void *arg);

/* Graceful shutdown: close the listeners (gorc_http_server_serve returns), close idle keep-alive
 * connections, let requests in progress finish (their connections close after the
 * response), and wait until every connection is gone or deadline (absolute) passes; then
 * close whatever is left. Returns 0, -ETIMEDOUT if connections had to be cut, -EINVAL for
 * NULL. Callable from any goroutine, also from a handler of this server (which then does not
 * wait for itself). Go: Server.Shutdown. */
GORC_API int gorc_http_server_shutdown(gorc_http_server *s, int64_t deadline);

/* Close listeners and every connection at once. Returns 0, -EINVAL for NULL.
 * Go: Server.Close. */
GORC_API int gorc_http_server_close(gorc_http_server *s);

/* Copy the counters. */
GORC_API void gorc_http_server_stats_get(gorc_http_server *s, gorc_http_server_stats *out);

/* A protocol's connection handler (see gorc_http_server_set_next_proto). */
typedef void (*gorc_http_next_proto_fn)(gorc_http_server *s, gorc_conn *c, const void *pre,
                                        size_t npre, void *arg);

/* Another protocol on the server's connections (libgorc_http2 registers "h2" and "h2c").
 * fn(s, c, pre, npre, arg) takes over connection c on the connection's goroutine and returns
 * when it is done with it (the server then closes c): for a connection whose handshake chose
 * proto by ALPN (gorc_conn_protocol), with npre 0; and, for proto "h2c", for a plain
 * connection that opens with the HTTP/2 preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", with the
 * bytes the server has read already in pre[0..npre) (the preface included). The connection
 * counts as active until fn returns: shutdown waits for it (see gorc_http_server_on_shutdown).
 * fn NULL removes proto. Register before serving. Returns 0, -EINVAL (NULL s or proto, a
 * proto of 0 or over 32 bytes), -ENOMEM. Go: Server.TLSNextProto, and for h2c Go 1.24's
 * Server.Protocols.SetUnencryptedHTTP2. */
GORC_API int gorc_http_server_set_next_proto(gorc_http_server *s, const char *proto,
                                             gorc_http_next_proto_fn fn, void *arg);

/* Call fn(arg) once, on the goroutine calling gorc_http_server_shutdown or _close, before it
 * waits for connections; a protocol that holds connections (HTTP/2) starts its own graceful
 * close there. At most 8 functions. Returns 0, -EINVAL (NULL s or fn), -ENOSPC.
 * Go: Server.RegisterOnShutdown. */
GORC_API int gorc_http_server_on_shutdown(gorc_http_server *s, void (*fn)(void *arg), void *arg);

/* The options the server runs with, defaults filled in (what another protocol applies too).
 * NULL for NULL. */
GORC_API const gorc_http_server_opts *gorc_http_server_options(const gorc_http_server *s);

/* Whether shutdown or close has begun (a protocol refuses new work from then on). */
GORC_API bool gorc_http_server_closing(const gorc_http_server *s);

/* The server's base context: the parent another protocol gives its request contexts;
 * cancelled with GORC_HTTP_ESERVERCLOSED by gorc_http_server_close and when a shutdown's
 * deadline passes. Valid until gorc_http_server_free. NULL for NULL. Go: Server.BaseContext. */
GORC_API gorc_ctx *gorc_http_server_ctx(gorc_http_server *s);

/* Count a request another protocol handled, or one it refused as bad (bad true), in the
 * server's stats. */
GORC_API void gorc_http_server_count_request(gorc_http_server *s, bool bad);

/* Free a server after shutdown or close: waits until every gorc_http_server_serve call has
 * returned and every connection goroutine has finished its handler, then frees. Call it from
 * a goroutine that is not one of the server's handlers. */
GORC_API void gorc_http_server_free(gorc_http_server *s);

/* ------------------------------------------------------------------------------------------
 * Router. Patterns are Go 1.22 ServeMux patterns: "[METHOD ][HOST]/PATH", where PATH
 * segments may be wildcards "{name}" (one segment) or, last, "{name...}" (the rest); a
 * pattern ending in "/" matches every path below it, "{$}" at the end matches only the path
 * itself. The most specific pattern wins; "GET" also matches HEAD. A path that matches no
 * pattern gets 404, one that matches only with other methods gets 405 with an Allow header.
 * Paths are cleaned first: "//", "/./" and "/../" send a 301 redirect to the clean path.
 * ---------------------------------------------------------------------------------------- */

typedef struct gorc_http_mux gorc_http_mux;

/* Make an empty router. 0, -EINVAL (NULL out) or -ENOMEM. Go: http.NewServeMux. */
GORC_API int gorc_http_mux_new(gorc_http_mux **out);

/* Register fn for pattern. Returns 0, -EINVAL (malformed pattern), -EEXIST (the same pattern,
 * or one matching exactly the same requests, is registered), -ENOMEM. Not to be called while
 * the router is serving. Go: ServeMux.HandleFunc. */
GORC_API int gorc_http_mux_handle(gorc_http_mux *m, const char *pattern, gorc_http_handler_fn fn,
                                  void *arg);

/* The handler to give a server, with the router as its arg. Go: ServeMux.ServeHTTP. */
GORC_API void gorc_http_mux_serve(gorc_http_rw *w, gorc_http_request *r, void *mux);

/* Free the router (NULL is ignored). No server may be using it. */
GORC_API void gorc_http_mux_free(gorc_http_mux *m);

/* The path segment(s) matched by wildcard {name} of the router's pattern, decoded, or NULL.
 * Go: r.PathValue(name). */
GORC_API const char *gorc_http_request_path_value(gorc_http_request *r, const char *name);

/* ------------------------------------------------------------------------------------------
 * Static files
 * ---------------------------------------------------------------------------------------- */

typedef struct gorc_http_fs gorc_http_fs;

typedef struct gorc_http_fs_opts {
    const char *strip_prefix; /* removed from the request path first (e.g. "/static") */
    const char *index;        /* file served for a directory (default "index.html") */
    bool list_dirs;           /* list directories that have no index (default: 404) */
} gorc_http_fs_opts;

/* Serve the directory tree at root. Nothing outside root is ever served: ".." and symbolic
 * links leading out of it are refused (openat2 RESOLVE_BENEATH), and so are dot-files.
 * Returns 0, -EINVAL (NULL out or root, bad options), -ENOENT, -ENOTDIR, -EACCES (root), -ENOMEM.
 * Go: http.FileServer(http.Dir). */
GORC_API int gorc_http_fs_new(gorc_http_fs **out, const char *root, const gorc_http_fs_opts *opts);

/* The handler, with the gorc_http_fs as arg. It answers GET and HEAD with the file (sendfile),
 * Content-Type by extension, Last-Modified, ETag, If-Modified-Since / If-None-Match (304),
 * single Range requests (206, 416), and 404 / 403 / 405 otherwise. */
GORC_API void gorc_http_fs_serve(gorc_http_rw *w, gorc_http_request *r, void *fs);

/* Close the root and free (NULL is ignored). No server may be using it. */
GORC_API void gorc_http_fs_free(gorc_http_fs *fs);

/* The Content-Type for a file name's extension ("text/html; charset=utf-8", ...), or
 * "application/octet-stream". Go: mime.TypeByExtension. */
GORC_API const char *gorc_http_content_type(const char *filename);

/* ------------------------------------------------------------------------------------------
 * Client
 * ---------------------------------------------------------------------------------------- */

typedef struct gorc_http_client gorc_http_client;

/* A transport's answer "not mine": the request goes out over HTTP/1.1 instead. */
#define GORC_HTTP_ENOTHANDLED (-ENOSTR) /* an errno value no other gorc code uses */

struct gorc_http_response;

/* One hop of a request as the client resolved it, for another transport (round_trip below). */
typedef struct gorc_http_round_trip {
    const struct gorc_http_client_request *req; /* headers, body source and context */
    const char *method;                         /* after redirects (a 303 turns POST into GET) */
    const char *scheme;                         /* "http" or "https" */
    const char *authority;                      /* the Host header / :authority to send */
    const char *dial;                           /* "host:port" to connect to */
    const char *target;                         /* "/path?query", escaped */
    const char *url;                            /* the whole URL (the response's url) */
    bool send_body;                             /* false when a redirect dropped the body */
    int64_t deadline;                           /* of the whole exchange (absolute; 0: none) */
    int64_t response_header_timeout;            /* the client's option (0: none) */
    /* https: the host name the certificate must match, and the client's dial_tls hook and
     * argument (both NULL for http://) for a transport that dials its own TLS connections. */
    const char *host;
    int (*dial_tls)(void *arg, gorc_conn **out, const char *addr, const char *host,
                    const char *alpn, int64_t timeout_ns, gorc_ctx *ctx);
    void *dial_tls_arg;
    /* A transport that dialed a connection for this hop and found that the peer speaks
     * HTTP/1.1 (ALPN chose "http/1.1" or nothing) stores it in *h1_conn and answers
     * GORC_HTTP_ENOTHANDLED: HTTP/1.1 then sends the hop over it and pools it, so no
     * handshake is wasted. Go: the Transport's ALPN fallback. */
    gorc_conn **h1_conn;
} gorc_http_round_trip;

/* Client options. Zero fields are defaults, negative durations "no limit". */
typedef struct gorc_http_client_opts {
    int64_t connect_timeout;          /* per connection attempt (default 30 s) */
    int64_t response_header_timeout;  /* from the request sent to the response head (none) */
    int64_t timeout;                  /* whole exchange incl. redirects and body (none) */
    int max_redirects;                /* default 10; negative: return 3xx as they are */
    int max_idle_per_host;            /* idle keep-alive connections kept per host (64) */
    int64_t idle_conn_timeout;        /* idle pooled connection lifetime (90 s) */
    size_t max_response_header_bytes; /* default 64 KiB */
    bool disable_keepalive;
    /* https:// URLs (Go: Transport.DialTLSContext with its TLSClientConfig): dial addr
     * ("host:port"), complete a TLS handshake that verifies host, within timeout_ns (0: none)
     * and ctx (NULL: none), and return the connection in *out, or an error. alpn is the list
     * of ALPN protocols to offer when the TLS configuration names none, in ALPN's wire format
     * (length-prefixed names: "\x08http/1.1" from HTTP/1.1, "\x02h2\x08http/1.1" from
     * libgorc_http2). NULL: https URLs fail with -EPROTONOSUPPORT. libgorc_tls fills both in
     * (gorc_tls_http_client_opts). */
    int (*dial_tls)(void *arg, gorc_conn **out, const char *addr, const char *host,
                    const char *alpn, int64_t timeout_ns, gorc_ctx *ctx);
    void *dial_tls_arg;
    /* Another transport (Go: Transport.RegisterProtocol, http2.ConfigureTransports; filled by
     * gorc_http2_configure_client). Called for every hop, redirects included, before any
     * HTTP/1.1 connection is taken: it answers with 0 and *out (a response with its own ops),
     * an error as gorc_http_client_do's, or GORC_HTTP_ENOTHANDLED to let HTTP/1.1 send it. */
    int (*round_trip)(void *arg, const gorc_http_round_trip *rt, struct gorc_http_response **out);
    void *round_trip_arg;
} gorc_http_client_opts;

/* A request to send. url is "http://host[:port]/path?query", or https:// when the client's
 * options have a dial_tls hook. */
typedef struct gorc_http_client_request {
    const char *method; /* NULL = "GET" */
    const char *url;
    const gorc_http_header *headers; /* extra headers (Host, Content-Length, Transfer-Encoding
                                        and Connection are set by the client) */
    size_t num_headers;
    const void *body; /* a body in memory, body_len bytes, or */
    size_t body_len;
    /* a streamed body: called until it returns 0 (end) or an error (aborts the request).
     * Sent with Content-Length when content_length > 0, chunked otherwise. A streamed body
     * cannot be replayed: such a request does not follow 307/308 redirects. */
    ssize_t (*body_read)(void *arg, void *buf, size_t n);
    void *body_arg;
    int64_t content_length;
    /* The request's context (Go: req.WithContext), or NULL. Its deadline bounds the whole
     * exchange, body included; cancelling it aborts the request wherever it is, dialing
     * included; the connection is discarded, never pooled, and the call, or the body read in
     * progress, returns the context's error. The context must outlive the response. */
    gorc_ctx *ctx;
} gorc_http_client_request;

/* A response's methods, for a transport other than the built-in HTTP/1.1 one. */
typedef struct gorc_http_response_ops {
    ssize_t (*read)(void *impl, void *buf, size_t n); /* gorc_http_response_read */
    void (*close)(void *impl);                        /* gorc_http_response_close */
} gorc_http_response_ops;

/* A response. Fields are read-only and live until gorc_http_response_close. */
typedef struct gorc_http_response {
    int status;
    const char *reason;
    int proto_minor;
    const gorc_http_header *headers;
    size_t num_headers;
    int64_t content_length; /* -1 when unknown (chunked or until close) */
    const char *url;        /* the URL that answered (after redirects) */
    int proto_major;        /* 1, or 2 for HTTP/2 */
    /* The transport that made the response (NULL: the built-in HTTP/1.1 client). */
    const gorc_http_response_ops *ops;
    void *impl;
} gorc_http_response;

/* Make a client. 0 and *out, -EINVAL (NULL out), -ENOMEM. Go: &http.Client{Transport: ...}. */
GORC_API int gorc_http_client_new(gorc_http_client **out, const gorc_http_client_opts *opts);
/* Close idle connections and free the client (its responses must be closed first). */
GORC_API void gorc_http_client_free(gorc_http_client *c);
/* Idle connections pooled for hostport ("host:port", as dialed; "https://host:port" for the
 * TLS connections of https URLs, which are pooled apart; NULL: all hosts). Returns the
 * count; -EINVAL for a NULL client or a hostport of 256 bytes or more. Go: none (the
 * transport's pool is hidden). */
GORC_API int gorc_http_client_idle_conns(gorc_http_client *c, const char *hostport);

/* Send req and wait for the response head; the body is read with gorc_http_response_read.
 * c NULL uses a process-wide default client. Redirects (301, 302, 303, 307, 308) are
 * followed while fewer than max_redirects have been followed (a chain of exactly
 * max_redirects succeeds; Go fails at the 10th). Returns 0 and *out, or -EINVAL (bad URL or
 * request), -EPROTONOSUPPORT (a scheme other than http, or https without a
 * dial_tls hook), GORC_ENOHOST, -EAGAIN (resolver),
 * -ECONNREFUSED, -ENETUNREACH, -EHOSTUNREACH, -ETIMEDOUT, GORC_HTTP_EBADMSG (malformed
 * response), GORC_EUNEXPECTEDEOF (the connection ended inside the response head),
 * GORC_HTTP_ETOOMANYREDIRECTS, -ECONNRESET / -EPIPE (the connection broke while the request
 * was sent), -ENOMEM, or what a body_read callback or the dial_tls hook returned (for TLS:
 * the codes gorc_tls.h names). Go: Client.Do. */
GORC_API int gorc_http_client_do(gorc_http_client *c, const gorc_http_client_request *req,
                                 gorc_http_response **out);

/* GET url. Errors as gorc_http_client_do. Go: Client.Get. */
GORC_API int gorc_http_client_get(gorc_http_client *c, const char *url, gorc_http_response **out);

/* Read up to n bytes of the response body (chunked decoding included). Returns the count, 0
 * at its end, or -EINVAL (NULL r, NULL buf with n > 0), -ETIMEDOUT, GORC_HTTP_EBADMSG,
 * GORC_EUNEXPECTEDEOF, -ECONNRESET or another connection error. Go: resp.Body.Read. */
GORC_API ssize_t gorc_http_response_read(gorc_http_response *r, void *buf, size_t n);

/* Read the whole body into a malloc'd, NUL-terminated buffer (free it). Returns the length,
 * GORC_HTTP_ETOOLARGE beyond max (0 = 64 MiB), -EINVAL (NULL r or out), -ENOMEM, or an error
 * as gorc_http_response_read. Go: io.ReadAll(resp.Body). */
GORC_API ssize_t gorc_http_response_read_all(gorc_http_response *r, char **out, size_t max);

/* The value of the response's first header named name, or NULL. Go: resp.Header.Get. */
GORC_API const char *gorc_http_response_header(const gorc_http_response *r, const char *name);

/* Finish with a response: a connection whose body was read to the end goes back to the pool;
 * otherwise it is closed. Go: resp.Body.Close. */
GORC_API void gorc_http_response_close(gorc_http_response *r);

#ifdef __cplusplus
}
#endif
#endif /* GORC_HTTP_H */
