    li a1, -1
    li a2, 0
    div a3, a1, a2
    CHECK 1, a3, -1
    divu a3, a1, a2
    CHECK 2, a3, -1
    rem a3, a1, a2
    CHECK 3, a3, -1
    li a1, 7
    remu a3, a1, a2
    CHECK 4, a3, 7
    li a1, 0x8000000000000000
    li a2, -1
    div a3, a1, a2
    CHECK 5, a3, 0x8000000000000000
    rem a3, a1, a2
    CHECK 6, a3, 0
    li a1, 0x80000000
    divw a3, a1, a2
    CHECK 7, a3, 0xffffffff80000000
    remw a3, a1, a2
    CHECK 8, a3, 0
    divw a3, a1, zero
    CHECK 9, a3, -1
    divuw a3, a1, zero
    CHECK 10, a3, -1
    remuw a3, a1, zero
    CHECK 11, a3, 0xffffffff80000000
    li a1, -7
    li a2, 2
    div a3, a1, a2
    CHECK 12, a3, -3
    rem a3, a1, a2
    CHECK 13, a3, -1
    divu a3, a1, a2
    CHECK 14, a3, 0x7ffffffffffffffc
    li a1, 0x123456789abcdef0
    li a2, 0x0fedcba987654321
    mul a3, a1, a2
    CHECK 15, a3, 0x2236d88fe5618cf0
    mulh a3, a1, a2
    CHECK 16, a3, 0x0121fa00ad77d742
    li a1, -2
    li a2, 3
    mulh a3, a1, a2
    CHECK 17, a3, -1
    mulhu a3, a1, a2
    CHECK 18, a3, 2
    mulhsu a3, a1, a2
    CHECK 19, a3, -1
    mulhsu a3, a2, a1
    CHECK 20, a3, 2
    li a1, 0x7fffffff
    mulw a3, a1, a1
    CHECK 21, a3, 1
    li a1, 0x10000
    mulw a3, a1, a1
    CHECK 22, a3, 0
    PASS
