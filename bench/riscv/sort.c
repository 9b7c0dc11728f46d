// Sorting: qsort with a comparison callback and a hand-written introsort-like quicksort.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void quick(int32_t *a, long n) {
    while (n > 16) {
        int32_t p = a[n / 2];
        long i = 0, j = n - 1;
        while (i <= j) {
            while (a[i] < p) i++;
            while (a[j] > p) j--;
            if (i <= j) {
                int32_t t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        if (j + 1 < n - i) {
            quick(a, j + 1);
            a += i;
            n -= i;
        } else {
            quick(a + i, n - i);
            n = j + 1;
        }
    }
    for (long i = 1; i < n; i++) {
        int32_t v = a[i];
        long k = i - 1;
        while (k >= 0 && a[k] > v) {
            a[k + 1] = a[k];
            k--;
        }
        a[k + 1] = v;
    }
}

int main(void) {
    enum { N = 2000000 };
    int32_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    uint64_t s = 88172645463325252ull;
    for (long i = 0; i < N; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        a[i] = b[i] = (int32_t)s;
    }
    qsort(a, N, sizeof *a, cmp);
    quick(b, N);
    uint64_t h = 0;
    for (long i = 0; i < N; i++) {
        if (a[i] != b[i]) return 1;
        h = h * 31 + (uint32_t)a[i];
    }
    printf("sorted %llx\n", (unsigned long long)h);
    return 0;
}
