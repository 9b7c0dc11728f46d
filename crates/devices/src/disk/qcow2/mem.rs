//! An in-memory `imago` storage object, so that the qcow2 parser can be fuzzed without files.

use std::fmt;
use std::io;
use std::sync::RwLock;

use imago::io_buffers::{IoVector, IoVectorMut};
use imago::storage::drivers::CommonStorageHelper;
use imago::Storage;

/// A file held in memory. Writes may grow it up to `limit` bytes.
#[derive(Debug)]
pub struct MemStorage {
    data: RwLock<Vec<u8>>,
    limit: u64,
    helper: CommonStorageHelper,
}

impl MemStorage {
    pub fn new(data: Vec<u8>, limit: u64) -> Self {
        MemStorage {
            data: RwLock::new(data),
            limit,
            helper: CommonStorageHelper::default(),
        }
    }

    /// The current contents.
    pub fn into_inner(self) -> Vec<u8> {
        self.data.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Display for MemStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("memory")
    }
}

fn poisoned<T>(_: T) -> io::Error {
    io::Error::other("memory storage lock poisoned")
}

// SAFETY: imago marks `pure_readv`, `pure_writev` and `invalidate_cache` unsafe because a
// caller must not race them with cached writes to the same range; these bodies do nothing
// unsafe themselves (bounds-checked copies under the lock), so they uphold any such call.
impl Storage for MemStorage {
    fn size(&self) -> io::Result<u64> {
        Ok(self.data.read().map_err(poisoned)?.len() as u64)
    }

    unsafe fn pure_readv(&self, mut bufv: IoVectorMut<'_>, offset: u64) -> io::Result<()> {
        let len = usize::try_from(bufv.len()).map_err(|_| io::Error::other("read too large"))?;
        let mut tmp = vec![0u8; len];
        let data = self.data.read().map_err(poisoned)?;
        if let Ok(start) = usize::try_from(offset) {
            if start < data.len() {
                let n = len.min(data.len() - start);
                tmp[..n].copy_from_slice(&data[start..start + n]);
            }
        }
        bufv.copy_from_slice(&tmp);
        Ok(())
    }

    unsafe fn pure_writev(&self, bufv: IoVector<'_>, offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(bufv.len())
            .filter(|&end| end <= self.limit)
            .ok_or_else(|| io::Error::other("write beyond the memory storage's limit"))?;
        // Both within the limit, which the caller keeps addressable.
        let (start, end) = (offset as usize, end as usize);
        let mut data = self.data.write().map_err(poisoned)?;
        if data.len() < end {
            data.resize(end, 0);
        }
        bufv.copy_into_slice(&mut data[start..end]);
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    unsafe fn invalidate_cache(&self) -> io::Result<()> {
        Ok(())
    }

    fn get_storage_helper(&self) -> &CommonStorageHelper {
        &self.helper
    }
}
