//! Block optimiser: constant folding and propagation, copy propagation, branch folding,
//! redundant load elimination (see `loadcse`) and dead-code removal. Facts about temporaries
//! are forgotten at labels (control may merge there), which keeps the passes linear and
//! obviously correct; they are versioned (`facts`), so forgetting costs nothing.

use crate::eval;
use crate::facts::{FactMap, Versions};
use crate::ir::{BinOp, Block, ExtOp, Op, SelectOp, Temp, Ty, Val};
use crate::loadcse::LoadCse;

pub fn optimize(b: &mut Block) {
    propagate(b);
    remove_dead(b);
}

/// The forward pass's tables, kept from block to block on each translating thread.
#[derive(Default)]
struct Scratch {
    vers: Versions,
    /// Known value of each temp (a constant or a copy of another temp).
    known: FactMap<Val>,
    /// Locals holding the truncation of an I64 temporary (unchanged since).
    truncs: FactMap<Temp>,
    loads: LoadCse,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

fn propagate(b: &mut Block) {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => propagate_with(b, &mut s),
        // Re-entered (cannot happen today): fresh tables rather than a panic.
        Err(_) => propagate_with(b, &mut Scratch::default()),
    })
}

fn propagate_with(b: &mut Block, s: &mut Scratch) {
    let n = b.temps.len();
    let Scratch {
        vers,
        known,
        truncs,
        loads,
    } = s;
    vers.prepare(n);
    known.prepare(n);
    truncs.prepare(n);
    loads.prepare(n);
    // Rewritten in place, op `i` moving down to `kept <= i`: the pass allocates nothing and
    // moves an op only past dropped ones.
    let mut ops = std::mem::take(&mut b.ops);
    let mut kept = 0;
    let mut dead_code = false;
    for i in 0..ops.len() {
        let op = &mut ops[i];
        if let Op::Label(_) = op {
            vers.new_region();
            loads.new_region();
            dead_code = false;
        }
        if dead_code {
            // Unreachable after an unconditional terminator, up to the next label.
            continue;
        }
        op.for_each_use_mut(|v| {
            if let Val::T(t) = v {
                if let Some(k) = known.get(vers, *t) {
                    *v = k;
                }
            }
        });
        narrow_reads(op, truncs, vers);
        if let Some(folded) = fold(b, op) {
            *op = folded;
        }
        loads.rewrite(b, vers, op);
        // What the operation changes voids what was known about it.
        if let Op::Call(c) = op {
            vers.redefine_range(c.helper.writes.0, c.helper.writes.1);
        }
        if let Some(d) = op.def() {
            vers.redefine(d);
        }
        loads.record(vers, op);
        match *op {
            Op::Ext {
                op: ExtOp::Trunc,
                dst,
                a: Val::T(x),
            } if x != dst && b.ty(x) == Ty::I64 => truncs.insert(vers, dst, x, Some(x)),
            Op::Mov { dst, src } => {
                // A local copied into a guest register is not propagated into later reads of
                // that register: the local then dies at the move, so the backend hands its
                // host register to the guest register instead of keeping both alive.
                let local_into_global =
                    b.is_global(dst) && matches!(src, Val::T(s) if !b.is_global(s));
                if src != Val::T(dst) && !local_into_global {
                    let dep = match src {
                        Val::T(s) => Some(s),
                        Val::C(_) => None,
                    };
                    known.insert(vers, dst, src, dep);
                }
            }
            _ => {}
        }
        if op.is_terminator() {
            dead_code = true;
        }
        if let Op::Mov {
            dst,
            src: Val::T(s),
        } = *op
        {
            if s == dst {
                continue;
            }
        }
        // Ops dropped so far left a gap: the one dropped at `kept` goes past the end.
        if kept != i {
            ops.swap(kept, i);
        }
        kept += 1;
    }
    ops.truncate(kept);
    b.ops = ops;
}

/// Operations that read only the low halves of their operands (see [`Ty`]) read a
/// truncated value's source directly, so the truncation can die.
fn narrow_reads(op: &mut Op, truncs: &FactMap<Temp>, vers: &Versions) {
    let narrow = matches!(
        op,
        Op::Bin { ty: Ty::I32, .. }
            | Op::SetCond { ty: Ty::I32, .. }
            | Op::BrCond { ty: Ty::I32, .. }
            | Op::Ext {
                op: ExtOp::Sext32 | ExtOp::Zext32,
                ..
            }
    );
    if narrow {
        op.for_each_use_mut(|v| {
            if let Val::T(t) = v {
                if let Some(x) = truncs.get(vers, *t) {
                    *v = Val::T(x);
                }
            }
        });
    }
}

fn c(v: Val) -> Option<u64> {
    match v {
        Val::C(c) => Some(c),
        _ => None,
    }
}

/// The simpler operation `op` folds to, if any (`None`: keep it as it is). Takes `op` by
/// reference: ops are large, and moving every one through here cost more than folding.
fn fold(b: &Block, op: &Op) -> Option<Op> {
    let mov = |dst, src| Some(Op::Mov { dst, src });
    match *op {
        Op::Bin {
            op: bop,
            ty,
            dst,
            a,
            b: bb,
        } => {
            if let (Some(x), Some(y)) = (c(a), c(bb)) {
                return mov(dst, Val::C(eval::bin(bop, ty, x, y)));
            }
            // Algebraic identities that leave one operand unchanged.
            let ident = match (bop, c(bb)) {
                (BinOp::Add | BinOp::Sub | BinOp::Or | BinOp::Xor, Some(0)) => true,
                (BinOp::Shl | BinOp::Shr | BinOp::Sar | BinOp::Rotl | BinOp::Rotr, Some(s)) => {
                    s & (ty.bits() as u64 - 1) == 0
                }
                (BinOp::Mul | BinOp::DivU | BinOp::DivS, Some(1)) => true,
                (BinOp::And, Some(m)) => ty.canon(m) == ty.canon(u64::MAX),
                _ => false,
            };
            if ident {
                return Some(copy_as(b, dst, a, ty));
            }
            if matches!((bop, c(a)), (BinOp::Add | BinOp::Or | BinOp::Xor, Some(0))) {
                return Some(copy_as(b, dst, bb, ty));
            }
            if matches!((bop, c(bb)), (BinOp::And | BinOp::Mul, Some(0))) {
                return mov(dst, Val::C(0));
            }
            None
        }
        Op::Un {
            op: uop,
            ty,
            dst,
            a: Val::C(x),
        } => mov(dst, Val::C(eval::un(uop, ty, x))),
        Op::Ext {
            op: e,
            dst,
            a: Val::C(x),
        } => mov(dst, Val::C(eval::ext(e, x))),
        Op::SetCond {
            cond,
            ty,
            dst,
            a: Val::C(x),
            b: Val::C(y),
        } => mov(dst, Val::C(cond.eval(ty, x, y) as u64)),
        Op::Select(ref s) => match **s {
            SelectOp {
                cond,
                ty,
                dst,
                a: Val::C(x),
                b: Val::C(y),
                t,
                f,
            } => {
                let src = if cond.eval(ty, x, y) { t } else { f };
                if same_ty(b, src, ty) {
                    mov(dst, src)
                } else {
                    None
                }
            }
            _ => None,
        },
        Op::BrCond {
            cond,
            ty,
            a: Val::C(x),
            b: Val::C(y),
            label,
        } => {
            if cond.eval(ty, x, y) {
                Some(Op::Br(label))
            } else {
                // Never taken: becomes a no-op marker that DCE removes.
                mov(Temp(u32::MAX), Val::C(0))
            }
        }
        _ => None,
    }
}

/// `dst = v` as a value of type `ty`: a move, or the truncation of a wider operand (which
/// narrow readers then skip, see `narrow_reads`).
fn copy_as(b: &Block, dst: Temp, v: Val, ty: Ty) -> Op {
    if same_ty(b, v, ty) {
        Op::Mov { dst, src: v }
    } else {
        Op::Ext {
            op: ExtOp::Trunc,
            dst,
            a: v,
        }
    }
}

fn same_ty(b: &Block, v: Val, ty: Ty) -> bool {
    match v {
        Val::C(_) => true,
        Val::T(t) => b.ty(t) == ty,
    }
}

fn removable(op: &Op) -> bool {
    matches!(
        op,
        Op::Mov { .. }
            | Op::Bin { .. }
            | Op::Un { .. }
            | Op::Ext { .. }
            | Op::SetCond { .. }
            | Op::Select { .. }
    )
}

fn remove_dead(b: &mut Block) {
    let n = b.temps.len();
    let mut live = vec![false; n];
    let mut keep = vec![true; b.ops.len()];
    for (i, op) in b.ops.iter().enumerate().rev() {
        if let Some(d) = op.def() {
            if d.0 == u32::MAX {
                keep[i] = false;
                continue;
            }
            if !b.is_global(d) {
                if !live[d.0 as usize] && removable(op) {
                    keep[i] = false;
                    continue;
                }
                live[d.0 as usize] = false;
            }
        }
        op.for_each_use(|v| {
            if let Val::T(t) = v {
                live[t.0 as usize] = true;
            }
        });
    }
    let mut i = 0;
    b.ops.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    // Labels nobody branches to any more are dropped so later passes see longer regions.
    let mut used = vec![false; b.nlabels as usize];
    for op in &b.ops {
        if let Op::Br(l) | Op::BrCond { label: l, .. } = op {
            used[l.0 as usize] = true;
        }
    }
    b.ops
        .retain(|op| !matches!(op, Op::Label(l) if !used[l.0 as usize]));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{GlobalDef, Label};

    #[test]
    fn folds_and_removes() {
        let g = [GlobalDef {
            name: "r1",
            offset: 8,
            ty: Ty::I64,
        }];
        let mut b = Block::new(0, &g);
        let t1 = b.new_temp(Ty::I64);
        let t2 = b.new_temp(Ty::I64);
        let l: Label = b.new_label();
        b.push(Op::Mov {
            dst: t1,
            src: Val::C(5),
        });
        b.push(Op::Bin {
            op: BinOp::Add,
            ty: Ty::I64,
            dst: t2,
            a: Val::T(t1),
            b: Val::C(7),
        });
        b.push(Op::Mov {
            dst: Temp(0),
            src: Val::T(t2),
        });
        b.push(Op::BrCond {
            cond: crate::ir::Cond::Eq,
            ty: Ty::I64,
            a: Val::C(1),
            b: Val::C(2),
            label: l,
        });
        b.push(Op::Label(l));
        b.push(Op::Exit { code: 0, pc: 4 });
        optimize(&mut b);
        assert_eq!(
            b.ops,
            vec![
                Op::Mov {
                    dst: Temp(0),
                    src: Val::C(12)
                },
                Op::Exit { code: 0, pc: 4 }
            ]
        );
    }
}
