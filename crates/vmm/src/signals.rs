//! Host signals: SIGINT/SIGTERM stop the VM cleanly, and a real-time signal kicks vCPU
//! threads out of KVM_RUN.
//!
//! Handlers only do async-signal-safe work: store a number and write to an eventfd.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
static STOP_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_stop_signal(num: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    STOP_SIGNAL.store(num, Ordering::SeqCst);
    let fd = STOP_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let one: u64 = 1;
        // SAFETY: `fd` is an eventfd that outlives the handler registration, and the
        // buffer is a valid 8-byte value; write(2) is async-signal-safe.
        unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
    }
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Nothing to do: delivery alone makes KVM_RUN return with EINTR.
}

/// The signal used to kick vCPU threads.
pub fn kick_signal() -> libc::c_int {
    SIGRTMIN()
}

/// Routes SIGINT and SIGTERM to `fd` (an eventfd) and installs the vCPU kick handler.
pub fn install(fd: RawFd) -> std::io::Result<()> {
    STOP_FD.store(fd, Ordering::SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        register_signal_handler(sig, on_stop_signal).map_err(std::io::Error::from)?;
    }
    register_signal_handler(kick_signal(), on_kick).map_err(std::io::Error::from)
}

/// The stop signal received, if any.
pub fn received() -> Option<i32> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        n => Some(n),
    }
}
