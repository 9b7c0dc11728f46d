//! Standard descriptors the process was started without. The Rust runtime opens /dev/null
//! on any of 0, 1 and 2 that is closed at start-up; the guest must see them closed, as it
//! would natively (a child spawned with its stdin closed finds fstat(0) failing with EBADF;
//! CPython's test_posix checks that). [`record_closed`] runs before the runtime does (the
//! binary calls it from an `.init_array` constructor); [`close_placeholders`] closes them
//! again just before guest code starts, once Tandem has opened what it keeps for itself,
//! which the placeholders kept off those numbers.

use std::sync::atomic::{AtomicU8, Ordering};

/// Bit n: descriptor n was closed when the process started.
static CLOSED: AtomicU8 = AtomicU8::new(0);

/// Records which of descriptors 0, 1 and 2 are closed. Must run before the Rust runtime's
/// start-up code.
pub fn record_closed() {
    let mut closed = 0;
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the descriptor's flags.
        let r = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF) {
            closed |= 1 << fd;
        }
    }
    CLOSED.store(closed, Ordering::Relaxed);
}

/// Closes the runtime's placeholders on the descriptors [`record_closed`] found closed.
pub fn close_placeholders() {
    let closed = CLOSED.swap(0, Ordering::Relaxed);
    for fd in 0..3 {
        if closed & (1 << fd) != 0 {
            // SAFETY: the descriptor is the runtime's /dev/null placeholder, which nothing
            // in Tandem uses.
            unsafe { libc::close(fd) };
        }
    }
}
