//! Host-side disk images: what a virtio-blk device reads and writes.
//!
//! ```text
//! pub enum Format { Raw, Qcow2 }                       // FromStr: "raw", "qcow2"
//! pub trait DiskImage: Send {
//!     fn size(&self) -> u64;                                        // virtual size, bytes
//!     fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()>;  // all of buf
//!     fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()>;     // all of buf
//!     fn flush(&mut self) -> io::Result<()>;                        // durable (fsync)
//!     fn discard(&mut self, offset: u64, len: u64) -> io::Result<()>;
//!     fn write_zeroes(&mut self, offset: u64, len: u64, may_unmap: bool) -> io::Result<()>;
//!     fn readonly(&self) -> bool;
//!     fn format(&self) -> Format;
//! }
//! pub fn open(path: &Path, format: Option<Format>, readonly: bool)
//!     -> Result<Box<dyn DiskImage>, DiskError>;
//! pub fn probe(path: &Path) -> Result<Format, DiskError>;
//! ```
//!
//! Every request is checked against [`DiskImage::size`] first: a range that does not fit,
//! or overflows, is an `io::Error` (`UnexpectedEof` / `InvalidInput`), never a panic or a
//! short transfer. On a read-only image, `write_at`, `discard` and `write_zeroes` fail with
//! `ErrorKind::ReadOnlyFilesystem`; the device answers such errors with
//! `VIRTIO_BLK_S_IOERR`. `discard` is a hint: what a discarded range reads back as is not
//! defined (raw: zeros where the file system punched a hole; qcow2: zeros). `write_zeroes`
//! guarantees zeros; `may_unmap` lets it free the space.
//!
//! The raw format is [`raw::RawImage`] (`pread`/`pwrite`, `fallocate`), qcow2 is
//! [`qcow2::Qcow2Image`] (the `imago` crate under a strict header check of ours).
//!
//! Opening with `format: None` probes the file: the qcow2 magic means qcow2, anything else
//! raw. Naming `Raw` for a file with the qcow2 magic is refused: a guest given such a file
//! raw could otherwise have it reopened as qcow2 later, with a backing file of its choice.

pub mod qcow2;
pub mod raw;

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use qcow2::Qcow2Image;
pub use raw::RawImage;

/// The first four bytes of every qcow2 file.
pub const QCOW2_MAGIC: [u8; 4] = *b"QFI\xfb";

/// A disk image format Tandem can open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Raw,
    Qcow2,
}

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "raw" => Ok(Format::Raw),
            "qcow2" => Ok(Format::Qcow2),
            _ => Err(UnknownFormat(s.to_string())),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
        })
    }
}

/// A format name that is neither `raw` nor `qcow2`.
#[derive(Debug, thiserror::Error)]
#[error("unknown disk image format {0:?} (known: raw, qcow2)")]
pub struct UnknownFormat(pub String);

/// Why an image could not be opened. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{}: no such file", .path.display())]
    NotFound { path: PathBuf },
    #[error("{}: permission denied", .path.display())]
    PermissionDenied { path: PathBuf },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: is a qcow2 image, not raw", .path.display())]
    QcowNamedRaw { path: PathBuf },
    #[error("{}: is not a qcow2 image", .path.display())]
    NotQcow2 { path: PathBuf },
    #[error("{}: corrupt qcow2 image: {reason}", .path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{}: unsupported qcow2 image: {reason}", .path.display())]
    Unsupported { path: PathBuf, reason: String },
    #[error("{}: backing file {} not found", .path.display(), .backing.display())]
    BackingMissing { path: PathBuf, backing: PathBuf },
}

impl DiskError {
    /// Classifies an error of `open(2)` or a first read.
    pub(crate) fn from_io(path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::NotFound => DiskError::NotFound { path },
            io::ErrorKind::PermissionDenied => DiskError::PermissionDenied { path },
            _ => DiskError::Io { path, source },
        }
    }
}

/// A disk a virtio-blk device serves. See the module documentation for the contract.
pub trait DiskImage: Send {
    /// The virtual size in bytes.
    fn size(&self) -> u64;
    /// Fills all of `buf` from `offset`, or fails.
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`, or fails.
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes every completed write durable (fsync; qcow2 writes its metadata first).
    fn flush(&mut self) -> io::Result<()>;
    /// The guest no longer needs the range; its contents become unspecified.
    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()>;
    /// The range reads as zeros afterwards; `may_unmap` allows freeing its space.
    fn write_zeroes(&mut self, offset: u64, len: u64, may_unmap: bool) -> io::Result<()>;
    /// Whether the image was opened read-only.
    fn readonly(&self) -> bool;
    /// The image's format.
    fn format(&self) -> Format;
}

/// Opens the image at `path`. With `format: None` the format is probed (see [`probe`]).
pub fn open(
    path: &Path,
    format: Option<Format>,
    readonly: bool,
) -> Result<Box<dyn DiskImage>, DiskError> {
    let found = probe(path)?;
    match (format, found) {
        (Some(Format::Raw), Format::Qcow2) => Err(DiskError::QcowNamedRaw {
            path: path.to_path_buf(),
        }),
        (Some(Format::Qcow2), Format::Raw) => Err(DiskError::NotQcow2 {
            path: path.to_path_buf(),
        }),
        (_, Format::Raw) => Ok(Box::new(RawImage::open(path, readonly)?)),
        (_, Format::Qcow2) => Ok(Box::new(Qcow2Image::open(path, readonly)?)),
    }
}

/// The format of the image at `path`: qcow2 if it starts with the qcow2 magic, else raw.
pub fn probe(path: &Path) -> Result<Format, DiskError> {
    let mut file = File::open(path).map_err(|e| DiskError::from_io(path, e))?;
    probe_file(&mut file).map_err(|e| DiskError::from_io(path, e))
}

/// [`probe`] on an open file (read from its current position, normally 0).
pub(crate) fn probe_file(file: &mut File) -> io::Result<Format> {
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(if got == magic.len() && magic == QCOW2_MAGIC {
        Format::Qcow2
    } else {
        Format::Raw
    })
}

/// Checks that `[offset, offset + len)` lies within a disk of `size` bytes.
pub(crate) fn check_range(offset: u64, len: u64, size: u64) -> io::Result<()> {
    let end = offset.checked_add(len).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("request at {offset:#x} + {len:#x} overflows"),
        )
    })?;
    if end > size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("request {offset:#x}..{end:#x} is beyond the disk's end ({size:#x})"),
        ));
    }
    Ok(())
}

/// The error for a write to a read-only image.
pub(crate) fn readonly_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ReadOnlyFilesystem,
        "the disk image is read-only",
    )
}
