//! Host FP exceptions as the slow-path test of inline FP arithmetic.
//!
//! An inline fast path (see `codegen::fastfp`) is only right when the operation raises
//! nothing but inexact. Rather than test every result, generated code runs with invalid,
//! divide-by-zero, overflow and underflow unmasked in MXCSR (`inexact::MXCSR_GUEST`): an
//! operation meeting one of them faults before writing its destination, the kernel delivers
//! SIGFPE, and the handler here resumes at that operation's slow path, which calls the
//! helper with the operands untouched. Each thread running generated code publishes the
//! table of (faulting instruction, slow path) host addresses of its code buffer while it runs
//! ([`activate`]).
//!
//! Rust code must never run with those exceptions unmasked: generated code switches MXCSR
//! back before calling helpers that may do FP arithmetic, and on every return to Rust. A
//! SIGFPE raised anywhere else is forwarded to the previous disposition (by default the
//! process dies, as it would without Tandem); one that was sent goes where the embedder says
//! ([`set_foreign`]).

use crate::sigchain;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

pub use crate::codegen::inexact::{MXCSR_GUEST, MXCSR_HOST};

thread_local! {
    /// The trap table of the code this thread is running: (instruction, slow path) host
    /// addresses, sorted by instruction.
    static TABLE: Cell<(*const (usize, usize), usize)> = const { Cell::new((std::ptr::null(), 0)) };
}

/// Keeps a trap table published for the current thread; dropping it restores the previous
/// one.
pub struct Active {
    prev: (*const (usize, usize), usize),
}

/// Publishes `table` (sorted by instruction address) for SIGFPEs on this thread for as long
/// as the returned guard lives. The table must not change meanwhile. Cheap enough for every
/// entry into generated code: the handler itself is installed once, by whoever sets up code
/// that runs unmasked ([`install_handler`]).
pub fn activate(table: &[(usize, usize)]) -> Active {
    let prev = TABLE.with(|t| t.replace((table.as_ptr(), table.len())));
    Active { prev }
}

impl Drop for Active {
    fn drop(&mut self) {
        TABLE.with(|t| t.set(self.prev));
    }
}

/// The slow path of the instruction at `rip` in the published table.
fn resume_point(rip: usize) -> Option<usize> {
    let (ptr, len) = TABLE.with(|t| t.get());
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `activate` published a live slice of this length, which its guard keeps
    // unchanged until it unpublishes it; only this thread reads it.
    let table = unsafe { std::slice::from_raw_parts(ptr, len) };
    let i = table.binary_search_by_key(&rip, |e| e.0).ok()?;
    Some(table[i].1)
}

/// MXCSR exception flags other than inexact (which holds the guest's deferred flag).
const MXCSR_TRAP_FLAGS: u32 = 0x1f;

/// What becomes of a SIGFPE that was sent (kill, tgkill) rather than raised by an
/// instruction: the embedder's choice, since it owns the signal's meaning (linux-user
/// mirrors the guest's disposition here).
#[derive(Clone, Copy)]
pub enum Foreign {
    /// The action installed before the translator's (by default: terminate).
    Previous,
    /// Dropped.
    Ignore,
    /// Handed to this `SA_SIGINFO` handler.
    Handler(extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)),
}

/// `Foreign` as one word for the handler: 0 previous, 1 ignore, else the handler's address.
static FOREIGN: AtomicUsize = AtomicUsize::new(0);

/// Sets what becomes of sent SIGFPEs (see [`Foreign`]).
pub fn set_foreign(f: Foreign) {
    install_handler();
    let word = match f {
        Foreign::Previous => 0,
        Foreign::Ignore => 1,
        Foreign::Handler(h) => h as *const () as usize,
    };
    FOREIGN.store(word, Ordering::SeqCst);
}

static mut PREV_FPE: libc::sigaction = sigchain::empty_action();

extern "C" fn on_fpe(sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut libc::c_void) {
    // SAFETY: the kernel passes valid siginfo and ucontext pointers to SA_SIGINFO handlers;
    // we only read and write the interrupted context's rip and saved MXCSR, and call the
    // previous handler the way the kernel would have.
    unsafe {
        let uc = &mut *(uctx as *mut libc::ucontext_t);
        let rip = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
        let prev = &*std::ptr::addr_of!(PREV_FPE);
        // Only a fault raised by an instruction can be ours, not a SIGFPE someone sent.
        if (*info).si_code <= 0 {
            match FOREIGN.load(Ordering::SeqCst) {
                0 => sigchain::forward(prev, sig, info, uctx, true),
                1 => {}
                h => {
                    let f: sigchain::Handler = std::mem::transmute(h);
                    f(sig, info, uctx);
                }
            }
            return;
        }
        if let Some(resume) = resume_point(rip) {
            if let Some(fp) = uc.uc_mcontext.fpregs.as_mut() {
                // The flags that caused the trap say nothing the slow path needs.
                fp.mxcsr &= !MXCSR_TRAP_FLAGS;
            }
            uc.uc_mcontext.gregs[libc::REG_RIP as usize] = resume as i64;
            return;
        }
        sigchain::forward(prev, sig, info, uctx, false);
    }
}

/// Installs the SIGFPE handler once per process.
pub fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: standard sigaction installation; the previous action is saved (once, before
        // the handler can run) so foreign SIGFPEs are forwarded.
        unsafe { sigchain::install(libc::SIGFPE, on_fpe, std::ptr::addr_of_mut!(PREV_FPE)) };
    });
}
