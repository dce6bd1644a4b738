/* writev: writev on stdout with several iovecs (an empty one, a NULL base of
 * length 0), error cases, then readv from stdin (a pipe in the tests) until EOF. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static void line(const char *fmt, long v, const char *e)
{
    char buf[160];
    int n = snprintf(buf, sizeof buf, fmt, v, e);
    write(1, buf, (size_t)n);
}

static const char *err(long r)
{
    return r < 0 ? strerrorname_np(errno) : "ok";
}

int main(void)
{
    char a[] = "alpha ", b[] = "beta ", c[] = "gamma\n";
    struct iovec iov[5] = {
        {a, strlen(a)}, {NULL, 0}, {b, strlen(b)}, {c + 5, 0}, {c, strlen(c)},
    };
    long r = writev(1, iov, 5);
    line("writev returned %ld %s\n", r, err(r));

    /* one big vector of many small pieces */
    static char piece[64][2];
    struct iovec many[64];
    for (int i = 0; i < 64; i++) {
        piece[i][0] = (char)('A' + i % 26);
        piece[i][1] = i == 63 ? '\n' : '.';
        many[i].iov_base = piece[i];
        many[i].iov_len = 2;
    }
    r = writev(1, many, 64);
    line("writev 64 returned %ld %s\n", r, err(r));

    r = writev(1, iov, 0);
    line("writev count 0 %ld %s\n", r, err(r));
    r = syscall(SYS_writev, 1, iov, -1);
    line("writev count -1 %ld %s\n", r, err(r));
    r = syscall(SYS_writev, 1, iov, IOV_MAX + 1);
    line("writev count IOV_MAX+1 %ld %s\n", r, err(r));
    r = writev(99, iov, 1);
    line("writev bad fd %ld %s\n", r, err(r));
    struct iovec badbase = {(void *)8, 16};
    r = syscall(SYS_writev, 1, &badbase, 1);
    line("writev bad base %ld %s\n", r, err(r));
    r = syscall(SYS_writev, 1, (void *)8, 1);
    line("writev bad iov pointer %ld %s\n", r, err(r));
    r = writev(0, iov, 1);
    line("writev to stdin %ld %s\n", r, err(r));
    r = write(1, a, 0);
    line("write zero %ld %s\n", r, err(r));

    /* readv from stdin until EOF, into three small buffers each round */
    char total[8192];
    size_t have = 0;
    long calls = 0;
    for (;;) {
        char x[3], y[5], z[64];
        struct iovec rv[3] = {{x, sizeof x}, {y, sizeof y}, {z, sizeof z}};
        r = readv(0, rv, 3);
        if (r <= 0)
            break;
        calls++;
        size_t left = (size_t)r;
        for (int i = 0; i < 3 && left; i++) {
            size_t n = left < rv[i].iov_len ? left : rv[i].iov_len;
            if (have + n > sizeof total)
                break;
            memcpy(total + have, rv[i].iov_base, n);
            have += n;
            left -= n;
        }
    }
    line("readv end %ld %s\n", r, err(r));
    line("readv bytes %ld%s\n", (long)have, "");
    line("readv got some calls %ld%s\n", calls > 0, "");
    write(1, "readv data [", 12);
    write(1, total, have);
    write(1, "]\n", 2);
    r = syscall(SYS_readv, 0, iov, -1);
    line("readv count -1 %ld %s\n", r, err(r));
    r = readv(1, iov, 1);
    line("readv from stdout %ld %s\n", r, err(r));
    return 0;
}
