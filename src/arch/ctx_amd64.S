/*
 * ctx_amd64.S - goroutine context switch for x86-64 (System V ABI).
 *
 * A switch is a function call as far as the compiler knows, so only what the ABI says a callee
 * must preserve is saved: rbx, rbp, r12-r15, the stack pointer, and the floating-point control
 * state (MXCSR and the x87 control word), which the ABI also treats as callee-saved. Everything
 * lives on the suspended stack; the goroutine keeps just its stack pointer. No signal mask is
 * touched (that is what makes swapcontext a system call per switch).
 *
 * Frame on a suspended stack, from the saved sp upwards:
 *   [0] mxcsr (4 bytes) + x87 cw (2 bytes) + 2 zero bytes   [8] r15  [16] r14  [24] r13  [32] r12
 *   [40] rbx  [48] rbp  [56] return address
 */
    .text

/* void gorc__ctx_switch(void **save_sp, void *load_sp) */
    .globl gorc__ctx_switch
    .hidden gorc__ctx_switch
    .type gorc__ctx_switch, @function
    .p2align 4
gorc__ctx_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    movq $0, (%rsp)
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq (%rsp), %rax
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    /* Loading MXCSR and the x87 control word is slow; nearly always they are unchanged. */
    cmpq (%rsp), %rax
    jne 2f
1:  addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
2:  ldmxcsr (%rsp)
    fldcw 4(%rsp)
    jmp 1b
    .cfi_endproc
    .size gorc__ctx_switch, .-gorc__ctx_switch

/* First code a new goroutine runs: entry(arg) with entry in r13 and arg in r12, put there by
 * gorc__ctx_init. The CFI marks the return address as undefined so that debuggers and
 * unwinders stop here instead of walking into garbage. */
    .globl gorc__ctx_trampoline
    .hidden gorc__ctx_trampoline
    .type gorc__ctx_trampoline, @function
    .p2align 4
gorc__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    callq *%r13
    ud2
    .cfi_endproc
    .size gorc__ctx_trampoline, .-gorc__ctx_trampoline

    .section .note.GNU-stack,"",@progbits
