/* Message flags Linux refuses: MSG_ERRQUEUE with an empty error queue
 * (EAGAIN) on TCP and UDP, MSG_OOB on UDP and unix datagram sends. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void report(const char *what, long r) {
    printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "ok");
}

int main(void) {
    char buf[16];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 1);
    getsockname(l, (struct sockaddr *)&a, &len);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    connect(cfd, (struct sockaddr *)&a, sizeof a);
    int s = accept(l, NULL, NULL);
    report("tcp recv MSG_ERRQUEUE", recv(s, buf, sizeof buf, MSG_ERRQUEUE));
    report("tcp send MSG_OOB", send(cfd, "x", 1, MSG_OOB));
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ua = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(u, (struct sockaddr *)&ua, sizeof ua);
    len = sizeof ua;
    getsockname(u, (struct sockaddr *)&ua, &len);
    report("udp sendto MSG_OOB", sendto(u, "x", 1, MSG_OOB, (struct sockaddr *)&ua, sizeof ua));
    report("udp recvfrom MSG_ERRQUEUE", recvfrom(u, buf, sizeof buf, MSG_ERRQUEUE, NULL, NULL));
    struct msghdr mh = {0};
    report("udp recvmsg MSG_ERRQUEUE", recvmsg(u, &mh, MSG_ERRQUEUE));
    int d[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, d);
    report("unix dgram send MSG_OOB", send(d[0], "x", 1, MSG_OOB));
    return 0;
}
