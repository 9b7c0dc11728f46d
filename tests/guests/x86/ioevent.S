/*
 * MMIO writes for the ioeventfd test: a virtio-mmio style queue-notify register at
 * 0xd0000050 (the host matches 4-byte writes of 1 only) and a register at 0xd0000060
 * the host matches whatever is written. Every write is made once, in this order.
 */
#include "prelude.S"

#define BASE 0xd0000000

user_main:
    mov $BASE, %ebx
    movl $0, 0x50(%rbx)                 /* other queue: exits */
    movl $1, 0x50(%rbx)                 /* matched: eventfd, no exit */
    movl $2, 0x50(%rbx)                 /* other queue: exits */
    movl $1, 0x50(%rbx)                 /* matched */
    movb $1, 0x50(%rbx)                 /* right value, wrong size: exits */
    movl $7, 0x60(%rbx)                 /* any write: eventfd */
    movw $9, 0x60(%rbx)                 /* any write: eventfd */
    xor %eax, %eax
    ret
