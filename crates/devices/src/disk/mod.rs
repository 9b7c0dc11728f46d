//! Disk images behind virtio-blk (placeholder raw-only layer; replaced by the disk branch).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Raw,
    Qcow2,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "raw" => Ok(Format::Raw),
            "qcow2" => Ok(Format::Qcow2),
            _ => Err(format!("unknown disk format '{s}': expected raw or qcow2")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("cannot open disk image {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub trait DiskImage: Send {
    fn size(&self) -> u64;
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
    fn write_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()>;
    fn flush(&mut self) -> std::io::Result<()>;
    fn discard(&mut self, offset: u64, len: u64) -> std::io::Result<()>;
    fn write_zeroes(&mut self, offset: u64, len: u64, may_unmap: bool) -> std::io::Result<()>;
    fn readonly(&self) -> bool;
}

struct Raw {
    file: File,
    size: u64,
    readonly: bool,
}

impl DiskImage for Raw {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.file.write_all_at(buf, offset)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }
    fn discard(&mut self, _offset: u64, _len: u64) -> std::io::Result<()> {
        Ok(())
    }
    fn write_zeroes(&mut self, offset: u64, len: u64, _may_unmap: bool) -> std::io::Result<()> {
        self.file.write_all_at(&vec![0; len as usize], offset)
    }
    fn readonly(&self) -> bool {
        self.readonly
    }
}

pub fn open(
    path: &Path,
    _format: Option<Format>,
    readonly: bool,
) -> Result<Box<dyn DiskImage>, DiskError> {
    let err = |source| DiskError::Open {
        path: path.to_owned(),
        source,
    };
    let file = File::options()
        .read(true)
        .write(!readonly)
        .open(path)
        .map_err(err)?;
    let size = file.metadata().map_err(err)?.len();
    Ok(Box::new(Raw {
        file,
        size,
        readonly,
    }))
}
