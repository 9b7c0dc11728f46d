//! Syscall translation: a table from RISC-V (asm-generic) numbers to either a host syscall with
//! typed arguments (pointers are relocated by guest_base and bounds-checked, paths remapped into
//! the sysroot) or a hand-written handler where layouts or semantics differ.

mod fs;
mod mm;
mod net;
mod proc;
mod table;
mod vfork;

use std::ffi::CString;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use crate::errno::{Errno, SysResult, EFAULT, EINTR, ENOSYS};
use crate::signal::{SA_RESTART, SIG_DFL, SIG_IGN};
use crate::task::Thread;

/// How one argument is passed to the host and shown by --strace.
#[derive(Clone, Copy, Debug)]
pub enum A {
    /// Integer, shown in decimal.
    I,
    /// Integer, shown in hex (flags, addresses that are not dereferenced).
    X,
    /// Integer, shown in octal (modes).
    O,
    /// Pointer to a buffer whose byte length is argument n.
    Buf(u8),
    /// Pointer to an array: element count in argument n, element size m bytes.
    Arr(u8, u8),
    /// Nullable pointer to a fixed-size object whose layout is the same on both sides.
    P(u16),
    /// Path, remapped into the sysroot.
    Path,
    /// Nullable path.
    PathOpt,
    /// String passed unchanged (symlink targets, names).
    Str,
}

pub type Handler = fn(&mut Thread, &[u64; 6]) -> SysResult;

#[derive(Clone, Copy)]
pub enum Imp {
    /// Same semantics as the host syscall with this (x86-64) number.
    Pass(i64),
    Fn(Handler),
    /// Deliberately unsupported: -ENOSYS (glibc has fallbacks for all of these).
    NoSys,
}

pub struct Entry {
    pub nr: u16,
    pub name: &'static str,
    pub args: &'static [A],
    pub imp: Imp,
}

fn lookup(nr: u64) -> Option<&'static Entry> {
    static INDEX: OnceLock<Vec<Option<u16>>> = OnceLock::new();
    let idx = INDEX.get_or_init(|| {
        let mut v = vec![None; 512];
        for (i, e) in table::TABLE.iter().enumerate() {
            v[e.nr as usize] = Some(i as u16);
        }
        v
    });
    let i = (*idx.get(nr as usize)?)?;
    Some(&table::TABLE[i as usize])
}

/// Syscalls that Linux restarts after a handler with SA_RESTART (ERESTARTSYS ones).
fn restartable(nr: u64) -> bool {
    matches!(
        nr,
        25 | 29
            | 32
            | 56
            | 63
            | 64
            | 65
            | 66
            | 67
            | 68
            | 71
            | 95
            | 202
            | 203
            | 206
            | 207
            | 211
            | 212
            | 242
            | 260
            | 278
    )
}

/// True if the signals now pending all want interrupted syscalls restarted.
fn should_restart(t: &Thread) -> bool {
    let pending = t.sig.pending.load(Ordering::Acquire) & !t.sig.mask.get();
    let acts = t.proc.actions.lock().unwrap_or_else(|e| e.into_inner());
    (1..=64)
        .filter(|s| pending & (1u64 << (s - 1)) != 0)
        .all(|s| {
            let a = acts[s];
            a.handler == SIG_IGN || a.handler == SIG_DFL || a.flags & SA_RESTART != 0
        })
}

/// Handles the ecall at `t.cpu.pc`.
pub fn dispatch(t: &mut Thread) {
    let nr = t.cpu.x[17];
    // A signal that arrived while the block leading to this ecall ran is delivered first, as
    // if it had arrived just before the ecall (which runs again after the handler): otherwise a
    // blocking syscall could sleep with the signal pending. rt_sigreturn must run to restore
    // the mask.
    if nr != 139 && t.sig.pending.load(Ordering::Acquire) & !t.sig.mask.get() != 0 {
        return;
    }
    t.publish_stats();
    let a = [
        t.cpu.x[10],
        t.cpu.x[11],
        t.cpu.x[12],
        t.cpu.x[13],
        t.cpu.x[14],
        t.cpu.x[15],
    ];
    let entry = lookup(nr);
    let trace = t.proc.opts.strace.then(|| format_call(t, nr, entry, &a));
    if let Some(s) = &trace {
        // Calls that may not return are printed before running.
        if matches!(nr, 93 | 94 | 221) {
            trace_line(format!("{} {s}\n", t.tid));
        }
    }
    let r = match entry.map(|e| e.imp) {
        Some(Imp::Pass(host)) => pass(t, host, entry.map_or(&[], |e| e.args), &a),
        Some(Imp::Fn(f)) => f(t, &a),
        Some(Imp::NoSys) | None => Err(ENOSYS),
    };
    if let Some(s) = trace {
        trace_line(format!("{} {s} = {}\n", t.tid, format_ret(&r)));
    }
    if t.regs_replaced {
        t.regs_replaced = false;
        return;
    }
    if r == Err(EINTR) && restartable(nr) && should_restart(t) {
        // Leave pc on the ecall and a0 untouched: it runs again after the handler.
        return;
    }
    t.cpu.x[10] = match r {
        Ok(v) => v,
        Err(e) => (-(e.0 as i64)) as u64,
    };
    t.cpu.pc = t.cpu.pc.wrapping_add(4);
}

/// Runs a host syscall, relocating arguments as the table says.
fn pass(t: &mut Thread, host: i64, kinds: &[A], a: &[u64; 6]) -> SysResult {
    let sp = &t.proc.space;
    let mut h = [0u64; 6];
    let mut keep: Vec<CString> = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        h[i] = match *k {
            A::I | A::X | A::O => a[i],
            A::Buf(n) => sp.g2h_opt(a[i], a[n as usize])? as u64,
            A::Arr(n, m) => {
                let len = a[n as usize].checked_mul(m as u64).ok_or(EFAULT)?;
                sp.g2h_opt(a[i], len)? as u64
            }
            A::P(size) => sp.g2h_opt(a[i], size as u64)? as u64,
            A::Path | A::PathOpt | A::Str if a[i] == 0 => {
                if matches!(k, A::PathOpt) {
                    0
                } else {
                    return Err(EFAULT);
                }
            }
            A::Path | A::PathOpt => {
                let c = fs::guest_path(t, a[i])?;
                keep.push(c);
                keep.last().map_or(0, |c| c.as_ptr() as u64)
            }
            A::Str => {
                keep.push(sp.read_cstring(a[i], 4096)?);
                keep.last().map_or(0, |c| c.as_ptr() as u64)
            }
        };
    }
    let call = || {
        // SAFETY: every pointer argument was relocated into the guest reservation and
        // bounds-checked (or points at a CString we own in `keep`); integers pass unchanged. The
        // kernel validates page access itself and returns EFAULT.
        unsafe { libc::syscall(host, h[0], h[1], h[2], h[3], h[4], h[5]) }
    };
    let r = call();
    if r == -1 && Errno::last() == EFAULT {
        // Maybe the translator write-protected a page of an output buffer to catch
        // self-modifying code: drop those translations (which unprotects) and retry once.
        for (i, k) in kinds.iter().enumerate() {
            let len = match *k {
                A::Buf(n) => a[n as usize],
                A::Arr(n, m) => a[n as usize].saturating_mul(m as u64),
                A::P(size) => size as u64,
                _ => continue,
            };
            if a[i] != 0 && len != 0 {
                t.invalidate(a[i], len);
            }
        }
        return crate::errno::host_ret(call());
    }
    crate::errno::host_ret(r)
}

/// One write per line so lines of concurrent threads and processes do not interleave.
fn trace_line(line: String) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(line.as_bytes());
}

fn format_call(t: &Thread, nr: u64, e: Option<&Entry>, a: &[u64; 6]) -> String {
    let Some(e) = e else {
        return format!("Unknown syscall {nr}");
    };
    let args: Vec<String> = e
        .args
        .iter()
        .enumerate()
        .map(|(i, k)| match k {
            A::I => format!("{}", a[i] as i64),
            A::O => format!("0{:o}", a[i]),
            A::Path | A::PathOpt | A::Str if a[i] != 0 => {
                match t.proc.space.read_cstring(a[i], 256) {
                    Ok(s) => format!("{:?}", s.to_string_lossy()),
                    Err(_) => format!("{:#x}", a[i]),
                }
            }
            _ => format!("{:#x}", a[i]),
        })
        .collect();
    format!("{}({})", e.name, args.join(","))
}

fn format_ret(r: &SysResult) -> String {
    match r {
        Ok(v) if *v > 0xffff => format!("{v:#x}"),
        Ok(v) => format!("{v}"),
        Err(e) => format!(
            "-1 errno={} ({})",
            e.0,
            std::io::Error::from_raw_os_error(e.0)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sane() {
        let mut seen = std::collections::HashSet::new();
        for e in table::TABLE {
            assert!(e.nr < 512, "{}", e.name);
            assert!(seen.insert(e.nr), "duplicate {} ({})", e.nr, e.name);
            assert!(e.args.len() <= 6, "{}", e.name);
            for k in e.args {
                if let A::Buf(n) | A::Arr(n, _) = k {
                    assert!((*n as usize) < e.args.len(), "{}", e.name);
                }
            }
        }
        assert_eq!(lookup(64).map(|e| e.name), Some("write"));
        assert!(lookup(9999).is_none());
    }
}
