/* Opens argv[1] once and preads it over and over: after the first read every
 * byte is in the Sentry's page cache, so no read needs the file server.
 * Prints "started" after the first read; on the first failing pread prints
 * "pread failed: ERRNO" and exits 7; gives up (exit 3) after 8 s without a
 * failure (a read served from a stale cache after the server died). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        printf("open failed: %s\n", strerrorname_np(errno));
        return 2;
    }
    char buf[4096];
    time_t start = time(NULL);
    int announced = 0;
    while (time(NULL) - start < 8) {
        if (pread(fd, buf, sizeof buf, 0) < 0) {
            printf("pread failed: %s\n", strerrorname_np(errno));
            return 7;
        }
        if (!announced) {
            printf("started\n");
            announced = 1;
        }
    }
    printf("no failure in 8 s\n");
    return 3;
}
