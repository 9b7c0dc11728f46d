    la s0, buf
    li a1, 0x8182838485868788
    sd a1, 0(s0)
    lb a2, 0(s0)
    CHECK 1, a2, 0xffffffffffffff88
    lbu a2, 0(s0)
    CHECK 2, a2, 0x88
    lh a2, 2(s0)
    CHECK 3, a2, 0xffffffffffff8586
    lhu a2, 2(s0)
    CHECK 4, a2, 0x8586
    lw a2, 4(s0)
    CHECK 5, a2, 0xffffffff81828384
    lwu a2, 4(s0)
    CHECK 6, a2, 0x81828384
    ld a2, 0(s0)
    CHECK 7, a2, 0x8182838485868788
    sb zero, 1(s0)
    sh zero, 4(s0)
    ld a2, 0(s0)
    CHECK 8, a2, 0x8182000085860088
    sw a1, 8(s0)
    ld a2, 8(s0)
    CHECK 9, a2, 0x85868788
    # misaligned accesses work in user mode
    ld a2, 1(s0)
    sd a2, 17(s0)
    ld a3, 17(s0)
    CHECK 10, a3, 0x8881820000858600
    # branches and jumps
    li a1, -1
    li a2, 1
    blt a1, a2, 1f
    CHECK 11, zero, 1
1:  bltu a1, a2, 2f
    bge a1, a2, 2f
    bgeu a1, a2, 3f
2:  CHECK 12, zero, 1
3:  beq a1, a1, 4f
    CHECK 13, zero, 1
4:  bne a1, a1, 2b
    jal ra, 5f
    j 6f
5:  ret
6:  la t0, 7f
    jalr t1, 1(t0)   # bit 0 of the target is cleared
8:  CHECK 14, zero, 1
7:  la t2, 8b
    sub t2, t1, t2
    CHECK 15, t2, 0
    PASS
    .data
    .balign 8
buf: .zero 64
