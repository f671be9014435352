/*
 * gorc_tls.h - TLS for goroutines (Go's crypto/tls), in libgorc_tls (pkg-config gorc-tls).
 *
 * A TLS connection is a gorc_conn: every gorc_conn_* call, gorc_bufio, the HTTP server and the
 * HTTP client work on it unchanged. A server wraps its listener (gorc_tls_listen, Go's
 * tls.NewListener); accept returns TLS connections whose handshake runs lazily in the
 * connection's own goroutine, on its first read or write or gorc_conn_handshake. A client
 * dials with gorc_tls_dial, and the HTTP client fetches https:// URLs once its options carry
 * gorc_tls_http_client_opts. Handshakes, reads and writes that would block park the goroutine
 * on the poller, never a thread; deadlines and contexts apply to them as to plain I/O.
 *
 * Built on OpenSSL 3; a program that does not use TLS does not link it (libgorc stays libc +
 * pthreads). See docs/tls.md.
 *
 * Conventions (as in gorc.h and gorc_net.h): errors are negative errno values; the TLS
 * failures below have names of their own, and gorc_strerror describes them.
 */
#ifndef GORC_TLS_H
#define GORC_TLS_H

#include "gorc.h"
#include "gorc_context.h"
#include "gorc_http.h"
#include "gorc_net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The handshake failed for a reason without a name of its own below: the peer sent an alert,
 * garbage instead of a handshake, no common cipher or ALPN protocol. Go: tls.AlertError,
 * "tls: handshake failure", "tls: first record does not look like a TLS handshake". */
#define GORC_ETLSHANDSHAKE (-EBADR)
/* The peer's certificate has expired or is not valid yet. Go: x509.CertificateInvalidError
 * with reason x509.Expired. */
#define GORC_ETLSEXPIRED (-EKEYEXPIRED)
/* The peer's certificate is not valid for the name dialed. Go: x509.HostnameError. */
#define GORC_ETLSHOSTNAME (-EKEYREJECTED)
/* The peer's certificate is signed by an authority the trust store does not know (also: a
 * self-signed certificate). Go: x509.UnknownAuthorityError. */
#define GORC_ETLSUNKNOWNCA (-ENOKEY)
/* No protocol version both sides accept (a TLS 1.0 / 1.1 peer, or a minimum the other side
 * does not reach). Go: "tls: client offered only unsupported versions", "tls: protocol
 * version not supported". */
#define GORC_ETLSVERSION (-EBADRQC)
/* A certificate, key or CA file could not be read or parsed, or a key does not match its
 * certificate. Go: tls.LoadX509KeyPair's errors, "tls: private key does not match public
 * key". */
#define GORC_ETLSBADCERT (-EBADE)

/* Protocol versions (the values of TLS's wire encoding, as Go's tls.VersionTLS12). */
#define GORC_TLS_V12 0x0303
#define GORC_TLS_V13 0x0304

typedef struct gorc_tls_config gorc_tls_config;

/* A certificate chain and its private key: PEM files, or PEM text in memory (NUL-terminated;
 * the text wins when both are given). The chain's first certificate is the leaf. */
typedef struct gorc_tls_cert {
    const char *cert_file, *key_file;
    const char *cert_pem, *key_pem;
} gorc_tls_cert;

/* Options of a server configuration. Zero-initialise; every zero field is the default. */
typedef struct gorc_tls_server_opts {
    /* Certificates: the first is the default; the others are chosen by the client's server
     * name (SNI) when it matches one of their DNS names (subject alternative names, or the
     * common name when there are none; "*.example.com" covers one label). At least one. */
    const gorc_tls_cert *certs;
    size_t num_certs;
    int min_version;         /* GORC_TLS_V12 (default; older versions are refused) or _V13 */
    int max_version;         /* 0 = GORC_TLS_V13 */
    const char *const *alpn; /* protocols in the server's order of preference ("h2",
                                "http/1.1"); a client offering none of them fails the
                                handshake (GORC_ETLSHANDSHAKE); NULL = no ALPN */
    size_t num_alpn;
    bool no_tickets;           /* no session tickets: every handshake is a full one */
    int64_t handshake_timeout; /* bounds every handshake (default 10 s; negative: none) */
    bool ktls;                 /* try kernel TLS (OpenSSL's SSL_OP_ENABLE_KTLS); see tls.md */
} gorc_tls_server_opts;

/* Options of a client configuration. Zero-initialise (or NULL): verify against the system's
 * CA store and the name dialed, TLS 1.2 or 1.3, no ALPN, no resumption. */
typedef struct gorc_tls_client_opts {
    const char *ca_file;       /* trust these PEM certificates instead of the system's store */
    const char *ca_pem;        /* ... or these, in memory (NUL-terminated) */
    bool insecure_skip_verify; /* no verification at all (Go: InsecureSkipVerify; tests only) */
    int min_version;           /* GORC_TLS_V12 (default) or GORC_TLS_V13 */
    int max_version;           /* 0 = GORC_TLS_V13 */
    const char *const *alpn;   /* protocols offered, in order ("h2", "http/1.1"); NULL: none */
    size_t num_alpn;
    int session_cache;         /* sessions kept for resumption, one per server name (Go:
                                  ClientSessionCache with this capacity); 0 = none */
    int64_t handshake_timeout; /* bounds every handshake (default 10 s; negative: none) */
    bool ktls;                 /* try kernel TLS */
} gorc_tls_client_opts;

/* Make a server configuration: the certificates are loaded and OpenSSL's context is built
 * once, here, for every connection that uses it. Returns 0 and *out, or -EINVAL (NULL out or
 * opts, no certificate, a bad version or an ALPN name of 0 or more than 255 bytes),
 * GORC_ETLSBADCERT (a certificate or key that cannot be read, parsed or paired), -ENOMEM.
 * Go: &tls.Config{Certificates: ..., NextProtos: ..., MinVersion: ...}. */
GORC_API int gorc_tls_server_config_new(gorc_tls_config **out, const gorc_tls_server_opts *opts);

/* Make a client configuration. Returns 0 and *out, or -EINVAL (NULL out, a bad version or ALPN
 * name), GORC_ETLSBADCERT (a CA file or text that cannot be loaded), -ENOMEM.
 * Go: &tls.Config{RootCAs: ..., NextProtos: ..., ClientSessionCache: ...}. */
GORC_API int gorc_tls_client_config_new(gorc_tls_config **out, const gorc_tls_client_opts *opts);

/* Replace a server configuration's certificates (same layout as opts->certs) without a
 * restart: handshakes that start afterwards use the new ones, connections made before keep
 * theirs and go on working, and session tickets issued before stay valid. On failure the old
 * certificates stay in force. Returns 0, -EINVAL (NULL cfg or certs, n == 0, a client
 * configuration), GORC_ETLSBADCERT, -ENOMEM. Go: what a GetCertificate callback that reads
 * an atomically swapped certificate does. */
GORC_API int gorc_tls_config_reload(gorc_tls_config *cfg, const gorc_tls_cert *certs, size_t n);

/* Give up the caller's reference to cfg: it is freed when the last connection and listener
 * using it are gone. NULL is ignored. */
GORC_API void gorc_tls_config_free(gorc_tls_config *cfg);

/* The server side of TLS over inner (which *out takes over, also on failure, when inner is
 * closed). Nothing is sent or received until the first read, write or gorc_conn_handshake.
 * Returns 0 and *out, -EINVAL (NULL out, inner or cfg, a client configuration), -ENOMEM.
 * Go: tls.Server. */
GORC_API int gorc_tls_server(gorc_conn **out, gorc_conn *inner, gorc_tls_config *cfg);

/* The client side of TLS over inner (taken over as by gorc_tls_server), verifying the
 * server's certificate for server_name (a DNS name, sent as SNI, or an IP address) unless
 * the configuration skips verification. Returns 0 and *out, -EINVAL (NULL out, inner or cfg,
 * a server configuration, a NULL or empty server_name with verification on), -ENOMEM.
 * Go: tls.Client. */
GORC_API int gorc_tls_client(gorc_conn **out, gorc_conn *inner, gorc_tls_config *cfg,
                             const char *server_name);

/* A listener whose accept returns server TLS connections over the connections inner accepts
 * (*out takes inner over, also on failure). Returns 0 and *out, -EINVAL (NULL out, inner or
 * cfg, a client configuration), -ENOMEM. Go: tls.NewListener. */
GORC_API int gorc_tls_listen(gorc_listener **out, gorc_listener *inner, gorc_tls_config *cfg);

/* Dial addr ("host:port") over TCP and complete a client handshake for host, within
 * timeout_ns (0: none but the handshake timeout) and ctx (NULL: none). Returns 0 and *out,
 * -EINVAL (NULL out, addr or cfg, a server configuration), an error as gorc_tcp_dial_ctx
 * (-ETIMEDOUT, -ECANCELED, -ECONNREFUSED, GORC_ENOHOST, ...), or the handshake's:
 * GORC_ETLSHANDSHAKE, GORC_ETLSEXPIRED, GORC_ETLSHOSTNAME, GORC_ETLSUNKNOWNCA,
 * GORC_ETLSVERSION, GORC_EUNEXPECTEDEOF (the server hung up), -ECONNRESET, -ENOMEM.
 * Go: tls.DialWithDialer, tls.Dialer.DialContext. */
GORC_API int gorc_tls_dial(gorc_conn **out, const char *addr, gorc_tls_config *cfg,
                           int64_t timeout_ns, gorc_ctx *ctx);

/* What a completed handshake agreed on. Go: tls.ConnectionState. */
typedef struct gorc_tls_state {
    int version;             /* GORC_TLS_V12 or GORC_TLS_V13 */
    const char *cipher;      /* OpenSSL's name ("TLS_AES_128_GCM_SHA256") */
    const char *protocol;    /* ALPN result, "" for none */
    const char *server_name; /* SNI sent (client) or received (server), "" for none */
    bool resumed;            /* the session was resumed (Go: DidResume) */
    bool ktls_send;          /* the kernel encrypts what this side sends (kTLS) */
} gorc_tls_state;

/* The state of c's completed handshake (the strings live as long as c). Returns 0, -EINVAL
 * (NULL c or st, c is not a TLS connection), -EAGAIN (the handshake has not completed).
 * Go: tls.Conn.ConnectionState. */
GORC_API int gorc_tls_conn_state(gorc_conn *c, gorc_tls_state *st);

/* Set o's dial_tls hook and its argument so that an HTTP client made with o fetches https://
 * URLs over TLS with cfg (a client configuration, which must outlive the client). The hook
 * offers the ALPN protocols its caller asks for ("http/1.1" from HTTP/1.1, "h2" and
 * "http/1.1" from libgorc_http2's client) unless cfg lists protocols of its own. NULL o or
 * cfg: nothing.
 * Go: http.Transport{TLSClientConfig: cfg}. */
GORC_API void gorc_tls_http_client_opts(gorc_http_client_opts *o, gorc_tls_config *cfg);

#ifdef __cplusplus
}
#endif
#endif /* GORC_TLS_H */
