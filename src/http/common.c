/*
 * common.c - small pieces every part of the HTTP package uses: status texts, header
 * lookup, character classes, percent-decoding, query values and HTTP dates.
 *
 * The Date header is needed on every response, and formatting a date costs more than the
 * rest of a hello-world response together (gmtime_r takes a lock on the time zone). So the
 * current date is formatted at most once a second into a small seqlock-protected cache that
 * any thread reads without locking.
 *
 * I/O buffers come from a small per-thread pool (one size), so that with many connections
 * the few buffers in use stay in cache and an idle connection holds none.
 */
#include "http/internal.h"
#include "sim/sim.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *gorc_http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 103:
        return "Early Hints";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 203:
        return "Non-Authoritative Information";
    case 204:
        return "No Content";
    case 205:
        return "Reset Content";
    case 206:
        return "Partial Content";
    case 300:
        return "Multiple Choices";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Request Entity Too Large";
    case 414:
        return "Request URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Requested Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 418:
        return "I'm a teapot";
    case 421:
        return "Misdirected Request";
    case 422:
        return "Unprocessable Entity";
    case 426:
        return "Upgrade Required";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 451:
        return "Unavailable For Legal Reasons";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}

const char *gorc_http_header_lookup(const gorc_http_header *h, size_t n, const char *name)
{
    if (h == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, name) == 0)
            return h[i].value;
    return NULL;
}

/* tchar (RFC 9110 §5.6.2): visible ASCII except delimiters. */
static bool is_tchar(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return true;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

bool gorc__http_is_token(const char *s)
{
    if (s == NULL || *s == 0)
        return false;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

bool gorc__http_is_value(const char *s)
{
    if (s == NULL)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

int gorc__http_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int gorc__http_pct_decode(char *s, size_t n, bool plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < n ? gorc__http_hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? gorc__http_hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -EINVAL;
            s[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            s[o++] = plus_is_space && c == '+' ? ' ' : c;
        }
    }
    s[o] = 0;
    return (int)o;
}

size_t gorc__http_url_escape(const char *p, size_t n, char *out, bool strict)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *keep = strict ? "-._~/" : "-._~!$&'()*+,;=:@/";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') ||
            (c != 0 && strchr(keep, c) != NULL)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = 0;
    return o;
}

char *gorc__http_sbuf_room(gorc__http_sbuf *b, size_t need)
{
    if (b->oom)
        return NULL;
    if (b->n + need + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->n + need + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->n;
}

void gorc__http_sbuf_put(gorc__http_sbuf *b, const void *s, size_t n)
{
    char *d = gorc__http_sbuf_room(b, n);
    if (d != NULL) {
        memcpy(d, s, n);
        b->n += n;
        b->p[b->n] = 0;
    }
}

void gorc__http_sbuf_str(gorc__http_sbuf *b, const char *s)
{
    gorc__http_sbuf_put(b, s, strlen(s));
}

void gorc__http_sbuf_html(gorc__http_sbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            gorc__http_sbuf_put(b, "&amp;", 5);
            break;
        case '<':
            gorc__http_sbuf_put(b, "&lt;", 4);
            break;
        case '>':
            gorc__http_sbuf_put(b, "&gt;", 4);
            break;
        case '"':
            gorc__http_sbuf_put(b, "&#34;", 5);
            break;
        case '\'':
            gorc__http_sbuf_put(b, "&#39;", 5);
            break;
        default:
            gorc__http_sbuf_put(b, s, 1);
        }
    }
}

ssize_t gorc__http_read_all(gorc__http_reader rd, void *src, size_t hint, size_t max, char **out)
{
    *out = NULL;
    /* Room for the whole body, its NUL and the read that finds the end: no realloc when the
     * length is known. lim bounds the buffer: one byte over max tells that it was exceeded. */
    size_t lim = max > SIZE_MAX - 2 ? SIZE_MAX : max + 2;
    size_t cap = hint > 0 && hint <= max ? hint + 2 : 4096;
    if (cap > lim)
        cap = lim;
    char *b = malloc(cap);
    if (b == NULL)
        return -ENOMEM;
    size_t n = 0;
    for (;;) {
        if (n + 1 >= cap) {
            size_t nc = cap * 2 > lim || cap * 2 < cap ? lim : cap * 2;
            char *nb = realloc(b, nc);
            if (nb == NULL) {
                free(b);
                return -ENOMEM;
            }
            b = nb;
            cap = nc;
        }
        ssize_t k = rd(src, b + n, cap - n - 1);
        if (k < 0) {
            free(b);
            return k;
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (n > max) {
            free(b);
            return GORC_HTTP_ETOOLARGE;
        }
    }
    b[n] = 0;
    *out = b;
    return (ssize_t)n;
}

int gorc_http_query_value(const char *query, const char *key, char *buf, size_t n)
{
    if (query == NULL || key == NULL || buf == NULL)
        return -EINVAL;
    size_t klen = strlen(key);
    const char *p = query;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t nlen = eq ? (size_t)(eq - p) : len;
        /* Keys are compared after decoding, as url.ParseQuery does; short keys fit a stack
         * buffer, longer ones cannot equal any sensible key and are compared raw. */
        char name[256];
        bool match = false;
        if (nlen < sizeof name) {
            memcpy(name, p, nlen);
            int dl = gorc__http_pct_decode(name, nlen, true);
            match = dl >= 0 && (size_t)dl == klen && memcmp(name, key, klen) == 0;
        }
        if (match) {
            const char *v = eq ? eq + 1 : p + len;
            size_t vlen = (size_t)(p + len - v);
            if (vlen >= n)
                return -ENOSPC;
            memcpy(buf, v, vlen);
            return gorc__http_pct_decode(buf, vlen, true);
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return -ENOENT;
}

/* ------------------------------------------------------------------------------------------
 * Dates (RFC 9110 §5.6.7)
 * ---------------------------------------------------------------------------------------- */

static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void gorc__http_format_date(int64_t t, char *buf)
{
    struct tm tm;
    time_t tt = (time_t)t;
    char tmp[64];
    gmtime_r(&tt, &tm);
    snprintf(tmp, sizeof tmp, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    memcpy(buf, tmp, GORC__HTTP_DATE_LEN);
    buf[GORC__HTTP_DATE_LEN] = 0;
}

static int month_index(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (strncmp(s, months[i], 3) == 0)
            return i;
    return -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (no time zone involved, unlike mktime). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t gorc__http_parse_date(const char *s)
{
    if (s == NULL)
        return -1;
    int d = 0, y = 0, hh = 0, mm = 0, ss = 0, used = 0;
    char mon[4] = {0}, wd[16] = {0};
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (sscanf(s, "%3s, %2d %3s %4d %2d:%2d:%2d GMT%n", wd, &d, mon, &y, &hh, &mm, &ss, &used) ==
            7 &&
        used > 0) {
    } else if (sscanf(s, "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d GMT%n", wd, &d, mon, &y, &hh, &mm,
                      &ss, &used) == 7 &&
               used > 0) {
        /* RFC 850: two-digit year; RFC 9110 §5.6.7 says to read it as within 50 years. */
        y += y < 70 ? 2000 : 1900;
    } else if (sscanf(s, "%3s %3s %2d %2d:%2d:%2d %4d%n", wd, mon, &d, &hh, &mm, &ss, &y, &used) ==
                   7 &&
               used > 0) {
        /* asctime: "Sun Nov  6 08:49:37 1994" */
    } else {
        return -1;
    }
    if (s[used] != 0)
        return -1;
    int m = month_index(mon);
    if (m < 0 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 || y < 1970)
        return -1;
    return days_from_civil(y, m + 1, d) * 86400 + hh * 3600 + mm * 60 + ss;
}

/* The cached current date: a seqlock (odd seq = being written) over the formatted text. */
static struct {
    _Atomic uint32_t seq;
    _Atomic int64_t sec;
    _Atomic uint64_t words[4]; /* GORC__HTTP_DATE_LEN bytes, padded */
} date_cache = {.sec = -1};

void gorc__http_now_date(char *buf)
{
    struct timespec ts;
    int64_t vt;
    if (gorc__sim_on() && gorc__sim_clock(&vt)) { /* the run's clock: from 2000-01-01 */
        char tmp[32] = {0};
        gorc__http_format_date(vt / GORC_SECOND, tmp);
        memcpy(buf, tmp, GORC__HTTP_DATE_LEN);
        return;
    }
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    for (;;) {
        uint32_t s0 = atomic_load_explicit(&date_cache.seq, memory_order_acquire);
        if ((s0 & 1) == 0 &&
            atomic_load_explicit(&date_cache.sec, memory_order_relaxed) == (int64_t)ts.tv_sec) {
            uint64_t w[4];
            for (int i = 0; i < 4; i++)
                w[i] = atomic_load_explicit(&date_cache.words[i], memory_order_relaxed);
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&date_cache.seq, memory_order_relaxed) == s0) {
                memcpy(buf, w, GORC__HTTP_DATE_LEN);
                return;
            }
            continue;
        }
        /* Stale (or being rewritten): format our own copy, and refresh the cache if no other
         * thread is doing it. */
        char tmp[32] = {0};
        gorc__http_format_date(ts.tv_sec, tmp);
        memcpy(buf, tmp, GORC__HTTP_DATE_LEN);
        if ((s0 & 1) == 0 && atomic_compare_exchange_strong(&date_cache.seq, &s0, s0 + 1)) {
            uint64_t w[4];
            memcpy(w, tmp, sizeof w);
            for (int i = 0; i < 4; i++)
                atomic_store_explicit(&date_cache.words[i], w[i], memory_order_relaxed);
            atomic_store_explicit(&date_cache.sec, ts.tv_sec, memory_order_relaxed);
            atomic_store_explicit(&date_cache.seq, s0 + 2, memory_order_release);
        }
        return;
    }
}

/* ------------------------------------------------------------------------------------------
 * Buffer pool
 * ---------------------------------------------------------------------------------------- */

#define POOL_KEEP 32 /* buffers a thread keeps at most */

typedef struct pool {
    size_t n;
    void *b[POOL_KEEP];
} pool;

static _Thread_local pool tpool;
static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_drain(void *arg)
{
    pool *p = arg;
    while (p->n)
        free(p->b[--p->n]);
}

static void pool_key_make(void)
{
    pthread_key_create(&pool_key, pool_drain);
}

/* Not inlined: the thread-local address must be computed afresh on every call, since the
 * calling goroutine may have moved to another thread since the last one. */
__attribute__((noinline)) void *gorc__http_buf_get(void)
{
    pool *p = &tpool;
    if (p->n)
        return p->b[--p->n];
    return malloc(GORC__HTTP_BUF_SIZE);
}

__attribute__((noinline)) void gorc__http_buf_put(void *b)
{
    pool *p = &tpool;
    if (p->n == 0) {
        /* Free the thread's buffers when it exits. */
        pthread_once(&pool_once, pool_key_make);
        pthread_setspecific(pool_key, p);
    }
    if (p->n < POOL_KEEP)
        p->b[p->n++] = b;
    else
        free(b);
}

ssize_t gorc__http_copy_file(gorc_http_rw *w, int fd, int64_t off, int64_t n)
{
    char buf[16384];
    int64_t done = 0;
    while (done < n) {
        size_t want = n - done < (int64_t)sizeof buf ? (size_t)(n - done) : sizeof buf;
        ssize_t k = gorc_file_read(fd, buf, want, off + done);
        if (k <= 0)
            return k < 0 ? k : -EIO;
        ssize_t r = gorc_http_rw_write(w, buf, (size_t)k);
        if (r < 0)
            return r;
        done += k;
    }
    return n;
}
