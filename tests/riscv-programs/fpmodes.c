// The same translated FP code run under every rounding mode and with the accrued flags
// cleared or not in between: results and flags must follow the mode of each call.
#include <fenv.h>
#include <stdio.h>

__attribute__((noinline)) static double kernel(double a, double b, double c) {
    double s = a + b, p = a * b, q = a / b, f = a * b + c;
    return s - p + q * f;
}

__attribute__((noinline)) static float kernel_s(float a, float b) {
    float s = a + b, p = a * b;
    return s / p - a;
}

static void flags(void) {
    printf(" [%s%s%s%s%s]", fetestexcept(FE_INEXACT) ? "x" : "-",
           fetestexcept(FE_UNDERFLOW) ? "u" : "-", fetestexcept(FE_OVERFLOW) ? "o" : "-",
           fetestexcept(FE_DIVBYZERO) ? "z" : "-", fetestexcept(FE_INVALID) ? "v" : "-");
}

int main(void) {
    const int modes[] = {FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD, FE_TONEAREST};
    const double in[][3] = {{1.5, 2.25, -0.5}, {1.0, 3.0, 0.1}, {1e300, 1e10, 1.0},
                            {1e-300, 1e-20, 0.0}, {2.0, 0.0, 1.0}, {-0.0, 1.0, 0.0}};
    for (int m = 0; m < 5; m++) {
        fesetround(modes[m]);
        for (int i = 0; i < 6; i++) {
            for (int keep = 0; keep < 2; keep++) {
                if (!keep) feclearexcept(FE_ALL_EXCEPT);
                double r = kernel(in[i][0], in[i][1], in[i][2]);
                float rs = kernel_s((float)in[i][0], (float)in[i][1] + 1.0f);
                printf("mode %d in %d keep %d: %a %a", m, i, keep, r, (double)rs);
                flags();
                printf("\n");
            }
        }
    }
    return 0;
}
