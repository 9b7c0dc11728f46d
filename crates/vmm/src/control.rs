//! The VM's stop switch: whoever first decides the VM is over (a vCPU, a device, a
//! signal) records why, and the main thread is woken through an eventfd.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use vmm_sys_util::eventfd::EventFd;

use crate::ExitReason;

pub struct VmControl {
    reason: Mutex<Option<ExitReason>>,
    stopping: AtomicBool,
    wake: EventFd,
}

impl VmControl {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            reason: Mutex::new(None),
            stopping: AtomicBool::new(false),
            wake: EventFd::new(libc::EFD_NONBLOCK)?,
        })
    }

    /// Records `reason` unless the VM is already stopping; the first reason wins.
    pub fn stop(&self, reason: ExitReason) {
        let mut slot = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            log::debug!("VM stopping: {reason:?}");
            *slot = Some(reason);
            self.stopping.store(true, Ordering::SeqCst);
            // The eventfd counter cannot overflow from one write per VM.
            let _ = self.wake.write(1);
        }
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub fn reason(&self) -> Option<ExitReason> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Readable once the VM is stopping.
    pub fn wake_fd(&self) -> &EventFd {
        &self.wake
    }
}
