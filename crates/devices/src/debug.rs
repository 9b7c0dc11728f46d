//! Tandem's debug port: how test guests (and anyone's bare-metal code) end the VM with
//! an exit status, and mark boot milestones.
//!
//! | port offset | access | effect |
//! |---|---|---|
//! | 0 (`0xf4`) | write 1, 2 or 4 bytes | the VM ends; its value is Tandem's exit status |
//! | 4 (`0xf8`) | write 1 byte | logs the time since Tandem started, with the byte as a marker |
//!
//! Reads return 0.

use std::time::Instant;

use vm_core::BusDevice;

pub const PORT_BASE: u64 = 0xf4;
pub const PORT_LEN: u64 = 5;
const EXIT_OFFSET: u64 = 0;
const BOOT_TIMER_OFFSET: u64 = 4;

type ExitFn = Box<dyn Fn(u32) + Send>;

pub struct DebugPort {
    started: Instant,
    on_exit: ExitFn,
}

impl DebugPort {
    /// `started` is when Tandem started; `on_exit` receives the guest's exit status.
    pub fn new(started: Instant, on_exit: impl Fn(u32) + Send + 'static) -> Self {
        Self {
            started,
            on_exit: Box::new(on_exit),
        }
    }
}

impl BusDevice for DebugPort {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        match offset {
            EXIT_OFFSET => {
                let mut value = [0u8; 4];
                let n = data.len().min(4);
                value[..n].copy_from_slice(&data[..n]);
                (self.on_exit)(u32::from_le_bytes(value));
            }
            BOOT_TIMER_OFFSET => {
                let elapsed = self.started.elapsed();
                log::info!(
                    "boot timer: marker {} reached {:.3} ms after start",
                    data.first().copied().unwrap_or(0),
                    elapsed.as_secs_f64() * 1e3
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn exit_write_reports_status() {
        let got = Arc::new(Mutex::new(None));
        let g = got.clone();
        let mut port = DebugPort::new(Instant::now(), move |v| *g.lock().unwrap() = Some(v));
        port.write(BOOT_TIMER_OFFSET, &[1]);
        assert_eq!(*got.lock().unwrap(), None);
        port.write(EXIT_OFFSET, &[42, 0]);
        assert_eq!(*got.lock().unwrap(), Some(42));
    }
}
