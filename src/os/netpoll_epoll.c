/*
 * netpoll_epoll.c - the poller backend for Linux: one epoll instance and an eventfd.
 *
 * It implements the backend contract written at the top of runtime/netpoll.h; a kqueue or
 * io_uring backend would be another file against the same contract (POLLER=<name>).
 *
 * Registration is once per descriptor, edge-triggered, for input, output and peer hang-up:
 * the kernel reports each change once and netpoll.c remembers it, so no epoll_ctl is ever
 * needed on the read or write path. The event's 64 bits carry the descriptor's table index
 * and recycle count rather than a pointer, so an event that raced with a close is recognised
 * as stale.
 *
 * The idle M that owns the poller blocks here with the earliest timer deadline as timeout, so
 * this is also how the runtime sleeps until a timer is due. epoll_pwait2 takes that timeout in
 * nanoseconds; kernels older than 5.11 lack it and get epoll_wait with the timeout rounded up
 * to a millisecond (never down: a timer must not be found not yet due and slept on again).
 *
 * The eventfd is level-triggered and drained only by a blocking poll: a non-blocking poll by a
 * P that ran out of work may see the break too, but must not swallow it.
 */
#include "runtime/netpoll.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NEVENTS   128
#define BREAK_TAG UINT64_MAX

static int epfd = -1;
static int breakfd = -1;
static _Atomic uint32_t breaking;
static _Atomic int have_pwait2 = 1;

int gorc__netpoll_init(void)
{
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return -errno;
    breakfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = BREAK_TAG};
    if (breakfd >= 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, breakfd, &ev) == 0)
        return 0;
    int err = -errno;
    if (breakfd >= 0)
        close(breakfd);
    close(epfd);
    breakfd = epfd = -1;
    return err;
}

int gorc__netpoll_open(int fd, gorc__pd *pd)
{
    uint64_t tag = (uint64_t)atomic_load(&pd->seq) << 32 | pd->idx;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET,
                             .data.u64 = tag};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

void gorc__netpoll_close(int fd)
{
    struct epoll_event ev = {0};
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev);
}

void gorc__netpoll_break(void)
{
    uint32_t zero = 0;
    if (!atomic_compare_exchange_strong(&breaking, &zero, 1))
        return; /* a break is already pending */
    uint64_t one = 1;
    while (write(breakfd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* One epoll wait with a nanosecond timeout (-1 forever, 0 poll). */
static int wait_events(struct epoll_event *evs, int64_t timeout_ns)
{
#ifdef SYS_epoll_pwait2
    if (atomic_load_explicit(&have_pwait2, memory_order_relaxed)) {
        struct timespec ts, *tp = NULL;
        if (timeout_ns >= 0) {
            ts.tv_sec = timeout_ns / GORC_SECOND;
            ts.tv_nsec = timeout_ns % GORC_SECOND;
            tp = &ts;
        }
        long k = syscall(SYS_epoll_pwait2, epfd, evs, NEVENTS, tp, NULL, 0);
        if (k >= 0 || errno != ENOSYS)
            return (int)k;
        atomic_store(&have_pwait2, 0);
    }
#endif
    int ms;
    if (timeout_ns < 0)
        ms = -1;
    else if (timeout_ns == 0)
        ms = 0;
    else if (timeout_ns > 1000000000000LL)
        ms = 1000000;
    else
        ms = (int)((timeout_ns + 999999) / 1000000);
    return epoll_wait(epfd, evs, NEVENTS, ms);
}

static int event_mode(uint32_t ev)
{
    int mode = 0;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLPRI | EPOLLHUP | EPOLLERR))
        mode += 'r';
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        mode += 'w';
    return mode;
}

gorc__g *gorc__netpoll(int64_t timeout_ns, gorc__g **tail, int *n)
{
    struct epoll_event evs[NEVENTS];
    gorc__glist l = {NULL, NULL, 0};
    int k;
    for (;;) {
        k = wait_events(evs, timeout_ns);
        if (k >= 0)
            break;
        if (errno != EINTR || timeout_ns != 0) {
            k = 0; /* a blocking caller recomputes its timeout and comes back */
            break;
        }
    }
    for (int i = 0; i < k; i++) {
        uint64_t tag = evs[i].data.u64;
        if (tag == BREAK_TAG) {
            if (timeout_ns != 0) {
                uint64_t v;
                ssize_t r = read(breakfd, &v, sizeof v);
                (void)r;
                atomic_store(&breaking, 0);
            }
            continue;
        }
        int mode = event_mode(evs[i].events);
        gorc__pd *pd = gorc__pd_lookup((uint32_t)tag, (uint32_t)(tag >> 32));
        if (pd == NULL)
            continue;
        if (evs[i].events & (EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            gorc__pd_unusual(pd);
        if (mode)
            gorc__netpoll_ready(pd, mode, &l);
    }
    *tail = l.tail;
    *n = l.n;
    return l.head;
}
