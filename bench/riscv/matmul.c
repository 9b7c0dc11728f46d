// Dense double-precision matrix multiply (i-k-j order).
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    enum { N = 400 };
    double *a = malloc(N * N * sizeof(double)), *b = malloc(N * N * sizeof(double));
    double *c = calloc(N * N, sizeof(double));
    for (int i = 0; i < N * N; i++) {
        a[i] = (i % 17) * 0.25 - 1.0;
        b[i] = (i % 13) * 0.5 + 0.125;
    }
    for (int rep = 0; rep < 3; rep++)
        for (int i = 0; i < N; i++)
            for (int k = 0; k < N; k++) {
                double aik = a[i * N + k];
                for (int j = 0; j < N; j++) c[i * N + j] += aik * b[k * N + j];
            }
    double tr = 0;
    for (int i = 0; i < N; i++) tr += c[i * N + i] + c[i * N + (N - 1 - i)];
    printf("trace %.6f\n", tr);
    return 0;
}
