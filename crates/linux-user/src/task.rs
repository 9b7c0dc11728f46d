//! The emulated process and its threads: shared state, the per-thread run loop, and exits.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::debugger::{Debugger, Resume, Stop};
use crate::engine::{Backend, Cpu, Engine, Exit};
use crate::errno::Errno;
use crate::signal::{self, SigAction, ThreadSignals};
use crate::space::{Space, PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::syscall;

/// Options that also apply to programs started by the guest with execve.
#[derive(Clone, Debug)]
pub struct Options {
    pub sysroot: Option<PathBuf>,
    pub strace: bool,
    pub backend: Backend,
    pub stats: bool,
    /// Started by binfmt_misc: a guest execve of a RISC-V program goes through the kernel,
    /// which hands it to the same handler (no /proc needed, works inside a chroot).
    pub binfmt: bool,
}

/// State shared by all guest threads.
pub struct Process {
    /// Guest memory; shared with a vfork child's own `Process` while the child runs.
    pub space: Arc<Space>,
    pub opts: Options,
    /// Absolute path of the guest program (what /proc/self/exe shows the guest).
    pub exe_path: PathBuf,
    /// The guest's argv, each string NUL-terminated (what /proc/self/cmdline shows it).
    pub cmdline: Vec<u8>,
    /// Guest address of the signal return trampoline.
    pub sigtramp: u64,
    pub actions: Mutex<[SigAction; 65]>,
    pub live_threads: AtomicUsize,
    /// Engines of all live threads, for invalidations that must reach every thread.
    pub stats_total: Mutex<crate::engine::Stats>,
    /// Latest statistics of running threads (only kept with --stats), by tid.
    pub live_stats: Mutex<Vec<(i32, crate::engine::Stats)>>,
    /// GDB's session (`-g`), held by the debugged thread while it is stopped.
    pub debugger: Mutex<Option<Debugger>>,
}

/// How a thread's run loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadEnd {
    /// SYS_exit: only this thread.
    Thread(i32),
    /// SYS_exit_group: the whole process.
    Group(i32),
}

/// One guest thread, running on its own host thread.
pub struct Thread {
    pub proc: Arc<Process>,
    pub cpu: Cpu,
    pub engine: Engine,
    pub tid: i32,
    pub clear_child_tid: u64,
    pub sig: Arc<ThreadSignals>,
    /// Set by a syscall handler that ends the thread or the process.
    pub end: Option<ThreadEnd>,
    /// Set by handlers that replaced the whole register state (rt_sigreturn): do not write a0
    /// or advance pc.
    pub regs_replaced: bool,
    /// This thread runs under GDB (the process's first thread, with `-g`).
    pub debugged: bool,
}

/// A translator engine for a new thread of `proc`, checking execute and write permission
/// against the guest's mappings.
pub fn new_engine(proc: &Arc<Process>) -> Result<Engine, String> {
    let allows = |bit: u32| -> Arc<dyn Fn(u64) -> bool + Send + Sync> {
        let p = proc.clone();
        Arc::new(move |addr| p.space.prot_at(addr).is_some_and(|pr| pr & bit != 0))
    };
    crate::engine::new_engine(
        proc.opts.backend,
        proc.space.guest_base(),
        crate::space::GUEST_ADDR_LIMIT,
        allows(PROT_EXEC),
        allows(PROT_WRITE),
    )
}

pub use crate::host::gettid;

impl Thread {
    pub fn new(proc: Arc<Process>, cpu: Cpu, mask: u64) -> Result<Thread, String> {
        let engine = new_engine(&proc)?;
        let exit_req = engine.exit_request();
        Ok(Thread {
            proc,
            cpu,
            engine,
            tid: gettid(),
            clear_child_tid: 0,
            sig: Arc::new(ThreadSignals::new(mask, exit_req)),
            end: None,
            regs_replaced: false,
            debugged: false,
        })
    }

    /// Runs guest code until the thread or process ends.
    pub fn run(&mut self) -> ThreadEnd {
        signal::register_thread(&self.sig);
        // New threads start with every signal blocked (see spawn_thread) until registered.
        signal::set_host_mask(self.sig.mask.get());
        let mut resume = if self.debugged {
            self.debug_stop(None)
        } else {
            Resume::Continue
        };
        loop {
            signal::deliver_pending(self);
            if let Some(end) = self.end {
                return end;
            }
            if resume == Resume::Step {
                if let Some(exit) = self.step() {
                    self.handle(exit);
                    if let Some(end) = self.end {
                        return end;
                    }
                }
                resume = self.debug_stop(Some(Stop::Step));
                continue;
            }
            match self.engine.run(&mut self.cpu) {
                Exit::Debug if self.debugged => resume = self.debug_stop(Some(Stop::Breakpoint)),
                Exit::Interrupted if self.debugged && self.ctrl_c() => {
                    resume = self.debug_stop(Some(Stop::Interrupt))
                }
                exit => self.handle(exit),
            }
            if let Some(end) = self.end {
                return end;
            }
        }
    }

    /// Serves what made guest code return.
    fn handle(&mut self, exit: Exit) {
        match exit {
            Exit::Ecall => syscall::dispatch(self),
            Exit::Interrupted => {}
            // Only a debugger sets breakpoints; without one, report it as ebreak would.
            Exit::Debug => signal::raise_sync(self, libc::SIGTRAP, 1, self.cpu.pc),
            Exit::Ebreak => signal::raise_sync(self, libc::SIGTRAP, 1, self.cpu.pc),
            Exit::IllegalInstruction { .. } => {
                let pc = self.cpu.pc;
                let exec = self.proc.space.prot_at(pc).map(|p| p & PROT_EXEC != 0);
                if exec == Some(true) {
                    // ILL_ILLOPC
                    signal::raise_sync(self, libc::SIGILL, 1, pc)
                } else {
                    // Garbage fetched from a non-executable page: Linux faults on the
                    // fetch (SEGV_ACCERR, or SEGV_MAPERR if unmapped) before decoding.
                    let code = if exec.is_some() { 2 } else { 1 };
                    signal::raise_sync(self, libc::SIGSEGV, code, pc)
                }
            }
            Exit::MemoryFault { addr, write, exec } => {
                let need = if write {
                    PROT_WRITE
                } else if exec {
                    PROT_EXEC
                } else {
                    PROT_READ
                };
                match self.proc.space.prot_at(addr) {
                    // SEGV_MAPERR: nothing mapped there.
                    None => signal::raise_sync(self, libc::SIGSEGV, 1, addr),
                    // Permitted access that still faulted: a file mapping past the end
                    // of its file (BUS_ADRERR), as the kernel reports it.
                    Some(p) if p & need == need => signal::raise_sync(self, libc::SIGBUS, 2, addr),
                    // SEGV_ACCERR: protection violation.
                    Some(_) => signal::raise_sync(self, libc::SIGSEGV, 2, addr),
                }
            }
            Exit::Misaligned { addr } => {
                // BUS_ADRALN
                signal::raise_sync(self, libc::SIGBUS, 1, addr)
            }
        }
    }

    /// GDB's single step: one instruction, even one GDB left a breakpoint on (GDB itself
    /// removes them before stepping off one).
    fn step(&mut self) -> Option<Exit> {
        let pc = self.cpu.pc;
        match self.engine.step(&mut self.cpu) {
            Some(Exit::Debug) if self.cpu.pc == pc => {
                let proc = self.proc.clone();
                let bps = lock(&proc.debugger).as_ref().map(|d| d.breakpoints())?;
                bps.remove(pc);
                let r = self.engine.step(&mut self.cpu);
                bps.insert(pc);
                r
            }
            r => r,
        }
    }

    /// Hands the stopped thread to GDB; how it goes on. Without GDB (gone or never there),
    /// it continues.
    fn debug_stop(&mut self, why: Option<Stop>) -> Resume {
        let proc = self.proc.clone();
        let mut dbg = lock(&proc.debugger);
        match dbg.as_mut() {
            Some(d) => {
                let r = d.stop(&mut self.cpu, &mut self.engine, why);
                self.debugged = d.attached();
                r
            }
            None => {
                self.debugged = false;
                Resume::Continue
            }
        }
    }

    /// The guest left translated code because of GDB's Ctrl-C.
    fn ctrl_c(&self) -> bool {
        lock(&self.proc.debugger)
            .as_ref()
            .is_some_and(|d| d.interrupted())
    }

    /// Invalidates translations in every thread's engine (munmap, mprotect, flush_icache).
    pub fn invalidate(&self, addr: u64, len: u64) {
        self.engine.invalidate(addr, len);
    }

    /// Copies into guest memory on behalf of a syscall, coping with pages the translator
    /// write-protected to detect self-modifying code.
    pub fn write_guest(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        self.proc.space.write(addr, data)
    }

    /// Ends this thread as SYS_exit does: clears and wakes the child tid, and ends the process
    /// when it was the last thread.
    pub fn exit_thread(&mut self, code: i32) {
        if self.clear_child_tid != 0 {
            let _ = self.proc.space.write_u32(self.clear_child_tid, 0);
        }
        // Before the guest's join wakes (and after the last guest memory access, which may
        // fault): from then on the guest may think this thread gone.
        crate::signal::block_all_host();
        if self.clear_child_tid != 0 {
            if let Ok(p) = self.proc.space.g2h(self.clear_child_tid, 4) {
                let wake = libc::FUTEX_WAKE as u64;
                let _ = crate::host::syscall6(libc::SYS_futex, [p as u64, wake, 1, 0, 0, 0]);
            }
        }
        self.merge_stats();
        if self.proc.live_threads.fetch_sub(1, Ordering::SeqCst) == 1 {
            exit_process(&self.proc, code);
        }
        self.end = Some(ThreadEnd::Thread(code));
    }

    /// Moves this thread's statistics into the process total (it is ending, or the process is).
    pub fn merge_stats(&self) {
        let s = self.engine.stats();
        lock(&self.proc.live_stats).retain(|(tid, _)| *tid != self.tid);
        add_stats(&mut lock(&self.proc.stats_total), &s);
    }

    /// With --stats, keeps a snapshot of this thread's statistics where the thread that ends
    /// the process can sum them (engines are per thread and cannot be read from another).
    pub fn publish_stats(&self) {
        if !self.proc.opts.stats {
            return;
        }
        let s = self.engine.stats();
        let mut live = lock(&self.proc.live_stats);
        match live.iter_mut().find(|(tid, _)| *tid == self.tid) {
            Some(e) => e.1 = s,
            None => live.push((self.tid, s)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn add_stats(t: &mut crate::engine::Stats, s: &crate::engine::Stats) {
    t.blocks_translated += s.blocks_translated;
    t.guest_insns_translated += s.guest_insns_translated;
    t.translate_ns += s.translate_ns;
    t.chain_hits += s.chain_hits;
    t.indirect_lookups += s.indirect_lookups;
    t.native_blocks += s.native_blocks;
    t.chains_made += s.chains_made;
    t.invalidated_blocks += s.invalidated_blocks;
    t.smc_faults += s.smc_faults;
}

/// Tells GDB (if there is one and it waits) that the process ends. Never blocks: another
/// thread may hold the debugger, stopped.
pub fn report_end(proc: &Process, code: i32, signal: Option<i32>) {
    if let Ok(mut d) = proc.debugger.try_lock() {
        if let Some(d) = d.as_mut() {
            d.process_ended(code, signal);
        }
    }
}

/// Prints translation statistics (if asked for) and ends the host process.
pub fn exit_process(proc: &Process, code: i32) -> ! {
    report_end(proc, code, None);
    print_stats(proc);
    crate::host::exit_group(code)
}

/// Where `--stats` goes: a copy of Tandem's standard error made at start-up (the guest's
/// programs often close theirs before they exit, as coreutils and xz do), or -1; and the
/// (device, inode) it had then: the guest shares the descriptor table and may have put a
/// file of its own at that number since, which must not receive the line.
static STATS_FD: AtomicI32 = AtomicI32::new(-1);
static STATS_FILE: Mutex<Option<(u64, u64)>> = Mutex::new(None);

/// The (device, inode) of the file open at `fd`.
fn file_id(fd: i32) -> Option<(u64, u64)> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: fstat fills the buffer it is given, which outlives the call.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: initialised by the successful fstat (and zeroed before).
    let st = unsafe { st.assume_init() };
    Some((st.st_dev, st.st_ino))
}

/// Keeps a private copy of standard error for the statistics (see [`STATS_FD`]), above the
/// low descriptor numbers programs expect to be theirs, closed on a host exec.
pub fn keep_stats_channel() {
    // SAFETY: duplicating a descriptor; the copy is owned through STATS_FD.
    let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 100) };
    *lock(&STATS_FILE) = file_id(fd);
    let old = STATS_FD.swap(fd, Ordering::SeqCst);
    if old >= 0 {
        // SAFETY: the previous copy, owned through STATS_FD and replaced just now.
        unsafe { libc::close(old) };
    }
}

pub fn print_stats(proc: &Process) {
    if !proc.opts.stats {
        return;
    }
    let mut s = *lock(&proc.stats_total);
    for (_, l) in lock(&proc.live_stats).iter() {
        add_stats(&mut s, l);
    }
    let secs = s.translate_ns as f64 / 1e9;
    let rate = if secs > 0.0 {
        s.guest_insns_translated as f64 / secs
    } else {
        0.0
    };
    let chains = s.chain_hits + s.indirect_lookups;
    let hit = if chains > 0 {
        100.0 * s.chain_hits as f64 / chains as f64
    } else {
        0.0
    };
    let line = format!(
        "tandem-stats: blocks={} native_blocks={} guest_insns_translated={} translate_ms={:.2} \
         translated_insns_per_sec={:.0} dispatch_chain_hit_rate={:.1}% chains_patched={} \
         indirect_lookups={} invalidated_blocks={} smc_faults={}",
        s.blocks_translated,
        s.native_blocks,
        s.guest_insns_translated,
        secs * 1e3,
        rate,
        hit,
        s.chains_made,
        s.indirect_lookups,
        s.invalidated_blocks,
        s.smc_faults
    );
    let line = line + "\n";
    let fd = STATS_FD.load(Ordering::SeqCst);
    let id = if fd >= 0 { file_id(fd) } else { None };
    let ours = id.is_some() && id == *lock(&STATS_FILE);
    // SAFETY: writing a live buffer to a descriptor; a failure is handled below.
    let written = ours && unsafe { libc::write(fd, line.as_ptr().cast(), line.len()) } > 0;
    if !written {
        eprint!("{line}");
    }
}
