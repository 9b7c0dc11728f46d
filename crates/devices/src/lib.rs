//! Device models. Each implements `vm_core::BusDevice` and raises interrupts through
//! `vm_core::Irq`, so the same model serves the KVM machine and the translator's.

pub mod acpi_power;
pub mod debug;
pub mod disk;
pub mod i8042;
pub mod riscv;
pub mod serial;

pub use acpi_power::AcpiPower;
pub use debug::DebugPort;
pub use i8042::I8042;
pub use serial::Serial;

/// A `vm_superio::Trigger` that calls back into the machine, for events that are not
/// interrupts (a reset request, say).
pub struct CallbackTrigger(Box<dyn Fn() + Send>);

impl CallbackTrigger {
    pub fn new(f: impl Fn() + Send + 'static) -> Self {
        Self(Box::new(f))
    }
}

impl vm_superio::Trigger for CallbackTrigger {
    type E = std::convert::Infallible;
    fn trigger(&self) -> Result<(), Self::E> {
        (self.0)();
        Ok(())
    }
}
