//! One KVM vCPU: its boot-time configuration and its run loop step.
//!
//! Port and MMIO exits are served inside [`Vcpu::run`] through an [`ExitHandler`] (the
//! caller's device bus), so the borrowed `kvm_run` data never escapes; everything else
//! comes back as an owned [`VcpuExit`].
//!
//! Without an in-kernel irqchip the caller is the interrupt controller: it injects
//! vectors with [`Vcpu::inject_interrupt`] when [`Vcpu::can_inject_interrupt`] says
//! the guest can take one, and otherwise asks for an interrupt-window exit with
//! [`Vcpu::request_interrupt_window`].

use kvm_bindings::{
    kvm_interrupt, CpuId, KVMIO, KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN,
};
use kvm_ioctls::{VcpuExit as KvmExit, VcpuFd};
use vmm_sys_util::ioctl::ioctl_with_ref;
use vmm_sys_util::ioctl_iow_nr;

use crate::x86::regs::{self, EntryMode};

#[derive(Debug, thiserror::Error)]
pub enum VcpuError {
    #[error("vCPU {id}: cannot {what}: {source}")]
    Ioctl {
        id: u8,
        what: &'static str,
        #[source]
        source: kvm_ioctls::Error,
    },
    #[error("vCPU {id}: KVM accepted only {set} of {wanted} boot MSRs")]
    Msrs { id: u8, set: usize, wanted: usize },
    #[error("vCPU {id}: cannot inject interrupt vector {vector:#x}: {source}")]
    Inject {
        id: u8,
        vector: u8,
        #[source]
        source: std::io::Error,
    },
}

// KVM_INTERRUPT (kvm-ioctls has no wrapper): queue an external interrupt vector, for VMs
// whose interrupt controller lives in user space.
ioctl_iow_nr!(KVM_INTERRUPT, KVMIO, 0x86, kvm_interrupt);

/// The device side of an exit: the VMM's port and MMIO buses.
pub trait ExitHandler {
    fn pio_read(&self, port: u16, data: &mut [u8]);
    fn pio_write(&self, port: u16, data: &[u8]);
    fn mmio_read(&self, addr: u64, data: &mut [u8]);
    fn mmio_write(&self, addr: u64, data: &[u8]);
}

/// Why [`Vcpu::run`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VcpuExit {
    /// A port or MMIO access was served; run again.
    Io,
    /// The run was interrupted (a signal, or an immediate-exit request): check whether the
    /// VM is stopping, then run again.
    Interrupted,
    /// `hlt` reached user space (only without an in-kernel irqchip).
    Hlt,
    /// The guest can take an interrupt now (asked for with
    /// [`Vcpu::request_interrupt_window`]; only without an in-kernel irqchip).
    IrqWindowOpen,
    /// Triple fault: the guest is dead.
    Shutdown,
    /// The guest asked for a reset (e.g. through PSCI-like system events).
    SystemReset,
    /// The guest asked to power off through a system event.
    SystemShutdown,
    /// KVM could not handle something (most often: an instruction it cannot emulate).
    InternalError { suberror: u32, rip: u64 },
    /// VM entry failed: the vCPU state is invalid for this host.
    FailEntry { reason: u64, rip: u64 },
    /// An exit this VMM does not handle.
    Unexpected(String),
}

pub struct Vcpu {
    id: u8,
    pub(crate) fd: VcpuFd,
}

impl Vcpu {
    pub(crate) fn new(id: u8, fd: VcpuFd) -> Self {
        Self { id, fd }
    }

    pub fn id(&self) -> u8 {
        self.id
    }

    fn err(&self, what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VcpuError {
        let id = self.id;
        move |source| VcpuError::Ioctl { id, what, source }
    }

    /// CPUID, MSRs, FPU and (with an in-kernel irqchip, `lapic`) LAPIC state every vCPU
    /// needs, boot vCPU or not.
    pub fn configure(&self, cpuid: &CpuId, lapic: bool) -> Result<(), VcpuError> {
        self.fd.set_cpuid2(cpuid).map_err(self.err("set CPUID"))?;
        let msrs = crate::x86::msr::boot_msrs();
        let set = self.fd.set_msrs(&msrs).map_err(self.err("set MSRs"))?;
        if set != msrs.as_fam_struct_ref().nmsrs as usize {
            return Err(VcpuError::Msrs {
                id: self.id,
                set,
                wanted: msrs.as_fam_struct_ref().nmsrs as usize,
            });
        }
        self.fd.set_fpu(&regs::fpu()).map_err(self.err("set FPU"))?;
        if lapic {
            self.configure_lapic()
        } else {
            self.disable_apic()
        }
    }

    /// Without an in-kernel irqchip there is no local APIC: clear its global enable in
    /// IA32_APIC_BASE. KVM derives CPUID.1:EDX.APIC from that bit, so this is also what
    /// hides the APIC from the guest's CPUID.
    fn disable_apic(&self) -> Result<(), VcpuError> {
        let mut sregs = self
            .fd
            .get_sregs()
            .map_err(self.err("get special registers"))?;
        sregs.apic_base = 0;
        self.fd
            .set_sregs(&sregs)
            .map_err(self.err("set special registers"))
    }

    /// LINT0 receives the PIC's ExtINT and LINT1 NMIs, as firmware programs them; Linux
    /// relies on it for the timer during early boot.
    fn configure_lapic(&self) -> Result<(), VcpuError> {
        const APIC_LVT0: usize = 0x350;
        const APIC_LVT1: usize = 0x360;
        const DELIVERY_EXTINT: u32 = 0x7;
        const DELIVERY_NMI: u32 = 0x4;
        let mut lapic = self.fd.get_lapic().map_err(self.err("get LAPIC"))?;
        let mut set_lvt = |offset: usize, mode: u32| {
            let reg = &mut lapic.regs[offset..offset + 4];
            let bytes: [u8; 4] = std::array::from_fn(|i| reg[i] as u8);
            let value = (u32::from_le_bytes(bytes) & !0x700) | (mode << 8);
            for (dst, src) in reg.iter_mut().zip(value.to_le_bytes()) {
                *dst = src as _;
            }
        };
        set_lvt(APIC_LVT0, DELIVERY_EXTINT);
        set_lvt(APIC_LVT1, DELIVERY_NMI);
        self.fd.set_lapic(&lapic).map_err(self.err("set LAPIC"))
    }

    /// Registers for the first instruction of the boot vCPU.
    pub fn set_boot_state(&self, rip: u64, mode: EntryMode) -> Result<(), VcpuError> {
        let sregs = self
            .fd
            .get_sregs()
            .map_err(self.err("get special registers"))?;
        self.fd
            .set_sregs(&regs::sregs_for(mode, sregs))
            .map_err(self.err("set special registers"))?;
        self.fd
            .set_regs(&regs::regs_for(mode, rip))
            .map_err(self.err("set registers"))
    }

    fn rip(&self) -> u64 {
        self.fd.get_regs().map_or(u64::MAX, |r| r.rip)
    }

    /// True when the guest can take an external interrupt now: as of the last exit,
    /// RFLAGS.IF is set, no interrupt shadow (`sti`, `mov ss`) is active and no earlier
    /// injection is still pending. Before the first run it is false.
    pub fn can_inject_interrupt(&mut self) -> bool {
        let run = self.fd.get_kvm_run();
        run.ready_for_interrupt_injection != 0 && run.if_flag != 0
    }

    /// Asks KVM to exit with [`VcpuExit::IrqWindowOpen`] as soon as the guest can take
    /// an interrupt (or stops asking). Read by every following `KVM_RUN`.
    pub fn request_interrupt_window(&mut self, on: bool) {
        self.fd.get_kvm_run().request_interrupt_window = u8::from(on);
    }

    /// Queues external interrupt `vector`: the guest takes it on the next entry, as if
    /// its interrupt controller had answered an INTA cycle with it. Only valid when
    /// [`Vcpu::can_inject_interrupt`] is true and without an in-kernel irqchip.
    pub fn inject_interrupt(&self, vector: u8) -> Result<(), VcpuError> {
        let irq = kvm_interrupt {
            irq: u32::from(vector),
        };
        // SAFETY: `fd` is a vCPU fd and KVM_INTERRUPT reads exactly one kvm_interrupt
        // from the pointer, which is valid for the duration of the call.
        let ret = unsafe { ioctl_with_ref(&self.fd, KVM_INTERRUPT(), &irq) };
        if ret < 0 {
            return Err(VcpuError::Inject {
                id: self.id,
                vector,
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// Enters the guest once and serves the exit.
    pub fn run(&mut self, io: &dyn ExitHandler) -> Result<VcpuExit, VcpuError> {
        let exit = match self.fd.run() {
            Ok(exit) => exit,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                // A kick (see `kick.rs`) may have set immediate_exit; it has done its job.
                self.fd.set_kvm_immediate_exit(0);
                return Ok(VcpuExit::Interrupted);
            }
            Err(source) => {
                return Err(VcpuError::Ioctl {
                    id: self.id,
                    what: "run",
                    source,
                })
            }
        };
        let outcome = match exit {
            KvmExit::IoIn(port, data) => {
                io.pio_read(port, data);
                VcpuExit::Io
            }
            KvmExit::IoOut(port, data) => {
                io.pio_write(port, data);
                VcpuExit::Io
            }
            KvmExit::MmioRead(addr, data) => {
                io.mmio_read(addr, data);
                VcpuExit::Io
            }
            KvmExit::MmioWrite(addr, data) => {
                io.mmio_write(addr, data);
                VcpuExit::Io
            }
            KvmExit::Intr => VcpuExit::Interrupted,
            KvmExit::Hlt => VcpuExit::Hlt,
            KvmExit::IrqWindowOpen => VcpuExit::IrqWindowOpen,
            KvmExit::Shutdown => VcpuExit::Shutdown,
            KvmExit::SystemEvent(kind, _) => match kind {
                KVM_SYSTEM_EVENT_RESET => VcpuExit::SystemReset,
                KVM_SYSTEM_EVENT_SHUTDOWN => VcpuExit::SystemShutdown,
                other => VcpuExit::Unexpected(format!("system event {other}")),
            },
            KvmExit::FailEntry(reason, _) => VcpuExit::FailEntry { reason, rip: 0 },
            KvmExit::InternalError => VcpuExit::InternalError {
                suberror: 0,
                rip: 0,
            },
            other => VcpuExit::Unexpected(format!("{other:?}")),
        };
        // The borrow of kvm_run has ended: now fill in what needs more ioctls.
        Ok(match outcome {
            VcpuExit::InternalError { .. } => VcpuExit::InternalError {
                suberror: self.internal_error_suberror(),
                rip: self.rip(),
            },
            VcpuExit::FailEntry { reason, .. } => VcpuExit::FailEntry {
                reason,
                rip: self.rip(),
            },
            other => other,
        })
    }

    fn internal_error_suberror(&mut self) -> u32 {
        let run = self.fd.get_kvm_run();
        // SAFETY: the last exit was KVM_EXIT_INTERNAL_ERROR, so `internal` is the union
        // member KVM filled in; reading a u32 from it is valid for any bit pattern.
        unsafe { run.__bindgen_anon_1.internal.suberror }
    }
}
