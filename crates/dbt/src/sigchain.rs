//! Installing the translator's own handlers for host signals, and handing the signals that
//! are not theirs to whatever was installed before (see `hostmem` and `fptrap`).

/// The handler signature of `SA_SIGINFO` handlers.
pub(crate) type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// An empty `sigaction` (SIG_DFL, no flags), for statics that receive the previous action.
pub(crate) const fn empty_action() -> libc::sigaction {
    // SAFETY: sigaction is plain data; all-zero is a valid (SIG_DFL, no flags) value.
    unsafe { std::mem::zeroed() }
}

/// Installs `handler` for `sig` (SA_SIGINFO, on the alternate stack if there is one,
/// re-entrant), saving the previous action in `prev`.
///
/// # Safety
/// `prev` must be valid for writes and must not be read by a running handler meanwhile
/// (call once, before the handler can run).
pub(crate) unsafe fn install(sig: libc::c_int, handler: Handler, prev: *mut libc::sigaction) {
    let mut sa = empty_action();
    sa.sa_sigaction = handler as *const () as usize;
    sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_ONSTACK;
    libc::sigemptyset(&mut sa.sa_mask);
    libc::sigaction(sig, &sa, prev);
}

/// Hands a signal that is not the translator's to `prev`, the action installed before: calls
/// its handler, or else restores the default action. A fault returns to its instruction and
/// raises itself again; a signal that was sent (`resend`) is raised again here.
///
/// # Safety
/// Only from a signal handler, with the kernel's `info` and `uctx` for this signal.
pub(crate) unsafe fn forward(
    prev: &libc::sigaction,
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    uctx: *mut libc::c_void,
    resend: bool,
) {
    if prev.sa_flags & libc::SA_SIGINFO != 0 && prev.sa_sigaction > 1 {
        let f: Handler = std::mem::transmute(prev.sa_sigaction);
        f(sig, info, uctx);
    } else if prev.sa_sigaction > 1 {
        let f: extern "C" fn(libc::c_int) = std::mem::transmute(prev.sa_sigaction);
        f(sig);
    } else {
        // Default, or ignored (which the kernel does not honour for a fault).
        libc::signal(sig, libc::SIG_DFL);
        if resend {
            libc::raise(sig);
        }
    }
}
