//! The registers the hardware-reduced ACPI tables point at: a sleep control register
//! (power off on S5), a sleep status register, and a reset register. Port numbers and
//! values are defined with the tables (`kvm::x86::acpi`); the machine passes the values in.

use vm_core::BusDevice;

/// Sleep control register bits (ACPI 6, 4.8.3.7).
const SLP_EN: u8 = 1 << 5;
const SLP_TYP_SHIFT: u8 = 2;
const SLP_TYP_MASK: u8 = 0x7;

const SLEEP_CONTROL_OFFSET: u64 = 0;
const RESET_OFFSET: u64 = 4;
pub const PORT_LEN: u64 = 5;

type Callback = Box<dyn Fn() + Send>;

pub struct AcpiPower {
    soft_off_type: u8,
    reset_value: u8,
    on_power_off: Callback,
    on_reset: Callback,
}

impl AcpiPower {
    pub fn new(
        soft_off_type: u8,
        reset_value: u8,
        on_power_off: impl Fn() + Send + 'static,
        on_reset: impl Fn() + Send + 'static,
    ) -> Self {
        Self {
            soft_off_type,
            reset_value,
            on_power_off: Box::new(on_power_off),
            on_reset: Box::new(on_reset),
        }
    }
}

impl BusDevice for AcpiPower {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(&value) = data.first() else { return };
        match offset {
            SLEEP_CONTROL_OFFSET
                if value & SLP_EN != 0
                    && (value >> SLP_TYP_SHIFT) & SLP_TYP_MASK == self.soft_off_type =>
            {
                (self.on_power_off)()
            }
            RESET_OFFSET if value == self.reset_value => (self.on_reset)(),
            _ => log::debug!("acpi: ignored write {value:#x} at offset {offset}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[test]
    fn s5_powers_off_and_reset_value_resets() {
        let events = Arc::new(AtomicU32::new(0));
        let (a, b) = (events.clone(), events.clone());
        let mut dev = AcpiPower::new(
            5,
            1,
            move || {
                a.fetch_add(1, Ordering::SeqCst);
            },
            move || {
                b.fetch_add(100, Ordering::SeqCst);
            },
        );
        dev.write(0, &[5 << 2]); // no SLP_EN
        dev.write(0, &[SLP_EN | (3 << 2)]); // S3: not supported, ignored
        assert_eq!(events.load(Ordering::SeqCst), 0);
        dev.write(0, &[SLP_EN | (5 << 2)]);
        assert_eq!(events.load(Ordering::SeqCst), 1);
        dev.write(4, &[2]);
        dev.write(4, &[1]);
        assert_eq!(events.load(Ordering::SeqCst), 101);
    }
}
