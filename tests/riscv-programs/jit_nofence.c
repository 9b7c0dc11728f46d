// Self-modifying code in a RWX page without fence.i: QEMU (and Tandem) must still never run
// stale code, so the results are those of the newest bytes.
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

typedef long (*fn_t)(long);

static void emit_add(volatile uint32_t *p, int imm) {
    p[0] = ((uint32_t)(imm & 0xfff) << 20) | (10 << 15) | (10 << 7) | 0x13;
    p[1] = 0x00008067;
}

int main(void) {
    volatile uint32_t *code = mmap(NULL, 8192, PROT_READ | PROT_WRITE | PROT_EXEC,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) return 1;
    long sum = 0;
    for (int i = 0; i < 500; i++) {
        emit_add(code, i);
        sum += ((fn_t)code)(1);
    }
    printf("sum: %ld (expect %ld)\n", sum, 500L + 499L * 500 / 2);
    // Data on the same page as code is written between calls.
    volatile long *data = (volatile long *)(code + 512);
    for (int i = 0; i < 100; i++) {
        *data += ((fn_t)code)(i);
    }
    printf("data: %ld\n", *data);
    return 0;
}
