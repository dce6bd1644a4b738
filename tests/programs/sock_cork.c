/* sock_cork: MSG_MORE, TCP_CORK and UDP_CORK on loopback (send(2), tcp(7),
 * udp(7)): corked bytes stay with the sender (the receiver's MSG_DONTWAIT
 * read is EAGAIN) until a send without MSG_MORE, the cork's removal, a
 * shutdown or a close; corked UDP datagrams leave as one. LTP's send02 in
 * small. */
#include "sock_common.h"
#include <netinet/udp.h>
#include <sys/uio.h>

static struct sockaddr_in lo;

static void tcp_pair(int *c, int *a)
{
    socklen_t n = sizeof lo;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    lo.sin_family = AF_INET;
    lo.sin_port = 0;
    lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(l, (void *)&lo, sizeof lo);
    getsockname(l, (void *)&lo, &n);
    listen(l, 1);
    *c = socket(AF_INET, SOCK_STREAM, 0);
    connect(*c, (void *)&lo, sizeof lo);
    *a = accept(l, NULL, NULL);
    close(l);
}

static int udp_pair(int *s, int connected)
{
    socklen_t n = sizeof lo;
    int r = socket(AF_INET, SOCK_DGRAM, 0);
    lo.sin_family = AF_INET;
    lo.sin_port = 0;
    lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(r, (void *)&lo, sizeof lo);
    getsockname(r, (void *)&lo, &n);
    *s = socket(AF_INET, SOCK_DGRAM, 0);
    if (connected)
        connect(*s, (void *)&lo, sizeof lo);
    return r;
}

static void peek(const char *what, int fd)
{
    char buf[256];
    show(what, recv(fd, buf, sizeof buf, MSG_DONTWAIT));
}

static void wait_read(const char *what, int fd)
{
    char buf[256];
    struct pollfd p = {fd, POLLIN, 0};
    poll(&p, 1, 5000);
    show(what, recv(fd, buf, sizeof buf, MSG_DONTWAIT));
}

static void tcp_cases(void)
{
    char data[64];
    int c, a, one = 1, zero = 0;
    memset(data, 'x', sizeof data);

    tcp_pair(&c, &a);
    show("tcp send 16", send(c, data, 16, 0));
    wait_read("tcp recv", a);
    show("tcp send 16 MSG_MORE", send(c, data, 16, MSG_MORE));
    peek("tcp recv after MSG_MORE", a);
    show("tcp send 1", send(c, data, 1, 0));
    wait_read("tcp recv 17", a);

    showb("tcp TCP_CORK default", int_opt(c, IPPROTO_TCP, TCP_CORK));
    show("tcp set TCP_CORK 1", setsockopt(c, IPPROTO_TCP, TCP_CORK, &one, sizeof one));
    showb("tcp TCP_CORK now", int_opt(c, IPPROTO_TCP, TCP_CORK));
    show("tcp write 10 corked", write(c, data, 10));
    show("tcp send 5 corked", send(c, data, 5, 0));
    peek("tcp recv while corked", a);
    show("tcp set TCP_CORK 0", setsockopt(c, IPPROTO_TCP, TCP_CORK, &zero, sizeof zero));
    wait_read("tcp recv uncorked 15", a);

    show("tcp send 7 MSG_MORE", send(c, data, 7, MSG_MORE));
    show("tcp shutdown SHUT_WR", shutdown(c, SHUT_WR));
    wait_read("tcp recv after shutdown", a);
    wait_read("tcp recv eof", a);
    close(c);
    close(a);

    tcp_pair(&c, &a);
    show("tcp send 9 MSG_MORE then close", send(c, data, 9, MSG_MORE));
    close(c);
    wait_read("tcp recv after close", a);
    wait_read("tcp recv eof after close", a);
    close(a);

    c = socket(AF_INET, SOCK_STREAM, 0);
    show("tcp unconnected send MSG_MORE", send(c, data, 3, MSG_MORE | MSG_NOSIGNAL));
    close(c);
}

static void udp_cases(void)
{
    char data[64];
    struct iovec iov = {data, 16};
    struct msghdr mh = {0};
    int s, r, one = 1, zero = 0;
    memset(data, 'u', sizeof data);

    r = udp_pair(&s, 1);
    show("udp send 16", send(s, data, 16, 0));
    wait_read("udp recv", r);
    show("udp send 16 MSG_MORE", send(s, data, 16, MSG_MORE));
    peek("udp recv after MSG_MORE", r);
    show("udp send 1", send(s, data, 1, 0));
    wait_read("udp recv 17", r);
    peek("udp nothing more", r);
    close(s);
    close(r);

    r = udp_pair(&s, 0);
    show("udp sendto 16 MSG_MORE", sendto(s, data, 16, MSG_MORE, (void *)&lo, sizeof lo));
    peek("udp recv after sendto MSG_MORE", r);
    show("udp sendto 1", sendto(s, data, 1, 0, (void *)&lo, sizeof lo));
    wait_read("udp recv sendto 17", r);
    mh.msg_name = &lo;
    mh.msg_namelen = sizeof lo;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    show("udp sendmsg 16 MSG_MORE", sendmsg(s, &mh, MSG_MORE));
    peek("udp recv after sendmsg MSG_MORE", r);
    iov.iov_len = 1;
    show("udp sendmsg 1", sendmsg(s, &mh, 0));
    wait_read("udp recv sendmsg 17", r);

    showb("udp UDP_CORK default", int_opt(s, IPPROTO_UDP, UDP_CORK));
    show("udp set UDP_CORK 1", setsockopt(s, IPPROTO_UDP, UDP_CORK, &one, sizeof one));
    show("udp sendto 4 corked", sendto(s, data, 4, 0, (void *)&lo, sizeof lo));
    show("udp sendto 4 corked again", sendto(s, data, 4, 0, (void *)&lo, sizeof lo));
    peek("udp recv while corked", r);
    show("udp set UDP_CORK 0", setsockopt(s, IPPROTO_UDP, UDP_CORK, &zero, sizeof zero));
    wait_read("udp recv uncorked 8", r);
    peek("udp nothing more after cork", r);
    close(s);
    close(r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    tcp_cases();
    udp_cases();
    return 0;
}
