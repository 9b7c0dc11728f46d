// POSIX timers (signal and thread notification), setitimer, preadv2.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms, usr2s;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int thread_fired;

static void on_alarm(int s) { (void)s; alarms++; }
static void on_usr2(int s) { (void)s; usr2s++; }
static void notify(union sigval v) {
    pthread_mutex_lock(&m);
    thread_fired = v.sival_int;
    pthread_cond_signal(&c);
    pthread_mutex_unlock(&m);
}

int main(void) {
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, &old);
    signal(SIGUSR2, on_usr2);
    signal(SIGALRM, on_alarm);

    struct sigevent sev = {0};
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR2;
    timer_t t;
    printf("timer_create: %d\n", timer_create(CLOCK_MONOTONIC, &sev, &t));
    struct itimerspec its = {{0, 0}, {0, 5000000}};
    printf("timer_settime: %d\n", timer_settime(t, 0, &its, NULL));
    sigset_t wait;
    sigfillset(&wait);
    sigdelset(&wait, SIGUSR2);
    while (!usr2s) sigsuspend(&wait);
    printf("signal timer fired: %d\n", (int)usr2s);
    timer_delete(t);

    struct itimerval iv = {{0, 0}, {0, 5000}};
    setitimer(ITIMER_REAL, &iv, NULL);
    sigdelset(&wait, SIGALRM);
    while (!alarms) sigsuspend(&wait);
    printf("itimer fired: %d\n", (int)alarms);

    sev.sigev_notify = SIGEV_THREAD;
    sev.sigev_notify_function = notify;
    sev.sigev_value.sival_int = 77;
    timer_create(CLOCK_REALTIME, &sev, &t);
    timer_settime(t, 0, &its, NULL);
    pthread_mutex_lock(&m);
    while (!thread_fired) pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    printf("thread timer fired with value %d\n", thread_fired);

    char path[] = "/tmp/tandem-timers-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    write(fd, "0123456789", 10);
    char a[3] = {0}, b[4] = {0};
    struct iovec iov[2] = {{a, 2}, {b, 3}};
    printf("preadv2: %zd '%s' '%s'\n", preadv2(fd, iov, 2, 4, 0), a, b);
    return 0;
}
