// Text processing: generate words, tokenise, count frequencies in a hash table, search.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TBL (1 << 16)
static char *keys[TBL];
static int counts[TBL];

static uint32_t hash(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

int main(void) {
    static const char *syl[] = {"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "xe", "zu", "an", "or"};
    enum { LEN = 32 << 20 };
    char *text = malloc(LEN + 1);
    size_t pos = 0;
    uint32_t r = 7;
    while (pos + 16 < LEN) {
        r = r * 1664525u + 1013904223u;
        int ns = 1 + (r >> 28) % 3;
        for (int k = 0; k < ns; k++) {
            const char *s = syl[(r >> (4 * k + 8)) % 12];
            text[pos++] = s[0];
            text[pos++] = s[1];
        }
        text[pos++] = (r & 0x3f) == 0 ? '\n' : ' ';
    }
    text[pos] = 0;
    long words = 0, distinct = 0, lines = 0;
    char *p = text;
    while (*p) {
        while (*p == ' ' || *p == '\n') lines += *p++ == '\n';
        char *w = p;
        while (*p && *p != ' ' && *p != '\n') p++;
        size_t n = (size_t)(p - w);
        if (!n) continue;
        words++;
        uint32_t h = hash(w, n) & (TBL - 1);
        while (keys[h] && (strncmp(keys[h], w, n) != 0 || keys[h][n])) h = (h + 1) & (TBL - 1);
        if (!keys[h]) {
            keys[h] = strndup(w, n);
            distinct++;
        }
        counts[h]++;
    }
    int best = 0;
    for (int i = 0; i < TBL; i++)
        if (counts[i] > counts[best]) best = i;
    long hits = 0;
    for (char *q = text; (q = strstr(q, "zuzuzu")); q++) hits++;
    printf("words %ld distinct %ld lines %ld top %s=%d zuzuzu %ld\n", words, distinct, lines,
           keys[best], counts[best], hits);
    return 0;
}
