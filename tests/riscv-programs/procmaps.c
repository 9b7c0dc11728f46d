// /proc/self/maps shows the guest's address space: glibc finds the main thread's stack in it.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    pthread_attr_t attr;
    void *addr;
    size_t size;
    int local = 0;
    int r = pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstack(&attr, &addr, &size);
    char *lo = addr, *hi = lo + size;
    printf("getattr: %d, local inside stack: %d\n", r, (char *)&local > lo && (char *)&local < hi);
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int stack_lines = 0, main_found = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && (unsigned long)&main >= a &&
            (unsigned long)&main < b && strstr(line, "r-x"))
            main_found = 1;
        if (strstr(line, "[stack]")) stack_lines++;
    }
    printf("maps: stack lines=%d main in r-x mapping=%d\n", stack_lines, main_found);
    return 0;
}
