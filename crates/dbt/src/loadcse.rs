//! Redundant load elimination, part of the optimiser's forward pass: a load from an address
//! already loaded in the same region (no label, store, atomic or call in between, and the
//! address's base register unchanged) reuses the earlier value. Guest code does this often
//! (e.g. `lw` then `lwu` of the same word in a switch dispatch), and each load saved is also
//! a range check saved. Addresses are compared as `base + offset`, with the offset taken
//! from an `Add` of a constant, since front ends recompute addresses into fresh temporaries.
//! Merging two loads of one address with no write of this hart in between is allowed by the
//! memory model (both may read the same write).

use crate::inthash::IntMap;
use crate::ir::{BinOp, Block, ExtOp, MemSize, Op, Temp, Ty, Val};

/// `base + offset`, the base a temporary or (offset 0) a constant address.
type Addr = (Val, u64);

#[derive(Default)]
pub struct LoadCse {
    /// Temporaries known to hold `base + offset`.
    forms: IntMap<Temp, Addr>,
    /// Loads done so far in this region: (address, size, signed, result).
    loads: Vec<(Addr, MemSize, bool, Temp)>,
}

impl LoadCse {
    pub fn clear(&mut self) {
        self.forms.clear();
        self.loads.clear();
    }

    fn addr(&self, v: Val) -> Addr {
        match v {
            Val::T(t) => self.forms.get(&t).copied().unwrap_or((v, 0)),
            Val::C(_) => (v, 0),
        }
    }

    /// `addr + disp` as `base + offset`.
    fn addr_disp(&self, addr: Val, disp: i32) -> Addr {
        let (base, off) = self.addr(addr);
        (base, off.wrapping_add(disp as i64 as u64))
    }

    /// Folds a known `base + offset` address into the access's displacement, so the access
    /// uses the base directly (the backend's addressing mode adds the offset, and the `Add`
    /// dies when nothing else uses it). A constant address absorbs the displacement.
    fn fold_address(&self, mut op: Op) -> Op {
        if let Op::Load { addr, disp, .. } | Op::Store { addr, disp, .. } = &mut op {
            let (base, off) = self.addr_disp(*addr, *disp);
            match base {
                Val::C(c) => (*addr, *disp) = (Val::C(c.wrapping_add(off)), 0),
                Val::T(_) => {
                    if let Ok(d) = i32::try_from(off as i64) {
                        (*addr, *disp) = (base, d);
                    }
                }
            }
        }
        op
    }

    /// Rewrites `op` if it repeats an earlier load, then records what `op` teaches or
    /// invalidates.
    pub fn visit(&mut self, b: &Block, op: Op) -> Op {
        let op = self.fold_address(op);
        // Behind a soft MMU a load may read a device register: every one must happen.
        let op = if b.soft_mmu.is_some() {
            op
        } else {
            self.rewrite(b, op)
        };
        match op {
            Op::Label(_) => self.clear(),
            Op::Store { .. } | Op::Rmw { .. } | Op::Cmpxchg { .. } => self.loads.clear(),
            Op::Call { helper, .. } => {
                self.loads.clear();
                // Helpers may change guest registers, bases included.
                self.forms.retain(|t, (base, _)| {
                    !helper.may_write(*t) && !matches!(base, Val::T(g) if helper.may_write(*g))
                });
            }
            _ => {}
        }
        if let Some(d) = op.def() {
            self.forget(d);
            match op {
                Op::Bin {
                    op: BinOp::Add,
                    ty: Ty::I64,
                    a: Val::T(x),
                    b: Val::C(k),
                    ..
                } if x != d => {
                    let (base, off) = self.addr(Val::T(x));
                    self.forms.insert(d, (base, off.wrapping_add(k)));
                }
                Op::Load {
                    addr,
                    disp,
                    size,
                    signed,
                    ..
                } if addr != Val::T(d) => {
                    let a = self.addr_disp(addr, disp);
                    self.loads.push((a, size, signed, d));
                }
                _ => {}
            }
        }
        op
    }

    /// `d` gets a new value: facts about it, or based on it, are void.
    fn forget(&mut self, d: Temp) {
        self.forms.remove(&d);
        self.forms.retain(|_, (base, _)| *base != Val::T(d));
        self.loads
            .retain(|&((base, _), _, _, r)| base != Val::T(d) && r != d);
    }

    fn rewrite(&self, b: &Block, op: Op) -> Op {
        let Op::Load {
            dst,
            addr,
            disp,
            size,
            signed,
        } = op
        else {
            return op;
        };
        if b.ty(dst) != Ty::I64 {
            return op;
        }
        let a = self.addr_disp(addr, disp);
        let same = |&&(la, ls, lsigned, r): &&(Addr, MemSize, bool, Temp)| {
            la == a
                && ls == size
                && (lsigned == signed || size == MemSize::B8)
                && b.ty(r) == Ty::I64
        };
        if let Some(&(_, _, _, r)) = self.loads.iter().find(same) {
            return Op::Mov {
                dst,
                src: Val::T(r),
            };
        }
        // The same word loaded with the other extension: re-extend its low half (extensions
        // read only the low 32 bits of their operand).
        let other = self.loads.iter().find(|&&(la, ls, _, r)| {
            la == a && ls == MemSize::B4 && size == MemSize::B4 && b.ty(r) == Ty::I64
        });
        if let Some(&(_, _, _, r)) = other {
            let op = if signed { ExtOp::Sext32 } else { ExtOp::Zext32 };
            return Op::Ext {
                op,
                dst,
                a: Val::T(r),
            };
        }
        op
    }
}

#[cfg(test)]
mod tests {
    use crate::ir::{BinOp, Block, GlobalDef, MemSize, Op, Temp, Ty, Val};
    use crate::opt::optimize;

    const BASE: Temp = Temp(0);

    fn block() -> Block {
        let g = [GlobalDef {
            name: "base",
            offset: 0,
            ty: Ty::I64,
        }];
        Block::new(0, &g)
    }

    /// Emits `t = base + off; dst = load t` and returns dst.
    fn load_at(b: &mut Block, off: u64, size: MemSize, signed: bool) -> Temp {
        let a = b.new_temp(Ty::I64);
        b.push(Op::Bin {
            op: BinOp::Add,
            ty: Ty::I64,
            dst: a,
            a: Val::T(BASE),
            b: Val::C(off),
        });
        let d = b.new_temp(Ty::I64);
        b.push(Op::Load {
            dst: d,
            addr: Val::T(a),
            disp: 0,
            size,
            signed,
        });
        d
    }

    /// Stores both loaded values (so neither is dead) and counts the loads left.
    fn loads_left(mut b: Block, x: Temp, y: Temp) -> (usize, Block) {
        for (k, t) in [x, y].into_iter().enumerate() {
            b.push(Op::Store {
                src: Val::T(t),
                addr: Val::C(0x100 + 8 * k as u64),
                disp: 0,
                size: MemSize::B8,
            });
        }
        b.push(Op::Exit { code: 0, pc: 4 });
        optimize(&mut b);
        let n = b
            .ops
            .iter()
            .filter(|op| matches!(op, Op::Load { .. }))
            .count();
        (n, b)
    }

    #[test]
    fn repeated_load_reuses_the_value() {
        let mut b = block();
        let x = load_at(&mut b, 8, MemSize::B8, false);
        let y = load_at(&mut b, 8, MemSize::B8, false);
        assert_eq!(loads_left(b, x, y).0, 1);
    }

    #[test]
    fn other_extension_of_the_same_word_is_re_extended() {
        let mut b = block();
        let x = load_at(&mut b, 8, MemSize::B4, true);
        let y = load_at(&mut b, 8, MemSize::B4, false);
        let (n, b) = loads_left(b, x, y);
        assert_eq!(n, 1);
        assert!(b.ops.iter().any(|op| matches!(
            op,
            Op::Ext {
                op: crate::ir::ExtOp::Zext32,
                dst,
                ..
            } if *dst == y
        )));
    }

    #[test]
    fn store_base_change_or_other_address_keep_the_load() {
        // A store in between.
        let mut b = block();
        let x = load_at(&mut b, 8, MemSize::B8, false);
        b.push(Op::Store {
            src: Val::C(1),
            addr: Val::C(0x200),
            disp: 0,
            size: MemSize::B1,
        });
        let y = load_at(&mut b, 8, MemSize::B8, false);
        assert_eq!(loads_left(b, x, y).0, 2);
        // The base register changes.
        let mut b = block();
        let x = load_at(&mut b, 8, MemSize::B8, false);
        b.push(Op::Bin {
            op: BinOp::Add,
            ty: Ty::I64,
            dst: BASE,
            a: Val::T(BASE),
            b: Val::C(8),
        });
        let y = load_at(&mut b, 8, MemSize::B8, false);
        assert_eq!(loads_left(b, x, y).0, 2);
        // Another offset or size.
        let mut b = block();
        let x = load_at(&mut b, 8, MemSize::B8, false);
        let y = load_at(&mut b, 16, MemSize::B8, false);
        assert_eq!(loads_left(b, x, y).0, 2);
        let mut b = block();
        let x = load_at(&mut b, 8, MemSize::B8, false);
        let y = load_at(&mut b, 8, MemSize::B4, false);
        assert_eq!(loads_left(b, x, y).0, 2);
    }
}
