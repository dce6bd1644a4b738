/* A program that dies of SIGSEGV two calls deep: gdb's backtrace names
 * crash_here and its caller. */
#include <stdio.h>

__attribute__((noinline)) static int crash_here(volatile int *p) {
    return *p + 1;
}

__attribute__((noinline)) static int call_it(int n) {
    volatile int *p = (volatile int *)(long)(n - 42); /* NULL for n == 42 */
    return crash_here(p);
}

int main(void) {
    printf("about to crash\n");
    fflush(stdout);
    return call_it(42);
}
