//! One hart of the full-system machine: the user-visible registers the translator keeps in
//! globals, the privileged state, the data TLB, and what other threads share with it.

use super::mmu::Tlb;
use super::phys::PhysMem;
use super::softtlb::SoftTlb;
use crate::cpu::Cpu;
use dbt::ExitRequest;
use std::mem::offset_of;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Privilege levels as encoded in mstatus.MPP.
pub const PRV_U: u64 = 0;
pub const PRV_S: u64 = 1;
pub const PRV_M: u64 = 3;

/// `trap_flag` values: set by a helper that stopped its instruction.
pub const TRAP_NONE: u64 = 0;
/// An exception is pending (`exc_cause`, `exc_tval`); the instruction had no effect.
pub const TRAP_EXCEPTION: u64 = 1;
/// A CSR write completed that changes what the hart does next (the translation mode, the
/// mapping, or an interrupt is now due): leave the block after the instruction.
pub const TRAP_SYNC: u64 = 2;

/// The privileged registers (those not kept in translator globals).
#[derive(Clone, Debug, Default)]
pub struct Csrs {
    pub prv: u64,
    pub mstatus: u64,
    pub medeleg: u64,
    pub mideleg: u64,
    pub mie: u64,
    /// SEIP's software-written part; every other pending bit is in `HartShared::mip`
    /// (devices, other harts and this hart's own CSR writes all change those).
    pub mip_sw: u64,
    pub mtvec: u64,
    pub mepc: u64,
    pub mcause: u64,
    pub mtval: u64,
    pub mscratch: u64,
    pub mcounteren: u64,
    pub menvcfg: u64,
    pub mcountinhibit: u64,
    pub stvec: u64,
    pub sepc: u64,
    pub scause: u64,
    pub stval: u64,
    pub sscratch: u64,
    pub scounteren: u64,
    pub senvcfg: u64,
    pub satp: u64,
    pub stimecmp: u64,
    pub pmpcfg: [u64; 16],
    pub pmpaddr: Vec<u64>,
}

/// What other threads (devices, the timer, other harts, the machine) share with a hart.
pub struct HartShared {
    pub id: usize,
    /// Pending bits: MSIP (CLINT), MEIP/SEIP (PLIC), SSIP (SBI IPIs and CSR writes), STIP
    /// (CSR writes, without Sstc).
    pub mip: AtomicU64,
    /// CLINT compare value (MTIP is mtime >= mtimecmp).
    pub mtimecmp: AtomicU64,
    /// Sstc compare value mirrored for the timer thread (u64::MAX when STCE is off).
    pub stimecmp: AtomicU64,
    /// Makes the translator return at the next block boundary.
    pub exit: ExitRequest,
    /// Remote `sfence.vma` requested (SBI RFENCE): flush the TLB before running on.
    pub tlb_flush: AtomicBool,
    /// The machine is stopping: the hart thread returns.
    pub stop: AtomicBool,
    /// Wakes the hart from `wfi` and the timer thread when deadlines change.
    pub lock: Mutex<()>,
    pub wake: Condvar,
    pub timer_wake: Condvar,
}

impl HartShared {
    pub fn new(id: usize, exit: ExitRequest) -> HartShared {
        HartShared {
            id,
            mip: AtomicU64::new(0),
            mtimecmp: AtomicU64::new(u64::MAX),
            stimecmp: AtomicU64::new(u64::MAX),
            exit,
            tlb_flush: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            timer_wake: Condvar::new(),
        }
    }

    /// Interrupts the hart: it leaves translated code and (if waiting) wakes up.
    pub fn kick(&self) {
        self.exit.request();
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.wake.notify_all();
    }

    pub fn set_pending(&self, bit: u32, level: bool) {
        let m = 1u64 << bit;
        let old = if level {
            self.mip.fetch_or(m, Ordering::SeqCst)
        } else {
            self.mip.fetch_and(!m, Ordering::SeqCst)
        };
        if level && old & m == 0 {
            self.kick();
        }
    }

    /// A timer compare value changed: the timer thread recomputes its deadline.
    pub fn timer_changed(&self) {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.timer_wake.notify_all();
    }

    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.kick();
        self.timer_changed();
    }
}

/// The hart as translated code sees it (the translator's "env"): `cpu` first, at the offsets
/// the front end's globals use, then the trap flag (the one extra global of system mode).
#[repr(C)]
pub struct Hart {
    pub cpu: Cpu,
    /// See `TRAP_*`.
    pub trap_flag: u64,
    pub exc_cause: u64,
    pub exc_tval: u64,
    pub csr: Csrs,
    /// The TLB generated code probes (see `softtlb`).
    pub soft: SoftTlb,
    /// `CodePages::generation` when `soft` was last cleared of stores to code pages.
    pub code_generation: u64,
    pub tlb: Tlb,
    /// Bumped whenever address translation may have changed (see `dbt::SystemCode::epoch`).
    pub epoch: u64,
    pub mem: Arc<PhysMem>,
    pub shared: Arc<HartShared>,
    /// mtime at `epoch_ns` and its frequency.
    pub timebase: Timebase,
}

/// `mtime` counts at `freq` Hz from `epoch_ns` (CLOCK_MONOTONIC nanoseconds).
#[derive(Clone, Copy, Debug)]
pub struct Timebase {
    pub epoch_ns: u64,
    pub freq: u64,
}

impl Timebase {
    pub fn mtime(&self) -> u64 {
        self.mtime_at(monotonic_ns())
    }
    pub fn mtime_at(&self, ns: u64) -> u64 {
        let d = ns.saturating_sub(self.epoch_ns) as u128;
        (d * self.freq as u128 / 1_000_000_000) as u64
    }
    /// CLOCK_MONOTONIC nanoseconds at which mtime reaches `mtime`.
    pub fn ns_at(&self, mtime: u64) -> u64 {
        let d = mtime as u128 * 1_000_000_000 / self.freq.max(1) as u128;
        self.epoch_ns.saturating_add(d.min(u64::MAX as u128) as u64)
    }
}

pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the valid timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Env offset of the trap flag.
pub const TRAP_FLAG_OFFSET: u32 = offset_of!(Hart, trap_flag) as u32;

impl Hart {
    /// A hart in M-mode at pc 0, on the heap (its TLB is large).
    pub fn boxed(
        id: usize,
        mem: Arc<PhysMem>,
        shared: Arc<HartShared>,
        timebase: Timebase,
    ) -> Box<Hart> {
        Box::new(Hart::new(id, mem, shared, timebase))
    }

    fn new(id: usize, mem: Arc<PhysMem>, shared: Arc<HartShared>, timebase: Timebase) -> Hart {
        let mut csr = Csrs {
            prv: PRV_M,
            pmpaddr: vec![0; 64],
            ..Csrs::default()
        };
        // UXL = SXL = 64 bits.
        csr.mstatus = 2 << 32 | 2 << 34;
        let _ = id;
        Hart {
            cpu: Cpu::new(),
            trap_flag: TRAP_NONE,
            exc_cause: 0,
            exc_tval: 0,
            soft: SoftTlb::default(),
            code_generation: 0,
            csr,
            tlb: Tlb::default(),
            epoch: 0,
            mem,
            shared,
            timebase,
        }
    }

    pub fn id(&self) -> u64 {
        self.shared.id as u64
    }

    /// Records an exception for the run loop to take (a helper's way out).
    pub fn raise(&mut self, cause: u64, tval: u64) {
        self.trap_flag = TRAP_EXCEPTION;
        self.exc_cause = cause;
        self.exc_tval = tval;
    }

    pub fn flush_tlb(&mut self) {
        self.tlb.flush();
        self.soft.flush();
        self.epoch = self.epoch.wrapping_add(1);
    }
}
