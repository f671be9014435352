/*
 * h2s_e2e_server.c - tests/e2e/tls_e2e_server.c with HTTP/2 enabled (libgorc_http2 beside
 * libgorc_tls): an HTTPS server whose connections speak h2 when their TLS handshake chose
 * "h2" by ALPN and HTTP/1.1 otherwise, with the same handlers, limits and command line as
 * tests/e2e/http_e2e_server.c. TLS_ALPN=h2,http/1.1 offers both (tests/e2e/http2-e2e,
 * bench/run's h2s workloads). Its "fetch" mode sends its request over h2 when the server
 * chooses it.
 */
#define GORC_E2E_HTTP2 1
#include "tls_e2e_server.c"
