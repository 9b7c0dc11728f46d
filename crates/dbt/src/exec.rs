//! The run loop: translation-block cache keyed by guest pc, chaining, invalidation, SMC,
//! and dispatch to the selected backend.

use crate::env::EnvPtr;
use crate::forkwarm;
use crate::hostmem::{GuestMem, HostFault};
use crate::interp::{self, BlockExit};
use crate::inthash::IntMap;
use crate::ir::{Block, Cond, GlobalDef, MemSize, Op, Ty, Val, MAX_SLOTS};
use crate::native::{Native, NativeExit};
use crate::opt;
use crate::smc;

mod system;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;
pub use system::{CodeLoc, SystemCode};

/// Exit code (reserved by dbt) of a self-checking block whose guest code changed.
pub const EXIT_STALE: u32 = u32::MAX - 1;

/// Prepends a comparison of the guest code bytes with those the block was translated from,
/// leaving through `EXIT_STALE` when they differ (blocks from SMC-hot pages).
fn add_code_check(b: &mut Block, fetched: &[(u64, u16)]) {
    let stale = b.new_label();
    let mut pre = Vec::new();
    for &(addr, v) in fetched {
        let t = b.new_temp(Ty::I64);
        pre.push(Op::Load {
            dst: t,
            addr: Val::C(addr),
            disp: 0,
            size: MemSize::B2,
            signed: false,
        });
        pre.push(Op::BrCond {
            cond: Cond::Ne,
            ty: Ty::I64,
            a: Val::T(t),
            b: Val::C(v as u64),
            label: stale,
        });
    }
    pre.append(&mut b.ops);
    b.ops = pre;
    b.push(Op::Label(stale));
    b.push(Op::Exit {
        code: EXIT_STALE,
        pc: b.guest_pc,
    });
}

/// Runs in the interpreter before a block is compiled while the code buffer is frozen after
/// a fork and only a few blocks are due (see `Exec::promote`).
const FROZEN_COMPILE_AFTER: u32 = 100;

/// Which backend executes translated blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// x86-64 code generation.
    Native,
    /// The portable IR interpreter.
    Interp,
}

/// What an ISA front end provides.
pub trait Frontend {
    /// Guest registers the IR may keep in host registers (offsets into the env).
    fn globals(&self) -> &[GlobalDef];
    /// Env offset of the guest pc.
    fn pc_offset(&self) -> u32;
    /// Translates the block at `pc` (at most `max_insns` instructions). `fetch` reads a 16-bit
    /// parcel of guest code; a fault on the first instruction is returned as an error, a fault
    /// later just ends the block.
    fn translate(
        &self,
        pc: u64,
        max_insns: u32,
        fetch: &mut dyn FnMut(u64) -> Result<u16, HostFault>,
    ) -> Result<Block, HostFault>;
    /// Full-system mode: translates under the mode `flags` of [`CodeLoc`].
    fn translate_in_mode(
        &self,
        pc: u64,
        _flags: u64,
        max_insns: u32,
        fetch: &mut dyn FnMut(u64) -> Result<u16, HostFault>,
    ) -> Result<Block, HostFault> {
        self.translate(pc, max_insns, fetch)
    }
}

/// Says whether the guest page at an address may be executed (`ExecConfig::exec_check`) or
/// written (`ExecConfig::write_check`).
pub type ExecCheck = Arc<dyn Fn(u64) -> bool + Send + Sync>;

#[derive(Clone)]
pub struct ExecConfig {
    pub backend: Backend,
    pub mem: GuestMem,
    pub max_insns: u32,
    /// Whether to watch translated pages for self-modifying code.
    pub smc: bool,
    /// Size of the code buffer for the native backend.
    pub code_size: usize,
    /// Execute permission of guest pages (None: everything readable is executable).
    pub exec_check: Option<ExecCheck>,
    /// Write permission of guest pages, when the embedder knows it (None: the SMC watch
    /// probes the host mapping, which costs a signal for each read-only page).
    pub write_check: Option<ExecCheck>,
    /// Runs of a block in the IR interpreter before the native backend compiles it (0:
    /// compile as soon as it is translated). Code that runs once or twice, such as a
    /// program's start-up, then costs no code generation.
    pub compile_after: u32,
    /// Where the guest accrues inexact, which lets the native backend inline FP arithmetic
    /// (see [`crate::ir::InexactFlag`]).
    pub inexact_flag: Option<crate::ir::InexactFlag>,
    /// Full-system mode (a soft MMU between the guest and its code); None in user mode.
    pub system: Option<Arc<dyn SystemCode>>,
}

impl std::fmt::Debug for ExecConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecConfig")
            .field("backend", &self.backend)
            .field("mem", &self.mem)
            .field("max_insns", &self.max_insns)
            .field("smc", &self.smc)
            .field("code_size", &self.code_size)
            .field("exec_check", &self.exec_check.is_some())
            .field("write_check", &self.write_check.is_some())
            .field("compile_after", &self.compile_after)
            .field("inexact_flag", &self.inexact_flag)
            .field("system", &self.system.is_some())
            .finish()
    }
}

/// Reads a 16-bit code parcel, honouring the execute-permission check once per page.
fn fetch_parcel(
    mem: &GuestMem,
    check: &Option<ExecCheck>,
    checked: &mut Option<u64>,
    a: u64,
) -> Result<u16, HostFault> {
    if let Some(c) = check {
        let page = a & !(smc::PAGE - 1);
        if *checked != Some(page) {
            if !c(page) {
                return Err(HostFault {
                    addr: a,
                    write: false,
                });
            }
            *checked = Some(page);
        }
    }
    mem.load(a, 2).map(|v| v as u16)
}

/// How `run` stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunExit {
    Code(u32),
    Fault { addr: u64, write: bool, exec: bool },
    Interrupted,
}

/// Plain counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub blocks_translated: u64,
    pub guest_insns_translated: u64,
    /// Blocks compiled to host code (the rest run on the interpreter).
    pub native_blocks: u64,
    pub translate_ns: u64,
    pub chain_hits: u64,
    /// Direct jumps patched to go block-to-block in native code.
    pub chains_made: u64,
    pub indirect_lookups: u64,
    pub invalidated_blocks: u64,
    pub smc_faults: u64,
}

/// What the interpreter needs to run a block: its IR, where its labels are, and the blocks
/// its exits led to last time (interpreter-side chaining, by slot; u32 as a process makes
/// far fewer blocks, and the cache only ever saves a lookup).
pub(crate) struct KeptIr {
    pub block: Block,
    pub labels: Vec<usize>,
    pub next: [Option<u32>; MAX_SLOTS],
}

impl KeptIr {
    /// Keeps `block` (trimmed to size) for the interpreter.
    pub fn new(mut block: Block) -> Box<KeptIr> {
        block.compact();
        let labels = interp::label_table(&block);
        Box::new(KeptIr {
            block,
            labels,
            next: [None; MAX_SLOTS],
        })
    }

    /// The memory it takes.
    fn bytes(&self) -> usize {
        std::mem::size_of::<KeptIr>()
            + self.block.ops.capacity() * std::mem::size_of::<crate::ir::Op>()
            + self.block.temps.capacity()
            + self.labels.capacity() * std::mem::size_of::<usize>()
    }
}

pub(crate) struct Tb {
    pub pc: u64,
    /// The guest code it was translated from: `[lo, lo + len)`.
    pub lo: u64,
    pub len: u64,
    /// The IR, its label table and chaining cache, kept only for blocks the interpreter runs
    /// (the native backend's blocks drop theirs: hundreds of translated blocks' IR would
    /// otherwise stay resident for nothing). Boxed: most blocks have none, and the table of
    /// blocks stays dense.
    pub ir: Option<Box<KeptIr>>,
    /// Interpreted runs so far (see `ExecConfig::compile_after`).
    pub runs: u32,
    pub valid: bool,
    /// Kept IR: once moved to the back of the queue instead of dropped (see `limit_kept_ir`).
    pub requeued: bool,
    /// What only full-system blocks have (boxed: a process makes tens of thousands of blocks
    /// and the table stays small without it).
    pub sys: Option<Box<SysTb>>,
    /// See `Block::jump_tag`.
    pub jump_tag: u64,
}

// Checked at compile time: every translated block has one, kept until a flush.
const _: () = assert!(
    std::mem::size_of::<Tb>() <= 56,
    "Tb grew: box what few blocks use"
);

pub(crate) struct SysTb {
    /// The block's key in `Exec::by_loc`.
    pub loc_key: (u64, u64),
    /// A first instruction straddling into the next page, whose (virtual, physical)
    /// address is checked on every entry (such blocks are never chained into).
    pub page2: Option<(u64, u64)>,
}

impl Tb {
    pub fn loc_key(&self) -> Option<(u64, u64)> {
        self.sys.as_ref().map(|s| s.loc_key)
    }
    pub fn page2(&self) -> Option<(u64, u64)> {
        self.sys.as_ref().and_then(|s| s.page2)
    }
}

/// Outcome of [`Exec::promote`].
enum Promotion {
    Native,
    Interp,
    /// The code buffer filled up and every block was dropped: look the pc up again.
    Flushed,
}

/// Handle that makes `run` return `Interrupted` at the next block boundary.
#[derive(Clone, Debug, Default)]
pub struct ExitRequest(pub(crate) Arc<AtomicU32>);

impl ExitRequest {
    pub fn request(&self) {
        self.0.fetch_or(1, Ordering::SeqCst);
    }
}

pub struct Exec {
    cfg: ExecConfig,
    tbs: Vec<Tb>,
    by_pc: IntMap<u64, usize>,
    /// System mode: blocks by (virtual pc, physical pc | flags << 56).
    by_loc: IntMap<(u64, u64), usize>,
    /// System mode: the `SystemCode::epoch` the indirect-jump cache was filled in.
    epoch: u64,
    by_page: IntMap<u64, Vec<usize>>,
    native: Option<Native>,
    exit_req: ExitRequest,
    seen_gen: u64,
    flushes: u64,
    scratch: Vec<u64>,
    /// Translations forked children report back (see `forkwarm`).
    warm: Option<Warm>,
    /// Blocks holding IR for the interpreter, oldest first, and the bytes it takes: see
    /// [`KEPT_IR_LIMIT`].
    kept_ir: std::collections::VecDeque<usize>,
    kept_ir_bytes: usize,
    pub stats: Stats,
}

/// Bytes of IR kept for interpreted blocks before the oldest are dropped (a dropped block
/// is translated again if it ever runs again). A program's start-up runs thousands of
/// blocks once or twice: Python's kept some 26 MB of IR for them, a third of its memory and
/// 40% of its page faults, while blocks that run on are compiled within three runs. 2 MiB
/// holds some 50,000 ops; Python's start-up then translates 10% of its blocks twice.
const KEPT_IR_LIMIT: usize = 2 << 20;

/// This engine's side of the `forkwarm` ring.
struct Warm {
    ring: forkwarm::Ring,
    /// We made the ring (before our first fork) and read it; else we are a forked child
    /// (or a child's child) and write to it.
    owner: bool,
    /// Owner: entries read so far.
    read: u64,
    /// Child: translations it may still report.
    reports_left: u32,
}

impl Exec {
    pub fn new(cfg: ExecConfig) -> std::io::Result<Exec> {
        let exit_req = ExitRequest::default();
        smc::register_engine(&exit_req.0);
        let native = match cfg.backend {
            Backend::Native => Some(Native::new(
                cfg.code_size,
                cfg.mem,
                exit_req.0.clone(),
                cfg.inexact_flag,
            )?),
            Backend::Interp => None,
        };
        Ok(Exec {
            cfg,
            tbs: Vec::new(),
            by_pc: IntMap::default(),
            by_loc: IntMap::default(),
            epoch: 0,
            by_page: IntMap::default(),
            native,
            exit_req,
            seen_gen: smc::generation(),
            flushes: 0,
            scratch: Vec::new(),
            warm: None,
            kept_ir: std::collections::VecDeque::new(),
            kept_ir_bytes: 0,
            stats: Stats::default(),
        })
    }

    pub fn exit_request(&self) -> ExitRequest {
        self.exit_req.clone()
    }

    pub fn mem(&self) -> &GuestMem {
        &self.cfg.mem
    }

    /// Drops translations overlapping `[addr, addr+len)` and stops watching those pages.
    pub fn invalidate(&mut self, addr: u64, len: u64) {
        smc::release(&self.cfg.mem, addr, len);
        self.drop_range(addr, len);
    }

    fn drop_range(&mut self, addr: u64, len: u64) {
        if len == 0 {
            return;
        }
        let end = addr.saturating_add(len);
        let first = addr / smc::PAGE;
        let last = end.saturating_sub(1) / smc::PAGE;
        let pages: Vec<u64> = if last - first < self.by_page.len() as u64 {
            (first..=last)
                .filter(|p| self.by_page.contains_key(p))
                .collect()
        } else {
            self.by_page
                .keys()
                .copied()
                .filter(|p| *p >= first && *p <= last)
                .collect()
        };
        for p in pages {
            let idxs = self.by_page.remove(&p).unwrap_or_default();
            for i in idxs {
                let tb = &mut self.tbs[i];
                if tb.valid && tb.lo < end && tb.lo + tb.len > addr {
                    tb.valid = false;
                    self.stats.invalidated_blocks += 1;
                    if self.by_pc.get(&tb.pc) == Some(&i) {
                        self.by_pc.remove(&tb.pc);
                    }
                    if let Some(k) = tb.loc_key() {
                        if self.by_loc.get(&k) == Some(&i) {
                            self.by_loc.remove(&k);
                        }
                    }
                    if let Some(n) = &mut self.native {
                        n.invalidate_tb(i);
                    }
                } else if tb.valid {
                    self.by_page.entry(p).or_default().push(i);
                }
            }
        }
        // Interpreter successor links may point at dropped blocks; they are checked for
        // validity when followed.
    }

    /// Whether block `idx` runs natively, compiling it first once it has been interpreted
    /// `compile_after` times.
    fn promote(&mut self, idx: usize, pc_off: u32) -> Promotion {
        let Some(n) = self.native.as_mut() else {
            return Promotion::Interp;
        };
        if n.has(idx) {
            return Promotion::Native;
        }
        let tb = &mut self.tbs[idx];
        tb.runs = tb.runs.saturating_add(1);
        // (A block the code generator gave up on stays interpreted: runs is u32::MAX.)
        let after = self.cfg.compile_after;
        if tb.runs <= after || tb.runs == u32::MAX {
            return Promotion::Interp;
        }
        // While the code buffer may be shared with a forked process, compiling means copying
        // it first (see `Exec::prepare_fork`): a child that soon execs or exits should never
        // pay for that. So the first blocks that become due stay interpreted until they are
        // clearly hot; once more are due the process is running code of its own, and
        // compiles (and copies the buffer) as usual.
        if n.is_frozen()
            && tb.runs <= FROZEN_COMPILE_AFTER
            && (tb.runs > after.saturating_add(1) || n.defer_compile())
        {
            return Promotion::Interp;
        }
        let Some(mut ir) = tb.ir.take() else {
            return Promotion::Interp;
        };
        self.kept_ir_bytes = self.kept_ir_bytes.saturating_sub(ir.bytes());
        let t0 = Instant::now();
        // Interpreted blocks run unoptimised (see `optimize_if_due`): optimising pays only here.
        opt::optimize(&mut ir.block);
        let compiled = n.compile(idx, &ir.block, pc_off);
        self.stats.translate_ns += t0.elapsed().as_nanos() as u64;
        if !compiled {
            // Code buffer full: start over with an empty cache.
            self.flush_all();
            return Promotion::Flushed;
        }
        if !n.has(idx) {
            tb.runs = u32::MAX;
            ir.labels = interp::label_table(&ir.block);
            self.kept_ir_bytes += ir.bytes();
            tb.ir = Some(ir);
            return Promotion::Interp;
        }
        self.stats.native_blocks += 1;
        Promotion::Native
    }

    /// Optimises a newly translated block if it is compiled at once or never. One that will
    /// be interpreted only until it is compiled (`compile_after` runs, and most blocks never
    /// run more often) is not worth it: the optimiser costs more than it saves in a couple
    /// of interpreted runs. `promote` optimises it then.
    fn optimize_if_due(&self, block: &mut Block) {
        if self.cfg.compile_after == 0 || self.native.is_none() {
            opt::optimize(block);
        }
    }

    /// Drops every translation (used when the code buffer is full).
    fn flush_all(&mut self) {
        self.flushes += 1;
        self.stats.invalidated_blocks += self.tbs.iter().filter(|t| t.valid).count() as u64;
        self.tbs.clear();
        self.by_pc.clear();
        self.by_loc.clear();
        self.by_page.clear();
        self.kept_ir.clear();
        self.kept_ir_bytes = 0;
        if let Some(n) = &mut self.native {
            n.flush();
        }
    }

    /// Applies invalidations other engines published since we last looked.
    fn sync_generation(&mut self) {
        let g = smc::generation();
        if g == self.seen_gen {
            return;
        }
        match smc::invalidations_since(self.seen_gen) {
            Some(ranges) => {
                for (host, len) in ranges {
                    let a = (host as u64).wrapping_sub(self.cfg.mem.base as u64);
                    if a < self.cfg.mem.limit {
                        self.drop_range(a, len);
                    }
                }
            }
            None => self.drop_range(0, u64::MAX),
        }
        self.seen_gen = g;
    }

    fn translate(
        &mut self,
        fe: &dyn Frontend,
        pc: u64,
        max: u32,
        watch: bool,
    ) -> Result<usize, HostFault> {
        let t0 = Instant::now();
        let mem = self.cfg.mem;
        let spans_hot = |from: u64, len: u64| {
            let mut p = from & !(smc::PAGE - 1);
            while p < from.saturating_add(len.max(1)) {
                if smc::is_hot(&mem, p) {
                    return true;
                }
                p += smc::PAGE;
            }
            false
        };
        let mut hot = watch && self.cfg.smc && spans_hot(pc, 1);
        let (mut block, fetched) = loop {
            // Only a self-checking block needs the parcels it was made from.
            let mut fetched = Vec::new();
            let check = &self.cfg.exec_check;
            let mut checked = None;
            let mut fetch = |a: u64| {
                let v = fetch_parcel(&mem, check, &mut checked, a)?;
                if hot {
                    fetched.push((a, v));
                }
                Ok(v)
            };
            let b = fe
                .translate(pc, if hot { 1 } else { max }, &mut fetch)
                .map_err(|f| HostFault { write: false, ..f })?;
            if !hot && watch && self.cfg.smc && spans_hot(b.guest_lo, b.guest_len) {
                hot = true;
                continue;
            }
            break (b, fetched);
        };
        if hot {
            add_code_check(&mut block, &fetched);
        }
        self.optimize_if_due(&mut block);
        debug_assert_eq!(block.verify(), Ok(()));
        let (lo, len) = (block.guest_lo, block.guest_len.max(1));
        if watch && self.cfg.smc {
            let mut p = lo & !(smc::PAGE - 1);
            while p < lo + len {
                let writable = self.cfg.write_check.as_ref().map(|c| c(p));
                smc::watch_page(&mem, p, writable);
                p += smc::PAGE;
            }
        }
        let idx = self.tbs.len();
        self.stats.blocks_translated += 1;
        self.stats.guest_insns_translated += block.ninsns as u64;
        if let Some(n) = self.native.as_mut().filter(|_| self.cfg.compile_after == 0) {
            if !n.compile(idx, &block, fe.pc_offset()) {
                // Code buffer full: start over with an empty cache.
                self.flush_all();
                return self.translate(fe, pc, max, watch);
            }
            if n.has(idx) {
                self.stats.native_blocks += 1;
            }
        }
        let native = self.native.as_ref().is_some_and(|n| n.has(idx));
        self.tbs.push(Tb {
            pc,
            lo,
            len,
            ir: (!native).then(|| KeptIr::new(block)),
            runs: 0,
            valid: true,
            requeued: false,
            sys: None,
            jump_tag: 0,
        });
        if watch {
            if let Some(w) = self
                .warm
                .as_mut()
                .filter(|w| !w.owner && w.reports_left > 0)
            {
                w.ring.push(pc);
                w.reports_left -= 1;
            }
            self.by_pc.insert(pc, idx);
            let mut p = lo / smc::PAGE;
            while p * smc::PAGE < lo + len {
                self.by_page.entry(p).or_default().push(idx);
                p += 1;
            }
        } else {
            self.tbs[idx].valid = false;
        }
        if let Some(ir) = self.tbs[idx].ir.as_deref() {
            self.kept_ir_bytes += ir.bytes();
            self.kept_ir.push_back(idx);
            self.limit_kept_ir(idx);
        }
        self.stats.translate_ns += t0.elapsed().as_nanos() as u64;
        Ok(idx)
    }

    /// Drops the IR of the oldest interpreted blocks (never `newest`) while the kept IR
    /// is over [`KEPT_IR_LIMIT`]; those blocks are forgotten, so a later run translates
    /// them again.
    fn limit_kept_ir(&mut self, newest: usize) {
        while self.kept_ir_bytes > KEPT_IR_LIMIT {
            let Some(i) = self.kept_ir.pop_front() else {
                break;
            };
            if i == newest {
                self.kept_ir.push_back(i);
                break;
            }
            let tb = &mut self.tbs[i];
            if tb.ir.is_some() && tb.runs >= 2 && !tb.requeued {
                // Run again since it was made: likely to run on (it compiles on its next
                // run). A second chance keeps it from being translated all over again.
                tb.requeued = true;
                self.kept_ir.push_back(i);
                continue;
            }
            let Some(ir) = tb.ir.take() else {
                continue; // compiled since
            };
            self.kept_ir_bytes = self.kept_ir_bytes.saturating_sub(ir.bytes());
            let tb = &mut self.tbs[i];
            if tb.valid {
                tb.valid = false;
                if self.by_pc.get(&tb.pc) == Some(&i) {
                    self.by_pc.remove(&tb.pc);
                }
                if let Some(k) = tb.loc_key() {
                    if self.by_loc.get(&k) == Some(&i) {
                        self.by_loc.remove(&k);
                    }
                }
            }
        }
    }

    fn lookup(&mut self, fe: &dyn Frontend, env: EnvPtr, pc: u64) -> Result<usize, HostFault> {
        if let Some(sys) = self.cfg.system.clone() {
            return self.lookup_system(fe, &*sys, env, pc);
        }
        match self.by_pc.get(&pc) {
            Some(&i) => Ok(i),
            None => self.translate(fe, pc, self.cfg.max_insns, true),
        }
    }

    /// Runs guest code from the env's pc until an exit code, a fault or an exit request.
    pub fn run(&mut self, fe: &dyn Frontend, env: EnvPtr) -> RunExit {
        let pc_off = fe.pc_offset();
        if self.native.as_ref().is_some_and(|n| n.is_inherited()) {
            self.renew_native();
        }
        let mut next: Option<usize> = None;
        loop {
            if self.native.as_ref().is_some_and(|n| n.is_broken()) {
                self.renew_native();
                next = None;
            }
            // Bit 0: exit requested by user mode; KICK: invalidations were published.
            if self.exit_req.0.swap(0, Ordering::SeqCst) & 1 != 0 {
                return RunExit::Interrupted;
            }
            self.sync_generation();
            self.check_epoch(env);
            let pc = env.read(pc_off);
            let idx = match next.take() {
                Some(i) if self.tbs[i].valid => {
                    self.stats.chain_hits += 1;
                    i
                }
                _ => match self.lookup(fe, env, pc) {
                    Ok(i) => i,
                    Err(f) => {
                        return RunExit::Fault {
                            addr: f.addr,
                            write: false,
                            exec: true,
                        }
                    }
                },
            };
            let native_ok = match self.promote(idx, pc_off) {
                Promotion::Native => true,
                Promotion::Interp => false,
                Promotion::Flushed => continue,
            };
            let exit = if native_ok {
                let n = self.native.as_mut().expect("native backend");
                match n.execute(idx, env, pc_off) {
                    NativeExit::Block(e) => e,
                    NativeExit::Retry => continue,
                    NativeExit::Unchained { from, slot, pc } => {
                        let flushes = self.flushes;
                        let j = match self.lookup(fe, env, pc) {
                            Ok(j) => j,
                            Err(f) => {
                                return RunExit::Fault {
                                    addr: f.addr,
                                    write: false,
                                    exec: true,
                                }
                            }
                        };
                        let may_chain = flushes == self.flushes
                            && self.tbs[from].valid
                            && self.tbs[j].valid
                            && self.may_chain(from, j);
                        if let Some(n) = &mut self.native {
                            // Patching a shared code buffer means copying it first: leave
                            // the first few jumps unchained (see `FROZEN_CHAIN_DEFER`).
                            if may_chain && n.has(j) && !n.defer_write() {
                                n.chain(from, slot, j);
                                self.stats.chains_made += 1;
                            }
                        }
                        next = Some(j);
                        continue;
                    }
                    NativeExit::Indirect { pc } => {
                        self.stats.indirect_lookups += 1;
                        let j = match self.lookup(fe, env, pc) {
                            Ok(j) => j,
                            Err(f) => {
                                return RunExit::Fault {
                                    addr: f.addr,
                                    write: false,
                                    exec: true,
                                }
                            }
                        };
                        let tag = self.tbs[j].jump_tag;
                        if let Some(n) = self
                            .native
                            .as_mut()
                            .filter(|_| self.tbs[j].page2().is_none())
                        {
                            n.set_jcache(pc, tag, j);
                        }
                        next = Some(j);
                        continue;
                    }
                }
            } else {
                let Some(KeptIr { block, labels, .. }) = self.tbs[idx].ir.as_deref() else {
                    // Not reachable (blocks without native code keep their IR); should it
                    // happen, translating the block again is always correct.
                    let (p, l) = (self.tbs[idx].lo, self.tbs[idx].len);
                    self.drop_range(p, l);
                    continue;
                };
                interp::run_block_with(block, labels, env, &self.cfg.mem, pc_off, &mut self.scratch)
            };
            match exit {
                BlockExit::Chain { slot, pc } => {
                    let slot = slot as usize % MAX_SLOTS;
                    let cached = self.tbs[idx].ir.as_ref().and_then(|ir| ir.next[slot]);
                    match cached {
                        Some(j) if self.tbs[j as usize].valid && self.tbs[j as usize].pc == pc => {
                            next = Some(j as usize)
                        }
                        _ => {
                            let flushes = self.flushes;
                            if let Ok(j) = self.lookup(fe, env, pc) {
                                // (A flush while translating the target took `idx` away.)
                                if flushes == self.flushes
                                    && self.tbs[idx].valid
                                    && self.tbs[j].valid
                                    && self.may_chain(idx, j)
                                {
                                    if let Some(ir) = self.tbs[idx].ir.as_mut() {
                                        ir.next[slot] = u32::try_from(j).ok();
                                    }
                                }
                                next = Some(j);
                            }
                        }
                    }
                }
                BlockExit::Indirect { .. } => self.stats.indirect_lookups += 1,
                BlockExit::Code(EXIT_STALE) => {
                    // A self-checking block found its code changed: drop it and retranslate.
                    let tb = &self.tbs[idx];
                    let (p, l) = (tb.lo, tb.len);
                    self.drop_range(p, l);
                }
                BlockExit::Code(c) => return RunExit::Code(c),
                BlockExit::Fault(f) => {
                    if f.write && self.cfg.smc && smc::take_write_fault(&self.cfg.mem, f.addr) {
                        self.stats.smc_faults += 1;
                        let page = f.addr & !(smc::PAGE - 1);
                        self.drop_range(page, smc::PAGE);
                        self.seen_gen = self.seen_gen.max(smc::generation());
                        // Execute the faulting instruction alone, from a translation that does
                        // not re-protect the page, then carry on normally.
                        if let Some(r) = self.step_one(fe, env) {
                            return r;
                        }
                        continue;
                    }
                    return RunExit::Fault {
                        addr: f.addr,
                        write: f.write,
                        exec: false,
                    };
                }
            }
        }
    }

    /// Starts over with an empty cache and a new code buffer: the old buffer cannot be used
    /// (we are a child forked without [`Exec::prepare_fork`], or copying it after a fork
    /// failed).
    fn renew_native(&mut self) {
        self.flush_all();
        self.native = None;
        match Native::new(
            self.cfg.code_size,
            self.cfg.mem,
            self.exit_req.0.clone(),
            self.cfg.inexact_flag,
        ) {
            Ok(n) => self.native = Some(n),
            Err(e) => log::warn!("native backend unavailable after fork ({e}); interpreting"),
        }
    }

    /// Call just before fork() on the forking thread: the child keeps every translation
    /// (blocks, chains, the jump cache) and so does the parent. Nothing is copied now; the
    /// code buffer is copied by whichever process first needs to write to it (see
    /// `codebuf`), which a child that soon execs or exits never does. First, the blocks
    /// earlier children reported (see `forkwarm`) are translated, for this child to inherit,
    /// those at pcs `worth` accepts.
    pub fn prepare_fork(&mut self, fe: &dyn Frontend, worth: &dyn Fn(u64) -> bool) {
        if self.cfg.system.is_none() {
            match &mut self.warm {
                None => {
                    self.warm = forkwarm::Ring::new().map(|ring| Warm {
                        ring,
                        owner: true,
                        read: 0,
                        reports_left: 0,
                    })
                }
                Some(w) if w.owner => {
                    let (pcs, head) = w.ring.read_since(w.read);
                    w.read = head;
                    for pc in pcs {
                        if !self.by_pc.contains_key(&pc) && worth(pc) {
                            // A pc that cannot be fetched here is just not translated.
                            let _ = self.translate(fe, pc, self.cfg.max_insns, true);
                        }
                    }
                }
                // A child's children report to the process that made the ring.
                Some(_) => {}
            }
        }
        if let Some(n) = &mut self.native {
            n.freeze();
        }
    }

    /// Call in the child after fork(): zeroes the counters (a child reports its own work)
    /// and reports this process's translations to the parent from now on.
    pub fn after_fork_child(&mut self) {
        self.stats = Stats::default();
        if let Some(w) = &mut self.warm {
            w.owner = false;
            w.reports_left = forkwarm::CHILD_REPORTS;
        }
    }

    /// Drops every translation (e.g. after breakpoints changed).
    pub fn flush(&mut self) {
        self.flush_all();
    }

    /// Interprets exactly one guest instruction at the env's pc without caching it.
    fn step_one(&mut self, fe: &dyn Frontend, env: EnvPtr) -> Option<RunExit> {
        let pc_off = fe.pc_offset();
        let pc = env.read(pc_off);
        let mem = self.cfg.mem;
        let check = self.cfg.exec_check.clone();
        let mut checked = None;
        let mut fetch = |a: u64| fetch_parcel(&mem, &check, &mut checked, a);
        let mut block = match fe.translate(pc, 1, &mut fetch) {
            Ok(b) => b,
            Err(f) => {
                return Some(RunExit::Fault {
                    addr: f.addr,
                    write: false,
                    exec: true,
                })
            }
        };
        opt::optimize(&mut block);
        let labels = interp::label_table(&block);
        match interp::run_block(&block, &labels, env, &mem, pc_off) {
            BlockExit::Code(c) => Some(RunExit::Code(c)),
            BlockExit::Fault(f) => {
                if f.write && smc::take_write_fault(&mem, f.addr) {
                    // A second watched page (an unaligned store across pages): retry later.
                    let page = f.addr & !(smc::PAGE - 1);
                    self.drop_range(page, smc::PAGE);
                    return None;
                }
                Some(RunExit::Fault {
                    addr: f.addr,
                    write: f.write,
                    exec: false,
                })
            }
            _ => None,
        }
    }
}
