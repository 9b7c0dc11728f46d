// vfork and posix_spawn: the child shares the parent's memory until it execs or exits, and
// the parent waits until then. posix_spawn reports a failed execve through that sharing
// (qemu-user, emulating vfork as fork, reports success and a child exiting with 127).
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static volatile int shared;

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        printf("spawned child: %s\n", argv[2]);
        return 9;
    }
    pid_t pid;
    char *missing[] = {"/nonexistent/program", NULL};
    int rc = posix_spawn(&pid, missing[0], NULL, NULL, missing, environ);
    printf("posix_spawn missing: %s\n", rc == ENOENT ? "ENOENT" : rc == 0 ? "success" : strerror(rc));
    if (rc == 0) waitpid(pid, NULL, 0);
    rc = posix_spawnp(&pid, "no-such-program-anywhere", NULL, NULL, missing, environ);
    printf("posix_spawnp missing: %s\n", rc == ENOENT ? "ENOENT" : rc == 0 ? "success" : strerror(rc));
    if (rc == 0) waitpid(pid, NULL, 0);

    char *self[] = {argv[0], "child", "spawned", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    fflush(stdout);
    rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, self, environ);
    int status = 0;
    waitpid(pid, &status, 0);
    printf("posix_spawn self: rc=%d exit=%d\n", rc, WEXITSTATUS(status));

    // vfork: the parent resumes only after the child's _exit, and sees its store.
    shared = 1;
    pid = vfork();
    if (pid == 0) {
        shared = 42;
        _exit(3);
    }
    waitpid(pid, &status, 0);
    printf("vfork: shared=%d exit=%d\n", shared, WEXITSTATUS(status));
    // A vfork child's failed execve, told to the parent through memory.
    pid = vfork();
    if (pid == 0) {
        execv("/nonexistent/program", missing);
        shared = errno;
        _exit(127);
    }
    waitpid(pid, &status, 0);
    printf("vfork exec: %s exit=%d\n", shared == ENOENT ? "ENOENT" : "?", WEXITSTATUS(status));
    // The child's signal dispositions are its own.
    signal(SIGUSR1, SIG_IGN);
    pid = vfork();
    if (pid == 0) {
        signal(SIGUSR1, SIG_DFL);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    raise(SIGUSR1);
    printf("parent's SIGUSR1 still ignored\n");
    return 0;
}
