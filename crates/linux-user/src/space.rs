//! The guest address space: one host reservation at `guest_base` covering guest addresses
//! `[0, GUEST_ADDR_LIMIT)`, and the guest's mmap/munmap/mprotect/brk inside it.
//!
//! Guest address `a` is host address `guest_base + a`. Host page protections mirror the guest's
//! (execute-only guest pages are host-readable so the translator can fetch them; no host page is
//! ever host-executable). Unmapped guest pages are PROT_NONE in the reservation, never released,
//! so host `mmap` can never place anything inside it.
//!
//! This module and `host.rs` are where linux-user's `unsafe` lives.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::sync::Mutex;

use crate::errno::{Errno, EFAULT, EINVAL, ENOMEM};

/// Guest addresses are below this (256 GiB, the size of an Sv39 user address space).
pub const GUEST_ADDR_LIMIT: u64 = 1 << 38;
pub const PAGE: u64 = 4096;
/// Where the top of the initial stack goes; mmap allocates downwards below the stack.
pub const STACK_TOP: u64 = GUEST_ADDR_LIMIT - 0x1000_0000;
pub const STACK_SIZE: u64 = 8 << 20;
const MMAP_TOP: u64 = STACK_TOP - STACK_SIZE - 0x1000_0000;

pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;
pub const PROT_EXEC: u32 = 4;

pub fn page_down(a: u64) -> u64 {
    a & !(PAGE - 1)
}

pub fn page_up(a: u64) -> Option<u64> {
    a.checked_add(PAGE - 1).map(page_down)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Region {
    end: u64,
    prot: u32,
}

/// Book-keeping of which guest pages are mapped and with which guest protection.
#[derive(Default)]
struct Map {
    regions: BTreeMap<u64, Region>,
    brk_start: u64,
    brk_cur: u64,
}

impl Map {
    /// Removes [start, end) from the map, splitting regions that straddle the edges.
    fn remove(&mut self, start: u64, end: u64) {
        let overlapping: Vec<(u64, Region)> = self
            .regions
            .range(..end)
            .rev()
            .take_while(|(_, r)| r.end > start)
            .map(|(s, r)| (*s, *r))
            .collect();
        for (s, r) in overlapping {
            self.regions.remove(&s);
            if s < start {
                self.regions.insert(
                    s,
                    Region {
                        end: start,
                        prot: r.prot,
                    },
                );
            }
            if r.end > end {
                self.regions.insert(
                    end,
                    Region {
                        end: r.end,
                        prot: r.prot,
                    },
                );
            }
        }
    }

    fn insert(&mut self, start: u64, end: u64, prot: u32) {
        self.remove(start, end);
        self.regions.insert(start, Region { end, prot });
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.regions
            .range(..end)
            .next_back()
            .is_some_and(|(_, r)| r.end > start)
    }

    /// Checks that [start, end) is mapped with at least `need` protection bits.
    fn check(&self, start: u64, end: u64, need: u32) -> bool {
        let mut cur = start;
        while cur < end {
            match self.regions.range(..=cur).next_back() {
                Some((_, r)) if r.end > cur && r.prot & need == need => cur = r.end,
                _ => return false,
            }
        }
        true
    }

    /// Highest free, page-aligned gap of `len` bytes below `top` (aligned to `align`).
    fn find_free(&self, len: u64, top: u64, align: u64) -> Option<u64> {
        let mut hi = top;
        let mut iter = self.regions.range(..top).rev().peekable();
        loop {
            let lo_bound = iter.peek().map_or(PAGE * 16, |(_, r)| r.end.min(hi));
            if hi >= len {
                let cand = (hi - len) & !(align - 1);
                if cand >= lo_bound && cand >= PAGE * 16 {
                    return Some(cand);
                }
            }
            match iter.next() {
                Some((s, _)) => hi = hi.min(*s),
                None => return None,
            }
        }
    }

    fn prot_at(&self, addr: u64) -> Option<u32> {
        match self.regions.range(..=addr).next_back() {
            Some((_, r)) if r.end > addr => Some(r.prot),
            _ => None,
        }
    }
}

/// The guest address space. Shared by all guest threads.
pub struct Space {
    base: usize,
    map: Mutex<Map>,
    /// Owns the host mapping (with the guard bytes generated code relies on); unmapped last.
    _reservation: dbt::hostmem::Reservation,
}

fn host_prot(guest: u32) -> i32 {
    let mut p = 0;
    if guest & (PROT_READ | PROT_EXEC) != 0 {
        p |= libc::PROT_READ;
    }
    if guest & PROT_WRITE != 0 {
        p |= libc::PROT_WRITE;
    }
    p
}

fn last_errno() -> Errno {
    Errno(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

/// What a guest `mmap` maps.
pub enum Backing {
    Anon { shared: bool },
    File { fd: i32, offset: u64, shared: bool },
}

impl Space {
    /// Reserves the whole guest address space (PROT_NONE, nothing committed), with guard
    /// bytes on each side (see `dbt::hostmem::Reservation`).
    pub fn new() -> std::io::Result<Space> {
        let reservation = dbt::hostmem::Reservation::new(GUEST_ADDR_LIMIT, libc::PROT_NONE)?;
        Ok(Space {
            base: reservation.base(),
            map: Mutex::new(Map::default()),
            _reservation: reservation,
        })
    }

    /// Holds the mapping lock (across fork, so the child never inherits it locked).
    pub fn fork_guard(&self) -> std::sync::MutexGuard<'_, impl Sized> {
        self.lock()
    }

    pub fn guest_base(&self) -> u64 {
        self.base as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        // A poisoned lock only means another guest thread panicked mid-update; the map is
        // still structurally valid.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Host address of guest `addr` for a range of `len` bytes, checking only that it lies
    /// inside the reservation (the host kernel reports EFAULT for unmapped pages).
    pub fn g2h(&self, addr: u64, len: u64) -> Result<*mut u8, Errno> {
        let end = addr.checked_add(len).ok_or(EFAULT)?;
        if end > GUEST_ADDR_LIMIT {
            return Err(EFAULT);
        }
        Ok((self.base as u64 + addr) as *mut u8)
    }

    /// Like `g2h` for an optional pointer: guest NULL becomes host NULL.
    pub fn g2h_opt(&self, addr: u64, len: u64) -> Result<*mut u8, Errno> {
        if addr == 0 {
            Ok(std::ptr::null_mut())
        } else {
            self.g2h(addr, len)
        }
    }

    /// Maps guest pages. `fixed` replaces whatever is there; otherwise `addr` is a hint.
    /// Returns the guest address.
    pub fn mmap(
        &self,
        addr: u64,
        len: u64,
        prot: u32,
        fixed: bool,
        noreplace: bool,
        backing: Backing,
    ) -> Result<u64, Errno> {
        if len == 0 || ((fixed || noreplace) && !addr.is_multiple_of(PAGE)) {
            return Err(EINVAL);
        }
        // A plain hint need not be aligned; Linux rounds it down.
        let addr = page_down(addr);
        let len = page_up(len).ok_or(ENOMEM)?;
        let mut map = self.lock();
        let start = if fixed || noreplace {
            let end = addr.checked_add(len).ok_or(ENOMEM)?;
            if end > GUEST_ADDR_LIMIT {
                return Err(ENOMEM);
            }
            if noreplace && map.overlaps(addr, end) {
                return Err(Errno(libc::EEXIST));
            }
            addr
        } else {
            let hint_ok = addr != 0
                && addr
                    .checked_add(len)
                    .is_some_and(|e| e <= MMAP_TOP && !map.overlaps(addr, e));
            if hint_ok {
                addr
            } else {
                map.find_free(len, MMAP_TOP, PAGE).ok_or(ENOMEM)?
            }
        };
        let host = self.base + start as usize;
        let (flags, fd, off) = match backing {
            Backing::Anon { shared } => (
                libc::MAP_ANONYMOUS
                    | if shared {
                        libc::MAP_SHARED
                    } else {
                        libc::MAP_PRIVATE
                    },
                -1,
                0,
            ),
            Backing::File { fd, offset, shared } => (
                if shared {
                    libc::MAP_SHARED
                } else {
                    libc::MAP_PRIVATE
                },
                fd,
                offset as i64,
            ),
        };
        // SAFETY: [host, host+len) lies inside our reservation (checked above or chosen from
        // the free list), so MAP_FIXED replaces only guest memory, never host memory.
        let p = unsafe {
            libc::mmap(
                host as *mut libc::c_void,
                len as usize,
                host_prot(prot),
                flags | libc::MAP_FIXED,
                fd,
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(last_errno());
        }
        map.insert(start, start + len, prot);
        Ok(start)
    }

    /// Returns guest pages to the reservation (PROT_NONE, no backing).
    pub fn munmap(&self, addr: u64, len: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE) || len == 0 {
            return Err(EINVAL);
        }
        let len = page_up(len).ok_or(EINVAL)?;
        let end = addr.checked_add(len).ok_or(EINVAL)?;
        if end > GUEST_ADDR_LIMIT {
            return Err(EINVAL);
        }
        let mut map = self.lock();
        self.unback(addr, len)?;
        map.remove(addr, end);
        Ok(())
    }

    fn unback(&self, addr: u64, len: u64) -> Result<(), Errno> {
        // SAFETY: inside the reservation (callers check); replaces guest pages only.
        let p = unsafe {
            libc::mmap(
                (self.base + addr as usize) as *mut libc::c_void,
                len as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(last_errno());
        }
        Ok(())
    }

    pub fn mprotect(&self, addr: u64, len: u64, prot: u32) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE) {
            return Err(EINVAL);
        }
        let len = page_up(len).ok_or(ENOMEM)?;
        let end = addr.checked_add(len).ok_or(ENOMEM)?;
        if end > GUEST_ADDR_LIMIT {
            return Err(ENOMEM);
        }
        let mut map = self.lock();
        if !map.check(addr, end, 0) {
            return Err(ENOMEM);
        }
        // SAFETY: inside the reservation and fully mapped by the guest.
        let r = unsafe {
            libc::mprotect(
                (self.base + addr as usize) as *mut libc::c_void,
                len as usize,
                host_prot(prot),
            )
        };
        if r != 0 {
            return Err(last_errno());
        }
        // Re-insert piecewise so the file/anon nature (not tracked) is irrelevant.
        map.insert(addr, end, prot);
        Ok(())
    }

    /// mremap: grows in place when the pages after are free, else moves (if allowed).
    pub fn mremap(
        &self,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed: Option<u64>,
    ) -> Result<u64, Errno> {
        if !old.is_multiple_of(PAGE) || new_len == 0 {
            return Err(EINVAL);
        }
        let old_len = page_up(old_len).ok_or(EINVAL)?;
        let new_len = page_up(new_len).ok_or(ENOMEM)?;
        let old_end = old.checked_add(old_len).ok_or(EFAULT)?;
        let mut map = self.lock();
        let prot = map.prot_at(old).ok_or(EFAULT)?;
        if !map.check(old, old_end, 0) {
            return Err(EFAULT);
        }
        if fixed.is_none() && new_len <= old_len {
            if new_len < old_len {
                self.unback(old + new_len, old_len - new_len)?;
                map.remove(old + new_len, old_end);
            }
            return Ok(old);
        }
        let grow_in_place = fixed.is_none()
            && old
                .checked_add(new_len)
                .is_some_and(|e| e <= MMAP_TOP && !map.overlaps(old_end, e));
        let dest = if grow_in_place {
            // Give the reserved pages after the mapping back to the host so the kernel can
            // extend the mapping into them.
            // SAFETY: [old_end, old+new_len) is inside the reservation and unused by the guest.
            unsafe {
                libc::munmap(
                    (self.base + old_end as usize) as *mut libc::c_void,
                    (new_len - old_len) as usize,
                )
            };
            old
        } else if let Some(f) = fixed {
            if !f.is_multiple_of(PAGE)
                || f.checked_add(new_len).is_none_or(|e| e > GUEST_ADDR_LIMIT)
            {
                return Err(EINVAL);
            }
            f
        } else if may_move {
            map.find_free(new_len, MMAP_TOP, PAGE).ok_or(ENOMEM)?
        } else {
            return Err(ENOMEM);
        };
        let flags = if dest == old {
            0
        } else {
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED
        };
        // SAFETY: source and destination are inside the reservation; the destination only
        // replaces guest pages (the free or fixed range chosen above).
        let p = unsafe {
            libc::mremap(
                (self.base + old as usize) as *mut libc::c_void,
                old_len as usize,
                new_len as usize,
                flags,
                (self.base + dest as usize) as *mut libc::c_void,
            )
        };
        if p == libc::MAP_FAILED {
            let e = last_errno();
            if dest == old {
                // Put the reservation back over the pages we released.
                let _ = self.unback(old_end, new_len - old_len);
            }
            return Err(e);
        }
        if dest != old {
            // The old range is now a hole in the reservation: re-reserve it.
            self.unback(old, old_len)?;
            map.remove(old, old_end);
        }
        map.insert(dest, dest + new_len, prot);
        Ok(dest)
    }

    /// The guest's view of /proc/self/maps (glibc reads it to find the main thread's stack).
    /// File names are not tracked, so file mappings show as anonymous.
    pub fn maps_text(&self) -> String {
        let map = self.lock();
        let mut out = String::new();
        for (start, r) in &map.regions {
            let perm = |bit, c| if r.prot & bit != 0 { c } else { '-' };
            let name = if *start < STACK_TOP && r.end >= STACK_TOP - PAGE {
                "[stack]"
            } else if *start >= map.brk_start && r.end <= page_up(map.brk_cur).unwrap_or(0) {
                "[heap]"
            } else {
                ""
            };
            out.push_str(&format!(
                "{:08x}-{:08x} {}{}{}p 00000000 00:00 0 {name}\n",
                start,
                r.end,
                perm(PROT_READ, 'r'),
                perm(PROT_WRITE, 'w'),
                perm(PROT_EXEC, 'x'),
            ));
        }
        out
    }

    /// Guest protection of the page holding `addr`, if mapped.
    pub fn prot_at(&self, addr: u64) -> Option<u32> {
        self.lock().prot_at(addr)
    }

    pub fn set_brk_start(&self, brk: u64) {
        let mut map = self.lock();
        map.brk_start = brk;
        map.brk_cur = brk;
    }

    /// The brk syscall: grows or shrinks the heap; returns the (possibly unchanged) break.
    pub fn brk(&self, new: u64) -> u64 {
        let mut map = self.lock();
        let cur = map.brk_cur;
        if new < map.brk_start || new >= MMAP_TOP {
            return cur;
        }
        let (Some(old_end), Some(new_end)) = (page_up(cur), page_up(new)) else {
            return cur;
        };
        if new_end > old_end {
            if map.overlaps(old_end, new_end) {
                return cur;
            }
            // SAFETY: [old_end, new_end) is inside the reservation and unmapped by the guest.
            let p = unsafe {
                libc::mmap(
                    (self.base + old_end as usize) as *mut libc::c_void,
                    (new_end - old_end) as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return cur;
            }
            map.insert(old_end, new_end, PROT_READ | PROT_WRITE);
        } else if new_end < old_end {
            if self.unback(new_end, old_end - new_end).is_err() {
                return cur;
            }
            map.remove(new_end, old_end);
        }
        map.brk_cur = new;
        new
    }

    /// Copies guest memory out, checking the guest has it mapped readable.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let len = buf.len() as u64;
        if len == 0 {
            return Ok(());
        }
        let src = self.g2h(addr, len)?;
        if !self.lock().check(page_down(addr), addr + len, PROT_READ) {
            return Err(EFAULT);
        }
        // SAFETY: the range is inside the reservation and mapped readable by the guest (hence
        // by the host); `buf` is a distinct Rust buffer.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies into guest memory, checking the guest has it mapped writable.
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        let len = data.len() as u64;
        if len == 0 {
            return Ok(());
        }
        let dst = self.g2h(addr, len)?;
        if !self.lock().check(page_down(addr), addr + len, PROT_WRITE) {
            return Err(EFAULT);
        }
        crate::engine::unprotect_for_write(self.base as u64, GUEST_ADDR_LIMIT, addr, len);
        // SAFETY: the range is inside the reservation and mapped writable by the guest, and
        // the translator's write protection was lifted just above.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
        Ok(())
    }

    /// Writes regardless of guest protection (the loader filling read-only segments' bss
    /// tails, the initial stack). Still requires the pages to be mapped host-writable.
    pub fn write_force(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        let dst = self.g2h(addr, data.len() as u64)?;
        // SAFETY: inside the reservation; callers map the pages writable first.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
        Ok(())
    }

    pub fn read_u64(&self, addr: u64) -> Result<u64, Errno> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn write_u64(&self, addr: u64, v: u64) -> Result<(), Errno> {
        self.write(addr, &v.to_le_bytes())
    }

    pub fn write_u32(&self, addr: u64, v: u32) -> Result<(), Errno> {
        self.write(addr, &v.to_le_bytes())
    }

    pub fn read_u32(&self, addr: u64) -> Result<u32, Errno> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads a NUL-terminated guest string of at most `max` bytes.
    pub fn read_cstring(&self, addr: u64, max: usize) -> Result<CString, Errno> {
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() < max {
            // Read up to the end of the current page so we never touch an unmapped page
            // beyond the terminator.
            let chunk = (PAGE - at % PAGE) as usize;
            let mut buf = vec![0u8; chunk.min(max - out.len())];
            self.read(at, &mut buf)?;
            if let Some(n) = buf.iter().position(|&b| b == 0) {
                out.extend_from_slice(&buf[..n]);
                return CString::new(out).map_err(|_| EINVAL);
            }
            out.extend_from_slice(&buf);
            at = at.checked_add(buf.len() as u64).ok_or(EFAULT)?;
        }
        Err(Errno(libc::ENAMETOOLONG))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_unmap_protect() {
        let s = Space::new().unwrap();
        let a = s
            .mmap(
                0,
                3 * PAGE,
                PROT_READ | PROT_WRITE,
                false,
                false,
                Backing::Anon { shared: false },
            )
            .unwrap();
        s.write_u64(a + 8, 42).unwrap();
        assert_eq!(s.read_u64(a + 8).unwrap(), 42);
        s.mprotect(a + PAGE, PAGE, PROT_READ).unwrap();
        assert_eq!(s.write_u64(a + PAGE, 1), Err(EFAULT));
        s.munmap(a, PAGE).unwrap();
        assert_eq!(s.read_u64(a), Err(EFAULT));
        assert_eq!(s.read_u64(a + 2 * PAGE).unwrap(), 0);
        assert!(s.mprotect(a, 2 * PAGE, PROT_READ).is_err());
        let b = s
            .mmap(
                0,
                PAGE,
                PROT_READ,
                false,
                false,
                Backing::Anon { shared: false },
            )
            .unwrap();
        // Top-down allocation reuses the hole just left at the top.
        assert_eq!(b, a);
    }

    #[test]
    fn brk_grows_and_shrinks() {
        let s = Space::new().unwrap();
        s.set_brk_start(0x10_0000);
        assert_eq!(s.brk(0), 0x10_0000);
        assert_eq!(s.brk(0x10_2010), 0x10_2010);
        s.write_u64(0x10_2000, 7).unwrap();
        assert_eq!(s.brk(0x10_0000), 0x10_0000);
        assert_eq!(s.read_u64(0x10_2000), Err(EFAULT));
    }
}
