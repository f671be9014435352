/*
 * fd.h - non-blocking descriptors driven by the poller (Go's internal/poll.FD), for net*.c.
 */
#ifndef GORC_FD_H
#define GORC_FD_H

#include "runtime/cancel.h"
#include "runtime/netpoll.h"

#include <sys/socket.h>
#include <sys/types.h>

/* What the descriptor is: decides how it is written (SIGPIPE) and read. */
enum { GORC__FD_STREAM = 1, GORC__FD_DGRAM, GORC__FD_OTHER };

typedef struct gorc__sep gorc__sep;

typedef struct gorc__fd {
    _Atomic uint64_t mu;           /* Go's fdMutex: closed, locks, references, waiters */
    _Atomic uint32_t rsema, wsema; /* read / write lock hand-off */
    _Atomic uint32_t csema;        /* Close waits here until the descriptor is gone */
    int sysfd;
    uint8_t kind;          /* GORC__FD_* */
    bool drained;          /* the last read emptied the socket (read lock held) */
    _Atomic bool shortcut; /* a TCP stream of our own, read with TCP_INQ (fd.c) */
    gorc__pd *pd;
    /* A simulated socket (src/net/simnet.c) in place of the kernel's: the system calls go to
     * it. NULL for every real descriptor; set at init, before the descriptor is shared. */
    gorc__sep *sim;
} gorc__fd;

/* A cancellation source an operation watches while it waits (the _ctx calls of net.c): on the
 * caller's stack, made by gorc__fd_cancel_init, passed to one operation at a time. Operations
 * take NULL, or a cx whose src is NULL, for "not cancellable". When the source is cancelled
 * while the operation waits, the operation returns the source's error (see fd.c). */
typedef struct gorc__fd_cancel {
    gorc__cancel_hook h;
    gorc__cancel *src; /* NULL: nothing to watch */
    gorc__pd *pd;      /* what the hook interrupts, and in which direction */
    int mode;
    bool armed;     /* h is registered with src, or has fired */
    size_t written; /* gorc__fd_write: bytes written before it failed */
} gorc__fd_cancel;

void gorc__fd_cancel_init(gorc__fd_cancel *cx, gorc__cancel *src);

/* Make fd (already non-blocking) pollable. ours: a socket gorc made (and may tune). 0 or a
 * negative errno (fd is left open). */
int gorc__fd_init(gorc__fd *fd, int sysfd, int kind, int family, bool ours);
/* The same for a simulated socket: sysfd is the number standing for it (closed with it). */
int gorc__fd_init_sim(gorc__fd *fd, int sysfd, int kind, gorc__sep *sim);
/* Accept from a simulated listener: the new socket in *sim and its descriptor in *out. */
int gorc__fd_accept_sim(gorc__fd *fd, int *out, gorc__sep **sim, gorc__fd_cancel *cx);
/* Turn off assumptions about the descriptor (the user may reconfigure it) and return it, or
 * -EBADF if closed. */
int gorc__fd_raw(gorc__fd *fd);

/* A reference for an operation that needs the descriptor open (false: it is closed), and its
 * release. */
bool gorc__fd_incref(gorc__fd *fd);
void gorc__fd_decref(gorc__fd *fd);

ssize_t gorc__fd_read(gorc__fd *fd, void *buf, size_t n, gorc__fd_cancel *cx);
/* Wait until a read is worth making: returns at once unless the last read is known to have
 * drained the socket (TCP_INQ), else when data, end of stream, an error or the read deadline
 * arrives. 0 or the error a read would return (-EBADF, -ETIMEDOUT). Lets a caller hold no
 * buffer while a connection idles. */
int gorc__fd_wait_read(gorc__fd *fd);
/* Wait until the peer sends or goes away, taking no byte: 1 (data), 0 (end of stream), or a
 * negative errno (-ECONNRESET..., -EBADF closed, -ETIMEDOUT read deadline). */
int gorc__fd_peek_wait(gorc__fd *fd);
/* One write if all is false (returns after some progress), else until all n are written. */
ssize_t gorc__fd_write(gorc__fd *fd, const void *buf, size_t n, bool all, gorc__fd_cancel *cx);
/* Write all total bytes of the cnt pieces iov (gathered, up to 64 pieces per system call). */
ssize_t gorc__fd_writev(gorc__fd *fd, const struct iovec *iov, int cnt, size_t total);
/* Send n bytes of file from offset off with sendfile(2), waiting as needed: n or an error
 * (-EIO if the file ends first). */
ssize_t gorc__fd_sendfile(gorc__fd *fd, int file, int64_t off, size_t n, gorc__fd_cancel *cx);
ssize_t gorc__fd_recvfrom(gorc__fd *fd, void *buf, size_t n, struct sockaddr *sa, socklen_t *salen,
                          gorc__fd_cancel *cx);
ssize_t gorc__fd_sendto(gorc__fd *fd, const void *buf, size_t n, const struct sockaddr *sa,
                        socklen_t salen, gorc__fd_cancel *cx);
/* Accept a connection (non-blocking, close-on-exec), backing off on EMFILE / ENFILE. */
int gorc__fd_accept(gorc__fd *fd, int *out, struct sockaddr *sa, socklen_t *salen,
                    gorc__fd_cancel *cx);
/* Wait for a connect(2) that returned EINPROGRESS to finish, until deadline (0: none). */
int gorc__fd_connect_wait(gorc__fd *fd, int64_t deadline, gorc__fd_cancel *cx);
/* Holding the read (mode 'r') or write ('w') lock, call fn(sysfd, arg) until it returns true,
 * waiting for the direction whenever it returns false. 0 or the wait's error. */
int gorc__fd_raw_io(gorc__fd *fd, int mode, bool (*fn)(int, void *), void *arg,
                    gorc__fd_cancel *cx);
/* One non-blocking read (write) for fn of gorc__fd_raw_io: the count or a negative errno
 * (-EAGAIN: it would wait). A simulated socket's call, for a descriptor that is one. */
ssize_t gorc__fd_raw_recv(gorc__fd *fd, void *buf, size_t n);
ssize_t gorc__fd_raw_send(gorc__fd *fd, const void *buf, size_t n);
/* Close: wake every waiter with -EBADF, then wait until no operation uses the descriptor and
 * it is closed. -EBADF if it was closed already. */
int gorc__fd_close(gorc__fd *fd);
/* Set a deadline (mode 'r', 'w' or 'r' + 'w'). */
int gorc__fd_set_deadline(gorc__fd *fd, int64_t when, int mode);

#endif
