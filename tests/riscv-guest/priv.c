/* Privileged-architecture checks, run as M-mode firmware on Tandem's riscv-virt machine and
 * on qemu-system-riscv64 -M virt; the two outputs must be identical. Each line prints what
 * a trap recorded (cause, pc relative to the check's label or the faulting address) or a
 * value read back. Data accesses through Sv39 use MPRV (M-mode loads and stores with the
 * translation and permissions of MPP), so page faults, SUM, MXR and A/D updates are seen
 * without leaving M-mode; instruction fetch faults enter S- or U-mode with mret. */
#include <stdint.h>

#define UART ((volatile uint8_t *)0x10000000)
#define TEST ((volatile uint32_t *)0x100000)
#define CLINT_MSIP ((volatile uint32_t *)0x2000000)
#define CLINT_MTIMECMP ((volatile uint64_t *)0x2004000)
#define CLINT_MTIME ((volatile uint64_t *)0x200bff8)

#define csrr(csr) ({ uint64_t v_; asm volatile("csrr %0, " #csr : "=r"(v_)); v_; })
#define csrw(csr, v) asm volatile("csrw " #csr ", %0" ::"r"((uint64_t)(v)) : "memory")
#define csrs(csr, v) asm volatile("csrs " #csr ", %0" ::"r"((uint64_t)(v)) : "memory")
#define csrc(csr, v) asm volatile("csrc " #csr ", %0" ::"r"((uint64_t)(v)) : "memory")

static void putc_(char c) {
    while (!(UART[5] & 0x20)) {
    }
    UART[0] = c;
}
static void puts_(const char *s) {
    while (*s) putc_(*s++);
}
static void hex(uint64_t v) {
    puts_("0x");
    int started = 0;
    for (int i = 60; i >= 0; i -= 4) {
        int d = (v >> i) & 15;
        if (d || started || i == 0) {
            putc_("0123456789abcdef"[d]);
            started = 1;
        }
    }
}

/* What the last trap recorded; `resume` (when set) is where it returns, in M-mode. */
static volatile uint64_t t_cause, t_epc, t_tval, t_count, resume;

void trap(void) {
    uint64_t cause = csrr(mcause), epc = csrr(mepc);
    t_cause = cause;
    t_epc = epc;
    t_tval = csrr(mtval);
    t_count++;
    if (cause >> 63) {
        /* Interrupts: silence the source. */
        csrc(mie, 1ul << (cause & 63));
        *CLINT_MSIP = 0;
        *CLINT_MTIMECMP = ~0ul;
        return;
    }
    if (resume) {
        csrw(mepc, resume);
        csrs(mstatus, 3ul << 11); /* back to M */
        csrc(mstatus, 1ul << 17); /* MPRV off */
        resume = 0;
        return;
    }
    /* Skip the faulting instruction (it is M-mode code, readable here). */
    uint16_t lo = *(volatile uint16_t *)epc;
    csrw(mepc, epc + ((lo & 3) == 3 ? 4 : 2));
}

static void report(const char *name, uint64_t base) {
    puts_(name);
    puts_(": cause=");
    hex(t_cause);
    puts_(" epc=+");
    hex(t_epc - base);
    puts_(" tval=");
    hex(t_tval);
    puts_("\n");
    t_cause = t_epc = t_tval = 0;
}

static void value(const char *name, uint64_t v) {
    puts_(name);
    puts_(": ");
    hex(v);
    puts_("\n");
}

/* Page tables (Sv39): one root, one level-1 table, one level-0 table. */
static volatile uint64_t root[512] __attribute__((aligned(4096)));
static volatile uint64_t l1[512] __attribute__((aligned(4096)));
static volatile uint64_t l0[512] __attribute__((aligned(4096)));
static volatile uint8_t pages[6][4096] __attribute__((aligned(4096)));

#define V 1
#define R 2
#define W 4
#define X 8
#define U 16
#define G 32
#define A 64
#define D 128
#define PTE(pa, flags) ((((uint64_t)(uintptr_t)(pa)) >> 12) << 10 | (flags))
#define VA(i) (0x40000000ul + (uint64_t)(i) * 4096)

static void set_mpp(uint64_t prv) {
    csrc(mstatus, 3ul << 11);
    csrs(mstatus, prv << 11);
}

/* The privilege MPRV accesses use (a trap's mret leaves MPP at U: set it every time). */
static uint64_t data_prv = 1;

static uint64_t mprv_load(uint64_t va) {
    uint64_t v = 0;
    set_mpp(data_prv);
    csrs(mstatus, 1ul << 17);
    asm volatile("mv %0, zero; ld %0, 0(%1)" : "=&r"(v) : "r"(va) : "memory");
    csrc(mstatus, 1ul << 17);
    return v;
}
static void mprv_store(uint64_t va, uint64_t v) {
    set_mpp(data_prv);
    csrs(mstatus, 1ul << 17);
    asm volatile("sd %0, 0(%1)" ::"r"(v), "r"(va) : "memory");
    csrc(mstatus, 1ul << 17);
}
extern char illegal_at[], ecall_at[], ebreak_at[], csr_at[];

int main(void) {
    /* All memory to S and U (QEMU refuses mret to them with no PMP entry). */
    csrw(pmpaddr0, ~0ul);
    csrw(pmpcfg0, 0x1f);

    /* Synchronous exceptions in M-mode. */
    asm volatile("illegal_at: .word 0" ::: "memory");
    report("illegal", (uint64_t)illegal_at);
    asm volatile("csr_at: csrr t0, 0x7c0" ::: "t0", "memory");
    report("unknown csr", (uint64_t)csr_at);
    asm volatile("ecall_at: ecall" ::: "memory");
    report("ecall from M", (uint64_t)ecall_at);
    asm volatile("ebreak_at: ebreak" ::: "memory");
    report("ebreak", (uint64_t)ebreak_at);
    asm volatile(".option push; .option norvc; csrw mvendorid, zero; .option pop" ::: "memory");
    value("write to mvendorid traps", t_cause);
    t_cause = 0;

    /* WARL fields. */
    csrw(mtvec, 0x80000002ul); /* reserved mode: ignored */
    value("mtvec after a reserved mode", csrr(mtvec) == (uint64_t)0x80000002ul);
    asm volatile("la t0, trap_vector; csrw mtvec, t0" ::: "t0");
    /* (MPP = 2 is reserved and WARL: QEMU 7.2 keeps the 2, Tandem the previous mode;
     * neither is printed.) QEMU 7.2's CPU also has the H extension, whose extra delegable
     * causes and misa bit are masked off below. */
    csrw(medeleg, ~0ul);
    value("medeleg writable", csrr(medeleg) & 0xb3ff);
    csrw(medeleg, 0);
    csrw(mideleg, ~0ul);
    value("mideleg writable", csrr(mideleg) & 0x222);
    csrw(mideleg, 0);
    value("misa", csrr(misa) & ((1ul << 26) - 1) & ~(1ul << 7));
    value("mhartid", csrr(mhartid));
    csrs(mstatus, 1ul << 18); /* SUM through sstatus */
    value("sstatus.SUM from mstatus", (csrr(sstatus) >> 18) & 1);
    csrc(sstatus, 1ul << 18);
    value("mstatus.SUM from sstatus", (csrr(mstatus) >> 18) & 1);

    /* Sv39: VA(i) -> pages[i]. */
    root[1] = PTE(l1, V);                            /* 0x40000000.. */
    root[2] = PTE(0x80000000ul, V | R | W | X | A | D); /* identity gigapage of RAM */
    l1[0] = PTE(l0, V);
    l0[0] = PTE(pages[0], V | R | W | A | D);     /* S data */
    l0[1] = PTE(pages[1], V | R | A);             /* read-only */
    l0[2] = PTE(pages[2], V | R | W | U | A | D); /* user page */
    l0[3] = PTE(pages[3], V | X | A);             /* execute-only */
    l0[4] = PTE(pages[4], V | R | W);             /* A and D clear */
    l0[5] = PTE(pages[5], V | W | A | D);         /* W without R: reserved */
    /* l0[6] invalid */
    csrw(satp, (8ul << 60) | ((uint64_t)root >> 12));
    asm volatile("sfence.vma" ::: "memory");
    value("satp mode", csrr(satp) >> 60);
    set_mpp(1);

    pages[0][0] = 0x11;
    value("S load", mprv_load(VA(0)));
    mprv_load(VA(6));
    report("load from invalid page", 0);
    mprv_store(VA(1) + 8, 1);
    report("store to read-only page", 0);
    mprv_load(VA(5) + 16);
    report("load W-without-R page", 0);
    mprv_load(VA(2));
    report("S load of U page, SUM=0", 0);
    csrs(mstatus, 1ul << 18);
    mprv_load(VA(2));
    value("S load of U page, SUM=1 faults", t_cause);
    csrc(mstatus, 1ul << 18);
    mprv_load(VA(3) + 24);
    report("load X-only page, MXR=0", 0);
    csrs(mstatus, 1ul << 19);
    mprv_load(VA(3) + 24);
    value("load X-only page, MXR=1 faults", t_cause);
    csrc(mstatus, 1ul << 19);
    mprv_load(0x7fffffffff8ul + (1ul << 62)); /* not sign-extended */
    report("non-canonical address", 0);

    /* A and D: the walk sets them. */
    mprv_load(VA(4));
    value("PTE after a load (A)", l0[4] & (A | D));
    mprv_store(VA(4), 5);
    value("PTE after a store (D)", l0[4] & (A | D));

    /* sfence.vma: a changed PTE is seen after the fence. */
    pages[1][0] = 0x22;
    l0[6] = PTE(pages[1], V | R | A);
    asm volatile("sfence.vma %0, zero" ::"r"(VA(6)) : "memory");
    value("load after sfence.vma", mprv_load(VA(6)));

    /* U-mode access to an S page (MPP = U). */
    data_prv = 0;
    mprv_load(VA(0));
    report("U load of S page", 0);
    value("U load of U page", mprv_load(VA(2)) == 0);
    data_prv = 1;

    /* Instruction fetch faults: enter S-mode at a non-executable page and at an invalid
     * one; the trap comes back to M. */
    extern char back1[], back2[];
    resume = (uint64_t)back1;
    set_mpp(1);
    csrw(mepc, VA(0));
    asm volatile("mret; back1:" ::: "memory");
    report("fetch from non-X page", VA(0));
    value("fetch fault tval", t_tval == 0);
    resume = (uint64_t)back2;
    set_mpp(1);
    csrw(mepc, VA(6) + 0x1000 * 10);
    asm volatile("mret; back2:" ::: "memory");
    report("fetch from invalid page", 0);

    /* Delegation: a load page fault in S-mode code delegated to S goes to stvec; here we
     * only check that medeleg routes an S ecall back to M when not delegated. */
    extern char back3[];
    resume = (uint64_t)back3;
    set_mpp(1);
    csrw(satp, 0);
    asm volatile("sfence.vma" ::: "memory");
    asm volatile("la t0, 1f; csrw mepc, t0; mret; 1: ecall; back3:" ::: "t0", "memory");
    value("ecall from S", t_cause);

    /* Interrupts: software (CLINT msip) and timer (mtimecmp), taken with MIE set; wfi
     * returns for a pending enabled interrupt even with MIE clear. */
    csrs(mie, 1ul << 3);
    *CLINT_MSIP = 1;
    csrs(mstatus, 1ul << 3);
    for (volatile int i = 0; i < 100 && !(t_cause >> 63); i++) {
    }
    csrc(mstatus, 1ul << 3);
    value("software interrupt cause", t_cause);
    t_cause = 0;
    csrs(mie, 1ul << 7);
    *CLINT_MTIMECMP = *CLINT_MTIME + 1000;
    asm volatile("wfi");
    value("mip.MTIP after wfi", (csrr(mip) >> 7) & 1);
    csrs(mstatus, 1ul << 3);
    for (volatile int i = 0; i < 100000 && !(t_cause >> 63); i++) {
    }
    csrc(mstatus, 1ul << 3);
    value("timer interrupt cause", t_cause);
    /* A spinning loop still takes its timer interrupt. */
    t_cause = 0;
    csrs(mie, 1ul << 7);
    *CLINT_MTIMECMP = *CLINT_MTIME + 2000;
    csrs(mstatus, 1ul << 3);
    while (!(t_cause >> 63)) {
    }
    csrc(mstatus, 1ul << 3);
    value("timer interrupt in a spin loop", t_cause);

    /* mip.SEIP as a read-modify-write sees it: the PLIC's line (the UART's transmitter-
     * empty interrupt routed to hart 0's S context) must not be latched into the
     * software-written bit by a csrc of another mip bit. */
    volatile uint32_t *plic = (volatile uint32_t *)0x0c000000;
    plic[10] = 1;                      /* priority of source 10 (the UART) */
    plic[(0x2000 + 0x80) / 4] = 1u << 10; /* enabled for context 1 (hart 0, S) */
    plic[0x201000 / 4] = 0;            /* threshold */
    UART[1] = 0x02;                    /* IER: transmitter holding register empty */
    for (volatile int i = 0; i < 1000 && !((csrr(mip) >> 9) & 1); i++) {
    }
    value("mip.SEIP with the UART line up", (csrr(mip) >> 9) & 1);
    csrc(mip, 1ul << 1);
    UART[1] = 0;
    uint32_t claimed = plic[0x201004 / 4];
    plic[0x201004 / 4] = claimed;
    value("claimed source", claimed);
    value("mip.SEIP after the line drops", (csrr(mip) >> 9) & 1);

    puts_("PRIV-DONE\n");
    *TEST = 0x5555;
    for (;;) {
    }
}
