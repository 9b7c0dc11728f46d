//! Where each temporary of a block is read and written, indexed once per block so that the
//! register allocator's question "when is this value needed next?" (it evicts the one needed
//! furthest ahead) is answered by a lookup instead of a scan of the ops ahead at every
//! eviction.

use crate::ir::{Block, Op, Temp, Val};

/// Op positions grouped by temporary: those of `t` are `pos[start[t]..start[t + 1]]`,
/// ascending.
#[derive(Default)]
struct ByTemp {
    start: Vec<u32>,
    pos: Vec<u32>,
}

impl ByTemp {
    /// Indexes `pairs` of (temporary, position), given in ascending position order.
    fn fill(&mut self, nt: usize, pairs: &[(u32, u32)]) {
        let start = &mut self.start;
        start.clear();
        start.resize(nt + 1, 0);
        for &(t, _) in pairs {
            start[t as usize + 1] += 1;
        }
        for t in 0..nt {
            start[t + 1] += start[t];
        }
        self.pos.clear();
        self.pos.resize(pairs.len(), 0);
        // Fill with start[t] as t's cursor (it ends as t's end, the next one's start), then
        // shift the starts back into place.
        for &(t, i) in pairs {
            let c = &mut start[t as usize];
            self.pos[*c as usize] = i;
            *c += 1;
        }
        for t in (1..=nt).rev() {
            start[t] = start[t - 1];
        }
        start[0] = 0;
    }

    /// The first position of `t` at or after `at`.
    fn first_from(&self, t: Temp, at: u32) -> Option<u32> {
        let t = t.0 as usize;
        let all = &self.pos[self.start[t] as usize..self.start[t + 1] as usize];
        all.get(all.partition_point(|&p| p < at)).copied()
    }
}

/// Built on demand: most blocks are compiled without an eviction, and never ask.
#[derive(Default)]
pub(super) struct UseIndex {
    built: bool,
    /// (temporary, op) of every read and every write, in op order (the index's input).
    reads: Vec<(u32, u32)>,
    writes: Vec<(u32, u32)>,
    uses: ByTemp,
    defs: ByTemp,
    /// For each op, the first op after it that is a label or ends the block (`ops.len()` if
    /// none): registers are flushed there, so no value is carried past it.
    barrier_after: Vec<u32>,
}

impl UseIndex {
    /// Forgets the previous block's index.
    pub fn reset(&mut self) {
        self.built = false;
    }

    /// Indexes `b`, unless done since the last `reset`.
    pub fn ensure(&mut self, b: &Block) {
        if self.built {
            return;
        }
        self.built = true;
        let nt = b.temps.len();
        self.reads.clear();
        self.writes.clear();
        for (i, op) in b.ops.iter().enumerate() {
            let i = i as u32;
            op.for_each_use(|v| {
                if let Val::T(t) = *v {
                    self.reads.push((t.0, i))
                }
            });
            if let Some(d) = op.def() {
                self.writes.push((d.0, i));
            }
        }
        self.uses.fill(nt, &self.reads);
        self.defs.fill(nt, &self.writes);
        self.barrier_after.clear();
        self.barrier_after.resize(b.ops.len(), b.ops.len() as u32);
        for i in (0..b.ops.len().saturating_sub(1)).rev() {
            let next = &b.ops[i + 1];
            self.barrier_after[i] = if matches!(next, Op::Label(_)) || next.is_terminator() {
                i as u32 + 1
            } else {
                self.barrier_after[i + 1]
            };
        }
    }

    /// Index of the next op from `cur` on that reads `t`, or `usize::MAX` if none does
    /// before `t` is overwritten or the block reaches a label or its end. Needs `ensure`.
    pub fn next_use(&self, t: Temp, cur: usize) -> usize {
        debug_assert!(self.built, "use index not built");
        let Some(read) = self.uses.first_from(t, cur as u32) else {
            return usize::MAX;
        };
        let written = self.defs.first_from(t, cur as u32 + 1).unwrap_or(u32::MAX);
        // An op that reads and writes `t`, or a terminator reading it, still reads it.
        if read <= self.barrier_after[cur] && read <= written {
            read as usize
        } else {
            usize::MAX
        }
    }
}
