//! The privileged CSRs: numbers, access rules (privilege, read-only, Sstc/counter enables,
//! TVM) and the WARL behaviour of each writable field.

use super::hart::{Hart, PRV_M, PRV_S};
use super::mmu::{SATP_MODE_BARE, SATP_MODE_SV39, SATP_MODE_SV48};
use super::trap::{irq, MENVCFG_STCE, MSTATUS_TVM};
use std::sync::atomic::Ordering;

pub const SSTATUS: u32 = 0x100;
pub const SIE: u32 = 0x104;
pub const STVEC: u32 = 0x105;
pub const SCOUNTEREN: u32 = 0x106;
pub const SENVCFG: u32 = 0x10a;
pub const SSCRATCH: u32 = 0x140;
pub const SEPC: u32 = 0x141;
pub const SCAUSE: u32 = 0x142;
pub const STVAL: u32 = 0x143;
pub const SIP: u32 = 0x144;
pub const STIMECMP: u32 = 0x14d;
pub const SATP: u32 = 0x180;
pub const MSTATUS: u32 = 0x300;
pub const MISA: u32 = 0x301;
pub const MEDELEG: u32 = 0x302;
pub const MIDELEG: u32 = 0x303;
pub const MIE: u32 = 0x304;
pub const MTVEC: u32 = 0x305;
pub const MCOUNTEREN: u32 = 0x306;
pub const MENVCFG: u32 = 0x30a;
pub const MCOUNTINHIBIT: u32 = 0x320;
pub const MSCRATCH: u32 = 0x340;
pub const MEPC: u32 = 0x341;
pub const MCAUSE: u32 = 0x342;
pub const MTVAL: u32 = 0x343;
pub const MIP: u32 = 0x344;
pub const MCYCLE: u32 = 0xb00;
pub const MINSTRET: u32 = 0xb02;
pub const CYCLE: u32 = 0xc00;
pub const TIME: u32 = 0xc01;
pub const INSTRET: u32 = 0xc02;
pub const MVENDORID: u32 = 0xf11;
pub const MARCHID: u32 = 0xf12;
pub const MIMPID: u32 = 0xf13;
pub const MHARTID: u32 = 0xf14;
pub const MCONFIGPTR: u32 = 0xf15;

/// RV64 with A, C, D, F, I, M, S and U.
pub const MISA_VALUE: u64 =
    2 << 62 | 1 << 0 | 1 << 2 | 1 << 3 | 1 << 5 | 1 << 8 | 1 << 12 | 1 << 18 | 1 << 20;

/// mstatus bits software can write: SIE, MIE, SPIE, MPIE, SPP, MPP, FS, MPRV, SUM, MXR,
/// TVM, TW, TSR (UXL/SXL are fixed at 64 bits; no V extension, no XS).
const MSTATUS_WRITABLE: u64 = 0x7e_79aa;
/// The part of mstatus that sstatus shows: SIE, SPIE, SPP, FS, XS, SUM, MXR, UXL, SD.
const SSTATUS_MASK: u64 = 0x8000_0003_000d_e122;
const FS: u64 = 3 << 13;
const SD: u64 = 1 << 63;
/// Interrupts that exist: SSI, MSI, STI, MTI, SEI, MEI.
const MIE_WRITABLE: u64 = 0xaaa;
/// What M-mode may delegate: the S-level interrupts.
const MIDELEG_WRITABLE: u64 = 1 << irq::SSI | 1 << irq::STI | 1 << irq::SEI;
/// Exceptions that may be delegated (not ecall from M).
const MEDELEG_WRITABLE: u64 = 0xb3ff;
/// mip bits M-mode software may write (MSIP, MTIP, MEIP come from devices).
const MIP_WRITABLE: u64 = 1 << irq::SSI | 1 << irq::STI | 1 << irq::SEI;
/// menvcfg: FIOM, CBIE/CBCFE/CBZE are absent; STCE only (PBMTE not implemented).
const MENVCFG_WRITABLE: u64 = MENVCFG_STCE | 1;

/// How a CSR instruction accesses a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsrOp {
    Write,
    Set,
    Clear,
}

/// mtvec/stvec: modes 2 and 3 are reserved; a write naming one is ignored (as QEMU does).
fn set_tvec(reg: &mut u64, v: u64) {
    if v & 3 < 2 {
        *reg = v;
    }
}

impl Hart {
    /// A CSR instruction: returns the old value, or None when the access is illegal.
    pub fn csr_access(&mut self, csr: u32, op: CsrOp, src: u64, writes: bool) -> Option<u64> {
        let min_prv = ((csr >> 8) & 3) as u64;
        if self.csr.prv < min_prv || (writes && csr >> 10 == 3) {
            return None;
        }
        let old = self.csr_read(csr)?;
        if writes {
            // A read-modify-write of mip works on SEIP's software-written bit, not on the
            // OR with the PLIC's line that a read returns (else the line would be latched).
            let base = if csr == MIP {
                let seip = 1 << irq::SEI;
                (old & !seip) | (self.csr.mip_sw & seip)
            } else {
                old
            };
            let new = match op {
                CsrOp::Write => src,
                CsrOp::Set => base | src,
                CsrOp::Clear => base & !src,
            };
            self.csr_write(csr, new)?;
        }
        Some(old)
    }

    /// Counter enables: may the current privilege read counter `bit` (0 cycle, 1 time, 2
    /// instret)?
    fn counter_allowed(&self, bit: u32) -> bool {
        let m = self.csr.mcounteren >> bit & 1 != 0;
        let s = self.csr.scounteren >> bit & 1 != 0;
        match self.csr.prv {
            PRV_M => true,
            PRV_S => m,
            _ => m && s,
        }
    }

    fn mstatus_read(&self) -> u64 {
        let s = self.csr.mstatus;
        if s & FS == FS {
            s | SD
        } else {
            s
        }
    }

    fn csr_read(&self, csr: u32) -> Option<u64> {
        let c = &self.csr;
        Some(match csr {
            SSTATUS => self.mstatus_read() & SSTATUS_MASK,
            SIE => c.mie & c.mideleg,
            STVEC => c.stvec,
            SCOUNTEREN => c.scounteren,
            SENVCFG => c.senvcfg,
            SSCRATCH => c.sscratch,
            SEPC => c.sepc,
            SCAUSE => c.scause,
            STVAL => c.stval,
            SIP => self.mip() & c.mideleg,
            STIMECMP => {
                if !self.stimecmp_allowed() {
                    return None;
                }
                c.stimecmp
            }
            SATP => {
                if c.prv == PRV_S && c.mstatus & MSTATUS_TVM != 0 {
                    return None;
                }
                c.satp
            }
            MSTATUS => self.mstatus_read(),
            MISA => MISA_VALUE,
            MEDELEG => c.medeleg,
            MIDELEG => c.mideleg,
            MIE => c.mie,
            MTVEC => c.mtvec,
            MCOUNTEREN => c.mcounteren,
            MENVCFG => c.menvcfg,
            MCOUNTINHIBIT => c.mcountinhibit,
            MSCRATCH => c.mscratch,
            MEPC => c.mepc,
            MCAUSE => c.mcause,
            MTVAL => c.mtval,
            MIP => self.mip(),
            0x3a0..=0x3af => {
                // RV64 has only the even pmpcfg registers.
                if csr & 1 != 0 {
                    return None;
                }
                c.pmpcfg[(csr - 0x3a0) as usize]
            }
            0x3b0..=0x3ef => c.pmpaddr[(csr - 0x3b0) as usize],
            MCYCLE | MINSTRET => self.timebase.mtime(),
            0xb03..=0xb1f | 0x323..=0x33f => 0,
            CYCLE | TIME | INSTRET => {
                if !self.counter_allowed(csr - CYCLE) {
                    return None;
                }
                self.timebase.mtime()
            }
            0xc03..=0xc1f => {
                if !self.counter_allowed(csr - CYCLE) {
                    return None;
                }
                0
            }
            MVENDORID | MARCHID | MIMPID | MCONFIGPTR => 0,
            MHARTID => self.id(),
            _ => return None,
        })
    }

    fn stimecmp_allowed(&self) -> bool {
        match self.csr.prv {
            PRV_M => true,
            PRV_S => self.csr.menvcfg & MENVCFG_STCE != 0 && self.csr.mcounteren & 2 != 0,
            _ => false,
        }
    }

    fn csr_write(&mut self, csr: u32, v: u64) -> Option<()> {
        match csr {
            SSTATUS => {
                let m = SSTATUS_MASK & MSTATUS_WRITABLE;
                self.set_mstatus((self.csr.mstatus & !m) | (v & m));
            }
            SIE => {
                let m = self.csr.mideleg & MIE_WRITABLE;
                self.csr.mie = (self.csr.mie & !m) | (v & m);
            }
            STVEC => set_tvec(&mut self.csr.stvec, v),
            SCOUNTEREN => self.csr.scounteren = v & 0xffff_ffff,
            SENVCFG => self.csr.senvcfg = v & 1,
            SSCRATCH => self.csr.sscratch = v,
            SEPC => self.csr.sepc = v & !1,
            SCAUSE => self.csr.scause = v,
            STVAL => self.csr.stval = v,
            SIP => {
                let m = self.csr.mideleg & (1 << irq::SSI);
                self.write_shared_mip(m, v);
            }
            STIMECMP => {
                self.csr.stimecmp = v;
                self.publish_stimecmp();
            }
            SATP => {
                if self.csr.prv == PRV_S && self.csr.mstatus & MSTATUS_TVM != 0 {
                    return None;
                }
                let mode = v >> 60;
                if matches!(mode, SATP_MODE_BARE | SATP_MODE_SV39 | SATP_MODE_SV48) {
                    // Every field (16-bit ASID, 44-bit PPN) is writable; the TLB is not
                    // tagged by ASID, so any change flushes it.
                    let nv = if mode == SATP_MODE_BARE { 0 } else { v };
                    if nv != self.csr.satp {
                        self.csr.satp = nv;
                        self.flush_tlb();
                    }
                }
            }
            MSTATUS => {
                let m = MSTATUS_WRITABLE;
                self.set_mstatus((self.csr.mstatus & !m) | (v & m));
            }
            MISA | MCONFIGPTR => {}
            MEDELEG => self.csr.medeleg = v & MEDELEG_WRITABLE,
            MIDELEG => self.csr.mideleg = v & MIDELEG_WRITABLE,
            MIE => self.csr.mie = v & MIE_WRITABLE,
            MTVEC => set_tvec(&mut self.csr.mtvec, v),
            MCOUNTEREN => self.csr.mcounteren = v & 0xffff_ffff,
            MENVCFG => {
                self.csr.menvcfg = v & MENVCFG_WRITABLE;
                self.publish_stimecmp();
            }
            MCOUNTINHIBIT => self.csr.mcountinhibit = v & 0xffff_fffd,
            MSCRATCH => self.csr.mscratch = v,
            MEPC => self.csr.mepc = v & !1,
            MCAUSE => self.csr.mcause = v,
            MTVAL => self.csr.mtval = v,
            MIP => {
                let mut m = MIP_WRITABLE;
                if self.csr.menvcfg & MENVCFG_STCE != 0 {
                    m &= !(1 << irq::STI);
                }
                // SEIP's software part is the hart's own; SSIP and STIP are shared with
                // whoever else sets them (SBI IPIs from other harts).
                let own = m & (1 << irq::SEI);
                self.csr.mip_sw = (self.csr.mip_sw & !own) | (v & own);
                self.write_shared_mip(m & !own, v);
            }
            0x3a0..=0x3af => self.csr.pmpcfg[(csr - 0x3a0) as usize] = v,
            0x3b0..=0x3ef => self.csr.pmpaddr[(csr - 0x3b0) as usize] = v & ((1 << 54) - 1),
            // Counters are derived from time; writes are accepted and have no effect.
            MCYCLE | MINSTRET | 0xb03..=0xb1f | 0x323..=0x33f => {}
            _ => return None,
        }
        Some(())
    }

    /// Writes the `mask` bits of the atomically shared pending bits.
    fn write_shared_mip(&self, mask: u64, v: u64) {
        self.shared.mip.fetch_and(!(mask & !v), Ordering::SeqCst);
        self.shared.mip.fetch_or(mask & v, Ordering::SeqCst);
    }

    fn set_mstatus(&mut self, mut v: u64) {
        // MPP cannot hold the reserved value 2 (WARL): keep the previous one.
        if (v >> 11) & 3 == 2 {
            v = (v & !(3 << 11)) | (self.csr.mstatus & (3 << 11));
        }
        let changed = v ^ self.csr.mstatus;
        self.csr.mstatus = v;
        // SUM and MPRV select another bank of the inline TLB (blocks are translated per
        // bank); MXR changes what loads may read in every bank.
        if changed & super::mmu::MSTATUS_MXR != 0 {
            self.soft.flush();
        }
    }

    /// Mirrors the Sstc compare value for the timer thread.
    pub fn publish_stimecmp(&self) {
        let v = if self.csr.menvcfg & MENVCFG_STCE != 0 {
            self.csr.stimecmp
        } else {
            u64::MAX
        };
        self.shared.stimecmp.store(v, Ordering::SeqCst);
        self.shared.timer_changed();
    }

    /// SBI (built-in firmware) timer: programs the supervisor timer through the same
    /// compare register as Sstc.
    pub fn sbi_set_timer(&mut self, value: u64) {
        self.csr.menvcfg |= MENVCFG_STCE;
        self.csr.stimecmp = value;
        self.publish_stimecmp();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_match_the_field_layout() {
        // SIE 1, MIE 3, SPIE 5, MPIE 7, SPP 8, MPP 11-12, FS 13-14, MPRV 17, SUM 18,
        // MXR 19, TVM 20, TW 21, TSR 22.
        let fields = [1, 3, 5, 7, 8, 11, 12, 13, 14, 17, 18, 19, 20, 21, 22];
        assert_eq!(
            MSTATUS_WRITABLE,
            fields.iter().map(|b| 1u64 << b).sum::<u64>()
        );
        // SIE 1, SPIE 5, SPP 8, FS 13-14, XS 15-16, SUM 18, MXR 19, UXL 32-33, SD 63.
        let s = [1, 5, 8, 13, 14, 15, 16, 18, 19, 32, 33, 63];
        assert_eq!(SSTATUS_MASK, s.iter().map(|b| 1u64 << b).sum::<u64>());
        assert_eq!(MISA_VALUE & 0xff_ffff, 0x14112d);
    }
}
