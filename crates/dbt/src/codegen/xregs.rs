//! The xmm register class. Double-precision values that inline FP arithmetic (see `fastfp`)
//! reads or produces live in xmm3..xmm15 rather than in general-purpose registers: the guest
//! FP registers those operations use, their results, and the 8-byte loads that feed them. A
//! chain of FP operations, with the loads and stores around it, then never crosses between
//! the register files, and FP values leave the nine general-purpose registers to integer work.
//!
//! A temporary's class is fixed for the block (`classify`). An xmm-class value that an
//! integer op reads is copied to a general-purpose register for that op only (`get`); a value
//! computed in a general-purpose register for an xmm-class temporary is copied over (`bind`).
//! Dirty xmm-class guest registers are written back where general-purpose ones are (labels,
//! calls, exits) and appear in the same dirty lists, numbered from [`XMM_BASE`], so a fault
//! completes the guest state from the signal context's xmm registers.

use super::Gen;
use crate::ir::{Block, FastFp, MemSize, Op, Temp, Val};
use crate::x86::*;

/// Allocatable xmm registers (xmm0..xmm2 are the fast paths' scratch).
pub(super) const XALLOC: [u8; 13] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
/// Register numbers from here on in dirty lists (see `DirtyRegs`) are xmm registers.
pub const XMM_BASE: u8 = 16;

/// Which temporaries of `b` belong in xmm registers, given which FP calls are inlined as
/// double-precision arithmetic. The guest register holding the FP flags (`flags`) never
/// does: the code that folds the host's flags into it expects it in a general-purpose
/// register or in the env (copy propagation can make it an FP operand).
pub(super) fn classify(
    b: &Block,
    flags: Temp,
    inlined: impl Fn(&FastFp, usize) -> bool,
) -> Vec<bool> {
    let mut x = vec![false; b.temps.len()];
    // Results and guest-register operands of inline double arithmetic.
    for op in &b.ops {
        if let Op::Call(c) = op {
            let (Some(d), Some(f), args) = (c.dst, &c.fast, &c.args) else {
                continue;
            };
            if f.double && !f.op.is_compare() && inlined(f, args.len()) {
                x[d.0 as usize] = true;
                for v in &args[..f.op.arity()] {
                    match *v {
                        Val::T(t) if b.is_global(t) => x[t.0 as usize] = true,
                        _ => {}
                    }
                }
            }
        }
    }
    x[flags.0 as usize] = false;
    if !x.contains(&true) {
        return x;
    }
    // Guest registers receiving such values (`fmv.d` moves them on) whose every use here
    // welcomes an xmm register: an integer register written by `fmv.x.d` and then used as
    // an integer stays in the general-purpose class.
    for _ in 0..2 {
        let welcome = welcoming(b, &x);
        for op in &b.ops {
            if let Op::Mov {
                dst,
                src: Val::T(s),
            } = *op
            {
                if b.is_global(dst) && dst != flags && x[s.0 as usize] && welcome[dst.0 as usize] {
                    x[dst.0 as usize] = true;
                }
            }
        }
    }
    // 8-byte loads whose every use welcomes an xmm register.
    let welcome = welcoming(b, &x);
    for op in &b.ops {
        if let Op::Load {
            dst,
            size: MemSize::B8,
            ..
        } = *op
        {
            if !b.is_global(dst) && welcome[dst.0 as usize] {
                x[dst.0 as usize] = true;
            }
        }
    }
    x
}

/// For each temporary, whether every use of it in `b` welcomes an xmm register.
fn welcoming(b: &Block, x: &[bool]) -> Vec<bool> {
    let mut welcome = vec![true; b.temps.len()];
    for op in &b.ops {
        op.for_each_use(|v| {
            if let Val::T(t) = *v {
                if !welcomes(op, t, x) {
                    welcome[t.0 as usize] = false;
                }
            }
        });
    }
    welcome
}

/// Whether `op` can take `t` from an xmm register as it is: an operand of inline double
/// arithmetic, the value of an 8-byte store, or the source of a move to an xmm-class
/// temporary.
fn welcomes(op: &Op, t: Temp, x: &[bool]) -> bool {
    let v = Val::T(t);
    match op {
        Op::Store {
            src,
            addr,
            size: MemSize::B8,
            ..
        } => *src == v && *addr != v,
        Op::Mov { dst, .. } => x[dst.0 as usize],
        Op::Call(c) => {
            let (Some(d), Some(f), args) = (c.dst, &c.fast, &c.args) else {
                return false;
            };
            let arity = f.op.arity();
            args.len() >= arity
                && f.double
                && x[d.0 as usize]
                && f.guard != v
                && args[..arity].contains(&v)
                && !args[arity..].contains(&v)
        }
        _ => false,
    }
}

impl Gen<'_> {
    pub(super) fn is_x(&self, t: Temp) -> bool {
        self.xclass[t.0 as usize]
    }

    pub(super) fn xunbind(&mut self, x: u8) {
        if let Some(t) = self.xholds[x as usize].take() {
            self.xreg_of[t.0 as usize] = None;
        }
        self.xdirty[x as usize] = false;
    }

    /// `t` (xmm class) now lives in `x`, which differs from its home.
    pub(super) fn xbind(&mut self, t: Temp, x: u8) {
        if let Some(old) = self.xreg_of[t.0 as usize] {
            if old != x {
                self.xunbind(old);
            }
        }
        self.xunbind(x);
        self.xholds[x as usize] = Some(t);
        self.xreg_of[t.0 as usize] = Some(x);
        self.xdirty[x as usize] = true;
    }

    /// Writes an xmm register's value to its home if needed and frees it.
    fn xevict(&mut self, x: u8) -> Option<()> {
        if let Some(t) = self.xholds[x as usize] {
            let live = self.is_global(t) || self.last_use[t.0 as usize] >= self.cur;
            if self.xdirty[x as usize] && live {
                let m = self.home(t)?;
                self.a.movq_store(m, x);
            }
        }
        self.xunbind(x);
        Some(())
    }

    /// A free xmm register, evicting the value needed furthest ahead if none is.
    pub(super) fn xalloc(&mut self, avoid: &[u8]) -> Option<u8> {
        if let Some(&x) = XALLOC
            .iter()
            .find(|x| self.xholds[**x as usize].is_none() && !avoid.contains(x))
        {
            return Some(x);
        }
        self.uses.ensure(self.b);
        let score = |g: &Self, x: u8| {
            let t = g.xholds[x as usize].expect("allocated");
            (std::cmp::Reverse(g.next_use(t)), g.xdirty[x as usize])
        };
        let x = XALLOC
            .iter()
            .copied()
            .filter(|x| !avoid.contains(x))
            .min_by_key(|&x| score(self, x))?;
        self.xevict(x)?;
        Some(x)
    }

    /// Puts the xmm-class `t` in an xmm register.
    pub(super) fn xget(&mut self, t: Temp, avoid: &[u8]) -> Option<u8> {
        if let Some(x) = self.xreg_of[t.0 as usize] {
            return Some(x);
        }
        let x = self.xalloc(avoid)?;
        let m = self.home(t)?;
        self.a.movq_load(x, m);
        self.xholds[x as usize] = Some(t);
        self.xreg_of[t.0 as usize] = Some(x);
        self.xdirty[x as usize] = false;
        Some(x)
    }

    /// A copy of the xmm-class `t` in a general-purpose register (`scratch`, or one
    /// allocated avoiding `avoid`) that stays unbound: it serves the current op only.
    pub(super) fn get_from_x(&mut self, t: Temp, scratch: Option<R>, avoid: &[R]) -> Option<R> {
        let r = match scratch {
            Some(r) => r,
            None => self.alloc(avoid)?,
        };
        match self.xreg_of[t.0 as usize] {
            Some(x) => self.a.movq_from_xmm(true, r, x),
            None => {
                let m = self.home(t)?;
                self.a.load(true, r, m);
            }
        }
        Some(r)
    }

    /// `t` (xmm class) was computed into the general-purpose register `r`.
    pub(super) fn bind_from_gpr(&mut self, t: Temp, r: R) {
        match self.xalloc(&[]) {
            Some(x) => {
                self.a.movq_to_xmm(true, x, r);
                self.xbind(t, x);
            }
            None => self.failed = true,
        }
    }

    /// Sets `dst` (xmm class) to `src`.
    pub(super) fn xmov(&mut self, dst: Temp, src: Val) -> Option<()> {
        match src {
            Val::T(s) if self.is_x(s) => {
                let xs = self.xget(s, &[])?;
                if !self.is_global(s) && self.last_use[s.0 as usize] == self.cur {
                    // The source dies here: hand its register over.
                    // (`xbind` marks it dirty: `dst`'s home is not written.)
                    self.xunbind(xs);
                    self.xbind(dst, xs);
                } else {
                    let xd = self.xalloc(&[xs])?;
                    self.a.movapd(xd, xs);
                    self.xbind(dst, xd);
                }
            }
            _ => {
                let r = self.get(src, Some(RAX), &[])?;
                let xd = self.xalloc(&[])?;
                self.a.movq_to_xmm(true, xd, r);
                self.xbind(dst, xd);
            }
        }
        Some(())
    }

    /// Writes dirty xmm-class guest registers back to the env.
    pub(super) fn xsync_globals(&mut self) {
        for x in XALLOC {
            if let Some(t) = self.xholds[x as usize] {
                if self.xdirty[x as usize] && self.is_global(t) {
                    let off = self.b.globals[t.0 as usize].offset as i32;
                    self.a.movq_store(mem(RBP, off), x);
                    self.xdirty[x as usize] = false;
                }
            }
        }
    }

    pub(super) fn xforget_all(&mut self) {
        for x in XALLOC {
            self.xunbind(x);
        }
    }

    /// Before a call, which clobbers every xmm register: guest registers are in the env
    /// already (`xsync_globals`); live locals go to their spill slots.
    pub(super) fn xspill_for_call(&mut self, args: &[Val]) -> Option<()> {
        for x in XALLOC {
            if let Some(t) = self.xholds[x as usize] {
                let live = self.last_use[t.0 as usize] > self.cur || args.contains(&Val::T(t));
                if !self.is_global(t) && live && self.xdirty[x as usize] {
                    let m = self.home(t)?;
                    self.a.movq_store(m, x);
                }
            }
            self.xunbind(x);
        }
        Some(())
    }

    /// xmm registers holding values now (the slow paths of fast ops preserve them).
    pub(super) fn xoccupied(&self) -> Vec<u8> {
        XALLOC
            .into_iter()
            .filter(|&x| self.xholds[x as usize].is_some())
            .collect()
    }
}
