/* sock_errors: malformed arguments to the socket calls, through raw
 * syscall(2) so libc neither hides nor adds errors. */
#include "sock_common.h"
#include <sys/syscall.h>

int main(void)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    char big[200] = {0};
    int p[2];
    pipe(p);
    show("socket bad domain", syscall(SYS_socket, 9999, SOCK_STREAM, 0));
    show("socket AF_UNSPEC", syscall(SYS_socket, AF_UNSPEC, SOCK_STREAM, 0));
    show("socket bad type", syscall(SYS_socket, AF_INET, 77, 0));
    show("socket bad flags", syscall(SYS_socket, AF_INET, SOCK_STREAM | 0x100000, 0));
    show("socket type 0", syscall(SYS_socket, AF_INET, 0, 0));
    show("socket tcp proto udp", syscall(SYS_socket, AF_INET, SOCK_STREAM, IPPROTO_UDP));
    show("socket inet seqpacket", syscall(SYS_socket, AF_INET, SOCK_SEQPACKET, 0));
    show("socket unix bad proto", syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 5));
    show("socket unix type 0", syscall(SYS_socket, AF_UNIX, 0, 0));
    show("socketpair bad pointer", syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, 8));
    int s = socket(AF_INET, SOCK_STREAM, 0);
    show("bind short sockaddr_in", syscall(SYS_bind, s, &in, 8));
    show("bind len 1", syscall(SYS_bind, s, &in, 1));
    show("bind len 129", syscall(SYS_bind, s, big, 129));
    show("bind negative len", syscall(SYS_bind, s, &in, -1));
    show("bind bad pointer", syscall(SYS_bind, s, 8, sizeof in));
    struct sockaddr_in wrong = in;
    wrong.sin_family = AF_INET6;
    show("bind wrong family", syscall(SYS_bind, s, &wrong, sizeof wrong));
    struct sockaddr_in remote = in;
    remote.sin_addr.s_addr = htonl(0x0a000001);
    show("bind non-local address", syscall(SYS_bind, s, &remote, sizeof remote));
    show("connect short sockaddr_in", syscall(SYS_connect, s, &in, 8));
    show("connect len 0", syscall(SYS_connect, s, &in, 0));
    show("connect port 0", syscall(SYS_connect, s, &in, sizeof in));
    int s6 = socket(AF_INET6, SOCK_STREAM, 0);
    show("bind6 short", syscall(SYS_bind, s6, &in6, 20));
    show("connect6 with sockaddr_in", syscall(SYS_connect, s6, &in, sizeof in));
    show("bind not a socket", syscall(SYS_bind, p[0], &in, sizeof in));
    show("listen bad fd", syscall(SYS_listen, 999, 1));
    show("listen not a socket", syscall(SYS_listen, p[0], 1));
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    show("shutdown not connected", syscall(SYS_shutdown, ls, SHUT_RD));
    show("listen backlog -1", syscall(SYS_listen, ls, -1));
    show("listen again huge", syscall(SYS_listen, ls, 1 << 30));
    show("accept4 bad flags", syscall(SYS_accept4, ls, 0, 0, 0x1));
    socklen_t neg = -1;
    show("getsockname negative len", syscall(SYS_getsockname, s, big, &neg));
    show("getsockname bad len pointer", syscall(SYS_getsockname, s, big, 8));
    socklen_t tiny = 2;
    show("getsockname short buffer", syscall(SYS_getsockname, s, big, &tiny));
    showb("full length reported", tiny);
    int v;
    socklen_t vl = 2;
    show("getsockopt short optlen", syscall(SYS_getsockopt, s, SOL_SOCKET, SO_TYPE, &v, &vl));
    showb("optlen now", vl);
    vl = -1;
    show("getsockopt negative optlen", syscall(SYS_getsockopt, s, SOL_SOCKET, SO_TYPE, &v, &vl));
    vl = 4;
    show("getsockopt bad level", syscall(SYS_getsockopt, s, 9999, 1, &v, &vl));
    show("getsockopt bad value ptr", syscall(SYS_getsockopt, s, SOL_SOCKET, SO_TYPE, 8, &vl));
    show("setsockopt negative len", syscall(SYS_setsockopt, s, SOL_SOCKET, SO_KEEPALIVE, &v, -1));
    show("setsockopt bad ptr", syscall(SYS_setsockopt, s, SOL_SOCKET, SO_KEEPALIVE, 8, 4));
    show("setsockopt SO_TYPE", syscall(SYS_setsockopt, s, SOL_SOCKET, SO_TYPE, &v, 4));
    show("shutdown bad how", syscall(SYS_shutdown, s, 3));
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    show("sendto short addr", syscall(SYS_sendto, u, "x", 1, 0, &in, 4));
    show("sendto len 129", syscall(SYS_sendto, u, "x", 1, 0, big, 129));
    struct sockaddr_in self = in;
    socklen_t sl = sizeof self;
    bind(u, (void *)&self, sizeof self);
    getsockname(u, (void *)&self, &sl);
    show("sendto bad buffer", syscall(SYS_sendto, u, 8, 1, 0, &self, sizeof self));
    show("recvfrom bad addrlen ptr", syscall(SYS_recvfrom, u, big, 1, MSG_DONTWAIT, big, 8));
    show("recvmsg bad msghdr", syscall(SYS_recvmsg, u, 8, 0));
    show("sendmmsg bad vector", syscall(SYS_sendmmsg, u, 8, 1, 0));
    show("recv MSG_OOB udp", syscall(SYS_recvfrom, u, big, 1, MSG_OOB | MSG_DONTWAIT, 0, 0));
    int x = socket(AF_UNIX, SOCK_STREAM, 0);
    show("recv MSG_OOB unix", syscall(SYS_recvfrom, x, big, 1, MSG_OOB, 0, 0));
    show("accept unix not listening", syscall(SYS_accept, x, 0, 0));
    show("getsockopt unix tcp level", syscall(SYS_getsockopt, x, IPPROTO_TCP, TCP_NODELAY, &v, &vl));
    return 0;
}
