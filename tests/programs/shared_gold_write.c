#define _GNU_SOURCE
/* What gold and the Go linker do: create, ftruncate, mmap MAP_SHARED, store
   the whole output through the mapping, munmap, close; then read the file back
   with read(2).  Also: a mapping grown with ftruncate + mremap, and msync's
   errors.  Usage: shared_gold_write PATH */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (300 * 1024 + 123)

static void report(const char *what, int r) {
    printf("%s: %d %s\n", what, r, r < 0 ? strerror(errno) : "ok");
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0755);
    if (fd < 0) { perror("open"); return 1; }
    if (ftruncate(fd, SIZE) < 0) { perror("ftruncate"); return 1; }
    unsigned char *m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    for (int i = 0; i < SIZE; i++) m[i] = (unsigned char)(i * 7 + 3);
    if (munmap(m, SIZE) < 0) { perror("munmap"); return 1; }
    if (close(fd) < 0) { perror("close"); return 1; }

    fd = open(argv[1], O_RDONLY);
    static unsigned char buf[SIZE + 10];
    ssize_t n = 0, r;
    while ((r = read(fd, buf + n, sizeof buf - n)) > 0) n += r;
    close(fd);
    long bad = 0;
    for (int i = 0; i < SIZE; i++) bad += buf[i] != (unsigned char)(i * 7 + 3);
    printf("read back %zd bytes, %ld wrong\n", n, bad);

    /* grow: ftruncate, then mremap the mapping bigger and store at the end */
    fd = open(argv[1], O_RDWR);
    m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ftruncate(fd, 4 * 8192) < 0) { perror("ftruncate"); return 1; }
    m = mremap(m, 8192, 4 * 8192, MREMAP_MAYMOVE);
    if (m == MAP_FAILED) { perror("mremap"); return 1; }
    memcpy(m + 3 * 8192 + 1, "tail", 4);
    report("msync", msync(m, 4 * 8192, MS_SYNC));
    report("msync bad flags", msync(m, 4096, MS_SYNC | MS_ASYNC));
    report("msync unaligned", msync(m + 1, 4096, MS_SYNC));
    munmap(m, 4 * 8192);
    char t[5] = {0};
    pread(fd, t, 4, 3 * 8192 + 1);
    printf("tail: %s\n", t);
    report("msync unmapped", msync(m, 4096, MS_SYNC));
    close(fd);
    return 0;
}
