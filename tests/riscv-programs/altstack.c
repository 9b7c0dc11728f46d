// Stack overflow caught by a SIGSEGV handler running on an alternate signal stack.
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sigjmp_buf env;
static char *alt;
static volatile int on_alt;

static void handler(int sig) {
    char probe;
    on_alt = &probe >= alt && &probe < alt + SIGSTKSZ * 4;
    siglongjmp(env, sig);
}

static int recurse(volatile char *prev, int depth) {
    volatile char big[4096];
    big[0] = (char)depth;
    big[4095] = prev ? prev[0] : 0;
    return recurse(big, depth + 1) + big[1];
}

int main(void) {
    alt = malloc(SIGSTKSZ * 4);
    stack_t ss = {.ss_sp = alt, .ss_size = SIGSTKSZ * 4, .ss_flags = 0};
    printf("sigaltstack: %d\n", sigaltstack(&ss, NULL));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
    int r = sigsetjmp(env, 1);
    if (r == 0) recurse(NULL, 0);
    printf("overflow caught: signal %d on alternate stack: %d\n", r, on_alt);
    stack_t cur;
    sigaltstack(NULL, &cur);
    printf("altstack flags now: %d size ok: %d\n", cur.ss_flags, cur.ss_size == SIGSTKSZ * 4);
    return 0;
}
