/* Phases the placement test watches from the host (tests/test_placement.py):
 * "computing" then ~1.5 s of arithmetic with no syscall (its stub thread should
 * be let out to every CPU), then "trapping" and 5000 quick syscalls (it should
 * come home to one CPU), then "resting" and a read of stdin that blocks until
 * the test closes it. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
    char c;
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("computing\n");
    double end = now() + 1.5; /* a trap each ~0.1 s: far apart */
    while (now() < end)
        for (unsigned long i = 0; i < 100000000; i++)
            sink += i * i;
    printf("trapping\n");
    for (int i = 0; i < 5000; i++)
        getppid();
    printf("resting\n");
    return read(0, &c, 1) < 0;
}
