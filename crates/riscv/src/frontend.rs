//! The RISC-V front end: fetches instructions, looks them up in the decode tables and lets
//! their translate functions emit IR, one block at a time.

use crate::cpu;
use crate::ctx::{Ctx, FpState, EXIT_DEBUG, EXIT_ILLEGAL};
use crate::debug::Breakpoints;
use crate::decode;
use dbt::hostmem::HostFault;
use dbt::ir::{Block, GlobalDef, Op, MAX_SLOTS};
use std::sync::Arc;

/// A block follows a direct jump only while all its code stays within this many bytes: the
/// whole span is watched for self-modifying code, so a wide one would be invalidated by
/// writes to unrelated code or data next to it.
const FOLLOW_SPAN: u64 = 4096;

/// A loop whose body is the whole block is unrolled: its closing branch goes on into
/// another copy of the body (leaving the loop becomes a side exit), at most this many copies
/// in all and this many instructions. Range checks of pointers the body bumps and the exit
/// check at the loop head are then paid once per `UNROLL_COPIES` iterations.
const UNROLL_COPIES: u32 = 8;
const UNROLL_INSNS: u32 = 64;

/// The guest code a block has translated so far: runs of consecutive instructions.
struct Covered {
    runs: Vec<(u64, u64)>,
}

impl Covered {
    fn lo(&self) -> u64 {
        self.runs.iter().map(|r| r.0).min().unwrap_or(0)
    }
    fn hi(&self) -> u64 {
        self.runs.iter().map(|r| r.1).max().unwrap_or(0)
    }
    fn contains(&self, pc: u64) -> bool {
        self.runs.iter().any(|&(s, e)| s <= pc && pc < e)
    }
    /// Whether the block can go on at `target`: not code it already has (a jump back into
    /// the block is a loop, which stays a loop) and the span stays narrow.
    fn may_follow(&self, target: u64) -> bool {
        let lo = self.lo().min(target);
        let hi = self.hi().max(target.saturating_add(4));
        !self.contains(target) && hi - lo <= FOLLOW_SPAN
    }
}

pub struct RiscvFrontend {
    globals: Arc<[GlobalDef]>,
    system: bool,
    /// A debugger's breakpoints: a block ends before one, leaving with `EXIT_DEBUG`.
    breakpoints: Option<Arc<Breakpoints>>,
}

impl Default for RiscvFrontend {
    fn default() -> Self {
        RiscvFrontend {
            globals: cpu::globals().into(),
            system: false,
            breakpoints: None,
        }
    }
}

/// Mode flags of system-mode translations (`dbt::CodeLoc::flags`): the FP unit's state.
pub const FLAG_FS_OFF: u64 = 1;
pub const FLAG_FS_CLEAN: u64 = 2;
/// The soft-MMU bank (see `system::softtlb::bank`) in bits 2..5.
pub const FLAG_BANK_SHIFT: u64 = 2;

impl RiscvFrontend {
    /// The full-system front end: memory through the MMU helpers, privileged instructions,
    /// the trap flag as an extra global.
    pub fn system() -> RiscvFrontend {
        let mut globals = cpu::globals();
        globals.push(crate::system::helpers::trap_global());
        RiscvFrontend {
            globals: globals.into(),
            system: true,
            breakpoints: None,
        }
    }

    /// Stops translated code at these addresses from now on (translations made before
    /// must be dropped by the caller).
    pub fn set_breakpoints(&mut self, bps: Option<Arc<Breakpoints>>) {
        self.breakpoints = bps;
    }

    fn breaks_at(&self, pc: u64) -> bool {
        self.breakpoints.as_ref().is_some_and(|b| b.contains(pc))
    }
}

impl dbt::Frontend for RiscvFrontend {
    fn globals(&self) -> &[GlobalDef] {
        &self.globals
    }

    fn pc_offset(&self) -> u32 {
        cpu::PC_OFFSET
    }

    fn translate(
        &self,
        pc: u64,
        max_insns: u32,
        fetch: &mut dyn FnMut(u64) -> Result<u16, HostFault>,
    ) -> Result<Block, HostFault> {
        self.translate_in_mode(pc, 0, max_insns, fetch)
    }

    fn translate_in_mode(
        &self,
        pc: u64,
        flags: u64,
        max_insns: u32,
        fetch: &mut dyn FnMut(u64) -> Result<u16, HostFault>,
    ) -> Result<Block, HostFault> {
        let fp = if flags & FLAG_FS_OFF != 0 {
            FpState::Off
        } else if flags & FLAG_FS_CLEAN != 0 {
            FpState::Clean
        } else {
            FpState::Dirty
        };
        let mut fp_marked = false;
        let mut b = Block::with_globals(pc, self.globals.clone());
        if self.system {
            b.soft_mmu = Some(crate::system::softtlb::soft_mmu(
                ((flags >> FLAG_BANK_SHIFT) & 7) as u32,
            ));
        }
        let mut cur = pc;
        let mut tails = Vec::new();
        let mut frm_checked = false;
        let mut next_slot = 0u8;
        // Once the block may change the rounding mode it cannot be specialised on the FP mode
        // (see `fpmode`); it then ends at its next branch rather than absorbing more (FP)
        // code. Writing only the flags (`fsflags`, as in GCC's `isless`) is no such write.
        let mut frm_written = false;
        // Direct jumps (`j`, `jal`) are followed: the block goes on at the target, so a
        // jump costs no block transition (a bytecode handler's `j dispatch`, a call).
        let mut covered = Covered {
            runs: vec![(pc, pc)],
        };
        // Copies of the block's body made so far, and the chain slots one copy used. A body
        // that followed a jump is not copied: the copy could not follow it again (the code
        // is covered already) and would end the block before it loops.
        let mut copies = 1;
        let mut slots_per_copy = None;
        let mut followed = false;
        loop {
            if self.breaks_at(cur) {
                b.push(Op::Exit {
                    code: EXIT_DEBUG,
                    pc: cur,
                });
                break;
            }
            let insn = match fetch_insn(cur, fetch) {
                Ok(i) => i,
                Err(f) if cur == pc => return Err(f),
                Err(_) => {
                    // Stop before the unreadable instruction; it faults precisely when the
                    // next block starts with it.
                    b.push(Op::GotoTb {
                        slot: next_slot,
                        pc: cur,
                    });
                    break;
                }
            };
            let len = if insn & 3 == 3 { 4 } else { 2 };
            b.push(Op::InsnStart { pc: cur });
            // Room for this branch's exit, a final two-way branch, and one more instruction.
            let may_continue =
                !frm_written && (next_slot as usize) + 3 < MAX_SLOTS && b.ninsns + 2 < max_insns;
            // Another copy of the body fits (this instruction may be the closing branch).
            let body = (b.ninsns + 1) / copies;
            let per_copy = slots_per_copy.unwrap_or(next_slot as usize + 1);
            let may_unroll = may_continue
                && !followed
                && copies < UNROLL_COPIES
                && body * (copies + 1) <= UNROLL_INSNS.min(max_insns)
                && next_slot as usize + per_copy + 2 <= MAX_SLOTS;
            let mut c = Ctx {
                b: &mut b,
                pc: cur,
                len,
                ended: false,
                tails: &mut tails,
                frm_checked: &mut frm_checked,
                frm_written: false,
                may_continue,
                jump: None,
                unroll_to: may_unroll.then_some(pc),
                next_slot: &mut next_slot,
                system: self.system,
                insn,
            };
            let fp_insn = self.system && decode::is_fp(insn);
            if fp_insn && fp == FpState::Clean && !fp_marked {
                c.call_void(crate::system::helpers::FS_DIRTY, &[]);
                fp_marked = true;
            }
            let ok = if fp_insn && fp == FpState::Off {
                None
            } else if len == 4 {
                decode::decode32(insn).map(|(r, a)| (r.trans)(&mut c, &a))
            } else {
                decode::decode16(insn).map(|(r, a)| (r.trans)(&mut c, &a))
            };
            if ok != Some(true) {
                c.exit(EXIT_ILLEGAL);
            }
            let (ended, jump) = (c.ended, c.jump);
            frm_written |= c.frm_written;
            b.ninsns += 1;
            cur = cur.wrapping_add(len);
            covered.runs.last_mut().expect("one run at least").1 = cur;
            if ended {
                break;
            }
            if let (Some(target), true) = (jump, may_unroll) {
                if target == pc {
                    // Round the loop again, in a new copy of its body.
                    slots_per_copy.get_or_insert(next_slot as usize);
                    copies += 1;
                    cur = target;
                    covered.runs.push((target, target));
                    continue;
                }
            }
            if let Some(target) = jump {
                if !covered.may_follow(target) {
                    b.push(Op::GotoTb {
                        slot: next_slot,
                        pc: target,
                    });
                    break;
                }
                covered.runs.push((target, target));
                cur = target;
                followed = true;
            }
            if b.ninsns >= max_insns {
                b.push(Op::GotoTb {
                    slot: next_slot,
                    pc: cur,
                });
                break;
            }
        }
        for (label, exit) in tails {
            b.push(Op::Label(label));
            b.push(exit);
        }
        b.guest_lo = covered.lo();
        b.guest_len = covered.hi() - covered.lo();
        crate::fpmode::specialise(&mut b, frm_written);
        Ok(b)
    }
}

fn fetch_insn(
    pc: u64,
    fetch: &mut dyn FnMut(u64) -> Result<u16, HostFault>,
) -> Result<u32, HostFault> {
    let lo = fetch(pc)? as u32;
    if lo & 3 != 3 {
        return Ok(lo);
    }
    let hi = fetch(pc.wrapping_add(2))? as u32;
    Ok(lo | hi << 16)
}
