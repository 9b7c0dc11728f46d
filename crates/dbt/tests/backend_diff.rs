//! Backend differential test: random IR blocks run on the native x86-64 backend and on the
//! IR interpreter must leave identical guest state and guest memory (Cranelift-fuzzgen style,
//! with a fixed seed so it is deterministic).

use dbt::env::EnvPtr;
use dbt::hostmem::{GuestMem, HostFault};
use dbt::ir::*;
use dbt::{Backend, Exec, ExecConfig, Frontend, RunExit};

const NG: usize = 12;
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
}

impl GenB {
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
    /// A guest address inside the buffer (sometimes computed at run time from a global).
    fn addr(&mut self) -> Val {
        let off = self.r.below(MEM as u64 - 8);
        if self.r.below(2) == 0 {
            return Val::C(off);
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
            0..=4 => {
                let op = BinOp::ALL[self.r.below(BinOp::ALL.len() as u64) as usize];
                let (a, b) = (self.val(ty), self.val(ty));
                let dst = self.dst(ty);
                self.b.push(Op::Bin { op, ty, dst, a, b });
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
                self.b.push(Op::Select {
                    cond,
                    ty,
                    dst,
                    a,
                    b,
                    t,
                    f,
                });
            }
            8 => {
                let size = SIZES[self.r.below(4) as usize];
                let addr = self.addr();
                let signed = self.r.below(2) == 0;
                let dst = self.dst(Ty::I64);
                self.b.push(Op::Load {
                    dst,
                    addr,
                    size,
                    signed,
                });
            }
            9 => {
                let size = SIZES[self.r.below(4) as usize];
                let addr = self.addr();
                let src = self.val(Ty::I64);
                self.b.push(Op::Store { src, addr, size });
            }
            10 => {
                let size = if self.r.below(2) == 0 {
                    MemSize::B4
                } else {
                    MemSize::B8
                };
                let addr = self.addr();
                let val = self.val(Ty::I64);
                let expect = self.val(Ty::I64);
                let dst = self.dst(Ty::I64);
                if self.r.below(3) == 0 {
                    self.b.push(Op::Cmpxchg {
                        dst,
                        addr,
                        expect,
                        new: val,
                        size,
                    });
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
            }
            _ => {
                let helper = if self.r.below(2) == 0 {
                    Helper {
                        name: "mix",
                        f: mix,
                        writes: (0, 0),
                    }
                } else {
                    Helper {
                        name: "poke",
                        f: poke,
                        writes: (1, 2),
                    }
                };
                let args: Vec<Val> = (0..self.r.below(5)).map(|_| self.val(Ty::I64)).collect();
                let dst = Some(self.dst(Ty::I64));
                self.b.push(Op::Call {
                    helper,
                    dst,
                    args,
                    fast: None,
                });
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
    let mut memv = mem0.to_vec();
    let mem = GuestMem {
        base: memv.as_mut_ptr() as usize,
        limit: MEM as u64,
    };
    let globals = block.globals.clone();
    let fe = Fixed(block.clone(), globals);
    let mut ex = Exec::new(ExecConfig {
        backend,
        mem,
        max_insns: 100,
        smc: false,
        code_size: 1 << 20,
        exec_check: None,
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
    (env, memv, r)
}

#[test]
fn native_matches_interpreter_on_random_blocks() {
    let globals: Vec<GlobalDef> = (0..NG)
        .map(|i| GlobalDef {
            name: "g",
            offset: (i * 8) as u32,
            ty: Ty::I64,
        })
        .collect();
    let mut r = Rng(0x1234_5678_9abc_def1);
    // TANDEM_BACKEND_DIFF_CASES=N for soak testing; CI uses the default.
    let cases = std::env::var("TANDEM_BACKEND_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    for case in 0..cases {
        let mut g = GenB {
            r: Rng(r.next() | 1),
            b: Block::new(0x1000, &globals),
            l64: vec![],
            l32: vec![],
        };
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
        let mut env0 = Env {
            g: [0; NG],
            pc: 0x1000,
        };
        for v in env0.g.iter_mut() {
            *v = r.next() >> r.below(64);
        }
        let mem0: Vec<u8> = (0..MEM)
            .map(|i| (i as u64).wrapping_mul(0x9e37_79b9) as u8 ^ (r.next() as u8 & 1))
            .collect();
        let a = run(&g.b, Backend::Interp, &env0, &mem0);
        let b = run(&g.b, Backend::Native, &env0, &mem0);
        assert_eq!(a.2, b.2, "case {case}: exit\n{}", g.b);
        assert_eq!(a.0, b.0, "case {case}: env\n{}", g.b);
        assert!(a.1 == b.1, "case {case}: memory differs\n{}", g.b);
    }
}

#[test]
fn register_pressure_spills_match() {
    // Far more simultaneously live values than host registers, across loads and calls.
    let globals: Vec<GlobalDef> = (0..NG)
        .map(|i| GlobalDef {
            name: "g",
            offset: (i * 8) as u32,
            ty: Ty::I64,
        })
        .collect();
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
                    size: MemSize::B8,
                    signed: false,
                }),
                1 => b.push(Op::Call {
                    helper: Helper {
                        name: "mix",
                        f: mix,
                        writes: (0, 0),
                    },
                    dst: Some(t),
                    args: vec![g, Val::C(i as u64)],
                    fast: None,
                }),
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
