/* tests/consumers/ext.c - a program that uses the optional libraries (libgorc_tls and
 * libgorc_wsdeflate) through their pkg-config entries only: it makes a client TLS
 * configuration (the system CA store) and a permessage-deflate extension, and frees both.
 * Prints "ext ok" on success. */
#include <gorc.h>
#include <gorc_tls.h>
#include <gorc_wsdeflate.h>
#include <stdio.h>

static int rc = 1;

static void body(void *arg)
{
    (void)arg;
    gorc_tls_config *cfg = NULL;
    gorc_ws_extension *x = NULL;
    gorc_tls_client_opts o = {0};
    int e = gorc_tls_client_config_new(&cfg, &o);
    if (e < 0) {
        fprintf(stderr, "gorc_tls_client_config_new: %s\n", gorc_strerror(e));
        return;
    }
    e = gorc_wsdeflate_new(&x, NULL);
    if (e < 0) {
        fprintf(stderr, "gorc_wsdeflate_new: %s\n", gorc_strerror(e));
        gorc_tls_config_free(cfg);
        return;
    }
    gorc_wsdeflate_free(x);
    gorc_tls_config_free(cfg);
    puts("ext ok");
    rc = 0;
}

int main(void)
{
    int e = gorc_main(body, NULL);
    return e != 0 ? e : rc;
}
