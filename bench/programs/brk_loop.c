/* N times: grow the heap by 64 KiB with brk, touch the new page, shrink it
 * back (two raw brk syscalls per iteration). Usage: brk_loop N */
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LEN (64 * 1024)

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    char *base = (char *)syscall(SYS_brk, 0);
    for (long i = 0; i < n; i++) {
        char *top = (char *)syscall(SYS_brk, base + LEN);
        if (top != base + LEN)
            return 1;
        ((volatile char *)base)[0] = (char)i;
        if ((char *)syscall(SYS_brk, base) != base)
            return 1;
    }
    return 0;
}
