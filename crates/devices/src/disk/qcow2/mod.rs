//! qcow2 images, through the `imago` crate.
//!
//! Why `imago` (0.2, feature `sync`) rather than a qcow2 of our own: it reads and writes
//! qcow2 v2 and v3, allocates clusters, L2 tables and refcount blocks as the image grows
//! (images stay clean for `qemu-img check`), copies backing data into newly allocated
//! clusters on partial writes, reads compressed (deflate) clusters, and writes zero
//! clusters. Its `sync` feature makes every call a plain blocking function: no async
//! runtime, no tokio. Its dependencies are small and common (miniz_oxide, nix, parking_lot,
//! tracing, maybe-async). It is maintained by a QEMU block-layer developer.
//!
//! What we add on top: [`header::parse`], a strict check of the header before `imago`
//! sees the file (imago checks less: it does not refuse encryption, and does not bound
//! the L1 table by the virtual size or the file); opening the backing chain ourselves
//! (read-only, relative to the image's directory, format from the header or probed,
//! depth-limited), so no other file is ever opened implicitly and an external data file
//! is refused; bounds and read-only checks on every request.
//!
//! [`fuzz_image`] is the entry point for a fuzz target: it runs the same checks and
//! `imago`'s table parsing on an image held in memory.

pub mod header;
pub mod mem;

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use imago::qcow2::Qcow2;
use imago::raw::Raw;
use imago::{DenyImplicitOpenGate, FormatAccess, FormatDriverBuilder, Storage, StorageOpenOptions};

use super::{check_range, probe_file, readonly_error, DiskError, DiskImage, Format};
use header::{Header, HeaderError};
use mem::MemStorage;

/// Backing chains deeper than this are refused (they are also how a loop would look).
pub const MAX_BACKING_DEPTH: usize = 16;

/// Zeros written by hand go through a buffer of at most this many bytes.
const ZERO_CHUNK: u64 = 1 << 20;

/// A qcow2 image, with its backing chain beneath it.
pub struct Qcow2Image<S: Storage + 'static = imago::file::File> {
    access: FormatAccess<S>,
    header: Header,
    readonly: bool,
}

impl Qcow2Image {
    /// Opens the qcow2 image at `path` and its backing chain (always read-only).
    pub fn open(path: &Path, readonly: bool) -> Result<Self, DiskError> {
        open_file(path, readonly, 0)
    }
}

impl<S: Storage + 'static> Qcow2Image<S> {
    /// The checked header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    fn check_write(&self, offset: u64, len: u64) -> io::Result<()> {
        if self.readonly {
            return Err(readonly_error());
        }
        check_range(offset, len, self.header.size)
    }

    /// Writes zero bytes over the range, for formats (qcow2 v2) without zero clusters.
    fn write_zero_bytes(&mut self, mut offset: u64, len: u64) -> io::Result<()> {
        let end = offset + len; // checked by the caller
        let zeros = vec![0u8; len.min(ZERO_CHUNK) as usize];
        while offset < end {
            let n = (end - offset).min(zeros.len() as u64);
            self.access.write(&zeros[..n as usize], offset)?;
            offset += n;
        }
        Ok(())
    }
}

impl<S: Storage + 'static> DiskImage for Qcow2Image<S> {
    fn size(&self) -> u64 {
        self.header.size
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        check_range(offset, buf.len() as u64, self.header.size)?;
        self.access.read(buf, offset)
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check_write(offset, buf.len() as u64)?;
        self.access.write(buf, offset)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.readonly {
            return Ok(());
        }
        self.access.flush()?;
        self.access.sync()
    }

    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
        self.check_write(offset, len)?;
        // Only whole clusters can be freed; a discard is a hint, so partial ones are left.
        let cluster = self.header.cluster_size();
        let start = offset.next_multiple_of(cluster);
        let end = (offset + len) / cluster * cluster;
        if start >= end {
            return Ok(());
        }
        match self.access.discard_to_zero(start, end - start) {
            // qcow2 v2 has no zero clusters, so imago cannot discard there.
            Err(e) if e.kind() == io::ErrorKind::Unsupported => Ok(()),
            r => r,
        }
    }

    fn write_zeroes(&mut self, offset: u64, len: u64, may_unmap: bool) -> io::Result<()> {
        self.check_write(offset, len)?;
        if len == 0 {
            return Ok(());
        }
        let r = if may_unmap {
            self.access.discard_to_zero(offset, len)
        } else {
            self.access.write_zeroes(offset, len)
        };
        match r {
            Err(e) if e.kind() == io::ErrorKind::Unsupported => self.write_zero_bytes(offset, len),
            r => r,
        }
    }

    fn readonly(&self) -> bool {
        self.readonly
    }

    fn format(&self) -> Format {
        Format::Qcow2
    }
}

/// Maps an error of `imago` while opening `path` to ours.
fn open_error(path: &Path, e: io::Error) -> DiskError {
    let path = path.to_path_buf();
    match e.kind() {
        io::ErrorKind::InvalidData => DiskError::Corrupt {
            path,
            reason: e.to_string(),
        },
        io::ErrorKind::Unsupported => DiskError::Unsupported {
            path,
            reason: e.to_string(),
        },
        _ => DiskError::Io { path, source: e },
    }
}

fn header_error(path: &Path, e: HeaderError) -> DiskError {
    let path = path.to_path_buf();
    match e {
        HeaderError::NotQcow2 => DiskError::NotQcow2 { path },
        HeaderError::Corrupt(reason) => DiskError::Corrupt { path, reason },
        HeaderError::Unsupported(reason) => DiskError::Unsupported { path, reason },
    }
}

/// Reads and checks the header of `file`, `file_len` bytes long.
fn read_header(file: &File, file_len: u64) -> io::Result<Result<Header, HeaderError>> {
    let mut first = vec![0u8; header::wanted_len(&[], file_len)];
    file.read_exact_at(&mut first, 0)?;
    let want = header::wanted_len(&first, file_len);
    if want > first.len() {
        first.resize(want, 0);
        file.read_exact_at(&mut first, 0)?;
    }
    let h = match header::parse(&first, file_len) {
        Ok(h) => h,
        Err(e) => return Ok(Err(e)),
    };
    // Inside the file: parse checked the refcount table's extent.
    let mut entry = [0u8; 8];
    file.read_exact_at(&mut entry, h.refcount_table_offset)?;
    Ok(header::check_first_refblock(u64::from_be_bytes(entry), &h, file_len).map(|()| h))
}

/// [`read_header`] on an image in memory.
fn parse_header(data: &[u8]) -> Result<Header, HeaderError> {
    let file_len = data.len() as u64;
    let h = header::parse(&data[..header::wanted_len(data, file_len)], file_len)?;
    let entry = usize::try_from(h.refcount_table_offset)
        .ok()
        .and_then(|at| data.get(at..at.checked_add(8)?))
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0);
    header::check_first_refblock(entry, &h, file_len).map(|()| h)
}

fn open_file(path: &Path, readonly: bool, depth: usize) -> Result<Qcow2Image, DiskError> {
    let io_err = |e| DiskError::from_io(path, e);
    let mut file = OpenOptions::new()
        .read(true)
        .write(!readonly)
        .open(path)
        .map_err(io_err)?;
    let file_len = file.seek(SeekFrom::End(0)).map_err(io_err)?;
    let header = read_header(&file, file_len)
        .map_err(io_err)?
        .map_err(|e| header_error(path, e))?;

    let backing = match &header.backing_file {
        Some(name) => Some(open_backing(
            path,
            name,
            header.backing_format.as_deref(),
            depth,
        )?),
        None => None,
    };

    let opts = StorageOpenOptions::new().filename(path).write(!readonly);
    let storage = imago::file::File::from_open_file(file, opts).map_err(io_err)?;
    let qcow2 = Qcow2::<imago::file::File>::builder(storage)
        .write(!readonly)
        .backing(backing)
        .data_file(None)
        .open(DenyImplicitOpenGate::default())
        .map_err(|e| open_error(path, e))?;
    Ok(Qcow2Image {
        access: FormatAccess::new(qcow2),
        header,
        readonly,
    })
}

/// Opens the backing file `name` of the image at `image`, read-only.
fn open_backing(
    image: &Path,
    name: &str,
    format: Option<&str>,
    depth: usize,
) -> Result<FormatAccess<imago::file::File>, DiskError> {
    if depth + 1 >= MAX_BACKING_DEPTH {
        return Err(DiskError::Unsupported {
            path: image.to_path_buf(),
            reason: format!("backing chain deeper than {MAX_BACKING_DEPTH}"),
        });
    }
    let named = Path::new(name);
    let backing: PathBuf = if named.is_absolute() {
        named.to_path_buf()
    } else {
        image.parent().unwrap_or_else(|| Path::new("")).join(named)
    };
    let mut file = File::open(&backing).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => DiskError::BackingMissing {
            path: image.to_path_buf(),
            backing: backing.clone(),
        },
        _ => DiskError::from_io(&backing, e),
    })?;
    let format = match format {
        Some("raw") => Format::Raw,
        Some("qcow2") => Format::Qcow2,
        Some(other) => {
            return Err(DiskError::Unsupported {
                path: image.to_path_buf(),
                reason: format!("backing file format {other:?}"),
            })
        }
        None => probe_file(&mut file).map_err(|e| DiskError::from_io(&backing, e))?,
    };
    match format {
        Format::Qcow2 => Ok(open_file(&backing, true, depth + 1)?.access),
        Format::Raw => {
            let opts = StorageOpenOptions::new().filename(&backing).write(false);
            let storage = imago::file::File::from_open_file(file, opts)
                .map_err(|e| DiskError::from_io(&backing, e))?;
            let raw = Raw::builder(storage)
                .write(false)
                .open(DenyImplicitOpenGate::default())
                .map_err(|e| DiskError::from_io(&backing, e))?;
            Ok(FormatAccess::new(raw))
        }
    }
}

/// Opens a qcow2 image held in memory, with no backing file (reads of what a backing file
/// would supply are zeros). Writes may grow the image by up to `grow_limit` bytes.
pub fn open_bytes(
    data: Vec<u8>,
    readonly: bool,
    grow_limit: u64,
) -> Result<Qcow2Image<MemStorage>, DiskError> {
    let path = Path::new("<memory>");
    let file_len = data.len() as u64;
    let header = parse_header(&data).map_err(|e| header_error(path, e))?;
    let storage = MemStorage::new(data, file_len.saturating_add(grow_limit));
    let qcow2 = Qcow2::<MemStorage>::builder(storage)
        .write(!readonly)
        .backing(None)
        .data_file(None)
        .open(DenyImplicitOpenGate::default())
        .map_err(|e| open_error(path, e))?;
    Ok(Qcow2Image {
        access: FormatAccess::new(qcow2),
        header,
        readonly,
    })
}

/// The fuzz target's entry point: checks the header of the image in `data`, lets `imago`
/// load its L1 table and refcount table, then reads through the L2 tables and refcount
/// blocks (and any compressed clusters) they point to, writes, zeroes, discards and
/// flushes, all in memory. Bad input yields `Err`; it must never panic, hang, or allocate
/// without bound.
pub fn fuzz_image(data: &[u8]) -> Result<(), DiskError> {
    const GROW: u64 = 16 << 20;
    let mut img = open_bytes(data.to_vec(), false, GROW)?;
    let size = img.size();
    let cluster = img.header.cluster_size();
    let l2_span = cluster * (cluster / 8);
    let mut buf = vec![0u8; 4096];
    // The first L2 table's clusters, then the start of each L1 entry's range.
    let offsets = (0..16u64)
        .map(|i| i * cluster)
        .chain((1..32u64).map(|i| i.saturating_mul(l2_span)));
    for offset in offsets {
        if offset >= size {
            continue;
        }
        let len = (size - offset).min(buf.len() as u64) as usize;
        let _ = img.read_at(&mut buf[..len], offset);
    }
    // Allocation: a write across a cluster boundary, zeroing, discarding, flushing.
    if size > 0 {
        let at = (size / 2).saturating_sub(100);
        let len = (size - at).min(200) as usize;
        let _ = img.write_at(&buf[..len], at);
        let _ = img.write_zeroes(0, size.min(cluster * 2), false);
        let _ = img.discard(0, size.min(cluster * 3));
        let _ = img.read_at(&mut buf[..len], at);
    }
    img.flush().map_err(|e| DiskError::Io {
        path: PathBuf::from("<memory>"),
        source: e,
    })
}
