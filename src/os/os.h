/*
 * os.h - what the runtime asks of the operating system, besides the poller.
 *
 * Everything Linux-specific that the portable runtime needs sits behind these functions, one
 * file each in src/os/: sleeping on a word (futex), how many CPUs this process may use
 * (affinity and cgroup quota), a process-wide memory barrier (membarrier) and guard pages.
 * The poller backend has its own, longer contract in runtime/netpoll.h. A port to another
 * system implements this header and that contract; nothing else in src/runtime/ makes a
 * system call that is not POSIX.
 */
#ifndef GORC_OS_H
#define GORC_OS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- futex_linux.c: the one sleeping primitive threads use ---- */

/* Sleep while *addr == val, at most timeout_ns (-1: no limit). Spurious returns happen. */
void gorc__futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns);
/* Wake up to n threads sleeping on addr. */
void gorc__futex_wake(_Atomic uint32_t *addr, int n);

/* ---- cpus_linux.c ---- */

/* Ps to run: GORC_MAXPROCS if set, else the CPUs this process may use (affinity mask, capped
 * by a cgroup v2 cpu.max quota). At least 1. */
int gorc__ncpu(void);

/* ---- membarrier_linux.c ---- */

/* Register for process-wide barriers; false where the kernel cannot do them. */
bool gorc__os_membarrier_register(void);
/* A full barrier on every thread of the process; false if it could not be done (the caller
 * then falls back to fences on both sides). */
bool gorc__os_membarrier(void);

/* ---- guard_linux.c: guard pages below stacks ---- */

enum { GORC__GUARD_MADVISE, GORC__GUARD_MPROTECT, GORC__GUARD_NONE };

/* The best guard this kernel really enforces: GORC__GUARD_MADVISE or GORC__GUARD_MPROTECT. */
int gorc__os_guard_probe(size_t page_size);
/* Make the page at page fault on access with guard kind `kind`; false if that failed (or kind
 * is GORC__GUARD_NONE). */
bool gorc__os_guard_install(void *page, size_t page_size, int kind);
/* Seal [addr, addr+len) (page-aligned): its pages are released and any access faults, without
 * changing the mapping (MADV_GUARD_INSTALL, so only where the probe said GORC__GUARD_MADVISE).
 * Unseal makes the range ordinary zero-filled memory again. Both return 0 or -errno. */
int gorc__os_pages_seal(void *addr, size_t len);
int gorc__os_pages_unseal(void *addr, size_t len);

#endif
