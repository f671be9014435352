/*
 * test_http_mux.c - the router: pattern syntax, precedence, 404/405, redirects, path values.
 *
 * Pattern errors are checked through gorc_http_mux_handle alone. Everything about matching is
 * checked end to end: a real server with the router as its handler, and a raw client that
 * writes one request per connection and reads the response to the end, so each case states
 * exactly what goes over the wire.
 */
#include "http_testutil.h"

#include <gorc_http.h>
#include <string.h>

#include "http/parse.h"

/* ------------------------------------------------------------------------------------------
 * A server running a router, and a raw client
 * ---------------------------------------------------------------------------------------- */

static void fixture_start(fixture *f, gorc_http_handler_fn fn, void *arg)
{
    gorc_http_server_opts o = {.handler = fn, .arg = arg};
    fixture_start_opts(f, &o);
}

/* ------------------------------------------------------------------------------------------
 * Pattern registration
 * ---------------------------------------------------------------------------------------- */

static void h_name(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    gorc_http_rw_printf(w, "%s", (const char *)arg);
}

GO_TEST(test_mux_pattern_errors)
{
    static const struct {
        const char *pat;
        int want;
    } cases[] = {
        {"/", 0},
        {"/a", 0},
        {"/a/", 0},
        {"GET /a/{x}", 0},
        {"POST example.com/a/{x}/{rest...}", 0},
        {"/b/{$}", 0},
        {"GET\t/tab", 0},
        {"DELETE  /two-spaces", 0},
        {"[::1]/v6", 0},
        {"/caf%C3%A9", 0},
        {"", -EINVAL},
        {"noslash", -EINVAL},
        {"GET noslash", -EINVAL},
        {" /leading-space", -EINVAL},
        {"GE(T /bad-method", -EINVAL},
        {"{x}/host-wildcard", -EINVAL},
        {"example.com:80/port", -EINVAL},
        {"/a/{x", -EINVAL},
        {"/a/x}", 0}, /* a '}' alone is a literal, as in Go */
        {"/a/b{x}", -EINVAL},
        {"/a/{x}b", -EINVAL},
        {"/a/{}", -EINVAL},
        {"/a/{...}", -EINVAL},
        {"/a/{1x}", -EINVAL},
        {"/a/{x-y}", -EINVAL},
        {"/a/{x}/{x}", -EINVAL},
        {"/a/{x...}/b", -EINVAL},
        {"/a/{$}/b", -EINVAL},
        {"/a//b", -EINVAL},
        {"/a/./b", -EINVAL},
        {"/a/../b", -EINVAL},
        {"/a/.", -EINVAL},
        {"/bad%zz", -EINVAL},
        {"/slash%2Finside", -EINVAL},
    };
    gorc_http_mux *m;
    CHECK_EQ(gorc_http_mux_new(&m), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = gorc_http_mux_handle(m, cases[i].pat, h_name, NULL);
        if (rc != cases[i].want)
            fprintf(stderr, "pattern %s: %d, want %d\n", cases[i].pat, rc, cases[i].want);
        CHECK_EQ(rc, cases[i].want);
    }
    CHECK_EQ(gorc_http_mux_handle(m, NULL, h_name, NULL), -EINVAL);
    CHECK_EQ(gorc_http_mux_handle(m, "/x", NULL, NULL), -EINVAL);
    CHECK_EQ(gorc_http_mux_handle(NULL, "/x", h_name, NULL), -EINVAL);
    CHECK_EQ(gorc_http_mux_new(NULL), -EINVAL);
    gorc_http_mux_free(m);
    gorc_http_mux_free(NULL);
}

GO_TEST(test_mux_duplicates)
{
    static const char *const pairs[][2] = {
        {"/a", "/a"},
        {"/a/{x}", "/a/{y}"},    /* wildcard names do not matter */
        {"/a/", "/a/{rest...}"}, /* a trailing slash is an anonymous {x...} */
        {"GET /m", "GET   /m"},  /* spacing does not matter */
        {"/b/{x}/c", "/b/{z}/c"},
        {"/caf%C3%A9", "/café"},            /* literals compare decoded */
        {"example.com/h", "EXAMPLE.com/h"}, /* host names ignore case */
        {"/p/{$}", "/p/{$}"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        gorc_http_mux *m;
        CHECK_EQ(gorc_http_mux_new(&m), 0);
        CHECK_EQ(gorc_http_mux_handle(m, pairs[i][0], h_name, NULL), 0);
        CHECK_EQ(gorc_http_mux_handle(m, pairs[i][1], h_name, NULL), -EEXIST);
        gorc_http_mux_free(m);
    }
    /* Different request sets: all accepted. */
    static const char *const distinct[] = {
        "/a",       "/a/",         "/a/{$}", "/a/{x}",   "/a/{x}/",         "GET /a",     "HEAD /a",
        "POST /a/", "h.example/a", "/{x}/a", "/{x}/{y}", "/{x}/{y}/{z...}", "/a/{x}/{y}",
    };
    gorc_http_mux *m;
    CHECK_EQ(gorc_http_mux_new(&m), 0);
    for (size_t i = 0; i < sizeof distinct / sizeof distinct[0]; i++)
        CHECK_EQ(gorc_http_mux_handle(m, distinct[i], h_name, NULL), 0);
    gorc_http_mux_free(m);
}

/* ------------------------------------------------------------------------------------------
 * Matching, end to end
 * ---------------------------------------------------------------------------------------- */

/* Writes the pattern it was registered with, then "name=value" for each wildcard it has. */
static void h_route(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    static const char *const names[] = {"x", "y", "id", "post", "rest", "file", "nope"};
    gorc_http_rw_printf(w, "%s", (const char *)arg);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = gorc_http_request_path_value(r, names[i]);
        if (v != NULL)
            gorc_http_rw_printf(w, " %s=%s", names[i], v);
    }
    CHECK(gorc_http_request_path_value(r, "nope") == NULL);
    CHECK(gorc_http_request_path_value(r, NULL) == NULL);
}

static const char *const routes[] = {
    "/",
    "/a",
    "/a/",
    "/a/b",
    "/a/{x}",
    "/a/{x}/c",
    "/{y}/b/c",
    "/a/b/",
    "GET /m",
    "POST /m",
    "GET /only-get",
    "PUT /tree/",
    "/users/{id}/posts/{post}",
    "/files/{rest...}",
    "/exact/{$}",
    "/dir/",
    "/caf%C3%A9",
    "api.example.com/a",
    "api.example.com/v/{x}",
    "[::1]/six",
    "GET /get/{x}",
    "DELETE /get/{x}",
};

static gorc_http_mux *make_mux(void)
{
    gorc_http_mux *m;
    CHECK_EQ(gorc_http_mux_new(&m), 0);
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        CHECK_EQ(gorc_http_mux_handle(m, routes[i], h_route, (void *)routes[i]), 0);
    return m;
}

typedef struct rcase {
    const char *method, *target, *extra;
    int status;
    const char *body; /* exact body for 200; NULL: not checked */
} rcase;

static void run_cases(fixture *f, const rcase *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const rcase *c = &cases[i];
        resp r;
        fetch(f, c->method, c->target, c->extra, &r);
        bool ok = r.status == c->status &&
                  (c->body == NULL ||
                   (r.blen == strlen(c->body) && memcmp(r.body, c->body, r.blen) == 0));
        if (!ok)
            fprintf(stderr, "%s %s: got %d [%.*s], want %d [%s]\n", c->method, c->target, r.status,
                    (int)r.blen, r.body, c->status, c->body ? c->body : "");
        CHECK(ok);
        resp_free(&r);
    }
}

GO_TEST(test_mux_precedence)
{
    gorc_http_mux *m = make_mux();
    fixture f;
    fixture_start(&f, gorc_http_mux_serve, m);
    static const rcase cases[] = {
        {"GET", "/", NULL, 200, "/"},
        {"GET", "/nothing/here", NULL, 200, "/"}, /* "/" is a catch-all */
        {"GET", "/a", NULL, 200, "/a"},           /* literal beats all */
        {"GET", "/a/", NULL, 200, "/a/"},
        {"GET", "/a/b", NULL, 200, "/a/b"},       /* literal beats {x} */
        {"GET", "/a/q", NULL, 200, "/a/{x} x=q"}, /* {x} beats /a/ */
        {"GET", "/a/q/c", NULL, 200, "/a/{x}/c x=q"},
        {"GET", "/a/q/d", NULL, 200, "/a/"},   /* subtree */
        {"GET", "/a/b/c", NULL, 200, "/a/b/"}, /* longer literal prefix */
        {"GET", "/a/b/d/e", NULL, 200, "/a/b/"},
        {"GET", "/z/b/c", NULL, 200, "/{y}/b/c y=z"},
        {"GET", "/m", NULL, 200, "GET /m"},
        {"POST", "/m", NULL, 200, "POST /m"},
        {"DELETE", "/m", NULL, 200, "/"}, /* method-less "/" still matches */
        {"GET", "/users/7/posts/42", NULL, 200, "/users/{id}/posts/{post} id=7 post=42"},
        {"GET", "/users/a%20b/posts/%E2%9C%93", NULL, 200,
         "/users/{id}/posts/{post} id=a b post=\xE2\x9C\x93"},
        {"GET", "/files/", NULL, 200, "/files/{rest...} rest="},
        {"GET", "/files/x", NULL, 200, "/files/{rest...} rest=x"},
        {"GET", "/files/x/y%20z/w", NULL, 200, "/files/{rest...} rest=x/y z/w"},
        {"GET", "/exact/", NULL, 200, "/exact/{$}"},
        {"GET", "/exact/more", NULL, 200, "/"}, /* {$} is not a subtree */
        {"GET", "/caf%C3%A9", NULL, 200, "/caf%C3%A9"},
        {"GET", "/a?x=1", NULL, 200, "/a"},
        /* Hosts: without the port, case ignored, and host patterns win over others. */
        {"GET", "/a", "Host: api.example.com:8080\r\n", 200, "api.example.com/a"},
        {"GET", "/a", "Host: API.Example.COM\r\n", 200, "api.example.com/a"},
        {"GET", "/a", "Host: other.example.com\r\n", 200, "/a"},
        {"GET", "/a/b", "Host: api.example.com\r\n", 200, "/a/b"}, /* falls back */
        {"GET", "/v/9", "Host: api.example.com\r\n", 200, "api.example.com/v/{x} x=9"},
        {"GET", "/six", "Host: [::1]:80\r\n", 200, "[::1]/six"},
        {"GET", "http://api.example.com/a", NULL, 200, NULL}, /* absolute-form */
    };
    run_cases(&f, cases, sizeof cases / sizeof cases[0]);
    fixture_stop(&f);
    gorc_http_mux_free(m);
}

GO_TEST(test_mux_head_and_405)
{
    gorc_http_mux *m;
    CHECK_EQ(gorc_http_mux_new(&m), 0);
    static const char *const pats[] = {"GET /m",     "POST /m",       "PUT /tree/",
                                       "GET /g/{x}", "DELETE /g/{x}", "GET /big"};
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++)
        CHECK_EQ(gorc_http_mux_handle(m, pats[i], h_route, (void *)pats[i]), 0);
    fixture f;
    fixture_start(&f, gorc_http_mux_serve, m);

    resp r;
    fetch(&f, "HEAD", "/m", NULL, &r); /* GET also matches HEAD */
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.blen, 0);
    CHECK(strcmp(hdr(&r, "Content-Length"), "6") == 0); /* "GET /m" */
    resp_free(&r);

    fetch(&f, "DELETE", "/m", NULL, &r);
    CHECK_EQ(r.status, 405);
    CHECK(strcmp(hdr(&r, "Allow"), "GET, HEAD, POST") == 0);
    CHECK(strstr(r.body, "Method Not Allowed") != NULL);
    resp_free(&r);

    fetch(&f, "POST", "/g/1", NULL, &r);
    CHECK_EQ(r.status, 405);
    CHECK(strcmp(hdr(&r, "Allow"), "DELETE, GET, HEAD") == 0);
    resp_free(&r);

    fetch(&f, "GET", "/tree/x", NULL, &r);
    CHECK_EQ(r.status, 405);
    CHECK(strcmp(hdr(&r, "Allow"), "PUT") == 0);
    resp_free(&r);

    fetch(&f, "GET", "/tree", NULL, &r); /* "/tree/" + "/" would match with PUT only */
    CHECK_EQ(r.status, 405);
    CHECK(strcmp(hdr(&r, "Allow"), "PUT") == 0);
    resp_free(&r);

    fetch(&f, "PUT", "/tree", NULL, &r);
    CHECK_EQ(r.status, 301);
    CHECK(strcmp(hdr(&r, "Location"), "/tree/") == 0);
    resp_free(&r);

    fetch(&f, "GET", "/nothing", NULL, &r);
    CHECK_EQ(r.status, 404);
    CHECK(strcmp(r.body, "404 page not found\n") == 0);
    CHECK(hdr(&r, "Allow") == NULL);
    resp_free(&r);

    fetch(&f, "OPTIONS", "*", NULL, &r);
    CHECK_EQ(r.status, 400);
    resp_free(&r);

    fixture_stop(&f);
    gorc_http_mux_free(m);
}

typedef struct redir {
    const char *method, *target;
    const char *location;
} redir;

GO_TEST(test_mux_redirects)
{
    gorc_http_mux *m = make_mux();
    fixture f;
    fixture_start(&f, gorc_http_mux_serve, m);
    static const redir cases[] = {
        {"GET", "/dir", "/dir/"},                 /* subtree: add the slash */
        {"GET", "/dir?q=1&r=2", "/dir/?q=1&r=2"}, /* query kept */
        {"GET", "/exact", "/exact/"},             /* "/exact/{$}" matches "/exact/" exactly */
        {"GET", "/files", "/files/"},             /* {rest...} matches "/files/" with "" */
        {"GET", "/a//b", "/a/b"},
        {"GET", "/a/./b", "/a/b"},
        {"GET", "/a/x/../b", "/a/b"},
        {"GET", "/a/b/..", "/a"},
        {"GET", "/a/./", "/a/"},
        {"GET", "//", "/"},
        {"GET", "/..", "/"},
        {"GET", "/a/%2e%2e/b", "/b"},  /* escaped dots are dots */
        {"GET", "/x/../dir", "/dir/"}, /* cleaned, then the subtree slash */
        {"GET", "/a//b?z=%20", "/a/b?z=%20"},
        {"GET", "/sp%20ace//x", "/sp%20ace/x"}, /* the Location is escaped again */
        {"GET", "/q%3Fmark//", "/q%3Fmark/"},
        {"GET", "/back%5Cslash/./", "/back%5Cslash/"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        resp r;
        fetch(&f, cases[i].method, cases[i].target, NULL, &r);
        const char *loc = hdr(&r, "Location");
        bool ok = r.status == 301 && loc != NULL && strcmp(loc, cases[i].location) == 0;
        if (!ok)
            fprintf(stderr, "%s: %d %s, want 301 %s\n", cases[i].target, r.status,
                    loc ? loc : "(none)", cases[i].location);
        CHECK(ok);
        resp_free(&r);
    }
    fixture_stop(&f);
    gorc_http_mux_free(m);
}

/* A router inside a router: the inner one's wildcards replace the outer one's. */
GO_TEST(test_mux_nested)
{
    gorc_http_mux *outer, *inner;
    CHECK_EQ(gorc_http_mux_new(&outer), 0);
    CHECK_EQ(gorc_http_mux_new(&inner), 0);
    CHECK_EQ(gorc_http_mux_handle(outer, "/api/{x}/", gorc_http_mux_serve, inner), 0);
    CHECK_EQ(gorc_http_mux_handle(inner, "/api/{y}/{id}", h_route, "inner"), 0);
    CHECK_EQ(gorc_http_mux_handle(inner, "/api/fixed/", h_route, "inner-fixed"), 0);
    fixture f;
    fixture_start(&f, gorc_http_mux_serve, outer);
    static const rcase cases[] = {
        {"GET", "/api/v1/7", NULL, 200, "inner y=v1 id=7"},
        {"GET", "/api/fixed/z", NULL, 200, "inner-fixed"},
        {"GET", "/api/v1/7/8", NULL, 404, NULL},
    };
    run_cases(&f, cases, sizeof cases / sizeof cases[0]);
    fixture_stop(&f);
    gorc_http_mux_free(outer);
    gorc_http_mux_free(inner);
}

/* Many concurrent clients on routes with wildcards: each response carries its own values. */
typedef struct hammer {
    fixture *f;
    int id;
    gorc_waitgroup *wg;
} hammer;

static void hammer_run(void *arg)
{
    hammer *h = arg;
    int n = (int)scaled(40);
    for (int i = 0; i < n; i++) {
        char target[64], want[96];
        snprintf(target, sizeof target, "/users/%d/posts/%d", h->id, i);
        snprintf(want, sizeof want, "/users/{id}/posts/{post} id=%d post=%d", h->id, i);
        resp r;
        fetch(h->f, "GET", target, NULL, &r);
        CHECK_EQ(r.status, 200);
        CHECK(r.blen == strlen(want) && memcmp(r.body, want, r.blen) == 0);
        resp_free(&r);
    }
    gorc_waitgroup_done(h->wg);
}

GO_TEST(test_mux_concurrent)
{
    gorc_http_mux *m = make_mux();
    fixture f;
    fixture_start(&f, gorc_http_mux_serve, m);
    enum { N = 8 };
    hammer hs[N];
    gorc_waitgroup wg = {0};
    gorc_waitgroup_add(&wg, N);
    for (int i = 0; i < N; i++) {
        hs[i] = (hammer){.f = &f, .id = i, .wg = &wg};
        CHECK_EQ(gorc_go(hammer_run, &hs[i]), 0);
    }
    gorc_waitgroup_wait(&wg);
    fixture_stop(&f);
    gorc_http_mux_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mux_pattern_errors), cmocka_unit_test(test_mux_duplicates),
        cmocka_unit_test(test_mux_precedence),     cmocka_unit_test(test_mux_head_and_405),
        cmocka_unit_test(test_mux_redirects),      cmocka_unit_test(test_mux_nested),
        cmocka_unit_test(test_mux_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
