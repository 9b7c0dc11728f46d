/* Run through binfmt_misc by crates/tandem/tests/binfmt.rs: prints what the kernel and Tandem
 * gave it (argv, real and effective uid, /proc/self/exe when /proc exists); with
 * "exec PATH ARGS..." it then execs PATH with argv ARGS (a RISC-V program started by a RISC-V
 * program, as in a chroot's shell). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    printf("argv[%d]=%s\n", i, argv[i]);
  printf("uid=%d euid=%d\n", (int)getuid(), (int)geteuid());
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = 0;
    printf("exe=%s\n", exe);
  }
  if (argc >= 4 && strcmp(argv[1], "exec") == 0) {
    fflush(stdout);
    execv(argv[2], argv + 3);
    perror("execv");
    return 127;
  }
  return 0;
}
