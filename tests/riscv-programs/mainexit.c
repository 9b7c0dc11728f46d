// The main thread exits with pthread_exit while another thread goes on; the process ends
// when the last thread does, with glibc's exit status.
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_t main_thread;

static void *worker(void *arg) {
    (void)arg;
    pthread_join(main_thread, NULL);
    printf("worker: main thread gone, finishing\n");
    fflush(stdout);
    return NULL;
}

int main(void) {
    main_thread = pthread_self();
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    printf("main: exiting thread\n");
    fflush(stdout);
    pthread_exit(NULL);
}
