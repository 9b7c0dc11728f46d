//! Guest physical memory: anonymous host mappings described by vm-memory.
//!
//! Every access from the VMM goes through vm-memory's checked `Bytes` API, because all
//! guest memory content and every guest-supplied address is untrusted.

use vm_memory::{GuestAddress, GuestMemoryMmap};

pub use vm_memory::{Bytes, GuestMemoryBackend as GuestMemoryApi, GuestMemoryRegion};

/// The guest memory type shared by every machine.
pub type GuestMemory = GuestMemoryMmap<()>;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("cannot allocate {size} bytes of guest memory")]
    Allocate {
        size: u64,
        #[source]
        source: vm_memory::mmap::FromRangesError,
    },
}

/// Allocates guest RAM as the given `(guest address, size)` regions.
pub fn create(regions: &[(u64, u64)]) -> Result<GuestMemory, MemoryError> {
    let ranges: Vec<(GuestAddress, usize)> = regions
        .iter()
        .map(|&(base, size)| (GuestAddress(base), size as usize))
        .collect();
    GuestMemoryMmap::from_ranges(&ranges).map_err(|source| MemoryError::Allocate {
        size: regions.iter().map(|r| r.1).sum(),
        source,
    })
}
