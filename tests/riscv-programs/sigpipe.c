// SIGPIPE as the program was started: with the default disposition, writing to a pipe
// without readers kills the writer (status 128+13 in a shell), as in `yes | head -1`.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    struct sigaction sa;
    sigaction(SIGPIPE, 0, &sa);
    printf("SIGPIPE at start: %s\n", sa.sa_handler == SIG_IGN ? "ignored" : sa.sa_handler == SIG_DFL ? "default" : "handled");
    fflush(stdout);
    int p[2];
    pipe(p);
    close(p[0]);
    ssize_t n = write(p[1], "x", 1);
    printf("write survived: %zd %s\n", n, n < 0 ? strerror(errno) : "");
    return 0;
}
