/*
 * fs.c - serving a directory tree over HTTP (Go's http.FileServer(http.Dir(root))).
 *
 * Safety first: a file server's one job is to never serve what lies outside its root. String
 * checks on the path are not enough (symbolic links, races with renames), so the root is
 * opened once and every request path is resolved relative to it by the kernel with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), which refuses "..", absolute symbolic
 * links and any link leading out of the tree, atomically. Kernels (or emulators) without
 * openat2 get a walk that opens one component at a time with O_NOFOLLOW: no link is followed
 * at all there, which is stricter but still safe. On top of that, path segments starting with
 * '.' are refused outright, so ".." never reaches the kernel and dot-files (.git, .env) are
 * never served.
 *
 * Opening and stat-ing a file may wait for a disk, so the whole lookup (file, index file,
 * directory listing) runs as one gorc_blocking call: the P goes on running other goroutines
 * meanwhile, and one hand-off is paid per request rather than one per system call. The body
 * then goes out with gorc_http_rw_send_file (sendfile(2)): no copy through user space.
 *
 * Validators: Last-Modified is the file's mtime, and the ETag is strong, built from size and
 * mtime in nanoseconds as nginx does, so it can serve If-Range as well as If-None-Match.
 * Conditionals and ranges follow Go's ServeContent (RFC 9110 §13 and §14), except that only
 * single ranges are served: a request for several ranges gets the whole file (200), which
 * RFC 9110 allows and which avoids multipart bodies nobody uses in practice.
 */
#include "http/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* Entries shown in a directory listing at most. */
#define FS_MAX_LIST 100000

/* Set once openat2 turned out to be missing (ENOSYS); tests set it to exercise the walk. */
_Atomic int gorc__http_fs_no_openat2;

struct gorc_http_fs {
    int root; /* O_PATH directory descriptor */
    char *prefix;
    size_t plen;
    char *index;
    bool list_dirs;
};

/* ------------------------------------------------------------------------------------------
 * Content types
 * ---------------------------------------------------------------------------------------- */

static const struct {
    const char *ext, *type;
} mime_types[] = {
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/vnd.microsoft.icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xml", "text/xml; charset=utf-8"},
    {"yaml", "application/yaml"},
    {"yml", "application/yaml"},
    {"zip", "application/zip"},
};

const char *gorc_http_content_type(const char *filename)
{
    static const char *const deflt = "application/octet-stream";
    if (filename == NULL)
        return deflt;
    const char *base = strrchr(filename, '/');
    base = base ? base + 1 : filename;
    const char *dot = strrchr(base, '.');
    if (dot == NULL || dot[1] == 0)
        return deflt;
    size_t lo = 0, hi = sizeof mime_types / sizeof mime_types[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcasecmp(mime_types[mid].ext, dot + 1);
        if (c == 0)
            return mime_types[mid].type;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return deflt;
}

/* ------------------------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------------------------- */

/* The answer to a failed open (negative errno). */
static void reply_errno(gorc_http_rw *w, int err)
{
    switch (-err) {
    case ENOENT:
    case ENOTDIR:
    case ELOOP:
    case EXDEV:
    case ENAMETOOLONG:
        gorc_http_error(w, 404, "404 page not found");
        break;
    case EACCES:
    case EPERM:
        gorc_http_error(w, 403, "403 Forbidden");
        break;
    case EMFILE:
    case ENFILE:
        gorc_http_error(w, 503, "503 Service Unavailable");
        break;
    default:
        gorc_http_error(w, 500, "500 Internal Server Error");
    }
}

/* Redirect (301) to path[0..n) + tail, with the request's query. */
static void redirect(gorc_http_rw *w, const gorc_http_request *r, const char *path, size_t n,
                     const char *tail)
{
    size_t qlen = strlen(r->query ? r->query : ""), tlen = strlen(tail);
    char *url = malloc(3 * n + tlen + qlen + 2);
    if (url == NULL) {
        gorc_http_error(w, 500, "500 Internal Server Error");
        return;
    }
    size_t o = gorc__http_url_escape(path, n, url, false);
    memcpy(url + o, tail, tlen + 1);
    o += tlen;
    if (qlen > 0) {
        url[o++] = '?';
        memcpy(url + o, r->query, qlen + 1);
    }
    gorc_http_redirect(w, url, 301);
    free(url);
}

/* ------------------------------------------------------------------------------------------
 * Opening files beneath the root
 * ---------------------------------------------------------------------------------------- */

/* The walk for kernels without openat2: one component at a time, following no link. rel is
 * split in place and restored. */
static int open_walk(int root, char *rel, int flags)
{
    int dir = root;
    char *seg = rel;
    char *slash;
    while ((slash = strchr(seg, '/')) != NULL) {
        *slash = 0;
        int fd = openat(dir, seg, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int err = fd < 0 ? -errno : 0;
        *slash = '/';
        if (dir != root)
            close(dir);
        if (fd < 0)
            return err;
        dir = fd;
        seg = slash + 1;
    }
    int fd = openat(dir, seg, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    int err = fd < 0 ? -errno : fd;
    if (dir != root)
        close(dir);
    return err;
}

/* After an EPERM: is openat2 usable at all? Seccomp filters in containers often refuse
 * system calls they do not know with EPERM rather than ENOSYS. */
static bool openat2_works(int root)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
    long fd = syscall(SYS_openat2, root, ".", &how, sizeof how);
    if (fd >= 0)
        close((int)fd);
    return fd >= 0 || errno != EPERM;
}

/* Open rel (relative, no "." or ".." segments) beneath root. Returns a descriptor or -errno. */
static int open_beneath(int root, char *rel, int flags)
{
    if (!atomic_load_explicit(&gorc__http_fs_no_openat2, memory_order_relaxed)) {
        struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC | O_NOCTTY),
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
        long fd;
        do
            fd = syscall(SYS_openat2, root, rel, &how, sizeof how);
        while (fd < 0 && errno == EINTR);
        if (fd >= 0)
            return (int)fd;
        int err = errno;
        if (err != ENOSYS && (err != EPERM || openat2_works(root)))
            return -err;
        atomic_store_explicit(&gorc__http_fs_no_openat2, 1, memory_order_relaxed);
    }
    return open_walk(root, rel, flags);
}

/* The request path after the prefix, as a relative path: segments joined by '/', empty ones
 * dropped, "." for the root. Returns its length, -ENOENT for a segment starting with '.'
 * (dot-files, "." and ".."), -ENAMETOOLONG. */
static int rel_path(const char *p, char *out, size_t cap)
{
    size_t o = 0;
    while (*p) {
        while (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if (len == 0)
            break;
        if (p[0] == '.')
            return -ENOENT;
        if (o + len + 2 > cap)
            return -ENAMETOOLONG;
        if (o > 0)
            out[o++] = '/';
        memcpy(out + o, p, len);
        o += len;
        p += len;
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = 0;
    return (int)o;
}

/* One lookup, done as a single blocking call. */
typedef struct fs_lookup {
    const gorc_http_fs *fs;
    char rel[PATH_MAX];
    bool want_dir; /* the request path ends in '/' */
    int fd;        /* the file, the index file, or the directory */
    int err;
    bool is_index;
    struct stat st;
} fs_lookup;

/* Does an error opening the index file just mean "there is no index"? */
static bool no_such_file(int err)
{
    return err == -ENOENT || err == -ENOTDIR || err == -ELOOP || err == -EXDEV;
}

static void lookup_index(fs_lookup *q)
{
    size_t n = strlen(q->rel), il = strlen(q->fs->index);
    bool root = strcmp(q->rel, ".") == 0;
    size_t at = root ? 0 : n + 1;
    if (at + il + 1 > sizeof q->rel)
        return;
    if (!root)
        q->rel[n] = '/';
    memcpy(q->rel + at, q->fs->index, il + 1);
    struct stat st;
    int fd = open_beneath(q->fs->root, q->rel, O_RDONLY | O_NONBLOCK);
    if (root)
        strcpy(q->rel, ".");
    else
        q->rel[n] = 0;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        close(q->fd);
        q->fd = fd;
        q->st = st;
        q->is_index = true;
        return;
    }
    if (fd >= 0)
        close(fd);
    else if (!no_such_file(fd))
        q->err = fd;
}

static void *lookup_run(void *arg)
{
    fs_lookup *q = arg;
    q->fd = open_beneath(q->fs->root, q->rel, O_RDONLY | O_NONBLOCK);
    if (q->fd < 0) {
        q->err = q->fd;
        return NULL;
    }
    if (fstat(q->fd, &q->st) < 0)
        q->err = -errno;
    else if (S_ISDIR(q->st.st_mode) && q->want_dir)
        lookup_index(q);
    if (q->err < 0) {
        close(q->fd);
        q->fd = -1;
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------
 * Directory listings
 * ---------------------------------------------------------------------------------------- */

static void sbuf_href(gorc__http_sbuf *b, const char *s)
{
    size_t n = strlen(s);
    char *d = gorc__http_sbuf_room(b, 3 * n);
    if (d != NULL)
        b->n += gorc__http_url_escape(s, n, d, true);
}

typedef struct dirent_name {
    char *name;
    bool dir;
} dirent_name;

static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const dirent_name *)a)->name, ((const dirent_name *)b)->name);
}

static bool entry_is_dir(DIR *d, const struct dirent *e)
{
    if (e->d_type == DT_DIR)
        return true;
    if (e->d_type != DT_LNK && e->d_type != DT_UNKNOWN)
        return false;
    struct stat st;
    return fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode);
}

/* Read the names of a directory (dot-files left out). Returns the count or -errno. */
static int read_names(int fd, dirent_name **out)
{
    int dfd = dup(fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (d == NULL) {
        int err = -errno;
        if (dfd >= 0)
            close(dfd);
        return err;
    }
    dirent_name *v = NULL;
    int n = 0, cap = 0, err = 0;
    const struct dirent *e;
    while (err == 0 && n < FS_MAX_LIST && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            dirent_name *nv = realloc(v, (size_t)cap * sizeof *v);
            if (nv == NULL) {
                err = -ENOMEM;
                break;
            }
            v = nv;
        }
        v[n].dir = entry_is_dir(d, e);
        v[n].name = strdup(e->d_name);
        err = v[n].name ? 0 : -ENOMEM;
        n += err == 0;
    }
    closedir(d);
    if (err < 0) {
        while (n > 0)
            free(v[--n].name);
        free(v);
        return err;
    }
    *out = v;
    return n;
}

typedef struct fs_listing {
    int fd;
    gorc__http_sbuf html;
    int err;
} fs_listing;

static void *listing_run(void *arg)
{
    fs_listing *l = arg;
    dirent_name *v = NULL;
    int n = read_names(l->fd, &v);
    if (n < 0) {
        l->err = n;
        return NULL;
    }
    qsort(v, (size_t)n, sizeof *v, name_cmp);
    static const char head[] =
        "<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n";
    gorc__http_sbuf_put(&l->html, head, sizeof head - 1);
    for (int i = 0; i < n; i++) {
        gorc__http_sbuf_put(&l->html, "<a href=\"./", 11);
        sbuf_href(&l->html, v[i].name);
        gorc__http_sbuf_put(&l->html, v[i].dir ? "/\">" : "\">", v[i].dir ? 3 : 2);
        gorc__http_sbuf_html(&l->html, v[i].name);
        gorc__http_sbuf_put(&l->html, v[i].dir ? "/</a>\n" : "</a>\n", v[i].dir ? 6 : 5);
        free(v[i].name);
    }
    free(v);
    gorc__http_sbuf_put(&l->html, "</pre>\n", 7);
    if (l->html.oom)
        l->err = -ENOMEM;
    return NULL;
}

static void serve_listing(gorc_http_rw *w, int fd)
{
    fs_listing l = {.fd = fd};
    gorc_blocking(listing_run, &l);
    if (l.err < 0) {
        reply_errno(w, l.err);
    } else {
        gorc_http_rw_set_header(w, "Content-Type", "text/html; charset=utf-8");
        gorc_http_rw_write(w, l.html.p, l.html.n);
    }
    free(l.html.p);
}

/* ------------------------------------------------------------------------------------------
 * Conditional and range requests
 * ---------------------------------------------------------------------------------------- */

enum { PRE_OK, PRE_NOT_MODIFIED, PRE_FAILED };
enum { RANGE_NONE, RANGE_ONE, RANGE_UNSATISFIABLE };

/* Does an If-Match / If-None-Match list name etag ("*" names any)? weak: ignore "W/". */
static bool etag_listed(const char *list, const char *etag, bool weak)
{
    gorc__http_slice rest = {list, strlen(list)}, e;
    size_t elen = strlen(etag);
    while (gorc__http_list_next(&rest, &e)) {
        if (e.n == 1 && e.p[0] == '*')
            return true;
        if (weak && e.n > 2 && e.p[0] == 'W' && e.p[1] == '/') {
            e.p += 2;
            e.n -= 2;
        }
        if (e.n == elen && memcmp(e.p, etag, elen) == 0)
            return true;
    }
    return false;
}

/* RFC 9110 §13.2.2, in its order: If-Match, If-Unmodified-Since, If-None-Match,
 * If-Modified-Since (the latter only without If-None-Match). */
static int preconditions(const gorc_http_request *r, const char *etag, int64_t mtime)
{
    const char *im = gorc_http_request_header(r, "If-Match");
    const char *ius = gorc_http_request_header(r, "If-Unmodified-Since");
    if (im != NULL && !etag_listed(im, etag, false))
        return PRE_FAILED;
    int64_t t = im == NULL && ius != NULL ? gorc__http_parse_date(ius) : -1;
    if (t >= 0 && mtime > t)
        return PRE_FAILED;
    const char *inm = gorc_http_request_header(r, "If-None-Match");
    if (inm != NULL)
        return etag_listed(inm, etag, true) ? PRE_NOT_MODIFIED : PRE_OK;
    const char *ims = gorc_http_request_header(r, "If-Modified-Since");
    t = ims != NULL ? gorc__http_parse_date(ims) : -1;
    return t >= 0 && mtime <= t ? PRE_NOT_MODIFIED : PRE_OK;
}

/* If-Range: the range applies only if the validator still matches (ETags compared strongly,
 * dates to the second). */
static bool if_range_ok(const gorc_http_request *r, const char *etag, int64_t mtime)
{
    const char *ir = gorc_http_request_header(r, "If-Range");
    if (ir == NULL)
        return true;
    if (ir[0] == '"' || strncmp(ir, "W/", 2) == 0)
        return strcmp(ir, etag) == 0;
    int64_t t = gorc__http_parse_date(ir);
    return t >= 0 && t == mtime;
}

static bool parse_num(const char *p, size_t n, int64_t *v)
{
    if (n == 0 || n > 18)
        return false;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        x = x * 10 + (p[i] - '0');
    }
    *v = x;
    return true;
}

/* One range-spec: 1 and [*start, *start + *len) if satisfiable, 0 if not, -1 if malformed. */
static int parse_spec(gorc__http_slice e, int64_t size, int64_t *start, int64_t *len)
{
    const char *dash = memchr(e.p, '-', e.n);
    if (dash == NULL)
        return -1;
    size_t an = (size_t)(dash - e.p), bn = e.n - an - 1;
    int64_t first, last = size - 1;
    if (an == 0) { /* "-N": the last N bytes */
        if (!parse_num(dash + 1, bn, &first))
            return -1;
        if (first == 0 || size == 0)
            return 0;
        *len = first < size ? first : size;
        *start = size - *len;
        return 1;
    }
    if (!parse_num(e.p, an, &first))
        return -1;
    if (bn > 0 && (!parse_num(dash + 1, bn, &last) || last < first))
        return -1;
    if (first >= size)
        return 0;
    if (last >= size)
        last = size - 1;
    *start = first;
    *len = last - first + 1;
    return 1;
}

/* A Range header: RANGE_ONE with the range when exactly one range is satisfiable,
 * RANGE_UNSATISFIABLE when none is, RANGE_NONE (serve it all) for other units, malformed
 * headers and several satisfiable ranges. */
static int parse_range(const char *s, int64_t size, int64_t *start, int64_t *len)
{
    if (strncasecmp(s, "bytes=", 6) != 0)
        return RANGE_NONE;
    gorc__http_slice rest = {s + 6, strlen(s + 6)}, e;
    int good = 0;
    bool unsatisfiable = false;
    while (gorc__http_list_next(&rest, &e)) {
        int64_t a, n;
        int rc = parse_spec(e, size, &a, &n);
        if (rc < 0)
            return RANGE_NONE;
        unsatisfiable |= rc == 0;
        if (rc > 0 && ++good == 1) {
            *start = a;
            *len = n;
        }
    }
    if (good == 1)
        return RANGE_ONE;
    return good == 0 && unsatisfiable ? RANGE_UNSATISFIABLE : RANGE_NONE;
}

/* ------------------------------------------------------------------------------------------
 * Serving
 * ---------------------------------------------------------------------------------------- */

/* Apply the Range header: the status (200, 206) or 0 when a 416 was sent. */
static int apply_range(gorc_http_rw *w, const gorc_http_request *r, const char *etag, int64_t mtime,
                       int64_t size, int64_t *start, int64_t *len)
{
    const char *rh = gorc_http_request_header(r, "Range");
    if (rh == NULL || !if_range_ok(r, etag, mtime))
        return 200;
    char cr[80];
    switch (parse_range(rh, size, start, len)) {
    case RANGE_ONE:
        snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)*start,
                 (long long)(*start + *len - 1), (long long)size);
        gorc_http_rw_set_header(w, "Content-Range", cr);
        return 206;
    case RANGE_UNSATISFIABLE:
        snprintf(cr, sizeof cr, "bytes */%lld", (long long)size);
        gorc_http_rw_set_header(w, "Content-Range", cr);
        gorc_http_error(w, 416, "416 Requested Range Not Satisfiable");
        return 0;
    default:
        *start = 0;
        *len = size;
        return 200;
    }
}

static void serve_file(gorc_http_rw *w, const gorc_http_request *r, int fd, const struct stat *st,
                       const char *name)
{
    int64_t size = st->st_size, mtime = st->st_mtim.tv_sec;
    uint64_t ns = (uint64_t)mtime * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
    char etag[48], date[GORC__HTTP_DATE_LEN + 1], clen[24];
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)size, (unsigned long long)ns);
    gorc__http_format_date(mtime, date);
    int pre = preconditions(r, etag, mtime);
    if (pre == PRE_FAILED) {
        gorc_http_error(w, 412, "412 Precondition Failed");
        return;
    }
    gorc_http_rw_set_header(w, "ETag", etag);
    if (pre == PRE_NOT_MODIFIED) {
        gorc_http_rw_write_header(w, 304);
        return;
    }
    int64_t start = 0, len = size;
    int status = apply_range(w, r, etag, mtime, size, &start, &len);
    if (status == 0)
        return;
    snprintf(clen, sizeof clen, "%lld", (long long)len);
    gorc_http_rw_set_header(w, "Content-Type", gorc_http_content_type(name));
    gorc_http_rw_set_header(w, "Last-Modified", date);
    gorc_http_rw_set_header(w, "Accept-Ranges", "bytes");
    gorc_http_rw_set_header(w, "Content-Length", clen);
    gorc_http_rw_write_header(w, status);
    if (len > 0 && strcmp(r->method, "HEAD") != 0)
        gorc_http_rw_send_file(w, fd, start, len);
}

/* Answer a lookup that succeeded. path is the request path after the prefix. */
static void serve_found(gorc_http_rw *w, const gorc_http_request *r, const gorc_http_fs *fs,
                        const fs_lookup *q)
{
    if (S_ISDIR(q->st.st_mode) && !q->want_dir) {
        redirect(w, r, r->path, strlen(r->path), "/");
    } else if (q->is_index) {
        serve_file(w, r, q->fd, &q->st, fs->index);
    } else if (S_ISDIR(q->st.st_mode)) {
        if (fs->list_dirs)
            serve_listing(w, q->fd);
        else
            gorc_http_error(w, 404, "404 page not found");
    } else if (S_ISREG(q->st.st_mode) && !q->want_dir) {
        serve_file(w, r, q->fd, &q->st, q->rel);
    } else { /* a file named as a directory, or a device, FIFO or socket */
        gorc_http_error(w, 404, "404 page not found");
    }
}

/* Is the last segment of path[0..n) the index file's name? ("/dir/index.html" redirects to
 * "/dir/", as in Go.) */
static bool names_index(const gorc_http_fs *fs, const char *path, size_t n)
{
    size_t il = strlen(fs->index);
    return n > il && path[n - il - 1] == '/' && memcmp(path + n - il, fs->index, il) == 0;
}

void gorc_http_fs_serve(gorc_http_rw *w, gorc_http_request *r, void *arg)
{
    const gorc_http_fs *fs = arg;
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        gorc_http_rw_set_header(w, "Allow", "GET, HEAD");
        gorc_http_error(w, 405, "405 Method Not Allowed");
        return;
    }
    const char *p = r->path;
    if (fs->plen > 0) {
        if (strncmp(p, fs->prefix, fs->plen) != 0 || (p[fs->plen] != 0 && p[fs->plen] != '/')) {
            gorc_http_error(w, 404, "404 page not found");
            return;
        }
        p += fs->plen;
    }
    size_t n = strlen(p);
    if (names_index(fs, p, n)) {
        redirect(w, r, r->path, strlen(r->path) - strlen(fs->index), "");
        return;
    }
    fs_lookup *q = malloc(sizeof *q);
    if (q == NULL) {
        gorc_http_error(w, 500, "500 Internal Server Error");
        return;
    }
    *q = (fs_lookup){.fs = fs, .want_dir = n > 0 && p[n - 1] == '/', .fd = -1};
    q->err = rel_path(p, q->rel, sizeof q->rel);
    if (q->err >= 0) {
        q->err = 0;
        gorc_blocking(lookup_run, q);
    }
    if (q->err < 0)
        reply_errno(w, q->err);
    else
        serve_found(w, r, fs, q);
    if (q->fd >= 0)
        close(q->fd);
    free(q);
}

/* ------------------------------------------------------------------------------------------
 * Setup
 * ---------------------------------------------------------------------------------------- */

static int check_opts(const gorc_http_fs_opts *o)
{
    const char *pre = o->strip_prefix;
    if (pre != NULL && pre[0] != 0 && pre[0] != '/')
        return -EINVAL;
    const char *idx = o->index;
    if (idx != NULL && (idx[0] == 0 || idx[0] == '.' || strchr(idx, '/') != NULL))
        return -EINVAL;
    return 0;
}

int gorc_http_fs_new(gorc_http_fs **out, const char *root, const gorc_http_fs_opts *opts)
{
    static const gorc_http_fs_opts none;
    const gorc_http_fs_opts *o = opts ? opts : &none;
    if (out == NULL || root == NULL || check_opts(o) < 0)
        return -EINVAL;
    gorc_http_fs *fs = calloc(1, sizeof *fs);
    if (fs == NULL)
        return -ENOMEM;
    fs->root = -1;
    fs->prefix = strdup(o->strip_prefix ? o->strip_prefix : "");
    fs->index = strdup(o->index ? o->index : "index.html");
    fs->list_dirs = o->list_dirs;
    if (fs->prefix == NULL || fs->index == NULL) {
        gorc_http_fs_free(fs);
        return -ENOMEM;
    }
    fs->plen = strlen(fs->prefix);
    while (fs->plen > 0 && fs->prefix[fs->plen - 1] == '/')
        fs->prefix[--fs->plen] = 0;
    fs->root = gorc_file_open(root, O_PATH | O_DIRECTORY, 0);
    if (fs->root < 0) {
        int err = fs->root;
        gorc_http_fs_free(fs);
        return err;
    }
    *out = fs;
    return 0;
}

void gorc_http_fs_free(gorc_http_fs *fs)
{
    if (fs == NULL)
        return;
    if (fs->root >= 0)
        close(fs->root);
    free(fs->prefix);
    free(fs->index);
    free(fs);
}
