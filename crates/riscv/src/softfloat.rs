//! IEEE 754 binary32/binary64 arithmetic in software, exactly as RISC-V specifies it: all five
//! rounding modes (including RMM), tininess detected after rounding, canonical NaNs, and the
//! five accrued exception flags.
//!
//! Written here rather than using host SSE because RMM has no host equivalent and because one
//! code path for every mode is easier to trust. Every operation computes the exact result as
//! `sig * 2^exp` (with a sticky bit for the part that does not fit in 128 bits) and rounds
//! once in [`round_pack`].

/// Exception flags, in fflags bit order.
pub const NX: u32 = 1;
pub const UF: u32 = 2;
pub const OF: u32 = 4;
pub const DZ: u32 = 8;
pub const NV: u32 = 16;

/// Rounding modes as encoded in `rm`/`frm`.
pub const RNE: u32 = 0;
pub const RTZ: u32 = 1;
pub const RDN: u32 = 2;
pub const RUP: u32 = 3;
pub const RMM: u32 = 4;

/// A binary floating-point format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fmt {
    pub exp_bits: u32,
    pub mant_bits: u32,
}

pub const F32: Fmt = Fmt {
    exp_bits: 8,
    mant_bits: 23,
};
pub const F64: Fmt = Fmt {
    exp_bits: 11,
    mant_bits: 52,
};

impl Fmt {
    fn bias(self) -> i32 {
        (1 << (self.exp_bits - 1)) - 1
    }
    fn emax_biased(self) -> u64 {
        (1 << self.exp_bits) - 1
    }
    fn mant_mask(self) -> u64 {
        (1 << self.mant_bits) - 1
    }
    fn sign_bit(self) -> u64 {
        1 << (self.exp_bits + self.mant_bits)
    }
    /// Exponent of the least significant bit of subnormals.
    fn lsb_min(self) -> i32 {
        1 - self.bias() - self.mant_bits as i32
    }
    pub fn canonical_nan(self) -> u64 {
        (self.emax_biased() << self.mant_bits) | (1 << (self.mant_bits - 1))
    }
    pub fn inf(self, sign: bool) -> u64 {
        (self.emax_biased() << self.mant_bits) | if sign { self.sign_bit() } else { 0 }
    }
    pub fn zero(self, sign: bool) -> u64 {
        if sign {
            self.sign_bit()
        } else {
            0
        }
    }
    fn max_finite(self, sign: bool) -> u64 {
        self.inf(sign) - 1
    }
    pub fn sign(self, x: u64) -> bool {
        x & self.sign_bit() != 0
    }
    fn exp_field(self, x: u64) -> u64 {
        (x >> self.mant_bits) & self.emax_biased()
    }
    pub fn is_nan(self, x: u64) -> bool {
        self.exp_field(x) == self.emax_biased() && x & self.mant_mask() != 0
    }
    pub fn is_snan(self, x: u64) -> bool {
        self.is_nan(x) && x & (1 << (self.mant_bits - 1)) == 0
    }
    pub fn is_inf(self, x: u64) -> bool {
        self.exp_field(x) == self.emax_biased() && x & self.mant_mask() == 0
    }
    pub fn is_zero(self, x: u64) -> bool {
        x & !self.sign_bit() == 0
    }
    /// Finite non-zero value as (sign, lsb exponent, integer significand).
    fn unpack(self, x: u64) -> (bool, i32, u128) {
        let e = self.exp_field(x);
        let m = x & self.mant_mask();
        if e == 0 {
            (self.sign(x), self.lsb_min(), m as u128)
        } else {
            (
                self.sign(x),
                e as i32 - self.bias() - self.mant_bits as i32,
                (m | (1 << self.mant_bits)) as u128,
            )
        }
    }
}

/// Shifts right, OR-ing every bit shifted out into the lowest bit ("jamming"), which keeps
/// rounding exact as long as the result keeps at least two bits below the rounding point.
fn shr_jam(x: u128, n: u32) -> u128 {
    if n == 0 {
        x
    } else if n >= 128 {
        (x != 0) as u128
    } else {
        (x >> n) | ((x & ((1u128 << n) - 1)) != 0) as u128
    }
}

fn bitlen(x: u128) -> i32 {
    128 - x.leading_zeros() as i32
}

/// Rounds `m` (whose bits below `shift` are dropped) per `rm`; returns (rounded, inexact).
fn round_bits(sign: bool, sig: u128, shift: i32, rm: u32) -> (u128, bool) {
    if shift <= 0 {
        return (sig << (-shift) as u32, false);
    }
    let shift = shift as u32;
    let (m, half, rest) = if shift >= 129 {
        (0, false, sig != 0)
    } else if shift == 128 {
        (0, sig >> 127 != 0, sig & (u128::MAX >> 1) != 0)
    } else {
        let m = sig >> shift;
        let half = (sig >> (shift - 1)) & 1 != 0;
        let rest = sig & ((1u128 << (shift - 1)) - 1) != 0;
        (m, half, rest)
    };
    let inexact = half || rest;
    let up = match rm {
        RNE => half && (rest || m & 1 != 0),
        RTZ => false,
        RDN => inexact && sign,
        RUP => inexact && !sign,
        _ => half,
    };
    (m + up as u128, inexact)
}

/// Rounds the exact value `(-1)^sign * sig * 2^exp` to format `f`. `sig` must be non-zero.
pub fn round_pack(f: Fmt, sign: bool, exp: i32, sig: u128, rm: u32, flags: &mut u32) -> u64 {
    let p = f.mant_bits as i32 + 1;
    let n = bitlen(sig);
    let top = exp + n - 1; // exponent of the most significant bit
    let emin = 1 - f.bias();
    let lsb = (top - (p - 1)).max(f.lsb_min());
    let (mut m, inexact) = round_bits(sign, sig, lsb - exp, rm);
    let mut lsb = lsb;
    if m >> p != 0 {
        m >>= 1;
        lsb += 1;
    }
    // Tininess after rounding: round to p bits with an unbounded exponent range and see
    // whether the result is still below the smallest normal.
    if top < emin && inexact {
        let (m2, _) = round_bits(sign, sig, n - p, rm);
        let top2 = if m2 >> p != 0 { top + 1 } else { top };
        if top2 < emin {
            *flags |= UF;
        }
    }
    if inexact {
        *flags |= NX;
    }
    if m == 0 {
        return f.zero(sign);
    }
    let msb_exp = lsb + bitlen(m) - 1;
    let biased = msb_exp + f.bias();
    if biased >= f.emax_biased() as i32 {
        *flags |= OF | NX;
        let to_inf = match rm {
            RTZ => false,
            RDN => sign,
            RUP => !sign,
            _ => true,
        };
        return if to_inf {
            f.inf(sign)
        } else {
            f.max_finite(sign)
        };
    }
    let s = f.zero(sign);
    if m >> f.mant_bits == 0 {
        s | m as u64 // subnormal: biased exponent 0
    } else {
        s | ((biased as u64) << f.mant_bits) | (m as u64 & f.mant_mask())
    }
}

fn nan_result(f: Fmt, inputs: &[u64], flags: &mut u32) -> Option<u64> {
    if inputs.iter().any(|&x| f.is_snan(x)) {
        *flags |= NV;
    }
    if inputs.iter().any(|&x| f.is_nan(x)) {
        return Some(f.canonical_nan());
    }
    None
}

/// Exact sum of two finite values given as (sign, exp, sig); zero when they cancel.
fn add_exact(a: (bool, i32, u128), b: (bool, i32, u128)) -> Option<(bool, i32, u128)> {
    // Normalise both so their most significant bit is bit 125 (room for a carry).
    let norm = |(s, e, m): (bool, i32, u128)| {
        let sh = 125 - bitlen(m);
        if sh >= 0 {
            (s, e - sh, m << sh)
        } else {
            (s, e - sh, shr_jam(m, (-sh) as u32))
        }
    };
    let (mut x, mut y) = (norm(a), norm(b));
    if x.2 == 0 {
        return if y.2 == 0 { None } else { Some(y) };
    }
    if y.2 == 0 {
        return Some(x);
    }
    if x.1 < y.1 {
        std::mem::swap(&mut x, &mut y);
    }
    let d = (x.1 - y.1) as u32;
    let ym = shr_jam(y.2, d);
    if x.0 == y.0 {
        Some((x.0, x.1, x.2 + ym))
    } else if x.2 > ym {
        Some((x.0, x.1, x.2 - ym))
    } else if ym > x.2 {
        Some((y.0, x.1, ym - x.2))
    } else {
        None
    }
}

fn zero_sum_sign(rm: u32) -> bool {
    rm == RDN
}

pub fn add(f: Fmt, a: u64, b: u64, rm: u32, fl: &mut u32) -> u64 {
    if let Some(n) = nan_result(f, &[a, b], fl) {
        return n;
    }
    match (f.is_inf(a), f.is_inf(b)) {
        (true, true) if f.sign(a) != f.sign(b) => {
            *fl |= NV;
            return f.canonical_nan();
        }
        (true, _) => return a,
        (_, true) => return b,
        _ => {}
    }
    if f.is_zero(a) && f.is_zero(b) {
        let s = if f.sign(a) == f.sign(b) {
            f.sign(a)
        } else {
            zero_sum_sign(rm)
        };
        return f.zero(s);
    }
    if f.is_zero(a) {
        return b;
    }
    if f.is_zero(b) {
        return a;
    }
    match add_exact(f.unpack(a), f.unpack(b)) {
        Some((s, e, m)) => round_pack(f, s, e, m, rm, fl),
        None => f.zero(zero_sum_sign(rm)),
    }
}

pub fn sub(f: Fmt, a: u64, b: u64, rm: u32, fl: &mut u32) -> u64 {
    let nb = if f.is_nan(b) { b } else { b ^ f.sign_bit() };
    add(f, a, nb, rm, fl)
}

pub fn mul(f: Fmt, a: u64, b: u64, rm: u32, fl: &mut u32) -> u64 {
    if let Some(n) = nan_result(f, &[a, b], fl) {
        return n;
    }
    let s = f.sign(a) != f.sign(b);
    if (f.is_inf(a) && f.is_zero(b)) || (f.is_zero(a) && f.is_inf(b)) {
        *fl |= NV;
        return f.canonical_nan();
    }
    if f.is_inf(a) || f.is_inf(b) {
        return f.inf(s);
    }
    if f.is_zero(a) || f.is_zero(b) {
        return f.zero(s);
    }
    let (_, ea, ma) = f.unpack(a);
    let (_, eb, mb) = f.unpack(b);
    round_pack(f, s, ea + eb, ma * mb, rm, fl)
}

/// Fused multiply-add `a*b + c` with a single rounding.
pub fn fma(f: Fmt, a: u64, b: u64, c: u64, rm: u32, fl: &mut u32) -> u64 {
    // inf * 0 is invalid even when c is a quiet NaN.
    if (f.is_inf(a) && f.is_zero(b)) || (f.is_zero(a) && f.is_inf(b)) {
        *fl |= NV;
        return f.canonical_nan();
    }
    if let Some(n) = nan_result(f, &[a, b, c], fl) {
        return n;
    }
    let ps = f.sign(a) != f.sign(b);
    if f.is_inf(a) || f.is_inf(b) {
        if f.is_inf(c) && f.sign(c) != ps {
            *fl |= NV;
            return f.canonical_nan();
        }
        return f.inf(ps);
    }
    if f.is_inf(c) {
        return c;
    }
    let pzero = f.is_zero(a) || f.is_zero(b);
    if pzero {
        if f.is_zero(c) {
            let s = if ps == f.sign(c) {
                ps
            } else {
                zero_sum_sign(rm)
            };
            return f.zero(s);
        }
        return c;
    }
    let (_, ea, ma) = f.unpack(a);
    let (_, eb, mb) = f.unpack(b);
    let prod = (ps, ea + eb, ma * mb);
    if f.is_zero(c) {
        return round_pack(f, ps, prod.1, prod.2, rm, fl);
    }
    match add_exact(prod, f.unpack(c)) {
        Some((s, e, m)) => round_pack(f, s, e, m, rm, fl),
        None => f.zero(zero_sum_sign(rm)),
    }
}

pub fn div(f: Fmt, a: u64, b: u64, rm: u32, fl: &mut u32) -> u64 {
    if let Some(n) = nan_result(f, &[a, b], fl) {
        return n;
    }
    let s = f.sign(a) != f.sign(b);
    if (f.is_inf(a) && f.is_inf(b)) || (f.is_zero(a) && f.is_zero(b)) {
        *fl |= NV;
        return f.canonical_nan();
    }
    if f.is_inf(a) {
        return f.inf(s);
    }
    if f.is_inf(b) {
        return f.zero(s);
    }
    if f.is_zero(b) {
        *fl |= DZ;
        return f.inf(s);
    }
    if f.is_zero(a) {
        return f.zero(s);
    }
    // Normalise (subnormals too) so the quotient always has at least 73 significant bits.
    let norm = |(_, e, m): (bool, i32, u128)| {
        let sh = 54 - bitlen(m);
        (e - sh, m << sh)
    };
    let (ea, ma) = norm(f.unpack(a));
    let (eb, mb) = norm(f.unpack(b));
    let num = ma << 74;
    let q = num / mb;
    let r = num % mb;
    round_pack(f, s, ea - eb - 75, (q << 1) | (r != 0) as u128, rm, fl)
}

fn isqrt(x: u128) -> (u128, bool) {
    // Bit-by-bit integer square root: exact, and the remainder tells inexactness.
    let mut rem = x;
    let mut root = 0u128;
    let mut bit = 1u128 << 126;
    while bit > x {
        bit >>= 2;
    }
    while bit != 0 {
        if rem >= root + bit {
            rem -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    (root, rem != 0)
}

pub fn sqrt(f: Fmt, a: u64, rm: u32, fl: &mut u32) -> u64 {
    if let Some(n) = nan_result(f, &[a], fl) {
        return n;
    }
    if f.is_zero(a) {
        return a;
    }
    if f.sign(a) {
        *fl |= NV;
        return f.canonical_nan();
    }
    if f.is_inf(a) {
        return a;
    }
    let (_, mut e, mut m) = f.unpack(a);
    if e & 1 != 0 {
        m <<= 1;
        e -= 1;
    }
    let sh = (124 - bitlen(m)) & !1;
    let (r, inexact) = isqrt(m << sh);
    round_pack(
        f,
        false,
        (e - sh) / 2 - 1,
        (r << 1) | inexact as u128,
        rm,
        fl,
    )
}

/// Converts between formats (exact when widening).
pub fn convert(from: Fmt, to: Fmt, a: u64, rm: u32, fl: &mut u32) -> u64 {
    if let Some(n) = nan_result(from, &[a], fl) {
        let _ = n;
        return to.canonical_nan();
    }
    let s = from.sign(a);
    if from.is_inf(a) {
        return to.inf(s);
    }
    if from.is_zero(a) {
        return to.zero(s);
    }
    let (_, e, m) = from.unpack(a);
    round_pack(to, s, e, m, rm, fl)
}

/// Integer to float; `signed` says how to read the 64-bit `x` (already sign-extended for W).
pub fn from_int(f: Fmt, x: u64, signed: bool, rm: u32, fl: &mut u32) -> u64 {
    let (s, mag) = if signed && (x as i64) < 0 {
        (true, (x as i64).unsigned_abs())
    } else {
        (false, x)
    };
    if mag == 0 {
        return 0;
    }
    round_pack(f, s, 0, mag as u128, rm, fl)
}

/// Float to integer with saturation: the result range is `[min, max]` (as i128).
pub fn to_int(f: Fmt, a: u64, min: i128, max: i128, rm: u32, fl: &mut u32) -> i128 {
    if f.is_nan(a) {
        *fl |= NV;
        return max;
    }
    let s = f.sign(a);
    if f.is_inf(a) {
        *fl |= NV;
        return if s { min } else { max };
    }
    if f.is_zero(a) {
        return 0;
    }
    let (_, e, m) = f.unpack(a);
    let (mag, inexact) = if e >= 0 {
        if e > 64 {
            *fl |= NV;
            return if s { min } else { max };
        }
        (m << e, false)
    } else {
        round_bits(s, m, -e, rm)
    };
    let v = if s { -(mag as i128) } else { mag as i128 };
    if v < min || v > max {
        *fl |= NV;
        return if s { min } else { max };
    }
    if inexact {
        *fl |= NX;
    }
    v
}

/// Quiet comparisons (feq) signal only on signalling NaNs; ordered ones (flt/fle) on any NaN.
pub fn compare(f: Fmt, a: u64, b: u64, quiet: bool, fl: &mut u32) -> Option<std::cmp::Ordering> {
    if f.is_nan(a) || f.is_nan(b) {
        if !quiet || f.is_snan(a) || f.is_snan(b) {
            *fl |= NV;
        }
        return None;
    }
    if f.is_zero(a) && f.is_zero(b) {
        return Some(std::cmp::Ordering::Equal);
    }
    let key = |x: u64| -> i128 {
        let mag = (x & !f.sign_bit()) as i128;
        if f.sign(x) {
            -mag
        } else {
            mag
        }
    };
    Some(key(a).cmp(&key(b)))
}

/// fmin/fmax (IEEE 754-2019 minimumNumber/maximumNumber, with -0 < +0).
pub fn minmax(f: Fmt, a: u64, b: u64, max: bool, fl: &mut u32) -> u64 {
    if f.is_snan(a) || f.is_snan(b) {
        *fl |= NV;
    }
    match (f.is_nan(a), f.is_nan(b)) {
        (true, true) => return f.canonical_nan(),
        (true, false) => return b,
        (false, true) => return a,
        _ => {}
    }
    let mut ign = 0;
    let less = if f.is_zero(a) && f.is_zero(b) {
        f.sign(a) && !f.sign(b)
    } else {
        compare(f, a, b, true, &mut ign) == Some(std::cmp::Ordering::Less)
    };
    if less != max {
        a
    } else {
        b
    }
}

pub fn classify(f: Fmt, a: u64) -> u64 {
    let s = f.sign(a);
    let sub = f.exp_field(a) == 0 && !f.is_zero(a);
    let bit = if f.is_inf(a) {
        if s {
            0
        } else {
            7
        }
    } else if f.is_zero(a) {
        if s {
            3
        } else {
            4
        }
    } else if f.is_nan(a) {
        if f.is_snan(a) {
            8
        } else {
            9
        }
    } else if sub {
        if s {
            2
        } else {
            5
        }
    } else if s {
        1
    } else {
        6
    };
    1 << bit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(x: f64) -> u64 {
        x.to_bits()
    }

    #[test]
    fn matches_host_in_rne() {
        let vals = [
            1.0,
            3.0,
            0.1,
            -2.5e-310,
            1e308,
            7.0 / 3.0,
            -0.0,
            5e-324,
            123456.789,
        ];
        for &a in &vals {
            for &b in &vals {
                let mut fl = 0;
                assert_eq!(add(F64, d(a), d(b), RNE, &mut fl), d(a + b), "{a}+{b}");
                assert_eq!(mul(F64, d(a), d(b), RNE, &mut fl), d(a * b), "{a}*{b}");
                if b != 0.0 {
                    assert_eq!(div(F64, d(a), d(b), RNE, &mut fl), d(a / b), "{a}/{b}");
                }
                assert_eq!(
                    fma(F64, d(a), d(b), d(1.5), RNE, &mut fl),
                    d(a.mul_add(b, 1.5)),
                    "fma {a} {b}"
                );
            }
            if a >= 0.0 {
                let mut fl = 0;
                assert_eq!(sqrt(F64, d(a), RNE, &mut fl), d(a.sqrt()), "sqrt {a}");
            }
        }
    }

    #[test]
    fn rounding_modes_and_flags() {
        let mut fl = 0;
        // 1 + 2^-53 is a tie between 1 and 1+2^-52.
        let tie = d(1.0 + f64::EPSILON / 2.0);
        let _ = tie;
        let one = d(1.0);
        let half_ulp = d(f64::EPSILON / 2.0);
        assert_eq!(add(F64, one, half_ulp, RNE, &mut fl), one);
        assert_eq!(fl, NX);
        assert_eq!(add(F64, one, half_ulp, RMM, &mut fl), d(1.0 + f64::EPSILON));
        assert_eq!(add(F64, one, half_ulp, RUP, &mut fl), d(1.0 + f64::EPSILON));
        assert_eq!(add(F64, one, half_ulp, RTZ, &mut fl), one);
        fl = 0;
        assert_eq!(mul(F64, d(1e308), d(10.0), RTZ, &mut fl), d(f64::MAX));
        assert_eq!(fl, OF | NX);
        fl = 0;
        assert_eq!(div(F64, one, 0, RNE, &mut fl), d(f64::INFINITY));
        assert_eq!(fl, DZ);
        fl = 0;
        assert_eq!(sqrt(F64, d(-1.0), RNE, &mut fl), F64.canonical_nan());
        assert_eq!(fl, NV);
        fl = 0;
        assert_eq!(to_int(F64, d(-1.5), 0, u32::MAX as i128, RTZ, &mut fl), 0);
        assert_eq!(fl, NV);
        fl = 0;
        assert_eq!(
            to_int(
                F64,
                d(2.5),
                i32::MIN as i128,
                i32::MAX as i128,
                RNE,
                &mut fl
            ),
            2
        );
        assert_eq!(
            to_int(
                F64,
                d(2.5),
                i32::MIN as i128,
                i32::MAX as i128,
                RMM,
                &mut fl
            ),
            3
        );
        assert_eq!(fl, NX);
        fl = 0;
        // Smallest normal times 0.5 underflows (inexact? no: exact subnormal -> no UF).
        assert_eq!(
            mul(F64, d(f64::MIN_POSITIVE), d(0.5), RNE, &mut fl),
            d(f64::MIN_POSITIVE / 2.0)
        );
        assert_eq!(fl, 0);
    }
}
