/*
 * http_parse_sig.h - a parse result as a flat signature, shared by the parser's unit tests and
 * its fuzz target.
 *
 * Slices are recorded as offsets from the buffer's start, so parses of different copies of
 * the same bytes (whole, or grown piece by piece) give equal signatures. Both the tests and
 * the fuzzer check that every prefix of a message parses to "need more" or to exactly the
 * whole message's signature.
 */
#ifndef GORC_HTTP_PARSE_SIG_H
#define GORC_HTTP_PARSE_SIG_H

#include <stddef.h>

#include "http/parse.h"

static inline void put_slice(long *sig, size_t *k, gorc__http_slice s, const char *base)
{
    sig[(*k)++] = s.p ? (long)(s.p - base) : -1;
    sig[(*k)++] = (long)s.n;
}

static inline size_t req_sig(long *sig, int r, const gorc__http_request *q, const char *base)
{
    size_t k = 0;
    sig[k++] = r;
    sig[k++] = q->fault;
    if (r <= 0)
        return k;
    put_slice(sig, &k, q->method, base);
    put_slice(sig, &k, q->target, base);
    put_slice(sig, &k, q->path, base);
    put_slice(sig, &k, q->query, base);
    put_slice(sig, &k, q->authority, base);
    put_slice(sig, &k, q->host, base);
    sig[k++] = q->form;
    sig[k++] = q->minor_version;
    sig[k++] = q->body;
    sig[k++] = (long)q->content_length;
    sig[k++] = q->chunked | q->keep_alive << 1 | q->expect_continue << 2 | q->has_host << 3;
    sig[k++] = (long)q->num_headers;
    for (size_t i = 0; i < q->num_headers; i++) {
        put_slice(sig, &k, q->headers[i].name, base);
        put_slice(sig, &k, q->headers[i].value, base);
    }
    return k;
}

static inline size_t resp_sig(long *sig, int r, const gorc__http_response *q, const char *base)
{
    size_t k = 0;
    sig[k++] = r;
    sig[k++] = q->fault;
    if (r <= 0)
        return k;
    sig[k++] = q->minor_version;
    sig[k++] = q->status;
    put_slice(sig, &k, q->reason, base);
    sig[k++] = q->body;
    sig[k++] = (long)q->content_length;
    sig[k++] = q->chunked | q->keep_alive << 1;
    sig[k++] = (long)q->num_headers;
    for (size_t i = 0; i < q->num_headers; i++) {
        put_slice(sig, &k, q->headers[i].name, base);
        put_slice(sig, &k, q->headers[i].value, base);
    }
    return k;
}

#endif
