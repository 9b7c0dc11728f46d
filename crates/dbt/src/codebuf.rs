//! Executable memory that is never writable and executable through the same mapping.
//!
//! One memfd is mapped twice: a read-write view where code is emitted and patched, and a
//! read-execute view from which it runs. Neither mapping is ever W+X.
//!
//! fork(): both views are shared mappings, so a forked child would see every later write of
//! its parent and the other way round. Instead of giving the child an empty buffer (and
//! translating everything again), the forking thread [`freezes`](CodeBuf::freeze) its
//! buffer just before fork(): from then on neither process writes that memfd. The first
//! process (parent or child) that needs to write copies the emitted bytes into a memfd of
//! its own and maps it over both views at the same addresses, so every code address already
//! handed out (chained jumps, the jump cache, the fault-region table) stays valid. A child
//! that execs or exits before writing never copies anything.
//!
//! Memory: a page mapped in both views counts twice in the process's RSS, though it is one
//! page. Code is written once, at the end, so each time the buffer grows by a chunk the write
//! view lets go of the pages before the block being written (`MADV_DONTNEED` on a shared
//! mapping only unmaps them: the memfd keeps the bytes, the execute view keeps running them).
//! A later chain patch there maps its page in again, until the next trim.

use std::io;

pub struct CodeBuf {
    rw: *mut u8,
    rx: *mut u8,
    size: usize,
    used: usize,
    /// The memfd may be shared with a forked process: copy it before the next write.
    frozen: bool,
    /// Both views are mapped in up to here (see [`CodeBuf::prefault`]).
    prefaulted: usize,
    /// The kernel cannot prefault (MADV_POPULATE_* arrived in Linux 5.14): pages fault in
    /// one by one as before.
    no_prefault: bool,
}

/// How far ahead of the emitted code both views are mapped in at once: as far as has been
/// written so far, within these bounds (a small program's whole code fits the first chunk).
const PREFAULT_MIN: usize = 32 << 10;
const PREFAULT_MAX: usize = 256 << 10;
const MADV_POPULATE_READ: libc::c_int = 22;
const MADV_POPULATE_WRITE: libc::c_int = 23;

// SAFETY: the buffer is plain memory owned by this struct; callers serialise mutation
// through `&mut self`.
unsafe impl Send for CodeBuf {}

/// A new memfd of `size` bytes (the pages are allocated as they are first written).
fn new_memfd(size: usize) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscalls; the fd is owned by the returned value from here on.
    let fd = unsafe {
        let fd = libc::memfd_create(c"tandem-code".as_ptr(), libc::MFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        std::os::fd::OwnedFd::from_raw_fd(fd)
    };
    use std::os::fd::AsRawFd;
    // SAFETY: resizing the memfd we own.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

impl CodeBuf {
    pub fn new(size: usize) -> io::Result<CodeBuf> {
        use std::os::fd::IntoRawFd;
        let size = (size + 4095) & !4095;
        let fd = new_memfd(size)?.into_raw_fd();
        // SAFETY: plain syscalls; every result is checked, and the fd is closed once both
        // views exist (the mappings keep the memory alive).
        unsafe {
            let rw = libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            let rx = libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_SHARED,
                fd,
                0,
            );
            libc::close(fd);
            if rw == libc::MAP_FAILED || rx == libc::MAP_FAILED {
                let e = io::Error::last_os_error();
                if rw != libc::MAP_FAILED {
                    libc::munmap(rw, size);
                }
                if rx != libc::MAP_FAILED {
                    libc::munmap(rx, size);
                }
                return Err(e);
            }
            Ok(CodeBuf {
                rw: rw as *mut u8,
                rx: rx as *mut u8,
                size,
                used: 0,
                frozen: false,
                prefaulted: 0,
                no_prefault: false,
            })
        }
    }

    /// Stops writing to the current memfd: call it just before fork() (see the module
    /// comment). Cheap: the copy is made only if and when this process writes again.
    pub fn freeze(&mut self) {
        self.frozen = true;
    }

    /// Whether the next write must first copy the buffer (it may be shared after a fork).
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Makes the buffer this process's own again after [`freeze`](Self::freeze): copies
    /// the emitted bytes into a new memfd and maps it over both views, at the same
    /// addresses. On error the buffer stays frozen (and must not be written).
    pub fn unfreeze(&mut self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        if !self.frozen {
            return Ok(());
        }
        let fd = new_memfd(self.size)?;
        let mut done = 0;
        while done < self.used {
            // SAFETY: reads [done, used) of our own RW view, which nobody writes while the
            // buffer is frozen; the kernel copies it into the new memfd.
            let n = unsafe {
                libc::pwrite(
                    fd.as_raw_fd(),
                    self.rw.add(done) as *const libc::c_void,
                    self.used - done,
                    done as libc::off_t,
                )
            };
            if n <= 0 {
                let e = io::Error::last_os_error();
                return Err(if n == 0 {
                    io::ErrorKind::WriteZero.into()
                } else {
                    e
                });
            }
            done += n as usize;
        }
        for (view, prot) in [
            (self.rw, libc::PROT_READ | libc::PROT_WRITE),
            (self.rx, libc::PROT_READ | libc::PROT_EXEC),
        ] {
            // SAFETY: replaces one of our own two views (same address and size) with the
            // same range of the new memfd; MAP_FIXED swaps it atomically. No generated code
            // runs meanwhile: the buffer is only changed from Rust, between executions.
            let p = unsafe {
                libc::mmap(
                    view as *mut libc::c_void,
                    self.size,
                    prot,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    fd.as_raw_fd(),
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                // A failed MAP_FIXED may already have unmapped the old view: the caller
                // stops using this buffer (it stays frozen).
                return Err(io::Error::last_os_error());
            }
        }
        self.frozen = false;
        // The copy wrote the emitted bytes through the file, not the views.
        self.prefaulted = 0;
        Ok(())
    }

    pub fn used(&self) -> usize {
        self.used
    }
    pub fn capacity(&self) -> usize {
        self.size
    }
    /// Executable address of offset `off`.
    pub fn exec_addr(&self, off: usize) -> usize {
        self.rx as usize + off
    }
    pub fn exec_range(&self) -> (usize, usize) {
        (self.rx as usize, self.rx as usize + self.size)
    }

    /// Appends `code` (aligned to 16); returns its offset, or None when full.
    pub fn append(&mut self, code: &[u8]) -> Option<usize> {
        assert!(!self.frozen, "write to a frozen code buffer");
        let off = (self.used + 15) & !15;
        if off + code.len() > self.size {
            return None;
        }
        self.prefault(off, off + code.len());
        // SAFETY: [off, off+len) is inside the RW view (checked above) and `code` is a
        // separate Rust slice.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), self.rw.add(off), code.len()) };
        self.used = off + code.len();
        Some(off)
    }

    /// Atomically rewrites the 4-byte aligned field at `off` (a jump displacement).
    pub fn patch_u32(&mut self, off: usize, v: u32) {
        assert!(
            off.is_multiple_of(4) && off + 4 <= self.used && !self.frozen,
            "bad patch offset {off} (or frozen buffer)"
        );
        // SAFETY: aligned, inside the emitted part of the RW view; an aligned 4-byte store is
        // atomic on x86, so a thread executing the jump sees the old or the new target.
        unsafe {
            (*(self.rw.add(off) as *const std::sync::atomic::AtomicU32))
                .store(v, std::sync::atomic::Ordering::Release)
        };
    }

    /// Maps both views in, a chunk at a time, before code up to `end` is written: the
    /// memfd's pages otherwise fault in one by one, twice each (written through one view,
    /// executed through the other), a tenth of a large program's start-up. Best effort.
    /// At the same time the write view lets go of the pages before `start` (see the module
    /// comment).
    fn prefault(&mut self, start: usize, end: usize) {
        if end <= self.prefaulted || self.no_prefault {
            return;
        }
        let from = self.prefaulted & !4095;
        let chunk = self.used.clamp(PREFAULT_MIN, PREFAULT_MAX);
        let to = (end + chunk).min(self.size) & !4095;
        if to <= from {
            return;
        }
        for (view, advice) in [
            (self.rw, MADV_POPULATE_WRITE),
            (self.rx, MADV_POPULATE_READ),
        ] {
            // SAFETY: advice on a page-aligned range inside our own mapping; populating
            // changes no contents.
            let r =
                unsafe { libc::madvise(view.add(from) as *mut libc::c_void, to - from, advice) };
            if r != 0 {
                self.no_prefault = true;
                return;
            }
        }
        self.prefaulted = to;
        let written = start & !4095;
        if written > 0 {
            // SAFETY: advice on a page-aligned range of our own shared mapping: it unmaps the
            // pages from this view only; the memfd keeps their contents.
            unsafe { libc::madvise(self.rw as *mut libc::c_void, written, libc::MADV_DONTNEED) };
        }
    }

    /// Forgets all code (callers must guarantee no thread is executing it). Prefaulting, and
    /// with it the write view's trim, start over from `keep`.
    pub fn reset(&mut self, keep: usize) {
        self.used = keep;
        self.prefaulted = self.prefaulted.min(keep & !4095);
    }
}

impl Drop for CodeBuf {
    fn drop(&mut self) {
        // SAFETY: unmapping the two views this struct created.
        unsafe {
            libc::munmap(self.rw as *mut libc::c_void, self.size);
            libc::munmap(self.rx as *mut libc::c_void, self.size);
        }
    }
}
