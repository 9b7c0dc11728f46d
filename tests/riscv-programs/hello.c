// The smallest useful program: stdout, argc, exit status.
#include <stdio.h>

int main(int argc, char **argv) {
    (void)argv;
    printf("hello from riscv: argc=%d\n", argc);
    return 3;
}
