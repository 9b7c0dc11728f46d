//! Self-modifying-code detection, shared by every engine in the process.
//!
//! When code is translated from a guest page that is writable, the page is made read-only on
//! the host. A guest store to it then faults; the run loop sees the fault, asks
//! [`take_write_fault`], drops the page's translations, restores write access and executes the
//! store without re-protecting. Pages that are not writable need no protection: the guest
//! cannot change them without mprotect/munmap, for which user mode calls `invalidate` first.
//! Invalidations are published as a generation counter plus a log, so other threads' engines
//! drop stale blocks the next time they pass through their dispatcher.

use crate::hostmem::GuestMem;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub const PAGE: u64 = 4096;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// We made it read-only; it was writable.
    Protected,
    /// It was not writable when we looked.
    ReadOnly,
    /// Code and frequently written data share this page: it stays writable, and blocks
    /// translated from it are one instruction long and check their code bytes on entry.
    Hot,
}

/// SMC faults on a page before it is treated as [`State::Hot`].
const HOT_AFTER: u32 = 8;
static FAULTS: Mutex<Option<HashMap<usize, u32>>> = Mutex::new(None);

/// Keyed by host page address, so engines sharing one guest address space agree.
static PAGES: Mutex<Option<HashMap<usize, State>>> = Mutex::new(None);
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// (generation, host start, len) of recent invalidations, for other engines.
static LOG: Mutex<Vec<(u64, usize, u64)>> = Mutex::new(Vec::new());
const LOG_MAX: usize = 4096;

fn mprotect(host: usize, prot: i32) {
    // SAFETY: `host` is a page inside the guest reservation owned by user mode; changing
    // its protection cannot affect Rust-owned memory.
    unsafe {
        libc::mprotect(host as *mut libc::c_void, PAGE as usize, prot);
    }
}

/// True if blocks from the page containing `addr` must check their own code (see `Hot`).
pub fn is_hot(mem: &GuestMem, addr: u64) -> bool {
    if addr >= mem.limit {
        return false;
    }
    let host = mem.base + (addr & !(PAGE - 1)) as usize;
    let g = PAGES.lock().unwrap_or_else(|e| e.into_inner());
    g.as_ref().and_then(|m| m.get(&host)) == Some(&State::Hot)
}

/// Makes sure stores to the guest page containing `addr` will be noticed. `writable`: whether
/// the guest may write the page, if the caller knows (else the host mapping is probed).
pub fn watch_page(mem: &GuestMem, addr: u64, writable: Option<bool>) {
    if addr >= mem.limit {
        return;
    }
    let page = addr & !(PAGE - 1);
    let host = mem.base + page as usize;
    let mut g = PAGES.lock().unwrap_or_else(|e| e.into_inner());
    let map = g.get_or_insert_with(HashMap::new);
    if map.contains_key(&host) {
        return;
    }
    if writable.unwrap_or_else(|| mem.is_writable(page)) {
        mprotect(host, libc::PROT_READ);
        map.insert(host, State::Protected);
    } else {
        map.insert(host, State::ReadOnly);
    }
}

/// Called for a guest write fault at `addr`. Returns true if the fault was caused by SMC
/// protection (the page is writable again and must be invalidated by the caller).
pub fn take_write_fault(mem: &GuestMem, addr: u64) -> bool {
    if addr >= mem.limit {
        return false;
    }
    let page = addr & !(PAGE - 1);
    let host = mem.base + page as usize;
    let mut g = PAGES.lock().unwrap_or_else(|e| e.into_inner());
    let map = g.get_or_insert_with(HashMap::new);
    if map.get(&host) == Some(&State::Protected) {
        let mut f = FAULTS.lock().unwrap_or_else(|e| e.into_inner());
        let n = f.get_or_insert_with(HashMap::new).entry(host).or_insert(0);
        *n += 1;
        if *n >= HOT_AFTER {
            map.insert(host, State::Hot);
        } else {
            map.remove(&host);
        }
        mprotect(host, libc::PROT_READ | libc::PROT_WRITE);
        publish(host, PAGE);
        return true;
    }
    false
}

/// Forgets (and un-protects) every watched page overlapping `[addr, addr+len)`.
pub fn release(mem: &GuestMem, addr: u64, len: u64) {
    // Only the guest address space can hold watched pages.
    let lo = addr.min(mem.limit);
    let hi = addr.saturating_add(len).min(mem.limit);
    if lo >= hi {
        return;
    }
    let start = lo & !(PAGE - 1);
    let end = hi.saturating_add(PAGE - 1) & !(PAGE - 1);
    let mut g = PAGES.lock().unwrap_or_else(|e| e.into_inner());
    let map = g.get_or_insert_with(HashMap::new);
    let hs = mem.base + start as usize;
    let he = mem.base + end as usize;
    let keys: Vec<usize> = if ((end - start) / PAGE) < map.len() as u64 {
        (0..(end - start) / PAGE)
            .map(|i| hs + (i * PAGE) as usize)
            .filter(|k| map.contains_key(k))
            .collect()
    } else {
        map.keys()
            .copied()
            .filter(|k| *k >= hs && *k < he)
            .collect()
    };
    let mut f = FAULTS.lock().unwrap_or_else(|e| e.into_inner());
    let faults = f.get_or_insert_with(HashMap::new);
    for k in keys {
        faults.remove(&k);
        if map.remove(&k) == Some(State::Protected) {
            mprotect(k, libc::PROT_READ | libc::PROT_WRITE);
        }
    }
    drop(f);
    drop(g);
    publish(hs, end - start);
}

/// Publishes the invalidation of `[addr, addr + len)` in the address space engines convert
/// through their `GuestMem` base (system mode: physical addresses, base 0), and kicks them.
pub fn publish_range(addr: usize, len: u64) {
    publish(addr, len)
}

/// Makes every engine leave generated code at its next exit check (nothing to drop).
pub fn kick_all() {
    let mut flags = ENGINES.lock().unwrap_or_else(|e| e.into_inner());
    flags.retain(|w| match w.upgrade() {
        Some(f) => {
            f.fetch_or(KICK, Ordering::SeqCst);
            true
        }
        None => false,
    });
}

fn publish(host: usize, len: u64) {
    {
        let mut log = LOG.lock().unwrap_or_else(|e| e.into_inner());
        let gen = GENERATION.fetch_add(1, Ordering::SeqCst) + 1;
        if log.len() >= LOG_MAX {
            log.drain(..LOG_MAX / 2);
        }
        log.push((gen, host, len));
    }
    // Make every engine leave generated code at its next block boundary so none keeps
    // running (chained) blocks that were just invalidated.
    let mut flags = ENGINES.lock().unwrap_or_else(|e| e.into_inner());
    flags.retain(|w| match w.upgrade() {
        Some(f) => {
            f.fetch_or(KICK, Ordering::SeqCst);
            true
        }
        None => false,
    });
}

/// Bit in an engine's exit flag meaning "re-check invalidations" (bit 0 is a user exit request).
pub const KICK: u32 = 2;
static ENGINES: Mutex<Vec<Weak<AtomicU32>>> = Mutex::new(Vec::new());

/// Registers an engine's exit flag so invalidations anywhere kick it back to its dispatcher.
pub fn register_engine(flag: &Arc<AtomicU32>) {
    ENGINES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::downgrade(flag));
}

pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Host ranges invalidated after generation `since`; `None` if the log no longer reaches
/// back that far (the caller must then flush everything).
pub fn invalidations_since(since: u64) -> Option<Vec<(usize, u64)>> {
    let log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    match log.first() {
        Some(&(g, _, _)) if g > since + 1 => None,
        _ => Some(
            log.iter()
                .filter(|e| e.0 > since)
                .map(|e| (e.1, e.2))
                .collect(),
        ),
    }
}

/// Holds every process-wide translator lock across a `fork()`, so the child does not inherit
/// a lock some other thread held at that instant (it would deadlock on it). Take it just
/// before fork() and drop it right after, in both parent and child.
pub struct ForkGuard {
    _pages: Guard<Option<HashMap<usize, State>>>,
    _faults: Guard<Option<HashMap<usize, u32>>>,
    _log: Guard<Vec<(u64, usize, u64)>>,
    _engines: Guard<Vec<Weak<AtomicU32>>>,
}

type Guard<T> = std::sync::MutexGuard<'static, T>;

/// See [`ForkGuard`]. Locks are taken in the order the rest of this module uses.
pub fn fork_lock() -> ForkGuard {
    let p = PAGES.lock().unwrap_or_else(|e| e.into_inner());
    let f = FAULTS.lock().unwrap_or_else(|e| e.into_inner());
    let l = LOG.lock().unwrap_or_else(|e| e.into_inner());
    let e = ENGINES.lock().unwrap_or_else(|e| e.into_inner());
    ForkGuard {
        _pages: p,
        _faults: f,
        _log: l,
        _engines: e,
    }
}
