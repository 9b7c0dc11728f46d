/*
 * KVM notify-cost benchmark guest (built and run by run.sh). In ring 3 (native speed on
 * nested PVM), it makes ITERS writes of each kind, marking Tandem's boot timer (port
 * 0xf8) between the phases:
 *
 *   1 -> 2  virtio-mmio QueueNotify of queue 0: a KVM ioeventfd, no exit to Tandem
 *   2 -> 3  the same register with queue index 1 (no ioeventfd matches): an MMIO exit
 *           served by the transport in Tandem
 *   3 -> 4  a port write to an unclaimed port: a port-I/O exit to Tandem
 *   4 -> 5  a write to the 8259A's mask register (port 0x21): KVM's in-kernel PIC with
 *           --irqchip kernel, Tandem's PIC model (an exit) with --irqchip userspace
 *
 * Run with one virtio device in the first slot (run.sh uses --rng).
 */
#include "prelude.S"

#ifndef ITERS
#define ITERS 20000
#endif
#define VIRTIO 0xd0000000
#define QUEUE_NOTIFY 0x50
#define UNCLAIMED_PORT 0x510

user_main:
    push %rbx
    mov $VIRTIO, %ebx
    mov $1, %al
    out %al, $BOOT_TIMER_PORT
    mov $ITERS, %ecx
1:  movl $0, QUEUE_NOTIFY(%rbx)
    dec %ecx
    jnz 1b
    mov $2, %al
    out %al, $BOOT_TIMER_PORT
    mov $ITERS, %ecx
2:  movl $1, QUEUE_NOTIFY(%rbx)
    dec %ecx
    jnz 2b
    mov $3, %al
    out %al, $BOOT_TIMER_PORT
    mov $ITERS, %ecx
    mov $UNCLAIMED_PORT, %dx
3:  out %al, %dx
    dec %ecx
    jnz 3b
    mov $4, %al
    out %al, $BOOT_TIMER_PORT
    mov $ITERS, %ecx
    mov $0xff, %al
4:  out %al, $0x21
    dec %ecx
    jnz 4b
    mov $5, %al
    out %al, $BOOT_TIMER_PORT
    xor %eax, %eax
    pop %rbx
    ret
