/*
 * gorc_context.h - cancellation, deadlines and request-scoped values (Go's context package),
 * the blocking calls that take a context, and task groups (errgroup, WaitGroup.Go).
 *
 * A gorc_ctx is reference counted like a channel: every constructor returns one reference,
 * gorc_ctx_retain adds one, gorc_ctx_release drops one. A context holds a reference to its
 * parent, so a parent may be released before its children: it lives on, for their values,
 * deadlines and cancellation, until the last child is gone. The background context is static:
 * retaining and releasing it does nothing.
 *
 * Cancellation happens once. A context is cancelled when gorc_ctx_cancel is called on it, when
 * its deadline passes, or when its parent is cancelled; the first of these wins and sets its
 * error, and every descendant is then cancelled with the same error and cause. Cancelling
 * works from any goroutine or thread, foreign threads included. As in Go, cancel a context you
 * made once you are done with it: a context with a deadline that is never cancelled keeps its
 * timer, and itself, until the deadline.
 *
 * Go's errors map to gorc's codes: context.Canceled is -ECANCELED, context.DeadlineExceeded is
 * -ETIMEDOUT (the code every gorc deadline gives). A cause is any negative error code the
 * canceller chooses; gorc_strerror gives the text of both.
 *
 * Blocking calls with a context (gorc_chan_send_ctx, ...) return the context's error when it
 * is cancelled first, and lose nothing: a value is either delivered or not taken, never half;
 * permits are either granted or not. When the operation and the cancellation race, either may
 * win, as in a Go select.
 */
#ifndef GORC_CONTEXT_H
#define GORC_CONTEXT_H

#include "gorc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gorc_ctx gorc_ctx;

/* ------------------------------------------------------------------------------------------
 * Making contexts
 * ---------------------------------------------------------------------------------------- */

/* The root: never cancelled, no deadline, no values. Static (retain and release do nothing).
 * Go: context.Background(). */
GORC_API gorc_ctx *gorc_ctx_background(void);

/* A child of parent that gorc_ctx_cancel cancels. Returns 0 and *out; -EINVAL if out or parent
 * is NULL; -ENOMEM. If parent is already cancelled, so is the child, at once. Go:
 * context.WithCancel, WithCancelCause (the cause is given to gorc_ctx_cancel_cause). */
GORC_API int gorc_ctx_with_cancel(gorc_ctx **out, gorc_ctx *parent);

/* A cancellable child that is also cancelled with -ETIMEDOUT at deadline (absolute, on
 * gorc_now()'s clock; a deadline not before now cancels it at once), or at its parent's
 * deadline if that is earlier. cause is what gorc_ctx_cause reports after the deadline (0:
 * -ETIMEDOUT). Returns 0 and *out; -EINVAL if out or parent is NULL or cause is positive;
 * -ENOMEM; -EAGAIN if the runtime (whose timers it needs) failed to start. Go:
 * context.WithDeadline, WithDeadlineCause. */
GORC_API int gorc_ctx_with_deadline(gorc_ctx **out, gorc_ctx *parent, int64_t deadline, int cause);

/* gorc_ctx_with_deadline(out, parent, gorc_now() + timeout, cause), saturating. Errors as
 * gorc_ctx_with_deadline. Go: context.WithTimeout, WithTimeoutCause. */
GORC_API int gorc_ctx_with_timeout(gorc_ctx **out, gorc_ctx *parent, int64_t timeout, int cause);

/* A child carrying value under key (compared as pointers: use the address of a static
 * variable of yours, as Go recommends an unexported key type). Cancelled with its parent; not
 * cancellable itself. Returns 0 and *out; -EINVAL if out, parent or key is NULL; -ENOMEM.
 * Go: context.WithValue. */
GORC_API int gorc_ctx_with_value(gorc_ctx **out, gorc_ctx *parent, const void *key, void *value);

/* A child with parent's values but none of its cancellation or deadline: never cancelled, no
 * deadline. Returns 0 and *out; -EINVAL if out or parent is NULL; -ENOMEM. Go:
 * context.WithoutCancel. */
GORC_API int gorc_ctx_without_cancel(gorc_ctx **out, gorc_ctx *parent);

/* Reference counting (see the top of this header). Retain returns c. Releasing the last
 * reference while goroutines are blocked on the context's done channel is a fatal error, as it
 * is for any channel. NULL is ignored. */
GORC_API gorc_ctx *gorc_ctx_retain(gorc_ctx *c);
GORC_API void gorc_ctx_release(gorc_ctx *c);

/* Cancel c (made by gorc_ctx_with_cancel, _with_deadline or _with_timeout) and every
 * descendant, with -ECANCELED and the given cause (0, or a negative error code; 0 means
 * -ECANCELED). Does nothing if c was cancelled already (its first error and cause stay).
 * Returns 0; -EINVAL if c is NULL or cannot be cancelled by itself (background, value and
 * without-cancel contexts), or cause is positive. Go: the CancelFunc and CancelCauseFunc. */
GORC_API int gorc_ctx_cancel(gorc_ctx *c);
GORC_API int gorc_ctx_cancel_cause(gorc_ctx *c, int cause);

/* ------------------------------------------------------------------------------------------
 * Asking a context
 * ---------------------------------------------------------------------------------------- */

/* A channel that is closed when c is cancelled, for gorc_select (a RECV case on it becomes
 * ready, with closed set). NULL for a context that can never be cancelled (background,
 * without-cancel and their value children): a NULL channel's case is never ready, as Go's
 * nil Done() channel. Owned by the context: valid while the caller holds a reference.
 * Go: ctx.Done(). */
GORC_API gorc_chan *gorc_ctx_done(gorc_ctx *c);

/* 0 while c is not cancelled, then -ECANCELED or -ETIMEDOUT. 0 for NULL. Go: ctx.Err(). */
GORC_API int gorc_ctx_err(gorc_ctx *c);

/* 0 while c is not cancelled, then the cause given to the cancel (or to the deadline), or the
 * error itself (-ECANCELED, -ETIMEDOUT) if none was given. 0 for NULL. Go: context.Cause. */
GORC_API int gorc_ctx_cause(gorc_ctx *c);

/* True and *deadline (gorc_now() clock) if c has a deadline; false (and *deadline untouched)
 * if not. deadline may be NULL. Go: ctx.Deadline(). */
GORC_API bool gorc_ctx_deadline(gorc_ctx *c, int64_t *deadline);

/* The value stored under key by the nearest gorc_ctx_with_value ancestor (c included), or
 * NULL. Go: ctx.Value(key). */
GORC_API void *gorc_ctx_value(gorc_ctx *c, const void *key);

/* ------------------------------------------------------------------------------------------
 * After-functions
 * ---------------------------------------------------------------------------------------- */

typedef struct gorc_ctx_after gorc_ctx_after;

/* Run fn(arg) in a new goroutine once c is cancelled (at once if it already is). For a context
 * that can never be cancelled, fn never runs. With out NULL nothing can stop it; otherwise *out
 * is a handle for gorc_ctx_after_stop, freed with gorc_ctx_after_free. Returns 0; -EINVAL if c
 * or fn is NULL; -ENOMEM. If the goroutine cannot be started when the context is cancelled
 * (out of memory), the process dies with "fatal error: out of memory starting a context
 * after-function". Go: context.AfterFunc. */
GORC_API int gorc_ctx_after_func(gorc_ctx_after **out, gorc_ctx *c, gorc_fn fn, void *arg);

/* Stop fn from being run: true if this call stopped it, false if it had already been started
 * or stopped. Go: the stop function AfterFunc returns. */
GORC_API bool gorc_ctx_after_stop(gorc_ctx_after *a);

/* Stop (as gorc_ctx_after_stop) and free the handle. NULL is ignored. */
GORC_API void gorc_ctx_after_free(gorc_ctx_after *a);

/* ------------------------------------------------------------------------------------------
 * Blocking calls with a context. Each returns the context's error (-ECANCELED, -ETIMEDOUT)
 * when the context is cancelled before the operation completes, and otherwise what the call
 * without a context returns. A NULL ctx is -EINVAL.
 * ---------------------------------------------------------------------------------------- */

/* gorc_chan_send, or the context's error, -ECANCELED or -ETIMEDOUT (the value was not sent).
 * Also -EPIPE (closed channel), -EINVAL (NULL ctx). Go: select { case c <- v: case <-ctx.Done(): }.
 */
GORC_API int gorc_chan_send_ctx(gorc_chan *c, const void *elem, gorc_ctx *ctx);

/* gorc_chan_recv, or the context's error, -ECANCELED or -ETIMEDOUT (nothing was taken; elem
 * untouched). Also -EPIPE (closed and drained), -EINVAL (NULL ctx). Go: select { case v := <-c:
 * case <-ctx.Done(): }. */
GORC_API int gorc_chan_recv_ctx(gorc_chan *c, void *elem, gorc_ctx *ctx);

/* gorc_select plus a case on ctx's done channel: the index of the case performed, or the
 * context's error, -ECANCELED or -ETIMEDOUT, if the context was chosen (no case was performed).
 * When cases and the cancellation are ready together the choice is random, as in Go. Also -EINVAL
 * (as gorc_select, or NULL ctx), -ENOMEM (more than 15 cases and no memory for the larger case
 * array). Go: select { ...; case <-ctx.Done(): }. */
GORC_API int gorc_select_ctx(gorc_case *cases, size_t n, gorc_ctx *ctx);

/* Sleep ns nanoseconds, or until ctx is cancelled: 0 after the full sleep, else the context's
 * error (-ECANCELED, -ETIMEDOUT). Also -EINVAL (NULL ctx). Go: select { case <-time.After(d): case
 * <-ctx.Done(): }. */
GORC_API int gorc_sleep_ctx(int64_t ns, gorc_ctx *ctx);

/* gorc_sema_acquire that gives up when ctx is cancelled: 0 with the n permits, or the
 * context's error (-ECANCELED, -ETIMEDOUT) without any. Also -EINVAL (n <= 0, NULL ctx). Go:
 * semaphore.Acquire(ctx, n). */
GORC_API int gorc_sema_acquire_ctx(gorc_sema *s, int64_t n, gorc_ctx *ctx);

/* gorc_mutex_lock that gives up when ctx is cancelled: 0 with the lock held, or the context's
 * error (-ECANCELED, -ETIMEDOUT) without it. An uncontended lock is taken at once; a
 * contended one is waited for by a helper goroutine that unlocks again if the caller has
 * given up, so a cancelled call never leaves the mutex held. Also -EINVAL (NULL m or ctx),
 * -ENOMEM or -EAGAIN (no helper could be started). Go: none (x/sync's semaphore.Acquire(ctx)
 * on a weight-1 semaphore is the usual stand-in). */
GORC_API int gorc_mutex_lock_ctx(gorc_mutex *m, gorc_ctx *ctx);

/* gorc_waitgroup_wait that gives up when ctx is cancelled: 0 once the counter is zero, or the
 * context's error (-ECANCELED, -ETIMEDOUT). A helper goroutine does the wait; after a cancel
 * it ends when the counter reaches zero. Also -EINVAL (NULL wg or ctx), -ENOMEM or -EAGAIN
 * (no helper could be started). Go: a select on ctx.Done() and a channel closed after
 * wg.Wait(). */
GORC_API int gorc_waitgroup_wait_ctx(gorc_waitgroup *wg, gorc_ctx *ctx);

/* ------------------------------------------------------------------------------------------
 * Task groups (for WaitGroup.Go, see gorc_waitgroup_go in gorc.h)
 * ---------------------------------------------------------------------------------------- */

typedef struct gorc_group gorc_group;

/* A task function of a group: returns 0 or a negative error code. ctx is the group's context,
 * cancelled once any task fails or the parent is cancelled. */
typedef int (*gorc_group_fn)(gorc_ctx *ctx, void *arg);

/* A group whose context is a cancellable child of parent (NULL: the background context).
 * Returns 0 and *out; -EINVAL if out is NULL; -ENOMEM. Go: errgroup.WithContext. */
GORC_API int gorc_group_new(gorc_group **out, gorc_ctx *parent);

/* The group's context (owned by the group, valid until gorc_group_free). Go: the ctx that
 * errgroup.WithContext returns. */
GORC_API gorc_ctx *gorc_group_ctx(gorc_group *g);

/* Run at most n tasks at once (n < 0: no limit, the default); gorc_group_go then waits for a
 * free slot. Returns 0; -EINVAL if g is NULL or n == 0; -EBUSY if tasks are running (Go
 * panics there). Go: Group.SetLimit. */
GORC_API int gorc_group_set_limit(gorc_group *g, int n);

/* Start fn(ctx, arg) in a new goroutine, waiting for a free slot if the group has a limit.
 * The first task to return non-zero sets the group's error and cancels its context. Returns
 * 0; -EINVAL if g or fn is NULL; -ENOMEM or -EAGAIN if the goroutine could not be started
 * (the task is then not run, and the error becomes the group's error too). Go: Group.Go. */
GORC_API int gorc_group_go(gorc_group *g, gorc_group_fn fn, void *arg);

/* As gorc_group_go, but -EAGAIN instead of waiting when the limit is reached. Go:
 * Group.TryGo (which returns false there). */
GORC_API int gorc_group_try_go(gorc_group *g, gorc_group_fn fn, void *arg);

/* Wait for every task started so far, then cancel the group's context; returns the first
 * task's error, or 0. -EINVAL for NULL. Go: Group.Wait. */
GORC_API int gorc_group_wait(gorc_group *g);

/* Wait (as gorc_group_wait) and free the group and its context's reference. NULL is ignored. */
GORC_API void gorc_group_free(gorc_group *g);

#ifdef __cplusplus
}
#endif
#endif /* GORC_CONTEXT_H */
