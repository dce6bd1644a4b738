/* N writes of 64 bytes to stdout (the runner points it at /dev/null): a
 * syscall that copies application memory. Usage: write_loop N */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    char buf[64];
    memset(buf, 'x', sizeof buf);
    for (long i = 0; i < n; i++)
        if (write(1, buf, sizeof buf) != (ssize_t)sizeof buf)
            return 1;
    return 0;
}
