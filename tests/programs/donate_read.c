/* Reads argv[1] (a file of a read-only tree: the Gofer donates its host
 * descriptor) every way the Sentry serves it from that descriptor, and prints
 * a checksum of each: read(2) in 64 KiB pieces, pread(2) at odd offsets,
 * readv(2) into two buffers, a read whose buffer's tail is unmapped (a short
 * read, as Linux's copy_to_user), a read into a read-only buffer (EFAULT), a
 * read past the end, and a MAP_PRIVATE mapping of it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static unsigned long sum(const unsigned char *p, long n) {
    unsigned long h = 5381;
    for (long i = 0; i < n; i++)
        h = h * 33 + p[i];
    return h;
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        printf("open: %s\n", strerrorname_np(errno));
        return 1;
    }
    struct stat st;
    fstat(fd, &st);
    static unsigned char buf[1 << 16];
    unsigned long h = 5381;
    long total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        h ^= sum(buf, n);
        total += n;
    }
    printf("read: %ld bytes, sum %lx, last %zd\n", total, h, n);
    long offs[] = {0, 1, 4095, 4096, 65537, st.st_size - 3, st.st_size, st.st_size + 10};
    for (unsigned i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        n = pread(fd, buf, 5000, offs[i]);
        printf("pread @%ld: %zd sum %lx\n", offs[i], n, n > 0 ? sum(buf, n) : 0);
    }
    unsigned char a[100], b[300];
    struct iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
    lseek(fd, 1000, SEEK_SET);
    n = readv(fd, iov, 2);
    printf("readv: %zd sum %lx %lx\n", n, sum(a, sizeof a), sum(b, sizeof b));
    /* Two pages, the second unmapped: a read across the end is short. */
    unsigned char *pg = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                             -1, 0);
    munmap(pg + 4096, 4096);
    n = pread(fd, pg + 4000, 1000, 0);
    printf("short: %zd sum %lx\n", n, n > 0 ? sum(pg + 4000, n) : 0);
    n = pread(fd, pg + 4096, 10, 0);
    printf("unmapped: %zd %s\n", n, n < 0 ? strerrorname_np(errno) : "");
    mprotect(pg, 4096, PROT_READ);
    n = pread(fd, pg, 10, 0);
    printf("read-only buffer: %zd %s\n", n, n < 0 ? strerrorname_np(errno) : "");
    unsigned char *m = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
        printf("mmap: %s\n", strerrorname_np(errno));
        return 1;
    }
    printf("mmap: sum %lx\n", sum(m, st.st_size));
    close(fd);
    return 0;
}
