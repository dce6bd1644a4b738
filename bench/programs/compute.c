/* A pure CPU loop with no syscalls in it (about 0.3 s natively for the
 * default N): the sandbox should add only its start-up cost.
 * Usage: compute [N]; prints nothing, exits 0 (1 only if the checksum is 0,
 * which xorshift never produces). */
#include <stdint.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000000L;
    uint64_t x = 88172645463325252ULL;
    for (long i = 0; i < n; i++) {
        /* xorshift64: a data dependency the compiler cannot fold away */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x == 0;
}
