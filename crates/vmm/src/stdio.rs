//! The host terminal as the guest's console: unbuffered stdout, raw-mode stdin, and
//! QEMU's escape (Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A).

use std::io::{self, Write};
use std::os::fd::AsRawFd;

/// Writes straight to fd 1: the guest's output must not wait in a line buffer.
pub struct RawStdout;

impl Write for RawStdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: fd 1 stays open for the life of the process; `buf` is a valid slice.
        let n = unsafe { libc::write(1, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Puts a terminal in raw mode and restores its settings when dropped. Every exit path
/// of `tandem run` drops it before the process ends (errors included).
pub struct RawTerminal {
    fd: i32,
    saved: libc::termios,
}

impl RawTerminal {
    /// Returns None when stdin is not a terminal (a pipe, a file, /dev/null).
    pub fn enable_on_stdin() -> io::Result<Option<Self>> {
        let fd = io::stdin().as_raw_fd();
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(fd) } != 1 {
            return Ok(None);
        }
        // SAFETY: termios is plain data; tcgetattr fills it for a valid tty fd.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd is a terminal and `saved` is a valid termios to fill.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw only edits the struct it is given.
        unsafe { libc::cfmakeraw(&mut raw) };
        // Keep output post-processing so host-side messages still start at column 0.
        raw.c_oflag |= libc::OPOST | libc::ONLCR;
        // SAFETY: fd is a terminal; `raw` is a valid termios.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Some(Self { fd, saved }))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: restores the settings read from the same terminal in enable_on_stdin.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

const CTRL_A: u8 = 0x01;

/// Console input filter implementing the Ctrl-A escape.
#[derive(Default)]
pub struct EscapeFilter {
    after_ctrl_a: bool,
}

/// What a chunk of terminal input means.
#[derive(Debug, PartialEq, Eq)]
pub enum ConsoleInput {
    Bytes(Vec<u8>),
    Quit,
}

impl EscapeFilter {
    pub fn feed(&mut self, input: &[u8]) -> ConsoleInput {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.after_ctrl_a {
                self.after_ctrl_a = false;
                match b {
                    b'x' | b'X' => return ConsoleInput::Quit,
                    CTRL_A => out.push(CTRL_A),
                    other => out.extend_from_slice(&[CTRL_A, other]),
                }
            } else if b == CTRL_A {
                self.after_ctrl_a = true;
            } else {
                out.push(b);
            }
        }
        ConsoleInput::Bytes(out)
    }
}

/// Reads what is available on stdin without blocking. Ok(None) means end of input.
pub fn read_stdin(buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: fd 0 is valid for the process lifetime; `buf` is a valid mutable slice.
    let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
    match n {
        0 => Ok(None),
        n if n > 0 => Ok(Some(n as usize)),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted {
                Ok(Some(0))
            } else {
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_a_x_quits_and_ctrl_a_ctrl_a_escapes() {
        let mut f = EscapeFilter::default();
        assert_eq!(f.feed(b"ab"), ConsoleInput::Bytes(b"ab".to_vec()));
        assert_eq!(f.feed(&[CTRL_A]), ConsoleInput::Bytes(vec![]));
        assert_eq!(
            f.feed(&[CTRL_A, b'c']),
            ConsoleInput::Bytes(vec![CTRL_A, b'c'])
        );
        assert_eq!(
            f.feed(&[CTRL_A, b'z']),
            ConsoleInput::Bytes(vec![CTRL_A, b'z'])
        );
        assert_eq!(f.feed(&[b'q', CTRL_A, b'x']), ConsoleInput::Quit);
    }
}
