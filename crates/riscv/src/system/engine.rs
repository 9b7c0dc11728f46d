//! The run loop of one hart: translated code until something needs the privileged
//! architecture (a trap, an interrupt, `xret`, `wfi`, `sfence.vma`) or the machine (an SBI
//! call, a stop request).

use super::hart::{
    monotonic_ns, Hart, HartShared, Timebase, PRV_M, PRV_S, TRAP_EXCEPTION, TRAP_SYNC,
};
use super::mmu::Access;
use super::phys::PhysMem;
use super::softtlb::bank;
use super::trap::cause;
use crate::cpu::INEXACT_FLAG;
use crate::ctx::*;
use crate::debug::Breakpoints;
use crate::frontend::{RiscvFrontend, FLAG_BANK_SHIFT, FLAG_FS_CLEAN, FLAG_FS_OFF};
use dbt::env::EnvPtr;
use dbt::hostmem::{GuestMem, HostFault};
use dbt::physcode::CodePages;
use dbt::{Backend, CodeLoc, Exec, ExecConfig, RunExit, SystemCode};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct SystemConfig {
    pub backend: Backend,
    /// Bytes of executable memory for the native backend.
    pub code_size: usize,
    /// Tandem serves SBI calls (ecall from S-mode returns [`HartEvent::Sbi`]); without it
    /// they trap to M-mode firmware like any ecall.
    pub builtin_sbi: bool,
    /// Runs of a block in the interpreter before it is compiled (boot code mostly runs once).
    pub compile_after: u32,
}

/// Why [`SystemHart::run`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HartEvent {
    /// An `ecall` from S-mode with the built-in SBI: pc is at the `ecall`; the machine
    /// serves it and moves pc on.
    Sbi,
    /// The machine asked the hart to stop.
    Stopped,
    /// The hart cannot go on (it cannot even fetch its trap handler).
    Stuck(String),
    /// It reached a debugger's breakpoint (pc is there; the instruction has not run).
    Breakpoint,
    /// [`SystemHart::step`] executed one instruction (or took a trap instead).
    Stepped,
}

/// Finds guest code for the translator through the hart's MMU.
struct HartCode {
    mem: Arc<PhysMem>,
}

fn hart_of<'a>(env: EnvPtr) -> &'a mut Hart {
    // SAFETY: the translator calls back with the env `SystemHart::run` passed it, the `Hart`
    // that `run` exclusively borrows for the call, on the same thread.
    unsafe { &mut *(env.as_ptr() as *mut Hart) }
}

impl SystemCode for HartCode {
    fn locate(&self, env: EnvPtr, pc: u64) -> Result<CodeLoc, HostFault> {
        let h = hart_of(env);
        let fault = |h: &mut Hart, cause| {
            h.exc_cause = cause;
            Err(HostFault {
                addr: pc,
                write: false,
            })
        };
        match h.translate(pc, Access::Fetch) {
            Ok(pa) if self.mem.is_ram(pa) => Ok(CodeLoc {
                phys: pa,
                flags: h.code_flags(),
            }),
            Ok(_) => fault(h, cause::FETCH_ACCESS),
            Err(c) => fault(h, c),
        }
    }
    fn read_code(&self, pa: u64) -> Option<u16> {
        self.mem
            .is_ram(pa)
            .then(|| self.mem.read(pa, 2))
            .flatten()
            .map(|v| v as u16)
    }
    fn code_pages(&self) -> &CodePages {
        self.mem.code_pages()
    }
    fn epoch(&self, env: EnvPtr) -> u64 {
        hart_of(env).epoch
    }
    fn code_marked(&self, env: EnvPtr, pa: u64) {
        hart_of(env).soft.protect(pa & !0xfff);
    }
}

impl Hart {
    /// The mode bits translated code depends on (`dbt::CodeLoc::flags`): the FP unit's
    /// state and the TLB bank of data accesses.
    pub fn code_flags(&self) -> u64 {
        let fp = match (self.csr.mstatus >> 13) & 3 {
            0 => FLAG_FS_OFF,
            3 => 0,
            _ => FLAG_FS_CLEAN,
        };
        fp | (bank(self.csr.prv, self.csr.mstatus) as u64) << FLAG_BANK_SHIFT
    }
}

pub struct SystemHart {
    exec: Exec,
    fe: RiscvFrontend,
    hart: Box<Hart>,
    builtin_sbi: bool,
    breakpoints: Option<Arc<Breakpoints>>,
    /// `Breakpoints::generation` the translations were made under.
    bp_generation: u64,
}

impl SystemHart {
    /// A hart in M-mode at pc 0 (the machine sets the boot state); its timer thread is
    /// the machine's business (see [`timer_thread`]).
    pub fn new(
        id: usize,
        cfg: &SystemConfig,
        mem: Arc<PhysMem>,
        timebase: Timebase,
    ) -> std::io::Result<SystemHart> {
        let exec = Exec::new(ExecConfig {
            backend: cfg.backend,
            // Physical addresses stand for host ones in the invalidation log (see
            // `dbt::physcode`); translated code never addresses guest memory directly.
            mem: GuestMem {
                base: 0,
                limit: u64::MAX,
            },
            max_insns: 128,
            smc: false,
            code_size: cfg.code_size,
            exec_check: None,
            write_check: None,
            compile_after: cfg.compile_after,
            inexact_flag: Some(INEXACT_FLAG),
            system: Some(Arc::new(HartCode { mem: mem.clone() })),
        })?;
        let shared = Arc::new(HartShared::new(id, exec.exit_request()));
        Ok(SystemHart {
            exec,
            fe: RiscvFrontend::system(),
            hart: Hart::boxed(id, mem, shared, timebase),
            builtin_sbi: cfg.builtin_sbi,
            breakpoints: None,
            bp_generation: 0,
        })
    }

    /// Makes the hart stop at a debugger's breakpoints (`HartEvent::Breakpoint`).
    pub fn set_breakpoints(&mut self, bps: Option<Arc<Breakpoints>>) {
        self.bp_generation = bps.as_ref().map_or(0, |b| b.generation());
        self.fe.set_breakpoints(bps.clone());
        self.breakpoints = bps;
        self.exec.flush();
    }

    /// Drops translations made before the breakpoints last changed.
    fn sync_breakpoints(&mut self) {
        if let Some(b) = &self.breakpoints {
            let g = b.generation();
            if g != self.bp_generation {
                self.bp_generation = g;
                self.exec.flush();
            }
        }
    }

    /// Executes one instruction (or takes the interrupt or trap due first), for a
    /// debugger's single step.
    pub fn step(&mut self) -> HartEvent {
        self.sync_breakpoints();
        if let Some(i) = self.hart.pending_interrupt() {
            self.hart.take_trap(cause::INTERRUPT | i as u64, 0);
            return HartEvent::Stepped;
        }
        self.hart.cpu.x[0] = 0;
        let env = EnvPtr::new(&mut *self.hart);
        match self.exec.step(&self.fe, env) {
            None => HartEvent::Stepped,
            Some(RunExit::Code(EXIT_DEBUG)) => HartEvent::Breakpoint,
            Some(exit) => self.after(exit).unwrap_or(HartEvent::Stepped),
        }
    }

    pub fn shared(&self) -> Arc<HartShared> {
        self.hart.shared.clone()
    }

    pub fn hart(&mut self) -> &mut Hart {
        &mut self.hart
    }

    pub fn stats(&self) -> dbt::Stats {
        self.exec.stats
    }

    /// Runs the hart until the machine must act.
    pub fn run(&mut self) -> HartEvent {
        let shared = self.hart.shared.clone();
        loop {
            if shared.stop.load(Ordering::SeqCst) {
                return HartEvent::Stopped;
            }
            self.sync_breakpoints();
            if shared.tlb_flush.swap(false, Ordering::SeqCst) {
                self.hart.flush_tlb();
            }
            // Pages other harts started translating: stores to them must ask first.
            let code = self.hart.mem.clone();
            let g = code.code_pages().generation();
            if g != self.hart.code_generation {
                self.hart.code_generation = g;
                self.hart
                    .soft
                    .protect_code(|p| code.code_pages().is_code(p));
            }
            if let Some(i) = self.hart.pending_interrupt() {
                self.hart.take_trap(cause::INTERRUPT | i as u64, 0);
            }
            self.hart.cpu.x[0] = 0;
            let env = EnvPtr::new(&mut *self.hart);
            let exit = self.exec.run(&self.fe, env);
            if let Some(event) = self.after(exit) {
                return event;
            }
        }
    }

    /// Serves what made translated code return; Some when the machine must act.
    fn after(&mut self, exit: RunExit) -> Option<HartEvent> {
        let h = &mut *self.hart;
        let pc = h.cpu.pc;
        match exit {
            RunExit::Interrupted => {}
            RunExit::Fault {
                addr, exec: true, ..
            } => {
                let c = h.exc_cause;
                if h.csr.prv == PRV_M && pc == h.csr.mtvec & !3 {
                    return Some(HartEvent::Stuck(format!(
                        "hart {}: cannot fetch its M-mode trap handler at {pc:#x} (cause {c})",
                        h.id()
                    )));
                }
                h.take_trap(c, addr);
            }
            // A load or store through the soft MMU faulted (the exception is recorded).
            RunExit::Fault { .. } if h.trap_flag == TRAP_EXCEPTION => {
                h.trap_flag = 0;
                h.take_trap(h.exc_cause, h.exc_tval);
            }
            // A store wrote translated code: its block stopped at it; redo the store alone,
            // uncached (its page is no longer marked, so it completes), and go on after it.
            RunExit::Fault { .. } if h.trap_flag == TRAP_SYNC => {
                h.trap_flag = 0;
                let env = EnvPtr::new(&mut *self.hart);
                if let Some(exit) = self.exec.step(&self.fe, env) {
                    return self.after(exit);
                }
            }
            RunExit::Fault { addr, .. } => {
                return Some(HartEvent::Stuck(format!(
                    "hart {}: unexpected host fault at {addr:#x} (pc {pc:#x})",
                    h.id()
                )))
            }
            RunExit::Code(code) => return self.exit_code(code),
        }
        None
    }

    fn exit_code(&mut self, code: u32) -> Option<HartEvent> {
        let h = &mut *self.hart;
        let pc = h.cpu.pc;
        match code {
            EXIT_TRAP => {
                if std::mem::take(&mut h.trap_flag) == TRAP_EXCEPTION {
                    h.take_trap(h.exc_cause, h.exc_tval);
                }
            }
            EXIT_SYNC => h.trap_flag = 0,
            EXIT_DEBUG => return Some(HartEvent::Breakpoint),
            EXIT_ECALL => {
                if self.builtin_sbi && h.csr.prv == PRV_S {
                    return Some(HartEvent::Sbi);
                }
                let c = match h.csr.prv {
                    PRV_M => cause::ECALL_M,
                    PRV_S => cause::ECALL_S,
                    _ => cause::ECALL_U,
                };
                h.take_trap(c, 0);
            }
            // stval 0 for a breakpoint, as QEMU reports it (the spec allows pc or 0).
            EXIT_EBREAK => h.take_trap(cause::BREAKPOINT, 0),
            EXIT_ILLEGAL => self.illegal(),
            EXIT_MISALIGNED => {
                let insn = self.insn_at(pc);
                let h = &mut *self.hart;
                let addr = h.cpu.x[((insn >> 15) & 31) as usize];
                // LR reports a load, every other atomic a store/AMO.
                let c = if insn >> 27 == 0b00010 {
                    cause::LOAD_MISALIGNED
                } else {
                    cause::STORE_MISALIGNED
                };
                h.take_trap(c, addr);
            }
            EXIT_MRET | EXIT_SRET => {
                if !h.xret(code == EXIT_MRET) {
                    self.illegal();
                }
            }
            EXIT_WFI => {
                if !h.may_wfi() {
                    self.illegal();
                } else {
                    h.cpu.pc = pc.wrapping_add(4);
                    self.wait_for_interrupt();
                }
            }
            c if c & !0x3ff == EXIT_SFENCE => {
                if !h.may_sfence() {
                    self.illegal();
                } else {
                    // With an address, that page (in every address space: entries are not
                    // tagged by ASID); without, everything.
                    let rs1 = ((c >> 5) & 31) as usize;
                    if rs1 == 0 {
                        h.flush_tlb();
                    } else {
                        let va = h.cpu.x[rs1];
                        h.tlb.flush_page(va);
                        h.soft.flush_page(va);
                        h.epoch = h.epoch.wrapping_add(1);
                    }
                    h.cpu.pc = pc.wrapping_add(4);
                }
            }
            _ => self.illegal(),
        }
        None
    }

    fn illegal(&mut self) {
        let insn = self.insn_at(self.hart.cpu.pc);
        self.hart.take_trap(cause::ILLEGAL, insn as u64);
    }

    /// The instruction bits at virtual `pc` (0 when they cannot be fetched).
    fn insn_at(&mut self, pc: u64) -> u32 {
        let h = &mut *self.hart;
        let mut parcel = |a: u64| {
            h.translate(a, Access::Fetch)
                .ok()
                .and_then(|pa| h.mem.read(pa, 2))
                .unwrap_or(0) as u32
        };
        let lo = parcel(pc);
        if lo & 3 != 3 {
            return lo;
        }
        lo | parcel(pc.wrapping_add(2)) << 16
    }

    /// `wfi`: the host thread sleeps until an interrupt is pending (or a timer deadline
    /// passes, or the machine stops).
    fn wait_for_interrupt(&mut self) {
        let shared = self.hart.shared.clone();
        let mut g = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if shared.stop.load(Ordering::SeqCst)
                || shared.tlb_flush.load(Ordering::SeqCst)
                || self.hart.wakeup_pending()
            {
                return;
            }
            let deadline = timer_deadline(&shared);
            g = if deadline == u64::MAX {
                shared.wake.wait(g).unwrap_or_else(|e| e.into_inner())
            } else {
                let at = self.hart.timebase.ns_at(deadline);
                let wait = Duration::from_nanos(at.saturating_sub(monotonic_ns()).max(1000));
                shared
                    .wake
                    .wait_timeout(g, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            };
        }
    }
}

/// The earliest timer compare value of a hart (mtime units).
fn timer_deadline(shared: &HartShared) -> u64 {
    shared
        .mtimecmp
        .load(Ordering::SeqCst)
        .min(shared.stimecmp.load(Ordering::SeqCst))
}

/// The body of a hart's timer thread: when mtime reaches the hart's earliest compare
/// value, makes the hart leave translated code so it takes the interrupt (and wakes it
/// from `wfi`). Sleeps until then; returns when the machine stops.
pub fn timer_thread(shared: Arc<HartShared>, timebase: Timebase) {
    let mut fired = u64::MAX;
    let mut g = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let deadline = timer_deadline(&shared);
        let now = timebase.mtime();
        if deadline == u64::MAX || (now >= deadline && fired == deadline) {
            g = shared.timer_wake.wait(g).unwrap_or_else(|e| e.into_inner());
            continue;
        }
        if now >= deadline {
            fired = deadline;
            shared.exit.request();
            shared.wake.notify_all();
            continue;
        }
        let wait = timebase.ns_at(deadline).saturating_sub(monotonic_ns());
        g = shared
            .timer_wake
            .wait_timeout(g, Duration::from_nanos(wait.max(1000)))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}
