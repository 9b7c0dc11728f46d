// Code loaded with read()/readv() over a page that already ran (and so holds translations):
// the kernel must be able to write it and the new code must run.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

typedef long (*fn_t)(long);

static void emit_add(uint32_t *p, int imm) {
    p[0] = ((uint32_t)(imm & 0xfff) << 20) | (10 << 15) | (10 << 7) | 0x13;
    p[1] = 0x00008067;
}

int main(void) {
    uint32_t *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    emit_add(code, 1);
    printf("first: %ld\n", ((fn_t)code)(10));
    char path[] = "/tmp/tandem-jitread-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    uint32_t img[2];
    emit_add(img, 2);
    write(fd, img, sizeof img);
    lseek(fd, 0, SEEK_SET);
    printf("read: %zd\n", read(fd, code, sizeof img));
    printf("after read: %ld\n", ((fn_t)code)(10));
    emit_add(img, 3);
    lseek(fd, 0, SEEK_SET);
    write(fd, img, sizeof img);
    lseek(fd, 0, SEEK_SET);
    struct iovec iov[2] = {{code, 4}, {code + 1, 4}};
    printf("readv: %zd\n", readv(fd, iov, 2));
    printf("after readv: %ld\n", ((fn_t)code)(10));
    return 0;
}
