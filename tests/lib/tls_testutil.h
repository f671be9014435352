/*
 * tls_testutil.h - certificates made at test time, with OpenSSL's library (so the tests need
 * no openssl program and run under qemu too): a CA, and leaves it signs for given names and
 * validity. Everything is PEM text in malloc'd strings.
 */
#ifndef GORC_TLS_TESTUTIL_H
#define GORC_TLS_TESTUTIL_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

typedef struct test_pki {
    EVP_PKEY *key;
    X509 *cert;
    char *cert_pem, *key_pem;
} test_pki;

static inline char *test_bio_str(BIO *b)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = malloc((size_t)n + 1);
    memcpy(s, p, (size_t)n);
    s[n] = 0;
    BIO_free(b);
    return s;
}

static inline void test_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
}

/* A certificate for cn (with subject alternative names sans, "DNS:a,IP:127.0.0.1", or NULL for
 * a CA), valid from now + from_s to now + to_s seconds, signed by ca (NULL: self-signed). ECDSA
 * P-256, as the benchmarks use. */
static inline test_pki test_cert(const char *cn, const char *sans, const test_pki *ca, long from_s,
                                 long to_s)
{
    static long serial = 1;
    test_pki p = {0};
    p.key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED));
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, p.key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, ca ? X509_get_subject_name(ca->cert) : name);
    X509 *issuer = ca ? ca->cert : x;
    if (sans == NULL) {
        test_add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
        test_add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        test_add_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
        test_add_ext(x, issuer, NID_subject_alt_name, sans);
        test_add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
    }
    X509_sign(x, ca ? ca->key : p.key, EVP_sha256());
    p.cert = x;
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    p.cert_pem = test_bio_str(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, p.key, NULL, NULL, 0, NULL, NULL);
    p.key_pem = test_bio_str(b);
    return p;
}

static inline void test_pki_free(test_pki *p)
{
    EVP_PKEY_free(p->key);
    X509_free(p->cert);
    free(p->cert_pem);
    free(p->key_pem);
    memset(p, 0, sizeof *p);
}

#endif
