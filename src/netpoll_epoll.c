/*
 * netpoll_epoll.c - the poller's Linux backend.
 *
 * The scheduler sees the poller through four functions (runtime.h): init, a wait with a
 * timeout that returns the goroutines whose I/O is ready, a break that interrupts that wait
 * from any thread, and a count of goroutines waiting on I/O. This file implements them with
 * one epoll instance and an eventfd for the break; other backends (kqueue, io_uring) are files
 * of their own behind the same functions.
 *
 * The idle M that owns the poller blocks here with the earliest timer deadline as timeout, so
 * this is also how the runtime sleeps until a timer is due.
 */
#include "runtime.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int epfd = -1;
static int breakfd = -1;
static _Atomic uint32_t breaking;
static _Atomic int64_t waiters;

int gorc__netpoll_init(void)
{
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return -1;
    breakfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (breakfd < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, breakfd, &ev);
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

gorc__g *gorc__netpoll(int64_t timeout_ns, gorc__g **tail, int *n)
{
    int ms;
    if (timeout_ns < 0)
        ms = -1;
    else if (timeout_ns == 0)
        ms = 0;
    else if (timeout_ns < 1000000)
        ms = 1; /* epoll_wait has millisecond resolution; round up, never spin */
    else if (timeout_ns > 1000000000000LL)
        ms = 1000000;
    else
        ms = (int)((timeout_ns + 999999) / 1000000);
    struct epoll_event evs[128];
    *n = 0;
    *tail = NULL;
    int k = epoll_wait(epfd, evs, 128, ms);
    gorc__g *head = NULL;
    for (int i = 0; i < k; i++) {
        if (evs[i].data.ptr == NULL) {
            uint64_t v;
            ssize_t r = read(breakfd, &v, sizeof v);
            (void)r;
            atomic_store(&breaking, 0);
        }
    }
    return head;
}

int64_t gorc__netpoll_waiters(void)
{
    return atomic_load(&waiters);
}
