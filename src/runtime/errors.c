/*
 * errors.c - gorc_strerror: the text of every error code gorc returns.
 *
 * gorc reports errors as negative errno values, and a few of them carry a meaning of gorc's
 * own that strerror(3) would misdescribe: -EPIPE is also "the channel is closed", -EBADF "use
 * of closed network connection", -ENODATA "unexpected EOF", -EFBIG "request body too large".
 * Those get a message that names every meaning gorc gives the code, in Go's words where Go has
 * them (net.ErrClosed, os.ErrDeadlineExceeded, io.ErrUnexpectedEOF, http.ErrServerClosed);
 * every other code gets the C library's description. docs/api.md's Conventions table and the
 * net and HTTP parts' code lists describe the same meanings; change them together.
 */
#include "runtime/runtime.h"
#include "gorc_http.h"
#include "gorc_net.h"
#include "gorc_websocket.h"
#include "gorc_tls.h" /* the TLS codes' names only: the core does not link OpenSSL */

#include <string.h>

typedef struct {
    int code;
    const char *text;
} errtext;

static const errtext own[] = {
    {GORC_ECLOSED, "channel closed, or broken pipe (the peer closed the connection)"},
    {GORC_EAGAIN, "operation would block, or the runtime could not start"},
    {GORC_ETIMEDOUT, "i/o timeout, or context deadline exceeded (the deadline passed)"},
    {-ECANCELED, "context canceled"},
    {GORC_ENETCLOSED, "use of closed network connection"},
    {GORC_EUNEXPECTEDEOF, "unexpected EOF"},
    {GORC_ENOHOST, "no such host"},
    {GORC_HTTP_ESERVERCLOSED, "http: Server closed"},
    {GORC_HTTP_EBODYNOTALLOWED,
     "http: request method or response status code does not allow body, or operation not "
     "permitted"},
    {GORC_HTTP_ETOOMANYREDIRECTS, "http: stopped after too many redirects"},
    {GORC_HTTP_EBADMSG, "malformed HTTP message"},
    {GORC_HTTP_ETOOLARGE, "http: request body too large"},
    /* A transport hook's "not mine" (HTTP/2's client for a host that chose HTTP/1.1); it never
     * reaches a caller of gorc_http_client_do, but a hook's author may print it. */
    {GORC_HTTP_ENOTHANDLED, "http: not handled by this transport (HTTP/1.1 sends it)"},
    {GORC_WS_ECLOSED, "websocket: close sent or received, or transport endpoint is not connected"},
    {GORC_WS_EPROTO, "websocket: protocol error (the connection was failed with 1002)"},
    {GORC_WS_EBADDATA, "websocket: invalid UTF-8 in a text message (failed with 1007)"},
    {GORC_WS_ETOOBIG,
     "websocket: message or frame too big (failed with 1009), or message too long"},
    {GORC_WS_EHANDSHAKE, "websocket: bad handshake"},
    /* libgorc_tls's handshake failures (gorc_tls.h); these errno values mean nothing else in
     * gorc, so the TLS meaning comes first. */
    {GORC_ETLSHANDSHAKE, "tls: handshake failure (alert, malformed handshake, no common cipher "
                         "or application protocol)"},
    {GORC_ETLSEXPIRED, "x509: certificate has expired or is not yet valid"},
    {GORC_ETLSHOSTNAME, "x509: certificate is not valid for the host name"},
    {GORC_ETLSUNKNOWNCA, "x509: certificate signed by unknown authority"},
    {GORC_ETLSVERSION, "tls: no protocol version in common"},
    {GORC_ETLSBADCERT, "tls: cannot load certificate or key (unreadable, malformed or "
                       "mismatched)"},
};

const char *gorc_strerror(int err)
{
    if (err == 0)
        return "success";
    if (err > 0)
        err = -err;
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (own[i].code == err)
            return own[i].text;
    /* strerrordesc_np is thread-safe and never formats into a buffer. */
    const char *s = err == INT32_MIN ? NULL : strerrordesc_np(-err);
    return s ? s : "unknown error";
}
