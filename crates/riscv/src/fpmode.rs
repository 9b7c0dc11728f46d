//! Specialising blocks on the FP mode. Every inline FP fast path with a dynamic rounding
//! mode is guarded on `fcsr` (frm = RNE; see `trans_fp`), and each block checks once that frm
//! is valid. Nothing but a write of frm or fcsr changes the rounding mode, so within a block
//! without one these checks' outcome cannot change once frm = RNE holds (writing fflags, as
//! GCC's `isless` does around a comparison, leaves frm alone). Such a block
//! gets a copy of itself with the guards known true and the validity check gone (frm reads
//! as 0), entered after a single check of `fcsr`; the original follows for every other mode.

use crate::cpu::FCSR_G;
use dbt::ir::{BinOp, Block, Cond, Op, Temp, Ty, Val};
use std::collections::HashMap;

/// Bits of fcsr below frm (the accrued flags).
const FFLAGS_MASK: u64 = 0x1f;
/// Position of frm in fcsr.
const FRM_SHIFT: u64 = 5;

/// `frm_written`: the block has an instruction that may change the rounding mode (other
/// writes of `fcsr` only change the flags, which the copy leaves to the code as it is).
pub fn specialise(b: &mut Block, frm_written: bool) {
    let fcsr = Temp(FCSR_G);
    // The one check replaces a dynamic-rounding guard and the frm validity check that comes
    // with it, so one such guard is enough.
    let guarded = |op: &Op| {
        matches!(op, Op::Call(c)
            if c.fast.is_some_and(|f| f.guard == Val::T(fcsr) && f.guard_mask != 0))
    };
    if !b.ops.iter().any(guarded) || frm_written {
        return;
    }
    let original = std::mem::take(&mut b.ops);
    let mut copy = original.clone();
    let mut temps: HashMap<Temp, Temp> = HashMap::new();
    let mut labels = HashMap::new();
    for op in &mut copy {
        // Fresh locals and labels: the two copies share nothing but guest registers.
        let mut rename = |t: &mut Temp| {
            if !b.is_global(*t) {
                let ty = b.ty(*t);
                *t = *temps.entry(*t).or_insert_with(|| b.new_temp(ty));
            }
        };
        op.for_each_use_mut(|v| {
            if let Val::T(t) = v {
                rename(t)
            }
        });
        if let Some(t) = op.def_mut() {
            rename(t);
        }
        if let Some(l) = op.label_mut() {
            *l = *labels.entry(*l).or_insert_with(|| b.new_label());
        }
        if let Some(f) = match op {
            Op::Call(c) => c.fast.as_mut(),
            _ => None,
        } {
            if f.guard == Val::T(fcsr) {
                f.guard = Val::C(f.guard_want as u64);
            }
        }
        // fcsr >> 5 (and further) is 0 in this copy; constant folding then drops the frm
        // validity check.
        if let Op::Bin {
            op: BinOp::Shr,
            ty,
            dst,
            a: Val::T(t),
            b: Val::C(s),
        } = *op
        {
            if t == fcsr && s & (ty.bits() as u64 - 1) >= FRM_SHIFT {
                *op = Op::Mov {
                    dst,
                    src: Val::C(0),
                };
            }
        }
    }
    let mode = b.new_temp(Ty::I64);
    let general = b.new_label();
    b.ops.push(Op::Bin {
        op: BinOp::And,
        ty: Ty::I64,
        dst: mode,
        a: Val::T(fcsr),
        b: Val::C(!FFLAGS_MASK),
    });
    b.ops.push(Op::BrCond {
        cond: Cond::Ne,
        ty: Ty::I64,
        a: Val::T(mode),
        b: Val::C(0),
        label: general,
    });
    b.ops.extend(copy);
    b.ops.push(Op::Label(general));
    b.ops.extend(original);
}
