//! Interrupt lines as devices see them.
//!
//! A device raises its line; the machine decides what that means (a KVM irqfd, a GSI
//! level change, or the emulated RISC-V PLIC).

#[derive(Debug, thiserror::Error)]
#[error("cannot signal interrupt line")]
pub struct IrqError(#[source] pub std::io::Error);

/// One interrupt line owned by a device.
pub trait Irq: Send + Sync {
    /// Signals an edge (or asserts-then-deasserts a level) on the line.
    fn trigger(&self) -> Result<(), IrqError>;
}

/// A line that goes nowhere, for devices whose interrupt is not wired.
pub struct NoIrq;

impl Irq for NoIrq {
    fn trigger(&self) -> Result<(), IrqError> {
        Ok(())
    }
}
