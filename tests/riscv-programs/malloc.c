// Allocation-heavy work: many sizes, frees, reallocs (small via brk, large via mmap/mremap).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(void) {
    enum { SLOTS = 4096 };
    static unsigned char *slot[SLOTS];
    static size_t len[SLOTS];
    uint64_t sum = 0;
    for (int round = 0; round < 200000; round++) {
        int i = next() % SLOTS;
        if (slot[i]) {
            for (size_t k = 0; k < len[i]; k += 61) sum += slot[i][k];
            if (next() % 4 == 0 && len[i] < 65536) {
                size_t nl = len[i] * 2 + 1;
                slot[i] = realloc(slot[i], nl);
                memset(slot[i] + len[i], (int)(nl & 0xff), nl - len[i]);
                len[i] = nl;
            } else {
                free(slot[i]);
                slot[i] = NULL;
            }
        } else {
            size_t l = next() % 4096 + 1;
            if (next() % 2000 == 0) l = (next() % 4 + 1) << 20;
            slot[i] = malloc(l);
            memset(slot[i], (int)(i & 0xff), l);
            len[i] = l;
        }
    }
    for (int i = 0; i < SLOTS; i++) free(slot[i]);
    char *big = malloc(64 << 20);
    for (size_t k = 0; k < (64u << 20); k += 4096) big[k] = (char)k;
    big = realloc(big, 128 << 20);
    for (size_t k = 0; k < (64u << 20); k += 4096) sum += (unsigned char)big[k];
    free(big);
    printf("checksum %llu\n", (unsigned long long)sum);
    return 0;
}
