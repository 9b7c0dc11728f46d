//! The Intel MultiProcessor Specification 1.4 table: how a guest without ACPI learns
//! how many CPUs it has and how ISA interrupts reach the IOAPIC.

use vm_core::memory::Bytes;
use vm_core::GuestMemory;
use vm_memory::GuestAddress;

use super::checksum;
use super::layout::{IOAPIC_START, LAPIC_START};

const SPEC_REVISION: u8 = 4;
const LAPIC_VERSION: u8 = 0x14;
const IOAPIC_VERSION: u8 = 0x11;
const ISA_BUS_ID: u8 = 0;
/// Number of ISA interrupt lines routed 1:1 to IOAPIC pins.
const ISA_IRQS: u8 = 16;

const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;

const INT_TYPE_INT: u8 = 0;
const INT_TYPE_NMI: u8 = 1;
const INT_TYPE_EXTINT: u8 = 3;

const CPU_ENABLED: u8 = 1;
const CPU_BOOTSTRAP: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum MpTableError {
    #[error("too many vCPUs for the MP table: {0} (the IOAPIC ID must follow the APIC IDs)")]
    TooManyCpus(u8),
    #[error("cannot write the MP table to guest memory: {0}")]
    Write(#[source] vm_memory::GuestMemoryError),
}

/// Builds the configuration table's entries.
fn entries(cpus: u8) -> (Vec<u8>, u16) {
    let ioapic_id = cpus;
    let mut out = Vec::new();
    let mut count = 0u16;
    for cpu in 0..cpus {
        let flags = CPU_ENABLED | if cpu == 0 { CPU_BOOTSTRAP } else { 0 };
        out.extend_from_slice(&[ENTRY_PROCESSOR, cpu, LAPIC_VERSION, flags]);
        // CPU signature (family 6), feature flags (FPU + APIC), reserved.
        out.extend_from_slice(&0x600u32.to_le_bytes());
        out.extend_from_slice(&0x201u32.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        count += 1;
    }
    out.extend_from_slice(&[ENTRY_BUS, ISA_BUS_ID]);
    out.extend_from_slice(b"ISA   ");
    count += 1;
    out.extend_from_slice(&[ENTRY_IOAPIC, ioapic_id, IOAPIC_VERSION, 1]);
    out.extend_from_slice(&(IOAPIC_START as u32).to_le_bytes());
    count += 1;
    for irq in 0..ISA_IRQS {
        // Conforming polarity/trigger (flags 0): ISA defaults, edge and active-high.
        out.extend_from_slice(&[
            ENTRY_IO_INTERRUPT,
            INT_TYPE_INT,
            0,
            0,
            ISA_BUS_ID,
            irq,
            ioapic_id,
            irq,
        ]);
        count += 1;
    }
    // LINT0 carries the PIC (ExtINT), LINT1 NMIs, on every local APIC.
    out.extend_from_slice(&[
        ENTRY_LOCAL_INTERRUPT,
        INT_TYPE_EXTINT,
        0,
        0,
        ISA_BUS_ID,
        0,
        0xff,
        0,
    ]);
    out.extend_from_slice(&[
        ENTRY_LOCAL_INTERRUPT,
        INT_TYPE_NMI,
        0,
        0,
        ISA_BUS_ID,
        0,
        0xff,
        1,
    ]);
    count += 2;
    (out, count)
}

/// Builds the floating pointer and configuration table as bytes for address `at`.
pub fn build(at: u64, cpus: u8) -> Result<Vec<u8>, MpTableError> {
    if cpus == 0 || cpus == u8::MAX {
        return Err(MpTableError::TooManyCpus(cpus));
    }
    const POINTER_LEN: usize = 16;
    const HEADER_LEN: usize = 44;
    let table_at = at + POINTER_LEN as u64;
    let (body, count) = entries(cpus);

    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(b"PCMP");
    header.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_le_bytes());
    header.extend_from_slice(&[SPEC_REVISION, 0]);
    header.extend_from_slice(b"TANDEM  ");
    header.extend_from_slice(b"TANDEM VM   ");
    header.extend_from_slice(&0u32.to_le_bytes()); // no OEM table
    header.extend_from_slice(&0u16.to_le_bytes());
    header.extend_from_slice(&count.to_le_bytes());
    header.extend_from_slice(&(LAPIC_START as u32).to_le_bytes());
    header.extend_from_slice(&[0, 0, 0, 0]); // no extended table
    let mut table = header;
    table.extend_from_slice(&body);
    table[7] = checksum(&table);

    let mut pointer = Vec::with_capacity(POINTER_LEN);
    pointer.extend_from_slice(b"_MP_");
    pointer.extend_from_slice(&(table_at as u32).to_le_bytes());
    pointer.extend_from_slice(&[1, SPEC_REVISION, 0, 0, 0, 0, 0, 0]);
    pointer[10] = checksum(&pointer);

    pointer.extend_from_slice(&table);
    Ok(pointer)
}

pub fn write(memory: &GuestMemory, at: u64, cpus: u8) -> Result<(), MpTableError> {
    let bytes = build(at, cpus)?;
    memory
        .write_slice(&bytes, GuestAddress(at))
        .map_err(MpTableError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_and_counts_are_consistent() {
        let bytes = build(0x9fc00, 3).unwrap();
        let sum = |b: &[u8]| b.iter().fold(0u8, |a, x| a.wrapping_add(*x));
        assert_eq!(&bytes[0..4], b"_MP_");
        assert_eq!(sum(&bytes[..16]), 0);
        let table = &bytes[16..];
        assert_eq!(&table[0..4], b"PCMP");
        let len = u16::from_le_bytes([table[4], table[5]]) as usize;
        assert_eq!(len, table.len());
        assert_eq!(sum(table), 0);
        let count = u16::from_le_bytes([table[34], table[35]]);
        // 3 CPUs + bus + IOAPIC + 16 IRQs + 2 local interrupts.
        assert_eq!(count, 3 + 1 + 1 + 16 + 2);
        let processors: Vec<u8> = (0..3).map(|i| table[44 + i * 20 + 1]).collect();
        assert_eq!(processors, vec![0, 1, 2]);
    }

    #[test]
    fn rejects_impossible_cpu_counts() {
        assert!(build(0, 0).is_err());
        assert!(build(0, 255).is_err());
    }
}
