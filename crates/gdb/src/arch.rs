//! The RV64GC register set as GDB sees it: a target description (XML) naming the
//! registers by GDB's RISC-V numbering, and the `g` packet layout.
//!
//! gdbstub_arch's RISC-V target describes the integer registers only, so Tandem has its
//! own `Arch` types (user mode: integer and FP registers; full system: plus the main CSRs
//! and the privilege level) and reuses gdbstub_arch's register ids, which follow GDB's
//! numbering (x0-x31 0-31, pc 32, f0-f31 33-64, CSR n at 65 + n, priv 4161).

use std::sync::OnceLock;

use gdbstub::arch::{Arch, Registers};
use riscv::system::csrs;
use riscv::Cpu;

pub use gdbstub_arch::riscv::reg::id::RiscvRegId as RegId;

/// CSR numbers of the FP control registers (in `Cpu::fcsr`, not in the privileged state).
pub const CSR_FFLAGS: u16 = 1;
pub const CSR_FRM: u16 = 2;
pub const CSR_FCSR: u16 = 3;

/// GDB's register number of CSR 0 (CSR n is `CSR_BASE + n`).
const CSR_BASE: usize = 65;
/// GDB's register number of the privilege level.
const PRIV_REGNUM: usize = 4161;

/// The privileged CSRs a full-system target shows (all read through the hart's CSR file).
pub const SYSTEM_CSRS: &[(&str, u32)] = &[
    ("sstatus", csrs::SSTATUS),
    ("sie", csrs::SIE),
    ("stvec", csrs::STVEC),
    ("scounteren", csrs::SCOUNTEREN),
    ("senvcfg", csrs::SENVCFG),
    ("sscratch", csrs::SSCRATCH),
    ("sepc", csrs::SEPC),
    ("scause", csrs::SCAUSE),
    ("stval", csrs::STVAL),
    ("sip", csrs::SIP),
    ("stimecmp", csrs::STIMECMP),
    ("satp", csrs::SATP),
    ("mstatus", csrs::MSTATUS),
    ("misa", csrs::MISA),
    ("medeleg", csrs::MEDELEG),
    ("mideleg", csrs::MIDELEG),
    ("mie", csrs::MIE),
    ("mtvec", csrs::MTVEC),
    ("mcounteren", csrs::MCOUNTEREN),
    ("menvcfg", csrs::MENVCFG),
    ("mscratch", csrs::MSCRATCH),
    ("mepc", csrs::MEPC),
    ("mcause", csrs::MCAUSE),
    ("mtval", csrs::MTVAL),
    ("mip", csrs::MIP),
    ("time", csrs::TIME),
    ("mhartid", csrs::MHARTID),
];

const GPR_NAMES: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "fp", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
];

const FPR_NAMES: [&str; 32] = [
    "ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2",
    "fa3", "fa4", "fa5", "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9",
    "fs10", "fs11", "ft8", "ft9", "ft10", "ft11",
];

/// The target description; `system` adds the CSR and privilege features.
fn target_xml(system: bool) -> String {
    use std::fmt::Write;
    let mut x = String::from(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n\
         <target version=\"1.0\">\n<architecture>riscv:rv64</architecture>\n\
         <feature name=\"org.gnu.gdb.riscv.cpu\">\n",
    );
    for (i, n) in GPR_NAMES.iter().enumerate() {
        let ty = match i {
            1 => "code_ptr",
            2 | 8 => "data_ptr",
            _ => "int",
        };
        let _ = writeln!(
            x,
            "<reg name=\"{n}\" bitsize=\"64\" type=\"{ty}\" regnum=\"{i}\"/>"
        );
    }
    x.push_str("<reg name=\"pc\" bitsize=\"64\" type=\"code_ptr\" regnum=\"32\"/>\n</feature>\n");
    // The FP registers hold single values NaN-boxed, so GDB shows both views.
    x.push_str(
        "<feature name=\"org.gnu.gdb.riscv.fpu\">\n<union id=\"riscv_double\">\
         <field name=\"float\" type=\"ieee_single\"/>\
         <field name=\"double\" type=\"ieee_double\"/></union>\n",
    );
    for (i, n) in FPR_NAMES.iter().enumerate() {
        let _ = writeln!(
            x,
            "<reg name=\"{n}\" bitsize=\"64\" type=\"riscv_double\" regnum=\"{}\"/>",
            33 + i
        );
    }
    for (n, csr) in [("fflags", CSR_FFLAGS), ("frm", CSR_FRM), ("fcsr", CSR_FCSR)] {
        let _ = writeln!(
            x,
            "<reg name=\"{n}\" bitsize=\"64\" type=\"int\" regnum=\"{}\"/>",
            CSR_BASE + csr as usize
        );
    }
    x.push_str("</feature>\n");
    if system {
        x.push_str("<feature name=\"org.gnu.gdb.riscv.csr\">\n");
        for (n, csr) in SYSTEM_CSRS {
            let _ = writeln!(
                x,
                "<reg name=\"{n}\" bitsize=\"64\" type=\"int\" regnum=\"{}\"/>",
                CSR_BASE + *csr as usize
            );
        }
        x.push_str("</feature>\n<feature name=\"org.gnu.gdb.riscv.virtual\">\n");
        let _ = writeln!(
            x,
            "<reg name=\"priv\" bitsize=\"8\" type=\"int\" regnum=\"{PRIV_REGNUM}\"/>"
        );
        x.push_str("</feature>\n");
    }
    x.push_str("</target>\n");
    x
}

/// The registers of the `g` packet: x0-x31, pc, f0-f31, fflags, frm, fcsr (8 bytes each,
/// little-endian, in GDB's register-number order). The CSRs of a full-system target are
/// not in it: GDB reads them one at a time (`p`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Regs {
    pub x: [u64; 32],
    pub pc: u64,
    /// Raw bits (single values NaN-boxed).
    pub f: [u64; 32],
    /// `frm << 5 | fflags`.
    pub fcsr: u32,
}

impl Regs {
    pub fn from_cpu(cpu: &Cpu) -> Regs {
        Regs {
            x: cpu.x,
            pc: cpu.pc,
            f: cpu.f,
            fcsr: cpu.fcsr,
        }
    }

    pub fn to_cpu(&self, cpu: &mut Cpu) {
        cpu.x = self.x;
        cpu.x[0] = 0;
        cpu.pc = self.pc;
        cpu.f = self.f;
        cpu.fcsr = self.fcsr & 0xff;
    }
}

const G_REGS: usize = 32 + 1 + 32 + 3;

impl Registers for Regs {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.pc
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        let fcsr = u64::from(self.fcsr);
        let words = self
            .x
            .iter()
            .chain(std::iter::once(&self.pc))
            .chain(self.f.iter())
            .copied()
            .chain([fcsr & 0x1f, (fcsr >> 5) & 7, fcsr]);
        for w in words {
            w.to_le_bytes().iter().for_each(|b| write_byte(Some(*b)));
        }
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        // GDB sends back what it received, but accept a packet without the FP part.
        if !bytes.len().is_multiple_of(8) || bytes.len() / 8 < 33 || bytes.len() / 8 > G_REGS {
            return Err(());
        }
        let words: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        self.x.copy_from_slice(&words[..32]);
        self.pc = words[32];
        if words.len() >= 65 {
            self.f.copy_from_slice(&words[33..65]);
        }
        if words.len() == G_REGS {
            let (flags, frm, fcsr) = (words[65], words[66], words[67]);
            // fcsr wins unless its parts were changed on their own.
            let mut v = fcsr & 0xff;
            if flags != v & 0x1f {
                v = (v & !0x1f) | (flags & 0x1f);
            }
            if frm != (v >> 5) & 7 {
                v = (v & 0x1f) | (frm & 7) << 5;
            }
            self.fcsr = v as u32;
        }
        Ok(())
    }
}

/// A register of the user-visible state (`Cpu`): integer, pc, FP and the FP CSRs. None
/// for anything else (privileged CSRs, the privilege level).
pub fn read_cpu_reg(cpu: &Cpu, id: RegId<u64>) -> Option<u64> {
    Some(match id {
        RegId::Gpr(i) => cpu.x[i as usize & 31],
        RegId::Pc => cpu.pc,
        RegId::Fpr(i) => cpu.f[i as usize & 31],
        RegId::Csr(CSR_FFLAGS) => u64::from(cpu.fcsr & 0x1f),
        RegId::Csr(CSR_FRM) => u64::from((cpu.fcsr >> 5) & 7),
        RegId::Csr(CSR_FCSR) => u64::from(cpu.fcsr & 0xff),
        _ => return None,
    })
}

/// Writes a register of the user-visible state; false if `id` is not one.
pub fn write_cpu_reg(cpu: &mut Cpu, id: RegId<u64>, v: u64) -> bool {
    match id {
        RegId::Gpr(0) => {}
        RegId::Gpr(i) => cpu.x[i as usize & 31] = v,
        RegId::Pc => cpu.pc = v,
        RegId::Fpr(i) => cpu.f[i as usize & 31] = v,
        RegId::Csr(CSR_FFLAGS) => cpu.fcsr = (cpu.fcsr & !0x1f) | (v as u32 & 0x1f),
        RegId::Csr(CSR_FRM) => cpu.fcsr = (cpu.fcsr & 0x1f) | (v as u32 & 7) << 5,
        RegId::Csr(CSR_FCSR) => cpu.fcsr = v as u32 & 0xff,
        _ => return false,
    }
    true
}

/// Copies `v` into a register buffer of GDB's size for it; the bytes written.
pub fn put_reg(buf: &mut [u8], v: u64) -> usize {
    let n = buf.len().min(8);
    buf[..n].copy_from_slice(&v.to_le_bytes()[..n]);
    n
}

/// A register value GDB sent (little-endian, up to 8 bytes).
pub fn get_reg(val: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = val.len().min(8);
    b[..n].copy_from_slice(&val[..n]);
    u64::from_le_bytes(b)
}

/// RV64GC for a user-mode process: integer and FP registers.
pub enum Rv64User {}

/// RV64GC for a full-system hart: also the main CSRs and the privilege level.
pub enum Rv64System {}

impl Arch for Rv64User {
    type Usize = u64;
    type Registers = Regs;
    type BreakpointKind = usize;
    type RegId = RegId<u64>;

    fn target_description_xml() -> Option<&'static str> {
        static XML: OnceLock<String> = OnceLock::new();
        Some(XML.get_or_init(|| target_xml(false)))
    }
}

impl Arch for Rv64System {
    type Usize = u64;
    type Registers = Regs;
    type BreakpointKind = usize;
    type RegId = RegId<u64>;

    fn target_description_xml() -> Option<&'static str> {
        static XML: OnceLock<String> = OnceLock::new();
        Some(XML.get_or_init(|| target_xml(true)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_packet_round_trips() {
        let mut cpu = Cpu::new();
        for i in 1..32 {
            cpu.x[i] = i as u64 * 0x1111;
            cpu.f[i] = !(i as u64);
        }
        cpu.pc = 0x8020_0000;
        cpu.fcsr = 0b011_00101;
        let regs = Regs::from_cpu(&cpu);
        let mut bytes = Vec::new();
        regs.gdb_serialize(|b| bytes.push(b.unwrap_or(0)));
        assert_eq!(bytes.len(), G_REGS * 8);
        assert_eq!(&bytes[32 * 8..33 * 8], &0x8020_0000u64.to_le_bytes());
        assert_eq!(bytes[65 * 8], 0b00101, "fflags");
        assert_eq!(bytes[66 * 8], 0b011, "frm");
        let mut back = Regs::default();
        back.gdb_deserialize(&bytes).unwrap();
        assert_eq!(back, regs);
        // Changing fflags alone (as GDB's `G` after `set $fflags`) changes fcsr.
        bytes[65 * 8] = 1;
        back.gdb_deserialize(&bytes).unwrap();
        assert_eq!(back.fcsr, 0b011_00001);
        assert!(back.gdb_deserialize(&bytes[..8 * 10]).is_err());
    }

    #[test]
    fn register_numbers_follow_gdb() {
        use gdbstub::arch::RegId as _;
        let xml = Rv64System::target_description_xml().unwrap();
        assert!(xml.contains("<reg name=\"pc\" bitsize=\"64\" type=\"code_ptr\" regnum=\"32\"/>"));
        assert!(xml.contains("name=\"fcsr\" bitsize=\"64\" type=\"int\" regnum=\"68\""));
        assert!(xml.contains("name=\"satp\" bitsize=\"64\" type=\"int\" regnum=\"449\""));
        assert!(!Rv64User::target_description_xml()
            .unwrap()
            .contains("mstatus"));
        // Every register the XML names maps onto an id of the same size.
        for (n, csr) in SYSTEM_CSRS {
            let (id, size) = RegId::<u64>::from_raw_id(CSR_BASE + *csr as usize).unwrap();
            assert!(matches!(id, RegId::Csr(c) if u32::from(c) == *csr), "{n}");
            assert_eq!(size.map(|s| s.get()), Some(8));
        }
        let (id, size) = RegId::<u64>::from_raw_id(PRIV_REGNUM).unwrap();
        assert!(matches!(id, RegId::Priv));
        assert_eq!(size.map(|s| s.get()), Some(1));
    }

    #[test]
    fn fp_csrs_are_views_of_fcsr() {
        let mut cpu = Cpu::new();
        assert!(write_cpu_reg(&mut cpu, RegId::Csr(CSR_FRM), 4));
        assert!(write_cpu_reg(&mut cpu, RegId::Csr(CSR_FFLAGS), 0x3));
        assert_eq!(cpu.fcsr, 4 << 5 | 3);
        assert_eq!(read_cpu_reg(&cpu, RegId::Csr(CSR_FCSR)), Some(0x83));
        assert!(write_cpu_reg(&mut cpu, RegId::Gpr(0), 5));
        assert_eq!(cpu.x[0], 0);
        assert_eq!(read_cpu_reg(&cpu, RegId::Priv), None);
    }
}
