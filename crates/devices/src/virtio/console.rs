//! virtio-console (virtio 1.x section 5.3) with one port: the guest's `hvc0`.
//!
//! Output goes to the same kind of sink as the 16550's; input arrives through
//! [`ConsoleInput`], which the machine's console loop feeds as it feeds the UART. Input
//! waits in a bounded buffer until the driver posts receive buffers: the host side is
//! told how much fitted, and retries the rest (back-pressure, as with the UART's FIFO).

use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};

use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::eventfd::EventFd;

use super::queues::QueueSet;
use super::worker::{Handler, Worker};
use super::{device_type, read_config_bytes, ActivateError, Activation, QueueState, VirtioDevice};
use crate::serial::Output;

const QUEUE_SIZES: &[u16] = &[64, 64];
const RX: usize = 0;
const TX: usize = 1;
/// Host input held for the guest at most.
const INPUT_BUFFER: usize = 4096;
/// Guest output is copied out in pieces of at most this many bytes.
const OUTPUT_CHUNK: usize = 64 << 10;

const TOKEN_RX: u64 = 0;
const TOKEN_TX: u64 = 1;
const TOKEN_INPUT: u64 = 2;

/// The host's handle for feeding the guest console.
#[derive(Clone)]
pub struct ConsoleInput {
    buffer: Arc<Mutex<VecDeque<u8>>>,
    ready: Arc<EventFd>,
}

impl ConsoleInput {
    /// Queues `bytes` for the guest; returns how many fitted.
    pub fn enqueue(&self, bytes: &[u8]) -> usize {
        let mut b = vm_core::bus::lock_mutex(&self.buffer);
        let n = bytes.len().min(INPUT_BUFFER - b.len());
        b.extend(&bytes[..n]);
        drop(b);
        if n > 0 {
            let _ = self.ready.write(1);
        }
        n
    }
}

pub struct Console {
    output: Arc<Mutex<Output>>,
    input: ConsoleInput,
    worker: Option<Worker<ConsoleWorker>>,
}

impl Console {
    pub fn new(output: Output) -> std::io::Result<Console> {
        Ok(Console {
            output: Arc::new(Mutex::new(output)),
            input: ConsoleInput {
                buffer: Arc::new(Mutex::new(VecDeque::new())),
                ready: Arc::new(EventFd::new(libc::EFD_NONBLOCK)?),
            },
            worker: None,
        })
    }

    pub fn input(&self) -> ConsoleInput {
        self.input.clone()
    }
}

impl VirtioDevice for Console {
    fn device_type(&self) -> u32 {
        device_type::CONSOLE
    }
    fn queue_max_sizes(&self) -> &[u16] {
        QUEUE_SIZES
    }
    fn features(&self) -> u64 {
        0
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // cols, rows, max_nr_ports: only meaningful with features Tandem does not offer.
        read_config_bytes(&[0u8; 8], offset, data);
    }
    fn activate(&mut self, activation: Activation) -> Result<(), ActivateError> {
        let queues = QueueSet::new(activation);
        queues.require(2)?;
        let worker = ConsoleWorker {
            queues,
            output: self.output.clone(),
            input: self.input.clone(),
        };
        self.worker =
            Some(Worker::spawn("virtio-console".into(), worker).map_err(ActivateError::Thread)?);
        Ok(())
    }
    fn pause(&mut self) -> Vec<Option<QueueState>> {
        let worker = self.worker.take().and_then(Worker::stop);
        worker.map(|w| w.queues.states()).unwrap_or_default()
    }
}

/// Fuzzing seam (feature `fuzzing`): queues `input` as host console input, then hands the
/// worker's handler `events` on this thread (`Notify(0)`: receive queue, `Notify(1)`:
/// transmit queue, `Backend`: input arrived). Guest output goes to `output`.
#[cfg(feature = "fuzzing")]
pub fn fuzz_serve(
    activation: Activation,
    output: Output,
    input: &[u8],
    events: &[super::FuzzEvent],
) -> Result<(), ActivateError> {
    let console = Console::new(output).map_err(ActivateError::Thread)?;
    let queues = QueueSet::new(activation);
    queues.require(2)?;
    console.input.enqueue(input);
    let mut worker = ConsoleWorker {
        queues,
        output: console.output.clone(),
        input: console.input.clone(),
    };
    for ev in events {
        let token = match *ev {
            super::FuzzEvent::Notify(RX) => TOKEN_RX,
            super::FuzzEvent::Notify(TX) => TOKEN_TX,
            super::FuzzEvent::Notify(_) => continue,
            super::FuzzEvent::Backend { .. } => TOKEN_INPUT,
        };
        worker.ready(token, EventSet::IN);
    }
    Ok(())
}

struct ConsoleWorker {
    queues: QueueSet,
    output: Arc<Mutex<Output>>,
    input: ConsoleInput,
}

impl ConsoleWorker {
    fn transmit(&mut self) {
        self.queues.drain_notify(TX);
        let mut out = vm_core::bus::lock_mutex(&self.output);
        while let Some(chain) = self.queues.pop(TX) {
            // In pieces: one chain may name up to 4 GiB (all of its buffers may be the
            // same one), which must not become one allocation of the host's.
            let mut r = self.queues.reader(&chain);
            loop {
                let bytes = r.read_up_to(OUTPUT_CHUNK);
                if bytes.is_empty() {
                    break;
                }
                let _ = out.write_all(&bytes);
            }
            self.queues.complete(TX, chain.head, 0);
        }
        let _ = out.flush();
        drop(out);
        self.queues.notify_driver(TX);
    }

    fn receive(&mut self) {
        let _ = self.input.ready.read();
        let mut buffer = vm_core::bus::lock_mutex(&self.input.buffer);
        let mut delivered = false;
        while !buffer.is_empty() {
            let Some(chain) = self.queues.pop(RX) else {
                break;
            };
            let (a, b) = buffer.as_slices();
            let mut w = self.queues.writer(&chain);
            let n = w.write(a) + if w.remaining() > 0 { w.write(b) } else { 0 };
            buffer.drain(..n);
            let written = w.written();
            self.queues.complete(RX, chain.head, written);
            delivered = true;
        }
        drop(buffer);
        if delivered {
            self.queues.notify_driver(RX);
        }
    }
}

impl Handler for ConsoleWorker {
    fn sources(&self) -> Vec<(RawFd, u64, EventSet)> {
        let mut s: Vec<_> = [
            self.queues.source(RX, TOKEN_RX),
            self.queues.source(TX, TOKEN_TX),
        ]
        .into_iter()
        .flatten()
        .collect();
        s.push((self.input.ready.as_raw_fd(), TOKEN_INPUT, EventSet::IN));
        s
    }

    fn ready(&mut self, token: u64, _events: EventSet) {
        match token {
            TOKEN_TX => self.transmit(),
            TOKEN_RX => {
                self.queues.drain_notify(RX);
                self.receive();
            }
            _ => self.receive(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::{IgnoreWrites, Interrupt};
    use virtio_queue::desc::split::Descriptor as SplitDescriptor;
    use virtio_queue::desc::RawDescriptor;
    use virtio_queue::mock::MockSplitQueue;
    use virtio_queue::Queue;
    use vm_core::irq::NoIrq;
    use vm_memory::GuestAddress;

    /// Counts output without keeping it, and notes the largest single write.
    #[derive(Clone, Default)]
    struct Meter(Arc<Mutex<(u64, usize)>>);

    impl Write for Meter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut m = self.0.lock().unwrap();
            m.0 += buf.len() as u64;
            m.1 = m.1.max(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A transmit chain of 64 buffers that are all the same MiB is 64 MiB of output; the
    /// device must not gather it into one host buffer first (a guest could ask for 4 GiB).
    #[test]
    fn transmit_copies_a_large_chain_in_pieces() {
        const BUF: u64 = 0x10_0000;
        let mem = vm_core::memory::create(&[(0, 0x20_0000)]).unwrap();
        let rx = MockSplitQueue::create(&mem, GuestAddress(0), 64);
        let tx = MockSplitQueue::create(&mem, GuestAddress(0x8000), 64);
        let descs: Vec<_> = (0..64)
            .map(|_| RawDescriptor::from(SplitDescriptor::new(BUF, 1 << 20, 0, 0)))
            .collect();
        tx.build_desc_chain(&descs).unwrap();
        let queues = QueueSet::new(Activation {
            memory: mem.clone(),
            queues: vec![
                Some(rx.create_queue::<Queue>().unwrap()),
                Some(tx.create_queue::<Queue>().unwrap()),
            ],
            notify: (0..2)
                .map(|_| Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap()))
                .collect(),
            interrupt: Arc::new(Interrupt::new(Arc::new(NoIrq))),
            writes: Arc::new(IgnoreWrites),
            features: 0,
        });
        let meter = Meter::default();
        let console = Console::new(Box::new(meter.clone())).unwrap();
        let mut worker = ConsoleWorker {
            queues,
            output: console.output.clone(),
            input: console.input(),
        };
        worker.transmit();
        let (total, largest) = *meter.0.lock().unwrap();
        assert_eq!(total, 64 << 20);
        assert!(largest <= OUTPUT_CHUNK, "one write of {largest} bytes");
    }
}
