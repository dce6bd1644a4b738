/* net_pingpong MODE N: N 1-byte round trips between two processes over a
 * loopback TCP connection (MODE tcp) or an AF_UNIX socketpair (MODE unix);
 * MODE bulk sends N 64 KiB writes one way over loopback TCP; MODE connect
 * sets up N loopback TCP connections to a listener of the same process
 * (socket, connect, accept, close both): the connection setup rate. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void tcp_pair(int *a, int *b)
{
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof sa;
    if (bind(l, (void *)&sa, n) || listen(l, 1) || getsockname(l, (void *)&sa, &n))
        exit(2);
    *a = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(*a, (void *)&sa, n))
        exit(3);
    *b = accept(l, NULL, NULL);
    setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    close(l);
}

static int connect_loop(long n)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (bind(l, (void *)&sa, len) || listen(l, 16) || getsockname(l, (void *)&sa, &len))
        return 2;
    for (long i = 0; i < n; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || connect(c, (void *)&sa, len))
            return 3;
        int s = accept(l, NULL, NULL);
        if (s < 0)
            return 4;
        close(s);
        close(c);
    }
    close(l);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 1;
    long n = atol(argv[2]);
    if (strcmp(argv[1], "connect") == 0)
        return connect_loop(n);
    int a, b, sv[2];
    if (strcmp(argv[1], "unix") == 0) {
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        a = sv[0];
        b = sv[1];
    } else {
        tcp_pair(&a, &b);
    }
    int bulk = strcmp(argv[1], "bulk") == 0;
    static char buf[65536];
    pid_t pid = fork();
    if (pid == 0) {
        close(a);
        if (bulk) {
            long total = 0;
            ssize_t r;
            while ((r = read(b, buf, sizeof buf)) > 0)
                total += r;
            _exit(total == n * (long)sizeof buf ? 0 : 4);
        }
        char c;
        for (long i = 0; i < n; i++)
            if (read(b, &c, 1) != 1 || write(b, &c, 1) != 1)
                _exit(5);
        _exit(0);
    }
    close(b);
    char c = 'x';
    for (long i = 0; i < n; i++) {
        if (bulk) {
            size_t off = 0;
            while (off < sizeof buf) {
                ssize_t w = write(a, buf + off, sizeof buf - off);
                if (w <= 0)
                    return 6;
                off += w;
            }
        } else if (write(a, &c, 1) != 1 || read(a, &c, 1) != 1) {
            return 7;
        }
    }
    close(a);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 8;
}
