/*
 * bufio.c - Go's bufio.Reader and bufio.Writer over a gorc_conn.
 *
 * Reader. One buffer with a read position `r` and a fill position `w`; bytes in [r, w) are
 * buffered. A fill first moves the buffered bytes to the start (so a line is always
 * contiguous), then makes one gorc_conn_read into the free tail. Slices handed out point into
 * the buffer and are valid until the next call, which may move them. A large read (at least
 * the buffer's size) with nothing buffered goes straight into the caller's memory, as Go's
 * does, so bulk transfers pay no copy.
 *
 * Writer. Small writes are copied into the buffer; a write that would overflow it flushes
 * first; a write at least as large as the buffer goes out together with what is buffered in
 * one gathering write (gorc_conn_writev), so it is never copied. gorc_conn_write_all does the
 * waiting, so a partial write never escapes to the caller.
 *
 * Both errors are sticky (as in Go): the first error is returned by every later call.
 */
#include "gorc_bufio.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SIZE 4096
#define MIN_SIZE     16

struct gorc_bufreader {
    gorc_conn *c;
    char *buf;
    size_t cap, r, w;
    bool eof;
    int err; /* sticky read error */
};

struct gorc_bufwriter {
    gorc_conn *c;
    char *buf;
    size_t cap, n;
    int err; /* sticky write error */
};

static size_t buf_size(size_t size)
{
    return size == 0 ? DEFAULT_SIZE : size < MIN_SIZE ? MIN_SIZE : size;
}

int gorc_bufreader_new(gorc_bufreader **out, gorc_conn *c, size_t size)
{
    if (out == NULL || c == NULL)
        return -EINVAL;
    gorc_bufreader *r = calloc(1, sizeof *r);
    size = buf_size(size);
    char *buf = r ? malloc(size) : NULL;
    if (buf == NULL) {
        free(r);
        return -ENOMEM;
    }
    r->c = gorc_conn_retain(c);
    r->buf = buf;
    r->cap = size;
    *out = r;
    return 0;
}

void gorc_bufreader_free(gorc_bufreader *r)
{
    if (r == NULL)
        return;
    gorc_conn_release(r->c);
    free(r->buf);
    free(r);
}

/* One read into the free tail, after moving the buffered bytes to the front. False when
 * nothing more can come (end of stream or an error, now recorded). */
static bool fill(gorc_bufreader *r)
{
    if (r->eof || r->err)
        return false;
    if (r->r > 0) {
        memmove(r->buf, r->buf + r->r, r->w - r->r);
        r->w -= r->r;
        r->r = 0;
    }
    if (r->w == r->cap)
        return false;
    ssize_t k = gorc_conn_read(r->c, r->buf + r->w, r->cap - r->w);
    if (k > 0) {
        r->w += (size_t)k;
        return true;
    }
    if (k == 0)
        r->eof = true;
    else
        r->err = (int)k;
    return false;
}

ssize_t gorc_bufreader_read(gorc_bufreader *r, void *buf, size_t n)
{
    if (r == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    if (n == 0)
        return 0;
    if (r->r == r->w) {
        if (r->err)
            return r->err;
        if (r->eof)
            return 0;
        if (n >= r->cap) { /* large read, nothing buffered: no copy */
            ssize_t k = gorc_conn_read(r->c, buf, n);
            if (k == 0)
                r->eof = true;
            else if (k < 0)
                r->err = (int)k;
            return k;
        }
        r->r = r->w = 0;
        if (!fill(r))
            return r->err ? r->err : 0;
    }
    size_t k = r->w - r->r < n ? r->w - r->r : n;
    memcpy(buf, r->buf + r->r, k);
    r->r += k;
    return (ssize_t)k;
}

ssize_t gorc_bufreader_read_slice(gorc_bufreader *r, int delim, const char **out)
{
    if (r == NULL || out == NULL)
        return -EINVAL;
    size_t scanned = 0; /* bytes after r->r already searched */
    for (;;) {
        const char *p =
            memchr(r->buf + r->r + scanned, (unsigned char)delim, r->w - r->r - scanned);
        if (p) {
            size_t len = (size_t)(p - (r->buf + r->r)) + 1;
            *out = r->buf + r->r;
            r->r += len;
            return (ssize_t)len;
        }
        scanned = r->w - r->r;
        if (scanned == r->cap)
            return -ENOBUFS;
        if (!fill(r)) {
            if (r->err)
                return r->err;
            if (r->w == r->r)
                return 0;
            size_t len = r->w - r->r; /* the last bytes, without a delimiter */
            *out = r->buf + r->r;
            r->r = r->w;
            return (ssize_t)len;
        }
    }
}

ssize_t gorc_bufreader_read_line(gorc_bufreader *r, const char **line, size_t *len)
{
    if (line == NULL || len == NULL)
        return -EINVAL;
    const char *p;
    ssize_t n = gorc_bufreader_read_slice(r, '\n', &p);
    if (n <= 0)
        return n;
    size_t k = (size_t)n;
    if (p[k - 1] == '\n') {
        k--;
        if (k > 0 && p[k - 1] == '\r')
            k--;
    }
    *line = p;
    *len = k;
    return n;
}

ssize_t gorc_bufreader_peek(gorc_bufreader *r, size_t n, const char **out)
{
    if (r == NULL || out == NULL)
        return -EINVAL;
    if (n > r->cap)
        return -ENOBUFS;
    while (r->w - r->r < n && fill(r))
        ;
    size_t have = r->w - r->r;
    if (have < n && r->err)
        return r->err;
    *out = r->buf + r->r;
    return (ssize_t)(have < n ? have : n);
}

size_t gorc_bufreader_buffered(const gorc_bufreader *r)
{
    return r ? r->w - r->r : 0;
}

int gorc_bufwriter_new(gorc_bufwriter **out, gorc_conn *c, size_t size)
{
    if (out == NULL || c == NULL)
        return -EINVAL;
    gorc_bufwriter *w = calloc(1, sizeof *w);
    size = buf_size(size);
    char *buf = w ? malloc(size) : NULL;
    if (buf == NULL) {
        free(w);
        return -ENOMEM;
    }
    w->c = gorc_conn_retain(c);
    w->buf = buf;
    w->cap = size;
    *out = w;
    return 0;
}

int gorc_bufwriter_flush(gorc_bufwriter *w)
{
    if (w == NULL)
        return -EINVAL;
    if (w->err)
        return w->err;
    if (w->n > 0) {
        ssize_t k = gorc_conn_write_all(w->c, w->buf, w->n);
        if (k < 0)
            return w->err = (int)k;
        w->n = 0;
    }
    return 0;
}

void gorc_bufwriter_free(gorc_bufwriter *w)
{
    if (w == NULL)
        return;
    gorc_bufwriter_flush(w);
    gorc_conn_release(w->c);
    free(w->buf);
    free(w);
}

ssize_t gorc_bufwriter_write(gorc_bufwriter *w, const void *buf, size_t n)
{
    if (w == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    if (w->err)
        return w->err;
    if (n >= w->cap) { /* as large as the buffer: no copy, one gathering write with it */
        struct iovec iov[2] = {{w->buf, w->n}, {(void *)buf, n}};
        ssize_t k = gorc_conn_writev(w->c, iov + (w->n == 0), w->n == 0 ? 1 : 2);
        if (k < 0)
            return w->err = (int)k;
        w->n = 0;
        return (ssize_t)n;
    }
    if (w->n + n > w->cap) {
        int rc = gorc_bufwriter_flush(w);
        if (rc < 0)
            return rc;
    }
    if (n > 0)
        memcpy(w->buf + w->n, buf, n);
    w->n += n;
    return (ssize_t)n;
}

ssize_t gorc_bufwriter_write_string(gorc_bufwriter *w, const char *s)
{
    if (s == NULL)
        return -EINVAL;
    return gorc_bufwriter_write(w, s, strlen(s));
}

ssize_t gorc_bufwriter_printf(gorc_bufwriter *w, const char *fmt, ...)
{
    if (w == NULL || fmt == NULL)
        return -EINVAL;
    if (w->err)
        return w->err;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(w->buf + w->n, w->cap - w->n, fmt, ap);
    va_end(ap);
    if (k < 0)
        return -EINVAL;
    if ((size_t)k < w->cap - w->n) { /* it fitted (vsnprintf wrote its NUL after it) */
        w->n += (size_t)k;
        return k;
    }
    /* Too long for the free space: format again into memory of its own. */
    char *tmp = malloc((size_t)k + 1);
    if (tmp == NULL)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)k + 1, fmt, ap);
    va_end(ap);
    ssize_t rc = gorc_bufwriter_write(w, tmp, (size_t)k);
    free(tmp);
    return rc;
}

size_t gorc_bufwriter_buffered(const gorc_bufwriter *w)
{
    return w ? w->n : 0;
}
