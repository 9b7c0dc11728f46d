//! What every virtqueue target shares: a small guest memory and queues programmed from
//! the fuzz input, an [`Activation`] for the device, and the checks made afterwards.
//!
//! Input layout (see [`Input`]; missing bytes read as zero): a mode byte, then per queue
//! its size, ring addresses and positions, its descriptors and available-ring entries,
//! then a table of descriptors at [`INDIRECT`] for indirect chains to point at, and last
//! the bytes that fill [`DATA`] (request headers, payloads). Mode bits: 1 ring addresses
//! from the input (else a fixed layout where no ring overlaps another), 2 the device's
//! queue positions from the input (as after a restore; else 0), 4 EVENT_IDX, 8 the
//! available index from the input (else `next_avail` plus the entry count), 16 head
//! indexes as u16 (else u8).
//!
//! The checks: every write the device reports lies inside guest RAM, and a malformed
//! chain raises DEVICE_NEEDS_RESET with a configuration interrupt. Unless the device's
//! writes touched what the model read (then only those two hold): the used index
//! advances by at most the number of well-formed chains offered before the first
//! malformed one, used entries name those chains in order with lengths within their
//! writable buffers, every reported write lies within the writable buffers of completed
//! chains, DEVICE_NEEDS_RESET is set only for a malformed chain, and a queue served to
//! the end completed every well-formed chain and flagged the malformed one.

use std::sync::{Arc, Mutex};

use devices::virtio::chain::Segment;
use devices::virtio::{feature, Activation, GuestWrites, Interrupt, Queue, QueueT, INT_CONFIG};
use vm_core::irq::NoIrq;
use vm_core::GuestMemory;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend as _};
use vmm_sys_util::eventfd::EventFd;

use super::input::Input;
use super::model::{walk, ModelChain};

/// Guest RAM: 64 KiB at address 0.
pub const RAM: u64 = 0x1_0000;
/// Where descriptors for indirect tables are written.
pub const INDIRECT: u64 = 0x5000;
/// Where the tail of the input goes.
pub const DATA: u64 = 0x8000;

/// Records every write a device reports (all of its writes to buffers).
#[derive(Default)]
pub struct Recorder(Mutex<Vec<Range>>);

impl GuestWrites for Recorder {
    fn wrote(&self, gpa: u64, len: u64) {
        self.0.lock().unwrap().push((gpa, len));
    }
}

/// One queue as the driver programmed it.
#[derive(Clone, Debug)]
pub struct QueueSpec {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    pub next_avail: u16,
    pub next_used: u16,
    pub event_idx: bool,
}

impl QueueSpec {
    fn avail_len(&self) -> u64 {
        6 + 2 * u64::from(self.size)
    }
    fn used_len(&self) -> u64 {
        6 + 8 * u64::from(self.size)
    }
}

/// What the model expects of one enabled queue, read before the device runs.
#[derive(Clone, Debug, Default)]
pub struct QueueModel {
    /// Entries the available ring offers.
    pub offered: u16,
    /// The ring itself is unusable: more entries offered than the queue has, or (a
    /// virtio-queue rule) an available ring at address 0.
    pub bad_ring: bool,
    /// The well-formed chains the ring offers first, in order.
    pub chains: Vec<ModelChain>,
    /// A malformed chain follows them (or the ring is unusable).
    pub malformed: bool,
    /// Guest ranges the device reads as metadata: descriptors, the available ring and
    /// the device-readable buffers of the offered chains.
    reads: Vec<Range>,
}

/// Guest memory and queues, programmed and modelled, ready for a device.
pub struct Setup {
    pub mem: GuestMemory,
    pub writes: Arc<Recorder>,
    pub interrupt: Arc<Interrupt>,
    pub specs: Vec<QueueSpec>,
    /// Per queue: the model, if the queue passed the transport's checks (else the device
    /// does not get it).
    pub models: Vec<Option<QueueModel>>,
    queues: Vec<Option<Queue>>,
}

/// What happened on one queue.
#[derive(Clone, Debug, Default)]
pub struct QueueReport {
    /// Requests the device completed (put on the used ring).
    pub used: u16,
}

/// The checks' verdict.
pub struct Report {
    pub queues: Vec<QueueReport>,
    /// Device writes landed on ring metadata or on buffers the device reads, or the rings
    /// overlap: the model's reading no longer holds, so only the unconditional checks ran.
    pub aliased: bool,
}

/// A guest address range: start and length.
type Range = (u64, u64);

fn overlaps(a: Range, b: Range) -> bool {
    a.1 > 0 && b.1 > 0 && a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

/// One descriptor from the input: a compact form (a buffer inside RAM, NEXT/WRITE/INDIRECT
/// from the low bits of the first byte) or, when its top bit is set, a raw one.
fn read_desc(input: &mut Input) -> [u8; 16] {
    let f = input.u8();
    let (addr, len, flags, next) = if f & 0x80 != 0 {
        (input.u64(), input.u32(), input.u16(), input.u16())
    } else {
        (
            u64::from(input.u16()),
            u32::from(input.u16()),
            u16::from(f & 7),
            u16::from(input.u8()),
        )
    };
    let mut d = [0u8; 16];
    d[0..8].copy_from_slice(&addr.to_le_bytes());
    d[8..12].copy_from_slice(&len.to_le_bytes());
    d[12..14].copy_from_slice(&flags.to_le_bytes());
    d[14..16].copy_from_slice(&next.to_le_bytes());
    d
}

/// A queue's programming, as read from the input.
struct Prog {
    spec: QueueSpec,
    descs: Vec<[u8; 16]>,
    avail_flags: u16,
    avail_idx: u16,
    heads: Vec<u16>,
    used_event: u16,
}

impl Setup {
    /// Programs queues of at most `max_sizes` entries from `input`, which it reads to the end.
    pub fn new(input: &mut Input, max_sizes: &[u16]) -> Setup {
        let mem = vm_core::memory::create(&[(0, RAM)]).expect("64 KiB of guest RAM");
        let mode = input.u8();
        let wild = mode & 1 != 0;
        let raw_positions = mode & 2 != 0;
        let event_idx = mode & 4 != 0;
        let raw_avail_idx = mode & 8 != 0;
        let raw_heads = mode & 16 != 0;

        let mut progs = Vec::new();
        for (i, &max) in max_sizes.iter().enumerate() {
            let i = i as u64;
            let bits = max.trailing_zeros() + 1;
            let size = 1u16 << (u32::from(input.u8()) % bits);
            let (desc, avail, used) = if wild {
                (
                    u64::from(input.u16() & !15),
                    u64::from(input.u16() & !1),
                    u64::from(input.u16() & !3),
                )
            } else {
                (i * 0x1000, 0x2000 + i * 0x400, 0x3000 + i * 0x1000)
            };
            let (next_avail, next_used) = if raw_positions {
                (input.u16(), input.u16())
            } else {
                (0, 0)
            };
            let ndesc = usize::from(input.u8()).min(usize::from(size));
            let descs = (0..ndesc).map(|_| read_desc(input)).collect();
            let avail_flags = u16::from(input.u8() & 1);
            let count = u16::from(input.u8()) % (size + 1);
            let avail_idx = if raw_avail_idx {
                input.u16()
            } else {
                next_avail.wrapping_add(count)
            };
            let heads = (0..count)
                .map(|_| {
                    if raw_heads {
                        input.u16()
                    } else {
                        u16::from(input.u8())
                    }
                })
                .collect();
            let used_event = input.u16();
            progs.push(Prog {
                spec: QueueSpec {
                    size,
                    desc,
                    avail,
                    used,
                    next_avail,
                    next_used,
                    event_idx,
                },
                descs,
                avail_flags,
                avail_idx,
                heads,
                used_event,
            });
        }
        let nind = usize::from(input.u8());
        let indirect: Vec<[u8; 16]> = (0..nind).map(|_| read_desc(input)).collect();
        let data = input.rest();

        // Memory, in an order that lets the rings win where a wild layout overlaps them.
        let data = &data[..data.len().min((RAM - DATA) as usize)];
        mem.write_slice(data, GuestAddress(DATA))
            .expect("inside RAM");
        for (k, d) in indirect.iter().enumerate() {
            let _ = mem.write_slice(d, GuestAddress(INDIRECT + 16 * k as u64));
        }
        for p in &progs {
            let s = &p.spec;
            for (k, d) in p.descs.iter().enumerate() {
                let _ = mem.write_slice(d, GuestAddress(s.desc + 16 * k as u64));
            }
            let put16 = |at: u64, v: u16| {
                let _ = mem.write_obj(v.to_le(), GuestAddress(at));
            };
            put16(s.avail, p.avail_flags);
            put16(s.avail + 2, p.avail_idx);
            for (k, &h) in p.heads.iter().enumerate() {
                let slot = s.next_avail.wrapping_add(k as u16) % s.size;
                put16(s.avail + 4 + 2 * u64::from(slot), h);
            }
            put16(s.avail + 4 + 2 * u64::from(s.size), p.used_event);
        }
        // The used rings' headers last: the used index must say where the device starts,
        // whatever else a wild layout wrote over it.
        for p in &progs {
            let _ = mem.write_obj(0u16, GuestAddress(p.spec.used));
            let _ = mem.write_obj(p.spec.next_used.to_le(), GuestAddress(p.spec.used + 2));
        }

        // The queues, and which of them the transport would hand over.
        let mut queues = Vec::new();
        let mut models = Vec::new();
        let mut specs = Vec::new();
        for (p, &max) in progs.iter().zip(max_sizes) {
            let s = &p.spec;
            let mut q = Queue::new(max).expect("a power-of-two maximum");
            q.set_size(s.size);
            let ok = q.try_set_desc_table_address(GuestAddress(s.desc)).is_ok()
                && q.try_set_avail_ring_address(GuestAddress(s.avail)).is_ok()
                && q.try_set_used_ring_address(GuestAddress(s.used)).is_ok();
            q.set_next_avail(s.next_avail);
            q.set_next_used(s.next_used);
            q.set_event_idx(s.event_idx);
            q.set_ready(true);
            if ok && q.is_valid(&mem) {
                models.push(Some(model_queue(&mem, s)));
                queues.push(Some(q));
            } else {
                models.push(None);
                queues.push(None);
            }
            specs.push(s.clone());
        }
        Setup {
            mem,
            writes: Arc::new(Recorder::default()),
            interrupt: Arc::new(Interrupt::new(Arc::new(NoIrq))),
            specs,
            models,
            queues,
        }
    }

    /// Whether the device gets all of its queues (else activation fails: nothing to run).
    pub fn all_enabled(&self) -> bool {
        self.queues.iter().all(Option::is_some)
    }

    /// The activation the transport would give the device at DRIVER_OK.
    pub fn activation(&mut self) -> Activation {
        let notify = self
            .queues
            .iter()
            // Non-blocking: draining a notify eventfd must not wait.
            .map(|_| Arc::new(EventFd::new(libc::EFD_NONBLOCK).expect("an eventfd")))
            .collect();
        let event_idx = self.specs.iter().any(|s| s.event_idx);
        Activation {
            memory: self.mem.clone(),
            queues: std::mem::take(&mut self.queues),
            notify,
            interrupt: self.interrupt.clone(),
            writes: self.writes.clone(),
            features: feature::VERSION_1
                | if event_idx {
                    feature::RING_EVENT_IDX
                } else {
                    0
                },
        }
    }

    /// The used ring's entries `0..n` from where the device started: (id, len).
    pub fn used_entries(&self, q: usize, n: u16) -> Vec<(u32, u32)> {
        let s = &self.specs[q];
        (0..n)
            .map(|k| {
                let slot = s.next_used.wrapping_add(k) % s.size;
                let at = GuestAddress(s.used + 4 + 8 * u64::from(slot));
                let e: [u32; 2] = [
                    self.mem.read_obj(at).unwrap_or(u32::MAX),
                    self.mem
                        .read_obj(GuestAddress(at.0 + 4))
                        .unwrap_or(u32::MAX),
                ];
                (u32::from_le(e[0]), u32::from_le(e[1]))
            })
            .collect()
    }

    /// What the device reads as metadata (descriptors, available rings, the readable
    /// buffers of offered chains), and the used rings it writes.
    fn regions(&self) -> (Vec<Range>, Vec<Range>) {
        let mut reads = Vec::new();
        let mut used_rings = Vec::new();
        for (s, m) in self.specs.iter().zip(&self.models) {
            if let Some(m) = m {
                reads.extend_from_slice(&m.reads);
                reads.push((s.avail, s.avail_len()));
                used_rings.push((s.used, s.used_len()));
            }
        }
        (reads, used_rings)
    }

    /// Whether a used ring overlaps another or anything the device reads: then what the
    /// device writes there changes what it reads next, and the model no longer holds.
    pub fn rings_alias(&self) -> bool {
        let (reads, used_rings) = self.regions();
        used_rings.iter().enumerate().any(|(i, &u)| {
            reads.iter().any(|&r| overlaps(u, r))
                || used_rings[i + 1..].iter().any(|&v| overlaps(u, v))
        })
    }

    /// Checks what the device did. `drained[q]`: the device was asked to serve queue `q`
    /// until it is empty (it must then complete every well-formed chain up to the first
    /// malformed one, and flag that one).
    pub fn check(&self, drained: &[bool]) -> Report {
        let writes = self.writes.0.lock().unwrap().clone();
        // Unconditional: every reported write is inside guest RAM.
        for &(gpa, len) in &writes {
            assert!(
                len == 0 || self.mem.check_range(GuestAddress(gpa), len as usize),
                "device write {gpa:#x}+{len:#x} outside guest RAM"
            );
        }
        let needs_reset = self.interrupt.needs_reset();
        if needs_reset {
            assert!(
                self.interrupt.status() & INT_CONFIG != 0,
                "DEVICE_NEEDS_RESET without a configuration interrupt"
            );
        }

        // The model holds unless the device's writes (used rings, buffers) touched what
        // it read.
        let (reads, used_rings) = self.regions();
        let aliased = self.rings_alias()
            || writes.iter().any(|&w| {
                reads.iter().any(|&r| overlaps(w, r)) || used_rings.iter().any(|&u| overlaps(w, u))
            });

        let mut reports = Vec::new();
        let mut completed: Vec<Segment> = Vec::new();
        let mut any_malformed = false;
        for (q, (s, m)) in self.specs.iter().zip(&self.models).enumerate() {
            let Some(m) = m else {
                reports.push(QueueReport::default());
                continue;
            };
            any_malformed |= m.malformed;
            let used_idx: u16 = u16::from_le(
                self.mem
                    .read_obj(GuestAddress(s.used + 2))
                    .expect("the used ring is in RAM"),
            );
            let used = used_idx.wrapping_sub(s.next_used);
            reports.push(QueueReport { used });
            if aliased {
                continue;
            }
            let valid = m.chains.len() as u16;
            assert!(
                used <= valid,
                "queue {q}: {used} requests completed, only {valid} well-formed ones offered \
                 (offered {}, ring unusable: {})",
                m.offered,
                m.bad_ring
            );
            for (k, (id, len)) in self.used_entries(q, used).into_iter().enumerate() {
                let c = &m.chains[k];
                assert_eq!(
                    id,
                    u32::from(c.head),
                    "queue {q}: used entry {k} out of order"
                );
                assert!(
                    u64::from(len) <= c.writable_len(),
                    "queue {q}: used length {len} > the chain's {} writable bytes",
                    c.writable_len()
                );
                completed.extend_from_slice(&c.writable);
            }
            if drained.get(q).copied().unwrap_or(false) {
                assert_eq!(used, valid, "queue {q}: a drained queue left requests");
                assert!(
                    !m.malformed || needs_reset,
                    "queue {q}: a malformed chain did not set DEVICE_NEEDS_RESET"
                );
            }
        }
        if !aliased {
            assert!(
                !needs_reset || any_malformed,
                "DEVICE_NEEDS_RESET without a malformed chain"
            );
            for &(gpa, len) in &writes {
                assert!(
                    len == 0
                        || completed
                            .iter()
                            .any(|s| gpa >= s.addr && gpa + len <= s.addr + u64::from(s.len)),
                    "device write {gpa:#x}+{len:#x} outside the writable buffers of the \
                     requests it completed"
                );
            }
        }
        Report {
            queues: reports,
            aliased,
        }
    }
}

/// Reads the available ring and walks the offered chains, up to the first malformed one.
fn model_queue(mem: &GuestMemory, s: &QueueSpec) -> QueueModel {
    let avail_idx: u16 = u16::from_le(mem.read_obj(GuestAddress(s.avail + 2)).unwrap_or(0));
    let offered = avail_idx.wrapping_sub(s.next_avail);
    let mut m = QueueModel {
        offered,
        bad_ring: offered > s.size || s.avail == 0,
        ..Default::default()
    };
    if m.bad_ring {
        m.malformed = true;
        return m;
    }
    for k in 0..offered {
        let slot = s.next_avail.wrapping_add(k) % s.size;
        let head: u16 = u16::from_le(
            mem.read_obj(GuestAddress(s.avail + 4 + 2 * u64::from(slot)))
                .expect("the available ring is in RAM"),
        );
        let w = walk(mem, s.desc, s.size, head);
        m.reads.extend(w.read);
        match w.chain {
            Some(c) => {
                m.reads
                    .extend(c.readable.iter().map(|r| (r.addr, u64::from(r.len))));
                m.chains.push(c);
            }
            None => {
                m.malformed = true;
                break;
            }
        }
    }
    m
}
