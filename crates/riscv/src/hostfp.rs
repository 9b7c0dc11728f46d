//! Fast path for the common FP arithmetic cases using the host's SSE/FMA unit.
//!
//! IEEE 754 fixes the correctly rounded result for RNE/RTZ/RDN/RUP, so the host computes the
//! same value as `softfloat` whenever the operands and the result are ordinary numbers. The
//! cases where RISC-V and x86 could differ (NaN payloads, tininess detection for underflow,
//! overflow, zero signs, RMM which x86 lacks) all involve a NaN, an infinity, RMM, or a result
//! that is zero, subnormal or at the smallest normal: those return `None` and the caller falls
//! back to `softfloat`, as does any operation for which the host raised invalid, divide by
//! zero, overflow or underflow. On the fast path the only flag left is inexact (MXCSR.PE). Everything runs inside one asm block so the compiler never sees a non-default
//! MXCSR (Rust code assumes round-to-nearest and no flag side effects).

use crate::softfloat::{Fmt, NX, RMM};

/// Host operations with a fast path.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Sqrt,
    /// a * b + c
    Fma,
}

const MXCSR_DEFAULT: u32 = 0x1f80; // all exceptions masked, RNE, no flags
const IE: u32 = 1;
const ZE: u32 = 1 << 2;
const OE: u32 = 1 << 3;
const UE: u32 = 1 << 4;
const PE: u32 = 1 << 5;

fn has_fma() -> bool {
    std::is_x86_feature_detected!("fma")
}

/// exponent field all ones (inf/NaN)
fn special(f: Fmt, x: u64) -> bool {
    (x >> f.mant_bits) & ((1 << f.exp_bits) - 1) == (1 << f.exp_bits) - 1
}

/// Result is not a normal number strictly above the smallest normal in magnitude.
fn needs_slow_result(f: Fmt, r: u64) -> bool {
    let e = (r >> f.mant_bits) & ((1 << f.exp_bits) - 1);
    let m = r & ((1 << f.mant_bits) - 1);
    e == 0 || e == (1 << f.exp_bits) - 1 || (e == 1 && m == 0)
}

/// Computes `op` in rounding mode `rm` (0..=3) on the host; `None` means "use softfloat".
pub fn compute(f: Fmt, op: Op, a: u64, b: u64, c: u64, rm: u32) -> Option<(u64, u32)> {
    if rm >= RMM
        || special(f, a)
        || (op != Op::Sqrt && special(f, b))
        || (op == Op::Fma && special(f, c))
    {
        return None;
    }
    if op == Op::Fma && !has_fma() {
        return None;
    }
    let csr: u32 = MXCSR_DEFAULT | (rc(rm) << 13);
    let mut out_csr: u32 = 0;
    let r: u64;
    let double = f.exp_bits == 11;
    // SAFETY: pure register arithmetic plus MXCSR loads/stores of local variables; MXCSR is
    // restored to the default before the block ends, so surrounding code never observes the
    // changed rounding mode. The FMA form is only used after checking the CPU supports it.
    unsafe {
        macro_rules! run {
            ($insn:literal) => {{
                let mut x: u64 = a;
                std::arch::asm!(
                    "ldmxcsr dword ptr [{csr}]",
                    "movq xmm0, {x}",
                    "movq xmm1, {y}",
                    "movq xmm2, {z}",
                    $insn,
                    "movq {x}, xmm0",
                    "stmxcsr dword ptr [{out}]",
                    "ldmxcsr dword ptr [{def}]",
                    x = inout(reg) x,
                    y = in(reg) b,
                    z = in(reg) c,
                    csr = in(reg) &csr,
                    out = in(reg) &mut out_csr,
                    def = in(reg) &MXCSR_DEFAULT,
                    out("xmm0") _, out("xmm1") _, out("xmm2") _,
                    options(nostack),
                );
                x
            }};
        }
        r = match (op, double) {
            (Op::Add, true) => run!("addsd xmm0, xmm1"),
            (Op::Sub, true) => run!("subsd xmm0, xmm1"),
            (Op::Mul, true) => run!("mulsd xmm0, xmm1"),
            (Op::Div, true) => run!("divsd xmm0, xmm1"),
            (Op::Sqrt, true) => run!("sqrtsd xmm0, xmm0"),
            (Op::Fma, true) => run!("vfmadd213sd xmm0, xmm1, xmm2"),
            (Op::Add, false) => run!("addss xmm0, xmm1"),
            (Op::Sub, false) => run!("subss xmm0, xmm1"),
            (Op::Mul, false) => run!("mulss xmm0, xmm1"),
            (Op::Div, false) => run!("divss xmm0, xmm1"),
            (Op::Sqrt, false) => run!("sqrtss xmm0, xmm0"),
            (Op::Fma, false) => run!("vfmadd213ss xmm0, xmm1, xmm2"),
        };
    }
    let r = if double { r } else { r & 0xffff_ffff };
    // Invalid, divide-by-zero, overflow or underflow (overflow in RTZ/RDN/RUP can give the
    // largest finite number, so the result alone does not reveal it): let softfloat decide.
    if out_csr & (IE | ZE | OE | UE) != 0 || needs_slow_result(f, r) {
        return None;
    }
    Some((r, if out_csr & PE != 0 { NX } else { 0 }))
}

/// MXCSR rounding-control encoding of a RISC-V rounding mode (RNE, RTZ, RDN, RUP).
fn rc(rm: u32) -> u32 {
    match rm {
        0 => 0, // nearest
        1 => 3, // toward zero
        2 => 1, // down
        _ => 2, // up
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::softfloat as sf;

    /// The fast path agrees with softfloat (value and flags) wherever it answers.
    #[test]
    fn agrees_with_softfloat() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut answered = 0;
        for i in 0..40000 {
            let f = if i % 2 == 0 { sf::F64 } else { sf::F32 };
            let mask = if i % 2 == 0 { u64::MAX } else { 0xffff_ffff };
            // Bias exponents towards the middle so most cases are ordinary numbers.
            let pick = |v: u64| {
                if v.is_multiple_of(4) {
                    v & mask
                } else if f == sf::F64 {
                    (v & 0x800f_ffff_ffff_ffff) | ((0x3f0 + (v >> 52) % 32) << 52)
                } else {
                    (v & 0x807f_ffff) | ((0x70 + (v >> 23) % 32) << 23) & 0xffff_ffff
                }
            };
            let (a, b, c) = (pick(next()), pick(next()), pick(next()));
            let rm = (next() % 4) as u32;
            for op in [Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Sqrt, Op::Fma] {
                let a = if op == Op::Sqrt {
                    a & !(1 << (f.exp_bits + f.mant_bits))
                } else {
                    a
                };
                let mut fl = 0;
                let want = match op {
                    Op::Add => sf::add(f, a, b, rm, &mut fl),
                    Op::Sub => sf::sub(f, a, b, rm, &mut fl),
                    Op::Mul => sf::mul(f, a, b, rm, &mut fl),
                    Op::Div => sf::div(f, a, b, rm, &mut fl),
                    Op::Sqrt => sf::sqrt(f, a, rm, &mut fl),
                    Op::Fma => sf::fma(f, a, b, c, rm, &mut fl),
                };
                if let Some((r, flags)) = compute(f, op, a, b, c, rm) {
                    answered += 1;
                    assert_eq!(
                        (r, flags),
                        (want, fl),
                        "{op:?} {a:#x} {b:#x} {c:#x} rm {rm}"
                    );
                }
            }
        }
        assert!(
            answered > 100_000,
            "fast path answered only {answered} cases"
        );
    }
}
