//! Arithmetic and atomic read-modify-write lowering (split from the main code generator).

use super::{Gen, ALLOC};
use crate::ir::{BinOp, Op, RmwOp, Temp, Ty, Val};
use crate::native as n;
use crate::x86::*;

impl Gen<'_> {
    pub(super) fn bin(&mut self, op: BinOp, ty: Ty, dst: Temp, a: Val, b: Val) -> Option<()> {
        let w = self.w(ty);
        let alu = match op {
            BinOp::Add => Some(Alu::Add),
            BinOp::Sub => Some(Alu::Sub),
            BinOp::And => Some(Alu::And),
            BinOp::Or => Some(Alu::Or),
            BinOp::Xor => Some(Alu::Xor),
            _ => None,
        };
        let shift = match op {
            BinOp::Shl => Some(Shift::Shl),
            BinOp::Shr => Some(Shift::Shr),
            BinOp::Sar => Some(Shift::Sar),
            BinOp::Rotl => Some(Shift::Rol),
            BinOp::Rotr => Some(Shift::Ror),
            _ => None,
        };
        if matches!(
            op,
            BinOp::DivS | BinOp::DivU | BinOp::RemS | BinOp::RemU | BinOp::MulHs | BinOp::MulHu
        ) {
            return self.muldiv(op, ty, dst, a, b);
        }
        if alu.is_none() && shift.is_none() && op != BinOp::Mul {
            let code = n::bin_code(op, ty);
            return self.call(
                n::pure_bin as *const () as usize as u64,
                false,
                &[Val::C(code), a, b],
                Some(dst),
            );
        }
        let ra = self.get(a, Some(RAX), &[])?;
        let (rb, imm) = match (shift, b) {
            (Some(_), Val::C(c)) => (RCX, Some((c & (ty.bits() as u64 - 1)) as i32)),
            (Some(_), _) => {
                let r = self.get(b, Some(RCX), &[ra])?;
                (r, None)
            }
            (None, _) if op == BinOp::Mul => (self.get(b, Some(RCX), &[ra])?, None),
            _ => self.operand(b, w, RCX, &[ra])?,
        };
        // Compute in place when `a` dies here or is the guest register being overwritten,
        // directly or by the move right after (`g = g op b`; x86 is two-address). Not in a
        // scratch register (an xmm-class `a` is copied to one): results never live there.
        let in_place = ALLOC.contains(&ra);
        let d = match self.dying_local_reg(a) {
            Some(r) => r,
            None if in_place && a == Val::T(dst) && self.is_global(dst) => ra,
            None if in_place && self.written_back_next(a, dst) => {
                self.unbind(ra);
                ra
            }
            None => self.alloc(&[ra, rb])?,
        };
        if let (Some(s @ (Shift::Shl | Shift::Shr | Shift::Sar)), None) = (shift, imm) {
            if std::is_x86_feature_detected!("bmi2") {
                // Three operands and any count register: no copies into `d` and `cl`.
                self.a.shiftx(w, s, d, ra, rb);
                self.bind(dst, d);
                return Some(());
            }
        }
        if d != ra {
            // Three-operand additions: one `lea` instead of a copy and the operation.
            let sum = match (op, imm) {
                (BinOp::Add, Some(i)) => Some(mem(ra, i)),
                (BinOp::Sub, Some(i)) if i != i32::MIN => Some(mem(ra, -i)),
                (BinOp::Add, None) => Some(mem_idx(ra, rb)),
                _ => None,
            };
            if let Some(m) = sum {
                self.a.lea(w, d, m);
                self.bind(dst, d);
                return Some(());
            }
            self.a.mov_rr(w, d, ra);
        }
        match (alu, shift, imm) {
            (Some(o), _, Some(i)) => self.a.alu_ri(w, o, d, i),
            (Some(o), _, None) => self.a.alu_rr(w, o, d, rb),
            (_, Some(s), Some(i)) => self.a.shift_i(w, s, d, i as u8),
            (_, Some(s), None) => {
                if rb != RCX {
                    self.a.mov_rr(true, RCX, rb);
                }
                self.a.shift_cl(w, s, d);
            }
            _ => self.a.imul_rr(w, d, rb),
        }
        self.bind(dst, d);
        Some(())
    }

    /// `t = x << k` (k in 1..=3) whose one use is the add that comes next (`u = t + y`, a
    /// table index or array address: `slli` then `add`) becomes one `lea u, [y + x*2^k]`,
    /// and a second add right after it folds in too (`slli; addi; add`:
    /// `lea [y + x*2^k + c]`). Values may pass through guest registers on the way
    /// (`Mov g <- t`) when the next add's result overwrites that register at once: nothing
    /// between can fault or leave, so the intermediate values are never seen. Returns
    /// false, emitting nothing, when the pattern does not apply.
    pub(super) fn scaled_add(&mut self, op: &Op) -> Option<bool> {
        let Op::Bin {
            op: BinOp::Shl,
            ty: Ty::I64,
            dst: t,
            a: Val::T(x),
            b: Val::C(k @ 1..=3),
        } = *op
        else {
            return Some(false);
        };
        if self.is_x(t) || self.is_x(x) {
            return Some(false);
        }
        let Some(first) = self.next_add_of(self.cur, t) else {
            return Some(false);
        };
        let (mut base, mut disp) = (None, 0i32);
        let mut take = |v: Val| match v {
            Val::T(y) if base.is_none() => {
                base = Some(y);
                true
            }
            Val::C(c) if disp == 0 => match i32::try_from(c as i64) {
                Ok(c) => {
                    disp = c;
                    true
                }
                Err(_) => false,
            },
            _ => false,
        };
        if !take(first.other) {
            return Some(false);
        }
        let mut fused: Vec<usize> = first.via.into_iter().chain([first.at]).collect();
        let mut dst = first.dst;
        if let Some(second) = self.next_add_of(first.at, first.dst) {
            // The second operand must be read where the first add was: not written by it
            // or by the moves folded in with it.
            let later: Vec<usize> = second.via.into_iter().chain([second.at]).collect();
            let unchanged = match second.other {
                Val::T(y) => fused.iter().all(|&f| self.b.ops[f].def() != Some(y)),
                Val::C(_) => true,
            };
            if unchanged && take(second.other) {
                fused.extend(later);
                dst = second.dst;
            }
        }
        let rx = self.get(Val::T(x), None, &[])?;
        let d = match base {
            Some(y) => {
                let ry = self.get(Val::T(y), None, &[rx])?;
                let d = self.alloc(&[rx, ry])?;
                let m = Mem {
                    base: ry,
                    index: Some(rx),
                    scale: k as u8,
                    disp,
                };
                self.a.lea(true, d, m);
                d
            }
            None => {
                let d = self.alloc(&[rx])?;
                self.a.lea_scaled(true, d, rx, k as u8, disp);
                d
            }
        };
        self.bind(dst, d);
        self.fused.extend(fused);
        Some(true)
    }

    /// The add that comes right after op `from` (InsnStart markers aside) and reads
    /// `value`, directly or through the guest register a `Mov` copies it to first, if
    /// `value` (and that register) die there and the add can be lowered early.
    fn next_add_of(&self, from: usize, value: Temp) -> Option<NextAdd> {
        let ops = &self.b.ops;
        let after =
            |from: usize| (from + 1..ops.len()).find(|&j| !matches!(ops[j], Op::InsnStart { .. }));
        let mut at = after(from)?;
        let (mut held, mut via) = (value, None);
        if let Op::Mov {
            dst: g,
            src: Val::T(s),
        } = ops[at]
        {
            if s != value || !self.is_global(g) || self.is_global(value) || self.is_x(g) {
                return None;
            }
            (held, via) = (g, Some(at));
            at = after(at)?;
        }
        let Op::Bin {
            op: BinOp::Add,
            ty: Ty::I64,
            dst,
            a,
            b,
        } = ops[at]
        else {
            return None;
        };
        let other = match (a, b) {
            (Val::T(p), o) | (o, Val::T(p)) if p == held && o != Val::T(held) => o,
            _ => return None,
        };
        // A guest register holding the value must be overwritten by the add's result.
        let overwritten = |g: Temp| {
            dst == g
                || matches!(ops.get(at + 1), Some(Op::Mov { dst: d, src: Val::T(s) })
                    if *d == g && *s == dst)
        };
        let dies = if self.is_global(held) {
            overwritten(held)
        } else {
            self.last_use[value.0 as usize] == at
        } && (self.is_global(value)
            || self.last_use[value.0 as usize] == via.unwrap_or(at));
        // Nor may the add observe the deferred inexact flag, or start the part of a
        // self-loop that back edges enter (it would be skipped on later iterations).
        let splits_loop = matches!(self.loop_prefix, Some((end, _)) if end > from && end <= at);
        let plain = matches!(other, Val::C(_)) || matches!(other, Val::T(y) if !self.is_x(y));
        (dies && plain && !splits_loop && !self.is_x(dst) && !self.observes_inexact(&ops[at]))
            .then_some(NextAdd {
                at,
                via,
                dst,
                other,
            })
    }

    /// True if the next op is `Mov g <- dst`, `a` is the global `g` and that move is the last
    /// use of `dst`: the old value of `g` is then dead once this op has read it.
    fn written_back_next(&self, a: Val, dst: Temp) -> bool {
        let Val::T(g) = a else { return false };
        self.is_global(g)
            && self.last_use[dst.0 as usize] == self.cur + 1
            && matches!(self.b.ops.get(self.cur + 1),
                Some(Op::Mov { dst: d, src: Val::T(s) }) if *d == g && *s == dst)
    }

    /// High multiplies and divisions via rdx:rax, with RISC-V's results for division by
    /// zero and for MIN / -1 (which x86 would trap on) handled by explicit checks.
    fn muldiv(&mut self, op: BinOp, ty: Ty, dst: Temp, a: Val, b: Val) -> Option<()> {
        let w = self.w(ty);
        let ra = self.get(a, Some(RAX), &[])?;
        let rb = self.get(b, Some(RCX), &[ra])?;
        let d = self.alloc(&[ra, rb])?;
        if matches!(op, BinOp::MulHs | BinOp::MulHu) {
            self.a.mov_rr(true, RAX, ra);
            self.a.grp3(w, if op == BinOp::MulHu { 4 } else { 5 }, rb);
            self.a.mov_rr(w, d, RDX);
            self.bind(dst, d);
            return Some(());
        }
        let signed = matches!(op, BinOp::DivS | BinOp::RemS);
        let rem = matches!(op, BinOp::RemS | BinOp::RemU);
        let mut done = Vec::new();
        // Division by zero: quotient all ones, remainder the dividend.
        self.a.alu_ri(w, Alu::Cmp, rb, 0);
        let nonzero = self.a.jcc(Cc::Ne);
        if rem {
            self.a.mov_rr(w, d, ra);
        } else {
            self.a.mov_ri(d, ty.canon(u64::MAX));
        }
        done.push(self.a.jmp());
        let here = self.a.pos();
        self.a.patch(nonzero, here);
        if signed {
            // Divisor -1: quotient is the negation (wrapping for MIN), remainder 0.
            self.a.alu_ri(w, Alu::Cmp, rb, -1);
            let normal = self.a.jcc(Cc::Ne);
            if rem {
                self.a.mov_ri(d, 0);
            } else {
                self.a.mov_rr(w, d, ra);
                self.a.neg(w, d);
            }
            done.push(self.a.jmp());
            let here = self.a.pos();
            self.a.patch(normal, here);
        }
        self.a.mov_rr(true, RAX, ra);
        if signed {
            self.a.cqo(w);
        } else {
            self.a.alu_rr(false, Alu::Xor, RDX, RDX);
        }
        self.a.grp3(w, if signed { 7 } else { 6 }, rb);
        self.a.mov_rr(w, d, if rem { RDX } else { RAX });
        let end = self.a.pos();
        for j in done {
            self.a.patch(j, end);
        }
        self.bind(dst, d);
        Some(())
    }

    pub(super) fn rmw(
        &mut self,
        op: RmwOp,
        dst: Temp,
        addr: Val,
        val: Val,
        bytes: u64,
    ) -> Option<()> {
        let w = bytes == 8;
        let ra = self.get(addr, Some(RCX), &[])?;
        let rv = self.get(val, None, &[ra])?;
        self.range_check(ra, 0, bytes, true);
        let m = mem_idx(R14, ra);
        let d = self.alloc(&[ra, rv])?;
        match op {
            RmwOp::Xchg | RmwOp::Add => {
                self.a.mov_rr(true, d, rv);
                self.memop(true);
                if op == RmwOp::Xchg {
                    self.a.xchg(w, m, d);
                } else {
                    self.a.lock_xadd(w, m, d);
                }
                if !w {
                    self.a.movsxd(d, d);
                }
            }
            _ => {
                self.memop(true);
                self.a.load(w, RAX, m);
                let top = self.a.pos();
                self.a.mov_rr(true, RDX, RAX);
                match op {
                    RmwOp::And => self.a.alu_rr(w, Alu::And, RDX, rv),
                    RmwOp::Or => self.a.alu_rr(w, Alu::Or, RDX, rv),
                    RmwOp::Xor => self.a.alu_rr(w, Alu::Xor, RDX, rv),
                    _ => {
                        self.a.alu_rr(w, Alu::Cmp, RDX, rv);
                        let c = match op {
                            RmwOp::Min => Cc::G,
                            RmwOp::Max => Cc::L,
                            RmwOp::Minu => Cc::A,
                            _ => Cc::B,
                        };
                        self.a.cmov(w, c, RDX, rv);
                    }
                }
                self.memop(true);
                self.a.lock_cmpxchg(w, m, RDX);
                let j = self.a.jcc(Cc::Ne);
                self.a.patch(j, top);
                if w {
                    self.a.mov_rr(true, d, RAX);
                } else {
                    self.a.movsxd(d, RAX);
                }
            }
        }
        // `rv` may be a transient register holding a constant; it is unbound, so it is free.
        self.bind(dst, d);
        Some(())
    }
}

/// See [`Gen::next_add_of`].
struct NextAdd {
    /// Index of the add.
    at: usize,
    /// Index of the move into a guest register the value passed through.
    via: Option<usize>,
    dst: Temp,
    /// The add's operand other than the value.
    other: Val,
}
