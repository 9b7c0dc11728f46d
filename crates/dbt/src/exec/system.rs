//! The run loop's full-system side: finding blocks through the guest's MMU (keyed by
//! virtual and physical pc and mode), the page rule for chaining, the jump cache's epoch,
//! and single-stepping for debuggers.

use super::{fetch_parcel, Exec, Frontend, KeptIr, RunExit, SysTb, Tb};
use crate::env::EnvPtr;
use crate::hostmem::HostFault;
use crate::interp::{self, BlockExit};
use crate::opt;
use crate::smc;
use std::time::Instant;

/// Where full-system guest code lives (see [`SystemCode::locate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeLoc {
    /// Guest physical address of the code.
    pub phys: u64,
    /// Mode bits the translation depends on (the front end's business; at most 8 bits).
    pub flags: u64,
}

/// Full-system mode: how the run loop finds guest code behind the guest's MMU.
///
/// Blocks are keyed by (virtual pc, physical pc, mode flags), so a process switch does not
/// retranslate shared code and two address spaces never share a stale block. A block never
/// spans two virtual pages (but for one instruction straddling a page boundary, which runs
/// untranslated-cached), and direct exits are chained only within the page, so a chain is
/// valid as long as the lookup that entered its page was. The indirect-jump cache is keyed
/// by virtual pc alone and is emptied whenever [`SystemCode::epoch`] changes.
pub trait SystemCode: Send + Sync {
    /// Where the code at virtual `pc` is for the hart whose state is `env`; an instruction
    /// fetch fault (the guest's page fault or access fault) is an error with `addr` set to
    /// the faulting virtual address.
    fn locate(&self, env: EnvPtr, pc: u64) -> Result<CodeLoc, HostFault>;
    /// A 16-bit parcel of code at physical address `pa` (None: not RAM).
    fn read_code(&self, pa: u64) -> Option<u16>;
    /// Translated-code tracking of guest RAM.
    fn code_pages(&self) -> &crate::physcode::CodePages;
    /// Changes whenever virtual-to-physical translation may have changed (address space
    /// switch, TLB flush, privilege change).
    fn epoch(&self, env: EnvPtr) -> u64;
    /// Physical page `pa` now holds translated code: stores must not reach it without
    /// going through [`crate::physcode::CodePages::note_write`] (drop TLB entries that
    /// would let them).
    fn code_marked(&self, env: EnvPtr, pa: u64);
}

pub(super) const SYS_PAGE: u64 = 4096;

impl Exec {
    /// System mode: finds or translates the block at virtual `pc` through the guest's MMU.
    pub(super) fn lookup_system(
        &mut self,
        fe: &dyn Frontend,
        sys: &dyn SystemCode,
        env: EnvPtr,
        pc: u64,
    ) -> Result<usize, HostFault> {
        let loc = sys.locate(env, pc)?;
        let key = (pc, loc.phys ^ loc.flags << 56);
        if let Some(&i) = self.by_loc.get(&key) {
            match self.tbs[i].page2() {
                None => return Ok(i),
                Some((va, pa)) if sys.locate(env, va)?.phys == pa => return Ok(i),
                Some(_) => {
                    let (lo, len) = (self.tbs[i].lo, self.tbs[i].len);
                    self.drop_range(lo, len);
                }
            }
        }
        let t0 = Instant::now();
        let page_end = (pc | (SYS_PAGE - 1)).wrapping_add(1);
        // An instruction straddling the page boundary depends on two mappings: it makes a
        // block of its own that records the second.
        let straddled = std::cell::Cell::new(None);
        // Mark before reading, so a concurrent write either sees the mark or is read here.
        if sys.code_pages().mark(loc.phys) {
            sys.code_marked(env, loc.phys);
        }
        let mut fetch = |a: u64| {
            let pa = if a & !(SYS_PAGE - 1) == pc & !(SYS_PAGE - 1) {
                loc.phys.wrapping_add(a.wrapping_sub(pc))
            } else if a == page_end && a.wrapping_sub(pc) == 2 {
                let second = sys.locate(env, a)?;
                if sys.code_pages().mark(second.phys) {
                    sys.code_marked(env, second.phys);
                }
                straddled.set(Some((a, second.phys)));
                second.phys
            } else {
                // Blocks stay within their page; the block ends before this instruction.
                return Err(HostFault {
                    addr: a,
                    write: false,
                });
            };
            sys.read_code(pa).ok_or(HostFault {
                addr: a,
                write: false,
            })
        };
        let mut block = fe.translate_in_mode(pc, loc.flags, self.cfg.max_insns, &mut fetch)?;
        block.jump_tag = (loc.flags + 1) << 56;
        let mut straddles = None;
        if let Some(second) = straddled.get() {
            straddles = Some(second);
            if block.ninsns > 1 {
                block = fe.translate_in_mode(pc, loc.flags, 1, &mut fetch)?;
                block.jump_tag = (loc.flags + 1) << 56;
            }
        }
        self.optimize_if_due(&mut block);
        debug_assert_eq!(block.verify(), Ok(()));
        // Physical span of the code (all of it within pc's page, but for a straddler).
        let lo = loc.phys.wrapping_sub(pc.wrapping_sub(block.guest_lo));
        let len = block.guest_len.max(1);
        let idx = self.tbs.len();
        self.stats.blocks_translated += 1;
        self.stats.guest_insns_translated += block.ninsns as u64;
        if let Some(n) = self.native.as_mut().filter(|_| self.cfg.compile_after == 0) {
            if !n.compile(idx, &block, fe.pc_offset()) {
                self.flush_all();
                return self.lookup_system(fe, sys, env, pc);
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
            sys: Some(Box::new(SysTb {
                loc_key: key,
                page2: straddles,
            })),
            jump_tag: (loc.flags + 1) << 56,
        });
        self.by_loc.insert(key, idx);
        let mut pages = vec![lo / smc::PAGE, (lo + len - 1) / smc::PAGE];
        if let Some((_, pa)) = straddles {
            pages.push(pa / smc::PAGE);
        }
        pages.dedup();
        for p in pages {
            self.by_page.entry(p).or_default().push(idx);
        }
        self.stats.translate_ns += t0.elapsed().as_nanos() as u64;
        Ok(idx)
    }

    /// Whether a direct exit of block `from` to `pc` may be chained (system mode: only
    /// within the page the block starts in).
    pub(super) fn may_chain(&self, from: usize, to: usize) -> bool {
        self.cfg.system.is_none()
            || ((self.tbs[from].pc ^ self.tbs[to].pc) < SYS_PAGE && self.tbs[to].page2().is_none())
    }

    /// Drops the indirect-jump cache when the guest's address translation may have changed.
    pub(super) fn check_epoch(&mut self, env: EnvPtr) {
        if let Some(sys) = &self.cfg.system {
            let e = sys.epoch(env);
            if e != self.epoch {
                self.epoch = e;
                if let Some(n) = &mut self.native {
                    n.clear_jump_cache();
                }
            }
        }
    }

    /// Executes exactly one guest instruction at the env's pc in the interpreter, without
    /// caching its translation (single-stepping under a debugger). None: it completed and
    /// the env's pc is the next instruction; otherwise why it stopped, as from `run`.
    pub fn step(&mut self, fe: &dyn Frontend, env: EnvPtr) -> Option<RunExit> {
        let pc_off = fe.pc_offset();
        let pc = env.read(pc_off);
        let fetch_fault = |f: HostFault| RunExit::Fault {
            addr: f.addr,
            write: false,
            exec: true,
        };
        let block = match self.cfg.system.clone() {
            Some(sys) => {
                let loc = match sys.locate(env, pc) {
                    Ok(l) => l,
                    Err(f) => return Some(fetch_fault(f)),
                };
                let mut fetch = |a: u64| {
                    let pa = if a & !(SYS_PAGE - 1) == pc & !(SYS_PAGE - 1) {
                        loc.phys.wrapping_add(a.wrapping_sub(pc))
                    } else {
                        sys.locate(env, a)?.phys
                    };
                    sys.read_code(pa).ok_or(HostFault {
                        addr: a,
                        write: false,
                    })
                };
                fe.translate_in_mode(pc, loc.flags, 1, &mut fetch)
            }
            None => {
                let mem = self.cfg.mem;
                let check = self.cfg.exec_check.clone();
                let mut checked = None;
                let mut fetch = |a: u64| fetch_parcel(&mem, &check, &mut checked, a);
                fe.translate(pc, 1, &mut fetch)
            }
        };
        let mut block = match block {
            Ok(b) => b,
            Err(f) => return Some(fetch_fault(f)),
        };
        opt::optimize(&mut block);
        let labels = interp::label_table(&block);
        match interp::run_block(&block, &labels, env, &self.cfg.mem, pc_off) {
            BlockExit::Chain { pc, .. } => {
                env.write(pc_off, pc);
                None
            }
            BlockExit::Indirect { .. } => None,
            BlockExit::Code(c) => Some(RunExit::Code(c)),
            BlockExit::Fault(f) => Some(RunExit::Fault {
                addr: f.addr,
                write: f.write,
                exec: false,
            }),
        }
    }
}
