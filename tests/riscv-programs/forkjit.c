// fork keeps the translations a process inherits, and each process's code stays its own:
// the parent translates (hot, compiled and chained) a JIT-written function and a body of
// ordinary code, forks, and the child runs both; then the child rewrites its copy of the
// JIT code (the parent's must not change), the parent rewrites its own (the child's must not
// change); a grandchild does the same one level down; last, children forked while other
// threads keep writing and translating code of their own (none may deadlock on a lock one
// of those threads held, and a child can start threads of its own).
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

typedef long (*fn_t)(long);

// addi a0, a0, imm ; ret
static void emit_add(uint32_t *p, int imm) {
    p[0] = ((uint32_t)(imm & 0xfff) << 20) | (10 << 15) | (10 << 7) | 0x13;
    p[1] = 0x00008067;
    __builtin___clear_cache((char *)p, (char *)(p + 2));
}

static long call(uint32_t *code, long x) { return ((fn_t)code)(x); }

// Many distinct blocks of ordinary code.
#include "manyblocks.h"

static uint32_t *rwx(void) {
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

static volatile int stop;

// Keeps rewriting and running code of its own: translations, invalidations, SMC faults.
static void *jitter(void *arg) {
    uint32_t *code = rwx();
    long n = 0, sum = 0;
    while (!stop) {
        emit_add(code + 2 * (n % 16), (int)(n % 1000));
        sum += call(code + 2 * (n % 16), 1) + work(n);
        n++;
    }
    return (void *)(sum & 1);
}

static void *child_thread(void *arg) { return (void *)work((long)arg); }

static int status_of(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    uint32_t *code = rwx();
    emit_add(code, 1);
    long s = 0;
    for (int i = 0; i < 100; i++) s += call(code, i) + work(i);
    printf("parent before fork: %ld\n", s);

    int c2p[2], p2c[2];
    if (pipe(c2p) || pipe(p2c)) return 1;
    char c;
    pid_t pid = fork();
    if (pid == 0) {
        printf("child: inherited %ld, work %ld\n", call(code, 10), work(1));
        emit_add(code, 100);
        printf("child: rewritten %ld\n", call(code, 10));
        if (write(c2p[1], "x", 1) != 1 || read(p2c[0], &c, 1) != 1) _exit(90);
        printf("child: after the parent's rewrite %ld\n", call(code, 10));
        pid_t g = fork();
        if (g == 0) {
            printf("grandchild: inherited %ld, work %ld\n", call(code, 10), work(2));
            emit_add(code, 7);
            printf("grandchild: rewritten %ld\n", call(code, 10));
            _exit(3);
        }
        int gs = status_of(g);
        printf("child: grandchild exited %d, mine still %ld\n", gs, call(code, 10));
        _exit(5);
    }
    if (read(c2p[0], &c, 1) != 1) return 1;
    printf("parent: after the child's rewrite %ld\n", call(code, 10));
    emit_add(code, 1000);
    printf("parent: rewritten %ld\n", call(code, 10));
    if (write(p2c[1], "x", 1) != 1) return 1;
    printf("parent: child exited %d\n", status_of(pid));

    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, jitter, NULL);
    for (int k = 0; k < 8; k++) {
        usleep(2000);
        pid = fork();
        if (pid == 0) {
            long a = call(code, k);
            emit_add(code, k);
            long b = call(code, k);
            pthread_t t;
            void *r;
            if (pthread_create(&t, NULL, child_thread, (void *)(long)k) || pthread_join(t, &r)) _exit(91);
            _exit(a == 1000 + k && b == 2 * k && (long)r == work(k) ? 10 + k : 92);
        }
        printf("threaded fork %d: child exited %d\n", k, status_of(pid));
    }
    stop = 1;
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    printf("parent: end %ld\n", call(code, 10));
    return 0;
}
