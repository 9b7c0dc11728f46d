//! The boot GDT and its translation into the segment registers KVM wants.

use kvm_bindings::kvm_segment;

/// Selectors into [`boot_gdt`]. The Linux 64-bit boot protocol requires `__BOOT_CS` = 0x10
/// and `__BOOT_DS` = 0x18; PVH only needs flat 32-bit segments.
pub const CODE32_SELECTOR: u16 = 0x08;
pub const CODE64_SELECTOR: u16 = 0x10;
pub const DATA_SELECTOR: u16 = 0x18;
pub const TSS_SELECTOR: u16 = 0x20;

/// Builds a descriptor from its access byte plus flags nibble (`flags` packs the upper
/// nibble of byte 6 and the access byte: 0xG_L_P_DPL_S_TYPE as written in the manuals).
pub const fn descriptor(flags: u16, base: u32, limit: u32) -> u64 {
    let base = base as u64;
    let limit = limit as u64;
    let flags = flags as u64;
    ((base & 0xff00_0000) << 32)
        | ((flags & 0xf0ff) << 40)
        | ((limit & 0x000f_0000) << 32)
        | ((base & 0x00ff_ffff) << 16)
        | (limit & 0x0000_ffff)
}

/// Null, 32-bit code, 64-bit code, data and TSS descriptors, all flat.
pub fn boot_gdt() -> [u64; 5] {
    [
        0,
        descriptor(0xc09b, 0, 0xfffff),
        descriptor(0xa09b, 0, 0xfffff),
        descriptor(0xc093, 0, 0xfffff),
        descriptor(0x808b, 0, 0xfffff),
    ]
}

/// Decodes a descriptor into the cached segment state KVM loads directly.
pub fn segment(descriptor: u64, selector: u16) -> kvm_segment {
    let base = ((descriptor >> 16) & 0xff_ffff) | ((descriptor >> 32) & 0xff00_0000);
    let raw_limit = ((descriptor & 0xffff) | ((descriptor >> 32) & 0xf_0000)) as u32;
    let granular = (descriptor >> 55) & 1 == 1;
    let limit = if granular {
        (raw_limit << 12) | 0xfff
    } else {
        raw_limit
    };
    let present = ((descriptor >> 47) & 1) as u8;
    kvm_segment {
        base,
        limit,
        selector,
        type_: ((descriptor >> 40) & 0xf) as u8,
        present,
        dpl: ((descriptor >> 45) & 3) as u8,
        db: ((descriptor >> 54) & 1) as u8,
        s: ((descriptor >> 44) & 1) as u8,
        l: ((descriptor >> 53) & 1) as u8,
        g: granular as u8,
        avl: ((descriptor >> 52) & 1) as u8,
        unusable: u8::from(present == 0),
        padding: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_flat_long_mode_code() {
        let d = descriptor(0xa09b, 0, 0xfffff);
        assert_eq!(d, 0x00af_9b00_0000_ffff);
        let s = segment(d, CODE64_SELECTOR);
        assert_eq!(
            (s.base, s.limit, s.l, s.db, s.type_, s.present),
            (0, 0xffff_ffff, 1, 0, 0xb, 1)
        );
    }

    #[test]
    fn decodes_base_and_limit_bits() {
        let d = descriptor(0x0093, 0x1234_5678, 0xabcde);
        let s = segment(d, 0);
        assert_eq!((s.base, s.limit, s.g), (0x1234_5678, 0xabcde, 0));
    }
}
