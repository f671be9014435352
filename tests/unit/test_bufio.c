/*
 * test_bufio.c - buffered readers and writers over connections (cmocka; bodies run as
 * goroutines), on a Unix socket pair.
 *
 * Covers: lines ending in "\n" and "\r\n", empty lines and a last line without a newline,
 * whatever sizes the peer writes them in (one byte at a time, or all at once); a line longer
 * than the buffer (-ENOBUFS, bytes kept); delimited slices; peek; a large read that bypasses
 * the buffer; argument errors; the writer holds small writes until the buffer fills or is
 * flushed (the peer sees nothing before), sends a large write without copying it, formats text
 * longer than its buffer, and keeps its first error (sticky) once the peer is gone; freeing
 * either leaves the connection open.
 */
#include "testutil.h"

#include <gorc_bufio.h>

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void pair(gorc_conn **a, gorc_conn **b)
{
    int fds[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    CHECK_EQ(gorc_conn_from_fd(a, fds[0]), 0);
    CHECK_EQ(gorc_conn_from_fd(b, fds[1]), 0);
}

typedef struct feed {
    gorc_conn *c;
    const char *text;
    size_t step; /* bytes per write */
} feed;

static void feeder(void *arg)
{
    feed *f = arg;
    size_t n = strlen(f->text);
    for (size_t i = 0; i < n; i += f->step) {
        size_t k = n - i < f->step ? n - i : f->step;
        CHECK_EQ(gorc_conn_write_all(f->c, f->text + i, k), (ssize_t)k);
        if (f->step < 4)
            gorc_yield();
    }
    CHECK_EQ(gorc_conn_shutdown(f->c, SHUT_WR), 0);
}

static void expect_line(gorc_bufreader *r, const char *want, ssize_t consumed)
{
    const char *line;
    size_t len;
    ssize_t n = gorc_bufreader_read_line(r, &line, &len);
    CHECK_EQ(n, consumed);
    CHECK_EQ(len, strlen(want));
    CHECK(memcmp(line, want, len) == 0);
}

static void lines_with_step(size_t step, size_t bufsize)
{
    gorc_conn *a, *b;
    pair(&a, &b);
    feed f = {b, "first\nsecond\r\n\nlast without newline", step};
    CHECK_EQ(gorc_go(feeder, &f), 0);
    gorc_bufreader *r;
    CHECK_EQ(gorc_bufreader_new(&r, a, bufsize), 0);
    expect_line(r, "first", 6);
    expect_line(r, "second", 8);
    expect_line(r, "", 1);
    expect_line(r, "last without newline", 20);
    const char *line;
    size_t len;
    CHECK_EQ(gorc_bufreader_read_line(r, &line, &len), 0); /* end of stream */
    CHECK_EQ(gorc_bufreader_read_line(r, &line, &len), 0);
    gorc_bufreader_free(r);
    gorc_conn_close(a); /* closes and gives up the reference */
    gorc_conn_close(b);
}

GO_TEST(test_lines)
{
    lines_with_step(1, 0);
    lines_with_step(3, 32);
    lines_with_step(1000, 64);
}

GO_TEST(test_long_line_slice_peek)
{
    gorc_conn *a, *b;
    pair(&a, &b);
    feed f = {b,
              "0123456789abcdefXYZ;tail;"
              "payload",
              1000};
    CHECK_EQ(gorc_go(feeder, &f), 0);
    gorc_bufreader *r;
    CHECK_EQ(gorc_bufreader_new(&r, a, 16), 0);
    const char *p;
    size_t len;
    /* No newline within 16 bytes: -ENOBUFS, and the bytes are still there. */
    CHECK_EQ(gorc_bufreader_read_line(r, &p, &len), -ENOBUFS);
    CHECK_EQ(gorc_bufreader_buffered(r), 16);
    CHECK_EQ(gorc_bufreader_peek(r, 4, &p), 4);
    CHECK(memcmp(p, "0123", 4) == 0);
    CHECK_EQ(gorc_bufreader_peek(r, 17, &p), -ENOBUFS);
    char buf[16];
    CHECK_EQ(gorc_bufreader_read(r, buf, 16), 16);
    CHECK(memcmp(buf, "0123456789abcdef", 16) == 0);
    CHECK_EQ(gorc_bufreader_read_slice(r, ';', &p), 4);
    CHECK(memcmp(p, "XYZ;", 4) == 0);
    CHECK_EQ(gorc_bufreader_read_slice(r, ';', &p), 5);
    CHECK(memcmp(p, "tail;", 5) == 0);
    CHECK_EQ(gorc_bufreader_read_slice(r, ';', &p), 7); /* the rest, no delimiter */
    CHECK(memcmp(p, "payload", 7) == 0);
    CHECK_EQ(gorc_bufreader_read_slice(r, ';', &p), 0);
    CHECK_EQ(gorc_bufreader_read(r, buf, sizeof buf), 0);
    CHECK_EQ(gorc_bufreader_peek(r, 1, &p), 0);
    /* Argument errors. */
    CHECK_EQ(gorc_bufreader_read(NULL, buf, 1), -EINVAL);
    CHECK_EQ(gorc_bufreader_read(r, NULL, 1), -EINVAL);
    CHECK_EQ(gorc_bufreader_read_slice(r, ';', NULL), -EINVAL);
    CHECK_EQ(gorc_bufreader_read_line(r, NULL, &len), -EINVAL);
    CHECK_EQ(gorc_bufreader_new(NULL, a, 0), -EINVAL);
    CHECK_EQ(gorc_bufreader_new(&r, NULL, 0), -EINVAL);
    gorc_bufreader_free(r);
    gorc_bufreader_free(NULL);
    gorc_conn_close(a); /* closes and gives up the reference */
    gorc_conn_close(b);
}

GO_TEST(test_large_read)
{
    gorc_conn *a, *b;
    pair(&a, &b);
    static char big[100000];
    for (size_t i = 0; i + 1 < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    feed f = {b, big, 8192};
    CHECK_EQ(gorc_go(feeder, &f), 0);
    gorc_bufreader *r;
    CHECK_EQ(gorc_bufreader_new(&r, a, 64), 0);
    char line[3];
    CHECK_EQ(gorc_bufreader_read(r, line, 3), 3); /* fills the small buffer */
    static char got[100000];
    size_t have = 3;
    memcpy(got, line, 3);
    ssize_t k;
    while ((k = gorc_bufreader_read(r, got + have, sizeof got - have)) > 0)
        have += (size_t)k;
    CHECK_EQ(k, 0);
    CHECK_EQ(have, sizeof big - 1);
    CHECK(memcmp(got, big, have) == 0);
    gorc_bufreader_free(r);
    gorc_conn_close(a); /* closes and gives up the reference */
    gorc_conn_close(b);
}

/* Nothing readable on c within 20 ms. */
static void nothing_yet(gorc_conn *c)
{
    char x;
    CHECK_EQ(gorc_conn_set_read_deadline(c, gorc_now() + 20 * GORC_MILLISECOND), 0);
    CHECK_EQ(gorc_conn_read(c, &x, 1), -ETIMEDOUT);
    CHECK_EQ(gorc_conn_set_read_deadline(c, 0), 0);
}

static void read_exactly(gorc_conn *c, const char *want)
{
    size_t n = strlen(want);
    char buf[256];
    CHECK(n <= sizeof buf);
    CHECK_EQ(gorc_conn_read_full(c, buf, n), (ssize_t)n);
    CHECK(memcmp(buf, want, n) == 0);
}

GO_TEST(test_writer)
{
    gorc_conn *a, *b;
    pair(&a, &b);
    gorc_bufwriter *w;
    CHECK_EQ(gorc_bufwriter_new(&w, a, 32), 0);
    CHECK_EQ(gorc_bufwriter_write_string(w, "hello "), 6);
    CHECK_EQ(gorc_bufwriter_printf(w, "%d %s", 42, "world"), 8);
    CHECK_EQ(gorc_bufwriter_buffered(w), 14);
    nothing_yet(b); /* held in the buffer */
    CHECK_EQ(gorc_bufwriter_flush(w), 0);
    read_exactly(b, "hello 42 world");
    CHECK_EQ(gorc_bufwriter_buffered(w), 0);

    /* Filling the buffer writes the first part; a large write goes out directly. */
    CHECK_EQ(gorc_bufwriter_write_string(w, "0123456789012345678901234"), 25);
    CHECK_EQ(gorc_bufwriter_write_string(w, "ABCDEFGHIJ"), 10); /* 35 > 32: flush first */
    read_exactly(b, "0123456789012345678901234");
    char big[100];
    memset(big, 'z', sizeof big);
    CHECK_EQ(gorc_bufwriter_write(w, big, sizeof big), 100);
    char both[111];
    memcpy(both, "ABCDEFGHIJ", 10);
    memset(both + 10, 'z', 100);
    both[110] = 0;
    read_exactly(b, both);

    /* Formatted text longer than the buffer. */
    CHECK_EQ(gorc_bufwriter_printf(w, "%s-%s", "0123456789abcdef0123", "0123456789abcdef"), 37);
    CHECK_EQ(gorc_bufwriter_flush(w), 0);
    read_exactly(b, "0123456789abcdef0123-0123456789abcdef");

    /* Argument errors. */
    CHECK_EQ(gorc_bufwriter_write(NULL, "x", 1), -EINVAL);
    CHECK_EQ(gorc_bufwriter_write(w, NULL, 1), -EINVAL);
    CHECK_EQ(gorc_bufwriter_write_string(w, NULL), -EINVAL);
    CHECK_EQ(gorc_bufwriter_printf(w, NULL), -EINVAL);
    CHECK_EQ(gorc_bufwriter_flush(NULL), -EINVAL);
    CHECK_EQ(gorc_bufwriter_new(&w, NULL, 0), -EINVAL);

    /* The peer goes away: the error comes and stays. */
    gorc_conn_close(b);
    int err = 0;
    for (int i = 0; i < 1000 && err == 0; i++) {
        CHECK(gorc_bufwriter_write(w, big, sizeof big) > 0 || (err = 1));
        err = gorc_bufwriter_flush(w);
    }
    CHECK(err == -EPIPE || err == -ECONNRESET);
    CHECK_EQ(gorc_bufwriter_write_string(w, "more"), err);
    CHECK_EQ(gorc_bufwriter_flush(w), err);
    gorc_bufwriter_free(w);
    gorc_bufwriter_free(NULL);
    /* The writer is gone, the connection is still ours to close. */
    CHECK_EQ(gorc_conn_close(a), 0);
}

GO_TEST(test_writev)
{
    gorc_conn *a, *b;
    pair(&a, &b);
    /* 200 pieces (more than one system call takes), some empty, then a large one. */
    static char big[50000];
    memset(big, 'q', sizeof big);
    struct iovec iov[201];
    char small[200][12];
    size_t total = 0;
    for (int i = 0; i < 200; i++) {
        snprintf(small[i], sizeof small[i], "%03d", i);
        iov[i].iov_base = small[i];
        iov[i].iov_len = i % 7 == 0 ? 0 : 3; /* "%03d" of i < 200 is 3 bytes */
        total += iov[i].iov_len;
    }
    iov[200].iov_base = big;
    iov[200].iov_len = sizeof big;
    total += sizeof big;
    gorc_bufreader *r;
    CHECK_EQ(gorc_bufreader_new(&r, b, 0), 0);
    CHECK_EQ(gorc_conn_writev(a, iov, 201), (ssize_t)total);
    CHECK_EQ(gorc_conn_shutdown(a, SHUT_WR), 0);
    static char got[60000];
    size_t have = 0;
    ssize_t k;
    while ((k = gorc_bufreader_read(r, got + have, sizeof got - have)) > 0)
        have += (size_t)k;
    CHECK_EQ(have, total);
    size_t off = 0;
    for (int i = 0; i < 200; i++) {
        CHECK(memcmp(got + off, small[i], iov[i].iov_len) == 0);
        off += iov[i].iov_len;
    }
    CHECK(memcmp(got + off, big, sizeof big) == 0);
    gorc_bufreader_free(r);
    /* Argument errors, and the peer gone. */
    CHECK_EQ(gorc_conn_writev(NULL, iov, 1), -EINVAL);
    CHECK_EQ(gorc_conn_writev(a, NULL, 1), -EINVAL);
    CHECK_EQ(gorc_conn_writev(a, iov, -1), -EINVAL);
    CHECK_EQ(gorc_conn_writev(b, iov, 0), 0);
    gorc_conn_close(a);
    ssize_t e = 0;
    for (int i = 0; i < 100 && e >= 0; i++)
        e = gorc_conn_writev(b, iov + 200, 1);
    CHECK(e == -EPIPE || e == -ECONNRESET);
    gorc_conn_close(b);
}

typedef struct ticker_feed {
    gorc_conn *c;
    int n;
    int64_t every;
} ticker_feed;

static void tick_writer(void *arg)
{
    ticker_feed *t = arg;
    for (int i = 0; i < t->n; i++) {
        gorc_sleep(t->every);
        CHECK_EQ(gorc_conn_write_all(t->c, "x", 1), 1);
    }
}

GO_TEST(test_relative_timeouts)
{
    gorc_conn *a, *b;
    pair(&a, &b);
    char x;
    CHECK_EQ(gorc_conn_set_read_timeout(NULL, 1), -EINVAL);
    CHECK_EQ(gorc_conn_set_read_timeout(a, -1), -EINVAL);

    /* Nothing comes: the read fails after at least d/2. d is generous so that a loaded
     * machine's scheduling gaps in the ticker below stay well under it. */
    int64_t d = 250 * GORC_MILLISECOND;
    CHECK_EQ(gorc_conn_set_read_timeout(a, d), 0);
    int64_t t0 = gorc_now();
    CHECK_EQ(gorc_conn_read(a, &x, 1), -ETIMEDOUT);
    CHECK(gorc_now() - t0 >= d / 2);
    CHECK(gorc_now() - t0 < 10 * GORC_SECOND);

    /* A byte every 5 ms for 500 ms: every read succeeds, though 500 ms is far past d. */
    ticker_feed tf = {b, 100, 5 * GORC_MILLISECOND};
    CHECK_EQ(gorc_go(tick_writer, &tf), 0);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(gorc_conn_read(a, &x, 1), 1);

    /* An absolute deadline replaces the timeout: none now, so a late byte still arrives. */
    CHECK_EQ(gorc_conn_set_read_deadline(a, 0), 0);
    ticker_feed late = {b, 1, 3 * d}; /* tf may still be read by its writer's last loop test */
    CHECK_EQ(gorc_go(tick_writer, &late), 0);
    CHECK_EQ(gorc_conn_read(a, &x, 1), 1);

    /* A write that cannot progress (nobody reads b) fails with the write timeout. */
    CHECK_EQ(gorc_conn_set_write_timeout(a, d), 0);
    static char big[1 << 20];
    ssize_t w = 0;
    for (int i = 0; i < 64 && w >= 0; i++)
        w = gorc_conn_write_all(a, big, sizeof big);
    CHECK_EQ(w, -ETIMEDOUT);
    CHECK_EQ(gorc_conn_set_write_timeout(a, 0), 0);
    gorc_conn_retain(a); /* keep the record to ask it after the close */
    gorc_conn_close(a);
    CHECK_EQ(gorc_conn_set_read_timeout(a, d), GORC_ENETCLOSED);
    gorc_conn_release(a);
    gorc_conn_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),      cmocka_unit_test(test_long_line_slice_peek),
        cmocka_unit_test(test_large_read), cmocka_unit_test(test_writer),
        cmocka_unit_test(test_writev),     cmocka_unit_test(test_relative_timeouts),
    };
    return cmocka_run_group_tests_name("bufio", tests, NULL, NULL);
}
