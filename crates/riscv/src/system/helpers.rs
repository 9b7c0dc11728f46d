//! Helpers translated code calls in system mode: guest memory through the MMU, CSRs, and
//! marking the FP state dirty. A helper that cannot complete its instruction records an
//! exception in the hart and sets the trap flag (a global), which the code tests right after
//! the call to leave the block; the instruction then has had no effect.

use super::csrs::CsrOp;
use super::hart::{Hart, TRAP_FLAG_OFFSET, TRAP_SYNC};
use super::mmu::Access;
use crate::cpu;
use dbt::ir::{Helper, RmwOp};

/// Global index of the trap flag (after the user-mode globals).
pub const TRAP_G: u32 = cpu::FCSR_G + 1;

/// The trap flag as a global of every system-mode block.
pub fn trap_global() -> dbt::ir::GlobalDef {
    dbt::ir::GlobalDef {
        name: "trap",
        offset: TRAP_FLAG_OFFSET,
        ty: dbt::ir::Ty::I64,
    }
}

/// The hart behind a helper's env pointer.
fn hart<'a>(env: *mut u8) -> &'a mut Hart {
    // SAFETY: system-mode blocks run only under `SystemHart::run`, which passes the env of
    // the `Hart` it exclusively borrows for the whole call; helpers run on that thread.
    unsafe { &mut *(env as *mut Hart) }
}

impl Hart {
    /// Reads `size` bytes at virtual `va`; None after raising the exception.
    pub(super) fn load(&mut self, va: u64, size: u64) -> Option<u64> {
        if (va & 0xfff) + size > 0x1000 {
            // Crosses a page: byte by byte, each byte translated (misaligned accesses are
            // done in hardware, as Linux expects of a `virt` machine).
            let mut v = 0;
            for i in 0..size {
                v |= self.load(va.wrapping_add(i), 1)? << (8 * i);
            }
            return Some(v);
        }
        let pa = match self.translate(va, Access::Load) {
            Ok(pa) => pa,
            Err(cause) => {
                self.raise(cause, va);
                return None;
            }
        };
        match self.mem.read(pa, size) {
            Some(v) => {
                self.tlb_fill(va, pa, false);
                Some(v)
            }
            None => {
                self.raise(Access::Load.access_fault(), va);
                None
            }
        }
    }

    /// Writes `size` bytes at virtual `va`; false after raising the exception. A store that
    /// hits translated code has it invalidated everywhere (see `dbt::physcode`) and sets
    /// the trap flag to `TRAP_SYNC`.
    pub(super) fn store(&mut self, va: u64, size: u64, v: u64) -> bool {
        if (va & 0xfff) + size > 0x1000 {
            // Translate both pages first: a fault must leave memory untouched.
            let second = (va | 0xfff).wrapping_add(1);
            for a in [va, second] {
                if let Err(cause) = self.translate(a, Access::Store) {
                    self.raise(cause, a);
                    return false;
                }
            }
            for i in 0..size {
                if !self.store(va.wrapping_add(i), 1, v >> (8 * i)) {
                    return false;
                }
            }
            return true;
        }
        let pa = match self.translate(va, Access::Store) {
            Ok(pa) => pa,
            Err(cause) => {
                self.raise(cause, va);
                return false;
            }
        };
        match self.mem.write(pa, size, v) {
            Ok(hit) => {
                if hit && self.trap_flag == 0 {
                    // The running block may be the code just written: leave it at this
                    // instruction, which the run loop redoes alone (a plain store is
                    // idempotent) and goes on after.
                    self.trap_flag = TRAP_SYNC;
                }
                self.tlb_fill(va, pa, true);
                true
            }
            Err(super::phys::NoDevice) => {
                self.raise(Access::Store.access_fault(), va);
                false
            }
        }
    }

    /// Physical address for an atomic access (translated as a store, as AMOs are).
    fn atomic_target(&mut self, va: u64) -> Option<u64> {
        match self.translate(va, Access::Store) {
            Ok(pa) if self.mem.is_ram(pa) => Some(pa),
            Ok(_) => {
                self.raise(Access::Store.access_fault(), va);
                None
            }
            Err(cause) => {
                self.raise(cause, va);
                None
            }
        }
    }
}

const RMW_OPS: [RmwOp; 9] = [
    RmwOp::Xchg,
    RmwOp::Add,
    RmwOp::And,
    RmwOp::Or,
    RmwOp::Xor,
    RmwOp::Min,
    RmwOp::Max,
    RmwOp::Minu,
    RmwOp::Maxu,
];

pub fn rmw_code(op: RmwOp) -> u64 {
    RMW_OPS.iter().position(|o| *o == op).unwrap_or(0) as u64
}

/// `amo(env, va, value, op | size << 8)`: returns the old value.
extern "C" fn amo(env: *mut u8, va: u64, v: u64, how: u64, _: u64) -> u64 {
    let h = hart(env);
    let size = how >> 8;
    let op = RMW_OPS[(how & 0xff) as usize % RMW_OPS.len()];
    let Some(pa) = h.atomic_target(va) else {
        return 0;
    };
    match h.mem.rmw(pa, size, op, v) {
        Some((old, _)) => old,
        None => {
            h.raise(Access::Store.access_fault(), va);
            0
        }
    }
}

pub const AMO: Helper = Helper {
    name: "sys_amo",
    f: amo,
    writes: (TRAP_G, TRAP_G + 1),
    write_bits: u64::MAX,
};

/// `cas(env, va, expect, new, size)`: returns the old value (sign-extended for 4 bytes).
extern "C" fn cas(env: *mut u8, va: u64, expect: u64, new: u64, size: u64) -> u64 {
    let h = hart(env);
    let Some(pa) = h.atomic_target(va) else {
        return 0;
    };
    let mask = if size == 4 { 0xffff_ffff } else { u64::MAX };
    match h.mem.cmpxchg(pa, size, expect & mask, new & mask) {
        Some((old, _)) => old,
        None => {
            h.raise(Access::Store.access_fault(), va);
            0
        }
    }
}

pub const CAS: Helper = Helper {
    name: "sys_cas",
    f: cas,
    writes: (TRAP_G, TRAP_G + 1),
    write_bits: u64::MAX,
};

/// `csr(env, csr | op << 12 | writes << 14, src, insn)`: returns the old value; sets the
/// trap flag to `TRAP_SYNC` after a write the run loop must look at (see `trans`).
extern "C" fn csr(env: *mut u8, how: u64, src: u64, insn: u64, _: u64) -> u64 {
    let h = hart(env);
    let num = (how & 0xfff) as u32;
    let op = match (how >> 12) & 3 {
        0 => CsrOp::Write,
        1 => CsrOp::Set,
        _ => CsrOp::Clear,
    };
    let writes = how >> 14 & 1 != 0;
    let (flags, epoch) = (h.code_flags(), h.epoch);
    match h.csr_access(num, op, src, writes) {
        Some(old) => {
            if writes
                && (h.code_flags() != flags || h.epoch != epoch || h.pending_interrupt().is_some())
            {
                h.trap_flag = super::hart::TRAP_SYNC;
            }
            old
        }
        None => {
            h.raise(super::trap::cause::ILLEGAL, insn);
            0
        }
    }
}

pub const CSR: Helper = Helper {
    name: "sys_csr",
    f: csr,
    writes: (TRAP_G, TRAP_G + 1),
    write_bits: u64::MAX,
};

/// Sets mstatus.FS to Dirty (the first FP instruction of a block run with FS Initial or
/// Clean).
extern "C" fn fs_dirty(env: *mut u8, _: u64, _: u64, _: u64, _: u64) -> u64 {
    hart(env).csr.mstatus |= 3 << 13;
    0
}

pub const FS_DIRTY: Helper = Helper {
    name: "sys_fs_dirty",
    f: fs_dirty,
    writes: (0, 0),
    write_bits: u64::MAX,
};
