// Synchronous-fault signals sent with raise/kill: handled, blocked and pending, then fatal.
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
static volatile int got;
static void h(int s) { got = s; }
int main(void) {
    signal(SIGILL, h); raise(SIGILL); printf("ill handled: %d\n", got);
    signal(SIGSEGV, h); raise(SIGSEGV); printf("segv handled: %d\n", got);
    signal(SIGTRAP, h); kill(getpid(), SIGTRAP); printf("trap handled: %d\n", got);
    sigset_t s; sigemptyset(&s); sigaddset(&s, SIGFPE); sigprocmask(SIG_BLOCK, &s, 0);
    raise(SIGFPE); sigset_t p; sigpending(&p); printf("fpe pending while blocked: %d\n", sigismember(&p, SIGFPE));
    fflush(stdout);
    signal(SIGFPE, SIG_DFL);
    sigprocmask(SIG_UNBLOCK, &s, 0);
    printf("not reached\n");
    return 0;
}
