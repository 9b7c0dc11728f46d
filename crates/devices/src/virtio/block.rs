//! virtio-blk (virtio 1.x section 5.2) on a host disk image.
//!
//! One request queue, served on the device's worker thread, so the vCPU that notified
//! never waits for the disk. Requests are done in order, one at a time: the queue itself
//! bounds how many the guest has in flight. A request the image cannot serve (beyond
//! the end, a write to a read-only disk, a host I/O error) completes with
//! VIRTIO_BLK_S_IOERR; nothing a guest sends reaches the file outside the image.

use std::os::fd::RawFd;

use virtio_bindings::virtio_blk::*;
use vmm_sys_util::epoll::EventSet;

use super::chain::Chain;
use super::queues::QueueSet;
use super::worker::{Handler, Worker};
use super::{device_type, read_config_bytes, ActivateError, Activation, QueueState, VirtioDevice};
use crate::disk::DiskImage;

const QUEUE_SIZES: &[u16] = &[256];
const SECTOR: u64 = 512;
/// Most data segments per request (the config's seg_max): the queue less header and status.
const SEG_MAX: u32 = 254;
/// One discard or write-zeroes range per request, of at most this many sectors.
const MAX_RANGE_SECTORS: u32 = 0x3f_ffff;
/// The largest request the worker buffers at once.
const MAX_REQUEST: u64 = 8 << 20;

pub struct Block {
    // Present while the device is not active; the worker owns it while it is.
    disk: Option<Box<dyn DiskImage>>,
    id: [u8; VIRTIO_BLK_ID_BYTES as usize],
    config: [u8; 60],
    features: u64,
    worker: Option<Worker<BlockWorker>>,
}

impl Block {
    /// `serial` is what GET_ID reports (at most 20 bytes are kept).
    pub fn new(disk: Box<dyn DiskImage>, serial: &str) -> Block {
        let mut id = [0u8; VIRTIO_BLK_ID_BYTES as usize];
        let n = serial.len().min(id.len());
        id[..n].copy_from_slice(&serial.as_bytes()[..n]);
        let mut features = (1 << VIRTIO_BLK_F_SEG_MAX)
            | (1 << VIRTIO_BLK_F_BLK_SIZE)
            | (1 << VIRTIO_BLK_F_FLUSH)
            | (1 << VIRTIO_BLK_F_DISCARD)
            | (1 << VIRTIO_BLK_F_WRITE_ZEROES);
        if disk.readonly() {
            features |= 1 << VIRTIO_BLK_F_RO;
        }
        let mut config = [0u8; 60];
        let mut put = |at: usize, bytes: &[u8]| config[at..at + bytes.len()].copy_from_slice(bytes);
        put(0, &(disk.size() / SECTOR).to_le_bytes()); // capacity
        put(12, &SEG_MAX.to_le_bytes()); // seg_max
        put(20, &(SECTOR as u32).to_le_bytes()); // blk_size
        put(34, &1u16.to_le_bytes()); // num_queues
        put(36, &MAX_RANGE_SECTORS.to_le_bytes()); // max_discard_sectors
        put(40, &1u32.to_le_bytes()); // max_discard_seg
        put(44, &1u32.to_le_bytes()); // discard_sector_alignment
        put(48, &MAX_RANGE_SECTORS.to_le_bytes()); // max_write_zeroes_sectors
        put(52, &1u32.to_le_bytes()); // max_write_zeroes_seg
        put(56, &[1]); // write_zeroes_may_unmap
        Block {
            disk: Some(disk),
            id,
            config,
            features,
            worker: None,
        }
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        device_type::BLOCK
    }
    fn queue_max_sizes(&self) -> &[u16] {
        QUEUE_SIZES
    }
    fn features(&self) -> u64 {
        self.features
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&self.config, offset, data);
    }
    fn activate(&mut self, activation: Activation) -> Result<(), ActivateError> {
        let queues = QueueSet::new(activation);
        queues.require(1)?;
        let disk = self
            .disk
            .take()
            .ok_or_else(|| ActivateError::Device("the disk is already in use".into()))?;
        let worker = BlockWorker {
            queues,
            disk,
            id: self.id,
            buf: Vec::new(),
        };
        match Worker::spawn("virtio-blk".into(), worker) {
            Ok(w) => {
                self.worker = Some(w);
                Ok(())
            }
            Err(e) => Err(ActivateError::Thread(e)),
        }
    }
    fn pause(&mut self) -> Vec<Option<QueueState>> {
        // The disk comes back with the worker; flush what the guest wrote.
        let Some(mut worker) = self.worker.take().and_then(Worker::stop) else {
            return Vec::new();
        };
        if let Err(e) = worker.disk.flush() {
            log::warn!("virtio-blk: flush on pause or reset: {e}");
        }
        self.disk = Some(worker.disk);
        worker.queues.states()
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        self.reset();
        if let Some(disk) = &mut self.disk {
            if let Err(e) = disk.flush() {
                log::warn!("virtio-blk: flush at exit: {e}");
            }
        }
    }
}

/// Fuzzing seam (feature `fuzzing`): serves the request queue once on this thread, as the
/// worker does on a notify, and gives the disk back.
#[cfg(feature = "fuzzing")]
pub fn fuzz_serve(
    activation: Activation,
    disk: Box<dyn DiskImage>,
) -> Result<Box<dyn DiskImage>, ActivateError> {
    let queues = QueueSet::new(activation);
    queues.require(1)?;
    let mut id = [0u8; VIRTIO_BLK_ID_BYTES as usize];
    id[..4].copy_from_slice(b"fuzz");
    let mut worker = BlockWorker {
        queues,
        disk,
        id,
        buf: Vec::new(),
    };
    worker.ready(0, EventSet::IN);
    Ok(worker.disk)
}

struct BlockWorker {
    queues: QueueSet,
    disk: Box<dyn DiskImage>,
    id: [u8; VIRTIO_BLK_ID_BYTES as usize],
    buf: Vec<u8>,
}

/// The outcome of one request: status byte and data bytes written to the guest.
enum Done {
    Ok(u64),
    IoErr,
    Unsupported,
}

impl BlockWorker {
    fn serve(&mut self, chain: &Chain) -> Option<Done> {
        let mut header = [0u8; 16];
        if !self.queues.reader(chain).read_exact(&mut header) {
            return None;
        }
        let kind = u32::from_le_bytes(header[0..4].try_into().ok()?);
        let sector = u64::from_le_bytes(header[8..16].try_into().ok()?);
        // The last writable byte is the status; everything before it is data.
        let data_in = chain.writable_len().checked_sub(1)?;
        let data_out = chain.readable_len() - 16;
        Some(match kind {
            VIRTIO_BLK_T_IN => self.read(chain, sector, data_in),
            VIRTIO_BLK_T_OUT => self.write(chain, sector, data_out),
            VIRTIO_BLK_T_FLUSH => match self.disk.flush() {
                Ok(()) => Done::Ok(0),
                Err(_) => Done::IoErr,
            },
            VIRTIO_BLK_T_GET_ID => {
                let id = self.id;
                let n = self
                    .queues
                    .writer(chain)
                    .write(&id[..(data_in as usize).min(id.len())]);
                Done::Ok(n as u64)
            }
            VIRTIO_BLK_T_DISCARD | VIRTIO_BLK_T_WRITE_ZEROES => self.ranges(chain, kind),
            _ => Done::Unsupported,
        })
    }

    /// Byte range of `len` bytes from `sector`, if it lies inside the disk.
    fn range(&self, sector: u64, len: u64) -> Option<u64> {
        let start = sector.checked_mul(SECTOR)?;
        (start.checked_add(len)? <= self.disk.size()).then_some(start)
    }

    fn read(&mut self, chain: &Chain, sector: u64, len: u64) -> Done {
        let Some(start) = self.range(sector, len) else {
            return Done::IoErr;
        };
        let BlockWorker {
            queues, disk, buf, ..
        } = self;
        let mut w = queues.writer(chain);
        let mut done = 0;
        while done < len {
            let n = (len - done).min(MAX_REQUEST);
            buf.resize(n as usize, 0);
            if disk.read_at(buf, start + done).is_err() {
                return Done::IoErr;
            }
            w.write(buf);
            done += n;
        }
        Done::Ok(len)
    }

    fn write(&mut self, chain: &Chain, sector: u64, len: u64) -> Done {
        if self.disk.readonly() {
            return Done::IoErr;
        }
        let Some(start) = self.range(sector, len) else {
            return Done::IoErr;
        };
        let mut r = self.queues.reader(chain);
        let mut header = [0u8; 16];
        r.read_exact(&mut header);
        let mut done = 0;
        while done < len {
            let n = (len - done).min(MAX_REQUEST);
            self.buf.resize(n as usize, 0);
            if !r.read_exact(&mut self.buf) || self.disk.write_at(&self.buf, start + done).is_err()
            {
                return Done::IoErr;
            }
            done += n;
        }
        Done::Ok(0)
    }

    fn ranges(&mut self, chain: &Chain, kind: u32) -> Done {
        if self.disk.readonly() {
            return Done::IoErr;
        }
        let mut r = self.queues.reader(chain);
        let mut seg = [0u8; 16];
        r.read_exact(&mut seg); // the request header
        while r.remaining() >= 16 {
            if !r.read_exact(&mut seg) {
                return Done::IoErr;
            }
            let sector = u64::from_le_bytes(seg[0..8].try_into().unwrap_or_default());
            let sectors = u32::from_le_bytes(seg[8..12].try_into().unwrap_or_default());
            let flags = u32::from_le_bytes(seg[12..16].try_into().unwrap_or_default());
            let len = u64::from(sectors) * SECTOR;
            if sectors > MAX_RANGE_SECTORS {
                return Done::IoErr;
            }
            let Some(start) = self.range(sector, len) else {
                return Done::IoErr;
            };
            let result = if kind == VIRTIO_BLK_T_DISCARD {
                self.disk.discard(start, len)
            } else {
                self.disk.write_zeroes(start, len, flags & 1 != 0)
            };
            if result.is_err() {
                return Done::IoErr;
            }
        }
        Done::Ok(0)
    }
}

impl Handler for BlockWorker {
    fn sources(&self) -> Vec<(RawFd, u64, EventSet)> {
        self.queues.source(0, 0).into_iter().collect()
    }

    fn ready(&mut self, _token: u64, _events: EventSet) {
        self.queues.drain_notify(0);
        while let Some(chain) = self.queues.pop(0) {
            let Some(done) = self.serve(&chain) else {
                // No header or no status byte: not a request at all.
                log::warn!("virtio-blk: malformed request {}", chain.head);
                self.queues.complete(0, chain.head, 0);
                continue;
            };
            let (status, data) = match done {
                Done::Ok(n) => (VIRTIO_BLK_S_OK, n),
                Done::IoErr => (VIRTIO_BLK_S_IOERR, 0),
                Done::Unsupported => (VIRTIO_BLK_S_UNSUPP, 0),
            };
            let status_at = chain.writable_len() - 1;
            let mut w = self.queues.writer(&chain);
            w.skip(status_at);
            w.write(&[status as u8]);
            let used = u32::try_from(data + 1).unwrap_or(u32::MAX);
            self.queues.complete(0, chain.head, used);
        }
        self.queues.notify_driver(0);
    }
}
