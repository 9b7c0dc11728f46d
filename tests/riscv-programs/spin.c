// Tight loops that only a signal or another thread can end: the translator keeps such loops
// inside one translated block, which must still notice signals and see other threads' stores.
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/time.h>

static volatile sig_atomic_t alarmed;
static atomic_int go;
static volatile long spins_seen;

static void on_alarm(int s) {
    (void)s;
    alarmed = 1;
}

static void *spinner(void *arg) {
    (void)arg;
    long n = 0;
    while (!atomic_load_explicit(&go, memory_order_acquire)) n++;
    spins_seen = n > 0 ? 1 : 0;
    return NULL;
}

int main(void) {
    signal(SIGALRM, on_alarm);
    struct itimerval t = {.it_value = {.tv_usec = 20000}};
    setitimer(ITIMER_REAL, &t, NULL);
    unsigned long n = 0;
    while (!alarmed) n++; // a one-block loop with no system call
    printf("alarm ended the loop: %s\n", n > 0 ? "yes" : "no");

    pthread_t th;
    pthread_create(&th, NULL, spinner, NULL);
    for (volatile long i = 0; i < 1000000; i++) {
    }
    atomic_store_explicit(&go, 1, memory_order_release);
    pthread_join(th, NULL);
    printf("thread saw the store: yes\n");

    // A counted loop with several live registers, checked against a closed form.
    unsigned long a = 1, b = 0, c = 7;
    for (unsigned long i = 0; i < 10000000; i++) {
        a = a * 6364136223846793005ul + 1442695040888963407ul;
        b += a >> 60;
        c ^= b + i;
    }
    printf("lcg %lx %lx %lx\n", a, b, c);
    return 0;
}
