//! The GDB stub of user mode (`tandem-riscv64 -g PORT`), as qemu-user's: the process waits
//! for GDB before its first instruction, then its first thread runs under GDB's control
//! (breakpoints, single steps, Ctrl-C, registers, memory), and its exit is reported.
//!
//! Limits: only the first guest thread is debugged; threads it creates run freely and are
//! not shown to GDB, and a forked child runs undebugged. Guest signals are delivered to the
//! guest, not reported to GDB. A Ctrl-C reaches a thread blocked in a syscall when the
//! syscall returns. Memory GDB writes must be writable by the guest. After `execve` the new
//! program runs undebugged (the connection closes).
//!
//! The stub runs on the debugged thread itself: the thread calls [`Debugger::stop`] when it
//! stops, which serves GDB until GDB resumes it. The target state is a copy of the thread's
//! registers, so gdbstub's state machine (which owns no borrow) can live across stops.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};

use gdb::arch::{self, RegId, Regs};
use gdb::gdbstub::common::Signal;
use gdb::gdbstub::conn::ConnectionExt;
use gdb::gdbstub::stub::state_machine::GdbStubStateMachine;
use gdb::gdbstub::stub::{DisconnectReason, GdbStub, SingleThreadStopReason};
use gdb::gdbstub::target::ext::base::single_register_access::{
    SingleRegisterAccess, SingleRegisterAccessOps,
};
use gdb::gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep,
    SingleThreadSingleStepOps,
};
use gdb::gdbstub::target::ext::base::BaseOps;
use gdb::gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, SwBreakpoint, SwBreakpointOps,
};
use gdb::gdbstub::target::{Target, TargetError, TargetResult};
use gdb::{Conn, GdbError, Listener, Rv64User};
use riscv::debug::Breakpoints as BreakpointSet;

use crate::engine::{Cpu, Engine, ExitRequest};
use crate::space::PAGE;
use crate::task::Process;

/// How the debugged thread goes on after a stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    Continue,
    Step,
}

/// Why the debugged thread stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Breakpoint,
    Step,
    /// GDB's Ctrl-C (see [`Debugger::interrupted`]).
    Interrupt,
}

struct UserTarget {
    /// Weak: the process holds the debugger.
    proc: Weak<Process>,
    /// The debugged thread's registers while it is stopped.
    cpu: Cpu,
    breakpoints: Arc<BreakpointSet>,
    /// The set changed: the thread's translations must be dropped.
    breakpoints_changed: bool,
    resume: Option<Resume>,
}

type Machine = GdbStubStateMachine<'static, UserTarget, Conn>;

/// Watches GDB's connection while the guest runs: input then is a Ctrl-C, which makes the
/// debugged thread leave translated code. It never reads (the thread does, once stopped).
struct Watch {
    conn_fd: RawFd,
    /// The guest runs (watch) or not (wait).
    armed: Mutex<bool>,
    changed: Condvar,
    /// Breaks a `poll` when the guest stops (written to `wake.1`).
    wake: (UnixStream, UnixStream),
    hit: AtomicBool,
    exit: ExitRequest,
}

impl Watch {
    fn arm(&self, on: bool) {
        *self.armed.lock().unwrap_or_else(|e| e.into_inner()) = on;
        self.changed.notify_all();
        if !on {
            let _ = (&self.wake.1).write(&[0]);
        }
    }

    fn run(&self) {
        loop {
            {
                let mut g = self.armed.lock().unwrap_or_else(|e| e.into_inner());
                while !*g {
                    g = self.changed.wait(g).unwrap_or_else(|e| e.into_inner());
                }
            }
            let mut fds = [
                libc::pollfd {
                    fd: self.conn_fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.wake.0.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a valid array of two pollfd structures.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if r < 0 {
                continue;
            }
            if fds[1].revents != 0 {
                let _ = (&self.wake.0).read(&mut [0u8; 64]);
            }
            let mut g = self.armed.lock().unwrap_or_else(|e| e.into_inner());
            if fds[0].revents != 0 && *g {
                // Disarmed until the next resume, so pending input does not spin us.
                *g = false;
                self.hit.store(true, Ordering::SeqCst);
                self.exit.request();
            }
        }
    }
}

/// GDB's session with the process.
pub struct Debugger {
    machine: Option<Machine>,
    target: UserTarget,
    watch: Arc<Watch>,
}

fn lost(e: impl std::fmt::Display) {
    log::warn!("gdb connection lost ({e}); the program runs on");
}

impl Debugger {
    /// Waits for GDB to connect. The thread must then call [`Debugger::stop`] with no reason
    /// before its first instruction, and give `engine` the breakpoints.
    pub fn accept(
        listener: &Listener,
        proc: Weak<Process>,
        exit: ExitRequest,
    ) -> Result<Self, GdbError> {
        let conn = listener
            .accept(None)?
            .ok_or_else(|| GdbError::Accept(std::io::Error::other("connection aborted")))?;
        let watch = Arc::new(Watch {
            conn_fd: conn.raw_fd(),
            armed: Mutex::new(false),
            changed: Condvar::new(),
            wake: UnixStream::pair().map_err(GdbError::Accept)?,
            hit: AtomicBool::new(false),
            exit,
        });
        let w = watch.clone();
        std::thread::Builder::new()
            .name("gdb-watch".into())
            .spawn(move || w.run())
            .map_err(GdbError::Accept)?;
        // The wake end is drained in bulk and must never block.
        watch
            .wake
            .0
            .set_nonblocking(true)
            .map_err(GdbError::Accept)?;
        let mut target = UserTarget {
            proc,
            cpu: Cpu::new(),
            breakpoints: Arc::new(BreakpointSet::default()),
            breakpoints_changed: false,
            resume: None,
        };
        let machine = GdbStub::new(conn)
            .run_state_machine(&mut target)
            .map_err(|e| GdbError::Accept(std::io::Error::other(e.to_string())))?;
        Ok(Debugger {
            machine: Some(machine),
            target,
            watch,
        })
    }

    pub fn breakpoints(&self) -> Arc<BreakpointSet> {
        self.target.breakpoints.clone()
    }

    /// GDB is still there.
    pub fn attached(&self) -> bool {
        self.machine.is_some()
    }

    /// The guest left translated code because of GDB's Ctrl-C.
    pub fn interrupted(&self) -> bool {
        self.watch.hit.swap(false, Ordering::SeqCst)
    }

    /// The thread stopped (`why` None: before its first instruction): serves GDB until it
    /// resumes the thread, with its registers and breakpoints changed as GDB asked.
    pub fn stop(&mut self, cpu: &mut Cpu, engine: &mut Engine, why: Option<Stop>) -> Resume {
        self.watch.arm(false);
        let Some(mut m) = self.machine.take() else {
            return Resume::Continue;
        };
        self.target.cpu = cpu.clone();
        self.target.resume = None;
        let t = &mut self.target;
        let mut pending = match why {
            None | Some(Stop::Interrupt) => None,
            Some(Stop::Breakpoint) => Some(SingleThreadStopReason::SwBreak(())),
            Some(Stop::Step) => Some(SingleThreadStopReason::DoneStep),
        };
        // The Ctrl-C byte that woke the watcher is still to be read.
        let mut ctrl_c = why == Some(Stop::Interrupt);
        loop {
            let next = match m {
                GdbStubStateMachine::Running(r) => match pending.take() {
                    Some(reason) => r.report_stop(t, reason),
                    None if ctrl_c => {
                        let mut r = r;
                        match r.borrow_conn().read() {
                            Ok(b) => r.incoming_data(t, b),
                            Err(e) => return self.detach(engine, e),
                        }
                    }
                    None => {
                        // GDB resumed the thread.
                        self.machine = Some(r.into());
                        break;
                    }
                },
                GdbStubStateMachine::Idle(mut g) => match g.borrow_conn().read() {
                    Ok(b) => g.incoming_data(t, b),
                    Err(e) => return self.detach(engine, e),
                },
                GdbStubStateMachine::CtrlCInterrupt(c) => {
                    ctrl_c = false;
                    let stop = SingleThreadStopReason::Signal(Signal::SIGINT);
                    c.interrupt_handled(t, Some(stop))
                }
                GdbStubStateMachine::Disconnected(d) => {
                    if d.get_reason() == DisconnectReason::Kill {
                        // As a process GDB kills dies: by SIGKILL.
                        crate::host::exit_group(128 + libc::SIGKILL);
                    }
                    return self.detach(engine, "detached");
                }
            };
            m = match next {
                Ok(m) => m,
                Err(e) => return self.detach(engine, e),
            };
        }
        *cpu = self.target.cpu.clone();
        if std::mem::take(&mut self.target.breakpoints_changed) {
            engine.set_breakpoints(Some(self.target.breakpoints.clone()));
        }
        let resume = self.target.resume.unwrap_or(Resume::Continue);
        if resume == Resume::Continue {
            self.watch.arm(true);
        }
        resume
    }

    /// GDB is gone: the thread runs on with no breakpoints.
    fn detach(&mut self, engine: &mut Engine, why: impl std::fmt::Display) -> Resume {
        let why = why.to_string();
        if why != "detached" {
            lost(why);
        }
        self.machine = None;
        engine.set_breakpoints(None);
        Resume::Continue
    }

    /// The process ends: tells GDB how (`Exited` or `Terminated`), if it is waiting.
    pub fn process_ended(&mut self, code: i32, signal: Option<i32>) {
        self.watch.arm(false);
        if let Some(GdbStubStateMachine::Running(r)) = self.machine.take() {
            let reason = match signal {
                Some(s) => SingleThreadStopReason::Terminated(Signal(s as u8)),
                None => SingleThreadStopReason::Exited(code as u8),
            };
            let _ = r.report_stop(&mut self.target, reason);
        }
    }
}

impl Target for UserTarget {
    type Arch = Rv64User;
    type Error = &'static str;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::SingleThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadBase for UserTarget {
    fn read_registers(&mut self, regs: &mut Regs) -> TargetResult<(), Self> {
        *regs = Regs::from_cpu(&self.cpu);
        Ok(())
    }

    fn write_registers(&mut self, regs: &Regs) -> TargetResult<(), Self> {
        regs.to_cpu(&mut self.cpu);
        Ok(())
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, (), Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
        let proc = self.proc.upgrade().ok_or(TargetError::NonFatal)?;
        // Page by page: a short read tells GDB where readable memory ends.
        let mut done = 0;
        while done < data.len() {
            let a = start.wrapping_add(done as u64);
            let len = ((PAGE - a % PAGE) as usize).min(data.len() - done);
            if proc.space.read(a, &mut data[done..done + len]).is_err() {
                break;
            }
            done += len;
        }
        if done == 0 && !data.is_empty() {
            return Err(TargetError::NonFatal);
        }
        Ok(done)
    }

    fn write_addrs(&mut self, start: u64, data: &[u8]) -> TargetResult<(), Self> {
        let proc = self.proc.upgrade().ok_or(TargetError::NonFatal)?;
        // Space::write also drops translations of the bytes it changes.
        proc.space
            .write(start, data)
            .map_err(|_| TargetError::NonFatal)
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleRegisterAccess<()> for UserTarget {
    fn read_register(
        &mut self,
        _: (),
        reg: RegId<u64>,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        // 0 bytes: GDB shows the register as unavailable.
        Ok(arch::read_cpu_reg(&self.cpu, reg).map_or(0, |v| arch::put_reg(buf, v)))
    }

    fn write_register(&mut self, _: (), reg: RegId<u64>, val: &[u8]) -> TargetResult<(), Self> {
        arch::write_cpu_reg(&mut self.cpu, reg, arch::get_reg(val))
            .then_some(())
            .ok_or(TargetError::NonFatal)
    }
}

// Signals GDB passes on resume are dropped: guest signals are never reported to it.
impl SingleThreadResume for UserTarget {
    fn resume(&mut self, _signal: Option<Signal>) -> Result<(), Self::Error> {
        self.resume = Some(Resume::Continue);
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadSingleStep for UserTarget {
    fn step(&mut self, _signal: Option<Signal>) -> Result<(), Self::Error> {
        self.resume = Some(Resume::Step);
        Ok(())
    }
}

impl UserTarget {
    fn set_breakpoint(&mut self, addr: u64, on: bool) -> bool {
        let changed = if on {
            self.breakpoints.insert(addr)
        } else {
            self.breakpoints.remove(addr)
        };
        self.breakpoints_changed |= changed;
        changed || on
    }
}

// The translator stops at breakpoints without patching guest code: software and hardware
// breakpoints are one thing.
impl Breakpoints for UserTarget {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }
    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for UserTarget {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.set_breakpoint(addr, true))
    }
    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.set_breakpoint(addr, false))
    }
}

impl HwBreakpoint for UserTarget {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.set_breakpoint(addr, true))
    }
    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.set_breakpoint(addr, false))
    }
}
