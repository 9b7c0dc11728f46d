/*
 * Every vCPU reports its APIC ID on port 0x520 and counts itself in; the BSP waits for
 * all of them (the count the prelude read from CPUID in ring 0) and then ends the VM.
 */
#define SMP
#include "prelude.S"
#define REPORT_PORT 0x520
user_main:
    mov $REPORT_PORT, %dx
    mov %edi, %eax
    out %eax, %dx
    lock incl cpus_up(%rip)
    test %edi, %edi
    jnz 2f
1:  pause
    cmp cpus_up(%rip), %esi
    jne 1b
    lea message(%rip), %rsi
    call puts
    xor %eax, %eax
    ret
2:  pause
    jmp 2b
message:
    .asciz "all vCPUs reported\n"
    .data
cpus_up:
    .long 0
    .text
