//! Guest memory behind a soft MMU (full-system mode): each access probes the block's TLB
//! inline and goes through an out-of-line slow path on a miss.
//!
//! The probe (about ten instructions, on the model of QEMU's TLB fast path):
//!
//! ```text
//!   lea  t, [base + disp]            ; virtual address
//!   mov  rax, t ; shr rax, 7 ; and eax, (N-1) << 5     ; entry offset
//!   and  t, -4096 | (size - 1)       ; page, plus the low bits of a misaligned access
//!   cmp  t, [rbp + rax + tlb + tag]  ; tag: the page a load (or store) may use
//!   jne  slow
//!   mov  rax, [rbp + rax + tlb + 16] ; addend
//!   <the access at [rax + base + disp]>
//! ```
//!
//! A misaligned access never matches (its low bits are in `t`, never in a tag) and takes
//! the slow path, as do pages the TLB does not map (devices; pages with translated code,
//! for stores). The slow path saves the caller-saved registers the allocator uses, calls
//! the front end's `slow(env, vaddr, value, info)`, and either continues after the access
//! with the loaded value, or, when the guest faulted, stores the dirty guest registers and
//! leaves the block at the instruction (as a failed range check does in user mode).

use super::fastfp::Loc;
use super::{DirtyRegs, Gen, Stub};
use crate::ir::{MemSize, SoftMmu, Temp, Val, TLB_ENTRY_BYTES};
use crate::native as n;
use crate::x86::*;

/// Caller-saved registers the allocator hands out (saved around the slow call).
const PRESERVED: [R; 6] = [RSI, RDI, R8, R9, R10, R11];

/// A store's value as the slow path needs it.
#[derive(Clone, Copy)]
pub(super) enum StoreVal {
    Reg(R),
    Xmm(u8),
    Const(u64),
}

pub(super) struct MmuStub {
    site: usize,
    resume: usize,
    base: R,
    disp: i32,
    value: Option<StoreVal>,
    dst: Option<Loc>,
    info: u64,
    pc: u64,
    dirty: DirtyRegs,
    xsave: Vec<u8>,
    mmu: SoftMmu,
}

impl Gen<'_> {
    /// The TLB probe for an access of `bytes` at `base + disp`; on a hit rax holds the
    /// page's addend (see [`Gen::probed`]). Returns the jump to the slow path.
    fn tlb_probe(
        &mut self,
        m: SoftMmu,
        base: R,
        disp: i32,
        bytes: u64,
        write: bool,
        t: R,
    ) -> usize {
        // Entry offset = ((vaddr >> 12) & (N - 1)) * 32 = (vaddr >> 7) & ((N - 1) << 5).
        let entry_shift = TLB_ENTRY_BYTES.trailing_zeros() as u8;
        self.a.lea(true, t, mem(base, disp));
        self.a.mov_rr(true, RAX, t);
        self.a.shift_i(true, Shift::Shr, RAX, 12 - entry_shift);
        self.a.alu_ri(
            false,
            Alu::And,
            RAX,
            ((1i32 << m.tlb_bits) - 1) << entry_shift,
        );
        self.a.alu_ri(true, Alu::And, t, -4096 | (bytes as i32 - 1));
        let entry = |disp: u32| Mem {
            base: RBP,
            index: Some(RAX),
            scale: 0,
            disp: (m.tlb_offset + disp) as i32,
        };
        self.a.cmp_rm(true, t, entry(if write { 8 } else { 0 }));
        let site = self.a.jcc(Cc::Ne);
        self.a.load(true, RAX, entry(16));
        site
    }

    /// The host address of a probed access: addend (rax) + guest base register + disp.
    fn probed(base: R, disp: i32) -> Mem {
        Mem {
            base: RAX,
            index: Some(base),
            scale: 0,
            disp,
        }
    }

    fn push_mmu_stub(&mut self, s: MmuStub) {
        self.stubs.push(Stub::Mmu(s));
    }

    /// `dst = load(addr + disp)` through the soft MMU.
    pub(super) fn soft_load(
        &mut self,
        m: SoftMmu,
        dst: Temp,
        addr: Val,
        disp: i32,
        size: MemSize,
        signed: bool,
    ) -> Option<()> {
        let ra = self.get(addr, Some(RCX), &[])?;
        let bytes = size.bytes();
        let loc = if self.is_x(dst) && size == MemSize::B8 {
            Loc::Xmm(self.xalloc(&[])?)
        } else {
            Loc::Gpr(self.alloc(&[ra])?)
        };
        let t = match loc {
            Loc::Gpr(d) => d,
            Loc::Xmm(_) => self.alloc(&[ra])?,
        };
        let site = self.tlb_probe(m, ra, disp, bytes, false, t);
        let at = Self::probed(ra, disp);
        match loc {
            Loc::Gpr(d) => self.a.load_ext(d, at, bytes, signed),
            Loc::Xmm(x) => self.a.movq_load(x, at),
        }
        let s = MmuStub {
            site,
            resume: self.a.pos(),
            base: ra,
            disp,
            value: None,
            dst: Some(loc),
            info: SoftMmu::info(size, signed, false),
            pc: self.pc,
            dirty: self.dirty_list(),
            xsave: self.xoccupied(),
            mmu: m,
        };
        self.push_mmu_stub(s);
        match loc {
            Loc::Gpr(d) => {
                self.unbind(d);
                self.bind(dst, d);
            }
            Loc::Xmm(x) => {
                self.xunbind(x);
                self.xbind(dst, x);
            }
        }
        Some(())
    }

    /// `store(addr + disp) = src` through the soft MMU.
    pub(super) fn soft_store(
        &mut self,
        m: SoftMmu,
        src: Val,
        addr: Val,
        disp: i32,
        size: MemSize,
    ) -> Option<()> {
        let bytes = size.bytes();
        let ra = self.get(addr, Some(RCX), &[])?;
        let value = match src {
            Val::C(v) if Asm::imm_storable(v, bytes) => StoreVal::Const(v),
            Val::T(s) if self.is_x(s) && size == MemSize::B8 && addr != src => {
                StoreVal::Xmm(self.xget(s, &[])?)
            }
            _ => StoreVal::Reg(self.get(src, Some(RDX), &[ra])?),
        };
        let mut avoid = vec![ra];
        if let StoreVal::Reg(r) = value {
            avoid.push(r);
        }
        let t = self.alloc(&avoid)?;
        let site = self.tlb_probe(m, ra, disp, bytes, true, t);
        let at = Self::probed(ra, disp);
        match value {
            StoreVal::Const(v) => self.a.store_imm_sized(at, v, bytes),
            StoreVal::Xmm(x) => self.a.movq_store(at, x),
            StoreVal::Reg(r) => self.a.store_sized(at, r, bytes),
        }
        let s = MmuStub {
            site,
            resume: self.a.pos(),
            base: ra,
            disp,
            value: Some(value),
            dst: None,
            info: SoftMmu::info(size, false, true),
            pc: self.pc,
            dirty: self.dirty_list(),
            xsave: self.xoccupied(),
            mmu: m,
        };
        self.push_mmu_stub(s);
        Some(())
    }

    /// Out of line: the slow path of one access.
    pub(super) fn mmu_stub(&mut self, s: MmuStub) {
        let here = self.a.pos();
        self.a.patch(s.site, here);
        for r in PRESERVED {
            self.a.push(r);
        }
        // The xmm save area keeps the stack 16-byte aligned (six pushes are 48 bytes).
        let xbytes = (s.xsave.len() as i32 * 8 + 15) & !15;
        if xbytes > 0 {
            self.a.alu_ri(true, Alu::Sub, RSP, xbytes);
            for (i, &x) in s.xsave.iter().enumerate() {
                self.a.movq_store(mem(RSP, i as i32 * 8), x);
            }
        }
        // Arguments in an order that reads every source before it is overwritten: rsi is
        // saved (read its copy), rdx and rcx are written after what may live in them is read.
        let saved = |r: R| {
            PRESERVED
                .iter()
                .position(|p| *p == r)
                .map(|pos| mem(RSP, xbytes + (PRESERVED.len() - 1 - pos) as i32 * 8))
        };
        match saved(s.base) {
            Some(m) => {
                self.a.load(true, RSI, m);
                self.a.lea(true, RSI, mem(RSI, s.disp));
            }
            None => self.a.lea(true, RSI, mem(s.base, s.disp)),
        }
        match s.value {
            None => self.a.mov_ri(RDX, 0),
            Some(StoreVal::Const(v)) => self.a.mov_ri(RDX, v),
            Some(StoreVal::Xmm(x)) => self.a.movq_from_xmm(true, RDX, x),
            Some(StoreVal::Reg(r)) => match saved(r) {
                Some(m) => self.a.load(true, RDX, m),
                None => self.a.mov_rr(true, RDX, r),
            },
        }
        self.a.mov_ri(RCX, s.info);
        self.a.mov_rr(true, RDI, RBP);
        self.a.mov_ri(RAX, s.mmu.slow as usize as u64);
        self.a.call_r(RAX);
        if xbytes > 0 {
            for (i, &x) in s.xsave.iter().enumerate() {
                self.a.movq_load(x, mem(RSP, i as i32 * 8));
            }
            self.a.alu_ri(true, Alu::Add, RSP, xbytes);
        }
        for r in PRESERVED.into_iter().rev() {
            self.a.pop(r);
        }
        self.a.cmp_m_zero(mem(RBP, s.mmu.fault_offset as i32));
        let fault = self.a.jcc(Cc::Ne);
        match s.dst {
            Some(Loc::Gpr(d)) => self.a.mov_rr(true, d, RAX),
            Some(Loc::Xmm(x)) => self.a.movq_to_xmm(true, x, RAX),
            None => {}
        }
        let back = self.a.jmp();
        self.a.patch(back, s.resume);
        // The guest faulted: its exception is recorded; leave at the instruction with the
        // guest registers as they were before it.
        let here = self.a.pos();
        self.a.patch(fault, here);
        for (off, r) in s.dirty.iter() {
            self.store_any(mem(RBP, off as i32), r);
        }
        self.set_pc_exit(s.pc, self.tb_idx << 8 | n::K_RANGE);
    }
}
