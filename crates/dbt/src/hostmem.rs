//! Fault-tolerant access to guest memory from Rust, and the host SIGSEGV/SIGBUS handler.
//!
//! Guest memory is host memory at `guest_base + addr` whose protections mirror the guest's,
//! so any access may fault. Rust code (the IR interpreter, instruction fetch, atomics) reaches
//! it only through the tiny assembly "probe" routines below; each has exactly one instruction
//! that touches guest memory and a fixup that returns an error code when it faults (the
//! technique kernels use for `copy_from_user`). Generated code faults are redirected to a
//! per-code-buffer fault stub that returns to the run loop. Nothing unwinds through Rust frames.

use crate::sigchain;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

std::arch::global_asm!(
    ".text",
    ".globl tandem_probe_ld1",
    "tandem_probe_ld1:",
    "xor eax, eax",
    "2: movzx ecx, byte ptr [rdi]",
    "mov [rsi], rcx",
    "ret",
    ".globl tandem_probe_ld2",
    "tandem_probe_ld2:",
    "xor eax, eax",
    "3: movzx ecx, word ptr [rdi]",
    "mov [rsi], rcx",
    "ret",
    ".globl tandem_probe_ld4",
    "tandem_probe_ld4:",
    "xor eax, eax",
    "4: mov ecx, dword ptr [rdi]",
    "mov [rsi], rcx",
    "ret",
    ".globl tandem_probe_ld8",
    "tandem_probe_ld8:",
    "xor eax, eax",
    "5: mov rcx, qword ptr [rdi]",
    "mov [rsi], rcx",
    "ret",
    ".globl tandem_probe_st1",
    "tandem_probe_st1:",
    "xor eax, eax",
    "6: mov byte ptr [rdi], sil",
    "ret",
    ".globl tandem_probe_st2",
    "tandem_probe_st2:",
    "xor eax, eax",
    "7: mov word ptr [rdi], si",
    "ret",
    ".globl tandem_probe_st4",
    "tandem_probe_st4:",
    "xor eax, eax",
    "8: mov dword ptr [rdi], esi",
    "ret",
    ".globl tandem_probe_st8",
    "tandem_probe_st8:",
    "xor eax, eax",
    "9: mov qword ptr [rdi], rsi",
    "ret",
    ".globl tandem_probe_cas4",
    "tandem_probe_cas4:",
    "mov rax, rsi",
    "10: lock cmpxchg dword ptr [rdi], edx",
    "mov [rcx], rax",
    "xor eax, eax",
    "ret",
    ".globl tandem_probe_cas8",
    "tandem_probe_cas8:",
    "mov rax, rsi",
    "11: lock cmpxchg qword ptr [rdi], rdx",
    "mov [rcx], rax",
    "xor eax, eax",
    "ret",
    // Tests writability without changing memory, atomically with respect to other writers.
    ".globl tandem_probe_wtest",
    "tandem_probe_wtest:",
    "xor eax, eax",
    "12: lock or byte ptr [rdi], 0",
    "ret",
    "13: mov eax, 1",
    "ret",
    ".section .data.rel.ro,\"aw\"",
    ".balign 8",
    ".globl tandem_probe_table",
    "tandem_probe_table:",
    ".quad 2b, 0, 3b, 0, 4b, 0, 5b, 0",
    ".quad 6b, 1, 7b, 1, 8b, 1, 9b, 1, 10b, 1, 11b, 1, 12b, 1",
    ".globl tandem_probe_fixup",
    "tandem_probe_fixup:",
    ".quad 13b",
    ".text",
);

extern "C" {
    fn tandem_probe_ld1(p: *const u8, out: *mut u64) -> u32;
    fn tandem_probe_ld2(p: *const u8, out: *mut u64) -> u32;
    fn tandem_probe_ld4(p: *const u8, out: *mut u64) -> u32;
    fn tandem_probe_ld8(p: *const u8, out: *mut u64) -> u32;
    fn tandem_probe_st1(p: *mut u8, v: u64) -> u32;
    fn tandem_probe_st2(p: *mut u8, v: u64) -> u32;
    fn tandem_probe_st4(p: *mut u8, v: u64) -> u32;
    fn tandem_probe_st8(p: *mut u8, v: u64) -> u32;
    fn tandem_probe_cas4(p: *mut u8, expect: u64, new: u64, old: *mut u64) -> u32;
    fn tandem_probe_cas8(p: *mut u8, expect: u64, new: u64, old: *mut u64) -> u32;
    fn tandem_probe_wtest(p: *mut u8) -> u32;
    static tandem_probe_table: [usize; 22];
    static tandem_probe_fixup: usize;
}

/// A fault taken while accessing guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostFault {
    /// Guest address.
    pub addr: u64,
    pub write: bool,
}

/// Bytes of inaccessible host address space the native backend needs on each side of guest
/// memory: generated code checks an access's base register against the guest limit and adds
/// the displacement in the host addressing mode, so an access a little outside
/// `[0, limit)` must fault instead of touching host memory (see `codegen::address`).
pub const GUEST_GUARD: u64 = 64 << 10;

/// Where guest memory is and how large the guest address space is. The host bytes
/// `[base - GUEST_GUARD, base)` and `[base + limit, base + limit + GUEST_GUARD)` must be
/// inaccessible for as long as code runs over it; a [`Reservation`] provides that.
#[derive(Clone, Copy, Debug)]
pub struct GuestMem {
    pub base: usize,
    pub limit: u64,
}

/// Host address space for a guest: `limit` bytes with [`GUEST_GUARD`] inaccessible bytes on
/// each side, unmapped on drop. Nothing is committed up front (`MAP_NORESERVE`).
#[derive(Debug)]
pub struct Reservation {
    start: usize,
    len: usize,
    limit: u64,
}

impl Reservation {
    /// Reserves the space; the guest part gets host protection `prot` (`libc::PROT_*`).
    pub fn new(limit: u64, prot: i32) -> std::io::Result<Reservation> {
        let guard = GUEST_GUARD as usize;
        let len = usize::try_from(limit)
            .ok()
            .and_then(|l| l.checked_add(2 * guard))
            .ok_or_else(|| std::io::Error::other("guest address space too large"))?;
        // SAFETY: a fresh anonymous mapping at a kernel-chosen address; it overlaps nothing.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let r = Reservation {
            start: p as usize,
            len,
            limit,
        };
        if prot != libc::PROT_NONE && limit > 0 {
            // SAFETY: the guest part of the mapping just made, which this value owns.
            let rc = unsafe { libc::mprotect((r.start + guard) as *mut _, limit as usize, prot) };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(r)
    }

    /// Host address of guest address 0.
    pub fn base(&self) -> usize {
        self.start + GUEST_GUARD as usize
    }

    pub fn mem(&self) -> GuestMem {
        GuestMem {
            base: self.base(),
            limit: self.limit,
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // SAFETY: the whole mapping made in `new`, owned by this value.
        unsafe { libc::munmap(self.start as *mut _, self.len) };
    }
}

#[derive(Clone, Copy)]
struct FaultRecord {
    host_addr: usize,
    rip: usize,
    write: bool,
}

/// libc `gregs` index of each x86 register number (rax=0 ... r15=15).
const GREG: [i32; 16] = [
    libc::REG_RAX,
    libc::REG_RCX,
    libc::REG_RDX,
    libc::REG_RBX,
    libc::REG_RSP,
    libc::REG_RBP,
    libc::REG_RSI,
    libc::REG_RDI,
    libc::REG_R8,
    libc::REG_R9,
    libc::REG_R10,
    libc::REG_R11,
    libc::REG_R12,
    libc::REG_R13,
    libc::REG_R14,
    libc::REG_R15,
];

thread_local! {
    /// Registers of generated code at its last fault: the general registers by x86 register
    /// number, then the low 64 bits of xmm0..xmm15.
    static FAULT_REGS: Cell<[u64; 32]> = const { Cell::new([0; 32]) };
    static LAST_FAULT: Cell<FaultRecord> = const {
        Cell::new(FaultRecord { host_addr: 0, rip: 0, write: false })
    };
}

impl GuestMem {
    fn host(&self, addr: u64, len: u64, write: bool) -> Result<usize, HostFault> {
        match addr.checked_add(len) {
            Some(end) if end <= self.limit => Ok(self.base + addr as usize),
            _ => Err(HostFault { addr, write }),
        }
    }

    fn fault(&self, write: bool) -> HostFault {
        let r = LAST_FAULT.with(|c| c.get());
        HostFault {
            addr: (r.host_addr as u64).wrapping_sub(self.base as u64),
            write,
        }
    }

    pub fn load(&self, addr: u64, size: u64) -> Result<u64, HostFault> {
        install_handler();
        let p = self.host(addr, size, false)? as *const u8;
        let mut out = 0u64;
        // SAFETY: `p` lies inside the guest reservation (bounds checked above); the probe
        // routine reads `size` bytes and reports a fault instead of crashing if the page is
        // not readable. `out` is a valid local.
        let st = unsafe {
            match size {
                1 => tandem_probe_ld1(p, &mut out),
                2 => tandem_probe_ld2(p, &mut out),
                4 => tandem_probe_ld4(p, &mut out),
                _ => tandem_probe_ld8(p, &mut out),
            }
        };
        if st != 0 {
            return Err(self.fault(false));
        }
        Ok(out)
    }

    pub fn store(&self, addr: u64, size: u64, v: u64) -> Result<(), HostFault> {
        install_handler();
        let p = self.host(addr, size, true)? as *mut u8;
        // SAFETY: as in `load`; the store only touches guest memory inside the reservation.
        let st = unsafe {
            match size {
                1 => tandem_probe_st1(p, v),
                2 => tandem_probe_st2(p, v),
                4 => tandem_probe_st4(p, v),
                _ => tandem_probe_st8(p, v),
            }
        };
        if st != 0 {
            return Err(self.fault(true));
        }
        Ok(())
    }

    /// Atomic compare-and-swap of 4 or 8 bytes; returns the old value.
    pub fn cmpxchg(&self, addr: u64, size: u64, expect: u64, new: u64) -> Result<u64, HostFault> {
        install_handler();
        let p = self.host(addr, size, true)? as *mut u8;
        let mut old = 0u64;
        // SAFETY: as in `load`; `lock cmpxchg` is atomic with respect to other host threads.
        let st = unsafe {
            if size == 4 {
                tandem_probe_cas4(p, expect, new, &mut old)
            } else {
                tandem_probe_cas8(p, expect, new, &mut old)
            }
        };
        if st != 0 {
            return Err(self.fault(true));
        }
        Ok(if size == 4 { old & 0xffff_ffff } else { old })
    }

    /// True if the guest page containing `addr` is currently writable on the host.
    pub fn is_writable(&self, addr: u64) -> bool {
        install_handler();
        match self.host(addr, 1, true) {
            // SAFETY: inside the reservation; `lock or 0` does not change memory.
            Ok(p) => unsafe { tandem_probe_wtest(p as *mut u8) == 0 },
            Err(_) => false,
        }
    }
}

/// Code regions whose faults are redirected: (start, end, fault stub).
const MAX_REGIONS: usize = 64;
static REGIONS: [[AtomicUsize; 3]; MAX_REGIONS] = [const {
    [
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ]
}; MAX_REGIONS];

/// Registers executable code `[start, end)`; faults there resume at `stub`. Returns the slot.
pub fn register_code_region(start: usize, end: usize, stub: usize) -> Option<usize> {
    install_handler();
    for (i, r) in REGIONS.iter().enumerate() {
        if r[0]
            .compare_exchange(0, start, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            r[2].store(stub, Ordering::SeqCst);
            r[1].store(end, Ordering::SeqCst);
            return Some(i);
        }
    }
    None
}

pub fn unregister_code_region(slot: usize) {
    let r = &REGIONS[slot];
    r[1].store(0, Ordering::SeqCst);
    r[2].store(0, Ordering::SeqCst);
    r[0].store(0, Ordering::SeqCst);
}

/// Register values of generated code at its last fault on this thread.
pub fn last_code_fault_regs() -> [u64; 32] {
    FAULT_REGS.with(|c| c.get())
}

/// The last fault taken by generated code on this thread: (host fault address, host rip, write).
pub fn last_code_fault() -> (usize, usize, bool) {
    let r = LAST_FAULT.with(|c| c.get());
    (r.host_addr, r.rip, r.write)
}

static mut PREV_SEGV: libc::sigaction = sigchain::empty_action();
static mut PREV_BUS: libc::sigaction = sigchain::empty_action();

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut libc::c_void) {
    // SAFETY: the kernel passes valid siginfo and ucontext pointers to SA_SIGINFO handlers;
    // we only read/write register slots of the interrupted context and our own statics.
    unsafe {
        let uc = &mut *(uctx as *mut libc::ucontext_t);
        let rip = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
        let host_addr = (*info).si_addr() as usize;
        // Page-fault error code bit 1: the access was a write.
        let err_write = uc.uc_mcontext.gregs[libc::REG_ERR as usize] & 2 != 0;
        let table = &*std::ptr::addr_of!(tandem_probe_table);
        for e in table.chunks(2) {
            if e[0] == rip {
                LAST_FAULT.with(|c| {
                    c.set(FaultRecord {
                        host_addr,
                        rip,
                        write: e[1] != 0,
                    })
                });
                uc.uc_mcontext.gregs[libc::REG_RIP as usize] = tandem_probe_fixup as i64;
                return;
            }
        }
        for r in REGIONS.iter() {
            let (s, e) = (r[0].load(Ordering::Acquire), r[1].load(Ordering::Acquire));
            if s != 0 && rip >= s && rip < e {
                let mut regs = [0u64; 32];
                for (i, g) in GREG.iter().enumerate() {
                    regs[i] = uc.uc_mcontext.gregs[*g as usize] as u64;
                }
                // The kernel always saves the FPU state for a signal on x86-64.
                if let Some(fp) = uc.uc_mcontext.fpregs.as_ref() {
                    for (i, x) in fp._xmm.iter().enumerate() {
                        regs[16 + i] = x.element[0] as u64 | (x.element[1] as u64) << 32;
                    }
                }
                FAULT_REGS.with(|c| c.set(regs));
                LAST_FAULT.with(|c| {
                    c.set(FaultRecord {
                        host_addr,
                        rip,
                        write: err_write,
                    })
                });
                uc.uc_mcontext.gregs[libc::REG_RIP as usize] = r[2].load(Ordering::Acquire) as i64;
                return;
            }
        }
        // Not ours: hand over to whatever was installed before, or die with the default action.
        let prev = if sig == libc::SIGBUS {
            &*std::ptr::addr_of!(PREV_BUS)
        } else {
            &*std::ptr::addr_of!(PREV_SEGV)
        };
        sigchain::forward(prev, sig, info, uctx, false);
    }
}

/// Installs the SIGSEGV/SIGBUS handler once per process.
pub fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: standard sigaction installation; the previous actions are saved (once, before
        // the handler can run) so foreign faults are forwarded.
        unsafe {
            sigchain::install(libc::SIGSEGV, on_fault, std::ptr::addr_of_mut!(PREV_SEGV));
            sigchain::install(libc::SIGBUS, on_fault, std::ptr::addr_of_mut!(PREV_BUS));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_survive_faults() {
        // SAFETY: reserving and protecting an anonymous mapping owned by this test.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                0x2000,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        } as usize;
        // SAFETY: second page of our own mapping.
        unsafe { libc::mprotect((base + 0x1000) as *mut _, 0x1000, libc::PROT_READ) };
        let m = GuestMem {
            base,
            limit: 0x2000,
        };
        m.store(8, 8, 0x1122334455667788).unwrap();
        assert_eq!(m.load(8, 4).unwrap(), 0x55667788);
        assert_eq!(m.load(0x1000, 8).unwrap(), 0);
        assert_eq!(
            m.store(0x1004, 4, 1),
            Err(HostFault {
                addr: 0x1004,
                write: true
            })
        );
        assert!(m.is_writable(0x10));
        assert!(!m.is_writable(0x1010));
        assert_eq!(
            m.load(0x1ffc, 8),
            Err(HostFault {
                addr: 0x1ffc,
                write: false
            })
        );
        assert_eq!(
            m.cmpxchg(8, 8, 0x1122334455667788, 5).unwrap(),
            0x1122334455667788
        );
        assert_eq!(m.load(8, 8).unwrap(), 5);
        // SAFETY: unmapping our own mapping.
        unsafe { libc::munmap(base as *mut _, 0x2000) };
    }
}
