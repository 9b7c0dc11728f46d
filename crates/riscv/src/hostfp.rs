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
/// `nx_set` says the caller's accrued flags already hold inexact, so the returned flags may
/// omit it (inexactness then need not be determined at all).
pub fn compute(
    f: Fmt,
    op: Op,
    a: u64,
    b: u64,
    c: u64,
    rm: u32,
    nx_set: bool,
) -> Option<(u64, u32)> {
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
    if rm == 0 {
        if nx_set {
            if let Some(r) = rne_no_flags(f, op, a, b, c) {
                return r;
            }
        }
        if let Some(r) = rne_exact_check(f, op, a, b, c) {
            return r;
        }
    }
    let csr: u32 = MXCSR_DEFAULT | (rc(rm) << 13);
    let mut out_csr: u32 = 0;
    let r: u64;
    let double = f.exp_bits == 11;
    // SAFETY: pure register arithmetic plus MXCSR loads/stores of local variables; MXCSR is
    // restored to the default before the block ends, so surrounding code never observes the
    // changed rounding mode. The FMA form is only used after checking the CPU supports it.
    unsafe {
        // Loading `csr` also clears the sticky flags (in RNE it is the default itself).
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

/// `fma64`/`fma32`: `a * b + c` rounded once in RNE (the default MXCSR rounding; flags are
/// ignored). Only called after checking the CPU has FMA.
macro_rules! fma_fn {
    ($name:ident, $t:ty, $insn:literal) => {
        fn $name(a: $t, b: $t, c: $t) -> $t {
            let mut x = a;
            // SAFETY: register-only arithmetic; callers check FMA support first.
            unsafe {
                std::arch::asm!(
                    $insn,
                    x = inout(xmm_reg) x,
                    y = in(xmm_reg) b,
                    z = in(xmm_reg) c,
                    options(pure, nomem, nostack),
                );
            }
            x
        }
    };
}
fma_fn!(fma64, f64, "vfmadd213sd {x}, {y}, {z}");
fma_fn!(fma32, f32, "vfmadd213ss {x}, {y}, {z}");

/// Error-free sum: `s + e == x + y` exactly (RNE, no overflow).
fn two_sum(x: f64, y: f64) -> (f64, f64) {
    let s = x + y;
    let bb = s - x;
    (s, (x - (s - bb)) + (y - bb))
}

/// Whether `pl + ph + z - r` is exactly zero, where `pl + ph` is a nonoverlapping expansion
/// (`|pl|` at most half an ulp of `ph`). The terms are grown into one nonoverlapping expansion
/// (Shewchuk's GROW-EXPANSION: every step is an exact TwoSum), which sums to zero only if every
/// component is zero. `None` if an intermediate overflowed (a component is not finite).
fn expansion_is_zero(pl: f64, ph: f64, z: f64, r: f64) -> Option<bool> {
    // Add z to [pl, ph].
    let (q, h0) = two_sum(z, pl);
    let (q, h1) = two_sum(q, ph);
    // Add -r to [h0, h1, q].
    let (q2, g0) = two_sum(-r, h0);
    let (q2, g1) = two_sum(q2, h1);
    let (q2, g2) = two_sum(q2, q);
    let all = [g0, g1, g2, q2];
    if all.iter().any(|x| !x.is_finite()) {
        return None;
    }
    Some(all.iter().all(|&x| x == 0.0))
}

/// RNE result when inexact needs no deciding: with finite operands and a normal result above
/// the smallest normal, add/sub/mul/fma can only raise inexact, and so can div by a non-zero
/// divisor and sqrt of a non-negative number.
fn rne_no_flags(f: Fmt, op: Op, a: u64, b: u64, c: u64) -> Option<Option<(u64, u32)>> {
    let zero = |x: u64| x << (64 - f.exp_bits - f.mant_bits) == 0; // +-0 (sign shifted out)
    let neg = |x: u64| (x >> (f.exp_bits + f.mant_bits)) & 1 != 0;
    match op {
        Op::Div if zero(b) => return None,
        Op::Sqrt if neg(a) => return None,
        _ => {}
    }
    let r = if f.exp_bits == 11 {
        let (x, y, z) = (f64::from_bits(a), f64::from_bits(b), f64::from_bits(c));
        match op {
            Op::Add => x + y,
            Op::Sub => x - y,
            Op::Mul => x * y,
            Op::Div => x / y,
            Op::Sqrt => x.sqrt(),
            Op::Fma => fma64(x, y, z),
        }
        .to_bits()
    } else {
        let (x, y, z) = (
            f32::from_bits(a as u32),
            f32::from_bits(b as u32),
            f32::from_bits(c as u32),
        );
        match op {
            Op::Add => x + y,
            Op::Sub => x - y,
            Op::Mul => x * y,
            Op::Div => x / y,
            Op::Sqrt => x.sqrt(),
            Op::Fma => fma32(x, y, z),
        }
        .to_bits() as u64
    };
    Some(if needs_slow_result(f, r) {
        None
    } else {
        Some((r, 0))
    })
}

/// RNE add/sub/mul/fma with inexactness found by error-free transformations (no MXCSR
/// access): `Some(answer)` when this path decides, `None` to use the MXCSR path.
fn rne_exact_check(f: Fmt, op: Op, a: u64, b: u64, c: u64) -> Option<Option<(u64, u32)>> {
    let finish = |r: u64, inexact: bool| {
        if needs_slow_result(f, r) {
            None
        } else {
            Some((r, if inexact { NX } else { 0 }))
        }
    };
    if f.exp_bits == 11 {
        let (x, y) = (f64::from_bits(a), f64::from_bits(b));
        let y = if op == Op::Sub { -y } else { y };
        match op {
            Op::Add | Op::Sub => {
                // TwoSum: the rounding error of a sum is exact (no overflow: result checked).
                let r = x + y;
                let bb = r - x;
                let err = (x - (r - bb)) + (y - bb);
                Some(finish(r.to_bits(), err != 0.0))
            }
            Op::Mul if has_fma() => {
                let r = x * y;
                // The product's error is representable only well above the subnormal range.
                let e = (r.to_bits() >> 52) & 0x7ff;
                if !(2 * 53 + 1..0x7ff).contains(&e) {
                    return None;
                }
                let err = fma64(x, y, -r);
                Some(finish(r.to_bits(), err != 0.0))
            }
            Op::Fma => {
                let z = f64::from_bits(c);
                let r = fma64(x, y, z);
                if needs_slow_result(f, r.to_bits()) {
                    return Some(None);
                }
                if x == 0.0 || y == 0.0 {
                    // The product is an exact zero and r (normal) is z itself.
                    return Some(finish(r.to_bits(), false));
                }
                // TwoProd: x*y = ph + pl exactly when ph is well above the subnormal range.
                let ph = x * y;
                let e = (ph.to_bits() >> 52) & 0x7ff;
                if !(2 * 53 + 1..0x7ff).contains(&e) {
                    return None;
                }
                let pl = fma64(x, y, -ph);
                let zero = if pl == 0.0 {
                    // The product is exact, so r rounds ph + z: TwoSum's error decides.
                    let (s, e) = two_sum(ph, z);
                    if s != r || !e.is_finite() {
                        return None;
                    }
                    e == 0.0
                } else {
                    expansion_is_zero(pl, ph, z, r)?
                };
                Some(finish(r.to_bits(), !zero))
            }
            _ => None,
        }
    } else {
        let (x, y) = (f32::from_bits(a as u32), f32::from_bits(b as u32));
        let y = if op == Op::Sub { -y } else { y };
        match op {
            Op::Add | Op::Sub => {
                let r = x + y;
                let bb = r - x;
                let err = (x - (r - bb)) + (y - bb);
                Some(finish(r.to_bits() as u64, err != 0.0))
            }
            Op::Mul => {
                // A binary32 product is exact in binary64; rounding it once gives the result.
                let p = x as f64 * y as f64;
                let r = p as f32;
                Some(finish(r.to_bits() as u64, r as f64 != p))
            }
            Op::Fma => {
                let z = f32::from_bits(c as u32);
                let r = fma32(x, y, z);
                // The product is exact in binary64. If ph + z is not representable there
                // (TwoSum error non-zero) it is not a binary32 number either, so inexact;
                // otherwise it is exactly s, compared with r.
                let ph = x as f64 * y as f64;
                let (s, e) = two_sum(ph, z as f64);
                if !e.is_finite() {
                    return None;
                }
                Some(finish(r.to_bits() as u64, e != 0.0 || s != r as f64))
            }
            _ => None,
        }
    }
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
                if let Some((r, flags)) = compute(f, op, a, b, c, rm, false) {
                    answered += 1;
                    assert_eq!(
                        (r, flags),
                        (want, fl),
                        "{op:?} {a:#x} {b:#x} {c:#x} rm {rm}"
                    );
                }
                if let Some((r, flags)) = compute(f, op, a, b, c, rm, true) {
                    assert_eq!(
                        (r, flags | NX),
                        (want, fl | NX),
                        "nx set: {op:?} {a:#x} {b:#x} {c:#x} rm {rm}"
                    );
                }
            }
        }
        assert!(
            answered > 100_000,
            "fast path answered only {answered} cases"
        );
    }

    /// Fused multiply-adds of short-mantissa operands, often exact, exercise the RNE
    /// error-free inexactness checks (product exact and not).
    #[test]
    fn fma_exactness_agrees_with_softfloat() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut seen = [0; 2];
        for i in 0..60000 {
            let f = if i % 2 == 0 { sf::F64 } else { sf::F32 };
            let bits = [3, 8, 20, 27, 30, 53][(next() % 6) as usize];
            let mut val = || {
                let k = (next() % (1u64 << bits.min(24))) as i64 - (1 << (bits.min(24) - 1));
                let k = if bits > 24 {
                    k * (1 << (bits - 24)) + 1
                } else {
                    k
                };
                let e = (next() % 40) as i32 - 20;
                let v = k as f64 * 2f64.powi(e);
                if f == sf::F64 {
                    v.to_bits()
                } else {
                    (v as f32).to_bits() as u64
                }
            };
            let (a, b, c) = (val(), val(), val());
            for nx in [false, true] {
                let mut fl = 0;
                let want = sf::fma(f, a, b, c, 0, &mut fl);
                if let Some((r, flags)) = compute(f, Op::Fma, a, b, c, 0, nx) {
                    let m = if nx { NX } else { 0 };
                    if !nx {
                        seen[(flags & NX) as usize] += 1;
                    }
                    assert_eq!((r, flags | m), (want, fl | m), "{a:#x} {b:#x} {c:#x}");
                }
            }
        }
        assert!(
            seen[0] > 5000 && seen[1] > 5000,
            "exact/inexact answers: {seen:?}"
        );
    }
}
