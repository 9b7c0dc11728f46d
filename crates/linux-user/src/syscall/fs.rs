//! File-system syscalls whose arguments need more than pointer relocation: paths remapped into
//! the sysroot, `struct stat` (RISC-V uses the asm-generic layout, x86-64 its own), iovecs,
//! epoll events (packed on x86-64), ioctls and fcntls by command, poll/select with signal masks.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::errno::{Errno, SysResult, EFAULT, EINVAL};
use crate::signal;
use crate::task::{Process, Thread};

/// Maps a guest path to the host path to use: /proc/self/exe shows the guest program, and
/// absolute paths that exist under the sysroot (-L) resolve there first, like QEMU.
pub fn remap(proc: &Process, p: &CStr) -> CString {
    let b = p.to_bytes();
    let pid = crate::host::getpid();
    if b == b"/proc/self/exe" || b == format!("/proc/{pid}/exe").as_bytes() {
        return CString::new(proc.exe_path.as_os_str().as_bytes()).unwrap_or_default();
    }
    if let Some(root) = &proc.opts.sysroot {
        if b.len() > 1 && b[0] == b'/' && !b.starts_with(b"/proc/") && !b.starts_with(b"/dev/") {
            let mut cand = root.as_os_str().as_bytes().to_vec();
            cand.extend_from_slice(b);
            let cand_path = Path::new(std::ffi::OsStr::from_bytes(&cand));
            if cand_path.symlink_metadata().is_ok() {
                if let Ok(c) = CString::new(cand) {
                    return c;
                }
            }
        }
    }
    p.to_owned()
}

pub fn guest_path(t: &Thread, addr: u64) -> Result<CString, Errno> {
    let p = t.proc.space.read_cstring(addr, 4096)?;
    Ok(remap(&t.proc, &p))
}

use crate::host::syscall6 as call;

/// Serves /proc/self/maps from the guest's mappings (the host's would show Tandem's own
/// address space), and /proc/self/cmdline from the guest's argv (the host's starts with
/// Tandem and its options): an in-memory file with the text, positioned at its start.
fn open_text(text: &[u8], flags: u64) -> SysResult {
    let cloexec = if flags & libc::O_CLOEXEC as u64 != 0 {
        libc::MFD_CLOEXEC as u64
    } else {
        0
    };
    let fd = call(
        libc::SYS_memfd_create,
        [c"proc".as_ptr() as u64, cloexec, 0, 0, 0, 0],
    )?;
    let r = call(
        libc::SYS_write,
        [fd, text.as_ptr() as u64, text.len() as u64, 0, 0, 0],
    )
    .and_then(|_| call(libc::SYS_lseek, [fd, 0, libc::SEEK_SET as u64, 0, 0, 0]));
    if let Err(e) = r {
        let _ = call(libc::SYS_close, [fd, 0, 0, 0, 0, 0]);
        return Err(e);
    }
    Ok(fd)
}

pub fn openat(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let raw = t.proc.space.read_cstring(a[1], 4096)?;
    let pid = crate::host::getpid();
    let rb = raw.as_bytes();
    let own = |name: &str| {
        rb == format!("/proc/self/{name}").as_bytes()
            || rb == format!("/proc/thread-self/{name}").as_bytes()
            || rb == format!("/proc/{pid}/{name}").as_bytes()
    };
    if own("maps") {
        return open_text(t.proc.space.maps_text().as_bytes(), a[2]);
    }
    if own("cmdline") {
        return open_text(&t.proc.cmdline, a[2]);
    }
    let p = remap(&t.proc, &raw);
    call(
        libc::SYS_openat,
        [a[0], p.as_ptr() as u64, a[2], a[3], 0, 0],
    )
}

pub fn readlinkat(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let raw = t.proc.space.read_cstring(a[1], 4096)?;
    let p = remap(&t.proc, &raw);
    if p.as_bytes() != raw.as_bytes() && p.as_bytes() == t.proc.exe_path.as_os_str().as_bytes() {
        let b = p.as_bytes();
        let n = b.len().min(a[3] as usize);
        t.write_guest(a[2], &b[..n])?;
        return Ok(n as u64);
    }
    let buf = t.proc.space.g2h(a[2], a[3])?;
    call(
        libc::SYS_readlinkat,
        [a[0], p.as_ptr() as u64, buf as u64, a[3], 0, 0],
    )
}

/// Converts a host `struct stat` to the asm-generic layout RISC-V uses (128 bytes).
fn stat_to_guest(s: &libc::stat) -> [u8; 128] {
    let mut b = [0u8; 128];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &s.st_dev.to_le_bytes());
    put(8, &s.st_ino.to_le_bytes());
    put(16, &s.st_mode.to_le_bytes());
    put(20, &(s.st_nlink as u32).to_le_bytes());
    put(24, &s.st_uid.to_le_bytes());
    put(28, &s.st_gid.to_le_bytes());
    put(32, &s.st_rdev.to_le_bytes());
    put(48, &s.st_size.to_le_bytes());
    put(56, &(s.st_blksize as i32).to_le_bytes());
    put(64, &s.st_blocks.to_le_bytes());
    put(72, &s.st_atime.to_le_bytes());
    put(80, &s.st_atime_nsec.to_le_bytes());
    put(88, &s.st_mtime.to_le_bytes());
    put(96, &s.st_mtime_nsec.to_le_bytes());
    put(104, &s.st_ctime.to_le_bytes());
    put(112, &s.st_ctime_nsec.to_le_bytes());
    b
}

fn empty_stat() -> libc::stat {
    // SAFETY: struct stat is plain data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

pub fn newfstatat(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let p = guest_path(t, a[1])?;
    let mut st = empty_stat();
    call(
        libc::SYS_newfstatat,
        [
            a[0],
            p.as_ptr() as u64,
            &mut st as *mut _ as u64,
            a[3],
            0,
            0,
        ],
    )?;
    t.write_guest(a[2], &stat_to_guest(&st))?;
    Ok(0)
}

pub fn fstat(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let mut st = empty_stat();
    call(
        libc::SYS_fstat,
        [a[0], &mut st as *mut _ as u64, 0, 0, 0, 0],
    )?;
    t.write_guest(a[1], &stat_to_guest(&st))?;
    Ok(0)
}

/// Size of the object an ioctl's argument points to, for the ioctls we pass through; `Some(0)`
/// means an integer argument. Terminal structures and `struct ifreq` (40 bytes: a 16-byte name
/// and a 24-byte union) have the same layout on both ABIs.
fn ioctl_arg_size(req: u64) -> Option<u64> {
    Some(match req {
        0x5401 => 36,                   // TCGETS (kernel struct termios)
        0x5402..=0x5404 => 36,          // TCSETS, TCSETSW, TCSETSF
        0x5413 | 0x5414 => 8,           // TIOCGWINSZ, TIOCSWINSZ
        0x540f | 0x5410 | 0x5429 => 4,  // TIOCGPGRP, TIOCSPGRP, TIOCGSID
        0x541b | 0x5421 | 0x5452 => 4,  // FIONREAD, FIONBIO, FIOASYNC
        0x5411 => 4,                    // TIOCOUTQ
        0x8004_5430 | 0x4004_5431 => 4, // TIOCGPTN, TIOCSPTLCK
        0x8901 | 0x8903 | 0x8905 => 4,  // FIOSETOWN, FIOGETOWN, SIOCATMARK
        // TCSBRK, TCXONC, TCFLSH, TIOCSCTTY, TIOCNOTTY, TCSBRKP, FIONCLEX, FIOCLEX, TIOCGPTPEER
        0x5409 | 0x540a | 0x540b | 0x540e | 0x5422 | 0x5425 | 0x5450 | 0x5451 | 0x5441 => 0,
        // SIOCGIFNAME, SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFMTU, SIOCGIFHWADDR, SIOCGIFINDEX
        0x8910 | 0x8913 | 0x8915 | 0x8921 | 0x8927 | 0x8933 => 40,
        _ => return None,
    })
}

pub fn ioctl(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let Some(size) = ioctl_arg_size(a[1]) else {
        log::debug!("unsupported ioctl {:#x} on fd {}", a[1], a[0]);
        return Err(Errno(libc::ENOTTY));
    };
    let arg = if size == 0 {
        a[2]
    } else {
        t.proc.space.g2h(a[2], size)? as u64
    };
    call(libc::SYS_ioctl, [a[0], a[1], arg, 0, 0, 0])
}

pub fn fcntl(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let arg = match a[1] as i32 {
        // F_GETLK, F_SETLK, F_SETLKW and the OFD variants take a struct flock (32 bytes on
        // both ABIs).
        5..=7 | 36..=38 => t.proc.space.g2h(a[2], 32)? as u64,
        0..=4 | 8..=11 | 1024..=1026 | 1030..=1034 => a[2],
        _ => return Err(EINVAL),
    };
    call(libc::SYS_fcntl, [a[0], a[1], arg, 0, 0, 0])
}

/// Builds host iovecs from a guest iovec array.
fn iovecs(t: &Thread, addr: u64, cnt: u64) -> Result<Vec<libc::iovec>, Errno> {
    if cnt > 1024 {
        return Err(EINVAL);
    }
    let mut raw = vec![0u8; cnt as usize * 16];
    t.proc.space.read(addr, &mut raw)?;
    raw.chunks_exact(16)
        .map(|c| {
            let base = u64::from_le_bytes(c[..8].try_into().unwrap_or([0; 8]));
            let len = u64::from_le_bytes(c[8..].try_into().unwrap_or([0; 8]));
            Ok(libc::iovec {
                iov_base: t.proc.space.g2h_opt(base, len)?.cast(),
                iov_len: len as usize,
            })
        })
        .collect()
}

fn vec_io(t: &mut Thread, nr: i64, a: &[u64; 6], with_offset: bool) -> SysResult {
    let v = iovecs(t, a[1], a[2])?;
    // pread/pwritev: offset (low, high) in a[3], a[4]; the *v2 variants add flags in a[5].
    let rest = if with_offset {
        [a[3], a[4], a[5]]
    } else {
        [0; 3]
    };
    let r = call(
        nr,
        [a[0], v.as_ptr() as u64, a[2], rest[0], rest[1], rest[2]],
    );
    if r == Err(EFAULT) {
        // A buffer page may be write-protected by the translator (it holds translated code):
        // release those pages and retry once, as `pass` does.
        let base = t.proc.space.guest_base() as usize;
        for io in &v {
            if !io.iov_base.is_null() && io.iov_len > 0 {
                t.invalidate((io.iov_base as usize - base) as u64, io.iov_len as u64);
            }
        }
        return call(
            nr,
            [a[0], v.as_ptr() as u64, a[2], rest[0], rest[1], rest[2]],
        );
    }
    r
}

pub fn readv(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    vec_io(t, libc::SYS_readv, a, false)
}
pub fn writev(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    vec_io(t, libc::SYS_writev, a, false)
}
pub fn preadv(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let nr = if t.cpu.x[17] == 286 {
        libc::SYS_preadv2
    } else {
        libc::SYS_preadv
    };
    vec_io(t, nr, a, true)
}
pub fn pwritev(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let nr = if t.cpu.x[17] == 287 {
        libc::SYS_pwritev2
    } else {
        libc::SYS_pwritev
    };
    vec_io(t, nr, a, true)
}

/// After a call that waited with a temporary signal mask was interrupted, the signal must be
/// delivered under that mask and the old one restored by sigreturn (as sigsuspend does).
fn interrupted_with_mask(t: &Thread, r: &SysResult, mask: Option<u64>, guest_mask: u64) {
    if let (Err(e), Some(_)) = (r, mask) {
        if *e == crate::errno::EINTR {
            let old = t.sig.mask.get();
            t.sig.mask.set(guest_mask);
            t.sig.suspend_restore.set(Some(old));
        }
    }
}

pub fn ppoll(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let sp = &t.proc.space;
    let fds = sp.g2h_opt(a[0], a[1].checked_mul(8).ok_or(EINVAL)?)?;
    let ts = sp.g2h_opt(a[2], 16)?;
    let gmask = if a[3] != 0 { sp.read_u64(a[3])? } else { 0 };
    let mask = signal::guest_sigset(t, a[3])?;
    let mp = mask.as_ref().map_or(0, |m| m as *const u64 as u64);
    let r = call(libc::SYS_ppoll, [fds as u64, a[1], ts as u64, mp, 8, 0]);
    interrupted_with_mask(t, &r, mask, gmask);
    r
}

pub fn pselect6(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let sp = &t.proc.space;
    if a[0] > 1024 {
        return Err(EINVAL);
    }
    let set_len = a[0].div_ceil(64) * 8;
    let r = sp.g2h_opt(a[1], set_len)? as u64;
    let w = sp.g2h_opt(a[2], set_len)? as u64;
    let e = sp.g2h_opt(a[3], set_len)? as u64;
    let ts = sp.g2h_opt(a[4], 16)? as u64;
    // The sixth argument points at { const sigset_t *ss; size_t ss_len }.
    let (mut gmask, mut mask) = (0, None);
    if a[5] != 0 {
        let ss = sp.read_u64(a[5])?;
        if ss != 0 {
            gmask = sp.read_u64(ss)?;
            mask = signal::guest_sigset(t, ss)?;
        }
    }
    let mp = mask.as_ref().map_or(0, |m| m as *const u64 as u64);
    let pair: [u64; 2] = [mp, 8];
    let pp = if mask.is_some() {
        pair.as_ptr() as u64
    } else {
        0
    };
    let res = call(libc::SYS_pselect6, [a[0], r, w, e, ts, pp]);
    interrupted_with_mask(t, &res, mask, gmask);
    res
}

pub fn epoll_ctl(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    // Guest struct epoll_event is { u32 events; u32 pad; u64 data }, the host's is packed.
    let mut ev = [0u8; 12];
    let evp = if a[3] != 0 {
        let events = t.proc.space.read_u32(a[3])?;
        let data = t.proc.space.read_u64(a[3] + 8)?;
        ev[..4].copy_from_slice(&events.to_le_bytes());
        ev[4..].copy_from_slice(&data.to_le_bytes());
        ev.as_ptr() as u64
    } else {
        0
    };
    call(libc::SYS_epoll_ctl, [a[0], a[1], a[2], evp, 0, 0])
}

pub fn epoll_pwait(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let max = a[2] as i32;
    if max <= 0 || max > 1 << 16 {
        return Err(EINVAL);
    }
    let mut host = vec![0u8; max as usize * 12];
    let gmask = if a[4] != 0 {
        t.proc.space.read_u64(a[4])?
    } else {
        0
    };
    let mask = signal::guest_sigset(t, a[4])?;
    let mp = mask.as_ref().map_or(0, |m| m as *const u64 as u64);
    let r = call(
        libc::SYS_epoll_pwait,
        [a[0], host.as_mut_ptr() as u64, a[2], a[3], mp, 8],
    );
    interrupted_with_mask(t, &r, mask, gmask);
    let n = r?;
    let mut out = vec![0u8; n as usize * 16];
    for i in 0..n as usize {
        out[i * 16..i * 16 + 4].copy_from_slice(&host[i * 12..i * 12 + 4]);
        out[i * 16 + 8..i * 16 + 16].copy_from_slice(&host[i * 12 + 4..i * 12 + 12]);
    }
    t.write_guest(a[1], &out).map_err(|_| EFAULT)?;
    Ok(n)
}
