//! Backend differential test: random IR blocks run on the native x86-64 backend and on the
//! IR interpreter must leave identical guest state and guest memory (Cranelift-fuzzgen style,
//! with a fixed seed so it is deterministic).

use dbt::env::EnvPtr;
use dbt::hostmem::{GuestMem, HostFault, Reservation};
use dbt::ir::*;
use dbt::{Backend, Exec, ExecConfig, Frontend, RunExit};

const NG: usize = 12;

/// Whether `t` is one of the test blocks' guest registers (the first `NG` temporaries).
fn is_global(t: Temp) -> bool {
    (t.0 as usize) < NG
}
const MEM: usize = 1 << 16;

#[repr(C)]
#[derive(Clone, Debug, PartialEq, Eq)]
struct Env {
    g: [u64; NG],
    pc: u64,
}

struct Fixed(Block, Vec<GlobalDef>);
impl Frontend for Fixed {
    fn globals(&self) -> &[GlobalDef] {
        &self.1
    }
    fn pc_offset(&self) -> u32 {
        (NG * 8) as u32
    }
    fn translate(
        &self,
        pc: u64,
        _: u32,
        _: &mut dyn FnMut(u64) -> Result<u16, HostFault>,
    ) -> Result<Block, HostFault> {
        if pc == self.0.guest_pc {
            Ok(self.0.clone())
        } else {
            let mut b = Block::new(pc, &self.1);
            b.push(Op::Exit { code: 7, pc });
            Ok(b)
        }
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const CONDS: [Cond; 6] = [Cond::Eq, Cond::Ne, Cond::Lt, Cond::Ge, Cond::Ltu, Cond::Geu];
const RMWS: [RmwOp; 9] = [
    RmwOp::Xchg,
    RmwOp::Add,
    RmwOp::And,
    RmwOp::Or,
    RmwOp::Xor,
    RmwOp::Min,
    RmwOp::Max,
    RmwOp::Minu,
    RmwOp::Maxu,
];
const SIZES: [MemSize; 4] = [MemSize::B1, MemSize::B2, MemSize::B4, MemSize::B8];

struct GenB {
    r: Rng,
    b: Block,
    /// Locals usable in the current region (between labels), by type.
    l64: Vec<Temp>,
    l32: Vec<Temp>,
    /// Locals among `l64` holding guest addresses (bases of accesses).
    pointers: Vec<Temp>,
}

impl GenB {
    /// A generator for a block at 0x1000, seeded from `r`.
    fn new(r: &mut Rng, globals: &[GlobalDef]) -> GenB {
        GenB {
            r: Rng(r.next() | 1),
            b: Block::new(0x1000, globals),
            l64: vec![],
            l32: vec![],
            pointers: vec![],
        }
    }

    fn val(&mut self, ty: Ty) -> Val {
        let pool = if ty == Ty::I64 { &self.l64 } else { &self.l32 };
        match self.r.below(4) {
            0 => Val::C(ty.canon(match self.r.below(4) {
                0 => self.r.below(8),
                1 => u64::MAX - self.r.below(3),
                2 => 1 << self.r.below(64),
                _ => self.r.next(),
            })),
            1 if !pool.is_empty() => Val::T(pool[self.r.below(pool.len() as u64) as usize]),
            _ if ty == Ty::I64 => Val::T(Temp(self.r.below(NG as u64) as u32)),
            _ if !pool.is_empty() => Val::T(pool[self.r.below(pool.len() as u64) as usize]),
            _ => Val::C(self.r.next() & 0xffff_ffff),
        }
    }
    fn dst(&mut self, ty: Ty) -> Temp {
        if ty == Ty::I64 && self.r.below(2) == 0 {
            return Temp(self.r.below(NG as u64) as u32);
        }
        let t = self.b.new_temp(ty);
        if ty == Ty::I64 {
            self.l64.push(t)
        } else {
            self.l32.push(t)
        }
        t
    }
    /// A guest address as base + displacement: mostly inside guest memory, sometimes a
    /// little outside it (caught by the guard pages) or far outside (caught by the check),
    /// and sometimes on a pointer bumped from an earlier one (whose check may cover it).
    fn addr(&mut self) -> (Val, i32) {
        let disp = match self.r.below(16) {
            0..=6 => 0,
            7..=10 => self.r.below(2048) as i32,
            11..=13 => self.r.below(32) as i32 * 8 - 128,
            14 => self.r.below(4096) as i32 - 2048,
            _ => [-70000, 70000, -9, MEM as i32, i32::MIN, i32::MAX][self.r.below(6) as usize],
        };
        match self.r.below(4) {
            0 => (self.base(), disp),
            1 if !self.pointers.is_empty() => {
                let p = self.pointers[self.r.below(self.pointers.len() as u64) as usize];
                let t = self.dst_local();
                self.b.push(Op::Bin {
                    op: [BinOp::Add, BinOp::Sub][self.r.below(2) as usize],
                    ty: Ty::I64,
                    dst: t,
                    a: Val::T(p),
                    b: Val::C(self.r.below(64) * 4),
                });
                self.pointers.push(t);
                (Val::T(t), disp)
            }
            _ => (self.base(), disp),
        }
    }
    /// A guest address inside the buffer (sometimes computed at run time from a global).
    fn base(&mut self) -> Val {
        if self.r.below(2) == 0 {
            return Val::C(self.r.below(MEM as u64 - 8));
        }
        let g = Val::T(Temp(self.r.below(NG as u64) as u32));
        let t = self.dst_local();
        self.b.push(Op::Bin {
            op: BinOp::And,
            ty: Ty::I64,
            dst: t,
            a: g,
            b: Val::C(0x7ff8),
        });
        self.pointers.push(t);
        Val::T(t)
    }
    fn dst_local(&mut self) -> Temp {
        let t = self.b.new_temp(Ty::I64);
        self.l64.push(t);
        t
    }
    fn op(&mut self) {
        let ty = if self.r.below(3) == 0 {
            Ty::I32
        } else {
            Ty::I64
        };
        match self.r.below(14) {
            0..=3 => {
                let op = BinOp::ALL[self.r.below(BinOp::ALL.len() as u64) as usize];
                let (a, b) = (self.val(ty), self.val(ty));
                let dst = self.dst(ty);
                self.b.push(Op::Bin { op, ty, dst, a, b });
            }
            4 => {
                // Address arithmetic: a shift by 1-3 used once, by the add right after it.
                let t = self.b.new_temp(Ty::I64);
                let x = self.val(Ty::I64);
                self.b.push(Op::Bin {
                    op: BinOp::Shl,
                    ty: Ty::I64,
                    dst: t,
                    a: x,
                    b: Val::C(1 + self.r.below(3)),
                });
                let y = self.val(Ty::I64);
                let (a, b) = if self.r.below(2) == 0 {
                    (Val::T(t), y)
                } else {
                    (y, Val::T(t))
                };
                let sum = self.dst(Ty::I64);
                self.b.push(Op::Bin {
                    op: BinOp::Add,
                    ty: Ty::I64,
                    dst: sum,
                    a,
                    b,
                });
                if self.r.below(2) == 0 {
                    // And a second add (`slli; addi; add`).
                    let other = self.val(Ty::I64);
                    let dst = self.dst(Ty::I64);
                    self.b.push(Op::Bin {
                        op: BinOp::Add,
                        ty: Ty::I64,
                        dst,
                        a: Val::T(sum),
                        b: other,
                    });
                }
            }
            5 => {
                let op = UnOp::ALL[self.r.below(UnOp::ALL.len() as u64) as usize];
                let a = self.val(ty);
                let dst = self.dst(ty);
                self.b.push(Op::Un { op, ty, dst, a });
            }
            6 => {
                let (op, from, to) = match self.r.below(3) {
                    0 => (ExtOp::Trunc, Ty::I64, Ty::I32),
                    1 => (ExtOp::Sext32, Ty::I32, Ty::I64),
                    _ => (ExtOp::Zext32, Ty::I32, Ty::I64),
                };
                let a = self.val(from);
                let dst = self.dst(to);
                self.b.push(Op::Ext { op, dst, a });
            }
            7 => {
                let cond = CONDS[self.r.below(6) as usize];
                let (a, b) = (self.val(ty), self.val(ty));
                let dst = self.dst(ty);
                self.b.push(Op::SetCond {
                    cond,
                    ty,
                    dst,
                    a,
                    b,
                });
                let cond = CONDS[self.r.below(6) as usize];
                let (a, b, t, f) = (self.val(ty), self.val(ty), self.val(ty), self.val(ty));
                let dst = self.dst(ty);
                self.b.push(Op::Select(Box::new(SelectOp {
                    cond,
                    ty,
                    dst,
                    a,
                    b,
                    t,
                    f,
                })));
            }
            8 => {
                let size = SIZES[self.r.below(4) as usize];
                let (addr, disp) = self.addr();
                let signed = self.r.below(2) == 0;
                let dst = self.dst(Ty::I64);
                self.b.push(Op::Load {
                    dst,
                    addr,
                    disp,
                    size,
                    signed,
                });
            }
            9 => {
                let size = SIZES[self.r.below(4) as usize];
                let (addr, disp) = self.addr();
                let src = self.val(Ty::I64);
                self.b.push(Op::Store {
                    src,
                    addr,
                    disp,
                    size,
                });
                // A barrier of a kind picked without drawing (the stream of random choices,
                // and so every other block, stays as it was): the native backend's `lock
                // or` clobbers the flags and must disturb nothing else.
                let n = self.b.ops.len();
                let order = Order::between(n & 1 != 0, n & 2 != 0, n & 4 != 0, n & 8 != 0);
                self.b.push(Op::Barrier(order));
            }
            10 => {
                let size = if self.r.below(2) == 0 {
                    MemSize::B4
                } else {
                    MemSize::B8
                };
                let addr = self.base();
                let val = self.val(Ty::I64);
                let expect = self.val(Ty::I64);
                let dst = self.dst(Ty::I64);
                if self.r.below(3) == 0 {
                    self.b.push(Op::Cmpxchg(Box::new(CmpxchgOp {
                        dst,
                        addr,
                        expect,
                        new: val,
                        size,
                    })));
                } else {
                    let op = RMWS[self.r.below(9) as usize];
                    self.b.push(Op::Rmw {
                        op,
                        dst,
                        addr,
                        val,
                        size,
                    });
                }
            }
            11 => {
                let l = self.b.new_label();
                let cond = CONDS[self.r.below(6) as usize];
                let (a, b) = (self.val(ty), self.val(ty));
                self.b.push(Op::BrCond {
                    cond,
                    ty,
                    a,
                    b,
                    label: l,
                });
                for _ in 0..self.r.below(4) {
                    self.simple();
                }
                self.b.push(Op::Label(l));
                self.l64.clear();
                self.l32.clear();
                self.pointers.clear();
            }
            _ => {
                let helper = if self.r.below(2) == 0 {
                    Helper {
                        name: "mix",
                        f: mix,
                        writes: (0, 0),
                        write_bits: u64::MAX,
                    }
                } else {
                    Helper {
                        name: "poke",
                        f: poke,
                        writes: (1, 2),
                        write_bits: u64::MAX,
                    }
                };
                let args: Vec<Val> = (0..self.r.below(5)).map(|_| self.val(Ty::I64)).collect();
                let dst = Some(self.dst(Ty::I64));
                self.b.push(Op::Call(Box::new(CallOp {
                    helper,
                    dst,
                    args,
                    fast: None,
                })));
            }
        }
    }
    fn simple(&mut self) {
        let op = BinOp::ALL[self.r.below(BinOp::ALL.len() as u64) as usize];
        let (a, b) = (self.val(Ty::I64), self.val(Ty::I64));
        let dst = Temp(self.r.below(NG as u64) as u32);
        self.b.push(Op::Bin {
            op,
            ty: Ty::I64,
            dst,
            a,
            b,
        });
    }
}

/// A helper that also writes global 1 in the env (declared in `Helper::writes`).
extern "C" fn poke(env: *mut u8, a: u64, b: u64, _: u64, _: u64) -> u64 {
    // SAFETY: env points at the test's `Env` (NG+1 u64s); global 1 is at byte offset 8.
    unsafe {
        let g1 = (env as *mut u64).add(1);
        g1.write(g1.read().rotate_left(13) ^ a);
    }
    b.wrapping_mul(0x9e37_79b9)
}

/// A helper that reads the env (globals must be synced) and mixes its arguments.
extern "C" fn mix(env: *mut u8, a: u64, b: u64, c: u64, d: u64) -> u64 {
    // SAFETY: env points at the test's `Env` (NG+1 u64s).
    let g0 = unsafe { (env as *const u64).read() };
    a.rotate_left(7) ^ b.wrapping_mul(3) ^ c ^ d.wrapping_add(g0)
}

fn run(block: &Block, backend: Backend, env0: &Env, mem0: &[u8]) -> (Env, Vec<u8>, RunExit) {
    let space = guarded(mem0);
    let (env, r) = run_in(block, backend, env0, space.mem());
    (env, contents(&space), r)
}

/// Guest memory (with the guard pages the native backend relies on) holding `mem0`.
fn guarded(mem0: &[u8]) -> Reservation {
    let space = Reservation::new(mem0.len() as u64, libc::PROT_READ | libc::PROT_WRITE).unwrap();
    // SAFETY: the reservation's guest part is `mem0.len()` writable bytes.
    unsafe { std::ptr::copy_nonoverlapping(mem0.as_ptr(), space.base() as *mut u8, mem0.len()) };
    space
}

fn contents(space: &Reservation) -> Vec<u8> {
    let m = space.mem();
    // SAFETY: the reservation's guest part is `limit` readable bytes.
    unsafe { std::slice::from_raw_parts(m.base as *const u8, m.limit as usize).to_vec() }
}

/// Runs `block` on `backend` over guest memory `mem`.
fn run_in(block: &Block, backend: Backend, env0: &Env, mem: GuestMem) -> (Env, RunExit) {
    let globals = block.globals.to_vec();
    let fe = Fixed(block.clone(), globals);
    let mut ex = Exec::new(ExecConfig {
        backend,
        mem,
        max_insns: 100,
        smc: false,
        code_size: 1 << 20,
        exec_check: None,
        write_check: None,
        compile_after: 0,
        // Global 0 holds the flags; inexact is bit 0 (see `fp_ref`).
        inexact_flag: Some(InexactFlag { offset: 0, mask: 1 }),
        system: None,
    })
    .unwrap();
    let mut env = env0.clone();
    let r = ex.run(&fe, EnvPtr::new(&mut env));
    if backend == Backend::Native {
        assert_eq!(
            ex.stats.native_blocks, ex.stats.blocks_translated,
            "block not compiled natively"
        );
    }
    (env, r)
}

/// Globals g0..g(NG-1), one word each at the start of `Env`.
fn test_globals() -> Vec<GlobalDef> {
    (0..NG)
        .map(|i| GlobalDef {
            name: "g",
            offset: (i * 8) as u32,
            ty: Ty::I64,
        })
        .collect()
}

/// Guest registers with random values of random widths, pc at the test block.
fn random_env(r: &mut Rng) -> Env {
    let mut env = Env {
        g: [0; NG],
        pc: 0x1000,
    };
    for v in env.g.iter_mut() {
        *v = r.next() >> r.below(64);
    }
    env
}

/// Guest memory filled with a fixed pattern, with random low bits if `noise` is given.
fn pattern_mem(mut noise: Option<&mut Rng>) -> Vec<u8> {
    (0..MEM)
        .map(|i| {
            let n = noise.as_mut().map_or(0, |r| r.next() as u8 & 1);
            (i as u64).wrapping_mul(0x9e37_79b9) as u8 ^ n
        })
        .collect()
}

/// Number of random cases: `default`, or TANDEM_BACKEND_DIFF_CASES for soak testing.
fn soak_cases(default: usize) -> usize {
    std::env::var("TANDEM_BACKEND_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `block` on both backends from the same state; exit, env and memory must agree.
fn assert_backends_agree(block: &Block, env0: &Env, mem0: &[u8], case: usize) {
    let a = run(block, Backend::Interp, env0, mem0);
    let b = run(block, Backend::Native, env0, mem0);
    assert_eq!(a.2, b.2, "case {case}: exit\n{block}");
    assert_eq!(a.0, b.0, "case {case}: env\n{block}");
    assert!(a.1 == b.1, "case {case}: memory differs\n{block}");
}

#[test]
fn native_matches_interpreter_on_random_blocks() {
    let globals = test_globals();
    let mut r = Rng(0x1234_5678_9abc_def1);
    for case in 0..soak_cases(1500) {
        let mut g = GenB::new(&mut r, &globals);
        let n = 1 + g.r.below(40);
        for _ in 0..n {
            g.op();
        }
        let end = if g.r.below(2) == 0 {
            Op::Exit {
                code: 3,
                pc: 0x2000,
            }
        } else {
            Op::GotoTb {
                slot: 0,
                pc: 0x3000,
            }
        };
        g.b.push(end);
        g.b.verify().unwrap();
        let env0 = random_env(&mut r);
        let mem0 = pattern_mem(Some(&mut r));
        assert_backends_agree(&g.b, &env0, &mem0, case);
    }
}

#[test]
fn register_pressure_spills_match() {
    // Far more simultaneously live values than host registers, across loads and calls.
    let globals = test_globals();
    let mut r = Rng(0xfeed_beef_1234_5679);
    for case in 0..50 {
        let mut b = Block::new(0x1000, &globals);
        let n = 20 + r.below(40) as usize;
        let mut locals = Vec::new();
        for i in 0..n {
            let t = b.new_temp(Ty::I64);
            let g = Val::T(Temp((i % NG) as u32));
            match r.below(4) {
                0 => b.push(Op::Load {
                    dst: t,
                    addr: Val::C(r.below(MEM as u64 - 8)),
                    disp: 0,
                    size: MemSize::B8,
                    signed: false,
                }),
                1 => b.push(Op::Call(Box::new(CallOp {
                    helper: Helper {
                        name: "mix",
                        f: mix,
                        writes: (0, 0),
                        write_bits: u64::MAX,
                    },
                    dst: Some(t),
                    args: vec![g, Val::C(i as u64)],
                    fast: None,
                }))),
                _ => b.push(Op::Bin {
                    op: BinOp::Mul,
                    ty: Ty::I64,
                    dst: t,
                    a: g,
                    b: Val::C(2 * i as u64 + 1),
                }),
            }
            locals.push(t);
        }
        // Consume in reverse order so every value stays live until the end.
        for (i, t) in locals.iter().rev().enumerate() {
            let g = Temp((i % NG) as u32);
            b.push(Op::Bin {
                op: BinOp::Xor,
                ty: Ty::I64,
                dst: g,
                a: Val::T(g),
                b: Val::T(*t),
            });
        }
        b.push(Op::Exit {
            code: 1,
            pc: 0x2000,
        });
        let env0 = Env {
            g: core::array::from_fn(|_| r.next()),
            pc: 0x1000,
        };
        let mem0: Vec<u8> = (0..MEM).map(|i| (i * 7) as u8).collect();
        let a = run(&b, Backend::Interp, &env0, &mem0);
        let c = run(&b, Backend::Native, &env0, &mem0);
        assert_eq!(a.0, c.0, "case {case}\n{b}");
        assert_eq!(a.2, c.2);
    }
}

const FP_OPS: [FpOp; 9] = [
    FpOp::Add,
    FpOp::Sub,
    FpOp::Mul,
    FpOp::Div,
    FpOp::Sqrt,
    FpOp::MulAdd,
    FpOp::Eq,
    FpOp::Lt,
    FpOp::Le,
];
const BOX: u64 = 0xffff_ffff_0000_0000;

/// Reference helper for the FP fast paths: the same host SSE/FMA operation the native backend
/// inlines, with the flags it raised accrued into global 0 (inexact bit 0, invalid bit 3,
/// divide by zero bit 4, overflow bit 5, underflow bit 6). Global 0 bits 1-2 play the rounding
/// mode: when non-zero the result is deliberately different, so a fast path taken despite its
/// guard shows. It also clobbers xmm8-xmm15, as any callee may, so the native backend
/// must save the xmm registers holding FP values around slow calls.
/// `code` (the fourth argument): op index | double << 4 | neg_prod << 5 | neg_add << 6.
extern "C" fn fp_ref(env: *mut u8, a: u64, b: u64, c: u64, code: u64) -> u64 {
    let op = FP_OPS[(code & 15) as usize];
    let double = code & 16 != 0;
    // SAFETY: env points at the test's `Env`; global 0 is its first word.
    let g0 = unsafe { &mut *(env as *mut u64) };
    let boxed = |v: u64| double || v >> 32 == 0xffff_ffff;
    let arity = op.arity();
    if ![a, b, c][..arity].iter().all(|&v| boxed(v)) {
        return 0x5a5a;
    }
    if op.is_compare() {
        let ord = if double {
            f64::from_bits(a).partial_cmp(&f64::from_bits(b))
        } else {
            f32::from_bits(a as u32).partial_cmp(&f32::from_bits(b as u32))
        };
        let Some(o) = ord else {
            *g0 |= 8;
            return 0;
        };
        use std::cmp::Ordering::*;
        return match op {
            FpOp::Eq => (o == Equal) as u64,
            FpOp::Lt => (o == Less) as u64,
            _ => (o != Greater) as u64,
        };
    }
    let sign = if double { 1u64 << 63 } else { 1 << 31 };
    let a = if code & 32 != 0 { a ^ sign } else { a };
    let c = if code & 64 != 0 { c ^ sign } else { c };
    let mut x = a;
    let mut csr: u32 = 0x1f80;
    macro_rules! sse {
        ($insn:literal) => {
            // SAFETY: register-only SSE/FMA arithmetic with MXCSR set to the default (all
            // exceptions masked, round to nearest) before and read after; compiled Rust code
            // does not depend on MXCSR's flags. The clobbered registers are declared.
            unsafe {
                std::arch::asm!(
                    "ldmxcsr dword ptr [{csr}]",
                    "movq xmm0, {x}",
                    "movq xmm1, {y}",
                    "movq xmm2, {z}",
                    $insn,
                    "movq {x}, xmm0",
                    "stmxcsr dword ptr [{csr}]",
                    "xorps xmm8, xmm8",
                    "xorps xmm9, xmm9",
                    "xorps xmm10, xmm10",
                    "xorps xmm11, xmm11",
                    "xorps xmm12, xmm12",
                    "xorps xmm13, xmm13",
                    "xorps xmm14, xmm14",
                    "xorps xmm15, xmm15",
                    x = inout(reg) x,
                    y = in(reg) b,
                    z = in(reg) c,
                    csr = in(reg) &mut csr,
                    out("xmm0") _, out("xmm1") _, out("xmm2") _,
                    out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
                    out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
                    options(nostack),
                )
            }
        };
    }
    match (op, double) {
        (FpOp::Add, true) => sse!("addsd xmm0, xmm1"),
        (FpOp::Sub, true) => sse!("subsd xmm0, xmm1"),
        (FpOp::Mul, true) => sse!("mulsd xmm0, xmm1"),
        (FpOp::Div, true) => sse!("divsd xmm0, xmm1"),
        (FpOp::Sqrt, true) => sse!("sqrtsd xmm0, xmm0"),
        (FpOp::MulAdd, true) => sse!("vfmadd213sd xmm0, xmm1, xmm2"),
        (FpOp::Add, _) => sse!("addss xmm0, xmm1"),
        (FpOp::Sub, _) => sse!("subss xmm0, xmm1"),
        (FpOp::Mul, _) => sse!("mulss xmm0, xmm1"),
        (FpOp::Div, _) => sse!("divss xmm0, xmm1"),
        (FpOp::Sqrt, _) => sse!("sqrtss xmm0, xmm0"),
        _ => sse!("vfmadd213ss xmm0, xmm1, xmm2"),
    }
    // MXCSR: IE bit 0, ZE bit 2, OE bit 3, UE bit 4, PE bit 5.
    let flags = [(5, 1), (0, 8), (2, 16), (3, 32), (4, 64)];
    for (bit, flag) in flags {
        if csr >> bit & 1 != 0 {
            *g0 |= flag;
        }
    }
    let v = if double { x } else { x & 0xffff_ffff | BOX };
    if *g0 & 6 != 0 {
        v ^ 1
    } else {
        v
    }
}

const FP_REF: Helper = Helper {
    name: "fp_ref",
    f: fp_ref,
    writes: (0, 1),
    write_bits: u64::MAX,
};

/// FP bit patterns: ordinary, short-mantissa (exact results), huge, tiny, zero, inf, NaN.
fn fp_bits(r: &mut Rng, double: bool) -> u64 {
    let v: f64 = match r.below(8) {
        0..=2 => (r.below(64) as f64 - 32.0) * 2f64.powi(r.below(12) as i32 - 6),
        3 => (r.next() >> 11) as f64 / (1u64 << 53) as f64 * 3.0 + 0.1,
        4 => [1e300, -1e308, 3e38, 1e-300, 1e-310, 1e-40, 1e-38][r.below(7) as usize],
        5 => [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY][r.below(4) as usize],
        6 => f64::NAN,
        _ => f64::from_bits(r.next()),
    };
    if double {
        v.to_bits()
    } else if r.below(20) == 0 {
        (v as f32).to_bits() as u64 // not NaN-boxed
    } else {
        (v as f32).to_bits() as u64 | BOX
    }
}

#[test]
fn fp_fast_paths_match_interpreter() {
    if !std::is_x86_feature_detected!("fma") {
        eprintln!("skipping: the host has no FMA (the reference helper uses it)");
        return;
    }
    let globals = test_globals();
    let mut r = Rng(0x0f10_a7f1_0a75_0001);
    for case in 0..soak_cases(1500) {
        let mut g = GenB::new(&mut r, &globals);
        let double = g.r.below(3) != 0;
        let mut fp_locals: Vec<Temp> = Vec::new();
        for _ in 0..1 + g.r.below(30) {
            if g.r.below(4) == 0 {
                // Integer ops, memory, calls and labels in between (labels end locals).
                g.op();
                fp_locals.retain(|t| g.l64.contains(t));
                continue;
            }
            if g.r.below(8) == 0 {
                // Observe the flags (global 0) mid-block: read them into another global, or
                // clear inexact, as a guest's frflags / fsflags would.
                let g0 = Val::T(Temp(0));
                let op = if g.r.below(2) == 0 {
                    Op::Mov {
                        dst: Temp(1 + g.r.below(NG as u64 - 1) as u32),
                        src: g0,
                    }
                } else {
                    Op::Bin {
                        op: BinOp::And,
                        ty: Ty::I64,
                        dst: Temp(0),
                        a: g0,
                        b: Val::C(!1),
                    }
                };
                g.b.push(op);
                continue;
            }
            if g.r.below(6) == 0 {
                // FP loads and stores (`fld`/`fsd`), sometimes out of range: the fault
                // must find FP values still in host registers written back.
                let (addr, disp) = match g.r.below(8) {
                    0 => (Val::C(MEM as u64 + g.r.below(64)), 0),
                    _ => g.addr(),
                };
                if g.r.below(2) == 0 {
                    let t = g.b.new_temp(Ty::I64);
                    g.l64.push(t);
                    fp_locals.push(t);
                    g.b.push(Op::Load {
                        dst: t,
                        addr,
                        disp,
                        size: MemSize::B8,
                        signed: false,
                    });
                    if g.r.below(2) == 0 {
                        // `fld fa5, ..`: a load moved straight on to a guest register (the
                        // native backend loads into that register's host register).
                        let dst = Temp(1 + g.r.below(NG as u64 - 1) as u32);
                        g.b.push(Op::Mov {
                            dst,
                            src: Val::T(t),
                        });
                        g.l64.retain(|&l| l != t);
                        fp_locals.retain(|&l| l != t);
                    }
                } else {
                    let src = match fp_locals.last() {
                        Some(&t) if g.r.below(2) == 0 => Val::T(t),
                        _ => Val::T(Temp(1 + g.r.below(NG as u64 - 1) as u32)),
                    };
                    g.b.push(Op::Store {
                        src,
                        addr,
                        disp,
                        size: MemSize::B8,
                    });
                }
                continue;
            }
            let op = FP_OPS[g.r.below(FP_OPS.len() as u64) as usize];
            let operand = |g: &mut GenB| match g.r.below(3) {
                0 if !fp_locals.is_empty() => {
                    Val::T(fp_locals[g.r.below(fp_locals.len() as u64) as usize])
                }
                1 => Val::C(fp_bits(&mut g.r, double)),
                _ => Val::T(Temp(1 + g.r.below(NG as u64 - 1) as u32)),
            };
            let mut args: Vec<Val> = (0..op.arity()).map(|_| operand(&mut g)).collect();
            args.resize(3, Val::C(0));
            let (np, na) = (g.r.below(2) == 1, g.r.below(2) == 1);
            let fused = op == FpOp::MulAdd;
            let code = FP_OPS.iter().position(|o| *o == op).unwrap() as u64
                | (double as u64) << 4
                | ((fused && np) as u64) << 5
                | ((fused && na) as u64) << 6;
            args.push(Val::C(code));
            let first = args[0];
            let dst = if g.r.below(2) == 0 {
                Temp(1 + g.r.below(NG as u64 - 1) as u32)
            } else {
                let t = g.b.new_temp(Ty::I64);
                g.l64.push(t);
                fp_locals.push(t);
                t
            };
            g.b.push(Op::Call(Box::new(CallOp {
                helper: FP_REF,
                dst: Some(dst),
                args,
                fast: Some(FastFp {
                    op,
                    double,
                    neg_prod: fused && np,
                    neg_add: fused && na,
                    guard: Val::T(Temp(0)),
                    guard_mask: 6,
                    guard_want: 0,
                }),
            })));
            if !is_global(dst) && g.r.below(2) == 0 {
                // The front end's shape: the result moved on to a guest register, often the
                // first operand's (`fmadd.d fa5, fa5, ..`, computed in place natively).
                let to = match first {
                    Val::T(t) if is_global(t) && t != Temp(0) && g.r.below(2) == 0 => t,
                    _ => Temp(1 + g.r.below(NG as u64 - 1) as u32),
                };
                g.b.push(Op::Mov {
                    dst: to,
                    src: Val::T(dst),
                });
                g.l64.retain(|&l| l != dst);
                fp_locals.retain(|&l| l != dst);
            }
        }
        g.b.push(Op::Exit {
            code: 3,
            pc: 0x2000,
        });
        g.b.verify().unwrap();
        let mut env0 = Env {
            g: [0; NG],
            pc: 0x1000,
        };
        env0.g[0] = r.below(8);
        for v in env0.g[1..].iter_mut() {
            *v = fp_bits(&mut r, double);
        }
        let mem0 = pattern_mem(None);
        assert_backends_agree(&g.b, &env0, &mem0, case);
    }
}

/// Test helper: sets bit 0 of global 5 (like an FP helper accruing a flag).
extern "C" fn accrue(env: *mut u8, _: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: env points at the test's `Env`; global 5 is its sixth word.
    unsafe { *(env as *mut u64).add(5) |= 1 };
    0
}

/// A self-loop starting with a check the loop cannot change skips it on the back edge
/// (native backend, `selfloop::invariant_prefix`); whenever the body can change what the
/// check reads, it must still be made on every iteration, as the interpreter does.
#[test]
fn self_loop_invariant_checks_match() {
    const ACCRUE: Helper = Helper {
        name: "accrue",
        f: accrue,
        writes: (5, 6),
        write_bits: 1,
    };
    let globals = test_globals();
    let g = |k: u32| Temp(k);
    let add = |b: &mut Block, d: Temp, v: u64| {
        b.push(Op::Bin {
            op: BinOp::Add,
            ty: Ty::I64,
            dst: d,
            a: Val::T(d),
            b: Val::C(v),
        })
    };
    // (initial global 5, what the fast path's body ORs into it, expected global 2)
    let cases = [(0, 0, 20), (0x100, 0, 20_000), (0, 0x100, 1 + 19_000)];
    for (case, &(mode, sets, want)) in cases.iter().enumerate() {
        let mut b = Block::new(0x1000, &globals);
        let m = b.new_temp(Ty::I64);
        let general = b.new_label();
        let again = b.new_label();
        let again2 = b.new_label();
        b.push(Op::Bin {
            op: BinOp::And,
            ty: Ty::I64,
            dst: m,
            a: Val::T(g(5)),
            b: Val::C(!0xff),
        });
        b.push(Op::BrCond {
            cond: Cond::Ne,
            ty: Ty::I64,
            a: Val::T(m),
            b: Val::C(0),
            label: general,
        });
        // Fast path: count, accrue a low bit, maybe set a checked one.
        add(&mut b, g(2), 1);
        b.push(Op::Call(Box::new(CallOp {
            helper: ACCRUE,
            dst: None,
            args: vec![],
            fast: None,
        })));
        b.push(Op::Bin {
            op: BinOp::Or,
            ty: Ty::I64,
            dst: g(5),
            a: Val::T(g(5)),
            b: Val::C(sets),
        });
        // Both paths count iterations and loop back 20 times; the other path adds 1000.
        for (slot, back) in [(0, again), (2, again2)] {
            if slot == 2 {
                b.push(Op::Label(general));
                add(&mut b, g(2), 1000);
            }
            add(&mut b, g(1), 1);
            b.push(Op::BrCond {
                cond: Cond::Ne,
                ty: Ty::I64,
                a: Val::T(g(1)),
                b: Val::C(20),
                label: back,
            });
            b.push(Op::GotoTb { slot, pc: 0x2000 });
            b.push(Op::Label(back));
            b.push(Op::GotoTb {
                slot: slot + 1,
                pc: 0x1000,
            });
        }
        b.verify().unwrap();
        let mut env0 = Env {
            g: [0; NG],
            pc: 0x1000,
        };
        env0.g[5] = mode;
        let mem0 = vec![0u8; MEM];
        let (env, _, _) = run(&b, Backend::Native, &env0, &mem0);
        assert_eq!(env.g[2], want, "case {case}: iterations per path\n{b}");
        assert_backends_agree(&b, &env0, &mem0, case);
    }
}

/// Runs `block` once in the IR interpreter, without the optimiser.
fn interpret(block: &Block, env0: &Env, mem0: &[u8]) -> (Env, Vec<u8>, dbt::interp::BlockExit) {
    let space = guarded(mem0);
    let mut env = env0.clone();
    let labels = dbt::interp::label_table(block);
    let exit = dbt::interp::run_block(
        block,
        &labels,
        EnvPtr::new(&mut env),
        &space.mem(),
        (NG * 8) as u32,
    );
    (env, contents(&space), exit)
}

/// The optimiser (folding, propagation, dropped truncations, merged loads, dead code) keeps
/// what a block does: random blocks, with repeated loads of one address mixed in, give the
/// same exit, guest registers and memory before and after it, both interpreted.
#[test]
fn optimiser_preserves_semantics() {
    let globals = test_globals();
    let mut r = Rng(0x0b7e_5eed_0000_0001);
    for case in 0..1500 {
        let mut g = GenB::new(&mut r, &globals);
        let mut bases: Vec<(Temp, u64)> = Vec::new();
        for _ in 0..1 + g.r.below(40) {
            if g.r.below(4) != 0 {
                g.op();
                // Labels end locals (see GenB): forget bases that are gone.
                bases.retain(|(t, _)| g.l64.contains(t));
                continue;
            }
            // base + offset loads, often of an address loaded before.
            let (base, off) = match bases.get(g.r.below(bases.len() as u64 + 1) as usize) {
                Some(&b) => b,
                None => {
                    let t = g.b.new_temp(Ty::I64);
                    let src = Val::T(Temp(g.r.below(NG as u64) as u32));
                    g.b.push(Op::Bin {
                        op: BinOp::And,
                        ty: Ty::I64,
                        dst: t,
                        a: src,
                        b: Val::C(0x7ff0),
                    });
                    g.l64.push(t);
                    let b = (t, g.r.below(8) * 4);
                    bases.push(b);
                    b
                }
            };
            let addr = g.b.new_temp(Ty::I64);
            g.b.push(Op::Bin {
                op: BinOp::Add,
                ty: Ty::I64,
                dst: addr,
                a: Val::T(base),
                b: Val::C(off),
            });
            let size = [MemSize::B1, MemSize::B2, MemSize::B4, MemSize::B8][g.r.below(4) as usize];
            let dst = g.dst(Ty::I64);
            g.b.push(Op::Load {
                dst,
                addr: Val::T(addr),
                disp: 0,
                size,
                signed: g.r.below(2) == 0,
            });
        }
        g.b.push(Op::Exit {
            code: 3,
            pc: 0x2000,
        });
        g.b.verify().unwrap();
        let env0 = random_env(&mut r);
        let mem0 = pattern_mem(None);
        let mut opt = g.b.clone();
        dbt::opt::optimize(&mut opt);
        let (env_a, mem_a, exit_a) = interpret(&g.b, &env0, &mem0);
        let (env_b, mem_b, exit_b) = interpret(&opt, &env0, &mem0);
        let ctx = || format!("case {case}\nbefore:\n{}\nafter:\n{opt}", g.b);
        assert_eq!(exit_a, exit_b, "{}", ctx());
        assert_eq!(env_a, env_b, "{}", ctx());
        assert!(mem_a == mem_b, "memory differs: {}", ctx());
    }
}

/// `dst = op(args)` in double precision through the reference helper, with the fast path
/// guarded by the rounding-mode bits of global 0.
fn fp_double(dst: Temp, op: FpOp, args: [Val; 3]) -> Op {
    let code = FP_OPS.iter().position(|o| *o == op).unwrap() as u64 | 16;
    Op::Call(Box::new(CallOp {
        helper: FP_REF,
        dst: Some(dst),
        args: vec![args[0], args[1], args[2], Val::C(code)],
        fast: Some(FastFp {
            op,
            double: true,
            neg_prod: false,
            neg_add: false,
            guard: Val::T(Temp(0)),
            guard_mask: 6,
            guard_want: 0,
        }),
    }))
}

/// A host fault (SIGSEGV on a protected page) or a failed range check in the middle of a
/// block leaves the guest state exact for the faulting instruction, including FP results
/// that were still only in xmm registers (the fault path reads them from the signal context).
#[test]
fn faults_write_back_fp_registers() {
    if !std::is_x86_feature_detected!("fma") {
        eprintln!("skipping: the host has no FMA (the reference helper uses it)");
        return;
    }
    const PAGE: usize = 4096;
    // Two guarded pages; the second is made inaccessible, which is the point of the test.
    let space = Reservation::new(2 * PAGE as u64, libc::PROT_READ | libc::PROT_WRITE).unwrap();
    let mem = space.mem();
    // SAFETY: the second page of the reservation's guest part, owned by `space`.
    let rc = unsafe { libc::mprotect((mem.base + PAGE) as *mut _, PAGE, libc::PROT_NONE) };
    assert_eq!(rc, 0);
    let globals = test_globals();
    let fp = |dst: u32, op: FpOp, a: u32, b: u32| {
        fp_double(Temp(dst), op, [Val::T(Temp(a)), Val::T(Temp(b)), Val::C(0)])
    };
    // Inside the protected page, and past the end of guest memory.
    for fault_addr in [PAGE as u64 + 16, 2 * PAGE as u64 + 8] {
        let mut b = Block::new(0x1000, &globals);
        b.push(fp(3, FpOp::Mul, 1, 2));
        b.push(fp(4, FpOp::Add, 3, 1));
        let t = b.new_temp(Ty::I64);
        b.push(Op::Load {
            dst: t,
            addr: Val::C(8),
            disp: 0,
            size: MemSize::B8,
            signed: false,
        });
        b.push(fp(5, FpOp::Mul, 4, 4));
        b.push(Op::Store {
            src: Val::T(Temp(5)),
            addr: Val::C(fault_addr),
            disp: 0,
            size: MemSize::B8,
        });
        b.push(Op::Mov {
            dst: Temp(6),
            src: Val::T(t),
        });
        b.push(Op::Exit {
            code: 3,
            pc: 0x2000,
        });
        b.verify().unwrap();
        let mut env0 = Env {
            g: [0; NG],
            pc: 0x1000,
        };
        env0.g[1] = 1.5f64.to_bits();
        env0.g[2] = 2.25f64.to_bits();
        let interp = run_in(&b, Backend::Interp, &env0, mem);
        let native = run_in(&b, Backend::Native, &env0, mem);
        assert_eq!(interp, native, "fault at {fault_addr:#x}");
        let g = native.0.g;
        assert_eq!(f64::from_bits(g[3]), 3.375);
        assert_eq!(f64::from_bits(g[4]), 4.875);
        assert_eq!(f64::from_bits(g[5]), 4.875 * 4.875);
        assert!(
            matches!(native.1, RunExit::Fault { addr, write: true, .. } if addr == fault_addr),
            "{:?}",
            native.1
        );
    }
    drop(space);
}

/// A self-loop doing FP arithmetic keeps its FP guest registers in xmm registers across
/// iterations (`selfloop`): loads feeding an FMA, the result stored and carried round the
/// back edge, against the interpreter and against the same sums computed here.
#[test]
fn self_loop_keeps_fp_registers() {
    if !std::is_x86_feature_detected!("fma") {
        eprintln!("skipping: the host has no FMA (the reference helper uses it)");
        return;
    }
    const N: u64 = 20;
    let globals = test_globals();
    let g = |k: u32| Val::T(Temp(k));
    let mut b = Block::new(0x1000, &globals);
    let back = b.new_label();
    let t = b.new_temp(Ty::I64);
    b.push(Op::Load {
        dst: t,
        addr: g(6),
        disp: 0,
        size: MemSize::B8,
        signed: false,
    });
    b.push(fp_double(Temp(3), FpOp::MulAdd, [g(3), g(1), Val::T(t)]));
    b.push(Op::Store {
        src: g(3),
        addr: g(6),
        disp: 0,
        size: MemSize::B8,
    });
    // g2 = g2 + g3 (a second FP register carried round the loop).
    b.push(fp_double(Temp(2), FpOp::Add, [g(2), g(3), Val::C(0)]));
    for (k, v) in [(6, 8), (4, 1)] {
        b.push(Op::Bin {
            op: BinOp::Add,
            ty: Ty::I64,
            dst: Temp(k),
            a: g(k),
            b: Val::C(v),
        });
    }
    b.push(Op::BrCond {
        cond: Cond::Ne,
        ty: Ty::I64,
        a: g(4),
        b: Val::C(N),
        label: back,
    });
    b.push(Op::GotoTb {
        slot: 0,
        pc: 0x2000,
    });
    b.push(Op::Label(back));
    b.push(Op::GotoTb {
        slot: 1,
        pc: 0x1000,
    });
    b.verify().unwrap();
    let mut env0 = Env {
        g: [0; NG],
        pc: 0x1000,
    };
    env0.g[1] = 0.75f64.to_bits();
    env0.g[2] = 0.0f64.to_bits();
    env0.g[3] = 1.0f64.to_bits();
    env0.g[6] = 0x100;
    let mut mem0 = vec![0u8; MEM];
    for i in 0..N as usize {
        let v = 0.5 * i as f64 + 0.25;
        mem0[0x100 + 8 * i..0x108 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
    assert_backends_agree(&b, &env0, &mem0, 0);
    let (env, memv, _) = run(&b, Backend::Native, &env0, &mem0);
    let (mut acc, mut sum) = (1.0f64, 0.0f64);
    for i in 0..N as usize {
        acc = acc.mul_add(0.75, 0.5 * i as f64 + 0.25);
        sum += acc;
        let stored = f64::from_le_bytes(memv[0x100 + 8 * i..0x108 + 8 * i].try_into().unwrap());
        assert_eq!(stored, acc, "element {i}");
    }
    assert_eq!(f64::from_bits(env.g[3]), acc);
    assert_eq!(f64::from_bits(env.g[2]), sum);
    assert_eq!(env.g[4], N);
}
