//! The RISC-V front end: fetches instructions, looks them up in the decode tables and lets
//! their translate functions emit IR, one block at a time.

use crate::cpu;
use crate::ctx::{Ctx, EXIT_ILLEGAL};
use crate::decode;
use dbt::hostmem::HostFault;
use dbt::ir::{Block, GlobalDef, Op, MAX_SLOTS};

pub struct RiscvFrontend {
    globals: Vec<GlobalDef>,
}

impl Default for RiscvFrontend {
    fn default() -> Self {
        RiscvFrontend {
            globals: cpu::globals(),
        }
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
        let mut b = Block::new(pc, &self.globals);
        let mut cur = pc;
        let mut tails = Vec::new();
        let mut frm_checked = false;
        let mut next_slot = 0u8;
        // Once the block writes fcsr it cannot be specialised on the FP mode (see `fpmode`);
        // it then ends at its next branch rather than absorbing more (FP) code.
        let mut fcsr_written = false;
        loop {
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
                !fcsr_written && (next_slot as usize) + 3 < MAX_SLOTS && b.ninsns + 2 < max_insns;
            let first_op = b.ops.len();
            let mut c = Ctx {
                b: &mut b,
                pc: cur,
                len,
                ended: false,
                tails: &mut tails,
                frm_checked: &mut frm_checked,
                may_continue,
                next_slot: &mut next_slot,
            };
            let ok = if len == 4 {
                decode::decode32(insn).map(|(r, a)| (r.trans)(&mut c, &a))
            } else {
                decode::decode16(insn).map(|(r, a)| (r.trans)(&mut c, &a))
            };
            if ok != Some(true) {
                c.exit(EXIT_ILLEGAL);
            }
            let ended = c.ended;
            let fcsr = dbt::ir::Temp(cpu::FCSR_G);
            fcsr_written |= b.ops[first_op..].iter().any(|op| op.def() == Some(fcsr));
            b.ninsns += 1;
            cur = cur.wrapping_add(len);
            if ended {
                break;
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
        b.guest_len = cur.wrapping_sub(pc);
        crate::fpmode::specialise(&mut b);
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
