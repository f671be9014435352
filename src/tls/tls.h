/*
 * tls.h - what config.c and conn.c share (libgorc_tls's internals).
 */
#ifndef GORC_TLS_INTERNAL_H
#define GORC_TLS_INTERNAL_H

#include "gorc_tls.h"

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>

/* One generation of a server's certificates: an SSL_CTX per certificate (the first is the
 * default), with the DNS names SNI matches against. Replaced as a whole by a reload; each
 * connection holds a reference to the set its SSL was made from, so an old set lives until
 * its last connection is gone. Immutable once published. */
typedef struct gorc__tls_certset {
    _Atomic int refs;
    size_t n;
    struct gorc__tls_centry {
        SSL_CTX *ctx;
        char **names; /* lower case; "*.example.com" for a wildcard */
        size_t nnames;
    } * e;
} gorc__tls_certset;

typedef struct gorc__tls_session {
    char *name;
    SSL_SESSION *sess;
} gorc__tls_session;

struct gorc_tls_config {
    _Atomic int refs; /* the creator's, one per connection and listener using it */
    bool server;
    bool ktls;
    int64_t hs_timeout;  /* 0: none */
    unsigned char *alpn; /* ALPN list in wire format (length-prefixed names), or NULL */
    size_t alpn_len;
    /* server */
    gorc_tls_server_opts so; /* versions and flags (certs and alpn pointers not kept) */
    pthread_mutex_t mu;      /* guards cur: held for a pointer load and a count */
    gorc__tls_certset *cur;
    /* client */
    SSL_CTX *ctx;
    pthread_mutex_t cmu; /* guards the session cache */
    gorc__tls_session *cache;
    int cache_cap, cache_next;
};

/* The current certificate set, with a reference for the caller. */
gorc__tls_certset *gorc__tls_certset_get(gorc_tls_config *cfg);
void gorc__tls_certset_put(gorc__tls_certset *set);
/* A cached session for name (a reference: SSL_SESSION_free it), or NULL. */
SSL_SESSION *gorc__tls_session_get(gorc_tls_config *cfg, const char *name);
/* Remember sess (the caller's reference is taken over) as name's. */
void gorc__tls_session_put(gorc_tls_config *cfg, const char *name, SSL_SESSION *sess);
/* Drain OpenSSL's error queue of this thread into one GORC_ETLS* code (or 0). */
int gorc__tls_queue_err(void);

#endif
