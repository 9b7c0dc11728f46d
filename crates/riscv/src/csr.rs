//! User-level CSRs (fflags, frm, fcsr, cycle, time, instret) and other small helpers.

use crate::cpu::Cpu;
use dbt::ir::Helper;

pub const FFLAGS: u32 = 0x001;
pub const FRM: u32 = 0x002;
pub const FCSR: u32 = 0x003;
pub const CYCLE: u32 = 0xc00;
pub const TIME: u32 = 0xc01;
pub const INSTRET: u32 = 0xc02;

/// Whether user mode may access `csr` (writes only to the FP CSRs).
pub fn valid(csr: u32, writes: bool) -> bool {
    match csr {
        FFLAGS | FRM | FCSR => true,
        CYCLE | TIME | INSTRET => !writes,
        _ => false,
    }
}

/// (shift, mask) of an FP CSR within `fcsr`, or `None` for other CSRs.
pub fn fp_field(csr: u32) -> Option<(u64, u64)> {
    match csr {
        FFLAGS => Some((0, 0x1f)),
        FRM => Some((5, 0x7)),
        FCSR => Some((0, 0xff)),
        _ => None,
    }
}

/// Gives a helper access to the hart state behind the env pointer.
pub(crate) fn cpu<'a>(env: *mut u8) -> &'a mut Cpu {
    // SAFETY: helpers are only ever called by the engine with the env pointer of the `Cpu`
    // currently being run (an exclusive borrow held by `Engine::run` for the whole call).
    unsafe { &mut *(env as *mut Cpu) }
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the valid timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `a1` bits: 0..1 = op (0 write, 1 set, 2 clear), bit 2 = really writes.
extern "C" fn access(env: *mut u8, csr: u64, flags: u64, src: u64, _: u64) -> u64 {
    let c = cpu(env);
    let old = match csr as u32 {
        FFLAGS => (c.fcsr & 0x1f) as u64,
        FRM => ((c.fcsr >> 5) & 7) as u64,
        FCSR => (c.fcsr & 0xff) as u64,
        // Counters: user mode sees a monotonic nanosecond clock for all three.
        _ => now_ns(),
    };
    if flags & 4 != 0 {
        let new = match flags & 3 {
            0 => src,
            1 => old | src,
            _ => old & !src,
        };
        match csr as u32 {
            FFLAGS => c.fcsr = (c.fcsr & !0x1f) | (new as u32 & 0x1f),
            FRM => c.fcsr = (c.fcsr & 0x1f) | ((new as u32 & 7) << 5),
            FCSR => c.fcsr = new as u32 & 0xff,
            _ => {}
        }
    }
    old
}

extern "C" fn fence(_: *mut u8, _: u64, _: u64, _: u64, _: u64) -> u64 {
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    0
}

pub const ACCESS: Helper = Helper {
    name: "csr_access",
    f: access,
    writes: (crate::cpu::FCSR_G, crate::cpu::FCSR_G + 1),
};
pub const FENCE: Helper = Helper {
    name: "fence",
    f: fence,
    writes: (0, 0),
};
