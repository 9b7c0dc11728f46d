//! The guest's accrued inexact flag, kept by the host FPU (see [`InexactFlag`]).
//!
//! An inline FP fast path leaves inexactness where the host puts it: MXCSR.PE, which is
//! sticky, so a run of fast paths costs nothing for the flag. The invariant is: the guest's
//! flag is the flag bit in its register OR MXCSR.PE. Reading MXCSR is slow, so PE is folded
//! into the register only where something can observe it, and only when the register's bit
//! is clear (once it is set, PE no longer matters; FP-heavy code gets there at once):
//! - before an op that reads or writes the register, and before a helper that may write it;
//! - after an op or helper that wrote the register with the bit clear, MXCSR is cleared (the
//!   guest cleared its flags, or a helper's own host arithmetic may have raised some);
//! - the trampoline clears MXCSR on entry and hands it to `Native::execute` on every return.
//!
//! Generated code runs with [`MXCSR_GUEST`], which also unmasks the exceptions an inline fast
//! path must not complete (see `fptrap`); Rust code runs with [`MXCSR_HOST`]. Calls to
//! helpers that may do FP arithmetic (those that may write the flag register) switch to the
//! host mode and back; integer helpers run in the guest mode, which is harmless to them.

use super::Gen;
use crate::ir::{BinOp, Block, InexactFlag, Op, Temp, Val};
use crate::native as n;
use crate::x86::*;

/// MXCSR with every exception masked, round to nearest even and no flags: what Rust code
/// runs with.
pub const MXCSR_HOST: i32 = 0x1f80;
/// MXCSR in generated code that inlines FP arithmetic (see `fptrap`): round to nearest even,
/// no flags, and invalid, divide-by-zero, overflow and underflow unmasked, so that an inline
/// operation meeting one of them traps before writing its result. Denormal operands and
/// inexact results stay masked: the host computes those exactly as the guest would.
pub const MXCSR_GUEST: i32 = 0x1100;
pub const MXCSR_PE: u8 = 0x20;

/// Where the guest register holding the flag is.
#[derive(Clone, Copy)]
pub enum FlagHome {
    Reg(R),
    Mem(Mem),
}

/// Emits a jump taken when the register's flag bit is set.
fn jump_if_set(a: &mut Asm, home: FlagHome, mask: u32) -> usize {
    match home {
        FlagHome::Reg(r) => a.test_ri(true, r, mask as i32),
        FlagHome::Mem(m) => a.test_mi(true, m, mask as i32),
    }
    a.jcc(Cc::Ne)
}

/// Emits: unless the flag bit is set, if MXCSR.PE is set, set the bit and clear MXCSR's
/// flags. Uses the context's scratch word (r15 must be set); changes no register but `home`.
pub fn emit_fold(a: &mut Asm, home: FlagHome, mask: u32) {
    let set = jump_if_set(a, home, mask);
    let scratch = mem(R15, n::CTX_SCRATCH);
    a.stmxcsr(scratch);
    a.test_m8(scratch, MXCSR_PE);
    let clean = a.jcc(Cc::E);
    match home {
        FlagHome::Reg(r) => a.alu_ri(true, Alu::Or, r, mask as i32),
        FlagHome::Mem(m) => a.alu_mi(true, Alu::Or, m, mask as i32),
    }
    emit_clear(a);
    let here = a.pos();
    a.patch(set, here);
    a.patch(clean, here);
}

/// Emits: unless the flag bit is set, clear MXCSR's flags (after the register was written).
pub fn emit_settle(a: &mut Asm, home: FlagHome, mask: u32) {
    let set = jump_if_set(a, home, mask);
    emit_clear(a);
    let here = a.pos();
    a.patch(set, here);
}

/// Emits `MXCSR = MXCSR_GUEST`: generated code's mode, flags clear (r15 must be set).
pub fn emit_clear(a: &mut Asm) {
    emit_mxcsr(a, MXCSR_GUEST);
}

/// Emits `MXCSR = MXCSR_HOST`, for calling Rust code that may do FP arithmetic (r15 must be
/// set).
pub fn emit_host_mode(a: &mut Asm) {
    emit_mxcsr(a, MXCSR_HOST);
}

fn emit_mxcsr(a: &mut Asm, value: i32) {
    let scratch = mem(R15, n::CTX_SCRATCH);
    a.store_imm32(scratch, value);
    a.ldmxcsr(scratch);
}

/// The global holding the flag, if the backend defers it for this block.
pub fn flag_global(b: &Block, f: Option<InexactFlag>) -> Option<Temp> {
    let f = f?;
    // The fold and settle sequences use the mask as a sign-extended 32-bit immediate.
    assert!(f.mask < 1 << 31, "inexact flag mask {:#x} too wide", f.mask);
    let k = b.globals.iter().position(|g| g.offset == f.offset)?;
    Some(Temp(k as u32))
}

impl Gen<'_> {
    /// Whether `op` (other than a call) can observe the flag register: it writes it, or reads
    /// it other than through a mask or a right shift that drops the flag's bits.
    pub(super) fn observes_inexact(&self, op: &Op) -> bool {
        let (Some(g), Some(f)) = (self.flag_global, self.inexact) else {
            return false;
        };
        if op.def() == Some(g) {
            return true;
        }
        match *op {
            Op::Bin {
                op: BinOp::And,
                a: Val::T(t),
                b: Val::C(m),
                ..
            } if t == g => m & f.mask as u64 != 0,
            Op::Bin {
                op: BinOp::Shr | BinOp::Sar,
                ty,
                a: Val::T(t),
                b: Val::C(s),
                ..
            } if t == g => (f.mask as u64) >> (s & (ty.bits() as u64 - 1)) != 0,
            // Helpers fold for themselves (see `Gen::op_body`) and a fast path's guard reads
            // only the rounding mode; an argument, though, is the register's whole value
            // (copy propagation can make it an FP operand).
            Op::Call(ref c) => c.args.contains(&Val::T(g)),
            _ => {
                let mut reads = false;
                op.for_each_use(|v| reads |= *v == Val::T(g));
                reads
            }
        }
    }

    /// Where the flag register is now.
    fn flag_home(&self) -> Option<(FlagHome, u32)> {
        let f = self.inexact?;
        // A block without the register as a global still folds what a predecessor left.
        let cached = self.flag_global.and_then(|g| self.reg_of[g.0 as usize]);
        let home = match cached {
            Some(r) => FlagHome::Reg(r),
            None => FlagHome::Mem(mem(RBP, f.offset as i32)),
        };
        Some((home, f.mask))
    }

    /// Folds MXCSR.PE into the flag register wherever it is now.
    pub(super) fn fold_inexact(&mut self) {
        let Some((home, mask)) = self.flag_home() else {
            return;
        };
        if let FlagHome::Reg(r) = home {
            // Possibly changed: written back like any modified guest register.
            self.dirty[r.0 as usize] = true;
        }
        emit_fold(&mut self.a, home, mask);
    }

    /// After the flag register was written (by an op or a helper): see [`emit_settle`].
    pub(super) fn settle_inexact(&mut self) {
        if let Some((home, mask)) = self.flag_home() {
            emit_settle(&mut self.a, home, mask);
        }
    }
}
