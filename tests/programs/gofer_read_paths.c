/* Reads a Gofer-served file (argv[1], over 1 MiB) every way the Sentry's
 * cached read path splits a request: read and pread of sizes that start and
 * end inside, on and across its 64 KiB chunks and its 960 KiB fills, past the
 * end, and into a buffer whose tail is unmapped (Linux copies what fits and
 * returns the short count; with nothing copied it is EFAULT).  Prints each
 * call's result and a checksum of the bytes, so the output is the same
 * natively and in the sandbox only if every byte and count is. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t fnv(const unsigned char *p, long n)
{
    uint64_t h = 1469598103934665603ULL;
    for (long i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static void show(const char *what, long r, const unsigned char *buf)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld %016llx\n", what, r, (unsigned long long)fnv(buf, r));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return 2;
    long size = st.st_size;
    unsigned char *buf = malloc(4 << 20);
    static const long sizes[] = {1, 4095, 4096, 65535, 65536, 65537, 983040, 1048576, 3 << 20};
    static const long offs[] = {0, 1, 65535, 65536, 983039, 1048577};
    char what[96];
    for (unsigned i = 0; i < sizeof offs / sizeof *offs; i++)
        for (unsigned j = 0; j < sizeof sizes / sizeof *sizes; j++) {
            snprintf(what, sizeof what, "pread %ld@%ld", sizes[j], offs[i]);
            show(what, pread(fd, buf, sizes[j], offs[i]), buf);
        }
    snprintf(what, sizeof what, "pread past the end");
    show(what, pread(fd, buf, 4096, size + 10), buf);
    snprintf(what, sizeof what, "pread the last bytes");
    show(what, pread(fd, buf, 65536, size - 100), buf);
    /* Sequential reads of odd sizes to the end, from a fresh description. */
    int fd2 = open(argv[1], O_RDONLY);
    long total = 0, r;
    uint64_t h = 0;
    while ((r = read(fd2, buf, 70000)) > 0) {
        h ^= fnv(buf, r) + (uint64_t)total;
        total += r;
    }
    printf("sequential 70000-byte reads: %ld bytes, last %ld, %016llx\n", total, r,
           (unsigned long long)h);
    /* A buffer whose second page is unmapped: a short count, or EFAULT. */
    unsigned char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                            -1, 0);
    if (p == MAP_FAILED || munmap(p + 4096, 4096) < 0)
        return 2;
    show("pread into 100 mapped bytes", pread(fd, p + 4096 - 100, 4096, 0), p + 4096 - 100);
    show("pread across a chunk into 100 mapped bytes",
         pread(fd, p + 4096 - 100, 200000, 65500), p + 4096 - 100);
    show("pread into unmapped memory", pread(fd, p + 4096, 4096, 0), p);
    lseek(fd2, 65530, SEEK_SET);
    show("read into 100 mapped bytes", read(fd2, p + 4096 - 100, 4096), p + 4096 - 100);
    printf("offset after: %ld\n", (long)lseek(fd2, 0, SEEK_CUR));
    show("read into unmapped memory", read(fd2, p + 4096, 4096), p);
    printf("offset after: %ld\n", (long)lseek(fd2, 0, SEEK_CUR));
    printf("done\n");
    return 0;
}
