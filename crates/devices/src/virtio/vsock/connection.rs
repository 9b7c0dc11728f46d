//! One stream connection between a guest socket and a host Unix stream: its state, the
//! credit each side extends to the other, the bounded buffer of host-bound bytes and the
//! two half-closes.
//!
//! Credit (virtio 1.x 5.10.6.3): each side tells the other, in every packet header, how
//! big its receive buffer is (`buf_alloc`) and how many bytes it has consumed from it
//! (`fwd_cnt`). A sender may have at most `buf_alloc - (sent - fwd_cnt)` bytes in flight.
//! The device keeps that rule towards the guest (it reads a host stream only as far as
//! the guest's credit goes) and holds the guest to it: bytes the host stream does not
//! take at once wait in a buffer of exactly the size advertised.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

use vmm_sys_util::epoll::EventSet;

use super::packet::{Header, Op, SHUTDOWN_RCV, SHUTDOWN_SEND};

/// The receive buffer the device advertises per connection: host-bound bytes it holds
/// while the host stream is slow. The bound on what a guest can make the device keep.
pub const BUF_ALLOC: u32 = 128 * 1024;
/// Tell the guest about freed buffer space once this much has been freed since it last
/// heard. A guest that runs out of credit waits for exactly such an update; a quarter of
/// the buffer keeps updates rare without letting it wait long.
const CREDIT_UPDATE_THRESHOLD: u32 = BUF_ALLOC / 4;

/// A connection's address: the host-side port and the guest-side port (the cids are
/// always the host's and this guest's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub host_port: u32,
    pub guest_port: u32,
}

impl Key {
    /// The connection a packet from the guest belongs to.
    pub fn of(hdr: &Header) -> Key {
        Key {
            host_port: hdr.dst_port,
            guest_port: hdr.src_port,
        }
    }
}

/// Why a connection has to be reset.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("host stream: {0}")]
    Host(#[source] io::Error),
    #[error("the guest sent {op:?} to a connection that is {state}")]
    Unexpected { op: Op, state: &'static str },
    #[error("the guest sent data after shutting down its sending side")]
    DataAfterShutdown,
    #[error("the guest sent {len} bytes with only {room} bytes of credit")]
    CreditExceeded { len: usize, room: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A host program asked for a guest port; the device sends (or sent) OP_REQUEST and
    /// waits for the guest's OP_RESPONSE.
    Connecting,
    Established,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Established => "established",
        }
    }
}

pub struct Connection {
    stream: UnixStream,
    /// The worker's token for the stream.
    pub token: u64,
    key: Key,
    guest_cid: u64,
    state: State,

    // Host to guest.
    /// The guest's receive buffer and how far it has consumed it.
    peer_buf_alloc: u32,
    peer_fwd_cnt: u32,
    /// Bytes sent to the guest (wrapping, like the counters in the headers).
    tx_cnt: u32,
    /// The host stream was readable when last polled (it may be at EOF).
    data_ready: bool,
    /// The host stream reached EOF and the guest got OP_SHUTDOWN(SEND) for it.
    eof_sent: bool,

    // Guest to host.
    /// The "OK <port>" line owed to the host program, written before any guest data.
    hello: Vec<u8>,
    /// Guest bytes the host stream has not taken yet; never more than BUF_ALLOC.
    buffer: VecDeque<u8>,
    /// Guest bytes written to the host stream (wrapping).
    fwd_cnt: u32,
    /// The `fwd_cnt` the guest last heard.
    fwd_cnt_sent: u32,
    peer_shut_send: bool,
    peer_shut_rcv: bool,
    host_write_shut: bool,

    // Control packets owed to the guest.
    send_request: bool,
    send_response: bool,
    send_credit_update: bool,
    send_credit_request: bool,
    /// In the muxer's queue of connections with something for the guest.
    pub queued: bool,
}

impl Connection {
    fn new(stream: UnixStream, token: u64, key: Key, guest_cid: u64, state: State) -> Self {
        Connection {
            stream,
            token,
            key,
            guest_cid,
            state,
            peer_buf_alloc: 0,
            peer_fwd_cnt: 0,
            tx_cnt: 0,
            data_ready: false,
            eof_sent: false,
            hello: Vec::new(),
            buffer: VecDeque::new(),
            fwd_cnt: 0,
            fwd_cnt_sent: 0,
            peer_shut_send: false,
            peer_shut_rcv: false,
            host_write_shut: false,
            send_request: false,
            send_response: false,
            send_credit_update: false,
            send_credit_request: false,
            queued: false,
        }
    }

    /// A host program's connection to guest port `key.guest_port`: OP_REQUEST is owed.
    pub fn host_initiated(stream: UnixStream, token: u64, key: Key, guest_cid: u64) -> Self {
        let mut c = Connection::new(stream, token, key, guest_cid, State::Connecting);
        c.send_request = true;
        c
    }

    /// The guest's OP_REQUEST `hdr`, which the device connected to a host socket:
    /// OP_RESPONSE is owed.
    pub fn guest_initiated(stream: UnixStream, token: u64, hdr: &Header, guest_cid: u64) -> Self {
        let mut c = Connection::new(stream, token, Key::of(hdr), guest_cid, State::Established);
        c.peer_credit_from(hdr);
        c.send_response = true;
        c
    }

    pub fn key(&self) -> Key {
        self.key
    }

    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    fn peer_credit_from(&mut self, hdr: &Header) {
        self.peer_buf_alloc = hdr.buf_alloc;
        self.peer_fwd_cnt = hdr.fwd_cnt;
    }

    /// Bytes the guest can take now. A guest that shrank its buffer below what is in
    /// flight has none (rather than an underflow into a huge credit).
    pub fn peer_credit(&self) -> u32 {
        let in_flight = self.tx_cnt.wrapping_sub(self.peer_fwd_cnt);
        self.peer_buf_alloc.saturating_sub(in_flight)
    }

    /// Room left in the host-bound buffer: the most a guest packet may carry now.
    pub fn room(&self) -> usize {
        BUF_ALLOC as usize - self.buffer.len()
    }

    /// Acts on a packet from the guest (already checked: right addresses, known op, the
    /// payload complete). OP_REQUEST and OP_RST are the muxer's: they create and drop
    /// connections.
    pub fn on_packet(&mut self, op: Op, hdr: &Header, payload: &[u8]) -> Result<(), ConnError> {
        self.peer_credit_from(hdr);
        let unexpected = |state: State| ConnError::Unexpected {
            op,
            state: state.name(),
        };
        match op {
            Op::Response if self.state == State::Connecting => {
                self.state = State::Established;
                self.hello = format!("OK {}\n", self.key.host_port).into_bytes();
                self.flush()?;
            }
            Op::Rw if self.state == State::Established => {
                if self.peer_shut_send {
                    return Err(ConnError::DataAfterShutdown);
                }
                self.push(payload)?;
            }
            Op::Shutdown if self.state == State::Established => {
                self.peer_shut_rcv |= hdr.flags & SHUTDOWN_RCV != 0;
                self.peer_shut_send |= hdr.flags & SHUTDOWN_SEND != 0;
                if self.peer_shut_rcv {
                    // The guest reads no more: the host program's writes fail from now
                    // on instead of filling a buffer nobody drains.
                    let _ = self.stream.shutdown(Shutdown::Read);
                }
                self.flush()?;
            }
            Op::CreditUpdate => {}
            Op::CreditRequest => self.send_credit_update = true,
            Op::Rst => {}
            Op::Response | Op::Rw | Op::Shutdown | Op::Request => {
                return Err(unexpected(self.state))
            }
        }
        Ok(())
    }

    /// Takes guest bytes for the host stream: straight into it while nothing waits,
    /// the rest into the buffer.
    fn push(&mut self, mut data: &[u8]) -> Result<(), ConnError> {
        if self.buffer.is_empty() && self.hello.is_empty() {
            let n = write_some(&self.stream, data).map_err(ConnError::Host)?;
            self.forwarded(n);
            data = &data[n..];
        }
        if data.len() > self.room() {
            return Err(ConnError::CreditExceeded {
                len: data.len(),
                room: self.room(),
            });
        }
        self.buffer.extend(data);
        Ok(())
    }

    fn forwarded(&mut self, n: usize) {
        self.fwd_cnt = self.fwd_cnt.wrapping_add(n as u32);
        if !self.peer_shut_send
            && self.fwd_cnt.wrapping_sub(self.fwd_cnt_sent) >= CREDIT_UPDATE_THRESHOLD
        {
            self.send_credit_update = true;
        }
    }

    /// Writes what waits for the host stream; returns the guest bytes it took. Once the
    /// guest has stopped sending and all its bytes are out, the host sees EOF.
    pub fn flush(&mut self) -> Result<usize, ConnError> {
        while !self.hello.is_empty() {
            let n = write_some(&self.stream, &self.hello).map_err(ConnError::Host)?;
            if n == 0 {
                return Ok(0);
            }
            self.hello.drain(..n);
        }
        let mut total = 0;
        while !self.buffer.is_empty() {
            let n = write_some(&self.stream, self.buffer.as_slices().0).map_err(ConnError::Host)?;
            if n == 0 {
                break;
            }
            self.buffer.drain(..n);
            self.forwarded(n);
            total += n;
        }
        if self.buffer.is_empty() && self.peer_shut_send && !self.host_write_shut {
            self.host_write_shut = true;
            // The host program may have closed already; its EOF is then moot.
            let _ = self.stream.shutdown(Shutdown::Write);
        }
        Ok(total)
    }

    fn unflushed(&self) -> bool {
        !self.hello.is_empty() || !self.buffer.is_empty()
    }

    /// Whether the device should read the host stream for the guest now.
    fn may_read(&self) -> bool {
        self.state == State::Established
            && !self.eof_sent
            && !self.peer_shut_rcv
            && self.peer_credit() > 0
    }

    /// The host stream became readable (or hung up).
    pub fn set_readable(&mut self) {
        self.data_ready = true;
    }

    /// What to wait for on the host stream. Nothing while the guest has no credit or the
    /// readable state is already known: level-triggered epoll would otherwise repeat it.
    pub fn interest(&self) -> EventSet {
        let mut e = EventSet::empty();
        if self.may_read() && !self.data_ready {
            e |= EventSet::IN;
        }
        if self.unflushed() {
            e |= EventSet::OUT;
        }
        e
    }

    /// Whether there is something for the guest's receive queue.
    pub fn has_rx(&self) -> bool {
        self.send_request
            || self.send_response
            || self.send_credit_update
            || self.send_credit_request
            || (self.data_ready && self.may_read())
    }

    /// Both directions are finished: the guest sends no more and all it sent reached
    /// the host, and either the host sent EOF or the guest reads no more. The device then
    /// resets the connection, which is how a vsock stream closes.
    pub fn is_done(&self) -> bool {
        self.state == State::Established
            && self.peer_shut_send
            && !self.unflushed()
            && (self.eof_sent || self.peer_shut_rcv)
    }

    /// The next packet for the guest, its payload (if any) read into `buf`, which is no
    /// longer than the guest's receive buffer. None: nothing to send now.
    pub fn next_rx(&mut self, buf: &mut [u8]) -> Result<Option<(Header, usize)>, ConnError> {
        let (op, flags, len) = if std::mem::take(&mut self.send_request) {
            (Op::Request, 0, 0)
        } else if std::mem::take(&mut self.send_response) {
            (Op::Response, 0, 0)
        } else if let Some(item) = self.read_host(buf)? {
            item
        } else if self.send_credit_update {
            (Op::CreditUpdate, 0, 0)
        } else if std::mem::take(&mut self.send_credit_request) && self.peer_credit() == 0 {
            // (A request made moot by an update meanwhile is dropped.)
            (Op::CreditRequest, 0, 0)
        } else {
            return Ok(None);
        };
        let mut hdr = Header::to_guest(self.guest_cid, self.key.host_port, self.key.guest_port, op);
        hdr.flags = flags;
        hdr.len = len as u32;
        hdr.buf_alloc = BUF_ALLOC;
        hdr.fwd_cnt = self.fwd_cnt;
        // Every header tells the guest the current count: no separate update is owed.
        self.fwd_cnt_sent = self.fwd_cnt;
        self.send_credit_update = false;
        Ok(Some((hdr, len)))
    }

    /// Reads the host stream, as far as the guest's credit allows: OP_RW with what came,
    /// or OP_SHUTDOWN(SEND) at EOF.
    fn read_host(&mut self, buf: &mut [u8]) -> Result<Option<(Op, u32, usize)>, ConnError> {
        if !self.data_ready || !self.may_read() {
            return Ok(None);
        }
        let max = buf.len().min(self.peer_credit() as usize);
        if max == 0 {
            return Ok(None);
        }
        match (&self.stream).read(&mut buf[..max]) {
            Ok(0) => {
                self.data_ready = false;
                self.eof_sent = true;
                Ok(Some((Op::Shutdown, SHUTDOWN_SEND, 0)))
            }
            Ok(n) => {
                self.tx_cnt = self.tx_cnt.wrapping_add(n as u32);
                if self.peer_credit() == 0 {
                    // Ask once; a guest normally sends an update by itself as it reads.
                    self.send_credit_request = true;
                }
                Ok(Some((Op::Rw, 0, n)))
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                self.data_ready = false;
                Ok(None)
            }
            Err(e) => Err(ConnError::Host(e)),
        }
    }
}

/// One non-blocking write: how much the stream took (0 when full).
fn write_some(mut stream: &UnixStream, data: &[u8]) -> io::Result<usize> {
    if data.is_empty() {
        return Ok(0);
    }
    match stream.write(data) {
        Ok(n) => Ok(n),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => Ok(0),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::super::packet::{HOST_CID, TYPE_STREAM};
    use super::*;

    const GUEST: u64 = 3;

    fn pair() -> (UnixStream, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    fn guest_hdr(op: Op, buf_alloc: u32, fwd_cnt: u32) -> Header {
        Header {
            src_cid: GUEST,
            dst_cid: HOST_CID,
            src_port: 1000,
            dst_port: 6000,
            type_: TYPE_STREAM,
            op: op as u16,
            buf_alloc,
            fwd_cnt,
            ..Header::default()
        }
    }

    /// An established guest-initiated connection (its OP_RESPONSE taken) and the host's
    /// end of the stream.
    fn established(buf_alloc: u32) -> (Connection, UnixStream) {
        let (dev, host) = pair();
        let mut c =
            Connection::guest_initiated(dev, 9, &guest_hdr(Op::Request, buf_alloc, 0), GUEST);
        let (h, n) = c.next_rx(&mut [0; 16]).unwrap().unwrap();
        assert_eq!((h.op, n), (Op::Response as u16, 0));
        assert_eq!((h.src_port, h.dst_port), (6000, 1000));
        assert_eq!((h.buf_alloc, h.fwd_cnt), (BUF_ALLOC, 0));
        (c, host)
    }

    #[test]
    fn credit_wraps_and_never_goes_negative() {
        let (mut c, _host) = established(1000);
        assert_eq!(c.peer_credit(), 1000);
        c.tx_cnt = 5u32.wrapping_sub(100); // 100 bytes sent across the wrap
        c.peer_fwd_cnt = 5u32.wrapping_sub(300);
        assert_eq!(c.peer_credit(), 800);
        // The guest shrank its buffer below what is in flight.
        c.peer_buf_alloc = 100;
        assert_eq!(c.peer_credit(), 0);
        assert!(!c.may_read());
    }

    #[test]
    fn reads_no_more_than_the_guests_credit() {
        let (mut c, mut host) = established(100);
        host.write_all(&[7u8; 1000]).unwrap();
        assert!(c.interest().contains(EventSet::IN));
        c.set_readable();
        assert!(
            !c.interest().contains(EventSet::IN),
            "no repeat of a known state"
        );
        let mut buf = [0u8; 4096];
        let (h, n) = c.next_rx(&mut buf).unwrap().unwrap();
        assert_eq!((h.op, h.len, n), (Op::Rw as u16, 100, 100));
        // Out of credit: one credit request, then silence.
        assert_eq!(c.peer_credit(), 0);
        let (h, _) = c.next_rx(&mut buf).unwrap().unwrap();
        assert_eq!(h.op, Op::CreditRequest as u16);
        assert!(c.next_rx(&mut buf).unwrap().is_none());
        assert!(!c.has_rx());
        assert!(c.interest().is_empty());
        // The guest consumed 60 bytes: 60 more may go.
        c.on_packet(Op::CreditUpdate, &guest_hdr(Op::CreditUpdate, 100, 60), &[])
            .unwrap();
        assert!(c.has_rx());
        let (h, n) = c.next_rx(&mut buf).unwrap().unwrap();
        assert_eq!((h.op, n), (Op::Rw as u16, 60));
        // The guest grew its buffer; the rest fits, limited by the receive buffer given.
        c.on_packet(
            Op::CreditUpdate,
            &guest_hdr(Op::CreditUpdate, 1 << 20, 160),
            &[],
        )
        .unwrap();
        let (_, n) = c.next_rx(&mut buf[..500]).unwrap().unwrap();
        assert_eq!(n, 500);
        let (_, n) = c.next_rx(&mut buf).unwrap().unwrap();
        assert_eq!(n, 340);
        // Drained: the stream is polled again.
        assert!(c.next_rx(&mut buf).unwrap().is_none());
        assert!(c.interest().contains(EventSet::IN));
    }

    #[test]
    fn host_eof_becomes_shutdown_send_after_the_data() {
        let (mut c, mut host) = established(1 << 20);
        host.write_all(b"last words").unwrap();
        host.shutdown(Shutdown::Write).unwrap();
        c.set_readable();
        let mut buf = [0u8; 64];
        let (h, n) = c.next_rx(&mut buf).unwrap().unwrap();
        assert_eq!((h.op, &buf[..n]), (Op::Rw as u16, &b"last words"[..]));
        let (h, _) = c.next_rx(&mut buf).unwrap().unwrap();
        assert_eq!((h.op, h.flags), (Op::Shutdown as u16, SHUTDOWN_SEND));
        assert!(!c.is_done(), "the guest may still send");
        assert!(c.interest().is_empty());
        // The guest finishes too: the host sees EOF and the connection is done.
        let mut s = guest_hdr(Op::Shutdown, 1 << 20, 0);
        s.flags = SHUTDOWN_SEND;
        c.on_packet(Op::Shutdown, &s, &[]).unwrap();
        assert!(c.is_done());
        assert_eq!(host.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn guest_data_waits_in_a_bounded_buffer() {
        let (mut c, mut host) = established(0);
        let rw = guest_hdr(Op::Rw, 0, 0);
        let chunk = vec![0x5a; 16 * 1024];
        // Fill the host's socket buffer, then the device's.
        let mut sent = 0usize;
        while c.buffer.is_empty() {
            c.on_packet(Op::Rw, &rw, &chunk).unwrap();
            sent += chunk.len();
        }
        while c.room() >= chunk.len() {
            c.on_packet(Op::Rw, &rw, &chunk).unwrap();
            sent += chunk.len();
        }
        assert!(c.interest().contains(EventSet::OUT));
        // A guest ignoring its credit is refused, not buffered.
        let big = vec![0; c.room() + 1];
        assert!(matches!(
            c.on_packet(Op::Rw, &rw, &big),
            Err(ConnError::CreditExceeded { .. })
        ));
        // The host reads everything; credit updates follow the freed space.
        let mut got = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            c.flush().unwrap();
            match host.read(&mut buf) {
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if c.buffer.is_empty() {
                        break;
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, sent);
        assert_eq!(c.fwd_cnt as usize, sent);
        assert!(c.has_rx());
        let (h, _) = c.next_rx(&mut []).unwrap().unwrap();
        assert_eq!((h.op, h.fwd_cnt), (Op::CreditUpdate as u16, sent as u32));
        assert!(!c.has_rx());
    }

    #[test]
    fn credit_request_is_answered() {
        let (mut c, _host) = established(0);
        c.on_packet(Op::CreditRequest, &guest_hdr(Op::CreditRequest, 0, 0), &[])
            .unwrap();
        let (h, _) = c.next_rx(&mut []).unwrap().unwrap();
        assert_eq!(h.op, Op::CreditUpdate as u16);
        assert_eq!(h.buf_alloc, BUF_ALLOC);
    }

    #[test]
    fn host_initiated_says_ok_after_the_response() {
        let (dev, mut host) = pair();
        let key = Key {
            host_port: 1 << 30,
            guest_port: 5000,
        };
        let mut c = Connection::host_initiated(dev, 1, key, GUEST);
        let (h, _) = c.next_rx(&mut []).unwrap().unwrap();
        assert_eq!(h.op, Op::Request as u16);
        assert_eq!((h.src_cid, h.dst_cid), (HOST_CID, GUEST));
        assert_eq!((h.src_port, h.dst_port), (1 << 30, 5000));
        // Data before the response is a protocol error.
        let mut rw = guest_hdr(Op::Rw, 4096, 0);
        rw.src_port = 5000;
        rw.dst_port = 1 << 30;
        assert!(c.on_packet(Op::Rw, &rw, b"x").is_err());
        c.on_packet(Op::Response, &rw, &[]).unwrap();
        c.on_packet(Op::Rw, &rw, b"hello").unwrap();
        let mut buf = [0u8; 64];
        let n = host.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], format!("OK {}\nhello", 1 << 30).as_bytes());
        // A second response is a protocol error.
        assert!(c.on_packet(Op::Response, &rw, &[]).is_err());
    }

    #[test]
    fn guest_shutdown_both_ways_closes_after_the_flush() {
        let (mut c, mut host) = established(4096);
        c.buffer.extend(b"pending");
        let mut s = guest_hdr(Op::Shutdown, 4096, 0);
        s.flags = SHUTDOWN_SEND | SHUTDOWN_RCV;
        c.on_packet(Op::Shutdown, &s, &[]).unwrap();
        assert!(c.is_done());
        let mut buf = [0u8; 16];
        assert_eq!(host.read(&mut buf).unwrap(), 7);
        assert_eq!(host.read(&mut buf).unwrap(), 0);
        // Data after its own shutdown is refused.
        assert!(matches!(
            c.on_packet(Op::Rw, &guest_hdr(Op::Rw, 0, 0), b"x"),
            Err(ConnError::DataAfterShutdown)
        ));
    }
}
