// Standard descriptors the program was started without stay closed (the Rust runtime under
// Tandem opens /dev/null on them; the guest must not see that), and the next open takes the
// lowest free number. Run with descriptors 0 and 2 closed.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

int main(void) {
    for (int fd = 0; fd < 3; fd++) {
        int r = fcntl(fd, F_GETFD);
        printf("fd %d: %s\n", fd, r == -1 && errno == EBADF ? "closed" : "open");
    }
    printf("next open: %d\n", open("/dev/null", O_RDONLY));
    return 0;
}
