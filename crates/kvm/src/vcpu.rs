//! One KVM vCPU: its boot-time configuration and its run loop step.
//!
//! Port and MMIO exits are served inside [`Vcpu::run`] through an [`ExitHandler`] (the
//! caller's device bus), so the borrowed `kvm_run` data never escapes; everything else
//! comes back as an owned [`VcpuExit`].

use kvm_bindings::{CpuId, KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN};
use kvm_ioctls::{VcpuExit as KvmExit, VcpuFd};

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
}

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
    fd: VcpuFd,
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

    /// CPUID, MSRs, FPU and LAPIC state every vCPU needs, boot vCPU or not.
    pub fn configure(&self, cpuid: &CpuId) -> Result<(), VcpuError> {
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
        self.configure_lapic()
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

    /// Enters the guest once and serves the exit.
    pub fn run(&mut self, io: &dyn ExitHandler) -> Result<VcpuExit, VcpuError> {
        let exit = match self.fd.run() {
            Ok(exit) => exit,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                return Ok(VcpuExit::Interrupted)
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
