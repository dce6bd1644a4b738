/* Phases the placement test watches from the host (tests/test_placement.py):
 * "computing" then arithmetic with one syscall (a zero-timeout poll of stdin)
 * each ~0.1 s, until the test writes a byte (its stub thread should be let
 * out to every CPU meanwhile: the test writes once it has seen that), then
 * "trapping" and 5000 quick syscalls (it should come home to one CPU), then
 * "resting" and a read of stdin that blocks until the test closes it.
 * No phase is timed: each ends when the test says so. */
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

static volatile unsigned long sink;

int main(void)
{
    char c;
    struct pollfd in = {.fd = 0, .events = POLLIN};
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("computing\n");
    do
        for (unsigned long i = 0; i < 100000000; i++)
            sink += i * i;
    while (poll(&in, 1, 0) == 0);
    if (read(0, &c, 1) != 1)
        return 2;
    printf("trapping\n");
    for (int i = 0; i < 5000; i++)
        getppid();
    printf("resting\n");
    return read(0, &c, 1) < 0;
}
