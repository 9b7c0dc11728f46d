//! Per-instruction translation context: operand access and IR emission helpers shared by
//! every translate function.

use crate::cpu;
use dbt::ir::{
    BinOp, Block, CallOp, CmpxchgOp, Cond, ExtOp, Helper, Label, MemSize, Op, SelectOp, Temp, Ty,
    UnOp, Val,
};

/// Exit codes returned to the engine.
pub const EXIT_ECALL: u32 = 0;
pub const EXIT_EBREAK: u32 = 1;
pub const EXIT_ILLEGAL: u32 = 2;
/// A misaligned atomic access (the address is rs1 of the instruction at pc).
pub const EXIT_MISALIGNED: u32 = 3;
/// System mode: a helper stopped the instruction at pc (see `system::hart::TRAP_*`).
pub const EXIT_TRAP: u32 = 4;
/// System mode: pc is the next instruction; the run loop looks at interrupts and modes again.
pub const EXIT_SYNC: u32 = 5;
/// System mode: `mret`, `sret`, `wfi` at pc.
pub const EXIT_MRET: u32 = 6;
pub const EXIT_SRET: u32 = 7;
pub const EXIT_WFI: u32 = 8;
/// A debugger's breakpoint at pc (the instruction there has not run).
pub const EXIT_DEBUG: u32 = 9;
/// System mode: `sfence.vma` at pc, `EXIT_SFENCE | rs1 << 5 | rs2`.
pub const EXIT_SFENCE: u32 = 0x400;

/// The FP unit's state (mstatus.FS) a system-mode block was translated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FpState {
    /// FS = Off: FP instructions are illegal.
    Off,
    /// FS = Initial or Clean: the first FP instruction marks it Dirty.
    Clean,
    /// FS = Dirty (and always in user mode).
    Dirty,
}

/// Decoded operand fields (what a table row's format extracts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub rd: usize,
    pub rs1: usize,
    pub rs2: usize,
    pub rs3: usize,
    pub imm: i64,
    pub rm: u32,
    /// Bits 31:20 of a 32-bit instruction (the CSR number of the Zicsr instructions; the
    /// `fm`, `pred` and `succ` fields of `fence`; the `aq` and `rl` bits of the A
    /// instructions).
    pub csr: u32,
}

impl Args {
    /// An AMO's or LR/SC's acquire bit (instruction bit 26).
    pub fn aq(&self) -> bool {
        self.csr >> 6 & 1 != 0
    }
    /// An AMO's or LR/SC's release bit (instruction bit 25).
    pub fn rl(&self) -> bool {
        self.csr >> 5 & 1 != 0
    }
}

pub struct Ctx<'a> {
    pub b: &'a mut Block,
    /// Address of the instruction being translated.
    pub pc: u64,
    /// Its length in bytes (2 or 4).
    pub len: u64,
    /// Set by translate functions that end the block.
    pub ended: bool,
    /// Out-of-line exits placed after the block's terminator: a label and the terminator
    /// that follows it (an `Exit`, or a `GotoTb` for a branch taken out of the block).
    pub tails: &'a mut Vec<(Label, Op)>,
    /// Next free chain slot of the block (every direct exit gets its own).
    pub next_slot: &'a mut u8,
    /// The block may go on past a conditional branch (budget of instructions and slots left).
    pub may_continue: bool,
    /// Set by a direct jump that lets the front end decide whether the block goes on at its
    /// target (see `frontend`); the jump has emitted everything but the transfer itself.
    pub jump: Option<u64>,
    /// The block's start, when a branch back to it may go on into another copy of the loop
    /// body (see `frontend`'s unrolling).
    pub unroll_to: Option<u64>,
    /// Block-wide: frm was already checked valid by an earlier instruction of this block
    /// (and no CSR instruction since could have changed it).
    pub frm_checked: &'a mut bool,
    /// Set by an instruction that may change the rounding mode (a write of frm or fcsr;
    /// writing fflags leaves it alone).
    pub frm_written: bool,
    /// Full-system mode: memory goes through the MMU helpers, privileged instructions exist.
    pub system: bool,
    /// The raw instruction (for the illegal-instruction trap value).
    pub insn: u32,
}

impl Ctx<'_> {
    pub fn next_pc(&self) -> u64 {
        self.pc.wrapping_add(self.len)
    }

    /// Value of integer register `r` (x0 reads as the constant 0).
    pub fn x(&self, r: usize) -> Val {
        if r == 0 {
            Val::C(0)
        } else {
            Val::T(Temp(r as u32))
        }
    }

    /// Writes `v` to integer register `r` (writes to x0 are dropped).
    pub fn set_x(&mut self, r: usize, v: Val) {
        if r != 0 {
            self.b.push(Op::Mov {
                dst: Temp(r as u32),
                src: v,
            });
        }
    }

    pub fn temp(&mut self) -> Temp {
        self.b.new_temp(Ty::I64)
    }
    pub fn temp32(&mut self) -> Temp {
        self.b.new_temp(Ty::I32)
    }
    pub fn label(&mut self) -> Label {
        self.b.new_label()
    }
    pub fn emit(&mut self, op: Op) {
        self.b.push(op)
    }

    pub fn bin(&mut self, op: BinOp, a: Val, b: Val) -> Val {
        let d = self.temp();
        self.emit(Op::Bin {
            op,
            ty: Ty::I64,
            dst: d,
            a,
            b,
        });
        Val::T(d)
    }
    pub fn un(&mut self, op: UnOp, a: Val) -> Val {
        let d = self.temp();
        self.emit(Op::Un {
            op,
            ty: Ty::I64,
            dst: d,
            a,
        });
        Val::T(d)
    }
    pub fn trunc(&mut self, a: Val) -> Val {
        match a {
            Val::C(c) => Val::C(c & 0xffff_ffff),
            _ => {
                let d = self.temp32();
                self.emit(Op::Ext {
                    op: ExtOp::Trunc,
                    dst: d,
                    a,
                });
                Val::T(d)
            }
        }
    }
    pub fn sext32(&mut self, a: Val) -> Val {
        let d = self.temp();
        self.emit(Op::Ext {
            op: ExtOp::Sext32,
            dst: d,
            a,
        });
        Val::T(d)
    }
    pub fn zext32(&mut self, a: Val) -> Val {
        let a = self.trunc(a);
        let d = self.temp();
        self.emit(Op::Ext {
            op: ExtOp::Zext32,
            dst: d,
            a,
        });
        Val::T(d)
    }
    /// 32-bit operation on the low halves, result sign-extended to 64 bits (the W forms).
    pub fn bin32(&mut self, op: BinOp, a: Val, b: Val) -> Val {
        let a = self.trunc(a);
        let b = self.trunc(b);
        let d = self.temp32();
        self.emit(Op::Bin {
            op,
            ty: Ty::I32,
            dst: d,
            a,
            b,
        });
        self.sext32(Val::T(d))
    }
    pub fn un32(&mut self, op: UnOp, a: Val) -> Val {
        let a = self.trunc(a);
        let d = self.temp32();
        self.emit(Op::Un {
            op,
            ty: Ty::I32,
            dst: d,
            a,
        });
        self.sext32(Val::T(d))
    }
    pub fn setcond(&mut self, cond: Cond, a: Val, b: Val) -> Val {
        let d = self.temp();
        self.emit(Op::SetCond {
            cond,
            ty: Ty::I64,
            dst: d,
            a,
            b,
        });
        Val::T(d)
    }
    pub fn select(&mut self, cond: Cond, a: Val, b: Val, t: Val, f: Val) -> Val {
        let d = self.temp();
        self.emit(Op::Select(Box::new(SelectOp {
            cond,
            ty: Ty::I64,
            dst: d,
            a,
            b,
            t,
            f,
        })));
        Val::T(d)
    }
    /// System mode: leaves the block through `EXIT_TRAP` when the helper just called
    /// stopped the instruction.
    pub fn trap_check(&mut self) {
        let l = self.label();
        self.emit(Op::BrCond {
            cond: Cond::Ne,
            ty: Ty::I64,
            a: Val::T(Temp(crate::system::helpers::TRAP_G)),
            b: Val::C(0),
            label: l,
        });
        self.side_exit(l, EXIT_TRAP);
    }

    /// Atomic read-modify-write at `addr`; the old value (sign-extended for 4 bytes).
    pub fn rmw(&mut self, op: dbt::ir::RmwOp, addr: Val, val: Val, size: MemSize) -> Val {
        if self.system {
            let how = crate::system::helpers::rmw_code(op) | size.bytes() << 8;
            let d = self.call(crate::system::helpers::AMO, &[addr, val, Val::C(how)]);
            self.trap_check();
            return d;
        }
        let d = self.temp();
        self.emit(Op::Rmw {
            op,
            dst: d,
            addr,
            val,
            size,
        });
        Val::T(d)
    }

    /// Atomic compare-and-swap at `addr`; the old value (sign-extended for 4 bytes).
    pub fn cmpxchg(&mut self, addr: Val, expect: Val, new: Val, size: MemSize) -> Val {
        if self.system {
            let h = crate::system::helpers::CAS;
            let d = self.call(h, &[addr, expect, new, Val::C(size.bytes())]);
            self.trap_check();
            return d;
        }
        let d = self.temp();
        self.emit(Op::Cmpxchg(Box::new(CmpxchgOp {
            dst: d,
            addr,
            expect,
            new,
            size,
        })));
        Val::T(d)
    }

    /// Stores `src` to `x[rs1] + imm`, as [`Ctx::load`].
    pub fn store(&mut self, src: Val, rs1: usize, imm: i64, size: MemSize) {
        let addr = self.x(rs1);
        self.emit(Op::Store {
            src,
            addr,
            disp: imm as i32,
            size,
        });
    }
    /// Loads from `x[rs1] + imm` (a 12-bit immediate, kept as the access's displacement).
    pub fn load(&mut self, rs1: usize, imm: i64, size: MemSize, signed: bool) -> Val {
        let d = self.temp();
        let addr = self.x(rs1);
        self.emit(Op::Load {
            dst: d,
            addr,
            disp: imm as i32,
            size,
            signed,
        });
        Val::T(d)
    }
    pub fn call(&mut self, helper: Helper, args: &[Val]) -> Val {
        let d = self.temp();
        self.emit(Op::Call(Box::new(CallOp {
            helper,
            dst: Some(d),
            args: args.to_vec(),
            fast: None,
        })));
        Val::T(d)
    }
    pub fn call_void(&mut self, helper: Helper, args: &[Val]) {
        self.emit(Op::Call(Box::new(CallOp {
            helper,
            dst: None,
            args: args.to_vec(),
            fast: None,
        })));
    }

    /// Ends the block with a chained jump to `pc`.
    /// A fresh chain slot for a direct exit.
    pub fn slot(&mut self) -> u8 {
        let s = *self.next_slot;
        *self.next_slot += 1;
        s
    }

    /// An out-of-line exit with `code` at the current instruction, reached through `label`.
    pub fn side_exit(&mut self, label: Label, code: u32) {
        let pc = self.pc;
        self.tails.push((label, Op::Exit { code, pc }));
    }

    /// Ends the block with a chained jump to `pc`.
    pub fn goto(&mut self, pc: u64) {
        let slot = self.slot();
        self.emit(Op::GotoTb { slot, pc });
        self.ended = true;
    }
    pub fn exit(&mut self, code: u32) {
        let pc = self.pc;
        self.emit(Op::Exit { code, pc });
        self.ended = true;
    }
    pub fn illegal(&mut self) -> bool {
        self.exit(EXIT_ILLEGAL);
        true
    }
    pub fn res_addr() -> Temp {
        Temp(cpu::RES_ADDR)
    }
    pub fn res_val() -> Temp {
        Temp(cpu::RES_VAL)
    }
}
