// fork + execve of a RISC-V program (this one again), exit statuses, environment, argv.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        printf("child: argc=%d arg2=%s env=%s\n", argc, argv[2], getenv("TANDEM_TEST_VAR"));
        return 7;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {argv[0], "child", "two", NULL};
        char *env[] = {"TANDEM_TEST_VAR=passed", NULL};
        execve("/proc/self/exe", args, env);
        perror("execve");
        _exit(99);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("parent: child exited=%d code=%d\n", WIFEXITED(status), WEXITSTATUS(status));
    return 0;
}
