/*
 * addr.c - "host:port" strings to socket addresses and back.
 *
 * Name resolution is the one part of networking the kernel does not make non-blocking:
 * getaddrinfo reads files, may talk to a DNS server and sleeps in between. It runs as a
 * declared blocking call (gorc_blocking), which hands the caller's P to another thread for the
 * duration - Go's cgo resolver does the same with a thread per lookup. Numeric addresses, by
 * far the common case for servers and tests, are converted in place and never get there.
 *
 * With a context (gorc_resolve_ctx) the lookup cannot be interrupted either: getaddrinfo has
 * no way to be told to stop. So it runs in a goroutine of its own, in a heap record (gai_job)
 * that holds copies of the host and port, and the caller waits for the goroutine's "done"
 * or the context, whichever comes first. A caller that gives up returns at once; the lookup
 * finishes in the background and the last of the two to let go of the record - caller or
 * goroutine, counted in `refs` - frees it with the addresses found. Nothing outlives the
 * lookup, and a lookup holds one thread (in gorc_blocking) for as long as it takes, as
 * without a context. Go's resolver does the same with a goroutine per lookup.
 *
 * Parsing is lenient where it cannot be ambiguous: "host:port" and "[v6]:port" as in Go,
 * but also a bare host or IPv6 literal (port 0), so one function serves lookups and dials.
 */
#include "net/internal.h"
#include "net/simnet.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOSTMAX 256
#define PORTMAX 64

/* Split addr into host and port ("" when absent). */
static int split_hostport(const char *addr, char *host, char *port)
{
    const char *h = addr, *p = NULL;
    size_t hl;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL)
            return -EINVAL;
        h = addr + 1;
        hl = (size_t)(end - h);
        if (end[1] == ':')
            p = end + 2;
        else if (end[1] != '\0')
            return -EINVAL;
    } else {
        const char *colon = strchr(addr, ':');
        if (colon && strchr(colon + 1, ':') == NULL) {
            hl = (size_t)(colon - addr);
            p = colon + 1;
        } else {
            hl = strlen(addr); /* no colon, or an IPv6 literal without brackets */
        }
    }
    size_t pl = p ? strlen(p) : 0;
    if (hl >= HOSTMAX || pl >= PORTMAX)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, p ? p : "", pl + 1);
    return 0;
}

/* A decimal port; -1 for a service name, -2 for a number out of range. */
static int numeric_port(const char *port)
{
    if (port[0] == '\0')
        return 0;
    long v = 0;
    for (const char *s = port; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v <= 65535)
            v = v * 10 + (*s - '0');
    }
    return v <= 65535 ? (int)v : -2;
}

/* Numeric host (or empty) and numeric port: fill *out without the resolver. */
static bool numeric(gorc_addr *out, const char *host, int port, int family)
{
    memset(out, 0, sizeof *out);
    if (host[0] == '\0') {
        family = family ? family : AF_INET;
        host = family == AF_INET ? "0.0.0.0" : "::";
    }
    if (family != AF_INET6 && inet_pton(AF_INET, host, &out->u.in4.sin_addr) == 1) {
        out->u.in4.sin_family = AF_INET;
        out->u.in4.sin_port = htons((uint16_t)port);
        out->len = sizeof out->u.in4;
        return true;
    }
    if (family != AF_INET && inet_pton(AF_INET6, host, &out->u.in6.sin6_addr) == 1) {
        out->u.in6.sin6_family = AF_INET6;
        out->u.in6.sin6_port = htons((uint16_t)port);
        out->len = sizeof out->u.in6;
        return true;
    }
    return false;
}

typedef struct gai_req {
    const char *host, *port;
    struct addrinfo hints;
    struct addrinfo *res;
    int rc;
    int err; /* errno for EAI_SYSTEM, read on the thread that ran getaddrinfo */
} gai_req;

static void *run_gai(void *arg)
{
    gai_req *r = arg;
    r->rc =
        getaddrinfo(r->host[0] ? r->host : NULL, r->port[0] ? r->port : "0", &r->hints, &r->res);
    /* After gorc_blocking returns the goroutine may be on another thread, whose errno this
     * is not: take it here. */
    r->err = r->rc == EAI_SYSTEM ? errno : 0;
    return NULL;
}

static int gai_errno(int rc, int err)
{
    switch (rc) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return GORC_ENOHOST;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_FAMILY:
        return -EAFNOSUPPORT;
    case EAI_SERVICE:
    case EAI_BADFLAGS:
        return -EINVAL;
    case EAI_SYSTEM:
        return err ? -err : -EIO;
    default:
        return -EIO;
    }
}

static void gai_hints(gai_req *r, int family, bool passive)
{
    r->hints.ai_family = family ? family : AF_UNSPEC;
    r->hints.ai_socktype = SOCK_STREAM; /* one entry per address, not one per socket type */
    r->hints.ai_flags = passive ? AI_PASSIVE : 0;
}

/* The addresses a finished lookup found, into out; frees them. */
static int gai_result(gai_req *r, gorc_addr *out, int max)
{
    if (r->rc != 0)
        return gai_errno(r->rc, r->err);
    int n = 0;
    for (struct addrinfo *ai = r->res; ai && n < max; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof out[n].u)
            continue;
        memset(&out[n], 0, sizeof out[n]);
        memcpy(&out[n].u, ai->ai_addr, ai->ai_addrlen);
        out[n].len = ai->ai_addrlen;
        n++;
    }
    freeaddrinfo(r->res);
    r->res = NULL;
    return n > 0 ? n : GORC_ENOHOST;
}

static int resolve_gai(gorc_addr *out, int max, const char *host, const char *port, int family,
                       bool passive)
{
    gai_req r = {.host = host, .port = port};
    gai_hints(&r, family, passive);
    gorc_blocking(run_gai, &r);
    return gai_result(&r, out, max);
}

/* A lookup a context may stop waiting for (see the top of the file). */
typedef struct gai_job {
    gai_req r; /* host and port point into the arrays below */
    char host[HOSTMAX], port[PORTMAX];
    gorc_chan *done;  /* capacity 1: the goroutine's one send says the lookup has finished */
    _Atomic int refs; /* the caller's and the goroutine's */
} gai_job;

static void gai_job_put(gai_job *j)
{
    if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (j->r.res)
        freeaddrinfo(j->r.res); /* the caller gave up: nobody took them */
    gorc_chan_release(j->done);
    free(j);
}

static void gai_work(void *arg)
{
    gai_job *j = arg;
    gorc_blocking(run_gai, &j->r);
    if (j->r.rc != 0)
        j->r.res = NULL;
    gorc_chan_send(j->done, NULL); /* never waits: the one value fits */
    gai_job_put(j);
}

static int resolve_gai_ctx(gorc_addr *out, int max, const char *host, const char *port, int family,
                           bool passive, gorc_ctx *ctx)
{
    if (gorc_ctx_done(ctx) == NULL)
        return resolve_gai(out, max, host, port, family, passive);
    gai_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return -ENOMEM;
    int rc = gorc_chan_new(&j->done, 0, 1);
    if (rc != 0) {
        free(j);
        return rc;
    }
    strcpy(j->host, host); /* both fit: split_hostport checked the lengths */
    strcpy(j->port, port);
    j->r.host = j->host;
    j->r.port = j->port;
    gai_hints(&j->r, family, passive);
    atomic_init(&j->refs, 2);
    rc = gorc_go(gai_work, j);
    if (rc != 0) {
        atomic_store(&j->refs, 1);
        gai_job_put(j);
        return rc;
    }
    rc = gorc_chan_recv_ctx(j->done, NULL, ctx);
    if (rc == 0)
        rc = gai_result(&j->r, out, max);
    gai_job_put(j);
    return rc;
}

int gorc__resolve(gorc_addr *out, int max, const char *addr, int family, bool passive,
                  gorc_ctx *ctx)
{
    if (out == NULL || addr == NULL || max <= 0)
        return -EINVAL;
    int err = gorc_ctx_err(ctx);
    if (err)
        return err;
    if (family != 0 && family != AF_INET && family != AF_INET6)
        return -EAFNOSUPPORT;
    char host[HOSTMAX], port[PORTMAX];
    int rc = split_hostport(addr, host, port);
    if (rc != 0)
        return rc;
    int p = numeric_port(port);
    if (p == -2)
        return -EINVAL;
    if (p >= 0 && numeric(out, host, p, family))
        return 1;
    if (GORC__UNLIKELY(gorc__simnet_on())) /* names are the run's network's */
        return p >= 0 ? gorc__simnet_resolve(out, max, host, p, family) : -EINVAL;
    if (host[0] == '\0' && family == 0)
        family = AF_INET; /* ":service": the unspecified IPv4 address */
    if (ctx)
        return resolve_gai_ctx(out, max, host, port, family, passive, ctx);
    return resolve_gai(out, max, host, port, family, passive);
}

int gorc_resolve(gorc_addr *out, int max, const char *addr, int family)
{
    return gorc__resolve(out, max, addr, family, false, NULL);
}

int gorc_resolve_ctx(gorc_addr *out, int max, const char *addr, int family, gorc_ctx *ctx)
{
    if (ctx == NULL)
        return -EINVAL;
    return gorc__resolve(out, max, addr, family, false, ctx);
}

/* An IPv4-mapped IPv6 address as the IPv4 address it is (Go prints them so too). */
void gorc__unmap_v4(gorc_addr *a)
{
    if (a->u.sa.sa_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a->u.in6.sin6_addr))
        return;
    struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = a->u.in6.sin6_port};
    memcpy(&in4.sin_addr, &a->u.in6.sin6_addr.s6_addr[12], 4);
    memset(&a->u, 0, sizeof a->u);
    a->u.in4 = in4;
    a->len = sizeof in4;
}

static int format_unix(const gorc_addr *a, char *buf, size_t n)
{
    size_t off = offsetof(struct sockaddr_un, sun_path);
    size_t pl = a->len > off ? a->len - off : 0;
    const char *path = a->u.un.sun_path;
    if (pl > 0 && path[0] == '\0') { /* abstract: "@name" */
        if (pl >= n)
            return -ENOSPC;
        buf[0] = '@';
        memcpy(buf + 1, path + 1, pl - 1);
        buf[pl] = '\0';
        return (int)pl;
    }
    size_t len = strnlen(path, pl);
    if (len >= n)
        return -ENOSPC;
    memcpy(buf, path, len);
    buf[len] = '\0';
    return (int)len;
}

int gorc_addr_string(const gorc_addr *a, char *buf, size_t n)
{
    if (a == NULL || buf == NULL || n == 0)
        return -EINVAL;
    gorc_addr c = *a;
    gorc__unmap_v4(&c);
    char ip[INET6_ADDRSTRLEN], zone[IF_NAMESIZE + 1] = "";
    int len;
    switch (c.u.sa.sa_family) {
    case AF_INET:
        inet_ntop(AF_INET, &c.u.in4.sin_addr, ip, sizeof ip);
        len = snprintf(buf, n, "%s:%u", ip, ntohs(c.u.in4.sin_port));
        break;
    case AF_INET6:
        inet_ntop(AF_INET6, &c.u.in6.sin6_addr, ip, sizeof ip);
        if (c.u.in6.sin6_scope_id != 0) {
            char name[IF_NAMESIZE];
            if (if_indextoname(c.u.in6.sin6_scope_id, name))
                snprintf(zone, sizeof zone, "%%%s", name);
            else
                snprintf(zone, sizeof zone, "%%%u", (unsigned)c.u.in6.sin6_scope_id);
        }
        len = snprintf(buf, n, "[%s%s]:%u", ip, zone, ntohs(c.u.in6.sin6_port));
        break;
    case AF_UNIX:
        return format_unix(&c, buf, n);
    default:
        return -EAFNOSUPPORT;
    }
    return len < 0 || (size_t)len >= n ? -ENOSPC : len;
}

int gorc__unix_addr(gorc_addr *out, const char *path)
{
    size_t pl = path ? strlen(path) : 0;
    if (pl == 0 || pl >= sizeof out->u.un.sun_path)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->u.un.sun_family = AF_UNIX;
    memcpy(out->u.un.sun_path, path, pl);
    if (path[0] == '@')
        out->u.un.sun_path[0] = '\0'; /* abstract: the length says where the name ends */
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl + (path[0] != '@'));
    return 0;
}
