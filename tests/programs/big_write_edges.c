/* Where a large write(2) to a pipe or a stream socket stops short
 * (tests/test_memlimit.py, against the Sentry's piece-at-a-time copy,
 * syscalls/pieces.py): a non-blocking pipe takes what fits, a pipe with no
 * reader fails with EPIPE, a buffer with an unmapped page in the middle
 * writes the bytes before it, a non-blocking socket takes part. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static void say(const char *what, long n)
{
    if (n < 0)
        printf("%s: error %s\n", what, strerror(errno));
    else
        printf("%s: %ld\n", what, n);
}

int main(void)
{
    long size = 8L << 20;
    char *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED)
        return 1;
    memset(buf, 1, size);
    int p[2], s[2];
    if (pipe2(p, O_NONBLOCK) != 0)
        return 1;
    say("nonblocking pipe", write(p[1], buf, size));
    say("full pipe", write(p[1], buf, size));
    close(p[0]);
    close(p[1]);
    signal(SIGPIPE, SIG_IGN);
    if (pipe(p) != 0)
        return 1;
    close(p[0]);
    say("no reader", write(p[1], buf, size));
    close(p[1]);
    if (pipe2(p, O_NONBLOCK) != 0 || fcntl(p[1], F_SETPIPE_SZ, 1 << 20) < 0)
        return 1;
    munmap(buf + (512L << 10), 4096);
    say("hole at 512 KiB", write(p[1], buf, size));
    say("hole first", write(p[1], buf + (512L << 10), size - (512L << 10)));
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s) != 0)
        return 1;
    long n = write(s[0], buf + (4L << 20), 4L << 20);
    printf("nonblocking socket: %s\n", n > 0 && n < (4L << 20) ? "part" : "other");
    return 0;
}
