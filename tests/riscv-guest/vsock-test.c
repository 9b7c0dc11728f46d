/*
 * vsock-test: the guest side of Tandem's virtio-vsock tests (static riscv64, in the
 * io-tools archive that scripts/riscv-io-tools.sh builds; /bin/vsock-test in the guest).
 *
 *   vsock-test listen PORT       accept one connection on PORT (any CID), echo everything
 *                                back until the peer shuts its write side, then exit 0.
 *                                Prints "VSOCK-LISTEN PORT" once listening and
 *                                "VSOCK-ECHOED BYTES" at the end (stdout, flushed).
 *   vsock-test connect CID PORT  connect to CID:PORT (the host is CID 2; 1 is the guest's
 *                                own loopback), send stdin, shut the write side at its end,
 *                                copy what comes back to stdout until the peer closes
 *                                (which ends the command even if stdin has more).
 *                                Both directions run at once (poll), so an echo of any
 *                                size cannot fill both buffers and stall.
 *   vsock-test cid               print the guest's CID (IOCTL_VM_SOCKETS_GET_LOCAL_CID on
 *                                /dev/vsock); exits 1 when no transport gives it one.
 *                                Without a virtio-vsock device Linux 6.1 (with
 *                                CONFIG_VSOCKETS_LOOPBACK) answers 1, VMADDR_CID_LOCAL.
 *
 * Exit status: 0 on success, 1 with a message on stderr on any error, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static void fail(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	fputs("vsock-test: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fputc('\n', stderr);
	exit(1);
}

static int usage(void)
{
	fputs("usage: vsock-test listen PORT\n"
	      "       vsock-test connect CID PORT\n"
	      "       vsock-test cid\n", stderr);
	return 2;
}

/* A decimal unsigned 32-bit number, or exit 2. */
static unsigned int number(const char *what, const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v > UINT_MAX || s[0] == '-') {
		fprintf(stderr, "vsock-test: bad %s: %s\n", what, s);
		exit(2);
	}
	return (unsigned int)v;
}

static void write_all(int fd, const char *buf, size_t len, const char *what)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail("write to %s", what);
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void sockaddr(struct sockaddr_vm *sa, unsigned int cid, unsigned int port)
{
	memset(sa, 0, sizeof(*sa));
	sa->svm_family = AF_VSOCK;
	sa->svm_cid = cid;
	sa->svm_port = port;
}

static int vsock_socket(void)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		fail("socket(AF_VSOCK)");
	return fd;
}

static int do_listen(unsigned int port)
{
	struct sockaddr_vm sa;
	static char buf[65536];
	unsigned long long total = 0;
	int lfd = vsock_socket(), fd;

	sockaddr(&sa, VMADDR_CID_ANY, port);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fail("bind port %u", port);
	if (listen(lfd, 1) < 0)
		fail("listen on port %u", port);
	printf("VSOCK-LISTEN %u\n", port);
	fflush(stdout);
	do
		fd = accept(lfd, NULL, NULL);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		fail("accept on port %u", port);
	close(lfd);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail("read from the connection");
		}
		if (n == 0)
			break;
		write_all(fd, buf, (size_t)n, "the connection");
		total += (unsigned long long)n;
	}
	if (close(fd) < 0)
		fail("close the connection");
	printf("VSOCK-ECHOED %llu\n", total);
	fflush(stdout);
	return 0;
}

static int do_connect(unsigned int cid, unsigned int port)
{
	struct sockaddr_vm sa;
	static char buf[65536];
	int fd = vsock_socket();
	int in_open = 1;

	sockaddr(&sa, cid, port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fail("connect to %u:%u", cid, port);
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = in_open ? 0 : -1, .events = POLLIN },
		};
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fail("poll");
		}
		if (p[1].revents) {
			n = read(0, buf, sizeof(buf));
			if (n < 0 && errno != EINTR)
				fail("read stdin");
			if (n == 0) {
				in_open = 0;
				if (shutdown(fd, SHUT_WR) < 0)
					fail("shutdown the write side");
			} else if (n > 0) {
				write_all(fd, buf, (size_t)n, "the connection");
			}
		}
		if (p[0].revents) {
			n = read(fd, buf, sizeof(buf));
			if (n < 0 && errno != EINTR)
				fail("read from the connection");
			if (n == 0)
				break;
			if (n > 0)
				write_all(1, buf, (size_t)n, "stdout");
		}
	}
	close(fd);
	return 0;
}

static int do_cid(void)
{
	unsigned int cid = VMADDR_CID_ANY;
	int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		fail("open /dev/vsock");
	if (ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0)
		fail("IOCTL_VM_SOCKETS_GET_LOCAL_CID");
	close(fd);
	if (cid == VMADDR_CID_ANY) {
		errno = 0;
		fail("no vsock transport gives this machine a CID (no virtio-vsock device?)");
	}
	printf("%u\n", cid);
	return 0;
}

int main(int argc, char **argv)
{
	/* A closed peer or stdout is an error message, not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && !strcmp(argv[1], "listen"))
		return do_listen(number("port", argv[2]));
	if (argc == 4 && !strcmp(argv[1], "connect"))
		return do_connect(number("CID", argv[2]), number("port", argv[3]));
	if (argc == 2 && !strcmp(argv[1], "cid"))
		return do_cid();
	return usage();
}
