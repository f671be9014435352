/*
 * internal.h - what the HTTP server, router, file handler and client share (internal).
 *
 * The public types live in gorc_http.h; the wire parser in http_parse.h. This header holds
 * the small helpers more than one of http_*.c needs: character classes, percent-decoding,
 * the Date header, and the hooks the router uses to keep per-request state in the server's
 * request record.
 */
#ifndef GORC_HTTP_INTERNAL_H
#define GORC_HTTP_INTERNAL_H

#include "gorc_http.h"
#include "http/parse.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The per-thread pool of I/O buffers the HTTP server and WebSocket connections share: one
 * size only, a few kept per thread, freed when the thread exits. get returns NULL when out
 * of memory; put takes any buffer get gave. Neither parks, so a goroutine that moves to
 * another thread between the two calls is harmless. */
#define GORC__HTTP_BUF_SIZE 4096
void *gorc__http_buf_get(void);
void gorc__http_buf_put(void *b);

/* IMF-fixdate length: "Sun, 06 Nov 1994 08:49:37 GMT". */
#define GORC__HTTP_DATE_LEN 29

/* Is s (NUL-terminated) a non-empty token (RFC 9110 §5.6.2), a valid header name? */
bool gorc__http_is_token(const char *s);
/* May s be sent as a header value: no CR, LF, NUL or other control but HTAB? */
bool gorc__http_is_value(const char *s);

/* The value of hex digit c, or -1. */
int gorc__http_hexval(int c);

/* A growing NUL-terminated byte string (request heads, directory listings, redirect bodies).
 * Zero-initialise it; after an allocation failure oom is set and further appends do nothing.
 * The owner frees p. */
typedef struct gorc__http_sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} gorc__http_sbuf;

/* Room for need more bytes (and the NUL) at p + n, or NULL when out of memory. The caller
 * writes there and advances n. */
char *gorc__http_sbuf_room(gorc__http_sbuf *b, size_t need);
void gorc__http_sbuf_put(gorc__http_sbuf *b, const void *s, size_t n);
void gorc__http_sbuf_str(gorc__http_sbuf *b, const char *s);
/* Append s with &, <, >, " and ' escaped for HTML text and attribute values. */
void gorc__http_sbuf_html(gorc__http_sbuf *b, const char *s);

/* A body reader: gorc_http_request_read or gorc_http_response_read with their first argument. */
typedef ssize_t (*gorc__http_reader)(void *src, void *buf, size_t n);
/* Read src to its end into a malloc'd NUL-terminated buffer (*out, also for an empty body).
 * hint is the expected length (0: unknown). Returns the length, GORC_HTTP_ETOOLARGE beyond
 * max bytes, -ENOMEM, or the reader's error. */
ssize_t gorc__http_read_all(gorc__http_reader rd, void *src, size_t hint, size_t max, char **out);

/* Decode %XX escapes (and '+' as space when plus_is_space) of s[0..n) in place and
 * NUL-terminate the result. Returns the new length, or -EINVAL for a malformed escape or an
 * escape decoding to NUL. */
int gorc__http_pct_decode(char *s, size_t n, bool plus_is_space);

/* Percent-encode p[0..n) into out (room for 3n + 1), NUL-terminated; returns the length.
 * strict keeps only unreserved characters and '/' (for hrefs in HTML); otherwise
 * sub-delimiters, ':' and '@' stay too (for a Location header). */
size_t gorc__http_url_escape(const char *p, size_t n, char *out, bool strict);

/* Format unix time t as an IMF-fixdate into buf (at least GORC__HTTP_DATE_LEN + 1 bytes). */
void gorc__http_format_date(int64_t t, char *buf);
/* Parse an HTTP date (IMF-fixdate, RFC 850 or asctime form). Returns unix time or -1. */
int64_t gorc__http_parse_date(const char *s);
/* The current time as an IMF-fixdate (cached, refreshed once a second; thread-safe). Copies
 * GORC__HTTP_DATE_LEN bytes to buf (not NUL-terminated). */
void gorc__http_now_date(char *buf);

/* Send n bytes of file fd from off through gorc_http_rw_write (a writer that cannot use
 * sendfile). Returns n, or a write error, a read error, -EIO (the file is too short). */
ssize_t gorc__http_copy_file(gorc_http_rw *w, int fd, int64_t off, int64_t n);

/* Per-request state for the router, kept in the server's request record. */
/* Allocate n bytes that live until the handler returns (NULL when out of memory). */
void *gorc__http_req_alloc(gorc_http_request *r, size_t n);
/* A pointer-sized slot the router may use for this request; NULL when the request starts. */
void **gorc__http_req_route_slot(gorc_http_request *r);

/* ---- server metrics for the Prometheus handler (server.c counts, metrics.c prints) ---- */

#define GORC__HTTP_NMETHODS 8  /* GET HEAD POST PUT DELETE PATCH OPTIONS other */
#define GORC__HTTP_NCLASSES 6  /* 1xx 2xx 3xx 4xx 5xx other */
#define GORC__HTTP_NDUR     12 /* duration buckets: gorc__http_dur_bounds, then +Inf */
#define GORC__HTTP_NREJECT  8  /* 400 408 413 414 417 431 501 other */
enum {
    GORC__HM_REQ = 0, /* + method * NCLASSES + class */
    GORC__HM_DUR = GORC__HM_REQ + GORC__HTTP_NMETHODS * GORC__HTTP_NCLASSES,
    GORC__HM_DURSUM = GORC__HM_DUR + GORC__HTTP_NDUR, /* ns */
    GORC__HM_IN,
    GORC__HM_OUT,
    GORC__HM_REJECT,
    GORC__HM_N = GORC__HM_REJECT + GORC__HTTP_NREJECT
};
extern const char *const gorc__http_methods[GORC__HTTP_NMETHODS];
extern const double gorc__http_dur_bounds[GORC__HTTP_NDUR - 1];
extern const int gorc__http_reject_codes[GORC__HTTP_NREJECT - 1];
/* Copy a server's metric counters (GORC__HM_N values) and its stats. */
void gorc__http_server_metrics(gorc_http_server *s, uint64_t *out, gorc_http_server_stats *st);

/* Request timing for the debug page and slow-request snapshots (debug.c): while
 * gorc__http_observing is set or the server has a flight_slow_request threshold, the server
 * takes the time before each handler and reports it after. */
extern _Atomic bool gorc__http_observing;
static inline int64_t gorc__http_observe_begin(const gorc_http_server_opts *o)
{
    return atomic_load_explicit(&gorc__http_observing, memory_order_relaxed) ||
                   o->flight_slow_request > 0
               ? gorc_now()
               : 0;
}
void gorc__http_observe_end(const gorc_http_server_opts *o, const gorc_http_request *r, int64_t t0);

#endif
