//! Full-system mode: which pages of guest physical memory hold translated code.
//!
//! A soft-MMU machine has no host page protection to catch writes to code (guest stores go
//! through the front end's memory path, DMA through the devices), so whoever writes guest RAM
//! asks [`CodePages::note_write`] first. A page is marked *before* its code is read for a
//! translation, so a concurrent write either sees the mark or is seen by the read.
//! Invalidations are published through the same log and kick as user mode's (`smc`), with
//! physical addresses standing for host ones (system-mode engines use a zero guest base).

use crate::smc;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct CodePages {
    generation: AtomicU64,
    base: u64,
    pages: u64,
    bits: Vec<AtomicU64>,
}

impl CodePages {
    /// Tracks `[base, base + len)` of guest physical memory (RAM).
    pub fn new(base: u64, len: u64) -> CodePages {
        let pages = len.div_ceil(smc::PAGE);
        CodePages {
            generation: AtomicU64::new(0),
            base,
            pages,
            bits: (0..pages.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn index(&self, pa: u64) -> Option<(usize, u64)> {
        let page = pa.checked_sub(self.base)? / smc::PAGE;
        (page < self.pages).then_some(((page / 64) as usize, 1 << (page % 64)))
    }

    /// Marks the page holding `pa` as holding translated code; true when it was not.
    /// A newly marked page bumps [`CodePages::generation`] and kicks every engine, so
    /// harts drop TLB entries that would let stores reach it without asking.
    pub fn mark(&self, pa: u64) -> bool {
        let Some((w, bit)) = self.index(pa) else {
            return false;
        };
        let fresh = self.bits[w].fetch_or(bit, Ordering::SeqCst) & bit == 0;
        if fresh {
            self.generation.fetch_add(1, Ordering::SeqCst);
            smc::kick_all();
        }
        fresh
    }

    /// Counts newly marked pages.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn is_code(&self, pa: u64) -> bool {
        self.index(pa)
            .is_some_and(|(w, bit)| self.bits[w].load(Ordering::SeqCst) & bit != 0)
    }

    /// Called before (or as) `[pa, pa + len)` is written: when that hits translated code,
    /// unmarks the pages, publishes their invalidation to every engine and returns true.
    pub fn note_write(&self, pa: u64, len: u64) -> bool {
        let mut hit = false;
        let last = pa.saturating_add(len.max(1) - 1);
        let mut page = pa & !(smc::PAGE - 1);
        while page <= last {
            if let Some((w, bit)) = self.index(page) {
                if self.bits[w].load(Ordering::SeqCst) & bit != 0
                    && self.bits[w].fetch_and(!bit, Ordering::SeqCst) & bit != 0
                {
                    smc::publish_range(page as usize, smc::PAGE);
                    hit = true;
                }
            }
            page = match page.checked_add(smc::PAGE) {
                Some(p) => p,
                None => break,
            };
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_reports_writes_once() {
        let c = CodePages::new(0x8000_0000, 1 << 20);
        assert!(!c.note_write(0x8000_1000, 8));
        c.mark(0x8000_1234);
        assert!(c.is_code(0x8000_1000));
        assert!(!c.is_code(0x8000_2000));
        let g = smc::generation();
        // A write straddling into the marked page hits it.
        assert!(c.note_write(0x8000_0ffc, 8));
        assert!(smc::generation() > g);
        assert!(!c.is_code(0x8000_1000));
        assert!(!c.note_write(0x8000_1000, 8));
        // Outside the tracked range: never code.
        c.mark(0x1000);
        assert!(!c.is_code(0x1000));
        assert!(!c.note_write(u64::MAX - 2, 8));
    }
}
