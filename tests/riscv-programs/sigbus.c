// Touching a file mapping past the end of the file raises SIGBUS (BUS_ADRERR), not SIGSEGV.
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf env;
static volatile int code;
static void on_bus(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    code = si->si_code;
    siglongjmp(env, sig);
}

int main(void) {
    char path[] = "/tmp/tandem-sigbus-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    write(fd, "short file", 10);
    volatile char *p = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
    printf("first page: %c\n", p[0]);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_bus;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, NULL);
    int r = sigsetjmp(env, 1);
    if (r == 0) printf("not reached %c\n", p[4096]);
    printf("second page: signal %d code %d\n", r, code);
    fflush(stdout);
    signal(SIGBUS, SIG_DFL);
    return p[5000];
}
