/* A vsock stream tool for the guest (built static with riscv64-linux-gnu-gcc):
 *
 *   vsock-echo listen PORT      accept one connection on PORT, echo it until EOF, exit
 *   vsock-echo connect CID PORT copy stdin to the socket (then shut its write side) and
 *                               the socket to stdout, both at once, until the peer's EOF
 *
 * Both directions of `connect` run together (poll), so a peer that echoes while it
 * reads never deadlocks against it, whatever the size of the data. Exit status 0 on
 * success, 1 with a message on stderr otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static void die(const char *what) {
    fprintf(stderr, "vsock-echo: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Writes all of buf; returns 0, or -1 on error. */
static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static struct sockaddr_vm address(unsigned cid, unsigned port) {
    struct sockaddr_vm a;
    memset(&a, 0, sizeof a);
    a.svm_family = AF_VSOCK;
    a.svm_cid = cid;
    a.svm_port = port;
    return a;
}

static int listen_echo(unsigned port) {
    int l = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (l < 0)
        die("socket");
    struct sockaddr_vm a = address(VMADDR_CID_ANY, port);
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0)
        die("bind");
    if (listen(l, 1) < 0)
        die("listen");
    int s = accept(l, NULL, NULL);
    if (s < 0)
        die("accept");
    static char buf[65536];
    for (;;) {
        ssize_t n = read(s, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("read");
        if (n == 0)
            break;
        if (write_all(s, buf, (size_t)n) < 0)
            die("write");
    }
    close(s);
    close(l);
    return 0;
}

static int connect_copy(unsigned cid, unsigned port) {
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s < 0)
        die("socket");
    struct sockaddr_vm a = address(cid, port);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    /* Non-blocking writes: a write stalled on the peer's credit must not stop this
     * side from reading what the peer sends back. */
    if (fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK) < 0)
        die("fcntl");
    static char in[65536], out[65536];
    size_t pending = 0, done = 0; /* in[done..pending] waits for the socket */
    int stdin_open = 1;
    for (;;) {
        struct pollfd p[2] = {
            {.fd = s, .events = POLLIN | (pending > done ? POLLOUT : 0)},
            {.fd = stdin_open && pending == done ? 0 : -1, .events = POLLIN},
        };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(s, out, sizeof out);
            if (n < 0 && errno != EINTR && errno != EAGAIN)
                die("read socket");
            if (n == 0)
                break;
            if (n > 0 && write_all(1, out, (size_t)n) < 0)
                die("write stdout");
        }
        if (pending > done && (p[0].revents & POLLOUT)) {
            ssize_t n = write(s, in + done, pending - done);
            if (n < 0 && errno != EINTR && errno != EAGAIN)
                die("write socket");
            if (n > 0)
                done += (size_t)n;
        }
        if (pending == done && stdin_open && p[1].revents) {
            ssize_t n = read(0, in, sizeof in);
            if (n < 0 && errno != EINTR)
                die("read stdin");
            if (n == 0) {
                stdin_open = 0;
                if (shutdown(s, SHUT_WR) < 0)
                    die("shutdown");
            } else if (n > 0) {
                pending = (size_t)n;
                done = 0;
            }
        }
    }
    close(s);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "listen") == 0)
        return listen_echo((unsigned)strtoul(argv[2], NULL, 0));
    if (argc == 4 && strcmp(argv[1], "connect") == 0)
        return connect_copy((unsigned)strtoul(argv[2], NULL, 0),
                            (unsigned)strtoul(argv[3], NULL, 0));
    fprintf(stderr, "usage: vsock-echo listen PORT | connect CID PORT\n");
    return 2;
}
