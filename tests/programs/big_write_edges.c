/* Where a large write(2) to a pipe or a stream socket stops short
 * (tests/test_memlimit.py, against the Sentry's piece-at-a-time copy,
 * syscalls/pieces.py): a non-blocking pipe takes what fits, a pipe with no
 * reader fails with EPIPE, a buffer with an unmapped page in the middle
 * writes the bytes before it, a non-blocking socket takes part; a reader
 * that goes away mid-write leaves a short write, with SIGPIPE from a pipe
 * and none from a socket. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int sigpipes;
static void on_sigpipe(int sig)
{
    (void)sig;
    sigpipes++;
}

/* A blocking write of SIZE bytes to fds[1] while a child reads 1 MiB from
 * fds[0] and exits: a short write, and how many SIGPIPEs came. */
static void reader_leaves(const char *what, int fds[2], const char *buf, long size)
{
    pid_t pid = fork();
    if (pid == 0) {
        static char rbuf[65536];
        long got = 0;
        close(fds[1]);
        while (got < (1L << 20)) {
            ssize_t n = read(fds[0], rbuf, sizeof rbuf);
            if (n <= 0)
                break;
            got += n;
        }
        _exit(0);
    }
    close(fds[0]);
    sigpipes = 0;
    long n = write(fds[1], buf, size);
    printf("%s: %s, %d SIGPIPE\n", what, n > 0 && n < size ? "short write" : "other",
           sigpipes);
    close(fds[1]);
    waitpid(pid, NULL, 0);
}

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
    signal(SIGPIPE, on_sigpipe);
    if (pipe(p) != 0)
        return 1;
    reader_leaves("pipe reader leaves", p, buf + (4L << 20), 4L << 20);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, s) != 0)
        return 1;
    reader_leaves("socket reader leaves", s, buf + (4L << 20), 4L << 20);
    return 0;
}
