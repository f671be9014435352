/*
 * gorc_restart.h - restarts that drop nothing: a running server hands its listening sockets to
 * a new copy of itself (a new binary, or the same one with a new configuration), which starts
 * serving on the very same sockets; the old process stops accepting only once the new one
 * says it is serving, finishes what it has in progress and exits. docs/restart.md has the
 * design, the sequence and what is preserved.
 *
 * Go's standard library has no equivalent; the shape is that of cloudflare/tableflip's
 * Upgrader (New, Listen, Ready, Upgrade, Exit, Stop), the anchors are nginx's binary upgrade
 * (SIGUSR2) and Envoy's hot restart.
 *
 *     gorc_restart *r;
 *     gorc_restart_new(&r, NULL);                 // the handover from a parent, if any
 *     gorc_listener *l;
 *     gorc_restart_listen(r, &l, ":8080", NULL);   // inherited, from systemd, or new
 *     ... start serving on l ...
 *     gorc_restart_ready(r);                       // the parent may stop accepting now
 *     gorc_chan_recv(gorc_restart_exit(r), NULL);  // SIGUSR2: a successor is serving
 *     gorc_http_server_shutdown(server, gorc_now() + 30 * GORC_SECOND);
 *
 * The listening sockets themselves are passed (SCM_RIGHTS over a Unix socket pair the new
 * process inherits as descriptor 3), not re-bound with SO_REUSEPORT: both processes accept
 * from one kernel queue, so no connection waiting in it is lost when the old one closes its
 * descriptor. Established connections stay with the process that accepted them until they
 * end (docs/restart.md says why they are not handed over).
 *
 * One gorc_restart per process. Its calls are safe from any goroutine.
 */
#ifndef GORC_RESTART_H
#define GORC_RESTART_H

#include "gorc.h"
#include "gorc_net.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gorc_restart gorc_restart;

/* Options for gorc_restart_new. Zero-initialise; NULL means all defaults. */
typedef struct gorc_restart_opts {
    /* The program a restart starts: default the file this process was started from, by the
     * path it had then (so a binary replaced at that path is the one started). */
    const char *path;
    /* Its arguments, NULL-terminated, argv[0] first: default this process's own
     * (/proc/self/cmdline). Copied. */
    char *const *argv;
    /* Written (atomically: a temporary file renamed) with the serving process's PID by
     * gorc_restart_ready, so a supervisor following a PID file finds the new process. */
    const char *pid_file;
    /* The signal that starts a restart: 0 = SIGUSR2 (nginx's binary upgrade), -1 = none, or
     * SIGHUP, SIGUSR1. Each arrival runs gorc_restart_upgrade; one arriving while a restart
     * is in progress is ignored (and says so on stderr). */
    int signal;
    /* How long gorc_restart_upgrade waits for the new process to report it is serving
     * before killing it (default 30 s). */
    int64_t ready_timeout;
    /* Print what restarts do (started, ready, failed and why) on stderr. */
    bool verbose;
} gorc_restart_opts;

/* Set up restarts for this process. When it was started by gorc_restart_upgrade, receives
 * the listening sockets its parent handed over (the call waits at most 10 s for them). When
 * systemd started it with socket activation (LISTEN_FDS), takes those sockets over so they
 * can be handed on (and removes LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES). Returns 0 and *out;
 * -EINVAL (out NULL, a bad signal, a negative ready_timeout); -EBUSY (this process has one
 * already); -ENOMEM; -EMFILE / -ENFILE (no descriptor free to receive the parent's sockets:
 * the kernel dropped them, so this process cannot serve them; exit and the parent keeps
 * serving); -EPROTO (the parent's message was malformed, or none came in time); the errors
 * of gorc_signal_notify. Go: tableflip.New. */
GORC_API int gorc_restart_new(gorc_restart **out, const gorc_restart_opts *opts);

/* 1 if this process was started by a restart (it has a parent waiting for
 * gorc_restart_ready), 0 if not, -EINVAL for NULL. Go: Upgrader.HasParent. */
GORC_API int gorc_restart_has_parent(gorc_restart *r);

/* A TCP listener on addr (as gorc_tcp_listen) that restarts hand over: the one inherited
 * from the parent or from systemd for that address if there is one (opts are then the
 * inherited socket's, not these), else a new one. The address is matched as written
 * ("127.0.0.1:8080" and ":8080" are different listeners), and against the local address of a
 * systemd socket. Returns 0 and *out (the caller's reference; r keeps its own); -EINVAL (NULL
 * argument); -EEXIST (this address was asked for already); -ENOMEM; the errors of
 * gorc_tcp_listen. Go: Upgrader.Listen("tcp", addr). */
GORC_API int gorc_restart_listen(gorc_restart *r, gorc_listener **out, const char *addr,
                                 const gorc_listen_opts *opts);

/* This process is serving: tell the parent (which then stops accepting and drains) and
 * write the PID file. Call it once every listener is being served. Without a parent it only
 * writes the PID file. Returns 0; -EINVAL (NULL); -EALREADY (called before); -EPIPE (the
 * parent is gone or gave up waiting: it is not draining, so this process may be the second
 * one serving); -EACCES, -ENOENT, -ENAMETOOLONG, -EIO, ... (creating or renaming the PID
 * file). Go: Upgrader.Ready. */
GORC_API int gorc_restart_ready(gorc_restart *r);

/* Restart: start the new process (opts.path with opts.argv, this environment, its stdin,
 * stdout and stderr), hand it the listeners and wait until it reports it is serving. Then
 * closes the exit channel and returns 0: this process should stop accepting, finish what is
 * in progress and exit. Under systemd (NOTIFY_SOCKET) it tells the service manager the new
 * process is the main one (MAINPID=, READY=1). On any failure the new process is stopped if
 * it still runs and this process keeps serving as before: -ENOENT, -EACCES, -ENOEXEC (the
 * program cannot be started; errors of posix_spawn); -ECHILD (it exited or closed the
 * handover before it was ready); -ETIMEDOUT (not ready within ready_timeout; it was killed);
 * -EPROTO (it answered something else); -E2BIG (more than 253 listeners); -EBUSY (a restart
 * is in progress); -EALREADY (this process has handed over already, or
 * gorc_restart_stop was called); -EINVAL (NULL); -EMFILE, -ENFILE, -ENOMEM. Go:
 * Upgrader.Upgrade. */
GORC_API int gorc_restart_upgrade(gorc_restart *r);

/* The channel closed when this process should drain and exit: a new process is serving
 * (gorc_restart_upgrade succeeded) or gorc_restart_stop was called. Receive on it, or select;
 * it is valid until gorc_restart_free. This is the hook for long-lived connections: tell
 * them to go (or let them run out) when it closes. NULL for NULL. Go: Upgrader.Exit. */
GORC_API gorc_chan *gorc_restart_exit(gorc_restart *r);

/* The PID of the process that took over (0 while none did, -EINVAL for NULL). */
GORC_API int gorc_restart_successor(gorc_restart *r);

/* No more restarts: the signal is no longer watched and the exit channel is closed (so the
 * same drain path serves a plain stop, e.g. on SIGTERM). A restart in progress completes
 * first. Returns 0, -EINVAL (NULL). Go: Upgrader.Stop. */
GORC_API int gorc_restart_stop(gorc_restart *r);

/* Release r (after gorc_restart_stop, or after a handover). Listeners it gave out are the
 * callers'; its own references to them are dropped. NULL is ignored. */
GORC_API void gorc_restart_free(gorc_restart *r);

#ifdef __cplusplus
}
#endif
#endif /* GORC_RESTART_H */
