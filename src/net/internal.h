/*
 * internal.h - what net.c and addr.c share.
 */
#ifndef GORC_NET_INTERNAL_H
#define GORC_NET_INTERNAL_H

#include "context/context.h"
#include "net/fd.h"
#include "gorc_net.h"

/* gorc_resolve with AI_PASSIVE when passive (an address to listen on), giving up when ctx
 * (NULL: none) is cancelled, as gorc_resolve_ctx. */
int gorc__resolve(gorc_addr *out, int max, const char *addr, int family, bool passive,
                  gorc_ctx *ctx);
void gorc__unmap_v4(gorc_addr *a);
/* A Unix socket address for path ('@' prefix: abstract). */
int gorc__unix_addr(gorc_addr *out, const char *path);

/* Wait until reading c is worth a buffer (see gorc__fd_wait_read). */
int gorc__conn_wait_read(gorc_conn *c);
/* Whether a read of c would not wait (data, end of stream, an error; closed: true), without
 * waiting. The HTTP client's test of an idle connection. */
bool gorc__conn_poll_in(gorc_conn *c);
/* Wait until the peer of c sends something or goes away (see gorc__fd_peek_wait). */
int gorc__conn_peek_wait(gorc_conn *c);

#endif
