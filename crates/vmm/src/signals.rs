//! Host signals: SIGINT/SIGTERM/SIGHUP stop the VM cleanly, and a real-time signal kicks
//! vCPU threads out of KVM_RUN.
//!
//! Signals belong to the process, so the state is process-wide: one eventfd that every
//! running machine polls. Handlers only do async-signal-safe work: store a number and
//! write to that eventfd.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
static STOP_FD: AtomicI32 = AtomicI32::new(-1);
static STOP_EVENT: OnceLock<EventFd> = OnceLock::new();

extern "C" fn on_stop_signal(num: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    STOP_SIGNAL.store(num, Ordering::SeqCst);
    let fd = STOP_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let one: u64 = 1;
        // SAFETY: `fd` is the process-wide eventfd, never closed once created, and the
        // buffer is a valid 8-byte value; write(2) is async-signal-safe.
        unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
    }
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Delivery makes a KVM_RUN in progress return with EINTR; setting the thread's
    // immediate_exit also catches a vCPU thread that is just about to enter one.
    kvm::kick::on_kick_signal();
}

/// The signal used to kick vCPU threads.
pub fn kick_signal() -> libc::c_int {
    SIGRTMIN()
}

/// Installs the handlers (once per process) and returns the eventfd that becomes
/// readable when a stop signal arrives.
pub fn install() -> std::io::Result<&'static EventFd> {
    if let Some(evt) = STOP_EVENT.get() {
        return Ok(evt);
    }
    let evt = EventFd::new(libc::EFD_NONBLOCK)?;
    let evt = STOP_EVENT.get_or_init(|| evt);
    STOP_FD.store(evt.as_raw_fd(), Ordering::SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        register_signal_handler(sig, on_stop_signal).map_err(std::io::Error::from)?;
    }
    register_signal_handler(kick_signal(), on_kick).map_err(std::io::Error::from)?;
    Ok(evt)
}

/// The stop signal received, if any.
pub fn received() -> Option<i32> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        n => Some(n),
    }
}
