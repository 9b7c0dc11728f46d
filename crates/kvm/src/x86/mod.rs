//! x86-64 specifics: where things live in guest memory, and the state a vCPU needs
//! before it runs its first instruction.

pub mod acpi;
pub mod boot;
pub mod cpuid;
pub mod gdt;
pub mod layout;
pub mod mptable;
pub mod msr;
pub mod paging;
pub mod regs;

/// The byte that makes `bytes` plus itself sum to zero: the checksum the MP table and ACPI
/// structures carry.
pub(crate) fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b)))
}
