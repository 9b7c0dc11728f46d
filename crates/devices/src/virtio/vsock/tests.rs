//! The device against a fake guest driver: split rings in fake guest memory, packets
//! built by hand, real Unix sockets on the host side. The worker is driven directly (no
//! thread); every host source is reported ready on each round, which also checks that
//! spurious readiness is harmless.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vm_core::GuestMemory;
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::EventFd;

use super::connection::BUF_ALLOC;
use super::packet::{HOST_CID, SHUTDOWN_RCV, SHUTDOWN_SEND, TYPE_STREAM};
use super::*;
use crate::virtio::{IgnoreWrites, Interrupt, Queue, QueueT};

const CID: u64 = 3;
const RAM: u64 = 16 << 20;
/// Guest buffers are carved from here up.
const DATA: u64 = 0x10_0000;
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;

/// One split virtqueue as a driver sees it.
struct FakeQueue {
    desc: u64,
    avail: u64,
    used: u64,
    size: u16,
    next_desc: u16,
    avail_idx: u16,
    used_seen: u16,
}

impl FakeQueue {
    fn new(base: u64, size: u16) -> FakeQueue {
        let avail = base + 16 * u64::from(size);
        let used = (avail + 6 + 2 * u64::from(size)).next_multiple_of(4);
        FakeQueue {
            desc: base,
            avail,
            used,
            size,
            next_desc: 0,
            avail_idx: 0,
            used_seen: 0,
        }
    }

    fn queue(&self) -> Queue {
        let mut q = Queue::new(self.size).unwrap();
        q.set_size(self.size);
        q.set_desc_table_address(Some(self.desc as u32), Some(0));
        q.set_avail_ring_address(Some(self.avail as u32), Some(0));
        q.set_used_ring_address(Some(self.used as u32), Some(0));
        q.set_ready(true);
        q
    }

    /// Posts a chain of `(address, length, device-writable)` buffers; returns its head.
    fn post(&mut self, mem: &GuestMemory, bufs: &[(u64, u32, bool)]) -> u16 {
        let head = self.next_desc;
        for (i, &(addr, len, write)) in bufs.iter().enumerate() {
            let idx = self.next_desc;
            self.next_desc = (self.next_desc + 1) % self.size;
            let mut flags = if write { F_WRITE } else { 0 };
            if i + 1 < bufs.len() {
                flags |= F_NEXT;
            }
            let at = self.desc + 16 * u64::from(idx);
            mem.write_obj(addr, GuestAddress(at)).unwrap();
            mem.write_obj(len, GuestAddress(at + 8)).unwrap();
            mem.write_obj(flags, GuestAddress(at + 12)).unwrap();
            mem.write_obj(self.next_desc, GuestAddress(at + 14))
                .unwrap();
        }
        let slot = self.avail + 4 + 2 * u64::from(self.avail_idx % self.size);
        mem.write_obj(head, GuestAddress(slot)).unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem.write_obj(self.avail_idx, GuestAddress(self.avail + 2))
            .unwrap();
        head
    }

    /// Chains the device returned since the last call: (head, length written).
    fn take_used(&mut self, mem: &GuestMemory) -> Vec<(u16, u32)> {
        let idx: u16 = mem.read_obj(GuestAddress(self.used + 2)).unwrap();
        let mut out = Vec::new();
        while self.used_seen != idx {
            let at = self.used + 4 + 8 * u64::from(self.used_seen % self.size);
            let id: u32 = mem.read_obj(GuestAddress(at)).unwrap();
            let len: u32 = mem.read_obj(GuestAddress(at + 4)).unwrap();
            out.push((id as u16, len));
            self.used_seen = self.used_seen.wrapping_add(1);
        }
        out
    }

    fn in_flight(&self) -> u16 {
        self.avail_idx.wrapping_sub(self.used_seen)
    }
}

/// A guest driver and the device's worker, in one thread.
struct Harness {
    mem: GuestMemory,
    rx: FakeQueue,
    tx: FakeQueue,
    worker: VsockWorker,
    /// Posted receive buffers by head: header address, payload address.
    rx_bufs: HashMap<u16, (u64, u64)>,
    next_addr: u64,
    path: PathBuf,
    /// Packets received so far and not yet looked at.
    inbox: Vec<(Header, Vec<u8>)>,
    /// Payload room of the receive buffers posted from now on (0: a header only).
    rx_buf_len: u32,
}

const RX_BUF: u32 = 4096;
const RX_POSTED: u16 = 8;

impl Harness {
    fn new(name: &str) -> Harness {
        let dir = std::env::temp_dir().join(format!("tandem-vsock-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v.sock");
        let mem = vm_core::memory::create(&[(0, RAM)]).unwrap();
        let (rx, tx, ev) = (
            FakeQueue::new(0x1000, 256),
            FakeQueue::new(0x8000, 256),
            FakeQueue::new(0xf000, 64),
        );
        let notify = (0..3)
            .map(|_| Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap()))
            .collect();
        let activation = Activation {
            memory: mem.clone(),
            queues: vec![Some(rx.queue()), Some(tx.queue()), Some(ev.queue())],
            notify,
            interrupt: Arc::new(Interrupt::new(Arc::new(vm_core::irq::NoIrq))),
            writes: Arc::new(IgnoreWrites),
            features: 0,
        };
        let worker = VsockWorker {
            cid: CID,
            queues: QueueSet::new(activation),
            muxer: Muxer::new(CID, &path).unwrap(),
            rx_buf: vec![0; MAX_PAYLOAD],
            tx_buf: vec![0; MAX_PAYLOAD],
        };
        Harness {
            mem,
            rx,
            tx,
            worker,
            rx_bufs: HashMap::new(),
            next_addr: DATA,
            path,
            inbox: Vec::new(),
            rx_buf_len: RX_BUF,
        }
    }

    fn alloc(&mut self, len: u32) -> u64 {
        if self.next_addr + u64::from(len) > RAM {
            self.next_addr = DATA;
        }
        let a = self.next_addr;
        self.next_addr += u64::from(len).next_multiple_of(64);
        a
    }

    /// Reports every source ready (spurious events included) and lets the worker run.
    fn poll(&mut self) {
        for _ in 0..4 {
            for (_, token, events) in self.worker.sources() {
                self.worker.ready(token, events);
            }
            self.worker.pump();
        }
        self.collect();
    }

    /// Keeps RX_POSTED receive buffers posted (header and payload apart, as Linux
    /// posts them) and takes in what the device filled.
    fn collect(&mut self) {
        loop {
            for (head, len) in self.rx.take_used(&self.mem) {
                let (h, d) = self.rx_bufs.remove(&head).unwrap();
                let mut raw = [0u8; HDR_LEN];
                self.mem.read_slice(&mut raw, GuestAddress(h)).unwrap();
                let hdr = Header::decode(&raw);
                assert_eq!(len as usize, HDR_LEN + hdr.len as usize, "{hdr:?}");
                let mut data = vec![0; hdr.len as usize];
                self.mem.read_slice(&mut data, GuestAddress(d)).unwrap();
                self.inbox.push((hdr, data));
            }
            if self.rx.in_flight() >= RX_POSTED {
                return;
            }
            while self.rx.in_flight() < RX_POSTED {
                let len = self.rx_buf_len;
                let (h, d) = (self.alloc(HDR_LEN as u32), self.alloc(len.max(1)));
                let mut bufs = vec![(h, HDR_LEN as u32, true)];
                if len > 0 {
                    bufs.push((d, len, true));
                }
                let head = self.rx.post(&self.mem, &bufs);
                self.rx_bufs.insert(head, (h, d));
            }
            self.worker.ready(TOKEN_RX, EventSet::IN);
        }
    }

    /// Sends a packet from the guest (header and payload in separate buffers).
    fn send(&mut self, hdr: Header, payload: &[u8]) -> u16 {
        let h = self.alloc(HDR_LEN as u32);
        self.mem
            .write_slice(&hdr.encode(), GuestAddress(h))
            .unwrap();
        let mut bufs = vec![(h, HDR_LEN as u32, false)];
        if !payload.is_empty() {
            let d = self.alloc(payload.len() as u32);
            self.mem.write_slice(payload, GuestAddress(d)).unwrap();
            bufs.push((d, payload.len() as u32, false));
        }
        let head = self.tx.post(&self.mem, &bufs);
        self.worker.ready(TOKEN_TX, EventSet::IN);
        self.poll();
        head
    }

    /// Waits (generously) for a packet the predicate accepts; returns it.
    fn expect(&mut self, what: &str, f: impl Fn(&Header) -> bool) -> (Header, Vec<u8>) {
        let start = Instant::now();
        loop {
            self.poll();
            if let Some(i) = self.inbox.iter().position(|(h, _)| f(h)) {
                return self.inbox.remove(i);
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no {what}; got {:?}",
                self.inbox
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn expect_op(&mut self, op: Op) -> (Header, Vec<u8>) {
        self.expect(&format!("{op:?}"), |h| h.op == op as u16)
    }

    /// Nothing more arrives for the guest.
    fn expect_quiet(&mut self) {
        self.poll();
        assert!(self.inbox.is_empty(), "unexpected {:?}", self.inbox);
    }

    fn port_path(&self, port: u32) -> PathBuf {
        PathBuf::from(format!("{}_{port}", self.path.display()))
    }
}

fn from_guest(op: Op, guest_port: u32, host_port: u32) -> Header {
    Header {
        src_cid: CID,
        dst_cid: HOST_CID,
        src_port: guest_port,
        dst_port: host_port,
        type_: TYPE_STREAM,
        op: op as u16,
        buf_alloc: 256 * 1024,
        ..Header::default()
    }
}

fn rw(guest_port: u32, host_port: u32, len: usize) -> Header {
    Header {
        len: len as u32,
        ..from_guest(Op::Rw, guest_port, host_port)
    }
}

/// Reads from a non-blocking host stream until `n` bytes came (or EOF).
fn read_n(s: &mut UnixStream, n: usize, h: &mut Harness) -> Vec<u8> {
    let mut out = Vec::new();
    let start = Instant::now();
    let mut buf = vec![0u8; 65536];
    while out.len() < n {
        match s.read(&mut buf) {
            Ok(0) => break,
            // The device closed with unread bytes in its end (a refused line).
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Ok(k) => out.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "host read stalled"
                );
                h.poll();
            }
            Err(e) => panic!("host read: {e}"),
        }
    }
    out
}

fn accept(l: &UnixListener) -> UnixStream {
    let (s, _) = l.accept().unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

#[test]
fn config_space_is_the_guest_cid() {
    let d = std::env::temp_dir().join(format!("tandem-vsock-cfg-{}", std::process::id()));
    let v = Vsock::new(0x1_0000_0005, &d).unwrap();
    assert_eq!(v.device_type(), 19);
    assert_eq!(v.queue_max_sizes().len(), 3);
    let mut b = [0u8; 8];
    v.read_config(0, &mut b);
    assert_eq!(u64::from_le_bytes(b), 0x1_0000_0005);
    let mut hi = [0u8; 4];
    v.read_config(4, &mut hi);
    assert_eq!(hi, [1, 0, 0, 0]);
}

#[test]
fn guest_connects_to_a_host_service_and_both_half_close() {
    let mut h = Harness::new("g2h");
    let service = UnixListener::bind(h.port_path(6000)).unwrap();
    h.send(from_guest(Op::Request, 1234, 6000), &[]);
    let (resp, _) = h.expect_op(Op::Response);
    assert_eq!((resp.src_cid, resp.dst_cid), (HOST_CID, CID));
    assert_eq!((resp.src_port, resp.dst_port), (6000, 1234));
    assert_eq!((resp.buf_alloc, resp.fwd_cnt), (BUF_ALLOC, 0));
    let mut host = accept(&service);

    h.send(rw(1234, 6000, 5), b"hello");
    assert_eq!(read_n(&mut host, 5, &mut h), b"hello");

    host.write_all(b"world").unwrap();
    let (data, payload) = h.expect_op(Op::Rw);
    assert_eq!(payload, b"world");
    assert_eq!((data.src_port, data.dst_port, data.len), (6000, 1234, 5));
    assert_eq!(data.fwd_cnt, 5, "the header carries the bytes forwarded");

    // Host EOF: the guest hears OP_SHUTDOWN(SEND), and can still send.
    host.shutdown(std::net::Shutdown::Write).unwrap();
    let (s, _) = h.expect_op(Op::Shutdown);
    assert_eq!(s.flags, SHUTDOWN_SEND);
    h.send(rw(1234, 6000, 3), b"bye");
    assert_eq!(read_n(&mut host, 3, &mut h), b"bye");
    h.expect_quiet();

    // The guest finishes too: the host sees EOF, the guest gets the closing reset.
    h.send(
        Header {
            flags: SHUTDOWN_SEND,
            ..from_guest(Op::Shutdown, 1234, 6000)
        },
        &[],
    );
    assert_eq!(read_n(&mut host, 1, &mut h), b"");
    let (r, _) = h.expect_op(Op::Rst);
    assert_eq!((r.src_port, r.dst_port), (6000, 1234));
    assert_eq!(h.worker.muxer.connections(), 0);
}

#[test]
fn guest_connect_without_a_service_is_reset() {
    let mut h = Harness::new("refused");
    h.send(from_guest(Op::Request, 1234, 7000), &[]);
    let (r, _) = h.expect_op(Op::Rst);
    assert_eq!((r.src_cid, r.dst_cid), (HOST_CID, CID));
    assert_eq!((r.src_port, r.dst_port), (7000, 1234));
    h.expect_quiet();
}

#[test]
fn host_program_connects_with_connect_line() {
    let mut h = Harness::new("h2g");
    let mut host = UnixStream::connect(&h.path).unwrap();
    // Bytes right after the line are connection data, kept until the guest accepts.
    host.write_all(b"CONNECT 5000\nearly").unwrap();
    host.set_nonblocking(true).unwrap();
    let (req, _) = h.expect_op(Op::Request);
    assert_eq!(
        (req.src_cid, req.dst_cid, req.dst_port),
        (HOST_CID, CID, 5000)
    );
    let host_port = req.src_port;
    assert!(host_port >= 1 << 30);
    h.expect_quiet();

    h.send(from_guest(Op::Response, 5000, host_port), &[]);
    let ok = format!("OK {host_port}\n");
    assert_eq!(read_n(&mut host, ok.len(), &mut h), ok.as_bytes());
    let (_, early) = h.expect_op(Op::Rw);
    assert_eq!(early, b"early");
    h.send(rw(5000, host_port, 4), b"pong");
    assert_eq!(read_n(&mut host, 4, &mut h), b"pong");

    // The guest resets: the host stream closes.
    h.send(from_guest(Op::Rst, 5000, host_port), &[]);
    assert_eq!(read_n(&mut host, 1, &mut h), b"");
    h.expect_quiet();

    // A second program gets another host port.
    let mut host2 = UnixStream::connect(&h.path).unwrap();
    host2.write_all(b"CONNECT 5000\n").unwrap();
    let (req2, _) = h.expect_op(Op::Request);
    assert_ne!(req2.src_port, host_port);
}

#[test]
fn guest_refusal_closes_the_host_stream() {
    let mut h = Harness::new("h2g-refused");
    let mut host = UnixStream::connect(&h.path).unwrap();
    host.write_all(b"CONNECT 5001\n").unwrap();
    host.set_nonblocking(true).unwrap();
    let (req, _) = h.expect_op(Op::Request);
    h.send(from_guest(Op::Rst, 5001, req.src_port), &[]);
    assert_eq!(read_n(&mut host, 1, &mut h), b"");
}

#[test]
fn bad_connect_lines_close_the_stream() {
    let mut h = Harness::new("badline");
    for line in [&b"HELLO 5000\n"[..], b"CONNECT x\n", &[b'9'; 100]] {
        let mut host = UnixStream::connect(&h.path).unwrap();
        host.write_all(line).unwrap();
        host.set_nonblocking(true).unwrap();
        assert_eq!(read_n(&mut host, 1, &mut h), b"", "{line:?}");
    }
    h.expect_quiet();
}

/// An established host-initiated connection: (host stream, host port).
fn connected(h: &mut Harness, guest_port: u32, guest_buf_alloc: u32) -> (UnixStream, u32) {
    let mut host = UnixStream::connect(&h.path).unwrap();
    host.write_all(format!("CONNECT {guest_port}\n").as_bytes())
        .unwrap();
    host.set_nonblocking(true).unwrap();
    let (req, _) = h.expect_op(Op::Request);
    let mut resp = from_guest(Op::Response, guest_port, req.src_port);
    resp.buf_alloc = guest_buf_alloc;
    h.send(resp, &[]);
    let ok = format!("OK {}\n", req.src_port);
    assert_eq!(read_n(&mut host, ok.len(), h), ok.as_bytes());
    (host, req.src_port)
}

#[test]
fn never_sends_beyond_the_guests_credit() {
    let mut h = Harness::new("credit");
    let (mut host, port) = connected(&mut h, 5000, 1000);
    host.write_all(&[0xa5; 5000]).unwrap();
    let mut got = 0;
    while got < 1000 {
        let (p, data) = h.expect_op(Op::Rw);
        assert!(p.len as usize <= 1000 - got);
        got += data.len();
    }
    h.expect_op(Op::CreditRequest);
    h.expect_quiet();
    // The guest read 600 bytes: exactly 600 more come.
    let mut upd = from_guest(Op::CreditUpdate, 5000, port);
    (upd.buf_alloc, upd.fwd_cnt) = (1000, 600);
    h.send(upd, &[]);
    let mut more = 0;
    while more < 600 {
        more += h.expect_op(Op::Rw).1.len();
    }
    assert_eq!(more, 600);
    h.expect_op(Op::CreditRequest);
    h.expect_quiet();
}

#[test]
fn credit_request_gets_an_update() {
    let mut h = Harness::new("credreq");
    let (_host, port) = connected(&mut h, 5000, 1000);
    h.send(from_guest(Op::CreditRequest, 5000, port), &[]);
    let (u, _) = h.expect_op(Op::CreditUpdate);
    assert_eq!((u.buf_alloc, u.fwd_cnt, u.src_port), (BUF_ALLOC, 0, port));
}

#[test]
fn a_full_host_stream_stops_the_transmit_queue() {
    let mut h = Harness::new("backpressure");
    let (mut host, port) = connected(&mut h, 5000, 1 << 20);
    // A guest ignoring its credit: packets pile up until the device stops taking them.
    let chunk: Vec<u8> = (0..MAX_PAYLOAD).map(|i| (i % 251) as u8).collect();
    h.tx.take_used(&h.mem);
    let mut posted = 0usize;
    for _ in 0..40 {
        h.send(rw(5000, port, chunk.len()), &chunk);
        posted += 1;
    }
    h.poll();
    let taken = h.tx.take_used(&h.mem).len();
    assert!(taken < posted, "the device took all {posted} packets");
    assert!(h.worker.muxer.tx_blocked());
    // The host drains its stream: every byte arrives, in order, and the queue empties.
    let all = read_n(&mut host, posted * chunk.len(), &mut h);
    assert_eq!(all.len(), posted * chunk.len());
    assert!(all.chunks(chunk.len()).all(|c| c == chunk.as_slice()));
    h.poll();
    assert_eq!(taken + h.tx.take_used(&h.mem).len(), posted);
    // Credit updates told the guest about the space freed.
    assert!(h.inbox.iter().any(|(p, _)| p.op == Op::CreditUpdate as u16));
}

#[test]
fn malformed_packets_are_dropped_or_reset_and_nothing_breaks() {
    let mut h = Harness::new("malformed");
    // A chain shorter than a header: returned, nothing sent.
    let a = h.alloc(16);
    h.tx.post(&h.mem, &[(a, 10, false)]);
    h.worker.ready(TOKEN_TX, EventSet::IN);
    h.expect_quiet();
    // Another source cid: dropped silently.
    let mut spoofed = from_guest(Op::Request, 1, 6000);
    spoofed.src_cid = 99;
    h.send(spoofed, &[]);
    h.expect_quiet();
    // Answered with a reset: unknown op, not a stream, another destination, data for
    // no connection, a length beyond the buffer, a length beyond any packet.
    let mut bad_op = from_guest(Op::Rw, 2, 6000);
    bad_op.op = 99;
    let mut seqpacket = from_guest(Op::Request, 3, 6000);
    seqpacket.type_ = 2;
    let mut elsewhere = from_guest(Op::Request, 4, 6000);
    elsewhere.dst_cid = 7;
    let mut too_long = rw(6, 6000, 10);
    too_long.len = 1 << 20;
    for (hdr, payload) in [
        (bad_op, &b""[..]),
        (seqpacket, b""),
        (elsewhere, b""),
        (rw(5, 6000, 3), b"abc"),
        (rw(6, 6000, 100), b"short"),
        (too_long, b"0123456789"),
    ] {
        h.send(hdr, payload);
        let (r, _) = h.expect_op(Op::Rst);
        assert_eq!(r.dst_port, hdr.src_port, "{hdr:?}");
        assert_eq!(r.src_cid, hdr.dst_cid);
        h.expect_quiet();
    }
    // A reset is never answered with one.
    h.send(from_guest(Op::Rst, 8, 6000), &[]);
    h.expect_quiet();
    // A lying length on a live connection resets it; the device goes on serving.
    let (mut host, port) = connected(&mut h, 5000, 4096);
    h.send(rw(5000, port, 100), b"short");
    h.expect_op(Op::Rst);
    assert_eq!(read_n(&mut host, 1, &mut h), b"");
    let (_host2, _) = connected(&mut h, 5000, 4096);
}

#[test]
fn guest_close_resets_after_flushing() {
    let mut h = Harness::new("close");
    let service = UnixListener::bind(h.port_path(6001)).unwrap();
    h.send(from_guest(Op::Request, 77, 6001), &[]);
    h.expect_op(Op::Response);
    let mut host = accept(&service);
    h.send(rw(77, 6001, 4), b"data");
    h.send(
        Header {
            flags: SHUTDOWN_SEND | SHUTDOWN_RCV,
            ..from_guest(Op::Shutdown, 77, 6001)
        },
        &[],
    );
    h.expect_op(Op::Rst);
    assert_eq!(read_n(&mut host, 5, &mut h), b"data");
    // The host can no longer write either.
    assert!(host.write_all(b"x").is_err() || host.write_all(&[0; 1 << 20]).is_err());
}

#[test]
fn device_reset_drops_connections_and_keeps_listening() {
    let mut h = Harness::new("reset");
    let (mut host, _) = connected(&mut h, 5000, 4096);
    h.worker.muxer.reset();
    assert_eq!(read_n(&mut host, 1, &mut h), b"");
    let mut again = UnixStream::connect(&h.path).unwrap();
    again.write_all(b"CONNECT 5000\n").unwrap();
    h.expect_op(Op::Request);
}

#[test]
fn header_only_receive_buffers_carry_control_but_no_data() {
    let mut h = Harness::new("tinybuf");
    h.rx_buf_len = 0;
    let (mut host, port) = connected(&mut h, 5000, 4096);
    host.write_all(b"data that cannot fit").unwrap();
    // No busy loop, no data, and control packets still get through.
    h.expect_quiet();
    h.send(from_guest(Op::CreditRequest, 5000, port), &[]);
    let (u, payload) = h.expect_op(Op::CreditUpdate);
    assert_eq!((u.len, payload.len()), (0, 0));
    h.expect_quiet();
}
