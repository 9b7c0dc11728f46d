//! Blocks that jump back to their own start (tight loops) loop inside their code: the most
//! used guest registers are loaded into host registers once on entry and stay there across
//! iterations, instead of being written back and reloaded on every trip through a chained
//! jump. The back edge moves guest registers to where the loop head expects them, checks
//! for exit requests (signals, other threads) and jumps to the head.

use super::{Gen, Stub, ALLOC};
use crate::ir::{Op, Temp, Val};
use crate::native as n;
use crate::x86::*;

/// Guest registers kept in host registers across iterations (the rest of the allocatable
/// registers stay free for the block's temporaries).
const LOOP_REGS: usize = 6;
/// The same for a loop that uses more guest registers than there are host registers.
const LOOP_REGS_CROWDED: usize = 3;

impl Gen<'_> {
    /// True if the block ends with a direct jump to its own start.
    pub(super) fn is_self_loop(&self) -> bool {
        self.b
            .ops
            .iter()
            .any(|op| matches!(op, Op::GotoTb { pc, .. } if *pc == self.b.guest_pc))
    }

    /// Loads the block's most used guest registers and marks the loop head. `None`: out of
    /// spill slots, as everywhere in the generator.
    pub(super) fn enter_loop(&mut self) -> Option<()> {
        let mut uses = vec![0u32; self.b.nglobals as usize];
        for op in &self.b.ops {
            op.for_each_use(|v| {
                if let Val::T(t) = v {
                    if let Some(u) = uses.get_mut(t.0 as usize) {
                        *u += 1;
                    }
                }
            });
            if let Some(d) = op.def() {
                if let Some(u) = uses.get_mut(d.0 as usize) {
                    *u += 1;
                }
            }
        }
        let mut order: Vec<u32> = (0..self.b.nglobals)
            .filter(|&g| uses[g as usize] > 0)
            .collect();
        order.sort_by_key(|&g| std::cmp::Reverse(uses[g as usize]));
        // A loop touching more guest registers than there are host registers would only see
        // its pinned ones evicted inside the body and reloaded on every back edge: keep
        // fewer then.
        let keep = if order.len() > ALLOC.len() {
            LOOP_REGS_CROWDED
        } else {
            LOOP_REGS
        };
        order.truncate(keep);
        let mut state = Vec::with_capacity(order.len());
        for g in order {
            let r = self.get(Val::T(Temp(g)), None, &[])?;
            state.push((r, Temp(g)));
        }
        // Coming round the back edge they may differ from the env: treat them as dirty.
        for &(r, _) in &state {
            self.dirty[r.0 as usize] = true;
        }
        self.loop_state = state;
        self.loop_head = Some(self.a.pos());
        Some(())
    }

    /// The back edge: write back other dirty guest registers, put the loop's registers where
    /// the head expects them, check for exit requests and jump to the head.
    pub(super) fn loop_back(&mut self, head: usize) -> Option<()> {
        let state = self.loop_state.clone();
        let in_loop = |t: Temp| state.iter().any(|&(_, g)| g == t);
        for r in ALLOC {
            if let Some(t) = self.holds[r.0 as usize] {
                if self.is_global(t) && !in_loop(t) && self.dirty[r.0 as usize] {
                    let off = self.b.globals[t.0 as usize].offset as i32;
                    self.a.store(true, mem(RBP, off), r);
                    self.dirty[r.0 as usize] = false;
                }
            }
        }
        let mut moves: Vec<(R, R)> = Vec::new();
        let mut loads: Vec<(R, Temp)> = Vec::new();
        for &(r, g) in &state {
            match self.reg_of[g.0 as usize] {
                Some(s) if s == r => {}
                Some(s) => moves.push((r, s)),
                // Not in a register: evictions write dirty values back, so the env is current.
                None => loads.push((r, g)),
            }
        }
        self.parallel_move(moves);
        for (r, g) in loads {
            let off = self.b.globals[g.0 as usize].offset as i32;
            self.a.load(true, r, mem(RBP, off));
        }
        self.a.load(true, RAX, mem(R15, n::CTX_EXIT_FLAG));
        self.a.cmp_m_zero(mem(RAX, 0));
        let site = self.a.jcc(Cc::Ne);
        let regs = state
            .iter()
            .map(|&(r, g)| (self.b.globals[g.0 as usize].offset, r.0))
            .collect();
        self.stubs.push(Stub::LoopInterrupt {
            site,
            regs,
            pc: self.b.guest_pc,
        });
        let j = self.a.jmp();
        self.a.patch(j, head);
        self.forget_all();
        Some(())
    }

    /// Emits register moves `(dst, src)` as if done simultaneously (rax breaks cycles).
    fn parallel_move(&mut self, mut moves: Vec<(R, R)>) {
        while !moves.is_empty() {
            let free = moves
                .iter()
                .position(|&(d, _)| !moves.iter().any(|&(_, s)| s == d));
            match free {
                Some(i) => {
                    let (d, s) = moves.remove(i);
                    self.a.mov_rr(true, d, s);
                }
                None => {
                    let s0 = moves[0].1;
                    self.a.mov_rr(true, RAX, s0);
                    for m in moves.iter_mut().filter(|m| m.1 == s0) {
                        m.1 = RAX;
                    }
                }
            }
        }
    }
}
