//! The SIGFPE handler behind inline FP arithmetic (`dbt::fptrap`), on a hand-written
//! instruction: a division by zero with the exception unmasked resumes at the slow path the
//! published table names, with the exception flags cleared and inexact kept; a SIGFPE that
//! did not come from such an instruction goes to the handler installed before.

use std::sync::atomic::{AtomicI32, Ordering};

// `tandem_fpt_run(mxcsr: *const u32) -> u64`: runs `1.0 / 0.0` under `*mxcsr` and returns
// 1 if the division completed, or 2 | (MXCSR at the slow path << 8) if it resumed at
// `tandem_fpt_slow`. Restores the caller's MXCSR.
std::arch::global_asm!(
    ".globl tandem_fpt_run",
    ".globl tandem_fpt_insn",
    ".globl tandem_fpt_slow",
    "tandem_fpt_run:",
    "sub rsp, 24",
    "stmxcsr [rsp]",
    "ldmxcsr [rdi]",
    "xorpd xmm1, xmm1",
    "mov rax, 0x3ff0000000000000",
    "movq xmm0, rax",
    "tandem_fpt_insn:",
    "divsd xmm0, xmm1",
    "mov eax, 1",
    "jmp 2f",
    "tandem_fpt_slow:",
    "stmxcsr [rsp + 8]",
    "mov eax, [rsp + 8]",
    "shl rax, 8",
    "or rax, 2",
    "2:",
    "ldmxcsr [rsp]",
    "add rsp, 24",
    "ret",
);

extern "C" {
    fn tandem_fpt_run(mxcsr: *const u32) -> u64;
    static tandem_fpt_insn: u8;
    static tandem_fpt_slow: u8;
}

static FOREIGN: AtomicI32 = AtomicI32::new(0);

extern "C" fn foreign_handler(sig: libc::c_int) {
    FOREIGN.store(sig, Ordering::SeqCst);
}

#[test]
fn fp_exceptions_resume_at_their_slow_path() {
    // One test: the handler is installed once per process, after the foreign one.
    // SAFETY: installing a plain handler for SIGFPE in this test process.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = foreign_handler as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGFPE, &sa, std::ptr::null_mut()), 0);
    }
    dbt::fptrap::install_handler();
    // Addresses of the labels in the assembly above.
    let (insn, slow) = (
        std::ptr::addr_of!(tandem_fpt_insn) as usize,
        std::ptr::addr_of!(tandem_fpt_slow) as usize,
    );
    let guest = dbt::fptrap::MXCSR_GUEST as u32;
    let host = dbt::fptrap::MXCSR_HOST as u32;
    let table = [(insn, slow)];
    {
        let _active = dbt::fptrap::activate(&table);
        // Masked, the division completes (to infinity) without a trap.
        // SAFETY: the assembly only touches its own stack slots, xmm0/xmm1 and MXCSR.
        assert_eq!(unsafe { tandem_fpt_run(&host) }, 1);
        // Unmasked, it traps and resumes at the slow path: divide-by-zero cleared, the
        // inexact flag (the guest's deferred one) kept.
        let with_pe = guest | 0x20;
        // SAFETY: as above.
        let r = unsafe { tandem_fpt_run(&with_pe) };
        assert_eq!(r & 0xff, 2, "the division should have trapped");
        let at_slow = (r >> 8) as u32;
        assert_eq!(at_slow & 0x1f, 0, "exception flags left set: {at_slow:#x}");
        assert_eq!(at_slow & 0x20, 0x20, "inexact flag lost: {at_slow:#x}");
    }
    // A SIGFPE someone sent is not ours.
    assert_eq!(FOREIGN.load(Ordering::SeqCst), 0);
    // SAFETY: raising a signal with a handler installed.
    unsafe { libc::raise(libc::SIGFPE) };
    assert_eq!(FOREIGN.load(Ordering::SeqCst), libc::SIGFPE);
}
