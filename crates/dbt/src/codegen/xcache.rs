//! Copies of FP results in xmm8..xmm15, so a chain of inline FP operations (see `fastfp`)
//! passes values register to register instead of through a general-purpose register and
//! back (each `movq` crossing costs latency on the chain). The general-purpose register stays
//! the value's home: an entry only says "this xmm register holds the same bits", and it is
//! dropped when the temporary is redefined, at labels and at calls (which clobber every xmm
//! register). A fast op's slow path, which makes a call, rebuilds the entries it had.

use super::Gen;
use crate::ir::{Temp, Val};
use crate::x86::*;

/// Number of cache registers (xmm8 upwards).
pub(super) const SLOTS: usize = 8;

/// Where a slow path reloads a cache register from after its call.
#[derive(Clone, Copy)]
pub(super) enum XSrc {
    Reg(R),
    Mem(Mem),
}

impl Gen<'_> {
    pub(super) fn xclear(&mut self) {
        self.xcache = [None; SLOTS];
    }

    /// `t` is being redefined: its copies are stale.
    pub(super) fn xforget(&mut self, t: Temp) {
        for e in &mut self.xcache {
            if *e == Some(t) {
                *e = None;
            }
        }
    }

    /// A move handed `from`'s value (and host register) to `to`.
    pub(super) fn xrename(&mut self, from: Temp, to: Temp) {
        for e in &mut self.xcache {
            if *e == Some(from) {
                *e = Some(to);
            }
        }
    }

    /// The xmm register holding a copy of `v`, if any.
    pub(super) fn xreg_of(&self, v: Val) -> Option<u8> {
        let Val::T(t) = v else { return None };
        self.xcache
            .iter()
            .position(|e| *e == Some(t))
            .map(|j| 8 + j as u8)
    }

    /// The next cache register to fill (round robin); its old entry is dropped.
    pub(super) fn xpick(&mut self) -> u8 {
        let j = self.xnext;
        self.xnext = (j + 1) % SLOTS;
        self.xcache[j] = None;
        8 + j as u8
    }

    pub(super) fn xset(&mut self, x: u8, t: Temp) {
        self.xcache[(x - 8) as usize] = Some(t);
    }

    /// Entries still useful (their temporary is live) and where to rebuild them from.
    pub(super) fn xlive(&mut self) -> Option<Vec<(u8, XSrc)>> {
        let mut out = Vec::new();
        for j in 0..SLOTS {
            let Some(t) = self.xcache[j] else { continue };
            if !self.is_global(t) && self.last_use[t.0 as usize] <= self.cur {
                self.xcache[j] = None;
                continue;
            }
            let src = match self.reg_of[t.0 as usize] {
                Some(r) => XSrc::Reg(r),
                None => XSrc::Mem(self.home(t)?),
            };
            out.push((8 + j as u8, src));
        }
        Some(out)
    }

    /// Rebuilds cache registers after a call (general-purpose registers already restored).
    pub(super) fn xrestore(&mut self, entries: &[(u8, XSrc)]) {
        for &(x, src) in entries {
            match src {
                XSrc::Reg(r) => self.a.movq_to_xmm(true, x, r),
                XSrc::Mem(m) => {
                    self.a.load(true, RCX, m);
                    self.a.movq_to_xmm(true, x, RCX);
                }
            }
        }
    }
}
