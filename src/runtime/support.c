/*
 * support.c - what every part of the runtime leans on: the runtime's spin lock, fatal errors,
 * the random source and the names of wait reasons.
 *
 * These live outside the scheduler so that channels, stacks, sync, timers and the poller can
 * use them without depending on proc.c. Each needs at most the calling thread's M (through
 * gorc__getm), never the scheduler's global state.
 */
#include "runtime/runtime.h"

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

/* Runtime locks guard a few dozen instructions, so waiting means spinning, then yielding the
 * CPU to a holder the kernel may have preempted. While it waits, the M counts as inside the
 * scheduler, or the monitor would mistake it for a stuck goroutine and start more threads
 * to contend for the same lock. */
void gorc__lock_slow(_Atomic uint32_t *v)
{
    gorc__m *m = gorc__tls_m;
    uint32_t was = m ? atomic_load_explicit(&m->insched, memory_order_relaxed) : 0;
    if (m)
        atomic_store_explicit(&m->insched, 1, memory_order_relaxed);
    for (int i = 0;; i++) {
        if (atomic_load_explicit(v, memory_order_relaxed) == 0 &&
            !atomic_exchange_explicit(v, 1, memory_order_acquire))
            break;
        if (i < 200)
            cpu_relax();
        else
            sched_yield();
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
    fflush(stderr);
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
};

const char *gorc__waitreason_str(int r)
{
    if (r < 0 || (size_t)r >= sizeof reasons / sizeof reasons[0])
        return "?";
    return reasons[r];
}
