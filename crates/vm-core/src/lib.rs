//! Shared foundations for every Tandem machine: guest memory, the address bus that
//! routes port/MMIO accesses to device models, and the interrupt line abstraction.
//!
//! Nothing here knows which accelerator (KVM or the translator) runs the guest; that is
//! what lets one device model serve both machines.

pub mod bus;
pub mod irq;
pub mod memory;

pub use bus::{Bus, BusDevice, BusError};
pub use irq::{Irq, IrqError};
pub use memory::{GuestMemory, MemoryError};
