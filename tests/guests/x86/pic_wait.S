/*
 * Interrupts raised by another host thread through the 8259A PIC (run with `--irqchip
 * userspace` and the console on a pipe): the vCPU must be woken from `hlt` and kicked
 * out of KVM_RUN while it spins in ring 3 without exits.
 *
 * Programs the PICs as pic_irq.S does and enables the 16550's received-data interrupt
 * (IER bit 0). Prints "halting", then waits in ring 0 with `sti; hlt` (the prelude's
 * halting `int3` gate) for the first input byte. Prints "spinning", then spins in ring 3
 * with interrupts enabled until the second byte has arrived. The ring-0 handler (vector
 * 0x44) stores each byte and sends a non-specific EOI. Prints "got XY" and exits 0.
 */
#define HAVE_IRQ_HANDLER
#define USER_STI_GATE
#define STI_GATE_HALTS
#define IRQ_VECTOR 0x44
#include "prelude.S"

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1

irq_handler:
    push %rax
    push %rcx
    push %rdx
    mov $(COM1 + 2), %dx                /* IIR */
    in %dx, %al
    mov $COM1, %dx                      /* RBR: the byte; clears the interrupt */
    in %dx, %al
    mov received_count(%rip), %ecx
    and $1, %ecx
    lea received(%rip), %rdx
    mov %al, (%rdx, %rcx)
    incl received_count(%rip)
    mov $0x20, %al                      /* OCW2: non-specific EOI */
    out %al, $PIC1_CMD
    pop %rdx
    pop %rcx
    pop %rax
    iretq

user_main:
    mov $0x11, %al
    out %al, $PIC1_CMD
    out %al, $PIC2_CMD
    mov $0x40, %al
    out %al, $PIC1_DATA
    mov $0x48, %al
    out %al, $PIC2_DATA
    mov $0x04, %al
    out %al, $PIC1_DATA
    mov $0x02, %al
    out %al, $PIC2_DATA
    mov $0x01, %al
    out %al, $PIC1_DATA
    out %al, $PIC2_DATA
    mov $0xff, %al
    out %al, $PIC2_DATA
    mov $0xef, %al                      /* only IRQ 4 */
    out %al, $PIC1_DATA
    mov $(COM1 + 1), %dx
    mov $0x01, %al                      /* IER: received data available */
    out %al, %dx

    lea halting(%rip), %rsi
    call puts
    int3                                /* sti; hlt in ring 0 until the first byte */
    lea spinning(%rip), %rsi
    call puts
1:  pause                               /* no exits here: only a kick gets the vCPU out */
    cmpl $2, received_count(%rip)
    jb 1b

    lea got(%rip), %rsi
    call puts
    movzbl received(%rip), %eax
    call putc
    movzbl received + 1(%rip), %eax
    call putc
    mov $'\n', %al
    call putc
    xor %eax, %eax
    ret
halting:
    .asciz "halting\n"
spinning:
    .asciz "spinning\n"
got:
    .asciz "got "

    .data
received_count:
    .long 0
received:
    .byte 0, 0
    .text
