//! Minimal ACPI tables, so a guest can power off: RSDP → XSDT → FADT (hardware-reduced,
//! with a sleep control register on Tandem's power port) + DSDT (just `\_S5_`) + MADT
//! (every vCPU's local APIC and the IOAPIC).
//!
//! The tables live in the BIOS area, where Linux finds the RSDP by scanning; PVH guests
//! are also given the RSDP address in `hvm_start_info`.

use vm_core::memory::Bytes;
use vm_core::GuestMemory;
use vm_memory::GuestAddress;

use super::checksum;
use super::layout::{IOAPIC_START, LAPIC_START};

/// I/O port of the sleep control register: a guest writes SLP_EN | SLP_TYP(5) to power off.
pub const SLEEP_CONTROL_PORT: u16 = 0x600;
/// I/O port of the sleep status register (always reads 0).
pub const SLEEP_STATUS_PORT: u16 = 0x601;
/// I/O port of the reset register; writing [`RESET_VALUE`] resets the machine.
pub const RESET_PORT: u16 = 0x604;
pub const RESET_VALUE: u8 = 0x1;
/// The sleep type the DSDT's `\_S5_` object announces for "soft off".
pub const S5_SLEEP_TYPE: u8 = 5;

const OEM_ID: &[u8; 6] = b"TANDEM";
const OEM_TABLE_ID: &[u8; 8] = b"TANDEMVM";
const CREATOR_ID: &[u8; 4] = b"TNDM";
const FADT_LEN: usize = 276;
const FADT_REVISION: u8 = 6;
const FADT_FLAG_RESET_REG_SUP: u32 = 1 << 10;
const FADT_FLAG_HW_REDUCED_ACPI: u32 = 1 << 20;
/// IA-PC boot architecture flags: an 8042 is present, there is no CMOS RTC.
const IAPC_8042: u16 = 1 << 1;
const IAPC_NO_CMOS_RTC: u16 = 1 << 5;
const SCI_IRQ: u16 = 9;
const MADT_PCAT_COMPAT: u32 = 1;
const GAS_SYSTEM_IO: u8 = 1;
const GAS_ACCESS_BYTE: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum AcpiError {
    #[error("cannot write the ACPI tables to guest memory: {0}")]
    Write(#[source] vm_memory::GuestMemoryError),
}

/// An ACPI table: the 36-byte header, then `body`; length and checksum filled in.
fn sdt(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(36 + body.len());
    t.extend_from_slice(signature);
    t.extend_from_slice(&((36 + body.len()) as u32).to_le_bytes());
    t.push(revision);
    t.push(0); // checksum, below
    t.extend_from_slice(OEM_ID);
    t.extend_from_slice(OEM_TABLE_ID);
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(CREATOR_ID);
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(body);
    t[9] = checksum(&t);
    t
}

/// A Generic Address Structure naming one byte-wide I/O port.
fn io_port_gas(port: u16) -> [u8; 12] {
    let mut gas = [0u8; 12];
    gas[0] = GAS_SYSTEM_IO;
    gas[1] = 8; // register bit width
    gas[3] = GAS_ACCESS_BYTE;
    gas[4..12].copy_from_slice(&u64::from(port).to_le_bytes());
    gas
}

fn fadt(dsdt_addr: u64) -> Vec<u8> {
    // Offsets below are within the whole table (header included), as in the spec.
    let mut f = vec![0u8; FADT_LEN];
    let put =
        |f: &mut Vec<u8>, at: usize, bytes: &[u8]| f[at..at + bytes.len()].copy_from_slice(bytes);
    put(&mut f, 40, &(dsdt_addr as u32).to_le_bytes());
    put(&mut f, 46, &SCI_IRQ.to_le_bytes());
    put(&mut f, 109, &(IAPC_8042 | IAPC_NO_CMOS_RTC).to_le_bytes());
    put(
        &mut f,
        112,
        &(FADT_FLAG_HW_REDUCED_ACPI | FADT_FLAG_RESET_REG_SUP).to_le_bytes(),
    );
    put(&mut f, 116, &io_port_gas(RESET_PORT));
    f[128] = RESET_VALUE;
    put(&mut f, 140, &dsdt_addr.to_le_bytes());
    put(&mut f, 244, &io_port_gas(SLEEP_CONTROL_PORT));
    put(&mut f, 256, &io_port_gas(SLEEP_STATUS_PORT));
    put(&mut f, 268, b"TANDEM\0\0");
    sdt(b"FACP", FADT_REVISION, &f[36..])
}

fn dsdt() -> Vec<u8> {
    // Name (_S5_, Package (4) { 5, 0, 0, 0 }) in AML.
    let aml = [
        0x08,
        b'_',
        b'S',
        b'5',
        b'_', // NameOp "_S5_"
        0x12,
        0x07,
        0x04, // PackageOp, PkgLength 7, NumElements 4
        0x0a,
        S5_SLEEP_TYPE, // BytePrefix SLP_TYPa
        0x00,
        0x00,
        0x00, // Zero (SLP_TYPb), two reserved
    ];
    sdt(b"DSDT", 2, &aml)
}

fn madt(cpus: u8) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(LAPIC_START as u32).to_le_bytes());
    body.extend_from_slice(&MADT_PCAT_COMPAT.to_le_bytes());
    for cpu in 0..cpus {
        // Processor Local APIC: UID, APIC ID, enabled.
        body.extend_from_slice(&[0, 8, cpu, cpu]);
        body.extend_from_slice(&1u32.to_le_bytes());
    }
    // I/O APIC: ID after the last CPU's (as in the MP table), address, GSI base 0.
    body.extend_from_slice(&[1, 12, cpus, 0]);
    body.extend_from_slice(&(IOAPIC_START as u32).to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    // Local APIC NMI on LINT1 of every processor.
    body.extend_from_slice(&[4, 6, 0xff, 0, 0, 1]);
    sdt(b"APIC", 4, &body)
}

/// Writes all tables from `at` on; returns the RSDP's address (which is `at`). Without
/// `apic` (no in-kernel irqchip: no local APICs, no IOAPIC) there is no MADT, so the
/// guest uses the 8259A PIC.
pub fn write(memory: &GuestMemory, at: u64, cpus: u8, apic: bool) -> Result<u64, AcpiError> {
    const RSDP_LEN: u64 = 36;
    let align = |x: u64| (x + 15) & !15;
    let dsdt = dsdt();
    let dsdt_at = align(at + RSDP_LEN);
    let fadt_at = align(dsdt_at + dsdt.len() as u64);
    let fadt = fadt(dsdt_at);
    let madt_at = align(fadt_at + fadt.len() as u64);
    let madt = if apic { madt(cpus) } else { Vec::new() };
    let xsdt_at = align(madt_at + madt.len() as u64);
    let mut entries = Vec::new();
    entries.extend_from_slice(&fadt_at.to_le_bytes());
    if apic {
        entries.extend_from_slice(&madt_at.to_le_bytes());
    }
    let xsdt = sdt(b"XSDT", 1, &entries);

    let mut rsdp = Vec::with_capacity(RSDP_LEN as usize);
    rsdp.extend_from_slice(b"RSD PTR ");
    rsdp.push(0); // checksum over the first 20 bytes, below
    rsdp.extend_from_slice(OEM_ID);
    rsdp.push(2); // revision: ACPI 2.0+, XSDT
    rsdp.extend_from_slice(&0u32.to_le_bytes()); // no RSDT
    rsdp.extend_from_slice(&(RSDP_LEN as u32).to_le_bytes());
    rsdp.extend_from_slice(&xsdt_at.to_le_bytes());
    rsdp.extend_from_slice(&[0, 0, 0, 0]); // extended checksum, reserved
    rsdp[8] = checksum(&rsdp[..20]);
    rsdp[32] = checksum(&rsdp);

    for (bytes, addr) in [
        (&rsdp, at),
        (&dsdt, dsdt_at),
        (&fadt, fadt_at),
        (&madt, madt_at),
        (&xsdt, xsdt_at),
    ] {
        memory
            .write_slice(bytes, GuestAddress(addr))
            .map_err(AcpiError::Write)?;
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums_to_zero(b: &[u8]) -> bool {
        b.iter().fold(0u8, |a, x| a.wrapping_add(*x)) == 0
    }

    #[test]
    fn tables_are_well_formed() {
        let f = fadt(0x1234);
        assert_eq!(f.len(), FADT_LEN);
        assert!(sums_to_zero(&f));
        assert_eq!(&f[0..4], b"FACP");
        assert_eq!(
            u32::from_le_bytes(f[112..116].try_into().unwrap()) & FADT_FLAG_HW_REDUCED_ACPI,
            FADT_FLAG_HW_REDUCED_ACPI
        );
        assert_eq!(
            u64::from_le_bytes(f[248..256].try_into().unwrap()),
            u64::from(SLEEP_CONTROL_PORT)
        );
        let m = madt(3);
        assert!(sums_to_zero(&m));
        assert_eq!(m.len(), 36 + 8 + 3 * 8 + 12 + 6);
        let d = dsdt();
        assert!(sums_to_zero(&d));
        assert_eq!(&d[36..41], b"\x08_S5_");
    }

    #[test]
    fn rsdp_checksums_hold_in_memory() {
        let mem = vm_core::memory::create(&[(0, 1 << 20)]).unwrap();
        let at = write(&mem, 0xe0000, 2, true).unwrap();
        let mut rsdp = [0u8; 36];
        mem.read_slice(&mut rsdp, GuestAddress(at)).unwrap();
        assert_eq!(&rsdp[..8], b"RSD PTR ");
        assert!(sums_to_zero(&rsdp[..20]) && sums_to_zero(&rsdp));
        let xsdt_at = u64::from_le_bytes(rsdp[24..32].try_into().unwrap());
        let mut xsdt = [0u8; 52];
        mem.read_slice(&mut xsdt, GuestAddress(xsdt_at)).unwrap();
        assert_eq!(&xsdt[..4], b"XSDT");
        assert!(sums_to_zero(&xsdt));
    }

    #[test]
    fn without_apics_there_is_no_madt() {
        let mem = vm_core::memory::create(&[(0, 1 << 20)]).unwrap();
        let at = write(&mem, 0xe0000, 1, false).unwrap();
        let xsdt_at: u64 = mem.read_obj(GuestAddress(at + 24)).unwrap();
        let mut xsdt = [0u8; 44];
        mem.read_slice(&mut xsdt, GuestAddress(xsdt_at)).unwrap();
        assert_eq!(&xsdt[..4], b"XSDT");
        assert_eq!(u32::from_le_bytes(xsdt[4..8].try_into().unwrap()), 44);
        assert!(sums_to_zero(&xsdt));
        let fadt_at = u64::from_le_bytes(xsdt[36..44].try_into().unwrap());
        let mut sig = [0u8; 4];
        mem.read_slice(&mut sig, GuestAddress(fadt_at)).unwrap();
        assert_eq!(&sig, b"FACP");
    }
}
