//! Blocks that jump back to their own start (tight loops) loop inside their code: the most
//! used guest registers are loaded into host registers once on entry and stay there across
//! iterations, instead of being written back and reloaded on every trip through a chained
//! jump. The loop head checks for exit requests (signals, other threads); the back edge moves
//! guest registers to where the head expects them and jumps there. When nothing needs
//! moving, the loop's closing branch goes straight to the head: one taken branch per
//! iteration.
//!
//! A block may start with checks whose outcome the loop cannot change (FP-mode
//! specialisation's check of `fcsr`, which the block does not write): back edges reached
//! only when those checks passed skip them.

use super::xregs::{XALLOC, XMM_BASE};
use super::{Gen, Stub, ALLOC};
use crate::ir::{BinOp, Op, Temp, Val};
use crate::x86::*;

/// Guest registers kept in host registers across iterations (the rest of the allocatable
/// registers stay free for the block's temporaries).
const LOOP_REGS: usize = 6;
/// The same for a loop that uses more guest registers than there are host registers.
const LOOP_REGS_CROWDED: usize = 3;
/// Guest registers of the xmm class kept in xmm registers across iterations.
const LOOP_XREGS: usize = 8;

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
        // With an invariant check, the loop runs in the part after it that it guards.
        let (from, to) = self.loop_prefix.unwrap_or((0, self.b.ops.len()));
        for op in &self.b.ops[from..to] {
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
        let (mut xorder, mut order): (Vec<u32>, Vec<u32>) =
            order.into_iter().partition(|&g| self.is_x(Temp(g)));
        xorder.truncate(LOOP_XREGS);
        let mut xstate = Vec::with_capacity(xorder.len());
        for g in xorder {
            let x = self.xget(Temp(g), &[])?;
            self.xdirty[x as usize] = true;
            xstate.push((x, Temp(g)));
        }
        self.xloop_state = xstate;
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
        self.head_exit_check();
        Some(())
    }

    /// At a loop head, with the loop's registers where back edges bring them: leave through
    /// a stub that writes them back if an exit was requested.
    fn head_exit_check(&mut self) {
        let site = self.jump_if_exit_requested();
        let off = |g: Temp| self.b.globals[g.0 as usize].offset;
        let xregs = self
            .xloop_state
            .iter()
            .map(|&(x, g)| (off(g), XMM_BASE + x));
        let regs = self
            .loop_state
            .iter()
            .map(|&(r, g)| (off(g), r.0))
            .chain(xregs)
            .collect();
        self.stubs.push(Stub::LoopInterrupt {
            site,
            regs,
            pc: self.b.guest_pc,
        });
    }

    /// The block's leading run of branches (and the pure ops computing their operands into
    /// locals) that read only guest register bits the block never changes: (index of the first op
    /// after it, index of the first label those branches reach). Ops in between run only if
    /// every one of them fell through, and on the next iteration they would again.
    pub(super) fn invariant_prefix(&self) -> Option<(usize, usize)> {
        let ops = &self.b.ops;
        // Bits of each guest register the block may change.
        let mut changed = vec![0u64; self.b.nglobals as usize];
        for op in ops {
            if let Some(c) = op.def().and_then(|d| changed.get_mut(d.0 as usize)) {
                *c = u64::MAX;
            }
            if let Op::Call(call) = op {
                for (g, c) in changed.iter_mut().enumerate() {
                    if call.helper.may_write(Temp(g as u32)) {
                        *c |= call.helper.write_bits;
                    }
                }
            }
        }
        let mut local = vec![false; self.b.temps.len()];
        let mut end = 0;
        let mut targets = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            // A guest register is read invariantly if the block never changes it, or changes
            // only bits this op masks off.
            let read_mask = match op {
                Op::Bin {
                    op: BinOp::And,
                    b: Val::C(m),
                    ..
                } => *m,
                _ => u64::MAX,
            };
            let mut invariant = true;
            op.for_each_use(|v| {
                if let Val::T(t) = v {
                    invariant &= if self.is_global(*t) {
                        changed[t.0 as usize] & read_mask == 0
                    } else {
                        local[t.0 as usize]
                    };
                }
            });
            match op {
                Op::Bin { dst, .. } | Op::Un { dst, .. } | Op::Ext { dst, .. }
                    if invariant && !self.is_global(*dst) =>
                {
                    local[dst.0 as usize] = true;
                }
                Op::BrCond { label, .. } if invariant => {
                    targets.push(*label);
                    end = i + 1;
                }
                _ => break,
            }
        }
        if end == 0 {
            return None;
        }
        // Skipped on later iterations, so nothing after may read what the prefix computed.
        let mut read_later = false;
        for op in &ops[end..] {
            op.for_each_use(|v| read_later |= matches!(v, Val::T(t) if local[t.0 as usize]));
        }
        let failed = ops
            .iter()
            .position(|op| matches!(op, Op::Label(l) if targets.contains(l)))?;
        (!read_later).then_some((end, failed))
    }

    /// At the end of the invariant prefix: put the loop's registers where the head has them
    /// and drop everything else, so back edges can enter here in the head's state.
    pub(super) fn mark_fast_head(&mut self) {
        self.restore_loop_state();
        // The prefix's own locals are dead here (see `invariant_prefix`), and back edges
        // arrive here with no range check behind them.
        self.forget_all();
        self.checked.clear();
        for (r, g) in self.loop_state.clone() {
            self.holds[r.0 as usize] = Some(g);
            self.reg_of[g.0 as usize] = Some(r);
            self.dirty[r.0 as usize] = true;
        }
        for (x, g) in self.xloop_state.clone() {
            self.xholds[x as usize] = Some(g);
            self.xreg_of[g.0 as usize] = Some(x);
            self.xdirty[x as usize] = true;
        }
        self.fast_head = Some(self.a.pos());
        self.head_exit_check();
    }

    /// The back edge: put the loop's registers where the head expects them (see
    /// `restore_loop_state`) and jump to `head`. A branch to a back edge that needs no moves
    /// is sent to the head directly (see `finish`).
    pub(super) fn loop_back(&mut self, head: usize) -> Option<()> {
        let start = self.a.pos();
        self.restore_loop_state();
        if self.a.pos() == start {
            self.jump_alias.push((start, head));
        }
        let j = self.a.jmp();
        self.a.patch(j, head);
        self.forget_all();
        Some(())
    }

    /// Writes back dirty guest registers that are not the loop's and moves or loads the
    /// loop's into the host registers the head has them in.
    fn restore_loop_state(&mut self) {
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
        self.restore_xloop_state();
    }

    /// `restore_loop_state` for the xmm class.
    fn restore_xloop_state(&mut self) {
        let state = self.xloop_state.clone();
        let in_loop = |t: Temp| state.iter().any(|&(_, g)| g == t);
        for x in XALLOC {
            if let Some(t) = self.xholds[x as usize] {
                if self.is_global(t) && !in_loop(t) && self.xdirty[x as usize] {
                    let off = self.b.globals[t.0 as usize].offset as i32;
                    self.a.movq_store(mem(RBP, off), x);
                    self.xdirty[x as usize] = false;
                }
            }
        }
        let mut moves: Vec<(u8, u8)> = Vec::new();
        let mut loads: Vec<(u8, Temp)> = Vec::new();
        for &(x, g) in &state {
            match self.xreg_of[g.0 as usize] {
                Some(s) if s == x => {}
                Some(s) => moves.push((x, s)),
                None => loads.push((x, g)),
            }
        }
        // xmm0 is scratch: nothing lives in it between ops.
        for (d, s) in sequence_moves(moves, 0) {
            self.a.movapd(d, s);
        }
        for (x, g) in loads {
            let off = self.b.globals[g.0 as usize].offset as i32;
            self.a.movq_load(x, mem(RBP, off));
        }
    }

    /// Emits register moves `(dst, src)` as if done simultaneously (rax breaks cycles).
    fn parallel_move(&mut self, moves: Vec<(R, R)>) {
        let moves = moves.into_iter().map(|(d, s)| (d.0, s.0)).collect();
        for (d, s) in sequence_moves(moves, RAX.0) {
            self.a.mov_rr(true, R(d), R(s));
        }
    }
}

/// Orders register moves `(dst, src)` meant to happen at once into single moves, breaking
/// cycles through the register `spare`.
fn sequence_moves(mut moves: Vec<(u8, u8)>, spare: u8) -> Vec<(u8, u8)> {
    let mut out = Vec::with_capacity(moves.len() + 1);
    while !moves.is_empty() {
        let free = moves
            .iter()
            .position(|&(d, _)| !moves.iter().any(|&(_, s)| s == d));
        match free {
            Some(i) => out.push(moves.remove(i)),
            None => {
                let s0 = moves[0].1;
                out.push((spare, s0));
                for m in moves.iter_mut().filter(|m| m.1 == s0) {
                    m.1 = spare;
                }
            }
        }
    }
    out
}
