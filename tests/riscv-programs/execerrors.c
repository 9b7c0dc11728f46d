// execve's refusals reach the caller as errno: a file without execute permission (EACCES),
// a malformed RISC-V ELF (ENOEXEC), a directory (EACCES), a missing file (ENOENT).
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void try(const char *what, const char *path) {
    char *argv[] = {(char *)path, 0};
    execv(path, argv);
    printf("%s: %s\n", what, strerror(errno));
}

int main(void) {
    char dir[] = "/tmp/execerrors.XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char noexec[64], bad[64], trunc[64];
    snprintf(noexec, sizeof noexec, "%s/noexec", dir);
    snprintf(bad, sizeof bad, "%s/bad", dir);
    snprintf(trunc, sizeof trunc, "%s/trunc", dir);

    // A copy of this very program without execute permission.
    int in = open("/proc/self/exe", O_RDONLY);
    int out = open(noexec, O_WRONLY | O_CREAT, 0644);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) write(out, buf, n);
    close(in);
    close(out);
    try("no execute permission", noexec);

    // A RISC-V ELF header whose program headers lie past the end of the file.
    unsigned char h[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    h[16] = 2;            // ET_EXEC
    h[18] = 243;          // EM_RISCV
    h[20] = 1;            // EV_CURRENT
    h[32] = 0x40; h[33] = 0x10;   // e_phoff far away
    h[54] = 56;           // e_phentsize
    h[56] = 1;            // e_phnum
    out = open(bad, O_WRONLY | O_CREAT, 0755);
    write(out, h, sizeof h);
    close(out);
    try("malformed ELF", bad);

    // Only the first 20 bytes of an ELF header.
    out = open(trunc, O_WRONLY | O_CREAT, 0755);
    write(out, h, 20);
    close(out);
    try("truncated ELF", trunc);

    try("directory", dir);
    try("missing", "/nonexistent/program");

    unlink(noexec);
    unlink(bad);
    unlink(trunc);
    rmdir(dir);
    return 0;
}
