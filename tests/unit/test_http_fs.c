/*
 * test_http_fs.c - the static file handler: content types, validators, conditionals, ranges,
 * directories, and above all that nothing outside the root is ever served.
 *
 * Each test builds a small tree in a fresh mkdtemp directory (removed at the end), serves it
 * with a real server, and talks to it with a raw client (one request per connection, the
 * response read to the end), so every case states exactly what goes over the wire. The
 * escape tests run twice: with openat2 and with the component-by-component walk used when the
 * kernel lacks it (forced through gorc__http_fs_no_openat2).
 */
#include "http_testutil.h"

#include <fcntl.h>
#include <ftw.h>
#include <gorc_http.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/internal.h"
#include "http/parse.h"

extern _Atomic int gorc__http_fs_no_openat2;

#define BIG_SIZE (1 << 20)

/* ------------------------------------------------------------------------------------------
 * A server, a raw client, a temporary tree
 * ---------------------------------------------------------------------------------------- */

/* A server running the file handler on fs, with default options. */
static void fixture_start(fixture *f, gorc_http_handler_fn fn, void *arg)
{
    gorc_http_server_opts o = {.handler = fn, .arg = arg};
    fixture_start_opts(f, &o);
}

static bool hdr_is(const resp *r, const char *name, const char *want)
{
    const char *v = hdr(r, name);
    if (v == NULL || strcmp(v, want) != 0) {
        fprintf(stderr, "header %s: %s, want %s\n", name, v ? v : "(none)", want);
        return false;
    }
    return true;
}

static bool body_is(const resp *r, const char *want)
{
    return r->blen == strlen(want) && memcmp(r->body, want, r->blen) == 0;
}

/* Fetch and check the status (printing the response on a mismatch). */
static void expect(fixture *f, const char *method, const char *target, const char *extra,
                   int status, resp *r)
{
    fetch(f, method, target, extra, r);
    if (r->status != status)
        fprintf(stderr, "%s %s: status %d, want %d\n%.*s\n", method, target, r->status, status,
                (int)(r->len < 600 ? r->len : 600), r->raw);
    CHECK_EQ(r->status, status);
}

static void expect_status(fixture *f, const char *method, const char *target, const char *extra,
                          int status)
{
    resp r;
    expect(f, method, target, extra, status, &r);
    resp_free(&r);
}

typedef struct tree {
    char root[64];    /* the served directory */
    char outside[64]; /* a sibling holding a secret */
    unsigned char *big;
} tree;

static void put_file(const char *dir, const char *name, const void *data, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, data, n), (long)n);
    close(fd);
}

static void put_str(const char *dir, const char *name, const char *s)
{
    put_file(dir, name, s, strlen(s));
}

static void sub_dir(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK_EQ(mkdir(path, 0755), 0);
}

static void link_to(const char *dir, const char *name, const char *target)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK_EQ(symlink(target, path), 0);
}

/* base/          (mkdtemp)
 *   secret.txt   outside the root
 *   root/        served
 *     index.html a.txt style.css app.js data.json img.png noext big.bin empty.txt
 *     .env .hidden/x.txt
 *     sub/index.html sub/up -> ../a.txt sub/deep/d.txt
 *     list/ (no index): "x&<y>.txt", "sp ace.txt", d/, .dot
 *     evil -> /etc/passwd   evil2 -> ../secret.txt   evil3 -> ..   inside -> a.txt
 *     fifo (a named pipe) */
static void tree_make(tree *t)
{
    char base[] = "/tmp/gorc-http-fs-XXXXXX";
    CHECK(mkdtemp(base) != NULL);
    snprintf(t->root, sizeof t->root, "%s/root", base);
    snprintf(t->outside, sizeof t->outside, "%s", base);
    put_str(base, "secret.txt", "TOP SECRET\n");
    CHECK_EQ(mkdir(t->root, 0755), 0);
    const char *r = t->root;
    put_str(r, "index.html", "<h1>home</h1>\n");
    put_str(r, "a.txt", "hello, world\n");
    put_str(r, "style.css", "body{}\n");
    put_str(r, "app.js", "let x;\n");
    put_str(r, "data.json", "{}\n");
    put_str(r, "img.png", "\x89PNG\r\n");
    put_str(r, "noext", "raw\n");
    put_str(r, "empty.txt", "");
    t->big = malloc(BIG_SIZE);
    CHECK(t->big != NULL);
    uint32_t x = 12345;
    for (size_t i = 0; i < BIG_SIZE; i++) {
        x = x * 1103515245u + 12345u;
        t->big[i] = (unsigned char)(x >> 16);
    }
    put_file(r, "big.bin", t->big, BIG_SIZE);
    put_str(r, ".env", "PASSWORD=1\n");
    sub_dir(r, ".hidden");
    char p[512];
    snprintf(p, sizeof p, "%s/.hidden", r);
    put_str(p, "x.txt", "hidden\n");
    sub_dir(r, "sub");
    snprintf(p, sizeof p, "%s/sub", r);
    put_str(p, "index.html", "<h1>sub</h1>\n");
    link_to(p, "up", "../a.txt");
    sub_dir(p, "deep");
    snprintf(p, sizeof p, "%s/sub/deep", r);
    put_str(p, "d.txt", "deep\n");
    sub_dir(r, "list");
    snprintf(p, sizeof p, "%s/list", r);
    put_str(p, "x&<y>.txt", "x\n");
    put_str(p, "sp ace.txt", "s\n");
    put_str(p, ".dot", "d\n");
    sub_dir(p, "d");
    link_to(r, "evil", "/etc/passwd");
    link_to(r, "evil2", "../secret.txt");
    link_to(r, "evil3", "..");
    link_to(r, "inside", "a.txt");
    snprintf(p, sizeof p, "%s/fifo", r);
    CHECK_EQ(mkfifo(p, 0644), 0);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void tree_remove(tree *t)
{
    CHECK_EQ(nftw(t->outside, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(t->big);
}

/* ------------------------------------------------------------------------------------------
 * Without a server
 * ---------------------------------------------------------------------------------------- */

static void test_fs_content_type(void **state)
{
    static const char *const cases[][2] = {
        {"index.html", "text/html; charset=utf-8"},
        {"INDEX.HTM", "text/html; charset=utf-8"},
        {"a/b/style.css", "text/css; charset=utf-8"},
        {"app.js", "text/javascript; charset=utf-8"},
        {"mod.mjs", "text/javascript; charset=utf-8"},
        {"data.json", "application/json"},
        {"notes.txt", "text/plain; charset=utf-8"},
        {"feed.xml", "text/xml; charset=utf-8"},
        {"logo.svg", "image/svg+xml"},
        {"x.png", "image/png"},
        {"x.jpg", "image/jpeg"},
        {"x.JPEG", "image/jpeg"},
        {"x.gif", "image/gif"},
        {"x.webp", "image/webp"},
        {"favicon.ico", "image/vnd.microsoft.icon"},
        {"m.wasm", "application/wasm"},
        {"doc.pdf", "application/pdf"},
        {"a.zip", "application/zip"},
        {"a.tar.gz", "application/gzip"},
        {"v.mp4", "video/mp4"},
        {"v.webm", "video/webm"},
        {"f.woff", "font/woff"},
        {"f.woff2", "font/woff2"},
        {"t.csv", "text/csv; charset=utf-8"},
        {"README.md", "text/markdown; charset=utf-8"},
        {"noext", "application/octet-stream"},
        {"trailingdot.", "application/octet-stream"},
        {"dir.html/file", "application/octet-stream"},
        {".bashrc", "application/octet-stream"},
        {"x.unknown", "application/octet-stream"},
        {"", "application/octet-stream"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(gorc_http_content_type(cases[i][0]), cases[i][1]);
    assert_string_equal(gorc_http_content_type(NULL), "application/octet-stream");
}

GO_TEST(test_fs_new_errors)
{
    tree t;
    memset(&t, 0, sizeof t);
    tree_make(&t);
    gorc_http_fs *fs;
    char p[512];
    snprintf(p, sizeof p, "%s/missing", t.root);
    CHECK_EQ(gorc_http_fs_new(&fs, p, NULL), -ENOENT);
    snprintf(p, sizeof p, "%s/a.txt", t.root);
    CHECK_EQ(gorc_http_fs_new(&fs, p, NULL), -ENOTDIR);
    CHECK_EQ(gorc_http_fs_new(NULL, t.root, NULL), -EINVAL);
    CHECK_EQ(gorc_http_fs_new(&fs, NULL, NULL), -EINVAL);
    gorc_http_fs_opts o = {.strip_prefix = "static"};
    CHECK_EQ(gorc_http_fs_new(&fs, t.root, &o), -EINVAL);
    o = (gorc_http_fs_opts){.index = "a/b.html"};
    CHECK_EQ(gorc_http_fs_new(&fs, t.root, &o), -EINVAL);
    o = (gorc_http_fs_opts){.index = ".index"};
    CHECK_EQ(gorc_http_fs_new(&fs, t.root, &o), -EINVAL);
    o = (gorc_http_fs_opts){.index = ""};
    CHECK_EQ(gorc_http_fs_new(&fs, t.root, &o), -EINVAL);
    CHECK_EQ(gorc_http_fs_new(&fs, t.root, NULL), 0);
    gorc_http_fs_free(fs);
    gorc_http_fs_free(NULL);
    tree_remove(&t);
}

/* ------------------------------------------------------------------------------------------
 * Serving
 * ---------------------------------------------------------------------------------------- */

typedef struct env {
    tree t;
    gorc_http_fs *fs;
    fixture f;
} env;

static void env_start(env *e, const gorc_http_fs_opts *o)
{
    memset(e, 0, sizeof *e);
    tree_make(&e->t);
    CHECK_EQ(gorc_http_fs_new(&e->fs, e->t.root, o), 0);
    fixture_start(&e->f, gorc_http_fs_serve, e->fs);
}

static void env_stop(env *e)
{
    fixture_stop(&e->f);
    gorc_http_fs_free(e->fs);
    tree_remove(&e->t);
}

GO_TEST(test_fs_basic)
{
    env e;
    env_start(&e, NULL);
    static const char *const types[][3] = {
        {"/a.txt", "text/plain; charset=utf-8", "hello, world\n"},
        {"/style.css", "text/css; charset=utf-8", "body{}\n"},
        {"/app.js", "text/javascript; charset=utf-8", "let x;\n"},
        {"/data.json", "application/json", "{}\n"},
        {"/img.png", "image/png", "\x89PNG\r\n"},
        {"/noext", "application/octet-stream", "raw\n"},
        {"/", "text/html; charset=utf-8", "<h1>home</h1>\n"},
        {"/sub/", "text/html; charset=utf-8", "<h1>sub</h1>\n"},
        {"/sub/deep/d.txt", "text/plain; charset=utf-8", "deep\n"},
        {"/a.txt?query=ignored", "text/plain; charset=utf-8", "hello, world\n"},
        {"/%61.txt", "text/plain; charset=utf-8", "hello, world\n"},
        {"//a.txt", "text/plain; charset=utf-8", "hello, world\n"},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        resp r;
        expect(&e.f, "GET", types[i][0], NULL, 200, &r);
        CHECK(hdr_is(&r, "Content-Type", types[i][1]));
        CHECK(body_is(&r, types[i][2]));
        CHECK(hdr_is(&r, "Accept-Ranges", "bytes"));
        CHECK(hdr(&r, "ETag") != NULL && hdr(&r, "ETag")[0] == '"');
        CHECK(gorc__http_parse_date(hdr(&r, "Last-Modified")) > 0);
        resp_free(&r);
    }
    resp r;
    expect(&e.f, "GET", "/empty.txt", NULL, 200, &r);
    CHECK(hdr_is(&r, "Content-Length", "0"));
    CHECK_EQ(r.blen, 0);
    resp_free(&r);

    expect(&e.f, "HEAD", "/a.txt", NULL, 200, &r);
    CHECK(hdr_is(&r, "Content-Length", "13"));
    CHECK(hdr_is(&r, "Content-Type", "text/plain; charset=utf-8"));
    CHECK_EQ(r.len, (size_t)(r.body - r.raw)); /* nothing after the head */
    resp_free(&r);

    static const char *const others[] = {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        expect(&e.f, others[i], "/a.txt", NULL, 405, &r);
        CHECK(hdr_is(&r, "Allow", "GET, HEAD"));
        resp_free(&r);
    }
    expect_status(&e.f, "GET", "/missing.txt", NULL, 404);
    expect_status(&e.f, "GET", "/a.txt/", NULL, 404); /* a file is not a directory */
    expect_status(&e.f, "GET", "/a.txt/x", NULL, 404);
    expect_status(&e.f, "GET", "/fifo", NULL, 404); /* no hang, no device or pipe served */
    env_stop(&e);
}

GO_TEST(test_fs_large_file)
{
    env e;
    env_start(&e, NULL);
    resp r;
    expect(&e.f, "GET", "/big.bin", NULL, 200, &r);
    CHECK_EQ(r.blen, BIG_SIZE);
    CHECK(memcmp(r.body, e.t.big, BIG_SIZE) == 0);
    CHECK(hdr_is(&r, "Content-Type", "application/octet-stream"));
    resp_free(&r);

    /* A range in the middle, crossing page boundaries. */
    expect(&e.f, "GET", "/big.bin", "Range: bytes=4000-700000\r\n", 206, &r);
    CHECK_EQ(r.blen, 700000 - 4000 + 1);
    CHECK(memcmp(r.body, e.t.big + 4000, r.blen) == 0);
    char want[64];
    snprintf(want, sizeof want, "bytes 4000-700000/%d", BIG_SIZE);
    CHECK(hdr_is(&r, "Content-Range", want));
    resp_free(&r);
    env_stop(&e);
}

GO_TEST(test_fs_conditionals)
{
    env e;
    env_start(&e, NULL);
    resp r;
    char etag[128], lastmod[64], h[512];
    expect(&e.f, "GET", "/a.txt", NULL, 200, &r);
    CHECK(hdr_copy(&r, "ETag", etag, sizeof etag) != NULL);
    CHECK(hdr_copy(&r, "Last-Modified", lastmod, sizeof lastmod) != NULL);
    resp_free(&r);

    snprintf(h, sizeof h, "If-None-Match: %s\r\n", etag);
    expect(&e.f, "GET", "/a.txt", h, 304, &r);
    CHECK(hdr_is(&r, "ETag", etag));
    CHECK_EQ(r.blen, 0);
    resp_free(&r);
    expect_status(&e.f, "HEAD", "/a.txt", h, 304);

    snprintf(h, sizeof h, "If-None-Match: \"nope\", W/%s\r\n", etag); /* weak comparison */
    expect_status(&e.f, "GET", "/a.txt", h, 304);
    expect_status(&e.f, "GET", "/a.txt", "If-None-Match: *\r\n", 304);
    expect_status(&e.f, "GET", "/a.txt", "If-None-Match: \"nope\"\r\n", 200);

    /* If-None-Match takes precedence over If-Modified-Since. */
    snprintf(h, sizeof h, "If-None-Match: \"nope\"\r\nIf-Modified-Since: %s\r\n", lastmod);
    expect_status(&e.f, "GET", "/a.txt", h, 200);

    snprintf(h, sizeof h, "If-Modified-Since: %s\r\n", lastmod);
    expect_status(&e.f, "GET", "/a.txt", h, 304);
    expect_status(&e.f, "GET", "/a.txt", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n",
                  200);
    expect_status(&e.f, "GET", "/a.txt", "If-Modified-Since: not a date\r\n", 200);

    /* If-Match and If-Unmodified-Since (RFC 9110 §13.1.1, §13.1.4). */
    snprintf(h, sizeof h, "If-Match: %s\r\n", etag);
    expect_status(&e.f, "GET", "/a.txt", h, 200);
    expect_status(&e.f, "GET", "/a.txt", "If-Match: \"nope\"\r\n", 412);
    snprintf(h, sizeof h, "If-Match: W/%s\r\n", etag); /* strong comparison */
    expect_status(&e.f, "GET", "/a.txt", h, 412);
    expect_status(&e.f, "GET", "/a.txt", "If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n",
                  412);
    snprintf(h, sizeof h, "If-Unmodified-Since: %s\r\n", lastmod);
    expect_status(&e.f, "GET", "/a.txt", h, 200);
    env_stop(&e);
}

GO_TEST(test_fs_ranges)
{
    env e;
    env_start(&e, NULL);
    static const struct {
        const char *range;
        int status;
        const char *body, *content_range;
    } cases[] = {
        {"bytes=0-4", 206, "hello", "bytes 0-4/13"},
        {"bytes=7-", 206, "world\n", "bytes 7-12/13"},
        {"bytes=-6", 206, "world\n", "bytes 7-12/13"},
        {"bytes=-100", 206, "hello, world\n", "bytes 0-12/13"},
        {"bytes=12-12", 206, "\n", "bytes 12-12/13"},
        {"bytes=7-1000", 206, "world\n", "bytes 7-12/13"},
        {"bytes= 0-1 ", 206, "he", "bytes 0-1/13"},
        {"BYTES=0-1", 206, "he", "bytes 0-1/13"},
        {"bytes=0-1, 20-30", 206, "he", "bytes 0-1/13"}, /* one satisfiable range */
        {"bytes=13-", 416, NULL, "bytes */13"},
        {"bytes=100-200", 416, NULL, "bytes */13"},
        {"bytes=-0", 416, NULL, "bytes */13"},
        {"bytes=20-30, 40-", 416, NULL, "bytes */13"},
        {"bytes=0-1,3-4", 200, "hello, world\n", NULL}, /* several ranges: the whole file */
        {"bytes=5-2", 200, "hello, world\n", NULL},     /* malformed: ignored */
        {"bytes=a-b", 200, "hello, world\n", NULL},
        {"bytes=", 200, "hello, world\n", NULL},
        {"items=0-1", 200, "hello, world\n", NULL}, /* unknown unit: ignored */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char h[128];
        snprintf(h, sizeof h, "Range: %s\r\n", cases[i].range);
        resp r;
        expect(&e.f, "GET", "/a.txt", h, cases[i].status, &r);
        if (cases[i].body)
            CHECK(body_is(&r, cases[i].body));
        if (cases[i].content_range)
            CHECK(hdr_is(&r, "Content-Range", cases[i].content_range));
        else
            CHECK(hdr(&r, "Content-Range") == NULL);
        resp_free(&r);
    }
    expect_status(&e.f, "GET", "/empty.txt", "Range: bytes=0-\r\n", 416);
    expect_status(&e.f, "GET", "/empty.txt", "Range: bytes=-5\r\n", 416);

    /* HEAD with a range: the 206 head, no body. */
    resp r;
    expect(&e.f, "HEAD", "/a.txt", "Range: bytes=0-4\r\n", 206, &r);
    CHECK(hdr_is(&r, "Content-Length", "5"));
    CHECK(hdr_is(&r, "Content-Range", "bytes 0-4/13"));
    resp_free(&r);

    /* If-Range: with the current ETag or date the range applies, otherwise the whole file. */
    char etag[128], lastmod[64], h[512];
    expect(&e.f, "GET", "/a.txt", NULL, 200, &r);
    CHECK(hdr_copy(&r, "ETag", etag, sizeof etag) != NULL);
    CHECK(hdr_copy(&r, "Last-Modified", lastmod, sizeof lastmod) != NULL);
    resp_free(&r);
    snprintf(h, sizeof h, "Range: bytes=0-4\r\nIf-Range: %s\r\n", etag);
    expect(&e.f, "GET", "/a.txt", h, 206, &r);
    CHECK(body_is(&r, "hello"));
    resp_free(&r);
    snprintf(h, sizeof h, "Range: bytes=0-4\r\nIf-Range: %s\r\n", lastmod);
    expect_status(&e.f, "GET", "/a.txt", h, 206);
    expect(&e.f, "GET", "/a.txt", "Range: bytes=0-4\r\nIf-Range: \"stale\"\r\n", 200, &r);
    CHECK(body_is(&r, "hello, world\n"));
    resp_free(&r);
    snprintf(h, sizeof h, "Range: bytes=0-4\r\nIf-Range: W/%s\r\n", etag); /* weak: no */
    expect_status(&e.f, "GET", "/a.txt", h, 200);
    expect_status(&e.f, "GET", "/a.txt",
                  "Range: bytes=0-4\r\nIf-Range: Sat, 01 Jan 2000 00:00:00 GMT\r\n", 200);
    env_stop(&e);
}

/* Every way out of the root, and every dot-file, is a 404. */
static void check_escapes(env *e)
{
    static const char *const refused[] = {
        "/../etc/passwd",
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E/",
        "/sub/..%2F..%2Fsecret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..",
        "/.",
        "/./a.txt",
        "/evil",
        "/evil2",
        "/evil3",
        "/evil3/secret.txt",
        "/evil3/root/a.txt",
        "/.env",
        "/.hidden/x.txt",
        "/.hidden/",
        "/sub/../.env",
        "/list/.dot",
        "/%2eenv",
        "/%2eenv%00",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        resp r;
        fetch(&e->f, "GET", refused[i], NULL, &r);
        bool ok = r.status == 404 || (r.status == 400 && strstr(refused[i], "%00"));
        if (!ok)
            fprintf(stderr, "%s: %d\n%.*s\n", refused[i], r.status, (int)r.blen, r.body);
        CHECK(ok);
        CHECK(memmem(r.raw, r.len, "TOP SECRET", 10) == NULL);
        CHECK(memmem(r.raw, r.len, "root:", 5) == NULL);
        CHECK(memmem(r.raw, r.len, "PASSWORD", 8) == NULL);
        resp_free(&r);
    }
}

GO_TEST(test_fs_escapes)
{
    env e;
    env_start(&e, NULL);
    check_escapes(&e);
    /* A link that stays inside the root is followed with openat2; the fallback walk follows
     * no link at all. */
    bool walk = atomic_load(&gorc__http_fs_no_openat2) != 0;
    expect_status(&e.f, "GET", "/inside", NULL, walk ? 404 : 200);
    expect_status(&e.f, "GET", "/sub/up", NULL, walk ? 404 : 200);

    atomic_store(&gorc__http_fs_no_openat2, 1);
    check_escapes(&e);
    expect_status(&e.f, "GET", "/inside", NULL, 404);
    expect_status(&e.f, "GET", "/sub/up", NULL, 404);
    expect_status(&e.f, "GET", "/sub/deep/d.txt", NULL, 200);
    expect_status(&e.f, "GET", "/sub/", NULL, 200);
    expect_status(&e.f, "GET", "/", NULL, 200);
    atomic_store(&gorc__http_fs_no_openat2, walk);
    env_stop(&e);
}

GO_TEST(test_fs_permissions)
{
    env e;
    env_start(&e, NULL);
    char p[512];
    snprintf(p, sizeof p, "%s/locked.txt", e.t.root);
    put_str(e.t.root, "locked.txt", "locked\n");
    CHECK_EQ(chmod(p, 0), 0);
    /* root reads anything: then the file is simply served. */
    expect_status(&e.f, "GET", "/locked.txt", NULL, geteuid() == 0 ? 200 : 403);
    env_stop(&e);
}

GO_TEST(test_fs_directories)
{
    gorc_http_fs_opts o = {.list_dirs = true};
    env e;
    env_start(&e, &o);
    static const char *const redirects[][2] = {
        {"/sub", "/sub/"},           {"/sub?x=1", "/sub/?x=1"},
        {"/sub/deep", "/sub/deep/"}, {"/sub/index.html", "/sub/"},
        {"/index.html", "/"},        {"/index.html?a=b", "/?a=b"},
    };
    for (size_t i = 0; i < sizeof redirects / sizeof redirects[0]; i++) {
        resp r;
        expect(&e.f, "GET", redirects[i][0], NULL, 301, &r);
        CHECK(hdr_is(&r, "Location", redirects[i][1]));
        resp_free(&r);
    }
    resp r;
    expect(&e.f, "GET", "/list/", NULL, 200, &r);
    CHECK(hdr_is(&r, "Content-Type", "text/html; charset=utf-8"));
    CHECK(strstr(r.body, "<a href=\"./d/\">d/</a>") != NULL);
    CHECK(strstr(r.body, "<a href=\"./sp%20ace.txt\">sp ace.txt</a>") != NULL);
    CHECK(strstr(r.body, "<a href=\"./x%26%3Cy%3E.txt\">x&amp;&lt;y&gt;.txt</a>") != NULL);
    CHECK(strstr(r.body, "dot") == NULL);
    CHECK(strstr(r.body, "d/") < strstr(r.body, "sp ace") &&
          strstr(r.body, "sp ace") < strstr(r.body, "x&amp;")); /* sorted */
    resp_free(&r);
    expect(&e.f, "HEAD", "/list/", NULL, 200, &r);
    CHECK_EQ(r.len, (size_t)(r.body - r.raw));
    resp_free(&r);
    env_stop(&e);

    env_start(&e, NULL); /* no listings by default */
    expect_status(&e.f, "GET", "/list/", NULL, 404);
    expect_status(&e.f, "GET", "/list", NULL, 301);
    expect_status(&e.f, "GET", "/list/d/", NULL, 404);
    env_stop(&e);

    o = (gorc_http_fs_opts){.index = "a.txt"};
    env_start(&e, &o);
    expect(&e.f, "GET", "/", NULL, 200, &r);
    CHECK(body_is(&r, "hello, world\n"));
    CHECK(hdr_is(&r, "Content-Type", "text/plain; charset=utf-8"));
    resp_free(&r);
    expect_status(&e.f, "GET", "/sub/", NULL, 404);
    env_stop(&e);
}

/* Behind a router, under a prefix: the usual way to mount static files. */
GO_TEST(test_fs_prefix_with_mux)
{
    tree t;
    memset(&t, 0, sizeof t);
    tree_make(&t);
    gorc_http_fs *fs;
    gorc_http_fs_opts o = {.strip_prefix = "/static/"};
    CHECK_EQ(gorc_http_fs_new(&fs, t.root, &o), 0);
    gorc_http_mux *m;
    CHECK_EQ(gorc_http_mux_new(&m), 0);
    CHECK_EQ(gorc_http_mux_handle(m, "GET /static/", gorc_http_fs_serve, fs), 0);
    fixture f;
    fixture_start(&f, gorc_http_mux_serve, m);

    resp r;
    expect(&f, "GET", "/static/a.txt", NULL, 200, &r);
    CHECK(body_is(&r, "hello, world\n"));
    resp_free(&r);
    expect(&f, "GET", "/static/", NULL, 200, &r);
    CHECK(body_is(&r, "<h1>home</h1>\n"));
    resp_free(&r);
    expect(&f, "GET", "/static", NULL, 301, &r); /* the router adds the slash */
    CHECK(hdr_is(&r, "Location", "/static/"));
    resp_free(&r);
    expect(&f, "GET", "/static/sub", NULL, 301, &r); /* the file handler does */
    CHECK(hdr_is(&r, "Location", "/static/sub/"));
    resp_free(&r);
    expect(&f, "HEAD", "/static/a.txt", NULL, 200, &r);
    CHECK(hdr_is(&r, "Content-Length", "13"));
    resp_free(&r);
    expect(&f, "POST", "/static/a.txt", NULL, 405, &r); /* the router's 405 */
    CHECK(hdr_is(&r, "Allow", "GET, HEAD"));
    resp_free(&r);
    expect_status(&f, "GET", "/static/../secret.txt", NULL, 301); /* cleaned by the router */
    expect_status(&f, "GET", "/secret.txt", NULL, 404);
    expect_status(&f, "GET", "/static/.env", NULL, 404);
    fixture_stop(&f);
    gorc_http_mux_free(m);

    /* The file handler alone checks the prefix itself. */
    fixture_start(&f, gorc_http_fs_serve, fs);
    expect_status(&f, "GET", "/staticx/a.txt", NULL, 404);
    expect_status(&f, "GET", "/a.txt", NULL, 404);
    expect_status(&f, "GET", "/static/a.txt", NULL, 200);
    expect(&f, "GET", "/static", NULL, 301, &r);
    CHECK(hdr_is(&r, "Location", "/static/"));
    resp_free(&r);
    fixture_stop(&f);
    gorc_http_fs_free(fs);
    tree_remove(&t);
}

/* Concurrent downloads of the large file (sendfile from several connections at once). */
typedef struct dl {
    fixture *f;
    const unsigned char *big;
    gorc_waitgroup *wg;
} dl;

static void dl_run(void *arg)
{
    dl *d = arg;
    int n = (int)scaled(8);
    for (int i = 0; i < n; i++) {
        resp r;
        fetch(d->f, "GET", "/big.bin", NULL, &r);
        CHECK_EQ(r.status, 200);
        CHECK_EQ(r.blen, BIG_SIZE);
        CHECK(memcmp(r.body, d->big, BIG_SIZE) == 0);
        resp_free(&r);
    }
    gorc_waitgroup_done(d->wg);
}

GO_TEST(test_fs_concurrent)
{
    env e;
    env_start(&e, NULL);
    enum { N = 4 };
    dl ds[N];
    gorc_waitgroup wg = {0};
    gorc_waitgroup_add(&wg, N);
    for (int i = 0; i < N; i++) {
        ds[i] = (dl){.f = &e.f, .big = e.t.big, .wg = &wg};
        CHECK_EQ(gorc_go(dl_run, &ds[i]), 0);
    }
    gorc_waitgroup_wait(&wg);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fs_content_type), cmocka_unit_test(test_fs_new_errors),
        cmocka_unit_test(test_fs_basic),        cmocka_unit_test(test_fs_large_file),
        cmocka_unit_test(test_fs_conditionals), cmocka_unit_test(test_fs_ranges),
        cmocka_unit_test(test_fs_escapes),      cmocka_unit_test(test_fs_permissions),
        cmocka_unit_test(test_fs_directories),  cmocka_unit_test(test_fs_prefix_with_mux),
        cmocka_unit_test(test_fs_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
