//! The x86-64 KVM machine: legacy PC devices on the port bus, platform devices on the
//! MMIO bus, and either KVM's in-kernel PIC/IOAPIC/LAPIC/PIT or Tandem's own 8259A PIC
//! (`--irqchip userspace`).

mod irqchip;
mod machine;
mod stats;
mod vcpu_thread;
mod virtio;

pub use machine::{MachineError, X86Machine};
pub use stats::VcpuStats;

/// COM1 and its ISA interrupt.
pub const COM1_PORT: u64 = 0x3f8;
pub const COM1_IRQ: u32 = 4;
