    .option rvc
    la s0, buf
    c.li a0, -3
    CHECK 1, a0, -3
    c.addi a0, 5
    CHECK 2, a0, 2
    c.addiw a0, -3
    CHECK 3, a0, -1
    c.lui a1, 0xfffff
    CHECK 4, a1, 0xfffffffffffff000
    c.mv a2, a1
    CHECK 5, a2, 0xfffffffffffff000
    c.add a2, a0
    CHECK 6, a2, 0xffffffffffffefff
    c.addi16sp sp, -64
    c.addi4spn a3, sp, 16
    addi a4, sp, 16
    sub a3, a3, a4
    CHECK 8, a3, 0
    c.addi16sp sp, 64
    li a3, 12
    li a4, 10
    c.sub a3, a4
    CHECK 9, a3, 2
    c.xor a3, a4
    CHECK 10, a3, 8
    c.or a3, a4
    CHECK 11, a3, 10
    c.and a3, a4
    CHECK 12, a3, 10
    li a3, 0x7fffffff
    li a4, 1
    c.addw a3, a4
    CHECK 13, a3, 0xffffffff80000000
    c.subw a3, a4
    CHECK 14, a3, 0x7fffffff
    c.slli a3, 33
    CHECK 15, a3, 0xfffffffe00000000
    c.srli a3, 60
    CHECK 16, a3, 15
    li a3, -64
    c.srai a3, 3
    CHECK 17, a3, -8
    c.andi a3, 0x1f
    CHECK 18, a3, 24
    li a4, 0x1122334455667788
    c.sd a4, 8(s0)
    c.ld a5, 8(s0)
    CHECK 19, a5, 0x1122334455667788
    c.sw a4, 16(s0)
    c.lw a5, 16(s0)
    CHECK 20, a5, 0x55667788
    c.sdsp a4, 0(sp)
    c.ldsp a5, 0(sp)
    CHECK 21, a5, 0x1122334455667788
    c.swsp a4, 8(sp)
    c.lwsp a5, 8(sp)
    CHECK 22, a5, 0x55667788
    c.fld fa0, 8(s0)
    c.fsd fa0, 24(s0)
    ld a5, 24(s0)
    CHECK 23, a5, 0x1122334455667788
    c.fsdsp fa0, 16(sp)
    c.fldsp fa1, 16(sp)
    fmv.x.d a5, fa1
    CHECK 24, a5, 0x1122334455667788
    li a0, 0
    c.beqz a0, 1f
    CHECK 25, zero, 1
1:  c.bnez a0, 2f
    c.j 3f
2:  CHECK 26, zero, 1
3:  la t0, 4f
    c.jalr t0
    j 5f
4:  c.jr ra
5:  c.nop
    PASS
    .data
    .balign 8
buf: .zero 64
