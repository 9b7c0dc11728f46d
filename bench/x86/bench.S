/*
 * Exit-cost benchmark guest, entered through PVH (32-bit protected mode, ring 0) so that
 * Tandem and QEMU (microvm) run the very same code.
 *
 *   MODE_PIO:  ITERS writes to an unclaimed port (each one a KVM exit to the VMM)
 *   MODE_MMIO: ITERS writes to an unclaimed MMIO address (each one a KVM exit)
 *   MODE_IDLE: halts with interrupts off forever (for memory measurements)
 *
 * The first instruction marks Tandem's boot timer (port 0xf8); the guest then ends the VM
 * through the debug-exit port 0xf4 (Tandem's debug port, QEMU's isa-debug-exit).
 */
#ifndef ITERS
#define ITERS 0
#endif
#define BOOT_TIMER_PORT 0xf8
#define DEBUG_EXIT_PORT 0xf4
#define BENCH_PORT 0x510
#define BENCH_MMIO 0xd0000000

    .code32
    .text
    .globl pvh_start
pvh_start:
    out %al, $BOOT_TIMER_PORT
#ifdef MODE_IDLE
1:  cli
    hlt
    jmp 1b
#else
    mov $ITERS, %ecx
    test %ecx, %ecx
    jz 3f
2:
#ifdef MODE_MMIO
    movl %ecx, BENCH_MMIO
#else
    mov $BENCH_PORT, %dx
    out %al, %dx
#endif
    dec %ecx
    jnz 2b
3:  xor %eax, %eax
    out %al, $DEBUG_EXIT_PORT
4:  cli
    hlt
    jmp 4b
#endif

    /* XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit PVH entry point. */
    .section .note.Xen, "a", @note
    .p2align 2
    .long 4                 /* name size */
    .long 4                 /* desc size */
    .long 18                /* type */
    .asciz "Xen"
    .long pvh_start
