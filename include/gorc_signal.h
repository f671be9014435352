/*
 * gorc_signal.h - signals as channel values, and a context that a signal cancels (Go's
 * os/signal: Notify, Stop, Ignore, Reset, NotifyContext).
 *
 * The first call installs a handler for the signals asked for and starts one goroutine that
 * lives as long as the process (Go's signal package does the same). The handler only records
 * the signal and writes a byte to a pipe; the goroutine, woken through the poller, delivers
 * the signal number (an int) to every channel registered for it with a non-blocking send: a
 * channel that is full misses the signal, as in Go, so give it a buffer. A signal that arrives
 * again before the goroutine ran is delivered once. Goroutines blocked only on such channels
 * are waiting on I/O, so the deadlock detector never reports them.
 *
 * Only SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGPIPE, SIGWINCH, SIGCHLD, SIGALRM,
 * SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT and SIGURG may be asked for: the synchronous ones
 * (SIGSEGV, SIGBUS, SIGFPE, SIGILL) are the runtime's (stack overflow reports), SIGKILL and
 * SIGSTOP cannot be caught, and SIGPROF is kept for profiling.
 */
#ifndef GORC_SIGNAL_H
#define GORC_SIGNAL_H

#include "gorc_context.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Deliver each of the n signals in sigs to c (a channel of int; give it a buffer) from now on.
 * Calling it again for the same channel adds signals. Returns 0; -EINVAL if c is NULL, its
 * element size is not sizeof(int), n is 0, sigs is NULL, or a signal is not one of those
 * listed above; -ENOMEM; -EMFILE / -ENFILE (no descriptor for the pipe) or -EAGAIN (the
 * goroutine could not start) on the first call. c is retained until gorc_signal_stop.
 * Go: signal.Notify(c, sigs...). */
GORC_API int gorc_signal_notify(gorc_chan *c, const int *sigs, size_t n);

/* Stop delivering anything to c and drop the reference gorc_signal_notify took. A signal no
 * channel wants any more gets its default action back. Returns 0; -ENOENT if c was not
 * registered; -EINVAL for NULL. Go: signal.Stop(c). */
GORC_API int gorc_signal_stop(gorc_chan *c);

/* A child of parent that is cancelled, with cause -EINTR, when one of the n signals arrives.
 * Cancel it (gorc_ctx_cancel) to stop listening: the signals get their previous handling
 * back. Returns 0 and *out; -EINVAL (out or parent NULL, or as gorc_signal_notify); -ENOMEM;
 * -EMFILE, -ENFILE, -EAGAIN (as gorc_signal_notify). Go: signal.NotifyContext. */
GORC_API int gorc_signal_notify_ctx(gorc_ctx **out, gorc_ctx *parent, const int *sigs, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* GORC_SIGNAL_H */
