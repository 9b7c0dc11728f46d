//! Tandem's built-in SBI (the RISC-V Supervisor Binary Interface, v2.0): what M-mode
//! firmware would do for an S-mode kernel, served on the calling hart's thread. Base,
//! legacy console/timer/shutdown, TIME, IPI, RFENCE, HSM, SRST and DBCN.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use riscv::system::{Hart, HartShared, PRV_S};

use crate::{ExitReason, VmControl};

const EXT_BASE: u64 = 0x10;
const EXT_TIME: u64 = 0x5449_4d45;
const EXT_IPI: u64 = 0x73_5049;
const EXT_RFENCE: u64 = 0x5246_4e43;
const EXT_HSM: u64 = 0x48_534d;
const EXT_SRST: u64 = 0x5352_5354;
const EXT_DBCN: u64 = 0x4442_434e;
const LEGACY_SET_TIMER: u64 = 0;
const LEGACY_PUTCHAR: u64 = 1;
const LEGACY_GETCHAR: u64 = 2;
const LEGACY_SHUTDOWN: u64 = 8;

const SUCCESS: i64 = 0;
const ERR_FAILED: i64 = -1;
const ERR_NOT_SUPPORTED: i64 = -2;
const ERR_INVALID_PARAM: i64 = -3;
const ERR_ALREADY_AVAILABLE: i64 = -6;

/// SBI spec version 2.0; implementation ID (unregistered, ours) and version.
const SPEC_VERSION: u64 = 2 << 24;
const IMPL_ID: u64 = 0x54_4e44;
const IMPL_VERSION: u64 = 1;

/// HSM hart states.
pub const HSM_STARTED: u32 = 0;
pub const HSM_STOPPED: u32 = 1;
pub const HSM_START_PENDING: u32 = 2;

/// A hart as the HSM extension sees it: its state and where to start it.
pub struct HartSlot {
    pub shared: Arc<HartShared>,
    pub state: AtomicU32,
    pub start: Mutex<Option<(u64, u64)>>,
    pub started: Condvar,
}

impl HartSlot {
    pub fn new(shared: Arc<HartShared>, running: bool) -> HartSlot {
        HartSlot {
            shared,
            state: AtomicU32::new(if running { HSM_STARTED } else { HSM_STOPPED }),
            start: Mutex::new(None),
            started: Condvar::new(),
        }
    }

    /// Blocks a stopped hart's thread until `hart_start` (Some(pc, opaque)) or the machine
    /// stops (None).
    pub fn wait_for_start(&self) -> Option<(u64, u64)> {
        let mut g = self.start.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                return None;
            }
            if let Some(s) = g.take() {
                self.state.store(HSM_STARTED, Ordering::SeqCst);
                return Some(s);
            }
            g = self
                .started
                .wait_timeout(g, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    pub fn wake(&self) {
        let _g = self.start.lock().unwrap_or_else(|e| e.into_inner());
        self.started.notify_all();
    }
}

/// What the machine shares with every hart's SBI calls.
pub struct Sbi {
    pub harts: Vec<Arc<HartSlot>>,
    pub control: Arc<VmControl>,
    pub console: Mutex<Box<dyn Write + Send>>,
}

/// What the calling hart does after the call.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    Continue,
    /// HSM hart_stop: the hart thread waits to be started again.
    StopHart,
}

impl Sbi {
    /// Serves the SBI call the hart made (pc at its `ecall`) and moves pc past it.
    pub fn call(&self, hart: &mut Hart) -> After {
        let x = hart.cpu.x;
        let (a0, a1, a2, eid, fid) = (x[10], x[11], x[12], x[17], x[16]);
        let mut after = After::Continue;
        let (err, value) = match eid {
            LEGACY_SET_TIMER => {
                hart.sbi_set_timer(a0);
                (SUCCESS, None)
            }
            LEGACY_PUTCHAR => {
                self.write_console(&[a0 as u8]);
                (SUCCESS, None)
            }
            LEGACY_GETCHAR => (ERR_FAILED, None),
            LEGACY_SHUTDOWN => {
                self.control.stop(ExitReason::PowerOff);
                after = After::StopHart;
                (SUCCESS, None)
            }
            EXT_BASE => self.base(fid, a0),
            EXT_TIME if fid == 0 => {
                hart.sbi_set_timer(a0);
                (SUCCESS, Some(0))
            }
            EXT_IPI if fid == 0 => self.for_harts(a0, a1, |h| h.shared.set_pending(1, true)),
            EXT_RFENCE => self.rfence(hart, fid, a0, a1),
            EXT_HSM => {
                let (e, v, a) = self.hsm(hart, fid, a0, a1, a2);
                after = a;
                (e, v)
            }
            EXT_SRST if fid == 0 => {
                let reason = if a0 == 0 {
                    ExitReason::PowerOff
                } else if a0 <= 2 {
                    ExitReason::Reset
                } else {
                    return self.finish(hart, ERR_INVALID_PARAM, None, after);
                };
                self.control.stop(reason);
                // A successful reset never returns to the caller.
                after = After::StopHart;
                (SUCCESS, Some(0))
            }
            EXT_DBCN => self.dbcn(hart, fid, a0, a1, a2),
            _ => (ERR_NOT_SUPPORTED, None),
        };
        self.finish(hart, err, value, after)
    }

    fn finish(&self, hart: &mut Hart, err: i64, value: Option<u64>, after: After) -> After {
        let legacy = hart.cpu.x[17] <= LEGACY_SHUTDOWN;
        hart.cpu.x[10] = err as u64;
        if let (Some(v), false) = (value, legacy) {
            hart.cpu.x[11] = v;
        }
        hart.cpu.pc = hart.cpu.pc.wrapping_add(4);
        after
    }

    fn base(&self, fid: u64, a0: u64) -> (i64, Option<u64>) {
        let v = match fid {
            0 => SPEC_VERSION,
            1 => IMPL_ID,
            2 => IMPL_VERSION,
            3 => matches!(
                a0,
                EXT_BASE
                    | EXT_TIME
                    | EXT_IPI
                    | EXT_RFENCE
                    | EXT_HSM
                    | EXT_SRST
                    | EXT_DBCN
                    | LEGACY_SET_TIMER
                    | LEGACY_PUTCHAR
                    | LEGACY_GETCHAR
                    | LEGACY_SHUTDOWN
            ) as u64,
            4..=6 => 0,
            _ => return (ERR_NOT_SUPPORTED, None),
        };
        (SUCCESS, Some(v))
    }

    /// Applies `f` to the harts named by an SBI hart mask (`base` == -1: all harts).
    fn for_harts(&self, mask: u64, base: u64, mut f: impl FnMut(&HartSlot)) -> (i64, Option<u64>) {
        if base == u64::MAX {
            self.harts.iter().for_each(|h| f(h));
            return (SUCCESS, Some(0));
        }
        for bit in 0..64 {
            if mask >> bit & 1 == 0 {
                continue;
            }
            match base
                .checked_add(bit)
                .and_then(|i| self.harts.get(i as usize))
            {
                Some(h) => f(h),
                None => return (ERR_INVALID_PARAM, None),
            }
        }
        (SUCCESS, Some(0))
    }

    /// Remote fences: fence.i needs nothing (stores to translated code invalidate it at
    /// once); sfence.vma flushes each target's TLB before the call returns.
    fn rfence(&self, hart: &mut Hart, fid: u64, mask: u64, base: u64) -> (i64, Option<u64>) {
        if fid == 0 {
            return (SUCCESS, Some(0));
        }
        if fid > 2 {
            return (ERR_NOT_SUPPORTED, None);
        }
        let me = hart.shared.id;
        let mut targets = Vec::new();
        let r = self.for_harts(mask, base, |h| {
            if h.shared.id == me {
                return;
            }
            if h.state.load(Ordering::SeqCst) == HSM_STARTED {
                h.shared.tlb_flush.store(true, Ordering::SeqCst);
                h.shared.kick();
                targets.push(h.shared.clone());
            }
        });
        if r.0 != SUCCESS {
            return r;
        }
        if mask >> me.saturating_sub(base as usize) & 1 != 0 || base == u64::MAX {
            hart.flush_tlb();
        }
        // Wait for the targets (each flushes at its next block boundary, or on waking),
        // flushing our own TLB if another hart asks the same of us meanwhile.
        let deadline = Instant::now() + Duration::from_secs(1);
        for t in targets {
            while t.tlb_flush.load(Ordering::SeqCst) && Instant::now() < deadline {
                if hart.shared.tlb_flush.swap(false, Ordering::SeqCst) {
                    hart.flush_tlb();
                }
                if self.control.is_stopping() {
                    break;
                }
                std::thread::yield_now();
            }
        }
        (SUCCESS, Some(0))
    }

    fn hsm(
        &self,
        hart: &mut Hart,
        fid: u64,
        a0: u64,
        a1: u64,
        a2: u64,
    ) -> (i64, Option<u64>, After) {
        let slot = |id: u64| self.harts.get(id as usize);
        match fid {
            0 => {
                let Some(target) = slot(a0) else {
                    return (ERR_INVALID_PARAM, None, After::Continue);
                };
                if target
                    .state
                    .compare_exchange(
                        HSM_STOPPED,
                        HSM_START_PENDING,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    )
                    .is_err()
                {
                    return (ERR_ALREADY_AVAILABLE, None, After::Continue);
                }
                *target.start.lock().unwrap_or_else(|e| e.into_inner()) = Some((a1, a2));
                target.wake();
                (SUCCESS, Some(0), After::Continue)
            }
            1 => {
                if let Some(me) = slot(hart.id()) {
                    me.state.store(HSM_STOPPED, Ordering::SeqCst);
                }
                (SUCCESS, Some(0), After::StopHart)
            }
            2 => match slot(a0) {
                Some(t) => (
                    SUCCESS,
                    Some(t.state.load(Ordering::SeqCst) as u64),
                    After::Continue,
                ),
                None => (ERR_INVALID_PARAM, None, After::Continue),
            },
            _ => (ERR_NOT_SUPPORTED, None, After::Continue),
        }
    }

    /// Debug console: bytes from guest physical memory to the console.
    fn dbcn(&self, hart: &mut Hart, fid: u64, a0: u64, a1: u64, a2: u64) -> (i64, Option<u64>) {
        match fid {
            0 => {
                let (len, base) = (a0.min(4096), a1 | a2 << 32);
                let mut bytes = Vec::with_capacity(len as usize);
                for i in 0..len {
                    // Only RAM: reading a device register here could have side effects.
                    let byte = base
                        .checked_add(i)
                        .filter(|&a| hart.mem.is_ram(a))
                        .and_then(|a| hart.mem.read(a, 1));
                    match byte {
                        Some(b) => bytes.push(b as u8),
                        None => return (ERR_INVALID_PARAM, None),
                    }
                }
                self.write_console(&bytes);
                (SUCCESS, Some(len))
            }
            1 => (SUCCESS, Some(0)),
            2 => {
                self.write_console(&[a0 as u8]);
                (SUCCESS, Some(0))
            }
            _ => (ERR_NOT_SUPPORTED, None),
        }
    }

    fn write_console(&self, bytes: &[u8]) {
        let mut c = self.console.lock().unwrap_or_else(|e| e.into_inner());
        let _ = c.write_all(bytes);
    }
}

/// The boot state of a hart entering S-mode under the built-in SBI: what OpenSBI would
/// have set up (delegation of everything S-mode handles, counters and Sstc enabled).
pub fn enter_supervisor(hart: &mut Hart, pc: u64, a0: u64, a1: u64) {
    hart.csr.prv = PRV_S;
    // Every delegable exception but ecall from S (the SBI call itself).
    hart.csr.medeleg = 0xb1ff;
    hart.csr.mideleg = 1 << 1 | 1 << 5 | 1 << 9;
    // Counters readable from S and U (cycle, time, instret), as OpenSBI leaves them.
    hart.csr.mcounteren = 7;
    hart.csr.scounteren = 7;
    hart.csr.menvcfg = riscv::system::trap::MENVCFG_STCE;
    hart.csr.stimecmp = u64::MAX;
    hart.publish_stimecmp();
    hart.csr.satp = 0;
    hart.flush_tlb();
    hart.cpu.pc = pc;
    hart.cpu.x[10] = a0;
    hart.cpu.x[11] = a1;
}
