/* vmsplice of more than a pipe holds, by the pipe's own reader: Linux
   moves what fits and returns that count (it does not wait for room for
   everything), so the loop below drains the pipe between calls. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static char buf[1 << 17], out[1 << 17];

int main(void) {
    int p[2];
    pipe(p);
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)(i * 7);
    struct iovec v = {buf, sizeof buf};
    size_t got = 0;
    int calls = 0;
    while (v.iov_len) {
        ssize_t n = vmsplice(p[1], &v, 1, 0);
        if (n <= 0) { perror("vmsplice"); return 1; }
        calls++;
        v.iov_base = (char *)v.iov_base + n;
        v.iov_len -= n;
        while (n > 0) {
            ssize_t r = read(p[0], out + got, n);
            if (r <= 0) return 2;
            got += r;
            n -= r;
        }
    }
    printf("moved %zu bytes in %s call, intact: %d\n", got, calls > 1 ? "more than one" : "one",
           memcmp(buf, out, sizeof buf) == 0);
    return 0;
}
