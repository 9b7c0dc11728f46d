// Sockets: a TCP connection over loopback, epoll, socketpair with sendmsg/recvmsg passing a
// file descriptor (SCM_RIGHTS), getsockopt.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int main(void) {
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    printf("bind: %d listen: %d\n", bind(ls, (struct sockaddr *)&a, sizeof a), listen(ls, 4));
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    printf("port assigned: %d len=%u\n", ntohs(a.sin_port) != 0, al);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    printf("connect: %d\n", connect(c, (struct sockaddr *)&a, sizeof a));
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    int s = accept(ls, (struct sockaddr *)&peer, &pl);
    printf("accept ok: %d family=%d\n", s >= 0, peer.sin_family);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1122334455667788ull};
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    struct epoll_event out[4];
    printf("epoll before send: %d\n", epoll_wait(ep, out, 4, 0));
    printf("send: %zd\n", send(c, "ping over tcp", 13, 0));
    int n = epoll_wait(ep, out, 4, 1000);
    printf("epoll after send: %d events=%#x data=%#llx\n", n, out[0].events,
           (unsigned long long)out[0].data.u64);
    char buf[64] = {0};
    printf("recv: %zd '%s'\n", recv(s, buf, sizeof buf, 0), buf);
    int type;
    socklen_t tl = sizeof type;
    getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &tl);
    printf("SO_TYPE: %d len=%u\n", type, tl);
    close(c);
    close(s);
    close(ls);

    int sp[2], p[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
    pipe(p);
    char data[] = "fd follows";
    struct iovec iov = {data, sizeof data};
    char ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof ctl);
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                       .msg_controllen = sizeof ctl};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
    printf("sendmsg: %zd\n", sendmsg(sp[0], &m, 0));
    char rbuf[32] = {0};
    char rctl[CMSG_SPACE(sizeof(int))];
    struct iovec riov = {rbuf, sizeof rbuf};
    struct msghdr rm = {.msg_iov = &riov, .msg_iovlen = 1, .msg_control = rctl,
                        .msg_controllen = sizeof rctl};
    printf("recvmsg: %zd '%s' controllen=%zu\n", recvmsg(sp[1], &rm, 0), rbuf,
           (size_t)rm.msg_controllen);
    int got;
    memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&rm)), sizeof got);
    write(got, "via passed fd", 13);
    memset(buf, 0, sizeof buf);
    printf("pipe through passed fd: %zd '%s'\n", read(p[0], buf, sizeof buf), buf);

    int dg[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, dg);
    struct iovec siov[2] = {{"first", 5}, {"second!", 7}};
    struct mmsghdr sm[2];
    memset(sm, 0, sizeof sm);
    for (int i = 0; i < 2; i++) sm[i].msg_hdr.msg_iov = &siov[i], sm[i].msg_hdr.msg_iovlen = 1;
    printf("sendmmsg: %d lens %u %u\n", sendmmsg(dg[0], sm, 2, 0), sm[0].msg_len, sm[1].msg_len);
    char r1[16] = {0}, r2[16] = {0};
    struct iovec riov2[2] = {{r1, sizeof r1}, {r2, sizeof r2}};
    struct mmsghdr rmm[2];
    memset(rmm, 0, sizeof rmm);
    for (int i = 0; i < 2; i++) rmm[i].msg_hdr.msg_iov = &riov2[i], rmm[i].msg_hdr.msg_iovlen = 1;
    printf("recvmmsg: %d lens %u %u '%s' '%s'\n", recvmmsg(dg[1], rmm, 2, 0, NULL), rmm[0].msg_len,
           rmm[1].msg_len, r1, r2);
    return 0;
}
