// system(), posix_spawn() and popen() of host programs (/bin/sh, /bin/echo): execve of a
// non-RISC-V program runs it on the host, as qemu-user does without binfmt_misc.
#include <stdio.h>
#include <stdlib.h>
#include <spawn.h>
#include <sys/wait.h>
extern char **environ;
int main(void) {
    fflush(stdout);
    int r = system("echo from-shell; exit 5");
    printf("system: exited=%d code=%d\n", WIFEXITED(r), WEXITSTATUS(r));
    pid_t pid; char *argv[] = {"/bin/echo", "spawned", NULL};
    int e = posix_spawn(&pid, "/bin/echo", NULL, NULL, argv, environ);
    int st; waitpid(pid, &st, 0);
    printf("spawn: %d status=%d\n", e, WEXITSTATUS(st));
    FILE *p = popen("echo piped", "r"); char buf[64] = {0}; fgets(buf, sizeof buf, p);
    printf("popen: %s", buf); printf("pclose: %d\n", pclose(p));
    return 0;
}
