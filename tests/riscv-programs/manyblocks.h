// work(): 32 distinct small functions called in turn, so that running it translates (and,
// run often, compiles and chains) many blocks of ordinary code. Shared by the fork tests.
#define F(n)                                                              \
    static __attribute__((noinline)) long f##n(long x) {                  \
        for (int i = 0; i < 3; i++) x = x * 3 + n + (x >> (i + 1));       \
        return x;                                                         \
    }
#define F8(n) F(n##0) F(n##1) F(n##2) F(n##3) F(n##4) F(n##5) F(n##6) F(n##7)
F8(1) F8(2) F8(3) F8(4)
#define C8(n) x = f##n##0(x); x = f##n##1(x); x = f##n##2(x); x = f##n##3(x); \
              x = f##n##4(x); x = f##n##5(x); x = f##n##6(x); x = f##n##7(x);
static long work(long x) {
    C8(1) C8(2) C8(3) C8(4)
    return x & 0xffffff;
}
