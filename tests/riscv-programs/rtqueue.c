// Real-time signals queue: three sigqueue()d instances with different values are all
// delivered, in order, once unblocked; a standard signal sent twice while blocked arrives once.
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static int vals[8], n, usr1;
static void on_rt(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    if (n < 8) vals[n++] = si->si_value.sival_int;
}
static void on_usr1(int sig) { (void)sig; usr1++; }

int main(void) {
    int rt = SIGRTMIN + 2;
    struct sigaction sa = {0};
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO;
    sigaction(rt, &sa, NULL);
    signal(SIGUSR1, on_usr1);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, rt);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    for (int i = 1; i <= 3; i++) sigqueue(getpid(), rt, (union sigval){.sival_int = i * 10});
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR1);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("rt deliveries: %d values:", n);
    for (int i = 0; i < n; i++) printf(" %d", vals[i]);
    printf("\nusr1 deliveries: %d\n", usr1);
    return 0;
}
