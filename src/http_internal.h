/*
 * http_internal.h - what the HTTP server, router, file handler and client share (internal).
 *
 * The public types live in gorc_http.h; the wire parser in http_parse.h. This header holds
 * the small helpers more than one of http_*.c needs: character classes, percent-decoding,
 * the Date header, and the hooks the router uses to keep per-request state in the server's
 * request record.
 */
#ifndef GORC_HTTP_INTERNAL_H
#define GORC_HTTP_INTERNAL_H

#include "gorc_http.h"
#include "http_parse.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* IMF-fixdate length: "Sun, 06 Nov 1994 08:49:37 GMT". */
#define GORC__HTTP_DATE_LEN 29

/* Is s (NUL-terminated) a non-empty token (RFC 9110 §5.6.2), a valid header name? */
bool gorc__http_is_token(const char *s);
/* May s be sent as a header value: no CR, LF, NUL or other control but HTAB? */
bool gorc__http_is_value(const char *s);

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

/* Per-request state for the router, kept in the server's request record. */
/* Allocate n bytes that live until the handler returns (NULL when out of memory). */
void *gorc__http_req_alloc(gorc_http_request *r, size_t n);
/* A pointer-sized slot the router may use for this request; NULL when the request starts. */
void **gorc__http_req_route_slot(gorc_http_request *r);

#endif
