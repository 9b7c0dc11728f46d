//! Host signal dispositions through the raw `rt_sigaction` system call.
//!
//! The host C library reserves signals 32 and 33 for itself (glibc's SIGCANCEL and SIGSETXID)
//! and its `sigaction` refuses them with EINVAL. The guest's C library uses the same two
//! numbers the same way (thread cancellation, and broadcasting setuid/setgid/setgroups to
//! every thread), and Tandem's threads are the guest's threads, so their host dispositions
//! must mirror the guest's like any other signal's: this module talks to the kernel directly.
//!
//! Also remembers the SIGPIPE disposition the process was started with, before the Rust
//! runtime set it to "ignore", so that the guest starts with the dispositions Tandem inherited.

use std::sync::atomic::{AtomicU8, Ordering};

/// The kernel's `struct sigaction` on x86-64 (and the generic layout minus the restorer).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    #[cfg(target_arch = "x86_64")]
    restorer: usize,
    mask: u64,
}

pub type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// A host disposition.
#[derive(Clone, Copy, Debug)]
pub enum Disposition {
    Default,
    Ignore,
    /// A handler taking siginfo, run with every signal blocked and on the alternate stack.
    Handler(Handler),
}

#[cfg(target_arch = "x86_64")]
const SA_RESTORER: u64 = 0x0400_0000;

// x86-64 handlers return through a restorer the kernel jumps to; it must call rt_sigreturn
// with the stack as the handler left it. glibc's is private, so Tandem has its own.
#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".pushsection .text.tandem_sigreturn,\"ax\",@progbits",
    ".globl tandem_host_sigreturn",
    ".hidden tandem_host_sigreturn",
    "tandem_host_sigreturn:",
    "mov eax, 15", // __NR_rt_sigreturn
    "syscall",
    "ud2",
    ".popsection",
);

#[cfg(target_arch = "x86_64")]
extern "C" {
    fn tandem_host_sigreturn();
}

fn to_kernel(d: Disposition) -> KernelSigaction {
    let (handler, flags) = match d {
        Disposition::Default => (libc::SIG_DFL, 0),
        Disposition::Ignore => (libc::SIG_IGN, 0),
        // No SA_RESTART: blocking host syscalls must return so the guest handler can run;
        // the syscall layer restarts them itself when the guest asked for SA_RESTART.
        Disposition::Handler(h) => (
            h as *const () as usize,
            (libc::SA_SIGINFO | libc::SA_ONSTACK) as u64,
        ),
    };
    let mask = if matches!(d, Disposition::Handler(_)) {
        !0
    } else {
        0
    };
    #[cfg(target_arch = "x86_64")]
    {
        KernelSigaction {
            handler,
            flags: flags | SA_RESTORER,
            restorer: tandem_host_sigreturn as *const () as usize,
            mask,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        KernelSigaction {
            handler,
            flags,
            mask,
        }
    }
}

/// Sets the host disposition of `sig`; returns the errno on failure.
pub fn set(sig: i32, d: Disposition) -> Result<(), i32> {
    let new = to_kernel(d);
    // SAFETY: a valid kernel sigaction on our stack, size 8 sigset; the handler (if any) is an
    // `extern "C"` function with the SA_SIGINFO signature and the restorer returns properly.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &new as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// The raw handler value of `sig`'s host disposition (SIG_DFL = 0, SIG_IGN = 1), if it can
/// be read.
fn current(sig: i32) -> Option<usize> {
    let mut old = KernelSigaction::default();
    // SAFETY: reading into a local kernel sigaction.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            std::ptr::null::<KernelSigaction>(),
            &mut old as *mut KernelSigaction,
            8,
        )
    };
    (r == 0).then_some(old.handler)
}

/// True if the host currently ignores `sig` (dispositions to ignore survive execve).
pub fn ignored(sig: i32) -> bool {
    current(sig) == Some(libc::SIG_IGN)
}

const PIPE_UNKNOWN: u8 = 0;
const PIPE_DEFAULT: u8 = 1;
const PIPE_IGNORED: u8 = 2;
static START_SIGPIPE: AtomicU8 = AtomicU8::new(PIPE_UNKNOWN);

/// Records SIGPIPE's disposition as the process was started. Must run before the Rust
/// runtime's start-up code sets SIGPIPE to "ignore": the binary calls it from an
/// `.init_array` constructor, which the C library runs before `main`.
pub fn record_start_dispositions() {
    let v = if ignored(libc::SIGPIPE) {
        PIPE_IGNORED
    } else {
        PIPE_DEFAULT
    };
    START_SIGPIPE.store(v, Ordering::Relaxed);
}

/// Puts back the start-up SIGPIPE disposition (when it was recorded), so the guest and the
/// host programs it executes inherit what Tandem inherited, not the Rust runtime's choice.
pub fn restore_start_dispositions() {
    let d = match START_SIGPIPE.load(Ordering::Relaxed) {
        PIPE_DEFAULT => Disposition::Default,
        PIPE_IGNORED => Disposition::Ignore,
        _ => return,
    };
    if let Err(e) = set(libc::SIGPIPE, d) {
        log::debug!("cannot restore the SIGPIPE disposition: errno {e}");
    }
}
