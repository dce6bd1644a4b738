/* N file operations on PATH, for the file-path workloads of bench_files.py.
 * Usage: file_loop MODE PATH N
 *   open     N x (open O_RDONLY + close)
 *   stat     N x stat
 *   pread    N x pread of 4 KiB at offset 0 (one open before the loop)
 *   seqread  N x (lseek 0, then 1 MiB reads to the end of the file)
 * A failed call exits 1, so a broken sandbox cannot post a fast time. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char buf[1 << 20];

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: file_loop open|stat|pread|seqread PATH N\n");
        return 2;
    }
    const char *mode = argv[1], *path = argv[2];
    long n = atol(argv[3]);
    struct stat st;
    if (!strcmp(mode, "open")) {
        for (long i = 0; i < n; i++) {
            int fd = open(path, O_RDONLY);
            if (fd < 0 || close(fd) < 0)
                return 1;
        }
        return 0;
    }
    if (!strcmp(mode, "stat")) {
        for (long i = 0; i < n; i++)
            if (stat(path, &st) < 0)
                return 1;
        return 0;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 1;
    if (!strcmp(mode, "pread")) {
        for (long i = 0; i < n; i++)
            if (pread(fd, buf, 4096, 0) != 4096)
                return 1;
        return 0;
    }
    if (!strcmp(mode, "seqread")) {
        if (fstat(fd, &st) < 0)
            return 1;
        for (long i = 0; i < n; i++) {
            if (lseek(fd, 0, SEEK_SET) != 0)
                return 1;
            long long got = 0;
            ssize_t r;
            while ((r = read(fd, buf, sizeof buf)) > 0)
                got += r;
            if (r < 0 || got != st.st_size)
                return 1;
        }
        return 0;
    }
    return 2;
}
