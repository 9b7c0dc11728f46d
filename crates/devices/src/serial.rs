//! A 16550A UART (vm-superio's model) on the bus, with its interrupt on an `Irq` line.

use std::io::Write;
use std::sync::Arc;

use vm_core::{BusDevice, Irq, IrqError};

/// Adapts an interrupt line to vm-superio's trigger interface.
pub struct IrqTrigger(Arc<dyn Irq>);

impl vm_superio::Trigger for IrqTrigger {
    type E = IrqError;
    fn trigger(&self) -> Result<(), IrqError> {
        self.0.trigger()
    }
}

pub type Output = Box<dyn Write + Send>;

pub struct Serial {
    uart: vm_superio::Serial<IrqTrigger, vm_superio::serial::NoEvents, Output>,
}

impl Serial {
    pub fn new(irq: Arc<dyn Irq>, out: Output) -> Self {
        Self {
            uart: vm_superio::Serial::new(IrqTrigger(irq), out),
        }
    }

    /// Feeds host input (e.g. stdin) to the guest. Returns how many bytes fit in the
    /// receive FIFO; the caller retries the rest later.
    pub fn enqueue_input(&mut self, bytes: &[u8]) -> usize {
        match self.uart.enqueue_raw_bytes(bytes) {
            Ok(n) => n,
            Err(vm_superio::serial::Error::FullFifo) => 0,
            Err(e) => {
                log::warn!("serial: cannot deliver input: {e:?}");
                0
            }
        }
    }

    /// Free space in the receive FIFO.
    pub fn input_capacity(&self) -> usize {
        self.uart.fifo_capacity()
    }
}

impl BusDevice for Serial {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        // The UART has byte-wide registers; wider reads see the register in byte 0.
        if let (Ok(offset), Some(first)) = (u8::try_from(offset), data.first_mut()) {
            *first = self.uart.read(offset);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let (Ok(offset), Some(&value)) = (u8::try_from(offset), data.first()) {
            if let Err(e) = self.uart.write(offset, value) {
                // Output errors (a closed pipe) must not stop the guest.
                log::debug!("serial: write failed: {e:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    struct CountingIrq(AtomicUsize);
    impl Irq for CountingIrq {
        fn trigger(&self) -> Result<(), IrqError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn transmits_and_receives_with_interrupts() {
        let irq = Arc::new(CountingIrq(AtomicUsize::new(0)));
        let sink = Sink::default();
        let mut uart = Serial::new(irq.clone(), Box::new(sink.clone()));
        uart.write(0, b"h");
        uart.write(0, b"i");
        assert_eq!(*sink.0.lock().unwrap(), b"hi");
        // Enable the received-data interrupt, then feed input.
        uart.write(1, &[0x01]);
        assert_eq!(uart.enqueue_input(b"x"), 1);
        assert!(irq.0.load(Ordering::SeqCst) >= 1);
        let mut lsr = [0u8];
        uart.read(5, &mut lsr);
        assert_eq!(lsr[0] & 1, 1, "data ready");
        let mut rx = [0u8];
        uart.read(0, &mut rx);
        assert_eq!(rx, *b"x");
    }
}
