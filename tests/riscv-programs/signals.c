// Signal handlers, masks, SA_SIGINFO, faults turned into signals, fatal signals of children.
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static volatile int info_code, info_signo;
static sigjmp_buf env;
static volatile void *fault_addr;

static void on_usr1(int sig) { got += sig; }
static void on_info(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    info_signo = si->si_signo;
    info_code = si->si_code;
    got = sig;
}
static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    fault_addr = si->si_addr;
    siglongjmp(env, 1);
}
static void on_ill(int sig) { siglongjmp(env, sig); }

static double fp_in_handler;
static void on_usr2(int sig) {
    volatile double x = 1.5;
    fp_in_handler = x * sig;
}

int main(void) {
    signal(SIGUSR1, on_usr1);
    raise(SIGUSR1);
    printf("handler ran: got=%d\n", (int)got);

    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    got = 0;
    kill(getpid(), SIGUSR1);
    sigset_t pend;
    sigpending(&pend);
    printf("blocked: got=%d pending=%d\n", (int)got, sigismember(&pend, SIGUSR1));
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("unblocked: got=%d\n", (int)got);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_info;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR2, &sa, NULL);
    got = 0;
    raise(SIGUSR2);
    printf("siginfo: got=%d signo=%d code=%d\n", (int)got, info_signo, info_code);

    // FP registers survive a handler that uses FP.
    signal(SIGUSR2, on_usr2);
    volatile double keep = 2.25;
    raise(SIGUSR2);
    printf("fp: keep=%.2f handler=%.1f\n", keep, fp_in_handler);

    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    if (sigsetjmp(env, 1) == 0) {
        *(volatile int *)0x10 = 1;
        printf("not reached\n");
    } else {
        printf("SIGSEGV caught at %p\n", (void *)fault_addr);
    }

    signal(SIGILL, on_ill);
    if (sigsetjmp(env, 1) == 0) {
        __asm__ volatile(".word 0");
        printf("not reached\n");
    } else {
        printf("SIGILL caught\n");
    }

    // Process-directed signals: a child killed by SIGTERM, a child that aborts.
    pid_t pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    printf("child: signaled=%d sig=%d\n", WIFSIGNALED(status), WTERMSIG(status));
    pid = fork();
    if (pid == 0) abort();
    waitpid(pid, &status, 0);
    printf("abort child: signaled=%d sig=%d\n", WIFSIGNALED(status), WTERMSIG(status));
    pid = fork();
    if (pid == 0) exit(42);
    waitpid(pid, &status, 0);
    printf("exit child: exited=%d code=%d\n", WIFEXITED(status), WEXITSTATUS(status));

    // sigsuspend waits for a blocked signal, which is then handled.
    sigprocmask(SIG_BLOCK, &set, &old);
    signal(SIGUSR1, on_usr1);
    got = 0;
    pid = fork();
    if (pid == 0) {
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    sigset_t empty;
    sigemptyset(&empty);
    sigsuspend(&empty);
    waitpid(pid, &status, 0);
    printf("sigsuspend: got=%d\n", (int)got);
    // A read blocked on a pipe is interrupted by a handled SA_RESTART signal and restarted:
    // it still returns the data written after the signal.
    sigprocmask(SIG_SETMASK, &old, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    int p[2];
    pipe(p);
    got = 0;
    pid = fork();
    if (pid == 0) {
        kill(getppid(), SIGUSR1);
        write(p[1], "r", 1);
        _exit(0);
    }
    char c = 0;
    ssize_t n = read(p[0], &c, 1);
    waitpid(pid, &status, 0);
    printf("restarted read: n=%zd c=%c got=%d\n", n, c, (int)got);
    fflush(stdout);
    // Dies of SIGSEGV with the default action: exit status must show it.
    signal(SIGSEGV, SIG_DFL);
    *(volatile int *)0x8 = 1;
    return 0;
}
