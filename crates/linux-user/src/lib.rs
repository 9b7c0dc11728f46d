//! RISC-V Linux user-mode emulation: loads a RV64 Linux program into a guest address space,
//! runs it on the translator (`riscv::Engine`), and services its syscalls on the host.
//!
//! Module map: `space` (guest address space), `elf` + `stack` (loading), `task` (process,
//! threads, run loop), `syscall` (table-driven syscall translation), `signal` + `frame`
//! (guest signals), `engine` (the seam to the translator), `host` (raw host syscalls),
//! `hostsig` (host signal dispositions), `stdfds` (standard descriptors closed at start),
//! `binfmt` (registration with the kernel's binfmt_misc, and starting from it).
//!
//! Known gaps (each returns an error or degrades gracefully, never aborts): set_robust_list,
//! rseq, clone3 and riscv_hwprobe return ENOSYS (glibc falls back); ioctls other than the
//! common terminal and interface ones return ENOTTY; SysV IPC and io_uring return ENOSYS;
//! /proc/self/maps lists file mappings without their names; other /proc files (but
//! /proc/self/exe and cmdline) show the host's view.

pub mod binfmt;
mod debugger;
pub mod elf;
pub mod engine;
pub mod errno;
mod frame;
mod host;
pub mod hostsig;
pub mod signal;
pub mod space;
mod stack;
pub mod stdfds;
mod syscall;
pub mod task;

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use thiserror::Error;

pub use engine::Backend;
use engine::Cpu;
use signal::SigAction;
use space::{Backing, Space, PROT_EXEC, PROT_READ, PROT_WRITE};
pub use task::Options;
use task::{Process, Thread, ThreadEnd};

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Path of the program (opened as given, like the kernel would).
    pub program: String,
    /// Guest argv, argv[0] included.
    pub argv: Vec<Vec<u8>>,
    /// Guest environment, "VAR=VALUE" strings.
    pub env: Vec<Vec<u8>>,
    pub opts: Options,
    /// The program already open (binfmt_misc's `O` flag: the kernel opened it, see
    /// [`binfmt::exec_file`]); `program` then only names it. Closed once loaded.
    pub program_file: Option<Arc<std::fs::File>>,
}

#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Load(#[from] elf::LoadError),
    #[error("cannot reserve the guest address space: {0}")]
    Reserve(#[source] std::io::Error),
    #[error("cannot set up the initial stack (errno {0})")]
    Stack(i32),
    #[error("cannot start the translator: {0}")]
    Engine(String),
    #[error(transparent)]
    Gdb(#[from] gdb::GdbError),
}

impl RunError {
    /// Exit status for the command line, following the shell's conventions.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Load(e) => e.exit_code(),
            _ => 126,
        }
    }
}

/// Finds the interpreter: under the sysroot first (like QEMU's -L), then on the host.
pub(crate) fn find_interp(opts: &Options, interp: &str) -> Option<String> {
    if let Some(root) = &opts.sysroot {
        let cand = root.join(interp.trim_start_matches('/'));
        if cand.exists() {
            return Some(cand.to_string_lossy().into_owned());
        }
    }
    std::path::Path::new(interp)
        .exists()
        .then(|| interp.to_string())
}

/// Loads and runs the program. Returns only on a start-up error: once the guest runs, the
/// process ends the way the guest's does (exit status or fatal signal).
pub fn run(cfg: Config) -> Result<std::convert::Infallible, RunError> {
    run_with(cfg, None)
}

/// As [`run`], but first waits for GDB on `gdb` and runs the program under its control
/// (see the `debugger` module for what is debugged).
pub fn run_debugged(cfg: Config, gdb: gdb::Listener) -> Result<std::convert::Infallible, RunError> {
    run_with(cfg, Some(gdb))
}

fn run_with(
    mut cfg: Config,
    gdb: Option<gdb::Listener>,
) -> Result<std::convert::Infallible, RunError> {
    let space = Space::new().map_err(RunError::Reserve)?;
    let exe = match cfg.program_file.take() {
        // The kernel has checked the permissions. Dropping the last reference closes the
        // fd: the guest must not inherit it.
        Some(f) => elf::load_file(&space, &f, &cfg.program, true)?,
        None => {
            elf::check_executable(&cfg.program)?;
            elf::load(&space, &cfg.program, true)?
        }
    };
    let interp = match &exe.interp {
        Some(name) => {
            let path = find_interp(&cfg.opts, name).ok_or_else(|| elf::LoadError::NoInterp {
                path: cfg.program.clone(),
                interp: name.clone(),
            })?;
            Some(elf::load(&space, &path, false)?)
        }
        None => None,
    };
    space.set_brk_start(space::page_up(exe.end).unwrap_or(exe.end));

    // The signal return trampoline lives in its own read+exec page.
    let tramp = space
        .mmap(
            0,
            space::PAGE,
            PROT_READ | PROT_WRITE,
            false,
            false,
            Backing::Anon { shared: false },
        )
        .map_err(|e| RunError::Stack(e.0))?;
    let code: Vec<u8> = frame::TRAMPOLINE
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    space
        .write(tramp, &code)
        .map_err(|e| RunError::Stack(e.0))?;
    space
        .mprotect(tramp, space::PAGE, PROT_READ | PROT_EXEC)
        .map_err(|e| RunError::Stack(e.0))?;

    let sp = stack::setup(
        &space,
        &exe,
        interp.as_ref(),
        &cfg.program,
        &cfg.argv,
        &cfg.env,
    )
    .map_err(|e| RunError::Stack(e.0))?;

    // Signal state inherited across execve: the mask, and ignored dispositions (SIGPIPE's as
    // Tandem itself was started, not as the Rust runtime left it).
    hostsig::restore_start_dispositions();
    let mask = signal::host_mask();
    let mut actions = [SigAction::default(); 65];
    for (sig, a) in actions.iter_mut().enumerate().skip(1) {
        if signal::host_ignored(sig as i32) && !signal::reserved_by_host_libc(sig as i32) {
            a.handler = signal::SIG_IGN;
        }
    }
    // The host C library's posix_spawn leaves its reserved signals ignored in the child
    // (Rust's Command spawns that way): an artefact of the host's library, not the guest's
    // disposition, which starts as the default (as under qemu-user).
    signal::remirror_reserved_actions(&actions);
    let exe_path =
        std::fs::canonicalize(&cfg.program).unwrap_or_else(|_| PathBuf::from(&cfg.program));
    let proc = Arc::new(Process {
        space: Arc::new(space),
        opts: cfg.opts.clone(),
        exe_path,
        cmdline: cfg
            .argv
            .iter()
            .flat_map(|a| a.iter().copied().chain([0]))
            .collect(),
        sigtramp: tramp,
        actions: Mutex::new(actions),
        live_threads: AtomicUsize::new(1),
        stats_total: Mutex::new(Default::default()),
        live_stats: Mutex::new(Vec::new()),
        debugger: Mutex::new(None),
    });
    let mut cpu = Cpu::new();
    cpu.pc = interp.as_ref().map_or(exe.entry, |i| i.entry);
    cpu.x[2] = sp;
    let mut main = Thread::new(proc.clone(), cpu, mask).map_err(RunError::Engine)?;
    if let Some(listener) = gdb {
        let d = debugger::Debugger::accept(
            &listener,
            Arc::downgrade(&proc),
            main.engine.exit_request(),
        )?;
        *proc.debugger.lock().unwrap_or_else(|e| e.into_inner()) = Some(d);
        main.debugged = true;
    }
    if proc.opts.stats {
        task::keep_stats_channel();
    }
    // Descriptors 0-2 the process was started without are closed for the guest too.
    stdfds::close_placeholders();
    match main.run() {
        ThreadEnd::Group(code) => task::exit_process(&proc, code),
        ThreadEnd::Thread(_) => {
            // The main thread exited but others run on; the last one ends the process. Park
            // with every signal blocked so none is routed to this thread.
            signal::set_host_mask(!0);
            loop {
                // SAFETY: pause has no preconditions.
                unsafe { libc::pause() };
            }
        }
    }
}
