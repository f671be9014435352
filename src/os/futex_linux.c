/*
 * futex_linux.c - the one primitive every sleeping thread uses.
 *
 * Parked Ms, foreign threads blocked on a channel and the monitor all sleep on a 32-bit word
 * with futex(2): no mutex or condition variable to keep consistent, and a wake-up costs a
 * system call only when someone actually sleeps. Private futexes: the words never leave the
 * process.
 */
#include "runtime/runtime.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void gorc__futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns)
{
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / GORC_SECOND;
        ts.tv_nsec = timeout_ns % GORC_SECOND;
        tp = &ts;
    }
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0);
}

void gorc__futex_wake(_Atomic uint32_t *addr, int n)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}
