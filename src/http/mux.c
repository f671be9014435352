/*
 * mux.c - the router: Go 1.22 ServeMux patterns ("[METHOD ][HOST]/PATH", {name},
 * {name...}, {$}) matched with a decision tree.
 *
 * The router sits in front of every request, so a match must cost next to nothing: it walks
 * the request path once, compares bytes in place and records wildcard positions as offsets on
 * the stack. Nothing is allocated unless the winning pattern has named wildcards, and then
 * only once, from the request's own arena (gorc__http_req_alloc), for the decoded values
 * gorc_http_request_path_value hands out. The path the server gives us is already percent-decoded,
 * so values need no further work and pattern literals are decoded once, at registration.
 *
 * The tree is Go's (net/http/routing_tree.go): the first level branches on the host, the
 * second on the method, the rest on path segments. At each node a literal child is tried
 * first, then a one-segment wildcard, then a rest-of-path wildcard, backtracking when a branch
 * fails. For patterns that are strictly more or less specific than each other this order is
 * exactly "the most specific pattern wins". Go also refuses to register two patterns that
 * overlap without one being more specific ("/a/{x}" and "/{y}/b"); here they are accepted and
 * the same order decides, which is deterministic and documented: the host, then the method,
 * then the leftmost path segment where the patterns differ, literal before wildcard. Two
 * patterns that match exactly the same requests end at the same leaf, which is how -EEXIST is
 * detected, with no pairwise comparison.
 *
 * Go's trailing-slash redirect ("/dir" to "/dir/" when only "/dir/" would match exactly) and
 * the list of allowed methods for a 405 both need "the path plus a slash" matched. Rather
 * than copy the path, the matcher sees an optional virtual '/' after the real bytes.
 */
#include "http/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Named wildcards per pattern: enough for any sane route, and a bound on the capture stack. */
#define MUX_MAX_WILD 32
/* Methods listed in an Allow header at most. */
#define MUX_MAX_ALLOW 64

typedef struct mux_node mux_node;

typedef struct mux_route {
    gorc_http_handler_fn fn;
    void *arg;
    char *store;        /* decoded literals, names, method and host of the pattern */
    const char **names; /* the named wildcards, in order */
    int nwild;
    int nsegs;       /* path segments, the final "{x...}" or trailing slash included */
    bool last_multi; /* ends in "/" or "{x...}" */
    bool multi_named;
} mux_route;

typedef struct mux_edge {
    const char *key; /* a decoded literal segment, or "/" for {$} */
    size_t len;
    mux_node *child;
} mux_edge;

struct mux_node {
    mux_route *route; /* a pattern ends here */
    mux_edge *lits;   /* sorted by (len, bytes) */
    size_t nlits, caplits;
    mux_node *wild;  /* "{x}" */
    mux_node *multi; /* "{x...}" or a trailing slash: always a leaf */
    char key[];      /* the literal leading here from the parent (its edge's key) */
};

typedef struct mux_method {
    const char *name;
    size_t len;
    mux_node *root;
} mux_method;

typedef struct mux_host {
    const char *name; /* "" for patterns without a host */
    size_t len;
    mux_method *methods;
    size_t nmethods;
    mux_node *any; /* patterns without a method */
} mux_host;

struct gorc_http_mux {
    /* Bit k (k < 63; bit 63: k >= 63) is set when a pattern of k segments ends in a slash,
     * "{x...}" or "{$}": only those can match "path/" exactly, which a path with k - 1
     * slashes needs before the trailing-slash redirect is worth trying. */
    uint64_t slash_segs;
    mux_host nohost;
    mux_host *hosts;
    size_t nhosts;
    mux_route **routes;
    size_t nroutes;
};

/* What the router leaves in the request's route slot for gorc_http_request_path_value. */
typedef struct mux_match {
    const mux_route *rt;
    const char *vals[];
} mux_match;

/* ------------------------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------------------------- */

static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ident(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool letter = ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '_' || c >= 0x80;
        if (!letter && (i == 0 || c < '0' || c > '9'))
            return false;
    }
    return true;
}

/* Is p[0..n) a clean absolute path: no "//", "/./", "/../", no final "/." or "/.."? */
static bool path_is_clean(const char *p, size_t n)
{
    if (n == 0 || p[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '/')
            continue;
        size_t j = i + 1;
        if (j < n && p[j] == '/')
            return false;
        if (j < n && p[j] == '.') {
            size_t k = j + 1;
            if (k < n && p[k] == '.')
                k++;
            if (k == n || p[k] == '/')
                return false;
        }
    }
    return true;
}

/* Go's cleanPath: path.Clean of "/" + p, keeping a trailing slash. out has room for n + 2. */
static size_t path_clean(const char *p, size_t n, char *out)
{
    size_t o = 0;
    out[o++] = '/';
    size_t i = 0;
    while (i < n) {
        while (i < n && p[i] == '/')
            i++;
        size_t s = i;
        while (i < n && p[i] != '/')
            i++;
        size_t len = i - s;
        if (len == 0 || (len == 1 && p[s] == '.'))
            continue;
        if (len == 2 && p[s] == '.' && p[s + 1] == '.') {
            while (o > 1 && out[o - 1] != '/')
                o--;
            if (o > 1)
                o--;
            continue;
        }
        if (o > 1)
            out[o++] = '/';
        memcpy(out + o, p + s, len);
        o += len;
    }
    if (n > 0 && p[n - 1] == '/' && o > 1)
        out[o++] = '/';
    out[o] = 0;
    return o;
}

/* ------------------------------------------------------------------------------------------
 * Pattern parsing
 * ---------------------------------------------------------------------------------------- */

enum { SEG_LIT, SEG_WILD, SEG_MULTI, SEG_END };

typedef struct pseg {
    const char *s; /* literal (decoded) or wildcard name, NUL-terminated in the store */
    size_t n;
    int kind; /* SEG_END is "{$}": the literal "/" */
} pseg;

typedef struct pattern {
    const char *method, *host; /* in the store; "" when absent */
    size_t mlen, hlen;
    pseg *segs;
    int nsegs, nwild;
    char *store;
    size_t used;
} pattern;

/* Copy s[0..n) into the pattern's store, NUL-terminated. */
static char *store_put(pattern *p, const char *s, size_t n)
{
    char *d = p->store + p->used;
    memcpy(d, s, n);
    d[n] = 0;
    p->used += n + 1;
    return d;
}

static int parse_method(pattern *p, const char **s)
{
    const char *sp = strpbrk(*s, " \t");
    if (sp == NULL) {
        p->method = store_put(p, "", 0);
        return 0;
    }
    size_t n = (size_t)(sp - *s);
    if (n == 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)(*s)[i]))
            return -EINVAL;
    p->method = store_put(p, *s, n);
    p->mlen = n;
    *s = sp + strspn(sp, " \t");
    return 0;
}

/* The host part, before the first '/': no '{', no whitespace, no port ("[v6]" loses its
 * brackets, since request hosts are compared without them). */
static int parse_host(pattern *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == '{')
            return -EINVAL;
    }
    if (n > 0 && s[0] == '[') {
        if (n < 3 || s[n - 1] != ']')
            return -EINVAL;
        s++;
        n -= 2;
    } else if (memchr(s, ':', n) != NULL) {
        return -EINVAL;
    }
    p->host = store_put(p, s, n);
    p->hlen = n;
    return 0;
}

static int parse_wild(pattern *p, const char *s, size_t n, bool last, pseg *out)
{
    if (n < 2 || s[n - 1] != '}')
        return -EINVAL;
    const char *name = s + 1;
    size_t nn = n - 2;
    if (nn == 1 && name[0] == '$') {
        if (!last)
            return -EINVAL;
        out->kind = SEG_END;
        out->s = store_put(p, "/", 1);
        out->n = 1;
        return 0;
    }
    out->kind = SEG_WILD;
    if (nn >= 3 && memcmp(name + nn - 3, "...", 3) == 0) {
        if (!last)
            return -EINVAL;
        out->kind = SEG_MULTI;
        nn -= 3;
    }
    if (!is_ident(name, nn) || memchr(name, '{', nn) != NULL)
        return -EINVAL;
    for (int i = 0; i < p->nsegs; i++)
        if (p->segs[i].kind != SEG_LIT && p->segs[i].n == nn && memcmp(p->segs[i].s, name, nn) == 0)
            return -EINVAL;
    if (p->nwild == MUX_MAX_WILD)
        return -EINVAL;
    p->nwild++;
    out->s = store_put(p, name, nn);
    out->n = nn;
    return 0;
}

static int parse_segment(pattern *p, const char *s, size_t n, bool last)
{
    pseg *out = &p->segs[p->nsegs];
    const char *brace = memchr(s, '{', n);
    int err;
    if (brace == s) {
        err = parse_wild(p, s, n, last, out);
    } else if (brace != NULL) {
        err = -EINVAL;
    } else {
        char *d = store_put(p, s, n);
        int dl = gorc__http_pct_decode(d, n, false);
        err = dl < 0 || memchr(d, '/', (size_t)dl) != NULL ? -EINVAL : 0;
        p->used -= n - (size_t)(dl < 0 ? 0 : dl);
        *out = (pseg){.s = d, .n = (size_t)(dl < 0 ? 0 : dl), .kind = SEG_LIT};
    }
    if (err == 0)
        p->nsegs++;
    return err;
}

static int parse_path(pattern *p, const char *s, size_t n)
{
    if (!path_is_clean(s, n))
        return -EINVAL; /* can never match: request paths are cleaned first */
    size_t i = 0;
    while (i < n) {
        i++; /* the '/' */
        if (i == n) {
            p->segs[p->nsegs++] = (pseg){.s = "", .n = 0, .kind = SEG_MULTI};
            break;
        }
        const char *slash = memchr(s + i, '/', n - i);
        size_t end = slash ? (size_t)(slash - s) : n;
        int err = parse_segment(p, s + i, end - i, end == n);
        if (err < 0)
            return err;
        i = end;
    }
    return 0;
}

static void pattern_free(pattern *p)
{
    free(p->segs);
    free(p->store);
}

static int pattern_parse(pattern *p, const char *s)
{
    size_t len = strlen(s);
    memset(p, 0, sizeof *p);
    p->store = malloc(2 * len + 8);
    p->segs = malloc((len + 1) * sizeof *p->segs);
    if (p->store == NULL || p->segs == NULL)
        return -ENOMEM;
    int err = parse_method(p, &s);
    if (err < 0)
        return err;
    const char *slash = strchr(s, '/');
    if (slash == NULL)
        return -EINVAL;
    err = parse_host(p, s, (size_t)(slash - s));
    if (err < 0)
        return err;
    return parse_path(p, slash, strlen(slash));
}

/* ------------------------------------------------------------------------------------------
 * The tree
 * ---------------------------------------------------------------------------------------- */

static int key_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return an < bn ? -1 : 1;
    return memcmp(a, b, an);
}

/* The index of key in n->lits, or of where it would go (then *found is false). */
static size_t lit_search(const mux_node *n, const char *key, size_t len, bool *found)
{
    size_t lo = 0, hi = n->nlits;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(n->lits[mid].key, n->lits[mid].len, key, len);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static mux_node *lit_find(const mux_node *n, const char *key, size_t len)
{
    bool found;
    size_t i = lit_search(n, key, len, &found);
    return found ? n->lits[i].child : NULL;
}

static mux_node *node_new(mux_node **slot)
{
    if (*slot == NULL)
        *slot = calloc(1, sizeof(mux_node));
    return *slot;
}

static mux_node *lit_add(mux_node *n, const char *key, size_t len)
{
    bool found;
    size_t i = lit_search(n, key, len, &found);
    if (found)
        return n->lits[i].child;
    if (n->nlits == n->caplits) {
        size_t cap = n->caplits ? 2 * n->caplits : 4;
        mux_edge *e = realloc(n->lits, cap * sizeof *e);
        if (e == NULL)
            return NULL;
        n->lits = e;
        n->caplits = cap;
    }
    mux_node *c = calloc(1, sizeof *c + len + 1);
    if (c == NULL)
        return NULL;
    memcpy(c->key, key, len);
    memmove(&n->lits[i + 1], &n->lits[i], (n->nlits - i) * sizeof *n->lits);
    n->lits[i] = (mux_edge){.key = c->key, .len = len, .child = c};
    n->nlits++;
    return c;
}

static void node_free(mux_node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nlits; i++)
        node_free(n->lits[i].child);
    free(n->lits);
    node_free(n->wild);
    node_free(n->multi);
    free(n);
}

static mux_host *host_get(gorc_http_mux *m, const char *name, size_t len, bool add)
{
    if (len == 0)
        return &m->nohost;
    for (size_t i = 0; i < m->nhosts; i++)
        if (m->hosts[i].len == len && strncasecmp(m->hosts[i].name, name, len) == 0)
            return &m->hosts[i];
    if (!add)
        return NULL;
    mux_host *h = realloc(m->hosts, (m->nhosts + 1) * sizeof *h);
    if (h == NULL)
        return NULL;
    m->hosts = h;
    char *copy = strndup(name, len);
    if (copy == NULL)
        return NULL;
    h = &m->hosts[m->nhosts++];
    *h = (mux_host){.name = copy, .len = len};
    return h;
}

static mux_node **method_root(mux_host *h, const char *name, size_t len)
{
    if (len == 0)
        return &h->any;
    for (size_t i = 0; i < h->nmethods; i++)
        if (h->methods[i].len == len && memcmp(h->methods[i].name, name, len) == 0)
            return &h->methods[i].root;
    mux_method *ms = realloc(h->methods, (h->nmethods + 1) * sizeof *ms);
    if (ms == NULL)
        return NULL;
    h->methods = ms;
    char *copy = strndup(name, len);
    if (copy == NULL)
        return NULL;
    ms[h->nmethods] = (mux_method){.name = copy, .len = len};
    return &ms[h->nmethods++].root;
}

static const mux_node *method_find(const mux_host *h, const char *name, size_t len)
{
    for (size_t i = 0; i < h->nmethods; i++)
        if (h->methods[i].len == len && memcmp(h->methods[i].name, name, len) == 0)
            return h->methods[i].root;
    return NULL;
}

/* Walk (creating) the nodes of p; returns the leaf, NULL when out of memory. */
static mux_node *tree_add(gorc_http_mux *m, const pattern *p)
{
    mux_host *h = host_get(m, p->host, p->hlen, true);
    mux_node **root = h ? method_root(h, p->method, p->mlen) : NULL;
    mux_node *n = root ? node_new(root) : NULL;
    for (int i = 0; n != NULL && i < p->nsegs; i++) {
        const pseg *s = &p->segs[i];
        if (s->kind == SEG_WILD)
            n = node_new(&n->wild);
        else if (s->kind == SEG_MULTI)
            n = node_new(&n->multi);
        else
            n = lit_add(n, s->s, s->n);
    }
    return n;
}

static mux_route *route_new(const pattern *p, gorc_http_handler_fn fn, void *arg)
{
    mux_route *rt = calloc(1, sizeof *rt);
    const char **names = calloc((size_t)p->nwild + 1, sizeof *names);
    if (rt == NULL || names == NULL) {
        free(rt);
        free(names);
        return NULL;
    }
    *rt = (mux_route){.fn = fn, .arg = arg, .store = p->store, .names = names, .nsegs = p->nsegs};
    for (int i = 0; i < p->nsegs; i++) {
        const pseg *s = &p->segs[i];
        if ((s->kind == SEG_WILD || s->kind == SEG_MULTI) && s->n > 0)
            names[rt->nwild++] = s->s;
    }
    const pseg *last = p->nsegs > 0 ? &p->segs[p->nsegs - 1] : NULL;
    rt->last_multi = last != NULL && last->kind == SEG_MULTI;
    rt->multi_named = rt->last_multi && last->n > 0;
    return rt;
}

static void route_free(mux_route *rt)
{
    free(rt->names);
    free(rt->store);
    free(rt);
}

int gorc_http_mux_new(gorc_http_mux **out)
{
    if (out == NULL)
        return -EINVAL;
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -ENOMEM;
}

static int mux_register(gorc_http_mux *m, pattern *p, gorc_http_handler_fn fn, void *arg)
{
    mux_route **rs = realloc(m->routes, (m->nroutes + 1) * sizeof *rs);
    if (rs == NULL)
        return -ENOMEM;
    m->routes = rs;
    mux_node *leaf = tree_add(m, p);
    if (leaf == NULL)
        return -ENOMEM;
    if (leaf->route != NULL)
        return -EEXIST;
    mux_route *rt = route_new(p, fn, arg);
    if (rt == NULL)
        return -ENOMEM;
    p->store = NULL; /* the route owns it now: its names point into it */
    leaf->route = rt;
    int last = p->nsegs > 0 ? p->segs[p->nsegs - 1].kind : SEG_LIT;
    if (last == SEG_MULTI || last == SEG_END)
        m->slash_segs |= (uint64_t)1 << (p->nsegs < 63 ? p->nsegs : 63);
    m->routes[m->nroutes++] = rt;
    return 0;
}

int gorc_http_mux_handle(gorc_http_mux *m, const char *pattern_str, gorc_http_handler_fn fn,
                         void *arg)
{
    if (m == NULL || pattern_str == NULL || fn == NULL || pattern_str[0] == 0)
        return -EINVAL;
    pattern p;
    int err = pattern_parse(&p, pattern_str);
    if (err == 0)
        err = mux_register(m, &p, fn, arg);
    pattern_free(&p);
    return err;
}

static void host_free(mux_host *h)
{
    for (size_t i = 0; i < h->nmethods; i++) {
        node_free(h->methods[i].root);
        free((char *)h->methods[i].name);
    }
    free(h->methods);
    node_free(h->any);
}

void gorc_http_mux_free(gorc_http_mux *m)
{
    if (m == NULL)
        return;
    host_free(&m->nohost);
    for (size_t i = 0; i < m->nhosts; i++) {
        host_free(&m->hosts[i]);
        free((char *)m->hosts[i].name);
    }
    free(m->hosts);
    for (size_t i = 0; i < m->nroutes; i++)
        route_free(m->routes[i]);
    free(m->routes);
    free(m);
}

/* ------------------------------------------------------------------------------------------
 * Matching
 * ---------------------------------------------------------------------------------------- */

/* The path being matched: p[0..n), followed by a virtual '/' when len == n + 1. */
typedef struct mstate {
    const char *p;
    size_t n, len;
    bool record; /* keep wildcard captures (not for probes with the virtual slash) */
    int ncap;
    struct {
        size_t off, len;
    } cap[MUX_MAX_WILD];
} mstate;

static const mux_route *match_path(const mux_node *n, size_t i, mstate *s);

static const mux_route *match_wild(const mux_node *n, size_t off, size_t len, size_t rest,
                                   mstate *s)
{
    if (s->record) {
        s->cap[s->ncap].off = off;
        s->cap[s->ncap].len = len;
        s->ncap++;
    }
    const mux_route *rt = match_path(n, rest, s);
    if (rt == NULL && s->record)
        s->ncap--;
    return rt;
}

/* Match the rest of the path, from position i (a '/', real or virtual), below node n. */
static const mux_route *match_path(const mux_node *n, size_t i, mstate *s)
{
    if (n == NULL)
        return NULL;
    if (i == s->len)
        return n->route;
    const char *seg = "/";
    size_t off = i, seglen = 1, rest = s->len;
    bool trailing = i + 1 == s->len;
    if (!trailing) {
        off = i + 1;
        const char *sl = memchr(s->p + off, '/', s->n - off);
        rest = sl ? (size_t)(sl - s->p) : s->n;
        seg = s->p + off;
        seglen = rest - off;
    }
    const mux_route *rt = n->nlits ? match_path(lit_find(n, seg, seglen), rest, s) : NULL;
    if (rt == NULL && !trailing && n->wild != NULL)
        rt = match_wild(n->wild, off, seglen, rest, s);
    if (rt != NULL || n->multi == NULL || n->multi->route == NULL)
        return rt;
    if (s->record && n->multi->route->multi_named) {
        s->cap[s->ncap].off = i + 1;
        s->cap[s->ncap].len = s->n - (i + 1);
        s->ncap++;
    }
    return n->multi->route;
}

static const mux_route *match_root(const mux_node *root, mstate *s)
{
    s->ncap = 0;
    return match_path(root, 0, s);
}

static const mux_route *match_in_host(const mux_host *h, const char *method, size_t mlen, mstate *s)
{
    if (h == NULL)
        return NULL;
    const mux_route *rt = h->nmethods ? match_root(method_find(h, method, mlen), s) : NULL;
    if (rt == NULL && h->nmethods && mlen == 4 && memcmp(method, "HEAD", 4) == 0)
        rt = match_root(method_find(h, "GET", 3), s);
    if (rt == NULL && h->any != NULL)
        rt = match_root(h->any, s);
    return rt;
}

static const mux_route *match(gorc_http_mux *m, const char *host, size_t hlen, const char *method,
                              mstate *s)
{
    size_t mlen = strlen(method);
    const mux_route *rt = NULL;
    if (hlen > 0 && m->nhosts > 0)
        rt = match_in_host(host_get(m, host, hlen, false), method, mlen, s);
    if (rt == NULL)
        rt = match_in_host(&m->nohost, method, mlen, s);
    return rt;
}

/* Go's exactMatch: a match is inexact when a final multi wildcard took a non-empty rest, that
 * is, unless the path ends in '/' and has as many slashes as the pattern has segments. */
static bool match_exact(const mux_route *rt, const mstate *s)
{
    if (rt == NULL)
        return false;
    if (!rt->last_multi)
        return true;
    bool virtual_slash = s->len > s->n;
    if (!virtual_slash && (s->n == 0 || s->p[s->n - 1] != '/'))
        return false;
    int k = virtual_slash;
    for (size_t i = 0; i < s->n; i++)
        k += s->p[i] == '/';
    return k == rt->nsegs;
}

/* ------------------------------------------------------------------------------------------
 * Serving
 * ---------------------------------------------------------------------------------------- */

/* The request's host without its port, and without brackets for an IPv6 literal. */
static const char *host_strip(const char *h, size_t *len)
{
    size_t n = strlen(h);
    if (n > 0 && h[0] == '[') {
        const char *e = memchr(h, ']', n);
        *len = e ? (size_t)(e - h - 1) : n;
        return e ? h + 1 : h;
    }
    const char *c = memchr(h, ':', n);
    if (c != NULL && strchr(c + 1, ':') == NULL)
        n = (size_t)(c - h);
    *len = n;
    return h;
}

static void mstate_init(mstate *s, const char *p, size_t n, bool slash)
{
    s->p = p;
    s->n = n;
    s->len = n + slash;
    s->record = !slash;
    s->ncap = 0;
}

/* Would the path plus a slash match a pattern exactly (Go's trailing-slash redirect)? */
static bool slash_matches(gorc_http_mux *m, const char *host, size_t hlen, const char *method,
                          const char *p, size_t n)
{
    if (n > 0 && p[n - 1] == '/')
        return false;
    int k = 1;
    for (size_t i = 0; i < n; i++)
        k += p[i] == '/';
    if (!(m->slash_segs & (uint64_t)1 << (k < 63 ? k : 63)))
        return false;
    mstate s;
    mstate_init(&s, p, n, true);
    return match_exact(match(m, host, hlen, method, &s), &s);
}

/* Redirect (301) to the path p[0..n) (plus a slash) with the request's query. */
static void redirect_path(gorc_http_rw *w, const gorc_http_request *r, const char *p, size_t n,
                          bool slash)
{
    size_t qlen = r->query ? strlen(r->query) : 0;
    char *url = malloc(3 * n + qlen + 3);
    if (url == NULL) {
        gorc_http_error(w, 500, "Internal Server Error");
        return;
    }
    size_t o = gorc__http_url_escape(p, n, url, false);
    if (slash)
        url[o++] = '/';
    url[o] = 0;
    if (qlen > 0) {
        url[o++] = '?';
        memcpy(url + o, r->query, qlen + 1);
    }
    gorc_http_redirect(w, url, 301);
    free(url);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void allow_add(const char **list, int *cnt, const char *name)
{
    for (int i = 0; i < *cnt; i++)
        if (strcmp(list[i], name) == 0)
            return;
    if (*cnt < MUX_MAX_ALLOW)
        list[(*cnt)++] = name;
}

/* Add the methods of h whose patterns match the path or the path plus a slash. */
static void allow_collect(const mux_host *h, const char *p, size_t n, const char **list, int *cnt)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->nmethods; i++) {
        mstate s;
        mstate_init(&s, p, n, false);
        s.record = false;
        bool hit = match_root(h->methods[i].root, &s) != NULL;
        mstate_init(&s, p, n, true);
        if (hit || match_root(h->methods[i].root, &s) != NULL)
            allow_add(list, cnt, h->methods[i].name);
    }
}

/* Nothing matched: 405 with Allow when other methods would match, else 404. */
static void no_match(gorc_http_rw *w, gorc_http_mux *m, const char *host, size_t hlen,
                     const char *p, size_t n)
{
    const char *list[MUX_MAX_ALLOW + 1];
    int cnt = 0;
    if (hlen > 0 && m->nhosts > 0)
        allow_collect(host_get(m, host, hlen, false), p, n, list, &cnt);
    allow_collect(&m->nohost, p, n, list, &cnt);
    if (cnt == 0) {
        gorc_http_error(w, 404, "404 page not found");
        return;
    }
    for (int i = 0; i < cnt; i++)
        if (strcmp(list[i], "GET") == 0)
            allow_add(list, &cnt, "HEAD");
    qsort(list, (size_t)cnt, sizeof *list, str_cmp);
    size_t size = 1;
    for (int i = 0; i < cnt; i++)
        size += strlen(list[i]) + 2;
    char *allow = malloc(size);
    if (allow == NULL) {
        gorc_http_error(w, 500, "Internal Server Error");
        return;
    }
    size_t o = 0;
    for (int i = 0; i < cnt; i++)
        o += (size_t)sprintf(allow + o, "%s%s", i ? ", " : "", list[i]);
    gorc_http_rw_set_header(w, "Allow", allow);
    gorc_http_error(w, 405, "Method Not Allowed");
    free(allow);
}

/* A path that is not clean: redirect to its clean form (with Go's trailing slash rule). */
static void serve_unclean(gorc_http_rw *w, gorc_http_request *r, gorc_http_mux *m, const char *host,
                          size_t hlen)
{
    size_t n = strlen(r->path);
    char *clean = malloc(n + 3);
    if (clean == NULL) {
        gorc_http_error(w, 500, "Internal Server Error");
        return;
    }
    size_t cn = path_clean(r->path, n, clean);
    mstate s;
    mstate_init(&s, clean, cn, false);
    bool slash = !match_exact(match(m, host, hlen, r->method, &s), &s) &&
                 slash_matches(m, host, hlen, r->method, clean, cn);
    redirect_path(w, r, clean, cn, slash);
    free(clean);
}

/* Keep the captured wildcard values for gorc_http_request_path_value. */
static int set_values(gorc_http_request *r, const mux_route *rt, const mstate *s)
{
    void **slot = gorc__http_req_route_slot(r);
    if (slot == NULL)
        return 0;
    int nv = rt->nwild < s->ncap ? rt->nwild : s->ncap;
    if (nv == 0) {
        *slot = NULL;
        return 0;
    }
    size_t size = sizeof(mux_match) + (size_t)nv * sizeof(char *);
    for (int i = 0; i < nv; i++)
        size += s->cap[i].len + 1;
    mux_match *mm = gorc__http_req_alloc(r, size);
    if (mm == NULL)
        return -ENOMEM;
    mm->rt = rt;
    char *d = (char *)&mm->vals[nv];
    for (int i = 0; i < nv; i++) {
        memcpy(d, s->p + s->cap[i].off, s->cap[i].len);
        d[s->cap[i].len] = 0;
        mm->vals[i] = d;
        d += s->cap[i].len + 1;
    }
    *slot = mm;
    return 0;
}

void gorc_http_mux_serve(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    gorc_http_mux *m = arg;
    const char *p = r->path;
    size_t n = strlen(p);
    if (n == 1 && p[0] == '*') { /* "OPTIONS *" is for the server, not for a route */
        gorc_http_rw_set_header(w, "Connection", "close");
        gorc_http_rw_write_header(w, 400);
        return;
    }
    size_t hlen = 0;
    const char *host = m->nhosts > 0 ? host_strip(r->host ? r->host : "", &hlen) : "";
    if (!path_is_clean(p, n)) {
        serve_unclean(w, r, m, host, hlen);
        return;
    }
    mstate s;
    mstate_init(&s, p, n, false);
    const mux_route *rt = match(m, host, hlen, r->method, &s);
    if (!match_exact(rt, &s) && slash_matches(m, host, hlen, r->method, p, n)) {
        redirect_path(w, r, p, n, true);
        return;
    }
    if (rt == NULL) {
        no_match(w, m, host, hlen, p, n);
        return;
    }
    if (set_values(r, rt, &s) < 0) {
        gorc_http_error(w, 500, "Internal Server Error");
        return;
    }
    rt->fn(w, r, rt->arg);
}

const char *gorc_http_request_path_value(gorc_http_request *r, const char *name)
{
    if (r == NULL || name == NULL)
        return NULL;
    void **slot = gorc__http_req_route_slot(r);
    const mux_match *mm = slot ? *slot : NULL;
    if (mm == NULL)
        return NULL;
    for (int i = 0; i < mm->rt->nwild; i++)
        if (strcmp(mm->rt->names[i], name) == 0)
            return mm->vals[i];
    return NULL;
}
