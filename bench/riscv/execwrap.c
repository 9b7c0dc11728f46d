/* A native program that execs TARGET (a compile-time string, with ARG as its one argument
 * when defined): lets a guest shell under qemu-riscv64-static, which cannot exec a RISC-V
 * program without binfmt_misc, start one through QEMU (bench/riscv/fork.sh). */
#include <unistd.h>

int main(void) {
#ifdef ARG
    char *argv[] = {TARGET, ARG, 0};
#else
    char *argv[] = {TARGET, 0};
#endif
    execv(TARGET, argv);
    return 127;
}
