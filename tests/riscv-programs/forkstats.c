// Run with --stats: child A, forked before the parent ran work(), translates it itself;
// child B, forked after, must find it already translated (its statistics line, the second
// one, counts fewer blocks than A's by at least work()'s 32 functions).
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "manyblocks.h"

static void child(void) {
    if (fork() == 0) _exit(work(1) == work(2) ? 1 : 0);
    int st;
    wait(&st);
    printf("child exited %d\n", WEXITSTATUS(st));
    fflush(stdout);
}

int main(void) {
    child();
    long s = 0;
    for (int i = 0; i < 50; i++) s += work(i);
    child();
    printf("parent %ld\n", s);
    return 0;
}
