//! The i8042 keyboard controller, only as far as a guest uses it to reset the machine
//! (Linux's `reboot=k`): writing 0xfe to the command port asks for a CPU reset.

use vm_core::BusDevice;

use crate::CallbackTrigger;

/// Ports 0x60 (data) to 0x64 (command/status) map to offsets 0..=4.
pub const PORT_BASE: u64 = 0x60;
pub const PORT_LEN: u64 = 5;

pub struct I8042 {
    device: vm_superio::I8042Device<CallbackTrigger>,
}

impl I8042 {
    /// `on_reset` runs when the guest requests a reset.
    pub fn new(on_reset: impl Fn() + Send + 'static) -> Self {
        Self {
            device: vm_superio::I8042Device::new(CallbackTrigger::new(on_reset)),
        }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let (Ok(offset), Some(first)) = (u8::try_from(offset), data.first_mut()) {
            *first = self.device.read(offset);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let (Ok(offset), Some(&value)) = (u8::try_from(offset), data.first()) {
            // The trigger is infallible.
            let _ = self.device.write(offset, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn reset_command_fires_callback() {
        let fired = Arc::new(AtomicBool::new(false));
        let f = fired.clone();
        let mut dev = I8042::new(move || f.store(true, Ordering::SeqCst));
        dev.write(4, &[0x20]);
        assert!(!fired.load(Ordering::SeqCst));
        dev.write(4, &[0xfe]);
        assert!(fired.load(Ordering::SeqCst));
    }
}
