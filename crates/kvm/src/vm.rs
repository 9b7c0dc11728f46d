//! A KVM virtual machine: its file descriptor, memory slots, in-kernel irqchip, and the
//! two eventfd shortcuts through the kernel: irqfd (a write raises an interrupt line) and
//! ioeventfd (a guest write to an address signals an eventfd instead of exiting).

use std::sync::Arc;

use kvm_bindings::{kvm_pit_config, kvm_userspace_memory_region, KVM_PIT_SPEAKER_DUMMY};
use kvm_ioctls::{Cap, IoEventAddress, Kvm, NoDatamatch, VmFd};
use vm_core::memory::{GuestMemoryApi, GuestMemoryRegion};
use vm_core::{GuestMemory, Irq, IrqError};
use vmm_sys_util::eventfd::EventFd;

use crate::vcpu::Vcpu;

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error(
        "/dev/kvm does not exist: KVM is not available on this host (is the kvm module loaded?)"
    )]
    NoKvm,
    #[error("permission denied opening /dev/kvm (run as root or join the kvm group)")]
    KvmPermission,
    #[error("cannot open /dev/kvm: {0}")]
    OpenKvm(#[source] kvm_ioctls::Error),
    #[error("KVM API version {0} is not supported (need 12)")]
    ApiVersion(i32),
    #[error("KVM lacks a required capability: {0}")]
    MissingCap(&'static str),
    #[error("cannot create the VM: {0}")]
    CreateVm(#[source] kvm_ioctls::Error),
    #[error("cannot register guest memory with KVM: {0}")]
    SetMemory(#[source] kvm_ioctls::Error),
    #[error("cannot create the in-kernel interrupt controller: {0}")]
    Irqchip(#[source] kvm_ioctls::Error),
    #[error("cannot create the in-kernel PIT: {0}")]
    Pit(#[source] kvm_ioctls::Error),
    #[error("cannot set the TSS address: {0}")]
    Tss(#[source] kvm_ioctls::Error),
    #[error("cannot wire interrupt line {gsi}: {source}")]
    Irqfd {
        gsi: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {what} the ioeventfd at MMIO address {addr:#x}: {source}")]
    IoEvent {
        what: &'static str,
        addr: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot query supported CPUID: {0}")]
    Cpuid(#[source] kvm_ioctls::Error),
    #[error("cannot create vCPU {id}: {source}")]
    CreateVcpu {
        id: u8,
        #[source]
        source: kvm_ioctls::Error,
    },
}

/// Where KVM (Intel VMX) keeps the TSS and identity map it needs to run real-mode code;
/// placed just below 4 GiB, in the hole between low RAM and the LAPIC, as every x86 VMM
/// does.
const TSS_ADDRESS: usize = 0xfffb_d000;

pub struct Vm {
    kvm: Kvm,
    fd: VmFd,
}

impl Vm {
    /// Opens `/dev/kvm` and creates an empty VM, mapping the usual failures to errors a
    /// user can act on.
    pub fn new() -> Result<Self, VmError> {
        let kvm = Kvm::new().map_err(|e| match e.errno() {
            libc::ENOENT | libc::ENODEV | libc::ENXIO => VmError::NoKvm,
            libc::EACCES | libc::EPERM => VmError::KvmPermission,
            _ => VmError::OpenKvm(e),
        })?;
        let version = kvm.get_api_version();
        if version != 12 {
            return Err(VmError::ApiVersion(version));
        }
        for (cap, name) in [
            (Cap::Irqchip, "KVM_CAP_IRQCHIP"),
            (Cap::UserMemory, "KVM_CAP_USER_MEMORY"),
            (Cap::Irqfd, "KVM_CAP_IRQFD"),
            (Cap::Pit2, "KVM_CAP_PIT2"),
            (Cap::ImmediateExit, "KVM_CAP_IMMEDIATE_EXIT"),
            (Cap::Ioeventfd, "KVM_CAP_IOEVENTFD"),
        ] {
            if !kvm.check_extension(cap) {
                return Err(VmError::MissingCap(name));
            }
        }
        let fd = kvm.create_vm().map_err(VmError::CreateVm)?;
        Ok(Self { kvm, fd })
    }

    /// The most vCPUs this host's KVM allows in one VM.
    pub fn max_vcpus(&self) -> usize {
        self.kvm.get_max_vcpus()
    }

    /// Registers every region of `memory` as a KVM memory slot.
    pub fn register_memory(&self, memory: &GuestMemory) -> Result<(), VmError> {
        for (slot, region) in memory.iter().enumerate() {
            let slot_region = kvm_userspace_memory_region {
                slot: slot as u32,
                flags: 0,
                guest_phys_addr: region.start_addr().0,
                memory_size: region.len(),
                userspace_addr: region.as_ptr() as u64,
            };
            // SAFETY: the region is a live host mapping owned by `memory`, which the
            // caller keeps alive for as long as the VM exists (the machine owns both).
            unsafe { self.fd.set_user_memory_region(slot_region) }.map_err(VmError::SetMemory)?;
        }
        Ok(())
    }

    /// Places the three pages Intel VMX needs for real-mode emulation (TSS and identity
    /// map). Every x86 VM needs it, with or without an in-kernel irqchip.
    pub fn set_tss_address(&self) -> Result<(), VmError> {
        self.fd.set_tss_address(TSS_ADDRESS).map_err(VmError::Tss)
    }

    /// Creates the in-kernel PIC, IOAPIC, LAPICs and PIT, so timer interrupts, `hlt` and
    /// EOIs never leave the kernel. Without it, KVM leaves interrupt delivery to user
    /// space (`Vcpu::inject_interrupt`), `hlt` exits, and there are no local APICs.
    pub fn create_irqchip(&self) -> Result<(), VmError> {
        self.fd.create_irq_chip().map_err(VmError::Irqchip)?;
        let pit = kvm_pit_config {
            // Port 0x61 (PC speaker) reads come back from the kernel, not us.
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        self.fd.create_pit2(pit).map_err(VmError::Pit)
    }

    /// An interrupt line into the in-kernel irqchip at `gsi` (an ISA IRQ number for the
    /// legacy devices), driven through an irqfd so raising it costs one `write(2)` from
    /// any thread and no exit. Needs [`Vm::create_irqchip`].
    pub fn irq_line(&self, gsi: u32) -> Result<Arc<IrqLine>, VmError> {
        let evt =
            EventFd::new(libc::EFD_NONBLOCK).map_err(|source| VmError::Irqfd { gsi, source })?;
        self.fd
            .register_irqfd(&evt, gsi)
            .map_err(|e| VmError::Irqfd {
                gsi,
                source: std::io::Error::from_raw_os_error(e.errno()),
            })?;
        Ok(Arc::new(IrqLine { evt }))
    }

    /// Makes guest writes to the MMIO address `addr` signal `evt` inside the kernel
    /// instead of exiting to user space: the vCPU goes straight back into the guest.
    /// With `datamatch`, only 4-byte writes of that value do (a virtio-mmio queue notify
    /// register, written with the queue index, gets one eventfd per queue); other
    /// writes to the address still exit. Without it, a write of any size and value does.
    pub fn register_ioevent(
        &self,
        evt: &EventFd,
        addr: u64,
        datamatch: Option<u32>,
    ) -> Result<(), VmError> {
        let at = IoEventAddress::Mmio(addr);
        match datamatch {
            Some(value) => self.fd.register_ioevent(evt, &at, value),
            None => self.fd.register_ioevent(evt, &at, NoDatamatch),
        }
        .map_err(|e| VmError::IoEvent {
            what: "register",
            addr,
            source: std::io::Error::from_raw_os_error(e.errno()),
        })
    }

    /// Undoes [`Vm::register_ioevent`] with the same arguments.
    pub fn unregister_ioevent(
        &self,
        evt: &EventFd,
        addr: u64,
        datamatch: Option<u32>,
    ) -> Result<(), VmError> {
        let at = IoEventAddress::Mmio(addr);
        match datamatch {
            Some(value) => self.fd.unregister_ioevent(evt, &at, value),
            None => self.fd.unregister_ioevent(evt, &at, NoDatamatch),
        }
        .map_err(|e| VmError::IoEvent {
            what: "unregister",
            addr,
            source: std::io::Error::from_raw_os_error(e.errno()),
        })
    }

    /// The host's supported CPUID leaves, the starting point for each vCPU's CPUID.
    pub fn supported_cpuid(&self) -> Result<kvm_bindings::CpuId, VmError> {
        self.kvm
            .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
            .map_err(VmError::Cpuid)
    }

    pub fn create_vcpu(&self, id: u8) -> Result<Vcpu, VmError> {
        let fd = self
            .fd
            .create_vcpu(u64::from(id))
            .map_err(|source| VmError::CreateVcpu { id, source })?;
        Ok(Vcpu::new(id, fd))
    }
}

/// An edge-triggered interrupt line backed by a KVM irqfd.
pub struct IrqLine {
    evt: EventFd,
}

impl Irq for IrqLine {
    fn trigger(&self) -> Result<(), IrqError> {
        self.evt.write(1).map_err(IrqError)
    }
}
