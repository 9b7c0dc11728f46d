// A SIGSEGV handler that edits the interrupted context (as JITs and garbage collectors do):
// skips the faulting store via the pc in gregs[0] and changes a register and an FP register.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>

static volatile unsigned long seen_pc, seen_addr;

static void handler(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    ucontext_t *uc = ctx;
    seen_pc = uc->uc_mcontext.__gregs[REG_PC];
    seen_addr = (unsigned long)si->si_addr;
    uc->uc_mcontext.__gregs[REG_PC] += 4;      // skip the 4-byte store
    uc->uc_mcontext.__gregs[11] = 1234;        // a1
    uc->uc_mcontext.__fpregs.__d.__f[10] = 0x4059000000000000ull; // fa0 = 100.0
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    long r;
    double d;
    unsigned long at;
    __asm__ volatile(".option push\n"
                     ".option norvc\n"
                     "li a1, 5\n"
                     "fcvt.d.l fa0, a1\n"
                     "1: sw zero, 0(%3)\n"
                     "mv %0, a1\n"
                     "fmv.d %1, fa0\n"
                     "lla %2, 1b\n"
                     ".option pop\n"
                     : "=r"(r), "=f"(d), "=r"(at)
                     : "r"(0x40)
                     : "a1", "fa0", "memory");
    printf("a1 after handler: %ld, fa0: %.1f\n", r, d);
    printf("handler saw pc of the store: %d, fault address: %#lx\n", seen_pc == at, seen_addr);
    return 0;
}
