//! virtio devices over the virtio-mmio transport (virtio 1.x, "modern" layout only).
//!
//! The pieces, in the order a request meets them:
//!
//! - [`mmio::MmioTransport`] is what the guest's MMIO accesses reach (a `BusDevice`): the
//!   feature handshake, the status state machine, queue setup. A write to `QueueNotify`
//!   signals the queue's eventfd; on KVM that eventfd is also registered as an ioeventfd,
//!   so the notify never leaves the kernel.
//! - When the driver sets DRIVER_OK the transport hands the ready queues to the device
//!   ([`VirtioDevice::activate`]), which serves them on its own worker thread
//!   ([`worker`]): the vCPU that notified goes straight back to the guest.
//! - The worker pops descriptor chains (rust-vmm's `virtio-queue` parses the rings),
//!   validates each one as a whole ([`chain`]), does the I/O, puts the chain on the used
//!   ring and raises the interrupt through [`Interrupt`] (a KVM irqfd, the user-space PIC,
//!   or the RISC-V PLIC: whatever `vm_core::Irq` the machine gave).
//! - A malformed chain (a loop, longer than the queue, outside guest RAM, nested indirect
//!   tables) makes the device stop using that queue and set DEVICE_NEEDS_RESET.
//!
//! Every device writes guest RAM only through [`chain::ChainWriter`], which reports what
//! it wrote to the machine's [`GuestWrites`]: the translator drops code translated from
//! those pages (DMA into code), and a dirty log can record them.

pub mod block;
pub mod chain;
pub mod console;
pub mod mmio;
pub mod net;
pub mod queues;
pub mod rng;
pub mod tap;
pub mod vsock;
pub mod worker;

#[cfg(feature = "fuzzing")]
pub use fuzz::FuzzEvent;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use vm_core::{GuestMemory, Irq};
use vmm_sys_util::eventfd::EventFd;

pub use mmio::MmioTransport;
pub use virtio_queue::{Queue, QueueState, QueueT};

/// Device types (virtio 1.x section 5).
pub mod device_type {
    pub const NET: u32 = 1;
    pub const BLOCK: u32 = 2;
    pub const CONSOLE: u32 = 3;
    pub const RNG: u32 = 4;
    pub const VSOCK: u32 = 19;
}

/// Feature bits every device may offer (virtio 1.x section 6).
pub mod feature {
    pub const RING_INDIRECT_DESC: u64 = 1 << 28;
    pub const RING_EVENT_IDX: u64 = 1 << 29;
    pub const VERSION_1: u64 = 1 << 32;
}

/// Device status bits (virtio 1.x section 2.1).
pub mod status {
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    pub const DEVICE_NEEDS_RESET: u32 = 64;
    pub const FAILED: u32 = 128;
}

/// Bits of the interrupt status register.
pub const INT_USED_RING: u32 = 1;
pub const INT_CONFIG: u32 = 2;

/// Where a device's writes into guest RAM are reported, after they land.
pub trait GuestWrites: Send + Sync {
    fn wrote(&self, gpa: u64, len: u64);
}

/// For machines that need no notice of device writes (KVM without dirty logging).
pub struct IgnoreWrites;

impl GuestWrites for IgnoreWrites {
    fn wrote(&self, _gpa: u64, _len: u64) {}
}

/// The interrupt side a device shares with its transport: the interrupt status register,
/// the needs-reset flag and the line itself.
pub struct Interrupt {
    status: AtomicU32,
    needs_reset: AtomicBool,
    config_generation: AtomicU32,
    line: Arc<dyn Irq>,
}

impl Interrupt {
    pub fn new(line: Arc<dyn Irq>) -> Self {
        Interrupt {
            status: AtomicU32::new(0),
            needs_reset: AtomicBool::new(false),
            config_generation: AtomicU32::new(0),
            line,
        }
    }

    fn raise(&self, bit: u32) {
        self.status.fetch_or(bit, Ordering::SeqCst);
        if let Err(e) = self.line.trigger() {
            log::warn!("virtio: cannot raise the interrupt: {e}");
        }
    }

    /// Buffers were put on a used ring.
    pub fn signal_used(&self) {
        self.raise(INT_USED_RING);
    }

    /// The device's configuration space changed.
    pub fn signal_config(&self) {
        self.config_generation.fetch_add(1, Ordering::SeqCst);
        self.raise(INT_CONFIG);
    }

    /// The driver broke the device's rules; it stops using the offending queue until the
    /// driver resets it (virtio 1.x 2.1.2: DEVICE_NEEDS_RESET plus a configuration
    /// change notification).
    pub fn signal_needs_reset(&self) {
        self.needs_reset.store(true, Ordering::SeqCst);
        self.raise(INT_CONFIG);
    }

    pub fn status(&self) -> u32 {
        self.status.load(Ordering::SeqCst)
    }

    pub fn ack(&self, bits: u32) {
        self.status.fetch_and(!bits, Ordering::SeqCst);
    }

    pub fn needs_reset(&self) -> bool {
        self.needs_reset.load(Ordering::SeqCst)
    }

    pub fn config_generation(&self) -> u32 {
        self.config_generation.load(Ordering::SeqCst)
    }

    fn reset(&self) {
        self.status.store(0, Ordering::SeqCst);
        self.needs_reset.store(false, Ordering::SeqCst);
    }

    fn restore(&self, status: u32, config_generation: u32, needs_reset: bool) {
        self.status.store(status, Ordering::SeqCst);
        self.config_generation
            .store(config_generation, Ordering::SeqCst);
        self.needs_reset.store(needs_reset, Ordering::SeqCst);
    }
}

/// Everything a device needs to serve its queues once the driver is ready.
pub struct Activation {
    pub memory: GuestMemory,
    /// The queues the driver enabled, by index (None: not enabled).
    pub queues: Vec<Option<Queue>>,
    /// Signalled on each queue's notify (by the transport, or by KVM's ioeventfd).
    pub notify: Vec<Arc<EventFd>>,
    pub interrupt: Arc<Interrupt>,
    pub writes: Arc<dyn GuestWrites>,
    /// Features the driver accepted.
    pub features: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    #[error("cannot start the device's worker thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("the driver did not enable queue {0}, which the device needs")]
    MissingQueue(usize),
    #[error("{0}")]
    Device(String),
}

/// A virtio device model, independent of the transport and of the accelerator.
pub trait VirtioDevice: Send {
    /// The virtio device id ([`device_type`]).
    fn device_type(&self) -> u32;
    /// Largest size of each queue the device has.
    fn queue_max_sizes(&self) -> &[u16];
    /// Device-specific feature bits offered (the transport adds VERSION_1 and the ring
    /// features).
    fn features(&self) -> u64;
    /// Reads the device-specific configuration space.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Writes the device-specific configuration space (most devices ignore it).
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}
    /// Starts serving the queues (the driver set DRIVER_OK, or a paused device resumes
    /// with the queues [`VirtioDevice::pause`] gave back).
    fn activate(&mut self, activation: Activation) -> Result<(), ActivateError>;
    /// Stops serving the queues and returns their state (positions included), keeping
    /// everything else (the disk, the tap), so the device can be activated again where
    /// it stopped, or saved. No request is in flight afterwards: whatever was popped and
    /// not completed is put back on the ring. Returns once the device no longer touches
    /// guest memory; nothing when it was not active.
    fn pause(&mut self) -> Vec<Option<QueueState>>;
    /// Stops serving the queues and forgets them (the driver wrote 0 to the status
    /// register).
    fn reset(&mut self) {
        let _ = self.pause();
    }
}

#[cfg(feature = "fuzzing")]
mod fuzz {
    /// The seam for fuzz targets (cargo feature `fuzzing`, off in every build of Tandem):
    /// each device has a `fuzz_serve` that builds its worker's handler from an
    /// [`Activation`](super::Activation) and hands it these events on the caller's thread,
    /// in order, instead of starting a worker thread that waits on epoll. What the handler
    /// does with an event is exactly what it does on its worker.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum FuzzEvent {
        /// The driver notified queue `n`.
        Notify(usize),
        /// The host side (a tap, console input) is readable and/or writable.
        Backend { readable: bool, writable: bool },
    }
}

/// Reads a little-endian configuration structure at `offset` into `data`; bytes outside
/// the structure read as zero.
pub fn read_config_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    data.fill(0);
    let Ok(start) = usize::try_from(offset) else {
        return;
    };
    if start < config.len() {
        let n = data.len().min(config.len() - start);
        data[..n].copy_from_slice(&config[start..start + n]);
    }
}
