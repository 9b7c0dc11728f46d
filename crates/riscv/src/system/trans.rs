//! Translate functions of the privileged instructions (system mode only; in user mode they
//! are illegal) and of CSR accesses to privileged registers.

use super::csrs::write_needs_sync;
use super::helpers::CSR;
use crate::ctx::{Args, Ctx, EXIT_MRET, EXIT_SFENCE, EXIT_SRET, EXIT_SYNC, EXIT_WFI};
use dbt::ir::{Op, Val};

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
/// and read-only-ness at run time and does the access; a write that can change interrupt
/// enables, translation or privilege ends the block.
pub fn csr_access(c: &mut Ctx, a: &Args, op: u32, imm: bool, writes: bool) -> bool {
    let src = if imm {
        Val::C(a.rs1 as u64)
    } else {
        c.x(a.rs1)
    };
    let how = a.csr as u64 | (op as u64) << 12 | (writes as u64) << 14;
    let old = c.call(CSR, &[Val::C(how), src, Val::C(c.insn as u64)]);
    c.trap_check();
    c.set_x(a.rd, old);
    if writes && write_needs_sync(a.csr) {
        let pc = c.next_pc();
        c.emit(Op::Exit {
            code: EXIT_SYNC,
            pc,
        });
        c.ended = true;
    }
    true
}
