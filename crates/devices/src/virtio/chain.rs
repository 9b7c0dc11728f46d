//! One descriptor chain, validated as a whole before a device acts on it.
//!
//! `virtio-queue` walks the rings; its chain iterator simply stops on a loop, a chain
//! longer than the queue, a bad index or an indirect table inside an indirect table. A
//! device must not take such a truncated chain for a short request, so [`Chain::parse`]
//! notices where the walk stopped early (the last descriptor still says NEXT) and
//! refuses it, as it refuses buffers outside guest RAM and device-readable buffers after
//! device-writable ones.

use std::sync::Arc;

use virtio_queue::DescriptorChain;
use vm_core::GuestMemory;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend as _};

use super::GuestWrites;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    #[error("descriptor chain {head} is empty or starts at a bad index")]
    Empty { head: u16 },
    #[error("descriptor chain {head} loops, is longer than its table or nests indirect tables")]
    Truncated { head: u16 },
    #[error("descriptor chain {head} has a buffer {addr:#x}+{len:#x} outside guest RAM")]
    OutsideRam { head: u16, addr: u64, len: u32 },
    #[error("descriptor chain {head} has a device-readable buffer after a writable one")]
    ReadableAfterWritable { head: u16 },
    #[error("descriptor chain {head} is too short for its request")]
    TooShort { head: u16 },
}

/// A buffer in guest RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub addr: u64,
    pub len: u32,
}

/// A validated chain: the driver's buffers, device-readable first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub head: u16,
    pub readable: Vec<Segment>,
    pub writable: Vec<Segment>,
}

impl Chain {
    pub fn parse(chain: DescriptorChain<&GuestMemory>) -> Result<Chain, ChainError> {
        let head = chain.head_index();
        let memory = chain.memory();
        let mut out = Chain {
            head,
            readable: Vec::new(),
            writable: Vec::new(),
        };
        let mut last_has_next = false;
        for desc in chain.clone() {
            let seg = Segment {
                addr: desc.addr().0,
                len: desc.len(),
            };
            let inside = seg.len == 0 || memory.check_range(desc.addr(), seg.len as usize);
            if !inside {
                return Err(ChainError::OutsideRam {
                    head,
                    addr: seg.addr,
                    len: seg.len,
                });
            }
            if desc.is_write_only() {
                out.writable.push(seg);
            } else if out.writable.is_empty() {
                out.readable.push(seg);
            } else {
                return Err(ChainError::ReadableAfterWritable { head });
            }
            last_has_next = desc.has_next();
        }
        if out.readable.is_empty() && out.writable.is_empty() {
            return Err(ChainError::Empty { head });
        }
        if last_has_next {
            return Err(ChainError::Truncated { head });
        }
        Ok(out)
    }

    pub fn readable_len(&self) -> u64 {
        self.readable.iter().map(|s| u64::from(s.len)).sum()
    }

    pub fn writable_len(&self) -> u64 {
        self.writable.iter().map(|s| u64::from(s.len)).sum()
    }
}

/// Reads the device-readable part of a chain in order.
pub struct ChainReader<'a> {
    memory: &'a GuestMemory,
    segments: &'a [Segment],
    // Position: segment index and offset in it.
    seg: usize,
    off: u32,
}

impl<'a> ChainReader<'a> {
    pub fn new(memory: &'a GuestMemory, chain: &'a Chain) -> Self {
        ChainReader {
            memory,
            segments: &chain.readable,
            seg: 0,
            off: 0,
        }
    }

    /// Fills `buf` from the chain; false (and `buf` partly filled) if the chain ends first.
    pub fn read_exact(&mut self, mut buf: &mut [u8]) -> bool {
        while !buf.is_empty() {
            let Some(seg) = self.segments.get(self.seg) else {
                return false;
            };
            let n = ((seg.len - self.off) as usize).min(buf.len());
            let at = GuestAddress(seg.addr + u64::from(self.off));
            if self.memory.read_slice(&mut buf[..n], at).is_err() {
                return false;
            }
            buf = &mut buf[n..];
            self.advance(n as u32);
        }
        true
    }

    /// Reads up to `max` bytes (whatever the chain still has).
    pub fn read_up_to(&mut self, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some(seg) = self.segments.get(self.seg) else {
                break;
            };
            let n = ((seg.len - self.off) as usize).min(max - out.len());
            let start = out.len();
            out.resize(start + n, 0);
            let at = GuestAddress(seg.addr + u64::from(self.off));
            if self.memory.read_slice(&mut out[start..], at).is_err() {
                out.truncate(start);
                break;
            }
            self.advance(n as u32);
        }
        out
    }

    pub fn remaining(&self) -> u64 {
        let rest: u64 = self
            .segments
            .iter()
            .skip(self.seg)
            .map(|s| u64::from(s.len))
            .sum();
        rest - u64::from(self.off)
    }

    fn advance(&mut self, n: u32) {
        self.off += n;
        while let Some(seg) = self.segments.get(self.seg) {
            if self.off < seg.len {
                break;
            }
            self.off -= seg.len;
            self.seg += 1;
        }
    }
}

/// Writes the device-writable part of a chain in order, reporting what it wrote.
pub struct ChainWriter<'a> {
    memory: &'a GuestMemory,
    writes: &'a Arc<dyn GuestWrites>,
    segments: &'a [Segment],
    seg: usize,
    off: u32,
    written: u32,
}

impl<'a> ChainWriter<'a> {
    pub fn new(
        memory: &'a GuestMemory,
        writes: &'a Arc<dyn GuestWrites>,
        chain: &'a Chain,
    ) -> Self {
        ChainWriter {
            memory,
            writes,
            segments: &chain.writable,
            seg: 0,
            off: 0,
            written: 0,
        }
    }

    /// Writes as much of `data` as fits; returns how much did.
    pub fn write(&mut self, mut data: &[u8]) -> usize {
        let mut done = 0;
        while !data.is_empty() {
            let Some(seg) = self.segments.get(self.seg) else {
                break;
            };
            let n = ((seg.len - self.off) as usize).min(data.len());
            let at = seg.addr + u64::from(self.off);
            if self
                .memory
                .write_slice(&data[..n], GuestAddress(at))
                .is_err()
            {
                break;
            }
            self.writes.wrote(at, n as u64);
            data = &data[n..];
            done += n;
            self.written += n as u32;
            self.off += n as u32;
            while let Some(seg) = self.segments.get(self.seg) {
                if self.off < seg.len {
                    break;
                }
                self.off -= seg.len;
                self.seg += 1;
            }
        }
        done
    }

    pub fn remaining(&self) -> u64 {
        let rest: u64 = self
            .segments
            .iter()
            .skip(self.seg)
            .map(|s| u64::from(s.len))
            .sum();
        rest - u64::from(self.off)
    }

    /// Moves on `n` bytes without writing them (they do not count as written).
    pub fn skip(&mut self, n: u64) {
        let mut left = n.min(self.remaining());
        while left > 0 {
            let Some(seg) = self.segments.get(self.seg) else {
                break;
            };
            let k = u64::from(seg.len - self.off).min(left);
            self.off += k as u32;
            left -= k;
            if self.off >= seg.len {
                self.off = 0;
                self.seg += 1;
            }
        }
    }

    /// Bytes written so far: the length the used ring reports.
    pub fn written(&self) -> u32 {
        self.written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtio_bindings::virtio_ring::{
        VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
    };
    use virtio_queue::desc::split::Descriptor as SplitDescriptor;
    use virtio_queue::desc::RawDescriptor;
    use virtio_queue::mock::MockSplitQueue;
    use virtio_queue::QueueOwnedT;

    const RAM: u64 = 0x10_0000;

    fn memory() -> GuestMemory {
        vm_core::memory::create(&[(0, RAM)]).unwrap()
    }

    fn parse_first(mem: &GuestMemory, descs: &[RawDescriptor]) -> Result<Chain, ChainError> {
        let vq = MockSplitQueue::new(mem, 16);
        vq.build_desc_chain(descs).unwrap();
        let mut q: virtio_queue::Queue = vq.create_queue().unwrap();
        let chain = q.iter(mem).unwrap().next().unwrap();
        Chain::parse(chain)
    }

    fn desc(addr: u64, len: u32, flags: u32, next: u16) -> RawDescriptor {
        RawDescriptor::from(SplitDescriptor::new(addr, len, flags as u16, next))
    }

    #[test]
    fn splits_readable_and_writable() {
        let mem = memory();
        let c = parse_first(
            &mem,
            &[
                desc(0x8000, 16, VRING_DESC_F_NEXT, 1),
                desc(0x9000, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2),
                desc(0xa000, 1, VRING_DESC_F_WRITE, 0),
            ],
        )
        .unwrap();
        assert_eq!(
            c.readable,
            vec![Segment {
                addr: 0x8000,
                len: 16
            }]
        );
        assert_eq!(c.writable.len(), 2);
        assert_eq!(c.writable_len(), 513);
    }

    #[test]
    fn refuses_buffers_outside_ram() {
        let mem = memory();
        let e = parse_first(&mem, &[desc(RAM - 8, 16, 0, 0)]).unwrap_err();
        assert!(matches!(e, ChainError::OutsideRam { .. }));
        let e = parse_first(&mem, &[desc(u64::MAX - 4, 16, 0, 0)]).unwrap_err();
        assert!(matches!(e, ChainError::OutsideRam { .. }));
    }

    #[test]
    fn refuses_readable_after_writable() {
        let mem = memory();
        let e = parse_first(
            &mem,
            &[
                desc(0x8000, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1),
                desc(0x9000, 16, 0, 0),
            ],
        )
        .unwrap_err();
        assert!(matches!(e, ChainError::ReadableAfterWritable { .. }));
    }

    #[test]
    fn refuses_loops_and_nested_indirect_tables() {
        let mem = memory();
        let vq = MockSplitQueue::new(&mem, 16);
        // A two-descriptor loop: 0 -> 1 -> 0.
        vq.build_desc_chain(&[
            desc(0x8000, 16, VRING_DESC_F_NEXT, 1),
            desc(0x9000, 16, VRING_DESC_F_NEXT, 0),
        ])
        .unwrap();
        // The mock links descriptors in order; make the last one point back to the first.
        let table = vq.desc_table_addr();
        mem.write_obj(
            SplitDescriptor::new(0x9000, 16, VRING_DESC_F_NEXT as u16, 0),
            GuestAddress(table.0 + 16),
        )
        .unwrap();
        let mut q: virtio_queue::Queue = vq.create_queue().unwrap();
        let chain = q.iter(&mem).unwrap().next().unwrap();
        assert!(matches!(
            Chain::parse(chain),
            Err(ChainError::Truncated { .. })
        ));

        // An indirect table whose first entry is itself indirect.
        let inner = 0x2_0000u64;
        mem.write_obj(
            SplitDescriptor::new(0x3_0000, 16, VRING_DESC_F_INDIRECT as u16, 0),
            GuestAddress(inner),
        )
        .unwrap();
        let e = parse_first(&mem, &[desc(inner, 16, VRING_DESC_F_INDIRECT, 0)]).unwrap_err();
        assert!(matches!(e, ChainError::Empty { .. }));
    }

    #[test]
    fn reader_and_writer_cross_segments() {
        let mem = memory();
        mem.write_slice(&[1, 2, 3], GuestAddress(0x8000)).unwrap();
        mem.write_slice(&[4, 5], GuestAddress(0x9000)).unwrap();
        let chain = Chain {
            head: 0,
            readable: vec![
                Segment {
                    addr: 0x8000,
                    len: 3,
                },
                Segment {
                    addr: 0x9000,
                    len: 2,
                },
            ],
            writable: vec![
                Segment {
                    addr: 0xa000,
                    len: 2,
                },
                Segment {
                    addr: 0xb000,
                    len: 8,
                },
            ],
        };
        let mut r = ChainReader::new(&mem, &chain);
        let mut b = [0u8; 4];
        assert!(r.read_exact(&mut b));
        assert_eq!(b, [1, 2, 3, 4]);
        assert_eq!(r.remaining(), 1);
        assert!(!r.read_exact(&mut b));

        struct Log(std::sync::Mutex<Vec<(u64, u64)>>);
        impl GuestWrites for Log {
            fn wrote(&self, gpa: u64, len: u64) {
                self.0.lock().unwrap().push((gpa, len));
            }
        }
        let log = Arc::new(Log(Default::default()));
        let writes: Arc<dyn GuestWrites> = log.clone();
        let mut w = ChainWriter::new(&mem, &writes, &chain);
        assert_eq!(w.write(&[9, 8, 7]), 3);
        assert_eq!(w.written(), 3);
        assert_eq!(w.write(&[0; 20]), 7);
        let mut got = [0u8; 2];
        mem.read_slice(&mut got, GuestAddress(0xa000)).unwrap();
        assert_eq!(got, [9, 8]);
        assert_eq!(
            *log.0.lock().unwrap(),
            vec![(0xa000, 2), (0xb000, 1), (0xb001, 7)]
        );
    }
}
