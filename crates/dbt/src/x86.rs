//! A minimal x86-64 assembler: just the instruction forms the backend emits.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct R(pub u8);

pub const RAX: R = R(0);
pub const RCX: R = R(1);
pub const RDX: R = R(2);
pub const RBX: R = R(3);
pub const RSP: R = R(4);
pub const RBP: R = R(5);
pub const RSI: R = R(6);
pub const RDI: R = R(7);
pub const R8: R = R(8);
pub const R9: R = R(9);
pub const R10: R = R(10);
pub const R11: R = R(11);
pub const R12: R = R(12);
pub const R13: R = R(13);
pub const R14: R = R(14);
pub const R15: R = R(15);

/// A memory operand `[base + index + disp]`.
#[derive(Clone, Copy, Debug)]
pub struct Mem {
    pub base: R,
    pub index: Option<R>,
    /// The index is multiplied by `1 << scale` (0..=3).
    pub scale: u8,
    pub disp: i32,
}

pub fn mem(base: R, disp: i32) -> Mem {
    Mem {
        base,
        index: None,
        scale: 0,
        disp,
    }
}
pub fn mem_idx(base: R, index: R) -> Mem {
    Mem {
        base,
        index: Some(index),
        scale: 0,
        disp: 0,
    }
}

/// Condition codes (the low nibble of Jcc/SETcc/CMOVcc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cc {
    B = 2,
    Ae = 3,
    E = 4,
    Ne = 5,
    Be = 6,
    A = 7,
    /// Parity set (an unordered floating-point comparison).
    P = 0xa,
    L = 0xc,
    Ge = 0xd,
    Le = 0xe,
    G = 0xf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alu {
    Add = 0,
    Or = 1,
    And = 4,
    Sub = 5,
    Xor = 6,
    Cmp = 7,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shift {
    Rol = 0,
    Ror = 1,
    Shl = 4,
    Shr = 5,
    Sar = 7,
}

#[derive(Default)]
pub struct Asm {
    pub buf: Vec<u8>,
}

impl Asm {
    pub fn pos(&self) -> usize {
        self.buf.len()
    }
    fn b(&mut self, x: u8) {
        self.buf.push(x)
    }
    fn d32(&mut self, x: i32) {
        self.buf.extend_from_slice(&x.to_le_bytes())
    }

    /// REX prefix; `force` emits it even when empty (for byte registers sil/dil/...).
    fn rex(&mut self, w: bool, reg: u8, index: u8, base: u8, force: bool) {
        let r = 0x40
            | (w as u8) << 3
            | ((reg >> 3) & 1) << 2
            | ((index >> 3) & 1) << 1
            | ((base >> 3) & 1);
        if r != 0x40 || force {
            self.b(r)
        }
    }

    fn modrm_rr(&mut self, reg: u8, rm: u8) {
        self.b(0xc0 | (reg & 7) << 3 | (rm & 7))
    }

    fn modrm_mem(&mut self, reg: u8, m: Mem) {
        // The shortest displacement: none, 8 or 32 bits. A base of rbp/r13 with no
        // displacement would mean something else (rip-relative or no base), so it gets disp8.
        let base = m.base.0 & 7;
        let (mode, disp_len) = if m.disp == 0 && base != 5 {
            (0x00, 0)
        } else if i8::try_from(m.disp).is_ok() {
            (0x40, 1)
        } else {
            (0x80, 4)
        };
        match m.index {
            None if base != 4 => self.b(mode | (reg & 7) << 3 | base),
            None => {
                self.b(mode | (reg & 7) << 3 | 4);
                self.b(0x24);
            }
            Some(i) => {
                self.b(mode | (reg & 7) << 3 | 4);
                self.b(m.scale << 6 | (i.0 & 7) << 3 | base);
            }
        }
        match disp_len {
            0 => {}
            1 => self.b(m.disp as u8),
            _ => self.d32(m.disp),
        }
    }

    /// `op reg, r/m` with a register operand.
    fn op_rr(&mut self, w: bool, opc: &[u8], reg: R, rm: R) {
        self.rex(w, reg.0, 0, rm.0, false);
        self.buf.extend_from_slice(opc);
        self.modrm_rr(reg.0, rm.0);
    }
    fn op_rm(&mut self, w: bool, opc: &[u8], reg: R, m: Mem, force_rex: bool) {
        self.rex(w, reg.0, m.index.map_or(0, |i| i.0), m.base.0, force_rex);
        self.buf.extend_from_slice(opc);
        self.modrm_mem(reg.0, m);
    }

    pub fn mov_rr(&mut self, w: bool, dst: R, src: R) {
        self.op_rr(w, &[0x89], src, dst)
    }
    pub fn mov_ri(&mut self, dst: R, v: u64) {
        if v <= u32::MAX as u64 {
            self.rex(false, 0, 0, dst.0, false);
            self.b(0xb8 + (dst.0 & 7));
            self.d32(v as u32 as i32);
        } else if v as i64 >= i32::MIN as i64 && v as i64 <= i32::MAX as i64 {
            self.rex(true, 0, 0, dst.0, false);
            self.b(0xc7);
            self.modrm_rr(0, dst.0);
            self.d32(v as i32);
        } else {
            self.rex(true, 0, 0, dst.0, false);
            self.b(0xb8 + (dst.0 & 7));
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }
    pub fn load(&mut self, w: bool, dst: R, m: Mem) {
        self.op_rm(w, &[0x8b], dst, m, false)
    }
    pub fn store(&mut self, w: bool, m: Mem, src: R) {
        self.op_rm(w, &[0x89], src, m, false)
    }
    /// `mov qword [m], simm32`.
    pub fn store_imm(&mut self, m: Mem, v: i32) {
        self.op_rm(true, &[0xc7], R(0), m, false);
        self.d32(v);
    }
    /// Zero/sign-extending guest loads of 1/2/4/8 bytes into a 64-bit register.
    pub fn load_ext(&mut self, dst: R, m: Mem, bytes: u64, signed: bool) {
        match (bytes, signed) {
            (1, false) => self.op_rm(false, &[0x0f, 0xb6], dst, m, false),
            (2, false) => self.op_rm(false, &[0x0f, 0xb7], dst, m, false),
            (4, false) => self.op_rm(false, &[0x8b], dst, m, false),
            (1, true) => self.op_rm(true, &[0x0f, 0xbe], dst, m, false),
            (2, true) => self.op_rm(true, &[0x0f, 0xbf], dst, m, false),
            (4, true) => self.op_rm(true, &[0x63], dst, m, false),
            _ => self.op_rm(true, &[0x8b], dst, m, false),
        }
    }
    pub fn store_sized(&mut self, m: Mem, src: R, bytes: u64) {
        match bytes {
            1 => self.op_rm(false, &[0x88], src, m, src.0 >= 4),
            2 => {
                self.b(0x66);
                self.op_rm(false, &[0x89], src, m, false)
            }
            4 => self.op_rm(false, &[0x89], src, m, false),
            _ => self.op_rm(true, &[0x89], src, m, false),
        }
    }
    /// Whether [`Asm::store_imm_sized`] can store `v` as a `bytes`-wide immediate (an 8-byte store
    /// takes a sign-extended 32-bit one).
    pub fn imm_storable(v: u64, bytes: u64) -> bool {
        bytes < 8 || i32::try_from(v as i64).is_ok()
    }
    /// Stores the low `bytes` of constant `v` (`mov m, imm`); `v` must be
    /// [`Asm::imm_storable`].
    pub fn store_imm_sized(&mut self, m: Mem, v: u64, bytes: u64) {
        debug_assert!(Asm::imm_storable(v, bytes));
        match bytes {
            1 => {
                self.op_rm(false, &[0xc6], R(0), m, false);
                self.b(v as u8);
            }
            2 => {
                self.b(0x66);
                self.op_rm(false, &[0xc7], R(0), m, false);
                self.buf.extend_from_slice(&(v as u16).to_le_bytes());
            }
            4 => {
                self.op_rm(false, &[0xc7], R(0), m, false);
                self.d32(v as u32 as i32);
            }
            _ => {
                self.op_rm(true, &[0xc7], R(0), m, false);
                self.d32(v as i32);
            }
        }
    }
    pub fn alu_rr(&mut self, w: bool, op: Alu, dst: R, src: R) {
        self.op_rr(w, &[(op as u8) << 3 | 1], src, dst)
    }
    pub fn alu_ri(&mut self, w: bool, op: Alu, dst: R, v: i32) {
        self.rex(w, 0, 0, dst.0, false);
        self.b(0x81);
        self.modrm_rr(op as u8, dst.0);
        self.d32(v);
    }
    /// `lea dst, [m]` (32-bit: the low half of the address, zero-extended).
    pub fn lea(&mut self, w: bool, dst: R, m: Mem) {
        self.op_rm(w, &[0x8d], dst, m, false)
    }
    /// `op [m], simm32` for the ALU ops.
    pub fn alu_mi(&mut self, w: bool, op: Alu, m: Mem, v: i32) {
        self.op_rm(w, &[0x81], R(op as u8), m, false);
        self.d32(v);
    }
    /// `test [m], simm32`.
    pub fn test_mi(&mut self, w: bool, m: Mem, v: i32) {
        self.op_rm(w, &[0xf7], R(0), m, false);
        self.d32(v);
    }
    /// `test r, simm32`.
    pub fn test_ri(&mut self, w: bool, r: R, v: i32) {
        self.rex(w, 0, 0, r.0, false);
        self.b(0xf7);
        self.modrm_rr(0, r.0);
        self.d32(v);
    }
    /// `cmp reg, [m]`.
    pub fn cmp_rm(&mut self, w: bool, a: R, m: Mem) {
        self.op_rm(w, &[0x3b], a, m, false)
    }
    /// One-operand group-3 ops on rdx:rax: 4 mul, 5 imul, 6 div, 7 idiv.
    pub fn grp3(&mut self, w: bool, ext: u8, r: R) {
        self.rex(w, 0, 0, r.0, false);
        self.b(0xf7);
        self.modrm_rr(ext, r.0);
    }
    /// Sign-extends rax into rdx (cqo) or eax into edx (cdq).
    pub fn cqo(&mut self, w: bool) {
        if w {
            self.b(0x48);
        }
        self.b(0x99);
    }
    /// `cmp dword [m], 0`.
    pub fn cmp_m_zero(&mut self, m: Mem) {
        self.op_rm(false, &[0x83], R(7), m, false);
        self.b(0);
    }
    pub fn imul_rr(&mut self, w: bool, dst: R, src: R) {
        self.op_rr(w, &[0x0f, 0xaf], dst, src)
    }
    pub fn shift_cl(&mut self, w: bool, op: Shift, dst: R) {
        self.rex(w, 0, 0, dst.0, false);
        self.b(0xd3);
        self.modrm_rr(op as u8, dst.0);
    }
    pub fn shift_i(&mut self, w: bool, op: Shift, dst: R, n: u8) {
        self.rex(w, 0, 0, dst.0, false);
        self.b(0xc1);
        self.modrm_rr(op as u8, dst.0);
        self.b(n);
    }
    pub fn neg(&mut self, w: bool, r: R) {
        self.rex(w, 0, 0, r.0, false);
        self.b(0xf7);
        self.modrm_rr(3, r.0);
    }
    pub fn not(&mut self, w: bool, r: R) {
        self.rex(w, 0, 0, r.0, false);
        self.b(0xf7);
        self.modrm_rr(2, r.0);
    }
    /// `setcc al; movzx dst, al`.
    pub fn setcc(&mut self, cc: Cc, dst: R) {
        self.b(0x0f);
        self.b(0x90 | cc as u8);
        self.b(0xc0);
        self.op_rr(false, &[0x0f, 0xb6], dst, RAX);
    }
    pub fn cmov(&mut self, w: bool, cc: Cc, dst: R, src: R) {
        self.op_rr(w, &[0x0f, 0x40 | cc as u8], dst, src)
    }
    pub fn movsxd(&mut self, dst: R, src: R) {
        self.op_rr(true, &[0x63], dst, src)
    }
    pub fn lock_xadd(&mut self, w: bool, m: Mem, r: R) {
        self.b(0xf0);
        self.op_rm(w, &[0x0f, 0xc1], r, m, false)
    }
    pub fn xchg(&mut self, w: bool, m: Mem, r: R) {
        self.op_rm(w, &[0x87], r, m, false)
    }
    pub fn lock_cmpxchg(&mut self, w: bool, m: Mem, r: R) {
        self.b(0xf0);
        self.op_rm(w, &[0x0f, 0xb1], r, m, false)
    }
    /// `lock or dword [rsp], 0`: a full memory barrier that leaves memory as it was.
    /// Cheaper than `mfence` (measured on AMD EPYC: about 3 ns against 30 ns after a
    /// store), which also orders non-temporal stores and serialises more than generated
    /// code needs. Clobbers the flags. The top of the stack is always mapped and private
    /// to this thread (in generated code a spill slot, whose value the `or` keeps).
    pub fn lock_or_stack(&mut self) {
        self.b(0xf0);
        self.op_rm(false, &[0x83], R(Alu::Or as u8), mem(RSP, 0), false);
        self.b(0);
    }
    /// `jmp rel32`; returns the offset of the displacement.
    pub fn jmp(&mut self) -> usize {
        self.b(0xe9);
        self.d32(0);
        self.pos() - 4
    }
    pub fn jcc(&mut self, cc: Cc) -> usize {
        self.b(0x0f);
        self.b(0x80 | cc as u8);
        self.d32(0);
        self.pos() - 4
    }
    /// Points the rel32 at `site` to `target` (both offsets in this buffer).
    pub fn patch(&mut self, site: usize, target: usize) {
        let rel = target as i64 - (site as i64 + 4);
        self.buf[site..site + 4].copy_from_slice(&(rel as i32).to_le_bytes());
    }
    pub fn call_r(&mut self, r: R) {
        self.rex(false, 0, 0, r.0, false);
        self.b(0xff);
        self.modrm_rr(2, r.0);
    }
    pub fn jmp_r(&mut self, r: R) {
        self.rex(false, 0, 0, r.0, false);
        self.b(0xff);
        self.modrm_rr(4, r.0);
    }
    /// `lea dst, [index << scale + disp]` (no base register).
    pub fn lea_scaled(&mut self, w: bool, dst: R, index: R, scale: u8, disp: i32) {
        self.rex(w, dst.0, index.0, 0, false);
        self.b(0x8d);
        // mod=00 rm=100 (SIB) with SIB base=101: no base, a 32-bit displacement.
        self.b((dst.0 & 7) << 3 | 4);
        self.b(scale << 6 | (index.0 & 7) << 3 | 5);
        self.d32(disp);
    }
    /// `jmp [m]`: an indirect jump through a code address in memory.
    pub fn jmp_m(&mut self, m: Mem) {
        self.op_rm(false, &[0xff], R(4), m, false);
    }
    pub fn push(&mut self, r: R) {
        self.rex(false, 0, 0, r.0, false);
        self.b(0x50 + (r.0 & 7));
    }
    pub fn pop(&mut self, r: R) {
        self.rex(false, 0, 0, r.0, false);
        self.b(0x58 + (r.0 & 7));
    }
    /// `movq xmm, r64` (`w`) or `movd xmm, r32`.
    pub fn movq_to_xmm(&mut self, w: bool, xmm: u8, src: R) {
        self.b(0x66);
        self.op_rr(w, &[0x0f, 0x6e], R(xmm), src)
    }
    /// `movq r64, xmm` (`w`) or `movd r32, xmm` (zero-extending).
    pub fn movq_from_xmm(&mut self, w: bool, dst: R, xmm: u8) {
        self.b(0x66);
        self.op_rr(w, &[0x0f, 0x7e], R(xmm), dst)
    }
    /// `movq xmm, [m]` (the upper half of the register is zeroed).
    pub fn movq_load(&mut self, xmm: u8, m: Mem) {
        self.b(0xf3);
        self.op_rm(false, &[0x0f, 0x7e], R(xmm), m, false)
    }
    /// `movq [m], xmm` (the low 64 bits).
    pub fn movq_store(&mut self, m: Mem, xmm: u8) {
        self.b(0x66);
        self.op_rm(false, &[0x0f, 0xd6], R(xmm), m, false)
    }
    /// Scalar SSE arithmetic `op xmm_dst, xmm_src` (`double`: the `sd` form, else `ss`);
    /// `opc` is the second opcode byte (0x58 add, 0x59 mul, 0x5c sub, 0x5e div, 0x51 sqrt).
    pub fn sse_scalar(&mut self, double: bool, opc: u8, dst: u8, src: u8) {
        self.b(if double { 0xf2 } else { 0xf3 });
        self.op_rr(false, &[0x0f, opc], R(dst), R(src))
    }
    /// `movapd xmm_dst, xmm_src` (a full register copy).
    pub fn movapd(&mut self, dst: u8, src: u8) {
        self.b(0x66);
        self.op_rr(false, &[0x0f, 0x28], R(dst), R(src))
    }
    /// `vf[n]madd/msub213s[sd] dst, src1, src2` on xmm0..xmm15: dst = ±(src1 * dst) ± src2
    /// with one rounding. `opc`: 0xa9 a*b+c, 0xab a*b-c, 0xad -(a*b)+c, 0xaf -(a*b)-c.
    pub fn fma213(&mut self, double: bool, opc: u8, dst: u8, src1: u8, src2: u8) {
        // Three-byte VEX: inverted R (extends dst) and B (extends src2), no X, map 0F38;
        // W selects sd/ss, vvvv = ~src1, pp = 66.
        let vex1 = (!dst >> 3 & 1) << 7 | 1 << 6 | (!src2 >> 3 & 1) << 5 | 0x02;
        let vex2 = (double as u8) << 7 | (!src1 & 0xf) << 3 | 0x01;
        let modrm = 0xc0 | (dst & 7) << 3 | (src2 & 7);
        self.buf.extend_from_slice(&[0xc4, vex1, vex2, opc, modrm]);
    }
    /// BMI2 `shlx`/`shrx`/`sarx dst, src, count`: a shift by a count in any register that
    /// leaves `src` and the flags alone.
    pub fn shiftx(&mut self, w: bool, op: Shift, dst: R, src: R, count: R) {
        // Three-byte VEX, map 0F38, opcode F7; pp selects the shift: 66 shl, F2 shr, F3 sar.
        let pp = match op {
            Shift::Shl => 1,
            Shift::Shr => 3,
            Shift::Sar => 2,
            Shift::Rol | Shift::Ror => unreachable!("no BMI2 rotate by register"),
        };
        let vex1 = (!dst.0 >> 3 & 1) << 7 | 1 << 6 | (!src.0 >> 3 & 1) << 5 | 0x02;
        let vex2 = (w as u8) << 7 | (!count.0 & 0xf) << 3 | pp;
        let modrm = 0xc0 | (dst.0 & 7) << 3 | (src.0 & 7);
        self.buf.extend_from_slice(&[0xc4, vex1, vex2, 0xf7, modrm]);
    }
    /// `ucomisd xmm_a, xmm_b` (`double`) or `ucomiss`: quiet ordered comparison into ZF/CF,
    /// PF set when unordered.
    pub fn ucomis(&mut self, double: bool, a: u8, b: u8) {
        if double {
            self.b(0x66);
        }
        self.op_rr(false, &[0x0f, 0x2e], R(a), R(b))
    }
    /// `op dst, [m]` for the ALU ops.
    pub fn op_mem(&mut self, w: bool, op: Alu, dst: R, m: Mem) {
        self.op_rm(w, &[(op as u8) << 3 | 3], dst, m, false)
    }
    /// `stmxcsr [m]`.
    pub fn stmxcsr(&mut self, m: Mem) {
        self.op_rm(false, &[0x0f, 0xae], R(3), m, false)
    }
    /// `ldmxcsr [m]`.
    pub fn ldmxcsr(&mut self, m: Mem) {
        self.op_rm(false, &[0x0f, 0xae], R(2), m, false)
    }
    /// `test byte [m], imm8`.
    pub fn test_m8(&mut self, m: Mem, v: u8) {
        self.op_rm(false, &[0xf6], R(0), m, false);
        self.b(v);
    }
    /// `mov dword [m], imm32`.
    pub fn store_imm32(&mut self, m: Mem, v: i32) {
        self.op_rm(false, &[0xc7], R(0), m, false);
        self.d32(v);
    }
    pub fn ret(&mut self) {
        self.b(0xc3)
    }
    pub fn nop(&mut self) {
        self.b(0x90)
    }
    /// Pads with nops until `(pos + k) % align == 0`.
    pub fn align_for(&mut self, k: usize, align: usize) {
        while !(self.pos() + k).is_multiple_of(align) {
            self.nop();
        }
    }
}
