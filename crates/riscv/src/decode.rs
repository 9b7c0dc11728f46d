//! Declarative instruction decoding.
//!
//! One row per instruction: a bit pattern (fixed bits and don't-cares, written like the
//! ISA manual's tables), an immediate format, and the translate function. Compressed
//! instructions have their own rows whose `expand` function pulls the operands out of the
//! 16-bit encoding and then reuse the *same* translate functions as the 32-bit forms.
//! Rows are tried in order; the first match wins.

use crate::ctx::{Args, Ctx};
use crate::system::trans as sys;
use crate::{trans_fp as f, trans_int as t};

/// A translate function: emits IR for one instruction; false means "illegal encoding".
pub type Trans = fn(&mut Ctx, &Args) -> bool;

/// How the immediate is encoded in a 32-bit instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Imm {
    None,
    I,
    S,
    B,
    U,
    J,
    /// Shift amount in bits 25:20 (six bits on RV64).
    Sh6,
}

pub struct Row {
    pub name: &'static str,
    pub mask: u32,
    pub bits: u32,
    pub imm: Imm,
    pub trans: Trans,
}

pub struct CRow {
    pub name: &'static str,
    pub mask: u32,
    pub bits: u32,
    /// Extracts operands; `None` for reserved encodings.
    pub expand: fn(u32) -> Option<Args>,
    pub trans: Trans,
}

/// Parses a pattern such as `"0000000 ----- ----- 000 ----- 0110011"` into (mask, match).
const fn pat(p: &str) -> (u32, u32) {
    let s = p.as_bytes();
    let (mut mask, mut bits, mut i) = (0u32, 0u32, 0);
    while i < s.len() {
        match s[i] {
            b'0' => {
                mask = (mask << 1) | 1;
                bits <<= 1;
            }
            b'1' => {
                mask = (mask << 1) | 1;
                bits = (bits << 1) | 1;
            }
            b'-' => {
                mask <<= 1;
                bits <<= 1;
            }
            _ => {}
        }
        i += 1;
    }
    (mask, bits)
}

pub(crate) const fn row(name: &'static str, p: &str, imm: Imm, trans: Trans) -> Row {
    let (mask, bits) = pat(p);
    Row {
        name,
        mask,
        bits,
        imm,
        trans,
    }
}

const fn r(name: &'static str, p: &str, imm: Imm, trans: Trans) -> Row {
    let (mask, bits) = pat(p);
    Row {
        name,
        mask,
        bits,
        imm,
        trans,
    }
}

const fn c(name: &'static str, p: &str, expand: fn(u32) -> Option<Args>, trans: Trans) -> CRow {
    let (mask, bits) = pat(p);
    CRow {
        name,
        mask,
        bits,
        expand,
        trans,
    }
}

use Imm::{Sh6, B, I, J, S, U};

#[rustfmt::skip]
pub static ROWS: &[Row] = &[
    // RV64I
    r("lui",    "------------------------- 0110111", U, t::lui),
    r("auipc",  "------------------------- 0010111", U, t::auipc),
    r("jal",    "------------------------- 1101111", J, t::jal),
    r("jalr",   "------------ ----- 000 ----- 1100111", I, t::jalr),
    r("beq",    "------- ----- ----- 000 ----- 1100011", B, t::beq),
    r("bne",    "------- ----- ----- 001 ----- 1100011", B, t::bne),
    r("blt",    "------- ----- ----- 100 ----- 1100011", B, t::blt),
    r("bge",    "------- ----- ----- 101 ----- 1100011", B, t::bge),
    r("bltu",   "------- ----- ----- 110 ----- 1100011", B, t::bltu),
    r("bgeu",   "------- ----- ----- 111 ----- 1100011", B, t::bgeu),
    r("lb",     "------------ ----- 000 ----- 0000011", I, t::lb),
    r("lh",     "------------ ----- 001 ----- 0000011", I, t::lh),
    r("lw",     "------------ ----- 010 ----- 0000011", I, t::lw),
    r("ld",     "------------ ----- 011 ----- 0000011", I, t::ld),
    r("lbu",    "------------ ----- 100 ----- 0000011", I, t::lbu),
    r("lhu",    "------------ ----- 101 ----- 0000011", I, t::lhu),
    r("lwu",    "------------ ----- 110 ----- 0000011", I, t::lwu),
    r("sb",     "------- ----- ----- 000 ----- 0100011", S, t::sb),
    r("sh",     "------- ----- ----- 001 ----- 0100011", S, t::sh),
    r("sw",     "------- ----- ----- 010 ----- 0100011", S, t::sw),
    r("sd",     "------- ----- ----- 011 ----- 0100011", S, t::sd),
    r("addi",   "------------ ----- 000 ----- 0010011", I, t::addi),
    r("slti",   "------------ ----- 010 ----- 0010011", I, t::slti),
    r("sltiu",  "------------ ----- 011 ----- 0010011", I, t::sltiu),
    r("xori",   "------------ ----- 100 ----- 0010011", I, t::xori),
    r("ori",    "------------ ----- 110 ----- 0010011", I, t::ori),
    r("andi",   "------------ ----- 111 ----- 0010011", I, t::andi),
    r("slli",   "000000 ------ ----- 001 ----- 0010011", Sh6, t::slli),
    r("srli",   "000000 ------ ----- 101 ----- 0010011", Sh6, t::srli),
    r("srai",   "010000 ------ ----- 101 ----- 0010011", Sh6, t::srai),
    r("add",    "0000000 ----- ----- 000 ----- 0110011", Imm::None, t::add),
    r("sub",    "0100000 ----- ----- 000 ----- 0110011", Imm::None, t::sub),
    r("sll",    "0000000 ----- ----- 001 ----- 0110011", Imm::None, t::sll),
    r("slt",    "0000000 ----- ----- 010 ----- 0110011", Imm::None, t::slt),
    r("sltu",   "0000000 ----- ----- 011 ----- 0110011", Imm::None, t::sltu),
    r("xor",    "0000000 ----- ----- 100 ----- 0110011", Imm::None, t::xor),
    r("srl",    "0000000 ----- ----- 101 ----- 0110011", Imm::None, t::srl),
    r("sra",    "0100000 ----- ----- 101 ----- 0110011", Imm::None, t::sra),
    r("or",     "0000000 ----- ----- 110 ----- 0110011", Imm::None, t::or),
    r("and",    "0000000 ----- ----- 111 ----- 0110011", Imm::None, t::and),
    r("addiw",  "------------ ----- 000 ----- 0011011", I, t::addiw),
    r("slliw",  "0000000 ----- ----- 001 ----- 0011011", Sh6, t::slliw),
    r("srliw",  "0000000 ----- ----- 101 ----- 0011011", Sh6, t::srliw),
    r("sraiw",  "0100000 ----- ----- 101 ----- 0011011", Sh6, t::sraiw),
    r("addw",   "0000000 ----- ----- 000 ----- 0111011", Imm::None, t::addw),
    r("subw",   "0100000 ----- ----- 000 ----- 0111011", Imm::None, t::subw),
    r("sllw",   "0000000 ----- ----- 001 ----- 0111011", Imm::None, t::sllw),
    r("srlw",   "0000000 ----- ----- 101 ----- 0111011", Imm::None, t::srlw),
    r("sraw",   "0100000 ----- ----- 101 ----- 0111011", Imm::None, t::sraw),
    r("fence",  "------------ ----- 000 ----- 0001111", Imm::None, t::fence),
    r("fence.i","------------ ----- 001 ----- 0001111", Imm::None, t::fence_i),
    r("ecall",  "000000000000 00000 000 00000 1110011", Imm::None, t::ecall),
    // Privileged (system mode only)
    r("sret",   "0001000 00010 00000 000 00000 1110011", Imm::None, sys::sret),
    r("mret",   "0011000 00010 00000 000 00000 1110011", Imm::None, sys::mret),
    r("wfi",    "0001000 00101 00000 000 00000 1110011", Imm::None, sys::wfi),
    r("sfence.vma", "0001001 ----- ----- 000 00000 1110011", Imm::None, sys::sfence_vma),
    r("ebreak", "000000000001 00000 000 00000 1110011", Imm::None, t::ebreak),
    // Zicsr
    r("csrrw",  "------------ ----- 001 ----- 1110011", Imm::None, t::csrrw),
    r("csrrs",  "------------ ----- 010 ----- 1110011", Imm::None, t::csrrs),
    r("csrrc",  "------------ ----- 011 ----- 1110011", Imm::None, t::csrrc),
    r("csrrwi", "------------ ----- 101 ----- 1110011", Imm::None, t::csrrwi),
    r("csrrsi", "------------ ----- 110 ----- 1110011", Imm::None, t::csrrsi),
    r("csrrci", "------------ ----- 111 ----- 1110011", Imm::None, t::csrrci),
    // M
    r("mul",    "0000001 ----- ----- 000 ----- 0110011", Imm::None, t::mul),
    r("mulh",   "0000001 ----- ----- 001 ----- 0110011", Imm::None, t::mulh),
    r("mulhsu", "0000001 ----- ----- 010 ----- 0110011", Imm::None, t::mulhsu),
    r("mulhu",  "0000001 ----- ----- 011 ----- 0110011", Imm::None, t::mulhu),
    r("div",    "0000001 ----- ----- 100 ----- 0110011", Imm::None, t::div),
    r("divu",   "0000001 ----- ----- 101 ----- 0110011", Imm::None, t::divu),
    r("rem",    "0000001 ----- ----- 110 ----- 0110011", Imm::None, t::rem),
    r("remu",   "0000001 ----- ----- 111 ----- 0110011", Imm::None, t::remu),
    r("mulw",   "0000001 ----- ----- 000 ----- 0111011", Imm::None, t::mulw),
    r("divw",   "0000001 ----- ----- 100 ----- 0111011", Imm::None, t::divw),
    r("divuw",  "0000001 ----- ----- 101 ----- 0111011", Imm::None, t::divuw),
    r("remw",   "0000001 ----- ----- 110 ----- 0111011", Imm::None, t::remw),
    r("remuw",  "0000001 ----- ----- 111 ----- 0111011", Imm::None, t::remuw),
    // A
    r("lr.w",      "00010 -- 00000 ----- 010 ----- 0101111", Imm::None, t::lr_w),
    r("sc.w",      "00011 -- ----- ----- 010 ----- 0101111", Imm::None, t::sc_w),
    r("amoswap.w", "00001 -- ----- ----- 010 ----- 0101111", Imm::None, t::amoswap_w),
    r("amoadd.w",  "00000 -- ----- ----- 010 ----- 0101111", Imm::None, t::amoadd_w),
    r("amoxor.w",  "00100 -- ----- ----- 010 ----- 0101111", Imm::None, t::amoxor_w),
    r("amoand.w",  "01100 -- ----- ----- 010 ----- 0101111", Imm::None, t::amoand_w),
    r("amoor.w",   "01000 -- ----- ----- 010 ----- 0101111", Imm::None, t::amoor_w),
    r("amomin.w",  "10000 -- ----- ----- 010 ----- 0101111", Imm::None, t::amomin_w),
    r("amomax.w",  "10100 -- ----- ----- 010 ----- 0101111", Imm::None, t::amomax_w),
    r("amominu.w", "11000 -- ----- ----- 010 ----- 0101111", Imm::None, t::amominu_w),
    r("amomaxu.w", "11100 -- ----- ----- 010 ----- 0101111", Imm::None, t::amomaxu_w),
    r("lr.d",      "00010 -- 00000 ----- 011 ----- 0101111", Imm::None, t::lr_d),
    r("sc.d",      "00011 -- ----- ----- 011 ----- 0101111", Imm::None, t::sc_d),
    r("amoswap.d", "00001 -- ----- ----- 011 ----- 0101111", Imm::None, t::amoswap_d),
    r("amoadd.d",  "00000 -- ----- ----- 011 ----- 0101111", Imm::None, t::amoadd_d),
    r("amoxor.d",  "00100 -- ----- ----- 011 ----- 0101111", Imm::None, t::amoxor_d),
    r("amoand.d",  "01100 -- ----- ----- 011 ----- 0101111", Imm::None, t::amoand_d),
    r("amoor.d",   "01000 -- ----- ----- 011 ----- 0101111", Imm::None, t::amoor_d),
    r("amomin.d",  "10000 -- ----- ----- 011 ----- 0101111", Imm::None, t::amomin_d),
    r("amomax.d",  "10100 -- ----- ----- 011 ----- 0101111", Imm::None, t::amomax_d),
    r("amominu.d", "11000 -- ----- ----- 011 ----- 0101111", Imm::None, t::amominu_d),
    r("amomaxu.d", "11100 -- ----- ----- 011 ----- 0101111", Imm::None, t::amomaxu_d),
    // Zba
    r("add.uw",    "0000100 ----- ----- 000 ----- 0111011", Imm::None, t::add_uw),
    r("sh1add",    "0010000 ----- ----- 010 ----- 0110011", Imm::None, t::sh1add),
    r("sh2add",    "0010000 ----- ----- 100 ----- 0110011", Imm::None, t::sh2add),
    r("sh3add",    "0010000 ----- ----- 110 ----- 0110011", Imm::None, t::sh3add),
    r("sh1add.uw", "0010000 ----- ----- 010 ----- 0111011", Imm::None, t::sh1add_uw),
    r("sh2add.uw", "0010000 ----- ----- 100 ----- 0111011", Imm::None, t::sh2add_uw),
    r("sh3add.uw", "0010000 ----- ----- 110 ----- 0111011", Imm::None, t::sh3add_uw),
    r("slli.uw",   "000010 ------ ----- 001 ----- 0011011", Sh6, t::slli_uw),
    // Zbb
    r("andn",   "0100000 ----- ----- 111 ----- 0110011", Imm::None, t::andn),
    r("orn",    "0100000 ----- ----- 110 ----- 0110011", Imm::None, t::orn),
    r("xnor",   "0100000 ----- ----- 100 ----- 0110011", Imm::None, t::xnor),
    r("clz",    "0110000 00000 ----- 001 ----- 0010011", Imm::None, t::clz),
    r("ctz",    "0110000 00001 ----- 001 ----- 0010011", Imm::None, t::ctz),
    r("cpop",   "0110000 00010 ----- 001 ----- 0010011", Imm::None, t::cpop),
    r("clzw",   "0110000 00000 ----- 001 ----- 0011011", Imm::None, t::clzw),
    r("ctzw",   "0110000 00001 ----- 001 ----- 0011011", Imm::None, t::ctzw),
    r("cpopw",  "0110000 00010 ----- 001 ----- 0011011", Imm::None, t::cpopw),
    r("max",    "0000101 ----- ----- 110 ----- 0110011", Imm::None, t::max),
    r("maxu",   "0000101 ----- ----- 111 ----- 0110011", Imm::None, t::maxu),
    r("min",    "0000101 ----- ----- 100 ----- 0110011", Imm::None, t::min),
    r("minu",   "0000101 ----- ----- 101 ----- 0110011", Imm::None, t::minu),
    r("sext.b", "0110000 00100 ----- 001 ----- 0010011", Imm::None, t::sext_b),
    r("sext.h", "0110000 00101 ----- 001 ----- 0010011", Imm::None, t::sext_h),
    r("zext.h", "0000100 00000 ----- 100 ----- 0111011", Imm::None, t::zext_h),
    r("rol",    "0110000 ----- ----- 001 ----- 0110011", Imm::None, t::rol),
    r("ror",    "0110000 ----- ----- 101 ----- 0110011", Imm::None, t::ror),
    r("rolw",   "0110000 ----- ----- 001 ----- 0111011", Imm::None, t::rolw),
    r("rorw",   "0110000 ----- ----- 101 ----- 0111011", Imm::None, t::rorw),
    r("rori",   "011000 ------ ----- 101 ----- 0010011", Sh6, t::rori),
    r("roriw",  "0110000 ----- ----- 101 ----- 0011011", Sh6, t::roriw),
    r("orc.b",  "001010000111 ----- 101 ----- 0010011", Imm::None, t::orc_b),
    r("rev8",   "011010111000 ----- 101 ----- 0010011", Imm::None, t::rev8),
    // Zbs
    r("bclr",   "0100100 ----- ----- 001 ----- 0110011", Imm::None, t::bclr),
    r("bext",   "0100100 ----- ----- 101 ----- 0110011", Imm::None, t::bext),
    r("binv",   "0110100 ----- ----- 001 ----- 0110011", Imm::None, t::binv),
    r("bset",   "0010100 ----- ----- 001 ----- 0110011", Imm::None, t::bset),
    r("bclri",  "010010 ------ ----- 001 ----- 0010011", Sh6, t::bclri),
    r("bexti",  "010010 ------ ----- 101 ----- 0010011", Sh6, t::bexti),
    r("binvi",  "011010 ------ ----- 001 ----- 0010011", Sh6, t::binvi),
    r("bseti",  "001010 ------ ----- 001 ----- 0010011", Sh6, t::bseti),
];

/// Field helpers for the compressed expanders.
fn bit(i: u32, n: u32) -> u32 {
    (i >> n) & 1
}
fn bits(i: u32, hi: u32, lo: u32) -> u32 {
    (i >> lo) & ((1 << (hi - lo + 1)) - 1)
}
fn sext(v: u32, width: u32) -> i64 {
    ((v as i64) << (64 - width)) >> (64 - width)
}
/// The 3-bit register fields of compressed forms name x8..x15.
fn rp(i: u32, lo: u32) -> usize {
    8 + bits(i, lo + 2, lo) as usize
}
fn a(rd: usize, rs1: usize, rs2: usize, imm: i64) -> Option<Args> {
    Some(Args {
        rd,
        rs1,
        rs2,
        imm,
        ..Args::default()
    })
}
fn ci_imm(i: u32) -> i64 {
    sext(bit(i, 12) << 5 | bits(i, 6, 2), 6)
}
fn c_shamt(i: u32) -> i64 {
    (bit(i, 12) << 5 | bits(i, 6, 2)) as i64
}
fn cb_off(i: u32) -> i64 {
    let v = bit(i, 12) << 8
        | bits(i, 6, 5) << 6
        | bit(i, 2) << 5
        | bits(i, 11, 10) << 3
        | bits(i, 4, 3) << 1;
    sext(v, 9)
}
fn cj_off(i: u32) -> i64 {
    let v = bit(i, 12) << 11
        | bit(i, 8) << 10
        | bits(i, 10, 9) << 8
        | bit(i, 6) << 7
        | bit(i, 7) << 6
        | bit(i, 2) << 5
        | bit(i, 11) << 4
        | bits(i, 5, 3) << 1;
    sext(v, 12)
}
fn cl_w(i: u32) -> i64 {
    (bit(i, 5) << 6 | bits(i, 12, 10) << 3 | bit(i, 6) << 2) as i64
}
fn cl_d(i: u32) -> i64 {
    (bits(i, 6, 5) << 6 | bits(i, 12, 10) << 3) as i64
}
fn rd_full(i: u32) -> usize {
    bits(i, 11, 7) as usize
}
fn rs2_full(i: u32) -> usize {
    bits(i, 6, 2) as usize
}

fn x_addi4spn(i: u32) -> Option<Args> {
    let imm = bits(i, 10, 7) << 6 | bits(i, 12, 11) << 4 | bit(i, 5) << 3 | bit(i, 6) << 2;
    if imm == 0 {
        return None;
    }
    a(rp(i, 2), 2, 0, imm as i64)
}
fn x_lw(i: u32) -> Option<Args> {
    a(rp(i, 2), rp(i, 7), 0, cl_w(i))
}
fn x_ld(i: u32) -> Option<Args> {
    a(rp(i, 2), rp(i, 7), 0, cl_d(i))
}
fn x_sw(i: u32) -> Option<Args> {
    a(0, rp(i, 7), rp(i, 2), cl_w(i))
}
fn x_sd(i: u32) -> Option<Args> {
    a(0, rp(i, 7), rp(i, 2), cl_d(i))
}
fn x_addi(i: u32) -> Option<Args> {
    a(rd_full(i), rd_full(i), 0, ci_imm(i))
}
fn x_addiw(i: u32) -> Option<Args> {
    if rd_full(i) == 0 {
        return None;
    }
    x_addi(i)
}
fn x_li(i: u32) -> Option<Args> {
    a(rd_full(i), 0, 0, ci_imm(i))
}
fn x_addi16sp(i: u32) -> Option<Args> {
    let v = bit(i, 12) << 9 | bits(i, 4, 3) << 7 | bit(i, 5) << 6 | bit(i, 2) << 5 | bit(i, 6) << 4;
    if v == 0 {
        return None;
    }
    a(2, 2, 0, sext(v, 10))
}
fn x_lui(i: u32) -> Option<Args> {
    let imm = ci_imm(i) << 12;
    if imm == 0 {
        return None;
    }
    a(rd_full(i), 0, 0, imm)
}
fn x_shift_p(i: u32) -> Option<Args> {
    a(rp(i, 7), rp(i, 7), 0, c_shamt(i))
}
fn x_andi(i: u32) -> Option<Args> {
    a(rp(i, 7), rp(i, 7), 0, ci_imm(i))
}
fn x_alu_p(i: u32) -> Option<Args> {
    a(rp(i, 7), rp(i, 7), rp(i, 2), 0)
}
fn x_j(i: u32) -> Option<Args> {
    a(0, 0, 0, cj_off(i))
}
fn x_bz(i: u32) -> Option<Args> {
    a(0, rp(i, 7), 0, cb_off(i))
}
fn x_slli(i: u32) -> Option<Args> {
    a(rd_full(i), rd_full(i), 0, c_shamt(i))
}
fn x_lwsp(i: u32) -> Option<Args> {
    let off = bits(i, 3, 2) << 6 | bit(i, 12) << 5 | bits(i, 6, 4) << 2;
    if rd_full(i) == 0 {
        return None;
    }
    a(rd_full(i), 2, 0, off as i64)
}
fn ldsp_off(i: u32) -> i64 {
    (bits(i, 4, 2) << 6 | bit(i, 12) << 5 | bits(i, 6, 5) << 3) as i64
}
fn x_ldsp(i: u32) -> Option<Args> {
    if rd_full(i) == 0 {
        return None;
    }
    a(rd_full(i), 2, 0, ldsp_off(i))
}
fn x_fldsp(i: u32) -> Option<Args> {
    a(rd_full(i), 2, 0, ldsp_off(i))
}
fn x_jr(i: u32) -> Option<Args> {
    if rd_full(i) == 0 {
        return None;
    }
    a(0, rd_full(i), 0, 0)
}
fn x_mv(i: u32) -> Option<Args> {
    a(rd_full(i), 0, rs2_full(i), 0)
}
fn x_none(_: u32) -> Option<Args> {
    Some(Args::default())
}
fn x_jalr(i: u32) -> Option<Args> {
    a(1, rd_full(i), 0, 0)
}
fn x_add(i: u32) -> Option<Args> {
    a(rd_full(i), rd_full(i), rs2_full(i), 0)
}
fn x_swsp(i: u32) -> Option<Args> {
    let off = bits(i, 8, 7) << 6 | bits(i, 12, 9) << 2;
    a(0, 2, rs2_full(i), off as i64)
}
fn sdsp_off(i: u32) -> i64 {
    (bits(i, 9, 7) << 6 | bits(i, 12, 10) << 3) as i64
}
fn x_sdsp(i: u32) -> Option<Args> {
    a(0, 2, rs2_full(i), sdsp_off(i))
}

#[rustfmt::skip]
pub static CROWS: &[CRow] = &[
    // Quadrant 0
    c("c.addi4spn", "000 -------- --- 00", x_addi4spn, t::addi),
    c("c.fld",      "001 --- --- -- --- 00", x_ld, f::fld),
    c("c.lw",       "010 --- --- -- --- 00", x_lw, t::lw),
    c("c.ld",       "011 --- --- -- --- 00", x_ld, t::ld),
    c("c.fsd",      "101 --- --- -- --- 00", x_sd, f::fsd),
    c("c.sw",       "110 --- --- -- --- 00", x_sw, t::sw),
    c("c.sd",       "111 --- --- -- --- 00", x_sd, t::sd),
    // Quadrant 1
    c("c.addi",     "000 - ----- ----- 01", x_addi, t::addi),
    c("c.addiw",    "001 - ----- ----- 01", x_addiw, t::addiw),
    c("c.li",       "010 - ----- ----- 01", x_li, t::addi),
    c("c.addi16sp", "011 - 00010 ----- 01", x_addi16sp, t::addi),
    c("c.lui",      "011 - ----- ----- 01", x_lui, t::lui),
    c("c.srli",     "100 - 00 --- ----- 01", x_shift_p, t::srli),
    c("c.srai",     "100 - 01 --- ----- 01", x_shift_p, t::srai),
    c("c.andi",     "100 - 10 --- ----- 01", x_andi, t::andi),
    c("c.sub",      "100 0 11 --- 00 --- 01", x_alu_p, t::sub),
    c("c.xor",      "100 0 11 --- 01 --- 01", x_alu_p, t::xor),
    c("c.or",       "100 0 11 --- 10 --- 01", x_alu_p, t::or),
    c("c.and",      "100 0 11 --- 11 --- 01", x_alu_p, t::and),
    c("c.subw",     "100 1 11 --- 00 --- 01", x_alu_p, t::subw),
    c("c.addw",     "100 1 11 --- 01 --- 01", x_alu_p, t::addw),
    c("c.j",        "101 ----------- 01", x_j, t::jal),
    c("c.beqz",     "110 --- --- ----- 01", x_bz, t::beq),
    c("c.bnez",     "111 --- --- ----- 01", x_bz, t::bne),
    // Quadrant 2
    c("c.slli",     "000 - ----- ----- 10", x_slli, t::slli),
    c("c.fldsp",    "001 - ----- ----- 10", x_fldsp, f::fld),
    c("c.lwsp",     "010 - ----- ----- 10", x_lwsp, t::lw),
    c("c.ldsp",     "011 - ----- ----- 10", x_ldsp, t::ld),
    c("c.jr",       "100 0 ----- 00000 10", x_jr, t::jalr),
    c("c.mv",       "100 0 ----- ----- 10", x_mv, t::add),
    c("c.ebreak",   "100 1 00000 00000 10", x_none, t::ebreak),
    c("c.jalr",     "100 1 ----- 00000 10", x_jalr, t::jalr),
    c("c.add",      "100 1 ----- ----- 10", x_add, t::add),
    c("c.fsdsp",    "101 ------ ----- 10", x_sdsp, f::fsd),
    c("c.swsp",     "110 ------ ----- 10", x_swsp, t::sw),
    c("c.sdsp",     "111 ------ ----- 10", x_sdsp, t::sd),
];

/// Operand fields of a 32-bit instruction for a row's immediate format.
pub fn fields(i: u32, imm: Imm) -> Args {
    let imm = match imm {
        Imm::None => 0,
        Imm::I => (i as i32 >> 20) as i64,
        Imm::S => ((i as i32 >> 25) << 5) as i64 | bits(i, 11, 7) as i64,
        Imm::B => {
            let v = bit(i, 31) << 12 | bit(i, 7) << 11 | bits(i, 30, 25) << 5 | bits(i, 11, 8) << 1;
            sext(v, 13)
        }
        Imm::U => (i & 0xffff_f000) as i32 as i64,
        Imm::J => {
            let v =
                bit(i, 31) << 20 | bits(i, 19, 12) << 12 | bit(i, 20) << 11 | bits(i, 30, 21) << 1;
            sext(v, 21)
        }
        Imm::Sh6 => bits(i, 25, 20) as i64,
    };
    Args {
        rd: bits(i, 11, 7) as usize,
        rs1: bits(i, 19, 15) as usize,
        rs2: bits(i, 24, 20) as usize,
        rs3: bits(i, 31, 27) as usize,
        imm,
        rm: bits(i, 14, 12),
        csr: bits(i, 31, 20),
    }
}

/// Whether an instruction belongs to F/D (including accesses to the FP CSRs): illegal
/// while mstatus.FS is Off, and marks the FP state dirty otherwise.
pub fn is_fp(i: u32) -> bool {
    if i & 3 != 3 {
        // c.fld, c.fsd, c.fldsp, c.fsdsp.
        return matches!(i & 0xe003, 0x2000 | 0xa000 | 0x2002 | 0xa002);
    }
    match i & 0x7f {
        0b0000111 | 0b0100111 | 0b1000011 | 0b1000111 | 0b1001011 | 0b1001111 | 0b1010011 => true,
        // CSR instructions on fflags, frm, fcsr.
        0b1110011 => i & 0x3000 != 0 && (1..=3).contains(&(i >> 20)),
        _ => false,
    }
}

/// Finds the row for a 32-bit instruction.
pub fn decode32(i: u32) -> Option<(&'static Row, Args)> {
    ROWS.iter()
        .chain(f::FP_ROWS.iter())
        .find(|r| i & r.mask == r.bits)
        .map(|r| (r, fields(i, r.imm)))
}

/// Finds the row for a 16-bit instruction; `None` if unknown or reserved.
pub fn decode16(i: u32) -> Option<(&'static CRow, Args)> {
    let r = CROWS.iter().find(|r| i & r.mask == r.bits)?;
    (r.expand)(i).map(|a| (r, a))
}
