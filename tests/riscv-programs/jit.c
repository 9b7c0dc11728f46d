// JIT-style code generation: write RISC-V code into memory, make it executable with mprotect,
// synchronise with fence.i / __builtin___clear_cache, run it, rewrite it, run the new code.
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

typedef long (*fn_t)(long);

// addi a0, a0, imm ; ret
static void emit_add(uint32_t *p, int imm) {
    p[0] = ((uint32_t)(imm & 0xfff) << 20) | (10 << 15) | (10 << 7) | 0x13;
    p[1] = 0x00008067;
}

int main(void) {
    uint32_t *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) return 1;
    emit_add(code, 42);
    mprotect(code, 4096, PROT_READ | PROT_EXEC);
    __asm__ volatile("fence.i" ::: "memory");
    printf("first: %ld\n", ((fn_t)code)(0));

    mprotect(code, 4096, PROT_READ | PROT_WRITE);
    emit_add(code, -7);
    mprotect(code, 4096, PROT_READ | PROT_EXEC);
    __builtin___clear_cache((char *)code, (char *)(code + 2));
    printf("rewritten: %ld\n", ((fn_t)code)(100));

    long sum = 0;
    for (int i = 0; i < 200; i++) {
        mprotect(code, 4096, PROT_READ | PROT_WRITE);
        emit_add(code + 2 * (i % 8), i);
        mprotect(code, 4096, PROT_READ | PROT_EXEC);
        __asm__ volatile("fence.i" ::: "memory");
        sum += ((fn_t)(code + 2 * (i % 8)))(sum & 0xff);
    }
    printf("loop sum: %ld\n", sum);
    munmap(code, 4096);
    return 0;
}
