/*
 * h2s_get.c - tests/e2e/http2_get.c over https: the gorc HTTP client with libgorc_tls's dial
 * hook and libgorc_http2's transport, which offers "h2" and "http/1.1" by ALPN. The CA to
 * trust is the file named by $H2S_CA (the system store without it). Prints the same line as
 * http2_get; proto=1 with dials=1 is a server that chose HTTP/1.1 (the one connection the
 * HTTP/2 transport dialed was handed to HTTP/1.1).
 */
#define GORC_E2E_TLS 1
#include "http2_get.c"
