/*
 * support.c - what every part of the runtime leans on: the runtime's lock, fatal errors,
 * the random source and the names of wait reasons.
 *
 * These live outside the scheduler so that channels, stacks, sync, timers and the poller can
 * use them without depending on proc.c. Each needs at most the calling thread's M (through
 * gorc__getm), never the scheduler's global state.
 */
#include "runtime/runtime.h"
#include "sim/sim.h"

#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

uint64_t gorc__rand(void)
{
    gorc__m *m = gorc__getm();
    static _Atomic uint64_t shared = 0x9E3779B97F4A7C15ULL;
    uint64_t x;
    if (m) {
        /* xorshift64 on the M's own state: no sharing, no atomics. */
        x = m->rnd;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m->rnd = x;
        return x;
    }
    /* Foreign threads: splitmix64 over a shared counter. */
    x = atomic_fetch_add(&shared, 0x9E3779B97F4A7C15ULL);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ULL;
    return x ^ (x >> 29);
}

static void cpu_relax(void)
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static bool lock_try(_Atomic uint32_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed) == 0 &&
           atomic_exchange_explicit(v, 1, memory_order_acquire) == 0;
}

/* Spinning: LOCK_SPINS looks at the word with 1, 2, 4, ... up to LOCK_PAUSES pauses between
 * them, about 3 us in all where a pause takes 25 ns (AMD Zen). Then one sched_yield, then
 * sleeps of LOCK_NAP, which the kernel's default timer slack rounds up to about 50 us
 * anyway. */
#define LOCK_SPINS  8
#define LOCK_PAUSES 32
#define LOCK_NAP    (50 * GORC_MICROSECOND)

/* Runtime locks guard a few dozen instructions, so a waiter first spins: the holder is about
 * to let go. If it has not after several microseconds, the kernel has almost certainly
 * preempted it (more runnable threads than CPUs: other processes, or an M the monitor added),
 * and a waiter that kept spinning or yielding would burn the very CPU the holder needs; on a
 * loaded 2-CPU machine that used to mean 100,000 sched_yield calls a second. So after one
 * yield the waiter naps on the lock word's futex (returning at once if the word already
 * changed), and the kernel can run the holder in its place. The release stays a plain
 * store: nobody is woken, the napper looks again when its nap ends. That costs a napper up to
 * one nap of latency, paid only after a holder has already been off the CPU for several
 * microseconds; waking it instead (Go's runtime.lock) makes every release an atomic
 * exchange, which measured about 10 % slower on the select benchmark, where each item
 * releases several contended channel locks. While it waits, the M counts as inside the
 * scheduler, or the monitor would mistake it for a stuck goroutine and start more threads to
 * contend for the same lock. */
void gorc__lock_slow(_Atomic uint32_t *v)
{
    gorc__m *m = gorc__tls_m;
    uint32_t was = m ? atomic_load_explicit(&m->insched, memory_order_relaxed) : 0;
    if (m)
        atomic_store_explicit(&m->insched, 1, memory_order_relaxed);
    int pauses = 1;
    for (int i = 0;; i++) {
        if (lock_try(v))
            break;
        if (i < LOCK_SPINS) {
            for (int k = 0; k < pauses; k++)
                cpu_relax();
            if (pauses < LOCK_PAUSES)
                pauses *= 2;
        } else if (i == LOCK_SPINS) {
            sched_yield();
        } else {
            gorc__futex_wait(v, 1, LOCK_NAP);
        }
    }
    if (m)
        atomic_store_explicit(&m->insched, was, memory_order_relaxed);
}

void gorc__fatal(const char *fmt, ...)
{
    va_list ap;
    char buf[512];
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fatal error: %s\n", buf);
    if (gorc__sim_on())
        gorc__sim_fatal_note();
    fflush(stderr);
    gorc__traceback_fatal();
    _exit(2);
}

static const char *const reasons[] = {
    [GORC__W_NONE] = "",
    [GORC__W_CHAN_SEND] = "chan send",
    [GORC__W_CHAN_RECV] = "chan receive",
    [GORC__W_CHAN_SEND_NIL] = "chan send (nil chan)",
    [GORC__W_CHAN_RECV_NIL] = "chan receive (nil chan)",
    [GORC__W_SELECT] = "select",
    [GORC__W_SELECT_NO_CASES] = "select (no cases)",
    [GORC__W_SLEEP] = "sleep",
    [GORC__W_MUTEX] = "sync.Mutex.Lock",
    [GORC__W_RWMUTEX_R] = "sync.RWMutex.RLock",
    [GORC__W_RWMUTEX_W] = "sync.RWMutex.Lock",
    [GORC__W_WAITGROUP] = "sync.WaitGroup.Wait",
    [GORC__W_COND] = "sync.Cond.Wait",
    [GORC__W_SEMA] = "semacquire",
    [GORC__W_IO] = "IO wait",
    [GORC__W_BLOCKING] = "syscall",
    [GORC__W_SIM_WAIT] = "synctest.Wait",
};

const char *gorc__waitreason_str(int r)
{
    if (r < 0 || (size_t)r >= sizeof reasons / sizeof reasons[0])
        return "?";
    return reasons[r];
}
