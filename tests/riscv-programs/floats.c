// printf/scanf of floating point and libm: exercises the F/D extensions and rounding.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    double vals[] = {0.0, -0.0, 1.0, -1.5, 3.141592653589793, 1e-300, 1e300, 2.5e-5, 123456789.125};
    for (unsigned i = 0; i < sizeof vals / sizeof *vals; i++)
        printf("%g %.17g %e %.3f %a\n", vals[i], vals[i], vals[i], vals[i], vals[i]);
    printf("inf=%f nan=%f\n", INFINITY, NAN);
    float f = 1.0f / 3.0f;
    printf("float %.9g %.20f\n", f, (double)f);
    printf("sqrt %.17g sin %.17g exp %.17g log %.17g pow %.17g\n", sqrt(2.0), sin(1.0), exp(1.0),
           log(10.0), pow(2.0, 0.5));
    printf("fma %.17g floor %g ceil %g round %g trunc %g\n", fma(0.1, 10.0, -1.0), floor(-2.5),
           ceil(-2.5), round(-2.5), trunc(-2.5));
    printf("strtod %.17g atof %.17g\n", strtod("6.02214076e23", NULL), atof("-0.1"));
    double acc = 0;
    for (int i = 1; i <= 100000; i++) acc += 1.0 / ((double)i * i);
    printf("basel %.15f\n", acc);
    float fs = 0;
    for (int i = 1; i <= 1000; i++) fs += sqrtf((float)i);
    printf("sqrtf sum %.6f\n", fs);
    printf("conv %d %ld %u %.1f\n", (int)-3.99, (long)1e18, (unsigned)3e9, (double)(float)16777217);
    return 0;
}
