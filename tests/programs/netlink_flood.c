/* A netlink route socket that asks without reading (tests/test_memlimit.py):
 * its receive queue is bounded by SO_RCVBUF; the kernel's answers past it
 * are dropped and the next recv fails with ENOBUFS, once; reading the queue
 * empty makes the socket answer again. Counts differ between kernels (what
 * an answer costs), so only their range is printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ASKS 2000

static int ask(int fd, int seq)
{
    struct nlmsghdr h = {.nlmsg_len = sizeof h, .nlmsg_type = NLMSG_NOOP,
                         .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK, .nlmsg_seq = seq};
    return send(fd, &h, sizeof h, 0) == sizeof h ? 0 : -1;
}

int main(void)
{
    static char buf[65536];
    int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    int size = 4096;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) != 0)
        return 1;
    for (int i = 0; i < ASKS; i++)
        if (ask(fd, i) != 0) {
            printf("send %d: %s\n", i, strerror(errno));
            return 1;
        }
    struct pollfd p = {fd, POLLIN, 0};
    poll(&p, 1, 0);
    printf("poll: %s%s\n", p.revents & POLLIN ? "in" : "", p.revents & POLLERR ? " err" : "");
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    printf("first recv: %s\n", n < 0 ? strerror(errno) : "data");
    int acks = 0;
    while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        acks++;
    printf("then: %s, %s\n", acks > 0 && acks < ASKS / 10 ? "a few acks" : "other",
           n < 0 && errno == EAGAIN ? "EAGAIN" : "other");
    if (ask(fd, ASKS) != 0)
        return 1;
    n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    printf("again: %s\n", n > 0 && h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == ASKS ?
           "ack" : "other");
    return 0;
}
