//! The RISC-V Linux signal frame (`struct rt_sigframe`) and rt_sigreturn.
//!
//! Layout (arch/riscv/include/uapi/asm/{ucontext,sigcontext}.h):
//!   0     siginfo (128 bytes)
//!   128   ucontext: uc_flags(8) uc_link(8) uc_stack{sp(8) flags(4)+pad size(8)} uc_sigmask(8)
//!         reserved(120), then uc_mcontext at ucontext+176 (16-byte aligned):
//!           gregs[32] (pc in slot 0, x1..x31 in slots 1..31)
//!           fp state: f[32] as u64, fcsr u32 (the D layout of the 528-byte Q-sized union)
//! Total 1088 bytes.

use crate::errno::{Errno, SysResult, EFAULT};
use crate::signal::{self, bit, SigAction, SA_NODEFER, SA_ONSTACK};
use crate::task::Thread;

const UC: u64 = 128;
const UC_STACK: u64 = UC + 16;
const UC_SIGMASK: u64 = UC + 40;
const MC: u64 = UC + 176;
const MC_FP: u64 = MC + 256;
const MC_FCSR: u64 = MC_FP + 256;
const FRAME_SIZE: u64 = MC + 256 + 528;

/// Builds the frame for `sig` and points the CPU at the handler.
pub fn push(t: &mut Thread, sig: i32, act: &SigAction, info: &[u8; 128]) -> Result<(), Errno> {
    let (ss_sp, ss_size, ss_flags) = t.sig.altstack.get();
    let sp = t.cpu.x[2];
    let on_alt = ss_sp != 0 && sp.wrapping_sub(ss_sp) < ss_size;
    let base = if act.flags & SA_ONSTACK != 0 && ss_sp != 0 && ss_flags == 0 && !on_alt {
        ss_sp + ss_size
    } else {
        sp
    };
    let frame = base.checked_sub(FRAME_SIZE).ok_or(EFAULT)? & !15;

    let old_mask = t.sig.suspend_restore.take().unwrap_or(t.sig.mask.get());
    let mut f = vec![0u8; FRAME_SIZE as usize];
    let put = |f: &mut Vec<u8>, off: u64, v: &[u8]| {
        f[off as usize..off as usize + v.len()].copy_from_slice(v)
    };
    put(&mut f, 0, info);
    put(&mut f, UC_STACK, &ss_sp.to_le_bytes());
    let uc_flags = if on_alt { 1u32 } else { ss_flags as u32 };
    put(&mut f, UC_STACK + 8, &uc_flags.to_le_bytes());
    put(&mut f, UC_STACK + 16, &ss_size.to_le_bytes());
    put(&mut f, UC_SIGMASK, &old_mask.to_le_bytes());
    put(&mut f, MC, &t.cpu.pc.to_le_bytes());
    for i in 1..32 {
        put(&mut f, MC + 8 * i as u64, &t.cpu.x[i].to_le_bytes());
    }
    for i in 0..32 {
        put(&mut f, MC_FP + 8 * i as u64, &t.cpu.f[i].to_le_bytes());
    }
    put(&mut f, MC_FCSR, &t.cpu.fcsr.to_le_bytes());
    t.write_guest(frame, &f)?;

    let mut mask = old_mask | act.mask;
    if act.flags & SA_NODEFER == 0 {
        mask |= bit(sig);
    }
    signal::set_mask(t, mask);

    t.cpu.x[2] = frame;
    t.cpu.x[1] = t.proc.sigtramp;
    t.cpu.x[10] = sig as u64;
    t.cpu.x[11] = frame;
    t.cpu.x[12] = frame + UC;
    t.cpu.pc = act.handler;
    Ok(())
}

/// rt_sigreturn: restores registers and mask from the frame at sp.
pub fn sys_rt_sigreturn(t: &mut Thread, _a: &[u64; 6]) -> SysResult {
    let frame = t.cpu.x[2];
    let mut f = vec![0u8; FRAME_SIZE as usize];
    if t.proc.space.read(frame, &mut f).is_err() {
        signal::die(t, libc::SIGSEGV);
    }
    let get = |off: u64| {
        let o = off as usize;
        u64::from_le_bytes(f[o..o + 8].try_into().unwrap_or([0; 8]))
    };
    t.cpu.pc = get(MC);
    for i in 1..32 {
        t.cpu.x[i] = get(MC + 8 * i as u64);
    }
    for i in 0..32 {
        t.cpu.f[i] = get(MC_FP + 8 * i as u64);
    }
    t.cpu.fcsr = (get(MC_FCSR) & 0xff) as u32;
    signal::set_mask(t, get(UC_SIGMASK));
    t.regs_replaced = true;
    Ok(0)
}

/// The signal-return trampoline: `li a7, 139 (rt_sigreturn); ecall`.
pub const TRAMPOLINE: [u32; 2] = [0x08b0_0893, 0x0000_0073];
