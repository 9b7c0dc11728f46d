#ifndef SORTN
#define SORTN 3000
#define STEPS 200000
#define NBODY 300
#define FIB 24
#endif
/* Freestanding test program: compiled code with loops, calls, recursion, jump tables,
 * function pointers and floating point. Prints checksums via write(2). */
typedef unsigned long u64;
typedef long i64;

static long sys3(long n, long a, long b, long c) {
    register long a0 asm("a0") = a;
    register long a1 asm("a1") = b;
    register long a2 asm("a2") = c;
    register long a7 asm("a7") = n;
    asm volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a7) : "memory");
    return a0;
}

static void put_hex(const char *tag, u64 v) {
    char buf[40];
    int n = 0;
    while (*tag) buf[n++] = *tag++;
    buf[n++] = '=';
    for (int i = 60; i >= 0; i -= 4) buf[n++] = "0123456789abcdef"[(v >> i) & 15];
    buf[n++] = '\n';
    sys3(64, 1, (long)buf, n);
}

static u64 rng = 88172645463325252ULL;
static u64 next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static i64 arr[SORTN];

static void qsort_(i64 *a, int lo, int hi) {
    while (lo < hi) {
        i64 p = a[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < p) i++;
            while (a[j] > p) j--;
            if (i <= j) {
                i64 t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        if (j - lo < hi - i) {
            qsort_(a, lo, j);
            lo = i;
        } else {
            qsort_(a, i, hi);
            hi = j;
        }
    }
}

static unsigned crc32(const unsigned char *p, int n) {
    unsigned c = ~0u;
    for (int i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & -(c & 1));
    }
    return ~c;
}

static int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

static u64 op_add(u64 a, u64 b) { return a + b; }
static u64 op_xor(u64 a, u64 b) { return a ^ b; }
static u64 op_mul(u64 a, u64 b) { return a * b + 1; }
static u64 op_div(u64 a, u64 b) { return b ? a / b : a; }
static u64 (*const ops[4])(u64, u64) = {op_add, op_xor, op_mul, op_div};

static u64 interp(int steps) {
    u64 acc = 1;
    for (int i = 0; i < steps; i++) {
        switch (next() % 7) {
        case 0: acc += 3; break;
        case 1: acc ^= acc << 7; break;
        case 2: acc = acc * 5 + 1; break;
        case 3: acc -= i; break;
        case 4: acc = (acc >> 3) | (acc << 61); break;
        case 5: acc = ops[i & 3](acc, next()); break;
        default: acc += (acc % 1000003); break;
        }
    }
    return acc;
}

static double fsqrt_(double x) { return __builtin_sqrt(x); }

static u64 nbody(int steps) {
    double x[4] = {0, 1, 0, -1}, y[4] = {1, 0, -1, 0}, vx[4] = {0}, vy[4] = {0};
    float e = 0.0f;
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                if (i == j) continue;
                double dx = x[j] - x[i], dy = y[j] - y[i];
                double d2 = dx * dx + dy * dy + 0.01;
                double inv = 1.0 / (d2 * fsqrt_(d2));
                vx[i] += dx * inv * 0.001;
                vy[i] += dy * inv * 0.001;
            }
        for (int i = 0; i < 4; i++) {
            x[i] += vx[i] * 0.01;
            y[i] += vy[i] * 0.01;
            e += (float)(vx[i] * vx[i] + vy[i] * vy[i]);
        }
    }
    union { double d; u64 u; } a = {x[0] + y[1] * 3.0};
    union { float f; unsigned u; } b = {e};
    i64 conv = (i64)(x[2] * 1e12);
    return a.u ^ ((u64)b.u << 32) ^ (u64)conv;
}

int main(void) {
    for (int i = 0; i < SORTN; i++) arr[i] = (i64)next() >> (next() % 40);
    qsort_(arr, 0, SORTN - 1);
    u64 s = 0;
    for (int i = 0; i < SORTN; i++) s = s * 31 + (u64)arr[i];
    put_hex("sort", s);
    put_hex("sorted", arr[0] <= arr[SORTN / 2] && arr[SORTN / 2] <= arr[SORTN - 1]);
    put_hex("crc", crc32((const unsigned char *)arr, sizeof arr));
    put_hex("fib", fib(FIB));
    put_hex("interp", interp(STEPS));
    put_hex("nbody", nbody(NBODY));
    return 0;
}

__attribute__((section(".text.start"), used)) void _start(void) {
    sys3(93, main(), 0, 0);
}
