// execve of a `#!` script whose interpreter is a RISC-V program (this one): the interpreter
// gets its path as argv[0], the line's argument, the script's path, then the caller's
// arguments after argv[0]. A script without execute permission gives EACCES, one naming a
// missing interpreter ENOENT.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err_name(int e) {
    return e == EACCES ? "EACCES" : e == ENOENT ? "ENOENT" : e == ENOEXEC ? "ENOEXEC" : "other";
}

int main(int argc, char **argv) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        perror("readlink");
        return 1;
    }
    exe[n] = 0;
    if (argc == 5 && strcmp(argv[1], "--interp-arg") == 0) {
        printf("interp: arg=%s script=%s rest=%s,%s argv0=%s\n", argv[1],
               strncmp(argv[2], "/tmp/tandem-shebang-", 20) == 0 ? "ok" : argv[2], argv[3], argv[4],
               strcmp(argv[0], exe) == 0 ? "ok" : argv[0]);
        return 5;
    }
    char script[] = "/tmp/tandem-shebang-XXXXXX";
    int fd = mkstemp(script);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    dprintf(fd, "#! %s  --interp-arg \nnot read by the interpreter\n", exe);
    close(fd);
    chmod(script, 0755);
    char *args[] = {"ignored-argv0", "x", "y", NULL};
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execv(script, args);
        printf("execv: %s\n", strerror(errno));
        _exit(99);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child exit %d\n", WEXITSTATUS(status));
    chmod(script, 0644);
    execv(script, args);
    printf("not executable: %s\n", err_name(errno));
    fd = open(script, 01 | 01000); // O_WRONLY | O_TRUNC
    dprintf(fd, "#!/nonexistent/interpreter\n");
    close(fd);
    chmod(script, 0755);
    execv(script, args);
    printf("missing interpreter: %s\n", err_name(errno));
    unlink(script);
    return 0;
}
