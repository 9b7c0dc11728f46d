//! Where GDB connects (a Unix socket or a TCP port) and the connection itself: buffered
//! both ways, with reads that give up when an "abort" descriptor becomes readable (the VM
//! stopped while GDB was idle), and a wait on the connection plus other descriptors for
//! the stub's event loop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::str::FromStr;

use crate::GdbError;

/// Where the stub listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    /// `unix:PATH`: a Unix socket (GDB: `target remote PATH`).
    Unix(PathBuf),
    /// `tcp:HOST:PORT` (GDB: `target remote HOST:PORT`).
    Tcp(String),
}

impl FromStr for Addr {
    type Err = String;

    fn from_str(s: &str) -> Result<Addr, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                return Err("unix: needs a socket path".into());
            }
            return Ok(Addr::Unix(PathBuf::from(p)));
        }
        if let Some(hp) = s.strip_prefix("tcp:") {
            let ok = hp
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok {
                return Err(format!("tcp:{hp}: expected tcp:HOST:PORT"));
            }
            return Ok(Addr::Tcp(hp.to_string()));
        }
        Err(format!("{s}: expected unix:PATH or tcp:HOST:PORT"))
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
            Addr::Tcp(hp) => write!(f, "tcp:{hp}"),
        }
    }
}

enum ListenerKind {
    Unix(UnixListener),
    Tcp(TcpListener),
}

/// A bound socket waiting for GDB. A Unix socket's file is removed when it is dropped.
pub struct Listener {
    kind: ListenerKind,
    addr: Addr,
}

impl Listener {
    /// Binds `addr`. A stale Unix socket file there (a previous run's) is replaced; a
    /// socket something listens on, or any other file, is left alone and the bind fails.
    pub fn bind(addr: &Addr) -> Result<Listener, GdbError> {
        let bind_err = |source| GdbError::Bind {
            addr: addr.to_string(),
            source,
        };
        let kind = match addr {
            Addr::Unix(path) => {
                let socket =
                    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
                // A socket nobody listens on any more; a live one stays its owner's.
                if socket && UnixStream::connect(path).is_err() {
                    let _ = std::fs::remove_file(path);
                }
                ListenerKind::Unix(UnixListener::bind(path).map_err(bind_err)?)
            }
            Addr::Tcp(hp) => ListenerKind::Tcp(TcpListener::bind(hp.as_str()).map_err(bind_err)?),
        };
        Ok(Listener {
            kind,
            addr: addr.clone(),
        })
    }

    /// What GDB connects to, for messages (a TCP port 0 shows the port chosen).
    pub fn describe(&self) -> String {
        match &self.kind {
            ListenerKind::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("tcp:{a}"),
                Err(_) => self.addr.to_string(),
            },
            ListenerKind::Unix(_) => self.addr.to_string(),
        }
    }

    /// Waits for GDB; None if `abort` became readable first.
    pub fn accept(&self, abort: Option<RawFd>) -> Result<Option<Conn>, GdbError> {
        let fd = match &self.kind {
            ListenerKind::Unix(l) => l.as_raw_fd(),
            ListenerKind::Tcp(l) => l.as_raw_fd(),
        };
        let ready = poll(&[Some(fd), abort], -1).map_err(GdbError::Accept)?;
        if !ready[0] {
            return Ok(None);
        }
        let stream = match &self.kind {
            ListenerKind::Unix(l) => Stream::Unix(l.accept().map_err(GdbError::Accept)?.0),
            ListenerKind::Tcp(l) => {
                let (s, _) = l.accept().map_err(GdbError::Accept)?;
                // Packets are small and answered one by one.
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }
        };
        Ok(Some(Conn {
            stream,
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            abort,
        }))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Addr::Unix(p) = &self.addr {
            let _ = std::fs::remove_file(p);
        }
    }
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn fd(&self) -> RawFd {
        match self {
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
        }
    }
    fn io(&mut self) -> &mut dyn ReadWrite {
        match self {
            Stream::Unix(s) => s,
            Stream::Tcp(s) => s,
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// GDB's connection.
pub struct Conn {
    stream: Stream,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    abort: Option<RawFd>,
}

/// What [`Conn::wait`] saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Ready {
    /// GDB sent something (read it with `ConnectionExt::read`).
    Conn,
    /// The extra descriptor with this index became readable.
    Other(usize),
}

impl Conn {
    /// The socket, for a thread that only watches it for input (`poll`), never reads.
    pub fn raw_fd(&self) -> RawFd {
        self.stream.fd()
    }

    /// Waits until GDB sends something or one of `others` becomes readable (the extra
    /// descriptors take precedence: a stop is reported before more input is read).
    pub fn wait(&mut self, others: &[RawFd]) -> std::io::Result<Ready> {
        if self.rpos < self.rbuf.len() {
            return Ok(Ready::Conn);
        }
        let mut fds: Vec<Option<RawFd>> = others.iter().map(|&f| Some(f)).collect();
        fds.push(Some(self.stream.fd()));
        let ready = poll(&fds, -1)?;
        if let Some(i) = ready[..others.len()].iter().position(|&r| r) {
            return Ok(Ready::Other(i));
        }
        Ok(Ready::Conn)
    }

    /// Reads what is there (at least one byte); Err on end of stream or abort.
    fn fill(&mut self, block: bool) -> std::io::Result<bool> {
        if self.rpos < self.rbuf.len() {
            return Ok(true);
        }
        let ready = poll(
            &[Some(self.stream.fd()), self.abort],
            if block { -1 } else { 0 },
        )?;
        if ready[1] {
            return Err(std::io::Error::other("the machine stopped"));
        }
        if !ready[0] {
            return Ok(false);
        }
        self.rbuf.resize(4096, 0);
        let n = loop {
            match self.stream.io().read(&mut self.rbuf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.rbuf.truncate(n);
        self.rpos = 0;
        Ok(true)
    }
}

impl gdbstub::conn::Connection for Conn {
    type Error = std::io::Error;

    fn write(&mut self, byte: u8) -> std::io::Result<()> {
        self.wbuf.push(byte);
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.wbuf.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.stream.io().write_all(&self.wbuf);
        self.wbuf.clear();
        r
    }
}

impl gdbstub::conn::ConnectionExt for Conn {
    fn read(&mut self) -> std::io::Result<u8> {
        self.fill(true)?;
        let b = self.rbuf[self.rpos];
        self.rpos += 1;
        Ok(b)
    }

    fn peek(&mut self) -> std::io::Result<Option<u8>> {
        Ok(self.fill(false)?.then(|| self.rbuf[self.rpos]))
    }
}

/// poll(2) for readability (or hang-up/error, which a read then reports) on each present
/// descriptor; `timeout_ms` -1 waits for ever.
fn poll(fds: &[Option<RawFd>], timeout_ms: i32) -> std::io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd {
            fd: f.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `pfds` is a valid array of `pfds.len()` pollfd structures; negative fds
        // are ignored by poll.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if r >= 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(pfds.iter().map(|p| p.revents != 0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gdbstub::conn::{Connection, ConnectionExt};

    #[test]
    fn parses_addresses() {
        assert_eq!(
            "unix:/tmp/s".parse::<Addr>(),
            Ok(Addr::Unix("/tmp/s".into()))
        );
        assert_eq!(
            "tcp:localhost:1234".parse::<Addr>(),
            Ok(Addr::Tcp("localhost:1234".into()))
        );
        assert!("tcp:1234".parse::<Addr>().is_err());
        assert!("tcp:host:x".parse::<Addr>().is_err());
        assert!("unix:".parse::<Addr>().is_err());
        assert!("/tmp/s".parse::<Addr>().is_err());
    }

    #[test]
    fn talks_over_a_unix_socket_and_aborts() {
        let dir = std::env::temp_dir().join(format!("tandem-gdb-conn-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("sock");
        let l = Listener::bind(&Addr::Unix(path.clone())).unwrap();
        let mut client = UnixStream::connect(&path).unwrap();
        let (mut abort_r, mut abort_w) = UnixStream::pair().unwrap();
        let mut c = l.accept(Some(abort_r.as_raw_fd())).unwrap().unwrap();
        std::io::Write::write_all(&mut client, b"$?#3f").unwrap();
        assert_eq!(c.wait(&[]).unwrap(), Ready::Conn);
        assert_eq!(c.read().unwrap(), b'$');
        assert_eq!(c.peek().unwrap(), Some(b'?'));
        Connection::write_all(&mut c, b"+").unwrap();
        Connection::flush(&mut c).unwrap();
        let mut b = [0u8; 1];
        client.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"+");
        for _ in 0..4 {
            c.read().unwrap();
        }
        std::io::Write::write_all(&mut abort_w, b"x").unwrap();
        assert!(
            c.read().is_err(),
            "a read gives up once the abort fd is readable"
        );
        let mut x = [0u8; 1];
        abort_r.read_exact(&mut x).unwrap();
        drop(l);
        assert!(!path.exists());
    }
}
