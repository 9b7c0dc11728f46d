//! Reference semantics of the pure IR operations. The interpreter executes with these, the
//! optimiser folds constants with these, and the native backend calls them for the few ops
//! it does not lower inline, so all three agree by construction.

use crate::ir::{BinOp, ExtOp, RmwOp, Ty, UnOp};

fn sx(ty: Ty, v: u64) -> i64 {
    match ty {
        Ty::I32 => v as u32 as i32 as i64,
        Ty::I64 => v as i64,
    }
}

pub fn bin(op: BinOp, ty: Ty, a: u64, b: u64) -> u64 {
    let a = ty.canon(a);
    let b = ty.canon(b);
    let bits = ty.bits();
    let sh = (b as u32) & (bits - 1);
    let r = match (op, ty) {
        (BinOp::Add, _) => a.wrapping_add(b),
        (BinOp::Sub, _) => a.wrapping_sub(b),
        (BinOp::Mul, _) => a.wrapping_mul(b),
        (BinOp::MulHs, Ty::I64) => ((a as i64 as i128 * b as i64 as i128) >> 64) as u64,
        (BinOp::MulHu, Ty::I64) => ((a as u128 * b as u128) >> 64) as u64,
        (BinOp::MulHsu, Ty::I64) => ((a as i64 as i128 * b as u128 as i128) >> 64) as u64,
        (BinOp::MulHs, Ty::I32) => ((sx(ty, a) * sx(ty, b)) >> 32) as u64,
        (BinOp::MulHu, Ty::I32) => (a * b) >> 32,
        (BinOp::MulHsu, Ty::I32) => ((sx(ty, a) * b as i64) >> 32) as u64,
        (BinOp::DivU, _) => a.checked_div(b).unwrap_or(u64::MAX),
        (BinOp::RemU, _) => {
            if b == 0 {
                a
            } else {
                a % b
            }
        }
        (BinOp::DivS, _) => {
            let (x, y) = (sx(ty, a), sx(ty, b));
            if y == 0 {
                u64::MAX
            } else if ty == Ty::I32 {
                (x as i32).wrapping_div(y as i32) as u64
            } else {
                x.wrapping_div(y) as u64
            }
        }
        (BinOp::RemS, _) => {
            let (x, y) = (sx(ty, a), sx(ty, b));
            if y == 0 {
                a
            } else if ty == Ty::I32 {
                (x as i32).wrapping_rem(y as i32) as u64
            } else {
                x.wrapping_rem(y) as u64
            }
        }
        (BinOp::And, _) => a & b,
        (BinOp::Or, _) => a | b,
        (BinOp::Xor, _) => a ^ b,
        (BinOp::AndN, _) => a & !b,
        (BinOp::OrN, _) => a | !b,
        (BinOp::XorN, _) => !(a ^ b),
        (BinOp::Shl, _) => a << sh,
        (BinOp::Shr, _) => a >> sh,
        (BinOp::Sar, _) => (sx(ty, a) >> sh) as u64,
        (BinOp::Rotl, Ty::I64) => a.rotate_left(sh),
        (BinOp::Rotr, Ty::I64) => a.rotate_right(sh),
        (BinOp::Rotl, Ty::I32) => (a as u32).rotate_left(sh) as u64,
        (BinOp::Rotr, Ty::I32) => (a as u32).rotate_right(sh) as u64,
    };
    ty.canon(r)
}

pub fn un(op: UnOp, ty: Ty, a: u64) -> u64 {
    let a = ty.canon(a);
    let r = match (op, ty) {
        (UnOp::Neg, _) => a.wrapping_neg(),
        (UnOp::Not, _) => !a,
        (UnOp::Clz, Ty::I64) => a.leading_zeros() as u64,
        (UnOp::Clz, Ty::I32) => (a as u32).leading_zeros() as u64,
        (UnOp::Ctz, Ty::I64) => a.trailing_zeros() as u64,
        (UnOp::Ctz, Ty::I32) => (a as u32).trailing_zeros() as u64,
        (UnOp::Popcnt, _) => a.count_ones() as u64,
        (UnOp::Bswap, Ty::I64) => a.swap_bytes(),
        (UnOp::Bswap, Ty::I32) => (a as u32).swap_bytes() as u64,
        (UnOp::Sext8, _) => a as u8 as i8 as i64 as u64,
        (UnOp::Sext16, _) => a as u16 as i16 as i64 as u64,
        (UnOp::Zext16, _) => a as u16 as u64,
        (UnOp::OrcB, _) => {
            let mut r = 0u64;
            for i in 0..8 {
                if (a >> (i * 8)) & 0xff != 0 {
                    r |= 0xff << (i * 8);
                }
            }
            r
        }
    };
    ty.canon(r)
}

pub fn ext(op: ExtOp, a: u64) -> u64 {
    match op {
        ExtOp::Trunc => a & 0xffff_ffff,
        ExtOp::Sext32 => a as u32 as i32 as i64 as u64,
        ExtOp::Zext32 => a & 0xffff_ffff,
    }
}

/// New memory value of an atomic read-modify-write, given the old one (both already
/// truncated to the access size; `bits` is 32 or 64).
pub fn rmw(op: RmwOp, bits: u32, old: u64, val: u64) -> u64 {
    let s = |v: u64| {
        if bits == 32 {
            v as u32 as i32 as i64
        } else {
            v as i64
        }
    };
    let r = match op {
        RmwOp::Xchg => val,
        RmwOp::Add => old.wrapping_add(val),
        RmwOp::And => old & val,
        RmwOp::Or => old | val,
        RmwOp::Xor => old ^ val,
        RmwOp::Min => {
            if s(old) <= s(val) {
                old
            } else {
                val
            }
        }
        RmwOp::Max => {
            if s(old) >= s(val) {
                old
            } else {
                val
            }
        }
        RmwOp::Minu => old.min(val),
        RmwOp::Maxu => old.max(val),
    };
    if bits == 32 {
        r & 0xffff_ffff
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn division_edge_cases() {
        assert_eq!(bin(BinOp::DivS, Ty::I64, 5, 0), u64::MAX);
        assert_eq!(
            bin(BinOp::DivS, Ty::I64, i64::MIN as u64, u64::MAX),
            i64::MIN as u64
        );
        assert_eq!(bin(BinOp::RemS, Ty::I64, i64::MIN as u64, u64::MAX), 0);
        assert_eq!(bin(BinOp::RemU, Ty::I64, 7, 0), 7);
        assert_eq!(
            bin(BinOp::DivS, Ty::I32, 0x8000_0000, 0xffff_ffff),
            0x8000_0000
        );
        assert_eq!(bin(BinOp::DivU, Ty::I32, 1, 0), 0xffff_ffff);
    }

    #[test]
    fn shifts_mask_amount() {
        assert_eq!(bin(BinOp::Shl, Ty::I32, 1, 33), 2);
        assert_eq!(bin(BinOp::Sar, Ty::I64, 1 << 63, 63), u64::MAX);
    }
}
