//! IR -> x86-64 code generation with local register allocation.
//!
//! Register convention inside generated code: `rbp` = env (guest state), `r14` = guest_base,
//! `r15` = the backend context ([`crate::native::NCtx`]), `rsp` = a fixed frame with spill
//! slots. `rax`, `rcx`, `rdx` are scratch. Nine registers hold IR values: globals (guest
//! registers) stay cached in them across ops until a label, a call or a block exit forces
//! dirty ones back to the env. Double-precision FP values live in xmm3..xmm15 the same way
//! (see `xregs`); xmm0..xmm2 are scratch. Memory accesses do not force a write-back: each records which
//! globals were dirty in which registers, and the fault paths (the range-check stub, and the
//! SIGSEGV path using the registers saved by the signal handler) store them, so the guest
//! state at a fault is exact for the faulting instruction.

mod address;
mod arith;
mod fastfp;
pub(crate) mod inexact;
mod selfloop;
mod softmmu;
mod uses;
mod xregs;

use crate::ir::MAX_SLOTS;
use crate::ir::{
    Block, CallOp, CmpxchgOp, Cond, ExtOp, InexactFlag, MemSize, Op, Order, SelectOp, Temp, Ty,
    UnOp, Val,
};
use crate::native::{self as n, K_CHAIN, K_CODE, K_INDIRECT, K_INTERRUPT};
use crate::x86::*;

const ALLOC: [R; 9] = [RBX, R12, R13, RSI, RDI, R8, R9, R10, R11];
const CALLEE_SAVED: [R; 3] = [RBX, R12, R13];
pub const SPILL_SLOTS: usize = 256;

/// Output of compiling one block (offsets relative to the block start).
#[derive(Default)]
pub struct Compiled {
    pub code: Vec<u8>,
    /// (chain slot, rel32 site) of the chainable jumps (a block specialised into several
    /// copies has several sites per slot).
    pub gotos: Vec<(u8, usize)>,
    /// The guest memory access instructions, in code order.
    pub memops: Vec<MemOp>,
    /// The dirty registers of every access, one run per access (see `MemOp::regs_end`).
    pub memop_regs: Vec<(u32, u8)>,
    /// rel32 sites that must reach the shared exit epilogue.
    pub exit_sites: Vec<usize>,
    /// (offset of an inline FP instruction, offset of its slow path): where a host FP
    /// exception there resumes (see `fptrap`).
    pub fp_traps: Vec<(usize, usize)>,
}

/// A guest memory access instruction: where it is, which guest instruction it belongs to,
/// and which guest registers were only in host registers at that point, so a fault handler
/// can complete the guest state. Compiled blocks keep these as long as they live, so the
/// registers are not inline (most accesses have none or a few): they are the entries of
/// `Compiled::memop_regs` from the previous access's `regs_end` up to this one's.
#[derive(Clone, Copy, Debug)]
pub struct MemOp {
    pub off: u32,
    pub regs_end: u32,
    pub pc: u64,
    pub write: bool,
}

/// Guest registers held only in host registers at some point: (env offset, host register),
/// at most one per allocatable register. Inline, as there is one per guest memory access.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirtyRegs {
    len: u8,
    regs: [(u32, u8); ALLOC.len() + xregs::XALLOC.len()],
}

impl DirtyRegs {
    pub fn iter(&self) -> impl Iterator<Item = (u32, u8)> + '_ {
        self.regs[..self.len as usize].iter().copied()
    }
    fn push(&mut self, e: (u32, u8)) {
        self.regs[self.len as usize] = e;
        self.len += 1;
    }
}

enum Stub {
    Range(address::RangeStub),
    Interrupt {
        site: usize,
        pc: u64,
    },
    SlowCall(fastfp::SlowCall),
    Mmu(softmmu::MmuStub),
    /// Exit request seen on a self-loop's back edge: write back the loop's registers.
    LoopInterrupt {
        site: usize,
        regs: Vec<(u32, u8)>,
        pc: u64,
    },
}

struct Gen<'a> {
    b: &'a Block,
    a: Asm,
    holds: [Option<Temp>; 16],
    dirty: [bool; 16],
    reg_of: Vec<Option<R>>,
    slot_of: Vec<Option<u32>>,
    nslots: u32,
    last_use: Vec<usize>,
    /// Where each temporary is read and written next (see `uses`).
    uses: uses::UseIndex,
    cur: usize,
    pc: u64,
    pc_off: u32,
    tb_idx: u64,
    labels: Vec<Option<usize>>,
    label_fix: Vec<(usize, u32)>,
    /// Labels reached from exactly one branch and not by falling through: the register
    /// state at the branch carries over to the label, so the branch need not write dirty
    /// guest registers back (a side exit or the taken edge of a block-ending branch).
    carries_state: Vec<bool>,
    /// Guest registers in host registers at the branch to such a label (register, global,
    /// dirty).
    label_state: Vec<Vec<(u8, Temp, bool)>>,
    /// For a block that jumps back to itself: where the loop head is and which guest
    /// registers it expects in which host registers (see `selfloop`).
    loop_head: Option<usize>,
    loop_state: Vec<(R, Temp)>,
    /// A loop-invariant check at the loop's start (see `selfloop::invariant_prefix`): where
    /// it ends, the first op reached only when it failed, and the code position after it.
    loop_prefix: Option<(usize, usize)>,
    fast_head: Option<usize>,
    /// The xmm register class (see `xregs`): which temporaries belong to it, what each xmm
    /// register holds and whether it differs from its home, where each temporary is, and
    /// the guest registers a self-loop keeps in xmm registers.
    xclass: Vec<bool>,
    xholds: [Option<Temp>; 16],
    xdirty: [bool; 16],
    xreg_of: Vec<Option<u8>>,
    xloop_state: Vec<(u8, Temp)>,
    /// Set when a value could not be placed (out of spill slots): the block is not compiled.
    failed: bool,
    /// The guest's inexact flag, deferred to MXCSR (see `inexact`), and its global.
    inexact: Option<InexactFlag>,
    flag_global: Option<Temp>,
    /// Temporaries bounded by an earlier range check, with how far they may have moved
    /// from the guest address range since (see `address`).
    checked: Vec<(Temp, i64)>,
    /// Ops already emitted together with an earlier one (see `arith::scaled_add`).
    fused: Vec<usize>,
    /// Code positions holding nothing but a jump to another (position, target): branches
    /// to a label there go to the target instead.
    jump_alias: Vec<(usize, usize)>,
    out: Compiled,
    stubs: Vec<Stub>,
}

fn cc(c: Cond) -> Cc {
    match c {
        Cond::Eq => Cc::E,
        Cond::Ne => Cc::Ne,
        Cond::Lt => Cc::L,
        Cond::Ge => Cc::Ge,
        Cond::Ltu => Cc::B,
        Cond::Geu => Cc::Ae,
    }
}

/// The condition with its operands swapped (`a < b` is `b > a`).
fn cc_swapped(c: Cond) -> Cc {
    match c {
        Cond::Eq => Cc::E,
        Cond::Ne => Cc::Ne,
        Cond::Lt => Cc::G,
        Cond::Ge => Cc::Le,
        Cond::Ltu => Cc::A,
        Cond::Geu => Cc::Be,
    }
}

/// Comparison operands with a constant second (an immediate), and the condition to test.
fn cmp_order(cond: Cond, a: Val, b: Val) -> (Val, Val, Cc) {
    match (a, b) {
        (Val::C(_), Val::T(_)) => (b, a, cc_swapped(cond)),
        _ => (a, b, cc(cond)),
    }
}

/// The host operand of a guest access: guest memory starts at r14.
fn guest_mem(base: R, disp: i32) -> Mem {
    Mem {
        base: R14,
        index: Some(base),
        scale: 0,
        disp,
    }
}

fn fits_i32(v: u64, w: bool) -> bool {
    if w {
        v as i64 >= i32::MIN as i64 && v as i64 <= i32::MAX as i64
    } else {
        true
    }
}

/// The working vectors of one compile, kept on each thread for the next: allocating and
/// zeroing some twenty of them per block was a tenth of the code generator's time.
#[derive(Default)]
struct Scratch {
    code: Vec<u8>,
    reg_of: Vec<Option<R>>,
    slot_of: Vec<Option<u32>>,
    last_use: Vec<usize>,
    uses: uses::UseIndex,
    labels: Vec<Option<usize>>,
    label_fix: Vec<(usize, u32)>,
    carries_state: Vec<bool>,
    label_state: Vec<Vec<(u8, Temp, bool)>>,
    loop_state: Vec<(R, Temp)>,
    xreg_of: Vec<Option<u8>>,
    xloop_state: Vec<(u8, Temp)>,
    checked: Vec<(Temp, i64)>,
    fused: Vec<usize>,
    jump_alias: Vec<(usize, usize)>,
    stubs: Vec<Stub>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// `v` holding `n` copies of `fill`, in the allocation it had.
fn refill<T: Clone>(mut v: Vec<T>, n: usize, fill: T) -> Vec<T> {
    v.clear();
    v.resize(n, fill);
    v
}

/// `v` emptied, keeping its allocation.
fn emptied<T>(mut v: Vec<T>) -> Vec<T> {
    v.clear();
    v
}

/// Hands the code of a compiled block back once it is copied into the code buffer, for the
/// next compile on this thread to write into.
pub fn recycle(code: Vec<u8>) {
    SCRATCH.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            if code.capacity() > s.code.capacity() {
                s.code = code;
            }
        }
    });
}

/// Compiles `b`; `None` if it needs more spill slots than the frame has. With `inexact`, FP
/// fast paths are inlined and leave the inexact flag to the host FPU until it is observed.
pub fn compile(
    b: &Block,
    tb_idx: usize,
    pc_off: u32,
    inexact: Option<InexactFlag>,
) -> Option<Compiled> {
    // (Taken, not borrowed: should a compile ever nest, the inner one starts afresh.)
    let s = SCRATCH.with(|s| s.try_borrow_mut().map(|mut s| std::mem::take(&mut *s)));
    let (out, back) = compile_with(s.unwrap_or_default(), b, tb_idx, pc_off, inexact);
    SCRATCH.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            let code = std::mem::take(&mut s.code);
            *s = back;
            s.code = code;
        }
    });
    out
}

fn compile_with(
    s: Scratch,
    b: &Block,
    tb_idx: usize,
    pc_off: u32,
    inexact: Option<InexactFlag>,
) -> (Option<Compiled>, Scratch) {
    let nt = b.temps.len();
    // Room for the usual output from the start: growing the buffers by doubling reallocated
    // and touched fresh pages several times per block.
    let nmem = b
        .ops
        .iter()
        .filter(|op| matches!(op, Op::Load { .. } | Op::Store { .. }))
        .count();
    let mut last_use = refill(s.last_use, nt, 0);
    for (i, op) in b.ops.iter().enumerate() {
        op.for_each_use(|v| {
            if let Val::T(t) = v {
                last_use[t.0 as usize] = i;
            }
        });
    }
    let mut g = Gen {
        b,
        a: Asm {
            buf: {
                let mut code = emptied(s.code);
                code.reserve(256 + 24 * b.ops.len());
                code
            },
        },
        holds: [None; 16],
        dirty: [false; 16],
        reg_of: refill(s.reg_of, nt, None),
        slot_of: refill(s.slot_of, nt, None),
        nslots: 0,
        last_use,
        uses: {
            let mut u = s.uses;
            u.reset();
            u
        },
        cur: 0,
        pc: b.guest_pc,
        pc_off,
        tb_idx: tb_idx as u64,
        labels: refill(s.labels, b.nlabels as usize, None),
        label_fix: emptied(s.label_fix),
        carries_state: carried_labels(b, s.carries_state),
        label_state: {
            let mut v = s.label_state;
            v.truncate(b.nlabels as usize);
            v.iter_mut().for_each(Vec::clear);
            v.resize_with(b.nlabels as usize, Vec::new);
            v
        },
        loop_head: None,
        loop_state: emptied(s.loop_state),
        loop_prefix: None,
        fast_head: None,
        xclass: Vec::new(),
        xholds: [None; 16],
        xdirty: [false; 16],
        xreg_of: refill(s.xreg_of, nt, None),
        xloop_state: emptied(s.xloop_state),
        failed: false,
        inexact,
        flag_global: inexact::flag_global(b, inexact),
        checked: emptied(s.checked),
        fused: emptied(s.fused),
        jump_alias: emptied(s.jump_alias),
        out: Compiled {
            code: Vec::new(),
            gotos: Vec::new(),
            memops: Vec::with_capacity(nmem),
            memop_regs: Vec::new(),
            exit_sites: Vec::new(),
            fp_traps: Vec::new(),
        },
        stubs: emptied(s.stubs),
    };
    g.xclass = match g.flag_global {
        Some(flags) => xregs::classify(b, flags, fastfp::inlined_arith),
        None => vec![false; nt],
    };
    let generated = g.generate(b);
    let out = (generated.is_some() && !g.failed).then(|| std::mem::take(&mut g.out));
    let back = Scratch {
        code: Vec::new(),
        reg_of: g.reg_of,
        slot_of: g.slot_of,
        last_use: g.last_use,
        uses: g.uses,
        labels: g.labels,
        label_fix: g.label_fix,
        carries_state: g.carries_state,
        label_state: g.label_state,
        loop_state: g.loop_state,
        xreg_of: g.xreg_of,
        xloop_state: g.xloop_state,
        checked: g.checked,
        fused: g.fused,
        jump_alias: g.jump_alias,
        stubs: g.stubs,
    };
    (out, back)
}

/// See [`Gen::carries_state`]; fills `carried` (its allocation reused).
fn carried_labels(b: &Block, carried: Vec<bool>) -> Vec<bool> {
    // Branches to each label, counted in the vector itself first (saturating at 2).
    let n = b.nlabels as usize;
    let mut refs = refill(carried, 2 * n, false);
    for op in &b.ops {
        if let Op::Br(l) | Op::BrCond { label: l, .. } = op {
            let k = l.0 as usize;
            refs[n + k] = refs[k];
            refs[k] = true;
        }
    }
    let (once, more) = refs.split_at_mut(n);
    for (i, op) in b.ops.iter().enumerate() {
        if let Op::Label(l) = op {
            let k = l.0 as usize;
            let no_fallthrough = i > 0 && b.ops[i - 1].is_terminator();
            once[k] = no_fallthrough && once[k] && !more[k];
        }
    }
    refs.truncate(n);
    refs
}

impl Gen<'_> {
    /// Emits the whole block; `None` when it cannot be compiled.
    fn generate(&mut self, b: &Block) -> Option<()> {
        // Exit requests are honoured on the way out of a block where chained code could go
        // on for ever: a self-loop's back edge, a direct exit to a block that does not start
        // above this one, an indirect jump. Every cycle of blocks has an edge of the second
        // kind (the start addresses cannot all increase round it), and the run loop checks
        // before it enters generated code, so a request waits at most for one forward chain
        // of blocks.
        if self.is_self_loop() {
            self.loop_prefix = self.invariant_prefix();
            self.enter_loop()?;
        }
        for (i, op) in b.ops.iter().enumerate() {
            self.cur = i;
            if matches!(self.loop_prefix, Some((end, _)) if end == i) {
                self.mark_fast_head();
            }
            if self.fused.first() == Some(&i) {
                self.fused.remove(0);
            } else {
                self.op(op)?;
            }
            self.track_checked(op);
            self.free_dead(op);
        }
        self.finish();
        Some(())
    }

    /// Remembers which guest registers are in host registers, for a label that carries state.
    fn save_label_state(&mut self, l: u32) {
        let gprs = ALLOC.iter().map(|r| r.0);
        let xmms = xregs::XALLOC.iter().map(|x| x + xregs::XMM_BASE);
        self.label_state[l as usize] = gprs
            .chain(xmms)
            .filter_map(|k| {
                let (t, dirty) = self.held(k)?;
                self.is_global(t).then_some((k, t, dirty))
            })
            .collect();
    }

    /// What register `k` (numbered as in [`DirtyRegs`]) holds, and whether it is dirty.
    fn held(&self, k: u8) -> Option<(Temp, bool)> {
        match k.checked_sub(xregs::XMM_BASE) {
            Some(x) => Some((self.xholds[x as usize]?, self.xdirty[x as usize])),
            None => Some((self.holds[k as usize]?, self.dirty[k as usize])),
        }
    }

    /// Stores register `k` (numbered as in [`DirtyRegs`]) to `m`.
    fn store_any(&mut self, m: Mem, k: u8) {
        match k.checked_sub(xregs::XMM_BASE) {
            Some(x) => self.a.movq_store(m, x),
            None => self.a.store(true, m, R(k)),
        }
    }

    fn is_global(&self, t: Temp) -> bool {
        self.b.is_global(t)
    }
    fn w(&self, ty: Ty) -> bool {
        ty == Ty::I64
    }

    fn home(&mut self, t: Temp) -> Option<Mem> {
        if self.is_global(t) {
            return Some(mem(RBP, self.b.globals[t.0 as usize].offset as i32));
        }
        let s = match self.slot_of[t.0 as usize] {
            Some(s) => s,
            None => {
                if self.nslots as usize >= SPILL_SLOTS {
                    return None;
                }
                self.nslots += 1;
                self.slot_of[t.0 as usize] = Some(self.nslots - 1);
                self.nslots - 1
            }
        };
        Some(mem(RSP, s as i32 * 8))
    }

    fn unbind(&mut self, r: R) {
        if let Some(t) = self.holds[r.0 as usize].take() {
            self.reg_of[t.0 as usize] = None;
        }
        self.dirty[r.0 as usize] = false;
    }

    /// Writes a register's value to its home if needed and frees it.
    fn evict(&mut self, r: R) -> Option<()> {
        if let Some(t) = self.holds[r.0 as usize] {
            // A local read by the current op is still needed: the op may load it back.
            let live_local = !self.is_global(t) && self.last_use[t.0 as usize] >= self.cur;
            if self.dirty[r.0 as usize] || live_local {
                let m = self.home(t)?;
                self.a.store(true, m, r);
            }
        }
        self.unbind(r);
        Some(())
    }

    fn alloc(&mut self, avoid: &[R]) -> Option<R> {
        if let Some(&r) = ALLOC
            .iter()
            .find(|r| self.holds[r.0 as usize].is_none() && !avoid.contains(r))
        {
            return Some(r);
        }
        // Evict the value needed furthest ahead (Belady); among equals, what costs least to
        // evict: a clean guest register (nothing to store), a dirty one, then a live local.
        let mut cands = [(R(0), Temp(0), 0usize); ALLOC.len()];
        let mut n = 0;
        for &r in ALLOC.iter().filter(|r| !avoid.contains(r)) {
            cands[n] = (r, self.holds[r.0 as usize].expect("allocated"), 0);
            n += 1;
        }
        let cands = &mut cands[..n];
        self.uses.ensure(self.b);
        self.next_uses(cands);
        let cost = |g: &Self, r: R, t: Temp| match (g.is_global(t), g.dirty[r.0 as usize]) {
            (true, false) => 0u8,
            (true, true) => 1,
            (false, _) => 2,
        };
        let r = cands
            .iter()
            .min_by_key(|&&(r, t, next)| (std::cmp::Reverse(next), cost(self, r, t)))?
            .0;
        self.evict(r)?;
        Some(r)
    }

    /// [`Gen::next_use`] of several temporaries (the third field of each entry).
    fn next_uses(&self, want: &mut [(R, Temp, usize)]) {
        for w in want.iter_mut() {
            w.2 = self.next_use(w.1);
        }
    }

    /// Index of the next op (from the current one) that reads `t`, or `usize::MAX` if none
    /// does before it is overwritten or the block reaches a label or its end (where
    /// registers are flushed).
    fn next_use(&self, t: Temp) -> usize {
        self.uses.next_use(t, self.cur)
    }

    fn bind(&mut self, t: Temp, r: R) {
        if self.is_x(t) {
            self.bind_from_gpr(t, r);
            return;
        }
        if let Some(old) = self.reg_of[t.0 as usize] {
            if old != r {
                self.unbind(old);
            }
        }
        self.unbind(r);
        self.holds[r.0 as usize] = Some(t);
        self.reg_of[t.0 as usize] = Some(r);
        self.dirty[r.0 as usize] = self.is_global(t);
    }

    /// Puts `v` in a register; constants go to `scratch` (or a free register if `None`).
    fn get(&mut self, v: Val, scratch: Option<R>, avoid: &[R]) -> Option<R> {
        match v {
            Val::C(c) => {
                let r = match scratch {
                    Some(r) => r,
                    None => self.alloc(avoid)?,
                };
                self.a.mov_ri(r, c);
                Some(r)
            }
            Val::T(t) if self.is_x(t) => self.get_from_x(t, scratch, avoid),
            Val::T(t) => {
                if let Some(r) = self.reg_of[t.0 as usize] {
                    return Some(r);
                }
                let r = self.alloc(avoid)?;
                let m = self.home(t)?;
                self.a.load(true, r, m);
                self.holds[r.0 as usize] = Some(t);
                self.reg_of[t.0 as usize] = Some(r);
                self.dirty[r.0 as usize] = false;
                Some(r)
            }
        }
    }

    /// The guest register the current op's result `dst` is moved into by the next op, where
    /// `dst` dies: the current value of that register is dead once the op has run.
    pub(super) fn next_move_target(&self, dst: Temp) -> Option<Temp> {
        match self.b.ops.get(self.cur + 1) {
            Some(&Op::Mov {
                dst: g,
                src: Val::T(s),
            }) if s == dst
                && self.is_global(g)
                && !self.is_global(dst)
                && self.last_use[dst.0 as usize] == self.cur + 1
                && self.is_x(g) == self.is_x(dst) =>
            {
                Some(g)
            }
            _ => None,
        }
    }

    /// If `v` is a local whose last use is the current op and it sits in an allocatable
    /// register, frees that register for the op's result (saves a copy).
    fn dying_local_reg(&mut self, v: Val) -> Option<R> {
        let Val::T(t) = v else { return None };
        if self.is_global(t) || self.last_use[t.0 as usize] != self.cur {
            return None;
        }
        let r = self.reg_of[t.0 as usize]?;
        self.unbind(r);
        Some(r)
    }

    /// Releases the registers of the locals `op` (the current op) used for the last time or
    /// defined without a later use. Only these can have died here: a local is bound to a
    /// register only at an op that defines or reads it, or at an earlier op that emitted
    /// this one with it (`fused`), and this runs for fused ops too.
    fn free_dead(&mut self, op: &Op) {
        op.for_each_use(|v| {
            if let Val::T(t) = *v {
                self.free_if_dead(t);
            }
        });
        if let Some(d) = op.def() {
            self.free_if_dead(d);
        }
    }

    fn free_if_dead(&mut self, t: Temp) {
        if self.is_global(t) || self.last_use[t.0 as usize] > self.cur {
            return;
        }
        if let Some(r) = self.reg_of[t.0 as usize] {
            self.unbind(r);
        }
        if let Some(x) = self.xreg_of[t.0 as usize] {
            self.xunbind(x);
        }
    }

    fn sync_globals(&mut self) {
        self.xsync_globals();
        for r in ALLOC {
            if self.dirty[r.0 as usize] {
                if let Some(t) = self.holds[r.0 as usize] {
                    let off = self.b.globals[t.0 as usize].offset as i32;
                    self.a.store(true, mem(RBP, off), r);
                }
                self.dirty[r.0 as usize] = false;
            }
        }
    }

    fn forget_all(&mut self) {
        self.xforget_all();
        for r in ALLOC {
            self.unbind(r);
        }
    }

    fn exit_jmp(&mut self) {
        let s = self.a.jmp();
        self.out.exit_sites.push(s);
    }

    /// Emits a test of the exit-request flag and returns the site of the jump taken when it
    /// is set (uses rdx only: rax may hold a jump target).
    fn jump_if_exit_requested(&mut self) -> usize {
        self.a.load(true, RDX, mem(R15, n::CTX_EXIT_FLAG));
        self.a.cmp_m_zero(mem(RDX, 0));
        self.a.jcc(Cc::Ne)
    }

    fn set_pc_exit(&mut self, pc: u64, code: u64) {
        self.a.mov_ri(RAX, pc);
        self.a.store(true, mem(RBP, self.pc_off as i32), RAX);
        self.a.mov_ri(RAX, code);
        self.exit_jmp();
    }

    fn op(&mut self, op: &Op) -> Option<()> {
        if self.observes_inexact(op) {
            self.fold_inexact();
        }
        self.op_body(op)?;
        if self.flag_global.is_some() && op.def() == self.flag_global {
            self.settle_inexact();
        }
        Some(())
    }

    fn op_body(&mut self, op: &Op) -> Option<()> {
        match *op {
            Op::InsnStart { pc } => self.pc = pc,
            Op::Mov { dst, src } if self.is_x(dst) => self.xmov(dst, src)?,
            Op::Mov { dst, src } => {
                let d = match src {
                    Val::T(s)
                        if !self.is_global(s)
                            && self.last_use[s.0 as usize] == self.cur
                            && self.reg_of[s.0 as usize].is_some() =>
                    {
                        let r = self.reg_of[s.0 as usize]?;
                        self.unbind(r);
                        r
                    }
                    Val::C(c) => {
                        let d = self.alloc(&[])?;
                        self.a.mov_ri(d, c);
                        d
                    }
                    _ => {
                        let r0 = self.get(src, Some(RAX), &[])?;
                        let d = self.alloc(&[r0])?;
                        self.a.mov_rr(true, d, r0);
                        d
                    }
                };
                self.bind(dst, d);
            }
            Op::Bin { .. } if self.scaled_add(op)? => {}
            Op::Bin { op, ty, dst, a, b } => self.bin(op, ty, dst, a, b)?,
            Op::Un {
                op: UnOp::Neg,
                ty,
                dst,
                a,
            }
            | Op::Un {
                op: UnOp::Not,
                ty,
                dst,
                a,
            } => {
                let ra = self.get(a, Some(RAX), &[])?;
                let d = self.alloc(&[ra])?;
                self.a.mov_rr(self.w(ty), d, ra);
                if matches!(op, Op::Un { op: UnOp::Neg, .. }) {
                    self.a.neg(self.w(ty), d);
                } else {
                    self.a.not(self.w(ty), d);
                }
                self.bind(dst, d);
            }
            Op::Un { op, ty, dst, a } => {
                let code = n::un_code(op, ty);
                self.call(
                    n::pure_un as *const () as usize as u64,
                    false,
                    &[Val::C(code), a],
                    Some(dst),
                )?;
            }
            Op::Ext { op, dst, a } => {
                let ra = self.get(a, Some(RAX), &[])?;
                let d = match self.dying_local_reg(a) {
                    Some(r) => r,
                    None => self.alloc(&[ra])?,
                };
                match op {
                    ExtOp::Sext32 => self.a.movsxd(d, ra),
                    ExtOp::Trunc | ExtOp::Zext32 => self.a.mov_rr(false, d, ra),
                }
                self.bind(dst, d);
            }
            Op::SetCond {
                cond,
                ty,
                dst,
                a,
                b,
            } => {
                let w = self.w(ty);
                let (a, b, c) = cmp_order(cond, a, b);
                let ra = self.get(a, Some(RCX), &[])?;
                let (rb, imm) = self.operand(b, w, RDX, &[ra])?;
                let d = self.alloc(&[ra, rb])?;
                self.cmp(w, ra, rb, imm);
                self.a.setcc(c, d);
                self.bind(dst, d);
            }
            Op::Select(ref s) => {
                let SelectOp {
                    cond,
                    ty,
                    dst,
                    a,
                    b,
                    t,
                    f,
                } = **s;
                let w = self.w(ty);
                let ra = self.get(a, Some(RAX), &[])?;
                let (rb, imm) = self.operand(b, w, RCX, &[ra])?;
                let rt = self.get(t, Some(RDX), &[ra, rb])?;
                let rf = match f {
                    Val::T(_) => Some(self.get(f, None, &[ra, rb, rt])?),
                    Val::C(_) => None,
                };
                let mut avoid = vec![ra, rb, rt];
                avoid.extend(rf);
                let d = self.alloc(&avoid)?;
                self.cmp(w, ra, rb, imm);
                match (rf, f) {
                    (Some(r), _) => self.a.mov_rr(true, d, r),
                    (None, Val::C(c)) => self.a.mov_ri(d, c),
                    _ => unreachable!(),
                }
                self.a.cmov(true, cc(cond), d, rt);
                self.bind(dst, d);
            }
            Op::Load {
                dst,
                addr,
                disp,
                size,
                signed,
            } if self.b.soft_mmu.is_some() => {
                let m = self.b.soft_mmu.expect("checked");
                self.soft_load(m, dst, addr, disp, size, signed)?
            }
            Op::Store {
                src,
                addr,
                disp,
                size,
            } if self.b.soft_mmu.is_some() => {
                let m = self.b.soft_mmu.expect("checked");
                self.soft_store(m, src, addr, disp, size)?
            }
            Op::Load {
                dst,
                addr,
                disp,
                size,
                signed,
            } => {
                let ra = self.get(addr, Some(RCX), &[])?;
                // The guest register the value is moved to next, if its register can take
                // the value: its old value is dead, but stays there for a fault's record.
                let target = self.next_move_target(dst);
                if self.is_x(dst) && size == MemSize::B8 {
                    let x = match target.and_then(|g| self.xreg_of[g.0 as usize]) {
                        Some(x) => x,
                        None => self.xalloc(&[])?,
                    };
                    let (r, disp) = self.guest_address(addr, ra, disp, 8, false);
                    self.memop(false);
                    self.a.movq_load(x, guest_mem(r, disp));
                    self.xunbind(x);
                    self.xbind(dst, x);
                    return Some(());
                }
                let (r, disp) = self.guest_address(addr, ra, disp, size.bytes(), false);
                let d = match target.and_then(|g| self.reg_of[g.0 as usize]) {
                    Some(d) => d,
                    None => self.alloc(&[ra])?,
                };
                self.memop(false);
                self.a.load_ext(d, guest_mem(r, disp), size.bytes(), signed);
                self.unbind(d);
                self.bind(dst, d);
            }
            Op::Store {
                src: Val::T(s),
                addr,
                disp,
                size: MemSize::B8,
            } if self.is_x(s) && addr != Val::T(s) => {
                let ra = self.get(addr, Some(RCX), &[])?;
                let x = self.xget(s, &[])?;
                let (r, disp) = self.guest_address(addr, ra, disp, 8, true);
                self.memop(true);
                self.a.movq_store(guest_mem(r, disp), x);
            }
            Op::Store {
                src: Val::C(v),
                addr,
                disp,
                size,
            } if Asm::imm_storable(v, size.bytes()) => {
                // A constant (`sd zero, ...` above all) goes in the instruction.
                let ra = self.get(addr, Some(RCX), &[])?;
                let (r, disp) = self.guest_address(addr, ra, disp, size.bytes(), true);
                self.memop(true);
                self.a.store_imm_sized(guest_mem(r, disp), v, size.bytes());
            }
            Op::Store {
                src,
                addr,
                disp,
                size,
            } => {
                let ra = self.get(addr, Some(RCX), &[])?;
                let rs = self.get(src, Some(RDX), &[ra])?;
                let (r, disp) = self.guest_address(addr, ra, disp, size.bytes(), true);
                self.memop(true);
                self.a.store_sized(guest_mem(r, disp), rs, size.bytes());
            }
            Op::Rmw {
                op,
                dst,
                addr,
                val,
                size,
            } => self.rmw(op, dst, addr, val, size.bytes())?,
            Op::Cmpxchg(ref x) => {
                let CmpxchgOp {
                    dst,
                    addr,
                    expect,
                    new,
                    size,
                } = **x;
                let w = size.bytes() == 8;
                let ra = self.get(addr, Some(RCX), &[])?;
                let rn = self.get(new, Some(RDX), &[ra])?;
                let re = self.get(expect, Some(RAX), &[ra, rn])?;
                if re != RAX {
                    self.a.mov_rr(true, RAX, re);
                }
                self.range_check(ra, 0, size.bytes(), true);
                self.memop(true);
                self.a.lock_cmpxchg(w, mem_idx(R14, ra), rn);
                let d = self.alloc(&[ra, rn])?;
                if w {
                    self.a.mov_rr(true, d, RAX);
                } else {
                    self.a.movsxd(d, RAX);
                }
                self.bind(dst, d);
            }
            // x86-64 keeps loads in order, stores in order and loads before later stores;
            // only a store followed by a load may pass it (the store buffer).
            Op::Barrier(order) => {
                if order.contains(Order::STORE_LOAD) {
                    self.a.lock_or_stack();
                }
            }
            Op::Call(ref c) if self.fast_fp_call(c)? => {}
            Op::Call(ref c) => {
                let CallOp {
                    helper,
                    dst,
                    ref args,
                    ..
                } = **c;
                // Helpers see the guest state, flags included.
                self.fold_inexact();
                let accrues = match self.flag_global {
                    Some(g) => helper.may_write(g),
                    None => self.inexact.is_some(),
                };
                let mut v = Vec::with_capacity(args.len() + 1);
                v.extend_from_slice(args);
                let fp_helper = accrues && self.inexact.is_some();
                if fp_helper {
                    // Its own FP arithmetic must not trap (see `fptrap`).
                    inexact::emit_host_mode(&mut self.a);
                }
                self.call(helper.f as usize as u64, true, &v, dst)?;
                if fp_helper {
                    // Back to generated code's mode, flags clear: the helper accrued its
                    // flags in the env (registers caching the flag are stale).
                    inexact::emit_clear(&mut self.a);
                }
                // Cached copies of globals the helper may have written are stale (they were
                // clean: the call wrote every dirty global back first).
                for r in ALLOC {
                    if let Some(t) = self.holds[r.0 as usize] {
                        if self.is_global(t) && helper.may_write(t) && Some(t) != dst {
                            self.unbind(r);
                        }
                    }
                }
            }
            Op::Label(l) if self.carries_state[l.0 as usize] => {
                // Only reached from its one branch: the state there is the state here.
                self.forget_all();
                for (k, t, dirty) in std::mem::take(&mut self.label_state[l.0 as usize]) {
                    match k.checked_sub(xregs::XMM_BASE) {
                        Some(x) => {
                            self.xholds[x as usize] = Some(t);
                            self.xreg_of[t.0 as usize] = Some(x);
                            self.xdirty[x as usize] = dirty;
                        }
                        None => {
                            self.holds[k as usize] = Some(t);
                            self.reg_of[t.0 as usize] = Some(R(k));
                            self.dirty[k as usize] = dirty;
                        }
                    }
                }
                self.labels[l.0 as usize] = Some(self.a.pos());
            }
            Op::Label(l) => {
                self.sync_globals();
                self.forget_all();
                self.labels[l.0 as usize] = Some(self.a.pos());
            }
            Op::Br(l) => {
                if self.carries_state[l.0 as usize] {
                    self.save_label_state(l.0);
                } else {
                    self.sync_globals();
                }
                let s = self.a.jmp();
                self.label_fix.push((s, l.0));
            }
            Op::BrCond {
                cond,
                ty,
                a,
                b,
                label,
            } => {
                let w = self.w(ty);
                let (a, b, c) = cmp_order(cond, a, b);
                let ra = self.get(a, Some(RAX), &[])?;
                let (rb, imm) = self.operand(b, w, RCX, &[ra])?;
                if self.carries_state[label.0 as usize] {
                    self.save_label_state(label.0);
                } else {
                    self.sync_globals();
                }
                self.cmp(w, ra, rb, imm);
                let s = self.a.jcc(c);
                self.label_fix.push((s, label.0));
            }
            Op::GotoTb { pc, .. } if pc == self.b.guest_pc && self.loop_head.is_some() => {
                let head = match (self.loop_prefix, self.fast_head) {
                    // Only reached when the invariant check passed: it passes again.
                    (Some((_, failed)), Some(fast)) if self.cur < failed => fast,
                    _ => self.loop_head?,
                };
                self.loop_back(head)?;
            }
            // Behind a soft MMU a jump to another page cannot be chained (that page's
            // mapping may change): it goes through the indirect-jump cache instead.
            Op::GotoTb { pc, .. }
                if self.b.soft_mmu.is_some() && (pc ^ self.b.guest_pc) >= 4096 =>
            {
                self.sync_globals();
                self.a.mov_ri(RAX, pc);
                self.indirect_jump();
            }
            Op::GotoTb { slot, pc } => {
                self.sync_globals();
                if pc <= self.b.guest_pc {
                    let site = self.jump_if_exit_requested();
                    // The guest state is complete here: stop as if at the target's entry.
                    self.stubs.push(Stub::Interrupt { site, pc });
                }
                self.a.align_for(1, 4);
                let s = self.a.jmp();
                self.a.patch(s, s + 4);
                let slot = slot as usize % MAX_SLOTS;
                self.out.gotos.push((slot as u8, s));
                self.set_pc_exit(pc, self.tb_idx << 8 | (K_CHAIN + slot as u64));
            }
            Op::JumpIndirect { target } => {
                let rt = self.get(target, Some(RAX), &[])?;
                self.sync_globals();
                if rt != RAX {
                    self.a.mov_rr(true, RAX, rt);
                }
                self.indirect_jump();
            }
            Op::Exit { code, pc } => {
                self.sync_globals();
                self.set_pc_exit(pc, (code as u64) << 8 | K_CODE);
            }
        }
        Some(())
    }

    /// Jumps to the guest pc in rax through the indirect-jump cache, or leaves to the run
    /// loop on a miss (guest registers already written back).
    fn indirect_jump(&mut self) {
        {
            {
                // An exit request takes the miss path back to the run loop, which sees it.
                let requested = self.jump_if_exit_requested();
                // Entry ((pc >> 1) & (JC_SIZE - 1)) of 16 bytes: (pc & mask) * 8.
                self.a.mov_rr(false, RCX, RAX);
                self.a
                    .alu_ri(false, Alu::And, RCX, (n::JC_SIZE as i32 - 1) << 1);
                let entry = |disp| Mem {
                    base: R15,
                    index: Some(RCX),
                    scale: 3,
                    disp,
                };
                // The entry's key is !(pc ^ tag) (see `native::jc_key`).
                if self.b.jump_tag != 0 {
                    self.a.mov_ri(RDX, !self.b.jump_tag);
                    self.a.alu_rr(true, Alu::Xor, RDX, RAX);
                } else {
                    self.a.mov_rr(true, RDX, RAX);
                    self.a.not(true, RDX);
                }
                self.a.cmp_rm(true, RDX, entry(n::CTX_JCACHE));
                let miss = self.a.jcc(Cc::Ne);
                // A hit goes straight on: blocks know their own pc, and every way out of
                // generated code stores the guest pc it leaves at.
                self.a.jmp_m(entry(n::CTX_JCACHE + 8));
                let here = self.a.pos();
                self.a.patch(miss, here);
                self.a.patch(requested, here);
                self.a.store(true, mem(RBP, self.pc_off as i32), RAX);
                self.a.mov_ri(RAX, self.tb_idx << 8 | K_INDIRECT);
                self.exit_jmp();
            }
        }
    }

    /// A second operand: an immediate when it fits, else a register.
    fn operand(&mut self, v: Val, w: bool, scratch: R, avoid: &[R]) -> Option<(R, Option<i32>)> {
        match v {
            Val::C(c) if fits_i32(c, w) => Some((scratch, Some(c as i32))),
            _ => Some((self.get(v, Some(scratch), avoid)?, None)),
        }
    }

    fn cmp(&mut self, w: bool, ra: R, rb: R, imm: Option<i32>) {
        match imm {
            Some(i) => self.a.alu_ri(w, Alu::Cmp, ra, i),
            None => self.a.alu_rr(w, Alu::Cmp, ra, rb),
        }
    }

    /// Dirty globals (env offset, host register) at this point.
    fn dirty_list(&self) -> DirtyRegs {
        let mut d = DirtyRegs::default();
        for r in ALLOC {
            if self.dirty[r.0 as usize] {
                if let Some(t) = self.holds[r.0 as usize] {
                    d.push((self.b.globals[t.0 as usize].offset, r.0));
                }
            }
        }
        for x in xregs::XALLOC {
            if self.xdirty[x as usize] {
                if let Some(t) = self.xholds[x as usize].filter(|&t| self.is_global(t)) {
                    d.push((self.b.globals[t.0 as usize].offset, xregs::XMM_BASE + x));
                }
            }
        }
        d
    }

    /// Records the next instruction as a guest memory access (for fault mapping). Dirty
    /// globals are not written back first: the fault path recovers them from the registers.
    fn memop(&mut self, write: bool) {
        let dirty = self.dirty_list();
        self.out.memop_regs.extend(dirty.iter());
        self.out.memops.push(MemOp {
            off: self.a.pos() as u32,
            regs_end: self.out.memop_regs.len() as u32,
            pc: self.pc,
            write,
        });
    }

    /// Calls `f(first, args...)` where `first` is the env (helpers) or nothing (pure ops).
    fn call(&mut self, f: u64, env_first: bool, args: &[Val], dst: Option<Temp>) -> Option<()> {
        self.sync_globals();
        self.xspill_for_call(args)?;
        // Save locals living in caller-saved registers; globals there are clean now.
        for r in ALLOC {
            if CALLEE_SAVED.contains(&r) {
                continue;
            }
            if let Some(t) = self.holds[r.0 as usize] {
                let used_here = args.contains(&Val::T(t));
                if !self.is_global(t) && (self.last_use[t.0 as usize] > self.cur || used_here) {
                    let m = self.home(t)?;
                    self.a.store(true, m, r);
                }
                self.unbind(r);
            }
        }
        let regs: &[R] = if env_first {
            &[RSI, RDX, RCX, R8]
        } else {
            &[RDI, RSI, RDX, RCX]
        };
        for (i, v) in args.iter().enumerate() {
            let target = regs[i];
            match *v {
                Val::C(c) => self.a.mov_ri(target, c),
                Val::T(t) => match self.reg_of[t.0 as usize] {
                    Some(r) => self.a.mov_rr(true, target, r),
                    None => {
                        let m = self.home(t)?;
                        self.a.load(true, target, m);
                    }
                },
            }
        }
        // Unused argument registers read as 0, as in the interpreter.
        for &target in &regs[args.len().min(4)..] {
            self.a.mov_ri(target, 0);
        }
        if env_first {
            self.a.mov_rr(true, RDI, RBP);
        }
        self.a.mov_ri(RAX, f);
        self.a.call_r(RAX);
        if let Some(d) = dst {
            let r = self.alloc(&[])?;
            self.a.mov_rr(true, r, RAX);
            self.bind(d, r);
        }
        Some(())
    }

    fn finish(&mut self) {
        for &(site, l) in &self.label_fix {
            let mut target = self.labels[l as usize].expect("verified block: label defined");
            if let Some(&(_, to)) = self.jump_alias.iter().find(|a| a.0 == target) {
                target = to;
            }
            self.a.patch(site, target);
        }
        let mut stubs = std::mem::take(&mut self.stubs);
        for s in stubs.drain(..) {
            let here = self.a.pos();
            match s {
                Stub::Range(s) => self.range_stub(s),
                Stub::Interrupt { site, pc } => {
                    self.a.patch(site, here);
                    self.set_pc_exit(pc, K_INTERRUPT);
                }
                Stub::SlowCall(s) => self.slow_call_stub(s),
                Stub::Mmu(s) => self.mmu_stub(s),
                Stub::LoopInterrupt { site, regs, pc } => {
                    self.a.patch(site, here);
                    for (off, r) in regs {
                        self.store_any(mem(RBP, off as i32), r);
                    }
                    self.set_pc_exit(pc, K_INTERRUPT);
                }
            }
        }
        self.stubs = stubs;
        self.out.code = std::mem::take(&mut self.a.buf);
    }
}
