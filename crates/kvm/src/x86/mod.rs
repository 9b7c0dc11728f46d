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
