// ioctls beyond the basic terminal ones: TCSBRKP on a pseudo-terminal, interface name and
// index lookups on a socket (SIOCGIFINDEX / SIOCGIFNAME for the loopback device).
#define _GNU_SOURCE
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

int main(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    grantpt(m);
    unlockpt(m);
    int s = open(ptsname(m), O_RDWR | O_NOCTTY);
    printf("TCSBRKP: %d\n", ioctl(s, TCSBRKP, 0));
    printf("tcsendbreak: %d\n", tcsendbreak(s, 0));
    printf("tcdrain: %d\n", tcdrain(s));

    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    int r = ioctl(sock, SIOCGIFINDEX, &ifr);
    int idx = ifr.ifr_ifindex;
    printf("SIOCGIFINDEX lo: %d, index matches if_nametoindex: %d\n", r, idx == (int)if_nametoindex("lo"));
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = idx;
    r = ioctl(sock, SIOCGIFNAME, &ifr);
    printf("SIOCGIFNAME %s: %d\n", ifr.ifr_name, r);
    char name[IF_NAMESIZE];
    printf("if_indextoname: %s\n", if_indextoname(idx, name));
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    r = ioctl(sock, SIOCGIFFLAGS, &ifr);
    printf("SIOCGIFFLAGS lo: %d loopback %d\n", r, !!(ifr.ifr_flags & IFF_LOOPBACK));
    printf("unknown ioctl: %d\n", ioctl(sock, 0x1234abcd, 0));
    return 0;
}
