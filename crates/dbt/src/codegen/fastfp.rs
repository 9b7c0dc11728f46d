//! Inline host-FPU fast paths for helper calls that carry a [`FastFp`] description.
//!
//! The fast path computes the result with one SSE/FMA instruction and keeps it only when the
//! [`FastFp`] contract says the helper would have returned the same value with no other
//! effect than accruing inexact (which the host FPU records, see `inexact`): the guard holds,
//! binary32 operands are NaN-boxed, and the result is a normal number away from the underflow
//! threshold. The operands need no finiteness check of their
//! own: with an infinite or NaN operand every one of these operations yields an infinity, a
//! NaN or (x / inf) a zero, all of which fail the result check. Anything else jumps to an
//! out-of-line stub that makes the real call while preserving every host register, so the
//! register allocator's view is the same on both paths.

use super::inexact::{emit_clear, emit_fold, emit_host_mode, FlagHome};
use super::xregs::{XALLOC, XMM_BASE};
use super::{DirtyRegs, Gen, Stub, ALLOC, CALLEE_SAVED};
use crate::ir::{CallOp, FastFp, FpOp, Helper, Temp, Val};
use crate::x86::*;

/// Caller-saved allocatable registers, pushed by the slow path around its call (an even
/// count keeps the stack 16-byte aligned).
const PRESERVED: [R; 6] = [RSI, RDI, R8, R9, R10, R11];

/// An argument of the slow-path call, as it is at the fast path's branch points.
#[derive(Clone, Copy)]
pub(super) enum Arg {
    Const(u64),
    Reg(R),
    Xmm(u8),
}

/// A fast op's operands made ready (see `settle_operands`): the slow call's arguments, the
/// host instruction's operands, and the general-purpose and xmm registers they occupy.
struct Settled {
    call_args: Vec<Arg>,
    operands: Vec<Loc>,
    avoid: Vec<R>,
    xavoid: Vec<u8>,
}

/// Where an operand or the result of the host instruction is.
#[derive(Clone, Copy)]
pub(super) enum Loc {
    Gpr(R),
    Xmm(u8),
}

/// Out-of-line slow path of one fast FP op.
pub(super) struct SlowCall {
    pub sites: Vec<usize>,
    /// The host instruction whose FP exception (see `fptrap`) resumes in this stub.
    pub trap: usize,
    pub f: u64,
    pub args: Vec<Arg>,
    pub dst: Loc,
    /// Dirty globals to store before the call (env offset, register), so the helper sees
    /// the exact guest state.
    pub dirty: DirtyRegs,
    /// Registers caching globals the helper may write: reloaded after the call (numbered as
    /// in `DirtyRegs`).
    pub reload: Vec<(u32, u8)>,
    /// xmm registers holding values: the call clobbers them, so the stub saves them.
    pub xsave: Vec<u8>,
    pub done: usize,
}

fn host_supports(op: FpOp) -> bool {
    op != FpOp::MulAdd || std::is_x86_feature_detected!("fma")
}

/// Whether a call with `nargs` arguments and fast path `f` is inlined as arithmetic (not a
/// comparison) in a block with a flag register: what `fast_fp_call` decides, for
/// `xregs::classify`.
pub(super) fn inlined_arith(f: &FastFp, nargs: usize) -> bool {
    let guard_fails = matches!(f.guard, Val::C(c) if (c as u32 & f.guard_mask) != f.guard_want);
    !f.op.is_compare() && host_supports(f.op) && nargs >= f.op.arity() && !guard_fails
}

impl Gen<'_> {
    /// Emits `dst = helper(args)` with the inline fast path; `None` from the caller's point
    /// of view means "out of spill slots" as everywhere in the generator. Returns
    /// `Some(false)` when the fast path cannot apply (the caller emits a plain call).
    pub(super) fn fast_fp_call(&mut self, call: &CallOp) -> Option<bool> {
        let (Some(dst), Some(fast)) = (call.dst, &call.fast) else {
            return Some(false);
        };
        let (helper, args) = (call.helper, &call.args[..]);
        if !host_supports(fast.op) || args.len() < fast.op.arity() {
            return Some(false);
        }
        if fast.op.is_compare() {
            return self.fast_fp_compare(helper, dst, args, fast);
        }
        if self.flag_global.is_none() {
            // Without a place for the host's inexact flag, results must come from the helper.
            return Some(false);
        }
        let check_guard = match fast.guard {
            Val::C(c) if (c as u32 & fast.guard_mask) != fast.guard_want => return Some(false),
            Val::C(_) => false,
            Val::T(_) => fast.guard_mask != 0,
        };
        // Every register the op needs is settled before the first branch.
        let Settled {
            mut call_args,
            operands,
            mut avoid,
            xavoid,
        } = self.settle_operands(args, fast.op.arity(), fast.double)?;
        let guard = if check_guard {
            let g = self.get(fast.guard, None, &avoid)?;
            avoid.push(g);
            Some(g)
        } else {
            None
        };
        let d = if self.is_x(dst) && fast.double {
            // Straight into the guest register the result is moved to next. If that register
            // is the first operand (`fmadd.d fa5, fa5, ..`: x86's two-address form in place),
            // the slow path gets a copy in xmm0, which nothing else uses before it reads it.
            let target = self
                .next_move_target(dst)
                .and_then(|g| self.xreg_of[g.0 as usize]);
            let only_first = |x: u8| {
                call_args.iter().enumerate().all(|(k, a)| match a {
                    Arg::Xmm(y) => (*y == x) == (k == 0),
                    _ => k != 0,
                })
            };
            match target {
                Some(x) if !xavoid.contains(&x) => {
                    self.xunbind(x);
                    Loc::Xmm(x)
                }
                Some(x) if only_first(x) => {
                    self.a.movapd(0, x);
                    call_args[0] = Arg::Xmm(0);
                    self.xunbind(x);
                    Loc::Xmm(x)
                }
                _ => Loc::Xmm(self.xalloc(&xavoid)?),
            }
        } else {
            Loc::Gpr(self.alloc(&avoid)?)
        };
        let mut sites = Vec::new();
        if let Some(g) = guard {
            self.a.mov_rr(false, RAX, g);
            self.a.alu_ri(false, Alu::And, RAX, fast.guard_mask as i32);
            if fast.guard_want != 0 {
                self.a.alu_ri(false, Alu::Cmp, RAX, fast.guard_want as i32);
            }
            sites.push(self.a.jcc(Cc::Ne));
        }
        let into = match d {
            Loc::Xmm(x) => x,
            Loc::Gpr(_) => 0,
        };
        let trap = self.fast_fp_body(fast, &operands, into, &mut sites);
        match d {
            Loc::Xmm(_) => {}
            Loc::Gpr(r) => {
                self.a.movq_from_xmm(fast.double, RAX, into);
                if !fast.double {
                    self.a.mov_ri(RCX, 0xffff_ffff_0000_0000);
                    self.a.alu_rr(true, Alu::Or, RAX, RCX);
                }
                self.a.mov_rr(true, r, RAX);
            }
        }
        self.push_slow_call(helper, call_args, d, sites, trap);
        match d {
            Loc::Xmm(x) => self.xbind(dst, x),
            Loc::Gpr(r) => self.bind(dst, r),
        }
        Some(true)
    }

    /// A comparison: `ucomis` gives the relation unless an operand is a NaN (parity set),
    /// which the helper handles (flags, signalling rules).
    fn fast_fp_compare(
        &mut self,
        helper: Helper,
        dst: Temp,
        args: &[Val],
        fast: &FastFp,
    ) -> Option<bool> {
        let dbl = fast.double;
        let Settled {
            call_args,
            operands,
            avoid,
            ..
        } = self.settle_operands(args, 2, dbl)?;
        let d = self.alloc(&avoid)?;
        let mut sites = Vec::new();
        if !dbl {
            self.check_boxed(&operands, &mut sites);
        }
        self.operands_to_scratch(&operands);
        // A signalling NaN raises invalid, which traps in generated code's MXCSR mode.
        let trap = self.a.pos();
        self.a.ucomis(dbl, 0, 1);
        sites.push(self.a.jcc(Cc::P));
        let cc = match fast.op {
            FpOp::Eq => Cc::E,
            FpOp::Lt => Cc::B,
            _ => Cc::Be,
        };
        self.a.setcc(cc, RAX);
        self.a.mov_rr(true, d, RAX);
        self.push_slow_call(helper, call_args, Loc::Gpr(d), sites, trap);
        self.bind(dst, d);
        Some(true)
    }

    /// Puts the call's arguments where both paths can use them: temporaries in registers
    /// (xmm-class ones of double operations in xmm registers), constants as constants, and
    /// the first `arity` (the host instruction's operands) all in registers. Returns the
    /// call arguments, the operand locations and the general-purpose and xmm registers in
    /// use.
    fn settle_operands(&mut self, args: &[Val], arity: usize, double: bool) -> Option<Settled> {
        let mut avoid: Vec<R> = Vec::new();
        let mut xavoid: Vec<u8> = Vec::new();
        let mut call_args = Vec::with_capacity(args.len());
        for &v in args {
            match v {
                Val::C(c) => call_args.push(Arg::Const(c)),
                Val::T(t) if double && self.is_x(t) => {
                    let x = self.xget(t, &xavoid)?;
                    xavoid.push(x);
                    call_args.push(Arg::Xmm(x));
                }
                Val::T(_) => {
                    let r = self.get(v, None, &avoid)?;
                    avoid.push(r);
                    call_args.push(Arg::Reg(r));
                }
            }
        }
        let mut operands = Vec::with_capacity(arity);
        for (k, arg) in call_args.iter().take(arity).enumerate() {
            let loc = match *arg {
                Arg::Reg(r) => Loc::Gpr(r),
                Arg::Xmm(x) => Loc::Xmm(x),
                // A constant operand (rare: propagated from an integer move) gets a register.
                Arg::Const(_) => {
                    let r = self.get(args[k], None, &avoid)?;
                    avoid.push(r);
                    Loc::Gpr(r)
                }
            };
            operands.push(loc);
        }
        Some(Settled {
            call_args,
            operands,
            avoid,
            xavoid,
        })
    }

    /// Copies the operands to xmm0, xmm1, ...
    fn operands_to_scratch(&mut self, operands: &[Loc]) {
        for (k, &loc) in operands.iter().enumerate() {
            match loc {
                Loc::Xmm(x) => self.a.movapd(k as u8, x),
                Loc::Gpr(r) => self.a.movq_to_xmm(true, k as u8, r),
            }
        }
    }

    /// Records the slow path for the fast op just emitted (result register `d`, which the
    /// fast path has filled; `sites` jump to the slow path, and a host FP exception at the
    /// instruction at `trap` resumes there).
    fn push_slow_call(
        &mut self,
        helper: Helper,
        args: Vec<Arg>,
        d: Loc,
        sites: Vec<usize>,
        trap: usize,
    ) {
        let accrues = self.flag_global.is_some_and(|g| helper.may_write(g));
        // Arithmetic helpers accrue flags; the stub's reload of the flag register and its
        // MXCSR switch around the call (see `inexact`) rely on the helper saying so.
        debug_assert!(
            accrues || matches!(d, Loc::Gpr(_)),
            "{}: inline FP arithmetic whose helper does not write the flag register",
            helper.name
        );
        let gprs = ALLOC.iter().map(|r| r.0);
        let xmms = XALLOC.iter().map(|x| x + XMM_BASE);
        let reload = gprs
            .chain(xmms)
            .filter_map(|k| {
                let (t, _) = self.held(k)?;
                (self.is_global(t) && helper.may_write(t))
                    .then(|| (self.b.globals[t.0 as usize].offset, k))
            })
            .collect();
        let xsave = self.xoccupied();
        let dirty = self.dirty_list();
        self.stubs.push(Stub::SlowCall(SlowCall {
            sites,
            trap,
            f: helper.f as usize as u64,
            args,
            dst: d,
            dirty,
            reload,
            xsave,
            done: self.a.pos(),
        }));
    }

    /// Jumps to the slow path unless every binary32 operand is NaN-boxed.
    fn check_boxed(&mut self, operands: &[Loc], sites: &mut Vec<usize>) {
        for &loc in operands {
            // Only double operations take operands from xmm registers.
            let Loc::Gpr(r) = loc else {
                unreachable!("binary32 operands are in general-purpose registers")
            };
            self.a.mov_rr(true, RAX, r);
            self.a.shift_i(true, Shift::Shr, RAX, 32);
            self.a.alu_ri(false, Alu::Cmp, RAX, -1);
            sites.push(self.a.jcc(Cc::Ne));
        }
    }

    /// Operand checks, the host operation into xmm register `into` (which may be the first
    /// operand's, and no other's) and the result check. Returns the position of the host
    /// operation, which traps on invalid, divide-by-zero, overflow and underflow (see
    /// `fptrap`); what it completes is a number, or a NaN propagated from a quiet NaN
    /// operand, which the check after it sends to the slow path.
    fn fast_fp_body(
        &mut self,
        fast: &FastFp,
        operands: &[Loc],
        into: u8,
        sites: &mut Vec<usize>,
    ) -> usize {
        let dbl = fast.double;
        if !dbl {
            self.check_boxed(operands, sites);
        }
        // Operands other than the first are read where they are (xmm1, xmm2 if in a
        // general-purpose register); the first is copied into `into`, which x86's two-address
        // forms overwrite. A square root reads its operand in place.
        let mut src = [0u8; 3];
        for (k, &loc) in operands.iter().enumerate() {
            src[k] = match loc {
                Loc::Xmm(x) => x,
                Loc::Gpr(r) => {
                    let x = if k == 0 { into } else { k as u8 };
                    self.a.movq_to_xmm(true, x, r);
                    x
                }
            };
        }
        if fast.op != FpOp::Sqrt && src[0] != into {
            self.a.movapd(into, src[0]);
        }
        let trap = self.a.pos();
        match fast.op {
            FpOp::Add => self.a.sse_scalar(dbl, 0x58, into, src[1]),
            FpOp::Sub => self.a.sse_scalar(dbl, 0x5c, into, src[1]),
            FpOp::Mul => self.a.sse_scalar(dbl, 0x59, into, src[1]),
            FpOp::Div => self.a.sse_scalar(dbl, 0x5e, into, src[1]),
            FpOp::Sqrt => self.a.sse_scalar(dbl, 0x51, into, src[0]),
            FpOp::MulAdd => {
                let opc = match (fast.neg_prod, fast.neg_add) {
                    (false, false) => 0xa9,
                    (false, true) => 0xab,
                    (true, false) => 0xad,
                    (true, true) => 0xaf,
                };
                self.a.fma213(dbl, opc, into, src[1], src[2])
            }
            FpOp::Eq | FpOp::Lt | FpOp::Le => unreachable!("comparisons have their own path"),
        }
        // Only a NaN result needs the helper now: the guest's is the canonical NaN.
        self.a.ucomis(dbl, into, into);
        sites.push(self.a.jcc(Cc::P));
        trap
    }

    /// Emits the slow path of a fast FP op (called from `finish`, after the block's code).
    pub(super) fn slow_call_stub(&mut self, s: SlowCall) {
        let here = self.a.pos();
        for site in s.sites {
            self.a.patch(site, here);
        }
        self.out.fp_traps.push((s.trap, here));
        for (off, r) in s.dirty.iter() {
            self.store_any(mem(RBP, off as i32), r);
        }
        for r in PRESERVED {
            self.a.push(r);
        }
        // The xmm save area keeps the stack 16-byte aligned.
        let xbytes = (s.xsave.len() as i32 * 8 + 15) & !15;
        if xbytes > 0 {
            self.a.alu_ri(true, Alu::Sub, RSP, xbytes);
            for (i, &x) in s.xsave.iter().enumerate() {
                self.a.movq_store(mem(RSP, i as i32 * 8), x);
            }
        }
        let arg_regs = [RSI, RDX, RCX, R8];
        for (k, target) in arg_regs.into_iter().enumerate() {
            match s.args.get(k) {
                None => self.a.mov_ri(target, 0),
                Some(Arg::Const(c)) => self.a.mov_ri(target, *c),
                Some(Arg::Xmm(x)) => self.a.movq_from_xmm(true, target, *x),
                Some(Arg::Reg(r)) if CALLEE_SAVED.contains(r) => self.a.mov_rr(true, target, *r),
                Some(Arg::Reg(r)) => {
                    // Read the pushed copy: earlier argument moves may have overwritten it.
                    let pos = PRESERVED.iter().position(|p| p == r).expect("allocatable");
                    let depth = xbytes + (PRESERVED.len() - 1 - pos) as i32 * 8;
                    self.a.load(true, target, mem(RSP, depth));
                }
            }
        }
        if let Some(f) = self.inexact {
            // The dirty globals are in the env now, where the helper sees (and accrues on)
            // the flags.
            emit_fold(
                &mut self.a,
                FlagHome::Mem(mem(RBP, f.offset as i32)),
                f.mask,
            );
            emit_host_mode(&mut self.a);
        }
        self.a.mov_rr(true, RDI, RBP);
        self.a.mov_ri(RAX, s.f);
        self.a.call_r(RAX);
        if self.inexact.is_some() {
            // Generated code's mode, flags clear: the helper accrued its flags in the env.
            emit_clear(&mut self.a);
        }
        if xbytes > 0 {
            for (i, &x) in s.xsave.iter().enumerate() {
                self.a.movq_load(x, mem(RSP, i as i32 * 8));
            }
            self.a.alu_ri(true, Alu::Add, RSP, xbytes);
        }
        for r in PRESERVED.into_iter().rev() {
            self.a.pop(r);
        }
        let dst = match s.dst {
            Loc::Gpr(r) => {
                self.a.mov_rr(true, r, RAX);
                r.0
            }
            Loc::Xmm(x) => {
                self.a.movq_to_xmm(true, x, RAX);
                XMM_BASE + x
            }
        };
        for (off, k) in s.reload {
            if k != dst {
                match k.checked_sub(XMM_BASE) {
                    Some(x) => self.a.movq_load(x, mem(RBP, off as i32)),
                    None => self.a.load(true, R(k), mem(RBP, off as i32)),
                }
            }
        }
        let j = self.a.jmp();
        self.a.patch(j, s.done);
    }
}
