    la s0, buf
    li a1, 5
    sd a1, 0(s0)
    li a2, 3
    amoadd.d a3, a2, (s0)
    CHECK 1, a3, 5
    ld a4, 0(s0)
    CHECK 2, a4, 8
    li a2, -1
    amoswap.w a3, a2, (s0)
    CHECK 3, a3, 8
    lw a4, 0(s0)
    CHECK 4, a4, -1
    li a2, 7
    amomin.w a3, a2, (s0)
    CHECK 5, a3, -1
    amominu.w a3, a2, (s0)
    CHECK 6, a3, -1
    lwu a4, 0(s0)
    CHECK 7, a4, 7
    li a2, -9
    amomax.w a3, a2, (s0)
    CHECK 8, a3, 7
    amomaxu.w a3, a2, (s0)
    CHECK 9, a3, 7
    lw a4, 0(s0)
    CHECK 10, a4, -9
    li a2, 0xff
    amoand.d a3, a2, (s0)
    amoor.d a3, a2, (s0)
    amoxor.d a3, a2, (s0)
    ld a4, 0(s0)
    CHECK 11, a4, 0
    li a2, -3
    amomin.d a3, a2, (s0)
    amomaxu.d a3, a2, (s0)
    amominu.d a3, zero, (s0)
    amomax.d a3, a2, (s0)
    ld a4, 0(s0)
    CHECK 12, a4, 0
    # LR/SC
    lr.d a3, (s0)
    li a2, 42
    sc.d a4, a2, (s0)
    CHECK 13, a4, 0
    ld a5, 0(s0)
    CHECK 14, a5, 42
    sc.d a4, a2, (s0)          # no reservation any more
    CHECK 15, a4, 1
    lr.w a3, (s0)
    addi t0, s0, 4
    sc.w a4, zero, (t0)        # different address fails
    CHECK 16, a4, 1
    lr.w.aq a3, (s0)
    sc.w.rl a4, a1, (s0)
    CHECK 17, a4, 0
    lw a5, 0(s0)
    CHECK 18, a5, 5
    PASS
    .data
    .balign 8
buf: .zero 16
