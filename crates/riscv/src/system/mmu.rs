//! Sv39/Sv48 address translation with hardware A/D updates, and the hart's TLB of recent
//! translations (a direct-mapped table the memory helpers and the code lookup consult
//! before walking page tables).

use super::hart::{Hart, PRV_M, PRV_S, PRV_U};
use super::trap::cause;

/// What an access wants to do (selects the permission and the fault cause).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Fetch,
    Load,
    Store,
}

impl Access {
    pub fn page_fault(self) -> u64 {
        match self {
            Access::Fetch => cause::FETCH_PAGE_FAULT,
            Access::Load => cause::LOAD_PAGE_FAULT,
            Access::Store => cause::STORE_PAGE_FAULT,
        }
    }
    pub fn access_fault(self) -> u64 {
        match self {
            Access::Fetch => cause::FETCH_ACCESS,
            Access::Load => cause::LOAD_ACCESS,
            Access::Store => cause::STORE_ACCESS,
        }
    }
}

const PTE_V: u64 = 1 << 0;
const PTE_R: u64 = 1 << 1;
const PTE_W: u64 = 1 << 2;
const PTE_X: u64 = 1 << 3;
const PTE_U: u64 = 1 << 4;
const PTE_A: u64 = 1 << 6;
const PTE_D: u64 = 1 << 7;
/// Bits 63:54 (reserved, PBMT, N) must be zero without the Svpbmt/Svnapot extensions.
const PTE_HIGH: u64 = 0x3ff << 54;

pub const SATP_MODE_BARE: u64 = 0;
pub const SATP_MODE_SV39: u64 = 8;
pub const SATP_MODE_SV48: u64 = 9;

pub const MSTATUS_MPRV: u64 = 1 << 17;
pub const MSTATUS_SUM: u64 = 1 << 18;
pub const MSTATUS_MXR: u64 = 1 << 19;

const TLB_SIZE: usize = 1024;

/// One cached leaf translation of a 4 KiB virtual page for the current satp.
#[derive(Clone, Copy, Debug, Default)]
struct TlbEntry {
    /// Virtual page number + 1 (0: empty).
    tag: u64,
    ppn: u64,
    /// PTE permission bits (R, W, X, U) and D as the walk left them.
    pte: u64,
}

#[derive(Clone, Debug)]
pub struct Tlb {
    entries: Box<[TlbEntry; TLB_SIZE]>,
}

impl Default for Tlb {
    fn default() -> Self {
        Tlb {
            entries: Box::new([TlbEntry::default(); TLB_SIZE]),
        }
    }
}

impl Tlb {
    pub fn flush(&mut self) {
        self.entries.fill(TlbEntry::default());
    }
    pub fn flush_page(&mut self, va: u64) {
        let vpn = va >> 12;
        let e = &mut self.entries[Tlb::slot(vpn)];
        if e.tag == vpn + 1 {
            *e = TlbEntry::default();
        }
    }
    fn slot(vpn: u64) -> usize {
        (vpn as usize) & (TLB_SIZE - 1)
    }
}

/// Whether a leaf PTE allows `access` at privilege `prv` under mstatus `status`.
fn permitted(pte: u64, access: Access, prv: u64, status: u64) -> bool {
    let user_page = pte & PTE_U != 0;
    match prv {
        PRV_U if !user_page => return false,
        PRV_S if user_page && (access == Access::Fetch || status & MSTATUS_SUM == 0) => {
            return false
        }
        _ => {}
    }
    match access {
        Access::Fetch => pte & PTE_X != 0,
        Access::Load => pte & PTE_R != 0 || (status & MSTATUS_MXR != 0 && pte & PTE_X != 0),
        Access::Store => pte & PTE_W != 0,
    }
}

impl Hart {
    /// The privilege and translation mode that data accesses use (MPRV applies MPP's).
    fn data_prv(&self) -> u64 {
        let s = self.csr.mstatus;
        if self.csr.prv == PRV_M && s & MSTATUS_MPRV != 0 {
            (s >> 11) & 3
        } else {
            self.csr.prv
        }
    }

    /// Translates virtual `va` for `access`; the error is the exception cause (the caller
    /// reports `va` as tval).
    pub fn translate(&mut self, va: u64, access: Access) -> Result<u64, u64> {
        let prv = if access == Access::Fetch {
            self.csr.prv
        } else {
            self.data_prv()
        };
        let mode = self.csr.satp >> 60;
        if prv == PRV_M || mode == SATP_MODE_BARE {
            return Ok(va);
        }
        let vpn = va >> 12;
        let e = self.tlb.entries[Tlb::slot(vpn)];
        if e.tag == vpn + 1
            && permitted(e.pte, access, prv, self.csr.mstatus)
            && (access != Access::Store || e.pte & PTE_D != 0)
        {
            return Ok(e.ppn << 12 | (va & 0xfff));
        }
        let (ppn, pte) = self.walk(va, access, prv, mode)?;
        self.tlb.entries[Tlb::slot(vpn)] = TlbEntry {
            tag: vpn + 1,
            ppn,
            pte,
        };
        Ok(ppn << 12 | (va & 0xfff))
    }

    /// Walks the page tables (Sv39 or Sv48) and sets A (and D for stores) atomically.
    /// Returns the 4 KiB physical page number of `va` and the leaf PTE.
    fn walk(&mut self, va: u64, access: Access, prv: u64, mode: u64) -> Result<(u64, u64), u64> {
        let levels: u32 = if mode == SATP_MODE_SV48 { 4 } else { 3 };
        let va_bits = 12 + 9 * levels;
        // The address must be the sign extension of its low va_bits.
        let shift = 64 - va_bits;
        if ((va << shift) as i64 >> shift) as u64 != va {
            return Err(access.page_fault());
        }
        let mut table = (self.csr.satp & ((1 << 44) - 1)) << 12;
        for level in (0..levels).rev() {
            let idx = (va >> (12 + 9 * level)) & 0x1ff;
            let pte_addr = table + idx * 8;
            // Page tables live in RAM; a walk never reads a device register.
            if !self.mem.is_ram(pte_addr) {
                return Err(access.access_fault());
            }
            let pte = self.mem.read(pte_addr, 8).ok_or(access.access_fault())?;
            if pte & PTE_V == 0 || (pte & PTE_R == 0 && pte & PTE_W != 0) || pte & PTE_HIGH != 0 {
                return Err(access.page_fault());
            }
            let ppn = (pte >> 10) & ((1 << 44) - 1);
            if pte & (PTE_R | PTE_X) == 0 {
                // A pointer to the next level; at the last level it is a fault.
                if level == 0 || pte & (PTE_A | PTE_D | PTE_U) != 0 {
                    return Err(access.page_fault());
                }
                table = ppn << 12;
                continue;
            }
            // A leaf: superpages must be aligned.
            let low_mask = (1u64 << (9 * level)) - 1;
            if ppn & low_mask != 0 {
                return Err(access.page_fault());
            }
            if !permitted(pte, access, prv, self.csr.mstatus) {
                return Err(access.page_fault());
            }
            let mut want = pte | PTE_A;
            if access == Access::Store {
                want |= PTE_D;
            }
            let mut leaf = pte;
            if want != pte {
                match self.mem.cmpxchg(pte_addr, 8, pte, want) {
                    Some((old, _)) if old == pte => leaf = want,
                    // Changed under us by another hart: walk again.
                    Some(_) => return self.walk(va, access, prv, mode),
                    None => return Err(access.access_fault()),
                }
            }
            let page = ppn | ((va >> 12) & low_mask);
            return Ok((page, leaf));
        }
        Err(access.page_fault())
    }
}

impl Hart {
    /// Where virtual `va` is for a debugger: the current data translation, without
    /// permission checks, A/D updates or a TLB fill. None when it is not mapped.
    pub fn debug_translate(&self, va: u64) -> Option<u64> {
        let mode = self.csr.satp >> 60;
        if self.data_prv() == PRV_M || mode == SATP_MODE_BARE {
            return Some(va);
        }
        let levels: u32 = if mode == SATP_MODE_SV48 { 4 } else { 3 };
        let mut table = (self.csr.satp & ((1 << 44) - 1)) << 12;
        for level in (0..levels).rev() {
            let idx = (va >> (12 + 9 * level)) & 0x1ff;
            let at = table + idx * 8;
            if !self.mem.is_ram(at) {
                return None;
            }
            let pte = self.mem.read(at, 8)?;
            if pte & PTE_V == 0 {
                return None;
            }
            let ppn = (pte >> 10) & ((1 << 44) - 1);
            if pte & (PTE_R | PTE_X) == 0 {
                table = ppn << 12;
                continue;
            }
            let low = (1u64 << (12 + 9 * level)) - 1;
            return Some((ppn << 12 & !low) | (va & low));
        }
        None
    }

    /// Reads guest memory at virtual `va` for a debugger (RAM and devices); false when some
    /// byte is not mapped.
    pub fn debug_read(&self, va: u64, buf: &mut [u8]) -> bool {
        for (i, b) in buf.iter_mut().enumerate() {
            let Some(v) = self
                .debug_translate(va.wrapping_add(i as u64))
                .and_then(|pa| self.mem.read(pa, 1))
            else {
                return false;
            };
            *b = v as u8;
        }
        true
    }

    /// Writes guest memory at virtual `va` for a debugger; translated code there is
    /// invalidated as for any store.
    pub fn debug_write(&self, va: u64, data: &[u8]) -> bool {
        for (i, &b) in data.iter().enumerate() {
            let ok = self
                .debug_translate(va.wrapping_add(i as u64))
                .is_some_and(|pa| self.mem.write(pa, 1, b as u64).is_ok());
            if !ok {
                return false;
            }
        }
        true
    }
}
