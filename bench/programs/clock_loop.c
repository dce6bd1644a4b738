/* N clock_gettime(CLOCK_MONOTONIC) through libc, which takes the vDSO where
 * there is one (natively, gVisor's, pyvisor's): the cost of reading the time.
 * Usage: clock_loop N */
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    struct timespec ts;
    volatile long sink = 0;
    for (long i = 0; i < n; i++) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        sink += ts.tv_nsec;
    }
    return 0;
}
