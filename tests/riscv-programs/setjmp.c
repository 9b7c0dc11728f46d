// setjmp/longjmp through nested frames, with callee-saved registers and FP state.
#include <setjmp.h>
#include <stdio.h>

static jmp_buf jb;
static int depth;

static void dive(int n) {
    volatile double d = n * 0.5;
    depth = n;
    if (n == 25) longjmp(jb, n + (int)d);
    dive(n + 1);
}

int main(void) {
    volatile int saved = 7;
    volatile double f = 3.25;
    int r = setjmp(jb);
    if (r == 0) {
        saved = 8;
        f = 4.5;
        dive(0);
    }
    printf("longjmp returned %d depth=%d saved=%d f=%.2f\n", r, depth, saved, f);
    long acc = 0;
    for (int i = 0; i < 1000; i++) {
        jmp_buf local;
        if (setjmp(local) == 0) {
            acc += i;
            if (i % 3 == 0) longjmp(local, 1);
        } else {
            acc -= 1;
        }
    }
    printf("acc=%ld\n", acc);
    return 0;
}
