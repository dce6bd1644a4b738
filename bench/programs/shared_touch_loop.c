/* N rounds of: mmap a 16-page MAP_SHARED mapping of a /dev/shm file, store
 * to every page, munmap; the file is created, sized and unlinked once (also
 * for N = 0). Usage: shared_touch_loop N */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGES 16

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/bench-touch-%d", getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || ftruncate(fd, PAGES * 4096) < 0) {
        perror(path);
        return 1;
    }
    unlink(path);
    for (long i = 0; i < n; i++) {
        volatile char *m = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            perror("mmap");
            return 1;
        }
        for (int p = 0; p < PAGES; p++)
            m[p * 4096] = (char)i;
        munmap((void *)m, PAGES * 4096);
    }
    return 0;
}
