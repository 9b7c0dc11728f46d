// Threads with mutexes, condition variables and atomics (LR/SC, AMOs) across host threads.
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>

#define THREADS 4
#define ITERS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long counter;
static atomic_long acounter;
static atomic_int cas_counter;
static int queue[16], head, tail, produced_done;
static long consumed_sum;

static void *worker(void *arg) {
    long id = (long)arg;
    for (int i = 0; i < ITERS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
        atomic_fetch_add(&acounter, 2);
        int old = atomic_load(&cas_counter);
        while (!atomic_compare_exchange_weak(&cas_counter, &old, old + 1)) {
        }
    }
    return (void *)(id * 10);
}

static void *producer(void *arg) {
    (void)arg;
    for (int i = 1; i <= 1000; i++) {
        pthread_mutex_lock(&lock);
        while (tail - head == 16) pthread_cond_wait(&cond, &lock);
        queue[tail++ % 16] = i;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    produced_done = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (head == tail && !produced_done) pthread_cond_wait(&cond, &lock);
        if (head == tail && produced_done) {
            pthread_mutex_unlock(&lock);
            return NULL;
        }
        consumed_sum += queue[head++ % 16];
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
}

static __thread int tls_value = 5;
static void *tls_worker(void *arg) {
    tls_value += (int)(long)arg;
    return (void *)(long)tls_value;
}

static volatile sig_atomic_t usr1_seen;
static pthread_t target;
static void on_usr1(int sig) {
    (void)sig;
    usr1_seen = pthread_equal(pthread_self(), target) ? 1 : 2;
}
static void *spinner(void *arg) {
    (void)arg;
    while (!usr1_seen) sched_yield();
    return NULL;
}

int main(void) {
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    long rets = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        rets += (long)r;
    }
    printf("mutex counter: %ld (expect %d)\n", counter, THREADS * ITERS);
    printf("atomic counter: %ld (expect %d)\n", (long)acounter, 2 * THREADS * ITERS);
    printf("cas counter: %d (expect %d)\n", (int)cas_counter, THREADS * ITERS);
    printf("join values: %ld\n", rets);

    pthread_t p, c[3];
    pthread_create(&p, NULL, producer, NULL);
    for (int i = 0; i < 3; i++) pthread_create(&c[i], NULL, consumer, NULL);
    pthread_join(p, NULL);
    for (int i = 0; i < 3; i++) pthread_join(c[i], NULL);
    printf("consumed sum: %ld (expect %d)\n", consumed_sum, 1000 * 1001 / 2);

    pthread_t tt[2];
    long tv = 0;
    for (long i = 0; i < 2; i++) pthread_create(&tt[i], NULL, tls_worker, (void *)(i + 1));
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(tt[i], &r);
        tv += (long)r;
    }
    printf("tls: main=%d threads=%ld\n", tls_value, tv);

    // A signal aimed at one thread runs its handler on that thread.
    signal(SIGUSR1, on_usr1);
    pthread_create(&target, NULL, spinner, NULL);
    pthread_kill(target, SIGUSR1);
    pthread_join(target, NULL);
    printf("pthread_kill handled on target: %d\n", (int)usr1_seen);
    return 0;
}
