//! virtio-net (virtio 1.x section 5.1) on a host tap device.
//!
//! One receive and one transmit queue, both served on the device's worker thread. Frames
//! keep the virtio-net header the tap also speaks, so checksum and segmentation offloads
//! pass through untouched: the guest may send 64 KiB TCP segments with a partial checksum
//! and the host kernel finishes them, and the other way round.
//!
//! Back-pressure: while the guest has posted no receive buffers the worker stops reading
//! the tap (the host queues, then drops, as a real NIC's full ring would), and while the
//! tap refuses a frame the worker stops taking transmit requests until it can write.

use std::io::ErrorKind;
use std::os::fd::RawFd;

use virtio_bindings::virtio_net::*;
use vmm_sys_util::epoll::EventSet;

use super::queues::QueueSet;
use super::tap::{NetBackend, Tap, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, VNET_HDR_LEN};
use super::worker::{Handler, Worker};
use super::{device_type, read_config_bytes, ActivateError, Activation, QueueState, VirtioDevice};

const QUEUE_SIZES: &[u16] = &[256, 256];
const RX: usize = 0;
const TX: usize = 1;
const TOKEN_RX: u64 = 0;
const TOKEN_TX: u64 = 1;
const TOKEN_TAP: u64 = 2;
/// The largest frame: a 64 KiB segment plus Ethernet and virtio-net headers.
const MAX_FRAME: usize = 65536 + 14 + VNET_HDR_LEN;

fn bit(b: u32) -> u64 {
    1 << b
}

pub struct Net {
    // Present while the device is not active; the worker owns it while it is.
    tap: Option<Tap>,
    config: [u8; 10],
    worker: Option<Worker<NetWorker>>,
}

impl Net {
    pub fn new(tap: Tap, mac: [u8; 6]) -> Net {
        let mut config = [0u8; 10];
        config[..6].copy_from_slice(&mac);
        config[6..8].copy_from_slice(&(VIRTIO_NET_S_LINK_UP as u16).to_le_bytes());
        config[8..10].copy_from_slice(&1u16.to_le_bytes()); // max_virtqueue_pairs
        Net {
            tap: Some(tap),
            config,
            worker: None,
        }
    }
}

impl VirtioDevice for Net {
    fn device_type(&self) -> u32 {
        device_type::NET
    }
    fn queue_max_sizes(&self) -> &[u16] {
        QUEUE_SIZES
    }
    fn features(&self) -> u64 {
        bit(VIRTIO_NET_F_MAC)
            | bit(VIRTIO_NET_F_STATUS)
            | bit(VIRTIO_NET_F_CSUM)
            | bit(VIRTIO_NET_F_GUEST_CSUM)
            | bit(VIRTIO_NET_F_HOST_TSO4)
            | bit(VIRTIO_NET_F_HOST_TSO6)
            | bit(VIRTIO_NET_F_GUEST_TSO4)
            | bit(VIRTIO_NET_F_GUEST_TSO6)
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&self.config, offset, data);
    }
    fn activate(&mut self, activation: Activation) -> Result<(), ActivateError> {
        let queues = QueueSet::new(activation);
        queues.require(2)?;
        let tap = self
            .tap
            .take()
            .ok_or_else(|| ActivateError::Device("the tap is already in use".into()))?;
        // Hand the guest only the offloads it accepted.
        let f = queues.features;
        let mut offload = 0;
        if f & bit(VIRTIO_NET_F_GUEST_CSUM) != 0 {
            offload |= TUN_F_CSUM;
            if f & bit(VIRTIO_NET_F_GUEST_TSO4) != 0 {
                offload |= TUN_F_TSO4;
            }
            if f & bit(VIRTIO_NET_F_GUEST_TSO6) != 0 {
                offload |= TUN_F_TSO6;
            }
        }
        if let Err(e) = tap.set_offload(offload) {
            log::warn!("virtio-net: tap {}: cannot set offloads: {e}", tap.name);
        }
        let worker = NetWorker {
            queues,
            tap,
            rx_frame: Vec::new(),
            rx_starved: false,
            tx_blocked: None,
        };
        match Worker::spawn("virtio-net".into(), worker) {
            Ok(w) => {
                self.worker = Some(w);
                Ok(())
            }
            Err(e) => Err(ActivateError::Thread(e)),
        }
    }
    fn pause(&mut self) -> Vec<Option<QueueState>> {
        let Some(mut worker) = self.worker.take().and_then(Worker::stop) else {
            return Vec::new();
        };
        // A transmit request the tap refused goes back on the ring (it was the last one
        // popped), to be sent after resuming; a received frame not yet delivered is
        // dropped, as a NIC drops what it cannot place.
        if worker.tx_blocked.take().is_some() {
            worker.queues.undo_pop(TX);
        }
        self.tap = Some(worker.tap);
        worker.queues.states()
    }
}

/// Fuzzing seam (feature `fuzzing`): serves the queues with `backend` in place of the tap,
/// handing the worker's handler `events` on this thread (`Notify(0)`: receive queue,
/// `Notify(1)`: transmit queue, `Backend`: the tap is readable and/or writable). Gives the
/// backend back.
#[cfg(feature = "fuzzing")]
pub fn fuzz_serve<B: NetBackend>(
    activation: Activation,
    backend: B,
    events: &[super::FuzzEvent],
) -> Result<B, ActivateError> {
    let queues = QueueSet::new(activation);
    queues.require(2)?;
    let mut worker = NetWorker {
        queues,
        tap: backend,
        rx_frame: Vec::new(),
        rx_starved: false,
        tx_blocked: None,
    };
    for ev in events {
        let (token, set) = match *ev {
            super::FuzzEvent::Notify(RX) => (TOKEN_RX, EventSet::IN),
            super::FuzzEvent::Notify(TX) => (TOKEN_TX, EventSet::IN),
            super::FuzzEvent::Notify(_) => continue,
            super::FuzzEvent::Backend { readable, writable } => {
                let mut set = EventSet::empty();
                if readable {
                    set |= EventSet::IN;
                }
                if writable {
                    set |= EventSet::OUT;
                }
                (TOKEN_TAP, set)
            }
        };
        worker.ready(token, set);
    }
    Ok(worker.tap)
}

struct NetWorker<B: NetBackend = Tap> {
    queues: QueueSet,
    tap: B,
    /// A frame read from the tap that waits for a receive buffer.
    rx_frame: Vec<u8>,
    /// The guest has no receive buffers: stop reading the tap until it posts some.
    rx_starved: bool,
    /// A transmit frame the tap refused (full); retried when it is writable.
    tx_blocked: Option<(u16, Vec<u8>)>,
}

impl<B: NetBackend> NetWorker<B> {
    /// Moves frames from the tap into the guest's receive buffers.
    fn receive(&mut self) {
        let mut delivered = false;
        loop {
            if self.rx_frame.is_empty() {
                self.rx_frame.resize(MAX_FRAME, 0);
                match self.tap.read(&mut self.rx_frame) {
                    Ok(n) if n >= VNET_HDR_LEN => {
                        self.rx_frame.truncate(n);
                        // num_buffers: one buffer per frame without mergeable buffers.
                        self.rx_frame[10..12].copy_from_slice(&1u16.to_le_bytes());
                    }
                    Ok(_) => {
                        self.rx_frame.clear();
                        continue;
                    }
                    Err(e) => {
                        self.rx_frame.clear();
                        if e.kind() != ErrorKind::WouldBlock {
                            log::warn!("virtio-net: tap {}: read: {e}", self.tap.name());
                        }
                        break;
                    }
                }
            }
            let Some(chain) = self.queues.pop(RX) else {
                self.rx_starved = true;
                break;
            };
            self.rx_starved = false;
            if chain.writable_len() < self.rx_frame.len() as u64 {
                // A buffer too small for the frame (offloads the driver did not take
                // cannot produce one): drop the frame, keep the buffer.
                log::debug!("virtio-net: dropped a {}-byte frame", self.rx_frame.len());
                self.queues.undo_pop(RX);
                self.rx_frame.clear();
                continue;
            }
            let mut w = self.queues.writer(&chain);
            w.write(&self.rx_frame);
            let written = w.written();
            self.queues.complete(RX, chain.head, written);
            self.rx_frame.clear();
            delivered = true;
        }
        if delivered {
            self.queues.notify_driver(RX);
        }
    }

    /// Sends the guest's transmit requests to the tap.
    fn transmit(&mut self) {
        let mut sent = false;
        loop {
            let (head, frame) = match self.tx_blocked.take() {
                Some(blocked) => blocked,
                None => {
                    let Some(chain) = self.queues.pop(TX) else {
                        break;
                    };
                    let frame = self.queues.reader(&chain).read_up_to(MAX_FRAME);
                    (chain.head, frame)
                }
            };
            match self.tap.write(&frame) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.tx_blocked = Some((head, frame));
                    break;
                }
                Err(e) => log::debug!("virtio-net: tap {}: write: {e}", self.tap.name()),
                Ok(_) => {}
            }
            self.queues.complete(TX, head, 0);
            sent = true;
        }
        if sent {
            self.queues.notify_driver(TX);
        }
    }
}

impl<B: NetBackend> Handler for NetWorker<B> {
    fn sources(&self) -> Vec<(RawFd, u64, EventSet)> {
        let mut s: Vec<_> = [
            self.queues.source(RX, TOKEN_RX),
            self.queues.source(TX, TOKEN_TX),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut tap = EventSet::empty();
        if !self.rx_starved {
            tap |= EventSet::IN;
        }
        if self.tx_blocked.is_some() {
            tap |= EventSet::OUT;
        }
        if !tap.is_empty() {
            s.push((self.tap.as_raw_fd(), TOKEN_TAP, tap));
        }
        s
    }

    fn ready(&mut self, token: u64, events: EventSet) {
        match token {
            TOKEN_RX => {
                self.queues.drain_notify(RX);
                self.rx_starved = false;
                self.receive();
            }
            TOKEN_TX => {
                self.queues.drain_notify(TX);
                if self.tx_blocked.is_none() {
                    self.transmit();
                }
            }
            _ => {
                if events.contains(EventSet::OUT) {
                    self.transmit();
                }
                if events.contains(EventSet::IN) {
                    self.receive();
                }
            }
        }
    }
}
