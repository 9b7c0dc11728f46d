//! Exactness proofs for the inline FP fast path, used while the guest has not yet accrued
//! the inexact flag (an inexact result must then go through the helper, which sets it).
//!
//! Reading MXCSR.PE would tell directly, but `stmxcsr` costs tens of cycles here, more than
//! the arithmetic below. The proofs are the classic error-free transformations:
//! - a sum `r = a + b` is exact iff TwoSum's error term `(a - (r - bb)) + (b - bb)`, with
//!   `bb = r - a`, is zero (TwoSum is exact in round-to-nearest, subnormals included);
//! - a product `p = a * b` is exact iff `fma(a, b, -p)` is zero, valid when the exponents of
//!   `a` and `b` sum to at least `emin + precision - 1` (the error is then representable);
//! - a fused `r = a * b + c` is exact if the product is exact (as above, `p = a * b`) and
//!   TwoSum of `p` and `c` is exact (then `a * b + c = p + c = r`).
//!
//! Division and square root fall back to MXCSR.PE (cleared by every slow call).
//!
//! On entry (after `fast_fp_body`): xmm3 = first operand (negated for `-(a*b)` forms),
//! xmm1 = second, xmm2 = third (negated for `... - c`), xmm0 and rax = the result. Every
//! check that fails jumps to the slow path; rax is preserved.

use super::Gen;
use crate::ir::{FastFp, FpOp};
use crate::native as n;
use crate::x86::*;

const MXCSR_PE: u8 = 0x20;
const ADDSD: u8 = 0x58;
const MULSD: u8 = 0x59;
const SUBSD: u8 = 0x5c;
const FMSUB213: u8 = 0xab;

impl Gen<'_> {
    pub(super) fn prove_exact(&mut self, fast: &FastFp, operands: &[R], sites: &mut Vec<usize>) {
        let dbl = fast.double;
        match fast.op {
            FpOp::Add => self.two_sum_exact(dbl, 3, 1, sites),
            FpOp::Sub => {
                // r = a - b = a + (-b).
                let sign = if dbl { 1u64 << 63 } else { 1 << 31 };
                self.a.mov_ri(RCX, sign);
                self.a.mov_rr(true, RDX, operands[1]);
                self.a.alu_rr(true, Alu::Xor, RDX, RCX);
                self.a.movq_to_xmm(true, 1, RDX);
                self.two_sum_exact(dbl, 3, 1, sites);
            }
            FpOp::Mul => {
                self.product_error_representable(dbl, operands, sites);
                self.a.movapd(4, 3);
                self.a.fma213(dbl, FMSUB213, 4, 1, 0);
                self.zero_or_slow(dbl, 4, sites);
            }
            FpOp::MulAdd => {
                self.product_error_representable(dbl, operands, sites);
                self.a.movapd(5, 3);
                self.a.sse_scalar(dbl, MULSD, 5, 1);
                self.a.movapd(4, 3);
                self.a.fma213(dbl, FMSUB213, 4, 1, 5);
                self.zero_or_slow(dbl, 4, sites);
                self.two_sum_exact(dbl, 5, 2, sites);
            }
            FpOp::Eq | FpOp::Lt | FpOp::Le => {}
            FpOp::Div | FpOp::Sqrt => {
                let scratch = mem(R15, n::CTX_SCRATCH);
                self.a.stmxcsr(scratch);
                self.a.test_m8(scratch, MXCSR_PE);
                sites.push(self.a.jcc(Cc::Ne));
            }
        }
    }

    /// Jumps to the slow path unless `xmm0 = p + c` exactly (TwoSum's error is zero).
    fn two_sum_exact(&mut self, dbl: bool, p: u8, c: u8, sites: &mut Vec<usize>) {
        self.a.movapd(6, 0);
        self.a.sse_scalar(dbl, SUBSD, 6, p); // bb = r - p
        self.a.movapd(7, 0);
        self.a.sse_scalar(dbl, SUBSD, 7, 6); // r - bb
        self.a.movapd(4, p);
        self.a.sse_scalar(dbl, SUBSD, 4, 7); // p - (r - bb)
        self.a.movapd(7, c);
        self.a.sse_scalar(dbl, SUBSD, 7, 6); // c - bb
        self.a.sse_scalar(dbl, ADDSD, 4, 7); // error
        self.zero_or_slow(dbl, 4, sites);
    }

    /// Jumps to the slow path unless xmm `x` is +0 or -0.
    fn zero_or_slow(&mut self, dbl: bool, x: u8, sites: &mut Vec<usize>) {
        self.a.movq_from_xmm(dbl, RCX, x);
        self.a.shift_i(dbl, Shift::Shl, RCX, 1);
        sites.push(self.a.jcc(Cc::Ne));
    }

    /// Jumps to the slow path unless the error of `operands[0] * operands[1]` is exactly
    /// representable: their biased exponents sum high enough (with a margin), or one of them
    /// is a zero (the product is then exact).
    fn product_error_representable(&mut self, dbl: bool, operands: &[R], sites: &mut Vec<usize>) {
        // Biased exponents ea + eb >= 2 * bias + emin + precision - 1, plus a margin of 4:
        // binary64: 2046 - 1022 + 52 + 4, binary32: 254 - 126 + 23 + 4.
        let (shift, emask, min_sum) = if dbl {
            (52, 0x7ff, 1080)
        } else {
            (23, 0xff, 155)
        };
        for (k, reg) in [RCX, RDX].into_iter().enumerate() {
            self.a.mov_rr(true, reg, operands[k]);
            self.a.shift_i(true, Shift::Shr, reg, shift);
            self.a.alu_ri(false, Alu::And, reg, emask);
        }
        self.a.alu_rr(false, Alu::Add, RCX, RDX);
        self.a.alu_ri(false, Alu::Cmp, RCX, min_sum);
        let mut ok = vec![self.a.jcc(Cc::Ae)];
        let bits = if dbl { 64 } else { 32 };
        for &r in &operands[..2] {
            // Sign dropped: zero iff the remaining bits are zero (binary32 in the low half).
            self.a.mov_rr(true, RCX, r);
            self.a.shift_i(true, Shift::Shl, RCX, (65 - bits) as u8);
            ok.push(self.a.jcc(Cc::E));
        }
        sites.push(self.a.jmp());
        let here = self.a.pos();
        for site in ok {
            self.a.patch(site, here);
        }
    }
}
