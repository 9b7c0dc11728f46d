// fexecve and execveat (relative to a directory descriptor, and with AT_EMPTY_PATH) running
// this same RISC-V program again, which then prints its arguments.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void run(const char *how, int (*start)(char **, void *), void *arg) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {"fexec", "child", (char *)how, 0};
        start(argv, arg);
        printf("%s failed: %s\n", how, strerror(errno));
        fflush(stdout);
        _exit(1);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("%s: exit %d\n", how, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static int by_fexecve(char **argv, void *arg) { return fexecve(*(int *)arg, argv, environ); }
static int by_execveat_empty(char **argv, void *arg) {
    return syscall(SYS_execveat, *(int *)arg, "", argv, environ, AT_EMPTY_PATH);
}
static int by_execveat_dir(char **argv, void *arg) {
    char **names = arg;
    int dfd = open(names[0], O_RDONLY | O_DIRECTORY);
    return syscall(SYS_execveat, dfd, names[1], argv, environ, 0);
}
static int by_execveat_badflags(char **argv, void *arg) {
    return syscall(SYS_execveat, *(int *)arg, "", argv, environ, 0x40000000);
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "child") == 0) {
        printf("child via %s: argv[0]=%s\n", argv[2], argv[0]);
        return 7;
    }
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) return 1;
    self[n] = 0;
    int fd = open(self, O_RDONLY | O_CLOEXEC);
    run("fexecve", by_fexecve, &fd);
    run("execveat AT_EMPTY_PATH", by_execveat_empty, &fd);
    char d[4096], b[4096];
    strcpy(d, self);
    strcpy(b, self);
    char *names[] = {dirname(d), basename(b)};
    run("execveat dirfd", by_execveat_dir, names);
    run("execveat bad flags", by_execveat_badflags, &fd);

    // A program that exists only in memory (close-on-exec, as fexecve users make them).
    int mfd = memfd_create("prog", MFD_CLOEXEC);
    char buf[65536];
    ssize_t got;
    lseek(fd, 0, SEEK_SET);
    while ((got = read(fd, buf, sizeof buf)) > 0) write(mfd, buf, got);
    run("fexecve memfd", by_fexecve, &mfd);
    return 0;
}
