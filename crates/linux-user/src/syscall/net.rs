//! Socket calls that carry pointers inside structures (msghdr) or lengths behind pointers.

use crate::errno::SysResult;
use crate::task::Thread;

use crate::host::syscall6 as call;

pub fn getsockopt(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let sp = &t.proc.space;
    let len = if a[4] != 0 {
        sp.read_u32(a[4])? as u64
    } else {
        0
    };
    let val = sp.g2h_opt(a[3], len)? as u64;
    let lenp = sp.g2h_opt(a[4], 4)? as u64;
    call(libc::SYS_getsockopt, [a[0], a[1], a[2], val, lenp, 0])
}

/// Host copy of a guest msghdr (same layout on both ABIs, but every pointer relocated).
struct Msg {
    hdr: libc::msghdr,
    _iov: Vec<libc::iovec>,
}

fn msghdr(t: &Thread, addr: u64) -> Result<Msg, crate::errno::Errno> {
    let sp = &t.proc.space;
    let mut raw = [0u8; 56];
    sp.read(addr, &mut raw)?;
    let q = |o: usize| u64::from_le_bytes(raw[o..o + 8].try_into().unwrap_or([0; 8]));
    let (name, namelen) = (q(0), q(8) & 0xffff_ffff);
    let (iov, iovlen) = (q(16), q(24));
    let (ctl, ctllen) = (q(32), q(40));
    if iovlen > 1024 {
        return Err(crate::errno::EINVAL);
    }
    let mut v = Vec::with_capacity(iovlen as usize);
    for i in 0..iovlen {
        let base = sp.read_u64(iov + 16 * i)?;
        let len = sp.read_u64(iov + 16 * i + 8)?;
        v.push(libc::iovec {
            iov_base: sp.g2h_opt(base, len)?.cast(),
            iov_len: len as usize,
        });
    }
    // SAFETY: msghdr is plain data; all-zero is valid and every field is set below.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_name = sp.g2h_opt(name, namelen)?.cast();
    hdr.msg_namelen = namelen as u32;
    hdr.msg_iov = v.as_mut_ptr();
    hdr.msg_iovlen = iovlen as usize;
    hdr.msg_control = sp.g2h_opt(ctl, ctllen)?.cast();
    hdr.msg_controllen = ctllen as usize;
    Ok(Msg { hdr, _iov: v })
}

pub fn sendmsg(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let m = msghdr(t, a[1])?;
    call(
        libc::SYS_sendmsg,
        [a[0], &m.hdr as *const _ as u64, a[2], 0, 0, 0],
    )
}

pub fn recvmsg(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    let mut m = msghdr(t, a[1])?;
    let n = call(
        libc::SYS_recvmsg,
        [a[0], &mut m.hdr as *mut _ as u64, a[2], 0, 0, 0],
    )?;
    write_back(t, a[1], &m.hdr)?;
    Ok(n)
}

/// The kernel updated a received msghdr's lengths and flags: copy them to the guest's.
fn write_back(t: &Thread, addr: u64, h: &libc::msghdr) -> Result<(), crate::errno::Errno> {
    t.write_guest(addr + 8, &h.msg_namelen.to_le_bytes())?;
    t.write_guest(addr + 40, &(h.msg_controllen as u64).to_le_bytes())?;
    t.write_guest(addr + 48, &h.msg_flags.to_le_bytes())
}

/// struct mmsghdr: a msghdr (56 bytes) then `unsigned int msg_len`, 64 bytes per entry on
/// both ABIs.
const MMSG: u64 = 64;

/// sendmmsg/recvmmsg(fd, msgvec, vlen, flags[, timeout]): glibc's DNS resolver uses them.
fn mmsg(t: &mut Thread, a: &[u64; 6], recv: bool) -> SysResult {
    let vlen = a[2].min(1024);
    let mut msgs = Vec::with_capacity(vlen as usize);
    for i in 0..vlen {
        msgs.push(msghdr(t, a[1] + i * MMSG)?);
    }
    let mut host: Vec<libc::mmsghdr> = msgs
        .iter()
        .map(|m| libc::mmsghdr {
            msg_hdr: m.hdr,
            msg_len: 0,
        })
        .collect();
    let n = if recv {
        let ts = t.proc.space.g2h_opt(a[4], 16)? as u64;
        call(
            libc::SYS_recvmmsg,
            [a[0], host.as_mut_ptr() as u64, vlen, a[3], ts, 0],
        )?
    } else {
        call(
            libc::SYS_sendmmsg,
            [a[0], host.as_mut_ptr() as u64, vlen, a[3], 0, 0],
        )?
    };
    for (i, h) in host.iter().enumerate().take(n as usize) {
        let at = a[1] + i as u64 * MMSG;
        if recv {
            write_back(t, at, &h.msg_hdr)?;
        }
        t.write_guest(at + 56, &h.msg_len.to_le_bytes())?;
    }
    Ok(n)
}

pub fn sendmmsg(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    mmsg(t, a, false)
}

pub fn recvmmsg(t: &mut Thread, a: &[u64; 6]) -> SysResult {
    mmsg(t, a, true)
}
