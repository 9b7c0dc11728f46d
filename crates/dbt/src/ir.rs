//! The typed IR ("micro-ops") that guest front ends lower instructions to.
//!
//! A block is a straight-line list of ops with forward-only labels. Temporaries are typed
//! (`I32` or `I64`); the first `nglobals` temporaries are *globals*: guest registers that live
//! in the guest state structure (the "env") at fixed offsets. Globals survive across labels
//! and blocks; other temporaries are block-local and must not be live across a `Label`
//! (control may merge there). That rule keeps register allocation local and simple while
//! still letting guest registers stay in host registers inside a block.
//!
//! Semantics are defined here once and implemented twice (the IR interpreter and the native
//! backend), which is what the backend differential tests check.

use std::fmt;
use std::sync::Arc;

/// Value type of a temporary. `I32` values are kept zero-extended in 64-bit containers.
/// Operations of type `I32` (`Bin`, `SetCond`, `BrCond`) and `Sext32`/`Zext32` read only the
/// low 32 bits of their operands, so an `I64` operand stands for its truncation (the
/// optimiser uses this to drop `Trunc`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    I32,
    I64,
}

impl Ty {
    pub fn bits(self) -> u32 {
        match self {
            Ty::I32 => 32,
            Ty::I64 => 64,
        }
    }
    /// Truncates a raw value to this type's canonical representation.
    pub fn canon(self, v: u64) -> u64 {
        match self {
            Ty::I32 => v & 0xffff_ffff,
            Ty::I64 => v,
        }
    }
}

/// A temporary (index into `Block::temps`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Temp(pub u32);

/// An operand: a temporary or an immediate (already canonical for the op's type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Val {
    T(Temp),
    C(u64),
}

impl From<Temp> for Val {
    fn from(t: Temp) -> Val {
        Val::T(t)
    }
}

/// Forward branch target inside a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    /// High half of signed x signed.
    MulHs,
    /// High half of unsigned x unsigned.
    MulHu,
    /// High half of signed x unsigned.
    MulHsu,
    /// Signed division; x/0 = -1 and MIN/-1 = MIN (total, as RISC-V defines it).
    DivS,
    /// Unsigned division; x/0 = all ones.
    DivU,
    /// Signed remainder; x%0 = x and MIN%-1 = 0.
    RemS,
    /// Unsigned remainder; x%0 = x.
    RemU,
    And,
    Or,
    Xor,
    AndN,
    OrN,
    XorN,
    /// Shifts and rotates use the amount modulo the type width.
    Shl,
    Shr,
    Sar,
    Rotl,
    Rotr,
}

impl BinOp {
    /// Every operation, in a fixed order (the native backend encodes ops by index).
    pub const ALL: [BinOp; 21] = [
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::MulHs,
        BinOp::MulHu,
        BinOp::MulHsu,
        BinOp::DivS,
        BinOp::DivU,
        BinOp::RemS,
        BinOp::RemU,
        BinOp::And,
        BinOp::Or,
        BinOp::Xor,
        BinOp::AndN,
        BinOp::OrN,
        BinOp::XorN,
        BinOp::Shl,
        BinOp::Shr,
        BinOp::Sar,
        BinOp::Rotl,
        BinOp::Rotr,
    ];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    Neg,
    Not,
    /// Count leading zeros (width if zero).
    Clz,
    /// Count trailing zeros (width if zero).
    Ctz,
    Popcnt,
    /// Byte swap.
    Bswap,
    /// Sign-/zero-extend the low 8/16 bits within the type.
    Sext8,
    Sext16,
    Zext16,
    /// Per byte: 0xff if the byte is non-zero, else 0 (Zbb `orc.b`).
    OrcB,
}

impl UnOp {
    /// Every operation, in a fixed order (the native backend encodes ops by index).
    pub const ALL: [UnOp; 10] = [
        UnOp::Neg,
        UnOp::Not,
        UnOp::Clz,
        UnOp::Ctz,
        UnOp::Popcnt,
        UnOp::Bswap,
        UnOp::Sext8,
        UnOp::Sext16,
        UnOp::Zext16,
        UnOp::OrcB,
    ];
}

/// Conversions between the two types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExtOp {
    /// I64 -> I32 (low half).
    Trunc,
    /// I32 -> I64 sign-extended.
    Sext32,
    /// I32 -> I64 zero-extended.
    Zext32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cond {
    Eq,
    Ne,
    Lt,
    Ge,
    Ltu,
    Geu,
}

impl Cond {
    pub fn eval(self, ty: Ty, a: u64, b: u64) -> bool {
        let (a, b) = (ty.canon(a), ty.canon(b));
        let (sa, sb) = match ty {
            Ty::I32 => (a as u32 as i32 as i64, b as u32 as i32 as i64),
            Ty::I64 => (a as i64, b as i64),
        };
        match self {
            Cond::Eq => a == b,
            Cond::Ne => a != b,
            Cond::Lt => sa < sb,
            Cond::Ge => sa >= sb,
            Cond::Ltu => a < b,
            Cond::Geu => a >= b,
        }
    }
    pub fn invert(self) -> Cond {
        match self {
            Cond::Eq => Cond::Ne,
            Cond::Ne => Cond::Eq,
            Cond::Lt => Cond::Ge,
            Cond::Ge => Cond::Lt,
            Cond::Ltu => Cond::Geu,
            Cond::Geu => Cond::Ltu,
        }
    }
}

/// Size of a memory access in bytes (1, 2, 4, 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemSize {
    B1,
    B2,
    B4,
    B8,
}

impl MemSize {
    pub fn bytes(self) -> u64 {
        match self {
            MemSize::B1 => 1,
            MemSize::B2 => 2,
            MemSize::B4 => 4,
            MemSize::B8 => 8,
        }
    }
}

/// Read-modify-write operations done atomically on guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RmwOp {
    Xchg,
    Add,
    And,
    Or,
    Xor,
    Min,
    Max,
    Minu,
    Maxu,
}

/// Which orderings a [`Op::Barrier`] enforces between this thread's memory accesses
/// before it and those after it: a set of (earlier kind, later kind) pairs. Front ends
/// translate their fences into it; each backend then does what its host's memory model
/// needs. On x86-64 (TSO) only [`Order::STORE_LOAD`] costs an instruction: the host never
/// reorders the other three, and locked instructions ([`Op::Rmw`], [`Op::Cmpxchg`]) are
/// full barriers already. The optimiser must not move an access across a barrier that
/// orders it (see `loadcse`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Order(u8);

impl Order {
    pub const NONE: Order = Order(0);
    pub const LOAD_LOAD: Order = Order(1);
    pub const LOAD_STORE: Order = Order(2);
    pub const STORE_LOAD: Order = Order(4);
    pub const STORE_STORE: Order = Order(8);
    /// Everything: a sequentially consistent fence.
    pub const ALL: Order = Order(15);

    /// The orderings between the kinds of access before (`pred_*`) and after (`succ_*`)
    /// the barrier, as a RISC-V `fence pred, succ` states them.
    pub fn between(pred_load: bool, pred_store: bool, succ_load: bool, succ_store: bool) -> Order {
        let bit = |on: bool, o: Order| if on { o.0 } else { 0 };
        Order(
            bit(pred_load && succ_load, Order::LOAD_LOAD)
                | bit(pred_load && succ_store, Order::LOAD_STORE)
                | bit(pred_store && succ_load, Order::STORE_LOAD)
                | bit(pred_store && succ_store, Order::STORE_STORE),
        )
    }
    pub fn union(self, o: Order) -> Order {
        Order(self.0 | o.0)
    }
    pub fn without(self, o: Order) -> Order {
        Order(self.0 & !o.0)
    }
    pub fn contains(self, o: Order) -> bool {
        self.0 & o.0 == o.0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// True when loads after the barrier must not be satisfied from before it (the
    /// optimiser forgets the values it loaded).
    pub fn orders_later_loads(self) -> bool {
        self.0 & (Order::LOAD_LOAD.0 | Order::STORE_LOAD.0) != 0
    }
}

impl fmt::Debug for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Order::LOAD_LOAD, "LoadLoad"),
            (Order::LOAD_STORE, "LoadStore"),
            (Order::STORE_LOAD, "StoreLoad"),
            (Order::STORE_STORE, "StoreStore"),
        ];
        let mut first = true;
        for (o, n) in names {
            if self.contains(o) {
                f.write_str(if first { "" } else { "|" })?;
                f.write_str(n)?;
                first = false;
            }
        }
        if first {
            f.write_str("None")?;
        }
        Ok(())
    }
}

/// Signature of every helper: `f(env, a0, a1, a2, a3) -> result`. Helpers may read the env
/// (dirty globals are written back before a call), write env fields that are not globals,
/// and write the globals listed in [`Helper::writes`]; they never touch guest memory and
/// never fault.
pub type HelperFn = extern "C" fn(*mut u8, u64, u64, u64, u64) -> u64;

#[derive(Clone, Copy)]
pub struct Helper {
    pub name: &'static str,
    pub f: HelperFn,
    /// Globals with an index in `[writes.0, writes.1)` may be changed by the helper in the
    /// env; backends and the optimiser forget what they knew about them across the call.
    pub writes: (u32, u32),
    /// The bits of those globals the helper may change (e.g. only the accrued-flag bits of an
    /// FP status register); all ones when it may write anything.
    pub write_bits: u64,
}

impl Helper {
    pub fn may_write(&self, t: Temp) -> bool {
        t.0 >= self.writes.0 && t.0 < self.writes.1
    }
}

impl fmt::Debug for Helper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Helper {
    fn eq(&self, o: &Helper) -> bool {
        self.name == o.name
    }
}

/// A floating-point operation the host FPU can compute directly (see [`FastFp`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FpOp {
    Add,
    Sub,
    Mul,
    Div,
    /// Square root of the first operand.
    Sqrt,
    /// Fused `±(a * b) ± c` with one rounding; the signs come from [`FastFp::neg_prod`] and
    /// [`FastFp::neg_add`].
    MulAdd,
    /// Comparisons giving 1 or 0 (an integer result, not a floating-point one).
    Eq,
    Lt,
    Le,
}

/// An inline fast path a native backend may use instead of calling a helper.
///
/// Contract with the front end: whenever `guard & guard_mask == guard_want` (the rounding mode
/// is round-to-nearest-even), every operand (`args[0..]`, as many as the op reads) is a finite
/// number and the IEEE-754 round-to-nearest-even result has a biased exponent that is neither
/// 0, 1 nor all ones (a normal number away from the underflow threshold), the helper returns
/// exactly that result, and its only other effect is to accrue the inexact flag (see
/// [`InexactFlag`]) when the result is inexact. Operands and result are binary64, or
/// binary32 NaN-boxed (upper 32 bits all ones) when `double` is false; a binary32 operand that
/// is not NaN-boxed does not qualify. Under those conditions no IEEE exception other than
/// inexact can occur. Backends that do not inline simply make the call, so the IR
/// interpreter defines the semantics.
///
/// For the comparisons the contract is simpler: whenever neither operand is a NaN (binary32
/// operands NaN-boxed), the helper returns 1 if the relation holds, else 0, and has no other
/// effect; the guard is not consulted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FastFp {
    pub op: FpOp,
    pub double: bool,
    pub neg_prod: bool,
    pub neg_add: bool,
    pub guard: Val,
    pub guard_mask: u32,
    pub guard_want: u32,
}

/// Where the guest accrues the IEEE inexact flag: the bits `mask` of the guest register at
/// env offset `offset` (a global of every block). A native backend that inlines [`FastFp`]
/// arithmetic lets the host FPU's sticky inexact flag stand in for it and folds that in
/// before anything can observe the register: an op reading or writing it (other than a
/// fast path's guard, or a mask or shift that drops the bits), a helper that may write it,
/// and every return from generated code. Helpers that may not write the register must
/// leave the host's FP exception flags as they found them and raise no FP exception
/// (integer code does): they run under generated code's MXCSR, which unmasks invalid,
/// divide-by-zero, overflow and underflow (see `fptrap`). Helpers that may write it run with
/// every exception masked. Without this description a native backend makes the calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InexactFlag {
    pub offset: u32,
    pub mask: u32,
}

impl FpOp {
    pub fn is_compare(self) -> bool {
        matches!(self, FpOp::Eq | FpOp::Lt | FpOp::Le)
    }
    /// Number of operands read.
    pub fn arity(self) -> usize {
        match self {
            FpOp::Sqrt => 1,
            FpOp::MulAdd => 3,
            FpOp::Add | FpOp::Sub | FpOp::Mul | FpOp::Div => 2,
            FpOp::Eq | FpOp::Lt | FpOp::Le => 2,
        }
    }
}

/// Chainable exits per block (`GotoTb` slots 0..MAX_SLOTS).
pub const MAX_SLOTS: usize = 8;

/// `match` over the ops that write a temporary, shared by [`Op::def`] and [`Op::def_mut`]
/// so the list of variants exists once: `$one` for the ops with a `dst`, `$call` for a call's
/// optional `dst`.
macro_rules! match_def {
    ($op:expr, $($mut:ident)?; $d:ident => $one:expr, $c:ident => $call:expr) => {
        match $op {
            Op::Mov { dst: $d, .. }
            | Op::Bin { dst: $d, .. }
            | Op::Un { dst: $d, .. }
            | Op::Ext { dst: $d, .. }
            | Op::SetCond { dst: $d, .. }
            | Op::Load { dst: $d, .. }
            | Op::Rmw { dst: $d, .. } => $one,
            Op::Select(s) => {
                let $d = &$($mut)? s.dst;
                $one
            }
            Op::Cmpxchg(x) => {
                let $d = &$($mut)? x.dst;
                $one
            }
            Op::Call(c) => {
                let $c = &$($mut)? c.dst;
                $call
            }
            _ => None,
        }
    };
}

/// Calls `$f` on every operand of `$op`, shared by [`Op::for_each_use`] and
/// [`Op::for_each_use_mut`]; `$iter` is `iter` or `iter_mut` for a call's arguments.
macro_rules! visit_uses {
    ($op:expr, $f:ident, $iter:ident $(, $mut:ident)?) => {
        match $op {
            Op::Mov { src, .. } => $f(src),
            Op::Bin { a, b, .. } | Op::SetCond { a, b, .. } | Op::BrCond { a, b, .. } => {
                $f(a);
                $f(b)
            }
            Op::Un { a, .. } | Op::Ext { a, .. } => $f(a),
            Op::Select(s) => {
                $f(&$($mut)? s.a);
                $f(&$($mut)? s.b);
                $f(&$($mut)? s.t);
                $f(&$($mut)? s.f)
            }
            Op::Load { addr, .. } => $f(addr),
            Op::Store { src, addr, .. } => {
                $f(src);
                $f(addr)
            }
            Op::Rmw { addr, val, .. } => {
                $f(addr);
                $f(val)
            }
            Op::Cmpxchg(x) => {
                $f(&$($mut)? x.addr);
                $f(&$($mut)? x.expect);
                $f(&$($mut)? x.new)
            }
            Op::Call(c) => {
                c.args.$iter().for_each(&mut $f);
                if let Some(FastFp { guard, .. }) = &$($mut)? c.fast {
                    $f(guard)
                }
            }
            Op::JumpIndirect { target } => $f(target),
            _ => {}
        }
    };
}

/// The operands of [`Op::Select`]: dst = (a cond b) ? t : f; all of type `ty`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SelectOp {
    pub cond: Cond,
    pub ty: Ty,
    pub dst: Temp,
    pub a: Val,
    pub b: Val,
    pub t: Val,
    pub f: Val,
}

/// The operands of [`Op::Cmpxchg`]: atomic compare-and-swap; `dst` receives the old value
/// (sign-extended for B4). A full barrier, as [`Op::Rmw`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CmpxchgOp {
    pub dst: Temp,
    pub addr: Val,
    pub expect: Val,
    pub new: Val,
    pub size: MemSize,
}

/// The operands of [`Op::Call`]: call a helper with up to four I64 arguments; `fast`
/// optionally describes an inline fast path with the same result (see [`FastFp`]).
#[derive(Clone, Debug, PartialEq)]
pub struct CallOp {
    pub helper: Helper,
    pub dst: Option<Temp>,
    pub args: Vec<Val>,
    pub fast: Option<FastFp>,
}

/// One micro-op. Kept small (40 bytes): blocks hold many of them, and the IR of interpreted
/// blocks stays in memory, so the few wide ops are boxed.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Start of guest instruction at `pc` (used for precise faults and statistics).
    InsnStart {
        pc: u64,
    },
    Mov {
        dst: Temp,
        src: Val,
    },
    Bin {
        op: BinOp,
        ty: Ty,
        dst: Temp,
        a: Val,
        b: Val,
    },
    Un {
        op: UnOp,
        ty: Ty,
        dst: Temp,
        a: Val,
    },
    Ext {
        op: ExtOp,
        dst: Temp,
        a: Val,
    },
    /// dst = (a cond b) ? 1 : 0; `dst` has type `ty`.
    SetCond {
        cond: Cond,
        ty: Ty,
        dst: Temp,
        a: Val,
        b: Val,
    },
    /// dst = (a cond b) ? t : f (boxed, as it is rare: it would double every op's size).
    Select(Box<SelectOp>),
    /// Guest memory load from guest address `addr + disp` (`addr` is I64, the sum wraps);
    /// result zero or sign extended to I64. The only way front ends read guest memory, so a
    /// soft MMU can replace its lowering. The displacement lets a backend fold the offset of
    /// a base-plus-offset access into the host addressing mode (the optimiser folds known
    /// `base + constant` addresses into it, see `loadcse`).
    Load {
        dst: Temp,
        addr: Val,
        disp: i32,
        size: MemSize,
        signed: bool,
    },
    /// Guest memory store of `src` to guest address `addr + disp`, as for [`Op::Load`].
    Store {
        src: Val,
        addr: Val,
        disp: i32,
        size: MemSize,
    },
    /// Atomic read-modify-write; `dst` receives the old value (sign-extended for B4). A
    /// full barrier: no access before or after it is reordered across it.
    Rmw {
        op: RmwOp,
        dst: Temp,
        addr: Val,
        val: Val,
        size: MemSize,
    },
    /// Atomic compare-and-swap (boxed, as [`Op::Select`]).
    Cmpxchg(Box<CmpxchgOp>),
    /// A memory barrier: guest accesses before it are ordered before those after it as
    /// `order` says (atomics are ordered anyway: `Rmw` and `Cmpxchg` are full barriers).
    Barrier(Order),
    /// Call a helper (boxed, as [`Op::Select`]).
    Call(Box<CallOp>),
    Label(Label),
    Br(Label),
    BrCond {
        cond: Cond,
        ty: Ty,
        a: Val,
        b: Val,
        label: Label,
    },
    /// End the block with a direct (chainable) jump to `pc`; `slot` (below [`MAX_SLOTS`])
    /// names the chaining site: each target of a block gets its own slot.
    GotoTb {
        slot: u8,
        pc: u64,
    },
    /// End the block jumping to the guest address in `target` (fast lookup, else dispatcher).
    JumpIndirect {
        target: Val,
    },
    /// End the block returning `code` to the run loop with the guest pc set to `pc`.
    Exit {
        code: u32,
        pc: u64,
    },
}

// Checked at compile time: a new wide variant would silently make every op bigger.
const _: () = assert!(
    std::mem::size_of::<Op>() <= 40,
    "Op grew: box the wide variant"
);

impl Op {
    /// True for ops after which control does not fall through.
    pub fn is_terminator(&self) -> bool {
        matches!(
            self,
            Op::Br(_) | Op::GotoTb { .. } | Op::JumpIndirect { .. } | Op::Exit { .. }
        )
    }
    /// True for ops that may fault on guest memory.
    pub fn is_mem(&self) -> bool {
        matches!(
            self,
            Op::Load { .. } | Op::Store { .. } | Op::Rmw { .. } | Op::Cmpxchg(_)
        )
    }
    /// The temporary written by this op, if any.
    pub fn def(&self) -> Option<Temp> {
        match_def!(self, ; dst => Some(*dst), dst => *dst)
    }
    /// Mutable access to the temporary written by this op, if any (for renaming).
    pub fn def_mut(&mut self) -> Option<&mut Temp> {
        match_def!(self, mut; dst => Some(dst), dst => dst.as_mut())
    }
    /// Mutable access to the label this op defines or branches to, if any (for renaming).
    pub fn label_mut(&mut self) -> Option<&mut Label> {
        match self {
            Op::Label(l) | Op::Br(l) | Op::BrCond { label: l, .. } => Some(l),
            _ => None,
        }
    }
    /// Calls `f` on every operand this op reads.
    pub fn for_each_use(&self, mut f: impl FnMut(&Val)) {
        visit_uses!(self, f, iter)
    }
    /// Mutable variant of [`Op::for_each_use`] (used by the optimiser to rewrite operands).
    pub fn for_each_use_mut(&mut self, mut f: impl FnMut(&mut Val)) {
        visit_uses!(self, f, iter_mut, mut)
    }
}

/// Where a global lives in the env.
#[derive(Clone, Copy, Debug)]
pub struct GlobalDef {
    pub name: &'static str,
    pub offset: u32,
    pub ty: Ty,
}

/// Full-system memory: guest addresses are virtual and go through a TLB the front end
/// keeps in the env (see `codegen::softmmu`). Set on a block by a front end that
/// translates for a soft-MMU machine; `Load`/`Store` then mean accesses through it.
#[derive(Clone, Copy, Debug)]
pub struct SoftMmu {
    /// Env offset of the TLB this block's accesses use: `1 << tlb_bits` entries of
    /// [`TLB_ENTRY_BYTES`]: the page a load may use (`u64`, an impossible value when none),
    /// the page a store may use, and the host addend (host address = guest address +
    /// addend).
    pub tlb_offset: u32,
    pub tlb_bits: u8,
    /// The slow path: `slow(env, vaddr, store value, info)` performs the access (walking
    /// page tables, filling the TLB, reaching devices) and returns the loaded value,
    /// extended as asked; `info` is [`SoftMmu::info`]. When the guest access faults it
    /// writes a non-zero value to the env word at `fault_offset` (and records the guest
    /// exception in the env) instead.
    pub slow: SlowAccess,
    pub fault_offset: u32,
}

pub type SlowAccess = extern "C" fn(*mut u8, u64, u64, u64) -> u64;

/// Bytes per TLB entry (load tag, store tag, addend, spare).
pub const TLB_ENTRY_BYTES: u32 = 32;

impl SoftMmu {
    /// The slow path's `info` word: access size in bytes, sign extension, store.
    pub fn info(size: MemSize, signed: bool, write: bool) -> u64 {
        size.bytes() | (signed as u64) << 8 | (write as u64) << 9
    }
}

/// A translated guest block in IR form.
#[derive(Clone, Debug)]
pub struct Block {
    pub guest_pc: u64,
    /// The guest code the block was translated from lies in `[guest_lo, guest_lo +
    /// guest_len)` (for invalidation). A front end that follows direct jumps covers more
    /// than one run of instructions, not necessarily starting at `guest_pc`.
    pub guest_lo: u64,
    pub guest_len: u64,
    pub ninsns: u32,
    pub temps: Vec<Ty>,
    pub nglobals: u32,
    /// Shared by every block of a front end (a per-block copy was a third of a kept
    /// block's memory).
    pub globals: Arc<[GlobalDef]>,
    pub ops: Vec<Op>,
    pub nlabels: u32,
    /// Full-system mode: the soft MMU its memory ops go through (None: linear guest memory).
    pub soft_mmu: Option<SoftMmu>,
    /// Full-system mode: XORed into guest pcs in the indirect-jump cache, so a jump finds
    /// only blocks translated for the same mode as this one (0 in user mode).
    pub jump_tag: u64,
}

/// Translation-sized op buffers, reused block after block on each translating thread:
/// a fresh one per block cost a page fault every few ops as it was first written, and the
/// allocator's bookkeeping touched new pages besides (a third of translation time).
mod op_buffers {
    use super::Op;
    use std::cell::RefCell;

    /// Room for a full block's ops from the start: growing by doubling was a tenth of
    /// translation time (reallocations and fresh pages).
    const RESERVE: usize = 512;
    /// Buffers kept per thread (translations in progress at once: one, plus the ones of
    /// blocks dropped while another is built).
    const KEEP: usize = 4;

    thread_local! {
        static FREE: RefCell<Vec<Vec<Op>>> = const { RefCell::new(Vec::new()) };
    }

    pub fn take() -> Vec<Op> {
        FREE.try_with(|f| f.try_borrow_mut().ok().and_then(|mut f| f.pop()))
            .ok()
            .flatten()
            .unwrap_or_else(|| Vec::with_capacity(RESERVE))
    }

    pub fn give_back(mut ops: Vec<Op>) {
        if ops.capacity() < RESERVE {
            return;
        }
        ops.clear();
        let _ = FREE.try_with(|f| {
            if let Ok(mut f) = f.try_borrow_mut() {
                if f.len() < KEEP {
                    f.push(ops);
                }
            }
        });
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        op_buffers::give_back(std::mem::take(&mut self.ops));
    }
}

impl Block {
    pub fn new(guest_pc: u64, globals: &[GlobalDef]) -> Block {
        Block::with_globals(guest_pc, Arc::from(globals))
    }

    /// As [`Block::new`], sharing the front end's global definitions.
    pub fn with_globals(guest_pc: u64, globals: Arc<[GlobalDef]>) -> Block {
        Block {
            guest_pc,
            guest_lo: guest_pc,
            guest_len: 0,
            ninsns: 0,
            temps: {
                // Room for a full block's temporaries and ops from the start: growing them
                // by doubling was a tenth of translation time (reallocations and fresh pages).
                let mut t = Vec::with_capacity(globals.len() + 256);
                t.extend(globals.iter().map(|g| g.ty));
                t
            },
            nglobals: globals.len() as u32,
            globals,
            ops: op_buffers::take(),
            nlabels: 0,
            soft_mmu: None,
            jump_tag: 0,
        }
    }
    /// Gives back the room reserved for translating (see [`Block::new`]): for a block kept
    /// as IR (the interpreter runs it), which would otherwise hold tens of kilobytes. The
    /// ops move to a buffer of their exact size; the big one serves the next block.
    pub fn compact(&mut self) {
        let exact: Vec<Op> = self.ops.drain(..).collect();
        op_buffers::give_back(std::mem::replace(&mut self.ops, exact));
        self.temps.shrink_to_fit();
    }

    pub fn is_global(&self, t: Temp) -> bool {
        t.0 < self.nglobals
    }
    pub fn ty(&self, t: Temp) -> Ty {
        self.temps[t.0 as usize]
    }
    pub fn new_temp(&mut self, ty: Ty) -> Temp {
        self.temps.push(ty);
        Temp(self.temps.len() as u32 - 1)
    }
    pub fn new_label(&mut self) -> Label {
        self.nlabels += 1;
        Label(self.nlabels - 1)
    }
    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// Checks the structural rules the backends rely on.
    pub fn verify(&self) -> Result<(), String> {
        let mut defined = vec![false; self.nlabels as usize];
        let mut referenced = vec![false; self.nlabels as usize];
        // Locals must be written before they are read (ops are in a topological order).
        let mut written = vec![false; self.temps.len()];
        for (i, op) in self.ops.iter().enumerate() {
            let mut bad = None;
            op.for_each_use(|v| {
                if let Val::T(t) = v {
                    if t.0 as usize >= self.temps.len() {
                        bad = Some(format!("op {i}: unknown temp {t:?}"));
                    } else if !self.is_global(*t) && !written[t.0 as usize] {
                        bad = Some(format!("op {i}: local {t:?} read before it is written"));
                    }
                }
            });
            if let Some(d) = op.def() {
                if let Some(w) = written.get_mut(d.0 as usize) {
                    *w = true;
                }
            }
            if let Some(b) = bad {
                return Err(b);
            }
            match op {
                Op::Label(l) => {
                    if defined[l.0 as usize] {
                        return Err(format!("op {i}: label {l:?} defined twice"));
                    }
                    defined[l.0 as usize] = true;
                }
                Op::Br(l) | Op::BrCond { label: l, .. } => {
                    if defined[l.0 as usize] {
                        return Err(format!("op {i}: backward branch to {l:?}"));
                    }
                    referenced[l.0 as usize] = true;
                }
                Op::Call(c) if c.args.len() > 4 => {
                    return Err(format!("op {i}: call with more than 4 args"));
                }
                Op::GotoTb { slot, .. } if *slot as usize >= MAX_SLOTS => {
                    return Err(format!("op {i}: chain slot {slot} out of range"));
                }
                _ => {}
            }
        }
        for l in 0..self.nlabels as usize {
            if referenced[l] && !defined[l] {
                return Err(format!("label {l} referenced but never defined"));
            }
        }
        match self.ops.last() {
            Some(op) if op.is_terminator() => Ok(()),
            _ => Err("block does not end with a terminator".into()),
        }
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "block @{:#x} ({} insns)", self.guest_pc, self.ninsns)?;
        for op in &self.ops {
            writeln!(f, "  {op:?}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Order;

    #[test]
    fn orders_between_kinds_of_access() {
        assert_eq!(Order::between(true, true, true, true), Order::ALL);
        assert_eq!(Order::between(false, true, true, false), Order::STORE_LOAD);
        assert_eq!(Order::between(true, false, false, false), Order::NONE);
        let tso = Order::ALL.without(Order::STORE_LOAD);
        assert!(!tso.contains(Order::STORE_LOAD) && tso.contains(Order::LOAD_STORE));
        assert!(tso.orders_later_loads());
        assert!(!Order::STORE_STORE.orders_later_loads());
        assert_eq!(format!("{tso:?}"), "LoadLoad|LoadStore|StoreStore");
        assert_eq!(format!("{:?}", Order::NONE), "None");
    }
}
