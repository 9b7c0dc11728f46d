//! Guest memory addressing: range checks, and the checks a block can skip.
//!
//! A guest access `addr + disp` becomes one host instruction on `[r14 + addr + disp]`. Before
//! it, the *base* `addr` is compared with the largest valid address (one `cmp`/`ja` pair);
//! the displacement rides in the addressing mode. This is sound because the host address
//! space is guarded: [`GUEST_GUARD`] inaccessible bytes lie on each side of guest memory
//! (see `hostmem::Reservation`), so an access that passed the base check but lands outside
//! `[0, limit)` faults on the host, and the fault handler reports the guest address exactly
//! as a range-check failure would. When the base check fails, its out-of-line stub adds the
//! displacement and checks again, so a base just outside the range with an address inside
//! it still works.
//!
//! A passed check also says where the base is: within `drift` bytes of `[0, limit]` (the
//! displacement of the check, if its second chance was taken). Values derived from it by
//! adding a constant stay close ([`Gen::track_checked`]); an access on such a value needs no
//! check of its own while `drift + |disp|` stays within the guard. A pointer bumped by a loop
//! body and used again (`ld 0(a5); addi a5, a5, 8; sd -8(a5)`) is checked once.

use super::{DirtyRegs, Gen, Stub};
use crate::hostmem::GUEST_GUARD;
use crate::ir::{BinOp, Op, Temp, Ty, Val};
use crate::native as n;
use crate::x86::*;

/// A failed range check, emitted out of line: `resume` is the access it guards.
pub(super) struct RangeStub {
    site: usize,
    resume: usize,
    addr: R,
    disp: i32,
    bytes: u64,
    write: bool,
    pc: u64,
    dirty: DirtyRegs,
}

/// How far an access may reach outside `[0, limit)` and still be caught by the guard (the
/// widest access is 8 bytes).
const REACH: i64 = GUEST_GUARD as i64 - 8;

impl Gen<'_> {
    /// How far `t` may be from `[0, limit]`, if an earlier range check bounded it.
    fn drift(&self, t: Temp) -> Option<i64> {
        self.checked.iter().find(|c| c.0 == t).map(|c| c.1)
    }

    fn set_drift(&mut self, t: Temp, drift: Option<i64>) {
        self.checked.retain(|c| c.0 != t);
        if let Some(d) = drift.filter(|&d| d <= REACH) {
            self.checked.push((t, d));
        }
    }

    /// The register and displacement addressing guest `addr + disp` (`addr` is in `ra`) for
    /// an access of `bytes` (relative to r14), after a range check unless an earlier one
    /// covers it. Emit nothing that needs rax between this and the access.
    pub(super) fn guest_address(
        &mut self,
        addr: Val,
        ra: R,
        disp: i32,
        bytes: u64,
        write: bool,
    ) -> (R, i32) {
        let reach = (disp as i64).abs();
        let base = match addr {
            Val::T(t) => Some(t),
            Val::C(_) => None,
        };
        if let Some(drift) = base.and_then(|t| self.drift(t)) {
            if drift + reach <= REACH {
                return (ra, disp);
            }
        }
        if reach > REACH {
            // Too far for the guard: check the whole address (rax is free around accesses).
            self.a.lea(true, RAX, mem(ra, disp));
            self.range_check(RAX, 0, bytes, write);
            return (RAX, 0);
        }
        self.range_check(ra, disp, bytes, write);
        if let Some(t) = base {
            self.set_drift(t, Some(reach));
        }
        (ra, disp)
    }

    /// Emits the check that `base` is a valid address for an access of `bytes`; the stub
    /// retries with `base + disp` before reporting a fault at that address.
    pub(super) fn range_check(&mut self, base: R, disp: i32, bytes: u64, write: bool) {
        let k = bytes.trailing_zeros() as i32;
        self.a.cmp_rm(true, base, mem(R15, n::CTX_MAX_ADDR + 8 * k));
        let site = self.a.jcc(Cc::A);
        let dirty = self.dirty_list();
        self.stubs.push(Stub::Range(RangeStub {
            site,
            resume: self.a.pos(),
            addr: base,
            disp,
            bytes,
            write,
            pc: self.pc,
            dirty,
        }));
    }

    /// Out of line: a failed range check. With a displacement, the full address may still be
    /// valid (then the access is done after all); otherwise the guest faults at it.
    pub(super) fn range_stub(&mut self, s: RangeStub) {
        let RangeStub {
            site,
            resume,
            addr,
            disp,
            bytes,
            write,
            pc,
            dirty,
        } = s;
        let here = self.a.pos();
        self.a.patch(site, here);
        let mut at = addr;
        if disp != 0 {
            self.a.lea(true, RAX, mem(addr, disp));
            let k = bytes.trailing_zeros() as i32;
            self.a.cmp_rm(true, RAX, mem(R15, n::CTX_MAX_ADDR + 8 * k));
            let back = self.a.jcc(Cc::Be);
            self.a.patch(back, resume);
            at = RAX;
        }
        for (off, r) in dirty.iter() {
            self.store_any(mem(RBP, off as i32), r);
        }
        self.a.store(true, mem(R15, n::CTX_FAULT_ADDR), at);
        self.a.store_imm(mem(R15, n::CTX_FAULT_WRITE), write as i32);
        self.set_pc_exit(pc, self.tb_idx << 8 | n::K_RANGE);
    }

    /// Keeps the record of range-checked values true after `op` (emitted already): a value
    /// written is no longer the one checked, unless it is a checked value plus a constant.
    pub(super) fn track_checked(&mut self, op: &Op) {
        if self.checked.is_empty() {
            return;
        }
        match op {
            // Control may arrive from elsewhere.
            Op::Label(_) => return self.checked.clear(),
            // A helper may rewrite guest registers.
            Op::Call(c) => self.checked.retain(|k| !c.helper.may_write(k.0)),
            _ => {}
        }
        let Some(d) = op.def() else {
            return;
        };
        let derived = match *op {
            Op::Mov { src: Val::T(s), .. } => self.drift(s),
            Op::Bin {
                op: BinOp::Add | BinOp::Sub,
                ty: Ty::I64,
                a: Val::T(s),
                b: Val::C(c),
                ..
            } => self
                .drift(s)
                .and_then(|drift| drift.checked_add((c as i64).checked_abs()?)),
            _ => None,
        };
        self.set_drift(d, derived);
    }
}
