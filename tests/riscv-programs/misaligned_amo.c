// Misaligned atomics raise SIGBUS (BUS_ADRALN) with the faulting address; misaligned plain
// loads and stores just work.
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static sigjmp_buf env;
static volatile uintptr_t fault_addr;
static volatile int fault_code;
static _Alignas(16) unsigned char buf[64];

static void on_bus(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    fault_addr = (uintptr_t)si->si_addr;
    fault_code = si->si_code;
    siglongjmp(env, sig);
}

#define TRY(name, stmt)                                                                      \
    do {                                                                                     \
        fault_addr = 0;                                                                      \
        int r = sigsetjmp(env, 1);                                                           \
        if (r == 0) {                                                                        \
            stmt;                                                                            \
            printf("%s: no signal\n", name);                                                 \
        } else {                                                                             \
            printf("%s: signal %d code %d offset %ld\n", name, r, fault_code,              \
                   (long)(fault_addr - (uintptr_t)buf));                                     \
        }                                                                                    \
    } while (0)

int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_bus;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, NULL);

    volatile uint32_t *w = (uint32_t *)(buf + 2);
    *w = 0x11223344; // misaligned plain store
    printf("plain: %x\n", *w);

    long old = 0;
    TRY("amoadd.w +2", __asm__ volatile("amoadd.w %0, %2, (%1)" : "=r"(old) : "r"(buf + 2), "r"(1L) : "memory"));
    TRY("amoswap.d +4", __asm__ volatile("amoswap.d %0, %2, (%1)" : "=r"(old) : "r"(buf + 4), "r"(1L) : "memory"));
    TRY("lr.w +1", __asm__ volatile("lr.w %0, (%1)" : "=r"(old) : "r"(buf + 1) : "memory"));
    TRY("amoadd.w +8", __asm__ volatile("amoadd.w %0, %2, (%1)" : "=r"(old) : "r"(buf + 8), "r"(5L) : "memory"));
    TRY("amoor.d +16", __asm__ volatile("amoor.d %0, %2, (%1)" : "=r"(old) : "r"(buf + 16), "r"(6L) : "memory"));
    uint32_t v;
    memcpy(&v, buf + 8, 4);
    printf("aligned amo result: %u %d\n", v, buf[16]);
    return 0;
}
