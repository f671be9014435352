/*
 * config.c - TLS configurations: OpenSSL contexts built once, certificates chosen by SNI,
 * reloads, the client's session cache (Go's tls.Config).
 *
 * Everything costly is done here, once per configuration, never per connection: OpenSSL 3
 * fetches algorithms and parses certificates when an SSL_CTX is set up, and doing that per
 * connection both costs and contends on the library's global locks (openssl/openssl#20286).
 * A connection only calls SSL_new on a ready context.
 *
 * A server has one SSL_CTX per certificate. The first is the default, and the one every
 * handshake starts on; its servername callback looks the client's SNI up among the other
 * certificates' DNS names and moves the connection to the matching context (as nginx does).
 * Session tickets are issued and checked with the keys of the context the handshake started
 * on, so one set of ticket keys serves all certificates, and a reload copies them into the new
 * default context: tickets issued before a reload still resume after it.
 *
 * A reload builds a whole new certificate set and swaps the configuration's pointer under a
 * mutex held for nothing more than that. Connections take a reference to the set their SSL
 * is made from (SSL_new also holds its SSL_CTX), so the old set, and every connection made
 * from it, works on until the last such connection is gone; on failure nothing changes.
 *
 * Errors. OpenSSL keeps a queue of errors per thread, and a goroutine can move to another
 * thread whenever it parks. Nothing in this file parks; conn.c clears the queue before each
 * OpenSSL call and reads it right after, with no parking in between.
 */
#include "tls/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_HS_TIMEOUT (10 * GORC_SECOND)

/* ------------------------------------------------------------------------------------------
 * Shared pieces
 * ---------------------------------------------------------------------------------------- */

int gorc__tls_queue_err(void)
{
    int rc = 0;
    unsigned long e;
    while ((e = ERR_get_error()) != 0)
        if (rc == 0)
            rc = GORC_ETLSBADCERT;
    return rc;
}

static int check_versions(int min, int max, int *lo, int *hi)
{
    *lo = min ? min : GORC_TLS_V12;
    *hi = max ? max : GORC_TLS_V13;
    bool ok = (*lo == GORC_TLS_V12 || *lo == GORC_TLS_V13) &&
              (*hi == GORC_TLS_V12 || *hi == GORC_TLS_V13) && *lo <= *hi;
    return ok ? 0 : -EINVAL;
}

/* The ALPN names in wire format: each preceded by its length. */
static int alpn_wire(gorc_tls_config *cfg, const char *const *names, size_t n)
{
    if (n == 0 || names == NULL)
        return 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = names[i] ? strlen(names[i]) : 0;
        if (l == 0 || l > 255)
            return -EINVAL;
        total += 1 + l;
    }
    unsigned char *w = malloc(total);
    if (w == NULL)
        return -ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        w[o++] = (unsigned char)l;
        memcpy(w + o, names[i], l);
        o += l;
    }
    cfg->alpn = w;
    cfg->alpn_len = total;
    return 0;
}

static void common_ctx(SSL_CTX *ctx, int lo, int hi, bool ktls)
{
    SSL_CTX_set_min_proto_version(ctx, lo);
    SSL_CTX_set_max_proto_version(ctx, hi);
    uint64_t op = SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION;
#ifdef SSL_OP_ENABLE_KTLS
    if (ktls)
        op |= SSL_OP_ENABLE_KTLS;
#endif
    SSL_CTX_set_options(ctx, op);
    /* Release buffers while idle (an idle connection holds no 16 KiB record buffers); write
     * record by record and let a retried write come from a moved buffer (conn.c). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384");
    /* Read ahead: one recv takes a whole record (or several) instead of a recv for the 5-byte
     * header and another for the body; a request costs one recv fewer. Whatever is read
     * ahead stays in OpenSSL, where every read and idle wait looks first (conn.c), and the
     * buffer is still released once empty. kTLS keeps it off: the kernel must see every
     * record the handshake did not consume. */
    if (!ktls)
        SSL_CTX_set_read_ahead(ctx, 1);
}

/* The server's cipher suites in Go's order of preference: AES-128-GCM first (with AES-NI it
 * is the cheapest, and its SHA-256 makes every HKDF step of a TLS 1.3 handshake cheaper than
 * AES-256-GCM's SHA-384, OpenSSL's default first choice), then ChaCha20-Poly1305, then
 * AES-256-GCM. A client that puts ChaCha20 first gets it (SSL_OP_PRIORITIZE_CHACHA: the
 * client has no AES hardware), as from Go. TLS 1.2 keeps OpenSSL's default set, reordered
 * the same way. */
#define SUITES_13 "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"
#define SUITES_12                                                                                  \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"       \
    "DEFAULT"

static gorc_tls_config *config_alloc(bool server)
{
    gorc_tls_config *cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL)
        return NULL;
    atomic_init(&cfg->refs, 1);
    cfg->server = server;
    pthread_mutex_init(&cfg->mu, NULL);
    pthread_mutex_init(&cfg->cmu, NULL);
    return cfg;
}

static int64_t hs_timeout(int64_t t)
{
    return t == 0 ? DEFAULT_HS_TIMEOUT : t < 0 ? 0 : t;
}

/* ------------------------------------------------------------------------------------------
 * Certificates
 * ---------------------------------------------------------------------------------------- */

static char *lower_dup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] | 0x20 : s[i]);
    d[n] = 0;
    return d;
}

static int add_name(struct gorc__tls_centry *e, const char *s, size_t n)
{
    char **nn = realloc(e->names, (e->nnames + 1) * sizeof *nn);
    if (nn == NULL)
        return -ENOMEM;
    e->names = nn;
    if ((nn[e->nnames] = lower_dup(s, n)) == NULL)
        return -ENOMEM;
    e->nnames++;
    return 0;
}

/* The DNS names of the leaf: its subject alternative names, else its common name. */
static int cert_names(struct gorc__tls_centry *e, X509 *x)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int rc = 0;
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && rc == 0; i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS)
            rc = add_name(e, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                          (size_t)ASN1_STRING_length(g->d.dNSName));
    }
    if (sans)
        GENERAL_NAMES_free(sans);
    if (rc == 0 && e->nnames == 0) {
        char cn[256];
        int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
        if (n > 0)
            rc = add_name(e, cn, (size_t)n);
    }
    return rc;
}

/* Load the chain and key of c into ctx. */
static int load_cert(SSL_CTX *ctx, const gorc_tls_cert *c, struct gorc__tls_centry *e)
{
    ERR_clear_error();
    int rc = GORC_ETLSBADCERT;
    BIO *cb = NULL, *kb = NULL;
    X509 *leaf = NULL;
    EVP_PKEY *key = NULL;
    if (c->cert_pem)
        cb = BIO_new_mem_buf(c->cert_pem, -1);
    else if (c->cert_file)
        cb = BIO_new_file(c->cert_file, "r");
    if (c->key_pem)
        kb = BIO_new_mem_buf(c->key_pem, -1);
    else if (c->key_file)
        kb = BIO_new_file(c->key_file, "r");
    if (cb == NULL || kb == NULL)
        goto out;
    if ((leaf = PEM_read_bio_X509_AUX(cb, NULL, NULL, NULL)) == NULL)
        goto out;
    if (SSL_CTX_use_certificate(ctx, leaf) != 1)
        goto out;
    X509 *ca;
    while ((ca = PEM_read_bio_X509(cb, NULL, NULL, NULL)) != NULL)
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            goto out;
        }
    ERR_clear_error(); /* the end of the chain reads as "no start line" */
    if ((key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL)) == NULL)
        goto out;
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        goto out;
    rc = cert_names(e, leaf);
out:
    ERR_clear_error();
    X509_free(leaf);
    EVP_PKEY_free(key);
    BIO_free(cb);
    BIO_free(kb);
    return rc;
}

void gorc__tls_certset_put(gorc__tls_certset *set)
{
    if (set == NULL || atomic_fetch_sub(&set->refs, 1) != 1)
        return;
    for (size_t i = 0; i < set->n; i++) {
        SSL_CTX_free(set->e[i].ctx);
        for (size_t j = 0; j < set->e[i].nnames; j++)
            free(set->e[i].names[j]);
        free(set->e[i].names);
    }
    free(set->e);
    free(set);
}

gorc__tls_certset *gorc__tls_certset_get(gorc_tls_config *cfg)
{
    pthread_mutex_lock(&cfg->mu);
    gorc__tls_certset *set = cfg->cur;
    atomic_fetch_add(&set->refs, 1);
    pthread_mutex_unlock(&cfg->mu);
    return set;
}

static bool name_matches(const char *pat, const char *name)
{
    if (strcasecmp(pat, name) == 0)
        return true;
    if (pat[0] != '*' || pat[1] != '.')
        return false;
    const char *dot = strchr(name, '.'); /* a wildcard covers exactly one label */
    return dot && dot != name && strcasecmp(dot + 1, pat + 2) == 0;
}

/* SNI: move the handshake to the certificate whose names match (Go's getCertificate). */
static int servername_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    gorc__tls_certset *set = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL || set->n < 2)
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i < set->n; i++)
        for (size_t j = 0; j < set->e[i].nnames; j++)
            if (name_matches(set->e[i].names[j], name)) {
                if (i > 0)
                    SSL_set_SSL_CTX(ssl, set->e[i].ctx);
                return SSL_TLSEXT_ERR_OK;
            }
    return SSL_TLSEXT_ERR_OK; /* no match: the default certificate, as Go */
}

/* ALPN, in the server's order of preference; a client offering only others fails (Go 1.17+:
 * "tls: no application protocol"). */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    gorc_tls_config *cfg = arg;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, cfg->alpn, (unsigned int)cfg->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int build_certset(gorc_tls_config *cfg, const gorc_tls_cert *certs, size_t n,
                         gorc__tls_certset **out)
{
    gorc__tls_certset *set = calloc(1, sizeof *set);
    if (set == NULL)
        return -ENOMEM;
    atomic_init(&set->refs, 1);
    if ((set->e = calloc(n, sizeof *set->e)) == NULL) {
        free(set);
        return -ENOMEM;
    }
    int lo, hi, rc = check_versions(cfg->so.min_version, cfg->so.max_version, &lo, &hi);
    for (size_t i = 0; i < n && rc == 0; i++) {
        SSL_CTX *ctx = SSL_CTX_new_ex(NULL, NULL, TLS_server_method());
        if (ctx == NULL) {
            ERR_clear_error();
            rc = -ENOMEM;
            break;
        }
        set->e[i].ctx = ctx;
        set->n = i + 1;
        common_ctx(ctx, lo, hi, cfg->ktls);
        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
                                     (cfg->so.no_tickets ? SSL_OP_NO_TICKET : 0));
        if (SSL_CTX_set_ciphersuites(ctx, SUITES_13) != 1 ||
            SSL_CTX_set_cipher_list(ctx, SUITES_12) != 1) {
            ERR_clear_error();
            rc = -ENOMEM;
            break;
        }
        /* Resumption by stateless tickets only: no server-side session cache to lock. */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(ctx, cfg->so.no_tickets ? 0 : 1); /* Go sends one */
        SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
        SSL_CTX_set_tlsext_servername_arg(ctx, set);
        if (cfg->alpn)
            SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, cfg);
        rc = load_cert(ctx, &certs[i], &set->e[i]);
    }
    if (rc != 0) {
        gorc__tls_certset_put(set);
        return rc;
    }
    *out = set;
    return 0;
}

int gorc_tls_server_config_new(gorc_tls_config **out, const gorc_tls_server_opts *opts)
{
    if (out)
        *out = NULL;
    int lo, hi;
    if (out == NULL || opts == NULL || opts->certs == NULL || opts->num_certs == 0 ||
        check_versions(opts->min_version, opts->max_version, &lo, &hi) != 0)
        return -EINVAL;
    gorc_tls_config *cfg = config_alloc(true);
    if (cfg == NULL)
        return -ENOMEM;
    cfg->so = *opts;
    cfg->so.certs = NULL;
    cfg->so.alpn = NULL;
    cfg->ktls = opts->ktls;
    cfg->hs_timeout = hs_timeout(opts->handshake_timeout);
    int rc = alpn_wire(cfg, opts->alpn, opts->num_alpn);
    if (rc == 0)
        rc = build_certset(cfg, opts->certs, opts->num_certs, &cfg->cur);
    if (rc != 0) {
        gorc_tls_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int gorc_tls_config_reload(gorc_tls_config *cfg, const gorc_tls_cert *certs, size_t n)
{
    if (cfg == NULL || certs == NULL || n == 0 || !cfg->server)
        return -EINVAL;
    gorc__tls_certset *set;
    int rc = build_certset(cfg, certs, n, &set);
    if (rc != 0)
        return rc;
    gorc__tls_certset *old = gorc__tls_certset_get(cfg);
    unsigned char keys[80]; /* name, HMAC and AES keys: what OpenSSL's control exchanges */
    if (SSL_CTX_get_tlsext_ticket_keys(old->e[0].ctx, keys, sizeof keys) == 1)
        SSL_CTX_set_tlsext_ticket_keys(set->e[0].ctx, keys, sizeof keys);
    ERR_clear_error();
    gorc__tls_certset_put(old);
    pthread_mutex_lock(&cfg->mu);
    old = cfg->cur;
    cfg->cur = set;
    pthread_mutex_unlock(&cfg->mu);
    gorc__tls_certset_put(old); /* its connections hold their own references */
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Clients
 * ---------------------------------------------------------------------------------------- */

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    gorc_tls_config *cfg = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    const char *name = SSL_get_app_data(ssl);
    if (cfg == NULL || name == NULL || cfg->cache_cap == 0)
        return 0;
    gorc__tls_session_put(cfg, name, sess);
    return 1; /* the reference is ours */
}

void gorc__tls_session_put(gorc_tls_config *cfg, const char *name, SSL_SESSION *sess)
{
    pthread_mutex_lock(&cfg->cmu);
    int slot = -1;
    for (int i = 0; i < cfg->cache_cap && slot < 0; i++)
        if (cfg->cache[i].name && strcmp(cfg->cache[i].name, name) == 0)
            slot = i;
    if (slot < 0) {
        slot = cfg->cache_next;
        cfg->cache_next = (cfg->cache_next + 1) % cfg->cache_cap;
        free(cfg->cache[slot].name);
        cfg->cache[slot].name = strdup(name);
    }
    SSL_SESSION *old = cfg->cache[slot].sess;
    bool kept = cfg->cache[slot].name != NULL; /* else out of memory for the name */
    cfg->cache[slot].sess = kept ? sess : NULL;
    pthread_mutex_unlock(&cfg->cmu);
    SSL_SESSION_free(old);
    if (!kept)
        SSL_SESSION_free(sess);
}

SSL_SESSION *gorc__tls_session_get(gorc_tls_config *cfg, const char *name)
{
    SSL_SESSION *s = NULL;
    pthread_mutex_lock(&cfg->cmu);
    for (int i = 0; i < cfg->cache_cap && s == NULL; i++)
        if (cfg->cache[i].name && strcmp(cfg->cache[i].name, name) == 0 && cfg->cache[i].sess &&
            SSL_SESSION_is_resumable(cfg->cache[i].sess)) {
            s = cfg->cache[i].sess;
            SSL_SESSION_up_ref(s);
        }
    pthread_mutex_unlock(&cfg->cmu);
    return s;
}

static int load_cas(SSL_CTX *ctx, const gorc_tls_client_opts *o)
{
    ERR_clear_error();
    int rc = 0;
    if (o->ca_pem) {
        BIO *b = BIO_new_mem_buf(o->ca_pem, -1);
        X509_STORE *st = SSL_CTX_get_cert_store(ctx);
        X509 *x;
        int n = 0;
        while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
            if (X509_STORE_add_cert(st, x) == 1)
                n++;
            X509_free(x);
        }
        BIO_free(b);
        rc = n > 0 ? 0 : GORC_ETLSBADCERT;
    } else if (o->ca_file) {
        rc = SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) == 1 ? 0 : GORC_ETLSBADCERT;
    } else {
        rc = SSL_CTX_set_default_verify_paths(ctx) == 1 ? 0 : GORC_ETLSBADCERT;
    }
    ERR_clear_error();
    return rc;
}

int gorc_tls_client_config_new(gorc_tls_config **out, const gorc_tls_client_opts *opts)
{
    if (out)
        *out = NULL;
    gorc_tls_client_opts o = opts ? *opts : (gorc_tls_client_opts){0};
    int lo, hi;
    if (out == NULL || check_versions(o.min_version, o.max_version, &lo, &hi) != 0 ||
        o.session_cache < 0)
        return -EINVAL;
    gorc_tls_config *cfg = config_alloc(false);
    if (cfg == NULL)
        return -ENOMEM;
    cfg->ktls = o.ktls;
    cfg->hs_timeout = hs_timeout(o.handshake_timeout);
    int rc = alpn_wire(cfg, o.alpn, o.num_alpn);
    if (rc == 0 && (cfg->ctx = SSL_CTX_new_ex(NULL, NULL, TLS_client_method())) == NULL) {
        ERR_clear_error();
        rc = -ENOMEM;
    }
    if (rc == 0) {
        common_ctx(cfg->ctx, lo, hi, o.ktls);
        SSL_CTX_set_app_data(cfg->ctx, cfg);
        SSL_CTX_set_verify(cfg->ctx, o.insecure_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
                           NULL);
        if (cfg->alpn && SSL_CTX_set_alpn_protos(cfg->ctx, cfg->alpn, (unsigned)cfg->alpn_len))
            rc = -ENOMEM;
    }
    if (rc == 0 && !o.insecure_skip_verify)
        rc = load_cas(cfg->ctx, &o);
    if (rc == 0 && o.session_cache > 0) {
        cfg->cache = calloc((size_t)o.session_cache, sizeof *cfg->cache);
        if (cfg->cache == NULL)
            rc = -ENOMEM;
        cfg->cache_cap = o.session_cache;
        SSL_CTX_set_session_cache_mode(cfg->ctx,
                                       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(cfg->ctx, new_session_cb);
    }
    if (rc != 0) {
        gorc_tls_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

void gorc_tls_config_free(gorc_tls_config *cfg)
{
    if (cfg == NULL || atomic_fetch_sub(&cfg->refs, 1) != 1)
        return;
    gorc__tls_certset_put(cfg->cur);
    SSL_CTX_free(cfg->ctx);
    for (int i = 0; i < cfg->cache_cap; i++) {
        free(cfg->cache[i].name);
        SSL_SESSION_free(cfg->cache[i].sess);
    }
    free(cfg->cache);
    free(cfg->alpn);
    pthread_mutex_destroy(&cfg->mu);
    pthread_mutex_destroy(&cfg->cmu);
    free(cfg);
}
