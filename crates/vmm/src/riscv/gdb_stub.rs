//! The `virt` machine's GDB stub (`tandem run --gdb`): one GDB thread per hart (thread id
//! = hart id + 1), all-stop. It runs on its own thread: waits for GDB before any hart runs
//! (as `qemu -s -S`), then serves it until GDB kills the machine, detaches, or the guest
//! powers off (reported to GDB as an exit). The hart side is `debug.rs`.
//!
//! Breakpoints are the translator's (`riscv::debug::Breakpoints`): guest memory is never
//! patched, so a software and a hardware breakpoint are the same thing. Memory goes
//! through the hart's current address translation. Registers: x0-x31, pc, f0-f31, the FP
//! CSRs, the main privileged CSRs and the privilege level.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use gdb::arch::{self, RegId, Regs};
use gdb::gdbstub::common::{Signal, Tid};
use gdb::gdbstub::conn::ConnectionExt;
use gdb::gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdb::gdbstub::stub::{DisconnectReason, GdbStub, MultiThreadStopReason};
use gdb::gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSchedulerLocking,
    MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdb::gdbstub::target::ext::base::single_register_access::{
    SingleRegisterAccess, SingleRegisterAccessOps,
};
use gdb::gdbstub::target::ext::base::BaseOps;
use gdb::gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, SwBreakpoint, SwBreakpointOps,
};
use gdb::gdbstub::target::ext::thread_extra_info::{ThreadExtraInfo, ThreadExtraInfoOps};
use gdb::gdbstub::target::{Target, TargetError, TargetResult};
use gdb::{Conn, Listener, Ready, Rv64System};
use riscv::system::csrs::CsrOp;
use riscv::system::{Hart, PRV_M, PRV_S, PRV_U};

use super::debug::{DebugHarts, Go, StopWhy};
use crate::{ExitReason, VmControl};

/// Debug accesses stop at page boundaries (each page may map elsewhere or nowhere).
const PAGE: u64 = 4096;

struct SystemTarget {
    dbg: Arc<DebugHarts>,
    control: Arc<VmControl>,
    /// The resume being put together from a `vCont` packet.
    actions: Vec<Option<Go>>,
    /// Harts without an action continue (false under scheduler locking).
    others_continue: bool,
    /// Addresses GDB inserted breakpoints at (removed when it detaches).
    inserted: Vec<u64>,
}

impl SystemTarget {
    fn hart_id(&self, tid: Tid) -> Option<usize> {
        let id = tid.get() - 1;
        (id < self.dbg.len()).then_some(id)
    }

    fn with_hart<R>(
        &mut self,
        tid: Tid,
        f: impl FnOnce(&mut Hart) -> R,
    ) -> Result<R, TargetError<&'static str>> {
        let id = self.hart_id(tid).ok_or(TargetError::NonFatal)?;
        let mut h = self.dbg.hart(id).ok_or(TargetError::NonFatal)?;
        Ok(f(h.hart()))
    }

    fn remove_breakpoints(&mut self) {
        for pc in self.inserted.drain(..) {
            self.dbg.breakpoints.remove(pc);
        }
    }

    fn add_breakpoint(&mut self, addr: u64) -> bool {
        if self.dbg.breakpoints.insert(addr) {
            self.inserted.push(addr);
        }
        true
    }

    fn remove_breakpoint(&mut self, addr: u64) -> bool {
        self.inserted.retain(|&a| a != addr);
        self.dbg.breakpoints.remove(addr)
    }
}

fn tid_of(id: usize) -> Tid {
    Tid::new(id + 1).unwrap_or(Tid::MIN)
}

/// A CSR as the hart's CSR instructions see it from M-mode (so every CSR is visible
/// whatever the hart's privilege); None if the hart has no such CSR.
fn read_csr(h: &mut Hart, csr: u16) -> Option<u64> {
    let prv = std::mem::replace(&mut h.csr.prv, PRV_M);
    let v = h.csr_access(u32::from(csr), CsrOp::Set, 0, false);
    h.csr.prv = prv;
    v
}

/// Writes a CSR with its WARL rules, as M-mode software would.
fn write_csr(h: &mut Hart, csr: u16, v: u64) -> bool {
    let prv = std::mem::replace(&mut h.csr.prv, PRV_M);
    let ok = h
        .csr_access(u32::from(csr), CsrOp::Write, v, true)
        .is_some();
    h.csr.prv = prv;
    ok
}

impl Target for SystemTarget {
    type Arch = Rv64System;
    type Error = &'static str;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadBase for SystemTarget {
    fn read_registers(&mut self, regs: &mut Regs, tid: Tid) -> TargetResult<(), Self> {
        *regs = self.with_hart(tid, |h| Regs::from_cpu(&h.cpu))?;
        Ok(())
    }

    fn write_registers(&mut self, regs: &Regs, tid: Tid) -> TargetResult<(), Self> {
        self.with_hart(tid, |h| regs.to_cpu(&mut h.cpu))
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, Tid, Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], tid: Tid) -> TargetResult<usize, Self> {
        let n = self.with_hart(tid, |h| {
            let mut done = 0;
            while done < data.len() {
                let va = start.wrapping_add(done as u64);
                let len = ((PAGE - va % PAGE) as usize).min(data.len() - done);
                if !h.debug_read(va, &mut data[done..done + len]) {
                    break;
                }
                done += len;
            }
            done
        })?;
        // Nothing readable is an error reply; a short read tells GDB where memory ends.
        if n == 0 && !data.is_empty() {
            return Err(TargetError::NonFatal);
        }
        Ok(n)
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], tid: Tid) -> TargetResult<(), Self> {
        let ok = self.with_hart(tid, |h| h.debug_write(start, data))?;
        ok.then_some(()).ok_or(TargetError::NonFatal)
    }

    fn list_active_threads(
        &mut self,
        thread_is_active: &mut dyn FnMut(Tid),
    ) -> Result<(), Self::Error> {
        (0..self.dbg.len()).for_each(|id| thread_is_active(tid_of(id)));
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }

    fn support_thread_extra_info(&mut self) -> Option<ThreadExtraInfoOps<'_, Self>> {
        Some(self)
    }
}

impl SingleRegisterAccess<Tid> for SystemTarget {
    fn read_register(
        &mut self,
        tid: Tid,
        reg: RegId<u64>,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let v = self.with_hart(tid, |h| match reg {
            RegId::Priv => Some(h.csr.prv),
            RegId::Csr(c) if arch::read_cpu_reg(&h.cpu, reg).is_none() => read_csr(h, c),
            _ => arch::read_cpu_reg(&h.cpu, reg),
        })?;
        // 0 bytes: GDB shows the register as unavailable.
        Ok(v.map_or(0, |v| arch::put_reg(buf, v)))
    }

    fn write_register(&mut self, tid: Tid, reg: RegId<u64>, val: &[u8]) -> TargetResult<(), Self> {
        let v = arch::get_reg(val);
        let ok = self.with_hart(tid, |h| match reg {
            RegId::Priv if matches!(v, PRV_U | PRV_S | PRV_M) => {
                h.csr.prv = v;
                true
            }
            RegId::Priv => false,
            RegId::Csr(c) if arch::read_cpu_reg(&h.cpu, reg).is_none() => write_csr(h, c, v),
            _ => arch::write_cpu_reg(&mut h.cpu, reg, v),
        })?;
        ok.then_some(()).ok_or(TargetError::NonFatal)
    }
}

impl ThreadExtraInfo for SystemTarget {
    fn thread_extra_info(&self, tid: Tid, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let Some(id) = self.hart_id(tid) else {
            return Ok(0);
        };
        let s = format!("hart {id}");
        let n = s.len().min(buf.len());
        buf[..n].copy_from_slice(&s.as_bytes()[..n]);
        Ok(n)
    }
}

impl MultiThreadResume for SystemTarget {
    fn resume(&mut self) -> Result<(), Self::Error> {
        let default = self.others_continue.then_some(Go::Continue);
        let actions: Vec<Option<Go>> = self.actions.iter().map(|a| a.or(default)).collect();
        self.dbg.resume(&actions);
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        self.actions = vec![None; self.dbg.len()];
        self.others_continue = true;
        Ok(())
    }

    // Signals have no meaning for a machine: they are ignored, as QEMU does.
    fn set_resume_action_continue(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        let id = self.hart_id(tid).ok_or("no such hart")?;
        self.actions[id] = Some(Go::Continue);
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadSingleStep for SystemTarget {
    fn set_resume_action_step(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        let id = self.hart_id(tid).ok_or("no such hart")?;
        self.actions[id] = Some(Go::Step);
        Ok(())
    }
}

impl MultiThreadSchedulerLocking for SystemTarget {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), Self::Error> {
        self.others_continue = false;
        Ok(())
    }
}

impl Breakpoints for SystemTarget {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }
    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for SystemTarget {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.add_breakpoint(addr))
    }
    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.remove_breakpoint(addr))
    }
}

impl HwBreakpoint for SystemTarget {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.add_breakpoint(addr))
    }
    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.remove_breakpoint(addr))
    }
}

/// How the machine's end looks to GDB.
fn exit_stop(reason: Option<ExitReason>) -> MultiThreadStopReason<u64> {
    match reason {
        Some(ExitReason::Signal(sig)) => MultiThreadStopReason::Terminated(Signal(sig as u8)),
        Some(r) => MultiThreadStopReason::Exited(r.exit_status() as u8),
        None => MultiThreadStopReason::Exited(0),
    }
}

fn stop_reason(id: usize, why: StopWhy) -> MultiThreadStopReason<u64> {
    let tid = tid_of(id);
    match why {
        StopWhy::Breakpoint => MultiThreadStopReason::SwBreak(tid),
        StopWhy::Step => MultiThreadStopReason::SignalWithThread {
            tid,
            signal: Signal::SIGTRAP,
        },
        StopWhy::Interrupt => MultiThreadStopReason::SignalWithThread {
            tid,
            signal: Signal::SIGINT,
        },
    }
}

enum EventLoop {}

impl BlockingEventLoop for EventLoop {
    type Target = SystemTarget;
    type Connection = Conn;
    type StopReason = MultiThreadStopReason<u64>;

    /// Waits for the harts to stop (all of them parked), for GDB (Ctrl-C), or for the
    /// machine's end.
    #[allow(clippy::type_complexity)]
    fn wait_for_stop_reason(
        target: &mut SystemTarget,
        conn: &mut Conn,
    ) -> Result<Event<Self::StopReason>, WaitForStopReasonError<&'static str, std::io::Error>> {
        let fds = [
            target.dbg.parked_evt.as_raw_fd(),
            target.control.wake_fd().as_raw_fd(),
        ];
        loop {
            if target.control.is_stopping() {
                return Ok(Event::TargetStopped(exit_stop(target.control.reason())));
            }
            if let Some((id, why)) = target.dbg.stopped() {
                return Ok(Event::TargetStopped(stop_reason(id, why)));
            }
            match conn
                .wait(&fds)
                .map_err(WaitForStopReasonError::Connection)?
            {
                Ready::Conn => {
                    let b = conn.read().map_err(WaitForStopReasonError::Connection)?;
                    return Ok(Event::IncomingData(b));
                }
                Ready::Other(0) => {
                    let _ = target.dbg.parked_evt.read();
                }
                Ready::Other(_) => {}
            }
        }
    }

    fn on_interrupt(target: &mut SystemTarget) -> Result<Option<Self::StopReason>, &'static str> {
        // Reported by `wait_for_stop_reason` once every hart has parked.
        target.dbg.interrupt();
        Ok(None)
    }
}

/// The debugger's thread: waits for GDB, then serves it. The harts stay parked until GDB
/// resumes them; if GDB goes away without killing the machine, it runs on undebugged.
pub(crate) fn serve(listener: Listener, dbg: Arc<DebugHarts>, control: Arc<VmControl>) {
    log::info!("waiting for gdb on {}", listener.describe());
    let conn = match listener.accept(Some(control.wake_fd().as_raw_fd())) {
        Ok(Some(c)) => c,
        Ok(None) => return,
        Err(e) => {
            control.stop(ExitReason::Error(e.to_string()));
            return;
        }
    };
    // One debugger per run: the socket goes now (a Unix socket's file too).
    drop(listener);
    let mut target = SystemTarget {
        dbg: dbg.clone(),
        control: control.clone(),
        actions: vec![None; dbg.len()],
        others_continue: true,
        inserted: Vec::new(),
    };
    let detach = match GdbStub::new(conn).run_blocking::<EventLoop>(&mut target) {
        Ok(DisconnectReason::Kill) => {
            control.stop(ExitReason::DebuggerKill);
            false
        }
        Ok(DisconnectReason::TargetExited(_) | DisconnectReason::TargetTerminated(_)) => false,
        Ok(DisconnectReason::Disconnect) => true,
        Err(e) => {
            if !control.is_stopping() {
                log::warn!("gdb connection lost ({e}); the machine runs on");
            }
            true
        }
    };
    if detach && !control.is_stopping() {
        target.remove_breakpoints();
        dbg.detach();
    }
}
