//! Translate functions and decode rows for F and D. Arithmetic goes through exact software
//! helpers (see `fpu` and `softfloat`); loads and stores are ordinary IR memory ops.

use crate::cpu::{FCSR_G, F_BASE};
use crate::ctx::{Args, Ctx, EXIT_ILLEGAL};
use crate::decode::{Imm, Row};
use crate::fpu::hv;
use dbt::ir::{BinOp, CallOp, Cond, FastFp, FpOp, Helper, MemSize, Op, SelectOp, Temp, Ty, Val};

/// Checks the rounding mode: static 5/6 are illegal at translation time; dynamic (7)
/// emits a run-time check of frm that leaves through an illegal-instruction exit.
fn check_rm(c: &mut Ctx, rm: u32) -> bool {
    match rm {
        0..=4 => true,
        7 if *c.frm_checked => true,
        7 => {
            *c.frm_checked = true;
            let fcsr = c.bin(BinOp::Shr, Val::T(Temp(FCSR_G)), Val::C(5));
            let frm = c.bin(BinOp::And, fcsr, Val::C(7));
            let bad = c.label();
            c.emit(Op::BrCond {
                cond: Cond::Geu,
                ty: Ty::I64,
                a: frm,
                b: Val::C(5),
                label: bad,
            });
            c.side_exit(bad, EXIT_ILLEGAL);
            true
        }
        _ => false,
    }
}

/// An FP instruction done by a value-passing helper (see `fpu`): `rm` says whether it has a
/// rounding-mode field, `xsrc` whether it reads rs1 as an integer register, `xdst` whether
/// it writes rd as one.
fn fp(c: &mut Ctx, a: &Args, helper: Helper, rm: bool, xsrc: bool, xdst: bool) -> bool {
    if rm && !check_rm(c, a.rm) {
        return false;
    }
    let src1 = if xsrc {
        c.x(a.rs1)
    } else {
        Val::T(freg(a.rs1))
    };
    let args = [
        src1,
        Val::T(freg(a.rs2)),
        Val::C(0),
        Val::C(if rm { a.rm as u64 } else { 0 }),
    ];
    let r = c.call(helper, &args);
    if xdst {
        c.set_x(a.rd, r);
    } else {
        c.emit(Op::Mov {
            dst: freg(a.rd),
            src: r,
        });
    }
    true
}

/// A comparison: a helper call with an inline fast path for ordered operands (see
/// [`FastFp`]).
fn fcmp(c: &mut Ctx, a: &Args, helper: Helper, op: FpOp, double: bool) -> bool {
    let r = c.temp();
    c.emit(Op::Call(Box::new(CallOp {
        helper,
        dst: Some(r),
        args: vec![Val::T(freg(a.rs1)), Val::T(freg(a.rs2))],
        fast: Some(FastFp {
            op,
            double,
            neg_prod: false,
            neg_add: false,
            guard: Val::C(0),
            guard_mask: 0,
            guard_want: 0,
        }),
    })));
    c.set_x(a.rd, Val::T(r));
    true
}

/// Sign injection (`kind` 0 fsgnj, 1 fsgnjn, 2 fsgnjx) as plain IR: bit operations on the
/// sign, after replacing an improperly NaN-boxed single by the canonical NaN.
fn sgnj(c: &mut Ctx, a: &Args, double: bool, kind: u32) -> bool {
    let operand = |c: &mut Ctx, r: usize| {
        let v = Val::T(freg(r));
        if double {
            return v;
        }
        let d = c.temp();
        c.emit(Op::Select(Box::new(SelectOp {
            cond: Cond::Geu,
            ty: Ty::I64,
            dst: d,
            a: v,
            b: Val::C(BOX),
            t: v,
            f: Val::C(BOX | CANONICAL_NAN_S),
        })));
        Val::T(d)
    };
    let sign = if double { 1u64 << 63 } else { 1 << 31 };
    let x = operand(c, a.rs1);
    let v = if a.rs1 == a.rs2 {
        // fmv, fneg, fabs.
        match kind {
            0 => x,
            1 => c.bin(BinOp::Xor, x, Val::C(sign)),
            _ => c.bin(BinOp::And, x, Val::C(!sign)),
        }
    } else {
        let y = operand(c, a.rs2);
        match kind {
            0 | 1 => {
                let y = if kind == 1 {
                    c.bin(BinOp::Xor, y, Val::C(sign))
                } else {
                    y
                };
                let ys = c.bin(BinOp::And, y, Val::C(sign));
                let xm = c.bin(BinOp::And, x, Val::C(!sign));
                c.bin(BinOp::Or, xm, ys)
            }
            _ => {
                let ys = c.bin(BinOp::And, y, Val::C(sign));
                c.bin(BinOp::Xor, x, ys)
            }
        }
    };
    c.emit(Op::Mov {
        dst: freg(a.rd),
        src: v,
    });
    true
}

/// Upper half of a NaN-boxed single, and the canonical single NaN.
const BOX: u64 = 0xffff_ffff_0000_0000;
const CANONICAL_NAN_S: u64 = 0x7fc0_0000;

/// What the host FPU computes for an arithmetic instruction (see [`FastFp`]):
/// operation, double precision, negated product, negated addend.
type HostOp = (FpOp, bool, bool, bool);

/// An FP arithmetic instruction done by a value-passing helper (see `fpu::hv`): the operand
/// registers' raw values go in, the result's raw value comes back into rd. In round to
/// nearest even (static, or dynamic with frm = RNE) it carries an inline fast path for the
/// native backend, guarded on fcsr: frm = RNE when dynamic.
fn fpv(c: &mut Ctx, a: &Args, helper: Helper, nsrc: u32, host: HostOp) -> bool {
    if !check_rm(c, a.rm) {
        return false;
    }
    let src = |r: usize, i: u32| {
        if i < nsrc {
            Val::T(freg(r))
        } else {
            Val::C(0)
        }
    };
    let args = [
        src(a.rs1, 0),
        src(a.rs2, 1),
        src(a.rs3, 2),
        Val::C(a.rm as u64),
    ];
    let (op, double, neg_prod, neg_add) = host;
    let guard_mask = match a.rm {
        0 => Some(0),
        7 => Some(7 << 5),
        _ => None,
    };
    let fast = guard_mask.map(|guard_mask| FastFp {
        op,
        double,
        neg_prod,
        neg_add,
        guard: Val::T(Temp(FCSR_G)),
        guard_mask,
        guard_want: 0,
    });
    let r = c.temp();
    c.emit(Op::Call(Box::new(CallOp {
        helper,
        dst: Some(r),
        args: args.to_vec(),
        fast,
    })));
    c.emit(Op::Mov {
        dst: freg(a.rd),
        src: Val::T(r),
    });
    true
}

/// FP register `r` as an IR global.
fn freg(r: usize) -> Temp {
    Temp(F_BASE + r as u32)
}

fn load(c: &mut Ctx, a: &Args, size: MemSize) -> bool {
    let v = c.load(a.rs1, a.imm, size, false);
    let v = if size == MemSize::B4 {
        c.bin(BinOp::Or, v, Val::C(BOX))
    } else {
        v
    };
    c.emit(Op::Mov {
        dst: freg(a.rd),
        src: v,
    });
    true
}

fn store(c: &mut Ctx, a: &Args, size: MemSize) -> bool {
    c.store(Val::T(freg(a.rs2)), a.rs1, a.imm, size);
    true
}

/// Moves between integer and FP registers are plain IR (no helper).
pub fn fmv_x_d(c: &mut Ctx, a: &Args) -> bool {
    c.set_x(a.rd, Val::T(freg(a.rs1)));
    true
}
pub fn fmv_d_x(c: &mut Ctx, a: &Args) -> bool {
    let x = c.x(a.rs1);
    c.emit(Op::Mov {
        dst: freg(a.rd),
        src: x,
    });
    true
}
pub fn fmv_x_w(c: &mut Ctx, a: &Args) -> bool {
    let lo = c.trunc(Val::T(freg(a.rs1)));
    let v = c.sext32(lo);
    c.set_x(a.rd, v);
    true
}
pub fn fmv_w_x(c: &mut Ctx, a: &Args) -> bool {
    let x = c.x(a.rs1);
    let z = c.zext32(x);
    let v = c.bin(BinOp::Or, z, Val::C(BOX));
    c.emit(Op::Mov {
        dst: freg(a.rd),
        src: v,
    });
    true
}

pub fn flw(c: &mut Ctx, a: &Args) -> bool {
    load(c, a, MemSize::B4)
}
pub fn fld(c: &mut Ctx, a: &Args) -> bool {
    load(c, a, MemSize::B8)
}
pub fn fsw(c: &mut Ctx, a: &Args) -> bool {
    store(c, a, MemSize::B4)
}
pub fn fsd(c: &mut Ctx, a: &Args) -> bool {
    store(c, a, MemSize::B8)
}

macro_rules! fpv_fns {
    ($($name:ident: $n:expr, $op:ident, $double:expr, $np:expr, $na:expr;)*) => {
        $(pub fn $name(c: &mut Ctx, a: &Args) -> bool {
            fpv(c, a, hv::$name, $n, (FpOp::$op, $double, $np, $na))
        })*
    };
}

fpv_fns! {
    fadd_s: 2, Add, false, false, false;
    fsub_s: 2, Sub, false, false, false;
    fmul_s: 2, Mul, false, false, false;
    fdiv_s: 2, Div, false, false, false;
    fsqrt_s: 1, Sqrt, false, false, false;
    fadd_d: 2, Add, true, false, false;
    fsub_d: 2, Sub, true, false, false;
    fmul_d: 2, Mul, true, false, false;
    fdiv_d: 2, Div, true, false, false;
    fsqrt_d: 1, Sqrt, true, false, false;
    fmadd_s: 3, MulAdd, false, false, false;
    fmsub_s: 3, MulAdd, false, false, true;
    fnmsub_s: 3, MulAdd, false, true, false;
    fnmadd_s: 3, MulAdd, false, true, true;
    fmadd_d: 3, MulAdd, true, false, false;
    fmsub_d: 3, MulAdd, true, false, true;
    fnmsub_d: 3, MulAdd, true, true, false;
    fnmadd_d: 3, MulAdd, true, true, true;
}

macro_rules! fp_fns {
    ($($name:ident: $rm:expr, $xs:expr, $xd:expr;)*) => {
        $(pub fn $name(c: &mut Ctx, a: &Args) -> bool {
            fp(c, a, hv::$name, $rm, $xs, $xd)
        })*
    };
}

fns! {
    feq_s => |c, a| fcmp(c, a, hv::feq_s, FpOp::Eq, false);
    flt_s => |c, a| fcmp(c, a, hv::flt_s, FpOp::Lt, false);
    fle_s => |c, a| fcmp(c, a, hv::fle_s, FpOp::Le, false);
    feq_d => |c, a| fcmp(c, a, hv::feq_d, FpOp::Eq, true);
    flt_d => |c, a| fcmp(c, a, hv::flt_d, FpOp::Lt, true);
    fle_d => |c, a| fcmp(c, a, hv::fle_d, FpOp::Le, true);
    fsgnj_s => |c, a| sgnj(c, a, false, 0);
    fsgnjn_s => |c, a| sgnj(c, a, false, 1);
    fsgnjx_s => |c, a| sgnj(c, a, false, 2);
    fsgnj_d => |c, a| sgnj(c, a, true, 0);
    fsgnjn_d => |c, a| sgnj(c, a, true, 1);
    fsgnjx_d => |c, a| sgnj(c, a, true, 2);
}

fp_fns! {
    fmin_s: false, false, false; fmax_s: false, false, false;
    fmin_d: false, false, false; fmax_d: false, false, false;
    fcvt_s_d: true, false, false; fcvt_d_s: true, false, false;
    fclass_s: false, false, true; fclass_d: false, false, true;
    fcvt_w_s: true, false, true; fcvt_wu_s: true, false, true;
    fcvt_l_s: true, false, true; fcvt_lu_s: true, false, true;
    fcvt_w_d: true, false, true; fcvt_wu_d: true, false, true;
    fcvt_l_d: true, false, true; fcvt_lu_d: true, false, true;
    fcvt_s_w: true, true, false; fcvt_s_wu: true, true, false;
    fcvt_s_l: true, true, false; fcvt_s_lu: true, true, false;
    fcvt_d_w: true, true, false; fcvt_d_wu: true, true, false;
    fcvt_d_l: true, true, false; fcvt_d_lu: true, true, false;
}

const fn r(name: &'static str, p: &str, imm: Imm, trans: crate::decode::Trans) -> Row {
    crate::decode::row(name, p, imm, trans)
}
use Imm::{None as N, I, S};

#[rustfmt::skip]
pub static FP_ROWS: &[Row] = &[
    r("flw",       "------------ ----- 010 ----- 0000111", I, flw),
    r("fld",       "------------ ----- 011 ----- 0000111", I, fld),
    r("fsw",       "------- ----- ----- 010 ----- 0100111", S, fsw),
    r("fsd",       "------- ----- ----- 011 ----- 0100111", S, fsd),
    r("fmadd.s",   "----- 00 ----- ----- --- ----- 1000011", N, fmadd_s),
    r("fmsub.s",   "----- 00 ----- ----- --- ----- 1000111", N, fmsub_s),
    r("fnmsub.s",  "----- 00 ----- ----- --- ----- 1001011", N, fnmsub_s),
    r("fnmadd.s",  "----- 00 ----- ----- --- ----- 1001111", N, fnmadd_s),
    r("fmadd.d",   "----- 01 ----- ----- --- ----- 1000011", N, fmadd_d),
    r("fmsub.d",   "----- 01 ----- ----- --- ----- 1000111", N, fmsub_d),
    r("fnmsub.d",  "----- 01 ----- ----- --- ----- 1001011", N, fnmsub_d),
    r("fnmadd.d",  "----- 01 ----- ----- --- ----- 1001111", N, fnmadd_d),
    r("fadd.s",    "0000000 ----- ----- --- ----- 1010011", N, fadd_s),
    r("fsub.s",    "0000100 ----- ----- --- ----- 1010011", N, fsub_s),
    r("fmul.s",    "0001000 ----- ----- --- ----- 1010011", N, fmul_s),
    r("fdiv.s",    "0001100 ----- ----- --- ----- 1010011", N, fdiv_s),
    r("fsqrt.s",   "0101100 00000 ----- --- ----- 1010011", N, fsqrt_s),
    r("fadd.d",    "0000001 ----- ----- --- ----- 1010011", N, fadd_d),
    r("fsub.d",    "0000101 ----- ----- --- ----- 1010011", N, fsub_d),
    r("fmul.d",    "0001001 ----- ----- --- ----- 1010011", N, fmul_d),
    r("fdiv.d",    "0001101 ----- ----- --- ----- 1010011", N, fdiv_d),
    r("fsqrt.d",   "0101101 00000 ----- --- ----- 1010011", N, fsqrt_d),
    r("fsgnj.s",   "0010000 ----- ----- 000 ----- 1010011", N, fsgnj_s),
    r("fsgnjn.s",  "0010000 ----- ----- 001 ----- 1010011", N, fsgnjn_s),
    r("fsgnjx.s",  "0010000 ----- ----- 010 ----- 1010011", N, fsgnjx_s),
    r("fsgnj.d",   "0010001 ----- ----- 000 ----- 1010011", N, fsgnj_d),
    r("fsgnjn.d",  "0010001 ----- ----- 001 ----- 1010011", N, fsgnjn_d),
    r("fsgnjx.d",  "0010001 ----- ----- 010 ----- 1010011", N, fsgnjx_d),
    r("fmin.s",    "0010100 ----- ----- 000 ----- 1010011", N, fmin_s),
    r("fmax.s",    "0010100 ----- ----- 001 ----- 1010011", N, fmax_s),
    r("fmin.d",    "0010101 ----- ----- 000 ----- 1010011", N, fmin_d),
    r("fmax.d",    "0010101 ----- ----- 001 ----- 1010011", N, fmax_d),
    r("fcvt.s.d",  "0100000 00001 ----- --- ----- 1010011", N, fcvt_s_d),
    r("fcvt.d.s",  "0100001 00000 ----- --- ----- 1010011", N, fcvt_d_s),
    r("feq.s",     "1010000 ----- ----- 010 ----- 1010011", N, feq_s),
    r("flt.s",     "1010000 ----- ----- 001 ----- 1010011", N, flt_s),
    r("fle.s",     "1010000 ----- ----- 000 ----- 1010011", N, fle_s),
    r("feq.d",     "1010001 ----- ----- 010 ----- 1010011", N, feq_d),
    r("flt.d",     "1010001 ----- ----- 001 ----- 1010011", N, flt_d),
    r("fle.d",     "1010001 ----- ----- 000 ----- 1010011", N, fle_d),
    r("fclass.s",  "1110000 00000 ----- 001 ----- 1010011", N, fclass_s),
    r("fclass.d",  "1110001 00000 ----- 001 ----- 1010011", N, fclass_d),
    r("fmv.x.w",   "1110000 00000 ----- 000 ----- 1010011", N, fmv_x_w),
    r("fmv.x.d",   "1110001 00000 ----- 000 ----- 1010011", N, fmv_x_d),
    r("fmv.w.x",   "1111000 00000 ----- 000 ----- 1010011", N, fmv_w_x),
    r("fmv.d.x",   "1111001 00000 ----- 000 ----- 1010011", N, fmv_d_x),
    r("fcvt.w.s",  "1100000 00000 ----- --- ----- 1010011", N, fcvt_w_s),
    r("fcvt.wu.s", "1100000 00001 ----- --- ----- 1010011", N, fcvt_wu_s),
    r("fcvt.l.s",  "1100000 00010 ----- --- ----- 1010011", N, fcvt_l_s),
    r("fcvt.lu.s", "1100000 00011 ----- --- ----- 1010011", N, fcvt_lu_s),
    r("fcvt.w.d",  "1100001 00000 ----- --- ----- 1010011", N, fcvt_w_d),
    r("fcvt.wu.d", "1100001 00001 ----- --- ----- 1010011", N, fcvt_wu_d),
    r("fcvt.l.d",  "1100001 00010 ----- --- ----- 1010011", N, fcvt_l_d),
    r("fcvt.lu.d", "1100001 00011 ----- --- ----- 1010011", N, fcvt_lu_d),
    r("fcvt.s.w",  "1101000 00000 ----- --- ----- 1010011", N, fcvt_s_w),
    r("fcvt.s.wu", "1101000 00001 ----- --- ----- 1010011", N, fcvt_s_wu),
    r("fcvt.s.l",  "1101000 00010 ----- --- ----- 1010011", N, fcvt_s_l),
    r("fcvt.s.lu", "1101000 00011 ----- --- ----- 1010011", N, fcvt_s_lu),
    r("fcvt.d.w",  "1101001 00000 ----- --- ----- 1010011", N, fcvt_d_w),
    r("fcvt.d.wu", "1101001 00001 ----- --- ----- 1010011", N, fcvt_d_wu),
    r("fcvt.d.l",  "1101001 00010 ----- --- ----- 1010011", N, fcvt_d_l),
    r("fcvt.d.lu", "1101001 00011 ----- --- ----- 1010011", N, fcvt_d_lu),
];
