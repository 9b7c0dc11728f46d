//! Builds the virtio devices a user asked for, the same way for every machine. The machine
//! only says where each transport goes and which interrupt line it raises.

use std::sync::{Arc, Mutex};

use devices::serial::Output;
use devices::virtio::console::{Console, ConsoleInput};
use devices::virtio::net::Net;
use devices::virtio::tap::Tap;
use devices::virtio::vsock::Vsock;
use devices::virtio::{block::Block, rng::Rng, GuestWrites, MmioTransport, VirtioDevice};
use vm_core::{GuestMemory, Irq};

use crate::io_config::{ConsoleKind, IoConfig};

#[derive(Debug, thiserror::Error)]
pub enum VirtioError {
    #[error(transparent)]
    Disk(#[from] devices::disk::DiskError),
    #[error(transparent)]
    Tap(#[from] devices::virtio::tap::TapError),
    #[error("--vsock: {0}")]
    Vsock(#[from] devices::virtio::vsock::VsockError),
    #[error("{count} virtio devices asked for, but this machine has room for {max}")]
    TooMany { count: usize, max: usize },
    #[error("cannot set up a virtio device: {0}")]
    Host(#[source] std::io::Error),
}

/// The devices of a machine, each on its own transport, in slot order.
pub struct VirtioDevices {
    pub transports: Vec<Arc<Mutex<MmioTransport>>>,
    /// Where console input goes when the console is a virtio-console.
    pub console_input: Option<ConsoleInput>,
}

/// A device waiting for its transport.
struct Pending {
    device: Box<dyn VirtioDevice>,
}

/// Opens every backend first (disk images, taps, sockets), so a bad one fails before the
/// machine exists, then puts each device on a transport whose interrupt is `line(slot)`.
pub fn build(
    io: &IoConfig,
    max: usize,
    memory: &GuestMemory,
    writes: Arc<dyn GuestWrites>,
    console_output: impl FnOnce() -> std::io::Result<Output>,
    mut line: impl FnMut(usize) -> Result<Arc<dyn Irq>, VirtioError>,
) -> Result<VirtioDevices, VirtioError> {
    let count = io.virtio_count();
    if count > max {
        return Err(VirtioError::TooMany { count, max });
    }
    let mut pending: Vec<Pending> = Vec::with_capacity(count);
    for (i, disk) in io.disks.iter().enumerate() {
        let image = devices::disk::open(&disk.path, disk.format, disk.readonly)?;
        let serial = serial_for(&disk.path, i);
        pending.push(Pending {
            device: Box::new(Block::new(image, &serial)),
        });
    }
    for net in &io.nets {
        let tap = Tap::open(&net.tap)?;
        pending.push(Pending {
            device: Box::new(Net::new(tap, net.mac.unwrap_or_else(random_mac))),
        });
    }
    if io.rng {
        pending.push(Pending {
            device: Box::new(Rng::new()),
        });
    }
    let mut console_input = None;
    if io.console == ConsoleKind::Virtio {
        let console = Console::new(console_output().map_err(VirtioError::Host)?)
            .map_err(VirtioError::Host)?;
        console_input = Some(console.input());
        pending.push(Pending {
            device: Box::new(console),
        });
    }
    if let Some(v) = &io.vsock {
        pending.push(Pending {
            device: Box::new(Vsock::new(v.cid, &v.socket)?),
        });
    }
    let mut transports = Vec::with_capacity(pending.len());
    for (slot, p) in pending.into_iter().enumerate() {
        let t = MmioTransport::new(p.device, memory.clone(), line(slot)?, writes.clone())
            .map_err(VirtioError::Host)?;
        transports.push(Arc::new(Mutex::new(t)));
    }
    Ok(VirtioDevices {
        transports,
        console_input,
    })
}

/// A locally administered unicast address in QEMU's 52:54:00 range, random in the rest,
/// so two guests on one bridge do not collide.
fn random_mac() -> [u8; 6] {
    let mut tail = [0u8; 3];
    // SAFETY: `tail` is valid for writes of its length.
    let n = unsafe { libc::getrandom(tail.as_mut_ptr().cast(), tail.len(), 0) };
    if n != tail.len() as isize {
        tail = [0x12, 0x34, 0x56];
    }
    [0x52, 0x54, 0x00, tail[0], tail[1], tail[2]]
}

/// The disk's serial number (what GET_ID and /sys/block/vdX/serial report): the image's
/// file name, cut to the 20 bytes virtio-blk has room for.
fn serial_for(path: &std::path::Path, index: usize) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("disk{index}"));
    let mut s: String = name.chars().filter(|c| c.is_ascii_graphic()).collect();
    s.truncate(20);
    if s.is_empty() {
        s = format!("disk{index}");
    }
    s
}
