//! The SiFive test finisher, through which firmware and Linux (the `syscon-poweroff` and
//! `syscon-reboot` drivers) end or restart the machine.
//!
//! A write to offset 0 carries a status in its low 16 bits and, for a failure, an exit
//! code in its high 16 bits:
//!
//! | status | event |
//! |---|---|
//! | `0x5555` | [`TestEvent::PowerOff`] |
//! | `0x3333` | [`TestEvent::Fail`] with the code |
//! | `0x7777` | [`TestEvent::Reset`] |
//!
//! Writes of 2 or 4 bytes count (a 2-byte write has code 0); anything else is ignored.
//! Reads return 0.

use vm_core::BusDevice;

use super::le_value;

const STATUS_FAIL: u64 = 0x3333;
const STATUS_PASS: u64 = 0x5555;
const STATUS_RESET: u64 = 0x7777;

/// What the guest asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestEvent {
    PowerOff,
    Fail(u16),
    Reset,
}

pub struct TestDevice {
    on_event: Box<dyn Fn(TestEvent) + Send>,
}

impl TestDevice {
    /// `on_event` runs on the thread of the writing hart.
    pub fn new(on_event: impl Fn(TestEvent) + Send + 'static) -> Self {
        Self {
            on_event: Box::new(on_event),
        }
    }
}

impl BusDevice for TestDevice {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset != 0 || !matches!(data.len(), 2 | 4) {
            return;
        }
        let value = le_value(data);
        let event = match value & 0xffff {
            STATUS_PASS => TestEvent::PowerOff,
            STATUS_FAIL => TestEvent::Fail((value >> 16) as u16),
            STATUS_RESET => TestEvent::Reset,
            _ => {
                log::debug!("test finisher: ignoring {value:#x}");
                return;
            }
        };
        (self.on_event)(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn writes_become_events() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let mut dev = TestDevice::new(move |e| s.lock().unwrap().push(e));
        dev.write(0, &0x5555u32.to_le_bytes());
        dev.write(0, &(0x3333u32 | 42 << 16).to_le_bytes());
        dev.write(0, &0x7777u32.to_le_bytes());
        dev.write(0, &0x5555u16.to_le_bytes());
        // Ignored: other values, other offsets, byte writes.
        dev.write(0, &0x1234u32.to_le_bytes());
        dev.write(4, &0x5555u32.to_le_bytes());
        dev.write(0, &[0x55]);
        assert_eq!(
            *seen.lock().unwrap(),
            [
                TestEvent::PowerOff,
                TestEvent::Fail(42),
                TestEvent::Reset,
                TestEvent::PowerOff
            ]
        );
        let mut data = [0xff; 4];
        dev.read(0, &mut data);
        assert_eq!(data, [0; 4]);
    }
}
