/*
 * Shares memory with the VMM: reads the 64-bit value the VMM put at SHARED, writes its
 * complement at SHARED+8 and a string at SHARED+16.
 */
#include "prelude.S"
#define SHARED 0x300000
user_main:
    mov $SHARED, %ebx
    mov (%rbx), %rax
    not %rax
    mov %rax, 8(%rbx)
    lea 16(%rbx), %rdi
    lea message(%rip), %rsi
1:  lodsb
    stosb
    test %al, %al
    jnz 1b
    xor %eax, %eax
    ret
message:
    .asciz "written by the guest"
