//! The TLB translated code probes inline (see `dbt::codegen::softmmu`): per translation
//! mode a bank of direct-mapped entries giving, for a virtual page, whether loads and
//! stores may use it and the host address of its guest RAM. Only RAM pages the current
//! mode may access are entered; stores only to pages without translated code and with the
//! dirty bit set. Everything else (devices, faults, misaligned accesses, marked code pages)
//! takes the slow path, [`slow_access`], which walks the page tables and fills the entry.

use super::hart::{Hart, PRV_M, PRV_S, TRAP_FLAG_OFFSET};
use super::mmu::{MSTATUS_MPRV, MSTATUS_SUM};
use dbt::ir::{SoftMmu, TLB_ENTRY_BYTES};
use std::mem::offset_of;

pub const TLB_BITS: u8 = 10;
pub const TLB_ENTRIES: usize = 1 << TLB_BITS;
/// Banks: U, S, S with SUM, M, and M with MPRV (never filled: always the slow path).
pub const BANKS: usize = 5;
const BANK_MPRV: u32 = 4;
/// A tag no address matches (its low bits are never all set in a probe).
pub const NO_PAGE: u64 = u64::MAX;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SoftEntry {
    pub read: u64,
    pub write: u64,
    pub addend: u64,
    /// Guest physical page (to find entries of a page that becomes code).
    pub phys: u64,
}

const EMPTY: SoftEntry = SoftEntry {
    read: NO_PAGE,
    write: NO_PAGE,
    addend: 0,
    phys: NO_PAGE,
};

const _: () = assert!(std::mem::size_of::<SoftEntry>() == TLB_ENTRY_BYTES as usize);

#[repr(C)]
pub struct SoftTlb {
    pub banks: [[SoftEntry; TLB_ENTRIES]; BANKS],
}

impl Default for SoftTlb {
    fn default() -> Self {
        SoftTlb {
            banks: [[EMPTY; TLB_ENTRIES]; BANKS],
        }
    }
}

impl SoftTlb {
    pub fn flush(&mut self) {
        for b in self.banks.iter_mut() {
            b.fill(EMPTY);
        }
    }

    /// Forgets virtual page `va` in every bank (`sfence.vma` with an address).
    pub fn flush_page(&mut self, va: u64) {
        let vpage = va & !0xfff;
        let i = ((va >> 12) as usize) & (TLB_ENTRIES - 1);
        for b in self.banks.iter_mut() {
            if b[i].read == vpage || b[i].write == vpage {
                b[i] = EMPTY;
            }
        }
    }

    /// Stops stores to physical page `phys` from using the fast path.
    pub fn protect(&mut self, phys: u64) {
        for e in self.banks.iter_mut().flatten() {
            if e.phys == phys {
                e.write = NO_PAGE;
            }
        }
    }

    /// Stops stores to every page `is_code` says holds translated code.
    pub fn protect_code(&mut self, is_code: impl Fn(u64) -> bool) {
        for e in self.banks.iter_mut().flatten() {
            if e.write != NO_PAGE && is_code(e.phys) {
                e.write = NO_PAGE;
            }
        }
    }
}

/// The bank data accesses use in this mode.
pub fn bank(prv: u64, mstatus: u64) -> u32 {
    match prv {
        PRV_M if mstatus & MSTATUS_MPRV != 0 => BANK_MPRV,
        PRV_M => 3,
        PRV_S if mstatus & MSTATUS_SUM != 0 => 2,
        PRV_S => 1,
        _ => 0,
    }
}

/// What generated code of a block translated for `bank` needs.
pub fn soft_mmu(bank: u32) -> SoftMmu {
    let bank_bytes = (TLB_ENTRIES * std::mem::size_of::<SoftEntry>()) as u32;
    SoftMmu {
        tlb_offset: (offset_of!(Hart, soft) + offset_of!(SoftTlb, banks)) as u32
            + bank * bank_bytes,
        tlb_bits: TLB_BITS,
        slow: slow_access,
        fault_offset: TRAP_FLAG_OFFSET,
    }
}

impl Hart {
    /// Enters a RAM page the current mode just accessed into its bank.
    pub(super) fn tlb_fill(&mut self, va: u64, pa: u64, write: bool) {
        let b = bank(self.csr.prv, self.csr.mstatus) as usize;
        if b == BANK_MPRV as usize {
            return;
        }
        let (vpage, ppage) = (va & !0xfff, pa & !0xfff);
        let Some(host) = self.mem.host_page(ppage) else {
            return;
        };
        let e = &mut self.soft.banks[b][((va >> 12) as usize) & (TLB_ENTRIES - 1)];
        if e.read != vpage || e.phys != ppage {
            *e = EMPTY;
        }
        e.read = vpage;
        e.phys = ppage;
        e.addend = (host as u64).wrapping_sub(vpage);
        if write && !self.mem.code_pages().is_code(ppage) {
            e.write = vpage;
        }
    }
}

fn hart<'a>(env: *mut u8) -> &'a mut Hart {
    // SAFETY: only generated code and the interpreter of a system-mode block call this,
    // with the env of the `Hart` that `SystemHart::run` exclusively borrows, on its thread.
    unsafe { &mut *(env as *mut Hart) }
}

/// The slow path of a load or store (`info`: see `dbt::ir::SoftMmu::info`): performs the
/// access and fills the TLB; on a guest fault records the exception and sets the trap
/// flag.
pub extern "C" fn slow_access(env: *mut u8, va: u64, value: u64, info: u64) -> u64 {
    let h = hart(env);
    let size = info & 0xff;
    if info >> 9 & 1 != 0 {
        h.store(va, size, value);
        return 0;
    }
    match h.load(va, size) {
        Some(v) if info >> 8 & 1 != 0 && size < 8 => {
            let s = 64 - 8 * size;
            ((v << s) as i64 >> s) as u64
        }
        Some(v) => v,
        None => 0,
    }
}
