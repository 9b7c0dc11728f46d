//! One host thread per vCPU: enter the guest, serve the exit, repeat until the VM stops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kvm::{ExitHandler, Vcpu, VcpuExit};
use vm_core::Bus;

use crate::{ExitReason, VmControl};

/// The port and MMIO buses as the vCPU's exit handler.
pub struct IoBuses {
    pub pio: Bus,
    pub mmio: Bus,
}

impl IoBuses {
    /// KVM hands `rep ins/outs` over as one buffer of count * size bytes; anything that
    /// is not a single 1/2/4/8-byte access is served byte by byte.
    fn split(data_len: usize) -> usize {
        if matches!(data_len, 1 | 2 | 4 | 8) {
            data_len
        } else {
            1
        }
    }
}

impl ExitHandler for IoBuses {
    fn pio_read(&self, port: u16, data: &mut [u8]) {
        let step = Self::split(data.len());
        for chunk in data.chunks_mut(step) {
            if !self.pio.read(u64::from(port), chunk) {
                log::trace!("unhandled port read {port:#x}/{}", chunk.len());
            }
        }
    }
    fn pio_write(&self, port: u16, data: &[u8]) {
        let step = Self::split(data.len());
        for chunk in data.chunks(step) {
            if !self.pio.write(u64::from(port), chunk) {
                log::trace!("unhandled port write {port:#x} {chunk:x?}");
            }
        }
    }
    fn mmio_read(&self, addr: u64, data: &mut [u8]) {
        if !self.mmio.read(addr, data) {
            log::debug!("unhandled MMIO read {addr:#x}/{}", data.len());
        }
    }
    fn mmio_write(&self, addr: u64, data: &[u8]) {
        if !self.mmio.write(addr, data) {
            log::debug!("unhandled MMIO write {addr:#x} {data:x?}");
        }
    }
}

fn describe_internal_error(suberror: u32, rip: u64) -> String {
    let what = match suberror {
        1 => "an instruction this host's KVM cannot emulate (emulation failure)",
        2 => "a fault while delivering a fault (simultaneous exceptions)",
        3 => "an exit during event delivery",
        _ => "an internal error",
    };
    format!("KVM cannot run the guest: {what}, KVM internal error suberror {suberror}, at guest rip {rip:#x}")
}

/// Runs `vcpu` until the VM stops. `done` is set when the thread is about to return, so
/// the main thread knows to stop kicking it.
pub fn run(mut vcpu: Vcpu, io: Arc<IoBuses>, control: Arc<VmControl>, done: Arc<AtomicBool>) {
    let id = vcpu.id();
    while !control.is_stopping() {
        let reason = match vcpu.run(io.as_ref()) {
            Ok(VcpuExit::Io | VcpuExit::Interrupted | VcpuExit::Hlt) => continue,
            Ok(VcpuExit::Shutdown) => ExitReason::TripleFault { vcpu: id },
            Ok(VcpuExit::SystemReset) => ExitReason::Reset,
            Ok(VcpuExit::SystemShutdown) => ExitReason::PowerOff,
            Ok(VcpuExit::InternalError { suberror, rip }) => ExitReason::KvmFailure {
                vcpu: id,
                detail: describe_internal_error(suberror, rip),
            },
            Ok(VcpuExit::FailEntry { reason, rip }) => ExitReason::KvmFailure {
                vcpu: id,
                detail: format!(
                    "KVM could not enter the guest (hardware entry failure reason {reason:#x}) at rip {rip:#x}"
                ),
            },
            Ok(VcpuExit::Unexpected(what)) => ExitReason::KvmFailure {
                vcpu: id,
                detail: format!("unexpected KVM exit: {what}"),
            },
            Err(e) => ExitReason::Error(e.to_string()),
        };
        control.stop(reason);
    }
    done.store(true, Ordering::SeqCst);
}
