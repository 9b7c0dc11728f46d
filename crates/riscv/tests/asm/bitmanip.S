    li a1, 0x80000001
    li a2, 0x10
    add.uw a3, a1, a2
    CHECK 1, a3, 0x80000011
    li a1, -1
    add.uw a3, a1, zero
    CHECK 2, a3, 0xffffffff
    sh1add a3, a2, a2
    CHECK 3, a3, 0x30
    sh2add a3, a2, a2
    CHECK 4, a3, 0x50
    sh3add a3, a2, a2
    CHECK 5, a3, 0x90
    sh3add.uw a3, a1, zero
    CHECK 6, a3, 0x7fffffff8
    slli.uw a3, a1, 4
    CHECK 7, a3, 0xffffffff0
    li a1, 0xf0
    andn a3, a1, a2
    CHECK 8, a3, 0xe0
    orn a3, zero, a2
    CHECK 9, a3, 0xffffffffffffffef
    xnor a3, a1, a1
    CHECK 10, a3, -1
    clz a3, a1
    CHECK 11, a3, 56
    clz a3, zero
    CHECK 12, a3, 64
    ctz a3, a1
    CHECK 13, a3, 4
    ctz a3, zero
    CHECK 14, a3, 64
    cpop a3, a1
    CHECK 15, a3, 4
    li a4, 0xffffffff00000001
    clzw a3, a4
    CHECK 16, a3, 31
    ctzw a3, zero
    CHECK 17, a3, 32
    cpopw a3, a4
    CHECK 18, a3, 1
    li a4, -5
    max a3, a4, a1
    CHECK 19, a3, 0xf0
    maxu a3, a4, a1
    CHECK 20, a3, -5
    min a3, a4, a1
    CHECK 21, a3, -5
    minu a3, a4, a1
    CHECK 22, a3, 0xf0
    li a4, 0x1280
    sext.b a3, a4
    CHECK 23, a3, -128
    li a4, 0x18000
    sext.h a3, a4
    CHECK 24, a3, 0xffffffffffff8000
    zext.h a3, a4
    CHECK 25, a3, 0x8000
    li a4, 0x8000000000000001
    li a5, 65
    rol a3, a4, a5
    CHECK 26, a3, 3
    ror a3, a4, a5
    CHECK 27, a3, 0xc000000000000000
    rori a3, a4, 4
    CHECK 28, a3, 0x1800000000000000
    li a4, 0x80000001
    rolw a3, a4, a5
    CHECK 29, a3, 3
    rorw a3, a4, a5
    CHECK 30, a3, 0xffffffffc0000000
    roriw a3, a4, 1
    CHECK 31, a3, 0xffffffffc0000000
    li a4, 0x0100ff0000300000
    orc.b a3, a4
    CHECK 32, a3, 0xff00ff0000ff0000
    li a4, 0x0102030405060708
    rev8 a3, a4
    CHECK 33, a3, 0x0807060504030201
    li a5, 63
    bset a3, zero, a5
    CHECK 34, a3, 0x8000000000000000
    bclr a3, a4, zero
    CHECK 35, a3, 0x0102030405060708
    bclri a3, a4, 3
    CHECK 36, a3, 0x0102030405060700
    bext a3, a4, a5
    CHECK 37, a3, 0
    bexti a3, a4, 56
    CHECK 38, a3, 1
    binv a3, a4, a5
    CHECK 39, a3, 0x8102030405060708
    binvi a3, a4, 0
    CHECK 40, a3, 0x0102030405060709
    bseti a3, zero, 32
    CHECK 41, a3, 0x100000000
    PASS
