//! The IR interpreter: the portable backend, and the reference the native backend is
//! differentially tested against. Globals are read and written directly in the env, so the
//! guest state is architecturally exact at every op (which makes faults trivially precise).

use crate::env::EnvPtr;
use crate::eval;
use crate::hostmem::{GuestMem, HostFault};
use crate::ir::{Block, Op, Order, SelectOp, SoftMmu, Temp, Val};
use std::sync::atomic::Ordering;

/// How a block ended. In every case the env's pc field holds the next guest pc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockExit {
    /// Direct jump through chain slot `slot` to `pc`.
    Chain { slot: u8, pc: u64 },
    /// Indirect jump to `pc`.
    Indirect { pc: u64 },
    /// Front-end defined exit code.
    Code(u32),
    /// Guest memory fault at the instruction whose pc is in env.pc.
    Fault(HostFault),
}

struct Frame<'a> {
    b: &'a Block,
    env: EnvPtr,
    vals: &'a mut Vec<u64>,
}

impl Frame<'_> {
    fn get(&self, v: Val) -> u64 {
        match v {
            Val::C(c) => c,
            Val::T(t) if self.b.is_global(t) => self.env.read(self.b.globals[t.0 as usize].offset),
            Val::T(t) => self.vals[t.0 as usize],
        }
    }
    fn set(&mut self, t: Temp, v: u64) {
        let v = self.b.ty(t).canon(v);
        if self.b.is_global(t) {
            self.env.write(self.b.globals[t.0 as usize].offset, v);
        } else {
            self.vals[t.0 as usize] = v;
        }
    }
}

/// A guest access through the soft MMU's slow path (the interpreter has no TLB fast
/// path); None when the guest faulted.
fn soft_access(m: &SoftMmu, env: EnvPtr, va: u64, value: u64, info: u64) -> Option<u64> {
    let v = (m.slow)(env.as_ptr(), va, value, info);
    (env.read(m.fault_offset) == 0).then_some(v)
}

/// Precomputed label positions for a block (cache it with the block).
pub fn label_table(b: &Block) -> Vec<usize> {
    let mut t = vec![usize::MAX; b.nlabels as usize];
    for (i, op) in b.ops.iter().enumerate() {
        if let Op::Label(l) = op {
            t[l.0 as usize] = i;
        }
    }
    t
}

/// Executes `b` once. `pc_off` is the env offset of the guest pc.
pub fn run_block(
    b: &Block,
    labels: &[usize],
    env: EnvPtr,
    mem: &GuestMem,
    pc_off: u32,
) -> BlockExit {
    run_block_with(b, labels, env, mem, pc_off, &mut Vec::new())
}

/// Like [`run_block`], reusing `scratch` for temporaries (avoids an allocation per block).
pub fn run_block_with(
    b: &Block,
    labels: &[usize],
    env: EnvPtr,
    mem: &GuestMem,
    pc_off: u32,
    scratch: &mut Vec<u64>,
) -> BlockExit {
    if scratch.len() < b.temps.len() {
        scratch.resize(b.temps.len(), 0);
    }
    let mut f = Frame {
        b,
        env,
        vals: scratch,
    };
    let mut i = 0;
    let mut cur_pc = b.guest_pc;
    while i < b.ops.len() {
        let op = &b.ops[i];
        i += 1;
        let fault = |e: HostFault| {
            env.write(pc_off, cur_pc);
            BlockExit::Fault(e)
        };
        match *op {
            Op::InsnStart { pc } => cur_pc = pc,
            Op::Mov { dst, src } => {
                let v = f.get(src);
                f.set(dst, v)
            }
            Op::Bin { op, ty, dst, a, b } => {
                let v = eval::bin(op, ty, f.get(a), f.get(b));
                f.set(dst, v)
            }
            Op::Un { op, ty, dst, a } => {
                let v = eval::un(op, ty, f.get(a));
                f.set(dst, v)
            }
            Op::Ext { op, dst, a } => {
                let v = eval::ext(op, f.get(a));
                f.set(dst, v)
            }
            Op::SetCond {
                cond,
                ty,
                dst,
                a,
                b,
            } => {
                let v = cond.eval(ty, f.get(a), f.get(b)) as u64;
                f.set(dst, v)
            }
            Op::Select(ref s) => {
                let SelectOp {
                    cond,
                    ty,
                    dst,
                    a,
                    b,
                    t,
                    f: e,
                } = **s;
                let v = if cond.eval(ty, f.get(a), f.get(b)) {
                    f.get(t)
                } else {
                    f.get(e)
                };
                f.set(dst, v)
            }
            Op::Load {
                dst,
                addr,
                disp,
                size,
                signed,
            } if b.soft_mmu.is_some() => {
                let m = b.soft_mmu.expect("checked");
                let va = effective(f.get(addr), disp);
                match soft_access(&m, env, va, 0, SoftMmu::info(size, signed, false)) {
                    Some(v) => f.set(dst, v),
                    None => {
                        return fault(HostFault {
                            addr: va,
                            write: false,
                        })
                    }
                }
            }
            Op::Store {
                src,
                addr,
                disp,
                size,
            } if b.soft_mmu.is_some() => {
                let m = b.soft_mmu.expect("checked");
                let va = effective(f.get(addr), disp);
                let info = SoftMmu::info(size, false, true);
                if soft_access(&m, env, va, f.get(src), info).is_none() {
                    return fault(HostFault {
                        addr: va,
                        write: true,
                    });
                }
            }
            Op::Load {
                dst,
                addr,
                disp,
                size,
                signed,
            } => match mem.load(effective(f.get(addr), disp), size.bytes()) {
                Ok(v) => {
                    let bits = size.bytes() * 8;
                    let v = if signed && bits < 64 {
                        (((v << (64 - bits)) as i64) >> (64 - bits)) as u64
                    } else {
                        v
                    };
                    f.set(dst, v)
                }
                Err(e) => return fault(e),
            },
            Op::Store {
                src,
                addr,
                disp,
                size,
            } => {
                if let Err(e) = mem.store(effective(f.get(addr), disp), size.bytes(), f.get(src)) {
                    return fault(e);
                }
            }
            Op::Rmw {
                op,
                dst,
                addr,
                val,
                size,
            } => {
                let (a, n) = (f.get(addr), size.bytes());
                let val = if n == 4 {
                    f.get(val) & 0xffff_ffff
                } else {
                    f.get(val)
                };
                let mut old = match mem.load(a, n) {
                    Ok(v) => v,
                    Err(e) => return fault(HostFault { write: true, ..e }),
                };
                loop {
                    let new = eval::rmw(op, n as u32 * 8, old, val);
                    match mem.cmpxchg(a, n, old, new) {
                        Ok(seen) if seen == old => break,
                        Ok(seen) => old = seen,
                        Err(e) => return fault(e),
                    }
                }
                let v = if n == 4 {
                    old as u32 as i32 as i64 as u64
                } else {
                    old
                };
                f.set(dst, v)
            }
            Op::Cmpxchg(ref x) => {
                let n = x.size.bytes();
                let mask = if n == 4 { 0xffff_ffff } else { u64::MAX };
                let (expect, new) = (f.get(x.expect) & mask, f.get(x.new) & mask);
                match mem.cmpxchg(f.get(x.addr), n, expect, new) {
                    Ok(old) => {
                        let v = if n == 4 {
                            old as u32 as i32 as i64 as u64
                        } else {
                            old
                        };
                        f.set(x.dst, v)
                    }
                    Err(e) => return fault(e),
                }
            }
            Op::Barrier(order) => {
                if let Some(o) = host_ordering(order) {
                    std::sync::atomic::fence(o)
                }
            }
            // The interpreter always calls: the helper defines the result (see `FastFp`).
            Op::Call(ref c) => {
                let mut a = [0u64; 4];
                for (k, v) in c.args.iter().enumerate() {
                    a[k] = f.get(*v);
                }
                let r = (c.helper.f)(env.as_ptr(), a[0], a[1], a[2], a[3]);
                if let Some(d) = c.dst {
                    f.set(d, r)
                }
            }
            Op::Label(_) => {}
            Op::Br(l) => i = labels[l.0 as usize],
            Op::BrCond {
                cond,
                ty,
                a,
                b,
                label,
            } => {
                if cond.eval(ty, f.get(a), f.get(b)) {
                    i = labels[label.0 as usize];
                }
            }
            Op::GotoTb { slot, pc } => {
                env.write(pc_off, pc);
                return BlockExit::Chain { slot, pc };
            }
            Op::JumpIndirect { target } => {
                let pc = f.get(target);
                env.write(pc_off, pc);
                return BlockExit::Indirect { pc };
            }
            Op::Exit { code, pc } => {
                env.write(pc_off, pc);
                return BlockExit::Code(code);
            }
        }
    }
    // `Block::verify` guarantees a terminator; treat falling off the end as a front-end bug.
    BlockExit::Code(u32::MAX)
}

/// The weakest Rust fence that gives `order` (None: nothing to do). Only store-to-load
/// ordering needs a sequentially consistent fence; an acquire fence orders earlier loads
/// before everything later, a release fence everything earlier before later stores.
fn host_ordering(order: Order) -> Option<Ordering> {
    let acquire = Order::LOAD_LOAD.union(Order::LOAD_STORE);
    let release = Order::LOAD_STORE.union(Order::STORE_STORE);
    if order.is_empty() {
        None
    } else if order.contains(Order::STORE_LOAD) {
        Some(Ordering::SeqCst)
    } else if acquire.contains(order) {
        Some(Ordering::Acquire)
    } else if release.contains(order) {
        Some(Ordering::Release)
    } else {
        Some(Ordering::AcqRel)
    }
}

/// The guest address a base-plus-displacement access touches (wrapping, as guest adds do).
fn effective(base: u64, disp: i32) -> u64 {
    base.wrapping_add(disp as i64 as u64)
}
