.macro LD f, val
    li t0, \val
    fmv.d.x \f, t0
.endm
    csrw fflags, zero
    # NaN boxing: single-precision results are boxed, unboxed inputs read as canonical NaN
    li t0, 0x3f800000
    fmv.w.x fa0, t0
    fmv.x.d a0, fa0
    CHECK 1, a0, 0xffffffff3f800000
    fadd.s fa1, fa0, fa0
    fmv.x.d a0, fa1
    CHECK 2, a0, 0xffffffff40000000
    LD fa2, 0x3f800000
    fadd.s fa1, fa2, fa0
    fmv.x.d a0, fa1
    CHECK 3, a0, 0xffffffff7fc00000
    FLAGS 4, 0
    fmv.x.w a0, fa2
    CHECK 5, a0, 0x3f800000
    li t0, 0x80000000
    fmv.w.x fa3, t0
    fmv.x.w a0, fa3
    CHECK 6, a0, 0xffffffff80000000
    # canonical NaN and invalid
    LD fa0, 0
    fdiv.d fa1, fa0, fa0
    fmv.x.d a0, fa1
    CHECK 7, a0, 0x7ff8000000000000
    FLAGS 8, 16
    LD fa0, 0x7ff0000000000001
    LD fa2, 0x3ff0000000000000
    fadd.d fa1, fa0, fa2
    fmv.x.d a0, fa1
    CHECK 9, a0, 0x7ff8000000000000
    FLAGS 10, 16
    LD fa0, 0x7ff8000000000123
    fadd.d fa1, fa0, fa2
    fmv.x.d a0, fa1
    CHECK 11, a0, 0x7ff8000000000000
    FLAGS 12, 0
    LD fa0, 0
    fdiv.d fa1, fa2, fa0
    fmv.x.d a0, fa1
    CHECK 13, a0, 0x7ff0000000000000
    FLAGS 14, 8
    # rounding modes on 1 + 2^-53 (a tie) and its negation
    LD fa3, 0x3ca0000000000000
    fadd.d fa1, fa2, fa3, rne
    fmv.x.d a0, fa1
    CHECK 15, a0, 0x3ff0000000000000
    FLAGS 16, 1
    fadd.d fa1, fa2, fa3, rmm
    fmv.x.d a0, fa1
    CHECK 17, a0, 0x3ff0000000000001
    fadd.d fa1, fa2, fa3, rup
    fmv.x.d a0, fa1
    CHECK 18, a0, 0x3ff0000000000001
    fadd.d fa1, fa2, fa3, rtz
    fmv.x.d a0, fa1
    CHECK 19, a0, 0x3ff0000000000000
    fneg.d fa4, fa2
    fsub.d fa1, fa4, fa3, rdn
    fmv.x.d a0, fa1
    CHECK 20, a0, 0xbff0000000000001
    fsub.d fa1, fa4, fa3, rup
    fmv.x.d a0, fa1
    CHECK 21, a0, 0xbff0000000000000
    # dynamic rounding mode from frm
    fsrmi 4
    fadd.d fa1, fa2, fa3
    fmv.x.d a0, fa1
    CHECK 22, a0, 0x3ff0000000000001
    frrm a0
    CHECK 23, a0, 4
    fsrmi 0
    FLAGS 24, 1
    # conversions to integer
    LD fa0, 0x4004000000000000
    fcvt.w.d a0, fa0, rne
    CHECK 25, a0, 2
    fcvt.w.d a0, fa0, rmm
    CHECK 26, a0, 3
    fneg.d fa1, fa0
    fcvt.l.d a0, fa1, rdn
    CHECK 27, a0, -3
    fcvt.l.d a0, fa1, rup
    CHECK 28, a0, -2
    FLAGS 29, 1
    LD fa0, 0x7ff8000000000000
    fcvt.w.d a0, fa0
    CHECK 30, a0, 0x7fffffff
    FLAGS 31, 16
    fcvt.wu.d a0, fa4
    CHECK 32, a0, 0
    FLAGS 33, 16
    LD fa0, 0x41e65a0bc0000000
    fcvt.wu.d a0, fa0
    CHECK 34, a0, 0xffffffffb2d05e00
    fcvt.w.d a0, fa0
    CHECK 35, a0, 0x7fffffff
    FLAGS 36, 16
    fcvt.lu.d a0, fa4, rtz
    CHECK 37, a0, 0
    FLAGS 38, 16
    # integer to float
    li a1, -1
    fcvt.s.lu fa0, a1
    fmv.x.w a0, fa0
    CHECK 39, a0, 0x5f800000
    FLAGS 40, 1
    fcvt.s.lu fa0, a1, rtz
    fmv.x.w a0, fa0
    CHECK 41, a0, 0x5f7fffff
    fcvt.d.w fa0, a1
    fmv.x.d a0, fa0
    CHECK 42, a0, 0xbff0000000000000
    fcvt.d.wu fa0, a1
    fmv.x.d a0, fa0
    CHECK 43, a0, 0x41efffffffe00000
    FLAGS 44, 1
    # narrowing: overflow and underflow
    LD fa0, 0x7e37e43c8800759c
    fcvt.s.d fa1, fa0
    fmv.x.w a0, fa1
    CHECK 45, a0, 0x7f800000
    FLAGS 46, 5
    fcvt.s.d fa1, fa0, rtz
    fmv.x.w a0, fa1
    CHECK 47, a0, 0x7f7fffff
    FLAGS 48, 5
    LD fa0, 0x0010000000000001
    LD fa1, 0x3fe0000000000000
    fmul.d fa2, fa0, fa1
    fmv.x.d a0, fa2
    CHECK 49, a0, 0x0008000000000000
    FLAGS 50, 3
    LD fa0, 0x0010000000000000
    fmul.d fa2, fa0, fa1
    FLAGS 51, 0
    # min/max, signed zeros, NaNs
    LD fa0, 0x8000000000000000
    LD fa1, 0
    fmin.d fa2, fa0, fa1
    fmv.x.d a0, fa2
    CHECK 52, a0, 0x8000000000000000
    fmax.d fa2, fa0, fa1
    fmv.x.d a0, fa2
    CHECK 53, a0, 0
    LD fa3, 0x7ff8000000000000
    LD fa4, 0x3ff8000000000000
    fmax.d fa2, fa3, fa4
    fmv.x.d a0, fa2
    CHECK 54, a0, 0x3ff8000000000000
    fmin.d fa2, fa3, fa3
    fmv.x.d a0, fa2
    CHECK 55, a0, 0x7ff8000000000000
    FLAGS 56, 0
    LD fa5, 0x7ff0000000000001
    fmin.d fa2, fa5, fa4
    FLAGS 57, 16
    # comparisons
    feq.d a0, fa3, fa4
    CHECK 58, a0, 0
    FLAGS 59, 0
    flt.d a0, fa3, fa4
    CHECK 60, a0, 0
    FLAGS 61, 16
    fle.d a0, fa0, fa1
    CHECK 62, a0, 1
    flt.d a0, fa0, fa1
    CHECK 63, a0, 0
    feq.s a0, fa3, fa3
    CHECK 64, a0, 0
    # classify
    fclass.d a0, fa0
    CHECK 65, a0, 8
    fclass.d a0, fa5
    CHECK 66, a0, 0x100
    fclass.d a0, fa3
    CHECK 67, a0, 0x200
    fclass.s a0, fa4
    CHECK 68, a0, 0x200
    LD fa6, 0x0000000000000001
    fclass.d a0, fa6
    CHECK 69, a0, 0x20
    # sign injection
    fsgnjn.d fa2, fa4, fa4
    fmv.x.d a0, fa2
    CHECK 70, a0, 0xbff8000000000000
    fsgnjx.d fa2, fa2, fa0
    fmv.x.d a0, fa2
    CHECK 71, a0, 0x3ff8000000000000
    fsgnj.d fa2, fa4, fa0
    fmv.x.d a0, fa2
    CHECK 72, a0, 0xbff8000000000000
    # fused multiply-add, single rounding
    LD fa0, 0x3ff0000000000001
    LD fa1, 0xbff0000000000000
    fmadd.d fa2, fa0, fa0, fa1
    fmv.x.d a0, fa2
    CHECK 73, a0, 0x3cc0000000000000
    fnmsub.d fa2, fa0, fa0, fa0
    fmv.x.d a0, fa2
    CHECK 74, a0, 0xbcb0000000000001
    fmsub.d fa2, fa1, fa1, fa1
    fmv.x.d a0, fa2
    CHECK 75, a0, 0x4000000000000000
    fnmadd.d fa2, fa1, fa1, fa1
    fmv.x.d a0, fa2
    CHECK 76, a0, 0
    FLAGS 77, 1
    # sqrt
    LD fa0, 0x4000000000000000
    fsqrt.d fa1, fa0
    fmv.x.d a0, fa1
    CHECK 78, a0, 0x3ff6a09e667f3bcd
    FLAGS 79, 1
    fsqrt.d fa1, fa4
    fneg.d fa2, fa0
    fsqrt.d fa1, fa2
    fmv.x.d a0, fa1
    CHECK 80, a0, 0x7ff8000000000000
    FLAGS 81, 17
    # widening of a signalling NaN gives the canonical NaN
    li t0, 0xffffffff7f800001
    fmv.d.x fa0, t0
    fcvt.d.s fa1, fa0
    fmv.x.d a0, fa1
    CHECK 82, a0, 0x7ff8000000000000
    FLAGS 83, 16
    # loads and stores
    la s0, fbuf
    li t0, 0x40490fdb
    sw t0, 0(s0)
    flw fa0, 0(s0)
    fmv.x.d a0, fa0
    CHECK 84, a0, 0xffffffff40490fdb
    fsw fa0, 4(s0)
    lwu a0, 4(s0)
    CHECK 85, a0, 0x40490fdb
    fsd fa0, 8(s0)
    fld fa1, 8(s0)
    fmv.x.d a0, fa1
    CHECK 86, a0, 0xffffffff40490fdb
    # fcsr layout
    li t0, 0xff
    csrw fcsr, t0
    frflags a0
    CHECK 87, a0, 0x1f
    frrm a0
    CHECK 88, a0, 7
    csrw fcsr, zero
    # exceptions of results an inline host fast path keeps (dynamic rounding, RNE): overflow,
    # underflow, an exact subnormal (no underflow), tininess detected after rounding (a fused
    # result just below 2^-1022 that rounds to it is not tiny: inexact only; a product that
    # rounds to 2^-1022 only at subnormal precision is), binary32 too
    LD fa0, 0x7fe0000000000000
    fmul.d fa1, fa0, fa0
    fmv.x.d a0, fa1
    CHECK 89, a0, 0x7ff0000000000000
    FLAGS 90, 5
    LD fa0, 0x1a70000000000000
    fmul.d fa1, fa0, fa0
    fmv.x.d a0, fa1
    CHECK 91, a0, 0
    FLAGS 92, 3
    LD fa0, 0x0010000000000000
    LD fa2, 0x3fe0000000000000
    fmul.d fa1, fa0, fa2
    fmv.x.d a0, fa1
    CHECK 93, a0, 0x0008000000000000
    FLAGS 94, 0
    LD fa0, 0x1e30000000000000
    LD fa2, 0x9e60000000000000
    LD fa3, 0x0010000000000000
    fmadd.d fa1, fa0, fa2, fa3
    fmv.x.d a0, fa1
    CHECK 95, a0, 0x0010000000000000
    FLAGS 96, 1
    LD fa2, 0x3fefffffffffffff
    fmul.d fa1, fa3, fa2
    fmv.x.d a0, fa1
    CHECK 97, a0, 0x0010000000000000
    FLAGS 98, 3
    li t0, 0x0d800000
    fmv.w.x fa0, t0
    fmul.s fa1, fa0, fa0
    fmv.x.w a0, fa1
    CHECK 99, a0, 0
    FLAGS 100, 3
    li t0, 0x7e800000
    fmv.w.x fa0, t0
    fadd.s fa1, fa0, fa0
    fmv.x.w a0, fa1
    CHECK 101, a0, 0x7f000000
    FLAGS 102, 0
    fmul.s fa1, fa0, fa0
    fmv.x.w a0, fa1
    CHECK 103, a0, 0x7f800000
    FLAGS 104, 5
    fsqrt.d fa1, fa3
    fmv.x.d a0, fa1
    CHECK 105, a0, 0x2000000000000000
    FLAGS 106, 0
    # GCC's isless(): frflags/flt/fsflags around a comparison write only the flags, so the
    # block goes on past the branch after it, FP-mode specialised; an add there still rounds
    # in the dynamic mode, first RUP, then RNE on a second pass through the same code.
    LD fa2, 0x3ff0000000000000
    LD fa3, 0x3ca0000000000000
    li t1, 2
    fsrmi 3
isless_loop:
    frflags t2
    flt.d a1, fa2, fa3
    fsflags t2
    bnez a1, isless_wrong
    fadd.d fa1, fa2, fa3
    fmv.x.d a0, fa1
    addi t1, t1, -1
    beqz t1, isless_done
    CHECK 107, a0, 0x3ff0000000000001
    fsrmi 0
    j isless_loop
isless_wrong:
    CHECK 108, a1, 0
isless_done:
    CHECK 109, a0, 0x3ff0000000000000
    FLAGS 110, 1
    PASS
    .data
    .balign 8
fbuf: .zero 16
