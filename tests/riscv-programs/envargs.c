// Prints argv and selected environment variables (for -E, -U, -0 and QEMU_LD_PREFIX).
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    const char *vars[] = {"TANDEM_A", "TANDEM_B", "TANDEM_GONE"};
    for (int i = 0; i < 3; i++) printf("%s=%s\n", vars[i], getenv(vars[i]) ? getenv(vars[i]) : "(unset)");
    return argc;
}
