/*
 * Arms the local APIC timer (one-shot, vector IRQ_VECTOR) from ring 3 (which runs with
 * interrupts enabled) and waits until the ring-0 handler has run; then reports on COM1.
 */
#define HAVE_IRQ_HANDLER
#include "prelude.S"
irq_handler:
    lock incl irq_count(%rip)
    push %rbx
    mov $LAPIC, %ebx
    movl $0, 0xb0(%rbx)                 /* EOI */
    pop %rbx
    iretq

user_main:
    mov $LAPIC, %ebx
    movl $0x1ff, 0xf0(%rbx)             /* enable, spurious vector 0xff */
    movl $0xb, 0x3e0(%rbx)              /* divide by 1 */
    movl $IRQ_VECTOR, 0x320(%rbx)       /* one-shot, unmasked */
    movl $100000, 0x380(%rbx)           /* initial count: starts the timer */
1:  pause
    cmpl $0, irq_count(%rip)
    je 1b
    lea message(%rip), %rsi
    call puts
    xor %eax, %eax
    ret
message:
    .asciz "timer interrupt handled in ring 0\n"
    .data
irq_count:
    .long 0
    .text
