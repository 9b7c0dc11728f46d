//! Thin wrappers over host system calls that have no memory-safety preconditions beyond
//! "pointer arguments are valid", keeping `unsafe` out of the syscall translation modules.

use crate::errno::{host_ret, SysResult};

/// Raw host syscall. Callers pass plain integers or pointers they validated: guest memory
/// relocated into the reservation and bounds-checked, or buffers they own that outlive the
/// call. The kernel checks page access itself and returns EFAULT.
pub fn syscall6(nr: i64, a: [u64; 6]) -> SysResult {
    // SAFETY: see the function contract above; the kernel never writes outside the ranges
    // the arguments describe, and those ranges belong to the guest or to the caller.
    host_ret(unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) })
}

pub fn gettid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::gettid() }
}

pub fn getpid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::getpid() }
}

pub fn getuid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::getuid() }
}

/// Ends the whole host process immediately (every guest thread), like exit_group.
pub fn exit_group(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; nothing needs flushing (the guest writes through
    // file descriptors directly).
    unsafe { libc::_exit(code) }
}
