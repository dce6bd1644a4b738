/* splice, tee, vmsplice and copy_file_range with their errors: file to pipe,
 * pipe to file with offsets, tee keeping the input, vmsplice both ways,
 * copy_file_range with and without offsets, overlap, kinds of file. The
 * same natively and in the sandbox. Usage: splice_calls DIR */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static void report(const char *what, long ret) {
    printf("%s: %ld %s\n", what, ret, ret < 0 ? strerrorname_np(errno) : "-");
    fflush(stdout);
}

static void show_file(const char *what, int fd) {
    char buf[128];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    printf("%s: [%.*s]\n", what, (int)(n < 0 ? 0 : n), buf);
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/a", argv[1]);
    snprintf(b, sizeof b, "%s/b", argv[1]);
    int fa = open(a, O_CREAT | O_RDWR | O_TRUNC, 0644);
    int fb = open(b, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (write(fa, "0123456789abcdef", 16) != 16)
        return 1;
    int p[2], q[2];
    if (pipe(p) || pipe(q))
        return 1;
    loff_t off = 4;
    report("splice file->pipe at 4", splice(fa, &off, p[1], NULL, 6, 0));
    printf("offset now %lld, file offset %ld\n", (long long)off, (long)lseek(fa, 0, SEEK_CUR));
    report("tee p->q", tee(p[0], q[1], 100, 0));
    char buf[64];
    ssize_t n = read(q[0], buf, sizeof buf);
    printf("q holds [%.*s]\n", (int)n, buf);
    loff_t outoff = 2;
    report("splice pipe->file at 2", splice(p[0], NULL, fb, &outoff, 100, 0));
    show_file("b", fb);
    report("splice empty pipe nonblock", splice(p[0], NULL, fb, NULL, 10, SPLICE_F_NONBLOCK));
    report("splice file->file", splice(fa, NULL, fb, NULL, 10, 0));
    report("splice offset on a pipe", splice(p[0], &off, fb, NULL, 10, 0));
    report("splice pipe to itself", splice(p[0], NULL, p[1], NULL, 10, 0));
    report("splice bad flags", splice(fa, NULL, p[1], NULL, 10, 0x100));
    report("tee file", tee(fa, q[1], 10, 0));
    report("tee same pipe", tee(p[0], p[1], 10, 0));
    struct iovec iov[2] = {{"vm", 2}, {"splice", 6}};
    report("vmsplice into pipe", vmsplice(p[1], iov, 2, 0));
    char x[3] = {0}, y[5] = {0};
    struct iovec out[2] = {{x, 3}, {y, 5}};
    report("vmsplice out of pipe", vmsplice(p[0], out, 2, 0));
    printf("got [%.3s][%.5s]\n", x, y);
    report("vmsplice on a file", vmsplice(fa, iov, 2, 0));
    lseek(fa, 0, SEEK_SET);
    lseek(fb, 0, SEEK_SET);
    report("copy_file_range 5", copy_file_range(fa, NULL, fb, NULL, 5, 0));
    printf("offsets %ld %ld\n", (long)lseek(fa, 0, SEEK_CUR), (long)lseek(fb, 0, SEEK_CUR));
    loff_t oi = 10, oo = 20;
    report("copy_file_range with offsets", copy_file_range(fa, &oi, fb, &oo, 100, 0));
    printf("offsets %lld %lld\n", (long long)oi, (long long)oo);
    show_file("b", fb);
    report("copy_file_range flags", copy_file_range(fa, NULL, fb, NULL, 5, 1));
    loff_t s1 = 0, s2 = 2;
    report("copy_file_range overlap", copy_file_range(fa, &s1, fa, &s2, 5, 0));
    report("copy_file_range pipe", copy_file_range(p[0], NULL, fb, NULL, 5, 0));
    int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
    report("copy_file_range dir", copy_file_range(dir, NULL, fb, NULL, 5, 0));
    /* A directory (open read-only) as the target: EISDIR before EBADF. */
    report("copy_file_range to dir", copy_file_range(fa, NULL, dir, NULL, 5, 0));
    loff_t far = 0x7fffffffffffffffLL;
    report("copy_file_range wraps", copy_file_range(fa, NULL, fb, &far, (size_t)-1, 0));
    far = 0x7fffffffffffffffLL;
    report("copy_file_range max size", copy_file_range(fa, &(loff_t){0}, fb, &far, 65537, 0));
    int ro = open(b, O_RDONLY);
    report("copy_file_range to read-only", copy_file_range(fa, NULL, ro, NULL, 5, 0));
    report("copy_file_range past end", copy_file_range(fa, &(loff_t){100}, fb, NULL, 5, 0));
    return 0;
}
