// SIGFPE sent by another thread and by another process reaches the guest's handler, is
// dropped when ignored, and kills with the default action. (Tandem owns SIGFPE on the host
// for its inline FP arithmetic and passes sent ones on.)
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static pthread_t main_thread;

static void h(int s, siginfo_t *si, void *uc) {
    (void)uc;
    got = s + 1000 * (si->si_code == SI_TKILL || si->si_code == SI_USER);
}

static void *sender(void *arg) {
    (void)arg;
    pthread_kill(main_thread, SIGFPE);
    return NULL;
}

static void wait_for_it(void) {
    for (long i = 0; i < 100000000 && !got; i++) sched_yield();
}

int main(void) {
    main_thread = pthread_self();
    struct sigaction sa = {0};
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGFPE, &sa, NULL);

    pthread_t t;
    pthread_create(&t, NULL, sender, NULL);
    pthread_join(t, NULL);
    wait_for_it();
    printf("from a thread: %d\n", got);

    got = 0;
    pid_t pid = fork();
    if (pid == 0) {
        kill(getppid(), SIGFPE);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    wait_for_it();
    printf("from a process: %d\n", got);

    signal(SIGFPE, SIG_IGN);
    pthread_create(&t, NULL, sender, NULL);
    pthread_join(t, NULL);
    printf("ignored, still here\n");

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        signal(SIGFPE, SIG_DFL);
        kill(getpid(), SIGFPE);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("default: signaled %d sig %d\n", WIFSIGNALED(status), WTERMSIG(status));
    return 0;
}
