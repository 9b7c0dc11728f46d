// Memory-ordering cost, single-threaded: sequentially consistent fetch-and-add (GCC 12 for
// riscv64: `fence iorw,ow; amoadd.aq`), a store, full fence, load sequence (RISC-V
// `fence rw,rw`, x86-64 `mfence`), and acquire loads with release stores (riscv64:
// `lw; fence iorw,iorw` and `fence iorw,ow; amoswap`). `atomics N` runs only loop N (1-3).
#include <stdio.h>
#include <stdlib.h>

enum { ITERS = 20000000 };

static volatile long x, y;
static long counter;
static int flag;

static inline void full_fence(void) {
#ifdef __riscv
    asm volatile("fence rw, rw" ::: "memory");
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

int main(int argc, char **argv) {
    int only = argc > 1 ? atoi(argv[1]) : 0;
    unsigned long sum = 0;
    if (only == 0 || only == 1) {
        for (long i = 0; i < ITERS; i++) sum += __atomic_fetch_add(&counter, 1, __ATOMIC_SEQ_CST);
    }
    if (only == 0 || only == 2) {
        for (long i = 0; i < ITERS; i++) {
            x = i;
            full_fence();
            sum += y;
        }
    }
    if (only == 0 || only == 3) {
        for (long i = 0; i < ITERS; i++) {
            sum += __atomic_load_n(&flag, __ATOMIC_ACQUIRE);
            __atomic_store_n(&flag, (int)i, __ATOMIC_RELEASE);
        }
    }
    printf("atomics %lu %ld %ld %d\n", sum, counter, x, flag);
    return 0;
}
