/* N times: mmap 64 KiB anonymous, touch one page, munmap: the memory
 * manager's map/fault/unmap path. Usage: mmap_loop N */
#include <stdlib.h>
#include <sys/mman.h>

#define LEN (64 * 1024)

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    for (long i = 0; i < n; i++) {
        volatile char *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return 1;
        p[0] = (char)i;
        if (munmap((void *)p, LEN) != 0)
            return 1;
    }
    return 0;
}
