/*
 * gorc_net.h - networking for goroutines: TCP, UDP and Unix sockets that look blocking.
 *
 * A goroutine calling gorc_conn_read waits as if the call blocked, but only the goroutine
 * waits: its thread runs other goroutines, and the runtime's poller (epoll) wakes it when data
 * arrives. A server is written one goroutine per connection, as in Go. See docs/net.md.
 *
 * Conventions (as in gorc.h):
 *  - Errors are negative errno values; errno is never used.
 *  - Times are gorc_now() nanoseconds; deadlines are absolute times on that clock, 0 = none.
 *  - Addresses are strings "host:port": "127.0.0.1:80", "[::1]:80", "localhost:http",
 *    ":8080" (every local address, to listen on). Unix socket addresses are paths; a leading
 *    '@' names a Linux abstract socket.
 *  - Connections and listeners are reference counted. The creator holds one reference;
 *    gorc_conn_close closes the connection and gives that reference up. A goroutine that may
 *    still call into a connection another goroutine closes takes its own reference first
 *    (gorc_conn_retain) and drops it with gorc_conn_release. Operations in progress when the
 *    connection is closed are always safe: they return GORC_ENETCLOSED.
 *  - Writes never raise SIGPIPE: a write to a connection the peer has closed returns -EPIPE
 *    (or -ECONNRESET).
 *  - Reads, writes, accepts, dials and lookups have forms taking a context (gorc_context.h),
 *    named _ctx, near the end of this header.
 */
#ifndef GORC_NET_H
#define GORC_NET_H

#include "gorc.h"
#include "gorc_context.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The connection or listener was closed (also: closed while the call was blocked in it).
 * Go: net.ErrClosed ("use of closed network connection"). */
#define GORC_ENETCLOSED (-EBADF)
/* gorc_conn_read_full: the stream ended after some but not all bytes. Go:
 * io.ErrUnexpectedEOF. */
#define GORC_EUNEXPECTEDEOF (-ENODATA)
/* Name resolution found no such host. Go: *net.DNSError with IsNotFound. */
#define GORC_ENOHOST (-ENXIO)

/* Room for any address gorc_addr_string formats, with its terminating NUL. */
#define GORC_ADDRSTRLEN 112

/* ------------------------------------------------------------------------------------------
 * Addresses and name resolution
 * ---------------------------------------------------------------------------------------- */

/* A socket address of any family (len 0 = none). */
typedef struct gorc_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
        struct sockaddr_storage ss;
    } u;
    socklen_t len;
} gorc_addr;

/* Resolve "host:port", "host" (port 0), "[v6]:port" or ":port" (the unspecified address; a
 * named service without a host, ":http", goes to getaddrinfo and resolves to loopback)
 * into up to max addresses, in the resolver's preference order. family is 0, AF_INET or
 * AF_INET6. Numeric hosts and ports are converted on the spot; anything else goes through
 * getaddrinfo as a blocking call (gorc_blocking), so resolution never stalls other
 * goroutines. Returns the number of addresses stored (>= 1), or GORC_ENOHOST, -EINVAL (NULL
 * out or addr, max <= 0, bad syntax, unknown service), -EAGAIN (temporary resolver failure),
 * -ENOMEM, -EAFNOSUPPORT, -EIO (any other resolver failure). Go: net.ResolveTCPAddr,
 * net.LookupHost. */
GORC_API int gorc_resolve(gorc_addr *out, int max, const char *addr, int family);

/* Format as "1.2.3.4:80", "[::1]:80" (IPv4-mapped IPv6 addresses as IPv4), a Unix path, or
 * "@name" for an abstract Unix socket. Returns the length, or -ENOSPC if buf is too small,
 * -EAFNOSUPPORT for other families, -EINVAL (NULL a or buf, n == 0). Go: net.Addr.String. */
GORC_API int gorc_addr_string(const gorc_addr *a, char *buf, size_t n);

/* ------------------------------------------------------------------------------------------
 * Listeners
 * ---------------------------------------------------------------------------------------- */

typedef struct gorc_listener gorc_listener;
typedef struct gorc_conn gorc_conn;

/* Options for gorc_tcp_listen / gorc_unix_listen. Zero-initialise; NULL means all defaults. */
typedef struct gorc_listen_opts {
    int backlog;       /* pending-connection queue; 0 = the system maximum (as Go) */
    int family;        /* 0, AF_INET or AF_INET6 (Go's "tcp" / "tcp4" / "tcp6") */
    bool reuseport;    /* SO_REUSEPORT: several processes may listen on the same port and the
                          kernel spreads connections over them */
    bool no_reuseaddr; /* TCP listeners set SO_REUSEADDR unless this is set (as Go) */
    int64_t keepalive; /* TCP keep-alive period of accepted connections: 0 = 15 s (Go's
                          default), negative = off */
} gorc_listen_opts;

/* Listen for TCP connections on addr ("127.0.0.1:0" picks a free port: see
 * gorc_listener_addr). ":port" listens on every IPv6 and IPv4 address with one socket.
 * Returns 0 and *out, or -EINVAL (NULL out or addr), an error as gorc_resolve, a socket,
 * bind or listen error (-EADDRINUSE, -EACCES, -EADDRNOTAVAIL, ...), -ENOMEM.
 * Go: net.Listen("tcp", addr). */
GORC_API int gorc_tcp_listen(gorc_listener **out, const char *addr, const gorc_listen_opts *opts);

/* Listen on a Unix stream socket at path (removed again by gorc_listener_close; a stale file
 * left there by a crashed process is not removed: -EADDRINUSE). Returns 0 and *out, -EINVAL
 * (NULL out, a NULL, empty or too long path), a socket, bind or listen error, -ENOMEM.
 * Go: net.Listen("unix"). */
GORC_API int gorc_unix_listen(gorc_listener **out, const char *path, const gorc_listen_opts *opts);

/* Wrap an existing listening stream socket (TCP or Unix); the listener owns fd from now on,
 * even on failure. It is made non-blocking and close-on-exec. Returns 0 and *out, -ENOTSOCK,
 * -EBADF, -EINVAL (NULL out, not a stream socket or not listening), -ENOMEM.
 * Go: net.FileListener. */
GORC_API int gorc_listener_from_fd(gorc_listener **out, int fd);

/* Listeners passed by systemd socket activation: if LISTEN_PID is this process, wraps each of
 * the LISTEN_FDS descriptors (3, 4, ...) that is a listening stream socket into out[i] (NULL
 * for the others, which are left untouched), for i < max. Returns LISTEN_FDS (0 when the
 * variables are absent or meant for another process). unset_env removes LISTEN_PID,
 * LISTEN_FDS and LISTEN_FDNAMES so children do not see them. Go:
 * coreos/go-systemd activation.Listeners. */
GORC_API int gorc_listeners_from_systemd(gorc_listener **out, int max, bool unset_env);

/* Wait for and accept the next connection. TCP connections get TCP_NODELAY and keep-alive
 * (as in Go). When the process is out of descriptors (EMFILE / ENFILE) accept waits and
 * retries - 5 ms, doubling up to 1 s - instead of failing or spinning; the connection waits
 * in the kernel's queue meanwhile. Returns 0 and *out, GORC_ENETCLOSED (the listener was
 * closed, also while waiting), -ETIMEDOUT (deadline), -ENOBUFS / -ENOMEM, -EINVAL (NULL l or
 * out), -EMFILE (only as a fault injected in a simulation run: gorc_sim.h). Go: Listener.Accept. */
GORC_API int gorc_listener_accept(gorc_listener *l, gorc_conn **out);

/* Deadline for accept (absolute, 0 = none); may be moved while accept waits. Returns 0,
 * -EINVAL (NULL) or GORC_ENETCLOSED. Go: TCPListener.SetDeadline. */
GORC_API int gorc_listener_set_deadline(gorc_listener *l, int64_t t);

/* The listening address as a string (with the port the kernel picked for port 0). Returns
 * the length, -EINVAL (NULL l or buf, n == 0), GORC_ENETCLOSED, -ENOSPC (buf too small) or a
 * getsockname error. Go: Listener.Addr().String(). */
GORC_API int gorc_listener_addr(gorc_listener *l, char *buf, size_t n);

/* The socket descriptor (still owned by the listener), -EINVAL (NULL) or GORC_ENETCLOSED. */
GORC_API int gorc_listener_fd(gorc_listener *l);

/* Close: goroutines blocked in accept return GORC_ENETCLOSED; gives up the caller's
 * reference. Returns 0, GORC_ENETCLOSED if already closed, -EINVAL for NULL.
 * Go: Listener.Close. */
GORC_API int gorc_listener_close(gorc_listener *l);
GORC_API gorc_listener *gorc_listener_retain(gorc_listener *l);
/* Drop a reference; the last one closes the listener if needed and frees it. */
GORC_API void gorc_listener_release(gorc_listener *l);

/* ------------------------------------------------------------------------------------------
 * Connections
 * ---------------------------------------------------------------------------------------- */

/* Connect to addr, trying each resolved address in turn; timeout_ns > 0 bounds connecting
 * (0 = no limit but the kernel's). Resolving a host name through getaddrinfo is not
 * interruptible and is not counted against it. TCP_NODELAY and 15 s keep-alive are set, as in Go.
 * Returns 0 and *out, or -EINVAL (NULL out or addr), an error as gorc_resolve, -ETIMEDOUT,
 * -ECONNREFUSED, -ENETUNREACH, -EHOSTUNREACH or another connect error (the last address's),
 * -EMFILE (only as a fault injected in a simulation run: gorc_sim.h). Go: net.DialTimeout("tcp",
 * addr, timeout). */
GORC_API int gorc_tcp_dial(gorc_conn **out, const char *addr, int64_t timeout_ns);

/* Connect to a Unix stream socket. Returns 0 and *out, or -EINVAL (NULL out, a NULL, empty or
 * too long path), -ENOENT, -ECONNREFUSED, -ETIMEDOUT or another connect error, -ENOMEM,
 * -EMFILE (only as a fault injected in a simulation run: gorc_sim.h). Go: net.DialTimeout("unix",
 * path, timeout). */
GORC_API int gorc_unix_dial(gorc_conn **out, const char *path, int64_t timeout_ns);

/* Wrap a connected socket, or a pipe, FIFO, terminal or any descriptor epoll accepts (not a
 * regular file: -EPERM; use gorc_file_read). The connection owns fd from now on, even on
 * failure; it is made non-blocking and close-on-exec. Returns 0 and *out, -EINVAL (NULL out,
 * fd < 0), -EPERM, -EBADF, -ENOMEM. Go: net.FileConn / os.NewFile. */
GORC_API int gorc_conn_from_fd(gorc_conn **out, int fd);

/* Read up to n bytes, waiting until at least one is available. Returns the count, 0 at end of
 * stream (the peer closed or shut down its side), or -EINVAL (NULL c, NULL buf with n > 0),
 * GORC_ENETCLOSED, -ETIMEDOUT (read deadline), -ECONNRESET, ... Go: Conn.Read. */
GORC_API ssize_t gorc_conn_read(gorc_conn *c, void *buf, size_t n);

/* Read exactly n bytes. Returns n, 0 if the stream ended before the first byte,
 * GORC_EUNEXPECTEDEOF if it ended after some, or an error as gorc_conn_read.
 * Go: io.ReadFull. */
GORC_API ssize_t gorc_conn_read_full(gorc_conn *c, void *buf, size_t n);

/* Write some of buf: waits until at least one byte can be written, returns the count (which
 * may be less than n) or -EINVAL (NULL c, NULL buf with n > 0), GORC_ENETCLOSED, -ETIMEDOUT
 * (write deadline), -EPIPE, -ECONNRESET, -EIO (the kernel took nothing and reported no
 * error)... Like write(2). */
GORC_API ssize_t gorc_conn_write(gorc_conn *c, const void *buf, size_t n);

/* Write all n bytes, waiting as needed. Returns n or an error as gorc_conn_write (some bytes
 * may have been sent). Concurrent writers do not interleave their data. Go: Conn.Write. */
GORC_API ssize_t gorc_conn_write_all(gorc_conn *c, const void *buf, size_t n);

/* Write all of the iovcnt pieces iov, in order, gathered into as few system calls as possible
 * (sendmsg for sockets, writev otherwise; 64 pieces each). Returns the total. Errors: -EINVAL
 * (NULL c, iovcnt < 0, NULL iov with iovcnt > 0, a total over SSIZE_MAX), and those of
 * gorc_conn_write_all: -EPIPE, -ECONNRESET, -ETIMEDOUT, GORC_ENETCLOSED, -EIO. Go:
 * net.Buffers.WriteTo. */
GORC_API ssize_t gorc_conn_writev(gorc_conn *c, const struct iovec *iov, int iovcnt);

/* Send n bytes of the file file_fd, from offset off, with sendfile(2) (no copy through user
 * space), waiting as needed. The file's own offset is not changed. Returns n, -EIO if the
 * file ends first, -EINVAL, or an error as gorc_conn_write_all (some bytes may have been
 * sent). Reading the file may block the thread on a cold page cache, as in nginx without
 * aio. Go: TCPConn.ReadFrom(*os.File). */
GORC_API ssize_t gorc_conn_sendfile(gorc_conn *c, int file_fd, int64_t off, size_t n);
/* gorc_conn_sendfile that a cancel of ctx stops: returns n, or the context's error
 * (-ECANCELED, -ETIMEDOUT) or another error as gorc_conn_sendfile (-EIO, -EINVAL, -EPIPE,
 * -ECONNRESET, GORC_ENETCLOSED); *sent (if not NULL) says how many bytes went out, also on
 * error. -EINVAL also for a NULL ctx. Go: TCPConn.ReadFrom(*os.File), stopped by a deadline. */
GORC_API ssize_t gorc_conn_sendfile_ctx(gorc_conn *c, int file_fd, int64_t off, size_t n,
                                        gorc_ctx *ctx, size_t *sent);

/* Shut down reading (SHUT_RD), writing (SHUT_WR: the peer reads end of stream, while this
 * side can still read) or both. Returns 0, -EINVAL (NULL c, bad how), GORC_ENETCLOSED, or a
 * shutdown error (-ENOTCONN, -ENOTSOCK). Go: TCPConn.CloseRead / CloseWrite. */
GORC_API int gorc_conn_shutdown(gorc_conn *c, int how);

/* Deadlines: absolute gorc_now() times, 0 = none. An expired deadline fails current and
 * future calls in that direction with -ETIMEDOUT until it is moved; moving it while a call
 * waits takes effect at once. Returns 0, -EINVAL (NULL) or GORC_ENETCLOSED.
 * Go: Conn.SetDeadline / SetReadDeadline / SetWriteDeadline. */
GORC_API int gorc_conn_set_deadline(gorc_conn *c, int64_t t);
GORC_API int gorc_conn_set_read_deadline(gorc_conn *c, int64_t t);
GORC_API int gorc_conn_set_write_deadline(gorc_conn *c, int64_t t);

/* Relative timeouts (Go: none; what people build with a SetReadDeadline before every Read):
 * from now on every read (write, sendfile) call may wait about d nanoseconds - at least d/2,
 * at most d - before failing with -ETIMEDOUT. The deadline is re-armed only when less than
 * half of d is left, so a stream of quick calls costs one clock read each and a timer update
 * every d/2, not one per call. d = 0 turns it off. An absolute deadline set afterwards
 * replaces it. Returns 0; -EINVAL (NULL c, d < 0); GORC_ENETCLOSED (closed). */
GORC_API int gorc_conn_set_read_timeout(gorc_conn *c, int64_t d);
GORC_API int gorc_conn_set_write_timeout(gorc_conn *c, int64_t d);

/* Local and remote address as strings (see gorc_addr_string), while the connection is open.
 * Returns the length, -EINVAL (NULL c or buf, n == 0), GORC_ENETCLOSED, a getsockname or
 * getpeername error (-ENOTCONN, -ENOTSOCK), -ENOSPC, -EAFNOSUPPORT.
 * Go: Conn.LocalAddr / RemoteAddr. */
GORC_API int gorc_conn_local_addr(gorc_conn *c, char *buf, size_t n);
GORC_API int gorc_conn_remote_addr(gorc_conn *c, char *buf, size_t n);

/* Complete the connection's security handshake now, if it has one (a TLS connection made by
 * libgorc_tls, whose first read or write does it otherwise), waiting as a read would; the
 * read and write deadlines bound it. Returns 0 (at once for a plain connection), -EINVAL
 * (NULL), GORC_ENETCLOSED (closed), or the handshake's own error (gorc_tls.h lists them).
 * Servers call it before choosing a protocol by gorc_conn_protocol. Go: tls.Conn.Handshake. */
GORC_API int gorc_conn_handshake(gorc_conn *c);

/* The application protocol the handshake chose by ALPN ("h2", "http/1.1"), or "" when none
 * was chosen, the handshake has not completed, or c has no handshake (NULL c: ""). The
 * string lives as long as c. Go: tls.ConnectionState.NegotiatedProtocol. */
GORC_API const char *gorc_conn_protocol(gorc_conn *c);

/* The socket descriptor (still owned by the connection), -EINVAL (NULL) or GORC_ENETCLOSED.
 * For socket options not listed here; do not read, write or close it directly. */
GORC_API int gorc_conn_fd(gorc_conn *c);

/* Socket options. Each returns 0, -EINVAL (NULL), GORC_ENETCLOSED or the setsockopt error. */
GORC_API int gorc_conn_set_nodelay(gorc_conn *c, bool on); /* TCP_NODELAY (on by default) */
GORC_API int gorc_conn_set_keepalive(gorc_conn *c, int64_t period); /* <= 0 turns it off */
GORC_API int gorc_conn_set_linger(gorc_conn *c, int sec);         /* < 0 off; 0 = reset on close */
GORC_API int gorc_conn_set_read_buffer(gorc_conn *c, int bytes);  /* SO_RCVBUF */
GORC_API int gorc_conn_set_write_buffer(gorc_conn *c, int bytes); /* SO_SNDBUF */

/* Close: every goroutine blocked on the connection returns GORC_ENETCLOSED, the descriptor
 * is closed once none is using it (before this returns), and the caller's reference is given
 * up. Returns 0, or GORC_ENETCLOSED if it was already closed (the reference is still given
 * up), -EINVAL for NULL. Go: Conn.Close. */
GORC_API int gorc_conn_close(gorc_conn *c);
GORC_API gorc_conn *gorc_conn_retain(gorc_conn *c);
/* Drop a reference; the last one closes the connection if needed and frees it. */
GORC_API void gorc_conn_release(gorc_conn *c);

/* ------------------------------------------------------------------------------------------
 * UDP. A UDP socket is a gorc_conn: read/write work on dialed (connected) sockets, deadlines
 * and close as for TCP.
 * ---------------------------------------------------------------------------------------- */

/* Bind a UDP socket to addr (":0" for any port on every address). Returns 0 and *out, -EINVAL
 * (NULL out or addr), an error as gorc_resolve, a socket or bind error, -ENOMEM.
 * Go: net.ListenUDP. */
GORC_API int gorc_udp_listen(gorc_conn **out, const char *addr);
/* A UDP socket connected to addr: gorc_conn_write sends to it. Returns 0 and *out, -EINVAL
 * (NULL out or addr), an error as gorc_resolve, -ENETUNREACH or another socket or connect
 * error, -EMFILE (only as a fault injected in a simulation run: gorc_sim.h). Go: net.DialUDP. */
GORC_API int gorc_udp_dial(gorc_conn **out, const char *addr);
/* Receive one datagram (truncated to n bytes); the sender's address goes to *from if not
 * NULL. Returns its length, or -EINVAL (NULL c, NULL buf with n > 0), GORC_ENETCLOSED,
 * -ETIMEDOUT (read deadline) or a recvfrom error. Go: UDPConn.ReadFrom. */
GORC_API ssize_t gorc_conn_read_from(gorc_conn *c, void *buf, size_t n, gorc_addr *from);
/* Send one datagram to *to. Returns its length, or -EINVAL (NULL c or to, NULL buf with
 * n > 0), GORC_ENETCLOSED, -ETIMEDOUT (write deadline) or a sendto error (-EMSGSIZE, ...).
 * Go: UDPConn.WriteTo. */
GORC_API ssize_t gorc_conn_write_to(gorc_conn *c, const void *buf, size_t n, const gorc_addr *to);
/* The same two with a context: a cancel stops the wait with the context's error (-ECANCELED,
 * -ETIMEDOUT), before anything was received or sent. Other errors as the plain calls: -EINVAL
 * (also for NULL ctx), GORC_ENETCLOSED, a recvfrom or sendto error (-EMSGSIZE, ...). Go:
 * UDPConn.ReadFrom and WriteTo, stopped by a deadline. */
GORC_API ssize_t gorc_conn_read_from_ctx(gorc_conn *c, void *buf, size_t n, gorc_addr *from,
                                         gorc_ctx *ctx);
GORC_API ssize_t gorc_conn_write_to_ctx(gorc_conn *c, const void *buf, size_t n,
                                        const gorc_addr *to, gorc_ctx *ctx);

/* ------------------------------------------------------------------------------------------
 * Calls with a context (Go: the ctx of Dialer.DialContext and Resolver.LookupHost, and the
 * connection deadline net/http moves to stop a read or write). Each is the call without _ctx,
 * and in addition: if ctx is cancelled while the call waits, the call returns at once with the
 * context's error, -ECANCELED or -ETIMEDOUT (gorc_ctx_err); if ctx is cancelled already, the
 * call returns that error without touching the socket; a context that can never be cancelled
 * (gorc_ctx_done(ctx) == NULL) makes it the plain call. A cancelled call leaves the
 * connection as it was: its deadlines are untouched and the next call works as usual (after a
 * write_all_ctx, *written says where the stream stands). Cancellation interrupts waiting for
 * the descriptor, not waiting behind another goroutine's call on the same direction. A NULL
 * ctx is -EINVAL. See docs/net.md, "Cancellation".
 * ---------------------------------------------------------------------------------------- */

/* gorc_conn_read, or the context's error (nothing was read: a read returns data or an error,
 * never both). Returns the count, 0 at end of stream, or -ECANCELED, -ETIMEDOUT (the
 * context's error or the read deadline), -EINVAL, GORC_ENETCLOSED, -ECONNRESET, ...
 * Go: Conn.Read, stopped by SetReadDeadline as net/http does on cancel. */
GORC_API ssize_t gorc_conn_read_ctx(gorc_conn *c, void *buf, size_t n, gorc_ctx *ctx);

/* gorc_conn_read_full with a context. *got (got may be NULL) is set to the bytes stored in buf,
 * also on failure: n on success, fewer after an error, end of stream or cancellation. Returns
 * n, 0 (end of stream before the first byte), GORC_EUNEXPECTEDEOF, -ECANCELED, -ETIMEDOUT,
 * -EINVAL, GORC_ENETCLOSED, -ECONNRESET, ... Go: io.ReadFull, which returns the count too. */
GORC_API ssize_t gorc_conn_read_full_ctx(gorc_conn *c, void *buf, size_t n, gorc_ctx *ctx,
                                         size_t *got);

/* gorc_conn_write with a context: one write after waiting for room, or the context's error
 * (nothing was written). Returns the count (maybe less than n), or -ECANCELED, -ETIMEDOUT
 * (the context's error or the write deadline), -EINVAL, GORC_ENETCLOSED, -EPIPE,
 * -ECONNRESET, ... Like write(2). */
GORC_API ssize_t gorc_conn_write_ctx(gorc_conn *c, const void *buf, size_t n, gorc_ctx *ctx);

/* gorc_conn_write_all with a context. *written (written may be NULL) is set to the bytes the
 * kernel took, also on failure: n on success; after an error, the first *written bytes of buf
 * were sent and the rest were not. With *written == 0 the connection is as before the call;
 * otherwise the peer has part of a message: write the rest (buf + *written) or close.
 * Returns n, or -ECANCELED, -ETIMEDOUT (the context's error or the write deadline), -EINVAL,
 * GORC_ENETCLOSED, -EPIPE, -ECONNRESET, -EIO, ... Go: Conn.Write, which returns the count
 * too. */
GORC_API ssize_t gorc_conn_write_all_ctx(gorc_conn *c, const void *buf, size_t n, gorc_ctx *ctx,
                                         size_t *written);

/* gorc_listener_accept, or the context's error (no connection was taken from the queue).
 * Returns 0 and *out, or -ECANCELED, -ETIMEDOUT (the context's error or the listener's
 * deadline), -EINVAL, GORC_ENETCLOSED, -ENOBUFS, -ENOMEM, -EMFILE (only as a fault injected in a
 * simulation run: gorc_sim.h) (*out is NULL then). Go: Listener.Accept, stopped by SetDeadline. */
GORC_API int gorc_listener_accept_ctx(gorc_listener *l, gorc_conn **out, gorc_ctx *ctx);

/* gorc_tcp_dial with a context: resolving (as gorc_resolve_ctx) and connecting stop when ctx
 * is cancelled, and the context's deadline bounds the whole dial, as timeout_ns does (the
 * earlier of the two counts, shared among the addresses as in gorc_tcp_dial). Returns 0 and
 * *out, or -ECANCELED, -ETIMEDOUT (the context's error, its deadline or timeout_ns), -EINVAL,
 * -ECONNREFUSED, -ENETUNREACH, -EHOSTUNREACH, -ENOMEM, and the resolver's GORC_ENOHOST,
 * -EAFNOSUPPORT, -EAGAIN, -EIO, -EMFILE (only as a fault injected in a simulation run: gorc_sim.h)
 * (*out is NULL then). Go: Dialer.DialContext(ctx, "tcp", addr) with Dialer.Timeout. */
GORC_API int gorc_tcp_dial_ctx(gorc_conn **out, const char *addr, int64_t timeout_ns,
                               gorc_ctx *ctx);

/* gorc_unix_dial with a context, as gorc_tcp_dial_ctx (a Unix connect does not wait: a full
 * queue is -EAGAIN at once). Returns 0 and *out, or -ECANCELED, -ETIMEDOUT, -EINVAL,
 * -ECONNREFUSED, -ENOENT, -EAGAIN, -EMFILE (only as a fault injected in a simulation run:
 * gorc_sim.h), ... (*out is NULL then). Go: Dialer.DialContext(ctx, "unix", path). */
GORC_API int gorc_unix_dial_ctx(gorc_conn **out, const char *path, int64_t timeout_ns,
                                gorc_ctx *ctx);

/* gorc_resolve with a context. getaddrinfo cannot be interrupted, so a lookup of a name runs
 * in a goroutine of its own: when ctx is cancelled first the call returns at once and the
 * lookup finishes in the background, then frees what it found (it holds a thread, in
 * gorc_blocking, as long as the resolver takes). Numeric addresses need no lookup. Returns
 * the count (>= 1), or -ECANCELED, -ETIMEDOUT (the context's error), -EINVAL, GORC_ENOHOST,
 * -EAGAIN, -ENOMEM, -EAFNOSUPPORT, -EIO (another resolver failure). Go:
 * Resolver.LookupHost(ctx, host). */
GORC_API int gorc_resolve_ctx(gorc_addr *out, int max, const char *addr, int family, gorc_ctx *ctx);

/* ------------------------------------------------------------------------------------------
 * Layered connections and listeners (Go: a type that implements net.Conn on top of another
 * net.Conn, as tls.Conn does, and tls.NewListener). An extension library (libgorc_tls) fills
 * in an ops table and wraps a plain connection; every gorc_conn_* call, gorc_bufio, the HTTP
 * server and the HTTP client then work on the result unchanged. Deadlines, relative timeouts,
 * addresses, socket options, shutdown and gorc_conn_fd act on the innermost connection;
 * reads, writes, the handshake, the protocol and the idle waits go through the ops. Close
 * calls ops->close, then closes the inner connection (which wakes every goroutine blocked in
 * the ops: they wait on the inner connection); the last reference calls ops->free and drops
 * the inner connection. See docs/net.md, "Layered connections", and docs/tls.md.
 * ---------------------------------------------------------------------------------------- */

typedef struct gorc_conn_ops {
    /* gorc_conn_read / _read_ctx (ctx NULL: none): count, 0 at end of stream or an error. */
    ssize_t (*read)(void *self, void *buf, size_t n, gorc_ctx *ctx);
    /* gorc_conn_write (all false) / _write_all (all true), with ctx or NULL; *written: the
     * bytes accepted, also on error. */
    ssize_t (*write)(void *self, const void *buf, size_t n, bool all, gorc_ctx *ctx,
                     size_t *written);
    /* Complete the handshake (ctx or NULL): 0 or an error; NULL: there is none. */
    int (*handshake)(void *self, gorc_ctx *ctx);
    /* The ALPN protocol or ""; NULL: always "". */
    const char *(*protocol)(void *self);
    /* Wait, taking nothing the caller would read, until a read would not wait: 1 (data), 0
     * (end of stream) or an error (the read deadline: -ETIMEDOUT). The HTTP server's idle and
     * peer-watch waits. */
    int (*wait_readable)(void *self);
    /* Send n bytes of file_fd from off; NULL: the core reads the file and writes through
     * write. n or an error; *sent as for write. */
    ssize_t (*sendfile)(void *self, int file_fd, int64_t off, size_t n, gorc_ctx *ctx,
                        size_t *sent);
    /* Before the inner connection is closed (a goodbye that must not wait); may be NULL. */
    void (*close)(void *self);
    /* The last reference is gone: free self (the inner connection is still open). */
    void (*free)(void *self);
} gorc_conn_ops;

/* Make *out a connection whose reads and writes go through ops with self, built on inner (a
 * connection of any kind; *out takes over the caller's reference to inner, also on failure,
 * when inner is closed). ops must outlive the connection; read, write and free are required.
 * Returns 0, -EINVAL (NULL out, inner or ops, or a required op missing), -ENOMEM. Go: a
 * net.Conn implementation wrapping another (tls.Server, tls.Client). */
GORC_API int gorc_conn_layer(gorc_conn **out, gorc_conn *inner, const gorc_conn_ops *ops,
                             void *self);

/* The connection a layered connection is built on, or NULL for a plain connection (and for
 * NULL c). No reference is taken. Go: tls.Conn.NetConn. */
GORC_API gorc_conn *gorc_conn_inner(gorc_conn *c);

/* self of a connection layered with exactly these ops, or NULL (another kind, or NULL c): how
 * an extension recognises its own connections. Go: a type assertion, c.(*tls.Conn). */
GORC_API void *gorc_conn_layer_self(gorc_conn *c, const gorc_conn_ops *ops);

/* Raw access for the ops of a layered connection (Go: syscall.RawConn.Read / Write). Holding
 * c's read (write) lock, call fn(fd, arg) until it returns true; whenever it returns false
 * (it met EAGAIN), wait until the descriptor may be readable (writable) and call it again.
 * The wait obeys c's read (write) deadline and relative timeout and, if ctx is not NULL, the
 * context as the _ctx calls do; fn itself must not block or park. c must be a plain
 * connection. Returns 0 once fn returned true, or -EINVAL (NULL c or fn, c layered),
 * GORC_ENETCLOSED, -ETIMEDOUT, -ECANCELED (the context's error). */
GORC_API int gorc_conn_raw_read(gorc_conn *c, bool (*fn)(int fd, void *arg), void *arg,
                                gorc_ctx *ctx);
GORC_API int gorc_conn_raw_write(gorc_conn *c, bool (*fn)(int fd, void *arg), void *arg,
                                 gorc_ctx *ctx);

/* One non-blocking read (recv) or write (send) on the plain connection c, for the fn of
 * gorc_conn_raw_read (_raw_write) that cannot make the system call on fd itself: on a socket
 * of a simulation run's network (gorc_conn_simulated) fd is a number standing for the socket,
 * and these reach the simulated socket instead (the slow fault of gorc_sim.h does not apply to
 * them, since fn must not park). On a real socket they are read(2) and send(MSG_NOSIGNAL)
 * (write(2) with SIGPIPE blocked for other descriptors). Never waits. Returns the count
 * (recv: 0 at end of stream), -EAGAIN (it would wait: fn returns false to wait), -EINVAL
 * (NULL c, NULL buf with n > 0, c layered), GORC_ENETCLOSED, or the socket's error
 * (-ECONNRESET, -EPIPE, ...). Go: syscall.Read / Write on the descriptor of a RawConn. */
GORC_API ssize_t gorc_conn_raw_recv(gorc_conn *c, void *buf, size_t n);
GORC_API ssize_t gorc_conn_raw_send(gorc_conn *c, const void *buf, size_t n);

/* Whether the innermost plain connection of c is a socket of a simulation run's network
 * (docs/simulation.md): then no system call works on its descriptor (gorc_conn_fd returns an
 * eventfd that stands for it), socket options are accepted and ignored, and a raw callback
 * must use gorc_conn_raw_recv / _raw_send. false for NULL c and for every real descriptor.
 * Go: none (a net.Conn of a simulated network is another type). */
GORC_API bool gorc_conn_simulated(gorc_conn *c);

/* gorc_conn_handshake that a cancel of ctx stops: returns 0, the context's error (-ECANCELED,
 * -ETIMEDOUT), or an error as gorc_conn_handshake (-EINVAL, also for a NULL ctx;
 * GORC_ENETCLOSED). Go: tls.Conn.HandshakeContext. */
GORC_API int gorc_conn_handshake_ctx(gorc_conn *c, gorc_ctx *ctx);

typedef struct gorc_listener_ops {
    /* Turn raw, just accepted, into the connection accept returns (without waiting: a
     * handshake runs later, in the connection's own goroutine). raw is wrap's from now on,
     * also on failure (as with gorc_conn_layer). 0 and *out, or an error for accept. */
    int (*wrap)(void *self, gorc_conn *raw, gorc_conn **out);
    /* The last reference is gone: free self. May be NULL. */
    void (*free)(void *self);
} gorc_listener_ops;

/* A listener whose accept takes a connection from inner and returns ops->wrap's result; close,
 * deadlines, addresses and the descriptor are inner's. *out takes over the caller's reference
 * to inner (also on failure, when inner is closed). Returns 0, -EINVAL (NULL out, inner, ops
 * or ops->wrap), -ENOMEM. Go: tls.NewListener. */
GORC_API int gorc_listener_layer(gorc_listener **out, gorc_listener *inner,
                                 const gorc_listener_ops *ops, void *self);

/* ------------------------------------------------------------------------------------------
 * Files: blocking I/O offloaded with gorc_blocking (see gorc.h), so the caller's P keeps
 * running other goroutines while the kernel works.
 * ---------------------------------------------------------------------------------------- */

/* open(2) as a blocking call. Returns the descriptor (close-on-exec), -EINVAL (NULL path) or
 * an open error. Go: os.OpenFile. */
GORC_API int gorc_file_open(const char *path, int flags, mode_t mode);
/* pread(2) at offset off, or read(2) at the current position if off < 0. Returns the count
 * (0 at end of file), -EINVAL (fd < 0, NULL buf with n > 0) or a read error.
 * Go: File.ReadAt / File.Read. */
GORC_API ssize_t gorc_file_read(int fd, void *buf, size_t n, int64_t off);
/* Write all n bytes with pwrite(2) at off, or write(2) if off < 0. Returns n, -EINVAL (fd < 0,
 * NULL buf with n > 0), -EIO (the kernel wrote nothing) or a write error (some bytes may have
 * been written). Go: File.WriteAt / File.Write. */
GORC_API ssize_t gorc_file_write(int fd, const void *buf, size_t n, int64_t off);

#ifdef __cplusplus
}
#endif
#endif /* GORC_NET_H */
