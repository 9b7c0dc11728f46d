// glibc's reserved signals under a multithreaded guest: setgroups/setegid/seteuid broadcast
// the change to every thread with signal 33 (SIGSETXID), and pthread_cancel sends signal 32
// (SIGCANCEL) to the target thread, deferred (blocked in read) and asynchronous (spinning).
#define _GNU_SOURCE
#include <grp.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_barrier_t ready, checked;
static long thread_euid[2], thread_egid[2];

static void *watcher(void *arg) {
    long i = (long)arg;
    pthread_barrier_wait(&ready);   // main changes the credentials now
    pthread_barrier_wait(&checked);
    // Raw system calls: the kernel's per-thread credentials, not a cached value.
    thread_euid[i] = syscall(SYS_geteuid);
    thread_egid[i] = syscall(SYS_getegid);
    return 0;
}

static int cleaned;
static void cleanup(void *p) { (void)p; cleaned++; }

static void *blocked_reader(void *arg) {
    int fd = *(int *)arg;
    char c;
    pthread_cleanup_push(cleanup, 0);
    for (;;) read(fd, &c, 1);       // a cancellation point that blocks forever
    pthread_cleanup_pop(0);
    return 0;
}

static volatile unsigned long spins;
static void *spinner(void *arg) {
    (void)arg;
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, 0);
    pthread_cleanup_push(cleanup, 0);
    for (;;) spins++;               // translated code with no system call at all
    pthread_cleanup_pop(0);
    return 0;
}

int main(void) {
    int root = geteuid() == 0;
    pthread_t w[2];
    pthread_barrier_init(&ready, 0, 3);
    pthread_barrier_init(&checked, 0, 3);
    for (long i = 0; i < 2; i++) pthread_create(&w[i], 0, watcher, (void *)i);
    pthread_barrier_wait(&ready);
    int r1 = setgroups(0, 0);
    int r2 = setegid(root ? 4321 : getegid());
    int r3 = seteuid(root ? 1234 : geteuid());
    pthread_barrier_wait(&checked);
    for (int i = 0; i < 2; i++) pthread_join(w[i], 0);
    printf("set calls: %d %d %d\n", r1 == 0 || !root, r2, r3);
    for (int i = 0; i < 2; i++)
        printf("thread %d: euid %s egid %s\n", i,
               thread_euid[i] == (root ? 1234 : (long)geteuid()) ? "changed" : "stale",
               thread_egid[i] == (root ? 4321 : (long)getegid()) ? "changed" : "stale");
    if (root) { seteuid(0); setegid(0); }
    printf("main back: %d\n", geteuid() == (root ? 0 : geteuid()));

    int p[2];
    pipe(p);
    pthread_t r;
    pthread_create(&r, 0, blocked_reader, &p[0]);
    usleep(20000);
    void *ret;
    printf("cancel blocked: %d\n", pthread_cancel(r));
    pthread_join(r, &ret);
    printf("blocked reader canceled: %d, cleanup ran %d\n", ret == PTHREAD_CANCELED, cleaned);

    pthread_t s;
    pthread_create(&s, 0, spinner, 0);
    while (spins < 1000) ;
    printf("cancel spinner: %d\n", pthread_cancel(s));
    pthread_join(s, &ret);
    printf("spinner canceled: %d, cleanup ran %d\n", ret == PTHREAD_CANCELED, cleaned);
    return 0;
}
