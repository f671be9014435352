/*
 * ctx_arm64.S - goroutine context switch for AArch64 (AAPCS64).
 *
 * Saves what AAPCS64 makes callee-saved: x19-x28, the frame pointer x29, the link register
 * x30, the low halves d8-d15 of v8-v15, and the floating-point control register FPCR. The
 * frame lives on the suspended stack; the goroutine keeps only its stack pointer.
 *
 * Frame on a suspended stack (176 bytes, keeps sp 16-byte aligned):
 *   [0] x19 x20  [16] x21 x22  [32] x23 x24  [48] x25 x26  [64] x27 x28  [80] x29 x30
 *   [96] d8 d9  [112] d10 d11  [128] d12 d13  [144] d14 d15  [160] fpcr  [168] pad
 */
    .text

/* void gorc__ctx_switch(void **save_sp, void *load_sp) */
    .globl gorc__ctx_switch
    .hidden gorc__ctx_switch
    .type gorc__ctx_switch, %function
    .p2align 4
gorc__ctx_switch:
    .cfi_startproc
    sub sp, sp, #176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mrs x9, fpcr
    str x9, [sp, #160]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldr x9, [sp, #160]
    msr fpcr, x9
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #176
    ret
    .cfi_endproc
    .size gorc__ctx_switch, .-gorc__ctx_switch

/* First code of a new goroutine: entry(arg), entry in x20 and arg in x19. The link register
 * is marked undefined so unwinders stop at this outermost frame. */
    .globl gorc__ctx_trampoline
    .hidden gorc__ctx_trampoline
    .type gorc__ctx_trampoline, %function
    .p2align 4
gorc__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    mov x29, #0
    mov x0, x19
    blr x20
    brk #0
    .cfi_endproc
    .size gorc__ctx_trampoline, .-gorc__ctx_trampoline

    .section .note.GNU-stack,"",%progbits
