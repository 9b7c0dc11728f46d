# Self-modifying code in S-mode (bare metal, MMU off): a routine in a data page is
# rewritten and called 200 times, the first 100 with fence.i and the rest without (Tandem,
# like QEMU, catches every store to translated code), including a rewrite of code in the
# block that is running. Prints SMODE-SMC-OK and powers off through the SiFive test device;
# FAIL or TRAP and status 1 otherwise.
    .equ UART, 0x10000000
    .equ TEST, 0x100000

    .section .text.start
    .globl _start
_start:
    la t0, mtrap
    csrw mtvec, t0
    # All of memory to S-mode (QEMU refuses mret to S while no PMP entry exists).
    li t0, -1
    csrw pmpaddr0, t0
    li t0, 0x1f             # NAPOT, R, W, X
    csrw pmpcfg0, t0
    la t0, smode
    csrw mepc, t0
    li t0, 3 << 11
    csrc mstatus, t0
    li t0, 1 << 11          # MPP = S
    csrs mstatus, t0
    mret

smode:
    la s0, routine
    li s1, 0
1:  slli t1, s1, 20         # li a0, s1 (addi a0, zero, s1)
    li t2, 0x513
    or t1, t1, t2
    sw t1, 0(s0)
    li t2, 0x8067           # ret
    sw t2, 4(s0)
    li t0, 100
    bge s1, t0, 2f
    fence.i
2:  jalr ra, 0(s0)
    bne a0, s1, fail
    addi s1, s1, 1
    li t0, 200
    blt s1, t0, 1b

    # Code that rewrites the instruction right after its own store, in the same page: the
    # patched `li a0, 7` must run, not the `li a0, 5` it replaces.
    la s0, patch_site
    li t1, 0x00700513       # li a0, 7
    la t2, inline_code
    jr t2
back:
    li t0, 7
    bne a0, t0, fail_inline

    la a0, ok
    call puts
    li t0, 0x5555
    li t1, TEST
    sw t0, 0(t1)
3:  j 3b

fail_inline:
    la a0, inlinemsg
    call puts
fail:
    la a0, failmsg
    call puts
    li t0, 0x13333
    li t1, TEST
    sw t0, 0(t1)
4:  j 4b

    .balign 4
mtrap:
    la a0, trapmsg
    call puts
    j fail

puts:                       # a0: NUL-terminated string
    li t1, UART
5:  lbu t2, 0(a0)
    beqz t2, 7f
6:  lbu t3, 5(t1)
    andi t3, t3, 0x20
    beqz t3, 6b
    sb t2, 0(t1)
    addi a0, a0, 1
    j 5b
7:  ret

    .section .data
    .balign 4096
routine:
    .word 0x00000013, 0x00008067
    .option push
    .option norvc           # 4-byte instructions: the patch replaces exactly one
inline_code:
    sw t1, 0(s0)
patch_site:
    li a0, 5
    j back
    .option pop
ok:      .asciz "SMODE-SMC-OK\n"
failmsg: .asciz "FAIL\n"
trapmsg: .asciz "TRAP\n"
inlinemsg: .asciz "stale code ran after a store to it\n"
