//! Memory syscalls: everything stays inside the guest reservation (see `space.rs`), and
//! translations of code that changes or disappears are dropped.

use crate::errno::{host_ret, SysResult, EINVAL};
use crate::space::{Backing, PAGE};
use crate::task::Thread;

const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_TYPE: u64 = 0x0f;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

pub fn mmap(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let (addr, len, prot, flags, fd, off) = (a[0], a[1], a[2] as u32, a[3], a[4] as i32, a[5]);
    if !off.is_multiple_of(PAGE) || prot & !7 != 0 {
        return Err(EINVAL);
    }
    let ty = flags & MAP_TYPE;
    if ty != MAP_SHARED && ty != MAP_PRIVATE && ty != 3 {
        return Err(EINVAL);
    }
    let shared = ty != MAP_PRIVATE;
    let backing = if flags & MAP_ANONYMOUS != 0 {
        Backing::Anon { shared }
    } else {
        Backing::File {
            fd,
            offset: off,
            shared,
        }
    };
    let fixed = flags & MAP_FIXED != 0;
    let at = t.proc.space.mmap(
        addr,
        len,
        prot,
        fixed,
        flags & MAP_FIXED_NOREPLACE != 0,
        backing,
    )?;
    if fixed {
        t.invalidate(at, len);
    }
    Ok(at)
}

pub fn munmap(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    t.invalidate(a[0], a[1]);
    t.proc.space.munmap(a[0], a[1])?;
    Ok(0)
}

pub fn mprotect(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    if a[2] & !7 != 0 {
        return Err(EINVAL);
    }
    t.invalidate(a[0], a[1]);
    t.proc.space.mprotect(a[0], a[1], a[2] as u32)?;
    // Again now that the protection changed: another thread may have translated code from
    // the range in between and recorded its old write permission (see `smc::watch_page`).
    t.invalidate(a[0], a[1]);
    Ok(0)
}

pub fn brk(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    Ok(t.proc.space.brk(a[0]))
}

pub fn mremap(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    const MAYMOVE: u64 = 1;
    const FIXED: u64 = 2;
    let (old, old_len, new_len, flags) = (a[0], a[1], a[2], a[3]);
    if flags & !3 != 0 || (flags & FIXED != 0 && flags & MAYMOVE == 0) {
        return Err(EINVAL);
    }
    t.invalidate(old, old_len);
    let fixed = (flags & FIXED != 0).then_some(a[4]);
    t.proc
        .space
        .mremap(old, old_len, new_len, flags & MAYMOVE != 0, fixed)
}

pub fn madvise(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    if !a[0].is_multiple_of(PAGE) {
        return Err(EINVAL);
    }
    let p = t.proc.space.g2h(a[0], a[1])?;
    // SAFETY: the range lies inside the guest reservation; advice cannot touch host memory.
    host_ret(unsafe { libc::madvise(p.cast(), a[1] as usize, a[2] as i32) } as i64)
}

pub fn flush_icache(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let len = a[1].saturating_sub(a[0]).max(1);
    t.invalidate(a[0], len);
    Ok(0)
}
