//! Per-vCPU CPUID: the host's supported leaves, with the topology leaves rewritten so
//! each vCPU sees its own APIC ID and the VM's real CPU count, and the hypervisor leaf
//! present so the guest knows it runs on KVM.

use kvm_bindings::{kvm_cpuid_entry2, CpuId};

const LEAF_FEATURES: u32 = 0x1;
const LEAF_CACHE_PARAMS: u32 = 0x4;
const LEAF_TOPOLOGY: u32 = 0xb;
const LEAF_TOPOLOGY_V2: u32 = 0x1f;
const LEAF_HYPERVISOR: u32 = 0x4000_0000;
const LEAF_EXT_ADDRESS_SIZES: u32 = 0x8000_0008;

const ECX_HYPERVISOR: u32 = 1 << 31;
const ECX_X2APIC: u32 = 1 << 21;
const ECX_TSC_DEADLINE: u32 = 1 << 24;
const EDX_APIC: u32 = 1 << 9;
const EDX_HTT: u32 = 1 << 28;
/// "KVMKVMKVM\0\0\0" as three little-endian registers.
const KVM_SIGNATURE: [u32; 3] = [0x4b4d_564b, 0x564b_4d56, 0x0000_004d];

/// Topology level types in leaf 0xb/0x1f ECX[15:8].
const LEVEL_SMT: u32 = 1;
const LEVEL_CORE: u32 = 2;

/// Bits of APIC ID needed to number `count` cores.
fn core_id_bits(count: u8) -> u32 {
    (u32::from(count).max(1) - 1)
        .checked_ilog2()
        .map_or(0, |b| b + 1)
}

/// Rewrites `cpuid` (a copy of the supported leaves) for vCPU `id` of `count`: one
/// thread per core, all cores in one package.
pub fn for_vcpu(cpuid: &mut CpuId, id: u8, count: u8) -> Result<(), vmm_sys_util::fam::Error> {
    let id = u32::from(id);
    let count32 = u32::from(count);
    let mut has_hypervisor_leaf = false;
    for entry in cpuid.as_mut_slice() {
        match entry.function {
            LEAF_FEATURES => {
                // EBX: [31:24] initial APIC ID, [23:16] logical processors per package,
                // [15:8] CLFLUSH line size in quadwords.
                entry.ebx = (id << 24) | (count32 << 16) | (8 << 8) | (entry.ebx & 0xff);
                entry.ecx |= ECX_HYPERVISOR;
                if count > 1 {
                    entry.edx |= EDX_HTT;
                } else {
                    entry.edx &= !EDX_HTT;
                }
            }
            LEAF_CACHE_PARAMS => {
                // EAX[31:26]: cores per package - 1; EAX[25:14]: threads sharing the
                // cache - 1 (each core has its own thread, so 0).
                entry.eax = (entry.eax & 0x3fff) | ((count32 - 1) << 26);
            }
            LEAF_TOPOLOGY | LEAF_TOPOLOGY_V2 => {
                entry.edx = id;
                match entry.index {
                    0 => {
                        entry.eax = 0;
                        entry.ebx = 1;
                        entry.ecx = (LEVEL_SMT << 8) | entry.index;
                    }
                    1 => {
                        entry.eax = core_id_bits(count);
                        entry.ebx = count32;
                        entry.ecx = (LEVEL_CORE << 8) | entry.index;
                    }
                    _ => {
                        entry.eax = 0;
                        entry.ebx = 0;
                        entry.ecx = entry.index;
                    }
                }
            }
            LEAF_HYPERVISOR => {
                has_hypervisor_leaf = true;
                [entry.ebx, entry.ecx, entry.edx] = KVM_SIGNATURE;
            }
            LEAF_EXT_ADDRESS_SIZES => {
                entry.ecx = (entry.ecx & !0xff) | (count32 - 1);
            }
            _ => {}
        }
    }
    if !has_hypervisor_leaf {
        cpuid.push(kvm_cpuid_entry2 {
            function: LEAF_HYPERVISOR,
            eax: LEAF_HYPERVISOR + 1,
            ebx: KVM_SIGNATURE[0],
            ecx: KVM_SIGNATURE[1],
            edx: KVM_SIGNATURE[2],
            ..Default::default()
        })?;
    }
    Ok(())
}

/// Hides the local APIC (xAPIC, x2APIC, TSC-deadline timer) from the guest: without an
/// in-kernel irqchip there is none, and a guest that saw the bit would program a device
/// that does not exist instead of the 8259A PIC.
pub fn without_apic(cpuid: &mut CpuId) {
    for entry in cpuid.as_mut_slice() {
        if entry.function == LEAF_FEATURES {
            entry.edx &= !EDX_APIC;
            entry.ecx &= !(ECX_X2APIC | ECX_TSC_DEADLINE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(function: u32, index: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            ..Default::default()
        }
    }

    #[test]
    fn rewrites_topology_per_vcpu() {
        let mut cpuid = CpuId::from_entries(&[
            leaf(LEAF_FEATURES, 0),
            leaf(LEAF_TOPOLOGY, 0),
            leaf(LEAF_TOPOLOGY, 1),
        ])
        .unwrap();
        for_vcpu(&mut cpuid, 3, 4).unwrap();
        let e = cpuid.as_slice();
        assert_eq!(e[0].ebx >> 24, 3);
        assert_eq!((e[0].ebx >> 16) & 0xff, 4);
        assert_ne!(e[0].ecx & ECX_HYPERVISOR, 0);
        assert_eq!((e[2].eax, e[2].ebx, e[2].edx), (2, 4, 3));
        let hv = e.iter().find(|l| l.function == LEAF_HYPERVISOR).unwrap();
        assert_eq!(hv.ebx, KVM_SIGNATURE[0]);
    }

    #[test]
    fn hides_the_local_apic() {
        let mut features = leaf(LEAF_FEATURES, 0);
        features.edx = EDX_APIC | EDX_HTT;
        features.ecx = ECX_X2APIC | ECX_TSC_DEADLINE | ECX_HYPERVISOR;
        let mut cpuid = CpuId::from_entries(&[features]).unwrap();
        without_apic(&mut cpuid);
        let e = cpuid.as_slice()[0];
        assert_eq!((e.edx, e.ecx), (EDX_HTT, ECX_HYPERVISOR));
    }

    #[test]
    fn counts_apic_id_bits() {
        assert_eq!(core_id_bits(1), 0);
        assert_eq!(core_id_bits(2), 1);
        assert_eq!(core_id_bits(3), 2);
        assert_eq!(core_id_bits(4), 2);
        assert_eq!(core_id_bits(5), 3);
    }
}
