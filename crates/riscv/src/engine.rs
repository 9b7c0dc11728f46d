//! The public engine used by user mode (see docs/translator-contract.md).

use crate::cpu::Cpu;
use crate::ctx::{EXIT_DEBUG, EXIT_EBREAK, EXIT_ECALL, EXIT_ILLEGAL, EXIT_MISALIGNED};
use crate::frontend::RiscvFrontend;
use dbt::env::EnvPtr;
use dbt::hostmem::GuestMem;
use dbt::{Backend, Exec, ExecConfig, ExitRequest, RunExit, Stats};
use std::cell::RefCell;

/// Why `Engine::run` returned. `cpu.pc` points at the instruction concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// pc points AT the ecall; user mode advances pc by 4.
    Ecall,
    Ebreak,
    IllegalInstruction {
        insn: u32,
    },
    MemoryFault {
        addr: u64,
        write: bool,
        exec: bool,
    },
    Misaligned {
        addr: u64,
    },
    Interrupted,
    /// A debugger's breakpoint (see [`Engine::set_breakpoints`]); the instruction at pc has
    /// not run.
    Debug,
}

#[derive(Clone)]
pub struct EngineConfig {
    pub backend: Backend,
    /// Host address of guest address 0. The 64 KiB on each side of guest memory must be
    /// inaccessible (see `dbt::hostmem::Reservation`): native code relies on them.
    pub guest_base: usize,
    /// Guest addresses are `[0, guest_limit)`.
    pub guest_limit: u64,
    /// Upper bound on instructions per translation block.
    pub max_block_insns: u32,
    /// Watch translated pages for self-modifying code (write-protects them on the host).
    pub detect_smc: bool,
    /// Bytes of executable memory for the native backend.
    pub code_size: usize,
    /// Execute permission of guest pages: called with the address of each page a new block
    /// is fetched from; `false` makes the fetch fail with
    /// `Exit::MemoryFault { exec: true }` at the first instruction on that page.
    /// `None`: every readable page is executable.
    pub exec_check: Option<dbt::exec::ExecCheck>,
    /// Write permission of guest pages (`None`: probed on the host mapping when a page's
    /// code is first translated, a signal for each read-only page).
    pub write_check: Option<dbt::exec::ExecCheck>,
    /// Interpreted runs of a block before it is compiled to native code (0, the default:
    /// compile at once; see `dbt::ExecConfig::compile_after`).
    pub compile_after: u32,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("backend", &self.backend)
            .field("guest_base", &format_args!("{:#x}", self.guest_base))
            .field("guest_limit", &format_args!("{:#x}", self.guest_limit))
            .field("max_block_insns", &self.max_block_insns)
            .field("detect_smc", &self.detect_smc)
            .field("code_size", &self.code_size)
            .field("exec_check", &self.exec_check.is_some())
            .field("write_check", &self.write_check.is_some())
            .field("compile_after", &self.compile_after)
            .finish()
    }
}

impl EngineConfig {
    pub fn new(guest_base: usize, guest_limit: u64) -> EngineConfig {
        EngineConfig {
            backend: Backend::Native,
            guest_base,
            guest_limit,
            max_block_insns: 128,
            detect_smc: true,
            code_size: 64 << 20,
            exec_check: None,
            write_check: None,
            compile_after: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot set up the code buffer")]
    CodeBuffer(#[source] std::io::Error),
    #[error("invalid guest address space (base {base:#x}, limit {limit:#x})")]
    BadAddressSpace { base: usize, limit: u64 },
}

/// Translation cache plus backend for one guest thread. Create one per guest thread; they
/// share self-modifying-code tracking and invalidations through process-wide state.
pub struct Engine {
    exec: RefCell<Exec>,
    fe: RiscvFrontend,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        if config.guest_limit == 0
            || (config.guest_base as u64)
                .checked_add(config.guest_limit)
                .is_none()
        {
            return Err(EngineError::BadAddressSpace {
                base: config.guest_base,
                limit: config.guest_limit,
            });
        }
        let exec = Exec::new(ExecConfig {
            backend: config.backend,
            mem: GuestMem {
                base: config.guest_base,
                limit: config.guest_limit,
            },
            max_insns: config.max_block_insns.max(1),
            smc: config.detect_smc,
            code_size: config.code_size,
            exec_check: config.exec_check.clone(),
            write_check: config.write_check.clone(),
            compile_after: config.compile_after,
            inexact_flag: Some(crate::cpu::INEXACT_FLAG),
            system: None,
        })
        .map_err(EngineError::CodeBuffer)?;
        Ok(Engine {
            exec: RefCell::new(exec),
            fe: RiscvFrontend::default(),
        })
    }

    /// Stops guest code at a debugger's breakpoints (`Exit::Debug`); None removes them.
    /// Call it again after changing the set (translations are dropped here).
    pub fn set_breakpoints(&mut self, bps: Option<std::sync::Arc<crate::debug::Breakpoints>>) {
        self.fe.set_breakpoints(bps);
        self.exec.get_mut().flush();
    }

    /// Executes exactly one instruction (a debugger's single step); None when it completed
    /// normally (`cpu.pc` is the next one), else what `run` would have returned.
    pub fn step(&mut self, cpu: &mut Cpu) -> Option<Exit> {
        cpu.x[0] = 0;
        let env = EnvPtr::new(cpu);
        let r = self.exec.get_mut().step(&self.fe, env)?;
        Some(self.exit_of(r, cpu))
    }

    /// Runs guest code from `cpu.pc` until something user mode must handle.
    pub fn run(&mut self, cpu: &mut Cpu) -> Exit {
        cpu.x[0] = 0;
        let env = EnvPtr::new(cpu);
        let r = self.exec.get_mut().run(&self.fe, env);
        self.exit_of(r, cpu)
    }

    fn exit_of(&self, r: RunExit, cpu: &Cpu) -> Exit {
        match r {
            RunExit::Code(EXIT_ECALL) => Exit::Ecall,
            RunExit::Code(EXIT_EBREAK) => Exit::Ebreak,
            RunExit::Code(EXIT_DEBUG) => Exit::Debug,
            RunExit::Code(EXIT_ILLEGAL) => Exit::IllegalInstruction {
                insn: self.insn_at(cpu.pc),
            },
            RunExit::Code(EXIT_MISALIGNED) => {
                // Atomics are 32-bit instructions with the address in rs1.
                let rs1 = (self.insn_at(cpu.pc) >> 15) & 31;
                Exit::Misaligned {
                    addr: cpu.x[rs1 as usize],
                }
            }
            RunExit::Code(_) => Exit::IllegalInstruction { insn: 0 },
            RunExit::Fault { addr, write, exec } => Exit::MemoryFault { addr, write, exec },
            RunExit::Interrupted => Exit::Interrupted,
        }
    }

    fn insn_at(&self, pc: u64) -> u32 {
        let ex = self.exec.borrow();
        let lo = ex.mem().load(pc, 2).unwrap_or(0) as u32;
        if lo & 3 != 3 {
            return lo;
        }
        lo | (ex.mem().load(pc.wrapping_add(2), 2).unwrap_or(0) as u32) << 16
    }

    /// Drops translations overlapping `[addr, addr+len)` and stops write-protecting those
    /// pages. Call it *before* munmap/mprotect of guest memory and before a syscall writes
    /// into guest memory that may hold code.
    pub fn invalidate(&self, addr: u64, len: u64) {
        self.exec.borrow_mut().invalidate(addr, len);
    }

    pub fn stats(&self) -> Stats {
        self.exec.borrow().stats
    }

    /// Call on the forking thread just before fork(): parent and child both keep this
    /// engine's translations (the child does not translate again what the parent already
    /// had); the code buffer is copied lazily by the first process to write to it. Blocks
    /// earlier children translated are translated first if `worth(pc)` (see
    /// `dbt::forkwarm`).
    pub fn prepare_fork(&mut self, worth: &dyn Fn(u64) -> bool) {
        self.exec.get_mut().prepare_fork(&self.fe, worth);
    }

    /// Call in the child after fork(): zeroes the statistics (a child reports its own
    /// work, not its parent's), and tells the parent which blocks this child translates so
    /// that later children inherit them (see `dbt::forkwarm`).
    pub fn after_fork_child(&mut self) {
        self.exec.get_mut().after_fork_child();
    }

    /// A handle another thread or a signal handler can use with [`request_exit`].
    pub fn exit_request(&self) -> ExitRequest {
        self.exec.borrow().exit_request()
    }
}

/// Take before `fork()` and drop right after it in parent and child: keeps the child from
/// inheriting translator-wide locks held by other threads at the moment of the fork.
pub fn fork_lock() -> dbt::smc::ForkGuard {
    dbt::smc::fork_lock()
}

/// Makes `Engine::run` return `Exit::Interrupted` at the next block boundary.
pub fn request_exit(handle: &ExitRequest) {
    handle.request();
}

#[cfg(test)]
mod tests {
    #[test]
    fn engine_can_move_to_a_thread() {
        fn send<T: Send>() {}
        send::<super::Engine>();
        send::<super::ExitRequest>();
    }
}
