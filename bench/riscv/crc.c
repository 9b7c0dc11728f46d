// Hashing: table-driven CRC-32 and FNV-1a over a pseudo-random buffer.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    enum { N = 8 << 20, ROUNDS = 6 };
    uint8_t *buf = malloc(N);
    uint32_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    uint32_t crc_all = 0;
    uint64_t fnv_all = 0;
    for (int r = 0; r < ROUNDS; r++) {
        uint32_t crc = 0xffffffffu;
        for (int i = 0; i < N; i++) crc = table[(crc ^ buf[i]) & 0xff] ^ (crc >> 8);
        crc_all ^= ~crc + r;
        uint64_t h = 1469598103934665603ull;
        for (int i = 0; i < N; i++) h = (h ^ buf[i]) * 1099511628211ull;
        fnv_all += h;
        buf[r] ^= 1;
    }
    printf("crc %08x fnv %016llx\n", crc_all, (unsigned long long)fnv_all);
    return 0;
}
