/*
 * simnet.h - the simulated network's socket calls (src/net/simnet.c), for fd.c and net.c.
 *
 * Inside a simulation run, a socket that a goroutine of the run makes is simulated: a
 * gorc__sep stands where the kernel's socket would be, and fd.c calls these functions where it
 * would make a system call. Each behaves as its system call on a non-blocking socket: it
 * returns what the call returns, or -1 with errno set (EAGAIN when it would block); readiness
 * comes to the socket's poll descriptor from the network's own events, in virtual time.
 * Everything above - locks, deadlines, cancellation, close - is fd.c's usual code.
 */
#ifndef GORC_SIMNET_H
#define GORC_SIMNET_H

#include "gorc_net.h"
#include "runtime/netpoll.h"

typedef struct gorc__sep gorc__sep;

/* Whether sockets the caller makes are simulated (it is a goroutine of a simulation run). */
bool gorc__simnet_on(void);

/* A new simulated socket (type SOCK_STREAM or SOCK_DGRAM; family AF_INET, AF_INET6 or
 * AF_UNIX) and the descriptor that stands for it (an eventfd: a number nothing else uses,
 * which the gorc__fd closes). Returns the descriptor, or a negative errno. */
int gorc__simnet_socket(gorc__sep **out, int family, int type);
/* Tie e to its poll descriptor (after gorc__fd_init_sim made it). */
void gorc__simnet_attach(gorc__sep *e, gorc__pd *pd);
/* The descriptor's last reference went: the socket closes (a FIN or a reset to the peer). */
void gorc__simnet_close(gorc__sep *e);

/* bind(2), listen(2), connect(2) (-EINPROGRESS for a stream socket). 0 or a negative errno. */
int gorc__simnet_bind(gorc__sep *e, const gorc_addr *a);
int gorc__simnet_listen(gorc__sep *e, int backlog);
int gorc__simnet_connect(gorc__sep *e, const gorc_addr *a);
/* getsockopt(SO_ERROR) of a connecting socket: EINPROGRESS, 0 (connected) or the error. */
int gorc__simnet_soerror(gorc__sep *e);

/* The system calls, as above: >= 0 or -1 with errno. */
ssize_t gorc__simnet_read(gorc__sep *e, void *buf, size_t n);
ssize_t gorc__simnet_write(gorc__sep *e, const void *buf, size_t n);
/* The same for a raw callback (gorc_conn_raw_recv / _raw_send), which runs under its caller's
 * locks and must not park: the slow fault does not apply; reset and short do. */
ssize_t gorc__simnet_raw_read(gorc__sep *e, void *buf, size_t n);
ssize_t gorc__simnet_raw_write(gorc__sep *e, const void *buf, size_t n);
ssize_t gorc__simnet_recvfrom(gorc__sep *e, void *buf, size_t n, struct sockaddr *sa,
                              socklen_t *salen);
ssize_t gorc__simnet_sendto(gorc__sep *e, const void *buf, size_t n, const struct sockaddr *sa,
                            socklen_t salen);
/* accept4: the new socket in *out and its descriptor. */
int gorc__simnet_accept(gorc__sep *e, gorc__sep **out);
/* recv(MSG_PEEK) of one byte: 1 (data), 0 (end of stream) or -1 with errno. */
int gorc__simnet_peek(gorc__sep *e);
/* Whether a read would not wait (data, end of stream, an error). */
bool gorc__simnet_readable(gorc__sep *e);
int gorc__simnet_shutdown(gorc__sep *e, int how);
/* getsockname (peer false) / getpeername. 0 or a negative errno. */
int gorc__simnet_addr(gorc__sep *e, bool peer, gorc_addr *a);

/* A host name of the run's network: up to max addresses, or GORC_ENOHOST. */
int gorc__simnet_resolve(gorc_addr *out, int max, const char *host, int port, int family);

#endif
