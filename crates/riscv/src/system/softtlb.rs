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

/// Index bits of each bank: U, S, S with SUM (4096 entries, 16 MiB of pages each), M
/// (bare, mostly firmware) and M with MPRV (one entry that stays empty: always the slow
/// path).
const BANK_BITS: [u8; BANKS] = [12, 12, 12, 8, 0];
pub const BANKS: usize = 5;
const BANK_MPRV: u32 = 4;
/// A tag no address matches (its low bits are never all set in a probe).
pub const NO_PAGE: u64 = u64::MAX;
/// Fills remembered for a cheap flush; past this many, a flush clears every bank.
const FILL_LOG: usize = 4096;

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
    user: [SoftEntry; 1 << 12],
    sup: [SoftEntry; 1 << 12],
    sup_sum: [SoftEntry; 1 << 12],
    machine: [SoftEntry; 1 << 8],
    mprv: [SoftEntry; 1],
    /// (bank, index) of the entries filled since the last flush, while they are few: a
    /// flush (an address-space switch) then clears only those, and a page becoming code
    /// is looked for only there.
    filled: Vec<(u8, u16)>,
    overflowed: bool,
}

impl Default for SoftTlb {
    fn default() -> Self {
        SoftTlb {
            user: [EMPTY; 1 << 12],
            sup: [EMPTY; 1 << 12],
            sup_sum: [EMPTY; 1 << 12],
            machine: [EMPTY; 1 << 8],
            mprv: [EMPTY; 1],
            filled: Vec::with_capacity(FILL_LOG),
            overflowed: false,
        }
    }
}

fn bank_offset(bank: u32) -> usize {
    match bank {
        0 => offset_of!(SoftTlb, user),
        1 => offset_of!(SoftTlb, sup),
        2 => offset_of!(SoftTlb, sup_sum),
        3 => offset_of!(SoftTlb, machine),
        _ => offset_of!(SoftTlb, mprv),
    }
}

impl SoftTlb {
    fn bank_mut(&mut self, bank: usize) -> &mut [SoftEntry] {
        match bank {
            0 => &mut self.user,
            1 => &mut self.sup,
            2 => &mut self.sup_sum,
            3 => &mut self.machine,
            _ => &mut self.mprv,
        }
    }

    fn slot(bank: usize, va: u64) -> usize {
        ((va >> 12) as usize) & ((1 << BANK_BITS[bank]) - 1)
    }

    pub fn flush(&mut self) {
        if self.overflowed {
            for b in 0..BANKS {
                self.bank_mut(b).fill(EMPTY);
            }
        } else {
            for (b, i) in std::mem::take(&mut self.filled) {
                self.bank_mut(b as usize)[i as usize] = EMPTY;
            }
        }
        self.filled.clear();
        self.overflowed = false;
    }

    /// Forgets virtual page `va` in every bank (`sfence.vma` with an address).
    pub fn flush_page(&mut self, va: u64) {
        let vpage = va & !0xfff;
        for b in 0..BANKS {
            let i = Self::slot(b, va);
            let e = &mut self.bank_mut(b)[i];
            if e.read == vpage || e.write == vpage {
                *e = EMPTY;
            }
        }
    }

    /// Applies `f` to every entry that may be filled.
    fn for_filled(&mut self, mut f: impl FnMut(&mut SoftEntry)) {
        if self.overflowed {
            for b in 0..BANKS {
                self.bank_mut(b).iter_mut().for_each(&mut f);
            }
        } else {
            for k in 0..self.filled.len() {
                let (b, i) = self.filled[k];
                f(&mut self.bank_mut(b as usize)[i as usize]);
            }
        }
    }

    /// Stops stores to physical page `phys` from using the fast path.
    pub fn protect(&mut self, phys: u64) {
        self.for_filled(|e| {
            if e.phys == phys {
                e.write = NO_PAGE;
            }
        });
    }

    /// Stops stores to every page `is_code` says holds translated code.
    pub fn protect_code(&mut self, is_code: impl Fn(u64) -> bool) {
        self.for_filled(|e| {
            if e.write != NO_PAGE && is_code(e.phys) {
                e.write = NO_PAGE;
            }
        });
    }

    fn fill(&mut self, bank: usize, va: u64, pa: u64, host: usize, write: bool, code: bool) {
        let (vpage, ppage) = (va & !0xfff, pa & !0xfff);
        let i = Self::slot(bank, va);
        let e = &mut self.bank_mut(bank)[i];
        if e.read != vpage || e.phys != ppage {
            *e = EMPTY;
        }
        e.read = vpage;
        e.phys = ppage;
        e.addend = (host as u64).wrapping_sub(vpage);
        if write && !code {
            e.write = vpage;
        }
        if self.filled.len() < FILL_LOG {
            self.filled.push((bank as u8, i as u16));
        } else {
            self.overflowed = true;
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
    let bank = bank.min(BANK_MPRV);
    SoftMmu {
        tlb_offset: (offset_of!(Hart, soft) + bank_offset(bank)) as u32,
        tlb_bits: BANK_BITS[bank as usize],
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
        let Some(host) = self.mem.host_page(pa & !0xfff) else {
            return;
        };
        let code = write && self.mem.code_pages().is_code(pa & !0xfff);
        self.soft.fill(b, va, pa, host, write, code);
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
