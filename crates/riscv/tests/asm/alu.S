    li a1, 0x7fffffffffffffff
    addi a2, a1, 1
    CHECK 1, a2, 0x8000000000000000
    li a3, -5
    slti a4, a3, -4
    CHECK 2, a4, 1
    sltiu a4, a3, 5
    CHECK 3, a4, 0
    sltu a4, zero, a3
    CHECK 4, a4, 1
    slt a4, a3, zero
    CHECK 5, a4, 1
    li a1, 0xf0f0
    xori a2, a1, -1
    CHECK 6, a2, 0xffffffffffff0f0f
    ori a2, a1, 0x0f
    CHECK 7, a2, 0xf0ff
    andi a2, a1, 0x0ff
    CHECK 8, a2, 0xf0
    lui a2, 0x80000
    CHECK 9, a2, 0xffffffff80000000
0:  auipc a2, 0
    la a3, 0b
    sub a2, a2, a3
    CHECK 10, a2, 0
    # shifts: amounts use only the low 6 (or 5 for W) bits
    li a1, 1
    li a2, 65
    sll a3, a1, a2
    CHECK 11, a3, 2
    li a1, -16
    li a2, 66
    sra a3, a1, a2
    CHECK 12, a3, -4
    srl a3, a1, a2
    CHECK 13, a3, 0x3ffffffffffffffc
    slli a3, a1, 63
    CHECK 14, a3, 0
    srai a3, a1, 63
    CHECK 15, a3, -1
    srli a3, a1, 60
    CHECK 16, a3, 15
    # W forms sign-extend their 32-bit result
    li a1, 0x7fffffff
    addiw a2, a1, 1
    CHECK 17, a2, 0xffffffff80000000
    addw a2, a1, a1
    CHECK 18, a2, -2
    li a1, 0x100000000
    subw a2, zero, a1
    CHECK 19, a2, 0
    li a1, 1
    li a2, 33
    sllw a3, a1, a2
    CHECK 20, a3, 2
    li a1, 0x80000000
    srlw a3, a1, zero
    CHECK 21, a3, 0xffffffff80000000
    srliw a3, a1, 1
    CHECK 22, a3, 0x40000000
    sraiw a3, a1, 4
    CHECK 23, a3, 0xfffffffff8000000
    slliw a3, a1, 0
    CHECK 24, a3, 0xffffffff80000000
    li a2, 36
    sraw a3, a1, a2
    CHECK 25, a3, 0xfffffffff8000000
    sub a3, zero, a1
    CHECK 26, a3, 0xffffffff80000000
    # x0 stays zero
    addi zero, zero, 5
    CHECK 27, zero, 0
    # counters are readable and time does not go backwards; fences are accepted
    rdcycle a0
    rdtime a1
    rdinstret a2
    fence
    fence.i
    fence rw, w
    rdtime a3
    sltu a4, a3, a1
    CHECK 28, a4, 0
    # slli feeding add (lowered together as one scaled lea): the shifted register stays
    # live, is overwritten by the add, or is the add's second operand; add of a constant.
    li a4, 2
    li t0, 10
    bnez sp, 1f     # a new block: a4 and t0 are not constants there
1:  slli a5, a4, 3
    add a6, a5, t0
    slli a1, a4, 2
    add a1, a1, t0
    slli a2, a4, 1
    add a3, t0, a2
    slli s1, a4, 3
    addi s1, s1, -7
    CHECK 29, a5, 16
    CHECK 30, a6, 26
    CHECK 31, a1, 18
    CHECK 32, a3, 14
    CHECK 33, a2, 4
    CHECK 34, s1, 9
    # slli; addi; add chains (one lea with base, scaled index and displacement), with and
    # without the intermediate registers staying live.
    slli s2, a4, 3
    addi s2, s2, 100
    add s2, s2, t0
    slli s3, a4, 2
    addi s4, s3, 5
    add s5, s4, t0
    slli s6, a4, 1
    add s6, t0, s6
    addi s6, s6, -3
    CHECK 35, s2, 126
    CHECK 36, s3, 8
    CHECK 37, s4, 13
    CHECK 38, s5, 23
    CHECK 39, s6, 11
    PASS
