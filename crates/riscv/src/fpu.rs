//! FP helpers called from translated code. Arithmetic (add, sub, mul, div, sqrt, fused
//! multiply-add; module [`hv`]) takes the operands' raw register values and returns the result's,
//! so the FP registers stay cached in host registers across the call. The other helpers read
//! and write `Cpu::f` and `fcsr` directly, take their register numbers packed in `a0`
//! (`rd | rs1 << 5 | rs2 << 10`), the instruction's rm in `a1` (7 = dynamic, already
//! checked valid by the translated code), an integer operand in `a2`, and return the integer
//! result if the instruction has one.

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

/// Reads register `i` as a value of format `f` (an improperly NaN-boxed single is the
/// canonical NaN).
fn get(c: &Cpu, f: Fmt, i: u64) -> u64 {
    let v = c.f[(i & 31) as usize];
    if f == F32 {
        if v >> 32 == 0xffff_ffff {
            v & 0xffff_ffff
        } else {
            F32.canonical_nan()
        }
    } else {
        v
    }
}

fn set(c: &mut Cpu, f: Fmt, i: u64, v: u64) {
    c.f[(i & 31) as usize] = if f == F32 {
        v | 0xffff_ffff_0000_0000
    } else {
        v
    };
}

struct Regs {
    rd: u64,
    rs1: u64,
    rs2: u64,
}

fn regs(a0: u64) -> Regs {
    Regs {
        rd: a0 & 31,
        rs1: (a0 >> 5) & 31,
        rs2: (a0 >> 10) & 31,
    }
}

macro_rules! helpers {
    ($($name:ident($c:ident, $r:ident, $rm:ident, $x:ident) $body:block)*) => {
        $(
            #[allow(unused_variables)]
            extern "C" fn $name(env: *mut u8, a0: u64, a1: u64, a2: u64, _: u64) -> u64 {
                let $c = cpu(env);
                let $r = regs(a0);
                let $rm = rm_of($c, a1);
                let $x = a2;
                $body
            }
        )*
        /// Helper table, by name.
        #[allow(non_upper_case_globals)] // named after the instructions they implement
        pub mod h {
            use dbt::ir::Helper;
            $(pub const $name: Helper = Helper {
                name: stringify!($name),
                f: super::$name,
                writes: (crate::cpu::F_BASE, crate::cpu::FCSR_G + 1),
            };)*
        }
    };
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

fn sgnj(c: &mut Cpu, f: Fmt, r: &Regs, kind: u32) -> u64 {
    let sign = if f == F32 { 1u64 << 31 } else { 1u64 << 63 };
    let (a, b) = (get(c, f, r.rs1), get(c, f, r.rs2));
    let s = match kind {
        0 => b & sign,
        1 => !b & sign,
        _ => (a ^ b) & sign,
    };
    set(c, f, r.rd, (a & !sign) | s);
    0
}

fn minmax(c: &mut Cpu, f: Fmt, r: &Regs, max: bool) -> u64 {
    let mut fl = 0;
    let v = sf::minmax(f, get(c, f, r.rs1), get(c, f, r.rs2), max, &mut fl);
    set(c, f, r.rd, v);
    c.fcsr |= fl;
    0
}

fn cmp(c: &mut Cpu, f: Fmt, r: &Regs, kind: u32) -> u64 {
    use std::cmp::Ordering::*;
    let mut fl = 0;
    let o = sf::compare(f, get(c, f, r.rs1), get(c, f, r.rs2), kind == 0, &mut fl);
    c.fcsr |= fl;
    let t = match kind {
        0 => o == Some(Equal),
        1 => o == Some(Less),
        _ => matches!(o, Some(Less | Equal)),
    };
    t as u64
}

/// Float to integer: `bits` 32/64, result sign-extended from 32 bits for the W forms.
fn to_int(c: &mut Cpu, f: Fmt, r: &Regs, rm: u32, signed: bool, bits: u32) -> u64 {
    let (min, max) = match (signed, bits) {
        (true, 32) => (i32::MIN as i128, i32::MAX as i128),
        (false, 32) => (0, u32::MAX as i128),
        (true, _) => (i64::MIN as i128, i64::MAX as i128),
        (false, _) => (0, u64::MAX as i128),
    };
    let mut fl = 0;
    let v = sf::to_int(f, get(c, f, r.rs1), min, max, rm, &mut fl);
    c.fcsr |= fl;
    if bits == 32 {
        v as u32 as i32 as i64 as u64
    } else {
        v as u64
    }
}

fn from_int(c: &mut Cpu, f: Fmt, r: &Regs, rm: u32, x: u64, signed: bool, bits: u32) -> u64 {
    let x = match (signed, bits) {
        (true, 32) => x as u32 as i32 as i64 as u64,
        (false, 32) => x as u32 as u64,
        _ => x,
    };
    let mut fl = 0;
    let v = sf::from_int(f, x, signed, rm, &mut fl);
    set(c, f, r.rd, v);
    c.fcsr |= fl;
    0
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
}

helpers! {
    fsgnj_s(c, r, rm, x) { sgnj(c, F32, &r, 0) }
    fsgnjn_s(c, r, rm, x) { sgnj(c, F32, &r, 1) }
    fsgnjx_s(c, r, rm, x) { sgnj(c, F32, &r, 2) }
    fsgnj_d(c, r, rm, x) { sgnj(c, F64, &r, 0) }
    fsgnjn_d(c, r, rm, x) { sgnj(c, F64, &r, 1) }
    fsgnjx_d(c, r, rm, x) { sgnj(c, F64, &r, 2) }
    fmin_s(c, r, rm, x) { minmax(c, F32, &r, false) }
    fmax_s(c, r, rm, x) { minmax(c, F32, &r, true) }
    fmin_d(c, r, rm, x) { minmax(c, F64, &r, false) }
    fmax_d(c, r, rm, x) { minmax(c, F64, &r, true) }
    fcvt_s_d(c, r, rm, x) {
        let mut fl = 0;
        let v = sf::convert(F64, F32, get(c, F64, r.rs1), rm, &mut fl);
        set(c, F32, r.rd, v);
        c.fcsr |= fl;
        0
    }
    fcvt_d_s(c, r, rm, x) {
        let mut fl = 0;
        let v = sf::convert(F32, F64, get(c, F32, r.rs1), rm, &mut fl);
        set(c, F64, r.rd, v);
        c.fcsr |= fl;
        0
    }
    feq_s(c, r, rm, x) { cmp(c, F32, &r, 0) }
    flt_s(c, r, rm, x) { cmp(c, F32, &r, 1) }
    fle_s(c, r, rm, x) { cmp(c, F32, &r, 2) }
    feq_d(c, r, rm, x) { cmp(c, F64, &r, 0) }
    flt_d(c, r, rm, x) { cmp(c, F64, &r, 1) }
    fle_d(c, r, rm, x) { cmp(c, F64, &r, 2) }
    fclass_s(c, r, rm, x) { sf::classify(F32, get(c, F32, r.rs1)) }
    fclass_d(c, r, rm, x) { sf::classify(F64, get(c, F64, r.rs1)) }
    fcvt_w_s(c, r, rm, x) { to_int(c, F32, &r, rm, true, 32) }
    fcvt_wu_s(c, r, rm, x) { to_int(c, F32, &r, rm, false, 32) }
    fcvt_l_s(c, r, rm, x) { to_int(c, F32, &r, rm, true, 64) }
    fcvt_lu_s(c, r, rm, x) { to_int(c, F32, &r, rm, false, 64) }
    fcvt_w_d(c, r, rm, x) { to_int(c, F64, &r, rm, true, 32) }
    fcvt_wu_d(c, r, rm, x) { to_int(c, F64, &r, rm, false, 32) }
    fcvt_l_d(c, r, rm, x) { to_int(c, F64, &r, rm, true, 64) }
    fcvt_lu_d(c, r, rm, x) { to_int(c, F64, &r, rm, false, 64) }
    fcvt_s_w(c, r, rm, x) { from_int(c, F32, &r, rm, x, true, 32) }
    fcvt_s_wu(c, r, rm, x) { from_int(c, F32, &r, rm, x, false, 32) }
    fcvt_s_l(c, r, rm, x) { from_int(c, F32, &r, rm, x, true, 64) }
    fcvt_s_lu(c, r, rm, x) { from_int(c, F32, &r, rm, x, false, 64) }
    fcvt_d_w(c, r, rm, x) { from_int(c, F64, &r, rm, x, true, 32) }
    fcvt_d_wu(c, r, rm, x) { from_int(c, F64, &r, rm, x, false, 32) }
    fcvt_d_l(c, r, rm, x) { from_int(c, F64, &r, rm, x, true, 64) }
    fcvt_d_lu(c, r, rm, x) { from_int(c, F64, &r, rm, x, false, 64) }
}
