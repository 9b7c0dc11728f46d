/* Reads one line from COM1 (polling the data-ready bit) and prints it back, prefixed. */
#include "prelude.S"
user_main:
    lea prefix(%rip), %rsi
    call puts
1:  mov $(COM1 + 5), %dx
2:  in %dx, %al
    test $0x01, %al                     /* LSR data ready */
    jz 2b
    mov $COM1, %dx
    in %dx, %al
    call putc
    cmp $'\n', %al
    jne 1b
    xor %eax, %eax
    ret
prefix:
    .asciz "echo: "
