//! What a debugger needs from the translator: breakpoints that translated code stops at,
//! shared by every hart or thread of one guest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// Guest addresses execution stops at (before the instruction there runs). Changing the
/// set bumps [`Breakpoints::generation`]; engines then drop their translations, which
/// may contain code of a new breakpoint's address.
#[derive(Debug, Default)]
pub struct Breakpoints {
    set: RwLock<Vec<u64>>,
    generation: AtomicU64,
}

impl Breakpoints {
    fn with<T>(&self, f: impl FnOnce(&mut Vec<u64>) -> T) -> T {
        let mut g = self.set.write().unwrap_or_else(|e| e.into_inner());
        let r = f(&mut g);
        self.generation.fetch_add(1, Ordering::SeqCst);
        r
    }

    /// Adds a breakpoint; false if it was there already.
    pub fn insert(&self, pc: u64) -> bool {
        self.with(|s| {
            if s.contains(&pc) {
                return false;
            }
            s.push(pc);
            true
        })
    }

    /// Removes a breakpoint; false if there was none.
    pub fn remove(&self, pc: u64) -> bool {
        self.with(|s| {
            let before = s.len();
            s.retain(|&p| p != pc);
            s.len() != before
        })
    }

    pub fn contains(&self, pc: u64) -> bool {
        self.set
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&pc)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}
