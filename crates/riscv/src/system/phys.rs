//! Guest physical memory as a hart reaches it: RAM (a host mapping, accessed with host
//! atomics so LR/SC and AMOs are atomic across hart threads) and everything else through
//! the machine's MMIO bus. The only module of the system hart that dereferences host
//! pointers into guest RAM.

use dbt::ir::RmwOp;
use dbt::physcode::CodePages;
use std::any::Any;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

/// Device accesses the hart cannot serve from RAM. `size` is 1, 2, 4 or 8; little-endian.
pub trait Mmio: Send + Sync {
    /// None: nothing answers there (the hart raises an access fault).
    fn read(&self, pa: u64, size: usize) -> Option<u64>;
    /// False: nothing answers there.
    fn write(&self, pa: u64, size: usize, value: u64) -> bool;
}

/// Nothing answers at a physical address (the hart raises an access fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoDevice;

pub struct PhysMem {
    ram_base: u64,
    ram_size: u64,
    host: usize,
    mmio: Arc<dyn Mmio>,
    code: CodePages,
    // Keeps the host mapping alive as long as harts may use it.
    _owner: Arc<dyn Any + Send + Sync>,
}

#[derive(Debug, thiserror::Error)]
#[error("guest RAM mapping {base:#x}+{size:#x} is not usable")]
pub struct BadRam {
    base: u64,
    size: u64,
}

impl PhysMem {
    /// RAM `[ram_base, ram_base + ram_size)` is the host mapping starting at `host`, kept
    /// alive by `owner`; the mapping must be readable and writable for all of that length
    /// and 8-byte aligned.
    pub fn new(
        ram_base: u64,
        ram_size: u64,
        host: *mut u8,
        owner: Arc<dyn Any + Send + Sync>,
        mmio: Arc<dyn Mmio>,
    ) -> Result<PhysMem, BadRam> {
        let bad = BadRam {
            base: ram_base,
            size: ram_size,
        };
        if host.is_null()
            || !(host as usize).is_multiple_of(8)
            || ram_base.checked_add(ram_size).is_none()
        {
            return Err(bad);
        }
        Ok(PhysMem {
            ram_base,
            ram_size,
            host: host as usize,
            mmio,
            code: CodePages::new(ram_base, ram_size),
            _owner: owner,
        })
    }

    pub fn code_pages(&self) -> &CodePages {
        &self.code
    }

    pub fn ram(&self) -> (u64, u64) {
        (self.ram_base, self.ram_size)
    }

    /// Host address of `[pa, pa + size)` when it lies in RAM.
    fn host(&self, pa: u64, size: u64) -> Option<usize> {
        let off = pa.checked_sub(self.ram_base)?;
        (off.checked_add(size)? <= self.ram_size).then(|| self.host + off as usize)
    }

    /// Host address of the RAM page at `pa` (page-aligned), if it is RAM.
    pub fn host_page(&self, pa: u64) -> Option<usize> {
        self.host(pa, 4096)
    }

    pub fn is_ram(&self, pa: u64) -> bool {
        self.host(pa, 1).is_some()
    }

    pub fn read(&self, pa: u64, size: u64) -> Option<u64> {
        match self.host(pa, size) {
            Some(h) => Some(read_host(h, size)),
            None => self.mmio.read(pa, size as usize),
        }
    }

    /// Writes; returns whether translated code was hit.
    pub fn write(&self, pa: u64, size: u64, v: u64) -> Result<bool, NoDevice> {
        match self.host(pa, size) {
            Some(h) => {
                let hit = self.code.is_code(pa) || self.code.is_code(pa + size - 1);
                write_host(h, size, v);
                Ok(hit && self.code.note_write(pa, size))
            }
            None if self.mmio.write(pa, size as usize, v) => Ok(false),
            None => Err(NoDevice),
        }
    }

    /// Atomic read-modify-write on RAM (aligned); None outside RAM.
    pub fn rmw(&self, pa: u64, size: u64, op: RmwOp, v: u64) -> Option<(u64, bool)> {
        let h = self.host(pa, size)?;
        let old = if size == 4 {
            // SAFETY: `h` is 4-aligned (the caller checked the guest address, RAM is
            // 8-aligned) and inside the live RAM mapping `_owner` keeps.
            let a = unsafe { AtomicU32::from_ptr(h as *mut u32) };
            let f = |o: u32| Some(dbt::eval::rmw(op, 32, o as u64, v) as u32);
            a.fetch_update(Ordering::SeqCst, Ordering::SeqCst, f)
                .unwrap_or(0) as i32 as i64 as u64
        } else {
            // SAFETY: as above, 8-aligned.
            let a = unsafe { AtomicU64::from_ptr(h as *mut u64) };
            let f = |o: u64| Some(dbt::eval::rmw(op, 64, o, v));
            a.fetch_update(Ordering::SeqCst, Ordering::SeqCst, f)
                .unwrap_or(0)
        };
        let hit = self.code.is_code(pa) && self.code.note_write(pa, size);
        Some((old, hit))
    }

    /// Atomic compare-and-swap on RAM (aligned); returns the old value (sign-extended for
    /// 4 bytes) and whether translated code was hit.
    pub fn cmpxchg(&self, pa: u64, size: u64, expect: u64, new: u64) -> Option<(u64, bool)> {
        let h = self.host(pa, size)?;
        let old = if size == 4 {
            // SAFETY: 4-aligned, inside the live RAM mapping.
            let a = unsafe { AtomicU32::from_ptr(h as *mut u32) };
            match a.compare_exchange(
                expect as u32,
                new as u32,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(o) | Err(o) => o as i32 as i64 as u64,
            }
        } else {
            // SAFETY: 8-aligned, inside the live RAM mapping.
            let a = unsafe { AtomicU64::from_ptr(h as *mut u64) };
            match a.compare_exchange(expect, new, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(o) | Err(o) => o,
            }
        };
        let hit = self.code.is_code(pa) && self.code.note_write(pa, size);
        Some((old, hit))
    }
}

/// Reads `size` bytes at host address `h` inside guest RAM (an atomic load when aligned, so
/// other harts' stores are never torn).
fn read_host(h: usize, size: u64) -> u64 {
    // SAFETY (all arms): `PhysMem::host` checked that `[h, h + size)` lies in the live RAM
    // mapping; atomics are used only at naturally aligned addresses.
    unsafe {
        match size {
            1 => AtomicU8::from_ptr(h as *mut u8).load(Ordering::Relaxed) as u64,
            2 if h.is_multiple_of(2) => {
                AtomicU16::from_ptr(h as *mut u16).load(Ordering::Relaxed) as u64
            }
            4 if h.is_multiple_of(4) => {
                AtomicU32::from_ptr(h as *mut u32).load(Ordering::Relaxed) as u64
            }
            8 if h.is_multiple_of(8) => AtomicU64::from_ptr(h as *mut u64).load(Ordering::Relaxed),
            _ => {
                let mut b = [0u8; 8];
                std::ptr::copy_nonoverlapping(h as *const u8, b.as_mut_ptr(), size as usize);
                u64::from_le_bytes(b)
            }
        }
    }
}

fn write_host(h: usize, size: u64, v: u64) {
    // SAFETY (all arms): as in `read_host`.
    unsafe {
        match size {
            1 => AtomicU8::from_ptr(h as *mut u8).store(v as u8, Ordering::Relaxed),
            2 if h.is_multiple_of(2) => {
                AtomicU16::from_ptr(h as *mut u16).store(v as u16, Ordering::Relaxed)
            }
            4 if h.is_multiple_of(4) => {
                AtomicU32::from_ptr(h as *mut u32).store(v as u32, Ordering::Relaxed)
            }
            8 if h.is_multiple_of(8) => {
                AtomicU64::from_ptr(h as *mut u64).store(v, Ordering::Relaxed)
            }
            _ => {
                let b = v.to_le_bytes();
                std::ptr::copy_nonoverlapping(b.as_ptr(), h as *mut u8, size as usize);
            }
        }
    }
}
