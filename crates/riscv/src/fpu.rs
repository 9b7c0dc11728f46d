//! FP helpers called from translated code. Every helper takes its operands' raw values
//! (FP registers as raw bits, NaN-boxed for singles; integer registers for conversions from
//! integers) and returns the result's raw value (an FP register's bits or an integer
//! register's value), so translated code keeps FP registers cached in host registers across
//! the call; helpers only write `fcsr` (accrued flags). The rounding-mode argument is the
//! instruction's rm field (7 = dynamic, already checked valid by the translated code).
//! Sign injection and moves are plain IR (see `trans_fp`).

use crate::cpu::Cpu;
use crate::csr::cpu;
use crate::hostfp;
use crate::softfloat::{self as sf, Fmt, F32, F64};

fn rm_of(c: &Cpu, rm: u64) -> u32 {
    if rm == 7 {
        (c.fcsr >> 5) & 7
    } else {
        rm as u32
    }
}

/// Host fast path when it applies (see `hostfp`), else the exact software implementation.
#[allow(clippy::too_many_arguments)]
fn fast_or(
    f: Fmt,
    op: hostfp::Op,
    a: u64,
    b: u64,
    c: u64,
    rm: u32,
    fl: &mut u32,
    slow: impl FnOnce(&mut u32) -> u64,
) -> u64 {
    match hostfp::compute(f, op, a, b, c, rm, *fl & sf::NX != 0) {
        Some((v, flags)) => {
            *fl |= flags;
            v
        }
        None => slow(fl),
    }
}

fn minmax(c: &mut Cpu, f: Fmt, a: u64, b: u64, max: bool) -> u64 {
    let mut fl = 0;
    let v = sf::minmax(f, unbox(f, a), unbox(f, b), max, &mut fl);
    c.fcsr |= fl;
    boxed(f, v)
}

/// `kind`: 0 feq (quiet), 1 flt, 2 fle.
fn cmp(c: &mut Cpu, f: Fmt, a: u64, b: u64, kind: u32) -> u64 {
    use std::cmp::Ordering::*;
    let mut fl = 0;
    let o = sf::compare(f, unbox(f, a), unbox(f, b), kind == 0, &mut fl);
    c.fcsr |= fl;
    let t = match kind {
        0 => o == Some(Equal),
        1 => o == Some(Less),
        _ => matches!(o, Some(Less | Equal)),
    };
    t as u64
}

fn convert(c: &mut Cpu, from: Fmt, to: Fmt, a: u64, rm: u64) -> u64 {
    let rm = rm_of(c, rm);
    let mut fl = 0;
    let v = sf::convert(from, to, unbox(from, a), rm, &mut fl);
    c.fcsr |= fl;
    boxed(to, v)
}

/// Float to integer: `bits` 32/64, result sign-extended from 32 bits for the W forms.
fn to_int(c: &mut Cpu, f: Fmt, a: u64, rm: u64, signed: bool, bits: u32) -> u64 {
    let rm = rm_of(c, rm);
    let (min, max) = match (signed, bits) {
        (true, 32) => (i32::MIN as i128, i32::MAX as i128),
        (false, 32) => (0, u32::MAX as i128),
        (true, _) => (i64::MIN as i128, i64::MAX as i128),
        (false, _) => (0, u64::MAX as i128),
    };
    let mut fl = 0;
    let v = sf::to_int(f, unbox(f, a), min, max, rm, &mut fl);
    c.fcsr |= fl;
    if bits == 32 {
        v as u32 as i32 as i64 as u64
    } else {
        v as u64
    }
}

fn from_int(c: &mut Cpu, f: Fmt, x: u64, rm: u64, signed: bool, bits: u32) -> u64 {
    let rm = rm_of(c, rm);
    let x = match (signed, bits) {
        (true, 32) => x as u32 as i32 as i64 as u64,
        (false, 32) => x as u32 as u64,
        _ => x,
    };
    let mut fl = 0;
    let v = sf::from_int(f, x, signed, rm, &mut fl);
    c.fcsr |= fl;
    boxed(f, v)
}

/// Unboxes a value of format `f` (an improperly NaN-boxed single is the canonical NaN).
fn unbox(f: Fmt, v: u64) -> u64 {
    if f == F32 && v >> 32 != 0xffff_ffff {
        F32.canonical_nan()
    } else if f == F32 {
        v & 0xffff_ffff
    } else {
        v
    }
}

fn boxed(f: Fmt, v: u64) -> u64 {
    if f == F32 {
        v | 0xffff_ffff_0000_0000
    } else {
        v
    }
}

/// Arithmetic helpers that take their operands' raw register values (`a0`..`a2`) and the rm
/// field (`a3`) and return the result's raw register value, so translated code keeps the FP
/// registers cached across the call; they only write `fcsr`.
fn varith(env: *mut u8, f: Fmt, op: hostfp::Op, a: u64, b: u64, d: u64, rm: u64) -> u64 {
    let c = cpu(env);
    let rm = rm_of(c, rm);
    let (a, b, d) = (unbox(f, a), unbox(f, b), unbox(f, d));
    // Starting from the accrued inexact flag lets the fast path skip deciding it.
    let mut fl = c.fcsr & sf::NX;
    let v = fast_or(f, op, a, b, d, rm, &mut fl, |fl| match op {
        hostfp::Op::Add => sf::add(f, a, b, rm, fl),
        hostfp::Op::Sub => sf::sub(f, a, b, rm, fl),
        hostfp::Op::Mul => sf::mul(f, a, b, rm, fl),
        hostfp::Op::Div => sf::div(f, a, b, rm, fl),
        hostfp::Op::Sqrt => sf::sqrt(f, a, rm, fl),
        hostfp::Op::Fma => sf::fma(f, a, b, d, rm, fl),
    });
    c.fcsr |= fl;
    boxed(f, v)
}

/// Fused forms: `neg_prod` negates a*b, `neg_add` negates c (after unboxing).
#[allow(clippy::too_many_arguments)]
fn vfused(
    env: *mut u8,
    f: Fmt,
    a: u64,
    b: u64,
    d: u64,
    rm: u64,
    neg_prod: bool,
    neg_add: bool,
) -> u64 {
    let sign = if f == F32 { 1u64 << 31 } else { 1u64 << 63 };
    let a = unbox(f, a) ^ if neg_prod { sign } else { 0 };
    let d = unbox(f, d) ^ if neg_add { sign } else { 0 };
    // Boxed again for `varith`, which unboxes.
    varith(env, f, hostfp::Op::Fma, boxed(f, a), b, boxed(f, d), rm)
}

macro_rules! value_helpers {
    ($($name:ident($env:ident, $a:ident, $b:ident, $d:ident, $rm:ident) $body:expr;)*) => {
        /// Value-passing helpers (see [`varith`]), by name.
        #[allow(non_upper_case_globals)]
        pub mod hv {
            use dbt::ir::Helper;
            $(pub const $name: Helper = Helper {
                name: concat!(stringify!($name), "_v"),
                f: f::$name,
                writes: (crate::cpu::FCSR_G, crate::cpu::FCSR_G + 1),
                // They only accrue flags (fflags, the low five bits of fcsr).
                write_bits: 0x1f,
            };)*
            mod f {
                use super::super::*;
                $(
                    #[allow(unused_variables)]
                    pub extern "C" fn $name($env: *mut u8, $a: u64, $b: u64, $d: u64, $rm: u64) -> u64 {
                        $body
                    }
                )*
            }
        }
    };
}

value_helpers! {
    fadd_s(env, a, b, d, rm) varith(env, F32, hostfp::Op::Add, a, b, 0, rm);
    fsub_s(env, a, b, d, rm) varith(env, F32, hostfp::Op::Sub, a, b, 0, rm);
    fmul_s(env, a, b, d, rm) varith(env, F32, hostfp::Op::Mul, a, b, 0, rm);
    fdiv_s(env, a, b, d, rm) varith(env, F32, hostfp::Op::Div, a, b, 0, rm);
    fsqrt_s(env, a, b, d, rm) varith(env, F32, hostfp::Op::Sqrt, a, 0, 0, rm);
    fadd_d(env, a, b, d, rm) varith(env, F64, hostfp::Op::Add, a, b, 0, rm);
    fsub_d(env, a, b, d, rm) varith(env, F64, hostfp::Op::Sub, a, b, 0, rm);
    fmul_d(env, a, b, d, rm) varith(env, F64, hostfp::Op::Mul, a, b, 0, rm);
    fdiv_d(env, a, b, d, rm) varith(env, F64, hostfp::Op::Div, a, b, 0, rm);
    fsqrt_d(env, a, b, d, rm) varith(env, F64, hostfp::Op::Sqrt, a, 0, 0, rm);
    fmadd_s(env, a, b, d, rm) vfused(env, F32, a, b, d, rm, false, false);
    fmsub_s(env, a, b, d, rm) vfused(env, F32, a, b, d, rm, false, true);
    fnmsub_s(env, a, b, d, rm) vfused(env, F32, a, b, d, rm, true, false);
    fnmadd_s(env, a, b, d, rm) vfused(env, F32, a, b, d, rm, true, true);
    fmadd_d(env, a, b, d, rm) vfused(env, F64, a, b, d, rm, false, false);
    fmsub_d(env, a, b, d, rm) vfused(env, F64, a, b, d, rm, false, true);
    fnmsub_d(env, a, b, d, rm) vfused(env, F64, a, b, d, rm, true, false);
    fnmadd_d(env, a, b, d, rm) vfused(env, F64, a, b, d, rm, true, true);
    fmin_s(env, a, b, d, rm) minmax(cpu(env), F32, a, b, false);
    fmax_s(env, a, b, d, rm) minmax(cpu(env), F32, a, b, true);
    fmin_d(env, a, b, d, rm) minmax(cpu(env), F64, a, b, false);
    fmax_d(env, a, b, d, rm) minmax(cpu(env), F64, a, b, true);
    fcvt_s_d(env, a, b, d, rm) convert(cpu(env), F64, F32, a, rm);
    fcvt_d_s(env, a, b, d, rm) convert(cpu(env), F32, F64, a, rm);
    feq_s(env, a, b, d, rm) cmp(cpu(env), F32, a, b, 0);
    flt_s(env, a, b, d, rm) cmp(cpu(env), F32, a, b, 1);
    fle_s(env, a, b, d, rm) cmp(cpu(env), F32, a, b, 2);
    feq_d(env, a, b, d, rm) cmp(cpu(env), F64, a, b, 0);
    flt_d(env, a, b, d, rm) cmp(cpu(env), F64, a, b, 1);
    fle_d(env, a, b, d, rm) cmp(cpu(env), F64, a, b, 2);
    fclass_s(env, a, b, d, rm) sf::classify(F32, unbox(F32, a));
    fclass_d(env, a, b, d, rm) sf::classify(F64, a);
    fcvt_w_s(env, a, b, d, rm) to_int(cpu(env), F32, a, rm, true, 32);
    fcvt_wu_s(env, a, b, d, rm) to_int(cpu(env), F32, a, rm, false, 32);
    fcvt_l_s(env, a, b, d, rm) to_int(cpu(env), F32, a, rm, true, 64);
    fcvt_lu_s(env, a, b, d, rm) to_int(cpu(env), F32, a, rm, false, 64);
    fcvt_w_d(env, a, b, d, rm) to_int(cpu(env), F64, a, rm, true, 32);
    fcvt_wu_d(env, a, b, d, rm) to_int(cpu(env), F64, a, rm, false, 32);
    fcvt_l_d(env, a, b, d, rm) to_int(cpu(env), F64, a, rm, true, 64);
    fcvt_lu_d(env, a, b, d, rm) to_int(cpu(env), F64, a, rm, false, 64);
    fcvt_s_w(env, a, b, d, rm) from_int(cpu(env), F32, a, rm, true, 32);
    fcvt_s_wu(env, a, b, d, rm) from_int(cpu(env), F32, a, rm, false, 32);
    fcvt_s_l(env, a, b, d, rm) from_int(cpu(env), F32, a, rm, true, 64);
    fcvt_s_lu(env, a, b, d, rm) from_int(cpu(env), F32, a, rm, false, 64);
    fcvt_d_w(env, a, b, d, rm) from_int(cpu(env), F64, a, rm, true, 32);
    fcvt_d_wu(env, a, b, d, rm) from_int(cpu(env), F64, a, rm, false, 32);
    fcvt_d_l(env, a, b, d, rm) from_int(cpu(env), F64, a, rm, true, 64);
    fcvt_d_lu(env, a, b, d, rm) from_int(cpu(env), F64, a, rm, false, 64);
}
