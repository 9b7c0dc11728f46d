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

/// The counters (cycle, time, instret; read-only): user mode sees a monotonic nanosecond
/// clock for all three. The FP CSRs are fields of the `fcsr` global, read and written by
/// translated code directly (see `trans_int::fp_csr_access`).
extern "C" fn counter(_: *mut u8, _: u64, _: u64, _: u64, _: u64) -> u64 {
    now_ns()
}

pub const COUNTER: Helper = Helper {
    name: "csr_counter",
    f: counter,
    writes: (0, 0),
    write_bits: u64::MAX,
};
