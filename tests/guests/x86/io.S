/*
 * Port and MMIO accesses of every size, checked against the test's recorder device,
 * whose reads return 0xa0 + offset + byte index. Exit status: 0, or the failing check.
 */
#include "prelude.S"
#define PORTS 0x510
#define MMIO 0xd0000000
user_main:
    mov $PORTS, %dx
    mov $0x11, %al
    out %al, %dx
    mov $0x2233, %ax
    out %ax, %dx
    mov $0x44556677, %eax
    out %eax, %dx
    mov $(PORTS + 4), %dx
    in %dx, %al
    cmp $0xa4, %al
    mov $1, %ecx
    jne fail
    mov $(PORTS + 2), %dx
    in %dx, %ax
    cmp $0xa3a2, %ax
    mov $2, %ecx
    jne fail
    mov $(PORTS + 8), %dx
    in %dx, %eax
    cmp $0xabaaa9a8, %eax
    mov $3, %ecx
    jne fail

    mov $MMIO, %ebx
    movb $0x12, 0x0(%rbx)
    movw $0x3456, 0x2(%rbx)
    movl $0x789abcde, 0x4(%rbx)
    movabs $0x0123456789abcdef, %rax
    mov %rax, 0x8(%rbx)
    movb 0x20(%rbx), %al
    cmp $0xc0, %al
    mov $4, %ecx
    jne fail
    movl 0x10(%rbx), %eax
    cmp $0xb3b2b1b0, %eax
    mov $5, %ecx
    jne fail
    movq 0x18(%rbx), %rax
    movabs $0xbfbebdbcbbbab9b8, %rcx
    cmp %rcx, %rax
    mov $6, %ecx
    jne fail
    xor %eax, %eax
    ret
fail:
    mov %ecx, %eax
    ret
