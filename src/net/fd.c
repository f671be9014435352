/*
 * fd.c - non-blocking descriptors that block goroutines, not threads (Go's internal/poll.FD).
 *
 * Every operation first tries the system call on the non-blocking descriptor; only when the
 * kernel says EAGAIN does the goroutine park on the poll descriptor (netpoll.c) until the
 * poller reports readiness, then it tries again. A read that finds data costs one system call
 * and no poller round trip, which is what keeps request/response traffic cheap; on TCP the
 * kernel also says when a read drained the socket (TCP_INQ), and the next read then skips the
 * system call that would only have returned EAGAIN (read_inq).
 *
 * Closing is the hard part. A goroutine may be blocked reading while another closes the
 * connection, and the descriptor number must not be closed (and reused by an unrelated open)
 * while any operation might still pass it to the kernel. So, as Go's fdMutex does, one 64-bit
 * word counts the operations in progress and holds a closed bit, plus a read lock and a write
 * lock (so that two readers never wait on one poll descriptor direction) with their queues of
 * waiters. Close sets the closed bit - no operation starts after that - evicts the poll
 * descriptor, which wakes every blocked operation with -EBADF, and the last operation to leave
 * closes the descriptor. Close then waits until that has happened, so when it returns the
 * descriptor is gone, and every goroutine that was blocked on it has been woken.
 *
 * Goroutines waiting for a lock (or for close to finish) sleep in a small hashed table of
 * semaphores keyed by address, as Go's sema.go does: a descriptor carries three 32-bit counters
 * and no wait queue of its own, which matters when a server holds many idle connections.
 *
 * Cancellation. Read, write, accept and connect take an optional gorc__fd_cancel: the context
 * of a net.c _ctx call, as a runtime cancellation source. The operation tries its system call
 * first, as always; only before its first wait does it register a hook with the source (one
 * hook add and one remove per call that waits; nothing for one that does not). The hook runs
 * under the source's lock when the context is cancelled and interrupts the poll descriptor's
 * direction (gorc__pd_interrupt), which wakes the waiter as an expired deadline would; the wait
 * returns -ECANCELED. Before the operation gives up its direction lock it unhooks - once
 * gorc__cancel_unhook returns, the hook is not running and never will - and, if the hook has
 * fired, lowers the interruption again and turns -ECANCELED into the source's error. So the
 * interruption never outlives the call or reaches another operation (the direction lock keeps
 * other operations out meanwhile), and the deadlines the user set are never touched. The
 * descriptor cannot go away while the hook may run: the operation holds a reference.
 * What changed here for this: the cx parameter, arm / fd_wait at the wait points, disarm
 * before each unlock, and write_locked's count of what it wrote.
 *
 * SIGPIPE: socket writes use send(MSG_NOSIGNAL); writes to other descriptors (pipes wrapped
 * with gorc_conn_from_fd) block SIGPIPE around the call and consume the one they caused. A
 * write to a closed peer returns -EPIPE and the process-wide disposition is left alone.
 */
#include "net/fd.h"

#include "net/simnet.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <string.h>
#include <unistd.h>

#define MAXRW ((size_t)1 << 30) /* larger transfers are split, as Go does */

/* ------------------------------------------------------------------------------------------
 * Semaphores keyed by address (Go's semacquire / semrelease)
 * ---------------------------------------------------------------------------------------- */

typedef struct semwaiter {
    struct semwaiter *next;
    _Atomic uint32_t *addr;
    gorc__g *g;
} semwaiter;

#define SEMTAB 61

static struct semroot {
    gorc__lock lock;
    _Atomic uint32_t nwait;
    semwaiter *head, *tail;
} __attribute__((aligned(64))) semtab[SEMTAB];

static struct semroot *semroot(_Atomic uint32_t *addr)
{
    return &semtab[((uintptr_t)addr >> 3) % SEMTAB];
}

static bool cansem(_Atomic uint32_t *addr)
{
    uint32_t v = atomic_load(addr);
    while (v > 0)
        if (atomic_compare_exchange_weak(addr, &v, v - 1))
            return true;
    return false;
}

static void semroot_unlock(void *arg)
{
    gorc__lock_release(&((struct semroot *)arg)->lock);
}

static void sem_acquire(_Atomic uint32_t *addr)
{
    if (cansem(addr))
        return;
    struct semroot *r = semroot(addr);
    for (;;) {
        gorc__lock_acquire(&r->lock);
        atomic_fetch_add(&r->nwait, 1);
        if (cansem(addr)) {
            atomic_fetch_sub(&r->nwait, 1);
            gorc__lock_release(&r->lock);
            return;
        }
        semwaiter w = {.next = NULL, .addr = addr, .g = gorc__getg()};
        if (r->tail)
            r->tail->next = &w;
        else
            r->head = &w;
        r->tail = &w;
        gorc__park(GORC__W_SEMA, semroot_unlock, r);
        if (cansem(addr))
            return;
    }
}

/* Never dereferences addr after the increment: the owner may free it as soon as it sees the
 * count (close hands the descriptor's memory back this way). */
static void sem_release(_Atomic uint32_t *addr)
{
    atomic_fetch_add(addr, 1);
    struct semroot *r = semroot(addr);
    if (atomic_load(&r->nwait) == 0)
        return;
    gorc__lock_acquire(&r->lock);
    semwaiter *prev = NULL, *w = r->head;
    while (w && w->addr != addr) {
        prev = w;
        w = w->next;
    }
    gorc__g *g = NULL;
    if (w) {
        if (prev)
            prev->next = w->next;
        else
            r->head = w->next;
        if (r->tail == w)
            r->tail = prev;
        atomic_fetch_sub(&r->nwait, 1);
        g = w->g;
    }
    gorc__lock_release(&r->lock);
    if (g)
        gorc__ready(g);
}

/* ------------------------------------------------------------------------------------------
 * The descriptor mutex (Go's fdMutex)
 * ---------------------------------------------------------------------------------------- */

#define MU_CLOSED  ((uint64_t)1 << 0)
#define MU_RLOCK   ((uint64_t)1 << 1)
#define MU_WLOCK   ((uint64_t)1 << 2)
#define MU_REF     ((uint64_t)1 << 3)
#define MU_REFMASK (((uint64_t)1 << 20) - 1) << 3
#define MU_RWAIT   ((uint64_t)1 << 23)
#define MU_RMASK   (((uint64_t)1 << 20) - 1) << 23
#define MU_WWAIT   ((uint64_t)1 << 43)
#define MU_WMASK   (((uint64_t)1 << 20) - 1) << 43

static void destroy(gorc__fd *fd)
{
    gorc__pd_close(fd->pd);
    if (fd->sim)
        gorc__simnet_close(fd->sim);
    close(fd->sysfd);
    fd->sysfd = -1;
    sem_release(&fd->csema); /* the last touch: Close may free fd now */
}

bool gorc__fd_incref(gorc__fd *fd)
{
    uint64_t old = atomic_load(&fd->mu);
    for (;;) {
        if (old & MU_CLOSED)
            return false;
        uint64_t nv = old + MU_REF;
        if ((nv & MU_REFMASK) == 0)
            gorc__fatal("too many concurrent operations on a net descriptor");
        if (atomic_compare_exchange_weak(&fd->mu, &old, nv))
            return true;
    }
}

void gorc__fd_decref(gorc__fd *fd)
{
    uint64_t nv = atomic_fetch_sub(&fd->mu, MU_REF) - MU_REF;
    if ((nv & (MU_CLOSED | MU_REFMASK)) == MU_CLOSED)
        destroy(fd);
}

static bool incref_and_close(gorc__fd *fd)
{
    uint64_t old = atomic_load(&fd->mu);
    for (;;) {
        if (old & MU_CLOSED)
            return false;
        uint64_t nv = ((old | MU_CLOSED) + MU_REF) & ~(MU_RMASK | MU_WMASK);
        if (atomic_compare_exchange_weak(&fd->mu, &old, nv))
            break;
    }
    /* Wake every lock waiter: they will see the closed bit. */
    for (; old & MU_RMASK; old -= MU_RWAIT)
        sem_release(&fd->rsema);
    for (; old & MU_WMASK; old -= MU_WWAIT)
        sem_release(&fd->wsema);
    return true;
}

static bool rwlock(gorc__fd *fd, bool read)
{
    uint64_t bit = read ? MU_RLOCK : MU_WLOCK;
    uint64_t wait = read ? MU_RWAIT : MU_WWAIT;
    _Atomic uint32_t *sema = read ? &fd->rsema : &fd->wsema;
    uint64_t old = atomic_load_explicit(&fd->mu, memory_order_relaxed);
    for (;;) {
        if (old & MU_CLOSED)
            return false;
        uint64_t nv = (old & bit) ? old + wait : (old | bit) + MU_REF;
        if (!atomic_compare_exchange_weak_explicit(&fd->mu, &old, nv, memory_order_acquire,
                                                   memory_order_relaxed))
            continue;
        if (!(old & bit))
            return true;
        sem_acquire(sema); /* the unlocker took our wait count off */
        old = atomic_load_explicit(&fd->mu, memory_order_relaxed);
    }
}

static void rwunlock(gorc__fd *fd, bool read)
{
    uint64_t bit = read ? MU_RLOCK : MU_WLOCK;
    uint64_t wait = read ? MU_RWAIT : MU_WWAIT;
    uint64_t mask = read ? MU_RMASK : MU_WMASK;
    uint64_t old = atomic_load_explicit(&fd->mu, memory_order_relaxed);
    for (;;) {
        uint64_t nv = (old & ~bit) - MU_REF;
        if (old & mask)
            nv -= wait;
        if (atomic_compare_exchange_weak_explicit(&fd->mu, &old, nv, memory_order_release,
                                                  memory_order_relaxed)) {
            if (old & mask)
                sem_release(read ? &fd->rsema : &fd->wsema);
            if ((nv & (MU_CLOSED | MU_REFMASK)) == MU_CLOSED)
                destroy(fd);
            return;
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * Life cycle
 * ---------------------------------------------------------------------------------------- */

int gorc__fd_init(gorc__fd *fd, int sysfd, int kind, int family, bool ours)
{
    atomic_init(&fd->mu, 0);
    atomic_init(&fd->rsema, 0);
    atomic_init(&fd->wsema, 0);
    atomic_init(&fd->csema, 0);
    fd->sysfd = sysfd;
    fd->kind = (uint8_t)kind;
    bool tcp = ours && kind == GORC__FD_STREAM && (family == AF_INET || family == AF_INET6);
    int one = 1;
    atomic_init(&fd->shortcut, tcp && setsockopt(sysfd, SOL_TCP, TCP_INQ, &one, sizeof one) == 0);
    fd->drained = false;
    fd->sim = NULL;
    return gorc__pd_open(&fd->pd, sysfd);
}

int gorc__fd_init_sim(gorc__fd *fd, int sysfd, int kind, gorc__sep *sim)
{
    atomic_init(&fd->mu, 0);
    atomic_init(&fd->rsema, 0);
    atomic_init(&fd->wsema, 0);
    atomic_init(&fd->csema, 0);
    fd->sysfd = sysfd;
    fd->kind = (uint8_t)kind;
    atomic_init(&fd->shortcut, false);
    fd->drained = false;
    fd->sim = sim;
    int rc = gorc__pd_open_virtual(&fd->pd, sysfd);
    if (rc == 0)
        gorc__simnet_attach(sim, fd->pd);
    return rc;
}

int gorc__fd_close(gorc__fd *fd)
{
    if (!incref_and_close(fd))
        return -EBADF;
    gorc__pd_evict(fd->pd);
    gorc__fd_decref(fd); /* the last operation out destroys */
    sem_acquire(&fd->csema);
    return 0;
}

int gorc__fd_raw(gorc__fd *fd)
{
    if (!gorc__fd_incref(fd))
        return -EBADF;
    int s = fd->sysfd;
    if (atomic_exchange(&fd->shortcut, false) && fd->sim == NULL) {
        int zero = 0;
        setsockopt(s, SOL_TCP, TCP_INQ, &zero, sizeof zero);
    }
    gorc__fd_decref(fd);
    return s;
}

int gorc__fd_set_deadline(gorc__fd *fd, int64_t when, int mode)
{
    if (!gorc__fd_incref(fd))
        return -EBADF;
    gorc__pd_set_deadline(fd->pd, when, mode);
    gorc__fd_decref(fd);
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Cancellation (see the top of the file)
 * ---------------------------------------------------------------------------------------- */

/* The source is being cancelled (its lock held): interrupt the waiting direction. Short, no
 * parking, only the poll descriptor's lock (which nobody parks under): a hook may do that. */
static void cancel_fn(gorc__cancel_hook *h, gorc__cancel *src, gorc__cancel_later *later)
{
    (void)src;
    (void)later;
    gorc__fd_cancel *cx = (gorc__fd_cancel *)(void *)h;
    gorc__pd_interrupt(cx->pd, cx->mode, true);
}

void gorc__fd_cancel_init(gorc__fd_cancel *cx, gorc__cancel *src)
{
    *cx = (gorc__fd_cancel){.h = {.fn = cancel_fn}, .src = src};
}

/* Before the operation's first wait: watch cx's source from now on. */
static void arm(gorc__fd *fd, int mode, gorc__fd_cancel *cx)
{
    if (cx == NULL || cx->src == NULL || cx->armed)
        return;
    cx->pd = fd->pd;
    cx->mode = mode;
    cx->armed = true;
    gorc__cancel_hook_add(cx->src, &cx->h); /* interrupts at once if cancelled already */
}

static int fd_wait(gorc__fd *fd, int mode, gorc__fd_cancel *cx)
{
    arm(fd, mode, cx);
    return gorc__pd_wait(fd->pd, mode);
}

/* Before the operation's unlock: stop watching; if the hook fired, end the interruption and
 * report the source's error instead of the interruption's. Returns the operation's result. */
static ssize_t disarm(gorc__fd_cancel *cx, ssize_t r)
{
    if (cx == NULL || !cx->armed)
        return r;
    cx->armed = false;
    if (gorc__cancel_unhook(cx->src, &cx->h))
        return r; /* never fired */
    gorc__pd_interrupt(cx->pd, cx->mode, false);
    return r == -ECANCELED ? gorc__cancel_err(cx->src) : r;
}

/* ------------------------------------------------------------------------------------------
 * Reading and writing
 * ---------------------------------------------------------------------------------------- */

/* The read path of a TCP socket of our own. With TCP_INQ the kernel tells, with every read,
 * how many bytes are left in the receive queue. When none are, the socket is drained, and any
 * data that arrives later raises a new edge-triggered event (tcp_data_ready): so the next read
 * waits for the poller first instead of spending a system call to learn EAGAIN. Request /
 * response traffic saves one system call in three this way. TCP_INQ reports a pending FIN as
 * one byte left; a reset or out-of-band data is reported by the event that announced it as
 * EPOLLERR / EPOLLHUP / EPOLLPRI, which the poller records in pd->unusual before it readies
 * anyone - so either the reader sees the flag and reads again, or the event is still to come
 * and will wake it. Sockets the user wrapped or reached directly (gorc_conn_from_fd,
 * gorc_conn_fd) never take the shortcut: who knows what was configured on them. */
static ssize_t read_inq(gorc__fd *fd, void *buf, size_t n)
{
    struct iovec iov = {.iov_base = buf, .iov_len = n};
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } cbuf;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    m.msg_control = cbuf.b;
    m.msg_controllen = sizeof cbuf.b;
    ssize_t r = recvmsg(fd->sysfd, &m, 0);
    if (r <= 0)
        return r;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    int inq = 1;
    if (c && c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ)
        memcpy(&inq, CMSG_DATA(c), sizeof inq);
    fd->drained = inq == 0 && !atomic_load_explicit(&fd->pd->unusual, memory_order_acquire);
    return r;
}

static ssize_t read_locked(gorc__fd *fd, void *buf, size_t n, gorc__fd_cancel *cx)
{
    int err = gorc__pd_check(fd->pd, 'r');
    if (err)
        return err;
    if (n == 0 && fd->kind == GORC__FD_STREAM)
        return 0;
    if (n > MAXRW)
        n = MAXRW;
    for (;;) {
        bool inq = atomic_load_explicit(&fd->shortcut, memory_order_relaxed);
        if (fd->drained) {
            fd->drained = false;
            if (inq) {
                err = fd_wait(fd, 'r', cx);
                if (err)
                    return err;
            }
        }
        ssize_t r = GORC__UNLIKELY(fd->sim) ? gorc__simnet_read(fd->sim, buf, n)
                    : inq                   ? read_inq(fd, buf, n)
                                            : read(fd->sysfd, buf, n);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -errno;
        err = fd_wait(fd, 'r', cx);
        if (err)
            return err;
    }
}

int gorc__fd_wait_read(gorc__fd *fd)
{
    if (!rwlock(fd, true))
        return -EBADF;
    int err = gorc__pd_check(fd->pd, 'r');
    if (err == 0 && fd->drained && atomic_load_explicit(&fd->shortcut, memory_order_relaxed)) {
        fd->drained = false; /* the wait below is the one the next read would have done */
        err = gorc__pd_wait(fd->pd, 'r');
    }
    rwunlock(fd, true);
    return err;
}

ssize_t gorc__fd_read(gorc__fd *fd, void *buf, size_t n, gorc__fd_cancel *cx)
{
    if (!rwlock(fd, true))
        return -EBADF;
    ssize_t r = disarm(cx, read_locked(fd, buf, n, cx));
    rwunlock(fd, true);
    return r;
}

/* writev(2) to a descriptor that is not a socket, without dying of SIGPIPE. */
static ssize_t writev_nosigpipe(int sysfd, const struct iovec *iov, int cnt)
{
    sigset_t pipeset, old;
    sigemptyset(&pipeset);
    sigaddset(&pipeset, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipeset, &old);
    ssize_t r = writev(sysfd, iov, cnt);
    int e = errno;
    if (r < 0 && e == EPIPE && !sigismember(&old, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipeset, NULL, &zero); /* the SIGPIPE this write raised */
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return r;
}

/* One gathering write of cnt pieces: sendmsg for sockets (MSG_NOSIGNAL), writev otherwise. */
static ssize_t sys_writev(gorc__fd *fd, struct iovec *iov, int cnt)
{
    if (GORC__UNLIKELY(fd->sim)) { /* one piece at a time: a short write stops the batch */
        ssize_t done = 0;
        for (int i = 0; i < cnt; i++) {
            ssize_t r = gorc__simnet_write(fd->sim, iov[i].iov_base, iov[i].iov_len);
            if (r < 0)
                return done > 0 ? done : r;
            done += r;
            if ((size_t)r < iov[i].iov_len)
                break;
        }
        return done;
    }
    if (fd->kind == GORC__FD_OTHER)
        return writev_nosigpipe(fd->sysfd, iov, cnt);
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
    return sendmsg(fd->sysfd, &m, MSG_NOSIGNAL);
}

static ssize_t sys_write(gorc__fd *fd, const void *buf, size_t n)
{
    if (GORC__UNLIKELY(fd->sim))
        return gorc__simnet_write(fd->sim, buf, n);
    if (fd->kind == GORC__FD_OTHER) {
        struct iovec one = {(void *)buf, n};
        return writev_nosigpipe(fd->sysfd, &one, 1);
    }
    return send(fd->sysfd, buf, n, MSG_NOSIGNAL);
}

/* One non-blocking transfer of up to chunk bytes at offset done of the caller's source: a
 * buffer (send or write) or a file (sendfile). Returns the count or -1 with errno. */
typedef ssize_t (*write_op)(gorc__fd *fd, const void *src, size_t done, size_t chunk);

static ssize_t op_write(gorc__fd *fd, const void *src, size_t done, size_t chunk)
{
    return sys_write(fd, (const char *)src + done, chunk);
}

/* A scatter source: the pieces of one gorc_conn_writev. */
typedef struct iov_src {
    const struct iovec *iov;
    int cnt;
} iov_src;

#define IOV_BATCH 64 /* pieces per system call */

/* The pieces after the first done bytes, at most chunk bytes, in one system call. */
static ssize_t op_writev(gorc__fd *fd, const void *src, size_t done, size_t chunk)
{
    const iov_src *v = src;
    struct iovec part[IOV_BATCH];
    int i = 0, k = 0;
    size_t skip = done;
    for (; i < v->cnt && skip >= v->iov[i].iov_len; i++)
        skip -= v->iov[i].iov_len;
    for (; i < v->cnt && k < IOV_BATCH && chunk > 0; i++, skip = 0) {
        size_t len = v->iov[i].iov_len - skip;
        if (len == 0)
            continue;
        if (len > chunk)
            len = chunk;
        part[k].iov_base = (char *)v->iov[i].iov_base + skip;
        part[k++].iov_len = len;
        chunk -= len;
    }
    return k == 0 ? 0 : sys_writev(fd, part, k);
}

/* The file side of a sendfile: descriptor and its next offset. */
typedef struct file_src {
    int fd;
    off_t off;
} file_src;

static ssize_t op_sendfile(gorc__fd *fd, const void *src, size_t done, size_t chunk)
{
    file_src *f = (file_src *)src;
    if (GORC__UNLIKELY(fd->sim)) { /* the file through a buffer, as a simulated write */
        char buf[16384];
        size_t k = chunk < sizeof buf ? chunk : sizeof buf;
        ssize_t got = pread(f->fd, buf, k, f->off);
        if (got <= 0) {
            if (got == 0)
                errno = EIO;
            return -1;
        }
        ssize_t r = gorc__simnet_write(fd->sim, buf, (size_t)got);
        if (r > 0)
            f->off += r;
        return r;
    }
    ssize_t r = sendfile(fd->sysfd, f->fd, &f->off, chunk);
    if (r == 0 && chunk > 0) {
        errno = EIO; /* the file ended before the count the caller promised */
        return -1;
    }
    return r;
}

/* Writes with op; on failure cx->written (if cx) says how much was written before. */
static ssize_t write_locked(gorc__fd *fd, write_op op, const void *src, size_t n, bool all,
                            gorc__fd_cancel *cx)
{
    int err = gorc__pd_check(fd->pd, 'w');
    if (err)
        return err;
    size_t done = 0;
    ssize_t fail = 0;
    while (done < n || n == 0) {
        size_t chunk = n - done < MAXRW ? n - done : MAXRW;
        ssize_t r = op(fd, src, done, chunk);
        if (r > 0) {
            done += (size_t)r;
            if (!all)
                break;
            continue;
        }
        if (r == 0) {
            if (n == 0)
                break;
            fail = -EIO; /* the kernel wrote nothing and reported no error */
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            fail = -errno;
            break;
        }
        fail = fd_wait(fd, 'w', cx);
        if (fail)
            break;
    }
    if (cx)
        cx->written = done;
    return fail ? fail : (ssize_t)done;
}

ssize_t gorc__fd_write(gorc__fd *fd, const void *buf, size_t n, bool all, gorc__fd_cancel *cx)
{
    if (!rwlock(fd, false))
        return -EBADF;
    ssize_t r = disarm(cx, write_locked(fd, op_write, buf, n, all, cx));
    rwunlock(fd, false);
    return r;
}

ssize_t gorc__fd_writev(gorc__fd *fd, const struct iovec *iov, int cnt, size_t total)
{
    if (!rwlock(fd, false))
        return -EBADF;
    iov_src src = {iov, cnt};
    ssize_t r = write_locked(fd, op_writev, &src, total, true, NULL);
    rwunlock(fd, false);
    return r;
}

ssize_t gorc__fd_sendfile(gorc__fd *fd, int file, int64_t off, size_t n, gorc__fd_cancel *cx)
{
    if (!rwlock(fd, false))
        return -EBADF;
    file_src src = {file, (off_t)off};
    ssize_t r = disarm(cx, write_locked(fd, op_sendfile, &src, n, true, cx));
    rwunlock(fd, false);
    return r;
}

/* Right after a non-blocking datagram call returned *r (-1 with errno set): true to try again
 * (interrupted, or it would have blocked and the descriptor is ready now); false with the
 * final result, or the error as a negative errno, in *r. */
static bool again(gorc__fd *fd, int mode, ssize_t *r, gorc__fd_cancel *cx)
{
    if (*r >= 0)
        return false;
    *r = -errno;
    if (*r == -EINTR)
        return true;
    if (*r != -EAGAIN)
        return false;
    *r = fd_wait(fd, mode, cx);
    return *r == 0;
}

ssize_t gorc__fd_recvfrom(gorc__fd *fd, void *buf, size_t n, struct sockaddr *sa, socklen_t *salen,
                          gorc__fd_cancel *cx)
{
    if (!rwlock(fd, true))
        return -EBADF;
    socklen_t cap = salen ? *salen : 0;
    ssize_t r;
    for (;;) {
        r = gorc__pd_check(fd->pd, 'r');
        if (r)
            break;
        if (salen)
            *salen = cap;
        r = GORC__UNLIKELY(fd->sim) ? gorc__simnet_recvfrom(fd->sim, buf, n, sa, salen)
                                    : recvfrom(fd->sysfd, buf, n, 0, sa, salen);
        if (!again(fd, 'r', &r, cx))
            break;
    }
    r = disarm(cx, r);
    rwunlock(fd, true);
    return r;
}

ssize_t gorc__fd_sendto(gorc__fd *fd, const void *buf, size_t n, const struct sockaddr *sa,
                        socklen_t salen, gorc__fd_cancel *cx)
{
    if (!rwlock(fd, false))
        return -EBADF;
    ssize_t r;
    for (;;) {
        r = gorc__pd_check(fd->pd, 'w');
        if (r)
            break;
        r = GORC__UNLIKELY(fd->sim) ? gorc__simnet_sendto(fd->sim, buf, n, sa, salen)
                                    : sendto(fd->sysfd, buf, n, MSG_NOSIGNAL, sa, salen);
        if (!again(fd, 'w', &r, cx))
            break;
    }
    r = disarm(cx, r);
    rwunlock(fd, false);
    return r;
}

/* ------------------------------------------------------------------------------------------
 * Accepting and connecting
 * ---------------------------------------------------------------------------------------- */

/* Errors that concern only the connection being accepted: try the next one (accept(2)). */
static bool accept_retryable(int e)
{
    switch (e) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return true;
    default:
        return false;
    }
}

static int accept_locked(gorc__fd *fd, int *out, struct sockaddr *sa, socklen_t *salen,
                         gorc__sep **sim, gorc__fd_cancel *cx)
{
    socklen_t cap = salen ? *salen : 0;
    int64_t backoff = 0;
    for (;;) {
        int err = gorc__pd_check(fd->pd, 'r');
        if (err)
            return err;
        if (salen)
            *salen = cap;
        int s = sim ? gorc__simnet_accept(fd->sim, sim)
                    : accept4(fd->sysfd, sa, salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (s >= 0) {
            *out = s;
            return 0;
        }
        int e = errno;
        if (accept_retryable(e))
            continue;
        if (e == EAGAIN) {
            err = fd_wait(fd, 'r', cx);
        } else if (e == EMFILE || e == ENFILE) {
            /* Out of descriptors: the connection waits in the backlog. Retry after 5 ms,
             * doubling up to 1 s (Go's net/http), still waking for close and deadlines. */
            backoff = backoff ? backoff * 2 : 5 * GORC_MILLISECOND;
            if (backoff > GORC_SECOND)
                backoff = GORC_SECOND;
            arm(fd, 'r', cx);
            err = gorc__pd_wait_until(fd->pd, 'r', gorc__nanotime() + backoff);
        } else {
            return -e;
        }
        if (err)
            return err;
    }
}

int gorc__fd_accept(gorc__fd *fd, int *out, struct sockaddr *sa, socklen_t *salen,
                    gorc__fd_cancel *cx)
{
    if (!rwlock(fd, true))
        return -EBADF;
    int r = (int)disarm(cx, accept_locked(fd, out, sa, salen, NULL, cx));
    rwunlock(fd, true);
    return r;
}

int gorc__fd_accept_sim(gorc__fd *fd, int *out, gorc__sep **sim, gorc__fd_cancel *cx)
{
    if (!rwlock(fd, true))
        return -EBADF;
    int r = (int)disarm(cx, accept_locked(fd, out, NULL, NULL, sim, cx));
    rwunlock(fd, true);
    return r;
}

static int connect_wait(gorc__fd *fd, gorc__fd_cancel *cx)
{
    for (;;) {
        int err = fd_wait(fd, 'w', cx);
        if (err)
            return err;
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (GORC__UNLIKELY(fd->sim)) {
            soerr = gorc__simnet_soerror(fd->sim);
            if (soerr == 0)
                return 0;
        } else if (getsockopt(fd->sysfd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) {
            return -errno;
        }
        switch (soerr) {
        case EINPROGRESS:
        case EALREADY:
        case EINTR:
            break;
        case EISCONN:
            return 0;
        case 0: {
            /* The poller may wake us before the handshake is done: make sure. */
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            if (getpeername(fd->sysfd, (struct sockaddr *)&ss, &sl) == 0)
                return 0;
            break;
        }
        default:
            return -soerr;
        }
    }
}

int gorc__fd_connect_wait(gorc__fd *fd, int64_t deadline, gorc__fd_cancel *cx)
{
    if (!rwlock(fd, false))
        return -EBADF;
    if (deadline)
        gorc__pd_set_deadline(fd->pd, deadline, 'w');
    int r = (int)disarm(cx, connect_wait(fd, cx));
    if (deadline)
        gorc__pd_set_deadline(fd->pd, 0, 'w');
    rwunlock(fd, false);
    return r;
}

/* Wait, holding the read lock, until the peer sends something or goes away, without taking
 * any byte: 1 when data is there, 0 at end of stream, a negative errno on a reset, -EBADF
 * (closed) or -ETIMEDOUT (the read deadline, which is how a waiter is called off). Go's HTTP
 * server does the same with a one-byte background read. */
int gorc__fd_peek_wait(gorc__fd *fd)
{
    if (!rwlock(fd, true))
        return -EBADF;
    int rc;
    for (;;) {
        char b;
        ssize_t n = GORC__UNLIKELY(fd->sim) ? gorc__simnet_peek(fd->sim)
                                            : recv(fd->sysfd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n >= 0) {
            rc = n > 0;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            rc = -errno;
            break;
        }
        if ((rc = gorc__pd_wait(fd->pd, 'r')) != 0)
            break;
    }
    rwunlock(fd, true);
    return rc;
}

/* One read or write without a wait, for the callback of gorc__fd_raw_io, which holds the
 * direction's lock: the system call, or the simulated socket's (which never parks there). */
ssize_t gorc__fd_raw_recv(gorc__fd *fd, void *buf, size_t n)
{
    ssize_t r;
    do
        r = GORC__UNLIKELY(fd->sim) ? gorc__simnet_raw_read(fd->sim, buf, n)
                                    : read(fd->sysfd, buf, n);
    while (r < 0 && errno == EINTR);
    return r >= 0 ? r : -errno;
}

ssize_t gorc__fd_raw_send(gorc__fd *fd, const void *buf, size_t n)
{
    ssize_t r;
    do
        r = GORC__UNLIKELY(fd->sim) ? gorc__simnet_raw_write(fd->sim, buf, n)
                                    : sys_write(fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r >= 0 ? r : -errno;
}

/* Raw I/O for a layered connection's ops (Go's rawConn.Read / Write): fn makes the system
 * calls itself, so fd.drained no longer says anything about the socket. */
int gorc__fd_raw_io(gorc__fd *fd, int mode, bool (*fn)(int, void *), void *arg, gorc__fd_cancel *cx)
{
    bool read = mode == 'r';
    if (!rwlock(fd, read))
        return -EBADF;
    int err;
    for (;;) {
        if ((err = gorc__pd_check(fd->pd, mode)) != 0)
            break;
        if (read)
            fd->drained = false;
        if (fn(fd->sysfd, arg))
            break;
        if ((err = fd_wait(fd, mode, cx)) != 0)
            break;
    }
    err = (int)disarm(cx, err);
    rwunlock(fd, read);
    return err;
}
