//! Redundant load elimination, part of the optimiser's forward pass: a load from an address
//! already loaded in the same region (no label, store, atomic or call in between, and the
//! address's base register unchanged) reuses the earlier value. Guest code does this often
//! (e.g. `lw` then `lwu` of the same word in a switch dispatch), and each load saved is also
//! a range check saved. Addresses are compared as `base + offset`, with the offset taken
//! from an `Add` of a constant, since front ends recompute addresses into fresh temporaries.
//! Merging two loads of one address with no write of this hart in between is allowed by the
//! memory model (both may read the same write), unless a barrier that orders later loads
//! stands between them: reusing the earlier value would move the later load above it (in
//! message passing, `r1 = flag; fence r,r; r2 = data` must not take `data` from before the
//! fence).

use crate::facts::{FactMap, Versions, Witness};
use crate::ir::{BinOp, Block, ExtOp, MemSize, Op, Temp, Ty, Val};

/// `base + offset`, the base a temporary or (offset 0) a constant address.
type Addr = (Val, u64);

/// A load done earlier in the region, valid while its witness holds (its address's base
/// and its result keep their values).
#[derive(Clone, Copy)]
struct DoneLoad {
    addr: Addr,
    size: MemSize,
    signed: bool,
    result: Temp,
    witness: Witness,
}

#[derive(Default)]
pub struct LoadCse {
    /// Temporaries known to hold `base + offset`.
    forms: FactMap<Addr>,
    /// Loads done so far in this region, with no store since.
    loads: Vec<DoneLoad>,
}

fn base_temp(a: Addr) -> Option<Temp> {
    match a.0 {
        Val::T(t) => Some(t),
        Val::C(_) => None,
    }
}

impl LoadCse {
    /// Ready for a block with `ntemps` temporaries.
    pub fn prepare(&mut self, ntemps: usize) {
        self.forms.prepare(ntemps);
        self.loads.clear();
    }

    /// Control may merge here: the address forms die with the region (see `Versions`),
    /// the loads here.
    pub fn new_region(&mut self) {
        self.loads.clear();
    }

    fn addr(&self, vers: &Versions, v: Val) -> Addr {
        match v {
            Val::T(t) => self.forms.get(vers, t).unwrap_or((v, 0)),
            Val::C(_) => (v, 0),
        }
    }

    /// `addr + disp` as `base + offset`.
    fn addr_disp(&self, vers: &Versions, addr: Val, disp: i32) -> Addr {
        let (base, off) = self.addr(vers, addr);
        (base, off.wrapping_add(disp as i64 as u64))
    }

    /// Folds a known `base + offset` address into the access's displacement, so the access
    /// uses the base directly (the backend's addressing mode adds the offset, and the `Add`
    /// dies when nothing else uses it). A constant address absorbs the displacement.
    fn fold_address(&self, vers: &Versions, op: &mut Op) {
        if let Op::Load { addr, disp, .. } | Op::Store { addr, disp, .. } = op {
            let (base, off) = self.addr_disp(vers, *addr, *disp);
            match base {
                Val::C(c) => (*addr, *disp) = (Val::C(c.wrapping_add(off)), 0),
                Val::T(_) => {
                    if let Ok(d) = i32::try_from(off as i64) {
                        (*addr, *disp) = (base, d);
                    }
                }
            }
        }
    }

    /// Rewrites `op` if it repeats an earlier load (with the facts from before `op`).
    pub fn rewrite(&self, b: &Block, vers: &Versions, op: &mut Op) {
        self.fold_address(vers, op);
        // Behind a soft MMU a load may read a device register: every one must happen.
        if b.soft_mmu.is_none() {
            if let Some(reused) = self.reuse(b, vers, op) {
                *op = reused;
            }
        }
    }

    /// Records what `op` teaches or invalidates; `vers` already has its definitions.
    pub fn record(&mut self, vers: &Versions, op: &Op) {
        match op {
            Op::Store { .. } | Op::Rmw { .. } | Op::Cmpxchg { .. } | Op::Call { .. } => {
                self.loads.clear()
            }
            Op::Barrier(order) if order.orders_later_loads() => self.loads.clear(),
            _ => {}
        }
        if self.loads.len() > 64 {
            self.loads.retain(|l| l.witness.holds(vers));
        }
        let Some(d) = op.def() else {
            return;
        };
        match *op {
            Op::Bin {
                op: BinOp::Add,
                ty: Ty::I64,
                a: Val::T(x),
                b: Val::C(k),
                ..
            } if x != d => {
                // Valid while d and the base keep their values.
                let (base, off) = self.addr(vers, Val::T(x));
                let form = (base, off.wrapping_add(k));
                self.forms.insert(vers, d, form, base_temp(form));
            }
            Op::Load {
                addr,
                disp,
                size,
                signed,
                ..
            } if addr != Val::T(d) => {
                let a = self.addr_disp(vers, addr, disp);
                if base_temp(a) != Some(d) {
                    self.loads.push(DoneLoad {
                        addr: a,
                        size,
                        signed,
                        result: d,
                        witness: Witness::new(vers, [base_temp(a), Some(d)]),
                    });
                }
            }
            _ => {}
        }
    }

    /// The move or extension that replaces load `op`, if it repeats an earlier one.
    fn reuse(&self, b: &Block, vers: &Versions, op: &Op) -> Option<Op> {
        let Op::Load {
            dst,
            addr,
            disp,
            size,
            signed,
        } = *op
        else {
            return None;
        };
        if b.ty(dst) != Ty::I64 {
            return None;
        }
        let a = self.addr_disp(vers, addr, disp);
        let valid = self.loads.iter().filter(|l| l.witness.holds(vers));
        let same = |l: &&DoneLoad| {
            l.addr == a
                && l.size == size
                && (l.signed == signed || size == MemSize::B8)
                && b.ty(l.result) == Ty::I64
        };
        if let Some(l) = valid.clone().find(same) {
            return Some(Op::Mov {
                dst,
                src: Val::T(l.result),
            });
        }
        // The same word loaded with the other extension: re-extend its low half (extensions
        // read only the low 32 bits of their operand).
        let mut valid = valid;
        let other = valid.find(|l| {
            l.addr == a && l.size == MemSize::B4 && size == MemSize::B4 && b.ty(l.result) == Ty::I64
        });
        if let Some(l) = other {
            let op = if signed { ExtOp::Sext32 } else { ExtOp::Zext32 };
            return Some(Op::Ext {
                op,
                dst,
                a: Val::T(l.result),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::ir::{BinOp, Block, GlobalDef, MemSize, Op, Order, Temp, Ty, Val};
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

    /// A barrier that orders later loads makes them load again (message passing: `data`
    /// after `fence r,r` must not be the value loaded before it); one that orders only later
    /// stores does not, and the optimiser keeps every barrier.
    #[test]
    fn barriers_ordering_later_loads_keep_the_load() {
        for (order, want) in [
            (Order::LOAD_LOAD, 2),
            (Order::STORE_LOAD, 2),
            (Order::ALL, 2),
            (Order::ALL.without(Order::STORE_LOAD), 2),
            (Order::LOAD_STORE.union(Order::STORE_STORE), 1),
        ] {
            let mut b = block();
            let x = load_at(&mut b, 8, MemSize::B8, false);
            b.push(Op::Barrier(order));
            let y = load_at(&mut b, 8, MemSize::B8, false);
            let (n, b) = loads_left(b, x, y);
            assert_eq!(n, want, "{order:?}");
            assert!(b.ops.contains(&Op::Barrier(order)), "{order:?} removed");
        }
    }
}
