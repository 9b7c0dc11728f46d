//! One host thread per vCPU: enter the guest, serve the exit, repeat until the VM stops.
//! With a user-space irqchip, vCPU 0 also injects the PIC's interrupts before entering.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kvm::{ExitHandler, Vcpu, VcpuExit};
use vm_core::Bus;

use super::irqchip::UserIrqchip;
use super::stats::{Counter, VcpuStats};
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

/// What a vCPU thread shares with the machine.
pub struct VcpuContext {
    pub io: Arc<IoBuses>,
    pub control: Arc<VmControl>,
    pub stats: Arc<VcpuStats>,
    /// The user-space interrupt controller, for the vCPU it delivers to (vCPU 0).
    pub irqchip: Option<Arc<UserIrqchip>>,
}

/// Before each entry with a user-space irqchip: injects the PIC's interrupt if the guest
/// can take it now, and otherwise has KVM exit as soon as it can. KVM queues one vector
/// per entry, so with more waiting the window is asked for again.
fn offer_interrupt(
    vcpu: &mut Vcpu,
    chip: &UserIrqchip,
    stats: &VcpuStats,
) -> Result<(), kvm::VcpuError> {
    let pic = chip.pic();
    if pic.has_interrupt() && vcpu.can_inject_interrupt() {
        if let Some(vector) = pic.acknowledge() {
            vcpu.inject_interrupt(vector)?;
            stats.count(Counter::InjectedIrq);
            log::trace!("injected vector {vector:#x}");
        }
    }
    vcpu.request_interrupt_window(pic.has_interrupt());
    Ok(())
}

/// Runs `vcpu` until the VM stops. `done` is set when the thread is about to return, so
/// the main thread knows to stop kicking it.
pub fn run(vcpu: Vcpu, ctx: VcpuContext, done: Arc<AtomicBool>) {
    let VcpuContext {
        io,
        control,
        stats,
        irqchip,
    } = ctx;
    let id = vcpu.id();
    // Kicks reach this thread's KVM_RUN from here on, and while the irqchip knows the
    // thread, a line raised elsewhere kicks it.
    let mut vcpu = vcpu.bind_to_thread();
    let _attached = irqchip.as_ref().map(|chip| chip.attach_vcpu_thread());
    while !control.is_stopping() {
        if let Some(chip) = &irqchip {
            if let Err(e) = offer_interrupt(&mut vcpu, chip, &stats) {
                control.stop(ExitReason::Error(e.to_string()));
                break;
            }
        }
        let reason = match vcpu.run(io.as_ref()) {
            Ok(VcpuExit::Io) => {
                stats.count(Counter::IoExit);
                continue;
            }
            Ok(VcpuExit::Interrupted) => continue,
            Ok(VcpuExit::IrqWindowOpen) => {
                stats.count(Counter::IrqWindowExit);
                continue;
            }
            Ok(VcpuExit::Hlt) => {
                stats.count(Counter::HltExit);
                // Only without an in-kernel irqchip does `hlt` reach us.
                if let Some(chip) = &irqchip {
                    let enabled = vcpu.can_inject_interrupt();
                    chip.wait_for_interrupt(&control, enabled);
                }
                continue;
            }
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
