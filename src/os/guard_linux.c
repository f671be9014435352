/*
 * guard_linux.c - guard pages below goroutine stacks.
 *
 * A guard made with mprotect splits its mapping in two, and vm.max_map_count (65530 by
 * default) then caps a process near 32,000 stacks. Linux 6.13 added
 * madvise(MADV_GUARD_INSTALL), which makes pages fault without creating a mapping, so it is
 * preferred wherever it works. "Works" is checked, not assumed: some environments (qemu-user)
 * accept the advice and do nothing. runtime/stack.c decides how many mprotect guards it can
 * afford; this file only knows how to make one.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103
#endif

/* Let the kernel touch the page: a working guard makes the write fail with EFAULT. */
static bool guard_faults(char *page)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return false;
    bool faulted = write(fds[1], page, 1) < 0 && errno == EFAULT;
    close(fds[0]);
    close(fds[1]);
    return faulted;
}

int gorc__os_guard_probe(size_t page_size)
{
    int kind = GORC__GUARD_MPROTECT;
    char *m = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m != MAP_FAILED) {
        if (madvise(m, page_size, MADV_GUARD_INSTALL) == 0 && guard_faults(m))
            kind = GORC__GUARD_MADVISE;
        munmap(m, 2 * page_size);
    }
    return kind;
}

bool gorc__os_guard_install(void *page, size_t page_size, int kind)
{
    if (kind == GORC__GUARD_MADVISE)
        return madvise(page, page_size, MADV_GUARD_INSTALL) == 0;
    if (kind == GORC__GUARD_MPROTECT)
        return mprotect(page, page_size, PROT_NONE) == 0;
    return false;
}

/* Stack compaction seals a parked goroutine's stack this way rather than with mprotect: a
 * guard region zaps the pages and makes them fault in one call, and it never splits the
 * mapping, so sealing 100,000 stacks costs no VMA at all and unsealing can never fail for
 * want of one (mprotect can, with ENOMEM, at vm.max_map_count). */
int gorc__os_pages_seal(void *addr, size_t len)
{
    return madvise(addr, len, MADV_GUARD_INSTALL) == 0 ? 0 : -errno;
}

int gorc__os_pages_unseal(void *addr, size_t len)
{
    return madvise(addr, len, MADV_GUARD_REMOVE) == 0 ? 0 : -errno;
}
