/*
 * http2_e2e_server.c - tests/e2e/http_e2e_server.c with HTTP/2 (h2c, libgorc_http2) enabled:
 * the same handlers and limits, so tests/e2e/http2-e2e checks every path of the response
 * writer and the body reader over HTTP/2 against what the HTTP/1.1 tests expect.
 */
#define GORC_E2E_HTTP2 1
#include "http_e2e_server.c"
