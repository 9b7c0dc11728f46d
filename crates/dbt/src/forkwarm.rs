//! Forked children tell their parent which blocks they had to translate.
//!
//! A forked child inherits its parent's translations, but not the code only children run
//! (a shell's child side of `fork`, a builtin, the exit path): every child would translate
//! it again. So children append the guest pcs they translate to a small ring shared with
//! the parent (a shared anonymous mapping made before the first fork), and the parent
//! translates them before its next fork, without running them: later children inherit
//! them. Anything in the ring is only a hint: the parent translates from its own memory
//! through the usual checks (execute permission, fault-tolerant fetch), so a stale or bogus
//! pc costs a translation at most.

use std::sync::atomic::{AtomicU64, Ordering};

/// Ring entries (pcs).
const SLOTS: usize = 4096;
/// A child stops reporting after this many translations (a long-lived child's own code is
/// of no use to its parent).
pub const CHILD_REPORTS: u32 = 1024;

const LEN: usize = (SLOTS + 1) * 8;

/// The shared ring: `SLOTS` entries after a write counter. Entries hold pc + 1 (0: empty).
pub struct Ring {
    base: *const AtomicU64,
}

// SAFETY: the mapping is only accessed through atomics, from any thread or process.
unsafe impl Send for Ring {}

impl Ring {
    /// Maps a new ring; None if the host refuses (then nothing is shared).
    pub fn new() -> Option<Ring> {
        // SAFETY: a fresh shared anonymous mapping, checked for failure; unmapped when the
        // ring is dropped (a forked child unmaps only its own view).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(Ring {
            base: p as *const AtomicU64,
        })
    }

    fn slot(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i <= SLOTS);
        // SAFETY: `i` <= SLOTS: inside the mapping made by `new`, which lives as long as
        // `self`, is zero-initialised and 8-byte aligned (page aligned).
        unsafe { &*self.base.add(i) }
    }

    /// The number of entries ever written.
    pub fn head(&self) -> u64 {
        self.slot(0).load(Ordering::Acquire)
    }

    /// Appends `pc` (a child's translation).
    pub fn push(&self, pc: u64) {
        let i = self.slot(0).fetch_add(1, Ordering::AcqRel);
        self.slot(1 + (i as usize % SLOTS))
            .store(pc.wrapping_add(1), Ordering::Release);
    }

    /// The pcs written since `from` (at most the ring's size; entries may be stale if
    /// children are still writing), and the new read position.
    pub fn read_since(&self, from: u64) -> (Vec<u64>, u64) {
        let head = self.head();
        let start = from.max(head.saturating_sub(SLOTS as u64));
        let pcs = (start..head)
            .filter_map(|i| {
                let v = self.slot(1 + (i as usize % SLOTS)).load(Ordering::Acquire);
                v.checked_sub(1)
            })
            .collect();
        (pcs, head)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmaps this process's view of the mapping `new` made; nothing else in
        // this process points into it.
        unsafe { libc::munmap(self.base as *mut libc::c_void, LEN) };
    }
}
