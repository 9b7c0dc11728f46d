//! The native x86-64 backend: owns the code buffer, the entry trampoline, block chaining
//! (patched direct jumps), the indirect-jump cache, and the glue that calls generated code.

use crate::codebuf::CodeBuf;
use crate::codegen::inexact;
use crate::codegen::{self, SPILL_SLOTS};
use crate::env::EnvPtr;
use crate::eval;
use crate::fptrap;
use crate::hostmem::{self, GuestMem, HostFault};
use crate::interp::BlockExit;
use crate::ir::{BinOp, Block, InexactFlag, Ty, UnOp, MAX_SLOTS};
use crate::x86::*;
use std::mem::offset_of;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

/// Exit kinds in the low byte of the value generated code returns.
pub const K_INDIRECT: u64 = 2;
pub const K_CODE: u64 = 3;
pub const K_SIGFAULT: u64 = 4;
pub const K_RANGE: u64 = 5;
pub const K_INTERRUPT: u64 = 6;
/// Unchained direct exits: `K_CHAIN + slot` (see [`crate::ir::MAX_SLOTS`]).
pub const K_CHAIN: u64 = 0x10;

/// Entries of the indirect-jump cache (direct-mapped by guest pc): an interpreter's returns
/// and dispatch reach thousands of targets, and with 4096 entries Python's missed a fifth
/// of the time.
pub const JC_SIZE: usize = 32768;

/// An entry of the indirect-jump cache: the key of a guest pc (see [`jc_key`]) and the
/// host address of its block.
#[repr(C)]
#[derive(Clone, Copy)]
struct JEntry {
    pc: u64,
    code: u64,
}

/// The key an entry holds for guest pc `pc` in blocks with jump tag `tag`: the complement
/// of `pc ^ tag`, so that the all-zero entry of fresh memory matches no jump (jump targets
/// have bit 0 clear and tags have it clear too, so keys have it set).
pub fn jc_key(pc: u64, tag: u64) -> u64 {
    !(pc ^ tag)
}

/// The key of an empty entry (see [`jc_key`]).
const JC_EMPTY: u64 = 0;

/// Data generated code reaches through r15.
#[repr(C)]
pub struct NCtx {
    guest_base: u64,
    /// Largest valid address for accesses of 1, 2, 4, 8 bytes.
    max_addr: [u64; 4],
    exit_flag: *const AtomicU32,
    fault_addr: u64,
    fault_write: u64,
    /// Scratch word for generated code (MXCSR reads and writes).
    scratch: u64,
    /// MXCSR as generated code returned, for the deferred inexact flag (see `execute`).
    exit_mxcsr: u64,
    jcache: [JEntry; JC_SIZE],
}

pub const CTX_MAX_ADDR: i32 = offset_of!(NCtx, max_addr) as i32;
pub const CTX_EXIT_FLAG: i32 = offset_of!(NCtx, exit_flag) as i32;
pub const CTX_FAULT_ADDR: i32 = offset_of!(NCtx, fault_addr) as i32;
pub const CTX_FAULT_WRITE: i32 = offset_of!(NCtx, fault_write) as i32;
pub const CTX_SCRATCH: i32 = offset_of!(NCtx, scratch) as i32;
pub const CTX_EXIT_MXCSR: i32 = offset_of!(NCtx, exit_mxcsr) as i32;
pub const CTX_JCACHE: i32 = offset_of!(NCtx, jcache) as i32;

fn ty_code(ty: Ty) -> u64 {
    (ty == Ty::I64) as u64
}
pub fn bin_code(op: BinOp, ty: Ty) -> u64 {
    (BinOp::ALL.iter().position(|o| *o == op).unwrap_or(0) as u64) << 1 | ty_code(ty)
}
pub fn un_code(op: UnOp, ty: Ty) -> u64 {
    (UnOp::ALL.iter().position(|o| *o == op).unwrap_or(0) as u64) << 1 | ty_code(ty)
}
fn ty_of(code: u64) -> Ty {
    if code & 1 != 0 {
        Ty::I64
    } else {
        Ty::I32
    }
}

/// Out-of-line implementation of the IR ops the code generator does not inline; sharing
/// `eval` with the interpreter keeps the two backends identical for them.
pub extern "C" fn pure_bin(code: u64, a: u64, b: u64) -> u64 {
    eval::bin(
        BinOp::ALL[(code >> 1) as usize % BinOp::ALL.len()],
        ty_of(code),
        a,
        b,
    )
}
pub extern "C" fn pure_un(code: u64, a: u64) -> u64 {
    eval::un(
        UnOp::ALL[(code >> 1) as usize % UnOp::ALL.len()],
        ty_of(code),
        a,
    )
}

pub enum NativeExit {
    Block(BlockExit),
    Unchained {
        from: usize,
        slot: u8,
        pc: u64,
    },
    Indirect {
        pc: u64,
    },
    /// Stopped at a block entry because an exit was requested.
    Retry,
}

struct NTb {
    entry: usize,
    pc: u64,
    /// (chain slot, rel32 site in the code buffer) of its chainable jumps.
    gotos: Box<[(u8, u32)]>,
    /// Block indices are u32 here and in `incoming`: this lives as long as the block.
    chained_to: [Option<u32>; MAX_SLOTS],
    incoming: Vec<(u32, u8)>,
    /// Its guest memory accesses and their dirty registers (see `codegen::MemOp`).
    memops: Box<[codegen::MemOp]>,
    memop_regs: Box<[(u32, u8)]>,
}

impl NTb {
    /// The rel32 sites of the jumps in chain slot `slot`.
    fn sites(&self, slot: usize) -> impl Iterator<Item = usize> + '_ {
        let slot = slot as u8;
        self.gotos
            .iter()
            .filter(move |g| g.0 == slot)
            .map(|g| g.1 as usize)
    }
}

pub struct Native {
    buf: CodeBuf,
    ctx: Box<NCtx>,
    _exit_flag: Arc<AtomicU32>,
    entry_off: usize,
    exit_off: usize,
    base_used: usize,
    region: Option<usize>,
    /// Indexed like the run loop's blocks, most of which are never compiled: boxed, an
    /// empty entry costs a pointer.
    tbs: Vec<Option<Box<NTb>>>,
    /// (entry offset, tb index), in increasing offset order, for mapping a faulting rip.
    starts: Vec<(usize, usize)>,
    /// (inline FP instruction, its slow path) as executable addresses, sorted: see `fptrap`.
    fp_traps: Vec<(usize, usize)>,
    mem: GuestMem,
    /// The guest's inexact flag, which generated code leaves in MXCSR.PE (see
    /// [`InexactFlag`]); `None`: FP helpers are always called.
    inexact: Option<InexactFlag>,
    /// Process that owns the code buffer: a child forked without [`Native::freeze`] must not
    /// use it, since the memfd views are shared with the parent (both would emit into the
    /// same pages).
    pid: u32,
    /// Copying a frozen code buffer failed: this backend must not run code any more.
    broken: bool,
    /// Chain patches skipped since the buffer was frozen (see `defer_write`).
    deferred: u32,
    /// Compilations put off since the buffer was frozen (see `defer_compile`).
    deferred_compiles: u32,
}

/// Chain patches left undone while the code buffer is frozen (see `Native::defer_write`).
const FROZEN_CHAIN_DEFER: u32 = 256;
/// Compilations put off while the code buffer is frozen (see `Native::defer_compile`).
const FROZEN_COMPILE_DEFER: u32 = 32;

// SAFETY: the raw pointers (code buffer views, the exit flag) point at memory this struct
// owns or keeps alive (the Arc), and all mutation goes through `&mut self`.
unsafe impl Send for Native {}

type EntryFn = unsafe extern "sysv64" fn(*mut u8, usize, *mut NCtx) -> u64;

impl Native {
    pub fn new(
        size: usize,
        mem: GuestMem,
        exit: Arc<AtomicU32>,
        inexact: Option<InexactFlag>,
    ) -> std::io::Result<Native> {
        let mut buf = CodeBuf::new(size.max(64 << 10))?;
        let frame = (SPILL_SLOTS * 8 + 8) as i32;
        let mut a = Asm::default();
        // Entry trampoline: entry(env, code, ctx).
        for r in [RBX, RBP, R12, R13, R14, R15] {
            a.push(r);
        }
        a.alu_ri(true, Alu::Sub, RSP, frame);
        a.mov_rr(true, RBP, RDI);
        a.mov_rr(true, R15, RDX);
        a.load(true, R14, mem_at(R15, 0));
        if inexact.is_some() {
            // Generated code's MXCSR mode, with the inexact flag clear (Rust code may have
            // set MXCSR.PE).
            inexact::emit_clear(&mut a);
            fptrap::install_handler();
        }
        a.jmp_r(RSI);
        let exit_off = a.pos();
        if inexact.is_some() {
            // Hand the host's inexact flag to `execute`, which folds it into the guest's
            // after completing the guest state, and give Rust its MXCSR back.
            a.stmxcsr(mem_at(R15, CTX_EXIT_MXCSR));
            inexact::emit_host_mode(&mut a);
        }
        a.alu_ri(true, Alu::Add, RSP, frame);
        for r in [R15, R14, R13, R12, RBP, RBX] {
            a.pop(r);
        }
        a.ret();
        // Host faults in generated code resume here (see hostmem).
        let fault_off = a.pos();
        a.mov_ri(RAX, K_SIGFAULT);
        let j = a.jmp();
        a.patch(j, exit_off);
        let base = buf
            .append(&a.buf)
            .ok_or_else(|| std::io::Error::other("code buffer too small"))?;
        let max = |n: u64| mem.limit.saturating_sub(n);
        // Zeroed memory for the context: its jump cache is half a megabyte of empty
        // entries (key 0), which the kernel then maps in only where entries are written.
        // SAFETY: every field of NCtx is an integer, a raw pointer or an array of integer
        // pairs, for which all-zero bytes are a valid value.
        let mut ctx: Box<NCtx> = unsafe { Box::<NCtx>::new_zeroed().assume_init() };
        ctx.guest_base = mem.base as u64;
        ctx.max_addr = [max(1), max(2), max(4), max(8)];
        ctx.exit_flag = Arc::as_ptr(&exit);
        let (s, e) = buf.exec_range();
        let region = hostmem::register_code_region(s, e, buf.exec_addr(base + fault_off));
        if region.is_none() {
            return Err(std::io::Error::other("too many code buffers"));
        }
        Ok(Native {
            base_used: buf.used(),
            buf,
            ctx,
            _exit_flag: exit,
            entry_off: base,
            exit_off: base + exit_off,
            region,
            tbs: Vec::new(),
            starts: Vec::new(),
            fp_traps: Vec::new(),
            mem,
            inexact,
            pid: std::process::id(),
            broken: false,
            deferred: 0,
            deferred_compiles: 0,
        })
    }

    /// True in a child process created by a fork() this backend was not prepared for (see
    /// [`Native::freeze`]).
    pub fn is_inherited(&self) -> bool {
        !self.buf.is_frozen() && self.pid != std::process::id()
    }

    /// Call just before fork(): parent and child keep all compiled code, chains and the
    /// jump cache; whichever first needs to write code copies the buffer (see `codebuf`).
    pub fn freeze(&mut self) {
        self.buf.freeze();
        self.deferred = 0;
        self.deferred_compiles = 0;
    }

    /// The code buffer may be shared with a forked process (it is copied at the next write).
    pub fn is_frozen(&self) -> bool {
        self.buf.is_frozen()
    }

    /// Whether to skip an optional write (a chain patch) because it would copy the frozen
    /// code buffer. The first `FROZEN_CHAIN_DEFER` are skipped; after that the process is
    /// clearly running code of its own and the copy pays for itself.
    pub fn defer_write(&mut self) -> bool {
        if !self.buf.is_frozen() || self.deferred >= FROZEN_CHAIN_DEFER {
            return false;
        }
        self.deferred += 1;
        true
    }

    /// Whether to leave a block that is due for compilation to the interpreter because
    /// compiling would copy the frozen code buffer: true for the first
    /// `FROZEN_COMPILE_DEFER` such blocks (see `Exec::promote`).
    pub fn defer_compile(&mut self) -> bool {
        if !self.buf.is_frozen() || self.deferred_compiles >= FROZEN_COMPILE_DEFER {
            return false;
        }
        self.deferred_compiles += 1;
        true
    }

    /// The code buffer could not be made private after a fork: drop this backend.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Makes the code buffer writable by this process; false (and `is_broken`) if it cannot.
    fn writable(&mut self) -> bool {
        if self.broken {
            return false;
        }
        if self.buf.is_frozen() {
            match self.buf.unfreeze() {
                Ok(()) => self.pid = std::process::id(),
                Err(e) => {
                    log::warn!("cannot copy the code buffer after fork ({e})");
                    self.broken = true;
                    return false;
                }
            }
        }
        true
    }

    pub fn has(&self, idx: usize) -> bool {
        matches!(self.tbs.get(idx), Some(Some(_)))
    }

    /// Compiles block `idx`. Returns false if the code buffer is full (the caller flushes and
    /// retries); a block too complex for the register allocator is simply left to the
    /// interpreter (`has` stays false).
    pub fn compile(&mut self, idx: usize, b: &Block, pc_off: u32) -> bool {
        if self.tbs.len() <= idx {
            self.tbs.resize_with(idx + 1, || None);
        }
        let Some(c) = codegen::compile(b, idx, pc_off, self.inexact) else {
            return true;
        };
        if !self.writable() {
            // Left to the interpreter; the run loop drops this backend.
            return true;
        }
        let base = (self.buf.used() + 15) & !15;
        let mut code = c.code;
        for s in &c.exit_sites {
            let rel = self.exit_off as i64 - (base + s + 4) as i64;
            code[*s..s + 4].copy_from_slice(&(rel as i32).to_le_bytes());
        }
        if let Some(dir) = dump_dir() {
            // Debugging aid: one raw x86-64 file per block, for `objdump -D -b binary -mi386:x86-64`,
            // named by guest pc and code-buffer offset (what `perf report` shows for the memfd).
            let path =
                std::path::Path::new(&dir).join(format!("tb-{:x}-at-{base:x}.bin", b.guest_pc));
            let ir = path.with_extension("ir");
            if let Err(e) =
                std::fs::write(&path, &code).and_then(|_| std::fs::write(&ir, b.to_string()))
            {
                log::warn!("cannot dump code to {}: {e}", path.display());
            }
        }
        let appended = self.buf.append(&code);
        codegen::recycle(code);
        let Some(off) = appended else {
            // Full. If it is full although empty, this block alone is too big: leave it to
            // the interpreter instead of flushing forever.
            return self.buf.used() == self.base_used;
        };
        debug_assert_eq!(off, base);
        self.starts.push((off, idx));
        let first_new = self.fp_traps.len();
        for &(insn, stub) in &c.fp_traps {
            let at = |o: usize| self.buf.exec_addr(off + o);
            self.fp_traps.push((at(insn), at(stub)));
        }
        // Blocks are appended at increasing addresses, so this is the exception.
        if !self.fp_traps[first_new.saturating_sub(1)..].is_sorted_by_key(|e| e.0) {
            self.fp_traps.sort_unstable_by_key(|e| e.0);
        }
        self.tbs[idx] = Some(Box::new(NTb {
            entry: off,
            pc: b.guest_pc,
            gotos: c
                .gotos
                .into_iter()
                .map(|(slot, site)| (slot, (site + off) as u32))
                .collect(),
            chained_to: [None; MAX_SLOTS],
            incoming: Vec::new(),
            memops: c.memops.into_boxed_slice(),
            memop_regs: c.memop_regs.into_boxed_slice(),
        }));
        true
    }

    /// Drops all code (the caller drops all blocks too).
    pub fn flush(&mut self) {
        self.buf.reset(self.base_used);
        self.tbs.clear();
        self.starts.clear();
        self.fp_traps.clear();
        self.clear_jcache();
    }

    /// Empties the indirect-jump cache (system mode: the guest's mappings changed).
    pub fn clear_jump_cache(&mut self) {
        self.clear_jcache();
    }

    fn clear_jcache(&mut self) {
        for e in self.ctx.jcache.iter_mut() {
            e.pc = JC_EMPTY;
        }
    }

    /// Makes indirect jumps to `pc` from blocks with jump tag `tag` go to block `idx`.
    pub fn set_jcache(&mut self, pc: u64, tag: u64, idx: usize) {
        if let Some(Some(t)) = self.tbs.get(idx) {
            let e = JEntry {
                pc: jc_key(pc, tag),
                code: self.buf.exec_addr(t.entry) as u64,
            };
            self.ctx.jcache[((pc >> 1) as usize) & (JC_SIZE - 1)] = e;
        }
    }

    /// Patches `from`'s jump in `slot` to go straight to `to`.
    pub fn chain(&mut self, from: usize, slot: u8, to: usize) {
        let slot = slot as usize % MAX_SLOTS;
        let (Some(Some(f)), Some(Some(_))) = (self.tbs.get(from), self.tbs.get(to)) else {
            return;
        };
        if f.sites(slot).next().is_none() || f.chained_to[slot].is_some() {
            return;
        }
        let (Ok(from32), Ok(to32)) = (u32::try_from(from), u32::try_from(to)) else {
            return;
        };
        if !self.writable() {
            return;
        }
        let (Some(Some(f)), Some(Some(t))) = (self.tbs.get(from), self.tbs.get(to)) else {
            return;
        };
        for site in f.sites(slot) {
            let rel = t.entry as i64 - (site as i64 + 4);
            self.buf.patch_u32(site, rel as i32 as u32);
        }
        if let Some(Some(f)) = self.tbs.get_mut(from) {
            f.chained_to[slot] = Some(to32);
        }
        if let Some(Some(t)) = self.tbs.get_mut(to) {
            t.incoming.push((from32, slot as u8));
        }
    }

    /// Unlinks and forgets block `idx`.
    pub fn invalidate_tb(&mut self, idx: usize) {
        let Some(Some(tb)) = self.tbs.get_mut(idx).map(Option::take) else {
            return;
        };
        // Without a writable buffer the run loop drops this whole backend before it runs
        // code again, so the stale chains below are never followed.
        let patch = !tb.incoming.is_empty() && self.writable();
        for (from, slot) in tb.incoming {
            if let Some(Some(f)) = self.tbs.get_mut(from as usize) {
                if f.chained_to[slot as usize].map(|t| t as usize) == Some(idx) {
                    f.chained_to[slot as usize] = None;
                    for site in f.sites(slot as usize) {
                        if patch {
                            // Back to falling through into the block's own exit path.
                            self.buf.patch_u32(site, 0);
                        }
                    }
                }
            }
        }
        for to in tb.chained_to.into_iter().flatten() {
            if let Some(Some(t)) = self.tbs.get_mut(to as usize) {
                t.incoming.retain(|&(f, _)| f as usize != idx);
            }
        }
        self.clear_jcache();
    }

    /// Runs generated code starting at block `idx` until it leaves the chained world.
    pub fn execute(&mut self, idx: usize, env: EnvPtr, pc_off: u32) -> NativeExit {
        let Some(Some(tb)) = self.tbs.get(idx) else {
            return NativeExit::Retry;
        };
        let code = self.buf.exec_addr(tb.entry);
        // SAFETY: the trampoline at `entry_off` was emitted by `new` with the System V
        // signature `EntryFn`; `code` is the entry of a block compiled for this backend; `env`
        // is the live guest state the block was compiled against; the context box outlives
        // the call. Generated code only touches env, ctx, its own stack frame and guest
        // memory (bounds-checked against the reservation; faults come back via the stub).
        let traps = fptrap::activate(&self.fp_traps);
        let r = unsafe {
            let f: EntryFn = std::mem::transmute(self.buf.exec_addr(self.entry_off));
            f(env.as_ptr(), code, &mut *self.ctx)
        };
        drop(traps);
        let exit = self.decode_exit(r, env, pc_off);
        if let Some(f) = self.inexact {
            if self.ctx.exit_mxcsr as u8 & inexact::MXCSR_PE != 0 {
                env.write(f.offset, env.read(f.offset) | f.mask as u64);
                self.ctx.exit_mxcsr = 0;
            }
        }
        exit
    }

    /// What the return value `r` of generated code means; completes the guest state of a
    /// fault.
    fn decode_exit(&mut self, r: u64, env: EnvPtr, pc_off: u32) -> NativeExit {
        let payload = r >> 8;
        match r & 0xff {
            k if (K_CHAIN..K_CHAIN + MAX_SLOTS as u64).contains(&k) => NativeExit::Unchained {
                from: payload as usize,
                slot: (k - K_CHAIN) as u8,
                pc: env.read(pc_off),
            },
            K_INDIRECT => NativeExit::Indirect {
                pc: env.read(pc_off),
            },
            K_CODE => NativeExit::Block(BlockExit::Code(payload as u32)),
            K_RANGE => NativeExit::Block(BlockExit::Fault(HostFault {
                addr: self.ctx.fault_addr,
                write: self.ctx.fault_write != 0,
            })),
            K_SIGFAULT => {
                let (host_addr, rip, _) = hostmem::last_code_fault();
                let off = rip.wrapping_sub(self.buf.exec_addr(0));
                let pos = self.starts.partition_point(|&(s, _)| s <= off);
                let mut write = false;
                if pos > 0 {
                    let (start, i) = self.starts[pos - 1];
                    if let Some(Some(t)) = self.tbs.get(i) {
                        let site = t.memops.iter().position(|m| m.off as usize + start == off);
                        if let Some(i) = site {
                            let m = t.memops[i];
                            // Complete the guest state with registers that were only cached.
                            let regs = hostmem::last_code_fault_regs();
                            let first = i.checked_sub(1).map_or(0, |p| t.memops[p].regs_end);
                            let dirty = t.memop_regs.get(first as usize..m.regs_end as usize);
                            for &(env_off, r) in dirty.unwrap_or_default() {
                                env.write(env_off, regs[r as usize % regs.len()]);
                            }
                            env.write(pc_off, m.pc);
                            write = m.write;
                        } else {
                            env.write(pc_off, t.pc);
                        }
                    }
                }
                let addr = (host_addr as u64).wrapping_sub(self.mem.base as u64);
                NativeExit::Block(BlockExit::Fault(HostFault { addr, write }))
            }
            _ => NativeExit::Retry,
        }
    }
}

fn mem_at(base: R, disp: i32) -> Mem {
    mem(base, disp)
}

impl Drop for Native {
    fn drop(&mut self) {
        if let Some(r) = self.region {
            hostmem::unregister_code_region(r);
        }
    }
}

/// `TANDEM_DUMP_CODE`, read once (looking it up per block would cost a scan of the
/// environment under its lock for every translation).
fn dump_dir() -> Option<&'static std::ffi::OsStr> {
    static DIR: std::sync::OnceLock<Option<std::ffi::OsString>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| std::env::var_os("TANDEM_DUMP_CODE"))
        .as_deref()
}
