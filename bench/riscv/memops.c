// memcpy/memset/memmove/memcmp-heavy work over buffers of many sizes.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    enum { N = 4 << 20 };
    uint8_t *a = malloc(N), *b = malloc(N);
    memset(a, 0x5a, N);
    uint64_t sum = 0;
    uint32_t r = 1;
    for (int rep = 0; rep < 60; rep++) {
        memset(b, rep, N);
        memcpy(b, a, N - rep * 1000);
        memmove(b + 3, b, N / 2);
        sum += b[rep * 7919 % N] + (memcmp(a, b, N / 4) < 0);
    }
    for (int i = 0; i < 3000000; i++) {
        r = r * 1103515245u + 12345u;
        size_t len = (r >> 8) % 256 + 1, off = (r >> 4) % (N - 512);
        memcpy(b + off, a + ((off * 7) % (N - 512)), len);
        memset(a + ((off * 3) % (N - 512)), (int)len, len / 2);
        sum += b[off + len / 2];
    }
    printf("memops %llu\n", (unsigned long long)sum);
    return 0;
}
