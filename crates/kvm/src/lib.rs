//! The KVM accelerator: VM and vCPU lifecycle through `/dev/kvm`, and everything x86-64
//! needs before its first instruction (boot protocol structures, page tables, CPUID, MSRs,
//! the MP table).
//!
//! This crate knows nothing about device models: a vCPU exit is handed back to the caller
//! as a [`VcpuExit`], and the caller routes it through its `Bus`.

pub mod kick;
mod vcpu;
mod vm;
pub mod x86;

pub use kick::BoundVcpu;
pub use vcpu::{ExitHandler, Vcpu, VcpuError, VcpuExit};
pub use vm::{IrqLine, Vm, VmError};
