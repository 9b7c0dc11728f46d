//! Processes, threads and their signals: clone (threads and fork), execve (re-executing Tandem
//! for RISC-V programs), exit, futex, kill and friends, uname, prctl.

use std::ffi::CString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use crate::engine::Cpu;
use crate::errno::{Errno, SysResult, EAGAIN, EFAULT, EINVAL};
use crate::signal::{self, HOST_OWNED};
use crate::space::{PROT_EXEC, PROT_WRITE};
use crate::task::{self, Thread, ThreadEnd};

const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;

use crate::host::syscall6 as call;

pub fn exit(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    t.exit_thread(a[0] as i32 & 0xff);
    Ok(0)
}

pub fn exit_group(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    t.merge_stats();
    task::exit_process(&t.proc, a[0] as i32 & 0xff)
}

pub fn set_tid_address(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    t.clear_child_tid = a[0];
    Ok(t.tid as u64)
}

pub fn futex(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let sp = &t.proc.space;
    let uaddr = sp.g2h(a[0], 4)? as u64;
    let cmd = a[1] & 0x7f;
    // Argument 4 is a timeout pointer for the waits, a plain count for the requeues.
    let (timeout, uaddr2) = match cmd {
        0 | 9 | 6 | 11 => (sp.g2h_opt(a[3], 16)? as u64, sp.g2h_opt(a[4], 4)? as u64),
        1 | 7 | 8 | 10 => (a[3], 0),
        3 | 4 | 5 | 12 => (a[3], sp.g2h(a[4], 4)? as u64),
        _ => return Err(Errno(libc::ENOSYS)),
    };
    call(libc::SYS_futex, [uaddr, a[1], a[2], timeout, uaddr2, a[5]])
}

/// Sends `sig` to a thread of this process: synchronous signals aimed at ourselves are posted
/// directly (on the host they belong to the translator).
fn send(
    t: &mut Thread,
    sig: i32,
    to_self: bool,
    code: i32,
    host: impl FnOnce() -> SysResult,
) -> SysResult {
    if to_self && (1..=64).contains(&sig) && signal::bit(sig) & HOST_OWNED != 0 {
        return signal::self_send(t, sig, code);
    }
    host()
}

pub fn kill(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let me = crate::host::getpid() as i64;
    let pid = a[0] as i64 as i32 as i64;
    send(t, a[1] as i32, pid == me || pid == 0, 0, || {
        call(libc::SYS_kill, [a[0], a[1], 0, 0, 0, 0])
    })
}

pub fn tkill(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let to_self = a[0] as i32 == t.tid;
    send(t, a[1] as i32, to_self, -6, || {
        call(libc::SYS_tkill, [a[0], a[1], 0, 0, 0, 0])
    })
}

pub fn tgkill(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let to_self = a[1] as i32 == t.tid;
    send(t, a[2] as i32, to_self, -6, || {
        call(libc::SYS_tgkill, [a[0], a[1], a[2], 0, 0, 0])
    })
}

pub fn rt_sigpending(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let mut host = 0u64;
    call(
        libc::SYS_rt_sigpending,
        [&mut host as *mut u64 as u64, 8, 0, 0, 0, 0],
    )?;
    let ours = t.sig.pending.load(Ordering::Acquire);
    t.write_guest(a[0], &((host | ours) & t.sig.mask.get()).to_le_bytes())?;
    Ok(0)
}

pub fn rt_sigtimedwait(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let sp = &t.proc.space;
    let set = sp.read_u64(a[0])?;
    let info = sp.g2h_opt(a[1], 128)? as u64;
    let ts = sp.g2h_opt(a[2], 16)? as u64;
    let host_set = set & !HOST_OWNED;
    call(
        libc::SYS_rt_sigtimedwait,
        [&host_set as *const u64 as u64, info, ts, 8, 0, 0],
    )
}

pub fn uname(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    // struct utsname: six 65-byte fields; `machine` is the fifth.
    let mut u = [0u8; 6 * 65];
    call(libc::SYS_uname, [u.as_mut_ptr() as u64, 0, 0, 0, 0, 0])?;
    let machine = &mut u[4 * 65..5 * 65];
    machine.fill(0);
    machine[..7].copy_from_slice(b"riscv64");
    t.write_guest(a[0], &u)?;
    Ok(0)
}

pub fn prctl(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let sp = &t.proc.space;
    match a[0] as i32 {
        libc::PR_SET_NAME => {
            let name = sp.read_cstring(a[1], 4096)?;
            call(libc::SYS_prctl, [a[0], name.as_ptr() as u64, 0, 0, 0, 0])
        }
        libc::PR_GET_NAME => {
            let mut buf = [0u8; 16];
            call(libc::SYS_prctl, [a[0], buf.as_mut_ptr() as u64, 0, 0, 0, 0])?;
            t.write_guest(a[1], &buf)?;
            Ok(0)
        }
        libc::PR_GET_PDEATHSIG => {
            let p = sp.g2h(a[1], 4)? as u64;
            call(libc::SYS_prctl, [a[0], p, 0, 0, 0, 0])
        }
        libc::PR_SET_PDEATHSIG
        | libc::PR_GET_DUMPABLE
        | libc::PR_SET_DUMPABLE
        | libc::PR_SET_NO_NEW_PRIVS
        | libc::PR_GET_NO_NEW_PRIVS
        | libc::PR_SET_TIMERSLACK
        | libc::PR_GET_TIMERSLACK
        | libc::PR_SET_CHILD_SUBREAPER
        // Capabilities (setpriv, su, runuser): integers only, and per thread on both sides.
        | libc::PR_GET_KEEPCAPS
        | libc::PR_SET_KEEPCAPS
        | libc::PR_CAPBSET_READ
        | libc::PR_CAPBSET_DROP
        | libc::PR_GET_SECUREBITS
        | libc::PR_SET_SECUREBITS
        | libc::PR_CAP_AMBIENT => call(libc::SYS_prctl, [a[0], a[1], a[2], a[3], a[4], 0]),
        _ => Err(EINVAL),
    }
}

pub fn clone(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let (flags, newsp, ptid, tls, ctid) = (a[0], a[1], a[2], a[3], a[4]);
    if flags & CLONE_VM != 0 && flags & CLONE_VFORK == 0 {
        spawn_thread(t, flags, newsp, ptid, tls, ctid)
    } else if flags & CLONE_VM != 0 {
        super::vfork::vfork(t, flags, newsp, ptid, tls, ctid)
    } else {
        fork(t, flags, newsp, ptid, tls, ctid)
    }
}

/// The CPU of a new thread or vfork child: the caller's registers past its `ecall`, clone's
/// result 0, and the stack and thread pointer clone asked for.
pub(super) fn child_cpu(t: &Thread, flags: u64, newsp: u64, tls: u64) -> Cpu {
    let mut cpu = t.cpu.clone();
    cpu.x[10] = 0;
    cpu.pc = cpu.pc.wrapping_add(4);
    set_stack_and_tls(&mut cpu, flags, newsp, tls);
    cpu
}

/// A clone child's stack pointer (`newsp`, if given) and thread pointer (with CLONE_SETTLS).
fn set_stack_and_tls(cpu: &mut Cpu, flags: u64, newsp: u64, tls: u64) {
    if newsp != 0 {
        cpu.x[2] = newsp;
    }
    if flags & CLONE_SETTLS != 0 {
        cpu.x[4] = tls;
    }
}

fn spawn_thread(
    t: &mut Thread,
    flags: u64,
    newsp: u64,
    ptid: u64,
    tls: u64,
    ctid: u64,
) -> SysResult {
    let cpu = child_cpu(t, flags, newsp, tls);
    let proc = t.proc.clone();
    let mask = t.sig.mask.get();
    let (tx, rx) = mpsc::channel::<Result<i32, String>>();
    proc.live_threads.fetch_add(1, Ordering::SeqCst);
    let p2 = proc.clone();
    // The new host thread inherits this mask: it must not take a signal before its run loop
    // has registered where to record it.
    signal::set_host_mask(!0);
    let spawned = std::thread::Builder::new()
        .name("guest".into())
        .stack_size(8 << 20)
        .spawn(move || {
            let mut th = match Thread::new(p2, cpu, mask) {
                Ok(th) => th,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let sp = &th.proc.space;
            // Both tid words are written before the child runs guest code and before the
            // parent's clone returns, as on Linux.
            if flags & CLONE_PARENT_SETTID != 0 {
                let _ = sp.write_u32(ptid, th.tid as u32);
            }
            if flags & CLONE_CHILD_SETTID != 0 {
                let _ = sp.write_u32(ctid, th.tid as u32);
            }
            if flags & CLONE_CHILD_CLEARTID != 0 {
                th.clear_child_tid = ctid;
            }
            let _ = tx.send(Ok(th.tid));
            if let ThreadEnd::Group(code) = th.run() {
                task::exit_process(&th.proc, code);
            }
            signal::unregister_thread();
        });
    // The host C library installs its own handlers for its reserved signals 32 and 33 when
    // its first thread is created; those numbers belong to the guest (see `hostsig`).
    signal::remirror_reserved(&proc);
    signal::set_host_mask(mask);
    let fail = || {
        proc.live_threads.fetch_sub(1, Ordering::SeqCst);
        Err(EAGAIN)
    };
    if spawned.is_err() {
        return fail();
    }
    match rx.recv() {
        Ok(Ok(tid)) => Ok(tid as u64),
        Ok(Err(e)) => {
            log::warn!("cannot start guest thread: {e}");
            fail()
        }
        Err(_) => fail(),
    }
}

fn fork(t: &mut Thread, flags: u64, newsp: u64, ptid: u64, tls: u64, ctid: u64) -> SysResult {
    let exit_signal = flags & 0xff;
    // The child goes on with this thread's translations (nothing to translate again, and
    // what earlier children translated is translated first); the code buffer is copied by
    // the first of the two processes that writes to it.
    // Only code the guest cannot write (program text, libraries) is translated for the
    // children: JIT code may differ in this process, and translating it would
    // write-protect our page for nothing.
    let space = &t.proc.space;
    t.engine.prepare_fork(&|pc| {
        space
            .prot_at(pc)
            .is_some_and(|p| p & (PROT_WRITE | PROT_EXEC) == PROT_EXEC)
    });
    // Hold the translator's and our own process-wide locks across fork so the child cannot
    // inherit one that another thread held at that moment.
    let translator_guard = riscv::fork_lock();
    let space_guard = t.proc.space.fork_guard();
    let actions_guard = t.proc.actions.lock().unwrap_or_else(|e| e.into_inner());
    let mut total_guard = t.proc.stats_total.lock().unwrap_or_else(|e| e.into_inner());
    let mut stats_guard = t.proc.live_stats.lock().unwrap_or_else(|e| e.into_inner());
    let pid = if exit_signal == libc::SIGCHLD as u64 {
        // SAFETY: fork runs glibc's atfork handlers, keeping malloc usable in the child. Only
        // this thread survives in the child, which is what the guest asked for.
        unsafe { libc::fork() as i64 }
    } else {
        // SAFETY: a plain fork with a different exit signal (no CLONE_VM, no new stack).
        unsafe { libc::syscall(libc::SYS_clone, exit_signal, 0, 0, 0, 0) }
    };
    let fork_errno = Errno::last();
    if pid == 0 {
        // The child reports its own work: the parent's threads (this one included) are
        // counted by the parent.
        stats_guard.clear();
        *total_guard = Default::default();
        t.engine.after_fork_child();
        // Signals recorded for this thread but not yet delivered were sent to the parent
        // (a child starts with none pending); give the host mask back what recording them
        // blocked.
        t.sig.pending.store(0, Ordering::SeqCst);
        signal::set_host_mask(t.sig.mask.get());
    }
    drop(stats_guard);
    drop(total_guard);
    drop(actions_guard);
    drop(space_guard);
    drop(translator_guard);
    if pid < 0 {
        return Err(fork_errno);
    }
    if pid == 0 {
        t.tid = task::gettid();
        t.proc.live_threads.store(1, Ordering::SeqCst);
        // GDB debugs the parent; the child runs on its own (its copy of the connection
        // closes here). The debugger may be held by a thread the child does not have.
        if let Ok(mut d) = t.proc.debugger.try_lock() {
            d.take();
        }
        if t.debugged {
            t.debugged = false;
            t.engine.set_breakpoints(None);
        }
        set_stack_and_tls(&mut t.cpu, flags, newsp, tls);
        if flags & CLONE_CHILD_SETTID != 0 {
            t.proc.space.write_u32(ctid, t.tid as u32)?;
        }
        if flags & CLONE_CHILD_CLEARTID != 0 {
            t.clear_child_tid = ctid;
        }
        return Ok(0);
    }
    if flags & CLONE_PARENT_SETTID != 0 {
        t.proc.space.write_u32(ptid, pid as u32)?;
    }
    Ok(pid as u64)
}

/// A `#!` script whose interpreter (looked up in the sysroot first, as every path) is a
/// RISC-V program: the Tandem command line that runs it as Linux would, the interpreter
/// with its argument, then the script's path as the caller named it (`name`) and the
/// caller's arguments after argv[0]. Handed to the host instead, the script would get the
/// host's `/bin/sh` or `python3`, or a RISC-V interpreter the host cannot run without a
/// binfmt_misc handler. None for anything else (the host runs it).
fn script_args(
    t: &Thread,
    name: &std::ffi::CStr,
    host_path: &std::path::Path,
    argv: &[CString],
) -> Result<Option<Vec<CString>>, Errno> {
    let Some((interp, arg)) = crate::elf::shebang(host_path) else {
        return Ok(None);
    };
    let Ok(interp) = CString::new(interp) else {
        return Ok(None);
    };
    let host_interp = crate::syscall::fs::remap(&t.proc, &interp);
    if !crate::elf::is_riscv_elf(std::path::Path::new(std::ffi::OsStr::from_bytes(
        host_interp.as_bytes(),
    ))) {
        return Ok(None);
    }
    check_riscv_program(t, &host_interp)?;
    let mut new_argv = vec![interp];
    if let Some(a) = arg {
        new_argv.push(CString::new(a).map_err(|_| Errno(libc::ENOEXEC))?);
    }
    new_argv.push(name.to_owned());
    new_argv.extend(argv.iter().skip(1).cloned());
    Ok(Some(tandem_args(t, &host_interp, &new_argv)))
}

/// Reads a NULL-terminated guest array of string pointers.
fn string_array(t: &Thread, mut addr: u64) -> Result<Vec<CString>, Errno> {
    let mut v = Vec::new();
    if addr == 0 {
        return Ok(v);
    }
    loop {
        let p = t.proc.space.read_u64(addr)?;
        if p == 0 {
            return Ok(v);
        }
        if v.len() > 1 << 16 {
            return Err(Errno(libc::E2BIG));
        }
        v.push(t.proc.space.read_cstring(p, 1 << 17)?);
        addr += 8;
    }
}

/// execve(path, argv, envp)
pub fn execve(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let raw = t.proc.space.read_cstring(a[0], 4096)?;
    let path = crate::syscall::fs::remap(&t.proc, &raw);
    exec(t, path, &raw, a[1], a[2])
}

const AT_FDCWD: i32 = -100;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_EMPTY_PATH: u64 = 0x1000;

/// execveat(dirfd, path, argv, envp, flags): the file is named through /proc/self/fd, which
/// execve then treats like any path (fexecve is execveat with AT_EMPTY_PATH).
pub fn execveat(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let (dirfd, flags) = (a[0] as i32, a[4]);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let raw = t.proc.space.read_cstring(a[1], 4096)?;
    let name = raw.to_bytes();
    let path = if name.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno(libc::ENOENT));
        }
        fd_path(dirfd)?
    } else if name[0] == b'/' || dirfd == AT_FDCWD {
        crate::syscall::fs::remap(&t.proc, &raw)
    } else {
        let mut p = format!("/proc/self/fd/{dirfd}/").into_bytes();
        p.extend_from_slice(name);
        CString::new(p).map_err(|_| EINVAL)?
    };
    if flags & AT_SYMLINK_NOFOLLOW != 0 && !name.is_empty() {
        let host = std::path::Path::new(std::ffi::OsStr::from_bytes(path.as_bytes()));
        if host
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(Errno(libc::ELOOP));
        }
    }
    // What a `#!` interpreter is told the script is called: the caller's name for it when
    // that is a path, else the /proc/self/fd path (Linux says /dev/fd/N).
    let shown = if !name.is_empty() && (name[0] == b'/' || dirfd == AT_FDCWD) {
        raw.clone()
    } else {
        path.clone()
    };
    exec(t, path, &shown, a[2], a[3])
}

/// A path naming open file `fd` that survives the execve: the file's own path when it still
/// has one, else /proc/self/fd/N of a duplicate without close-on-exec (the new Tandem opens
/// the program after the old one's close-on-exec descriptors are gone).
fn fd_path(fd: i32) -> Result<CString, Errno> {
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).map_err(|_| Errno(libc::EBADF))?;
    if link.is_absolute() && link.exists() {
        return CString::new(link.into_os_string().into_vec()).map_err(|_| EINVAL);
    }
    let dup = call(
        libc::SYS_fcntl,
        [fd as u64, libc::F_DUPFD as u64, 3, 0, 0, 0],
    )?;
    CString::new(format!("/proc/self/fd/{dup}")).map_err(|_| EINVAL)
}

/// The common part of execve and execveat, on a host path. RISC-V programs run under a fresh
/// Tandem (re-executing /proc/self/exe with the same options); anything else (host programs,
/// scripts) is executed by the host directly, and so are RISC-V programs when binfmt_misc
/// started this Tandem: the kernel hands them to the same handler (no /proc needed, as in a
/// chroot); without /proc the kernel is tried too, in case a handler is registered.
/// Everything the kernel would refuse with an
/// error (no execute permission, a malformed program, a missing interpreter) is refused here,
/// before the point of no return, so the caller sees the errno, as a shell falling back to
/// running a file as a script relies on for ENOEXEC.
fn exec(
    t: &mut Thread,
    path: CString,
    name: &std::ffi::CStr,
    argv_addr: u64,
    envp_addr: u64,
) -> SysResult {
    let argv = string_array(t, argv_addr)?;
    let envp = string_array(t, envp_addr)?;
    let host_path = std::path::Path::new(std::ffi::OsStr::from_bytes(path.as_bytes()));
    crate::elf::exec_access(host_path).map_err(Errno)?;
    let riscv = crate::elf::is_riscv_elf(host_path);
    if riscv {
        check_riscv_program(t, &path)?;
    }
    let via_tandem = riscv && !t.proc.opts.binfmt;
    let (exe, args): (CString, Vec<CString>) = if via_tandem {
        (
            CString::new("/proc/self/exe").unwrap_or_default(),
            tandem_args(t, &path, &argv),
        )
    } else if let Some(args) = script_args(t, name, host_path, &argv)? {
        (CString::new("/proc/self/exe").unwrap_or_default(), args)
    } else {
        (path.clone(), argv.clone())
    };
    let mut argp: Vec<*const libc::c_char> = args.iter().map(|c| c.as_ptr()).collect();
    argp.push(std::ptr::null());
    let mut envpp: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
    envpp.push(std::ptr::null());
    t.merge_stats();
    // SAFETY: NULL-terminated arrays of pointers to CStrings that outlive the call.
    unsafe { libc::execve(exe.as_ptr(), argp.as_ptr(), envpp.as_ptr()) };
    let mut e = Errno::last();
    if via_tandem && e == Errno(libc::ENOENT) {
        // No /proc (a bare chroot): a registered binfmt_misc handler may still run it.
        let mut argp: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
        argp.push(std::ptr::null());
        // SAFETY: as above.
        unsafe { libc::execve(path.as_ptr(), argp.as_ptr(), envpp.as_ptr()) };
        if Errno::last() != Errno(libc::ENOEXEC) {
            e = Errno::last();
        }
    }
    Err(if e == EFAULT { Errno(libc::ENOEXEC) } else { e })
}

/// What the kernel checks of a RISC-V program before committing to execve: its headers
/// (ENOEXEC) and that its interpreter exists (ENOENT).
fn check_riscv_program(t: &Thread, path: &CString) -> Result<(), Errno> {
    use crate::elf::LoadError;
    match crate::elf::probe(&path.to_string_lossy()) {
        Ok(None) => Ok(()),
        Ok(Some(interp)) => match crate::find_interp(&t.proc.opts, &interp) {
            Some(_) => Ok(()),
            None => Err(Errno(libc::ENOENT)),
        },
        Err(LoadError::Open { source, .. }) => {
            Err(Errno(source.raw_os_error().unwrap_or(libc::ENOEXEC)))
        }
        Err(_) => Err(Errno(libc::ENOEXEC)),
    }
}

/// The command line of the Tandem that runs RISC-V program `path` with guest argv `argv`.
fn tandem_args(t: &Thread, path: &CString, argv: &[CString]) -> Vec<CString> {
    let mut args = vec![CString::new("tandem-riscv64").unwrap_or_default()];
    let o = &t.proc.opts;
    let mut push = |s: &[u8]| args.push(CString::new(s).unwrap_or_default());
    if let Some(root) = &o.sysroot {
        push(b"-L");
        push(root.as_os_str().as_bytes());
    }
    if o.strace {
        push(b"--strace");
    }
    if o.stats {
        push(b"--stats");
    }
    push(b"--backend");
    push(match o.backend {
        crate::engine::Backend::Native => b"native",
        crate::engine::Backend::Interp => b"interp",
    });
    if let Some(a0) = argv.first() {
        push(b"--argv0");
        push(a0.as_bytes());
    }
    push(b"--");
    push(path.as_bytes());
    args.extend(argv.iter().skip(1).cloned());
    args
}
