//! Getting a vCPU out of `KVM_RUN` from another thread, without losing the request.
//!
//! A signal alone is racy: if it lands after the vCPU thread last looked at its work but
//! before it entered `KVM_RUN`, the handler runs in user space and the guest then runs
//! on until some unrelated exit. So the handler also sets the thread's `kvm_run`
//! `immediate_exit` flag: a `KVM_RUN` entered after that returns `EINTR` at once, and
//! [`crate::Vcpu::run`] clears the flag again. This is the protocol the KVM API
//! documentation describes for `immediate_exit`.
//!
//! The thread finds its `kvm_run` through a thread-local pointer, set by
//! [`Vcpu::bind_to_thread`] for as long as the returned [`BoundVcpu`] lives.

use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr;

use kvm_bindings::kvm_run;

use crate::Vcpu;

thread_local! {
    // Const-initialised and without a destructor, so reading it is a plain TLS load:
    // safe to do from a signal handler.
    static BOUND_RUN: Cell<*mut kvm_run> = const { Cell::new(ptr::null_mut()) };
}

/// Called from the kick signal's handler: makes this thread's next (or current)
/// `KVM_RUN` return. Async-signal-safe: one TLS load and one byte store.
pub fn on_kick_signal() {
    let run = BOUND_RUN.with(Cell::get);
    if !run.is_null() {
        // SAFETY: the pointer is this thread's bound vCPU's `kvm_run` mapping, which
        // lives until the `BoundVcpu` is dropped, and the drop clears the pointer first
        // (on this same thread: `BoundVcpu` is not `Send`). The kernel reads the byte at
        // the next KVM_RUN; a volatile store keeps the compiler from dropping it.
        unsafe { ptr::write_volatile(ptr::addr_of_mut!((*run).immediate_exit), 1) };
    }
}

/// A vCPU bound to the thread that runs it, so a kick signal to that thread reaches
/// its `KVM_RUN`. Not `Send`: it must be dropped where it was bound.
pub struct BoundVcpu {
    vcpu: Vcpu,
    run: *mut kvm_run,
    _not_send: PhantomData<*const ()>,
}

impl Vcpu {
    /// Binds this vCPU to the calling thread (one vCPU per thread).
    pub fn bind_to_thread(mut self) -> BoundVcpu {
        let run: *mut kvm_run = self.fd.get_kvm_run();
        BOUND_RUN.with(|bound| bound.set(run));
        BoundVcpu {
            vcpu: self,
            run,
            _not_send: PhantomData,
        }
    }
}

impl Drop for BoundVcpu {
    fn drop(&mut self) {
        // Runs before the vCPU (and its kvm_run mapping) is dropped.
        BOUND_RUN.with(|bound| {
            if bound.get() == self.run {
                bound.set(ptr::null_mut());
            }
        });
    }
}

impl Deref for BoundVcpu {
    type Target = Vcpu;
    fn deref(&self) -> &Vcpu {
        &self.vcpu
    }
}

impl DerefMut for BoundVcpu {
    fn deref_mut(&mut self) -> &mut Vcpu {
        &mut self.vcpu
    }
}
