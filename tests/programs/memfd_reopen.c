/* A memfd opened again through /proc/self/fd/N (same file; O_TRUNC refused
   by F_SEAL_SHRINK), and fallocate PUNCH_HOLE|KEEP_SIZE on it (zeros, size
   kept; refused by F_SEAL_WRITE). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void report(const char *what, long r) {
    printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "ok");
}

int main(void) {
    int fd = memfd_create("t", MFD_ALLOW_SEALING);
    char buf[3 * 4096], path[64];
    memset(buf, 'x', sizeof buf);
    write(fd, buf, sizeof buf);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int fd2 = open(path, O_RDONLY);
    report("reopen read-only", fd2);
    char c = 0;
    pread(fd2, &c, 1, 5000);
    printf("same file: %c, write on read-only: %ld\n", c, (long)write(fd2, "y", 1));
    report("punch hole", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 8000));
    pread(fd, buf, sizeof buf, 0);
    printf("after punch: %c%d%d%c size %ld\n", buf[99], buf[100], buf[8099], buf[8100],
           (long)lseek(fd, 0, SEEK_END));
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
    report("reopen O_TRUNC shrink-sealed", open(path, O_RDWR | O_TRUNC));
    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE);
    report("punch hole write-sealed", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                                 0, 4096));
    report("punch without KEEP_SIZE", fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096));
    return 0;
}
