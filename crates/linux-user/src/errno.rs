//! Guest errno values. RISC-V Linux uses the asm-generic numbering, which is also x86-64's, so
//! host errno values pass through unchanged.

/// A positive errno value; syscalls return its negation in a0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

pub const EPERM: Errno = Errno(libc::EPERM);
pub const ENOENT: Errno = Errno(libc::ENOENT);
pub const EINTR: Errno = Errno(libc::EINTR);
pub const EBADF: Errno = Errno(libc::EBADF);
pub const EAGAIN: Errno = Errno(libc::EAGAIN);
pub const ENOMEM: Errno = Errno(libc::ENOMEM);
pub const EFAULT: Errno = Errno(libc::EFAULT);
pub const EINVAL: Errno = Errno(libc::EINVAL);
pub const ENOSYS: Errno = Errno(libc::ENOSYS);
pub const ERANGE: Errno = Errno(libc::ERANGE);

impl Errno {
    /// The calling host thread's errno.
    pub fn last() -> Errno {
        Errno(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    }
}

/// Result of a syscall handler: the value for a0, or an errno.
pub type SysResult = Result<u64, Errno>;

/// Turns a host libc return value (-1 + errno on failure) into a `SysResult`.
pub fn host_ret(r: i64) -> SysResult {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r as u64)
    }
}
