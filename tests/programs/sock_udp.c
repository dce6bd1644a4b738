/* sock_udp: loopback UDP over IPv4 and IPv6: datagrams with addresses,
 * truncation (MSG_TRUNC), a datagram larger than the receive buffer,
 * connected sockets and the refusal that follows a send to a closed port. */
#include "sock_common.h"

static int bound(int fam, const char *ip)
{
    int s = socket(fam, SOCK_DGRAM, 0);
    struct sockaddr_storage ss = {0};
    socklen_t n;
    if (fam == AF_INET) {
        struct sockaddr_in *a = (void *)&ss;
        a->sin_family = AF_INET;
        inet_pton(AF_INET, ip, &a->sin_addr);
        n = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (void *)&ss;
        a->sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &a->sin6_addr);
        n = sizeof *a;
    }
    if (bind(s, (void *)&ss, n) < 0)
        perror("bind");
    return s;
}

static void run(int fam, const char *ip, const char *label)
{
    char name[80], buf[70000];
    struct sockaddr_storage to, from;
    socklen_t tolen = sizeof to, fromlen;
    int r = bound(fam, ip), s = socket(fam, SOCK_DGRAM, 0);
    getsockname(r, (void *)&to, &tolen);
    printf("%s name len %d\n", label, (int)tolen);
    snprintf(name, sizeof name, "%s sendto", label);
    show(name, sendto(s, "datagram one", 12, 0, (void *)&to, tolen));
    show("sendto second", sendto(s, "two", 3, 0, (void *)&to, tolen));
    fromlen = sizeof from;
    show("recvfrom short buffer", recvfrom(r, buf, 4, 0, (void *)&from, &fromlen));
    printf("from len %d family ok %d\n", (int)fromlen, from.ss_family == fam);
    show("recv next whole", recv(r, buf, sizeof buf, 0));
    show("recv empty nonblock", recv(r, buf, sizeof buf, MSG_DONTWAIT));
    sendto(s, "truncate me", 11, 0, (void *)&to, tolen);
    show("recv MSG_TRUNC real length", recv(r, buf, 3, MSG_TRUNC));
    sendto(s, "peek", 4, 0, (void *)&to, tolen);
    show("recv MSG_PEEK", recv(r, buf, sizeof buf, MSG_PEEK));
    int avail = -1;
    ioctl(r, FIONREAD, &avail);
    showb("FIONREAD", avail);
    show("recv after peek", recv(r, buf, sizeof buf, 0));
    /* recvmsg reports truncation in msg_flags */
    sendto(s, "0123456789", 10, 0, (void *)&to, tolen);
    struct iovec iov = {buf, 5};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    show("recvmsg truncated", recvmsg(r, &mh, 0));
    showb("msg_flags MSG_TRUNC", (mh.msg_flags & MSG_TRUNC) != 0);
    /* a datagram larger than the receive buffer, into an empty queue */
    int small = 1;
    setsockopt(r, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    memset(buf, 'b', 8000);
    show("send 8000 to small rcvbuf", sendto(s, buf, 8000, 0, (void *)&to, tolen));
    struct pollfd p = {r, POLLIN, 0};
    show("poll", poll(&p, 1, 5000));
    show("recv big MSG_TRUNC", recv(r, buf, 100, MSG_TRUNC));
    show("send too large", sendto(s, buf, fam == AF_INET ? 65508 : 65528, 0, (void *)&to,
                                  tolen));
    show("send max", sendto(s, buf, fam == AF_INET ? 65507 : 65527, 0, (void *)&to, tolen));
    show("recv max", recv(r, buf, sizeof buf, 0));
    show("send unconnected no address", send(s, "x", 1, 0));
    /* connected */
    show("connect", connect(s, (void *)&to, tolen));
    show("send connected", send(s, "conn", 4, 0));
    show("recv connected", recv(r, buf, sizeof buf, 0));
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    show("getpeername", getpeername(s, (void *)&peer, &plen));
    close(r);
    show("send to closed port", send(s, "lost", 4, 0));
    p.fd = s;
    poll(&p, 1, 200);
    show("recv after refusal", recv(s, buf, sizeof buf, MSG_DONTWAIT));
    show("recv again", recv(s, buf, sizeof buf, MSG_DONTWAIT));
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    show("connect AF_UNSPEC", connect(s, &unspec, sizeof unspec));
    plen = sizeof peer;
    show("getpeername after", getpeername(s, (void *)&peer, &plen));
    show("shutdown unconnected", shutdown(s, SHUT_RDWR));
    show("listen on udp", listen(s, 1));
    show("accept on udp", accept(s, NULL, NULL));
    close(s);
}

int main(void)
{
    run(AF_INET, "127.0.0.1", "v4");
    run(AF_INET6, "::1", "v6");
    return 0;
}
