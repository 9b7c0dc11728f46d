// Assorted syscalls: clocks, sleeping, poll/select, random, identity, limits, uname.
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    struct timespec a, b, req = {0, 2000000};
    clock_gettime(CLOCK_MONOTONIC, &a);
    nanosleep(&req, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ns = (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
    printf("slept at least 2ms: %d\n", ns >= 2000000);
    printf("realtime after 2020: %d\n", time(NULL) > 1577836800);

    int p[2];
    pipe(p);
    struct pollfd pf = {p[0], POLLIN, 0};
    printf("poll empty: %d\n", poll(&pf, 1, 0));
    write(p[1], "x", 1);
    printf("poll ready: %d revents=%d\n", poll(&pf, 1, 0), pf.revents);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {0, 0};
    printf("select: %d isset=%d\n", select(p[0] + 1, &rs, NULL, NULL, &tv), FD_ISSET(p[0], &rs));

    unsigned char buf[32];
    printf("getrandom: %zd\n", getrandom(buf, sizeof buf, 0));
    struct utsname u;
    uname(&u);
    printf("machine: %s\n", u.machine);
    struct rlimit rl;
    printf("getrlimit: %d\n", getrlimit(RLIMIT_NOFILE, &rl));
    printf("pid positive: %d ppid positive: %d\n", getpid() > 0, getppid() > 0);
    printf("uid matches euid: %d\n", getuid() == geteuid());
    printf("sysconf pagesize: %ld\n", sysconf(_SC_PAGESIZE));
    printf("bad fd: %zd errno=%d\n", write(999, "x", 1), errno);
    char cwd[8];
    printf("getcwd small buffer: %p errno=%d\n", (void *)getcwd(cwd, 1), errno);
    return 0;
}
