/* Corked bytes a peer does not read (tests/test_memlimit.py): a
 * non-blocking TCP socket with TCP_CORK (or MSG_MORE on every send), over
 * loopback, whose peer reads nothing, must stop taking bytes (EAGAIN) well
 * before LIMIT_MIB: Linux holds corked bytes in the send queue, bounded by
 * the send buffer. Then the peer reads (a child), the cork comes off, and
 * every byte taken must arrive, in order. Likewise UDP_CORK never holds more than one
 * datagram (EMSGSIZE past 64 KiB).
 * usage: cork_flood cork|more */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define LIMIT_MIB 256
#define CHUNK 65536

static unsigned char chunk[CHUNK];

int main(int argc, char **argv)
{
    int more = argc > 1 && !strcmp(argv[1], "more");
    setvbuf(stdout, NULL, _IONBF, 0);
    int lst = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (lst < 0 || bind(lst, (void *)&a, sizeof a) || listen(lst, 1) ||
        getsockname(lst, (void *)&a, &alen))
        return 1;
    int cli = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(cli, (void *)&a, sizeof a))
        return 1;
    int srv = accept(lst, NULL, NULL);
    int one = 1;
    if (srv < 0 || (!more && setsockopt(cli, IPPROTO_TCP, TCP_CORK, &one, sizeof one)))
        return 1;
    fcntl(cli, F_SETFL, O_NONBLOCK);
    long sent = 0;
    int err = 0, again = 0;
    /* An application that retries on EAGAIN (up to 2,048 times here) must
     * not get more held for it than a full send queue. */
    while (sent < (long)LIMIT_MIB << 20 && again < 2048) {
        for (int i = 0; i < CHUNK; i++)
            chunk[i] = (unsigned char)((sent + i) * 7);
        ssize_t n = send(cli, chunk, CHUNK, more ? MSG_MORE : 0);
        if (n < 0) {
            err = errno;
            if (err != EAGAIN)
                break;
            again++;
            continue;
        }
        sent += n;
    }
    printf("corked send stops: %s, %s\n", err == EAGAIN ? "EAGAIN" : strerror(err),
           sent < (64L << 20) ? "under 64 MiB" : "64 MiB or more");
    /* The peer reads in a child; the cork comes off and a blocking empty
     * send waits until what was held has gone (natively it returns at once:
     * the bytes are in the kernel's send queue). */
    pid_t pid = fork();
    if (pid == 0) {
        static unsigned char buf[CHUNK];
        long got = 0, bad = 0;
        for (;;) {
            ssize_t n = read(srv, buf, sizeof buf);
            if (n <= 0)
                break;
            for (ssize_t i = 0; i < n; i++)
                if (buf[i] != (unsigned char)((got + i) * 7))
                    bad++;
            got += n;
        }
        printf("peer reads: %s\n", got == sent && !bad ? "every byte taken, in order" : "other");
        if (got != sent || bad)
            printf("sent %ld got %ld bad %ld\n", sent, got, bad);
        _exit(0);
    }
    close(srv);
    int zero = 0;
    fcntl(cli, F_SETFL, 0);
    if (!more)
        setsockopt(cli, IPPROTO_TCP, TCP_CORK, &zero, sizeof zero);
    send(cli, "", 0, 0);
    shutdown(cli, SHUT_WR);
    waitpid(pid, NULL, 0);

    int u = socket(AF_INET, SOCK_DGRAM, 0);
    if (u < 0 || connect(u, (void *)&a, sizeof a) ||
        setsockopt(u, IPPROTO_UDP, UDP_CORK, &one, sizeof one))
        return 1;
    long held = 0;
    for (int i = 0; i < 64; i++) {
        ssize_t n = send(u, chunk, 4096, 0);
        if (n < 0) {
            err = errno;
            break;
        }
        held += n;
    }
    printf("udp cork stops: %s after %ld KiB\n", strerror(err), held >> 10);
    return 0;
}
