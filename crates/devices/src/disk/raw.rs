//! Raw images: the file (or block device) is the disk, byte for byte.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use vmm_sys_util::fallocate::{fallocate, FallocateMode};

use super::{check_range, readonly_error, DiskError, DiskImage, Format};

/// Zeros are written through a buffer of at most this many bytes.
const ZERO_CHUNK: usize = 1 << 20;

/// A raw image: `pread`/`pwrite` at the guest's offsets.
pub struct RawImage {
    file: File,
    size: u64,
    readonly: bool,
    /// `fallocate(PUNCH_HOLE)` failed as unsupported once: do not ask again.
    no_punch: bool,
    /// `fallocate(ZERO_RANGE)` failed as unsupported once: do not ask again.
    no_zero_range: bool,
}

impl RawImage {
    /// Opens `path` (a regular file or a block device) read-write, or read-only.
    pub fn open(path: &Path, readonly: bool) -> Result<Self, DiskError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(!readonly)
            .open(path)
            .map_err(|e| DiskError::from_io(path, e))?;
        // The end, not the metadata's length: a block device's length is 0 there.
        let size = file
            .seek(SeekFrom::End(0))
            .map_err(|e| DiskError::from_io(path, e))?;
        Ok(Self::from_file(file, size, readonly))
    }

    /// Wraps an open file whose disk is `size` bytes.
    pub fn from_file(file: File, size: u64, readonly: bool) -> Self {
        RawImage {
            file,
            size,
            readonly,
            no_punch: false,
            no_zero_range: false,
        }
    }

    fn check_write(&self, offset: u64, len: u64) -> io::Result<()> {
        if self.readonly {
            return Err(readonly_error());
        }
        check_range(offset, len, self.size)
    }

    /// `fallocate` with `mode`; `Ok(false)` if the file system or device cannot do it.
    fn try_fallocate(&mut self, mode: FallocateMode, offset: u64, len: u64) -> io::Result<bool> {
        let unsupported = match mode {
            FallocateMode::PunchHole => &mut self.no_punch,
            FallocateMode::ZeroRange => &mut self.no_zero_range,
        };
        if *unsupported {
            return Ok(false);
        }
        match fallocate(&self.file, mode, true, offset, len) {
            Ok(()) => Ok(true),
            Err(e)
                if matches!(
                    e.errno(),
                    libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL | libc::ENODEV | libc::EPERM
                ) =>
            {
                *unsupported = true;
                Ok(false)
            }
            Err(e) => Err(io::Error::from_raw_os_error(e.errno())),
        }
    }

    /// Writes zeros over the range, a bounded chunk at a time.
    fn write_zero_bytes(&mut self, mut offset: u64, len: u64) -> io::Result<()> {
        let chunk = usize::try_from(len).map_or(ZERO_CHUNK, |l| l.min(ZERO_CHUNK));
        let zeros = vec![0u8; chunk];
        let end = offset + len; // checked by the caller
        while offset < end {
            let n = usize::try_from(end - offset).map_or(chunk, |r| r.min(chunk));
            self.file.write_all_at(&zeros[..n], offset)?;
            offset += n as u64;
        }
        Ok(())
    }
}

impl DiskImage for RawImage {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        check_range(offset, buf.len() as u64, self.size)?;
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check_write(offset, buf.len() as u64)?;
        self.file.write_all_at(buf, offset)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.readonly {
            return Ok(());
        }
        self.file.sync_data()
    }

    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
        self.check_write(offset, len)?;
        if len == 0 || self.try_fallocate(FallocateMode::PunchHole, offset, len)? {
            return Ok(());
        }
        self.write_zero_bytes(offset, len)
    }

    fn write_zeroes(&mut self, offset: u64, len: u64, may_unmap: bool) -> io::Result<()> {
        self.check_write(offset, len)?;
        if len == 0
            || (may_unmap && self.try_fallocate(FallocateMode::PunchHole, offset, len)?)
            || self.try_fallocate(FallocateMode::ZeroRange, offset, len)?
        {
            return Ok(());
        }
        self.write_zero_bytes(offset, len)
    }

    fn readonly(&self) -> bool {
        self.readonly
    }

    fn format(&self) -> Format {
        Format::Raw
    }
}
