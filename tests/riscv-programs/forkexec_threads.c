// fork + execve from a multithreaded parent whose other threads keep writing and
// translating code: each child first runs code the parent translated, then execs this
// program again, which must start a fresh translator.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

typedef long (*fn_t)(long);

static long work(long x) {
    for (int i = 0; i < 50; i++) x = x * 7 + (x >> 3) + i;
    return x & 0xffff;
}

static volatile int stop;

// addi a0, a0, imm ; ret, rewritten and run over and over.
static void *jitter(void *arg) {
    uint32_t *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) return NULL;
    long n = 0, sum = 0;
    while (!stop) {
        uint32_t *p = code + 2 * (n % 16);
        p[0] = ((uint32_t)(n % 1000) << 20) | (10 << 15) | (10 << 7) | 0x13;
        p[1] = 0x00008067;
        __builtin___clear_cache((char *)p, (char *)(p + 2));
        sum += ((fn_t)p)(1) + work(n);
        n++;
    }
    return (void *)(sum & 1);
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "child") == 0) {
        int k = atoi(argv[2]);
        printf("exec'd child %d: work %ld\n", k, work(k));
        return 20 + k;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    long w = 0;
    for (int i = 0; i < 100; i++) w += work(i);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, jitter, NULL);
    for (int k = 0; k < 4; k++) {
        usleep(2000);
        pid_t pid = fork();
        if (pid == 0) {
            char arg[16];
            snprintf(arg, sizeof arg, "%d", k);
            if (work(k) != work(k)) _exit(99);
            execl("/proc/self/exe", argv[0], "child", arg, (char *)NULL);
            _exit(98);
        }
        int st;
        waitpid(pid, &st, 0);
        printf("child %d exited %d\n", k, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
    stop = 1;
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    printf("parent done %ld\n", w);
    return 0;
}
