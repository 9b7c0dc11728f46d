//! Translate functions of the privileged instructions (system mode only; in user mode they
//! are illegal) and of CSR accesses to privileged registers.

use super::hart::{TRAP_EXCEPTION, TRAP_SYNC};
use super::helpers::{CSR, TRAP_G};
use crate::ctx::{Args, Ctx, EXIT_MRET, EXIT_SFENCE, EXIT_SRET, EXIT_SYNC, EXIT_TRAP, EXIT_WFI};
use dbt::ir::{Cond, Op, Temp, Ty, Val};

fn exit_here(c: &mut Ctx, code: u32) -> bool {
    if !c.system {
        return false;
    }
    c.exit(code);
    true
}

pub fn sret(c: &mut Ctx, _: &Args) -> bool {
    exit_here(c, EXIT_SRET)
}
pub fn mret(c: &mut Ctx, _: &Args) -> bool {
    exit_here(c, EXIT_MRET)
}
pub fn wfi(c: &mut Ctx, _: &Args) -> bool {
    exit_here(c, EXIT_WFI)
}
pub fn sfence_vma(c: &mut Ctx, a: &Args) -> bool {
    exit_here(c, EXIT_SFENCE | (a.rs1 as u32) << 5 | a.rs2 as u32)
}

/// A CSR instruction on a privileged (or counter) register: the helper checks privilege
/// and read-only-ness at run time and does the access; a write that changed the
/// translation mode or the mapping, or made an interrupt due, ends the block.
pub fn csr_access(c: &mut Ctx, a: &Args, op: u32, imm: bool, writes: bool) -> bool {
    let src = if imm {
        Val::C(a.rs1 as u64)
    } else {
        c.x(a.rs1)
    };
    let how = a.csr as u64 | (op as u64) << 12 | (writes as u64) << 14;
    let old = c.call(CSR, &[Val::C(how), src, Val::C(c.insn as u64)]);
    let flag = Val::T(Temp(TRAP_G));
    // An illegal access leaves before rd is written; a write the hart must look at (see
    // the helper) leaves after the instruction.
    let illegal = c.label();
    c.emit(Op::BrCond {
        cond: Cond::Eq,
        ty: Ty::I64,
        a: flag,
        b: Val::C(TRAP_EXCEPTION),
        label: illegal,
    });
    c.side_exit(illegal, EXIT_TRAP);
    c.set_x(a.rd, old);
    if writes {
        let sync = c.label();
        c.emit(Op::BrCond {
            cond: Cond::Eq,
            ty: Ty::I64,
            a: flag,
            b: Val::C(TRAP_SYNC),
            label: sync,
        });
        let pc = c.next_pc();
        c.tails.push((
            sync,
            Op::Exit {
                code: EXIT_SYNC,
                pc,
            },
        ));
    }
    true
}
