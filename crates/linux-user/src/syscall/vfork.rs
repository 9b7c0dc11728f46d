//! clone with CLONE_VM | CLONE_VFORK (vfork, and glibc's posix_spawn): the child shares the
//! parent's memory until it execs or exits, and the parent waits for that, as on Linux.
//!
//! posix_spawn depends on the sharing: its child reports a failed execve by writing errno
//! into the parent's memory before it exits, so vfork emulated as fork (as qemu-user does)
//! turns "no such program" into a child that exits with 127 and a spawn that "succeeded"
//! (Python's subprocess then raises no FileNotFoundError). Here the host does what the guest
//! asked for: a host clone(CLONE_VM | CLONE_VFORK) whose child runs the guest child on a
//! Thread of its own (its own engine, its own signal dispositions, the same guest memory),
//! on a fresh host stack. The host child shares the parent thread's TLS (no CLONE_SETTLS),
//! as a C vfork child does: that thread is suspended meanwhile, and re-registers its own
//! signal state when it resumes. The child leaves only through the host's execve or _exit,
//! never through the parent's frames; the parent then frees the child's stack and state.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use crate::errno::{Errno, SysResult, EAGAIN};
use crate::signal;
use crate::task::{self, Process, Thread, ThreadEnd};

const CLONE_VM: i32 = 0x100;
const CLONE_VFORK: i32 = 0x4000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;
/// The child runs the translator on this stack, as a guest thread does on its own.
const STACK_SIZE: usize = 8 << 20;

/// What the host child needs: its guest thread and the clone flags that concern it.
struct Child {
    thread: Thread,
    flags: u64,
    ctid: u64,
}

/// An anonymous mapping for the child's host stack, unmapped when dropped.
struct HostStack {
    base: *mut libc::c_void,
    size: usize,
}

impl HostStack {
    fn new(size: usize) -> Result<HostStack, Errno> {
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        // A guard page: an overflow faults instead of writing below the mapping.
        // SAFETY: the lowest page of the mapping just made.
        unsafe { libc::mprotect(base, 4096, libc::PROT_NONE) };
        Ok(HostStack { base, size })
    }

    fn top(&self) -> *mut libc::c_void {
        self.base.wrapping_byte_add(self.size)
    }
}

impl Drop for HostStack {
    fn drop(&mut self) {
        // SAFETY: our own mapping; the child that ran on it has exec'd or exited.
        unsafe { libc::munmap(self.base, self.size) };
    }
}

pub fn vfork(t: &mut Thread, flags: u64, newsp: u64, ptid: u64, tls: u64, ctid: u64) -> SysResult {
    let actions = *t.proc.actions.lock().unwrap_or_else(|e| e.into_inner());
    // The child's own process state: Linux gives a CLONE_VM child without CLONE_SIGHAND its
    // own signal dispositions (posix_spawn's child resets them; the parent's must stay).
    let proc = Arc::new(Process {
        space: t.proc.space.clone(),
        opts: t.proc.opts.clone(),
        exe_path: t.proc.exe_path.clone(),
        cmdline: t.proc.cmdline.clone(),
        sigtramp: t.proc.sigtramp,
        actions: Mutex::new(actions),
        live_threads: AtomicUsize::new(1),
        stats_total: Mutex::new(Default::default()),
        live_stats: Mutex::new(Vec::new()),
        debugger: Mutex::new(None),
    });
    let cpu = super::proc::child_cpu(t, flags, newsp, tls);
    let mask = t.sig.mask.get();
    let thread = Thread::new(proc, cpu, mask).map_err(|e| {
        log::warn!("cannot start a vfork child: {e}");
        EAGAIN
    })?;
    let mut child = Box::new(Child {
        thread,
        flags,
        ctid,
    });
    let stack = HostStack::new(STACK_SIZE)?;
    let exit_signal = (flags & 0xff) as i32;
    // The child must not take a host signal before its run loop has registered where to
    // record it (it starts with this mask).
    signal::set_host_mask(!0);
    let arg: *mut Child = &mut *child;
    // SAFETY: child_main runs on its own stack and only touches `child`, which stays alive
    // and untouched here until the child has exec'd or exited: CLONE_VFORK suspends this
    // thread until then.
    let pid = unsafe {
        libc::clone(
            child_main,
            stack.top(),
            CLONE_VM | CLONE_VFORK | exit_signal,
            arg.cast(),
        )
    };
    let err = Errno::last();
    // The child ran on this thread's TLS: point the signal routing back at this thread.
    signal::register_thread(&t.sig);
    // Host dispositions are the child's own (no CLONE_SIGHAND), except what the translator
    // keeps for SIGFPE in memory the child shared: put the parent's back.
    let fpe = t.proc.actions.lock().unwrap_or_else(|e| e.into_inner())[libc::SIGFPE as usize];
    signal::mirror_action(libc::SIGFPE, &fpe);
    signal::set_host_mask(mask);
    drop(child);
    drop(stack);
    if pid < 0 {
        return Err(err);
    }
    if flags & CLONE_PARENT_SETTID != 0 {
        t.proc.space.write_u32(ptid, pid as u32)?;
    }
    Ok(pid as u64)
}

/// The host child: runs the guest child until its execve replaces this process or it exits.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `vfork` passed a live Child that nothing else uses while this process runs.
    let c = unsafe { &mut *arg.cast::<Child>() };
    let th = &mut c.thread;
    th.tid = task::gettid();
    if c.flags & CLONE_CHILD_SETTID != 0 {
        let _ = th.proc.space.write_u32(c.ctid, th.tid as u32);
    }
    if c.flags & CLONE_CHILD_CLEARTID != 0 {
        th.clear_child_tid = c.ctid;
    }
    let code = match th.run() {
        ThreadEnd::Thread(code) | ThreadEnd::Group(code) => code,
    };
    // Never return: glibc's clone would end only this task, and nothing here may unwind.
    task::exit_process(&th.proc, code)
}
