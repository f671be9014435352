/*
 * membarrier_linux.c - a memory barrier executed on every thread of the process at once.
 *
 * The scheduler's P-ownership handshake (runtime/proc.c, "P ownership") is Dekker's pattern:
 * each side needs a full barrier between its store and its load. The M's side runs on every
 * goroutine switch, the monitor's a few times a second, so the monitor pays for both with
 * membarrier(2)'s private expedited command and the M's side stays two plain stores and a
 * load. Kernels without the command make the caller fall back to ordinary fences.
 */
#include "runtime/runtime.h"

#include <sys/syscall.h>
#include <unistd.h>

/* From linux/membarrier.h, spelt out so that older kernel headers build too. */
#define CMD_PRIVATE_EXPEDITED          8
#define CMD_REGISTER_PRIVATE_EXPEDITED 16

bool gorc__os_membarrier_register(void)
{
#ifdef SYS_membarrier
    return syscall(SYS_membarrier, CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#else
    return false;
#endif
}

bool gorc__os_membarrier(void)
{
#ifdef SYS_membarrier
    return syscall(SYS_membarrier, CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
#else
    return false;
#endif
}
