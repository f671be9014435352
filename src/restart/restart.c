/*
 * restart.c - restarts that drop nothing: handing the listening sockets to a new process.
 *
 * The old process starts the new one with posix_spawn and one extra descriptor, 3: its end of
 * a SOCK_SEQPACKET socket pair (GORC_RESTART_FD=3 in the environment says so). Over it the old
 * process sends one message: "GORC-RESTART 1\n" and a line per listener naming it (the address
 * the program asked gorc_restart_listen for), with the listeners' descriptors attached
 * (SCM_RIGHTS, in the same order; at most MAXFDS). The new process receives it in
 * gorc_restart_new, serves, and calls gorc_restart_ready, which sends "GORC-READY <pid>" back.
 * Only then does the old process close its exit channel: the program stops accepting (closing
 * its descriptors of the listening sockets) and drains.
 *
 * Why the sockets themselves and not SO_REUSEPORT: a socket's queue of connections the kernel
 * has completed but nobody accepted belongs to that socket. With SO_REUSEPORT each process has
 * its own socket and queue, the kernel spreads new connections over them, and when the old
 * process closes its socket every connection still queued there is reset. A passed descriptor
 * is the same socket: both processes accept from one queue while they overlap, and the queue
 * outlives the old process's descriptor. (Both register the socket with their own epoll; a new
 * connection wakes both and the loser's accept finds nothing, which gorc already retries.)
 *
 * Failure leaves the old process as it was: a program that cannot be started (posix_spawn
 * reports exec errors), a new process that exits or closes its end before it is ready (end of
 * stream on the pair), or one that is not ready in time (killed) make gorc_restart_upgrade
 * return an error and change nothing else. The new process is a child of the old one; it is
 * reaped only when it fails (a successful one outlives its parent and is re-parented).
 *
 * A new process that cannot receive the descriptors (EMFILE: the kernel then drops them and
 * sets MSG_CTRUNC) fails gorc_restart_new and must exit; its parent sees the pair close and
 * keeps serving.
 *
 * systemd: gorc_restart_new takes over LISTEN_FDS sockets (gorc_listeners_from_systemd) and
 * matches them to gorc_restart_listen's addresses by their bound address, so a socket-activated
 * service restarts the same way. When NOTIFY_SOCKET is set the old process, still the service's
 * main process, sends "MAINPID=<new>\nREADY=1" once the new one is ready (a plain datagram; no
 * libsystemd), and exits later: systemd follows the new main process without restarting
 * anything. With a PID file (opts.pid_file) the new process rewrites it when ready.
 *
 * State: r->mu (a gorc_mutex) protects the listener table; the upgrading flag and exited flag
 * are atomics taken with compare-and-swap, so one restart runs at a time and none after the
 * exit channel is closed.
 */
#include "gorc_restart.h"
#include "gorc_signal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define ENV_FD        "GORC_RESTART_FD"
#define CHILD_FD      3
#define MAXFDS        253 /* SCM_MAX_FD: descriptors one message may carry */
#define MAXMSG        65536
#define HELLO         "GORC-RESTART 1\n"
#define READY         "GORC-READY "
#define RECV_TIMEOUT  10 /* seconds the new process waits for its parent's message */
#define READY_DEFAULT (30 * GORC_SECOND)
#define MAXSYSTEMD    64

typedef struct entry {
    struct entry *next;
    char *name;        /* the address asked for; NULL for a systemd socket not asked for yet */
    gorc_listener *l;  /* r's own reference */
    bool given;        /* handed out by gorc_restart_listen */
    bool from_systemd; /* match by bound address, not name */
} entry;

struct gorc_restart {
    gorc_restart_opts o;
    char *path;
    char **argv;
    gorc_mutex mu; /* protects entries */
    entry *entries;
    int parent_fd; /* the pair's end from our parent, until ready; -1 none */
    bool ready_done;
    _Atomic bool upgrading, exited;
    _Atomic int successor;
    _Atomic int jobs;  /* restarts the signal started that have not returned */
    gorc_chan *exit;   /* closed once, when exited becomes true */
    gorc_chan *sigs;   /* signal channel, NULL if no signal is watched */
    gorc_chan *sigend; /* closed when the signal goroutine has finished */
};

static _Atomic bool one_per_process;

static void say(gorc_restart *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(gorc_restart *r, const char *fmt, ...)
{
    if (!r->o.verbose)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        dprintf(2, "gorc restart [%d]: %s\n", (int)getpid(), buf);
}

/* ------------------------------------------------------------------------------------------
 * Defaults: the program and its arguments, as this process was started
 * ---------------------------------------------------------------------------------------- */

static char *self_path(void)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = 0;
    return strdup(buf);
}

static void free_argv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static char **copy_argv(char *const *src)
{
    size_t n = 0;
    while (src[n])
        n++;
    char **v = calloc(n + 1, sizeof *v);
    for (size_t i = 0; v && i < n; i++)
        if ((v[i] = strdup(src[i])) == NULL) {
            free_argv(v);
            return NULL;
        }
    return v;
}

/* This process's arguments from /proc/self/cmdline (NUL-separated). */
static char **self_argv(void)
{
    FILE *f = fopen("/proc/self/cmdline", "re");
    if (f == NULL)
        return NULL;
    char *buf = malloc(MAXMSG);
    size_t len = buf ? fread(buf, 1, MAXMSG - 1, f) : 0;
    fclose(f);
    if (len == 0) {
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += buf[i] == 0;
    if (buf[len - 1] != 0)
        n++;
    char **v = calloc(n + 1, sizeof *v);
    size_t k = 0;
    for (size_t i = 0; v && i < len; i += strlen(buf + i) + 1)
        if ((v[k++] = strdup(buf + i)) == NULL) {
            free_argv(v);
            v = NULL;
        }
    free(buf);
    return v;
}

/* ------------------------------------------------------------------------------------------
 * The listener table
 * ---------------------------------------------------------------------------------------- */

static int add_entry(gorc_restart *r, const char *name, gorc_listener *l, bool from_systemd,
                     bool given)
{
    entry *e = calloc(1, sizeof *e);
    if (e == NULL || (name && (e->name = strdup(name)) == NULL)) {
        free(e);
        return -ENOMEM;
    }
    e->l = l;
    e->from_systemd = from_systemd;
    e->given = given;
    gorc_mutex_lock(&r->mu);
    e->next = r->entries;
    r->entries = e;
    gorc_mutex_unlock(&r->mu);
    return 0;
}

static bool unspecified(const gorc_addr *a)
{
    if (a->u.sa.sa_family == AF_INET)
        return a->u.in4.sin_addr.s_addr == htonl(INADDR_ANY);
    return a->u.sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&a->u.in6.sin6_addr);
}

static int port_of(const gorc_addr *a)
{
    if (a->u.sa.sa_family == AF_INET)
        return ntohs(a->u.in4.sin_port);
    return a->u.sa.sa_family == AF_INET6 ? ntohs(a->u.in6.sin6_port) : -1;
}

/* Is the socket l bound to what addr names? Same port, and the same address or both
 * unspecified (":8080" is served by a systemd socket on [::]:8080 or 0.0.0.0:8080). */
static bool bound_to(gorc_listener *l, const char *addr)
{
    gorc_addr want[8], have = {.len = sizeof have.u};
    int fd = gorc_listener_fd(l);
    if (fd < 0 || getsockname(fd, &have.u.sa, &have.len) != 0)
        return false;
    int n = gorc_resolve(want, 8, addr, 0);
    for (int i = 0; i < n; i++) {
        if (port_of(&want[i]) != port_of(&have))
            continue;
        if ((unspecified(&want[i]) || addr[0] == ':') && unspecified(&have))
            return true;
        if (want[i].u.sa.sa_family == AF_INET && have.u.sa.sa_family == AF_INET &&
            want[i].u.in4.sin_addr.s_addr == have.u.in4.sin_addr.s_addr)
            return true;
        if (want[i].u.sa.sa_family == AF_INET6 && have.u.sa.sa_family == AF_INET6 &&
            memcmp(&want[i].u.in6.sin6_addr, &have.u.in6.sin6_addr, 16) == 0)
            return true;
    }
    return false;
}

int gorc_restart_listen(gorc_restart *r, gorc_listener **out, const char *addr,
                        const gorc_listen_opts *opts)
{
    if (out)
        *out = NULL;
    if (r == NULL || out == NULL || addr == NULL)
        return -EINVAL;
    gorc_mutex_lock(&r->mu);
    entry *found = NULL;
    int rc = 0;
    for (entry *e = r->entries; e && !found; e = e->next)
        if (e->name && strcmp(e->name, addr) == 0)
            found = e;
    if (found && found->given)
        rc = -EEXIST;
    for (entry *e = r->entries; e && !found && rc == 0; e = e->next)
        if (e->from_systemd && e->name == NULL && bound_to(e->l, addr)) {
            if ((e->name = strdup(addr)) == NULL)
                rc = -ENOMEM;
            found = e;
        }
    if (found && rc == 0) {
        found->given = true;
        *out = gorc_listener_retain(found->l);
    }
    gorc_mutex_unlock(&r->mu);
    if (found || rc != 0)
        return rc;
    gorc_listener *l;
    rc = gorc_tcp_listen(&l, addr, opts);
    if (rc != 0)
        return rc;
    rc = add_entry(r, addr, gorc_listener_retain(l), false, true);
    if (rc != 0) {
        gorc_listener_release(l);
        gorc_listener_close(l);
        return rc;
    }
    *out = l;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * The new process's side: receive the listeners, report ready
 * ---------------------------------------------------------------------------------------- */

typedef struct recv_job {
    int fd;
    char *buf;
    ssize_t len;
    int fds[MAXFDS];
    int nfds;
    int err;
} recv_job;

static void *recv_blocking(void *arg)
{
    recv_job *j = arg;
    struct timeval tv = {.tv_sec = RECV_TIMEOUT};
    setsockopt(j->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    union {
        char b[CMSG_SPACE(sizeof(int) * MAXFDS)];
        struct cmsghdr align;
    } cm;
    struct iovec iov = {.iov_base = j->buf, .iov_len = MAXMSG - 1};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof cm.b};
    ssize_t n;
    do
        n = recvmsg(j->fd, &m, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        j->err = errno == EAGAIN || errno == EWOULDBLOCK ? -EPROTO : -errno;
        return NULL;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k && j->nfds < MAXFDS; i++)
            memcpy(&j->fds[j->nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    j->len = n;
    /* The kernel drops descriptors it cannot install (no free slot: EMFILE) and says so with
     * MSG_CTRUNC; whatever came is useless without the rest. */
    if (m.msg_flags & MSG_CTRUNC)
        j->err = -EMFILE;
    return NULL;
}

/* Parse "GORC-RESTART 1\n" and one name per line, one per descriptor. */
static int take_handover(gorc_restart *r, recv_job *j)
{
    int rc = j->err;
    if (rc == 0 && (j->len < (ssize_t)strlen(HELLO) || memcmp(j->buf, HELLO, strlen(HELLO)) != 0))
        rc = -EPROTO;
    char *p = j->buf + strlen(HELLO), *end = j->buf + (j->len > 0 ? j->len : 0);
    int i = 0;
    if (rc == 0)
        *end = 0;
    while (rc == 0 && p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL || i >= j->nfds) {
            rc = -EPROTO;
            break;
        }
        *nl = 0;
        gorc_listener *l;
        int fd = j->fds[i];
        j->fds[i++] = -1; /* the listener owns it now, even on failure */
        rc = gorc_listener_from_fd(&l, fd);
        if (rc == 0 && (rc = add_entry(r, p, l, false, false)) != 0)
            gorc_listener_close(l);
        p = nl + 1;
    }
    if (rc == 0 && i != j->nfds)
        rc = -EPROTO;
    for (int k = 0; k < j->nfds; k++)
        if (j->fds[k] >= 0)
            close(j->fds[k]);
    return rc;
}

static int inherit_from_parent(gorc_restart *r)
{
    const char *v = getenv(ENV_FD);
    if (v == NULL)
        return 0;
    int fd = atoi(v);
    unsetenv(ENV_FD); /* our own children must not take it for theirs */
    if (fd < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return -EPROTO;
    r->parent_fd = fd;
    recv_job j = {.fd = fd, .buf = malloc(MAXMSG)};
    if (j.buf == NULL)
        return -ENOMEM;
    gorc_blocking(recv_blocking, &j);
    int rc = take_handover(r, &j);
    free(j.buf);
    return rc;
}

static int inherit_from_systemd(gorc_restart *r)
{
    gorc_listener *ls[MAXSYSTEMD];
    int n = gorc_listeners_from_systemd(ls, MAXSYSTEMD, true);
    int rc = 0;
    for (int i = 0; i < n && i < MAXSYSTEMD; i++) {
        if (ls[i] == NULL)
            continue;
        if (rc == 0)
            rc = add_entry(r, NULL, ls[i], true, false);
        if (rc != 0)
            gorc_listener_close(ls[i]);
    }
    return rc;
}

static int write_pid_file(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
    int rc = write(fd, line, (size_t)n) == n ? 0 : -EIO;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int gorc_restart_ready(gorc_restart *r)
{
    if (r == NULL)
        return -EINVAL;
    gorc_mutex_lock(&r->mu);
    bool again = r->ready_done;
    r->ready_done = true;
    int fd = r->parent_fd;
    r->parent_fd = -1;
    gorc_mutex_unlock(&r->mu);
    if (again)
        return -EALREADY;
    int rc = 0;
    if (r->o.pid_file)
        rc = write_pid_file(r->o.pid_file);
    if (fd >= 0) {
        char msg[64];
        int n = snprintf(msg, sizeof msg, READY "%d", (int)getpid());
        /* One small datagram on a socket nobody else writes: never blocks for long. */
        ssize_t k = send(fd, msg, (size_t)n, MSG_NOSIGNAL);
        if (k != n && rc == 0)
            rc = -EPIPE;
        close(fd);
        say(r, "serving; told the parent (%s)", k == n ? "ok" : strerror(errno));
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * The old process's side: start the new one, hand over, wait until it is ready
 * ---------------------------------------------------------------------------------------- */

static bool env_skip(const char *kv)
{
    static const char *const drop[] = {ENV_FD "=", "LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES="};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        if (strncmp(kv, drop[i], strlen(drop[i])) == 0)
            return true;
    return false;
}

/* This environment without the handover variables, plus GORC_RESTART_FD=3. */
static char **child_env(void)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (env == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!env_skip(environ[i]))
            env[k++] = environ[i];
    env[k] = (char *)(ENV_FD "=3");
    return env;
}

/* The handover message and the descriptors it carries. */
static int build_hello(gorc_restart *r, char *buf, size_t cap, int *fds, int *nfds)
{
    size_t len = strlen(HELLO);
    memcpy(buf, HELLO, len);
    int n = 0, rc = 0;
    gorc_mutex_lock(&r->mu);
    for (entry *e = r->entries; e && rc == 0; e = e->next) {
        /* cppcheck-suppress variableScope ; name points into it below the if */
        char local[GORC_ADDRSTRLEN];
        const char *name = e->name;
        if (name == NULL) /* a systemd socket nobody asked for: pass it on by its address */
            name = gorc_listener_addr(e->l, local, sizeof local) > 0 ? local : NULL;
        int fd = gorc_listener_fd(e->l);
        if (name == NULL || fd < 0)
            continue; /* closed by the program already: nothing to hand over */
        size_t nl = strlen(name);
        if (n == MAXFDS || len + nl + 1 > cap || memchr(name, '\n', nl))
            rc = -E2BIG;
        else {
            memcpy(buf + len, name, nl);
            buf[len + nl] = '\n';
            len += nl + 1;
            fds[n++] = fd;
        }
    }
    gorc_mutex_unlock(&r->mu);
    *nfds = n;
    return rc < 0 ? rc : (int)len;
}

static int send_hello(int fd, const char *buf, size_t len, const int *fds, int nfds)
{
    union {
        char b[CMSG_SPACE(sizeof(int) * MAXFDS)];
        struct cmsghdr align;
    } cm;
    memset(&cm, 0, sizeof cm);
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        m.msg_control = cm.b;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    ssize_t k;
    do
        k = sendmsg(fd, &m, MSG_NOSIGNAL);
    while (k < 0 && errno == EINTR);
    return k == (ssize_t)len ? 0 : k < 0 ? -errno : -EIO;
}

typedef struct spawn_job {
    gorc_restart *r;
    int child_fd;
    char **env;
    pid_t pid;
    int err;
} spawn_job;

static void *spawn_blocking(void *arg)
{
    spawn_job *j = arg;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    /* dup2 to a different number clears close-on-exec on the copy; the pair's end is never
     * 3 itself (see upgrade). Signals: nothing blocked, every handler back to its default. */
    posix_spawn_file_actions_adddup2(&fa, j->child_fd, CHILD_FD);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    j->err = -posix_spawn(&j->pid, j->r->path, &fa, &at, j->r->argv, j->env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return NULL;
}

typedef struct reap_job {
    pid_t pid;
    bool kill_first;
    int status;
} reap_job;

/* A process that closed the handover may still be on its way out (writing its last words):
 * it gets EXIT_GRACE_MS before SIGKILL. One that is not ready in time is killed at once. */
#define EXIT_GRACE_MS 2000

static void *reap_blocking(void *arg)
{
    reap_job *j = arg;
    for (int ms = 0; !j->kill_first && ms < EXIT_GRACE_MS; ms += 10) {
        pid_t p = waitpid(j->pid, &j->status, WNOHANG);
        if (p == j->pid || (p < 0 && errno != EINTR))
            return NULL;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(j->pid, SIGKILL);
    while (waitpid(j->pid, &j->status, 0) < 0 && errno == EINTR) {
    }
    return NULL;
}

static void reap(gorc_restart *r, pid_t pid, bool kill_first)
{
    reap_job j = {.pid = pid, .kill_first = kill_first};
    gorc_blocking(reap_blocking, &j);
    if (WIFEXITED(j.status))
        say(r, "new process %d exited with status %d", (int)pid, WEXITSTATUS(j.status));
    else if (WIFSIGNALED(j.status))
        say(r, "new process %d died of signal %d", (int)pid, WTERMSIG(j.status));
}

/* Tell systemd (if it supervises us) that the new process is the main one now. */
static void notify_systemd(gorc_restart *r, int pid)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || (path[0] != '/' && path[0] != '@'))
        return;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n >= sizeof a.sun_path)
        return;
    memcpy(a.sun_path, path, n);
    if (path[0] == '@')
        a.sun_path[0] = 0;
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return;
    char msg[64];
    int len = snprintf(msg, sizeof msg, "MAINPID=%d\nREADY=1", pid);
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    if (sendto(s, msg, (size_t)len, MSG_NOSIGNAL, (struct sockaddr *)&a, alen) != len)
        say(r, "NOTIFY_SOCKET: %s", strerror(errno));
    close(s);
}

/* What a failed upgrade's error means, for messages. */
static const char *describe(int rc)
{
    switch (rc) {
    case -ECHILD:
        return "exited before it was ready";
    case -ETIMEDOUT:
        return "was not ready within the ready timeout: killed";
    case -EPROTO:
        return "answered something other than ready";
    default:
        return gorc_strerror(rc);
    }
}

/* Close the exit channel once. */
static void mark_exited(gorc_restart *r)
{
    bool f = false;
    if (atomic_compare_exchange_strong(&r->exited, &f, true))
        gorc_chan_close(r->exit);
}

/* The part of an upgrade after the new process started: hand over, wait for its word.
 * Closes fd. */
static int handover(gorc_restart *r, int fd, pid_t pid)
{
    char *buf = malloc(MAXMSG);
    int fds[MAXFDS], nfds = 0;
    int len = buf ? build_hello(r, buf, MAXMSG, fds, &nfds) : -ENOMEM;
    int rc = len < 0 ? len : send_hello(fd, buf, (size_t)len, fds, nfds);
    free(buf);
    if (rc != 0) {
        close(fd);
        return rc == -EPIPE || rc == -ECONNRESET ? -ECHILD : rc;
    }
    gorc_conn *c;
    if ((rc = gorc_conn_from_fd(&c, fd)) != 0)
        return rc;
    int64_t wait = r->o.ready_timeout > 0 ? r->o.ready_timeout : READY_DEFAULT;
    gorc_conn_set_read_deadline(c, gorc_now() + wait);
    char msg[64] = {0};
    ssize_t k = gorc_conn_read(c, msg, sizeof msg - 1);
    gorc_conn_close(c);
    if (k == -ETIMEDOUT)
        return -ETIMEDOUT;
    if (k <= 0)
        return -ECHILD; /* end of stream: it exited, or closed the pair, before it was ready */
    if (strncmp(msg, READY, strlen(READY)) != 0 || atoi(msg + strlen(READY)) != (int)pid)
        return -EPROTO;
    return 0;
}

int gorc_restart_upgrade(gorc_restart *r)
{
    if (r == NULL)
        return -EINVAL;
    if (atomic_load(&r->exited))
        return -EALREADY;
    bool f = false;
    if (!atomic_compare_exchange_strong(&r->upgrading, &f, true))
        return -EBUSY;
    if (atomic_load(&r->exited)) { /* stopped meanwhile */
        atomic_store(&r->upgrading, false);
        return -EALREADY;
    }
    /* posix_spawn reports exec errors too, but not where fork stands in for vfork (under
     * qemu-user, say, the child just exits 127); a missing program is the common mistake. */
    if (access(r->path, X_OK) != 0) {
        int err = -errno;
        atomic_store(&r->upgrading, false);
        say(r, "cannot start %s: %s; still serving", r->path, strerror(-err));
        return err;
    }
    int sp[2];
    int rc = socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == 0 ? 0 : -errno;
    if (rc == 0 && sp[1] == CHILD_FD) { /* dup2(3, 3) would leave it close-on-exec */
        int moved = fcntl(sp[1], F_DUPFD_CLOEXEC, CHILD_FD + 1);
        rc = moved >= 0 ? 0 : -errno;
        close(sp[1]);
        sp[1] = moved;
        if (rc != 0)
            close(sp[0]);
    }
    if (rc != 0) {
        atomic_store(&r->upgrading, false);
        return rc;
    }
    spawn_job j = {.r = r, .child_fd = sp[1], .env = child_env()};
    if (j.env == NULL)
        j.err = -ENOMEM;
    else
        gorc_blocking(spawn_blocking, &j);
    free(j.env);
    close(sp[1]);
    if (j.err != 0) {
        close(sp[0]);
        atomic_store(&r->upgrading, false);
        say(r, "cannot start %s: %s; still serving", r->path, strerror(-j.err));
        return j.err;
    }
    say(r, "started %s as %d", r->path, (int)j.pid);
    rc = handover(r, sp[0], j.pid); /* closes sp[0] */
    if (rc != 0) {
        reap(r, j.pid, rc != -ECHILD); /* one that closed the pair gets time to exit */
        atomic_store(&r->upgrading, false);
        say(r, "new process %d %s; still serving", (int)j.pid, describe(rc));
        return rc;
    }
    atomic_store(&r->successor, (int)j.pid);
    say(r, "new process %d is serving; draining", (int)j.pid);
    notify_systemd(r, (int)j.pid);
    mark_exited(r);
    atomic_store(&r->upgrading, false);
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * The signal, the exit channel, set-up and tear-down
 * ---------------------------------------------------------------------------------------- */

static void upgrade_job(void *arg)
{
    gorc_restart *r = arg;
    int rc = gorc_restart_upgrade(r);
    if (rc == -EBUSY)
        dprintf(2, "gorc restart [%d]: restart signal ignored: a restart is in progress\n",
                (int)getpid());
    else if (rc != 0 && rc != -EALREADY && !r->o.verbose) /* verbose has said it already */
        dprintf(2, "gorc restart [%d]: restart failed: the new process %s; still serving\n",
                (int)getpid(), describe(rc));
    atomic_fetch_sub(&r->jobs, 1);
}

static void watch_signal(void *arg)
{
    gorc_restart *r = arg;
    gorc_chan *sigs = r->sigs, *end = r->sigend;
    int sig;
    while (gorc_chan_recv(sigs, &sig) == 0) {
        /* Each restart in its own goroutine, so that a second signal during a restart is
         * seen (and refused with -EBUSY) instead of queueing a second restart behind it. */
        atomic_fetch_add(&r->jobs, 1);
        if (gorc_go(upgrade_job, r) != 0)
            upgrade_job(r);
    }
    gorc_chan_close(end);
}

int gorc_restart_new(gorc_restart **out, const gorc_restart_opts *opts)
{
    if (out)
        *out = NULL;
    gorc_restart_opts o = opts ? *opts : (gorc_restart_opts){0};
    if (out == NULL || o.ready_timeout < 0 ||
        (o.signal != 0 && o.signal != -1 && o.signal != SIGHUP && o.signal != SIGUSR1 &&
         o.signal != SIGUSR2))
        return -EINVAL;
    bool f = false;
    if (!atomic_compare_exchange_strong(&one_per_process, &f, true))
        return -EBUSY;
    gorc_restart *r = calloc(1, sizeof *r);
    int rc = r ? 0 : -ENOMEM;
    if (rc == 0) {
        r->o = o;
        r->parent_fd = -1;
        r->path = o.path ? strdup(o.path) : self_path();
        errno = 0;
        r->argv = o.argv ? copy_argv(o.argv) : self_argv();
        if (r->argv == NULL && (errno == EMFILE || errno == ENFILE))
            rc = -errno; /* /proc/self/cmdline could not be opened */
        r->o.pid_file = o.pid_file ? strdup(o.pid_file) : NULL;
        if (rc == 0 && (r->path == NULL || r->argv == NULL || (o.pid_file && !r->o.pid_file)))
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = gorc_chan_new(&r->exit, 0, 0);
    if (rc == 0)
        rc = inherit_from_parent(r);
    if (rc == 0 && r->parent_fd < 0)
        rc = inherit_from_systemd(r);
    if (rc == 0 && o.signal >= 0) {
        int sig = o.signal ? o.signal : SIGUSR2;
        rc = gorc_chan_new(&r->sigs, sizeof(int), 1);
        if (rc == 0 && (rc = gorc_chan_new(&r->sigend, 0, 0)) != 0) {
            gorc_chan_release(r->sigs);
            r->sigs = NULL;
        }
        if (rc == 0 && (rc = gorc_signal_notify(r->sigs, &sig, 1)) == 0 &&
            (rc = gorc_go(watch_signal, r)) != 0)
            gorc_signal_stop(r->sigs);
        if (rc != 0 && r->sigs) {
            gorc_chan_release(r->sigs);
            gorc_chan_release(r->sigend);
            r->sigs = r->sigend = NULL;
        }
    }
    if (rc != 0) {
        if (r)
            say(r, "set-up failed: %s", gorc_strerror(rc));
        gorc_restart_free(r);
        if (r == NULL)
            atomic_store(&one_per_process, false);
        return rc;
    }
    *out = r;
    return 0;
}

int gorc_restart_has_parent(gorc_restart *r)
{
    if (r == NULL)
        return -EINVAL;
    gorc_mutex_lock(&r->mu);
    int has = r->parent_fd >= 0;
    gorc_mutex_unlock(&r->mu);
    return has;
}

gorc_chan *gorc_restart_exit(gorc_restart *r)
{
    return r ? r->exit : NULL;
}

int gorc_restart_successor(gorc_restart *r)
{
    return r ? atomic_load(&r->successor) : -EINVAL;
}

/* Stop watching the signal and wait for the watcher to finish. */
static void stop_signal(gorc_restart *r)
{
    gorc_mutex_lock(&r->mu);
    gorc_chan *sigs = r->sigs, *end = r->sigend;
    r->sigs = r->sigend = NULL;
    gorc_mutex_unlock(&r->mu);
    if (sigs == NULL)
        return;
    gorc_signal_stop(sigs);
    gorc_chan_close(sigs);
    gorc_chan_recv(end, NULL);
    gorc_chan_release(sigs);
    gorc_chan_release(end);
}

int gorc_restart_stop(gorc_restart *r)
{
    if (r == NULL)
        return -EINVAL;
    stop_signal(r);
    /* Wait for a restart in progress, then make sure none starts. */
    bool f = false;
    while (!atomic_compare_exchange_strong(&r->upgrading, &f, true)) {
        f = false;
        gorc_sleep(GORC_MILLISECOND);
    }
    mark_exited(r);
    atomic_store(&r->upgrading, false);
    return 0;
}

void gorc_restart_free(gorc_restart *r)
{
    if (r == NULL)
        return;
    if (r->exit)
        gorc_restart_stop(r);
    else
        stop_signal(r);
    while (atomic_load(&r->jobs) > 0) /* signal-started restarts still returning */
        gorc_sleep(GORC_MILLISECOND);
    for (entry *e = r->entries, *n; e; e = n) {
        n = e->next;
        if (!e->given)
            gorc_listener_close(e->l); /* nobody asked for it: it would never be closed */
        else
            gorc_listener_release(e->l);
        free(e->name);
        free(e);
    }
    if (r->parent_fd >= 0)
        close(r->parent_fd);
    if (r->exit)
        gorc_chan_release(r->exit);
    free(r->path);
    free_argv(r->argv);
    free((char *)r->o.pid_file);
    free(r);
    atomic_store(&one_per_process, false);
}
