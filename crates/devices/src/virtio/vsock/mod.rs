//! virtio-vsock (virtio 1.x section 5.10): stream sockets between the guest and host
//! programs, over a Unix socket on the host ([`muxer`] has the addressing convention).
//!
//! Three queues: the guest posts empty buffers on rx for packets to it, sends packets on
//! tx, and posts buffers on the event queue for transport events (which this device never
//! raises: it has no migration to announce). The configuration space is the guest's cid.
//!
//! The worker moves packets between the queues and the [`muxer::Muxer`]:
//!
//! - tx: each packet's header is checked ([`packet::check`]) before its payload is
//!   read; a packet the host stream cannot take yet stays on the queue and the worker
//!   stops reading tx until that stream drains (a guest within its credit never meets
//!   this; see [`connection`]). So does a pile-up of resets the guest has no receive
//!   buffers for.
//! - rx: while the muxer has packets, each goes into one receive buffer; a host stream
//!   is read only when a buffer is at hand, and no further than that buffer and the
//!   guest's credit, so host data waits in the host's socket, not in the device.

pub mod connection;
pub mod muxer;
pub mod packet;

use std::os::fd::RawFd;
use std::path::Path;

use vmm_sys_util::epoll::EventSet;

use super::queues::QueueSet;
use super::worker::{Handler, Worker};
use super::{device_type, read_config_bytes, ActivateError, Activation, QueueState, VirtioDevice};
use muxer::Muxer;
use packet::{Header, Op, HDR_LEN, MAX_PAYLOAD};

pub use muxer::MuxerError as VsockError;

const QUEUE_SIZES: &[u16] = &[256, 256, 64];
const RX: usize = 0;
const TX: usize = 1;
const TOKEN_RX: u64 = 0;
const TOKEN_TX: u64 = 1;

pub struct Vsock {
    config: [u8; 8],
    // Present while the device is not active; the worker owns it while it is.
    muxer: Option<Muxer>,
    worker: Option<Worker<VsockWorker>>,
}

impl Vsock {
    /// A device for guest `cid`, listening for host programs on `socket` right away (so
    /// they may connect before the guest's driver is up: they wait in the backlog).
    pub fn new(cid: u64, socket: &Path) -> Result<Vsock, VsockError> {
        Ok(Vsock {
            config: cid.to_le_bytes(),
            muxer: Some(Muxer::new(cid, socket)?),
            worker: None,
        })
    }

    fn cid(&self) -> u64 {
        u64::from_le_bytes(self.config)
    }
}

impl VirtioDevice for Vsock {
    fn device_type(&self) -> u32 {
        device_type::VSOCK
    }
    fn queue_max_sizes(&self) -> &[u16] {
        QUEUE_SIZES
    }
    fn features(&self) -> u64 {
        // No VIRTIO_VSOCK_F_STREAM bit: a device offering neither it nor SEQPACKET is a
        // stream device, which is what drivers before virtio 1.2 expect.
        0
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&self.config, offset, data);
    }
    fn activate(&mut self, activation: Activation) -> Result<(), ActivateError> {
        let queues = QueueSet::new(activation);
        // The event queue is never used, so it need not be there.
        queues.require(2)?;
        let muxer = self
            .muxer
            .take()
            .ok_or_else(|| ActivateError::Device("the host socket is lost".into()))?;
        let worker = VsockWorker {
            cid: self.cid(),
            queues,
            muxer,
            rx_buf: vec![0; MAX_PAYLOAD],
            tx_buf: vec![0; MAX_PAYLOAD],
        };
        self.worker =
            Some(Worker::spawn("virtio-vsock".into(), worker).map_err(ActivateError::Thread)?);
        Ok(())
    }
    /// Host connections cannot be saved: pausing drops them (as a transport reset would),
    /// keeping the listener; the queues' positions are kept.
    fn pause(&mut self) -> Vec<Option<QueueState>> {
        let Some(mut worker) = self.worker.take().and_then(Worker::stop) else {
            return Vec::new();
        };
        worker.muxer.reset();
        self.muxer = Some(worker.muxer);
        worker.queues.states()
    }
}

struct VsockWorker {
    cid: u64,
    queues: QueueSet,
    muxer: Muxer,
    /// Payload staging, so no packet allocates.
    rx_buf: Vec<u8>,
    tx_buf: Vec<u8>,
}

impl VsockWorker {
    /// Moves packets both ways until neither moves: sending can free credit for the
    /// guest's packets, and the guest's packets can owe it replies.
    fn pump(&mut self) {
        while self.deliver() | self.transmit() {}
    }

    /// Fills the guest's receive buffers with what the muxer has for it.
    fn deliver(&mut self) -> bool {
        let mut delivered = false;
        while self.muxer.has_rx() {
            let Some(chain) = self.queues.pop(RX) else {
                // Hear about the next buffers the guest posts.
                if self.queues.enable_notification(RX) {
                    continue;
                }
                break;
            };
            let room = chain.writable_len();
            if room < HDR_LEN as u64 {
                // No packet fits; give it back empty rather than stall on it.
                log::debug!("virtio-vsock: a {room}-byte receive buffer");
                self.queues.complete(RX, chain.head, 0);
                delivered = true;
                continue;
            }
            let max = usize::try_from(room - HDR_LEN as u64)
                .unwrap_or(MAX_PAYLOAD)
                .min(MAX_PAYLOAD);
            let Some((hdr, n)) = self.muxer.next_rx(&mut self.rx_buf[..max]) else {
                self.queues.undo_pop(RX);
                break;
            };
            let mut w = self.queues.writer(&chain);
            w.write(&hdr.encode());
            w.write(&self.rx_buf[..n]);
            let written = w.written();
            self.queues.complete(RX, chain.head, written);
            delivered = true;
        }
        if delivered {
            self.queues.notify_driver(RX);
        }
        delivered
    }

    /// Takes the guest's packets off the transmit queue, as far as the host can take
    /// them.
    fn transmit(&mut self) -> bool {
        let mut sent = false;
        while !self.muxer.tx_blocked() {
            self.queues.disable_notification(TX);
            let Some(chain) = self.queues.pop(TX) else {
                if self.queues.enable_notification(TX) {
                    continue;
                }
                break;
            };
            let mut r = self.queues.reader(&chain);
            let mut raw = [0u8; HDR_LEN];
            if !r.read_exact(&mut raw) {
                log::debug!(
                    "virtio-vsock: dropped a packet from the guest: {}",
                    packet::PacketError::ShortHeader(chain.readable_len())
                );
                self.queues.complete(TX, chain.head, 0);
                sent = true;
                continue;
            }
            let hdr = Header::decode(&raw);
            let mut checked = packet::check(&hdr, self.cid, r.remaining());
            let mut len = 0;
            if checked == Ok(Op::Rw) {
                if !self.muxer.has_room(&hdr) {
                    self.queues.undo_pop(TX);
                    break;
                }
                len = hdr.len as usize;
                if !r.read_exact(&mut self.tx_buf[..len]) {
                    // The length was checked against the chain; only a guest memory
                    // error can get here.
                    checked = Err(packet::PacketError::PayloadBeyondBuffer {
                        len: hdr.len,
                        available: 0,
                    });
                }
            }
            self.queues.complete(TX, chain.head, 0);
            sent = true;
            self.muxer
                .on_guest_packet(&hdr, checked, &self.tx_buf[..len]);
        }
        if sent {
            self.queues.notify_driver(TX);
        }
        sent
    }
}

impl Handler for VsockWorker {
    fn sources(&self) -> Vec<(RawFd, u64, EventSet)> {
        let mut s: Vec<_> = self.queues.source(RX, TOKEN_RX).into_iter().collect();
        if !self.muxer.tx_blocked() {
            s.extend(self.queues.source(TX, TOKEN_TX));
        }
        self.muxer.sources(&mut s);
        s
    }

    fn ready(&mut self, token: u64, events: EventSet) {
        match token {
            TOKEN_RX => self.queues.drain_notify(RX),
            TOKEN_TX => self.queues.drain_notify(TX),
            _ => self.muxer.ready(token, events),
        }
        self.pump();
    }
}

#[cfg(test)]
mod tests;
