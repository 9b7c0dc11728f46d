// Executable memory holding an illegal instruction: the default SIGILL action ends the process.
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int main(void) {
    unsigned char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(p, 0xff, 4096); // not a valid RV64GC encoding
    printf("jumping\n");
    fflush(stdout);
    ((void (*)(void))p)();
    printf("not reached\n");
    return 0;
}
