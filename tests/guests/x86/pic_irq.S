/*
 * An interrupt through the 8259A PIC (run with `--irqchip userspace`: Tandem's PIC model
 * and KVM_INTERRUPT; the in-kernel PIC behaves the same).
 *
 * Ring 3 starts with interrupts disabled. It programs both PICs (ICW1-ICW4: master
 * vectors 0x40-0x47, slave 0x48-0x4f, cascade on IRQ 2) and masks everything but IRQ 4,
 * then enables the 16550's THR-empty interrupt (IER bit 1), which requests IRQ 4 at
 * once. With IF clear the request must wait in the master's IRR and the handler must
 * not run. Then `int3` (the prelude's stand-in for `sti`) returns with IF set, and the interrupt is taken as
 * the window opens. The ring-0 handler is installed for vector 0x44 only (any other
 * vector ends the test with status 0xe0); it reads the ISR, identifies the UART's
 * interrupt (IIR), disables it, sends a non-specific EOI and reads the ISR again.
 *
 * Exit status: 0 all as expected; 1 IRQ 4 not requested (IRR) before the window
 * opened; 2 the handler ran with interrupts disabled; 3 the ISR in the handler was not
 * IRQ 4 alone; 4 the UART did not report THR empty; 5 the ISR was not clear after the
 * EOI; 6 the handler ran more than once.
 */
#define HAVE_IRQ_HANDLER
#define USER_STI_GATE
#define IRQ_VECTOR 0x44
#include "prelude.S"

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1
#define OCW3_READ_IRR 0x0a
#define OCW3_READ_ISR 0x0b
#define OCW2_EOI 0x20
#define IIR_THR_EMPTY 0xc2                  /* FIFOs enabled, THR-empty interrupt pending */

irq_handler:
    push %rax
    push %rdx
    mov $OCW3_READ_ISR, %al
    out %al, $PIC1_CMD
    in $PIC1_CMD, %al
    mov %al, isr_in_handler(%rip)
    mov $(COM1 + 2), %dx                /* reading IIR also clears THR empty */
    in %dx, %al
    mov %al, iir_in_handler(%rip)
    mov $(COM1 + 1), %dx
    xor %eax, %eax
    out %al, %dx                        /* IER = 0: no more UART interrupts */
    mov $OCW2_EOI, %al
    out %al, $PIC1_CMD
    in $PIC1_CMD, %al                   /* OCW3 still selects the ISR */
    mov %al, isr_after_eoi(%rip)
    incl irq_count(%rip)
    pop %rdx
    pop %rax
    iretq

user_main:
    mov $0x11, %al                      /* ICW1: edge triggered, cascade, ICW4 */
    out %al, $PIC1_CMD
    out %al, $PIC2_CMD
    mov $0x40, %al                      /* ICW2: vector bases */
    out %al, $PIC1_DATA
    mov $0x48, %al
    out %al, $PIC2_DATA
    mov $0x04, %al                      /* ICW3: slave on IR2 / slave ID 2 */
    out %al, $PIC1_DATA
    mov $0x02, %al
    out %al, $PIC2_DATA
    mov $0x01, %al                      /* ICW4: 8086 mode, normal EOI */
    out %al, $PIC1_DATA
    out %al, $PIC2_DATA
    mov $0xff, %al                      /* OCW1: only IRQ 4 unmasked */
    out %al, $PIC2_DATA
    mov $0xef, %al
    out %al, $PIC1_DATA

    mov $(COM1 + 1), %dx
    mov $0x02, %al                      /* IER: THR-empty interrupt */
    out %al, %dx

    /* An irqfd reaches the in-kernel PIC asynchronously (a kernel work item), so
     * the request may show in IRR a little after the IER write: poll, boundedly. */
    mov $OCW3_READ_IRR, %al
    out %al, $PIC1_CMD
    mov $100000, %r8d
2:  in $PIC1_CMD, %al
    cmp $0x10, %al
    je 3f
    dec %r8d
    jnz 2b
    mov $1, %ecx
    jmp fail
3:
    mov $2, %ecx
    cmpl $0, irq_count(%rip)
    jne fail

    int3                                /* interrupts on: the window opens */
1:  pause
    cmpl $0, irq_count(%rip)
    je 1b

    mov $3, %ecx
    cmpb $0x10, isr_in_handler(%rip)
    jne fail
    mov $4, %ecx
    cmpb $IIR_THR_EMPTY, iir_in_handler(%rip)
    jne fail
    mov $5, %ecx
    cmpb $0, isr_after_eoi(%rip)
    jne fail
    mov $6, %ecx
    cmpl $1, irq_count(%rip)
    jne fail
    lea message(%rip), %rsi
    call puts
    xor %eax, %eax
    ret
fail:
    mov %ecx, %eax
    ret
message:
    .asciz "IRQ 4 arrived at vector 0x44, EOI sent\n"

    .data
irq_count:
    .long 0
isr_in_handler:
    .byte 0xff
iir_in_handler:
    .byte 0xff
isr_after_eoi:
    .byte 0xff
    .text
