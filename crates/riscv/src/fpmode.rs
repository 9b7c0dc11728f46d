//! Specialising blocks on the FP mode. Every inline FP fast path is guarded on `fcsr`
//! (rounding mode RNE, inexact accrued or not; see `trans_fp`). Nothing but a CSR instruction
//! changes the rounding mode or clears a flag, and FP helpers only accrue flags, so within a
//! block that writes no FP CSR the guards' outcome cannot change once "RNE, inexact accrued"
//! holds. Such a block gets a copy of itself with those guards known true, entered after a
//! single check of `fcsr`; the original follows for every other mode.

use crate::cpu::FCSR_G;
use crate::softfloat::NX;
use dbt::ir::{BinOp, Block, Cond, Op, Temp, Ty, Val};
use std::collections::HashMap;

/// Guards per block below which the copy is not worth its code (the check costs as much as
/// one guard).
const MIN_GUARDS: usize = 2;

pub fn specialise(b: &mut Block) {
    let fcsr = Temp(FCSR_G);
    let guarded = |op: &Op| matches!(op, Op::Call { fast: Some(f), .. } if f.guard == Val::T(fcsr));
    if b.ops.iter().filter(|op| guarded(op)).count() < MIN_GUARDS
        || b.ops.iter().any(|op| op.def() == Some(fcsr))
    {
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
        if let Op::Call { fast: Some(f), .. } = op {
            if f.guard == Val::T(fcsr) {
                f.guard = Val::C((f.guard_want | f.inexact_bit) as u64);
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
        b: Val::C(7 << 5 | NX as u64),
    });
    b.ops.push(Op::BrCond {
        cond: Cond::Ne,
        ty: Ty::I64,
        a: Val::T(mode),
        b: Val::C(NX as u64),
        label: general,
    });
    b.ops.extend(copy);
    b.ops.push(Op::Label(general));
    b.ops.extend(original);
}
