# Shared macros for the per-instruction tests. A failing CHECK exits with its number.
.macro CHECK n, reg, val
    li t6, \val
    beq \reg, t6, 9999f
    li a0, \n
    li a7, 93
    ecall
9999:
.endm
# Compare fflags (and clear them).
.macro FLAGS n, val
    csrrw t5, fflags, zero
    CHECK \n, t5, \val
.endm
.macro PASS
    li a0, 0
    li a7, 93
    ecall
.endm
    .text
    .globl _start
_start:
