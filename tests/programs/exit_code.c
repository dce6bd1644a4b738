/* exit_code: exit(argv[1]); the status is truncated to 8 bits by the kernel. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    int code = argc > 1 ? atoi(argv[1]) : 0;
    printf("exiting with %d\n", code);
    fflush(stdout);
    exit(code);
}
