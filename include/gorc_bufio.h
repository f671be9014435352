/*
 * gorc_bufio.h - buffered connection I/O (Go's bufio.Reader and bufio.Writer over a gorc_conn),
 * so that a line protocol is not written by hand in every program.
 *
 * A reader fills its buffer with one gorc_conn_read at a time and hands out bytes, lines and
 * delimited slices from it; a writer gathers small writes and sends them with one write when
 * it is full or flushed, while a write at least as large as the buffer goes straight to the
 * connection. Neither is safe for concurrent use (as in Go); a reader and a writer on one
 * connection may be used by two goroutines. Both keep a reference to the connection; freeing
 * them does not close it. Errors are sticky, as in Go: once a read or write fails, every
 * later call returns the same error.
 */
#ifndef GORC_BUFIO_H
#define GORC_BUFIO_H

#include "gorc_net.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gorc_bufreader gorc_bufreader;
typedef struct gorc_bufwriter gorc_bufwriter;

/* A reader on c with a buffer of size bytes (0: 4096; at least 16). Returns 0 and *out;
 * -EINVAL if out or c is NULL; -ENOMEM. Go: bufio.NewReaderSize(conn, size). */
GORC_API int gorc_bufreader_new(gorc_bufreader **out, gorc_conn *c, size_t size);

/* Free the reader (and the bytes still buffered); the connection stays open. NULL is
 * ignored. */
GORC_API void gorc_bufreader_free(gorc_bufreader *r);

/* Up to n bytes: buffered ones first, else one read from the connection (straight into buf
 * when n is at least the buffer's size). Returns the count, 0 at end of stream (also for
 * n == 0); -EINVAL for NULL r, or NULL buf with n > 0; the connection's read errors
 * (-ETIMEDOUT, -ECONNRESET, GORC_ENETCLOSED, ...). Go: Reader.Read. */
GORC_API ssize_t gorc_bufreader_read(gorc_bufreader *r, void *buf, size_t n);

/* The bytes up to and including the first delim, as a slice of the buffer in *out (valid
 * until the next call on r). Returns its length; at end of stream the last bytes without a
 * delim (then 0 once nothing is left). Errors: -ENOBUFS if the buffer fills up without a delim
 * (Go's ErrBufferFull; the bytes stay buffered, and gorc_bufreader_read takes them); -EINVAL
 * for NULL r or out; the connection's read errors. Go: Reader.ReadSlice(delim). */
GORC_API ssize_t gorc_bufreader_read_slice(gorc_bufreader *r, int delim, const char **out);

/* One line, without its "\n" or "\r\n", as a slice of the buffer in *line with its length in
 * *len (valid until the next call). Returns the number of bytes consumed from the stream (at
 * least 1 for a line, even an empty one), 0 at end of stream; a last line without a newline
 * is returned as a line. Errors: -ENOBUFS (a line longer than the buffer; its bytes stay
 * buffered), -EINVAL for NULL arguments, the connection's read errors. Go: Reader.ReadLine,
 * or a bufio.Scanner's lines. */
GORC_API ssize_t gorc_bufreader_read_line(gorc_bufreader *r, const char **line, size_t *len);

/* The next n bytes without consuming them, reading as needed, as a slice in *out. Returns n,
 * or fewer at end of stream. Errors: -ENOBUFS (n is larger than the buffer), -EINVAL for NULL
 * r or out, the connection's read errors. Go: Reader.Peek. */
GORC_API ssize_t gorc_bufreader_peek(gorc_bufreader *r, size_t n, const char **out);

/* Bytes buffered now (readable without touching the connection). 0 for NULL. Go:
 * Reader.Buffered. */
GORC_API size_t gorc_bufreader_buffered(const gorc_bufreader *r);

/* A writer on c with a buffer of size bytes (0: 4096; at least 16). Returns 0 and *out;
 * -EINVAL if out or c is NULL; -ENOMEM. Go: bufio.NewWriterSize(conn, size). */
GORC_API int gorc_bufwriter_new(gorc_bufwriter **out, gorc_conn *c, size_t size);

/* Flush what is buffered (errors are not reported: flush first to know), then free the
 * writer; the connection stays open. NULL is ignored. */
GORC_API void gorc_bufwriter_free(gorc_bufwriter *w);

/* Buffer n bytes, writing to the connection as the buffer fills; a write of at least the
 * buffer's size is sent directly after what is buffered. Returns n. Errors: -EINVAL for NULL
 * w, or NULL buf with n > 0; the connection's write errors (-EPIPE, -ECONNRESET, -ETIMEDOUT,
 * GORC_ENETCLOSED, ...), after which nothing more is written. Go: Writer.Write. */
GORC_API ssize_t gorc_bufwriter_write(gorc_bufwriter *w, const void *buf, size_t n);

/* gorc_bufwriter_write of a NUL-terminated string, and of printf-formatted text. Errors: as
 * gorc_bufwriter_write; -EINVAL also for a NULL string or format; -ENOMEM (formatted text
 * longer than the free buffer space and no memory for it). Go: Writer.WriteString,
 * fmt.Fprintf(w, ...). */
GORC_API ssize_t gorc_bufwriter_write_string(gorc_bufwriter *w, const char *s);
GORC_API ssize_t gorc_bufwriter_printf(gorc_bufwriter *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Send everything buffered. Returns 0. Errors: -EINVAL for NULL w; the connection's write
 * errors (sticky). Go: Writer.Flush. */
GORC_API int gorc_bufwriter_flush(gorc_bufwriter *w);

/* Bytes buffered and not yet written. 0 for NULL. Go: Writer.Buffered. */
GORC_API size_t gorc_bufwriter_buffered(const gorc_bufwriter *w);

#ifdef __cplusplus
}
#endif
#endif /* GORC_BUFIO_H */
