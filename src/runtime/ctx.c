/*
 * ctx.c - the first frame of a new goroutine.
 *
 * gorc__ctx_switch (src/arch/ctx_<arch>.S) resumes a context by popping the frame it pushed
 * when it suspended. A fresh stack has no such frame, so this file writes one by hand: the
 * registers the trampoline reads (entry and arg), a zero frame pointer so frame-pointer walks
 * stop, default floating-point control state, and the trampoline as return address.
 */
#include "runtime/runtime.h"

#include <string.h>

void gorc__ctx_trampoline(void);

#if defined(__x86_64__)
void *gorc__ctx_init(void *stack_top, void (*entry)(void *), void *arg)
{
    /* The trampoline is entered by `ret`, with sp just above the return address, and then
     * `call`s entry, so sp must be 16-byte aligned there: the return address slot is at an
     * address that is 8 mod 16, with the 7 saved words below it. */
    uintptr_t top = ((uintptr_t)stack_top & ~(uintptr_t)15) - 16;
    uint64_t *f = (uint64_t *)(top + 8 - 7 * 8);
    uint32_t mxcsr = 0x1F80; /* all exceptions masked, round to nearest */
    uint16_t fpucw = 0x037F;
    f[0] = 0; /* the switch compares all 8 bytes of this slot */
    memcpy(&f[0], &mxcsr, 4);
    memcpy((char *)&f[0] + 4, &fpucw, 2);
    f[1] = 0;                          /* r15 */
    f[2] = 0;                          /* r14 */
    f[3] = (uint64_t)(uintptr_t)entry; /* r13 */
    f[4] = (uint64_t)(uintptr_t)arg;   /* r12 */
    f[5] = 0;                          /* rbx */
    f[6] = 0;                          /* rbp: end of the frame-pointer chain */
    f[7] = (uint64_t)(uintptr_t)gorc__ctx_trampoline;
    return f;
}
#elif defined(__aarch64__)
void *gorc__ctx_init(void *stack_top, void (*entry)(void *), void *arg)
{
    uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
    uint64_t *f = (uint64_t *)(top - 176);
    memset(f, 0, 176);
    f[0] = (uint64_t)(uintptr_t)arg;                   /* x19 */
    f[1] = (uint64_t)(uintptr_t)entry;                 /* x20 */
    f[11] = (uint64_t)(uintptr_t)gorc__ctx_trampoline; /* x30 */
    f[20] = 0;                                         /* fpcr: IEEE defaults */
    return f;
}
#else
#error "gorc: no context switch for this architecture (x86-64 and AArch64 are supported)"
#endif
