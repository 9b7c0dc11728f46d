//! The seam to the translator (see docs/translator-contract.md). Everything linux-user needs
//! from `riscv`/`dbt` goes through here.

pub use riscv::{Backend, Cpu, Engine, EngineConfig, Exit, ExitRequest, Stats};

/// Blocks run this many times in the IR interpreter before they are compiled: most of a
/// program's start-up code (dynamic linking, libc initialisation) runs once, and
/// interpreting it is cheaper than generating code for it.
const COMPILE_AFTER: u32 = 2;

/// One engine per guest thread; they share SMC tracking and invalidations process-wide.
/// `exec_ok` tells whether a guest page is executable (the host cannot: see space.rs),
/// `write_ok` whether the guest may write it.
pub fn new_engine(
    backend: Backend,
    guest_base: u64,
    limit: u64,
    exec_ok: std::sync::Arc<dyn Fn(u64) -> bool + Send + Sync>,
    write_ok: std::sync::Arc<dyn Fn(u64) -> bool + Send + Sync>,
) -> Result<Engine, String> {
    let mut cfg = EngineConfig::new(guest_base as usize, limit);
    cfg.backend = backend;
    cfg.exec_check = Some(exec_ok);
    cfg.write_check = Some(write_ok);
    cfg.compile_after = COMPILE_AFTER;
    Engine::new(cfg).map_err(|e| e.to_string())
}

/// Makes sure the host lets us write the guest page range: the translator write-protects
/// pages it translated code from, and a Rust-side store there would crash the host instead of
/// being caught. Releasing the watch also invalidates the stale translations everywhere.
pub fn unprotect_for_write(guest_base: u64, limit: u64, addr: u64, len: u64) {
    let mem = dbt::hostmem::GuestMem {
        base: guest_base as usize,
        limit,
    };
    let first = addr & !4095;
    let mut page = first;
    while page < addr.saturating_add(len) {
        if !mem.is_writable(page) {
            dbt::smc::release(&mem, page, 4096);
        }
        page += 4096;
    }
}
