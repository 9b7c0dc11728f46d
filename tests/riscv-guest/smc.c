/* Self-modifying code in a user program under the guest kernel: code written into an
 * executable page is run, rewritten and run again, with the cache flush a program must
 * do (__builtin___clear_cache: the riscv_flush_icache system call) and without it
 * (Tandem, like QEMU, sees every store to translated code). Prints SMC-OK. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

typedef long (*fn_t)(void);

/* li a0, val; ret */
static void emit(volatile uint32_t *p, int val) {
    p[0] = 0x00000513u | ((uint32_t)(val & 0x7ff) << 20);
    p[1] = 0x00008067u;
}

int main(void) {
    uint32_t *page = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    fn_t f = (fn_t)(uintptr_t)page;
    for (int i = 0; i < 200; i++) {
        emit(page, i);
        __builtin___clear_cache((char *)page, (char *)(page + 2));
        long r = f();
        if (r != i) {
            printf("SMC-FAIL with flush: wrote %d, ran %ld\n", i, r);
            return 1;
        }
    }
    for (int i = 0; i < 200; i++) {
        emit(page, 1000 + i);
        long r = f();
        if (r != 1000 + i) {
            printf("SMC-FAIL without flush: wrote %d, ran %ld\n", 1000 + i, r);
            return 1;
        }
    }
    printf("SMC-OK\n");
    return 0;
}
