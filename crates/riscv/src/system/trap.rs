//! Traps: exceptions and interrupts with delegation, `mret`/`sret`, and which pending
//! interrupt (if any) the hart takes now.

use super::hart::{Hart, PRV_M, PRV_S, PRV_U};
use std::sync::atomic::Ordering;

pub mod cause {
    pub const FETCH_MISALIGNED: u64 = 0;
    pub const FETCH_ACCESS: u64 = 1;
    pub const ILLEGAL: u64 = 2;
    pub const BREAKPOINT: u64 = 3;
    pub const LOAD_MISALIGNED: u64 = 4;
    pub const LOAD_ACCESS: u64 = 5;
    pub const STORE_MISALIGNED: u64 = 6;
    pub const STORE_ACCESS: u64 = 7;
    pub const ECALL_U: u64 = 8;
    pub const ECALL_S: u64 = 9;
    pub const ECALL_M: u64 = 11;
    pub const FETCH_PAGE_FAULT: u64 = 12;
    pub const LOAD_PAGE_FAULT: u64 = 13;
    pub const STORE_PAGE_FAULT: u64 = 15;
    pub const INTERRUPT: u64 = 1 << 63;
}

/// Interrupt numbers (bit positions in mip/mie).
pub mod irq {
    pub const SSI: u32 = 1;
    pub const MSI: u32 = 3;
    pub const STI: u32 = 5;
    pub const MTI: u32 = 7;
    pub const SEI: u32 = 9;
    pub const MEI: u32 = 11;
}

pub const MSTATUS_SIE: u64 = 1 << 1;
pub const MSTATUS_MIE: u64 = 1 << 3;
pub const MSTATUS_SPIE: u64 = 1 << 5;
pub const MSTATUS_MPIE: u64 = 1 << 7;
pub const MSTATUS_SPP: u64 = 1 << 8;
pub const MSTATUS_MPP: u64 = 3 << 11;
pub const MSTATUS_MPRV: u64 = 1 << 17;
pub const MSTATUS_TVM: u64 = 1 << 20;
pub const MSTATUS_TW: u64 = 1 << 21;
pub const MSTATUS_TSR: u64 = 1 << 22;

/// menvcfg.STCE: the Sstc extension's `stimecmp` is enabled.
pub const MENVCFG_STCE: u64 = 1 << 63;

/// Order in which simultaneously pending interrupts are taken.
const PRIORITY: [u32; 6] = [irq::MEI, irq::MSI, irq::MTI, irq::SEI, irq::SSI, irq::STI];

impl Hart {
    /// mip as the guest reads it: software bits, device bits and the timers.
    pub fn mip(&self) -> u64 {
        let mut mip = self.csr.mip_sw | self.shared.mip.load(Ordering::SeqCst);
        let now = self.timebase.mtime();
        if now >= self.shared.mtimecmp.load(Ordering::SeqCst) {
            mip |= 1 << irq::MTI;
        }
        if self.csr.menvcfg & MENVCFG_STCE != 0 {
            mip &= !(1 << irq::STI);
            if now >= self.csr.stimecmp {
                mip |= 1 << irq::STI;
            }
        }
        mip
    }

    /// The interrupt the hart must take now, if any.
    pub fn pending_interrupt(&self) -> Option<u32> {
        let pending = self.mip() & self.csr.mie;
        if pending == 0 {
            return None;
        }
        let (prv, st) = (self.csr.prv, self.csr.mstatus);
        let m_on = prv < PRV_M || st & MSTATUS_MIE != 0;
        let s_on = prv < PRV_S || (prv == PRV_S && st & MSTATUS_SIE != 0);
        let m_pending = if m_on { pending & !self.csr.mideleg } else { 0 };
        let s_pending = if s_on { pending & self.csr.mideleg } else { 0 };
        let take = if m_pending != 0 { m_pending } else { s_pending };
        PRIORITY.into_iter().find(|&i| take & (1 << i) != 0)
    }

    /// Whether `wfi` may return: some interrupt is pending and enabled in mie, whatever the
    /// global enables say.
    pub fn wakeup_pending(&self) -> bool {
        self.mip() & self.csr.mie != 0
    }

    /// Takes a trap at the current pc (the faulting instruction, or the next one to run for
    /// an interrupt).
    pub fn take_trap(&mut self, cause: u64, tval: u64) {
        let interrupt = cause & cause::INTERRUPT != 0;
        let code = cause & !cause::INTERRUPT;
        let deleg = if interrupt {
            self.csr.mideleg
        } else {
            self.csr.medeleg
        };
        let prv = self.csr.prv;
        let pc = self.cpu.pc;
        let st = self.csr.mstatus;
        let to_s = prv <= PRV_S && code < 64 && deleg & (1 << code) != 0;
        let (tvec, new_status) = if to_s {
            self.csr.scause = cause;
            self.csr.sepc = pc;
            self.csr.stval = tval;
            let mut s = st & !(MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SIE);
            if st & MSTATUS_SIE != 0 {
                s |= MSTATUS_SPIE;
            }
            if prv == PRV_S {
                s |= MSTATUS_SPP;
            }
            self.csr.prv = PRV_S;
            (self.csr.stvec, s)
        } else {
            self.csr.mcause = cause;
            self.csr.mepc = pc;
            self.csr.mtval = tval;
            let mut s = st & !(MSTATUS_MPIE | MSTATUS_MPP | MSTATUS_MIE);
            if st & MSTATUS_MIE != 0 {
                s |= MSTATUS_MPIE;
            }
            s |= prv << 11;
            self.csr.prv = PRV_M;
            (self.csr.mtvec, s)
        };
        self.csr.mstatus = new_status;
        let base = tvec & !3;
        self.cpu.pc = if interrupt && tvec & 3 == 1 {
            base.wrapping_add(4 * code)
        } else {
            base
        };
        // LR reservations do not survive a trap.
        self.cpu.res_addr = u64::MAX;
        if (prv == PRV_M) != (self.csr.prv == PRV_M) {
            self.epoch = self.epoch.wrapping_add(1);
        }
    }

    /// `mret` (`machine`) or `sret`; false when it is illegal here.
    pub fn xret(&mut self, machine: bool) -> bool {
        let prv = self.csr.prv;
        let st = self.csr.mstatus;
        let new_prv;
        let mut s = st;
        if machine {
            if prv != PRV_M {
                return false;
            }
            new_prv = (st & MSTATUS_MPP) >> 11;
            s &= !(MSTATUS_MIE | MSTATUS_MPP);
            if st & MSTATUS_MPIE != 0 {
                s |= MSTATUS_MIE;
            }
            s |= MSTATUS_MPIE;
            self.cpu.pc = self.csr.mepc;
        } else {
            if prv == PRV_U || (prv == PRV_S && st & MSTATUS_TSR != 0) {
                return false;
            }
            new_prv = if st & MSTATUS_SPP != 0 { PRV_S } else { PRV_U };
            s &= !(MSTATUS_SIE | MSTATUS_SPP);
            if st & MSTATUS_SPIE != 0 {
                s |= MSTATUS_SIE;
            }
            s |= MSTATUS_SPIE;
            self.cpu.pc = self.csr.sepc;
        }
        if new_prv != PRV_M {
            s &= !MSTATUS_MPRV;
        }
        self.csr.mstatus = s;
        self.csr.prv = new_prv;
        self.cpu.res_addr = u64::MAX;
        if (prv == PRV_M) != (new_prv == PRV_M) {
            self.epoch = self.epoch.wrapping_add(1);
        }
        true
    }

    /// `wfi` and `sfence.vma` legality at the current privilege (TW, TVM).
    pub fn may_wfi(&self) -> bool {
        match self.csr.prv {
            PRV_M => true,
            PRV_U => false,
            _ => self.csr.mstatus & MSTATUS_TW == 0,
        }
    }
    pub fn may_sfence(&self) -> bool {
        match self.csr.prv {
            PRV_M => true,
            PRV_U => false,
            _ => self.csr.mstatus & MSTATUS_TVM == 0,
        }
    }
}
