// File I/O, directories, stat, pipes, dup, fcntl, cwd: output must match a real kernel's.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

int main(void) {
    char dir[] = "/tmp/tandem-files-XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    if (chdir(dir) != 0) { perror("chdir"); return 1; }
    char cwd[4096];
    printf("cwd matches: %d\n", getcwd(cwd, sizeof cwd) && strcmp(cwd, dir) == 0);

    int fd = open("a.txt", O_CREAT | O_WRONLY | O_TRUNC, 0640);
    const char *msg = "hello file\nsecond line\n";
    printf("write: %zd\n", write(fd, msg, strlen(msg)));
    struct iovec iov[2] = {{"abc", 3}, {"defg\n", 5}};
    printf("writev: %zd\n", writev(fd, iov, 2));
    close(fd);

    struct stat st;
    printf("stat: %d size=%lld mode=%o nlink=%u isreg=%d\n", stat("a.txt", &st),
           (long long)st.st_size, st.st_mode & 0777, (unsigned)st.st_nlink, S_ISREG(st.st_mode));
    fd = open("a.txt", O_RDONLY);
    struct stat fst;
    fstat(fd, &fst);
    printf("fstat same inode: %d\n", fst.st_ino == st.st_ino);
    char buf[64] = {0};
    printf("pread: %zd '%.5s'\n", pread(fd, buf, 5, 6), buf);
    printf("lseek: %lld\n", (long long)lseek(fd, -9, SEEK_END));
    memset(buf, 0, sizeof buf);
    printf("read: %zd '%s'\n", read(fd, buf, sizeof buf - 1), buf);
    int fd2 = dup(fd);
    printf("dup cloexec=%d\n", fcntl(fd2, F_GETFD));
    fcntl(fd2, F_SETFD, FD_CLOEXEC);
    printf("after setfd cloexec=%d\n", fcntl(fd2, F_GETFD));
    close(fd2);
    close(fd);

    FILE *f = fopen("a.txt", "r");
    char line[64];
    while (fgets(line, sizeof line, f)) printf("line: %s", line);
    fclose(f);

    mkdir("sub", 0755);
    close(open("sub/x", O_CREAT | O_WRONLY, 0600));
    close(open("sub/y", O_CREAT | O_WRONLY, 0600));
    symlink("x", "sub/link");
    char target[64] = {0};
    printf("readlink: %zd '%s'\n", readlink("sub/link", target, sizeof target), target);
    rename("sub/y", "sub/z");
    DIR *d = opendir("sub");
    char *names[16];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 16) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    for (int i = 0; i < n; i++) printf("entry: %s\n", names[i]);
    printf("lstat link is symlink: %d\n", lstat("sub/link", &st) == 0 && S_ISLNK(st.st_mode));
    printf("access missing: %d errno=%d\n", access("nope", F_OK), errno);
    printf("open missing: %d errno=%d\n", open("nope", O_RDONLY), errno);

    int p[2];
    pipe(p);
    write(p[1], "through the pipe", 16);
    close(p[1]);
    memset(buf, 0, sizeof buf);
    printf("pipe read: %zd '%s'\n", read(p[0], buf, sizeof buf), buf);
    printf("pipe eof: %zd\n", read(p[0], buf, sizeof buf));
    close(p[0]);

    unlink("sub/link");
    unlink("sub/x");
    unlink("sub/z");
    printf("rmdir: %d\n", rmdir("sub"));
    unlink("a.txt");
    chdir("/");
    printf("rmdir tmp: %d\n", rmdir(dir));
    return 0;
}
