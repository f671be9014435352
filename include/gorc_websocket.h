/*
 * gorc_websocket.h - WebSocket (RFC 6455) connections for goroutines, on gorc_http.
 *
 * A server upgrades a request inside its HTTP handler; a client dials a ws:// URL (or runs
 * the handshake over any connection it made itself, such as a TLS one). Then each side
 * reads whole messages (or streams a large one) and writes messages, as with Go's
 * gorilla/websocket:
 *
 *     static void echo(gorc_http_rw *w, gorc_http_request *r, void *arg)
 *     {
 *         gorc_ws *ws;
 *         if (gorc_ws_upgrade(&ws, w, r, NULL) < 0)
 *             return;                       // the handshake was answered with an error
 *         for (;;) {
 *             int type;
 *             char *msg;
 *             ssize_t n = gorc_ws_read_message(ws, &type, &msg, NULL);
 *             if (n < 0)
 *                 break;                    // closed by the peer, or a protocol error
 *             gorc_ws_write_message(ws, type, msg, (size_t)n, NULL);
 *             free(msg);
 *         }
 *         gorc_ws_close(ws, GORC_WS_CLOSE_NORMAL, NULL);
 *     }
 *
 * Concurrency, as in Go: at most one goroutine reads and one writes data messages at a time
 * (a second concurrent reader or writer gets -EBUSY); pings and the close frame may be sent
 * from any goroutine at any time. The reader answers pings and close frames itself.
 *
 * Memory: a connection that waits for a message holds no read buffer (it waits for
 * readability first and borrows a pooled buffer only while bytes arrive), so an idle
 * connection costs its small record and the waiting goroutine's stack. See docs/websocket.md.
 *
 * Errors are negative errno values; times are gorc_now() nanoseconds (0 = none); a ctx
 * argument may be NULL (not cancellable).
 */
#ifndef GORC_WEBSOCKET_H
#define GORC_WEBSOCKET_H

#include "gorc.h"
#include "gorc_context.h"
#include "gorc_http.h"
#include "gorc_net.h"

#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The close handshake has happened: the peer sent a close frame (gorc_ws_close_status says
 * which code), or this side sent one and may write no more data. Go: *websocket.CloseError. */
#define GORC_WS_ECLOSED (-ENOTCONN)
/* The peer broke the protocol (reserved bits or opcodes, unmasked client frames, bad
 * fragmentation, ...); the connection was failed with close code 1002. */
#define GORC_WS_EPROTO (-EPROTO)
/* A text message or close reason that is not UTF-8; failed with close code 1007. */
#define GORC_WS_EBADDATA (-EILSEQ)
/* A frame or message over the configured limit; failed with close code 1009. Go:
 * websocket.ErrReadLimit. */
#define GORC_WS_ETOOBIG (-EMSGSIZE)
/* The handshake failed: the request was not a valid upgrade (the server answered it with
 * 400, 403 or 426), or the server did not accept the client's. Go: websocket.ErrBadHandshake. */
#define GORC_WS_EHANDSHAKE (-ENOPROTOOPT)

/* Message types (the frame opcodes). */
#define GORC_WS_TEXT   1
#define GORC_WS_BINARY 2

/* Close codes (RFC 6455 §7.4.1). */
#define GORC_WS_CLOSE_NORMAL      1000
#define GORC_WS_CLOSE_GOING_AWAY  1001
#define GORC_WS_CLOSE_PROTOCOL    1002
#define GORC_WS_CLOSE_UNSUPPORTED 1003
#define GORC_WS_CLOSE_NO_STATUS   1005 /* received only: the close frame had no code */
#define GORC_WS_CLOSE_ABNORMAL    1006 /* received only: the connection ended without one */
#define GORC_WS_CLOSE_BAD_DATA    1007
#define GORC_WS_CLOSE_POLICY      1008
#define GORC_WS_CLOSE_TOO_BIG     1009
#define GORC_WS_CLOSE_INTERNAL    1011

typedef struct gorc_ws gorc_ws;

/* An extension (RFC 6455 §9) that transforms whole messages and marks them with RSV1, such as
 * permessage-deflate (RFC 7692; libgorc_wsdeflate, gorc_wsdeflate.h). The core negotiates it,
 * sets and checks RSV1, and calls it per message; it never sees frames. Every function may be
 * called from any goroutine, one connection's state by one reader and one writer at a time
 * (decode and encode never run concurrently on the same direction). */
typedef struct gorc_ws_extension {
    const char *name; /* the token in Sec-WebSocket-Extensions, e.g. "permessage-deflate" */
    void *arg;        /* passed to accept, offer and confirm */
    /* Server: one of the client's offers, its parameters as sent ("a; b=1", or ""). Write the
     * response's parameters (NUL-terminated) into resp[0..n) and make the connection's state.
     * 1: accepted; 0: declined (the next offer is tried); negative: an error (-ENOMEM). */
    int (*accept)(void *arg, const char *params, char *resp, size_t n, void **state);
    /* Client: the offer's parameters into buf[0..n); 0 or a negative error. */
    int (*offer)(void *arg, char *buf, size_t n);
    /* Client: the server accepted with params; make the state. 0, or negative to fail the
     * handshake (GORC_WS_EHANDSHAKE). */
    int (*confirm)(void *arg, const char *params, void **state);
    /* An outgoing message p[0..n): 1 and a malloc'd *out of *outn bytes to send with RSV1,
     * 0 to send p as it is, or a negative error. */
    int (*encode)(void *state, const void *p, size_t n, void **out, size_t *outn);
    /* A received message that had RSV1: 0 and a malloc'd *out of *outn bytes (at most max:
     * else GORC_WS_ETOOBIG), GORC_WS_EBADDATA for data it cannot decode, -ENOMEM. */
    int (*decode)(void *state, const void *p, size_t n, size_t max, void **out, size_t *outn);
    void (*free)(void *state); /* the connection is gone */
} gorc_ws_extension;

/* Options of a connection. Zero-initialise; NULL means all defaults. */
typedef struct gorc_ws_opts {
    /* Subprotocols, NULL-terminated: the server's in its order of preference (it picks the
     * first that the client offers too), the client's offered in this order. */
    const char *const *subprotocols;
    /* Extra headers of the client's request (Origin, Authorization, ...) or of the server's
     * 101 response (Set-Cookie, ...). */
    const gorc_http_header *headers;
    size_t num_headers;
    int64_t max_message; /* bytes of one message (default 16 MiB; negative: no limit) */
    int64_t max_frame;   /* bytes of one frame's payload (default: max_message) */
    /* Keep-alive: while a read waits and nothing has arrived for ping_interval, send a ping;
     * if nothing arrives within pong_timeout (default ping_interval) after it, fail the
     * read with -ETIMEDOUT and close. 0: off. Costs no goroutine and no timer of its own:
     * it is the waiting read's deadline. */
    int64_t ping_interval;
    int64_t pong_timeout;
    int64_t handshake_timeout; /* client: dial and handshake together (default 30 s) */
    int64_t close_timeout;     /* gorc_ws_close waits this long for the peer's reply (5 s) */
    /* Server: accept requests whose Origin names another host than Host. By default they
     * get 403, as with gorilla/websocket's Upgrader (a browser page of another site must
     * not use the user's cookies here). */
    bool any_origin;
    /* An extension to offer (client) or accept when offered (server), or NULL. It must
     * outlive every connection made with it. */
    const gorc_ws_extension *extension;
} gorc_ws_opts;

/* Upgrade the request to a WebSocket: checks it (GET, HTTP/1.1, Upgrade: websocket,
 * Connection: upgrade, Sec-WebSocket-Version: 13, a 16-byte Sec-WebSocket-Key, Origin),
 * picks a subprotocol, takes the connection over (gorc_http_rw_hijack: r's strings are
 * invalid afterwards) and sends the 101 response. A request that is not a valid upgrade is
 * answered (400; 405 for a method other than GET; 403 for a foreign Origin; 426 with
 * Sec-WebSocket-Version: 13 for another version) and the handler returns. Returns 0 and *out, or
 * -EINVAL (NULL w, r or out), GORC_WS_EHANDSHAKE, -EALREADY (the response was started), -ENOMEM, or
 * an error as gorc_http_rw_hijack and gorc_conn_write_all (-EPIPE, -ECONNRESET, -ETIMEDOUT,
 * GORC_ENETCLOSED). Go: websocket.Upgrader.Upgrade. */
GORC_API int gorc_ws_upgrade(gorc_ws **out, gorc_http_rw *w, gorc_http_request *r,
                             const gorc_ws_opts *opts);

/* Dial url ("ws://host[:port]/path?query") and run the client handshake. handshake_timeout
 * and ctx bound the whole of it. Returns 0 and *out, or -EINVAL (NULL out or url, a bad
 * URL), -EPROTONOSUPPORT (a scheme other than ws: wss:// needs a TLS connection, made by
 * the caller and given to gorc_ws_client), GORC_WS_EHANDSHAKE (no 101, or a response that
 * does not accept the key, or names a subprotocol not offered or an extension),
 * GORC_EUNEXPECTEDEOF (the server closed during the handshake), -ENOMEM, and the errors of
 * gorc_tcp_dial_ctx (-ECANCELED, -ETIMEDOUT, GORC_ENOHOST, -ECONNREFUSED, -ENETUNREACH,
 * -EHOSTUNREACH, -EAGAIN, -EAFNOSUPPORT, -EIO, -EMFILE). Go: websocket.Dialer.DialContext. */
GORC_API int gorc_ws_dial(gorc_ws **out, const char *url, const gorc_ws_opts *opts, gorc_ctx *ctx);

/* Run the client handshake for url on c, a connection the caller made (TCP, Unix, TLS):
 * the WebSocket owns c from now on, also on failure (it is closed then). Returns 0 and *out,
 * or -EINVAL (NULL out, c or url, a bad URL), GORC_WS_EHANDSHAKE, GORC_EUNEXPECTEDEOF,
 * -ECANCELED, -ETIMEDOUT, -ENOMEM, GORC_ENETCLOSED, -ECONNRESET, -EPIPE.
 * Go: websocket.NewClient. */
GORC_API int gorc_ws_client(gorc_ws **out, gorc_conn *c, const char *url, const gorc_ws_opts *opts,
                            gorc_ctx *ctx);

/* The subprotocol chosen by the handshake, or "" (NULL ws: ""). Go: Conn.Subprotocol. */
GORC_API const char *gorc_ws_subprotocol(gorc_ws *ws);

/* The underlying connection (still owned by ws; for addresses and socket options, not for
 * reading or writing). NULL for NULL. Go: Conn.UnderlyingConn. */
GORC_API gorc_conn *gorc_ws_conn(gorc_ws *ws);

/* Read the next whole message into a malloc'd, NUL-terminated buffer *out (free it) and its
 * type (GORC_WS_TEXT or GORC_WS_BINARY) into *type. Pings are answered and pongs taken in
 * passing. A text message is checked to be UTF-8. Returns the length, or: GORC_WS_ECLOSED
 * (the peer's close frame arrived and was answered), GORC_WS_EPROTO, GORC_WS_EBADDATA,
 * GORC_WS_ETOOBIG (the connection was failed with 1002, 1007, 1009), GORC_EUNEXPECTEDEOF
 * (the connection ended without a close frame, 1006), -ETIMEDOUT (the read deadline, or the
 * keep-alive ping was not answered), -ECANCELED (ctx), -EBUSY (another read is in progress),
 * -EINVAL (NULL ws, type or out), -ENOMEM, GORC_ENETCLOSED (closed meanwhile), -ECONNRESET.
 * After an error other than -ETIMEDOUT from the read deadline, -ECANCELED and -EBUSY,
 * every later read returns the same error. Go: Conn.ReadMessage. */
GORC_API ssize_t gorc_ws_read_message(gorc_ws *ws, int *type, char **out, gorc_ctx *ctx);

/* Start reading the next message as a stream: discards what is left of the current one,
 * waits for the next message's first frame and stores its type. Returns 0, or an error as
 * gorc_ws_read_message. Go: Conn.NextReader. */
GORC_API int gorc_ws_next_message(gorc_ws *ws, int *type, gorc_ctx *ctx);

/* Read up to n bytes of the message started by gorc_ws_next_message. Returns the count, 0
 * at the end of the message, or an error as gorc_ws_read_message (-EINVAL also for NULL buf
 * with n > 0, or no message started). Go: the io.Reader from Conn.NextReader. */
GORC_API ssize_t gorc_ws_read(gorc_ws *ws, void *buf, size_t n, gorc_ctx *ctx);

/* Send a whole message of type (GORC_WS_TEXT or GORC_WS_BINARY) as one frame: header and
 * payload in one gathered write, the payload not copied (a client masks a copy, in a reused
 * buffer). A text message must be UTF-8; it is not checked. Returns 0, or -EINVAL (NULL ws,
 * bad type, NULL p with n > 0), GORC_WS_ECLOSED (a close frame was sent), -EBUSY (another
 * data write is in progress), -ENOMEM, -ECANCELED (ctx), and the errors of
 * gorc_conn_writev (-EPIPE, -ECONNRESET, -ETIMEDOUT, GORC_ENETCLOSED, -EIO). A write that
 * failed part-way leaves the stream unusable: later writes return the same error.
 * Go: Conn.WriteMessage. */
GORC_API int gorc_ws_write_message(gorc_ws *ws, int type, const void *p, size_t n, gorc_ctx *ctx);

/* Send n messages of one type (msgs[i] is message i) in as few system calls as possible:
 * the frames of a queue drained at once (a broadcast's fan-out). Returns 0 or an error as
 * gorc_ws_write_message (-EINVAL also for n < 0 or NULL msgs with n > 0). Go: none (a loop
 * of WriteMessage on a buffered writer). */
GORC_API int gorc_ws_write_messages(gorc_ws *ws, int type, const struct iovec *msgs, int n,
                                    gorc_ctx *ctx);

/* Stream a large message: each call sends one frame of it, the first with type, the next
 * ones as continuations (type is ignored), fin on the last. Control frames may go out
 * between them. Returns 0 or an error as gorc_ws_write_message. Go: Conn.NextWriter and
 * its Write and Close. */
GORC_API int gorc_ws_write_fragment(gorc_ws *ws, int type, const void *p, size_t n, bool fin,
                                    gorc_ctx *ctx);

/* Send a ping with up to 125 bytes of payload; any goroutine may call it at any time. The
 * reader takes the pong. Returns 0, -EINVAL (NULL ws, n > 125, NULL p with n > 0),
 * GORC_WS_ECLOSED, or an error as gorc_conn_writev. Go: Conn.WriteControl(PingMessage). */
GORC_API int gorc_ws_ping(gorc_ws *ws, const void *p, size_t n);

/* Deadlines for reads and writes (absolute, 0 = none); moving one while a call waits takes
 * effect at once. Returns 0, -EINVAL (NULL) or GORC_ENETCLOSED.
 * Go: Conn.SetReadDeadline, Conn.SetWriteDeadline. */
GORC_API int gorc_ws_set_read_deadline(gorc_ws *ws, int64_t t);
GORC_API int gorc_ws_set_write_deadline(gorc_ws *ws, int64_t t);

/* The close code the peer sent (GORC_WS_CLOSE_NO_STATUS for a close frame without one,
 * GORC_WS_CLOSE_ABNORMAL when the connection ended without a close frame, 0 while neither
 * happened; -EINVAL for NULL ws), with its reason copied NUL-terminated into reason[0..n)
 * when reason is not NULL. Go: CloseError.Code and Text. */
GORC_API int gorc_ws_close_status(gorc_ws *ws, char *reason, size_t n);

/* Close with code and reason (at most 123 bytes): send the close frame unless one was sent,
 * wait up to close_timeout for the peer's answer (reading and discarding data when no
 * other goroutine reads; otherwise the reader takes it), then close the connection and
 * give up the caller's reference. Goroutines blocked in reads or writes return
 * GORC_ENETCLOSED. code 0 sends 1000. Returns 0, -ETIMEDOUT (the peer did not answer in
 * time; closed anyway), -EINVAL (NULL ws, a code that may not be sent, a reason over 123
 * bytes: nothing is done then), GORC_ENETCLOSED (closed already; the reference is still
 * given up), or the error sending the close frame met (closed anyway: -EPIPE, -ECONNRESET).
 * Go: Conn.WriteControl(CloseMessage) followed by Conn.Close. */
GORC_API int gorc_ws_close(gorc_ws *ws, int code, const char *reason);

/* References, as for gorc_conn: a goroutine that may still use ws when another closes it
 * holds its own. Release of the last one closes (without a handshake) and frees. */
GORC_API gorc_ws *gorc_ws_retain(gorc_ws *ws);
GORC_API void gorc_ws_release(gorc_ws *ws);

#ifdef __cplusplus
}
#endif
#endif /* GORC_WEBSOCKET_H */
