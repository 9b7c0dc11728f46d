//! Translate functions for RV64I, M, A, Zicsr, Zifencei, Zba, Zbb and Zbs.
//!
//! Rule kept by every function: all guest-visible faults (memory ops) are emitted before
//! the first write to an architectural register, so a fault leaves the state as it was
//! before the instruction.

use crate::csr;
use crate::ctx::{Args, Ctx, EXIT_EBREAK, EXIT_ECALL, EXIT_MISALIGNED};
use dbt::ir::{BinOp, Cond, MemSize, Op, Order, RmwOp, Temp, UnOp, Val};

pub fn lui(c: &mut Ctx, a: &Args) -> bool {
    c.set_x(a.rd, Val::C(a.imm as u64));
    true
}
pub fn auipc(c: &mut Ctx, a: &Args) -> bool {
    c.set_x(a.rd, Val::C(c.pc.wrapping_add(a.imm as u64)));
    true
}
pub fn jal(c: &mut Ctx, a: &Args) -> bool {
    let link = c.next_pc();
    c.set_x(a.rd, Val::C(link));
    let target = c.pc.wrapping_add(a.imm as u64);
    if c.may_continue {
        c.jump = Some(target);
    } else {
        c.goto(target);
    }
    true
}
pub fn jalr(c: &mut Ctx, a: &Args) -> bool {
    let base = c.x(a.rs1);
    let t = c.bin(BinOp::Add, base, Val::C(a.imm as u64));
    let t = c.bin(BinOp::And, t, Val::C(!1));
    let link = c.next_pc();
    c.set_x(a.rd, Val::C(link));
    c.emit(Op::JumpIndirect { target: t });
    c.ended = true;
    true
}

fn branch(c: &mut Ctx, a: &Args, cond: Cond) -> bool {
    let (x, y) = (c.x(a.rs1), c.x(a.rs2));
    let target = c.pc.wrapping_add(a.imm as u64);
    if c.unroll_to == Some(target) {
        // The loop's closing branch, with another copy of the body to follow: staying in
        // the loop is the way on, leaving it an out-of-line exit.
        let leave = c.label();
        c.emit(Op::BrCond {
            cond: cond.invert(),
            ty: dbt::ir::Ty::I64,
            a: x,
            b: y,
            label: leave,
        });
        let slot = c.slot();
        let pc = c.next_pc();
        c.tails.push((leave, Op::GotoTb { slot, pc }));
        c.jump = Some(target);
        return true;
    }
    let taken = c.label();
    c.emit(Op::BrCond {
        cond,
        ty: dbt::ir::Ty::I64,
        a: x,
        b: y,
        label: taken,
    });
    if c.may_continue && a.imm > 0 {
        // A superblock: past a forward branch (an `if`), the not-taken path goes on in this
        // block (its guest registers stay in host registers); the taken path leaves through
        // an out-of-line exit. Other backward branches (loops) end the block, so a loop
        // body stays a block of its own that can loop in place.
        let slot = c.slot();
        c.tails.push((taken, Op::GotoTb { slot, pc: target }));
        return true;
    }
    c.goto(c.next_pc());
    c.emit(Op::Label(taken));
    c.goto(target);
    true
}

fn load(c: &mut Ctx, a: &Args, size: MemSize, signed: bool) -> bool {
    let v = c.load(a.rs1, a.imm, size, signed);
    c.set_x(a.rd, v);
    true
}
fn st(c: &mut Ctx, a: &Args, size: MemSize) -> bool {
    let src = c.x(a.rs2);
    c.store(src, a.rs1, a.imm, size);
    true
}
fn alu(c: &mut Ctx, a: &Args, op: BinOp) -> bool {
    let (x, y) = (c.x(a.rs1), c.x(a.rs2));
    let v = c.bin(op, x, y);
    c.set_x(a.rd, v);
    true
}
fn alui(c: &mut Ctx, a: &Args, op: BinOp) -> bool {
    let x = c.x(a.rs1);
    let v = c.bin(op, x, Val::C(a.imm as u64));
    c.set_x(a.rd, v);
    true
}
fn alu_w(c: &mut Ctx, a: &Args, op: BinOp) -> bool {
    let (x, y) = (c.x(a.rs1), c.x(a.rs2));
    let v = c.bin32(op, x, y);
    c.set_x(a.rd, v);
    true
}
fn alui_w(c: &mut Ctx, a: &Args, op: BinOp) -> bool {
    let x = c.x(a.rs1);
    let v = c.bin32(op, x, Val::C(a.imm as u64));
    c.set_x(a.rd, v);
    true
}
fn setlt(c: &mut Ctx, a: &Args, cond: Cond, imm: bool) -> bool {
    let x = c.x(a.rs1);
    let y = if imm {
        Val::C(a.imm as u64)
    } else {
        c.x(a.rs2)
    };
    let v = c.setcond(cond, x, y);
    c.set_x(a.rd, v);
    true
}
fn unary(c: &mut Ctx, a: &Args, op: UnOp) -> bool {
    let x = c.x(a.rs1);
    let v = c.un(op, x);
    c.set_x(a.rd, v);
    true
}
fn unary_w(c: &mut Ctx, a: &Args, op: UnOp) -> bool {
    let x = c.x(a.rs1);
    let v = c.un32(op, x);
    // clzw/ctzw/cpopw results are small non-negative counts; un32 sign-extends, harmless.
    c.set_x(a.rd, v);
    true
}
fn minmax(c: &mut Ctx, a: &Args, cond: Cond) -> bool {
    let (x, y) = (c.x(a.rs1), c.x(a.rs2));
    let v = c.select(cond, x, y, x, y);
    c.set_x(a.rd, v);
    true
}
fn shadd(c: &mut Ctx, a: &Args, sh: u64, uw: bool) -> bool {
    let x = c.x(a.rs1);
    let x = if uw { c.zext32(x) } else { x };
    let s = c.bin(BinOp::Shl, x, Val::C(sh));
    let y = c.x(a.rs2);
    let v = c.bin(BinOp::Add, s, y);
    c.set_x(a.rd, v);
    true
}
/// Single-bit ops of Zbs; `imm` selects the shamt form.
fn bitop(c: &mut Ctx, a: &Args, op: BinOp, imm: bool) -> bool {
    let x = c.x(a.rs1);
    let idx = if imm {
        Val::C(a.imm as u64 & 63)
    } else {
        c.x(a.rs2)
    };
    let m = c.bin(BinOp::Shl, Val::C(1), idx);
    let v = match op {
        BinOp::Shr => {
            let s = c.bin(BinOp::Shr, x, idx);
            c.bin(BinOp::And, s, Val::C(1))
        }
        _ => c.bin(op, x, m),
    };
    c.set_x(a.rd, v);
    true
}
/// Atomics must be naturally aligned: a misaligned one leaves the block (SIGBUS, BUS_ADRALN,
/// as Linux and qemu-user report it). Plain loads and stores may be misaligned.
fn check_aligned(c: &mut Ctx, addr: Val, size: MemSize) {
    let low = c.bin(BinOp::And, addr, Val::C(size.bytes() - 1));
    let bad = c.label();
    c.emit(Op::BrCond {
        cond: Cond::Ne,
        ty: dbt::ir::Ty::I64,
        a: low,
        b: Val::C(0),
        label: bad,
    });
    c.side_exit(bad, EXIT_MISALIGNED);
}
/// `aq` and `rl` need nothing more: the atomic is a full barrier (`Op::Rmw`).
fn amo(c: &mut Ctx, a: &Args, op: RmwOp, size: MemSize) -> bool {
    let addr = c.x(a.rs1);
    check_aligned(c, addr, size);
    let val = c.x(a.rs2);
    let d = c.rmw(op, addr, val, size);
    c.set_x(a.rd, d);
    true
}
/// LR is a plain load, so its ordering bits become barriers: `rl` (only sensible as
/// `lr.aqrl`) orders every earlier access before it, stores included, and `aq` orders it
/// before every later access (free on x86-64, but it keeps the optimiser from taking a
/// later load's value from before the LR).
fn lr(c: &mut Ctx, a: &Args, size: MemSize) -> bool {
    let addr = c.x(a.rs1);
    check_aligned(c, addr, size);
    if a.rl() {
        c.emit(Op::Barrier(Order::between(true, true, true, false)));
    }
    let v = c.load(a.rs1, 0, size, true);
    if a.aq() {
        c.emit(Op::Barrier(Order::between(true, false, true, true)));
    }
    c.emit(Op::Mov {
        dst: Ctx::res_addr(),
        src: addr,
    });
    c.emit(Op::Mov {
        dst: Ctx::res_val(),
        src: v,
    });
    c.set_x(a.rd, v);
    true
}
/// SC succeeds if the reservation covers this address and memory still holds the value LR
/// saw (a compare-and-swap against it), which is atomic across host threads. (Only an
/// aligned LR sets a reservation, so SC needs no alignment check of its own.) The
/// compare-and-swap is a full barrier, which covers `aq` and `rl`; a failed SC writes
/// nothing and orders nothing.
fn sc(c: &mut Ctx, a: &Args, size: MemSize) -> bool {
    let fail = c.label();
    let done = c.label();
    let addr = c.x(a.rs1);
    let new = c.x(a.rs2);
    let ra = Val::T(Ctx::res_addr());
    let rv = Val::T(Ctx::res_val());
    c.emit(Op::BrCond {
        cond: Cond::Ne,
        ty: dbt::ir::Ty::I64,
        a: addr,
        b: ra,
        label: fail,
    });
    let old = c.cmpxchg(addr, rv, new, size);
    c.emit(Op::BrCond {
        cond: Cond::Ne,
        ty: dbt::ir::Ty::I64,
        a: old,
        b: rv,
        label: fail,
    });
    c.set_x(a.rd, Val::C(0));
    c.emit(Op::Br(done));
    c.emit(Op::Label(fail));
    c.set_x(a.rd, Val::C(1));
    c.emit(Op::Label(done));
    c.emit(Op::Mov {
        dst: Ctx::res_addr(),
        src: Val::C(u64::MAX),
    });
    true
}

fns! {
    beq => |c, a| branch(c, a, Cond::Eq);
    bne => |c, a| branch(c, a, Cond::Ne);
    blt => |c, a| branch(c, a, Cond::Lt);
    bge => |c, a| branch(c, a, Cond::Ge);
    bltu => |c, a| branch(c, a, Cond::Ltu);
    bgeu => |c, a| branch(c, a, Cond::Geu);
    lb => |c, a| load(c, a, MemSize::B1, true);
    lh => |c, a| load(c, a, MemSize::B2, true);
    lw => |c, a| load(c, a, MemSize::B4, true);
    ld => |c, a| load(c, a, MemSize::B8, false);
    lbu => |c, a| load(c, a, MemSize::B1, false);
    lhu => |c, a| load(c, a, MemSize::B2, false);
    lwu => |c, a| load(c, a, MemSize::B4, false);
    sb => |c, a| st(c, a, MemSize::B1);
    sh => |c, a| st(c, a, MemSize::B2);
    sw => |c, a| st(c, a, MemSize::B4);
    sd => |c, a| st(c, a, MemSize::B8);
    addi => |c, a| alui(c, a, BinOp::Add);
    xori => |c, a| alui(c, a, BinOp::Xor);
    ori => |c, a| alui(c, a, BinOp::Or);
    andi => |c, a| alui(c, a, BinOp::And);
    slli => |c, a| alui(c, a, BinOp::Shl);
    srli => |c, a| alui(c, a, BinOp::Shr);
    srai => |c, a| alui(c, a, BinOp::Sar);
    slti => |c, a| setlt(c, a, Cond::Lt, true);
    sltiu => |c, a| setlt(c, a, Cond::Ltu, true);
    slt => |c, a| setlt(c, a, Cond::Lt, false);
    sltu => |c, a| setlt(c, a, Cond::Ltu, false);
    add => |c, a| alu(c, a, BinOp::Add);
    sub => |c, a| alu(c, a, BinOp::Sub);
    sll => |c, a| alu(c, a, BinOp::Shl);
    srl => |c, a| alu(c, a, BinOp::Shr);
    sra => |c, a| alu(c, a, BinOp::Sar);
    xor => |c, a| alu(c, a, BinOp::Xor);
    or => |c, a| alu(c, a, BinOp::Or);
    and => |c, a| alu(c, a, BinOp::And);
    addiw => |c, a| alui_w(c, a, BinOp::Add);
    slliw => |c, a| alui_w(c, a, BinOp::Shl);
    srliw => |c, a| alui_w(c, a, BinOp::Shr);
    sraiw => |c, a| alui_w(c, a, BinOp::Sar);
    addw => |c, a| alu_w(c, a, BinOp::Add);
    subw => |c, a| alu_w(c, a, BinOp::Sub);
    sllw => |c, a| alu_w(c, a, BinOp::Shl);
    srlw => |c, a| alu_w(c, a, BinOp::Shr);
    sraw => |c, a| alu_w(c, a, BinOp::Sar);
    mul => |c, a| alu(c, a, BinOp::Mul);
    mulh => |c, a| alu(c, a, BinOp::MulHs);
    mulhsu => |c, a| alu(c, a, BinOp::MulHsu);
    mulhu => |c, a| alu(c, a, BinOp::MulHu);
    div => |c, a| alu(c, a, BinOp::DivS);
    divu => |c, a| alu(c, a, BinOp::DivU);
    rem => |c, a| alu(c, a, BinOp::RemS);
    remu => |c, a| alu(c, a, BinOp::RemU);
    mulw => |c, a| alu_w(c, a, BinOp::Mul);
    divw => |c, a| alu_w(c, a, BinOp::DivS);
    divuw => |c, a| alu_w(c, a, BinOp::DivU);
    remw => |c, a| alu_w(c, a, BinOp::RemS);
    remuw => |c, a| alu_w(c, a, BinOp::RemU);
    lr_w => |c, a| lr(c, a, MemSize::B4);
    sc_w => |c, a| sc(c, a, MemSize::B4);
    lr_d => |c, a| lr(c, a, MemSize::B8);
    sc_d => |c, a| sc(c, a, MemSize::B8);
    amoswap_w => |c, a| amo(c, a, RmwOp::Xchg, MemSize::B4);
    amoadd_w => |c, a| amo(c, a, RmwOp::Add, MemSize::B4);
    amoxor_w => |c, a| amo(c, a, RmwOp::Xor, MemSize::B4);
    amoand_w => |c, a| amo(c, a, RmwOp::And, MemSize::B4);
    amoor_w => |c, a| amo(c, a, RmwOp::Or, MemSize::B4);
    amomin_w => |c, a| amo(c, a, RmwOp::Min, MemSize::B4);
    amomax_w => |c, a| amo(c, a, RmwOp::Max, MemSize::B4);
    amominu_w => |c, a| amo(c, a, RmwOp::Minu, MemSize::B4);
    amomaxu_w => |c, a| amo(c, a, RmwOp::Maxu, MemSize::B4);
    amoswap_d => |c, a| amo(c, a, RmwOp::Xchg, MemSize::B8);
    amoadd_d => |c, a| amo(c, a, RmwOp::Add, MemSize::B8);
    amoxor_d => |c, a| amo(c, a, RmwOp::Xor, MemSize::B8);
    amoand_d => |c, a| amo(c, a, RmwOp::And, MemSize::B8);
    amoor_d => |c, a| amo(c, a, RmwOp::Or, MemSize::B8);
    amomin_d => |c, a| amo(c, a, RmwOp::Min, MemSize::B8);
    amomax_d => |c, a| amo(c, a, RmwOp::Max, MemSize::B8);
    amominu_d => |c, a| amo(c, a, RmwOp::Minu, MemSize::B8);
    amomaxu_d => |c, a| amo(c, a, RmwOp::Maxu, MemSize::B8);
    add_uw => |c: &mut Ctx, a: &Args| {
        let x = c.x(a.rs1);
        let z = c.zext32(x);
        let y = c.x(a.rs2);
        let v = c.bin(BinOp::Add, z, y);
        c.set_x(a.rd, v);
        true
    };
    sh1add => |c, a| shadd(c, a, 1, false);
    sh2add => |c, a| shadd(c, a, 2, false);
    sh3add => |c, a| shadd(c, a, 3, false);
    sh1add_uw => |c, a| shadd(c, a, 1, true);
    sh2add_uw => |c, a| shadd(c, a, 2, true);
    sh3add_uw => |c, a| shadd(c, a, 3, true);
    slli_uw => |c: &mut Ctx, a: &Args| {
        let x = c.x(a.rs1);
        let z = c.zext32(x);
        let v = c.bin(BinOp::Shl, z, Val::C(a.imm as u64));
        c.set_x(a.rd, v);
        true
    };
    andn => |c, a| alu(c, a, BinOp::AndN);
    orn => |c, a| alu(c, a, BinOp::OrN);
    xnor => |c, a| alu(c, a, BinOp::XorN);
    clz => |c, a| unary(c, a, UnOp::Clz);
    ctz => |c, a| unary(c, a, UnOp::Ctz);
    cpop => |c, a| unary(c, a, UnOp::Popcnt);
    clzw => |c, a| unary_w(c, a, UnOp::Clz);
    ctzw => |c, a| unary_w(c, a, UnOp::Ctz);
    cpopw => |c, a| unary_w(c, a, UnOp::Popcnt);
    max => |c, a| minmax(c, a, Cond::Ge);
    maxu => |c, a| minmax(c, a, Cond::Geu);
    min => |c, a| minmax(c, a, Cond::Lt);
    minu => |c, a| minmax(c, a, Cond::Ltu);
    sext_b => |c, a| unary(c, a, UnOp::Sext8);
    sext_h => |c, a| unary(c, a, UnOp::Sext16);
    zext_h => |c, a| unary(c, a, UnOp::Zext16);
    rol => |c, a| alu(c, a, BinOp::Rotl);
    ror => |c, a| alu(c, a, BinOp::Rotr);
    rolw => |c, a| alu_w(c, a, BinOp::Rotl);
    rorw => |c, a| alu_w(c, a, BinOp::Rotr);
    rori => |c, a| alui(c, a, BinOp::Rotr);
    roriw => |c, a| alui_w(c, a, BinOp::Rotr);
    orc_b => |c, a| unary(c, a, UnOp::OrcB);
    rev8 => |c, a| unary(c, a, UnOp::Bswap);
    bclr => |c, a| bitop(c, a, BinOp::AndN, false);
    bext => |c, a| bitop(c, a, BinOp::Shr, false);
    binv => |c, a| bitop(c, a, BinOp::Xor, false);
    bset => |c, a| bitop(c, a, BinOp::Or, false);
    bclri => |c, a| bitop(c, a, BinOp::AndN, true);
    bexti => |c, a| bitop(c, a, BinOp::Shr, true);
    binvi => |c, a| bitop(c, a, BinOp::Xor, true);
    bseti => |c, a| bitop(c, a, BinOp::Or, true);
}

/// `fence pred, succ` and `fence.tso`: an IR barrier with the orderings the instruction
/// asks for, which the backend maps onto the host's memory model (on x86-64 only
/// store-to-load ordering costs an instruction). Device input and output (`i`, `o`) count
/// as loads and stores: MMIO goes through ordinary accesses or the soft MMU's slow path.
/// `fence w, 0` (`pause`) and other fences with an empty set emit nothing.
pub fn fence(c: &mut Ctx, a: &Args) -> bool {
    let (fm, pred, succ) = (a.csr >> 8, a.csr >> 4 & 0xf, a.csr & 0xf);
    // pred/succ bits: i = 8, o = 4, r = 2, w = 1.
    let loads = |set: u32| set & 0b1010 != 0;
    let stores = |set: u32| set & 0b0101 != 0;
    let order = if fm == 0b1000 && pred == 0b0011 && succ == 0b0011 {
        // fence.tso: everything but a store before a later load.
        Order::ALL.without(Order::STORE_LOAD)
    } else {
        // Other fm values are reserved; the ISA says to treat them as a normal fence.
        Order::between(loads(pred), stores(pred), loads(succ), stores(succ))
    };
    if !order.is_empty() {
        c.emit(Op::Barrier(order));
    }
    true
}
/// Stale translations can never run (stores to translated pages are caught), so fence.i
/// only has to end the block so the next instruction is looked up afresh.
pub fn fence_i(c: &mut Ctx, _a: &Args) -> bool {
    c.goto(c.next_pc());
    true
}
pub fn ecall(c: &mut Ctx, _a: &Args) -> bool {
    c.exit(EXIT_ECALL);
    true
}
pub fn ebreak(c: &mut Ctx, _a: &Args) -> bool {
    c.exit(EXIT_EBREAK);
    true
}

/// CSR access: `op` is 0 write, 1 set, 2 clear. `src` is rs1's value or the 5-bit uimm.
fn csr_access(c: &mut Ctx, a: &Args, op: u32, imm: bool) -> bool {
    let writes = op == 0 || a.rs1 != 0;
    if c.system && csr::fp_field(a.csr).is_none() {
        return crate::system::trans::csr_access(c, a, op, imm, writes);
    }
    if !csr::valid(a.csr, writes) {
        return false;
    }
    if writes && a.csr != csr::FFLAGS {
        // The CSR may be frm/fcsr: later dynamic-rounding FP instructions must re-check it.
        *c.frm_checked = false;
        c.frm_written = true;
    }
    let src = if imm {
        Val::C(a.rs1 as u64)
    } else {
        c.x(a.rs1)
    };
    if let Some((shift, mask)) = csr::fp_field(a.csr) {
        return fp_csr_access(c, a, op, writes, src, shift, mask);
    }
    // What is left after `valid` are reads of the counters.
    let old = c.call(csr::COUNTER, &[]);
    c.set_x(a.rd, old);
    true
}

/// The FP CSRs are fields of the `fcsr` global: plain IR, no helper call. `old` is
/// computed before the write and rd set last, as rd may be rs1.
fn fp_csr_access(
    c: &mut Ctx,
    a: &Args,
    op: u32,
    writes: bool,
    src: Val,
    shift: u64,
    mask: u64,
) -> bool {
    let fcsr = Val::T(Temp(crate::cpu::FCSR_G));
    let field = c.bin(BinOp::Shr, fcsr, Val::C(shift));
    let old = c.bin(BinOp::And, field, Val::C(mask));
    if writes {
        let new = match op {
            0 => src,
            1 => c.bin(BinOp::Or, old, src),
            _ => {
                let keep = c.un(UnOp::Not, src);
                c.bin(BinOp::And, old, keep)
            }
        };
        let new = c.bin(BinOp::And, new, Val::C(mask));
        let new = c.bin(BinOp::Shl, new, Val::C(shift));
        let kept = c.bin(BinOp::And, fcsr, Val::C(0xff & !(mask << shift)));
        let v = c.bin(BinOp::Or, kept, new);
        c.emit(Op::Mov {
            dst: Temp(crate::cpu::FCSR_G),
            src: v,
        });
    }
    c.set_x(a.rd, old);
    true
}

fns! {
    csrrw => |c, a| csr_access(c, a, 0, false);
    csrrs => |c, a| csr_access(c, a, 1, false);
    csrrc => |c, a| csr_access(c, a, 2, false);
    csrrwi => |c, a| csr_access(c, a, 0, true);
    csrrsi => |c, a| csr_access(c, a, 1, true);
    csrrci => |c, a| csr_access(c, a, 2, true);
}

#[cfg(test)]
mod tests {
    use crate::frontend::RiscvFrontend;
    use dbt::ir::{Op, Order};
    use dbt::Frontend;

    /// The barriers the front end emits for one instruction (then an `ecall` ends the block).
    fn barriers(insn: u32) -> Vec<Order> {
        let code = [insn, 0x0000_0073];
        let mut fetch = |pc: u64| {
            let w = code[(pc / 4) as usize % code.len()];
            Ok(if pc.is_multiple_of(4) {
                w as u16
            } else {
                (w >> 16) as u16
            })
        };
        let b = RiscvFrontend::default()
            .translate(0, 2, &mut fetch)
            .expect("translates");
        b.ops
            .iter()
            .filter_map(|op| match op {
                Op::Barrier(o) => Some(*o),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn fences_become_the_orderings_they_ask_for() {
        let all_but_sl = Order::ALL.without(Order::STORE_LOAD);
        for (insn, want, what) in [
            (0x0330_000f, vec![Order::ALL], "fence rw,rw"),
            (0x0ff0_000f, vec![Order::ALL], "fence iorw,iorw"),
            (0x0120_000f, vec![Order::STORE_LOAD], "fence w,r"),
            (0x0220_000f, vec![Order::LOAD_LOAD], "fence r,r"),
            (0x0110_000f, vec![Order::STORE_STORE], "fence w,w"),
            (0x8330_000f, vec![all_but_sl], "fence.tso"),
            (
                0x0f50_000f,
                vec![Order::LOAD_STORE.union(Order::STORE_STORE)],
                "fence iorw,ow",
            ),
            (0x0100_000f, vec![], "pause (fence w,0)"),
        ] {
            assert_eq!(barriers(insn), want, "{what}");
        }
    }

    #[test]
    fn lr_ordering_bits_become_barriers_and_amos_need_none() {
        let release = Order::LOAD_LOAD.union(Order::STORE_LOAD);
        let acquire = Order::LOAD_LOAD.union(Order::LOAD_STORE);
        assert_eq!(barriers(0x1605_a52f), vec![release, acquire], "lr.w.aqrl");
        assert_eq!(barriers(0x1405_b52f), vec![acquire], "lr.d.aq");
        assert_eq!(barriers(0x1005_a52f), vec![], "lr.w");
        assert_eq!(barriers(0x06c5_b52f), vec![], "amoadd.d.aqrl");
    }
}
