//! An independent reading of a split virtqueue (virtio 1.x section 2.7), written from the
//! specification and Tandem's rules rather than from the code under test: what the
//! available ring offers and which chains are well formed. The targets compare what the
//! devices did with it.
//!
//! A chain is malformed when a descriptor index is past its table, the chain is longer
//! than its table (a loop), an indirect table is empty, not a whole number of
//! descriptors, longer than 65535 entries or nested in another, a buffer is not inside
//! guest RAM, a device-readable buffer follows a writable one, or the buffers add up to
//! more than 4 GiB - 1 bytes. Like rust-vmm's virtio-queue, an indirect descriptor may end
//! a chain of direct ones (the specification does not allow it; it is harmless).

use devices::virtio::chain::Segment;
use vm_core::GuestMemory;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend as _};

const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const F_INDIRECT: u16 = 4;

/// A well-formed chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelChain {
    pub head: u16,
    pub readable: Vec<Segment>,
    pub writable: Vec<Segment>,
}

impl ModelChain {
    pub fn writable_len(&self) -> u64 {
        self.writable.iter().map(|s| u64::from(s.len)).sum()
    }

    /// The device-readable bytes, in order, as guest memory holds them now.
    pub fn readable_bytes(&self, mem: &GuestMemory, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for s in &self.readable {
            let n = (s.len as usize).min(max - out.len());
            let start = out.len();
            out.resize(start + n, 0);
            mem.read_slice(&mut out[start..], GuestAddress(s.addr))
                .expect("a checked segment is inside RAM");
            if out.len() == max {
                break;
            }
        }
        out
    }
}

/// The result of walking one chain: the chain if well formed, and every guest address
/// range the walk read descriptors from.
pub struct Walk {
    pub chain: Option<ModelChain>,
    pub read: Vec<(u64, u64)>,
}

fn read_desc(mem: &GuestMemory, table: u64, index: u16) -> Option<(u64, u32, u16, u16)> {
    let at = table.checked_add(u64::from(index) * 16)?;
    let mut d = [0u8; 16];
    mem.read_slice(&mut d, GuestAddress(at)).ok()?;
    let addr = u64::from_le_bytes(d[0..8].try_into().ok()?);
    let len = u32::from_le_bytes(d[8..12].try_into().ok()?);
    let flags = u16::from_le_bytes(d[12..14].try_into().ok()?);
    let next = u16::from_le_bytes(d[14..16].try_into().ok()?);
    Some((addr, len, flags, next))
}

/// Walks the chain starting at `head` in the descriptor table at `table` of a queue of
/// `size` entries.
pub fn walk(mem: &GuestMemory, table: u64, size: u16, head: u16) -> Walk {
    let mut read = Vec::new();
    let mut chain = ModelChain {
        head,
        readable: Vec::new(),
        writable: Vec::new(),
    };
    let (mut table, mut entries, mut index) = (table, u32::from(size), head);
    // Descriptors this table may still contribute: a longer chain must loop.
    let mut budget = u32::from(size);
    let mut indirect = false;
    let mut total: u32 = 0;
    let bad = |read| Walk { chain: None, read };
    loop {
        if budget == 0 || u32::from(index) >= entries {
            return bad(read);
        }
        let Some((addr, len, flags, next)) = read_desc(mem, table, index) else {
            return bad(read);
        };
        read.push((table + u64::from(index) * 16, 16));
        if flags & F_INDIRECT != 0 {
            if indirect || len % 16 != 0 || len / 16 > u32::from(u16::MAX) {
                return bad(read);
            }
            indirect = true;
            table = addr;
            entries = len / 16;
            budget = entries;
            index = 0;
            continue;
        }
        let Some(t) = total.checked_add(len) else {
            return bad(read);
        };
        total = t;
        if len > 0 && !mem.check_range(GuestAddress(addr), len as usize) {
            return bad(read);
        }
        let seg = Segment { addr, len };
        if flags & F_WRITE != 0 {
            chain.writable.push(seg);
        } else if chain.writable.is_empty() {
            chain.readable.push(seg);
        } else {
            return bad(read);
        }
        if flags & F_NEXT == 0 {
            return Walk {
                chain: Some(chain),
                read,
            };
        }
        budget -= 1;
        index = next;
    }
}
