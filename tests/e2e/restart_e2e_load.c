/*
 * restart_e2e_load.c - a load generator that counts every response, for tests/e2e/restart-e2e.
 *
 *   restart_e2e_load ADDR CONNS SECONDS PATH
 *
 * CONNS goroutines each keep one keep-alive connection busy with GET PATH, one request at a
 * time, for SECONDS; a response with Connection: close is read to its end and the goroutine
 * dials again (that is how a draining server says goodbye). Anything else is an error and is
 * printed: a dial that fails, a write that fails, a connection that ends or resets before a
 * whole response came. When the time is up each goroutine finishes the request it has in
 * flight and stops, so the count is exact: the servers' counts for PATH must add up to
 * "ok". Prints "ok N errors E redials R" and exits 0 only when E is 0.
 */
#include <gorc.h>
#include <gorc_net.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *addr, *path;
static int64_t until;
static atomic_ulong ok, errors, redials;
static gorc_waitgroup wg;

static void fail(const char *what, long rc)
{
    if (atomic_fetch_add(&errors, 1) < 20)
        fprintf(stderr, "restart_e2e_load: %s: %s\n", what, gorc_strerror((int)rc));
}

/* One response: head up to the blank line, then Content-Length bytes. Returns 1 (keep the
 * connection), 0 (it said Connection: close), or a negative error. */
static int read_response(gorc_conn *c, char *buf, size_t cap)
{
    size_t len = 0;
    char *end = NULL;
    while ((end = memmem(buf, len, "\r\n\r\n", 4)) == NULL) {
        if (len == cap)
            return -E2BIG;
        ssize_t k = gorc_conn_read(c, buf + len, cap - len);
        if (k <= 0)
            return k == 0 ? (len ? GORC_EUNEXPECTEDEOF : -ECONNRESET) : (int)k;
        len += (size_t)k;
    }
    *end = 0;
    if (strncmp(buf, "HTTP/1.1 200 ", 13) != 0)
        return -EPROTO;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    bool close = strcasestr(buf, "\r\nConnection: close") != NULL;
    if (cl == NULL)
        return -EPROTO;
    size_t body = strtoul(cl + 17, NULL, 10), have = len - (size_t)(end + 4 - buf);
    while (have < body) {
        ssize_t k = gorc_conn_read(c, buf, cap);
        if (k <= 0)
            return k == 0 ? GORC_EUNEXPECTEDEOF : (int)k;
        have += (size_t)k;
    }
    return close ? 0 : 1;
}

static void client(void *arg)
{
    (void)arg;
    char req[256], buf[4096];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr);
    gorc_conn *c = NULL;
    while (gorc_now() < until) {
        if (c == NULL) {
            int rc = gorc_tcp_dial(&c, addr, 5 * GORC_SECOND);
            if (rc != 0) {
                fail("dial", rc);
                c = NULL;
                gorc_sleep(10 * GORC_MILLISECOND);
                continue;
            }
        }
        gorc_conn_set_deadline(c, gorc_now() + 15 * GORC_SECOND); /* a hang guard only */
        ssize_t w = gorc_conn_write_all(c, req, (size_t)n);
        int rc = w == n ? read_response(c, buf, sizeof buf) : (int)w;
        if (rc >= 0)
            atomic_fetch_add(&ok, 1);
        else
            fail(w == n ? "read" : "write", rc);
        if (rc <= 0) {
            gorc_conn_close(c);
            c = NULL;
            if (rc == 0)
                atomic_fetch_add(&redials, 1);
        }
    }
    if (c)
        gorc_conn_close(c);
    gorc_waitgroup_done(&wg);
}

static int conns;
static int64_t seconds;

static void run(void *arg)
{
    (void)arg;
    until = gorc_now() + seconds * GORC_SECOND;
    for (int i = 0; i < conns; i++) {
        gorc_waitgroup_add(&wg, 1);
        if (gorc_go(client, NULL) != 0) {
            gorc_waitgroup_done(&wg);
            fail("spawn", -EAGAIN);
        }
    }
    gorc_waitgroup_wait(&wg);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: restart_e2e_load ADDR CONNS SECONDS PATH\n");
        return 2;
    }
    addr = argv[1];
    conns = atoi(argv[2]);
    path = argv[4];
    seconds = atoll(argv[3]);
    if (gorc_main(run, NULL) != 0)
        return 2;
    printf("ok %lu errors %lu redials %lu\n", atomic_load(&ok), atomic_load(&errors),
           atomic_load(&redials));
    return atomic_load(&errors) == 0 ? 0 : 1;
}
