//! `virtio_blk`: the block device's request queue over an in-memory disk.
//!
//! Input: disk size in sectors (one byte), read-only flag, a mask of disk operations that
//! fail, then the queue (see [`super::harness`]).

use std::io;

use devices::disk::{DiskImage, Format};
use devices::virtio::block;

use super::harness::Setup;
use super::input::Input;

/// A disk image in memory that honours the `DiskImage` contract: ranges are checked,
/// writes to a read-only image fail, and chosen operations fail as a host I/O error would.
pub struct MemDisk {
    data: Vec<u8>,
    readonly: bool,
    /// Bit `n` set: the `n`-th operation fails.
    fail: u32,
    ops: u32,
}

impl MemDisk {
    pub fn new(size: usize, readonly: bool, fail: u32) -> Self {
        MemDisk {
            data: vec![0; size],
            readonly,
            fail,
            ops: 0,
        }
    }

    fn op(&mut self, offset: u64, len: u64, write: bool) -> io::Result<std::ops::Range<usize>> {
        let n = self.ops;
        self.ops = self.ops.saturating_add(1);
        if n < 32 && self.fail & (1 << n) != 0 {
            return Err(io::Error::other("injected failure"));
        }
        if write && self.readonly {
            return Err(io::Error::new(
                io::ErrorKind::ReadOnlyFilesystem,
                "read-only",
            ));
        }
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.data.len() as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "beyond the end"))?;
        Ok(offset as usize..end as usize)
    }
}

impl DiskImage for MemDisk {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let r = self.op(offset, buf.len() as u64, false)?;
        buf.copy_from_slice(&self.data[r]);
        Ok(())
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        let r = self.op(offset, buf.len() as u64, true)?;
        self.data[r].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.op(0, 0, false).map(|_| ())
    }
    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let r = self.op(offset, len, true)?;
        self.data[r].fill(0);
        Ok(())
    }
    fn write_zeroes(&mut self, offset: u64, len: u64, _may_unmap: bool) -> io::Result<()> {
        self.discard(offset, len)
    }
    fn readonly(&self) -> bool {
        self.readonly
    }
    fn format(&self) -> Format {
        Format::Raw
    }
}

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let sectors = usize::from(input.u8());
    let readonly = input.bool();
    let fail = input.u32();
    let mut setup = Setup::new(&mut input, &[256]);
    if !setup.all_enabled() {
        return;
    }
    let disk = Box::new(MemDisk::new(sectors * 512, readonly, fail));
    block::fuzz_serve(setup.activation(), disk).expect("the queue is enabled");
    let report = setup.check(&[true]);
    if report.aliased {
        return;
    }
    // Every completed request reports at least its status byte, unless it had none.
    let model = setup.models[0].as_ref().expect("enabled");
    let entries = setup.used_entries(0, report.queues[0].used);
    for (c, (_, len)) in model.chains.iter().zip(entries) {
        let has_status = c.writable_len() >= 1 && c.readable_bytes(&setup.mem, 16).len() == 16;
        assert_eq!(len == 0, !has_status, "used length {len} for chain {c:?}");
    }
}
