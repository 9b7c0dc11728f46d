// FP arithmetic meeting every IEEE exception, in hot loops on several threads at once:
// overflow, underflow (exact and inexact), invalid (0/0, inf-inf, sqrt(-1), signalling
// NaNs), division by zero and quiet NaN operands, with the result bits and the accrued
// flags of each thread hashed. Tandem computes the ordinary cases on the host FPU and
// reaches the rest through host FP exceptions, per thread.
#include <fenv.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { THREADS = 4, N = 64, ROUNDS = 2000 };

static double bits(uint64_t u) {
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static uint64_t ubits(double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

struct job {
    int id;
    uint64_t hash;
    int flags;
};

static void *work(void *arg) {
    struct job *j = arg;
    double a[N], b[N];
    const double special[] = {1e308,  -1e308, 1e-308, 2.2250738585072014e-308, 4.9e-324, 0.0,
                              -0.0,   INFINITY, -INFINITY, NAN, bits(0x7ff0000000000001ull),
                              bits(0x7ff8000000000123ull), 3.0, -7.25, 0.1, 1.0};
    const int ns = sizeof special / sizeof *special;
    for (int i = 0; i < N; i++) {
        a[i] = special[(i * 7 + j->id) % ns];
        b[i] = special[(i * 5 + 3 * j->id + 1) % ns];
    }
    uint64_t h = 1469598103934665603ull;
    int flags = 0;
    for (int r = 0; r < ROUNDS; r++) {
        feclearexcept(FE_ALL_EXCEPT);
        for (int i = 0; i < N; i++) {
            double x = a[i], y = b[i];
            double s = x + y, p = x * y, q = x / y, f = fma(x, y, s), t = sqrt(x);
            h = (h ^ ubits(s)) * 1099511628211ull;
            h = (h ^ ubits(p)) * 1099511628211ull;
            h = (h ^ ubits(q)) * 1099511628211ull;
            h = (h ^ ubits(f)) * 1099511628211ull;
            h = (h ^ ubits(t)) * 1099511628211ull;
        }
        flags |= fetestexcept(FE_ALL_EXCEPT);
    }
    j->hash = h;
    j->flags = flags;
    return NULL;
}

int main(void) {
    pthread_t t[THREADS];
    struct job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (struct job){.id = i};
        pthread_create(&t[i], NULL, work, &jobs[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        printf("thread %d: hash %016llx flags %#x\n", i, (unsigned long long)jobs[i].hash,
               jobs[i].flags);
    }
    return 0;
}
