//! Guest signals.
//!
//! Host dispositions mirror the guest's: a guest SIG_DFL/SIG_IGN is the same on the host (so the
//! kernel terminates, stops or ignores exactly as it would for the real program), and a guest
//! handler becomes `host_handler`, which records the signal for the current thread and asks the
//! engine to return to the run loop. The host signal mask of each thread mirrors the guest's,
//! so blocked signals stay pending in the host kernel and sigsuspend/ppoll/sigtimedwait work by
//! passing the mask straight through. SIGSEGV, SIGBUS and SIGFPE belong to the translator on
//! the host and are never blocked or mirrored there; guest faults of every kind reach us as
//! run-loop exits instead.
//!
//! Each thread has one siginfo slot per signal; a recorded signal stays blocked on the host
//! until delivered, so further instances (queued real-time signals) wait in the kernel.
//!
//! Blocking syscalls: the syscall layer delivers signals that are already pending before it
//! runs a syscall, and host handlers are installed without SA_RESTART so a signal arriving
//! during a blocking host syscall interrupts it. Known limitation: a signal arriving in the few
//! instructions between that check and the host syscall's entry is only delivered when the
//! syscall returns (QEMU closes this window with hand-written assembly; we accept it).

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::engine::ExitRequest;
use crate::errno::{Errno, SysResult, EFAULT, EINVAL};
use crate::task::Thread;

pub const NSIG: usize = 64;
pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;
pub const SA_SIGINFO: u64 = 4;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;
const SS_ONSTACK: u64 = 1;
const SS_DISABLE: u64 = 2;

/// Synchronous signals: delivered before others when several are pending.
pub const SYNC_SIGS: u64 = bit(libc::SIGSEGV)
    | bit(libc::SIGBUS)
    | bit(libc::SIGILL)
    | bit(libc::SIGFPE)
    | bit(libc::SIGTRAP);
/// Signals the translator owns on the host (its fault handlers; SIGFPE is how inline FP
/// arithmetic reaches its slow path, see `dbt::fptrap`): never blocked there; guest-directed
/// ones are posted to the guest thread directly. RISC-V itself never raises SIGFPE; one sent
/// from another thread or process reaches the guest through `dbt::fptrap::set_foreign`.
pub const HOST_OWNED: u64 = bit(libc::SIGSEGV) | bit(libc::SIGBUS) | bit(libc::SIGFPE);
const UNBLOCKABLE: u64 = bit(libc::SIGKILL) | bit(libc::SIGSTOP);

pub const fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// The guest's `struct sigaction` (RISC-V has no sa_restorer).
#[derive(Clone, Copy, Debug, Default)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub mask: u64,
}

/// Per-thread signal state. The host handler writes `pending` and `info`; the owning thread
/// reads them. Lives in an `Arc` so its address is stable for the handler.
pub struct ThreadSignals {
    pub pending: AtomicU64,
    info: [UnsafeCell<[u8; 128]>; NSIG],
    pub exit_req: ExitRequest,
    /// The guest's blocked set (only the owning thread changes it).
    pub mask: Cell<u64>,
    /// sigaltstack: (sp, size, flags).
    pub altstack: Cell<(u64, u64, u64)>,
    /// Mask to restore after a sigsuspend once its signal has been delivered.
    pub suspend_restore: Cell<Option<u64>>,
}

// SAFETY: `info` slots are written by the signal handler on the owning thread and read by the
// owning thread after seeing the pending bit (Acquire/Release); other threads never touch them.
// `mask` and `altstack` are only used by the owning thread.
unsafe impl Sync for ThreadSignals {}
// SAFETY: see above; moving the Arc between threads happens only before the thread starts.
unsafe impl Send for ThreadSignals {}

impl ThreadSignals {
    pub fn new(mask: u64, exit_req: ExitRequest) -> ThreadSignals {
        ThreadSignals {
            pending: AtomicU64::new(0),
            info: [const { UnsafeCell::new([0; 128]) }; NSIG],
            exit_req,
            mask: Cell::new(mask),
            altstack: Cell::new((0, 0, SS_DISABLE)),
            suspend_restore: Cell::new(None),
        }
    }

    fn take_info(&self, sig: i32) -> [u8; 128] {
        // SAFETY: only the owning thread reads, after the pending bit was cleared; the handler
        // runs on this same thread so it cannot interleave with this copy except by interrupting
        // it, in which case we read a fresher siginfo, which is fine.
        unsafe { *self.info[sig as usize - 1].get() }
    }

    /// Marks `sig` pending with the given siginfo (guest-generated signals, faults).
    pub fn post(&self, sig: i32, info: [u8; 128]) {
        // SAFETY: called on the owning thread (see take_info).
        unsafe { *self.info[sig as usize - 1].get() = info };
        self.pending.fetch_or(bit(sig), Ordering::Release);
        self.exit_req.request();
    }
}

thread_local! {
    static CURRENT: Cell<*const ThreadSignals> = const { Cell::new(std::ptr::null()) };
}

/// Makes the host handler route signals on this host thread to `sig`.
pub fn register_thread(sig: &Arc<ThreadSignals>) {
    CURRENT.with(|c| c.set(Arc::as_ptr(sig)));
}

/// Stops routing host signals to this thread's state (before it is dropped), and blocks
/// them so the kernel picks another thread for process-directed ones.
pub fn unregister_thread() {
    block_all_host();
    CURRENT.with(|c| c.set(std::ptr::null()));
}

/// Blocks every host signal in this thread, the translator's own too, for a thread that
/// runs no more guest code: a SIGFPE or SIGSEGV another process sends must not land here,
/// where no guest thread would ever see it (the guest's pthread_join returns as soon as the
/// exiting thread clears its tid, before this host thread is gone).
pub fn block_all_host() {
    set_raw_host_mask(!0);
}

extern "C" fn host_handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    if !record(sig, info) {
        return;
    }
    // Keep `sig` blocked on the host when this handler returns: further instances stay
    // queued in the kernel (real-time signals queue) until the run loop has delivered this
    // one and set the host mask from the guest's again.
    let uc = ctx as *mut libc::ucontext_t;
    if !uc.is_null() {
        // SAFETY: the kernel's ucontext for this signal; only its saved mask is changed.
        unsafe { libc::sigaddset(&mut (*uc).uc_sigmask, sig) };
    }
}

/// A SIGFPE sent to a guest that handles it, handed over by the translator's SIGFPE handler
/// (see `dbt::fptrap::Foreign`). It is recorded like any other signal but not kept blocked:
/// a blocked SIGFPE raised by inline FP arithmetic would kill the process, and SIGFPE does
/// not queue anyway.
extern "C" fn sent_fpe_handler(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    record(sig, info);
}

/// Records `sig` with its siginfo for the current thread and asks it to return to the run
/// loop; false if this thread does not take guest signals.
fn record(sig: libc::c_int, info: *mut libc::siginfo_t) -> bool {
    let cur = CURRENT.with(|c| c.get());
    if cur.is_null() || !(1..=NSIG as i32).contains(&sig) {
        return false;
    }
    // SAFETY: `cur` points into an Arc the thread keeps alive while registered; the kernel passes
    // a valid siginfo of 128 bytes. Only async-signal-safe operations (copies, atomics) are used.
    unsafe {
        let ts = &*cur;
        let dst = ts.info[sig as usize - 1].get() as *mut u8;
        std::ptr::copy_nonoverlapping(info as *const u8, dst, 128);
        ts.pending.fetch_or(bit(sig), Ordering::Release);
        ts.exit_req.request();
    }
    true
}

/// Installs the host disposition that mirrors a guest action.
pub fn mirror_action(sig: i32, act: &SigAction) {
    if sig == libc::SIGFPE {
        // The translator's handler keeps the signal and passes sent ones on as told.
        dbt::fptrap::set_foreign(match act.handler {
            SIG_DFL => dbt::fptrap::Foreign::Previous,
            SIG_IGN => dbt::fptrap::Foreign::Ignore,
            _ => dbt::fptrap::Foreign::Handler(sent_fpe_handler),
        });
        return;
    }
    if bit(sig) & (HOST_OWNED | UNBLOCKABLE) != 0 {
        return;
    }
    let d = match act.handler {
        SIG_DFL => crate::hostsig::Disposition::Default,
        SIG_IGN => crate::hostsig::Disposition::Ignore,
        _ => crate::hostsig::Disposition::Handler(host_handler),
    };
    if let Err(e) = crate::hostsig::set(sig, d) {
        log::debug!("host sigaction({sig}) failed: errno {e}");
    }
}

/// The host C library's reserved signals (glibc's SIGCANCEL and SIGSETXID).
const RESERVED_BY_HOST_LIBC: [i32; 2] = [32, 33];

/// Whether the host C library reserves `sig` for itself.
pub fn reserved_by_host_libc(sig: i32) -> bool {
    RESERVED_BY_HOST_LIBC.contains(&sig)
}

/// Installs again the host dispositions mirroring the guest's for the signals the host C
/// library reserves, after it may have installed its own (at its first thread creation).
pub fn remirror_reserved(proc: &crate::task::Process) {
    let acts = *proc.actions.lock().unwrap_or_else(|e| e.into_inner());
    remirror_reserved_actions(&acts);
}

/// As [`remirror_reserved`], from the guest's actions table.
pub fn remirror_reserved_actions(acts: &[SigAction; 65]) {
    for sig in RESERVED_BY_HOST_LIBC {
        mirror_action(sig, &acts[sig as usize]);
    }
}

/// Sets the host mask of the calling thread to mirror guest mask `mask`.
pub fn set_host_mask(mask: u64) {
    set_raw_host_mask(mask & !HOST_OWNED & !UNBLOCKABLE);
}

/// Sets the calling thread's host mask to exactly `set` (the kernel keeps SIGKILL and
/// SIGSTOP unblocked itself).
fn set_raw_host_mask(set: u64) {
    // SAFETY: the kernel sigset is 8 bytes; rt_sigprocmask with a valid pointer and size 8.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &set as *const u64,
            std::ptr::null_mut::<u64>(),
            8,
        );
    }
}

/// The calling thread's host mask (used at start-up: execve preserves the mask).
pub fn host_mask() -> u64 {
    let mut old = 0u64;
    // SAFETY: as in `set_host_mask`, only reading.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            std::ptr::null::<u64>(),
            &mut old as *mut u64,
            8,
        );
    }
    old
}

/// True if the host currently ignores `sig` (inherited across execve).
pub fn host_ignored(sig: i32) -> bool {
    crate::hostsig::ignored(sig)
}

/// Siginfo for a signal Tandem generates itself.
pub fn make_info(sig: i32, code: i32, addr_or_pid: u64, uid: u32) -> [u8; 128] {
    let mut b = [0u8; 128];
    b[0..4].copy_from_slice(&sig.to_le_bytes());
    b[8..12].copy_from_slice(&code.to_le_bytes());
    // The union starts at offset 16: si_addr for faults, si_pid/si_uid for kill.
    if code > 0 {
        b[16..24].copy_from_slice(&addr_or_pid.to_le_bytes());
    } else {
        b[16..20].copy_from_slice(&(addr_or_pid as u32).to_le_bytes());
        b[20..24].copy_from_slice(&uid.to_le_bytes());
    }
    b
}

/// A synchronous guest fault: delivered before the next guest instruction.
pub fn raise_sync(t: &mut Thread, sig: i32, code: i32, addr: u64) {
    // A fault with the signal blocked or ignored kills the process, as on Linux.
    let act = t.proc.actions.lock().unwrap_or_else(|e| e.into_inner())[sig as usize];
    if t.sig.mask.get() & bit(sig) != 0 || act.handler == SIG_IGN {
        die(t, sig);
    }
    t.sig.post(sig, make_info(sig, code, addr, 0));
}

/// Terminates the process with `sig` (default action), as the real program would die.
pub fn die(t: &Thread, sig: i32) -> ! {
    crate::task::report_end(&t.proc, 128 + sig, Some(sig));
    t.merge_stats();
    crate::task::print_stats(&t.proc);
    // SAFETY: resetting the disposition, unblocking and sending the signal to ourselves; we
    // also disable core dumps so a guest crash does not dump the 256 GiB reservation.
    unsafe {
        let rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &rl);
        // Raw system calls: the C library refuses its reserved signals 32 and 33.
        let _ = crate::hostsig::set(sig, crate::hostsig::Disposition::Default);
        let unblock = bit(sig);
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_UNBLOCK,
            &unblock as *const u64,
            std::ptr::null_mut::<u64>(),
            8,
        );
        libc::syscall(libc::SYS_tgkill, libc::getpid(), libc::gettid(), sig);
        // Signals whose default action is not to terminate (or that were somehow survived).
        libc::_exit(128 + sig);
    }
}

fn default_ignored(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGCHLD | libc::SIGURG | libc::SIGWINCH | libc::SIGCONT
    )
}

/// Delivers every pending, unblocked signal: builds the guest frame for handlers, applies
/// default actions otherwise.
pub fn deliver_pending(t: &mut Thread) {
    let mut took = false;
    loop {
        let pending = t.sig.pending.load(Ordering::Acquire);
        let ready = pending & !t.sig.mask.get();
        if ready == 0 {
            if let Some(old) = t.sig.suspend_restore.take() {
                set_mask(t, old);
            } else if took {
                // The host handler left the taken signals blocked on the host (see there).
                sync_host_mask(t);
            }
            return;
        }
        took = true;
        // Synchronous faults first, then the lowest number, as Linux does.
        let pick = if ready & SYNC_SIGS != 0 {
            ready & SYNC_SIGS
        } else {
            ready
        };
        let sig = pick.trailing_zeros() as i32 + 1;
        t.sig.pending.fetch_and(!bit(sig), Ordering::AcqRel);
        let info = t.sig.take_info(sig);
        let act = {
            let mut acts = t.proc.actions.lock().unwrap_or_else(|e| e.into_inner());
            let a = acts[sig as usize];
            if a.handler > SIG_IGN && a.flags & SA_RESETHAND != 0 {
                acts[sig as usize] = SigAction::default();
                mirror_action(sig, &acts[sig as usize]);
            }
            a
        };
        match act.handler {
            SIG_IGN => {}
            SIG_DFL if default_ignored(sig) => {}
            SIG_DFL => die(t, sig),
            _ => {
                if crate::frame::push(t, sig, &act, &info).is_err() {
                    // Could not write the frame: Linux forces SIGSEGV.
                    die(t, libc::SIGSEGV);
                }
            }
        }
    }
}

/// rt_sigaction(sig, act, oldact, sigsetsize)
pub fn sys_rt_sigaction(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let sig = a[0] as i32;
    if !(1..=NSIG as i32).contains(&sig) || a[3] != 8 {
        return Err(EINVAL);
    }
    let sp = &t.proc.space;
    let new = if a[1] != 0 {
        if bit(sig) & UNBLOCKABLE != 0 {
            return Err(EINVAL);
        }
        Some(SigAction {
            handler: sp.read_u64(a[1])?,
            flags: sp.read_u64(a[1] + 8)?,
            mask: sp.read_u64(a[1] + 16)?,
        })
    } else {
        None
    };
    let old = {
        let mut acts = t.proc.actions.lock().unwrap_or_else(|e| e.into_inner());
        let old = acts[sig as usize];
        if let Some(n) = new {
            acts[sig as usize] = n;
            mirror_action(sig, &n);
        }
        old
    };
    if a[2] != 0 {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&old.handler.to_le_bytes());
        b[8..16].copy_from_slice(&old.flags.to_le_bytes());
        b[16..24].copy_from_slice(&old.mask.to_le_bytes());
        t.write_guest(a[2], &b)?;
    }
    Ok(0)
}

/// Changes the guest mask (and the host mirror).
pub fn set_mask(t: &Thread, mask: u64) {
    let mask = mask & !UNBLOCKABLE;
    t.sig.mask.set(mask);
    sync_host_mask(t);
}

/// Host mask = guest mask plus the signals recorded but not yet delivered: each has one
/// siginfo slot, so further instances must wait in the kernel's queue.
pub fn sync_host_mask(t: &Thread) {
    set_host_mask(t.sig.mask.get() | t.sig.pending.load(Ordering::Acquire));
}

/// rt_sigprocmask(how, set, oldset, sigsetsize)
pub fn sys_rt_sigprocmask(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    if a[3] != 8 {
        return Err(EINVAL);
    }
    let old = t.sig.mask.get();
    if a[1] != 0 {
        let set = t.proc.space.read_u64(a[1])?;
        let new = match a[0] as i32 {
            libc::SIG_BLOCK => old | set,
            libc::SIG_UNBLOCK => old & !set,
            libc::SIG_SETMASK => set,
            _ => return Err(EINVAL),
        };
        set_mask(t, new);
    }
    if a[2] != 0 {
        t.write_guest(a[2], &old.to_le_bytes())?;
    }
    Ok(0)
}

/// rt_sigsuspend(mask, sigsetsize): waits with the given mask on the host, then lets the
/// run loop deliver what arrived (the old mask is restored by the frame, as on Linux).
pub fn sys_rt_sigsuspend(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    if a[1] != 8 {
        return Err(EINVAL);
    }
    let mask = t.proc.space.read_u64(a[0])? & !HOST_OWNED & !UNBLOCKABLE;
    let old = t.sig.mask.get();
    // SAFETY: an 8-byte kernel sigset on our stack.
    unsafe { libc::syscall(libc::SYS_rt_sigsuspend, &mask as *const u64, 8) };
    // The host handler has recorded the signal. Deliver it under the temporary mask; the
    // frame saves the pre-suspend mask so sigreturn restores it, as on Linux.
    t.sig.mask.set(mask);
    t.sig.suspend_restore.set(Some(old));
    Err(crate::errno::EINTR)
}

/// sigaltstack(ss, old_ss)
pub fn sys_sigaltstack(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let (sp, size, flags) = t.sig.altstack.get();
    let on = sp != 0 && t.cpu.x[2].wrapping_sub(sp) < size;
    if a[1] != 0 {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&sp.to_le_bytes());
        let f = if on { SS_ONSTACK } else { flags & SS_DISABLE };
        b[8..12].copy_from_slice(&(f as u32).to_le_bytes());
        b[16..24].copy_from_slice(&size.to_le_bytes());
        t.write_guest(a[1], &b)?;
    }
    if a[0] != 0 {
        if on {
            return Err(Errno(libc::EPERM));
        }
        let s = &t.proc.space;
        let nsp = s.read_u64(a[0])?;
        let nflags = s.read_u32(a[0] + 8)? as u64;
        let nsize = s.read_u64(a[0] + 16)?;
        if nflags & SS_DISABLE != 0 {
            t.sig.altstack.set((0, 0, SS_DISABLE));
        } else if nflags & !SS_ONSTACK != 0 && nflags != 0x8000_0000 {
            return Err(EINVAL);
        } else if nsize < 2048 {
            return Err(Errno(libc::ENOMEM));
        } else {
            t.sig.altstack.set((nsp, nsize, 0));
        }
    }
    Ok(0)
}

/// kill/tkill/tgkill aimed at this thread with a synchronous signal: the host would hand those
/// to the translator, so post them directly.
pub fn self_send(t: &mut Thread, sig: i32, code: i32) -> SysResult {
    if sig == 0 {
        return Ok(0);
    }
    if !(1..=NSIG as i32).contains(&sig) {
        return Err(EINVAL);
    }
    let (pid, uid) = (crate::host::getpid(), crate::host::getuid());
    t.sig.post(sig, make_info(sig, code, pid as u64, uid));
    Ok(0)
}

/// Reads a guest sigset argument for ppoll/pselect/epoll_pwait: returns a host mask pointer
/// value (with the translator's signals removed).
pub fn guest_sigset(t: &Thread, addr: u64) -> Result<Option<u64>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let m = t.proc.space.read_u64(addr).map_err(|_| EFAULT)?;
    Ok(Some(m & !HOST_OWNED & !UNBLOCKABLE))
}
