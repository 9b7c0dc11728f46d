//! The host side of the device: the Unix socket host programs connect to, the host
//! streams of all connections, and the order in which packets go to the guest.
//!
//! Addressing follows Firecracker's convention, which existing host tools speak:
//!
//! - A host program connects to the device's socket PATH and writes `CONNECT <port>\n`.
//!   The device picks a free host-side port, sends the guest OP_REQUEST to `<port>`, and
//!   on the guest's OP_RESPONSE writes `OK <host port>\n` to the program; from then on
//!   the stream carries the connection's bytes. A refusal (OP_RST) closes the stream.
//! - A guest connecting to the host (cid 2) port P is connected to the Unix socket
//!   `PATH_P`; if nothing listens there the guest gets OP_RST.
//!
//! Everything here runs on the device's worker thread and never blocks: the listener,
//! each host stream and each half-read `CONNECT` line are event sources of the worker.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use vmm_sys_util::epoll::EventSet;

use super::connection::{Connection, Key};
use super::packet::{Header, Op, PacketError};

/// Connections (and host programs that have not finished their `CONNECT` line) at most;
/// past it the device stops accepting host programs and refuses the guest's requests.
/// With BUF_ALLOC per connection this bounds what the guest can make the device hold.
pub const MAX_CONNECTIONS: usize = 256;
/// Resets owed to the guest for packets that matched no connection, at most. Past it
/// the device stops taking transmit packets until the guest posts receive buffers.
pub const MAX_PENDING_RESETS: usize = 256;
/// Longest `CONNECT <port>\n` line accepted.
const MAX_LINE: usize = 32;
/// Host-side ports for host-initiated connections start here (as Firecracker's do), far
/// from the ports host services listen on.
const FIRST_HOST_PORT: u32 = 1 << 30;
/// Worker tokens at and above this are host streams; below are the worker's own.
pub const FIRST_STREAM_TOKEN: u64 = 16;
pub const LISTENER_TOKEN: u64 = FIRST_STREAM_TOKEN - 1;

#[derive(Debug, thiserror::Error)]
pub enum MuxerError {
    #[error("cannot listen on {}: {source}", path.display())]
    Listen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is in use by another program", .0.display())]
    InUse(PathBuf),
}

/// A host program that connected and has not yet said which guest port it wants.
struct Hello {
    stream: UnixStream,
    line: Vec<u8>,
}

pub struct Muxer {
    guest_cid: u64,
    path: PathBuf,
    listener: UnixListener,
    conns: HashMap<Key, Connection>,
    /// Which connection a worker token belongs to.
    by_token: HashMap<u64, Key>,
    hellos: HashMap<u64, Hello>,
    /// Tokens are never reused, so a stale event cannot reach a newer stream that got
    /// the same file descriptor.
    next_token: u64,
    next_host_port: u32,
    /// Resets owed to the guest, sent before anything else.
    resets: VecDeque<Header>,
    /// Connections with something for the guest, served round-robin.
    queue: VecDeque<Key>,
    /// A connection whose buffer cannot take the guest's next packet: the device reads
    /// no transmit packets until it drains.
    tx_blocked_on: Option<Key>,
}

impl Muxer {
    /// Listens on `path`. A socket file left by a process that is gone is replaced; one a
    /// live program listens on is not.
    pub fn new(guest_cid: u64, path: &Path) -> Result<Muxer, MuxerError> {
        let listener = match UnixListener::bind(path) {
            Err(e) if e.kind() == ErrorKind::AddrInUse => {
                if UnixStream::connect(path).is_ok() {
                    return Err(MuxerError::InUse(path.to_owned()));
                }
                let _ = std::fs::remove_file(path);
                UnixListener::bind(path)
            }
            r => r,
        };
        let listen_err = |source| MuxerError::Listen {
            path: path.to_owned(),
            source,
        };
        let listener = listener.map_err(listen_err)?;
        listener.set_nonblocking(true).map_err(listen_err)?;
        Ok(Muxer {
            guest_cid,
            path: path.to_owned(),
            listener,
            conns: HashMap::new(),
            by_token: HashMap::new(),
            hellos: HashMap::new(),
            next_token: FIRST_STREAM_TOKEN,
            next_host_port: FIRST_HOST_PORT,
            resets: VecDeque::new(),
            queue: VecDeque::new(),
            tx_blocked_on: None,
        })
    }

    /// Drops every connection (the driver reset the device); host programs see their
    /// streams close. The listener stays.
    pub fn reset(&mut self) {
        self.conns.clear();
        self.by_token.clear();
        self.hellos.clear();
        self.resets.clear();
        self.queue.clear();
        self.tx_blocked_on = None;
    }

    /// The host sockets to wait on, as the worker wants them.
    pub fn sources(&self, out: &mut Vec<(RawFd, u64, EventSet)>) {
        if self.conns.len() + self.hellos.len() < MAX_CONNECTIONS {
            out.push((self.listener.as_raw_fd(), LISTENER_TOKEN, EventSet::IN));
        }
        for (&token, h) in &self.hellos {
            out.push((h.stream.as_raw_fd(), token, EventSet::IN));
        }
        for c in self.conns.values() {
            let e = c.interest();
            if !e.is_empty() {
                out.push((c.fd(), c.token, e));
            }
        }
    }

    /// A host socket is ready. Spurious calls are harmless: everything is tried
    /// non-blocking.
    pub fn ready(&mut self, token: u64, events: EventSet) {
        if token == LISTENER_TOKEN {
            self.accept();
        } else if self.hellos.contains_key(&token) {
            self.read_hello(token);
        } else if let Some(&key) = self.by_token.get(&token) {
            let hangup = EventSet::HANG_UP | EventSet::ERROR | EventSet::READ_HANG_UP;
            if events.intersects(EventSet::IN | hangup) {
                if let Some(c) = self.conns.get_mut(&key) {
                    c.set_readable();
                }
            }
            if events.intersects(EventSet::OUT | hangup) {
                self.flush(key);
            }
            self.settle(key);
        }
    }

    /// Live connections (host programs still on their `CONNECT` line excluded).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Whether the worker must stop reading the transmit queue for now.
    pub fn tx_blocked(&self) -> bool {
        self.tx_blocked_on.is_some() || self.resets.len() >= MAX_PENDING_RESETS
    }

    /// Whether the connection of OP_RW `hdr` can take its payload now. If not, the
    /// worker leaves the packet on the queue until that connection's host stream drains.
    pub fn has_room(&mut self, hdr: &Header) -> bool {
        let key = Key::of(hdr);
        match self.conns.get(&key) {
            Some(c) if (hdr.len as usize) > c.room() => {
                self.tx_blocked_on = Some(key);
                false
            }
            _ => true,
        }
    }

    /// Acts on a packet from the guest: `checked` is what [`super::packet::check`] made
    /// of its header, `payload` the OP_RW bytes.
    pub fn on_guest_packet(
        &mut self,
        hdr: &Header,
        checked: Result<Op, PacketError>,
        payload: &[u8],
    ) {
        let key = Key::of(hdr);
        let op = match checked {
            Ok(op) => op,
            Err(e) => {
                log::debug!("virtio-vsock: dropped a packet from the guest: {e}");
                if e.answer_with_reset() && hdr.op != Op::Rst as u16 {
                    if !matches!(e, PacketError::NotForHost(_)) && self.conns.contains_key(&key) {
                        self.kill(key);
                    } else {
                        self.resets.push_back(hdr.reset_reply());
                    }
                }
                return;
            }
        };
        match op {
            Op::Rst => self.remove(key),
            Op::Request => self.guest_connect(hdr),
            _ => {
                let Some(c) = self.conns.get_mut(&key) else {
                    self.resets.push_back(hdr.reset_reply());
                    return;
                };
                if let Err(e) = c.on_packet(op, hdr, payload) {
                    log::debug!("virtio-vsock: connection {key:?}: {e}");
                    self.kill(key);
                    return;
                }
                self.settle(key);
            }
        }
    }

    /// Whether something waits for the guest's receive queue.
    pub fn has_rx(&self) -> bool {
        !self.resets.is_empty() || !self.queue.is_empty()
    }

    /// The next packet for the guest, its payload read into `buf` (as long as the
    /// receive buffer it goes to). None: nothing to send now.
    pub fn next_rx(&mut self, buf: &mut [u8]) -> Option<(Header, usize)> {
        if let Some(h) = self.resets.pop_front() {
            return Some((h, 0));
        }
        // Connections with nothing that fits this buffer (data, but a buffer with room
        // for a header only) go back in the queue afterwards, not round again now.
        let mut idle = Vec::new();
        let mut out = None;
        while let Some(key) = self.queue.pop_front() {
            let Some(c) = self.conns.get_mut(&key) else {
                continue;
            };
            c.queued = false;
            match c.next_rx(buf) {
                Ok(Some(pkt)) => {
                    self.settle(key);
                    out = Some(pkt);
                    break;
                }
                Ok(None) => idle.push(key),
                Err(e) => {
                    log::debug!("virtio-vsock: connection {key:?}: {e}");
                    self.kill(key);
                    out = self.resets.pop_front().map(|h| (h, 0));
                    break;
                }
            }
        }
        for key in idle {
            self.settle(key);
        }
        out
    }

    /// After anything happened to a connection: close it if both sides are done, queue
    /// it if it has something for the guest.
    fn settle(&mut self, key: Key) {
        let Some(c) = self.conns.get_mut(&key) else {
            return;
        };
        if c.is_done() {
            self.kill(key);
        } else if c.has_rx() && !c.queued {
            c.queued = true;
            self.queue.push_back(key);
        }
    }

    fn flush(&mut self, key: Key) {
        let Some(c) = self.conns.get_mut(&key) else {
            return;
        };
        match c.flush() {
            Ok(n) => {
                if n > 0 && self.tx_blocked_on == Some(key) {
                    // Room again: the worker retries the packet it left on the queue.
                    self.tx_blocked_on = None;
                }
            }
            Err(e) => {
                log::debug!("virtio-vsock: connection {key:?}: {e}");
                self.kill(key);
            }
        }
    }

    /// Drops a connection without telling the guest (it reset it, or is gone).
    fn remove(&mut self, key: Key) {
        if let Some(c) = self.conns.remove(&key) {
            self.by_token.remove(&c.token);
        }
        if self.tx_blocked_on == Some(key) {
            self.tx_blocked_on = None;
        }
    }

    /// Drops a connection and resets the guest's end: the host stream closes.
    fn kill(&mut self, key: Key) {
        self.remove(key);
        let h = Header::to_guest(self.guest_cid, key.host_port, key.guest_port, Op::Rst);
        self.resets.push_back(h);
    }

    fn new_token(&mut self) -> u64 {
        let t = self.next_token;
        self.next_token += 1;
        t
    }

    /// The guest's OP_REQUEST to host port P: connect to `PATH_P`.
    fn guest_connect(&mut self, hdr: &Header) {
        let key = Key::of(hdr);
        if self.conns.contains_key(&key) {
            // A second request on a live connection: the guest lost track; start over.
            log::debug!("virtio-vsock: request for existing connection {key:?}");
            self.kill(key);
            return;
        }
        if self.conns.len() + self.hellos.len() >= MAX_CONNECTIONS {
            log::debug!("virtio-vsock: too many connections; refused {key:?}");
            self.resets.push_back(hdr.reset_reply());
            return;
        }
        let path = self.port_path(hdr.dst_port);
        match connect_nonblocking(&path) {
            Ok(stream) => {
                let token = self.new_token();
                let c = Connection::guest_initiated(stream, token, hdr, self.guest_cid);
                self.by_token.insert(token, key);
                self.conns.insert(key, c);
                self.settle(key);
            }
            Err(e) => {
                log::debug!("virtio-vsock: guest connect to {}: {e}", path.display());
                self.resets.push_back(hdr.reset_reply());
            }
        }
    }

    /// `PATH_P`: where the host service for port P listens.
    fn port_path(&self, port: u32) -> PathBuf {
        let mut s = OsString::from(self.path.as_os_str());
        s.push(format!("_{port}"));
        PathBuf::from(s)
    }

    fn accept(&mut self) {
        while self.conns.len() + self.hellos.len() < MAX_CONNECTIONS {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Err(e) = stream.set_nonblocking(true) {
                        log::warn!("virtio-vsock: host connection: {e}");
                        continue;
                    }
                    let token = self.new_token();
                    self.hellos.insert(
                        token,
                        Hello {
                            stream,
                            line: Vec::new(),
                        },
                    );
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("virtio-vsock: accept on {}: {e}", self.path.display());
                    break;
                }
            }
        }
    }

    /// Reads a host program's `CONNECT <port>\n`, a byte at a time: whatever follows the
    /// line is connection data and stays in the stream until the guest accepts.
    fn read_hello(&mut self, token: u64) {
        let Some(h) = self.hellos.get_mut(&token) else {
            return;
        };
        let port = loop {
            let mut b = [0u8];
            match (&h.stream).read(&mut b) {
                Ok(0) => break None,
                Ok(_) if b[0] == b'\n' => break parse_connect(&h.line),
                Ok(_) if h.line.len() < MAX_LINE => h.line.push(b[0]),
                Ok(_) => break None,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                    return
                }
                Err(_) => break None,
            }
        };
        let Some(h) = self.hellos.remove(&token) else {
            return;
        };
        let Some(guest_port) = port else {
            log::debug!(
                "virtio-vsock: host program sent {:?}, not CONNECT <port>; closed",
                String::from_utf8_lossy(&h.line)
            );
            return;
        };
        let key = Key {
            host_port: self.free_host_port(guest_port),
            guest_port,
        };
        // The stream keeps its token: the worker's registration stays valid.
        let c = Connection::host_initiated(h.stream, token, key, self.guest_cid);
        self.by_token.insert(token, key);
        self.conns.insert(key, c);
        self.settle(key);
    }

    fn free_host_port(&mut self, guest_port: u32) -> u32 {
        loop {
            let p = self.next_host_port;
            self.next_host_port = p.checked_add(1).unwrap_or(FIRST_HOST_PORT);
            let key = Key {
                host_port: p,
                guest_port,
            };
            if !self.conns.contains_key(&key) {
                return p;
            }
        }
    }
}

impl Drop for Muxer {
    fn drop(&mut self) {
        // The socket file is the device's; leave no stale one behind.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `CONNECT <port>` (a trailing `\r` tolerated).
fn parse_connect(line: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let port = s.strip_prefix("CONNECT ")?;
    port.trim().parse().ok()
}

/// Connects to a Unix socket without blocking: a listener whose backlog is full fails
/// at once (EAGAIN) instead of stalling the worker. Connecting a Unix stream socket
/// never returns EINPROGRESS, so success means connected.
fn connect_nonblocking(path: &Path) -> std::io::Result<UnixStream> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain old data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    // One byte stays zero: the path's terminator.
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(std::io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    // SAFETY: plain socket(2); the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and nothing else owns it; the stream closes it.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `addr` is a valid sockaddr_un that outlives the call, `len` its size.
    let r = unsafe { libc::connect(fd, (&raw const addr).cast(), len) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_connect_lines() {
        assert_eq!(parse_connect(b"CONNECT 5000"), Some(5000));
        assert_eq!(parse_connect(b"CONNECT 52\r"), Some(52));
        assert_eq!(parse_connect(b"CONNECT 4294967295"), Some(u32::MAX));
        assert_eq!(parse_connect(b"CONNECT 4294967296"), None);
        assert_eq!(parse_connect(b"CONNECT -1"), None);
        assert_eq!(parse_connect(b"connect 5000"), None);
        assert_eq!(parse_connect(b"CONNECT"), None);
        assert_eq!(parse_connect(&[0xff, 0xfe]), None);
    }

    #[test]
    fn port_paths_append_the_port() {
        let d = std::env::temp_dir().join(format!("tandem-vsock-pp-{}", std::process::id()));
        let m = Muxer::new(3, &d).unwrap();
        assert_eq!(
            m.port_path(5000),
            PathBuf::from(format!("{}_5000", d.display()))
        );
        drop(m);
        assert!(!d.exists(), "the socket file is removed");
    }

    #[test]
    fn refuses_a_path_in_use_and_replaces_a_stale_one() {
        let d = std::env::temp_dir().join(format!("tandem-vsock-use-{}", std::process::id()));
        let _ = std::fs::remove_file(&d);
        let live = UnixListener::bind(&d).unwrap();
        assert!(matches!(Muxer::new(3, &d), Err(MuxerError::InUse(_))));
        drop(live); // the file stays, nobody listens: stale
        assert!(d.exists());
        let m = Muxer::new(3, &d).unwrap();
        drop(m);
    }

    #[test]
    fn nonblocking_connect_fails_fast() {
        let e = connect_nonblocking(Path::new("/nonexistent/tandem-vsock")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let long = PathBuf::from("/".repeat(200));
        assert!(connect_nonblocking(&long).is_err());
    }
}
