/* sendmmsg/recvmmsg batches over UDP loopback and a unix datagram pair:
 * counts, per-message lengths, MSG_TRUNC per message, MSG_WAITFORONE, a
 * batch cut short by an empty queue, vlen 0, and errors on the first
 * message versus after it. */
#include "sock_common.h"

#define N 5

static void batch_recv(const char *what, int fd, unsigned vlen, int flags, size_t room)
{
    char bufs[8][64];
    struct iovec iov[8];
    struct mmsghdr mm[8];
    memset(mm, 0, sizeof mm);
    for (unsigned i = 0; i < 8; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = room;
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, mm, vlen, flags, NULL);
    show(what, n);
    for (int i = 0; i < n; i++)
        printf("  msg %d len %u trunc %d data %.*s\n", i, mm[i].msg_len,
               !!(mm[i].msg_hdr.msg_flags & MSG_TRUNC),
               (int)(mm[i].msg_len < room ? mm[i].msg_len : room), bufs[i]);
    fflush(stdout);
}

static void run(const char *kind, int tx, int rx, struct sockaddr *to, socklen_t tolen)
{
    printf("== %s\n", kind);
    char text[N][16];
    struct iovec iov[N];
    struct mmsghdr mm[N];
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < N; i++) {
        snprintf(text[i], sizeof text[i], "message-%d%s", i, i == 2 ? "-long" : "");
        iov[i].iov_base = text[i];
        iov[i].iov_len = strlen(text[i]);
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
        mm[i].msg_hdr.msg_name = to;
        mm[i].msg_hdr.msg_namelen = tolen;
    }
    showb("sendmmsg vlen 0", sendmmsg(tx, mm, 0, 0));
    int n = sendmmsg(tx, mm, N, 0);
    show("sendmmsg 5", n);
    for (int i = 0; i < n; i++)
        printf("  sent %d len %u\n", i, mm[i].msg_len);
    batch_recv("recvmmsg 2", rx, 2, MSG_DONTWAIT, 64);
    batch_recv("recvmmsg 8 room 10 (truncates)", rx, 8, MSG_DONTWAIT, 10);
    batch_recv("recvmmsg empty", rx, 4, MSG_DONTWAIT, 64);
    sendmmsg(tx, mm, 2, 0);
    batch_recv("recvmmsg WAITFORONE", rx, 8, MSG_WAITFORONE, 64);
    /* A bad second message: the first goes, the count says 1. */
    mm[1].msg_hdr.msg_iov = (struct iovec *)8;
    show("sendmmsg bad second", sendmmsg(tx, mm, 2, 0));
    show("sendmmsg bad first", sendmmsg(tx, mm + 1, 1, 0));
    batch_recv("recvmmsg what got through", rx, 8, MSG_DONTWAIT, 64);
}

int main(void)
{
    int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(rx, (struct sockaddr *)&a, sizeof a);
    getsockname(rx, (struct sockaddr *)&a, &al);
    run("udp", tx, rx, (struct sockaddr *)&a, sizeof a);
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    run("unix dgram", sv[0], sv[1], NULL, 0);
    return 0;
}
