//! `--irqchip userspace`: interrupt state in Tandem's 8259A model instead of KVM.
//!
//! Devices raise lines on the [`Pic`] from any thread. vCPU 0 (the only vCPU in this
//! mode) asks the PIC before every `KVM_RUN` whether its output is high and injects the
//! acknowledged vector when the guest can take it (see `vcpu_thread.rs`). When the
//! output rises on another thread, vCPU 0 must look again soon: it is woken if it
//! sleeps in `hlt`, and kicked out of `KVM_RUN` otherwise.

use std::sync::{Arc, Condvar, Mutex, Weak};

use devices::Pic;
use vm_core::bus::lock_mutex;

use crate::{signals, VmControl};

pub struct UserIrqchip {
    pic: Arc<Pic>,
    /// Guards the `hlt` sleep against a lost wake-up: the sleeper checks the PIC and
    /// waits under it, the waker notifies under it.
    sleep: Mutex<()>,
    wake: Condvar,
    /// vCPU 0's thread while it runs; cleared, under this lock, before the thread ends,
    /// so a kick never targets a thread that is gone.
    vcpu_thread: Mutex<Option<libc::pthread_t>>,
}

impl UserIrqchip {
    pub fn new() -> Arc<Self> {
        Arc::new_cyclic(|this: &Weak<Self>| {
            let this = this.clone();
            Self {
                pic: Pic::new(move || {
                    if let Some(chip) = this.upgrade() {
                        chip.output_rose();
                    }
                }),
                sleep: Mutex::new(()),
                wake: Condvar::new(),
                vcpu_thread: Mutex::new(None),
            }
        })
    }

    pub fn pic(&self) -> &Arc<Pic> {
        &self.pic
    }

    fn output_rose(&self) {
        self.wake_sleeper();
        let thread = lock_mutex(&self.vcpu_thread);
        if let Some(thread) = *thread {
            // SAFETY: pthread_self has no preconditions.
            if thread != unsafe { libc::pthread_self() } {
                // SAFETY: `thread` is vCPU 0's live thread: it removes itself from
                // `vcpu_thread`, under the lock held here, before it ends.
                unsafe { libc::pthread_kill(thread, signals::kick_signal()) };
            }
        }
    }

    /// Wakes vCPU 0 if it sleeps in `hlt` (an interrupt arrived, or the VM stops).
    pub fn wake_sleeper(&self) {
        let _guard = lock_mutex(&self.sleep);
        self.wake.notify_all();
    }

    /// vCPU 0's `hlt`: sleeps until the PIC has an interrupt for a guest that can take
    /// it (`interrupts_enabled`; with IF clear only the VM's end wakes a halted CPU),
    /// or the VM stops.
    pub fn wait_for_interrupt(&self, control: &VmControl, interrupts_enabled: bool) {
        let mut guard = lock_mutex(&self.sleep);
        while !(control.is_stopping() || interrupts_enabled && self.pic.has_interrupt()) {
            guard = self.wake.wait(guard).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Registers the calling thread as vCPU 0's until the returned guard is dropped.
    pub fn attach_vcpu_thread(self: &Arc<Self>) -> AttachedThread {
        // SAFETY: pthread_self has no preconditions.
        *lock_mutex(&self.vcpu_thread) = Some(unsafe { libc::pthread_self() });
        AttachedThread(self.clone())
    }
}

/// vCPU 0's thread, kickable while this lives.
pub struct AttachedThread(Arc<UserIrqchip>);

impl Drop for AttachedThread {
    fn drop(&mut self) {
        *lock_mutex(&self.0.vcpu_thread) = None;
    }
}
