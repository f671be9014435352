/*
 * gorc_http2.h - HTTP/2 for gorc's HTTP server (libgorc_http2; Go's golang.org/x/net/http2).
 *
 * A separate library (`pkg-config --libs gorc-http2`), built on nghttp2 for framing, HPACK
 * and flow-control bookkeeping; programs that do not use HTTP/2 do not link it. It plugs into
 * a gorc_http_server through the server's public protocol hooks, and handlers see the same
 * gorc_http_rw / gorc_http_request API as on HTTP/1.1:
 *
 *     gorc_http_server *s;                       // made with gorc_http_server_new
 *     gorc_http2_server *h2;
 *     gorc_http2_opts o = {.h2c = true};         // also prior-knowledge h2c on plain ports
 *     gorc_http2_configure_server(s, &o, &h2);   // Go: http2.ConfigureServer
 *     gorc_http_server_listen_and_serve(s, "127.0.0.1:8080");
 *     ...
 *     gorc_http_server_free(s);
 *     gorc_http2_server_free(h2);
 *
 * Over TLS (libgorc_tls's listener, whose configuration offers "h2"), connections whose
 * handshake chose "h2" by ALPN are served, every other one as HTTP/1.1; with h2c, a plain
 * connection that opens with the HTTP/2 preface is served too (Go 1.24's UnencryptedHTTP2).
 * See docs/http2.md for the design, limits and the attacks the server is tested against.
 */
#ifndef GORC_HTTP2_H
#define GORC_HTTP2_H

#include "gorc_http.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gorc_http2_server gorc_http2_server;

/* HTTP/2 options. Zero fields mean the defaults. The server's gorc_http_server_opts apply too:
 * max_header_bytes and max_headers per request head (431), max_body_bytes (413 or
 * GORC_HTTP_ETOOLARGE), read_header_timeout (from the connection's start to its first
 * request), read_timeout (a request's body), write_timeout (each wait for the client's flow
 * control window or socket), idle_timeout (a connection without open streams). */
typedef struct gorc_http2_opts {
    /* Streams a client may have open, and handlers running per connection (default 250, as
     * Go). Go: http2.Server.MaxConcurrentStreams. */
    uint32_t max_concurrent_streams;
    /* Request body bytes a stream may have in flight unread (its flow-control window;
     * default 1 MiB, as Go's maxUploadBufferPerStream). */
    uint32_t stream_window;
    /* The same for the whole connection (default 1 MiB). */
    uint32_t conn_window;
    /* Response bytes a handler may have queued per stream before its writes wait for the
     * client (default 64 KiB). */
    uint32_t stream_write_buffer;
    /* Serve prior-knowledge h2c on plain connections. Go 1.24: Protocols.UnencryptedHTTP2. */
    bool h2c;
} gorc_http2_opts;

/* Counters (each exact by itself; read without locks). */
typedef struct gorc_http2_server_stats {
    uint64_t conns_total;      /* HTTP/2 connections served */
    uint64_t conns_open;       /* open now */
    uint64_t streams_total;    /* requests whose handler ran */
    uint64_t handlers_running; /* handler goroutines running now */
    uint64_t handlers_peak;    /* the most that ever ran at once on one connection */
    uint64_t resets_received;  /* RST_STREAM frames from clients */
    uint64_t refused;          /* requests answered without a handler (431, 413, queue full) */
    uint64_t calm_goaways;     /* connections ended with ENHANCE_YOUR_CALM (floods) */
    uint64_t protocol_errors;  /* connections ended for a protocol error (bad preface, ...) */
} gorc_http2_server_stats;

/* Serve HTTP/2 on s: registers the "h2" protocol (and "h2c" when opts->h2c) and a shutdown
 * hook that sends GOAWAY to every HTTP/2 connection, lets its streams finish and then closes
 * it. opts NULL means the defaults. Call before serving. Returns 0 and *out, -EINVAL (NULL s
 * or out, an option over 2^31 - 1), -ENOMEM, or the errors of gorc_http_server_set_next_proto
 * and gorc_http_server_on_shutdown. Go: http2.ConfigureServer. */
GORC_API int gorc_http2_configure_server(gorc_http_server *s, const gorc_http2_opts *opts,
                                         gorc_http2_server **out);

/* Copy the counters (nothing for NULL arguments). */
GORC_API void gorc_http2_server_stats_get(gorc_http2_server *h, gorc_http2_server_stats *out);

/* Free after gorc_http_server_free of its server (NULL is ignored). */
GORC_API void gorc_http2_server_free(gorc_http2_server *h);

/* ------------------------------------------------------------------------------------------
 * Client
 * ---------------------------------------------------------------------------------------- */

typedef struct gorc_http2_client gorc_http2_client;

/* HTTP/2 client options. Zero fields mean the defaults. */
typedef struct gorc_http2_client_opts {
    /* Speak HTTP/2 at once to http:// URLs (h2c with prior knowledge; Go 1.24:
     * Transport.Protocols.UnencryptedHTTP2). Without it http:// goes out over HTTP/1.1. */
    bool h2c_prior_knowledge;
    uint32_t stream_window; /* response bytes in flight per stream (default 1 MiB) */
    uint32_t conn_window;   /* the same per connection (default 1 MiB) */
} gorc_http2_client_opts;

/* Send the requests of a gorc_http_client made with o over HTTP/2: fills o->round_trip and
 * o->round_trip_arg (call before gorc_http_client_new). Concurrent requests to one host share
 * one connection, within the server's stream limit and flow-control windows; redirects,
 * timeouts and contexts work as over HTTP/1.1. Requests it does not take (http:// without
 * h2c_prior_knowledge) go out over HTTP/1.1. https:// URLs, when o has a dial_tls hook (set
 * before or after this call, e.g. by gorc_tls_http_client_opts), are dialed offering "h2" and
 * "http/1.1" by ALPN: h2 if the server chooses it, else HTTP/1.1 over that same connection
 * (and the host's later requests go to HTTP/1.1 at once). A request the server refused
 * unprocessed (REFUSED_STREAM, or above a GOAWAY's last stream) is sent again if its body
 * can be. Returns 0 and *out, -EINVAL (NULL o or out, a window over 2^31 - 1), -ENOMEM.
 * Go: http2.ConfigureTransports. */
GORC_API int gorc_http2_configure_client(gorc_http_client_opts *o,
                                         const gorc_http2_client_opts *opts,
                                         gorc_http2_client **out);

/* HTTP/2 connections open now (-EINVAL for NULL), and connections dialed so far (0 for NULL). */
GORC_API int gorc_http2_client_conns(gorc_http2_client *c);
GORC_API uint64_t gorc_http2_client_dials(gorc_http2_client *c);

/* Close the connections and free, after gorc_http_client_free of the client it configured
 * (NULL is ignored). */
GORC_API void gorc_http2_client_free(gorc_http2_client *c);

/* The nghttp2 version libgorc_http2 runs with ("1.52.0"). */
GORC_API const char *gorc_http2_nghttp2_version(void);

#ifdef __cplusplus
}
#endif
#endif /* GORC_HTTP2_H */
