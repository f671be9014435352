/*
 * parse.h - HTTP/1.1 message parsing for gorc's HTTP server and client (internal).
 *
 * A self-contained, allocation-free, zero-copy parser for HTTP/1.x request heads, response
 * heads and chunked bodies (RFC 9110, RFC 9112). It depends on nothing else in gorc. Every
 * slice it reports points into the caller's buffer, so the buffer must stay alive and unmoved
 * while the slices are used.
 *
 * Return conventions shared by the head parsers:
 *   > 0                      the head is complete; the value is its length in bytes (the
 *                            next message, e.g. a pipelined request or the body, starts there)
 *   GORC__HTTP_NEED_MORE (0) the bytes so far are a valid prefix; call again with more
 *   < 0                      a negative errno value (GORC__HTTP_E*); the message is invalid and
 *                            the connection should be closed after answering (requests) or
 *                            dropped (responses). `fault` in the output struct says exactly
 *                            which rule was broken; gorc__http_error_status() gives the HTTP
 *                            status to answer with.
 *
 * See docs/http-parser.md for what is accepted and rejected, and why.
 */
#ifndef GORC_HTTP_PARSE_H
#define GORC_HTTP_PARSE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "Valid so far, feed more bytes." */
#define GORC__HTTP_NEED_MORE 0

/* Error codes (negated errno values). The comment gives the HTTP status they map to. */
#define GORC__HTTP_EBADMSG  (-EBADMSG)         /* 400 Bad Request: malformed or ambiguous */
#define GORC__HTTP_ETOOLONG (-ENAMETOOLONG)    /* 414 URI Too Long: request line too long */
#define GORC__HTTP_EHEADERS (-EMSGSIZE)        /* 431 Request Header Fields Too Large */
#define GORC__HTTP_EBODY    (-EFBIG)           /* 413 Content Too Large: body over the limit */
#define GORC__HTTP_ENOTIMPL (-EOPNOTSUPP)      /* 501 Not Implemented: transfer coding, CONNECT */
#define GORC__HTTP_EVERSION (-EPROTONOSUPPORT) /* 505 HTTP Version Not Supported */
#define GORC__HTTP_EINVAL   (-EINVAL)          /* bad arguments (a caller bug): 500 */

/* Return values of gorc__http_chunked_decode besides NEED_MORE and errors. */
#define GORC__HTTP_CHUNK_DATA 1 /* a slice of payload is returned */
#define GORC__HTTP_CHUNK_DONE 2 /* the last chunk and the trailer section were consumed */

/* Default limits (used for a NULL limits pointer or a zero field). */
#define GORC__HTTP_DEFAULT_MAX_REQUEST_LINE  8192
#define GORC__HTTP_DEFAULT_MAX_HEADER_BYTES  65536
#define GORC__HTTP_DEFAULT_MAX_HEADERS       100
#define GORC__HTTP_DEFAULT_MAX_CHUNK_LINE    4096
#define GORC__HTTP_DEFAULT_MAX_TRAILER_BYTES 16384
/* Every limit is silently capped at this, so a head length always fits in an int. */
#define GORC__HTTP_LIMIT_CAP ((size_t)1 << 26)
/* At most this many empty lines (CRLF) before a request line are skipped (RFC 9112 §2.2). */
#define GORC__HTTP_MAX_EMPTY_LINES 8

/* Size limits. Zero-initialise and set what you need: a zero field means the default. */
typedef struct gorc__http_limits {
    size_t max_request_line;  /* request/status line bytes, CRLF excluded (414) */
    size_t max_header_bytes;  /* field lines plus the empty line ending the head (431) */
    size_t max_headers;       /* number of field lines (431) */
    size_t max_chunk_line;    /* chunk-size line incl. extensions, CRLF excluded (400) */
    size_t max_trailer_bytes; /* trailer section incl. its final CRLF (431) */
} gorc__http_limits;

/* The exact rule a message broke. The errno value and status follow from it. */
typedef enum gorc__http_fault {
    GORC__HTTP_FAULT_NONE = 0,
    /* 400 */
    GORC__HTTP_FAULT_LINE_ENDING,         /* bare LF, or CR not followed by LF */
    GORC__HTTP_FAULT_EMPTY_LINES,         /* too many empty lines before the request line */
    GORC__HTTP_FAULT_REQUEST_LINE,        /* not exactly "method SP target SP version" */
    GORC__HTTP_FAULT_METHOD,              /* method is empty or has a non-token character */
    GORC__HTTP_FAULT_TARGET,              /* request-target bad character, escape or form */
    GORC__HTTP_FAULT_VERSION,             /* HTTP-version is not "HTTP/" DIGIT "." DIGIT */
    GORC__HTTP_FAULT_STATUS_LINE,         /* malformed status line */
    GORC__HTTP_FAULT_HEADER_NAME,         /* field name empty or with a non-token char */
    GORC__HTTP_FAULT_SPACE_BEFORE_COLON,  /* whitespace between field name and colon */
    GORC__HTTP_FAULT_OBS_FOLD,            /* field line starting with SP/HTAB */
    GORC__HTTP_FAULT_HEADER_VALUE,        /* control character (NUL, CR, DEL...) in a value */
    GORC__HTTP_FAULT_CONTENT_LENGTH,      /* Content-Length not 1*DIGIT or over INT64_MAX */
    GORC__HTTP_FAULT_CONTENT_LENGTH_DIFF, /* several Content-Length values that differ */
    GORC__HTTP_FAULT_CL_AND_TE,           /* both Content-Length and Transfer-Encoding */
    GORC__HTTP_FAULT_TE_MALFORMED,        /* Transfer-Encoding value is not a coding list */
    GORC__HTTP_FAULT_TE_CHUNKED_TWICE,    /* chunked applied more than once */
    GORC__HTTP_FAULT_TE_NOT_CHUNKED,      /* request whose final coding is not chunked */
    GORC__HTTP_FAULT_TE_HTTP10,           /* Transfer-Encoding in an HTTP/1.0 message */
    GORC__HTTP_FAULT_HOST_MISSING,        /* HTTP/1.1 request without Host */
    GORC__HTTP_FAULT_HOST_DUPLICATE,      /* more than one Host field line */
    GORC__HTTP_FAULT_HOST_INVALID,        /* Host value is not uri-host [":" port] */
    GORC__HTTP_FAULT_CHUNK_SIZE,          /* chunk size missing or not hex */
    GORC__HTTP_FAULT_CHUNK_SIZE_OVERFLOW, /* chunk size over INT64_MAX */
    GORC__HTTP_FAULT_CHUNK_EXT,           /* control character in a chunk extension */
    GORC__HTTP_FAULT_CHUNK_LINE_TOO_LONG, /* chunk-size line over max_chunk_line */
    GORC__HTTP_FAULT_CHUNK_DATA_END,      /* chunk data not followed by CRLF */
    GORC__HTTP_FAULT_TRAILER,             /* malformed trailer field line */
    /* 413 */
    GORC__HTTP_FAULT_BODY_TOO_LARGE, /* chunked body over the caller's limit */
    /* 414 */
    GORC__HTTP_FAULT_LINE_TOO_LONG, /* request (or status) line over max_request_line */
    /* 431 */
    GORC__HTTP_FAULT_HEADERS_TOO_LARGE,  /* field section over max_header_bytes */
    GORC__HTTP_FAULT_TOO_MANY_HEADERS,   /* more field lines than max_headers or capacity */
    GORC__HTTP_FAULT_TRAILERS_TOO_LARGE, /* trailer section over max_trailer_bytes */
    /* 501 */
    GORC__HTTP_FAULT_TE_UNSUPPORTED, /* a transfer coding other than chunked */
    GORC__HTTP_FAULT_CONNECT,        /* CONNECT (tunnelling) is not implemented */
    /* 505 */
    GORC__HTTP_FAULT_VERSION_UNSUPPORTED, /* major version other than 1 */
    GORC__HTTP_FAULT_COUNT
} gorc__http_fault;

/* A byte range inside the caller's buffer. An absent optional part is {NULL, 0}. */
typedef struct gorc__http_slice {
    const char *p;
    size_t n;
} gorc__http_slice;

/* One field line: name as received (original case), value with surrounding OWS removed. */
typedef struct gorc__http_header {
    gorc__http_slice name;
    gorc__http_slice value;
} gorc__http_header;

/* How the body of a message is delimited (RFC 9112 §6.3). */
typedef enum gorc__http_body {
    GORC__HTTP_BODY_NONE = 0, /* no body */
    GORC__HTTP_BODY_LENGTH,   /* exactly content_length bytes (may be 0) */
    GORC__HTTP_BODY_CHUNKED,  /* chunked: use gorc__http_chunked_decode */
    GORC__HTTP_BODY_CLOSE     /* responses only: everything until the connection closes */
} gorc__http_body;

/* Form of a request-target (RFC 9112 §3.2). Authority-form (CONNECT) is rejected with 501. */
typedef enum gorc__http_target_form {
    GORC__HTTP_TARGET_ORIGIN = 0, /* "/path?query" */
    GORC__HTTP_TARGET_ABSOLUTE,   /* "http://authority/path?query" (http or https only) */
    GORC__HTTP_TARGET_ASTERISK    /* "*" (OPTIONS only) */
} gorc__http_target_form;

/* A parsed request head. Set `headers` and `headers_cap` before parsing; everything else is
 * output. After an error only `fault` is meaningful; after NEED_MORE nothing is. */
typedef struct gorc__http_request {
    /* in */
    gorc__http_header *headers; /* caller's array for the field lines */
    size_t headers_cap;         /* its capacity; the effective count limit is min(cap, max) */
    /* out */
    size_t num_headers;
    gorc__http_slice method;     /* case-sensitive token, e.g. "GET" */
    gorc__http_slice target;     /* the whole request-target */
    gorc__http_slice path;       /* target up to '?' ("*" for asterisk-form; may be empty for
                                    absolute-form "http://host", which means "/") */
    gorc__http_slice query;      /* after '?', without it; {NULL,0} when there is no '?' */
    gorc__http_slice authority;  /* absolute-form only: host[:port] from the target */
    gorc__http_slice host;       /* Host field value; {NULL,0} when absent */
    gorc__http_target_form form; /* which request-target form was used */
    int minor_version;           /* 0 or 1 (HTTP/1.2+ is treated as 1.1) */
    gorc__http_body body;        /* NONE, LENGTH or CHUNKED */
    int64_t content_length;      /* Content-Length value, -1 when absent */
    bool chunked;                /* Transfer-Encoding: chunked */
    bool keep_alive;             /* the connection may be reused after this request */
    bool expect_continue;        /* HTTP/1.1 "Expect: 100-continue" */
    bool expect_unknown;         /* HTTP/1.1 Expect with another expectation (417) */
    bool has_host;               /* a Host field line was present */
    gorc__http_fault fault;      /* after an error: the rule that was broken */
} gorc__http_request;

/* A parsed response head. Set `headers`, `headers_cap` and `head_request` before parsing. */
typedef struct gorc__http_response {
    /* in */
    gorc__http_header *headers;
    size_t headers_cap;
    bool head_request; /* the request was HEAD: the response has no body (RFC 9112 §6.3) */
    /* out */
    size_t num_headers;
    int minor_version;       /* 0 or 1 (HTTP/1.2+ is treated as 1.1) */
    int status;              /* 100..999; the caller treats 600..999 as 5xx (RFC 9110 §15) */
    gorc__http_slice reason; /* reason-phrase, may be empty */
    gorc__http_body body;    /* NONE (1xx, 204, 304, HEAD), LENGTH, CHUNKED or CLOSE */
    int64_t content_length;  /* Content-Length value, -1 when absent (also set for HEAD) */
    bool chunked;            /* Transfer-Encoding: chunked (and it frames the body) */
    bool keep_alive;         /* the connection may be reused after this response */
    gorc__http_fault fault;
} gorc__http_response;

/* Incremental chunked-body decoder state. Initialise with gorc__http_chunked_init. */
typedef struct gorc__http_chunked {
    uint64_t remaining; /* payload bytes left in the current chunk */
    uint64_t size;      /* chunk size being read */
    uint64_t total;     /* payload bytes so far */
    uint64_t max_body;  /* payload limit, 0 = none */
    size_t line;        /* bytes of the current size line or of the trailer section */
    size_t max_line;
    size_t max_trailer;
    int state;
    int error; /* sticky error code once state is the error state */
    gorc__http_fault fault;
} gorc__http_chunked;

/* Parse a request head from buf[0..len).
 *
 * prev_len is the len of the previous call for this same request that returned NEED_MORE
 * (the buffer must hold the same bytes up to there), or 0. With prev_len > 0 the parser first
 * looks only at the new bytes and returns NEED_MORE at once if they cannot complete the head
 * (no CRLF CRLF, no bare LF) nor cross a size limit; otherwise it re-parses from the start.
 * That keeps the total work for a head that arrives in many pieces linear in its size, at
 * the cost of detecting a malformed head only when it ends or reaches a limit. With
 * prev_len == 0 every call re-parses from the start (bounded by the limits, at most about
 * max_request_line + max_header_bytes bytes), and any error is reported as soon as the
 * offending byte is in the buffer.
 *
 * Leading CRLFs (at most GORC__HTTP_MAX_EMPTY_LINES) are skipped and counted in the result.
 * lim may be NULL for the defaults.
 *
 * Returns the head length (> 0), GORC__HTTP_NEED_MORE, or an error: GORC__HTTP_EBADMSG,
 * GORC__HTTP_ETOOLONG, GORC__HTTP_EHEADERS, GORC__HTTP_ENOTIMPL, GORC__HTTP_EVERSION (see
 * req->fault), or GORC__HTTP_EINVAL when req or buf (with len > 0) is NULL or the header
 * array is NULL with a non-zero capacity. The body is not inspected; compare content_length
 * against the server's body limit before reading it (413). */
int gorc__http_parse_request(gorc__http_request *req, const char *buf, size_t len, size_t prev_len,
                             const gorc__http_limits *lim);

/* Parse a response head from buf[0..len); the same conventions as gorc__http_parse_request
 * (no empty lines are skipped before a status line). The status line counts against
 * max_request_line. A Transfer-Encoding other than exactly "chunked" is GORC__HTTP_ENOTIMPL
 * unless the response has no body. Both Content-Length and Transfer-Encoding is
 * GORC__HTTP_EBADMSG, as for requests (stricter than RFC 9112 §6.3, which lets chunked win:
 * a client that tolerates it can be used to smuggle responses). */
int gorc__http_parse_response(gorc__http_response *resp, const char *buf, size_t len,
                              size_t prev_len, const gorc__http_limits *lim);

/* Prepare d to decode one chunked body. max_body bounds the total payload (0 = no bound);
 * lim (NULL for defaults) gives max_chunk_line and max_trailer_bytes. */
void gorc__http_chunked_init(gorc__http_chunked *d, uint64_t max_body,
                             const gorc__http_limits *lim);

/* Feed buf[0..len) of a chunked body to d. Reports one event per call:
 *   GORC__HTTP_CHUNK_DATA  *data is payload inside buf and *consumed counts the bytes used up
 *                          to its end; call again with the rest of the input.
 *   GORC__HTTP_CHUNK_DONE  the body ended; *consumed counts the bytes used up to the end of
 *                          the trailer section. Bytes after that belong to the next message.
 *   GORC__HTTP_NEED_MORE   all len bytes were consumed (*consumed == len) and no payload was in
 *                          them; call again with new bytes. Nothing needs to be kept.
 *   < 0                    GORC__HTTP_EBADMSG, GORC__HTTP_EHEADERS (trailers too large) or
 *                          GORC__HTTP_EBODY (payload over max_body, reported as soon as a chunk
 *                          size says so); *consumed is the offset of the offending byte.
 * DONE and errors are sticky: later calls return them again and consume nothing. Chunk
 * extensions and trailer fields are validated and discarded. data and consumed must not be
 * NULL; buf may be NULL only when len is 0. */
int gorc__http_chunked_decode(gorc__http_chunked *d, const char *buf, size_t len, size_t *consumed,
                              gorc__http_slice *data);

/* Map an error code returned by this module to the HTTP status to answer with (400, 413,
 * 414, 431, 501, 505; 500 for anything else). If reason is not NULL it receives the status's
 * reason phrase, a static string. */
int gorc__http_error_status(int err, const char **reason);

/* A short static English description of a fault (for logs). Unknown values give "unknown". */
const char *gorc__http_fault_text(gorc__http_fault fault);

/* Case-insensitive (ASCII) equality of s and b[0..bn). */
bool gorc__http_ieq(gorc__http_slice s, const char *b, size_t bn);

/* Find the first header after `prev` (NULL: from the start) of hdrs[0..n) whose name equals
 * name[0..name_len) ignoring ASCII case. Returns NULL when there is none. Passing the last
 * result as prev iterates over repeated fields. */
const gorc__http_header *gorc__http_header_find(const gorc__http_header *hdrs, size_t n,
                                                const char *name, size_t name_len,
                                                const gorc__http_header *prev);

/* Iterate the elements of a comma-separated list (RFC 9110 §5.6.1) such as a Connection or
 * Transfer-Encoding value. *rest is the part not yet split; on each call the next non-empty
 * element, with surrounding OWS removed, is stored in *elem, *rest advances past it, and true
 * is returned. Returns false when no element remains. Empty elements are skipped; a comma
 * inside a quoted-string does not split. */
bool gorc__http_list_next(gorc__http_slice *rest, gorc__http_slice *elem);

#ifdef __cplusplus
}
#endif

#endif /* GORC_HTTP_PARSE_H */
